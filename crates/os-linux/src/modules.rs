//! Loaded kernel modules from the `modules` list. **Key decision: report what
//! `/proc/modules` reports** — the base of the core (text) allocation and the total size
//! (`mem[]` sizes summed on 6.4+, `core_layout.size + init_layout.size` before) — with the
//! kernel image itself first (`_text`..`_end`).
//!
//! Without a `modules` symbol (kallsyms without data symbols, as Debian's arm64; the list
//! head is not exported) the head is found by structure in the image: a `list_head`
//! whose `next` and `prev` point outside the image and the linear map (module memory),
//! whose neighbours point back at it, and whose `next` is the `list` member of a
//! `struct module` (its `mkobj.mod` points at itself). With no module loaded the list is
//! empty and cannot be found this way.
//!
//! Bounds: at most [`MAX_MODULES`] modules are walked (cycle-checked); a module's size is
//! the sum of at most [`crate::layout::MAX_MODULE_MEM`] `mem[]` entries; names are at most
//! 256 bytes; the structural search reads at most 256 MiB of image once.

use std::collections::HashSet;

use memlens_core::{ModuleInfo, VirtAddr};

use crate::error::{LinuxError, Result};
use crate::kernel::Kernel;

/// Most modules walked: a kernel with thousands of modules is already unusual; 16 384
/// bounds a forged list that never returns to its head.
pub const MAX_MODULES: usize = 1 << 14;

/// The kernel image as a module, then every loaded module in list order.
pub fn kernel_modules(k: &Kernel) -> Result<Vec<ModuleInfo>> {
    let mut out = Vec::new();
    out.push(ModuleInfo {
        name: "vmlinux".into(),
        base: VirtAddr(k.text_va()),
        size: k.info.image_size,
        path: None,
    });
    let o = &k.off;
    let (Some(list_off), Some(name_off)) = (o.module_list, o.module_name) else {
        return Err(LinuxError::MissingField {
            path: "module.list / module.name".into(),
        });
    };
    let head = k
        .symbol("modules")
        .or_else(|| find_head(k, list_off))
        .ok_or_else(|| LinuxError::MissingSymbol {
            name: "modules".into(),
            source_name: format!("{:?}", k.info.symbol_source),
        })?;
    let mut seen = HashSet::new();
    let mut cur = head;
    for _ in 0..MAX_MODULES {
        let next = match k.ptr(cur, "module.list.next") {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(e) => {
                log::warn!("module list: {e}; cut short");
                break;
            }
        };
        if next == head || !seen.insert(next) {
            break;
        }
        cur = next;
        // Addresses from the target: wrapping (a wild one fails the read, not the sum).
        let m = next.wrapping_sub(list_off);
        let name = match k.chars(m.wrapping_add(name_off), o.module_name_len as usize) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("module at {m:#x}: name unreadable ({e}); skipped");
                continue;
            }
        };
        let at = |off: u64| m.wrapping_add(off);
        let (base, size) = if let Some((mem, esz, n, b, s)) = o.module_mem {
            // n <= 16 and esz <= 4096 (layout::module_mem): a bounded walk.
            let arr = at(mem);
            let base = k.u64(arr.wrapping_add(b)).unwrap_or(0);
            let size = (0..n)
                .map(|i| {
                    let e = arr.wrapping_add(i.saturating_mul(esz)).wrapping_add(s);
                    u64::from(k.u32(e).unwrap_or(0))
                })
                .fold(0u64, u64::saturating_add);
            (base, size)
        } else if let Some((cb, cs, is)) = o.module_layout {
            let base = k.u64(at(cb)).unwrap_or(0);
            let size = u64::from(k.u32(at(cs)).unwrap_or(0))
                .saturating_add(u64::from(k.u32(at(is)).unwrap_or(0)));
            (base, size)
        } else {
            (0, 0)
        };
        out.push(ModuleInfo {
            name,
            base: VirtAddr(base),
            size,
            path: None,
        });
    }
    Ok(out)
}

/// The `modules` list head by structure (see the module documentation).
fn find_head(k: &Kernel, list_off: u64) -> Option<u64> {
    let back = k.off.module_mkobj_mod?;
    let text = k.text_va();
    let img = k.image();
    let len = img.len() as u64;
    let max_phys = k.phys.metadata().max_addr.0.saturating_add(1);
    let outside = |p: u64| {
        k.is_kptr(p)
            && p & 7 == 0
            && p.wrapping_sub(text) >= len
            && p.wrapping_sub(k.page_offset_base) >= max_phys
    };
    let word = |o: usize| {
        img.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let mut o = 0usize;
    while o + 16 <= img.len() {
        let (Some(next), Some(prev)) = (word(o), word(o + 8)) else {
            break;
        };
        if outside(next) && outside(prev) {
            let head = text.wrapping_add(o as u64);
            let m = next.wrapping_sub(list_off);
            if k.u64(next.wrapping_add(8)).ok() == Some(head)
                && k.u64(prev).ok() == Some(head)
                && k.u64(m.wrapping_add(back)).ok() == Some(m)
            {
                log::info!("modules list head found by structure at {head:#x}");
                return Some(head);
            }
        }
        o += 8;
    }
    None
}

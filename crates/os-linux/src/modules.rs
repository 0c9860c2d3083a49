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

use std::collections::HashSet;

use memlens_core::{ModuleInfo, VirtAddr};

use crate::error::{LinuxError, Result};
use crate::kernel::Kernel;

/// Most modules walked.
const MAX_MODULES: usize = 1 << 14;

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
        let m = next - list_off;
        let name = match k.chars(m + name_off, o.module_name_len as usize) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("module at {m:#x}: name unreadable ({e}); skipped");
                continue;
            }
        };
        let (base, size) = if let Some((mem, esz, n, b, s)) = o.module_mem {
            let base = k.u64(m + mem + b).unwrap_or(0);
            let size = (0..n)
                .map(|i| k.u32(m + mem + i * esz + s).unwrap_or(0) as u64)
                .sum();
            (base, size)
        } else if let Some((cb, cs, is)) = o.module_layout {
            let base = k.u64(m + cb).unwrap_or(0);
            let size = k.u32(m + cs).unwrap_or(0) as u64 + k.u32(m + is).unwrap_or(0) as u64;
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
    let len = k.info.image_size.min(256 << 20);
    let img = crate::scan::read_lossy(&*k.phys, k.info.text_phys.0, len as usize);
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

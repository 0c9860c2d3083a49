//! Loaded kernel modules from the `modules` list. **Key decision: report what
//! `/proc/modules` reports** — the base of the core (text) allocation and the total size
//! (`mem[]` sizes summed on 6.4+, `core_layout.size + init_layout.size` before) — with the
//! kernel image itself first (`_text`..`_end`).

use std::collections::HashSet;

use memlens_core::{ModuleInfo, VirtAddr};

use crate::error::{LinuxError, Result};
use crate::kernel::Kernel;

/// Most modules walked.
const MAX_MODULES: usize = 1 << 14;

/// The kernel image as a module, then every loaded module in list order.
pub fn kernel_modules(k: &Kernel) -> Result<Vec<ModuleInfo>> {
    let mut out = Vec::new();
    if let Some(text) = k.syms.get("_text") {
        let end = k.syms.get("_end").unwrap_or(text);
        out.push(ModuleInfo {
            name: "vmlinux".into(),
            base: VirtAddr(text),
            size: end.saturating_sub(text),
            path: None,
        });
    }
    let o = &k.off;
    let (Some(list_off), Some(name_off)) = (o.module_list, o.module_name) else {
        return Err(LinuxError::MissingField {
            path: "module.list / module.name".into(),
        });
    };
    let head = k
        .symbol("modules")
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

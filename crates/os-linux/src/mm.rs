//! Memory maps of a process: VMAs from the maple tree (6.1+) or the `mmap` list (older).
//! **Key decision: walk the maple tree by its pivots**, carrying each node's `[min, max]`
//! range down, so a slot past the node's data end (stale after an edit) is never followed,
//! and every VMA found is checked against the range its slot covers. Node layouts (pivot
//! and slot offsets, slot counts) come from BTF, not constants.
//!
//! Bounds: at most [`MAX_VMAS`] VMAs and [`MAX_NODES`] maple nodes (depth 16) per process;
//! a node layout larger than a page is refused. A VMA must be page-aligned, non-empty
//! and end within the user half ([`user_end`]: 2^47 on x86-64, 2^56 with 5-level paging,
//! 2^VA_BITS on arm64) — a forged `[0x1000, 2^64 - 4096)` would make consumers walk
//! 16 EiB; it is skipped with a warning.

use std::collections::HashSet;

use memlens_core::{MapInfo, MemoryViewExt, ModuleInfo, Perms, VirtAddr};

use crate::error::{LinuxError, Result};
use crate::kernel::Kernel;

/// Most VMAs collected per process.
pub const MAX_VMAS: usize = 1 << 16;
/// Most maple nodes visited per tree: a full tree of [`MAX_VMAS`] VMAs needs at most
/// ~`MAX_VMAS / 8` leaves plus their parents; the bound leaves room for sparse nodes.
pub const MAX_NODES: usize = 1 << 16;

const VM_READ: u64 = 1;
const VM_WRITE: u64 = 2;
const VM_EXEC: u64 = 4;
const VM_MAYSHARE: u64 = 0x80;

/// Maple node types (`enum maple_type`).
const MAPLE_DENSE: u64 = 0;
const MAPLE_LEAF_64: u64 = 1;
const MAPLE_RANGE_64: u64 = 2;
const MAPLE_ARANGE_64: u64 = 3;

/// Addresses of the VMAs of `mm`, in ascending address order.
pub fn vma_addrs(k: &Kernel, mm: u64) -> Result<Vec<u64>> {
    let mut out = if let Some(root_off) = k.off.mm_mt_root {
        let root = k.u64(mm.wrapping_add(root_off))?;
        let mut out = Vec::new();
        let mut nodes = 0usize;
        if root & 3 == 2 && root > 4096 {
            maple_walk(k, root, 0, u64::MAX, 0, &mut nodes, &mut out);
        } else if root != 0 && root & 3 == 0 {
            out.push(root);
        }
        out
    } else if let (Some(mmap), Some(next)) = (k.off.mm_mmap, k.off.vma_next) {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut cur = k.ptr(mm.wrapping_add(mmap), "mm_struct.mmap")?;
        while let Some(v) = cur {
            if !seen.insert(v) || out.len() >= MAX_VMAS {
                log::warn!("VMA list of mm {mm:#x}: cycle or limit at {v:#x}");
                break;
            }
            out.push(v);
            cur = k.ptr(v.wrapping_add(next), "vm_area_struct.vm_next")?;
        }
        out
    } else {
        return Err(LinuxError::MissingField {
            path: "mm_struct.mm_mt / mm_struct.mmap".into(),
        });
    };
    out.dedup();
    Ok(out)
}

fn maple_walk(
    k: &Kernel,
    enode: u64,
    min: u64,
    max: u64,
    depth: u32,
    nodes: &mut usize,
    out: &mut Vec<u64>,
) {
    *nodes += 1;
    if depth > 16 || *nodes > MAX_NODES || out.len() >= MAX_VMAS {
        log::warn!("maple tree: depth/node/VMA limit reached at node {enode:#x}; maps cut short");
        return;
    }
    let node = enode & !0xff;
    let ty = (enode >> 3) & 0xf;
    let layout = match ty {
        MAPLE_LEAF_64 | MAPLE_RANGE_64 => k.off.maple_range,
        MAPLE_ARANGE_64 => k.off.maple_arange,
        MAPLE_DENSE => {
            log::warn!("maple tree: dense node {enode:#x} not expected in an mm; skipped");
            return;
        }
        _ => None,
    };
    let Some((piv_off, slot_off, nslots)) = layout else {
        log::warn!("maple tree: node {enode:#x} of unknown type {ty}; skipped");
        return;
    };
    let size = slot_off.saturating_add(nslots.saturating_mul(8));
    if size > 4096 {
        log::warn!("maple node layout from BTF is {size} bytes; refusing to read it");
        return;
    }
    let size = size as usize;
    let buf = match k.kvm.read_vec(VirtAddr(node), size) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("maple node {node:#x} unreadable ({e}); its VMAs are missing");
            return;
        }
    };
    let word = |off: u64| -> u64 {
        buf.get(off as usize..off as usize + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    };
    let leaf = ty == MAPLE_LEAF_64;
    let mut lo = min;
    for i in 0..nslots {
        let pivot = if i + 1 < nslots {
            word(piv_off + 8 * i)
        } else {
            max
        };
        if i > 0 && pivot == 0 {
            break;
        }
        if pivot < lo || pivot > max {
            break;
        }
        let slot = word(slot_off + 8 * i);
        if slot != 0 {
            // Children are encoded nodes (`node | type << 3 | 4`); leaf slots are VMAs.
            if leaf {
                if slot & 7 == 0 && k.is_kptr(slot) {
                    out.push(slot);
                }
            } else if k.is_kptr(slot) {
                maple_walk(k, slot, lo, pivot, depth + 1, nodes, out);
            }
        }
        if pivot >= max {
            break;
        }
        lo = pivot + 1;
    }
}

/// Name of a special mapping (`[vdso]`, `[vvar]`) when `vma` is one.
fn special_name(k: &Kernel, vma: u64) -> Option<String> {
    let ops = k.u64(vma.wrapping_add(k.off.vma_ops?)).ok()?;
    let special = ["special_mapping_vmops", "legacy_special_mapping_vmops"]
        .iter()
        .any(|n| k.syms.get(n) == Some(ops));
    // Without data symbols (text-only kallsyms): the ops' `name` callback is the text
    // symbol `special_mapping_name`.
    let by_callback = || {
        let f = k.u64(ops.wrapping_add(k.off.vmops_name?)).ok()?;
        Some(f != 0 && k.syms.get("special_mapping_name") == Some(f))
    };
    if !special && by_callback() != Some(true) {
        return None;
    }
    let sm = k
        .ptr(vma.wrapping_add(k.off.vma_private?), "vm_private_data")
        .ok()??;
    let name = k.ptr(sm, "vm_special_mapping.name").ok()??;
    k.kvm.read_cstr(VirtAddr(name), 64).ok()
}

/// End of the user half of `k`'s address spaces: x86-64 2^47 (4-level) or 2^56
/// (5-level), arm64 2^VA_BITS. No VMA ends above it.
pub fn user_end(k: &Kernel) -> u64 {
    match k.info.arch {
        memlens_core::Arch::Aarch64 => 1u64 << k.kvm.va_bits().clamp(36, 56),
        _ if k.info.levels == 5 => 1 << 56,
        _ => 1 << 47,
    }
}

/// Whether `[start, end)` can be a VMA: page-aligned, non-empty, and ending at or below
/// `user_end`.
pub fn vma_range_ok(start: u64, end: u64, user_end: u64) -> bool {
    start < end && start & 0xfff == 0 && end & 0xfff == 0 && end <= user_end
}

/// Memory maps of `mm` in `/proc/PID/maps` form.
pub fn maps(k: &Kernel, mm: u64) -> Result<Vec<MapInfo>> {
    let o = &k.off;
    let limit = user_end(k);
    let get = |off: Option<u64>| off.and_then(|f| k.u64(mm.wrapping_add(f)).ok());
    let (start_brk, brk, start_stack) = (get(o.mm_start_brk), get(o.mm_brk), get(o.mm_start_stack));
    let mut out: Vec<MapInfo> = Vec::new();
    for vma in vma_addrs(k, mm)? {
        let rd = |off: u64| k.u64(vma.wrapping_add(off));
        let (Ok(start), Ok(end), Ok(flags), Ok(pgoff)) = (
            rd(o.vma_start),
            rd(o.vma_end),
            rd(o.vma_flags),
            rd(o.vma_pgoff),
        ) else {
            log::warn!("vm_area_struct at {vma:#x} unreadable; skipped");
            continue;
        };
        if !vma_range_ok(start, end, limit) {
            log::warn!(
                "vm_area_struct at {vma:#x}: bad range {start:#x}-{end:#x} (user half ends at {limit:#x}); skipped"
            );
            continue;
        }
        let file = k
            .ptr(vma.wrapping_add(o.vma_file), "vm_area_struct.vm_file")
            .ok()
            .flatten();
        let path = match file {
            Some(f) => match crate::paths::file_path(k, f) {
                Ok(p) => Some(p),
                Err(e) => {
                    log::warn!("VMA {start:#x}: file path unreadable: {e}");
                    None
                }
            },
            None => if let (Some(sb), Some(b)) = (start_brk, brk) {
                (start <= b && end >= sb).then(|| "[heap]".to_string())
            } else {
                None
            }
            .or_else(|| {
                start_stack
                    .filter(|s| start <= *s && end >= *s)
                    .map(|_| "[stack]".to_string())
            })
            .or_else(|| special_name(k, vma)),
        };
        out.push(MapInfo {
            start: VirtAddr(start),
            end: VirtAddr(end),
            perms: Perms {
                read: flags & VM_READ != 0,
                write: flags & VM_WRITE != 0,
                exec: flags & VM_EXEC != 0,
                shared: flags & VM_MAYSHARE != 0,
            },
            offset: if file.is_some() { pgoff << 12 } else { 0 },
            path,
        });
    }
    out.sort_by_key(|m| m.start);
    out.dedup_by_key(|m| m.start);
    Ok(out)
}

/// Mapped files of a process grouped by path (lowest start to highest end).
pub fn modules_of(maps: &[MapInfo]) -> Vec<ModuleInfo> {
    let mut out: Vec<ModuleInfo> = Vec::new();
    for m in maps {
        let Some(p) = m.path.as_deref().filter(|p| p.starts_with('/')) else {
            continue;
        };
        if let Some(e) = out.iter_mut().find(|e| e.path.as_deref() == Some(p)) {
            let end = e.base.0.saturating_add(e.size).max(m.end.0);
            e.base = VirtAddr(e.base.0.min(m.start.0));
            e.size = end - e.base.0;
        } else {
            out.push(ModuleInfo {
                name: p.rsplit('/').next().unwrap_or(p).to_string(),
                base: m.start,
                size: m.end.0.saturating_sub(m.start.0),
                path: Some(p.to_string()),
            });
        }
    }
    out.sort_by_key(|m| m.base);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmas_end_in_the_user_half() {
        let lim = 1u64 << 47;
        assert!(vma_range_ok(0x1000, 0x2000, lim));
        assert!(vma_range_ok(0x7fff_ffff_e000, lim, lim));
        // The forged VMA of the audit: page-aligned, start < end, 16 EiB long.
        assert!(!vma_range_ok(0x1000, 0u64.wrapping_sub(4096), lim));
        assert!(!vma_range_ok(0x1000, lim + 0x1000, lim));
        assert!(!vma_range_ok(0x2000, 0x2000, lim));
        assert!(!vma_range_ok(0x1001, 0x2000, lim));
        assert!(vma_range_ok(0x1000, 1 << 56, 1 << 56));
    }
}

//! The kernel image in physical memory: its extent, one capped copy of it, and the
//! image's `VA - PA` without page tables. **Key decision: `_text` and `_end` are claims of
//! the target** — the span read is clamped to [`MAX_IMAGE`], every end is computed with
//! saturating arithmetic (a `_text` near `u64::MAX` gives a short or empty read, never an
//! overflow), and the copy is made at most once per kernel and kept by the
//! [`Kernel`](crate::Kernel) (symbol misses and the module-list search share it).

use std::collections::BTreeMap;

use memlens_core::{MemoryViewExt, PhysAddr, PhysicalMemory};

use crate::error::{LinuxError, Result};
use crate::kallsyms::SymbolTable;
use crate::kernel::START_KERNEL_MAP;
use crate::scan;

/// Longest kernel image read or searched: distribution images (`_text`.. `_end`, with
/// BSS) are 20-70 MiB; 256 MiB is several times that and bounds the copy a forged `_end`
/// can ask for.
pub const MAX_IMAGE: u64 = 256 << 20;

/// Image length assumed when `_end` is not a symbol (text-only kallsyms): larger than
/// the text, rodata and BTF of any distribution kernel.
pub const DEFAULT_SPAN: u64 = 64 << 20;

/// The image end: `_end` when known, else [`DEFAULT_SPAN`] past `text` (saturating).
pub fn end_of(text: u64, end: Option<u64>) -> u64 {
    end.unwrap_or(text.saturating_add(DEFAULT_SPAN))
}

/// Bytes of the image `[text, end)` to read: at most [`MAX_IMAGE`].
pub fn span(text: u64, end: u64) -> usize {
    // MAX_IMAGE fits in usize on every supported (64-bit) host.
    end.saturating_sub(text).min(MAX_IMAGE) as usize
}

/// Copies the image at physical `pa`, `len` bytes (already capped by [`span`]),
/// unreadable parts zero.
pub fn read(phys: &dyn PhysicalMemory, pa: u64, len: usize) -> Vec<u8> {
    scan::read_lossy(phys, pa, len.min(MAX_IMAGE as usize))
}

/// A VMCOREINFO value as a number (hex, or signed decimal for `NUMBER(…)`).
pub(crate) fn vmci_u64(v: &BTreeMap<String, String>, key: &str) -> Option<u64> {
    let s = v.get(key)?.trim();
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok();
    }
    // SYMBOL()/KERNELOFFSET/phys_base values are hex without prefix; NUMBER() decimal.
    // NUMBER() is printed with %ld: phys_base is "negative" when the image sits below
    // its link-time offset, so parse signed and keep the bits.
    if key.starts_with("NUMBER(") {
        s.parse::<i64>().ok().map(|v| v as u64)
    } else {
        u64::from_str_radix(s, 16).ok()
    }
}

/// Without kallsyms: the image's `VA - PA` from VMCOREINFO's `phys_base`, or from where
/// the `linux_banner` symbol's text is found in physical memory.
pub(crate) fn image_delta_without_kallsyms(
    phys: &dyn PhysicalMemory,
    syms: &SymbolTable,
    vmci: Option<&BTreeMap<String, String>>,
) -> Result<u64> {
    if let Some(pb) =
        vmci.and_then(|v| vmci_u64(v, "NUMBER(phys_base)").or(vmci_u64(v, "phys_base")))
    {
        return Ok(START_KERNEL_MAP.wrapping_sub(pb));
    }
    let banner_va = syms
        .get("linux_banner")
        .ok_or_else(|| LinuxError::MissingSymbol {
            name: "linux_banner".into(),
            source_name: "System.map".into(),
        })?;
    // The banner is 4-byte aligned in .rodata; the kernel's copy is at an address whose
    // low 21 bits equal the symbol's (the image is loaded 2 MiB-aligned).
    let mut found = None;
    scan::scan_chunks(phys, 256, |pa, bytes| {
        for hit in memchr::memmem::find_iter(bytes, b"Linux version ") {
            let hpa = pa.wrapping_add(hit as u64);
            if (hpa ^ banner_va) & 0x1f_ffff == 0 {
                found = Some(banner_va.wrapping_sub(hpa));
                return Some(());
            }
        }
        None
    });
    found.ok_or_else(|| LinuxError::KernelNotFound {
        found: "a System.map".into(),
        missing: "the kernel banner at a 2 MiB-congruent physical address (image offset)".into(),
    })
}

/// The image's `VA - PA` once kallsyms is decoded. kallsyms leaves out its own tables, so
/// the token table's virtual address is not a symbol; but the image is placed 2 MiB-aligned
/// both virtually and physically, so the table's virtual address is congruent to its
/// physical one modulo 2 MiB and lies in `[_text, _end)`. Each such candidate is checked
/// by reading `linux_banner` through it (the page-table walk in `open` checks again).
pub(crate) fn image_delta_from_kallsyms(
    phys: &dyn PhysicalMemory,
    syms: &SymbolTable,
    tt: PhysAddr,
) -> Result<u64> {
    let missing = |name: &str| LinuxError::MissingSymbol {
        name: name.into(),
        source_name: "kallsyms".into(),
    };
    let text = syms.get("_text").ok_or_else(|| missing("_text"))?;
    // At most MAX_IMAGE past `_text` (128 candidates): `_end` is the target's claim.
    let end = syms
        .get("_end")
        .unwrap_or(text.saturating_add(128 << 20))
        .min(text.saturating_add(MAX_IMAGE));
    let banner = syms
        .get("linux_banner")
        .ok_or_else(|| missing("linux_banner"))?;
    const ALIGN: u64 = 2 << 20;
    let mut va = (text & !(ALIGN - 1)) | (tt.0 & (ALIGN - 1));
    while va < end {
        if va >= text {
            let delta = va.wrapping_sub(tt.0);
            let mut b = [0u8; 14];
            if phys
                .read_into(PhysAddr(banner.wrapping_sub(delta)), &mut b)
                .is_ok()
                && &b == b"Linux version "
            {
                return Ok(delta);
            }
        }
        let Some(next) = va.checked_add(ALIGN) else {
            break;
        };
        va = next;
    }
    Err(LinuxError::KernelNotFound {
        found: format!("kallsyms at {tt} (_text {text:#x})"),
        missing: "the kernel banner at any 2 MiB-congruent image offset".into(),
    })
}

/// An arm64 image lives in the vmalloc area, far below x86-64's kernel map (top 2 GiB);
/// other architectures are told apart later (no `__ksymtab` anchors, no page tables).
pub(crate) fn is_aarch64(syms: &SymbolTable) -> bool {
    syms.get("_text")
        .or(syms.get("_stext"))
        .is_some_and(|t| t < START_KERNEL_MAP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kallsyms::Symbol;
    use memlens_core::{MemoryMetadata, MemoryView, ReadOp};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Zeros everywhere; counts the reads.
    #[derive(Default)]
    struct Zeros(AtomicUsize);

    impl MemoryView for Zeros {
        type Addr = PhysAddr;
        fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
            for op in ops {
                self.0.fetch_add(1, Ordering::Relaxed);
                op.buf.fill(0);
                op.result = Ok(());
            }
        }
        fn metadata(&self) -> MemoryMetadata<PhysAddr> {
            MemoryMetadata {
                max_addr: PhysAddr(u64::MAX),
                real_size: 1 << 30,
                readonly: true,
                preferred_batch: 1,
            }
        }
    }

    fn table(syms: &[(&str, u64)]) -> SymbolTable {
        SymbolTable::new(
            syms.iter()
                .map(|(n, a)| Symbol {
                    name: n.to_string(),
                    kind: 'T',
                    addr: *a,
                })
                .collect(),
        )
    }

    #[test]
    fn image_ends_saturate_and_spans_are_capped() {
        assert_eq!(end_of(u64::MAX - 10, None), u64::MAX);
        assert_eq!(end_of(0x1000, None), 0x1000 + DEFAULT_SPAN);
        assert_eq!(end_of(0x1000, Some(0x2000)), 0x2000);
        assert_eq!(span(0x1000, u64::MAX), MAX_IMAGE as usize);
        assert_eq!(span(u64::MAX, 0x1000), 0, "an end before the start");
    }

    /// `_text` near 2^64 (no overflow of `text + 128 MiB` or of the candidate step) and
    /// an `_end` 16 EiB away (at most MAX_IMAGE / 2 MiB candidates, not 2^43): the search
    /// ends with an error after a bounded number of reads.
    #[test]
    fn image_delta_search_is_bounded_for_hostile_symbols() {
        let z = Zeros::default();
        let t = table(&[("_text", u64::MAX - 0xfff), ("linux_banner", 0x1000)]);
        assert!(image_delta_from_kallsyms(&z, &t, PhysAddr(0x1234_5000)).is_err());
        assert!(z.0.load(Ordering::Relaxed) <= 2);
        let z = Zeros::default();
        let t = table(&[
            ("_text", 0xffff_ffff_8100_0000),
            ("_end", u64::MAX),
            ("linux_banner", 0xffff_ffff_8200_0000),
        ]);
        assert!(image_delta_from_kallsyms(&z, &t, PhysAddr(0x1234_5000)).is_err());
        let reads = z.0.load(Ordering::Relaxed);
        assert!(
            reads <= (MAX_IMAGE / (2 << 20)) as usize + 1,
            "{reads} reads"
        );
    }
}

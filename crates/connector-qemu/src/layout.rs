//! Guest-physical layout: which guest-physical ranges live where in the RAM block.
//! **Key decision: ask QEMU when we can, compute it when we must.** With a QMP socket the
//! flattened `system` address space (`info mtree -f`) is parsed: the RAM block's pieces
//! (`ram` and `rom`-mode pieces of the same region, with their `@offset` into it). Without
//! one, the layout is derived from the machine type and RAM size the way QEMU's board code
//! does it:
//!
//! - x86 `pc` (i440FX): below 4 GiB up to `max-ram-below-4g` (default 3.5 GiB); if RAM
//!   does not fit, the split is lowered to 3 GiB (gigabyte alignment) and the rest is
//!   remapped at 4 GiB. `q35`: split at 2 GiB when RAM ≥ 2.75 GiB, else all below. The
//!   legacy VGA window `[0xa0000, 0xc0000)` is not RAM.
//! - aarch64 `virt`: one range at 0x4000_0000.
//!
//! Both were checked against `info mtree -f` of QEMU 7.2 (see the tests).

use memlens_core::memmap::MapEntry;
use memlens_core::{MemoryMap, PhysAddr};

const GIB: u64 = 1 << 30;
const FOUR_GIB: u64 = 4 * GIB;

/// One line of a flattened view: `[start, end]` inclusive, kind, region name, offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatRange {
    /// First guest-physical address.
    pub start: u64,
    /// Last guest-physical address (inclusive).
    pub last: u64,
    /// `ram`, `rom`, `i/o`, `romd`, …
    pub kind: String,
    /// Memory region name.
    pub name: String,
    /// Offset into the region (`@…`, 0 when absent).
    pub offset: u64,
}

/// Parses the FlatView of address space `"memory"` (root `system`) from `info mtree -f`.
pub fn parse_mtree(text: &str) -> Vec<FlatRange> {
    let mut out = Vec::new();
    let mut in_system = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("FlatView #") {
            in_system = false;
            continue;
        }
        if t.starts_with("AS \"memory\"") {
            in_system = true;
            continue;
        }
        if !in_system {
            continue;
        }
        if let Some(r) = parse_flat_line(t) {
            out.push(r);
        }
    }
    out
}

/// `0000000000100000-00000000bfffffff (prio 0, ram): pc.ram @0000000000100000 KVM`
fn parse_flat_line(t: &str) -> Option<FlatRange> {
    let (range, rest) = t.split_once(' ')?;
    let (s, e) = range.split_once('-')?;
    let start = u64::from_str_radix(s, 16).ok()?;
    let last = u64::from_str_radix(e, 16).ok()?;
    let open = rest.find('(')?;
    let close = rest.find("):")?;
    let attrs = rest.get(open + 1..close)?;
    let kind = attrs.rsplit(',').next()?.trim().to_string();
    let mut words = rest.get(close + 2..)?.split_whitespace();
    let name = words.next()?.to_string();
    let offset = words
        .next()
        .and_then(|w| w.strip_prefix('@'))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    (last >= start).then_some(FlatRange {
        start,
        last,
        kind,
        name,
        offset,
    })
}

impl FlatRange {
    /// Length in bytes; `None` for the whole 64-bit space (2^64 bytes do not fit a u64).
    pub fn byte_len(&self) -> Option<u64> {
        (self.last - self.start).checked_add(1)
    }
}

/// The RAM block's pieces of a flat view: the `ram`/`rom` region with the most bytes
/// whose every offset lies inside `ram_size`; adjacent pieces are merged. All sums are
/// checked: the text comes from the monitor.
pub fn map_from_mtree(ranges: &[FlatRange], ram_size: u64) -> Result<MemoryMap, String> {
    let mut totals: Vec<(String, u64)> = Vec::new();
    for r in ranges.iter().filter(|r| r.kind == "ram" || r.kind == "rom") {
        let len = r.byte_len().unwrap_or(u64::MAX);
        match totals.iter_mut().find(|(n, _)| *n == r.name) {
            Some((_, t)) => *t = t.saturating_add(len),
            None => totals.push((r.name.clone(), len)),
        }
    }
    let fits = |name: &str| {
        ranges.iter().filter(|r| r.name == name).all(|r| {
            r.byte_len()
                .and_then(|l| r.offset.checked_add(l))
                .is_some_and(|e| e <= ram_size)
        })
    };
    let main = totals
        .iter()
        .filter(|(n, _)| fits(n))
        .max_by_key(|(_, t)| *t)
        .map(|(n, _)| n.clone())
        .ok_or_else(|| {
            format!("no RAM region of at most {ram_size:#x} bytes in the flat view of the system address space")
        })?;
    let mut entries: Vec<MapEntry> = Vec::new();
    for r in ranges
        .iter()
        .filter(|r| r.name == main && (r.kind == "ram" || r.kind == "rom"))
    {
        // Every piece of `main` fits in `ram_size` (checked above), so its length does.
        let len = r.byte_len().unwrap_or(u64::MAX);
        if let Some(last) = entries.last_mut() {
            let follows = last.base.0.checked_add(last.len) == Some(r.start)
                && last.backing.checked_add(last.len) == Some(r.offset);
            if let Some(merged) = last.len.checked_add(len).filter(|_| follows) {
                last.len = merged;
                continue;
            }
        }
        entries.push(MapEntry {
            base: PhysAddr(r.start),
            len,
            backing: r.offset,
        });
    }
    MemoryMap::new(entries).map_err(|e| e.to_string())
}

/// The layout QEMU's boards compute, for a target architecture (`x86_64`, `i386`,
/// `aarch64`), machine type (`None`: the default) and RAM size.
pub fn map_from_machine(
    target: &str,
    machine: Option<&str>,
    ram: u64,
    max_ram_below_4g: Option<u64>,
) -> Result<MemoryMap, String> {
    let e = |base: u64, len: u64, backing: u64| MapEntry {
        base: PhysAddr(base),
        len,
        backing,
    };
    let m = machine.unwrap_or("");
    let entries = match target {
        "x86_64" | "i386" => {
            let q35 = m == "q35" || m.starts_with("pc-q35");
            let pc =
                m.is_empty() || m == "pc" || m.starts_with("pc-i440fx") || m.starts_with("pc-");
            if !q35 && !pc {
                return Err(format!(
                    "machine type '{m}' has no built-in layout (known: pc, q35); give QEMU a QMP socket"
                ));
            }
            let below = if q35 {
                let mut low = if ram >= 0xb000_0000 {
                    0x8000_0000
                } else {
                    0xb000_0000
                };
                if let Some(max) = max_ram_below_4g {
                    low = low.min(max);
                }
                ram.min(low)
            } else {
                let mut low = max_ram_below_4g.unwrap_or(0xe000_0000).min(FOUR_GIB);
                if ram >= low && low > 0xc000_0000 {
                    low = 0xc000_0000;
                }
                ram.min(low)
            };
            let mut v = vec![e(0, below.min(0xa_0000), 0)];
            if below > 0xc_0000 {
                v.push(e(0xc_0000, below - 0xc_0000, 0xc_0000));
            }
            if ram > below {
                v.push(e(FOUR_GIB, ram - below, below));
            }
            v
        }
        "aarch64" | "arm" => {
            if m != "virt" && !m.starts_with("virt-") {
                return Err(format!(
                    "machine type '{m}' has no built-in layout (known: virt); give QEMU a QMP socket"
                ));
            }
            vec![e(0x4000_0000, ram, 0)]
        }
        t => {
            return Err(format!(
                "no built-in layout for target '{t}'; give QEMU a QMP socket"
            ))
        }
    };
    MemoryMap::new(entries.into_iter().filter(|x| x.len > 0).collect()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `info mtree -f` of `qemu-system-x86_64 -M pc -m 4G` (QEMU 7.2), abridged.
    const PC_4G: &str = "FlatView #0
 AS \"memory\", root: system
 AS \"cpu-memory-0\", root: system
 Root memory region: system
  0000000000000000-000000000009ffff (prio 0, ram): pc.ram
  00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem
  00000000000c0000-00000000000c9fff (prio 0, rom): pc.ram @00000000000c0000
  00000000000ca000-00000000000ccfff (prio 0, ram): pc.ram @00000000000ca000
  00000000000cd000-00000000000e7fff (prio 0, rom): pc.ram @00000000000cd000
  00000000000e8000-00000000000effff (prio 0, ram): pc.ram @00000000000e8000
  00000000000f0000-00000000000fffff (prio 0, rom): pc.ram @00000000000f0000
  0000000000100000-00000000bfffffff (prio 0, ram): pc.ram @0000000000100000
  00000000fd000000-00000000fdffffff (prio 1, ram): vga.vram
  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios
  0000000100000000-000000013fffffff (prio 0, ram): pc.ram @00000000c0000000

FlatView #2
 AS \"I/O\", root: io
 Root memory region: io
  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan
";

    #[test]
    fn mtree_pc_4g() {
        let r = parse_mtree(PC_4G);
        assert_eq!(r.len(), 12);
        let m = map_from_mtree(&r, 4 * GIB).unwrap();
        let want = map_from_machine("x86_64", Some("pc"), 4 * GIB, None).unwrap();
        assert_eq!(m, want);
        assert_eq!(
            m.entries().last().unwrap(),
            &MapEntry {
                base: PhysAddr(FOUR_GIB),
                len: GIB,
                backing: 3 * GIB
            }
        );
    }

    #[test]
    fn machine_layouts() {
        let m = |t, mt, ram, max| {
            map_from_machine(t, mt, ram, max)
                .unwrap()
                .entries()
                .iter()
                .map(|e| (e.base.0, e.len, e.backing))
                .collect::<Vec<_>>()
        };
        let mib = 1u64 << 20;
        assert_eq!(
            m("x86_64", None, 256 * mib, None),
            vec![(0, 0xa_0000, 0), (0xc_0000, 256 * mib - 0xc_0000, 0xc_0000)]
        );
        // pc: 3.5 GiB fits below 4 GiB only when RAM < 3.5 GiB.
        assert_eq!(m("x86_64", Some("pc"), 3 * GIB + 256 * mib, None).len(), 2);
        assert_eq!(
            m("x86_64", Some("pc"), 3 * GIB + 512 * mib, None)[2],
            (FOUR_GIB, 512 * mib, 3 * GIB)
        );
        // q35 splits at 2 GiB from 2.75 GiB on.
        assert_eq!(m("x86_64", Some("q35"), 2 * GIB + 512 * mib, None).len(), 2);
        assert_eq!(
            m("x86_64", Some("q35"), 3 * GIB, None)[2],
            (FOUR_GIB, GIB, 2 * GIB)
        );
        assert_eq!(
            m("x86_64", Some("pc"), 2 * GIB, Some(GIB))[2],
            (FOUR_GIB, GIB, GIB)
        );
        assert_eq!(
            m("aarch64", Some("virt"), GIB, None),
            vec![(0x4000_0000, GIB, 0)]
        );
        assert!(map_from_machine("aarch64", None, GIB, None).is_err());
        assert!(map_from_machine("x86_64", Some("microvm"), GIB, None).is_err());
        assert!(map_from_machine("riscv64", None, GIB, None).is_err());
    }

    /// Ranges covering the whole 64-bit space or ending at its top: no overflow, and no
    /// such range is taken for RAM.
    #[test]
    fn mtree_extremes_do_not_overflow() {
        let text = "FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n  0000000000000000-ffffffffffffffff (prio 0, ram): huge\n  ffffffffffff0000-ffffffffffffffff (prio 0, ram): huge @ffffffffffff0000\n  0000000000000000-000000000009ffff (prio 0, ram): pc.ram\n";
        let r = parse_mtree(text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].byte_len(), None);
        let m = map_from_mtree(&r, GIB).unwrap();
        assert_eq!(m.entries().len(), 1);
        assert_eq!(m.entries()[0].len, 0xa_0000);
        assert!(map_from_mtree(&r[..2], u64::MAX).is_err());
    }

    #[test]
    fn mtree_garbage() {
        assert!(parse_mtree("junk\nFlatView #0\n AS \"memory\"\n zz-yy (prio\n").is_empty());
        assert!(map_from_mtree(&[], GIB).is_err());
    }
}

//! Synthetic page tables for every architecture, built by `common::Builder` (independent of
//! the crate's types), checked against expected values and the reference walker.

mod common;

use std::sync::Arc;

use common::{compare, crate_mmu, mmu, ref_translate, roots, Builder, Fmt, Perm, Phys, ALL};
use memlens_arch::{
    find_mappings, page_map, translate, translate_vec, ArchError, Mmu, PageMapOptions, Roots,
    TlbConfig, VirtualView,
};
use memlens_core::{Error, MemoryViewExt, PhysAddr, PhysicalMemory, VirtAddr};

const RW_USER_NX: Perm = Perm {
    w: true,
    u: true,
    nx: true,
};
const RX_KERNEL: Perm = Perm {
    w: false,
    u: false,
    nx: false,
};
const RW_KERNEL_NX: Perm = Perm {
    w: true,
    u: false,
    nx: true,
};

#[test]
fn x86_64_pages_sizes_and_flags() {
    let mut b = Builder::new(Fmt::X64, 0x10_0000);
    assert!(b.map(0x7f00_0000_1000, 0x1234_5000, 0x1000, RW_USER_NX));
    assert!(b.map(0xffff_ffff_8100_0000, 0x0100_0000, 0x20_0000, RX_KERNEL));
    assert!(b.map(0xffff_8880_0000_0000, 0x4000_0000, 1 << 30, RW_KERNEL_NX));
    let phys = b.phys();
    let m = Mmu::x86_64();
    let r = roots(&b);
    let t = translate(&phys, &m, &r, VirtAddr(0x7f00_0000_1abc)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x1234_5abc));
    assert_eq!(t.size.bytes(), 4096);
    assert!(t.flags.writable && t.flags.user && t.flags.nx);
    let t = translate(&phys, &m, &r, VirtAddr(0xffff_ffff_8112_3456)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x0112_3456));
    assert_eq!(t.size.bytes(), 2 << 20);
    assert!(!t.flags.writable && !t.flags.user && !t.flags.nx);
    let t = translate(&phys, &m, &r, VirtAddr(0xffff_8880_3fff_fff8)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x7fff_fff8));
    assert_eq!(t.size.bytes(), 1 << 30);
    assert!(t.flags.writable && !t.flags.user && t.flags.nx);
    assert_eq!(t.flags.to_string(), "rw- kernel");
}

#[test]
fn not_present_levels_and_non_canonical() {
    let mut b = Builder::new(Fmt::X64, 0x10_0000);
    assert!(b.map(0x40_0000_0000, 0x5000, 0x1000, RW_USER_NX));
    let phys = b.phys();
    let m = Mmu::x86_64();
    let r = roots(&b);
    let level = |va: u64| match translate(&phys, &m, &r, VirtAddr(va)) {
        Err(Error::NotPresent { level, va: v, root }) => {
            assert_eq!(v, VirtAddr(va));
            assert_eq!(root, PhysAddr(b.root_lo));
            level
        }
        other => panic!("{va:#x}: {other:?}"),
    };
    assert_eq!(level(0x1000_0000_0000), 4); // other PML4 slot
    assert_eq!(level(0x40_0000_0000 + (1 << 30)), 3); // same PDPT, other slot
    assert_eq!(level(0x40_0000_0000 + (1 << 21)), 2);
    assert_eq!(level(0x40_0000_0000 + (1 << 12)), 1);
    for va in [
        0x0000_8000_0000_0000u64,
        0xffff_7fff_ffff_ffff,
        0x1234_5678_9abc_def0,
    ] {
        assert!(matches!(
            translate(&phys, &m, &r, VirtAddr(va)),
            Err(Error::NonCanonical { arch, .. }) if arch == "x86_64"
        ));
    }
    // 5-level accepts 57-bit addresses that 4-level rejects.
    let m5 = Mmu::x86_64_la57();
    assert!(m5.is_canonical(0x0080_0000_0000_0000));
    assert!(!m.is_canonical(0x0080_0000_0000_0000));
    assert!(!m5.is_canonical(0x0100_0000_0000_0000));
    assert!(m5.is_canonical(0xff00_0000_0000_0000));
}

#[test]
fn every_format_matches_builder_and_reference() {
    for f in ALL {
        let m = crate_mmu(f);
        let g = common::granule(f);
        let geo = common::geometry(f);
        let sizes: Vec<u64> = geo
            .iter()
            .enumerate()
            .filter(|(i, l)| l.2 || i + 1 == geo.len())
            .map(|(_, l)| 1u64 << l.0)
            .collect();
        let mut b = Builder::new(f, 0x10_0000);
        let vb = common::va_bits(f);
        let lower_top: u64 = match f {
            Fmt::X64 | Fmt::X64La57 => 1u64 << (vb - 1),
            _ => 1u64 << vb.min(63),
        };
        let mut mapped = 0;
        let largest = sizes.iter().copied().max().unwrap();
        for (k, &size) in sizes.iter().enumerate() {
            // One page of each size in the lower half, one in the upper half.
            let va_lo = (lower_top / 4).next_multiple_of(largest) + (k as u64) * (largest * 4);
            let pa = (0x8000_0000u64 + k as u64 * largest * 4).next_multiple_of(largest);
            assert!(b.map(va_lo, pa, size, RW_USER_NX), "{f:?} lower {size:#x}");
            mapped += 1;
            if !matches!(f, Fmt::X86 | Fmt::Pae) {
                let va_hi = 0u64.wrapping_sub(lower_top / 2).next_multiple_of(largest)
                    + (k as u64) * (largest * 4);
                assert!(b.map(va_hi, pa + size, size, RX_KERNEL), "{f:?} upper");
                mapped += 1;
            }
        }
        let phys = b.phys();
        let r = roots(&b);
        let mut vas = Vec::new();
        for mp in &b.maps {
            vas.extend([mp.va, mp.va + 8, mp.va + mp.size - 1, mp.va + mp.size]);
            if mp.size > g {
                vas.push(mp.va + g + 0x18);
            }
        }
        vas.extend([
            lower_top.wrapping_mul(3),
            0xdead_0000,
            0x8000_0000_0000_0000,
        ]);
        let vas_t: Vec<VirtAddr> = vas.iter().map(|v| VirtAddr(*v)).collect();
        let got = translate_vec(&phys, &m, &r, &vas_t);
        for (va, g) in vas.iter().zip(&got) {
            let want = ref_translate(f, &phys, b.root_lo, b.root_hi, *va);
            if let Err(e) = compare(g, want) {
                panic!("{f:?} va {va:#x}: {e}");
            }
        }
        // The builder's own record agrees with the expected page data.
        for mp in &b.maps {
            let t = translate(&phys, &m, &r, VirtAddr(mp.va + 8)).unwrap();
            assert_eq!(t.pa.0, mp.pa + 8, "{f:?}");
            assert_eq!(t.size.bytes(), mp.size, "{f:?}");
            assert_eq!(
                (t.flags.writable, t.flags.user, t.flags.nx),
                (mp.perm.w, mp.perm.u, mp.perm.nx),
                "{f:?}"
            );
        }
        // The page map lists exactly these pages (none of them adjacent).
        let pm = page_map(
            &phys,
            &m,
            &r,
            &PageMapOptions {
                physically_contiguous: true,
                ..Default::default()
            },
        );
        let mut want: Vec<(u64, u64, u64)> = b.maps.iter().map(|m| (m.va, m.size, m.pa)).collect();
        want.sort();
        let have: Vec<(u64, u64, u64)> =
            pm.ranges.iter().map(|r| (r.va.0, r.len, r.pa.0)).collect();
        assert_eq!(have, want, "{f:?}");
        assert_eq!(pm.stats.pages, mapped as u64, "{f:?}");
        assert!(!pm.stats.truncated);
    }
}

#[test]
fn x86_pse36_and_pae_root_alignment() {
    let mut b = Builder::new(Fmt::X86, 0x10_0000);
    assert!(b.map(0x8040_0000, 0x3_0040_0000, 4 << 20, RX_KERNEL));
    let t = translate(&b.phys(), &Mmu::x86(), &roots(&b), VirtAddr(0x8041_2345)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x3_0041_2345));
    assert!(!t.flags.nx);

    // PAE: CR3 is 32-byte aligned, not page aligned.
    let mut b = Builder::new(Fmt::Pae, 0x10_0020);
    assert_eq!(b.root_lo % 4096, 0x20);
    assert!(b.map(0xc000_0000, 0x20_0000, 2 << 20, RW_KERNEL_NX));
    assert!(b.map(0x0804_8000, 0x9000, 4096, RW_USER_NX));
    let p = b.phys();
    let t = translate(&p, &Mmu::x86_pae(), &roots(&b), VirtAddr(0xc000_1000)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x20_1000));
    assert!(t.flags.nx && t.flags.writable && !t.flags.user);
    let t = translate(&p, &Mmu::x86_pae(), &roots(&b), VirtAddr(0x0804_8010)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x9010));
    assert!(matches!(
        translate(&p, &Mmu::x86_pae(), &roots(&b), VirtAddr(0x1_0000_0000)),
        Err(Error::NonCanonical { .. })
    ));
}

#[test]
fn bad_entries_are_reported_with_level() {
    // PS bit in a PML4 entry is reserved.
    let mut b = Builder::new(Fmt::X64, 0x10_0000);
    let root = b.root_lo;
    b.write(root, 0x20_0000 | 0x80 | 1);
    match translate(&b.phys(), &Mmu::x86_64(), &roots(&b), VirtAddr(0x1000)) {
        Err(Error::BadEntry {
            level: 4, entry, ..
        }) => assert_eq!(entry, 0x20_0081),
        other => panic!("{other:?}"),
    }
    // aarch64: a block descriptor (bits 01) at the last level is reserved.
    let f = Fmt::A64 { g: 12, va: 48 };
    let mut b = Builder::new(f, 0x10_0000);
    assert!(b.map(0x40_0000, 0x9000, 4096, RW_USER_NX));
    let phys = b.phys();
    let t = translate(&phys, &mmu(f), &roots(&b), VirtAddr(0x40_0000)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x9000));
    // Find the L3 entry through the reference and turn it into a block.
    let l0 = b.read(b.root_lo);
    let l1 = b.read(b.table_addr(l0));
    let l2 = b.read(b.table_addr(l1) + 2 * 8);
    let l3_at = b.table_addr(l2);
    let e = b.read(l3_at);
    b.write(l3_at, e & !2);
    assert!(matches!(
        translate(&b.phys(), &mmu(f), &roots(&b), VirtAddr(0x40_0000)),
        Err(Error::BadEntry { level: 1, .. })
    ));
}

#[test]
fn aarch64_halves_dbm_and_table_restrictions() {
    let f = Fmt::A64 { g: 12, va: 48 };
    let mut b = Builder::new(f, 0x10_0000);
    assert!(b.map(0x0000_aaaa_0000_0000, 0x1000_0000, 4096, RW_USER_NX));
    assert!(b.map(0xffff_0000_1000_0000, 0x2000_0000, 2 << 20, RX_KERNEL));
    let m = mmu(f);
    let r = roots(&b);
    assert_ne!(r.lower, r.upper);
    let p = b.phys();
    let t = translate(&p, &m, &r, VirtAddr(0x0000_aaaa_0000_0010)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x1000_0010));
    assert!(t.flags.user && t.flags.writable && t.flags.nx);
    let t = translate(&p, &m, &r, VirtAddr(0xffff_0000_1000_0010)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x2000_0010));
    assert!(!t.flags.user && !t.flags.writable && !t.flags.nx);
    // Between the halves: not canonical. The upper half's address in TTBR0 is unmapped.
    assert!(matches!(
        translate(&p, &m, &r, VirtAddr(0x0001_0000_0000_0000)),
        Err(Error::NonCanonical { .. })
    ));
    assert!(matches!(
        translate(&p, &m, &r, VirtAddr(0x0000_0000_1000_0000)),
        Err(Error::NotPresent { level: 4, .. })
    ));
    // DBM: read-only by AP[2] but writable-clean for Linux.
    let l0_at = b.root_lo + ((0x0000_aaaa_0000_0000u64 >> 39) & 511) * 8;
    let l1_at = b.table_addr(b.read(l0_at)) + ((0x0000_aaaa_0000_0000u64 >> 30) & 511) * 8;
    let l2_at = b.table_addr(b.read(l1_at));
    let l3_at = b.table_addr(b.read(l2_at));
    let e = b.read(l3_at);
    b.write(l3_at, e | (1 << 7));
    let t = translate(&b.phys(), &m, &r, VirtAddr(0x0000_aaaa_0000_0000)).unwrap();
    assert!(!t.flags.writable);
    b.write(l3_at, e | (1 << 7) | (1 << 51));
    let t = translate(&b.phys(), &m, &r, VirtAddr(0x0000_aaaa_0000_0000)).unwrap();
    assert!(t.flags.writable);
    // APTable[0] on the L1 table entry removes EL0 access below it; APTable[1] removes
    // write; UXNTable makes the user page non-executable... it already is, so test with a
    // fresh executable user page.
    b.write(l3_at, e & !(1 << 54));
    let t = translate(&b.phys(), &m, &r, VirtAddr(0x0000_aaaa_0000_0000)).unwrap();
    assert!(!t.flags.nx && t.flags.user && t.flags.writable);
    let l1 = b.read(l1_at);
    b.write(l1_at, l1 | (1 << 60));
    let t = translate(&b.phys(), &m, &r, VirtAddr(0x0000_aaaa_0000_0000)).unwrap();
    assert!(t.flags.nx);
    b.write(l1_at, l1 | (1 << 62) | (1 << 61));
    let t = translate(&b.phys(), &m, &r, VirtAddr(0x0000_aaaa_0000_0000)).unwrap();
    assert!(!t.flags.writable && !t.flags.user);
}

#[test]
fn one_read_batch_per_level() {
    let mut b = Builder::new(Fmt::X64, 0x10_0000);
    let mut vas = Vec::new();
    for i in 0..1000u64 {
        let va = 0x5555_0000_0000 + i * 0x1_3000;
        if b.map(va, 0x1_0000_0000 + i * 4096, 4096, RW_USER_NX) {
            vas.push(VirtAddr(va + 0x10));
        }
    }
    assert!(vas.len() > 900);
    let phys = b.phys();
    phys.reset_counts();
    let out = translate_vec(&phys, &Mmu::x86_64(), &roots(&b), &vas);
    assert!(out.iter().all(|r| r.is_ok()));
    assert_eq!(phys.calls(), 4, "one read_batch per level");
    // ... and each table page read once: ops = 1 (PML4) + 1 (PDPT) + PDs + PTs.
    let mut pts: Vec<u64> = vas.iter().map(|v| v.0 >> 21).collect();
    pts.dedup();
    let mut pds: Vec<u64> = vas.iter().map(|v| v.0 >> 30).collect();
    pds.dedup();
    assert_eq!(
        phys.ops.load(std::sync::atomic::Ordering::Relaxed),
        2 + pds.len() + pts.len()
    );
}

#[test]
fn roots_outside_memory_and_garbage_fail_per_address() {
    let phys = Phys::new(vec![0xffu8; 64 << 10]);
    let m = Mmu::x86_64();
    for root in [0u64, 0x1000, 0xffff_f000, 0x000f_ffff_ffff_f000] {
        let vas: Vec<VirtAddr> = (0..64u64).map(|i| VirtAddr(i << 30)).collect();
        let out = translate_vec(&phys, &m, &Roots::single(PhysAddr(root)), &vas);
        assert_eq!(out.len(), 64);
        assert!(out.iter().all(|r| r.is_err()), "root {root:#x}");
    }
    let pm = page_map(
        &phys,
        &m,
        &Roots::single(PhysAddr(0)),
        &PageMapOptions::default(),
    );
    assert!(pm.ranges.is_empty());
}

#[test]
fn self_map_and_fan_out_are_bounded() {
    let mut b = Builder::new(Fmt::X64, 0x10_0000);
    assert!(b.map(0x1000, 0x9000, 4096, RW_USER_NX));
    // Recursive self-map at PML4[510] (Windows/old Linux style).
    let root = b.root_lo;
    b.write(root + 510 * 8, root | 3);
    let phys = b.phys();
    let m = Mmu::x86_64();
    let r = roots(&b);
    let pm = page_map(&phys, &m, &r, &PageMapOptions::default());
    assert_eq!(pm.ranges.len(), 1);
    assert!(pm.stats.loops_skipped >= 1);
    // Translation through the self-map reaches the PML4 itself as a 4 KiB page.
    let selfmap_va =
        0xffff_0000_0000_0000u64 | (510 << 39) | (510 << 30) | (510 << 21) | (510 << 12);
    let t = translate(&phys, &m, &r, VirtAddr(selfmap_va)).unwrap();
    assert_eq!(t.pa.0, root);

    // Fan-out: every entry of every level points to the same next table: 512^3 leaf
    // tables by naive walking. The caps stop it.
    let mut mem = vec![0u8; 0x5000];
    let tables = [0x1000u64, 0x2000, 0x3000, 0x4000];
    for (i, t) in tables.iter().enumerate() {
        for k in 0..512u64 {
            let e = if i < 3 {
                tables[i + 1] | 7
            } else {
                (k << 12) | 7
            };
            let at = (*t + k * 8) as usize;
            mem[at..at + 8].copy_from_slice(&e.to_le_bytes());
        }
    }
    let phys = Phys::new(mem);
    let opts = PageMapOptions {
        max_tables: 5000,
        max_ranges: 100_000,
        ..Default::default()
    };
    let pm = page_map(&phys, &m, &Roots::single(PhysAddr(0x1000)), &opts);
    assert!(pm.stats.truncated);
    assert!(pm.stats.tables_read <= 5000);
    assert!(pm.ranges.len() <= 100_000);
    // Reverse lookups are capped the same way.
    let (vas, st) = find_mappings(
        &phys,
        &m,
        &Roots::single(PhysAddr(0x1000)),
        PhysAddr(0x5000),
        &PageMapOptions {
            max_ranges: 10,
            ..opts
        },
    );
    assert_eq!(vas.len(), 10);
    assert!(st.truncated);
}

#[test]
fn reverse_mapping_finds_aliases() {
    let mut b = Builder::new(Fmt::X64, 0x10_0000);
    assert!(b.map(0x7000_0000, 0x4_2000, 4096, RW_USER_NX));
    assert!(b.map(0xffff_8880_0000_0000, 0, 1 << 30, RW_KERNEL_NX));
    assert!(b.map(0x7000_5000, 0x9_9000, 4096, RW_USER_NX));
    let (vas, _) = find_mappings(
        &b.phys(),
        &Mmu::x86_64(),
        &roots(&b),
        PhysAddr(0x4_2123),
        &PageMapOptions::default(),
    );
    assert_eq!(
        vas,
        vec![VirtAddr(0x7000_0123), VirtAddr(0xffff_8880_0004_2123)]
    );
}

/// Memory with tables at the start and data pages at known places.
fn view_fixture() -> (Builder, Vec<u8>) {
    let mut b = Builder::new(Fmt::X64, 0x1000);
    // Two adjacent user pages backed by non-adjacent frames, then a hole, then a page.
    assert!(b.map(0x40_0000, 0x20_0000, 4096, RW_USER_NX));
    assert!(b.map(0x40_1000, 0x20_3000, 4096, RW_USER_NX));
    assert!(b.map(0x40_3000, 0x20_1000, 4096, RW_USER_NX));
    let mut mem = b.mem.clone();
    mem.resize(0x30_0000, 0);
    for (pa, fill) in [(0x20_0000usize, b'A'), (0x20_3000, b'B'), (0x20_1000, b'C')] {
        mem[pa..pa + 4096].fill(fill);
    }
    mem[0x20_0ff0..0x20_0ffc].copy_from_slice(b"hello world\0");
    (b, mem)
}

#[test]
fn view_reads_split_pages_and_report_partial() {
    let (b, mem) = view_fixture();
    let view =
        VirtualView::new(Phys::new(mem), Mmu::x86_64(), roots(&b)).with_tlb(TlbConfig::default());
    // Across two pages with distant frames.
    let v = view.read_vec(VirtAddr(0x40_0ffe), 4).unwrap();
    assert_eq!(v, b"AABB");
    assert_eq!(
        view.read_cstr(VirtAddr(0x40_0ff0), 64).unwrap(),
        "hello world"
    );
    // 3 pages: mapped, mapped, hole, mapped.
    let mut buf = vec![0u8; 4 * 4096];
    let err = view.read_into(VirtAddr(0x40_0000), &mut buf).unwrap_err();
    match err {
        Error::Partial { total, failed } => {
            assert_eq!(total, 4 * 4096);
            assert_eq!(failed.len(), 1);
            assert_eq!((failed[0].offset, failed[0].len), (2 * 4096, 4096));
            assert!(matches!(
                *failed[0].cause,
                Error::NotPresent {
                    level: 1,
                    va: VirtAddr(0x40_2000),
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
    assert!(buf[..4096 - 16].iter().all(|b| *b == b'A'));
    assert!(buf[4096..8192].iter().all(|b| *b == b'B'));
    assert!(buf[3 * 4096..].iter().all(|b| *b == b'C'));
    // Entirely unmapped: the plain cause, not Partial.
    assert!(matches!(
        view.read_u64(VirtAddr(0x40_2008)),
        Err(Error::NotPresent { .. })
    ));
    // Non-canonical.
    assert!(matches!(
        view.read_u64(VirtAddr(0x8000_0000_0000)),
        Err(Error::NonCanonical { .. })
    ));
}

#[test]
fn view_over_arc_dyn_with_caches_is_send_sync() {
    let (b, mem) = view_fixture();
    let phys: Arc<dyn PhysicalMemory> = Arc::new(Phys::new(mem));
    let view = VirtualView::new(phys, Mmu::x86_64(), roots(&b))
        .with_tlb(TlbConfig::default())
        .with_table_cache(memlens_core::middleware::cache::CacheConfig::default());
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send_sync(&view);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..200 {
                    assert_eq!(view.read_vec(VirtAddr(0x40_0ffe), 4).unwrap(), b"AABB");
                    assert_eq!(
                        view.read_u64(VirtAddr(0x40_3000)).unwrap(),
                        0x4343_4343_4343_4343
                    );
                }
            });
        }
    });
    let ranges = memlens_core::MemoryView::ranges(&view);
    assert_eq!(ranges.len(), 2);
    assert_eq!(
        (ranges[0].base, ranges[0].len),
        (VirtAddr(0x40_0000), 0x2000)
    );
}

#[test]
fn arch_names() {
    for n in memlens_arch::ARCH_NAMES {
        let m = Mmu::from_name(n).unwrap();
        assert_eq!(m.name(), *n);
    }
    let err = Mmu::from_name("sparc").unwrap_err();
    assert!(matches!(err, ArchError::UnknownArch { .. }));
    let msg = err.to_string();
    assert!(msg.contains("sparc") && msg.contains("x86_64-la57") && msg.contains("aarch64-64k"));
    assert_eq!(
        Mmu::aarch64(memlens_arch::Granule::K4, 52).unwrap().name(),
        "aarch64-52"
    );
    assert!(Mmu::aarch64(memlens_arch::Granule::K4, 50).is_err());
    assert_eq!(
        mmu(Fmt::A64 { g: 12, va: 52 }).page_sizes(),
        vec![4096, 2 << 20, 1 << 30, 512 << 30]
    );
    assert_eq!(
        mmu(Fmt::A64 { g: 14, va: 52 }).page_sizes(),
        vec![16 << 10, 32 << 20, 64 << 30]
    );
    assert!(Mmu::aarch64(memlens_arch::Granule::K16, 20).is_err());
    assert_eq!(Mmu::x86_64().page_sizes(), vec![4096, 2 << 20, 1 << 30]);
    assert_eq!(
        mmu(Fmt::A64 { g: 16, va: 48 }).page_sizes(),
        vec![64 << 10, 512 << 20]
    );
}

#[test]
fn from_registers() {
    use memlens_core::cpu::{Aarch64Registers, X86Registers};
    use memlens_core::CpuRegisters;
    let regs = CpuRegisters::X86(X86Registers {
        cr3: 0x1234_5000 | 0x801,
        cr4: 1 << 12,
        ..Default::default()
    });
    let (m, r) = Mmu::from_registers(&regs).unwrap();
    assert_eq!(m.name(), "x86_64-la57");
    assert_eq!(m.mask_root(r.lower.0), 0x1234_5000);
    let regs = CpuRegisters::Aarch64(Aarch64Registers {
        ttbr0: Some(0x0001_0000_4000_0000),
        ttbr1: Some(0x4100_0000),
        tcr: Some((16 << 16) | (2 << 30) | 16),
        ..Default::default()
    });
    let (m, r) = Mmu::from_registers(&regs).unwrap();
    assert_eq!(m.name(), "aarch64");
    assert_eq!(m.mask_root(r.lower.0), 0x4000_0000);
    // 64 KiB granule in both halves (TG1 = 3, TG0 = 1), 48-bit.
    let regs = CpuRegisters::Aarch64(Aarch64Registers {
        ttbr0: Some(0x4000_0000),
        ttbr1: Some(0x4100_0000),
        tcr: Some((16 << 16) | (3 << 30) | (1 << 14) | 16),
        ..Default::default()
    });
    assert_eq!(Mmu::from_registers(&regs).unwrap().0.name(), "aarch64-64k");
    // LPA2: TCR_EL1.DS = 1 with 52-bit halves (T1SZ = T0SZ = 12), 4 KiB granule; TTBR
    // bits 5:2 carry the root's PA[51:48].
    let ds = 1u64 << 59;
    let regs = CpuRegisters::Aarch64(Aarch64Registers {
        ttbr0: Some(0x4000_0000 | (0x3 << 2)),
        ttbr1: Some(0x4100_0000),
        tcr: Some(ds | (12 << 16) | (2 << 30) | 12),
        ..Default::default()
    });
    let (m, r) = Mmu::from_registers(&regs).unwrap();
    assert_eq!(m.name(), "aarch64-52");
    assert_eq!(m.mask_root(r.lower.0), 0x0003_0000_4000_0000);
    for tcr in [
        ds | (16 << 16) | (2 << 30) | 16, // DS with 48-bit halves
        (12 << 16) | (2 << 30) | 12,      // 52-bit 4 KiB halves without DS
    ] {
        let regs = CpuRegisters::Aarch64(Aarch64Registers {
            ttbr0: Some(0x4000_0000),
            ttbr1: Some(0x4100_0000),
            tcr: Some(tcr),
            ..Default::default()
        });
        let e = Mmu::from_registers(&regs).unwrap_err().to_string();
        assert!(e.contains("DS = ") && e.contains("LPA2"), "{e}");
    }
    // Halves with different settings cannot share one description: an error, not a guess.
    for tcr in [
        (16 << 16) | (2 << 30) | 25,             // T0SZ 25 vs T1SZ 16
        (16 << 16) | (2 << 30) | (2 << 14) | 16, // TG0 16 KiB vs TG1 4 KiB
    ] {
        let regs = CpuRegisters::Aarch64(Aarch64Registers {
            ttbr0: Some(0x4000_0000),
            ttbr1: Some(0x4100_0000),
            tcr: Some(tcr),
            ..Default::default()
        });
        let e = Mmu::from_registers(&regs).unwrap_err().to_string();
        assert!(
            e.contains("TTBR0 half") && e.contains("not supported"),
            "{e}"
        );
    }
    let _ = Fmt::X64;
}

/// The mode choices of `from_registers` read EFER.LMA, CR4.PAE and CR4.LA57 by name; these
/// pin which MMU each combination of real register values selects.
#[test]
fn from_registers_modes_and_linux_values() {
    use memlens_core::cpu::{Aarch64Registers, X86Registers};
    use memlens_core::CpuRegisters;
    let x86 = |cr4: u64, efer: Option<u64>| {
        let regs = CpuRegisters::X86(X86Registers {
            cr0: 0x8005_0033,
            cr3: 0x1000,
            cr4,
            efer,
            ..Default::default()
        });
        Mmu::from_registers(&regs).unwrap().0.name()
    };
    // Linux x86-64 values: EFER 0xd01 (LMA), CR4 with and without LA57.
    assert_eq!(x86(0x3506f0, Some(0xd01)), "x86_64");
    assert_eq!(x86(0x751ef0, Some(0xd01)), "x86_64-la57");
    // EFER unknown: long mode assumed.
    assert_eq!(x86(0x6f0, None), "x86_64");
    // LME without LMA (paging not yet on) is not long mode: PAE or not by CR4.PAE.
    assert_eq!(x86(0x6f0, Some(0x100)), "x86-pae");
    assert_eq!(x86(0x690, Some(0)), "x86");
    let arm = |tcr: u64| {
        let regs = CpuRegisters::Aarch64(Aarch64Registers {
            ttbr0: Some(0x4000_0000),
            ttbr1: Some(0x4100_0000),
            tcr: Some(tcr),
            ..Default::default()
        });
        Mmu::from_registers(&regs).map(|(m, _)| (m.name(), m.va_bits()))
    };
    // Linux's TCR_EL1 with 4 KiB pages: 48-bit and 39-bit halves.
    assert_eq!(arm(0x0000_0034_b550_3510).unwrap(), ("aarch64", 48));
    assert_eq!(arm(0x0000_0032_b559_3519).unwrap(), ("aarch64", 39));
    // Reserved granule encodings (TG1 = 0b00, TG0 = 0b11) read as 4 KiB, as before.
    assert_eq!(arm((16 << 16) | (3 << 14) | 16).unwrap(), ("aarch64", 48));
    // 16 KiB halves: TG1 = 0b01, TG0 = 0b10.
    assert_eq!(
        arm((17 << 16) | (1 << 30) | (2 << 14) | 17).unwrap(),
        ("aarch64-16k", 47)
    );
}

#[test]
fn kpti_user_cr3_and_kernel_copy() {
    let mut b = Builder::new(Fmt::X64, 0x10_0000);
    assert!(b.map(0x7f00_0000_0000, 0x5_0000, 4096, RW_USER_NX));
    assert!(b.map(0xffff_ffff_8100_0000, 0x20_0000, 2 << 20, RX_KERNEL));
    // Kernel PGD copy at an 8 KiB-aligned address, user copy 4 KiB above it holding only
    // the user half (as Linux's PTI does).
    let k = b.next.next_multiple_of(0x2000);
    b.mem.resize((k + 0x2000) as usize, 0);
    let root = b.root_lo;
    for i in 0..512u64 {
        let e = b.read(root + i * 8);
        b.write(k + i * 8, e);
        if i < 256 {
            b.write(k + 0x1000 + i * 8, e);
        }
    }
    let phys = b.phys();
    let m = Mmu::x86_64();
    let user_cr3 = Roots::single(PhysAddr(k + 0x1000));
    assert!(translate(&phys, &m, &user_cr3, VirtAddr(0x7f00_0000_0010)).is_ok());
    assert!(matches!(
        translate(&phys, &m, &user_cr3, VirtAddr(0xffff_ffff_8100_0010)),
        Err(Error::NotPresent { level: 4, .. })
    ));
    let kernel = user_cr3.x86_kpti_kernel();
    assert_eq!(kernel.lower, PhysAddr(k));
    let t = translate(&phys, &m, &kernel, VirtAddr(0xffff_ffff_8100_0010)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x20_0010));
    let t = translate(&phys, &m, &kernel, VirtAddr(0x7f00_0000_0010)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x5_0010));
}

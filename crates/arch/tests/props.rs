//! Property tests: the batched walker, the TLB path and the page map against the naive
//! reference walker of `common` — on builder-made tables and on random bytes.

mod common;

use common::{compare, crate_mmu, ref_translate, Builder, Fmt, Perm, Phys, RefOut, ALL};
use memlens_arch::{
    find_mappings, page_map, translate, translate_vec, PageMapOptions, Roots, TlbConfig,
    VirtualView,
};
use memlens_core::{Error, MemoryView, PhysAddr, ReadOp, VirtAddr};
use proptest::prelude::*;

fn sizes(f: Fmt) -> Vec<u64> {
    let geo = common::geometry(f);
    geo.iter()
        .enumerate()
        .filter(|(i, l)| l.2 || i + 1 == geo.len())
        .map(|(_, l)| 1u64 << l.0)
        .collect()
}

fn split_halves(f: Fmt) -> bool {
    !matches!(f, Fmt::X86 | Fmt::Pae)
}

fn lower_top(f: Fmt) -> u64 {
    let vb = common::va_bits(f);
    match f {
        Fmt::X64 | Fmt::X64La57 => 1u64 << (vb - 1),
        _ => 1u64 << vb.min(63),
    }
}

/// Region bases: one in each half.
fn bases(f: Fmt) -> [u64; 2] {
    let largest = *sizes(f).iter().max().unwrap();
    let lo = (lower_top(f) / 4).next_multiple_of(largest);
    let hi = if split_halves(f) {
        0u64.wrapping_sub(lower_top(f) / 2)
            .next_multiple_of(largest)
    } else {
        lo
    };
    [lo, hi]
}

type MapSpec = (usize, u64, u64, u8, bool);

fn build(f: Fmt, specs: &[MapSpec]) -> Builder {
    let mut b = Builder::new(f, 0x1000);
    let sz = sizes(f);
    let [lo, hi] = bases(f);
    for &(si, va_seed, pa_seed, perm, upper) in specs {
        let size = sz[si % sz.len()];
        let base = if upper { hi } else { lo };
        // A small window so that pages are often adjacent (coalescing) or conflicting.
        let va = base.wrapping_add((va_seed % 96) * size);
        let mut pa = (pa_seed % 512) * size;
        if f == (Fmt::A64 { g: 16, va: 52 }) && pa_seed & 1 == 1 {
            pa |= 1 << 49; // exercise PA[51:48] in descriptor bits 15:12
        }
        if f == Fmt::X86 && size > 4096 && pa_seed & 1 == 1 {
            pa |= 1 << 33; // PSE-36
        }
        let perm = Perm {
            w: perm & 1 != 0,
            u: perm & 2 != 0,
            nx: perm & 4 != 0,
        };
        b.map(va, pa, size, perm);
    }
    b
}

fn queries(f: Fmt, b: &Builder, q: &[(u8, u64)]) -> Vec<u64> {
    let [lo, hi] = bases(f);
    let largest = *sizes(f).iter().max().unwrap();
    q.iter()
        .map(|&(kind, seed)| match kind % 4 {
            0 if !b.maps.is_empty() => {
                let m = b.maps[(seed as usize) % b.maps.len()];
                m.va + (seed >> 16) % m.size
            }
            1 => lo.wrapping_add(seed % (100 * largest)),
            2 => hi.wrapping_add(seed % (100 * largest)),
            _ => seed,
        })
        .collect()
}

/// Reference page map: the builder's pages, coalesced the same documented way.
fn ref_ranges(b: &Builder, physical: bool) -> Vec<(u64, u64, u64, Perm)> {
    let mut maps = b.maps.clone();
    maps.sort_by_key(|m| m.va);
    let mut out: Vec<(u64, u64, u64, Perm)> = Vec::new();
    for m in maps {
        if let Some(l) = out.last_mut() {
            if l.0.checked_add(l.1) == Some(m.va)
                && l.3 == m.perm
                && (!physical || l.2 + l.1 == m.pa)
            {
                l.1 += m.size;
                continue;
            }
        }
        out.push((m.va, m.size, m.pa, m.perm));
    }
    out
}

fn same(
    a: &Result<memlens_arch::Translation, Error>,
    b: &Result<memlens_arch::Translation, Error>,
) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn batched_walker_matches_reference(
        fi in 0usize..ALL.len(),
        specs in prop::collection::vec((0usize..3, any::<u64>(), any::<u64>(), 0u8..8, any::<bool>()), 0..40),
        q in prop::collection::vec((any::<u8>(), any::<u64>()), 1..120),
    ) {
        let f = ALL[fi];
        let b = build(f, &specs);
        let phys = b.phys();
        let m = crate_mmu(f);
        let roots = common::roots(&b);
        let vas = queries(f, &b, &q);
        let vas_t: Vec<VirtAddr> = vas.iter().map(|v| VirtAddr(*v)).collect();
        let got = translate_vec(&phys, &m, &roots, &vas_t);
        for (va, g) in vas.iter().zip(&got) {
            let want = ref_translate(f, &phys, b.root_lo, b.root_hi, *va);
            prop_assert!(compare(g, want).is_ok(), "{:?} {:#x}: {:?}", f, va, compare(g, want));
            let one = translate(&phys, &m, &roots, VirtAddr(*va));
            prop_assert!(same(&one, g), "batch vs single at {:#x}: {:?} / {:?}", va, one, g);
        }
        // Through a TLB, cold then warm, and through the table cache.
        let view = VirtualView::new(&phys, m, roots)
            .with_tlb(TlbConfig { entries: 64, validity: None })
            .with_table_cache(Default::default());
        for _ in 0..2 {
            let mut out: Vec<_> = (0..vas_t.len()).map(|_| memlens_arch::walker::unset()).collect();
            view.translate_batch(&vas_t, &mut out);
            for (a, b) in out.iter().zip(&got) {
                prop_assert!(same(a, b), "tlb {:?} vs {:?}", a, b);
            }
        }
        // Page map, both coalescing modes.
        for physical in [true, false] {
            let pm = page_map(&phys, &m, &roots, &PageMapOptions { physically_contiguous: physical, ..Default::default() });
            let have: Vec<(u64, u64, u64, Perm)> = pm.ranges.iter().map(|r| (r.va.0, r.len, r.pa.0, Perm { w: r.flags.writable, u: r.flags.user, nx: r.flags.nx })).collect();
            prop_assert_eq!(have, ref_ranges(&b, physical), "{:?} physical={}", f, physical);
            prop_assert_eq!(pm.stats.pages, b.maps.len() as u64);
        }
        // Reverse map: every builder page's pa is found at its va.
        if let Some(mp) = b.maps.first() {
            let (found, _) = find_mappings(&phys, &m, &roots, PhysAddr(mp.pa + 8), &PageMapOptions::default());
            prop_assert!(found.contains(&VirtAddr(mp.va + 8)));
            for va in found {
                let t = translate(&phys, &m, &roots, va);
                prop_assert!(matches!(t, Ok(t) if t.pa.0 == mp.pa + 8));
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_break_the_walker(
        fi in 0usize..ALL.len(),
        words in prop::collection::vec(any::<u64>(), 64..2048),
        root_sel in any::<u64>(),
        q in prop::collection::vec(any::<u64>(), 1..64),
        reads in prop::collection::vec((any::<u64>(), 0usize..9000), 0..8),
    ) {
        let f = ALL[fi];
        let g = common::granule(f);
        // Memory: the words repeated into `pages` pages, entries biased to point inside.
        let pages = 24u64;
        let size = (pages * g) as usize;
        let mut mem = vec![0u8; size];
        for (i, chunk) in mem.chunks_exact_mut(8).enumerate() {
            let w = words[i % words.len()].rotate_left((i / words.len()) as u32);
            let e = match w % 4 {
                0 => 0,
                1 => w,
                _ => (((w >> 8) % (pages + 2)) * g) | (w & 0xfff) | (w & (0xf << 59)),
            };
            chunk.copy_from_slice(&e.to_le_bytes());
        }
        let phys = Phys::new(mem);
        let m = crate_mmu(f);
        let root = if root_sel % 8 == 0 { root_sel } else { (root_sel % pages) * g };
        let root_hi = ((root_sel >> 8) % pages) * g;
        let roots = Roots::split(PhysAddr(root), PhysAddr(root_hi));
        let [lo, hi] = bases(f);
        let vas: Vec<VirtAddr> = q.iter().enumerate().map(|(i, s)| VirtAddr(match i % 3 {
            0 => *s,
            1 => lo.wrapping_add(s % (1 << 34)),
            _ => hi.wrapping_add(s % (1 << 34)),
        })).collect();
        let got = translate_vec(&phys, &m, &roots, &vas);
        for (va, gt) in vas.iter().zip(&got) {
            let want = ref_translate(f, &phys, root, root_hi, va.0);
            prop_assert!(compare(gt, want).is_ok(), "{:?} {}: {:?}", f, va, compare(gt, want));
            let one = translate(&phys, &m, &roots, *va);
            prop_assert!(same(&one, gt));
        }
        // The page map terminates within its caps, and everything it reports is true.
        let opts = PageMapOptions { max_tables: 600, max_ranges: 20_000, ..Default::default() };
        let pm = page_map(&phys, &m, &roots, &opts);
        prop_assert!(pm.stats.tables_read <= 600);
        prop_assert!(pm.ranges.len() <= 20_000);
        for r in pm.ranges.iter().take(200) {
            for off in [0, r.len - 1] {
                let va = r.va.0 + off;
                match ref_translate(f, &phys, root, root_hi, va) {
                    RefOut::Ok { pa, perm, .. } => {
                        prop_assert_eq!(pa, r.pa.0 + off);
                        prop_assert_eq!((perm.w, perm.u, perm.nx), (r.flags.writable, r.flags.user, r.flags.nx));
                    }
                    other => prop_assert!(false, "page map says {:?} but reference {:?}", r, other),
                }
            }
        }
        let _ = find_mappings(&phys, &m, &roots, PhysAddr(g), &opts);
        // Virtual reads: never panic; failed spans lie inside the buffer.
        let view = VirtualView::new(&phys, m, roots);
        let mut bufs: Vec<Vec<u8>> = reads.iter().map(|(_, n)| vec![0u8; *n]).collect();
        let mut ops: Vec<ReadOp<'_, VirtAddr>> = bufs.iter_mut().zip(&reads).map(|(b, (a, _))| ReadOp::new(VirtAddr(*a), b)).collect();
        view.read_batch(&mut ops);
        for op in &ops {
            if let Err(Error::Partial { total, failed }) = &op.result {
                prop_assert_eq!(*total, op.buf.len());
                for s in failed {
                    prop_assert!(s.offset + s.len <= *total);
                }
            }
        }
    }
}

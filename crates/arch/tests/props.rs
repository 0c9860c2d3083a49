//! Property tests: the batched walker, the TLB path and the page map against the naive
//! reference walker of `common` — on builder-made tables and on random bytes — and batched
//! virtual reads against the same reads made one at a time.

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
        if matches!(f, Fmt::A64 { g: 12 | 14, va: 52 }) && pa_seed & 1 == 1 {
            pa |= (1 << 51) | (1 << 48); // PA[51:50] in bits 9:8, PA[49:48] in place (LPA2)
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

/// Physical memory for virtual-read properties: the builder's tables at the bottom, then
/// pattern bytes (a function of the address) up to `END`, with one 4 KiB hole (`Gap`) in
/// every seven pages so that physical failures also fall inside mapped pages.
struct DataPhys {
    tables: Phys,
}

const DATA_END: u64 = 3 << 37;

impl DataPhys {
    /// What byte `pa` holds, or `None` when it cannot be read.
    fn byte(&self, pa: u64) -> Option<u8> {
        if let Some(b) = self.tables.data.get(pa as usize) {
            return Some(*b);
        }
        if pa >= DATA_END || (pa >> 12) % 7 == 3 {
            return None;
        }
        Some((pa.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8 ^ (pa >> 12) as u8)
    }

    fn fail(&self, pa: u64, len: usize) -> Error {
        if pa >= DATA_END {
            Error::OutOfRange {
                addr: PhysAddr(pa),
                len,
                max: PhysAddr(DATA_END - 1),
            }
        } else {
            Error::Gap { addr: PhysAddr(pa) }
        }
    }
}

impl MemoryView for DataPhys {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        for op in ops {
            op.result = Ok(());
            let total = op.buf.len();
            let mut i = 0usize;
            // Runs of readable / unreadable bytes, 4 KiB at a time.
            while i < total {
                let pa = op.addr.0.wrapping_add(i as u64);
                let n = (total - i).min((0x1000 - (pa & 0xfff)) as usize);
                if self.byte(pa).is_some() {
                    for (k, b) in op.buf[i..i + n].iter_mut().enumerate() {
                        *b = self.byte(pa + k as u64).unwrap_or(0);
                    }
                } else {
                    memlens_core::mem::record_failure(
                        &mut op.result,
                        total,
                        i,
                        n,
                        self.fail(pa, n),
                    );
                }
                i += n;
            }
            memlens_core::mem::finish_partial(&mut op.result);
        }
    }
    fn metadata(&self) -> memlens_core::MemoryMetadata<PhysAddr> {
        memlens_core::MemoryMetadata {
            max_addr: PhysAddr(DATA_END - 1),
            real_size: DATA_END,
            readonly: true,
            preferred_batch: 64,
        }
    }
}

/// Read addresses: across the start or end of a builder mapping (often into an unmapped
/// neighbour), inside either half's window, or anywhere.
fn read_addrs(f: Fmt, b: &Builder, r: &[(u8, u64, usize)]) -> Vec<(u64, usize)> {
    let [lo, hi] = bases(f);
    let g = common::granule(f);
    let largest = *sizes(f).iter().max().unwrap();
    r.iter()
        .map(|&(kind, seed, len)| {
            let m = b.maps.get((seed as usize) % b.maps.len().max(1)).copied();
            let va = match (kind % 5, m) {
                (0, Some(m)) => m.va.wrapping_add(m.size).wrapping_sub(1 + seed % (2 * g)),
                (1, Some(m)) => m.va.wrapping_sub(1 + seed % g),
                (2, Some(m)) => m.va.wrapping_add((seed >> 8) % m.size),
                (3, _) => hi.wrapping_add(seed % (100 * largest)),
                (4, _) => lo.wrapping_add(seed % (100 * largest)),
                _ => seed,
            };
            (va, len % (3 * g as usize + 40))
        })
        .collect()
}

type Outcome = (Vec<u8>, Result<(), Error>);

fn read_all<V: MemoryView<Addr = VirtAddr>>(v: &V, reads: &[(u64, usize)]) -> Vec<Outcome> {
    let mut bufs: Vec<Vec<u8>> = reads.iter().map(|(_, n)| vec![0xa5; *n]).collect();
    let mut ops: Vec<ReadOp<'_, VirtAddr>> = bufs
        .iter_mut()
        .zip(reads)
        .map(|(b, (a, _))| ReadOp::new(VirtAddr(*a), b))
        .collect();
    v.read_batch(&mut ops);
    let results: Vec<_> = ops.into_iter().map(|o| o.result).collect();
    bufs.into_iter().zip(results).collect()
}

fn read_each<V: MemoryView<Addr = VirtAddr>>(v: &V, reads: &[(u64, usize)]) -> Vec<Outcome> {
    reads
        .iter()
        .flat_map(|r| read_all(v, std::slice::from_ref(r)))
        .collect()
}

/// The bytes of an outcome that failed, as a per-byte mask.
fn failed_mask(o: &Outcome) -> Vec<bool> {
    let mut m = vec![false; o.0.len()];
    match &o.1 {
        Ok(()) => {}
        Err(Error::Partial { total, failed }) => {
            assert_eq!(*total, o.0.len());
            for s in failed {
                m[s.offset..s.offset + s.len].fill(true);
            }
        }
        Err(_) => m.fill(true),
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// A batch of virtual reads returns exactly what the same reads return one at a time —
    /// bytes, and per operation Ok / the same `Partial` spans and causes / the same error —
    /// with and without the TLB and table cache, cold and warm; and what they return is
    /// what the reference walker and the physical pattern say.
    #[test]
    fn batched_virtual_reads_equal_single_reads(
        fi in 0usize..ALL.len(),
        specs in prop::collection::vec((0usize..3, any::<u64>(), any::<u64>(), 0u8..8, any::<bool>()), 1..30),
        r in prop::collection::vec((any::<u8>(), any::<u64>(), any::<usize>()), 1..48),
    ) {
        let f = ALL[fi];
        let b = build(f, &specs);
        let phys = DataPhys { tables: b.phys() };
        let m = crate_mmu(f);
        let roots = common::roots(&b);
        let reads = read_addrs(f, &b, &r);

        let plain = VirtualView::new(&phys, m, roots);
        let batch = read_all(&plain, &reads);
        let single = read_each(&plain, &reads);
        for (i, (x, y)) in batch.iter().zip(&single).enumerate() {
            prop_assert!(x == y, "{:?} read {:#x}+{:#x}: batch {:?} / single {:?}", f, reads[i].0, reads[i].1, x.1, y.1);
        }
        // Through a small TLB (evictions, conflicts) and the table cache: batch twice
        // (cold, warm), then one by one.
        let cached = VirtualView::new(&phys, m, roots)
            .with_tlb(TlbConfig { entries: 16, validity: None })
            .with_table_cache(Default::default());
        for pass in 0..2 {
            let got = read_all(&cached, &reads);
            prop_assert!(got == batch, "{:?} cached batch pass {} differs", f, pass);
        }
        prop_assert!(read_each(&cached, &reads) == batch, "{:?} cached single reads differ", f);

        // Against the reference: per granule-sized piece, the reference translation and
        // the pattern give each byte or say it cannot be read.
        let g = common::granule(f);
        for (&(va, len), o) in reads.iter().zip(&batch) {
            let mask = failed_mask(o);
            let mut off = 0usize;
            while off < len {
                let a = va.wrapping_add(off as u64);
                let n = (len - off).min((g - (a & (g - 1))) as usize);
                let t = ref_translate(f, &phys.tables, b.root_lo, b.root_hi, a);
                for k in 0..n {
                    let want = match t {
                        RefOut::Ok { pa, .. } => phys.byte(pa + k as u64),
                        _ => None,
                    };
                    match want {
                        Some(byte) => prop_assert!(!mask[off + k] && o.0[off + k] == byte,
                            "{:?} {:#x}+{:#x}: byte {} should be {:#x}, got {:#x} ({:?})", f, va, len, off + k, byte, o.0[off + k], o.1),
                        None => prop_assert!(mask[off + k],
                            "{:?} {:#x}+{:#x}: byte {} should have failed ({:?}, {:?})", f, va, len, off + k, t, o.1),
                    }
                }
                off += n;
            }
        }
    }
}

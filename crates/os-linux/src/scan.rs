//! Finding the kernel in physical memory. **Key decision: kallsyms first, by a memchr scan
//! of physical memory in large batched reads**, because once kallsyms is decoded every
//! other fact follows from it: the image's physical offset (the symbol
//! `kallsyms_token_table` against where the table was found), the page-table root
//! (`init_top_pgt`), the paging depth (`__pgtable_l5_enabled`) and the direct-map base
//! (`page_offset_base`) — read straight from the physically contiguous image, with no
//! page-table walk and no hint. The scan goes upward from address 0 (the kernel usually
//! sits in low memory) and stops at the first valid table.
//!
//! Bounds: a guest can plant token-table anchors anywhere, and each candidate costs a
//! window read (8-30 MiB) and a decode; at most [`MAX_CANDIDATES`] are decoded per scan
//! (and per file), after which the scan fails saying how many were rejected. A BTF blob
//! is at most [`btf::MAX_BLOB`] bytes.

use memlens_core::{PhysAddr, PhysicalMemory, ReadOp};

use crate::btf;
use crate::error::{LinuxError, Result};
use crate::kallsyms::{self, Layout, SymbolTable};

/// Most kallsyms candidates decoded by one scan or in one file: a kernel has one token
/// table (a dump may hold a few stale copies, a `vmlinux` one); 64 tolerates dozens of
/// decoys while a guest that plants millions of anchors costs at most 64 decodes.
pub const MAX_CANDIDATES: usize = 64;

/// Size of one scan read (small enough that the copy stays in cache for the search).
const CHUNK: u64 = 1 << 20;
/// Windows read around the token table, `(before, after)`: names, markers and offsets
/// of up to ~200k symbols fit the first (with the seqs after the offsets, newer order);
/// the second is the fallback for huge tables.
const WINDOWS: [(u64, u64); 2] = [(6 << 20, 2 << 20), (24 << 20, 6 << 20)];

/// Reads `[pa, pa+len)` into a vector, leaving unreadable parts zero.
pub fn read_lossy(phys: &dyn PhysicalMemory, pa: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut ops = [ReadOp::new(PhysAddr(pa), &mut buf[..])];
    phys.read_batch(&mut ops);
    buf
}

/// Kallsyms found in physical memory.
#[derive(Debug)]
pub struct FoundKallsyms {
    /// Physical address of `kallsyms_token_table`.
    pub token_table: PhysAddr,
    /// Table positions (relative to `window_base`).
    pub layout: Layout,
    /// Physical address of the window the layout positions are relative to.
    pub window_base: u64,
    /// The decoded symbols.
    pub symbols: SymbolTable,
    /// Candidate token tables rejected before this one.
    pub rejected: usize,
}

/// The backed chunks of `[lo, hi)`: `(pa, len)` of at most [`CHUNK`] bytes, ascending.
fn chunks(phys: &dyn PhysicalMemory, lo: u64, hi: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for r in phys.ranges() {
        let end = r.end_u64().min(hi);
        let mut pa = r.base.0.max(lo);
        while pa < end {
            let len = (end - pa).min(CHUNK);
            out.push((pa, len));
            pa += len;
        }
    }
    out
}

/// Calls `f(pa, bytes)` for each chunk of backed physical memory in `[lo, hi)`, in
/// ascending order, with `overlap` bytes of the following chunk appended; stops when `f`
/// returns `Some`.
pub fn scan_chunks_in<T>(
    phys: &dyn PhysicalMemory,
    lo: u64,
    hi: u64,
    overlap: u64,
    mut f: impl FnMut(u64, &[u8]) -> Option<T>,
) -> Option<T> {
    let mut buf = vec![0u8; (CHUNK + overlap) as usize];
    for (pa, len) in chunks(phys, lo, hi) {
        let b = &mut buf[..(len + overlap) as usize];
        let mut ops = [ReadOp::new(PhysAddr(pa), &mut *b)];
        phys.read_batch(&mut ops);
        if let Some(t) = f(pa, b) {
            return Some(t);
        }
    }
    None
}

/// [`scan_chunks_in`] over all of physical memory.
pub fn scan_chunks<T>(
    phys: &dyn PhysicalMemory,
    overlap: u64,
    f: impl FnMut(u64, &[u8]) -> Option<T>,
) -> Option<T> {
    scan_chunks_in(phys, 0, u64::MAX, overlap, f)
}

/// The lowest physical address in `[lo, hi)` holding a valid token table anchor, searched
/// by all cores: chunks are handed out in ascending order and a thread stops once a hit
/// below its next chunk is known, so the result is the lowest hit.
pub fn find_token_table_parallel(phys: &dyn PhysicalMemory, lo: u64, hi: u64) -> Option<u64> {
    find_token_table_in_chunks(phys, chunks(phys, lo, hi))
}

/// Whether a chunk holds data: any of its first, middle and last 4 KiB pages is not all
/// zero. A cheap filter (three small reads per MiB) for the first pass of the scan: a raw
/// image's holes (e.g. the GiB below arm64's RAM, sparse in the file) are skipped without
/// reading them; the full scan still follows when the filtered pass finds nothing.
fn has_data(phys: &dyn PhysicalMemory, pa: u64, len: u64) -> bool {
    let mut pages = [[0u8; 4096]; 3];
    let at = [pa, pa + ((len / 2) & !0xfff), pa + len.saturating_sub(4096)];
    let mut ops: Vec<ReadOp<'_, PhysAddr>> = pages
        .iter_mut()
        .zip(at)
        .map(|(b, a)| ReadOp::new(PhysAddr(a), &mut b[..]))
        .collect();
    phys.read_batch(&mut ops);
    drop(ops);
    pages.iter().any(|p| p.iter().any(|b| *b != 0))
}

/// [`find_token_table_parallel`] over the chunks of `[lo, hi)` that hold data (any of
/// their first, middle and last pages is not all zero).
pub fn find_token_table_dense(phys: &dyn PhysicalMemory, lo: u64, hi: u64) -> Option<u64> {
    let list = chunks(phys, lo, hi)
        .into_iter()
        .filter(|&(pa, len)| has_data(phys, pa, len))
        .collect();
    find_token_table_in_chunks(phys, list)
}

fn find_token_table_in_chunks(phys: &dyn PhysicalMemory, list: Vec<(u64, u64)>) -> Option<u64> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let best = AtomicU64::new(u64::MAX);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let overlap = 4096u64;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; (CHUNK + overlap) as usize];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(pa, len)) = list.get(i) else { break };
                    if pa > best.load(Ordering::Relaxed) {
                        break;
                    }
                    let b = &mut buf[..(len + overlap) as usize];
                    let mut ops = [ReadOp::new(PhysAddr(pa), &mut *b)];
                    phys.read_batch(&mut ops);
                    let hit = memchr::memmem::find_iter(b, kallsyms::DIGITS_ANCHOR)
                        .find(|h| kallsyms::token_table_at(b, *h).is_some());
                    if let Some(h) = hit {
                        best.fetch_min(pa.wrapping_add(h as u64), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let b = best.load(Ordering::Relaxed);
    (b != u64::MAX).then_some(b)
}

/// Where the x86-64 kernel image is, read from a page table in the first MiB: the
/// real-mode trampoline keeps a top-level table whose last entry is the kernel's
/// (`init_top_pgt[511]`), leading to `level2_kernel_pgt`, whose 2 MiB entries map exactly
/// the image. Returns the physical range those entries cover. Any false lead only costs a
/// scan of the wrong range before the full scan.
pub fn image_range_from_low_tables(phys: &dyn PhysicalMemory) -> Option<(u64, u64)> {
    low_tables(phys).map(|l| l.image)
}

/// What the trampoline's page table says about the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowTables {
    /// Physical range of the image (2 MiB granular).
    pub image: (u64, u64),
    /// `phys_base`: physical minus (virtual - `__START_KERNEL_map`) for the image.
    pub phys_base: u64,
    /// The trampoline's top-level table: its kernel half is `init_top_pgt`'s.
    pub root: PhysAddr,
}

/// See [`image_range_from_low_tables`].
pub fn low_tables(phys: &dyn PhysicalMemory) -> Option<LowTables> {
    const P: u64 = 1;
    const PS: u64 = 1 << 7;
    const MASK: u64 = 0x000f_ffff_ffff_f000;
    let max = phys.metadata().max_addr.0;
    let table = |pa: u64| -> Option<Vec<u64>> {
        if pa == 0 || pa > max {
            return None;
        }
        let b = read_lossy(phys, pa, 4096);
        Some(
            b.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        )
    };
    let next = |e: u64| (e & P != 0 && e & PS == 0).then_some(e & MASK);
    let low = read_lossy(phys, 0, 1 << 20);
    for (pi, page) in low.chunks_exact(4096).enumerate() {
        let e511 = u64::from_le_bytes(page[4088..4096].try_into().ok()?);
        let Some(l4) = next(e511) else { continue };
        // 4-level: l4 is level3_kernel_pgt; 5-level: a p4d whose [511] is.
        let mut cands = vec![l4];
        if let Some(t) = table(l4) {
            if let Some(l3) = t.get(511).and_then(|e| next(*e)) {
                cands.push(l3);
            }
        }
        for l3 in cands {
            let Some(t3) = table(l3) else { continue };
            let Some(l2) = t3.get(510).and_then(|e| next(*e)) else {
                continue;
            };
            let Some(t2) = table(l2) else { continue };
            // After boot the image mapping has holes (freed padding) and 4 KiB splits,
            // but every 2 MiB entry keeps the same virtual-to-physical offset.
            let present: Vec<usize> = (0..t2.len()).filter(|i| t2[*i] & P != 0).collect();
            let offs: Vec<u64> = present
                .iter()
                .filter(|i| t2[**i] & PS != 0)
                .map(|i| (t2[*i] & MASK & !0x1f_ffff).wrapping_sub(*i as u64 * (2 << 20)))
                .collect();
            let Some(&off) = offs.first() else { continue };
            if offs.len() < 2 || offs.iter().any(|o| *o != off) {
                continue;
            }
            let (first, last) = (*present.first()? as u64, *present.last()? as u64);
            let lo = off.wrapping_add(first * (2 << 20));
            let hi = off.wrapping_add((last + 1) * (2 << 20));
            if lo < hi && hi <= max.saturating_add(1) && hi - lo <= (512 << 20) {
                return Some(LowTables {
                    image: (lo, hi),
                    phys_base: off,
                    root: PhysAddr(pi as u64 * 4096),
                });
            }
        }
    }
    None
}

/// Scans physical memory for the kallsyms tables and decodes the first valid one.
/// `hint` (`[lo, hi)`, e.g. the image range VMCOREINFO implies) is searched first.
pub fn find_kallsyms(phys: &dyn PhysicalMemory, hint: Option<(u64, u64)>) -> Result<FoundKallsyms> {
    let mut tries = Tries::default();
    let mut last_err = None;
    let low = if hint.is_none() {
        image_range_from_low_tables(phys)
    } else {
        None
    };
    if let Some((lo, hi)) = hint.or(low) {
        if let Some(hit) = find_token_table_parallel(phys, lo, hi) {
            if let Some(f) = decode_at(phys, hit, &mut tries, &mut last_err) {
                return Ok(f);
            }
        }
    }
    // Fast path: the lowest candidate found in parallel is nearly always the kernel's;
    // chunks whose sampled pages are all zero are left out first (a table in one of
    // them is still found by the full scans below when this pass finds none).
    if let Some(hit) = find_token_table_dense(phys, 0, u64::MAX) {
        if let Some(f) = decode_at(phys, hit, &mut tries, &mut last_err) {
            return Ok(f);
        }
    }
    let mut from = 0;
    if let Some(hit) = find_token_table_parallel(phys, 0, u64::MAX) {
        if let Some(f) = decode_at(phys, hit, &mut tries, &mut last_err) {
            return Ok(f);
        }
        from = hit.saturating_add(1);
    }
    let found = scan_chunks_in(phys, from & !(CHUNK - 1), u64::MAX, 4096, |pa, bytes| {
        for hit in memchr::memmem::find_iter(bytes, kallsyms::DIGITS_ANCHOR) {
            let at = pa.wrapping_add(hit as u64);
            if at < from {
                continue;
            }
            if hit > 8192 && kallsyms::token_table_at(bytes, hit).is_none() {
                continue;
            }
            if tries.decoded >= MAX_CANDIDATES {
                return Some(None);
            }
            if let Some(f) = decode_at(phys, at, &mut tries, &mut last_err) {
                return Some(Some(f));
            }
        }
        None
    });
    let missing = "the kallsyms tables (a `0\\01\\0…9\\0` token table with its index)";
    match (found, last_err) {
        (Some(Some(f)), _) => Ok(f),
        (Some(None), last) => Err(LinuxError::KernelNotFound {
            found: format!(
                "{} candidate kallsyms token tables decoded and rejected, the limit of {MAX_CANDIDATES}{}",
                tries.decoded,
                last.map(|e| format!(" (last: {e})")).unwrap_or_default()
            ),
            missing: format!("{missing}; give a System.map, vmlinux or ISF JSON with `symbols=PATH`"),
        }),
        (None, Some(e)) => Err(e),
        (None, None) => Err(LinuxError::KernelNotFound {
            found: format!(
                "{} candidate kallsyms token tables, none decodable",
                tries.rejected
            ),
            missing: missing.into(),
        }),
    }
}

/// Decode attempts of one scan: every window decode started, and the candidates that
/// were rejected.
#[derive(Debug, Default)]
struct Tries {
    decoded: usize,
    rejected: usize,
}

/// The first kallsyms among the token tables of `w` that decodes, trying at most
/// [`MAX_CANDIDATES`]; the error says how many were rejected.
pub fn parse_first(w: &[u8], where_: &str) -> Result<(kallsyms::Layout, SymbolTable)> {
    let mut last = None;
    let mut tried = 0usize;
    for (tt, ti) in kallsyms::find_token_tables(w) {
        tried += 1;
        match kallsyms::parse(w, tt, ti, where_) {
            Ok(r) => return Ok(r),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if tried >= MAX_CANDIDATES => LinuxError::Kallsyms {
            location: where_.to_string(),
            what: format!("{tried} candidate token tables rejected, the limit of {MAX_CANDIDATES} (last: {e})"),
        },
        Some(e) => e,
        None => LinuxError::Kallsyms {
            location: where_.to_string(),
            what: "no token table (the `0\\01\\0…9\\0` anchor followed by a matching index)"
                .into(),
        },
    })
}

/// Decodes the kallsyms around a token table near physical address `near`, reading a
/// small window first and a large one if the tables do not fit.
fn decode_at(
    phys: &dyn PhysicalMemory,
    near: u64,
    tries: &mut Tries,
    last_err: &mut Option<LinuxError>,
) -> Option<FoundKallsyms> {
    tries.decoded += 1;
    for (before, after) in WINDOWS {
        // Page-aligned: the tables' alignment (token index, offsets) is physical, and
        // the parser aligns window offsets, so the window must start aligned too.
        let base = near.saturating_sub(before) & !0xfff;
        let w = read_lossy(phys, base, (near - base + after) as usize);
        let rel = (near - base) as usize;
        // Re-find the exact table start inside the window.
        let lo = rel.saturating_sub(8192);
        let hi = (rel + 8192).min(w.len());
        let (tt, ti) = memchr::memmem::find_iter(w.get(lo..hi)?, kallsyms::DIGITS_ANCHOR)
            .filter_map(|h| kallsyms::token_table_at(&w, lo + h))
            .next()?;
        match kallsyms::parse(&w, tt, ti, &format!("physical {:#x}", base + tt as u64)) {
            Ok((layout, symbols)) => {
                return Some(FoundKallsyms {
                    token_table: PhysAddr(base + tt as u64),
                    layout,
                    window_base: base,
                    symbols,
                    rejected: tries.rejected,
                })
            }
            Err(e) => {
                log::debug!(
                    "kallsyms candidate at {:#x} rejected: {e}",
                    base + tt as u64
                );
                *last_err = Some(e);
            }
        }
    }
    tries.rejected += 1;
    None
}

/// The BTF header as it appears for vmlinux BTF: magic, version 1, flags 0, hdr_len 24.
pub const BTF_HEADER: &[u8] = &[0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00];

/// Finds a BTF blob in `[start, start+len)` of physical memory and copies it out (a blob
/// that starts in the range may extend past it).
pub fn find_btf(phys: &dyn PhysicalMemory, start: u64, len: u64) -> Option<(u64, Vec<u8>)> {
    let w = read_lossy(phys, start, len as usize);
    for hit in memchr::memmem::find_iter(&w, BTF_HEADER) {
        let Some(blen) = btf::blob_len(&w[hit..]) else {
            continue;
        };
        if !(1024..=btf::MAX_BLOB).contains(&blen) {
            continue;
        }
        let blob = match w.get(hit..hit + blen) {
            Some(b) => b.to_vec(),
            None => read_lossy(phys, start.wrapping_add(hit as u64), blen),
        };
        return Some((start.wrapping_add(hit as u64), blob));
    }
    None
}

/// The first `Linux version …` line (up to its NUL) in `w`.
pub fn banner_in(w: &[u8]) -> Option<String> {
    let at = memchr::memmem::find(w, b"Linux version ")?;
    let tail = w.get(at..(at + 512).min(w.len()))?;
    let n = memchr::memchr(0, tail)?;
    Some(String::from_utf8_lossy(&tail[..n]).trim_end().to_string())
}

/// Finds a whole BTF blob inside `w`; returns its offset and a copy.
pub fn find_btf_in(w: &[u8]) -> Option<(usize, Vec<u8>)> {
    for hit in memchr::memmem::find_iter(w, BTF_HEADER) {
        let Some(blen) = btf::blob_len(&w[hit..]) else {
            continue;
        };
        if !(1024..=btf::MAX_BLOB).contains(&blen) {
            continue;
        }
        if let Some(b) = w.get(hit..hit + blen) {
            return Some((hit, b.to_vec()));
        }
    }
    None
}

/// Finds `Linux version ` followed by a release in the first `limit` bytes scanned;
/// returns `(pa, banner line)`.
pub fn find_banner(phys: &dyn PhysicalMemory) -> Option<(u64, String)> {
    const PAT: &[u8] = b"Linux version ";
    scan_chunks(phys, 256, |pa, bytes| {
        for hit in memchr::memmem::find_iter(bytes, PAT) {
            let tail = bytes.get(hit..(hit + 256).min(bytes.len()))?;
            let end = tail.iter().position(|b| *b == 0 || *b == b'\n')?;
            let line = std::str::from_utf8(&tail[..end]).ok()?;
            // The kernel's banner names the compiler; log copies are similar, both fine.
            if line.contains('(') && line.split(' ').nth(2).is_some_and(|r| r.contains('.')) {
                return Some((pa.wrapping_add(hit as u64), line.to_string()));
            }
        }
        None
    })
}

/// The release (third word) of a `Linux version …` banner.
pub fn release_of_banner(banner: &str) -> Option<String> {
    banner.split(' ').nth(2).map(str::to_string)
}

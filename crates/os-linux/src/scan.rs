//! Finding the kernel in physical memory. **Key decision: kallsyms first, by a memchr scan
//! of physical memory in large batched reads**, because once kallsyms is decoded every
//! other fact follows from it: the image's physical offset (the symbol
//! `kallsyms_token_table` against where the table was found), the page-table root
//! (`init_top_pgt`), the paging depth (`__pgtable_l5_enabled`) and the direct-map base
//! (`page_offset_base`) — read straight from the physically contiguous image, with no
//! page-table walk and no hint. The scan goes upward from address 0 (the kernel usually
//! sits in low memory) and stops at the first valid table.

use memlens_core::{PhysAddr, PhysicalMemory, ReadOp};

use crate::btf;
use crate::error::{LinuxError, Result};
use crate::kallsyms::{self, Layout, SymbolTable};

/// Size of one scan read.
const CHUNK: u64 = 16 << 20;
/// Bytes read before the token table to catch names, markers and offsets.
const BEFORE: u64 = 16 << 20;
/// Bytes read after the token table (newer table orders put the offsets there).
const AFTER: u64 = 4 << 20;

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

/// Calls `f(pa, bytes)` for each chunk of backed physical memory, in ascending order, with
/// `overlap` bytes of the previous chunk repeated; stops when `f` returns `Some`.
pub fn scan_chunks<T>(
    phys: &dyn PhysicalMemory,
    overlap: u64,
    mut f: impl FnMut(u64, &[u8]) -> Option<T>,
) -> Option<T> {
    let mut buf = vec![0u8; (CHUNK + overlap) as usize];
    for r in phys.ranges() {
        let end = r.end_u64();
        let mut pa = r.base.0;
        while pa < end {
            let len = (end - pa).min(CHUNK + overlap) as usize;
            let b = &mut buf[..len];
            let mut ops = [ReadOp::new(PhysAddr(pa), &mut *b)];
            phys.read_batch(&mut ops);
            if let Some(t) = f(pa, b) {
                return Some(t);
            }
            pa += CHUNK;
        }
    }
    None
}

/// Scans physical memory for the kallsyms tables and decodes the first valid one.
pub fn find_kallsyms(phys: &dyn PhysicalMemory) -> Result<FoundKallsyms> {
    let mut rejected = 0usize;
    let mut last_err = None;
    let overlap = 4096u64;
    let found = scan_chunks(phys, overlap, |pa, bytes| {
        for hit in memchr::memmem::find_iter(bytes, kallsyms::DIGITS_ANCHOR) {
            // A hit too close to the chunk start is re-checked with its own window.
            if hit > 8192 && kallsyms::token_table_at(bytes, hit).is_none() {
                continue;
            }
            if let Some(f) = decode_at(phys, pa + hit as u64, &mut rejected, &mut last_err) {
                return Some(f);
            }
        }
        None
    });
    found.ok_or_else(|| match last_err {
        Some(e) => e,
        None => LinuxError::KernelNotFound {
            found: format!(
                "{} candidate kallsyms token tables, none decodable",
                rejected
            ),
            missing: "the kallsyms tables (a `0\\01\\0…9\\0` token table with its index)".into(),
        },
    })
}

/// Decodes the kallsyms around a token table near physical address `near`.
fn decode_at(
    phys: &dyn PhysicalMemory,
    near: u64,
    rejected: &mut usize,
    last_err: &mut Option<LinuxError>,
) -> Option<FoundKallsyms> {
    let base = near.saturating_sub(BEFORE);
    let len = (near - base + AFTER) as usize;
    let w = read_lossy(phys, base, len);
    let rel = (near - base) as usize;
    // Re-find the exact table start inside the window.
    let lo = rel.saturating_sub(8192);
    let hi = (rel + 8192).min(w.len());
    let local = memchr::memmem::find_iter(w.get(lo..hi)?, kallsyms::DIGITS_ANCHOR)
        .filter_map(|h| kallsyms::token_table_at(&w, lo + h))
        .next();
    let (tt, ti) = local?;
    match kallsyms::parse(&w, tt, ti, &format!("physical {:#x}", base + tt as u64)) {
        Ok((layout, symbols)) => Some(FoundKallsyms {
            token_table: PhysAddr(base + tt as u64),
            layout,
            window_base: base,
            symbols,
            rejected: *rejected,
        }),
        Err(e) => {
            *rejected += 1;
            log::debug!("kallsyms candidate at {:#x} rejected: {e}", base + tt as u64);
            *last_err = Some(e);
            None
        }
    }
}

/// The BTF header as it appears for vmlinux BTF: magic, version 1, flags 0, hdr_len 24.
pub const BTF_HEADER: &[u8] = &[0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00];

/// Finds a BTF blob in `[start, start+len)` of physical memory and copies it out.
pub fn find_btf(phys: &dyn PhysicalMemory, start: u64, len: u64) -> Option<(u64, Vec<u8>)> {
    let w = read_lossy(phys, start, len as usize);
    for hit in memchr::memmem::find_iter(&w, BTF_HEADER) {
        let Some(blen) = btf::blob_len(&w[hit..]) else {
            continue;
        };
        if blen < 1024 || blen > (64 << 20) {
            continue;
        }
        let blob = match w.get(hit..hit + blen) {
            Some(b) => b.to_vec(),
            None => read_lossy(phys, start + hit as u64, blen),
        };
        return Some((start + hit as u64, blob));
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
                return Some((pa + hit as u64, line.to_string()));
            }
        }
        None
    })
}

/// The release (third word) of a `Linux version …` banner.
pub fn release_of_banner(banner: &str) -> Option<String> {
    banner.split(' ').nth(2).map(str::to_string)
}

//! makedumpfile's compressed dump format (`KDUMP   `, "diskdump"), normal or flattened.
//!
//! Layout (64-bit, header versions 1–6), in blocks of `block_size` (= the guest page size):
//! block 0 is the `disk_dump_header` (464 bytes), then `sub_hdr_size` blocks of
//! `kdump_sub_header` (`phys_base`, `dump_level`, `split`, `start_pfn`/`end_pfn`,
//! `offset_vmcoreinfo`/`size_vmcoreinfo` (v3+), `offset_note`/`size_note` (v4+),
//! eraseinfo (v5+), 64-bit pfns and `max_mapnr` (v6+)), then `bitmap_blocks` blocks of two
//! equal bitmaps (1st: valid RAM pages, 2nd: pages in the dump), then one 24-byte page
//! descriptor (i64 offset, u32 size, u32 flags, u64 page_flags) per page set in the 2nd
//! bitmap, in pfn order, then the page data.
//!
//! **Key decisions:**
//! - Page lookup is O(1): a per-64-bit-word prefix count of the 2nd bitmap gives a page's
//!   descriptor index (rank) with one popcount.
//! - A compressed page (zlib 0x1, LZO 0x2, snappy 0x4, zstd 0x20) must decompress to
//!   **exactly** one block (decompression bombs and short pages are errors); output buffers
//!   are one block, never sized from the file. Decompressed pages go through a shared
//!   [`BlockCache`]; uncompressed pages are copied straight from the mapping.
//! - Pages in the 1st bitmap but not the 2nd were excluded by makedumpfile. When the dump
//!   level excluded only zero pages (`dump_level` ⊆ 1, e.g. `-d 1`), they read as zeros;
//!   otherwise they may have held anything (cache, user, free pages) and a read fails with
//!   [`Error::Gap`]. Pages in neither bitmap are gaps too.
//! - Only the 64-bit header layout is read (32-bit hosts' dumps have a different
//!   `timeval` and are rejected with a clear error by the field checks).
//! - Hostile sizes (see [`limits`](crate::limits)): `max_mapnr × block_size` at most
//!   [`MAX_PHYS_ADDR`]; the bitmaps no longer than makedumpfile writes for `max_mapnr` and
//!   at most [`MAX_BITMAP_BYTES`], read [`CHUNK`](memlens_core::bounded::CHUNK) bytes at
//!   a time; at most [`MAX_RANGES`] readable runs (a more fragmented dump is refused);
//!   `nr_cpus` at most
//!   [`MAX_CPUS`](crate::limits::MAX_CPUS); the note area at most
//!   [`MAX_NOTE_BYTES`](crate::limits::MAX_NOTE_BYTES); VMCOREINFO truncated to
//!   [`MAX_VMCOREINFO`](crate::limits::MAX_VMCOREINFO). A flattened file has at most
//!   [`MAX_FLAT_RECORDS`](crate::limits::MAX_FLAT_RECORDS) records, its bitmaps are no
//!   longer than the file, and its descriptor table fits in the bytes its records hold.

mod decompress;
mod parse;

use std::borrow::Cow;
use std::sync::Arc;

use memlens_core::{Error, MemRange, MemoryMetadata, MemoryView, PhysAddr, ReadOp};

pub(crate) use decompress::decompress_page;
pub use decompress::{COMPRESSED_LZO, COMPRESSED_SNAPPY, COMPRESSED_ZLIB, COMPRESSED_ZSTD};
use parse::{parse_header, read_notes, read_vmcoreinfo_text, read_words, readable_runs};
pub use parse::{KdumpHeader, KDUMP_SIGNATURE};

use crate::bytes::{le32, le64};
use crate::cache::BlockCache;
use crate::error::FileError;
use crate::flat::{Source, FLAT_SIGNATURE};
use crate::format::{Detected, Format, Open, Parsed, Reader};
use crate::limits::{claim, limit, Caps, Table};
pub use crate::limits::{MAX_BITMAP_BYTES, MAX_PHYS_ADDR, MAX_RANGES};
use crate::mapped::MappedFile;

const COMPRESSED_ANY: u32 = COMPRESSED_ZLIB | COMPRESSED_LZO | COMPRESSED_SNAPPY | COMPRESSED_ZSTD;
/// Size of a page descriptor.
pub const DESC_LEN: u64 = 24;

/// The format table's signature check for a normal kdump file.
pub(crate) fn detect(head: &[u8]) -> Option<Detected> {
    head.starts_with(KDUMP_SIGNATURE)
        .then_some(Detected::Known(Format::Kdump))
}

/// The format table's signature check for a flattened stream.
pub(crate) fn detect_flat(head: &[u8]) -> Option<Detected> {
    head.starts_with(FLAT_SIGNATURE)
        .then_some(Detected::Known(Format::KdumpFlat))
}

/// Physical memory of a kdump file. See the module documentation.
pub struct KdumpMemory {
    file: MappedFile,
    source: Source,
    header: KdumpHeader,
    /// 2nd bitmap (pages present), as little-endian words.
    present: Vec<u64>,
    /// Set bits of `present` before each word.
    rank: Vec<u64>,
    /// 1st bitmap minus 2nd: excluded pages (empty unless they read as zeros).
    excluded: Vec<u64>,
    /// Whether excluded pages read as zeros.
    excluded_are_zero: bool,
    /// Descriptor index of the first page of this part (split dumps).
    rank_base: u64,
    desc_base: u64,
    ranges: Vec<MemRange<PhysAddr>>,
    /// Sum of the ranges' lengths.
    real_size: u64,
    cache: BlockCache,
}

fn bit(words: &[u64], pfn: u64) -> bool {
    words
        .get((pfn / 64) as usize)
        .is_some_and(|w| w & (1u64 << (pfn % 64)) != 0)
}

pub(crate) fn open(file: MappedFile, o: &Open<'_>) -> Result<Parsed<Arc<KdumpMemory>>, FileError> {
    let (format, cache_bytes, caps): (Format, u64, &Caps) = (o.format, o.cache_bytes, o.caps);
    let path = file.path().to_path_buf();
    let data = file.bytes();
    let source = match format {
        Format::KdumpFlat => Source::index_flat(data, &path, caps.flat_records)?,
        _ => Source::Direct,
    };
    let h = parse_header(data, &source, &path)?;
    let bs = h.block_size;
    let bad = |offset: u64, field: &str, why: String| FileError::BadField {
        path: path.clone(),
        offset,
        field: field.into(),
        why,
    };
    let mapnr_at = if h.version >= 6 { bs + 96 } else { 440 };
    // Every pfn below max_mapnr times the block size stays within a physical address
    // space, so no page address computed below can overflow.
    if h.max_mapnr
        .checked_mul(bs)
        .is_none_or(|e| e > MAX_PHYS_ADDR)
    {
        return Err(limit(
            &path,
            mapnr_at,
            "kdump max_mapnr × block_size",
            format!("{:#x} pages of {bs} bytes", h.max_mapnr),
            "MAX_PHYS_ADDR",
            MAX_PHYS_ADDR,
        ));
    }
    let bitmap_off = (1 + h.sub_hdr_size)
        .checked_mul(bs)
        .ok_or_else(|| bad(432, "kdump sub_hdr_size", "bitmap offset overflows".into()))?;
    let bitmap_len = h.bitmap_blocks.checked_mul(bs).ok_or_else(|| {
        bad(
            436,
            "kdump bitmap_blocks",
            format!("{} blocks overflow", h.bitmap_blocks),
        )
    })?;
    // What makedumpfile (prepare_bitmap_buffer) and QEMU write: two bitmaps of
    // ⌈max_mapnr / 8⌉ bytes, each rounded up to a block. Cannot overflow: max_mapnr ≤ 2^42.
    let expected = 2 * h.max_mapnr.div_ceil(8).next_multiple_of(bs);
    if bitmap_len > expected {
        return Err(bad(
            436,
            "kdump bitmap_blocks",
            format!(
                "{} blocks ({bitmap_len:#x} bytes) of bitmaps for max_mapnr {:#x}, which needs {expected:#x}",
                h.bitmap_blocks, h.max_mapnr
            ),
        ));
    }
    let half = bitmap_len / 2;
    if h.max_mapnr > half.saturating_mul(8) {
        return Err(bad(
            mapnr_at,
            "kdump max_mapnr",
            format!(
                "{:#x} pages need more than the {half:#x}-byte bitmap holds",
                h.max_mapnr
            ),
        ));
    }
    // A bitmap past the end of the file is reported as truncated at the bitmaps' offset
    // (the structure the cut removed), naming bitmap_blocks. A flattened file's bitmaps
    // must also be no longer than the file itself: a far record makes a long logical file
    // of holes (which read as zeros, and writers leave zero parts of bitmaps as holes),
    // and such holes must not become gigabytes of bitmap words.
    let file_size = data.len() as u64;
    let what = match source {
        Source::Direct => "kdump bitmaps (bitmap_blocks)".to_string(),
        Source::Flat { .. } => {
            format!("kdump bitmaps (bitmap_blocks; the flattened file is {file_size:#x} bytes)")
        }
    };
    claim(
        &path,
        Table {
            what: &what,
            field_at: 436,
            at: bitmap_off,
            count: bitmap_len,
            elem: 1,
        },
        source.len(data).saturating_sub(bitmap_off).min(file_size),
        ("MAX_BITMAP_BYTES", MAX_BITMAP_BYTES),
    )?;
    let mut excluded = read_words(data, &source, &path, bitmap_off, h.max_mapnr, &what)?;
    let present = read_words(data, &source, &path, bitmap_off + half, h.max_mapnr, &what)?;
    let mut rank = Vec::with_capacity(present.len());
    let mut acc = 0u64;
    for w in &present {
        rank.push(acc);
        acc += u64::from(w.count_ones());
    }
    // 1st bitmap minus 2nd, in place.
    for (v, p) in excluded.iter_mut().zip(&present) {
        *v &= !p;
    }
    let excluded_count: u64 = excluded.iter().map(|w| u64::from(w.count_ones())).sum();
    let excluded_are_zero = h.dump_level & !1 == 0;
    if !excluded_are_zero {
        excluded = Vec::new(); // never read
    }
    let desc_base = (1 + h.sub_hdr_size + h.bitmap_blocks)
        .checked_mul(bs)
        .ok_or_else(|| {
            bad(
                436,
                "kdump bitmap_blocks",
                "descriptor offset overflows".into(),
            )
        })?;
    let (start_pfn, end_pfn) = h.pfn_range;
    let rank_of = |pfn: u64| -> u64 {
        let w = (pfn / 64) as usize;
        match present.get(w) {
            Some(word) => rank[w] + u64::from((word & ((1u64 << (pfn % 64)) - 1)).count_ones()),
            None => acc,
        }
    };
    let rank_base = rank_of(start_pfn.min(h.max_mapnr));
    let pages_here = rank_of(end_pfn.min(h.max_mapnr)) - rank_base;
    // The descriptor table must fit in the file and, flattened, in the bytes records hold
    // (a descriptor is never all zeros, so it is never a hole).
    let held = source.held(data);
    let table_len = pages_here.saturating_mul(DESC_LEN);
    if desc_base
        .checked_add(table_len)
        .is_none_or(|e| e > source.len(data))
        || table_len > held
    {
        return Err(FileError::Truncated {
            path: path.clone(),
            offset: desc_base,
            what: format!(
                "kdump page descriptor table ({pages_here} pages set in the 2nd bitmap{})",
                match source {
                    Source::Direct => String::new(),
                    Source::Flat { .. } => format!("; the flattened records hold {held:#x} bytes"),
                }
            ),
            needed: table_len,
        });
    }

    let readable = |w: usize| -> u64 {
        let p = present.get(w).copied().unwrap_or(0);
        p | excluded.get(w).copied().unwrap_or(0)
    };
    let ranges = readable_runs(
        present.len(),
        readable,
        (start_pfn, end_pfn),
        bs,
        caps.kdump_ranges,
    )
    .map_err(|asked| {
        limit(
            &path,
            bitmap_off,
            "kdump bitmaps: readable memory too fragmented",
            asked,
            "MAX_RANGES",
            caps.kdump_ranges as u64,
        )
    })?;
    let real_size = ranges.iter().map(|r| r.len).sum();

    // Notes and VMCOREINFO.
    let mut notes = read_notes(data, &source, &path, &h)?;
    if notes.vmcoreinfo.is_none() {
        let (vmcoreinfo, cut) = read_vmcoreinfo_text(data, &source, &path, &h)?;
        notes.vmcoreinfo = vmcoreinfo;
        notes.truncated.extend(cut);
    }
    let mut details = vec![
        ("kdump header version".to_string(), h.version.to_string()),
        ("release".to_string(), h.utsname[2].clone()),
        ("machine".to_string(), h.utsname[4].clone()),
        ("block size".to_string(), bs.to_string()),
        ("max_mapnr".to_string(), format!("{:#x}", h.max_mapnr)),
        ("pages in dump".to_string(), pages_here.to_string()),
        ("dump_level".to_string(), h.dump_level.to_string()),
        ("phys_base".to_string(), format!("{:#x}", h.phys_base)),
        (
            "excluded pages".to_string(),
            format!(
                "{excluded_count} ({})",
                if excluded_are_zero {
                    "read as zeros"
                } else {
                    "unreadable"
                }
            ),
        ),
    ];
    if let Some(n) = source.records() {
        details.push(("flattened records".into(), n.to_string()));
    }
    if !notes.counts.is_empty() {
        let mut counts = notes.counts_summary();
        if let Some(raw) = notes.undecoded_summary() {
            counts.push_str(&format!(
                "; register notes not decoded (no layout for machine {:?}): {raw}",
                h.utsname[4]
            ));
        }
        details.push(("notes".into(), counts));
    }
    for t in &notes.truncated {
        details.push(("truncated".into(), t.clone()));
    }
    let version = Some(format!("v{}", h.version));
    let page = (bs as usize).max(1);
    let mem = KdumpMemory {
        file,
        source,
        header: h,
        present,
        rank,
        excluded,
        excluded_are_zero,
        rank_base,
        desc_base,
        ranges,
        real_size,
        cache: BlockCache::new(cache_bytes, page as u64),
    };
    Ok(Parsed {
        memory: Arc::new(mem),
        format,
        version,
        cpus: notes.cpus,
        vmcoreinfo: notes.vmcoreinfo,
        details,
    })
}

/// A page's bytes: in the mapping (or assembled from flattened segments), or decompressed.
enum PageBytes<'a> {
    Mapped(Cow<'a, [u8]>),
    Shared(Arc<[u8]>),
}

impl PageBytes<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            PageBytes::Mapped(c) => c,
            PageBytes::Shared(a) => a,
        }
    }
}

impl Reader for KdumpMemory {
    fn file_size(&self) -> u64 {
        KdumpMemory::file_size(self)
    }
}

impl KdumpMemory {
    /// The headers.
    pub fn header(&self) -> &KdumpHeader {
        &self.header
    }

    /// Size of the file.
    pub fn file_size(&self) -> u64 {
        self.file.file_size()
    }

    fn corrupt(&self, what: String, offset: u64) -> Error {
        Error::Corrupt {
            location: format!("{} offset {offset:#x}", self.file.path().display()),
            what,
        }
    }

    /// Where page `pfn` is: `Ok(None)` for a page that reads as zeros.
    fn page(&self, pfn: u64) -> Result<Option<PageBytes<'_>>, Error> {
        let bs = self.header.block_size;
        let (start, end) = self.header.pfn_range;
        let w = (pfn / 64) as usize;
        if pfn < start || pfn >= end || w >= self.present.len() {
            return Err(Error::Gap {
                addr: PhysAddr(pfn.saturating_mul(bs)),
            });
        }
        let word = self.present[w];
        let mask = 1u64 << (pfn % 64);
        if word & mask == 0 {
            if self.excluded_are_zero && bit(&self.excluded, pfn) {
                return Ok(None);
            }
            return Err(Error::Gap {
                addr: PhysAddr(pfn.saturating_mul(bs)),
            });
        }
        let idx = self.rank[w] + u64::from((word & (mask - 1)).count_ones()) - self.rank_base;
        let data = self.file.bytes();
        let doff = self.desc_base + idx * DESC_LEN;
        let d = self.source.get(data, doff, DESC_LEN).ok_or_else(|| {
            self.corrupt(
                format!("page descriptor of pfn {pfn:#x} is past the end"),
                doff,
            )
        })?;
        let offset = le64(&d, 0).unwrap_or(0);
        let size = u64::from(le32(&d, 8).unwrap_or(0));
        let flags = le32(&d, 12).unwrap_or(0);
        let compressed = flags & COMPRESSED_ANY != 0;
        if size > bs || (!compressed && size != bs) || size == 0 {
            return Err(self.corrupt(
                format!("page descriptor of pfn {pfn:#x}: size {size} for a {bs}-byte page (flags {flags:#x})"),
                doff + 8,
            ));
        }
        let raw = self.source.get(data, offset, size).ok_or_else(|| {
            self.corrupt(
                format!("page data of pfn {pfn:#x} ({size} bytes at {offset:#x}) is past the end"),
                doff,
            )
        })?;
        if !compressed {
            return Ok(Some(PageBytes::Mapped(raw)));
        }
        let mut out = vec![0u8; bs as usize];
        decompress_page(flags, &raw, &mut out)
            .map_err(|e| self.corrupt(format!("page of pfn {pfn:#x} at {offset:#x}: {e}"), doff))?;
        let arc: Arc<[u8]> = Arc::from(out);
        self.cache.insert(pfn, arc.clone());
        Ok(Some(PageBytes::Shared(arc)))
    }

    /// Copies `dst.len()` bytes at offset `poff` of page `pfn` into `dst`.
    #[inline]
    fn copy_page(&self, pfn: u64, poff: usize, dst: &mut [u8]) -> Result<(), Error> {
        // Cache hits copy straight out of the shared block (no intermediate Vec).
        if let Some(hit) = self.cache.get(pfn) {
            if let Some(src) = hit.get(poff..poff + dst.len()) {
                dst.copy_from_slice(src);
                return Ok(());
            }
        }
        match self.page(pfn)? {
            None => dst.fill(0),
            Some(p) => match p.as_slice().get(poff..poff + dst.len()) {
                Some(src) => dst.copy_from_slice(src),
                None => {
                    return Err(Error::Gap {
                        addr: PhysAddr(pfn.saturating_mul(self.header.block_size)),
                    })
                }
            },
        }
        Ok(())
    }
}

impl MemoryView for KdumpMemory {
    type Addr = PhysAddr;

    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        let bs = self.header.block_size;
        for op in ops.iter_mut() {
            let len = op.buf.len();
            op.result = Ok(());
            for (a, off, n) in memlens_core::mem::split_at_boundaries(op.addr, len, bs) {
                let pfn = a.0 / bs;
                let poff = (a.0 % bs) as usize;
                let dst = &mut op.buf[off..off + n];
                if let Err(e) = self.copy_page(pfn, poff, dst) {
                    dst.fill(0);
                    let e = match e {
                        Error::Gap { .. } if a.0 > self.metadata_max() => Error::OutOfRange {
                            addr: a,
                            len: n,
                            max: PhysAddr(self.metadata_max()),
                        },
                        Error::Gap { .. } => Error::Gap { addr: a },
                        e => e,
                    };
                    memlens_core::mem::record_failure(&mut op.result, len, off, n, e);
                }
            }
            memlens_core::mem::finish_partial(&mut op.result);
        }
    }

    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(self.metadata_max()),
            real_size: self.real_size,
            readonly: true,
            preferred_batch: 256,
        }
    }

    /// A copy of the runs built at open (at most [`MAX_RANGES`]): the trait hands out an
    /// owned `Vec`, so sharing the list would not save the copy.
    fn ranges(&self) -> Vec<MemRange<PhysAddr>> {
        self.ranges.clone()
    }
}

impl KdumpMemory {
    fn metadata_max(&self) -> u64 {
        self.ranges
            .last()
            .map_or(0, |r| r.end_u64().saturating_sub(1))
    }
}

//! LiME images: a sequence of 32-byte range headers (u32 magic 0x4C694D45 `EMiL`, u32
//! version 1, u64 `s_addr`, u64 `e_addr` **inclusive**, 8 reserved bytes), each followed
//! by `e_addr - s_addr + 1` bytes of memory. **Key decision: the headers become a memory
//! map for [`MappedFile`]**, so LiME reads at raw speed.
//!
//! Some AVML versions writing LiME (`--format lime`) omit the data of an all-zero block
//! (blocks are at most [`MAX_ZERO_BLOCK`], 16 MiB) and write the next header right away. A
//! header whose declared data would not end at a header or the end of the file, but which
//! is directly followed by a valid header (or the end of the file), is such a block: its
//! range reads as zeros. A header without data that claims more than [`MAX_ZERO_BLOCK`] is
//! an error naming the header (range data must follow the header), so a few bytes of
//! header cannot claim absurd amounts of memory.
//!
//! Caps (see [`limits`](crate::limits)), shared with AVML: at most [`MAX_RANGE_HEADERS`]
//! headers, and header-only blocks adding up to at most the bytes the file holds plus
//! [`MAX_ZERO_EXCESS`] (1 TiB): beyond either, an error naming the header.

use memlens_core::memmap::MapEntry;
use memlens_core::{MemoryMap, PhysAddr};

use crate::bytes::Bytes;
use crate::detect::{Format, LIME_MAGIC};
use crate::dump::{Memory, Parsed};
use crate::error::FileError;
use crate::limits::Caps;
pub use crate::limits::{MAX_RANGE_HEADERS, MAX_ZERO_EXCESS};
use crate::mapped::MappedFile;

/// Size of a LiME/AVML range header.
pub const HEADER_LEN: u64 = 32;
/// Largest range a header without data may claim as an all-zero block: AVML's block size
/// (`MAX_BLOCK_SIZE`, 4096 pages); larger ranges are always written with their data.
pub const MAX_ZERO_BLOCK: u64 = 16 << 20;

/// The error for a header that is followed by neither its data nor (for a block of at most
/// [`MAX_ZERO_BLOCK`]) the next header.
pub(crate) fn missing_data(b: &Bytes<'_>, off: u64, h: RangeHeader, what: &str) -> FileError {
    b.bad(
        off + 16,
        "range header e_addr",
        format!(
            "the range {:#x}+{:#x} has no data in the file: {what} (offset {:#x}); \
             only an all-zero block of at most {MAX_ZERO_BLOCK:#x} bytes may be written \
             without it",
            h.start,
            h.len,
            off + HEADER_LEN
        ),
    )
}

/// One parsed range header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RangeHeader {
    pub start: u64,
    /// Length in bytes (`e_addr - s_addr + 1`).
    pub len: u64,
}

/// Reads the header at `off`: `Ok(None)` if the magic/version do not match.
pub(crate) fn header_at(
    b: &Bytes<'_>,
    off: u64,
    magic: u32,
    version: u32,
) -> Result<Option<RangeHeader>, FileError> {
    if b.u32(off, "range header magic")? != magic {
        return Ok(None);
    }
    let v = b.u32(off + 4, "range header version")?;
    if v != version {
        return Err(b.bad(
            off + 4,
            "range header version",
            format!("{v} (expected {version})"),
        ));
    }
    let s = b.u64(off + 8, "range header s_addr")?;
    let e = b.u64(off + 16, "range header e_addr")?;
    b.u64(off + 24, "range header reserved")?;
    if e < s {
        return Err(b.bad(
            off + 16,
            "range header e_addr",
            format!("{e:#x} is below s_addr {s:#x}"),
        ));
    }
    let len = (e - s)
        .checked_add(1)
        .ok_or_else(|| b.bad(off + 16, "range header e_addr", "range covers all of 2^64"))?;
    Ok(Some(RangeHeader { start: s, len }))
}

fn is_header(b: &Bytes<'_>, off: u64, magic: u32) -> bool {
    off.checked_add(HEADER_LEN).is_some_and(|e| e <= b.len()) && b.u32(off, "").ok() == Some(magic)
}

/// Error if the header at `off` would be one more than `cap` (`count` read so far).
pub(crate) fn check_header_count(
    b: &Bytes<'_>,
    off: u64,
    count: usize,
    cap: usize,
) -> Result<(), FileError> {
    if count >= cap {
        return Err(b.limit(
            off,
            "range header",
            format!("header number {}", count + 1),
            "MAX_RANGE_HEADERS",
            cap as u64,
        ));
    }
    Ok(())
}

/// Checks that header-only (all-zero) blocks, given as (header offset, length) in file
/// order, add up to at most `backed` (the bytes of memory the file holds) plus
/// [`MAX_ZERO_EXCESS`]; the error names the first header past that.
pub(crate) fn check_zero_claims(
    b: &Bytes<'_>,
    zero: impl Iterator<Item = (u64, u64)>,
    backed: u64,
) -> Result<(), FileError> {
    let budget = backed.saturating_add(MAX_ZERO_EXCESS);
    let mut total = 0u64;
    for (off, len) in zero {
        total = total.saturating_add(len);
        if total > budget {
            return Err(b.limit(
                off + 16,
                "range header e_addr of a header-only (all-zero) block",
                format!(
                    "{total:#x} bytes of header-only blocks up to here, for {backed:#x} bytes of data in the file"
                ),
                "MAX_ZERO_EXCESS",
                MAX_ZERO_EXCESS,
            ));
        }
    }
    Ok(())
}

/// Checks that `ranges` (with the file offset of their header) do not overlap.
pub(crate) fn check_disjoint(
    b: &Bytes<'_>,
    ranges: &mut [(RangeHeader, u64)],
) -> Result<(), FileError> {
    ranges.sort_by_key(|(r, _)| r.start);
    for w in ranges.windows(2) {
        let (a, _) = w[0];
        let (c, at) = w[1];
        if a.start + (a.len - 1) >= c.start {
            return Err(b.bad(
                at + 8,
                "range header s_addr",
                format!(
                    "range {:#x}+{:#x} overlaps the range {:#x}+{:#x}",
                    c.start, c.len, a.start, a.len
                ),
            ));
        }
    }
    Ok(())
}

/// Parses a LiME file into (memory map, zero-fill map).
pub fn parse(data: &[u8], path: &std::path::Path) -> Result<(MemoryMap, MemoryMap), FileError> {
    parse_with(data, path, &Caps::HARD)
}

fn parse_with(
    data: &[u8],
    path: &std::path::Path,
    caps: &Caps,
) -> Result<(MemoryMap, MemoryMap), FileError> {
    let b = Bytes::new(data, 0, path);
    let mut off = 0u64;
    let mut backed = Vec::new();
    let mut zero = Vec::new();
    let mut all = Vec::new();
    let mut backed_bytes = 0u64;
    // (header offset, length) of the header-only blocks, in file order.
    let mut zero_at = Vec::new();
    while off < b.len() {
        check_header_count(&b, off, all.len(), caps.range_headers)?;
        let h = header_at(&b, off, LIME_MAGIC, 1)?.ok_or_else(|| {
            b.bad(
                off,
                "range header magic",
                "expected the LiME magic 0x4c694d45 (EMiL)",
            )
        })?;
        let data_off = off + HEADER_LEN;
        let end = data_off.checked_add(h.len);
        let fits = end.is_some_and(|e| e <= b.len());
        let normal = end.is_some_and(|e| e == b.len() || is_header(&b, e, LIME_MAGIC));
        all.push((h, off));
        let zero_block = data_off == b.len() || is_header(&b, data_off, LIME_MAGIC);
        // Data that fits but is followed by neither the end nor a whole header: the next
        // iteration reports that header (cut short, or a wrong magic) at its own offset.
        if normal || fits && !zero_block {
            backed.push(MapEntry {
                base: PhysAddr(h.start),
                len: h.len,
                backing: data_off,
            });
            backed_bytes = backed_bytes.saturating_add(h.len);
            off = data_off + h.len;
        } else if zero_block {
            if h.len > MAX_ZERO_BLOCK {
                return Err(missing_data(
                    &b,
                    off,
                    h,
                    "LiME range data must follow the header",
                ));
            }
            zero.push(MapEntry {
                base: PhysAddr(h.start),
                len: h.len,
                backing: 0,
            });
            zero_at.push((off, h.len));
            off = data_off;
        } else {
            return Err(b.truncated(
                data_off,
                &format!("LiME range data for {:#x} (header at {off:#x})", h.start),
                h.len,
            ));
        }
    }
    if all.is_empty() {
        return Err(b.truncated(0, "LiME range header", HEADER_LEN));
    }
    check_zero_claims(&b, zero_at.into_iter(), backed_bytes)?;
    check_disjoint(&b, &mut all)?;
    Ok((MemoryMap::new(backed)?, MemoryMap::new(zero)?))
}

pub(crate) fn open(file: MappedFile, caps: &Caps) -> Result<Parsed, FileError> {
    let (map, zero) = parse_with(file.bytes(), file.path(), caps)?;
    let n = map.entries().len() + zero.entries().len();
    let mut details = vec![("LiME ranges".to_string(), n.to_string())];
    if !zero.is_empty() {
        details.push((
            "all-zero ranges without data".into(),
            zero.entries().len().to_string(),
        ));
    }
    let file = file.with_map(map)?.with_zero_fill(zero)?;
    Ok(Parsed {
        memory: Memory::Mapped(std::sync::Arc::new(file)),
        format: Format::Lime,
        version: Some("1".into()),
        cpus: Vec::new(),
        vmcoreinfo: None,
        details,
    })
}

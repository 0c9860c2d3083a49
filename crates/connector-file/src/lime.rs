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

use std::sync::Arc;

use crate::bytes::Bytes;
use crate::error::FileError;
use crate::format::ranges::{
    check_disjoint, check_header_count, check_zero_claims, header_at, missing_data,
};
pub use crate::format::ranges::{HEADER_LEN, MAX_ZERO_BLOCK};
use crate::format::{Detected, Format, Open, Parsed};
use crate::limits::Caps;
pub use crate::limits::{MAX_RANGE_HEADERS, MAX_ZERO_EXCESS};
use crate::mapped::MappedFile;

/// LiME header magic (`EMiL` on disk, 0x4C694D45 little-endian).
pub const LIME_MAGIC: u32 = 0x4C69_4D45;

/// The format table's signature check: the first header's magic.
pub(crate) fn detect(head: &[u8]) -> Option<Detected> {
    head.starts_with(&LIME_MAGIC.to_le_bytes())
        .then_some(Detected::Known(Format::Lime))
}

fn is_header(b: &Bytes<'_>, off: u64, magic: u32) -> bool {
    off.checked_add(HEADER_LEN).is_some_and(|e| e <= b.len()) && b.u32(off, "").ok() == Some(magic)
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

pub(crate) fn open(file: MappedFile, o: &Open<'_>) -> Result<Parsed<Arc<MappedFile>>, FileError> {
    let (map, zero) = parse_with(file.bytes(), file.path(), o.caps)?;
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
        memory: Arc::new(file),
        format: Format::Lime,
        version: Some("1".into()),
        cpus: Vec::new(),
        vmcoreinfo: None,
        details,
    })
}

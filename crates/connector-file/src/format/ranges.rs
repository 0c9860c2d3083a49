//! LiME-style range headers, shared by LiME and AVML (AVML writes LiME's 32-byte header
//! with its own magic and version 2). **Key decision: the header layout and the checks
//! on a file's headers (count cap, header-only zero blocks, overlaps) live here, once**,
//! so neither format imports the other.

use crate::bytes::Bytes;
use crate::error::FileError;
use crate::limits::MAX_ZERO_EXCESS;

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

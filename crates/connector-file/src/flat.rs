//! The bytes of a kdump file, normal or flattened. **Key decision: a flattened file
//! (`makedumpfile` signature; what QEMU's `kdump-*` formats write) is indexed once into a
//! sorted table of segments (logical offset → file offset, length) and then read in
//! place** — no `makedumpfile -R`, no copy in memory. The logical file is exactly what
//! `makedumpfile -R` would write: records are replayed in file order (a later record
//! overwrites an earlier one where they overlap), bytes no record wrote read as zeros
//! (`-R` seeks over them, leaving a hole), and the logical length is the highest byte
//! written.
//!
//! Flattened layout: a 4096-byte header (`makedumpfile\0…` signature in 16 bytes, then
//! big-endian i64 type = 1 and version = 1), then records of a big-endian (i64 offset,
//! i64 size) pair followed by `size` bytes, ended by a record with offset −1.
//!
//! Caps: at most [`MAX_FLAT_RECORDS`](crate::limits::MAX_FLAT_RECORDS) records (the index
//! costs about 100 bytes a record while it is built). Logical offsets are claims too: a
//! record far away makes a long logical file of holes, so [`Source::get`] never assembles
//! more bytes than the file holds, and the kdump reader asks for bounded pieces (headers,
//! one page, one [`CHUNK`](memlens_core::bounded::CHUNK) of bitmap, a note area of at most
//! [`MAX_NOTE_BYTES`](crate::limits::MAX_NOTE_BYTES)) and checks its tables against the
//! file size (bitmaps, whose zero parts writers may leave as holes) and [`Source::held`]
//! (descriptors).

use std::borrow::Cow;
use std::path::Path;

use crate::bytes::Bytes;
use crate::error::FileError;
use crate::intervals::{Backing, IntervalMap};

/// Size of the flattened-format header.
pub const FLAT_HEADER_LEN: u64 = 4096;
/// Flattened makedumpfile signature (NUL-padded to 16 bytes).
pub const FLAT_SIGNATURE: &[u8; 12] = b"makedumpfile";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seg {
    start: u64,
    end: u64,
    /// File offset of `start`, or `None` for a hole (reads as zeros).
    file_off: Option<u64>,
}

/// Logical bytes of a kdump file.
#[derive(Debug)]
pub(crate) enum Source {
    /// A normal file: logical offset = file offset.
    Direct,
    /// A flattened file and its index.
    Flat {
        segs: Vec<Seg>,
        len: u64,
        records: usize,
        /// Logical bytes that records back (not holes).
        held: u64,
    },
}

impl Source {
    /// Indexes a flattened file of at most `max_records` records.
    pub(crate) fn index_flat(
        data: &[u8],
        path: &Path,
        max_records: usize,
    ) -> Result<Source, FileError> {
        let b = Bytes::new(data, 0, path).endian(true);
        let sig = b.slice(0, 16, "flattened header signature")?;
        if !sig.starts_with(FLAT_SIGNATURE) {
            return Err(b.bad(0, "flattened header signature", "not `makedumpfile`"));
        }
        let kind = b.i64(16, "flattened header type")?;
        if kind != 1 {
            return Err(b.bad(16, "flattened header type", format!("{kind} (expected 1)")));
        }
        let version = b.i64(24, "flattened header version")?;
        if version != 1 {
            return Err(b.bad(
                24,
                "flattened header version",
                format!("{version} (expected 1)"),
            ));
        }
        let mut map = IntervalMap::default();
        let mut off = FLAT_HEADER_LEN;
        let mut records = 0usize;
        let mut len = 0u64;
        loop {
            let lo = b.i64(off, "flattened record offset")?;
            let size = b.i64(off + 8, "flattened record size")?;
            if lo == -1 {
                break;
            }
            if records >= max_records {
                return Err(b.limit(
                    off,
                    "flattened record",
                    format!("record number {}", records + 1),
                    "MAX_FLAT_RECORDS",
                    max_records as u64,
                ));
            }
            if lo < 0 {
                return Err(b.bad(off, "flattened record offset", format!("{lo} is negative")));
            }
            if size < 0 {
                return Err(b.bad(
                    off + 8,
                    "flattened record size",
                    format!("{size} is negative"),
                ));
            }
            let (lo, size) = (lo as u64, size as u64);
            let data_off = off + 16;
            b.slice(data_off, size, "flattened record data (record size)")?;
            let end = lo
                .checked_add(size)
                .ok_or_else(|| b.bad(off, "flattened record offset", "offset + size overflows"))?;
            map.insert(lo, end, Backing::At(data_off));
            len = len.max(end);
            records += 1;
            off = data_off + size;
        }
        let mut segs = Vec::new();
        let mut pos = 0u64;
        let mut held = 0u64;
        for iv in map.into_sorted() {
            if let Backing::At(_) = iv.backing {
                held += iv.end - iv.start;
            }
            if iv.start > pos {
                segs.push(Seg {
                    start: pos,
                    end: iv.start,
                    file_off: None,
                });
            }
            segs.push(Seg {
                start: iv.start,
                end: iv.end,
                file_off: match iv.backing {
                    Backing::At(o) => Some(o),
                    Backing::Zero => None,
                },
            });
            pos = iv.end;
        }
        Ok(Source::Flat {
            segs,
            len,
            records,
            held,
        })
    }

    /// Logical length.
    pub(crate) fn len(&self, data: &[u8]) -> u64 {
        match self {
            Source::Direct => data.len() as u64,
            Source::Flat { len, .. } => *len,
        }
    }

    /// Logical bytes that the file really holds: all of it (normal), or the bytes records
    /// wrote (flattened; at most the file size). Tables must fit in this.
    pub(crate) fn held(&self, data: &[u8]) -> u64 {
        match self {
            Source::Direct => data.len() as u64,
            Source::Flat { held, .. } => *held,
        }
    }

    /// Number of records (flattened) — for `memlens info`.
    pub(crate) fn records(&self) -> Option<usize> {
        match self {
            Source::Direct => None,
            Source::Flat { records, .. } => Some(*records),
        }
    }

    /// `len` logical bytes at `off`: borrowed from the mapping when contiguous in the file,
    /// assembled otherwise. `None` if the range passes the logical end.
    #[inline]
    pub(crate) fn get<'a>(&self, data: &'a [u8], off: u64, len: u64) -> Option<Cow<'a, [u8]>> {
        let end = off.checked_add(len)?;
        match self {
            Source::Direct => data.get(off as usize..end as usize).map(Cow::Borrowed),
            Source::Flat {
                segs, len: total, ..
            } => {
                // Records may claim huge logical offsets; never assemble more bytes than
                // the file itself holds (a hostile hole must not become a huge allocation).
                if end > *total || len > data.len() as u64 {
                    return None;
                }
                let mut i = segs.partition_point(|s| s.end <= off);
                let s = segs.get(i)?;
                if end <= s.end {
                    return Some(match s.file_off {
                        Some(f) => {
                            let a = f + (off - s.start);
                            Cow::Borrowed(data.get(a as usize..(a + len) as usize)?)
                        }
                        None => Cow::Owned(vec![0; len as usize]),
                    });
                }
                let mut out = Vec::with_capacity(len as usize);
                let mut pos = off;
                while pos < end {
                    let s = segs.get(i)?;
                    let n = s.end.min(end) - pos;
                    match s.file_off {
                        Some(f) => {
                            let a = f + (pos - s.start);
                            out.extend_from_slice(data.get(a as usize..(a + n) as usize)?);
                        }
                        None => out.resize(out.len() + n as usize, 0),
                    }
                    pos += n;
                    i += 1;
                }
                Some(Cow::Owned(out))
            }
        }
    }

    /// Like [`Source::get`], with a `Truncated` error naming `what`.
    pub(crate) fn need<'a>(
        &self,
        data: &'a [u8],
        path: &Path,
        off: u64,
        len: u64,
        what: &str,
    ) -> Result<Cow<'a, [u8]>, FileError> {
        self.get(data, off, len)
            .ok_or_else(|| FileError::Truncated {
                path: path.to_path_buf(),
                offset: off,
                what: match self {
                    Source::Direct => what.to_string(),
                    Source::Flat { .. } => {
                        format!("{what} (logical offset in the flattened stream)")
                    }
                },
                needed: len,
            })
    }
}

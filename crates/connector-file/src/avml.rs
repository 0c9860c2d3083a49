//! AVML images (Microsoft's Acquire Volatile Memory for Linux, compressed format): LiME-like
//! 32-byte headers with magic 0x4C4D5641 (`AVML` on disk) and version 2; each header's
//! range (`e_addr` inclusive) is stored as a snappy *framed* stream followed by a u64 (LE)
//! count of the stream's bytes. AVML splits ranges into blocks of at most 16 MiB; some
//! versions write only the header of a block that is all zeros (no stream, no count): such
//! blocks read as zeros. A header without a stream that claims more than 16 MiB
//! ([`MAX_ZERO_BLOCK`]) is an error (the compressed stream
//! must be present).
//!
//! **Key decision: random access through a chunk index.** A framed stream is a sequence of
//! chunks that each decompress to at most 64 KiB; opening walks the chunk headers once
//! (reading only each chunk's varint length, not decompressing) and records
//! (physical start, length, file offset, kind). A read decompresses only the chunks it
//! touches, through the shared [`BlockCache`] keyed by chunk number. Chunk CRCs are not
//! verified (a corrupt chunk still fails to decompress or decompresses to the wrong
//! length, which is an error).
//!
//! Caps (see [`limits`](crate::limits)): at most [`MAX_AVML_CHUNKS`] chunks (24 bytes of
//! index each; a stream of tiny chunks is refused when it passes the cap, not after), at
//! most [`MAX_RANGE_HEADERS`](crate::limits::MAX_RANGE_HEADERS) headers, and header-only
//! zero blocks adding up to at most the decompressed bytes plus
//! [`MAX_ZERO_EXCESS`](crate::limits::MAX_ZERO_EXCESS). The ranges are coalesced as they
//! are built from the sorted chunks.

use std::path::Path;
use std::sync::Arc;

use memlens_core::{Error, MemRange, MemoryMetadata, MemoryView, PhysAddr, ReadOp};

use crate::bytes::Bytes;
use crate::cache::BlockCache;
use crate::error::FileError;
use crate::format::ranges::{
    check_disjoint, check_header_count, check_zero_claims, header_at, missing_data, HEADER_LEN,
    MAX_ZERO_BLOCK,
};
use crate::format::{Detected, Format, Open, Parsed, Reader};
use crate::limits::Caps;
pub use crate::limits::MAX_AVML_CHUNKS;
use crate::mapped::MappedFile;

/// AVML header magic (`AVML` on disk, 0x4C4D5641 little-endian).
pub const AVML_MAGIC: u32 = 0x4C4D_5641;

/// The format table's signature check: the first header's magic.
pub(crate) fn detect(head: &[u8]) -> Option<Detected> {
    head.starts_with(&AVML_MAGIC.to_le_bytes())
        .then_some(Detected::Known(Format::Avml))
}

/// The snappy framing stream identifier chunk.
const STREAM_ID: &[u8; 10] = b"\xff\x06\x00\x00sNaPpY";
/// Largest decompressed chunk the framing format allows.
const MAX_CHUNK: u64 = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Snappy = 0,
    Stored = 1,
    Zero = 2,
}

/// One entry of the chunk index: 24 bytes (the index is the one table of an AVML file
/// that grows with the file).
#[derive(Debug, Clone, Copy)]
struct Chunk {
    start: u64,
    /// File offset of the chunk's payload (after the CRC); of its header for a zero block.
    file_off: u64,
    /// Decompressed length: at most 64 KiB, or [`MAX_ZERO_BLOCK`] (2^24) for a zero block.
    len: u32,
    /// Payload length (below 2^24: a chunk length is 24 bits) in the low 24 bits, the
    /// [`Kind`] in the high 8.
    packed: u32,
}

impl Chunk {
    fn new(start: u64, len: u64, file_off: u64, file_len: u64, kind: Kind) -> Chunk {
        debug_assert!(len <= MAX_ZERO_BLOCK && file_len < 1 << 24);
        Chunk {
            start,
            file_off,
            len: len as u32,
            packed: (file_len as u32 & 0xff_ffff) | (kind as u32) << 24,
        }
    }
    fn len(&self) -> u64 {
        u64::from(self.len)
    }
    fn file_len(&self) -> u64 {
        u64::from(self.packed & 0xff_ffff)
    }
    fn kind(&self) -> Kind {
        match self.packed >> 24 {
            0 => Kind::Snappy,
            1 => Kind::Stored,
            _ => Kind::Zero,
        }
    }
}

/// Physical memory of an AVML file. See the module documentation.
pub struct AvmlMemory {
    file: MappedFile,
    chunks: Vec<Chunk>,
    ranges: Vec<MemRange<PhysAddr>>,
    /// Sum of the ranges' lengths.
    real_size: u64,
    cache: BlockCache,
}

fn index_stream(
    b: &Bytes<'_>,
    mut off: u64,
    range: (u64, u64),
    chunks: &mut Vec<Chunk>,
    max_chunks: usize,
) -> Result<u64, FileError> {
    let (start, len) = range;
    let begin = off;
    let mut done = 0u64;
    while done < len {
        let kind = b.u8(off, "snappy chunk type")?;
        let l = b.slice(off + 1, 3, "snappy chunk length")?;
        let clen = u64::from(l[0]) | u64::from(l[1]) << 8 | u64::from(l[2]) << 16;
        let body = off + 4;
        b.slice(body, clen, "snappy chunk data (chunk length)")?;
        match kind {
            0x00 | 0x01 => {
                if clen < 4 {
                    return Err(b.bad(
                        off + 1,
                        "snappy chunk length",
                        format!("{clen} < 4 (no CRC)"),
                    ));
                }
                let payload = b.slice(body + 4, clen - 4, "snappy chunk payload")?;
                let ulen = if kind == 0x00 {
                    snap::raw::decompress_len(payload).map_err(|e| {
                        b.bad(body + 4, "snappy chunk uncompressed length", e.to_string())
                    })? as u64
                } else {
                    clen - 4
                };
                if ulen == 0 || ulen > MAX_CHUNK || done + ulen > len {
                    return Err(b.bad(
                        body + 4,
                        "snappy chunk uncompressed length",
                        format!(
                            "{ulen} bytes (at most 65536, and {} left in the range)",
                            len - done
                        ),
                    ));
                }
                if chunks.len() >= max_chunks {
                    return Err(b.limit(
                        off,
                        "snappy chunk",
                        format!("chunk number {}", chunks.len() + 1),
                        "MAX_AVML_CHUNKS",
                        max_chunks as u64,
                    ));
                }
                let kind = if kind == 0 {
                    Kind::Snappy
                } else {
                    Kind::Stored
                };
                chunks.push(Chunk::new(start + done, ulen, body + 4, clen - 4, kind));
                done += ulen;
            }
            0xff => {
                if b.slice(off, 10, "snappy stream identifier")? != STREAM_ID {
                    return Err(b.bad(off, "snappy stream identifier", "not sNaPpY"));
                }
            }
            0x80..=0xfe => {} // padding and skippable chunks
            k => {
                return Err(b.bad(
                    off,
                    "snappy chunk type",
                    format!("{k:#x} is reserved (unskippable)"),
                ))
            }
        }
        off = body + clen;
    }
    let count = b.u64(off, "AVML compressed size (after the stream)")?;
    if count != off - begin {
        return Err(b.bad(
            off,
            "AVML compressed size",
            format!("{count:#x}, but the stream is {:#x} bytes", off - begin),
        ));
    }
    Ok(off + 8)
}

fn is_avml_header(b: &Bytes<'_>, off: u64) -> bool {
    off.checked_add(HEADER_LEN).is_some_and(|e| e <= b.len())
        && b.u32(off, "").ok() == Some(AVML_MAGIC)
}

/// Indexes an AVML file.
fn parse(data: &[u8], path: &Path, caps: &Caps) -> Result<(Vec<Chunk>, usize), FileError> {
    let b = Bytes::new(data, 0, path);
    let mut off = 0u64;
    let mut chunks = Vec::new();
    let mut headers = Vec::new();
    let mut backed = 0u64;
    while off < b.len() {
        check_header_count(&b, off, headers.len(), caps.range_headers)?;
        let h = header_at(&b, off, AVML_MAGIC, 2)?.ok_or_else(|| {
            b.bad(
                off,
                "range header magic",
                "expected the AVML magic 0x4c4d5641",
            )
        })?;
        headers.push((h, off));
        let data_off = off + HEADER_LEN;
        if b.slice(data_off, 10, "").ok() == Some(&STREAM_ID[..]) {
            off = index_stream(
                &b,
                data_off,
                (h.start, h.len),
                &mut chunks,
                caps.avml_chunks,
            )?;
            backed = backed.saturating_add(h.len);
        } else if data_off == b.len() || is_avml_header(&b, data_off) {
            if h.len > MAX_ZERO_BLOCK {
                return Err(missing_data(
                    &b,
                    off,
                    h,
                    "the AVML compressed stream must be present",
                ));
            }
            if chunks.len() >= caps.avml_chunks {
                return Err(b.limit(
                    off,
                    "header-only (all-zero) block",
                    format!("chunk number {}", chunks.len() + 1),
                    "MAX_AVML_CHUNKS",
                    caps.avml_chunks as u64,
                ));
            }
            chunks.push(Chunk::new(h.start, h.len, off, 0, Kind::Zero));
            off = data_off;
        } else {
            return Err(b.bad(
                data_off,
                "AVML range data",
                "neither a snappy stream nor the next header",
            ));
        }
    }
    if headers.is_empty() {
        return Err(b.truncated(0, "AVML range header", HEADER_LEN));
    }
    check_zero_claims(
        &b,
        chunks
            .iter()
            .filter(|c| c.kind() == Kind::Zero)
            .map(|c| (c.file_off, c.len())),
        backed,
    )?;
    check_disjoint(&b, &mut headers)?;
    chunks.sort_by_key(|c| c.start);
    Ok((chunks, headers.len()))
}

pub(crate) fn open(file: MappedFile, o: &Open<'_>) -> Result<Parsed<Arc<AvmlMemory>>, FileError> {
    let (chunks, headers) = parse(file.bytes(), file.path(), o.caps)?;
    // Coalesced as built: chunks are sorted and disjoint, and mostly continue each other.
    let mut ranges: Vec<MemRange<PhysAddr>> = Vec::new();
    for c in &chunks {
        match ranges.last_mut() {
            Some(last) if last.end_u64() == c.start => last.len += c.len(),
            _ => ranges.push(MemRange::new(PhysAddr(c.start), c.len())),
        }
    }
    let real_size = ranges.iter().map(|r| r.len).sum();
    let details = vec![
        ("AVML blocks".to_string(), headers.to_string()),
        ("snappy chunks".to_string(), chunks.len().to_string()),
    ];
    Ok(Parsed {
        memory: Arc::new(AvmlMemory {
            file,
            chunks,
            ranges,
            real_size,
            cache: BlockCache::new(o.cache_bytes, MAX_CHUNK),
        }),
        format: Format::Avml,
        version: Some("2".into()),
        cpus: Vec::new(),
        vmcoreinfo: None,
        details,
    })
}

impl Reader for AvmlMemory {
    fn file_size(&self) -> u64 {
        AvmlMemory::file_size(self)
    }
}

impl AvmlMemory {
    /// Size of the file.
    pub fn file_size(&self) -> u64 {
        self.file.file_size()
    }

    fn chunk_data(&self, i: usize) -> Result<Arc<[u8]>, Error> {
        if let Some(hit) = self.cache.get(i as u64) {
            return Ok(hit);
        }
        let c = self.chunks[i];
        let corrupt = |what: String| Error::Corrupt {
            location: format!("{} offset {:#x}", self.file.path().display(), c.file_off),
            what,
        };
        let src = self
            .file
            .bytes()
            .get(c.file_off as usize..(c.file_off + c.file_len()) as usize)
            .ok_or_else(|| corrupt("chunk past the end of the file".into()))?;
        let data: Arc<[u8]> = match c.kind() {
            Kind::Stored => Arc::from(src),
            Kind::Zero => Arc::from(vec![0u8; c.len() as usize]),
            Kind::Snappy => {
                let mut out = vec![0u8; c.len() as usize];
                let n = snap::raw::Decoder::new()
                    .decompress(src, &mut out)
                    .map_err(|e| corrupt(format!("snappy chunk: {e}")))?;
                if n as u64 != c.len() {
                    return Err(corrupt(format!(
                        "snappy chunk gave {n} bytes, expected {}",
                        c.len()
                    )));
                }
                Arc::from(out)
            }
        };
        self.cache.insert(i as u64, data.clone());
        Ok(data)
    }

    fn max(&self) -> u64 {
        self.ranges
            .last()
            .map_or(0, |r| r.end_u64().saturating_sub(1))
    }
}

impl MemoryView for AvmlMemory {
    type Addr = PhysAddr;

    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        for op in ops.iter_mut() {
            let len = op.buf.len();
            op.result = Ok(());
            let mut off = 0usize;
            while off < len {
                let a = op.addr.0.wrapping_add(off as u64);
                let i = self.chunks.partition_point(|c| c.start <= a);
                let hit = i
                    .checked_sub(1)
                    .map(|j| (j, self.chunks[j]))
                    .filter(|(_, c)| a - c.start < c.len());
                let (n, res) = match hit {
                    Some((j, c)) => {
                        let n = ((c.len() - (a - c.start)) as usize).min(len - off);
                        let r = if c.kind() == Kind::Zero {
                            op.buf[off..off + n].fill(0);
                            Ok(())
                        } else {
                            self.chunk_data(j).map(|d| {
                                let s = (a - c.start) as usize;
                                op.buf[off..off + n].copy_from_slice(&d[s..s + n]);
                            })
                        };
                        (n, r)
                    }
                    None => {
                        let next = self.chunks.get(i).map_or(u64::MAX, |c| c.start);
                        let n = (next.saturating_sub(a) as usize).min(len - off).max(1);
                        let e = if a > self.max() {
                            Error::OutOfRange {
                                addr: PhysAddr(a),
                                len: n,
                                max: PhysAddr(self.max()),
                            }
                        } else {
                            Error::Gap { addr: PhysAddr(a) }
                        };
                        (n, Err(e))
                    }
                };
                if let Err(e) = res {
                    op.buf[off..off + n].fill(0);
                    memlens_core::mem::record_failure(&mut op.result, len, off, n, e);
                }
                off += n;
            }
            memlens_core::mem::finish_partial(&mut op.result);
        }
    }

    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(self.max()),
            real_size: self.real_size,
            readonly: true,
            preferred_batch: 256,
        }
    }

    fn ranges(&self) -> Vec<MemRange<PhysAddr>> {
        self.ranges.clone()
    }
}

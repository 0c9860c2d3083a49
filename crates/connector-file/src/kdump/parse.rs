//! Parsing the kdump headers and tables at open: the disk and sub-headers, the bitmaps
//! (read [`CHUNK`] bytes at a time), the readable runs (at most
//! [`MAX_RANGES`](crate::limits::MAX_RANGES)), the note area and VMCOREINFO text.

use std::collections::BTreeMap;
use std::path::Path;

use memlens_core::bounded::CHUNK;
use memlens_core::{MemRange, PhysAddr};

use crate::bytes::{le64, Bytes};
use crate::error::FileError;
use crate::flat::Source;
use crate::limits::{claim, Table, MAX_CPUS, MAX_NOTE_BYTES, MAX_VMCOREINFO};
use crate::notes::{self, Machine, NoteBudget};

/// makedumpfile signature.
pub const KDUMP_SIGNATURE: &[u8; 8] = b"KDUMP   ";

/// What the headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdumpHeader {
    /// `header_version`.
    pub version: u32,
    /// `utsname` fields: sysname, nodename, release, version, machine, domainname.
    pub utsname: [String; 6],
    /// Page size.
    pub block_size: u64,
    /// Sub-header length in blocks.
    pub sub_hdr_size: u64,
    /// Bitmap length in blocks (both bitmaps).
    pub bitmap_blocks: u64,
    /// Number of page frames covered.
    pub max_mapnr: u64,
    /// `nr_cpus`.
    pub nr_cpus: u32,
    /// `status` (compression flags of the whole dump).
    pub status: u32,
    /// `phys_base`.
    pub phys_base: u64,
    /// `dump_level`.
    pub dump_level: u32,
    /// Whether this file is one part of a split dump.
    pub split: bool,
    /// First and last+1 pfn of this part (split dumps).
    pub pfn_range: (u64, u64),
}

/// The first `bits` bits of the bitmap at logical offset `off`, as little-endian words,
/// read [`CHUNK`] bytes at a time (a flattened file assembles at most one chunk at once).
pub(super) fn read_words(
    data: &[u8],
    source: &Source,
    path: &Path,
    off: u64,
    bits: u64,
    what: &str,
) -> Result<Vec<u64>, FileError> {
    let bytes = bits.div_ceil(8);
    // Bounded by the caller's claim of the bitmaps (MAX_BITMAP_BYTES).
    let mut out: Vec<u64> = Vec::with_capacity(bits.div_ceil(64) as usize);
    let mut done = 0u64;
    while done < bytes {
        let n = (bytes - done).min(CHUNK as u64);
        let chunk = source.need(data, path, off + done, n, what)?;
        out.extend(chunk.chunks(8).map(|c| {
            let mut a = [0u8; 8];
            a[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(a)
        }));
        done += n;
    }
    if let Some(last) = out.last_mut() {
        let tail = bits % 64;
        if tail != 0 {
            *last &= (1u64 << tail) - 1;
        }
    }
    Ok(out)
}

/// Parses the headers of a kdump file (`b` = the logical bytes of block 0 and the
/// sub-header).
pub(super) fn parse_header(
    data: &[u8],
    source: &Source,
    path: &Path,
) -> Result<KdumpHeader, FileError> {
    let head = source.need(data, path, 0, 464, "kdump disk_dump_header")?;
    let b = Bytes::new(&head, 0, path);
    if b.slice(0, 8, "kdump signature")? != KDUMP_SIGNATURE {
        return Err(b.bad(0, "kdump signature", "not `KDUMP   `"));
    }
    let version = b.u32(8, "kdump header_version")?;
    if version == 0 || version > 64 {
        return Err(b.bad(
            8,
            "kdump header_version",
            format!("{version} (expected 1..=6)"),
        ));
    }
    let uts = |i: u64| b.cstr(12 + 65 * i, 65, "kdump utsname");
    let utsname = [uts(0)?, uts(1)?, uts(2)?, uts(3)?, uts(4)?, uts(5)?];
    let status = b.u32(424, "kdump status")?;
    let block_size = u64::from(b.u32(428, "kdump block_size")?);
    if !block_size.is_power_of_two() || !(1024..=1 << 20).contains(&block_size) {
        return Err(b.bad(
            428,
            "kdump block_size",
            format!("{block_size} is not a power of two between 1 KiB and 1 MiB (a 32-bit dump?)"),
        ));
    }
    let sub_hdr_size = u64::from(b.u32(432, "kdump sub_hdr_size")?);
    let bitmap_blocks = u64::from(b.u32(436, "kdump bitmap_blocks")?);
    let max_mapnr32 = u64::from(b.u32(440, "kdump max_mapnr")?);
    let nr_cpus = b.u32(460, "kdump nr_cpus")?;
    if nr_cpus as usize > MAX_CPUS {
        return Err(b.limit(
            460,
            "kdump nr_cpus",
            format!("{nr_cpus} vCPUs"),
            "MAX_CPUS",
            MAX_CPUS as u64,
        ));
    }
    if sub_hdr_size == 0 {
        return Err(b.bad(432, "kdump sub_hdr_size", "0 (no sub-header)"));
    }
    // Fields up to max_mapnr_64 (v6): 104 bytes; the sub-header block is at least 1 KiB.
    let sub_raw = source.need(data, path, block_size, 104, "kdump_sub_header")?;
    let s = Bytes::new(&sub_raw, block_size, path);
    let phys_base = s.u64(0, "kdump_sub_header phys_base")?;
    let dump_level = s.u32(8, "kdump_sub_header dump_level")?;
    let split = s.u32(12, "kdump_sub_header split")? != 0;
    let mut pfn_range = (
        s.u64(16, "kdump_sub_header start_pfn")?,
        s.u64(24, "kdump_sub_header end_pfn")?,
    );
    let max_mapnr = if version >= 6 {
        pfn_range = (
            s.u64(80, "kdump_sub_header start_pfn_64")?,
            s.u64(88, "kdump_sub_header end_pfn_64")?,
        );
        s.u64(96, "kdump_sub_header max_mapnr_64")?
    } else {
        max_mapnr32
    };
    if !split {
        pfn_range = (0, max_mapnr);
    }
    if pfn_range.0 > pfn_range.1 {
        return Err(s.bad(
            if version >= 6 { 80 } else { 16 },
            "kdump_sub_header start_pfn",
            format!(
                "{:#x} is above end_pfn {:#x} (split dump)",
                pfn_range.0, pfn_range.1
            ),
        ));
    }
    Ok(KdumpHeader {
        version,
        utsname,
        block_size,
        sub_hdr_size,
        bitmap_blocks,
        max_mapnr,
        nr_cpus,
        status,
        phys_base,
        dump_level,
        split,
        pfn_range,
    })
}

/// The runs of readable pages (`readable(w)`: the bits of word `w`) within `pfns`, as
/// byte ranges of `bs`-byte pages; `Err` with what was asked when there are more than
/// `cap` runs. One pass over the words, skipping words that cannot end or start a run.
pub(super) fn readable_runs(
    words: usize,
    readable: impl Fn(usize) -> u64,
    pfns: (u64, u64),
    bs: u64,
    cap: usize,
) -> Result<Vec<MemRange<PhysAddr>>, String> {
    let (start_pfn, end_pfn) = pfns;
    let mut ranges: Vec<MemRange<PhysAddr>> = Vec::new();
    // The caller checked max_mapnr × bs ≤ MAX_PHYS_ADDR; checked anyway, as an error.
    let range = |s: u64, e: u64| -> Result<MemRange<PhysAddr>, String> {
        match (s.checked_mul(bs), (e - s).checked_mul(bs)) {
            (Some(a), Some(l)) => Ok(MemRange::new(PhysAddr(a), l)),
            _ => Err(format!("pages {s:#x}..{e:#x} of {bs} bytes overflow")),
        }
    };
    let push = |ranges: &mut Vec<_>, s: u64, e: u64| -> Result<(), String> {
        if ranges.len() >= cap {
            return Err(format!(
                "more than {cap} runs of readable pages (the run at pfn {s:#x} is one too many)"
            ));
        }
        ranges.push(range(s, e)?);
        Ok(())
    };
    let mut run: Option<u64> = None;
    for w in 0..words {
        let word = readable(w);
        if run.is_none() && word == 0 || run.is_some() && word == u64::MAX {
            continue;
        }
        for b in 0..64u64 {
            let pfn = w as u64 * 64 + b;
            let set = word & (1 << b) != 0 && pfn >= start_pfn && pfn < end_pfn;
            match (set, run) {
                (true, None) => run = Some(pfn),
                (false, Some(s)) => {
                    push(&mut ranges, s, pfn)?;
                    run = None;
                }
                _ => {}
            }
        }
    }
    if let Some(s) = run {
        let end = (words as u64 * 64).min(end_pfn);
        push(&mut ranges, s, end)?;
    }
    Ok(ranges)
}

/// The notes of the kdump note area (header version 4 and later).
pub(super) fn read_notes(
    data: &[u8],
    source: &Source,
    path: &Path,
    h: &KdumpHeader,
) -> Result<notes::NoteInfo, FileError> {
    if h.version < 4 {
        return Ok(notes::NoteInfo::default());
    }
    let sub = source.need(
        data,
        path,
        h.block_size + 48,
        16,
        "kdump_sub_header offset_note",
    )?;
    let (off, size) = (le64(&sub, 0).unwrap_or(0), le64(&sub, 8).unwrap_or(0));
    if size == 0 {
        return Ok(notes::NoteInfo::default());
    }
    let what = "kdump notes (offset_note, size_note)";
    claim(
        path,
        Table {
            what,
            field_at: h.block_size + 56,
            at: off,
            count: size,
            elem: 1,
        },
        source.len(data).saturating_sub(off),
        ("MAX_NOTE_BYTES", MAX_NOTE_BYTES),
    )?;
    let blob = source.need(data, path, off, size, what)?;
    let notes = notes::parse_notes(Bytes::new(&blob, off, path), &mut NoteBudget::default())?;
    Ok(notes::interpret(&notes, Machine::from_uname(&h.utsname[4])))
}

pub(super) type Vmcoreinfo = BTreeMap<String, String>;

/// The VMCOREINFO text of the sub-header (header version 3 and later): at most
/// [`MAX_VMCOREINFO`] bytes are read, and a note of what was cut.
pub(super) fn read_vmcoreinfo_text(
    data: &[u8],
    source: &Source,
    path: &Path,
    h: &KdumpHeader,
) -> Result<(Option<Vmcoreinfo>, Option<String>), FileError> {
    if h.version < 3 {
        return Ok((None, None));
    }
    let sub = source.need(
        data,
        path,
        h.block_size + 32,
        16,
        "kdump_sub_header offset_vmcoreinfo",
    )?;
    let (off, size) = (le64(&sub, 0).unwrap_or(0), le64(&sub, 8).unwrap_or(0));
    if size == 0 {
        return Ok((None, None));
    }
    let what = "kdump VMCOREINFO (offset_vmcoreinfo, size_vmcoreinfo)";
    if off.checked_add(size).is_none_or(|e| e > source.len(data)) {
        return Err(FileError::Truncated {
            path: path.to_path_buf(),
            offset: off,
            what: what.into(),
            needed: size,
        });
    }
    let text = source.need(data, path, off, size.min(MAX_VMCOREINFO), what)?;
    let (map, cut) = notes::vmcoreinfo_capped(&text, size, off);
    Ok((Some(map), cut))
}

//! Dump post-processing: a minimal ELF program-header reader and the raw-image writer.
//!
//! Key decision: this reader is written for the lab alone and shares nothing with memlens'
//! own ELF-core parser, so a bug in the parser cannot hide itself by also being in the
//! fixture builder. It reads only what the lab needs (class, endianness, program headers).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// ELF `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// ELF `PT_INTERP`.
pub const PT_INTERP: u32 = 3;
/// ELF `PT_NOTE`.
pub const PT_NOTE: u32 = 4;

/// One program header of a 64-bit little-endian ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramHeader {
    /// `p_type`.
    pub kind: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`: where the bytes are in the file.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`: for QEMU dumps, the guest-physical address.
    pub paddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the program headers of a 64-bit little-endian ELF file.
pub fn program_headers(path: &Path) -> Result<Vec<ProgramHeader>> {
    let bad = |detail: &str| Error::Format {
        what: "ELF file",
        path: path.into(),
        detail: detail.into(),
    };
    let mut f = File::open(path).map_err(Error::io("open", path))?;
    let mut eh = [0u8; 64];
    f.read_exact(&mut eh)
        .map_err(|_| bad("shorter than an ELF64 header"))?;
    if &eh[..4] != b"\x7fELF" {
        return Err(bad("no \\x7fELF magic"));
    }
    if eh[4] != 2 || eh[5] != 1 {
        return Err(bad("not ELFCLASS64 little-endian"));
    }
    let phoff = le64(&eh, 32).ok_or_else(|| bad("e_phoff"))?;
    let phentsize = le16(&eh, 54).ok_or_else(|| bad("e_phentsize"))? as usize;
    let mut phnum = le16(&eh, 56).ok_or_else(|| bad("e_phnum"))? as u64;
    if phentsize < 56 {
        return Err(bad("e_phentsize < 56"));
    }
    if phnum == 0xffff {
        // PN_XNUM: the real count is in section header 0's sh_info.
        let shoff = le64(&eh, 40).ok_or_else(|| bad("e_shoff"))?;
        let mut sh = [0u8; 64];
        f.seek(SeekFrom::Start(shoff))
            .map_err(Error::io("seek", path))?;
        f.read_exact(&mut sh)
            .map_err(|_| bad("PN_XNUM but section header 0 unreadable"))?;
        phnum = le32(&sh, 44).ok_or_else(|| bad("sh_info"))? as u64;
    }
    if phnum > 1_000_000 {
        return Err(bad("implausible program header count"));
    }
    let mut table = vec![0u8; phnum as usize * phentsize];
    f.seek(SeekFrom::Start(phoff))
        .map_err(Error::io("seek", path))?;
    f.read_exact(&mut table)
        .map_err(|_| bad("program header table truncated"))?;
    let mut out = Vec::with_capacity(phnum as usize);
    for e in table.chunks_exact(phentsize) {
        let get = |at| le64(e, at).ok_or_else(|| bad("program header"));
        out.push(ProgramHeader {
            kind: le32(e, 0).ok_or_else(|| bad("p_type"))?,
            flags: le32(e, 4).ok_or_else(|| bad("p_flags"))?,
            offset: get(8)?,
            vaddr: get(16)?,
            paddr: get(24)?,
            filesz: get(32)?,
            memsz: get(40)?,
        });
    }
    Ok(out)
}

/// Whether an ELF executable is statically linked (has no `PT_INTERP`).
pub fn is_static_elf(path: &Path) -> Result<bool> {
    Ok(!program_headers(path)?.iter().any(|p| p.kind == PT_INTERP))
}

/// A guest-physical range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhysRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

impl PhysRange {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    /// Whether the ranges overlap.
    pub fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

const ZERO_PAGE: [u8; 4096] = [0; 4096];

/// Writes a raw physical image from an ELF dump: each `PT_LOAD` whose range overlaps one of
/// `keep` is copied to file offset = `p_paddr`; all-zero 4 KiB blocks become holes (sparse
/// file). Returns the ranges written and the file length.
pub fn write_raw(elf: &Path, raw: &Path, keep: &[PhysRange]) -> Result<(Vec<PhysRange>, u64)> {
    let phdrs = program_headers(elf)?;
    let mut input = File::open(elf).map_err(Error::io("open", elf))?;
    let input_len = input.metadata().map_err(Error::io("stat", elf))?.len();
    let mut out = File::create(raw).map_err(Error::io("create", raw))?;
    let mut written = Vec::new();
    let mut end = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for ph in phdrs.iter().filter(|p| p.kind == PT_LOAD && p.filesz > 0) {
        let range = PhysRange {
            start: ph.paddr,
            end: ph.paddr + ph.filesz,
        };
        if !keep.is_empty() && !keep.iter().any(|k| k.overlaps(&range)) {
            continue;
        }
        if !matches!(ph.offset.checked_add(ph.filesz), Some(e) if e <= input_len) {
            return Err(Error::Format {
                what: "ELF dump",
                path: elf.into(),
                detail: format!(
                    "PT_LOAD at paddr {:#x} extends past the end of the file",
                    ph.paddr
                ),
            });
        }
        input
            .seek(SeekFrom::Start(ph.offset))
            .map_err(Error::io("seek", elf))?;
        let mut done = 0u64;
        while done < ph.filesz {
            let n = (ph.filesz - done).min(buf.len() as u64) as usize;
            input
                .read_exact(&mut buf[..n])
                .map_err(Error::io("read", elf))?;
            for (i, block) in buf[..n].chunks(4096).enumerate() {
                // Slice equality compiles to memcmp: fast even in debug builds.
                if block == &ZERO_PAGE[..block.len()] {
                    continue;
                }
                let at = ph.paddr + done + (i * 4096) as u64;
                out.seek(SeekFrom::Start(at))
                    .map_err(Error::io("seek", raw))?;
                out.write_all(block).map_err(Error::io("write", raw))?;
            }
            done += n as u64;
        }
        written.push(range);
        end = end.max(range.end);
    }
    out.set_len(end).map_err(Error::io("set length of", raw))?;
    Ok((written, end))
}

/// Size of a file in bytes (its apparent length).
pub fn file_len(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path).map_err(Error::io("stat", path))?.len())
}

/// Every offset at which `needle` occurs in a file, reading only its data regions
/// (`SEEK_DATA`/`SEEK_HOLE`), so multi-GiB sparse raw images are searched in a moment.
/// A match that would include bytes of a hole (zeros) is not reported; search for strings
/// without NUL bytes.
pub fn find_in_file(path: &Path, needle: &[u8]) -> Result<Vec<u64>> {
    use std::os::fd::AsRawFd;
    let mut f = File::open(path).map_err(Error::io("open", path))?;
    let len = f.metadata().map_err(Error::io("stat", path))?.len();
    let fd = f.as_raw_fd();
    let mut hits = Vec::new();
    if needle.is_empty() {
        return Ok(hits);
    }
    let mut pos: u64 = 0;
    let mut buf = Vec::new();
    while pos < len {
        // SAFETY: lseek on an owned, open descriptor; no memory is involved.
        let data = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            break; // ENXIO: no data after pos
        }
        // SAFETY: lseek on the same owned, open descriptor; no memory is involved.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let (start, end) = (data as u64, if hole < 0 { len } else { hole as u64 });
        // Read the data region in bounded chunks that overlap by needle.len() - 1.
        let mut at = start;
        while at < end {
            let n = (end - at).min(64 << 20) as usize;
            let want = (n + needle.len() - 1).min((end - at) as usize);
            buf.resize(want, 0);
            f.seek(SeekFrom::Start(at))
                .map_err(Error::io("seek", path))?;
            f.read_exact(&mut buf).map_err(Error::io("read", path))?;
            let mut i = 0;
            while let Some(k) = memmem(buf.get(i..).unwrap_or(&[]), needle) {
                let off = at + (i + k) as u64;
                if off < at + n as u64 {
                    hits.push(off);
                }
                i += k + 1;
            }
            at += n as u64;
        }
        pos = end;
    }
    Ok(hits)
}

/// glibc's `memmem`: optimized native code even in debug builds of the tests.
fn memmem(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    // SAFETY: both pointers/lengths come from live slices; memmem only reads them and
    // returns null or a pointer into `haystack`.
    let p = unsafe {
        libc::memmem(
            haystack.as_ptr().cast(),
            haystack.len(),
            needle.as_ptr().cast(),
            needle.len(),
        )
    };
    if p.is_null() {
        None
    } else {
        Some(p as usize - haystack.as_ptr() as usize)
    }
}

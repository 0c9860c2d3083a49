//! ELF core dumps (QEMU `dump-guest-memory`, kdump `/proc/vmcore`, `paging=true` dumps):
//! `PT_LOAD`s become a guest-physical [`MemoryMap`] read by [`MappedFile`],
//! `PT_NOTE`s become registers and VMCOREINFO.
//!
//! **Key decisions:**
//! - Guest-physical addresses come from `p_paddr`; `p_vaddr` is ignored (in `paging=true`
//!   dumps it holds the guest-virtual address, in `/proc/vmcore` the direct-map address).
//! - Overlapping `PT_LOAD`s are merged when they agree (same `p_paddr` → `p_offset`
//!   relation). When they disagree, **the first program header wins** for the overlapping
//!   bytes (kexec's vmcore repeats the kernel text in its own `PT_LOAD` with identical
//!   content; refusing the dump would help nobody). The number of conflicting bytes is
//!   reported in the dump details.
//! - `p_memsz > p_filesz`: the tail `[p_paddr + p_filesz, p_paddr + p_memsz)` reads as
//!   zeros (ELF semantics, used by kdump for excluded zero pages). It is a zero-fill region
//!   of the [`MappedFile`], listed in `ranges()` like backed memory.
//! - 32- and 64-bit, little- and big-endian; `PN_XNUM` (more than 65 534 headers, as in
//!   `paging=true` dumps) is followed to section header 0. Adjacent `PT_LOAD`s that
//!   continue each other (tens of thousands of 4 KiB segments) are coalesced.
//! - Hostile counts (see [`limits`](crate::limits)): at most [`MAX_PHDRS`] program headers,
//!   read one at a time (never copied into a table); at most [`MAX_NOTE_SEGMENTS`]
//!   `PT_NOTE`s of at most [`MAX_NOTE_BYTES`] each, copies of one segment (same offset
//!   and size) read once, and one note budget ([`MAX_NOTES`](crate::limits::MAX_NOTES),
//!   [`MAX_CPUS`](crate::limits::MAX_CPUS)) for all of them; zero-filled tails
//!   (`p_memsz - p_filesz`) adding up to at most [`MAX_PHYS_ADDR`].

use std::path::Path;
use std::sync::Arc;

use memlens_core::memmap::MapEntry;
use memlens_core::{MemoryMap, PhysAddr};

use crate::bytes::Bytes;
use crate::error::FileError;
use crate::format::{Detected, Format, Open, Parsed};
use crate::intervals::{Backing, IntervalMap};
use crate::limits::{claim, Table};
pub use crate::limits::{MAX_NOTE_BYTES, MAX_NOTE_SEGMENTS, MAX_PHDRS, MAX_PHYS_ADDR};
use crate::mapped::MappedFile;
use crate::notes::{self, Machine, NoteBudget, NoteInfo};

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// `ET_CORE`.
pub const ET_CORE: u16 = 4;
const PN_XNUM: u64 = 0xffff;

/// What an ELF core file holds.
#[derive(Debug, Clone)]
pub struct ElfLayout {
    /// 32 or 64.
    pub class: u8,
    /// Byte order.
    pub big_endian: bool,
    /// `e_machine`.
    pub e_machine: u16,
    /// `e_type`.
    pub e_type: u16,
    /// Number of `PT_LOAD` headers.
    pub loads: usize,
    /// Guest-physical → file offset.
    pub map: MemoryMap,
    /// Ranges that read as zeros (`p_memsz > p_filesz`); `backing` is meaningless.
    pub zero_fill: MemoryMap,
    /// Bytes claimed by two `PT_LOAD`s with different contents (first header won).
    pub conflicting_bytes: u64,
    /// Registers and VMCOREINFO from the notes.
    pub notes: NoteInfo,
}

/// Whether `data` starts like an ELF core file (magic and `e_type == ET_CORE`).
pub fn looks_like_core(data: &[u8]) -> bool {
    data.len() >= 18 && data.starts_with(b"\x7fELF") && {
        let t = [data[16], data[17]];
        let e_type = if data[5] == 2 {
            u16::from_be_bytes(t)
        } else {
            u16::from_le_bytes(t)
        };
        e_type == ET_CORE
    }
}

struct Phdr {
    kind: u32,
    offset: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    /// File offset of this header (for errors).
    at: u64,
}

/// Parses an ELF file's program headers and notes.
pub fn parse(data: &[u8], path: &Path) -> Result<ElfLayout, FileError> {
    let b0 = Bytes::new(data, 0, path);
    let ident = b0.slice(0, 16, "ELF e_ident")?;
    if &ident[..4] != b"\x7fELF" {
        return Err(b0.bad(0, "ELF magic", "not \\x7fELF"));
    }
    let class = match ident[4] {
        1 => 32u8,
        2 => 64,
        c => return Err(b0.bad(4, "ELF EI_CLASS", format!("{c} (expected 1 or 2)"))),
    };
    let big_endian = match ident[5] {
        1 => false,
        2 => true,
        d => return Err(b0.bad(5, "ELF EI_DATA", format!("{d} (expected 1 or 2)"))),
    };
    let b = b0.endian(big_endian);
    let e_type = b.u16(16, "ELF e_type")?;
    let e_machine = b.u16(18, "ELF e_machine")?;
    let (phoff, shoff, phentsize, phnum16, min_ent) = if class == 64 {
        (
            b.u64(32, "ELF e_phoff")?,
            b.u64(40, "ELF e_shoff")?,
            b.u16(54, "ELF e_phentsize")?,
            b.u16(56, "ELF e_phnum")?,
            56u16,
        )
    } else {
        (
            u64::from(b.u32(28, "ELF e_phoff")?),
            u64::from(b.u32(32, "ELF e_shoff")?),
            b.u16(42, "ELF e_phentsize")?,
            b.u16(44, "ELF e_phnum")?,
            32u16,
        )
    };
    if phentsize < min_ent {
        let at = if class == 64 { 54 } else { 42 };
        return Err(b.bad(
            at,
            "ELF e_phentsize",
            format!("{phentsize} is smaller than a {class}-bit program header ({min_ent})"),
        ));
    }
    let mut phnum = u64::from(phnum16);
    let mut phnum_at = if class == 64 { 56 } else { 44 };
    if phnum == PN_XNUM {
        // The real count is in section header 0's sh_info.
        let at = shoff.saturating_add(if class == 64 { 44 } else { 28 });
        phnum = u64::from(b.u32(at, "ELF section header 0 sh_info (PN_XNUM)")?);
        phnum_at = at;
    }
    let table_len = claim(
        path,
        Table {
            what: "ELF program header table (e_phoff, e_phnum)",
            field_at: phnum_at,
            at: phoff,
            count: phnum,
            elem: u64::from(phentsize),
        },
        b.len().saturating_sub(phoff),
        ("MAX_PHDRS", MAX_PHDRS),
    )?;
    let table = b.sub(
        phoff,
        table_len,
        "ELF program header table (e_phoff, e_phnum)",
    )?;
    // Headers are read one at a time from the mapping, never copied into a table.
    let phdr = |i: u64| -> Result<Phdr, FileError> {
        let o = i * u64::from(phentsize);
        Ok(if class == 64 {
            Phdr {
                kind: table.u32(o, "p_type")?,
                offset: table.u64(o + 8, "p_offset")?,
                paddr: table.u64(o + 24, "p_paddr")?,
                filesz: table.u64(o + 32, "p_filesz")?,
                memsz: table.u64(o + 40, "p_memsz")?,
                at: table.file_offset(o),
            }
        } else {
            Phdr {
                kind: table.u32(o, "p_type")?,
                offset: u64::from(table.u32(o + 4, "p_offset")?),
                paddr: u64::from(table.u32(o + 12, "p_paddr")?),
                filesz: u64::from(table.u32(o + 16, "p_filesz")?),
                memsz: u64::from(table.u32(o + 20, "p_memsz")?),
                at: table.file_offset(o),
            }
        })
    };

    let file_len = data.len() as u64;
    let machine = Machine::from_elf(e_machine);
    let mut all_notes = Vec::new();
    let mut note_phdrs = Vec::new();
    let mut zero_claimed = 0u64;
    let mut intervals = IntervalMap::default();
    let mut loads = 0usize;
    // Reverse file order: earlier headers are painted last and so win.
    for i in (0..phnum).rev() {
        let p = phdr(i)?;
        let field = |f: &str| format!("{f} of the program header at {:#x}", p.at);
        match p.kind {
            PT_LOAD => {
                loads += 1;
                if p.offset.checked_add(p.filesz).is_none_or(|e| e > file_len) {
                    return Err(FileError::Truncated {
                        path: path.to_path_buf(),
                        offset: p.offset,
                        what: format!(
                            "PT_LOAD data for physical {:#x} ({})",
                            p.paddr,
                            field("p_offset + p_filesz")
                        ),
                        needed: p.filesz,
                    });
                }
                let memsz = p.memsz.max(p.filesz);
                let end = p
                    .paddr
                    .checked_add(memsz)
                    .ok_or_else(|| FileError::BadField {
                        path: path.to_path_buf(),
                        offset: p.at,
                        field: field("p_paddr + p_memsz"),
                        why: format!("{:#x} + {memsz:#x} overflows", p.paddr),
                    })?;
                zero_claimed = zero_claimed.saturating_add(memsz - p.filesz);
                if zero_claimed > MAX_PHYS_ADDR {
                    return Err(crate::limits::limit(
                        path,
                        p.at + if class == 64 { 40 } else { 20 },
                        field("p_memsz - p_filesz"),
                        format!(
                            "{:#x} zero-filled bytes, {zero_claimed:#x} with the headers after it",
                            memsz - p.filesz
                        ),
                        "MAX_PHYS_ADDR",
                        MAX_PHYS_ADDR,
                    ));
                }
                let data_end = p.paddr + p.filesz;
                intervals.insert(data_end, end, Backing::Zero);
                intervals.insert(p.paddr, data_end, Backing::At(p.offset));
            }
            PT_NOTE => {
                if note_phdrs.len() >= MAX_NOTE_SEGMENTS {
                    return Err(crate::limits::limit(
                        path,
                        p.at,
                        "PT_NOTE program header",
                        format!("more than {MAX_NOTE_SEGMENTS} PT_NOTE headers"),
                        "MAX_NOTE_SEGMENTS",
                        MAX_NOTE_SEGMENTS as u64,
                    ));
                }
                note_phdrs.push(p);
            }
            _ => {}
        }
    }
    // Notes in file order (the n-th NT_PRSTATUS is vCPU n), one budget for all segments.
    let mut budget = NoteBudget::default();
    let mut seen = std::collections::BTreeSet::new();
    for p in note_phdrs.iter().rev() {
        let len = claim(
            path,
            Table {
                what: "PT_NOTE segment (p_offset, p_filesz)",
                field_at: p.at,
                at: p.offset,
                count: p.filesz,
                elem: 1,
            },
            file_len.saturating_sub(p.offset),
            ("MAX_NOTE_BYTES", MAX_NOTE_BYTES),
        )?;
        // A copy of a segment already read would only repeat its notes (and vCPUs).
        if seen.insert((p.offset, len)) {
            let nb = b.sub(p.offset, len, "PT_NOTE segment (p_offset, p_filesz)")?;
            all_notes.extend(notes::parse_notes(nb, &mut budget)?);
        }
    }
    let conflicting_bytes = intervals.conflicts;
    let mut backed = Vec::new();
    let mut zero = Vec::new();
    for iv in intervals.into_sorted() {
        let len = iv.end - iv.start;
        match iv.backing {
            Backing::At(off) => backed.push(MapEntry {
                base: PhysAddr(iv.start),
                len,
                backing: off,
            }),
            Backing::Zero => zero.push(MapEntry {
                base: PhysAddr(iv.start),
                len,
                backing: 0,
            }),
        }
    }
    Ok(ElfLayout {
        class,
        big_endian,
        e_machine,
        e_type,
        loads,
        map: MemoryMap::new(backed)?,
        zero_fill: MemoryMap::new(zero)?,
        conflicting_bytes,
        notes: notes::interpret(&all_notes, machine),
    })
}

/// Human name of an `e_machine`.
pub fn machine_name(e_machine: u16) -> String {
    match e_machine {
        3 => "i386".into(),
        62 => "x86_64".into(),
        183 => "aarch64".into(),
        40 => "arm".into(),
        m => format!("e_machine {m}"),
    }
}

/// The format table's signature check: an ELF core, or (another `e_type`) an ELF file
/// named in the error (it can still be forced with `format=elf`).
pub(crate) fn detect(head: &[u8]) -> Option<Detected> {
    head.starts_with(b"\x7fELF").then(|| {
        if looks_like_core(head) {
            Detected::Known(Format::Elf)
        } else {
            Detected::Foreign(
                "an ELF file that is not a core dump (e_type != ET_CORE; force with format=elf)",
            )
        }
    })
}

/// The format table's opener: the `PT_LOAD`s become the memory map of the [`MappedFile`],
/// the notes give registers and VMCOREINFO.
pub(crate) fn open(file: MappedFile, _: &Open<'_>) -> Result<Parsed<Arc<MappedFile>>, FileError> {
    let layout = parse(file.bytes(), file.path())?;
    let file = file
        .with_map(layout.map.clone())?
        .with_zero_fill(layout.zero_fill.clone())?;
    let mut details = vec![
        (
            "ELF".to_string(),
            format!(
                "{}-bit {}, {}, e_type {}",
                layout.class,
                if layout.big_endian {
                    "big-endian"
                } else {
                    "little-endian"
                },
                machine_name(layout.e_machine),
                layout.e_type
            ),
        ),
        ("PT_LOAD headers".to_string(), layout.loads.to_string()),
    ];
    if !layout.zero_fill.is_empty() {
        details.push((
            "zero-filled bytes (p_memsz > p_filesz)".into(),
            format!("{:#x}", layout.zero_fill.real_size()),
        ));
    }
    if layout.conflicting_bytes > 0 {
        details.push((
            "conflicting PT_LOAD bytes (first header wins)".into(),
            format!("{:#x}", layout.conflicting_bytes),
        ));
    }
    if !layout.notes.counts.is_empty() {
        details.push(("notes".into(), layout.notes.counts_summary()));
    }
    for t in &layout.notes.truncated {
        details.push(("truncated".into(), t.clone()));
    }
    if let Some(raw) = layout.notes.undecoded_summary() {
        details.push((
            format!(
                "register notes not decoded (no {} layout)",
                machine_name(layout.e_machine)
            ),
            raw,
        ));
    }
    Ok(Parsed {
        memory: Arc::new(file),
        format: Format::Elf,
        version: Some(format!("ELF{}", layout.class)),
        cpus: layout.notes.cpus,
        vmcoreinfo: layout.notes.vmcoreinfo,
        details,
    })
}

//! Hard caps on what a dump file can make memlens allocate. **Key decision: every count,
//! length and size read from a dump is a claim** (see [`memlens_core::bounded`]): before
//! anything is allocated for it, it is checked against what it can cover (the file, the
//! bytes left after it, the section holding it) *and* against one of the caps below.
//! A claim beyond a cap fails with [`FileError::Limit`], which
//! names the field, its file offset, the value asked and the cap; a claim the file cannot
//! hold fails as truncated or as a bad field. Each cap is far above what a real dump needs
//! (the reason is on each constant), so it only stops hostile or corrupt files.
//!
//! Big tables are built in bounded steps: kdump bitmaps are read
//! [`CHUNK`](memlens_core::bounded::CHUNK) bytes at a time, ELF program headers one at a
//! time, and notes are borrowed from the mapping, never copied.

use std::fmt::Display;
use std::path::Path;

use memlens_core::bounded::claim_len;

use crate::error::FileError;

/// Program headers an ELF core may have. QEMU `paging=true` dumps have one `PT_LOAD` per
/// run of guest-virtual mappings: tens of thousands. 4 Mi headers (224 MiB of headers)
/// bounds the interval map built from them (about 100 bytes a header).
pub const MAX_PHDRS: u64 = 1 << 22;

/// Notes read from one file, across all its note areas (every `PT_NOTE`, or the kdump
/// note area). A dump has a few notes per vCPU plus VMCOREINFO: at most a few tens of
/// thousands at [`MAX_CPUS`].
pub const MAX_NOTES: usize = 1 << 16;

/// vCPUs whose registers are read (`NT_PRSTATUS` and QEMU CPU-state notes, and the kdump
/// header's `nr_cpus`): Linux's largest `NR_CPUS` (x86-64 `MAXSMP`, 8192).
pub const MAX_CPUS: usize = 8192;

/// `PT_NOTE` program headers of an ELF core. `/proc/vmcore`, QEMU and makedumpfile write
/// one; kexec's crash ELF header (before `/proc/vmcore` merges it) has one per CPU plus
/// VMCOREINFO, hence [`MAX_CPUS`] + 64. Copies of one segment (same offset and size) are
/// read once.
pub const MAX_NOTE_SEGMENTS: usize = MAX_CPUS + 64;

/// Bytes of one note area (a `PT_NOTE` segment, or kdump's `size_note`). A vCPU's notes
/// (`NT_PRSTATUS`, QEMU's CPU state, FP registers) take under 2 KiB: [`MAX_CPUS`] of them
/// fit in 16 MiB.
pub const MAX_NOTE_BYTES: u64 = 16 << 20;

/// Bytes of a note name (`n_namesz`). Dump notes are named `CORE`, `LINUX`, `QEMU`,
/// `VMCOREINFO`, `Xen`: a longer name is refused.
pub const MAX_NOTE_NAME: u64 = 256;

/// Bytes of VMCOREINFO text read. The kernel's buffer is one page (`VMCOREINFO_BYTES`, at
/// most 64 KiB with 64 KiB pages) and its text is a few KiB. Longer text (an ELF note's
/// `n_descsz`, kdump's `size_vmcoreinfo`) is **truncated** at the last line that fits,
/// logged, and reported in the dump details.
pub const MAX_VMCOREINFO: u64 = 64 << 10;

/// `KEY=VALUE` entries read from VMCOREINFO (a kernel writes about 200); later ones are
/// dropped like text beyond [`MAX_VMCOREINFO`].
pub const MAX_VMCOREINFO_ENTRIES: usize = 4096;

/// End of the largest physical address space (52 bits: x86-64 `MAXPHYADDR`, arm64
/// `FEAT_LPA`). kdump's `max_mapnr × block_size` must not pass it, nor may the zero-filled
/// tails of ELF `PT_LOAD`s (`p_memsz - p_filesz`) add up to more.
pub const MAX_PHYS_ADDR: u64 = 1 << 52;

/// Bytes of both kdump bitmaps (`bitmap_blocks × block_size`): 1 GiB covers 16 TiB of RAM
/// with 4 KiB pages (two bitmaps of 2^32 bits). They are also held to what makedumpfile
/// writes for `max_mapnr`: `2 × round_up(⌈max_mapnr / 8⌉, block_size)`.
pub const MAX_BITMAP_BYTES: u64 = 1 << 30;

/// Readable ranges (runs of pages) of a kdump file. Each costs 16 bytes, in memory and in
/// every `ranges()` answer; 4 Mi runs is 64 MiB. A dump more fragmented than that (every
/// other page excluded over 32 GiB) is refused as too fragmented.
pub const MAX_RANGES: usize = 1 << 22;

/// Records of a flattened kdump file. QEMU writes about one per 16 KiB of data, so 16 Mi
/// records hold a 256 GiB stream; each costs about 100 bytes while the index is built.
pub const MAX_FLAT_RECORDS: usize = 1 << 24;

/// Snappy chunks of an AVML file. A chunk holds up to 64 KiB of memory, so 64 Mi chunks
/// cover 4 TiB; each costs 24 bytes of index.
pub const MAX_AVML_CHUNKS: usize = 1 << 26;

/// Range headers of a LiME or AVML file. LiME writes one per RAM range (tens); AVML splits
/// ranges into 16 MiB blocks, so 1 Mi headers cover 16 TiB.
pub const MAX_RANGE_HEADERS: usize = 1 << 20;

/// Bytes that header-only (all-zero) LiME/AVML blocks may claim beyond the bytes the file
/// really holds. Such blocks are untouched RAM of the imaged machine, so they may
/// outnumber the data (a freshly booted VM), but 32 bytes of header must not claim
/// unbounded memory: the zero blocks of a file may add up to its backed bytes plus 1 TiB.
pub const MAX_ZERO_EXCESS: u64 = 1 << 40;

/// The table caps a parse runs with: the hard caps above, or lower ones so that a test can
/// reach a cap with a small file. Not part of the stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// [`MAX_RANGES`].
    pub kdump_ranges: usize,
    /// [`MAX_FLAT_RECORDS`].
    pub flat_records: usize,
    /// [`MAX_AVML_CHUNKS`].
    pub avml_chunks: usize,
    /// [`MAX_RANGE_HEADERS`].
    pub range_headers: usize,
}

impl Caps {
    /// The hard caps.
    pub const HARD: Caps = Caps {
        kdump_ranges: MAX_RANGES,
        flat_records: MAX_FLAT_RECORDS,
        avml_chunks: MAX_AVML_CHUNKS,
        range_headers: MAX_RANGE_HEADERS,
    };

    /// Each cap no higher than its hard cap.
    pub(crate) fn clamped(self) -> Caps {
        Caps {
            kdump_ranges: self.kdump_ranges.min(MAX_RANGES),
            flat_records: self.flat_records.min(MAX_FLAT_RECORDS),
            avml_chunks: self.avml_chunks.min(MAX_AVML_CHUNKS),
            range_headers: self.range_headers.min(MAX_RANGE_HEADERS),
        }
    }
}

/// The error for `what` at file offset `offset` asking `asked`, beyond the cap named
/// `cap` (`limit`).
pub(crate) fn limit(
    path: &Path,
    offset: u64,
    what: impl Into<String>,
    asked: impl Display,
    cap: &'static str,
    limit: u64,
) -> FileError {
    FileError::Limit {
        path: path.to_path_buf(),
        offset,
        what: what.into(),
        asked: asked.to_string(),
        cap,
        limit,
    }
}

/// A table claimed by a field of the file: `count` entries of `elem` bytes at file offset
/// `at`, whose count (or size) is the field `what` at `field_at`.
pub(crate) struct Table<'a> {
    pub what: &'a str,
    pub field_at: u64,
    pub at: u64,
    pub count: u64,
    pub elem: u64,
}

/// Checks `t` with [`claim_len`] before anything is read or allocated for it: more than
/// `cap` entries is a [`FileError::Limit`] at the field; more bytes than `room` (what is
/// left of the file after the table's start) is [`FileError::Truncated`] at the table.
/// Returns the table's length in bytes.
pub(crate) fn claim(
    path: &Path,
    t: Table<'_>,
    room: u64,
    cap: (&'static str, u64),
) -> Result<u64, FileError> {
    let (cap_name, cap_count) = (cap.0, cap.1);
    let asked = || {
        if t.elem == 1 {
            format!("{} bytes", t.count)
        } else {
            format!("{} entries of {} bytes", t.count, t.elem)
        }
    };
    match claim_len(
        t.what,
        format!("file offset {:#x}", t.field_at),
        t.count,
        t.elem,
        room,
        cap_count.saturating_mul(t.elem),
    ) {
        Ok(len) => Ok(len as u64),
        Err(memlens_core::Error::Limit { .. }) => Err(limit(
            path,
            t.field_at,
            t.what,
            asked(),
            cap_name,
            cap_count,
        )),
        Err(memlens_core::Error::Corrupt { .. }) => Err(FileError::Truncated {
            path: path.to_path_buf(),
            offset: t.at,
            what: t.what.to_string(),
            needed: t.count.saturating_mul(t.elem),
        }),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_name_the_cap_or_the_truncation() {
        let p = Path::new("f");
        let t = |count| Table {
            what: "things",
            field_at: 8,
            at: 0x40,
            count,
            elem: 4,
        };
        assert_eq!(claim(p, t(10), 40, ("MAX_THINGS", 10)).unwrap(), 40);
        let e = claim(p, t(11), u64::MAX, ("MAX_THINGS", 10)).unwrap_err();
        assert!(matches!(e, FileError::Limit { offset: 8, .. }), "{e}");
        let s = e.to_string();
        assert!(
            s.contains("MAX_THINGS (10)") && s.contains("11 entries"),
            "{s}"
        );
        let e = claim(p, t(u64::MAX), u64::MAX, ("MAX_THINGS", u64::MAX)).unwrap_err();
        assert!(matches!(e, FileError::Limit { .. }), "{e}");
        let e = claim(p, t(10), 39, ("MAX_THINGS", 10)).unwrap_err();
        assert!(
            matches!(e, FileError::Truncated { offset: 0x40, .. }),
            "{e}"
        );
        assert_eq!(Caps::HARD.clamped(), Caps::HARD);
    }
}

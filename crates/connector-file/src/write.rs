//! Writing ELF core files: physical memory (one `PT_LOAD` per range, `p_paddr` set, with
//! a `VMCOREINFO` note, the layout `/proc/vmcore` and QEMU use) and process memory (one
//! `PT_LOAD` per mapping at its virtual address, with an `NT_FILE` note naming the mapped
//! files, the layout of a Linux process core).
//!
//! **Key decision: the layout is computed first and the data streamed after it**
//! ([`CoreWriter`]): headers and notes go out in one piece, then each segment's bytes in
//! order, asked from the caller piece by piece, so a core of any size is written in
//! bounded memory and can report progress. The format is a fixed header, a program header
//! table and raw bytes, written here by hand: the `object` crate's writers build
//! relocatable objects and executables from sections, not program-header-only cores.
//!
//! Segment lengths come from another dump's ranges, so the layout is computed with checked
//! arithmetic: a layout that overflows, a note larger than its 32-bit size fields, or
//! more than 65 534 program headers (`0xffff` is `PN_XNUM`) is an error of
//! [`CoreWriter::try_new`], [`CoreWriter::write_head`] and [`CoreWriter::try_file_len`], never
//! a wrapped offset or a truncated size.

use std::io::{self, Write};

/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// `e_machine` of 32-bit x86.
pub const EM_386: u16 = 3;
/// `e_machine` of AArch64.
pub const EM_AARCH64: u16 = 183;
/// `p_flags` bit: executable.
pub const PF_X: u32 = 1;
/// `p_flags` bit: writable.
pub const PF_W: u32 = 2;
/// `p_flags` bit: readable.
pub const PF_R: u32 = 4;
/// Note type of a mapped-files note (`NT_FILE`, name `CORE`).
pub const NT_FILE: u32 = 0x4649_4c45;

const EHDR: u64 = 64;
const PHDR: u64 = 56;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// Segment data starts page aligned (so the file can be mapped and read page-wise).
const ALIGN: u64 = 4096;

/// One loadable segment of a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreSegment {
    /// Physical address (`p_paddr`; 0 in process cores).
    pub paddr: u64,
    /// Virtual address (`p_vaddr`; 0 in physical-memory cores).
    pub vaddr: u64,
    /// Length in bytes (`p_filesz` = `p_memsz`: every byte is stored).
    pub len: u64,
    /// `PF_R | PF_W | PF_X` bits.
    pub flags: u32,
}

/// One ELF note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreNote {
    /// Owner name (`CORE`, `VMCOREINFO`, …), without the terminating NUL.
    pub name: String,
    /// Note type.
    pub kind: u32,
    /// Payload.
    pub desc: Vec<u8>,
}

impl CoreNote {
    /// A `VMCOREINFO` note with `KEY=VALUE` lines.
    pub fn vmcoreinfo<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut text = String::new();
        for (k, v) in pairs {
            text.push_str(k);
            text.push('=');
            text.push_str(v);
            text.push('\n');
        }
        Self {
            name: "VMCOREINFO".into(),
            kind: 0,
            desc: text.into_bytes(),
        }
    }

    /// An `NT_FILE` note: `(start, end, file offset in bytes, path)` per file mapping;
    /// offsets are stored in units of `page_size`, as the kernel does.
    pub fn mapped_files(page_size: u64, files: &[(u64, u64, u64, &str)]) -> Self {
        let mut d = Vec::new();
        d.extend((files.len() as u64).to_le_bytes());
        d.extend(page_size.to_le_bytes());
        for &(start, end, off, _) in files {
            d.extend(start.to_le_bytes());
            d.extend(end.to_le_bytes());
            d.extend((off / page_size.max(1)).to_le_bytes());
        }
        for &(_, _, _, path) in files {
            d.extend(path.as_bytes());
            d.push(0);
        }
        Self {
            name: "CORE".into(),
            kind: NT_FILE,
            desc: d,
        }
    }

    /// `n_namesz` and `n_descsz`, or why they do not fit their 32-bit fields.
    fn sizes(&self) -> Result<(u32, u32), String> {
        let too_big = |what: &str, n: usize| {
            format!(
                "note {:?}: {what} of {n} bytes does not fit a note's 32-bit size",
                self.name
            )
        };
        let namesz = self
            .name
            .len()
            .checked_add(1)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| too_big("name", self.name.len()))?;
        let descsz =
            u32::try_from(self.desc.len()).map_err(|_| too_big("descriptor", self.desc.len()))?;
        Ok((namesz, descsz))
    }

    /// Encoded length, once [`CoreNote::sizes`] said the sizes fit (no overflow then).
    fn encoded_len(&self) -> u64 {
        12 + pad4(self.name.len() as u64 + 1) + pad4(self.desc.len() as u64)
    }

    /// Encodes the note; [`CoreNote::sizes`] must have succeeded.
    fn encode(&self, out: &mut Vec<u8>) {
        let (namesz, descsz) = self.sizes().unwrap_or((0, 0));
        out.extend(namesz.to_le_bytes());
        out.extend(descsz.to_le_bytes());
        out.extend(self.kind.to_le_bytes());
        out.extend(self.name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend(&self.desc);
        out.resize(out.len().next_multiple_of(4), 0);
    }
}

fn pad4(n: u64) -> u64 {
    n.next_multiple_of(4)
}

/// Most program headers an ELF core can declare in `e_phnum` (`0xffff` is `PN_XNUM`).
pub const MAX_CORE_PHDRS: usize = 0xfffe;

/// A core file's layout: where each segment's bytes go. Build it, write the head with
/// [`CoreWriter::write_head`], then stream each segment's bytes in order.
#[derive(Debug, Clone)]
pub struct CoreWriter {
    machine: u16,
    notes: Vec<CoreNote>,
    segments: Vec<CoreSegment>,
    /// (offset of the first segment's data, file length), or why the layout does not fit
    /// an ELF64 core.
    layout: Result<(u64, u64), String>,
}

/// The layout of a core of `notes` and `segments`, in checked arithmetic.
fn layout(notes: &[CoreNote], segments: &[CoreSegment]) -> Result<(u64, u64), String> {
    let phnum = segments.len() + usize::from(!notes.is_empty());
    if phnum > MAX_CORE_PHDRS {
        return Err(format!(
            "{phnum} segments: more than an ELF core's {MAX_CORE_PHDRS} program headers"
        ));
    }
    let mut notes_len = 0u64;
    for n in notes {
        n.sizes()?;
        notes_len = notes_len
            .checked_add(n.encoded_len())
            .ok_or("note lengths overflow")?;
    }
    let data_start = (phnum as u64 * PHDR)
        .checked_add(EHDR)
        .and_then(|h| h.checked_add(notes_len))
        .and_then(|h| h.checked_next_multiple_of(ALIGN))
        .ok_or("headers and notes overflow")?;
    let file_len = segments.iter().try_fold(data_start, |end, s| {
        end.checked_add(s.len).ok_or_else(|| {
            format!(
                "segment at {:#x} ({:#x} bytes) ends past 2^64 bytes of core file",
                s.paddr.max(s.vaddr),
                s.len
            )
        })
    })?;
    Ok((data_start, file_len))
}

impl CoreWriter {
    /// A core for `machine` (an `EM_*` value) with these notes and segments. A layout that
    /// does not fit an ELF core is reported by [`CoreWriter::write_head`] (and
    /// [`CoreWriter::try_file_len`]); [`CoreWriter::try_new`] reports it here.
    pub fn new(machine: u16, notes: Vec<CoreNote>, segments: Vec<CoreSegment>) -> Self {
        let layout = layout(&notes, &segments);
        Self {
            machine,
            notes,
            segments,
            layout,
        }
    }

    /// [`CoreWriter::new`], failing with `InvalidInput` when the layout overflows, a note
    /// is larger than its 32-bit sizes, or there are more than [`MAX_CORE_PHDRS`] headers.
    pub fn try_new(
        machine: u16,
        notes: Vec<CoreNote>,
        segments: Vec<CoreSegment>,
    ) -> io::Result<Self> {
        let w = Self::new(machine, notes, segments);
        w.checked_layout()?;
        Ok(w)
    }

    fn checked_layout(&self) -> io::Result<(u64, u64)> {
        self.layout
            .clone()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    /// The segments, in file order.
    pub fn segments(&self) -> &[CoreSegment] {
        &self.segments
    }

    /// Total file size once every segment is written; `u64::MAX` when the layout does not
    /// fit an ELF core ([`CoreWriter::try_file_len`] and [`CoreWriter::write_head`] say why).
    pub fn file_len(&self) -> u64 {
        self.layout.as_ref().map_or(u64::MAX, |l| l.1)
    }

    /// Total file size once every segment is written, or why the layout does not fit.
    pub fn try_file_len(&self) -> io::Result<u64> {
        Ok(self.checked_layout()?.1)
    }

    /// Writes the ELF header, program headers, notes and padding up to the first
    /// segment's data; the caller then writes every segment's `len` bytes in order.
    pub fn write_head(&self, out: &mut impl Write) -> io::Result<()> {
        let (data_start, _) = self.checked_layout()?;
        // Both were checked by the layout (at most MAX_CORE_PHDRS headers; the head holds
        // the notes, which are in memory already).
        let phnum = (self.segments.len() + usize::from(!self.notes.is_empty())) as u16;
        let head_len = usize::try_from(data_start)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "notes too large"))?;
        let mut h = Vec::with_capacity(head_len);
        h.extend(b"\x7fELF");
        h.extend([2, 1, 1, 0]); // 64-bit, little-endian, version 1, System V ABI
        h.extend([0u8; 8]);
        h.extend(4u16.to_le_bytes()); // ET_CORE
        h.extend(self.machine.to_le_bytes());
        h.extend(1u32.to_le_bytes()); // EV_CURRENT
        h.extend(0u64.to_le_bytes()); // e_entry
        h.extend(EHDR.to_le_bytes()); // e_phoff
        h.extend(0u64.to_le_bytes()); // e_shoff
        h.extend(0u32.to_le_bytes()); // e_flags
        h.extend((EHDR as u16).to_le_bytes());
        h.extend((PHDR as u16).to_le_bytes());
        h.extend(phnum.to_le_bytes());
        h.extend(64u16.to_le_bytes()); // e_shentsize
        h.extend(0u16.to_le_bytes()); // e_shnum
        h.extend(0u16.to_le_bytes()); // e_shstrndx
        let notes_off = EHDR + u64::from(phnum) * PHDR;
        if !self.notes.is_empty() {
            let len: u64 = self.notes.iter().map(CoreNote::encoded_len).sum();
            phdr(&mut h, PT_NOTE, 0, notes_off, 0, 0, len, 4);
        }
        let mut off = data_start;
        for s in &self.segments {
            phdr(
                &mut h, PT_LOAD, s.flags, off, s.vaddr, s.paddr, s.len, ALIGN,
            );
            off += s.len; // below the checked file length
        }
        for n in &self.notes {
            n.encode(&mut h);
        }
        h.resize(head_len, 0);
        out.write_all(&h)
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the fields of one program header"
)]
fn phdr(h: &mut Vec<u8>, kind: u32, flags: u32, off: u64, va: u64, pa: u64, len: u64, al: u64) {
    h.extend(kind.to_le_bytes());
    h.extend(flags.to_le_bytes());
    h.extend(off.to_le_bytes());
    h.extend(va.to_le_bytes());
    h.extend(pa.to_le_bytes());
    h.extend(len.to_le_bytes()); // p_filesz
    h.extend(len.to_le_bytes()); // p_memsz
    h.extend(al.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_core_reads_back() {
        let segs = vec![
            CoreSegment {
                paddr: 0,
                vaddr: 0,
                len: 0x2000,
                flags: PF_R | PF_W | PF_X,
            },
            CoreSegment {
                paddr: 0x10_0000,
                vaddr: 0,
                len: 0x1000,
                flags: PF_R | PF_W | PF_X,
            },
        ];
        let w = CoreWriter::new(
            EM_X86_64,
            vec![CoreNote::vmcoreinfo([("OSRELEASE", "6.1.0-test")])],
            segs,
        );
        let mut f = Vec::new();
        w.write_head(&mut f).unwrap();
        for (i, s) in w.segments().iter().enumerate() {
            f.extend(std::iter::repeat_n(i as u8 + 1, s.len as usize));
        }
        assert_eq!(f.len() as u64, w.file_len());
        // Read it back with the crate's ELF reader (which has its own field offsets).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("core");
        std::fs::write(&path, &f).unwrap();
        let dump = crate::open_dump(&path, &crate::DumpOptions::default()).unwrap();
        use memlens_core::{MemoryViewExt, PhysAddr};
        assert_eq!(
            dump.read_u64(PhysAddr(0x1ff8)).unwrap(),
            0x0101_0101_0101_0101
        );
        assert_eq!(
            dump.read_u64(PhysAddr(0x10_0ff8)).unwrap(),
            0x0202_0202_0202_0202
        );
        assert!(dump.read_u64(PhysAddr(0x3000)).is_err());
        let vmci = dump.target().info.vmcoreinfo.unwrap();
        assert_eq!(
            vmci.get("OSRELEASE").map(String::as_str),
            Some("6.1.0-test")
        );
    }

    /// Segment lengths from a hostile dump's ranges: an error, not a wrapped offset.
    #[test]
    fn overflowing_layouts_are_errors() {
        let seg = |len| CoreSegment {
            paddr: 0,
            vaddr: 0,
            len,
            flags: PF_R,
        };
        let w = CoreWriter::new(EM_X86_64, vec![], vec![seg(u64::MAX - 100), seg(200)]);
        let e = w.write_head(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("past 2^64"), "{e}");
        assert!(w.try_file_len().is_err());
        assert_eq!(w.file_len(), u64::MAX);
        assert!(CoreWriter::try_new(EM_X86_64, vec![], vec![seg(1); MAX_CORE_PHDRS + 1]).is_err());
        assert!(CoreWriter::try_new(EM_X86_64, vec![], vec![seg(1); MAX_CORE_PHDRS]).is_ok());
    }

    #[test]
    fn mapped_files_note_layout() {
        let n = CoreNote::mapped_files(4096, &[(0x1000, 0x3000, 0x2000, "/bin/x")]);
        assert_eq!(n.desc.len(), 16 + 24 + 7);
        assert_eq!(&n.desc[16 + 16..16 + 24], &2u64.to_le_bytes());
        assert_eq!(&n.desc[40..], b"/bin/x\0");
    }
}

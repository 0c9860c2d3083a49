//! Exports, imports and sections of an ELF module mapped into a process. **Key decision:
//! symbols come from the process's memory, sections from the file on disk.** The loader
//! maps the ELF header, the program headers and the dynamic section, so the dynamic symbol
//! table and the relocations are read from memory ([`memlens_core::elf`], shared with the
//! Linux plugin) — what the process really runs. Section headers are not part of any loaded segment, so sections are read from
//! the mapped file (`/proc/PID/root/<path>`, then `<path>`), and only when its ELF header
//! equals the one in memory (the file may have been replaced since it was mapped).
//!
//! Only 64-bit little-endian ELF is parsed (the host's own format on x86-64 and aarch64).
//! Every count and size read from the target is bounded before it is used.
//!
//! The file is opened once without blocking (a FIFO cannot stall it) and must be a
//! regular file by `fstat` of that descriptor; only its ELF header, section header table
//! (at most [`MAX_SHDR_TABLE`]) and section-name table (at most [`MAX_SHSTRTAB`]) are
//! read, each checked against the file's length first — not the whole file.

use goblin::elf::section_header::{SHF_ALLOC, SHN_XINDEX, SHT_NOBITS};
use memlens_core::os::{ModuleDetails, SectionInfo};
use memlens_core::{bounded, elf};
use memlens_core::{MemoryView, VirtAddr};

use crate::error::NativeError;

const EHDR_SIZE: usize = 64;
/// Size of an `Elf64_Shdr`.
const SHDR_SIZE: u64 = 64;
/// Largest section header table read: 65 536 headers, every count `e_shnum` can state
/// (real libraries have 30-40; extended numbering beyond that is refused).
pub const MAX_SHDR_TABLE: u64 = 65_536 * SHDR_SIZE;
/// Largest section-name table read: real ones are a few hundred bytes, 1 MiB is a
/// thousand times that.
pub const MAX_SHSTRTAB: u64 = 1 << 20;
/// Most bytes read from a file for its sections (header, table, names).
pub const MAX_READ: u64 = EHDR_SIZE as u64 + MAX_SHDR_TABLE + MAX_SHSTRTAB;

/// Parses the module mapped at `base` of `mem`. `module` names it in errors; `file`
/// is where its section headers are read from (when given).
pub fn module_details<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    pid: u32,
    module: &str,
    base: VirtAddr,
    file: Option<&std::path::Path>,
) -> Result<ModuleDetails, NativeError> {
    let bad = |why: String| NativeError::Elf {
        pid,
        module: module.to_string(),
        base: base.0,
        why,
    };
    let img = elf::read_image(mem, base).map_err(bad)?;
    let (exports, imports) = elf::dynamic_symbols(mem, &img).map_err(bad)?;
    let sections = match file {
        Some(f) => sections_from_file(f, &img).unwrap_or_else(|why| {
            log::info!("no sections for {module}: {why}");
            Vec::new()
        }),
        None => Vec::new(),
    };
    Ok(ModuleDetails {
        exports,
        imports,
        sections,
    })
}

/// Allocated sections of the file, relocated by the image's bias; the file's ELF header
/// must equal the one in memory.
fn sections_from_file(
    path: &std::path::Path,
    img: &elf::ElfImage,
) -> Result<Vec<SectionInfo>, String> {
    sections_of_file(path, &img.header, img.bias)
}

/// [`sections_from_file`] for a header and bias: one non-blocking open, `fstat` of that
/// descriptor (a regular file, its length), then positioned reads of the ELF header, the
/// section header table and the section-name table only — each checked against the
/// file's length and its cap before it is read (at most [`MAX_READ`] in all).
fn sections_of_file(
    path: &std::path::Path,
    header: &[u8],
    bias: u64,
) -> Result<Vec<SectionInfo>, String> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let name = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{name}: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("{name}: fstat: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "{name}: not a regular file ({:?})",
            meta.file_type()
        ));
    }
    let len = meta.len();
    let read_at = |what: &str, off: u64, n: usize| -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n];
        f.read_exact_at(&mut buf, off)
            .map_err(|e| format!("{name}: {what} ({n} bytes at {off:#x}): {e}"))?;
        Ok(buf)
    };
    let claim = |what: &str, off: u64, count: u64, size: u64, cap: u64| {
        let at = format!("{name} offset {off:#x}");
        bounded::claim_len(what, at, count, size, len.saturating_sub(off), cap)
            .map_err(|e| e.to_string())
    };
    let ehdr = read_at("ELF header", 0, EHDR_SIZE)?;
    if ehdr != header {
        return Err(format!(
            "{name}: its ELF header differs from the mapped image (file replaced?)"
        ));
    }
    let (shoff, shentsize) = (le64(&ehdr, 0x28), le16(&ehdr, 0x3a));
    let (mut shnum, mut shstrndx) = (u64::from(le16(&ehdr, 0x3c)), u64::from(le16(&ehdr, 0x3e)));
    if shoff == 0 {
        return Ok(Vec::new());
    }
    if u64::from(shentsize) != SHDR_SIZE {
        return Err(format!(
            "{name}: e_shentsize {shentsize}, expected {SHDR_SIZE}"
        ));
    }
    // Extended numbering: the real count and string-table index are in section 0.
    if shnum == 0 || shstrndx == u64::from(SHN_XINDEX) {
        let n = claim("section header 0", shoff, 1, SHDR_SIZE, SHDR_SIZE)?;
        let s0 = Shdr::parse(&read_at("section header 0", shoff, n)?);
        if shnum == 0 {
            shnum = s0.size;
        }
        if shstrndx == u64::from(SHN_XINDEX) {
            shstrndx = u64::from(s0.link);
        }
    }
    let n = claim(
        "section header table",
        shoff,
        shnum,
        SHDR_SIZE,
        MAX_SHDR_TABLE,
    )?;
    let table = read_at("section header table", shoff, n)?;
    let shdrs: Vec<Shdr> = table
        .chunks_exact(SHDR_SIZE as usize)
        .map(Shdr::parse)
        .collect();
    let strtab = match usize::try_from(shstrndx).ok().and_then(|i| shdrs.get(i)) {
        Some(s) if s.kind != SHT_NOBITS => {
            let n = claim("section name table", s.offset, s.size, 1, MAX_SHSTRTAB)?;
            read_at("section name table", s.offset, n)?
        }
        _ => Vec::new(),
    };
    let name_at = |off: u32| -> &str {
        let tail = strtab.get(off as usize..).unwrap_or_default();
        let end = tail.iter().position(|b| *b == 0).unwrap_or(0);
        std::str::from_utf8(&tail[..end]).unwrap_or_default()
    };
    Ok(shdrs
        .iter()
        .filter(|s| s.flags & u64::from(SHF_ALLOC) != 0 && s.size > 0)
        .map(|s| SectionInfo {
            name: name_at(s.name).to_string(),
            addr: VirtAddr(bias.wrapping_add(s.addr)),
            size: s.size,
        })
        .collect())
}

/// The fields of an `Elf64_Shdr` used here.
struct Shdr {
    name: u32,
    kind: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
}

impl Shdr {
    /// Parses 64 bytes (callers pass exactly [`SHDR_SIZE`]).
    fn parse(b: &[u8]) -> Shdr {
        Shdr {
            name: le32(b, 0),
            kind: le32(b, 4),
            flags: le64(b, 8),
            addr: le64(b, 16),
            offset: le64(b, 24),
            size: le64(b, 32),
            link: le32(b, 40),
        }
    }
}

/// Little-endian reads inside buffers whose length was checked (0 past the end).
fn le16(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn le64(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// An ELF header: 64-bit little-endian, section headers at `shoff`.
    fn ehdr(shoff: u64, shnum: u16, shstrndx: u16) -> Vec<u8> {
        let mut h = vec![0u8; EHDR_SIZE];
        h[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        h[0x10..0x12].copy_from_slice(&3u16.to_le_bytes());
        h[0x12..0x14].copy_from_slice(&0x3eu16.to_le_bytes());
        h[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        h[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        h[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
        h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        h[0x3c..0x3e].copy_from_slice(&shnum.to_le_bytes());
        h[0x3e..0x40].copy_from_slice(&shstrndx.to_le_bytes());
        h
    }

    /// An `Elf64_Shdr`: name, type, flags, addr, offset, size, link.
    fn shdr(
        name: u32,
        kind: u32,
        flags: u64,
        addr: u64,
        off: u64,
        size: u64,
        link: u32,
    ) -> Vec<u8> {
        let mut s = vec![0u8; 64];
        s[0..4].copy_from_slice(&name.to_le_bytes());
        s[4..8].copy_from_slice(&kind.to_le_bytes());
        s[8..16].copy_from_slice(&flags.to_le_bytes());
        s[16..24].copy_from_slice(&addr.to_le_bytes());
        s[24..32].copy_from_slice(&off.to_le_bytes());
        s[32..40].copy_from_slice(&size.to_le_bytes());
        s[40..44].copy_from_slice(&link.to_le_bytes());
        s
    }

    /// Header, then `shdrs` at 64, then `tail`.
    fn file(
        dir: &Path,
        name: &str,
        h: &[u8],
        shdrs: &[Vec<u8>],
        tail: &[u8],
    ) -> std::path::PathBuf {
        let mut b = h.to_vec();
        for s in shdrs {
            b.extend_from_slice(s);
        }
        b.extend_from_slice(tail);
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    }

    #[test]
    fn sections_by_positioned_reads() {
        let dir = tempfile::tempdir().unwrap();
        let names = b"\0.text\0.shstrtab\0";
        let str_off = 64 + 3 * 64;
        let h = ehdr(64, 3, 2);
        let shdrs = [
            shdr(0, 0, 0, 0, 0, 0, 0),
            shdr(1, 1, 6, 0x1000, 0, 0x100, 0),
            shdr(7, 3, 0, 0, str_off, names.len() as u64, 0),
        ];
        let p = file(dir.path(), "ok.so", &h, &shdrs, names);
        let s = sections_of_file(&p, &h, 0x7f00_0000_0000).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, ".text");
        assert_eq!(s[0].addr, VirtAddr(0x7f00_0000_1000));
        assert_eq!(s[0].size, 0x100);
        // The mapped header must match the file's.
        let mut other = h.clone();
        other[0x10] = 2;
        let e = sections_of_file(&p, &other, 0).unwrap_err();
        assert!(e.contains("differs"), "{e}");
    }

    /// The test binary itself: the same allocated sections as goblin's full parse.
    #[test]
    fn sections_agree_with_goblin() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let ours = sections_of_file(&exe, &bytes[..EHDR_SIZE], 0x1000).unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        let theirs: Vec<(String, u64, u64)> = elf
            .section_headers
            .iter()
            .filter(|s| s.sh_flags & u64::from(SHF_ALLOC) != 0 && s.sh_size > 0)
            .map(|s| {
                let n = elf.shdr_strtab.get_at(s.sh_name).unwrap_or_default();
                (n.to_string(), s.sh_addr + 0x1000, s.sh_size)
            })
            .collect();
        let ours: Vec<(String, u64, u64)> = ours
            .into_iter()
            .map(|s| (s.name, s.addr.0, s.size))
            .collect();
        assert_eq!(ours, theirs);
        assert!(ours.iter().any(|s| s.0 == ".text"));
    }

    /// A FIFO (no writer) and a device: refused by fstat, without blocking or reading.
    #[test]
    fn fifos_and_devices_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = std::time::Instant::now();
        let h = ehdr(64, 1, 0);
        let e = sections_of_file(&fifo, &h, 0).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = sections_of_file(Path::new("/dev/zero"), &h, 0).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    /// Counts and sizes that claim more than the file holds, or more than the caps.
    #[test]
    fn oversized_tables_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        // 65 535 headers claimed, one present.
        let h = ehdr(64, u16::MAX, 0);
        let p = file(dir.path(), "many", &h, &[shdr(0, 0, 0, 0, 0, 0, 0)], &[]);
        let e = sections_of_file(&p, &h, 0).unwrap_err();
        assert!(
            e.contains("section header table") && e.contains("do not fit"),
            "{e}"
        );
        // Extended numbering: section 0 claims 2^40 headers: over the cap.
        let h = ehdr(64, 0, 0);
        let p = file(
            dir.path(),
            "ext",
            &h,
            &[shdr(0, 0, 0, 0, 0, 1 << 40, 0)],
            &[],
        );
        let e = sections_of_file(&p, &h, 0).unwrap_err();
        assert!(e.contains("section header table"), "{e}");
        // A section-name table over the cap, and one past the end of the file.
        let h = ehdr(64, 2, 1);
        for (size, what) in [(MAX_SHSTRTAB + 1, "limit"), (4096, "do not fit")] {
            let shdrs = [shdr(0, 0, 0, 0, 0, 0, 0), shdr(0, 3, 0, 0, 192, size, 0)];
            let p = file(dir.path(), "names", &h, &shdrs, b"\0");
            let e = sections_of_file(&p, &h, 0).unwrap_err();
            assert!(e.contains("section name table") && e.contains(what), "{e}");
        }
        // Section headers far past the end of the file.
        let h = ehdr(u64::MAX - 10, 2, 1);
        let p = file(dir.path(), "far", &h, &[], &[]);
        assert!(sections_of_file(&p, &h, 0).is_err());
        // A wrong entry size.
        let mut h = ehdr(64, 1, 0);
        h[0x3a] = 40;
        let p = file(dir.path(), "entsize", &h, &[shdr(0, 0, 0, 0, 0, 0, 0)], &[]);
        assert!(sections_of_file(&p, &h, 0)
            .unwrap_err()
            .contains("e_shentsize"));
    }
}

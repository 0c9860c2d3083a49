//! Static analysis of plugin files. **Key decision: nothing is loaded to be listed.** The
//! analyzer parses the library's export table (ELF `.dynsym`, PE export directory, Mach-O
//! export trie) with goblin, finds the `MEMLENS_CONNECTOR_*` / `MEMLENS_OS_*` symbols,
//! maps each symbol's address to a file offset through the loadable segments (ELF
//! `PT_LOAD`, PE sections, Mach-O segments), and reads the descriptor's
//! [`PluginHeader`] bytes there.
//!
//! What is read statically is only the header, which is pointer-free by design (magic,
//! ABI version, kind, header size, input kind, layout fingerprint, and the name, version
//! and description as inline NUL-padded arrays), so no relocation processing is needed:
//! the function pointers that follow it are relocated by the loader and never read here.
//!
//! Rejected before any `dlopen`: files that are not a shared library, of another format
//! than the host loads, of another architecture, word size or byte order; descriptors
//! with a wrong magic, ABI version, header size or layout fingerprint, whose kind does not
//! match the symbol prefix, or whose name does not match the symbol suffix. Parsing runs
//! under `catch_unwind` and every read is bounds-checked: no file crashes the host.

use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};

use goblin::Object;
use serde::Serialize;

use crate::abi::{
    inline_str, layout_fingerprint, PluginHeader, ABI_VERSION, CONNECTOR_PREFIX, KIND_CONNECTOR,
    KIND_OS, MAGIC, OS_PREFIX,
};
use crate::error::{Error, Result};
use crate::traits::{InputKind, PluginKind};

/// Largest file the analyzer reads.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// A descriptor found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DescriptorInfo {
    /// Exported symbol name (without a Mach-O leading underscore).
    pub symbol: String,
    /// Kind, from the symbol prefix.
    pub kind: PluginKind,
    /// Name from the header (or from the symbol when the header is unreadable).
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: String,
    /// The header's ABI version (0 when unreadable).
    pub abi_version: u32,
    /// Whether it accepts an input.
    pub input: InputKind,
    /// Why the descriptor cannot be used, if it cannot.
    pub problem: Option<String>,
}

/// The result of analysing one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileAnalysis {
    /// The file.
    pub path: PathBuf,
    /// `ELF`, `PE` or `Mach-O`.
    pub format: &'static str,
    /// Descriptors found (possibly none).
    pub descriptors: Vec<DescriptorInfo>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Elf,
    Pe,
    MachO,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Elf => "ELF",
            Format::Pe => "PE",
            Format::MachO => "Mach-O",
        }
    }
    fn host() -> Format {
        if cfg!(target_os = "windows") {
            Format::Pe
        } else if cfg!(target_vendor = "apple") {
            Format::MachO
        } else {
            Format::Elf
        }
    }
}

fn host_arch() -> &'static str {
    std::env::consts::ARCH
}

fn elf_arch(m: u16) -> &'static str {
    use goblin::elf::header::*;
    match m {
        EM_X86_64 => "x86_64",
        EM_386 => "x86",
        EM_AARCH64 => "aarch64",
        EM_ARM => "arm",
        EM_RISCV => "riscv",
        EM_PPC64 => "powerpc64",
        EM_S390 => "s390x",
        EM_MIPS => "mips",
        _ => "unknown",
    }
}

fn pe_arch(m: u16) -> &'static str {
    match m {
        0x8664 => "x86_64",
        0x14c => "x86",
        0xaa64 => "aarch64",
        0x1c0 | 0x1c4 => "arm",
        _ => "unknown",
    }
}

fn macho_arch(c: u32) -> &'static str {
    match c {
        0x0100_0007 => "x86_64",
        7 => "x86",
        0x0100_000c => "aarch64",
        12 => "arm",
        _ => "unknown",
    }
}

/// Reads and analyses `path`.
pub fn analyze_file(path: &Path) -> Result<FileAnalysis> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::rejected(path, format!("cannot stat: {e}")))?
        .len();
    if len > MAX_FILE_SIZE {
        return Err(Error::rejected(
            path,
            format!("file is {len} bytes, larger than the {MAX_FILE_SIZE}-byte limit"),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| Error::rejected(path, format!("cannot read: {e}")))?;
    analyze_bytes(path, &bytes)
}

/// Analyses the bytes of a file (never panics: parser panics are caught).
pub fn analyze_bytes(path: &Path, bytes: &[u8]) -> Result<FileAnalysis> {
    std::panic::catch_unwind(|| analyze_inner(path, bytes)).unwrap_or_else(|p| {
        Err(Error::rejected(
            path,
            format!("the file parser failed: {}", crate::abi::panic_message(&*p)),
        ))
    })
}

fn analyze_inner(path: &Path, bytes: &[u8]) -> Result<FileAnalysis> {
    let rej = |r: String| Error::rejected(path, r);
    if bytes.len() < 64 {
        return Err(rej(format!(
            "file is only {} bytes: not a shared library",
            bytes.len()
        )));
    }
    let obj = Object::parse(bytes).map_err(|e| rej(format!("not a shared library: {e}")))?;
    // (symbol name, file offset of its bytes or a reason it has none)
    let mut symbols: Vec<(String, std::result::Result<usize, String>)> = Vec::new();
    let format = match obj {
        Object::Elf(elf) => {
            let arch = elf_arch(elf.header.e_machine);
            check_arch(path, Format::Elf, arch, elf.is_64, elf.little_endian)?;
            if elf.header.e_type != goblin::elf::header::ET_DYN {
                return Err(rej(format!(
                    "ELF file of type {} is not a shared library",
                    goblin::elf::header::et_to_str(elf.header.e_type)
                )));
            }
            for sym in elf.dynsyms.iter() {
                let Some(name) = elf.dynstrtab.get_at(sym.st_name) else {
                    continue;
                };
                if !is_plugin_symbol(name) {
                    continue;
                }
                let off = if sym.st_shndx == 0 {
                    Err("symbol is undefined".to_string())
                } else {
                    elf.program_headers
                        .iter()
                        .filter(|ph| ph.p_type == goblin::elf::program_header::PT_LOAD)
                        .find_map(|ph| {
                            let rel = sym.st_value.checked_sub(ph.p_vaddr)?;
                            (rel.checked_add(size_of::<PluginHeader>() as u64)? <= ph.p_filesz)
                                .then(|| ph.p_offset.checked_add(rel))
                                .flatten()
                        })
                        .and_then(|o| usize::try_from(o).ok())
                        .ok_or_else(|| {
                            format!(
                                "symbol address {:#x} lies in no file-backed segment",
                                sym.st_value
                            )
                        })
                };
                symbols.push((name.to_string(), off));
            }
            Format::Elf
        }
        Object::PE(pe) => {
            let arch = pe_arch(pe.header.coff_header.machine);
            check_arch(path, Format::Pe, arch, pe.is_64, true)?;
            if !pe.is_lib {
                return Err(rej("PE file is not a DLL".into()));
            }
            for e in &pe.exports {
                let Some(name) = e.name else { continue };
                if !is_plugin_symbol(name) {
                    continue;
                }
                let off = e
                    .offset
                    .ok_or_else(|| format!("export RVA {:#x} lies in no section", e.rva));
                symbols.push((name.to_string(), off));
            }
            Format::Pe
        }
        Object::Mach(goblin::mach::Mach::Binary(m)) => {
            let arch = macho_arch(m.header.cputype);
            check_arch(path, Format::MachO, arch, m.is_64, m.little_endian)?;
            if m.header.filetype != goblin::mach::header::MH_DYLIB
                && m.header.filetype != goblin::mach::header::MH_BUNDLE
            {
                return Err(rej("Mach-O file is not a dylib or bundle".into()));
            }
            let exports = m
                .exports()
                .map_err(|e| rej(format!("unreadable Mach-O export trie: {e}")))?;
            let base = m
                .segments
                .iter()
                .find(|s| s.name().ok() == Some("__TEXT"))
                .map_or(0, |s| s.vmaddr);
            for e in exports {
                let name = e.name.strip_prefix('_').unwrap_or(&e.name);
                if !is_plugin_symbol(name) {
                    continue;
                }
                let addr = base.wrapping_add(e.offset);
                let off = m
                    .segments
                    .iter()
                    .find_map(|s| {
                        let rel = addr.checked_sub(s.vmaddr)?;
                        (rel.checked_add(size_of::<PluginHeader>() as u64)? <= s.filesize)
                            .then(|| s.fileoff.checked_add(rel))
                            .flatten()
                    })
                    .and_then(|o| usize::try_from(o).ok())
                    .ok_or_else(|| format!("export address {addr:#x} lies in no segment"));
                symbols.push((name.to_string(), off));
            }
            Format::MachO
        }
        Object::Mach(goblin::mach::Mach::Fat(_)) => {
            return Err(rej(
                "universal (fat) Mach-O files are not supported; extract one architecture".into(),
            ))
        }
        Object::Archive(_) => {
            return Err(rej("static archive, not a shared library".into()));
        }
        _ => return Err(rej("not a shared library (unknown format)".into())),
    };
    symbols.sort_by(|a, b| a.0.cmp(&b.0));
    let descriptors = symbols
        .into_iter()
        .map(|(sym, off)| read_descriptor(bytes, sym, off))
        .collect();
    Ok(FileAnalysis {
        path: path.to_path_buf(),
        format: format.name(),
        descriptors,
    })
}

fn check_arch(path: &Path, f: Format, arch: &str, is_64: bool, le: bool) -> Result<()> {
    let host = Format::host();
    let bits = if is_64 { 64 } else { 32 };
    let what = format!(
        "{} library for {arch} ({bits}-bit, {})",
        f.name(),
        if le { "little-endian" } else { "big-endian" }
    );
    if f != host {
        return Err(Error::rejected(
            path,
            format!("{what}: this host loads {} libraries", host.name()),
        ));
    }
    if arch != host_arch() || bits != usize::BITS || le != cfg!(target_endian = "little") {
        return Err(Error::rejected(
            path,
            format!(
                "{what}: wrong architecture, this host is {} ({}-bit)",
                host_arch(),
                usize::BITS
            ),
        ));
    }
    Ok(())
}

fn is_plugin_symbol(name: &str) -> bool {
    name.starts_with(CONNECTOR_PREFIX) || name.starts_with(OS_PREFIX)
}

/// Parses a header from raw bytes (little- or native-endian as the host: the architecture
/// check above guarantees the file matches the host).
pub fn parse_header(b: &[u8]) -> Option<PluginHeader> {
    let b = b.get(..size_of::<PluginHeader>())?;
    let u32at = |o: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(b.get(o..o + 4)?);
        Some(u32::from_ne_bytes(a))
    };
    let mut h = PluginHeader {
        magic: [0; 8],
        abi_version: u32at(offset_of!(PluginHeader, abi_version))?,
        kind: u32at(offset_of!(PluginHeader, kind))?,
        header_size: u32at(offset_of!(PluginHeader, header_size))?,
        input: u32at(offset_of!(PluginHeader, input))?,
        fingerprint: 0,
        name: [0; crate::abi::NAME_LEN],
        version: [0; crate::abi::VERSION_LEN],
        description: [0; crate::abi::DESCRIPTION_LEN],
    };
    let copy = |dst: &mut [u8], o: usize| -> Option<()> {
        dst.copy_from_slice(b.get(o..o + dst.len())?);
        Some(())
    };
    copy(&mut h.magic, offset_of!(PluginHeader, magic))?;
    let mut fp = [0u8; 8];
    copy(&mut fp, offset_of!(PluginHeader, fingerprint))?;
    h.fingerprint = u64::from_ne_bytes(fp);
    copy(&mut h.name, offset_of!(PluginHeader, name))?;
    copy(&mut h.version, offset_of!(PluginHeader, version))?;
    copy(&mut h.description, offset_of!(PluginHeader, description))?;
    Some(h)
}

/// Checks a header against the host and the symbol it was exported under. Used on the
/// file's bytes before loading and on the loaded memory before the first call.
pub fn check_header(h: &PluginHeader, symbol: &str) -> std::result::Result<(), String> {
    let (kind, suffix) = symbol_kind(symbol).ok_or("not a plugin symbol")?;
    if h.magic != MAGIC {
        return Err("descriptor does not start with the MLPLUGIN magic".into());
    }
    if h.abi_version != ABI_VERSION {
        return Err(format!(
            "built for plugin ABI version {}, this host supports version {ABI_VERSION}",
            h.abi_version
        ));
    }
    if h.header_size as usize != size_of::<PluginHeader>() {
        return Err(format!(
            "header size {} differs from the host's {}",
            h.header_size,
            size_of::<PluginHeader>()
        ));
    }
    let want_kind = match kind {
        PluginKind::Connector => KIND_CONNECTOR,
        PluginKind::Os => KIND_OS,
    };
    if h.kind != want_kind {
        return Err(format!(
            "exported as {kind} but its descriptor declares kind {}",
            h.kind
        ));
    }
    if h.fingerprint != layout_fingerprint(want_kind) {
        return Err(format!(
            "layout fingerprint {:#018x} differs from the host's {:#018x} \
             (built against another memlens-plugin version)",
            h.fingerprint,
            layout_fingerprint(want_kind)
        ));
    }
    let name = inline_str(&h.name);
    if !crate::args::valid_name(&name) || !name.eq_ignore_ascii_case(suffix) {
        return Err(format!(
            "descriptor name '{name}' does not match symbol {symbol}"
        ));
    }
    Ok(())
}

/// The kind and name suffix of a plugin symbol.
pub fn symbol_kind(symbol: &str) -> Option<(PluginKind, &str)> {
    if let Some(s) = symbol.strip_prefix(CONNECTOR_PREFIX) {
        Some((PluginKind::Connector, s))
    } else {
        symbol.strip_prefix(OS_PREFIX).map(|s| (PluginKind::Os, s))
    }
}

fn read_descriptor(
    bytes: &[u8],
    symbol: String,
    off: std::result::Result<usize, String>,
) -> DescriptorInfo {
    let (kind, suffix) = symbol_kind(&symbol).unwrap_or((PluginKind::Connector, ""));
    let mut d = DescriptorInfo {
        kind,
        name: suffix.to_ascii_lowercase(),
        version: String::new(),
        description: String::new(),
        abi_version: 0,
        input: InputKind::None,
        problem: None,
        symbol: symbol.clone(),
    };
    let header = match off {
        Err(e) => {
            d.problem = Some(e);
            return d;
        }
        Ok(o) => match bytes.get(o..).and_then(parse_header) {
            Some(h) => h,
            None => {
                d.problem = Some(format!(
                    "descriptor at file offset {o:#x} runs past the end of the file"
                ));
                return d;
            }
        },
    };
    d.abi_version = header.abi_version;
    if header.magic == MAGIC {
        d.name = inline_str(&header.name);
        d.version = inline_str(&header.version);
        d.description = inline_str(&header.description);
        d.input = InputKind::from_u32(header.input);
    }
    d.problem = check_header(&header, &symbol).err();
    d
}

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

use goblin::elf::section_header::SHF_ALLOC;
use memlens_core::elf;
use memlens_core::os::{ModuleDetails, SectionInfo};
use memlens_core::{MemoryView, VirtAddr};

use crate::error::NativeError;

const EHDR_SIZE: usize = 64;
const MAX_FILE: u64 = 1 << 30;

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
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_FILE {
        return Err(format!(
            "{} is larger than {MAX_FILE} bytes: not read",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.get(..EHDR_SIZE) != Some(img.header.as_slice()) {
        return Err(format!(
            "{}: its ELF header differs from the mapped image (file replaced?)",
            path.display()
        ));
    }
    let elf = goblin::elf::Elf::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(elf
        .section_headers
        .iter()
        .filter(|s| s.sh_flags & u64::from(SHF_ALLOC) != 0 && s.sh_size > 0)
        .map(|s| SectionInfo {
            name: elf
                .shdr_strtab
                .get_at(s.sh_name)
                .unwrap_or_default()
                .to_string(),
            addr: VirtAddr(img.bias.wrapping_add(s.sh_addr)),
            size: s.sh_size,
        })
        .collect())
}

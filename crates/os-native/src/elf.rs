//! Exports, imports and sections of an ELF module mapped into a process. **Key decision:
//! symbols come from the process's memory, sections from the file on disk.** The loader
//! maps the ELF header, the program headers and the dynamic section, so the dynamic symbol
//! table (`DT_SYMTAB`, `DT_STRTAB`, count from `DT_GNU_HASH` or `DT_HASH`) and the
//! relocations (`DT_RELA`, `DT_JMPREL`) are read from memory — what the process really
//! runs. Section headers are not part of any loaded segment, so sections are read from
//! the mapped file (`/proc/PID/root/<path>`, then `<path>`), and only when its ELF header
//! equals the one in memory (the file may have been replaced since it was mapped).
//!
//! Only 64-bit little-endian ELF is parsed (the host's own format on x86-64 and aarch64).
//! Every count and size read from the target is bounded before it is used.

use goblin::elf::dynamic::{
    DT_GNU_HASH, DT_HASH, DT_JMPREL, DT_NULL, DT_PLTRELSZ, DT_RELA, DT_RELASZ, DT_STRSZ, DT_STRTAB,
    DT_SYMTAB,
};
use goblin::elf::program_header::{PT_DYNAMIC, PT_LOAD};
use goblin::elf::section_header::SHF_ALLOC;
use goblin::elf::sym::{STB_GLOBAL, STB_GNU_UNIQUE, STB_WEAK, STT_SECTION};
use memlens_core::os::{ModuleDetails, SectionInfo, SymbolInfo};
use memlens_core::{Address, MemoryView, MemoryViewExt, ReadOp, VirtAddr};

use crate::error::NativeError;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const DYN_SIZE: usize = 16;
const SYM_SIZE: usize = 24;
const RELA_SIZE: usize = 24;
const MAX_PHDRS: usize = 1024;
const MAX_DYN: usize = 4096;
const MAX_SYMS: usize = 1 << 20;
const MAX_STRTAB: usize = 64 << 20;
const MAX_RELAS: usize = 1 << 20;
const MAX_BUCKETS: usize = 1 << 22;
const MAX_FILE: u64 = 1 << 30;

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// A program header (the fields used).
#[derive(Debug, Clone, Copy)]
struct Phdr {
    p_type: u32,
    vaddr: u64,
    memsz: u64,
}

/// What was learnt from the ELF header in memory.
struct Image {
    /// Load bias: runtime address = bias + link-time address.
    bias: u64,
    phdrs: Vec<Phdr>,
    header: Vec<u8>,
}

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
    let img = read_image(mem, base).map_err(bad)?;
    let dynamic = read_dynamic(mem, &img).map_err(bad)?;
    let (exports, imports) = match dynamic {
        Some(d) => symbols(mem, &img, &d).map_err(bad)?,
        None => (Vec::new(), Vec::new()),
    };
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

fn read_image<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    base: VirtAddr,
) -> Result<Image, String> {
    let header = mem
        .read_vec(base, EHDR_SIZE)
        .map_err(|e| format!("cannot read the ELF header: {e}"))?;
    if header.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("no ELF magic at the module base".into());
    }
    if header.get(4) != Some(&2) || header.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF (only those are parsed)".into());
    }
    let phoff = u64_at(&header, 32).unwrap_or(0);
    let phentsize = u16_at(&header, 54).unwrap_or(0) as usize;
    let phnum = u16_at(&header, 56).unwrap_or(0) as usize;
    if phentsize != PHDR_SIZE || phnum == 0 || phnum > MAX_PHDRS {
        return Err(format!(
            "bad program header table: {phnum} entries of {phentsize} bytes"
        ));
    }
    // The program headers are in the first loaded page(s), right after the header.
    let ph_addr = base
        .checked_add(phoff)
        .ok_or("program header offset overflows")?;
    let raw = mem
        .read_vec(ph_addr, phnum * PHDR_SIZE)
        .map_err(|e| format!("cannot read {phnum} program headers at {ph_addr}: {e}"))?;
    let phdrs: Vec<Phdr> = raw
        .chunks_exact(PHDR_SIZE)
        .map(|p| Phdr {
            p_type: u32_at(p, 0).unwrap_or(0),
            vaddr: u64_at(p, 16).unwrap_or(0),
            memsz: u64_at(p, 40).unwrap_or(0),
        })
        .collect();
    let first_load = phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .map(|p| p.vaddr & !0xfff)
        .min()
        .ok_or("no PT_LOAD segment")?;
    Ok(Image {
        bias: base.0.wrapping_sub(first_load),
        phdrs,
        header,
    })
}

/// The dynamic entries used, as runtime addresses.
#[derive(Default, Debug)]
struct Dynamic {
    symtab: Option<u64>,
    strtab: Option<u64>,
    strsz: Option<u64>,
    hash: Option<u64>,
    gnu_hash: Option<u64>,
    rela: Option<(u64, u64)>,
    jmprel: Option<(u64, u64)>,
}

fn read_dynamic<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    img: &Image,
) -> Result<Option<Dynamic>, String> {
    let Some(ph) = img.phdrs.iter().find(|p| p.p_type == PT_DYNAMIC) else {
        return Ok(None);
    };
    let addr = VirtAddr(img.bias.wrapping_add(ph.vaddr));
    let n = (ph.memsz as usize / DYN_SIZE).clamp(1, MAX_DYN);
    let raw = mem
        .read_vec(addr, n * DYN_SIZE)
        .map_err(|e| format!("cannot read the dynamic section at {addr}: {e}"))?;
    let (lo, hi) = span(img);
    // glibc's loader rewrites pointer entries to runtime addresses; other loaders (musl,
    // the vDSO) leave link-time values. A value inside the image's runtime span is taken
    // as is; anything else gets the bias added.
    let ptr = |v: u64| {
        if v >= lo && v < hi {
            v
        } else {
            img.bias.wrapping_add(v)
        }
    };
    let mut d = Dynamic::default();
    let (mut rela, mut relasz, mut jmprel, mut pltrelsz) = (None, None, None, None);
    for e in raw.chunks_exact(DYN_SIZE) {
        let tag = u64_at(e, 0).unwrap_or(0);
        let val = u64_at(e, 8).unwrap_or(0);
        match tag {
            DT_NULL => break,
            DT_SYMTAB => d.symtab = Some(ptr(val)),
            DT_STRTAB => d.strtab = Some(ptr(val)),
            DT_STRSZ => d.strsz = Some(val),
            DT_HASH => d.hash = Some(ptr(val)),
            DT_GNU_HASH => d.gnu_hash = Some(ptr(val)),
            DT_RELA => rela = Some(ptr(val)),
            DT_RELASZ => relasz = Some(val),
            DT_JMPREL => jmprel = Some(ptr(val)),
            DT_PLTRELSZ => pltrelsz = Some(val),
            _ => {}
        }
    }
    d.rela = rela.zip(relasz);
    d.jmprel = jmprel.zip(pltrelsz);
    Ok(Some(d))
}

/// Runtime span `[lo, hi)` of the loaded segments.
fn span(img: &Image) -> (u64, u64) {
    let loads = img.phdrs.iter().filter(|p| p.p_type == PT_LOAD);
    let lo = loads.clone().map(|p| p.vaddr).min().unwrap_or(0);
    let hi = loads
        .map(|p| p.vaddr.saturating_add(p.memsz))
        .max()
        .unwrap_or(0);
    (img.bias.wrapping_add(lo), img.bias.wrapping_add(hi))
}

/// Number of dynamic symbols, from `DT_GNU_HASH` (highest symbol reachable from a bucket,
/// then to the end of its chain) or `DT_HASH` (`nchain`).
fn symbol_count<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    d: &Dynamic,
) -> Result<usize, String> {
    if let Some(h) = d.gnu_hash {
        let hdr = mem
            .read_vec(VirtAddr(h), 16)
            .map_err(|e| format!("cannot read DT_GNU_HASH at {h:#x}: {e}"))?;
        let nbuckets = u32_at(&hdr, 0).unwrap_or(0) as usize;
        let symoffset = u32_at(&hdr, 4).unwrap_or(0) as usize;
        let bloom = u32_at(&hdr, 8).unwrap_or(0) as usize;
        if nbuckets > MAX_BUCKETS || bloom > MAX_BUCKETS {
            return Err(format!(
                "DT_GNU_HASH too large ({nbuckets} buckets, {bloom} bloom words)"
            ));
        }
        let buckets_at = h + 16 + bloom as u64 * 8;
        let raw = mem
            .read_vec(VirtAddr(buckets_at), nbuckets * 4)
            .map_err(|e| format!("cannot read DT_GNU_HASH buckets at {buckets_at:#x}: {e}"))?;
        let max = raw
            .chunks_exact(4)
            .filter_map(|c| u32_at(c, 0))
            .max()
            .unwrap_or(0) as usize;
        if max < symoffset {
            return Ok(symoffset);
        }
        // Walk the chain of the highest bucket until its end bit.
        let chain_at = buckets_at + nbuckets as u64 * 4;
        let mut i = max;
        while i < MAX_SYMS {
            let a = chain_at + (i - symoffset) as u64 * 4;
            let v = mem
                .read_u32(VirtAddr(a))
                .map_err(|e| format!("cannot read DT_GNU_HASH chain at {a:#x}: {e}"))?;
            if v & 1 == 1 {
                return Ok(i + 1);
            }
            i += 1;
        }
        return Err(format!("DT_GNU_HASH chain longer than {MAX_SYMS} symbols"));
    }
    if let Some(h) = d.hash {
        let n = mem
            .read_u32(VirtAddr(h + 4))
            .map_err(|e| format!("cannot read DT_HASH at {h:#x}: {e}"))? as usize;
        return Ok(n.min(MAX_SYMS));
    }
    Err("neither DT_GNU_HASH nor DT_HASH: the symbol count is unknown".into())
}

type Symbols = (Vec<SymbolInfo>, Vec<SymbolInfo>);

fn symbols<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    img: &Image,
    d: &Dynamic,
) -> Result<Symbols, String> {
    let (Some(symtab), Some(strtab)) = (d.symtab, d.strtab) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let count = symbol_count(mem, d)?;
    let strsz = (d.strsz.unwrap_or(0) as usize).min(MAX_STRTAB);
    let mut syms = vec![0u8; count * SYM_SIZE];
    let mut strs = vec![0u8; strsz];
    let mut ops = [
        ReadOp::new(VirtAddr(symtab), &mut syms),
        ReadOp::new(VirtAddr(strtab), &mut strs),
    ];
    mem.read_batch(&mut ops);
    let [a, b] = ops;
    a.result
        .map_err(|e| format!("cannot read {count} symbols at {symtab:#x}: {e}"))?;
    b.result
        .map_err(|e| format!("cannot read the string table at {strtab:#x}: {e}"))?;
    let name_at = |off: usize| -> String {
        let s = strs.get(off..).unwrap_or(&[]);
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).into_owned()
    };
    let mut exports = Vec::new();
    // (symbol index, name) of undefined symbols.
    let mut undefined = Vec::new();
    for (i, s) in syms.chunks_exact(SYM_SIZE).enumerate().skip(1) {
        let name_off = u32_at(s, 0).unwrap_or(0) as usize;
        let info = s.get(4).copied().unwrap_or(0);
        let shndx = u16_at(s, 6).unwrap_or(0);
        let value = u64_at(s, 8).unwrap_or(0);
        let (bind, typ) = (info >> 4, info & 0xf);
        if name_off == 0 || typ == STT_SECTION {
            continue;
        }
        if shndx == 0 {
            undefined.push((i, name_at(name_off)));
        } else if matches!(bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE) {
            exports.push(SymbolInfo {
                name: name_at(name_off),
                addr: VirtAddr(if shndx == 0xfff1 {
                    value // SHN_ABS: not relocated.
                } else {
                    img.bias.wrapping_add(value)
                }),
            });
        }
    }
    exports.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| a.name.cmp(&b.name)));
    let imports = resolve_imports(mem, img, d, undefined);
    Ok((exports, imports))
}

/// Imports with the address currently stored in their GOT slot (found through the
/// `R_*_GLOB_DAT`/`JUMP_SLOT` relocations): the bound target, or with lazy binding a PLT
/// stub until the first call. 0 when no slot was found or it could not be read.
fn resolve_imports<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    img: &Image,
    d: &Dynamic,
    undefined: Vec<(usize, String)>,
) -> Vec<SymbolInfo> {
    let mut slot_of: std::collections::HashMap<usize, u64> = Default::default();
    for (at, size) in [d.jmprel, d.rela].into_iter().flatten() {
        let n = (size as usize / RELA_SIZE).min(MAX_RELAS);
        let Ok(raw) = mem.read_vec(VirtAddr(at), n * RELA_SIZE) else {
            log::info!("cannot read relocations at {at:#x}");
            continue;
        };
        for r in raw.chunks_exact(RELA_SIZE) {
            let off = u64_at(r, 0).unwrap_or(0);
            let sym = (u64_at(r, 8).unwrap_or(0) >> 32) as usize;
            if sym != 0 {
                slot_of
                    .entry(sym)
                    .or_insert_with(|| img.bias.wrapping_add(off));
            }
        }
    }
    let mut values = vec![[0u8; 8]; undefined.len()];
    let mut ok = vec![false; undefined.len()];
    {
        let mut ops: Vec<ReadOp<'_, VirtAddr>> = Vec::new();
        let mut which = Vec::new();
        for (k, ((i, _), v)) in undefined.iter().zip(values.iter_mut()).enumerate() {
            if let Some(&slot) = slot_of.get(i) {
                ops.push(ReadOp::new(VirtAddr(slot), v));
                which.push(k);
            }
        }
        mem.read_batch(&mut ops);
        for (op, k) in ops.iter().zip(which) {
            ok[k] = op.result.is_ok();
        }
    }
    let mut out: Vec<SymbolInfo> = undefined
        .into_iter()
        .zip(values.iter().zip(ok))
        .map(|((_, name), (v, ok))| SymbolInfo {
            name,
            addr: VirtAddr(if ok { u64::from_le_bytes(*v) } else { 0 }),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// Allocated sections of the file, relocated by the image's bias; the file's ELF header
/// must equal the one in memory.
fn sections_from_file(path: &std::path::Path, img: &Image) -> Result<Vec<SectionInfo>, String> {
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

//! ELF modules mapped into a virtual address space: the header, program headers and
//! dynamic symbols, read from memory. **Key decision: only what a loader maps is used** —
//! the ELF header, the program headers and the dynamic section (`DT_SYMTAB`, `DT_STRTAB`,
//! the symbol count from `DT_GNU_HASH` or `DT_HASH`, the relocations `DT_RELA` and
//! `DT_JMPREL`), so it works on a process of a dump or a guest as well as on the host.
//! Section headers are not part of any loaded segment; OS plugins add sections from
//! wherever they can (the host's file, or the segments).
//!
//! Shared by the OS plugins (they are leaves and do not depend on each other). Only
//! 64-bit little-endian ELF is parsed (x86-64 and aarch64). Every count and size read
//! from the target is bounded before it is used (see [`bounded`] and the `MAX_*` caps);
//! errors are messages naming the address.

use crate::bounded;
use crate::os::SymbolInfo;
use crate::{Address, MemoryView, MemoryViewExt, ReadOp, VirtAddr};

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const DYN_SIZE: usize = 16;
const SYM_SIZE: usize = 24;
const RELA_SIZE: usize = 24;
const MAX_PHDRS: usize = 1024;
const MAX_DYN: usize = 4096;
/// Most dynamic symbols read from one module (262 144; the largest on a Debian 12 host,
/// `node`, has 74 985). More is an error, not a truncation.
pub const MAX_SYMS: usize = 1 << 18;
/// Largest dynamic string table read (16 MiB).
pub const MAX_STRTAB: usize = 16 << 20;
/// Longest symbol name kept (8 KiB; longer names are cut there).
pub const MAX_NAME: usize = 8 << 10;
/// Most bytes of symbol names kept for one module (16 MiB, the string table cap): names may share bytes of the
/// string table, so the table's size alone does not bound them.
pub const MAX_NAME_BYTES: usize = MAX_STRTAB;
/// Most relocations scanned per table.
const MAX_RELAS: usize = 1 << 20;
/// Most `DT_GNU_HASH` buckets or bloom words.
const MAX_BUCKETS: usize = MAX_SYMS;

/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// `PT_DYNAMIC`.
pub const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_PLTRELSZ: u64 = 2;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_STRSZ: u64 = 10;
const DT_JMPREL: u64 = 23;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;
const STB_GNU_UNIQUE: u8 = 10;
const STT_SECTION: u8 = 4;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_type` (`PT_LOAD`, `PT_DYNAMIC`, …).
    pub p_type: u32,
    /// `p_flags` (`PF_X` 1, `PF_W` 2, `PF_R` 4).
    pub flags: u32,
    /// Link-time virtual address (`p_vaddr`).
    pub vaddr: u64,
    /// Size in memory (`p_memsz`).
    pub memsz: u64,
}

/// What was learnt from the ELF header and program headers in memory.
#[derive(Debug, Clone)]
pub struct ElfImage {
    /// Load bias: runtime address = bias + link-time address.
    pub bias: u64,
    /// The program headers.
    pub segments: Vec<Segment>,
    /// The 64 bytes of the ELF header (to compare with a file on disk).
    pub header: Vec<u8>,
    /// `e_type` (2 executable, 3 shared object / PIE).
    pub e_type: u16,
}

/// Exports (defined global/weak symbols, runtime addresses) and imports (undefined
/// symbols, with the address in their GOT slot or 0).
pub type Symbols = (Vec<SymbolInfo>, Vec<SymbolInfo>);

/// Reads the ELF header and program headers of the module mapped at `base`.
pub fn read_image<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    base: VirtAddr,
) -> Result<ElfImage, String> {
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
    let phdrs: Vec<Segment> = raw
        .chunks_exact(PHDR_SIZE)
        .map(|p| Segment {
            p_type: u32_at(p, 0).unwrap_or(0),
            flags: u32_at(p, 4).unwrap_or(0),
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
    Ok(ElfImage {
        bias: base.0.wrapping_sub(first_load),
        segments: phdrs,
        e_type: u16_at(&header, 16).unwrap_or(0),
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
    img: &ElfImage,
) -> Result<Option<Dynamic>, String> {
    let Some(ph) = img.segments.iter().find(|p| p.p_type == PT_DYNAMIC) else {
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
fn span(img: &ElfImage) -> (u64, u64) {
    let loads = img.segments.iter().filter(|p| p.p_type == PT_LOAD);
    let lo = loads.clone().map(|p| p.vaddr).min().unwrap_or(0);
    let hi = loads
        .map(|p| p.vaddr.saturating_add(p.memsz))
        .max()
        .unwrap_or(0);
    (img.bias.wrapping_add(lo), img.bias.wrapping_add(hi))
}

/// Number of dynamic symbols, from `DT_GNU_HASH` (highest symbol reachable from a bucket,
/// then to the end of its chain) or `DT_HASH` (`nchain`). A count above [`MAX_SYMS`] is
/// an error, not a truncation: a partial symbol list would look complete.
fn symbol_count<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    d: &Dynamic,
) -> Result<usize, String> {
    let too_many = |n: u64, table: &str, at: u64| {
        format!("{table} at {at:#x} claims {n} dynamic symbols (more than the {MAX_SYMS} read)")
    };
    if let Some(h) = d.gnu_hash {
        let hdr = mem
            .read_vec(VirtAddr(h), 16)
            .map_err(|e| format!("cannot read DT_GNU_HASH at {h:#x}: {e}"))?;
        let nbuckets = u32_at(&hdr, 0).unwrap_or(0) as usize;
        let symoffset = u32_at(&hdr, 4).unwrap_or(0) as usize;
        let bloom = u32_at(&hdr, 8).unwrap_or(0) as usize;
        if nbuckets > MAX_BUCKETS || bloom > MAX_BUCKETS {
            return Err(format!(
                "DT_GNU_HASH at {h:#x} too large ({nbuckets} buckets, {bloom} bloom words; at most {MAX_BUCKETS} each are read)"
            ));
        }
        if symoffset > MAX_SYMS {
            return Err(too_many(symoffset as u64, "DT_GNU_HASH", h));
        }
        // The highest symbol index any bucket starts at, scanned chunk by chunk.
        let buckets_at = h.wrapping_add(16).wrapping_add(bloom as u64 * 8);
        let mut max = 0usize;
        bounded::for_each_chunk(mem, VirtAddr(buckets_at), nbuckets * 4, |c| {
            let m = c.chunks_exact(4).filter_map(|b| u32_at(b, 0)).max();
            max = max.max(m.unwrap_or(0) as usize);
            Ok(())
        })
        .map_err(|e| format!("cannot read DT_GNU_HASH buckets at {buckets_at:#x}: {e}"))?;
        if max < symoffset {
            return Ok(symoffset);
        }
        if max >= MAX_SYMS {
            return Err(too_many(max as u64 + 1, "DT_GNU_HASH", h));
        }
        // Walk the chain of the highest bucket until its end bit, a page at a time (a
        // read never crosses into a page the chain does not reach).
        let chain_at = buckets_at.wrapping_add(nbuckets as u64 * 4);
        let mut i = max;
        let mut page = [0u8; 4096];
        while i < MAX_SYMS {
            let a = chain_at.wrapping_add((i - symoffset) as u64 * 4);
            let n = ((4096 - (a & 0xfff) as usize) / 4).clamp(1, MAX_SYMS - i);
            let buf = &mut page[..n * 4];
            mem.read_into(VirtAddr(a), buf)
                .map_err(|e| format!("cannot read DT_GNU_HASH chain at {a:#x}: {e}"))?;
            for v in buf.chunks_exact(4).filter_map(|b| u32_at(b, 0)) {
                if v & 1 == 1 {
                    return Ok(i + 1);
                }
                i += 1;
            }
        }
        return Err(too_many(MAX_SYMS as u64 + 1, "DT_GNU_HASH chain", h));
    }
    if let Some(h) = d.hash {
        let n = mem
            .read_u32(VirtAddr(h.wrapping_add(4)))
            .map_err(|e| format!("cannot read DT_HASH at {h:#x}: {e}"))? as usize;
        if n > MAX_SYMS {
            return Err(too_many(n as u64, "DT_HASH", h));
        }
        return Ok(n);
    }
    Err("neither DT_GNU_HASH nor DT_HASH: the symbol count is unknown".into())
}

/// The dynamic symbols of `img` (empty without `PT_DYNAMIC` or a symbol table).
///
/// Memory use is bounded whatever the target holds: at most [`MAX_SYMS`] symbols, a
/// string table of at most [`MAX_STRTAB`] bytes, names of at most [`MAX_NAME`] bytes and
/// [`MAX_NAME_BYTES`] in all; tables are read in chunks ([`bounded`]).
pub fn dynamic_symbols<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    img: &ElfImage,
) -> Result<Symbols, String> {
    match read_dynamic(mem, img)? {
        Some(d) => symbols(mem, img, &d),
        None => Ok((Vec::new(), Vec::new())),
    }
}

/// Bytes from `addr` to the end of the image's runtime span (0 outside it): what a table
/// of the image can cover.
fn room(img: &ElfImage, addr: u64) -> u64 {
    let (lo, hi) = span(img);
    if addr >= lo && addr < hi {
        hi - addr
    } else {
        0
    }
}

fn symbols<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    img: &ElfImage,
    d: &Dynamic,
) -> Result<Symbols, String> {
    let (Some(symtab), Some(strtab)) = (d.symtab, d.strtab) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let count = symbol_count(mem, d)?;
    let syms = bounded::read_table(
        mem,
        VirtAddr(symtab),
        "the dynamic symbol table",
        count as u64,
        SYM_SIZE as u64,
        room(img, symtab),
        (MAX_SYMS * SYM_SIZE) as u64,
    )
    .map_err(|e| e.to_string())?;
    let strs = bounded::read_table(
        mem,
        VirtAddr(strtab),
        "the dynamic string table",
        d.strsz.unwrap_or(0),
        1,
        room(img, strtab),
        MAX_STRTAB as u64,
    )
    .map_err(|e| e.to_string())?;
    // Names may overlap (suffix sharing, or a hostile table pointing every symbol at one
    // long unterminated string): each is capped, and so is their sum.
    let mut name_bytes = 0usize;
    let mut name_at = |off: usize| -> Result<String, String> {
        let s = strs.get(off..).unwrap_or(&[]);
        let s = &s[..s.len().min(MAX_NAME)];
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        name_bytes += end;
        if name_bytes > MAX_NAME_BYTES {
            return Err(format!(
                "the symbol names of the string table at {strtab:#x} exceed {MAX_NAME_BYTES} bytes in all"
            ));
        }
        Ok(String::from_utf8_lossy(&s[..end]).into_owned())
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
            undefined.push((i, name_at(name_off)?));
        } else if matches!(bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE) {
            exports.push(SymbolInfo {
                name: name_at(name_off)?,
                addr: VirtAddr(if shndx == 0xfff1 {
                    value // SHN_ABS: not relocated.
                } else {
                    img.bias.wrapping_add(value)
                }),
            });
        }
    }
    drop(syms);
    drop(strs);
    exports.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| a.name.cmp(&b.name)));
    let imports = resolve_imports(mem, img, d, undefined);
    Ok((exports, imports))
}

/// Imports with the address currently stored in their GOT slot (found through the
/// `R_*_GLOB_DAT`/`JUMP_SLOT` relocations): the bound target, or with lazy binding a PLT
/// stub until the first call. 0 when no slot was found or it could not be read.
///
/// Relocation tables are scanned in chunks and only the slots of undefined symbols are
/// kept, so memory stays proportional to the imports, not to the claimed table sizes.
fn resolve_imports<M: MemoryView<Addr = VirtAddr> + ?Sized>(
    mem: &M,
    img: &ElfImage,
    d: &Dynamic,
    undefined: Vec<(usize, String)>,
) -> Vec<SymbolInfo> {
    let mut slot_of: std::collections::HashMap<usize, Option<u64>> =
        undefined.iter().map(|(i, _)| (*i, None)).collect();
    for (at, size) in [d.jmprel, d.rela].into_iter().flatten() {
        let n = size / RELA_SIZE as u64;
        let len = match bounded::claim_len(
            "relocations",
            VirtAddr(at),
            n,
            RELA_SIZE as u64,
            room(img, at),
            (MAX_RELAS * RELA_SIZE) as u64,
        ) {
            Ok(len) => len,
            Err(e) => {
                log::info!("relocations not read: {e}");
                continue;
            }
        };
        let scan = bounded::for_each_chunk(mem, VirtAddr(at), len, |raw| {
            for r in raw.chunks_exact(RELA_SIZE) {
                let off = u64_at(r, 0).unwrap_or(0);
                let sym = (u64_at(r, 8).unwrap_or(0) >> 32) as usize;
                if let Some(slot @ None) = slot_of.get_mut(&sym) {
                    *slot = Some(img.bias.wrapping_add(off));
                }
            }
            Ok(())
        });
        if let Err(e) = scan {
            log::info!("cannot read relocations at {at:#x}: {e}");
        }
    }
    let mut values = vec![[0u8; 8]; undefined.len()];
    let mut ok = vec![false; undefined.len()];
    {
        let mut ops: Vec<ReadOp<'_, VirtAddr>> = Vec::new();
        let mut which = Vec::new();
        for (k, ((i, _), v)) in undefined.iter().zip(values.iter_mut()).enumerate() {
            if let Some(&Some(slot)) = slot_of.get(i) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryMetadata, MemoryView};

    /// Bytes at virtual address 0.
    struct Bytes(Vec<u8>);

    impl MemoryView for Bytes {
        type Addr = VirtAddr;
        fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
            for op in ops {
                let n = op.buf.len();
                let src = usize::try_from(op.addr.0)
                    .ok()
                    .and_then(|a| self.0.get(a..a.checked_add(n)?));
                op.result = match src {
                    Some(s) => {
                        op.buf.copy_from_slice(s);
                        Ok(())
                    }
                    None => Err(crate::Error::Other(format!("{:#x} unmapped", op.addr.0))),
                };
            }
        }
        fn metadata(&self) -> MemoryMetadata<VirtAddr> {
            MemoryMetadata {
                max_addr: VirtAddr(self.0.len() as u64),
                real_size: self.0.len() as u64,
                readonly: true,
                preferred_batch: 1,
            }
        }
    }

    /// Garbage behind a valid ELF identification, program headers and dynamic entries
    /// never panics: every outcome is `Ok` or an error message.
    #[test]
    fn garbage_images_never_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..400 {
            let mut b = vec![0u8; 8192];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = x as u8;
            }
            b[..6].copy_from_slice(b"\x7fELF\x02\x01");
            if round % 2 == 0 {
                // A plausible table: 4 program headers right after the header, the second
                // PT_DYNAMIC pointing into the garbage.
                b[32..40].copy_from_slice(&64u64.to_le_bytes());
                b[54..56].copy_from_slice(&56u16.to_le_bytes());
                b[56..58].copy_from_slice(&4u16.to_le_bytes());
                b[64..68].copy_from_slice(&PT_LOAD.to_le_bytes());
                b[64 + 16..64 + 24].copy_from_slice(&0u64.to_le_bytes());
                b[120..124].copy_from_slice(&PT_DYNAMIC.to_le_bytes());
                b[120 + 16..120 + 24].copy_from_slice(&(x % 8192).to_le_bytes());
            }
            let mem = Bytes(b);
            if let Ok(img) = read_image(&mem, VirtAddr(0)) {
                let _ = dynamic_symbols(&mem, &img);
            }
        }
    }
}

//! arm64 kernels: from decoded kallsyms to the kernel address space.
//! **Key decision: the image's `VA - PA` comes from position-relative data, not from a
//! symbol's value.** Debian's arm64 kallsyms has text symbols only (no
//! `CONFIG_KALLSYMS_ALL`) and the first page of the image (its header) is overwritten
//! after boot, so neither `linux_banner` nor the `ARM\x64` magic can place the image. But
//! `__ksymtab` entries are PREL32: an entry and the symbol it names differ by the same
//! amount physically and virtually. An exported *text* symbol found in `__ksymtab` in
//! physical memory (its physical address) and in kallsyms (its virtual address) gives
//! `kimage_voffset` exactly; a second one must agree. The rest follows from the image:
//!
//! - `memstart_addr` (exported; `PHYS_OFFSET`) places the linear map:
//!   `VA = PA - memstart_addr + PAGE_OFFSET` with `PAGE_OFFSET = -(1 << VA_BITS)`.
//! - `swapper_pg_dir` (the TTBR1 root) is neither in kallsyms nor exported; it is
//!   `init_task.active_mm->pgd` (`init_task` is exported, `init_mm` is in the image, the
//!   member offsets come from BTF, which is therefore loaded before the root).
//! - `VA_BITS` is the candidate under which the page tables map both the image and the
//!   linear map where the arithmetic says (4 KiB granule, as Debian builds it).
//! - The image's extent (no `_end` in a text-only kallsyms) is up to the last page the
//!   page tables map at the image offset (holes allowed: the init segment is unmapped
//!   after boot) before a page mapped elsewhere; beyond lie vmalloc addresses.
//!
//! VMCOREINFO (`NUMBER(kimage_voffset)`, `NUMBER(PHYS_OFFSET)`, `NUMBER(VA_BITS)`,
//! `SYMBOL(swapper_pg_dir)`, `KERNELOFFSET`) replaces the searches when the dump has it.

use std::collections::BTreeMap;
use std::sync::Arc;

use memlens_arch::{Granule, Mmu, Roots, VirtualView};
use memlens_core::{MemoryViewExt, PhysAddr, PhysicalMemory, VirtAddr};

use crate::btf::Btf;
use crate::error::{LinuxError, Result};
use crate::kallsyms::SymbolTable;
use crate::scan;
use crate::vm::KernelSpace;

/// Exported text symbols tried for `kimage_voffset` (any two that agree suffice). Names
/// that are rarely the tail of another exported name come first (each tail match is one
/// more place to search).
const ANCHORS: &[&str] = &[
    "_printk",
    "msleep",
    "mutex_lock",
    "printk",
    "schedule",
    "kfree",
    "memcpy",
    "strlen",
];
/// `VA_BITS` values tried without VMCOREINFO (4 KiB granule: 48 and 39 are Linux's).
const VA_BITS: &[u8] = &[48, 39, 47, 42, 36];
/// Longest kernel image accepted (bounds the extent walk).
const MAX_IMAGE: u64 = 256 << 20;

/// What [`setup`] found.
pub(crate) struct Arm64 {
    /// `kimage_voffset`: VA minus PA of the image.
    pub image_delta: u64,
    /// Physical address of `_text`.
    pub text_pa: u64,
    /// Length of the image mapping from `_text`.
    pub image_len: u64,
    /// `VA_BITS`.
    pub va_bits: u8,
    /// Virtual address of physical address 0 in the linear map.
    pub linear_base: u64,
    /// `swapper_pg_dir`.
    pub root: PhysAddr,
    /// The kernel's BTF.
    pub btf: Btf,
    /// The kernel address space (linear windows + walker).
    pub kvm: KernelSpace,
    /// `KERNELOFFSET` from VMCOREINFO, when given.
    pub kaslr: Option<u64>,
    /// Whether VMCOREINFO was used.
    pub hinted: bool,
    /// `init_task` from `__ksymtab` (pre-seeds the kernel's symbol cache).
    pub init_task: Option<u64>,
    /// The first `Linux version …` banner in the window.
    pub banner: Option<String>,
}

fn parse_vmci(v: &BTreeMap<String, String>, key: &str) -> Option<u64> {
    let s = v.get(key)?.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if key.starts_with("NUMBER(") => s.parse::<i64>().ok().map(|v| v as u64),
        None => u64::from_str_radix(s, 16).ok(),
    }
}

/// The 4 KiB-granule MMU for `va_bits`.
pub(crate) fn mmu(va_bits: u8) -> Result<Mmu> {
    Mmu::aarch64(Granule::K4, va_bits).map_err(|e| LinuxError::Unsupported {
        what: "aarch64 paging",
        detail: e.to_string(),
    })
}

/// Physical offset (from `base`) of exported symbol `name`, searched in `img`.
fn ksym_pa(img: &[u8], base: u64, name: &str) -> Option<u64> {
    crate::ksymtab::lookup(img, 0, name).map(|rel| base.wrapping_add(rel))
}

/// Windows `(before, after)` around the token table searched for `__ksymtab`, the BTF,
/// `swapper_pg_dir` and the banner: a small one (Debian's 6.1 has them from 3 MiB before
/// to 7 MiB after kallsyms) and a large fallback.
const WINDOWS: [(u64, u64); 2] = [(4 << 20, 16 << 20), (16 << 20, 64 << 20)];

/// Finds the arm64 kernel's layout. `tt` is the physical address of the kallsyms token
/// table (inside the image's read-only data).
pub(crate) fn setup(
    phys: &Arc<dyn PhysicalMemory>,
    syms: &SymbolTable,
    tt: PhysAddr,
    vmci: Option<&BTreeMap<String, String>>,
    forced_root: Option<PhysAddr>,
) -> Result<Arm64> {
    let mut last = None;
    // Hints are shortcuts: when what they say does not check out, the scan decides.
    let hints: &[Option<&BTreeMap<String, String>>] = if vmci.is_some() {
        &[vmci, None]
    } else {
        &[None]
    };
    for &v in hints {
        for w in WINDOWS {
            match setup_in(phys, syms, tt, v, forced_root, w) {
                Ok(a) => return Ok(a),
                Err(e) => {
                    if v.is_some() {
                        log::warn!("arm64: VMCOREINFO values do not check out ({e}); scanning");
                        last = Some(e);
                        break;
                    }
                    log::debug!("arm64 setup with window {w:x?}: {e}");
                    last = Some(e);
                }
            }
        }
    }
    Err(last.unwrap_or(LinuxError::KernelNotFound {
        found: format!("arm64 kallsyms at {tt}"),
        missing: "a search window".into(),
    }))
}

fn setup_in(
    phys: &Arc<dyn PhysicalMemory>,
    syms: &SymbolTable,
    tt: PhysAddr,
    vmci: Option<&BTreeMap<String, String>>,
    forced_root: Option<PhysAddr>,
    (before, after): (u64, u64),
) -> Result<Arm64> {
    let not_found = |missing: String| LinuxError::KernelNotFound {
        found: format!("arm64 kallsyms at {tt}"),
        missing,
    };
    let hint = |key: &str| vmci.and_then(|v| parse_vmci(v, key));
    let max_pa = phys.metadata().max_addr.0;
    let mut hinted = false;
    let text = syms
        .get("_text")
        .or_else(|| syms.get("_stext"))
        .ok_or_else(|| not_found("the symbol _text".into()))?;

    // The image's read-only data and data around the token table: `__ksymtab`, the BTF
    // and `swapper_pg_dir` follow kallsyms (which sits in `.rodata`).
    let base = tt.0.saturating_sub(before) & !0xfff;
    let img = scan::read_lossy(&**phys, base, (tt.0 - base + after) as usize);

    // 1. kimage_voffset.
    let image_delta = match hint("NUMBER(kimage_voffset)") {
        Some(d) => {
            hinted = true;
            d
        }
        None => {
            let mut found: Option<u64> = None;
            let mut agreed = false;
            for name in ANCHORS {
                let (Some(va), Some(pa)) = (syms.get(name), ksym_pa(&img, base, name)) else {
                    continue;
                };
                let d = va.wrapping_sub(pa);
                match found {
                    None => found = Some(d),
                    Some(f) if f == d => {
                        agreed = true;
                        break;
                    }
                    Some(f) => {
                        return Err(not_found(format!(
                            "one image offset: __ksymtab gives {f:#x} and {d:#x} ({name})"
                        )))
                    }
                }
            }
            match (found, agreed) {
                (Some(d), true) => d,
                _ => {
                    return Err(not_found(
                        "two exported text symbols in __ksymtab near kallsyms (image offset)"
                            .into(),
                    ))
                }
            }
        }
    };
    let text_pa = text.wrapping_sub(image_delta);
    let img_pa = |va: u64| PhysAddr(va.wrapping_sub(image_delta));

    // 2. PHYS_OFFSET (memstart_addr).
    let memstart = match hint("NUMBER(PHYS_OFFSET)") {
        Some(m) => {
            hinted = true;
            m
        }
        None => {
            let pa = ksym_pa(&img, base, "memstart_addr")
                .ok_or_else(|| not_found("memstart_addr in __ksymtab".into()))?;
            phys.read_u64(PhysAddr(pa))?
        }
    };

    // 3. BTF (needed for init_task -> init_mm -> pgd).
    let (_, blob) = scan::find_btf_in(&img).ok_or_else(|| LinuxError::NoBtf {
        release: "(arm64 kernel)".into(),
    })?;
    let btf = Btf::parse(&blob)?;

    // 4./5. swapper_pg_dir and VA_BITS: the page tables must map the image and the
    // linear map as computed.
    let linear_of = |vb: u8| (1u64 << vb).wrapping_neg().wrapping_sub(memstart);
    let maps = |vb: u8, root: PhysAddr| -> bool {
        let Ok(m) = mmu(vb) else { return false };
        let view = VirtualView::new(phys.clone(), m, Roots::split(root, root));
        let at = |va: u64| view.translate(VirtAddr(va)).map(|t| t.pa.0).ok();
        at(text) == Some(text_pa) && at(linear_of(vb).wrapping_add(root.0)) == Some(root.0)
    };
    let vb_hint = hint("NUMBER(VA_BITS)")
        .and_then(|v| u8::try_from(v).ok())
        .filter(|v| (25..=52).contains(v));
    let vbs: Vec<u8> = match vb_hint {
        Some(v) => vec![v],
        None => VA_BITS.to_vec(),
    };
    let root_hint = forced_root.or_else(|| hint("SYMBOL(swapper_pg_dir)").map(img_pa));
    hinted |= vb_hint.is_some() || (root_hint.is_some() && forced_root.is_none());
    let pick = |root: PhysAddr| vbs.iter().copied().find(|vb| maps(*vb, root));
    let (root, va_bits) = match root_hint {
        Some(r) => (r, pick(r)),
        None => match root_from_init_mm(phys, &btf, &img, base, text, image_delta) {
            Some(r) if pick(r).is_some() => (r, pick(r)),
            _ => scan_root(&img, base, max_pa, text, &vbs, |r, vb| maps(vb, r))
                .map_or((PhysAddr(0), None), |(r, vb)| (r, Some(vb))),
        },
    };
    let Some(va_bits) = va_bits else {
        return Err(not_found(format!(
            "page tables (root {root}) mapping _text ({text:#x}) at {text_pa:#x} and the \
             linear map (VA_BITS {vbs:?}, PHYS_OFFSET {memstart:#x}; 4 KiB granule)"
        )));
    };
    let mmu = mmu(va_bits)?;

    // 6. The image's extent: pages mapped at the image offset, in one batch.
    let view = VirtualView::new(phys.clone(), mmu, Roots::split(root, root));
    let vas: Vec<VirtAddr> = (0..MAX_IMAGE / 4096)
        .map(|i| VirtAddr(text.wrapping_add(i * 4096)))
        .collect();
    let mut out: Vec<memlens_core::Result<memlens_arch::Translation>> = vas
        .iter()
        .map(|_| {
            Err(memlens_core::Error::Unsupported {
                what: String::new(),
            })
        })
        .collect();
    view.translate_batch(&vas, &mut out);
    // Holes are allowed (the init segment is unmapped after boot); the first page mapped
    // elsewhere (vmalloc) ends the image.
    let mut pages = 0u64;
    for (i, (t, va)) in out.iter().zip(&vas).enumerate() {
        match t {
            Ok(t) if t.pa == img_pa(va.0) => pages = i as u64 + 1,
            Ok(_) => break,
            Err(_) => {}
        }
    }
    let image_len = pages * 4096;

    let linear_base = linear_of(va_bits);
    let max_phys = phys.metadata().max_addr.0.saturating_add(1);
    let kvm = KernelSpace::aarch64(phys.clone(), mmu, va_bits, root)
        .with_linear(text, image_len, text_pa)
        .with_linear(linear_base, max_phys, 0);
    if let Some(v) = hint("SYMBOL(_stext)") {
        if syms.get("_stext").is_some_and(|s| s != v) {
            log::warn!("VMCOREINFO _stext {v:#x} disagrees with kallsyms");
        }
    }
    let kaslr = hint("KERNELOFFSET");
    Ok(Arm64 {
        image_delta,
        text_pa,
        image_len,
        va_bits,
        linear_base,
        root,
        btf,
        kvm,
        kaslr,
        hinted: hinted || kaslr.is_some(),
        init_task: ksym_pa(&img, base, "init_task").map(|pa| pa.wrapping_add(image_delta)),
        banner: scan::banner_in(&img),
    })
}

/// `init_task.active_mm->pgd`, when `active_mm` is still `init_mm` (inside the image); the
/// idle task may hold another mm (lazy TLB) or none.
fn root_from_init_mm(
    phys: &Arc<dyn PhysicalMemory>,
    btf: &Btf,
    img: &[u8],
    base: u64,
    text: u64,
    image_delta: u64,
) -> Option<PhysAddr> {
    let init_task = ksym_pa(img, base, "init_task")?;
    let active_mm = btf.offset_of("task_struct", "active_mm").ok()?;
    let pgd_off = btf.offset_of("mm_struct", "pgd").ok()?;
    let in_image = |va: u64| va.wrapping_sub(text) < MAX_IMAGE;
    let init_mm = phys
        .read_u64(PhysAddr(init_task.wrapping_add(active_mm)))
        .ok()?;
    if !in_image(init_mm) {
        log::debug!("arm64: init_task.active_mm {init_mm:#x} is not init_mm");
        return None;
    }
    let pgd = phys
        .read_u64(PhysAddr(
            init_mm.wrapping_sub(image_delta).wrapping_add(pgd_off),
        ))
        .ok()?;
    in_image(pgd).then(|| PhysAddr(pgd.wrapping_sub(image_delta)))
}

/// The TTBR1 root by structure: a page of the image whose top-level entry for `_text` is
/// a valid table descriptor, and under which `verify` (image and linear map translate as
/// computed) holds. Early-boot tables (`init_pg_dir`, the idmap) map no linear map and
/// fail the check. Bounded by the window `img`.
fn scan_root(
    img: &[u8],
    base: u64,
    max_pa: u64,
    text: u64,
    vbs: &[u8],
    verify: impl Fn(PhysAddr, u8) -> bool,
) -> Option<(PhysAddr, u8)> {
    for &vb in vbs {
        let levels = u32::from(vb.saturating_sub(12)).div_ceil(9);
        let shift = 12 + 9 * levels.saturating_sub(1);
        let bits = u32::from(vb).saturating_sub(shift);
        let idx = ((text >> shift) & ((1u64 << bits) - 1)) as usize;
        let first = (base.wrapping_neg() & 0xfff) as usize;
        let mut off = first;
        while off + 4096 <= img.len() {
            let e = img
                .get(off + 8 * idx..off + 8 * idx + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0);
            let root = PhysAddr(base + off as u64);
            // A table descriptor: type bits 0b11, bits 11:2 and 58:48 clear (Linux sets
            // only the type and, for kernel tables, PXN/UXN-table bits 59/60), next
            // table inside physical memory.
            let table = e & 0x0000_ffff_ffff_f000;
            let plausible = e & 3 == 3
                && e & 0x0000_0000_0000_0ffc == 0
                && e & 0x07ff_0000_0000_0000 == 0
                && table != 0
                && table <= max_pa;
            if plausible && verify(root, vb) {
                log::info!("arm64: swapper_pg_dir found by structure at {root}");
                return Some((root, vb));
            }
            off += 4096;
        }
    }
    None
}

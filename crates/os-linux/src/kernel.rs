//! Opening a kernel: from physical memory to symbols, layouts and a kernel address space.
//! **Key decision: hints are optional shortcuts, the scan is the ground path.** The order
//! is: kallsyms by scan (or a user System.map), then every address fact read from the
//! image itself; VMCOREINFO and registers only fill gaps (e.g. CR4.LA57 when the kernel
//! has no `__pgtable_l5_enabled`) and are cross-checked with a logged warning on mismatch.
//! An idle vCPU's CR3 is never used as the kernel root: it is often a user process's page
//! table (lazy TLB); `init_top_pgt` from kallsyms is.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use memlens_core::{
    CpuRegisters, MemoryViewExt, PhysAddr, PhysicalMemory, PhysicalTarget, VirtAddr,
};

use crate::btf::Btf;
use crate::error::{LinuxError, Result};
use crate::image::{
    self, image_delta_from_kallsyms, image_delta_without_kallsyms, is_aarch64, vmci_u64,
};
use crate::kallsyms::SymbolTable;
use crate::layout::Offsets;
use crate::scan;
use crate::sysmap;
use crate::vm::{KernelSpace, X86Space};

/// `__START_KERNEL_map` on x86-64.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// Link address of `_text` on x86-64 (KASLR offset 0).
pub const DEFAULT_TEXT: u64 = 0xffff_ffff_8100_0000;

/// Options of [`crate::LinuxOs::open`].
#[derive(Debug, Clone, Default)]
pub struct LinuxOptions {
    /// Force the kernel page-table root (physical address).
    pub root: Option<PhysAddr>,
    /// Force the virtual KASLR offset applied to a symbol file (`_text - 0xffffffff81000000`).
    pub kaslr_offset: Option<u64>,
    /// A symbol file (System.map, vmlinux or Volatility 3 ISF JSON) to use when kallsyms
    /// cannot be found in memory.
    pub symbols: Option<PathBuf>,
    /// Ignore VMCOREINFO and CPU registers (pure scan; for tests and distrust).
    pub no_hints: bool,
    /// Test hook: keep only text symbols of kallsyms, as on kernels without
    /// `CONFIG_KALLSYMS_ALL` (exercises the `__ksymtab` and page-table fallbacks).
    #[doc(hidden)]
    pub text_symbols_only: bool,
}

/// Where the symbols came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolSource {
    /// kallsyms decoded from memory.
    Kallsyms,
    /// A user-supplied symbol file (`symbols=`: System.map, vmlinux or ISF JSON).
    SystemMap,
}

/// Facts about the opened kernel (shown by `memlens info`).
#[derive(Debug, Clone)]
pub struct LinuxInfo {
    /// Architecture of the kernel (x86-64 or aarch64).
    pub arch: memlens_core::Arch,
    /// Kernel release (`uname -r`).
    pub release: Option<String>,
    /// The `Linux version …` banner.
    pub banner: Option<String>,
    /// Paging depth (x86-64: 4 or 5; aarch64: levels of the TTBR1 tables).
    pub levels: u8,
    /// Kernel page-table root.
    pub root: PhysAddr,
    /// Virtual KASLR offset: x86-64 `_text - 0xffffffff81000000`; aarch64 VMCOREINFO's
    /// `KERNELOFFSET`, 0 when the dump has none (the link address is not in memory).
    pub kaslr_virtual: u64,
    /// Physical address of `_text` (arm64: `_stext`, the first kallsyms text symbol).
    pub text_phys: PhysAddr,
    /// Bytes of the image from there: `_end - _text`, or on arm64 (no `_end` in a
    /// text-only kallsyms) the run of pages mapped at the image offset.
    pub image_size: u64,
    /// Virtual minus physical address of the kernel image.
    pub image_delta: u64,
    /// Virtual address of physical 0 in the direct map: x86-64 `page_offset_base`;
    /// aarch64 `PAGE_OFFSET - PHYS_OFFSET`.
    pub page_offset_base: u64,
    /// Symbol source.
    pub symbol_source: SymbolSource,
    /// Number of symbols.
    pub symbol_count: usize,
    /// Number of BTF types.
    pub btf_types: usize,
    /// Which hints were used (`vmcoreinfo`, `cpu`), if any.
    pub hints_used: Vec<String>,
    /// Time per stage of the open.
    pub timings: Vec<(&'static str, Duration)>,
}

/// An opened kernel: symbols, layouts and the kernel address space.
pub struct Kernel {
    pub(crate) phys: Arc<dyn PhysicalMemory>,
    pub(crate) kvm: KernelSpace,
    pub(crate) syms: SymbolTable,
    pub(crate) btf: Btf,
    pub(crate) off: Offsets,
    pub(crate) page_offset_base: u64,
    pub(crate) info: LinuxInfo,
    pub(crate) target: PhysicalTarget,
    /// Symbols resolved through `__ksymtab` after a kallsyms miss.
    pub(crate) exported: std::sync::Mutex<std::collections::HashMap<String, Option<u64>>>,
    /// The image copied once (at most [`image::MAX_IMAGE`]) for `__ksymtab` and scans.
    pub(crate) image: OnceLock<Vec<u8>>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").field("info", &self.info).finish()
    }
}

impl Kernel {
    /// Finds and opens the kernel in `target`.
    pub fn open(target: PhysicalTarget, opts: &LinuxOptions) -> Result<Kernel> {
        let phys = target.memory.clone();
        let mut timings = Vec::new();
        let mut hints_used = Vec::new();
        let vmci = if opts.no_hints {
            None
        } else {
            target.info.vmcoreinfo.clone()
        };
        let cpu0 = if opts.no_hints {
            None
        } else {
            target.cpu.as_ref().and_then(|c| c.registers(0).ok())
        };

        // 1. Symbols and the image's physical offset.
        let t = Instant::now();
        // VMCOREINFO places the image: PA(_text) = 16 MiB + KERNELOFFSET + phys_base.
        let hint = vmci.as_ref().and_then(|v| {
            // arm64 places the image by `PA = VA - kimage_voffset`: the token table
            // itself when the kernel exports its address (a hint only: if nothing is
            // found there, the scan below runs).
            let tt_va = vmci_u64(v, "SYMBOL(kallsyms_token_table)");
            if let (Some(kv), Some(va)) = (vmci_u64(v, "NUMBER(kimage_voffset)"), tt_va) {
                let pa = va.wrapping_sub(kv) & !0xfff;
                return Some((pa, pa.saturating_add(2 << 20)));
            }
            let pb = vmci_u64(v, "NUMBER(phys_base)")?;
            let ko = vmci_u64(v, "KERNELOFFSET").unwrap_or(0);
            let text = (0x100_0000u64).wrapping_add(ko).wrapping_add(pb);
            // Kernels that export SYMBOL(kallsyms_token_table) place the table itself
            // (image PA = VA - __START_KERNEL_map + phys_base): no scan of .text, which
            // matters for compressed dumps where every page scanned is decompressed.
            let tt = tt_va
                .and_then(|va| va.checked_sub(0xffff_ffff_8000_0000))
                .map(|off| off.wrapping_add(pb) & !0xfff)
                .filter(|pa| (text..text.saturating_add(128 << 20)).contains(pa));
            match tt {
                Some(pa) => Some((pa, pa.saturating_add(2 << 20))),
                None => Some((text, text.saturating_add(128 << 20))),
            }
        });
        if hint.is_some() {
            hints_used.push("vmcoreinfo".into());
        }
        let low = scan::low_tables(&*phys);
        let (syms, image_delta, source) = match scan::find_kallsyms(&*phys, hint) {
            Ok(mut found) => {
                if opts.text_symbols_only {
                    found.symbols = SymbolTable::new(
                        found
                            .symbols
                            .iter()
                            .filter(|s| matches!(s.kind, 'T' | 't' | 'W' | 'w'))
                            .map(|s| crate::kallsyms::Symbol {
                                name: s.name.to_string(),
                                kind: s.kind,
                                addr: s.addr,
                            })
                            .collect(),
                    );
                }
                if is_aarch64(&found.symbols) {
                    timings.push(("kallsyms", t.elapsed()));
                    return Kernel::open_aarch64(target, opts, found, vmci, timings);
                }
                // Without `linux_banner` (no data symbols): phys_base from the trampoline.
                let delta = image_delta_from_kallsyms(&*phys, &found.symbols, found.token_table)
                    .or_else(|e| {
                        low.map(|l| START_KERNEL_MAP.wrapping_sub(l.phys_base))
                            .ok_or(e)
                    })?;
                (found.symbols, delta, SymbolSource::Kallsyms)
            }
            Err(kerr) => {
                let Some(path) = &opts.symbols else {
                    let banner = scan::find_banner(&*phys);
                    return Err(LinuxError::KernelNotFound {
                        found: match banner {
                            Some((pa, b)) => format!("banner `{b}` at {pa:#x}, but {kerr}"),
                            None => format!("no `Linux version` banner; {kerr}"),
                        },
                        missing: "the kallsyms tables; give a System.map, vmlinux or ISF JSON with `symbols=PATH`"
                            .into(),
                    });
                };
                let table = sysmap::load(path)?;
                let kaslr = opts
                    .kaslr_offset
                    .or_else(|| vmci.as_ref().and_then(|v| vmci_u64(v, "KERNELOFFSET")))
                    .unwrap_or(0);
                let table = sysmap::shifted(&table, kaslr);
                let delta = image_delta_without_kallsyms(&*phys, &table, vmci.as_ref())?;
                (table, delta, SymbolSource::SystemMap)
            }
        };
        timings.push(("kallsyms", t.elapsed()));
        let sym = |name: &str| {
            syms.get(name).ok_or_else(|| LinuxError::MissingSymbol {
                name: name.into(),
                source_name: format!("{source:?}"),
            })
        };
        let pa_of = |va: u64| PhysAddr(va.wrapping_sub(image_delta));
        // Data symbols missing from kallsyms: exported ones come from `__ksymtab`.
        let img_cache = OnceLock::new();
        let sym = |name: &str| {
            sym(name).or_else(|e| {
                let text = syms.get("_text").ok_or(e.clone())?;
                let end = image::end_of(text, syms.get("_end"));
                let img = img_cache
                    .get_or_init(|| image::read(&*phys, pa_of(text).0, image::span(text, end)));
                crate::ksymtab::lookup(img, text, name).ok_or(e)
            })
        };

        // 2. Page-table root and depth.
        let t = Instant::now();
        let root = match opts.root {
            Some(r) => r,
            None => match sym("init_top_pgt").or_else(|_| sym("swapper_pg_dir")) {
                Ok(va) => pa_of(va),
                // The trampoline's table shares init_top_pgt's kernel half.
                Err(e) => match vmci
                    .as_ref()
                    .and_then(|v| vmci_u64(v, "SYMBOL(init_top_pgt)"))
                {
                    Some(va) => pa_of(va),
                    None => low.map(|l| l.root).ok_or(e)?,
                },
            },
        };
        if let Some(v) = &vmci {
            if let (Some(s), None) = (vmci_u64(v, "SYMBOL(init_top_pgt)"), opts.root) {
                if pa_of(s) != root {
                    log::warn!(
                        "VMCOREINFO init_top_pgt {s:#x} disagrees with kallsyms; using kallsyms"
                    );
                }
            }
        }
        let levels = if let Ok(va) = sym("__pgtable_l5_enabled") {
            if phys.read_u32(pa_of(va))? != 0 {
                5
            } else {
                4
            }
        } else if let Some(n) = vmci
            .as_ref()
            .and_then(|v| vmci_u64(v, "NUMBER(pgtable_l5_enabled)"))
        {
            hints_used.push("vmcoreinfo".into());
            if n != 0 {
                5
            } else {
                4
            }
        } else if let Some(CpuRegisters::X86(r)) = &cpu0 {
            hints_used.push("cpu".into());
            if r.la57() {
                5
            } else {
                4
            }
        } else {
            4
        };
        let page_offset_base = match sym("page_offset_base") {
            Ok(va) => phys.read_u64(pa_of(va))?,
            Err(_) if levels == 5 => 0xff11_0000_0000_0000,
            Err(_) => 0xffff_8880_0000_0000,
        };
        let text = sym("_text").or_else(|_| sym("_stext"))?;
        let end = image::end_of(text, sym("_end").ok());
        let max_phys = phys.metadata().max_addr.0.saturating_add(1);
        let kvm = X86Space::new(phys.clone(), root, levels)
            .with_linear(
                text,
                end.saturating_sub(text),
                text.wrapping_sub(image_delta),
            )
            .with_linear(page_offset_base, max_phys, 0);
        // Cross-check: the page tables must map the image where the linear window says.
        let walker = X86Space::new(phys.clone(), root, levels);
        match walker.translate(VirtAddr(text)) {
            Ok((pa, _)) if pa == pa_of(text) => {}
            other => {
                return Err(LinuxError::KernelNotFound {
                    found: format!(
                        "kallsyms (_text {text:#x}, image at {}), root {root}",
                        pa_of(text)
                    ),
                    missing: format!(
                        "a page table at the root that maps _text there ({:?}, {levels} levels)",
                        other.map(|x| x.0)
                    ),
                })
            }
        }
        timings.push(("root", t.elapsed()));

        // 3. BTF.
        let t = Instant::now();
        let banner = sym("linux_banner")
            .ok()
            .and_then(|va| kvm.read_cstr(VirtAddr(va), 512).ok())
            .or_else(|| {
                // No symbol: the first banner inside the image.
                let img = img_cache
                    .get_or_init(|| image::read(&*phys, pa_of(text).0, image::span(text, end)));
                let at = memchr::memmem::find(img, b"Linux version ")?;
                let tail = img.get(at..(at + 512).min(img.len()))?;
                let n = memchr::memchr(0, tail)?;
                Some(String::from_utf8_lossy(&tail[..n]).into_owned())
            })
            .map(|s| s.trim_end().to_string());
        let release = vmci
            .as_ref()
            .and_then(|v| v.get("OSRELEASE").cloned())
            .or_else(|| banner.as_deref().and_then(scan::release_of_banner));
        let from_syms = match (sym("__start_BTF"), sym("__stop_BTF")) {
            (Ok(s), Ok(e)) if e > s && e - s <= crate::btf::MAX_BLOB as u64 => {
                Some(scan::read_lossy(&*phys, pa_of(s).0, (e - s) as usize))
                    .filter(|b| crate::btf::blob_len(b).is_some())
            }
            _ => None,
        };
        let blob = from_syms.or_else(|| {
            // Bounded: `_end` comes from the target.
            let len = image::span(text, end) as u64;
            scan::find_btf(&*phys, pa_of(text).0, len).map(|(_, b)| b)
        });
        let Some(blob) = blob else {
            return Err(LinuxError::NoBtf {
                release: release
                    .clone()
                    .unwrap_or_else(|| "(unknown release)".into()),
            });
        };
        let btf = Btf::parse(&blob)?;
        let off = Offsets::from_btf(&btf)?;
        timings.push(("btf", t.elapsed()));

        let info = LinuxInfo {
            arch: memlens_core::Arch::X86_64,
            release,
            banner,
            levels,
            root,
            kaslr_virtual: text.wrapping_sub(DEFAULT_TEXT),
            text_phys: pa_of(text),
            image_size: end.saturating_sub(text),
            image_delta,
            page_offset_base,
            symbol_source: source,
            symbol_count: syms.len(),
            btf_types: btf.type_count(),
            hints_used,
            timings,
        };
        Ok(Kernel {
            phys,
            kvm,
            syms,
            btf,
            off,
            page_offset_base,
            info,
            target,
            exported: Default::default(),
            image: img_cache,
        })
    }

    /// The arm64 path of [`Kernel::open`] once kallsyms is decoded (see [`crate::aarch64`]).
    fn open_aarch64(
        target: PhysicalTarget,
        opts: &LinuxOptions,
        found: scan::FoundKallsyms,
        vmci: Option<BTreeMap<String, String>>,
        mut timings: Vec<(&'static str, Duration)>,
    ) -> Result<Kernel> {
        let phys = target.memory.clone();
        let syms = found.symbols;
        let t = Instant::now();
        let a = crate::aarch64::setup(&phys, &syms, found.token_table, vmci.as_ref(), opts.root)?;
        timings.push(("root", t.elapsed()));
        let t = Instant::now();
        // No `linux_banner` symbol: the first banner near kallsyms, else in the image.
        let banner = a.banner.clone().or_else(|| {
            scan::banner_in(&scan::read_lossy(&*phys, a.text_pa, a.image_len as usize))
        });
        let release = vmci
            .as_ref()
            .and_then(|v| v.get("OSRELEASE").cloned())
            .or_else(|| banner.as_deref().and_then(scan::release_of_banner));
        let off = Offsets::from_btf(&a.btf)?;
        timings.push(("btf", t.elapsed()));
        let text = syms
            .get("_text")
            .or_else(|| syms.get("_stext"))
            .unwrap_or(0);
        let info = LinuxInfo {
            arch: memlens_core::Arch::Aarch64,
            release,
            banner,
            levels: a.kvm.levels(),
            root: a.root,
            kaslr_virtual: a.kaslr.unwrap_or(0),
            text_phys: PhysAddr(a.text_pa),
            image_size: a.image_len,
            image_delta: a.image_delta,
            page_offset_base: a.linear_base,
            symbol_source: SymbolSource::Kallsyms,
            symbol_count: syms.len(),
            btf_types: a.btf.type_count(),
            hints_used: if a.hinted {
                vec!["vmcoreinfo".into()]
            } else {
                Vec::new()
            },
            timings,
        };
        log::debug!(
            "arm64: _text {text:#x} at {:#x}, image {:#x} bytes, VA_BITS {}",
            a.text_pa,
            a.image_len,
            a.va_bits
        );
        let exported = a
            .init_task
            .map(|va| ("init_task".to_string(), Some(va)))
            .into_iter()
            .collect();
        Ok(Kernel {
            phys,
            kvm: a.kvm,
            syms,
            btf: a.btf,
            off,
            page_offset_base: a.linear_base,
            info,
            target,
            exported: std::sync::Mutex::new(exported),
            image: OnceLock::new(),
        })
    }

    /// Address of symbol `name`: kallsyms (or the System.map) first, then the exported
    /// symbols of `__ksymtab` in the image (for kernels whose kallsyms lacks data
    /// symbols). Misses are remembered.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        if let Some(a) = self.syms.get(name) {
            return Some(a);
        }
        let mut cache = self.exported.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = cache.get(name) {
            return *r;
        }
        let r = crate::ksymtab::lookup(self.image(), self.text_va(), name);
        if r.is_some() {
            log::info!("symbol {name} taken from __ksymtab");
        }
        cache.insert(name.to_string(), r);
        r
    }

    /// The image from [`Kernel::text_va`], [`LinuxInfo::image_size`] bytes but at most
    /// [`image::MAX_IMAGE`], copied on first use and kept (misses do not re-read it).
    pub(crate) fn image(&self) -> &[u8] {
        self.image.get_or_init(|| {
            let len = self.info.image_size.min(image::MAX_IMAGE) as usize;
            image::read(&*self.phys, self.info.text_phys.0, len)
        })
    }

    /// Virtual address of the image start (`_text`, or `_stext` where kallsyms lacks it).
    pub(crate) fn text_va(&self) -> u64 {
        self.info.text_phys.0.wrapping_add(self.info.image_delta)
    }

    /// Facts about the kernel.
    pub fn info(&self) -> &LinuxInfo {
        &self.info
    }

    /// The symbol table.
    pub fn symbols(&self) -> &SymbolTable {
        &self.syms
    }

    /// The parsed BTF.
    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    /// The kernel's address space.
    pub fn memory(&self) -> &KernelSpace {
        &self.kvm
    }

    /// The MMU description of user address spaces.
    pub(crate) fn user_mmu(&self) -> Result<memlens_arch::Mmu> {
        Ok(match self.info.arch {
            memlens_core::Arch::Aarch64 => crate::aarch64::mmu(self.kvm.va_bits())?,
            _ if self.info.levels == 5 => memlens_arch::Mmu::x86_64_la57(),
            _ => memlens_arch::Mmu::x86_64(),
        })
    }

    /// The page-table roots of a process whose top-level table is at `pgd` (x86: one
    /// root; aarch64: `pgd` as TTBR0, the kernel's `swapper_pg_dir` as TTBR1).
    pub(crate) fn user_roots(&self, pgd: PhysAddr) -> memlens_arch::Roots {
        match self.info.arch {
            memlens_core::Arch::Aarch64 => memlens_arch::Roots::split(pgd, self.kvm.root()),
            _ => memlens_arch::Roots::single(pgd),
        }
    }

    /// A simple (uncached) view of a process's address space for short reads.
    pub(crate) fn user_space(&self, pgd: PhysAddr) -> Result<KernelSpace> {
        Ok(match self.info.arch {
            memlens_core::Arch::Aarch64 => {
                KernelSpace::aarch64(self.phys.clone(), self.user_mmu()?, self.kvm.va_bits(), pgd)
            }
            _ => X86Space::new(self.phys.clone(), pgd, self.info.levels),
        })
    }

    /// Physical address of a direct-map virtual address.
    pub(crate) fn direct_pa(&self, va: u64) -> PhysAddr {
        PhysAddr(va.wrapping_sub(self.page_offset_base))
    }

    /// Reads a u64 of kernel memory.
    pub(crate) fn u64(&self, va: u64) -> Result<u64> {
        Ok(self.kvm.read_u64(VirtAddr(va))?)
    }

    /// Reads a u32 of kernel memory.
    pub(crate) fn u32(&self, va: u64) -> Result<u32> {
        Ok(self.kvm.read_u32(VirtAddr(va))?)
    }

    /// Reads a kernel pointer; `Ok(None)` for NULL, an error for a non-kernel value.
    pub(crate) fn ptr(&self, va: u64, what: &'static str) -> Result<Option<u64>> {
        let p = self.u64(va)?;
        if p == 0 {
            return Ok(None);
        }
        if !self.is_kptr(p) {
            return Err(LinuxError::BadObject {
                what,
                va,
                why: format!("pointer {p:#x} is not a kernel address"),
            });
        }
        Ok(Some(p))
    }

    /// Whether `p` is a canonical kernel-half address for the paging depth.
    pub(crate) fn is_kptr(&self, p: u64) -> bool {
        self.kvm.is_kernel_addr(p)
    }

    /// Reads a fixed-size, NUL-padded char array.
    pub(crate) fn chars(&self, va: u64, len: usize) -> Result<String> {
        let v = self.kvm.read_vec(VirtAddr(va), len)?;
        let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
        Ok(String::from_utf8_lossy(&v[..end]).into_owned())
    }
}

//! # memlens-os-linux
//!
//! Linux guests with zero configuration. **Key decision: everything the plugin needs is
//! found inside the kernel's own memory** — the kallsyms tables (symbol addresses) and the
//! BTF blob (every structure layout) — so no System.map, debug package or offset table is
//! needed. Dump hints (VMCOREINFO, CPU registers) fill gaps and are cross-checked, never
//! required.
//!
//! ```no_run
//! // no_run: it needs the memory of a real Linux kernel (kallsyms and BTF), which a doc
//! // test cannot make; `tests/lab.rs` runs these steps on the lab's dumps.
//! use memlens_core::{Os, PhysicalTarget, TargetInfo};
//! use memlens_os_linux::{LinuxOs, LinuxOptions};
//! let mem = memlens_connector_file::RawFile::open("guest.raw")?;
//! let target = PhysicalTarget::from_memory(std::sync::Arc::new(mem), TargetInfo::default());
//! let os = LinuxOs::open(target, LinuxOptions::default())?;
//! for p in os.processes()? {
//!     println!("{} {} {}", p.pid, p.ppid, p.name);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What runs without a kernel: `-o auto`'s cheap [`detect`] (a tiny ELF core with a
//! VMCOREINFO note, written in hidden lines, names its release; zeros are not Linux),
//! and a `System.map` given as `symbols=PATH`, moved by the KASLR offset:
//!
//! ```
//! use memlens_connector_file::{open_dump, DumpOptions};
//! use memlens_os_linux::{detect, sysmap};
//! # use memlens_connector_file::write::{CoreNote, CoreSegment, CoreWriter, EM_X86_64, PF_R};
//! # let path = std::env::temp_dir().join(format!("memlens-doc-{}-linux.elf", std::process::id()));
//! # let core = CoreWriter::new(
//! #     EM_X86_64,
//! #     vec![CoreNote::vmcoreinfo([("OSRELEASE", "6.1.0-doc-amd64")])],
//! #     vec![CoreSegment { paddr: 0, vaddr: 0, len: 0x4000, flags: PF_R }],
//! # );
//! # let mut bytes = Vec::new();
//! # core.write_head(&mut bytes)?;
//! # bytes.resize(core.file_len() as usize, 0);
//! # std::fs::write(&path, &bytes)?;
//! let dump = open_dump(&path, &DumpOptions::default())?;
//! let found = detect(&dump.target()).expect("VMCOREINFO names a Linux release");
//! assert_eq!(found.release.as_deref(), Some("6.1.0-doc-amd64"));
//! # std::fs::remove_file(&path)?;
//! # std::fs::write(&path, vec![0u8; 0x4000])?; // a raw image of zeros
//! # let dump = open_dump(&path, &DumpOptions::default())?;
//! assert!(detect(&dump.target()).is_none()); // no VMCOREINFO, no kallsyms: not Linux
//! # drop(dump);
//! # std::fs::remove_file(&path)?;
//!
//! let map = "ffffffff81000000 T _stext\n\
//!            ffffffff82a00000 D init_task\n\
//!            0000000000000000 A fixed_percpu_data\n";
//! let symbols = sysmap::parse(map, "System.map")?;
//! let kaslr = sysmap::shifted(&symbols, 0x1c00_0000); // link-time → run-time
//! assert_eq!(kaslr.get("init_task"), Some(0xffff_ffff_9ea0_0000));
//! assert_eq!(kaslr.get("fixed_percpu_data"), Some(0)); // absolute: not moved
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Stages: [`scan`] finds kallsyms in physical memory ([`kallsyms`]), [`kernel`] derives
//! the image offset, page-table root, paging depth and direct map from it and loads
//! [`btf`] into [`layout::Offsets`]; [`tasks`], [`mm`], [`paths`] and [`modules`] walk
//! the kernel's lists and trees through [`vm::KernelSpace`].
//!
//! Architectures: x86-64 (4- and 5-level paging) and arm64 (4 KiB granule; see
//! [`aarch64`] for how a kernel whose kallsyms has no data symbols is placed, and why
//! `__ksymtab` supplies the image offset).
//!
//! Process memory: a process's view uses `mm->pgd` (via the direct map). With page-table
//! isolation (KPTI) `mm->pgd` is the kernel copy of the PGD, which on x86 also maps the
//! whole user half (the kernel reads user memory through it), so it serves both halves.
//! On arm64 `mm->pgd` is TTBR0 (user half) and the kernel's `swapper_pg_dir` TTBR1.

pub mod aarch64;
pub mod btf;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod kallsyms;
pub mod kernel;
pub mod ksymtab;
pub mod layout;
pub mod mm;
pub mod modules;
pub mod paths;
#[cfg(feature = "plugin")]
pub mod plugin;
pub mod scan;
pub mod sysmap;
pub mod tasks;
pub mod vm;

use std::sync::Arc;

use memlens_core::{
    os::ModuleDetails, MapInfo, ModuleInfo, Os, OsInfo, PhysicalTarget, Process, ProcessInfo,
    VirtAddr, VirtualMemory,
};

pub use error::{LinuxError, Result};
pub use kernel::{Kernel, LinuxInfo, LinuxOptions, SymbolSource};

/// A Linux kernel found in a physical target.
#[derive(Debug, Clone)]
pub struct LinuxOs {
    k: Arc<Kernel>,
}

/// What [`detect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// Kernel release, when known.
    pub release: Option<String>,
    /// Physical address of the kallsyms token table, when found by scan.
    pub kallsyms_at: Option<u64>,
}

/// Cheap check for `-o auto`: VMCOREINFO naming a release, or a kallsyms token table in
/// physical memory (found, not decoded).
pub fn detect(target: &PhysicalTarget) -> Option<Detected> {
    if let Some(rel) = target
        .info
        .vmcoreinfo
        .as_ref()
        .and_then(|v| v.get("OSRELEASE").cloned())
    {
        return Some(Detected {
            release: Some(rel),
            kallsyms_at: None,
        });
    }
    // The anchor of the lowest valid table (chunks with data first, as the open does),
    // then its start from a page-aligned window around it.
    let mem = &*target.memory;
    let hit = scan::find_token_table_dense(mem, 0, u64::MAX)
        .or_else(|| scan::find_token_table_parallel(mem, 0, u64::MAX))?;
    let base = hit.saturating_sub(8192) & !0xfff;
    let w = scan::read_lossy(mem, base, (hit - base + 8192) as usize);
    let (tt, _) = kallsyms::token_table_at(&w, usize::try_from(hit - base).ok()?)?;
    Some(Detected {
        release: None,
        kallsyms_at: Some(base + tt as u64),
    })
}

impl LinuxOs {
    /// Finds the kernel in `target` and prepares symbols and layouts.
    pub fn open(target: PhysicalTarget, opts: LinuxOptions) -> Result<LinuxOs> {
        Ok(LinuxOs {
            k: Arc::new(Kernel::open(target, &opts)?),
        })
    }

    /// The opened kernel (symbols, BTF, kernel memory).
    pub fn kernel(&self) -> &Kernel {
        &self.k
    }

    /// Facts about the kernel, with per-stage timings.
    pub fn linux_info(&self) -> &LinuxInfo {
        self.k.info()
    }

    /// Opens process `pid` as a concrete type (see [`Os::process`]).
    pub fn open_process(&self, pid: u32) -> Result<LinuxProcess> {
        for t in tasks::task_addrs(&self.k)? {
            let Ok(tgid) = self.k.u32(t.wrapping_add(self.k.off.task_tgid)) else {
                continue;
            };
            if tgid == pid {
                let info = tasks::process_info(&self.k, t)?;
                let mm = tasks::task_mm(&self.k, t)?.filter(|_| !info.kernel_thread);
                // User processes read through memlens-arch's batched walker with a TLB;
                // kernel threads see the kernel's address space.
                let space: Arc<dyn VirtualMemory> = match mm {
                    Some(mm) => {
                        let root = tasks::mm_space(&self.k, mm)?.root();
                        Arc::new(
                            memlens_arch::VirtualView::new(
                                self.k.phys.clone(),
                                self.k.user_mmu()?,
                                self.k.user_roots(root),
                            )
                            .with_tlb(memlens_arch::TlbConfig::default()),
                        )
                    }
                    None => Arc::new(self.k.kvm.clone()),
                };
                return Ok(LinuxProcess {
                    k: self.k.clone(),
                    info,
                    mm,
                    space,
                });
            }
        }
        Err(LinuxError::NoSuchProcess { pid })
    }
}

impl Os for LinuxOs {
    fn info(&self) -> OsInfo {
        let i = self.k.info();
        let mut details = vec![
            ("paging".to_string(), format!("{}-level", i.levels)),
            ("root".to_string(), i.root.to_string()),
            (
                "kaslr_virtual".to_string(),
                format!("{:#x}", i.kaslr_virtual),
            ),
            ("text_phys".to_string(), i.text_phys.to_string()),
            (
                "page_offset_base".to_string(),
                format!("{:#x}", i.page_offset_base),
            ),
            (
                "symbols".to_string(),
                format!("{:?} ({} symbols)", i.symbol_source, i.symbol_count),
            ),
            ("btf_types".to_string(), i.btf_types.to_string()),
            (
                "hints".to_string(),
                if i.hints_used.is_empty() {
                    "none".into()
                } else {
                    i.hints_used.join(",")
                },
            ),
        ];
        for (stage, d) in &i.timings {
            details.push((
                format!("time_{stage}"),
                format!("{:.3} ms", d.as_secs_f64() * 1e3),
            ));
        }
        OsInfo {
            plugin: "linux".into(),
            release: i.release.clone(),
            arch: Some(i.arch),
            details,
        }
    }

    fn processes(&self) -> memlens_core::Result<Vec<ProcessInfo>> {
        Ok(tasks::processes(&self.k)?)
    }

    fn process(&self, pid: u32) -> memlens_core::Result<Arc<dyn Process>> {
        Ok(Arc::new(self.open_process(pid)?))
    }

    fn kernel_modules(&self) -> memlens_core::Result<Vec<ModuleInfo>> {
        Ok(modules::kernel_modules(&self.k)?)
    }

    fn kernel_memory(&self) -> Option<Arc<dyn VirtualMemory>> {
        Some(Arc::new(self.k.kvm.clone()))
    }

    fn physical(&self) -> Option<PhysicalTarget> {
        Some(self.k.target.clone())
    }
}

/// An opened Linux process.
#[derive(Clone)]
pub struct LinuxProcess {
    k: Arc<Kernel>,
    info: ProcessInfo,
    mm: Option<u64>,
    space: Arc<dyn VirtualMemory>,
}

impl std::fmt::Debug for LinuxProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxProcess")
            .field("info", &self.info)
            .field("mm", &self.mm)
            .finish()
    }
}

impl LinuxProcess {
    /// The process's environment (`NAME=value`), read from its stack.
    pub fn environment(&self) -> Option<Vec<String>> {
        tasks::environment(&self.k, self.mm?, &*self.space)
    }
}

impl Process for LinuxProcess {
    fn info(&self) -> &ProcessInfo {
        &self.info
    }

    fn memory(&self) -> Arc<dyn VirtualMemory> {
        self.space.clone()
    }

    fn maps(&self) -> memlens_core::Result<Vec<MapInfo>> {
        match self.mm {
            Some(mm) => Ok(mm::maps(&self.k, mm)?),
            None => Ok(Vec::new()),
        }
    }

    fn modules(&self) -> memlens_core::Result<Vec<ModuleInfo>> {
        Ok(mm::modules_of(&self.maps()?))
    }

    /// Exports and imports from the dynamic section in the process's memory
    /// ([`memlens_core::elf`]). Sections: the guest's file is not on the host and section
    /// headers are not loaded, so the loadable segments stand in for them, named
    /// `LOAD[i] rwx` (their runtime addresses and sizes in memory).
    fn module_details(&self, module: &ModuleInfo) -> memlens_core::Result<ModuleDetails> {
        use memlens_core::elf;
        let bad = |why: String| LinuxError::Elf {
            pid: self.info.pid,
            module: module.path.clone().unwrap_or_else(|| module.name.clone()),
            base: module.base.0,
            why,
        };
        let mem = &*self.space;
        let img = elf::read_image(mem, module.base).map_err(bad)?;
        let (exports, imports) = elf::dynamic_symbols(mem, &img).map_err(bad)?;
        let sections = img
            .segments
            .iter()
            .filter(|s| s.p_type == elf::PT_LOAD)
            .enumerate()
            .map(|(i, s)| memlens_core::os::SectionInfo {
                name: format!(
                    "LOAD[{i}] {}{}{}",
                    if s.flags & 4 != 0 { 'r' } else { '-' },
                    if s.flags & 2 != 0 { 'w' } else { '-' },
                    if s.flags & 1 != 0 { 'x' } else { '-' },
                ),
                addr: VirtAddr(img.bias.wrapping_add(s.vaddr)),
                size: s.memsz,
            })
            .collect();
        Ok(ModuleDetails {
            exports,
            imports,
            sections,
        })
    }
}

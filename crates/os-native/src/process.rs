//! [`NativeOs`] and [`NativeProcess`]: the host's processes as core [`Os`]/[`Process`]
//! objects. Listings come from `/proc`; each process's memory is a [`ProcessMemory`].

use std::path::PathBuf;
use std::sync::Arc;

use memlens_core::os::ModuleDetails;
use memlens_core::{
    Arch, MapInfo, MemoryView, ModuleInfo, Os, OsInfo, Process, ProcessInfo, ReadOp, VirtAddr,
    VirtualMemory, VirtualWrite,
};

use crate::error::NativeError;
use crate::procfs::{self, MapLine};
use crate::vm::ProcessMemory;

/// How to open the host OS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NativeOptions {
    /// Allow writing into processes ([`Process::writer`] returns `Some`). Off by default:
    /// writing into live processes is only done when the user asks for it.
    pub allow_write: bool,
}

/// The host operating system (Linux). See the crate documentation.
#[derive(Debug, Clone)]
pub struct NativeOs {
    opts: NativeOptions,
    clk_tck: u64,
}

fn read_proc(pid: u32, file: &str) -> Result<String, NativeError> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    std::fs::read_to_string(&path).map_err(|e| NativeError::proc_io(pid, path, e))
}

/// The first [`procfs::MAX_ARG_BYTES`] + 1 bytes of `/proc/PID/cmdline` (one more than
/// is kept, so the parser knows it was cut).
fn read_cmdline(pid: u32) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(format!("/proc/{pid}/cmdline")).ok()?;
    let mut b = Vec::new();
    f.take(procfs::MAX_ARG_BYTES as u64 + 1)
        .read_to_end(&mut b)
        .ok()?;
    Some(b)
}

/// Reads and parses `/proc/PID/maps`.
pub fn read_maps(pid: u32) -> Result<Vec<MapLine>, NativeError> {
    Ok(procfs::parse_maps(&read_proc(pid, "maps")?))
}

impl NativeOs {
    /// Opens the host OS. Fails only when `/proc` is not mounted.
    pub fn open(opts: NativeOptions) -> Result<Self, NativeError> {
        let path = PathBuf::from("/proc/self/stat");
        std::fs::metadata(&path).map_err(|source| NativeError::Proc { path, source })?;
        // SAFETY: sysconf has no memory effects.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Ok(Self {
            opts,
            clk_tck: u64::try_from(tck).unwrap_or(100),
        })
    }

    /// The options in force.
    pub fn options(&self) -> NativeOptions {
        self.opts
    }

    /// Lists one process (the same record as in [`Os::processes`]).
    pub fn process_info(&self, pid: u32) -> Result<ProcessInfo, NativeError> {
        let mut unlimited = usize::MAX;
        self.process_info_with(pid, &mut unlimited)
    }

    /// [`NativeOs::process_info`] keeping at most `budget` bytes of command line (see
    /// [`procfs::cmdline_cost`]); the command line is `None` once the budget is spent.
    fn process_info_with(&self, pid: u32, budget: &mut usize) -> Result<ProcessInfo, NativeError> {
        let stat_path = PathBuf::from(format!("/proc/{pid}/stat"));
        let stat_text = read_proc(pid, "stat")?;
        let stat = procfs::parse_stat(&stat_text).ok_or_else(|| NativeError::Parse {
            path: stat_path,
            why: format!("unexpected content {:?}", stat_text.trim_end()),
        })?;
        let ids = read_proc(pid, "status")
            .map(|t| procfs::parse_status_ids(&t))
            .unwrap_or((None, None));
        let mut cmdline = (*budget > 0)
            .then(|| read_cmdline(pid))
            .flatten()
            .and_then(|b| procfs::parse_cmdline(&b));
        let cost = cmdline.as_deref().map_or(0, procfs::cmdline_cost);
        if cost > *budget {
            log::warn!(
                "command lines of this listing past {} bytes: left out from pid {pid} on",
                procfs::MAX_LISTING_ARG_BYTES
            );
            cmdline = None;
            *budget = 0;
        } else {
            *budget -= cost;
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        Ok(procfs::process_info(&stat, ids, cmdline, exe, self.clk_tck))
    }

    /// Opens process `pid` as a [`NativeProcess`].
    pub fn open_process(&self, pid: u32) -> Result<NativeProcess, NativeError> {
        let info = self.process_info(pid)?;
        Ok(NativeProcess {
            mem: Arc::new(ProcessMemory::new(pid, self.opts.allow_write)),
            info,
        })
    }
}

impl Os for NativeOs {
    fn info(&self) -> OsInfo {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string());
        let arch = if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else {
            None
        };
        let mut details = vec![(
            "memory access".to_string(),
            "process_vm_readv/process_vm_writev".to_string(),
        )];
        details.push((
            "writes".into(),
            if self.opts.allow_write {
                "allowed".into()
            } else {
                "off (open with allow_write)".into()
            },
        ));
        if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/version") {
            details.push(("version".into(), v.trim().to_string()));
        }
        OsInfo {
            plugin: "native".into(),
            release,
            arch,
            details,
        }
    }

    fn processes(&self) -> memlens_core::Result<Vec<ProcessInfo>> {
        let dir = std::fs::read_dir("/proc").map_err(|e| memlens_core::Error::io("/proc", 0, e))?;
        let mut pids: Vec<u32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        let mut out = Vec::with_capacity(pids.len());
        let mut budget = procfs::MAX_LISTING_ARG_BYTES;
        for pid in pids {
            match self.process_info_with(pid, &mut budget) {
                Ok(p) => out.push(p),
                // Exited between the directory listing and the read: not an error.
                Err(NativeError::NoSuchProcess { .. }) => {}
                Err(e) => log::warn!("skipping process {pid}: {e}"),
            }
        }
        Ok(out)
    }

    fn process(&self, pid: u32) -> memlens_core::Result<Arc<dyn Process>> {
        Ok(Arc::new(self.open_process(pid)?))
    }

    /// `/proc/modules` (addresses are 0 unless `kptr_restrict` allows them); empty when
    /// the kernel has no module support (no `/proc/modules`).
    fn kernel_modules(&self) -> memlens_core::Result<Vec<ModuleInfo>> {
        let text = match std::fs::read_to_string("/proc/modules") {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(memlens_core::Error::io("/proc/modules", 0, e)),
        };
        let mut mods: Vec<ModuleInfo> = text
            .lines()
            .filter_map(procfs::parse_module_line)
            .map(|(name, size, addr)| ModuleInfo {
                name,
                base: VirtAddr(addr),
                size,
                path: None,
            })
            .collect();
        mods.sort_by(|a, b| a.base.cmp(&b.base).then_with(|| a.name.cmp(&b.name)));
        Ok(mods)
    }
}

/// A process of the host. Its memory view reads and writes through the kernel's
/// cross-process calls; listings re-read `/proc` on every call (they are live).
#[derive(Debug, Clone)]
pub struct NativeProcess {
    info: ProcessInfo,
    mem: Arc<ProcessMemory>,
}

impl NativeProcess {
    /// The memory view, as its concrete type (for benches and direct use).
    pub fn process_memory(&self) -> &Arc<ProcessMemory> {
        &self.mem
    }

    /// Where the mapped file `path` can be opened from: through `/proc/PID/root` (the
    /// process's own mount namespace) when that exists, else as is.
    fn file_path(&self, path: &str) -> Option<PathBuf> {
        if !path.starts_with('/') || path.ends_with(" (deleted)") {
            return None;
        }
        let via_root = PathBuf::from(format!("/proc/{}/root{path}", self.info.pid));
        if via_root.is_file() {
            return Some(via_root);
        }
        let p = PathBuf::from(path);
        p.is_file().then_some(p)
    }
}

/// Groups mappings into modules: a run of mappings of the same file that starts at file
/// offset 0 is one module candidate (base = start of that mapping, end = end of the last
/// mapping of the same file before another file's offset-0 mapping).
pub fn module_candidates(maps: &[MapLine]) -> Vec<ModuleInfo> {
    let mut out: Vec<(ModuleInfo, u64, String)> = Vec::new();
    for m in maps {
        let Some(path) = m.map.path.as_deref() else {
            continue;
        };
        if !path.starts_with('/') || m.inode == 0 {
            continue;
        }
        let key = format!("{}:{}", m.dev, m.inode);
        if m.map.offset == 0 {
            let name = path
                .trim_end_matches(" (deleted)")
                .rsplit('/')
                .next()
                .unwrap_or(path)
                .to_string();
            out.push((
                ModuleInfo {
                    name,
                    base: m.map.start,
                    size: m.map.end.0 - m.map.start.0,
                    path: Some(path.to_string()),
                },
                m.map.end.0,
                key,
            ));
        } else if let Some((module, end, k)) = out.last_mut() {
            if *k == key && m.map.start.0 >= *end {
                *end = m.map.end.0;
                module.size = m.map.end.0 - module.base.0;
            }
        }
    }
    out.into_iter().map(|(m, _, _)| m).collect()
}

impl Process for NativeProcess {
    fn info(&self) -> &ProcessInfo {
        &self.info
    }

    fn memory(&self) -> Arc<dyn VirtualMemory> {
        self.mem.clone()
    }

    fn writer(&self) -> Option<Arc<dyn VirtualWrite>> {
        if self.mem.is_writable() {
            Some(self.mem.clone())
        } else {
            None
        }
    }

    fn maps(&self) -> memlens_core::Result<Vec<MapInfo>> {
        Ok(read_maps(self.info.pid)?
            .into_iter()
            .map(|l| l.map)
            .collect())
    }

    /// Mapped files that start with an ELF header in memory.
    fn modules(&self) -> memlens_core::Result<Vec<ModuleInfo>> {
        let maps = read_maps(self.info.pid)?;
        let cands = module_candidates(&maps);
        let mut magic = vec![[0u8; 4]; cands.len()];
        let mut ops: Vec<ReadOp<'_, VirtAddr>> = cands
            .iter()
            .zip(magic.iter_mut())
            .map(|(c, m)| ReadOp::new(c.base, m.as_mut_slice()))
            .collect();
        self.mem.read_batch(&mut ops);
        let ok: Vec<bool> = ops
            .iter()
            .map(|o| o.result.is_ok() && &o.buf[..] == b"\x7fELF")
            .collect();
        Ok(cands
            .into_iter()
            .zip(ok)
            .filter_map(|(c, ok)| ok.then_some(c))
            .collect())
    }

    fn module_details(&self, module: &ModuleInfo) -> memlens_core::Result<ModuleDetails> {
        let file = module.path.as_deref().and_then(|p| self.file_path(p));
        Ok(crate::elf::module_details(
            self.mem.as_ref(),
            self.info.pid,
            module.path.as_deref().unwrap_or(&module.name),
            module.base,
            file.as_deref(),
        )?)
    }
}

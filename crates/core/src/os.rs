//! OS-level traits: what an OS plugin (Linux in a dump, the host itself) presents.
//! **Key decision: listings return plain data ([`ProcessInfo`], [`MapInfo`],
//! [`ModuleInfo`]) and a process is opened separately** ([`Os::process`]) into an object
//! that is a virtual memory view, so it can feed another connector (chains) while the
//! listings stay cheap, serialisable and easy to test.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::Result;
use crate::mem::{VirtualMemory, VirtualWrite};
use crate::target::PhysicalTarget;

/// A process (or kernel thread) as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process id (the thread-group id on Linux).
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Short name (Linux `comm`).
    pub name: String,
    /// Command line, when readable.
    pub cmdline: Option<Vec<String>>,
    /// Executable path, when known.
    pub exe: Option<String>,
    /// Real user id.
    pub uid: Option<u32>,
    /// Real group id.
    pub gid: Option<u32>,
    /// State letter or word (`R`, `S`, `running`, …).
    pub state: Option<String>,
    /// Number of threads.
    pub threads: Option<u32>,
    /// Start time in nanoseconds since boot, when known.
    pub start_time_ns: Option<u64>,
    /// Whether this is a kernel thread (no user address space).
    pub kernel_thread: bool,
    /// Page-table root of the process, when known.
    pub root: Option<PhysAddr>,
    /// Address of the kernel's descriptor of the process (Linux `task_struct`), if any.
    pub kernel_object: Option<VirtAddr>,
}

/// Permissions of a mapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Shared (vs private copy-on-write).
    pub shared: bool,
}

impl std::fmt::Display for Perms {
    /// `rwxp` form as in `/proc/PID/maps`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = |b, ch| if b { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.exec, 'x'),
            if self.shared { 's' } else { 'p' }
        )
    }
}

impl std::str::FromStr for Perms {
    type Err = crate::error::ParseError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 4 {
            return Err(crate::error::ParseError::Syntax {
                what: "permissions".into(),
                message: format!("'{s}' is not of the form rwxp"),
            });
        }
        Ok(Perms {
            read: b[0] == b'r',
            write: b[1] == b'w',
            exec: b[2] == b'x',
            shared: b[3] == b's',
        })
    }
}

/// One mapping of a process's address space.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapInfo {
    /// First address.
    pub start: VirtAddr,
    /// One past the last address.
    pub end: VirtAddr,
    /// Permissions.
    pub perms: Perms,
    /// Offset in the mapped file.
    pub offset: u64,
    /// Path of the mapped file, or a pseudo name (`[heap]`, `[stack]`), if any.
    pub path: Option<String>,
}

/// A loaded module: a kernel module, or an ELF file mapped into a process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// Name.
    pub name: String,
    /// First address.
    pub base: VirtAddr,
    /// Size in bytes.
    pub size: u64,
    /// Path, when known.
    pub path: Option<String>,
}

/// A symbol of a module (export or import).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolInfo {
    /// Name.
    pub name: String,
    /// Address (for imports: 0 when unresolved).
    pub addr: VirtAddr,
}

/// A section of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInfo {
    /// Name.
    pub name: String,
    /// Address in memory.
    pub addr: VirtAddr,
    /// Size in bytes.
    pub size: u64,
}

/// Exports, imports and sections of a module, parsed from memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDetails {
    /// Exported symbols.
    pub exports: Vec<SymbolInfo>,
    /// Imported symbols.
    pub imports: Vec<SymbolInfo>,
    /// Sections.
    pub sections: Vec<SectionInfo>,
}

/// Facts about the OS (shown by `memlens info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// Plugin name (`linux`, `native`).
    pub plugin: String,
    /// Kernel release or OS version.
    pub release: Option<String>,
    /// Architecture.
    pub arch: Option<crate::cpu::Arch>,
    /// Further facts as ordered (key, value) pairs (paging mode, KASLR offsets, sources).
    pub details: Vec<(String, String)>,
}

/// An opened process: its listing, its memory and its maps.
pub trait Process: Send + Sync {
    /// The process as listed.
    fn info(&self) -> &ProcessInfo;
    /// The process's virtual memory (the user half, plus the kernel half where the OS maps it).
    fn memory(&self) -> Arc<dyn VirtualMemory>;
    /// Writing into the process, present only when the OS was opened writable on request.
    fn writer(&self) -> Option<Arc<dyn VirtualWrite>> {
        None
    }
    /// Memory mappings, in ascending address order.
    fn maps(&self) -> Result<Vec<MapInfo>>;
    /// Mapped modules (ELF/PE files), in ascending address order.
    fn modules(&self) -> Result<Vec<ModuleInfo>>;
    /// Exports, imports and sections of one of [`Process::modules`], read from memory.
    fn module_details(&self, module: &ModuleInfo) -> Result<ModuleDetails>;
}

/// An operating system found in a target (or the host itself).
pub trait Os: Send + Sync {
    /// Facts about the OS.
    fn info(&self) -> OsInfo;
    /// All processes, in pid order. Damaged entries are skipped with a logged warning.
    fn processes(&self) -> Result<Vec<ProcessInfo>>;
    /// Opens process `pid`.
    fn process(&self, pid: u32) -> Result<Arc<dyn Process>>;
    /// Loaded kernel modules (the kernel itself first, where the OS has one).
    fn kernel_modules(&self) -> Result<Vec<ModuleInfo>>;
    /// The kernel's virtual memory, where the OS has one.
    fn kernel_memory(&self) -> Option<Arc<dyn VirtualMemory>> {
        None
    }
    /// The physical target under this OS, where there is one.
    fn physical(&self) -> Option<PhysicalTarget> {
        None
    }
}

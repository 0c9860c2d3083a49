//! The crate's error type. Every variant says what was looked for, where, and — for the
//! "kernel not usable" cases — what was found instead and which user input would help.

/// Result alias for this crate.
pub type Result<T, E = LinuxError> = std::result::Result<T, E>;

/// Errors of the Linux OS plugin.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinuxError {
    /// No Linux kernel could be located in physical memory.
    #[error("no Linux kernel found: {found}; missing: {missing}")]
    KernelNotFound {
        /// What the scan did find (banners, tables, …), for the user.
        found: String,
        /// What was missing.
        missing: String,
    },
    /// The kernel was found but is of a kind this plugin does not handle.
    #[error("unsupported kernel ({what}): {detail}")]
    Unsupported {
        /// Which property (architecture, paging mode, …).
        what: &'static str,
        /// Details.
        detail: String,
    },
    /// The kallsyms tables are malformed.
    #[error("kallsyms at {location}: {what}")]
    Kallsyms {
        /// Where (physical address or file offset).
        location: String,
        /// What is wrong.
        what: String,
    },
    /// The BTF blob is malformed or missing.
    #[error("BTF: {what}")]
    Btf {
        /// What is wrong.
        what: String,
    },
    /// The kernel has no BTF; structure layouts are unknown.
    #[error("the kernel {release} has no BTF in memory (CONFIG_DEBUG_INFO_BTF off?); structure layouts are unknown — this plugin needs BTF (a `symbols=` System.map alone gives addresses, not layouts)")]
    NoBtf {
        /// Kernel release, if the banner was found.
        release: String,
    },
    /// A symbol the plugin needs is not known from any source.
    #[error(
        "symbol `{name}` not found (source: {source_name}); give a System.map, vmlinux or ISF JSON with `symbols=PATH`"
    )]
    MissingSymbol {
        /// Symbol name.
        name: String,
        /// The symbol source that was searched.
        source_name: String,
    },
    /// A structure or member the plugin needs is not described by BTF.
    #[error("BTF has no `{path}`")]
    MissingField {
        /// `struct.member` path.
        path: String,
    },
    /// A user-supplied symbol file could not be read or parsed.
    #[error("symbol file {path}: {what}")]
    SymbolFile {
        /// File path.
        path: String,
        /// What went wrong.
        what: String,
    },
    /// No process with that pid.
    #[error("no process with pid {pid}")]
    NoSuchProcess {
        /// The pid asked for.
        pid: u32,
    },
    /// A kernel object could not be read or made no sense.
    #[error("{what} at {va:#x}: {why}")]
    BadObject {
        /// What object (task_struct, vm_area_struct, …).
        what: &'static str,
        /// Its virtual address.
        va: u64,
        /// Why.
        why: String,
    },
    /// An ELF module in a process's memory could not be parsed.
    #[error("ELF module {module} at {base:#x} of pid {pid}: {why}")]
    Elf {
        /// The process.
        pid: u32,
        /// Module name or path.
        module: String,
        /// Its base address.
        base: u64,
        /// What went wrong.
        why: String,
    },
    /// A memory access failed.
    #[error(transparent)]
    Memory(#[from] memlens_core::Error),
}

/// Memory errors stay core errors; every other error becomes
/// [`memlens_core::Error::Os`] holding the `LinuxError` itself, so a caller with only an
/// `Arc<dyn Os>` gets it back with
/// [`downcast_ref::<LinuxError>()`](memlens_core::Error::downcast_ref).
impl From<LinuxError> for memlens_core::Error {
    fn from(e: LinuxError) -> Self {
        match e {
            LinuxError::Memory(m) => m,
            other => memlens_core::Error::os("linux", other),
        }
    }
}

//! Errors of the native OS plugin. Every variant names the process or file it is about;
//! permission errors say which capability or user would be allowed.

use std::path::PathBuf;

/// Errors of the native OS plugin.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The process does not exist (or exited).
    #[error("process {pid} does not exist (or has exited)")]
    NoSuchProcess {
        /// The pid.
        pid: u32,
    },
    /// Access to a process's files or memory was refused.
    #[error("access to {what} of process {pid} was denied: {hint}")]
    PermissionDenied {
        /// The pid.
        pid: u32,
        /// What was being accessed (`maps`, `memory`, …).
        what: String,
        /// Who would be allowed.
        hint: String,
    },
    /// A `/proc` file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Proc {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A `/proc` file had unexpected content.
    #[error("cannot parse {}: {why}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An ELF image in memory or on disk is malformed.
    #[error("module {module} at {base:#x} of process {pid}: {why}")]
    Elf {
        /// The pid.
        pid: u32,
        /// Module path or name.
        module: String,
        /// Module base address.
        base: u64,
        /// What is wrong.
        why: String,
    },
    /// A core error (memory access).
    #[error(transparent)]
    Core(#[from] memlens_core::Error),
}

impl NativeError {
    /// Converts into a core error for the `Os`/`Process` traits: core errors stay as they
    /// are, every other error becomes [`memlens_core::Error::Os`] holding the
    /// `NativeError` itself (get it back with
    /// [`downcast_ref::<NativeError>()`](memlens_core::Error::downcast_ref)).
    pub fn into_core(self) -> memlens_core::Error {
        match self {
            NativeError::Core(e) => e,
            e => memlens_core::Error::os("native", e),
        }
    }

    /// Maps an I/O error on a `/proc/PID/...` file to the right variant.
    pub(crate) fn proc_io(pid: u32, path: PathBuf, source: std::io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => NativeError::NoSuchProcess { pid },
            Some(libc::EPERM) | Some(libc::EACCES) => NativeError::PermissionDenied {
                pid,
                what: path.display().to_string(),
                hint: access_hint(pid),
            },
            _ => NativeError::Proc { path, source },
        }
    }
}

impl From<NativeError> for memlens_core::Error {
    fn from(e: NativeError) -> Self {
        e.into_core()
    }
}

/// Explains who may access process `pid`'s memory: root / `CAP_SYS_PTRACE`, or the same
/// uid (subject to Yama's `ptrace_scope`).
pub fn access_hint(pid: u32) -> String {
    // SAFETY: getuid/geteuid cannot fail and touch no memory.
    let me = unsafe { libc::geteuid() };
    let owner = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| crate::procfs::parse_status_ids(&t).0);
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let owner_s = owner.map_or("unknown uid".to_string(), |u| format!("uid {u}"));
    let mut s = format!(
        "reading or writing another process's memory needs CAP_SYS_PTRACE (run as root) or the \
         same user as the process ({owner_s}); memlens runs as uid {me}"
    );
    match yama {
        Some(1) => s.push_str(
            "; Yama ptrace_scope=1 also requires the target to be a descendant (or CAP_SYS_PTRACE)",
        ),
        Some(2) => s.push_str("; Yama ptrace_scope=2 allows this to CAP_SYS_PTRACE only"),
        Some(3) => s.push_str("; Yama ptrace_scope=3 forbids it to everyone"),
        _ => {}
    }
    s
}

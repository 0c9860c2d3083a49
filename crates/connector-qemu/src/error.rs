//! Errors of the QEMU connector: each names the QEMU process, socket or mapping it is about
//! and what was looked for.

use std::path::PathBuf;

/// Errors of the QEMU connector.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// No QEMU process was found.
    #[error("no running QEMU process found (looked for processes named qemu-system-*)")]
    NoQemu,
    /// Several QEMU processes match and none was chosen.
    #[error("{matches} QEMU guests match{}; choose one by name or pid:\n{list}", .selector.as_ref().map(|s| format!(" '{s}'")).unwrap_or_default())]
    Ambiguous {
        /// The name asked for, if any.
        selector: Option<String>,
        /// How many match.
        matches: usize,
        /// One line per match (pid, name, RAM).
        list: String,
    },
    /// No QEMU process matches the selector.
    #[error("no QEMU guest matches '{selector}'; running guests:\n{list}")]
    NotFound {
        /// The name or pid asked for.
        selector: String,
        /// One line per running guest.
        list: String,
    },
    /// The command line lacks something the connector needs.
    #[error("QEMU process {pid}: {what}")]
    CommandLine {
        /// QEMU's pid.
        pid: u32,
        /// What is missing or wrong.
        what: String,
    },
    /// The guest RAM mapping was not found in the QEMU process.
    #[error("QEMU process {pid}: no mapping holds the guest RAM ({looked_for}); candidates seen: {seen}")]
    NoRamMapping {
        /// QEMU's pid.
        pid: u32,
        /// What was looked for.
        looked_for: String,
        /// Large writable mappings that were seen.
        seen: String,
    },
    /// The guest-physical layout could not be determined.
    #[error("QEMU process {pid}: cannot determine the guest-physical layout: {why}")]
    Layout {
        /// QEMU's pid.
        pid: u32,
        /// Why.
        why: String,
    },
    /// QMP failed.
    #[error("QMP socket {}: {what}", socket.display())]
    Qmp {
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// The guest has no QMP socket but the operation needs one.
    #[error("QEMU process {pid} has no QMP socket on its command line (-qmp unix:PATH or -chardev socket,path=PATH + -mon mode=control): {needed_for} needs one")]
    NoQmp {
        /// QEMU's pid.
        pid: u32,
        /// What needed it.
        needed_for: String,
    },
    /// A connector argument is invalid.
    #[error("invalid qemu connector argument '{arg}': {why}")]
    Arg {
        /// The argument.
        arg: String,
        /// Why.
        why: String,
    },
    /// A core error (memory access, the input OS).
    #[error(transparent)]
    Core(#[from] memlens_core::Error),
}

impl QemuError {
    /// Converts into a core error, keeping the message.
    pub fn into_core(self) -> memlens_core::Error {
        match self {
            QemuError::Core(e) => e,
            e => memlens_core::Error::Other(e.to_string()),
        }
    }
}

impl From<QemuError> for memlens_core::Error {
    fn from(e: QemuError) -> Self {
        e.into_core()
    }
}

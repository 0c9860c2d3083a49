//! The test lab's error type.
//!
//! Every variant carries the context a person needs to act on it: the package and the
//! command that installs it, the console tail of a guest that did not boot, the text that
//! did not parse and what was expected instead.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while provisioning, booting or recording a guest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No scenario with that name exists.
    #[error("unknown scenario `{name}` (known: {known})")]
    UnknownScenario {
        /// The name that was asked for.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// A host package is missing and could not be installed.
    #[error("missing host package `{package}` ({why}); install it with `{command}`")]
    MissingPackage {
        /// Debian package name.
        package: String,
        /// Why it could not be installed automatically.
        why: String,
        /// Command that installs it.
        command: String,
    },
    /// An external command could not be started or exited with failure.
    #[error("command `{command}` failed: {detail}")]
    Command {
        /// The command line (for people, not for a shell).
        command: String,
        /// Exit status and the tail of its stderr.
        detail: String,
    },
    /// A file operation failed.
    #[error("{action} `{}`: {source}", path.display())]
    Io {
        /// What was being done ("read", "create", ...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The guest did not reach the expected point in time.
    #[error("guest `{scenario}` {what} within {timeout_s} s (QEMU pid {qemu_pid} killed); console tail:\n{console_tail}")]
    BootTimeout {
        /// Scenario name.
        scenario: String,
        /// The QEMU process, killed and reaped before this error is returned.
        qemu_pid: u32,
        /// What did not happen (e.g. "did not print ===TESTLAB-READY===").
        what: String,
        /// The timeout that elapsed.
        timeout_s: u64,
        /// The last lines of the serial console.
        console_tail: String,
    },
    /// QEMU exited while it was expected to run.
    #[error("QEMU for `{scenario}` exited early ({status}); console tail:\n{console_tail}\nstderr:\n{stderr_tail}")]
    QemuExited {
        /// Scenario name.
        scenario: String,
        /// Exit status text.
        status: String,
        /// The last lines of the serial console.
        console_tail: String,
        /// The last lines of QEMU's stderr.
        stderr_tail: String,
    },
    /// A QMP exchange failed or QEMU answered with an error object.
    #[error("QMP `{command}`: {detail}")]
    Qmp {
        /// The command that was sent.
        command: String,
        /// The error class/description or transport problem.
        detail: String,
    },
    /// Text from the guest, QEMU or a tool did not have the expected shape.
    #[error("cannot parse {what}: expected {expected}, got `{got}`")]
    Parse {
        /// What was being parsed ("console section ps", "gva2gpa reply", ...).
        what: String,
        /// What was expected.
        expected: String,
        /// The offending text (shortened).
        got: String,
    },
    /// A binary file (ELF dump, bzImage) is malformed.
    #[error("malformed {what} `{}`: {detail}", path.display())]
    Format {
        /// Kind of file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The scenario cannot be built on this host (missing prerequisite).
    #[error("{detail}")]
    Unsupported {
        /// What is missing and how to get it.
        detail: String,
    },
    /// JSON (truth.json, QMP) failed to (de)serialize.
    #[error("JSON {what}: {source}")]
    Json {
        /// What was being (de)serialized.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn parse(what: impl Into<String>, expected: impl Into<String>, got: &str) -> Error {
        let mut got = got.to_string();
        if got.len() > 200 {
            let mut cut = 200;
            while !got.is_char_boundary(cut) {
                cut -= 1;
            }
            got.truncate(cut);
            got.push('…');
        }
        Error::Parse {
            what: what.into(),
            expected: expected.into(),
            got,
        }
    }
}

//! The plugin crate's error type. **Every rejection names the file (or the argument
//! string) and says why**, so `memlens plugins list` and a failed `-c …` explain
//! themselves without a debugger.

use std::path::PathBuf;

/// Result alias for plugin operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error type plugin implementations return from `create`: any error converts into it
/// with `?`, and it crosses the ABI as its message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of loading, analysing, configuring and chaining plugins.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file was rejected before it was loaded.
    #[error("{}: rejected: {reason}", path.display())]
    Rejected {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `dlopen` (or its equivalent) failed.
    #[error("{}: could not load library: {message}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// An argument string did not parse.
    #[error("invalid plugin arguments '{input}': {message}")]
    Syntax {
        /// The whole input string.
        input: String,
        /// What is wrong and where.
        message: String,
    },
    /// An argument was unknown, missing or failed its validator.
    #[error("plugin '{plugin}': {message}")]
    Args {
        /// The plugin.
        plugin: String,
        /// What is wrong (lists the valid keys).
        message: String,
    },
    /// No plugin of that name and kind exists.
    #[error("no {kind} plugin named '{name}'{suggestion}; available: {available}")]
    NotFound {
        /// `connector` or `os`.
        kind: &'static str,
        /// The requested name.
        name: String,
        /// ` (did you mean 'x'?)` or empty.
        suggestion: String,
        /// Comma-separated list of available names (or `none`).
        available: String,
    },
    /// The plugin's create function (or another call) reported an error.
    #[error("plugin '{plugin}': {message}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin panicked; the panic was caught at the ABI boundary.
    #[error("plugin '{plugin}' panicked in {during}: {message}")]
    Panic {
        /// The plugin.
        plugin: String,
        /// Which call.
        during: String,
        /// The panic message.
        message: String,
    },
    /// A chain of `-c`/`-o` steps is not valid.
    #[error("invalid plugin chain: {0}")]
    Chain(String),
    /// An I/O error on a plugin file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A core error (memory access, parsing).
    #[error(transparent)]
    Core(#[from] memlens_core::Error),
}

impl Error {
    /// A rejection of `path` for `reason`.
    pub fn rejected(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Rejected {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

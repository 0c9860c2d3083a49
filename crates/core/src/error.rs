//! The core error type. Every variant carries the context a user needs to act on it (the
//! address, the length, the file offset, the page-table level): a bare "read failed" is
//! never produced. Errors are `Clone` (I/O errors are shared behind an `Arc`) because batch
//! outcomes and caches hand the same error to several callers.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::addr::{PhysAddr, VirtAddr};

/// Result alias for core operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A span of a read or write buffer that failed, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedSpan {
    /// Offset of the span inside the operation's buffer.
    pub offset: usize,
    /// Length of the span in bytes.
    pub len: usize,
    /// Why these bytes could not be accessed.
    pub cause: Box<Error>,
}

/// Errors of memory access and of the core types.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The physical range lies (partly) past the end of the target's memory.
    #[error("physical range {addr}+{len:#x} is past the end of memory (highest address {max})")]
    OutOfRange {
        /// First address of the access.
        addr: PhysAddr,
        /// Length of the access.
        len: usize,
        /// Highest valid physical address.
        max: PhysAddr,
    },
    /// The physical address falls in a gap of the memory map (no backing).
    #[error("physical address {addr} is not backed by the target (gap in its memory map)")]
    Gap {
        /// First unbacked address.
        addr: PhysAddr,
    },
    /// A page-table walk met a non-present entry.
    #[error("virtual address {va} is not mapped (root {root}, level {level} entry not present)")]
    NotPresent {
        /// The address being translated.
        va: VirtAddr,
        /// Page-table root used.
        root: PhysAddr,
        /// Level (1 = last) at which the walk stopped.
        level: u8,
    },
    /// A page-table walk met an entry it could not follow.
    #[error("virtual address {va}: bad page-table entry {entry:#x} at level {level} (root {root}): {why}")]
    BadEntry {
        /// The address being translated.
        va: VirtAddr,
        /// Page-table root used.
        root: PhysAddr,
        /// Level (1 = last) of the entry.
        level: u8,
        /// The raw entry.
        entry: u64,
        /// What is wrong with it (usually a literal; owned when it crossed the plugin ABI).
        why: Cow<'static, str>,
    },
    /// The virtual address is not canonical for the architecture.
    #[error("virtual address {va} is not canonical for {arch}")]
    NonCanonical {
        /// The address.
        va: VirtAddr,
        /// Architecture name (usually a literal; owned when it crossed the plugin ABI).
        arch: Cow<'static, str>,
    },
    /// Part of an operation failed; the rest of the buffer holds valid data.
    #[error("{} of {total} bytes could not be accessed, first at buffer offset {}: {}",
        failed.iter().map(|f| f.len).sum::<usize>(),
        failed.first().map(|f| f.offset).unwrap_or(0),
        failed.first().map(|f| f.cause.to_string()).unwrap_or_default())]
    Partial {
        /// Total length of the operation.
        total: usize,
        /// The failed spans, in buffer order.
        failed: Vec<FailedSpan>,
    },
    /// An I/O error on a backing file or device.
    #[error("I/O error on {} at offset {offset:#x}: {source}", path.display())]
    Io {
        /// The file or device.
        path: PathBuf,
        /// Offset of the failed access in the file.
        offset: u64,
        /// The underlying error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A write was attempted on a target opened read-only.
    #[error("{what} is read-only; open it writable explicitly to write")]
    ReadOnly {
        /// What refused the write.
        what: String,
    },
    /// The operation is not supported by this target.
    #[error("not supported: {what}")]
    Unsupported {
        /// What was asked.
        what: String,
    },
    /// Data read from the target is inconsistent.
    #[error("corrupt data at {location}: {what}")]
    Corrupt {
        /// Where (an address or file offset, formatted).
        location: String,
        /// What is wrong.
        what: String,
    },
    /// A bounded walk or read hit its limit.
    #[error("limit reached: {what} (limit {limit})")]
    Limit {
        /// What was being walked or read.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A memory map is invalid.
    #[error("invalid memory map: {0}")]
    MemoryMap(String),
    /// A string could not be parsed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A lower-level error with added context.
    #[error("{context}: {source}")]
    Context {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
    /// An error of an OS layer (or another crate built on core), kept whole so callers
    /// holding only an `Arc<dyn Os>` can still match it: see [`Error::downcast_ref`]. The
    /// message is the source's own; [`std::error::Error::source`] returns it.
    #[error("{source}")]
    Os {
        /// Which layer produced it (`linux`, `native`, a plugin name).
        os: Cow<'static, str>,
        /// The original error (e.g. a `LinuxError`).
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// Anything else, with a message.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Wraps `self` with a description of what was being done.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// An I/O error with its file and offset.
    pub fn io(path: impl Into<PathBuf>, offset: u64, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            offset,
            source: Arc::new(source),
        }
    }

    /// An [`Error::Os`] holding `source`, produced by the layer `os`.
    pub fn os(
        os: impl Into<Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Os {
            os: os.into(),
            source: Arc::new(source),
        }
    }

    /// The typed error of an OS layer inside `self`, if it is a `T`: looks through
    /// `Context` wrappers, the failed spans of `Partial` (the first one) and the source
    /// chain of an [`Error::Os`].
    ///
    /// ```
    /// use memlens_core::Error;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("no such thing")]
    /// struct Mine;
    ///
    /// let e = Error::os("mine", Mine).context("opening");
    /// assert!(e.downcast_ref::<Mine>().is_some());
    /// assert!(Error::Other("x".into()).downcast_ref::<Mine>().is_none());
    /// ```
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            Error::Context { source, .. } => source.downcast_ref(),
            Error::Partial { failed, .. } => failed.first()?.cause.downcast_ref(),
            Error::Os { source, .. } => {
                let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
                while let Some(e) = cur {
                    if let Some(t) = e.downcast_ref::<T>() {
                        return Some(t);
                    }
                    cur = e.source();
                }
                None
            }
            _ => None,
        }
    }

    /// The innermost cause, skipping `Context` wrappers.
    pub fn root_cause(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root_cause(),
            e => e,
        }
    }
}

impl PartialEq for Error {
    /// Errors compare by their message: enough for tests and deduplication.
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// Errors of parsing user-supplied strings (addresses, sizes, memory maps).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a number.
    #[error("'{input}' is not a number (expected decimal or 0x-prefixed hex)")]
    Number {
        /// The input.
        input: String,
    },
    /// Not a size.
    #[error("'{input}' is not a size (expected e.g. 4096, 0x1000, 4k, 2MiB, 1g)")]
    Size {
        /// The input.
        input: String,
    },
    /// Invalid TOML or schema.
    #[error("{what}: {message}")]
    Syntax {
        /// What was being parsed.
        what: String,
        /// The parser's message.
        message: String,
    },
}

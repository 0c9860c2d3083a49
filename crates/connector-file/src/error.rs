//! Errors of the file connector: every variant names the file, and where it applies the
//! offset and field that were wrong.

use std::path::PathBuf;

/// Errors opening or parsing a dump file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or inspected.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file (a directory, a socket …).
    #[error("{} is not a regular file ({kind})", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is empty.
    #[error("{} is empty: a memory image needs at least one byte", path.display())]
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// Memory-mapping failed.
    #[error("cannot memory-map {}: {source}", path.display())]
    Map {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The memory map points past the end of the file.
    #[error("{}: memory map needs {needed:#x} bytes of backing, but the file has {size:#x}", path.display())]
    MapPastEnd {
        /// The path.
        path: PathBuf,
        /// Bytes the map needs.
        needed: u64,
        /// File size.
        size: u64,
    },
    /// The file is truncated: a structure at `offset` needs more bytes.
    #[error("{}: truncated at offset {offset:#x}: {what} needs {needed} bytes", path.display())]
    Truncated {
        /// The path.
        path: PathBuf,
        /// Offset of the structure.
        offset: u64,
        /// What was being read.
        what: String,
        /// Bytes needed.
        needed: u64,
    },
    /// A field holds an impossible value.
    #[error("{}: bad {field} at offset {offset:#x}: {why}", path.display())]
    BadField {
        /// The path.
        path: PathBuf,
        /// File offset of the field.
        offset: u64,
        /// Field name.
        field: String,
        /// What is wrong.
        why: String,
    },
    /// A count or size in the file is beyond a hard cap of memlens (see
    /// [`limits`](crate::limits)): the file may even be valid, but memlens will not
    /// allocate or walk that much for it.
    #[error("{}: {what} at offset {offset:#x}: {asked}, beyond {cap} ({limit})", path.display())]
    Limit {
        /// The path.
        path: PathBuf,
        /// File offset of the field (or structure) that asked.
        offset: u64,
        /// What asked.
        what: String,
        /// What it asked for.
        asked: String,
        /// The cap's name (a constant of [`limits`](crate::limits)).
        cap: &'static str,
        /// The cap's value.
        limit: u64,
    },
    /// The format could not be recognised.
    #[error("{}: unknown format (supported: {supported})", path.display())]
    UnknownFormat {
        /// The path.
        path: PathBuf,
        /// The supported formats.
        supported: String,
    },
    /// An option does not apply to this file.
    #[error("option {what}: {why}")]
    BadOption {
        /// The option.
        what: String,
        /// Why it does not apply.
        why: String,
    },
    /// A core error (memory maps, parsing).
    #[error(transparent)]
    Core(#[from] memlens_core::Error),
}

impl FileError {
    /// Converts into a core error, keeping the message (for the `PhysicalTarget` API).
    pub fn into_core(self) -> memlens_core::Error {
        match self {
            FileError::Core(e) => e,
            e => memlens_core::Error::Other(e.to_string()),
        }
    }
}

//! Raw physical images (`.raw`, `.mem`, `.bin`, `dd` of `/dev/mem`). **Key decision: a raw
//! image is the identity map** (address = file offset) unless the user gives a memory
//! map; it is the only format that may be mapped writable. It has no signature: the
//! dispatcher falls back to it for a file that matches none and is a whole number of
//! pages.

use std::sync::Arc;

use crate::error::FileError;
use crate::format::{Detected, Format, Open, Parsed};
use crate::mapped::MappedFile;

/// The format table's signature check: raw has none.
pub(crate) fn detect(_: &[u8]) -> Option<Detected> {
    None
}

/// The format table's opener: the file as it is, or re-opened with the user's map or
/// writable.
pub(crate) fn open(file: MappedFile, o: &Open<'_>) -> Result<Parsed<Arc<MappedFile>>, FileError> {
    let file = match (o.map, o.writable) {
        (None, false) => file,
        (map, writable) => {
            drop(file);
            MappedFile::open_with(o.path, map.cloned(), writable)?
        }
    };
    Ok(Parsed::memory_only(Arc::new(file), Format::Raw))
}

//! # memlens-connector-file
//!
//! Physical memory from dump files. **Key decision: every uncompressed format is read by
//! one memory-mapped reader ([`MappedFile`]) driven by a memory map** (guest-physical range
//! → file offset); a format parser's only job is to produce that map (and the notes). A raw
//! image (`.raw`, `.mem`, `.bin`, `dd` of `/dev/mem`) is the identity map.
//!
//! ```no_run
//! use memlens_connector_file::RawFile;
//! use memlens_core::{MemoryViewExt, PhysAddr};
//! let mem = RawFile::open("guest.raw")?;
//! let word = mem.read_u64(PhysAddr(0x1000))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod mapped;

pub use error::FileError;
pub use mapped::MappedFile;

/// A raw physical memory image: a [`MappedFile`] with the identity map (or a map given by
/// the user to place file ranges at other physical addresses).
pub type RawFile = MappedFile;

//! # memlens-connector-file
//!
//! Physical memory from dump files. **Key decision: every uncompressed format is read by
//! one memory-mapped reader ([`MappedFile`]) driven by a memory map** (guest-physical range
//! → file offset); a format parser's only job is to produce that map (and the notes). A raw
//! image (`.raw`, `.mem`, `.bin`, `dd` of `/dev/mem`) is the identity map. Compressed
//! formats (kdump, AVML) have their own readers that decompress through a shared
//! [`BlockCache`].
//!
//! | format | reader | registers | VMCOREINFO |
//! |---|---|---|---|
//! | raw | [`MappedFile`] (identity) | – | – |
//! | ELF core (QEMU, `/proc/vmcore`) | [`MappedFile`] (`PT_LOAD`s) | `NT_PRSTATUS` + QEMU note | note |
//! | kdump (normal and flattened) | [`KdumpMemory`] | notes | sub-header |
//! | LiME | [`MappedFile`] (ranges) | – | – |
//! | AVML | [`AvmlMemory`] | – | – |
//!
//! [`write`](mod@write) writes ELF cores (physical memory, or a process's mappings) that this crate
//! and other tools read back.
//!
//! [`open_dump`] detects the format by content (see [`detect`]) and returns a [`Dump`]:
//! memory, registers, VMCOREINFO and a [`DumpInfo`] summary; [`Dump::target`] hands all
//! of it to an OS plugin as a core [`PhysicalTarget`](memlens_core::PhysicalTarget).
//!
//! ```no_run
//! use memlens_connector_file::{open_dump, DumpOptions};
//! use memlens_core::{MemoryViewExt, PhysAddr};
//! let dump = open_dump("guest.elf", &DumpOptions::default())?;
//! println!("{}", dump.info());
//! let word = dump.read_u64(PhysAddr(0x1000))?;
//! let target = dump.target(); // memory + CpuState + TargetInfo.vmcoreinfo
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bytes;
pub mod cache;
pub mod detect;
pub mod dump;
pub mod elf;
pub mod error;
mod flat;
#[doc(hidden)]
pub mod fuzzing;
mod intervals;
pub mod lime;
pub mod mapped;
pub mod notes;
#[cfg(feature = "plugin")]
pub mod plugin;
pub mod write;

pub mod avml;
pub mod kdump;
mod lzo;

pub use avml::AvmlMemory;
pub use cache::BlockCache;
pub use detect::{Format, FormatChoice};
pub use dump::{open_dump, CpuRoot, Dump, DumpCpus, DumpInfo, DumpOptions};
pub use error::FileError;
pub use kdump::KdumpMemory;
pub use mapped::MappedFile;

/// A raw physical memory image: a [`MappedFile`] with the identity map (or a map given by
/// the user to place file ranges at other physical addresses).
pub type RawFile = MappedFile;

/// Merges sorted ranges that touch or overlap.
pub(crate) fn coalesce(
    sorted: Vec<memlens_core::MemRange<memlens_core::PhysAddr>>,
) -> Vec<memlens_core::MemRange<memlens_core::PhysAddr>> {
    let mut out: Vec<memlens_core::MemRange<memlens_core::PhysAddr>> =
        Vec::with_capacity(sorted.len());
    for r in sorted {
        if let Some(last) = out.last_mut() {
            if last.end_u64() >= r.base.0 {
                let end = last.end_u64().max(r.end_u64());
                last.len = end - last.base.0;
                continue;
            }
        }
        out.push(r);
    }
    out
}

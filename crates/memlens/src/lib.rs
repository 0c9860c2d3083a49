//! # memlens
//!
//! Physical-memory introspection: read the memory of a machine — a dump file, a live QEMU
//! guest, the host itself — and rebuild what its OS knows: processes, modules, memory maps,
//! and each process's virtual memory.
//!
//! This facade is what a library user depends on. **Key decision: it only re-exports**;
//! every piece lives in a crate of its own role (core types, connectors, translation, OS
//! plugins, the plugin ABI), so a user can also depend on just the piece they need.
//!
//! ```no_run
//! use memlens::core::{MemoryViewExt, PhysAddr};
//! let mem = memlens::file::RawFile::open("guest.raw")?;
//! let bytes = mem.read_vec(PhysAddr(0x1000), 16)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use memlens_core as core;
pub use memlens_core::{
    Address, Error, MemoryView, MemoryViewExt, MemoryWrite, MemoryWriteExt, PhysAddr,
    PhysicalMemory, PhysicalTarget, Result, VirtAddr, VirtualMemory,
};

/// Dump-file connector (raw, ELF core, kdump, LiME, AVML).
pub use memlens_connector_file as file;

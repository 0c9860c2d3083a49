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
//! Physical memory of a dump, then the Linux kernel in it, its processes and one
//! process's memory (`examples/ps.rs` is the same as a program):
//!
//! ```no_run
//! use memlens::core::{MemoryViewExt, Os, PhysAddr};
//! use memlens::file::{open_dump, DumpOptions};
//! use memlens::linux::{LinuxOptions, LinuxOs};
//!
//! let dump = open_dump("guest.elf", &DumpOptions::default())?; // format by content
//! let first = dump.read_vec(PhysAddr(0x1000), 16)?; // physical memory
//! let os = LinuxOs::open(dump.target(), LinuxOptions::default())?; // no symbol files
//! for p in os.processes()? {
//!     println!("{:>6} {:>6} {}", p.pid, p.ppid, p.name);
//! }
//! let init = os.process(1)?;
//! let maps = init.maps()?; // VMAs with paths
//! let head = init.memory().read_vec(maps[0].start, 4)?; // virtual memory
//! assert_eq!(head, b"\x7fELF");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The host itself is [`native::NativeOs`]; a live QEMU guest is
//! [`qemu::QemuConnector`] (its memory) feeding [`linux::LinuxOs`]; [`plugin`] loads the
//! same pieces from shared libraries and chains them from strings (`-c qemu:vm -o linux`).

pub use memlens_core as core;
pub use memlens_core::{
    Address, Error, MemoryView, MemoryViewExt, MemoryWrite, MemoryWriteExt, PhysAddr,
    PhysicalMemory, PhysicalTarget, Result, VirtAddr, VirtualMemory,
};

/// Virtual address translation: MMU descriptions, page-table walks, page maps, views.
pub use memlens_arch as arch;
/// Dump-file connector (raw, ELF core, kdump, LiME, AVML) and ELF core writing.
pub use memlens_connector_file as file;
/// Live QEMU guests (RAM through the QEMU process, layout and registers from QMP).
pub use memlens_connector_qemu as qemu;
/// Linux guests from the kallsyms and BTF in their memory.
pub use memlens_os_linux as linux;
/// The host itself as an OS (`/proc`, `process_vm_readv`).
pub use memlens_os_native as native;
/// Plugins: the ABI, inventory of shared libraries, argument syntax and chains.
pub use memlens_plugin as plugin;

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
//!
//! ## Features
//!
//! Each piece beyond the core types and translation ([`core`], [`arch`]) is a feature, all
//! on by default; with `default-features = false` a user takes only what it needs (reading
//! dumps of Linux guests: `features = ["file", "linux"]`, without QMP, dlopen or
//! `process_vm_readv`):
//!
//! | feature | module | what |
//! |---|---|---|
//! | `file` | `file` | dump files: raw, ELF core, kdump, LiME, AVML |
//! | `qemu` | `qemu` | live QEMU guests: RAM through the QEMU process, QMP |
//! | `native` | `native` | the host itself: `/proc`, `process_vm_readv` |
//! | `linux` | `linux` | Linux guests from kallsyms and BTF in memory |
//! | `plugins` | `plugin` | plugin ABI, shared-library inventory, chains; the plugin exports of `file` and `linux` |
//!
//! A `windows` feature will join them with the Windows OS plugin.

pub use memlens_core as core;
pub use memlens_core::{
    Address, Error, MemoryView, MemoryViewExt, MemoryWrite, MemoryWriteExt, PhysAddr,
    PhysicalMemory, PhysicalTarget, Result, VirtAddr, VirtualMemory,
};

/// Virtual address translation: MMU descriptions, page-table walks, page maps, views.
pub use memlens_arch as arch;
/// Dump-file connector (raw, ELF core, kdump, LiME, AVML) and ELF core writing.
#[cfg(feature = "file")]
pub use memlens_connector_file as file;
/// Live QEMU guests (RAM through the QEMU process, layout and registers from QMP).
#[cfg(feature = "qemu")]
pub use memlens_connector_qemu as qemu;
/// Linux guests from the kallsyms and BTF in their memory.
#[cfg(feature = "linux")]
pub use memlens_os_linux as linux;
/// The host itself as an OS (`/proc`, `process_vm_readv`).
#[cfg(feature = "native")]
pub use memlens_os_native as native;
/// Plugins: the ABI, inventory of shared libraries, argument syntax and chains.
#[cfg(feature = "plugins")]
pub use memlens_plugin as plugin;

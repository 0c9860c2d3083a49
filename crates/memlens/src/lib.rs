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
//! Physical memory of a dump (here a tiny raw image written in hidden lines; an ELF core,
//! kdump, LiME or AVML file opens the same way, detected by content):
//!
//! ```
//! use memlens::core::{MemoryView, MemoryViewExt, PhysAddr};
//! use memlens::file::{open_dump, DumpOptions, Format};
//! # let path = std::env::temp_dir().join(format!("memlens-doc-{}-guest.raw", std::process::id()));
//! # let mut image = vec![0u8; 0x4000];
//! # image[0x1000..0x1008].copy_from_slice(&0x2000u64.to_le_bytes()); // a pointer
//! # image[0x2000..0x2006].copy_from_slice(b"kernel");
//! # std::fs::write(&path, &image)?;
//! let dump = open_dump(&path, &DumpOptions::default())?;
//! assert_eq!(dump.format(), Format::Raw);
//! assert_eq!(dump.ranges()[0].len, 0x4000); // file offset = physical address
//! let ptr = dump.read_u64(PhysAddr(0x1000))?; // physical memory
//! assert_eq!(dump.read_cstr(PhysAddr(ptr), 32)?, "kernel");
//! # drop(dump);
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Then the Linux kernel in a dump, its processes and one process's memory
//! (`examples/ps.rs` is the same as a program):
//!
//! ```no_run
//! // no_run: it needs a dump of a real Linux guest (kallsyms and BTF in memory), which a
//! // doc test cannot make; `crates/os-linux/tests/lab.rs` runs these steps on the lab's dumps.
//! use memlens::core::{MemoryViewExt, Os};
//! use memlens::file::{open_dump, DumpOptions};
//! use memlens::linux::{LinuxOptions, LinuxOs};
//!
//! let dump = open_dump("guest.elf", &DumpOptions::default())?;
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
//! The host itself runs the same OS interface (this runs, listing the host's processes):
//!
//! ```
//! use memlens::core::Os;
//! use memlens::native::{NativeOptions, NativeOs};
//!
//! let os = NativeOs::open(NativeOptions::default())?;
//! let me = os.process(std::process::id())?;
//! assert!(os.processes()?.iter().any(|p| p.pid == me.info().pid));
//! assert!(!me.maps()?.is_empty());
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

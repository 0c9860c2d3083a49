//! # memlens-os-native
//!
//! The host itself as a memlens OS (Linux). **Key decision: no connector underneath** —
//! the kernel already knows the processes, so listings come from `/proc` and each
//! process's memory is read with `process_vm_readv` (written with `process_vm_writev`),
//! batched: one system call moves up to 1024 operations. Every process is a core
//! [`VirtualMemory`](memlens_core::VirtualMemory) view, so it can feed a connector (the QEMU
//! connector reads a guest's RAM out of the QEMU process through this view).
//!
//! This process, listed and read through the OS plugin (the example runs on the host: a
//! process may always read itself):
//!
//! ```
//! use memlens_core::{MemoryViewExt, Os, VirtAddr};
//! use memlens_os_native::{NativeOptions, NativeOs};
//!
//! static MAGIC: u64 = 0x6d65_6d6c_656e_7321;
//! static GREETING: &[u8] = b"hello from memlens\0";
//!
//! let os = NativeOs::open(NativeOptions::default())?;
//! let processes = os.processes()?;
//! for p in &processes {
//!     println!("{:>7} {:>7} {}", p.pid, p.ppid, p.name);
//! }
//! let pid = std::process::id();
//! assert!(processes.iter().any(|p| p.pid == pid));
//!
//! let me = os.process(pid)?;
//! assert_eq!(me.info().pid, pid);
//! let at = VirtAddr(&MAGIC as *const u64 as u64);
//! let map = me.maps()?.into_iter().find(|m| m.start <= at && at < m.end).unwrap();
//! println!("{:#x}-{:#x} {}", map.start.0, map.end.0, map.path.as_deref().unwrap_or(""));
//! let memory = me.memory(); // process_vm_readv, batched
//! assert_eq!(memory.read_u64(at)?, MAGIC);
//! assert_eq!(memory.read_cstr(VirtAddr(GREETING.as_ptr() as u64), 64)?, "hello from memlens");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - Processes ([`NativeOs`]): `/proc/PID/{stat,status,cmdline,exe}`: pid, ppid, name,
//!   command line, executable, real uid/gid, state, threads, start time (ns since boot).
//! - Maps: `/proc/PID/maps`. Modules: mapped files whose first mapping (file offset 0)
//!   starts with an ELF header in memory.
//! - Module details ([`elf`]): exports and imports from the dynamic symbol table **in
//!   memory**; sections from the **file on disk** (section headers are not loaded), only
//!   when the file's ELF header equals the mapped one.
//! - Memory ([`ProcessMemory`]): partial reads fail only the unreadable pages' bytes.
//!   Writing needs [`NativeOptions::allow_write`]; without it
//!   [`Process::writer`](memlens_core::Process::writer) is `None`.
//! - Permissions: reading another user's process needs root / `CAP_SYS_PTRACE` (or the
//!   same uid, subject to Yama); the error says so ([`error::access_hint`]).
//! - Plugin: [`NativePlugin`] (`-o native[::write]`), exported as `MEMLENS_OS_NATIVE`.
//!
//! ## Performance
//!
//! Cost is set by the kernel: every iovec of `process_vm_readv` pins and unpins its
//! pages, about 2.5–3.5 µs per iovec on the 2-core VM this was developed on, so 8-byte
//! random reads reach ~0.3 million/s per core there even batched 1024 per call, and 1 MiB
//! reads run at 1.4–2.6 GiB/s next to a memcpy ceiling of ~2.7 GiB/s
//! (`cargo bench -p memlens-os-native --bench native_read`). No user-space trick avoids the
//! pinning for another process's private memory; the QEMU connector maps shared guest RAM
//! directly instead.

pub mod elf;
pub mod error;
pub mod plugin;
pub mod process;
pub mod procfs;
pub mod vm;

pub use error::NativeError;
pub use plugin::NativePlugin;
pub use process::{NativeOptions, NativeOs, NativeProcess};
pub use vm::ProcessMemory;

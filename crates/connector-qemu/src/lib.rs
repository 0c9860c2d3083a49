//! # memlens-connector-qemu
//!
//! Physical memory of a live QEMU guest. **Key decision: the connector reads guest RAM
//! out of the QEMU process through an OS plugin's process view** ([`memlens_core::Os`]),
//! never through host-specific code of its own: it lists processes, picks the
//! `qemu-system-*` one, finds the RAM block among its mappings and reads it through
//! `Process::memory()`. Over the native OS plugin that is `process_vm_readv`; over a Linux
//! guest it would be a QEMU inside a VM (chains). The CLI passes the native OS by default.
//!
//! ```no_run
//! // no_run: it needs a live QEMU guest named `myvm` on this host, which a doc test cannot
//! // start; `crates/connector-qemu/tests/live.rs` runs these steps on the lab's live guest.
//! use std::sync::Arc;
//! use memlens_connector_qemu::{QemuArgs, QemuConnector};
//! use memlens_core::{MemoryViewExt, PhysAddr};
//! use memlens_os_native::{NativeOptions, NativeOs}; // QEMU's process, read on the host
//! let os = Arc::new(NativeOs::open(NativeOptions::default())?);
//! let qemu = QemuConnector::open(os, &QemuArgs::parse("myvm")?)?;
//! let word = qemu.memory().read_u64(PhysAddr(0x1000))?;
//! let target = qemu.physical_target(); // for an OS plugin
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What runs without a guest: the connector's arguments, what a QEMU command line says
//! about its guest, and discovery on the host (an empty list when no QEMU runs):
//!
//! ```
//! use memlens_connector_qemu::{cmdline, list_targets, QemuArgs};
//! use memlens_os_native::{NativeOptions, NativeOs};
//!
//! let args = QemuArgs::parse("myvm,pause,no-qmp")?; // -c qemu:myvm,pause,no-qmp
//! assert_eq!(args.name.as_deref(), Some("myvm"));
//! assert!(args.pause && args.no_qmp && !args.writable);
//! assert_eq!(QemuArgs::parse("4242")?.pid, Some(4242)); // a number is a pid
//! assert!(QemuArgs::parse("myvm,bogus").is_err());
//!
//! let argv: Vec<String> = "/usr/bin/qemu-system-x86_64 -name guest=myvm -m 2G -M q35 \
//!                          -qmp unix:/tmp/myvm.qmp,server,nowait"
//!     .split_whitespace()
//!     .map(String::from)
//!     .collect();
//! let line = cmdline::parse(&argv);
//! assert_eq!(line.target, "x86_64");
//! assert_eq!(line.name.as_deref(), Some("myvm"));
//! assert_eq!(line.ram_size, 2 << 30);
//! assert_eq!(line.machine.as_deref(), Some("q35"));
//! assert_eq!(line.qmp_socket.as_deref(), Some("/tmp/myvm.qmp".as_ref()));
//!
//! for guest in list_targets(&NativeOs::open(NativeOptions::default())?)? {
//!     println!("{guest}"); // pid, name, RAM, machine, QMP socket
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - Discovery ([`cmdline`], [`list_targets`]): pid, `-name`, RAM size (`-m 256M`,
//!   `size=4G`, `4096`), machine (`-M`/`-machine`), QMP socket (`-qmp unix:PATH` or
//!   `-chardev socket,path=PATH` + `-mon mode=control`), from the process's command line.
//!   A name matching several guests is an error listing them.
//! - RAM block: with QMP, `gpa2hva` names its host address; otherwise the one anonymous
//!   `rw-p` mapping whose size equals the RAM size (the ~1 GiB `rwxp` TCG code buffer and
//!   other anonymous maps never match), or the one shared `rw-s` mapping of that size
//!   (memfd / file backends, which are then mapped directly: see [`memory`]).
//! - Layout ([`layout`]): from QMP `info mtree -f`, else from the machine type. A QMP socket
//!   on the command line that cannot be used is an error naming it (never a silent fallback
//!   without registers); the `no-qmp` argument asks for the machine-type layout instead.
//! - Registers ([`regs`]): QMP `info registers -a` (x86 CR0/2/3/4, EFER, RIP, GPRs;
//!   aarch64 X0–X30/SP/PC/PSTATE — the monitor does not print TTBRs).
//! - Pause/resume through QMP on request; writes only with the `writable` argument *and*
//!   an input OS that allows writing.
//! - Plugin: [`QemuPlugin`] (`-o native -c qemu:NAME`), exported as
//!   `MEMLENS_CONNECTOR_QEMU`.
//! - Only Unix-socket QMP is used (no TCP). Memory-backend layouts with several RAM
//!   blocks (NUMA nodes, hot-plugged DIMMs) are not supported: the main block only.
//!
//! ## Performance
//!
//! Default QEMU RAM is private anonymous memory, read through the process view: as fast
//! as `process_vm_readv` is on the host (see memlens-os-native: ~0.3 million 8-byte reads
//! per second on the development VM, 1 MiB reads near memcpy speed). A guest started with
//! `-object memory-backend-memfd,id=m0,size=…,share=on -machine memory-backend=m0` is
//! mapped directly and reads at memory speed (5+ million 8-byte random reads per second,
//! 1 MiB reads at the memcpy ceiling): `cargo bench -p memlens-connector-qemu --bench
//! qemu_read`.

pub mod cmdline;
pub mod connector;
pub mod error;
pub mod layout;
pub mod memory;
pub mod plugin;
pub mod qmp;
pub mod regs;
pub mod vcpu;

pub use cmdline::QemuCommandLine;
pub use connector::{list_targets, open, QemuArgs, QemuConnector, QemuTarget};
pub use error::QemuError;
pub use memory::QemuMemory;
pub use plugin::QemuPlugin;
pub use qmp::QmpSocket;
pub use vcpu::QmpCpu;

//! # memlens-plugin
//!
//! Connectors and OS plugins as **shared libraries loaded at run time**, checked before
//! they are trusted, configured from a string and chained. **Key decision: the ABI is a
//! layer** — plugins implement plain Rust traits ([`ConnectorPlugin`], [`OsPlugin`]) that
//! produce ordinary core objects ([`PhysicalTarget`](memlens_core::PhysicalTarget),
//! `Arc<dyn Os>`); a one-line macro exports them through `#[repr(C)]` descriptors and
//! vtables ([`abi`]), and the host turns loaded vtables back into the same core trait
//! objects. The same traits serve static linking ([`StaticRegistry`]).
//!
//! - [`args`]: the argument syntax `name[:target[:key=value,…[:middleware]]]`, declared
//!   per plugin, validated with errors that list the valid keys.
//! - [`abi`]: descriptors, vtables, the layout fingerprint, export/import adapters.
//! - [`analyzer`]: reads a library's exports and descriptor headers from the file (ELF,
//!   PE, Mach-O) and rejects wrong format, architecture, ABI or layout *before* `dlopen`.
//! - [`inventory`]: search paths, permission checks, duplicate resolution, loading.
//! - [`builder`]: chains `-c CONN -o OS -c CONN -o OS` into one object.
//! - [`logger`]: plugin log records reach the host's logger and level filter.
//! - [`listing`]: the data behind `memlens plugins list/help/targets`.
//! - [`capi`]: the C API (`include/memlens.h`, checked for drift by `tests/capi.rs`,
//!   regenerated with `MEMLENS_BLESS=1 cargo test -p memlens-plugin --test capi`). The
//!   ABI types of [`abi`] are in `include/memlens_plugin.h` (`Ml`-prefixed structs,
//!   `MEMLENS_`-prefixed constants), checked for drift and compiled by the system C
//!   compiler to compare every size, alignment and field offset with Rust's
//!   (`tests/abi_header.rs`, same `MEMLENS_BLESS=1` to regenerate).
//! - [`registry`]: factories for statically linked plugins ([`StaticRegistry`]).
//!
//! # For the CLI
//!
//! `plugins list [--json]`: [`listing::list`]`(Some(&registry), &`[`Inventory::scan`]`())`
//! → [`listing::PluginList`] (`to_text()` or serde JSON). `plugins help NAME`:
//! [`listing::help`]. `plugins targets NAME [ARGS]`: [`listing::targets`] →
//! [`listing::TargetList`]. Chains: [`Builder`]`::new().registry(&r).inventory(&inv)
//! .build_cli(&words)` with the `-c`/`-o` words in order → [`Built`].
//!
//! # How to write a plugin
//!
//! ```
//! use std::sync::Arc;
//! use memlens_core::mem::{MemoryMetadata, MemoryView, ReadOp};
//! use memlens_core::{Error, MemoryViewExt, Os, PhysAddr, PhysicalTarget, TargetInfo};
//! use memlens_plugin::{ArgDecl, ArgSpec, Args, BoxError, Builder, ConnectorPlugin};
//!
//! /// `size` bytes of zeros: your backend goes here.
//! struct Zeros(u64);
//!
//! impl MemoryView for Zeros {
//!     type Addr = PhysAddr;
//!     fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
//!         for op in ops {
//!             op.buf.fill(0);
//!             op.result = if op.addr.0.saturating_add(op.buf.len() as u64) <= self.0 {
//!                 Ok(())
//!             } else {
//!                 Err(Error::OutOfRange { addr: op.addr, len: op.buf.len(), max: PhysAddr(self.0 - 1) })
//!             };
//!         }
//!     }
//!     fn metadata(&self) -> MemoryMetadata<PhysAddr> {
//!         MemoryMetadata { max_addr: PhysAddr(self.0 - 1), real_size: self.0, readonly: true, preferred_batch: 64 }
//!     }
//! }
//!
//! pub struct ZeroConnector;
//!
//! impl ConnectorPlugin for ZeroConnector {
//!     const NAME: &'static str = "zeros"; // -c zeros:...
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const DESCRIPTION: &'static str = "memory full of zeros";
//!     fn args() -> ArgSpec {
//!         ArgSpec::new()
//!             .arg(ArgDecl::size("size", "bytes to expose").default("1MiB").validate(|v| {
//!                 if v.trim_start_matches('0').is_empty() { Err("must not be 0".into()) } else { Ok(()) }
//!             }))
//!             .default_arg("size")
//!     }
//!     fn create(args: &Args, _input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget, BoxError> {
//!         let size = args.size("size")?.unwrap_or(1 << 20);
//!         let info = TargetInfo { connector: Self::NAME.into(), ..TargetInfo::default() };
//!         Ok(PhysicalTarget::from_memory(Arc::new(Zeros(size)), info))
//!     }
//! }
//!
//! // One line turns the crate into a loadable plugin (symbol MEMLENS_CONNECTOR_ZEROS):
//! memlens_plugin::export_connector!(ZEROS = ZeroConnector);
//!
//! // Linked statically, the same impl goes through the same builder:
//! let registry = memlens_plugin::StaticRegistry::new().with_connector::<ZeroConnector>();
//! let built = Builder::new().registry(&registry).build_cli(&["-c", "zeros::64KiB"])?;
//! let target = built.target().unwrap();
//! assert_eq!(target.memory.read_vec(PhysAddr(0x100), 4)?, [0; 4]);
//! assert_eq!(target.memory.metadata().max_addr, PhysAddr(0xffff));
//! let err = Builder::new().registry(&registry).build_cli(&["-c", "zeros::size=0"]).err().unwrap();
//! assert!(err.to_string().contains("must not be 0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In `Cargo.toml`: `[lib] crate-type = ["rlib", "cdylib"]`. Copy the built `.so` into a
//! directory of `$MEMLENS_PLUGIN_PATH` (or `~/.local/lib/memlens`); `memlens plugins list`
//! shows it, or why it was rejected. An OS plugin implements [`OsPlugin`] and uses
//! [`export_os!`]. To link the same crate statically, register it in a
//! [`StaticRegistry`] instead.
//!
//! Rules inside a plugin: panics are caught at the boundary and become errors, but do not
//! rely on it; log with the `log` macros (records reach the host); the objects you return
//! must be `Send + Sync` (the core traits require it).
//!
//! # What crosses the boundary and its cost
//!
//! Memory reads take one of two paths, chosen per object at each call:
//!
//! - **in place** (the usual case): when host and plugin were built by the same rustc from
//!   the same core types (equal [`abi::native_fingerprint`]), the host passes its own
//!   `&mut [ReadOp]` and the plugin's backend fills it directly — one indirect call per
//!   batch and one pass over the ops on each side; failed ops are taken out in the plugin
//!   and re-created on the host side (flattened core errors), so no heap value crosses
//!   allocators.
//! - **portable**: otherwise, an array of `#[repr(C)]` `(addr, buf, len)` ops (on the
//!   stack up to 32 ops, else reused per thread: no allocation in the steady state); the
//!   plugin rebuilds `ReadOp`s around the same buffers (no copy of the data) and reports
//!   failures the same way.
//!
//! Measured with `cargo bench -p memlens-plugin-testconn --bench abi -- paired` (the same
//! connector statically linked and loaded from its `.so`, alternating blocks, a control
//! pair showing the method's bias within ±1.3 %) on a shared 2-core AMD EPYC VM: 256 ×
//! 8-byte reads in one batch cost the same through a loaded plugin (+0.2 to +1.0 %), a
//! single 4 KiB read ~10 ns more (+8 to +18 %: two extra indirect calls per read). See
//! `docs/performance.md` for the figures and what was removed from the hot path.
//!
//! Listings (processes, maps, modules, info) cross as **JSON** of the core types: no Rust
//! layout crosses the boundary, and the schema is pinned by the layout fingerprint (it
//! hashes this crate's version). The price is a serialisation per call: `cargo bench -p
//! memlens-plugin-testos --bench listing` lists 4096 processes in 0.69 ms statically and
//! 14.7 ms through a loaded plugin (≈ 3.4 µs per process, measured on a busy 2-core
//! machine where a bare clone of the 4096 `ProcessInfo`s took 0.8 ms) — small next to
//! the page-table walks and memory reads that produce a real process list, and paid once
//! per listing, not per read. CPU registers cross as JSON too.

pub mod abi;
pub mod analyzer;
pub mod args;
pub mod builder;
pub mod capi;
pub mod error;
pub mod inventory;
pub mod listing;
pub mod logger;
mod macros;
pub mod registry;
pub mod traits;

pub use args::{ArgDecl, ArgKind, ArgSpec, Args, MiddlewareSpec, PluginSpec};
pub use builder::{Builder, Built, ChainSpec, Output, Step};
pub use error::{BoxError, Error, Result};
pub use inventory::{Inventory, PluginEntry};
pub use registry::StaticRegistry;
pub use traits::{ConnectorPlugin, InputKind, OsPlugin, PluginKind, TargetListing};

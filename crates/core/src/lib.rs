//! # memlens-core
//!
//! The types every other memlens crate stands on. **Key decision: one batched, `&self`
//! reading trait ([`MemoryView`]) for physical and virtual memory alike**, with single
//! reads, typed reads, strings and a cursor provided on top ([`MemoryViewExt`]); writing and
//! CPU state are separate capabilities ([`MemoryWrite`], [`CpuState`]).
//!
//! - [`addr`]: [`PhysAddr`], [`VirtAddr`], [`PageSize`], number parsing.
//! - [`size`]: sizes with units (`4k`, `2MiB`).
//! - [`mem`] and [`ext`]: the memory traits and their helpers.
//! - [`memmap`]: validated guest-physical → backing-offset maps (TOML in and out).
//! - [`middleware`]: page cache, delay and metrics wrappers around any view.
//! - [`cpu`], [`target`], [`os`]: registers (with typed control registers in
//!   [`cpu::regs`]: `Cr4::from(r.cr4).la57()`), what a connector hands to an OS plugin,
//!   and the OS/process traits with their listing types.
//! - [`error`]: the error type; every variant carries its context.
//! - [`bounded`]: allocations sized by target data — checked against what they can cover
//!   and a hard cap, read in chunks.
//! - [`bench`](mod@bench): throughput of any view next to a memcpy ceiling (`memlens bench`).

pub mod addr;
pub mod bench;
pub mod bounded;
pub mod cpu;
pub mod elf;
pub mod error;
pub mod ext;
pub mod mem;
pub mod memmap;
pub mod middleware;
pub mod os;
pub mod size;
pub mod target;

pub use addr::{Address, PageSize, Pfn, PhysAddr, VirtAddr};
pub use cpu::{Arch, CpuRegisters, CpuState};
pub use error::{Error, ParseError, Result};
pub use ext::{MemoryViewExt, MemoryWriteExt};
pub use mem::{
    MemRange, MemoryMetadata, MemoryView, MemoryWrite, PhysicalMemory, PhysicalWrite, ReadOp,
    VirtualMemory, VirtualWrite, WriteOp,
};
pub use memmap::MemoryMap;
pub use os::{MapInfo, ModuleInfo, Os, OsInfo, Perms, Process, ProcessInfo};
pub use target::{PhysicalTarget, TargetInfo};

/// Re-export so plugin crates derive `Pod` with the same version.
pub use bytemuck;

/// A hash of the source of the types that cross the plugin boundary in place when host and
/// plugin were built from the same memlens (`ReadOp`, `Error`, the address types).
///
/// It lives here, hashing this crate's own files, so that it is right wherever the crate
/// is built from (a workspace, a registry download, a vendored copy): the plugin layer
/// mixes it into its native-layout fingerprint.
pub const SOURCE_HASH: u64 = {
    const fn fnv(mut h: u64, s: &str) -> u64 {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            h ^= b[i] as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
            i += 1;
        }
        h
    }
    let h = fnv(0xcbf2_9ce4_8422_2325, include_str!("error.rs"));
    let h = fnv(h, include_str!("mem.rs"));
    fnv(h, include_str!("addr.rs"))
};

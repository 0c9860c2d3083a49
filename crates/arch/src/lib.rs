//! # memlens-arch
//!
//! Virtual address translation for memlens. **Key decision: translation is data, and it is
//! batched.**
//!
//! - **Data** ([`mmu`]): an architecture is an [`Mmu`] value — levels (index bits, shift,
//!   which levels may end in a large page), entry size, VA layout (flat 32-bit,
//!   sign-extended, or split TTBR0/TTBR1 halves) and [`mmu::BitRule`]s for valid, large,
//!   read-only, kernel-only and no-execute. x86 (2 levels, 4-byte entries), PAE, x86-64
//!   with 4 and 5 levels, and aarch64 with 4/16/64 KiB granules (48-bit halves; 52-bit
//!   with 64 KiB, and with 4/16 KiB through FEAT_LPA2) are rows of data for one walker;
//!   adding an MMU adds no walking code.
//! - **Batched** ([`walker`]): N addresses are sorted once and walked level by level;
//!   each distinct table page is read once per level, and all reads of a level go to the
//!   connector as one `read_batch`. Connectors that pay per call (a socket, a syscall,
//!   `process_vm_readv`) see 4 calls for 4096 addresses instead of 16 384, and even a
//!   memory-mapped dump saves the repeated upper-level reads.
//! - **Page maps** ([`pagemap`]): the same descriptions drive a table-scanning walk of a
//!   whole address space, coalesced into ranges, bounded against hostile tables (loops
//!   on the current path skipped, tables and ranges capped); and its reverse, every
//!   virtual address that maps a physical page.
//! - **Virtual memory** ([`view`]): [`VirtualView`] turns physical memory + MMU + roots
//!   into a core `MemoryView<Addr = VirtAddr>`: every core helper (`read_pod`,
//!   `read_cstr`, cursors) works on virtual memory. A read batch becomes one translation
//!   batch and one physical batch; an unmapped page fails only its bytes
//!   (`Error::Partial`).
//! - **Caches**: a lock-free set-associative [`Tlb`] keyed by (root, page) with an
//!   optional validity time, and page-table pages through core's
//!   `middleware::PageCache`. Both optional.
//! - **Tools**: [`report`] (translate / page-map listings for the CLI, human and JSON)
//!   and [`bench`](mod@bench) (`memlens bench walk` / `bench translate` / `bench virt`).
//!
//! Translation outcomes are core [`memlens_core::Error`]s (`NotPresent { va, root, level
//! }`, `BadEntry`, `NonCanonical`) because they travel inside read batches; configuration
//! errors are [`ArchError`]. Levels count from the leaf (level 1 = last). Nothing read
//! from a target can panic the walker, make it loop, or make it allocate beyond a bound
//! proportional to the batch (see the fuzz target in `fuzz/`).
//!
//! Linux KPTI: a CR3 captured while a user process ran on an Intel guest may point at the
//! user copy of the PGD, whose kernel half is nearly empty; translate kernel addresses
//! with [`Roots::x86_kpti_kernel`] (the kernel copy, 4 KiB below). The lab's guests
//! (QEMU's AMD-flavoured CPU models) do not enable PTI, so this is tested synthetically.
//!
//! Known simplifications: x86 NX is assumed enabled (EFER.NXE, as every 64-bit OS sets);
//! Linux `PROT_NONE` pages (present bit clear) are reported unmapped, like the hardware
//! does; aarch64 tagged pointers (TBI) must be stripped by the caller; the aarch64 LPA2
//! descriptor format (`TCR_EL1.DS` = 1) is read with 52-bit halves only (Linux's pairing),
//! and both halves must share one granule and size.

pub mod bench;
pub mod error;
pub mod mmu;
pub mod pagemap;
pub mod report;
pub mod tlb;
pub mod types;
pub mod view;
pub mod walker;

pub use error::ArchError;
pub use mmu::{Granule, Level, Mmu, ARCH_NAMES};
pub use pagemap::{find_mappings, page_map, MapRange, PageMap, PageMapOptions, WalkStats};
pub use tlb::{Tlb, TlbConfig};
pub use types::{PageFlags, Roots, Translation};
pub use view::VirtualView;
pub use walker::{translate, translate_batch, translate_vec};

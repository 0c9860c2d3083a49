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
//! Translating with a small x86-64 page table (four tables and one page, built in a
//! vector in hidden lines: PML4 at 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000 → page
//! 0x5000 for virtual 0x40_2000, and a 2 MiB kernel page at virtual 0x60_0000):
//!
//! ```
//! use memlens_arch::{translate, Mmu, Roots, VirtualView};
//! use memlens_core::{Error, MemoryViewExt, PageSize, PhysAddr, VirtAddr};
//! # use memlens_core::{MemoryMetadata, MemoryView, ReadOp};
//! # struct Ram(Vec<u8>);
//! # impl MemoryView for Ram {
//! #     type Addr = PhysAddr;
//! #     fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
//! #         for op in ops {
//! #             let start = op.addr.0 as usize;
//! #             op.result = match self.0.get(start..start.saturating_add(op.buf.len())) {
//! #                 Some(src) => {
//! #                     op.buf.copy_from_slice(src);
//! #                     Ok(())
//! #                 }
//! #                 None => Err(Error::OutOfRange { addr: op.addr, len: op.buf.len(),
//! #                                                max: PhysAddr(self.0.len() as u64 - 1) }),
//! #             };
//! #         }
//! #     }
//! #     fn metadata(&self) -> MemoryMetadata<PhysAddr> {
//! #         MemoryMetadata { max_addr: PhysAddr(self.0.len() as u64 - 1),
//! #                          real_size: self.0.len() as u64, readonly: true, preferred_batch: 64 }
//! #     }
//! # }
//! # let mut ram = vec![0u8; 0x6000];
//! # let mut entry = |table: usize, index: usize, value: u64| {
//! #     ram[table + index * 8..][..8].copy_from_slice(&value.to_le_bytes());
//! # };
//! # const P: u64 = 1; // present
//! # const W: u64 = 2; // writable
//! # const U: u64 = 4; // user
//! # const PS: u64 = 0x80; // large page
//! # const NX: u64 = 1 << 63;
//! # entry(0x1000, 0, 0x2000 | P | W | U); // PML4[0] → PDPT
//! # entry(0x2000, 0, 0x3000 | P | W | U); // PDPT[0] → PD
//! # entry(0x3000, 2, 0x4000 | P | W | U); // PD[2] → PT (virtual 0x40_0000..0x60_0000)
//! # entry(0x3000, 3, 0x20_0000 | P | PS); // PD[3]: 2 MiB page, kernel, read-only
//! # entry(0x4000, 2, 0x5000 | P | W | U | NX); // PT[2] → page 0x5000 (virtual 0x40_2000)
//! # ram[0x5123..0x512a].copy_from_slice(b"memlens");
//! # let mem = Ram(ram);
//! let mmu = Mmu::x86_64(); // or Mmu::from_name("aarch64")?, ...
//! let roots = Roots::single(PhysAddr(0x1000)); // CR3
//!
//! let t = translate(&mem, &mmu, &roots, VirtAddr(0x40_2123))?;
//! assert_eq!((t.pa, t.size), (PhysAddr(0x5123), PageSize::K4));
//! assert_eq!(t.flags.to_string(), "rw- user");
//!
//! let big = translate(&mem, &mmu, &roots, VirtAddr(0x65_4321))?;
//! assert_eq!((big.pa, big.size), (PhysAddr(0x25_4321), PageSize::M2));
//! assert_eq!(big.flags.to_string(), "r-x kernel");
//!
//! let hole = translate(&mem, &mmu, &roots, VirtAddr(0x7000_0000));
//! assert!(matches!(hole, Err(Error::NotPresent { .. })));
//!
//! // Virtual memory as a core view: every helper reads through the page tables.
//! let virt = VirtualView::new(&mem, mmu, roots);
//! assert_eq!(virt.read_cstr(VirtAddr(0x40_2123), 16)?, "memlens");
//! # Ok::<(), Error>(())
//! ```
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

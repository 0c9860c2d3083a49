//! Result types of translation: [`Roots`], [`PageFlags`], [`Translation`].

use std::fmt;

use memlens_core::{PageSize, PhysAddr, VirtAddr};
use serde::{Deserialize, Serialize};

use crate::mmu::{R_KERNEL, R_NXK, R_NXU, R_RO};

/// Page-table roots of one address space, as the CPU holds them (register values: flag
/// and ASID/PCID bits are masked by the [`Mmu`](crate::Mmu)).
///
/// x86 has one root for both halves ([`Roots::single`]); aarch64 has TTBR0 for the lower
/// (user) half and TTBR1 for the upper (kernel) half ([`Roots::split`]). MMUs with one
/// root use `lower` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Roots {
    /// Root of the lower half (x86: the only root; aarch64: TTBR0).
    pub lower: PhysAddr,
    /// Root of the upper half (aarch64: TTBR1; x86: equal to `lower`).
    pub upper: PhysAddr,
}

impl Roots {
    /// One root for the whole address space (x86 CR3).
    pub const fn single(root: PhysAddr) -> Self {
        Self {
            lower: root,
            upper: root,
        }
    }
    /// Separate roots for the lower (TTBR0) and upper (TTBR1) halves.
    pub const fn split(lower: PhysAddr, upper: PhysAddr) -> Self {
        Self { lower, upper }
    }

    /// Linux x86 with page-table isolation (KPTI, Intel CPUs): a CR3 captured in user
    /// mode points at the *user copy* of the PGD, 4 KiB above the 8 KiB-aligned kernel
    /// PGD, whose kernel half maps only the entry trampoline and `cpu_entry_area`. This
    /// returns the roots of the *kernel copy* (bit 12 cleared), which maps the whole
    /// kernel and the same user half (PTI sets NX on its user entries). Harmless on a
    /// kernel root (bit 12 is already clear there); wrong only for a non-Linux root that
    /// happens to have bit 12 set — so it is never applied implicitly.
    pub const fn x86_kpti_kernel(self) -> Self {
        Self {
            lower: PhysAddr(self.lower.0 & !(1 << 12)),
            upper: PhysAddr(self.upper.0 & !(1 << 12)),
        }
    }
}

/// Effective permissions of a mapping, combined over every level of the walk (writable
/// and user only if every level allows; no-execute if any level forbids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PageFlags {
    /// Writes are allowed.
    pub writable: bool,
    /// User mode (ring 3 / EL0) may access the page.
    pub user: bool,
    /// Execution is forbidden (for the page's own privilege: UXN for user pages and PXN
    /// for kernel pages on aarch64).
    pub nx: bool,
}

impl PageFlags {
    /// Flags from the restriction bits collected along a walk.
    #[inline(always)]
    pub(crate) const fn from_restrictions(r: u8) -> Self {
        let user = r & R_KERNEL == 0;
        Self {
            writable: r & R_RO == 0,
            user,
            nx: if user { r & R_NXU != 0 } else { r & R_NXK != 0 },
        }
    }
    /// Packs into 3 bits (writable = 1, user = 2, nx = 4).
    #[inline(always)]
    pub const fn bits(self) -> u8 {
        self.writable as u8 | (self.user as u8) << 1 | (self.nx as u8) << 2
    }
    /// Unpacks [`PageFlags::bits`].
    #[inline(always)]
    pub const fn from_bits(b: u8) -> Self {
        Self {
            writable: b & 1 != 0,
            user: b & 2 != 0,
            nx: b & 4 != 0,
        }
    }
}

impl fmt::Display for PageFlags {
    /// `rwx user`, `r-- kernel`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "r{}{} {}",
            if self.writable { 'w' } else { '-' },
            if self.nx { '-' } else { 'x' },
            if self.user { "user" } else { "kernel" }
        )
    }
}

/// A successful translation of one virtual address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Translation {
    /// The virtual address asked for.
    pub va: VirtAddr,
    /// The physical address it maps to.
    pub pa: PhysAddr,
    /// Size of the page that maps it.
    pub size: PageSize,
    /// Effective permissions.
    pub flags: PageFlags,
}

impl Translation {
    /// First virtual address of the page.
    pub fn page_va(&self) -> VirtAddr {
        self.va.align_down(self.size.bytes())
    }
    /// First physical address of the page.
    pub fn page_pa(&self) -> PhysAddr {
        self.pa.align_down(self.size.bytes())
    }
    /// Bytes from `va` to the end of its page.
    pub fn remaining(&self) -> u64 {
        self.size.bytes() - self.va.offset_in(self.size.bytes())
    }
}

/// `PageSize` from a shift that the MMU produced (always a power of two below 2^64).
#[inline(always)]
pub(crate) fn page_size(shift: u8) -> PageSize {
    PageSize::new(1u64 << (shift & 63)).unwrap_or(PageSize::K4)
}

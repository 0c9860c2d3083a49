//! MMU descriptions. **Key decision: an architecture is a value, not a code path.** A
//! [`Mmu`] lists its levels (index bits, shift, whether a walk may end there in a large
//! page), the entry size, how virtual addresses are laid out (flat 32-bit, sign-extended,
//! or split into TTBR0/TTBR1 halves), and bit rules ([`BitRule`]) that say when an entry is
//! valid, when it maps a large page, and when it removes write, user or execute
//! permission. The walker, the page map and the TLB read only these fields, so x86,
//! PAE, x86-64 (4 and 5 levels) and every aarch64 granule share one walker.
//!
//! Level numbers count from the leaf: level 1 is the last level (x86 PT, aarch64 L3), so
//! `Error::NotPresent { level: 4, .. }` on x86-64 means the PML4 entry was not present.
//!
//! The module is split by responsibility: this file holds the types and the per-entry
//! lookup the walker calls ([`Mmu::decode`], [`Mmu::is_canonical`], [`Mmu::mask_root`]);
//! `tables` holds the MMU descriptions as data (the constructors and [`ARCH_NAMES`]);
//! `registers` decodes a vCPU's registers into an MMU and roots ([`Mmu::from_registers`])
//! through core's typed registers ([`memlens_core::cpu::regs`]). Both children use only
//! this file's types, never each other.

use memlens_core::cpu::Ttbr;
use memlens_core::Arch;
use serde::Serialize;

use crate::error::ArchError;
use crate::types::Roots;

mod registers;
mod tables;

pub use memlens_core::cpu::Granule;
pub use tables::ARCH_NAMES;

/// Most levels any supported MMU has (x86-64 LA57 has 5; room for one more).
pub const MAX_LEVELS: usize = 6;

/// A test on an entry: it matches when `entry & mask == value`. [`BitRule::NEVER`] never
/// matches (mask 0, value 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BitRule {
    /// Bits looked at.
    pub mask: u64,
    /// Required value of those bits.
    pub value: u64,
}

impl BitRule {
    /// A rule that never matches.
    pub const NEVER: Self = Self { mask: 0, value: 1 };
    /// A rule that always matches.
    pub const ALWAYS: Self = Self { mask: 0, value: 0 };
    /// Matches when bit `b` is set.
    pub const fn set(b: u32) -> Self {
        Self {
            mask: 1 << b,
            value: 1 << b,
        }
    }
    /// Matches when bit `b` is clear.
    pub const fn clear(b: u32) -> Self {
        Self {
            mask: 1 << b,
            value: 0,
        }
    }
    /// Whether `entry` matches.
    #[inline(always)]
    pub const fn matches(self, entry: u64) -> bool {
        entry & self.mask == self.value
    }
}

/// A permission restriction, tested on table entries (applies to everything below) and on
/// leaf entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Restriction {
    /// Tested on entries that point to a further table.
    pub table: BitRule,
    /// Tested on entries that map a page.
    pub leaf: BitRule,
}

impl Restriction {
    /// A restriction that never applies.
    pub const NONE: Self = Self {
        table: BitRule::NEVER,
        leaf: BitRule::NEVER,
    };
    /// The same rule on tables and leaves.
    pub const fn both(r: BitRule) -> Self {
        Self { table: r, leaf: r }
    }
}

/// Where physical-address bits above the normal mask come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PaHigh {
    /// Nowhere.
    None,
    /// x86 32-bit PSE-36: a 4 MiB page's PA\[39:32\] is in entry bits 20:13.
    Pse36,
    /// aarch64 64 KiB granule with 52-bit PA: PA\[51:48\] is in descriptor bits 15:12.
    Aarch64Bits15To12,
    /// aarch64 4/16 KiB granules with FEAT_LPA2 (`TCR_EL1.DS` = 1): PA\[51:50\] is in
    /// descriptor bits 9:8 (the shareability field of the older format).
    Aarch64Bits9To8,
}

impl PaHigh {
    /// The high physical-address bits that entry `e` carries in this format.
    #[inline(always)]
    fn aarch64_bits(self, e: u64) -> u64 {
        match self {
            PaHigh::Aarch64Bits15To12 => ((e >> 12) & 0xf) << 48,
            PaHigh::Aarch64Bits9To8 => ((e >> 8) & 0x3) << 50,
            PaHigh::None | PaHigh::Pse36 => 0,
        }
    }
}

/// The decoding rules of one MMU's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EntryRules {
    /// The entry is present / valid.
    pub valid: BitRule,
    /// At a level above the last: the entry maps a large page (block) instead of a table.
    pub large: BitRule,
    /// At the last level: the entry must also match this to map a page.
    pub last_ok: BitRule,
    /// Writing is forbidden.
    pub read_only: Restriction,
    /// User (EL0 / ring 3) access is forbidden.
    pub kernel_only: Restriction,
    /// Execution is forbidden for user pages.
    pub nx_user: Restriction,
    /// Execution is forbidden for kernel pages.
    pub nx_kernel: Restriction,
    /// Physical-address bits of a table entry.
    pub table_addr_mask: u64,
    /// Physical-address bits of a leaf entry (the page-offset bits are cleared on top).
    pub leaf_addr_mask: u64,
    /// Extra high physical-address bits.
    pub pa_high: PaHigh,
}

/// How virtual addresses are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VaLayout {
    /// 32-bit addresses; bits 63:32 must be zero.
    Flat32,
    /// One root; bits above `va_bits - 1` must copy bit `va_bits - 1` (x86-64).
    SignExtended,
    /// Two roots: addresses with top bits all 0 use the lower root (TTBR0), all 1 the
    /// upper root (TTBR1); anything else is not canonical (aarch64).
    Split,
}

/// One level of a page table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Level {
    /// Level number, 1 = last.
    pub number: u8,
    /// Lowest virtual-address bit of this level's index (= log2 of what one entry maps).
    pub shift: u8,
    /// Number of index bits (the table has `2^bits` entries).
    pub bits: u8,
    /// Whether an entry at this level may map a large page (only meaningful above the
    /// last level).
    pub large: bool,
    /// Whether permission bits are defined at this level (not in PAE's PDPT).
    pub perms: bool,
}

impl Level {
    const fn new(number: u8, shift: u8, bits: u8, large: bool) -> Self {
        Self {
            number,
            shift,
            bits,
            large,
            perms: true,
        }
    }
    /// Number of entries in a table of this level.
    #[inline]
    pub const fn entries(&self) -> u64 {
        1 << self.bits
    }
    /// Index of `va` in a table of this level.
    #[inline(always)]
    pub const fn index(&self, va: u64) -> u64 {
        (va >> self.shift) & ((1 << self.bits) - 1)
    }
    /// Bytes mapped by one entry.
    #[inline]
    pub const fn entry_span(&self) -> u64 {
        1 << self.shift
    }
}

/// The outcome of decoding one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Continue at the table at this physical address.
    Table(u64),
    /// The entry maps a page: physical base and log2 of its size.
    Leaf {
        /// Physical address of the page.
        base: u64,
        /// log2 of the page size.
        shift: u8,
    },
    /// The entry is not present.
    NotPresent,
    /// The entry cannot be followed.
    Bad(&'static str),
}

/// Restriction bits collected along a walk (see [`Mmu::restrictions`]).
pub(crate) const R_RO: u8 = 1;
pub(crate) const R_KERNEL: u8 = 2;
pub(crate) const R_NXU: u8 = 4;
pub(crate) const R_NXK: u8 = 8;

/// An MMU description. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mmu {
    name: &'static str,
    #[serde(skip)]
    arch: Arch,
    entry_bytes: u8,
    granule_shift: u8,
    va_bits: u8,
    layout: VaLayout,
    root_mask: u64,
    levels: [Level; MAX_LEVELS],
    nlevels: u8,
    rules: EntryRules,
}

impl Mmu {
    /// The name (one of [`ARCH_NAMES`]).
    pub const fn name(&self) -> &'static str {
        self.name
    }
    /// The core architecture.
    pub const fn arch(&self) -> Arch {
        self.arch
    }
    /// Bytes per entry (4 or 8).
    pub const fn entry_bytes(&self) -> u8 {
        self.entry_bytes
    }
    /// log2 of the smallest page size.
    pub const fn granule_shift(&self) -> u8 {
        self.granule_shift
    }
    /// The smallest page size in bytes.
    pub const fn granule(&self) -> u64 {
        1 << self.granule_shift
    }
    /// Virtual-address bits per half (32 for x86).
    pub const fn va_bits(&self) -> u8 {
        self.va_bits
    }
    /// The virtual-address layout.
    pub const fn layout(&self) -> VaLayout {
        self.layout
    }
    /// The levels, top first.
    pub fn levels(&self) -> &[Level] {
        &self.levels[..usize::from(self.nlevels)]
    }
    /// The entry rules.
    pub const fn rules(&self) -> &EntryRules {
        &self.rules
    }
    /// Bits of a root register value that form the table address.
    pub const fn root_mask(&self) -> u64 {
        self.root_mask
    }
    /// Page sizes this MMU can map, smallest first.
    pub fn page_sizes(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .levels()
            .iter()
            .enumerate()
            .filter(|(i, l)| l.large || *i + 1 == usize::from(self.nlevels))
            .map(|(_, l)| l.entry_span())
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether `va` is canonical (translatable at all).
    #[inline(always)]
    pub const fn is_canonical(&self, va: u64) -> bool {
        match self.layout {
            VaLayout::Flat32 => va >> 32 == 0,
            VaLayout::SignExtended => {
                let s = 64 - self.va_bits as u32;
                (((va << s) as i64) >> s) as u64 == va
            }
            VaLayout::Split => {
                let top = va >> self.va_bits;
                top == 0 || top == (u64::MAX >> self.va_bits)
            }
        }
    }

    /// Whether `va` lies in the upper half (the kernel half; TTBR1 on aarch64).
    #[inline(always)]
    pub const fn is_upper(&self, va: u64) -> bool {
        match self.layout {
            VaLayout::Flat32 => false,
            _ => va >> 63 != 0,
        }
    }

    /// The table address of the root that translates `va` (masked and aligned).
    #[inline(always)]
    pub fn root_for(&self, roots: &Roots, va: u64) -> u64 {
        let raw = if self.layout == VaLayout::Split && self.is_upper(va) {
            roots.upper.0
        } else {
            roots.lower.0
        };
        self.mask_root(raw)
    }

    /// A root register value reduced to its table address.
    #[inline(always)]
    pub fn mask_root(&self, raw: u64) -> u64 {
        let top = self.levels[0];
        let table_bytes = (1u64 << top.bits) * u64::from(self.entry_bytes);
        let base = raw & self.root_mask & !(table_bytes - 1);
        match self.rules.pa_high {
            // 52-bit physical roots: TTBR bits 5:2 hold BADDR[51:48].
            PaHigh::Aarch64Bits15To12 | PaHigh::Aarch64Bits9To8 => {
                base | Ttbr::from(raw).baddr_51_48() << 48
            }
            PaHigh::None | PaHigh::Pse36 => base,
        }
    }

    /// Decodes the entry `e` found at level index `li` (0 = top).
    #[inline(always)]
    pub fn decode(&self, li: usize, e: u64) -> Step {
        let r = &self.rules;
        if !r.valid.matches(e) {
            return Step::NotPresent;
        }
        let last = li + 1 >= usize::from(self.nlevels);
        let lv = self.levels[li.min(MAX_LEVELS - 1)];
        if last {
            if !r.last_ok.matches(e) {
                return Step::Bad("reserved descriptor type at the last level");
            }
            return Step::Leaf {
                base: self.leaf_base(e, lv.shift, false),
                shift: lv.shift,
            };
        }
        if r.large.matches(e) {
            if !lv.large {
                return Step::Bad("large-page bit set at a level without large pages");
            }
            return Step::Leaf {
                base: self.leaf_base(e, lv.shift, true),
                shift: lv.shift,
            };
        }
        Step::Table((e & r.table_addr_mask) | r.pa_high.aarch64_bits(e))
    }

    #[inline(always)]
    fn leaf_base(&self, e: u64, shift: u8, large: bool) -> u64 {
        let r = &self.rules;
        let mut b = e & r.leaf_addr_mask & !((1u64 << shift) - 1);
        match r.pa_high {
            PaHigh::None => {}
            PaHigh::Pse36 => {
                if large {
                    b |= ((e >> 13) & 0xff) << 32;
                }
            }
            PaHigh::Aarch64Bits15To12 | PaHigh::Aarch64Bits9To8 => b |= r.pa_high.aarch64_bits(e),
        }
        b
    }

    /// The restriction bits (`R_*`) that entry `e` at level index `li` adds.
    #[inline(always)]
    pub(crate) fn restrictions(&self, li: usize, e: u64, leaf: bool) -> u8 {
        if !self.levels[li.min(MAX_LEVELS - 1)].perms {
            return 0;
        }
        let r = &self.rules;
        let pick = |x: Restriction| if leaf { x.leaf } else { x.table };
        let mut out = 0;
        if pick(r.read_only).matches(e) {
            out |= R_RO;
        }
        if pick(r.kernel_only).matches(e) {
            out |= R_KERNEL;
        }
        if pick(r.nx_user).matches(e) {
            out |= R_NXU;
        }
        if pick(r.nx_kernel).matches(e) {
            out |= R_NXK;
        }
        out
    }

    /// Reads entry `i` of a little-endian table held in `buf`.
    #[inline(always)]
    pub(crate) fn entry_at(&self, buf: &[u8], off: usize) -> Option<u64> {
        if self.entry_bytes == 8 {
            let b: [u8; 8] = buf.get(off..off + 8)?.try_into().ok()?;
            Some(u64::from_le_bytes(b))
        } else {
            let b: [u8; 4] = buf.get(off..off + 4)?.try_into().ok()?;
            Some(u64::from(u32::from_le_bytes(b)))
        }
    }

    /// The virtual address with index bits `va` completed for its half: sign-extends
    /// (x86-64) or fills the upper bits (aarch64 upper half).
    #[inline]
    pub(crate) fn complete_va(&self, va: u64, upper: bool) -> u64 {
        match self.layout {
            VaLayout::Flat32 => va & 0xffff_ffff,
            VaLayout::SignExtended => {
                let s = 64 - u32::from(self.va_bits);
                (((va << s) as i64) >> s) as u64
            }
            VaLayout::Split => {
                let low = va & ((1u64 << self.va_bits) - 1);
                if upper {
                    low | !((1u64 << self.va_bits) - 1)
                } else {
                    low
                }
            }
        }
    }
}

impl std::str::FromStr for Mmu {
    type Err = ArchError;
    fn from_str(s: &str) -> Result<Self, ArchError> {
        Self::from_name(s)
    }
}

impl std::fmt::Display for Mmu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

//! The MMU descriptions as data. **Key decision: every supported MMU is a constructor
//! returning a plain [`Mmu`] value** (levels, entry rules, masks); nothing here walks a
//! table. x86, PAE and x86-64 are constants; aarch64 is computed from a granule and a
//! virtual-address size, because its level count and top-level width follow from them.

use memlens_core::Arch;

use super::{BitRule, EntryRules, Granule, Level, Mmu, PaHigh, Restriction, VaLayout, MAX_LEVELS};
use crate::error::ArchError;

/// Every architecture name accepted by [`Mmu::from_name`].
pub const ARCH_NAMES: &[&str] = &[
    "x86_64",
    "x86_64-la57",
    "x86",
    "x86-pae",
    "aarch64",
    "aarch64-16k",
    "aarch64-64k",
    "aarch64-64k-52",
    "aarch64-52",
    "aarch64-16k-52",
];

const X86_64_ADDR: u64 = 0x000f_ffff_ffff_f000;

const X86_64_RULES: EntryRules = EntryRules {
    valid: BitRule::set(0),
    large: BitRule::set(7),
    last_ok: BitRule::ALWAYS,
    read_only: Restriction::both(BitRule::clear(1)),
    kernel_only: Restriction::both(BitRule::clear(2)),
    nx_user: Restriction::both(BitRule::set(63)),
    nx_kernel: Restriction::both(BitRule::set(63)),
    table_addr_mask: X86_64_ADDR,
    leaf_addr_mask: X86_64_ADDR,
    pa_high: PaHigh::None,
};

const fn pad(levels: &[Level]) -> [Level; MAX_LEVELS] {
    let mut out = [Level::new(0, 0, 0, false); MAX_LEVELS];
    let mut i = 0;
    while i < levels.len() {
        out[i] = levels[i];
        i += 1;
    }
    out
}

impl Mmu {
    /// x86-64 with 4-level paging (48-bit addresses; 4 KiB, 2 MiB and 1 GiB pages).
    pub const fn x86_64() -> Self {
        Self {
            name: "x86_64",
            arch: Arch::X86_64,
            entry_bytes: 8,
            granule_shift: 12,
            va_bits: 48,
            layout: VaLayout::SignExtended,
            root_mask: X86_64_ADDR,
            levels: pad(&[
                Level::new(4, 39, 9, false),
                Level::new(3, 30, 9, true),
                Level::new(2, 21, 9, true),
                Level::new(1, 12, 9, false),
            ]),
            nlevels: 4,
            rules: X86_64_RULES,
        }
    }

    /// x86-64 with 5-level paging (CR4.LA57; 57-bit addresses).
    pub const fn x86_64_la57() -> Self {
        Self {
            name: "x86_64-la57",
            arch: Arch::X86_64,
            entry_bytes: 8,
            granule_shift: 12,
            va_bits: 57,
            layout: VaLayout::SignExtended,
            root_mask: X86_64_ADDR,
            levels: pad(&[
                Level::new(5, 48, 9, false),
                Level::new(4, 39, 9, false),
                Level::new(3, 30, 9, true),
                Level::new(2, 21, 9, true),
                Level::new(1, 12, 9, false),
            ]),
            nlevels: 5,
            rules: X86_64_RULES,
        }
    }

    /// 32-bit x86 without PAE: 4-byte entries, 4 KiB and 4 MiB (PSE, PSE-36) pages, no NX.
    pub const fn x86() -> Self {
        Self {
            name: "x86",
            arch: Arch::X86,
            entry_bytes: 4,
            granule_shift: 12,
            va_bits: 32,
            layout: VaLayout::Flat32,
            root_mask: 0xffff_f000,
            levels: pad(&[Level::new(2, 22, 10, true), Level::new(1, 12, 10, false)]),
            nlevels: 2,
            rules: EntryRules {
                nx_user: Restriction::NONE,
                nx_kernel: Restriction::NONE,
                table_addr_mask: 0xffff_f000,
                leaf_addr_mask: 0xffff_f000,
                pa_high: PaHigh::Pse36,
                ..X86_64_RULES
            },
        }
    }

    /// 32-bit x86 with PAE: 3 levels (a 4-entry PDPT), 8-byte entries, 2 MiB pages, NX.
    /// CR3 is 32-byte aligned.
    pub const fn x86_pae() -> Self {
        let mut pdpt = Level::new(3, 30, 2, false);
        pdpt.perms = false;
        Self {
            name: "x86-pae",
            arch: Arch::X86,
            entry_bytes: 8,
            granule_shift: 12,
            va_bits: 32,
            layout: VaLayout::Flat32,
            root_mask: 0xffff_ffe0,
            levels: pad(&[
                pdpt,
                Level::new(2, 21, 9, true),
                Level::new(1, 12, 9, false),
            ]),
            nlevels: 3,
            rules: X86_64_RULES,
        }
    }

    /// aarch64 (VMSAv8-64 stage 1, EL1&0) with a granule and a virtual-address size (the
    /// same for both halves: 64 - TnSZ). 25..=48 bits for every granule; 52 bits with the
    /// 64 KiB granule (FEAT_LVA, with 52-bit output addresses, FEAT_LPA), and with the 4 and
    /// 16 KiB granules in the FEAT_LPA2 format (`TCR_EL1.DS` = 1: one more level with
    /// 4 KiB, PA\[51:50\] in descriptor bits 9:8, blocks one level higher).
    ///
    /// Descriptors: bit 0 valid; bit 1 table (above the last level) or page (at the last
    /// level; 0 there is reserved); AP\[2\] (bit 7) read-only, AP\[1\] (bit 6) EL0 access;
    /// UXN bit 54, PXN bit 53; table descriptors' APTable (62:61), UXNTable (60) and
    /// PXNTable (59) restrict everything below. A page with DBM (bit 51) set counts as
    /// writable even when AP\[2\] is set: Linux uses DBM as its software write bit and
    /// keeps clean writable pages read-only until the first write.
    pub fn aarch64(granule: Granule, va_bits: u8) -> Result<Self, ArchError> {
        let g = granule.shift();
        let b = g - 3;
        // 52 bits: FEAT_LVA with 64 KiB pages, FEAT_LPA2 (TCR_EL1.DS = 1) with 4/16 KiB.
        if !((25..=48).contains(&va_bits) || va_bits == 52) {
            return Err(ArchError::InvalidConfig {
                arch: "aarch64",
                what: format!(
                    "{va_bits}-bit virtual addresses with a {} KiB granule (valid: 25..=48 or 52)",
                    1u32 << (g - 10),
                ),
            });
        }
        let lpa2 = va_bits == 52 && granule != Granule::K64;
        let n = (va_bits - g).div_ceil(b);
        let mut levels = [Level::new(0, 0, 0, false); MAX_LEVELS];
        for i in 0..n {
            // i = 0 is the top level.
            let number = n - i;
            let shift = g + (number - 1) * b;
            let bits = if i == 0 { va_bits - shift } else { b };
            // Blocks: 2 MiB/1 GiB (4 KiB), 32 MiB (16 KiB), 512 MiB (64 KiB); LPA2 adds
            // 512 GiB (4 KiB, level 0) and 64 GiB (16 KiB, level 1) blocks.
            let large = match granule {
                Granule::K4 => number == 2 || number == 3 || (lpa2 && number == 4),
                Granule::K16 => number == 2 || (lpa2 && number == 3),
                Granule::K64 => number == 2,
            };
            levels[usize::from(i)] = Level::new(number, shift, bits, large);
        }
        // With LPA2 the output address field ends at bit 49 (bits 51:50 sit in 9:8).
        let addr_top: u64 = if lpa2 {
            0x0003_ffff_ffff_ffff
        } else {
            0x0000_ffff_ffff_ffff
        };
        let addr = addr_top & !((1u64 << g) - 1);
        let (name, pa_high) = match (granule, va_bits) {
            (Granule::K4, 52) => ("aarch64-52", PaHigh::Aarch64Bits9To8),
            (Granule::K4, _) => ("aarch64", PaHigh::None),
            (Granule::K16, 52) => ("aarch64-16k-52", PaHigh::Aarch64Bits9To8),
            (Granule::K16, _) => ("aarch64-16k", PaHigh::None),
            (Granule::K64, 52) => ("aarch64-64k-52", PaHigh::Aarch64Bits15To12),
            (Granule::K64, _) => ("aarch64-64k", PaHigh::None),
        };
        Ok(Self {
            name,
            arch: Arch::Aarch64,
            entry_bytes: 8,
            granule_shift: g,
            va_bits,
            layout: VaLayout::Split,
            root_mask: 0x0000_ffff_ffff_fffe,
            levels,
            nlevels: n,
            rules: EntryRules {
                valid: BitRule::set(0),
                large: BitRule::clear(1),
                last_ok: BitRule::set(1),
                read_only: Restriction {
                    table: BitRule::set(62),
                    leaf: BitRule {
                        mask: (1 << 7) | (1 << 51),
                        value: 1 << 7,
                    },
                },
                kernel_only: Restriction {
                    table: BitRule::set(61),
                    leaf: BitRule::clear(6),
                },
                nx_user: Restriction {
                    table: BitRule::set(60),
                    leaf: BitRule::set(54),
                },
                nx_kernel: Restriction {
                    table: BitRule::set(59),
                    leaf: BitRule::set(53),
                },
                table_addr_mask: addr,
                leaf_addr_mask: addr,
                pa_high,
            },
        })
    }

    /// The MMU for a name of [`ARCH_NAMES`] (`aarch64*` names use 48-bit halves, or 52 for
    /// the `-52` ones).
    pub fn from_name(name: &str) -> Result<Self, ArchError> {
        Ok(match name {
            "x86_64" | "x86-64" | "amd64" => Self::x86_64(),
            "x86_64-la57" | "x86-64-la57" => Self::x86_64_la57(),
            "x86" | "i386" => Self::x86(),
            "x86-pae" | "i386-pae" => Self::x86_pae(),
            "aarch64" | "arm64" => Self::aarch64(Granule::K4, 48)?,
            "aarch64-16k" => Self::aarch64(Granule::K16, 48)?,
            "aarch64-64k" => Self::aarch64(Granule::K64, 48)?,
            "aarch64-64k-52" => Self::aarch64(Granule::K64, 52)?,
            "aarch64-52" => Self::aarch64(Granule::K4, 52)?,
            "aarch64-16k-52" => Self::aarch64(Granule::K16, 52)?,
            _ => {
                return Err(ArchError::UnknownArch {
                    name: name.to_string(),
                    valid: ARCH_NAMES,
                })
            }
        })
    }
}

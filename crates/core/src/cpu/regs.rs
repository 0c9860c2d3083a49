//! Typed control registers. **Key decision: a register stays the `u64` the CPU holds,
//! wrapped in a newtype whose named accessors are the only place a bit number is
//! written.** Connectors keep storing plain `u64`s in [`X86Registers`] and
//! [`Aarch64Registers`] (their serialized form and the plugin ABI do not change); code
//! that asks what a register *means* converts with `From<u64>` and reads fields by name:
//! `Cr4::from(r.cr4).la57()`, `TcrEl1::from(tcr).tg1()`.
//!
//! Each accessor documents its bit numbers and meaning from the Intel SDM (vol. 3A, §2.5
//! "Control Registers" and §2.2.1 "Extended Feature Enable Register") or the Arm ARM
//! (DDI 0487, "AArch64 System register descriptions"). Only fields memlens reads or
//! reports are named; [`raw`](Cr4::raw) gives the rest.
//!
//! [`X86Registers`]: super::X86Registers
//! [`Aarch64Registers`]: super::Aarch64Registers

use serde::Serialize;

use crate::addr::PhysAddr;

/// Whether bit `b` of `v` is set.
#[inline(always)]
const fn bit(v: u64, b: u32) -> bool {
    (v >> b) & 1 != 0
}

/// Bits `lo..lo + width` of `v`, shifted down.
#[inline(always)]
const fn field(v: u64, lo: u32, width: u32) -> u64 {
    (v >> lo) & ((1 << width) - 1)
}

/// Declares a register newtype with `From<u64>`, `From<Self> for u64`, `new` and `raw`.
macro_rules! register {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw register value.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }
            /// The raw register value, every bit as the CPU holds it.
            pub const fn raw(self) -> u64 {
                self.0
            }
        }

        impl From<u64> for $name {
            fn from(raw: u64) -> Self {
                Self(raw)
            }
        }

        impl From<$name> for u64 {
            fn from(r: $name) -> u64 {
                r.0
            }
        }

        impl std::fmt::LowerHex for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

register!(
    /// x86 CR0: system control flags (Intel SDM vol. 3A, §2.5).
    Cr0
);

impl Cr0 {
    /// Bit 0, PE (Protection Enable): protected mode is on.
    pub const fn pe(self) -> bool {
        bit(self.0, 0)
    }
    /// Bit 16, WP (Write Protect): supervisor writes honour read-only pages.
    pub const fn wp(self) -> bool {
        bit(self.0, 16)
    }
    /// Bit 31, PG (Paging): paging is on (requires PE).
    pub const fn pg(self) -> bool {
        bit(self.0, 31)
    }
}

register!(
    /// x86 CR3: the page-table root (Intel SDM vol. 3A, §4.5 "4-Level Paging and 5-Level
    /// Paging").
    Cr3
);

impl Cr3 {
    /// Bits 51:12: the physical address of the top table (PML4 / PML5) in 4-level and
    /// 5-level paging; bits 11:0, which hold the PCID or the PWT/PCD flags, and bits 63:52
    /// (bit 63 is the "no flush" hint of `MOV CR3`) are cleared.
    pub const fn base(self) -> PhysAddr {
        PhysAddr(self.0 & 0x000f_ffff_ffff_f000)
    }
    /// Bits 11:0, the PCID (process-context identifier) when CR4.PCIDE = 1; otherwise bit 3
    /// is PWT and bit 4 is PCD.
    pub const fn pcid(self) -> u16 {
        field(self.0, 0, 12) as u16
    }
}

register!(
    /// x86 CR4: architectural extensions (Intel SDM vol. 3A, §2.5).
    Cr4
);

impl Cr4 {
    /// Bit 4, PSE (Page Size Extensions): 4 MiB pages in 32-bit (non-PAE) paging.
    pub const fn pse(self) -> bool {
        bit(self.0, 4)
    }
    /// Bit 5, PAE (Physical Address Extension): 64-bit entries; required for long mode.
    /// With EFER.LMA = 0 it selects 32-bit PAE paging (3 levels).
    pub const fn pae(self) -> bool {
        bit(self.0, 5)
    }
    /// Bit 7, PGE (Page Global Enable): global pages survive CR3 writes in the TLB.
    pub const fn pge(self) -> bool {
        bit(self.0, 7)
    }
    /// Bit 12, LA57 (57-bit linear addresses): 5-level paging in long mode.
    pub const fn la57(self) -> bool {
        bit(self.0, 12)
    }
    /// Bit 17, PCIDE (PCID Enable): CR3 bits 11:0 are a process-context identifier.
    pub const fn pcide(self) -> bool {
        bit(self.0, 17)
    }
    /// Bit 20, SMEP (Supervisor Mode Execution Prevention).
    pub const fn smep(self) -> bool {
        bit(self.0, 20)
    }
    /// Bit 21, SMAP (Supervisor Mode Access Prevention).
    pub const fn smap(self) -> bool {
        bit(self.0, 21)
    }
    /// Bit 22, PKE (Protection Keys for user pages): entry bits 62:59 are a key.
    pub const fn pke(self) -> bool {
        bit(self.0, 22)
    }
}

register!(
    /// x86 IA32_EFER MSR (0xC000_0080): extended features (Intel SDM vol. 3A, §2.2.1).
    Efer
);

impl Efer {
    /// Bit 0, SCE (System Call Extensions): `SYSCALL`/`SYSRET` enabled.
    pub const fn sce(self) -> bool {
        bit(self.0, 0)
    }
    /// Bit 8, LME (Long Mode Enable): long mode requested by software.
    pub const fn lme(self) -> bool {
        bit(self.0, 8)
    }
    /// Bit 10, LMA (Long Mode Active): set by the CPU when LME and CR0.PG are both on —
    /// the CPU translates with 4- or 5-level paging.
    pub const fn lma(self) -> bool {
        bit(self.0, 10)
    }
    /// Bit 11, NXE (No-Execute Enable): entry bit 63 is XD (execute-disable) instead of
    /// reserved.
    pub const fn nxe(self) -> bool {
        bit(self.0, 11)
    }
}

/// aarch64 page sizes ("translation granules").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Granule {
    /// 4 KiB pages; blocks of 1 GiB and 2 MiB.
    K4,
    /// 16 KiB pages; blocks of 32 MiB.
    K16,
    /// 64 KiB pages; blocks of 512 MiB.
    K64,
}

impl Granule {
    /// log2 of the page size.
    pub const fn shift(self) -> u8 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }
}

register!(
    /// aarch64 TCR_EL1: the EL1&0 translation control register (Arm ARM, DDI 0487). Fields
    /// ending in 0 describe the lower half (TTBR0_EL1), fields ending in 1 the upper half
    /// (TTBR1_EL1).
    TcrEl1
);

impl TcrEl1 {
    /// Bits 5:0, T0SZ: the lower half spans `64 - T0SZ` address bits.
    pub const fn t0sz(self) -> u8 {
        field(self.0, 0, 6) as u8
    }
    /// Bit 7, EPD0: walks through TTBR0_EL1 are disabled (a TLB miss faults).
    pub const fn epd0(self) -> bool {
        bit(self.0, 7)
    }
    /// Bits 15:14, TG0: the lower half's granule (0b00 = 4 KiB, 0b01 = 64 KiB, 0b10 =
    /// 16 KiB); `None` for the reserved 0b11.
    pub const fn tg0(self) -> Option<Granule> {
        match field(self.0, 14, 2) {
            0 => Some(Granule::K4),
            1 => Some(Granule::K64),
            2 => Some(Granule::K16),
            _ => None,
        }
    }
    /// Bits 21:16, T1SZ: the upper half spans `64 - T1SZ` address bits.
    pub const fn t1sz(self) -> u8 {
        field(self.0, 16, 6) as u8
    }
    /// Bit 22, A1: the ASID comes from TTBR1_EL1 (otherwise from TTBR0_EL1).
    pub const fn a1(self) -> bool {
        bit(self.0, 22)
    }
    /// Bit 23, EPD1: walks through TTBR1_EL1 are disabled (a TLB miss faults).
    pub const fn epd1(self) -> bool {
        bit(self.0, 23)
    }
    /// Bits 31:30, TG1: the upper half's granule (0b01 = 16 KiB, 0b10 = 4 KiB, 0b11 =
    /// 64 KiB — not the TG0 encoding); `None` for the reserved 0b00.
    pub const fn tg1(self) -> Option<Granule> {
        match field(self.0, 30, 2) {
            1 => Some(Granule::K16),
            2 => Some(Granule::K4),
            3 => Some(Granule::K64),
            _ => None,
        }
    }
    /// Bits 34:32, IPS: the intermediate physical address size, encoded (see
    /// [`ips_bits`](Self::ips_bits)).
    pub const fn ips(self) -> u8 {
        field(self.0, 32, 3) as u8
    }
    /// The output address size that [`ips`](Self::ips) selects: 32, 36, 40, 42, 44, 48 or
    /// 52 bits (0b000–0b110); `None` for 0b111 (56 bits with FEAT_D128, not readable by
    /// memlens).
    pub const fn ips_bits(self) -> Option<u8> {
        match self.ips() {
            0 => Some(32),
            1 => Some(36),
            2 => Some(40),
            3 => Some(42),
            4 => Some(44),
            5 => Some(48),
            6 => Some(52),
            _ => None,
        }
    }
    /// Bit 36, AS: 16-bit ASIDs (otherwise 8-bit).
    pub const fn as16(self) -> bool {
        bit(self.0, 36)
    }
    /// Bit 37, TBI0: the top byte of lower-half addresses is ignored (tagged pointers).
    pub const fn tbi0(self) -> bool {
        bit(self.0, 37)
    }
    /// Bit 38, TBI1: the top byte of upper-half addresses is ignored.
    pub const fn tbi1(self) -> bool {
        bit(self.0, 38)
    }
    /// Bit 39, HA: the hardware sets the Access flag.
    pub const fn ha(self) -> bool {
        bit(self.0, 39)
    }
    /// Bit 40, HD: the hardware manages the dirty state (DBM).
    pub const fn hd(self) -> bool {
        bit(self.0, 40)
    }
    /// Bit 59, DS (FEAT_LPA2): 4 and 16 KiB granules use the 52-bit descriptor format
    /// (output address bits 51:50 in descriptor bits 9:8, shareability moved to TCR).
    pub const fn ds(self) -> bool {
        bit(self.0, 59)
    }
}

register!(
    /// aarch64 SCTLR_EL1: system control at EL1&0 (Arm ARM, DDI 0487).
    SctlrEl1
);

impl SctlrEl1 {
    /// Bit 0, M: the EL1&0 stage-1 MMU is on.
    pub const fn m(self) -> bool {
        bit(self.0, 0)
    }
    /// Bit 1, A: alignment checking.
    pub const fn a(self) -> bool {
        bit(self.0, 1)
    }
    /// Bit 2, C: data accesses may be cached.
    pub const fn c(self) -> bool {
        bit(self.0, 2)
    }
    /// Bit 12, I: instruction fetches may be cached.
    pub const fn i(self) -> bool {
        bit(self.0, 12)
    }
    /// Bit 19, WXN: writable memory is never executable.
    pub const fn wxn(self) -> bool {
        bit(self.0, 19)
    }
    /// Bit 24, E0E: EL0 data accesses are big-endian.
    pub const fn e0e(self) -> bool {
        bit(self.0, 24)
    }
    /// Bit 25, EE: EL1 data accesses and translation-table walks are big-endian.
    pub const fn ee(self) -> bool {
        bit(self.0, 25)
    }
}

register!(
    /// aarch64 TTBR0_EL1 / TTBR1_EL1: a half's translation-table base (Arm ARM, DDI 0487).
    Ttbr
);

impl Ttbr {
    /// Bits 63:48, ASID (the upper 8 bits are ignored with 8-bit ASIDs, TCR_EL1.AS = 0).
    pub const fn asid(self) -> u16 {
        field(self.0, 48, 16) as u16
    }
    /// Bit 0, CnP (Common not Private): the tables are shared with other PEs.
    pub const fn cnp(self) -> bool {
        bit(self.0, 0)
    }
    /// Bits 5:2 with a 52-bit output address (64 KiB FEAT_LPA, or FEAT_LPA2): the base's
    /// physical-address bits 51:48, shifted down to 3:0.
    pub const fn baddr_51_48(self) -> u64 {
        field(self.0, 2, 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_linux_values() {
        // CR0 of a running Linux x86-64 guest (QEMU `info registers`): PG, WP, NE, ET, MP,
        // PE.
        let cr0 = Cr0::from(0x8005_0033);
        assert!(cr0.pg() && cr0.wp() && cr0.pe());
        assert!(!Cr0::from(0x8005_0032).pe() && !Cr0::from(0x0005_0033).pg());
        // A typical Linux x86-64 CR4: PSE, PAE, MCE, PGE, OSFXSR, OSXMMEXCPT, FSGSBASE,
        // OSXSAVE, SMEP, SMAP; 4-level paging.
        let cr4 = Cr4::from(0x3506f0);
        assert!(cr4.pse() && cr4.pae() && cr4.pge() && cr4.smep() && cr4.smap());
        assert!(!cr4.la57() && !cr4.pcide() && !cr4.pke());
        // The same with UMIP and PCIDE (0x370ef0), still 4-level.
        let cr4 = Cr4::from(0x370ef0);
        assert!(cr4.pcide() && !cr4.la57());
        // The lab's LA57 guest (QEMU, 5-level paging): CR4 = 0x751ef0.
        let cr4 = Cr4::from(0x751ef0);
        assert!(cr4.la57() && cr4.pae() && cr4.smep() && cr4.smap() && cr4.pke() && !cr4.pcide());
        // QEMU's default CPU model: 0x6f0, no LA57.
        assert!(!Cr4::from(0x6f0).la57() && Cr4::from(0x6f0).pae());
        // EFER of the same guests: SCE, LME, LMA, NXE.
        let efer = Efer::from(0xd01);
        assert!(efer.sce() && efer.lme() && efer.lma() && efer.nxe());
        // LME set but paging not yet on: LMA clear.
        assert!(Efer::from(0x100).lme() && !Efer::from(0x100).lma());
        // CR3 with PCID 0x801 and the no-flush bit: the base ignores both.
        let cr3 = Cr3::from((1 << 63) | 0x1234_5000 | 0x801);
        assert_eq!((cr3.base(), cr3.pcid()), (PhysAddr(0x1234_5000), 0x801));
    }

    #[test]
    fn tcr_el1_linux_values() {
        // The TCR_EL1 Linux programs with 4 KiB pages and 48-bit VAs on a 44-bit-PA core
        // (Cortex-A57): T0SZ = T1SZ = 16, TG0 = 4 KiB (0b00), TG1 = 4 KiB (0b10), inner
        // shareable write-back walks, A1, IPS = 0b100, AS, TBI0.
        let t = TcrEl1::from(0x0000_0034_b550_3510);
        assert_eq!((t.t0sz(), t.t1sz()), (16, 16));
        assert_eq!((t.tg0(), t.tg1()), (Some(Granule::K4), Some(Granule::K4)));
        assert_eq!((t.ips(), t.ips_bits()), (4, Some(44)));
        assert!(t.a1() && t.as16() && t.tbi0());
        assert!(!t.tbi1() && !t.epd0() && !t.epd1() && !t.ds() && !t.ha() && !t.hd());
        // 39-bit VAs (T0SZ = T1SZ = 25) on a 40-bit-PA core (Cortex-A53), IPS = 0b010.
        let t = TcrEl1::from(0x0000_0032_b559_3519);
        assert_eq!((t.t0sz(), t.t1sz(), t.ips_bits()), (25, 25, Some(40)));
        // 64 KiB in both halves: TG0 = 0b01, TG1 = 0b11 — the encodings differ.
        let t = TcrEl1::from((3 << 30) | (1 << 14));
        assert_eq!((t.tg0(), t.tg1()), (Some(Granule::K64), Some(Granule::K64)));
        // 16 KiB: TG0 = 0b10, TG1 = 0b01.
        let t = TcrEl1::from((1 << 30) | (2 << 14));
        assert_eq!((t.tg0(), t.tg1()), (Some(Granule::K16), Some(Granule::K16)));
        // Reserved encodings: TG0 = 0b11, TG1 = 0b00.
        let t = TcrEl1::from(3 << 14);
        assert_eq!((t.tg0(), t.tg1()), (None, None));
        // LPA2: DS with 52-bit halves, IPS = 0b110.
        let t = TcrEl1::from((1 << 59) | (6 << 32) | (12 << 16) | (2 << 30) | 12);
        assert!(t.ds());
        assert_eq!((t.t0sz(), t.t1sz(), t.ips_bits()), (12, 12, Some(52)));
        assert_eq!(TcrEl1::from(7 << 32).ips_bits(), None);
        assert_eq!(u64::from(t), t.raw());
    }

    #[test]
    fn sctlr_and_ttbr() {
        // An MMU-on SCTLR_EL1 (M, C, SA, SA0, I, DZE, UCT and RES1 bits): little-endian,
        // WXN off.
        let s = SctlrEl1::from(0x0000_0000_3450_d91d);
        assert!(s.m() && s.c() && s.i());
        assert!(!s.a() && !s.wxn() && !s.ee() && !s.e0e());
        // Only the RES1 bits (Linux's little-endian INIT_SCTLR_EL1_MMU_OFF): MMU off.
        assert!(!SctlrEl1::from(0x30d0_0800).m());
        // TTBR with ASID 0x2a, BADDR[51:48] = 0x3 in bits 5:2, CnP.
        let t = Ttbr::from((0x2a << 48) | 0x4000_0000 | (0x3 << 2) | 1);
        assert_eq!((t.asid(), t.baddr_51_48(), t.cnp()), (0x2a, 0x3, true));
        assert_eq!(format!("{:#x}", Ttbr::from(0x10)), "0x10");
    }
}

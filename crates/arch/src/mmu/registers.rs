//! Decoding a vCPU's registers into an MMU and page-table roots. **Key decision: registers
//! are read only through core's typed registers** ([`Cr4`], [`Efer`], [`TcrEl1`]), so no bit
//! number appears here; what cannot be described by one [`Mmu`] (aarch64 halves with
//! different settings, LPA2 with 48-bit halves) is an error, not a guess.

use memlens_core::cpu::{Cr4, Efer, TcrEl1};
use memlens_core::{CpuRegisters, PhysAddr};

use super::{Granule, Mmu};
use crate::error::ArchError;
use crate::types::Roots;

impl Mmu {
    /// The MMU and page-table roots described by a vCPU's registers.
    ///
    /// x86: 5-level when CR4.LA57 is set; 32-bit (PAE or not, by CR4.PAE) when EFER is
    /// known and EFER.LMA is clear; otherwise 4-level x86-64. aarch64: the granule and
    /// size come from TCR_EL1's TG1/T1SZ when known (4 KiB / 48-bit otherwise); the roots
    /// are TTBR0 (lower half) and TTBR1 (upper half).
    pub fn from_registers(regs: &CpuRegisters) -> Result<(Self, Roots), ArchError> {
        match regs {
            CpuRegisters::X86(r) => {
                let cr4 = Cr4::from(r.cr4);
                let long = r.efer.is_none_or(|e| Efer::from(e).lma());
                let mmu = if !long {
                    if cr4.pae() {
                        Self::x86_pae()
                    } else {
                        Self::x86()
                    }
                } else if cr4.la57() {
                    Self::x86_64_la57()
                } else {
                    Self::x86_64()
                };
                Ok((mmu, Roots::single(PhysAddr(r.cr3))))
            }
            CpuRegisters::Aarch64(r) => {
                let (granule, va_bits) = match r.tcr {
                    Some(tcr) => {
                        let t = TcrEl1::from(tcr);
                        // A reserved TGn encoding reads as 4 KiB.
                        let g = t.tg1().unwrap_or(Granule::K4);
                        let t1sz = t.t1sz();
                        // One description serves both halves, as Linux configures them
                        // (TG0/T0SZ equal to TG1/T1SZ); say so when they differ.
                        let g0 = t.tg0().unwrap_or(Granule::K4);
                        let t0sz = t.t0sz();
                        if g0 != g || t0sz != t1sz {
                            return Err(ArchError::InvalidConfig {
                                arch: "aarch64",
                                what: format!(
                                    "TCR_EL1 {tcr:#x}: the TTBR0 half ({g0:?}, T0SZ {t0sz}) differs from the TTBR1 half ({g:?}, T1SZ {t1sz}); halves with different settings are not supported"
                                ),
                            });
                        }
                        let va = 64u8.saturating_sub(t1sz);
                        // TCR_EL1.DS selects the LPA2 descriptor format (4/16 KiB only),
                        // which memlens pairs with 52-bit halves.
                        let ds = t.ds();
                        if g != Granule::K64 && ds != (va == 52) {
                            return Err(ArchError::InvalidConfig {
                                arch: "aarch64",
                                what: format!(
                                    "TCR_EL1 {tcr:#x}: DS = {} with {va}-bit halves ({g:?}); memlens reads the LPA2 format with 52-bit halves only",
                                    u8::from(ds)
                                ),
                            });
                        }
                        (g, va)
                    }
                    None => (Granule::K4, 48),
                };
                let mmu = Self::aarch64(granule, va_bits)?;
                let (Some(t0), Some(t1)) = (r.ttbr0, r.ttbr1) else {
                    return Err(ArchError::NoRoot {
                        what: "aarch64 registers without TTBR0_EL1/TTBR1_EL1".into(),
                    });
                };
                Ok((mmu, Roots::split(PhysAddr(t0), PhysAddr(t1))))
            }
            other => Err(ArchError::NoRoot {
                what: format!("unsupported register set {other:?}"),
            }),
        }
    }
}

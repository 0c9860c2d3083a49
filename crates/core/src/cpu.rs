//! CPU state: the registers a connector knows (a dump's notes, QEMU's monitor). OS plugins
//! use them as hints — mainly the page-table root — and never require them.
//!
//! The register sets hold plain `u64`s as the CPU does; [`regs`] gives them meaning
//! (`Cr4::from(r.cr4).la57()`), so bit numbers are written in one place.

pub mod regs;

pub use regs::{Cr0, Cr3, Cr4, Efer, Granule, SctlrEl1, TcrEl1, Ttbr};

use serde::{Deserialize, Serialize};

use crate::addr::PhysAddr;
use crate::error::Result;

/// Architectures memlens knows.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// x86-64 (AMD64).
    X86_64,
    /// 32-bit x86.
    X86,
    /// 64-bit Arm.
    Aarch64,
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "x86",
            Arch::Aarch64 => "aarch64",
        })
    }
}

/// x86 / x86-64 registers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct X86Registers {
    /// RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8–R15 (hardware encoding order).
    pub gpr: [u64; 16],
    /// Instruction pointer.
    pub rip: u64,
    /// Flags.
    pub rflags: u64,
    /// CR0 (decode with [`Cr0`]).
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3: page-table root (with PCID / flag bits as the CPU holds it; decode with
    /// [`Cr3`]).
    pub cr3: u64,
    /// CR4 (decode with [`Cr4`]; bit 12 = LA57: 5-level paging).
    pub cr4: u64,
    /// EFER MSR, when known (decode with [`Efer`]).
    pub efer: Option<u64>,
    /// FS base.
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
    /// KERNEL_GS_BASE MSR, when known.
    pub kernel_gs_base: Option<u64>,
}

impl X86Registers {
    /// The page-table root with the PCID and flag bits (0..12) and bit 63 cleared.
    pub fn root(&self) -> PhysAddr {
        Cr3::from(self.cr3).base()
    }
    /// Whether 5-level paging is on (CR4.LA57).
    pub fn la57(&self) -> bool {
        Cr4::from(self.cr4).la57()
    }
}

/// aarch64 registers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aarch64Registers {
    /// X0–X30.
    pub x: [u64; 31],
    /// Stack pointer.
    pub sp: u64,
    /// Program counter.
    pub pc: u64,
    /// PSTATE.
    pub pstate: u64,
    /// TTBR0_EL1 (user half root), when known (decode with [`Ttbr`]).
    pub ttbr0: Option<u64>,
    /// TTBR1_EL1 (kernel half root), when known.
    pub ttbr1: Option<u64>,
    /// TCR_EL1, when known (decode with [`TcrEl1`]).
    pub tcr: Option<u64>,
}

/// Registers of one vCPU.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum CpuRegisters {
    /// x86 or x86-64.
    X86(X86Registers),
    /// aarch64.
    Aarch64(Aarch64Registers),
}

/// Access to CPU registers: a capability separate from memory.
pub trait CpuState: Send + Sync {
    /// Number of vCPUs.
    fn cpu_count(&self) -> usize;
    /// Registers of vCPU `cpu` (0-based).
    fn registers(&self, cpu: usize) -> Result<CpuRegisters>;
}

//! Kernel virtual memory over physical memory (x86-64 with 4/5-level paging, aarch64).
//! **Key decision: two linear fast paths before any walk.** Kernel objects live almost
//! entirely in two linear mappings — the kernel image (`VA - image_delta`) and the direct
//! (linear) map (`VA - page_offset_base`) — so those are translated arithmetically and
//! only other addresses (vmalloc, modules, user space) walk the page tables. x86-64 walks
//! with a small private walker (one walk per page, no TLB; it predates `memlens-arch`);
//! aarch64 walks with `memlens-arch`'s table-driven [`VirtualView`] (TTBR1 for the kernel
//! half, with a TLB), since its descriptor rules are not worth a second private copy.

use std::sync::Arc;

use memlens_arch::{Mmu, Roots, TlbConfig, VirtualView};
use memlens_core::{
    mem::{finish_partial, record_failure, split_at_boundaries},
    Error, MemRange, MemoryMetadata, MemoryView, MemoryViewExt, PhysAddr, PhysicalMemory, ReadOp,
    VirtAddr,
};

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PRESENT: u64 = 1;
const PS: u64 = 1 << 7;

/// The kernel's address space (or a process's, without linear windows): a page-table
/// root, the walker for the architecture, and linear windows.
#[derive(Clone)]
pub struct KernelSpace {
    phys: Arc<dyn PhysicalMemory>,
    root: PhysAddr,
    levels: u8,
    /// Bits of a virtual address (x86-64: 48 or 57; aarch64: `VA_BITS`).
    va_bits: u8,
    /// The aarch64 walker (TTBR1 = TTBR0 = `root`); `None` on x86-64.
    arm: Option<Arc<VirtualView<Arc<dyn PhysicalMemory>>>>,
    /// Linear windows `(va_start, va_end, pa_of_start)` translated without a walk.
    linear: Vec<(u64, u64, u64)>,
}

/// The former name of [`KernelSpace`] (x86-64 only then).
pub type X86Space = KernelSpace;

impl std::fmt::Debug for KernelSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSpace")
            .field("root", &self.root)
            .field("levels", &self.levels)
            .field("aarch64", &self.arm.is_some())
            .finish()
    }
}

impl KernelSpace {
    /// An x86-64 view of the address space rooted at `root` with 4 or 5 levels.
    pub fn new(phys: Arc<dyn PhysicalMemory>, root: PhysAddr, levels: u8) -> Self {
        Self {
            phys,
            root: root.align_down(4096),
            levels,
            va_bits: if levels == 5 { 57 } else { 48 },
            arm: None,
            linear: Vec::new(),
        }
    }

    /// An aarch64 view: `mmu` (granule, `va_bits`-bit halves) with `root` for both halves
    /// (the kernel's `swapper_pg_dir` serves TTBR1; nothing of the lower half is read).
    pub fn aarch64(phys: Arc<dyn PhysicalMemory>, mmu: Mmu, va_bits: u8, root: PhysAddr) -> Self {
        let levels = mmu.levels().len() as u8;
        let view = VirtualView::new(phys.clone(), mmu, Roots::split(root, root))
            .with_tlb(TlbConfig::default());
        Self {
            phys,
            root,
            levels,
            va_bits,
            arm: Some(Arc::new(view)),
            linear: Vec::new(),
        }
    }

    /// Adds a linear window: `[va, va+len)` maps to `[pa, pa+len)` (kernel image, direct
    /// map). Only for windows known to be linear in this address space.
    pub fn with_linear(mut self, va: u64, len: u64, pa: u64) -> Self {
        self.linear.push((va, va.saturating_add(len), pa));
        self
    }

    /// The page-table root.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// Paging depth (x86-64: 4 or 5; aarch64: levels of the MMU description).
    pub fn levels(&self) -> u8 {
        self.levels
    }

    /// Bits of a virtual address (the size of each half is `2^(va_bits - 1)` on x86-64,
    /// `2^va_bits` on aarch64).
    pub fn va_bits(&self) -> u8 {
        self.va_bits
    }

    /// Whether this is an aarch64 space.
    pub fn is_aarch64(&self) -> bool {
        self.arm.is_some()
    }

    /// Whether `p` is a kernel-half address: x86-64 canonical upper half, aarch64 TTBR1
    /// range (all bits above `va_bits` set).
    pub fn is_kernel_addr(&self, p: u64) -> bool {
        let vb = u32::from(self.va_bits);
        if self.arm.is_some() {
            p >> vb == u64::MAX >> vb
        } else {
            p >> (vb - 1) == u64::MAX >> (vb - 1)
        }
    }

    /// The physical memory under this view.
    pub fn physical(&self) -> &Arc<dyn PhysicalMemory> {
        &self.phys
    }

    fn canonical(&self, va: u64) -> bool {
        let bits = if self.levels == 5 { 57 } else { 48 };
        let top = (va as i64) >> (bits - 1);
        top == 0 || top == -1
    }

    /// Translates one address; returns the physical address and the size of the page.
    pub fn translate(&self, va: VirtAddr) -> Result<(PhysAddr, u64), Error> {
        let v = va.0;
        for &(s, e, pa) in &self.linear {
            if v >= s && v < e {
                return Ok((PhysAddr(pa.wrapping_add(v - s)), 4096));
            }
        }
        if let Some(arm) = &self.arm {
            let t = arm.translate(va)?;
            return Ok((t.pa, t.size.bytes()));
        }
        if !self.canonical(v) {
            return Err(Error::NonCanonical {
                va,
                arch: "x86_64".into(),
            });
        }
        let mut table = self.root.0;
        for level in (1..=self.levels).rev() {
            let shift = 12 + 9 * (level as u32 - 1);
            let idx = (v >> shift) & 0x1ff;
            let entry = self.phys.read_u64(PhysAddr(table + idx * 8))?;
            if entry & PRESENT == 0 {
                return Err(Error::NotPresent {
                    va,
                    root: self.root,
                    level,
                });
            }
            if level == 1 || ((level == 2 || level == 3) && entry & PS != 0) {
                let size = 1u64 << shift;
                let base = entry & ADDR_MASK & !(size - 1);
                return Ok((PhysAddr(base | (v & (size - 1))), size));
            }
            if level > 3 && entry & PS != 0 {
                return Err(Error::BadEntry {
                    va,
                    root: self.root,
                    level,
                    entry,
                    why: "large-page bit set above level 3".into(),
                });
            }
            table = entry & ADDR_MASK;
        }
        Err(Error::NotPresent {
            va,
            root: self.root,
            level: 1,
        })
    }
}

impl MemoryView for KernelSpace {
    type Addr = VirtAddr;

    fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
        for op in ops.iter_mut() {
            op.result = Ok(());
            let total = op.buf.len();
            let mut phys_ops = Vec::new();
            let mut pieces = Vec::new();
            let (first, rest) = (op.addr, &mut *op.buf);
            let mut remaining: &mut [u8] = rest;
            for (a, off, len) in split_at_boundaries(first, total, 4096) {
                let (chunk, tail) = std::mem::take(&mut remaining).split_at_mut(len);
                remaining = tail;
                match self.translate(a) {
                    Ok((pa, _)) => {
                        phys_ops.push(ReadOp::new(pa, chunk));
                        pieces.push((off, len));
                    }
                    Err(e) => {
                        chunk.fill(0);
                        record_failure(&mut op.result, total, off, len, e);
                    }
                }
            }
            if !phys_ops.is_empty() {
                self.phys.read_batch(&mut phys_ops);
                for (p, (off, len)) in phys_ops.into_iter().zip(pieces) {
                    if let Err(e) = p.result {
                        record_failure(&mut op.result, total, off, len, e);
                    }
                }
            }
            finish_partial(&mut op.result);
        }
    }

    fn metadata(&self) -> MemoryMetadata<VirtAddr> {
        MemoryMetadata {
            max_addr: VirtAddr(u64::MAX),
            real_size: self.phys.metadata().real_size,
            readonly: true,
            preferred_batch: 64,
        }
    }

    fn ranges(&self) -> Vec<MemRange<VirtAddr>> {
        if let Some(arm) = &self.arm {
            let _ = arm;
            let half = 1u64 << self.va_bits;
            return vec![
                MemRange::new(VirtAddr(0), half),
                MemRange::new(VirtAddr(half.wrapping_neg()), half),
            ];
        }
        let half = if self.levels == 5 {
            1u64 << 56
        } else {
            1u64 << 47
        };
        vec![
            MemRange::new(VirtAddr(0), half),
            MemRange::new(VirtAddr(half.wrapping_neg()), half),
        ]
    }
}

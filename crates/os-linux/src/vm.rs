//! Virtual memory views over physical memory for x86-64 (4- and 5-level paging).
//! **Key decision: a small private walker with two linear fast paths.** Kernel objects
//! live almost entirely in two linear mappings — the kernel image (`VA - image_delta`)
//! and the direct map (`VA - page_offset_base`) — so those are translated arithmetically
//! and only other addresses (vmalloc, modules, user space) walk the page tables. The
//! workspace's table-driven walker (`memlens-arch`) was not available while this plugin
//! was written; this one is deliberately minimal (one walk per page, no TLB) and can be
//! swapped for it behind the same [`MemoryView`] impl.

use std::sync::Arc;

use memlens_core::{
    mem::{finish_partial, record_failure, split_at_boundaries},
    Error, MemRange, MemoryMetadata, MemoryView, MemoryViewExt, PhysAddr, PhysicalMemory, ReadOp,
    VirtAddr,
};

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PRESENT: u64 = 1;
const PS: u64 = 1 << 7;

/// An x86-64 address space: a page-table root plus paging depth.
#[derive(Clone)]
pub struct X86Space {
    phys: Arc<dyn PhysicalMemory>,
    root: PhysAddr,
    levels: u8,
    /// Linear windows `(va_start, va_end, pa_of_start)` translated without a walk.
    linear: Vec<(u64, u64, u64)>,
}

impl std::fmt::Debug for X86Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X86Space")
            .field("root", &self.root)
            .field("levels", &self.levels)
            .finish()
    }
}

impl X86Space {
    /// A view of the address space rooted at `root` with 4 or 5 levels.
    pub fn new(phys: Arc<dyn PhysicalMemory>, root: PhysAddr, levels: u8) -> Self {
        Self {
            phys,
            root: root.align_down(4096),
            levels,
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

    /// Paging depth (4 or 5).
    pub fn levels(&self) -> u8 {
        self.levels
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
                return Ok((PhysAddr(pa + (v - s)), 4096));
            }
        }
        if !self.canonical(v) {
            return Err(Error::NonCanonical { va, arch: "x86_64" });
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
                    why: "large-page bit set above level 3",
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

impl MemoryView for X86Space {
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

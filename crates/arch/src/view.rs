//! The virtual memory view. **Key decision: a virtual read batch becomes one translation
//! batch and one physical read batch.** Every operation is split at page boundaries; all
//! pieces are translated together (TLB first, the misses through the batched walker);
//! physically contiguous pieces of one operation merge again; and the physical reads of
//! the whole batch go to the connector in one `read_batch`. An unmapped page fails only
//! the bytes it covers (`Error::Partial` with one `FailedSpan` per failed stretch, whose
//! cause is the walk's `NotPresent`/`BadEntry`/`NonCanonical`).
//!
//! [`VirtualView`] is `Send + Sync` and reads through `&self`; its caches (the [`Tlb`] and
//! the page-table [`PageCache`]) are internally synchronised. It is generic over the
//! physical side `P`, which may be a concrete connector, a reference to one, or the
//! `Arc<dyn PhysicalMemory>` that OS plugins hold.

use std::sync::Arc;

use memlens_core::mem::{finish_partial, record_failure};
use memlens_core::middleware::cache::{CacheConfig, PageCache};
use memlens_core::{
    Error, MemRange, MemoryMetadata, MemoryView, PhysAddr, PhysicalMemory, ReadOp, Result, VirtAddr,
};

use crate::mmu::Mmu;
use crate::pagemap::{page_map, PageMap, PageMapOptions};
use crate::tlb::{Tlb, TlbConfig};
use crate::types::{Roots, Translation};
use crate::walker::{translate_batch, unset};

/// Virtual memory of one address space: physical memory + MMU + roots. See the module
/// documentation.
pub struct VirtualView<P> {
    mem: P,
    mmu: Mmu,
    roots: Roots,
    tlb: Option<Arc<Tlb>>,
    tables: Option<PageCache<P>>,
}

impl<P> std::fmt::Debug for VirtualView<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualView")
            .field("mmu", &self.mmu.name())
            .field("roots", &self.roots)
            .field("tlb", &self.tlb)
            .field("table_cache", &self.tables.is_some())
            .finish()
    }
}

impl<P: PhysicalMemory> VirtualView<P> {
    /// A view without caches.
    pub fn new(mem: P, mmu: Mmu, roots: Roots) -> Self {
        Self {
            mem,
            mmu,
            roots,
            tlb: None,
            tables: None,
        }
    }

    /// Adds a private TLB.
    pub fn with_tlb(mut self, cfg: TlbConfig) -> Self {
        self.tlb = Some(Arc::new(Tlb::for_mmu(cfg, &self.mmu)));
        self
    }

    /// Uses a TLB shared with other views (entries are keyed by root, so views of
    /// different processes can share one). Build it with [`Tlb::for_mmu`] for this MMU.
    pub fn with_shared_tlb(mut self, tlb: Arc<Tlb>) -> Self {
        self.tlb = Some(tlb);
        self
    }

    /// The physical memory.
    pub fn physical(&self) -> &P {
        &self.mem
    }
    /// The MMU description.
    pub fn mmu(&self) -> &Mmu {
        &self.mmu
    }
    /// The page-table roots.
    pub fn roots(&self) -> Roots {
        self.roots
    }
    /// The TLB, when enabled.
    pub fn tlb(&self) -> Option<&Arc<Tlb>> {
        self.tlb.as_ref()
    }

    /// Translates one address (through the caches).
    pub fn translate(&self, va: VirtAddr) -> Result<Translation> {
        let mut out = [unset()];
        self.translate_batch(&[va], &mut out);
        let [r] = out;
        r
    }

    /// Translates a batch (through the caches): `out[i]` receives the outcome of `vas[i]`.
    pub fn translate_batch(&self, vas: &[VirtAddr], out: &mut [Result<Translation>]) {
        let Some(tlb) = &self.tlb else {
            self.walk(vas, out);
            return;
        };
        let now = tlb.now();
        let mut miss_va: Vec<VirtAddr> = Vec::new();
        let mut miss_idx: Vec<usize> = Vec::new();
        let mut hint = 0u8;
        for (i, (va, slot)) in vas.iter().zip(out.iter_mut()).enumerate() {
            let root = self.mmu.root_for(&self.roots, va.0);
            match tlb.lookup_hinted(root, *va, now, &mut hint) {
                Some(t) => *slot = Ok(t),
                None => {
                    miss_va.push(*va);
                    miss_idx.push(i);
                }
            }
        }
        if miss_va.is_empty() {
            return;
        }
        let mut res: Vec<Result<Translation>> = (0..miss_va.len()).map(|_| unset()).collect();
        self.walk(&miss_va, &mut res);
        for (r, i) in res.into_iter().zip(miss_idx) {
            if let Ok(t) = &r {
                tlb.insert(self.mmu.root_for(&self.roots, t.va.0), t, now);
            }
            if let Some(slot) = out.get_mut(i) {
                *slot = r;
            }
        }
    }

    fn walk(&self, vas: &[VirtAddr], out: &mut [Result<Translation>]) {
        match &self.tables {
            Some(cache) => translate_batch(cache, &self.mmu, &self.roots, vas, out),
            None => translate_batch(&self.mem, &self.mmu, &self.roots, vas, out),
        }
    }

    /// The page map of this address space.
    pub fn page_map(&self, opts: &PageMapOptions) -> PageMap {
        match &self.tables {
            Some(cache) => page_map(cache, &self.mmu, &self.roots, opts),
            None => page_map(&self.mem, &self.mmu, &self.roots, opts),
        }
    }
}

impl<P: PhysicalMemory + Clone> VirtualView<P> {
    /// Caches page-table pages (only table reads go through this cache; data reads go
    /// straight to the physical memory).
    pub fn with_table_cache(mut self, cfg: CacheConfig) -> Self {
        self.tables = Some(PageCache::new(self.mem.clone(), cfg));
        self
    }
}

/// One page-sized piece of an operation.
struct Piece {
    op: usize,
    off: usize,
    len: usize,
}

/// A physical read: bytes `[off, off+len)` of operation `op`.
struct Seg {
    op: usize,
    off: usize,
    len: usize,
    pa: u64,
}

impl<P: PhysicalMemory> MemoryView for VirtualView<P> {
    type Addr = VirtAddr;

    fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
        let gran = self.mmu.granule();
        let mut pieces: Vec<Piece> = Vec::with_capacity(ops.len());
        let mut vas: Vec<VirtAddr> = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter_mut().enumerate() {
            op.result = Ok(());
            for (a, off, len) in memlens_core::mem::split_at_boundaries(op.addr, op.buf.len(), gran)
            {
                pieces.push(Piece { op: i, off, len });
                vas.push(a);
            }
        }
        let mut tr: Vec<Result<Translation>> = (0..vas.len()).map(|_| unset()).collect();
        self.translate_batch(&vas, &mut tr);

        // Failures in buffer order per op: (op, off, len, cause).
        let mut fails: Vec<(usize, usize, usize, Error)> = Vec::new();
        let mut segs: Vec<Seg> = Vec::with_capacity(pieces.len());
        for (p, t) in pieces.iter().zip(tr) {
            match t {
                Ok(t) => {
                    if let Some(s) = segs.last_mut() {
                        if s.op == p.op
                            && s.off + s.len == p.off
                            && s.pa.wrapping_add(s.len as u64) == t.pa.0
                        {
                            s.len += p.len;
                            continue;
                        }
                    }
                    segs.push(Seg {
                        op: p.op,
                        off: p.off,
                        len: p.len,
                        pa: t.pa.0,
                    });
                }
                Err(e) => fails.push((p.op, p.off, p.len, e)),
            }
        }

        let mut seg_results: Vec<Result<()>> = Vec::with_capacity(segs.len());
        {
            let mut phys: Vec<ReadOp<'_, PhysAddr>> = Vec::with_capacity(segs.len());
            let mut si = 0usize;
            for (i, op) in ops.iter_mut().enumerate() {
                let mut rest: &mut [u8] = &mut *op.buf;
                let mut pos = 0usize;
                while let Some(s) = segs.get(si) {
                    if s.op != i {
                        break;
                    }
                    let (_, tail) = rest.split_at_mut(s.off - pos);
                    let (head, tail) = tail.split_at_mut(s.len);
                    phys.push(ReadOp::new(PhysAddr(s.pa), head));
                    rest = tail;
                    pos = s.off + s.len;
                    si += 1;
                }
            }
            self.mem.read_batch(&mut phys);
            seg_results.extend(phys.into_iter().map(|o| o.result));
        }
        for (s, r) in segs.iter().zip(seg_results) {
            match r {
                Ok(()) => {}
                Err(Error::Partial { failed, .. }) => {
                    for f in failed {
                        fails.push((s.op, s.off + f.offset, f.len, *f.cause));
                    }
                }
                Err(e) => fails.push((s.op, s.off, s.len, e)),
            }
        }
        if fails.is_empty() {
            return;
        }
        fails.sort_by_key(|f| (f.0, f.1));
        let mut touched: Vec<usize> = Vec::new();
        for (op, off, len, cause) in fails {
            if let Some(o) = ops.get_mut(op) {
                let total = o.buf.len();
                record_failure(&mut o.result, total, off, len, cause);
                if touched.last() != Some(&op) {
                    touched.push(op);
                }
            }
        }
        for op in touched {
            if let Some(o) = ops.get_mut(op) {
                finish_partial(&mut o.result);
            }
        }
    }

    /// The whole address space: `max_addr` is 2^64-1 and `real_size` is 0 (unknown:
    /// computing it needs a page-map walk; call `ranges()` for the mapped ranges).
    fn metadata(&self) -> MemoryMetadata<VirtAddr> {
        MemoryMetadata {
            max_addr: VirtAddr(u64::MAX),
            real_size: 0,
            readonly: true,
            preferred_batch: 256,
        }
    }

    /// The mapped ranges (a page-map walk with default options).
    fn ranges(&self) -> Vec<MemRange<VirtAddr>> {
        let pm = self.page_map(&PageMapOptions {
            physically_contiguous: false,
            ..PageMapOptions::default()
        });
        let mut out: Vec<MemRange<VirtAddr>> = Vec::with_capacity(pm.ranges.len());
        for r in pm.ranges {
            match out.last_mut() {
                Some(l) if l.base.0.checked_add(l.len) == Some(r.va.0) => l.len += r.len,
                _ => out.push(MemRange::new(r.va, r.len)),
            }
        }
        out
    }
}

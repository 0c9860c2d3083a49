//! A page cache in front of any memory view. **Key decision: CLOCK (second-chance)
//! eviction in hash-sharded sets** rather than a strict LRU list: a hit only sets a flag (no
//! list surgery under a lock), which keeps hits cheap and lets many threads hit different
//! shards at once, while evicting nearly as well as LRU for page-table and structure reads.
//!
//! Reads are served per page: hits are copied from the cache, and all misses of a batch go
//! to the inner view as **one** batch of whole pages. A page whose read fails is not cached,
//! and the affected bytes are re-read directly so the caller gets the inner view's exact
//! outcome. Entries older than the validity time are treated as misses (live targets).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::addr::Address;
use crate::mem::{MemoryMetadata, MemoryView, MemoryWrite, ReadOp, WriteOp};

/// Settings of a [`PageCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Total bytes cached (rounded down to whole pages; at least one page per shard).
    pub capacity: u64,
    /// Page size in bytes (a power of two, at least 64).
    pub page_size: u64,
    /// How long an entry stays valid; `None` = forever (dumps).
    pub validity: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 2 << 20,
            page_size: 4096,
            validity: None,
        }
    }
}

const SHARDS: usize = 16;

struct Slot {
    page: u64,
    data: Box<[u8]>,
    born: Instant,
    referenced: bool,
}

#[derive(Default)]
struct Shard {
    index: HashMap<u64, usize>,
    slots: Vec<Slot>,
    hand: usize,
}

/// Caches whole pages of an inner view. See the module documentation.
pub struct PageCache<M> {
    inner: M,
    cfg: CacheConfig,
    slots_per_shard: usize,
    shards: Vec<Mutex<Shard>>,
}

impl<M: MemoryView> PageCache<M> {
    /// Wraps `inner`. An invalid page size is replaced by 4096.
    pub fn new(inner: M, mut cfg: CacheConfig) -> Self {
        if !cfg.page_size.is_power_of_two() || cfg.page_size < 64 {
            cfg.page_size = 4096;
        }
        let pages = (cfg.capacity / cfg.page_size).max(SHARDS as u64);
        let slots_per_shard = usize::try_from(pages / SHARDS as u64)
            .unwrap_or(1 << 20)
            .max(1);
        Self {
            inner,
            cfg,
            slots_per_shard,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The wrapped view.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The settings in force.
    pub fn config(&self) -> CacheConfig {
        self.cfg
    }

    /// Drops every cached page.
    pub fn clear(&self) {
        for s in &self.shards {
            *s.lock() = Shard::default();
        }
    }

    fn shard(&self, page: u64) -> &Mutex<Shard> {
        let h = page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        &self.shards[h as usize % SHARDS]
    }

    fn lookup(&self, page: u64, dst: &mut [u8], off: usize) -> bool {
        let mut s = self.shard(page).lock();
        let Some(&i) = s.index.get(&page) else {
            return false;
        };
        let expired = self
            .cfg
            .validity
            .is_some_and(|v| s.slots[i].born.elapsed() > v);
        if expired {
            return false;
        }
        let slot = &mut s.slots[i];
        slot.referenced = true;
        dst.copy_from_slice(&slot.data[off..off + dst.len()]);
        true
    }

    fn insert(&self, page: u64, data: &[u8]) {
        let mut guard = self.shard(page).lock();
        let s = &mut *guard;
        if let Some(&i) = s.index.get(&page) {
            let slot = &mut s.slots[i];
            slot.data.copy_from_slice(data);
            slot.born = Instant::now();
            slot.referenced = true;
            return;
        }
        if s.slots.len() < self.slots_per_shard {
            s.index.insert(page, s.slots.len());
            s.slots.push(Slot {
                page,
                data: data.into(),
                born: Instant::now(),
                referenced: false,
            });
            return;
        }
        // CLOCK: advance the hand, clearing reference bits, until an unreferenced slot.
        loop {
            let n = s.slots.len();
            let h = s.hand % n;
            s.hand = (h + 1) % n;
            if s.slots[h].referenced {
                s.slots[h].referenced = false;
                continue;
            }
            let old = s.slots[h].page;
            s.index.remove(&old);
            s.index.insert(page, h);
            let slot = &mut s.slots[h];
            slot.page = page;
            slot.data.copy_from_slice(data);
            slot.born = Instant::now();
            return;
        }
    }

    fn invalidate(&self, page: u64) {
        let mut s = self.shard(page).lock();
        if let Some(i) = s.index.remove(&page) {
            // Leave the slot in place, pointing at an impossible page (never looked up).
            s.slots[i].page = u64::MAX;
            s.slots[i].referenced = false;
        }
    }
}

impl<M: MemoryView> MemoryView for PageCache<M> {
    type Addr = M::Addr;

    fn read_batch(&self, ops: &mut [ReadOp<'_, Self::Addr>]) {
        let ps = self.cfg.page_size;
        // (op index, page number) of every missing page piece.
        let mut misses: Vec<(usize, u64)> = Vec::new();
        for (i, op) in ops.iter_mut().enumerate() {
            op.result = Ok(());
            for (a, off, n) in crate::mem::split_at_boundaries(op.addr, op.buf.len(), ps) {
                let page = a.to_u64() / ps;
                let poff = (a.to_u64() % ps) as usize;
                if !self.lookup(page, &mut op.buf[off..off + n], poff)
                    && misses.last() != Some(&(i, page))
                {
                    misses.push((i, page));
                }
            }
        }
        if misses.is_empty() {
            return;
        }
        let mut pages: Vec<u64> = misses.iter().map(|m| m.1).collect();
        pages.sort_unstable();
        pages.dedup();
        let psz = ps as usize;
        let mut buf = vec![0u8; pages.len() * psz];
        let mut ok = vec![false; pages.len()];
        {
            let mut inner_ops: Vec<ReadOp<'_, M::Addr>> = buf
                .chunks_mut(psz)
                .zip(&pages)
                .map(|(b, p)| ReadOp::new(M::Addr::from_u64(p * ps), b))
                .collect();
            self.inner.read_batch(&mut inner_ops);
            for (k, op) in inner_ops.iter().enumerate() {
                ok[k] = op.result.is_ok();
            }
        }
        for (k, p) in pages.iter().enumerate() {
            if ok[k] {
                self.insert(*p, &buf[k * psz..(k + 1) * psz]);
            }
        }
        // Fill the misses from the fetched pages; failed pages are re-read exactly.
        let mut failed_ops: Vec<usize> = Vec::new();
        for (i, page) in misses {
            let k = pages.partition_point(|p| *p < page);
            let op = &mut ops[i];
            if !ok[k] {
                if failed_ops.last() != Some(&i) {
                    failed_ops.push(i);
                }
                continue;
            }
            for (a, off, n) in crate::mem::split_at_boundaries(op.addr, op.buf.len(), ps) {
                if a.to_u64() / ps == page {
                    let poff = (a.to_u64() % ps) as usize;
                    op.buf[off..off + n].copy_from_slice(&buf[k * psz + poff..k * psz + poff + n]);
                }
            }
        }
        if !failed_ops.is_empty() {
            // Uncached path for the operations that touched a failing page: the inner
            // view decides exactly which bytes fail.
            let mut sub: Vec<ReadOp<'_, M::Addr>> = Vec::with_capacity(failed_ops.len());
            let mut rest: &mut [ReadOp<'_, M::Addr>] = ops;
            let mut base = 0usize;
            for &i in &failed_ops {
                let (_, tail) = rest.split_at_mut(i - base);
                let (op, tail2) = tail.split_at_mut(1);
                let op = &mut op[0];
                sub.push(ReadOp::new(op.addr, &mut *op.buf));
                rest = tail2;
                base = i + 1;
            }
            self.inner.read_batch(&mut sub);
            let results: Vec<_> = sub.into_iter().map(|o| o.result).collect();
            for (&i, r) in failed_ops.iter().zip(results) {
                ops[i].result = r;
            }
        }
    }

    fn metadata(&self) -> MemoryMetadata<Self::Addr> {
        self.inner.metadata()
    }

    fn ranges(&self) -> Vec<crate::mem::MemRange<Self::Addr>> {
        self.inner.ranges()
    }
}

impl<M: MemoryWrite> MemoryWrite for PageCache<M> {
    fn write_batch(&self, ops: &mut [WriteOp<'_, Self::Addr>]) {
        let ps = self.cfg.page_size;
        for op in ops.iter() {
            for (a, _, _) in crate::mem::split_at_boundaries(op.addr, op.buf.len(), ps) {
                self.invalidate(a.to_u64() / ps);
            }
        }
        self.inner.write_batch(ops);
    }
}

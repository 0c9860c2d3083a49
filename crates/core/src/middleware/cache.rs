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

/// Smallest page size.
pub const MIN_PAGE_SIZE: u64 = 64;

/// Largest page size: every miss reads (and allocates) whole pages, so a page of 2^40
/// bytes would make a one-byte read allocate a terabyte. 2 MiB is a large page.
pub const MAX_PAGE_SIZE: u64 = 2 << 20;

/// Largest capacity: pages are allocated as they are first cached, so the capacity is
/// what the cache may come to hold; larger settings are clamped to it.
pub const MAX_CAPACITY: u64 = 64 << 30;

/// Most bytes of missing pages fetched in one inner batch: a batch that misses more is
/// served window by window, so the scratch buffer never outgrows this (or one page).
const MISS_WINDOW: usize = 64 << 20;

/// Whether `page_size` is a valid page size: a power of two in
/// [[`MIN_PAGE_SIZE`], [`MAX_PAGE_SIZE`]].
pub fn valid_page_size(page_size: u64) -> bool {
    page_size.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size)
}

/// Checks settings given by a user (`cache_page_size`, `cache_size`): a page size that
/// [`valid_page_size`] accepts and a capacity of at most [`MAX_CAPACITY`]. The error
/// names the setting and its bounds.
pub fn check_settings(page_size: Option<u64>, capacity: Option<u64>) -> Result<(), String> {
    if let Some(p) = page_size.filter(|p| !valid_page_size(*p)) {
        return Err(format!(
            "cache_page_size {p} is not a power of two from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}"
        ));
    }
    if let Some(c) = capacity.filter(|c| *c > MAX_CAPACITY) {
        return Err(format!("cache_size {c} is over {MAX_CAPACITY}"));
    }
    Ok(())
}

/// Settings of a [`PageCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Total bytes cached (rounded down to whole pages; at least one page per shard; at
    /// most [`MAX_CAPACITY`]).
    pub capacity: u64,
    /// Page size in bytes (a power of two, 64 bytes to 2 MiB: [`valid_page_size`]).
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
    /// Wraps `inner`. An invalid page size is replaced by 4096; a capacity above
    /// [`MAX_CAPACITY`] is clamped to it.
    pub fn new(inner: M, mut cfg: CacheConfig) -> Self {
        if !valid_page_size(cfg.page_size) {
            cfg.page_size = 4096;
        }
        cfg.capacity = cfg.capacity.min(MAX_CAPACITY);
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
        // The misses by page, to serve them window by window.
        let mut by_page: Vec<(u64, usize)> = misses.iter().map(|&(i, p)| (p, i)).collect();
        by_page.sort_unstable();
        let psz = ps as usize;
        let mut buf: Vec<u8> = Vec::new();
        let mut next = 0;
        let mut failed_ops: Vec<usize> = Vec::new();
        for window in pages.chunks((MISS_WINDOW / psz).max(1)) {
            buf.clear();
            buf.resize(window.len() * psz, 0);
            let mut ok = vec![false; window.len()];
            {
                let mut inner_ops: Vec<ReadOp<'_, M::Addr>> = buf
                    .chunks_mut(psz)
                    .zip(window)
                    .map(|(b, p)| ReadOp::new(M::Addr::from_u64(p * ps), b))
                    .collect();
                self.inner.read_batch(&mut inner_ops);
                for (k, op) in inner_ops.iter().enumerate() {
                    ok[k] = op.result.is_ok();
                }
            }
            for (k, p) in window.iter().enumerate() {
                if ok[k] {
                    self.insert(*p, &buf[k * psz..(k + 1) * psz]);
                }
            }
            // Fill this window's misses from the fetched pages; failed pages are re-read
            // exactly below.
            let last = window.last().copied().unwrap_or(0);
            while let Some(&(page, i)) = by_page.get(next).filter(|m| m.0 <= last) {
                next += 1;
                let k = window.partition_point(|p| *p < page);
                let op = &mut ops[i];
                if !ok[k] {
                    failed_ops.push(i);
                    continue;
                }
                for (a, off, n) in crate::mem::split_at_boundaries(op.addr, op.buf.len(), ps) {
                    if a.to_u64() / ps == page {
                        let poff = (a.to_u64() % ps) as usize;
                        op.buf[off..off + n]
                            .copy_from_slice(&buf[k * psz + poff..k * psz + poff + n]);
                    }
                }
            }
        }
        failed_ops.sort_unstable();
        failed_ops.dedup();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PhysAddr;
    use crate::error::Error;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The byte at `a` is `a % 251`; reads touching `[bad, bad + 1)` fail. Records the
    /// largest batch it was asked for, in bytes.
    struct Pattern {
        bad: u64,
        biggest: AtomicUsize,
    }

    impl MemoryView for Pattern {
        type Addr = PhysAddr;
        fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
            let bytes: usize = ops.iter().map(|o| o.buf.len()).sum();
            self.biggest.fetch_max(bytes, Ordering::Relaxed);
            for op in ops {
                let end = op.addr.0 + op.buf.len() as u64;
                op.result = if (op.addr.0..end).contains(&self.bad) {
                    Err(Error::Gap { addr: op.addr })
                } else {
                    for (k, b) in op.buf.iter_mut().enumerate() {
                        *b = ((op.addr.0 + k as u64) % 251) as u8;
                    }
                    Ok(())
                };
            }
        }
        fn metadata(&self) -> MemoryMetadata<PhysAddr> {
            MemoryMetadata {
                max_addr: PhysAddr(u64::MAX),
                real_size: u64::MAX,
                readonly: true,
                preferred_batch: 1,
            }
        }
    }

    #[test]
    fn page_size_and_capacity_are_bounded() {
        let p = || Pattern {
            bad: u64::MAX,
            biggest: AtomicUsize::new(0),
        };
        for (asked, used) in [
            (1u64 << 40, 4096),
            (32, 4096),
            (3000, 4096),
            (2 << 20, 2 << 20),
        ] {
            let c = PageCache::new(
                p(),
                CacheConfig {
                    page_size: asked,
                    capacity: u64::MAX,
                    validity: None,
                },
            );
            assert_eq!(c.config().page_size, used, "{asked}");
            assert_eq!(c.config().capacity, MAX_CAPACITY);
        }
        assert!(valid_page_size(64) && valid_page_size(MAX_PAGE_SIZE));
        assert!(!valid_page_size(MAX_PAGE_SIZE * 2) && !valid_page_size(0));
    }

    /// One batch of 64 one-byte reads, 2 MiB apart, with 2 MiB pages: 128 MiB of missing
    /// pages are fetched in windows of at most MISS_WINDOW bytes, every byte comes back
    /// right, and the read on the failing page fails alone.
    #[test]
    fn many_misses_are_fetched_in_bounded_windows() {
        let ps = MAX_PAGE_SIZE;
        let bad = 40 * ps + 7;
        let c = PageCache::new(
            Pattern {
                bad,
                biggest: AtomicUsize::new(0),
            },
            CacheConfig {
                page_size: ps,
                capacity: 256 << 20,
                validity: None,
            },
        );
        let mut bufs = [[0u8; 1]; 64];
        let mut ops: Vec<ReadOp<'_, PhysAddr>> = bufs
            .iter_mut()
            .enumerate()
            .map(|(i, b)| ReadOp::new(PhysAddr(i as u64 * ps + 7), &mut b[..]))
            .collect();
        c.read_batch(&mut ops);
        for (i, op) in ops.iter().enumerate() {
            let a = i as u64 * ps + 7;
            if a == bad {
                assert!(op.result.is_err());
            } else {
                assert!(op.result.is_ok(), "{a:#x}");
                assert_eq!(op.buf[0], (a % 251) as u8);
            }
        }
        assert_eq!(c.inner().biggest.load(Ordering::Relaxed), MISS_WINDOW);
    }
}

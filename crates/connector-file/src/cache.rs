//! A cache of decompressed blocks (kdump pages, AVML snappy chunks) keyed by block number.
//! **Key decision: values are `Arc<[u8]>` in hash-sharded CLOCK sets**: a hit clones an
//! `Arc` under a short shard lock and copies outside it, so many threads reading a
//! compressed dump share one cache without serialising on it; CLOCK (a referenced bit per
//! slot) evicts almost as well as LRU without list surgery on every hit.
//!
//! A dedicated cache (rather than core's `PageCache` middleware in front of the reader)
//! keeps the compressed unit as the cache unit: an AVML chunk is 64 KiB, and caching it
//! whole avoids decompressing it again for each of its 16 pages.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

const SHARDS: usize = 16;

struct Slot {
    key: u64,
    data: Arc<[u8]>,
    referenced: bool,
}

#[derive(Default)]
struct Shard {
    index: HashMap<u64, usize>,
    slots: Vec<Slot>,
    hand: usize,
}

/// A bounded, thread-safe cache of decompressed blocks.
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl BlockCache {
    /// A cache holding about `capacity` bytes of blocks of `block_size` bytes (0 disables
    /// caching).
    pub fn new(capacity: u64, block_size: u64) -> Self {
        let blocks = capacity / block_size.max(1);
        let per_shard = usize::try_from(blocks.div_ceil(SHARDS as u64)).unwrap_or(usize::MAX);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard,
        }
    }

    fn shard(&self, key: u64) -> &Mutex<Shard> {
        // Fibonacci hashing spreads consecutive block numbers over the shards.
        let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        &self.shards[h as usize % SHARDS]
    }

    /// The cached block, if present.
    #[inline]
    pub fn get(&self, key: u64) -> Option<Arc<[u8]>> {
        if self.per_shard == 0 {
            return None;
        }
        let mut s = self.shard(key).lock();
        let i = *s.index.get(&key)?;
        let slot = s.slots.get_mut(i)?;
        slot.referenced = true;
        Some(slot.data.clone())
    }

    /// Stores a block (evicting an unreferenced one when full).
    pub fn insert(&self, key: u64, data: Arc<[u8]>) {
        if self.per_shard == 0 {
            return;
        }
        let mut guard = self.shard(key).lock();
        let s = &mut *guard;
        if s.index.contains_key(&key) {
            return;
        }
        if s.slots.len() < self.per_shard {
            s.index.insert(key, s.slots.len());
            s.slots.push(Slot {
                key,
                data,
                referenced: false,
            });
            return;
        }
        loop {
            let h = s.hand % s.slots.len();
            s.hand = h + 1;
            let slot = &mut s.slots[h];
            if slot.referenced {
                slot.referenced = false;
                continue;
            }
            let old = slot.key;
            *slot = Slot {
                key,
                data,
                referenced: false,
            };
            s.index.remove(&old);
            s.index.insert(key, h);
            return;
        }
    }

    /// Drops every cached block.
    pub fn clear(&self) {
        for s in &self.shards {
            *s.lock() = Shard::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_shared() {
        let c = BlockCache::new(32 * 16, 16);
        for k in 0..1000u64 {
            c.insert(k, Arc::from(vec![k as u8; 16]));
        }
        let held = (0..1000).filter(|&k| c.get(k).is_some()).count();
        assert!(held <= 32 + SHARDS && held > 0, "{held}");
        assert_eq!(c.get(999).map(|d| d[0]), Some(999u64 as u8));
        let off = BlockCache::new(0, 16);
        off.insert(1, Arc::from(vec![1u8]));
        assert!(off.get(1).is_none());
    }
}

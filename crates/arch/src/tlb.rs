//! A software TLB. **Key decision: a 2-way set-associative array of seqlock-protected
//! slots made of atomics**, so lookups from many threads take no lock and never block:
//! a reader copies a slot and checks that its sequence number did not move; a writer
//! that loses a race simply does not insert. Keys are (table root, virtual page number,
//! page size): a large page takes one entry, and a lookup probes each page size of the
//! MMU (smallest first), so random accesses over a direct map of 1 GiB pages hit.
//!
//! Each entry records when it was inserted; with a validity time (live targets), older
//! entries are misses. The clock is read once per batch, not per lookup.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memlens_core::{PhysAddr, VirtAddr};

use crate::types::{page_size, PageFlags, Translation};

/// Settings of a [`Tlb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlbConfig {
    /// Number of entries (rounded up to a power of two, at least 2).
    pub entries: usize,
    /// How long an entry stays valid; `None` = until [`Tlb::flush`] (dumps).
    pub validity: Option<Duration>,
}

impl Default for TlbConfig {
    fn default() -> Self {
        Self {
            entries: 16384,
            validity: None,
        }
    }
}

/// One entry: 32 bytes, two per 64-byte set, so a probe touches one cache line.
#[derive(Default)]
#[repr(C)]
struct Slot {
    /// bits 0..16: version (odd while a writer fills the slot); 16..64: birth in µs since
    /// the TLB's epoch.
    seq: AtomicU64,
    root: AtomicU64,
    vpage: AtomicU64,
    /// Page-aligned physical base | size shift (bits 0..6; 0 = empty) | flags (bits 6..9).
    value: AtomicU64,
}

#[derive(Default)]
#[repr(C, align(64))]
struct Set {
    ways: [Slot; 2],
}

const VERSION_MASK: u64 = 0xffff;

/// A thread-safe translation cache. See the module documentation.
pub struct Tlb {
    sets: Box<[Set]>,
    sets_mask: usize,
    shifts: [u8; 4],
    nshifts: usize,
    validity_us: Option<u64>,
    epoch: Instant,
}

impl std::fmt::Debug for Tlb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tlb")
            .field("entries", &(self.sets.len() * 2))
            .field("validity_us", &self.validity_us)
            .finish()
    }
}

/// A point in time as the TLB measures it (µs since its creation); get one per batch
/// with [`Tlb::now`].
#[derive(Debug, Clone, Copy)]
pub struct TlbTime(u64);

impl Tlb {
    /// A TLB for an MMU with one page size, `1 << granule_shift` bytes (larger pages are
    /// cached too but only found by lookups probing their size: prefer
    /// [`Tlb::for_mmu`]).
    pub fn new(cfg: TlbConfig, granule_shift: u8) -> Self {
        Self::with_shifts(cfg, &[granule_shift])
    }

    /// A TLB that probes every page size of `mmu`.
    pub fn for_mmu(cfg: TlbConfig, mmu: &crate::Mmu) -> Self {
        let shifts: Vec<u8> = mmu
            .page_sizes()
            .iter()
            .map(|s| s.trailing_zeros() as u8)
            .collect();
        Self::with_shifts(cfg, &shifts)
    }

    fn with_shifts(cfg: TlbConfig, page_shifts: &[u8]) -> Self {
        let n = cfg.entries.clamp(2, 1 << 24).next_power_of_two();
        let mut shifts = [12u8; 4];
        let mut nshifts = 0;
        for &s in page_shifts.iter().take(4) {
            shifts[nshifts] = s.clamp(1, 63);
            nshifts += 1;
        }
        Self {
            sets: (0..n / 2).map(|_| Set::default()).collect(),
            sets_mask: n / 2 - 1,
            shifts,
            nshifts: nshifts.max(1),
            validity_us: cfg
                .validity
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            epoch: Instant::now(),
        }
    }

    /// Number of entries.
    pub fn capacity(&self) -> usize {
        self.sets.len() * 2
    }

    /// The current time for lookups and inserts of one batch.
    pub fn now(&self) -> TlbTime {
        if self.validity_us.is_some() {
            TlbTime(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
        } else {
            TlbTime(0)
        }
    }

    #[inline(always)]
    fn set_of(&self, root: u64, vpage: u64, shift: u8) -> usize {
        let h = (vpage ^ root.rotate_left(29) ^ (u64::from(shift) << 58))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h >> 32) as usize) & self.sets_mask
    }

    /// Looks `va` up under the table root `root` (as masked by the MMU).
    #[inline]
    pub fn lookup(&self, root: u64, va: VirtAddr, now: TlbTime) -> Option<Translation> {
        let mut hint = 0;
        self.lookup_hinted(root, va, now, &mut hint)
    }

    /// Like [`Tlb::lookup`], probing the page size `*hint` (log2) first and setting it to
    /// the size that hit: batches of nearby addresses usually share a page size, so one
    /// probe (one cache line) suffices.
    #[inline]
    pub fn lookup_hinted(
        &self,
        root: u64,
        va: VirtAddr,
        now: TlbTime,
        hint: &mut u8,
    ) -> Option<Translation> {
        if *hint != 0 {
            if let Some(t) = self.probe(root, va, *hint, now) {
                return Some(t);
            }
        }
        for &shift in &self.shifts[..self.nshifts] {
            if shift == *hint {
                continue;
            }
            if let Some(t) = self.probe(root, va, shift, now) {
                *hint = shift;
                return Some(t);
            }
        }
        None
    }

    #[inline(always)]
    fn probe(&self, root: u64, va: VirtAddr, want_shift: u8, now: TlbTime) -> Option<Translation> {
        let vpage = va.0 >> want_shift;
        let set = self.sets.get(self.set_of(root, vpage, want_shift))?;
        for s in &set.ways {
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 != 0 {
                continue;
            }
            let r = s.root.load(Ordering::Relaxed);
            let v = s.vpage.load(Ordering::Relaxed);
            let value = s.value.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) != s1 {
                continue;
            }
            let shift = (value & 0x3f) as u8;
            if shift != want_shift || r != root || v != vpage {
                continue;
            }
            if let Some(valid) = self.validity_us {
                if now.0.saturating_sub(s1 >> 16) > valid {
                    continue;
                }
            }
            let size = page_size(shift);
            return Some(Translation {
                va,
                pa: PhysAddr((value & !0xfff) | (va.0 & size.mask())),
                size,
                flags: PageFlags::from_bits(((value >> 6) & 7) as u8),
            });
        }
        None
    }

    /// Records a translation made under `root`. Pages smaller than 4 KiB are not cached.
    #[inline]
    pub fn insert(&self, root: u64, t: &Translation, now: TlbTime) {
        let shift = t.size.shift() as u8;
        if shift < 12 {
            return;
        }
        let vpage = t.va.0 >> shift;
        let Some(set) = self.sets.get(self.set_of(root, vpage, shift)) else {
            return;
        };
        let fits = |s: &Slot| {
            let v = s.value.load(Ordering::Relaxed);
            v & 0x3f == 0
                || (v & 0x3f == u64::from(shift)
                    && s.vpage.load(Ordering::Relaxed) == vpage
                    && s.root.load(Ordering::Relaxed) == root)
        };
        let s = if fits(&set.ways[0]) {
            &set.ways[0]
        } else if fits(&set.ways[1]) {
            &set.ways[1]
        } else {
            &set.ways[(vpage as usize) & 1]
        };
        let s1 = s.seq.load(Ordering::Relaxed);
        if s1 & 1 != 0
            || s.seq
                .compare_exchange(s1, s1 | 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return; // another writer holds the slot: skip, it is only a cache
        }
        fence(Ordering::Release);
        s.root.store(root, Ordering::Relaxed);
        s.vpage.store(vpage, Ordering::Relaxed);
        let value = t.page_pa().0 & !0xfff | u64::from(shift) | u64::from(t.flags.bits()) << 6;
        s.value.store(value, Ordering::Relaxed);
        let version = ((s1 & VERSION_MASK) + 2) & VERSION_MASK & !1;
        s.seq.store((now.0 << 16) | version, Ordering::Release);
    }

    /// Drops every entry.
    pub fn flush(&self) {
        for s in self.sets.iter().flat_map(|set| set.ways.iter()) {
            let s1 = s.seq.load(Ordering::Relaxed);
            if s1 & 1 == 0
                && s.seq
                    .compare_exchange(s1, s1 | 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                fence(Ordering::Release);
                s.value.store(0, Ordering::Relaxed);
                let version = ((s1 & VERSION_MASK) + 2) & VERSION_MASK & !1;
                s.seq
                    .store((s1 & !VERSION_MASK) | version, Ordering::Release);
            } else {
                // A writer is filling it right now; clearing the value still invalidates
                // it unless that writer's store lands afterwards (rare, and harmless for
                // dumps; live targets rely on the validity time too).
                s.value.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlens_core::PageSize;

    fn t(va: u64, pa: u64, size: PageSize) -> Translation {
        Translation {
            va: VirtAddr(va),
            pa: PhysAddr(pa),
            size,
            flags: PageFlags {
                writable: true,
                user: false,
                nx: true,
            },
        }
    }

    #[test]
    fn hit_miss_large_and_flush() {
        let tlb = Tlb::with_shifts(TlbConfig::default(), &[12, 21, 30]);
        let now = tlb.now();
        assert!(tlb.lookup(0x1000, VirtAddr(0x4000_1234), now).is_none());
        tlb.insert(0x1000, &t(0x4000_1234, 0x20_1234, PageSize::M2), now);
        let hit = tlb.lookup(0x1000, VirtAddr(0x4000_1fff), now).unwrap();
        assert_eq!(hit.pa, PhysAddr(0x20_1fff));
        assert_eq!(hit.size, PageSize::M2);
        assert!(hit.flags.writable && hit.flags.nx && !hit.flags.user);
        // Another root does not hit.
        assert!(tlb.lookup(0x2000, VirtAddr(0x4000_1fff), now).is_none());
        tlb.flush();
        assert!(tlb.lookup(0x1000, VirtAddr(0x4000_1fff), now).is_none());
    }

    #[test]
    fn validity_expires() {
        let tlb = Tlb::new(
            TlbConfig {
                entries: 64,
                validity: Some(Duration::from_millis(1)),
            },
            12,
        );
        let now = tlb.now();
        tlb.insert(0, &t(0x1000, 0x5000, PageSize::K4), now);
        assert!(tlb.lookup(0, VirtAddr(0x1000), now).is_some());
        std::thread::sleep(Duration::from_millis(5));
        assert!(tlb.lookup(0, VirtAddr(0x1000), tlb.now()).is_none());
    }

    #[test]
    fn many_threads() {
        let tlb = Tlb::new(
            TlbConfig {
                entries: 256,
                validity: None,
            },
            12,
        );
        std::thread::scope(|sc| {
            for th in 0..4u64 {
                let tlb = &tlb;
                sc.spawn(move || {
                    let now = tlb.now();
                    for i in 0..20_000u64 {
                        let va = ((i * 7 + th) % 1024) << 12;
                        tlb.insert(0, &t(va, va + (1 << 30), PageSize::K4), now);
                        if let Some(h) = tlb.lookup(0, VirtAddr(va + 8), now) {
                            // Never a torn entry: pa always belongs to the va.
                            assert_eq!(h.pa.0, va + (1 << 30) + 8);
                        }
                    }
                });
            }
        });
    }
}

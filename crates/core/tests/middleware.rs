//! The middleware against a simple in-test memory: the page cache returns exactly what
//! the inner view returns (bytes and outcomes, gaps included), honours capacity, validity
//! time and writes; metrics count what passes and fill the histogram; delay delays.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use memlens_core::mem::{finish_partial, record_failure};
use memlens_core::middleware::{CacheConfig, Delay, Metrics, PageCache, ZeroFill};
use memlens_core::{
    Error, MemoryMetadata, MemoryView, MemoryWrite, PhysAddr, ReadOp, Result, WriteOp,
};
use proptest::prelude::*;

/// `len` bytes of memory with holes; counts the operations it serves.
struct Sim {
    data: RwLock<Vec<u8>>,
    holes: Vec<(u64, u64)>,
    ops: AtomicU64,
}

impl Sim {
    fn new(len: usize, holes: Vec<(u64, u64)>) -> Self {
        let data = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        Self {
            data: RwLock::new(data),
            holes,
            ops: AtomicU64::new(0),
        }
    }
    fn hole(&self, a: u64) -> bool {
        self.holes.iter().any(|&(s, e)| a >= s && a < e)
    }
}

impl MemoryView for Sim {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        let data = self.data.read().unwrap();
        for op in ops.iter_mut() {
            self.ops.fetch_add(1, Relaxed);
            op.result = Ok(());
            let total = op.buf.len();
            for i in 0..total {
                let a = op.addr.0 + i as u64;
                match data.get(a as usize) {
                    Some(b) if !self.hole(a) => op.buf[i] = *b,
                    Some(_) => record_failure(
                        &mut op.result,
                        total,
                        i,
                        1,
                        Error::Gap {
                            addr: PhysAddr(a - (a % 4096).min(i as u64)),
                        },
                    ),
                    None => record_failure(
                        &mut op.result,
                        total,
                        i,
                        1,
                        Error::OutOfRange {
                            addr: op.addr,
                            len: total,
                            max: PhysAddr(data.len() as u64 - 1),
                        },
                    ),
                }
            }
            finish_partial(&mut op.result);
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(self.data.read().unwrap().len() as u64 - 1),
            real_size: self.data.read().unwrap().len() as u64,
            readonly: false,
            preferred_batch: 64,
        }
    }
}

impl MemoryWrite for Sim {
    fn write_batch(&self, ops: &mut [WriteOp<'_, PhysAddr>]) {
        let mut data = self.data.write().unwrap();
        for op in ops.iter_mut() {
            let a = op.addr.0 as usize;
            op.result = match data.get_mut(a..a + op.buf.len()) {
                Some(d) => {
                    d.copy_from_slice(op.buf);
                    Ok(())
                }
                None => Err(Error::Gap { addr: op.addr }),
            };
        }
    }
}

type Outcome = (Vec<u8>, Result<()>);

fn read_all<M: MemoryView<Addr = PhysAddr>>(m: &M, reqs: &[(u64, usize)]) -> Vec<Outcome> {
    let mut bufs: Vec<Vec<u8>> = reqs.iter().map(|&(_, n)| vec![0xEE; n]).collect();
    let mut ops: Vec<ReadOp<'_, PhysAddr>> = bufs
        .iter_mut()
        .zip(reqs)
        .map(|(b, &(a, _))| ReadOp::new(PhysAddr(a), b))
        .collect();
    m.read_batch(&mut ops);
    let results: Vec<Result<()>> = ops.into_iter().map(|o| o.result).collect();
    bufs.into_iter().zip(results).collect()
}

/// Bytes must agree only where the read succeeded (failed bytes are unspecified).
fn same(a: &[Outcome], b: &[Outcome]) {
    assert_eq!(a.len(), b.len());
    for (i, ((ba, ra), (bb, rb))) in a.iter().zip(b).enumerate() {
        assert_eq!(ra, rb, "outcome of op {i}");
        if ra.is_ok() {
            assert_eq!(ba, bb, "bytes of op {i}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn cache_returns_what_the_inner_view_returns(
        reqs in prop::collection::vec((0u64..0x9000, 0usize..0x1800), 1..40),
        page_shift in 6u32..13,
        capacity_pages in 1u64..64,
    ) {
        let inner = Sim::new(0x8000, vec![(0x2100, 0x2300), (0x5000, 0x6000)]);
        let ps = 1u64 << page_shift;
        let cache = PageCache::new(
            Sim::new(0x8000, vec![(0x2100, 0x2300), (0x5000, 0x6000)]),
            CacheConfig { capacity: capacity_pages * ps, page_size: ps, validity: None },
        );
        let want = read_all(&inner, &reqs);
        // Twice: the second round is served (partly) from the cache.
        same(&read_all(&cache, &reqs), &want);
        same(&read_all(&cache, &reqs), &want);
    }
}

#[test]
fn hits_do_not_reach_the_inner_view() {
    let cache = PageCache::new(Sim::new(0x10000, vec![]), CacheConfig::default());
    let reqs: Vec<(u64, usize)> = (0..16).map(|i| (i * 4096 + 8, 8)).collect();
    read_all(&cache, &reqs);
    let after_first = cache.inner().ops.load(Relaxed);
    assert_eq!(after_first, 16, "one inner op per missing page");
    read_all(&cache, &reqs);
    assert_eq!(cache.inner().ops.load(Relaxed), after_first, "all hits");
}

#[test]
fn capacity_is_honoured() {
    // 16 shards of one page each: 64 distinct pages cannot all stay cached.
    let cfg = CacheConfig {
        capacity: 16 * 4096,
        page_size: 4096,
        validity: None,
    };
    let cache = PageCache::new(Sim::new(64 * 4096, vec![]), cfg);
    let reqs: Vec<(u64, usize)> = (0..64).map(|i| (i * 4096, 8)).collect();
    read_all(&cache, &reqs);
    read_all(&cache, &reqs);
    assert!(
        cache.inner().ops.load(Relaxed) > 64 + 16,
        "evicted pages must be read again: {} inner ops",
        cache.inner().ops.load(Relaxed)
    );
}

#[test]
fn entries_expire_after_the_validity_time() {
    let cfg = CacheConfig {
        validity: Some(Duration::from_millis(50)),
        ..CacheConfig::default()
    };
    let cache = PageCache::new(Sim::new(0x4000, vec![]), cfg);
    let old = read_all(&cache, &[(0x1000, 4)])[0].0.clone();
    // Change the memory behind the cache's back (a live target).
    cache.inner().data.write().unwrap()[0x1000..0x1004].copy_from_slice(b"live");
    assert_eq!(
        read_all(&cache, &[(0x1000, 4)])[0].0,
        old,
        "still valid: cached"
    );
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(
        read_all(&cache, &[(0x1000, 4)])[0].0,
        b"live",
        "expired: re-read"
    );
}

#[test]
fn writes_through_the_cache_invalidate_it() {
    let cache = PageCache::new(Sim::new(0x4000, vec![]), CacheConfig::default());
    read_all(&cache, &[(0x2000, 4)]);
    let mut w = [WriteOp::new(PhysAddr(0x2002), b"zz".as_slice())];
    cache.write_batch(&mut w);
    assert!(w[0].result.is_ok());
    let got = &read_all(&cache, &[(0x2000, 4)])[0].0;
    assert_eq!(&got[2..], b"zz");
}

#[test]
fn metrics_count_ops_bytes_failures_and_latency() {
    let m = Metrics::new(Sim::new(0x4000, vec![(0x1000, 0x2000)]));
    read_all(&m, &[(0, 8), (0x1000, 16), (0x3000, 4)]);
    read_all(&m, &[(0x10, 100)]);
    let s = m.snapshot();
    assert_eq!((s.batches, s.ops, s.bytes, s.failed), (2, 4, 128, 1));
    assert_eq!(
        s.hist.iter().sum::<u64>(),
        2,
        "one histogram entry per batch"
    );
    let p50 = s.latency_quantile_ns(0.5).expect("latencies recorded");
    assert!(p50 >= 2 && p50.is_power_of_two(), "{p50}");
    let text = s.to_string();
    assert!(
        text.contains("2 batches") && text.contains("4 reads (1 failed)"),
        "{text}"
    );
}

#[test]
fn delay_costs_at_least_the_configured_latency_per_batch() {
    let d = Delay::new(
        Sim::new(0x1000, vec![]),
        Duration::from_millis(20),
        Duration::from_millis(1),
    );
    let t = Instant::now();
    let out = read_all(&d, &[(0, 8), (8, 8), (16, 8)]);
    assert!(
        t.elapsed() >= Duration::from_millis(23),
        "{:?}",
        t.elapsed()
    );
    assert!(out.iter().all(|(_, r)| r.is_ok()));
}

#[test]
fn zero_fill_over_a_cache_fills_gaps_only() {
    let z = ZeroFill::new(PageCache::new(
        Sim::new(0x4000, vec![(0x1000, 0x2000)]),
        CacheConfig::default(),
    ));
    let out = read_all(&z, &[(0xff8, 16), (0x3ff8, 16)]);
    assert!(out[0].1.is_ok());
    assert_eq!(&out[0].0[8..], &[0; 8]);
    assert!(out[1].1.is_ok(), "past the end reads as zeros too");
    assert_eq!(z.filled(), (2, 16));
}

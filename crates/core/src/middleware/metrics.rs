//! Counting middleware: batches, operations, bytes, failures, and a latency histogram of
//! batches (power-of-two nanosecond buckets). Counters are relaxed atomics, so measuring
//! costs a few nanoseconds per batch and never takes a lock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::mem::{MemRange, MemoryMetadata, MemoryView, MemoryWrite, ReadOp, WriteOp};

const BUCKETS: usize = 40;

/// Counts what passes through to an inner view.
pub struct Metrics<M> {
    inner: M,
    batches: AtomicU64,
    ops: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicU64,
    writes: AtomicU64,
    hist: [AtomicU64; BUCKETS],
}

/// A snapshot of [`Metrics`] counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    /// Read batches.
    pub batches: u64,
    /// Read operations.
    pub ops: u64,
    /// Bytes requested by reads.
    pub bytes: u64,
    /// Read operations that failed (fully or partly).
    pub failed: u64,
    /// Write operations.
    pub writes: u64,
    /// Batch latency histogram: `hist[i]` counts batches that took `[2^i, 2^(i+1))` ns.
    pub hist: Vec<u64>,
}

impl<M: MemoryView> Metrics<M> {
    /// Wraps `inner`.
    pub fn new(inner: M) -> Self {
        Self {
            inner,
            batches: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            hist: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The wrapped view.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Current counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            batches: self.batches.load(Relaxed),
            ops: self.ops.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            failed: self.failed.load(Relaxed),
            writes: self.writes.load(Relaxed),
            hist: self.hist.iter().map(|h| h.load(Relaxed)).collect(),
        }
    }
}

impl MetricsSnapshot {
    /// Approximate latency quantile `q` (0..=1) in nanoseconds (upper bucket bound).
    pub fn latency_quantile_ns(&self, q: f64) -> Option<u64> {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(1u64 << (i + 1));
            }
        }
        None
    }
}

impl fmt::Display for MetricsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} batches, {} reads ({} failed), {} bytes, {} writes",
            self.batches, self.ops, self.failed, self.bytes, self.writes
        )?;
        if let (Some(p50), Some(p99)) = (
            self.latency_quantile_ns(0.5),
            self.latency_quantile_ns(0.99),
        ) {
            write!(f, "; batch latency p50 < {p50} ns, p99 < {p99} ns")?;
        }
        Ok(())
    }
}

impl<M: MemoryView> MemoryView for Metrics<M> {
    type Addr = M::Addr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, Self::Addr>]) {
        let t = Instant::now();
        self.inner.read_batch(ops);
        let ns = u64::try_from(t.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let b = (63 - ns.leading_zeros() as usize).min(BUCKETS - 1);
        self.hist[b].fetch_add(1, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.ops.fetch_add(ops.len() as u64, Relaxed);
        let (mut bytes, mut failed) = (0u64, 0u64);
        for op in ops.iter() {
            bytes += op.buf.len() as u64;
            failed += u64::from(op.result.is_err());
        }
        self.bytes.fetch_add(bytes, Relaxed);
        self.failed.fetch_add(failed, Relaxed);
    }
    fn metadata(&self) -> MemoryMetadata<Self::Addr> {
        self.inner.metadata()
    }
    fn ranges(&self) -> Vec<MemRange<Self::Addr>> {
        self.inner.ranges()
    }
}

impl<M: MemoryWrite> MemoryWrite for Metrics<M> {
    fn write_batch(&self, ops: &mut [WriteOp<'_, Self::Addr>]) {
        self.writes.fetch_add(ops.len() as u64, Relaxed);
        self.inner.write_batch(ops)
    }
}

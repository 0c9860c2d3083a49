//! Simulated latency, for tests and benchmarks of slow targets: every batch costs a fixed
//! delay plus a per-operation delay. Sleeping per *batch* (not per op) is the point: it
//! makes the benefit of batching visible.

use std::time::Duration;

use crate::mem::{MemRange, MemoryMetadata, MemoryView, MemoryWrite, ReadOp, WriteOp};

/// Adds latency to every batch of an inner view.
pub struct Delay<M> {
    inner: M,
    per_batch: Duration,
    per_op: Duration,
}

impl<M: MemoryView> Delay<M> {
    /// Wraps `inner`: each batch sleeps `per_batch + per_op × ops`.
    pub fn new(inner: M, per_batch: Duration, per_op: Duration) -> Self {
        Self {
            inner,
            per_batch,
            per_op,
        }
    }

    fn sleep(&self, n: usize) {
        let d = self.per_batch
            + self
                .per_op
                .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }
}

impl<M: MemoryView> MemoryView for Delay<M> {
    type Addr = M::Addr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, Self::Addr>]) {
        self.sleep(ops.len());
        self.inner.read_batch(ops)
    }
    fn metadata(&self) -> MemoryMetadata<Self::Addr> {
        self.inner.metadata()
    }
    fn ranges(&self) -> Vec<MemRange<Self::Addr>> {
        self.inner.ranges()
    }
}

impl<M: MemoryWrite> MemoryWrite for Delay<M> {
    fn write_batch(&self, ops: &mut [WriteOp<'_, Self::Addr>]) {
        self.sleep(ops.len());
        self.inner.write_batch(ops)
    }
}

//! Throughput measurement of any memory view, shared by `memlens bench phys|virt` and the
//! criterion benches. **Key decision: every figure is reported next to a memcpy ceiling
//! measured in the same run** — random copies of the same sizes from an in-memory buffer of
//! the same span — so a number is read as "x % of what this machine can do", not as an
//! absolute that means nothing on another machine.
//!
//! Reads are size-aligned, at random addresses inside the view's ranges (fixed seed, so
//! runs are repeatable), issued through the batched API.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::addr::Address;
use crate::mem::{MemRange, MemoryView, ReadOp};

/// Most bytes one batch may read (`size × batch`): the batch's buffers are allocated at
/// once, and 64 MiB reads in batches of a million would be 64 TiB. Combinations above it
/// are skipped (the CLI refuses them first, with a message).
pub const MAX_BATCH_BYTES: usize = 1 << 30;

/// The bytes of a batch of `batch` reads of `size` bytes, if at most [`MAX_BATCH_BYTES`].
pub fn batch_bytes(size: usize, batch: usize) -> Option<usize> {
    size.checked_mul(batch).filter(|b| *b <= MAX_BATCH_BYTES)
}

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Read sizes in bytes.
    pub sizes: Vec<usize>,
    /// Batch lengths (a combination reading more than [`MAX_BATCH_BYTES`] per batch is
    /// skipped).
    pub batches: Vec<usize>,
    /// Time per (size, batch) combination.
    pub duration: Duration,
    /// Seed of the address generator.
    pub seed: u64,
    /// Also measure the memcpy ceiling (allocates a buffer of the ranges' span, capped).
    pub ceiling: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            sizes: vec![8, 256, 4096, 65536],
            batches: vec![1, 16, 256],
            duration: Duration::from_millis(1000),
            seed: 0x6d65_6d6c_656e_7321,
            ceiling: true,
        }
    }
}

/// One measured combination.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchRow {
    /// Read size in bytes.
    pub size: usize,
    /// Batch length.
    pub batch: usize,
    /// Completed reads.
    pub reads: u64,
    /// Reads that failed (should be 0 on mapped ranges).
    pub failed: u64,
    /// Reads per second.
    pub reads_per_sec: f64,
    /// Bytes per second.
    pub bytes_per_sec: f64,
    /// Reads per second of the memcpy ceiling for this size, when measured.
    pub ceiling_reads_per_sec: Option<f64>,
    /// Bytes per second of the memcpy ceiling, when measured.
    pub ceiling_bytes_per_sec: Option<f64>,
    /// `bytes_per_sec / ceiling_bytes_per_sec` in percent.
    pub percent_of_ceiling: Option<f64>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchReport {
    /// Bytes covered by the ranges read.
    pub span_bytes: u64,
    /// Size of the ceiling's buffer (the span, capped at 4 GiB).
    pub ceiling_buffer_bytes: u64,
    /// Measured rows.
    pub rows: Vec<BenchRow>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:>8} {:>6} {:>14} {:>12} {:>14} {:>12} {:>7}",
            "size", "batch", "reads/s", "MB/s", "memcpy reads/s", "memcpy MB/s", "% ceil"
        )?;
        for r in &self.rows {
            let opt = |v: Option<f64>, scale: f64| {
                v.map_or("-".to_string(), |v| format!("{:.0}", v / scale))
            };
            writeln!(
                f,
                "{:>8} {:>6} {:>14.0} {:>12.0} {:>14} {:>12} {:>7}",
                r.size,
                r.batch,
                r.reads_per_sec,
                r.bytes_per_sec / 1e6,
                opt(r.ceiling_reads_per_sec, 1.0),
                opt(r.ceiling_bytes_per_sec, 1e6),
                r.percent_of_ceiling
                    .map_or("-".into(), |p| format!("{p:.0}%")),
            )?;
        }
        if self.rows.iter().any(|r| r.failed > 0) {
            writeln!(
                f,
                "warning: some reads failed; see the `failed` column in --json"
            )?;
        }
        Ok(())
    }
}

/// xorshift64*: tiny, fast, reproducible; quality is ample for picking addresses.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Random size-aligned offsets into the concatenation of `ranges` (in "span" coordinates:
/// range i starts where range i-1 ended). Ranges too small for `size` are skipped.
fn offsets<A: Address>(ranges: &[MemRange<A>], size: usize, n: usize, seed: u64) -> Vec<(A, u64)> {
    let size = size as u64;
    let usable: Vec<(A, u64, u64)> = {
        let mut span = 0u64;
        ranges
            .iter()
            .filter_map(|r| {
                let first = r.base.to_u64().div_ceil(size).checked_mul(size)?;
                let end = r.end_u64();
                let slots = end.checked_sub(first)? / size;
                let start_span = span;
                span = span.saturating_add(r.len);
                (slots > 0).then_some((
                    A::from_u64(first),
                    slots,
                    start_span.saturating_add(first - r.base.to_u64()),
                ))
            })
            .collect()
    };
    let total: u64 = usable.iter().map(|u| u.1).fold(0, u64::saturating_add);
    if total == 0 {
        return Vec::new();
    }
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|_| {
            let mut k = rng.next() % total;
            for (base, slots, span_off) in &usable {
                if k < *slots {
                    return (base.wrapping_add(k * size), span_off.wrapping_add(k * size));
                }
                k -= slots;
            }
            (usable[0].0, usable[0].2)
        })
        .collect()
}

/// Measures `mem` as described by `cfg` (see the module documentation).
pub fn run<M: MemoryView + ?Sized>(mem: &M, cfg: &BenchConfig) -> BenchReport {
    let ranges = mem.ranges();
    let span: u64 = ranges.iter().map(|r| r.len).fold(0, u64::saturating_add);
    let cap = span.min(4 << 30);
    let ceiling_buf: Option<Vec<u8>> = cfg.ceiling.then(|| {
        // Touch every page so the ceiling does not measure page faults.
        let mut v = vec![0u8; usize::try_from(cap).unwrap_or(0)];
        for (i, b) in v.iter_mut().enumerate().step_by(4096) {
            *b = i as u8;
        }
        v
    });
    let mut rows = Vec::new();
    for &size in &cfg.sizes {
        if size == 0 {
            continue;
        }
        let addrs = offsets(&ranges, size, 1 << 16, cfg.seed);
        if addrs.is_empty() {
            continue;
        }
        for &batch in &cfg.batches {
            let batch = batch.max(1);
            let Some(slab_len) = batch_bytes(size, batch) else {
                log::warn!(
                    "bench: {size} × {batch} bytes per batch is over {MAX_BATCH_BYTES}: skipped"
                );
                continue;
            };
            let mut slab = vec![0u8; slab_len];
            let (reads, failed, secs) = measure(cfg.duration, batch, &addrs, |chunk| {
                let mut ops: Vec<ReadOp<'_, M::Addr>> = slab
                    .chunks_mut(size)
                    .zip(chunk)
                    .map(|(b, (a, _))| ReadOp::new(*a, b))
                    .collect();
                mem.read_batch(&mut ops);
                ops.iter().filter(|o| o.result.is_err()).count() as u64
            });
            let (c_reads, c_secs) = match &ceiling_buf {
                Some(buf) => {
                    let mut dst = vec![0u8; slab_len];
                    let (r, _, s) = measure(cfg.duration / 2, batch, &addrs, |chunk| {
                        for (d, (_, off)) in dst.chunks_mut(size).zip(chunk) {
                            let o = (*off % cap.saturating_sub(size as u64).max(1)) as usize;
                            if let Some(src) = buf.get(o..o + size) {
                                d.copy_from_slice(src);
                            }
                        }
                        std::hint::black_box(&dst);
                        0
                    });
                    (Some(r), s)
                }
                None => (None, 1.0),
            };
            let rps = reads as f64 / secs;
            let crps = c_reads.map(|r| r as f64 / c_secs);
            rows.push(BenchRow {
                size,
                batch,
                reads,
                failed,
                reads_per_sec: rps,
                bytes_per_sec: rps * size as f64,
                ceiling_reads_per_sec: crps,
                ceiling_bytes_per_sec: crps.map(|c| c * size as f64),
                percent_of_ceiling: crps.map(|c| 100.0 * rps / c),
            });
        }
    }
    BenchReport {
        span_bytes: span,
        ceiling_buffer_bytes: ceiling_buf.map_or(0, |b| b.len() as u64),
        rows,
    }
}

/// Calls `f` on consecutive chunks of `addrs` (wrapping) until `dur` has passed; returns
/// (reads, failures, seconds).
fn measure<A>(
    dur: Duration,
    batch: usize,
    addrs: &[A],
    mut f: impl FnMut(&[A]) -> u64,
) -> (u64, u64, f64) {
    let start = Instant::now();
    let (mut reads, mut failed, mut pos, mut checks) = (0u64, 0u64, 0usize, 0usize);
    loop {
        if pos + batch > addrs.len() {
            pos = 0;
        }
        let end = (pos + batch).min(addrs.len());
        failed += f(&addrs[pos..end]);
        reads += (end - pos) as u64;
        pos = end;
        // Reading the clock can cost microseconds on virtual machines (no vDSO TSC), more
        // than a small read: check it only every ~4096 reads.
        checks += 1;
        if checks >= (4096 / batch).max(1) {
            checks = 0;
            if start.elapsed() >= dur {
                break;
            }
        }
    }
    (reads, failed, start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PhysAddr;

    #[test]
    fn offsets_stay_inside_ranges_and_aligned() {
        let ranges = [
            MemRange::new(PhysAddr(0x1000), 0x3000),
            MemRange::new(PhysAddr(0x10_0003), 0x2000),
        ];
        let v = offsets(&ranges, 4096, 1000, 7);
        assert_eq!(v.len(), 1000);
        for (a, _) in v {
            assert_eq!(a.0 % 4096, 0);
            assert!(
                ranges
                    .iter()
                    .any(|r| r.contains(a) && r.contains(PhysAddr(a.0 + 4095))),
                "{a}"
            );
        }
        assert!(offsets(&ranges, 1 << 20, 10, 7).is_empty());
        // Ranges whose lengths add up past 2^64 do not overflow.
        let huge = [
            MemRange::new(PhysAddr(0), u64::MAX / 2 + 4096),
            MemRange::new(PhysAddr(u64::MAX / 2 + 8192), u64::MAX / 2 - 8192),
        ];
        assert_eq!(offsets(&huge, 4096, 10, 7).len(), 10);
    }

    /// A size × batch above MAX_BATCH_BYTES is refused by `batch_bytes` and skipped by
    /// `run` instead of allocating it.
    #[test]
    fn huge_batches_are_skipped() {
        assert_eq!(batch_bytes(64 << 20, 16), Some(1 << 30));
        assert_eq!(batch_bytes(64 << 20, 1 << 20), None);
        assert_eq!(batch_bytes(usize::MAX, 2), None);
        struct Zeros;
        impl MemoryView for Zeros {
            type Addr = PhysAddr;
            fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
                for op in ops {
                    op.buf.fill(0);
                    op.result = Ok(());
                }
            }
            fn metadata(&self) -> crate::mem::MemoryMetadata<PhysAddr> {
                crate::mem::MemoryMetadata {
                    max_addr: PhysAddr((256 << 20) - 1),
                    real_size: 256 << 20,
                    readonly: true,
                    preferred_batch: 1,
                }
            }
        }
        let cfg = BenchConfig {
            sizes: vec![64 << 20, 4096],
            batches: vec![1 << 20, 17],
            duration: Duration::from_millis(1),
            ceiling: false,
            ..BenchConfig::default()
        };
        let r = run(&Zeros, &cfg);
        let rows: Vec<(usize, usize)> = r.rows.iter().map(|r| (r.size, r.batch)).collect();
        assert_eq!(rows, [(4096, 17)]);
    }
}

//! Built-in benchmarks behind `memlens bench walk|translate|virt`. **Key decision: the
//! benchmarks are library functions returning serialisable results**, so the CLI, the
//! criterion benches and the tests measure exactly the same code on the user's own
//! targets. Random numbers come from a fixed-seed SplitMix64 so runs are repeatable.

use std::fmt;
use std::time::{Duration, Instant};

use memlens_core::{PhysicalMemory, ReadOp, VirtAddr};
use serde::{Deserialize, Serialize};

use crate::error::ArchError;
use crate::mmu::Mmu;
use crate::pagemap::{page_map, MapRange, PageMapOptions};
use crate::types::Roots;
use crate::view::VirtualView;
use crate::walker::unset;

/// A small deterministic random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A value in `[0, n)` (`0` when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }
}

/// Most timed runs of [`bench_walk`] and [`bench_translate`]: their times are kept to
/// take the median, so a count from the caller is an allocation size.
pub const MAX_RUNS: usize = 1000;

/// Most addresses per batch of [`bench_translate`] (each has an address and a result).
pub const MAX_TRANSLATE_BATCH: usize = 1 << 20;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU time consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`), so that results
/// stay meaningful on a loaded machine; `None` where unavailable.
#[cfg(unix)]
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// CPU time consumed by the calling thread; `None` on this platform.
#[cfg(not(unix))]
pub fn thread_cpu_time() -> Option<Duration> {
    None
}

/// Wall and CPU time of one run of `f`.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration, Option<Duration>) {
    let c0 = thread_cpu_time();
    let t = Instant::now();
    let r = f();
    let wall = t.elapsed();
    let cpu = match (c0, thread_cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    (r, wall, cpu)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Result of [`bench_walk`]: time to compute the whole page map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkBench {
    /// Architecture name.
    pub arch: String,
    /// Roots walked.
    pub roots: Roots,
    /// Number of timed runs.
    pub runs: usize,
    /// Ranges in the (physically coalesced) page map.
    pub ranges: usize,
    /// Pages (leaf entries) seen.
    pub pages: u64,
    /// Table pages read per run.
    pub tables_read: u64,
    /// Bytes mapped.
    pub mapped_bytes: u64,
    /// Fastest run, milliseconds.
    pub min_ms: f64,
    /// Median run, milliseconds.
    pub median_ms: f64,
    /// Fastest run in CPU time of the thread, milliseconds (when measurable).
    pub min_cpu_ms: Option<f64>,
    /// Median run in CPU time of the thread, milliseconds (when measurable).
    pub median_cpu_ms: Option<f64>,
}

impl fmt::Display for WalkBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "page map ({}, root {}): {} ranges, {} pages, {} mapped, {} tables",
            self.arch,
            self.roots.lower,
            self.ranges,
            self.pages,
            memlens_core::size::format_size_approx(self.mapped_bytes),
            self.tables_read
        )?;
        write!(
            f,
            "{} runs: min {:.3} ms, median {:.3} ms",
            self.runs, self.min_ms, self.median_ms
        )?;
        if let (Some(a), Some(b)) = (self.min_cpu_ms, self.median_cpu_ms) {
            write!(f, " (CPU time: min {a:.3} ms, median {b:.3} ms)")?;
        }
        Ok(())
    }
}

/// Times the whole page map `runs` times (1 to [`MAX_RUNS`]) on one thread.
pub fn bench_walk<P: PhysicalMemory + ?Sized>(
    mem: &P,
    mmu: &Mmu,
    roots: &Roots,
    runs: usize,
) -> WalkBench {
    let runs = runs.clamp(1, MAX_RUNS);
    let opts = PageMapOptions::default();
    let mut times = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let (pm, wall, c) = timed(|| page_map(mem, mmu, roots, &opts));
        times.push(wall);
        cpu.extend(c);
        last = Some(pm);
    }
    times.sort();
    cpu.sort();
    let cpu_ok = cpu.len() == runs;
    let pm = last.unwrap_or_default();
    WalkBench {
        arch: mmu.name().to_string(),
        roots: *roots,
        runs,
        ranges: pm.ranges.len(),
        pages: pm.stats.pages,
        tables_read: pm.stats.tables_read,
        mapped_bytes: pm.stats.mapped_bytes,
        min_ms: times.first().copied().map(ms).unwrap_or(0.0),
        median_ms: times.get(runs / 2).copied().map(ms).unwrap_or(0.0),
        min_cpu_ms: cpu.first().copied().map(ms).filter(|_| cpu_ok),
        median_cpu_ms: cpu.get(runs / 2).copied().map(ms).filter(|_| cpu_ok),
    }
}

/// Picks random addresses inside mapped ranges such that `[a, a+size)` stays inside one
/// range, alternating between the two halves when both have ranges.
pub struct AddressSampler {
    halves: Vec<(Vec<MapRange>, Vec<u64>)>,
}

impl AddressSampler {
    /// A sampler over `ranges` for reads of `size` bytes; `None` if no range is large
    /// enough.
    pub fn new(ranges: &[MapRange], size: u64) -> Option<Self> {
        let mut halves: Vec<(Vec<MapRange>, Vec<u64>)> = Vec::new();
        for upper in [false, true] {
            let rs: Vec<MapRange> = ranges
                .iter()
                .filter(|r| (r.va.0 >> 63 != 0) == upper && r.len >= size)
                .copied()
                .collect();
            if rs.is_empty() {
                continue;
            }
            let mut acc = 0u64;
            let cum = rs
                .iter()
                .map(|r| {
                    acc = acc.saturating_add(r.len - size + 1);
                    acc
                })
                .collect();
            halves.push((rs, cum));
        }
        if halves.is_empty() {
            None
        } else {
            Some(Self { halves })
        }
    }

    /// A random address (the `k`-th pick alternates halves).
    pub fn pick(&self, rng: &mut SplitMix64, k: usize) -> VirtAddr {
        let Some((rs, cum)) = self.halves.get(k % self.halves.len()) else {
            return VirtAddr(0);
        };
        let total = cum.last().copied().unwrap_or(0);
        let x = rng.below(total);
        let i = cum
            .partition_point(|c| *c <= x)
            .min(rs.len().saturating_sub(1));
        let before = if i == 0 { 0 } else { cum[i - 1] };
        VirtAddr(rs[i].va.0.wrapping_add(x - before))
    }

    /// Number of halves with mapped ranges (1 or 2).
    pub fn halves(&self) -> usize {
        self.halves.len()
    }
}

/// Settings of [`bench_virt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtBenchConfig {
    /// Read sizes in bytes.
    pub sizes: Vec<usize>,
    /// Batch lengths.
    pub batches: Vec<usize>,
    /// Time spent on each (size, batch) case.
    pub time_per_case: Duration,
    /// Random seed.
    pub seed: u64,
}

impl Default for VirtBenchConfig {
    fn default() -> Self {
        Self {
            sizes: vec![8, 64, 4096, 65536],
            batches: vec![1, 16, 256],
            time_per_case: Duration::from_millis(300),
            seed: 1,
        }
    }
}

/// One (size, batch) case of [`bench_virt`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtBenchRow {
    /// Bytes per read.
    pub size: usize,
    /// Reads per batch.
    pub batch: usize,
    /// Reads done.
    pub reads: u64,
    /// Reads that failed (even partly).
    pub failed: u64,
    /// Seconds spent.
    pub secs: f64,
    /// Reads per second.
    pub reads_per_s: f64,
    /// Bytes per second.
    pub bytes_per_s: f64,
    /// Reads per second of the thread's CPU time (when measurable).
    pub reads_per_cpu_s: Option<f64>,
}

/// Result of [`bench_virt`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtBench {
    /// Architecture name.
    pub arch: String,
    /// Mapped ranges the addresses were drawn from.
    pub mapped_ranges: usize,
    /// Halves that had mapped ranges (1 or 2).
    pub halves: usize,
    /// One row per case.
    pub rows: Vec<VirtBenchRow>,
}

impl fmt::Display for VirtBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "virtual reads ({}, {} mapped ranges, {} half/halves)",
            self.arch, self.mapped_ranges, self.halves
        )?;
        writeln!(
            f,
            "{:>8} {:>6} {:>12} {:>14} {:>12} {:>16}",
            "SIZE", "BATCH", "READS", "READS/S", "MB/S", "READS/CPU-S"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:>8} {:>6} {:>12} {:>14.0} {:>12.1} {:>16}",
                r.size,
                r.batch,
                r.reads,
                r.reads_per_s,
                r.bytes_per_s / 1e6,
                r.reads_per_cpu_s
                    .map(|x| format!("{x:.0}"))
                    .unwrap_or_else(|| "-".into())
            )?;
        }
        Ok(())
    }
}

/// Addresses in the pool of [`bench_virt`].
const POOL: usize = 16384;

/// Random virtual reads over mapped pages of both halves, for every size × batch. Each
/// case draws a pool of 16 384 random mapped addresses (alternating halves), reads them
/// once untimed, then cycles through them for `time_per_case`.
pub fn bench_virt<P: PhysicalMemory>(
    view: &VirtualView<P>,
    cfg: &VirtBenchConfig,
) -> Result<VirtBench, ArchError> {
    let pm = view.page_map(&PageMapOptions {
        physically_contiguous: false,
        ..PageMapOptions::default()
    });
    let mut rows = Vec::new();
    let mut halves = 0;
    for &size in &cfg.sizes {
        let Some(sampler) = AddressSampler::new(&pm.ranges, size as u64) else {
            continue;
        };
        halves = halves.max(sampler.halves());
        for &batch in &cfg.batches {
            let batch = batch.max(1);
            let mut rng = SplitMix64::new(cfg.seed);
            // A fixed pool of addresses, touched once untimed: the timing then measures
            // translation and copying, not the first-touch page faults of a mapped dump.
            let pool: Vec<VirtAddr> = (0..POOL).map(|k| sampler.pick(&mut rng, k)).collect();
            let Some(slab) = memlens_core::bench::batch_bytes(size, batch) else {
                log::warn!("bench: {size} × {batch} bytes per batch is too large: skipped");
                continue;
            };
            let mut bufs = vec![0u8; slab];
            for chunk in pool.chunks(batch) {
                let mut ops: Vec<ReadOp<'_, VirtAddr>> = bufs
                    .chunks_mut(size.max(1))
                    .zip(chunk)
                    .map(|(b, a)| ReadOp::new(*a, b))
                    .collect();
                memlens_core::MemoryView::read_batch(view, &mut ops);
            }
            let (mut reads, mut failed) = (0u64, 0u64);
            let cpu0 = thread_cpu_time();
            let start = Instant::now();
            let mut k = 0usize;
            while start.elapsed() < cfg.time_per_case {
                for _ in 0..16 {
                    let mut ops: Vec<ReadOp<'_, VirtAddr>> = bufs
                        .chunks_mut(size.max(1))
                        .map(|b| {
                            k = (k + 1) % POOL;
                            ReadOp::new(pool[k], b)
                        })
                        .collect();
                    memlens_core::MemoryView::read_batch(view, &mut ops);
                    failed += ops.iter().filter(|o| o.result.is_err()).count() as u64;
                    reads += ops.len() as u64;
                }
            }
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            let cpu = match (cpu0, thread_cpu_time()) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64().max(1e-9)),
                _ => None,
            };
            rows.push(VirtBenchRow {
                size,
                batch,
                reads,
                failed,
                secs,
                reads_per_s: reads as f64 / secs,
                bytes_per_s: (reads as f64 * size as f64) / secs,
                reads_per_cpu_s: cpu.map(|c| reads as f64 / c),
            });
        }
    }
    if rows.is_empty() {
        return Err(ArchError::Core(memlens_core::Error::Other(format!(
            "no mapped range in the {} address space to read from",
            view.mmu().name()
        ))));
    }
    Ok(VirtBench {
        arch: view.mmu().name().to_string(),
        mapped_ranges: pm.ranges.len(),
        halves,
        rows,
    })
}

/// Result of [`bench_translate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslateBench {
    /// Architecture name.
    pub arch: String,
    /// Addresses per batch.
    pub batch: usize,
    /// Translations per second through the walker with an empty TLB (median of runs).
    pub cold_per_s: f64,
    /// Translations per second with every address in the TLB (median of runs).
    pub warm_per_s: f64,
    /// Best run with the TLB cold (least disturbed by other load), translations/s.
    pub cold_best_per_s: f64,
    /// Best run with the TLB warm, translations/s.
    pub warm_best_per_s: f64,
    /// Like `cold_per_s`, per second of the thread's CPU time (when measurable).
    pub cold_per_cpu_s: Option<f64>,
    /// Like `warm_per_s`, per second of the thread's CPU time (when measurable).
    pub warm_per_cpu_s: Option<f64>,
    /// Translations that failed (should be 0: addresses come from the page map).
    pub failed: usize,
}

impl fmt::Display for TranslateBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "translate {} random mapped addresses ({}): median TLB cold {:.2} M/s, warm {:.2} M/s; best cold {:.2} M/s, warm {:.2} M/s{}{}",
            self.batch,
            self.arch,
            self.cold_per_s / 1e6,
            self.warm_per_s / 1e6,
            self.cold_best_per_s / 1e6,
            self.warm_best_per_s / 1e6,
            match (self.cold_per_cpu_s, self.warm_per_cpu_s) {
                (Some(c), Some(w)) => format!(
                    " (median per CPU second: cold {:.2} M/s, warm {:.2} M/s)",
                    c / 1e6,
                    w / 1e6
                ),
                _ => String::new(),
            },
            if self.failed > 0 {
                format!(" ({} failed)", self.failed)
            } else {
                String::new()
            }
        )
    }
}

/// Times batched translation of `batch` random mapped addresses, TLB cold (flushed before
/// each run) and warm, `runs` times each (median; 1 to [`MAX_RUNS`]); `batch` is 1 to
/// [`MAX_TRANSLATE_BATCH`]. The view must have a TLB for the warm figure to mean
/// anything.
pub fn bench_translate<P: PhysicalMemory>(
    view: &VirtualView<P>,
    batch: usize,
    runs: usize,
    seed: u64,
) -> Result<TranslateBench, ArchError> {
    let pm = view.page_map(&PageMapOptions::default());
    let sampler = AddressSampler::new(&pm.ranges, 1).ok_or_else(|| {
        ArchError::Core(memlens_core::Error::Other(
            "no mapped range to translate".into(),
        ))
    })?;
    let mut rng = SplitMix64::new(seed);
    let vas: Vec<VirtAddr> = (0..batch.clamp(1, MAX_TRANSLATE_BATCH))
        .map(|k| sampler.pick(&mut rng, k))
        .collect();
    let mut out: Vec<_> = (0..vas.len()).map(|_| unset()).collect();
    let runs = runs.clamp(1, MAX_RUNS);
    let (mut cold, mut warm, mut cold_cpu, mut warm_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        if let Some(t) = view.tlb() {
            t.flush();
        }
        let ((), w, c) = timed(|| view.translate_batch(&vas, &mut out));
        cold.push(w);
        cold_cpu.extend(c);
        let ((), w, c) = timed(|| view.translate_batch(&vas, &mut out));
        warm.push(w);
        warm_cpu.extend(c);
    }
    let rate = |d: Duration| vas.len() as f64 / d.as_secs_f64().max(1e-12);
    let best = |v: &[Duration]| rate(v.iter().copied().min().unwrap_or_default());
    let (cold_best_per_s, warm_best_per_s) = (best(&cold), best(&warm));
    let cpu_rate = |v: Vec<Duration>| (v.len() == runs).then(|| rate(median(v)));
    Ok(TranslateBench {
        arch: view.mmu().name().to_string(),
        batch: vas.len(),
        cold_per_s: rate(median(cold)),
        warm_per_s: rate(median(warm)),
        cold_best_per_s,
        warm_best_per_s,
        cold_per_cpu_s: cpu_rate(cold_cpu),
        warm_per_cpu_s: cpu_rate(warm_cpu),
        failed: out.iter().filter(|r| r.is_err()).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlens_core::{MemoryMetadata, MemoryView, PhysAddr};

    /// 64 KiB of zeros: an empty page table.
    struct Zeros;
    impl MemoryView for Zeros {
        type Addr = PhysAddr;
        fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
            for op in ops {
                op.buf.fill(0);
                op.result = Ok(());
            }
        }
        fn metadata(&self) -> MemoryMetadata<PhysAddr> {
            MemoryMetadata {
                max_addr: PhysAddr(0xffff),
                real_size: 0x1_0000,
                readonly: true,
                preferred_batch: 1,
            }
        }
    }

    /// A run count from the caller is clamped before it sizes the vectors of times.
    #[test]
    fn runs_are_clamped() {
        let roots = Roots::single(PhysAddr(0x1000));
        let w = bench_walk(&Zeros, &Mmu::x86_64(), &roots, usize::MAX);
        assert_eq!(w.runs, MAX_RUNS);
        assert_eq!(bench_walk(&Zeros, &Mmu::x86_64(), &roots, 0).runs, 1);
    }
}

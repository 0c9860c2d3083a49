//! `memlens bench search` and `memlens bench cli`: end-to-end figures of the command line
//! itself. **Key decision: measure what a user waits for** — `bench search` runs the very
//! scan `memlens search` runs (same chunks, threads and matcher) and puts it next to a
//! parallel memcpy ceiling measured in the same run; `bench cli` times whole `memlens`
//! processes, start to exit, as a shell would.

use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::exit::CliError;
use crate::scan;

/// Arguments of `bench search`.
#[derive(clap::Args, Debug)]
pub struct SearchBenchArgs {
    #[command(flatten)]
    target: crate::target::TargetArgs,
    /// The literal searched for (absent by default, so every byte is scanned).
    #[arg(long, default_value = "memlens-bench-needle-not-in-memory")]
    pattern: String,
    /// Search every process's virtual memory instead of physical memory.
    #[arg(long)]
    all_processes: bool,
    /// Number of runs (median and best reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Result of `bench search`.
#[derive(Serialize, Debug)]
pub struct SearchReport {
    /// `physical` or `virtual`.
    pub space: &'static str,
    /// Bytes scanned per run.
    pub bytes: u64,
    /// Matches per run.
    pub matches: usize,
    /// Threads used.
    pub threads: usize,
    /// Median bytes per second.
    pub median_bytes_per_sec: f64,
    /// Best bytes per second.
    pub best_bytes_per_sec: f64,
    /// Parallel memcpy (4 MiB blocks, same threads) bytes per second in this run.
    pub memcpy_bytes_per_sec: f64,
}

impl std::fmt::Display for SearchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = |b: f64| b / 1e9;
        writeln!(
            f,
            "search {} memory: {} scanned, {} matches, {} threads",
            self.space,
            memlens::core::size::format_size_approx(self.bytes),
            self.matches,
            self.threads
        )?;
        writeln!(
            f,
            "  median {:.2} GB/s, best {:.2} GB/s; memcpy ceiling {:.2} GB/s (median = {:.0} %)",
            g(self.median_bytes_per_sec),
            g(self.best_bytes_per_sec),
            g(self.memcpy_bytes_per_sec),
            100.0 * self.median_bytes_per_sec / self.memcpy_bytes_per_sec.max(1.0)
        )
    }
}

/// Parallel copy bandwidth: 4 MiB blocks of a 256 MiB buffer copied by every thread.
fn memcpy_ceiling() -> f64 {
    const BLOCK: usize = 4 << 20;
    let src = vec![0x5au8; 256 << 20];
    let mut best = 0f64;
    for _ in 0..3 {
        let t = Instant::now();
        src.par_chunks(BLOCK).for_each(|c| {
            let mut dst = vec![0u8; BLOCK];
            dst[..c.len()].copy_from_slice(c);
            std::hint::black_box(&dst);
        });
        best = best.max(src.len() as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `bench search`.
pub fn search(
    a: SearchBenchArgs,
    metrics: &mut crate::plugins::ChainMetrics,
) -> Result<(), CliError> {
    if a.runs == 0 || a.runs > 1000 {
        return Err(CliError::usage("--runs must be 1 to 1000", None));
    }
    let needle = a.pattern.as_bytes();
    if needle.is_empty() {
        return Err(CliError::usage("the pattern is empty", None));
    }
    let phys;
    let (space, regions, src): (_, _, Box<dyn scan::ChunkSource>);
    if a.all_processes {
        let os = crate::target::open_os(&a.target, metrics)?;
        let pids: Vec<u32> = os
            .processes()
            .map_err(CliError::target)?
            .iter()
            .filter(|p| !p.kernel_thread)
            .map(|p| p.pid)
            .collect();
        let (r, views) = scan::process_regions(&*os, &pids, false).map_err(CliError::target)?;
        (space, regions, src) = ("virtual", r, Box::new(views));
    } else {
        phys = crate::target::open_physical(&a.target, metrics)?;
        let r = crate::cmd::search::physical_regions(&phys);
        (space, regions, src) = ("physical", r, Box::new(scan::Physical(&*phys.memory)));
    }
    let bytes: u64 = scan::total_bytes(&regions);
    let memcpy = memcpy_ceiling();
    let mut rates = Vec::new();
    let mut matches = 0;
    for _ in 0..a.runs {
        let t = Instant::now();
        matches = crate::cmd::search::count_literal(&regions, &*src, needle);
        rates.push(bytes as f64 / t.elapsed().as_secs_f64());
    }
    let best = rates.iter().copied().fold(0.0, f64::max);
    let r = SearchReport {
        space,
        bytes,
        matches,
        threads: rayon::current_num_threads(),
        median_bytes_per_sec: median(&mut rates),
        best_bytes_per_sec: best,
        memcpy_bytes_per_sec: memcpy,
    };
    if a.json {
        return crate::output::print_json(&r);
    }
    print!("{r}");
    Ok(())
}

/// Arguments of `bench cli`.
#[derive(clap::Args, Debug)]
pub struct CliBenchArgs {
    /// Number of runs.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The memlens command line to time (after --), e.g. `-- ps guest.raw`.
    #[arg(last = true, required = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// Result of `bench cli`.
#[derive(Serialize, Debug)]
pub struct CliReport {
    /// The timed arguments.
    pub args: Vec<String>,
    /// Runs.
    pub runs: usize,
    /// Fastest wall time, milliseconds.
    pub min_ms: f64,
    /// Median wall time, milliseconds.
    pub median_ms: f64,
    /// Slowest wall time, milliseconds.
    pub max_ms: f64,
}

/// Runs `bench cli`: `memlens ARGS` as a child process `runs` times (after one warm-up
/// run whose failure is reported), output discarded.
pub fn cli(a: CliBenchArgs) -> Result<(), CliError> {
    if a.runs == 0 || a.runs > 10_000 {
        return Err(CliError::usage("--runs must be 1 to 10000", None));
    }
    let exe = std::env::current_exe().map_err(CliError::target)?;
    let run = || -> Result<Duration, CliError> {
        let t = Instant::now();
        let out = std::process::Command::new(&exe)
            .args(&a.args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(CliError::target)?;
        let d = t.elapsed();
        if !out.status.success() {
            return Err(CliError::target(anyhow::anyhow!(
                "`memlens {}` failed: {}",
                a.args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(d)
    };
    run()?; // warm-up: page cache, and a clear error before timing
    let mut ms = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        ms.push(run()?.as_secs_f64() * 1e3);
    }
    let (min, max) = (
        ms.iter().copied().fold(f64::MAX, f64::min),
        ms.iter().copied().fold(0.0, f64::max),
    );
    let r = CliReport {
        args: a.args.clone(),
        runs: a.runs,
        min_ms: min,
        median_ms: median(&mut ms),
        max_ms: max,
    };
    if a.json {
        return crate::output::print_json(&r);
    }
    println!(
        "memlens {}: {} runs, wall min {:.1} ms, median {:.1} ms, max {:.1} ms",
        r.args.join(" "),
        r.runs,
        r.min_ms,
        r.median_ms,
        r.max_ms
    );
    Ok(())
}

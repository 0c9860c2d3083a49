//! `memlens bench …`: throughput measurements a user can run on their own target, each
//! reported next to a memcpy ceiling measured in the same run.

use std::time::Duration;

use memlens::core::bench::{self, BenchConfig};
use memlens::core::size::parse_size;

use crate::exit::CliError;

/// Benchmarks.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Random size-aligned physical reads through the batched API.
    #[command(
        after_help = "Example:\n  memlens bench phys guest.raw --sizes 8,4k,64k --batch 1,256 --seconds 2"
    )]
    Phys(PhysArgs),
    /// Time to compute the whole page map of an address space (min and median of runs).
    #[command(
        after_help = "Example:\n  memlens bench walk guest.elf            # root from the dump's registers\n  memlens bench walk guest.raw --dtb 0x1c0a000 --runs 20"
    )]
    Walk(WalkBenchArgs),
    /// Batched translation of random mapped addresses, TLB cold and warm.
    #[command(after_help = "Example:\n  memlens bench translate guest.elf --batch 4096")]
    Translate(TranslateBenchArgs),
    /// Random virtual reads over mapped pages of both halves, sizes x batches.
    #[command(after_help = "Example:\n  memlens bench virt guest.elf --sizes 8,4k --batch 1,256")]
    Virt(VirtBenchArgs),
    /// `memlens search` throughput (physical or every process) next to a memcpy ceiling.
    #[command(
        after_help = "Example:\n  memlens bench search guest.raw\n  memlens bench search guest.elf --all-processes --runs 3"
    )]
    Search(crate::cmd::bench_cli::SearchBenchArgs),
    /// Wall time of whole `memlens` runs, process start to exit.
    #[command(after_help = "Example:\n  memlens bench cli --runs 20 -- ps guest.raw")]
    Cli(crate::cmd::bench_cli::CliBenchArgs),
}

/// Arguments of `bench walk`.
#[derive(clap::Args, Debug)]
pub struct WalkBenchArgs {
    #[command(flatten)]
    target: crate::target::TargetArgs,
    #[command(flatten)]
    walk: crate::cmd::translate::WalkArgs,
    /// Number of runs (1 to 1000).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `bench translate`.
#[derive(clap::Args, Debug)]
pub struct TranslateBenchArgs {
    #[command(flatten)]
    target: crate::target::TargetArgs,
    #[command(flatten)]
    walk: crate::cmd::translate::WalkArgs,
    /// Addresses per batch.
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Number of runs (median reported; 1 to 1000).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `bench virt`.
#[derive(clap::Args, Debug)]
pub struct VirtBenchArgs {
    #[command(flatten)]
    target: crate::target::TargetArgs,
    #[command(flatten)]
    walk: crate::cmd::translate::WalkArgs,
    /// Read sizes, comma-separated (units allowed).
    #[arg(long, value_delimiter = ',', default_value = "8,4096,65536")]
    sizes: Vec<String>,
    /// Batch lengths, comma-separated (size × batch at most 1 GiB).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    batch: Vec<usize>,
    /// Seconds per (size, batch) combination.
    #[arg(long, default_value_t = 0.5)]
    seconds: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `bench phys`.
#[derive(clap::Args, Debug)]
pub struct PhysArgs {
    #[command(flatten)]
    target: crate::target::TargetArgs,
    /// Read sizes, comma-separated (units allowed).
    #[arg(long, value_delimiter = ',', default_value = "8,256,4096,65536")]
    sizes: Vec<String>,
    /// Batch lengths, comma-separated (size × batch at most 1 GiB).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    batch: Vec<usize>,
    /// Seconds per (size, batch) combination.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Skip the memcpy ceiling (it allocates a buffer as large as the target, up to 4 GiB).
    #[arg(long)]
    no_ceiling: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a bench subcommand.
pub fn run(cmd: BenchCommand, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    match cmd {
        BenchCommand::Phys(a) => phys(a, metrics),
        BenchCommand::Walk(a) => walk(a, metrics),
        BenchCommand::Translate(a) => translate(a, metrics),
        BenchCommand::Virt(a) => virt(a, metrics),
        BenchCommand::Search(a) => crate::cmd::bench_cli::search(a, metrics),
        BenchCommand::Cli(a) => crate::cmd::bench_cli::cli(a),
    }
}

fn parse_sizes(sizes: &[String]) -> Result<Vec<usize>, CliError> {
    sizes
        .iter()
        .map(|s| {
            parse_size(s)
                .ok()
                .and_then(|v| usize::try_from(v).ok())
                .filter(|v| *v > 0 && *v <= 64 << 20)
                .ok_or_else(|| CliError::usage(format!("bad size '{s}' (1 byte to 64 MiB)"), None))
        })
        .collect()
}

fn check_batches(batch: &[usize]) -> Result<(), CliError> {
    if batch.iter().any(|b| *b == 0 || *b > 1 << 20) {
        return Err(CliError::usage("batch lengths must be 1 to 1048576", None));
    }
    Ok(())
}

/// Every batch of every size is allocated at once: at most
/// [`bench::MAX_BATCH_BYTES`] each.
fn check_slabs(sizes: &[usize], batch: &[usize]) -> Result<(), CliError> {
    for &s in sizes {
        for &b in batch {
            if bench::batch_bytes(s, b).is_none() {
                return Err(CliError::usage(
                    format!(
                        "--sizes {s} with --batch {b} reads {} per batch (at most {})",
                        memlens::core::size::format_size_approx(
                            (s as u64).saturating_mul(b as u64)
                        ),
                        memlens::core::size::format_size_approx(bench::MAX_BATCH_BYTES as u64)
                    ),
                    Some("use smaller sizes or batches"),
                ));
            }
        }
    }
    Ok(())
}

/// `--runs` of walk and translate: their times are kept for the median.
fn check_runs(runs: usize) -> Result<(), CliError> {
    if runs == 0 || runs > memlens_arch::bench::MAX_RUNS {
        return Err(CliError::usage(
            format!("--runs must be 1 to {}", memlens_arch::bench::MAX_RUNS),
            None,
        ));
    }
    Ok(())
}

fn check_seconds(s: f64) -> Result<(), CliError> {
    if !(s > 0.0 && s <= 3600.0) {
        return Err(CliError::usage(
            "--seconds must be between 0 and 3600",
            None,
        ));
    }
    Ok(())
}

fn walk(a: WalkBenchArgs, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    check_runs(a.runs)?;
    let t = crate::target::open_physical(&a.target, metrics)?;
    let (mmu, roots) = crate::cmd::translate::mmu_and_roots(&t, &a.walk)?;
    let r = memlens_arch::bench::bench_walk(&*t.memory, &mmu, &roots, a.runs);
    if a.json {
        return crate::output::print_json(&r);
    }
    println!("{r}");
    Ok(())
}

fn view(
    target: &crate::target::TargetArgs,
    walk: &crate::cmd::translate::WalkArgs,
    metrics: &mut crate::plugins::ChainMetrics,
) -> Result<
    memlens_arch::view::VirtualView<std::sync::Arc<dyn memlens::core::PhysicalMemory>>,
    CliError,
> {
    let t = crate::target::open_physical(target, metrics)?;
    let (mmu, roots) = crate::cmd::translate::mmu_and_roots(&t, walk)?;
    Ok(
        memlens_arch::view::VirtualView::new(t.memory.clone(), mmu, roots)
            .with_tlb(memlens_arch::tlb::TlbConfig::default()),
    )
}

fn translate(
    a: TranslateBenchArgs,
    metrics: &mut crate::plugins::ChainMetrics,
) -> Result<(), CliError> {
    check_batches(&[a.batch])?;
    check_runs(a.runs)?;
    let v = view(&a.target, &a.walk, metrics)?;
    let r = memlens_arch::bench::bench_translate(&v, a.batch, a.runs, 0x6d6c)
        .map_err(CliError::target)?;
    if a.json {
        return crate::output::print_json(&r);
    }
    println!("{r}");
    Ok(())
}

fn virt(a: VirtBenchArgs, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let sizes = parse_sizes(&a.sizes)?;
    check_batches(&a.batch)?;
    check_slabs(&sizes, &a.batch)?;
    check_seconds(a.seconds)?;
    let v = view(&a.target, &a.walk, metrics)?;
    let cfg = memlens_arch::bench::VirtBenchConfig {
        sizes,
        batches: a.batch,
        time_per_case: Duration::from_secs_f64(a.seconds),
        ..Default::default()
    };
    let r = memlens_arch::bench::bench_virt(&v, &cfg).map_err(CliError::target)?;
    if a.json {
        return crate::output::print_json(&r);
    }
    print!("{r}");
    Ok(())
}

fn phys(a: PhysArgs, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let sizes = parse_sizes(&a.sizes)?;
    check_batches(&a.batch)?;
    check_slabs(&sizes, &a.batch)?;
    check_seconds(a.seconds)?;
    let t = crate::target::open_physical(&a.target, metrics)?;
    let cfg = BenchConfig {
        sizes,
        batches: a.batch,
        duration: Duration::from_secs_f64(a.seconds),
        ceiling: !a.no_ceiling,
        ..BenchConfig::default()
    };
    let report = bench::run(&*t.memory, &cfg);
    if report.rows.is_empty() {
        return Err(CliError::target(anyhow::anyhow!(
            "nothing to measure: the target has no range as large as the requested sizes"
        )));
    }
    if a.json {
        return crate::output::print_json(&report);
    }
    print!("{report}");
    Ok(())
}

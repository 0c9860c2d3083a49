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
}

/// Arguments of `bench phys`.
#[derive(clap::Args, Debug)]
pub struct PhysArgs {
    #[command(flatten)]
    target: crate::target::TargetArgs,
    /// Read sizes, comma-separated (units allowed).
    #[arg(long, value_delimiter = ',', default_value = "8,256,4096,65536")]
    sizes: Vec<String>,
    /// Batch lengths, comma-separated.
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
pub fn run(cmd: BenchCommand) -> Result<(), CliError> {
    match cmd {
        BenchCommand::Phys(a) => phys(a),
    }
}

fn phys(a: PhysArgs) -> Result<(), CliError> {
    let sizes = a
        .sizes
        .iter()
        .map(|s| {
            parse_size(s)
                .ok()
                .and_then(|v| usize::try_from(v).ok())
                .filter(|v| *v > 0 && *v <= 64 << 20)
                .ok_or_else(|| CliError::usage(format!("bad size '{s}' (1 byte to 64 MiB)"), None))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if a.batch.iter().any(|b| *b == 0 || *b > 1 << 20) {
        return Err(CliError::usage("batch lengths must be 1 to 1048576", None));
    }
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        return Err(CliError::usage(
            "--seconds must be between 0 and 3600",
            None,
        ));
    }
    let t = crate::target::open_physical(&a.target)?;
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

//! The `memlens` command-line tool.
//!
//! **Key decision: one binary, one target selection for every command.** Each command
//! takes the same target arguments and gets an opened target from [`target`]; commands only
//! format results (human tables by default, `--json` for machines). Errors are one or two
//! lines with a hint; usage errors exit with 2, target errors with 1, never a panic.

mod cmd;
mod exit;
mod output;
mod target;

use clap::{Parser, Subcommand};

/// Read the memory of a machine — a dump file, a live QEMU guest, the host — and rebuild
/// what its OS knows.
#[derive(Parser, Debug)]
#[command(name = "memlens", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// More log output (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// The command.
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  memlens info guest.raw
  memlens read guest.raw 0x1000 64
  memlens bench phys guest.raw --sizes 8,4096 --batch 1,256";

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe a target: format, size, physical ranges.
    #[command(after_help = "Example:\n  memlens info guest.raw --json")]
    Info(cmd::info::Args),
    /// Read memory and print a hexdump (or write the raw bytes with --out).
    #[command(
        after_help = "Examples:\n  memlens read guest.raw 0x1000 256\n  memlens read guest.raw 0x100000 4k --out page.bin"
    )]
    Read(cmd::read::Args),
    /// Measure read throughput next to a memcpy ceiling.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => log::LevelFilter::Error,
        (_, 0) => log::LevelFilter::Warn,
        (_, 1) => log::LevelFilter::Info,
        (_, 2) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .parse_env("MEMLENS_LOG")
        .init();
    let result = match cli.command {
        Command::Info(a) => cmd::info::run(a),
        Command::Read(a) => cmd::read::run(a),
        Command::Bench(b) => cmd::bench::run(b),
    };
    if let Err(e) = result {
        std::process::exit(exit::report(&e));
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        super::Cli::command().debug_assert();
    }

    // Keep the error type in use from tests too.
    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(
            super::exit::report(&super::exit::CliError::usage("x", None)),
            2
        );
    }
}

//! The `memlens` command-line tool.
//!
//! **Key decision: one binary, one target selection for every command.** Each command
//! takes the same target arguments and gets an opened target from [`target`]; commands only
//! format results (human tables by default, `--json` for machines). Errors are one or two
//! lines with a hint; usage errors exit with 2, target errors with 1, never a panic.

// Field doc comments here are clap help text, where `[X]` means "optional X", not a link.
#![allow(
    rustdoc::broken_intra_doc_links,
    reason = "clap help text uses [brackets] for optional parts"
)]

mod cmd;
mod exit;
mod output;
mod plugins;
mod progress;
mod scan;
mod style;
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
    /// Colour: on a terminal unless NO_COLOR is set (auto), always, or never.
    #[arg(long, value_enum, global = true, default_value_t = style::ColorChoice::Auto, value_name = "WHEN")]
    color: style::ColorChoice,
    /// The command.
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  memlens ps                       # processes of the host
  memlens ps guest.elf             # processes of the Linux kernel in a dump
  memlens info guest.raw
  memlens read guest.raw 0x1000 64
  memlens bench phys guest.raw --sizes 8,4096 --batch 1,256";

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe a target: format, ranges, registers, kernel notes, the OS found in it.
    #[command(
        after_help = "Examples:\n  memlens info guest.elf\n  memlens info guest.kdump --json\n  memlens info            # the host"
    )]
    Info(cmd::info::Args),
    /// List processes (of the host when no target is given).
    #[command(
        after_help = "Examples:\n  memlens ps               # the host\n  memlens ps guest.elf --tree\n  memlens ps -c qemu:vm1 -o linux --json"
    )]
    Ps(cmd::ps::Args),
    /// List the memory mappings of a process.
    #[command(after_help = "Examples:\n  memlens maps -p 1\n  memlens maps guest.elf -p 42 --csv")]
    Maps(cmd::maps::Args),
    /// List kernel modules, or the modules mapped into a process (-p).
    #[command(
        after_help = "Examples:\n  memlens modules guest.elf\n  memlens modules -p 1 --json\n  memlens modules -p 1234 --details --module libc   # exports, imports, sections"
    )]
    Modules(cmd::modules::Args),
    /// Read memory and print a hexdump (or write the raw bytes with --out).
    #[command(
        after_help = "Examples:\n  memlens read guest.raw 0x1000 256\n  memlens read guest.raw 0x100000 4k --out page.bin"
    )]
    Read(cmd::read::Args),
    /// Save physical memory (ELF core or raw) or a process's mapped memory (ELF core).
    #[command(
        after_help = "Examples:\n  memlens dump guest.kdump --out guest.elf          # re-open it: memlens ps guest.elf\n  memlens dump guest.elf --format raw --out guest.raw\n  memlens dump guest.elf -p 91 --out marker.core    # a process, with its maps"
    )]
    Dump(cmd::dump::Args),
    /// Find a string, hex bytes or a regex in physical memory or process memory.
    #[command(
        after_help = "Examples:\n  memlens search guest.elf \"BEGIN RSA\"\n  memlens search guest.elf --hex \"7f 45 4c 46\" --max 20\n  memlens search guest.elf --regex \"pass(word)?=\\w+\" --all-processes\n  memlens search -p 1234 secret   # a host process"
    )]
    Search(cmd::search::Args),
    /// Printable ASCII and UTF-16 strings in a process's memory (or physical memory).
    #[command(
        after_help = "Examples:\n  memlens strings guest.elf -p 91 -n 8\n  memlens strings -p 1234 --encoding utf16 --json   # a host process\n  memlens strings guest.raw --max 100"
    )]
    Strings(cmd::strings::Args),
    /// Write bytes into a raw image or a process (only with --allow-write).
    #[command(
        after_help = "Examples:\n  memlens write guest.raw 0x1000 \"de ad be ef\" --allow-write\n  memlens write -p 1234 0x7ffd12340000 90909090 --allow-write"
    )]
    Write(cmd::write::Args),
    /// Translate virtual addresses through page tables.
    #[command(
        after_help = "Examples:\n  memlens translate guest.elf 0xffffffff81000000      # root from the dump's registers\n  memlens translate guest.raw --dtb 0x1c0a000 --arch x86_64-la57 0x7ffd0000 --json"
    )]
    Translate(cmd::translate::TranslateArgs),
    /// List the mapped ranges of an address space.
    #[command(
        after_help = "Examples:\n  memlens pagemap guest.elf\n  memlens pagemap guest.raw --dtb 0x1c0a000 --range 0x400000-0x7fffffffffff --json"
    )]
    Pagemap(cmd::translate::PageMapArgs),
    /// Plugins: list, help, targets.
    #[command(subcommand, disable_help_subcommand = true)]
    Plugins(cmd::plugins::PluginsCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  memlens completions bash > /etc/bash_completion.d/memlens"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
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
    style::init(cli.color);
    env_logger::Builder::new()
        .filter_level(level)
        .write_style(if style::stderr_on() {
            env_logger::WriteStyle::Always
        } else {
            env_logger::WriteStyle::Never
        })
        .format_timestamp(None)
        .parse_env("MEMLENS_LOG")
        .init();
    // The `metrics` middleware's counters of the chain this command builds.
    let mut metrics = plugins::ChainMetrics::default();
    let result = match cli.command {
        Command::Info(a) => cmd::info::run(a, &mut metrics),
        Command::Ps(a) => cmd::ps::run(a, &mut metrics),
        Command::Maps(a) => cmd::maps::run(a, &mut metrics),
        Command::Modules(a) => cmd::modules::run(a, &mut metrics),
        Command::Read(a) => cmd::read::run(a, &mut metrics),
        Command::Dump(a) => cmd::dump::run(a, &mut metrics),
        Command::Search(a) => cmd::search::run(a, &mut metrics),
        Command::Strings(a) => cmd::strings::run(a, &mut metrics),
        Command::Bench(b) => cmd::bench::run(b, &mut metrics),
        Command::Translate(a) => cmd::translate::translate(a, &mut metrics),
        Command::Write(a) => cmd::write::run(a, &mut metrics),
        Command::Pagemap(a) => cmd::translate::pagemap(a, &mut metrics),
        Command::Plugins(c) => cmd::plugins::run(c),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "memlens",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    metrics.print();
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

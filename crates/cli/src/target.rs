//! Target selection, the same for every command. **Key decision: a positional path is the
//! common case and means "detect the format, then detect the OS"**; experts chain plugins
//! with `-c CONN[:args]` / `-o OS[:args]` in order (the plugin syntax); no target at all
//! means the host itself (the native OS plugin). A dump file followed by OS steps
//! (`memlens ps guest.elf -o linux:symbols=System.map`) is the file connector step of that
//! chain.
//!
//! `-c`/`-o` may repeat and their order matters: [`Chain`] merges the two options in the
//! order clap saw them (their argument indices), so the command line is parsed once.
//! Building is [`crate::plugins`]' job; this module only decides what to build.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Arg, ArgAction, ArgMatches};
use memlens::core::{Os, PhysicalTarget};
use memlens::file::{open_dump, DumpOptions};
use memlens_plugin::builder::{ChainSpec, Output};
use memlens_plugin::{Built, PluginKind};

use crate::exit::CliError;
use crate::plugins::{self, ChainMetrics};

/// Target arguments shared by every command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// A dump file (format detected from its contents). Omit it to inspect the host.
    #[arg(value_name = "TARGET")]
    pub path: Option<PathBuf>,
    /// The `-c`/`-o` steps, in order.
    #[command(flatten)]
    pub chain: Chain,
    /// Open the target writable (needed by `write`; never implied).
    #[arg(long, hide = true)]
    pub allow_write: bool,
}

/// The `-c`/`-o` chain alone, for commands whose positional arguments need custom
/// parsing (`read [TARGET] ADDR LEN`, `search [TARGET] PATTERN`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ChainArgs {
    /// The `-c`/`-o` steps, in order.
    #[command(flatten)]
    pub chain: Chain,
}

impl ChainArgs {
    /// Full target arguments with an optional dump path.
    pub fn with_path(&self, path: Option<PathBuf>) -> TargetArgs {
        TargetArgs {
            path,
            chain: self.chain.clone(),
            allow_write: false,
        }
    }
}

/// One `-c`/`-o` step as typed: its kind and its plugin-syntax value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStep {
    /// Connector (`-c`) or OS (`-o`).
    pub kind: PluginKind,
    /// `NAME[:TARGET[:ARGS[:MIDDLEWARE]]]`, or `auto`.
    pub value: String,
}

/// The `-c`/`-o` steps in command-line order (clap options of their own, merged by index).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// The steps, in order.
    pub steps: Vec<ChainStep>,
}

const CONNECTOR: &str = "connector";
const OS: &str = "os";

impl clap::Args for Chain {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.arg(
            Arg::new(CONNECTOR)
                .short('c')
                .long(CONNECTOR)
                .value_name("CONN")
                .action(ArgAction::Append)
                .help("A connector step of a chain: NAME[:TARGET[:KEY=VALUE,...[:MIDDLEWARE]]] (repeatable)"),
        )
        .arg(
            Arg::new(OS)
                .short('o')
                .long(OS)
                .value_name("OS")
                .action(ArgAction::Append)
                .help("An OS step of a chain: NAME[:...] or `auto` (repeatable; order with -c matters)"),
        )
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for Chain {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut steps = Vec::new();
        for (id, kind) in [(CONNECTOR, PluginKind::Connector), (OS, PluginKind::Os)] {
            let (Some(values), Some(indices)) = (m.get_many::<String>(id), m.indices_of(id)) else {
                continue;
            };
            steps.extend(indices.zip(values).map(|(i, v)| {
                let value = v.clone();
                (i, ChainStep { kind, value })
            }));
        }
        steps.sort_by_key(|(i, _)| *i);
        Ok(Chain {
            steps: steps.into_iter().map(|(_, s)| s).collect(),
        })
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Chain {
    /// No `-c`/`-o` given.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Opens a dump file as a physical target, with hints for the common failures.
pub fn open_file(path: &std::path::Path, writable: bool) -> Result<PhysicalTarget, CliError> {
    let opts = DumpOptions {
        writable,
        ..DumpOptions::default()
    };
    let dump = open_dump(path, &opts).map_err(|e| {
        let hint = match &e {
            memlens::file::FileError::Open { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Some("run as a user who can read the file (QEMU writes dumps mode 0400, owned by its user)")
            }
            memlens::file::FileError::Open { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Some("check the path")
            }
            _ => None,
        };
        match hint {
            Some(h) => CliError::target_hint(e, h),
            None => CliError::target(e),
        }
    })?;
    Ok(dump.target())
}

/// The chain of `t` built: a positional dump file is its first (connector) step, `-o auto`
/// as the last step detects the OS. `t` has a dump file or steps.
fn build(t: &TargetArgs, metrics: &mut ChainMetrics) -> Result<Built, CliError> {
    let mut steps = t.chain.steps.as_slice();
    // `-o auto` at the end: detect the OS on what the chain produced.
    let auto = matches!(steps.last(), Some(s) if s.kind == PluginKind::Os && s.value == "auto");
    if auto {
        steps = &steps[..steps.len() - 1];
    }
    if steps.iter().any(|s| s.value == "auto") {
        return Err(CliError::usage(
            "-o auto can only be the last step of a chain",
            None,
        ));
    }
    if t.path.is_some() && steps.iter().any(|s| s.kind == PluginKind::Connector) {
        return Err(CliError::usage(
            "a dump file is already the connector of the chain: it cannot take -c steps",
            Some("give the dump with OS steps (memlens ps guest.elf -o linux), or the chain alone (-c file:PATH -o auto)"),
        ));
    }
    let mut chain = ChainSpec::default();
    for s in steps {
        chain.push(s.kind, &s.value).map_err(plugins::chain_error)?;
    }
    let input = match &t.path {
        Some(p) => Some(open_file(p, t.allow_write)?),
        None => None,
    };
    let built = match (input, chain.steps.is_empty()) {
        (Some(input), true) => Built {
            output: Output::Target(input),
            metrics: Vec::new(),
        },
        (None, true) => return Err(CliError::usage("-o auto needs a target before it", None)),
        (input, false) => plugins::build(input, chain, metrics)?,
    };
    if !auto {
        return Ok(built);
    }
    let target = built
        .target()
        .ok_or_else(|| CliError::usage("-o auto must follow a connector (-c)", None))?;
    Ok(Built {
        output: Output::Os(plugins::detect_os(target)?),
        metrics: Vec::new(),
    })
}

/// The physical target selected by `t` (commands that read physical memory).
pub fn open_physical(
    t: &TargetArgs,
    metrics: &mut ChainMetrics,
) -> Result<PhysicalTarget, CliError> {
    if t.path.is_none() && t.chain.is_empty() {
        return Err(CliError::usage(
            "this command reads physical memory and needs a target",
            Some("give a dump file (memlens info guest.elf) or a connector (-c qemu)"),
        ));
    }
    build(t, metrics)?.target().ok_or_else(|| {
        CliError::usage(
            "the chain ends in an OS; this command reads physical memory",
            Some("end the chain with a connector (-c), or give a dump file"),
        )
    })
}

/// The OS selected by `t`: the chain's OS, the OS found in a dump, or the host.
pub fn open_os(t: &TargetArgs, metrics: &mut ChainMetrics) -> Result<Arc<dyn Os>, CliError> {
    if t.path.is_none() && t.chain.is_empty() {
        return plugins::host_os(t.allow_write);
    }
    match build(t, metrics)?.output {
        Output::Os(os) => Ok(os),
        // A dump file alone: find its OS.
        Output::Target(target) if t.chain.is_empty() => plugins::detect_os(target),
        Output::Target(_) => Err(CliError::usage(
            "the chain ends in a connector; this command needs an OS",
            Some("add `-o auto` (or -o linux) at the end of the chain"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use memlens_plugin::PluginKind::{Connector, Os};

    use super::{ChainStep, TargetArgs};

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        target: TargetArgs,
    }

    fn steps(args: &[&str]) -> Vec<(memlens_plugin::PluginKind, String)> {
        let cmd = Cmd::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
        let s = cmd.target.chain.steps.into_iter();
        s.map(|ChainStep { kind, value }| (kind, value)).collect()
    }

    #[test]
    fn chain_keeps_command_line_order() {
        let want = vec![
            (Os, "native".to_string()),
            (Connector, "qemu:x".to_string()),
            (Os, "linux".to_string()),
        ];
        assert_eq!(
            steps(&["-o", "native", "-c", "qemu:x", "-o", "linux"]),
            want
        );
        // Every spelling of the options, the dump file anywhere.
        assert_eq!(
            steps(&["--os=native", "dump.elf", "-cqemu:x", "--os", "linux"]),
            want
        );
        assert_eq!(steps(&["dump.elf"]), vec![]);
    }

    #[test]
    fn dump_file_and_steps_parse_together() {
        let cmd = Cmd::try_parse_from(["x", "guest.elf", "-o", "windows:symbols=DIR"]).unwrap();
        assert_eq!(cmd.target.path.as_deref(), Some("guest.elf".as_ref()));
        assert_eq!(
            cmd.target.chain.steps,
            vec![ChainStep {
                kind: Os,
                value: "windows:symbols=DIR".into()
            }]
        );
    }
}

//! Target selection, the same for every command. **Key decision: a positional path is the
//! common case and means "detect the format, then detect the OS"**; experts chain plugins
//! with `-c CONN[:args]` / `-o OS[:args]` in order (the plugin syntax); no target at all
//! means the host itself (the native OS plugin).
//!
//! `-c`/`-o` may repeat and their order matters, which clap's derive API does not keep, so
//! the chain words are taken from the raw command line in order ([`chain_words`]).

use std::path::PathBuf;
use std::sync::Arc;

use memlens::core::{Os, PhysicalTarget};
use memlens::file::{open_dump, DumpOptions};

use crate::exit::CliError;

/// Target arguments shared by every command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// A dump file (format detected from its contents). Omit it to inspect the host.
    #[arg(value_name = "TARGET")]
    pub path: Option<PathBuf>,
    /// A connector step of a chain: NAME[:TARGET[:KEY=VALUE,...[:MIDDLEWARE]]] (repeatable).
    #[arg(short = 'c', long = "connector", value_name = "CONN")]
    pub connector: Vec<String>,
    /// An OS step of a chain: NAME[:...] or `auto` (repeatable; order with -c matters).
    #[arg(short = 'o', long = "os", value_name = "OS")]
    pub os: Vec<String>,
    /// Open the target writable (needed by `write`; never implied).
    #[arg(long, hide = true)]
    pub allow_write: bool,
}

/// The `-c`/`-o` chain alone, for commands whose positional arguments need custom
/// parsing (`read [TARGET] ADDR LEN`, `search [TARGET] PATTERN`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ChainArgs {
    /// A connector step of a chain: NAME[:TARGET[:KEY=VALUE,...[:MIDDLEWARE]]] (repeatable).
    #[arg(short = 'c', long = "connector", value_name = "CONN")]
    pub connector: Vec<String>,
    /// An OS step of a chain: NAME[:...] or `auto` (repeatable; order with -c matters).
    #[arg(short = 'o', long = "os", value_name = "OS")]
    pub os: Vec<String>,
}

impl ChainArgs {
    /// Full target arguments with an optional dump path.
    pub fn with_path(&self, path: Option<PathBuf>) -> TargetArgs {
        TargetArgs {
            path,
            connector: self.connector.clone(),
            os: self.os.clone(),
            allow_write: false,
        }
    }
}

impl TargetArgs {
    fn has_chain(&self) -> bool {
        !self.connector.is_empty() || !self.os.is_empty()
    }
}

/// The `-c`/`-o` words of the process's command line, in order.
pub fn chain_words() -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            break;
        }
        if matches!(a.as_str(), "-c" | "--connector" | "-o" | "--os") {
            out.push(a.clone());
            if let Some(v) = args.get(i + 1) {
                out.push(v.clone());
            }
            i += 2;
            continue;
        }
        if a.starts_with("--connector=") || a.starts_with("--os=") {
            out.push(a.clone());
        } else if let Some(v) = a
            .strip_prefix("-c")
            .filter(|v| !v.is_empty() && !a.starts_with("--"))
        {
            out.extend(["-c".to_string(), v.to_string()]);
        } else if let Some(v) = a
            .strip_prefix("-o")
            .filter(|v| !v.is_empty() && !a.starts_with("--"))
        {
            out.extend(["-o".to_string(), v.to_string()]);
        }
        i += 1;
    }
    out
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

/// The physical target selected by `t` (commands that read physical memory).
pub fn open_physical(t: &TargetArgs) -> Result<PhysicalTarget, CliError> {
    if t.has_chain() {
        let built = crate::plugins::build(t)?;
        return built.target().ok_or_else(|| {
            CliError::usage(
                "the chain ends in an OS; this command reads physical memory",
                Some("end the chain with a connector (-c), or give a dump file"),
            )
        });
    }
    match &t.path {
        Some(p) => open_file(p, t.allow_write),
        None => Err(CliError::usage(
            "this command reads physical memory and needs a target",
            Some("give a dump file (memlens info guest.elf) or a connector (-c qemu)"),
        )),
    }
}

/// The OS selected by `t`: the chain's OS, the OS found in a dump, or the host.
pub fn open_os(t: &TargetArgs) -> Result<Arc<dyn Os>, CliError> {
    if t.has_chain() {
        let built = crate::plugins::build(t)?;
        return built.os().ok_or_else(|| {
            CliError::usage(
                "the chain ends in a connector; this command needs an OS",
                Some("add `-o auto` (or -o linux) at the end of the chain"),
            )
        });
    }
    match &t.path {
        Some(p) => crate::plugins::detect_os(open_file(p, t.allow_write)?),
        None => crate::plugins::host_os(t.allow_write),
    }
}

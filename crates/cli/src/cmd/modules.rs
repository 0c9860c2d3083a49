//! `memlens modules [-p PID] [TARGET]`: kernel modules, or the modules mapped into one
//! process; with `--details`, each process module's exports, imports and sections, parsed
//! from the process's memory (the file itself need not be on this machine).

use serde::Serialize;

use crate::exit::CliError;
use crate::output::{Format, FormatArgs, Table};
use crate::target::TargetArgs;

/// Arguments of `modules`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// A process id: list its mapped modules instead of the kernel's.
    #[arg(short, long)]
    pid: Option<u32>,
    /// With -p: exports, imports and sections of each module (read from memory).
    #[arg(long, requires = "pid")]
    details: bool,
    /// With --details: only modules whose name contains this.
    #[arg(long, requires = "details", value_name = "NAME")]
    module: Option<String>,
    #[command(flatten)]
    format: FormatArgs,
}

/// One module with its details (`--details --json`).
#[derive(Serialize)]
struct Detailed {
    module: memlens::core::ModuleInfo,
    #[serde(flatten)]
    details: memlens::core::os::ModuleDetails,
}

/// Runs `modules`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let os = crate::target::open_os(&a.target, metrics)?;
    if let (Some(pid), true) = (a.pid, a.details) {
        return details(&*os, pid, a.module.as_deref(), a.format.format());
    }
    let mods = match a.pid {
        Some(pid) => os.process(pid).and_then(|p| p.modules()),
        None => os.kernel_modules(),
    }
    .map_err(CliError::target)?;
    let format = a.format.format();
    if format == Format::Json {
        return crate::output::print_json(&mods);
    }
    let mut t = Table::new(vec!["BASE", "SIZE", "NAME", "PATH"]);
    for m in &mods {
        t.row(vec![
            format!("{:016x}", m.base.0),
            format!("{:#x}", m.size),
            m.name.clone(),
            m.path.clone().unwrap_or_default(),
        ]);
    }
    t.print(format)
}

fn details(
    os: &dyn memlens::core::Os,
    pid: u32,
    filter: Option<&str>,
    format: Format,
) -> Result<(), CliError> {
    let proc = os.process(pid).map_err(CliError::target)?;
    let mods = proc.modules().map_err(CliError::target)?;
    let mut out = Vec::new();
    for m in mods
        .into_iter()
        .filter(|m| filter.is_none_or(|f| m.name.contains(f)))
    {
        match proc.module_details(&m) {
            Ok(details) => out.push(Detailed { module: m, details }),
            // One unreadable module (paged out, not an ELF) does not hide the others.
            Err(e) => log::warn!("{}: {e}", m.name),
        }
    }
    if out.is_empty() {
        return Err(CliError::target(anyhow::anyhow!(
            "no module of process {pid}{} could be parsed",
            filter.map_or(String::new(), |f| format!(" matching '{f}'"))
        )));
    }
    if format == Format::Json {
        return crate::output::print_json(&out);
    }
    let mut t = Table::new(vec!["MODULE", "KIND", "ADDRESS", "SIZE", "NAME"]);
    for d in &out {
        let m = &d.module.name;
        let sym = |kind: &str, s: &memlens::core::os::SymbolInfo| {
            vec![
                m.clone(),
                kind.to_string(),
                format!("{:016x}", s.addr.0),
                String::new(),
                s.name.clone(),
            ]
        };
        for s in &d.details.sections {
            t.row(vec![
                m.clone(),
                "section".into(),
                format!("{:016x}", s.addr.0),
                format!("{:#x}", s.size),
                s.name.clone(),
            ]);
        }
        for s in &d.details.exports {
            t.row(sym("export", s));
        }
        for s in &d.details.imports {
            t.row(sym("import", s));
        }
    }
    t.print(format)
}

//! `memlens maps -p PID [TARGET]`: the memory mappings of one process.

use crate::exit::CliError;
use crate::output::{Format, FormatArgs, Table};
use crate::target::TargetArgs;

/// Arguments of `maps`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// Process id.
    #[arg(short, long)]
    pid: u32,
    #[command(flatten)]
    format: FormatArgs,
}

/// Runs `maps`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let os = crate::target::open_os(&a.target, metrics)?;
    let proc = os.process(a.pid).map_err(CliError::target)?;
    let maps = proc.maps().map_err(CliError::target)?;
    let format = a.format.format();
    if format == Format::Json {
        return crate::output::print_json(&maps);
    }
    let mut t = Table::new(vec!["START", "END", "PERM", "OFFSET", "PATH"]);
    for m in &maps {
        t.row(vec![
            format!("{:016x}", m.start.0),
            format!("{:016x}", m.end.0),
            m.perms.to_string(),
            format!("{:08x}", m.offset),
            m.path.clone().unwrap_or_default(),
        ]);
    }
    t.print(format)
}

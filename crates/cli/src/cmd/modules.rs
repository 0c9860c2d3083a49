//! `memlens modules [-p PID] [TARGET]`: kernel modules, or the modules mapped into one
//! process (with `--exports` for its exported symbols).

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
    #[command(flatten)]
    format: FormatArgs,
}

/// Runs `modules`.
pub fn run(a: Args) -> Result<(), CliError> {
    let os = crate::target::open_os(&a.target)?;
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

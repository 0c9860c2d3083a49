//! `memlens plugins list|help|targets`: the statically linked plugins and the inventory of
//! shared libraries on the search paths (with the reason each rejected file was rejected).

use memlens_plugin::{listing, Inventory};

use crate::exit::CliError;

/// Plugin commands.
#[derive(clap::Subcommand, Debug)]
pub enum PluginsCommand {
    /// List plugins: built in, and found on the search paths ($MEMLENS_PLUGIN_PATH,
    /// ~/.local/lib/memlens, /usr/local/lib/memlens, /usr/lib/memlens, the executable's
    /// directory), with files that were rejected and why.
    ///
    /// Of several plugins with the same kind and name the highest version is used; on a
    /// tie a built-in one, then the file found first. The others are listed as shadowed.
    #[command(
        after_help = "Example:\n  MEMLENS_PLUGIN_PATH=./plugins memlens plugins list --json"
    )]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin's description and arguments.
    #[command(after_help = "Example:\n  memlens plugins help qemu")]
    Help {
        /// Plugin name.
        name: String,
    },
    /// List what a plugin can open now (a connector's running QEMU guests; an OS plugin's
    /// targets, if it lists any).
    #[command(after_help = "Example:\n  memlens plugins targets qemu")]
    Targets {
        /// Plugin name (connector or OS).
        name: String,
        /// Arguments for the listing (plugin syntax).
        #[arg(default_value = "")]
        args: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a plugins subcommand.
pub fn run(cmd: PluginsCommand) -> Result<(), CliError> {
    let reg = crate::plugins::registry();
    let inv = Inventory::scan();
    match cmd {
        PluginsCommand::List { json } => {
            let l = listing::list(Some(&reg), &inv);
            for w in &l.warnings {
                log::warn!("{w}");
            }
            if json {
                return crate::output::print_json(&l);
            }
            print!("{}", l.to_text());
            Ok(())
        }
        PluginsCommand::Help { name } => {
            let h = listing::help(Some(&reg), &inv, &name).map_err(|e| {
                CliError::usage(
                    e.to_string(),
                    Some("`memlens plugins list` shows the available plugins"),
                )
            })?;
            print!("{h}");
            Ok(())
        }
        PluginsCommand::Targets { name, args, json } if name == "qemu" => {
            // The qemu connector discovers guests through an OS: the host's.
            let os = crate::plugins::host_os(false)?;
            let guests = memlens_connector_qemu::list_targets(&*os).map_err(CliError::target)?;
            let _ = args;
            if json {
                return crate::output::print_json(&guests);
            }
            if guests.is_empty() {
                println!("qemu: no running QEMU guests found");
            }
            for g in &guests {
                println!("{g}");
            }
            Ok(())
        }
        PluginsCommand::Targets { name, args, json } => {
            let l = listing::targets(Some(&reg), &inv, &name, &args).map_err(|e| {
                CliError::usage(
                    e.to_string(),
                    Some("`memlens plugins list` shows the available plugins"),
                )
            })?;
            if json {
                return crate::output::print_json(&l);
            }
            print!("{}", l.to_text());
            Ok(())
        }
    }
}

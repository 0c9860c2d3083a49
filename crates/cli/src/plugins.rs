//! The plugins this binary knows: the statically linked ones plus the inventory of shared
//! libraries found on the search paths (a file replaces a linked plugin of the same name
//! only with a strictly higher version).
//! Also the two defaults: the host OS when no target is given, and OS detection (`-o auto`)
//! on a dump. This module builds what it is given; reading the command line (which steps,
//! which dump) is [`crate::target`]'s job.

use std::sync::Arc;

use memlens::core::{Os, PhysicalTarget};
use memlens_plugin::builder::{ChainSpec, Output, Step, StepMetrics};
use memlens_plugin::{Builder, Built, Inventory, PluginKind, PluginSpec, StaticRegistry};

use crate::exit::CliError;

/// The statically linked plugins.
pub fn registry() -> StaticRegistry {
    StaticRegistry::new()
        .with_os::<memlens_os_native::NativePlugin>()
        .with_os::<memlens_os_linux::plugin::LinuxPlugin>()
        .with_connector::<memlens_connector_qemu::QemuPlugin>()
        .with_connector::<memlens::file::plugin::FilePlugin>()
}

/// A chain that starts with a connector needing an OS as input (`-c qemu:vm`) reads
/// through the host: `-o native` is put in front.
fn with_default_input(mut chain: ChainSpec, b: &Builder<'_>) -> Result<ChainSpec, CliError> {
    let needs_os = chain
        .steps
        .first()
        .filter(|s| s.kind == PluginKind::Connector)
        .and_then(|s| b.connector(&s.spec.name).ok())
        .is_some_and(|f| f.meta().input == memlens_plugin::InputKind::Required);
    if needs_os {
        let spec = PluginSpec::parse("native").map_err(chain_error)?;
        chain.steps.insert(
            0,
            Step {
                kind: PluginKind::Os,
                spec,
            },
        );
    }
    Ok(chain)
}

/// Builds a chain of plugins, on `input` when the caller already opened a physical target
/// (a positional dump file), and keeps the steps' metrics in `metrics`.
pub fn build(
    input: Option<PhysicalTarget>,
    chain: ChainSpec,
    metrics: &mut ChainMetrics,
) -> Result<Built, CliError> {
    let reg = registry();
    let inv = Inventory::scan();
    let b = Builder::new().registry(&reg).inventory(&inv);
    let mut built = match input {
        Some(t) => b.build_on(Output::Target(t), &chain),
        None => b.build(&with_default_input(chain, &b)?),
    }
    .map_err(chain_error)?;
    metrics.0.append(&mut built.metrics);
    Ok(built)
}

/// The `metrics` middleware's counters of every chain step that asked for them
/// (`-c NAME:…:…:metrics`), owned by the running command and printed when it ends.
#[derive(Default)]
pub struct ChainMetrics(Vec<StepMetrics>);

impl ChainMetrics {
    /// Prints the counters to standard error, so they never mix with the output.
    pub fn print(&self) {
        for (name, m) in &self.0 {
            eprintln!("metrics {name}: {}", m.snapshot());
        }
    }
}

/// A chain error: the user's words (unknown plugin, bad arguments, bad order) are usage
/// errors; a plugin that failed to open its target is a target error.
pub fn chain_error(e: memlens_plugin::Error) -> CliError {
    use memlens_plugin::Error as E;
    match e {
        E::Plugin { .. } | E::Panic { .. } | E::Io { .. } | E::Core(_) | E::Load { .. } => {
            CliError::target(e)
        }
        e => CliError::usage(
            e.to_string(),
            Some("`memlens plugins list` shows the available plugins; `memlens plugins help NAME` their arguments"),
        ),
    }
}

/// Finds the OS in a physical target (`-o auto`). Linux is the OS plugin for memory
/// images; its own error says what it found and what was missing.
pub fn detect_os(target: PhysicalTarget) -> Result<Arc<dyn Os>, CliError> {
    // Opening is the detection; the (slower, serial) detection scan only runs to word the
    // error when opening fails.
    let probe = target.clone();
    match memlens_os_linux::LinuxOs::open(target, memlens_os_linux::LinuxOptions::default()) {
        Ok(os) => Ok(Arc::new(os)),
        Err(e) if memlens_os_linux::detect(&probe).is_some() => Err(CliError::target(e)),
        Err(e) => Err(CliError::target_hint(
            anyhow::anyhow!("no supported operating system was found in the target ({e})"),
            "memlens finds Linux kernels with BTF in memory; for other kernels pass -o linux:symbols=System.map",
        )),
    }
}

/// The host itself: the default target.
pub fn host_os(allow_write: bool) -> Result<Arc<dyn Os>, CliError> {
    let os = memlens_os_native::NativeOs::open(memlens_os_native::NativeOptions { allow_write })
        .map_err(CliError::target)?;
    Ok(Arc::new(os))
}

//! The plugins this binary knows: the statically linked ones plus the inventory of shared
//! libraries found on the search paths (a file replaces a linked plugin of the same name
//! only with a strictly higher version).
//! Also the two defaults: the host OS when no target is given, and OS detection (`-o auto`)
//! on a dump.

use std::sync::Arc;

use memlens::core::{Os, PhysicalTarget};
use memlens_plugin::builder::Output;
use memlens_plugin::{Builder, Built, Inventory, StaticRegistry};

use crate::exit::CliError;
use crate::target::TargetArgs;

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
fn with_default_input(words: Vec<String>, b: &Builder<'_>) -> Vec<String> {
    let first_conn = match words.as_slice() {
        [flag, v, ..] if flag == "-c" || flag == "--connector" => Some(v.as_str()),
        [w, ..] => w.strip_prefix("--connector="),
        [] => None,
    };
    let needs_os = first_conn
        .map(|c| c.split(':').next().unwrap_or(c))
        .and_then(|name| b.connector(name).ok())
        .is_some_and(|f| f.meta().input == memlens_plugin::InputKind::Required);
    if needs_os {
        let mut w = vec!["-o".to_string(), "native".to_string()];
        w.extend(words);
        w
    } else {
        words
    }
}

/// Builds the `-c`/`-o` chain of the command line (a positional dump file, when given,
/// becomes the first step; `-o auto` as the last step detects the OS).
pub fn build(t: &TargetArgs) -> Result<Built, CliError> {
    let mut words = crate::target::chain_words();
    // `-o auto` / `--os=auto` at the end: detect the OS on what the chain produced.
    let auto = match words.as_slice() {
        [.., flag, last] if (flag == "-o" || flag == "--os") && last == "auto" => {
            words.truncate(words.len() - 2);
            true
        }
        [.., last] if last == "--os=auto" => {
            words.pop();
            true
        }
        _ => false,
    };
    if words.iter().any(|w| w == "auto" || w == "--os=auto") {
        return Err(CliError::usage(
            "-o auto can only be the last step of a chain",
            None,
        ));
    }
    let target = match (&t.path, words.is_empty()) {
        (Some(_), false) => {
            return Err(CliError::usage(
                "give either a dump file or a -c/-o chain, not both",
                Some("put the dump inside the chain: -c file:PATH -o auto"),
            ))
        }
        (Some(p), true) => crate::target::open_file(p, t.allow_write)?,
        (None, true) => return Err(CliError::usage("-o auto needs a target before it", None)),
        (None, false) => {
            let reg = registry();
            let inv = Inventory::scan();
            let b = Builder::new().registry(&reg).inventory(&inv);
            let words = with_default_input(words, &b);
            let built = b.build_cli(&words).map_err(chain_error)?;
            remember_metrics(&built.metrics);
            if !auto {
                return Ok(built);
            }
            built
                .target()
                .ok_or_else(|| CliError::usage("-o auto must follow a connector (-c)", None))?
        }
    };
    let output = if auto {
        Output::Os(detect_os(target)?)
    } else {
        Output::Target(target)
    };
    Ok(Built {
        output,
        metrics: Vec::new(),
    })
}

/// Steps built with the `metrics` middleware, summarised when the command ends.
static METRICS: std::sync::Mutex<Vec<memlens_plugin::builder::StepMetrics>> =
    std::sync::Mutex::new(Vec::new());

fn remember_metrics(m: &[memlens_plugin::builder::StepMetrics]) {
    if let Ok(mut all) = METRICS.lock() {
        all.extend(m.iter().cloned());
    }
}

/// Prints the `metrics` middleware's counters of every chain step that asked for them
/// (`-c NAME:…:…:metrics`), to standard error so they never mix with the output.
pub fn print_metrics() {
    let Ok(all) = METRICS.lock() else { return };
    for (name, m) in all.iter() {
        eprintln!("metrics {name}: {}", m.snapshot());
    }
}

/// A chain error: the user's words (unknown plugin, bad arguments, bad order) are usage
/// errors; a plugin that failed to open its target is a target error.
fn chain_error(e: memlens_plugin::Error) -> CliError {
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

//! The plugin-facing traits: what a connector or OS crate implements to be exportable as a
//! shared library ([`export_connector!`](crate::export_connector),
//! [`export_os!`](crate::export_os)) *and* registrable statically
//! ([`StaticRegistry`](crate::StaticRegistry)). **Key decision: plain associated
//! functions and constants, no `self`** — a plugin is a factory, the objects it creates
//! are ordinary core trait objects, and the same impl serves both linking modes.

use std::sync::Arc;

use memlens_core::{Os, PhysicalTarget};
use serde::{Deserialize, Serialize};

use crate::args::{ArgSpec, Args};
use crate::error::BoxError;

/// Whether a plugin accepts an input from the previous step of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum InputKind {
    /// Never takes an input (a dump-file connector, the native OS).
    None = 0,
    /// Works with or without one.
    Optional = 1,
    /// Must be given one (an OS plugin that parses physical memory).
    Required = 2,
}

impl InputKind {
    /// From the header's `u32`; unknown values read as `None`.
    pub fn from_u32(v: u32) -> InputKind {
        match v {
            1 => InputKind::Optional,
            2 => InputKind::Required,
            _ => InputKind::None,
        }
    }
}

/// Kind of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// Gives physical memory (`-c`).
    Connector,
    /// Interprets memory as an operating system (`-o`).
    Os,
}

impl PluginKind {
    /// `connector` or `os`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Connector => "connector",
            PluginKind::Os => "os",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One target a connector can open (a VM, a process, a device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetListing {
    /// What to write in the target section.
    pub name: String,
    /// Human description.
    pub description: String,
}

/// A connector: creates a [`PhysicalTarget`] from its arguments and, in a chain, from the
/// OS of the previous step (the connector then picks a process by its target argument).
pub trait ConnectorPlugin: 'static {
    /// Name used in `-c NAME` (`[a-z0-9_]+`, at most 31 bytes).
    const NAME: &'static str;
    /// Version (`x.y.z`); the highest wins among duplicates in the inventory.
    const VERSION: &'static str;
    /// One line for `plugins list`.
    const DESCRIPTION: &'static str;
    /// Whether the connector accepts an OS as input.
    const INPUT: InputKind = InputKind::None;

    /// The declaration of its arguments.
    fn args() -> ArgSpec;

    /// The help text (`plugins help NAME`). The default prints the description and the
    /// argument declarations.
    fn help() -> String {
        help_text(
            PluginKind::Connector,
            Self::NAME,
            Self::VERSION,
            Self::DESCRIPTION,
            Self::INPUT,
            &Self::args(),
        )
    }

    /// Targets it can open now (`plugins targets NAME`). The default lists none.
    fn targets(_args: &Args) -> Result<Vec<TargetListing>, BoxError> {
        Ok(Vec::new())
    }

    /// Creates the connector. `input` is the previous step's OS when chained.
    fn create(args: &Args, input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget, BoxError>;
}

/// An OS plugin: finds an OS in a physical target (or is the host itself).
pub trait OsPlugin: 'static {
    /// Name used in `-o NAME`.
    const NAME: &'static str;
    /// Version (`x.y.z`).
    const VERSION: &'static str;
    /// One line for `plugins list`.
    const DESCRIPTION: &'static str;
    /// Whether it takes a physical target as input.
    const INPUT: InputKind = InputKind::Required;

    /// The declaration of its arguments.
    fn args() -> ArgSpec;

    /// The help text. The default prints the description and the argument declarations.
    fn help() -> String {
        help_text(
            PluginKind::Os,
            Self::NAME,
            Self::VERSION,
            Self::DESCRIPTION,
            Self::INPUT,
            &Self::args(),
        )
    }

    /// What it can open now (`plugins targets NAME`), e.g. the kernels or snapshots a
    /// target section may name. The default lists none.
    fn targets(_args: &Args) -> Result<Vec<TargetListing>, BoxError> {
        Ok(Vec::new())
    }

    /// Creates the OS. `input` is the previous step's physical target.
    fn create(args: &Args, input: Option<PhysicalTarget>) -> Result<Arc<dyn Os>, BoxError>;
}

/// The default help text of a plugin.
pub fn help_text(
    kind: PluginKind,
    name: &str,
    version: &str,
    description: &str,
    input: InputKind,
    spec: &ArgSpec,
) -> String {
    let usage = match kind {
        PluginKind::Connector => format!("-c {name}[:target[:args[:middleware]]]"),
        PluginKind::Os => format!("-o {name}[:target[:args]]"),
    };
    let input = match (kind, input) {
        (_, InputKind::None) => "none",
        (PluginKind::Connector, InputKind::Optional) => "optional: an OS (-o ... before -c)",
        (PluginKind::Connector, InputKind::Required) => "required: an OS (-o ... before -c)",
        (PluginKind::Os, InputKind::Optional) => "optional: a connector (-c ... before -o)",
        (PluginKind::Os, InputKind::Required) => "required: a connector (-c ... before -o)",
    };
    let mut s = format!(
        "{name} {version} ({kind}): {description}\nusage: {usage}\ninput: {input}\n{}",
        spec.help()
    );
    if kind == PluginKind::Connector {
        s.push_str("middleware (4th section):\n");
        for a in crate::args::MiddlewareSpec::spec().args {
            s.push_str(&format!("  {:<18} {}\n", a.name, a.description));
        }
    }
    s
}

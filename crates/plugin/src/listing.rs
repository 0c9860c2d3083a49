//! The data behind `memlens plugins list | help NAME | targets NAME`: serialisable structs
//! (for `--json`) with a human text form. **Key decision: rejected files are part of the
//! listing**, each with its reason, so "why is my plugin not used" is answered by the same
//! command that lists the plugins.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::abi::ABI_VERSION;
use crate::builder::{file_replaces_static, Builder};
use crate::error::{Error, Result};
use crate::inventory::{not_found, EntryStatus, Inventory, RejectedFile};
use crate::registry::StaticRegistry;
use crate::traits::{InputKind, PluginKind, TargetListing};

/// One plugin as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedPlugin {
    /// Kind.
    pub kind: PluginKind,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// ABI version (the host's for static plugins).
    pub abi_version: u32,
    /// Whether it accepts an input.
    pub input: InputKind,
    /// `None` for a plugin linked into the binary.
    pub path: Option<PathBuf>,
    /// Description.
    pub description: String,
    /// Usable, shadowed or rejected (with the reason).
    #[serde(flatten)]
    pub status: EntryStatus,
}

/// `plugins list`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginList {
    /// The host's ABI version.
    pub host_abi_version: u32,
    /// Directories searched, in order.
    pub search_paths: Vec<PathBuf>,
    /// Plugins (static first, then files in search order).
    pub plugins: Vec<ListedPlugin>,
    /// Files rejected as a whole, with the reason.
    pub rejected_files: Vec<RejectedFile>,
    /// Warnings (skipped directories or files).
    pub warnings: Vec<String>,
}

/// Builds the `plugins list` data.
pub fn list(registry: Option<&StaticRegistry>, inventory: &Inventory) -> PluginList {
    // The usable file that replaces a linked plugin (strictly higher version), if any.
    let newer_file = |m: &crate::registry::PluginMeta| {
        inventory
            .find(m.kind, &m.name)
            .filter(|e| file_replaces_static(&e.version, &m.version))
    };
    let mut plugins: Vec<ListedPlugin> = registry
        .map(|r| r.metas())
        .unwrap_or_default()
        .into_iter()
        .map(|m| ListedPlugin {
            status: match newer_file(&m) {
                Some(e) => EntryStatus::Shadowed { by: e.path.clone() },
                None => EntryStatus::Ok,
            },
            kind: m.kind,
            name: m.name,
            version: m.version,
            abi_version: ABI_VERSION,
            input: m.input,
            path: None,
            description: m.description,
        })
        .collect();
    for e in &inventory.entries {
        let shadowed_by_static = registry
            .and_then(|r| {
                r.metas()
                    .into_iter()
                    .find(|m| m.kind == e.kind && m.name == e.name)
            })
            .is_some_and(|m| !file_replaces_static(&e.version, &m.version));
        plugins.push(ListedPlugin {
            kind: e.kind,
            name: e.name.clone(),
            version: e.version.clone(),
            abi_version: e.abi_version,
            input: e.input,
            path: Some(e.path.clone()),
            description: e.description.clone(),
            status: if shadowed_by_static && e.status == EntryStatus::Ok {
                EntryStatus::Shadowed {
                    by: PathBuf::from("(linked into this binary)"),
                }
            } else {
                e.status.clone()
            },
        });
    }
    PluginList {
        host_abi_version: ABI_VERSION,
        search_paths: inventory.paths.clone(),
        plugins,
        rejected_files: inventory.rejected.clone(),
        warnings: inventory.warnings.clone(),
    }
}

impl PluginList {
    /// The human form.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if self.plugins.is_empty() {
            s.push_str("no plugins found\n");
        } else {
            let _ = writeln!(
                s,
                "{:<10} {:<12} {:<9} {:<4} {:<40} DESCRIPTION",
                "KIND", "NAME", "VERSION", "ABI", "SOURCE"
            );
        }
        for p in &self.plugins {
            let src = p
                .path
                .as_ref()
                .map_or("(built in)".to_string(), |p| p.display().to_string());
            let _ = writeln!(
                s,
                "{:<10} {:<12} {:<9} {:<4} {:<40} {}",
                p.kind.as_str(),
                p.name,
                p.version,
                p.abi_version,
                src,
                p.description
            );
            match &p.status {
                EntryStatus::Ok => {}
                EntryStatus::Shadowed { by } => {
                    let _ = writeln!(s, "           ^ not used: shadowed by {}", by.display());
                }
                EntryStatus::Rejected { reason } => {
                    let _ = writeln!(s, "           ^ rejected: {reason}");
                }
            }
        }
        for r in &self.rejected_files {
            let _ = writeln!(s, "rejected file {}: {}", r.path.display(), r.reason);
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        let _ = writeln!(
            s,
            "searched (ABI {}): {}",
            self.host_abi_version,
            self.search_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        );
        s
    }
}

/// `plugins help NAME`: the help of every plugin of that name (a connector and an OS
/// plugin may share a name).
pub fn help(
    registry: Option<&StaticRegistry>,
    inventory: &Inventory,
    name: &str,
) -> Result<String> {
    let b = builder(registry, inventory);
    let mut parts = Vec::new();
    let mut errs = Vec::new();
    match b.connector(name) {
        Ok(f) => parts.push(f.help()?),
        Err(e @ (Error::Rejected { .. } | Error::Load { .. })) => errs.push(e),
        Err(_) => {}
    }
    match b.os(name) {
        Ok(f) => parts.push(f.help()?),
        Err(e @ (Error::Rejected { .. } | Error::Load { .. })) => errs.push(e),
        Err(_) => {}
    }
    if parts.is_empty() {
        if let Some(e) = errs.into_iter().next() {
            return Err(e);
        }
        return Err(not_found_any(name, registry, inventory));
    }
    Ok(parts.join("\n"))
}

/// `plugins targets NAME`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetList {
    /// The plugin.
    pub plugin: String,
    /// Its kind.
    pub kind: PluginKind,
    /// What it can open.
    pub targets: Vec<TargetListing>,
}

impl TargetList {
    /// The human form.
    pub fn to_text(&self) -> String {
        if self.targets.is_empty() {
            return format!(
                "{} ({}): no targets found (the plugin lists none now)\n",
                self.plugin, self.kind
            );
        }
        let mut s = String::new();
        for t in &self.targets {
            let _ = writeln!(s, "{:<24} {}", t.name, t.description);
        }
        s
    }
}

/// Lists the targets of plugin `name` (the connector of that name if there is one, else
/// the OS plugin); `args` is a raw argument section.
pub fn targets(
    registry: Option<&StaticRegistry>,
    inventory: &Inventory,
    name: &str,
    args: &str,
) -> Result<TargetList> {
    let b = builder(registry, inventory);
    let conn_err = match b.connector(name) {
        Ok(f) => {
            return Ok(TargetList {
                plugin: name.to_string(),
                kind: PluginKind::Connector,
                targets: f.targets(args)?,
            })
        }
        Err(e) => e,
    };
    match b.os(name) {
        Ok(f) => Ok(TargetList {
            plugin: name.to_string(),
            kind: PluginKind::Os,
            targets: f.targets(args)?,
        }),
        Err(e @ (Error::Rejected { .. } | Error::Load { .. })) => Err(e),
        Err(_) => match conn_err {
            e @ (Error::Rejected { .. } | Error::Load { .. }) => Err(e),
            _ => Err(not_found_any(name, registry, inventory)),
        },
    }
}

/// "No plugin of either kind named `name`", with a suggestion among both kinds' names.
fn not_found_any(name: &str, registry: Option<&StaticRegistry>, inventory: &Inventory) -> Error {
    match not_found(PluginKind::Connector, name, &all_names(registry, inventory)) {
        Error::NotFound {
            name,
            suggestion,
            available,
            ..
        } => Error::NotFound {
            kind: "connector or OS",
            name,
            suggestion,
            available,
        },
        e => e,
    }
}

/// Every plugin name, both kinds, sorted (for "did you mean").
fn all_names(registry: Option<&StaticRegistry>, inventory: &Inventory) -> Vec<String> {
    let mut all: Vec<String> = registry
        .map(|r| r.metas().into_iter().map(|m| m.name).collect())
        .unwrap_or_default();
    all.extend(inventory.names(PluginKind::Connector));
    all.extend(inventory.names(PluginKind::Os));
    all.sort();
    all.dedup();
    all
}

fn builder<'a>(registry: Option<&'a StaticRegistry>, inventory: &'a Inventory) -> Builder<'a> {
    let b = Builder::new().inventory(inventory);
    match registry {
        Some(r) => b.registry(r),
        None => b,
    }
}

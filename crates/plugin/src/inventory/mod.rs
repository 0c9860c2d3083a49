//! The inventory: which plugin files exist, which are usable, and loading them. **Key
//! decision: scanning never loads anything** (the [`analyzer`](crate::analyzer) reads the
//! files), and loading re-checks in memory what the analyzer checked on disk, so a file
//! swapped between listing and loading is still refused before any call.
//!
//! Layout: [`paths`] (where plugins are searched and which files are safe to read),
//! [`version`] (duplicate resolution), [`lookup`] (not-found errors), `load` (the
//! dlopen and its in-memory re-check), [`loaded`] (the loaded factories).
//!
//! Search order: each directory of `$MEMLENS_PLUGIN_PATH` (colon-separated, absolute paths
//! only), `~/.local/lib/memlens`, `/usr/local/lib/memlens`, `/usr/lib/memlens`, and the
//! directory of the running executable. The current directory is never searched (a
//! relative entry in the variable is ignored with a warning: it would make the plugins
//! depend on where the user stands). World-writable directories and files are skipped with
//! a warning: anyone could plant code there.
//!
//! Duplicates (same kind and name): the highest version wins; between equal versions the
//! one found first in search order wins. The others are listed as shadowed. Against a
//! plugin linked into the binary the same rule holds, with the tie going to the linked one
//! ([`file_replaces_static`](crate::builder::file_replaces_static)).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::abi::*;
use crate::analyzer::{analyze_bytes, FileAnalysis};
use crate::error::{Error, Result};
use crate::registry::PluginMeta;
use crate::traits::{InputKind, PluginKind};

mod load;
pub mod loaded;
pub mod lookup;
pub mod paths;
pub mod version;

pub use loaded::{LoadedConnector, LoadedOs};
pub use lookup::{edit_distance, not_found};
pub use paths::{default_search_paths, LIB_EXT, PATH_VAR};
pub use version::compare_versions;

use paths::{read_checked, world_writable};

/// Whether a plugin can be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EntryStatus {
    /// Usable, and the one chosen for its name.
    Ok,
    /// Usable, but another file provides the same plugin with a higher version or earlier
    /// in search order.
    Shadowed {
        /// The file that wins.
        by: PathBuf,
    },
    /// Not usable.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// One plugin descriptor found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginEntry {
    /// Kind.
    pub kind: PluginKind,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: String,
    /// ABI version of the descriptor.
    pub abi_version: u32,
    /// Whether it accepts an input.
    pub input: InputKind,
    /// The file.
    pub path: PathBuf,
    /// The exported symbol.
    pub symbol: String,
    /// Usable or why not.
    #[serde(flatten)]
    pub status: EntryStatus,
}

/// A file that holds no usable descriptor at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedFile {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// The plugins found in the search paths.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    /// Directories searched, in order.
    pub paths: Vec<PathBuf>,
    /// Every descriptor found, in search order.
    pub entries: Vec<PluginEntry>,
    /// Files rejected as a whole.
    pub rejected: Vec<RejectedFile>,
    /// Warnings (skipped directories and files).
    pub warnings: Vec<String>,
}

impl Inventory {
    /// Scans the default search paths.
    pub fn scan() -> Inventory {
        let (paths, warnings) = default_search_paths();
        let mut inv = Inventory::scan_paths(&paths);
        for w in &warnings {
            log::warn!("{w}");
        }
        inv.warnings.splice(0..0, warnings);
        inv
    }

    /// Scans the given directories, in order.
    pub fn scan_paths(paths: &[PathBuf]) -> Inventory {
        let mut inv = Inventory {
            paths: paths.to_vec(),
            ..Default::default()
        };
        let mut seen_dirs = HashSet::new();
        let mut seen_files = HashSet::new();
        for dir in paths {
            let Ok(meta) = std::fs::metadata(dir) else {
                continue; // absent directories are normal
            };
            if !meta.is_dir() {
                continue;
            }
            let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            if !seen_dirs.insert(canon) {
                continue;
            }
            if world_writable(&meta) {
                inv.warn(format!(
                    "{}: skipping world-writable plugin directory",
                    dir.display()
                ));
                continue;
            }
            let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == LIB_EXT))
                    .collect(),
                Err(e) => {
                    inv.warn(format!("{}: cannot list: {e}", dir.display()));
                    continue;
                }
            };
            files.sort();
            for f in files {
                let canon = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
                if !seen_files.insert(canon) {
                    continue;
                }
                inv.add_file(&f);
            }
        }
        inv.resolve_duplicates();
        inv
    }

    fn warn(&mut self, w: String) {
        log::warn!("{w}");
        self.warnings.push(w);
    }

    fn add_file(&mut self, f: &Path) {
        let analysis = match read_checked(f).and_then(|b| analyze_bytes(f, &b)) {
            Ok(a) => a,
            Err(e) => {
                let reason = match e {
                    Error::Rejected { reason, .. } => reason,
                    e => e.to_string(),
                };
                if reason.contains("world-writable") {
                    self.warn(format!("{}: {reason}", f.display()));
                }
                self.rejected.push(RejectedFile {
                    path: f.to_path_buf(),
                    reason,
                });
                return;
            }
        };
        self.add_analysis(analysis);
    }

    fn add_analysis(&mut self, a: FileAnalysis) {
        if a.descriptors.is_empty() {
            self.rejected.push(RejectedFile {
                path: a.path,
                reason: format!(
                    "{} library exports no {CONNECTOR_PREFIX}* or {OS_PREFIX}* descriptor",
                    a.format
                ),
            });
            return;
        }
        for d in a.descriptors {
            self.entries.push(PluginEntry {
                kind: d.kind,
                name: d.name,
                version: d.version,
                description: d.description,
                abi_version: d.abi_version,
                input: d.input,
                path: a.path.clone(),
                symbol: d.symbol,
                status: match d.problem {
                    None => EntryStatus::Ok,
                    Some(reason) => EntryStatus::Rejected { reason },
                },
            });
        }
    }

    fn resolve_duplicates(&mut self) {
        let n = self.entries.len();
        for i in 0..n {
            if self.entries[i].status != EntryStatus::Ok {
                continue;
            }
            // The best entry of this (kind, name): highest version, then first found.
            let mut best = i;
            for j in 0..n {
                let (e, b) = (&self.entries[j], &self.entries[best]);
                if j == best
                    || matches!(e.status, EntryStatus::Rejected { .. })
                    || e.kind != b.kind
                    || e.name != b.name
                {
                    continue;
                }
                let o = compare_versions(&e.version, &b.version);
                if o.is_gt() || (o.is_eq() && j < best) {
                    best = j;
                }
            }
            if best != i {
                self.entries[i].status = EntryStatus::Shadowed {
                    by: self.entries[best].path.clone(),
                };
            }
        }
    }

    /// The usable entry of `kind` named `name`.
    pub fn find(&self, kind: PluginKind, name: &str) -> Option<&PluginEntry> {
        self.entries
            .iter()
            .find(|e| e.kind == kind && e.name == name && e.status == EntryStatus::Ok)
    }

    /// Names of the usable plugins of `kind`.
    pub fn names(&self, kind: PluginKind) -> Vec<String> {
        let mut v: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.kind == kind && e.status == EntryStatus::Ok)
            .map(|e| e.name.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Loads connector `name`.
    pub fn load_connector(&self, name: &str) -> Result<LoadedConnector> {
        let e = self.entry_or_err(PluginKind::Connector, name)?;
        let (origin, ptr) = load::load(e)?;
        Ok(LoadedConnector {
            origin,
            desc: ptr as *const ConnectorDescriptor,
            meta: meta_of(e),
        })
    }

    /// Loads OS plugin `name`.
    pub fn load_os(&self, name: &str) -> Result<LoadedOs> {
        let e = self.entry_or_err(PluginKind::Os, name)?;
        let (origin, ptr) = load::load(e)?;
        Ok(LoadedOs {
            origin,
            desc: ptr as *const OsDescriptor,
            meta: meta_of(e),
        })
    }

    fn entry_or_err(&self, kind: PluginKind, name: &str) -> Result<&PluginEntry> {
        if let Some(e) = self.find(kind, name) {
            return Ok(e);
        }
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.kind == kind && e.name == name)
        {
            if let EntryStatus::Rejected { reason } = &e.status {
                return Err(Error::rejected(&e.path, reason.clone()));
            }
        }
        Err(not_found(kind, name, &self.names(kind)))
    }
}

fn meta_of(e: &PluginEntry) -> PluginMeta {
    PluginMeta {
        kind: e.kind,
        name: e.name.clone(),
        version: e.version.clone(),
        description: e.description.clone(),
        input: e.input,
    }
}

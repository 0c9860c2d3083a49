//! The inventory: which plugin files exist, which are usable, and loading them. **Key
//! decision: scanning never loads anything** (the [`analyzer`](crate::analyzer) reads the
//! files), and loading re-checks in memory what the analyzer checked on disk, so a file
//! swapped between listing and loading is still refused before any call.
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
use std::sync::Arc;

use memlens_core::{Os, PhysicalTarget};
use serde::Serialize;

use crate::abi::export::{export_os, export_target};
use crate::abi::import::{import_os, import_target, Origin};
use crate::abi::*;
use crate::analyzer::{analyze_bytes, check_header, FileAnalysis, MAX_FILE_SIZE};
use crate::args::PluginSpec;
use crate::error::{Error, Result};
use crate::registry::{check_input, ConnectorFactory, OsFactory, PluginMeta};
use crate::traits::{InputKind, PluginKind, TargetListing};

/// The environment variable listing extra plugin directories.
pub const PATH_VAR: &str = "MEMLENS_PLUGIN_PATH";

/// The file extension of shared libraries on this host.
pub const LIB_EXT: &str = std::env::consts::DLL_EXTENSION;

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

/// The default search paths (see the module documentation), existing or not.
pub fn default_search_paths() -> (Vec<PathBuf>, Vec<String>) {
    let mut paths = Vec::new();
    let mut warnings = Vec::new();
    if let Some(v) = std::env::var_os(PATH_VAR) {
        for p in std::env::split_paths(&v) {
            if p.as_os_str().is_empty() {
                continue;
            }
            if p.is_relative() {
                warnings.push(format!(
                    "{PATH_VAR}: ignoring relative directory '{}' (use an absolute path)",
                    p.display()
                ));
                continue;
            }
            paths.push(p);
        }
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        paths.push(PathBuf::from(home).join(".local/lib/memlens"));
    }
    paths.push(PathBuf::from("/usr/local/lib/memlens"));
    paths.push(PathBuf::from("/usr/lib/memlens"));
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        paths.push(dir);
    }
    (paths, warnings)
}

#[cfg(unix)]
fn world_writable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o002 != 0
}
#[cfg(not(unix))]
fn world_writable(_: &std::fs::Metadata) -> bool {
    false
}

/// Compares versions numerically per dot-separated component (`1.10.0` > `1.9.3`);
/// non-numeric components compare as text.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let mut ia = a.split(['.', '-', '+']);
    let mut ib = b.split(['.', '-', '+']);
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    _ => x.cmp(y),
                };
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
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
        let (origin, ptr) = load(e)?;
        Ok(LoadedConnector {
            origin,
            desc: ptr as *const ConnectorDescriptor,
            meta: meta_of(e),
        })
    }

    /// Loads OS plugin `name`.
    pub fn load_os(&self, name: &str) -> Result<LoadedOs> {
        let e = self.entry_or_err(PluginKind::Os, name)?;
        let (origin, ptr) = load(e)?;
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

/// A "not found" error with a did-you-mean suggestion.
pub fn not_found(kind: PluginKind, name: &str, available: &[String]) -> Error {
    let suggestion = available
        .iter()
        .map(|a| (edit_distance(name, a), a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min()
        .map(|(_, a)| format!(" (did you mean '{a}'?)"))
        .unwrap_or_default();
    Error::NotFound {
        kind: kind.as_str(),
        name: name.to_string(),
        suggestion,
        available: if available.is_empty() {
            "none (set MEMLENS_PLUGIN_PATH or see `memlens plugins list`)".into()
        } else {
            available.join(", ")
        },
    }
}

/// Levenshtein distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Reads a file for analysis, refusing world-writable files and oversized ones.
fn read_checked(path: &Path) -> Result<Vec<u8>> {
    let m =
        std::fs::metadata(path).map_err(|e| Error::rejected(path, format!("cannot stat: {e}")))?;
    if world_writable(&m) {
        return Err(Error::rejected(path, "skipping world-writable plugin file"));
    }
    if m.len() > MAX_FILE_SIZE {
        return Err(Error::rejected(
            path,
            format!(
                "file is {} bytes, above the {MAX_FILE_SIZE}-byte limit",
                m.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::rejected(path, format!("cannot read: {e}")))
}

/// Opens the library of `e`, re-analyses the exact file being loaded, loads it and checks
/// the descriptor in memory. Returns the origin and the descriptor's address.
fn load(e: &PluginEntry) -> Result<(Arc<Origin>, *const PluginHeader)> {
    let path = &e.path;
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|er| Error::Io {
        path: path.clone(),
        source: er,
    })?;
    let meta = file.metadata().map_err(|er| Error::Io {
        path: path.clone(),
        source: er,
    })?;
    if world_writable(&meta) {
        return Err(Error::rejected(path, "plugin file became world-writable"));
    }
    let mut bytes = Vec::new();
    file.by_ref()
        .take(MAX_FILE_SIZE)
        .read_to_end(&mut bytes)
        .map_err(|er| Error::Io {
            path: path.clone(),
            source: er,
        })?;
    let a = analyze_bytes(path, &bytes)?;
    let d = a
        .descriptors
        .iter()
        .find(|d| d.symbol == e.symbol)
        .ok_or_else(|| Error::rejected(path, format!("no longer exports {}", e.symbol)))?;
    if let Some(p) = &d.problem {
        return Err(Error::rejected(path, p.clone()));
    }
    // Load the file we analysed: the path must still name the same inode as the open
    // descriptor we read. (Loading through `/proc/self/fd/N` would be tighter, but the
    // dynamic loader deduplicates libraries by that name, and descriptor numbers are
    // reused.) The in-memory header check below closes the remaining window.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let now = std::fs::metadata(path).map_err(|er| Error::Io {
            path: path.clone(),
            source: er,
        })?;
        if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
            return Err(Error::rejected(
                path,
                "file was replaced while being loaded",
            ));
        }
    }
    // SAFETY: the file passed the static checks (format, architecture, ABI version, layout
    // fingerprint); loading runs its initialisers, which is what loading a plugin means.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|er| Error::Load {
        path: path.clone(),
        message: er.to_string(),
    })?;
    drop(file);
    let mut sym = e.symbol.clone().into_bytes();
    sym.push(0);
    // SAFETY: we only take the symbol's address; it is read as a header below.
    let addr: *const PluginHeader = unsafe {
        let s: libloading::Symbol<'_, *const PluginHeader> =
            lib.get(&sym).map_err(|er| Error::Load {
                path: path.clone(),
                message: format!("symbol {}: {er}", e.symbol),
            })?;
        *s
    };
    if addr.is_null() {
        return Err(Error::rejected(
            path,
            format!("symbol {} is null", e.symbol),
        ));
    }
    // SAFETY: the symbol names a static descriptor whose first bytes are a header (checked
    // in the file); reading plain integers and byte arrays has no validity requirements.
    let header = unsafe { std::ptr::read_unaligned(addr) };
    check_header(&header, &e.symbol)
        .map_err(|r| Error::rejected(path, format!("in memory: {r}")))?;
    Ok((Origin::library(&e.name, path.clone(), Arc::new(lib)), addr))
}

fn status_err(plugin: &str, during: &str, status: i32, err: &[u8]) -> Error {
    let message = String::from_utf8_lossy(err).into_owned();
    if status == STATUS_PANIC {
        Error::Panic {
            plugin: plugin.to_string(),
            during: during.to_string(),
            message,
        }
    } else {
        Error::Plugin {
            plugin: plugin.to_string(),
            message: if message.is_empty() {
                format!("{during} failed with status {status}")
            } else {
                message
            },
        }
    }
}

/// Calls a loaded descriptor's `targets` (same signature for both kinds).
fn loaded_targets(name: &str, f: TargetsFn, args: &str) -> Result<Vec<TargetListing>> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // SAFETY: a checked descriptor's function of a library kept loaded by the caller;
    // valid string and sinks.
    let st = unsafe {
        f(
            StrRef::new(args),
            StrSink::to_vec(&mut out),
            StrSink::to_vec(&mut err),
        )
    };
    if st != STATUS_OK {
        return Err(status_err(name, "targets", st, &err));
    }
    serde_json::from_slice(&out).map_err(|e| Error::Plugin {
        plugin: name.to_string(),
        message: format!("bad target list JSON: {e}"),
    })
}

/// A connector loaded from a file.
pub struct LoadedConnector {
    origin: Arc<Origin>,
    desc: *const ConnectorDescriptor,
    meta: PluginMeta,
}

// SAFETY: the descriptor is an immutable static of a library kept loaded by `origin`.
unsafe impl Send for LoadedConnector {}
// SAFETY: as above.
unsafe impl Sync for LoadedConnector {}

impl LoadedConnector {
    fn desc(&self) -> &ConnectorDescriptor {
        // SAFETY: checked at load; the library stays loaded while `origin` lives.
        unsafe { &*self.desc }
    }
    /// The file it was loaded from.
    pub fn path(&self) -> Option<&Path> {
        self.origin.path.as_deref()
    }
}

impl ConnectorFactory for LoadedConnector {
    fn meta(&self) -> PluginMeta {
        self.meta.clone()
    }
    fn help(&self) -> Result<String> {
        let mut out = Vec::new();
        // SAFETY: valid descriptor and sink.
        let st = unsafe { (self.desc().help)(StrSink::to_vec(&mut out)) };
        if st != STATUS_OK {
            return Err(status_err(&self.meta.name, "help", st, &out));
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    fn targets(&self, args: &str) -> Result<Vec<TargetListing>> {
        loaded_targets(&self.meta.name, self.desc().targets, args)
    }
    fn path(&self) -> Option<PathBuf> {
        self.origin.path.clone()
    }
    fn create(&self, spec: &PluginSpec, input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget> {
        check_input(&self.meta.name, self.meta.input, input.is_some(), "an OS")?;
        let host = crate::logger::host_context();
        let input_obj = input.map(export_os);
        let mut out = PhysTargetObj {
            memory: MemObj::ABSENT,
            writer: MemObj::ABSENT,
            cpu: CpuObj::ABSENT,
        };
        let (mut info, mut err) = (Vec::new(), Vec::new());
        // SAFETY: all pointers valid for the call; the input object is moved to the plugin.
        let st = unsafe {
            (self.desc().create)(
                &host,
                StrRef::opt(spec.target.as_deref()),
                StrRef::new(&spec.args),
                input_obj
                    .as_ref()
                    .map_or(std::ptr::null(), |o| o as *const OsObj),
                &mut out,
                StrSink::to_vec(&mut info),
                StrSink::to_vec(&mut err),
            )
        };
        if st != STATUS_OK || out.memory.this.is_null() {
            return Err(status_err(&self.meta.name, "create", st, &err));
        }
        let info = String::from_utf8_lossy(&info).into_owned();
        // SAFETY: a valid owned target from this library; `info` lives for the call.
        unsafe { import_target(out, StrRef::new(&info), self.origin.clone()) }.map_err(|m| {
            Error::Plugin {
                plugin: self.meta.name.clone(),
                message: m,
            }
        })
    }
}

/// An OS plugin loaded from a file.
pub struct LoadedOs {
    origin: Arc<Origin>,
    desc: *const OsDescriptor,
    meta: PluginMeta,
}

// SAFETY: the descriptor is an immutable static of a library kept loaded by `origin`.
unsafe impl Send for LoadedOs {}
// SAFETY: as above.
unsafe impl Sync for LoadedOs {}

impl LoadedOs {
    fn desc(&self) -> &OsDescriptor {
        // SAFETY: checked at load; the library stays loaded while `origin` lives.
        unsafe { &*self.desc }
    }
}

impl OsFactory for LoadedOs {
    fn meta(&self) -> PluginMeta {
        self.meta.clone()
    }
    fn help(&self) -> Result<String> {
        let mut out = Vec::new();
        // SAFETY: valid descriptor and sink.
        let st = unsafe { (self.desc().help)(StrSink::to_vec(&mut out)) };
        if st != STATUS_OK {
            return Err(status_err(&self.meta.name, "help", st, &out));
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    fn targets(&self, args: &str) -> Result<Vec<TargetListing>> {
        loaded_targets(&self.meta.name, self.desc().targets, args)
    }
    fn path(&self) -> Option<PathBuf> {
        self.origin.path.clone()
    }
    fn create(&self, spec: &PluginSpec, input: Option<PhysicalTarget>) -> Result<Arc<dyn Os>> {
        check_input(
            &self.meta.name,
            self.meta.input,
            input.is_some(),
            "a physical target",
        )?;
        let host = crate::logger::host_context();
        let input = match input {
            Some(t) => Some(export_target(t).map_err(|m| Error::Plugin {
                plugin: self.meta.name.clone(),
                message: m,
            })?),
            None => None,
        };
        let mut out = OsObj {
            this: std::ptr::null_mut(),
            vt: OsVtable {
                drop: absent_drop,
                info: absent_json,
                processes: absent_json,
                process: absent_process,
                kernel_modules: absent_json,
                kernel_memory: absent_mem,
                physical: absent_phys,
            },
        };
        let mut err = Vec::new();
        // SAFETY: all pointers valid for the call; the input target is moved to the plugin.
        let st = unsafe {
            (self.desc().create)(
                &host,
                StrRef::opt(spec.target.as_deref()),
                StrRef::new(&spec.args),
                input
                    .as_ref()
                    .map_or(std::ptr::null(), |(o, _)| o as *const PhysTargetObj),
                input.as_ref().map_or(StrRef::NONE, |(_, i)| StrRef::new(i)),
                &mut out,
                StrSink::to_vec(&mut err),
            )
        };
        if st != STATUS_OK || out.this.is_null() {
            return Err(status_err(&self.meta.name, "create", st, &err));
        }
        // SAFETY: a valid owned OS object from this library.
        Ok(unsafe { import_os(out, self.origin.clone()) })
    }
}

unsafe extern "C" fn absent_drop(_: *mut std::ffi::c_void) {}
unsafe extern "C" fn absent_json(_: *const std::ffi::c_void, _: StrSink, _: StrSink) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn absent_process(
    _: *const std::ffi::c_void,
    _: u32,
    _: *mut ProcObj,
    _: StrSink,
) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn absent_mem(_: *const std::ffi::c_void, _: *mut MemObj, _: StrSink) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn absent_phys(
    _: *const std::ffi::c_void,
    _: *mut PhysTargetObj,
    _: StrSink,
    _: StrSink,
) -> i32 {
    STATUS_NONE
}

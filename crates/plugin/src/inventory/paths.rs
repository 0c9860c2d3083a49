//! Where plugins are searched, and which directories and files are safe to read. **Key
//! decision: only absolute, non-world-writable locations count**: a relative entry would
//! make the plugins depend on the current directory, and a world-writable directory or
//! file lets anyone plant code.

use std::path::{Path, PathBuf};

use crate::analyzer::MAX_FILE_SIZE;
use crate::error::{Error, Result};

/// The environment variable listing extra plugin directories.
pub const PATH_VAR: &str = "MEMLENS_PLUGIN_PATH";

/// The file extension of shared libraries on this host.
pub const LIB_EXT: &str = std::env::consts::DLL_EXTENSION;

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
pub(crate) fn world_writable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o002 != 0
}
#[cfg(not(unix))]
pub(crate) fn world_writable(_: &std::fs::Metadata) -> bool {
    false
}

/// Reads a file for analysis, refusing world-writable files and oversized ones.
pub(super) fn read_checked(path: &Path) -> Result<Vec<u8>> {
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

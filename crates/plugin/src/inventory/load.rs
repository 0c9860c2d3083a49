//! Loading a plugin file. **Key decision: what is loaded is re-checked, not trusted from
//! the scan**: the open file is re-analysed, the path must still name the same inode, and
//! the descriptor header is checked again in memory before any of its functions is called.

use std::sync::Arc;

use crate::abi::import::Origin;
use crate::abi::*;
use crate::analyzer::{analyze_bytes, check_header, MAX_FILE_SIZE};
use crate::error::{Error, Result};

use super::paths::world_writable;
use super::PluginEntry;

/// Opens the library of `e`, re-analyses the exact file being loaded, loads it and checks
/// the descriptor in memory. Returns the origin and the descriptor's address.
pub(super) fn load(e: &PluginEntry) -> Result<(Arc<Origin>, *const PluginHeader)> {
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

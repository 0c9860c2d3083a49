//! Opening targets. For now a target is a path to a memory image; connector chains
//! (`-c`/`-o`) and format detection plug in here, so commands never change.

use std::path::Path;
use std::sync::Arc;

use memlens::core::{PhysicalTarget, TargetInfo};

use crate::exit::CliError;

/// Opens the file at `path` as a physical target.
pub fn open_path(path: &Path) -> Result<PhysicalTarget, CliError> {
    let f = memlens::file::RawFile::open(path).map_err(|e| {
        let hint = match &e {
            memlens::file::FileError::Open { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Some("run as a user who can read the file (dumps written by QEMU are mode 0400, owned by root)")
            }
            memlens::file::FileError::Open { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Some("check the path; `memlens info FILE` accepts raw images")
            }
            _ => None,
        };
        match hint {
            Some(h) => CliError::target_hint(e, h),
            None => CliError::target(e),
        }
    })?;
    let info = TargetInfo {
        connector: "file".into(),
        format: "raw".into(),
        version: None,
        vmcoreinfo: None,
        details: vec![("path".into(), path.display().to_string())],
    };
    Ok(PhysicalTarget::from_memory(Arc::new(f), info))
}

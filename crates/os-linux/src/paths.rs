//! File paths from kernel objects: `struct file` → `f_path` → dentry chain and mount
//! chain, as `d_path` does. **Key decision: walk to the mount's root, then cross to the
//! parent mount at its mountpoint**, every loop bounded; a broken link gives an error,
//! a path deeper than the bound is cut with a warning.
//!
//! Bounds: at most [`MAX_DEPTH`] components and mount crossings, names of at most 255
//! bytes; pointer-plus-offset sums wrap (a wild pointer fails its read, not the sum).

use crate::error::{LinuxError, Result};
use crate::kernel::Kernel;

/// Deepest path walked (components plus mount crossings): `PATH_MAX` (4096) allows
/// about 2000 one-letter components, real paths have a few dozen.
pub const MAX_DEPTH: usize = 256;

/// Name of a dentry (`d_name`).
fn dentry_name(k: &Kernel, d: u64) -> Result<String> {
    let o = &k.off;
    let q = d.wrapping_add(o.dentry_name);
    let len = k.u32(q.wrapping_add(o.qstr_len))? as usize;
    let p = k
        .ptr(q.wrapping_add(o.qstr_name), "qstr.name")?
        .ok_or(LinuxError::BadObject {
            what: "dentry",
            va: d,
            why: "NULL name".into(),
        })?;
    k.chars(p, len.min(255))
}

/// Full path of `struct file` at `file`.
pub fn file_path(k: &Kernel, file: u64) -> Result<String> {
    let o = &k.off;
    let path = file.wrapping_add(o.file_path);
    let mnt = k.ptr(path.wrapping_add(o.path_mnt), "path.mnt")?;
    let dentry = k
        .ptr(path.wrapping_add(o.path_dentry), "path.dentry")?
        .ok_or(LinuxError::BadObject {
            what: "file",
            va: file,
            why: "NULL dentry".into(),
        })?;
    path_of(k, mnt, dentry)
}

/// Path of `dentry` under vfsmount `mnt`.
pub fn path_of(k: &Kernel, mnt: Option<u64>, mut dentry: u64) -> Result<String> {
    let o = &k.off;
    // struct mount embeds struct vfsmount at `mount_mnt`.
    let mut mount = match (mnt, o.mount_mnt) {
        (Some(m), Some(off)) => Some(m.wrapping_sub(off)),
        _ => None,
    };
    let mut parts: Vec<String> = Vec::new();
    for _ in 0..MAX_DEPTH {
        let root = match (mount, o.mount_mnt, o.vfsmount_root) {
            (Some(m), Some(mo), Some(ro)) => {
                k.ptr(m.wrapping_add(mo).wrapping_add(ro), "vfsmount.mnt_root")?
            }
            _ => None,
        };
        let parent = k
            .ptr(dentry.wrapping_add(o.dentry_parent), "dentry.d_parent")?
            .unwrap_or(dentry);
        if Some(dentry) == root || parent == dentry {
            // At the root of this mount: cross to the parent mount, if any.
            let (Some(m), Some(po), Some(mpo)) = (mount, o.mount_parent, o.mount_mountpoint) else {
                break;
            };
            let Some(pm) = k.ptr(m.wrapping_add(po), "mount.mnt_parent")? else {
                break;
            };
            if pm == m {
                break;
            }
            let Some(mp) = k.ptr(m.wrapping_add(mpo), "mount.mnt_mountpoint")? else {
                break;
            };
            dentry = mp;
            mount = Some(pm);
            continue;
        }
        parts.push(dentry_name(k, dentry)?);
        dentry = parent;
    }
    if parts.len() >= MAX_DEPTH {
        log::warn!("path deeper than {MAX_DEPTH} components; cut");
    }
    parts.reverse();
    Ok(format!("/{}", parts.join("/")))
}

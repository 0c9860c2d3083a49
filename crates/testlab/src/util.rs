//! Small helpers: running external commands with useful errors, file locks, the lab folder.
//!
//! Locks are `flock(2)` locks on files under `<lab>/locks/`: they are released by the kernel
//! when the holder dies, so a crashed test never leaves a stale lock behind (a lock *file*
//! that merely exists would).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::error::{Error, Result};

/// The lab's root folder: `$MEMLENS_LAB_DIR`, else `<workspace>/target/testlab`.
pub fn lab_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEMLENS_LAB_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("testlab");
    }
    // crates/testlab -> workspace root
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().and_then(Path::parent).unwrap_or(manifest);
    root.join("target").join("testlab")
}

/// Renders a command line for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a command to completion, capturing output; non-zero exit is an error with its stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let line = show(cmd);
    log::debug!("run: {line}");
    let out = cmd.output().map_err(|e| Error::Command {
        command: line.clone(),
        detail: format!("cannot start: {e}"),
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            command: line,
            detail: format!("{}; stderr: {}", out.status, tail(&out.stderr, 15)),
        });
    }
    Ok(out)
}

/// Runs a command and returns its stdout as text.
pub fn run_stdout(cmd: &mut Command) -> Result<String> {
    Ok(String::from_utf8_lossy(&run(cmd)?.stdout).into_owned())
}

/// Runs a shell pipeline (`sh -c`), for the few places where a pipe is the simplest tool.
pub fn run_sh(script: &str, cwd: &Path) -> Result<Output> {
    run(Command::new("sh").arg("-c").arg(script).current_dir(cwd))
}

/// Whether an executable is found on `PATH` (or is an existing absolute path).
pub fn have_program(name: &str) -> bool {
    if name.contains('/') {
        return Path::new(name).is_file();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .any(|d| d.join(name).is_file())
}

/// Creates a folder and its parents.
pub fn mkdirs(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(Error::io("create folder", path))
}

/// Writes a file atomically (temporary file + rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    {
        let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        f.write_all(data).map_err(Error::io("write", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(Error::io("rename into place", path))
}

/// Removes a file or folder tree if present.
pub fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(Error::io("remove folder", path)),
        Ok(_) => fs::remove_file(path).map_err(Error::io("remove", path)),
    }
}

/// An exclusive `flock` held until drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the named lock under `<lab>/locks/` is ours.
    pub fn acquire(name: &str) -> Result<FileLock> {
        let lock = Self::open(name)?;
        // SAFETY: flock on a valid, owned file descriptor; no memory is involved.
        let rc = unsafe { libc::flock(lock.file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(Error::Io {
                action: "lock",
                path: lock.path,
                source: std::io::Error::last_os_error(),
            });
        }
        log::trace!("locked {}", lock.path.display());
        Ok(lock)
    }

    /// Takes the named lock if it is free right now.
    pub fn try_acquire(name: &str) -> Result<Option<FileLock>> {
        let lock = Self::open(name)?;
        // SAFETY: flock on a valid, owned file descriptor; no memory is involved.
        let rc = unsafe { libc::flock(lock.file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(lock));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(Error::Io {
                action: "lock",
                path: lock.path,
                source: err,
            })
        }
    }

    fn open(name: &str) -> Result<FileLock> {
        let dir = lab_dir().join("locks");
        mkdirs(&dir)?;
        let path = dir.join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open lock file", &path))?;
        Ok(FileLock { file, path })
    }
}

/// Holds one of the machine-wide "heavy job" slots (QEMU boots, dumps): at most
/// `$MEMLENS_LAB_JOBS` (default 2) run at once across all processes.
pub fn job_slot() -> Result<FileLock> {
    let slots: usize = std::env::var("MEMLENS_LAB_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2);
    loop {
        for i in 0..slots {
            if let Some(l) = FileLock::try_acquire(&format!("job-slot-{i}"))? {
                return Ok(l);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Last `n` lines of a text file (empty if unreadable).
pub fn file_tail(path: &Path, n: usize) -> String {
    fs::read(path).map(|b| tail(&b, n)).unwrap_or_default()
}

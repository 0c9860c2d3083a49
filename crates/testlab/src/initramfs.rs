//! The guest's initramfs: busybox, the marker program, `/init`, the kernel modules.
//!
//! Key decision: the `newc` cpio archive is written by this module, not by `cpio`/`busybox
//! cpio` from a staging folder. That needs no root for `/dev/console` (a device node in the
//! archive, not on the host), gives fixed owners and timestamps, and one initramfs per
//! (architecture, kernel, assets) is shared by every scenario of that architecture.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::provision::Kernel;
use crate::spec::Arch;
use crate::util::{self, FileLock};

/// Source of the marker program.
pub const MARKER_C: &str = include_str!("../assets/marker.c");
/// The guest's `/init`.
pub const INIT_SH: &str = include_str!("../assets/init.sh");
/// The busybox-script marker (`/bin/lab-sleeper`).
pub const SLEEPER_SH: &str = include_str!("../assets/lab-sleeper.sh");

/// FNV-1a, 64 bit: a stable hash for cache keys (std's hasher may change between releases).
pub fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Hash of the embedded guest assets, as recorded in `truth.json`.
pub fn assets_hash() -> String {
    format!(
        "{:016x}",
        fnv64(&[
            MARKER_C.as_bytes(),
            INIT_SH.as_bytes(),
            SLEEPER_SH.as_bytes()
        ])
    )
}

/// Minimal writer for the cpio `newc` format (the one the kernel unpacks).
#[derive(Debug, Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// Appends one entry; `mode` includes the file type bits.
    pub fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            data.len() as u32,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// A directory.
    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100000 | perm, data, (0, 0));
    }

    /// A character device.
    pub fn chardev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, &[], (major, minor));
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        while self.buf.len() % 512 != 0 {
            self.buf.push(0);
        }
        self.buf
    }
}

/// A built initramfs.
#[derive(Debug, Clone)]
pub struct Initramfs {
    /// The gzip-compressed cpio archive.
    pub path: PathBuf,
    /// The statically linked marker binary inside it.
    pub marker_binary: PathBuf,
}

fn compiler(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "gcc",
        Arch::Aarch64 => "aarch64-linux-gnu-gcc",
    }
}

/// Builds (or reuses) the initramfs for a kernel. Cached under
/// `<lab>/initramfs/<arch>-<release>-<assets hash>/`.
pub fn ensure_initramfs(kernel: &Kernel, busybox: &Path) -> Result<Initramfs> {
    let key = format!(
        "{}-{}-{}",
        kernel.arch.debian(),
        kernel.release,
        assets_hash()
    );
    let dir = util::lab_dir().join("initramfs").join(&key);
    let out = Initramfs {
        path: dir.join("initrd.gz"),
        marker_binary: dir.join("memlens-marker"),
    };
    let _lock = FileLock::acquire(&format!("initramfs-{key}"))?;
    if dir.join("complete").is_file() && out.path.is_file() {
        return Ok(out);
    }
    util::remove_any(&dir)?;
    util::mkdirs(&dir)?;
    let src = dir.join("marker.c");
    fs::write(&src, MARKER_C).map_err(Error::io("write", &src))?;
    util::run(
        Command::new(compiler(kernel.arch))
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&out.marker_binary)
            .arg(&src),
    )?;
    let read = |p: &Path| fs::read(p).map_err(Error::io("read", p));
    let mut c = Cpio::default();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "lib",
        "lib/modules",
        "lib/modules/testlab",
    ] {
        c.dir(d);
    }
    c.chardev("dev/console", 5, 1);
    c.chardev("dev/null", 1, 3);
    c.file("init", 0o755, INIT_SH.as_bytes());
    c.file("bin/busybox", 0o755, &read(busybox)?);
    c.file("bin/memlens-marker", 0o755, &read(&out.marker_binary)?);
    c.file("bin/lab-sleeper", 0o755, SLEEPER_SH.as_bytes());
    for m in &kernel.modules {
        let name = m
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        c.file(&format!("lib/modules/testlab/{name}"), 0o644, &read(m)?);
    }
    let cpio = c.finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&cpio)
        .map_err(Error::io("compress", &out.path))?;
    let data = gz.finish().map_err(Error::io("compress", &out.path))?;
    util::write_atomic(&out.path, &data)?;
    util::write_atomic(&dir.join("complete"), key.as_bytes())?;
    log::info!(
        "initramfs {} ({} KiB)",
        out.path.display(),
        data.len() / 1024
    );
    Ok(out)
}

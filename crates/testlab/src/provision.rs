//! Host provisioning: Debian packages, the Debian kernel, the uncompressed `vmlinux`.
//!
//! Key decision: the kernel ABI is *resolved*, never hard-coded (`apt-cache depends
//! linux-image-<arch>`), then pinned in `<lab>/kernel/<arch>/current` so that later runs work
//! offline and every scenario of one lab uses the same kernel. Only the files the lab needs
//! are extracted from the `.deb` (`dpkg-deb --fsys-tarfile | tar -x --wildcards`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::spec::Arch;
use crate::util::{self, FileLock};

/// Kernel modules loaded with `insmod` in every guest (none has dependencies).
/// `qemu_fw_cfg` also makes `-device vmcoreinfo` work (VMCOREINFO in the dumps).
pub const MODULES: &[&str] = &["qemu_fw_cfg", "dummy", "crc-itu-t"];

/// Module file paths inside the kernel package, as `tar` wildcards (a `*` after `.ko`
/// also matches compressed modules).
const MODULE_GLOBS: &[&str] = &[
    "*/qemu_fw_cfg.ko*",
    "*/drivers/net/dummy.ko*",
    "*/lib/crc-itu-t.ko*",
];

/// Something the host must have, and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
struct Need {
    /// A program name on PATH or an absolute file path.
    probe: &'static str,
    package: &'static str,
    /// The probe must be a statically linked ELF (busybox in the initramfs).
    must_be_static: bool,
}

const fn need(probe: &'static str, package: &'static str) -> Need {
    Need {
        probe,
        package,
        must_be_static: false,
    }
}

fn needs(arch: Arch) -> Vec<Need> {
    let mut v = vec![
        need("dpkg-deb", "dpkg"),
        need("xz", "xz-utils"),
        need("makedumpfile", "makedumpfile"),
        // Newer kernels compress the bzImage payload and modules with zstd.
        need("zstd", "zstd"),
        need(arch.qemu_binary(), arch.qemu_package()),
    ];
    match arch {
        Arch::X86_64 => {
            v.push(Need {
                probe: "/bin/busybox",
                package: "busybox-static",
                must_be_static: true,
            });
            v.push(need("gcc", "gcc"));
            v.push(need("/usr/lib/x86_64-linux-gnu/libc.a", "libc6-dev"));
        }
        Arch::Aarch64 => {
            v.push(need("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"));
            v.push(need(
                "/usr/aarch64-linux-gnu/lib/libc.a",
                "libc6-dev-arm64-cross",
            ));
        }
    }
    v
}

fn satisfied(n: &Need) -> bool {
    if !util::have_program(n.probe) {
        return false;
    }
    if n.must_be_static {
        return crate::dumps::is_static_elf(Path::new(n.probe)).unwrap_or(false);
    }
    true
}

fn install_command(pkgs: &[&str]) -> String {
    format!(
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends {}",
        pkgs.join(" ")
    )
}

/// `Ok` when `missing` can be installed here (as root); otherwise the error that names
/// the packages and the command that installs them.
fn can_install(missing: &[&str], root: bool) -> Result<()> {
    if root {
        return Ok(());
    }
    Err(Error::MissingPackage {
        package: missing.join(" "),
        why: "not running as root, cannot apt-get install".into(),
        command: install_command(missing),
    })
}

/// Installs (with `apt-get`) whatever the given architecture's scenarios need and the host
/// lacks. Idempotent and quick when everything is present.
pub fn ensure_packages(arch: Arch) -> Result<()> {
    let missing: Vec<&'static str> = needs(arch)
        .iter()
        .filter(|n| !satisfied(n))
        .map(|n| n.package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let _lock = FileLock::acquire("apt")?;
    // Someone else may have installed them while we waited.
    let missing: Vec<&'static str> = needs(arch)
        .iter()
        .filter(|n| !satisfied(n))
        .map(|n| n.package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    log::info!("installing host packages: {}", missing.join(" "));
    // SAFETY: geteuid has no preconditions and cannot fail.
    can_install(&missing, unsafe { libc::geteuid() } == 0)?;
    let install = |pkgs: &[&str]| {
        util::run(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "--no-install-recommends"])
                .args(pkgs),
        )
    };
    if install(&missing).is_err() {
        log::info!("apt-get install failed; running apt-get update and retrying");
        let _ = util::run(Command::new("apt-get").arg("update"));
        if let Err(e) = install(&missing) {
            return Err(Error::MissingPackage {
                package: missing.join(" "),
                why: format!("apt-get failed: {e}"),
                command: install_command(&missing),
            });
        }
    }
    if let Some(n) = needs(arch).iter().find(|n| !satisfied(n)) {
        return Err(Error::MissingPackage {
            package: n.package.into(),
            why: format!(
                "`{}` still missing (or not static) after installing",
                n.probe
            ),
            command: install_command(&[n.package]),
        });
    }
    Ok(())
}

/// A provisioned Debian kernel: files extracted from `linux-image-<abi>-<arch>-unsigned`.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Guest architecture.
    pub arch: Arch,
    /// Kernel release, e.g. `6.1.0-56-amd64` (what `uname -r` prints in the guest).
    pub release: String,
    /// Folder holding the files below.
    pub dir: PathBuf,
    /// The boot image as shipped (`/boot/vmlinuz-*`: bzImage on amd64, Image on arm64).
    pub vmlinuz: PathBuf,
    /// `/boot/config-*`.
    pub config: PathBuf,
    /// Uncompressed ELF `vmlinux` cut out of the bzImage (amd64 only).
    pub vmlinux: Option<PathBuf>,
    /// The `.ko` files of [`MODULES`], uncompressed.
    pub modules: Vec<PathBuf>,
    /// The downloaded `.deb`.
    pub deb: PathBuf,
}

/// apt options that give an architecture other than the host's its own private state, so
/// that e.g. arm64 packages can be looked up and downloaded on amd64 without `dpkg
/// --add-architecture`.
fn apt_opts(arch: Arch, root: &Path) -> Result<Vec<String>> {
    if arch.debian() == host_debian_arch() {
        return Ok(Vec::new());
    }
    let state = root.join("apt-state");
    util::mkdirs(&state.join("lists/partial"))?;
    util::mkdirs(&state.join("cache/archives/partial"))?;
    let a = arch.debian();
    Ok(vec![
        format!("-oDir::State::Lists={}", state.join("lists").display()),
        format!("-oDir::Cache={}", state.join("cache").display()),
        format!("-oAPT::Architecture={a}"),
        format!("-oAPT::Architectures::={a}"),
        "-oDir::State::status=/dev/null".into(),
    ])
}

fn host_debian_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

fn apt(tool: &str, opts: &[String]) -> Command {
    let mut c = Command::new(tool);
    c.args(opts)
        .arg("-oAPT::Sandbox::User=root")
        .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// The meta package naming the current kernel of a series: `linux-image-<arch>` (the
/// distribution default) or `linux-image-<series>-<arch>` (e.g. `linux-image-6.12-amd64`).
fn meta_package(arch: Arch, series: Option<&str>) -> String {
    match series {
        Some(s) => format!("linux-image-{s}-{}", arch.debian()),
        None => format!("linux-image-{}", arch.debian()),
    }
}

/// Asks apt which ABI package the meta package of `series` currently depends on.
fn resolve_image_package(arch: Arch, series: Option<&str>, opts: &[String]) -> Result<String> {
    let meta = meta_package(arch, series);
    let lookup = || -> Option<String> {
        let out = util::run_stdout(apt("apt-cache", opts).args(["depends", &meta])).ok()?;
        out.lines()
            .filter_map(|l| l.trim().strip_prefix("Depends:"))
            .map(str::trim)
            .find(|p| p.starts_with("linux-image-") && p.ends_with(arch.debian()))
            .map(str::to_string)
    };
    if let Some(p) = lookup() {
        return Ok(p);
    }
    log::info!("apt-cache does not know {meta}; running apt-get update");
    util::run(apt("apt-get", opts).arg("update")).map_err(|e| Error::Unsupported {
        detail: format!("cannot update the apt lists to find the Debian kernel ({e}); run `apt-get update` (network access to the Debian mirror is needed once)"),
    })?;
    lookup().ok_or_else(|| Error::Unsupported {
        detail: format!(
            "`apt-cache depends {meta}` names no linux-image-<abi>-{} package",
            arch.debian()
        ),
    })
}

/// Makes sure the default kernel for `arch` is downloaded and extracted; returns its files.
pub fn ensure_kernel(arch: Arch) -> Result<Kernel> {
    ensure_kernel_series(arch, None)
}

/// Like [`ensure_kernel`] for a kernel series other than the default (`Some("6.12")`);
/// each series has its own folder `kernel/<arch>-<series>/` and its own pin.
pub fn ensure_kernel_series(arch: Arch, series: Option<&str>) -> Result<Kernel> {
    let folder = match series {
        Some(s) => format!("{}-{s}", arch.debian()),
        None => arch.debian().to_string(),
    };
    let root = util::lab_dir().join("kernel").join(&folder);
    util::mkdirs(&root)?;
    let _lock = FileLock::acquire(&format!("kernel-{folder}"))?;
    let current = root.join("current");
    if let Ok(release) = fs::read_to_string(&current) {
        let release = release.trim().to_string();
        if let Some(k) = load_kernel(arch, &root, &release) {
            return Ok(k);
        }
    }
    let opts = apt_opts(arch, &root)?;
    let image = resolve_image_package(arch, series, &opts)?;
    let release = image.trim_start_matches("linux-image-").to_string();
    let unsigned = format!("{image}-unsigned");
    log::info!("kernel for {}: {unsigned}", arch.debian());
    let dir = root.join(&release);
    util::remove_any(&dir)?;
    let debs = root.join("debs");
    util::mkdirs(&debs)?;
    let deb = match find_deb(&debs, &unsigned) {
        Some(d) => d,
        None => {
            util::run(
                apt("apt-get", &opts)
                    .args(["download", &unsigned])
                    .current_dir(&debs),
            )?;
            find_deb(&debs, &unsigned).ok_or_else(|| Error::Unsupported {
                detail: format!(
                    "apt-get download {unsigned} produced no .deb in {}",
                    debs.display()
                ),
            })?
        }
    };
    let x = dir.join("extract");
    util::mkdirs(&x)?;
    let mut script = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards './boot/vmlinuz-*' './boot/config-*'",
        deb.display(),
        x.display()
    );
    for g in MODULE_GLOBS {
        script.push_str(&format!(" '{g}'"));
    }
    util::run_sh(&script, &dir)?;
    let boot = x.join("boot");
    fs::rename(boot.join(format!("vmlinuz-{release}")), dir.join("vmlinuz"))
        .map_err(Error::io("move vmlinuz", &boot))?;
    fs::rename(boot.join(format!("config-{release}")), dir.join("config"))
        .map_err(Error::io("move config", &boot))?;
    let mods = dir.join("modules");
    util::mkdirs(&mods)?;
    for m in MODULES {
        let found = find_file(&x, &|n: &str| {
            n == format!("{m}.ko") || n.starts_with(&format!("{m}.ko."))
        })
        .ok_or_else(|| Error::Unsupported {
            detail: format!("module {m}.ko not in {}", deb.display()),
        })?;
        let out = mods.join(format!("{m}.ko"));
        let name = found
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".xz") {
            let data = util::run(Command::new("xz").arg("-dc").arg(&found))?.stdout;
            fs::write(&out, data).map_err(Error::io("write", &out))?;
        } else if name.ends_with(".zst") {
            let data = util::run(Command::new("zstd").arg("-dc").arg(&found))?.stdout;
            fs::write(&out, data).map_err(Error::io("write", &out))?;
        } else {
            fs::rename(&found, &out).map_err(Error::io("move module", &found))?;
        }
    }
    util::remove_any(&x)?;
    if arch == Arch::X86_64 {
        extract_vmlinux(&dir.join("vmlinuz"), &dir.join("vmlinux"))?;
    }
    util::write_atomic(&dir.join("complete"), release.as_bytes())?;
    util::write_atomic(&current, release.as_bytes())?;
    load_kernel(arch, &root, &release).ok_or_else(|| Error::Unsupported {
        detail: format!(
            "kernel folder {} incomplete after extraction",
            dir.display()
        ),
    })
}

fn load_kernel(arch: Arch, root: &Path, release: &str) -> Option<Kernel> {
    let dir = root.join(release);
    if !dir.join("complete").is_file() {
        return None;
    }
    let unsigned = format!("linux-image-{release}-unsigned");
    let k = Kernel {
        arch,
        release: release.to_string(),
        vmlinuz: dir.join("vmlinuz"),
        config: dir.join("config"),
        vmlinux: (arch == Arch::X86_64).then(|| dir.join("vmlinux")),
        modules: MODULES
            .iter()
            .map(|m| dir.join("modules").join(format!("{m}.ko")))
            .collect(),
        deb: find_deb(&root.join("debs"), &unsigned)?,
        dir,
    };
    let all_there = k.vmlinuz.is_file()
        && k.config.is_file()
        && k.vmlinux.iter().all(|p| p.is_file())
        && k.modules.iter().all(|m| m.is_file());
    all_there.then_some(k)
}

fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
}

fn find_file(dir: &Path, pred: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    for e in fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, pred) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| pred(&n.to_string_lossy())) {
            return Some(p);
        }
    }
    None
}

/// The compressed payload of a bzImage, from its boot-protocol header: protected-mode code
/// starts at `(setup_sects + 1) * 512`, the payload at `payload_offset` (0x248) from there,
/// `payload_length` (0x24c) bytes long. The kernel build appends the uncompressed size
/// (4 bytes) to the compressed stream; it is part of the payload.
fn bzimage_payload<'a>(data: &'a [u8], path: &Path) -> Result<&'a [u8]> {
    let bad = |detail: String| Error::Format {
        what: "bzImage",
        path: path.into(),
        detail,
    };
    let u32_at = |o: usize| {
        data.get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    if data.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err(bad("no `HdrS` boot-protocol header at 0x202".into()));
    }
    let setup_sects = match data.get(0x1f1) {
        Some(0) => 4,
        Some(n) => usize::from(*n),
        None => return Err(bad("truncated header".into())),
    };
    let (Some(off), Some(len)) = (u32_at(0x248), u32_at(0x24c)) else {
        return Err(bad("truncated header".into()));
    };
    let start = (setup_sects + 1) * 512 + off as usize;
    data.get(start..start + len as usize).ok_or_else(|| {
        bad(format!(
            "payload [{start:#x}, +{len:#x}) outside the file ({:#x} bytes)",
            data.len()
        ))
    })
}

/// Decompresses the payload of a bzImage (xz or zstd, whichever the kernel was built
/// with; the payload's magic says) into an ELF `vmlinux`.
pub fn extract_vmlinux(bzimage: &Path, out: &Path) -> Result<()> {
    const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
    const ZSTD_MAGIC: &[u8] = b"\x28\xb5\x2f\xfd";
    let data = fs::read(bzimage).map_err(Error::io("read", bzimage))?;
    let payload = bzimage_payload(&data, bzimage)?;
    let (tool, args, stream): (&str, &[&str], &[u8]) = if payload.starts_with(XZ_MAGIC) {
        ("xz", &["-dc", "--single-stream"], payload)
    } else if payload.starts_with(ZSTD_MAGIC) {
        // zstd has no --single-stream: leave out the appended size.
        let n = payload.len().saturating_sub(4);
        ("zstd", &["-dc"], &payload[..n])
    } else {
        return Err(Error::Format {
            what: "bzImage",
            path: bzimage.into(),
            detail: format!(
                "payload is neither xz nor zstd (starts with {:02x?})",
                &payload[..payload.len().min(6)]
            ),
        });
    };
    let command = format!("{tool} {}", args.join(" "));
    let outf = fs::File::create(out).map_err(Error::io("create", out))?;
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(outf)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    let mut stdin = child.stdin.take().ok_or_else(|| Error::Command {
        command: command.clone(),
        detail: "no stdin pipe".into(),
    })?;
    let stream = stream.to_vec();
    let writer = std::thread::spawn(move || {
        // xz stops reading after the stream; a broken pipe here is expected and harmless.
        let _ = stdin.write_all(&stream);
    });
    let res = child.wait_with_output().map_err(|e| Error::Command {
        command: command.clone(),
        detail: e.to_string(),
    })?;
    let _ = writer.join();
    if !res.status.success() {
        return Err(Error::Command {
            command: format!("{command} (payload of {})", bzimage.display()),
            detail: String::from_utf8_lossy(&res.stderr).into_owned(),
        });
    }
    let head = fs::read(out).map_err(Error::io("read", out))?;
    if !head.starts_with(b"\x7fELF") {
        return Err(Error::Format {
            what: "vmlinux",
            path: out.into(),
            detail: "decompressed payload is not an ELF file".into(),
        });
    }
    Ok(())
}

/// Path of a statically linked busybox for the guest architecture. On the host
/// architecture that is `/bin/busybox` from `busybox-static`; for another architecture the
/// `busybox-static` package of that architecture is downloaded with a private apt state and
/// its `./bin/busybox` extracted.
pub fn ensure_busybox(arch: Arch) -> Result<PathBuf> {
    if arch.debian() == host_debian_arch() {
        return Ok(PathBuf::from("/bin/busybox"));
    }
    let root = util::lab_dir().join("kernel").join(arch.debian());
    util::mkdirs(&root)?;
    let out = root.join("busybox");
    let _lock = FileLock::acquire(&format!("busybox-{}", arch.debian()))?;
    if out.is_file() {
        return Ok(out);
    }
    let opts = apt_opts(arch, &root)?;
    let debs = root.join("debs");
    util::mkdirs(&debs)?;
    let download = || {
        util::run(
            apt("apt-get", &opts)
                .args(["download", "busybox-static"])
                .current_dir(&debs),
        )
    };
    if find_deb(&debs, "busybox-static").is_none() && download().is_err() {
        util::run(apt("apt-get", &opts).arg("update"))?;
        download()?;
    }
    let deb = find_deb(&debs, "busybox-static").ok_or_else(|| Error::Unsupported {
        detail: format!(
            "busybox-static ({}) .deb not found after download",
            arch.debian()
        ),
    })?;
    let x = root.join("busybox-extract");
    util::remove_any(&x)?;
    util::mkdirs(&x)?;
    util::run_sh(
        &format!(
            "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' ./bin/busybox",
            deb.display(),
            x.display()
        ),
        &root,
    )?;
    fs::rename(x.join("bin/busybox"), &out).map_err(Error::io("move busybox", &x))?;
    util::remove_any(&x)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_architecture_needs_its_qemu_and_the_dump_tools() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let pkgs: Vec<&str> = needs(arch).iter().map(|n| n.package).collect();
            for p in [arch.qemu_package(), "makedumpfile", "zstd", "dpkg"] {
                assert!(pkgs.contains(&p), "{arch:?} lacks {p}: {pkgs:?}");
            }
        }
    }

    #[test]
    fn a_missing_package_without_root_names_it_and_the_install_command() {
        assert!(can_install(&["qemu-system-x86"], true).is_ok());
        let e = can_install(&["qemu-system-x86", "makedumpfile"], false).unwrap_err();
        assert!(matches!(e, Error::MissingPackage { .. }), "{e}");
        let text = e.to_string();
        for needle in [
            "qemu-system-x86 makedumpfile",
            "not running as root",
            "apt-get install -y --no-install-recommends qemu-system-x86 makedumpfile",
        ] {
            assert!(text.contains(needle), "{needle:?} not in: {text}");
        }
    }
}

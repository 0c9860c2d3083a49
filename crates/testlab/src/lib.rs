//! memlens' real-target test lab: boots real Debian Linux kernels under QEMU (TCG), records
//! ground truth from inside the guest and from QEMU's monitor, and writes dumps of the
//! stopped guest in every format memlens reads.
//!
//! Key decision: **tests consume finished, cached scenarios through one call**
//! ([`scenario`]); building is lazy, idempotent and serialized with file locks, so any
//! number of test binaries and threads may ask for the same scenario and only the first
//! builds it. A missing prerequisite is an error that says how to set up — a test that
//! uses the lab never passes silently without it ([`require`]).
//!
//! ```no_run
//! let s = testlab::require("x86_64-kaslr");
//! let heap = s.truth.guest.marker.strings.first().unwrap();
//! let raw = std::fs::read(&s.raw).unwrap();
//! let pa = heap.pa.unwrap() as usize;
//! assert_eq!(&raw[pa..pa + heap.text.len()], heap.text.as_bytes());
//! ```
//!
//! Files live under `<workspace>/target/testlab/` (or `$MEMLENS_LAB_DIR`):
//! `kernel/<arch>/` (the `.deb`, vmlinuz, vmlinux, modules; `kernel/<arch>-<series>/` for a
//! scenario with another kernel series), `initramfs/`, and
//! `scenarios/<name>/` (dumps, console log, `truth.json`). See the crate README.

pub mod dumps;
pub mod error;
pub mod initramfs;
pub mod provision;
pub mod qemu;
pub mod qmp;
pub mod recipe;
pub mod spec;
pub mod truth;
pub mod util;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{Error, Result};
pub use qmp::{DumpFormat, Qmp};
pub use spec::{Arch, ScenarioSpec, SCENARIOS};
pub use truth::{same_task_name, GuestTruth, MarkerKind, MarkerString, Truth};

use recipe::files;

/// Names of all scenarios, in build order.
pub fn scenarios() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// Looks a scenario recipe up, or fails with the list of known names.
pub fn spec(name: &str) -> Result<&'static ScenarioSpec> {
    spec::find(name).ok_or_else(|| Error::UnknownScenario {
        name: name.into(),
        known: scenarios().join(", "),
    })
}

/// A finished scenario: dumps of one stopped guest, its kernel and its ground truth.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The recipe.
    pub spec: &'static ScenarioSpec,
    /// The scenario folder.
    pub dir: PathBuf,
    /// Raw physical image: file offset = guest-physical address; RAM ranges only, holes
    /// (and all-zero pages) sparse. Length = end of the highest RAM range.
    pub raw: PathBuf,
    /// ELF core (`dump-guest-memory`, format elf, paging=false), mode 0400.
    pub elf: PathBuf,
    /// makedumpfile flattened dump (QEMU `kdump-zlib`), mode 0400.
    pub kdump_flat: PathBuf,
    /// Normal compressed kdump (`makedumpfile -R`).
    pub kdump: PathBuf,
    /// The kernel image booted (`/boot/vmlinuz-*`; bzImage on x86-64, Image on arm64).
    pub vmlinuz: PathBuf,
    /// Uncompressed kernel ELF with `.BTF` and `__ksymtab` (x86-64 only).
    pub vmlinux: Option<PathBuf>,
    /// The kernel's `/boot/config-*`.
    pub kernel_config: PathBuf,
    /// The initramfs booted.
    pub initrd: PathBuf,
    /// Serial console log of the recorded boot.
    pub console_log: PathBuf,
    /// `truth.json`.
    pub truth_path: PathBuf,
    /// The parsed ground truth.
    pub truth: Truth,
}

impl Scenario {
    fn at(spec: &'static ScenarioSpec, dir: &Path, truth: Truth) -> Scenario {
        let vmlinux = dir.join(files::VMLINUX);
        Scenario {
            spec,
            raw: dir.join(files::RAW),
            elf: dir.join(files::ELF),
            kdump_flat: dir.join(files::KDUMP_FLAT),
            kdump: dir.join(files::KDUMP),
            vmlinuz: dir.join(files::VMLINUZ),
            vmlinux: vmlinux.is_file().then_some(vmlinux),
            kernel_config: dir.join(files::CONFIG),
            initrd: dir.join(files::INITRD),
            console_log: dir.join(files::CONSOLE),
            truth_path: dir.join(files::TRUTH),
            dir: dir.to_path_buf(),
            truth,
        }
    }

    /// Loads a finished scenario from disk without building; `None` if it is missing,
    /// incomplete or stale (older truth format or different guest assets).
    pub fn load_cached(name: &str) -> Option<Scenario> {
        let spec = spec::find(name)?;
        let dir = recipe::scenario_dir(name);
        let data = std::fs::read(dir.join(files::TRUTH)).ok()?;
        let truth: Truth = serde_json::from_slice(&data).ok()?;
        if truth.format != truth::TRUTH_FORMAT || truth.assets_hash != initramfs::assets_hash() {
            return None;
        }
        let s = Scenario::at(spec, &dir, truth);
        let complete = [
            &s.raw,
            &s.elf,
            &s.kdump_flat,
            &s.kdump,
            &s.vmlinuz,
            &s.console_log,
        ]
        .iter()
        .all(|p| p.is_file())
            && (spec.arch != Arch::X86_64 || s.vmlinux.is_some());
        complete.then_some(s)
    }
}

/// Returns the named scenario, building it first if it is not cached (first build of an
/// x86-64 scenario: ~1 min incl. the kernel download; later ones reuse kernel and
/// initramfs). Safe to call from many threads and processes at once.
pub fn scenario(name: &str) -> Result<Scenario> {
    let spec = spec(name)?;
    if let Some(s) = Scenario::load_cached(name) {
        return Ok(s);
    }
    let _lock = util::FileLock::acquire(&format!("scenario-{name}"))?;
    if let Some(s) = Scenario::load_cached(name) {
        return Ok(s);
    }
    build(spec)
}

/// Rebuilds a scenario even if cached.
pub fn rebuild(name: &str) -> Result<Scenario> {
    let spec = spec(name)?;
    let _lock = util::FileLock::acquire(&format!("scenario-{name}"))?;
    build(spec)
}

fn build(spec: &'static ScenarioSpec) -> Result<Scenario> {
    let prep = recipe::prepare(spec)?;
    let _slot = util::job_slot()?;
    let truth = recipe::build(spec, &prep)?;
    Ok(Scenario::at(spec, &recipe::scenario_dir(spec.name), truth))
}

/// The command that sets the lab up, for messages.
pub fn setup_hint(name: &str) -> String {
    format!(
        "set up the test lab with `cargo run -p testlab -- build {name}` (or `build all`); it needs root or the \
         packages qemu-system-x86 busybox-static makedumpfile gcc libc6-dev xz-utils, and access to the Debian \
         mirror once for the kernel package"
    )
}

/// Like [`scenario`], for tests: panics with the reason and the set-up command when the
/// scenario cannot be had — a test that needs the lab must fail, never silently pass.
#[track_caller]
pub fn require(name: &str) -> Scenario {
    match scenario(name) {
        Ok(s) => s,
        Err(e) => panic!(
            "testlab scenario `{name}` is not available: {e}\n{}",
            setup_hint(name)
        ),
    }
}

/// A guest that keeps running; QEMU is killed when this is dropped (also on panic), and
/// also if the test process dies (parent-death signal).
#[derive(Debug)]
pub struct LiveGuest {
    qemu: qemu::QemuProcess,
    /// The recipe.
    pub spec: &'static ScenarioSpec,
    /// In-guest truth of *this* boot (its own KASLR offsets, pids, addresses).
    pub guest: GuestTruth,
    /// Kernel image booted.
    pub vmlinuz: PathBuf,
    /// Uncompressed kernel ELF (x86-64 only).
    pub vmlinux: Option<PathBuf>,
    /// Folder with the console log and QEMU's stderr.
    pub dir: PathBuf,
}

impl LiveGuest {
    /// QEMU's process id (its guest RAM is an anonymous mapping in `/proc/<pid>/maps`).
    pub fn pid(&self) -> u32 {
        self.qemu.pid()
    }
    /// QMP Unix socket (one client at a time: drop a [`Qmp`] before connecting another).
    pub fn qmp_socket(&self) -> &Path {
        &self.qemu.qmp_socket
    }
    /// The `-name` given to QEMU.
    pub fn name(&self) -> &str {
        &self.qemu.name
    }
    /// Serial console log (still growing).
    pub fn console_log(&self) -> &Path {
        &self.qemu.console_log
    }
    /// The QEMU command line.
    pub fn command(&self) -> &[String] {
        &self.qemu.command
    }
    /// Connects a QMP client.
    pub fn qmp(&self) -> Result<Qmp> {
        Qmp::connect(&self.qemu.qmp_socket, Duration::from_secs(10))
    }
    /// Stops the guest with the marker's page tables loaded on some vCPU (retrying
    /// stop/cont); returns that vCPU, or `None` if it was not caught. The guest stays
    /// stopped; `cont` it through [`LiveGuest::qmp`].
    pub fn stop_on_marker(&self) -> Result<Option<u32>> {
        let mut q = self.qmp()?;
        Ok(recipe::stop_on_marker(&mut q, &self.guest, self.spec.smp, 40)?.0)
    }
    /// Whether QEMU is still running.
    pub fn check_alive(&mut self) -> Result<()> {
        self.qemu.check_alive()
    }
    /// Kills QEMU now (also done on drop).
    pub fn kill(&mut self) {
        self.qemu.kill();
    }
}

impl Drop for LiveGuest {
    /// Kills QEMU; removes the boot's folder (console log) unless the thread is panicking,
    /// so a failed test leaves its console log behind for diagnosis.
    fn drop(&mut self) {
        self.qemu.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Boots a scenario's guest and leaves it running (the marker spins, the sleeper sleeps).
/// Returns once the guest printed its in-guest truth.
pub fn boot_live(name: &str) -> Result<LiveGuest> {
    boot_live_with_timeout(name, qemu::boot_timeout(spec(name)?.arch))
}

/// [`boot_live`] with an explicit boot timeout: a guest that has not printed its truth by
/// then is killed and the error ([`Error::BootTimeout`]) carries the console tail.
pub fn boot_live_with_timeout(name: &str, timeout: Duration) -> Result<LiveGuest> {
    let spec = spec(name)?;
    let prep = recipe::prepare(spec)?;
    let dir =
        util::lab_dir()
            .join("live")
            .join(format!("{name}-{}-{}", std::process::id(), unique()));
    let (qemu, console) = {
        let _slot = util::job_slot()?;
        let mut q = qemu::launch(spec, &prep.kernel, &prep.initrd, &dir)?;
        let console = q.wait_for_console(truth::READY_LINE, timeout)?;
        (q, console)
    };
    let guest = truth::parse_guest_truth(&console)?;
    Ok(LiveGuest {
        qemu,
        spec,
        guest,
        vmlinuz: prep.kernel.vmlinuz,
        vmlinux: prep.kernel.vmlinux,
        dir,
    })
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Like [`boot_live`], for tests: panics with the reason and the set-up command.
#[track_caller]
pub fn require_live(name: &str) -> LiveGuest {
    match boot_live(name) {
        Ok(g) => g,
        Err(e) => panic!(
            "testlab cannot boot `{name}` live: {e}\n{}",
            setup_hint(name)
        ),
    }
}

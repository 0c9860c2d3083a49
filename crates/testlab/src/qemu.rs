//! Starting QEMU and making sure it never outlives the test that started it.
//!
//! Key decision: three independent guards. [`QemuProcess`] kills QEMU on drop (covers
//! normal returns and test panics, which unwind); QEMU is spawned with
//! `PR_SET_PDEATHSIG(SIGKILL)` so the kernel kills it when we die without unwinding (abort,
//! SIGKILL, `process::exit`); and because the death signal fires when the *thread* that
//! forked exits, every QEMU is forked from one long-lived spawner thread rather than from the
//! (short-lived) test thread — a guest stored in a `static` therefore stays alive across
//! tests.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::initramfs::Initramfs;
use crate::provision::Kernel;
use crate::spec::{Arch, ScenarioSpec};
use crate::util;

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("testlab-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map(drop)
            .unwrap_or_else(|e| log::error!("cannot start the spawner thread: {e}"));
        Mutex::new(tx)
    })
}

/// Spawns a command that receives SIGKILL when this process dies.
pub fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
    // functions (prctl, getppid, _exit); it touches no allocator or lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    let sent = spawner()
        .lock()
        .map_err(|_| std::io::Error::other("spawner lock poisoned"))?
        .send((cmd, tx));
    if sent.is_err() {
        return Err(std::io::Error::other("spawner thread is gone"));
    }
    rx.recv()
        .map_err(|_| std::io::Error::other("spawner thread did not answer"))?
}

/// A running QEMU; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct QemuProcess {
    child: Child,
    /// Scenario name.
    pub scenario: String,
    /// `-name` value (`memlens-lab-<scenario>-<host pid>-<n>`).
    pub name: String,
    /// QMP Unix socket.
    pub qmp_socket: PathBuf,
    /// Serial console log (written by QEMU as the guest prints).
    pub console_log: PathBuf,
    /// QEMU's stderr.
    pub stderr_log: PathBuf,
    /// The full command line.
    pub command: Vec<String>,
}

impl QemuProcess {
    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills QEMU now (idempotent).
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.qmp_socket);
    }

    /// Whether QEMU is still running; `Err` with the console tail if it exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status.to_string())),
            Err(e) => Err(self.exited(format!("wait failed: {e}"))),
        }
    }

    fn exited(&self, status: String) -> Error {
        Error::QemuExited {
            scenario: self.scenario.clone(),
            status,
            console_tail: util::file_tail(&self.console_log, 30),
            stderr_tail: util::file_tail(&self.stderr_log, 15),
        }
    }

    /// Waits until the console shows `line`; on timeout QEMU is killed and the error holds
    /// the console tail.
    pub fn wait_for_console(&mut self, line: &str, timeout: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            let text = std::fs::read(&self.console_log)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if text.lines().any(|l| l.trim_end_matches('\r') == line) {
                return Ok(text);
            }
            self.check_alive()?;
            if start.elapsed() > timeout {
                self.kill();
                return Err(Error::BootTimeout {
                    scenario: self.scenario.clone(),
                    qemu_pid: self.pid(),
                    what: format!("did not print `{line}`"),
                    timeout_s: timeout.as_secs(),
                    console_tail: util::file_tail(&self.console_log, 30),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Boot timeout: `$MEMLENS_LAB_BOOT_TIMEOUT` seconds, else a default per architecture.
pub fn boot_timeout(arch: Arch) -> Duration {
    let default = match arch {
        Arch::X86_64 => 240,
        Arch::Aarch64 => 480,
    };
    let s = std::env::var("MEMLENS_LAB_BOOT_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(s)
}

/// The QEMU arguments (without the program) for a scenario.
pub fn qemu_args(
    spec: &ScenarioSpec,
    kernel: &Kernel,
    initrd: &Initramfs,
    name: &str,
    qmp: &Path,
    console: &Path,
) -> Vec<String> {
    let mut a: Vec<String> = vec!["-name".into(), name.into(), "-accel".into(), "tcg".into()];
    if let Some(m) = spec.machine {
        a.extend(["-M".into(), m.into()]);
    }
    if let Some(c) = spec.cpu {
        a.extend(["-cpu".into(), c.into()]);
    }
    a.extend([
        "-m".into(),
        format!("{}M", spec.memory_mib),
        "-smp".into(),
        spec.smp.to_string(),
    ]);
    a.extend(
        [
            "-display",
            "none",
            "-monitor",
            "none",
            "-nic",
            "none",
            "-no-reboot",
            "-device",
            "vmcoreinfo",
        ]
        .map(String::from),
    );
    a.extend(["-serial".into(), format!("file:{}", console.display())]);
    a.extend([
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", qmp.display()),
    ]);
    a.extend(["-kernel".into(), kernel.vmlinuz.display().to_string()]);
    a.extend(["-initrd".into(), initrd.path.display().to_string()]);
    let console_dev = match spec.arch {
        Arch::X86_64 => "ttyS0",
        Arch::Aarch64 => "ttyAMA0",
    };
    let mut append = format!("console={console_dev} panic=-1 quiet loglevel=1");
    if !spec.extra_append.is_empty() {
        append.push(' ');
        append.push_str(spec.extra_append);
    }
    a.extend(["-append".into(), append]);
    a
}

/// Starts QEMU for a scenario, with its console log and stderr in `dir`.
pub fn launch(
    spec: &ScenarioSpec,
    kernel: &Kernel,
    initrd: &Initramfs,
    dir: &Path,
) -> Result<QemuProcess> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("memlens-lab-{}-{}-{n}", spec.name, std::process::id());
    // Unix socket paths are limited to 108 bytes: keep the socket in the temp folder.
    let qmp_socket = std::env::temp_dir().join(format!("{name}.qmp"));
    let _ = std::fs::remove_file(&qmp_socket);
    util::mkdirs(dir)?;
    let console_log = dir.join("console.log");
    let stderr_log = dir.join("qemu.stderr");
    let _ = std::fs::remove_file(&console_log);
    let args = qemu_args(spec, kernel, initrd, &name, &qmp_socket, &console_log);
    let stderr = File::create(&stderr_log).map_err(Error::io("create", &stderr_log))?;
    let mut cmd = Command::new(spec.arch.qemu_binary());
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let command: Vec<String> = std::iter::once(spec.arch.qemu_binary().to_string())
        .chain(args)
        .collect();
    log::info!("booting {}: {}", spec.name, command.join(" "));
    let child = spawn_tied(cmd).map_err(|e| Error::Command {
        command: command.join(" "),
        detail: format!("cannot start: {e}"),
    })?;
    Ok(QemuProcess {
        child,
        scenario: spec.name.into(),
        name,
        qmp_socket,
        console_log,
        stderr_log,
        command,
    })
}

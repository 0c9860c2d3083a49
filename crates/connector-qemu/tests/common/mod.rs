//! Helpers: the native OS as input, and bare QEMU processes (firmware only, no guest OS)
//! for layout tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlens_core::Os;
use memlens_os_native::{NativeOptions, NativeOs};

pub fn native(allow_write: bool) -> Arc<dyn Os> {
    Arc::new(NativeOs::open(NativeOptions { allow_write }).expect("native OS"))
}

/// A QEMU running only its firmware (SeaBIOS finds no boot device and waits); killed on
/// drop.
pub struct BareQemu {
    pub child: Child,
    pub name: String,
    pub qmp: PathBuf,
}

impl BareQemu {
    /// `qemu-system-x86_64 -name NAME -M machine -m ram [+ QMP socket] [extra args]`.
    pub fn start(machine: &str, ram: &str, with_qmp: bool, extra: &[&str]) -> BareQemu {
        Self::start_bin("qemu-system-x86_64", machine, ram, with_qmp, extra)
    }

    /// Like [`BareQemu::start`] with another emulator binary.
    pub fn start_bin(
        bin: &str,
        machine: &str,
        ram: &str,
        with_qmp: bool,
        extra: &[&str],
    ) -> BareQemu {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "memlens-qemu-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let qmp = std::env::temp_dir().join(format!("{name}.qmp"));
        let _ = std::fs::remove_file(&qmp);
        let mut cmd = Command::new(bin);
        cmd.args(["-name", &name, "-accel", "tcg", "-M", machine, "-m", ram]);
        cmd.args(["-display", "none", "-monitor", "none", "-serial", "none"]);
        cmd.args(["-nic", "none", "-no-reboot"]);
        // `with_qmp = false`: no QMP socket at all on the command line.
        if with_qmp {
            cmd.arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", qmp.display()));
        }
        cmd.args(extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {bin} ({e}); install it: apt-get install qemu-system-x86 qemu-system-arm")
        });
        let q = BareQemu { child, name, qmp };
        // Wait for the RAM mapping (and the socket) to appear.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            let maps =
                std::fs::read_to_string(format!("/proc/{}/maps", q.child.id())).unwrap_or_default();
            let ready = maps.lines().count() > 50 && (!with_qmp || q.qmp.exists());
            if ready {
                std::thread::sleep(Duration::from_millis(300));
                return q;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("QEMU {} did not come up", q.name)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BareQemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.qmp);
    }
}

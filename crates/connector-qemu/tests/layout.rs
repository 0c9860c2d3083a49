//! The connector against real QEMU processes running only their firmware: the RAM block is
//! found, the guest-physical layout (with and without QMP) puts every address where QEMU
//! itself does — checked with QMP `pmemsave`, a dump of the same stopped guest.

mod common;

use common::{native, BareQemu};
use memlens_connector_qemu::{QemuArgs, QemuConnector, QmpSocket};
use memlens_core::{MemoryViewExt, MemoryWriteExt, PhysAddr};
use serde_json::json;

const GIB: u64 = 1 << 30;

fn args(s: &str) -> QemuArgs {
    QemuArgs::parse(s).unwrap()
}

/// Bytes QEMU itself holds at guest-physical `addr` (`pmemsave`).
fn pmemsave(q: &QmpSocket, addr: u64, len: usize) -> Vec<u8> {
    let f = tempfile_path();
    q.execute(
        "pmemsave",
        Some(json!({"val": addr, "size": len, "filename": f.display().to_string()})),
    )
    .expect("pmemsave");
    let data = std::fs::read(&f).expect("pmemsave output");
    let _ = std::fs::remove_file(&f);
    data
}

fn tempfile_path() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "memlens-pmemsave-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes a distinct pattern through the connector at each address, then checks that QEMU
/// sees it at the same guest-physical address, and that reads agree with `pmemsave`.
fn check_layout(machine: &str, ram: &str, probes: &[u64]) {
    let vm = BareQemu::start(machine, ram, true, &[]);
    let qmp = QmpSocket::new(&vm.qmp);
    for mode in ["pause", "no-qmp"] {
        if mode == "no-qmp" {
            qmp.execute("stop", None).unwrap();
        }
        let a = format!("name={},writable,{mode}", vm.name);
        let c = QemuConnector::open(native(true), &args(&a)).unwrap();
        let layout = c
            .details()
            .iter()
            .find(|(k, _)| k == "layout")
            .map(|(_, v)| v.clone())
            .unwrap();
        if mode == "pause" {
            assert!(layout.contains("mtree"), "{layout}");
            assert!(!qmp.running().unwrap(), "paused while open");
        } else {
            assert!(layout.contains("machine type"), "{layout}");
        }
        let mem = c.memory();
        for (i, &pa) in probes.iter().enumerate() {
            let pattern = format!("memlens-probe-{mode}-{i}-{pa:#x}");
            mem.write_all_at(PhysAddr(pa), pattern.as_bytes()).unwrap();
            assert_eq!(
                pmemsave(&qmp, pa, pattern.len()),
                pattern.as_bytes(),
                "{machine} {ram} {mode}: QEMU sees our write at {pa:#x}"
            );
            assert_eq!(
                mem.read_vec(PhysAddr(pa), pattern.len()).unwrap(),
                pattern.as_bytes()
            );
        }
        // The firmware's shadow copy (0xf0000) reads the same through both paths.
        assert_eq!(
            mem.read_vec(PhysAddr(0xf_0000), 0x1_0000).unwrap(),
            pmemsave(&qmp, 0xf_0000, 0x1_0000)
        );
        // The VGA hole is not RAM.
        assert!(mem.read_u64(PhysAddr(0xa_0000)).is_err());
        drop((mem, c));
        if mode == "pause" {
            assert!(
                qmp.running().unwrap(),
                "resumed when the connector is dropped"
            );
        }
    }
    // Both layouts are the same map.
    let with = QemuConnector::open(native(false), &args(&vm.name)).unwrap();
    let without =
        QemuConnector::open(native(false), &args(&format!("{},no-qmp", vm.name))).unwrap();
    assert_eq!(with.map(), without.map(), "{machine} {ram}");
}

#[test]
fn pc_4g_ram_above_4g_is_where_qemu_puts_it() {
    // Below 3 GiB at offset = address; [4 GiB, 5 GiB) at offset 3 GiB.
    check_layout(
        "pc",
        "4G",
        &[0x1000, 3 * GIB - 64, 4 * GIB, 4 * GIB + GIB - 64],
    );
    // And reading across the 3 GiB end of low RAM is partial.
    let vm = BareQemu::start("pc", "4G", false, &[]);
    let c = QemuConnector::open(native(false), &args(&vm.name)).unwrap();
    let e = c.memory().read_vec(PhysAddr(3 * GIB - 8), 16).unwrap_err();
    assert!(matches!(e, memlens_core::Error::Partial { .. }), "{e}");
}

#[test]
fn q35_3g_splits_at_2g() {
    check_layout("q35", "3G", &[2 * GIB - 64, 4 * GIB, 4 * GIB + GIB - 64]);
}

#[test]
fn pc_256m_single_low_range() {
    check_layout("pc", "size=256M", &[0x10_0000, 256 * (1 << 20) - 64]);
}

#[test]
fn no_qmp_socket_on_the_command_line() {
    let vm = BareQemu::start("pc", "4096", false, &[]);
    let os = native(false);
    let listed = memlens_connector_qemu::list_targets(os.as_ref()).unwrap();
    let t = listed.iter().find(|t| t.pid == vm.pid()).expect("listed");
    assert_eq!(t.cmdline.name.as_deref(), Some(vm.name.as_str()));
    assert_eq!(t.cmdline.ram_size, 4 * GIB);
    assert_eq!(t.cmdline.qmp_socket, None);
    let c = QemuConnector::open(os, &args(&vm.pid().to_string())).unwrap();
    assert_eq!(c.map().entries().len(), 3);
    // The RAM block is the 4 GiB anonymous mapping, not the TCG code buffer.
    let m = c.ram_mapping();
    assert_eq!(m.end.0 - m.start.0, 4 * GIB);
    assert_eq!(m.perms.to_string(), "rw-p");
    // SeaBIOS has run: its shadow copy holds its name.
    let bios = c.memory().read_vec(PhysAddr(0xf_0000), 0x1_0000).unwrap();
    assert!(bios.windows(7).any(|w| w == b"SeaBIOS"));
    // Without QMP: no registers, no pause, and the errors say why.
    assert!(c.physical_target().cpu.is_none());
    let e = c.pause().unwrap_err().to_string();
    assert!(e.contains("no QMP socket") && e.contains("pause"), "{e}");
    // Writes were not asked for.
    assert!(c.physical_target().writer.is_none());
}

#[test]
fn memfd_backend_is_mapped_directly() {
    let vm = BareQemu::start(
        "pc,memory-backend=mem0",
        "256M",
        true,
        &["-object", "memory-backend-memfd,id=mem0,size=256M,share=on"],
    );
    let qmp = QmpSocket::new(&vm.qmp);
    let c = QemuConnector::open(native(true), &args(&format!("{},writable", vm.name))).unwrap();
    assert!(c.memory().is_direct(), "{:?}", c.details());
    c.memory()
        .write_all_at(PhysAddr(0x20_0000), b"direct-write")
        .unwrap();
    assert_eq!(pmemsave(&qmp, 0x20_0000, 12), b"direct-write");
    // The same guest through the process view agrees.
    let v = QemuConnector::open(native(false), &args(&format!("{},no-direct", vm.name))).unwrap();
    assert!(!v.memory().is_direct());
    assert_eq!(
        v.memory().read_vec(PhysAddr(0x20_0000), 12).unwrap(),
        b"direct-write"
    );
}

#[test]
fn unreadable_qmp_socket_is_named() {
    let vm = BareQemu::start("pc", "256M", true, &[]);
    let e = QemuConnector::open(
        native(false),
        &args(&format!("{},qmp=/nonexistent/memlens.sock", vm.name)),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("/nonexistent/memlens.sock") && e.contains("cannot connect"),
        "{e}"
    );
}

/// A QMP socket found on QEMU's command line that cannot be connected to is an error
/// naming it and the way out (`no-qmp`), not a silent fallback without registers.
#[test]
fn dead_qmp_socket_from_the_command_line_is_an_error() {
    let vm = BareQemu::start("pc", "256M", true, &[]);
    // QEMU keeps listening on the unlinked inode; the path no longer leads there.
    std::fs::remove_file(&vm.qmp).expect("remove the QMP socket");
    let e = QemuConnector::open(native(false), &args(&vm.name))
        .unwrap_err()
        .to_string();
    let sock = vm.qmp.display().to_string();
    assert!(e.contains(&sock) && e.contains("cannot connect"), "{e}");
    assert!(e.contains("command line") && e.contains("no-qmp"), "{e}");
    // The opt-out works, in both spellings.
    let c = QemuConnector::open(native(false), &args(&format!("{},no-qmp", vm.name))).unwrap();
    assert!(c.physical_target().cpu.is_none());
    let layout = c.details().iter().find(|(k, _)| k == "layout").unwrap();
    assert!(layout.1.contains("machine type"), "{layout:?}");
    use memlens_connector_qemu::QemuPlugin;
    use memlens_plugin::{Args, ConnectorPlugin};
    let spec = QemuPlugin::args();
    let a = Args::parse("qemu", &spec, Some(&vm.name), "no_qmp").unwrap();
    assert!(QemuPlugin::create(&a, Some(native(false))).is_ok());
    let a = Args::parse("qemu", &spec, Some(&vm.name), "").unwrap();
    let e = QemuPlugin::create(&a, Some(native(false)))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&sock) && e.contains("no_qmp"), "{e}");
}

#[test]
fn several_guests_with_one_name_are_listed_not_guessed() {
    let a = BareQemu::start("pc", "128M", false, &[]);
    // A second QEMU with the same -name.
    let b = BareQemu::start("pc", "128M", false, &["-name", &a.name]);
    let e = QemuConnector::open(native(false), &args(&a.name))
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 QEMU guests match"), "{e}");
    assert!(
        e.contains(&a.pid().to_string()) && e.contains(&b.pid().to_string()),
        "{e}"
    );
}

#[test]
fn plugin_entry_point_opens_the_guest() {
    use memlens_connector_qemu::QemuPlugin;
    use memlens_plugin::{Args, ConnectorPlugin};
    let vm = BareQemu::start("pc", "128M", true, &[]);
    let spec = QemuPlugin::args();
    let a = Args::parse("qemu", &spec, Some(&vm.name), "no_qmp").unwrap();
    let t = QemuPlugin::create(&a, Some(native(false))).unwrap();
    assert_eq!(t.info.connector, "qemu");
    assert!(t.cpu.is_none(), "no_qmp: no registers");
    let bios = t.memory.read_vec(PhysAddr(0xf_0000), 0x1_0000).unwrap();
    assert!(bios.windows(7).any(|w| w == b"SeaBIOS"));
    let a = Args::parse("qemu", &spec, Some(&vm.name), "").unwrap();
    let t = QemuPlugin::create(&a, Some(native(false))).unwrap();
    assert_eq!(t.cpu.expect("registers through QMP").cpu_count(), 1);
    let e = QemuPlugin::create(&a, None).err().unwrap().to_string();
    assert!(e.contains("-o native"), "{e}");
}

#[test]
fn aarch64_virt_ram_at_1g() {
    let vm = BareQemu::start_bin(
        "qemu-system-aarch64",
        "virt",
        "256M",
        true,
        &["-cpu", "cortex-a57"],
    );
    let qmp = QmpSocket::new(&vm.qmp);
    let base = 0x4000_0000u64;
    for mode in ["pause", "no-qmp"] {
        if mode == "no-qmp" {
            qmp.execute("stop", None).unwrap();
        }
        let c = QemuConnector::open(native(true), &args(&format!("{},writable,{mode}", vm.name)))
            .unwrap();
        assert_eq!(c.map().entries().len(), 1);
        assert_eq!(c.map().entries()[0].base, PhysAddr(base));
        for pa in [base, base + (256 << 20) - 64] {
            let pattern = format!("arm64-{mode}-{pa:#x}");
            c.memory()
                .write_all_at(PhysAddr(pa), pattern.as_bytes())
                .unwrap();
            assert_eq!(pmemsave(&qmp, pa, pattern.len()), pattern.as_bytes());
        }
        // The flash below RAM is not part of the RAM block.
        assert!(c.memory().read_u64(PhysAddr(0)).is_err());
        if mode == "pause" {
            let regs = c.registers().unwrap();
            assert!(
                matches!(regs[0], memlens_core::CpuRegisters::Aarch64(_)),
                "{regs:?}"
            );
        }
    }
}

#[test]
fn qemu_without_the_expected_mapping_names_what_was_looked_for() {
    // The command line claims 512 MiB but the process has 256 MiB: an OS view of it (here
    // a wrapper that rewrites the listed command line) finds no mapping of that size.
    let vm = BareQemu::start("pc", "256M", false, &[]);
    let os = Arc::new(LyingOs(native(false), vm.pid()));
    let e = QemuConnector::open(os, &args(&vm.name))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no mapping holds the guest RAM"), "{e}");
    assert!(e.contains("0x20000000 bytes"), "{e}");
    assert!(e.contains("256 MiB"), "candidates are listed: {e}");
}

use std::sync::Arc;

/// An OS that reports `-m 512M` on the command line of process `.1`.
struct LyingOs(Arc<dyn memlens_core::Os>, u32);

impl memlens_core::Os for LyingOs {
    fn info(&self) -> memlens_core::OsInfo {
        self.0.info()
    }
    fn processes(&self) -> memlens_core::Result<Vec<memlens_core::ProcessInfo>> {
        let mut v = self.0.processes()?;
        for p in v.iter_mut().filter(|p| p.pid == self.1) {
            if let Some(c) = p.cmdline.as_mut() {
                for a in c.iter_mut().filter(|a| *a == "256M") {
                    *a = "512M".into();
                }
            }
        }
        Ok(v)
    }
    fn process(&self, pid: u32) -> memlens_core::Result<Arc<dyn memlens_core::Process>> {
        self.0.process(pid)
    }
    fn kernel_modules(&self) -> memlens_core::Result<Vec<memlens_core::ModuleInfo>> {
        self.0.kernel_modules()
    }
}

#[test]
fn qemu_exiting_gives_per_op_errors_not_a_crash() {
    let mut vm = BareQemu::start("pc", "128M", true, &[]);
    let c = QemuConnector::open(native(false), &args(&vm.name)).unwrap();
    let mem = c.memory();
    assert!(mem.read_u64(PhysAddr(0x1000)).is_ok());
    vm.child.kill().unwrap();
    vm.child.wait().unwrap();
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    let mut ops = [
        memlens_core::ReadOp::new(PhysAddr(0x1000), &mut a[..]),
        memlens_core::ReadOp::new(PhysAddr(0x2000), &mut b[..]),
    ];
    memlens_core::MemoryView::read_batch(mem.as_ref(), &mut ops);
    for op in &ops {
        let e = op.result.as_ref().unwrap_err().to_string();
        assert!(e.contains("guest-physical") && e.contains("exited"), "{e}");
    }
    // Registers now fail with the socket named, rather than hanging.
    let e = c.registers().unwrap_err().to_string();
    assert!(e.contains(&vm.qmp.display().to_string()), "{e}");
}

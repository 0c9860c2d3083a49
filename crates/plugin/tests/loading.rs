//! Real shared libraries built by the workspace (the `plugin-test-*` crates), found through
//! an inventory, analysed, loaded, read through, chained — and bad files rejected with
//! the file and the reason.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use memlens_core::{
    CpuRegisters, Error as CoreError, MemoryViewExt, MemoryWriteExt, PhysAddr, VirtAddr,
};
use memlens_plugin::inventory::EntryStatus;
use memlens_plugin::registry::ConnectorFactory;
use memlens_plugin::{listing, Builder, Error, Inventory, PluginKind};

fn inv(dir: &tempfile::TempDir) -> Inventory {
    Inventory::scan_paths(&[dir.path().to_path_buf()])
}

fn connect(inv: &Inventory, spec: &str) -> memlens_plugin::Result<memlens_core::PhysicalTarget> {
    let b = Builder::new().inventory(inv).build_cli(&["-c", spec])?;
    Ok(b.target().expect("a connector chain gives a target"))
}

#[test]
fn lists_without_loading_and_reads_through_the_abi() {
    let d = plugin_dir(&[TESTCONN, TESTOS]);
    let inv = inv(&d);
    let names: Vec<_> = inv
        .entries
        .iter()
        .map(|e| (e.kind, e.name.as_str(), e.status.clone()))
        .collect();
    assert_eq!(
        names,
        [
            (PluginKind::Connector, "testconn", EntryStatus::Ok),
            (PluginKind::Os, "testos", EntryStatus::Ok)
        ]
    );
    let e = inv.find(PluginKind::Connector, "testconn").unwrap();
    assert_eq!(e.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(e.description, "test connector over an in-memory buffer");
    assert_eq!(e.abi_version, memlens_plugin::abi::ABI_VERSION);

    let t = connect(&inv, "testconn:::").unwrap();
    let t2 = connect(&inv, "testconn::64KiB").unwrap();
    assert_eq!(t2.memory.metadata().max_addr, PhysAddr(64 * 1024 - 1));
    let md = t.memory.metadata();
    assert_eq!(md.max_addr, PhysAddr((1 << 20) - 1));
    assert!(md.readonly);
    assert_eq!(t.memory.ranges().len(), 1);
    assert_eq!(t.info.connector, "testconn");
    assert_eq!(
        t.info
            .vmcoreinfo
            .as_ref()
            .and_then(|v| v.get("OSRELEASE"))
            .map(String::as_str),
        Some("test")
    );
    // Registers cross as JSON.
    let cpu = t.cpu.as_ref().expect("testconn has a cpu");
    assert_eq!(cpu.cpu_count(), 1);
    match cpu.registers(0).unwrap() {
        CpuRegisters::X86(r) => assert_eq!(r.cr3, 0x1000),
        other => panic!("unexpected registers {other:?}"),
    }
    assert!(cpu
        .registers(5)
        .unwrap_err()
        .to_string()
        .contains("no vCPU 5"));

    // A batch of 256 8-byte reads, and a 4 KiB read, byte-exact against the pattern.
    let mut bufs = vec![[0u8; 8]; 256];
    let mut ops: Vec<memlens_core::ReadOp<'_, PhysAddr>> = bufs
        .iter_mut()
        .enumerate()
        .map(|(i, b)| memlens_core::ReadOp::new(PhysAddr(i as u64 * 4093), &mut b[..]))
        .collect();
    t.memory.read_batch(&mut ops);
    assert!(ops.iter().all(|o| o.result.is_ok()));
    drop(ops);
    for (i, b) in bufs.iter().enumerate() {
        let want: Vec<u8> = (0..8).map(|k| pattern(i as u64 * 4093 + k)).collect();
        assert_eq!(&b[..], &want[..], "op {i}");
    }
    let page = t.memory.read_vec(PhysAddr(0x3000), 4096).unwrap();
    assert!(page
        .iter()
        .enumerate()
        .all(|(k, &v)| v == pattern(0x3000 + k as u64)));

    // Errors keep their variant and context across the ABI.
    let mut buf = [0u8; 16];
    match t.memory.read_into(PhysAddr(1 << 30), &mut buf).unwrap_err() {
        CoreError::OutOfRange { addr, len, max } => {
            assert_eq!(
                (addr, len, max),
                (PhysAddr(1 << 30), 16, PhysAddr((1 << 20) - 1))
            );
        }
        e => panic!("wrong error {e:?}"),
    }
    match t
        .memory
        .read_into(PhysAddr((1 << 20) - 4), &mut buf)
        .unwrap_err()
    {
        CoreError::Partial { total, failed } => {
            assert_eq!(total, 16);
            assert_eq!((failed[0].offset, failed[0].len), (4, 12));
            assert!(matches!(*failed[0].cause, CoreError::OutOfRange { .. }));
        }
        e => panic!("wrong error {e:?}"),
    }
    assert_eq!(
        &buf[..4],
        &[0xffffc, 0xffffd, 0xffffe, 0xfffff].map(pattern)
    );
}

#[test]
fn writes_cross_the_abi() {
    let d = plugin_dir(&[TESTCONN]);
    let inv = inv(&d);
    let t = connect(&inv, "testconn::4k,writable").unwrap();
    let w = t.writer.as_ref().expect("writable target has a writer");
    w.write_all_at(PhysAddr(100), b"hello").unwrap();
    assert_eq!(t.memory.read_vec(PhysAddr(100), 5).unwrap(), b"hello");
    let e = w.write_all_at(PhysAddr(4094), b"xyz").unwrap_err();
    assert!(matches!(e, CoreError::OutOfRange { .. }), "{e:?}");
    let ro = connect(&inv, "testconn").unwrap();
    assert!(ro.writer.is_none());
}

#[test]
fn create_errors_and_panics_become_errors() {
    let d = plugin_dir(&[TESTCONN]);
    let inv = inv(&d);
    match connect(&inv, "testconn::fail=true").unwrap_err() {
        Error::Plugin { plugin, message } => {
            assert_eq!(plugin, "testconn");
            assert!(message.contains("failure was requested"), "{message}");
        }
        e => panic!("wrong error {e}"),
    }
    match connect(&inv, "testconn::panic=1").unwrap_err() {
        Error::Panic {
            plugin,
            during,
            message,
        } => {
            assert_eq!((plugin.as_str(), during.as_str()), ("testconn", "create"));
            assert!(message.contains("panic was requested"), "{message}");
        }
        e => panic!("wrong error {e}"),
    }
    // A panic inside read_batch fails every op of the batch; the host goes on.
    let t = connect(&inv, "testconn::1MiB,panic_read").unwrap();
    for _ in 0..3 {
        let e = t.memory.read_vec(PhysAddr(0), 8).unwrap_err().to_string();
        assert!(
            e.contains("panicked in read_batch") && e.contains("panic_read"),
            "{e}"
        );
    }
    // Argument errors come from the plugin's own declaration.
    let e = connect(&inv, "testconn::sise=4k").unwrap_err().to_string();
    assert!(
        e.contains("unknown argument 'sise'") && e.contains("valid keys: size"),
        "{e}"
    );
    // Without an input OS, testconn refuses a target (its target is a pid of that OS).
    let e = connect(&inv, "testconn:7").unwrap_err().to_string();
    assert!(e.contains("only meaningful with an input OS"), "{e}");
}

#[test]
fn missing_plugin_suggests_a_name() {
    let d = plugin_dir(&[TESTCONN, TESTOS]);
    let inv = inv(&d);
    let e = connect(&inv, "testcon").unwrap_err().to_string();
    assert!(e.contains("no connector plugin named 'testcon'"), "{e}");
    assert!(e.contains("did you mean 'testconn'"), "{e}");
    assert!(e.contains("available: testconn"), "{e}");
    let e = Builder::new()
        .inventory(&inv)
        .build_cli(&["-o", "linux"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("available: testos") && !e.contains("did you mean"),
        "{e}"
    );
}

/// A minimal ELF64 shared-object header for AArch64 (synthetic: header only).
fn aarch64_elf() -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little endian
    b[6] = 1; // EV_CURRENT
    b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    b[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    b[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    b
}

#[test]
fn bad_files_are_rejected_with_file_and_reason() {
    let d = plugin_dir(&[TESTBAD]);
    let good = std::fs::read(built().join(TESTCONN)).unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        set_mode(&p, 0o755);
    };
    put("truncated.so", &good[..good.len() / 3]);
    put("tiny.so", &good[..40]);
    put("empty.so", b"");
    let mut x = 0x1234_5678u64;
    let random: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    put("random.so", &random);
    put("aarch64.so", &aarch64_elf());
    put(
        "text.so",
        b"this is not a library at all, just some text in a file\n",
    );
    put("ignored.txt", b"not a .so: never looked at");

    let inv = inv(&d);
    let reason = |f: &str| -> String {
        inv.rejected
            .iter()
            .find(|r| r.path.file_name().unwrap() == f)
            .map(|r| r.reason.clone())
            .unwrap_or_else(|| panic!("{f} not rejected: {:#?}", inv))
    };
    assert!(
        reason("aarch64.so").contains("wrong architecture"),
        "{}",
        reason("aarch64.so")
    );
    assert!(reason("aarch64.so").contains("aarch64"));
    assert!(reason("tiny.so").contains("only 40 bytes"));
    assert!(reason("empty.so").contains("only 0 bytes"));
    assert!(
        reason("random.so").contains("not a shared library"),
        "{}",
        reason("random.so")
    );
    assert!(reason("text.so").contains("not a shared library"));
    // The truncated file is either unparseable or has its descriptor cut off.
    let trunc = inv
        .rejected
        .iter()
        .find(|r| r.path.ends_with("truncated.so"))
        .map(|r| r.reason.clone())
        .or_else(|| {
            inv.entries
                .iter()
                .find(|e| e.path.ends_with("truncated.so"))
                .and_then(|e| match &e.status {
                    EntryStatus::Rejected { reason } => Some(reason.clone()),
                    _ => None,
                })
        });
    assert!(trunc.is_some(), "truncated.so must be rejected: {inv:#?}");
    assert!(!inv.rejected.iter().any(|r| r.path.ends_with("ignored.txt")));

    // The bad-ABI library: four descriptors, each rejected for its own reason.
    let bad: Vec<(String, String)> = inv
        .entries
        .iter()
        .filter(|e| e.path.ends_with(TESTBAD))
        .map(|e| match &e.status {
            EntryStatus::Rejected { reason } => (e.name.clone(), reason.clone()),
            s => panic!("{} should be rejected, is {s:?}", e.name),
        })
        .collect();
    assert_eq!(bad.len(), 4, "{bad:?}");
    let r = |n: &str| bad.iter().find(|(name, _)| name == n).unwrap().1.clone();
    assert!(r("badabi").contains(&format!(
        "built for plugin ABI version {}, this host supports version {}",
        memlens_plugin::abi::ABI_VERSION + 1,
        memlens_plugin::abi::ABI_VERSION
    )));
    // A plugin built before OS descriptors had `targets` (a shorter descriptor): rejected
    // by version, before anything reads past its end.
    assert!(
        r("oldabi").contains(&format!(
            "built for plugin ABI version 1, this host supports version {}",
            memlens_plugin::abi::ABI_VERSION
        )),
        "{}",
        r("oldabi")
    );
    assert!(r("badfp").contains("layout fingerprint"), "{}", r("badfp"));
    assert!(r("badkind").contains("exported as os but its descriptor declares kind 1"));
    // Asking for them names the file and the reason; their functions (which abort the
    // process) are never called.
    let e = connect(&inv, "badabi").unwrap_err();
    match &e {
        Error::Rejected { path, reason } => {
            assert!(path.ends_with(TESTBAD));
            assert!(reason.contains("ABI version"));
        }
        e => panic!("wrong error {e}"),
    }
    assert!(e.to_string().contains(TESTBAD));
    let text = listing::list(None, &inv).to_text();
    for needle in [
        "aarch64.so",
        "random.so",
        "badfp",
        "rejected: built for plugin ABI",
    ] {
        assert!(text.contains(needle), "listing lacks {needle}:\n{text}");
    }
}

#[test]
fn world_writable_directories_and_files_are_skipped() {
    let open = plugin_dir(&[TESTCONN]);
    set_mode(open.path(), 0o777);
    let inv1 = inv(&open);
    assert!(inv1.entries.is_empty());
    assert!(
        inv1.warnings
            .iter()
            .any(|w| w.contains("world-writable plugin directory")
                && w.contains(&*open.path().to_string_lossy())),
        "{:?}",
        inv1.warnings
    );
    let d = plugin_dir(&[TESTCONN]);
    set_mode(&d.path().join(TESTCONN), 0o666);
    let inv2 = inv(&d);
    assert!(inv2.entries.is_empty());
    assert!(inv2.rejected[0]
        .reason
        .contains("world-writable plugin file"));
    assert!(inv2.warnings[0].contains(TESTCONN));
}

/// Rewrites the inline version of the `testconn` descriptor header inside a copy of the
/// library (the header is pointer-free, so this yields a valid plugin of another version).
fn with_version(dir: &std::path::Path, version: &str) -> PathBuf {
    let mut b = std::fs::read(built().join(TESTCONN)).unwrap();
    let name = *b"testconn\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let pos = b
        .windows(name.len())
        .position(|w| w == name)
        .expect("inline name in the file");
    let v = pos + 32;
    b[v..v + 32].fill(0);
    b[v..v + version.len()].copy_from_slice(version.as_bytes());
    std::fs::create_dir_all(dir).unwrap();
    set_mode(dir, 0o755);
    let p = dir.join(TESTCONN);
    std::fs::write(&p, b).unwrap();
    set_mode(&p, 0o755);
    p
}

#[test]
fn duplicates_highest_version_wins_then_path_order() {
    let root = tempfile::tempdir().unwrap();
    set_mode(root.path(), 0o755);
    let (a, b, c) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    with_version(&a, "0.9.0");
    let newest = with_version(&b, "0.10.0");
    let tie = with_version(&c, "0.10.0");
    let inv = Inventory::scan_paths(&[a.clone(), b.clone(), c.clone()]);
    let st: Vec<_> = inv
        .entries
        .iter()
        .map(|e| (e.version.clone(), e.status.clone()))
        .collect();
    assert_eq!(
        st,
        [
            ("0.9.0".into(), EntryStatus::Shadowed { by: newest.clone() }),
            ("0.10.0".into(), EntryStatus::Ok),
            (
                "0.10.0".into(),
                EntryStatus::Shadowed { by: newest.clone() }
            ),
        ]
    );
    let f = Builder::new()
        .inventory(&inv)
        .connector("testconn")
        .unwrap();
    assert_eq!(f.meta().version, "0.10.0");
    // Reversed order: the tie now goes to c.
    let inv = Inventory::scan_paths(&[c.clone(), b.clone(), a]);
    assert_eq!(
        inv.find(PluginKind::Connector, "testconn").unwrap().path,
        tie
    );
    // The patched library loads and works.
    let t = f
        .create(
            &memlens_plugin::PluginSpec::parse("testconn").unwrap(),
            None,
        )
        .unwrap();
    assert_eq!(t.memory.read_vec(PhysAddr(5), 1).unwrap(), [pattern(5)]);
}

#[test]
fn objects_keep_their_library_loaded() {
    let d = plugin_dir(&[TESTCONN]);
    let t = {
        let inv = inv(&d);
        let f = inv.load_connector("testconn").unwrap();
        f.create(
            &memlens_plugin::PluginSpec::parse("testconn::8k").unwrap(),
            None,
        )
        .unwrap()
        // inventory and factory dropped here
    };
    drop(d); // even the file is gone
    let m: Arc<dyn memlens_core::PhysicalMemory> = t.memory.clone();
    drop(t);
    assert_eq!(m.read_vec(PhysAddr(8191), 1).unwrap(), [pattern(8191)]);
}

/// Lays out a TESTOS01 table (see plugin-test-os) with `procs` = (pid, ppid, name, base,
/// size) at offset `at` of `img`.
fn put_table(img: &mut [u8], at: usize, procs: &[(u32, u32, &str, u64, u64)]) {
    img[at..at + 8].copy_from_slice(b"TESTOS01");
    img[at + 8..at + 12].copy_from_slice(&(procs.len() as u32).to_le_bytes());
    for (i, (pid, ppid, name, base, size)) in procs.iter().enumerate() {
        let e = at + 16 + i * 48;
        img[e..e + 4].copy_from_slice(&pid.to_le_bytes());
        img[e + 4..e + 8].copy_from_slice(&ppid.to_le_bytes());
        img[e + 8..e + 8 + name.len()].copy_from_slice(name.as_bytes());
        img[e + 24..e + 32].copy_from_slice(&base.to_le_bytes());
        img[e + 32..e + 40].copy_from_slice(&size.to_le_bytes());
    }
}

#[test]
fn chain_connector_os_connector_os_all_loaded_from_files() {
    let d = plugin_dir(&[TESTCONN, TESTOS]);
    let inv = inv(&d);
    // Outer machine: two processes; process 42's memory (phys 0x10000..0x20000) holds a
    // whole inner machine with its own table and one process whose memory holds a marker.
    let mut img = vec![0u8; 0x20000];
    put_table(
        &mut img,
        0,
        &[
            (1, 0, "init", 0x1000, 0x1000),
            (42, 1, "qemu", 0x10000, 0x10000),
        ],
    );
    let mut inner = vec![0u8; 0x10000];
    // Inside the process, "physical" address X is the process's virtual address X, and
    // the process's memory starts at 0x400000.
    put_table(&mut inner, 0, &[(7, 1, "victim", 0x40_8000, 0x100)]);
    inner[0x8000 + 0x10..0x8000 + 0x10 + 11].copy_from_slice(b"inner-magic");
    img[0x10000..].copy_from_slice(&inner);
    let file = d.path().join("image.bin");
    std::fs::write(&file, &img).unwrap();

    let file_arg = format!("testconn::file=\"{}\"", file.display());
    let b = Builder::new().inventory(&inv);
    let outer = b.build_cli(&["-c", &file_arg, "-o", "testos"]).unwrap();
    let os = outer.os().unwrap();
    let ps: Vec<_> = os
        .processes()
        .unwrap()
        .into_iter()
        .map(|p| (p.pid, p.name))
        .collect();
    assert_eq!(ps, [(1, "init".to_string()), (42, "qemu".to_string())]);
    assert_eq!(os.info().release.as_deref(), Some("1.0-test"));
    let p = os.process(42).unwrap();
    assert_eq!(p.info().name, "qemu");
    assert_eq!(p.maps().unwrap()[0].path.as_deref(), Some("[heap]"));
    assert_eq!(p.modules().unwrap()[0].path.as_deref(), Some("/bin/qemu"));
    assert!(p.module_details(&p.modules().unwrap()[0]).is_err());
    assert_eq!(
        p.memory().read_vec(VirtAddr(0x40_0000), 8).unwrap(),
        b"TESTOS01"
    );
    assert!(matches!(
        p.memory().read_vec(VirtAddr(0x1000), 8).unwrap_err(),
        CoreError::NotPresent { level: 1, .. }
    ));
    assert!(os
        .process(999)
        .err()
        .unwrap()
        .to_string()
        .contains("no process 999"));
    assert_eq!(os.physical().unwrap().info.connector, "testconn");

    // The whole chain: the connector reads process 42 of the first OS as its memory.
    let nested = b
        .build_cli(&[
            "-c",
            &file_arg,
            "-o",
            "testos",
            "-c",
            "testconn:42",
            "-o",
            "testos::table=0x400000",
        ])
        .unwrap();
    let os2 = nested.os().unwrap();
    let ps: Vec<_> = os2
        .processes()
        .unwrap()
        .into_iter()
        .map(|p| (p.pid, p.name))
        .collect();
    assert_eq!(ps, [(7, "victim".to_string())]);
    let v = os2.process(7).unwrap();
    assert_eq!(
        v.memory().read_vec(VirtAddr(0x40_0010), 11).unwrap(),
        b"inner-magic"
    );
    assert!(nested
        .target()
        .unwrap()
        .info
        .format
        .contains("process 42 of testos"));

    // Step errors name the plugin.
    let e = b.build_cli(&["-o", "testos"]).err().unwrap().to_string();
    assert!(e.contains("'testos' needs a physical target"), "{e}");
    let e = b
        .build_cli(&["-c", &file_arg, "-o", "testos::panic"])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("testos: panic was requested"), "{e}");
    let e = b
        .build_cli(&["-c", "testconn", "-o", "testos"])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no TESTOS01 table"), "{e}");
}

#[test]
fn middleware_wraps_loaded_connectors() {
    let d = plugin_dir(&[TESTCONN]);
    let inv = inv(&d);
    let b = Builder::new()
        .inventory(&inv)
        .build_cli(&["-c", "testconn::64k:cache,cache_page_size=4k,metrics"])
        .unwrap();
    let t = b.target().unwrap();
    for _ in 0..4 {
        assert_eq!(
            t.memory.read_vec(PhysAddr(10), 4).unwrap(),
            (10..14).map(pattern).collect::<Vec<_>>()
        );
    }
    assert_eq!(b.metrics.len(), 1);
    let snap = b.metrics[0].1.snapshot();
    let text = snap.to_string();
    assert!(!text.is_empty());
    assert_eq!(b.metrics[0].0, "testconn");
}

#[test]
fn zero_gaps_reads_past_the_end_as_zeros_only_when_asked() {
    let d = plugin_dir(&[TESTCONN]);
    let inv = inv(&d);
    let plain = Builder::new()
        .inventory(&inv)
        .build_cli(&["-c", "testconn::64k"])
        .unwrap();
    let e = plain
        .target()
        .unwrap()
        .memory
        .read_vec(PhysAddr(0xfffc), 8)
        .unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
    let zero = Builder::new()
        .inventory(&inv)
        .build_cli(&["-c", "testconn::64k:zero_gaps"])
        .unwrap();
    let got = zero
        .target()
        .unwrap()
        .memory
        .read_vec(PhysAddr(0xfffc), 8)
        .unwrap();
    let mut want: Vec<u8> = (0xfffc..0x10000).map(pattern).collect();
    want.extend([0; 4]);
    assert_eq!(got, want);
}

#[test]
fn listing_help_and_targets() {
    let d = plugin_dir(&[TESTCONN, TESTOS]);
    let inv = inv(&d);
    let l = listing::list(None, &inv);
    let json = serde_json::to_value(&l).unwrap();
    assert_eq!(json["plugins"][0]["name"], "testconn");
    assert_eq!(json["plugins"][0]["status"], "ok");
    assert_eq!(json["plugins"][1]["kind"], "os");
    let text = l.to_text();
    assert!(text.contains("testconn") && text.contains("testos") && text.contains(TESTCONN));
    let h = listing::help(None, &inv, "testconn").unwrap();
    for needle in [
        "testconn",
        "size",
        "default 1MiB",
        "panic_read",
        "middleware",
        "cache_size",
    ] {
        assert!(h.contains(needle), "help lacks {needle}:\n{h}");
    }
    let h = listing::help(None, &inv, "testos").unwrap();
    assert!(
        h.contains("table") && h.contains("required: a connector"),
        "{h}"
    );
    let e = listing::help(None, &inv, "testo").unwrap_err().to_string();
    assert!(e.contains("did you mean"), "{e}");
    let t = listing::targets(None, &inv, "testconn", "").unwrap();
    assert_eq!(t.targets[0].name, "(none)");
    assert!(t.to_text().contains("in-memory buffer"));
    let e = listing::targets(None, &inv, "testconn", "bogus=1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown argument 'bogus'"), "{e}");

    // OS plugins have a target list too: testos echoes its `table` argument, so the
    // arguments demonstrably crossed the ABI.
    let t = listing::targets(None, &inv, "testos", "table=0x2000").unwrap();
    assert_eq!(t.kind, memlens_plugin::PluginKind::Os);
    assert_eq!(t.targets.len(), 1, "{t:?}");
    assert_eq!(t.targets[0].name, "table=0x2000");
    let e = listing::targets(None, &inv, "testos", "nope=1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown argument 'nope'"), "{e}");
    let e = listing::targets(None, &inv, "testo", "")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no connector or OS plugin named 'testo'") && e.contains("did you mean"),
        "{e}"
    );
}

/// An OS plugin that keeps the default (empty) target list.
struct Quiet;

impl memlens_plugin::OsPlugin for Quiet {
    const NAME: &'static str = "quiet";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "lists no targets";
    fn args() -> memlens_plugin::ArgSpec {
        memlens_plugin::ArgSpec::new()
    }
    fn create(
        _: &memlens_plugin::Args,
        _: Option<memlens_core::PhysicalTarget>,
    ) -> Result<std::sync::Arc<dyn memlens_core::Os>, memlens_plugin::BoxError> {
        Err("not used".into())
    }
}

#[test]
fn os_plugins_without_targets_list_none() {
    let reg = memlens_plugin::StaticRegistry::new().with_os::<Quiet>();
    let t = listing::targets(Some(&reg), &Inventory::scan_paths(&[]), "quiet", "").unwrap();
    assert!(t.targets.is_empty());
    assert_eq!(
        t.to_text(),
        "quiet (os): no targets found (the plugin lists none now)\n"
    );
}

#[test]
fn many_threads_read_one_loaded_connector() {
    let d = plugin_dir(&[TESTCONN]);
    let inv = inv(&d);
    let t = connect(&inv, "testconn::4MiB").unwrap();
    std::thread::scope(|s| {
        for th in 0..4u64 {
            let m = t.memory.clone();
            s.spawn(move || {
                for round in 0..200u64 {
                    let n = 1 + ((th * 31 + round) % 300) as usize;
                    let mut bufs = vec![[0u8; 16]; n];
                    let addrs: Vec<u64> = (0..n as u64)
                        .map(|i| (th << 20) + (round * 997 + i * 131) % (1 << 20))
                        .collect();
                    let mut ops: Vec<memlens_core::ReadOp<'_, PhysAddr>> = bufs
                        .iter_mut()
                        .zip(&addrs)
                        .map(|(b, &a)| memlens_core::ReadOp::new(PhysAddr(a), &mut b[..]))
                        .collect();
                    m.read_batch(&mut ops);
                    assert!(ops.iter().all(|o| o.result.is_ok()));
                    drop(ops);
                    for (b, &a) in bufs.iter().zip(&addrs) {
                        assert!(b
                            .iter()
                            .enumerate()
                            .all(|(k, &v)| v == pattern(a + k as u64)));
                    }
                }
            });
        }
    });
}

/// A minimal PE32+ DLL header for x86-64 (synthetic: headers only, no sections).
fn pe_dll() -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes()); // e_lfanew
    let pe = 0x80;
    b[pe..pe + 4].copy_from_slice(b"PE\0\0");
    let coff = pe + 4;
    b[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes()); // AMD64
    b[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes()); // SizeOfOptionalHeader
    b[coff + 18..coff + 20].copy_from_slice(&0x2022u16.to_le_bytes()); // DLL | EXECUTABLE
    let opt = coff + 20;
    b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes()); // PE32+
    b[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes()); // SectionAlignment
    b[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes()); // FileAlignment
    b[opt + 56..opt + 60].copy_from_slice(&0x1000u32.to_le_bytes()); // SizeOfImage
    b[opt + 60..opt + 64].copy_from_slice(&0x400u32.to_le_bytes()); // SizeOfHeaders
    b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes()); // NumberOfRvaAndSizes
    b
}

/// A minimal 64-bit Mach-O dylib header for arm64 (synthetic: no load commands).
fn macho_dylib() -> Vec<u8> {
    let mut b = vec![0u8; 256];
    b[..4].copy_from_slice(&0xfeed_facfu32.to_le_bytes());
    b[4..8].copy_from_slice(&0x0100_000cu32.to_le_bytes()); // CPU_TYPE_ARM64
    b[12..16].copy_from_slice(&6u32.to_le_bytes()); // MH_DYLIB
    b
}

#[test]
fn libraries_of_other_formats_are_rejected_by_format() {
    let d = plugin_dir(&[]);
    for (name, bytes) in [("pe.so", pe_dll()), ("macho.so", macho_dylib())] {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        set_mode(&p, 0o755);
    }
    let inv = inv(&d);
    let reason = |f: &str| {
        inv.rejected
            .iter()
            .find(|r| r.path.ends_with(f))
            .map(|r| r.reason.clone())
            .unwrap_or_else(|| panic!("{f} not rejected: {inv:#?}"))
    };
    let pe = reason("pe.so");
    assert_eq!(
        pe,
        "PE library for x86_64 (64-bit, little-endian): this host loads ELF libraries"
    );
    let mo = reason("macho.so");
    assert!(
        mo.contains("Mach-O library for aarch64") && mo.contains("this host loads ELF"),
        "{mo}"
    );
}

/// A statically linked connector named like the `testconn` file.
struct LinkedTestconn;

impl memlens_plugin::ConnectorPlugin for LinkedTestconn {
    const NAME: &'static str = "testconn";
    const VERSION: &'static str = "1.2.3";
    const DESCRIPTION: &'static str = "linked stand-in";
    fn args() -> memlens_plugin::ArgSpec {
        memlens_plugin::ArgSpec::new()
    }
    fn create(
        _: &memlens_plugin::Args,
        _: Option<Arc<dyn memlens_core::Os>>,
    ) -> Result<memlens_core::PhysicalTarget, memlens_plugin::BoxError> {
        Err("not used".into())
    }
}

/// A plugin linked into the binary against files of the same name: the highest version
/// wins, a tie goes to the linked one; `plugins list` marks the loser as shadowed.
#[test]
fn static_and_file_duplicates_highest_version_wins_tie_to_static() {
    let reg = memlens_plugin::StaticRegistry::new().with_connector::<LinkedTestconn>();
    let linked = <LinkedTestconn as memlens_plugin::ConnectorPlugin>::VERSION;
    let root = tempfile::tempdir().unwrap();
    set_mode(root.path(), 0o755);
    let chosen = |version: &str| {
        let dir = root.path().join(version);
        let file = with_version(&dir, version);
        let inv = Inventory::scan_paths(&[dir]);
        let f = Builder::new()
            .registry(&reg)
            .inventory(&inv)
            .connector("testconn")
            .unwrap();
        let listed = listing::list(Some(&reg), &inv).plugins;
        let status = |path: Option<&PathBuf>| {
            listed
                .iter()
                .find(|p| p.name == "testconn" && p.path.as_ref() == path)
                .unwrap()
                .status
                .clone()
        };
        (
            f.path(),
            f.meta().version,
            status(None),
            status(Some(&file)),
            file,
        )
    };

    // Higher version in a file: the file wins, the linked plugin is listed as shadowed.
    let (path, version, st_static, st_file, file) = chosen("1.10.0");
    assert_eq!(path.as_ref(), Some(&file));
    assert_eq!(version, "1.10.0");
    assert_eq!(st_static, EntryStatus::Shadowed { by: file.clone() });
    assert_eq!(st_file, EntryStatus::Ok);

    // Same version: the linked one.
    let (path, version, st_static, st_file, _) = chosen(linked);
    assert_eq!(path, None);
    assert_eq!(version, linked);
    assert_eq!(st_static, EntryStatus::Ok);
    assert!(
        matches!(st_file, EntryStatus::Shadowed { .. }),
        "{st_file:?}"
    );

    // Lower version: the linked one.
    let (path, version, st_static, st_file, _) = chosen("1.2.0");
    assert_eq!(path, None);
    assert_eq!(version, linked);
    assert_eq!(st_static, EntryStatus::Ok);
    assert!(
        matches!(st_file, EntryStatus::Shadowed { .. }),
        "{st_file:?}"
    );
}

#[test]
fn page_table_errors_keep_their_owned_reason_across_the_abi() {
    let d = plugin_dir(&[TESTCONN]);
    let inv = inv(&d);
    let t = connect(&inv, "testconn::64KiB,bad_entry").unwrap();
    // Every reason differs: before, each one was interned (leaked) up to a cap, after
    // which the text was replaced by a fixed message.
    for i in 0..10_000u64 {
        let addr = PhysAddr(i * 8);
        match t.memory.read_vec(addr, 8).unwrap_err() {
            CoreError::BadEntry {
                va,
                root,
                level,
                entry,
                why,
            } => {
                assert_eq!((va, root, level), (VirtAddr(addr.0), PhysAddr(0x1000), 2));
                assert_eq!(entry, addr.0 ^ 0xdead);
                assert_eq!(why, format!("testconn: entry for {:#x} is bad", addr.0));
            }
            e => panic!("wrong error {e:?}"),
        }
    }
}

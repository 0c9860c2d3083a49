//! The native OS plugin against real child processes with known memory content.

mod common;

use std::sync::Arc;

use common::TestChild;
use memlens_core::{Error, MemoryView, MemoryViewExt, MemoryWriteExt, Os, ReadOp, VirtAddr};
use memlens_os_native::{NativeOptions, NativeOs, ProcessMemory};

fn os() -> NativeOs {
    NativeOs::open(NativeOptions::default()).expect("open native OS")
}

#[test]
fn ps_lists_the_child_with_its_details() {
    let c = TestChild::spawn();
    let procs = os().processes().unwrap();
    assert!(procs.windows(2).all(|w| w[0].pid < w[1].pid), "pid order");
    let p = procs
        .iter()
        .find(|p| p.pid == c.pid())
        .expect("child listed");
    assert_eq!(p.ppid, std::process::id());
    // comm is the executable name cut to 15 bytes.
    assert_eq!(p.name, "memlens-native-");
    let cmd = p.cmdline.as_ref().expect("cmdline");
    assert_eq!(cmd.len(), 2);
    assert_eq!(cmd[1], c.file.path().to_str().unwrap());
    assert!(p
        .exe
        .as_deref()
        .unwrap()
        .ends_with("memlens-native-testchild"));
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!(p.uid, Some(uid));
    assert_eq!(p.gid, Some(gid));
    assert_eq!(p.threads, Some(1));
    assert!(!p.kernel_thread);
    assert!(matches!(p.state.as_deref(), Some("S") | Some("R")));
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let start = p.start_time_ns.unwrap() as f64 / 1e9;
    assert!(
        start > 0.0 && start <= uptime + 0.1 && uptime - start < 120.0,
        "start {start} s, uptime {uptime} s"
    );
    // A kernel thread is flagged as such (kthreadd is pid 2 on Linux).
    if let Some(k) = procs.iter().find(|p| p.pid == 2) {
        assert!(k.kernel_thread, "{k:?}");
        assert_eq!(k.cmdline, None);
    }
}

#[test]
fn maps_show_heap_file_and_hole() {
    let c = TestChild::spawn();
    let p = os().process(c.pid()).unwrap();
    let maps = p.maps().unwrap();
    assert!(maps.windows(2).all(|w| w[0].end <= w[1].start));
    let find = |a: u64| maps.iter().find(|m| m.start.0 <= a && a < m.end.0);
    let heap = find(c.num("heap")).expect("heap mapped");
    assert!(heap.perms.read && heap.perms.write);
    let file = find(c.num("file")).expect("file mapped");
    assert_eq!(file.start.0, c.num("file"));
    assert_eq!(file.perms.to_string(), "r--p");
    assert_eq!(file.offset, 0);
    assert_eq!(file.path.as_deref(), Some(c.file.path().to_str().unwrap()));
    let hole = c.num("hole");
    let first = find(hole).expect("first hole page mapped");
    assert_eq!(first.perms.to_string(), "rw-p");
    assert_eq!(first.end.0, hole + 4096, "the middle page is unmapped");
    assert!(find(hole + 4096).is_none());
    assert!(find(hole + 8192).is_some());
}

#[test]
fn reads_heap_and_file_content() {
    let c = TestChild::spawn();
    let p = os().process(c.pid()).unwrap();
    let mem = p.memory();
    let heap = mem
        .read_vec(VirtAddr(c.num("heap")), c.num("heap_len") as usize)
        .unwrap();
    assert_eq!(heap, c.heap_text().as_bytes());
    let file = mem
        .read_vec(VirtAddr(c.num("file")), c.file_content.len())
        .unwrap();
    assert_eq!(file, c.file_content);
    // The ranges of the view are the readable maps.
    assert!(mem
        .ranges()
        .iter()
        .any(|r| r.contains(VirtAddr(c.num("file")))));
}

#[test]
fn partial_read_across_an_unmapped_page() {
    let c = TestChild::spawn();
    let mem = ProcessMemory::new(c.pid(), false);
    let hole = c.num("hole");
    let mut buf = vec![0x55u8; 3 * 4096];
    let r = mem.read_into(VirtAddr(hole + 100), &mut buf[..3 * 4096 - 200]);
    match r {
        Err(Error::Partial { total, failed }) => {
            assert_eq!(total, 3 * 4096 - 200);
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].offset, 4096 - 100);
            assert_eq!(failed[0].len, 4096);
        }
        other => panic!("expected a partial read, got {other:?}"),
    }
    assert!(buf[..4096 - 100].iter().all(|&b| b == 0xA1));
    assert!(buf[4096 - 100..2 * 4096 - 100].iter().all(|&b| b == 0));
    assert!(buf[2 * 4096 - 100..3 * 4096 - 200]
        .iter()
        .all(|&b| b == 0xC3));

    // A read entirely inside the hole fails as a whole (not "partial").
    let e = mem.read_u64(VirtAddr(hole + 4096 + 8)).unwrap_err();
    assert!(!matches!(e, Error::Partial { .. }), "{e}");
    assert!(e.to_string().contains("Bad address"), "{e}");
}

#[test]
fn batches_larger_than_iov_max_with_failures_inside() {
    let c = TestChild::spawn();
    let mem = ProcessMemory::new(c.pid(), false);
    let hole = c.num("hole");
    let file = c.num("file");
    // 3000 ops: every 7th inside the hole, the others in the file mapping.
    let n = 3000;
    let mut bufs = vec![[0u8; 8]; n];
    let addrs: Vec<u64> = (0..n)
        .map(|i| {
            if i % 7 == 3 {
                hole + 4096 + (i as u64 % 512) * 8
            } else {
                file + (i as u64 * 8) % (c.file_content.len() as u64 - 8)
            }
        })
        .collect();
    let mut ops: Vec<ReadOp<'_, VirtAddr>> = bufs
        .iter_mut()
        .zip(&addrs)
        .map(|(b, &a)| ReadOp::new(VirtAddr(a), b.as_mut_slice()))
        .collect();
    mem.read_batch(&mut ops);
    for (i, op) in ops.iter().enumerate() {
        if i % 7 == 3 {
            assert!(op.result.is_err(), "op {i} in the hole succeeded");
        } else {
            assert!(op.result.is_ok(), "op {i}: {:?}", op.result);
            let off = (addrs[i] - file) as usize;
            assert_eq!(op.buf, &c.file_content[off..off + 8], "op {i}");
        }
    }
}

#[test]
fn modules_and_libc_exports_from_memory() {
    let c = TestChild::spawn();
    let p = os().process(c.pid()).unwrap();
    let mods = p.modules().unwrap();
    let exe = mods
        .iter()
        .find(|m| m.name == "memlens-native-testchild")
        .expect("main executable listed");
    assert!(exe.size > 0);
    // The data file is mapped but is not an ELF module.
    assert!(mods.iter().all(|m| m.base.0 != c.num("file")));
    let libc = mods
        .iter()
        .find(|m| m.name.starts_with("libc.so") || m.name.starts_with("libc-"))
        .expect("libc listed");
    let d = p.module_details(libc).unwrap();
    assert!(d.exports.len() > 1000, "{} exports", d.exports.len());
    let malloc = d
        .exports
        .iter()
        .find(|s| s.name == "malloc")
        .expect("malloc exported");
    assert_eq!(malloc.addr.0, c.num("malloc"), "dlsym in the child agrees");
    assert!(libc.base <= malloc.addr && malloc.addr.0 < libc.base.0 + libc.size);
    // Sections come from the file on disk, relocated to the mapping.
    let text = d
        .sections
        .iter()
        .find(|s| s.name == ".text")
        .expect(".text section");
    assert!(text.addr.0 <= malloc.addr.0 && malloc.addr.0 < text.addr.0 + text.size);
    // libc imports a few symbols from the loader (e.g. _dl_* / __tls_get_addr).
    assert!(!d.imports.is_empty());

    // The executable imports malloc-family functions from libc: once bound, its GOT slot
    // holds libc's address.
    let de = p.module_details(exe).unwrap();
    let bound: Vec<_> = de
        .imports
        .iter()
        .filter(|s| s.addr.0 >= libc.base.0 && s.addr.0 < libc.base.0 + libc.size)
        .collect();
    assert!(
        !bound.is_empty(),
        "no import bound into libc: {:?}",
        de.imports
    );
}

#[test]
fn writes_only_when_asked_and_the_child_sees_them() {
    let mut c = TestChild::spawn();
    let ro = os().process(c.pid()).unwrap();
    assert!(ro.writer().is_none(), "read-only OS hands out no writer");
    let e = ProcessMemory::new(c.pid(), false)
        .write_all_at(VirtAddr(c.num("heap")), b"X")
        .unwrap_err();
    assert!(matches!(e, Error::ReadOnly { .. }), "{e}");

    let rw = NativeOs::open(NativeOptions { allow_write: true }).unwrap();
    let p = rw.process(c.pid()).unwrap();
    let w = p.writer().expect("writer when allow_write");
    w.write_all_at(VirtAddr(c.num("heap")), b"WRITTEN-BY-MEMLENS")
        .unwrap();
    let reply = c.ask("heap");
    let mut expect = c.heap_text().into_bytes();
    expect[..18].copy_from_slice(b"WRITTEN-BY-MEMLENS");
    assert_eq!(
        reply,
        format!("heap={}", String::from_utf8(expect).unwrap())
    );
    // Writing into the hole fails for that op only.
    let e = w
        .write_all_at(VirtAddr(c.num("hole") + 4096), b"nope")
        .unwrap_err();
    assert!(e.to_string().contains("Bad address"), "{e}");
}

#[test]
fn process_exiting_mid_read_gives_per_op_errors() {
    let c = TestChild::spawn();
    let mem = Arc::new(ProcessMemory::new(c.pid(), false));
    let heap = c.num("heap");
    let reader = {
        let mem = mem.clone();
        std::thread::spawn(move || {
            let mut errors = 0u32;
            let mut exited_msg = None;
            for _ in 0..20_000 {
                let mut bufs = vec![[0u8; 8]; 64];
                let mut ops: Vec<_> = bufs
                    .iter_mut()
                    .map(|b| ReadOp::new(VirtAddr(heap), b.as_mut_slice()))
                    .collect();
                mem.read_batch(&mut ops);
                for op in &ops {
                    if let Err(e) = &op.result {
                        errors += 1;
                        exited_msg.get_or_insert_with(|| e.to_string());
                    }
                }
                if errors > 0 {
                    break;
                }
            }
            (errors, exited_msg)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    drop(c); // kills and reaps the child
    let (errors, msg) = reader.join().expect("reader did not panic");
    assert!(errors > 0, "reads kept succeeding after the child died");
    let msg = msg.unwrap();
    assert!(msg.contains("exited"), "{msg}");
}

#[test]
fn opening_a_missing_process_is_a_clear_error() {
    let e = os().process(u32::MAX - 1).err().expect("no such process");
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn permission_denied_names_the_capability() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let c = TestChild::spawn();
    let out = if root {
        // Drop to nobody in a fresh process and try to read our (root-owned) child.
        use std::os::unix::process::CommandExt;
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_memlens-native-testchild"))
            .args([
                "--probe",
                &c.pid().to_string(),
                &format!("{:#x}", c.num("heap")),
            ])
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run probe as nobody");
        String::from_utf8_lossy(&o.stdout).into_owned()
    } else {
        // Not root: pid 1 belongs to root.
        let mem = ProcessMemory::new(1, false);
        let e = mem.read_u64(VirtAddr(0x1000)).unwrap_err();
        let m = os().process(1).and_then(|p| p.maps()).unwrap_err();
        format!("read=err {e}\nmaps=err {m}")
    };
    let read = out.lines().find(|l| l.starts_with("read=")).unwrap_or("");
    assert!(read.starts_with("read=err"), "{out}");
    assert!(read.contains("CAP_SYS_PTRACE"), "{out}");
    assert!(read.contains("same user"), "{out}");
    let maps = out.lines().find(|l| l.starts_with("maps=")).unwrap_or("");
    assert!(maps.starts_with("maps=err"), "{out}");
    assert!(maps.contains("CAP_SYS_PTRACE"), "{out}");
}

#[test]
fn os_info_and_kernel_modules() {
    let os = os();
    let info = os.info();
    assert_eq!(info.plugin, "native");
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(info.release.as_deref(), Some(rel.trim()));
    // Absent when the kernel has no module support: then the list is empty.
    let text = std::fs::read_to_string("/proc/modules").unwrap_or_default();
    let mods = os.kernel_modules().unwrap();
    assert_eq!(mods.len(), text.lines().count());
}

#[test]
fn plugin_entry_point() {
    use memlens_os_native::NativePlugin;
    use memlens_plugin::{Args, OsPlugin};
    let spec = NativePlugin::args();
    let os = NativePlugin::create(&Args::parse("native", &spec, None, "").unwrap(), None).unwrap();
    assert!(os
        .processes()
        .unwrap()
        .iter()
        .any(|p| p.pid == std::process::id()));
    let me = os.process(std::process::id()).unwrap();
    assert!(me.writer().is_none());
    let os =
        NativePlugin::create(&Args::parse("native", &spec, None, "write").unwrap(), None).unwrap();
    assert!(os.process(std::process::id()).unwrap().writer().is_some());
}

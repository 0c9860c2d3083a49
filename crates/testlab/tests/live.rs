//! Live mode: the guest keeps running, QMP works, and QEMU dies with its handle.

use std::time::Duration;

#[test]
fn live_guest_runs_answers_qmp_and_dies_on_drop() {
    let g = testlab::require_live("x86_64-kaslr");
    let pid = g.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(g.qmp_socket().exists());
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let ram = 256u64 << 20;
    let has_ram_mapping = maps.lines().any(|l| {
        let (range, rest) = l.split_once(' ').unwrap();
        let (a, b) = range.split_once('-').unwrap();
        let len = u64::from_str_radix(b, 16).unwrap() - u64::from_str_radix(a, 16).unwrap();
        len == ram && rest.starts_with("rw-p")
    });
    assert!(has_ram_mapping, "no 256 MiB rw-p mapping in QEMU's maps");
    {
        let mut q = g.qmp().unwrap();
        assert!(q.running().unwrap());
    }
    let cpu = g
        .stop_on_marker()
        .unwrap()
        .expect("marker not caught on a vCPU");
    {
        let mut q = g.qmp().unwrap();
        assert!(!q.running().unwrap());
        let heap = g.guest.marker.strings.first().unwrap();
        assert_eq!(q.gva2gpa(heap.va, cpu).unwrap(), heap.pa);
        q.cont().unwrap();
        assert!(q.running().unwrap());
    }
    drop(g);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} survived its handle"
    );
}

#[test]
fn boot_timeout_is_an_error_with_the_console_tail() {
    let started = std::time::Instant::now();
    let e = testlab::boot_live_with_timeout("x86_64-kaslr", Duration::from_secs(2)).unwrap_err();
    let testlab::Error::BootTimeout { qemu_pid, .. } = e else {
        panic!("expected a boot timeout, got {e}");
    };
    let text = e.to_string();
    assert!(
        text.contains("TESTLAB-READY") && text.contains("console tail"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    // Killed and reaped: no process (not even a zombie) is left behind.
    assert!(
        !std::path::Path::new(&format!("/proc/{qemu_pid}")).exists(),
        "QEMU {qemu_pid} survived the timeout"
    );
}

#[test]
fn a_panicking_test_takes_its_guest_down() {
    let (tx, rx) = std::sync::mpsc::channel();
    let joined = std::thread::spawn(move || {
        let g = testlab::require_live("x86_64-nokaslr");
        tx.send(g.pid()).unwrap();
        panic!("deliberate panic while the guest runs");
    })
    .join();
    assert!(joined.is_err(), "the thread was meant to panic");
    let pid = rx.recv().expect("the guest booted before the panic");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} survived a panicking test"
    );
}

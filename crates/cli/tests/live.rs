//! End-to-end on a live guest: the real `memlens` binary reads a running QEMU guest of the
//! test lab through the `qemu` connector and the Linux plugin (`-c qemu:NAME -o linux`,
//! `-o auto`, and the explicit chain `-o native -c qemu:NAME -o linux`), and must agree with what the guest itself recorded at boot: its process
//! list, the marker process's maps and the marker strings at their virtual addresses.
//! Fails with a set-up hint when the lab is missing.

mod common;
use common::{json, memlens};

#[test]
fn live_x86_64_guest_through_qemu_connector_and_linux() {
    check_live("x86_64-kaslr");
}

#[test]
fn live_arm64_guest_through_qemu_connector_and_linux() {
    check_live("arm64");
}

fn check_live(scenario: &str) {
    let guest = testlab::require_live(scenario);
    // A stopped guest gives one consistent snapshot to every command below.
    guest.qmp().unwrap().stop().unwrap();
    let conn = format!("qemu:{}", guest.name());
    let truth = &guest.guest;

    for os in ["linux", "auto"] {
        let ps = json(&["ps", "-c", &conn, "-o", os]);
        common::check_ps(&format!("{scenario} live -o {os}"), &ps, &truth.processes);
    }
    // The explicit chain: QEMU's RAM read through the native plugin's view of the QEMU
    // process (the plain form above implies `-o native`).
    let ps = json(&["ps", "-o", "native", "-c", &conn, "-o", "linux"]);
    common::check_ps(
        &format!("{scenario} live -o native -c {conn} -o linux"),
        &ps,
        &truth.processes,
    );

    // The marker's maps equal its /proc/PID/maps (start, end, path).
    let marker = &truth.marker;
    let pid = marker.pid.to_string();
    let maps = json(&["maps", "-c", &conn, "-o", "linux", "-p", &pid]);
    for m in &marker.maps {
        assert!(
            maps.as_array()
                .unwrap()
                .iter()
                .any(|g| g["start"] == m.start
                    && g["end"] == m.end
                    && (m.path.is_empty() || g["path"] == m.path.as_str())),
            "map {:#x}-{:#x} {} missing: {maps}",
            m.start,
            m.end,
            m.path
        );
    }

    // Marker strings at their virtual addresses, through the process's page tables.
    for st in &marker.strings {
        let out = memlens(&[
            "read",
            "-c",
            &conn,
            "-o",
            "linux",
            &format!("{:#x}", st.va),
            &st.text.len().to_string(),
            "-p",
            &pid,
            "--out",
            "/dev/stdout",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            st.text,
            "{:?} at {:#x}",
            st.kind,
            st.va
        );
    }
    guest.qmp().unwrap().cont().unwrap();
}

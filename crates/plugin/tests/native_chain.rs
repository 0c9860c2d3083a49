//! A chain on a real target — the host itself — through two plugins loaded from files:
//! the workspace's `native` OS plugin (`memlens-os-native`'s cdylib) feeds `testconn`,
//! which reads this very test process by pid; the test finds its own marker bytes.

mod common;

use std::process::Command;

use common::*;
use memlens_core::{MemoryViewExt, PhysAddr};
use memlens_plugin::{Builder, Inventory};

const NATIVE: &str = "libmemlens_os_native.so";

fn build_native() {
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = built().parent().expect("fixtures target dir").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(ws)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "-p", "memlens-os-native"])
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "building memlens-os-native failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn native_os_feeds_a_connector_reading_this_process() {
    build_native();
    let d = plugin_dir(&[TESTCONN, NATIVE]);
    let inv = Inventory::scan_paths(&[d.path().to_path_buf()]);
    let marker: Vec<u8> = b"memlens-native-chain-marker-"
        .iter()
        .copied()
        .chain((0..64u8).map(|i| i.wrapping_mul(37)))
        .collect();
    let addr = marker.as_ptr() as u64;
    let pid = std::process::id();
    let b = Builder::new().inventory(&inv);

    let os = b.build_cli(&["-o", "native"]).unwrap().os().unwrap();
    let me = os
        .processes()
        .unwrap()
        .into_iter()
        .find(|p| p.pid == pid)
        .expect("this process is listed");
    assert!(me.name.starts_with("native_chain"), "{}", me.name);

    let chain = b
        .build_cli(&["-o", "native", "-c", &format!("testconn:{pid}")])
        .unwrap();
    let t = chain.target().unwrap();
    let got = t.memory.read_vec(PhysAddr(addr), marker.len()).unwrap();
    assert_eq!(got, marker);
    assert!(
        t.info.format.contains(&format!("process {pid} of native")),
        "{:?}",
        t.info
    );
    // An unmapped address fails with an error, not a crash.
    assert!(t.memory.read_vec(PhysAddr(8), 8).is_err());
}

//! The whole pipeline on arbitrary files: open with format auto-detection (as `memlens ps
//! FILE` does), find a Linux kernel, list processes, maps, modules and kernel modules
//! (`memlens_os_linux::fuzzing::exercise`). Small RAM images: the input is the file.
//! Seeds: `fuzz/seeds/pipeline` and `crates/connector-file/tests/corpus`.
//!
//! `cargo +nightly fuzz run pipeline`
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_connector_file::{open_dump, DumpOptions};

fuzz_target!(|data: &[u8]| {
    let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let path = format!("{dir}/memlens-fuzz-pipeline-{}", std::process::id());
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let opts = DumpOptions { cache_bytes: 1 << 20, ..DumpOptions::default() };
    if let Ok(dump) = open_dump(&path, &opts) {
        memlens_os_linux::fuzzing::exercise(dump.target());
    }
    let _ = std::fs::remove_file(&path);
});

//! Every dump parser (auto-detection and each forced format) on arbitrary file contents,
//! then bounded reads of whatever ranges the parser claims. Seeds:
//! `crates/connector-file/tests/corpus`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_connector_file::fuzzing::{exercise, CHOICES};

fuzz_target!(|data: &[u8]| {
    // The parsers take files (they memory-map them): write the input to a RAM-backed file.
    let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let path = std::path::PathBuf::from(format!("{dir}/memlens-fuzz-{}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    for c in CHOICES {
        exercise(&path, c);
    }
});

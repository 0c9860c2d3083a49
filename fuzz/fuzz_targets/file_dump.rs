//! Every dump parser (auto-detection and each forced format) on arbitrary file contents,
//! then bounded reads of whatever ranges the parser claims. Seeds:
//! `crates/connector-file/tests/corpus`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_connector_file::fuzzing::{exercise_bytes, CHOICES};

fuzz_target!(|data: &[u8]| {
    exercise_bytes(data, &CHOICES);
});

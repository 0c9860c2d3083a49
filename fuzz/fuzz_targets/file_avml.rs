//! The AVML reader (range headers, snappy frame index, per-chunk decompression) on
//! arbitrary file contents, then bounded reads. Seeds: `crates/connector-file/tests/corpus`
//! (`seed-avml`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_connector_file::fuzzing::exercise_bytes;
use memlens_connector_file::FormatChoice;

fuzz_target!(|data: &[u8]| {
    exercise_bytes(data, &[FormatChoice::Avml]);
});

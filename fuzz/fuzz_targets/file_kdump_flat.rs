//! The flattened kdump reader (`makedumpfile` records indexed once, then the kdump reader
//! on the logical file). Inputs without the signature get a valid start header in front,
//! so mutations reach the records. Seeds: `crates/connector-file/tests/corpus`
//! (`seed-kdump-flat`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_connector_file::fuzzing::{exercise_bytes, flat_input};
use memlens_connector_file::FormatChoice;

fuzz_target!(|data: &[u8]| {
    exercise_bytes(&flat_input(data), &[FormatChoice::Kdump]);
});

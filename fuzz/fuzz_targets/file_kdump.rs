//! The kdump-compressed reader (normal layout: headers, bitmaps, descriptors, per-page
//! zlib/LZO/snappy/zstd) on arbitrary file contents, then bounded reads of the pages it
//! claims. Seeds: `crates/connector-file/tests/corpus` (`seed-kdump`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_connector_file::fuzzing::exercise_bytes;
use memlens_connector_file::FormatChoice;

fuzz_target!(|data: &[u8]| {
    exercise_bytes(data, &[FormatChoice::Kdump]);
});

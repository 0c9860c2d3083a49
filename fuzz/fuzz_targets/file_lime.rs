//! The LiME range-header parser on arbitrary bytes, without a file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = memlens_connector_file::lime::parse(data, std::path::Path::new("fuzz.lime"));
});

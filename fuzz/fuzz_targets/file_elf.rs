//! The ELF core parser (program headers, PT_LOAD merging, notes, registers, VMCOREINFO)
//! on arbitrary bytes, without a file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = memlens_connector_file::elf::parse(data, std::path::Path::new("fuzz.elf"));
});

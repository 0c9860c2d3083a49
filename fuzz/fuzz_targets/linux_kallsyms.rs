//! kallsyms table finder/decoder on arbitrary bytes: must return, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = memlens_os_linux::kallsyms::find_and_parse(data, "fuzz");
});

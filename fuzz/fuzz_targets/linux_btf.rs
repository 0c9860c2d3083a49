//! BTF parser and lookups on arbitrary bytes: must return, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(btf) = memlens_os_linux::btf::Btf::parse(data) {
        for id in 0..btf.type_count().min(64) as u32 {
            let _ = btf.size_of(id);
            let _ = btf.members(id);
            let _ = btf.member(id, "x");
        }
        let _ = btf.offset_of("task_struct", "tasks.next");
        let _ = btf.enum_value("A");
    }
});

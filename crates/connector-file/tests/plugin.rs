//! The `file` connector plugin's argument overrides (`file:PATH:format=…,cache_size=…`)
//! on a real lab dump: a forced format wins over detection, a wrong value lists the valid
//! ones, a format the content contradicts names what the file is. Fails (never skips)
//! when the lab is missing.

#![cfg(feature = "plugin")]

use memlens_connector_file::plugin::FilePlugin;
use memlens_core::{MemoryViewExt, PhysAddr, PhysicalTarget};
use memlens_plugin::{Args, ConnectorPlugin};

fn create(path: &std::path::Path, args: &str) -> Result<PhysicalTarget, String> {
    let a =
        Args::parse("file", &FilePlugin::args(), path.to_str(), args).map_err(|e| e.to_string())?;
    FilePlugin::create(&a, None).map_err(|e| e.to_string())
}

#[test]
fn format_raw_reads_an_elf_dump_as_bytes() {
    let lab = testlab::require("x86_64-kaslr");
    let file = std::fs::read(&lab.elf).unwrap();
    // Detected: ELF, address 0 is guest RAM, not the ELF header.
    let auto = create(&lab.elf, "").unwrap();
    assert_eq!(auto.info.format, "elf");
    // Forced raw: file offset = address, so address 0 holds the ELF header.
    let raw = create(&lab.elf, "format=raw").unwrap();
    assert_eq!(raw.info.format, "raw");
    assert_eq!(raw.memory.read_vec(PhysAddr(0), 64).unwrap(), &file[..64]);
    assert_ne!(
        auto.memory.read_vec(PhysAddr(0), 64).unwrap(),
        &file[..64],
        "guest RAM at 0 should not be the ELF header"
    );
    // The last byte of the file is the last raw address.
    let end = file.len() as u64 - 8;
    assert_eq!(
        raw.memory.read_vec(PhysAddr(end), 8).unwrap(),
        &file[end as usize..]
    );
    // A raw view has no registers; the ELF view has the vCPUs.
    assert!(raw.cpu.is_none());
    assert!(auto.cpu.is_some());
}

#[test]
fn bad_format_values_are_errors_that_help() {
    let lab = testlab::require("x86_64-kaslr");
    let e = create(&lab.elf, "format=qcow2").unwrap_err();
    assert!(
        e.contains("qcow2") && e.contains("auto, raw, elf, kdump, lime or avml"),
        "{e}"
    );
    // Forcing a format the content contradicts names what the file is.
    let e = create(&lab.elf, "format=kdump").unwrap_err();
    assert!(
        e.contains("format=kdump") && e.contains("is elf by its content") && e.contains("KDUMP"),
        "{e}"
    );
    let e = create(&lab.kdump, "format=elf").unwrap_err();
    assert!(e.contains("is kdump by its content"), "{e}");
    let e = create(&lab.kdump_flat, "format=lime").unwrap_err();
    assert!(
        e.contains("is kdump-flat by its content") && e.contains("format=kdump"),
        "{e}"
    );
    // Writable only for raw images.
    let e = create(&lab.elf, "writable").unwrap_err();
    assert!(e.contains("only raw images can be written"), "{e}");
    let e = create(&lab.elf, "cache_size=lots").unwrap_err();
    assert!(e.contains("cache_size"), "{e}");
}

#[test]
fn cache_size_and_format_kdump_read_the_same_bytes() {
    let lab = testlab::require("x86_64-kaslr");
    let elf = create(&lab.elf, "format=elf").unwrap();
    // A one-page cache (every read decompresses) and a large one read identical bytes.
    for args in [
        "format=kdump,cache_size=4KiB",
        "format=kdump,cache_size=256MiB",
    ] {
        for path in [&lab.kdump, &lab.kdump_flat] {
            let k = create(path, args).unwrap();
            assert!(k.info.format.starts_with("kdump"), "{}", k.info.format);
            for r in elf.memory.ranges().iter().take(4) {
                for off in [0, r.len / 2, r.len - 4096] {
                    let a = PhysAddr(r.base.0 + (off & !4095));
                    assert_eq!(
                        k.memory.read_vec(a, 4096).unwrap(),
                        elf.memory.read_vec(a, 4096).unwrap(),
                        "{args} {} at {a:?}",
                        path.display()
                    );
                }
            }
        }
    }
}

//! The `file` connector's overrides through the real binary: `-c file:PATH:format=…` on a
//! lab ELF dump. Fails (never skips) when the lab is missing.

mod common;
use common::memlens;

fn read_to_file(spec: &str, addr: &str, len: &str) -> (std::process::Output, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bytes");
    let o = memlens(&[
        "read",
        "-c",
        spec,
        addr,
        len,
        "--out",
        out.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&out).unwrap_or_default();
    (o, bytes)
}

#[test]
fn format_override_on_an_elf_dump() {
    let lab = testlab::require("x86_64-kaslr");
    let elf = lab.elf.to_str().unwrap();
    let file = std::fs::read(&lab.elf).unwrap();
    // format=raw: address 0 is file offset 0, the ELF header.
    let (o, raw) = read_to_file(&format!("file:{elf}:format=raw"), "0", "64");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(raw, &file[..64]);
    assert!(raw.starts_with(b"\x7fELF"));
    // Detected (no override): address 0 is guest RAM.
    let (o, ram) = read_to_file(&format!("file:{elf}"), "0", "64");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ram.len(), 64);
    assert_ne!(ram, raw);
    // A format that does not exist: the valid ones are listed.
    let o = memlens(&["read", "-c", &format!("file:{elf}:format=vmdk"), "0", "4"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("vmdk") && err.contains("auto, raw, elf, kdump, lime or avml"),
        "{err}"
    );
    // format=kdump on an ELF file: a target error that says what the file is.
    let o = memlens(&["read", "-c", &format!("file:{elf}:format=kdump"), "0", "4"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is elf by its content") && err.contains("format=kdump"),
        "{err}"
    );
}

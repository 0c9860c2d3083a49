//! End-to-end on the host: the real `memlens` binary reads this test process's memory
//! (the native OS plugin, `/proc/PID/mem`) and must find what the test put there.

mod common;
use common::{json, memlens};

/// Text built at run time (so it is only in this process's heap), in both encodings.
fn plant(tag: &str) -> (String, Vec<u8>, Vec<u8>) {
    let text = format!("memlens-host-{tag}-{}-{:x}", std::process::id(), rand_ish());
    let ascii = text.clone().into_bytes();
    let wide: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    (text, ascii, wide)
}

fn rand_ish() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(7);
    h.finish()
}

#[test]
fn strings_finds_ascii_and_utf16_in_a_host_process() {
    let (text, ascii, wide) = plant("strings");
    // NUL on both sides: the bytes around a heap allocation are whatever was there before
    // (a printable neighbour would lengthen the string).
    let ascii = [&[0u8][..], &ascii, &[0]].concat();
    let wide = [&[0u8, 0][..], &wide, &[0, 0]].concat();
    let (a, w) = (std::hint::black_box(&ascii), std::hint::black_box(&wide));
    let pid = std::process::id().to_string();
    let v = json(&["strings", "-p", &pid, "-n", "20"]);
    let rows = v.as_array().unwrap();
    for (enc, addr) in [
        ("ascii", a.as_ptr() as u64 + 1),
        ("utf16", w.as_ptr() as u64 + 2),
    ] {
        assert!(
            rows.iter().any(|r| r["encoding"] == enc
                && r["addr"].as_u64() == Some(addr)
                && r["text"] == text.as_str()),
            "{enc} {text:?} at {addr:#x} not found"
        );
    }
    let v = json(&["strings", "-p", &pid, "-n", "20", "--encoding", "utf16"]);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["encoding"] == "utf16"));
}

#[test]
fn search_and_dump_a_host_process() {
    let (text, ascii, _) = plant("dump");
    let a = std::hint::black_box(&ascii);
    let pid = std::process::id().to_string();
    let hits = json(&["search", "-p", &pid, &text]);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["addr"].as_u64() == Some(a.as_ptr() as u64)),
        "search did not find {text:?} at {:?}",
        a.as_ptr()
    );
    // The process core holds the text at its virtual address.
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("self.core");
    let out = memlens(&["dump", "-p", &pid, "--out", core.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&core).unwrap();
    assert_eq!(
        common::core_bytes(&bytes, a.as_ptr() as u64, ascii.len()),
        &ascii[..]
    );
}

#[test]
fn module_details_of_a_host_process() {
    let pid = std::process::id().to_string();
    let v = json(&["modules", "-p", &pid, "--details", "--module", "libc"]);
    let libc = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["module"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("libc"))
        })
        .expect("this test links libc dynamically");
    let (base, size) = (
        libc["module"]["base"].as_u64().unwrap(),
        libc["module"]["size"].as_u64().unwrap(),
    );
    let malloc = libc["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "malloc")
        .expect("libc exports malloc");
    let at = malloc["addr"].as_u64().unwrap();
    assert!(
        (base..base + size).contains(&at),
        "malloc at {at:#x} outside libc"
    );
    assert!(!libc["sections"].as_array().unwrap().is_empty());
    // --details needs -p.
    let out = memlens(&["modules", "--details"]);
    assert_eq!(out.status.code(), Some(2));
}

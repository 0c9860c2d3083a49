//! Sizes and counts from the user or the target are bounded before memlens allocates for
//! them (the "hostile memory must never make memlens allocate without bound" issue), end
//! to end through the real binary on small raw images: each cap is a clear usage error
//! (exit 2) naming the way out, and scans of memory full of one pattern stay bounded.

mod common;
use common::memlens;

use std::io::Write;

fn image(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f
}

/// Runs `memlens ARGS`, expects exit status `code` without a panic and `needles` in
/// stderr; returns stdout.
fn check(args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = memlens(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr lacks {n:?}: {err}");
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn read_json_is_capped_and_points_to_out() {
    let f = image(&[7u8; 4096]);
    let p = f.path().to_str().unwrap();
    check(
        &["read", p, "0", "65MiB", "--json"],
        2,
        &["--json reads at most", "--out"],
    );
    check(
        &["read", p, "0", "0xffffffffffff", "--json"],
        2,
        &["64.00 MiB"],
    );
    let out = check(&["read", p, "0", "16", "--json"], 0, &[]);
    assert!(out.contains("07070707"), "{out}");
}

#[test]
fn search_max_and_context_are_capped() {
    let f = image(&[b'a'; 4096]);
    let p = f.path().to_str().unwrap();
    check(
        &["search", p, "a", "--context", "4097"],
        2,
        &["--context", "0 to 4096"],
    );
    check(
        &["search", p, "a", "--max", "0"],
        2,
        &["--max", "1 to 1000000"],
    );
    check(
        &["search", p, "a", "--max", "1000001"],
        2,
        &["1 to 1000000"],
    );
    check(
        &["search", p, "a", "--max", "1000000", "--context", "4096"],
        2,
        &["of previews", "lower --max or --context"],
    );
}

/// 8 MiB of one byte (two scan chunks): `search --max` stops at max, the JSON has
/// exactly the first matches, and the context is there.
#[test]
fn search_in_memory_full_of_the_pattern_stops_at_max() {
    let f = image(&vec![b'a'; 8 << 20]);
    let p = f.path().to_str().unwrap();
    let out = check(
        &["search", p, "a", "--max", "5", "--context", "2", "--json"],
        0,
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let addrs: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["addr"].as_u64().unwrap())
        .collect();
    assert_eq!(addrs, [0, 1, 2, 3, 4]);
    assert_eq!(v[3]["preview"], "aaaaa");
}

/// 8 MiB of `abcd\0`: every string is printed, in order, as CSV and JSON (streamed).
#[test]
fn strings_streams_every_short_string() {
    let bytes: Vec<u8> = b"abcd\0".iter().copied().cycle().take(8 << 20).collect();
    let f = image(&bytes);
    let p = f.path().to_str().unwrap();
    let want = (8 << 20) / 5;
    let out = check(&["strings", p, "--csv"], 0, &[]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("PID,ADDRESS,ENC,STRING"));
    let mut n = 0u64;
    for (i, l) in lines.enumerate() {
        assert_eq!(l, format!("-,{:#018x},ascii,abcd", i * 5));
        n += 1;
    }
    assert_eq!(n, want);
    let out = check(&["strings", p, "--json", "--max", "3"], 0, &[]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[2]["addr"], 10);
    let out = check(&["strings", p, "--max", "2"], 0, &[]);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn bench_runs_and_batch_sizes_are_capped() {
    let f = image(&[0u8; 4096]);
    let p = f.path().to_str().unwrap();
    check(
        &["bench", "walk", p, "--dtb", "0x1000", "--runs", "0"],
        2,
        &["--runs must be 1 to 1000"],
    );
    check(
        &["bench", "walk", p, "--dtb", "0x1000", "--runs", "100000000"],
        2,
        &["1 to 1000"],
    );
    check(
        &["bench", "translate", p, "--dtb", "0x1000", "--runs", "1001"],
        2,
        &["1 to 1000"],
    );
    check(
        &["bench", "phys", p, "--sizes", "64MiB", "--batch", "1048576"],
        2,
        &["per batch", "at most 1.00 GiB"],
    );
    check(
        &[
            "bench", "virt", p, "--dtb", "0x1000", "--sizes", "4k", "--batch", "1048576",
        ],
        2,
        &["per batch"],
    );
}

#[test]
fn dump_refuses_more_than_max_size() {
    let f = image(&[1u8; 8192]);
    let p = f.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("core");
    let o = out.to_str().unwrap();
    check(
        &["dump", p, "--out", o, "--max-size", "4KiB"],
        2,
        &["--max-size", "8.00 KiB"],
    );
    assert!(!out.exists(), "nothing is written when refused");
    check(
        &["dump", p, "--out", o, "--max-size", "lots"],
        2,
        &["bad --max-size"],
    );
    check(&["dump", p, "--out", o, "--format", "raw"], 0, &[]);
    assert_eq!(std::fs::read(&out).unwrap(), vec![1u8; 8192]);
}

#[test]
fn cache_middleware_page_size_and_capacity_are_capped() {
    let f = image(&[3u8; 4096]);
    let spec = |mw: &str| format!("file:{}::{mw}", f.path().display());
    let huge = spec("cache_page_size=1TiB");
    let out = memlens(&["read", "-c", &huge, "0", "4"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("2097152"), "{err}");
    let big = spec("cache_size=1PiB");
    let out = memlens(&["read", "-c", &big, "0", "4"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("cache_size"), "{err}");
    let ok = spec("cache_page_size=2MiB,cache_size=64MiB");
    let out = memlens(&["read", "-c", &ok, "0", "4", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

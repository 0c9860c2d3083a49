//! End-to-end on files the test writes: `read --json`, a TOML memory map placing a raw
//! image's ranges (`-c file:PATH:map=…`), the `zero_gaps` and `metrics` middleware, and a
//! short successful `bench phys`.

mod common;
use common::{json, memlens};

use std::io::Write;

/// 16 KiB whose byte at file offset `o` is `(o * 7 + o / 256) as u8`.
fn image() -> tempfile::NamedTempFile {
    let bytes: Vec<u8> = (0..0x4000u32).map(|o| (o * 7 + o / 256) as u8).collect();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&bytes).unwrap();
    f
}

fn byte(o: u64) -> u8 {
    (o * 7 + o / 256) as u8
}

fn hex(bytes: impl IntoIterator<Item = u8>) -> String {
    bytes.into_iter().map(|b| format!("{b:02x}")).collect()
}

/// A map file: file `[0x2000, 0x4000)` at 0x100000 and file `[0, 0x1000)` at 0x200000.
fn map_file(dir: &tempfile::TempDir, text: &str) -> String {
    let p = dir.path().join("layout.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

const LAYOUT: &str = "[[range]]\nbase = \"0x100000\"\nlen = \"8k\"\nbacking = \"0x2000\"\n\n\
                      [[range]]\nbase = \"0x200000\"\nlen = \"4k\"\nbacking = 0\n";

#[test]
fn read_json_reports_bytes_and_unreadable_spans() {
    let f = image();
    let p = f.path().to_str().unwrap();
    let v = json(&["read", p, "0x10", "8"]);
    assert_eq!(v["address"], "0x10");
    assert_eq!(v["length"], 8);
    assert_eq!(v["hex"], hex((0x10..0x18).map(byte)));
    assert_eq!(v["unreadable"], serde_json::json!([]));
    // Past the end: still a JSON document with the span, and exit status 1.
    let out = memlens(&["read", p, "0x3ffc", "8", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["hex"],
        format!("{}00000000", hex((0x3ffc..0x4000).map(byte)))
    );
    assert_eq!(
        v["unreadable"],
        serde_json::json!([{"address": "0x4000", "length": 4}])
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("first at 0x4000"));
}

#[test]
fn a_memory_map_places_file_ranges_and_gaps_fail_unless_zero_filled() {
    let f = image();
    let dir = tempfile::tempdir().unwrap();
    let map = map_file(&dir, LAYOUT);
    let conn = format!("file:{}:map={map}", f.path().display());
    let info = json(&["info", "-c", &conn]);
    assert_eq!(
        info["target"]["ranges"],
        serde_json::json!([{"base": 0x100000, "len": 0x2000}, {"base": 0x200000, "len": 0x1000}]),
        "{info}"
    );
    // File offset 0x2010 appears at 0x100010, file offset 0x10 at 0x200010.
    let v = json(&["read", "-c", &conn, "0x100010", "4"]);
    assert_eq!(v["hex"], hex((0x2010..0x2014).map(byte)));
    let v = json(&["read", "-c", &conn, "0x200010", "4"]);
    assert_eq!(v["hex"], hex((0x10..0x14).map(byte)));
    // The end of the first range runs into a gap: unreadable by default...
    let out = memlens(&["read", "-c", &conn, "0x101ffc", "8", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gap") && err.contains("0x102000"), "{err}");
    // ...zeros with `zero_gaps`, and `metrics` reports what passed, on stderr.
    let zero = format!("{conn}:zero_gaps,metrics");
    let out = memlens(&["read", "-c", &zero, "0x101ffc", "8", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["hex"],
        format!("{}00000000", hex((0x3ffc..0x4000).map(byte)))
    );
    assert!(
        err.contains("metrics file:") && err.contains("1 reads (0 failed), 8 bytes"),
        "{err}"
    );
}

#[test]
fn bad_memory_maps_are_one_line_errors_naming_the_file() {
    let f = image();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[range]]\nbase = 0\nlen = \"8k\"\n[[range]]\nbase = \"0x1000\"\nlen = \"4k\"\n",
            "overlap",
        ),
        ("[[range]]\nbase = 0\nlen = 0\n", "length"),
        ("[[range]]\nbase = 0\nlen = \"1MiB\"\n", "bytes of backing"),
        ("[[range]\n", "line 1"),
        ("[package]\nname = \"x\"\n", "unknown field `package`"),
        ("[[range]]\nbase = 0\nlen = 4096\nbakcing = 0\n", "line 4"),
    ];
    for (text, needle) in cases {
        let map = map_file(&dir, text);
        let conn = format!("file:{}:map={map}", f.path().display());
        let out = memlens(&["info", "-c", &conn]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(needle) && (err.contains("layout.toml") || needle == "bytes of backing"),
            "{text}: {err}"
        );
    }
    let out = memlens(&[
        "info",
        "-c",
        &format!("file:{}:map=/nonexistent.toml", f.path().display()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent.toml"), "{err}");
}

#[test]
fn bench_phys_measures_every_size_and_batch_with_a_ceiling() {
    let f = image();
    let p = f.path().to_str().unwrap();
    let v = json(&[
        "bench",
        "phys",
        p,
        "--sizes",
        "8,4096",
        "--batch",
        "1,16",
        "--seconds",
        "0.05",
    ]);
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4, "{v}");
    for r in rows {
        assert!(r["reads"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert!(r["reads_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["ceiling_reads_per_sec"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(v["span_bytes"], 0x4000);
}

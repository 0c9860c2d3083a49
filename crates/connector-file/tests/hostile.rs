//! Hostile input: every golden file truncated at every offset, randomly mutated headers,
//! and a replay of the fuzz seed corpus (`tests/corpus`, also the seeds of `fuzz/fuzz_targets/file_dump.rs`). The contract: an error (that
//! names the offset) or a working dump — never a panic, a hang or a huge allocation.
//!
//! `MEMLENS_WRITE_CORPUS=1 cargo test -p memlens-connector-file --test hostile` rewrites
//! the seed files of the corpus from the builders in `common/`.

mod common;

use std::io::{Seek, Write};
use std::path::PathBuf;

use common::*;
use memlens_connector_file::fuzzing::{exercise, CHOICES};
use memlens_connector_file::{open_dump, DumpOptions, FormatChoice};
use proptest::prelude::*;

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let pages: Vec<(u64, Vec<u8>, Codec)> = [
        Codec::Raw,
        Codec::Zlib,
        Codec::Snappy,
        Codec::Zstd,
        Codec::Lzo,
    ]
    .iter()
    .enumerate()
    .map(|(i, c)| {
        (
            i as u64 * 3 + 1,
            (0..1024).map(|b| (b * (i + 3)) as u8).collect(),
            *c,
        )
    })
    .collect();
    let mut notes = note("CORE", 1, &[0u8; 336]);
    notes.extend(note("QEMU", 0, &[1u8; 440]));
    let kd = kdump(
        1024,
        40,
        &pages,
        &[2],
        1,
        &notes,
        b"OSRELEASE=x\nKERNELOFFSET=0\n",
    );
    let mut enotes = note("CORE", 1, &[3u8; 336]);
    enotes.extend(note("VMCOREINFO", 0, b"OSRELEASE=6.1\n"));
    let off = 64 + 56 * 3;
    let mut body = enotes.clone();
    body.extend([0x77u8; 512]);
    let elf = elf64(
        62,
        &[
            (4, off, 0, enotes.len() as u64, 0),
            (1, off + enotes.len() as u64, 0x1000, 256, 512),
            (1, off + enotes.len() as u64 + 256, 0x1080, 256, 256),
        ],
        &body,
    );
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    vec![
        ("elf", elf),
        ("kdump", kd.clone()),
        ("kdump-flat", flatten(&kd, 700, true, true)),
        ("lime", lime(&[(0x1000, &data[..100]), (0x8000, &data)])),
        ("avml", avml(&[(0x1000, &data[..100]), (0x8000, &data)])),
    ]
}

struct Scratch(tempfile::NamedTempFile);

impl Scratch {
    fn new() -> Self {
        Scratch(tempfile::NamedTempFile::new().unwrap())
    }
    fn set(&mut self, bytes: &[u8]) -> &std::path::Path {
        let f = self.0.as_file_mut();
        f.set_len(0).unwrap();
        f.rewind().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        self.0.path()
    }
}

#[test]
fn truncated_at_every_offset() {
    let mut s = Scratch::new();
    for (name, full) in seeds() {
        let header_len = match name {
            "elf" => 64,
            "kdump" => 464,
            "kdump-flat" => 4096 + 16,
            _ => 32,
        };
        // Every offset through the headers, then every 37th byte through the data.
        let cuts = (1..full.len().min(1200)).chain((1200..full.len()).step_by(37));
        for cut in cuts {
            let path = s.set(&full[..cut]).to_path_buf();
            let opened = exercise(&path, FormatChoice::Auto);
            if cut < header_len {
                assert!(!opened, "{name} cut at {cut} opened");
                let e = open_dump(&path, &DumpOptions::default())
                    .unwrap_err()
                    .to_string();
                assert!(
                    e.contains("truncated at offset") || e.contains("unknown format"),
                    "{name} cut at {cut}: {e}"
                );
            }
        }
        assert!(exercise(s.set(&full), FormatChoice::Auto), "{name} whole");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn mutated_headers_never_panic(
        which in 0usize..5,
        edits in prop::collection::vec((0usize..5000, any::<u8>(), any::<bool>()), 1..10),
    ) {
        let (_, mut bytes) = seeds().swap_remove(which);
        for (pos, val, near) in edits {
            let at = if near { pos % 600 } else { pos } % bytes.len();
            bytes[at] = val;
        }
        let mut s = Scratch::new();
        let path = s.set(&bytes).to_path_buf();
        for c in CHOICES {
            exercise(&path, c);
        }
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = corpus_dir();
    if std::env::var_os("MEMLENS_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds() {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with MEMLENS_WRITE_CORPUS=1 to create it)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    assert!(entries.len() >= 5, "corpus has {} files", entries.len());
    let mut opened = 0;
    for p in &entries {
        for c in CHOICES {
            opened += usize::from(exercise(p, c));
        }
    }
    assert!(opened >= 5, "the seeds must open");
}

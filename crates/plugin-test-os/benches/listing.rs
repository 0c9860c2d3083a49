#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items
//! Cost of listings crossing the ABI as JSON: `processes()` of 4096 processes from
//! `testos` linked statically vs loaded from its `cdylib` (both over the same statically
//! linked `testconn` memory, so only the OS boundary differs).
//!
//! `cargo bench -p memlens-plugin-testos --bench listing`

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use memlens_core::Os;
use memlens_plugin::{Builder, Inventory, StaticRegistry};

const N: usize = 4096;

fn image(dir: &std::path::Path) -> PathBuf {
    let mut img = vec![0u8; 16 + N * 48];
    img[..8].copy_from_slice(b"TESTOS01");
    img[8..12].copy_from_slice(&(N as u32).to_le_bytes());
    for i in 0..N {
        let e = 16 + i * 48;
        img[e..e + 4].copy_from_slice(&(i as u32 + 1).to_le_bytes());
        img[e + 4..e + 8].copy_from_slice(&1u32.to_le_bytes());
        let name = format!("proc-{i}");
        img[e + 8..e + 8 + name.len()].copy_from_slice(name.as_bytes());
    }
    let p = dir.join("image.bin");
    std::fs::write(&p, img).unwrap();
    p
}

fn cdylib() -> PathBuf {
    let ws = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .current_dir(&ws)
        .args(["build", "--release", "-p", "memlens-plugin-testos"])
        .status()
        .expect("cargo build");
    assert!(st.success(), "building the testos cdylib failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    target.join("release/libmemlens_plugin_testos.so")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    std::fs::copy(cdylib(), dir.path().join("libmemlens_plugin_testos.so")).unwrap();
    let reg = StaticRegistry::new()
        .with_connector::<memlens_plugin_testconn::TestConn>()
        .with_os::<memlens_plugin_testos::TestOsPlugin>();
    let conn = format!("testconn::file=\"{}\"", img.display());
    let stat: Arc<dyn Os> = Builder::new()
        .registry(&reg)
        .build_cli(&["-c", &conn, "-o", "testos"])
        .unwrap()
        .os()
        .unwrap();
    // Only the connector is static here; testos comes from the file.
    let conn_only = StaticRegistry::new().with_connector::<memlens_plugin_testconn::TestConn>();
    let inv = Inventory::scan_paths(&[dir.path().to_path_buf()]);
    let loaded: Arc<dyn Os> = Builder::new()
        .registry(&conn_only)
        .inventory(&inv)
        .build_cli(&["-c", &conn, "-o", "testos"])
        .unwrap()
        .os()
        .unwrap();
    assert_eq!(loaded.processes().unwrap().len(), N);
    let mut g = c.benchmark_group("processes_4096");
    for (name, os) in [("static", &stat), ("loaded", &loaded)] {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| black_box(os.processes().unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

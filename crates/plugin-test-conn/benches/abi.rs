#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items
//! Cost of the plugin ABI: the same connector (`testconn`) read statically linked (through
//! `Arc<dyn PhysicalMemory>`, as the CLI links plugins) and loaded from its `cdylib`
//! through the inventory, in one run. Budget: the loaded path costs at most 5 % more.
//!
//! `cargo bench -p memlens-plugin-testconn --bench abi`
//! (builds the cdylib first with `cargo build --release -p memlens-plugin-testconn`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memlens_core::{MemoryViewExt, PhysAddr, PhysicalMemory, ReadOp};
use memlens_plugin::{Builder, Inventory, StaticRegistry};
use memlens_plugin_testconn::TestConn;

const SIZE: &str = "16MiB";

fn cdylib() -> PathBuf {
    let ws = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .current_dir(&ws)
        .args(["build", "--release", "-p", "memlens-plugin-testconn"])
        .status()
        .expect("cargo build");
    assert!(st.success(), "building the testconn cdylib failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    target.join("release/libmemlens_plugin_testconn.so")
}

fn memories() -> (
    Arc<dyn PhysicalMemory>,
    Arc<dyn PhysicalMemory>,
    tempfile::TempDir,
) {
    let reg = StaticRegistry::new().with_connector::<TestConn>();
    let spec = format!("testconn::{SIZE}");
    let stat = Builder::new()
        .registry(&reg)
        .build_cli(&["-c", &spec])
        .unwrap()
        .target()
        .unwrap()
        .memory;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(cdylib(), dir.path().join("libmemlens_plugin_testconn.so")).unwrap();
    let inv = Inventory::scan_paths(&[dir.path().to_path_buf()]);
    let loaded = Builder::new()
        .inventory(&inv)
        .build_cli(&["-c", &spec])
        .unwrap()
        .target()
        .unwrap()
        .memory;
    (stat, loaded, dir)
}

fn bench(c: &mut Criterion) {
    let (stat, loaded, _dir) = memories();
    let addrs: Vec<u64> = (0..256u64)
        .map(|i| ((i * 0x1_0001 * 37) % (16 << 20)) & !7)
        .collect();

    let mut g = c.benchmark_group("read_8B_x256");
    g.throughput(Throughput::Elements(256));
    for (name, m) in [("static", &stat), ("loaded", &loaded)] {
        let mut bufs = vec![[0u8; 8]; 256];
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let mut ops: Vec<ReadOp<'_, PhysAddr>> = bufs
                    .iter_mut()
                    .zip(&addrs)
                    .map(|(b, &a)| ReadOp::new(PhysAddr(a), &mut b[..]))
                    .collect();
                m.read_batch(&mut ops);
                black_box(&ops);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("read_4KiB");
    g.throughput(Throughput::Bytes(4096));
    for (name, m) in [("static", &stat), ("loaded", &loaded)] {
        let mut buf = vec![0u8; 4096];
        let mut i = 0u64;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                m.read_into(PhysAddr(i * 4096), &mut buf).unwrap();
                black_box(&buf);
            })
        });
    }
    g.finish();
}

/// Minimum time per call over many short alternating blocks of the two paths: robust to
/// other load on the machine (both paths see the same interference). Printed after the
/// criterion groups.
fn paired(name: &str, mut a: impl FnMut(), mut b: impl FnMut()) {
    let mut best = [f64::MAX; 2];
    for _ in 0..300 {
        for (k, f) in [&mut a as &mut dyn FnMut(), &mut b].into_iter().enumerate() {
            let t = Instant::now();
            for _ in 0..50 {
                f();
            }
            best[k] = best[k].min(t.elapsed().as_nanos() as f64 / 50.0);
        }
    }
    println!(
        "paired {name}: static {:.1} ns, loaded {:.1} ns, loaded overhead {:+.1} %",
        best[0],
        best[1],
        (best[1] / best[0] - 1.0) * 100.0
    );
}

fn bench_paired(_: &mut Criterion) {
    let (stat, loaded, _dir) = memories();
    let addrs: Vec<u64> = (0..256u64)
        .map(|i| ((i * 0x1_0001 * 37) % (16 << 20)) & !7)
        .collect();
    let batch = |m: &Arc<dyn PhysicalMemory>| {
        let m = m.clone();
        let addrs = addrs.clone();
        let mut bufs = vec![[0u8; 8]; 256];
        move || {
            let mut ops: Vec<ReadOp<'_, PhysAddr>> = bufs
                .iter_mut()
                .zip(&addrs)
                .map(|(b, &a)| ReadOp::new(PhysAddr(a), &mut b[..]))
                .collect();
            m.read_batch(&mut ops);
            black_box(&ops);
        }
    };
    paired("read_8B_x256", batch(&stat), batch(&loaded));
    let page = |m: &Arc<dyn PhysicalMemory>| {
        let m = m.clone();
        let mut buf = vec![0u8; 4096];
        let mut i = 0u64;
        move || {
            i = (i + 1) & 1023;
            m.read_into(PhysAddr(i * 4096), &mut buf).unwrap();
            black_box(&buf);
        }
    };
    paired("read_4KiB", page(&stat), page(&loaded));
    // The same adapters without a shared library in between: separates the cost of the
    // wrapper code from the cost of calling into another object file.
    let obj = memlens_plugin::abi::export::export_memory(stat.clone());
    // SAFETY: a fresh object exported in this process.
    let wrapped: Arc<dyn PhysicalMemory> = Arc::new(unsafe {
        memlens_plugin::abi::import::ImportedMemory::<PhysAddr>::new(
            obj,
            memlens_plugin::abi::import::Origin::host("in-process"),
        )
    });
    paired(
        "read_4KiB (in-process adapters)",
        page(&stat),
        page(&wrapped),
    );
}

criterion_group!(benches, bench, bench_paired);
criterion_main!(benches);

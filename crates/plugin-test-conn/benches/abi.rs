#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items
//! Cost of the plugin ABI: the same connector (`testconn`) read statically linked (through
//! `Arc<dyn PhysicalMemory>`, as the CLI links plugins) and loaded from its `cdylib`
//! through the inventory, in one run. Budget: the loaded path costs at most 5 % more.
//!
//! `cargo bench -p memlens-plugin-testconn --bench abi`
//! (builds the cdylib first with `cargo build --release -p memlens-plugin-testconn`).
//! `cargo bench -p memlens-plugin-testconn --bench abi -- paired` runs only the paired
//! measurement (alternating blocks, printed as min and median).
//!
//! **Both paths read into the same destination buffer** (page-aligned), and `testconn`'s
//! buffer starts 64-byte aligned in both instances: the speed of a 4 KiB `memcpy` depends
//! on the relative alignment of source and destination (~17 ns per 4 KiB on the AMD EPYC
//! bench machine when they differ modulo 32), which the first version of this bench
//! measured as "ABI overhead" because each path had its own buffer.

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

/// A page-aligned scratch area shared by every measured path.
struct Scratch {
    raw: Vec<u8>,
    off: usize,
}

impl Scratch {
    fn new(len: usize) -> Self {
        let raw = vec![0u8; len + 4096];
        let off = (4096 - raw.as_ptr() as usize % 4096) % 4096;
        Scratch { raw, off }
    }
    fn get(&mut self, len: usize) -> &mut [u8] {
        &mut self.raw[self.off..self.off + len]
    }
}

fn addrs() -> Vec<u64> {
    (0..256u64)
        .map(|i| ((i * 0x1_0001 * 37) % (16 << 20)) & !7)
        .collect()
}

/// 256 reads of 8 bytes in one batch.
fn read_batch(m: &dyn PhysicalMemory, addrs: &[u64], buf: &mut [u8]) {
    let mut ops: Vec<ReadOp<'_, PhysAddr>> = buf
        .chunks_exact_mut(8)
        .zip(addrs)
        .map(|(b, &a)| ReadOp::new(PhysAddr(a), b))
        .collect();
    m.read_batch(&mut ops);
    black_box(&ops);
}

/// One 4 KiB read of page `i`.
fn read_page(m: &dyn PhysicalMemory, i: u64, buf: &mut [u8]) {
    m.read_into(PhysAddr(i * 4096), buf).unwrap();
    black_box(&buf);
}

fn bench(c: &mut Criterion) {
    let (stat, loaded, _dir) = memories();
    let addrs = addrs();
    let mut scratch = Scratch::new(4096);

    let mut g = c.benchmark_group("read_8B_x256");
    g.throughput(Throughput::Elements(256));
    for (name, m) in [("static", &stat), ("loaded", &loaded)] {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| read_batch(&**m, &addrs, scratch.get(256 * 8)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("read_4KiB");
    g.throughput(Throughput::Bytes(4096));
    for (name, m) in [("static", &stat), ("loaded", &loaded)] {
        let mut i = 0u64;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                read_page(&**m, i, scratch.get(4096))
            })
        });
    }
    g.finish();
}

/// Time per call of each path over many short alternating blocks (both paths see the
/// same interference from other load on the machine): min and median over the blocks.
/// Printed after the criterion groups.
/// One measured path: a label and one call.
type Path<'a> = (&'a str, &'a mut dyn FnMut(&mut Scratch));

fn paired(name: &str, scratch: &mut Scratch, paths: [Path<'_>; 2]) {
    const BLOCKS: usize = 400;
    const CALLS: usize = 50;
    let mut t = [Vec::with_capacity(BLOCKS), Vec::with_capacity(BLOCKS)];
    let [(na, a), (nb, b)] = paths;
    for _ in 0..BLOCKS {
        for (k, f) in [&mut *a, &mut *b].into_iter().enumerate() {
            let start = Instant::now();
            for _ in 0..CALLS {
                f(scratch);
            }
            t[k].push(start.elapsed().as_nanos() as f64 / CALLS as f64);
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    let (amin, amed) = stats(&mut t[0]);
    let (bmin, bmed) = stats(&mut t[1]);
    println!(
        "paired {name}: {na} min {amin:.1} / median {amed:.1} ns, {nb} min {bmin:.1} / \
         median {bmed:.1} ns, {nb} overhead min {:+.1} % / median {:+.1} %",
        (bmin / amin - 1.0) * 100.0,
        (bmed / amed - 1.0) * 100.0
    );
}

fn bench_paired(c: &mut Criterion) {
    // Runs unless a filter excludes "paired" (criterion's own filter does not reach here).
    if let Some(f) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        if !"paired".contains(f.as_str()) && !f.contains("paired") {
            return;
        }
    }
    let _ = c;
    let (stat, loaded, _dir) = memories();
    let addrs = addrs();
    let mut scratch = Scratch::new(4096);
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
    let batch = |m: &Arc<dyn PhysicalMemory>| {
        let (m, addrs) = (m.clone(), addrs.clone());
        move |s: &mut Scratch| read_batch(&*m, &addrs, s.get(256 * 8))
    };
    // Each path starts at its own page (`first`): when two paths read the same buffer
    // (the controls below), the second must not find the first's pages still in cache.
    let page = |m: &Arc<dyn PhysicalMemory>, first: u64| {
        let m = m.clone();
        let mut i = first;
        move |s: &mut Scratch| {
            i = (i + 1) & 1023;
            read_page(&*m, i, s.get(4096))
        }
    };
    for _ in 0..3 {
        paired(
            "read_8B_x256",
            &mut scratch,
            [
                ("static", &mut batch(&stat)),
                ("loaded", &mut batch(&loaded)),
            ],
        );
        paired(
            "read_4KiB",
            &mut scratch,
            [
                ("static", &mut page(&stat, 0)),
                ("loaded", &mut page(&loaded, 0)),
            ],
        );
        // Controls: the method's own bias (one static object measured as two paths), and
        // the adapters without a shared library in between.
        paired(
            "read_4KiB control",
            &mut scratch,
            [
                ("static", &mut page(&stat, 0)),
                ("static again", &mut page(&stat, 512)),
            ],
        );
        paired(
            "read_4KiB",
            &mut scratch,
            [
                ("static", &mut page(&stat, 0)),
                ("in-process adapters", &mut page(&wrapped, 512)),
            ],
        );
        paired(
            "read_8B_x256",
            &mut scratch,
            [
                ("static", &mut batch(&stat)),
                ("in-process adapters", &mut batch(&wrapped)),
            ],
        );
    }
}

criterion_group!(benches, bench, bench_paired);
criterion_main!(benches);

//! Read throughput of every reader on the lab's 4 GiB guest (`x86_64-4g`), one core:
//! - `u64x256/{raw,elf,kdump}`: batches of 256 random 8-byte reads in the first GiB of RAM
//!   (the files are in the page cache after the first pass);
//! - `page4k/{kdump,kdump-flat}/{warm,cold}`: random 4 KiB page reads, with the
//!   decompressed-page cache holding the working set (warm) or disabled (cold: every read
//!   inflates its page);
//! - `open/kdump-flat`: opening the flattened dump (indexing its records).
//!
//! `cargo bench -p memlens-connector-file --bench read`

#![allow(missing_docs)] // reason: criterion_group! generates an undocumented fn

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memlens_connector_file::{open_dump, Dump, DumpOptions};
use memlens_core::{MemoryView, PhysAddr, ReadOp};

fn addrs(n: usize, span: u64, align: u64, seed: u64) -> Vec<u64> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Skip the legacy hole below 1 MiB; stay below `span`.
            (0x10_0000 + s % (span - 0x10_0000 - 8192)) & !(align - 1)
        })
        .collect()
}

fn read_batches(d: &Dump, addrs: &[u64], len: usize, buf: &mut [u8]) {
    for chunk in addrs.chunks(256) {
        let mut ops: Vec<ReadOp<'_, PhysAddr>> = chunk
            .iter()
            .zip(buf.chunks_mut(len))
            .map(|(a, b)| ReadOp::new(PhysAddr(*a), b))
            .collect();
        d.read_batch(&mut ops);
        for op in &ops {
            assert!(op.result.is_ok());
        }
    }
}

fn benches(c: &mut Criterion) {
    let lab = testlab::require("x86_64-4g");
    let open = |p: &std::path::Path, cache: u64| {
        open_dump(
            p,
            &DumpOptions {
                cache_bytes: cache,
                ..DumpOptions::default()
            },
        )
        .unwrap()
    };
    let gib = 1u64 << 30;

    let mut g = c.benchmark_group("u64x256");
    g.throughput(Throughput::Elements(256));
    let a = addrs(1 << 16, gib, 8, 1);
    let mut buf = vec![0u8; 8 * 256];
    for (name, path) in [("raw", &lab.raw), ("elf", &lab.elf), ("kdump", &lab.kdump)] {
        let d = open(path, 256 << 20);
        read_batches(&d, &a, 8, &mut vec![0u8; 8 * 256]); // warm the page cache
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let s = (i * 256) % a.len();
                i += 1;
                read_batches(&d, &a[s..s + 256], 8, &mut buf);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("page4k");
    let batch = 64usize;
    g.throughput(Throughput::Bytes(4096 * batch as u64));
    let mut buf = vec![0u8; 4096 * batch];
    for (name, path) in [("kdump", &lab.kdump), ("kdump-flat", &lab.kdump_flat)] {
        // Warm: 8192 distinct pages (32 MiB) with a 64 MiB cache, pre-filled.
        let warm_set = addrs(8192, gib, 4096, 2);
        let d = open(path, 64 << 20);
        read_batches(&d, &warm_set, 4096, &mut vec![0u8; 4096 * 256]);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new(name, "warm"), |b| {
            b.iter(|| {
                let s = (i * batch) % warm_set.len();
                i += 1;
                read_batches(&d, &warm_set[s..s + batch], 4096, &mut buf);
            })
        });
        // Cold: no decompressed-page cache; every read inflates its page.
        let cold_set = addrs(1 << 16, 4 * gib - 0x4000_0000, 4096, 3);
        let d = open(path, 0);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new(name, "cold"), |b| {
            b.iter(|| {
                let s = (i * batch) % cold_set.len();
                i += 1;
                read_batches(&d, &cold_set[s..s + batch], 4096, &mut buf);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("open");
    g.sample_size(10);
    g.bench_function("kdump-flat", |b| b.iter(|| open(&lab.kdump_flat, 64 << 20)));
    g.bench_function("elf", |b| b.iter(|| open(&lab.elf, 64 << 20)));
    g.finish();
}

criterion_group! {
    name = read;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(read);

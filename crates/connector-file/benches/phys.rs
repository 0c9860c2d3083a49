//! The `memlens bench phys` matrix under criterion: random size-aligned reads of 8 B,
//! 256 B, 4 KiB and 64 KiB in batches of 1, 16 and 256 from a raw image, each next to
//! its memcpy ceiling (the same copies from an in-memory buffer of the same span).
//!
//! The image is a 1 GiB sparse-free file of pseudo-random bytes written once to
//! `target/bench-phys-1g.raw` (kept between runs) and read once so it sits in the page
//! cache. `cargo bench -p memlens-connector-file --bench phys`

#![allow(missing_docs)] // reason: criterion_group! generates an undocumented fn

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memlens_connector_file::{open_dump, DumpOptions};
use memlens_core::{MemoryView, PhysAddr, ReadOp};

const SPAN: u64 = 1 << 30;

fn image() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let p = dir.join("bench-phys-1g.raw");
    if std::fs::metadata(&p).map(|m| m.len()).ok() != Some(SPAN) {
        let tmp = dir.join("bench-phys-1g.raw.tmp");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create image"));
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..SPAN >> 20 {
            for w in chunk.chunks_mut(8) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                w.copy_from_slice(&s.to_le_bytes());
            }
            f.write_all(&chunk).expect("write image");
        }
        f.flush().expect("flush image");
        drop(f);
        std::fs::rename(&tmp, &p).expect("rename image");
    }
    // Warm the page cache.
    let _ = std::fs::read(&p).map(|v| std::hint::black_box(v.len()));
    p
}

fn offsets(n: usize, size: u64, seed: u64) -> Vec<u64> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % (SPAN / size)) * size
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let path = image();
    let dump = open_dump(&path, &DumpOptions::default()).expect("open image");
    let ceiling = std::fs::read(&path).expect("read image into memory");
    for size in [8usize, 256, 4096, 65536] {
        let addrs = offsets(1 << 14, size as u64, 7);
        let mut g = c.benchmark_group(format!("phys/{size}B"));
        g.warm_up_time(Duration::from_millis(300));
        g.measurement_time(Duration::from_secs(1));
        for batch in [1usize, 16, 256] {
            g.throughput(Throughput::Bytes((size * batch) as u64));
            let mut slab = vec![0u8; size * batch];
            let mut pos = 0usize;
            g.bench_with_input(BenchmarkId::new("raw", batch), &batch, |b, &batch| {
                b.iter(|| {
                    if pos + batch > addrs.len() {
                        pos = 0;
                    }
                    let mut ops: Vec<ReadOp<'_, PhysAddr>> = slab
                        .chunks_mut(size)
                        .zip(&addrs[pos..pos + batch])
                        .map(|(buf, a)| ReadOp::new(PhysAddr(*a), buf))
                        .collect();
                    dump.read_batch(&mut ops);
                    assert!(ops.iter().all(|o| o.result.is_ok()));
                    pos += batch;
                })
            });
            let mut pos = 0usize;
            g.bench_with_input(BenchmarkId::new("memcpy", batch), &batch, |b, &batch| {
                b.iter(|| {
                    if pos + batch > addrs.len() {
                        pos = 0;
                    }
                    for (dst, a) in slab.chunks_mut(size).zip(&addrs[pos..pos + batch]) {
                        let a = *a as usize;
                        dst.copy_from_slice(&ceiling[a..a + size]);
                    }
                    std::hint::black_box(&slab);
                    pos += batch;
                })
            });
        }
        g.finish();
    }
}

criterion_group!(phys, benches);
criterion_main!(phys);

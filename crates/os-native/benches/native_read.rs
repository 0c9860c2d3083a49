//! Process memory read throughput through `process_vm_readv`: 1 MiB reads, and 8-byte
//! random reads in batches of 256 (one vectored call per batch).
//!
//! The target is this process itself (pid = own pid): the kernel takes the same
//! cross-process path (page pinning of the "remote" mm) as for any other process.
//! Run: `cargo bench -p memlens-os-native --bench native_read`.

#![allow(missing_docs)] // reason: criterion_group! generates an undocumented function.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memlens_core::{MemoryView, ReadOp, VirtAddr};
use memlens_os_native::ProcessMemory;

const SPAN: usize = 256 << 20;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn bench(c: &mut Criterion) {
    let target: Vec<u8> = (0..SPAN).map(|i| i as u8).collect();
    let base = target.as_ptr() as u64;
    let mem = ProcessMemory::new(std::process::id(), false);

    let mut g = c.benchmark_group("native");
    g.throughput(Throughput::Bytes(1 << 20));
    let mut buf = vec![0u8; 1 << 20];
    let mut seed = 1u64;
    g.bench_function("read_1MiB", |b| {
        b.iter(|| {
            let off = (xorshift(&mut seed) % (SPAN as u64 - (1 << 20))) & !0xfff;
            let mut ops = [ReadOp::new(VirtAddr(base + off), &mut buf[..])];
            mem.read_batch(&mut ops);
            assert!(ops[0].result.is_ok());
        })
    });

    // The ceiling on this machine: the same copies done with memcpy in-process.
    g.bench_function("memcpy_1MiB_ceiling", |b| {
        b.iter(|| {
            let off = (xorshift(&mut seed) % (SPAN as u64 - (1 << 20))) & !0xfff;
            buf.copy_from_slice(&target[off as usize..off as usize + (1 << 20)]);
        })
    });

    g.throughput(Throughput::Elements(256));
    let mut bufs = vec![[0u8; 8]; 256];
    g.bench_function("read_8B_x256", |b| {
        b.iter(|| {
            let mut ops: Vec<ReadOp<'_, VirtAddr>> = bufs
                .iter_mut()
                .map(|x| {
                    let off = (xorshift(&mut seed) % (SPAN as u64 - 8)) & !7;
                    ReadOp::new(VirtAddr(base + off), x.as_mut_slice())
                })
                .collect();
            mem.read_batch(&mut ops);
            assert!(ops.iter().all(|o| o.result.is_ok()));
        })
    });
    g.finish();
    drop(target);
}

criterion_group!(benches, bench);
criterion_main!(benches);

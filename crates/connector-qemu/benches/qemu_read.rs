//! Live QEMU guest-physical read throughput: 1 MiB reads and 8-byte random reads in
//! batches of 256, through the process view (`process_vm_readv`, QEMU's default private
//! RAM) and through the direct mapping (a `memory-backend-memfd` guest).
//!
//! The QEMU processes run only their firmware (the reading path does not depend on the
//! guest OS); their 256 MiB of RAM is first filled through the connector so that every
//! page is populated. Run: `cargo bench -p memlens-connector-qemu --bench qemu_read`.

#![allow(missing_docs)] // reason: criterion_group! generates an undocumented function.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memlens_connector_qemu::{QemuArgs, QemuConnector, QemuMemory};
use memlens_core::{MemoryView, MemoryWriteExt, PhysAddr, ReadOp};
use memlens_os_native::{NativeOptions, NativeOs};

const RAM: u64 = 256 << 20;

struct Vm(Child);
impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(name: &str, extra: &[&str]) -> Vm {
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-name", name, "-accel", "tcg", "-m", "256M", "-display", "none",
        ])
        .args(["-monitor", "none", "-serial", "none", "-nic", "none"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 (apt-get install qemu-system-x86)");
    std::thread::sleep(Duration::from_secs(2));
    Vm(child)
}

fn connect(name: &str) -> Arc<QemuMemory> {
    let os = Arc::new(NativeOs::open(NativeOptions { allow_write: true }).expect("native"));
    let c = QemuConnector::open(os, &QemuArgs::parse(&format!("{name},writable")).unwrap())
        .expect("connect");
    let mem = c.memory();
    // Populate every page of low RAM above 1 MiB.
    let block = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    for mib in 1..(RAM >> 20) {
        mem.write_all_at(PhysAddr(mib << 20), &block).expect("fill");
    }
    eprintln!("filled {name} in {:?}", t.elapsed());
    mem
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn run(c: &mut Criterion, group: &str, mem: &QemuMemory) {
    let lo = 1u64 << 20;
    let span = RAM - lo - (1 << 20);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(1 << 20));
    let mut buf = vec![0u8; 1 << 20];
    let mut seed = 7u64;
    g.bench_function("read_1MiB", |b| {
        b.iter(|| {
            let a = lo + ((xorshift(&mut seed) % span) & !0xfff);
            let mut ops = [ReadOp::new(PhysAddr(a), &mut buf[..])];
            mem.read_batch(&mut ops);
            assert!(ops[0].result.is_ok());
        })
    });
    g.throughput(Throughput::Elements(256));
    let mut bufs = vec![[0u8; 8]; 256];
    g.bench_function("read_8B_x256", |b| {
        b.iter(|| {
            let mut ops: Vec<ReadOp<'_, PhysAddr>> = bufs
                .iter_mut()
                .map(|x| {
                    let a = lo + ((xorshift(&mut seed) % span) & !7);
                    ReadOp::new(PhysAddr(a), x.as_mut_slice())
                })
                .collect();
            mem.read_batch(&mut ops);
            assert!(ops.iter().all(|o| o.result.is_ok()));
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let pid = std::process::id();
    let private = format!("memlens-bench-private-{pid}");
    let _a = start(&private, &[]);
    let mem = connect(&private);
    assert!(!mem.is_direct());
    run(c, "qemu_process_view", &mem);

    let memfd = format!("memlens-bench-memfd-{pid}");
    let _b = start(
        &memfd,
        &[
            "-machine",
            "pc,memory-backend=m0",
            "-object",
            "memory-backend-memfd,id=m0,size=256M,share=on",
        ],
    );
    let mem = connect(&memfd);
    assert!(mem.is_direct());
    run(c, "qemu_direct_memfd", &mem);
}

criterion_group!(benches, bench);
criterion_main!(benches);

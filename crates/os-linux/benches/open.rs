//! Cold open → complete process list, and one process's maps, on the lab's raw dumps:
//! `cargo bench -p memlens-os-linux --bench open`. "Cold" means a fresh `RawFile` and a
//! fresh plugin each iteration (nothing cached in memlens; the host's page cache is warm).

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use memlens_core::{Os, PhysicalTarget, TargetInfo};
use memlens_os_linux::{LinuxOptions, LinuxOs};

fn open(path: &std::path::Path) -> LinuxOs {
    let mem = memlens_connector_file::RawFile::open(path).expect("raw dump");
    let t = PhysicalTarget::from_memory(Arc::new(mem), TargetInfo::default());
    LinuxOs::open(t, LinuxOptions::default()).expect("linux")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("linux");
    g.sample_size(10);
    for name in [
        "x86_64-4g",
        "x86_64-kaslr",
        "x86_64-la57",
        "x86_64-6.12",
        "arm64",
    ] {
        let s = testlab::require(name);
        g.bench_function(format!("open+ps/{name}"), |b| {
            b.iter(|| open(&s.raw).processes().expect("ps").len())
        });
        let os = open(&s.raw);
        let p = os.process(s.truth.guest.marker.pid).expect("marker");
        g.bench_function(format!("maps/{name}"), |b| {
            b.iter(|| p.maps().expect("maps").len())
        });
        let t = &os.linux_info().timings;
        eprintln!("{name}: stages {t:?}");
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

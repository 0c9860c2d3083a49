//! Criterion benches on a real lab dump (`x86_64-4g` if built, else `x86_64-kaslr`):
//! whole kernel page map, batched translation with the TLB cold and warm, and 8-byte
//! virtual reads in batches of 256 over both halves.
//!
//! `cargo bench -p memlens-arch --bench walk`
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use memlens_arch::bench::{AddressSampler, SplitMix64};
use memlens_arch::walker::unset;
use memlens_arch::{page_map, translate_batch, Mmu, PageMapOptions, Roots, TlbConfig, VirtualView};
use memlens_connector_file::MappedFile;
use memlens_core::cpu::X86Registers;
use memlens_core::{CpuRegisters, MemoryView, PhysAddr, ReadOp, VirtAddr};

struct Target {
    name: &'static str,
    mem: MappedFile,
    kernel: Roots,
    user_mmu: Mmu,
    user: Roots,
}

fn target() -> Target {
    let s = match testlab::Scenario::load_cached("x86_64-4g") {
        Some(s) => s,
        None => testlab::require("x86_64-kaslr"),
    };
    let mem = MappedFile::open(&s.raw).expect("raw dump");
    let pgd = s
        .truth
        .monitor
        .translated("kallsyms init_top_pgt")
        .expect("init_top_pgt pair in truth.json");
    let cpu = &s.truth.monitor.cpus[s.truth.monitor.marker_cpu.unwrap_or(0) as usize];
    let regs = CpuRegisters::X86(X86Registers {
        cr3: cpu.get("CR3").expect("CR3"),
        cr4: cpu.get("CR4").expect("CR4"),
        ..Default::default()
    });
    let (user_mmu, user) = Mmu::from_registers(&regs).expect("registers");
    Target {
        name: s.spec.name,
        mem,
        kernel: Roots::single(PhysAddr(pgd)),
        user_mmu,
        user,
    }
}

fn random_mapped(mem: &MappedFile, mmu: &Mmu, roots: &Roots, n: usize, size: u64) -> Vec<VirtAddr> {
    let pm = page_map(mem, mmu, roots, &PageMapOptions::default());
    let s = AddressSampler::new(&pm.ranges, size).expect("mapped ranges");
    let mut rng = SplitMix64::new(7);
    (0..n).map(|k| s.pick(&mut rng, k)).collect()
}

fn benches(c: &mut Criterion) {
    let t = target();
    let mmu = Mmu::x86_64();
    eprintln!("bench target: {} (kernel root {})", t.name, t.kernel.lower);

    let mut g = c.benchmark_group("page_map");
    g.bench_function(format!("{}/kernel_root", t.name), |b| {
        b.iter(|| {
            black_box(page_map(
                &t.mem,
                &mmu,
                &t.kernel,
                &PageMapOptions::default(),
            ))
        })
    });
    g.finish();

    let vas = random_mapped(&t.mem, &mmu, &t.kernel, 4096, 1);
    let mut g = c.benchmark_group("translate");
    g.throughput(Throughput::Elements(vas.len() as u64));
    let mut out: Vec<_> = (0..vas.len()).map(|_| unset()).collect();
    g.bench_function("4096_random/walker_tlb_cold", |b| {
        b.iter(|| translate_batch(&t.mem, &mmu, &t.kernel, &vas, &mut out))
    });
    let view = VirtualView::new(&t.mem, mmu, t.kernel).with_tlb(TlbConfig::default());
    g.bench_function("4096_random/view_tlb_cold", |b| {
        b.iter_batched(
            || view.tlb().expect("tlb").flush(),
            |_| view.translate_batch(&vas, &mut out),
            BatchSize::PerIteration,
        )
    });
    view.translate_batch(&vas, &mut out);
    g.bench_function("4096_random/view_tlb_warm", |b| {
        b.iter(|| view.translate_batch(&vas, &mut out))
    });
    g.finish();

    // Virtual reads over both halves: the marker's CR3 maps its user half and the kernel.
    let uview = VirtualView::new(&t.mem, t.user_mmu, t.user).with_tlb(TlbConfig::default());
    let rvas = random_mapped(&t.mem, &t.user_mmu, &t.user, 1 << 16, 8);
    let mut g = c.benchmark_group("virt_read");
    g.throughput(Throughput::Elements(256));
    let mut bufs = vec![0u8; 8 * 256];
    let mut k = 0usize;
    g.bench_function("8B_x256_both_halves", |b| {
        b.iter(|| {
            let base = k % (rvas.len() - 256);
            k = k.wrapping_add(256);
            let mut ops: Vec<ReadOp<'_, VirtAddr>> = bufs
                .chunks_mut(8)
                .zip(&rvas[base..base + 256])
                .map(|(b, a)| ReadOp::new(*a, b))
                .collect();
            uview.read_batch(&mut ops);
            black_box(ops.iter().filter(|o| o.result.is_err()).count())
        })
    });
    g.finish();
}

criterion_group!(walk, benches);
criterion_main!(walk);

//! Runs the `memlens bench` functions on a lab dump (`x86_64-4g` if built, else
//! `x86_64-kaslr`) and prints human and JSON results:
//!
//! `cargo run --release -p memlens-arch --example lab_bench`

use std::time::Duration;

use memlens_arch::bench::{bench_translate, bench_virt, bench_walk, VirtBenchConfig};
use memlens_arch::{Mmu, Roots, TlbConfig, VirtualView};
use memlens_connector_file::MappedFile;
use memlens_core::cpu::X86Registers;
use memlens_core::{CpuRegisters, PhysAddr};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = match testlab::Scenario::load_cached("x86_64-4g") {
        Some(s) => s,
        None => testlab::scenario("x86_64-kaslr")?,
    };
    let mem = MappedFile::open(&s.raw)?;
    let pgd = s
        .truth
        .monitor
        .translated("kallsyms init_top_pgt")
        .ok_or("no init_top_pgt pair")?;
    let kernel = Roots::single(PhysAddr(pgd));
    let mmu = Mmu::x86_64();
    println!("scenario {} ({} MiB)", s.spec.name, s.spec.memory_mib);

    let walk = bench_walk(&mem, &mmu, &kernel, 21);
    println!("{walk}");

    let view = VirtualView::new(&mem, mmu, kernel).with_tlb(TlbConfig::default());
    let tr = bench_translate(&view, 4096, 101, 1)?;
    println!("{tr}");

    let cpu = &s.truth.monitor.cpus[s.truth.monitor.marker_cpu.unwrap_or(0) as usize];
    let regs = CpuRegisters::X86(X86Registers {
        cr3: cpu.get("CR3").ok_or("CR3")?,
        cr4: cpu.get("CR4").ok_or("CR4")?,
        ..Default::default()
    });
    let (ummu, uroots) = Mmu::from_registers(&regs)?;
    let uview = VirtualView::new(&mem, ummu, uroots).with_tlb(TlbConfig::default());
    let virt = bench_virt(
        &uview,
        &VirtBenchConfig {
            time_per_case: Duration::from_millis(400),
            ..Default::default()
        },
    )?;
    println!("{virt}");
    println!(
        "{}",
        serde_json::to_string(&serde_json::json!({"walk": walk, "translate": tr, "virt": virt}))?
    );
    Ok(())
}

//! Prints per-stage timings of opening a raw dump and listing its processes:
//! `cargo run --release -p memlens-os-linux --example timings -- DUMP`.

use std::sync::Arc;
use std::time::Instant;

use memlens_core::{Os, PhysicalTarget, TargetInfo};
use memlens_os_linux::{LinuxOptions, LinuxOs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: timings DUMP")?;
    let t = Instant::now();
    let mem = memlens_connector_file::RawFile::open(&path)?;
    let target = PhysicalTarget::from_memory(Arc::new(mem), TargetInfo::default());
    let os = LinuxOs::open(target, LinuxOptions::default())?;
    let opened = t.elapsed();
    let ps = os.processes()?;
    let total = t.elapsed();
    let i = os.linux_info();
    println!(
        "kernel {:?}: _text at {} ({}-level, kaslr {:#x})",
        i.release, i.text_phys, i.levels, i.kaslr_virtual
    );
    for (stage, d) in &i.timings {
        println!("{stage:>10}: {:8.3} ms", d.as_secs_f64() * 1e3);
    }
    println!("      open: {:8.3} ms", opened.as_secs_f64() * 1e3);
    println!(
        "open + ps: {:8.3} ms ({} processes)",
        total.as_secs_f64() * 1e3,
        ps.len()
    );
    let pid = ps
        .iter()
        .rev()
        .find(|p| !p.kernel_thread)
        .map(|p| p.pid)
        .ok_or("no user process")?;
    let p = os.process(pid)?;
    let t = Instant::now();
    let maps = p.maps()?;
    println!(
        "maps of {pid}: {:8.3} ms ({} maps)",
        t.elapsed().as_secs_f64() * 1e3,
        maps.len()
    );
    Ok(())
}

//! `memlens info [TARGET]`: what the target is — format, size, physical ranges, registers'
//! roots, kernel notes — and, when an OS is found in it, what the OS plugin learned
//! (kernel release, paging mode, KASLR offsets, symbol source). Without a target: the host.

use memlens::core::size::format_size_approx;
use memlens::core::{CpuRegisters, MemRange, OsInfo, PhysAddr, TargetInfo};
use serde::Serialize;

use crate::exit::CliError;
use crate::target::TargetArgs;

/// Arguments of `info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The JSON document of `info`.
#[derive(Serialize)]
struct Info {
    target: Option<PhysicalInfo>,
    os: Option<OsInfo>,
    os_error: Option<String>,
}

#[derive(Serialize)]
struct PhysicalInfo {
    #[serde(flatten)]
    info: TargetInfo,
    max_addr: PhysAddr,
    real_size: u64,
    readonly: bool,
    ranges: Vec<MemRange<PhysAddr>>,
    cpus: Vec<CpuRegisters>,
}

/// Runs `info`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let doc = if a.target.path.is_none() && a.target.chain.is_empty() {
        let os = crate::target::open_os(&a.target, metrics)?;
        Info {
            target: None,
            os: Some(os.info()),
            os_error: None,
        }
    } else {
        let t = crate::target::open_physical(&a.target, metrics)?;
        let md = t.memory.metadata();
        let cpus = match &t.cpu {
            Some(c) => (0..c.cpu_count())
                .filter_map(|i| c.registers(i).ok())
                .collect(),
            None => Vec::new(),
        };
        let phys = PhysicalInfo {
            info: t.info.clone(),
            max_addr: md.max_addr,
            real_size: md.real_size,
            readonly: md.readonly,
            ranges: t.memory.ranges(),
            cpus,
        };
        let (os, os_error) = match crate::plugins::detect_os(t) {
            Ok(os) => (Some(os.info()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Info {
            target: Some(phys),
            os,
            os_error,
        }
    };
    if a.json {
        return crate::output::print_json(&doc);
    }
    if let Some(p) = &doc.target {
        print_physical(p);
    }
    match (&doc.os, &doc.os_error) {
        (Some(os), _) => {
            println!("os         {}", os.plugin);
            if let Some(r) = &os.release {
                println!("release    {r}");
            }
            if let Some(arch) = os.arch {
                println!("arch       {arch}");
            }
            for (k, v) in &os.details {
                println!("{k:<10} {v}");
            }
        }
        (None, Some(e)) => println!("os         none found ({e})"),
        (None, None) => {}
    }
    Ok(())
}

fn print_physical(p: &PhysicalInfo) {
    println!("connector  {}", p.info.connector);
    match &p.info.version {
        Some(v) => println!("format     {} ({v})", p.info.format),
        None => println!("format     {}", p.info.format),
    }
    println!(
        "size       {} ({} bytes)",
        format_size_approx(p.real_size),
        p.real_size
    );
    println!("highest    {}", p.max_addr);
    println!("writable   {}", if p.readonly { "no" } else { "yes" });
    for (k, v) in &p.info.details {
        println!("{k:<10} {v}");
    }
    for (i, c) in p.cpus.iter().enumerate() {
        match c {
            CpuRegisters::X86(r) => println!(
                "cpu {i:<6} cr3={:#x} cr4={:#x}{} rip={:#x}",
                r.cr3,
                r.cr4,
                if r.la57() { " (5-level)" } else { "" },
                r.rip
            ),
            CpuRegisters::Aarch64(r) => println!(
                "cpu {i:<6} ttbr0={} ttbr1={} pc={:#x}",
                r.ttbr0.map_or("?".into(), |v| format!("{v:#x}")),
                r.ttbr1.map_or("?".into(), |v| format!("{v:#x}")),
                r.pc
            ),
            _ => println!("cpu {i:<6} (registers of an unknown architecture)"),
        }
    }
    if let Some(v) = &p.info.vmcoreinfo {
        for key in [
            "OSRELEASE",
            "KERNELOFFSET",
            "NUMBER(phys_base)",
            "SYMBOL(swapper_pg_dir)",
        ] {
            if let Some(val) = v.get(key) {
                println!("vmcoreinfo {key}={val}");
            }
        }
        println!("vmcoreinfo ({} keys; --json shows all)", v.len());
    }
    println!("ranges     {}", p.ranges.len());
    const SHOWN: usize = 32;
    for r in p.ranges.iter().take(SHOWN) {
        println!(
            "  {:#018x}-{:#018x}  {}",
            r.base.0,
            r.end_u64().saturating_sub(1),
            format_size_approx(r.len)
        );
    }
    if p.ranges.len() > SHOWN {
        println!("  … {} more (--json lists all)", p.ranges.len() - SHOWN);
    }
}

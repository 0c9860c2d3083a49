//! `memlens info TARGET`: what the target is — format, size, physical ranges, notes.

use std::path::PathBuf;

use memlens::core::size::format_size_approx;
use memlens::core::{MemRange, PhysAddr};
use serde::Serialize;

use crate::exit::CliError;

/// Arguments of `info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Path to a memory image.
    target: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Info {
    connector: String,
    format: String,
    version: Option<String>,
    max_addr: PhysAddr,
    real_size: u64,
    readonly: bool,
    ranges: Vec<MemRange<PhysAddr>>,
    details: Vec<(String, String)>,
}

/// Runs `info`.
pub fn run(a: Args) -> Result<(), CliError> {
    let t = crate::target::open_path(&a.target)?;
    let md = t.memory.metadata();
    let info = Info {
        connector: t.info.connector.clone(),
        format: t.info.format.clone(),
        version: t.info.version.clone(),
        max_addr: md.max_addr,
        real_size: md.real_size,
        readonly: md.readonly,
        ranges: t.memory.ranges(),
        details: t.info.details.clone(),
    };
    if a.json {
        return crate::output::print_json(&info);
    }
    println!("connector  {}", info.connector);
    match &info.version {
        Some(v) => println!("format     {} ({v})", info.format),
        None => println!("format     {}", info.format),
    }
    println!(
        "size       {} ({} bytes)",
        format_size_approx(info.real_size),
        info.real_size
    );
    println!("highest    {}", info.max_addr);
    println!("writable   {}", if info.readonly { "no" } else { "yes" });
    for (k, v) in &info.details {
        println!("{k:<10} {v}");
    }
    println!("ranges     {}", info.ranges.len());
    for r in &info.ranges {
        println!(
            "  {:#018x}-{:#018x}  {}",
            r.base.0,
            r.end_u64().saturating_sub(1),
            format_size_approx(r.len)
        );
    }
    Ok(())
}

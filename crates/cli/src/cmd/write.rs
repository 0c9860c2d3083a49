//! `memlens write [TARGET] ADDR HEX --allow-write`: write bytes into physical memory (a raw
//! image opened writable) or into a process (`-p`). **Nothing is ever written without
//! `--allow-write`**: the flag is checked before the target is opened.

use std::path::PathBuf;

use memlens::core::{MemoryWriteExt, PhysAddr, VirtAddr};

use crate::exit::CliError;

/// Arguments of `write`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// [TARGET] ADDR HEX: an optional dump file (raw images only), the address (physical,
    /// or virtual with -p) and the bytes as hex ("de ad be ef").
    #[arg(value_name = "ARGS", num_args = 2..=3, required = true)]
    positional: Vec<String>,
    #[command(flatten)]
    chain: crate::target::ChainArgs,
    /// Write into the virtual memory of this process.
    #[arg(short, long)]
    pid: Option<u32>,
    /// Really write. Without it the command refuses.
    #[arg(long)]
    allow_write: bool,
}

/// Runs `write`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let (path, addr_s, hex) = match a.positional.as_slice() {
        [addr, hex] => (None, addr, hex),
        [path, addr, hex] => (Some(PathBuf::from(path)), addr, hex),
        _ => return Err(CliError::usage("expected [TARGET] ADDR HEX", None)),
    };
    let addr = memlens::core::addr::parse_u64(addr_s)
        .map_err(|e| CliError::usage(format!("bad address: {e}"), None))?;
    let bytes = crate::cmd::search::parse_hex(hex).ok_or_else(|| {
        CliError::usage(
            format!("'{hex}' is not hex bytes"),
            Some("e.g. \"de ad be ef\""),
        )
    })?;
    if !a.allow_write {
        return Err(CliError::usage(
            "refusing to write without --allow-write",
            Some("memlens never modifies a target unless asked: add --allow-write"),
        ));
    }
    let mut sel = a.chain.with_path(path);
    sel.allow_write = true;
    match a.pid {
        Some(pid) => {
            let os = crate::target::open_os(&sel, metrics)?;
            let p = os.process(pid).map_err(CliError::target)?;
            let w = p.writer().ok_or_else(|| {
                CliError::target(anyhow::anyhow!(
                    "process {pid} cannot be written through this OS plugin"
                ))
            })?;
            w.write_all_at(VirtAddr(addr), &bytes)
                .map_err(CliError::target)?;
        }
        None => {
            let t = crate::target::open_physical(&sel, metrics)?;
            let w = t.writer.ok_or_else(|| {
                CliError::target(anyhow::anyhow!(
                    "this target cannot be written (only raw images and live targets opened writable can)"
                ))
            })?;
            w.write_all_at(PhysAddr(addr), &bytes)
                .map_err(CliError::target)?;
        }
    }
    eprintln!("wrote {} bytes at {addr:#x}", bytes.len());
    Ok(())
}

//! `memlens read TARGET ADDR LEN`: a hexdump of physical memory, or the raw bytes with
//! `--out`. Unreadable bytes print as `??` (zeros in `--out`), and the command then fails
//! with a message naming the first unreadable address.

use std::io::Write;
use std::path::PathBuf;

use memlens::core::size::parse_size;
use memlens::core::{Error, MemoryViewExt, PhysAddr};

use crate::exit::CliError;

/// Arguments of `read`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Path to a memory image.
    target: PathBuf,
    /// Physical address (0x-hex or decimal).
    addr: String,
    /// Length (decimal, hex, or with a unit: 4k, 1MiB).
    len: String,
    /// Write the raw bytes to this file instead of printing a hexdump.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

const CHUNK: usize = 1 << 20;

/// Runs `read`.
pub fn run(a: Args) -> Result<(), CliError> {
    let addr: PhysAddr = a.addr.parse().map_err(|e: memlens::core::ParseError| {
        CliError::usage(
            format!("bad address: {e}"),
            Some("addresses look like 0x1000 or 4096"),
        )
    })?;
    let len = parse_size(&a.len).map_err(|e| CliError::usage(format!("bad length: {e}"), None))?;
    if len == 0 {
        return Err(CliError::usage("length must be greater than 0", None));
    }
    if addr.0.checked_add(len - 1).is_none() {
        return Err(CliError::usage(
            format!("{addr} + {len:#x} runs past the end of the 64-bit address space"),
            None,
        ));
    }
    let t = crate::target::open_path(&a.target)?;
    let mut sink: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| CliError::target(anyhow::anyhow!("cannot create {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut first_error: Option<(PhysAddr, Error)> = None;
    let mut bad_bytes = 0u64;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        let at = PhysAddr(addr.0 + done);
        let mut buf = vec![0u8; n];
        let mut bad = vec![false; n];
        if let Err(e) = t.memory.read_into(at, &mut buf) {
            mark_failed(&e, &mut bad, &mut buf);
            bad_bytes += bad.iter().filter(|b| **b).count() as u64;
            if first_error.is_none() {
                let off = bad.iter().position(|b| *b).unwrap_or(0);
                first_error = Some((PhysAddr(at.0 + off as u64), e));
            }
        }
        let w = if a.out.is_some() {
            sink.write_all(&buf)
        } else {
            crate::output::hexdump(&mut sink, at.0, &buf, &bad)
        };
        w.map_err(|e| CliError::target(anyhow::anyhow!("write failed: {e}")))?;
        done += n as u64;
    }
    sink.flush()
        .map_err(|e| CliError::target(anyhow::anyhow!("write failed: {e}")))?;
    match first_error {
        None => Ok(()),
        Some((at, e)) => Err(CliError::target(anyhow::anyhow!(
            "{bad_bytes} of {len} bytes could not be read, first at {at}: {}",
            first_cause(&e)
        ))),
    }
}

/// Flags the bytes an error covers (all of them unless it is `Partial`) and zeroes them.
fn mark_failed(e: &Error, bad: &mut [bool], buf: &mut [u8]) {
    match e.root_cause() {
        Error::Partial { failed, .. } => {
            for s in failed {
                let end = (s.offset + s.len).min(bad.len());
                for i in s.offset.min(end)..end {
                    bad[i] = true;
                    buf[i] = 0;
                }
            }
        }
        _ => {
            bad.fill(true);
            buf.fill(0);
        }
    }
}

/// The cause of the first failed span of a partial error, or the error itself.
fn first_cause(e: &Error) -> &Error {
    match e.root_cause() {
        Error::Partial { failed, .. } => failed.first().map_or(e, |s| first_cause(&s.cause)),
        other => other,
    }
}

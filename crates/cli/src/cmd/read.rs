//! `memlens read [TARGET] ADDR LEN [-p PID]`: a hexdump of physical memory (or of a
//! process's virtual memory with `-p`), the raw bytes with `--out`, or a JSON object with
//! `--json`. Unreadable bytes print as `??` (zeros in `--out` and `--json`, which also
//! lists them), and the command then fails with a message naming the first unreadable
//! address.

use std::io::Write;
use std::path::PathBuf;

use memlens::core::size::parse_size;
use memlens::core::{Error, MemoryViewExt, PhysAddr, VirtAddr};

use crate::exit::CliError;

/// Arguments of `read`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// [TARGET] ADDR LEN: an optional dump file, then the address (0x-hex or decimal;
    /// physical, or virtual with -p) and the length (decimal, hex, or 4k, 1MiB).
    #[arg(value_name = "ARGS", num_args = 2..=3, required = true)]
    positional: Vec<String>,
    #[command(flatten)]
    chain: crate::target::ChainArgs,
    /// Read the virtual memory of this process instead of physical memory.
    #[arg(short, long)]
    pid: Option<u32>,
    /// Write the raw bytes to this file instead of printing a hexdump.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object: address, length, the bytes as hex (unreadable bytes as
    /// zeros) and the unreadable spans. The exit status still reports unreadable bytes.
    /// At most 64 MiB (the document is built in memory; use --out for more).
    #[arg(long, conflicts_with = "out")]
    json: bool,
}

/// The `--json` document of `read`.
#[derive(serde::Serialize)]
struct JsonRead {
    address: String,
    length: u64,
    hex: String,
    unreadable: Vec<JsonSpan>,
}

/// A run of unreadable bytes.
#[derive(serde::Serialize)]
struct JsonSpan {
    address: String,
    length: u64,
    #[serde(skip)]
    end: u64,
}

const CHUNK: usize = 1 << 20;

/// Longest read `--json` accepts: the document (two hex digits per byte) is built in
/// memory before it is printed, so LEN would otherwise be an allocation size. `--out`
/// and the hexdump stream any length.
pub const MAX_JSON_LEN: u64 = 64 << 20;

/// Runs `read`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let (path, addr_s, len_s) = match a.positional.as_slice() {
        [addr, len] => (None, addr, len),
        [path, addr, len] => (Some(PathBuf::from(path)), addr, len),
        _ => return Err(CliError::usage("expected [TARGET] ADDR LEN", None)),
    };
    let addr: u64 = memlens::core::addr::parse_u64(addr_s).map_err(|e| {
        CliError::usage(
            format!("bad address: {e}"),
            Some("addresses look like 0x1000 or 4096"),
        )
    })?;
    let len = parse_size(len_s).map_err(|e| CliError::usage(format!("bad length: {e}"), None))?;
    if len == 0 {
        return Err(CliError::usage("length must be greater than 0", None));
    }
    if addr.checked_add(len - 1).is_none() {
        return Err(CliError::usage(
            format!("{addr:#x} + {len:#x} runs past the end of the 64-bit address space"),
            None,
        ));
    }
    if a.json && len > MAX_JSON_LEN {
        return Err(CliError::usage(
            format!(
                "--json reads at most {} ({MAX_JSON_LEN} bytes); {len} asked",
                memlens::core::size::format_size_approx(MAX_JSON_LEN)
            ),
            Some("write the bytes with --out FILE, or read less"),
        ));
    }
    let sel = a.chain.with_path(path);
    type Reader = Box<dyn Fn(u64, &mut [u8]) -> Result<(), Error>>;
    let reader: Reader = match a.pid {
        Some(pid) => {
            let os = crate::target::open_os(&sel, metrics)?;
            let mem = os.process(pid).map_err(CliError::target)?.memory();
            Box::new(move |at, buf| mem.read_into(VirtAddr(at), buf))
        }
        None => {
            let t = crate::target::open_physical(&sel, metrics)?;
            Box::new(move |at, buf| t.memory.read_into(PhysAddr(at), buf))
        }
    };
    let mut json = a.json.then(|| JsonRead {
        address: format!("{addr:#x}"),
        length: len,
        hex: String::new(),
        unreadable: Vec::new(),
    });
    let mut sink: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| CliError::target(anyhow::anyhow!("cannot create {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut first_error: Option<(u64, Error)> = None;
    let mut bad_bytes = 0u64;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        let at = addr + done;
        let mut buf = vec![0u8; n];
        let mut bad = vec![false; n];
        if let Err(e) = reader(at, &mut buf) {
            mark_failed(&e, &mut bad, &mut buf);
            bad_bytes += bad.iter().filter(|b| **b).count() as u64;
            if first_error.is_none() {
                let off = bad.iter().position(|b| *b).unwrap_or(0);
                first_error = Some((at + off as u64, e));
            }
        }
        let w = if let Some(j) = &mut json {
            append_json(j, at, &buf, &bad);
            Ok(())
        } else if a.out.is_some() {
            sink.write_all(&buf)
        } else {
            crate::output::hexdump(&mut sink, at, &buf, &bad)
        };
        w.map_err(crate::output::write_error)?;
        done += n as u64;
    }
    sink.flush().map_err(crate::output::write_error)?;
    drop(sink);
    if let Some(j) = &json {
        crate::output::print_json(j)?;
    }
    match first_error {
        None => Ok(()),
        Some((at, e)) => Err(CliError::target(anyhow::anyhow!(
            "{bad_bytes} of {len} bytes could not be read, first at {at:#x}: {}",
            first_cause(&e)
        ))),
    }
}

/// Adds `buf` (read at `at`) to the JSON document, merging unreadable runs across chunks.
fn append_json(j: &mut JsonRead, at: u64, buf: &[u8], bad: &[bool]) {
    use std::fmt::Write as _;
    j.hex.reserve(buf.len() * 2);
    for b in buf {
        let _ = write!(j.hex, "{b:02x}");
    }
    let mut i = 0;
    while i < bad.len() {
        if !bad[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < bad.len() && bad[i] {
            i += 1;
        }
        let a = at + start as u64;
        let n = (i - start) as u64;
        match j.unreadable.last_mut() {
            Some(last) if last.end == a => {
                last.length += n;
                last.end += n;
            }
            _ => j.unreadable.push(JsonSpan {
                address: format!("{a:#x}"),
                length: n,
                end: a + n,
            }),
        }
    }
}

/// Flags the bytes an error covers (all of them unless it is `Partial`) and zeroes them.
fn mark_failed(e: &Error, bad: &mut [bool], buf: &mut [u8]) {
    match e.root_cause() {
        Error::Partial { failed, .. } => {
            for s in failed {
                let end = s.offset.saturating_add(s.len).min(bad.len());
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

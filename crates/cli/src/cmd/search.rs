//! `memlens search PATTERN`: find a string, hex bytes or a regex in physical memory, in one
//! process, or in every process. **Key decision: memory is scanned in large chunks
//! (4 MiB) that overlap by the pattern's maximum length, in parallel on all cores**
//! (rayon), with `memchr::memmem` for literals and `regex::bytes` for regexes; bytes that
//! could not be read are never reported as (part of) a match.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memlens::core::{Error, MemoryView, MemoryViewExt, PhysAddr, VirtAddr, VirtualMemory};
use rayon::prelude::*;
use serde::Serialize;

use crate::exit::CliError;
use crate::output::{Format, FormatArgs, Table};

/// Arguments of `search`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// [TARGET] PATTERN: an optional dump file, then what to look for: a string (default),
    /// hex bytes with --hex, a regex with --regex.
    #[arg(value_name = "ARGS", num_args = 1..=2, required = true)]
    positional: Vec<String>,
    #[command(flatten)]
    chain: crate::target::ChainArgs,
    /// The pattern is hex bytes ("de ad be ef" or "deadbeef").
    #[arg(long, conflicts_with = "regex")]
    hex: bool,
    /// The pattern is a regular expression (over bytes).
    #[arg(long)]
    regex: bool,
    /// Also match the string encoded as UTF-16LE.
    #[arg(long, conflicts_with_all = ["hex", "regex"])]
    utf16: bool,
    /// Search the virtual memory of this process.
    #[arg(short, long, conflicts_with = "all_processes")]
    pid: Option<u32>,
    /// Search the virtual memory of every process (user space).
    #[arg(long)]
    all_processes: bool,
    /// Stop after this many matches.
    #[arg(long, default_value_t = 1000)]
    max: usize,
    /// Bytes of context shown around a match.
    #[arg(long, default_value_t = 16)]
    context: usize,
    #[command(flatten)]
    format: FormatArgs,
}

/// One match.
#[derive(Serialize, Debug, Clone)]
pub struct Hit {
    /// `physical` or `virtual`.
    pub space: &'static str,
    /// The process, for virtual matches.
    pub pid: Option<u32>,
    /// Address of the first matching byte.
    pub addr: u64,
    /// Matched length.
    pub len: usize,
    /// Printable preview of the match with context.
    pub preview: String,
}

/// A compiled pattern.
enum Matcher {
    Literals(Vec<memchr::memmem::Finder<'static>>),
    Regex(regex::bytes::Regex),
}

impl Matcher {
    fn max_len(&self) -> usize {
        match self {
            Matcher::Literals(f) => f.iter().map(|f| f.needle().len()).max().unwrap_or(1),
            // Regex matches are found within a chunk; overlap covers matches up to 4 KiB.
            Matcher::Regex(_) => 4096,
        }
    }

    fn find_all(&self, hay: &[u8], mut f: impl FnMut(usize, usize)) {
        match self {
            Matcher::Literals(fs) => {
                for finder in fs {
                    let n = finder.needle().len();
                    for i in finder.find_iter(hay) {
                        f(i, n);
                    }
                }
            }
            Matcher::Regex(r) => {
                for m in r.find_iter(hay) {
                    if !m.is_empty() {
                        f(m.start(), m.len());
                    }
                }
            }
        }
    }
}

fn compile(a: &Args, pattern: &str) -> Result<Matcher, CliError> {
    if a.regex {
        let r = regex::bytes::RegexBuilder::new(pattern)
            .size_limit(16 << 20)
            .build()
            .map_err(|e| CliError::usage(format!("bad regex: {e}"), None))?;
        return Ok(Matcher::Regex(r));
    }
    let bytes = if a.hex {
        parse_hex(pattern).ok_or_else(|| {
            CliError::usage(
                format!("'{pattern}' is not hex bytes"),
                Some("e.g. --hex \"de ad be ef\""),
            )
        })?
    } else {
        pattern.as_bytes().to_vec()
    };
    if bytes.is_empty() {
        return Err(CliError::usage("the pattern is empty", None));
    }
    let mut finders = vec![memchr::memmem::Finder::new(&bytes).into_owned()];
    if a.utf16 {
        let wide: Vec<u8> = pattern.encode_utf16().flat_map(u16::to_le_bytes).collect();
        finders.push(memchr::memmem::Finder::new(&wide).into_owned());
    }
    Ok(Matcher::Literals(finders))
}

/// Parses `de ad be ef`, `deadbeef` or `0xde,0xad`.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let clean: String = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| t.trim_start_matches("0x").trim_start_matches("0X"))
        .collect();
    if clean.is_empty() || clean.len() % 2 != 0 {
        return None;
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(clean.get(i..i + 2)?, 16).ok())
        .collect()
}

const CHUNK: u64 = 4 << 20;

/// Reads `buf` at an address of a process (or physical memory when `None`) and returns
/// which bytes are valid.
type ChunkReader<'a> = dyn Fn(Option<u32>, u64, &mut [u8]) -> Vec<bool> + Sync + 'a;

/// A region to scan: `[start, end)` of one view.
struct Region {
    pid: Option<u32>,
    start: u64,
    end: u64,
}

/// Scans `regions` of `read` in parallel; `read(pid, addr, buf)` fills `buf` and returns
/// which bytes are valid.
fn scan(
    regions: &[Region],
    matcher: &Matcher,
    context: usize,
    max: usize,
    space: &'static str,
    read: &ChunkReader<'_>,
    progress: &indicatif::ProgressBar,
) -> Vec<Hit> {
    let overlap = matcher.max_len().saturating_sub(1) as u64;
    let jobs: Vec<(Option<u32>, u64, u64)> = regions
        .iter()
        .flat_map(|r| {
            let mut v = Vec::new();
            let mut a = r.start;
            while a < r.end {
                let end = a.saturating_add(CHUNK).min(r.end);
                v.push((r.pid, a, end));
                a = end;
            }
            v
        })
        .collect();
    let found = AtomicU64::new(0);
    let mut hits: Vec<Hit> = jobs
        .par_iter()
        .flat_map_iter(|&(pid, start, end)| {
            let mut out = Vec::new();
            if found.load(Ordering::Relaxed) as usize >= max {
                return out;
            }
            // Read the chunk plus the overlap (clamped to the region's end is not known
            // here, so an unreadable tail simply yields invalid bytes).
            let len = (end - start + overlap) as usize;
            let mut buf = vec![0u8; len];
            let valid = read(pid, start, &mut buf);
            matcher.find_all(&buf, |i, n| {
                // Matches starting in the overlap belong to the next chunk.
                if (i as u64) >= end - start || !valid[i..i + n].iter().all(|v| *v) {
                    return;
                }
                let lo = i.saturating_sub(context);
                let hi = (i + n + context).min(buf.len());
                let preview: String = buf[lo..hi]
                    .iter()
                    .zip(&valid[lo..hi])
                    .map(|(b, v)| match (v, *b) {
                        (false, _) => '?',
                        (true, b) if b.is_ascii_graphic() || b == b' ' => b as char,
                        _ => '.',
                    })
                    .collect();
                out.push(Hit {
                    space,
                    pid,
                    addr: start + i as u64,
                    len: n,
                    preview,
                });
                found.fetch_add(1, Ordering::Relaxed);
            });
            progress.inc(end - start);
            out
        })
        .collect();
    hits.sort_by_key(|h| (h.pid, h.addr));
    hits.dedup_by_key(|h| (h.pid, h.addr, h.len));
    hits.truncate(max);
    hits
}

/// Reads `buf` at `addr` through `f`, returning which bytes are valid.
fn valid_map(buf: &mut [u8], r: Result<(), Error>) -> Vec<bool> {
    let mut valid = vec![true; buf.len()];
    if let Err(e) = r {
        match e.root_cause() {
            Error::Partial { failed, .. } => {
                for s in failed {
                    let end = (s.offset + s.len).min(valid.len());
                    valid[s.offset.min(end)..end].fill(false);
                }
            }
            _ => valid.fill(false),
        }
    }
    valid
}

/// Runs `search`.
pub fn run(a: Args) -> Result<(), CliError> {
    let (target, pattern) = match a.positional.as_slice() {
        [p] => (a.chain.with_path(None), p.clone()),
        [t, p] => (a.chain.with_path(Some(t.into())), p.clone()),
        _ => return Err(CliError::usage("expected [TARGET] PATTERN", None)),
    };
    let matcher = compile(&a, &pattern)?;
    let hits = if a.pid.is_some() || a.all_processes {
        let os = crate::target::open_os(&target)?;
        let pids: Vec<u32> = match a.pid {
            Some(p) => vec![p],
            None => os
                .processes()
                .map_err(CliError::target)?
                .iter()
                .filter(|p| !p.kernel_thread)
                .map(|p| p.pid)
                .collect(),
        };
        let mut views: std::collections::HashMap<u32, Arc<dyn VirtualMemory>> = Default::default();
        let mut regions = Vec::new();
        for pid in pids {
            let proc = match os.process(pid) {
                Ok(p) => p,
                Err(e) if a.pid.is_none() => {
                    log::warn!("skipping process {pid}: {e}");
                    continue;
                }
                Err(e) => return Err(CliError::target(e)),
            };
            match proc.maps() {
                Ok(maps) => regions.extend(
                    maps.iter()
                        .filter(|m| m.perms.read)
                        .filter(|m| m.path.as_deref() != Some("[vvar]"))
                        .map(|m| Region {
                            pid: Some(pid),
                            start: m.start.0,
                            end: m.end.0,
                        }),
                ),
                Err(e) if a.pid.is_none() => log::warn!("skipping process {pid}: {e}"),
                Err(e) => return Err(CliError::target(e)),
            }
            views.insert(pid, proc.memory());
        }
        let total = regions.iter().map(|r| r.end - r.start).sum();
        let pb = crate::progress::bar(total, "searching");
        let read = |pid: Option<u32>, addr: u64, buf: &mut [u8]| {
            let r = pid
                .and_then(|p| views.get(&p))
                .map_or(Err(Error::Other("no view".into())), |m| {
                    m.read_into(VirtAddr(addr), buf)
                });
            valid_map(buf, r)
        };
        let h = scan(&regions, &matcher, a.context, a.max, "virtual", &read, &pb);
        pb.finish_and_clear();
        h
    } else {
        let t = crate::target::open_physical(&target)?;
        let regions: Vec<Region> = t
            .memory
            .ranges()
            .iter()
            .map(|r| Region {
                pid: None,
                start: r.base.0,
                end: r.end_u64(),
            })
            .collect();
        let total = regions.iter().map(|r| r.end - r.start).sum();
        let pb = crate::progress::bar(total, "searching");
        let mem = &t.memory;
        let read = |_: Option<u32>, addr: u64, buf: &mut [u8]| {
            let r = mem.read_into(PhysAddr(addr), buf);
            valid_map(buf, r)
        };
        let h = scan(&regions, &matcher, a.context, a.max, "physical", &read, &pb);
        pb.finish_and_clear();
        h
    };
    let format = a.format.format();
    if format == Format::Json {
        return crate::output::print_json(&hits);
    }
    let mut t = Table::new(vec!["PID", "ADDRESS", "LEN", "PREVIEW"]);
    for h in &hits {
        t.row(vec![
            h.pid.map_or("-".into(), |p| p.to_string()),
            format!("{:#018x}", h.addr),
            h.len.to_string(),
            h.preview.clone(),
        ]);
    }
    t.print(format)?;
    if hits.len() >= a.max {
        log::warn!("stopped after {} matches (--max)", a.max);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("de ad be ef"), Some(vec![0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(parse_hex("deadbeef"), Some(vec![0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(parse_hex("0xde,0xad"), Some(vec![0xde, 0xad]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(""), None);
    }

    #[test]
    fn matches_across_chunk_boundaries_once_and_never_in_bad_bytes() {
        let mut mem = vec![0u8; (CHUNK * 2 + 100) as usize];
        let at = CHUNK as usize - 3; // straddles the first boundary
        mem[at..at + 7].copy_from_slice(b"needle!");
        mem[100..107].copy_from_slice(b"needle!");
        let bad_at = CHUNK as usize + 500;
        mem[bad_at..bad_at + 7].copy_from_slice(b"needle!");
        let matcher = Matcher::Literals(vec![memchr::memmem::Finder::new(b"needle!").into_owned()]);
        let read = |_: Option<u32>, addr: u64, buf: &mut [u8]| {
            let mut valid = vec![false; buf.len()];
            for (i, b) in buf.iter_mut().enumerate() {
                let a = addr as usize + i;
                if let Some(v) = mem.get(a) {
                    *b = *v;
                    valid[i] = !(bad_at + 2..bad_at + 3).contains(&a);
                }
            }
            valid
        };
        let regions = [Region {
            pid: None,
            start: 0,
            end: mem.len() as u64,
        }];
        let pb = indicatif::ProgressBar::hidden();
        let hits = scan(&regions, &matcher, 2, 100, "physical", &read, &pb);
        let addrs: Vec<u64> = hits.iter().map(|h| h.addr).collect();
        assert_eq!(addrs, vec![100, at as u64]);
        assert_eq!(hits[0].preview, "..needle!..");
    }
}

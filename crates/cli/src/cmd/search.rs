//! `memlens search PATTERN`: find a string, hex bytes or a regex in physical memory, in one
//! process, or in every process. **Key decision: memory is scanned in large chunks
//! (4 MiB) that overlap by the pattern's maximum length, in parallel on all cores, with
//! results in address order** ([`crate::scan`]), with `memchr::memmem` for literals and `regex::bytes` for regexes; bytes that
//! could not be read are never reported as (part of) a match.

use memlens::core::MemoryView;
use serde::Serialize;

use crate::exit::CliError;
use crate::output::{Format, FormatArgs, Table};
use crate::scan::{self, Chunk, ChunkSource, Collector, Part, Region};

/// Most matches `--max` may ask for: `search` keeps its matches to print them as one
/// table or JSON array, and a million is more than anyone reads (about 150 MB at the
/// default context).
pub const MAX_HITS: usize = 1_000_000;

/// Most bytes of context `--context` may ask for on each side of a match; also the most
/// bytes of one match shown in its preview (longer regex matches end with `…`).
pub const MAX_CONTEXT: usize = 4096;

/// Most bytes of previews `--max × (2 × --context + 1)` may keep: a million matches with
/// 4 KiB of context each would be 8 GiB.
pub const MAX_PREVIEW_BYTES: usize = 1 << 30;

fn parse_max(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_HITS).contains(&n) => Ok(n),
        _ => Err(format!("expected 1 to {MAX_HITS}")),
    }
}

fn parse_context(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_CONTEXT => Ok(n),
        _ => Err(format!("expected 0 to {MAX_CONTEXT}")),
    }
}

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
    /// Stop after this many matches (at most 1000000).
    #[arg(long, default_value_t = 1000, value_parser = parse_max)]
    max: usize,
    /// Bytes of context shown around a match (at most 4096; with --max, at most 1 GiB of
    /// previews in all).
    #[arg(long, default_value_t = 16, value_parser = parse_context)]
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

    /// Calls `f(offset, len)` for every match in `hay` in address order (by offset, then
    /// length: the literals of --utf16 are merged), until `f` returns `false`.
    fn find_each(&self, hay: &[u8], mut f: impl FnMut(usize, usize) -> bool) {
        match self {
            Matcher::Literals(fs) => {
                let mut its: Vec<_> = fs
                    .iter()
                    .map(|finder| {
                        let n = finder.needle().len();
                        finder.find_iter(hay).map(move |i| (i, n)).peekable()
                    })
                    .collect();
                loop {
                    let next = its
                        .iter_mut()
                        .filter_map(|it| it.peek().copied().map(|m| (m, it)))
                        .min_by_key(|(m, _)| *m);
                    let Some((m, it)) = next else { return };
                    it.next();
                    if !f(m.0, m.1) {
                        return;
                    }
                }
            }
            Matcher::Regex(r) => {
                for m in r.find_iter(hay) {
                    if !m.is_empty() && !f(m.start(), m.len()) {
                        return;
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

/// The matches of `matcher` in `chunk` of `src`, in address order, at most `limit` (see
/// [`Collector`]).
fn scan_chunk(
    c: &Chunk,
    limit: usize,
    matcher: &Matcher,
    context: usize,
    space: &'static str,
    src: &dyn ChunkSource,
) -> Part<Hit> {
    let overlap = matcher.max_len().saturating_sub(1) as u64;
    let owned = c.end - c.start;
    let mut col = Collector::new(limit);
    // Read the chunk plus the overlap; an unreadable tail simply yields invalid bytes.
    let len = (owned + overlap) as usize;
    scan::with_buffer(len, |buf| {
        let valid = src.read(c.pid, c.start, buf);
        matcher.find_each(buf, |i, n| {
            // Matches starting in the overlap belong to the next chunk.
            if (i as u64) >= owned {
                return false;
            }
            if !valid.all(i..i.saturating_add(n)) {
                return true;
            }
            let lo = i.saturating_sub(context);
            let shown = n.min(MAX_CONTEXT);
            let hi = i
                .saturating_add(shown)
                .saturating_add(context)
                .min(buf.len());
            let mut preview: String = (lo..hi)
                .map(|j| match (valid.at(j), buf[j]) {
                    (false, _) => '?',
                    (true, b) if b.is_ascii_graphic() || b == b' ' => b as char,
                    _ => '.',
                })
                .collect();
            if shown < n {
                preview.push('…');
            }
            let text = preview.len();
            col.push(
                Hit {
                    space,
                    pid: c.pid,
                    addr: c.start + i as u64,
                    len: n,
                    preview,
                },
                text,
            )
        });
    });
    col.finish(|h| h.addr)
}

/// Finds `matcher` in `chunks` of `src`: the first `max` hits in address order.
fn scan(
    chunks: impl IntoIterator<Item = Chunk>,
    matcher: &Matcher,
    context: usize,
    max: usize,
    space: &'static str,
    src: &dyn ChunkSource,
    progress: &indicatif::ProgressBar,
) -> Vec<Hit> {
    scan::ordered(chunks, max, progress, |c, limit| {
        scan_chunk(c, limit, matcher, context, space, src)
    })
    .collect()
}

/// Runs `search`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let (target, pattern) = match a.positional.as_slice() {
        [p] => (a.chain.with_path(None), p.clone()),
        [t, p] => (a.chain.with_path(Some(t.into())), p.clone()),
        _ => return Err(CliError::usage("expected [TARGET] PATTERN", None)),
    };
    let kept = a
        .max
        .saturating_mul(a.context.saturating_mul(2).saturating_add(1));
    if kept > MAX_PREVIEW_BYTES {
        return Err(CliError::usage(
            format!(
                "--max {} with --context {} could keep {} of previews (at most {})",
                a.max,
                a.context,
                memlens::core::size::format_size_approx(kept as u64),
                memlens::core::size::format_size_approx(MAX_PREVIEW_BYTES as u64)
            ),
            Some("lower --max or --context"),
        ));
    }
    let matcher = compile(&a, &pattern)?;
    let hits = if a.pid.is_some() || a.all_processes {
        let os = crate::target::open_os(&target, metrics)?;
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
        let (regions, views) =
            scan::process_regions(&*os, &pids, a.pid.is_some()).map_err(CliError::target)?;
        run_scan(&regions, &matcher, &a, "virtual", &views)
    } else {
        let t = crate::target::open_physical(&target, metrics)?;
        run_scan(
            &physical_regions(&t),
            &matcher,
            &a,
            "physical",
            &scan::Physical(&*t.memory),
        )
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

/// The populated ranges of a physical target as scan regions.
pub fn physical_regions(t: &memlens::core::PhysicalTarget) -> Vec<Region> {
    t.memory
        .ranges()
        .iter()
        .map(|r| Region {
            pid: None,
            start: r.base.0,
            end: r.end_u64(),
        })
        .collect()
}

/// Counts the matches of a literal over `regions`, exactly as `memlens search` scans
/// (for `memlens bench search`).
pub fn count_literal(regions: &[Region], src: &dyn ChunkSource, needle: &[u8]) -> usize {
    let m = Matcher::Literals(vec![memchr::memmem::Finder::new(needle).into_owned()]);
    let pb = indicatif::ProgressBar::hidden();
    // Counted as they come: a needle repeated all over memory keeps nothing.
    scan::ordered(scan::chunks(regions), usize::MAX, &pb, |c, limit| {
        scan_chunk(c, limit, &m, 0, "", src)
    })
    .count()
}

/// Scans `regions` with a progress bar.
fn run_scan(
    regions: &[Region],
    matcher: &Matcher,
    a: &Args,
    space: &'static str,
    src: &dyn ChunkSource,
) -> Vec<Hit> {
    let pb = crate::progress::bar(scan::total_bytes(regions), "searching");
    let h = scan(
        scan::chunks(regions),
        matcher,
        a.context,
        a.max,
        space,
        src,
        &pb,
    );
    pb.finish_and_clear();
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::CHUNK;

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
        struct Fake(Vec<u8>, usize);
        impl ChunkSource for Fake {
            fn read(&self, _: Option<u32>, addr: u64, buf: &mut [u8]) -> scan::Valid {
                let mut valid = vec![false; buf.len()];
                for (i, b) in buf.iter_mut().enumerate() {
                    let a = addr as usize + i;
                    if let Some(v) = self.0.get(a) {
                        *b = *v;
                        valid[i] = !(self.1 + 2..self.1 + 3).contains(&a);
                    }
                }
                scan::Valid::from_bools(valid)
            }
        }
        let regions = [Region {
            pid: None,
            start: 0,
            end: mem.len() as u64,
        }];
        let src = Fake(mem, bad_at);
        let pb = indicatif::ProgressBar::hidden();
        let hits = scan(
            scan::chunks(&regions),
            &matcher,
            2,
            100,
            "physical",
            &src,
            &pb,
        );
        let addrs: Vec<u64> = hits.iter().map(|h| h.addr).collect();
        assert_eq!(addrs, vec![100, at as u64]);
        assert_eq!(hits[0].preview, "..needle!..");
    }

    use crate::scan::VecMem as Mem;

    fn whole(m: &Mem) -> [Region; 1] {
        [Region {
            pid: None,
            start: 0,
            end: m.0.len() as u64,
        }]
    }

    /// Memory made of one repeated byte: `--max` stops the scan after max hits (never a
    /// window of millions first), and counting every hit keeps none of them.
    #[test]
    fn a_pattern_everywhere_stops_at_max_and_is_counted_in_bounded_memory() {
        let m = Mem(vec![b'a'; (CHUNK * 2) as usize]);
        let regions = whole(&m);
        let matcher = Matcher::Literals(vec![memchr::memmem::Finder::new(b"a").into_owned()]);
        let pb = indicatif::ProgressBar::hidden();
        let hits = scan(scan::chunks(&regions), &matcher, 4, 10, "physical", &m, &pb);
        let addrs: Vec<u64> = hits.iter().map(|h| h.addr).collect();
        assert_eq!(addrs, (0..10).collect::<Vec<u64>>());
        assert_eq!(hits[5].preview, "aaaaaaaaa");
        assert_eq!(count_literal(&regions, &m, b"a"), (CHUNK * 2) as usize);
        assert_eq!(count_literal(&regions, &m, b"aa"), CHUNK as usize);
    }

    /// With --utf16 both literals are merged in address order; a long regex match shows
    /// at most MAX_CONTEXT bytes of itself.
    #[test]
    fn literals_merge_in_order_and_long_matches_are_cut_in_previews() {
        let mut v = vec![0u8; 20_000];
        v[5..9].copy_from_slice(b"a\0b\0");
        v[12..14].copy_from_slice(b"ab");
        v[30..32].copy_from_slice(b"ab");
        v[100..10_100].fill(b'x');
        let m = Mem(v);
        let matcher = Matcher::Literals(vec![
            memchr::memmem::Finder::new(b"ab").into_owned(),
            memchr::memmem::Finder::new(b"a\0b\0").into_owned(),
        ]);
        let pb = indicatif::ProgressBar::hidden();
        let hits = scan(
            scan::chunks(&whole(&m)),
            &matcher,
            0,
            10,
            "physical",
            &m,
            &pb,
        );
        let got: Vec<(u64, usize)> = hits.iter().map(|h| (h.addr, h.len)).collect();
        assert_eq!(got, [(5, 4), (12, 2), (30, 2)]);
        let re = Matcher::Regex(regex::bytes::Regex::new("x+").unwrap());
        let hits = scan(scan::chunks(&whole(&m)), &re, 2, 10, "physical", &m, &pb);
        assert_eq!((hits[0].addr, hits[0].len), (100, 10_000));
        assert_eq!(hits[0].preview.chars().count(), 2 + MAX_CONTEXT + 2 + 1);
        assert!(hits[0].preview.ends_with('…'));
    }

    #[test]
    fn max_and_context_have_documented_caps() {
        assert!(parse_max("0").is_err());
        assert!(parse_max(&(MAX_HITS + 1).to_string()).is_err());
        assert_eq!(parse_max("1000"), Ok(1000));
        assert!(parse_context(&(MAX_CONTEXT + 1).to_string()).is_err());
        assert_eq!(parse_context("4096"), Ok(4096));
    }
}

//! `memlens strings`: printable ASCII and UTF-16LE strings in a process's memory (or in
//! physical memory). **Key decision: the same ordered parallel chunk scan as `search`**
//! ([`crate::scan`]): chunks are read with one byte (ASCII) or two (UTF-16) before them
//! and [`MAX_CHARS`] after, so a string is reported once, by the chunk where it starts, and
//! is whole up to [`MAX_CHARS`] characters (longer ones are cut and flagged `truncated`).
//! Strings are printed as the scan hands them out (in address order), never all kept:
//! memory full of short strings costs time, not memory.

use std::io::IsTerminal;

use serde::Serialize;

use crate::exit::CliError;
use crate::output::{Format, FormatArgs, StreamTable};
use crate::scan::{self, Chunk, ChunkSource, Collector, Part, Region, Valid};

/// Longest string reported, in characters; longer runs are cut there.
pub const MAX_CHARS: usize = 4096;

/// Arguments of `strings`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    target: crate::target::TargetArgs,
    /// The process whose mapped memory is scanned (physical memory when omitted).
    #[arg(short, long)]
    pid: Option<u32>,
    /// Minimum length in characters.
    #[arg(short = 'n', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    min_len: u16,
    /// Which encodings to look for.
    #[arg(short, long, value_enum, default_value_t = Encoding::All)]
    encoding: Encoding,
    /// Stop after this many strings (the first ones in address order; all by default,
    /// printed as they are found).
    #[arg(long)]
    max: Option<usize>,
    #[command(flatten)]
    format: FormatArgs,
}

/// String encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// 7-bit printable ASCII (and tab).
    Ascii,
    /// UTF-16 little-endian code units in the printable ASCII range.
    Utf16,
    /// Both.
    All,
}

/// One string found.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The process, or null for physical memory.
    pub pid: Option<u32>,
    /// Address of the first byte.
    pub addr: u64,
    /// `ascii` or `utf16`.
    pub encoding: &'static str,
    /// Length in bytes (of the reported text).
    pub len: usize,
    /// The text.
    pub text: String,
    /// The run goes on past [`MAX_CHARS`] characters.
    pub truncated: bool,
}

fn printable(b: u8) -> bool {
    b.is_ascii_graphic() || b == b' ' || b == b'\t'
}

/// Finds strings in `buf`, which holds memory from `base`, `lead` bytes before the chunk
/// that owns matches starting at `buf[lead..lead + owned]`. `valid` flags readable bytes.
/// Strings are emitted in address order (ASCII before UTF-16 at one address) until `emit`
/// returns `false`.
pub fn find(
    buf: &[u8],
    valid: &Valid,
    lead: usize,
    owned: usize,
    min: usize,
    enc: Encoding,
    mut emit: impl FnMut(usize, &'static str, usize, String, bool) -> bool,
) {
    let ok = |i: usize| valid.at(i) && printable(buf[i]);
    let unit = |i: usize| i + 1 < buf.len() && ok(i) && valid.at(i + 1) && buf[i + 1] == 0;
    let stop = (lead + owned).min(buf.len());
    let mut i = lead;
    while i < stop {
        if matches!(enc, Encoding::Ascii | Encoding::All) && ok(i) && (i == 0 || !ok(i - 1)) {
            let mut j = i;
            while j < buf.len() && ok(j) && j - i < MAX_CHARS {
                j += 1;
            }
            if j - i >= min {
                let more = j < buf.len() && ok(j);
                let text = String::from_utf8_lossy(&buf[i..j]).into_owned();
                if !emit(i, "ascii", j - i, text, more) {
                    return;
                }
            }
        }
        if matches!(enc, Encoding::Utf16 | Encoding::All) && unit(i) && (i < 2 || !unit(i - 2)) {
            let mut j = i;
            let mut text = String::new();
            while unit(j) && text.len() < MAX_CHARS {
                text.push(buf[j] as char);
                j += 2;
            }
            if text.len() >= min && !emit(i, "utf16", j - i, text, unit(j)) {
                return;
            }
        }
        i += 1;
    }
}

/// Runs `strings`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let min = usize::from(a.min_len);
    let max = a.max.unwrap_or(usize::MAX);
    let format = a.format.format();
    match a.pid {
        Some(pid) => {
            let os = crate::target::open_os(&a.target, metrics)?;
            let (regions, views) =
                scan::process_regions(&*os, &[pid], true).map_err(CliError::target)?;
            print(format, Some(pid), &regions, &views, min, a.encoding, max)
        }
        None => {
            let t = crate::target::open_physical(&a.target, metrics)?;
            let regions = crate::cmd::search::physical_regions(&t);
            let src = scan::Physical(&*t.memory);
            print(format, None, &regions, &src, min, a.encoding, max)
        }
    }
}

/// Prints the strings of `regions` as they are found.
fn print(
    format: Format,
    pid: Option<u32>,
    regions: &[Region],
    src: &dyn ChunkSource,
    min: usize,
    enc: Encoding,
    max: usize,
) -> Result<(), CliError> {
    // Rows are the progress when they go to a terminal; a bar would mix with them.
    let pb = if std::io::stdout().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        crate::progress::bar(scan::total_bytes(regions), "strings")
    };
    let mut found = strings(regions, src, min, enc, max, &pb);
    let r = if format == Format::Json {
        crate::output::print_json(&crate::output::JsonSeq::new(found))
    } else {
        let pid = pid.map_or("-".into(), |p| p.to_string());
        let headers = ["PID", "ADDRESS", "ENC", "STRING"];
        let widths = [pid.len().max(3), 18, 5];
        let mut t =
            StreamTable::new(&headers, &widths, format).map_err(crate::output::write_error)?;
        found
            .try_for_each(|f| {
                t.row(&[
                    pid.clone(),
                    format!("{:#018x}", f.addr),
                    f.encoding.to_string(),
                    // One string per line: control characters (tab) print escaped.
                    f.text.escape_debug().to_string() + if f.truncated { "…" } else { "" },
                ])
            })
            .and_then(|()| t.finish())
            .map_err(crate::output::write_error)
    };
    pb.finish_and_clear();
    r
}

/// The strings of `regions`, in address order, as the scan finds them.
fn strings<'a>(
    regions: &'a [Region],
    src: &'a dyn ChunkSource,
    min: usize,
    enc: Encoding,
    max: usize,
    pb: &'a indicatif::ProgressBar,
) -> impl Iterator<Item = Found> + 'a {
    scan::ordered(scan::chunks(regions), max, pb, move |c: &Chunk, limit| {
        strings_chunk(c, limit, regions, src, min, enc)
    })
}

/// The strings that start in chunk `c` (at most `limit`; see [`Collector`]).
fn strings_chunk(
    c: &Chunk,
    limit: usize,
    regions: &[Region],
    src: &dyn ChunkSource,
    min: usize,
    enc: Encoding,
) -> Part<Found> {
    let lead = c.start.min(2) as usize;
    let owned = (c.end - c.start) as usize;
    let mut col = Collector::new(limit);
    scan::with_buffer(lead + owned + 2 * MAX_CHARS + 2, |buf| {
        let mut valid = src.read(c.pid, c.start - lead as u64, buf);
        // Bytes past the region's end belong to nobody here: never part of a string.
        let region_end = regions
            .iter()
            .find(|r| r.pid == c.pid && r.start <= c.start && c.start < r.end)
            .map_or(c.end, |r| r.end);
        let in_region = usize::try_from(region_end - c.start).unwrap_or(usize::MAX);
        valid.cut(lead.saturating_add(in_region));
        find(
            buf,
            &valid,
            lead,
            owned,
            min,
            enc,
            |i, e, len, text, more| {
                let n = text.len();
                col.push(
                    Found {
                        pid: c.pid,
                        addr: c.start - lead as u64 + i as u64,
                        encoding: e,
                        len,
                        text,
                        truncated: more,
                    },
                    n,
                )
            },
        );
    });
    col.finish(|f| f.addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(
        buf: &[u8],
        lead: usize,
        owned: usize,
        min: usize,
    ) -> Vec<(usize, &'static str, String)> {
        let valid = Valid::from_bools(vec![true; buf.len()]);
        let mut v = Vec::new();
        find(
            buf,
            &valid,
            lead,
            owned,
            min,
            Encoding::All,
            |i, e, _, t, _| {
                v.push((i, e, t));
                true
            },
        );
        v
    }

    #[test]
    fn ascii_and_utf16_with_min_length() {
        let mut buf = b"\0\0hello\0ab\0\0".to_vec();
        buf.extend("wide!".encode_utf16().flat_map(u16::to_le_bytes));
        buf.extend(b"\0\0");
        let v = all(&buf, 0, buf.len(), 4);
        assert_eq!(
            v,
            vec![
                (2, "ascii", "hello".to_string()),
                (12, "utf16", "wide!".to_string())
            ]
        );
    }

    #[test]
    fn a_string_belongs_to_the_chunk_where_it_starts() {
        let buf = b"xxabcdefgh\0".to_vec();
        // The chunk owns bytes 4..6 only; "abcdefgh" starts at 2, before it: not reported.
        assert!(all(&buf, 4, 2, 4).is_empty());
        // It continues a run that started before byte 2 either.
        assert!(all(&buf, 2, 2, 4).is_empty());
        // The chunk owning 0..2 reports the whole run, read past its end.
        assert_eq!(
            all(&buf, 0, 2, 4),
            vec![(0, "ascii", "xxabcdefgh".to_string())]
        );
    }

    #[test]
    fn unreadable_bytes_end_strings() {
        let buf = b"abcdefgh".to_vec();
        let mut bits = vec![true; 8];
        bits[4] = false;
        let valid = Valid::from_bools(bits);
        let mut v = Vec::new();
        find(&buf, &valid, 0, 8, 3, Encoding::Ascii, |i, _, _, t, _| {
            v.push((i, t));
            true
        });
        assert_eq!(v, vec![(0, "abcd".to_string()), (5, "fgh".to_string())]);
    }

    #[test]
    fn long_runs_are_cut_and_flagged() {
        let buf = vec![b'a'; MAX_CHARS + 10];
        let valid = Valid::from_bools(vec![true; buf.len()]);
        let mut v = Vec::new();
        find(
            &buf,
            &valid,
            0,
            1,
            4,
            Encoding::Ascii,
            |_, _, len, _, more| {
                v.push((len, more));
                true
            },
        );
        assert_eq!(v, vec![(MAX_CHARS, true)]);
    }

    /// Memory made of short strings only: every one is reported, once, in order, with
    /// `--max` stopping the scan at what is wanted, and chunks cut at their budget.
    #[test]
    fn memory_full_of_short_strings_streams_them_all() {
        let unit = b"abcd\0";
        let bytes: Vec<u8> = unit
            .iter()
            .copied()
            .cycle()
            .take((scan::CHUNK * 2) as usize)
            .collect();
        let m = scan::VecMem(bytes);
        let regions = [Region {
            pid: None,
            start: 0,
            end: m.0.len() as u64,
        }];
        let pb = indicatif::ProgressBar::hidden();
        let mut n = 0u64;
        for f in strings(&regions, &m, 4, Encoding::All, usize::MAX, &pb) {
            assert_eq!((f.addr, f.text.as_str()), (n * 5, "abcd"));
            n += 1;
        }
        assert_eq!(n, scan::CHUNK * 2 / 5);
        let few: Vec<u64> = strings(&regions, &m, 4, Encoding::All, 3, &pb)
            .map(|f| f.addr)
            .collect();
        assert_eq!(few, [0, 5, 10]);
        // One chunk alone stops at its budget, cut between two strings.
        let c = Chunk {
            pid: None,
            start: 0,
            end: scan::CHUNK,
        };
        let p = strings_chunk(&c, usize::MAX, &regions, &m, 4, Encoding::All);
        let resume = p.resume.expect("a dense chunk is cut");
        assert_eq!(p.items.last().map(|f| f.addr + 5), Some(resume));
        assert!(p.items.len() < (scan::CHUNK / 5) as usize);
    }
}

//! Parallel, ordered scanning of memory regions, shared by `search` and `strings`.
//!
//! **Key decision: chunks are scanned in parallel but results are taken in address order,
//! window by window.** A window of chunks (a few per core) is scanned by rayon, the results
//! are appended in chunk order, and the scan stops only after a whole window, once `max`
//! results are in. So `--max N` always returns the *first* N results in address order, the
//! same on every run and core count, and stops early without scanning the rest.

use memlens::core::{Error, MemoryViewExt, PhysAddr, VirtAddr, VirtualMemory};
use rayon::prelude::*;

use std::collections::HashMap;
use std::sync::Arc;

/// Bytes per chunk (one unit of parallel work).
pub const CHUNK: u64 = 4 << 20;

/// A region to scan: `[start, end)` of one address space (a process, or physical memory
/// when `pid` is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Region {
    /// The process, or `None` for physical memory.
    pub pid: Option<u32>,
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

/// One chunk of a region: `[start, end)`; a reader may read past `end` (the overlap).
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    /// The process, or `None` for physical memory.
    pub pid: Option<u32>,
    /// First address owned by this chunk.
    pub start: u64,
    /// One past the last address owned by this chunk.
    pub end: u64,
}

/// Splits regions (sorted by process and address) into chunks, in order.
pub fn chunks(regions: &[Region]) -> Vec<Chunk> {
    let mut sorted = regions.to_vec();
    sorted.sort();
    let mut out = Vec::new();
    for r in sorted {
        let mut a = r.start;
        while a < r.end {
            let end = a.saturating_add(CHUNK).min(r.end);
            out.push(Chunk {
                pid: r.pid,
                start: a,
                end,
            });
            a = end;
        }
    }
    out
}

/// Runs `per_chunk` over `chunks` in parallel windows and returns the results in chunk
/// order, stopping after the first window that brings the total to `max` (then truncated
/// to `max`). `per_chunk` must return its results in address order.
pub fn ordered<T: Send>(
    chunks: &[Chunk],
    max: usize,
    progress: &indicatif::ProgressBar,
    per_chunk: impl Fn(&Chunk) -> Vec<T> + Sync,
) -> Vec<T> {
    let window = (rayon::current_num_threads() * 4).max(4);
    let mut out = Vec::new();
    for w in chunks.chunks(window) {
        let parts: Vec<Vec<T>> = w
            .par_iter()
            .map(|c| {
                let r = per_chunk(c);
                progress.inc(c.end - c.start);
                r
            })
            .collect();
        out.extend(parts.into_iter().flatten());
        if out.len() >= max {
            break;
        }
    }
    out.truncate(max);
    out
}

/// Which bytes of a buffer a read filled. All of them in the common case, which costs
/// nothing; a byte map only when a read partly failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    /// Bytes at or past this index are invalid.
    limit: usize,
    /// Per-byte validity below `limit`, when not all valid.
    map: Option<Vec<bool>>,
}

impl Valid {
    /// From a per-byte map.
    pub fn from_bools(map: Vec<bool>) -> Self {
        Self {
            limit: map.len(),
            map: Some(map),
        }
    }

    /// From a read's outcome: all on success, none on a whole failure, and the complement
    /// of the failed spans of a partial read.
    pub fn of_read(len: usize, r: Result<(), Error>) -> Self {
        let Err(e) = r else {
            return Self {
                limit: len,
                map: None,
            };
        };
        let mut valid = vec![true; len];
        match e.root_cause() {
            Error::Partial { failed, .. } => {
                for s in failed {
                    let end = (s.offset + s.len).min(valid.len());
                    valid[s.offset.min(end)..end].fill(false);
                }
            }
            _ => valid.fill(false),
        }
        Self::from_bools(valid)
    }

    /// Whether byte `i` is valid.
    #[inline]
    pub fn at(&self, i: usize) -> bool {
        i < self.limit && self.map.as_ref().is_none_or(|m| m[i])
    }

    /// Whether every byte of `r` is valid.
    pub fn all(&self, r: std::ops::Range<usize>) -> bool {
        r.end <= self.limit && self.map.as_ref().is_none_or(|m| m[r].iter().all(|v| *v))
    }

    /// Marks every byte from `from` on invalid.
    pub fn cut(&mut self, from: usize) {
        self.limit = self.limit.min(from);
    }
}

/// A per-thread scratch buffer of `len` zeroed bytes, reused across chunks so that a scan
/// does not fault in fresh pages for every chunk.
pub fn with_buffer<T>(len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        b.resize(len, 0);
        f(&mut b)
    })
}

/// Reads memory of a process (by pid) or of physical memory, returning which bytes are
/// valid: what chunk scanners need from a target.
pub trait ChunkSource: Sync {
    /// Fills `buf` from `addr` of `pid`'s address space (physical when `None`).
    fn read(&self, pid: Option<u32>, addr: u64, buf: &mut [u8]) -> Valid;
}

/// Physical memory as a chunk source.
pub struct Physical<'a>(pub &'a dyn memlens::core::PhysicalMemory);

impl ChunkSource for Physical<'_> {
    fn read(&self, _: Option<u32>, addr: u64, buf: &mut [u8]) -> Valid {
        let r = self.0.read_into(PhysAddr(addr), buf);
        Valid::of_read(buf.len(), r)
    }
}

/// Process address spaces (by pid) as a chunk source.
#[derive(Default)]
pub struct Processes(pub HashMap<u32, Arc<dyn VirtualMemory>>);

impl ChunkSource for Processes {
    fn read(&self, pid: Option<u32>, addr: u64, buf: &mut [u8]) -> Valid {
        let r = pid
            .and_then(|p| self.0.get(&p))
            .map_or(Err(Error::Other("no such process view".into())), |m| {
                m.read_into(VirtAddr(addr), buf)
            });
        Valid::of_read(buf.len(), r)
    }
}

/// The readable regions of processes' address spaces and their memory views: `pids` in
/// order; with `strict`, the first failure is returned, else failing processes are skipped
/// with a warning.
pub fn process_regions(
    os: &dyn memlens::core::Os,
    pids: &[u32],
    strict: bool,
) -> Result<(Vec<Region>, Processes), memlens::core::Error> {
    let mut views = Processes::default();
    let mut regions = Vec::new();
    for &pid in pids {
        let maps = os.process(pid).and_then(|p| Ok((p.maps()?, p.memory())));
        match maps {
            Ok((maps, mem)) => {
                regions.extend(
                    maps.iter()
                        .filter(|m| m.perms.read)
                        // [vvar] is kernel data that faults on read on some kernels.
                        .filter(|m| m.path.as_deref() != Some("[vvar]"))
                        .map(|m| Region {
                            pid: Some(pid),
                            start: m.start.0,
                            end: m.end.0,
                        }),
                );
                views.0.insert(pid, mem);
            }
            Err(e) if !strict => log::warn!("skipping process {pid}: {e}"),
            Err(e) => return Err(e),
        }
    }
    Ok((regions, views))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_keeps_the_first_results_in_address_order() {
        let regions = [
            Region {
                pid: Some(2),
                start: 0,
                end: CHUNK * 3,
            },
            Region {
                pid: Some(1),
                start: CHUNK,
                end: CHUNK * 100 + 5,
            },
        ];
        let cs = chunks(&regions);
        assert_eq!(cs.len(), 99 + 1 + 3);
        assert_eq!((cs[0].pid, cs[0].start), (Some(1), CHUNK));
        let pb = indicatif::ProgressBar::hidden();
        let all = ordered(&cs, usize::MAX, &pb, |c| {
            vec![(c.pid, c.start), (c.pid, c.start + 1)]
        });
        assert_eq!(all.len(), cs.len() * 2);
        assert!(all.windows(2).all(|w| w[0] < w[1]), "not in order");
        for max in [1, 7, 50, 205] {
            let some = ordered(&cs, max, &pb, |c| {
                vec![(c.pid, c.start), (c.pid, c.start + 1)]
            });
            assert_eq!(some, all[..max.min(all.len())]);
        }
    }

    #[test]
    fn partial_reads_mark_only_failed_bytes() {
        let failed = vec![memlens::core::error::FailedSpan {
            offset: 2,
            len: 3,
            cause: Box::new(Error::Other("x".into())),
        }];
        let e = Error::Partial { total: 8, failed };
        let v = Valid::of_read(8, Err(e));
        let bits: Vec<bool> = (0..8).map(|i| v.at(i)).collect();
        assert_eq!(bits, [true, true, false, false, false, true, true, true]);
        assert!(v.all(0..2) && !v.all(1..3) && v.all(5..8) && !v.all(5..9));
        let none = Valid::of_read(3, Err(Error::Other("x".into())));
        assert!((0..3).all(|i| !none.at(i)));
        let mut all = Valid::of_read(4, Ok(()));
        assert!(all.all(0..4) && !all.at(4));
        all.cut(2);
        assert!(all.all(0..2) && !all.at(2));
    }
}

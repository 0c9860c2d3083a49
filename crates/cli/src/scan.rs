//! Parallel, ordered scanning of memory regions, shared by `search` and `strings`.
//!
//! **Key decision: chunks are scanned in parallel but results are taken in address order,
//! window by window, and nothing grows with the size a target claims.** Chunks are made
//! lazily from the regions (a forged 16 EiB mapping costs no memory, only time), a window
//! of a few chunks per core is scanned by rayon, and results are handed out in chunk
//! order as an iterator ([`Ordered`]), so a caller can print them as they come. Each chunk
//! stops after the results still wanted (`--max`) or after [`CHUNK_BUDGET`] bytes of
//! results, whichever comes first; a chunk cut by the budget continues from where it
//! stopped (a *continuation*) before any later result is handed out. So `--max N` always
//! returns the *first* N results in address order, the same on every run and core count,
//! and memory stays within about `2 × window × CHUNK_BUDGET` whatever the memory holds.

use memlens::core::{Error, MemoryViewExt, PhysAddr, VirtAddr, VirtualMemory};
use rayon::prelude::*;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Bytes per chunk (one unit of parallel work).
pub const CHUNK: u64 = 4 << 20;

/// Results (by their estimated size in bytes) one chunk may produce before it stops and
/// continues later: a chunk of memory made of one repeated pattern would otherwise make
/// millions of results per chunk and, over a window of chunks, gigabytes.
pub const CHUNK_BUDGET: usize = 8 << 20;

/// Most chunks scanned at once (four per core, at most this): bounds what a window holds
/// on machines with many cores.
pub const MAX_WINDOW: usize = 64;

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

/// Total bytes of `regions` (saturating: forged regions may claim more than 2^64).
pub fn total_bytes(regions: &[Region]) -> u64 {
    regions
        .iter()
        .map(|r| r.end.saturating_sub(r.start))
        .fold(0, u64::saturating_add)
}

/// One chunk of a region: `[start, end)`; a reader may read past `end` (the overlap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// The process, or `None` for physical memory.
    pub pid: Option<u32>,
    /// First address owned by this chunk.
    pub start: u64,
    /// One past the last address owned by this chunk.
    pub end: u64,
}

/// The chunks of regions (sorted by process and address), made one at a time.
#[derive(Debug, Clone)]
pub struct Chunks {
    regions: std::vec::IntoIter<Region>,
    current: Option<Region>,
}

/// Splits regions (sorted by process and address) into chunks, in order, lazily.
pub fn chunks(regions: &[Region]) -> Chunks {
    let mut sorted = regions.to_vec();
    sorted.sort();
    Chunks {
        regions: sorted.into_iter(),
        current: None,
    }
}

impl Iterator for Chunks {
    type Item = Chunk;
    fn next(&mut self) -> Option<Chunk> {
        loop {
            match &mut self.current {
                Some(r) if r.start < r.end => {
                    let end = r.start.saturating_add(CHUNK).min(r.end);
                    let c = Chunk {
                        pid: r.pid,
                        start: r.start,
                        end,
                    };
                    r.start = end;
                    return Some(c);
                }
                _ => self.current = Some(self.regions.next()?),
            }
        }
    }
}

/// What one chunk produced: its first results in address order and, when it stopped
/// early (at its budget), the address from which the rest of the chunk is still to scan.
#[derive(Debug)]
pub struct Part<T> {
    /// Results, in address order.
    pub items: Vec<T>,
    /// Every result at or after this address is not in `items` yet.
    pub resume: Option<u64>,
}

/// Collects one chunk's results, which must come in address order, up to `limit` of
/// them (what is still wanted) or [`CHUNK_BUDGET`] bytes, then cuts them into a [`Part`].
#[derive(Debug)]
pub struct Collector<T> {
    items: Vec<T>,
    limit: usize,
    weight: usize,
}

impl<T> Collector<T> {
    /// An empty collector for at most `limit` results.
    pub fn new(limit: usize) -> Self {
        Self {
            items: Vec::new(),
            limit,
            weight: 0,
        }
    }

    fn full(&self) -> bool {
        self.items.len() > self.limit || self.weight > CHUNK_BUDGET
    }

    /// Adds a result that owns `text_len` bytes of text; `false` once the collector is
    /// full: the caller stops, and this last result marks where the chunk is cut.
    pub fn push(&mut self, item: T, text_len: usize) -> bool {
        self.weight = self
            .weight
            .saturating_add(std::mem::size_of::<T>())
            .saturating_add(text_len);
        self.items.push(item);
        !self.full()
    }

    /// The results, cut at an address boundary when the collector filled up: every
    /// result at the address of the last one pushed is left out and `resume` is that
    /// address (the results came in address order, so all before it are in). When all of
    /// them share that address, which only happens when `limit` (the end of `--max`) is
    /// smaller than the results at one address, the first `limit` are kept and the scan
    /// ends with them.
    pub fn finish(mut self, addr: impl Fn(&T) -> u64) -> Part<T> {
        if !self.full() {
            return Part {
                items: self.items,
                resume: None,
            };
        }
        let at = self.items.last().map_or(0, &addr);
        let keep = self.items.partition_point(|t| addr(t) < at);
        if keep == 0 {
            self.items.truncate(self.limit);
            return Part {
                items: self.items,
                resume: None,
            };
        }
        self.items.truncate(keep);
        Part {
            items: self.items,
            resume: Some(at),
        }
    }
}

enum Slot<T> {
    Todo(Chunk),
    Done(Vec<T>),
}

/// Results of a scan in address order; see the module documentation. Made by [`ordered`].
pub struct Ordered<'p, T, I, F> {
    chunks: I,
    per_chunk: F,
    progress: &'p indicatif::ProgressBar,
    window: usize,
    left: usize,
    slots: VecDeque<Slot<T>>,
    ready: std::vec::IntoIter<T>,
}

/// Runs `per_chunk(chunk, limit)` over `chunks` in parallel windows and hands out the
/// results in chunk order, at most `max` in all. `per_chunk` returns the chunk's first
/// results in address order (at most `limit`, what is still wanted), with the address to
/// resume from when it stopped early: see [`Collector`].
pub fn ordered<T, I, F>(
    chunks: I,
    max: usize,
    progress: &indicatif::ProgressBar,
    per_chunk: F,
) -> Ordered<'_, T, I::IntoIter, F>
where
    T: Send,
    I: IntoIterator<Item = Chunk>,
    F: Fn(&Chunk, usize) -> Part<T> + Sync,
{
    Ordered {
        chunks: chunks.into_iter(),
        per_chunk,
        progress,
        window: (rayon::current_num_threads().saturating_mul(4)).clamp(4, MAX_WINDOW),
        left: max,
        slots: VecDeque::new(),
        ready: Vec::new().into_iter(),
    }
}

impl<T, I, F> Ordered<'_, T, I, F>
where
    T: Send,
    I: Iterator<Item = Chunk>,
    F: Fn(&Chunk, usize) -> Part<T> + Sync,
{
    /// Scans the pending chunks among the first `window` slots (never so many that the
    /// slots could exceed `2 × window`), in parallel, and puts their results in place.
    fn round(&mut self) {
        while self.slots.len() < self.window {
            match self.chunks.next() {
                Some(c) => self.slots.push_back(Slot::Todo(c)),
                None => break,
            }
        }
        let room = (2 * self.window).saturating_sub(self.slots.len()).max(1);
        let todo: Vec<(usize, Chunk)> = self
            .slots
            .iter()
            .take(self.window)
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Todo(c) => Some((i, *c)),
                Slot::Done(_) => None,
            })
            .take(room)
            .collect();
        let (left, f, pb) = (self.left, &self.per_chunk, self.progress);
        let parts: Vec<Part<T>> = todo
            .par_iter()
            .map(|(_, c)| {
                let p = f(c, left);
                // A continuation must make progress and stay inside the chunk.
                let resume = p.resume.filter(|r| *r > c.start && *r < c.end);
                pb.inc(resume.unwrap_or(c.end) - c.start);
                Part {
                    items: p.items,
                    resume,
                }
            })
            .collect();
        for ((i, c), p) in todo.into_iter().zip(parts).rev() {
            self.slots[i] = Slot::Done(p.items);
            if let Some(r) = p.resume {
                self.slots
                    .insert(i + 1, Slot::Todo(Chunk { start: r, ..c }));
            }
        }
    }
}

impl<T, I, F> Iterator for Ordered<'_, T, I, F>
where
    T: Send,
    I: Iterator<Item = Chunk>,
    F: Fn(&Chunk, usize) -> Part<T> + Sync,
{
    type Item = T;
    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(t) = self.ready.next() {
                return Some(t);
            }
            if self.left == 0 {
                return None;
            }
            match self.slots.pop_front() {
                Some(Slot::Done(mut items)) => {
                    items.truncate(self.left);
                    self.left -= items.len();
                    self.ready = items.into_iter();
                }
                Some(todo) => {
                    self.slots.push_front(todo);
                    self.round();
                }
                None => {
                    self.round();
                    if self.slots.is_empty() {
                        return None;
                    }
                }
            }
        }
    }
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
                    let end = s.offset.saturating_add(s.len).min(valid.len());
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

/// Memory from a vector at address 0, every byte of it readable (for tests).
#[cfg(test)]
pub struct VecMem(pub Vec<u8>);

#[cfg(test)]
impl ChunkSource for VecMem {
    fn read(&self, _: Option<u32>, addr: u64, buf: &mut [u8]) -> Valid {
        let mut valid = vec![false; buf.len()];
        for (i, b) in buf.iter_mut().enumerate() {
            if let Some(v) = usize::try_from(addr).ok().and_then(|a| self.0.get(a + i)) {
                *b = *v;
                valid[i] = true;
            }
        }
        Valid::from_bools(valid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two results per chunk, at its first two addresses.
    fn two_per_chunk(c: &Chunk, limit: usize) -> Part<(Option<u32>, u64)> {
        let mut col = Collector::new(limit);
        let _ = col.push((c.pid, c.start), 0) && col.push((c.pid, c.start + 1), 0);
        col.finish(|t| t.1)
    }

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
        let cs: Vec<Chunk> = chunks(&regions).collect();
        assert_eq!(cs.len(), 99 + 1 + 3);
        assert_eq!((cs[0].pid, cs[0].start), (Some(1), CHUNK));
        let pb = indicatif::ProgressBar::hidden();
        let all: Vec<_> = ordered(cs.clone(), usize::MAX, &pb, two_per_chunk).collect();
        assert_eq!(all.len(), cs.len() * 2);
        assert!(all.windows(2).all(|w| w[0] < w[1]), "not in order");
        for max in [1, 7, 50, 205] {
            let some: Vec<_> = ordered(cs.clone(), max, &pb, two_per_chunk).collect();
            assert_eq!(some, all[..max.min(all.len())]);
        }
    }

    /// A forged mapping of almost 2^64 bytes: chunks are made as they are scanned, so
    /// asking for the first results costs a few chunks, never a list of 4.4e12 of them.
    #[test]
    fn a_forged_huge_region_costs_only_the_chunks_scanned() {
        let forged = Region {
            pid: Some(1),
            start: 0x1000,
            end: u64::MAX - 4095,
        };
        assert_eq!(total_bytes(&[forged, forged]), u64::MAX);
        let mut cs = chunks(&[forged]);
        assert_eq!(
            cs.next().map(|c| (c.start, c.end)),
            Some((0x1000, 0x1000 + CHUNK))
        );
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let pb = indicatif::ProgressBar::hidden();
        let first: Vec<_> = ordered(chunks(&[forged]), 5, &pb, |c, limit| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            two_per_chunk(c, limit)
        })
        .collect();
        assert_eq!(first.len(), 5);
        assert_eq!(first[4], (Some(1), 0x1000 + 2 * CHUNK));
        assert!(calls.into_inner() <= 2 * MAX_WINDOW);
        // The last chunk ends exactly at the region's end, without overflow.
        let last = Region {
            pid: None,
            start: u64::MAX - CHUNK - 10,
            end: u64::MAX,
        };
        let v: Vec<Chunk> = chunks(&[last]).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].end, u64::MAX);
    }

    /// Memory where every 16th byte is a result with 4 KiB of text: each chunk stops at
    /// its budget and continues, and the results are still all there, once, in order.
    #[test]
    fn dense_chunks_stop_at_their_budget_and_continue() {
        let regions = [Region {
            pid: None,
            start: 0,
            end: 2 * CHUNK,
        }];
        let biggest = std::sync::atomic::AtomicUsize::new(0);
        let pb = indicatif::ProgressBar::hidden();
        let per_chunk = |c: &Chunk, limit: usize| {
            let mut col = Collector::new(limit);
            let mut a = c.start.next_multiple_of(16);
            while a < c.end && col.push(a, 4096) {
                a += 16;
            }
            let p = col.finish(|a| *a);
            biggest.fetch_max(p.items.len(), std::sync::atomic::Ordering::Relaxed);
            p
        };
        let all: Vec<u64> = ordered(chunks(&regions), usize::MAX, &pb, per_chunk).collect();
        let want: Vec<u64> = (0..2 * CHUNK).step_by(16).collect();
        assert_eq!(all.len(), want.len());
        assert!(all == want, "results lost, repeated or out of order");
        let per_part = CHUNK_BUDGET / 4096;
        // With --max, a dense chunk stops at what is wanted.
        let few: Vec<u64> = ordered(chunks(&regions), 3, &pb, per_chunk).collect();
        assert_eq!(few, [0, 16, 32]);
        let biggest = biggest.into_inner();
        assert!(biggest > 0 && biggest <= per_part, "{biggest}");
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

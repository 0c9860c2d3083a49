//! The batched page-table walker. **Key decision: walk a whole batch level by level.**
//! The addresses are sorted once; at each level the walker groups the pending addresses
//! by the table page their entry lives in, reads each distinct table page **once** (the
//! span of entries the batch needs), and sends all reads of that level to the connector
//! as **one** `read_batch`. A batch of N addresses therefore costs at most one connector
//! call per level (4 for x86-64) instead of 4·N single reads, and addresses that share
//! upper levels (nearly all of them) share the reads.
//!
//! Every address gets its own outcome: a [`Translation`] or core's
//! `Error::NotPresent`/`BadEntry`/`NonCanonical` naming the address, the root and the
//! level. Memory use is bounded: batches are processed in chunks so that the table bytes
//! held at once stay below [`MAX_CHUNK_BYTES`], whatever the tables contain.

use memlens_core::error::FailedSpan;
use memlens_core::{Error, PhysAddr, PhysicalMemory, ReadOp, Result, VirtAddr};

use crate::mmu::{Mmu, Step};
use crate::types::{page_size, PageFlags, Roots, Translation};

/// Upper bound of the table bytes buffered by one chunk of a batch.
pub const MAX_CHUNK_BYTES: u64 = 16 << 20;

#[derive(Clone, Copy)]
struct Pending {
    va: u64,
    idx: usize,
    root: u64,
    table: u64,
    parent: u64,
    restrict: u8,
}

struct Run {
    table: u64,
    lo: u64,
    hi: u64,
    start: usize,
    end: usize,
    read: usize,
}

struct Read {
    table: u64,
    addr: u64,
    len: u64,
    buf_off: usize,
}

/// A placeholder outcome (no allocation) for output slots before the walk fills them.
pub fn unset() -> Result<Translation> {
    Err(Error::Other(String::new()))
}

/// Translates one address (a batch of one).
pub fn translate<P: PhysicalMemory + ?Sized>(
    mem: &P,
    mmu: &Mmu,
    roots: &Roots,
    va: VirtAddr,
) -> Result<Translation> {
    let mut out = [unset()];
    translate_batch(mem, mmu, roots, &[va], &mut out);
    let [r] = out;
    r
}

/// Translates a batch, returning one outcome per address (in input order).
pub fn translate_vec<P: PhysicalMemory + ?Sized>(
    mem: &P,
    mmu: &Mmu,
    roots: &Roots,
    vas: &[VirtAddr],
) -> Vec<Result<Translation>> {
    let mut out: Vec<Result<Translation>> = (0..vas.len()).map(|_| unset()).collect();
    translate_batch(mem, mmu, roots, vas, &mut out);
    out
}

/// Translates `vas[i]` into `out[i]` for every `i` (extra slots of either slice are left
/// alone). See the module documentation for the batching strategy.
pub fn translate_batch<P: PhysicalMemory + ?Sized>(
    mem: &P,
    mmu: &Mmu,
    roots: &Roots,
    vas: &[VirtAddr],
    out: &mut [Result<Translation>],
) {
    let n = vas.len().min(out.len());
    let mut pend: Vec<Pending> = Vec::with_capacity(n);
    for (i, va) in vas.iter().take(n).enumerate() {
        if !mmu.is_canonical(va.0) {
            out[i] = Err(Error::NonCanonical {
                va: *va,
                arch: mmu.name().into(),
            });
            continue;
        }
        let root = mmu.root_for(roots, va.0);
        pend.push(Pending {
            va: va.0,
            idx: i,
            root,
            table: root,
            parent: 0,
            restrict: 0,
        });
    }
    // Sorting by VA groups addresses that share table pages at every level.
    // (The root is a function of the half, and halves are VA ranges: VA order suffices.)
    // Sort 16-byte keys rather than the pending records themselves.
    if !pend.windows(2).all(|w| w[0].va <= w[1].va) {
        let mut keys: Vec<u128> = pend
            .iter()
            .enumerate()
            .map(|(i, p)| (u128::from(p.va) << 64) | i as u128)
            .collect();
        keys.sort_unstable();
        pend = keys.iter().map(|k| pend[(*k as u64) as usize]).collect();
    }
    let max_table = mmu
        .levels()
        .iter()
        .map(|l| l.entries() * u64::from(mmu.entry_bytes()))
        .max()
        .unwrap_or(4096);
    let chunk = usize::try_from((MAX_CHUNK_BYTES / max_table).max(64)).unwrap_or(4096);
    let mut scratch = Scratch::default();
    for part in pend.chunks_mut(chunk) {
        walk_chunk(mem, mmu, part, out, &mut scratch);
    }
}

#[derive(Default)]
struct Scratch {
    runs: Vec<Run>,
    slots: Vec<(u64, usize)>,
    reads: Vec<Read>,
    buf: Vec<u8>,
    results: Vec<Result<()>>,
    retry_slot: Vec<usize>,
    retry_buf: Vec<u8>,
    retry_results: Vec<Result<()>>,
}

/// Re-reads, one entry per op and all in one batch, the entries of the pending
/// addresses whose multi-entry read failed. `s.retry_slot[k]` is the slot of pending `k`.
fn retry_entries<P: PhysicalMemory + ?Sized>(
    mem: &P,
    lv: &crate::mmu::Level,
    eb: u64,
    pend: &[Pending],
    s: &mut Scratch,
) {
    s.retry_slot.clear();
    s.retry_slot.resize(pend.len(), usize::MAX);
    let mut addrs: Vec<u64> = Vec::new();
    for run in &s.runs {
        let (rd, res) = (&s.reads[run.read], &s.results[run.read]);
        if res.is_ok() || rd.len <= eb {
            continue;
        }
        for (k, p) in pend.iter().enumerate().take(run.end).skip(run.start) {
            s.retry_slot[k] = addrs.len();
            addrs.push(p.table.wrapping_add(lv.index(p.va) * eb));
        }
    }
    s.retry_buf.clear();
    s.retry_buf.resize(addrs.len() * eb as usize, 0);
    s.retry_results.clear();
    let mut ops: Vec<ReadOp<'_, PhysAddr>> = s
        .retry_buf
        .chunks_mut(eb as usize)
        .zip(&addrs)
        .map(|(b, a)| ReadOp::new(PhysAddr(*a), b))
        .collect();
    mem.read_batch(&mut ops);
    s.retry_results.extend(ops.into_iter().map(|o| o.result));
}

fn walk_chunk<P: PhysicalMemory + ?Sized>(
    mem: &P,
    mmu: &Mmu,
    pend: &mut [Pending],
    out: &mut [Result<Translation>],
    s: &mut Scratch,
) {
    let eb = u64::from(mmu.entry_bytes());
    let mut live = pend.len();
    for (li, lv) in mmu.levels().iter().enumerate() {
        if live == 0 {
            break;
        }
        let pend = &mut pend[..live];
        // 1. Runs of consecutive addresses whose entry is in the same table.
        s.runs.clear();
        for (k, p) in pend.iter().enumerate() {
            let off = lv.index(p.va) * eb;
            match s.runs.last_mut() {
                Some(r) if r.table == p.table => {
                    r.lo = r.lo.min(off);
                    r.hi = r.hi.max(off);
                    r.end = k + 1;
                }
                _ => s.runs.push(Run {
                    table: p.table,
                    lo: off,
                    hi: off,
                    start: k,
                    end: k + 1,
                    read: 0,
                }),
            }
        }
        // 2. One read per distinct table: runs of the same table (aliases: two parents
        // pointing to one table) merge through a small open-addressing hash table.
        s.reads.clear();
        let cap = (s.runs.len() * 2).next_power_of_two().max(16);
        s.slots.clear();
        s.slots.resize(cap, (0, usize::MAX));
        for run in s.runs.iter_mut() {
            let mut h = (run.table.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & (cap - 1);
            loop {
                let (key, ri) = s.slots[h];
                if ri == usize::MAX {
                    s.slots[h] = (run.table, s.reads.len());
                    run.read = s.reads.len();
                    s.reads.push(Read {
                        table: run.table,
                        addr: run.lo,
                        len: run.hi,
                        buf_off: 0,
                    });
                    break;
                }
                if key == run.table {
                    let rd = &mut s.reads[ri];
                    rd.addr = rd.addr.min(run.lo);
                    rd.len = rd.len.max(run.hi);
                    run.read = ri;
                    break;
                }
                h = (h + 1) & (cap - 1);
            }
        }
        // `addr`/`len` held the lowest/highest entry offset; turn them into the read.
        let mut total = 0usize;
        for rd in s.reads.iter_mut() {
            let (lo, hi) = (rd.addr, rd.len);
            rd.addr = rd.table.wrapping_add(lo);
            rd.len = hi - lo + eb;
            rd.buf_off = total;
            total += rd.len as usize;
        }
        // 3. All reads of this level in one batch.
        s.buf.clear();
        s.buf.resize(total, 0);
        s.results.clear();
        {
            let mut ops: Vec<ReadOp<'_, PhysAddr>> = Vec::with_capacity(s.reads.len());
            let mut rest: &mut [u8] = &mut s.buf;
            for rd in &s.reads {
                let (head, tail) = rest.split_at_mut(rd.len as usize);
                ops.push(ReadOp::new(PhysAddr(rd.addr), head));
                rest = tail;
            }
            mem.read_batch(&mut ops);
            s.results.extend(ops.into_iter().map(|o| o.result));
        }
        // 3b. A failed multi-entry read is retried entry by entry (one more batch), so
        // that a connector failing a whole span for one bad byte cannot make a batch
        // differ from the same translations done one by one.
        let retry = s
            .reads
            .iter()
            .zip(&s.results)
            .any(|(rd, r)| r.is_err() && rd.len > eb);
        if retry {
            retry_entries(mem, lv, eb, pend, s);
        } else {
            s.retry_slot.clear();
        }
        // 4. Decode; keep the addresses that continue, in order (compaction in place).
        let mut w = 0usize;
        for run in &s.runs {
            let rd = &s.reads[run.read];
            let res = &s.results[run.read];
            let run_lo = rd.addr.wrapping_sub(run.table);
            for k in run.start..run.end {
                let p = pend[k];
                let off = lv.index(p.va) * eb;
                let in_read = off - run_lo;
                let entry = if let Some(cause) = span_failure(res, in_read, eb) {
                    match s.retry_slot.get(k).copied().filter(|x| *x != usize::MAX) {
                        Some(slot) => match &s.retry_results[slot] {
                            Ok(()) => mmu.entry_at(&s.retry_buf, slot * eb as usize).unwrap_or(0),
                            Err(e) => {
                                out[p.idx] = Err(unreadable(mmu, li, &p, e.clone()));
                                continue;
                            }
                        },
                        None => {
                            out[p.idx] = Err(unreadable(mmu, li, &p, cause));
                            continue;
                        }
                    }
                } else {
                    mmu.entry_at(&s.buf, rd.buf_off + in_read as usize)
                        .unwrap_or(0)
                };
                match mmu.decode(li, entry) {
                    Step::Table(t) => {
                        let mut q = p;
                        q.restrict |= mmu.restrictions(li, entry, false);
                        q.table = t;
                        q.parent = entry;
                        pend[w] = q;
                        w += 1;
                    }
                    Step::Leaf { base, shift } => {
                        let r = p.restrict | mmu.restrictions(li, entry, true);
                        let size = page_size(shift);
                        out[p.idx] = Ok(Translation {
                            va: VirtAddr(p.va),
                            pa: PhysAddr(base | (p.va & size.mask())),
                            size,
                            flags: PageFlags::from_restrictions(r),
                        });
                    }
                    Step::NotPresent => {
                        out[p.idx] = Err(Error::NotPresent {
                            va: VirtAddr(p.va),
                            root: PhysAddr(p.root),
                            level: lv.number,
                        });
                    }
                    Step::Bad(why) => {
                        out[p.idx] = Err(Error::BadEntry {
                            va: VirtAddr(p.va),
                            root: PhysAddr(p.root),
                            level: lv.number,
                            entry,
                            why: why.into(),
                        });
                    }
                }
            }
        }
        live = w;
    }
    // Only reachable with an MMU whose last level still yields tables (never for the
    // built-in descriptions); fail the leftovers rather than leave them unset.
    for p in &pend[..live] {
        out[p.idx] = Err(Error::BadEntry {
            va: VirtAddr(p.va),
            root: PhysAddr(p.root),
            level: 1,
            entry: p.parent,
            why: "walk did not end at the last level".into(),
        });
    }
}

/// The error that covers bytes `[off, off+len)` of a read's outcome, if any.
#[inline(always)]
fn span_failure(res: &Result<()>, off: u64, len: u64) -> Option<Error> {
    if res.is_ok() {
        return None;
    }
    span_failure_slow(res, off, len)
}

#[cold]
fn span_failure_slow(res: &Result<()>, off: u64, len: u64) -> Option<Error> {
    match res {
        Ok(()) => None,
        Err(Error::Partial { failed, .. }) => failed
            .iter()
            .find(|f: &&FailedSpan| {
                (f.offset as u64) < off + len && off < f.offset as u64 + f.len as u64
            })
            .map(|f| (*f.cause).clone()),
        Err(e) => Some(e.clone()),
    }
}

fn unreadable(mmu: &Mmu, li: usize, p: &Pending, cause: Error) -> Error {
    if li == 0 {
        return cause.context(format!(
            "translating {}: page-table root {:#x} is not readable",
            VirtAddr(p.va),
            p.root
        ));
    }
    let parent_level = mmu.levels().get(li - 1).map(|l| l.number).unwrap_or(0);
    Error::BadEntry {
        va: VirtAddr(p.va),
        root: PhysAddr(p.root),
        level: parent_level,
        entry: p.parent,
        why: "points to a page table outside readable physical memory".into(),
    }
}

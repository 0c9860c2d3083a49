//! Whole-address-space page maps. **Key decision: scan tables, not addresses.** The walk
//! reads each table page once (the children of one table in one `read_batch`), scans its
//! entries in a tight loop, skips non-present entries and subtrees outside the VA filter
//! without reading them, and reports large pages as they are (never expanded to 4 KiB).
//!
//! Coalescing: adjacent pages with equal flags merge into one [`MapRange`]; by default
//! they must also be physically contiguous, so every range has one physical base
//! (`pa + offset` is exact for the whole range). Turn that off
//! ([`PageMapOptions::physically_contiguous`]) for a shorter, purely virtual listing.
//!
//! Hostile tables are bounded three ways: a table that is already on the current path
//! (self-maps, entries pointing back up) is skipped and counted; the number of tables
//! read and the number of output ranges are capped ([`PageMapOptions`]); the walk depth is
//! the MMU's level count. Hitting a cap sets [`WalkStats::truncated`].

use memlens_core::{PageSize, PhysAddr, PhysicalMemory, ReadOp, VirtAddr};
use serde::{Deserialize, Serialize};

use crate::mmu::{Mmu, Step, VaLayout};
use crate::types::{page_size, PageFlags, Roots};

/// Tables whose children are read in one batch at most (bounds memory per level).
const CHILD_BATCH: usize = 64;

/// Settings of a page-map walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageMapOptions {
    /// Only pages intersecting `[start, end]` (inclusive); `None` = everything.
    pub range: Option<(VirtAddr, VirtAddr)>,
    /// Merge adjacent pages only when physically contiguous too (default `true`).
    pub physically_contiguous: bool,
    /// Stop after reading this many tables (default 1 Mi).
    pub max_tables: u64,
    /// Stop after producing this many ranges or results (default 4 Mi).
    pub max_ranges: usize,
}

impl Default for PageMapOptions {
    fn default() -> Self {
        Self {
            range: None,
            physically_contiguous: true,
            max_tables: 1 << 20,
            max_ranges: 4 << 20,
        }
    }
}

/// A mapped virtual range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MapRange {
    /// First virtual address.
    pub va: VirtAddr,
    /// Length in bytes.
    pub len: u64,
    /// Physical address of the first byte (of the whole range when coalescing is
    /// physical, of the first page otherwise).
    pub pa: PhysAddr,
    /// Effective permissions (equal for every page of the range).
    pub flags: PageFlags,
    /// Size of the smallest page in the range.
    pub page_size: PageSize,
}

impl MapRange {
    /// One past the last address (saturating at 2^64).
    pub fn end(&self) -> u64 {
        self.va.0.saturating_add(self.len)
    }
}

/// What a walk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStats {
    /// Table pages read.
    pub tables_read: u64,
    /// Table pages that could not be read (the entries pointing to them are skipped).
    pub tables_unreadable: u64,
    /// Entries skipped because they point to a table already on the current path.
    pub loops_skipped: u64,
    /// Entries skipped because they cannot be followed (reserved encodings).
    pub bad_entries: u64,
    /// Pages (leaf entries) seen.
    pub pages: u64,
    /// Bytes mapped by those pages.
    pub mapped_bytes: u64,
    /// A cap was hit; the result is incomplete.
    pub truncated: bool,
}

/// A page map: the coalesced ranges and the walk's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMap {
    /// Mapped ranges, ascending.
    pub ranges: Vec<MapRange>,
    /// What the walk did.
    pub stats: WalkStats,
}

/// One page seen by a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// First virtual address of the page.
    pub va: VirtAddr,
    /// First physical address of the page.
    pub pa: PhysAddr,
    /// Page size.
    pub size: PageSize,
    /// Effective permissions.
    pub flags: PageFlags,
}

/// The coalesced page map of the address space (both halves).
pub fn page_map<P: PhysicalMemory + ?Sized>(
    mem: &P,
    mmu: &Mmu,
    roots: &Roots,
    opts: &PageMapOptions,
) -> PageMap {
    let mut ranges: Vec<MapRange> = Vec::new();
    let mut truncated = false;
    let mut stats = walk_leaves(mem, mmu, roots, opts, |l| {
        if let Some(last) = ranges.last_mut() {
            let adjacent = last.va.0.checked_add(last.len) == Some(l.va.0);
            let phys_ok =
                !opts.physically_contiguous || last.pa.0.checked_add(last.len) == Some(l.pa.0);
            if adjacent && phys_ok && last.flags == l.flags {
                last.len = last.len.saturating_add(l.size.bytes());
                last.page_size = last.page_size.min(l.size);
                return true;
            }
        }
        if ranges.len() >= opts.max_ranges {
            truncated = true;
            return false;
        }
        ranges.push(MapRange {
            va: l.va,
            len: l.size.bytes(),
            pa: l.pa,
            flags: l.flags,
            page_size: l.size,
        });
        true
    });
    stats.truncated |= truncated;
    PageMap { ranges, stats }
}

/// Every virtual address that maps the physical address `pa` (ascending), at most
/// `opts.max_ranges` of them.
pub fn find_mappings<P: PhysicalMemory + ?Sized>(
    mem: &P,
    mmu: &Mmu,
    roots: &Roots,
    pa: PhysAddr,
    opts: &PageMapOptions,
) -> (Vec<VirtAddr>, WalkStats) {
    let mut out = Vec::new();
    let mut truncated = false;
    let mut stats = walk_leaves(mem, mmu, roots, opts, |l| {
        let off = pa.0.wrapping_sub(l.pa.0);
        if pa.0 >= l.pa.0 && off < l.size.bytes() {
            if out.len() >= opts.max_ranges {
                truncated = true;
                return false;
            }
            out.push(VirtAddr(l.va.0.wrapping_add(off)));
        }
        true
    });
    stats.truncated |= truncated;
    (out, stats)
}

/// Calls `visit` for every mapped page in ascending virtual order (large pages once).
/// `visit` returns `false` to stop. See the module documentation for the bounds.
pub fn walk_leaves<P, F>(
    mem: &P,
    mmu: &Mmu,
    roots: &Roots,
    opts: &PageMapOptions,
    mut visit: F,
) -> WalkStats
where
    P: PhysicalMemory + ?Sized,
    F: FnMut(&Leaf) -> bool,
{
    let (lo, hi) = opts.range.map(|(a, b)| (a.0, b.0)).unwrap_or((0, u64::MAX));
    let mut w = Walk {
        mem,
        mmu,
        opts,
        lo,
        hi,
        stats: WalkStats::default(),
        path: Vec::with_capacity(8),
        stop: false,
        visit: &mut visit,
    };
    let walks: Vec<(u64, bool)> = match mmu.layout() {
        VaLayout::Split => vec![
            (mmu.mask_root(roots.lower.0), false),
            (mmu.mask_root(roots.upper.0), true),
        ],
        _ => vec![(mmu.mask_root(roots.lower.0), false)],
    };
    for (root, upper) in walks {
        if mmu.layout() == VaLayout::Split {
            // Skip a half that the filter excludes entirely.
            let first = mmu.complete_va(0, upper);
            let last = mmu.complete_va(u64::MAX, upper);
            if first > hi || last < lo {
                continue;
            }
        }
        let top = mmu.levels().first().copied();
        let Some(top) = top else { break };
        let len = (top.entries() * u64::from(mmu.entry_bytes())) as usize;
        let mut buf = vec![0u8; len];
        let mut op = [ReadOp::new(PhysAddr(root), &mut buf[..])];
        w.mem.read_batch(&mut op);
        let ok = op[0].result.is_ok();
        if !ok {
            w.stats.tables_unreadable += 1;
            continue;
        }
        w.stats.tables_read += 1;
        w.path.push(root);
        w.table(0, &buf, 0, 0, upper);
        w.path.pop();
        if w.stop {
            break;
        }
    }
    w.stats
}

struct Walk<'a, P: ?Sized, F> {
    mem: &'a P,
    mmu: &'a Mmu,
    opts: &'a PageMapOptions,
    lo: u64,
    hi: u64,
    stats: WalkStats,
    path: Vec<u64>,
    stop: bool,
    visit: &'a mut F,
}

impl<P, F> Walk<'_, P, F>
where
    P: PhysicalMemory + ?Sized,
    F: FnMut(&Leaf) -> bool,
{
    /// Scans the table `data` at level index `li`, whose entries cover raw VA bits
    /// starting at `va_base`, with restrictions `restrict` inherited from above. Leaves
    /// and subtrees are visited in entry order (ascending VA); the child tables are read
    /// in groups of [`CHILD_BATCH`], one `read_batch` per group.
    fn table(&mut self, li: usize, data: &[u8], va_base: u64, restrict: u8, upper: bool) {
        let mmu = self.mmu;
        let Some(lv) = mmu.levels().get(li).copied() else {
            return;
        };
        let eb = usize::from(mmu.entry_bytes());
        let span = lv.entry_span();
        let mut items: Vec<Item> = Vec::new();
        let mut children: Vec<(u64, u64, u8)> = Vec::new();
        for (i, chunk) in data.chunks_exact(eb).enumerate() {
            let e = mmu.entry_at(chunk, 0).unwrap_or(0);
            if !mmu.rules().valid.matches(e) {
                continue;
            }
            let raw = va_base | ((i as u64) << lv.shift);
            let va = mmu.complete_va(raw, upper);
            let last = va.saturating_add(span - 1);
            if va > self.hi || last < self.lo {
                continue;
            }
            match mmu.decode(li, e) {
                Step::Table(t) => {
                    let r = restrict | mmu.restrictions(li, e, false);
                    items.push(Item::Child(children.len()));
                    children.push((raw, t, r));
                }
                Step::Leaf { base, shift } => {
                    let r = restrict | mmu.restrictions(li, e, true);
                    items.push(Item::Leaf(Leaf {
                        va: VirtAddr(va),
                        pa: PhysAddr(base),
                        size: page_size(shift),
                        flags: PageFlags::from_restrictions(r),
                    }));
                }
                Step::NotPresent => {}
                Step::Bad(_) => self.stats.bad_entries += 1,
            }
        }
        let next = mmu.levels().get(li + 1).copied();
        let tbytes = next.map_or(0, |n| (n.entries() * eb as u64) as usize);
        let mut buf: Vec<u8> = Vec::new();
        let mut state: Vec<ChildState> = Vec::new();
        let mut loaded: Option<usize> = None;
        for item in items {
            match item {
                Item::Leaf(leaf) => {
                    self.stats.pages += 1;
                    self.stats.mapped_bytes =
                        self.stats.mapped_bytes.saturating_add(leaf.size.bytes());
                    if !(self.visit)(&leaf) {
                        self.stop = true;
                        return;
                    }
                }
                Item::Child(ci) => {
                    let group = ci / CHILD_BATCH;
                    if loaded != Some(group) {
                        let lo = group * CHILD_BATCH;
                        let hi = (lo + CHILD_BATCH).min(children.len());
                        if !self.load(&children[lo..hi], tbytes, &mut buf, &mut state) {
                            return;
                        }
                        loaded = Some(group);
                    }
                    let k = ci % CHILD_BATCH;
                    let (raw, t, r) = children[ci];
                    if state.get(k) != Some(&ChildState::Ready) {
                        continue;
                    }
                    let Some(data) = buf.get(k * tbytes..(k + 1) * tbytes) else {
                        continue;
                    };
                    self.path.push(t);
                    self.table(li + 1, data, raw, r, upper);
                    self.path.pop();
                    if self.stop {
                        return;
                    }
                }
            }
        }
    }

    /// Reads a group of child tables in one batch. Returns `false` when the table cap
    /// stops the walk.
    fn load(
        &mut self,
        group: &[(u64, u64, u8)],
        tbytes: usize,
        buf: &mut Vec<u8>,
        state: &mut Vec<ChildState>,
    ) -> bool {
        state.clear();
        for &(_, t, _) in group {
            // Loops: a child that is already on the path is never entered.
            if self.path.contains(&t) {
                self.stats.loops_skipped += 1;
                state.push(ChildState::Skip);
            } else {
                state.push(ChildState::Ready);
            }
        }
        let wanted = state.iter().filter(|s| **s == ChildState::Ready).count() as u64;
        if wanted > self.opts.max_tables.saturating_sub(self.stats.tables_read) {
            self.stats.truncated = true;
            self.stop = true;
            return false;
        }
        buf.clear();
        buf.resize(tbytes * group.len(), 0);
        let mut ops: Vec<ReadOp<'_, PhysAddr>> = Vec::with_capacity(group.len());
        let mut slots: Vec<usize> = Vec::with_capacity(group.len());
        for (k, (piece, &(_, t, _))) in buf.chunks_mut(tbytes.max(1)).zip(group).enumerate() {
            if state[k] == ChildState::Ready {
                ops.push(ReadOp::new(PhysAddr(t), piece));
                slots.push(k);
            }
        }
        self.mem.read_batch(&mut ops);
        for (op, k) in ops.iter().zip(slots) {
            if op.result.is_ok() {
                self.stats.tables_read += 1;
            } else {
                self.stats.tables_unreadable += 1;
                state[k] = ChildState::Skip;
            }
        }
        true
    }
}

enum Item {
    Leaf(Leaf),
    Child(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildState {
    Ready,
    Skip,
}

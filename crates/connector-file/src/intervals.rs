//! Painter's-algorithm interval map: later inserts overwrite earlier ones where they
//! overlap. **Key decision: one structure resolves every "several records claim the same
//! bytes" case** — overlapping ELF `PT_LOAD`s (fed in reverse file order, so the first
//! header wins) and rewritten records of a flattened kdump (fed in file order, so the last
//! write wins, as `makedumpfile -R` would replay them). Each insert adds at most three
//! intervals, so `n` inserts cost `O(n log n)` whatever the input.

use std::collections::BTreeMap;

/// What backs an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backing {
    /// Bytes at this offset of the source (advancing with the address).
    At(u64),
    /// Reads as zeros.
    Zero,
}

impl Backing {
    fn advance(self, by: u64) -> Backing {
        match self {
            Backing::At(o) => Backing::At(o.saturating_add(by)),
            Backing::Zero => Backing::Zero,
        }
    }
}

/// One resolved interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interval {
    pub start: u64,
    pub end: u64,
    pub backing: Backing,
}

#[derive(Default)]
pub(crate) struct IntervalMap {
    map: BTreeMap<u64, (u64, Backing)>,
    /// Bytes of earlier inserts that a later insert overwrote with a *different* backing.
    pub conflicts: u64,
}

impl IntervalMap {
    /// Inserts `[start, end)` (no-op if empty), overwriting what it overlaps.
    pub(crate) fn insert(&mut self, start: u64, end: u64, backing: Backing) {
        if end <= start {
            return;
        }
        let mut hit = Vec::new();
        for (&s, &(e, b)) in self.map.range(..end).rev() {
            if e <= start {
                break;
            }
            hit.push((s, e, b));
        }
        for (s, e, b) in hit {
            self.map.remove(&s);
            let ov_start = s.max(start);
            let ov_end = e.min(end);
            if b.advance(ov_start - s) != backing.advance(ov_start - start) {
                self.conflicts = self.conflicts.saturating_add(ov_end - ov_start);
            }
            if s < start {
                self.map.insert(s, (start, b));
            }
            if e > end {
                self.map.insert(end, (e, b.advance(end - s)));
            }
        }
        self.map.insert(start, (end, backing));
    }

    /// The intervals in address order, adjacent ones with continuing backing merged.
    pub(crate) fn into_sorted(self) -> Vec<Interval> {
        let mut out: Vec<Interval> = Vec::with_capacity(self.map.len());
        for (start, (end, backing)) in self.map {
            if let Some(last) = out.last_mut() {
                if last.end == start && last.backing.advance(last.end - last.start) == backing {
                    last.end = end;
                    continue;
                }
            }
            out.push(Interval {
                start,
                end,
                backing,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(start: u64, end: u64, backing: Backing) -> Interval {
        Interval {
            start,
            end,
            backing,
        }
    }

    #[test]
    fn overwrite_split_and_merge() {
        let mut m = IntervalMap::default();
        m.insert(0, 100, Backing::At(1000));
        m.insert(40, 60, Backing::Zero);
        m.insert(100, 200, Backing::At(1100)); // continues the first: merges
        assert_eq!(m.conflicts, 20);
        assert_eq!(
            m.into_sorted(),
            vec![
                iv(0, 40, Backing::At(1000)),
                iv(40, 60, Backing::Zero),
                iv(60, 200, Backing::At(1060))
            ]
        );
        // Same relation: no conflict counted.
        let mut m = IntervalMap::default();
        m.insert(0, 100, Backing::At(0));
        m.insert(50, 150, Backing::At(50));
        assert_eq!(m.conflicts, 0);
        assert_eq!(m.into_sorted(), vec![iv(0, 150, Backing::At(0))]);
    }
}

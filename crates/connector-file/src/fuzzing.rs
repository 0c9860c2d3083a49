//! Support for fuzz targets and the corpus-replay tests: open a file with every parser and
//! read what it claims to hold, with bounded work. Not part of the stable API.

use std::path::Path;

use memlens_core::{MemoryView, PhysAddr, ReadOp};

use crate::detect::FormatChoice;
use crate::dump::{open_dump, DumpOptions};

/// Every forced format plus auto-detection.
pub const CHOICES: [FormatChoice; 6] = [
    FormatChoice::Auto,
    FormatChoice::Elf,
    FormatChoice::Kdump,
    FormatChoice::Lime,
    FormatChoice::Avml,
    FormatChoice::Raw,
];

/// Opens `path` as `choice`; on success reads the first pages of the first ranges, a
/// page past the end, `info()` and the target. Returns whether the open succeeded.
/// Panics only if a parser panics (the point of fuzzing).
pub fn exercise(path: &Path, choice: FormatChoice) -> bool {
    let opts = DumpOptions {
        cache_bytes: 1 << 20,
        ..DumpOptions::with_format(choice)
    };
    let Ok(dump) = open_dump(path, &opts) else {
        return false;
    };
    let _ = dump.info().to_string();
    let _ = dump.target();
    let mut addrs = Vec::new();
    for r in dump.ranges().iter().take(32) {
        for k in 0..4u64 {
            let a = r.base.0.saturating_add(k.saturating_mul(4096).min(r.len));
            addrs.push(a.saturating_sub(3));
        }
        addrs.push(r.end_u64());
    }
    addrs.push(dump.metadata().max_addr.0);
    addrs.push(u64::MAX - 5);
    let mut bufs = vec![vec![0u8; 4096 + 7]; addrs.len()];
    let mut ops: Vec<ReadOp<'_, PhysAddr>> = addrs
        .iter()
        .zip(bufs.iter_mut())
        .map(|(a, b)| ReadOp::new(PhysAddr(*a), b))
        .collect();
    dump.read_batch(&mut ops);
    true
}

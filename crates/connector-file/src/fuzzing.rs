//! Support for fuzz targets and the corpus-replay tests: open a file with every parser and
//! read what it claims to hold, with bounded work. Not part of the stable API. **Key
//! decision: fuzz targets and the replay tests call the same functions here**, so a seed
//! or crash input replayed by `cargo test` runs exactly what the fuzzer ran.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

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

/// [`open_dump`] with table caps lowered to `caps` (never above the hard caps of
/// [`limits`](crate::limits)): lets a test reach a cap with a small file.
pub fn open_dump_capped(
    path: &Path,
    opts: &DumpOptions,
    caps: crate::limits::Caps,
) -> Result<crate::Dump, crate::FileError> {
    crate::dump::open_dump_with_caps(path, opts, &caps)
}

/// Writes `data` to a scratch file (in `/dev/shm` when it exists; one per process and
/// thread) and runs [`exercise`] with each of `choices`. Returns how many opened.
pub fn exercise_bytes(data: &[u8], choices: &[FormatChoice]) -> usize {
    let dir = if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let path = PathBuf::from(format!(
        "{dir}/memlens-fuzz-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&path, data).is_err() {
        return 0;
    }
    let opened = choices.iter().filter(|&&c| exercise(&path, c)).count();
    let _ = std::fs::remove_file(&path);
    opened
}

/// The flattened-kdump fuzz input: `data` as is when it starts with the `makedumpfile`
/// signature, else a valid 4096-byte flattened start header followed by `data` (so that
/// mutations land in the records and the logical kdump file, not in the signature).
pub fn flat_input(data: &[u8]) -> Cow<'_, [u8]> {
    if data.starts_with(crate::detect::FLAT_SIGNATURE) {
        return Cow::Borrowed(data);
    }
    let mut v = vec![0u8; crate::flat::FLAT_HEADER_LEN as usize];
    v[..crate::detect::FLAT_SIGNATURE.len()].copy_from_slice(crate::detect::FLAT_SIGNATURE);
    v[16..24].copy_from_slice(&1i64.to_be_bytes()); // type
    v[24..32].copy_from_slice(&1i64.to_be_bytes()); // version
    v.extend_from_slice(data);
    Cow::Owned(v)
}

/// The LZO1X decompressor on arbitrary bytes, into a 4096-byte page and into a buffer
/// sized by the first input byte. Returns the page result.
pub fn lzo(data: &[u8]) -> Result<usize, &'static str> {
    let mut page = vec![0u8; 4096];
    let r = crate::lzo::decompress(data, &mut page);
    if let Ok(n) = r {
        assert!(n <= page.len(), "lzo wrote {n} bytes into a 4096-byte page");
    }
    let mut small = vec![0u8; data.first().map_or(0, |&b| usize::from(b) * 16)];
    if let Ok(n) = crate::lzo::decompress(data, &mut small) {
        assert!(n <= small.len());
    }
    r
}

/// The LZO1X decompressor itself (for round-trip fuzzing against a compressor).
pub fn lzo_decompress(input: &[u8], out: &mut [u8]) -> Result<usize, &'static str> {
    crate::lzo::decompress(input, out)
}

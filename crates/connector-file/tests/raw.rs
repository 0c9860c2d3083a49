//! Raw-image reader: real files on disk, random batches against a byte-by-byte reference
//! over random memory maps (gaps included), and bad input.

use std::io::Write;

use memlens_connector_file::{FileError, MappedFile};
use memlens_core::memmap::MapEntry;
use memlens_core::{Error, MemoryMap, MemoryView, MemoryViewExt, MemoryWriteExt, PhysAddr, ReadOp};
use proptest::prelude::*;

fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

/// Reference: for each guest byte, the file offset that backs it, from plain tuples.
fn reference_byte(ranges: &[(u64, u64, u64)], file: &[u8], addr: u64) -> Option<u8> {
    ranges
        .iter()
        .find(|(base, len, _)| addr >= *base && addr - base < *len)
        .map(|(base, _, back)| file[(back + (addr - base)) as usize])
}

/// Random non-overlapping ranges inside a 64 KiB guest space, backed by a 16 KiB file.
fn ranges_strategy() -> impl Strategy<Value = Vec<(u64, u64, u64)>> {
    prop::collection::vec((0u64..64, 1u64..8, 0u64..12), 1..6).prop_map(|raw| {
        let mut out: Vec<(u64, u64, u64)> = Vec::new();
        let mut next_free = 0u64;
        let mut sorted = raw;
        sorted.sort();
        for (slot, len_k, back_k) in sorted {
            let base = (slot * 1024).max(next_free);
            let len = len_k * 512 + 7;
            if base + len > 65536 {
                break;
            }
            out.push((base, len, back_k * 1024 + 3));
            next_free = base + len + 1;
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn batches_match_reference(
        ranges in ranges_strategy(),
        reads in prop::collection::vec((0u64..66000, 0usize..3000), 1..40),
        seed in any::<u64>(),
    ) {
        let mut state = seed | 1;
        let file: Vec<u8> = (0..16384).map(|_| { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state as u8 }).collect();
        let f = file_with(&file);
        let entries = ranges.iter().map(|&(b, l, k)| MapEntry { base: PhysAddr(b), len: l, backing: k }).collect();
        let map = MemoryMap::new(entries).unwrap();
        let mem = MappedFile::open_with(f.path(), Some(map), false).unwrap();

        let mut bufs: Vec<Vec<u8>> = reads.iter().map(|(_, l)| vec![0xAA; *l]).collect();
        let mut ops: Vec<ReadOp<'_, PhysAddr>> = reads.iter().zip(bufs.iter_mut())
            .map(|((a, _), b)| ReadOp::new(PhysAddr(*a), b)).collect();
        mem.read_batch(&mut ops);
        let results: Vec<_> = ops.into_iter().map(|o| o.result).collect();

        for (((addr, len), buf), result) in reads.iter().zip(&bufs).zip(&results) {
            let expect: Vec<Option<u8>> = (0..*len as u64).map(|i| reference_byte(&ranges, &file, addr + i)).collect();
            let all_ok = expect.iter().all(Option::is_some);
            prop_assert_eq!(result.is_ok(), all_ok, "read {:#x}+{}: {:?}", addr, len, result);
            for (i, e) in expect.iter().enumerate() {
                if let Some(b) = e { prop_assert_eq!(buf[i], *b, "byte {} of read {:#x}", i, addr); }
            }
            // The failed spans name exactly the unbacked bytes.
            if let Err(err) = result {
                let mut failed = vec![false; *len];
                match err {
                    Error::Partial { failed: spans, total } => {
                        prop_assert_eq!(*total, *len);
                        for s in spans { for f in failed.iter_mut().skip(s.offset).take(s.len) { *f = true; } }
                    }
                    Error::Gap { .. } | Error::OutOfRange { .. } => failed.iter_mut().for_each(|f| *f = true),
                    other => prop_assert!(false, "unexpected error {other}"),
                }
                for (i, e) in expect.iter().enumerate() { prop_assert_eq!(failed[i], e.is_none(), "byte {}", i); }
            }
            // A batch returns what the same read returns alone.
            let mut alone = vec![0u8; *len];
            let r = mem.read_into(PhysAddr(*addr), &mut alone);
            prop_assert_eq!(r.is_ok(), result.is_ok());
        }
    }
}

#[test]
fn identity_raw_reads_and_helpers() {
    let mut data = vec![0u8; 8192];
    data[0x100..0x106].copy_from_slice(b"hello\0");
    data[0x200..0x208].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    let f = file_with(&data);
    let mem = MappedFile::open(f.path()).unwrap();
    assert_eq!(mem.read_cstr(PhysAddr(0x100), 64).unwrap(), "hello");
    assert_eq!(
        mem.read_u64(PhysAddr(0x200)).unwrap(),
        0x1122_3344_5566_7788
    );
    let md = mem.metadata();
    assert_eq!(md.max_addr, PhysAddr(8191));
    assert_eq!(md.real_size, 8192);
    assert!(md.readonly);
    // Past the end: an error naming the address and the highest valid one.
    let e = mem.read_vec(PhysAddr(8190), 4).unwrap_err();
    assert!(matches!(e, Error::Partial { .. }), "{e}");
    let e = mem.read_vec(PhysAddr(9000), 4).unwrap_err();
    assert!(
        e.to_string().contains("0x2328") && e.to_string().contains("0x1fff"),
        "{e}"
    );
    // Length 0 is a no-op success.
    assert!(mem.read_vec(PhysAddr(0), 0).unwrap().is_empty());
    // Writes are refused on a read-only open.
    assert!(matches!(
        mem.write_all_at(PhysAddr(0), b"x"),
        Err(Error::ReadOnly { .. })
    ));
}

#[test]
fn writable_only_on_request() {
    let f = file_with(&[0u8; 4096]);
    let mem = MappedFile::open_with(f.path(), None, true).unwrap();
    mem.write_all_at(PhysAddr(10), b"memlens").unwrap();
    mem.flush().unwrap();
    assert_eq!(&std::fs::read(f.path()).unwrap()[10..17], b"memlens");
}

#[test]
fn sparse_file_larger_than_ram_view() {
    // A 64 GiB sparse file: mapping works and unwritten regions read as zeros.
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().set_len(64 << 30).unwrap();
    let mem = MappedFile::open(f.path()).unwrap();
    assert_eq!(mem.read_u64(PhysAddr((64 << 30) - 8)).unwrap(), 0);
    assert_eq!(mem.metadata().real_size, 64 << 30);
}

#[test]
fn bad_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        MappedFile::open(dir.path()),
        Err(FileError::NotAFile { .. })
    ));
    assert!(matches!(
        MappedFile::open(dir.path().join("missing")),
        Err(FileError::Open { .. })
    ));
    let empty = file_with(&[]);
    let e = MappedFile::open(empty.path()).err().unwrap();
    assert!(matches!(e, FileError::Empty { .. }), "{e}");
    let small = file_with(&[0u8; 100]);
    let map = MemoryMap::new(vec![MapEntry {
        base: PhysAddr(0),
        len: 200,
        backing: 0,
    }])
    .unwrap();
    let e = MappedFile::open_with(small.path(), Some(map), false)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("0xc8") && e.to_string().contains("0x64"),
        "{e}"
    );
}

//! Hostile counts and sizes: each cap of `memlens_connector_file::limits` reached by a
//! small file built with the writers of `common/` (or raw bytes), asserting the error
//! (`FileError::Limit` naming the cap and the file offset of the field that asked, or a
//! truncation naming where) or the bounded result. Caps on tables that only a huge file
//! can fill (kdump runs, flattened records, AVML chunks, range headers) are lowered through
//! `fuzzing::open_dump_capped`, which runs the same code as `open_dump`.

mod common;

use common::*;
use memlens_connector_file::fuzzing::open_dump_capped;
use memlens_connector_file::limits::{self, Caps};
use memlens_connector_file::write::{CoreSegment, CoreWriter, EM_X86_64, PF_R};
use memlens_connector_file::{open_dump, Dump, DumpOptions, FileError, FormatChoice};
use memlens_core::{MemoryView, MemoryViewExt, PhysAddr};

fn open_as(bytes: &[u8], choice: FormatChoice) -> Result<Dump, FileError> {
    let f = file_with(bytes);
    open_dump(f.path(), &DumpOptions::with_format(choice))
}

fn open_capped(bytes: &[u8], choice: FormatChoice, caps: Caps) -> Result<Dump, FileError> {
    let f = file_with(bytes);
    open_dump_capped(f.path(), &DumpOptions::with_format(choice), caps)
}

/// The error is `FileError::Limit` for `cap` at file offset `offset`, and says so.
#[track_caller]
fn assert_limit(r: Result<Dump, FileError>, cap: &str, offset: u64) -> String {
    let e = match r {
        Ok(_) => panic!("opened; expected {cap} at {offset:#x}"),
        Err(e) => e,
    };
    let s = e.to_string();
    match &e {
        FileError::Limit {
            cap: c, offset: o, ..
        } => assert_eq!((*c, *o), (cap, offset), "{s}"),
        _ => panic!("expected {cap} at {offset:#x}: {s}"),
    }
    assert!(
        s.contains(cap) && s.contains(&format!("offset {offset:#x}")),
        "{s}"
    );
    s
}

/// `n` notes named `name` of type `kind` with an empty descriptor.
fn tiny_notes(name: &str, kind: u32, n: usize) -> Vec<u8> {
    note(name, kind, &[]).repeat(n)
}

/// An x86-64 ELF core: `segments` (note areas, in this order) each under its own
/// `PT_NOTE`s (`(segment index, copies)`), then one 4 KiB `PT_LOAD`.
fn elf_with_notes(segments: &[Vec<u8>], headers: &[usize]) -> Vec<u8> {
    let off = 64 + 56 * (headers.len() as u64 + 1);
    let mut body = Vec::new();
    let mut at = Vec::new();
    for s in segments {
        at.push((off + body.len() as u64, s.len() as u64));
        body.extend_from_slice(s);
    }
    let mut ph: Vec<Ph> = headers
        .iter()
        .map(|&i| (4, at[i].0, 0, at[i].1, 0))
        .collect();
    ph.push((1, off + body.len() as u64, 0x1000, 0x1000, 0x1000));
    body.extend([0x5a; 0x1000]);
    elf64(62, &ph, &body)
}

/// Finding 1: copies of one `PT_NOTE` are read once, so they cannot multiply vCPUs or the
/// note budget.
#[test]
fn elf_note_copies_are_read_once() {
    let cpus = note("CORE", 1, &[0u8; 336]).repeat(3);
    let d = open_as(&elf_with_notes(&[cpus], &[0; 50]), FormatChoice::Elf).unwrap();
    assert_eq!(d.registers().len(), 3);
    // 40 000 notes under two headers: one budget use, not two.
    let many = tiny_notes("X", 7, 40_000);
    let d = open_as(&elf_with_notes(&[many], &[0, 0]), FormatChoice::Elf).unwrap();
    let notes = &d
        .info()
        .details
        .iter()
        .find(|(k, _)| k == "notes")
        .unwrap()
        .1;
    assert_eq!(notes, "X/7×40000");
}

/// Finding 1: distinct `PT_NOTE` segments share one budget of `MAX_NOTES`.
#[test]
fn elf_notes_share_one_budget() {
    let many = tiny_notes("X", 7, 40_000); // 16 bytes a note
    let bytes = elf_with_notes(&[many.clone(), many], &[0, 1]);
    let second = 64 + 56 * 3 + 40_000 * 16;
    let over = second + (limits::MAX_NOTES as u64 - 40_000) * 16;
    assert_limit(open_as(&bytes, FormatChoice::Elf), "MAX_NOTES", over);
}

/// Finding 1: at most `MAX_CPUS` register notes; exactly that many open.
#[test]
fn elf_vcpus_are_capped() {
    let n = limits::MAX_CPUS;
    let d = open_as(
        &elf_with_notes(&[tiny_notes("CORE", 1, n)], &[0]),
        FormatChoice::Elf,
    )
    .unwrap();
    assert_eq!(d.registers().len(), n);
    let bytes = elf_with_notes(&[tiny_notes("CORE", 1, n + 1)], &[0]);
    let first = 64 + 56 * 2;
    let s = assert_limit(
        open_as(&bytes, FormatChoice::Elf),
        "MAX_CPUS",
        first + n as u64 * 20,
    );
    assert!(s.contains("NT_PRSTATUS"), "{s}");
    let qemu = elf_with_notes(&[tiny_notes("QEMU", 0, n + 1)], &[0]);
    assert_limit(
        open_as(&qemu, FormatChoice::Elf),
        "MAX_CPUS",
        first + n as u64 * 20,
    );
}

/// Finding 1: at most `MAX_NOTE_SEGMENTS` `PT_NOTE` headers (distinct, empty ones here).
#[test]
fn elf_note_headers_are_capped() {
    let n = limits::MAX_NOTE_SEGMENTS;
    let ph = |n: usize| -> Vec<Ph> { (0..n as u64).map(|i| (4, i, 0, 0, 0)).collect() };
    assert!(open_as(&elf64(62, &ph(n), &[]), FormatChoice::Elf).is_ok());
    assert_limit(
        open_as(&elf64(62, &ph(n + 1), &[]), FormatChoice::Elf),
        "MAX_NOTE_SEGMENTS",
        64,
    );
}

/// Findings 1 and 10: a note area beyond `MAX_NOTE_BYTES` and a name beyond
/// `MAX_NOTE_NAME` are refused before they are read; a 255-byte name opens.
#[test]
fn elf_note_areas_and_names_are_capped() {
    let huge = elf64(62, &[(4, 120, 0, limits::MAX_NOTE_BYTES + 1, 0)], &[]);
    assert_limit(open_as(&huge, FormatChoice::Elf), "MAX_NOTE_BYTES", 64);
    let ok = note(&"n".repeat(255), 1, &[]);
    assert!(open_as(&elf_with_notes(&[ok], &[0]), FormatChoice::Elf).is_ok());
    let long = note(&"n".repeat(300), 1, &[]);
    let bytes = elf_with_notes(&[long], &[0]);
    assert_limit(
        open_as(&bytes, FormatChoice::Elf),
        "MAX_NOTE_NAME",
        64 + 56 * 2,
    );
    // A file of many note kinds lists 32 of them in the details.
    let kinds: Vec<u8> = (0..100).flat_map(|k| note("K", k, &[])).collect();
    let d = open_as(&elf_with_notes(&[kinds], &[0]), FormatChoice::Elf).unwrap();
    let notes = &d
        .info()
        .details
        .iter()
        .find(|(k, _)| k == "notes")
        .unwrap()
        .1;
    assert!(notes.ends_with("and 68 more kinds"), "{notes}");
}

/// Finding 4: a `PN_XNUM` count beyond `MAX_PHDRS` is refused at section header 0's
/// `sh_info`, before the table is looked at.
#[test]
fn elf_program_headers_are_capped() {
    let mut sh = vec![0u8; 64];
    sh[44..48].copy_from_slice(&(limits::MAX_PHDRS as u32 + 1).to_le_bytes());
    let mut bytes = elf64(62, &[], &sh);
    bytes[40..48].copy_from_slice(&64u64.to_le_bytes()); // e_shoff
    bytes[56..58].copy_from_slice(&0xffffu16.to_le_bytes()); // PN_XNUM
    assert_limit(open_as(&bytes, FormatChoice::Elf), "MAX_PHDRS", 64 + 44);
}

/// Finding 8: zero-filled `PT_LOAD` tails add up to at most `MAX_PHYS_ADDR`.
#[test]
fn elf_zero_fill_is_capped() {
    let big = (1u64 << 40) + 0x1000;
    let d = open_as(
        &elf64(62, &[(1, 120, 0, 0x1000, big)], &[1; 0x1000]),
        FormatChoice::Elf,
    )
    .unwrap();
    assert_eq!(d.info().memory_bytes, big);
    let huge = limits::MAX_PHYS_ADDR + 0x1001;
    let bytes = elf64(62, &[(1, 120, 0, 0x1000, huge)], &[1; 0x1000]);
    assert_limit(open_as(&bytes, FormatChoice::Elf), "MAX_PHYS_ADDR", 64 + 40);
    // Two tails of just over half of it each: the sum is refused at the first header.
    let half = limits::MAX_PHYS_ADDR / 2 + 1;
    let ph = [(1, 176, 0, 0, half), (1, 176, 1 << 60, 0, half)];
    assert_limit(
        open_as(&elf64(62, &ph, &[]), FormatChoice::Elf),
        "MAX_PHYS_ADDR",
        64 + 40,
    );
}

/// Finding 3: VMCOREINFO beyond `MAX_VMCOREINFO` bytes or `MAX_VMCOREINFO_ENTRIES` keys is
/// truncated, and the dump details say so.
#[test]
fn elf_vmcoreinfo_is_truncated() {
    let mut text = b"OSRELEASE=6.1\n".to_vec();
    for i in 0..20_000 {
        text.extend(format!("K{i:05}=v\n").bytes());
    }
    let d = open_as(
        &elf_with_notes(&[note("VMCOREINFO", 0, &text)], &[0]),
        FormatChoice::Elf,
    )
    .unwrap();
    let v = d.vmcoreinfo().unwrap();
    assert_eq!(v.len(), limits::MAX_VMCOREINFO_ENTRIES);
    assert_eq!(v["OSRELEASE"], "6.1");
    assert!(!v.contains_key("K19999"));
    let cut: Vec<&String> = d
        .info()
        .details
        .iter()
        .filter(|(k, _)| k == "truncated")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert!(
        cut[0].contains(&format!("{} bytes", text.len()))
            && cut[0].contains("MAX_VMCOREINFO = 65536")
            && cut[0].contains("MAX_VMCOREINFO_ENTRIES"),
        "{}",
        cut[0]
    );
}

/// A kdump file (1 KiB blocks, 40 pages, two pages of data) to patch.
fn small_kdump(vmcoreinfo: &[u8]) -> Vec<u8> {
    let pages = vec![
        (1, vec![7u8; 1024], Codec::Raw),
        (5, vec![9u8; 1024], Codec::Zlib),
    ];
    kdump(1024, 40, &pages, &[], 31, &[], vmcoreinfo)
}

fn put(bytes: &mut [u8], at: u64, v: &[u8]) {
    bytes[at as usize..at as usize + v.len()].copy_from_slice(v);
}

/// Findings 3 and 1: kdump's `size_vmcoreinfo` is truncated at `MAX_VMCOREINFO`, a lying
/// one is a truncation error, and `size_note` is capped at `MAX_NOTE_BYTES`.
#[test]
fn kdump_note_area_and_vmcoreinfo_are_capped() {
    let mut bytes = small_kdump(b"");
    let text_at = bytes.len() as u64;
    bytes.extend(b"Z=1\n".repeat(50 << 10));
    put(&mut bytes, 1024 + 32, &text_at.to_le_bytes());
    put(&mut bytes, 1024 + 40, &(200u64 << 10).to_le_bytes());
    let d = open_as(&bytes, FormatChoice::Kdump).unwrap();
    assert_eq!(d.vmcoreinfo().unwrap()["Z"], "1");
    let cut = &d
        .info()
        .details
        .iter()
        .find(|(k, _)| k == "truncated")
        .unwrap()
        .1;
    assert!(cut.contains(&format!("offset {text_at:#x}")), "{cut}");
    assert!(cut.contains("204800 bytes"), "{cut}");
    put(&mut bytes, 1024 + 40, &(300u64 << 10).to_le_bytes());
    let e = open_as(&bytes, FormatChoice::Kdump).unwrap_err();
    assert!(
        matches!(e, FileError::Truncated { offset, .. } if offset == text_at),
        "{e}"
    );
    let mut bytes = small_kdump(b"");
    put(&mut bytes, 1024 + 48, &2048u64.to_le_bytes());
    put(
        &mut bytes,
        1024 + 56,
        &(limits::MAX_NOTE_BYTES + 1).to_le_bytes(),
    );
    assert_limit(
        open_as(&bytes, FormatChoice::Kdump),
        "MAX_NOTE_BYTES",
        1024 + 56,
    );
}

/// Findings 1, 5 and 11: the kdump header's `nr_cpus`, `max_mapnr × block_size` and bitmap
/// size are checked before anything is read for them.
#[test]
fn kdump_header_claims_are_capped() {
    let base = small_kdump(b"OSRELEASE=x\n");
    assert!(open_as(&base, FormatChoice::Kdump).is_ok());
    let mut b = base.clone();
    put(&mut b, 460, &(limits::MAX_CPUS as u32 + 1).to_le_bytes());
    assert_limit(open_as(&b, FormatChoice::Kdump), "MAX_CPUS", 460);
    // 2^43 pages of 1 KiB: 2^53 bytes of physical address space.
    let mut b = base.clone();
    put(&mut b, 1024 + 96, &(1u64 << 43).to_le_bytes());
    assert_limit(open_as(&b, FormatChoice::Kdump), "MAX_PHYS_ADDR", 1024 + 96);
    // More bitmap blocks than makedumpfile writes for max_mapnr.
    let mut b = base.clone();
    put(&mut b, 436, &3u32.to_le_bytes());
    let e = open_as(&b, FormatChoice::Kdump).unwrap_err();
    assert!(
        matches!(e, FileError::BadField { offset: 436, .. }) && e.to_string().contains("needs"),
        "{e}"
    );
    // 2^36 pages: 16 GiB of bitmaps, consistent with max_mapnr but beyond the cap.
    let mut b = base;
    put(&mut b, 1024 + 96, &(1u64 << 36).to_le_bytes());
    put(&mut b, 436, &(1u32 << 24).to_le_bytes());
    assert_limit(open_as(&b, FormatChoice::Kdump), "MAX_BITMAP_BYTES", 436);
}

/// Finding 2: a bitmap of alternating readable pages makes one range per page; beyond the
/// cap of runs the dump is refused as too fragmented, within it the runs are exact.
#[test]
fn kdump_fragmented_bitmap_is_refused() {
    let excluded: Vec<u64> = (0..4096).step_by(2).collect();
    let bytes = kdump(1024, 4096, &[], &excluded, 1, &[], b"");
    let caps = |n| Caps {
        kdump_ranges: n,
        ..Caps::HARD
    };
    let s = assert_limit(
        open_capped(&bytes, FormatChoice::Kdump, caps(2047)),
        "MAX_RANGES",
        3 * 1024,
    );
    assert!(
        s.contains("too fragmented") && s.contains("pfn 0xffe"),
        "{s}"
    );
    let d = open_capped(&bytes, FormatChoice::Kdump, caps(2048)).unwrap();
    assert_eq!(d.ranges().len(), 2048);
    assert_eq!(d.metadata().real_size, 2048 * 1024);
    assert_eq!(d.read_vec(PhysAddr(2048 * 1024), 8).unwrap(), [0; 8]);
    assert!(d.read_vec(PhysAddr(1024), 8).is_err());
}

/// Finding 6: a flattened file of 1-byte records opens like the normal file; beyond the
/// cap of records it is refused at the first record too many.
#[test]
fn flattened_tiny_records_are_capped() {
    let normal = small_kdump(b"OSRELEASE=x\n");
    let flat = flatten(&normal, 1, false, false);
    let d = open_as(&flat, FormatChoice::Kdump).unwrap();
    assert_eq!(d.read_vec(PhysAddr(5 * 1024), 1024).unwrap(), [9u8; 1024]);
    let caps = Caps {
        flat_records: 500,
        ..Caps::HARD
    };
    assert_limit(
        open_capped(&flat, FormatChoice::Kdump, caps),
        "MAX_FLAT_RECORDS",
        4096 + 500 * 17,
    );
}

/// `flat` with one more record of `len` bytes at logical offset `at` before its end marker.
fn with_record(mut flat: Vec<u8>, at: u64, len: usize) -> Vec<u8> {
    flat.truncate(flat.len() - 16);
    flat.extend(at.to_be_bytes());
    flat.extend((len as u64).to_be_bytes());
    flat.extend(std::iter::repeat_n(0x55u8, len));
    flat.extend((-1i64).to_be_bytes());
    flat.extend((-1i64).to_be_bytes());
    flat
}

/// Finding 2: a flattened file's bitmaps must be no longer than the file, and its
/// descriptor table must fit in the bytes its records hold, not just under a far record's
/// logical offset (holes read as zeros; chunked reads of them would succeed).
#[test]
fn flattened_tables_must_fit_what_records_hold() {
    // Bitmaps of 2^26 pages (16 MiB) in holes, under a 2 MiB record at 1 GiB.
    let mut normal = small_kdump(b"");
    put(&mut normal, 1024 + 96, &(1u64 << 26).to_le_bytes());
    put(&mut normal, 436, &(1u32 << 14).to_le_bytes());
    let flat = with_record(flatten(&normal, 4096, false, false), 1 << 30, 2 << 20);
    let e = open_as(&flat, FormatChoice::Kdump).unwrap_err();
    assert!(
        matches!(e, FileError::Truncated { offset: 3072, .. })
            && e.to_string().contains("the flattened file is"),
        "{e}"
    );
    // 2^20 pages present (the 2nd bitmap all set): 24 MiB of descriptors, while the records
    // (bitmaps and a 512 KiB record at 1 GiB) hold under 1 MiB.
    let mut normal = kdump(1024, 1 << 20, &[], &[], 31, &[], b"");
    let half = (1u64 << 17) as usize;
    let b2 = 3 * 1024 + half;
    normal[b2..b2 + half].fill(0xff);
    let flat = with_record(flatten(&normal, 4096, false, false), 1 << 30, 512 << 10);
    let e = open_as(&flat, FormatChoice::Kdump).unwrap_err();
    assert!(
        matches!(e, FileError::Truncated { offset, .. } if offset == 3 * 1024 + 2 * half as u64)
            && e.to_string().contains("page descriptor table")
            && e.to_string().contains("flattened records hold"),
        "{e}"
    );
}

/// An AVML range of `n` bytes at `start` as `n` stored snappy chunks of one byte each.
fn avml_tiny_chunks(start: u64, n: usize) -> Vec<u8> {
    let mut v = range_header(true, start, start + n as u64);
    let mut stream = b"\xff\x06\x00\x00sNaPpY".to_vec();
    for i in 0..n {
        stream.extend([0x01, 5, 0, 0, 0, 0, 0, 0, i as u8]);
    }
    v.extend(&stream);
    v.extend((stream.len() as u64).to_le_bytes());
    v
}

/// Finding 7: many tiny AVML chunks open with coalesced ranges; beyond the cap of chunks
/// they are refused at the first chunk too many.
#[test]
fn avml_tiny_chunks_are_capped() {
    let bytes = avml_tiny_chunks(0x1000, 5000);
    let d = open_as(&bytes, FormatChoice::Avml).unwrap();
    assert_eq!(d.ranges().len(), 1);
    assert_eq!(d.read_vec(PhysAddr(0x1000 + 300), 3).unwrap(), [44, 45, 46]);
    let caps = Caps {
        avml_chunks: 1000,
        ..Caps::HARD
    };
    assert_limit(
        open_capped(&bytes, FormatChoice::Avml, caps),
        "MAX_AVML_CHUNKS",
        32 + 10 + 1000 * 9,
    );
}

/// Finding 8: LiME and AVML range headers are capped.
#[test]
fn range_headers_are_capped() {
    let data = [3u8; 16];
    let ranges: Vec<(u64, &[u8])> = (0..11).map(|i| (i * 0x1000, &data[..])).collect();
    let caps = Caps {
        range_headers: 10,
        ..Caps::HARD
    };
    for (bytes, choice, len) in [
        (lime(&ranges), FormatChoice::Lime, 48),
        (
            avml(&ranges),
            FormatChoice::Avml,
            avml(&ranges[..1]).len() as u64,
        ),
    ] {
        assert!(open_as(&bytes, choice).is_ok());
        assert_limit(
            open_capped(&bytes, choice, caps),
            "MAX_RANGE_HEADERS",
            10 * len,
        );
    }
}

/// Finding 8: header-only (all-zero) blocks of 16 MiB may claim the bytes the file holds
/// plus `MAX_ZERO_EXCESS` (1 TiB = 65 536 blocks), and no more.
#[test]
fn zero_block_claims_are_capped() {
    let block = 16u64 << 20;
    let blocks = (limits::MAX_ZERO_EXCESS / block) as usize;
    let data = vec![1u8; block as usize];
    for is_avml in [false, true] {
        let headers = |n: usize| -> Vec<u8> {
            (0..n as u64)
                .flat_map(|i| range_header(is_avml, i * block, (i + 1) * block))
                .collect()
        };
        let choice = if is_avml {
            FormatChoice::Avml
        } else {
            FormatChoice::Lime
        };
        let d = open_as(&headers(blocks), choice).unwrap();
        assert_eq!(d.info().memory_bytes, limits::MAX_ZERO_EXCESS);
        let s = assert_limit(
            open_as(&headers(blocks + 1), choice),
            "MAX_ZERO_EXCESS",
            blocks as u64 * 32 + 16,
        );
        assert!(s.contains("header-only"), "{s}");
        // 16 MiB of data in the file allow one more block.
        let mut bytes = headers(blocks + 1);
        let range = [(1u64 << 50, &data[..])];
        bytes.extend(if is_avml { avml(&range) } else { lime(&range) });
        let d = open_as(&bytes, choice).unwrap();
        assert_eq!(d.info().memory_bytes, limits::MAX_ZERO_EXCESS + 2 * block);
    }
}

/// Finding 12: a core whose segments (another dump's ranges) add up past 2^64 is an error
/// of the writer, not a wrapped offset.
#[test]
fn core_writer_layout_overflow_is_an_error() {
    let seg = |len| CoreSegment {
        paddr: 0,
        vaddr: 0,
        len,
        flags: PF_R,
    };
    let e =
        CoreWriter::try_new(EM_X86_64, vec![], vec![seg(u64::MAX - 4096), seg(8192)]).unwrap_err();
    assert!(e.to_string().contains("past 2^64"), "{e}");
    let w = CoreWriter::new(EM_X86_64, vec![], vec![seg(u64::MAX)]);
    assert!(w.write_head(&mut Vec::new()).is_err());
}

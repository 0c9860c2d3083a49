//! Test-only writers for every dump format. They are written from the format descriptions
//! (see each function) and share no code or struct with the parsers under test.

#![allow(dead_code)] // reason: each test binary uses a different subset

use std::io::Write;

pub fn le16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
pub fn le32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
pub fn le64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// A structure of a test file and where the writer put it (`start..end`, file offsets), so
/// that tests can cut files exactly at structure boundaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub start: u64,
    pub end: u64,
}

pub fn part(name: impl Into<String>, start: u64, end: u64) -> Part {
    Part {
        name: name.into(),
        start,
        end,
    }
}

pub fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

/// One ELF note: namesz, descsz, type, name (NUL, padded to 4), desc (padded to 4).
pub fn note(name: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    le32(&mut v, name.len() as u32 + 1);
    le32(&mut v, desc.len() as u32);
    le32(&mut v, kind);
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v.extend_from_slice(desc);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

/// A program header as (p_type, p_offset, p_paddr, p_filesz, p_memsz).
pub type Ph = (u32, u64, u64, u64, u64);

/// An ELF64 little-endian core: 64-byte header, program headers at 64, then `body`
/// (offsets in `phdrs` are absolute file offsets; the body starts at 64 + 56 × n).
pub fn elf64(machine: u16, phdrs: &[Ph], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    v.extend_from_slice(&[0; 8]);
    le16(&mut v, 4); // e_type ET_CORE
    le16(&mut v, machine);
    le32(&mut v, 1); // e_version
    le64(&mut v, 0); // e_entry
    le64(&mut v, 64); // e_phoff
    le64(&mut v, 0); // e_shoff
    le32(&mut v, 0); // e_flags
    le16(&mut v, 64); // e_ehsize
    le16(&mut v, 56); // e_phentsize
    le16(&mut v, phdrs.len() as u16);
    le16(&mut v, 64); // e_shentsize
    le16(&mut v, 0); // e_shnum
    le16(&mut v, 0); // e_shstrndx
    assert_eq!(v.len(), 64);
    for &(t, off, paddr, filesz, memsz) in phdrs {
        le32(&mut v, t);
        le32(&mut v, 0); // p_flags
        le64(&mut v, off);
        le64(&mut v, 0xdead_0000 + paddr); // p_vaddr: must be ignored
        le64(&mut v, paddr);
        le64(&mut v, filesz);
        le64(&mut v, memsz);
        le64(&mut v, 0); // p_align
    }
    v.extend_from_slice(body);
    v
}

/// An ELF32 little-endian core (52-byte header, 32-byte program headers at 52).
pub fn elf32(machine: u16, phdrs: &[Ph], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"\x7fELF\x01\x01\x01\x00");
    v.extend_from_slice(&[0; 8]);
    le16(&mut v, 4);
    le16(&mut v, machine);
    le32(&mut v, 1);
    le32(&mut v, 0); // e_entry
    le32(&mut v, 52); // e_phoff
    le32(&mut v, 0); // e_shoff
    le32(&mut v, 0); // e_flags
    le16(&mut v, 52);
    le16(&mut v, 32);
    le16(&mut v, phdrs.len() as u16);
    le16(&mut v, 40);
    le16(&mut v, 0);
    le16(&mut v, 0);
    assert_eq!(v.len(), 52);
    for &(t, off, paddr, filesz, memsz) in phdrs {
        for x in [
            t,
            off as u32,
            paddr as u32,
            paddr as u32,
            filesz as u32,
            memsz as u32,
            0,
            0,
        ] {
            le32(&mut v, x);
        }
    }
    v.extend_from_slice(body);
    v
}

/// A LiME (`version` 1) or AVML (`version` 2) range header: magic, version, s_addr,
/// e_addr (inclusive), 8 reserved bytes.
pub fn range_header(avml: bool, start: u64, end_exclusive: u64) -> Vec<u8> {
    let mut v = Vec::new();
    le32(&mut v, if avml { 0x4C4D_5641 } else { 0x4C69_4D45 });
    le32(&mut v, if avml { 2 } else { 1 });
    le64(&mut v, start);
    le64(&mut v, end_exclusive - 1);
    le64(&mut v, 0);
    v
}

/// LiME image of `ranges` (start, bytes).
pub fn lime(ranges: &[(u64, &[u8])]) -> Vec<u8> {
    lime_or_avml_with_parts(false, ranges).0
}

/// LiME (`avml` false) or AVML image of `ranges`, plus where each range header and each
/// range's data (AVML: stream and its u64 length) went.
pub fn lime_or_avml_with_parts(avml: bool, ranges: &[(u64, &[u8])]) -> (Vec<u8>, Vec<Part>) {
    let mut v = Vec::new();
    let mut parts = Vec::new();
    for (i, (start, data)) in ranges.iter().enumerate() {
        let at = v.len() as u64;
        v.extend(range_header(avml, *start, start + data.len() as u64));
        parts.push(part(format!("range header {i}"), at, at + 32));
        if avml {
            let mut enc = snap::write::FrameEncoder::new(Vec::new());
            enc.write_all(data).unwrap();
            let stream = enc.into_inner().unwrap();
            v.extend_from_slice(&stream);
            le64(&mut v, stream.len() as u64);
        } else {
            v.extend_from_slice(data);
        }
        parts.push(part(format!("range data {i}"), at + 32, v.len() as u64));
    }
    (v, parts)
}

/// AVML image: each range as a snappy frame stream (snap's own encoder) + u64 length.
pub fn avml(ranges: &[(u64, &[u8])]) -> Vec<u8> {
    lime_or_avml_with_parts(true, ranges).0
}

/// How a test kdump stores one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Raw,
    Zlib,
    Snappy,
    Zstd,
    Lzo,
}

pub fn compress(codec: Codec, page: &[u8]) -> (Vec<u8>, u32) {
    match codec {
        Codec::Raw => (page.to_vec(), 0),
        Codec::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(page).unwrap();
            (e.finish().unwrap(), 1)
        }
        Codec::Lzo => (lzokay_native::compress(page).unwrap(), 2),
        Codec::Snappy => (snap::raw::Encoder::new().compress_vec(page).unwrap(), 4),
        Codec::Zstd => (zstd::bulk::compress(page, 3).unwrap(), 0x20),
    }
}

/// A kdump-compressed file (header version 6, 64-bit layout) with `block` = page size.
/// `pages` are (pfn, contents, codec); `excluded` pfns are in the 1st bitmap only.
/// Layout: block 0 header, block 1 sub-header, then notes + VMCOREINFO in block 2, bitmap
/// blocks, descriptors, data.
pub fn kdump(
    block: u64,
    max_mapnr: u64,
    pages: &[(u64, Vec<u8>, Codec)],
    excluded: &[u64],
    dump_level: u32,
    notes: &[u8],
    vmcoreinfo: &[u8],
) -> Vec<u8> {
    kdump_with_parts(
        block, max_mapnr, pages, excluded, dump_level, notes, vmcoreinfo,
    )
    .0
}

/// [`kdump`], plus where each structure went: the disk header, the sub-header (its 104
/// bytes of v6 fields), notes, VMCOREINFO, each bitmap, the descriptor table and each
/// page's data (`page data pfn N`, in file order).
pub fn kdump_with_parts(
    block: u64,
    max_mapnr: u64,
    pages: &[(u64, Vec<u8>, Codec)],
    excluded: &[u64],
    dump_level: u32,
    notes: &[u8],
    vmcoreinfo: &[u8],
) -> (Vec<u8>, Vec<Part>) {
    let mut parts = vec![
        part("disk_dump_header", 0, 464),
        part("kdump_sub_header", block, block + 104),
    ];
    let bitmap_bytes = max_mapnr.div_ceil(8).next_multiple_of(block);
    let bitmap_blocks = 2 * bitmap_bytes / block;
    let sub_hdr_size = 2u64; // sub-header block + one block of notes/vmcoreinfo
    let mut v = Vec::new();
    v.extend_from_slice(b"KDUMP   ");
    le32(&mut v, 6); // header_version
    let mut uts = [0u8; 390];
    uts[4 * 65..4 * 65 + 6].copy_from_slice(b"x86_64");
    uts[2 * 65..2 * 65 + 5].copy_from_slice(b"6.1.0");
    v.extend_from_slice(&uts); // ends at 402
    v.extend_from_slice(&[0; 6]); // align to 408
    le64(&mut v, 1_700_000_000); // tv_sec
    le64(&mut v, 0); // tv_usec
    le32(&mut v, 0); // status
    le32(&mut v, block as u32);
    le32(&mut v, sub_hdr_size as u32);
    le32(&mut v, bitmap_blocks as u32);
    le32(&mut v, max_mapnr.min(u32::MAX as u64) as u32);
    le32(&mut v, 0);
    le32(&mut v, 0);
    le32(&mut v, 0);
    le32(&mut v, 0); // current_cpu
    le32(&mut v, 1); // nr_cpus
    assert_eq!(v.len(), 464);
    v.resize(block as usize, 0);
    // Sub-header at block 1; notes and VMCOREINFO at block 2.
    let notes_off = 2 * block;
    let vmci_off = notes_off + notes.len() as u64;
    assert!(notes.len() + vmcoreinfo.len() <= block as usize);
    le64(&mut v, 0x1000000); // phys_base
    le32(&mut v, dump_level);
    le32(&mut v, 0); // split
    le64(&mut v, 0); // start_pfn
    le64(&mut v, 0); // end_pfn
    le64(&mut v, if vmcoreinfo.is_empty() { 0 } else { vmci_off });
    le64(&mut v, vmcoreinfo.len() as u64);
    le64(&mut v, if notes.is_empty() { 0 } else { notes_off });
    le64(&mut v, notes.len() as u64);
    le64(&mut v, 0);
    le64(&mut v, 0); // size_eraseinfo
    le64(&mut v, 0); // start_pfn_64
    le64(&mut v, max_mapnr); // end_pfn_64
    le64(&mut v, max_mapnr); // max_mapnr_64
    v.resize(2 * block as usize, 0);
    v.extend_from_slice(notes);
    v.extend_from_slice(vmcoreinfo);
    if !notes.is_empty() {
        parts.push(part("notes", notes_off, vmci_off));
    }
    if !vmcoreinfo.is_empty() {
        parts.push(part("vmcoreinfo", vmci_off, v.len() as u64));
    }
    v.resize(3 * block as usize, 0);
    let mut b1 = vec![0u8; bitmap_bytes as usize];
    let mut b2 = vec![0u8; bitmap_bytes as usize];
    let mut sorted: Vec<&(u64, Vec<u8>, Codec)> = pages.iter().collect();
    sorted.sort_by_key(|p| p.0);
    for (pfn, _, _) in &sorted {
        b1[(*pfn / 8) as usize] |= 1 << (pfn % 8);
        b2[(*pfn / 8) as usize] |= 1 << (pfn % 8);
    }
    for pfn in excluded {
        b1[(*pfn / 8) as usize] |= 1 << (pfn % 8);
    }
    let b1_off = v.len() as u64;
    v.extend_from_slice(&b1);
    v.extend_from_slice(&b2);
    // One structure: `bitmap_blocks` covers both bitmaps.
    parts.push(part("bitmaps (1st and 2nd)", b1_off, v.len() as u64));
    let desc_off = v.len() as u64;
    parts.push(part(
        "page descriptors",
        desc_off,
        desc_off + 24 * sorted.len() as u64,
    ));
    let mut data_off = desc_off + 24 * sorted.len() as u64;
    let mut data = Vec::new();
    for (pfn, page, codec) in &sorted {
        let (c, flags) = compress(*codec, page);
        le64(&mut v, data_off);
        le32(&mut v, c.len() as u32);
        le32(&mut v, flags);
        le64(&mut v, 0); // page_flags
        parts.push(part(
            format!("page data pfn {pfn}"),
            data_off,
            data_off + c.len() as u64,
        ));
        data_off += c.len() as u64;
        data.extend_from_slice(&c);
    }
    v.extend_from_slice(&data);
    (v, parts)
}

/// Flattens a normal file into makedumpfile's flattened stream: a 4096-byte header
/// ("makedumpfile", big-endian type 1, version 1), then big-endian (offset, size) records
/// of `chunk` bytes in the given `order` of chunk indices, then the (-1, -1) end marker.
/// `rewrite` first writes junk over chunk 0 so that the later, real record must win.
pub fn flatten(normal: &[u8], chunk: usize, reverse: bool, rewrite: bool) -> Vec<u8> {
    flatten_with_parts(normal, chunk, reverse, rewrite).0
}

/// [`flatten`], plus where each structure went: the start header, each record header and
/// its data, and the end marker.
pub fn flatten_with_parts(
    normal: &[u8],
    chunk: usize,
    reverse: bool,
    rewrite: bool,
) -> (Vec<u8>, Vec<Part>) {
    let mut parts = vec![part("flattened start header", 0, 4096)];
    let mut record = |v: &Vec<u8>, size: usize| {
        let at = v.len() as u64;
        let n = parts.len();
        parts.push(part(format!("record header {n}"), at, at + 16));
        parts.push(part(
            format!("record data {n}"),
            at + 16,
            at + 16 + size as u64,
        ));
    };
    let mut v = b"makedumpfile".to_vec();
    v.resize(16, 0);
    v.extend_from_slice(&1i64.to_be_bytes());
    v.extend_from_slice(&1i64.to_be_bytes());
    v.resize(4096, 0);
    let mut idx: Vec<usize> = (0..normal.len().div_ceil(chunk)).collect();
    if reverse {
        idx.reverse();
    }
    if rewrite {
        let n = chunk.min(normal.len());
        record(&v, n);
        v.extend_from_slice(&0i64.to_be_bytes());
        v.extend_from_slice(&(n as i64).to_be_bytes());
        v.extend(std::iter::repeat_n(0xEEu8, n));
    }
    for i in idx {
        let s = i * chunk;
        let e = (s + chunk).min(normal.len());
        // Skip all-zero chunks: `makedumpfile -R` leaves holes that read as zeros.
        if normal[s..e].iter().all(|&b| b == 0) && s != 0 && e != normal.len() {
            continue;
        }
        record(&v, e - s);
        v.extend_from_slice(&(s as i64).to_be_bytes());
        v.extend_from_slice(&((e - s) as i64).to_be_bytes());
        v.extend_from_slice(&normal[s..e]);
    }
    let at = v.len() as u64;
    v.extend_from_slice(&(-1i64).to_be_bytes());
    v.extend_from_slice(&(-1i64).to_be_bytes());
    parts.push(part("end marker", at, at + 16));
    (v, parts)
}

/// AVML as the tool writes it: ranges split into blocks of at most 16 MiB; a block that is
/// all zeros gets its header only (no stream, no length).
pub fn avml_like_the_tool(ranges: &[(u64, &[u8])]) -> Vec<u8> {
    const MAX_BLOCK: usize = 16 << 20;
    let mut v = Vec::new();
    for (start, data) in ranges {
        for (i, block) in data.chunks(MAX_BLOCK).enumerate() {
            let s = start + (i * MAX_BLOCK) as u64;
            if block.iter().all(|&b| b == 0) {
                v.extend(range_header(true, s, s + block.len() as u64));
            } else {
                v.extend(avml(&[(s, block)]));
            }
        }
    }
    v
}

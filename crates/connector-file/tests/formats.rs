//! Synthetic dumps of every format, built byte by byte by the writers in `common/` (which
//! share nothing with the parsers): golden files with documented bytes, all kdump codecs,
//! normal and flattened layouts, detection, and the behaviours the crate documents
//! (zero-fill, first-wins, excluded pages).

mod common;

use common::*;
use memlens_connector_file::{open_dump, DumpOptions, FileError, Format, FormatChoice};
use memlens_core::{CpuRegisters, Error, MemRange, MemoryView, MemoryViewExt, PhysAddr};

fn open(
    bytes: &[u8],
) -> (
    tempfile::NamedTempFile,
    Result<memlens_connector_file::Dump, FileError>,
) {
    let f = file_with(bytes);
    let d = open_dump(f.path(), &DumpOptions::default());
    (f, d)
}

fn byte(d: &memlens_connector_file::Dump, a: PhysAddr) -> Result<u8, Error> {
    d.read_vec(a, 1).map(|v| v[0])
}

fn prstatus_x86_64(rip: u64, rsp: u64, rax: u64) -> Vec<u8> {
    // elf_prstatus: 112 bytes of signal/pid/time fields, then user_regs_struct (27 × u64:
    // r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp
    // ss fs_base gs_base ds es fs gs), then pr_fpvalid + padding: 336 bytes.
    let mut p = vec![0u8; 336];
    let mut set =
        |slot: usize, v: u64| p[112 + 8 * slot..120 + 8 * slot].copy_from_slice(&v.to_le_bytes());
    set(10, rax);
    set(16, rip);
    set(18, 0x246);
    set(19, rsp);
    set(0, 0x1515); // r15
    p
}

fn qemu_note(cr3: u64, cr4: u64) -> Vec<u8> {
    // QEMUCPUState: u32 version = 1, u32 size = 440, 16 GPRs (rax rbx rcx rdx rsi rdi rsp
    // rbp r8..r15), rip, rflags, 10 × 24-byte segments, then cr[0..5] at offset 392 and
    // kernel_gs_base at 432.
    let mut q = vec![0u8; 440];
    q[0..4].copy_from_slice(&1u32.to_le_bytes());
    q[4..8].copy_from_slice(&440u32.to_le_bytes());
    q[8..16].copy_from_slice(&0xAAAAu64.to_le_bytes()); // rax
    q[8 + 16 * 8..8 + 17 * 8].copy_from_slice(&0xffff_ffff_8100_1234u64.to_le_bytes()); // rip
    q[392..400].copy_from_slice(&0x8005_0033u64.to_le_bytes()); // cr0
    q[392 + 24..392 + 32].copy_from_slice(&cr3.to_le_bytes());
    q[392 + 32..392 + 40].copy_from_slice(&cr4.to_le_bytes());
    q
}

const VMCI: &[u8] = b"OSRELEASE=6.1.0-test\nPAGESIZE=4096\nKERNELOFFSET=1c000000\nSYMBOL(init_top_pgt)=ffffffff9d810000\nNUMBER(phys_base)=-1000000\n\0";

/// Golden ELF: one PT_NOTE and three PT_LOADs.
///   note segment = CORE/NT_PRSTATUS (336 bytes) + QEMU (440 bytes) + VMCOREINFO text
///   load A: paddr 0x1000, 0x100 bytes from file, memsz 0x200 → 0x1100..0x1200 zero-filled
///   load B: paddr 0x4000, 0x100 bytes of 0xBB
///   load C: paddr 0x4080, 0x100 bytes of 0xCC (overlaps B by 0x80 with another offset:
///           B, the first header, wins)
fn golden_elf() -> (Vec<u8>, u64) {
    let mut notes = note("CORE", 1, &prstatus_x86_64(0x401000, 0x7ffc_0000, 7));
    notes.extend(note(
        "QEMU",
        0,
        &qemu_note(0x2b2a000 | 0x800, 0x3006f0 | 1 << 12),
    ));
    notes.extend(note("VMCOREINFO", 0, VMCI));
    let n = 4u64;
    let body_off = 64 + 56 * n;
    let note_off = body_off;
    let a_off = note_off + notes.len() as u64;
    let b_off = a_off + 0x100;
    let c_off = b_off + 0x100;
    let mut body = notes.clone();
    body.extend((0..0x100u32).map(|i| i as u8)); // A: 00 01 02 … ff
    body.extend([0xBB; 0x100]);
    body.extend([0xCC; 0x100]);
    let ph = [
        (4, note_off, 0, notes.len() as u64, 0),
        (1, a_off, 0x1000, 0x100, 0x200),
        (1, b_off, 0x4000, 0x100, 0x100),
        (1, c_off, 0x4080, 0x100, 0x100),
    ];
    (elf64(62, &ph, &body), a_off)
}

#[test]
fn elf_golden() {
    let (bytes, _) = golden_elf();
    let (_f, d) = open(&bytes);
    let d = d.unwrap();
    assert_eq!(d.format(), Format::Elf);
    assert_eq!(d.read_vec(PhysAddr(0x10fe), 4).unwrap(), [0xfe, 0xff, 0, 0]);
    assert_eq!(d.read_vec(PhysAddr(0x11fe), 2).unwrap(), [0, 0]);
    assert!(matches!(
        d.read_vec(PhysAddr(0x1200), 1),
        Err(Error::Gap { .. })
    ));
    // First header wins where B and C overlap; C's own tail follows.
    assert_eq!(byte(&d, PhysAddr(0x40ff)).unwrap(), 0xBB);
    assert_eq!(byte(&d, PhysAddr(0x4100)).unwrap(), 0xCC);
    assert_eq!(byte(&d, PhysAddr(0x417f)).unwrap(), 0xCC);
    assert!(matches!(
        byte(&d, PhysAddr(0x4180)),
        Err(Error::OutOfRange { .. })
    ));
    assert_eq!(
        d.ranges(),
        vec![
            MemRange::new(PhysAddr(0x1000), 0x200),
            MemRange::new(PhysAddr(0x4000), 0x180)
        ]
    );
    let info = d.info();
    assert!(
        info.details
            .iter()
            .any(|(k, v)| k.contains("conflicting") && v == "0x80"),
        "{info:?}"
    );
    assert_eq!(info.vcpus, 1);
    assert_eq!(info.roots[0].root, Some(0x2b2a800));
    assert_eq!(info.roots[0].la57, Some(true));
    assert_eq!(info.vmcoreinfo["KERNELOFFSET"], "1c000000");
    assert_eq!(info.vmcoreinfo["NUMBER(phys_base)"], "-1000000");
    let CpuRegisters::X86(x) = &d.registers()[0] else {
        panic!()
    };
    assert_eq!(x.root(), PhysAddr(0x2b2a000));
    assert_eq!(x.cr0, 0x8005_0033);
    // The QEMU note is authoritative for what both carry.
    assert_eq!(x.rip, 0xffff_ffff_8100_1234);
    assert_eq!(x.gpr[0], 0xAAAA);
    let t = d.target();
    assert_eq!(
        t.info.vmcoreinfo.as_ref().unwrap()["OSRELEASE"],
        "6.1.0-test"
    );
    assert_eq!(t.cpu.unwrap().cpu_count(), 1);
    let json = serde_json::to_string(info).unwrap();
    assert!(json.contains("\"format\":\"elf\""), "{json}");
}

#[test]
fn elf32_i386_and_prstatus_only() {
    // i386 elf_prstatus (144 bytes): regs (17 × u32: ebx ecx edx esi edi ebp eax ds es fs
    // gs orig_eax eip cs eflags esp ss) at offset 72.
    let mut pr = vec![0u8; 144];
    pr[72 + 4 * 6..72 + 4 * 7].copy_from_slice(&0x1234u32.to_le_bytes()); // eax
    pr[72 + 4 * 12..72 + 4 * 13].copy_from_slice(&0xc010_0000u32.to_le_bytes()); // eip
    let notes = note("CORE", 1, &pr);
    let body_off = 52 + 32 * 2;
    let mut body = notes.clone();
    body.extend([0x5A; 0x1000]);
    let ph = [
        (4, body_off, 0, notes.len() as u64, 0),
        (1, body_off + notes.len() as u64, 0x10_0000, 0x1000, 0x1000),
    ];
    let (_f, d) = open(&elf32(3, &ph, &body));
    let d = d.unwrap();
    assert_eq!(d.info().version.as_deref(), Some("ELF32"));
    assert_eq!(d.read_u32(PhysAddr(0x10_0ffc)).unwrap(), 0x5A5A_5A5A);
    let CpuRegisters::X86(x) = &d.registers()[0] else {
        panic!()
    };
    assert_eq!((x.gpr[0], x.rip, x.cr3), (0x1234, 0xc010_0000, 0));
    // Without a QEMU note nothing claims to know CR3.
    assert_eq!(d.info().roots[0].root, None);
}

/// 32-bit ARM `elf_prstatus` (148 bytes): 72 bytes of signal/pid/time fields, then
/// `pr_reg` = r0..r15, cpsr, orig_r0 (18 × u32), then pr_fpvalid.
fn prstatus_arm() -> Vec<u8> {
    let mut p = vec![0u8; 148];
    for i in 0..16u32 {
        let at = 72 + 4 * i as usize;
        p[at..at + 4].copy_from_slice(&(0xA000_0000 | i).to_le_bytes());
    }
    p[72 + 64..72 + 68].copy_from_slice(&0x6000_01d3u32.to_le_bytes()); // cpsr (SVC)
    p
}

/// An ELF32 core of a 32-bit ARM guest (`e_machine` 40, `EM_ARM`). No decoder exists for
/// its registers, so none are decoded (no x86 or aarch64 layout applied to ARM bytes);
/// the raw notes are reported with their file offsets and memory still reads.
#[test]
fn elf32_arm_registers_are_not_decoded_with_another_layout() {
    for pr in [prstatus_arm(), vec![0x41u8; 336], vec![0x42u8; 144]] {
        // The 336- and 144-byte variants have exactly the x86-64 and i386 sizes: the
        // machine, not the size, must decide.
        let mut notes = note("CORE", 1, &pr);
        notes.extend(note("CORE", 1, &pr)); // a second vCPU
        let body_off = 52 + 32 * 2;
        let mut body = notes.clone();
        body.extend([0x3C; 0x1000]);
        let ph = [
            (4, body_off, 0, notes.len() as u64, 0),
            (
                1,
                body_off + notes.len() as u64,
                0x8000_0000,
                0x1000,
                0x1000,
            ),
        ];
        let (f, d) = open(&elf32(40, &ph, &body));
        let d = d.unwrap();
        assert!(d.registers().is_empty(), "{:?}", d.registers());
        assert_eq!(d.info().vcpus, 0);
        assert!(d.target().cpu.is_none());
        assert_eq!(d.read_u32(PhysAddr(0x8000_0ffc)).unwrap(), 0x3C3C_3C3C);
        // The first descriptor sits after the note header (12 bytes) and "CORE\0" padded to 8.
        let first = body_off + 20;
        let second = first + pr.len().next_multiple_of(4) as u64 + 20;
        let (k, v) = d
            .info()
            .details
            .iter()
            .find(|(k, _)| k.contains("not decoded"))
            .unwrap_or_else(|| panic!("{:?}", d.info().details));
        assert!(k.contains("arm"), "{k}");
        let want = format!(
            "CORE/1 at {first:#x} ({n} bytes), CORE/1 at {second:#x} ({n} bytes)",
            n = pr.len()
        );
        assert_eq!(v, &want);
        // The offsets point at the raw register bytes.
        let raw = std::fs::read(f.path()).unwrap();
        assert_eq!(&raw[first as usize..first as usize + pr.len()], &pr[..]);
    }
}

/// `EM_NONE` (the file names no machine): only an exact known `NT_PRSTATUS` size picks a
/// layout; any other size leaves the registers undecoded.
#[test]
fn elf_without_machine_guesses_only_exact_sizes() {
    for (pr, decoded) in [
        (prstatus_x86_64(0x401000, 0x7ffc_0000, 7), true),
        (prstatus_arm(), false),
    ] {
        let notes = note("CORE", 1, &pr);
        let off = 64 + 56 * 2;
        let mut body = notes.clone();
        body.extend([0u8; 0x1000]);
        let ph = [
            (4, off, 0, notes.len() as u64, 0),
            (1, off + notes.len() as u64, 0, 0x1000, 0x1000),
        ];
        let (_f, d) = open(&elf64(0, &ph, &body));
        let d = d.unwrap();
        assert_eq!(d.registers().len(), usize::from(decoded));
        if let Some(CpuRegisters::X86(x)) = d.registers().first() {
            assert_eq!((x.rip, x.gpr[0]), (0x401000, 7));
        }
    }
}

#[test]
fn elf_pn_xnum_and_lying_counts() {
    // e_phnum = 0xffff: the count is sh_info of section header 0 (at e_shoff).
    let (mut bytes, _) = golden_elf();
    let shoff = bytes.len() as u64;
    let mut sh = vec![0u8; 64];
    sh[44..48].copy_from_slice(&4u32.to_le_bytes());
    bytes.extend(&sh);
    bytes[40..48].copy_from_slice(&shoff.to_le_bytes());
    bytes[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
    let (_f, d) = open(&bytes);
    assert_eq!(d.unwrap().ranges().len(), 2);
    // A lying sh_info (within MAX_PHDRS; beyond it: tests/limits.rs): an error naming
    // the table, no huge allocation.
    let n = bytes.len();
    bytes[n - 20..n - 16].copy_from_slice(&100_000u32.to_le_bytes());
    let (_f, d) = open(&bytes);
    let e = d.unwrap_err().to_string();
    assert!(
        e.contains("program header table") && e.contains("offset 0x40"),
        "{e}"
    );
    // p_offset + p_filesz past the end of the file.
    let (mut bytes, _) = golden_elf();
    let ph1 = 64 + 56;
    bytes[ph1 + 32..ph1 + 40].copy_from_slice(&0x1_0000_0000u64.to_le_bytes());
    let e = open(&bytes).1.unwrap_err().to_string();
    assert!(
        e.contains("PT_LOAD data for physical 0x1000") && e.contains("0x78"),
        "{e}"
    );
    // p_paddr + p_memsz overflows.
    let (mut bytes, _) = golden_elf();
    bytes[ph1 + 24..ph1 + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = open(&bytes).1.unwrap_err().to_string();
    assert!(e.contains("p_paddr + p_memsz"), "{e}");
}

/// Golden LiME: header bytes spelled out.
#[test]
fn lime_golden() {
    #[rustfmt::skip]
    let mut bytes: Vec<u8> = vec![
        0x45, 0x4d, 0x69, 0x4c,                         // magic "EMiL" = 0x4C694D45 LE
        0x01, 0x00, 0x00, 0x00,                         // version 1
        0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // s_addr 0x1000
        0x07, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // e_addr 0x1007 (inclusive)
        0, 0, 0, 0, 0, 0, 0, 0,                         // reserved
        b'm', b'e', b'm', b'l', b'e', b'n', b's', b'!', // 8 bytes of data
    ];
    // Second range: all zeros and written without data (as AVML's LiME writer does),
    // followed by a third range with data.
    bytes.extend(range_header(false, 0x8000, 0x9000));
    bytes.extend(range_header(false, 0x20000, 0x20004));
    bytes.extend(b"tail");
    let (_f, d) = open(&bytes);
    let d = d.unwrap();
    assert_eq!(d.format(), Format::Lime);
    assert_eq!(d.read_vec(PhysAddr(0x1000), 8).unwrap(), b"memlens!");
    assert_eq!(d.read_vec(PhysAddr(0x8ff0), 16).unwrap(), [0; 16]);
    assert_eq!(d.read_vec(PhysAddr(0x20000), 4).unwrap(), b"tail");
    assert!(d.read_vec(PhysAddr(0x1008), 1).is_err());
    assert_eq!(d.ranges().len(), 3);
    // Overlapping ranges and e_addr < s_addr are errors naming the header.
    let mut bad = lime(&[(0x1000, &[1; 16]), (0x1008, &[2; 16])]);
    let e = open(&bad).1.unwrap_err().to_string();
    assert!(e.contains("overlaps") && e.contains("0x38"), "{e}");
    bad = range_header(false, 0x2000, 0x1001);
    let e = open(&bad).1.unwrap_err().to_string();
    assert!(e.contains("e_addr"), "{e}");
    // A range covering all of 2^64 (s_addr 0, e_addr u64::MAX).
    let mut all = range_header(false, 0, 1);
    all[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(open(&all).1.is_err());
}

/// Golden AVML: one range stored as a hand-written frame stream with one *uncompressed*
/// chunk, then a zero block (header only), then a range compressed by snap's encoder.
#[test]
fn avml_golden() {
    let mut bytes = range_header(true, 0x3000, 0x3008);
    assert_eq!(&bytes[..8], b"AVML\x02\x00\x00\x00");
    #[rustfmt::skip]
    let stream: &[u8] = &[
        0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y', // stream identifier
        0x01, 0x0c, 0x00, 0x00,                                     // uncompressed chunk, 12 bytes
        0x00, 0x00, 0x00, 0x00,                                     // CRC (not checked)
        b'A', b'B', b'C', b'D', b'E', b'F', b'G', b'H',             // data
    ];
    bytes.extend_from_slice(stream);
    le64(&mut bytes, stream.len() as u64); // 26: bytes of the stream
    bytes.extend(range_header(true, 0x10000, 0x20000)); // all-zero block: no stream
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 / 3) as u8).collect();
    bytes.extend(avml(&[(0x100000, &big)]));
    let (_f, d) = open(&bytes);
    let d = d.unwrap();
    assert_eq!(d.format(), Format::Avml);
    assert_eq!(d.read_vec(PhysAddr(0x3000), 8).unwrap(), b"ABCDEFGH");
    assert_eq!(d.read_vec(PhysAddr(0x1fff0), 16).unwrap(), [0; 16]);
    // Across 64 KiB chunk boundaries of the compressed range.
    assert_eq!(
        d.read_vec(PhysAddr(0x100000 + 65530), 20).unwrap(),
        &big[65530..65550]
    );
    assert_eq!(d.read_vec(PhysAddr(0x100000), big.len()).unwrap(), big);
    assert!(matches!(
        byte(&d, PhysAddr(0x100000 + 200_000)),
        Err(Error::OutOfRange { .. })
    ));
    // A wrong compressed-size trailer is an error naming the field.
    let mut bad = bytes.clone();
    bad[32 + 26] ^= 1;
    let e = open(&bad).1.unwrap_err().to_string();
    assert!(
        e.contains("AVML compressed size") && e.contains("0x3a"),
        "{e}"
    );
}

/// LiME and AVML headers whose data is not in the file. AVML's block size is 16 MiB
/// (4096 pages), and an all-zero block of at most that size may be written as a header
/// alone; anything larger without data is an error naming the header's `e_addr` field and
/// the offset where the data should be.
#[test]
fn lime_and_avml_ranges_need_their_data() {
    const BLOCK: u64 = 16 << 20;
    for avml_format in [false, true] {
        let tail = if avml_format {
            "the AVML compressed stream must be present"
        } else {
            "LiME range data must follow the header"
        };
        let data = [0x5Au8; 64];
        let first = if avml_format {
            avml(&[(0x1000, &data)])
        } else {
            lime(&[(0x1000, &data)])
        };
        let at = first.len() as u64;
        // (start, end) of a header with nothing behind it; either last in the file or
        // followed by a good range.
        for (start, end, ok) in [
            (0x10_0000u64, 0x10_0000 + BLOCK, true),
            (0x10_0000, 0x10_0000 + BLOCK + 0x1000, false),
            (0x10_0000, 1 << 40, false),
            (0, u64::MAX, false),
        ] {
            for followed in [false, true] {
                let mut bytes = first.clone();
                bytes.extend(range_header(avml_format, start, end));
                if followed {
                    let next = if avml_format {
                        avml(&[(0x2_0000_0000, &data)])
                    } else {
                        lime(&[(0x2_0000_0000, &data)])
                    };
                    bytes.extend(next);
                }
                let (_f, d) = open(&bytes);
                let what = format!("avml={avml_format} {start:#x}..{end:#x} followed={followed}");
                if ok {
                    let d = d.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(d.read_vec(PhysAddr(end - 16), 16).unwrap(), [0; 16]);
                    assert_eq!(d.read_vec(PhysAddr(0x1000), 64).unwrap(), data);
                    continue;
                }
                let e = d
                    .err()
                    .unwrap_or_else(|| panic!("{what} opened"))
                    .to_string();
                assert!(
                    e.contains("range header e_addr")
                        && e.contains(&format!("offset {:#x}", at + 16))
                        && e.contains(tail)
                        && e.contains(&format!("(offset {:#x})", at + 32)),
                    "{what}: {e}"
                );
            }
        }
    }
}

fn sample_page(seed: u8, block: usize) -> Vec<u8> {
    (0..block)
        .map(|i| {
            if i % 97 < 40 {
                seed
            } else {
                (i as u8).wrapping_mul(seed | 1)
            }
        })
        .collect()
}

fn sample_kdump(dump_level: u32) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
    let codecs = [
        Codec::Raw,
        Codec::Zlib,
        Codec::Snappy,
        Codec::Zstd,
        Codec::Lzo,
    ];
    let mut pages = Vec::new();
    for (i, c) in codecs.iter().cycle().take(12).enumerate() {
        let pfn = [1u64, 2, 3, 5, 8, 13, 21, 34, 55, 56, 57, 63][i];
        pages.push((pfn, sample_page(i as u8 + 1, 4096), *c));
    }
    let mut notes = note("CORE", 1, &prstatus_x86_64(0x401000, 0x7ffc_0000, 7));
    notes.extend(note("QEMU", 0, &qemu_note(0x1234000, 0x6f0)));
    let bytes = kdump(4096, 70, &pages, &[4, 6], dump_level, &notes, VMCI);
    (bytes, pages.into_iter().map(|(p, d, _)| (p, d)).collect())
}

/// A kdump whose `utsname.machine` (disk header offset 12 + 4 × 65) names a machine
/// without a register decoder: its x86-64-sized `NT_PRSTATUS` is not decoded as x86-64.
#[test]
fn kdump_of_an_unknown_machine_leaves_registers_undecoded() {
    let (mut bytes, pages) = sample_kdump(1);
    let (_f, d) = open(&bytes);
    assert_eq!(d.unwrap().registers().len(), 1, "x86_64 decodes");
    let machine = 12 + 4 * 65;
    bytes[machine..machine + 65].fill(0);
    bytes[machine..machine + 6].copy_from_slice(b"armv7l");
    let (_f, d) = open(&bytes);
    let d = d.unwrap();
    assert!(d.registers().is_empty(), "{:?}", d.registers());
    let notes = &d
        .info()
        .details
        .iter()
        .find(|(k, _)| k == "notes")
        .unwrap()
        .1;
    assert!(
        notes.contains("not decoded") && notes.contains("armv7l") && notes.contains("CORE/1 at"),
        "{notes}"
    );
    // Memory is unaffected.
    let (pfn, page) = &pages[0];
    assert_eq!(&d.read_vec(PhysAddr(pfn * 4096), 4096).unwrap(), page);
}

#[test]
fn kdump_all_codecs_normal_and_flattened() {
    let (normal, pages) = sample_kdump(1);
    for (name, bytes) in [
        ("normal", normal.clone()),
        ("flat", flatten(&normal, 1000, false, false)),
        ("flat-reversed-rewritten", flatten(&normal, 777, true, true)),
    ] {
        let (_f, d) = open(&bytes);
        let d = d.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            d.format(),
            if name == "normal" {
                Format::Kdump
            } else {
                Format::KdumpFlat
            }
        );
        for (pfn, data) in &pages {
            assert_eq!(
                &d.read_vec(PhysAddr(pfn * 4096), 4096).unwrap(),
                data,
                "{name} pfn {pfn}"
            );
        }
        // Page-crossing read: pfn 55 → 56.
        let mut want = pages.iter().find(|p| p.0 == 55).unwrap().1[4000..].to_vec();
        want.extend(&pages.iter().find(|p| p.0 == 56).unwrap().1[..100]);
        assert_eq!(d.read_vec(PhysAddr(55 * 4096 + 4000), 196).unwrap(), want);
        // Excluded pages (1st bitmap only) read as zeros at dump level 1.
        assert_eq!(d.read_vec(PhysAddr(4 * 4096 + 8), 8).unwrap(), [0; 8]);
        // Pages in neither bitmap are gaps; past max_mapnr is out of range.
        assert!(
            matches!(byte(&d, PhysAddr(7 * 4096)), Err(Error::Gap { .. })),
            "{name}"
        );
        assert!(matches!(
            byte(&d, PhysAddr(200 * 4096)),
            Err(Error::OutOfRange { .. })
        ));
        let r = d.ranges();
        assert_eq!(r[0], MemRange::new(PhysAddr(4096), 6 * 4096)); // pfn 1..=6 (4, 6 excluded → zeros)
        let info = d.info();
        assert_eq!(info.version.as_deref(), Some("v6"));
        assert_eq!(info.vmcoreinfo["OSRELEASE"], "6.1.0-test");
        assert_eq!(info.roots[0].root, Some(0x1234000));
        assert_eq!(
            d.vmcoreinfo().unwrap()["SYMBOL(init_top_pgt)"],
            "ffffffff9d810000"
        );
    }
    // At dump level 31 excluded pages may have held anything: reading them fails.
    let (normal, _) = sample_kdump(31);
    let (_f, d) = open(&normal);
    let d = d.unwrap();
    assert!(matches!(
        byte(&d, PhysAddr(4 * 4096)),
        Err(Error::Gap { .. })
    ));
    assert!(d
        .info()
        .details
        .iter()
        .any(|(_, v)| v.contains("unreadable")));
}

#[test]
fn kdump_pages_must_be_exactly_one_page() {
    // Page 1 holds zlib data that inflates to 8 KiB (a decompression bomb in miniature),
    // page 2 snappy data declaring 4097 bytes, page 3 a raw page with a short size.
    let block = 4096usize;
    let (z, _) = compress(Codec::Zlib, &vec![0x41; 2 * block]);
    let (s, _) = compress(Codec::Snappy, &vec![0x42; block + 1]);
    let mut bytes = kdump(
        4096,
        8,
        &[
            (1, vec![0; block], Codec::Zlib),
            (2, vec![0; block], Codec::Snappy),
            (3, vec![0; block], Codec::Raw),
        ],
        &[],
        1,
        &[],
        b"",
    );
    // Patch the descriptors (after header, sub-header, notes block and 2 bitmap blocks).
    let desc = 5 * block;
    let data_end = bytes.len() as u64;
    bytes.extend_from_slice(&z);
    bytes.extend_from_slice(&s);
    bytes[desc..desc + 8].copy_from_slice(&data_end.to_le_bytes());
    bytes[desc + 8..desc + 12].copy_from_slice(&(z.len() as u32).to_le_bytes());
    bytes[desc + 24..desc + 32].copy_from_slice(&(data_end + z.len() as u64).to_le_bytes());
    bytes[desc + 32..desc + 36].copy_from_slice(&(s.len() as u32).to_le_bytes());
    bytes[desc + 56..desc + 60].copy_from_slice(&100u32.to_le_bytes());
    let (_f, d) = open(&bytes);
    let d = d.unwrap();
    let e = byte(&d, PhysAddr(4096)).unwrap_err().to_string();
    assert!(
        e.contains("pfn 0x1") && e.contains("zlib") && e.contains("4096-byte page"),
        "{e}"
    );
    let e = byte(&d, PhysAddr(2 * 4096)).unwrap_err().to_string();
    assert!(e.contains("snappy data declares 4097"), "{e}");
    let e = byte(&d, PhysAddr(3 * 4096)).unwrap_err().to_string();
    assert!(e.contains("size 100"), "{e}");
}

#[test]
fn kdump_lying_headers() {
    let (normal, _) = sample_kdump(1);
    let set32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let cases: &[(usize, u32, &str)] = &[
        (428, 3000, "block_size"),
        (436, 0xffff_fff0, "bitmap_blocks"),
        (432, 0, "sub_hdr_size"),
        (8, 99, "header_version"),
    ];
    for (at, v, field) in cases {
        let mut b = normal.clone();
        set32(&mut b, *at, *v);
        let e = open(&b).1.unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    // max_mapnr_64 (sub-header offset 96) larger than the bitmap.
    let mut b = normal.clone();
    b[4096 + 96..4096 + 104].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = open(&b).1.unwrap_err().to_string();
    assert!(e.contains("max_mapnr") && e.contains("0x1060"), "{e}");
    // A flattened record whose size runs past the end of the file.
    let mut flat = flatten(&normal, 4096, false, false);
    flat[4096 + 8..4096 + 16].copy_from_slice(&(1i64 << 40).to_be_bytes());
    let e = open(&flat).1.unwrap_err().to_string();
    assert!(
        e.contains("flattened record data") && e.contains("0x1010"),
        "{e}"
    );
    let mut flat = flatten(&normal, 4096, false, false);
    flat[4096..4104].copy_from_slice(&(-7i64).to_be_bytes());
    let e = open(&flat).1.unwrap_err().to_string();
    assert!(
        e.contains("flattened record offset") && e.contains("negative"),
        "{e}"
    );
}

#[test]
fn detection_and_overrides() {
    // No magic, not a whole number of pages: unknown, with the list of formats.
    let (_f, d) = open(&[1u8; 1000]);
    let e = d.unwrap_err();
    assert!(matches!(e, FileError::UnknownFormat { .. }));
    let msg = e.to_string();
    for f in ["elf", "kdump", "lime", "avml", "raw"] {
        assert!(msg.contains(f), "{msg}");
    }
    let e = open(b"\x1f\x8b\x08\x00junkjunkjunk")
        .1
        .unwrap_err()
        .to_string();
    assert!(e.contains("gzip"), "{e}");
    // No magic and page-sized: raw.
    let (_f, d) = open(&[7u8; 8192]);
    assert_eq!(d.unwrap().format(), Format::Raw);
    // An ELF that is not a core file is not taken for a dump unless forced.
    let (bytes, _) = golden_elf();
    let mut exe = bytes.clone();
    exe[16] = 2; // ET_EXEC
    let (f, d) = open(&exe);
    assert!(d.unwrap_err().to_string().contains("not a core dump"));
    let forced = open_dump(f.path(), &DumpOptions::with_format(FormatChoice::Elf)).unwrap();
    assert_eq!(forced.format(), Format::Elf);
    // Forcing raw reads any file as the identity map.
    let raw = open_dump(f.path(), &DumpOptions::with_format(FormatChoice::Raw)).unwrap();
    assert_eq!(raw.read_vec(PhysAddr(0), 4).unwrap(), b"\x7fELF");
    // A known magic with broken headers is an error, not a raw fallback.
    let e = open(&bytes[..100]).1.unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    // Writable only for raw (detected or forced).
    let opts = DumpOptions {
        writable: true,
        ..DumpOptions::default()
    };
    let (core, _) = open(&bytes);
    assert!(matches!(
        open_dump(core.path(), &opts),
        Err(FileError::BadOption { .. })
    ));
    let forced = DumpOptions {
        writable: true,
        ..DumpOptions::with_format(FormatChoice::Raw)
    };
    assert!(open_dump(core.path(), &forced)
        .unwrap()
        .target()
        .writer
        .is_some());
    let (rawf, _) = open(&[7u8; 8192]);
    let t = open_dump(rawf.path(), &opts).unwrap().target();
    let writer = t.writer.as_ref().unwrap();
    memlens_core::MemoryWriteExt::write_all_at(&**writer, PhysAddr(8), b"x").unwrap();
    assert_eq!(std::fs::read(rawf.path()).unwrap()[8], b'x');
    assert!("kdump".parse::<FormatChoice>().is_ok());
    assert!("qcow2"
        .parse::<FormatChoice>()
        .unwrap_err()
        .contains("expected"));
}

#[test]
fn compressed_reads_share_the_cache_across_threads() {
    let (normal, pages) = sample_kdump(1);
    let f = file_with(&flatten(&normal, 3000, false, false));
    let opts = DumpOptions {
        cache_bytes: 3 * 4096,
        ..DumpOptions::default()
    };
    let d = std::sync::Arc::new(open_dump(f.path(), &opts).unwrap());
    let pages = std::sync::Arc::new(pages);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (d, pages) = (d.clone(), pages.clone());
            std::thread::spawn(move || {
                for round in 0..50 {
                    let (pfn, data) = &pages[(t + round) % pages.len()];
                    assert_eq!(&d.read_vec(PhysAddr(pfn * 4096), 4096).unwrap(), data);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// A `paging=true`-style ELF: 70 000 one-page PT_LOADs (so e_phnum = PN_XNUM and the count
/// lives in section header 0), in shuffled order, most of them contiguous in both physical
/// address and file offset. They coalesce into the few real ranges.
#[test]
fn elf_tens_of_thousands_of_loads() {
    let n = 70_000u64;
    let phoff = 64u64;
    let shoff = phoff + 56 * n;
    let data_off = shoff + 64;
    let mut order: Vec<u64> = (0..n).collect();
    let mut s = 99u64;
    for i in (1..order.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    let mut v = Vec::new();
    v.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    v.extend_from_slice(&[0; 8]);
    le16(&mut v, 4);
    le16(&mut v, 62);
    le32(&mut v, 1);
    le64(&mut v, 0);
    le64(&mut v, phoff);
    le64(&mut v, shoff);
    le32(&mut v, 0);
    le16(&mut v, 64);
    le16(&mut v, 56);
    le16(&mut v, 0xffff); // PN_XNUM
    le16(&mut v, 64);
    le16(&mut v, 1);
    le16(&mut v, 0);
    for &i in &order {
        // Page i is at physical 0x100000 + i*4096, except that the second half sits 1 GiB
        // higher: two ranges.
        let paddr = 0x10_0000 + i * 4096 + if i >= n / 2 { 1 << 30 } else { 0 };
        le32(&mut v, 1);
        le32(&mut v, 0);
        le64(&mut v, data_off + i * 16); // 16 bytes of file per page…
        le64(&mut v, 0xffff_8880_0000_0000 + i * 4096); // p_vaddr (ignored)
        le64(&mut v, paddr);
        le64(&mut v, 16); // …and the rest of each page zero-filled
        le64(&mut v, 4096);
        le64(&mut v, 4096);
    }
    let mut sh = vec![0u8; 64];
    sh[44..48].copy_from_slice(&(n as u32).to_le_bytes());
    v.extend(sh);
    for i in 0..n {
        v.extend_from_slice(&i.to_le_bytes());
        v.extend_from_slice(&(!i).to_le_bytes());
    }
    let (_f, d) = open(&v);
    let d = d.unwrap();
    assert_eq!(
        d.ranges(),
        vec![
            MemRange::new(PhysAddr(0x10_0000), 4096 * n / 2),
            MemRange::new(PhysAddr(0x10_0000 + (1 << 30) + 4096 * n / 2), 4096 * n / 2)
        ]
    );
    for i in [0u64, 1, 12345, n / 2 - 1, n / 2, n - 1] {
        let pa = 0x10_0000 + i * 4096 + if i >= n / 2 { 1 << 30 } else { 0 };
        assert_eq!(d.read_u64(PhysAddr(pa)).unwrap(), i);
        assert_eq!(d.read_u64(PhysAddr(pa + 8)).unwrap(), !i);
        assert_eq!(
            d.read_u64(PhysAddr(pa + 16)).unwrap(),
            0,
            "zero-filled tail"
        );
    }
    assert!(d
        .info()
        .details
        .iter()
        .any(|(k, v)| k == "PT_LOAD headers" && v == "70000"));
}

/// Older header versions: v2 has no VMCOREINFO offset, v3 has no notes; the 32-bit
/// `max_mapnr` of the main header is used before v6.
#[test]
fn kdump_older_header_versions() {
    let (mut normal, pages) = sample_kdump(1);
    for version in [2u32, 3, 5] {
        normal[8..12].copy_from_slice(&version.to_le_bytes());
        let (_f, d) = open(&normal);
        let d = d.unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(d.info().version, Some(format!("v{version}")));
        assert_eq!(d.vmcoreinfo().is_some(), version >= 3, "v{version}");
        assert_eq!(d.registers().len(), usize::from(version >= 4), "v{version}");
        let (pfn, data) = &pages[3];
        assert_eq!(&d.read_vec(PhysAddr(pfn * 4096), 4096).unwrap(), data);
    }
}

/// A flattened record at a logical offset of 2^40 makes the logical file huge; a bitmap
/// that claims to span the hole must be an error, not a terabyte allocation.
#[test]
fn flattened_holes_are_not_allocated() {
    let (normal, _) = sample_kdump(1);
    let mut flat = flatten(&normal, 4096, false, false);
    let end = flat.len() - 16;
    let mut far = Vec::new();
    far.extend_from_slice(&(1i64 << 40).to_be_bytes());
    far.extend_from_slice(&8i64.to_be_bytes());
    far.extend_from_slice(&[1; 8]);
    flat.splice(end..end, far);
    // bitmap_blocks = 2^28 - 16 blocks of 4 KiB: just under 1 TiB, inside the logical
    // length, and mostly a hole.
    flat[4096 + 16 + 436..4096 + 16 + 440].copy_from_slice(&((1u32 << 28) - 16).to_le_bytes());
    let e = open(&flat).1.unwrap_err().to_string();
    assert!(e.contains("bitmap"), "{e}");
}

//! kallsyms and BTF parsers on the lab's real Debian `vmlinux` (uncompressed ELF with
//! `.BTF` and the kallsyms tables in `.rodata`). The checks use sources independent of the
//! parsers: the ELF section headers (via goblin) and `__ksymtab` (exported symbols as
//! relative offsets), decoded here with plain byte arithmetic.

use memlens_os_linux::btf::Btf;
use memlens_os_linux::kallsyms;

fn vmlinux() -> Vec<u8> {
    let k = testlab::provision::ensure_kernel(testlab::Arch::X86_64).unwrap_or_else(|e| {
        panic!(
            "lab kernel not available: {e}\n{}",
            testlab::setup_hint("x86_64-kaslr")
        )
    });
    let path = k.vmlinux.expect("x86-64 kernel has a vmlinux");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(file offset, virtual address, size)` of a section.
fn section(data: &[u8], name: &str) -> (usize, u64, usize) {
    let elf = goblin::elf::Elf::parse(data).expect("vmlinux is ELF");
    let sh = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(name))
        .unwrap_or_else(|| panic!("no section {name}"));
    (sh.sh_offset as usize, sh.sh_addr, sh.sh_size as usize)
}

fn i32_at(d: &[u8], o: usize) -> i64 {
    i32::from_le_bytes(d[o..o + 4].try_into().unwrap()) as i64
}

/// Exported symbols from `__ksymtab` (`struct kernel_symbol` with `int value_offset,
/// name_offset, namespace_offset`, each relative to its own field).
fn ksymtab(d: &[u8], sect: &str) -> Vec<(String, u64)> {
    let (off, va, size) = section(d, sect);
    let (soff, sva, ssize) = section(d, "__ksymtab_strings");
    let mut out = Vec::new();
    for i in 0..size / 12 {
        let e = off + 12 * i;
        let eva = va + 12 * i as u64;
        let value = (eva as i64 + i32_at(d, e)) as u64;
        let name_va = (eva as i64 + 4 + i32_at(d, e + 4)) as u64;
        assert!(name_va >= sva && name_va < sva + ssize as u64);
        let p = soff + (name_va - sva) as usize;
        let end = d[p..].iter().position(|b| *b == 0).unwrap();
        out.push((String::from_utf8_lossy(&d[p..p + end]).into_owned(), value));
    }
    out
}

#[test]
fn kallsyms_matches_ksymtab() {
    let d = vmlinux();
    let (rodata_off, rodata_va, rodata_size) = section(&d, ".rodata");
    let (layout, syms) = kallsyms::find_and_parse(&d, "vmlinux").expect("kallsyms found");
    // The tables live in .rodata.
    for p in [
        layout.token_table,
        layout.names,
        layout.markers,
        layout.offsets,
    ] {
        assert!(
            p >= rodata_off && p < rodata_off + rodata_size,
            "{p:#x} outside .rodata"
        );
    }
    assert!(syms.len() > 50_000, "only {} symbols", syms.len());
    assert_eq!(layout.num_syms, syms.len());
    // Debian's 6.1 has kallsyms_seqs_of_names: lookups binary-search it (nothing decoded).
    assert!(layout.seqs_of_names.is_some() && syms.is_lazy());
    // Every exported symbol has the same address in kallsyms.
    let mut exports = ksymtab(&d, "__ksymtab");
    exports.extend(ksymtab(&d, "__ksymtab_gpl"));
    assert!(exports.len() > 5_000, "{} exports", exports.len());
    let mut checked = 0;
    for (name, value) in &exports {
        let got = syms
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in kallsyms"));
        assert_eq!(got, *value, "{name}");
        checked += 1;
    }
    assert_eq!(checked, exports.len());
    assert!(syms.is_lazy(), "lookups must not decode the whole table");
    // The fully decoded table agrees with the lazy lookups.
    let mut n = 0;
    for s in syms.iter().step_by(97) {
        let got = syms.get(s.name).unwrap();
        assert!(
            got == s.addr || syms.get_all(s.name).len() > 1,
            "{}",
            s.name
        );
        n += 1;
    }
    assert!(n > 500 && !syms.is_lazy());
    // kallsyms leaves out its own tables; the banner symbol must point at the banner.
    let banner = syms.get("linux_banner").expect("linux_banner");
    let p = rodata_off + (banner - rodata_va) as usize;
    assert!(d[p..].starts_with(b"Linux version 6."));
    assert!(syms.get("init_task").is_some() && syms.get("init_top_pgt").is_some());
}

#[test]
fn btf_layouts_are_consistent() {
    let d = vmlinux();
    let (off, _, size) = section(&d, ".BTF");
    let blob = &d[off..off + size];
    assert_eq!(memlens_os_linux::btf::blob_len(blob), Some(size));
    let btf = Btf::parse(blob).expect("BTF parses");
    assert!(btf.type_count() > 50_000);
    // list_head is two pointers.
    assert_eq!(btf.struct_size("list_head").unwrap(), 16);
    assert_eq!(btf.offset_of("list_head", "next").unwrap(), 0);
    assert_eq!(btf.offset_of("list_head", "prev").unwrap(), 8);
    // comm is a 16-byte char array; pid and tgid are adjacent ints.
    let ts = btf.struct_id("task_struct").unwrap();
    let comm = btf.member(ts, "comm").unwrap();
    assert_eq!(btf.size_of(comm.type_id), Some(16));
    let pid = btf.offset_of("task_struct", "pid").unwrap();
    assert_eq!(btf.offset_of("task_struct", "tgid").unwrap(), pid + 4);
    // An anonymous-union member and a nested path.
    let mm = btf.struct_id("mm_struct").unwrap();
    assert!(
        btf.member(mm, "pgd").is_some(),
        "mm_struct.pgd is inside an anonymous struct"
    );
    assert_eq!(
        btf.offset_of("mm_struct", "mm_mt.ma_root").unwrap(),
        btf.offset_of("mm_struct", "mm_mt").unwrap()
            + btf.offset_of("maple_tree", "ma_root").unwrap()
    );
    // Maple nodes: 16 slots in range_64, 10 in arange_64.
    let r64 = btf.struct_id("maple_range_64").unwrap();
    let slot = btf.member(r64, "slot").unwrap();
    assert_eq!(btf.array(slot.type_id).map(|a| a.1), Some(16));
    let a64 = btf.struct_id("maple_arange_64").unwrap();
    let slot = btf.member(a64, "slot").unwrap();
    assert_eq!(btf.array(slot.type_id).map(|a| a.1), Some(10));
    // A bitfield (kind_flag) and an enum value.
    let bf = btf
        .members(ts)
        .into_iter()
        .find(|m| m.0 == "in_execve")
        .expect("task_struct.in_execve bitfield");
    assert_eq!(bf.3, 1);
    assert_eq!(
        btf.enum_value("MAPLE_ARANGE_64")
            .or(btf.enum_value("maple_arange_64")),
        Some(3)
    );
}

#[test]
fn ksymtab_lookup_finds_exported_data() {
    let d = vmlinux();
    let (_, syms) = kallsyms::find_and_parse(&d, "vmlinux").unwrap();
    // The first LOAD segment (text, rodata, ksymtab) is contiguous in the file.
    let (off, va, _) = section(&d, ".text");
    let (roff, _, rsize) = section(&d, "__ksymtab_strings");
    let img = &d[off..roff + rsize];
    for name in ["init_task", "page_offset_base", "phys_base", "jiffies"] {
        let got = memlens_os_linux::ksymtab::lookup(img, va, name);
        assert_eq!(got, syms.get(name), "{name}");
        assert!(got.is_some(), "{name}");
    }
    assert_eq!(
        memlens_os_linux::ksymtab::lookup(img, va, "no_such_symbol_xyz"),
        None
    );
}

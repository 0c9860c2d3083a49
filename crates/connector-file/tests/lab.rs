//! Real dumps from the test lab: one stopped guest per scenario, dumped by QEMU as ELF and
//! flattened kdump, converted by `makedumpfile -R` to a normal kdump and by the lab's own
//! ELF reader to a raw image. All four must agree byte for byte, registers must equal QEMU's
//! `info registers`, and VMCOREINFO must equal what the guest's own `/proc/kallsyms` and
//! `uname` said. These tests fail (never skip) when the lab is missing.

mod common;

use memlens_connector_file::{open_dump, Dump, DumpOptions, Format};
use memlens_core::{CpuRegisters, MemRange, MemoryView, PhysAddr, ReadOp};

const SCENARIOS: &[&str] = &["x86_64-kaslr", "x86_64-la57", "x86_64-4g", "arm64"];

struct Opened {
    raw: Dump,
    elf: Dump,
    flat: Dump,
    kdump: Dump,
    lab: testlab::Scenario,
}

fn open_all(name: &str) -> Opened {
    let lab = testlab::require(name);
    let o = DumpOptions::default();
    let open = |p: &std::path::Path| open_dump(p, &o).unwrap_or_else(|e| panic!("{name}: {e}"));
    Opened {
        raw: open(&lab.raw),
        elf: open(&lab.elf),
        flat: open(&lab.kdump_flat),
        kdump: open(&lab.kdump),
        lab,
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// `n` random 8-byte-read addresses inside the RAM ranges the lab recorded.
fn random_addrs(ranges: &[testlab::dumps::PhysRange], n: usize, seed: u64) -> Vec<u64> {
    let total: u64 = ranges.iter().map(|r| r.len()).sum();
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            let mut k = xorshift(&mut s) % (total - 8);
            for r in ranges {
                if k < r.len() - 8 {
                    return r.start + k;
                }
                k -= r.len() - 8;
            }
            ranges[0].start
        })
        .collect()
}

fn read_all(d: &Dump, addrs: &[u64], len: usize) -> Vec<Vec<u8>> {
    let mut bufs = vec![vec![0u8; len]; addrs.len()];
    for (chunk_a, chunk_b) in addrs.chunks(256).zip(bufs.chunks_mut(256)) {
        let mut ops: Vec<_> = chunk_a
            .iter()
            .zip(chunk_b.iter_mut())
            .map(|(a, b)| ReadOp::new(PhysAddr(*a), b))
            .collect();
        d.read_batch(&mut ops);
        for op in &ops {
            assert!(
                op.result.is_ok(),
                "{}: read {}: {:?}",
                d.info().path.display(),
                op.addr,
                op.result
            );
        }
    }
    bufs
}

fn same_bytes(name: &str) {
    let o = open_all(name);
    assert_eq!(o.raw.format(), Format::Raw);
    assert_eq!(o.elf.format(), Format::Elf);
    assert_eq!(o.flat.format(), Format::KdumpFlat);
    assert_eq!(o.kdump.format(), Format::Kdump);
    let ram = &o.lab.truth.raw_ranges;
    assert!(!ram.is_empty());
    let addrs = random_addrs(ram, 10_000, 0x5eed ^ name.len() as u64);
    let want = read_all(&o.raw, &addrs, 8);
    for d in [&o.elf, &o.flat, &o.kdump] {
        let got = read_all(d, &addrs, 8);
        let diff = want.iter().zip(&got).position(|(a, b)| a != b);
        assert_eq!(
            diff,
            None,
            "{name} {}: first differing address {:#x?}",
            d.format(),
            diff.map(|i| addrs[i])
        );
    }
    // Whole pages (crossing page boundaries too) agree.
    let pages: Vec<u64> = addrs
        .iter()
        .take(200)
        .map(|a| (a & !0xfff).max(ram[0].start))
        .collect();
    let pages: Vec<u64> = pages
        .into_iter()
        .filter(|a| ram.iter().any(|r| *a >= r.start && a + 8192 <= r.end))
        .map(|a| a + 0x800)
        .collect();
    assert!(pages.len() > 50);
    let want = read_all(&o.raw, &pages, 4096);
    for d in [&o.elf, &o.flat, &o.kdump] {
        assert!(
            want == read_all(d, &pages, 4096),
            "{name} {}: page reads differ",
            d.format()
        );
    }
    // The non-zero content is real: the marker's strings are where the guest said.
    for m in o
        .lab
        .truth
        .guest
        .marker
        .strings
        .iter()
        .filter(|m| m.pa.is_some())
        .take(8)
    {
        let pa = m.pa.unwrap_or_default();
        for d in [&o.elf, &o.flat, &o.kdump] {
            let got = read_all(d, &[pa], m.text.len());
            assert_eq!(
                got[0],
                m.text.as_bytes(),
                "{name} {}: marker at {pa:#x}",
                d.format()
            );
        }
    }
}

fn same_ranges(name: &str) {
    let o = open_all(name);
    let elf = o.elf.ranges();
    assert_eq!(
        elf,
        o.flat.ranges(),
        "{name}: ELF vs flattened kdump ranges"
    );
    assert_eq!(elf, o.kdump.ranges(), "{name}: ELF vs kdump ranges");
    // Every RAM range of the guest is covered by one range of the dump.
    for r in &o.lab.truth.raw_ranges {
        assert!(
            elf.iter()
                .any(|e: &MemRange<PhysAddr>| e.base.0 <= r.start && e.end_u64() >= r.end),
            "{name}: RAM {:#x}..{:#x} not covered by {elf:x?}",
            r.start,
            r.end
        );
    }
    // ELF ranges are exactly the PT_LOADs the lab's own reader saw.
    let mut loads: Vec<(u64, u64)> = o
        .lab
        .truth
        .elf_segments
        .iter()
        .filter(|p| p.kind == testlab::dumps::PT_LOAD)
        .map(|p| (p.paddr, p.memsz))
        .collect();
    loads.sort();
    // Touching PT_LOADs read as one range (the 4 GiB guest's BIOS ROM ends where RAM
    // above 4 GiB begins).
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (b, l) in loads {
        match merged.last_mut() {
            Some(last) if last.0 + last.1 == b => last.1 += l,
            _ => merged.push((b, l)),
        }
    }
    let loads = merged;
    let mine: Vec<(u64, u64)> = elf.iter().map(|r| (r.base.0, r.len)).collect();
    assert_eq!(mine, loads, "{name}");
    assert_eq!(o.raw.ranges().len(), 1);
}

fn same_registers(name: &str) {
    let o = open_all(name);
    let truth = &o.lab.truth.monitor.cpus;
    assert_eq!(truth.len() as u32, o.lab.truth.cpus);
    for d in [&o.elf, &o.flat, &o.kdump] {
        let regs = d.registers();
        assert_eq!(regs.len(), truth.len(), "{name} {}: vCPU count", d.format());
        let target = d.target();
        let cpu = target.cpu.as_ref().expect("CpuState on the target");
        assert_eq!(cpu.cpu_count(), truth.len());
        for t in truth {
            let r = cpu.registers(t.cpu as usize).unwrap();
            let get = |k: &str| t.get(k).unwrap_or_else(|| panic!("truth lacks {k}"));
            match r {
                CpuRegisters::X86(x) => {
                    let names = [
                        "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10",
                        "R11", "R12", "R13", "R14", "R15",
                    ];
                    for (i, n) in names.iter().enumerate() {
                        assert_eq!(x.gpr[i], get(n), "{name} {} cpu{} {n}", d.format(), t.cpu);
                    }
                    for (v, n) in [
                        (x.rip, "RIP"),
                        (x.rflags, "RFL"),
                        (x.cr0, "CR0"),
                        (x.cr2, "CR2"),
                        (x.cr3, "CR3"),
                        (x.cr4, "CR4"),
                        (x.fs_base, "FS.base"),
                        (x.gs_base, "GS.base"),
                    ] {
                        assert_eq!(v, get(n), "{name} {} cpu{} {n}", d.format(), t.cpu);
                    }
                    assert_eq!(x.la57(), o.lab.spec.la57, "{name}: CR4.LA57");
                    let root = d.info().roots[t.cpu as usize].root;
                    assert_eq!(root, Some(get("CR3")));
                }
                CpuRegisters::Aarch64(a) => {
                    for i in 0..31 {
                        assert_eq!(
                            a.x[i],
                            get(&format!("X{i:02}")),
                            "{name} {} X{i}",
                            d.format()
                        );
                    }
                    assert_eq!(a.pc, get("PC"), "{name} PC");
                    assert_eq!(a.sp, get("SP"), "{name} SP");
                    assert_eq!(a.pstate, get("PSTATE"), "{name} PSTATE");
                }
                other => panic!("unexpected registers {other:?}"),
            }
        }
    }
}

fn same_vmcoreinfo(name: &str) {
    let o = open_all(name);
    let g = &o.lab.truth.guest;
    let elf = o.elf.vmcoreinfo().expect("VMCOREINFO in the ELF dump");
    assert_eq!(Some(elf), o.flat.vmcoreinfo(), "{name}: ELF vs flattened");
    assert_eq!(Some(elf), o.kdump.vmcoreinfo(), "{name}: ELF vs kdump");
    assert_eq!(elf["OSRELEASE"], g.kernel_release);
    // Every SYMBOL(x) that the guest's kallsyms also lists has the same address.
    let mut checked = 0;
    for (k, v) in elf {
        let Some(sym) = k.strip_prefix("SYMBOL(").and_then(|s| s.strip_suffix(')')) else {
            continue;
        };
        if let Some(addr) = g.kallsyms.get(sym) {
            assert_eq!(u64::from_str_radix(v, 16).unwrap(), *addr, "{name}: {k}");
            checked += 1;
        }
    }
    assert!(
        checked >= 1,
        "{name}: no SYMBOL() entry to check against kallsyms"
    );
    let off = u64::from_str_radix(&elf["KERNELOFFSET"], 16).unwrap();
    if o.lab.spec.arch == testlab::Arch::X86_64 {
        // x86-64 links the kernel at 0xffffffff81000000: KERNELOFFSET is _text's slide.
        assert_eq!(
            g.kallsyms["_text"] - 0xffff_ffff_8100_0000,
            off,
            "{name}: KERNELOFFSET"
        );
        assert_eq!(
            elf["SYMBOL(init_top_pgt)"],
            format!("{:x}", g.kallsyms["init_top_pgt"])
        );
        assert_eq!(o.lab.spec.kaslr, off != 0);
    }
    let info = o.kdump.info();
    assert_eq!(info.vmcoreinfo["OSRELEASE"], g.kernel_release);
    assert!(info.vmcoreinfo.contains_key("KERNELOFFSET"));
    let t = o.elf.target();
    assert_eq!(t.info.vmcoreinfo.as_ref(), Some(elf));
    assert_eq!(t.info.format, "elf");
}

macro_rules! per_scenario {
    ($($test:ident => $scenario:literal),* $(,)?) => {$(
        mod $test {
            #[test] fn bytes() { super::same_bytes($scenario) }
            #[test] fn ranges() { super::same_ranges($scenario) }
            #[test] fn registers() { super::same_registers($scenario) }
            #[test] fn vmcoreinfo() { super::same_vmcoreinfo($scenario) }
        }
    )*};
}

per_scenario! {
    x86_64_kaslr => "x86_64-kaslr",
    x86_64_la57 => "x86_64-la57",
    x86_64_4g => "x86_64-4g",
    arm64 => "arm64",
}

#[test]
fn scenario_list_is_known_to_the_lab() {
    for s in SCENARIOS {
        assert!(testlab::spec(s).is_ok(), "{s}");
    }
}

/// The lab's raw image converted to LiME and AVML by the test-only writers: both read back
/// the same bytes as the raw image at 10 000 random RAM addresses, with the same ranges.
#[test]
fn lime_and_avml_from_lab_dump() {
    let o = open_all("x86_64-kaslr");
    let raw = std::fs::read(&o.lab.raw).unwrap();
    let ram = &o.lab.truth.raw_ranges;
    let parts: Vec<(u64, &[u8])> = ram
        .iter()
        .map(|r| (r.start, &raw[r.start as usize..r.end as usize]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let addrs = random_addrs(ram, 10_000, 77);
    let want = read_all(&o.raw, &addrs, 8);
    let expect_ranges: Vec<MemRange<PhysAddr>> = ram
        .iter()
        .map(|r| MemRange::new(PhysAddr(r.start), r.len()))
        .collect();
    for (name, bytes, format) in [
        ("lime", common::lime(&parts), Format::Lime),
        ("avml", common::avml_like_the_tool(&parts), Format::Avml),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        drop(bytes);
        let d = open_dump(&p, &DumpOptions::default()).unwrap();
        assert_eq!(d.format(), format);
        assert_eq!(d.ranges(), expect_ranges, "{name}");
        assert!(
            want == read_all(&d, &addrs, 8),
            "{name}: bytes differ from the raw image"
        );
        let pages: Vec<u64> = addrs
            .iter()
            .take(100)
            .map(|a| a & !0xfff)
            .filter(|a| ram.iter().any(|r| *a >= r.start && a + 4096 <= r.end))
            .collect();
        assert!(
            read_all(&o.raw, &pages, 4096) == read_all(&d, &pages, 4096),
            "{name}: pages differ"
        );
    }
}

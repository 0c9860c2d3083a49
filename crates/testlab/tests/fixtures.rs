//! The lab checks its own fixtures: every scenario's dumps hold the marker strings where
//! the guest said they are, QEMU's translations agree with the guest's pagemap, sizes are
//! sane and `truth.json` round-trips. A scenario that cannot be built FAILS (with the
//! set-up command), it is never skipped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use testlab::{Arch, MarkerKind, Scenario};

fn read_at(path: &Path, at: u64, len: usize) -> Vec<u8> {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("read {len} bytes at {at:#x} of {}: {e}", path.display()));
    buf
}

fn check(name: &str) {
    let s: Scenario = testlab::require(name);
    let t = &s.truth;
    let g = &t.guest;

    // truth.json round-trips
    let text = std::fs::read_to_string(&s.truth_path).unwrap();
    let back: testlab::Truth = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, t, "truth.json does not round-trip");
    let again: testlab::Truth = serde_json::from_str(&serde_json::to_string(t).unwrap()).unwrap();
    assert_eq!(&again, t);

    // ps lists both markers; modules were loaded
    let marker = t
        .marker_process()
        .expect("marker pid not in the process list");
    assert_eq!(marker.comm, testlab::truth::MARKER_COMM);
    assert!(
        marker
            .cmdline
            .iter()
            .any(|a| a.starts_with("MEMLENS-ARGV-ONE")),
        "{:?}",
        marker.cmdline
    );
    let sleeper = g
        .processes
        .iter()
        .find(|p| p.comm == testlab::truth::SLEEPER_COMM)
        .expect("lab-sleeper not in ps");
    assert_eq!(sleeper.ppid, 1);
    assert!(g.processes.iter().any(|p| p.pid == 1));
    for m in ["qemu_fw_cfg", "dummy", "crc_itu_t"] {
        assert!(
            g.modules.iter().any(|x| x.name == m && x.size > 0),
            "module {m} missing: {:?}",
            g.modules
        );
    }
    assert!(!g.kernel_release.is_empty());
    // Debian's arm64 kernel has no KALLSYMS_ALL: kallsyms lists text symbols only.
    let wanted: &[&str] = match t.arch {
        Arch::X86_64 => &[
            "_text",
            "_stext",
            "init_task",
            "init_top_pgt",
            "page_offset_base",
            "phys_base",
            "__start_BTF",
            "__stop_BTF",
        ],
        Arch::Aarch64 => &["_stext", "_etext"],
    };
    for sym in wanted {
        assert!(t.symbol(sym).is_some(), "kallsyms {sym} missing");
    }
    assert!(
        g.kallsyms_vmlinux_lines > 10_000,
        "kallsyms count {}",
        g.kallsyms_vmlinux_lines
    );

    // maps: heap string inside [heap], mmap pages inside one anonymous mapping
    let heap = g
        .marker
        .of_kind(MarkerKind::Heap)
        .next()
        .expect("no heap string");
    let map_of = |va: u64| g.marker.maps.iter().find(|m| m.start <= va && va < m.end);
    assert_eq!(map_of(heap.va).map(|m| m.path.as_str()), Some("[heap]"));
    let pages: Vec<_> = g.marker.of_kind(MarkerKind::Mmap).collect();
    assert_eq!(pages.len() as u32, g.marker.mmap_pages);
    for p in &pages {
        assert!(p
            .text
            .starts_with(&format!("MEMLENS-MMAP-PAGE-{}-", p.index)));
        assert_eq!(
            p.va,
            g.marker.mmap_base + u64::from(p.index) * g.marker.page_size
        );
        assert_eq!(map_of(p.va).map(|m| m.perms.as_str()), Some("rw-p"));
    }
    assert!(g.marker.of_kind(MarkerKind::Argv).count() >= 3);
    assert!(g.marker.of_kind(MarkerKind::Env).count() >= 2);

    // sizes
    let raw_len = std::fs::metadata(&s.raw).unwrap().len();
    let elf_len = std::fs::metadata(&s.elf).unwrap().len();
    let kdump_len = std::fs::metadata(&s.kdump).unwrap().len();
    let ram_top = g
        .iomem
        .iter()
        .filter(|e| e.depth == 0 && e.name == "System RAM")
        .map(|e| e.end + 1)
        .max()
        .unwrap();
    // The raw image ends with the RAM block that holds the highest "System RAM" range
    // (firmware-reserved RAM may follow that range inside the same block).
    assert_eq!(raw_len, t.raw_ranges.iter().map(|r| r.end).max().unwrap());
    assert!(
        raw_len >= ram_top && raw_len - ram_top < 16 << 20,
        "raw {raw_len:#x} vs RAM top {ram_top:#x}"
    );
    assert!(
        elf_len >= t.ram_bytes,
        "ELF {elf_len} < RAM {}",
        t.ram_bytes
    );
    assert!(
        kdump_len < elf_len / 2,
        "kdump {kdump_len} not much smaller than ELF {elf_len}"
    );
    assert_eq!(read_at(&s.kdump, 0, 8), b"KDUMP   ");
    assert_eq!(read_at(&s.kdump_flat, 0, 12), b"makedumpfile");
    assert_eq!(read_at(&s.elf, 0, 4), b"\x7fELF");
    if t.arch == Arch::X86_64 {
        assert_eq!(
            read_at(s.vmlinux.as_ref().expect("x86 vmlinux"), 0, 4),
            b"\x7fELF"
        );
    }

    // marker strings are in the raw image at their pagemap addresses, and a search finds them
    for m in &g.marker.strings {
        let pa =
            m.pa.unwrap_or_else(|| panic!("{m:?} has no pagemap address"));
        assert_eq!(
            read_at(&s.raw, pa, m.text.len()),
            m.text.as_bytes(),
            "{m:?} not at its pa in the raw image"
        );
    }
    let hits = testlab::dumps::find_in_file(&s.raw, heap.text.as_bytes()).unwrap();
    assert!(
        hits.contains(&heap.pa.unwrap()),
        "search for {} found {hits:x?}",
        heap.text
    );

    // QEMU's gva2gpa (marker vCPU) agrees with the guest's pagemap, and the raw image holds
    // the string at that address
    let cpu = t
        .monitor
        .marker_cpu
        .expect("the marker was not caught on any vCPU");
    let regs = t
        .marker_cpu_registers()
        .expect("registers of the marker vCPU");
    for m in &g.marker.strings {
        let tr = t
            .monitor
            .translations
            .iter()
            .find(|x| x.va == m.va && x.cpu == cpu)
            .unwrap_or_else(|| panic!("no gva2gpa for {m:?}"));
        assert_eq!(tr.pa, m.pa, "gva2gpa vs pagemap for {m:?}");
        let pa = tr.pa.unwrap();
        assert_eq!(read_at(&s.raw, pa, m.text.len()), m.text.as_bytes());
    }
    // kernel addresses translate; the kernel text's physical copy is in the raw image
    let stext = t
        .monitor
        .translations
        .iter()
        .find(|x| x.label == "kallsyms _stext" && x.pa.is_some());
    match (stext, t.arch) {
        (Some(stext), _) => assert_ne!(
            read_at(&s.raw, stext.pa.unwrap(), 64),
            vec![0u8; 64],
            "kernel text is zero in the raw image"
        ),
        // QEMU's aarch64 `gva2gpa` sometimes fails on kernel addresses when the stopped
        // vCPU is in user mode (seen in one CI run of a fresh lab). The kernel image must
        // still be in the raw image: its banner names this release.
        (None, Arch::Aarch64) => {
            let banner = format!("Linux version {}", g.kernel_release);
            let hits = testlab::dumps::find_in_file(&s.raw, banner.as_bytes()).unwrap();
            assert!(
                !hits.is_empty(),
                "neither _stext translated nor the banner {banner:?} is in the raw image"
            );
        }
        (None, _) => panic!("_stext did not translate on any vCPU"),
    }
    if t.arch == Arch::X86_64 {
        let banner = t
            .monitor
            .translations
            .iter()
            .find(|x| x.label == "kallsyms linux_banner" && x.pa.is_some())
            .expect("linux_banner did not translate on any vCPU");
        assert_eq!(read_at(&s.raw, banner.pa.unwrap(), 13), b"Linux version");
    }

    // registers
    assert_eq!(t.monitor.cpus.len() as u32, t.cpus);
    match t.arch {
        Arch::X86_64 => {
            let cr4 = regs.get("CR4").expect("CR4");
            assert_eq!(
                cr4 & (1 << 12) != 0,
                s.spec.la57,
                "CR4.LA57 vs scenario (CR4={cr4:#x})"
            );
            assert!(
                regs.get("CR3").is_some()
                    && regs.get("EFER").is_some()
                    && regs.get("RIP").is_some()
            );
            let text = t.symbol("_text").unwrap();
            assert_eq!(
                text == 0xffff_ffff_8100_0000,
                !s.spec.kaslr,
                "_text {text:#x} vs KASLR {}",
                s.spec.kaslr
            );
            // The stopped vCPU's CR3 is the marker's page table, not the kernel's init_top_pgt.
            let root = t.marker_page_table_root().expect("marker CR3");
            let kernel_pgd = t
                .monitor
                .translated("kallsyms init_top_pgt")
                .expect("init_top_pgt translation");
            assert_ne!(root & !0xfff, kernel_pgd, "marker CR3 is init_top_pgt");
            let pob = t.monitor.page_offset_base.expect("page_offset_base value");
            let dm = t
                .monitor
                .translations
                .iter()
                .find(|x| x.label == "direct map of marker heap 0" && x.pa.is_some());
            assert_eq!(dm.and_then(|x| x.pa), heap.pa, "direct map {pob:#x} + pa");
        }
        Arch::Aarch64 => {
            assert!(regs.get("PC").is_some(), "{:?}", regs.regs.keys());
        }
    }
    if t.ram_bytes > 3 << 30 {
        assert!(
            t.raw_ranges.iter().any(|r| r.start >= 1 << 32),
            "RAM above 4 GiB: {:?}",
            t.raw_ranges
        );
    }
}

#[test]
fn x86_64_kaslr() {
    check("x86_64-kaslr");
}

#[test]
fn x86_64_nokaslr() {
    check("x86_64-nokaslr");
}

#[test]
fn x86_64_la57() {
    check("x86_64-la57");
}

#[test]
fn x86_64_4g() {
    check("x86_64-4g");
}

#[test]
fn x86_64_6_12() {
    check("x86_64-6.12");
}

#[test]
fn arm64() {
    check("arm64");
}

#[test]
fn unknown_scenario_is_an_error_naming_the_known_ones() {
    let e = testlab::scenario("no-such-scenario")
        .unwrap_err()
        .to_string();
    assert!(e.contains("x86_64-kaslr"), "{e}");
    assert_eq!(testlab::scenarios().len(), testlab::SCENARIOS.len());
}

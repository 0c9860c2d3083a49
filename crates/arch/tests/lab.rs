//! Real kernels from the test lab: QEMU's own `gva2gpa` answers and the marker process's
//! strings must come out of our translation exactly. These tests fail (never skip) when
//! the lab is missing; `testlab::require` prints the set-up command.

use memlens_arch::{
    find_mappings, translate_vec, Mmu, PageMapOptions, Roots, TlbConfig, VirtualView,
};
use memlens_connector_file::MappedFile;
use memlens_core::cpu::X86Registers;
use memlens_core::{CpuRegisters, MemoryViewExt, PhysAddr, VirtAddr};

fn x86_mmu_roots(cr3: u64, cr4: u64) -> (Mmu, Roots) {
    let regs = CpuRegisters::X86(X86Registers {
        cr3,
        cr4,
        ..Default::default()
    });
    Mmu::from_registers(&regs).expect("x86 registers")
}

fn check(name: &str) {
    let s = testlab::require(name);
    let mem = MappedFile::open(&s.raw).expect("open raw dump");
    let truth = &s.truth;
    let marker_cpu = truth.monitor.marker_cpu.unwrap_or(0);
    let mut checked = 0;
    for cpu in &truth.monitor.cpus {
        let cr3 = cpu.get("CR3").expect("CR3 in the monitor registers");
        let cr4 = cpu.get("CR4").expect("CR4 in the monitor registers");
        let (mmu, roots) = x86_mmu_roots(cr3, cr4);
        assert_eq!(
            mmu.name() == "x86_64-la57",
            s.spec.la57,
            "{name}: LA57 from CR4"
        );
        // Every gva2gpa pair QEMU answered for this vCPU, as one batch.
        let pairs: Vec<_> = truth
            .monitor
            .translations
            .iter()
            .filter(|t| t.cpu == cpu.cpu)
            .collect();
        assert!(
            !pairs.is_empty(),
            "{name}: no gva2gpa pairs for cpu {}",
            cpu.cpu
        );
        let vas: Vec<VirtAddr> = pairs.iter().map(|t| VirtAddr(t.va)).collect();
        let got = translate_vec(&mem, &mmu, &roots, &vas);
        for (t, g) in pairs.iter().zip(&got) {
            match (t.pa, g) {
                (Some(pa), Ok(tr)) => assert_eq!(
                    tr.pa,
                    PhysAddr(pa),
                    "{name} cpu {} {}: {:#x}",
                    cpu.cpu,
                    t.label,
                    t.va
                ),
                (None, Err(_)) => {}
                (want, got) => panic!(
                    "{name} cpu {} {}: want {want:?}, got {got:?}",
                    cpu.cpu, t.label
                ),
            }
            checked += 1;
        }
        if cpu.cpu != marker_cpu {
            continue;
        }
        // The marker's strings, read through the virtual view at the addresses it printed.
        let view = VirtualView::new(&mem, mmu, roots).with_tlb(TlbConfig::default());
        let marker = &truth.guest.marker;
        assert!(marker.strings.len() >= 10, "{name}: marker strings");
        for m in &marker.strings {
            let bytes = view
                .read_vec(VirtAddr(m.va), m.text.len())
                .unwrap_or_else(|e| {
                    panic!("{name}: reading marker {:?} at {:#x}: {e}", m.kind, m.va)
                });
            assert_eq!(
                String::from_utf8_lossy(&bytes),
                m.text,
                "{name} at {:#x}",
                m.va
            );
            assert_eq!(view.read_cstr(VirtAddr(m.va), 256).unwrap(), m.text);
            if let Some(pa) = m.pa {
                assert_eq!(view.translate(VirtAddr(m.va)).unwrap().pa, PhysAddr(pa));
            }
        }
        // The whole page map covers the marker's mappings, and the reverse map finds both
        // the user address and the kernel's direct-map alias of a marker page.
        let pm = view.page_map(&PageMapOptions::default());
        assert!(!pm.stats.truncated);
        assert!(
            pm.stats.mapped_bytes >= truth.ram_bytes / 2,
            "{name}: direct map present"
        );
        for m in &marker.strings {
            assert!(
                pm.ranges.iter().any(|r| r.va.0 <= m.va && m.va < r.end()),
                "{name}: marker {:#x} missing from the page map",
                m.va
            );
        }
        let heap = marker.strings.first().expect("a marker string");
        let heap_pa = heap.pa.expect("marker pa");
        let (aliases, _) = find_mappings(
            &mem,
            &mmu,
            &roots,
            PhysAddr(heap_pa),
            &PageMapOptions::default(),
        );
        assert!(aliases.contains(&VirtAddr(heap.va)), "{name}: {aliases:x?}");
        let direct = truth
            .monitor
            .translations
            .iter()
            .find(|t| t.label.starts_with("direct map of marker") && t.pa == Some(heap_pa))
            .expect("direct-map pair of the marker heap");
        assert!(
            aliases.contains(&VirtAddr(direct.va)),
            "{name}: {aliases:x?}"
        );
    }
    assert!(checked >= 20, "{name}: only {checked} pairs checked");
}

#[test]
fn x86_64_kaslr_matches_qemu() {
    check("x86_64-kaslr");
}

#[test]
fn x86_64_la57_matches_qemu() {
    check("x86_64-la57");
}

#[test]
fn x86_64_4g_matches_qemu() {
    check("x86_64-4g");
}

/// The kernel's own root (`init_top_pgt`, located through QEMU's translation of the
/// symbol) translates every kernel-half pair too: what OS plugins use when CR3 belongs to
/// a user process.
#[test]
fn kernel_root_translates_kernel_pairs() {
    let s = testlab::require("x86_64-kaslr");
    let mem = MappedFile::open(&s.raw).expect("open raw dump");
    let pgd = s
        .truth
        .monitor
        .translated("kallsyms init_top_pgt")
        .expect("init_top_pgt pair");
    let roots = Roots::single(PhysAddr(pgd));
    let kernel: Vec<_> = s
        .truth
        .monitor
        .translations
        .iter()
        .filter(|t| t.va >> 63 == 1)
        .collect();
    assert!(kernel.len() >= 10);
    let vas: Vec<VirtAddr> = kernel.iter().map(|t| VirtAddr(t.va)).collect();
    for (t, g) in kernel
        .iter()
        .zip(translate_vec(&mem, &Mmu::x86_64(), &roots, &vas))
    {
        assert_eq!(g.map(|x| x.pa.0).ok(), t.pa, "{}", t.label);
    }
}

/// A VMCOREINFO number: hex with or without `0x` (SYMBOL values have none), or decimal
/// for the keys the kernel prints with `%d`.
fn vmci(dump: &memlens_connector_file::Dump, key: &str, radix: u32) -> u64 {
    let v = dump
        .vmcoreinfo()
        .and_then(|m| m.get(key))
        .unwrap_or_else(|| panic!("the arm64 ELF dump's VMCOREINFO lacks {key}"));
    u64::from_str_radix(v.trim_start_matches("0x"), radix)
        .unwrap_or_else(|e| panic!("VMCOREINFO {key}={v}: {e}"))
}

/// arm64: QEMU's ELF dump has no TTBRs, but its VMCOREINFO places the kernel's root
/// (`swapper_pg_dir` - `kimage_voffset`), page size and VA size. Through that TTBR1 root:
/// QEMU's `gva2gpa` answers for kernel addresses match; the guest's kallsyms (kernel
/// image symbols) land at `va - kimage_voffset`; the root maps itself; the marker's heap
/// is found in the linear map by the reverse map and reads back as its text there; and the
/// kernel half's page map is sane.
#[test]
fn arm64_kernel_half_from_vmcoreinfo() {
    let s = testlab::require("arm64");
    let dump = memlens_connector_file::open_dump(&s.elf, &Default::default()).expect("open ELF");
    let mem = dump.memory();
    let swapper = vmci(&dump, "SYMBOL(swapper_pg_dir)", 16);
    let voff = vmci(&dump, "NUMBER(kimage_voffset)", 16);
    let va_bits = vmci(&dump, "NUMBER(VA_BITS)", 10);
    let granule = match vmci(&dump, "PAGESIZE", 10) {
        4096 => memlens_arch::Granule::K4,
        16384 => memlens_arch::Granule::K16,
        65536 => memlens_arch::Granule::K64,
        other => panic!("PAGESIZE {other}"),
    };
    let mmu = Mmu::aarch64(granule, va_bits as u8).expect("aarch64 MMU from VMCOREINFO");
    let root = PhysAddr(swapper.wrapping_sub(voff));
    // No user root: the lower half is walked from the kernel root too, and only
    // kernel-half results are used below.
    let roots = Roots::split(root, root);
    let kernel_half = (
        VirtAddr(0u64.wrapping_sub(1 << va_bits)),
        VirtAddr(u64::MAX),
    );

    // The root maps itself at swapper_pg_dir.
    let me = memlens_arch::translate(&*mem, &mmu, &roots, VirtAddr(swapper)).expect("swapper");
    assert_eq!(me.pa, root);

    // QEMU's kernel-half pairs. QEMU translates with the stopped vCPU's current tables:
    // stopped in EL0, arm64's KPTI has TTBR1 on the trampoline tables, which map no kernel
    // text, and QEMU records no address. Pairs QEMU did translate must match; the kallsyms
    // checks below test the kernel half either way.
    let pairs: Vec<_> = s
        .truth
        .monitor
        .translations
        .iter()
        .filter(|t| t.va >> 63 == 1 && t.pa.is_some())
        .collect();
    let vas: Vec<VirtAddr> = pairs.iter().map(|t| VirtAddr(t.va)).collect();
    for (t, g) in pairs.iter().zip(translate_vec(&*mem, &mmu, &roots, &vas)) {
        assert_eq!(g.map(|x| x.pa.0).ok(), t.pa, "{} {:#x}", t.label, t.va);
    }

    // The guest's kallsyms lines in the kernel text at va - kimage_voffset (`.init.text`
    // symbols are gone after boot: their pages are freed).
    let syms = &s.truth.guest.kallsyms;
    let ktext = syms["_stext"]..syms["_etext"];
    let syms: Vec<(&String, &u64)> = syms.iter().filter(|(_, v)| ktext.contains(v)).collect();
    assert!(
        syms.len() >= 5,
        "arm64 truth has {} text kallsyms",
        syms.len()
    );
    let vas: Vec<VirtAddr> = syms.iter().map(|(_, v)| VirtAddr(**v)).collect();
    for ((name, va), g) in syms.iter().zip(translate_vec(&*mem, &mmu, &roots, &vas)) {
        let va = **va;
        let t = g.unwrap_or_else(|e| panic!("{name} {va:#x}: {e}"));
        assert_eq!(t.pa.0, va - voff, "{name} {va:#x}");
        assert!(!t.flags.user, "{name} is user-accessible");
    }

    // The marker heap page is in the linear map, and its text reads back there.
    let marker = &s.truth.guest.marker;
    let heap = marker.strings.first().expect("marker string");
    let heap_pa = heap.pa.expect("arm64 marker pa recorded");
    let opts = PageMapOptions {
        range: Some(kernel_half),
        ..PageMapOptions::default()
    };
    let (aliases, stats) = find_mappings(&*mem, &mmu, &roots, PhysAddr(heap_pa), &opts);
    assert!(!stats.truncated);
    let view = VirtualView::new(mem.clone(), mmu, roots);
    let alias = aliases
        .iter()
        .find(|a| a.0 >> 63 == 1)
        .unwrap_or_else(|| panic!("no kernel alias of the marker heap {heap_pa:#x}"));
    let text = view
        .read_vec(*alias, heap.text.len())
        .expect("read the marker through the linear map");
    assert_eq!(String::from_utf8_lossy(&text), heap.text);

    // The kernel half's page map: complete, sorted, covering most of RAM (the linear map),
    // with the kernel text mapped read-only and executable where kallsyms says.
    let pm = view.page_map(&opts);
    assert!(!pm.stats.truncated);
    assert!(
        pm.stats.mapped_bytes >= s.truth.ram_bytes / 2,
        "kernel half maps only {:#x} bytes",
        pm.stats.mapped_bytes
    );
    for w in pm.ranges.windows(2) {
        assert!(w[0].end() <= w[1].va.0, "ranges out of order: {w:x?}");
    }
    let stext = ktext.start;
    let r = pm
        .ranges
        .iter()
        .find(|r| r.va.0 <= stext && stext < r.end())
        .expect("_stext in the page map");
    assert_eq!(r.pa.0 + (stext - r.va.0), stext - voff);
    assert!(!r.flags.writable && !r.flags.nx && !r.flags.user, "{r:x?}");
}

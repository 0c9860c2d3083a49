//! End-to-end on real Debian kernels from the test lab: the plugin opens each scenario's
//! raw dump with no hints (raw images carry neither VMCOREINFO nor registers, and
//! `no_hints` is set as well) and its answers are compared with what the guest itself
//! reported (`truth.json`: `/proc` ps, `/proc/modules`, the marker's maps, strings and
//! addresses, and `/proc/kallsyms` samples).

use std::sync::Arc;

use memlens_core::{MemoryViewExt, Os, PhysicalTarget, TargetInfo, VirtAddr};
use memlens_os_linux::{LinuxOptions, LinuxOs};
use testlab::{MarkerKind, Scenario};

/// Which dump of a scenario to open, and whether to let the plugin use its hints.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    /// The raw image (no VMCOREINFO, no registers): the pure scan.
    Raw,
    /// The ELF core through `open_dump`, with VMCOREINFO and registers as hints.
    Elf,
    /// The ELF core with hints disabled (`no_hints`).
    ElfNoHints,
    /// The compressed kdump with hints.
    Kdump,
}

fn open(s: &Scenario, input: Input) -> LinuxOs {
    let target = match input {
        Input::Raw => {
            let mem = memlens_connector_file::RawFile::open(&s.raw)
                .unwrap_or_else(|e| panic!("{}: {e}", s.raw.display()));
            PhysicalTarget::from_memory(Arc::new(mem), TargetInfo::default())
        }
        Input::Elf | Input::ElfNoHints | Input::Kdump => {
            let path = if input == Input::Kdump {
                &s.kdump
            } else {
                &s.elf
            };
            let d = memlens_connector_file::open_dump(path, &Default::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let t = d.target();
            assert!(
                t.info.vmcoreinfo.is_some(),
                "{}: dump without VMCOREINFO",
                path.display()
            );
            t
        }
    };
    let opts = LinuxOptions {
        no_hints: matches!(input, Input::Raw | Input::ElfNoHints),
        ..Default::default()
    };
    let os = LinuxOs::open(target, opts)
        .unwrap_or_else(|e| panic!("{} {input:?}: open failed: {e}", s.spec.name));
    let hinted = os.linux_info().hints_used.iter().any(|h| h == "vmcoreinfo");
    assert_eq!(
        hinted,
        matches!(input, Input::Elf | Input::Kdump),
        "{input:?}: hints used"
    );
    os
}

fn check(name: &str) {
    check_input(name, Input::Raw)
}

fn check_input(name: &str, input: Input) {
    let s = testlab::require(name);
    let g = &s.truth.guest;
    let os = open(&s, input);
    if input == Input::Raw {
        let mem = memlens_connector_file::RawFile::open(&s.raw).unwrap();
        let t = PhysicalTarget::from_memory(Arc::new(mem), TargetInfo::default());
        let d = memlens_os_linux::detect(&t).expect("detect finds the kernel");
        assert!(d.kallsyms_at.is_some());
    }
    let info = os.linux_info();
    eprintln!("{name}: {:?}", os.info());

    // Kernel facts against the guest's own view.
    assert_eq!(info.release.as_deref(), Some(g.kernel_release.as_str()));
    assert_eq!(info.levels, if s.spec.la57 { 5 } else { 4 });
    for (sym, addr) in &g.kallsyms {
        assert_eq!(
            os.kernel().symbols().get(sym),
            Some(*addr),
            "{name}: kallsyms {sym}"
        );
    }
    if !s.spec.kaslr {
        assert_eq!(info.kaslr_virtual, 0);
    }

    // Processes: every process the guest listed, with the same ppid and name; extra ones
    // only if started after the snapshot (higher pid).
    let ps = os.processes().expect("process list");
    let max_truth = g.processes.iter().map(|p| p.pid).max().unwrap_or(0);
    for t in &g.processes {
        let p = ps
            .iter()
            .find(|p| p.pid == t.pid)
            .unwrap_or_else(|| panic!("{name}: pid {} ({}) missing", t.pid, t.comm));
        assert_eq!(p.ppid, t.ppid, "{name}: ppid of {}", t.pid);
        let same = testlab::same_task_name(&p.name, &t.comm);
        assert!(
            same,
            "{name}: pid {} is {:?}, guest says {:?}",
            t.pid, p.name, t.comm
        );
        if !t.cmdline.is_empty() {
            assert_eq!(
                p.cmdline.as_ref(),
                Some(&t.cmdline),
                "{name}: cmdline of {}",
                t.pid
            );
        }
        assert_eq!(
            p.kernel_thread,
            t.cmdline.is_empty(),
            "{name}: kthread flag of {}",
            t.pid
        );
    }
    for p in &ps {
        assert!(
            p.pid > max_truth || g.processes.iter().any(|t| t.pid == p.pid),
            "{name}: pid {} ({}) not in the guest's ps",
            p.pid,
            p.name
        );
    }

    // Kernel modules: names, sizes and bases as /proc/modules.
    let mods = os.kernel_modules().expect("modules");
    assert_eq!(mods[0].name, "vmlinux");
    let mut got: Vec<_> = mods[1..]
        .iter()
        .map(|m| (m.name.clone(), m.size, m.base.0))
        .collect();
    let mut want: Vec<_> = g
        .modules
        .iter()
        .map(|m| (m.name.clone(), m.size, m.address))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{name}: modules");

    // The marker: maps, strings at their addresses, argv and environment.
    let m = &g.marker;
    let proc_ = os.open_process(m.pid).expect("marker process");
    let pi = proc_.info_ref();
    assert_eq!(pi.name, testlab::truth::MARKER_COMM);
    assert_eq!(
        pi.exe.as_deref(),
        Some("/bin/memlens-marker"),
        "{name}: exe"
    );
    // The initramfs runs everything as root.
    assert_eq!((pi.uid, pi.gid), (Some(0), Some(0)), "{name}: uid/gid");
    assert!(
        pi.threads.is_some_and(|t| t >= 1),
        "{name}: threads {:?}",
        pi.threads
    );
    assert!(pi.state.is_some() && !pi.kernel_thread && pi.root.is_some());
    let init_start = ps.iter().find(|p| p.pid == 1).and_then(|p| p.start_time_ns);
    assert!(
        pi.start_time_ns > init_start,
        "{name}: marker starts after init"
    );
    let maps = memlens_core::Process::maps(&proc_).expect("maps");
    let got: Vec<_> = maps
        .iter()
        .map(|x| {
            (
                x.start.0,
                x.end.0,
                x.perms.to_string(),
                x.offset,
                x.path.clone().unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<_> = m
        .maps
        .iter()
        .map(|x| (x.start, x.end, x.perms.clone(), x.offset, x.path.clone()))
        .collect();
    assert_eq!(got, want, "{name}: marker maps");
    let mem = memlens_core::Process::memory(&proc_);
    for st in &m.strings {
        let bytes = mem
            .read_vec(VirtAddr(st.va), st.text.len())
            .unwrap_or_else(|e| panic!("{name}: {:?} string at {:#x}: {e}", st.kind, st.va));
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            st.text,
            "{name}: {:?}",
            st.kind
        );
    }
    let env = proc_.environment().expect("environment");
    for st in m.of_kind(MarkerKind::Env) {
        assert!(env.contains(&st.text), "{name}: env {} missing", st.text);
    }
    let argv: Vec<_> = m
        .of_kind(MarkerKind::Argv)
        .map(|s| s.text.clone())
        .collect();
    assert_eq!(
        proc_.info_ref().cmdline.as_ref(),
        Some(&argv),
        "{name}: argv"
    );
    let mods = memlens_core::Process::modules(&proc_).expect("process modules");
    assert!(mods
        .iter()
        .any(|x| x.path.as_deref() == Some("/bin/memlens-marker")));
    check_module_details(&s, &proc_, &maps);
}

/// `module_details` from process memory: the static marker's loadable segments against
/// its maps in the guest's `/proc` (and no dynamic symbols: it is static), and the vDSO's
/// exports against the vDSO image embedded in the kernel file (parsed by goblin).
fn check_module_details(
    s: &Scenario,
    p: &memlens_os_linux::LinuxProcess,
    maps: &[memlens_core::MapInfo],
) {
    use memlens_core::Process;
    let name = s.spec.name;
    let marker = Process::modules(p)
        .expect("modules")
        .into_iter()
        .find(|m| m.path.as_deref() == Some("/bin/memlens-marker"))
        .expect("marker module");
    let d = p.module_details(&marker).expect("marker details");
    assert!(
        d.exports.is_empty() && d.imports.is_empty(),
        "{name}: static"
    );
    let file_maps: Vec<_> = s
        .truth
        .guest
        .marker
        .maps
        .iter()
        .filter(|m| m.path == "/bin/memlens-marker")
        .collect();
    assert!(!d.sections.is_empty(), "{name}: no segments");
    for seg in &d.sections {
        let start = seg.addr.0 & !0xfff;
        let m = file_maps
            .iter()
            .find(|m| m.start == start)
            .unwrap_or_else(|| panic!("{name}: {} at {start:#x} starts no map", seg.name));
        assert_eq!(
            seg.name.ends_with('x'),
            m.perms.contains('x'),
            "{name}: {} vs map {}",
            seg.name,
            m.perms
        );
    }
    for m in &file_maps {
        assert!(
            d.sections
                .iter()
                .any(|seg| seg.addr.0 & !0xfff <= m.start && m.end <= seg.addr.0 + seg.size + 0xfff),
            "{name}: map {:#x}-{:#x} in no segment",
            m.start,
            m.end
        );
    }

    // The vDSO: one 64-bit ELF with dynamic symbols embedded in the kernel file.
    let vdso = maps
        .iter()
        .find(|m| m.path.as_deref() == Some("[vdso]"))
        .expect("[vdso] map");
    let module = memlens_core::ModuleInfo {
        name: "[vdso]".into(),
        base: vdso.start,
        size: vdso.end.0 - vdso.start.0,
        path: None,
    };
    let mut got: Vec<(String, u64)> = p
        .module_details(&module)
        .expect("vdso details")
        .exports
        .into_iter()
        .map(|e| (e.name, e.addr.0))
        .collect();
    got.sort();
    let file = s.vmlinux.as_ref().unwrap_or(&s.vmlinuz);
    let bytes = std::fs::read(file).expect("kernel file");
    let mut want: Vec<Vec<(String, u64)>> = Vec::new();
    for at in memchr::memmem::find_iter(&bytes, b"\x7fELF\x02\x01\x01") {
        let Ok(elf) = goblin::elf::Elf::parse(&bytes[at..]) else {
            continue;
        };
        if at == 0 || elf.header.e_type != goblin::elf::header::ET_DYN || elf.dynsyms.is_empty() {
            continue;
        }
        let first = elf
            .program_headers
            .iter()
            .filter(|h| h.p_type == goblin::elf::program_header::PT_LOAD)
            .map(|h| h.p_vaddr & !0xfff)
            .min()
            .unwrap_or(0);
        let mut v: Vec<(String, u64)> = elf
            .dynsyms
            .iter()
            .filter(|y| {
                y.st_shndx != 0
                    && matches!(y.st_bind(), 1 | 2 | 10)
                    && y.st_type() != 4
                    && y.st_name != 0
            })
            .map(|y| {
                let n = elf.dynstrtab.get_at(y.st_name).unwrap_or("").to_string();
                // SHN_ABS (version names) are not relocated.
                let rt = if y.st_shndx == 0xfff1 {
                    y.st_value
                } else {
                    vdso.start.0 + y.st_value - first
                };
                (n, rt)
            })
            .collect();
        v.sort();
        want.push(v);
    }
    assert_eq!(want.len(), 1, "{name}: vDSO images in {}", file.display());
    assert!(!got.is_empty(), "{name}: vDSO exports");
    assert_eq!(got, want[0], "{name}: vDSO exports");
}

trait InfoRef {
    fn info_ref(&self) -> &memlens_core::ProcessInfo;
}
impl InfoRef for memlens_os_linux::LinuxProcess {
    fn info_ref(&self) -> &memlens_core::ProcessInfo {
        memlens_core::Process::info(self)
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

/// A second kernel build (Debian's 6.12 series): nothing may depend on one build's
/// offsets or kallsyms layout.
#[test]
fn x86_64_6_12() {
    check("x86_64-6.12");
}

#[test]
fn x86_64_6_12_elf_with_hints() {
    check_input("x86_64-6.12", Input::Elf);
}

#[test]
fn x86_64_6_12_elf_pure_scan() {
    check_input("x86_64-6.12", Input::ElfNoHints);
}

#[test]
fn x86_64_6_12_kdump() {
    check_input("x86_64-6.12", Input::Kdump);
}

#[test]
fn x86_64_kaslr_elf_with_hints() {
    check_input("x86_64-kaslr", Input::Elf);
}

#[test]
fn x86_64_kaslr_elf_pure_scan() {
    check_input("x86_64-kaslr", Input::ElfNoHints);
}

#[test]
fn x86_64_kaslr_kdump() {
    check_input("x86_64-kaslr", Input::Kdump);
}

#[test]
fn x86_64_la57_elf_with_hints() {
    check_input("x86_64-la57", Input::Elf);
}

/// arm64 (Debian's kernel: text-only kallsyms, KASLR): the pure scan on the raw image.
#[test]
fn arm64() {
    check("arm64");
}

#[test]
fn arm64_elf_with_hints() {
    check_input("arm64", Input::Elf);
}

#[test]
fn arm64_elf_pure_scan() {
    check_input("arm64", Input::ElfNoHints);
}

#[test]
fn arm64_kdump() {
    check_input("arm64", Input::Kdump);
}

/// `__ksymtab` (the fallback for data symbols) read from the running KASLR kernel's
/// image, not the file: relocated addresses must equal the guest's /proc/kallsyms.
#[test]
fn x86_64_kaslr_ksymtab_in_memory() {
    let s = testlab::require("x86_64-kaslr");
    let os = open(&s, Input::Raw);
    let k = os.kernel();
    let text = k.symbols().get("_text").unwrap();
    let end = s.truth.guest.kallsyms["__stop___ksymtab"];
    let img = k
        .memory()
        .read_vec(VirtAddr(text), (end - text + (1 << 20)) as usize)
        .expect("image readable");
    for name in ["init_task", "page_offset_base"] {
        assert_eq!(
            memlens_os_linux::ksymtab::lookup(&img, text, name),
            s.truth
                .guest
                .kallsyms
                .get(name)
                .copied()
                .or(k.symbols().get(name)),
            "{name}"
        );
    }
}

/// A kernel whose kallsyms has text symbols only (as without `CONFIG_KALLSYMS_ALL`):
/// data symbols come from `__ksymtab`, the image offset and root from the trampoline's
/// page table. Processes must still be complete.
#[test]
fn x86_64_kaslr_text_symbols_only() {
    let s = testlab::require("x86_64-kaslr");
    let mem = memlens_connector_file::RawFile::open(&s.raw).unwrap();
    let target = PhysicalTarget::from_memory(Arc::new(mem), TargetInfo::default());
    let opts = LinuxOptions {
        no_hints: true,
        text_symbols_only: true,
        ..Default::default()
    };
    let os = LinuxOs::open(target, opts).expect("open with text symbols only");
    assert!(os.kernel().symbols().get("init_task").is_none());
    assert_eq!(
        os.linux_info().release.as_deref(),
        Some(s.truth.guest.kernel_release.as_str())
    );
    let ps = os.processes().expect("processes");
    for t in &s.truth.guest.processes {
        let p = ps
            .iter()
            .find(|p| p.pid == t.pid)
            .unwrap_or_else(|| panic!("pid {}", t.pid));
        assert_eq!(p.ppid, t.ppid, "pid {}", t.pid);
    }
    let marker = os.open_process(s.truth.guest.marker.pid).expect("marker");
    let maps = memlens_core::Process::maps(&marker).expect("maps");
    assert_eq!(maps.len(), s.truth.guest.marker.maps.len());
}

/// arm64 VMCOREINFO that lies (a wrong `kimage_voffset`) is not trusted: the values fail
/// the page-table check, the scan places the kernel, and the process list is complete.
#[test]
fn arm64_wrong_vmcoreinfo_falls_back_to_the_scan() {
    let s = testlab::require("arm64");
    let d = memlens_connector_file::open_dump(&s.elf, &Default::default()).expect("ELF dump");
    let mut t = d.target();
    let v = t.info.vmcoreinfo.as_mut().expect("VMCOREINFO");
    let right = v["NUMBER(kimage_voffset)"].clone();
    v.insert(
        "NUMBER(kimage_voffset)".into(),
        "0xffff800000000000".to_string(),
    );
    assert_ne!(right, v["NUMBER(kimage_voffset)"]);
    let os = LinuxOs::open(t, LinuxOptions::default()).expect("open despite wrong hints");
    assert!(os.linux_info().hints_used.is_empty());
    let ps = os.processes().expect("processes");
    for p in &s.truth.guest.processes {
        assert!(ps.iter().any(|q| q.pid == p.pid), "pid {} missing", p.pid);
    }
}

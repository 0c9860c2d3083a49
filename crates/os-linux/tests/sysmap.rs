//! `symbols=PATH` (System.map, vmlinux, ISF JSON) when kallsyms cannot be found: the lab's KASLR dump with
//! every kallsyms token table wiped, and a System.map written from the lab's `vmlinux`
//! (link-time addresses). The KASLR offset is given as an option, taken from the guest's
//! own `/proc/kallsyms`.

use std::io::Write;
use std::sync::Arc;

mod common;

use common::VecMem;
use memlens_core::{Os, PhysicalTarget, TargetInfo};
use memlens_os_linux::{kallsyms, LinuxError, LinuxOptions, LinuxOs, SymbolSource};

#[test]
fn system_map_replaces_missing_kallsyms() {
    let s = testlab::require("x86_64-kaslr");
    let vmlinux = std::fs::read(s.vmlinux.as_ref().expect("vmlinux")).unwrap();
    let (_, table) = kallsyms::find_and_parse(&vmlinux, "vmlinux").unwrap();
    let map_path = std::env::temp_dir().join(format!("memlens-sysmap-{}.map", std::process::id()));
    let mut f = std::fs::File::create(&map_path).unwrap();
    for sym in table.iter() {
        writeln!(f, "{:016x} {} {}", sym.addr, sym.kind, sym.name).unwrap();
    }
    drop(f);
    let kaslr = s.truth.guest.kallsyms["_end"] - table.get("_end").unwrap();

    let mut mem = std::fs::read(&s.raw).unwrap();
    let hits: Vec<usize> = memchr::memmem::find_iter(&mem, kallsyms::DIGITS_ANCHOR).collect();
    assert!(!hits.is_empty());
    for h in hits {
        mem[h..h + kallsyms::DIGITS_ANCHOR.len()].fill(0);
    }
    let target = PhysicalTarget::from_memory(Arc::new(VecMem(mem)), TargetInfo::default());

    // Without the map: a clear error that suggests it.
    let e = LinuxOs::open(target.clone(), LinuxOptions::default()).expect_err("no kallsyms");
    assert!(
        matches!(e, LinuxError::KernelNotFound { .. }) && e.to_string().contains("symbols=PATH"),
        "{e}"
    );

    // The same symbols as a Volatility 3 ISF file (built here as plain JSON text).
    let isf_path = std::env::temp_dir().join(format!("memlens-isf-{}.json", std::process::id()));
    let entries: Vec<String> = table
        .iter()
        .map(|sym| format!("{:?}: {{\"address\": {}}}", sym.name, sym.addr))
        .collect();
    std::fs::write(
        &isf_path,
        format!("{{\"symbols\": {{{}}}}}", entries.join(",")),
    )
    .unwrap();
    // System.map, the (stripped) vmlinux itself, and ISF: each opens the kernel.
    let vmlinux_path = s.vmlinux.clone().expect("vmlinux");
    for path in [&map_path, &vmlinux_path, &isf_path] {
        let opts = LinuxOptions {
            symbols: Some(path.clone()),
            kaslr_offset: Some(kaslr),
            no_hints: true,
            ..Default::default()
        };
        let os = LinuxOs::open(target.clone(), opts)
            .unwrap_or_else(|e| panic!("open with {}: {e}", path.display()));
        assert_eq!(os.linux_info().symbol_source, SymbolSource::SystemMap);
        assert_eq!(
            os.linux_info().release.as_deref(),
            Some(s.truth.guest.kernel_release.as_str())
        );
        let ps = os.processes().unwrap();
        for t in &s.truth.guest.processes {
            let p = ps
                .iter()
                .find(|p| p.pid == t.pid)
                .unwrap_or_else(|| panic!("{}: pid {}", path.display(), t.pid));
            assert_eq!(p.ppid, t.ppid);
        }
    }
    let _ = std::fs::remove_file(&map_path);
    let _ = std::fs::remove_file(&isf_path);
}

//! End-to-end: the real `memlens` binary on real Linux guests' dumps from the test lab,
//! compared with ground truth recorded inside the guest (ps, /proc/modules, the marker
//! process's strings and maps). Fails with a setup hint when the lab is missing.

mod common;
use common::{json, memlens};

use std::path::Path;

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 lab path")
}

/// `ps` on every format equals the guest's own process list (pid, ppid, name).
fn check_ps(scenario: &str) {
    let s = testlab::require(scenario);
    let truth = &s.truth.guest.processes;
    assert!(truth.len() > 10, "truth lists too few processes");
    for dump in [&s.elf, &s.kdump_flat, &s.kdump, &s.raw] {
        let label = format!("{scenario} {}", dump.display());
        common::check_ps(&label, &json(&["ps", p(dump)]), truth);
    }
}

#[test]
fn ps_matches_guest_x86_64_kaslr() {
    check_ps("x86_64-kaslr");
}

#[test]
fn ps_matches_guest_x86_64_la57() {
    check_ps("x86_64-la57");
}

#[test]
fn ps_matches_guest_x86_64_6_12() {
    check_ps("x86_64-6.12");
}

#[test]
fn modules_maps_and_marker_strings() {
    let s = testlab::require("x86_64-kaslr");
    let elf = p(&s.elf);
    // Kernel modules: names and sizes equal /proc/modules.
    let mods = json(&["modules", elf]);
    for m in &s.truth.guest.modules {
        let found = mods
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == m.name.as_str() && r["size"].as_u64() == Some(m.size));
        assert!(
            found,
            "module {} ({} bytes) not listed: {mods}",
            m.name, m.size
        );
    }
    // The marker's maps equal its /proc/PID/maps.
    let marker = &s.truth.guest.marker;
    let pid = marker.pid.to_string();
    let maps = json(&["maps", elf, "-p", &pid]);
    let got: Vec<(u64, u64, String)> = maps
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let perm = m["perms"].clone();
            let s = format!(
                "{}{}{}{}",
                if perm["read"] == true { 'r' } else { '-' },
                if perm["write"] == true { 'w' } else { '-' },
                if perm["exec"] == true { 'x' } else { '-' },
                if perm["shared"] == true { 's' } else { 'p' }
            );
            (m["start"].as_u64().unwrap(), m["end"].as_u64().unwrap(), s)
        })
        .collect();
    for m in &marker.maps {
        assert!(
            got.contains(&(m.start, m.end, m.perms.clone())),
            "map {:#x}-{:#x} {} missing: {got:?}",
            m.start,
            m.end,
            m.perms
        );
    }
    // Marker strings read back through the process's virtual memory, and found by search
    // at the physical addresses the guest reported.
    for st in &marker.strings {
        let out = memlens(&[
            "read",
            elf,
            &format!("{:#x}", st.va),
            &st.text.len().to_string(),
            "-p",
            &pid,
            "--out",
            "/dev/stdout",
        ]);
        assert!(
            out.status.success(),
            "read {:#x}: {}",
            st.va,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            st.text,
            "string at {:#x}",
            st.va
        );
    }
    let hits = json(&["search", p(&s.raw), "MEMLENS-HEAP-0-", "--max", "100"]);
    let heap0 = marker
        .strings
        .iter()
        .find(|st| st.text.starts_with("MEMLENS-HEAP-0-"))
        .expect("heap string 0 in truth");
    let heap0_pa = heap0
        .pa
        .expect("truth records the heap string's physical address");
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["addr"].as_u64() == Some(heap0_pa)),
        "search did not find heap string 0 at {:#x}: {hits}",
        heap0_pa
    );
}

#[test]
fn info_reports_kernel_and_dump_facts() {
    let s = testlab::require("x86_64-kaslr");
    let v = json(&["info", p(&s.kdump_flat)]);
    assert_eq!(
        v["os"]["release"],
        s.truth.guest.kernel_release.as_str(),
        "{v}"
    );
    assert!(
        v["target"]["format"].as_str().unwrap().contains("kdump"),
        "{v}"
    );
    assert!(
        v["target"]["vmcoreinfo"]["OSRELEASE"] == s.truth.guest.kernel_release.as_str(),
        "{v}"
    );
}

#[test]
fn chain_syntax_equals_positional_target() {
    let s = testlab::require("x86_64-kaslr");
    let by_path = json(&["ps", p(&s.kdump)]);
    let spec = format!("file:{}", p(&s.kdump));
    let by_chain = json(&["ps", "-c", &spec, "-o", "linux"]);
    let by_auto = json(&["ps", "-c", &spec, "-o", "auto"]);
    assert_eq!(by_path, by_chain);
    assert_eq!(by_path, by_auto);
}

/// Every range of the source `a` reads the same from the written dump `b`.
fn same_physical_bytes(a: &Path, b: &Path) {
    use memlens::core::{MemoryView, MemoryViewExt, PhysAddr};
    let opts = memlens::file::DumpOptions::default();
    let a = memlens::file::open_dump(a, &opts).expect("open source dump");
    let b = memlens::file::open_dump(b, &opts).expect("open written dump");
    let (ma, mb) = (a.target().memory, b.target().memory);
    assert!(!ma.ranges().is_empty(), "source dump has no ranges");
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    for r in ma.ranges().iter() {
        let mut addr = r.base.0;
        while addr < r.end_u64() {
            let n = (r.end_u64() - addr).min(1 << 20) as usize;
            mb.read_into(PhysAddr(addr), &mut y[..n])
                .unwrap_or_else(|e| panic!("written dump at {addr:#x}: {e}"));
            ma.read_into(PhysAddr(addr), &mut x[..n])
                .unwrap_or_else(|e| panic!("source dump at {addr:#x}: {e}"));
            assert!(x[..n] == y[..n], "bytes differ in [{addr:#x}, +{n:#x})");
            addr += n as u64;
        }
    }
}

#[test]
fn dump_physical_to_elf_and_raw_reopens_with_the_same_bytes() {
    let s = testlab::require("x86_64-kaslr");
    let dir = tempfile::tempdir().unwrap();
    // kdump (compressed) → ELF core: same bytes, kernel still found (VMCOREINFO kept).
    let elf = dir.path().join("guest.elf");
    let out = memlens(&["dump", p(&s.kdump), "--out", p(&elf)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    same_physical_bytes(&s.kdump, &elf);
    let info = json(&["info", p(&elf)]);
    assert_eq!(
        info["target"]["vmcoreinfo"]["OSRELEASE"],
        s.truth.guest.kernel_release.as_str()
    );
    let ps = json(&["ps", p(&elf)]);
    let marker = s.truth.guest.marker.pid;
    assert!(
        ps.as_array()
            .unwrap()
            .iter()
            .any(|r| r["pid"] == marker && r["name"] == "memlens-marker"),
        "marker process {marker} not in ps of the written core"
    );
    // Existing files are kept unless --force.
    let again = memlens(&["dump", p(&s.kdump), "--out", p(&elf)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    // ELF → raw: byte N is physical address N.
    let raw = dir.path().join("guest.raw");
    let out = memlens(&["dump", p(&s.elf), "--format", "raw", "--out", p(&raw)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    same_physical_bytes(&s.elf, &raw);
}

#[test]
fn dump_process_core_has_its_maps_and_strings() {
    let s = testlab::require("x86_64-kaslr");
    let marker = &s.truth.guest.marker;
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("marker.core");
    let pid = marker.pid.to_string();
    let out = memlens(&["dump", p(&s.elf), "-p", &pid, "--out", p(&core)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&core).unwrap();
    // Parsed by goblin, not by memlens.
    let elf = goblin::elf::Elf::parse(&bytes).expect("goblin parses the core");
    assert_eq!(elf.header.e_type, goblin::elf::header::ET_CORE);
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|ph| ph.p_type == goblin::elf::program_header::PT_LOAD)
        .collect();
    // One segment per mapping of /proc/PID/maps ([vvar] is left out), same permissions.
    for m in marker.maps.iter().filter(|m| m.path != "[vvar]") {
        let ph = loads
            .iter()
            .find(|ph| ph.p_vaddr == m.start)
            .unwrap_or_else(|| panic!("no PT_LOAD for {:#x}-{:#x}", m.start, m.end));
        assert_eq!(ph.p_memsz, m.end - m.start, "size of {:#x}", m.start);
        assert_eq!(
            ph.is_write(),
            m.perms.contains('w'),
            "perms of {:#x}",
            m.start
        );
        assert_eq!(
            ph.is_executable(),
            m.perms.contains('x'),
            "perms of {:#x}",
            m.start
        );
    }
    // The marker's strings are in the file where their segment says.
    for st in &marker.strings {
        assert_eq!(
            common::core_bytes(&bytes, st.va, st.text.len()),
            st.text.as_bytes(),
            "{:?} at {:#x}",
            st.kind,
            st.va
        );
    }
    // NT_FILE names the marker binary.
    let notes = String::from_utf8_lossy(&bytes[..4096]);
    assert!(
        notes.contains("/bin/memlens-marker"),
        "NT_FILE lacks the binary"
    );
}

#[test]
fn strings_finds_the_marker_strings_at_their_addresses() {
    let s = testlab::require("x86_64-kaslr");
    let marker = &s.truth.guest.marker;
    let pid = marker.pid.to_string();
    let v = json(&["strings", p(&s.elf), "-p", &pid, "-n", "8"]);
    let rows = v.as_array().unwrap();
    for st in &marker.strings {
        let found = rows.iter().any(|r| {
            let (addr, len) = (r["addr"].as_u64().unwrap(), r["len"].as_u64().unwrap());
            let text = r["text"].as_str().unwrap();
            addr <= st.va
                && st.va + st.text.len() as u64 <= addr + len
                && text.contains(st.text.as_str())
                && r["encoding"] == "ascii"
                && r["pid"] == marker.pid
        });
        assert!(
            found,
            "{:?} {:?} at {:#x} not found",
            st.kind, st.text, st.va
        );
    }
    // --max keeps the first strings in address order.
    let first = json(&["strings", p(&s.elf), "-p", &pid, "-n", "8", "--max", "5"]);
    assert_eq!(first.as_array().unwrap()[..], rows[..5]);
}

#[test]
fn search_max_returns_the_first_matches_every_time() {
    let s = testlab::require("x86_64-kaslr");
    let all = json(&[
        "search",
        p(&s.raw),
        "--regex",
        "[A-Z]{8}",
        "--max",
        "100000",
    ]);
    let all = all.as_array().unwrap();
    assert!(
        all.len() > 100,
        "too few matches to test --max: {}",
        all.len()
    );
    for _ in 0..3 {
        let some = json(&["search", p(&s.raw), "--regex", "[A-Z]{8}", "--max", "37"]);
        assert_eq!(some.as_array().unwrap()[..], all[..37]);
    }
}

/// `translate` with the root from the dump's own registers gives the physical addresses
/// QEMU's `gva2gpa` gave (user and kernel addresses, and the unmapped ones fail), and
/// `pagemap` lists sorted ranges that map the kernel text where QEMU says it is.
#[test]
fn translate_and_pagemap_with_the_dumps_registers() {
    let s = testlab::require("x86_64-kaslr");
    let elf = p(&s.elf);
    let pairs = &s.truth.monitor.translations;
    assert!(pairs.len() > 10, "truth has too few gva2gpa pairs");
    let vas: Vec<String> = pairs.iter().map(|t| format!("{:#x}", t.va)).collect();
    let mut args = vec!["translate", elf];
    args.extend(vas.iter().map(String::as_str));
    let rows = json(&args);
    let rows = rows.as_array().expect("translate --json is an array");
    assert_eq!(rows.len(), pairs.len());
    for (t, r) in pairs.iter().zip(rows) {
        assert_eq!(r["va"].as_u64(), Some(t.va), "{}", t.label);
        match t.pa {
            Some(pa) => assert_eq!(r["pa"].as_u64(), Some(pa), "{} {:#x}: {r}", t.label, t.va),
            None => assert!(r["error"].is_string(), "{} {:#x}: {r}", t.label, t.va),
        }
    }

    let pm = json(&["pagemap", elf]);
    let ranges = pm["ranges"].as_array().expect("pagemap --json has ranges");
    assert!(ranges.len() > 10, "pagemap lists {} ranges", ranges.len());
    let span = |r: &serde_json::Value| (r["va"].as_u64().unwrap(), r["len"].as_u64().unwrap());
    for w in ranges.windows(2) {
        let ((a, alen), (b, _)) = (span(&w[0]), span(&w[1]));
        assert!(a + alen <= b, "ranges not sorted: {} then {}", w[0], w[1]);
    }
    let text = s.truth.guest.kallsyms["_text"];
    let text_pa = pairs
        .iter()
        .find(|t| t.label == "kallsyms _text")
        .and_then(|t| t.pa)
        .expect("truth translates _text");
    let r = ranges
        .iter()
        .find(|r| {
            let (va, len) = span(r);
            (va..va + len).contains(&text)
        })
        .unwrap_or_else(|| panic!("no range maps the kernel text {text:#x}"));
    assert_eq!(r["pa"].as_u64().unwrap() + (text - span(r).0), text_pa);
    assert_eq!(r["flags"]["user"], false, "kernel text is not user: {r}");
}

/// An arm64 ELF dump from QEMU carries no TTBRs: translate refuses to guess an
/// architecture and says how to give one.
#[test]
fn undecodable_registers_are_an_error_not_x86_64() {
    let s = testlab::require("arm64");
    let elf = p(&s.elf);
    for args in [
        vec!["pagemap", elf],
        vec!["translate", elf, "0xffff800008000000"],
        vec!["translate", elf, "--arch", "aarch64", "0xffff800008000000"],
    ] {
        let out = memlens(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cpu 0's registers"), "{args:?}: {err}");
        assert!(err.contains("--dtb"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

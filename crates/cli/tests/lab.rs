//! End-to-end: the real `memlens` binary on real Linux guests' dumps from the test lab,
//! compared with ground truth recorded inside the guest (ps, /proc/modules, the marker
//! process's strings and maps). Fails with a setup hint when the lab is missing.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn memlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run memlens")
}

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = memlens(&a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "memlens {args:?} failed: {err}");
    assert!(!err.contains("panicked"));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("memlens {args:?}: bad JSON: {e}"))
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 lab path")
}

/// `ps` on every format equals the guest's own process list (pid, ppid, name).
fn check_ps(scenario: &str) {
    let s = testlab::require(scenario);
    let truth: Vec<(u64, u64, &str)> = s
        .truth
        .guest
        .processes
        .iter()
        .map(|p| (u64::from(p.pid), u64::from(p.ppid), p.comm.as_str()))
        .collect();
    assert!(truth.len() > 10, "truth lists too few processes");
    let max_pid = truth.iter().map(|t| t.0).max().unwrap_or(0);
    for dump in [&s.elf, &s.kdump_flat, &s.kdump, &s.raw] {
        let v = json(&["ps", p(dump)]);
        let rows = v.as_array().expect("ps --json is an array");
        let got: Vec<(u64, u64, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["pid"].as_u64().unwrap(),
                    r["ppid"].as_u64().unwrap(),
                    r["name"].as_str().unwrap(),
                )
            })
            .collect();
        // Same pid, ppid and name (a worker's transient `+desc`/`-desc` aside).
        let matches = |a: &(u64, u64, &str), b: &(u64, u64, &str)| {
            a.0 == b.0 && a.1 == b.1 && testlab::same_task_name(a.2, b.2)
        };
        for t in &truth {
            assert!(
                got.iter().any(|g| matches(g, t)),
                "{scenario} {}: missing {t:?}",
                dump.display()
            );
        }
        // Anything extra must have been started after the guest's own ps ran.
        for g in &got {
            assert!(
                truth.iter().any(|t| matches(g, t)) || g.0 > max_pid,
                "{scenario} {}: unexpected {g:?}",
                dump.display()
            );
        }
        // The documented fields are present.
        for field in ["pid", "ppid", "name", "cmdline", "kernel_thread"] {
            assert!(rows[0].get(field).is_some(), "ps --json lacks `{field}`");
        }
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

//! Running the real `memlens` binary from end-to-end tests.

use std::process::{Command, Output};

/// Runs `memlens ARGS` without colour and returns its output.
pub fn memlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run memlens")
}

/// Runs `memlens ARGS` without colour, with extra environment variables.
#[allow(dead_code, reason = "not every test binary sets variables")]
pub fn memlens_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memlens"));
    c.args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run memlens")
}

/// Runs `memlens ARGS --json`, checks it succeeded without a panic, and parses stdout.
#[allow(dead_code, reason = "not every test binary parses JSON")]
pub fn json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = memlens(&a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "memlens {args:?} failed: {err}");
    assert!(
        !err.contains("panicked"),
        "memlens {args:?} panicked: {err}"
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("memlens {args:?}: bad JSON: {e}"))
}

/// Checks a `ps --json` listing against the guest's own: every guest process is listed with
/// the same ppid and name (a workqueue worker's transient suffix aside), and anything else
/// has a higher pid than the guest's listing had (started after it).
#[allow(dead_code, reason = "not every test binary reads guests")]
pub fn check_ps(label: &str, ps: &serde_json::Value, truth: &[testlab::truth::ProcessTruth]) {
    let rows = ps.as_array().expect("ps --json is an array");
    let same = |r: &serde_json::Value, t: &testlab::truth::ProcessTruth| {
        r["pid"] == t.pid
            && r["ppid"] == t.ppid
            && testlab::same_task_name(r["name"].as_str().unwrap_or(""), &t.comm)
    };
    for t in truth {
        assert!(
            rows.iter().any(|r| same(r, t)),
            "{label}: pid {} ({}) missing or different",
            t.pid,
            t.comm
        );
    }
    let max_pid = truth.iter().map(|t| t.pid).max().unwrap_or(0);
    for r in rows {
        assert!(
            r["pid"].as_u64().is_some_and(|p| p > u64::from(max_pid))
                || truth.iter().any(|t| same(r, t)),
            "{label}: unexpected process {r}"
        );
    }
    // The documented fields are present.
    for field in ["pid", "ppid", "name", "cmdline", "kernel_thread"] {
        assert!(rows[0].get(field).is_some(), "ps --json lacks `{field}`");
    }
}

/// The bytes a core file holds for `[va, va + len)`, found through its `PT_LOAD`s (parsed
/// by goblin, not by memlens).
#[allow(dead_code, reason = "not every test binary reads cores")]
pub fn core_bytes(core: &[u8], va: u64, len: usize) -> &[u8] {
    let elf = goblin::elf::Elf::parse(core).expect("goblin parses the core");
    let ph = elf
        .program_headers
        .iter()
        .find(|ph| {
            ph.p_type == goblin::elf::program_header::PT_LOAD
                && ph.vm_range().contains(&(va as usize))
        })
        .unwrap_or_else(|| panic!("no PT_LOAD holds {va:#x}"));
    let off = (ph.p_offset + va - ph.p_vaddr) as usize;
    &core[off..off + len]
}

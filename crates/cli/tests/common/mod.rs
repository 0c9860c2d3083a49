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

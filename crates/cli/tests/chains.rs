//! Chains built from the parsed command line, through the real binary on a lab dump: a
//! positional dump followed by OS steps, a positional dump with a connector step (refused),
//! and the `metrics` middleware's summary. Fails (never skips) when the lab is missing.

mod common;
use common::{json, memlens};

#[test]
fn positional_dump_with_os_steps_equals_dump_alone() {
    let s = testlab::require("x86_64-kaslr");
    let elf = s.elf.to_str().unwrap();
    let alone = json(&["ps", elf]);
    assert!(alone.as_array().is_some_and(|a| a.len() > 10), "{alone}");
    // The dump is the file connector step, the OS steps follow it.
    assert_eq!(json(&["ps", elf, "-o", "linux"]), alone);
    assert_eq!(json(&["ps", "-o", "linux", elf]), alone);
    assert_eq!(json(&["ps", elf, "-o", "auto"]), alone);
    // A command reading physical memory gets the physical memory under the OS.
    let info = json(&["info", elf, "-o", "linux"]);
    assert!(info["target"].is_object(), "{info}");
    // The OS step's arguments reach the plugin: a bad one is a usage error.
    let o = memlens(&["ps", elf, "-o", "linux:no_such_arg=1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no_such_arg"), "{err}");
}

#[test]
fn positional_dump_with_a_connector_step_is_a_usage_error() {
    let s = testlab::require("x86_64-kaslr");
    let elf = s.elf.to_str().unwrap();
    let spec = format!("file:{elf}");
    for args in [
        vec!["ps", elf, "-c", &spec],
        vec!["ps", elf, "-c", &spec, "-o", "linux"],
        vec!["info", elf, "-o", "native", "-c", "qemu:vm"],
    ] {
        let o = memlens(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("a dump file is already the connector") && err.contains("-c file:PATH"),
            "{args:?}: {err}"
        );
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn metrics_summary_is_printed_on_stderr() {
    let s = testlab::require("x86_64-kaslr");
    let spec = format!("file:{}::metrics", s.elf.to_str().unwrap());
    let o = memlens(&["ps", "-c", &spec, "-o", "linux", "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("metrics file:"))
        .unwrap_or_else(|| panic!("no metrics summary: {err}"));
    assert!(
        line.contains(" reads (") && line.contains(" bytes"),
        "{line}"
    );
    // The summary never mixes with the output.
    let ps: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ps JSON");
    assert!(ps.as_array().is_some_and(|a| a.len() > 10));
    // Also when the command fails after the chain was built.
    let o = memlens(&["maps", "-c", &spec, "-o", "linux", "-p", "999999"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("metrics file:"), "{err}");
}

//! `memlens plugins list|help|targets` end to end: the JSON listing (built-in plugins and a
//! rejected file with its reason), a plugin's argument declarations, target lists of a
//! connector and of an OS plugin, and unknown names ("did you mean", exit status 2).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{memlens, memlens_env};

/// A plugin directory (mode 0755) holding `bogus.so`: bytes that are no shared library.
fn bad_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(d.path().join("bogus.so"), junk).unwrap();
    d
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn list_json_has_the_builtins_and_the_rejected_file() {
    let dir = bad_dir();
    let home = tempfile::tempdir().unwrap();
    let env = [("MEMLENS_PLUGIN_PATH", dir.path()), ("HOME", home.path())];
    let o = memlens_env(&["plugins", "list", "--json"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let host_abi = v["host_abi_version"].as_u64().expect("host_abi_version");
    assert_eq!(v["search_paths"][0], dir.path().to_str().unwrap());

    let plugins = v["plugins"].as_array().expect("plugins array");
    let builtin = |kind: &str, name: &str| {
        plugins
            .iter()
            .find(|p| p["kind"] == kind && p["name"] == name && p["path"].is_null())
            .unwrap_or_else(|| panic!("no built-in {kind} {name} in {plugins:#?}"))
    };
    for (kind, name) in [
        ("connector", "file"),
        ("connector", "qemu"),
        ("os", "linux"),
        ("os", "native"),
    ] {
        let p = builtin(kind, name);
        assert_eq!(p["abi_version"].as_u64(), Some(host_abi), "{p}");
        assert_eq!(p["version"], env!("CARGO_PKG_VERSION"), "{p}");
        assert!(!p["description"].as_str().unwrap().is_empty(), "{p}");
        assert!(p.get("status").is_some(), "{p}");
    }
    // Every entry has the documented fields; file entries name their file.
    for p in plugins {
        for f in ["kind", "name", "version", "abi_version", "path", "status"] {
            assert!(p.get(f).is_some(), "entry lacks {f}: {p}");
        }
        if let Some(path) = p["path"].as_str() {
            assert!(path.ends_with(".so"), "{p}");
        }
    }

    let bogus = dir.path().join("bogus.so");
    let rejected = v["rejected_files"]
        .as_array()
        .expect("rejected_files array")
        .iter()
        .find(|r| r["path"] == bogus.to_str().unwrap())
        .unwrap_or_else(|| panic!("bogus.so not rejected: {}", v["rejected_files"]));
    assert_eq!(
        rejected["reason"], "not a shared library (unknown format)",
        "{rejected}"
    );

    // The text form says the same.
    let o = memlens_env(&["plugins", "list"], &env);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "rejected file {}: not a shared library (unknown format)",
            bogus.display()
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "searched (ABI {host_abi}): {}",
        dir.path().display()
    )));
}

#[test]
fn help_prints_the_argument_declarations() {
    let o = memlens(&["plugins", "help", "linux"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let h = stdout(&o);
    assert!(
        h.starts_with(&format!("linux {} (os): ", env!("CARGO_PKG_VERSION"))),
        "{h}"
    );
    assert!(h.contains("usage: -o linux[:target[:args]]"), "{h}");
    for arg in ["root", "kaslr", "symbols", "nohints"] {
        assert!(
            h.lines().any(|l| l.trim_start().starts_with(arg)),
            "help lacks the declaration of {arg}:\n{h}"
        );
    }
    let o = memlens(&["plugins", "help", "file"]);
    let h = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        h.contains("middleware (4th section):") && h.contains("cache_size"),
        "{h}"
    );
}

/// Pids of running `qemu-system-*` processes, read from /proc by this test.
fn qemu_pids() -> BTreeSet<u64> {
    let mut pids = BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv0 = cmd.split(|&b| b == 0).next().unwrap_or_default();
        let base = Path::new(std::str::from_utf8(argv0).unwrap_or("")).file_name();
        if base.is_some_and(|b| b.to_string_lossy().starts_with("qemu-system-")) {
            pids.insert(pid);
        }
    }
    pids
}

#[test]
fn targets_of_qemu_match_the_running_guests() {
    // Other tests may start or stop guests meanwhile: a guest running before and after
    // the command must be listed, and anything listed must have been seen by one scan.
    let before = qemu_pids();
    let o = memlens(&["plugins", "targets", "qemu", "--json"]);
    let after = qemu_pids();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let listed: BTreeSet<u64> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|g| g["pid"].as_u64().expect("pid"))
        .collect();
    for p in before.intersection(&after) {
        assert!(listed.contains(p), "guest {p} not listed: {v}");
    }
    for p in &listed {
        assert!(
            before.contains(p) || after.contains(p),
            "pid {p} is no QEMU: {v}"
        );
    }

    let before = qemu_pids();
    let o = memlens(&["plugins", "targets", "qemu"]);
    let after = qemu_pids();
    assert!(o.status.success(), "{}", stderr(&o));
    if before.is_empty() && after.is_empty() {
        assert_eq!(stdout(&o), "qemu: no running QEMU guests found\n");
    }
}

#[test]
fn targets_of_an_os_plugin_say_there_are_none() {
    let o = memlens(&["plugins", "targets", "linux"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "linux (os): no targets found (the plugin lists none now)\n"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&memlens(&["plugins", "targets", "native", "--json"]).stdout)
            .unwrap();
    assert_eq!(v["plugin"], "native");
    assert_eq!(v["kind"], "os");
    assert_eq!(v["targets"], serde_json::json!([]));
}

#[test]
fn unknown_names_suggest_and_exit_2() {
    for (args, want) in [
        (&["plugins", "help", "linx"][..], "did you mean 'linux'?"),
        (&["plugins", "targets", "qemo"][..], "did you mean 'qemu'?"),
        (&["plugins", "help", "natve"][..], "did you mean 'native'?"),
    ] {
        let o = memlens(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.contains("available: "), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
    // Nothing close: no suggestion, still the list and status 2.
    let o = memlens(&["plugins", "help", "zzzzzzzz"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("did you mean"), "{}", stderr(&o));
}

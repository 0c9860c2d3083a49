//! Error paths: exit status (2 usage, 1 target) and one-line messages, never a panic.

mod common;
use common::memlens;

use std::io::Write;
use std::process::Command;

fn check(args: &[&str], code: i32, needle: &str) {
    let out = memlens(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: stderr lacks {needle:?}: {err}"
    );
}

fn image(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f
}

#[test]
fn usage_errors_exit_2() {
    let f = image(&[7u8; 4096]);
    let p = f.path().to_str().unwrap();
    check(&["frobnicate"], 2, "unrecognized subcommand");
    check(&["read", p, "0xzz", "4"], 2, "bad address");
    check(&["read", p, "0", "4q"], 2, "bad length");
    check(&["read", p, "0", "0"], 2, "greater than 0");
    check(
        &["read", p, "0xffffffffffffffff", "2"],
        2,
        "past the end of the 64-bit",
    );
    check(&["bench", "phys", p, "--sizes", "0"], 2, "bad size");
    check(&["ps", "-c", "nosuchplugin"], 2, "nosuchplugin");
    check(
        &["dump", p, "-p", "1", "--format", "raw", "--out", "/tmp/x"],
        2,
        "ELF core",
    );
    check(&["dump", p], 2, "--out");
    check(&["strings", p, "-n", "0"], 2, "--min-len");
    check(&["bench", "cli"], 2, "ARGS");
    check(&["search", p, "--regex", "("], 2, "bad regex");
}

#[test]
fn target_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.raw");
    check(&["info", missing.to_str().unwrap()], 1, "missing.raw");
    check(
        &["info", dir.path().to_str().unwrap()],
        1,
        "not a regular file",
    );
    // A plugin that cannot open its target is a target error, not a usage error.
    let spec = format!("file:{}", missing.display());
    check(&["ps", "-c", &spec, "-o", "linux"], 1, "missing.raw");
    let empty = image(&[]);
    check(&["info", empty.path().to_str().unwrap()], 1, "empty");
    let f = image(&[7u8; 4096]);
    // Past the end: the hexdump shows ?? and the error names the first bad address.
    let out = memlens(&["read", f.path().to_str().unwrap(), "4090", "16"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("10 of 16 bytes") && err.contains("0x1000"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("07 07 ?? ??"));
    // A dump into a folder that does not exist names the file.
    let bad_out = dir.path().join("no/such/dir/core");
    check(
        &[
            "dump",
            f.path().to_str().unwrap(),
            "--out",
            bad_out.to_str().unwrap(),
        ],
        1,
        "cannot create",
    );
}

#[test]
fn unreadable_file_names_the_permission_problem() {
    // As root every file is readable, so drop to `nobody` through setpriv when available.
    let f = image(&[1u8; 64]);
    std::fs::set_permissions(
        f.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o400),
    )
    .unwrap();
    let is_root = unsafe_getuid() == 0;
    if !is_root {
        check(
            &["info", f.path().to_str().unwrap()],
            1,
            "Permission denied",
        );
        return;
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_memlens"),
            "info",
        ])
        .arg(f.path())
        .output()
        .expect("setpriv (util-linux) is needed for this test: apt-get install util-linux");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Permission denied") && err.contains("hint:"),
        "{err}"
    );
}

fn unsafe_getuid() -> u32 {
    // `id -u` keeps this test free of libc bindings.
    let out = Command::new("id").arg("-u").output().expect("id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric uid")
}

#[test]
fn raw_image_round_trip() {
    let mut data = vec![0u8; 8192];
    data[0x1234..0x123c].copy_from_slice(b"memlens!");
    let f = image(&data);
    let p = f.path().to_str().unwrap();
    let out = memlens(&["read", p, "0x1234", "8"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("|memlens!|"));
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("out.bin");
    let out = memlens(&["read", p, "0x1000", "4k", "--out", bin.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&bin).unwrap(), &data[0x1000..0x2000]);
    let out = memlens(&["info", p, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"]["format"], "raw");
    assert_eq!(v["target"]["real_size"], 8192);
    assert_eq!(v["target"]["ranges"][0]["len"], 8192);
}

#[test]
fn write_needs_allow_write_and_round_trips() {
    let f = image(&[0u8; 8192]);
    let p = f.path().to_str().unwrap();
    check(&["write", p, "0x100", "de ad be ef"], 2, "--allow-write");
    assert_eq!(
        std::fs::read(f.path()).unwrap()[0x100..0x104],
        [0, 0, 0, 0],
        "wrote without --allow-write"
    );
    let out = memlens(&["write", p, "0x100", "de ad be ef", "--allow-write"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(f.path()).unwrap()[0x100..0x104],
        [0xde, 0xad, 0xbe, 0xef]
    );
    check(&["write", p, "0x100", "xyz", "--allow-write"], 2, "not hex");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.raw");
    let m = missing.to_str().unwrap();
    // Pipes (as here) get no escape codes by default, even without NO_COLOR.
    let plain = Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args(["info", m])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(!plain.stderr.contains(&0x1b), "escape codes in a pipe");
    let forced = memlens(&["info", m, "--color", "always"]);
    let err = String::from_utf8_lossy(&forced.stderr);
    assert!(err.contains("\u{1b}[") && err.contains("error:"), "{err:?}");
    let f = image(&[7u8; 4096]);
    let out = memlens(&[
        "search",
        f.path().to_str().unwrap(),
        "--hex",
        "07",
        "--max",
        "1",
        "--color",
        "always",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("\u{1b}["),
        "table header not coloured"
    );
    let out = memlens(&[
        "search",
        f.path().to_str().unwrap(),
        "--hex",
        "07",
        "--max",
        "1",
        "--color",
        "never",
    ]);
    assert!(!out.stdout.contains(&0x1b));
}

/// An unknown `--arch` is a usage error that lists every accepted name, and `--help` of
/// every command taking `--arch` lists them too.
#[test]
fn arch_names_in_errors_and_help() {
    let f = image(&[0u8; 8192]);
    let p = f.path().to_str().unwrap();
    for args in [
        vec!["translate", p, "--dtb", "0", "--arch", "bogus", "0x1"],
        vec!["pagemap", p, "--dtb", "0", "--arch", "bogus"],
    ] {
        let out = memlens(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("unknown architecture 'bogus'"), "{err}");
        for name in memlens_arch::ARCH_NAMES {
            assert!(err.contains(name), "{args:?}: {name} not listed: {err}");
        }
    }
    for cmd in [
        &["translate"][..],
        &["pagemap"],
        &["bench", "walk"],
        &["bench", "virt"],
    ] {
        let out = memlens(&[cmd, &["--help"]].concat());
        let help = String::from_utf8_lossy(&out.stdout);
        let arch = help
            .split("--arch")
            .nth(1)
            .unwrap_or_else(|| panic!("{cmd:?} --help has no --arch"));
        let arch = arch.split("\n      -").next().unwrap();
        for name in memlens_arch::ARCH_NAMES {
            assert!(
                arch.contains(&format!("{name},")) || arch.contains(&format!("{name}.")),
                "{cmd:?} --help: --arch does not list {name}: {arch}"
            );
        }
    }
}

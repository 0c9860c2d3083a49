//! Shared test fixtures: builds the test plugin cdylibs (and this crate's own cdylib for
//! the C API) with a nested `cargo build` into a target directory of their own (the outer
//! `cargo test` holds the lock on its own), once per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const TESTCONN: &str = "libmemlens_plugin_testconn.so";
pub const TESTOS: &str = "libmemlens_plugin_testos.so";
pub const TESTBAD: &str = "libmemlens_plugin_testbad.so";
pub const CAPI: &str = "libmemlens_plugin.so";

/// The byte at `addr` of testconn's pattern (independent copy of its documented formula).
pub fn pattern(addr: u64) -> u8 {
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// Directory holding the built fixture libraries.
pub fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(&cargo)
            .current_dir(&ws)
            .env("CARGO_TARGET_DIR", &target)
            .args([
                "build",
                "-p",
                "memlens-plugin-testconn",
                "-p",
                "memlens-plugin-testos",
                "-p",
                "memlens-plugin-testbad",
                "-p",
                "memlens-plugin",
            ])
            .output()
            .expect("running cargo to build the test plugins");
        assert!(
            out.status.success(),
            "building the test plugins failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug")
    })
}

/// A fresh directory (mode 0755) holding copies of the named built libraries.
pub fn plugin_dir(files: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    set_mode(d.path(), 0o755);
    for f in files {
        let dst = d.path().join(f);
        std::fs::copy(built().join(f), &dst).expect("copy plugin");
        set_mode(&dst, 0o755);
    }
    d
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The header cbindgen writes for `src` (a path inside this crate) with `cfg`.
pub fn cbindgen_header(cfg: cbindgen::Config, src: &str) -> String {
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(cfg)
        .with_src(Path::new(env!("CARGO_MANIFEST_DIR")).join(src))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen cannot parse {src}: {e}"))
        .write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

/// Checks that the committed header `rel` (inside the workspace) equals `fresh`, the
/// header generated from `src`; `MEMLENS_BLESS=1` rewrites it first. Returns its text.
pub fn check_header(rel: &str, fresh: &str, src: &str, test: &str) -> String {
    let path = workspace().join(rel);
    if std::env::var_os("MEMLENS_BLESS").is_some() {
        std::fs::write(&path, fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (generate it with MEMLENS_BLESS=1)", path.display()));
    assert!(
        committed == fresh,
        "{rel} is out of date with {src}; run MEMLENS_BLESS=1 cargo test -p memlens-plugin --test {test}"
    );
    committed
}

//! Records the compiler's version string for the native-layout fingerprint
//! (`abi::native_fingerprint`): the fast read path shares Rust-layout `ReadOp` arrays
//! between host and plugin only when both were built by the same rustc.

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).replace('\n', ";"))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MEMLENS_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}

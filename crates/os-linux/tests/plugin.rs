//! The `linux` plugin through memlens-plugin's argument parsing, statically linked, on the
//! lab's KASLR dump.
#![cfg(feature = "plugin")]

use std::sync::Arc;

use memlens_core::{PhysicalTarget, TargetInfo};
use memlens_os_linux::plugin::LinuxPlugin;
use memlens_plugin::{Args, OsPlugin};

#[test]
fn plugin_lists_processes() {
    let s = testlab::require("x86_64-kaslr");
    let mem = memlens_connector_file::RawFile::open(&s.raw).unwrap();
    let t = PhysicalTarget::from_memory(Arc::new(mem), TargetInfo::default());
    let args = Args::parse("linux", &LinuxPlugin::args(), None, "nohints=true").expect("args");
    let os = LinuxPlugin::create(&args, Some(t)).expect("linux plugin opens the dump");
    let ps = os.processes().unwrap();
    assert!(ps.iter().any(|p| p.pid == s.truth.guest.marker.pid));
    assert_eq!(os.info().plugin, "linux");
    let bad = Args::parse("linux", &LinuxPlugin::args(), None, "bogus=1");
    assert!(bad.is_err(), "unknown keys are rejected");
    assert!(LinuxPlugin::create(
        &Args::parse("linux", &LinuxPlugin::args(), None, "").unwrap(),
        None
    )
    .is_err());
}

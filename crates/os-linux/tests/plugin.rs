//! The `linux` plugin through memlens-plugin's argument parsing, statically linked, on the
//! lab's KASLR dump.
#![cfg(feature = "plugin")]

use std::sync::Arc;

use memlens_core::{Os, PhysicalTarget, TargetInfo};
use memlens_os_linux::plugin::LinuxPlugin;
use memlens_os_linux::{LinuxError, LinuxOptions, LinuxOs};
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

/// Zeroed physical memory: holds no kernel.
struct Zeros(u64);

impl memlens_core::MemoryView for Zeros {
    type Addr = memlens_core::PhysAddr;
    fn read_batch(&self, ops: &mut [memlens_core::ReadOp<'_, memlens_core::PhysAddr>]) {
        for op in ops {
            op.buf.fill(0);
            op.result = if op.addr.0.saturating_add(op.buf.len() as u64) <= self.0 {
                Ok(())
            } else {
                Err(memlens_core::Error::OutOfRange {
                    addr: op.addr,
                    len: op.buf.len(),
                    max: memlens_core::PhysAddr(self.0 - 1),
                })
            };
        }
    }
    fn metadata(&self) -> memlens_core::MemoryMetadata<memlens_core::PhysAddr> {
        memlens_core::MemoryMetadata {
            max_addr: memlens_core::PhysAddr(self.0 - 1),
            real_size: self.0,
            readonly: true,
            preferred_batch: 1,
        }
    }
}

/// Opened through the builder (a statically linked `linux` plugin on a target with no
/// kernel), the failure is still a `LinuxError` a library caller can match.
#[test]
fn builder_keeps_the_typed_error_of_a_missing_kernel() {
    use memlens_plugin::{Builder, ChainSpec, Error, Output, StaticRegistry};
    let reg = StaticRegistry::new().with_os::<LinuxPlugin>();
    let t = PhysicalTarget::from_memory(Arc::new(Zeros(4 << 20)), TargetInfo::default());
    let chain = ChainSpec::parse_cli(&["-o", "linux::nohints=true"]).unwrap();
    let e = match Builder::new()
        .registry(&reg)
        .build_on(Output::Target(t), &chain)
    {
        Ok(_) => panic!("no kernel in zeros"),
        Err(e) => e,
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with("plugin 'linux': no Linux kernel found"),
        "{msg}"
    );
    let Error::Core(core) = &e else {
        panic!("not a core error: {e:?}")
    };
    assert!(
        matches!(
            core.downcast_ref::<LinuxError>(),
            Some(LinuxError::KernelNotFound { .. })
        ),
        "{core:?}"
    );
    assert!(core.downcast_ref::<std::io::Error>().is_none());
}

/// Through `Arc<dyn Os>`, an OS error arrives as a core error that still holds the
/// `LinuxError`.
#[test]
fn dyn_os_errors_downcast_to_linux_errors() {
    let s = testlab::require("x86_64-kaslr");
    let mem = memlens_connector_file::RawFile::open(&s.raw).unwrap();
    let t = PhysicalTarget::from_memory(Arc::new(mem), TargetInfo::default());
    let os: Arc<dyn Os> = Arc::new(LinuxOs::open(t, LinuxOptions::default()).unwrap());
    let e = os.process(0x7fff_fff0).err().expect("no such pid");
    assert!(
        matches!(e, memlens_core::Error::Os { ref os, .. } if os == "linux"),
        "{e:?}"
    );
    assert!(
        matches!(
            e.context("looking up").downcast_ref::<LinuxError>(),
            Some(LinuxError::NoSuchProcess { pid: 0x7fff_fff0 })
        ),
        "typed error kept"
    );
}

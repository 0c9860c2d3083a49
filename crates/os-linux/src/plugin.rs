//! The `linux` OS plugin (`-o linux[::key=value,…]`): [`LinuxOs`] behind
//! `memlens-plugin`'s [`OsPlugin`] trait, exported from the `cdylib` as
//! `MEMLENS_OS_LINUX` and usable statically through the same type.

use std::sync::Arc;

use memlens_core::{Os, PhysAddr, PhysicalTarget};
use memlens_plugin::{ArgDecl, ArgSpec, Args, BoxError, OsPlugin};

use crate::{LinuxOptions, LinuxOs};

/// The `linux` OS plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxPlugin;

impl OsPlugin for LinuxPlugin {
    const NAME: &'static str = "linux";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Linux kernels (x86-64, arm64): finds kallsyms and BTF in memory, no symbol files needed";

    fn args() -> ArgSpec {
        ArgSpec::new()
            .arg(ArgDecl::number(
                "root",
                "force the kernel page-table root (physical address)",
            ))
            .arg(ArgDecl::number(
                "kaslr",
                "virtual KASLR offset applied to the symbol file (`symbols=`)",
            ))
            .arg(ArgDecl::path(
                "symbols",
                "symbol file (System.map, vmlinux or ISF JSON) used when kallsyms is not found in memory",
            ))
            .arg(ArgDecl::flag(
                "nohints",
                "ignore VMCOREINFO and registers (pure memory scan)",
            ))
    }

    fn create(args: &Args, input: Option<PhysicalTarget>) -> Result<Arc<dyn Os>, BoxError> {
        let target = input.ok_or("the linux plugin needs a physical target (-c …)")?;
        let opts = LinuxOptions {
            root: args.number("root")?.map(PhysAddr),
            kaslr_offset: args.number("kaslr")?,
            symbols: args.get("symbols").map(Into::into),
            no_hints: args.flag("nohints"),
            ..LinuxOptions::default()
        };
        // As a core error, so the builder keeps the `LinuxError` (in `Error::Os`).
        let os = LinuxOs::open(target, opts).map_err(memlens_core::Error::from)?;
        Ok(Arc::new(os))
    }
}

memlens_plugin::export_os!(LINUX = LinuxPlugin);

//! The `native` OS plugin (`-o native[::write]`): [`NativeOs`] behind `memlens-plugin`'s
//! [`OsPlugin`] trait, exported from the `cdylib` as `MEMLENS_OS_NATIVE` and usable
//! statically through the same type.

use std::sync::Arc;

use memlens_core::{Os, PhysicalTarget};
use memlens_plugin::{ArgDecl, ArgSpec, Args, BoxError, InputKind, OsPlugin};

use crate::{NativeOptions, NativeOs};

/// The `native` OS plugin: the host itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativePlugin;

impl OsPlugin for NativePlugin {
    const NAME: &'static str = "native";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "the host itself (Linux): processes from /proc, memory through process_vm_readv";
    const INPUT: InputKind = InputKind::None;

    fn args() -> ArgSpec {
        ArgSpec::new().arg(ArgDecl::flag(
            "write",
            "allow writing into processes (off by default)",
        ))
    }

    fn create(args: &Args, input: Option<PhysicalTarget>) -> Result<Arc<dyn Os>, BoxError> {
        if input.is_some() {
            return Err("the native OS plugin reads the host itself and takes no connector".into());
        }
        // As a core error, so the builder keeps the `NativeError` (in `Error::Os`).
        let os = NativeOs::open(NativeOptions {
            allow_write: args.flag("write"),
        })
        .map_err(memlens_core::Error::from)?;
        Ok(Arc::new(os))
    }
}

memlens_plugin::export_os!(NATIVE = NativePlugin);

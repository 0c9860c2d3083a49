//! The `qemu` connector plugin (`-o native -c qemu:NAME_OR_PID[:key=value,…]`):
//! [`QemuConnector`] behind `memlens-plugin`'s [`ConnectorPlugin`] trait, exported from the
//! `cdylib` as `MEMLENS_CONNECTOR_QEMU`. It needs an input OS (the one that runs QEMU: the
//! CLI passes the native OS by default); `targets()` lists nothing without one — use
//! [`list_targets`](crate::list_targets) with an OS.

use std::sync::Arc;

use memlens_core::{Os, PhysicalTarget};
use memlens_plugin::{ArgDecl, ArgSpec, Args, BoxError, ConnectorPlugin, InputKind};

use crate::{QemuArgs, QemuConnector};

/// The `qemu` connector plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct QemuPlugin;

impl ConnectorPlugin for QemuPlugin {
    const NAME: &'static str = "qemu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "live QEMU guests: RAM read out of the QEMU process, layout and registers from QMP";
    const INPUT: InputKind = InputKind::Required;

    fn args() -> ArgSpec {
        ArgSpec::new()
            .target(
                "guest name (-name) or QEMU pid; default: the only guest",
                false,
            )
            .arg(ArgDecl::path(
                "qmp",
                "QMP socket to use instead of the command line's",
            ))
            .arg(ArgDecl::flag(
                "no_qmp",
                "do not use QMP (layout from the machine type)",
            ))
            .arg(ArgDecl::flag("writable", "allow writes into guest memory"))
            .arg(ArgDecl::flag("pause", "pause the guest while connected"))
            .arg(ArgDecl::flag(
                "no_direct",
                "never map a shared RAM block directly",
            ))
    }

    fn create(args: &Args, input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget, BoxError> {
        let os = input.ok_or(
            "the qemu connector needs the OS that runs QEMU as input (e.g. -o native before -c qemu)",
        )?;
        let mut a = match args.target() {
            Some(t) => QemuArgs::parse(t)?,
            None => QemuArgs::default(),
        };
        a.qmp = args.get("qmp").map(Into::into);
        a.no_qmp = args.flag("no_qmp");
        a.writable = args.flag("writable");
        a.pause = args.flag("pause");
        a.no_direct = args.flag("no_direct");
        Ok(QemuConnector::open(os, &a)?.physical_target())
    }
}

memlens_plugin::export_connector!(QEMU = QemuPlugin);

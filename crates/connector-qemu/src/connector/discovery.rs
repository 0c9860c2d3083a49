//! Listing QEMU guests and choosing one. **Key decision: a selector must match exactly one
//! guest**: none or several is an error that lists the guests, never a silent pick.

use memlens_core::Os;
use serde::Serialize;

use super::QemuArgs;
use crate::cmdline::{self, QemuCommandLine};
use crate::error::QemuError;

/// A QEMU guest as listed by [`list_targets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QemuTarget {
    /// QEMU's process id.
    pub pid: u32,
    /// What the command line says.
    #[serde(flatten)]
    pub cmdline: QemuCommandLine,
}

impl std::fmt::Display for QemuTarget {
    /// One line: pid, name, target, machine, RAM, QMP socket.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.cmdline;
        write!(
            f,
            "{:>7}  {:<24} {:<8} {:<10} {:>6} MiB  {}",
            self.pid,
            c.name.as_deref().unwrap_or("-"),
            c.target,
            c.machine.as_deref().unwrap_or("(default)"),
            c.ram_size >> 20,
            c.qmp_socket
                .as_ref()
                .map_or("no QMP".to_string(), |p| format!("qmp {}", p.display()))
        )
    }
}

/// Every running QEMU system emulator the OS lists (processes whose `argv[0]` is a
/// `qemu-system-*` binary), in pid order.
pub fn list_targets(os: &dyn Os) -> Result<Vec<QemuTarget>, QemuError> {
    Ok(os
        .processes()?
        .into_iter()
        .filter_map(|p| {
            let argv = p.cmdline?;
            cmdline::is_qemu_binary(argv.first()?).then(|| QemuTarget {
                pid: p.pid,
                cmdline: cmdline::parse(&argv),
            })
        })
        .collect())
}

pub(super) fn select(all: Vec<QemuTarget>, args: &QemuArgs) -> Result<QemuTarget, QemuError> {
    let list = |v: &[QemuTarget]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    if all.is_empty() {
        return Err(QemuError::NoQemu);
    }
    let matching: Vec<QemuTarget> = all
        .iter()
        .filter(|t| args.pid.is_none_or(|p| p == t.pid))
        .filter(|t| {
            args.name
                .as_deref()
                .is_none_or(|n| t.cmdline.name.as_deref() == Some(n))
        })
        .cloned()
        .collect();
    match matching.len() {
        1 => Ok(matching.into_iter().next().ok_or(QemuError::NoQemu)?),
        0 => Err(QemuError::NotFound {
            selector: match (&args.name, args.pid) {
                (Some(n), Some(p)) => format!("name={n},pid={p}"),
                (Some(n), None) => n.clone(),
                (None, Some(p)) => format!("pid {p}"),
                (None, None) => String::new(),
            },
            list: list(&all),
        }),
        n => Err(QemuError::Ambiguous {
            selector: args.name.clone(),
            matches: n,
            list: list(&matching),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pid: u32, name: &str) -> QemuTarget {
        QemuTarget {
            pid,
            cmdline: cmdline::parse(&[
                "qemu-system-x86_64".to_string(),
                "-name".into(),
                name.into(),
            ]),
        }
    }

    #[test]
    fn selection() {
        let all = vec![t(1, "a"), t(2, "b"), t(3, "b")];
        let by = |s: &str| select(all.clone(), &QemuArgs::parse(s).unwrap());
        assert_eq!(by("a").unwrap().pid, 1);
        assert_eq!(by("3").unwrap().pid, 3);
        let e = by("b").unwrap_err().to_string();
        assert!(
            e.contains("2 QEMU guests match 'b'")
                && e.contains("      2  b")
                && e.contains("      3  b"),
            "{e}"
        );
        let e = by("").unwrap_err().to_string();
        assert!(e.contains("3 QEMU guests match"), "{e}");
        assert!(by("zz")
            .unwrap_err()
            .to_string()
            .contains("no QEMU guest matches 'zz'"));
        assert!(matches!(
            select(vec![], &QemuArgs::default()),
            Err(QemuError::NoQemu)
        ));
        assert_eq!(
            select(vec![t(9, "only")], &QemuArgs::default())
                .unwrap()
                .pid,
            9
        );
    }
}

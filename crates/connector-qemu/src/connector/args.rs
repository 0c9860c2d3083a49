//! The connector's options. **Key decision: a bare first field is a pid if it parses as
//! one, else a guest name**, so `qemu:vm1` and `qemu:1234` both work without keys.

use std::path::PathBuf;

use crate::error::QemuError;

/// Options of the connector (`qemu:NAME` or `qemu:name=..,pid=..,qmp=..,writable,pause`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QemuArgs {
    /// Guest name (`-name`); must match exactly one guest.
    pub name: Option<String>,
    /// QEMU pid.
    pub pid: Option<u32>,
    /// QMP socket to use instead of the one on the command line.
    pub qmp: Option<PathBuf>,
    /// Do not use QMP even if the command line has a socket.
    pub no_qmp: bool,
    /// Allow writes into guest memory (the input OS must also allow writing).
    pub writable: bool,
    /// Pause the guest while the connector is open (resumed when the last handle drops).
    pub pause: bool,
    /// Never map the RAM block directly; always read through the process view.
    pub no_direct: bool,
}

impl QemuArgs {
    /// Parses `NAME`, `PID`, or comma-separated `name=`, `pid=`, `qmp=`, `no-qmp`,
    /// `writable`, `pause`, `no-direct`.
    pub fn parse(s: &str) -> Result<Self, QemuError> {
        let mut a = QemuArgs::default();
        for (i, f) in s
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .enumerate()
        {
            let bad = |why: &str| QemuError::Arg {
                arg: f.to_string(),
                why: why.to_string(),
            };
            match f.split_once('=') {
                Some(("name", v)) => a.name = Some(v.to_string()),
                Some(("pid", v)) => a.pid = Some(v.parse().map_err(|_| bad("not a pid"))?),
                Some(("qmp", v)) => a.qmp = Some(PathBuf::from(v)),
                Some(_) => return Err(bad("unknown key (name, pid, qmp)")),
                None => match f {
                    "no-qmp" => a.no_qmp = true,
                    "writable" | "write" => a.writable = true,
                    "pause" => a.pause = true,
                    "no-direct" => a.no_direct = true,
                    _ if i == 0 => match f.parse::<u32>() {
                        Ok(p) => a.pid = Some(p),
                        Err(_) => a.name = Some(f.to_string()),
                    },
                    _ => return Err(bad("unknown flag (no-qmp, writable, pause, no-direct)")),
                },
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_forms() {
        assert_eq!(QemuArgs::parse("vm1").unwrap().name.as_deref(), Some("vm1"));
        assert_eq!(QemuArgs::parse("1234").unwrap().pid, Some(1234));
        let a = QemuArgs::parse("name=a,pid=7,qmp=/s,no-qmp,writable,pause,no-direct").unwrap();
        assert_eq!(a.name.as_deref(), Some("a"));
        assert_eq!(a.pid, Some(7));
        assert_eq!(a.qmp, Some(PathBuf::from("/s")));
        assert!(a.no_qmp && a.writable && a.pause && a.no_direct);
        assert!(QemuArgs::parse("vm,bogus").is_err());
        assert!(QemuArgs::parse("pid=x").is_err());
        assert_eq!(QemuArgs::parse("").unwrap(), QemuArgs::default());
    }
}

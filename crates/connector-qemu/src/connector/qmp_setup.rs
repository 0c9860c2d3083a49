//! What the connector asks QMP while connecting. **Key decision: QMP's flat memory tree is
//! the layout when a socket answers**, and a socket named on QEMU's command line that does
//! not answer is an error (with the `no-qmp` way out), not a quiet fallback.

use memlens_core::MemoryMap;

use super::QemuConnector;
use crate::error::QemuError;
use crate::layout;
use crate::qmp::QmpSocket;

/// Host address of guest-physical `gpa` from `gpa2hva` text
/// (`Host virtual address for 0x0 (pc.ram) is 0x7f9a2be00000`).
fn parse_gpa2hva(text: &str) -> Option<u64> {
    let h = text.trim().rsplit(' ').next()?;
    u64::from_str_radix(h.strip_prefix("0x")?, 16).ok()
}

impl QemuConnector {
    /// The error for a QMP socket from QEMU's command line that could not be used: the
    /// socket, the reason, and how to go on without it.
    pub(super) fn command_line_qmp_error(q: &QmpSocket, pid: u32, e: QemuError) -> QemuError {
        let why = match e {
            QemuError::Qmp { what, .. } => what,
            other => other.to_string(),
        };
        QemuError::Qmp {
            socket: q.path().to_path_buf(),
            what: format!(
                "{why}\nthe socket is on QEMU process {pid}'s command line; to use the machine \
                 type's layout without QMP (no registers, no pause) instead, add `no-qmp` to the \
                 connector's arguments (qemu:NAME,no-qmp; on the memlens command line \
                 -c qemu:NAME:no_qmp)"
            ),
        }
    }

    pub(super) fn qmp_layout(
        q: &QmpSocket,
        ram: u64,
    ) -> Result<(MemoryMap, u64, Option<u64>), QemuError> {
        let size = q
            .execute("query-memory-size-summary", None)
            .ok()
            .and_then(|v| v.get("base-memory")?.as_u64())
            .unwrap_or(ram);
        let text = q.hmp("info mtree -f")?;
        let flat = layout::parse_mtree(&text);
        let map = layout::map_from_mtree(&flat, size).map_err(|why| QemuError::Qmp {
            socket: q.path().to_path_buf(),
            what: format!("info mtree -f: {why}"),
        })?;
        // Host address of the block's first byte, from the first entry.
        let hva = map.entries().first().and_then(|e| {
            let t = q.hmp(&format!("gpa2hva {:#x}", e.base.0)).ok()?;
            parse_gpa2hva(&t).map(|h| h.wrapping_sub(e.backing))
        });
        Ok((map, size, hva))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpa2hva_text() {
        assert_eq!(
            parse_gpa2hva("Host virtual address for 0x0 (pc.ram) is 0x7f9a2be00000\r\n"),
            Some(0x7f9a_2be0_0000)
        );
        assert_eq!(parse_gpa2hva("Error"), None);
    }
}

//! The guest's RAM block in the QEMU process. **Key decision: the block is identified by
//! QMP's host address when known, else by an exact size match that must be unique** (a
//! near-miss such as TCG's code buffer is never taken), and it is mapped directly only
//! when shared and unsplit, else read through the process view.

use memlens_core::MapInfo;

use super::QemuConnector;
use crate::error::QemuError;

impl QemuConnector {
    pub(super) fn find_ram(
        pid: u32,
        maps: &[MapInfo],
        size: u64,
        hva0: Option<u64>,
    ) -> Result<MapInfo, QemuError> {
        let len = |m: &MapInfo| m.end.0 - m.start.0;
        if let Some(h) = hva0 {
            if let Some(i) = maps.iter().position(|m| m.start.0 == h) {
                if len(&maps[i]) >= size {
                    return Ok(maps[i].clone());
                }
                // The block may span several adjacent mappings (VMAs split by madvise or
                // mprotect): accept a contiguous run, read through the process view only.
                let mut end = maps[i].end.0;
                for m in &maps[i + 1..] {
                    if m.start.0 != end || end - h >= size {
                        break;
                    }
                    end = m.end.0;
                }
                if end - h >= size {
                    let mut run = maps[i].clone();
                    run.end = memlens_core::VirtAddr(end);
                    run.perms.shared = false; // no direct mapping of a multi-VMA run
                    return Ok(run);
                }
            }
            log::warn!("QMP placed the RAM block at {h:#x}, but no mapping (run) of {size:#x} bytes starts there");
        }
        let rw = |m: &&MapInfo| m.perms.read && m.perms.write && !m.perms.exec && len(m) == size;
        let anon: Vec<&MapInfo> = maps
            .iter()
            .filter(rw)
            .filter(|m| !m.perms.shared && m.path.is_none())
            .collect();
        let shared: Vec<&MapInfo> = maps.iter().filter(rw).filter(|m| m.perms.shared).collect();
        let pick = if anon.len() == 1 {
            anon[0]
        } else if anon.is_empty() && shared.len() == 1 {
            shared[0]
        } else {
            let seen = maps
                .iter()
                .filter(|m| m.perms.write && len(m) >= 16 << 20)
                .map(|m| format!("{}-{} {} ({} MiB)", m.start, m.end, m.perms, len(m) >> 20))
                .collect::<Vec<_>>()
                .join(", ");
            let n = anon.len() + shared.len();
            return Err(QemuError::NoRamMapping {
                pid,
                looked_for: if n == 0 {
                    format!(
                        "a rw-p anonymous (or rw-s shared) mapping of exactly {size:#x} bytes = -m"
                    )
                } else {
                    format!("one mapping of exactly {size:#x} bytes, found {n}; give QEMU a QMP socket to disambiguate")
                },
                seen: if seen.is_empty() { "none".into() } else { seen },
            });
        };
        Ok(pick.clone())
    }

    /// Maps a shared RAM block into this process through `/proc/PID/map_files/`.
    pub(super) fn map_direct(pid: u32, m: &MapInfo, writable: bool) -> Option<memmap2::MmapRaw> {
        let p = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start.0, m.end.0);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&p)
            .map_err(|e| {
                log::info!("direct mapping unavailable ({p}: {e}); using the process view")
            })
            .ok()?;
        let len = (m.end.0 - m.start.0) as usize;
        let opts = memmap2::MmapOptions::new()
            .offset(m.offset)
            .len(len)
            .to_owned();
        let r = if writable {
            opts.map_raw(&f)
        } else {
            opts.map_raw_read_only(&f)
        };
        r.map_err(|e| log::info!("cannot map {p}: {e}; using the process view"))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(start: u64, len: u64, perms: &str, path: Option<&str>) -> MapInfo {
        MapInfo {
            start: memlens_core::VirtAddr(start),
            end: memlens_core::VirtAddr(start + len),
            perms: perms.parse().unwrap(),
            offset: 0,
            path: path.map(str::to_string),
        }
    }

    #[test]
    fn ram_mapping_choice() {
        let mib = 1u64 << 20;
        let tcg = map(0x7000_0000_0000, 1024 * mib, "rwxp", None);
        let heap = map(0x5000_0000_0000, 17 * mib, "rw-p", Some("[heap]"));
        let ram = map(0x7100_0000_0000, 256 * mib, "rw-p", None);
        let maps = vec![heap.clone(), tcg.clone(), ram.clone()];
        let f = |maps: &[MapInfo], size, hva| QemuConnector::find_ram(1, maps, size, hva);
        assert_eq!(f(&maps, 256 * mib, None).unwrap(), ram);
        // The TCG buffer never matches, even with a size equal to it.
        let e = f(&maps, 1024 * mib, None).unwrap_err().to_string();
        assert!(e.contains("0x40000000 bytes") && e.contains("rwxp"), "{e}");
        // Two candidates: ambiguous without QMP, resolved by gpa2hva.
        let twin = map(0x7200_0000_0000, 256 * mib, "rw-p", None);
        let two = vec![ram.clone(), twin.clone()];
        assert!(f(&two, 256 * mib, None)
            .unwrap_err()
            .to_string()
            .contains("found 2"));
        assert_eq!(f(&two, 256 * mib, Some(twin.start.0)).unwrap(), twin);
        // A block split into two adjacent VMAs is accepted from gpa2hva as one run.
        let a = map(0x7300_0000_0000, 128 * mib, "rw-p", None);
        let b = map(0x7300_0000_0000 + 128 * mib, 128 * mib, "rw-p", None);
        let r = f(&[a.clone(), b], 256 * mib, Some(a.start.0)).unwrap();
        assert_eq!((r.start, r.end.0 - r.start.0), (a.start, 256 * mib));
        // A shared memfd block is the fallback candidate.
        let memfd = map(
            0x7400_0000_0000,
            256 * mib,
            "rw-s",
            Some("/memfd:m0 (deleted)"),
        );
        assert_eq!(f(&[tcg, memfd.clone()], 256 * mib, None).unwrap(), memfd);
    }
}

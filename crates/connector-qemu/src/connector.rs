//! [`QemuConnector`]: finds a QEMU process through an [`Os`], locates its RAM block and
//! the guest-physical layout, and hands out a core [`PhysicalTarget`].
//!
//! Discovery uses only the input OS (`processes()`, then the chosen process's `maps()` and
//! `memory()`), so the same code works over the host (the native plugin) or over a QEMU
//! running *inside* another target (chains).

use std::path::PathBuf;
use std::sync::Arc;

use memlens_core::{CpuRegisters, CpuState, MapInfo, MemoryMap, Os, PhysicalTarget, TargetInfo};
use serde::Serialize;

use crate::cmdline::{self, QemuCommandLine};
use crate::error::QemuError;
use crate::layout;
use crate::memory::{Backend, QemuMemory, ResumeGuard};
use crate::qmp::QmpSocket;
use crate::regs;
use crate::vcpu::QmpCpu;

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

fn select(all: Vec<QemuTarget>, args: &QemuArgs) -> Result<QemuTarget, QemuError> {
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

/// A connected live QEMU guest. See the crate documentation.
pub struct QemuConnector {
    target: QemuTarget,
    qmp: Option<QmpSocket>,
    memory: Arc<QemuMemory>,
    ram_mapping: MapInfo,
    details: Vec<(String, String)>,
    cpu: Option<Arc<QmpCpu>>,
}

impl std::fmt::Debug for QemuConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QemuConnector")
            .field("target", &self.target)
            .field("details", &self.details)
            .finish()
    }
}

/// Host address of guest-physical `gpa` from `gpa2hva` text
/// (`Host virtual address for 0x0 (pc.ram) is 0x7f9a2be00000`).
fn parse_gpa2hva(text: &str) -> Option<u64> {
    let h = text.trim().rsplit(' ').next()?;
    u64::from_str_radix(h.strip_prefix("0x")?, 16).ok()
}

impl QemuConnector {
    /// Finds the guest selected by `args` among `os`'s processes and connects to it.
    pub fn open(os: Arc<dyn Os>, args: &QemuArgs) -> Result<Self, QemuError> {
        let target = select(list_targets(os.as_ref())?, args)?;
        let pid = target.pid;
        let proc_ = os.process(pid)?;
        let maps = proc_.maps()?;
        let mut details: Vec<(String, String)> = vec![
            ("pid".into(), pid.to_string()),
            (
                "name".into(),
                target.cmdline.name.clone().unwrap_or_default(),
            ),
            ("target".into(), target.cmdline.target.clone()),
        ];
        let socket = if args.no_qmp {
            None
        } else {
            args.qmp
                .clone()
                .or_else(|| target.cmdline.qmp_socket.clone())
        };
        let qmp = socket.map(QmpSocket::new);
        let mut ram_size = target.cmdline.ram_size;

        // Layout: QMP's flat view, else the board rules.
        let mut layout_map: Option<MemoryMap> = None;
        let mut hva0: Option<u64> = None;
        let mut qmp_ok = None;
        if let Some(q) = &qmp {
            match Self::qmp_layout(q, ram_size) {
                Ok((m, size, hva)) => {
                    ram_size = size;
                    layout_map = Some(m);
                    hva0 = hva;
                    details.push(("layout".into(), "QMP info mtree -f".into()));
                    qmp_ok = Some(q.clone());
                }
                Err(e) if args.qmp.is_some() => return Err(e),
                // A socket on QEMU's command line that does not answer is an error, not a
                // quiet fallback: the machine-type layout has no registers and may not be
                // QEMU's real one. The user can opt out explicitly.
                Err(e) => return Err(Self::command_line_qmp_error(q, pid, e)),
            }
        }
        let map = match layout_map {
            Some(m) => m,
            None => {
                let c = &target.cmdline;
                let m = layout::map_from_machine(
                    &c.target,
                    c.machine.as_deref(),
                    ram_size,
                    c.max_ram_below_4g,
                )
                .map_err(|why| QemuError::Layout { pid, why })?;
                details.push((
                    "layout".into(),
                    format!(
                        "from machine type {} and -m",
                        c.machine.as_deref().unwrap_or("(default)")
                    ),
                ));
                m
            }
        };
        details.push(("ram".into(), format!("{ram_size:#x}")));

        // The RAM block in the QEMU process.
        let ram_mapping = Self::find_ram(pid, &maps, ram_size, hva0)?;
        let host_base = ram_mapping.start.0;
        details.push((
            "ram mapping".into(),
            format!(
                "{}-{} {} {}",
                ram_mapping.start,
                ram_mapping.end,
                ram_mapping.perms,
                ram_mapping.path.as_deref().unwrap_or("(anonymous)")
            ),
        ));
        let block_len = ram_mapping.end.0 - host_base;
        let writer = if args.writable {
            Some(proc_.writer().ok_or_else(|| QemuError::Arg {
                arg: "writable".into(),
                why: "the input OS does not allow writing into the QEMU process (open it writable, e.g. the native OS with allow_write)".into(),
            })?)
        } else {
            None
        };
        let direct = (!args.no_direct && ram_mapping.perms.shared && os.info().plugin == "native")
            .then(|| Self::map_direct(pid, &ram_mapping, args.writable))
            .flatten();
        let backend = match direct {
            Some(m) => {
                details.push(("access".into(), "direct mapping (map_files)".into()));
                Backend::Direct {
                    map: m,
                    writable: args.writable,
                }
            }
            None => {
                details.push(("access".into(), "process memory view".into()));
                Backend::View {
                    view: proc_.memory(),
                    writer,
                    host_base,
                }
            }
        };
        let mut memory = QemuMemory::new(backend, map, block_len)?;
        let cpu = match &qmp_ok {
            Some(q) => match q.cpu_count() {
                Ok(n) => Some(Arc::new(QmpCpu::new(
                    q.clone(),
                    n,
                    target.cmdline.target == "aarch64",
                ))),
                Err(e) => {
                    // Memory works without registers (OS plugins find their roots), so
                    // this degrades instead of failing; `info` shows why they are missing.
                    log::warn!("{e}");
                    details.push(("registers".into(), format!("unavailable: {e}")));
                    None
                }
            },
            None => None,
        };
        if args.pause {
            let q = qmp_ok.clone().ok_or_else(|| QemuError::NoQmp {
                pid,
                needed_for: "pause".into(),
            })?;
            if q.running()? {
                q.execute("stop", None)?;
                memory._resume = Some(Arc::new(ResumeGuard(q)));
            }
        }
        if let Some(q) = &qmp_ok {
            details.push(("qmp".into(), q.path().display().to_string()));
        }
        Ok(Self {
            target,
            qmp: qmp_ok,
            memory: Arc::new(memory),
            ram_mapping,
            details,
            cpu,
        })
    }

    /// The error for a QMP socket from QEMU's command line that could not be used: the
    /// socket, the reason, and how to go on without it.
    fn command_line_qmp_error(q: &QmpSocket, pid: u32, e: QemuError) -> QemuError {
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

    fn qmp_layout(q: &QmpSocket, ram: u64) -> Result<(MemoryMap, u64, Option<u64>), QemuError> {
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

    fn find_ram(
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
    fn map_direct(pid: u32, m: &MapInfo, writable: bool) -> Option<memmap2::MmapRaw> {
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

    /// The guest as listed.
    pub fn target(&self) -> &QemuTarget {
        &self.target
    }

    /// The guest-physical memory.
    pub fn memory(&self) -> Arc<QemuMemory> {
        self.memory.clone()
    }

    /// The guest-physical layout in force.
    pub fn map(&self) -> &MemoryMap {
        self.memory.map()
    }

    /// The QEMU process's mapping that holds the RAM block.
    pub fn ram_mapping(&self) -> &MapInfo {
        &self.ram_mapping
    }

    /// How the connection was made (layout source, access path, QMP), for `memlens info`.
    pub fn details(&self) -> &[(String, String)] {
        &self.details
    }

    fn need_qmp(&self, what: &str) -> Result<&QmpSocket, QemuError> {
        self.qmp.as_ref().ok_or_else(|| QemuError::NoQmp {
            pid: self.target.pid,
            needed_for: what.into(),
        })
    }

    /// Pauses the guest (QMP `stop`).
    pub fn pause(&self) -> Result<(), QemuError> {
        self.need_qmp("pause")?.execute("stop", None).map(drop)
    }

    /// Resumes the guest (QMP `cont`).
    pub fn resume(&self) -> Result<(), QemuError> {
        self.need_qmp("resume")?.execute("cont", None).map(drop)
    }

    /// Registers of every vCPU (monitor `info registers -a`), in vCPU order.
    pub fn registers(&self) -> Result<Vec<CpuRegisters>, QemuError> {
        let q = self.need_qmp("registers")?;
        let text = q.hmp("info registers -a")?;
        Ok(
            regs::parse_all(&text, self.target.cmdline.target == "aarch64")
                .into_iter()
                .map(|(_, r)| r)
                .collect(),
        )
    }

    /// The core target: memory, writer (when asked), registers (with QMP).
    pub fn physical_target(&self) -> PhysicalTarget {
        let memory: Arc<QemuMemory> = self.memory.clone();
        PhysicalTarget {
            writer: memory
                .is_writable()
                .then(|| memory.clone() as Arc<dyn memlens_core::PhysicalWrite>),
            memory,
            cpu: self.cpu.clone().map(|c| c as Arc<dyn CpuState>),
            info: TargetInfo {
                connector: "qemu".into(),
                format: "live".into(),
                version: None,
                vmcoreinfo: None,
                details: self.details.clone(),
            },
        }
    }
}

/// Opens the guest selected by `args` and returns its core target (the one-call form).
pub fn open(os: Arc<dyn Os>, args: &QemuArgs) -> Result<PhysicalTarget, QemuError> {
    Ok(QemuConnector::open(os, args)?.physical_target())
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

    #[test]
    fn gpa2hva_text() {
        assert_eq!(
            parse_gpa2hva("Host virtual address for 0x0 (pc.ram) is 0x7f9a2be00000\r\n"),
            Some(0x7f9a_2be0_0000)
        );
        assert_eq!(parse_gpa2hva("Error"), None);
    }
}

//! [`QemuConnector`]: finds a QEMU process through an [`Os`], locates its RAM block and
//! the guest-physical layout, and hands out a core [`PhysicalTarget`].
//!
//! **Key decision: discovery uses only the input OS** (`processes()`, then the chosen
//! process's `maps()` and `memory()`), so the same code works over the host (the native
//! plugin) or over a QEMU running *inside* another target (chains).
//!
//! Layout: [`args`] (the connector's options), [`discovery`] (listing guests and choosing
//! one), `qmp_setup` (the layout and RAM address asked from QMP), `ram` (finding and
//! mapping the RAM block); this file assembles the connection.

use std::sync::Arc;

use memlens_core::{CpuRegisters, CpuState, MapInfo, MemoryMap, Os, PhysicalTarget, TargetInfo};

use crate::error::QemuError;
use crate::layout;
use crate::memory::{Backend, QemuMemory, ResumeGuard};
use crate::qmp::QmpSocket;
use crate::regs;
use crate::vcpu::QmpCpu;

pub mod args;
pub mod discovery;
mod qmp_setup;
mod ram;

pub use args::QemuArgs;
pub use discovery::{list_targets, QemuTarget};

use discovery::select;

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

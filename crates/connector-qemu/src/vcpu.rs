//! vCPU registers through QMP. **Key decision: one `info registers -a` serves every vCPU
//! for a moment** ([`SNAPSHOT_TIME`]): the monitor prints all vCPUs at once, so fetching
//! it per vCPU would make reading the registers of N vCPUs cost N round trips of N blocks
//! of text (quadratic). Calls within the snapshot time reuse the last parsed reply, which
//! also makes the vCPUs of one listing a consistent snapshot; later calls fetch again (the
//! guest may be running).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memlens_core::{CpuRegisters, CpuState};

use crate::qmp::QmpSocket;
use crate::regs;

/// How long one `info registers -a` reply is reused.
pub const SNAPSHOT_TIME: Duration = Duration::from_millis(200);

type Snapshot = Arc<Vec<(usize, CpuRegisters)>>;

/// vCPU registers through QMP, fetched for all vCPUs at once (see the module docs).
#[derive(Debug)]
pub struct QmpCpu {
    qmp: QmpSocket,
    count: usize,
    aarch64: bool,
    last: Mutex<Option<(Instant, Snapshot)>>,
}

impl QmpCpu {
    /// The vCPUs of the guest behind `qmp`: `count` of them (at most
    /// [`crate::qmp::MAX_VCPUS`]), aarch64 or x86.
    pub fn new(qmp: QmpSocket, count: usize, aarch64: bool) -> Self {
        Self {
            qmp,
            count: count.min(crate::qmp::MAX_VCPUS),
            aarch64,
            last: Mutex::new(None),
        }
    }

    /// The registers of every vCPU, from the last reply if it is recent enough.
    fn snapshot(&self) -> memlens_core::Result<Snapshot> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, regs)) = last.as_ref() {
            if at.elapsed() < SNAPSHOT_TIME {
                return Ok(regs.clone());
            }
        }
        let text = self.qmp.hmp("info registers -a")?;
        let regs = Arc::new(regs::parse_all(&text, self.aarch64));
        *last = Some((Instant::now(), regs.clone()));
        Ok(regs)
    }
}

impl CpuState for QmpCpu {
    fn cpu_count(&self) -> usize {
        self.count
    }

    fn registers(&self, cpu: usize) -> memlens_core::Result<CpuRegisters> {
        self.snapshot()?
            .iter()
            .find(|(n, _)| *n == cpu)
            .map(|(_, r)| r.clone())
            .ok_or_else(|| {
                memlens_core::Error::Other(format!(
                    "QMP {}: no registers for vCPU {cpu} in `info registers -a` ({} vCPUs)",
                    self.qmp.path().display(),
                    self.count
                ))
            })
    }
}

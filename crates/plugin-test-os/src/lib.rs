//! `testos`: a test OS plugin, built as a `cdylib` for the memlens-plugin chain tests.
//! **Key decision: a trivial, documented on-memory format** so a test can lay out
//! processes in a buffer with its own code and check what comes back through two loaded
//! plugins.
//!
//! Format at physical address `table` (argument, default 0), little endian:
//! `"TESTOS01"`, `count: u32`, `reserved: u32`, then `count` entries of 48 bytes:
//! `pid: u32, ppid: u32, name: [u8; 16] (NUL-padded), base: u64, size: u64, reserved: u64`.
//! Process `pid`'s virtual memory maps `[0x400000, 0x400000 + size)` onto physical
//! `[base, base + size)`. At most 4096 entries are read.

use std::sync::Arc;

use memlens_core::mem::{MemoryMetadata, MemoryView, ReadOp};
use memlens_core::os::ModuleDetails;
use memlens_core::{
    Error, MapInfo, MemoryViewExt, ModuleInfo, Os, OsInfo, Perms, PhysAddr, PhysicalMemory,
    PhysicalTarget, Process, ProcessInfo, VirtAddr, VirtualMemory,
};
use memlens_plugin::{ArgDecl, ArgSpec, Args, BoxError, OsPlugin, TargetListing};

/// Virtual base of every test process.
pub const VBASE: u64 = 0x40_0000;
const MAGIC: &[u8; 8] = b"TESTOS01";

#[derive(Clone)]
struct Entry {
    info: ProcessInfo,
    base: u64,
    size: u64,
}

struct TestOs {
    target: PhysicalTarget,
    entries: Vec<Entry>,
}

fn parse_table(mem: &dyn PhysicalMemory, table: u64) -> memlens_core::Result<Vec<Entry>> {
    let mut head = [0u8; 16];
    mem.read_into(PhysAddr(table), &mut head)?;
    if &head[..8] != MAGIC {
        return Err(Error::Corrupt {
            location: format!("physical {table:#x}"),
            what: "no TESTOS01 table".into(),
        });
    }
    let count = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if count > 4096 {
        return Err(Error::Limit {
            what: "testos process table".into(),
            limit: 4096,
        });
    }
    let mut raw = vec![0u8; count as usize * 48];
    mem.read_into(PhysAddr(table + 16), &mut raw)?;
    let u32at = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64at = |b: &[u8], o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    Ok(raw
        .chunks_exact(48)
        .map(|e| {
            let name_end = e[8..24].iter().position(|&c| c == 0).unwrap_or(16);
            Entry {
                info: ProcessInfo {
                    pid: u32at(e, 0),
                    ppid: u32at(e, 4),
                    name: String::from_utf8_lossy(&e[8..8 + name_end]).into_owned(),
                    ..Default::default()
                },
                base: u64at(e, 24),
                size: u64at(e, 32),
            }
        })
        .collect())
}

/// A window of physical memory seen at `VBASE`.
struct Window {
    phys: Arc<dyn PhysicalMemory>,
    base: u64,
    size: u64,
}

impl MemoryView for Window {
    type Addr = VirtAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
        for op in ops {
            let off = op.addr.0.wrapping_sub(VBASE);
            let len = op.buf.len() as u64;
            if op.addr.0 < VBASE || off.checked_add(len).is_none_or(|e| e > self.size) {
                op.result = Err(Error::NotPresent {
                    va: op.addr,
                    root: PhysAddr(0),
                    level: 1,
                });
                continue;
            }
            op.result = self.phys.read_into(PhysAddr(self.base + off), op.buf);
        }
    }
    fn metadata(&self) -> MemoryMetadata<VirtAddr> {
        MemoryMetadata {
            max_addr: VirtAddr(VBASE + self.size.saturating_sub(1)),
            real_size: self.size,
            readonly: true,
            preferred_batch: 64,
        }
    }
}

struct TestProcess {
    info: ProcessInfo,
    mem: Arc<Window>,
}

impl Process for TestProcess {
    fn info(&self) -> &ProcessInfo {
        &self.info
    }
    fn memory(&self) -> Arc<dyn VirtualMemory> {
        self.mem.clone()
    }
    fn maps(&self) -> memlens_core::Result<Vec<MapInfo>> {
        Ok(vec![MapInfo {
            start: VirtAddr(VBASE),
            end: VirtAddr(VBASE + self.mem.size),
            perms: Perms {
                read: true,
                write: true,
                exec: false,
                shared: false,
            },
            offset: 0,
            path: Some("[heap]".into()),
        }])
    }
    fn modules(&self) -> memlens_core::Result<Vec<ModuleInfo>> {
        Ok(vec![ModuleInfo {
            name: self.info.name.clone(),
            base: VirtAddr(VBASE),
            size: self.mem.size,
            path: Some(format!("/bin/{}", self.info.name)),
        }])
    }
    fn module_details(&self, module: &ModuleInfo) -> memlens_core::Result<ModuleDetails> {
        Err(Error::Unsupported {
            what: format!("module details of {}", module.name),
        })
    }
}

impl Os for TestOs {
    fn info(&self) -> OsInfo {
        OsInfo {
            plugin: "testos".into(),
            release: Some("1.0-test".into()),
            arch: None,
            details: vec![("processes".into(), self.entries.len().to_string())],
        }
    }
    fn processes(&self) -> memlens_core::Result<Vec<ProcessInfo>> {
        Ok(self.entries.iter().map(|e| e.info.clone()).collect())
    }
    fn process(&self, pid: u32) -> memlens_core::Result<Arc<dyn Process>> {
        let e = self
            .entries
            .iter()
            .find(|e| e.info.pid == pid)
            .ok_or_else(|| Error::Other(format!("testos: no process {pid}")))?;
        Ok(Arc::new(TestProcess {
            info: e.info.clone(),
            mem: Arc::new(Window {
                phys: self.target.memory.clone(),
                base: e.base,
                size: e.size,
            }),
        }))
    }
    fn kernel_modules(&self) -> memlens_core::Result<Vec<ModuleInfo>> {
        Ok(Vec::new())
    }
    fn physical(&self) -> Option<PhysicalTarget> {
        Some(self.target.clone())
    }
}

/// The test OS plugin.
pub struct TestOsPlugin;

impl OsPlugin for TestOsPlugin {
    const NAME: &'static str = "testos";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "test OS reading a TESTOS01 process table";

    fn args() -> ArgSpec {
        ArgSpec::new()
            .arg(ArgDecl::number("table", "physical address of the table").default("0"))
            .arg(ArgDecl::flag("panic", "panic in create (tests)"))
    }

    /// One entry naming the table address it was given, so tests see the arguments
    /// reach an OS plugin's `targets` through the ABI.
    fn targets(args: &Args) -> Result<Vec<TargetListing>, BoxError> {
        let table = args.number("table")?.unwrap_or(0);
        Ok(vec![TargetListing {
            name: format!("table={table:#x}"),
            description: "a TESTOS01 process table (testos lists the one it was given)".into(),
        }])
    }

    fn create(args: &Args, input: Option<PhysicalTarget>) -> Result<Arc<dyn Os>, BoxError> {
        if args.flag("panic") {
            panic!("testos: panic was requested");
        }
        let target = input.ok_or("testos needs a connector")?;
        let table = args.number("table")?.unwrap_or(0);
        let entries = parse_table(&*target.memory, table)?;
        log::info!("testos: {} processes", entries.len());
        Ok(Arc::new(TestOs { target, entries }))
    }
}

memlens_plugin::export_os!(TESTOS = TestOsPlugin);

//! `testconn`: a test connector over an in-memory buffer, built as a `cdylib` so the
//! memlens-plugin tests and benches load a real shared library. **Key decision: its
//! contents are a documented pure function of the address** ([`pattern`]), so tests check
//! every byte read through the ABI against an independent computation.
//!
//! Arguments (see [`TestConn::args`]): `size` (default argument), `file` (load the buffer
//! from a file instead of the pattern), `writable`, and misbehaviour switches for tests:
//! `panic` / `fail` (in create), `panic_read` (in every read), `bad_entry` (every read
//! fails with a `BadEntry` whose reason names the address), `log` (emit one record per
//! level). Chained after an OS, the target is a pid and the connector exposes that
//! process's virtual memory as its "physical" memory.

use std::sync::{Arc, RwLock};

use memlens_core::cpu::X86Registers;
use memlens_core::mem::{MemoryMetadata, MemoryView, MemoryWrite, ReadOp, WriteOp};
use memlens_core::{
    CpuRegisters, CpuState, Error, Os, PhysAddr, PhysicalTarget, TargetInfo, VirtAddr,
    VirtualMemory,
};
use memlens_plugin::{ArgDecl, ArgSpec, Args, BoxError, ConnectorPlugin, InputKind, TargetListing};

/// The byte at physical address `addr` of a pattern-filled buffer.
pub fn pattern(addr: u64) -> u8 {
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// Read-only buffer memory: the fast path used by benches.
///
/// Its bytes start on a 64-byte boundary whatever the allocator returns: the speed of a
/// large `memcpy` out of it depends on the relative alignment of source and destination
/// (on the AMD EPYC bench machine a 4 KiB copy is ~17 ns slower when they differ modulo
/// 32), so without this two instances — the statically linked one and the one loaded
/// from the `.so` — would read at different speeds for a reason unrelated to the ABI.
pub struct BufMem {
    data: Arc<[u8]>,
    start: usize,
    len: usize,
}

impl BufMem {
    /// Alignment of the first byte.
    pub const ALIGN: usize = 64;

    /// A buffer of `size` pattern bytes.
    pub fn with_pattern(size: usize) -> Self {
        Self::from_bytes(&(0..size as u64).map(pattern).collect::<Vec<u8>>())
    }

    /// A copy of `bytes`, starting on an [`ALIGN`](Self::ALIGN)-byte boundary.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut data: Arc<[u8]> = vec![0u8; bytes.len() + Self::ALIGN - 1].into();
        let start = (Self::ALIGN - data.as_ptr() as usize % Self::ALIGN) % Self::ALIGN;
        if let Some(d) = Arc::get_mut(&mut data) {
            d[start..start + bytes.len()].copy_from_slice(bytes);
        }
        Self {
            data,
            start,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.start + self.len]
    }
}

fn read_into(data: &[u8], op: &mut ReadOp<'_, PhysAddr>) {
    let len = op.buf.len();
    let start = usize::try_from(op.addr.0).unwrap_or(usize::MAX);
    let max = PhysAddr(data.len().saturating_sub(1) as u64);
    match start.checked_add(len) {
        Some(end) if end <= data.len() => {
            op.buf.copy_from_slice(&data[start..end]);
            op.result = Ok(());
        }
        _ if start < data.len() => {
            let n = data.len() - start;
            op.buf[..n].copy_from_slice(&data[start..]);
            op.buf[n..].fill(0);
            op.result = Ok(());
            memlens_core::mem::record_failure(
                &mut op.result,
                len,
                n,
                len - n,
                Error::OutOfRange {
                    addr: PhysAddr(data.len() as u64),
                    len: len - n,
                    max,
                },
            );
        }
        _ => {
            op.buf.fill(0);
            op.result = Err(Error::OutOfRange {
                addr: op.addr,
                len,
                max,
            });
        }
    }
}

impl MemoryView for BufMem {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        let data = self.bytes();
        for op in ops {
            read_into(data, op);
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(self.len.saturating_sub(1) as u64),
            real_size: self.len as u64,
            readonly: true,
            preferred_batch: 256,
        }
    }
}

/// Writable buffer memory (behind a lock).
struct RwMem {
    data: RwLock<Vec<u8>>,
    panic_read: bool,
}

impl MemoryView for RwMem {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        if self.panic_read {
            panic!("testconn: panic_read was requested");
        }
        let Ok(d) = self.data.read() else {
            return;
        };
        for op in ops {
            read_into(&d, op);
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        let len = self.data.read().map(|d| d.len()).unwrap_or(0) as u64;
        MemoryMetadata {
            max_addr: PhysAddr(len.saturating_sub(1)),
            real_size: len,
            readonly: false,
            preferred_batch: 256,
        }
    }
}

impl MemoryWrite for RwMem {
    fn write_batch(&self, ops: &mut [WriteOp<'_, PhysAddr>]) {
        let Ok(mut d) = self.data.write() else {
            return;
        };
        let max = PhysAddr(d.len().saturating_sub(1) as u64);
        for op in ops {
            let start = usize::try_from(op.addr.0).unwrap_or(usize::MAX);
            match start.checked_add(op.buf.len()) {
                Some(end) if end <= d.len() => {
                    d[start..end].copy_from_slice(op.buf);
                    op.result = Ok(());
                }
                _ => {
                    op.result = Err(Error::OutOfRange {
                        addr: op.addr,
                        len: op.buf.len(),
                        max,
                    })
                }
            }
        }
    }
}

/// Memory whose every read fails with a page-table error carrying a reason made at run
/// time (`bad_entry`): checks that owned reasons cross the ABI intact.
struct BadEntryMem(u64);

impl MemoryView for BadEntryMem {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        for op in ops {
            op.buf.fill(0);
            op.result = Err(Error::BadEntry {
                va: VirtAddr(op.addr.0),
                root: PhysAddr(0x1000),
                level: 2,
                entry: op.addr.0 ^ 0xdead,
                why: format!("testconn: entry for {:#x} is bad", op.addr.0).into(),
            });
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(self.0.saturating_sub(1)),
            real_size: self.0,
            readonly: true,
            preferred_batch: 256,
        }
    }
}

/// A process's virtual memory presented as physical memory (chains).
struct ProcessAsPhys(Arc<dyn VirtualMemory>);

impl MemoryView for ProcessAsPhys {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        let mut v: Vec<ReadOp<'_, VirtAddr>> = ops
            .iter_mut()
            .map(|o| ReadOp::new(VirtAddr(o.addr.0), &mut *o.buf))
            .collect();
        self.0.read_batch(&mut v);
        let results: Vec<_> = v.into_iter().map(|o| o.result).collect();
        for (o, r) in ops.iter_mut().zip(results) {
            o.result = r;
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        let m = self.0.metadata();
        MemoryMetadata {
            max_addr: PhysAddr(m.max_addr.0),
            real_size: m.real_size,
            readonly: true,
            preferred_batch: m.preferred_batch,
        }
    }
}

/// One vCPU whose CR3 is 0x1000 (to test registers crossing the ABI).
struct OneCpu;

impl CpuState for OneCpu {
    fn cpu_count(&self) -> usize {
        1
    }
    fn registers(&self, cpu: usize) -> memlens_core::Result<CpuRegisters> {
        if cpu != 0 {
            return Err(Error::Other(format!("no vCPU {cpu}")));
        }
        Ok(CpuRegisters::X86(X86Registers {
            cr3: 0x1000,
            rip: 0xffff_ffff_8100_0000,
            ..Default::default()
        }))
    }
}

/// The test connector.
pub struct TestConn;

impl ConnectorPlugin for TestConn {
    const NAME: &'static str = "testconn";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "test connector over an in-memory buffer";
    const INPUT: InputKind = InputKind::Optional;

    fn args() -> ArgSpec {
        ArgSpec::new()
            .target("pid of a process of the input OS (chains only)", false)
            .arg(ArgDecl::size("size", "buffer size").default("1MiB"))
            .arg(ArgDecl::path("file", "load the buffer from this file"))
            .arg(ArgDecl::flag("writable", "accept writes"))
            .arg(ArgDecl::flag("panic", "panic in create (tests)"))
            .arg(ArgDecl::flag("fail", "return an error from create (tests)"))
            .arg(ArgDecl::flag("panic_read", "panic in every read (tests)"))
            .arg(ArgDecl::flag(
                "bad_entry",
                "fail every read with a page-table error naming the address (tests)",
            ))
            .arg(ArgDecl::flag(
                "log",
                "log one record per level in create (tests)",
            ))
            .default_arg("size")
    }

    fn targets(_args: &Args) -> Result<Vec<TargetListing>, BoxError> {
        Ok(vec![TargetListing {
            name: "(none)".into(),
            description: "an in-memory buffer; with an input OS, a pid".into(),
        }])
    }

    fn create(args: &Args, input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget, BoxError> {
        if args.flag("panic") {
            panic!("testconn: panic was requested");
        }
        if args.flag("fail") {
            return Err("testconn: failure was requested".into());
        }
        if args.flag("log") {
            log::error!(target: "testconn", "log record at error");
            log::warn!(target: "testconn", "log record at warn");
            log::info!(target: "testconn", "log record at info");
            log::debug!(target: "testconn", "log record at debug");
            log::trace!(target: "testconn", "log record at trace");
        }
        let mut info = TargetInfo {
            connector: Self::NAME.into(),
            format: "buffer".into(),
            vmcoreinfo: Some([("OSRELEASE".to_string(), "test".to_string())].into()),
            ..TargetInfo::default()
        };
        if let Some(os) = input {
            let pid: u32 = args
                .target()
                .ok_or("with an input OS, the target must be a pid")?
                .parse()
                .map_err(|e| format!("target is not a pid: {e}"))?;
            let p = os.process(pid)?;
            info.format = format!("process {pid} of {}", os.info().plugin);
            return Ok(PhysicalTarget::from_memory(
                Arc::new(ProcessAsPhys(p.memory())),
                info,
            ));
        }
        if let Some(t) = args.target() {
            return Err(format!("target '{t}' is only meaningful with an input OS").into());
        }
        let data: Vec<u8> = match args.get("file") {
            Some(f) => std::fs::read(f).map_err(|e| format!("{f}: {e}"))?,
            None => {
                let size = args.size("size")?.unwrap_or(1 << 20);
                if size > 1 << 32 {
                    return Err(format!("size {size} too large for a test buffer").into());
                }
                (0..size).map(pattern).collect()
            }
        };
        info.details.push(("size".into(), data.len().to_string()));
        if args.flag("bad_entry") {
            let m = Arc::new(BadEntryMem(data.len() as u64));
            return Ok(PhysicalTarget::from_memory(m, info));
        }
        let mut t = if args.flag("writable") || args.flag("panic_read") {
            let m = Arc::new(RwMem {
                data: RwLock::new(data),
                panic_read: args.flag("panic_read"),
            });
            let mut t = PhysicalTarget::from_memory(m.clone(), info);
            if args.flag("writable") {
                t.writer = Some(m);
            }
            t
        } else {
            PhysicalTarget::from_memory(Arc::new(BufMem::from_bytes(&data)), info)
        };
        t.cpu = Some(Arc::new(OneCpu));
        Ok(t)
    }
}

memlens_plugin::export_connector!(TESTCONN = TestConn);

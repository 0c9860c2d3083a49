//! Vtable → Rust adapters: owned `#[repr(C)]` objects become core trait objects
//! (`Arc<dyn PhysicalMemory>`, `Arc<dyn Os>`, …). **Key decision: every wrapper holds an
//! `Arc<Origin>`, which holds the library**, and releases its foreign object in `Drop`
//! *before* its fields (the library handle) are dropped — so a library is unloaded only
//! after the last object from it is gone, and no vtable ever dangles.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use memlens_core::mem::{MemRange, MemoryMetadata, MemoryView, MemoryWrite, ReadOp, WriteOp};
use memlens_core::os::ModuleDetails;
use memlens_core::{
    Address, CpuRegisters, CpuState, Error, MapInfo, ModuleInfo, Os, OsInfo, PhysAddr,
    PhysicalTarget, Process, ProcessInfo, TargetInfo, VirtAddr,
};
use serde::de::DeserializeOwned;

use super::reports::Reports;
use super::*;

/// Where imported objects come from: a loaded library (kept alive by this value) or the
/// host itself.
pub struct Origin {
    /// Plugin (or role) name, for messages.
    pub name: String,
    /// The file, when loaded from one.
    pub path: Option<PathBuf>,
    /// The library, kept loaded while this origin lives.
    pub(crate) _lib: Option<Arc<libloading::Library>>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

impl Origin {
    /// Objects handed over by the host (nothing to keep loaded).
    pub fn host(name: &str) -> Arc<Origin> {
        Arc::new(Origin {
            name: name.to_string(),
            path: None,
            _lib: None,
        })
    }
    /// Objects from the library `lib` loaded from `path`.
    pub fn library(name: &str, path: PathBuf, lib: Arc<libloading::Library>) -> Arc<Origin> {
        Arc::new(Origin {
            name: name.to_string(),
            path: Some(path),
            _lib: Some(lib),
        })
    }

    fn err(&self, during: &str, status: i32, msg: &[u8]) -> Error {
        let msg = String::from_utf8_lossy(msg);
        if status == STATUS_PANIC {
            Error::Other(format!(
                "plugin '{}' panicked in {during}: {msg}",
                self.name
            ))
        } else {
            Error::Other(format!("plugin '{}': {during}: {msg}", self.name))
        }
    }
}

/// Rebuilds a core error from its flattened form.
///
/// # Safety
/// The strings of `c` must be valid for the call.
pub(crate) unsafe fn decode_error(c: &CError) -> Error {
    // SAFETY: by the caller's guarantee.
    let (m1, m2) = unsafe {
        (
            c.msg.get().unwrap_or_default(),
            c.msg2.get().unwrap_or_default(),
        )
    };
    let level = u8::try_from(c.level).unwrap_or(u8::MAX);
    match c.code {
        errcode::OUT_OF_RANGE => Error::OutOfRange {
            addr: PhysAddr(c.a),
            len: usize::try_from(c.b).unwrap_or(usize::MAX),
            max: PhysAddr(c.c),
        },
        errcode::GAP => Error::Gap {
            addr: PhysAddr(c.a),
        },
        errcode::NOT_PRESENT => Error::NotPresent {
            va: VirtAddr(c.a),
            root: PhysAddr(c.b),
            level,
        },
        errcode::BAD_ENTRY => Error::BadEntry {
            va: VirtAddr(c.a),
            root: PhysAddr(c.b),
            level,
            entry: c.c,
            why: m1.into_owned().into(),
        },
        errcode::NON_CANONICAL => Error::NonCanonical {
            va: VirtAddr(c.a),
            arch: m1.into_owned().into(),
        },
        errcode::IO => Error::io(m1.into_owned(), c.a, std::io::Error::other(m2.into_owned())),
        errcode::READ_ONLY => Error::ReadOnly {
            what: m1.into_owned(),
        },
        errcode::UNSUPPORTED => Error::Unsupported {
            what: m1.into_owned(),
        },
        errcode::CORRUPT => Error::Corrupt {
            location: m1.into_owned(),
            what: m2.into_owned(),
        },
        errcode::LIMIT => Error::Limit {
            what: m1.into_owned(),
            limit: c.a,
        },
        _ => Error::Other(m1.into_owned()),
    }
}

/// Batches up to this many ops cross the portable path from a stack array.
const STACK_OPS: usize = 32;

/// The type of [`MemVtable::read_batch_native`].
type NativeRead = unsafe extern "C" fn(*const c_void, *mut c_void, usize, ErrReport) -> i32;

thread_local! {
    /// Reused op arrays (taken for a call and put back, so re-entrant calls just allocate).
    static SCRATCH: std::cell::Cell<Vec<CReadOp>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A memory object from a plugin (or the host), as a core memory view.
pub struct ImportedMemory<A> {
    obj: MemObj,
    origin: Arc<Origin>,
    _addr: PhantomData<fn() -> A>,
}

// SAFETY: exported memory objects wrap `Arc<dyn MemoryView>` values, which are
// `Send + Sync` by the core trait's bounds; the vtable functions take `&self` semantics.
unsafe impl<A> Send for ImportedMemory<A> {}
// SAFETY: the wrapped `Arc<dyn MemoryView>` is `Sync` by the core trait's bounds, and
// every vtable function takes the object by shared reference (reads and writes are
// `&self` on the exporting side), so calls from several threads at once are sound.
unsafe impl<A> Sync for ImportedMemory<A> {}

impl<A> Drop for ImportedMemory<A> {
    fn drop(&mut self) {
        // SAFETY: we own the object; released exactly once, before `origin` drops.
        unsafe { (self.obj.vt.drop)(self.obj.this) }
    }
}

impl<A: Address> ImportedMemory<A> {
    /// Wraps an owned memory object.
    ///
    /// # Safety
    /// `obj` must be a valid, owned memory object whose code stays loaded while `origin`
    /// lives.
    pub unsafe fn new(obj: MemObj, origin: Arc<Origin>) -> Self {
        Self {
            obj,
            origin,
            _addr: PhantomData,
        }
    }

    /// The in-place path: the plugin reads the caller's own `ReadOp`s. Kept small (no
    /// portable-path state in its frame): per call it adds one indirect call and one test
    /// of the status to the backend's own cost.
    fn read_native(&self, native: NativeRead, ops: &mut [ReadOp<'_, A>]) {
        if super::export::any_failed(ops) {
            for op in ops.iter_mut() {
                op.result = Ok(());
            }
        }
        let mut rep = Reports::for_reads(ops);
        // SAFETY: same Rust layout of `ReadOp<A>` on both sides (fingerprint); all outcomes
        // are `Ok`; failures come back through `rep` only.
        let st = unsafe { native(self.obj.this, rep.base, rep.n, rep.report()) };
        if st != STATUS_OK || rep.panic.is_some() {
            self.finish(st, &rep, "read_batch");
        }
    }

    /// The portable path: `#[repr(C)]` ops describing the same buffers. Up to
    /// [`STACK_OPS`] ops are converted on the stack, larger batches in a per-thread
    /// scratch vector, so no call allocates in the steady state.
    #[inline(never)]
    fn read_portable(&self, ops: &mut [ReadOp<'_, A>]) {
        let conv = |o: &mut ReadOp<'_, A>| {
            o.result = Ok(());
            CReadOp {
                addr: o.addr.to_u64(),
                buf: o.buf.as_mut_ptr(),
                len: o.buf.len(),
            }
        };
        let mut stack = [CReadOp {
            addr: 0,
            buf: std::ptr::null_mut(),
            len: 0,
        }; STACK_OPS];
        let mut many = Vec::new();
        let cops: &mut [CReadOp] = if ops.len() <= STACK_OPS {
            for (c, o) in stack.iter_mut().zip(ops.iter_mut()) {
                *c = conv(o);
            }
            &mut stack[..ops.len()]
        } else {
            many = SCRATCH.take();
            many.clear();
            many.extend(ops.iter_mut().map(conv));
            &mut many
        };
        let mut rep = Reports::for_reads(ops);
        // SAFETY: valid object; `cops` describes the ops' disjoint live buffers; `rep`
        // writes outcomes into `ops`, which outlive the call.
        let st = unsafe {
            (self.obj.vt.read_batch)(self.obj.this, cops.as_mut_ptr(), cops.len(), rep.report())
        };
        if st != STATUS_OK || rep.panic.is_some() {
            self.finish(st, &rep, "read_batch");
        }
        if many.capacity() > 0 && many.capacity() <= 1 << 16 {
            SCRATCH.set(many);
        }
    }

    #[cold]
    #[inline(never)]
    fn finish(&self, status: i32, reports: &Reports, during: &str) {
        if status == STATUS_OK && reports.panic.is_none() {
            return;
        }
        let msg = reports
            .panic
            .clone()
            .unwrap_or_else(|| format!("status {status}"));
        let e = self.origin.err(during, STATUS_PANIC, msg.as_bytes());
        for i in 0..reports.n {
            // SAFETY: `i` is in bounds; the ops are alive.
            unsafe { *(reports.slot)(reports.base, i) = Err(e.clone()) };
        }
    }
}

impl<A: Address> MemoryView for ImportedMemory<A> {
    type Addr = A;

    #[inline]
    fn read_batch(&self, ops: &mut [ReadOp<'_, A>]) {
        match self.obj.vt.read_batch_native {
            Some(native) if self.obj.vt.native_fingerprint == NATIVE_FINGERPRINT => {
                self.read_native(native, ops)
            }
            _ => self.read_portable(ops),
        }
    }

    fn metadata(&self) -> MemoryMetadata<A> {
        let mut m = CMetadata::default();
        // SAFETY: valid object; `m` writable.
        let st = unsafe { (self.obj.vt.metadata)(self.obj.this, &mut m) };
        if st != STATUS_OK {
            log::error!(
                "plugin '{}' failed in metadata (status {st})",
                self.origin.name
            );
            return MemoryMetadata {
                max_addr: A::from_u64(0),
                real_size: 0,
                readonly: true,
                preferred_batch: 1,
            };
        }
        MemoryMetadata {
            max_addr: A::from_u64(m.max_addr),
            real_size: m.real_size,
            readonly: m.readonly != 0,
            preferred_batch: usize::try_from(m.preferred_batch).unwrap_or(usize::MAX),
        }
    }

    fn ranges(&self) -> Vec<MemRange<A>> {
        unsafe extern "C" fn push<A: Address>(ctx: *mut c_void, base: u64, len: u64) {
            // SAFETY: `ctx` is the vector below, alive for the call.
            let v = unsafe { &mut *(ctx as *mut Vec<MemRange<A>>) };
            if v.len() < 1 << 24 {
                v.push(MemRange::new(A::from_u64(base), len));
            }
        }
        let mut v: Vec<MemRange<A>> = Vec::new();
        let sink = RangeSink {
            ctx: &mut v as *mut Vec<MemRange<A>> as *mut c_void,
            push: push::<A>,
        };
        // SAFETY: valid object and sink.
        let st = unsafe { (self.obj.vt.ranges)(self.obj.this, sink) };
        if st != STATUS_OK {
            log::error!(
                "plugin '{}' failed in ranges (status {st})",
                self.origin.name
            );
            return Vec::new();
        }
        v
    }
}

impl<A: Address> MemoryWrite for ImportedMemory<A> {
    fn write_batch(&self, ops: &mut [WriteOp<'_, A>]) {
        let Some(write) = self.obj.vt.write_batch else {
            for op in ops {
                op.result = Err(Error::ReadOnly {
                    what: format!("memory of plugin '{}'", self.origin.name),
                });
            }
            return;
        };
        let cops: Vec<CWriteOp> = ops
            .iter()
            .map(|o| CWriteOp {
                addr: o.addr.to_u64(),
                buf: o.buf.as_ptr(),
                len: o.buf.len(),
            })
            .collect();
        for op in ops.iter_mut() {
            op.result = Ok(());
        }
        let mut rep = Reports::for_writes(ops);
        // SAFETY: valid object; `cops` describes live buffers; outcomes go into `ops`.
        let st = unsafe { write(self.obj.this, cops.as_ptr(), cops.len(), rep.report()) };
        self.finish(st, &rep, "write_batch");
    }
}

/// CPU state from a plugin.
pub struct ImportedCpu {
    obj: CpuObj,
    origin: Arc<Origin>,
}

// SAFETY: wraps an `Arc<dyn CpuState>` (Send + Sync by the trait's bounds).
unsafe impl Send for ImportedCpu {}
// SAFETY: the wrapped `Arc<dyn CpuState>` is `Sync` by the trait's bounds and its vtable
// functions only take shared references.
unsafe impl Sync for ImportedCpu {}

impl Drop for ImportedCpu {
    fn drop(&mut self) {
        // SAFETY: owned; released once, before `origin`.
        unsafe { (self.obj.vt.drop)(self.obj.this) }
    }
}

impl CpuState for ImportedCpu {
    fn cpu_count(&self) -> usize {
        // SAFETY: valid object.
        let n = unsafe { (self.obj.vt.cpu_count)(self.obj.this) };
        n.min(super::reports::MAX_CPUS)
    }
    fn registers(&self, cpu: usize) -> memlens_core::Result<CpuRegisters> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // SAFETY: valid object and sinks.
        let st = unsafe {
            (self.obj.vt.registers)(
                self.obj.this,
                cpu,
                StrSink::to_vec(&mut out),
                StrSink::to_vec(&mut err),
            )
        };
        json_result(&self.origin, "registers", st, &out, &err)
    }
}

fn json_result<T: DeserializeOwned>(
    origin: &Origin,
    during: &str,
    status: i32,
    out: &[u8],
    err: &[u8],
) -> memlens_core::Result<T> {
    if status != STATUS_OK {
        return Err(origin.err(during, status, err));
    }
    super::check_sink(out, || {
        format!("result of {during} from plugin '{}'", origin.name)
    })?;
    serde_json::from_slice(out).map_err(|e| Error::Corrupt {
        location: format!("result of {during} from plugin '{}'", origin.name),
        what: e.to_string(),
    })
}

/// Wraps an owned physical target.
///
/// # Safety
/// `obj` must be a valid owned target whose code stays loaded while `origin` lives;
/// `info` valid for the call.
pub unsafe fn import_target(
    obj: PhysTargetObj,
    info: StrRef,
    origin: Arc<Origin>,
) -> Result<PhysicalTarget, String> {
    // Wrap everything first so every object is released on every path.
    // SAFETY: by the caller's guarantee.
    let memory = Arc::new(unsafe { ImportedMemory::<PhysAddr>::new(obj.memory, origin.clone()) });
    let writer = if obj.writer.this.is_null() {
        None
    } else {
        // SAFETY: the caller guarantees every object of `obj` is a live export of this
        // ABI; the writer is non-null here.
        Some(Arc::new(unsafe {
            ImportedMemory::<PhysAddr>::new(obj.writer, origin.clone())
        }))
    };
    let cpu = if obj.cpu.this.is_null() {
        None
    } else {
        Some(Arc::new(ImportedCpu {
            obj: obj.cpu,
            origin: origin.clone(),
        }))
    };
    // SAFETY: valid for the call.
    let info = unsafe { info.get() }.unwrap_or_default();
    let info: TargetInfo = serde_json::from_str(&info)
        .map_err(|e| format!("plugin '{}': bad TargetInfo JSON: {e}", origin.name))?;
    Ok(PhysicalTarget {
        memory,
        writer: writer.map(|w| w as _),
        cpu: cpu.map(|c| c as _),
        info,
    })
}

/// A process from a plugin.
pub struct ImportedProcess {
    obj: ProcObj,
    origin: Arc<Origin>,
    info: ProcessInfo,
    memory: Arc<dyn memlens_core::VirtualMemory>,
}

// SAFETY: wraps an `Arc<dyn Process>` (Send + Sync by the trait's bounds).
unsafe impl Send for ImportedProcess {}
// SAFETY: the wrapped `Arc<dyn Process>` is `Sync` by the trait's bounds, its vtable
// functions only take shared references, and `info`/`memory` are `Sync` Rust values.
unsafe impl Sync for ImportedProcess {}

impl Drop for ImportedProcess {
    fn drop(&mut self) {
        // SAFETY: owned; released once, before `origin`.
        unsafe { (self.obj.vt.drop)(self.obj.this) }
    }
}

macro_rules! json_call {
    ($self:ident, $f:ident, $during:literal $(, $arg:expr)*) => {{
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // SAFETY: valid object and sinks.
        let st = unsafe {
            ($self.obj.vt.$f)($self.obj.this $(, $arg)*, StrSink::to_vec(&mut out), StrSink::to_vec(&mut err))
        };
        json_result(&$self.origin, $during, st, &out, &err)
    }};
}

impl Process for ImportedProcess {
    fn info(&self) -> &ProcessInfo {
        &self.info
    }
    fn memory(&self) -> Arc<dyn memlens_core::VirtualMemory> {
        self.memory.clone()
    }
    fn writer(&self) -> Option<Arc<dyn memlens_core::VirtualWrite>> {
        let mut out = MemObj::ABSENT;
        let mut err = Vec::new();
        // SAFETY: valid object; `out` writable.
        let st =
            unsafe { (self.obj.vt.writer)(self.obj.this, &mut out, StrSink::to_vec(&mut err)) };
        if st != STATUS_OK || out.this.is_null() {
            return None;
        }
        // SAFETY: a valid owned object from the same origin.
        Some(Arc::new(unsafe {
            ImportedMemory::<VirtAddr>::new(out, self.origin.clone())
        }))
    }
    fn maps(&self) -> memlens_core::Result<Vec<MapInfo>> {
        json_call!(self, maps, "maps")
    }
    fn modules(&self) -> memlens_core::Result<Vec<ModuleInfo>> {
        json_call!(self, modules, "modules")
    }
    fn module_details(&self, module: &ModuleInfo) -> memlens_core::Result<ModuleDetails> {
        let m = serde_json::to_string(module).map_err(|e| Error::Other(e.to_string()))?;
        json_call!(self, module_details, "module_details", StrRef::new(&m))
    }
}

/// An OS from a plugin.
pub struct ImportedOs {
    obj: OsObj,
    origin: Arc<Origin>,
}

// SAFETY: wraps an `Arc<dyn Os>` (Send + Sync by the trait's bounds).
unsafe impl Send for ImportedOs {}
// SAFETY: the wrapped `Arc<dyn Os>` is `Sync` by the trait's bounds and its vtable
// functions only take shared references.
unsafe impl Sync for ImportedOs {}

impl Drop for ImportedOs {
    fn drop(&mut self) {
        // SAFETY: owned; released once, before `origin`.
        unsafe { (self.obj.vt.drop)(self.obj.this) }
    }
}

/// Wraps an owned OS object.
///
/// # Safety
/// `obj` must be a valid owned OS object whose code stays loaded while `origin` lives.
pub unsafe fn import_os(obj: OsObj, origin: Arc<Origin>) -> Arc<dyn Os> {
    Arc::new(ImportedOs { obj, origin })
}

impl Os for ImportedOs {
    fn info(&self) -> OsInfo {
        json_call!(self, info, "info").unwrap_or_else(|e| {
            log::error!("{e}");
            OsInfo {
                plugin: self.origin.name.clone(),
                ..OsInfo::default()
            }
        })
    }
    fn processes(&self) -> memlens_core::Result<Vec<ProcessInfo>> {
        json_call!(self, processes, "processes")
    }
    fn process(&self, pid: u32) -> memlens_core::Result<Arc<dyn Process>> {
        let mut out = ProcObj {
            this: std::ptr::null_mut(),
            vt: ProcVtable {
                drop: noop,
                info: none_json,
                memory: none_mem,
                writer: none_mem,
                maps: none_json,
                modules: none_json,
                module_details: none_details,
            },
        };
        let mut err = Vec::new();
        // SAFETY: valid object; `out` writable.
        let st = unsafe {
            (self.obj.vt.process)(self.obj.this, pid, &mut out, StrSink::to_vec(&mut err))
        };
        if st != STATUS_OK || out.this.is_null() {
            return Err(self.origin.err("process", st, &err));
        }
        let mut p = ImportedProcess {
            obj: out,
            origin: self.origin.clone(),
            info: ProcessInfo::default(),
            memory: Arc::new(EmptyVirt),
        };
        p.info = json_call!(p, info, "process info")?;
        let mut m = MemObj::ABSENT;
        let mut err = Vec::new();
        // SAFETY: valid object; `m` writable.
        let st = unsafe { (p.obj.vt.memory)(p.obj.this, &mut m, StrSink::to_vec(&mut err)) };
        if st != STATUS_OK || m.this.is_null() {
            return Err(self.origin.err("process memory", st, &err));
        }
        // SAFETY: a valid owned object from the same origin.
        p.memory = Arc::new(unsafe { ImportedMemory::<VirtAddr>::new(m, self.origin.clone()) });
        Ok(Arc::new(p))
    }
    fn kernel_modules(&self) -> memlens_core::Result<Vec<ModuleInfo>> {
        json_call!(self, kernel_modules, "kernel_modules")
    }
    fn kernel_memory(&self) -> Option<Arc<dyn memlens_core::VirtualMemory>> {
        let mut m = MemObj::ABSENT;
        let mut err = Vec::new();
        // SAFETY: valid object; `m` writable.
        let st = unsafe {
            (self.obj.vt.kernel_memory)(self.obj.this, &mut m, StrSink::to_vec(&mut err))
        };
        if st != STATUS_OK || m.this.is_null() {
            if st != STATUS_NONE {
                log::error!("{}", self.origin.err("kernel_memory", st, &err));
            }
            return None;
        }
        // SAFETY: a valid owned object from the same origin.
        Some(Arc::new(unsafe {
            ImportedMemory::<VirtAddr>::new(m, self.origin.clone())
        }))
    }
    fn physical(&self) -> Option<PhysicalTarget> {
        let mut t = PhysTargetObj {
            memory: MemObj::ABSENT,
            writer: MemObj::ABSENT,
            cpu: CpuObj::ABSENT,
        };
        let (mut info, mut err) = (Vec::new(), Vec::new());
        // SAFETY: valid object; `t` writable; sinks valid.
        let st = unsafe {
            (self.obj.vt.physical)(
                self.obj.this,
                &mut t,
                StrSink::to_vec(&mut info),
                StrSink::to_vec(&mut err),
            )
        };
        if st != STATUS_OK || t.memory.this.is_null() {
            if st != STATUS_NONE {
                log::error!("{}", self.origin.err("physical", st, &err));
            }
            return None;
        }
        let info = String::from_utf8_lossy(&info).into_owned();
        // SAFETY: a valid owned target from the same origin; `info` lives for the call.
        match unsafe { import_target(t, StrRef::new(&info), self.origin.clone()) } {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("{e}");
                None
            }
        }
    }
}

/// Placeholder memory used only while an imported process is being assembled.
struct EmptyVirt;
impl MemoryView for EmptyVirt {
    type Addr = VirtAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
        for op in ops {
            op.result = Err(Error::Unsupported {
                what: "memory of a process that failed to open".into(),
            });
        }
    }
    fn metadata(&self) -> MemoryMetadata<VirtAddr> {
        MemoryMetadata {
            max_addr: VirtAddr(0),
            real_size: 0,
            readonly: true,
            preferred_batch: 1,
        }
    }
}

unsafe extern "C" fn noop(_: *mut c_void) {}
unsafe extern "C" fn none_json(_: *const c_void, _: StrSink, _: StrSink) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn none_mem(_: *const c_void, _: *mut MemObj, _: StrSink) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn none_details(_: *const c_void, _: StrRef, _: StrSink, _: StrSink) -> i32 {
    STATUS_NONE
}

//! Rust → vtable adapters. Each `export_*` boxes an `Arc` of a core trait object and
//! returns an owned `#[repr(C)]` object whose functions are monomorphic `extern "C"`
//! trampolines. **Every trampoline runs under `catch_unwind`**: a panic becomes
//! `STATUS_PANIC` (or, for reads, a failed outcome on every op) and never unwinds into
//! foreign frames.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use memlens_core::mem::{MemoryView, MemoryWrite, ReadOp, WriteOp};
use memlens_core::{Address, CpuState, Error, Os, PhysAddr, PhysicalTarget, Process, VirtAddr};
use serde::Serialize;

use super::import::{self, Origin};
use super::*;
use crate::args::Args;
use crate::traits::{ConnectorPlugin, InputKind, OsPlugin};

/// Runs `f`, turning an error into `STATUS_ERROR` + message and a panic into
/// `STATUS_PANIC` + message on `err`.
pub(crate) fn guard(err: Option<StrSink>, f: impl FnOnce() -> Result<i32, String>) -> i32 {
    let (status, msg) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(s)) => return s,
        Ok(Err(m)) => (STATUS_ERROR, m),
        Err(p) => (STATUS_PANIC, panic_message(&*p)),
    };
    if let Some(e) = err {
        // SAFETY: sinks handed to us are valid for the call.
        unsafe { e.put(&msg) };
    }
    status
}

fn put_json<T: Serialize + ?Sized>(out: StrSink, v: &T) -> Result<i32, String> {
    let s = serde_json::to_string(v).map_err(|e| format!("serialising result: {e}"))?;
    // SAFETY: sinks handed to us are valid for the call.
    unsafe { out.put(&s) };
    Ok(STATUS_OK)
}

/// Calls `f` with the flattened form of `e` (strings borrowed for the call).
pub(crate) fn with_cerror<R>(e: &Error, f: impl FnOnce(&CError) -> R) -> R {
    let mut c = CError {
        code: errcode::OTHER,
        level: 0,
        a: 0,
        b: 0,
        c: 0,
        msg: StrRef::NONE,
        msg2: StrRef::NONE,
    };
    let owned: (String, String);
    match e {
        Error::OutOfRange { addr, len, max } => {
            c.code = errcode::OUT_OF_RANGE;
            (c.a, c.b, c.c) = (addr.0, *len as u64, max.0);
        }
        Error::Gap { addr } => {
            c.code = errcode::GAP;
            c.a = addr.0;
        }
        Error::NotPresent { va, root, level } => {
            c.code = errcode::NOT_PRESENT;
            (c.a, c.b, c.level) = (va.0, root.0, u32::from(*level));
        }
        Error::BadEntry {
            va,
            root,
            level,
            entry,
            why,
        } => {
            c.code = errcode::BAD_ENTRY;
            (c.a, c.b, c.c, c.level) = (va.0, root.0, *entry, u32::from(*level));
            c.msg = StrRef::new(why);
        }
        Error::NonCanonical { va, arch } => {
            c.code = errcode::NON_CANONICAL;
            c.a = va.0;
            c.msg = StrRef::new(arch);
        }
        Error::Io {
            path,
            offset,
            source,
        } => {
            c.code = errcode::IO;
            c.a = *offset;
            owned = (path.display().to_string(), source.to_string());
            c.msg = StrRef::new(&owned.0);
            c.msg2 = StrRef::new(&owned.1);
            return f(&c);
        }
        Error::ReadOnly { what } => {
            c.code = errcode::READ_ONLY;
            c.msg = StrRef::new(what);
        }
        Error::Unsupported { what } => {
            c.code = errcode::UNSUPPORTED;
            c.msg = StrRef::new(what);
        }
        Error::Corrupt { location, what } => {
            c.code = errcode::CORRUPT;
            c.msg = StrRef::new(location);
            c.msg2 = StrRef::new(what);
        }
        Error::Limit { what, limit } => {
            c.code = errcode::LIMIT;
            c.msg = StrRef::new(what);
            c.a = *limit;
        }
        other => {
            owned = (other.to_string(), String::new());
            c.msg = StrRef::new(&owned.0);
            return f(&c);
        }
    }
    f(&c)
}

/// Reports the failed outcomes of `results` (one per op, in order).
fn report_results<'r>(
    results: impl Iterator<Item = &'r Result<(), Error>>,
    report: ErrReport,
    first: usize,
) {
    for (i, r) in results.enumerate() {
        let i = first + i;
        match r {
            Ok(()) => {}
            Err(Error::Partial { total, failed }) => {
                for span in failed {
                    with_cerror(&span.cause, |c| {
                        // SAFETY: the report callback is valid for the call.
                        unsafe { (report.report)(report.ctx, i, c, span.offset, span.len, *total) }
                    });
                }
            }
            Err(e) => with_cerror(e, |c| {
                // SAFETY: as above.
                unsafe { (report.report)(report.ctx, i, c, 0, 0, 0) }
            }),
        }
    }
}

/// Reports a panic message for the whole batch (index `usize::MAX`).
fn report_panic(report: ErrReport, msg: &str) {
    let c = CError {
        code: errcode::OTHER,
        level: 0,
        a: 0,
        b: 0,
        c: 0,
        msg: StrRef::new(msg),
        msg2: StrRef::NONE,
    };
    // SAFETY: the report callback is valid for the call.
    unsafe { (report.report)(report.ctx, usize::MAX, &c, 0, 0, 0) }
}

/// # Safety
/// `c.buf` must point to `c.len` writable bytes not aliased by any other op.
unsafe fn buf_mut<'a>(c: &CReadOp) -> &'a mut [u8] {
    if c.len == 0 || c.buf.is_null() {
        return &mut [];
    }
    // SAFETY: by the caller's guarantee.
    unsafe { std::slice::from_raw_parts_mut(c.buf, c.len) }
}

/// # Safety
/// `c.buf` must point to `c.len` readable bytes.
unsafe fn buf_ref<'a>(c: &CWriteOp) -> &'a [u8] {
    if c.len == 0 || c.buf.is_null() {
        return &[];
    }
    // SAFETY: by the caller's guarantee.
    unsafe { std::slice::from_raw_parts(c.buf, c.len) }
}

thread_local! {
    // Reused op vectors per address type (always empty while stored; taken for a call and
    // put back, so a re-entrant call simply allocates).
    static PHYS_OPS: std::cell::Cell<Vec<ReadOp<'static, PhysAddr>>> =
        const { std::cell::Cell::new(Vec::new()) };
    static VIRT_OPS: std::cell::Cell<Vec<ReadOp<'static, VirtAddr>>> =
        const { std::cell::Cell::new(Vec::new()) };
}

/// Reinterprets an *empty* vector of ops as another lifetime/address type.
///
/// # Safety
/// `X` and `Y` must be the same type (checked by `TypeId` in the callers) and `v` empty,
/// so only the allocation changes hands and no value of the erased lifetime exists.
unsafe fn recast<'x, 'y, X, Y>(v: Vec<ReadOp<'x, X>>) -> Vec<ReadOp<'y, Y>> {
    let mut v = std::mem::ManuallyDrop::new(v);
    let cap = v.capacity();
    // SAFETY: same type and layout (caller), length 0, capacity from the same allocation.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut ReadOp<'y, Y>, 0, cap) }
}

fn take_ops<'a, A: Address>() -> Vec<ReadOp<'a, A>> {
    use std::any::TypeId;
    let t = TypeId::of::<A>();
    if t == TypeId::of::<PhysAddr>() {
        // SAFETY: A is PhysAddr; stored vectors are empty.
        unsafe { recast(PHYS_OPS.take()) }
    } else if t == TypeId::of::<VirtAddr>() {
        // SAFETY: A is VirtAddr; stored vectors are empty.
        unsafe { recast(VIRT_OPS.take()) }
    } else {
        Vec::new()
    }
}

fn give_ops<A: Address>(mut v: Vec<ReadOp<'_, A>>) {
    use std::any::TypeId;
    v.clear();
    if v.capacity() == 0 || v.capacity() > 1 << 16 {
        return;
    }
    let t = TypeId::of::<A>();
    if t == TypeId::of::<PhysAddr>() {
        // SAFETY: A is PhysAddr; `v` is empty.
        PHYS_OPS.set(unsafe { recast(v) });
    } else if t == TypeId::of::<VirtAddr>() {
        // SAFETY: A is VirtAddr; `v` is empty.
        VIRT_OPS.set(unsafe { recast(v) });
    }
}

/// The `drop` of every exported object: each is a `Box<Arc<T>>` turned into a pointer.
unsafe extern "C" fn arc_drop<T: ?Sized>(this: *mut c_void) {
    if this.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `this` came from `Box::into_raw(Box<Arc<T>>)` in an `export_*` function
        // and is dropped exactly once by the owner.
        drop(unsafe { Box::from_raw(this as *mut Arc<T>) })
    }));
}

/// The status of a memory call: OK, or a panic reported through `report`.
fn status(r: std::thread::Result<()>, report: ErrReport) -> i32 {
    match r {
        Ok(()) => STATUS_OK,
        Err(p) => {
            report_panic(report, &panic_message(&*p));
            STATUS_PANIC
        }
    }
}

/// The object behind `this`, for the calls of an exported object's vtable.
fn arc_ref<'a, T: ?Sized>(this: *const c_void) -> &'a Arc<T> {
    // SAFETY: callers pass the live box created by the matching `export_*` function.
    unsafe { &*(this as *const Arc<T>) }
}

unsafe extern "C" fn mem_read<M: MemoryView + ?Sized>(
    this: *const c_void,
    ops: *mut CReadOp,
    n: usize,
    report: ErrReport,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let m = arc_ref::<M>(this);
        if n == 0 || ops.is_null() {
            return;
        }
        // SAFETY: the caller passes `n` ops with disjoint, writable buffers.
        let cops = unsafe { std::slice::from_raw_parts(ops, n) };
        let addr = <M::Addr as Address>::from_u64;
        if n == 1 {
            // SAFETY: see above.
            let mut one = [ReadOp::new(addr(cops[0].addr), unsafe {
                buf_mut(&cops[0])
            })];
            m.read_batch(&mut one);
            report_results(one.iter().map(|o| &o.result), report, 0);
        } else {
            let mut v: Vec<ReadOp<'_, M::Addr>> = take_ops();
            v.extend(
                cops.iter()
                    // SAFETY: see above.
                    .map(|c| ReadOp::new(addr(c.addr), unsafe { buf_mut(c) })),
            );
            m.read_batch(&mut v);
            report_results(v.iter().map(|o| &o.result), report, 0);
            give_ops(v);
        }
    }));
    status(r, report)
}

unsafe extern "C" fn mem_read_native<M: MemoryView + ?Sized>(
    this: *const c_void,
    ops: *mut c_void,
    n: usize,
    report: ErrReport,
) -> i32 {
    if n == 0 || ops.is_null() {
        return STATUS_OK;
    }
    // SAFETY: the caller checked that its `ReadOp<A>` layout is ours (native fingerprint)
    // and passes `n` ops with disjoint live buffers and `Ok` outcomes.
    let ops = unsafe { std::slice::from_raw_parts_mut(ops as *mut ReadOp<'_, M::Addr>, n) };
    let r = catch_unwind(AssertUnwindSafe(|| {
        let m = arc_ref::<M>(this);
        m.read_batch(ops);
    }));
    // The hot path is this one test; anything to report goes out of line.
    if r.is_ok() && !any_failed(ops) {
        return STATUS_OK;
    }
    native_failures(ops, r, report)
}

/// Whether any op failed: a branch-free OR over the outcomes (no early exit), which the
/// compiler unrolls — a batch is scanned at a fraction of a cycle per op instead of one
/// compare-and-branch per op.
#[inline]
pub(crate) fn any_failed<A>(ops: &[ReadOp<'_, A>]) -> bool {
    ops.iter().fold(false, |acc, op| acc | op.result.is_err())
}

/// The slow end of [`mem_read_native`]: takes every failure out of the caller's ops (it is
/// dropped here, with our allocator), also after a panic so no value of ours is left
/// behind, and reports them after the last use of `ops` (the caller writes its own
/// outcomes into them).
#[cold]
#[inline(never)]
fn native_failures<A: Address>(
    ops: &mut [ReadOp<'_, A>],
    r: std::thread::Result<()>,
    report: ErrReport,
) -> i32 {
    let failed: Vec<(usize, Result<(), Error>)> = ops
        .iter_mut()
        .enumerate()
        .filter(|(_, op)| op.result.is_err())
        .map(|(i, op)| (i, std::mem::replace(&mut op.result, Ok(()))))
        .collect();
    for (i, res) in &failed {
        report_results(std::iter::once(res), report, *i);
    }
    status(r, report)
}

unsafe extern "C" fn mem_write<M: MemoryWrite + ?Sized>(
    this: *const c_void,
    ops: *const CWriteOp,
    n: usize,
    report: ErrReport,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let m = arc_ref::<M>(this);
        if n == 0 || ops.is_null() {
            return;
        }
        // SAFETY: the caller passes `n` ops with readable buffers.
        let cops = unsafe { std::slice::from_raw_parts(ops, n) };
        let mut v: Vec<WriteOp<'_, M::Addr>> = cops
            .iter()
            // SAFETY: see above.
            .map(|c| WriteOp::new(M::Addr::from_u64(c.addr), unsafe { buf_ref(c) }))
            .collect();
        m.write_batch(&mut v);
        report_results(v.iter().map(|o| &o.result), report, 0);
    }));
    status(r, report)
}

unsafe extern "C" fn mem_metadata<M: MemoryView + ?Sized>(
    this: *const c_void,
    out: *mut CMetadata,
) -> i32 {
    guard(None, || {
        // SAFETY: `this` is the live `Box<Arc<M>>`; `out` is writable.
        let (m, out) = unsafe { (&*(this as *const Arc<M>), &mut *out) };
        let md = m.metadata();
        *out = CMetadata {
            max_addr: md.max_addr.to_u64(),
            real_size: md.real_size,
            preferred_batch: md.preferred_batch as u64,
            readonly: u32::from(md.readonly),
            reserved: 0,
        };
        Ok(STATUS_OK)
    })
}

unsafe extern "C" fn mem_ranges<M: MemoryView + ?Sized>(
    this: *const c_void,
    out: RangeSink,
) -> i32 {
    guard(None, || {
        // SAFETY: `this` is the live `Box<Arc<M>>`.
        let m = unsafe { &*(this as *const Arc<M>) };
        for r in m.ranges() {
            // SAFETY: the sink is valid for the call.
            unsafe { (out.push)(out.ctx, r.base.to_u64(), r.len) };
        }
        Ok(STATUS_OK)
    })
}

/// Exports a read-only memory view.
pub fn export_memory<M: MemoryView + ?Sized + 'static>(m: Arc<M>) -> MemObj {
    MemObj {
        this: Box::into_raw(Box::new(m)) as *mut c_void,
        vt: MemVtable {
            drop: arc_drop::<M>,
            read_batch: mem_read::<M>,
            write_batch: None,
            metadata: mem_metadata::<M>,
            ranges: mem_ranges::<M>,
            native_fingerprint: NATIVE_FINGERPRINT,
            read_batch_native: Some(mem_read_native::<M>),
        },
    }
}

/// Exports a writable memory view (reads work too).
pub fn export_writer<M: MemoryWrite + ?Sized + 'static>(m: Arc<M>) -> MemObj {
    let mut o = export_memory(m);
    o.vt.write_batch = Some(mem_write::<M>);
    o
}

unsafe extern "C" fn noop_drop(_: *mut c_void) {}
unsafe extern "C" fn none_read(_: *const c_void, _: *mut CReadOp, _: usize, _: ErrReport) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn none_md(_: *const c_void, _: *mut CMetadata) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn none_ranges(_: *const c_void, _: RangeSink) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn none_count(_: *const c_void) -> usize {
    0
}
unsafe extern "C" fn none_regs(_: *const c_void, _: usize, _: StrSink, _: StrSink) -> i32 {
    STATUS_NONE
}

impl MemObj {
    /// An absent object (`this` null, inert functions).
    pub const ABSENT: MemObj = MemObj {
        this: std::ptr::null_mut(),
        vt: MemVtable {
            drop: noop_drop,
            read_batch: none_read,
            write_batch: None,
            metadata: none_md,
            ranges: none_ranges,
            native_fingerprint: 0,
            read_batch_native: None,
        },
    };
}

impl CpuObj {
    /// An absent object.
    pub const ABSENT: CpuObj = CpuObj {
        this: std::ptr::null_mut(),
        vt: CpuVtable {
            drop: noop_drop,
            cpu_count: none_count,
            registers: none_regs,
        },
    };
}

unsafe extern "C" fn cpu_count(this: *const c_void) -> usize {
    catch_unwind(AssertUnwindSafe(|| {
        arc_ref::<dyn CpuState>(this).cpu_count()
    }))
    .unwrap_or(0)
}

unsafe extern "C" fn cpu_registers(
    this: *const c_void,
    cpu: usize,
    out: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        let regs = arc_ref::<dyn CpuState>(this)
            .registers(cpu)
            .map_err(|e| e.to_string())?;
        put_json(out, &regs)
    })
}

/// Exports CPU state.
pub fn export_cpu(c: Arc<dyn CpuState>) -> CpuObj {
    CpuObj {
        this: Box::into_raw(Box::new(c)) as *mut c_void,
        vt: CpuVtable {
            drop: arc_drop::<dyn CpuState>,
            cpu_count,
            registers: cpu_registers,
        },
    }
}

/// Exports a physical target: the object and its `TargetInfo` as JSON.
pub fn export_target(t: PhysicalTarget) -> Result<(PhysTargetObj, String), String> {
    let info =
        serde_json::to_string(&t.info).map_err(|e| format!("serialising TargetInfo: {e}"))?;
    Ok((
        PhysTargetObj {
            memory: export_memory(t.memory),
            writer: t.writer.map_or(MemObj::ABSENT, export_writer),
            cpu: t.cpu.map_or(CpuObj::ABSENT, export_cpu),
        },
        info,
    ))
}

// ---- processes ----

unsafe extern "C" fn proc_info(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(out, arc_ref::<dyn Process>(this).info())
    })
}
unsafe extern "C" fn proc_memory(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32 {
    guard(Some(err), || {
        let m = export_memory(arc_ref::<dyn Process>(this).memory());
        // SAFETY: `out` is writable.
        unsafe { *out = m };
        Ok(STATUS_OK)
    })
}
unsafe extern "C" fn proc_writer(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32 {
    guard(Some(err), || match arc_ref::<dyn Process>(this).writer() {
        Some(w) => {
            // SAFETY: `out` is writable.
            unsafe { *out = export_writer(w) };
            Ok(STATUS_OK)
        }
        None => Ok(STATUS_NONE),
    })
}
unsafe extern "C" fn proc_maps(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(
            out,
            &arc_ref::<dyn Process>(this)
                .maps()
                .map_err(|e| e.to_string())?,
        )
    })
}
unsafe extern "C" fn proc_modules(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(
            out,
            &arc_ref::<dyn Process>(this)
                .modules()
                .map_err(|e| e.to_string())?,
        )
    })
}
unsafe extern "C" fn proc_module_details(
    this: *const c_void,
    module: StrRef,
    out: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // SAFETY: `module` is valid for the call.
        let json = unsafe { module.get() }.ok_or("no module given")?;
        let m: memlens_core::ModuleInfo =
            serde_json::from_str(&json).map_err(|e| format!("bad ModuleInfo JSON: {e}"))?;
        put_json(
            out,
            &arc_ref::<dyn Process>(this)
                .module_details(&m)
                .map_err(|e| e.to_string())?,
        )
    })
}

/// Exports a process.
pub fn export_process(p: Arc<dyn Process>) -> ProcObj {
    ProcObj {
        this: Box::into_raw(Box::new(p)) as *mut c_void,
        vt: ProcVtable {
            drop: arc_drop::<dyn Process>,
            info: proc_info,
            memory: proc_memory,
            writer: proc_writer,
            maps: proc_maps,
            modules: proc_modules,
            module_details: proc_module_details,
        },
    }
}

// ---- OS ----

unsafe extern "C" fn os_info(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || put_json(out, &arc_ref::<dyn Os>(this).info()))
}
unsafe extern "C" fn os_processes(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(
            out,
            &arc_ref::<dyn Os>(this)
                .processes()
                .map_err(|e| e.to_string())?,
        )
    })
}
unsafe extern "C" fn os_process(
    this: *const c_void,
    pid: u32,
    out: *mut ProcObj,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        let p = arc_ref::<dyn Os>(this)
            .process(pid)
            .map_err(|e| e.to_string())?;
        // SAFETY: `out` is writable.
        unsafe { *out = export_process(p) };
        Ok(STATUS_OK)
    })
}
unsafe extern "C" fn os_kernel_modules(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(
            out,
            &arc_ref::<dyn Os>(this)
                .kernel_modules()
                .map_err(|e| e.to_string())?,
        )
    })
}
unsafe extern "C" fn os_kernel_memory(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32 {
    guard(Some(err), || {
        match arc_ref::<dyn Os>(this).kernel_memory() {
            Some(m) => {
                // SAFETY: `out` is writable.
                unsafe { *out = export_memory(m) };
                Ok(STATUS_OK)
            }
            None => Ok(STATUS_NONE),
        }
    })
}
unsafe extern "C" fn os_physical(
    this: *const c_void,
    out: *mut PhysTargetObj,
    info: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || match arc_ref::<dyn Os>(this).physical() {
        Some(t) => {
            let (obj, json) = export_target(t)?;
            // SAFETY: `out` is writable; the sink is valid for the call.
            unsafe {
                *out = obj;
                info.put(&json);
            }
            Ok(STATUS_OK)
        }
        None => Ok(STATUS_NONE),
    })
}

/// Exports an OS.
pub fn export_os(os: Arc<dyn Os>) -> OsObj {
    OsObj {
        this: Box::into_raw(Box::new(os)) as *mut c_void,
        vt: OsVtable {
            drop: arc_drop::<dyn Os>,
            info: os_info,
            processes: os_processes,
            process: os_process,
            kernel_modules: os_kernel_modules,
            kernel_memory: os_kernel_memory,
            physical: os_physical,
        },
    }
}

// ---- descriptors ----

fn check_input(name: &str, kind: InputKind, given: bool, what: &str) -> Result<(), String> {
    match (kind, given) {
        (InputKind::None, true) => Err(format!(
            "'{name}' takes no input, but the previous step gives it {what}"
        )),
        (InputKind::Required, false) => Err(format!(
            "'{name}' needs {what} as input: put a step before it"
        )),
        _ => Ok(()),
    }
}

/// The `help` function of connector `T`'s descriptor.
///
/// # Safety
/// `out` must be a valid sink.
pub unsafe extern "C" fn connector_help<T: ConnectorPlugin>(out: StrSink) -> i32 {
    guard(Some(out), || {
        // SAFETY: valid sink.
        unsafe { out.put(&T::help()) };
        Ok(STATUS_OK)
    })
}

/// The body of both descriptors' `targets`: parses `args` against `spec` (the target
/// argument made optional: listing is what one does before knowing the target) and
/// writes what `list` returns as JSON.
///
/// # Safety
/// `args` must be valid for the call, `out`/`err` valid sinks.
unsafe fn targets_json(
    name: &str,
    spec: fn() -> crate::args::ArgSpec,
    list: fn(&Args) -> Result<Vec<crate::traits::TargetListing>, crate::error::BoxError>,
    args: StrRef,
    out: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // SAFETY: valid for the call.
        let raw = unsafe { args.get() }.unwrap_or_default();
        let mut spec = spec();
        if let Some(t) = spec.target.as_mut() {
            t.required = false;
        }
        let a = Args::parse(name, &spec, None, &raw).map_err(|e| e.to_string())?;
        put_json(out, &list(&a).map_err(|e| e.to_string())?)
    })
}

/// The `targets` function of connector `T`'s descriptor.
///
/// # Safety
/// `args` must be valid for the call, `out`/`err` valid sinks.
pub unsafe extern "C" fn connector_targets<T: ConnectorPlugin>(
    args: StrRef,
    out: StrSink,
    err: StrSink,
) -> i32 {
    // SAFETY: forwarded from our caller.
    unsafe { targets_json(T::NAME, T::args, T::targets, args, out, err) }
}

/// The `targets` function of OS plugin `T`'s descriptor.
///
/// # Safety
/// `args` must be valid for the call, `out`/`err` valid sinks.
pub unsafe extern "C" fn os_targets<T: OsPlugin>(args: StrRef, out: StrSink, err: StrSink) -> i32 {
    // SAFETY: forwarded from our caller.
    unsafe { targets_json(T::NAME, T::args, T::targets, args, out, err) }
}

/// The `create` function of connector `T`'s descriptor.
///
/// # Safety
/// Arguments as documented on [`ConnectorDescriptor::create`].
pub unsafe extern "C" fn connector_create<T: ConnectorPlugin>(
    host: *const HostContext,
    target: StrRef,
    args: StrRef,
    input: *const OsObj,
    out: *mut PhysTargetObj,
    info: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // Take ownership of the input first: it is released on every path.
        let input: Option<Arc<dyn Os>> = if input.is_null() {
            None
        } else {
            // SAFETY: the host moved a valid OS object to us.
            Some(unsafe { import::import_os(*input, Origin::host("input OS")) })
        };
        // SAFETY: `host` is null or valid for the call.
        if let Some(h) = unsafe { host.as_ref() } {
            crate::logger::install_forwarder(h);
        }
        check_input(T::NAME, T::INPUT, input.is_some(), "an OS")?;
        // SAFETY: valid for the call.
        let (target, raw) = unsafe { (target.get(), args.get().unwrap_or_default()) };
        let a =
            Args::parse(T::NAME, &T::args(), target.as_deref(), &raw).map_err(|e| e.to_string())?;
        let t = T::create(&a, input).map_err(|e| e.to_string())?;
        let (obj, json) = export_target(t)?;
        // SAFETY: `out` is writable, the sink valid.
        unsafe {
            *out = obj;
            info.put(&json);
        }
        Ok(STATUS_OK)
    })
}

/// The `help` function of OS plugin `T`'s descriptor.
///
/// # Safety
/// `out` must be a valid sink.
pub unsafe extern "C" fn os_help<T: OsPlugin>(out: StrSink) -> i32 {
    guard(Some(out), || {
        // SAFETY: valid sink.
        unsafe { out.put(&T::help()) };
        Ok(STATUS_OK)
    })
}

/// The `create` function of OS plugin `T`'s descriptor.
///
/// # Safety
/// Arguments as documented on [`OsDescriptor::create`].
pub unsafe extern "C" fn os_create<T: OsPlugin>(
    host: *const HostContext,
    target: StrRef,
    args: StrRef,
    input: *const PhysTargetObj,
    input_info: StrRef,
    out: *mut OsObj,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        let input: Option<PhysicalTarget> = if input.is_null() {
            None
        } else {
            // SAFETY: the host moved a valid target to us; the info is valid for the call.
            Some(unsafe { import::import_target(*input, input_info, Origin::host("input")) }?)
        };
        // SAFETY: `host` is null or valid for the call.
        if let Some(h) = unsafe { host.as_ref() } {
            crate::logger::install_forwarder(h);
        }
        check_input(T::NAME, T::INPUT, input.is_some(), "a physical target")?;
        // SAFETY: valid for the call.
        let (target, raw) = unsafe { (target.get(), args.get().unwrap_or_default()) };
        let a =
            Args::parse(T::NAME, &T::args(), target.as_deref(), &raw).map_err(|e| e.to_string())?;
        let os = T::create(&a, input).map_err(|e| e.to_string())?;
        // SAFETY: `out` is writable.
        unsafe { *out = export_os(os) };
        Ok(STATUS_OK)
    })
}

/// The descriptor of connector `T` (used by [`export_connector!`](crate::export_connector)).
pub const fn connector_descriptor<T: ConnectorPlugin>(symbol_suffix: &str) -> ConnectorDescriptor {
    ConnectorDescriptor {
        header: make_header(
            KIND_CONNECTOR,
            T::INPUT as u32,
            T::NAME,
            T::VERSION,
            T::DESCRIPTION,
            symbol_suffix,
        ),
        help: connector_help::<T>,
        targets: connector_targets::<T>,
        create: connector_create::<T>,
    }
}

/// The descriptor of OS plugin `T` (used by [`export_os!`](crate::export_os)).
pub const fn os_descriptor<T: OsPlugin>(symbol_suffix: &str) -> OsDescriptor {
    OsDescriptor {
        header: make_header(
            KIND_OS,
            T::INPUT as u32,
            T::NAME,
            T::VERSION,
            T::DESCRIPTION,
            symbol_suffix,
        ),
        help: os_help::<T>,
        targets: os_targets::<T>,
        create: os_create::<T>,
    }
}

//! Exported memory objects. **Key decision: two read paths** — `read_batch` takes C-layout
//! ops and rebuilds `ReadOp`s (from the [`pool`](super::pool)), while
//! `read_batch_native` hands the caller's own `ReadOp` array straight to the view when
//! both sides share its layout (same native fingerprint), with failures reported out of
//! line.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use memlens_core::mem::{MemoryView, MemoryWrite, ReadOp, WriteOp};
use memlens_core::{Address, Error};

use super::pool::{give_ops, take_ops};
use super::report::{report_results, status};
use super::*;

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

unsafe extern "C" fn mem_read<M: MemoryView + ?Sized>(
    this: *const c_void,
    ops: *mut CReadOp,
    n: usize,
    report: ErrReport,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        let m = unsafe { arc_ref::<M>(this) };
        if n == 0 || ops.is_null() {
            return;
        }
        // SAFETY: the caller passes `n` ops with disjoint, writable buffers.
        let cops = unsafe { std::slice::from_raw_parts(ops, n) };
        let addr = <M::Addr as Address>::from_u64;
        if n == 1 {
            // SAFETY: the caller passes ops whose buffers are writable and disjoint, so
            // `cops[0].buf` is `len` writable bytes aliased by no other op.
            let mut one = [ReadOp::new(addr(cops[0].addr), unsafe {
                buf_mut(&cops[0])
            })];
            m.read_batch(&mut one);
            report_results(one.iter().map(|o| &o.result), report, 0);
        } else {
            let mut v: Vec<ReadOp<'_, M::Addr>> = take_ops();
            v.extend(
                cops.iter()
                    // SAFETY: the caller passes ops whose buffers are writable and
                    // disjoint, so each buffer is aliased by no other op.
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
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        let m = unsafe { arc_ref::<M>(this) };
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
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        let m = unsafe { arc_ref::<M>(this) };
        if n == 0 || ops.is_null() {
            return;
        }
        // SAFETY: the caller passes `n` ops with readable buffers.
        let cops = unsafe { std::slice::from_raw_parts(ops, n) };
        let mut v: Vec<WriteOp<'_, M::Addr>> = cops
            .iter()
            // SAFETY: the caller passes ops whose buffers are `len` readable bytes.
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

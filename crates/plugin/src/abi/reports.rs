//! Outcomes reported by a plugin for a batch of memory operations, written into the
//! caller's ops. **Key decision: a report is a claim of the plugin, checked before it
//! becomes an error value**: a failed span is kept only when it lies inside its op's
//! buffer (the `total` of a partial failure is always the buffer's length, whatever the
//! plugin says), so every consumer can add `offset + len` without overflow and index the
//! buffer with it; and an op collects at most [`MAX_SPANS`] spans before it becomes one
//! whole-op failure, so a plugin reporting a span per byte cannot make the host allocate
//! per byte.

use std::ffi::c_void;

use memlens_core::error::FailedSpan;
use memlens_core::mem::{ReadOp, WriteOp};
use memlens_core::Error;

use super::import::decode_error;
use super::{CError, ErrReport};

/// Most failed spans kept for one op; more become one failure of the whole op.
pub const MAX_SPANS: usize = 1024;

/// Most vCPUs a CPU state from a plugin may claim: callers allocate and loop per vCPU,
/// and no machine memlens reads has more.
pub const MAX_CPUS: usize = 4096;

/// Receives reports for one batch, writing outcomes straight into the caller's ops.
pub(super) struct Reports {
    /// The ops of the batch (`ReadOp<A>` or `WriteOp<A>`, type-erased).
    pub(super) base: *mut c_void,
    /// Number of ops.
    pub(super) n: usize,
    /// The outcome slot of op `i`.
    pub(super) slot: unsafe fn(base: *mut c_void, i: usize) -> *mut Result<(), Error>,
    /// The buffer length of op `i`.
    len: unsafe fn(base: *mut c_void, i: usize) -> usize,
    /// Message of a panic reported for the whole batch.
    pub(super) panic: Option<String>,
    /// Whether an invalid span was already logged for this batch (once is enough).
    warned: bool,
}

/// # Safety
/// `base` must point to the batch's live `ReadOp<A>` array and `i` be in bounds.
unsafe fn read_slot<A>(base: *mut c_void, i: usize) -> *mut Result<(), Error> {
    // SAFETY: `base` points to the batch's `ReadOp<A>` array and `i` is in bounds (checked
    // by the caller); taking the field's address does not touch the op's buffer.
    unsafe { std::ptr::addr_of_mut!((*(base as *mut ReadOp<'_, A>).add(i)).result) }
}

/// # Safety
/// `base` must point to the batch's live `WriteOp<A>` array and `i` be in bounds.
unsafe fn write_slot<A>(base: *mut c_void, i: usize) -> *mut Result<(), Error> {
    // SAFETY: `base` points to the batch's `WriteOp<A>` array and `i` is in bounds (checked
    // by the caller); taking the field's address does not touch the op's buffer.
    unsafe { std::ptr::addr_of_mut!((*(base as *mut WriteOp<'_, A>).add(i)).result) }
}

/// # Safety
/// `base` must point to the batch's live `ReadOp<A>` array and `i` be in bounds.
unsafe fn read_len<A>(base: *mut c_void, i: usize) -> usize {
    // SAFETY: `base` points to the batch's `ReadOp<A>` array and `i` is in bounds (checked
    // by the caller); the slice's length is read from its (raw) pointer, without a
    // reference to the bytes the plugin writes.
    unsafe { std::ptr::addr_of!(*(*(base as *const ReadOp<'_, A>).add(i)).buf).len() }
}

/// # Safety
/// `base` must point to the batch's live `WriteOp<A>` array and `i` be in bounds.
unsafe fn write_len<A>(base: *mut c_void, i: usize) -> usize {
    // SAFETY: `base` points to the batch's `WriteOp<A>` array and `i` is in bounds (checked
    // by the caller); the slice's length is read from its (raw) pointer, without a
    // reference to the bytes the plugin reads.
    unsafe { std::ptr::addr_of!(*(*(base as *const WriteOp<'_, A>).add(i)).buf).len() }
}

impl Reports {
    pub(super) fn for_reads<A>(ops: &mut [ReadOp<'_, A>]) -> Self {
        Reports {
            base: ops.as_mut_ptr() as *mut c_void,
            n: ops.len(),
            slot: read_slot::<A>,
            len: read_len::<A>,
            panic: None,
            warned: false,
        }
    }
    pub(super) fn for_writes<A>(ops: &mut [WriteOp<'_, A>]) -> Self {
        Reports {
            base: ops.as_mut_ptr() as *mut c_void,
            n: ops.len(),
            slot: write_slot::<A>,
            len: write_len::<A>,
            panic: None,
            warned: false,
        }
    }
    pub(super) fn report(&mut self) -> ErrReport {
        ErrReport {
            ctx: self as *mut Reports as *mut c_void,
            report: on_report,
        }
    }
}

/// Records one failed span `[offset, offset + len)` of an op of `buf_len` bytes in `slot`
/// (see the module documentation). Returns `false` when the span was refused (outside
/// the buffer) and the whole op was marked failed instead.
pub(super) fn add_span(
    slot: &mut Result<(), Error>,
    buf_len: usize,
    offset: usize,
    len: usize,
    e: Error,
) -> bool {
    let inside = offset <= buf_len && len <= buf_len - offset;
    match slot {
        // A whole-op failure stays: it covers every span.
        Err(err) if !matches!(err, Error::Partial { .. }) => {}
        _ if !inside => *slot = Err(e),
        Err(Error::Partial { failed, .. }) if failed.len() >= MAX_SPANS => *slot = Err(e),
        Err(Error::Partial { failed, .. }) => failed.push(FailedSpan {
            offset,
            len,
            cause: Box::new(e),
        }),
        _ => {
            *slot = Err(Error::Partial {
                total: buf_len,
                failed: vec![FailedSpan {
                    offset,
                    len,
                    cause: Box::new(e),
                }],
            })
        }
    }
    inside
}

unsafe extern "C" fn on_report(
    ctx: *mut c_void,
    index: usize,
    err: *const CError,
    offset: usize,
    len: usize,
    total: usize,
) {
    // SAFETY: `ctx` is the `Reports` of the running batch; `err` valid for the call.
    let (r, c) = unsafe { (&mut *(ctx as *mut Reports), &*err) };
    // SAFETY: strings valid for the call.
    let e = unsafe { decode_error(c) };
    if index == usize::MAX {
        r.panic = Some(e.to_string());
        return;
    }
    if index >= r.n {
        log::warn!(
            "plugin reported an outcome for op {index} of a batch of {}",
            r.n
        );
        return;
    }
    // SAFETY: `index` is in bounds; the ops outlive the batch call.
    let (slot, buf_len) = unsafe { (&mut *(r.slot)(r.base, index), (r.len)(r.base, index)) };
    if total == 0 {
        *slot = Err(e);
        return;
    }
    if !add_span(slot, buf_len, offset, len, e) && !r.warned {
        r.warned = true;
        log::warn!(
            "plugin reported failed bytes [{offset}, +{len}) outside op {index} of {buf_len} bytes: the whole op failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap() -> Error {
        Error::Gap {
            addr: memlens_core::PhysAddr(0),
        }
    }

    /// Spans from a plugin: inside the buffer they are kept with the buffer's length as
    /// the total; outside it (or overflowing) the op fails whole; past MAX_SPANS they
    /// collapse into one failure.
    #[test]
    fn spans_are_checked_against_the_buffer() {
        let mut slot = Ok(());
        assert!(add_span(&mut slot, 16, 4, 4, gap()));
        assert!(add_span(&mut slot, 16, 16, 0, gap()));
        let Err(Error::Partial { total, failed }) = &slot else {
            panic!("{slot:?}")
        };
        assert_eq!((*total, failed.len()), (16, 2));
        for (off, len) in [(17, 0), (8, 9), (usize::MAX, 2), (1, usize::MAX)] {
            let mut slot = Ok(());
            assert!(!add_span(&mut slot, 16, off, len, gap()), "{off} {len}");
            assert!(matches!(slot, Err(Error::Gap { .. })), "{slot:?}");
            // Once whole, later spans do not turn it partial again.
            add_span(&mut slot, 16, 0, 1, gap());
            assert!(matches!(slot, Err(Error::Gap { .. })));
        }
        let mut slot = Ok(());
        for i in 0..MAX_SPANS + 10 {
            add_span(&mut slot, 1 << 20, i, 1, gap());
        }
        assert!(matches!(slot, Err(Error::Gap { .. })), "{slot:?}");
    }
}

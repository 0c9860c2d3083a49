//! Rust → vtable adapters. Each `export_*` boxes an `Arc` of a core trait object and
//! returns an owned `#[repr(C)]` object whose functions are monomorphic `extern "C"`
//! trampolines. **Every trampoline runs under `catch_unwind`**: a panic becomes
//! `STATUS_PANIC` (or, for reads, a failed outcome on every op) and never unwinds into
//! foreign frames.
//!
//! Layout: `report` (errors flattened to `CError` and reported per op), `pool` (the
//! reused op vectors), `memory` (memory objects: the C-layout and native read paths,
//! writes), `objects` (CPU, process, OS and target objects), `descriptors` (the
//! descriptor functions of [`export_connector!`](crate::export_connector) and
//! [`export_os!`](crate::export_os)).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde::Serialize;

use super::*;

mod descriptors;
mod memory;
mod objects;
pub(crate) mod pool;
pub(crate) mod report;

pub use descriptors::*;
pub(crate) use memory::any_failed;
pub use memory::{export_memory, export_writer};
pub use objects::{export_cpu, export_os, export_process, export_target};

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

pub(super) fn put_json<T: Serialize + ?Sized>(out: StrSink, v: &T) -> Result<i32, String> {
    let s = serde_json::to_string(v).map_err(|e| format!("serialising result: {e}"))?;
    // SAFETY: sinks handed to us are valid for the call.
    unsafe { out.put(&s) };
    Ok(STATUS_OK)
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

/// The object behind `this`, for the calls of an exported object's vtable.
///
/// # Safety
/// `this` must be the live box created by the `export_*` function that exported a `T`
/// (`Box::into_raw(Box<Arc<T>>)`), not yet dropped, and it must outlive `'a`.
unsafe fn arc_ref<'a, T: ?Sized>(this: *const c_void) -> &'a Arc<T> {
    // SAFETY: by the caller's guarantee, `this` points to a live `Arc<T>`.
    unsafe { &*(this as *const Arc<T>) }
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

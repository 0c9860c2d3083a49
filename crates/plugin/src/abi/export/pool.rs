//! Op-vector pooling for the C-layout read path. **Key decision: pooled vectors are
//! always empty while stored** and taken out for a call, so a re-entrant call just
//! allocates and no value of an erased lifetime is ever kept.

use memlens_core::mem::ReadOp;
use memlens_core::{Address, PhysAddr, VirtAddr};

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

pub(super) fn take_ops<'a, A: Address>() -> Vec<ReadOp<'a, A>> {
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

pub(super) fn give_ops<A: Address>(mut v: Vec<ReadOp<'_, A>>) {
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

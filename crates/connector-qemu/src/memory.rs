//! [`QemuMemory`]: guest-physical memory as a window onto the QEMU process's RAM block.
//! **Key decision: translate, then hand the whole batch to the process view in one call**
//! — each guest-physical op becomes one (or, across layout holes, a few) host-virtual ops,
//! so a batch of 256 reads stays one vectored system call underneath.
//!
//! When the RAM block is a *shared* file mapping (`-object memory-backend-memfd` or
//! `memory-backend-file,share=on`) and the input OS is the host itself, the block is
//! instead mapped into this process through `/proc/PID/map_files/` (root only) and read
//! with `memcpy` ([`Backend::Direct`]): no system call per read at all. Private anonymous
//! RAM (QEMU's default) cannot be mapped from outside, so it is read through the view.

use std::sync::Arc;

use memlens_core::mem::{finish_partial, record_failure};
use memlens_core::memmap::Piece;
use memlens_core::{
    Error, MemRange, MemoryMap, MemoryMetadata, MemoryView, MemoryWrite, PhysAddr, ReadOp,
    VirtAddr, VirtualMemory, VirtualWrite, WriteOp,
};

/// Resumes the guest when the last handle to a paused guest's memory is dropped.
pub(crate) struct ResumeGuard(pub(crate) crate::qmp::QmpSocket);

impl Drop for ResumeGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.execute("cont", None) {
            log::warn!("cannot resume the guest: {e}");
        }
    }
}

/// How the RAM block is reached.
pub enum Backend {
    /// Through the input OS's view of the QEMU process; `host_base` is the host-virtual
    /// address of RAM block offset 0.
    View {
        /// The process's memory.
        view: Arc<dyn VirtualMemory>,
        /// Writing into the process, when the input OS allows it and writes were asked.
        writer: Option<Arc<dyn VirtualWrite>>,
        /// Host-virtual address of the block's first byte.
        host_base: u64,
    },
    /// The block mapped into this process.
    Direct {
        /// The mapping (shared with QEMU).
        map: memmap2::MmapRaw,
        /// Whether writes were asked for.
        writable: bool,
    },
}

/// Guest-physical memory of a live QEMU guest. See the module documentation.
pub struct QemuMemory {
    backend: Backend,
    map: MemoryMap,
    block_len: u64,
    pub(crate) _resume: Option<Arc<ResumeGuard>>,
}

impl std::fmt::Debug for QemuMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QemuMemory")
            .field("direct", &matches!(self.backend, Backend::Direct { .. }))
            .field("map", &self.map)
            .finish()
    }
}

impl QemuMemory {
    /// A view of a RAM block of `block_len` bytes through `backend`, laid out by `map`
    /// (whose backing offsets are offsets into the block). Fails when the map needs more
    /// than the block holds.
    pub fn new(backend: Backend, map: MemoryMap, block_len: u64) -> Result<Self, Error> {
        if map.backing_end() > block_len {
            return Err(Error::MemoryMap(format!(
                "layout needs {:#x} bytes of RAM block but the block has {block_len:#x}",
                map.backing_end()
            )));
        }
        if let Backend::Direct { map: m, .. } = &backend {
            if (m.len() as u64) < block_len {
                return Err(Error::MemoryMap(
                    "direct mapping shorter than the block".into(),
                ));
            }
        }
        Ok(Self {
            backend,
            map,
            block_len,
            _resume: None,
        })
    }

    /// The guest-physical layout.
    pub fn map(&self) -> &MemoryMap {
        &self.map
    }

    /// Whether the block is mapped into this process (`memcpy` reads).
    pub fn is_direct(&self) -> bool {
        matches!(self.backend, Backend::Direct { .. })
    }

    /// Whether writes are possible.
    pub fn is_writable(&self) -> bool {
        match &self.backend {
            Backend::View { writer, .. } => writer.is_some(),
            Backend::Direct { writable, .. } => *writable,
        }
    }

    fn gap_error(&self, addr: PhysAddr, len: usize) -> Error {
        match self.map.max_addr() {
            Some(max) if addr > max => Error::OutOfRange { addr, len, max },
            _ => Error::Gap { addr },
        }
    }

    fn read_direct(&self, m: &memmap2::MmapRaw, ops: &mut [ReadOp<'_, PhysAddr>]) {
        let base = m.as_ptr();
        // Two passes per chunk: resolve and prefetch every op, then copy — the cache misses
        // of random small reads overlap instead of being paid one after another.
        const CHUNK: usize = 32;
        for chunk in ops.chunks_mut(CHUNK) {
            let mut offs = [None; CHUNK];
            for (o, op) in offs.iter_mut().zip(chunk.iter()) {
                *o = self.map.resolve_contiguous(op.addr, op.buf.len());
                if let Some(off) = *o {
                    // SAFETY: `off` comes from `resolve_contiguous`, so `off <= backing_end <=
                    // block_len <= mapping length` (checked in `new`): the address is in (or
                    // one past) the mapping; a prefetch has no effect on program state.
                    prefetch(unsafe { base.add(off as usize) });
                }
            }
            for (o, op) in offs.into_iter().zip(chunk.iter_mut()) {
                let len = op.buf.len();
                op.result = Ok(());
                if let Some(off) = o {
                    // SAFETY: `off + len <= backing_end <= block_len <= mapping length`
                    // (checked in `new`); the mapping lives as long as `self`.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            base.add(off as usize),
                            op.buf.as_mut_ptr(),
                            len,
                        )
                    };
                    continue;
                }
                for p in self.map.pieces(op.addr, len) {
                    match p {
                        Piece::Backed {
                            buf_off,
                            backing,
                            len: n,
                        } => {
                            // SAFETY: a backed piece lies in the block: `backing + n <=
                            // backing_end <= block_len <= mapping length` (checked in `new`),
                            // and `buf_off + n <= op.buf.len()` (pieces split the op's
                            // range); the mapping lives as long as `self`.
                            unsafe {
                                std::ptr::copy_nonoverlapping(
                                    base.add(backing as usize),
                                    op.buf[buf_off..].as_mut_ptr(),
                                    n,
                                )
                            }
                        }
                        Piece::Gap {
                            buf_off,
                            addr,
                            len: n,
                        } => {
                            op.buf[buf_off..buf_off + n].fill(0);
                            let e = self.gap_error(addr, n);
                            record_failure(&mut op.result, len, buf_off, n, e);
                        }
                    }
                }
                finish_partial(&mut op.result);
            }
        }
    }
}

#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Moves the outcome of a host op covering bytes `[off, off+len)` of a parent op of
/// `total` bytes into the parent's result.
fn merge(
    parent: &mut Result<(), Error>,
    total: usize,
    off: usize,
    len: usize,
    r: Result<(), Error>,
    gpa: PhysAddr,
) {
    match r {
        Ok(()) => {}
        Err(Error::Partial { failed, .. }) => {
            for f in failed {
                let at = PhysAddr(gpa.0.wrapping_add((off + f.offset) as u64));
                let cause = (*f.cause).context(format!("guest-physical {at}"));
                record_failure(parent, total, off + f.offset, f.len, cause);
            }
        }
        Err(e) => {
            let at = PhysAddr(gpa.0.wrapping_add(off as u64));
            record_failure(
                parent,
                total,
                off,
                len,
                e.context(format!("guest-physical {at}")),
            );
        }
    }
}

impl MemoryView for QemuMemory {
    type Addr = PhysAddr;

    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        let (view, host_base) = match &self.backend {
            Backend::Direct { map, .. } => return self.read_direct(map, ops),
            Backend::View {
                view, host_base, ..
            } => (view, *host_base),
        };
        let mut inner: Vec<ReadOp<'_, VirtAddr>> = Vec::with_capacity(ops.len());
        // Per inner op: (parent index, offset in the parent's buffer).
        let mut owner: Vec<(usize, usize)> = Vec::with_capacity(ops.len());
        let mut parents: Vec<(&mut Result<(), Error>, usize, PhysAddr)> =
            Vec::with_capacity(ops.len());
        for (i, op) in ops.iter_mut().enumerate() {
            let ReadOp { addr, buf, result } = op;
            *result = Ok(());
            let total = buf.len();
            if let Some(off) = self.map.resolve_contiguous(*addr, total) {
                inner.push(ReadOp::new(VirtAddr(host_base + off), &mut buf[..]));
                owner.push((i, 0));
            } else {
                let mut rest: &mut [u8] = &mut buf[..];
                let mut consumed = 0usize;
                for p in self.map.pieces(*addr, total) {
                    let (buf_off, n) = match p {
                        Piece::Backed { buf_off, len, .. } | Piece::Gap { buf_off, len, .. } => {
                            (buf_off, len)
                        }
                    };
                    let (_, tail) = std::mem::take(&mut rest).split_at_mut(buf_off - consumed);
                    let (piece, tail) = tail.split_at_mut(n);
                    rest = tail;
                    consumed = buf_off + n;
                    match p {
                        Piece::Backed { backing, .. } => {
                            inner.push(ReadOp::new(VirtAddr(host_base + backing), piece));
                            owner.push((i, buf_off));
                        }
                        Piece::Gap { addr: gap, .. } => {
                            piece.fill(0);
                            record_failure(result, total, buf_off, n, self.gap_error(gap, n));
                        }
                    }
                }
            }
            parents.push((result, total, *addr));
        }
        view.read_batch(&mut inner);
        for (op, (i, off)) in inner.into_iter().zip(owner) {
            let (parent, total, gpa) = &mut parents[i];
            merge(parent, *total, off, op.buf.len(), op.result, *gpa);
        }
        for (r, _, _) in parents {
            finish_partial(r);
        }
    }

    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: self.map.max_addr().unwrap_or_default(),
            real_size: self.map.real_size(),
            readonly: !self.is_writable(),
            preferred_batch: 1024,
        }
    }

    fn ranges(&self) -> Vec<MemRange<PhysAddr>> {
        self.map
            .entries()
            .iter()
            .map(|e| MemRange::new(e.base, e.len))
            .collect()
    }
}

impl MemoryWrite for QemuMemory {
    fn write_batch(&self, ops: &mut [WriteOp<'_, PhysAddr>]) {
        if !self.is_writable() {
            for op in ops.iter_mut() {
                op.result = Err(Error::ReadOnly {
                    what: "QEMU guest memory (open the qemu connector with `writable`, over an OS opened writable)".into(),
                });
            }
            return;
        }
        let mut inner: Vec<WriteOp<'_, VirtAddr>> = Vec::new();
        let mut owner: Vec<(usize, usize)> = Vec::new();
        for (i, op) in ops.iter_mut().enumerate() {
            op.result = Ok(());
            let src: &[u8] = op.buf;
            let total = src.len();
            for p in self.map.pieces(op.addr, total) {
                match p {
                    Piece::Backed {
                        buf_off,
                        backing,
                        len,
                    } => match &self.backend {
                        Backend::Direct { map, .. } => {
                            debug_assert!(backing + len as u64 <= self.block_len);
                            // SAFETY: within the mapping (checked in `new`); the mapping
                            // is writable (opened so only when `writable`).
                            unsafe {
                                std::ptr::copy_nonoverlapping(
                                    src[buf_off..].as_ptr(),
                                    map.as_mut_ptr().add(backing as usize),
                                    len,
                                )
                            }
                        }
                        Backend::View { host_base, .. } => {
                            inner.push(WriteOp::new(
                                VirtAddr(host_base + backing),
                                &src[buf_off..buf_off + len],
                            ));
                            owner.push((i, buf_off));
                        }
                    },
                    Piece::Gap { buf_off, addr, len } => {
                        let e = self.gap_error(addr, len);
                        record_failure(&mut op.result, total, buf_off, len, e);
                    }
                }
            }
        }
        if let Backend::View {
            writer: Some(w), ..
        } = &self.backend
        {
            w.write_batch(&mut inner);
        }
        let outcomes: Vec<(usize, usize, usize, Result<(), Error>)> = inner
            .into_iter()
            .zip(owner)
            .map(|(o, (i, off))| (i, off, o.buf.len(), o.result))
            .collect();
        for (i, off, len, r) in outcomes {
            let total = ops[i].buf.len();
            let gpa = ops[i].addr;
            merge(&mut ops[i].result, total, off, len, r, gpa);
        }
        for op in ops.iter_mut() {
            finish_partial(&mut op.result);
        }
    }
}

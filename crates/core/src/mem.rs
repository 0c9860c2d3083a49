//! The memory traits. **Key decision: the one required read method takes a batch.**
//!
//! [`MemoryView::read_batch`] receives a slice of [`ReadOp`]s and records an outcome in
//! each one: a failed page fails its operation, never the batch. Batching lets a backend
//! sort, merge or vectorise (one `process_vm_readv`, one page-table page per level), and
//! storing the outcome inside the op keeps the hot path free of allocation. Single reads,
//! typed reads, strings and the cursor are provided on top by [`MemoryViewExt`](crate::MemoryViewExt).
//!
//! Readers take `&self` and are `Send + Sync`, so one target is read from many threads at
//! once (parallel search and scans); a backend that needs mutable state (a cache, a socket)
//! keeps its own lock inside. The alternative — `&mut self` plus cloning a handle per
//! thread — makes every shared cache a per-clone cache and every helper generic over
//! clone semantics; we rejected it.
//!
//! The same trait serves physical and virtual memory: the address space is the associated
//! type [`MemoryView::Addr`]. [`PhysicalMemory`] and [`VirtualMemory`] are shorthands.
//! Writing is a separate capability ([`MemoryWrite`]): a dump reader does not stub it out.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::addr::{Address, PhysAddr, VirtAddr};
use crate::error::{Error, Result};

/// One read of a batch: fill `buf` from `addr`; the backend records the outcome in `result`.
#[derive(Debug)]
pub struct ReadOp<'a, A> {
    /// First address to read.
    pub addr: A,
    /// Destination; its length is the length of the read.
    pub buf: &'a mut [u8],
    /// Outcome, set by the backend. `Err(Error::Partial{..})` means some bytes are valid.
    pub result: Result<()>,
}

impl<'a, A> ReadOp<'a, A> {
    /// A new operation (outcome initialised to `Ok`).
    #[inline]
    pub fn new(addr: A, buf: &'a mut [u8]) -> Self {
        Self {
            addr,
            buf,
            result: Ok(()),
        }
    }
}

/// One write of a batch: store `buf` at `addr`; the backend records the outcome in `result`.
#[derive(Debug)]
pub struct WriteOp<'a, A> {
    /// First address to write.
    pub addr: A,
    /// Source bytes.
    pub buf: &'a [u8],
    /// Outcome, set by the backend.
    pub result: Result<()>,
}

impl<'a, A> WriteOp<'a, A> {
    /// A new operation (outcome initialised to `Ok`).
    #[inline]
    pub fn new(addr: A, buf: &'a [u8]) -> Self {
        Self {
            addr,
            buf,
            result: Ok(()),
        }
    }
}

/// A contiguous range of an address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemRange<A> {
    /// First address.
    pub base: A,
    /// Length in bytes (never 0 in a valid map).
    pub len: u64,
}

impl<A: Address> MemRange<A> {
    /// A new range.
    pub fn new(base: A, len: u64) -> Self {
        Self { base, len }
    }
    /// One past the last address, saturating at 2^64.
    pub fn end_u64(&self) -> u64 {
        self.base.to_u64().saturating_add(self.len)
    }
    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: A) -> bool {
        addr >= self.base && addr.to_u64() - self.base.to_u64() < self.len
    }
}

/// What a memory view says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryMetadata<A> {
    /// Highest readable address (inclusive).
    pub max_addr: A,
    /// Bytes actually backed (the sum of the ranges' lengths).
    pub real_size: u64,
    /// Whether writes are refused.
    pub readonly: bool,
    /// A batch length that the backend handles well (callers may use any length).
    pub preferred_batch: usize,
}

/// Batched reading of one address space. See the module documentation.
///
/// A backend implements `read_batch` and `metadata`; every helper of
/// [`MemoryViewExt`](crate::MemoryViewExt) comes with it. Here, bytes in a vector at
/// physical address 0, read as one batch in which one operation fails:
///
/// ```
/// use memlens_core::{Error, MemoryMetadata, MemoryView, MemoryViewExt, PhysAddr, ReadOp};
///
/// struct Ram(Vec<u8>);
///
/// impl MemoryView for Ram {
///     type Addr = PhysAddr;
///     fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
///         for op in ops {
///             let start = op.addr.0 as usize;
///             op.result = match self.0.get(start..start.saturating_add(op.buf.len())) {
///                 Some(src) => {
///                     op.buf.copy_from_slice(src);
///                     Ok(())
///                 }
///                 // Every op gets an outcome; a bad address fails its op, never the batch.
///                 None => Err(Error::OutOfRange {
///                     addr: op.addr,
///                     len: op.buf.len(),
///                     max: self.metadata().max_addr,
///                 }),
///             };
///         }
///     }
///     fn metadata(&self) -> MemoryMetadata<PhysAddr> {
///         let len = self.0.len() as u64;
///         MemoryMetadata { max_addr: PhysAddr(len - 1), real_size: len, readonly: true, preferred_batch: 64 }
///     }
/// }
///
/// let ram = Ram((0..=255).collect());
/// let (mut a, mut b, mut c) = ([0u8; 4], [0u8; 2], [0u8; 8]);
/// let mut ops = [
///     ReadOp::new(PhysAddr(0x10), &mut a[..]),
///     ReadOp::new(PhysAddr(0xfe), &mut b[..]),
///     ReadOp::new(PhysAddr(0xfc), &mut c[..]), // runs past the end
/// ];
/// ram.read_batch(&mut ops);
/// assert!(ops[0].result.is_ok() && ops[1].result.is_ok());
/// assert!(matches!(ops[2].result, Err(Error::OutOfRange { .. })));
/// assert_eq!((a, b), ([0x10, 0x11, 0x12, 0x13], [0xfe, 0xff]));
/// // The provided helpers, for free.
/// assert_eq!(ram.read_u32(PhysAddr(0x20))?, 0x2322_2120);
/// assert_eq!(ram.ranges()[0].end_u64(), 0x100);
/// # Ok::<(), Error>(())
/// ```
pub trait MemoryView: Send + Sync {
    /// The address space this view reads.
    type Addr: Address;

    /// Performs every read of the batch, recording an outcome in each operation's
    /// `result`. Implementations must set `result` for every op, must not panic on any
    /// address or length, and must leave the bytes of failed spans unspecified but
    /// initialised (they are `&mut [u8]`).
    fn read_batch(&self, ops: &mut [ReadOp<'_, Self::Addr>]);

    /// Size and capabilities.
    fn metadata(&self) -> MemoryMetadata<Self::Addr>;

    /// The backed ranges in ascending order. The default is one range up to `max_addr`.
    fn ranges(&self) -> Vec<MemRange<Self::Addr>> {
        let m = self.metadata();
        vec![MemRange::new(
            Self::Addr::from_u64(0),
            m.max_addr.to_u64().saturating_add(1),
        )]
    }
}

/// Batched writing of one address space: a separate capability from reading.
pub trait MemoryWrite: MemoryView {
    /// Performs every write of the batch, recording an outcome in each operation.
    fn write_batch(&self, ops: &mut [WriteOp<'_, Self::Addr>]);
}

/// Shorthand: a view of physical memory.
pub trait PhysicalMemory: MemoryView<Addr = PhysAddr> {}
impl<T: MemoryView<Addr = PhysAddr> + ?Sized> PhysicalMemory for T {}

/// Shorthand: a view of virtual memory (a process, the kernel).
pub trait VirtualMemory: MemoryView<Addr = VirtAddr> {}
impl<T: MemoryView<Addr = VirtAddr> + ?Sized> VirtualMemory for T {}

/// Shorthand: writable physical memory.
pub trait PhysicalWrite: MemoryWrite<Addr = PhysAddr> {}
impl<T: MemoryWrite<Addr = PhysAddr> + ?Sized> PhysicalWrite for T {}

/// Shorthand: writable virtual memory.
pub trait VirtualWrite: MemoryWrite<Addr = VirtAddr> {}
impl<T: MemoryWrite<Addr = VirtAddr> + ?Sized> VirtualWrite for T {}

macro_rules! forward_view {
    ($($ty:ty),*) => {$(
        impl<T: MemoryView + ?Sized> MemoryView for $ty {
            type Addr = T::Addr;
            #[inline]
            fn read_batch(&self, ops: &mut [ReadOp<'_, Self::Addr>]) {
                (**self).read_batch(ops)
            }
            fn metadata(&self) -> MemoryMetadata<Self::Addr> {
                (**self).metadata()
            }
            fn ranges(&self) -> Vec<MemRange<Self::Addr>> {
                (**self).ranges()
            }
        }
        impl<T: MemoryWrite + ?Sized> MemoryWrite for $ty {
            #[inline]
            fn write_batch(&self, ops: &mut [WriteOp<'_, Self::Addr>]) {
                (**self).write_batch(ops)
            }
        }
    )*};
}
forward_view!(&T, Box<T>, Arc<T>);

/// Splits `[addr, addr+len)` at multiples of `chunk` (a power of two), yielding
/// `(address, offset in the buffer, length)` pieces. Used by backends that work per page.
pub fn split_at_boundaries<A: Address>(
    addr: A,
    len: usize,
    chunk: u64,
) -> impl Iterator<Item = (A, usize, usize)> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off >= len {
            return None;
        }
        let a = addr.to_u64().wrapping_add(off as u64);
        let room = chunk - (a & (chunk - 1));
        let n = (len - off).min(usize::try_from(room).unwrap_or(usize::MAX));
        let piece = (A::from_u64(a), off, n);
        off += n;
        Some(piece)
    })
}

/// Records that bytes `[offset, offset+len)` of an operation of `total` bytes failed with
/// `cause`, merging into an existing `Partial` outcome. Use it in backends that split an
/// operation into pieces; call [`finish_partial`] at the end.
pub fn record_failure(
    result: &mut Result<()>,
    total: usize,
    offset: usize,
    len: usize,
    cause: Error,
) {
    let span = crate::error::FailedSpan {
        offset,
        len,
        cause: Box::new(cause),
    };
    match result {
        Err(Error::Partial { failed, .. }) => {
            if let Some(last) = failed.last_mut() {
                if last.offset + last.len == offset && *last.cause == *span.cause {
                    last.len += len;
                    return;
                }
            }
            failed.push(span)
        }
        _ => {
            *result = Err(Error::Partial {
                total,
                failed: vec![span],
            })
        }
    }
}

/// Turns a `Partial` outcome whose single failed span covers the whole operation into
/// that span's plain cause (a read that failed entirely is not "partial").
pub fn finish_partial(result: &mut Result<()>) {
    if let Err(Error::Partial { total, failed }) = result {
        if failed.len() == 1 && failed[0].offset == 0 && failed[0].len == *total {
            let cause =
                std::mem::replace(&mut failed[0].cause, Box::new(Error::Other(String::new())));
            *result = Err(*cause);
        }
    }
}

//! Zero-filling middleware: bytes that no backing holds (gaps in a memory map, addresses
//! past the end) read as zeros instead of failing. **Key decision: only "not backed"
//! failures are forgiven** ([`Error::Gap`], [`Error::OutOfRange`]); I/O errors, corrupt
//! pages and everything else still fail, so zero-filling never hides a broken dump. It is
//! opt-in (the default is that a read touching a gap fails for that operation), and it
//! counts what it filled so tools can say how much of their output is made up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::Error;
use crate::mem::{MemRange, MemoryMetadata, MemoryView, MemoryWrite, ReadOp, WriteOp};

/// Reads unbacked bytes of an inner view as zeros. See the module documentation.
pub struct ZeroFill<M> {
    inner: M,
    filled_ops: AtomicU64,
    filled_bytes: AtomicU64,
}

impl<M: MemoryView> ZeroFill<M> {
    /// Wraps `inner`.
    pub fn new(inner: M) -> Self {
        Self {
            inner,
            filled_ops: AtomicU64::new(0),
            filled_bytes: AtomicU64::new(0),
        }
    }

    /// The wrapped view.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// `(operations, bytes)` that were zero-filled so far.
    pub fn filled(&self) -> (u64, u64) {
        (
            self.filled_ops.load(Relaxed),
            self.filled_bytes.load(Relaxed),
        )
    }
}

/// Whether `e` only says that nothing backs the bytes.
fn unbacked(e: &Error) -> bool {
    matches!(e.root_cause(), Error::Gap { .. } | Error::OutOfRange { .. })
}

impl<M: MemoryView> MemoryView for ZeroFill<M> {
    type Addr = M::Addr;

    fn read_batch(&self, ops: &mut [ReadOp<'_, Self::Addr>]) {
        self.inner.read_batch(ops);
        let (mut n_ops, mut n_bytes) = (0u64, 0u64);
        for op in ops.iter_mut() {
            let Err(e) = &op.result else { continue };
            let filled = match e {
                Error::Partial { failed, .. } if failed.iter().all(|f| unbacked(&f.cause)) => {
                    let mut n = 0;
                    for f in failed {
                        // Spans come from the inner view; clamp rather than trust them.
                        let end = f.offset.saturating_add(f.len).min(op.buf.len());
                        let start = f.offset.min(end);
                        op.buf[start..end].fill(0);
                        n += end - start;
                    }
                    n
                }
                e if unbacked(e) => {
                    op.buf.fill(0);
                    op.buf.len()
                }
                _ => continue,
            };
            op.result = Ok(());
            n_ops += 1;
            n_bytes += filled as u64;
        }
        if n_ops > 0 {
            self.filled_ops.fetch_add(n_ops, Relaxed);
            self.filled_bytes.fetch_add(n_bytes, Relaxed);
        }
    }

    fn metadata(&self) -> MemoryMetadata<Self::Addr> {
        self.inner.metadata()
    }

    fn ranges(&self) -> Vec<MemRange<Self::Addr>> {
        self.inner.ranges()
    }
}

impl<M: MemoryWrite> MemoryWrite for ZeroFill<M> {
    /// Writes are passed through unchanged: a write to a gap still fails.
    fn write_batch(&self, ops: &mut [WriteOp<'_, Self::Addr>]) {
        self.inner.write_batch(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PhysAddr;
    use crate::error::FailedSpan;

    /// Backs `[0x1000, 0x2000)` with 0xAA; `[0x3000, 0x4000)` is an I/O error; everything
    /// else below 0x10000 is a gap, above it out of range. Written here, not taken from a
    /// connector, so the test does not share the code under test.
    struct Holes;

    fn cause(a: u64) -> Option<Error> {
        match a {
            0x1000..=0x1fff => None,
            0x3000..=0x3fff => Some(Error::io("/dev/test", a, std::io::ErrorKind::Other.into())),
            0..=0xffff => Some(Error::Gap { addr: PhysAddr(a) }),
            _ => Some(Error::OutOfRange {
                addr: PhysAddr(a),
                len: 1,
                max: PhysAddr(0xffff),
            }),
        }
    }

    impl MemoryView for Holes {
        type Addr = PhysAddr;
        fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
            for op in ops.iter_mut() {
                let mut failed: Vec<FailedSpan> = Vec::new();
                for (i, b) in op.buf.iter_mut().enumerate() {
                    match cause(op.addr.0 + i as u64) {
                        None => *b = 0xAA,
                        Some(c) => {
                            *b = 0x55; // garbage that must not survive
                            match failed.last_mut() {
                                Some(l)
                                    if l.offset + l.len == i
                                        && std::mem::discriminant(&*l.cause)
                                            == std::mem::discriminant(&c) =>
                                {
                                    l.len += 1
                                }
                                _ => failed.push(FailedSpan {
                                    offset: i,
                                    len: 1,
                                    cause: Box::new(c),
                                }),
                            }
                        }
                    }
                }
                op.result = match failed.len() {
                    0 => Ok(()),
                    1 if failed[0].len == op.buf.len() => Err(*failed.remove(0).cause),
                    _ => Err(Error::Partial {
                        total: op.buf.len(),
                        failed,
                    }),
                };
            }
        }
        fn metadata(&self) -> MemoryMetadata<PhysAddr> {
            MemoryMetadata {
                max_addr: PhysAddr(0xffff),
                real_size: 0x1000,
                readonly: true,
                preferred_batch: 1,
            }
        }
    }

    fn read(mem: &ZeroFill<Holes>, addr: u64, len: usize) -> (Vec<u8>, crate::Result<()>) {
        let mut buf = vec![0x11; len];
        let mut ops = [ReadOp::new(PhysAddr(addr), &mut buf)];
        mem.read_batch(&mut ops);
        let r = std::mem::replace(&mut ops[0].result, Ok(()));
        (buf, r)
    }

    #[test]
    fn gaps_and_past_the_end_read_as_zeros_and_are_counted() {
        let z = ZeroFill::new(Holes);
        let (b, r) = read(&z, 0x0ff0, 0x20);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(&b[..0x10], &[0; 0x10]);
        assert_eq!(&b[0x10..], &[0xAA; 0x10]);
        let (b, r) = read(&z, 0xfff8, 0x10);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(b, vec![0; 0x10]);
        let (b, r) = read(&z, 0x1000, 8);
        assert!(r.is_ok());
        assert_eq!(b, vec![0xAA; 8]);
        assert_eq!(z.filled(), (2, 0x20));
    }

    #[test]
    fn other_errors_still_fail() {
        let z = ZeroFill::new(Holes);
        let (_, r) = read(&z, 0x3000, 8);
        assert!(matches!(r, Err(Error::Io { .. })), "{r:?}");
        // A gap next to an I/O error: the operation still fails, spans intact.
        let (_, r) = read(&z, 0x2ff8, 0x10);
        match r {
            Err(Error::Partial { failed, .. }) => {
                assert_eq!(failed.len(), 2);
                assert!(matches!(*failed[1].cause, Error::Io { .. }));
            }
            other => panic!("expected a partial failure, got {other:?}"),
        }
        assert_eq!(z.filled(), (0, 0));
    }
}

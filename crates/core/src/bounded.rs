//! Allocations sized by target data. **Key decision: a count or length read from a target
//! is a claim, never an allocation size.** Before anything is allocated for it, the claim
//! is checked against what it can cover (the bytes left in a file, the extent of a mapped
//! image, a section's size) and against a hard cap that the caller documents; and big
//! tables are read in chunks of [`CHUNK`] bytes, so memory grows only with bytes that were
//! really read — a hostile count over unreadable memory fails after one chunk.
//!
//! Every parser of memlens that sizes a buffer from target data goes through
//! [`claim_len`] (the check), [`read_table`] (the check plus a chunked read) or
//! [`for_each_chunk`] (a chunked scan that keeps nothing), instead of ad-hoc `min`s.
//!
//! ```
//! use memlens_core::bounded::{claim_len, read_table};
//! use memlens_core::{Error, PhysAddr};
//! # use memlens_core::{MemoryMetadata, MemoryView, ReadOp};
//! # struct Zeros;
//! # impl MemoryView for Zeros {
//! #     type Addr = PhysAddr;
//! #     fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
//! #         for op in ops { op.buf.fill(0); op.result = Ok(()); }
//! #     }
//! #     fn metadata(&self) -> MemoryMetadata<PhysAddr> {
//! #         MemoryMetadata { max_addr: PhysAddr(u64::MAX), real_size: 1 << 30,
//! #                          readonly: true, preferred_batch: 1 }
//! #     }
//! # }
//! // 1000 entries of 24 bytes fit in 1 MiB of room and a 16 MiB cap.
//! assert_eq!(claim_len("symbols", 0x1000u64, 1000, 24, 1 << 20, 16 << 20).unwrap(), 24_000);
//! // A count from a hostile hash table: refused before any allocation.
//! let e = claim_len("symbols", 0x1000u64, 687_194_767, 24, u64::MAX, 16 << 20).unwrap_err();
//! assert!(matches!(e, Error::Limit { .. }));
//! // A table read in chunks from any memory view.
//! let t = read_table(&Zeros, PhysAddr(0x1000), "symbols", 1000, 24, u64::MAX, 16 << 20).unwrap();
//! assert_eq!(t.len(), 24_000);
//! ```

use std::fmt::Display;

use crate::addr::Address;
use crate::error::{Error, Result};
use crate::ext::MemoryViewExt;
use crate::mem::MemoryView;

/// Bytes read per step by [`read_table`] and [`for_each_chunk`]: what a hostile claim can
/// make memlens allocate before the first failed read stops it.
pub const CHUNK: usize = 1 << 20;

/// The byte length of `count` elements of `elem_size` bytes claimed by target data at
/// `at`, if it fits in `room` (the bytes the claim can cover) and in `cap` (the caller's
/// hard limit for this kind of table).
///
/// Errors: [`Error::Limit`] when the length overflows or exceeds `cap` (the data may be
/// real but is beyond what memlens reads); [`Error::Corrupt`] when it exceeds `room` (the
/// data contradicts itself). Both name `what`, `at` and the numbers.
pub fn claim_len(
    what: &str,
    at: impl Display,
    count: u64,
    elem_size: u64,
    room: u64,
    cap: u64,
) -> Result<usize> {
    let too_big = |asked: String| Error::Limit {
        what: format!("{what} at {at}: {asked}"),
        limit: cap,
    };
    let len = count
        .checked_mul(elem_size)
        .ok_or_else(|| too_big(format!("{count} entries of {elem_size} bytes overflow")))?;
    if len > cap {
        return Err(too_big(format!(
            "{count} entries of {elem_size} bytes ({len} bytes) asked"
        )));
    }
    if len > room {
        return Err(Error::Corrupt {
            location: at.to_string(),
            what: format!(
                "{what}: {count} entries of {elem_size} bytes ({len} bytes) do not fit in the {room} bytes available"
            ),
        });
    }
    usize::try_from(len).map_err(|_| too_big(format!("{len} bytes do not fit in memory")))
}

/// Checks a claim with [`claim_len`], then reads it at `addr` in chunks of [`CHUNK`]
/// bytes: the vector grows only as reads succeed, and the first failed chunk ends the read
/// with its error (in context: which table, where, how far it got).
pub fn read_table<M: MemoryView + ?Sized>(
    mem: &M,
    addr: M::Addr,
    what: &str,
    count: u64,
    elem_size: u64,
    room: u64,
    cap: u64,
) -> Result<Vec<u8>> {
    let len = claim_len(what, addr, count, elem_size, room, cap)?;
    let mut out = Vec::with_capacity(len.min(CHUNK));
    for_each_chunk(mem, addr, len, |chunk| {
        out.extend_from_slice(chunk);
        Ok(())
    })
    .map_err(|e| e.context(format!("reading {what} ({len} bytes at {addr})")))?;
    Ok(out)
}

/// Reads `len` bytes at `addr` one chunk of at most [`CHUNK`] bytes at a time and hands
/// each to `f`, reusing one buffer: a scan over a large table that keeps only what `f`
/// keeps. Stops at the first failed read or the first error of `f`. `len` must already be
/// bounded by the caller (it is a loop bound, not an allocation).
pub fn for_each_chunk<M: MemoryView + ?Sized>(
    mem: &M,
    addr: M::Addr,
    len: usize,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0usize;
    while done < len {
        let n = (len - done).min(CHUNK);
        let at = M::Addr::from_u64(addr.to_u64().wrapping_add(done as u64));
        let chunk = &mut buf[..n];
        mem.read_into(at, chunk)?;
        f(chunk)?;
        done += n;
    }
    Ok(())
}

/// A capacity hint for a vector whose final length a target claims: the claim, but never
/// more than `cap` elements. For `Vec::with_capacity` where the vector then grows with
/// what is really found (a walk that may end early).
pub fn capacity_hint(claimed: u64, cap: usize) -> usize {
    usize::try_from(claimed).map_or(cap, |c| c.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryMetadata, PhysAddr, ReadOp};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Readable below `limit`; counts the bytes it was asked for.
    struct Until {
        limit: u64,
        asked: AtomicUsize,
    }

    impl MemoryView for Until {
        type Addr = PhysAddr;
        fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
            for op in ops {
                self.asked.fetch_add(op.buf.len(), Ordering::Relaxed);
                op.result = if op.addr.0 + op.buf.len() as u64 <= self.limit {
                    op.buf.fill(0xab);
                    Ok(())
                } else {
                    Err(Error::Gap { addr: op.addr })
                };
            }
        }
        fn metadata(&self) -> MemoryMetadata<PhysAddr> {
            MemoryMetadata {
                max_addr: PhysAddr(u64::MAX),
                real_size: self.limit,
                readonly: true,
                preferred_batch: 1,
            }
        }
    }

    #[test]
    fn overflow_cap_and_room_are_distinct_errors() {
        let e = claim_len("t", 0, u64::MAX, 2, u64::MAX, u64::MAX).unwrap_err();
        assert!(e.to_string().contains("overflow"), "{e}");
        let e = claim_len("t", 0, 10, 10, 1000, 99).unwrap_err();
        assert!(matches!(e, Error::Limit { limit: 99, .. }), "{e}");
        let e = claim_len("t", "file offset 0x40", 10, 10, 99, 1000).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("file offset 0x40"), "{e}");
        assert_eq!(claim_len("t", 0, 10, 10, 100, 100).unwrap(), 100);
        assert_eq!(claim_len("t", 0, 0, 10, 0, 0).unwrap(), 0);
    }

    /// A claim within the cap over memory that ends early: one chunk is read past the end,
    /// never the whole claim, and the error says which table and how far.
    #[test]
    fn chunked_read_stops_at_the_first_failure() {
        let m = Until {
            limit: CHUNK as u64 + 100,
            asked: AtomicUsize::new(0),
        };
        let e = read_table(
            &m,
            PhysAddr(0),
            "big table",
            64,
            CHUNK as u64,
            u64::MAX,
            u64::MAX,
        )
        .unwrap_err();
        assert!(e.to_string().contains("big table"), "{e}");
        assert_eq!(m.asked.load(Ordering::Relaxed), 2 * CHUNK);
        let ok = read_table(
            &m,
            PhysAddr(0),
            "t",
            CHUNK as u64 + 100,
            1,
            u64::MAX,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(ok.len(), CHUNK + 100);
        assert!(ok.iter().all(|&b| b == 0xab));
    }

    #[test]
    fn capacity_hints_are_capped() {
        assert_eq!(capacity_hint(5, 10), 5);
        assert_eq!(capacity_hint(u64::MAX, 10), 10);
    }
}

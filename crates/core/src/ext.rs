//! Provided helpers on every [`MemoryView`]: single reads, typed reads of plain-old-data,
//! bounded strings, and a `Read + Seek` cursor. They are all built on `read_batch`, so a
//! backend implements one method and gets them all.
//!
//! Typed reads use `bytemuck::Pod`: a struct deriving `Pod` is valid for any bit pattern,
//! which is exactly the guarantee needed for bytes that came from a hostile target. We chose
//! bytemuck over zerocopy for its smaller API (one derive, `bytes_of_mut`) — zerocopy's
//! extra guarantees (layout checks for references into buffers) are not needed when every
//! typed read copies into an owned value.

use std::io::{self, Read, Seek, SeekFrom};

use bytemuck::{Pod, Zeroable};

use crate::addr::Address;
use crate::error::{Error, Result};
use crate::mem::{MemoryView, MemoryWrite, ReadOp, WriteOp};

/// Helpers on top of [`MemoryView::read_batch`]; implemented for every view.
///
/// Typed values, a pointer followed to a C string, and a cursor, on a small in-memory
/// view (any connector, process or virtual view works the same way):
///
/// ```
/// use std::io::{Read, Seek, SeekFrom};
/// use memlens_core::bytemuck::{Pod, Zeroable};
/// use memlens_core::{MemoryViewExt, PhysAddr};
/// # use memlens_core::{Error, MemoryMetadata, MemoryView, ReadOp};
/// # /// Bytes in a vector at physical address 0.
/// # struct Ram(Vec<u8>);
/// # impl MemoryView for Ram {
/// #     type Addr = PhysAddr;
/// #     fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
/// #         for op in ops {
/// #             let start = op.addr.0 as usize;
/// #             op.result = match self.0.get(start..start + op.buf.len()) {
/// #                 Some(src) => {
/// #                     op.buf.copy_from_slice(src);
/// #                     Ok(())
/// #                 }
/// #                 None => Err(Error::OutOfRange { addr: op.addr, len: op.buf.len(),
/// #                                                max: PhysAddr(self.0.len() as u64 - 1) }),
/// #             };
/// #         }
/// #     }
/// #     fn metadata(&self) -> MemoryMetadata<PhysAddr> {
/// #         MemoryMetadata { max_addr: PhysAddr(self.0.len() as u64 - 1),
/// #                          real_size: self.0.len() as u64, readonly: true, preferred_batch: 1 }
/// #     }
/// # }
/// # let mut ram = vec![0u8; 0x2000];
/// # ram[0x100..0x108].copy_from_slice(&0x1000u64.to_le_bytes()); // pointer to the header
/// # ram[0x1000..0x1004].copy_from_slice(&7u32.to_le_bytes()); // header.pid
/// # ram[0x1004..0x1008].copy_from_slice(&2u32.to_le_bytes()); // header.flags
/// # ram[0x1008..0x1010].copy_from_slice(&0x1800u64.to_le_bytes()); // header.name
/// # ram[0x1800..0x1805].copy_from_slice(b"init\0");
/// # let mem = Ram(ram);
/// // A structure of the target, read in one piece (any bit pattern is valid for `Pod`).
/// #[derive(Clone, Copy, Pod, Zeroable)]
/// #[bytemuck(crate = "memlens_core::bytemuck")] // no direct bytemuck dependency needed
/// #[repr(C)]
/// struct Header {
///     pid: u32,
///     flags: u32,
///     name: u64, // a pointer to a NUL-terminated string
/// }
///
/// let ptr = mem.read_u64(PhysAddr(0x100))?; // a pointer...
/// let header: Header = mem.read_pod(PhysAddr(ptr))?; // ...followed
/// assert_eq!((header.pid, header.flags), (7, 2));
/// assert_eq!(mem.read_u32(PhysAddr(ptr + 4))?, 2);
/// assert_eq!(mem.read_cstr(PhysAddr(header.name), 64)?, "init"); // at most 64 bytes
/// assert_eq!(mem.read_vec(PhysAddr(header.name), 4)?, b"init");
///
/// // `std::io::Read + Seek`: hand memory to any parser that takes a reader.
/// let mut cursor = mem.cursor();
/// cursor.seek(SeekFrom::Start(0x1800))?;
/// let mut name = [0u8; 4];
/// cursor.read_exact(&mut name)?;
/// assert_eq!(&name, b"init");
///
/// // Reads past the end fail with an error naming the address (never a panic).
/// assert!(mem.read_u64(PhysAddr(0x1ffc)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait MemoryViewExt: MemoryView {
    /// Reads exactly `buf.len()` bytes at `addr`. A partial read is an error (the valid
    /// bytes are still written into `buf`).
    fn read_into(&self, addr: Self::Addr, buf: &mut [u8]) -> Result<()> {
        let mut ops = [ReadOp::new(addr, buf)];
        self.read_batch(&mut ops);
        let [op] = ops;
        op.result
    }

    /// Reads `len` bytes at `addr` into a new vector.
    fn read_vec(&self, addr: Self::Addr, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_into(addr, &mut v)?;
        Ok(v)
    }

    /// Reads a plain-old-data value (any bit pattern valid) at `addr`.
    fn read_pod<T: Pod>(&self, addr: Self::Addr) -> Result<T> {
        let mut v = T::zeroed();
        self.read_into(addr, bytemuck::bytes_of_mut(&mut v))?;
        Ok(v)
    }

    /// Reads a little-endian `u64`.
    fn read_u64(&self, addr: Self::Addr) -> Result<u64> {
        self.read_pod::<[u8; 8]>(addr).map(u64::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    fn read_u32(&self, addr: Self::Addr) -> Result<u32> {
        self.read_pod::<[u8; 4]>(addr).map(u32::from_le_bytes)
    }

    /// Reads a NUL-terminated byte string of at most `max` bytes (the terminator not
    /// included). Reads in chunks that never cross a 4 KiB boundary, so a string that ends
    /// just before an unmapped page is still read. Invalid UTF-8 is replaced (lossy).
    fn read_cstr(&self, addr: Self::Addr, max: usize) -> Result<String> {
        let bytes = read_terminated(self, addr, max, 1)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Reads a NUL-terminated UTF-16LE string of at most `max_chars` code units.
    fn read_utf16(&self, addr: Self::Addr, max_chars: usize) -> Result<String> {
        let bytes = read_terminated(self, addr, max_chars.saturating_mul(2), 2)?;
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(String::from_utf16_lossy(&units))
    }

    /// A `Read + Seek` cursor over this view, starting at address 0.
    fn cursor(&self) -> MemoryCursor<'_, Self> {
        MemoryCursor { mem: self, pos: 0 }
    }
}

impl<T: MemoryView + ?Sized> MemoryViewExt for T {}

/// Helpers on top of [`MemoryWrite::write_batch`]; implemented for every writable view.
pub trait MemoryWriteExt: MemoryWrite {
    /// Writes all of `buf` at `addr`.
    fn write_all_at(&self, addr: Self::Addr, buf: &[u8]) -> Result<()> {
        let mut ops = [WriteOp::new(addr, buf)];
        self.write_batch(&mut ops);
        let [op] = ops;
        op.result
    }

    /// Writes a plain-old-data value at `addr`.
    fn write_pod<T: Pod>(&self, addr: Self::Addr, v: &T) -> Result<()> {
        self.write_all_at(addr, bytemuck::bytes_of(v))
    }
}

impl<T: MemoryWrite + ?Sized> MemoryWriteExt for T {}

/// Reads units of `unit` bytes until a zero unit or `max` bytes.
fn read_terminated<M: MemoryView + ?Sized>(
    mem: &M,
    addr: M::Addr,
    max: usize,
    unit: usize,
) -> Result<Vec<u8>> {
    const CHUNK: u64 = 4096;
    let mut out = Vec::new();
    let mut pos = addr.to_u64();
    while out.len() < max {
        let room = (CHUNK - (pos & (CHUNK - 1))) as usize;
        let n = room.min(max - out.len()).min(256);
        let mut buf = vec![0u8; n];
        match mem.read_into(M::Addr::from_u64(pos), &mut buf) {
            Ok(()) => {}
            // The first chunk must be readable; later chunks may fail (string ends there).
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => break,
        }
        let mut i = 0;
        while i + unit <= buf.len() {
            if buf[i..i + unit].iter().all(|b| *b == 0) {
                out.extend_from_slice(&buf[..i]);
                return Ok(out);
            }
            i += unit;
        }
        out.extend_from_slice(&buf[..i]);
        pos = pos.wrapping_add(i as u64);
        if i == 0 {
            break;
        }
    }
    Ok(out)
}

/// A `std::io::Read + Seek` cursor over a memory view. Position = address. A read that
/// fails is reported as an `io::Error` wrapping the memory error.
pub struct MemoryCursor<'a, M: ?Sized> {
    mem: &'a M,
    pos: u64,
}

impl<M: MemoryView + ?Sized> Read for MemoryCursor<'_, M> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let room = u64::MAX - self.pos;
        let n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(0);
        }
        self.mem
            .read_into(M::Addr::from_u64(self.pos), &mut buf[..n])
            .map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<M: MemoryView + ?Sized> Seek for MemoryCursor<'_, M> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self
                .mem
                .metadata()
                .max_addr
                .to_u64()
                .checked_add(1)
                .and_then(|e| e.checked_add_signed(d)),
        };
        let new = new.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before 0 or past 2^64")
        })?;
        self.pos = new;
        Ok(new)
    }
}

/// Reads every range of `ops` one by one; a reference behaviour used by tests and by
/// backends that have no faster batch path.
pub fn read_each<M: MemoryView + ?Sized>(mem: &M, ops: &mut [ReadOp<'_, M::Addr>]) {
    for op in ops.iter_mut() {
        let mut one = [ReadOp::new(op.addr, &mut *op.buf)];
        mem.read_batch(&mut one);
        let [o] = one;
        op.result = o.result;
    }
}

/// Marks all operations of a batch failed with clones of `err`.
pub fn fail_all<A>(ops: &mut [ReadOp<'_, A>], err: &Error) {
    for op in ops {
        op.result = Err(err.clone());
    }
}

// Keep Zeroable in scope for `T::zeroed()` in generic code.
#[allow(unused_imports, reason = "T::zeroed() needs the trait in scope")]
use Zeroable as _;

//! [`ProcessMemory`]: another process's virtual memory through `process_vm_readv` and
//! `process_vm_writev`. **Key decision: one vectored system call per batch** (up to
//! `IOV_MAX` = 1024 operations per call), so 256 small reads cost one kernel entry instead
//! of 256 `pread`s on `/proc/PID/mem`.
//!
//! The kernel stops a vectored transfer at the first page it cannot access and returns the
//! bytes moved so far (or an error when not even the first byte moved). The reader then
//! knows exactly which operation hit the bad page: the operations before it are complete;
//! that one is redone page by page (so each unreadable page fails only its own bytes, with
//! a [`memlens_core::Error::Partial`] outcome listing them); the next call resumes with the
//! operation after it. Errors that are not about one address — the process exited
//! (`ESRCH`), access denied (`EPERM`/`EACCES`) — fail every remaining operation with the
//! same explanation, and never panic.
//!
//! Writes use `process_vm_writev`, which (unlike writing `/proc/PID/mem`) honours page
//! protections: writing a read-only page (code) fails for that page.
//!
//! A process is named by its pid; if it exits and the pid is reused, the view reads the
//! new process (the kernel offers no race-free handle for these calls).

use memlens_core::mem::{record_failure, split_at_boundaries};
use memlens_core::{
    Error, MemRange, MemoryMetadata, MemoryView, MemoryWrite, ReadOp, VirtAddr, WriteOp,
};

use crate::error::access_hint;

/// Most iovecs one call takes (Linux `UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;
/// Page size used for the per-page fallback.
const PAGE: u64 = 4096;
/// Highest user-space address on x86-64 with 5-level paging (inclusive); the kernel
/// rejects anything above it anyway.
const USER_MAX: u64 = 0x00ff_ffff_ffff_ffff;

/// Direction of a transfer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    Read,
    Write,
}

/// The virtual memory of one process of the host. See the module documentation.
#[derive(Debug, Clone)]
pub struct ProcessMemory {
    pid: u32,
    writable: bool,
}

/// One piece of work: remote address, local buffer pointer and length.
#[derive(Clone, Copy)]
struct Span {
    remote: u64,
    local: *mut u8,
    len: usize,
}

impl ProcessMemory {
    /// A view of process `pid`. `writable` enables [`MemoryWrite`]; without it writes fail
    /// with [`Error::ReadOnly`]. Nothing is checked here: a process that does not exist
    /// makes every read fail.
    pub fn new(pid: u32, writable: bool) -> Self {
        Self { pid, writable }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// One system call over `spans` (at most [`IOV_MAX`]). Returns bytes moved or errno.
    fn syscall(&self, dir: Dir, spans: &[Span]) -> Result<usize, i32> {
        let mut local: Vec<libc::iovec> = Vec::with_capacity(spans.len());
        let mut remote: Vec<libc::iovec> = Vec::with_capacity(spans.len());
        for s in spans {
            local.push(libc::iovec {
                iov_base: s.local.cast(),
                iov_len: s.len,
            });
            remote.push(libc::iovec {
                iov_base: s.remote as *mut libc::c_void,
                iov_len: s.len,
            });
        }
        let n = local.len() as libc::c_ulong;
        let pid = self.pid as libc::pid_t;
        // SAFETY: every local iovec points into a buffer the caller holds exclusively (for
        // reads: `&mut [u8]` of an op; for writes: `&[u8]`, only read by the kernel) and
        // alive for this call; remote addresses are only interpreted by the kernel, which
        // validates them against the target's address space.
        let r = unsafe {
            match dir {
                Dir::Read => libc::process_vm_readv(pid, local.as_ptr(), n, remote.as_ptr(), n, 0),
                Dir::Write => {
                    libc::process_vm_writev(pid, local.as_ptr(), n, remote.as_ptr(), n, 0)
                }
            }
        };
        if r < 0 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(r as usize)
        }
    }

    /// The error for `errno` at `addr`.
    fn error(&self, dir: Dir, errno: i32, addr: u64) -> Error {
        let call = match dir {
            Dir::Read => "process_vm_readv",
            Dir::Write => "process_vm_writev",
        };
        let io = std::io::Error::from_raw_os_error(errno);
        let base = Error::io(format!("process {} memory ({call})", self.pid), addr, io);
        match errno {
            libc::EPERM | libc::EACCES => base.context(access_hint(self.pid)),
            libc::ESRCH => base.context(format!("process {} has exited", self.pid)),
            _ => base,
        }
    }

    /// Runs all `spans` (one per operation, in order), storing each outcome in
    /// `results[i]`. Failed bytes of reads are zeroed.
    fn transfer(&self, dir: Dir, spans: &[Span], results: &mut [Result<(), Error>]) {
        let mut i = 0;
        while i < spans.len() {
            // Skip empty operations: they succeed trivially.
            if spans[i].len == 0 {
                results[i] = Ok(());
                i += 1;
                continue;
            }
            let end = (i + IOV_MAX).min(spans.len());
            let chunk = &spans[i..end];
            match self.syscall(dir, chunk) {
                Ok(mut moved) => {
                    // Operations fully covered by `moved` succeeded.
                    let mut j = i;
                    while j < end && moved >= spans[j].len {
                        moved -= spans[j].len;
                        results[j] = Ok(());
                        j += 1;
                    }
                    if j == end {
                        i = end;
                        continue;
                    }
                    // Operation j stopped after `moved` bytes: redo it page by page.
                    results[j] = self.per_page(dir, spans[j], moved);
                    i = j + 1;
                }
                Err(errno) if errno == libc::EFAULT || errno == libc::EIO => {
                    // Not even the first byte of op i moved.
                    results[i] = self.per_page(dir, spans[i], 0);
                    i += 1;
                }
                Err(errno) => {
                    // A whole-process error (exited, denied, invalid): fail the rest.
                    for (k, r) in results.iter_mut().enumerate().take(spans.len()).skip(i) {
                        *r = if spans[k].len == 0 {
                            Ok(())
                        } else {
                            Err(self.error(dir, errno, spans[k].remote))
                        };
                    }
                    return;
                }
            }
        }
    }

    /// Redoes one operation page by page from byte `done` (the bytes before it moved),
    /// recording each failing page as a failed span.
    fn per_page(&self, dir: Dir, span: Span, done: usize) -> Result<(), Error> {
        let mut result = Ok(());
        let start = span.remote.wrapping_add(done as u64);
        for (addr, off, len) in split_at_boundaries(VirtAddr(start), span.len - done, PAGE) {
            let off = done + off;
            let piece = Span {
                remote: addr.0,
                // SAFETY: `off + len <= span.len`, inside the caller's buffer.
                local: unsafe { span.local.add(off) },
                len,
            };
            let outcome = match self.syscall(dir, &[piece]) {
                Ok(n) if n == len => continue,
                Ok(_) => libc::EFAULT,
                Err(e) => e,
            };
            if dir == Dir::Read {
                // SAFETY: `piece.local` points `len` bytes into the caller's buffer
                // (`off + len <= span.len`), which a read holds mutably.
                unsafe { std::ptr::write_bytes(piece.local, 0, len) };
            }
            let err = self.error(dir, outcome, addr.0);
            record_failure(&mut result, span.len, off, len, err);
        }
        memlens_core::mem::finish_partial(&mut result);
        result
    }

    fn check_range(&self, addr: VirtAddr, len: usize) -> Option<Error> {
        let last = addr.0.checked_add((len as u64).saturating_sub(1));
        match last {
            Some(l) if len == 0 || l <= USER_MAX => None,
            _ => Some(Error::Unsupported {
                what: format!(
                    "access {addr}+{len:#x} of process {}: beyond the user address space (ends at {USER_MAX:#x})",
                    self.pid
                ),
            }),
        }
    }
}

impl MemoryView for ProcessMemory {
    type Addr = VirtAddr;

    fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
        let mut spans = Vec::with_capacity(ops.len());
        let mut idx = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter_mut().enumerate() {
            if let Some(e) = self.check_range(op.addr, op.buf.len()) {
                op.buf.fill(0);
                op.result = Err(e);
                continue;
            }
            spans.push(Span {
                remote: op.addr.0,
                local: op.buf.as_mut_ptr(),
                len: op.buf.len(),
            });
            idx.push(i);
        }
        let mut results = vec![Ok(()); spans.len()];
        self.transfer(Dir::Read, &spans, &mut results);
        for (r, i) in results.into_iter().zip(idx) {
            if let Err(Error::Io { .. } | Error::Context { .. }) = &r {
                ops[i].buf.fill(0);
            }
            ops[i].result = r;
        }
    }

    fn metadata(&self) -> MemoryMetadata<VirtAddr> {
        MemoryMetadata {
            max_addr: VirtAddr(USER_MAX),
            real_size: self.ranges().iter().map(|r| r.len).sum(),
            readonly: !self.writable,
            preferred_batch: IOV_MAX,
        }
    }

    /// The readable mappings of `/proc/PID/maps` (empty when the process is gone).
    fn ranges(&self) -> Vec<MemRange<VirtAddr>> {
        crate::process::read_maps(self.pid)
            .map(|m| {
                m.into_iter()
                    .filter(|l| l.map.perms.read)
                    .map(|l| MemRange::new(l.map.start, l.map.end.0 - l.map.start.0))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl MemoryWrite for ProcessMemory {
    fn write_batch(&self, ops: &mut [WriteOp<'_, VirtAddr>]) {
        if !self.writable {
            for op in ops.iter_mut() {
                op.result = Err(Error::ReadOnly {
                    what: format!("process {} (the native OS was opened read-only)", self.pid),
                });
            }
            return;
        }
        let mut spans = Vec::with_capacity(ops.len());
        let mut idx = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter_mut().enumerate() {
            if let Some(e) = self.check_range(op.addr, op.buf.len()) {
                op.result = Err(e);
                continue;
            }
            spans.push(Span {
                remote: op.addr.0,
                // The kernel only reads local buffers for a write.
                local: op.buf.as_ptr().cast_mut(),
                len: op.buf.len(),
            });
            idx.push(i);
        }
        let mut results = vec![Ok(()); spans.len()];
        self.transfer(Dir::Write, &spans, &mut results);
        for (r, i) in results.into_iter().zip(idx) {
            ops[i].result = r;
        }
    }
}

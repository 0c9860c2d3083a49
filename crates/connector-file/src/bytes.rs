//! Bounds-checked field access on untrusted file bytes. **Key decision: every read names
//! the field and its file offset**, so a truncated or lying header produces an error such
//! as "truncated at offset 0x1d0: kdump sub-header phys_base needs 8 bytes" instead of a
//! panic or a bare "invalid data".

use std::path::Path;

use crate::error::FileError;

/// A window of untrusted bytes that starts at file offset `base`.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    base: u64,
    path: &'a Path,
    big_endian: bool,
}

impl<'a> Bytes<'a> {
    /// Little-endian view of `data`, whose first byte is at file offset `base`.
    pub(crate) fn new(data: &'a [u8], base: u64, path: &'a Path) -> Self {
        Self {
            data,
            base,
            path,
            big_endian: false,
        }
    }

    /// The same view with the given byte order.
    pub(crate) fn endian(mut self, big: bool) -> Self {
        self.big_endian = big;
        self
    }

    pub(crate) fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// File offset of byte `off` of this view.
    pub(crate) fn file_offset(&self, off: u64) -> u64 {
        self.base.saturating_add(off)
    }

    /// Error: `what` at `off` needs `needed` bytes.
    pub(crate) fn truncated(&self, off: u64, what: &str, needed: u64) -> FileError {
        FileError::Truncated {
            path: self.path.to_path_buf(),
            offset: self.file_offset(off),
            what: what.to_string(),
            needed,
        }
    }

    /// Error: field `field` at `off` is wrong because `why`.
    pub(crate) fn bad(&self, off: u64, field: &str, why: impl Into<String>) -> FileError {
        FileError::BadField {
            path: self.path.to_path_buf(),
            offset: self.file_offset(off),
            field: field.to_string(),
            why: why.into(),
        }
    }

    /// Error: `what` at `off` asks `asked`, beyond the cap `cap` (`limit`; see
    /// [`limits`](crate::limits)).
    pub(crate) fn limit(
        &self,
        off: u64,
        what: &str,
        asked: impl std::fmt::Display,
        cap: &'static str,
        limit: u64,
    ) -> FileError {
        crate::limits::limit(self.path, self.file_offset(off), what, asked, cap, limit)
    }

    /// `len` bytes at `off`, or a `Truncated` error naming `what`.
    pub(crate) fn slice(&self, off: u64, len: u64, what: &str) -> Result<&'a [u8], FileError> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= self.len())
            .ok_or_else(|| self.truncated(off, what, len))?;
        // Both bounds were checked against the length just above.
        Ok(&self.data[off as usize..end as usize])
    }

    /// A sub-view of `len` bytes at `off`.
    pub(crate) fn sub(&self, off: u64, len: u64, what: &str) -> Result<Bytes<'a>, FileError> {
        Ok(Bytes {
            data: self.slice(off, len, what)?,
            base: self.file_offset(off),
            path: self.path,
            big_endian: self.big_endian,
        })
    }

    fn array<const N: usize>(&self, off: u64, what: &str) -> Result<[u8; N], FileError> {
        let s = self.slice(off, N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&self, off: u64, what: &str) -> Result<u8, FileError> {
        Ok(self.array::<1>(off, what)?[0])
    }

    pub(crate) fn u16(&self, off: u64, what: &str) -> Result<u16, FileError> {
        let a = self.array(off, what)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        })
    }

    pub(crate) fn u32(&self, off: u64, what: &str) -> Result<u32, FileError> {
        let a = self.array(off, what)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    pub(crate) fn u64(&self, off: u64, what: &str) -> Result<u64, FileError> {
        let a = self.array(off, what)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        })
    }

    pub(crate) fn i64(&self, off: u64, what: &str) -> Result<i64, FileError> {
        Ok(self.u64(off, what)? as i64)
    }

    /// A NUL-terminated string of at most `max` bytes at `off` (lossy UTF-8).
    pub(crate) fn cstr(&self, off: u64, max: u64, what: &str) -> Result<String, FileError> {
        let s = self.slice(off, max, what)?;
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Ok(String::from_utf8_lossy(&s[..end]).into_owned())
    }
}

/// Little-endian u64 at `at` of a slice the caller sized (no error context needed).
#[inline]
pub(crate) fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Little-endian u32 at `at`.
#[inline]
pub(crate) fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

//! The plugin ABI: `#[repr(C)]` descriptors and vtables ([`types`]), the adapters that
//! turn Rust objects into vtables when exporting ([`export`]) and vtables back into Rust
//! trait objects when importing ([`import`]).
//!
//! **Key decision: the ABI is a layer, not a coat of paint.** Core traits stay plain Rust;
//! this module is the only place that knows about `extern "C"`. Every exported function
//! runs its body under `catch_unwind`, so a panic inside a plugin becomes
//! [`STATUS_PANIC`] and an error on the host side.
//!
//! # The layout fingerprint
//!
//! [`layout_fingerprint`] is an FNV-1a hash, computed at compile time, of: the ABI version;
//! the pointer width and byte order; the size, alignment and every field offset of every
//! type in [`types`]; the plugin kind; and this crate's version string (which pins the
//! JSON schema of the listing types of `memlens-core` that cross as JSON). It does **not**
//! cover the rustc version: no Rust-layout type ever crosses the boundary (only the
//! `#[repr(C)]` types above, UTF-8 strings and JSON), so plugins built by another rustc
//! are fine. Host and plugin each compute it from their own copy of this crate; the
//! analyzer compares the plugin's (read from the file) with the host's before `dlopen`,
//! and the loader compares again in memory before the first call.

pub mod export;
pub mod import;
mod reports;
pub mod types;

pub use reports::{MAX_CPUS, MAX_SPANS};

use std::any::Any;
use std::ffi::c_void;
use std::mem::{align_of, offset_of, size_of};

pub use types::*;

const fn fnv(mut h: u64, v: u64) -> u64 {
    let b = v.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        h ^= b[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

const fn fnv_str(mut h: u64, s: &str) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        h ^= b[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    fnv(h, b.len() as u64)
}

macro_rules! layout {
    ($h:ident, $t:ty $(, $f:ident)*) => {{
        $h = fnv($h, size_of::<$t>() as u64);
        $h = fnv($h, align_of::<$t>() as u64);
        $( $h = fnv($h, offset_of!($t, $f) as u64); )*
    }};
}

/// The layout fingerprint of plugins of `kind` built against this crate (see the module
/// documentation for what it covers).
pub const fn layout_fingerprint(kind: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    h = fnv(h, ABI_VERSION as u64);
    h = fnv(h, kind as u64);
    h = fnv(h, usize::BITS as u64);
    h = fnv(h, cfg!(target_endian = "little") as u64);
    h = fnv_str(h, env!("CARGO_PKG_VERSION"));
    layout!(
        h,
        PluginHeader,
        magic,
        abi_version,
        kind,
        header_size,
        input,
        fingerprint,
        name,
        version,
        description
    );
    layout!(h, StrRef, ptr, len);
    layout!(h, StrSink, ctx, write);
    layout!(h, LogRecord, level, line, target, message, file);
    layout!(h, HostContext, size, max_level, log);
    layout!(h, CReadOp, addr, buf, len);
    layout!(h, CWriteOp, addr, buf, len);
    layout!(h, CError, code, level, a, b, c, msg, msg2);
    layout!(h, ErrReport, ctx, report);
    layout!(h, RangeSink, ctx, push);
    layout!(
        h,
        CMetadata,
        max_addr,
        real_size,
        preferred_batch,
        readonly,
        reserved
    );
    layout!(
        h,
        MemVtable,
        drop,
        read_batch,
        write_batch,
        metadata,
        ranges
    );
    layout!(h, MemObj, this, vt);
    layout!(h, CpuVtable, drop, cpu_count, registers);
    layout!(h, CpuObj, this, vt);
    layout!(h, PhysTargetObj, memory, writer, cpu);
    layout!(
        h,
        ProcVtable,
        drop,
        info,
        memory,
        writer,
        maps,
        modules,
        module_details
    );
    layout!(h, ProcObj, this, vt);
    layout!(
        h,
        OsVtable,
        drop,
        info,
        processes,
        process,
        kernel_modules,
        kernel_memory,
        physical
    );
    layout!(h, OsObj, this, vt);
    layout!(h, ConnectorDescriptor, header, help, targets, create);
    layout!(h, OsDescriptor, header, help, targets, create);
    h
}

/// The fingerprint of the *Rust* layout of core's `ReadOp` (for the in-place read fast
/// path, [`MemVtable::read_batch_native`]): the rustc version string (`rustc -vV`, from the
/// build script), the target, a hash of the core sources that define `ReadOp`, `Error`
/// and the address types ([`memlens_core::SOURCE_HASH`]), and the sizes and field offsets of those types. Rust does not
/// promise layout stability across compilations, but the same compiler on the same type
/// definitions lays them out the same way; anything else changes this value and the
/// portable path is used.
pub const fn native_fingerprint() -> u64 {
    use memlens_core::{PhysAddr, ReadOp, VirtAddr};
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    h = fnv_str(h, env!("MEMLENS_RUSTC_VERSION"));
    h = fnv_str(h, std::env::consts::ARCH);
    h = fnv_str(h, std::env::consts::OS);
    h = fnv(h, memlens_core::SOURCE_HASH);
    layout!(h, ReadOp<'static, PhysAddr>, addr, buf, result);
    layout!(h, ReadOp<'static, VirtAddr>, addr, buf, result);
    layout!(h, memlens_core::Error);
    layout!(h, memlens_core::Result<()>);
    h
}

/// [`native_fingerprint`] of this build, evaluated at compile time.
pub const NATIVE_FINGERPRINT: u64 = native_fingerprint();

/// Codes of [`CError::code`] and the fields each variant uses.
pub mod errcode {
    /// Anything else: `msg` is the message.
    pub const OTHER: u32 = 0;
    /// `OutOfRange`: `a` = addr, `b` = len, `c` = max.
    pub const OUT_OF_RANGE: u32 = 1;
    /// `Gap`: `a` = addr.
    pub const GAP: u32 = 2;
    /// `NotPresent`: `a` = va, `b` = root, `level`.
    pub const NOT_PRESENT: u32 = 3;
    /// `BadEntry`: `a` = va, `b` = root, `c` = entry, `level`, `msg` = why.
    pub const BAD_ENTRY: u32 = 4;
    /// `NonCanonical`: `a` = va, `msg` = arch.
    pub const NON_CANONICAL: u32 = 5;
    /// `Io`: `msg` = path, `a` = offset, `msg2` = message.
    pub const IO: u32 = 6;
    /// `ReadOnly`: `msg` = what.
    pub const READ_ONLY: u32 = 7;
    /// `Unsupported`: `msg` = what.
    pub const UNSUPPORTED: u32 = 8;
    /// `Corrupt`: `msg` = location, `msg2` = what.
    pub const CORRUPT: u32 = 9;
    /// `Limit`: `msg` = what, `a` = limit.
    pub const LIMIT: u32 = 10;
}

/// Builds a descriptor header at compile time. Panics (a compile error in a `static`) if
/// `name` is not `[a-z0-9_]{1,31}`, `version` does not fit, or `symbol_suffix` (the part of
/// the exported symbol after the prefix) is not `name` in upper case.
pub const fn make_header(
    kind: u32,
    input: u32,
    name: &str,
    version: &str,
    description: &str,
    symbol_suffix: &str,
) -> PluginHeader {
    let n = name.as_bytes();
    let s = symbol_suffix.as_bytes();
    assert!(
        !n.is_empty() && n.len() < NAME_LEN,
        "plugin name must be 1..=31 bytes"
    );
    assert!(
        n.len() == s.len(),
        "exported symbol suffix must be the plugin name in upper case"
    );
    let mut i = 0;
    while i < n.len() {
        let c = n[i];
        assert!(
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_',
            "plugin name may only contain a-z, 0-9 and _"
        );
        assert!(
            s[i] == c.to_ascii_uppercase(),
            "exported symbol suffix must be the plugin name in upper case"
        );
        i += 1;
    }
    assert!(version.len() < VERSION_LEN, "plugin version too long");
    PluginHeader {
        magic: MAGIC,
        abi_version: ABI_VERSION,
        kind,
        header_size: size_of::<PluginHeader>() as u32,
        input,
        fingerprint: layout_fingerprint(kind),
        name: pad::<NAME_LEN>(name),
        version: pad::<VERSION_LEN>(version),
        description: pad::<DESCRIPTION_LEN>(description),
    }
}

/// NUL-pads `s` into `N` bytes, truncating at a UTF-8 character boundary so that at least
/// one NUL remains.
const fn pad<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut len = if b.len() < N { b.len() } else { N - 1 };
    while len > 0 && len < b.len() && (b[len] & 0xC0) == 0x80 {
        len -= 1;
    }
    let mut out = [0u8; N];
    let mut i = 0;
    while i < len {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Reads a NUL-padded inline string (lossy on invalid UTF-8).
pub fn inline_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The message of a caught panic.
pub fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

impl StrRef {
    /// A reference to `s` (valid while `s` is).
    pub fn new(s: &str) -> Self {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
    /// An absent string.
    pub const NONE: StrRef = StrRef {
        ptr: std::ptr::null(),
        len: 0,
    };
    /// From an optional string.
    pub fn opt(s: Option<&str>) -> Self {
        s.map_or(Self::NONE, Self::new)
    }

    /// Borrows the string.
    ///
    /// # Safety
    /// `ptr` must be null or point to `len` readable bytes that stay valid for `'a`.
    pub unsafe fn get<'a>(self) -> Option<std::borrow::Cow<'a, str>> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: guaranteed by the caller.
        let b = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        Some(String::from_utf8_lossy(b))
    }
}

/// Most bytes a [`StrSink::to_vec`] sink keeps: what a plugin writes (JSON listings,
/// messages) is held whole before it is parsed, so a plugin writing without end would
/// otherwise exhaust the host's memory. Bytes past it are dropped, and a result that
/// reached it is refused (`check_sink`).
pub const MAX_SINK_BYTES: usize = 256 << 20;

unsafe extern "C" fn string_sink_write(ctx: *mut c_void, ptr: *const u8, len: usize) {
    if ctx.is_null() || (ptr.is_null() && len > 0) {
        return;
    }
    // SAFETY: `ctx` is the `Vec<u8>` that `StrSink::to_vec` created for this call; `ptr`
    // points to `len` bytes by the sink contract.
    unsafe {
        let v = &mut *(ctx as *mut Vec<u8>);
        let len = len.min(MAX_SINK_BYTES.saturating_sub(v.len()));
        if len > 0 {
            v.extend_from_slice(std::slice::from_raw_parts(ptr, len));
        }
    }
}

/// Refuses the contents of a sink that reached [`MAX_SINK_BYTES`] (they were cut).
pub(crate) fn check_sink(out: &[u8], what: impl FnOnce() -> String) -> memlens_core::Result<()> {
    if out.len() >= MAX_SINK_BYTES {
        return Err(memlens_core::Error::Limit {
            what: what(),
            limit: MAX_SINK_BYTES as u64,
        });
    }
    Ok(())
}

impl StrSink {
    /// A sink appending to `v` (valid while `v` is borrowed).
    pub fn to_vec(v: &mut Vec<u8>) -> Self {
        StrSink {
            ctx: v as *mut Vec<u8> as *mut c_void,
            write: string_sink_write,
        }
    }
    /// Writes `s` to the sink.
    ///
    /// # Safety
    /// The sink must be valid (its `ctx` alive and `write` a matching function).
    pub unsafe fn put(&self, s: &str) {
        // SAFETY: by the caller's guarantee.
        unsafe { (self.write)(self.ctx, s.as_ptr(), s.len()) }
    }
}

#[cfg(test)]
mod tests;

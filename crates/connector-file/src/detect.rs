//! Format detection by content. **Key decision: a format is chosen by its magic bytes,
//! and a file whose magic matches but whose headers do not parse is an error, never a
//! silent fallback to raw** (reading a corrupt kdump as a raw image would hand garbage to
//! the OS plugin). Raw is the fallback only for files that match no known magic *and* look
//! like a memory image (a whole number of 4 KiB pages); anything else is
//! [`FileError::UnknownFormat`](crate::FileError::UnknownFormat), which lists the supported formats and says how to force
//! raw (`format=raw`).
//!
//! The signatures are the `detect` functions of the crate's table of formats (the
//! private `registry` module), tried in its order; the formats memlens recognises but
//! does not read are listed here.

pub use crate::avml::AVML_MAGIC;
pub use crate::flat::FLAT_SIGNATURE;
pub use crate::format::{Detected, Format, FormatChoice};
pub use crate::kdump::KDUMP_SIGNATURE;
pub use crate::lime::LIME_MAGIC;
use crate::registry::FORMATS;

/// Every format, for messages.
pub const SUPPORTED: &str = "elf (ELF core: QEMU dump-guest-memory, /proc/vmcore), kdump (makedumpfile \
     compressed, normal or flattened), lime, avml, raw (forced with format=raw, or any file that is a \
     whole number of 4 KiB pages)";

/// Detects the format from the first bytes of a file.
pub fn detect(head: &[u8]) -> Detected {
    if let Some(d) = FORMATS.iter().find_map(|s| (s.detect)(head)) {
        return d;
    }
    const FOREIGN: &[(&[u8], &str)] = &[
        (b"DISKDUMP", "an old diskdump file"),
        (b"PAGEDU64", "a Windows 64-bit crash dump"),
        (b"PAGEDUMP", "a Windows 32-bit crash dump"),
        (b"MDMP", "a Windows minidump"),
        (b"\x1f\x8b", "a gzip file (decompress it first)"),
        (b"\xfd7zXZ\0", "an xz file (decompress it first)"),
        (b"BZh", "a bzip2 file (decompress it first)"),
        (b"\x28\xb5\x2f\xfd", "a zstd file (decompress it first)"),
        (b"PK\x03\x04", "a zip archive (extract it first)"),
        (b"\xd2\xbe\xd2\xbe", "a VMware suspend state (.vmss)"),
        (b"\xd0\xbe\xd2\xbe", "a VMware suspend state (.vmss)"),
        (
            b"QEVM",
            "a QEMU savevm state (use dump-guest-memory instead)",
        ),
    ];
    for (m, name) in FOREIGN {
        if head.starts_with(m) {
            return Detected::Foreign(name);
        }
    }
    Detected::Nothing
}

//! Format detection by content. **Key decision: a format is chosen by its magic bytes,
//! and a file whose magic matches but whose headers do not parse is an error, never a
//! silent fallback to raw** (reading a corrupt kdump as a raw image would hand garbage to
//! the OS plugin). Raw is the fallback only for files that match no known magic *and* look
//! like a memory image (a whole number of 4 KiB pages); anything else is
//! [`FileError::UnknownFormat`](crate::FileError::UnknownFormat), which lists the supported formats and says how to force
//! raw (`format=raw`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A dump format memlens reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Raw physical image (file offset = physical address).
    Raw,
    /// ELF core (QEMU `dump-guest-memory`, `/proc/vmcore`).
    Elf,
    /// makedumpfile compressed dump (`KDUMP   `).
    Kdump,
    /// makedumpfile flattened stream (QEMU `kdump-*` output), read directly.
    KdumpFlat,
    /// LiME (`EMiL` headers, uncompressed ranges).
    Lime,
    /// AVML (LiME-like headers, version 2, snappy-compressed ranges).
    Avml,
}

/// Every format, for messages.
pub const SUPPORTED: &str = "elf (ELF core: QEMU dump-guest-memory, /proc/vmcore), kdump (makedumpfile \
     compressed, normal or flattened), lime, avml, raw (forced with format=raw, or any file that is a \
     whole number of 4 KiB pages)";

impl Format {
    /// Short name (`elf`, `kdump`, `kdump-flat`, …).
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Elf => "elf",
            Format::Kdump => "kdump",
            Format::KdumpFlat => "kdump-flat",
            Format::Lime => "lime",
            Format::Avml => "avml",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A user's format choice: a format, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatChoice {
    /// Detect by content.
    #[default]
    Auto,
    /// Force raw.
    Raw,
    /// Force ELF (any `e_type`, not only `ET_CORE`).
    Elf,
    /// Force kdump; normal and flattened are still told apart by their magic.
    Kdump,
    /// Force LiME.
    Lime,
    /// Force AVML.
    Avml,
}

impl FromStr for FormatChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" | "" => FormatChoice::Auto,
            "raw" | "bin" | "mem" => FormatChoice::Raw,
            "elf" | "core" | "vmcore" => FormatChoice::Elf,
            "kdump" | "diskdump" | "kdump-flat" | "flattened" => FormatChoice::Kdump,
            "lime" => FormatChoice::Lime,
            "avml" => FormatChoice::Avml,
            other => {
                return Err(format!(
                    "unknown format `{other}` (expected auto, raw, elf, kdump, lime or avml)"
                ))
            }
        })
    }
}

/// LiME header magic (`EMiL` on disk, 0x4C694D45 little-endian).
pub const LIME_MAGIC: u32 = 0x4C69_4D45;
/// AVML header magic (`AVML` on disk, 0x4C4D5641 little-endian).
pub const AVML_MAGIC: u32 = 0x4C4D_5641;
/// makedumpfile signature.
pub const KDUMP_SIGNATURE: &[u8; 8] = b"KDUMP   ";
/// Flattened makedumpfile signature (NUL-padded to 16 bytes).
pub const FLAT_SIGNATURE: &[u8; 12] = b"makedumpfile";

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// A format memlens reads.
    Known(Format),
    /// Recognisably something else (with a name for the message).
    Foreign(&'static str),
    /// No known magic.
    Nothing,
}

/// Detects the format from the first bytes of a file.
pub fn detect(head: &[u8]) -> Detected {
    let magic32 = head
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    if head.starts_with(b"\x7fELF") {
        return if crate::elf::looks_like_core(head) {
            Detected::Known(Format::Elf)
        } else {
            Detected::Foreign(
                "an ELF file that is not a core dump (e_type != ET_CORE; force with format=elf)",
            )
        };
    }
    if head.starts_with(KDUMP_SIGNATURE) {
        return Detected::Known(Format::Kdump);
    }
    if head.starts_with(FLAT_SIGNATURE) {
        return Detected::Known(Format::KdumpFlat);
    }
    match magic32 {
        Some(LIME_MAGIC) => return Detected::Known(Format::Lime),
        Some(AVML_MAGIC) => return Detected::Known(Format::Avml),
        _ => {}
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

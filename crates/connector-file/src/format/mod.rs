//! The format contract: what every dump format's parser gets and produces. **Key decision:
//! this module is a leaf — it imports no format, and formats import only it** (plus the
//! shared helpers [`bytes`](crate::bytes), [`limits`](crate::limits),
//! [`error`](crate::error), [`mapped`](crate::mapped), [`cache`](crate::cache)), never
//! `dump` or each other. A format is one file exposing two functions of the shapes in
//! [`FormatSpec`]: `detect` (does this head carry my signature?) and `open` (a
//! [`MappedFile`] → a [`Parsed`] with the format's reader). The table naming every
//! format, and the enum of readers the read path matches on, live in `registry`, the only
//! module that imports all formats; `dump` dispatches over that table.
//!
//! Here: the format vocabulary ([`Format`], [`FormatChoice`], [`Detected`]), what a parser
//! gets ([`Open`]) and produces ([`Parsed`], whose reader implements [`Reader`]), the shape
//! of a table row ([`FormatSpec`]), and [`ranges`], the LiME-style range headers LiME and
//! AVML share.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use memlens_core::{CpuRegisters, MemoryMap, PhysicalMemory};
use serde::{Deserialize, Serialize};

use crate::error::FileError;
use crate::limits::Caps;
use crate::mapped::MappedFile;

pub(crate) mod ranges;

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

impl FormatChoice {
    /// The name `format=` takes for this choice.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FormatChoice::Auto => "auto",
            FormatChoice::Raw => "raw",
            FormatChoice::Elf => "elf",
            FormatChoice::Kdump => "kdump",
            FormatChoice::Lime => "lime",
            FormatChoice::Avml => "avml",
        }
    }
}

/// A format's reader: physical memory, plus the size of the file it reads.
pub(crate) trait Reader: PhysicalMemory {
    /// Size of the dump file in bytes.
    fn file_size(&self) -> u64;
}

impl Reader for MappedFile {
    fn file_size(&self) -> u64 {
        MappedFile::file_size(self)
    }
}

/// What the dispatcher hands a format's `open`: the options that apply to every format.
pub(crate) struct Open<'a> {
    /// The file (the [`MappedFile`] passed along is mapped from it).
    pub path: &'a Path,
    /// The row's format (one parser may serve several, e.g. kdump normal and flattened).
    pub format: Format,
    /// Bytes of decompressed data a compressed format may cache.
    pub cache_bytes: u64,
    /// Table caps, already clamped to the hard ones.
    pub caps: &'a Caps,
    /// Raw only: where the file's ranges sit in guest-physical memory.
    pub map: Option<&'a MemoryMap>,
    /// Raw only: map the file writable.
    pub writable: bool,
}

/// What a format's parser produces: its reader `M` and what the file says about the
/// machine. The dispatcher turns `M` into the reader enum with [`Parsed::into_memory`].
pub(crate) struct Parsed<M> {
    pub memory: M,
    pub format: Format,
    pub version: Option<String>,
    pub cpus: Vec<CpuRegisters>,
    pub vmcoreinfo: Option<BTreeMap<String, String>>,
    pub details: Vec<(String, String)>,
}

impl<M> Parsed<M> {
    /// A reader with nothing else known yet (no version, registers, VMCOREINFO or details).
    pub fn memory_only(memory: M, format: Format) -> Self {
        Parsed {
            memory,
            format,
            version: None,
            cpus: Vec::new(),
            vmcoreinfo: None,
            details: Vec::new(),
        }
    }

    /// The same result with the reader converted (a format's reader → the reader enum).
    pub fn into_memory<N: From<M>>(self) -> Parsed<N> {
        Parsed {
            memory: N::from(self.memory),
            format: self.format,
            version: self.version,
            cpus: self.cpus,
            vmcoreinfo: self.vmcoreinfo,
            details: self.details,
        }
    }
}

/// One row of the format table: a format, how to recognise it and how to open it. `M` is
/// the reader enum of `registry`.
pub(crate) struct FormatSpec<M> {
    /// The format this row opens.
    pub format: Format,
    /// The `format=` choice that forces this row (several rows may share one; the one
    /// whose `detect` matches wins, else the first).
    pub choice: FormatChoice,
    /// `Some` when the file's first bytes (at most 64) carry this format's signature:
    /// [`Detected::Known`] with this row's format, or [`Detected::Foreign`] for a
    /// recognisable relative it does not read (an ELF that is not a core).
    pub detect: fn(&[u8]) -> Option<Detected>,
    /// Parses the file.
    pub open: fn(MappedFile, &Open<'_>) -> Result<Parsed<M>, FileError>,
}

//! The table of formats and the enum of their readers. **Key decision: this is the only
//! module that names every format**; formats know only the contract of
//! [`format`](crate::format), and [`dump`](crate::dump) and [`detect`](crate::detect) walk
//! [`FORMATS`] instead of naming formats. Readers stay an enum ([`Memory`]) so the read
//! path is one `match` and a direct call, never a dynamic dispatch per read.

use std::sync::Arc;

use memlens_core::{MemoryView, PhysAddr, PhysicalMemory, ReadOp};

use crate::avml::{self, AvmlMemory};
use crate::format::{Format, FormatChoice, FormatSpec, Parsed, Reader};
use crate::kdump::{self, KdumpMemory};
use crate::mapped::MappedFile;
use crate::{elf, lime, raw};

/// Declares [`Memory`], one variant per reader type, with `From<Arc<reader>>` and the
/// matches that dispatch to the reader.
macro_rules! readers {
    ($($variant:ident($reader:ty)),* $(,)?) => {
        /// The reader of an opened dump: one variant per reader type.
        pub(crate) enum Memory {
            $($variant(Arc<$reader>),)*
        }

        $(impl From<Arc<$reader>> for Memory {
            fn from(m: Arc<$reader>) -> Self {
                Memory::$variant(m)
            }
        })*

        impl Memory {
            /// The reader, for calls off the read path (metadata, ranges, file size).
            pub(crate) fn reader(&self) -> &dyn Reader {
                match self {
                    $(Memory::$variant(m) => &**m,)*
                }
            }

            /// The reader as a shareable trait object.
            pub(crate) fn shared(&self) -> Arc<dyn PhysicalMemory> {
                match self {
                    $(Memory::$variant(m) => m.clone(),)*
                }
            }

            /// The read path: a match and a direct (inlinable) call.
            #[inline]
            pub(crate) fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
                match self {
                    $(Memory::$variant(m) => m.read_batch(ops),)*
                }
            }
        }
    };
}

// A format with a reader of its own (not a memory map for `MappedFile`) adds a line here.
readers! {
    Mapped(MappedFile),
    Kdump(KdumpMemory),
    Avml(AvmlMemory),
}

/// Every format, in detection order (the first whose signature matches wins).
pub(crate) static FORMATS: &[FormatSpec<Memory>] = &[
    FormatSpec {
        format: Format::Elf,
        choice: FormatChoice::Elf,
        detect: elf::detect,
        open: |f, o| elf::open(f, o).map(Parsed::into_memory),
    },
    FormatSpec {
        format: Format::Kdump,
        choice: FormatChoice::Kdump,
        detect: kdump::detect,
        open: |f, o| kdump::open(f, o).map(Parsed::into_memory),
    },
    FormatSpec {
        format: Format::KdumpFlat,
        choice: FormatChoice::Kdump,
        detect: kdump::detect_flat,
        open: |f, o| kdump::open(f, o).map(Parsed::into_memory),
    },
    FormatSpec {
        format: Format::Lime,
        choice: FormatChoice::Lime,
        detect: lime::detect,
        open: |f, o| lime::open(f, o).map(Parsed::into_memory),
    },
    FormatSpec {
        format: Format::Avml,
        choice: FormatChoice::Avml,
        detect: avml::detect,
        open: |f, o| avml::open(f, o).map(Parsed::into_memory),
    },
    FormatSpec {
        format: Format::Raw,
        choice: FormatChoice::Raw,
        detect: raw::detect,
        open: |f, o| raw::open(f, o).map(Parsed::into_memory),
    },
];

/// The row of `format`.
pub(crate) fn spec(format: Format) -> &'static FormatSpec<Memory> {
    FORMATS
        .iter()
        .find(|s| s.format == format)
        .expect("every Format has a row in FORMATS")
}

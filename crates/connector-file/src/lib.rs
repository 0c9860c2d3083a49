//! # memlens-connector-file
//!
//! Physical memory from dump files. **Key decision: every uncompressed format is read by
//! one memory-mapped reader ([`MappedFile`]) driven by a memory map** (guest-physical range
//! → file offset); a format parser's only job is to produce that map (and the notes). A raw
//! image (`.raw`, `.mem`, `.bin`, `dd` of `/dev/mem`) is the identity map. Compressed
//! formats (kdump, AVML) have their own readers that decompress through a shared
//! [`BlockCache`].
//!
//! | format | reader | registers | VMCOREINFO |
//! |---|---|---|---|
//! | raw | [`MappedFile`] (identity) | – | – |
//! | ELF core (QEMU, `/proc/vmcore`) | [`MappedFile`] (`PT_LOAD`s) | `NT_PRSTATUS` + QEMU note | note |
//! | kdump (normal and flattened) | [`KdumpMemory`] | notes | sub-header |
//! | LiME | [`MappedFile`] (ranges) | – | – |
//! | AVML | [`AvmlMemory`] | – | – |
//!
//! [`write`](mod@write) writes ELF cores (physical memory, or a process's mappings) that this crate
//! and other tools read back.
//!
//! [`open_dump`] detects the format by content (see [`detect`]) and returns a [`Dump`]:
//! memory, registers, VMCOREINFO and a [`DumpInfo`] summary; [`Dump::target`] hands all
//! of it to an OS plugin as a core [`PhysicalTarget`](memlens_core::PhysicalTarget).
//!
//! **Hostile files cannot make it allocate without bound**: every count, length and size
//! read from a file is checked against what it can cover and against a hard cap of
//! [`limits`] before anything is allocated for it (beyond a cap: [`FileError::Limit`],
//! naming the field, its file offset and the cap):
//!
//! | cap | value | bounds |
//! |---|---|---|
//! | [`MAX_PHDRS`](limits::MAX_PHDRS) | 2^22 | ELF program headers |
//! | [`MAX_NOTES`](limits::MAX_NOTES) | 2^16 | notes of a file, all note areas together |
//! | [`MAX_NOTE_SEGMENTS`](limits::MAX_NOTE_SEGMENTS) | 8256 | ELF `PT_NOTE` headers (copies read once) |
//! | [`MAX_NOTE_BYTES`](limits::MAX_NOTE_BYTES) | 16 MiB | one note area |
//! | [`MAX_NOTE_NAME`](limits::MAX_NOTE_NAME) | 256 | a note's name |
//! | [`MAX_CPUS`](limits::MAX_CPUS) | 8192 | vCPUs (register notes, kdump `nr_cpus`) |
//! | [`MAX_VMCOREINFO`](limits::MAX_VMCOREINFO) | 64 KiB | VMCOREINFO text (longer: truncated, logged) |
//! | [`MAX_VMCOREINFO_ENTRIES`](limits::MAX_VMCOREINFO_ENTRIES) | 4096 | VMCOREINFO keys (more: dropped, logged) |
//! | [`MAX_PHYS_ADDR`](limits::MAX_PHYS_ADDR) | 2^52 | kdump `max_mapnr × block_size`, ELF zero-fill |
//! | [`MAX_BITMAP_BYTES`](limits::MAX_BITMAP_BYTES) | 1 GiB | kdump bitmaps (both) |
//! | [`MAX_RANGES`](limits::MAX_RANGES) | 2^22 | kdump readable runs |
//! | [`MAX_FLAT_RECORDS`](limits::MAX_FLAT_RECORDS) | 2^24 | flattened kdump records |
//! | [`MAX_AVML_CHUNKS`](limits::MAX_AVML_CHUNKS) | 2^26 | AVML snappy chunks |
//! | [`MAX_RANGE_HEADERS`](limits::MAX_RANGE_HEADERS) | 2^20 | LiME/AVML range headers |
//! | [`MAX_ZERO_EXCESS`](limits::MAX_ZERO_EXCESS) | 1 TiB | LiME/AVML header-only zero blocks beyond the data |
//!
//! **Adding a format** (a Windows crash dump, a VMware snapshot): one new file and one
//! row in a table. The file imports only the format contract (the private `format`
//! module: `Parsed`, `Open`, `Detected`, the shared LiME-style range headers) and the
//! helpers (`bytes`, [`limits`], [`error`], [`mapped`], [`cache`]), never [`dump`] or
//! another format, and exposes `detect(head) -> Option<Detected>` (its signature) and
//! `open(MappedFile, &Open) -> Result<Parsed<Arc<Reader>>, FileError>`. Its [`Format`]
//! variant (and [`FormatChoice`] variant, if it can be forced) names it, and one
//! `FormatSpec` row in the private `registry` module's `FORMATS` table (detection order)
//! makes [`open_dump`] and [`detect::detect`] use it. A format read through a memory map
//! returns an `Arc<MappedFile>`; one with a reader of its own also adds a line to the
//! `readers!` list there, so reads stay an enum match, not a dynamic dispatch.
//!
//! Open a dump (here a tiny ELF core with two ranges and a VMCOREINFO note, written in
//! hidden lines), list its physical ranges, read it, and hand it to an OS plugin:
//!
//! ```
//! use memlens_connector_file::{open_dump, DumpOptions, Format};
//! use memlens_core::{MemRange, MemoryView, MemoryViewExt, PhysAddr};
//! # use memlens_connector_file::write::{CoreNote, CoreSegment, CoreWriter, EM_X86_64, PF_R, PF_W};
//! # use std::io::Write;
//! # let path = std::env::temp_dir().join(format!("memlens-doc-{}-guest.elf", std::process::id()));
//! # let seg = |paddr, len| CoreSegment { paddr, vaddr: 0, len, flags: PF_R | PF_W };
//! # let core = CoreWriter::new(
//! #     EM_X86_64,
//! #     vec![CoreNote::vmcoreinfo([("OSRELEASE", "6.1.0-doc")])],
//! #     vec![seg(0, 0x2000), seg(0x10_0000, 0x1000)],
//! # );
//! # let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
//! # core.write_head(&mut out)?;
//! # let mut low = vec![0u8; 0x2000];
//! # low[0x1000..0x1008].copy_from_slice(&0xfeed_f00d_u64.to_le_bytes());
//! # out.write_all(&low)?;
//! # out.write_all(&[0x5a; 0x1000])?;
//! # out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
//! let dump = open_dump(&path, &DumpOptions::default())?; // format detected by content
//! assert_eq!(dump.format(), Format::Elf);
//! println!("{}", dump.info()); // what `memlens info` prints
//! for r in dump.ranges() {
//!     println!("{:#x}..{:#x}", r.base.0, r.end_u64());
//! }
//! assert_eq!(
//!     dump.ranges(),
//!     [MemRange::new(PhysAddr(0), 0x2000), MemRange::new(PhysAddr(0x10_0000), 0x1000)]
//! );
//! assert_eq!(dump.read_u64(PhysAddr(0x1000))?, 0xfeed_f00d);
//! assert_eq!(dump.read_vec(PhysAddr(0x10_0ffe), 2)?, [0x5a, 0x5a]);
//! assert!(dump.read_u64(PhysAddr(0x8000)).is_err()); // in the gap between the ranges
//! assert_eq!(dump.vmcoreinfo().unwrap()["OSRELEASE"], "6.1.0-doc");
//! let target = dump.target(); // memory + CpuState + TargetInfo.vmcoreinfo
//! assert_eq!(target.info.vmcoreinfo.as_ref().unwrap()["OSRELEASE"], "6.1.0-doc");
//! # drop((target, dump));
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bytes;
pub mod cache;
pub mod detect;
pub mod dump;
pub mod elf;
pub mod error;
mod flat;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod intervals;
pub mod lime;
pub mod limits;
pub mod mapped;
pub mod notes;
#[cfg(feature = "plugin")]
pub mod plugin;
mod raw;
mod registry;
pub mod write;

pub mod avml;
pub mod kdump;
mod lzo;

pub use avml::AvmlMemory;
pub use cache::BlockCache;
pub use detect::{Format, FormatChoice};
pub use dump::{open_dump, CpuRoot, Dump, DumpCpus, DumpInfo, DumpOptions};
pub use error::FileError;
pub use kdump::KdumpMemory;
pub use mapped::MappedFile;

/// A raw physical memory image: a [`MappedFile`] with the identity map (or a map given by
/// the user to place file ranges at other physical addresses).
pub type RawFile = MappedFile;

//! [`open_dump`]: one entry point for every dump format. **Key decision: a [`Dump`] is a
//! reader plus what the file says about the machine** (registers, VMCOREINFO, a
//! [`DumpInfo`] summary); it is itself a [`PhysicalMemory`]
//! and turns into a core [`PhysicalTarget`] so OS plugins get the page-table roots and
//! kernel notes as hints without knowing the format.
//!
//! [`open_dump`] is the dispatcher: it detects or forces a format and calls its opener
//! through the crate's table of formats (the private `registry` module), naming no format
//! itself; the reader it keeps is an enum, so reads are a `match` and a direct call.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memlens_core::{
    CpuRegisters, CpuState, MemRange, MemoryMap, MemoryMetadata, MemoryView, PhysAddr,
    PhysicalMemory, PhysicalTarget, ReadOp, TargetInfo,
};
use serde::{Deserialize, Serialize};

use crate::detect::{self, Detected, Format, FormatChoice};
use crate::error::FileError;
use crate::format::{Open, Parsed};
use crate::limits::Caps;
use crate::mapped::MappedFile;
use crate::registry::{self, Memory, FORMATS};

/// How to open a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpOptions {
    /// Format, or `Auto` to detect by content.
    pub format: FormatChoice,
    /// Bytes of decompressed data to cache for compressed formats (kdump, AVML).
    pub cache_bytes: u64,
    /// Map a raw image writable (only raw images can be written).
    pub writable: bool,
    /// Where a raw image's file ranges sit in guest-physical memory (`None`: the identity,
    /// address = file offset). Only raw images take one: other formats record their own.
    pub map: Option<MemoryMap>,
}

impl Default for DumpOptions {
    fn default() -> Self {
        Self {
            format: FormatChoice::Auto,
            cache_bytes: 64 << 20,
            writable: false,
            map: None,
        }
    }
}

impl DumpOptions {
    /// Options with a forced format.
    pub fn with_format(format: FormatChoice) -> Self {
        Self {
            format,
            ..Self::default()
        }
    }
}

/// An opened dump. See the module documentation.
pub struct Dump {
    memory: Memory,
    cpus: Vec<CpuRegisters>,
    vmcoreinfo: Option<BTreeMap<String, String>>,
    info: DumpInfo,
}

/// The registers a dump recorded, as a core [`CpuState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpCpus(pub Vec<CpuRegisters>);

impl CpuState for DumpCpus {
    fn cpu_count(&self) -> usize {
        self.0.len()
    }
    fn registers(&self, cpu: usize) -> memlens_core::Result<CpuRegisters> {
        self.0
            .get(cpu)
            .cloned()
            .ok_or_else(|| memlens_core::Error::Unsupported {
                what: format!(
                    "registers of vCPU {cpu}: the dump records {} vCPU(s)",
                    self.0.len()
                ),
            })
    }
}

/// The page-table root and program counter of one vCPU, for `memlens info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuRoot {
    /// vCPU index.
    pub cpu: usize,
    /// `x86` or `aarch64`.
    pub arch: String,
    /// CR3 as the CPU held it (x86), TTBR1 (aarch64) — `None` when the dump lacks it.
    pub root: Option<u64>,
    /// CR4.LA57 (x86; `None` when unknown).
    pub la57: Option<bool>,
    /// Instruction pointer.
    pub pc: u64,
}

/// A serialisable summary of a dump (`memlens info FILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpInfo {
    /// The file.
    pub path: PathBuf,
    /// Detected or forced format.
    pub format: Format,
    /// Format version or variant.
    pub version: Option<String>,
    /// File size in bytes.
    pub file_size: u64,
    /// Number of physical ranges.
    pub ranges: usize,
    /// Bytes of physical memory the dump covers.
    pub memory_bytes: u64,
    /// Highest physical address (inclusive).
    pub max_addr: u64,
    /// Number of vCPUs with registers.
    pub vcpus: usize,
    /// Page-table roots per vCPU.
    pub roots: Vec<CpuRoot>,
    /// Selected VMCOREINFO entries (OSRELEASE, KERNELOFFSET, phys_base, …).
    pub vmcoreinfo: BTreeMap<String, String>,
    /// Number of VMCOREINFO entries in all.
    pub vmcoreinfo_entries: usize,
    /// Format-specific facts.
    pub details: Vec<(String, String)>,
}

/// VMCOREINFO keys shown in the summary.
pub const VMCOREINFO_SUMMARY: &[&str] = &[
    "OSRELEASE",
    "BUILD-ID",
    "PAGESIZE",
    "KERNELOFFSET",
    "NUMBER(phys_base)",
    "NUMBER(PHYS_OFFSET)",
    "NUMBER(kimage_voffset)",
    "NUMBER(VA_BITS)",
    "NUMBER(pgtable_l5_enabled)",
    "SYMBOL(swapper_pg_dir)",
    "SYMBOL(init_top_pgt)",
    "SYMBOL(_stext)",
    "CRASHTIME",
];

impl fmt::Display for DumpInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file:      {}", self.path.display())?;
        write!(f, "format:    {}", self.format)?;
        match &self.version {
            Some(v) => writeln!(f, " ({v})")?,
            None => writeln!(f)?,
        }
        writeln!(f, "file size: {:#x}", self.file_size)?;
        writeln!(
            f,
            "memory:    {:#x} bytes in {} range(s), highest address {:#x}",
            self.memory_bytes, self.ranges, self.max_addr
        )?;
        writeln!(f, "vCPUs:     {}", self.vcpus)?;
        for r in &self.roots {
            let root = r.root.map_or("unknown".to_string(), |v| format!("{v:#x}"));
            let la57 = match r.la57 {
                Some(true) => " (5-level)",
                _ => "",
            };
            writeln!(
                f,
                "  cpu {}: {} root {root}{la57} pc {:#x}",
                r.cpu, r.arch, r.pc
            )?;
        }
        if self.vmcoreinfo_entries > 0 {
            writeln!(f, "VMCOREINFO: {} entries", self.vmcoreinfo_entries)?;
            for (k, v) in &self.vmcoreinfo {
                writeln!(f, "  {k}={v}")?;
            }
        }
        for (k, v) in &self.details {
            writeln!(f, "{k}: {v}")?;
        }
        Ok(())
    }
}

/// Opens a dump, detecting its format by content unless `opts.format` forces one. What the
/// file can make this allocate is bounded by the caps of [`limits`](crate::limits).
///
/// A raw image whose two halves sit at other physical addresses (a memory map in TOML,
/// what `-c file:PATH:map=layout.toml` takes; the image is written in hidden lines):
///
/// ```
/// use memlens_connector_file::{open_dump, DumpOptions};
/// use memlens_core::{MemRange, MemoryMap, MemoryView, MemoryViewExt, PhysAddr};
/// # let path = std::env::temp_dir().join(format!("memlens-doc-{}-ram.bin", std::process::id()));
/// # let mut image = vec![0x11u8; 0x2000];
/// # image[0x1000..].fill(0x22);
/// # std::fs::write(&path, &image)?;
/// let map = MemoryMap::from_toml(
///     r#"
///     [[range]]
///     base = "0x0"
///     len = "4KiB"
///     [[range]]
///     base = "1MiB"
///     len = "4KiB"
///     backing = "0x1000" # file offset
///     "#,
/// )?;
/// let dump = open_dump(&path, &DumpOptions { map: Some(map), ..DumpOptions::default() })?;
/// assert_eq!(
///     dump.ranges(),
///     [MemRange::new(PhysAddr(0), 0x1000), MemRange::new(PhysAddr(0x10_0000), 0x1000)]
/// );
/// assert_eq!(dump.read_vec(PhysAddr(0xfff), 1)?, [0x11]);
/// assert_eq!(dump.read_vec(PhysAddr(0x10_0000), 1)?, [0x22]);
/// assert!(dump.read_vec(PhysAddr(0x1000), 1).is_err()); // a gap of the map
/// # drop(dump);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_dump(path: impl AsRef<Path>, opts: &DumpOptions) -> Result<Dump, FileError> {
    open_dump_with_caps(path.as_ref(), opts, &Caps::HARD)
}

/// [`open_dump`] with table caps no higher than the hard ones (for tests).
pub(crate) fn open_dump_with_caps(
    path: &Path,
    opts: &DumpOptions,
    caps: &Caps,
) -> Result<Dump, FileError> {
    let caps = &caps.clamped();
    let file = MappedFile::open_with(path, None, false)?;
    let head_copy = file.bytes()[..file.bytes().len().min(64)].to_vec();
    let head = head_copy.as_slice();
    let format = match opts.format {
        FormatChoice::Auto => match detect::detect(head) {
            Detected::Known(f) => f,
            Detected::Foreign(what) => {
                return Err(FileError::UnknownFormat {
                    path: path.to_path_buf(),
                    supported: format!("{}; this looks like {what}", detect::SUPPORTED),
                })
            }
            Detected::Nothing if file.file_size() % 4096 == 0 => Format::Raw,
            Detected::Nothing => {
                return Err(FileError::UnknownFormat {
                    path: path.to_path_buf(),
                    supported: format!(
                        "{}; no known header, and the size {:#x} is not a whole number of pages",
                        detect::SUPPORTED,
                        file.file_size()
                    ),
                })
            }
        },
        // The choice's row whose signature matches (kdump: normal or flattened), else its
        // first row.
        choice => {
            let mut rows = FORMATS.iter().filter(|s| s.choice == choice);
            let first = rows.clone().next().map(|s| s.format);
            rows.find(|s| (s.detect)(head) == Some(Detected::Known(s.format)))
                .map(|s| s.format)
                .or(first)
                .ok_or_else(|| FileError::BadOption {
                    what: format!("format={}", choice.name()),
                    why: "no format has this choice".into(),
                })?
        }
    };
    if opts.writable && format != Format::Raw {
        return Err(FileError::BadOption {
            what: "writable".into(),
            why: format!(
                "only raw images can be written; this file is {format} (force raw with format=raw)"
            ),
        });
    }
    if opts.map.is_some() && format != Format::Raw {
        return Err(FileError::BadOption {
            what: "map".into(),
            why: format!(
                "only raw images take a memory map; this file is {format}, which records its own ranges (force raw with format=raw)"
            ),
        });
    }
    let open = Open {
        path,
        format,
        cache_bytes: opts.cache_bytes,
        caps,
        map: opts.map.as_ref(),
        writable: opts.writable,
    };
    let parsed = match (registry::spec(format).open)(file, &open) {
        Ok(p) => p,
        Err(e) => {
            // A forced format that the content contradicts: say what the file is.
            return Err(match detect::detect(head_copy.as_slice()) {
                Detected::Known(found)
                    if opts.format != FormatChoice::Auto && family(found) != family(format) =>
                {
                    FileError::BadOption {
                        what: format!("format={}", opts.format.name()),
                        why: format!(
                            "{} is {} by its content, not {}; drop format= to detect it, or \
                             pass format={} ({e})",
                            path.display(),
                            found,
                            opts.format.name(),
                            family(found).name()
                        ),
                    }
                }
                _ => e,
            });
        }
    };
    Ok(Dump::from_parsed(path, parsed))
}

/// The forced choice that selects `f` (normal and flattened kdump are one choice,
/// `format=kdump`).
fn family(f: Format) -> FormatChoice {
    registry::spec(f).choice
}

impl Dump {
    pub(crate) fn from_parsed(path: &Path, p: Parsed<Memory>) -> Dump {
        let (ranges, md, file_size) = {
            let m = p.memory.reader();
            (m.ranges(), m.metadata(), m.file_size())
        };
        let roots = p
            .cpus
            .iter()
            .enumerate()
            .map(|(cpu, r)| match r {
                CpuRegisters::X86(x) => CpuRoot {
                    cpu,
                    arch: "x86".into(),
                    root: (x.cr3 != 0 || x.cr0 != 0).then_some(x.cr3),
                    la57: (x.cr0 != 0).then_some(x.la57()),
                    pc: x.rip,
                },
                CpuRegisters::Aarch64(a) => CpuRoot {
                    cpu,
                    arch: "aarch64".into(),
                    root: a.ttbr1,
                    la57: None,
                    pc: a.pc,
                },
                #[allow(unreachable_patterns)] // reason: CpuRegisters is non_exhaustive
                _ => CpuRoot {
                    cpu,
                    arch: "unknown".into(),
                    root: None,
                    la57: None,
                    pc: 0,
                },
            })
            .collect();
        let vmci = p.vmcoreinfo.as_ref();
        let info = DumpInfo {
            path: path.to_path_buf(),
            format: p.format,
            version: p.version,
            file_size,
            ranges: ranges.len(),
            memory_bytes: md.real_size,
            max_addr: md.max_addr.0,
            vcpus: p.cpus.len(),
            roots,
            vmcoreinfo: vmci
                .map(|m| {
                    VMCOREINFO_SUMMARY
                        .iter()
                        .filter_map(|k| m.get(*k).map(|v| (k.to_string(), v.clone())))
                        .collect()
                })
                .unwrap_or_default(),
            vmcoreinfo_entries: vmci.map_or(0, BTreeMap::len),
            details: p.details,
        };
        Dump {
            memory: p.memory,
            cpus: p.cpus,
            vmcoreinfo: p.vmcoreinfo,
            info,
        }
    }

    /// The summary.
    pub fn info(&self) -> &DumpInfo {
        &self.info
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.info.format
    }

    /// Registers per vCPU (empty when the format has none).
    pub fn registers(&self) -> &[CpuRegisters] {
        &self.cpus
    }

    /// The kernel's VMCOREINFO, when the dump carries it.
    pub fn vmcoreinfo(&self) -> Option<&BTreeMap<String, String>> {
        self.vmcoreinfo.as_ref()
    }

    /// The physical memory as a shareable trait object.
    pub fn memory(&self) -> Arc<dyn PhysicalMemory> {
        self.memory.shared()
    }

    /// The memory-mapped reader, for formats read through one (raw, ELF, LiME).
    pub fn mapped(&self) -> Option<&Arc<MappedFile>> {
        match &self.memory {
            Memory::Mapped(m) => Some(m),
            _ => None,
        }
    }

    /// The dump as a core target: memory, registers (when recorded), a writer for raw
    /// images opened writable, and [`TargetInfo`] with VMCOREINFO.
    pub fn target(&self) -> PhysicalTarget {
        let mut t = PhysicalTarget::from_memory(self.memory(), self.target_info());
        if let Memory::Mapped(m) = &self.memory {
            if m.is_writable() {
                t.writer = Some(m.clone());
            }
        }
        if !self.cpus.is_empty() {
            t.cpu = Some(Arc::new(DumpCpus(self.cpus.clone())));
        }
        t
    }

    /// The [`TargetInfo`] of [`Dump::target`].
    pub fn target_info(&self) -> TargetInfo {
        let i = &self.info;
        let mut details = vec![
            ("path".to_string(), i.path.display().to_string()),
            ("file size".to_string(), format!("{:#x}", i.file_size)),
            ("ranges".to_string(), i.ranges.to_string()),
            ("vCPUs".to_string(), i.vcpus.to_string()),
        ];
        for r in &i.roots {
            if let Some(root) = r.root {
                details.push((format!("cpu{} root", r.cpu), format!("{root:#x}")));
            }
        }
        details.extend(i.details.iter().cloned());
        TargetInfo {
            connector: "file".into(),
            format: i.format.name().into(),
            version: i.version.clone(),
            vmcoreinfo: self.vmcoreinfo.clone(),
            details,
        }
    }
}

impl MemoryView for Dump {
    type Addr = PhysAddr;
    #[inline]
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        self.memory.read_batch(ops)
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        self.memory.reader().metadata()
    }
    fn ranges(&self) -> Vec<MemRange<PhysAddr>> {
        self.memory.reader().ranges()
    }
}

impl fmt::Debug for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dump").field("info", &self.info).finish()
    }
}

//! `memlens dump`: save physical memory (raw image or ELF core) or a process's mapped
//! memory (ELF core with its maps) to a file.
//!
//! **Key decision: a dump never stops at an unreadable byte.** Bytes that cannot be read
//! are written as zeros (in a raw image they are simply not written, leaving a hole), the
//! count is reported at the end, and the file keeps the target's exact layout: physical
//! cores carry one `PT_LOAD` per range at its physical address plus the VMCOREINFO note,
//! so `memlens ps core.elf` works on the result; process cores carry one `PT_LOAD` per
//! mapping at its virtual address plus an `NT_FILE` note, as a Linux process core does.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memlens::core::{Arch, CpuRegisters, MemoryViewExt, PhysAddr, VirtAddr};
use memlens::file::write::{self as core_file, CoreNote, CoreSegment, CoreWriter};

use crate::exit::CliError;

/// Arguments of `dump`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    target: crate::target::TargetArgs,
    /// The file to write.
    #[arg(long = "out", short = 'O', value_name = "FILE")]
    out: PathBuf,
    /// Dump this process's mapped memory (an ELF core) instead of physical memory.
    #[arg(short, long)]
    pid: Option<u32>,
    /// Output format (process dumps are always ELF cores).
    #[arg(long, value_enum, default_value_t = DumpFormat::Elf)]
    format: DumpFormat,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// ELF core (`PT_LOAD` per range; VMCOREINFO kept).
    Elf,
    /// Raw image: byte N of the file is physical address N (gaps left as holes).
    Raw,
}

/// Bytes read and written per step.
const STEP: usize = 1 << 20;

fn machine(arch: Option<Arch>) -> u16 {
    match arch {
        Some(Arch::X86) => core_file::EM_386,
        Some(Arch::Aarch64) => core_file::EM_AARCH64,
        // x86-64 is also the best guess for an unknown machine: readers use p_paddr only.
        _ => core_file::EM_X86_64,
    }
}

fn create(path: &Path, force: bool) -> Result<File, CliError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    o.open(path).map_err(|e| {
        let hint = (e.kind() == std::io::ErrorKind::AlreadyExists)
            .then_some("pass --force to replace it, or choose another --out");
        let err = anyhow::anyhow!("cannot create {}: {e}", path.display());
        match hint {
            Some(h) => CliError::usage(err.to_string(), Some(h)),
            None => CliError::target(err),
        }
    })
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::target(anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// Copies `[start, start + len)` in steps: `read` fills a buffer (bytes it cannot read
/// become zeros), `sink` stores it. Returns how many bytes were unreadable.
fn copy(
    start: u64,
    len: u64,
    buf: &mut [u8],
    read: impl Fn(u64, &mut [u8]) -> Result<(), memlens::core::Error>,
    mut sink: impl FnMut(u64, &[u8]) -> std::io::Result<()>,
    pb: &indicatif::ProgressBar,
) -> std::io::Result<u64> {
    let mut bad = 0;
    let mut addr = start;
    while addr < start + len {
        let n = (start + len - addr).min(buf.len() as u64) as usize;
        let chunk = &mut buf[..n];
        let r = read(addr, chunk);
        let valid = crate::scan::Valid::of_read(n, r);
        for (i, b) in chunk.iter_mut().enumerate() {
            if !valid.at(i) {
                *b = 0;
                bad += 1;
            }
        }
        sink(addr, chunk)?;
        pb.inc(n as u64);
        addr += n as u64;
    }
    Ok(bad)
}

/// Writes the core `w` to `file`: its head, then each segment's bytes read with `read`
/// from the address `at` gives for it. Returns how many bytes were unreadable.
fn write_core(
    w: &CoreWriter,
    file: File,
    path: &Path,
    pb: &indicatif::ProgressBar,
    at: impl Fn(&CoreSegment) -> u64,
    read: impl Fn(u64, &mut [u8]) -> Result<(), memlens::core::Error>,
) -> Result<u64, CliError> {
    let mut out = BufWriter::with_capacity(STEP, file);
    w.write_head(&mut out).map_err(io_err(path))?;
    let mut buf = vec![0u8; STEP];
    let mut bad = 0;
    for s in w.segments() {
        bad += copy(at(s), s.len, &mut buf, &read, |_, b| out.write_all(b), pb)
            .map_err(io_err(path))?;
    }
    out.flush().map_err(io_err(path))?;
    Ok(bad)
}

/// Runs `dump`.
pub fn run(a: Args) -> Result<(), CliError> {
    if a.pid.is_some() && a.format == DumpFormat::Raw {
        return Err(CliError::usage(
            "a process dump is an ELF core (its mappings are sparse)",
            Some("drop --format raw"),
        ));
    }
    let (written, bad) = match a.pid {
        Some(pid) => dump_process(&a, pid)?,
        None => dump_physical(&a)?,
    };
    if bad > 0 {
        log::warn!("{bad} bytes could not be read and were written as zeros");
    }
    // A summary for people; -q silences it.
    if log::log_enabled!(log::Level::Warn) {
        eprintln!(
            "wrote {} to {}",
            memlens::core::size::format_size_approx(written),
            a.out.display()
        );
    }
    Ok(())
}

fn dump_physical(a: &Args) -> Result<(u64, u64), CliError> {
    let t = crate::target::open_physical(&a.target)?;
    let ranges = t.memory.ranges();
    let total: u64 = ranges.iter().map(|r| r.len).sum();
    let file = create(&a.out, a.force)?;
    let pb = crate::progress::bar(total, "dumping");
    let mut bad = 0;
    match a.format {
        DumpFormat::Raw => {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; STEP];
            let end = ranges.iter().map(|r| r.end_u64()).max().unwrap_or(0);
            file.set_len(end).map_err(io_err(&a.out))?;
            for r in ranges.iter() {
                bad += copy(
                    r.base.0,
                    r.len,
                    &mut buf,
                    |addr, b| t.memory.read_into(PhysAddr(addr), b),
                    |addr, b| file.write_all_at(b, addr),
                    &pb,
                )
                .map_err(io_err(&a.out))?;
            }
        }
        DumpFormat::Elf => {
            let notes = t
                .info
                .vmcoreinfo
                .as_ref()
                .map(|m| {
                    vec![CoreNote::vmcoreinfo(
                        m.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    )]
                })
                .unwrap_or_default();
            let segments = ranges
                .iter()
                .map(|r| CoreSegment {
                    paddr: r.base.0,
                    vaddr: 0,
                    len: r.len,
                    flags: core_file::PF_R | core_file::PF_W | core_file::PF_X,
                })
                .collect();
            let arch = t
                .cpu
                .as_ref()
                .and_then(|c| c.registers(0).ok())
                .and_then(|r| match r {
                    CpuRegisters::X86(_) => Some(Arch::X86_64),
                    CpuRegisters::Aarch64(_) => Some(Arch::Aarch64),
                    _ => None,
                });
            let w = CoreWriter::new(machine(arch), notes, segments);
            bad = write_core(
                &w,
                file,
                &a.out,
                &pb,
                |s| s.paddr,
                |addr, b| t.memory.read_into(PhysAddr(addr), b),
            )?;
        }
    }
    pb.finish_and_clear();
    Ok((total, bad))
}

fn dump_process(a: &Args, pid: u32) -> Result<(u64, u64), CliError> {
    let os = crate::target::open_os(&a.target)?;
    let proc = os.process(pid).map_err(CliError::target)?;
    let maps = proc.maps().map_err(CliError::target)?;
    let mem = proc.memory();
    // [vvar] is kernel data that faults on read on some kernels; a core leaves it out.
    let maps: Vec<_> = maps
        .into_iter()
        .filter(|m| m.path.as_deref() != Some("[vvar]") && m.end.0 > m.start.0)
        .collect();
    let files: Vec<(u64, u64, u64, &str)> = maps
        .iter()
        .filter_map(|m| {
            let p = m.path.as_deref()?;
            p.starts_with('/')
                .then_some((m.start.0, m.end.0, m.offset, p))
        })
        .collect();
    let segments = maps
        .iter()
        .map(|m| CoreSegment {
            paddr: 0,
            vaddr: m.start.0,
            len: m.end.0 - m.start.0,
            flags: (if m.perms.read { core_file::PF_R } else { 0 })
                | (if m.perms.write { core_file::PF_W } else { 0 })
                | (if m.perms.exec { core_file::PF_X } else { 0 }),
        })
        .collect();
    let w = CoreWriter::new(
        machine(os.info().arch),
        vec![CoreNote::mapped_files(4096, &files)],
        segments,
    );
    let total: u64 = w.segments().iter().map(|s| s.len).sum();
    let file = create(&a.out, a.force)?;
    let pb = crate::progress::bar(total, "dumping");
    let bad = write_core(
        &w,
        file,
        &a.out,
        &pb,
        |s| s.vaddr,
        |addr, b| mem.read_into(VirtAddr(addr), b),
    )?;
    pb.finish_and_clear();
    Ok((total, bad))
}

//! `memlens dump`: save physical memory (raw image or ELF core) or a process's mapped
//! memory (ELF core with its maps) to a file.
//!
//! **Key decision: a dump never stops at an unreadable byte.** Bytes that cannot be read
//! read as zeros: a whole unreadable step of [`STEP`] bytes is not written at all but
//! left as a hole (a sparse file), the rest written as zeros; the count is reported at
//! the end, and the file keeps the target's exact layout: physical
//! cores carry one `PT_LOAD` per range at its physical address plus the VMCOREINFO note,
//! so `memlens ps core.elf` works on the result; process cores carry one `PT_LOAD` per
//! mapping at its virtual address plus an `NT_FILE` note, as a Linux process core does.
//!
//! The ranges and mappings come from the target, so their total is checked (without
//! overflow) against `--max-size` (default [`DEFAULT_MAX_SIZE`]) before anything is
//! written: a forged mapping of 16 EiB is refused, not written as holes for ever.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
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
    /// Refuse to dump more than this many bytes of memory (units allowed; default
    /// 4TiB). The ranges and mappings come from the target and may be forged; raise it
    /// for a real target larger than this. Unreadable stretches are left as holes, so a
    /// large, mostly unmapped dump costs little disk.
    #[arg(long, value_name = "SIZE")]
    max_size: Option<String>,
}

/// Default `--max-size`: more memory than almost any machine or process really has, far
/// less than a forged mapping can claim (2^64 bytes).
pub const DEFAULT_MAX_SIZE: u64 = 4 << 40;

/// Most segments of an ELF core: `e_phnum` is 16 bits (one header is the note).
const MAX_SEGMENTS: usize = u16::MAX as usize - 1;

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

/// The total of `lens` if it fits in `max` (`--max-size`), else a usage error saying
/// how to go on; `what` names the pieces (ranges, mappings), `elf` says they become the
/// segments of an ELF core (at most [`MAX_SEGMENTS`]).
fn check_total(lens: &[u64], max: u64, what: &str, elf: bool) -> Result<u64, CliError> {
    if elf && lens.len() > MAX_SEGMENTS {
        return Err(CliError::target(anyhow::anyhow!(
            "{} {what}: more than an ELF core's {MAX_SEGMENTS} segments",
            lens.len()
        )));
    }
    let total = lens.iter().try_fold(0u64, |t, l| t.checked_add(*l));
    match total {
        Some(t) if t <= max => Ok(t),
        _ => Err(CliError::usage(
            format!(
                "the {what} add up to {} (more than --max-size {}); a forged mapping?",
                total.map_or("more than 2^64 bytes".into(), |t| {
                    memlens::core::size::format_size_approx(t)
                }),
                memlens::core::size::format_size_approx(max)
            ),
            Some("pass --max-size with a larger size to dump them anyway"),
        )),
    }
}

/// Copies `[start, start + len)` in steps: `read` fills a buffer (bytes it cannot read
/// become zeros), `sink` stores it, or is given `None` for a step where nothing could be
/// read (a hole). Returns how many bytes were unreadable.
fn copy(
    start: u64,
    len: u64,
    buf: &mut [u8],
    read: impl Fn(u64, &mut [u8]) -> Result<(), memlens::core::Error>,
    mut sink: impl FnMut(u64, usize, Option<&[u8]>) -> std::io::Result<()>,
    pb: &indicatif::ProgressBar,
) -> std::io::Result<u64> {
    let mut bad = 0;
    let mut done = 0u64;
    while done < len {
        let addr = start.wrapping_add(done);
        let n = (len - done).min(buf.len() as u64) as usize;
        let chunk = &mut buf[..n];
        let r = read(addr, chunk);
        let valid = crate::scan::Valid::of_read(n, r);
        let mut step_bad = 0;
        for (i, b) in chunk.iter_mut().enumerate() {
            if !valid.at(i) {
                *b = 0;
                step_bad += 1;
            }
        }
        bad += step_bad;
        sink(addr, n, (step_bad < n as u64).then_some(&*chunk))?;
        pb.inc(n as u64);
        done += n as u64;
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
    // Holes in regular files only: a pipe or a device gets the zeros.
    let sparse = file.metadata().is_ok_and(|m| m.is_file());
    let mut out = BufWriter::with_capacity(STEP, file);
    w.write_head(&mut out).map_err(io_err(path))?;
    let mut end = if sparse {
        out.stream_position().map_err(io_err(path))?
    } else {
        0
    };
    let mut buf = vec![0u8; STEP];
    let zeros = vec![0u8; if sparse { 0 } else { STEP }];
    let mut bad = 0;
    for s in w.segments() {
        let sink = |_, n: usize, b: Option<&[u8]>| match b {
            Some(b) => out.write_all(b),
            None if sparse => out.seek(SeekFrom::Current(n as i64)).map(drop),
            None => out.write_all(&zeros[..n]),
        };
        bad += copy(at(s), s.len, &mut buf, &read, sink, pb).map_err(io_err(path))?;
        end = end.saturating_add(s.len);
    }
    out.flush().map_err(io_err(path))?;
    if sparse {
        // A hole at the end is only a hole once the file reaches past it.
        out.get_ref().set_len(end).map_err(io_err(path))?;
    }
    Ok(bad)
}

/// Runs `dump`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    if a.pid.is_some() && a.format == DumpFormat::Raw {
        return Err(CliError::usage(
            "a process dump is an ELF core (its mappings are sparse)",
            Some("drop --format raw"),
        ));
    }
    let (written, bad) = match a.pid {
        Some(pid) => dump_process(&a, pid, metrics)?,
        None => dump_physical(&a, metrics)?,
    };
    if bad > 0 {
        log::warn!("{bad} bytes could not be read and were left as zeros");
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

/// `--max-size` in bytes.
fn max_size(a: &Args) -> Result<u64, CliError> {
    a.max_size.as_deref().map_or(Ok(DEFAULT_MAX_SIZE), |s| {
        memlens::core::size::parse_size(s)
            .map_err(|e| CliError::usage(format!("bad --max-size: {e}"), None))
    })
}

fn dump_physical(
    a: &Args,
    metrics: &mut crate::plugins::ChainMetrics,
) -> Result<(u64, u64), CliError> {
    let max = max_size(a)?;
    let t = crate::target::open_physical(&a.target, metrics)?;
    let ranges = t.memory.ranges();
    let lens: Vec<u64> = ranges.iter().map(|r| r.len).collect();
    let total = check_total(&lens, max, "physical ranges", a.format == DumpFormat::Elf)?;
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
                    // Holes stay holes: the file was sized first.
                    |addr, _, b| b.map_or(Ok(()), |b| file.write_all_at(b, addr)),
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

fn dump_process(
    a: &Args,
    pid: u32,
    metrics: &mut crate::plugins::ChainMetrics,
) -> Result<(u64, u64), CliError> {
    let max = max_size(a)?;
    let os = crate::target::open_os(&a.target, metrics)?;
    let proc = os.process(pid).map_err(CliError::target)?;
    let maps = proc.maps().map_err(CliError::target)?;
    let mem = proc.memory();
    // [vvar] is kernel data that faults on read on some kernels; a core leaves it out.
    let maps: Vec<_> = maps
        .into_iter()
        .filter(|m| m.path.as_deref() != Some("[vvar]") && m.end.0 > m.start.0)
        .collect();
    let lens: Vec<u64> = maps.iter().map(|m| m.end.0 - m.start.0).collect();
    let total = check_total(&lens, max, &format!("mappings of process {pid}"), true)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A forged mapping of almost 2^64 bytes, or several that overflow together, are
    /// refused before anything is written; real sizes pass.
    #[test]
    fn totals_are_checked_without_overflow() {
        let forged = [u64::MAX - 0x2000];
        let e = check_total(&forged, DEFAULT_MAX_SIZE, "mappings", true).unwrap_err();
        assert!(e.to_string().contains("--max-size"), "{e}");
        let e = check_total(&[u64::MAX, 2], u64::MAX, "mappings", true).unwrap_err();
        assert!(e.to_string().contains("more than 2^64"), "{e}");
        assert_eq!(
            check_total(&[4096, 8192], 1 << 20, "m", true).unwrap(),
            12288
        );
        assert!(check_total(&[1 << 20], u64::MAX, "m", true).is_ok());
        let many = vec![4096u64; MAX_SEGMENTS + 1];
        assert!(check_total(&many, u64::MAX, "m", true).is_err());
        assert!(check_total(&many, u64::MAX, "m", false).is_ok());
    }

    /// A core whose segments are unreadable but for one page: the unreadable steps are
    /// holes (the file is sparse), the rest zeros, and the file has its full length.
    #[test]
    fn unreadable_steps_are_holes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("core");
        let seg = |vaddr, len| CoreSegment {
            paddr: 0,
            vaddr,
            len,
            flags: core_file::PF_R,
        };
        let w = CoreWriter::new(
            core_file::EM_X86_64,
            vec![],
            vec![seg(0, 64 << 20), seg(1 << 40, 4096)],
        );
        let file = std::fs::File::create(&path).unwrap();
        let pb = indicatif::ProgressBar::hidden();
        let bad = write_core(
            &w,
            file,
            &path,
            &pb,
            |s| s.vaddr,
            |addr, b| {
                if addr == 1 << 40 {
                    b.fill(0xab);
                    Ok(())
                } else {
                    Err(memlens::core::Error::Gap {
                        addr: PhysAddr(addr),
                    })
                }
            },
        )
        .unwrap();
        assert_eq!(bad, 64 << 20);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), w.file_len());
        // 64 MiB of holes: far fewer blocks than bytes (512-byte blocks).
        assert!(meta.blocks() * 512 < 8 << 20, "{} blocks", meta.blocks());
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[bytes.len() - 4096..].iter().all(|b| *b == 0xab));
        assert!(bytes[4096..4096 + (64 << 20)].iter().all(|b| *b == 0));
        // A device cannot have holes (nor be resized): it gets the zeros.
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let gap = |addr, _: &mut [u8]| {
            Err(memlens::core::Error::Gap {
                addr: PhysAddr(addr),
            })
        };
        assert!(write_core(&w, null, &path, &pb, |s| s.vaddr, gap).is_ok());
    }
}

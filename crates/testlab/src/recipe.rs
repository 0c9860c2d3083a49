//! Building one scenario: boot, record, stop, dump, post-process, write `truth.json`.
//!
//! Key decision: everything is recorded from *one* stop of the guest — registers,
//! translations and all dump formats — so every file of a scenario describes identical
//! memory. The build happens in `<name>.building/` and is renamed into place only when
//! complete, so a crash never leaves a half scenario that looks finished.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dumps::{self, PhysRange};
use crate::error::{Error, Result};
use crate::initramfs::{self, Initramfs};
use crate::provision::{self, Kernel};
use crate::qemu;
use crate::qmp::{DumpFormat, Qmp};
use crate::spec::{Arch, ScenarioSpec};
use crate::truth::{self, GuestTruth, MarkerKind, MonitorTruth, Translation, Truth, TRUTH_FORMAT};
use crate::util;

/// File names inside a scenario folder.
pub mod files {
    /// Raw physical image (offset = guest-physical address, sparse).
    pub const RAW: &str = "memory.raw";
    /// ELF core from `dump-guest-memory` (format elf, paging=false).
    pub const ELF: &str = "memory.elf";
    /// makedumpfile flattened format (QEMU `kdump-zlib`).
    pub const KDUMP_FLAT: &str = "memory.kdump-flat";
    /// Normal compressed kdump (`makedumpfile -R`).
    pub const KDUMP: &str = "memory.kdump";
    /// Serial console log.
    pub const CONSOLE: &str = "console.log";
    /// Ground truth.
    pub const TRUTH: &str = "truth.json";
    /// Kernel image as booted.
    pub const VMLINUZ: &str = "vmlinuz";
    /// Uncompressed kernel ELF (x86-64).
    pub const VMLINUX: &str = "vmlinux";
    /// Kernel config.
    pub const CONFIG: &str = "config";
    /// The initramfs.
    pub const INITRD: &str = "initrd.gz";
}

/// Kernel + initramfs + host tools for one architecture.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The kernel.
    pub kernel: Kernel,
    /// The initramfs.
    pub initrd: Initramfs,
}

/// Provisions everything a boot of `spec` needs (packages, kernel, initramfs).
pub fn prepare(spec: &ScenarioSpec) -> Result<Prepared> {
    let arch = spec.arch;
    provision::ensure_packages(arch)?;
    let kernel = provision::ensure_kernel_series(arch, spec.kernel_series)?;
    let busybox = provision::ensure_busybox(arch)?;
    let initrd = initramfs::ensure_initramfs(&kernel, &busybox)?;
    Ok(Prepared { kernel, initrd })
}

/// Folder of a finished scenario.
pub fn scenario_dir(name: &str) -> PathBuf {
    util::lab_dir().join("scenarios").join(name)
}

/// Stops the guest so that some vCPU's page tables are the marker's: stop, check every
/// vCPU with `gva2gpa` of the marker's first heap string against its pagemap address; if
/// none matches, `cont`, wait a little, and try again. Returns (vCPU, attempts); `None` if
/// the marker was never caught (the guest is left stopped either way).
pub fn stop_on_marker(
    qmp: &mut Qmp,
    guest: &GuestTruth,
    cpus: u32,
    max_attempts: u32,
) -> Result<(Option<u32>, u32)> {
    let probe = guest
        .marker
        .of_kind(MarkerKind::Heap)
        .find(|s| s.pa.is_some())
        .cloned();
    let mut attempts = 0;
    loop {
        attempts += 1;
        qmp.stop()?;
        if let Some(p) = &probe {
            for cpu in 0..cpus {
                if qmp.gva2gpa(p.va, cpu)? == p.pa {
                    return Ok((Some(cpu), attempts));
                }
            }
        }
        if probe.is_none() || attempts >= max_attempts {
            return Ok((None, attempts));
        }
        qmp.cont()?;
        std::thread::sleep(Duration::from_millis(50 + 37 * u64::from(attempts % 7)));
    }
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    let _ = fs::remove_file(to);
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to)
        .map(drop)
        .map_err(Error::io("copy", from))
}

const KERNEL_SYMBOLS: &[&str] = &[
    "_text",
    "_stext",
    "init_task",
    "init_top_pgt",
    "swapper_pg_dir",
    "page_offset_base",
    "phys_base",
    "__start_BTF",
    "linux_banner",
    "init_mm",
];

/// Boots the scenario, records it and writes its folder. Returns the truth.
pub fn build(spec: &ScenarioSpec, prep: &Prepared) -> Result<Truth> {
    let t0 = Instant::now();
    let final_dir = scenario_dir(spec.name);
    // Not `with_extension`: a name such as `x86_64-6.12` has a dot.
    let dir = final_dir.with_file_name(format!("{}.building", spec.name));
    util::remove_any(&dir)?;
    util::mkdirs(&dir)?;
    let mut q = qemu::launch(spec, &prep.kernel, &prep.initrd, &dir)?;
    let console = q.wait_for_console(truth::READY_LINE, qemu::boot_timeout(spec.arch))?;
    log::info!(
        "{}: guest ready after {:.1} s",
        spec.name,
        t0.elapsed().as_secs_f64()
    );
    let guest = truth::parse_guest_truth(&console)?;
    let mut qmp = Qmp::connect(&q.qmp_socket, Duration::from_secs(10))?;
    let qemu_version = {
        let v = qmp.version.get("qemu").cloned().unwrap_or(Value::Null);
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        format!("{}.{}.{}", n("major"), n("minor"), n("micro"))
    };
    // Let the marker settle into its spin loop before stopping.
    std::thread::sleep(Duration::from_millis(300));
    let (marker_cpu, stop_attempts) = stop_on_marker(&mut qmp, &guest, spec.smp, 40)?;
    match marker_cpu {
        Some(c) => log::info!(
            "{}: marker caught on vCPU {c} after {stop_attempts} stop(s)",
            spec.name
        ),
        None => log::warn!(
            "{}: marker not on any vCPU after {stop_attempts} stops",
            spec.name
        ),
    }
    let mut monitor = MonitorTruth {
        marker_cpu,
        stop_attempts,
        ..Default::default()
    };
    monitor.registers_raw = qmp.hmp("info registers -a")?;
    monitor.cpus = truth::parse_registers(&monitor.registers_raw);
    let user_cpu = marker_cpu.unwrap_or(0);
    for s in &guest.marker.strings {
        let label = format!("marker {:?} {}", s.kind, s.index).to_lowercase();
        let pa = qmp.gva2gpa(s.va, user_cpu)?;
        monitor.translations.push(Translation {
            label,
            cpu: user_cpu,
            va: s.va,
            pa,
        });
    }
    for name in KERNEL_SYMBOLS {
        let Some(&va) = guest.kallsyms.get(*name) else {
            continue;
        };
        for cpu in 0..spec.smp {
            let pa = qmp.gva2gpa(va, cpu)?;
            monitor.translations.push(Translation {
                label: format!("kallsyms {name}"),
                cpu,
                va,
                pa,
            });
        }
    }
    if spec.arch == Arch::X86_64 {
        if let Some(&sym) = guest.kallsyms.get("page_offset_base") {
            for cpu in 0..spec.smp {
                if let Some(v) = qmp.read_virt_u64(sym, cpu)? {
                    monitor.page_offset_base = Some(v);
                    break;
                }
            }
        }
        if let Some(pob) = monitor.page_offset_base {
            let mut targets: Vec<(String, u64)> =
                vec![("direct map of physical 0x1000000".into(), 0x100_0000)];
            for s in guest
                .marker
                .strings
                .iter()
                .filter(|s| s.kind == MarkerKind::Heap)
            {
                if let Some(pa) = s.pa {
                    targets.push((format!("direct map of marker heap {}", s.index), pa));
                }
            }
            for (label, pa) in targets {
                for cpu in 0..spec.smp {
                    let got = qmp.gva2gpa(pob.wrapping_add(pa), cpu)?;
                    monitor.translations.push(Translation {
                        label: label.clone(),
                        cpu,
                        va: pob.wrapping_add(pa),
                        pa: got,
                    });
                }
            }
        }
    }
    monitor.mtree_raw = qmp.hmp("info mtree -f")?;

    let elf = dir.join(files::ELF);
    let flat = dir.join(files::KDUMP_FLAT);
    let kdump = dir.join(files::KDUMP);
    let t = Instant::now();
    qmp.dump_guest_memory(&elf, DumpFormat::Elf)?;
    log::info!(
        "{}: ELF dump in {:.1} s",
        spec.name,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    qmp.dump_guest_memory(&flat, DumpFormat::KdumpZlib)?;
    log::info!(
        "{}: kdump-zlib dump in {:.1} s",
        spec.name,
        t.elapsed().as_secs_f64()
    );
    let _ = qmp.quit();
    drop(qmp);
    q.kill();

    let input = File::open(&flat).map_err(Error::io("open", &flat))?;
    util::run(
        Command::new("makedumpfile")
            .arg("-R")
            .arg(&kdump)
            .stdin(input),
    )?;
    let elf_segments = dumps::program_headers(&elf)?;
    let ram: Vec<PhysRange> = guest
        .iomem
        .iter()
        .filter(|e| e.depth == 0 && e.name == "System RAM")
        .map(|e| PhysRange {
            start: e.start,
            end: e.end.saturating_add(1),
        })
        .collect();
    let t = Instant::now();
    let (raw_ranges, raw_len) = dumps::write_raw(&elf, &dir.join(files::RAW), &ram)?;
    log::info!(
        "{}: raw image ({raw_len:#x} bytes) in {:.1} s",
        spec.name,
        t.elapsed().as_secs_f64()
    );

    link_or_copy(&prep.kernel.vmlinuz, &dir.join(files::VMLINUZ))?;
    link_or_copy(&prep.kernel.config, &dir.join(files::CONFIG))?;
    link_or_copy(&prep.initrd.path, &dir.join(files::INITRD))?;
    if let Some(v) = &prep.kernel.vmlinux {
        link_or_copy(v, &dir.join(files::VMLINUX))?;
    }
    let truth = Truth {
        format: TRUTH_FORMAT,
        scenario: spec.name.into(),
        arch: spec.arch,
        ram_bytes: spec.memory_bytes(),
        cpus: spec.smp,
        qemu_command: q.command.clone(),
        qemu_version,
        assets_hash: initramfs::assets_hash(),
        guest,
        monitor,
        elf_segments,
        raw_ranges,
    };
    let json = serde_json::to_vec_pretty(&truth).map_err(|source| Error::Json {
        what: "serialize truth".into(),
        source,
    })?;
    util::write_atomic(&dir.join(files::TRUTH), &json)?;
    util::remove_any(&final_dir)?;
    fs::rename(&dir, &final_dir)
        .map_err(Error::io("rename scenario folder into place", &final_dir))?;
    log::info!(
        "{}: built in {:.1} s",
        spec.name,
        t0.elapsed().as_secs_f64()
    );
    Ok(truth)
}

//! Ground truth: what the guest and QEMU said about the machine at dump time.
//!
//! Key decision: in-guest truth is printed by the marker process to the serial console
//! between `===TESTLAB-BEGIN <section>===` / `===TESTLAB-END <section>===` lines and parsed
//! here on the host; QEMU's monitor supplies the rest (registers, `gva2gpa`, `info mtree`).
//! The guest never needs a disk or a network, and the raw records are kept next to the
//! parsed ones so a parser bug can be diagnosed from `truth.json` alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dumps::PhysRange;
use crate::error::{Error, Result};
use crate::spec::Arch;

/// Version of the `truth.json` layout; bumped when a field changes meaning.
pub const TRUTH_FORMAT: u32 = 1;

/// Everything known about one recorded guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// [`TRUTH_FORMAT`] of the writer.
    pub format: u32,
    /// Scenario name.
    pub scenario: String,
    /// Guest architecture.
    pub arch: Arch,
    /// Guest RAM (`-m`) in bytes.
    pub ram_bytes: u64,
    /// Number of vCPUs.
    pub cpus: u32,
    /// The QEMU command line used (program first).
    pub qemu_command: Vec<String>,
    /// QEMU version (`major.minor.micro`).
    pub qemu_version: String,
    /// Hash of the lab's embedded guest assets (marker, init); stale caches are rebuilt.
    pub assets_hash: String,
    /// What the guest itself reported.
    pub guest: GuestTruth,
    /// What QEMU's monitor reported while the guest was stopped.
    pub monitor: MonitorTruth,
    /// Program headers of the ELF dump (`PT_NOTE` and `PT_LOAD`s).
    pub elf_segments: Vec<crate::dumps::ProgramHeader>,
    /// The guest-physical ranges copied into the raw image (RAM only: VGA memory and the
    /// BIOS ROM of the ELF dump are left out).
    pub raw_ranges: Vec<PhysRange>,
}

/// In-guest ground truth, parsed from the marker's console records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestTruth {
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -v`.
    pub kernel_version: String,
    /// `uname -m`.
    pub machine: String,
    /// `/proc/cmdline`.
    pub kernel_cmdline: String,
    /// Every process in `/proc` at snapshot time (taken by the marker without forking).
    pub processes: Vec<ProcessTruth>,
    /// `/proc/modules`.
    pub modules: Vec<ModuleTruth>,
    /// The marker process: its pid, strings and maps.
    pub marker: Marker,
    /// Selected `/proc/kallsyms` symbols (name → address), vmlinux symbols only.
    pub kallsyms: BTreeMap<String, u64>,
    /// Number of lines in `/proc/kallsyms` (all symbols, modules included).
    pub kallsyms_lines: u64,
    /// Number of vmlinux (non-module) symbols in `/proc/kallsyms`.
    pub kallsyms_vmlinux_lines: u64,
    /// `/proc/iomem` (nesting flattened; `depth` is the indentation level).
    pub iomem: Vec<IomemEntry>,
}

/// One process as `/proc/<pid>/stat` and `/proc/<pid>/cmdline` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTruth {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// `comm` (the task name, at most 15 bytes).
    pub comm: String,
    /// State letter (`R`, `S`, ...).
    pub state: String,
    /// `argv` from `/proc/<pid>/cmdline` (empty for kernel threads).
    pub cmdline: Vec<String>,
}

/// One line of `/proc/modules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleTruth {
    /// Module name.
    pub name: String,
    /// Size in bytes (core layout).
    pub size: u64,
    /// Reference count.
    pub refcount: u32,
    /// Module base address (0 if hidden).
    pub address: u64,
}

/// One line of `/proc/iomem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IomemEntry {
    /// First address.
    pub start: u64,
    /// Last address (inclusive, as `/proc/iomem` prints it).
    pub end: u64,
    /// Nesting depth (0 = top level).
    pub depth: u32,
    /// Resource name (`System RAM`, `Kernel code`, ...).
    pub name: String,
}

/// Where a marker string lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    /// `malloc`ed (in `[heap]`).
    Heap,
    /// The start of page `index` of an anonymous private mapping.
    Mmap,
    /// `argv[index]` (on the stack).
    Argv,
    /// `envp[index]` (on the stack), a full `NAME=value` string.
    Env,
}

/// A string the marker placed (or found) in its memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerString {
    /// Where it lives.
    pub kind: MarkerKind,
    /// Index within its kind (page index for [`MarkerKind::Mmap`]).
    pub index: u32,
    /// Virtual address in the marker process.
    pub va: u64,
    /// Physical address from `/proc/self/pagemap` (`None` if not present).
    pub pa: Option<u64>,
    /// The exact bytes at `va` (no NUL).
    pub text: String,
}

/// The marker process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Its pid.
    pub pid: u32,
    /// Guest page size.
    pub page_size: u64,
    /// Start of the anonymous mapping.
    pub mmap_base: u64,
    /// Number of pages in it.
    pub mmap_pages: u32,
    /// All its strings.
    pub strings: Vec<MarkerString>,
    /// `/proc/<pid>/maps`.
    pub maps: Vec<MapEntry>,
}

impl Marker {
    /// The strings of one kind, in index order.
    pub fn of_kind(&self, kind: MarkerKind) -> impl Iterator<Item = &MarkerString> {
        self.strings.iter().filter(move |s| s.kind == kind)
    }
}

/// One line of `/proc/<pid>/maps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapEntry {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Permissions, e.g. `rw-p`.
    pub perms: String,
    /// File offset.
    pub offset: u64,
    /// Device `major:minor`.
    pub dev: String,
    /// Inode.
    pub inode: u64,
    /// Path or pseudo-name (`[heap]`, `[stack]`); empty for anonymous mappings.
    pub path: String,
}

/// State of one vCPU from `info registers -a`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuRegisters {
    /// vCPU index.
    pub cpu: u32,
    /// Registers by the monitor's names (`RIP`, `CR3`, `EFER`, `CS.base`, `GDT.limit`,
    /// `PC`, `X0`, ...); values that do not fit in 64 bits (XMM) are left out.
    pub regs: BTreeMap<String, u64>,
}

impl CpuRegisters {
    /// One register by its monitor name.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.regs.get(name).copied()
    }
}

/// One `gva2gpa` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    /// What the address is (`marker heap 0`, `kallsyms init_task`, `direct map of marker heap 0`).
    pub label: String,
    /// vCPU whose page tables were used.
    pub cpu: u32,
    /// Guest-virtual address.
    pub va: u64,
    /// Guest-physical address, `None` if QEMU said "Unmapped".
    pub pa: Option<u64>,
}

/// What QEMU's monitor reported while the guest was stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorTruth {
    /// `info registers -a`, verbatim.
    pub registers_raw: String,
    /// Parsed from `registers_raw`.
    pub cpus: Vec<CpuRegisters>,
    /// The vCPU that was running the marker when the guest was stopped (its CR3 is the
    /// marker's page table root), if one was found.
    pub marker_cpu: Option<u32>,
    /// How many stop/cont rounds it took to catch the marker on a vCPU.
    pub stop_attempts: u32,
    /// `gva2gpa` results.
    pub translations: Vec<Translation>,
    /// Value of the kernel variable `page_offset_base` (x86-64; start of the direct map).
    pub page_offset_base: Option<u64>,
    /// `info mtree -f`, verbatim.
    pub mtree_raw: String,
}

impl MonitorTruth {
    /// The physical address QEMU gave for the first translated pair labelled `label`
    /// (`kallsyms init_top_pgt`, `direct map of marker heap 0`), on any vCPU.
    pub fn translated(&self, label: &str) -> Option<u64> {
        self.translations
            .iter()
            .filter(|t| t.label == label)
            .find_map(|t| t.pa)
    }
}

impl Truth {
    /// The marker process as listed in [`GuestTruth::processes`].
    pub fn marker_process(&self) -> Option<&ProcessTruth> {
        self.guest
            .processes
            .iter()
            .find(|p| p.pid == self.guest.marker.pid)
    }
    /// Registers of the vCPU that ran the marker.
    pub fn marker_cpu_registers(&self) -> Option<&CpuRegisters> {
        let c = self.monitor.marker_cpu?;
        self.monitor.cpus.iter().find(|r| r.cpu == c)
    }
    /// The marker's page-table root as the stopped vCPU had it: CR3 on x86-64 (`None` on
    /// AArch64, whose monitor does not print TTBR0/TTBR1, or if the marker was not caught).
    pub fn marker_page_table_root(&self) -> Option<u64> {
        match self.arch {
            Arch::X86_64 => self.marker_cpu_registers()?.get("CR3"),
            Arch::Aarch64 => None,
        }
    }
    /// A kallsyms address by name.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.guest.kallsyms.get(name).copied()
    }
}

/// Name of the comm the marker runs under.
pub const MARKER_COMM: &str = "memlens-marker";
/// Name of the comm of the busybox-script marker.
pub const SLEEPER_COMM: &str = "lab-sleeper";

/// Line the marker prints when the in-guest truth is complete.
pub const READY_LINE: &str = "===TESTLAB-READY===";

/// Splits a console log into its `===TESTLAB-BEGIN x===` … `===TESTLAB-END x===` sections.
/// Carriage returns are dropped; lines outside sections (kernel messages) are ignored.
pub fn console_sections(console: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for raw in console.split('\n') {
        let line = raw.trim_end_matches('\r');
        if let Some(name) = line
            .strip_prefix("===TESTLAB-BEGIN ")
            .and_then(|r| r.strip_suffix("==="))
        {
            out.insert(name.to_string(), Vec::new());
            current = Some(name.to_string());
        } else if line.starts_with("===TESTLAB-END ") {
            current = None;
        } else if let Some(c) = &current {
            if let Some(v) = out.get_mut(c) {
                v.push(line.to_string());
            }
        }
    }
    out
}

fn hex(what: &str, s: &str) -> Result<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|_| Error::parse(what, "a hexadecimal number", s))
}

fn dec<T: std::str::FromStr>(what: &str, s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| Error::parse(what, "a decimal number", s))
}

fn section<'a>(secs: &'a BTreeMap<String, Vec<String>>, name: &str) -> Result<&'a [String]> {
    secs.get(name).map(Vec::as_slice).ok_or_else(|| {
        Error::parse(
            "console log",
            format!("a `===TESTLAB-BEGIN {name}===` section"),
            "(section missing)",
        )
    })
}

/// Parses the in-guest truth from a complete console log.
pub fn parse_guest_truth(console: &str) -> Result<GuestTruth> {
    let secs = console_sections(console);
    let mut g = GuestTruth::default();
    let uname = section(&secs, "uname")?;
    g.kernel_release = uname.first().cloned().unwrap_or_default();
    g.kernel_version = uname.get(1).cloned().unwrap_or_default();
    g.machine = uname.get(2).cloned().unwrap_or_default();
    g.kernel_cmdline = section(&secs, "cmdline")?
        .first()
        .cloned()
        .unwrap_or_default();
    g.marker = parse_marker(section(&secs, "marker")?)?;
    g.marker.maps = section(&secs, "maps")?
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| parse_map_line(l))
        .collect::<Result<_>>()?;
    g.processes = section(&secs, "ps")?
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| parse_ps_line(l))
        .collect::<Result<_>>()?;
    g.processes.sort_by_key(|p| p.pid);
    g.modules = section(&secs, "modules")?
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| parse_module_line(l))
        .collect::<Result<_>>()?;
    for l in section(&secs, "kallsyms")? {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let ["count", total, vmlinux] = f.as_slice() {
            g.kallsyms_lines = dec("kallsyms line count", total)?;
            g.kallsyms_vmlinux_lines = dec("kallsyms vmlinux count", vmlinux)?;
        } else if let [addr, _ty, name] = f.as_slice() {
            g.kallsyms
                .entry((*name).to_string())
                .or_insert(hex("kallsyms address", addr)?);
        }
    }
    g.iomem = section(&secs, "iomem")?
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_iomem_line(l))
        .collect::<Result<_>>()?;
    Ok(g)
}

fn parse_marker(lines: &[String]) -> Result<Marker> {
    let mut m = Marker::default();
    for l in lines {
        let f: Vec<&str> = l.split(' ').collect();
        match f.as_slice() {
            ["pid", p] => m.pid = dec("marker pid", p)?,
            ["page_size", p] => m.page_size = dec("marker page size", p)?,
            ["mmap_base", a, n] => {
                m.mmap_base = hex("marker mmap base", a)?;
                m.mmap_pages = dec("marker mmap page count", n)?;
            }
            ["item", kind, idx, va, pa, text] => {
                let kind = match *kind {
                    "heap" => MarkerKind::Heap,
                    "mmap" => MarkerKind::Mmap,
                    "argv" => MarkerKind::Argv,
                    "env" => MarkerKind::Env,
                    other => {
                        return Err(Error::parse(
                            "marker item kind",
                            "heap|mmap|argv|env",
                            other,
                        ))
                    }
                };
                let pa = hex("marker item pa", pa)?;
                m.strings.push(MarkerString {
                    kind,
                    index: dec("marker item index", idx)?,
                    va: hex("marker item va", va)?,
                    pa: (pa != 0).then_some(pa),
                    text: (*text).to_string(),
                });
            }
            [""] => {}
            _ => {
                return Err(Error::parse(
                    "marker record",
                    "`pid N`, `page_size N`, `mmap_base 0xA N` or `item KIND I 0xVA 0xPA TEXT`",
                    l,
                ))
            }
        }
    }
    if m.pid == 0 {
        return Err(Error::parse(
            "marker section",
            "a `pid N` line",
            &lines.join("\\n"),
        ));
    }
    Ok(m)
}

/// Parses one `/proc/<pid>/maps` line.
pub fn parse_map_line(l: &str) -> Result<MapEntry> {
    let what = "maps line";
    let expected = "`start-end perms offset dev inode [path]`";
    let mut it = l.splitn(6, ' ');
    let mut next = || it.next().ok_or_else(|| Error::parse(what, expected, l));
    let range = next()?;
    let perms = next()?.to_string();
    let offset = hex("maps offset", next()?)?;
    let dev = next()?.to_string();
    let inode = dec("maps inode", next()?)?;
    let path = it.next().unwrap_or("").trim().to_string();
    let (s, e) = range
        .split_once('-')
        .ok_or_else(|| Error::parse(what, expected, l))?;
    Ok(MapEntry {
        start: hex("maps start", s)?,
        end: hex("maps end", e)?,
        perms,
        offset,
        dev,
        inode,
        path,
    })
}

/// Parses one marker `ps` record: `<pid> <cmdline-hex or -> <raw /proc/pid/stat>`.
pub fn parse_ps_line(l: &str) -> Result<ProcessTruth> {
    let expected = "`PID HEX|- STAT`";
    let mut it = l.splitn(3, ' ');
    let pid: u32 = dec("ps pid", it.next().unwrap_or(""))?;
    let hexcmd = it
        .next()
        .ok_or_else(|| Error::parse("ps record", expected, l))?;
    let stat = it
        .next()
        .ok_or_else(|| Error::parse("ps record", expected, l))?;
    let mut cmdline = Vec::new();
    if hexcmd != "-" {
        let bytes = (0..hexcmd.len() / 2)
            .map(|i| u8::from_str_radix(hexcmd.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|_| Error::parse("ps cmdline", "hex bytes", hexcmd))?;
        let trimmed = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
        cmdline = trimmed
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
    }
    // stat: "pid (comm) S ppid ..." — comm may contain spaces and parentheses.
    let open = stat
        .find('(')
        .ok_or_else(|| Error::parse("stat line", "`pid (comm) state ppid ...`", stat))?;
    let close = stat
        .rfind(')')
        .ok_or_else(|| Error::parse("stat line", "`pid (comm) state ppid ...`", stat))?;
    let comm = stat.get(open + 1..close).unwrap_or("").to_string();
    let rest: Vec<&str> = stat
        .get(close + 1..)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let (state, ppid) = match rest.as_slice() {
        [s, p, ..] => (s.to_string(), dec("stat ppid", p)?),
        _ => return Err(Error::parse("stat line", "state and ppid after `)`", stat)),
    };
    Ok(ProcessTruth {
        pid,
        ppid,
        comm,
        state,
        cmdline,
    })
}

/// Parses one `/proc/modules` line.
pub fn parse_module_line(l: &str) -> Result<ModuleTruth> {
    let f: Vec<&str> = l.split_whitespace().collect();
    match f.as_slice() {
        [name, size, refs, _deps, _state, addr, ..] => Ok(ModuleTruth {
            name: (*name).to_string(),
            size: dec("module size", size)?,
            refcount: dec("module refcount", refs)?,
            address: hex("module address", addr)?,
        }),
        _ => Err(Error::parse(
            "/proc/modules line",
            "`name size refs deps state address`",
            l,
        )),
    }
}

/// Parses one `/proc/iomem` line (`  00100000-0fffffff : System RAM`).
pub fn parse_iomem_line(l: &str) -> Result<IomemEntry> {
    let depth = (l.len() - l.trim_start().len()) as u32 / 2;
    let (range, name) = l
        .trim()
        .split_once(" : ")
        .ok_or_else(|| Error::parse("iomem line", "`start-end : name`", l))?;
    let (s, e) = range
        .split_once('-')
        .ok_or_else(|| Error::parse("iomem line", "`start-end : name`", l))?;
    Ok(IomemEntry {
        start: hex("iomem start", s)?,
        end: hex("iomem end", e)?,
        depth,
        name: name.to_string(),
    })
}

/// Parses `info registers -a` output into per-vCPU register maps. Unknown lines are
/// skipped; a block without a `CPU#n` header is vCPU 0.
pub fn parse_registers(text: &str) -> Vec<CpuRegisters> {
    let mut cpus: Vec<CpuRegisters> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(n) = t
            .strip_prefix("CPU#")
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
        {
            cpus.push(CpuRegisters {
                cpu: n,
                regs: BTreeMap::new(),
            });
            continue;
        }
        if t.is_empty() {
            continue;
        }
        if cpus.is_empty() {
            cpus.push(CpuRegisters {
                cpu: 0,
                regs: BTreeMap::new(),
            });
        }
        let Some(cur) = cpus.last_mut() else { continue };
        parse_register_line(t, &mut cur.regs);
    }
    cpus
}

fn parse_register_line(t: &str, regs: &mut BTreeMap<String, u64>) {
    let toks: Vec<&str> = t.split_whitespace().collect();
    // x86 segment line: "CS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]"
    if let [name, sel, base, limit, flags, ..] = toks.as_slice() {
        if let Some(sel) = sel.strip_prefix('=').filter(|s| s.len() == 4) {
            if name.chars().all(|c| c.is_ascii_uppercase()) {
                for (k, v) in [
                    ("sel", sel),
                    ("base", base),
                    ("limit", limit),
                    ("flags", flags),
                ] {
                    if let Ok(x) = u64::from_str_radix(v, 16) {
                        regs.insert(format!("{name}.{k}"), x);
                    }
                }
                return;
            }
        }
    }
    // "GDT=     fffffe0000001000 0000007f"
    if let [name, base, limit] = toks.as_slice() {
        if let Some(n) = name.strip_suffix('=') {
            if let (Ok(b), Ok(l)) = (
                u64::from_str_radix(base, 16),
                u64::from_str_radix(limit, 16),
            ) {
                regs.insert(format!("{n}.base"), b);
                regs.insert(format!("{n}.limit"), l);
                return;
            }
        }
    }
    // "R8 =0000000000000810 R9 =..." pads short names with a space before '='.
    let joined = t.replace(" =", "=");
    for tok in joined.split_whitespace() {
        let Some((k, v)) = tok.split_once('=') else {
            continue;
        };
        let vector = ["XMM", "YMM", "ZMM", "FPR"].iter().any(|p| {
            k.starts_with(p)
                && k.len() > p.len()
                && k[p.len()..].chars().all(|c| c.is_ascii_digit())
        });
        if k.is_empty()
            || v.is_empty()
            || v.len() > 16
            || vector
            || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        if let Ok(x) = u64::from_str_radix(v, 16) {
            regs.insert(k.to_string(), x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_line_with_odd_comm() {
        let p = parse_ps_line("42 2f62696e2f736800782079 42 (a) b) S 1 42 0 0").unwrap();
        assert_eq!(p.comm, "a) b");
        assert_eq!(p.ppid, 1);
        assert_eq!(p.cmdline, vec!["/bin/sh", "x y"]);
        let k = parse_ps_line("2 - 2 (kthreadd) S 0 0 0").unwrap();
        assert!(k.cmdline.is_empty());
        assert!(parse_ps_line("x - y").is_err());
    }

    #[test]
    fn register_lines() {
        let text = "\nCPU#0\nRAX=0000000000000001 RBX=ffff888000000000\nR8 =0000000000000810 R9 =000000003af36900\nRIP=ffffffff81000000 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\nCS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]\nGDT=     fffffe0000001000 0000007f\nCR0=80050033 CR2=00007f0000000000 CR3=0000000001234000 CR4=000006f0\nEFER=0000000000000d01\nXMM00=0000000000000000000000000000ffff\nCPU#1\nCR3=0000000000005000\n";
        let c = parse_registers(text);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].get("CR3"), Some(0x1234000));
        assert_eq!(c[0].get("CS.sel"), Some(0x10));
        assert_eq!(c[0].get("GDT.base"), Some(0xfffffe0000001000));
        assert_eq!(c[0].get("EFER"), Some(0xd01));
        assert_eq!(c[0].get("R8"), Some(0x810));
        assert_eq!(c[0].get("RFL"), Some(0x246));
        assert_eq!(c[0].get("XMM00"), None);
        assert_eq!(c[1].cpu, 1);
        assert_eq!(c[1].get("CR3"), Some(0x5000));
    }

    #[test]
    fn sections_and_maps() {
        let s = console_sections(
            "noise\r\n===TESTLAB-BEGIN a===\r\nx\r\n===TESTLAB-END a===\r\nmore\n",
        );
        assert_eq!(s["a"], vec!["x"]);
        let m = parse_map_line("7f0000000000-7f0000008000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(m.end - m.start, 0x8000);
        assert_eq!(m.path, "");
        let h = parse_map_line("00400000-00401000 r--p 00000000 00:02 123                              /bin/memlens-marker").unwrap();
        assert_eq!(h.path, "/bin/memlens-marker");
        assert!(parse_map_line("garbage").is_err());
    }
}

/// Whether a task name read from a dump names the same task as the guest's own `comm`.
///
/// A workqueue worker's displayed name carries what it is doing at that moment: the kernel
/// appends `+desc` (busy) or `-desc` (idle, last workqueue) while the task has
/// `PF_WQ_WORKER` set, and a rescuer thread (`rcu_gp`) sets that flag only while it rescues.
/// That state changes between the guest's own listing and the dump, so the suffix is not
/// compared: names are equal, or equal once a trailing worker suffix is cut from either.
pub fn same_task_name(ours: &str, guest: &str) -> bool {
    fn worker_base(name: &str) -> &str {
        match name.strip_prefix("kworker/") {
            Some(rest) => {
                let cut = rest
                    .find(['+', '-'])
                    .map_or(name.len(), |i| i + "kworker/".len());
                &name[..cut]
            }
            None => name,
        }
    }
    fn plus_suffix(long: &str, short: &str) -> bool {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.len() > 1 && (rest.starts_with('+') || rest.starts_with('-')))
    }
    ours == guest
        || (ours.starts_with("kworker/") && worker_base(ours) == worker_base(guest))
        || plus_suffix(ours, guest)
        || plus_suffix(guest, ours)
}

#[cfg(test)]
mod name_tests {
    use super::same_task_name;

    #[test]
    fn worker_suffixes_are_not_compared() {
        assert!(same_task_name("kworker/0:1-events", "kworker/0:1+events"));
        assert!(same_task_name("kworker/0:1", "kworker/0:1-mm_percpu_wq"));
        assert!(same_task_name("rcu_gp-rcu_gp", "rcu_gp"));
        assert!(same_task_name("rcu_gp", "rcu_gp+rcu_gp"));
        assert!(same_task_name("init", "init"));
    }

    #[test]
    fn different_tasks_differ() {
        assert!(!same_task_name("kworker/0:1-events", "kworker/0:2-events"));
        assert!(!same_task_name("rcu_gp", "rcu_par_gp"));
        assert!(!same_task_name("sh", "init"));
        assert!(!same_task_name("rcu_gp-", "rcu_gp"));
        assert!(!same_task_name("irq/24-virtio0", "irq/24-virtio1"));
    }
}

//! ELF notes of memory dumps: per-vCPU registers (`CORE`/`NT_PRSTATUS`, QEMU's CPU-state
//! note) and the kernel's `VMCOREINFO`. **Key decision: notes are matched to vCPUs by
//! their order** (the n-th `NT_PRSTATUS` and the n-th `QEMU` note describe vCPU n), which
//! is how QEMU and the kernel write them; the register layout is chosen by the machine
//! (ELF `e_machine`, or the kdump header's `utsname.machine`). **Registers are never
//! decoded with another machine's layout**: a machine without a decoder here (32-bit ARM,
//! RISC-V, …) gets no registers, and its register notes are listed undecoded (name, type,
//! file offset, size) in [`NoteInfo::undecoded`]. Only when the file names no machine at
//! all (ELF `EM_NONE`; an empty `utsname.machine`, or QEMU's `Unknown` placeholder in
//! kdump files of aarch64 guests) is the layout guessed, and only from an exact
//! `NT_PRSTATUS` size (336 bytes x86-64, 392 aarch64, 144 i386).
//!
//! Layouts (verified against dumps written by QEMU 7.2):
//! - x86-64 `elf_prstatus` (336 bytes): `pr_reg` (27 × u64, `user_regs_struct`: r15, r14,
//!   r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
//!   eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs) at offset 112.
//! - i386 `elf_prstatus` (144 bytes): 17 × u32 (ebx, ecx, edx, esi, edi, ebp, eax, ds, es,
//!   fs, gs, orig_eax, eip, cs, eflags, esp, ss) at offset 72.
//! - aarch64 `elf_prstatus` (392 bytes): x0–x30, sp, pc, pstate (34 × u64) at offset 112.
//! - QEMU's x86 `QEMUCPUState` (name `QEMU`, type 0): u32 version, u32 size, rax, rbx, rcx,
//!   rdx, rsi, rdi, rsp, rbp, r8–r15, rip, rflags (u64 each, from offset 8), ten segment
//!   records of 24 bytes (cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt: u32 selector, limit,
//!   flags, pad, u64 base) from offset 152, CR0–CR4 from offset **392**, then
//!   kernel_gs_base at 432: 440 bytes in all. The same layout is written for 32-bit guests.
//!
//! Caps (see [`limits`](crate::limits)): at most [`MAX_NOTES`] notes across all note areas
//! of a file, names of at most [`MAX_NOTE_NAME`] bytes, register notes for at most
//! [`MAX_CPUS`] vCPUs (beyond any of these: an error naming the note's offset), and
//! VMCOREINFO truncated to [`MAX_VMCOREINFO`] bytes and [`MAX_VMCOREINFO_ENTRIES`] entries
//! (logged, and listed in [`NoteInfo::truncated`]).

use std::collections::BTreeMap;

use memlens_core::cpu::{Aarch64Registers, X86Registers};
use memlens_core::CpuRegisters;

use crate::bytes::{le32, le64, Bytes};
use crate::error::FileError;

pub use crate::limits::{
    MAX_CPUS, MAX_NOTES, MAX_NOTE_NAME, MAX_VMCOREINFO, MAX_VMCOREINFO_ENTRIES,
};

/// `NT_PRSTATUS`.
pub const NT_PRSTATUS: u32 = 1;

/// One ELF note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note<'a> {
    /// Name without the terminating NUL (`CORE`, `QEMU`, `VMCOREINFO`).
    pub name: &'a [u8],
    /// `n_type`.
    pub kind: u32,
    /// The descriptor bytes.
    pub desc: &'a [u8],
    /// File offset of the descriptor.
    pub offset: u64,
}

/// What the note areas of one file have used of the caps: one budget is shared by every
/// note area of a file, so that several `PT_NOTE`s cannot multiply them.
#[derive(Debug, Default)]
pub(crate) struct NoteBudget {
    notes: usize,
    prstatus: usize,
    qemu: usize,
}

/// Parses a notes blob (`PT_NOTE` segment or a kdump note area). A zero-filled tail (kdump
/// pads its note area) ends the list; anything else that does not fit is an error, and so
/// is a note beyond the caps of `budget`.
pub(crate) fn parse_notes<'a>(
    b: Bytes<'a>,
    budget: &mut NoteBudget,
) -> Result<Vec<Note<'a>>, FileError> {
    let mut out = Vec::new();
    let mut off = 0u64;
    while off + 12 <= b.len() {
        let namesz = u64::from(b.u32(off, "note n_namesz")?);
        let descsz = u64::from(b.u32(off + 4, "note n_descsz")?);
        let kind = b.u32(off + 8, "note n_type")?;
        if namesz == 0 && descsz == 0 && kind == 0 {
            break; // padding
        }
        if budget.notes >= MAX_NOTES {
            return Err(b.limit(
                off,
                "note (all note areas of the file)",
                format!("note number {}", budget.notes + 1),
                "MAX_NOTES",
                MAX_NOTES as u64,
            ));
        }
        if namesz > MAX_NOTE_NAME {
            return Err(b.limit(
                off,
                "note n_namesz",
                format!("a {namesz}-byte name"),
                "MAX_NOTE_NAME",
                MAX_NOTE_NAME,
            ));
        }
        let name_off = off + 12;
        let name = b.slice(name_off, namesz, "note name")?;
        let desc_off = name_off + align4(namesz);
        let desc = b.slice(desc_off, descsz, "note descriptor")?;
        let name = match name.iter().position(|&c| c == 0) {
            Some(n) => &name[..n],
            None => name,
        };
        let vcpus = match (name, kind) {
            (b"CORE", NT_PRSTATUS) => {
                Some((&mut budget.prstatus, "NT_PRSTATUS note (one per vCPU)"))
            }
            (b"QEMU", _) => Some((&mut budget.qemu, "QEMU CPU-state note (one per vCPU)")),
            _ => None,
        };
        if let Some((n, what)) = vcpus {
            *n += 1;
            if *n > MAX_CPUS {
                return Err(b.limit(
                    off,
                    what,
                    format!("vCPU {}", *n),
                    "MAX_CPUS",
                    MAX_CPUS as u64,
                ));
            }
        }
        budget.notes += 1;
        out.push(Note {
            name,
            kind,
            desc,
            offset: b.file_offset(desc_off),
        });
        off = desc_off + align4(descsz);
    }
    Ok(out)
}

fn align4(n: u64) -> u64 {
    n.saturating_add(3) & !3
}

/// The machine a dump was taken of, as far as register layouts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// x86-64.
    X86_64,
    /// 32-bit x86 (QEMU writes this for a guest that is not in long mode).
    I386,
    /// aarch64.
    Aarch64,
    /// A machine named by the file that has no register decoder here (for example
    /// `EM_ARM`): registers are left undecoded.
    Other,
    /// The file names no machine: guessed per note from its exact size, else undecoded.
    Unknown,
}

impl Machine {
    /// From an ELF `e_machine`.
    pub fn from_elf(e_machine: u16) -> Self {
        match e_machine {
            62 => Machine::X86_64,
            3 => Machine::I386,
            183 => Machine::Aarch64,
            0 => Machine::Unknown, // EM_NONE
            _ => Machine::Other,
        }
    }

    /// From `uname -m` (kdump header).
    pub fn from_uname(m: &str) -> Self {
        match m {
            "x86_64" => Machine::X86_64,
            "i386" | "i486" | "i586" | "i686" => Machine::I386,
            "aarch64" | "arm64" => Machine::Aarch64,
            // QEMU's kdump writer puts "Unknown" here for guests other than x86 (seen on
            // aarch64 dumps): the file names no machine.
            "" | "Unknown" | "unknown" => Machine::Unknown,
            _ => Machine::Other,
        }
    }
}

/// What the notes of a dump say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoteInfo {
    /// Registers per vCPU, in note order.
    pub cpus: Vec<CpuRegisters>,
    /// `VMCOREINFO` key/value pairs, when present.
    pub vmcoreinfo: Option<BTreeMap<String, String>>,
    /// Notes seen, by name and type, for `memlens info` (`CORE/1 × 2`).
    pub counts: BTreeMap<String, usize>,
    /// Register notes (`CORE`/`NT_PRSTATUS`, `QEMU`) left undecoded because no decoder
    /// for the machine exists; read them from the file at their offsets.
    pub undecoded: Vec<RawNote>,
    /// What was cut to a cap (VMCOREINFO beyond [`MAX_VMCOREINFO`] bytes or
    /// [`MAX_VMCOREINFO_ENTRIES`] entries), one sentence each.
    pub truncated: Vec<String>,
}

/// Where an undecoded note sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNote {
    /// Note name (`CORE`, `QEMU`).
    pub name: String,
    /// `n_type`.
    pub kind: u32,
    /// File offset of the descriptor.
    pub offset: u64,
    /// Descriptor size in bytes.
    pub len: u64,
}

impl NoteInfo {
    /// Notes seen by name and type (`CORE/1×2, VMCOREINFO/0×1`), at most 32 kinds and a
    /// count of the rest.
    pub fn counts_summary(&self) -> String {
        const SHOWN: usize = 32;
        let mut s: Vec<String> = self
            .counts
            .iter()
            .take(SHOWN)
            .map(|(k, n)| format!("{k}×{n}"))
            .collect();
        if self.counts.len() > SHOWN {
            s.push(format!("and {} more kinds", self.counts.len() - SHOWN));
        }
        s.join(", ")
    }

    /// A one-line description of [`NoteInfo::undecoded`] for dump details, or `None`.
    pub fn undecoded_summary(&self) -> Option<String> {
        if self.undecoded.is_empty() {
            return None;
        }
        let shown: Vec<String> = self
            .undecoded
            .iter()
            .take(8)
            .map(|n| format!("{}/{} at {:#x} ({} bytes)", n.name, n.kind, n.offset, n.len))
            .collect();
        let more = self.undecoded.len().saturating_sub(shown.len());
        Some(if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        })
    }
}

/// Extracts registers and VMCOREINFO from parsed notes.
pub(crate) fn interpret(notes: &[Note<'_>], machine: Machine) -> NoteInfo {
    let mut info = NoteInfo::default();
    let mut prstatus: Vec<&Note<'_>> = Vec::new();
    let mut qemu: Vec<&Note<'_>> = Vec::new();
    for n in notes {
        let key = format!("{}/{}", String::from_utf8_lossy(n.name), n.kind);
        *info.counts.entry(key).or_default() += 1;
        match (n.name, n.kind) {
            (b"CORE", NT_PRSTATUS) => prstatus.push(n),
            (b"QEMU", _) => qemu.push(n),
            (b"VMCOREINFO", _) if info.vmcoreinfo.is_none() => {
                let (map, cut) = vmcoreinfo_capped(n.desc, n.desc.len() as u64, n.offset);
                info.vmcoreinfo = Some(map);
                info.truncated.extend(cut);
            }
            _ => {}
        }
    }
    // parse_notes refuses more register notes than this; a caller that built its notes
    // some other way still gets no more vCPUs.
    let n = prstatus.len().max(qemu.len()).min(MAX_CPUS);
    for i in 0..n {
        let pr = prstatus.get(i).copied();
        let q = qemu.get(i).copied();
        let m = match machine {
            Machine::Unknown => match pr.map(|p| p.desc.len()) {
                Some(336) => Machine::X86_64,
                Some(392) => Machine::Aarch64,
                Some(144) => Machine::I386,
                _ => Machine::Other,
            },
            m => m,
        };
        let regs = match m {
            Machine::Aarch64 => pr.map(|p| CpuRegisters::Aarch64(aarch64_prstatus(p.desc))),
            Machine::X86_64 | Machine::I386 => {
                let mut r = match (m, pr) {
                    (Machine::I386, Some(p)) => i386_prstatus(p.desc),
                    (_, Some(p)) => x86_64_prstatus(p.desc),
                    (_, None) => X86Registers::default(),
                };
                if let Some(q) = q {
                    apply_qemu_state(q.desc, &mut r);
                }
                Some(CpuRegisters::X86(r))
            }
            Machine::Other | Machine::Unknown => {
                for note in pr.into_iter().chain(q) {
                    info.undecoded.push(RawNote {
                        name: String::from_utf8_lossy(note.name).into_owned(),
                        kind: note.kind,
                        offset: note.offset,
                        len: note.desc.len() as u64,
                    });
                }
                None
            }
        };
        if let Some(r) = regs {
            info.cpus.push(r);
        }
    }
    info
}

/// Index in `X86Registers::gpr` (hardware order RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
/// R8–R15) of each `user_regs_struct` slot 0..16 (r15 … rdi), or `None` to skip.
const USER_REGS_GPR: [usize; 15] = [15, 14, 13, 12, 5, 3, 11, 10, 9, 8, 0, 1, 2, 6, 7];

fn x86_64_prstatus(p: &[u8]) -> X86Registers {
    let reg = |i: usize| le64(p, 112 + 8 * i).unwrap_or(0);
    let mut r = X86Registers::default();
    for (slot, &g) in USER_REGS_GPR.iter().enumerate() {
        r.gpr[g] = reg(slot);
    }
    r.rip = reg(16);
    r.rflags = reg(18);
    r.gpr[4] = reg(19); // rsp
    r.fs_base = reg(21);
    r.gs_base = reg(22);
    r
}

fn i386_prstatus(p: &[u8]) -> X86Registers {
    let reg = |i: usize| u64::from(le32(p, 72 + 4 * i).unwrap_or(0));
    let mut r = X86Registers::default();
    // ebx, ecx, edx, esi, edi, ebp, eax → hardware order indices.
    for (slot, g) in [3usize, 1, 2, 6, 7, 5, 0].into_iter().enumerate() {
        r.gpr[g] = reg(slot);
    }
    r.rip = reg(12);
    r.rflags = reg(14);
    r.gpr[4] = reg(15);
    r
}

fn aarch64_prstatus(p: &[u8]) -> Aarch64Registers {
    let reg = |i: usize| le64(p, 112 + 8 * i).unwrap_or(0);
    let mut r = Aarch64Registers::default();
    for (i, x) in r.x.iter_mut().enumerate() {
        *x = reg(i);
    }
    r.sp = reg(31);
    r.pc = reg(32);
    r.pstate = reg(33);
    r
}

/// Offset of CR0 in QEMU's x86 CPU-state note.
pub const QEMU_CR0_OFFSET: usize = 392;

/// Fills general registers and CR0–CR4 from QEMU's CPU-state note (it is authoritative
/// for the control registers, which `NT_PRSTATUS` lacks).
fn apply_qemu_state(q: &[u8], r: &mut X86Registers) {
    let size = le32(q, 4).map_or(0, |s| s as usize).min(q.len());
    let q = &q[..size];
    let g = |i: usize| le64(q, 8 + 8 * i);
    // rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8..r15 → hardware order.
    let order = [0usize, 3, 1, 2, 6, 7, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15];
    for (i, &hw) in order.iter().enumerate() {
        if let Some(v) = g(i) {
            r.gpr[hw] = v;
        }
    }
    if let Some(v) = g(16) {
        r.rip = v;
    }
    if let Some(v) = g(17) {
        r.rflags = v;
    }
    // Segment bases: fs (index 3) and gs (index 4) of cs, ds, es, fs, gs, ss.
    let seg_base = |i: usize| le64(q, 152 + 24 * i + 16);
    if let Some(v) = seg_base(3) {
        r.fs_base = v;
    }
    if let Some(v) = seg_base(4) {
        r.gs_base = v;
    }
    let cr = |i: usize| le64(q, QEMU_CR0_OFFSET + 8 * i);
    if let (Some(c0), Some(c2), Some(c3), Some(c4)) = (cr(0), cr(2), cr(3), cr(4)) {
        r.cr0 = c0;
        r.cr2 = c2;
        r.cr3 = c3;
        r.cr4 = c4;
    }
    r.kernel_gs_base = le64(q, 432);
}

/// Parses VMCOREINFO text (`KEY=VALUE` lines; NULs and blank lines ignored; the first
/// value of a repeated key wins). Only the lines within the first [`MAX_VMCOREINFO`] bytes
/// and the first [`MAX_VMCOREINFO_ENTRIES`] keys are kept.
pub fn parse_vmcoreinfo(text: &[u8]) -> BTreeMap<String, String> {
    vmcoreinfo_capped(text, text.len() as u64, 0).0
}

/// [`parse_vmcoreinfo`] of the text at file offset `at`, which the file says is `claimed`
/// bytes long (`text` may hold only the first [`MAX_VMCOREINFO`] of them), plus a sentence
/// saying what was cut to the caps (also logged as a warning), if anything.
pub(crate) fn vmcoreinfo_capped(
    text: &[u8],
    claimed: u64,
    at: u64,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut cut = Vec::new();
    let mut text = text;
    if claimed.max(text.len() as u64) > MAX_VMCOREINFO {
        let window = &text[..text.len().min(MAX_VMCOREINFO as usize)];
        let keep = window
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        cut.push(format!(
            "{claimed} bytes, only the first {keep} (whole lines within MAX_VMCOREINFO = {MAX_VMCOREINFO}) read"
        ));
        text = &window[..keep];
    }
    let mut out = BTreeMap::new();
    let mut dropped = 0usize;
    for line in text.split(|&c| c == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        if let Some((k, v)) = line.split_once('=') {
            if k.is_empty() || out.contains_key(k) {
                continue;
            }
            if out.len() >= MAX_VMCOREINFO_ENTRIES {
                dropped += 1;
                continue;
            }
            out.insert(k.to_string(), v.to_string());
        }
    }
    if dropped > 0 {
        cut.push(format!(
            "{dropped} entries beyond MAX_VMCOREINFO_ENTRIES = {MAX_VMCOREINFO_ENTRIES} dropped"
        ));
    }
    let note = (!cut.is_empty()).then(|| {
        let s = format!("VMCOREINFO at offset {at:#x} truncated: {}", cut.join("; "));
        log::warn!("{s}");
        s
    });
    (out, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn notes_and_padding() {
        let mut b = Vec::new();
        for (name, kind, desc) in [
            (&b"CORE\0"[..], 1u32, &[7u8; 5][..]),
            (b"VMCOREINFO\0", 0, b"A=1\nB=2\n"),
        ] {
            b.extend_from_slice(&(name.len() as u32).to_le_bytes());
            b.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            b.extend_from_slice(&kind.to_le_bytes());
            b.extend_from_slice(name);
            b.resize(b.len().next_multiple_of(4), 0);
            b.extend_from_slice(desc);
            b.resize(b.len().next_multiple_of(4), 0);
        }
        b.extend_from_slice(&[0u8; 24]);
        let n = parse_notes(
            Bytes::new(&b, 0x100, Path::new("x")),
            &mut NoteBudget::default(),
        )
        .unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].name, b"CORE");
        assert_eq!(n[0].offset, 0x100 + 20);
        let info = interpret(&n, Machine::X86_64);
        assert_eq!(info.vmcoreinfo.unwrap()["B"], "2");
        // A lying descsz is an error that names the field and its offset.
        b[4] = 0xff;
        let e = parse_notes(
            Bytes::new(&b, 0x100, Path::new("x")),
            &mut NoteBudget::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("note descriptor"), "{e}");
    }
}

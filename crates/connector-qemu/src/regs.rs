//! Registers from the monitor's `info registers -a` text. **Key decision: parse the
//! monitor text by `NAME=hex` tokens** (QMP has no structured register query for
//! x86/aarch64 system state); unknown names are ignored, so format additions in newer QEMU
//! versions do not break parsing.
//!
//! x86: GPRs, RIP, RFLAGS, CR0/2/3/4, EFER, FS/GS bases. `KERNEL_GS_BASE` is not printed
//! by the monitor (left `None`). aarch64: X0–X30, SP, PC, PSTATE; the monitor does not print
//! TTBR0/TTBR1/TCR (QEMU's gdbstub can read them), so those stay `None`.

use std::collections::BTreeMap;

use memlens_core::cpu::{Aarch64Registers, X86Registers};
use memlens_core::CpuRegisters;

/// The registers of one vCPU block as `NAME -> value` (segment bases as `FS.base` …).
pub fn tokens(block: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in block.lines() {
        let l = glue_equals(line);
        let toks: Vec<&str> = l.split_whitespace().collect();
        let mut i = 0;
        while i < toks.len() {
            if let Some((name, val)) = toks[i].split_once('=') {
                let (val, used_next) = if val.is_empty() {
                    (toks.get(i + 1).copied().unwrap_or(""), true)
                } else {
                    (val, false)
                };
                if let Ok(v) = u64::from_str_radix(val, 16) {
                    out.insert(name.to_string(), v);
                }
                if matches!(name, "ES" | "CS" | "SS" | "DS" | "FS" | "GS" | "LDT" | "TR") {
                    if let Some(b) = toks
                        .get(i + 1)
                        .and_then(|b| u64::from_str_radix(b, 16).ok())
                    {
                        out.insert(format!("{name}.base"), b);
                    }
                }
                if used_next {
                    i += 1;
                }
            }
            i += 1;
        }
    }
    out
}

/// `line` without the spaces just before each `=` (`R8 =…` becomes `R8=…`), in one pass
/// (a loop of `replace` would be quadratic in a line of spaces).
fn glue_equals(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut spaces = 0;
    for c in line.chars() {
        match c {
            ' ' => spaces += 1,
            '=' => {
                spaces = 0;
                out.push('=');
            }
            c => {
                out.extend(std::iter::repeat_n(' ', spaces));
                spaces = 0;
                out.push(c);
            }
        }
    }
    out.extend(std::iter::repeat_n(' ', spaces));
    out
}

/// Splits `info registers -a` output into per-vCPU blocks (`CPU#n` headers); output
/// without headers is one block for vCPU 0.
pub fn blocks(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(n) = t.strip_prefix("CPU#").and_then(|n| n.trim().parse().ok()) {
            out.push((n, String::new()));
            continue;
        }
        if out.is_empty() {
            out.push((0, String::new()));
        }
        if let Some((_, b)) = out.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    out.retain(|(_, b)| !b.trim().is_empty());
    out
}

/// Builds core registers from one block's tokens; `aarch64` selects the layout.
/// `None` when the block has no instruction pointer (not a register dump).
pub fn registers(t: &BTreeMap<String, u64>, aarch64: bool) -> Option<CpuRegisters> {
    let g = |n: &str| t.get(n).copied();
    if aarch64 {
        let mut r = Aarch64Registers {
            pc: g("PC")?,
            sp: g("SP").unwrap_or(0),
            pstate: g("PSTATE").unwrap_or(0),
            ..Default::default()
        };
        for (i, x) in r.x.iter_mut().enumerate() {
            *x = g(&format!("X{i:02}")).unwrap_or(0);
        }
        return Some(CpuRegisters::Aarch64(r));
    }
    const GPR: [&str; 8] = ["AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI"];
    let long = t.contains_key("RIP");
    let p = if long { "R" } else { "E" };
    let mut r = X86Registers {
        rip: g(&format!("{p}IP"))?,
        rflags: g("RFL").or_else(|| g("EFL")).unwrap_or(0),
        cr0: g("CR0").unwrap_or(0),
        cr2: g("CR2").unwrap_or(0),
        cr3: g("CR3").unwrap_or(0),
        cr4: g("CR4").unwrap_or(0),
        efer: g("EFER"),
        fs_base: g("FS.base").unwrap_or(0),
        gs_base: g("GS.base").unwrap_or(0),
        kernel_gs_base: None,
        ..Default::default()
    };
    for (i, n) in GPR.iter().enumerate() {
        r.gpr[i] = g(&format!("{p}{n}")).unwrap_or(0);
    }
    if long {
        for i in 8..16 {
            r.gpr[i] = g(&format!("R{i}")).unwrap_or(0);
        }
    }
    Some(CpuRegisters::X86(r))
}

/// Parses `info registers -a` into (vCPU index, registers).
pub fn parse_all(text: &str, aarch64: bool) -> Vec<(usize, CpuRegisters)> {
    blocks(text)
        .into_iter()
        .filter_map(|(n, b)| Some((n, registers(&tokens(&b), aarch64)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shape of QEMU 7.2's x86-64 output (values made up).
    const X86: &str = "
CPU#0
RAX=0000000000000001 RBX=0000000000000002 RCX=0000000000000003 RDX=0000000000000004
RSI=0000000000000005 RDI=0000000000000006 RBP=0000000000000007 RSP=0000000000000008
R8 =0000000000000009 R9 =000000000000000a R10=000000000000000b R11=000000000000000c
R12=000000000000000d R13=000000000000000e R14=000000000000000f R15=0000000000000010
RIP=ffffffff81e0c4bb RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
ES =0000 0000000000000000 ffffffff 00c00000
CS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]
FS =0000 00007f0011112222 ffffffff 00c00000
GS =0000 ffff88800f600000 ffffffff 00c00000
GDT=     fffffe0000001000 0000007f
CR0=80050033 CR2=00007f1234567000 CR3=000000000abcd005 CR4=000006f0
EFER=0000000000000d01
XMM00=0000000000000000 0000000000000000 XMM01=0000000000000000 0000000000000000
CPU#1
RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000
RIP=ffffffff81000000 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=1
CR0=80050033 CR2=0000000000000000 CR3=0000000001234000 CR4=000006f0
";

    #[test]
    fn x86_64_two_cpus() {
        let all = parse_all(X86, false);
        assert_eq!(all.len(), 2);
        let CpuRegisters::X86(r) = &all[0].1 else {
            panic!("x86 expected")
        };
        assert_eq!(all[0].0, 0);
        assert_eq!(
            r.gpr,
            [1, 3, 4, 2, 8, 7, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16]
        );
        assert_eq!(r.rip, 0xffff_ffff_81e0_c4bb);
        assert_eq!(r.rflags, 0x246);
        assert_eq!(r.cr3, 0xabcd005);
        assert_eq!(r.cr2, 0x7f12_3456_7000);
        assert_eq!(r.efer, Some(0xd01));
        assert_eq!(r.fs_base, 0x7f00_1111_2222);
        assert_eq!(r.gs_base, 0xffff_8880_0f60_0000);
        let CpuRegisters::X86(r1) = &all[1].1 else {
            panic!()
        };
        assert_eq!((all[1].0, r1.cr3, r1.efer), (1, 0x1234000, None));
        let t = tokens(X86);
        assert_eq!(t.get("GDT"), Some(&0xffff_fe00_0000_1000));
    }

    #[test]
    fn aarch64_block() {
        let text = " PC=ffff800008e1a7c4 X00=0000000000000001 X01=0000000000000002\nX29=000000000000001d X30=000000000000001e  SP=ffff80000a003e80\nPSTATE=604000c5 -ZC- EL1h    FPCR=00000000 FPSR=00000000\n";
        let all = parse_all(text, true);
        let CpuRegisters::Aarch64(r) = &all[0].1 else {
            panic!()
        };
        assert_eq!(r.pc, 0xffff_8000_08e1_a7c4);
        assert_eq!((r.x[0], r.x[1], r.x[29], r.x[30]), (1, 2, 29, 30));
        assert_eq!(r.sp, 0xffff_8000_0a00_3e80);
        assert_eq!(r.pstate, 0x604000c5);
        assert_eq!(r.ttbr1, None);
    }

    #[test]
    fn spaces_before_equals_go_in_one_pass() {
        assert_eq!(glue_equals("R8 =1 R9  =2 A B=3 "), "R8=1 R9=2 A B=3 ");
        // A megabyte of spaces before a `=`: linear, not a replace per space.
        let long = format!("X{}=1", " ".repeat(1 << 20));
        assert_eq!(glue_equals(&long), "X=1");
        assert_eq!(tokens(&long).get("X"), Some(&1));
    }

    #[test]
    fn garbage_gives_nothing() {
        assert!(parse_all("", false).is_empty());
        assert!(parse_all("CPU#x\nhello = world\n==\n", false).is_empty());
    }
}

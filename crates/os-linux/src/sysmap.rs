//! `System.map` input (`symbols=PATH`): `ADDRESS TYPE NAME` lines as `nm` prints them.
//! **Key decision: the file gives link-time addresses;** the KASLR offset is applied by
//! [`shifted`] (from the user, VMCOREINFO's `KERNELOFFSET`, or 0), only to symbols inside
//! the kernel image (absolute and per-CPU symbols stay).

use crate::error::{LinuxError, Result};
use crate::kallsyms::{Symbol, SymbolTable};

/// Parses System.map text. Malformed lines are skipped; an input without any symbol is
/// an error.
pub fn parse(text: &str, what: &str) -> Result<SymbolTable> {
    let mut syms = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(a), Some(k), Some(n)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Ok(addr), Some(kind)) = (u64::from_str_radix(a, 16), k.chars().next()) else {
            continue;
        };
        if k.len() != 1 {
            continue;
        }
        syms.push(Symbol {
            name: n.to_string(),
            kind,
            addr,
        });
    }
    if syms.is_empty() {
        return Err(LinuxError::SymbolFile {
            path: what.into(),
            what: "no `ADDRESS TYPE NAME` lines".into(),
        });
    }
    Ok(SymbolTable::new(syms))
}

/// Reads and parses a System.map file.
pub fn load(path: &std::path::Path) -> Result<SymbolTable> {
    let text = std::fs::read_to_string(path).map_err(|e| LinuxError::SymbolFile {
        path: path.display().to_string(),
        what: e.to_string(),
    })?;
    parse(&text, &path.display().to_string())
}

/// The table with `offset` added to every symbol in the kernel image
/// (`>= 0xffffffff80000000`).
pub fn shifted(t: &SymbolTable, offset: u64) -> SymbolTable {
    SymbolTable::new(
        t.iter()
            .map(|s| Symbol {
                addr: if s.addr >= crate::kernel::START_KERNEL_MAP {
                    s.addr.wrapping_add(offset)
                } else {
                    s.addr
                },
                name: s.name.to_string(),
                kind: s.kind,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_shifts() {
        let t = parse(
            "ffffffff81000000 T _text\n0000000000000000 D fixed_percpu_data\nbad line\nffffffff82a0c940 D init_task\n",
            "test",
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.get("init_task"), Some(0xffffffff82a0c940));
        let s = shifted(&t, 0x1e00000);
        assert_eq!(s.get("_text"), Some(0xffffffff82e00000));
        assert_eq!(s.get("fixed_percpu_data"), Some(0));
        assert!(parse("nothing here", "x").is_err());
    }
}

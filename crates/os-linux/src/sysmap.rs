//! Symbol files (`symbols=PATH`), recognised by content: a `System.map` (`ADDRESS TYPE
//! NAME` lines as `nm` prints them), a `vmlinux` ELF (its `.symtab`, or when stripped the
//! kallsyms tables inside its `.rodata`), or a Volatility 3 ISF JSON (its `symbols`; the
//! types are not needed, BTF gives them). **Key decision: every file gives link-time
//! addresses;** the KASLR offset is applied by
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

/// Reads and parses a symbol file of any supported kind (see the module docs).
pub fn load(path: &std::path::Path) -> Result<SymbolTable> {
    let what = path.display().to_string();
    let err = |w: String| LinuxError::SymbolFile {
        path: what.clone(),
        what: w,
    };
    let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    if data.starts_with(b"\x7fELF") {
        return from_vmlinux(&data, &what);
    }
    if data.starts_with(b"\xfd7zXZ\0") {
        return Err(err(
            "xz-compressed (an ISF .json.xz?): decompress it first (`xz -dk FILE`)".into(),
        ));
    }
    if data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return from_isf(&data, &what);
    }
    parse(&String::from_utf8_lossy(&data), &what)
}

/// Symbols of a `vmlinux`: its `.symtab`, or the kallsyms tables it carries when stripped.
pub fn from_vmlinux(data: &[u8], what: &str) -> Result<SymbolTable> {
    let elf = goblin::elf::Elf::parse(data).map_err(|e| LinuxError::SymbolFile {
        path: what.into(),
        what: format!("not a readable ELF file: {e}"),
    })?;
    let syms: Vec<Symbol> = elf
        .syms
        .iter()
        .filter(|s| s.st_value != 0 && s.st_name != 0)
        .filter_map(|s| {
            let name = elf.strtab.get_at(s.st_name)?;
            let kind = match (s.st_type(), s.st_bind()) {
                (goblin::elf::sym::STT_FUNC, goblin::elf::sym::STB_GLOBAL) => 'T',
                (goblin::elf::sym::STT_FUNC, _) => 't',
                (_, goblin::elf::sym::STB_GLOBAL) => 'D',
                _ => 'd',
            };
            Some(Symbol {
                name: name.to_string(),
                kind,
                addr: s.st_value,
            })
        })
        .collect();
    if !syms.is_empty() {
        return Ok(SymbolTable::new(syms));
    }
    // Stripped (as distributions ship the decompressed image): its own kallsyms.
    crate::kallsyms::find_and_parse(data, what).map(|(_, t)| t)
}

/// Symbols of a Volatility 3 ISF JSON: `{"symbols": {NAME: {"address": N, …}, …}, …}`.
pub fn from_isf(data: &[u8], what: &str) -> Result<SymbolTable> {
    let err = |w: String| LinuxError::SymbolFile {
        path: what.into(),
        what: w,
    };
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| err(format!("not JSON: {e}")))?;
    let map = v
        .get("symbols")
        .and_then(|s| s.as_object())
        .ok_or_else(|| err("no `symbols` object (not an ISF file?)".into()))?;
    let syms: Vec<Symbol> = map
        .iter()
        .filter_map(|(name, s)| {
            let addr = s.get("address")?.as_u64()?;
            let function = s.pointer("/type/kind").and_then(|k| k.as_str()) == Some("function");
            Some(Symbol {
                name: name.clone(),
                kind: if function { 'T' } else { 'D' },
                addr,
            })
        })
        .collect();
    if syms.is_empty() {
        return Err(err("the `symbols` object has no addresses".into()));
    }
    Ok(SymbolTable::new(syms))
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

    #[test]
    fn isf_symbols_and_bad_files() {
        let json = br#"{"metadata": {}, "symbols": {
            "init_task": {"type": {"kind": "struct", "name": "task_struct"}, "address": 18446744071606159680},
            "schedule": {"type": {"kind": "function"}, "address": 18446744071579893760},
            "no_address": {"type": {"kind": "base"}}}}"#;
        let t = from_isf(json, "isf").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("init_task"), Some(0xffffffff82a0c940));
        assert!(from_isf(b"{\"symbols\": {}}", "x").is_err());
        assert!(from_isf(b"{\"user_types\": {}}", "x").is_err());
        assert!(from_isf(b"{ not json", "x").is_err());
        assert!(from_vmlinux(b"\x7fELF\x02\x01 truncated", "x").is_err());
    }
}

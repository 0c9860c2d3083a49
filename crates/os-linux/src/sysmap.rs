//! Symbol files (`symbols=PATH`), recognised by content: a `System.map` (`ADDRESS TYPE
//! NAME` lines as `nm` prints them), a `vmlinux` ELF (its `.symtab`, or when stripped the
//! kallsyms tables inside its `.rodata`), or a Volatility 3 ISF JSON (its `symbols`; the
//! types are not needed, BTF gives them). **Key decision: every file gives link-time
//! addresses;** the KASLR offset is applied by
//! [`shifted`] (from the user, VMCOREINFO's `KERNELOFFSET`, or 0), only to symbols inside
//! the kernel image (absolute and per-CPU symbols stay).
//!
//! Bounds: the file is opened once without blocking (a FIFO cannot stall the open), must
//! be a regular file by `fstat` of that descriptor, and is read only up to
//! [`MAX_SYMBOL_FILE`] bytes — a path swapped for `/dev/zero` or a pipe fails instead of
//! exhausting memory. An ISF file is not turned into a JSON tree: only its `symbols`
//! entries are parsed, one at a time, so memory stays near the file's size.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use serde_json::value::RawValue;

use crate::error::{LinuxError, Result};
use crate::kallsyms::{Symbol, SymbolTable};

/// Largest symbol file read: a `vmlinux` with full DWARF from a distribution's debug
/// package is 0.5-1 GiB, an ISF JSON 20-200 MiB, a System.map under 10 MiB; 2 GiB admits
/// all of them with room while a device or a runaway file is stopped there.
pub const MAX_SYMBOL_FILE: u64 = 2 << 30;

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

/// Reads `path` whole if it is a regular file of at most `cap` bytes: one open (without
/// blocking), `fstat` of that descriptor, then a read that stops one byte past `cap` (a
/// file growing while read, or a `/proc` file reporting size 0, is caught too).
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let err = |w: String| LinuxError::SymbolFile {
        path: path.display().to_string(),
        what: w,
    };
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    // Opening a FIFO must not wait for a writer; regular files ignore the flag.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, libc::O_NONBLOCK);
    let f = o.open(path).map_err(|e| err(e.to_string()))?;
    let meta = f.metadata().map_err(|e| err(format!("fstat: {e}")))?;
    if !meta.is_file() {
        return Err(err(format!(
            "not a regular file ({:?}): a symbol file must be one",
            meta.file_type()
        )));
    }
    if meta.len() > cap {
        return Err(err(format!(
            "{} bytes, more than the {cap} read for a symbol file",
            meta.len()
        )));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    f.take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| err(e.to_string()))?;
    if data.len() as u64 > cap {
        return Err(err(format!(
            "grew past the {cap} bytes read for a symbol file while being read"
        )));
    }
    Ok(data)
}

/// Reads and parses a symbol file of any supported kind (see the module docs).
pub fn load(path: &Path) -> Result<SymbolTable> {
    let what = path.display().to_string();
    let err = |w: String| LinuxError::SymbolFile {
        path: what.clone(),
        what: w,
    };
    let data = read_capped(path, MAX_SYMBOL_FILE)?;
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
    // Raw values borrow the input: the types (most of an ISF file) are skipped, not built.
    let top: BTreeMap<String, &RawValue> =
        serde_json::from_slice(data).map_err(|e| err(format!("not JSON: {e}")))?;
    let map: HashMap<String, &RawValue> = top
        .get("symbols")
        .and_then(|s| serde_json::from_str(s.get()).ok())
        .ok_or_else(|| err("no `symbols` object (not an ISF file?)".into()))?;
    let syms: Vec<Symbol> = map
        .into_iter()
        .filter_map(|(name, raw)| {
            // One small entry at a time (`{"type": {...}, "address": N}`).
            let s: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
            let addr = s.get("address")?.as_u64()?;
            let function = s.pointer("/type/kind").and_then(|k| k.as_str()) == Some("function");
            Some(Symbol {
                name,
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

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("memlens-sysmap-{}-{name}", std::process::id()))
    }

    /// A device, a FIFO without a writer, a file over the cap, and a file whose size
    /// `fstat` does not tell (`/proc`): each is refused at once, without reading it whole
    /// or waiting.
    #[test]
    fn symbol_files_must_be_regular_and_capped() {
        let t = std::time::Instant::now();
        let e = load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let fifo = temp("fifo");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = load(&fifo).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
            let _ = std::fs::remove_file(&fifo);
        }
        // Sparse: over the cap by its size alone, no disk used.
        let big = temp("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_SYMBOL_FILE + 1).unwrap();
        drop(f);
        let e = load(&big).unwrap_err().to_string();
        let _ = std::fs::remove_file(&big);
        assert!(e.contains("more than the"), "{e}");
        let e = read_capped(Path::new("/proc/self/maps"), 16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("grew past"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        let small = temp("small");
        std::fs::write(&small, "ffffffff81000000 T _text\n").unwrap();
        assert_eq!(load(&small).unwrap().get("_text"), Some(0xffffffff81000000));
        let _ = std::fs::remove_file(&small);
    }
}

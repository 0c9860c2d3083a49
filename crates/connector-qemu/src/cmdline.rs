//! What a QEMU command line says about its guest: name, RAM size, machine type, QMP
//! socket. **Key decision: only the command line is trusted for discovery** (it is what
//! `/proc/PID/cmdline` shows through any OS plugin); QMP, when present, refines it.

use std::path::PathBuf;

use serde::Serialize;

/// QEMU's default RAM size when `-m` is absent (128 MiB).
pub const DEFAULT_RAM: u64 = 128 << 20;

/// The facts taken from one QEMU command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QemuCommandLine {
    /// The emulator binary's file name (`qemu-system-x86_64`).
    pub binary: String,
    /// Target architecture from the binary name (`x86_64`, `aarch64`, …).
    pub target: String,
    /// `-name` (the `guest=` value or the first field).
    pub name: Option<String>,
    /// Guest RAM in bytes (`-m`; QEMU's default when absent).
    pub ram_size: u64,
    /// Whether `-m` was given.
    pub ram_explicit: bool,
    /// Machine type (`-M` / `-machine` first field or `type=`), when given.
    pub machine: Option<String>,
    /// `max-ram-below-4g=` of the machine options, when given.
    pub max_ram_below_4g: Option<u64>,
    /// QMP Unix socket, when one is configured.
    pub qmp_socket: Option<PathBuf>,
}

/// Whether `argv0` names a QEMU system emulator.
pub fn is_qemu_binary(argv0: &str) -> bool {
    argv0
        .rsplit('/')
        .next()
        .is_some_and(|b| b.starts_with("qemu-system-"))
}

/// Parses a QEMU size: a number with an optional suffix `K M G T P E` (binary units;
/// `B` for bytes); a bare number means `default_unit` (MiB for `-m`). Fractions are
/// allowed (`1.5G`).
pub fn parse_qemu_size(s: &str, default_unit: u64) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => default_unit,
        "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        "P" | "PB" | "PIB" => 1 << 50,
        "E" | "EB" | "EIB" => 1 << 60,
        _ => return None,
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult);
    }
    let f: f64 = num.parse().ok()?;
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    let v = f * mult as f64;
    (v < u64::MAX as f64).then_some(v as u64)
}

/// Splits a QEMU option string at commas (`,,` is an escaped comma) into `key=value`
/// pairs; a field without `=` gets the key `""` when first (the implied key).
fn fields(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let push = |cur: &mut String, out: &mut Vec<(String, String)>| {
        let f = std::mem::take(cur);
        match f.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => out.push((String::new(), f)),
        }
    };
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                push(&mut cur, &mut out);
            }
        } else {
            cur.push(c);
        }
    }
    push(&mut cur, &mut out);
    out
}

fn get<'a>(f: &'a [(String, String)], key: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A Unix socket path from a chardev spec of `-qmp` (`unix:PATH,server,...` or
/// `unix:path=PATH`).
fn unix_path(spec: &str) -> Option<PathBuf> {
    let rest = spec.strip_prefix("unix:")?;
    let f = fields(rest);
    let first = f.first()?;
    let p = if first.0.is_empty() {
        first.1.clone()
    } else {
        get(&f, "path")?.to_string()
    };
    (!p.is_empty()).then(|| PathBuf::from(p))
}

/// Parses a QEMU command line (`argv`, program first).
pub fn parse(argv: &[String]) -> QemuCommandLine {
    let binary = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let target = binary
        .strip_prefix("qemu-system-")
        .unwrap_or("")
        .to_string();
    let mut c = QemuCommandLine {
        binary,
        target,
        ram_size: DEFAULT_RAM,
        ..Default::default()
    };
    // chardev id -> socket path, and -mon chardev ids in control (QMP) mode.
    let mut chardevs: Vec<(String, PathBuf)> = Vec::new();
    let mut qmp_mons: Vec<String> = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let opt = argv[i].as_str();
        let key = opt.strip_prefix("--").or_else(|| opt.strip_prefix('-'));
        let Some(key) = key else {
            i += 1;
            continue;
        };
        // `-opt=value` is not QEMU syntax; every option here takes the next argument.
        let val = argv.get(i + 1).map(String::as_str);
        let mut used = true;
        match (key, val) {
            ("name", Some(v)) => {
                let f = fields(v);
                c.name = get(&f, "guest").or_else(|| get(&f, "")).map(str::to_string);
            }
            ("m", Some(v)) => {
                let f = fields(v);
                let size = get(&f, "size").or_else(|| get(&f, ""));
                if let Some(n) = size.and_then(|s| parse_qemu_size(s, 1 << 20)) {
                    c.ram_size = n;
                    c.ram_explicit = true;
                }
            }
            ("M" | "machine", Some(v)) => {
                let f = fields(v);
                if let Some(t) = get(&f, "type").or_else(|| get(&f, "")) {
                    c.machine = Some(t.to_string());
                }
                if let Some(m) = get(&f, "max-ram-below-4g").and_then(|s| parse_qemu_size(s, 1)) {
                    c.max_ram_below_4g = Some(m);
                }
            }
            ("qmp" | "qmp-pretty", Some(v)) => {
                if c.qmp_socket.is_none() {
                    c.qmp_socket = unix_path(v);
                }
            }
            ("chardev", Some(v)) => {
                let f = fields(v);
                if get(&f, "") == Some("socket") {
                    if let (Some(id), Some(p)) = (get(&f, "id"), get(&f, "path")) {
                        chardevs.push((id.to_string(), PathBuf::from(p)));
                    }
                }
            }
            ("mon", Some(v)) => {
                let f = fields(v);
                if get(&f, "mode") == Some("control") {
                    if let Some(id) = get(&f, "chardev").or_else(|| get(&f, "")) {
                        qmp_mons.push(id.to_string());
                    }
                }
            }
            _ => used = false,
        }
        i += if used { 2 } else { 1 };
    }
    if c.qmp_socket.is_none() {
        c.qmp_socket = qmp_mons
            .iter()
            .find_map(|id| chardevs.iter().find(|(cid, _)| cid == id))
            .map(|(_, p)| p.clone());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn sizes_in_every_form() {
        assert_eq!(parse_qemu_size("256M", 1 << 20), Some(256 << 20));
        assert_eq!(parse_qemu_size("4G", 1 << 20), Some(4 << 30));
        assert_eq!(parse_qemu_size("4096", 1 << 20), Some(4 << 30));
        assert_eq!(parse_qemu_size("1.5G", 1 << 20), Some(3 << 29));
        assert_eq!(parse_qemu_size("512k", 1 << 20), Some(512 << 10));
        assert_eq!(parse_qemu_size("2GiB", 1 << 20), Some(2 << 30));
        assert_eq!(parse_qemu_size("x", 1 << 20), None);
        assert_eq!(parse_qemu_size("5Q", 1 << 20), None);
        assert_eq!(parse_qemu_size("-1G", 1 << 20), None);
        assert_eq!(parse_qemu_size("99999999999E", 1), None);
    }

    #[test]
    fn m_option_forms() {
        for (m, want) in [
            ("256M", 256u64 << 20),
            ("size=4G", 4 << 30),
            ("4096", 4 << 30),
            ("size=2G,slots=4,maxmem=8G", 2 << 30),
            ("1024,slots=2,maxmem=4G", 1 << 30),
        ] {
            let c = parse(&argv(&format!("/usr/bin/qemu-system-x86_64 -m {m}")));
            assert_eq!(c.ram_size, want, "-m {m}");
            assert!(c.ram_explicit);
        }
        let c = parse(&argv("qemu-system-x86_64 -accel tcg"));
        assert_eq!(c.ram_size, DEFAULT_RAM);
        assert!(!c.ram_explicit);
    }

    #[test]
    fn name_machine_target() {
        let c = parse(&argv(
            "/usr/bin/qemu-system-aarch64 -name guest=vm1,debug-threads=on -M virt,gic-version=3 -m 1G",
        ));
        assert_eq!(c.target, "aarch64");
        assert_eq!(c.name.as_deref(), Some("vm1"));
        assert_eq!(c.machine.as_deref(), Some("virt"));
        let c = parse(&argv(
            "qemu-system-x86_64 --name plain -machine type=q35,max-ram-below-4g=1G",
        ));
        assert_eq!(c.name.as_deref(), Some("plain"));
        assert_eq!(c.machine.as_deref(), Some("q35"));
        assert_eq!(c.max_ram_below_4g, Some(1 << 30));
    }

    #[test]
    fn qmp_socket_forms() {
        let c = parse(&argv(
            "qemu-system-x86_64 -qmp unix:/tmp/a.sock,server=on,wait=off",
        ));
        assert_eq!(c.qmp_socket, Some(PathBuf::from("/tmp/a.sock")));
        let c = parse(&argv(
            "qemu-system-x86_64 -qmp unix:path=/tmp/b,server,nowait",
        ));
        assert_eq!(c.qmp_socket, Some(PathBuf::from("/tmp/b")));
        let c = parse(&argv(
            "qemu-system-x86_64 -chardev socket,id=mon0,path=/run/q.sock,server=on,wait=off -mon chardev=mon0,mode=control",
        ));
        assert_eq!(c.qmp_socket, Some(PathBuf::from("/run/q.sock")));
        // A human monitor is not QMP; a TCP QMP socket is not used.
        let c = parse(&argv(
            "qemu-system-x86_64 -chardev socket,id=h,path=/run/h.sock -mon chardev=h,mode=readline -qmp tcp:127.0.0.1:4444,server",
        ));
        assert_eq!(c.qmp_socket, None);
        assert!(is_qemu_binary("/usr/bin/qemu-system-x86_64"));
        assert!(!is_qemu_binary("/usr/bin/qemu-img"));
    }
}

//! Parsers for the `/proc` files the plugin reads. **Key decision: parsing is separated
//! from reading** — every parser takes the file's text and returns plain data, so the unit
//! tests feed them hand-written lines (including hostile ones: a `comm` with spaces and
//! parentheses, truncated lines) without touching the host.
//!
//! Bounds: a command line is an argument area of any size (a process can pass 100 000
//! empty arguments); at most [`MAX_ARG_BYTES`] are read and at most [`MAX_ARG_COUNT`]
//! strings kept, a cut list ending with the element [`TRUNCATED`] (`"…"`). One process
//! listing keeps at most [`MAX_LISTING_ARG_BYTES`] of command lines (text plus 24 bytes
//! per string); past that, command lines are `None`.

use memlens_core::{MapInfo, Perms, ProcessInfo, VirtAddr};

/// Bytes of `/proc/PID/cmdline` read per process: the area is limited only by the stack
/// limit (megabytes); listings show the first 32 KiB, more than any terminal line.
pub const MAX_ARG_BYTES: usize = 32 << 10;
/// Strings kept per command line: each costs a 24-byte `String` even when empty, so
/// 32 KiB of NULs would be 32 768 of them; 4096 is more than real processes pass.
pub const MAX_ARG_COUNT: usize = 4096;
/// The last element of a command line cut at [`MAX_ARG_BYTES`] or [`MAX_ARG_COUNT`].
pub const TRUNCATED: &str = "…";
/// Command-line bytes (text plus 24 per string) kept by one listing: 64 MiB is 2 KiB for
/// each of 32 768 processes (the default `pid_max`); hostile lists stop there.
pub const MAX_LISTING_ARG_BYTES: usize = 64 << 20;

/// `PF_KTHREAD` in the `flags` field of `/proc/PID/stat`: a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/PID/stat` the plugin uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    /// Process id.
    pub pid: u32,
    /// `comm` (between the first `(` and the last `)`).
    pub comm: String,
    /// State letter.
    pub state: String,
    /// Parent pid.
    pub ppid: u32,
    /// Kernel flags (`PF_*`).
    pub flags: u64,
    /// Number of threads.
    pub threads: u32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

impl Stat {
    /// Whether the process is a kernel thread.
    pub fn kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parses `/proc/PID/stat`. `comm` may hold spaces and parentheses: it runs from the first
/// `(` to the *last* `)`. Returns `None` for a malformed line.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text.get(..open)?.trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields after `comm`, numbered from 3 (state) as in proc(5).
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        pid,
        comm,
        state: field(3)?.to_string(),
        ppid: field(4)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        threads: field(20)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// Real uid and gid from `/proc/PID/status` (`Uid:` and `Gid:` lines, first value).
pub fn parse_status_ids(text: &str) -> (Option<u32>, Option<u32>) {
    let first = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (first("Uid:"), first("Gid:"))
}

/// Splits `/proc/PID/cmdline` (NUL-separated, usually NUL-terminated) into arguments.
/// An empty file (kernel threads, zombies) gives `None`. Input past [`MAX_ARG_BYTES`]
/// (read one byte more to know) or past [`MAX_ARG_COUNT`] strings is cut: the list then
/// ends with [`TRUNCATED`].
pub fn parse_cmdline(bytes: &[u8]) -> Option<Vec<String>> {
    if bytes.is_empty() {
        return None;
    }
    let cut = bytes.len() > MAX_ARG_BYTES;
    let bytes = &bytes[..bytes.len().min(MAX_ARG_BYTES)];
    let body = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    let mut parts = body.split(|&b| b == 0);
    let mut v: Vec<String> = parts
        .by_ref()
        .take(MAX_ARG_COUNT)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if cut || parts.next().is_some() {
        v.push(TRUNCATED.to_string());
    }
    Some(v)
}

/// What a command line costs to keep: its text plus a `String` header per argument.
pub fn cmdline_cost(v: &[String]) -> usize {
    v.iter()
        .map(|s| s.len().saturating_add(std::mem::size_of::<String>()))
        .fold(0, usize::saturating_add)
}

/// One line of `/proc/PID/maps`, with the device and inode that [`MapInfo`] leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapLine {
    /// The mapping.
    pub map: MapInfo,
    /// `major:minor` of the mapped file's device.
    pub dev: String,
    /// Inode of the mapped file (0 for anonymous mappings).
    pub inode: u64,
}

/// Parses one line of `/proc/PID/maps`: `start-end perms offset dev inode [path]`. The path
/// may contain spaces (it is the rest of the line) and may end in ` (deleted)`.
pub fn parse_map_line(line: &str) -> Option<MapLine> {
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms: Perms = it.next()?.parse().ok()?;
    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
    let dev = it.next()?.to_string();
    let inode = it.next()?.parse().ok()?;
    let path = it.next().map(str::trim_start).filter(|p| !p.is_empty());
    let (s, e) = range.split_once('-')?;
    let start = u64::from_str_radix(s, 16).ok()?;
    let end = u64::from_str_radix(e, 16).ok()?;
    if end <= start {
        return None;
    }
    Some(MapLine {
        map: MapInfo {
            start: VirtAddr(start),
            end: VirtAddr(end),
            perms,
            offset,
            path: path.map(str::to_string),
        },
        dev,
        inode,
    })
}

/// Parses a whole `/proc/PID/maps`, skipping (and logging) malformed lines.
pub fn parse_maps(text: &str) -> Vec<MapLine> {
    text.lines()
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let m = parse_map_line(l);
            if m.is_none() {
                log::warn!("skipping malformed maps line {l:?}");
            }
            m
        })
        .collect()
}

/// Builds a [`ProcessInfo`] from the parsed files. `clk_tck` converts start ticks to ns.
pub fn process_info(
    stat: &Stat,
    ids: (Option<u32>, Option<u32>),
    cmdline: Option<Vec<String>>,
    exe: Option<String>,
    clk_tck: u64,
) -> ProcessInfo {
    let start_time_ns = (clk_tck > 0).then(|| {
        let ns = u128::from(stat.start_ticks) * 1_000_000_000 / u128::from(clk_tck);
        u64::try_from(ns).unwrap_or(u64::MAX)
    });
    ProcessInfo {
        pid: stat.pid,
        ppid: stat.ppid,
        name: stat.comm.clone(),
        cmdline,
        exe,
        uid: ids.0,
        gid: ids.1,
        state: Some(stat.state.clone()),
        threads: Some(stat.threads),
        start_time_ns,
        kernel_thread: stat.kernel_thread(),
        root: None,
        kernel_object: None,
    }
}

/// One line of `/proc/modules`: name, size, and load address (0 when hidden by
/// `kptr_restrict`).
pub fn parse_module_line(line: &str) -> Option<(String, u64, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let name = f.first()?.to_string();
    let size = f.get(1)?.parse().ok()?;
    let addr = f
        .get(5)
        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    Some((name, size, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A stat line as the kernel writes it, with a hostile comm: spaces and a ')'.
    const STAT: &str = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 123456 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_with_parentheses_in_comm() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "we ird) (x");
        assert_eq!(s.state, "S");
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.threads, 3);
        assert_eq!(s.start_ticks, 123456);
        assert!(!s.kernel_thread());
        let info = process_info(&s, (Some(0), Some(0)), None, None, 100);
        assert_eq!(info.start_time_ns, Some(1_234_560_000_000));
    }

    #[test]
    fn kernel_thread_flag() {
        let line = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 1 0 0 0 0 0";
        assert!(parse_stat(line).unwrap().kernel_thread());
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(parse_stat("12 (a) S 1"), None);
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat(") 12 ("), None);
    }

    #[test]
    fn status_ids() {
        let t = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n";
        assert_eq!(parse_status_ids(t), (Some(1000), Some(100)));
        assert_eq!(parse_status_ids("Name: x\n"), (None, None));
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(parse_cmdline(b""), None);
        assert_eq!(
            parse_cmdline(b"a\0b c\0\0"),
            Some(vec!["a".into(), "b c".into(), "".into()])
        );
        assert_eq!(parse_cmdline(b"noterm"), Some(vec!["noterm".into()]));
    }

    /// 100 000 empty arguments: at most MAX_ARG_COUNT strings and the marker, never one
    /// String per byte; an oversized area is cut at MAX_ARG_BYTES.
    #[test]
    fn cmdline_is_capped() {
        let v = parse_cmdline(&[0u8; 100_000]).unwrap();
        assert_eq!(v.len(), MAX_ARG_COUNT + 1);
        assert_eq!(v.last().map(String::as_str), Some(TRUNCATED));
        assert!(cmdline_cost(&v) < 100 << 10);
        let long = vec![b'x'; MAX_ARG_BYTES + 1];
        let v = parse_cmdline(&long).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].len(), MAX_ARG_BYTES);
        assert_eq!(v[1], TRUNCATED);
        let exact = vec![b'x'; MAX_ARG_BYTES];
        assert_eq!(parse_cmdline(&exact).unwrap().len(), 1);
    }

    #[test]
    fn maps_lines() {
        let m = parse_map_line(
            "7f0000000000-7f0000021000 r-xp 00001000 08:01 1234    /usr/lib/a b.so (deleted)",
        )
        .unwrap();
        assert_eq!(m.map.start, VirtAddr(0x7f00_0000_0000));
        assert_eq!(m.map.end, VirtAddr(0x7f00_0002_1000));
        assert_eq!(m.map.perms.to_string(), "r-xp");
        assert_eq!(m.map.offset, 0x1000);
        assert_eq!(m.dev, "08:01");
        assert_eq!(m.inode, 1234);
        assert_eq!(m.map.path.as_deref(), Some("/usr/lib/a b.so (deleted)"));
        let anon = parse_map_line("1000-2000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(anon.map.path, None);
        let anon2 = parse_map_line("1000-2000 rw-p 00000000 00:00 0").unwrap();
        assert_eq!(anon2.map.path, None);
        assert!(parse_map_line("2000-1000 rw-p 0 00:00 0").is_none());
        assert!(parse_map_line("zz-1000 rw-p 0 00:00 0").is_none());
        assert!(parse_map_line("1000-2000 rw 0 00:00 0").is_none());
        assert_eq!(parse_maps("1000-2000 rw-p 0 00:00 0\ngarbage\n").len(), 1);
    }

    #[test]
    fn module_lines() {
        assert_eq!(
            parse_module_line("ext4 1003520 1 - Live 0xffffffffc0a00000"),
            Some(("ext4".into(), 1003520, 0xffff_ffff_c0a0_0000))
        );
        assert_eq!(
            parse_module_line("crc32c 16384 0 - Live 0x0000000000000000"),
            Some(("crc32c".into(), 16384, 0))
        );
        assert_eq!(parse_module_line("x"), None);
    }
}

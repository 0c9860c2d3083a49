//! A process holding hostile ELF modules: `memlens modules -p PID --details --json` on
//! the host must finish, list the honest modules, name the hostile ones in a warning, and
//! stay under 100 MB of resident memory (the peak, `ru_maxrss` of the child).
//!
//! The target process is this test itself: it maps files it wrote, each a module whose
//! headers claim tables as large as memlens accepts or far larger — over a mapping where
//! every claimed byte is readable (sparse files), so only memlens's caps stand between a
//! claim and an allocation. The bytes are written from the ELF specification's offsets.

use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// The bound on the whole run's peak resident memory.
const RSS_LIMIT_KB: i64 = 100 * 1024;

/// Largest symbol count memlens reads (must match `memlens_core::elf::MAX_SYMS` — a
/// smaller value here would only make the test weaker, not wrong).
const MAX_SYMS: u64 = 1 << 18;
const STRTAB_LEN: u64 = 16 << 20;

const SYMTAB: u64 = 0x10000;
const STRTAB: u64 = 0x0100_0000;
const GNU_HASH: u64 = 0x0300_0000;
const MAP_LEN: u64 = 256 << 20;

/// How a module lies.
#[derive(Clone, Copy)]
enum Lie {
    /// `DT_GNU_HASH` `symoffset` 0xfffffff0 (the 16.5 GB regression).
    GnuSymoffset,
    /// The most symbols read, every one named by the same unterminated 16 MiB string.
    OverlappingNames,
    /// `DT_STRSZ` and `DT_RELASZ` of 1 TiB.
    HugeSizes,
}

/// Writes a hostile module file of [`MAP_LEN`] bytes (sparse but for its tables).
fn write_module(path: &std::path::Path, lie: Lie) {
    let mut head = vec![0u8; 0x3000];
    head[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    head[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    head[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    head[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    head[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    head[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    head[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
    for (at, ty, vaddr, memsz) in [(64usize, 1u32, 0u64, MAP_LEN), (120, 2, 0x1000, 0x100)] {
        head[at..at + 4].copy_from_slice(&ty.to_le_bytes());
        head[at + 4..at + 8].copy_from_slice(&4u32.to_le_bytes());
        head[at + 8..at + 16].copy_from_slice(&vaddr.to_le_bytes()); // p_offset
        head[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
        head[at + 32..at + 40].copy_from_slice(&memsz.to_le_bytes()); // p_filesz
        head[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
    }
    let huge = 1u64 << 40;
    let (strsz, relasz) = match lie {
        Lie::HugeSizes => (huge, huge),
        _ => (STRTAB_LEN, 0),
    };
    let dynamic = [
        (6u64, SYMTAB),          // DT_SYMTAB
        (5, STRTAB),             // DT_STRTAB
        (10, strsz),             // DT_STRSZ
        (7, STRTAB),             // DT_RELA
        (8, relasz),             // DT_RELASZ
        (0x6fff_fef5, GNU_HASH), // DT_GNU_HASH
    ];
    for (k, (tag, val)) in dynamic.iter().enumerate() {
        let at = 0x1000 + k * 16;
        head[at..at + 8].copy_from_slice(&tag.to_le_bytes());
        head[at + 8..at + 16].copy_from_slice(&val.to_le_bytes());
    }
    let mut file = std::fs::File::create(path).expect("create module file");
    file.set_len(MAP_LEN).expect("size module file");
    use std::io::{Seek, SeekFrom, Write};
    file.write_all(&head).expect("write headers");
    // GNU hash: nbuckets 1, symoffset, bloom size 0, shift 0; bucket[0] = the last
    // symbol; the chain word of that symbol has the end bit.
    let symoffset = match lie {
        Lie::GnuSymoffset => 0xffff_fff0u32,
        _ => 1,
    };
    let last = (MAX_SYMS - 1) as u32;
    let mut hash = Vec::new();
    for w in [1u32, symoffset, 0, 0, last] {
        hash.extend_from_slice(&w.to_le_bytes());
    }
    file.seek(SeekFrom::Start(GNU_HASH)).expect("seek");
    file.write_all(&hash).expect("write hash header");
    let chain_end = GNU_HASH + 20 + 4 * (u64::from(last) - 1);
    file.seek(SeekFrom::Start(chain_end)).expect("seek");
    file.write_all(&1u32.to_le_bytes())
        .expect("write chain end");
    // Symbols: global functions named at string offset 1.
    let mut syms = Vec::with_capacity((MAX_SYMS * 24) as usize);
    for i in 0..MAX_SYMS {
        let mut s = [0u8; 24];
        s[0] = 1;
        s[4] = 0x12;
        s[6] = 1;
        s[8..16].copy_from_slice(&(i * 16).to_le_bytes());
        syms.extend_from_slice(&s);
    }
    file.seek(SeekFrom::Start(SYMTAB)).expect("seek");
    file.write_all(&syms).expect("write symbols");
    // The string table: a NUL, then 'A' without end.
    let mut strs = vec![b'A'; STRTAB_LEN as usize];
    strs[0] = 0;
    file.seek(SeekFrom::Start(STRTAB)).expect("seek");
    file.write_all(&strs).expect("write strings");
}

/// Maps `path` read-only into this process (kept for the process's life).
fn map(path: &std::path::Path) -> u64 {
    let f = std::fs::File::open(path).expect("open module file");
    // SAFETY: a fresh private read-only mapping of a file we own; nothing in this process
    // reads it, and it is never unmapped (the test process ends).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            MAP_LEN as usize,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap {}", path.display());
    p as u64
}

/// Runs the binary and returns (status, stdout, stderr, peak RSS in KiB).
#[allow(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also gives its rusage"
)]
fn run_measured(args: &[&str]) -> (i32, String, String, i64) {
    let child = Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn memlens");
    let pid = child.id() as libc::pid_t;
    // Drain the pipes on threads, then reap with wait4 for the child's own rusage.
    let mut out = child.stdout.expect("stdout");
    let mut err = child.stderr.expect("stderr");
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).expect("read stdout");
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).expect("read stderr");
        s
    });
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 writes into the two locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unreaped child; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (
        code,
        o.join().expect("stdout thread"),
        e.join().expect("stderr thread"),
        usage.ru_maxrss,
    )
}

#[test]
fn hostile_modules_in_a_process_are_refused_within_100_mb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lies = [
        ("gnu-symoffset.so", Lie::GnuSymoffset),
        ("overlapping-names.so", Lie::OverlappingNames),
        ("huge-sizes.so", Lie::HugeSizes),
    ];
    for (name, lie) in lies {
        let p = dir.path().join(name);
        write_module(&p, lie);
        map(&p);
    }
    let pid = std::process::id().to_string();
    let (code, out, err, rss_kb) = run_measured(&[
        "modules",
        "-p",
        &pid,
        "--details",
        "--json",
        "--color",
        "never",
    ]);
    assert_eq!(code, 0, "stderr: {err}");
    eprintln!("memlens modules -p {pid} --details --json: peak RSS {rss_kb} KiB");
    assert!(
        rss_kb < RSS_LIMIT_KB,
        "peak RSS {rss_kb} KiB (limit {RSS_LIMIT_KB} KiB); stderr: {err}"
    );
    // The honest modules are still there (libc's exports include `malloc`).
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    let mods = v.as_array().expect("array of modules");
    let libc = mods
        .iter()
        .find(|m| {
            m["module"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("libc.so"))
        })
        .unwrap_or_else(|| panic!("libc missing from {} modules", mods.len()));
    assert!(libc["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .any(|s| s["name"] == "malloc"));
    // Each hostile module is refused with a warning that says why, none is listed.
    for (name, why) in [
        ("gnu-symoffset.so", "claims 4294967280 dynamic symbols"),
        ("overlapping-names.so", "exceed"),
        ("huge-sizes.so", "dynamic string table"),
    ] {
        assert!(
            err.lines().any(|l| l.contains(name) && l.contains(why)),
            "no warning naming {name} with '{why}' in: {err}"
        );
        assert!(
            !mods.iter().any(|m| m["module"]["name"] == name),
            "{name} listed"
        );
    }
}

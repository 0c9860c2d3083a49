//! End-to-end on the host: the real `memlens` binary reads this test process's memory
//! (the native OS plugin, `/proc/PID/mem`) and must find what the test put there; with no
//! target, `ps`, `maps` and `read -p` see this process and a child it started.

mod common;
use common::{json, memlens};

/// Text built at run time (so it is only in this process's heap), in both encodings.
fn plant(tag: &str) -> (String, Vec<u8>, Vec<u8>) {
    let text = format!("memlens-host-{tag}-{}-{:x}", std::process::id(), rand_ish());
    let ascii = text.clone().into_bytes();
    let wide: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    (text, ascii, wide)
}

fn rand_ish() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(7);
    h.finish()
}

#[test]
fn strings_finds_ascii_and_utf16_in_a_host_process() {
    let (text, ascii, wide) = plant("strings");
    // NUL on both sides: the bytes around a heap allocation are whatever was there before
    // (a printable neighbour would lengthen the string).
    let ascii = [&[0u8][..], &ascii, &[0]].concat();
    let wide = [&[0u8, 0][..], &wide, &[0, 0]].concat();
    let (a, w) = (std::hint::black_box(&ascii), std::hint::black_box(&wide));
    let pid = std::process::id().to_string();
    let v = json(&["strings", "-p", &pid, "-n", "20"]);
    let rows = v.as_array().unwrap();
    for (enc, addr) in [
        ("ascii", a.as_ptr() as u64 + 1),
        ("utf16", w.as_ptr() as u64 + 2),
    ] {
        assert!(
            rows.iter().any(|r| r["encoding"] == enc
                && r["addr"].as_u64() == Some(addr)
                && r["text"] == text.as_str()),
            "{enc} {text:?} at {addr:#x} not found"
        );
    }
    let v = json(&["strings", "-p", &pid, "-n", "20", "--encoding", "utf16"]);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["encoding"] == "utf16"));
}

#[test]
fn search_and_dump_a_host_process() {
    let (text, ascii, _) = plant("dump");
    let a = std::hint::black_box(&ascii);
    let pid = std::process::id().to_string();
    let hits = json(&["search", "-p", &pid, &text]);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["addr"].as_u64() == Some(a.as_ptr() as u64)),
        "search did not find {text:?} at {:?}",
        a.as_ptr()
    );
    // The process core holds the text at its virtual address.
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("self.core");
    let out = memlens(&["dump", "-p", &pid, "--out", core.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&core).unwrap();
    assert_eq!(
        common::core_bytes(&bytes, a.as_ptr() as u64, ascii.len()),
        &ascii[..]
    );
}

#[test]
fn module_details_of_a_host_process() {
    let pid = std::process::id().to_string();
    let v = json(&["modules", "-p", &pid, "--details", "--module", "libc"]);
    let libc = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["module"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("libc"))
        })
        .expect("this test links libc dynamically");
    let (base, size) = (
        libc["module"]["base"].as_u64().unwrap(),
        libc["module"]["size"].as_u64().unwrap(),
    );
    let malloc = libc["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "malloc")
        .expect("libc exports malloc");
    let at = malloc["addr"].as_u64().unwrap();
    assert!(
        (base..base + size).contains(&at),
        "malloc at {at:#x} outside libc"
    );
    assert!(!libc["sections"].as_array().unwrap().is_empty());
    // --details needs -p.
    let out = memlens(&["modules", "--details"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A child process with a known command line and a known mapped file: a copy of `sleep`
/// under a unique name in a temporary directory (its executable is mapped). Killed on drop.
struct Sleeper {
    child: std::process::Child,
    exe: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Sleeper {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(format!("mlsleep{:x}", rand_ish() & 0xffff));
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("`sleep` (coreutils) is needed: apt-get install coreutils");
        std::fs::copy(sleep, &exe).unwrap();
        // Another test thread's fork may briefly hold the copy open for writing.
        let mut tries = 0;
        let child = loop {
            match std::process::Command::new(&exe).args(["300", "7"]).spawn() {
                Ok(c) => break c,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("cannot start {}: {e}", exe.display()),
            }
        };
        // Wait until the child has exec'd (its exe link names the copy).
        let link = format!("/proc/{}/exe", child.id());
        for _ in 0..200 {
            if std::fs::read_link(&link).is_ok_and(|p| p == exe) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Self {
            child,
            exe,
            _dir: dir,
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host's own `/proc/PID/stat` ppid (read directly, not through memlens).
fn ppid_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn ps_with_no_target_lists_this_process_and_a_child() {
    let sleeper = Sleeper::start();
    let v = json(&["ps"]);
    let rows = v.as_array().expect("ps --json is an array");
    let me = std::process::id();
    let row = |pid: u32| {
        rows.iter()
            .find(|r| r["pid"].as_u64() == Some(u64::from(pid)))
            .unwrap_or_else(|| panic!("pid {pid} not listed"))
    };
    let own = row(me);
    assert_eq!(own["ppid"].as_u64(), Some(ppid_of(me)));
    let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
    assert_eq!(own["name"], comm.trim_end());
    let child = row(sleeper.child.id());
    assert_eq!(child["ppid"].as_u64(), Some(u64::from(me)));
    let name = sleeper.exe.file_name().unwrap().to_str().unwrap();
    assert_eq!(child["name"], name);
    let cmdline: Vec<&str> = child["cmdline"]
        .as_array()
        .expect("cmdline listed")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(cmdline, [sleeper.exe.to_str().unwrap(), "300", "7"]);
}

#[test]
fn maps_of_a_child_holds_its_mapped_file() {
    let sleeper = Sleeper::start();
    let v = json(&["maps", "-p", &sleeper.child.id().to_string()]);
    let exe = sleeper.exe.to_str().unwrap();
    let rows = v.as_array().expect("maps --json is an array");
    let mine: Vec<_> = rows.iter().filter(|r| r["path"] == exe).collect();
    assert!(!mine.is_empty(), "{exe} is not among the child's maps");
    // Its text is mapped executable, and every range is well-formed.
    assert!(mine.iter().any(|r| r["perms"]["exec"] == true));
    for r in rows {
        assert!(r["start"].as_u64() < r["end"].as_u64(), "bad range {r}");
    }
}

#[test]
fn read_a_known_buffer_of_this_process() {
    let (_, ascii, _) = plant("read");
    let a = std::hint::black_box(&ascii);
    let pid = std::process::id().to_string();
    let addr = format!("{:#x}", a.as_ptr() as u64);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bytes");
    let out = memlens(&[
        "read",
        "-p",
        &pid,
        &addr,
        &a.len().to_string(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), ascii);
    // The hexdump shows the same bytes at the same address.
    let out = memlens(&["read", "-p", &pid, &addr, "16"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let hex: String = ascii[..16].iter().map(|b| format!("{b:02x} ")).collect();
    let line = text.lines().next().unwrap().replace("  ", " ");
    assert!(
        line.starts_with(&format!(
            "{:016x} {}",
            a.as_ptr() as u64,
            hex.replace("  ", " ")
        )),
        "{text}"
    );
}

/// Three pages with the middle one unmapped; the outer ones hold a known pattern.
struct Holed {
    base: *mut u8,
    page: usize,
}

impl Holed {
    fn new() -> Self {
        // SAFETY: an anonymous private mapping of three pages, then the middle unmapped;
        // the remaining two pages are written through the pointer we own.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let p = libc::mmap(
                std::ptr::null_mut(),
                3 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            let base = p.cast::<u8>();
            assert_eq!(libc::munmap(base.add(page).cast(), page), 0);
            for i in (0..page).chain(2 * page..3 * page) {
                *base.add(i) = Self::pattern(i);
            }
            Self { base, page }
        }
    }
    fn pattern(i: usize) -> u8 {
        (i.wrapping_mul(31) ^ (i >> 8)) as u8 | 1
    }
}

impl Drop for Holed {
    fn drop(&mut self) {
        // SAFETY: the two pages mapped in `new`.
        unsafe {
            libc::munmap(self.base.cast(), self.page);
            libc::munmap(self.base.add(2 * self.page).cast(), self.page);
        }
    }
}

#[test]
fn read_across_an_unmapped_page_reports_the_failed_bytes() {
    let h = Holed::new();
    let pid = std::process::id().to_string();
    // From 100 bytes before the hole to 200 bytes after it.
    let start = h.base as u64 + h.page as u64 - 100;
    let len = 100 + h.page + 200;
    let hole = h.base as u64 + h.page as u64;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bytes");
    let out = memlens(&[
        "read",
        "-p",
        &pid,
        &format!("{start:#x}"),
        &len.to_string(),
        "--out",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} of {len} bytes could not be read, first at {hole:#x}",
            h.page
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // The readable bytes on both sides are the pattern; the hole reads as zeros.
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len(), len);
    let want = |i: usize| {
        let off = h.page - 100 + i;
        if (h.page..2 * h.page).contains(&off) {
            0
        } else {
            Holed::pattern(off)
        }
    };
    for (i, b) in bytes.iter().enumerate() {
        assert_eq!(*b, want(i), "byte {i} (address {:#x})", start + i as u64);
    }
    // The hexdump marks exactly the hole's bytes `??`.
    let out = memlens(&["read", "-p", &pid, &format!("{start:#x}"), &len.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let cells: Vec<&str> = text
        .lines()
        .flat_map(|l| l[18..].split(" |").next().unwrap().split_whitespace())
        .collect();
    assert_eq!(cells.len(), len);
    for (i, c) in cells.iter().enumerate() {
        let in_hole = (hole..hole + h.page as u64).contains(&(start + i as u64));
        assert_eq!(*c == "??", in_hole, "cell {i}: {c}");
    }
}

//! Test helper for memlens-os-native's tests (not a user tool): a process with known memory.
//!
//! Usage: `memlens-native-testchild FILE`. It puts a known string in a heap buffer, maps
//! FILE read-only, maps three anonymous pages filled with 0xA1/0xB2/0xC3 and unmaps the
//! middle one (a hole), then prints one line of `key=value` pairs with the addresses and
//! waits for commands on stdin: `heap` prints the heap buffer as it is now (after a test
//! wrote into it), `exit` (or end of input) exits.
//!
//! `memlens-native-testchild --probe PID ADDR` instead reads 8 bytes of process PID at ADDR
//! and its maps through memlens and prints the outcomes (the permission tests run it as
//! an unprivileged user).

use std::io::{BufRead, Write};

fn probe(pid: &str, addr: &str) {
    use memlens_core::{MemoryViewExt, Os, VirtAddr};
    let pid: u32 = pid.parse().unwrap_or(0);
    let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap_or(0);
    let mem = memlens_os_native::ProcessMemory::new(pid, false);
    match mem.read_u64(VirtAddr(addr)) {
        Ok(v) => println!("read=ok {v:#x}"),
        Err(e) => println!("read=err {e}"),
    }
    let maps = memlens_os_native::NativeOs::open(Default::default())
        .map_err(memlens_core::Error::from)
        .and_then(|os| os.process(pid))
        .and_then(|p| p.maps());
    match maps {
        Ok(m) => println!("maps=ok {}", m.len()),
        Err(e) => println!("maps=err {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--probe") {
        probe(
            args.get(2).map_or("", String::as_str),
            args.get(3).map_or("", String::as_str),
        );
        return;
    }
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: memlens-native-testchild FILE");
        std::process::exit(2)
    });
    let text = format!(
        "MEMLENS-NATIVE-HEAP-{}-0123456789abcdef",
        std::process::id()
    );
    let heap: &'static mut [u8] = Box::leak(text.into_bytes().into_boxed_slice());

    let file = std::fs::File::open(&path).unwrap_or_else(|e| {
        eprintln!("cannot open {path}: {e}");
        std::process::exit(2)
    });
    let file_len = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    // SAFETY: plain mmap calls on a file we opened and on fresh anonymous memory; the
    // mappings are never unmapped except the middle page we remove on purpose.
    let (file_map, hole) = unsafe {
        use std::os::fd::AsRawFd;
        let f = libc::mmap(
            std::ptr::null_mut(),
            file_len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        let h = libc::mmap(
            std::ptr::null_mut(),
            3 * 4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if f == libc::MAP_FAILED || h == libc::MAP_FAILED {
            eprintln!("mmap failed");
            std::process::exit(2)
        }
        let h = h.cast::<u8>();
        std::ptr::write_bytes(h, 0xA1, 4096);
        std::ptr::write_bytes(h.add(4096), 0xB2, 4096);
        std::ptr::write_bytes(h.add(8192), 0xC3, 4096);
        libc::munmap(h.add(4096).cast(), 4096);
        (f as usize, h as usize)
    };
    // SAFETY: dlsym with a valid NUL-terminated name.
    let malloc = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr()) } as usize;

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ready heap={:#x} heap_len={} file={file_map:#x} file_len={file_len} hole={hole:#x} malloc={malloc:#x}",
        heap.as_ptr() as usize,
        heap.len()
    );
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "heap" => {
                // Read through a volatile copy so the compiler cannot assume it unchanged.
                let now: Vec<u8> = heap
                    .iter()
                    // SAFETY: reading our own live buffer.
                    .map(|b| unsafe { std::ptr::read_volatile(b) })
                    .collect();
                let _ = writeln!(out, "heap={}", String::from_utf8_lossy(&now));
                let _ = out.flush();
            }
            "exit" => break,
            _ => {}
        }
    }
}

//! The task list. **Key decision: walk `init_task.tasks` (thread-group leaders only),
//! bounded and cycle-checked, and keep going past a damaged task** — a smeared dump loses
//! the damaged entries (with a warning naming the address), not the listing.
//!
//! Bounds: at most [`MAX_TASKS`] tasks are walked. Argument and environment areas are
//! claims of the guest (`mm->arg_start`..`arg_end`): at most [`MAX_ARG_BYTES`]
//! (environment: [`MAX_ENV_BYTES`]) are read and at most [`MAX_ARG_COUNT`] strings kept;
//! a cut list ends with the element [`TRUNCATED`] (`"…"`). One [`processes`] listing
//! keeps at most [`MAX_LISTING_ARG_BYTES`] of command lines in all (counting 24 bytes per
//! string besides its text); past that, command lines are `None`, with one warning.

use std::collections::HashSet;

use memlens_core::{MemoryViewExt, ProcessInfo, VirtAddr};

use crate::error::{LinuxError, Result};
use crate::kernel::Kernel;
use crate::vm::KernelSpace;

/// Upper bound on tasks walked.
pub const MAX_TASKS: usize = 1 << 20;
/// `PF_KTHREAD`.
const PF_KTHREAD: u32 = 0x0020_0000;
/// `PF_WQ_WORKER`.
const PF_WQ_WORKER: u32 = 0x20;
/// Bytes of a command line read per process: Linux caps one argument at 128 KiB but the
/// whole area only by the stack limit; listings show the first 32 KiB, more than any
/// terminal line, and a longer line is cut (see [`TRUNCATED`]).
pub const MAX_ARG_BYTES: u64 = 32 << 10;
/// Bytes of an environment read (one process's details, not a listing): 128 KiB holds
/// real environments (a few KiB) many times over.
pub const MAX_ENV_BYTES: u64 = 128 << 10;
/// Strings kept per command line or environment: a String costs 24 bytes even when
/// empty, so 32 KiB of NULs would be 32 768 of them; 4096 is more than real processes
/// pass and keeps one list under 100 KiB of headers.
pub const MAX_ARG_COUNT: usize = 4096;
/// The last element of a list cut at [`MAX_ARG_BYTES`] or [`MAX_ARG_COUNT`].
pub const TRUNCATED: &str = "…";
/// Command-line bytes (text plus 24 per string) kept by one [`processes`] listing:
/// 64 MiB is 2 KiB for each of 32 768 processes, while [`MAX_TASKS`] full-size lists
/// would be over 100 GiB.
pub const MAX_LISTING_ARG_BYTES: usize = 64 << 20;

/// Addresses of all `task_struct`s on the task list, `init_task` (pid 0) excluded.
pub fn task_addrs(k: &Kernel) -> Result<Vec<u64>> {
    let init = k
        .symbol("init_task")
        .ok_or_else(|| LinuxError::MissingSymbol {
            name: "init_task".into(),
            source_name: format!("{:?}", k.info.symbol_source),
        })?;
    let off = k.off.task_tasks;
    let head = init.wrapping_add(off);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut cur = head;
    for _ in 0..MAX_TASKS {
        let next = match k.ptr(cur, "task_struct.tasks.next") {
            Ok(Some(n)) => n,
            Ok(None) => {
                log::warn!("task list: NULL next pointer at {cur:#x}; list cut short");
                break;
            }
            Err(e) => {
                log::warn!("task list: {e}; list cut short after {} tasks", out.len());
                break;
            }
        };
        if next == head {
            return Ok(out);
        }
        if !seen.insert(next) {
            log::warn!("task list: cycle at {next:#x} not through init_task; stopping");
            return Ok(out);
        }
        out.push(next.wrapping_sub(off));
        cur = next;
    }
    if out.len() >= MAX_TASKS {
        log::warn!("task list: stopped at the limit of {MAX_TASKS} tasks");
    }
    Ok(out)
}

/// The name `/proc` shows for a kernel thread: the full name of a kthread (its `comm` is
/// cut at 15 bytes), or a workqueue worker's `comm` with `+desc` (busy) / `-desc` (idle).
fn proc_name(k: &Kernel, task: u64, flags: u32, comm: &str) -> Option<String> {
    let o = &k.off;
    let kt = k
        .ptr(
            task.wrapping_add(o.task_worker_private?),
            "task_struct.worker_private",
        )
        .ok()??;
    if flags & PF_WQ_WORKER != 0 {
        let worker = k
            .ptr(kt.wrapping_add(o.kthread_data?), "kthread.data")
            .ok()??;
        let (desc_off, desc_len) = o.worker_desc?;
        let desc = k
            .chars(worker.wrapping_add(desc_off), desc_len.min(64) as usize)
            .ok()?;
        if desc.is_empty() {
            return Some(comm.to_string());
        }
        let busy = o
            .worker_current_work
            .and_then(|c| k.u64(worker.wrapping_add(c)).ok())
            .is_some_and(|w| w != 0);
        return Some(format!("{comm}{}{desc}", if busy { '+' } else { '-' }));
    }
    let full = k
        .ptr(kt.wrapping_add(o.kthread_full_name?), "kthread.full_name")
        .ok()??;
    let s = k.kvm.read_cstr(VirtAddr(full), 63).ok()?;
    (!s.is_empty()).then_some(s)
}

/// The `/proc/PID/stat` state letter of a task.
pub fn state_letter(state: u32, exit_state: u32) -> &'static str {
    const TASK_REPORT: u32 = 0x7f;
    if state == 0x402 {
        return "I";
    }
    let s = (state | exit_state) & TASK_REPORT;
    let idx = if s == 0 { 0 } else { 32 - s.leading_zeros() };
    ["R", "S", "D", "T", "t", "X", "Z", "P", "I"]
        .get(idx as usize)
        .copied()
        .unwrap_or("?")
}

/// A task's `mm` pointer (NULL for kernel threads).
pub fn task_mm(k: &Kernel, task: u64) -> Result<Option<u64>> {
    k.ptr(task.wrapping_add(k.off.task_mm), "task_struct.mm")
}

/// The user address space of a process from its `mm`.
pub fn mm_space(k: &Kernel, mm: u64) -> Result<KernelSpace> {
    let pgd = k
        .ptr(mm.wrapping_add(k.off.mm_pgd), "mm_struct.pgd")?
        .ok_or(LinuxError::BadObject {
            what: "mm_struct",
            va: mm,
            why: "NULL pgd".into(),
        })?;
    let pa = k.direct_pa(pgd);
    k.user_space(pa)
}

/// Reads `[start, end)` of user memory (a command line) and splits it at NULs: at most
/// [`MAX_ARG_BYTES`] and [`MAX_ARG_COUNT`] strings, a cut list ending in [`TRUNCATED`].
/// `None` for an empty or reversed range, or an unreadable first page.
pub fn read_strings<M: memlens_core::VirtualMemory + ?Sized>(
    space: &M,
    start: u64,
    end: u64,
) -> Option<Vec<String>> {
    read_strings_capped(space, start, end, MAX_ARG_BYTES)
}

/// [`read_strings`] with a byte cap of `max_bytes`.
fn read_strings_capped<M: memlens_core::VirtualMemory + ?Sized>(
    space: &M,
    start: u64,
    end: u64,
    max_bytes: u64,
) -> Option<Vec<String>> {
    if end <= start {
        return None;
    }
    let cut = end - start > max_bytes;
    let mut buf = vec![0u8; (end - start).min(max_bytes) as usize];
    // Partial reads keep the readable part (pages swapped out read as zero).
    let mut ops = [memlens_core::ReadOp::new(VirtAddr(start), &mut buf[..])];
    memlens_core::MemoryView::read_batch(space, &mut ops);
    let [op] = ops;
    if let Err(e) = op.result {
        if !matches!(e, memlens_core::Error::Partial { .. }) {
            return None;
        }
    }
    Some(split_strings(&buf, cut))
}

/// Splits NUL-separated strings (a final NUL ends the last one), keeping at most
/// [`MAX_ARG_COUNT`]; when more follow, or `cut` says the bytes were cut, the list ends
/// with [`TRUNCATED`].
pub fn split_strings(buf: &[u8], cut: bool) -> Vec<String> {
    let body = buf.strip_suffix(&[0]).unwrap_or(buf);
    let mut parts = body.split(|b| *b == 0);
    let mut v: Vec<String> = parts
        .by_ref()
        .take(MAX_ARG_COUNT)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if cut || parts.next().is_some() {
        v.push(TRUNCATED.to_string());
    }
    v
}

/// What a list of strings costs to keep: its text plus a `String` header per element.
fn strings_cost(v: &[String]) -> usize {
    v.iter()
        .map(|s| s.len().saturating_add(std::mem::size_of::<String>()))
        .fold(0, usize::saturating_add)
}

/// Builds the listing entry of one task.
pub fn process_info(k: &Kernel, task: u64) -> Result<ProcessInfo> {
    let mut unlimited = usize::MAX;
    process_info_with(k, task, &mut unlimited)
}

/// [`process_info`] keeping at most `budget` bytes of command line (see
/// [`strings_cost`]); the command line is `None` once the budget is spent.
fn process_info_with(k: &Kernel, task: u64, budget: &mut usize) -> Result<ProcessInfo> {
    let o = &k.off;
    // Offsets from BTF past pointers from the guest: wrapping (a wild sum fails the read).
    let at = |off: u64| task.wrapping_add(off);
    let pid = k.u32(at(o.task_pid))?;
    let tgid = k.u32(at(o.task_tgid))?;
    let name = k.chars(at(o.task_comm), 16)?;
    let ppid = match k.ptr(at(o.task_real_parent), "task_struct.real_parent") {
        Ok(Some(p)) => k.u32(p.wrapping_add(o.task_tgid)).unwrap_or(0),
        _ => 0,
    };
    let flags = o.task_flags.and_then(|f| k.u32(at(f)).ok()).unwrap_or(0);
    let mm = task_mm(k, task).unwrap_or(None);
    let kernel_thread = mm.is_none() || flags & PF_KTHREAD != 0;
    let state = o.task_state.and_then(|s| k.u32(at(s)).ok()).map(|s| {
        let ex = o
            .task_exit_state
            .and_then(|e| k.u32(at(e)).ok())
            .unwrap_or(0);
        state_letter(s, ex).to_string()
    });
    let (uid, gid) = match o
        .task_cred
        .and_then(|c| k.ptr(at(c), "task_struct.cred").ok().flatten())
    {
        Some(cred) => (
            o.cred_uid.and_then(|u| k.u32(cred.wrapping_add(u)).ok()),
            o.cred_gid.and_then(|g| k.u32(cred.wrapping_add(g)).ok()),
        ),
        None => (None, None),
    };
    let threads = match (o.task_signal, o.signal_nr_threads) {
        (Some(s), Some(n)) => k
            .ptr(at(s), "task_struct.signal")
            .ok()
            .flatten()
            .and_then(|sig| k.u32(sig.wrapping_add(n)).ok()),
        _ => None,
    };
    let start_time_ns = o.task_start_time.and_then(|s| k.u64(at(s)).ok());
    let name = if flags & (PF_KTHREAD | PF_WQ_WORKER) != 0 {
        proc_name(k, task, flags, &name).unwrap_or(name)
    } else {
        name
    };
    let mut info = ProcessInfo {
        pid: tgid,
        ppid,
        name,
        cmdline: None,
        exe: None,
        uid,
        gid,
        state,
        threads,
        start_time_ns,
        kernel_thread,
        root: None,
        kernel_object: Some(VirtAddr(task)),
    };
    if pid != tgid {
        log::debug!("task {task:#x}: pid {pid} is not its group leader {tgid}");
    }
    if let (Some(mm), false) = (mm, kernel_thread) {
        if let Ok(space) = mm_space(k, mm) {
            info.root = Some(space.root());
            if let (Some(a), Some(b), true) = (o.mm_arg_start, o.mm_arg_end, *budget > 0) {
                let (s, e) = (k.u64(mm.wrapping_add(a)), k.u64(mm.wrapping_add(b)));
                if let (Ok(s), Ok(e)) = (s, e) {
                    info.cmdline = read_strings(&space, s, e);
                    let cost = info.cmdline.as_deref().map_or(0, strings_cost);
                    if cost > *budget {
                        log::warn!(
                            "command lines of this listing past {MAX_LISTING_ARG_BYTES} bytes: \
                             left out from pid {tgid} on"
                        );
                        info.cmdline = None;
                        *budget = 0;
                    } else {
                        *budget -= cost;
                    }
                }
            }
        }
        if let Some(f) = o.mm_exe_file {
            if let Ok(Some(file)) = k.ptr(mm.wrapping_add(f), "mm_struct.exe_file") {
                info.exe = crate::paths::file_path(k, file).ok();
            }
        }
    }
    Ok(info)
}

/// All processes, pid-sorted; damaged tasks skipped with a warning.
pub fn processes(k: &Kernel) -> Result<Vec<ProcessInfo>> {
    let mut out = Vec::new();
    let mut budget = MAX_LISTING_ARG_BYTES;
    for t in task_addrs(k)? {
        match process_info_with(k, t, &mut budget) {
            Ok(p) => out.push(p),
            Err(e) => log::warn!("task_struct at {t:#x} skipped: {e}"),
        }
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// Environment of a process (`NAME=value` strings).
pub fn environment<M: memlens_core::VirtualMemory + ?Sized>(
    k: &Kernel,
    mm: u64,
    space: &M,
) -> Option<Vec<String>> {
    let (a, b) = (k.off.mm_env_start?, k.off.mm_env_end?);
    let (s, e) = (
        k.u64(mm.wrapping_add(a)).ok()?,
        k.u64(mm.wrapping_add(b)).ok()?,
    );
    read_strings_capped(space, s, e, MAX_ENV_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory whose bytes are all NUL: argv of nothing but empty strings.
    struct Nuls;

    impl memlens_core::MemoryView for Nuls {
        type Addr = VirtAddr;
        fn read_batch(&self, ops: &mut [memlens_core::ReadOp<'_, VirtAddr>]) {
            for op in ops {
                op.buf.fill(0);
                op.result = Ok(());
            }
        }
        fn metadata(&self) -> memlens_core::MemoryMetadata<VirtAddr> {
            memlens_core::MemoryMetadata {
                max_addr: VirtAddr(u64::MAX),
                real_size: u64::MAX,
                readonly: true,
                preferred_batch: 1,
            }
        }
    }

    #[test]
    fn strings_split_like_proc_cmdline() {
        assert_eq!(split_strings(b"a\0b c\0", false), ["a", "b c"]);
        assert_eq!(split_strings(b"a\0\0", false), ["a", ""]);
        assert_eq!(split_strings(b"noterm", false), ["noterm"]);
        assert_eq!(split_strings(b"abc\0de", true), ["abc", "de", TRUNCATED]);
    }

    /// 100 000 empty arguments (a hostile or odd argv): at most MAX_ARG_COUNT strings
    /// plus the marker, never one String per byte; an area of 1 GiB reads 32 KiB.
    #[test]
    fn argument_lists_are_capped() {
        let v = split_strings(&[0u8; 100_000], false);
        assert_eq!(v.len(), MAX_ARG_COUNT + 1);
        assert_eq!(v.last().map(String::as_str), Some(TRUNCATED));
        let v = read_strings(&Nuls, 0x1000, 0x1000 + (1 << 30)).unwrap();
        assert_eq!(v.len(), MAX_ARG_COUNT + 1);
        assert_eq!(v.last().map(String::as_str), Some(TRUNCATED));
        assert!(strings_cost(&v) < 100 << 10);
        // Exactly the cap of bytes is not cut.
        let v = read_strings(&Nuls, 0, MAX_ARG_BYTES).unwrap();
        assert_eq!(
            v.len(),
            MAX_ARG_COUNT + 1,
            "32 KiB of NULs is 32 767 strings"
        );
        assert!(read_strings(&Nuls, 0x2000, 0x1000).is_none());
        assert!(read_strings(&Nuls, u64::MAX - 4, u64::MAX).is_some());
    }

    #[test]
    fn states() {
        assert_eq!(state_letter(0, 0), "R");
        assert_eq!(state_letter(1, 0), "S");
        assert_eq!(state_letter(2, 0), "D");
        assert_eq!(state_letter(0x402, 0), "I");
        assert_eq!(state_letter(0, 0x20), "Z");
        assert_eq!(state_letter(4, 0), "T");
    }
}

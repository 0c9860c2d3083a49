//! The task list. **Key decision: walk `init_task.tasks` (thread-group leaders only),
//! bounded and cycle-checked, and keep going past a damaged task** — a smeared dump loses
//! the damaged entries (with a warning naming the address), not the listing.

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
/// Longest command line / environment read.
pub const MAX_ARGS: u64 = 128 << 10;

/// Addresses of all `task_struct`s on the task list, `init_task` (pid 0) excluded.
pub fn task_addrs(k: &Kernel) -> Result<Vec<u64>> {
    let init = k
        .symbol("init_task")
        .ok_or_else(|| LinuxError::MissingSymbol {
            name: "init_task".into(),
            source_name: format!("{:?}", k.info.symbol_source),
        })?;
    let off = k.off.task_tasks;
    let head = init + off;
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
        out.push(next - off);
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
        .ptr(task + o.task_worker_private?, "task_struct.worker_private")
        .ok()??;
    if flags & PF_WQ_WORKER != 0 {
        let worker = k.ptr(kt + o.kthread_data?, "kthread.data").ok()??;
        let (desc_off, desc_len) = o.worker_desc?;
        let desc = k.chars(worker + desc_off, desc_len.min(64) as usize).ok()?;
        if desc.is_empty() {
            return Some(comm.to_string());
        }
        let busy = o
            .worker_current_work
            .and_then(|c| k.u64(worker + c).ok())
            .is_some_and(|w| w != 0);
        return Some(format!("{comm}{}{desc}", if busy { '+' } else { '-' }));
    }
    let full = k
        .ptr(kt + o.kthread_full_name?, "kthread.full_name")
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
    k.ptr(task + k.off.task_mm, "task_struct.mm")
}

/// The user address space of a process from its `mm`.
pub fn mm_space(k: &Kernel, mm: u64) -> Result<KernelSpace> {
    let pgd = k
        .ptr(mm + k.off.mm_pgd, "mm_struct.pgd")?
        .ok_or(LinuxError::BadObject {
            what: "mm_struct",
            va: mm,
            why: "NULL pgd".into(),
        })?;
    let pa = k.direct_pa(pgd);
    k.user_space(pa)
}

/// Reads `[start, end)` of user memory and splits it at NULs.
pub fn read_strings<M: memlens_core::VirtualMemory + ?Sized>(
    space: &M,
    start: u64,
    end: u64,
) -> Option<Vec<String>> {
    if end <= start || end - start > MAX_ARGS {
        return None;
    }
    let mut buf = vec![0u8; (end - start) as usize];
    // Partial reads keep the readable part (pages swapped out read as zero).
    let mut ops = [memlens_core::ReadOp::new(VirtAddr(start), &mut buf[..])];
    memlens_core::MemoryView::read_batch(space, &mut ops);
    let [op] = ops;
    if let Err(e) = op.result {
        if !matches!(e, memlens_core::Error::Partial { .. }) {
            return None;
        }
    }
    let mut v: Vec<String> = buf
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if buf.last() == Some(&0) {
        v.pop();
    }
    Some(v)
}

/// Builds the listing entry of one task.
pub fn process_info(k: &Kernel, task: u64) -> Result<ProcessInfo> {
    let o = &k.off;
    let pid = k.u32(task + o.task_pid)?;
    let tgid = k.u32(task + o.task_tgid)?;
    let name = k.chars(task + o.task_comm, 16)?;
    let ppid = match k.ptr(task + o.task_real_parent, "task_struct.real_parent") {
        Ok(Some(p)) => k.u32(p + o.task_tgid).unwrap_or(0),
        _ => 0,
    };
    let flags = o.task_flags.and_then(|f| k.u32(task + f).ok()).unwrap_or(0);
    let mm = task_mm(k, task).unwrap_or(None);
    let kernel_thread = mm.is_none() || flags & PF_KTHREAD != 0;
    let state = o.task_state.and_then(|s| k.u32(task + s).ok()).map(|s| {
        let ex = o
            .task_exit_state
            .and_then(|e| k.u32(task + e).ok())
            .unwrap_or(0);
        state_letter(s, ex).to_string()
    });
    let (uid, gid) = match o
        .task_cred
        .and_then(|c| k.ptr(task + c, "task_struct.cred").ok().flatten())
    {
        Some(cred) => (
            o.cred_uid.and_then(|u| k.u32(cred + u).ok()),
            o.cred_gid.and_then(|g| k.u32(cred + g).ok()),
        ),
        None => (None, None),
    };
    let threads = match (o.task_signal, o.signal_nr_threads) {
        (Some(s), Some(n)) => k
            .ptr(task + s, "task_struct.signal")
            .ok()
            .flatten()
            .and_then(|sig| k.u32(sig + n).ok()),
        _ => None,
    };
    let start_time_ns = o.task_start_time.and_then(|s| k.u64(task + s).ok());
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
            if let (Some(a), Some(b)) = (o.mm_arg_start, o.mm_arg_end) {
                if let (Ok(s), Ok(e)) = (k.u64(mm + a), k.u64(mm + b)) {
                    info.cmdline = read_strings(&space, s, e);
                }
            }
        }
        if let Some(f) = o.mm_exe_file {
            if let Ok(Some(file)) = k.ptr(mm + f, "mm_struct.exe_file") {
                info.exe = crate::paths::file_path(k, file).ok();
            }
        }
    }
    Ok(info)
}

/// All processes, pid-sorted; damaged tasks skipped with a warning.
pub fn processes(k: &Kernel) -> Result<Vec<ProcessInfo>> {
    let mut out = Vec::new();
    for t in task_addrs(k)? {
        match process_info(k, t) {
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
    read_strings(space, k.u64(mm + a).ok()?, k.u64(mm + b).ok()?)
}

#[cfg(test)]
mod tests {
    use super::state_letter;

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

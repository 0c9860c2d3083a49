//! Structure offsets the plugin reads, resolved once from BTF. **Key decision: resolve
//! everything up front into plain numbers** so the walks are simple arithmetic and a
//! missing member is reported at open time (naming `struct.member`), not halfway through a
//! listing. Members that moved between kernel versions are `Option`s with both variants
//! tried (`__state`/`state`, maple tree/`mmap` list, `mem[]`/`core_layout`).
//!
//! Counts and sizes here come from the target's BTF and drive walks: `module.mem[]` is
//! used only with at most [`MAX_MODULE_MEM`] entries of at most [`MAX_MODULE_MEM_SIZE`]
//! bytes; name and description buffers are capped where they are read.

use crate::btf::Btf;
use crate::error::{LinuxError, Result};

/// Offsets (bytes) of the members used by the task, mm, VMA, path and module walks.
#[allow(
    missing_docs,
    reason = "each field is named struct_member after the kernel's own names"
)]
#[derive(Debug, Clone, Default)]
pub struct Offsets {
    pub task_tasks: u64,
    pub task_pid: u64,
    pub task_tgid: u64,
    pub task_comm: u64,
    pub task_real_parent: u64,
    pub task_mm: u64,
    pub task_cred: Option<u64>,
    pub task_state: Option<u64>,
    pub task_exit_state: Option<u64>,
    pub task_flags: Option<u64>,
    pub task_start_time: Option<u64>,
    pub task_signal: Option<u64>,
    pub signal_nr_threads: Option<u64>,
    pub cred_uid: Option<u64>,
    pub cred_gid: Option<u64>,
    pub mm_pgd: u64,
    pub mm_mt_root: Option<u64>,
    pub mm_mmap: Option<u64>,
    pub mm_arg_start: Option<u64>,
    pub mm_arg_end: Option<u64>,
    pub mm_env_start: Option<u64>,
    pub mm_env_end: Option<u64>,
    pub mm_exe_file: Option<u64>,
    pub mm_start_brk: Option<u64>,
    pub mm_brk: Option<u64>,
    pub mm_start_stack: Option<u64>,
    pub vma_start: u64,
    pub vma_end: u64,
    pub vma_flags: u64,
    pub vma_pgoff: u64,
    pub vma_file: u64,
    pub vma_next: Option<u64>,
    pub vma_ops: Option<u64>,
    pub vma_private: Option<u64>,
    pub file_path: u64,
    pub path_mnt: u64,
    pub path_dentry: u64,
    pub dentry_parent: u64,
    pub dentry_name: u64,
    pub qstr_len: u64,
    pub qstr_name: u64,
    pub mount_mnt: Option<u64>,
    pub mount_parent: Option<u64>,
    pub mount_mountpoint: Option<u64>,
    pub vfsmount_root: Option<u64>,
    /// `maple_range_64`: (pivot offset, slot offset, slot count).
    pub maple_range: Option<(u64, u64, u64)>,
    /// `maple_arange_64`: (pivot offset, slot offset, slot count).
    pub maple_arange: Option<(u64, u64, u64)>,
    pub task_worker_private: Option<u64>,
    pub kthread_data: Option<u64>,
    pub kthread_full_name: Option<u64>,
    pub worker_desc: Option<(u64, u64)>,
    pub worker_current_work: Option<u64>,
    pub module_list: Option<u64>,
    pub module_name: Option<u64>,
    pub module_name_len: u64,
    /// `vm_operations_struct.name` (a function pointer; identifies special mappings when
    /// `special_mapping_vmops` is not a symbol).
    pub vmops_name: Option<u64>,
    /// `module.mkobj.mod` (points back at its module; identifies a `struct module`).
    pub module_mkobj_mod: Option<u64>,
    /// 6.4+: offset of `mem`, size of one `module_memory`, count, offsets of base/size.
    pub module_mem: Option<(u64, u64, u64, u64, u64)>,
    /// Older: `core_layout.base`, `core_layout.size`, `init_layout.size`.
    pub module_layout: Option<(u64, u64, u64)>,
}

fn req(btf: &Btf, s: &str, m: &str) -> Result<u64> {
    btf.offset_of(s, m)
}

fn opt(btf: &Btf, s: &str, m: &str) -> Option<u64> {
    btf.offset_of(s, m).ok()
}

/// Pivot offset, slot offset and slot count of a maple node struct.
fn maple(btf: &Btf, s: &str) -> Option<(u64, u64, u64)> {
    let id = btf.struct_id(s)?;
    let piv = btf.member(id, "pivot")?;
    let slot = btf.member(id, "slot")?;
    let (_, n) = btf.array(slot.type_id)?;
    Some((piv.offset(), slot.offset(), n as u64))
}

/// Most `module.mem[]` entries summed: the kernel has 7 (`MOD_MEM_NUM_TYPES`, 6.4+);
/// 16 leaves room for new types while a BTF count of 2^32 is refused.
pub const MAX_MODULE_MEM: u64 = 16;
/// Largest `struct module_memory` accepted: 64-100 bytes in real kernels (base, size,
/// a tree node); a page is far above that and keeps `mem + i * size` within a few pages.
pub const MAX_MODULE_MEM_SIZE: u64 = 4096;

/// The 6.4+ `module.mem[]` layout: offset of `mem`, size of one `module_memory`, count,
/// offsets of `base` and `size` — `None` unless the count is at most [`MAX_MODULE_MEM`]
/// and the element size at most [`MAX_MODULE_MEM_SIZE`] (with `base` and `size` inside
/// it), so the per-module walk reads a bounded, small number of words.
pub fn module_mem(btf: &Btf) -> Option<(u64, u64, u64, u64, u64)> {
    let id = btf.struct_id("module")?;
    let mem = btf.member(id, "mem")?;
    let (elem, n) = btf.array(mem.type_id)?;
    let esz = btf.size_of(elem)?;
    let b = btf.offset_of("module_memory", "base").ok()?;
    let s = btf.offset_of("module_memory", "size").ok()?;
    let n = u64::from(n);
    if n > MAX_MODULE_MEM || esz > MAX_MODULE_MEM_SIZE || b.max(s) >= esz.max(1) {
        log::warn!(
            "BTF: module.mem[{n}] of {esz}-byte entries (base at {b}, size at {s}) is beyond \
             {MAX_MODULE_MEM} entries of {MAX_MODULE_MEM_SIZE} bytes; module sizes not read"
        );
        return None;
    }
    Some((mem.offset(), esz, n, b, s))
}

impl Offsets {
    /// Resolves all offsets from `btf`; fails naming the first required member missing.
    pub fn from_btf(btf: &Btf) -> Result<Offsets> {
        let mut o = Offsets {
            task_tasks: req(btf, "task_struct", "tasks")?,
            task_pid: req(btf, "task_struct", "pid")?,
            task_tgid: req(btf, "task_struct", "tgid")?,
            task_comm: req(btf, "task_struct", "comm")?,
            task_real_parent: req(btf, "task_struct", "real_parent")?,
            task_mm: req(btf, "task_struct", "mm")?,
            task_cred: opt(btf, "task_struct", "cred"),
            task_state: opt(btf, "task_struct", "__state").or(opt(btf, "task_struct", "state")),
            task_exit_state: opt(btf, "task_struct", "exit_state"),
            task_flags: opt(btf, "task_struct", "flags"),
            task_start_time: opt(btf, "task_struct", "start_time"),
            task_signal: opt(btf, "task_struct", "signal"),
            signal_nr_threads: opt(btf, "signal_struct", "nr_threads"),
            cred_uid: opt(btf, "cred", "uid"),
            cred_gid: opt(btf, "cred", "gid"),
            mm_pgd: req(btf, "mm_struct", "pgd")?,
            mm_mt_root: opt(btf, "mm_struct", "mm_mt.ma_root"),
            mm_mmap: opt(btf, "mm_struct", "mmap"),
            mm_arg_start: opt(btf, "mm_struct", "arg_start"),
            mm_arg_end: opt(btf, "mm_struct", "arg_end"),
            mm_env_start: opt(btf, "mm_struct", "env_start"),
            mm_env_end: opt(btf, "mm_struct", "env_end"),
            mm_exe_file: opt(btf, "mm_struct", "exe_file"),
            mm_start_brk: opt(btf, "mm_struct", "start_brk"),
            mm_brk: opt(btf, "mm_struct", "brk"),
            mm_start_stack: opt(btf, "mm_struct", "start_stack"),
            vma_start: req(btf, "vm_area_struct", "vm_start")?,
            vma_end: req(btf, "vm_area_struct", "vm_end")?,
            vma_flags: req(btf, "vm_area_struct", "vm_flags")?,
            vma_pgoff: req(btf, "vm_area_struct", "vm_pgoff")?,
            vma_file: req(btf, "vm_area_struct", "vm_file")?,
            vma_next: opt(btf, "vm_area_struct", "vm_next"),
            vma_ops: opt(btf, "vm_area_struct", "vm_ops"),
            vma_private: opt(btf, "vm_area_struct", "vm_private_data"),
            file_path: req(btf, "file", "f_path")?,
            path_mnt: req(btf, "path", "mnt")?,
            path_dentry: req(btf, "path", "dentry")?,
            dentry_parent: req(btf, "dentry", "d_parent")?,
            dentry_name: req(btf, "dentry", "d_name")?,
            qstr_len: req(btf, "qstr", "len")?,
            qstr_name: req(btf, "qstr", "name")?,
            mount_mnt: opt(btf, "mount", "mnt"),
            mount_parent: opt(btf, "mount", "mnt_parent"),
            mount_mountpoint: opt(btf, "mount", "mnt_mountpoint"),
            vfsmount_root: opt(btf, "vfsmount", "mnt_root"),
            maple_range: maple(btf, "maple_range_64"),
            maple_arange: maple(btf, "maple_arange_64"),
            task_worker_private: opt(btf, "task_struct", "worker_private"),
            kthread_data: opt(btf, "kthread", "data"),
            kthread_full_name: opt(btf, "kthread", "full_name"),
            worker_desc: btf.struct_id("worker").and_then(|id| {
                let m = btf.member(id, "desc")?;
                Some((m.offset(), btf.size_of(m.type_id)?))
            }),
            worker_current_work: opt(btf, "worker", "current_work"),
            module_list: opt(btf, "module", "list"),
            module_name: opt(btf, "module", "name"),
            module_name_len: 56,
            module_mkobj_mod: opt(btf, "module", "mkobj.mod"),
            vmops_name: opt(btf, "vm_operations_struct", "name"),
            module_mem: None,
            module_layout: None,
        };
        if o.mm_mt_root.is_none() && o.mm_mmap.is_none() {
            return Err(LinuxError::MissingField {
                path: "mm_struct.mm_mt (maple tree) or mm_struct.mmap (VMA list)".into(),
            });
        }
        if let Some(id) = btf.struct_id("module") {
            if let Some(m) = btf.member(id, "name") {
                o.module_name_len = btf.size_of(m.type_id).unwrap_or(56).min(256);
            }
            if btf.member(id, "mem").is_some() {
                o.module_mem = module_mem(btf);
            } else if let (Some(cb), Some(cs), Some(is)) = (
                opt(btf, "module", "core_layout.base"),
                opt(btf, "module", "core_layout.size"),
                opt(btf, "module", "init_layout.size"),
            ) {
                o.module_layout = Some((cb, cs, is));
            }
        }
        Ok(o)
    }
}

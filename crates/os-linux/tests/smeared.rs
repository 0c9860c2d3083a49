//! Smeared memory on a real kernel: the lab's KASLR dump with task-list pointers broken
//! in a copy. The listing must stop or skip with a warning — partial, never a hang or a
//! panic.

use std::sync::Arc;

mod common;

use common::VecMem;
use memlens_core::{Os, PhysicalTarget, TargetInfo, VirtAddr};
use memlens_os_linux::{LinuxOptions, LinuxOs};

fn open(m: Vec<u8>) -> LinuxOs {
    let t = PhysicalTarget::from_memory(Arc::new(VecMem(m)), TargetInfo::default());
    LinuxOs::open(t, LinuxOptions::default()).expect("the kernel itself is intact")
}

/// `(pid, physical address of its task_struct.tasks.next)` for every process.
fn task_links(os: &LinuxOs) -> Vec<(u32, usize)> {
    let off = os.kernel().btf().offset_of("task_struct", "tasks").unwrap();
    let pob = os.linux_info().page_offset_base;
    os.processes()
        .unwrap()
        .iter()
        .map(|p| {
            let va = p.kernel_object.unwrap().0 + off;
            (p.pid, (va - pob) as usize)
        })
        .collect()
}

#[test]
fn broken_and_looping_task_lists_give_partial_results() {
    let s = testlab::require("x86_64-kaslr");
    let raw = std::fs::read(&s.raw).expect("raw dump");
    let os = open(raw.clone());
    let full = os.processes().unwrap();
    let links = task_links(&os);
    assert_eq!(links.len(), full.len());
    let (mid_pid, mid_pa) = links[links.len() / 2];

    // A garbage pointer in the middle: the list is cut after that task.
    let mut m = raw.clone();
    m[mid_pa..mid_pa + 8].copy_from_slice(&0x4141_4141_4141_4141u64.to_le_bytes());
    let ps = open(m).processes().expect("partial list");
    assert!(
        ps.len() < full.len() && ps.iter().any(|p| p.pid == mid_pid),
        "{} of {}",
        ps.len(),
        full.len()
    );

    // A loop back to an earlier task (not init_task): stopped by cycle detection.
    let mut m = raw.clone();
    let earlier_va = (links[1].1 as u64) + os.linux_info().page_offset_base;
    m[mid_pa..mid_pa + 8].copy_from_slice(&earlier_va.to_le_bytes());
    let ps = open(m).processes().expect("partial list");
    assert!(ps.len() <= full.len());
    assert!(ps.iter().any(|p| p.pid == mid_pid));

    // A task pointing to itself.
    let mut m = raw;
    let self_va = mid_pa as u64 + os.linux_info().page_offset_base;
    m[mid_pa..mid_pa + 8].copy_from_slice(&self_va.to_le_bytes());
    let ps = open(m).processes().expect("partial list");
    assert!(ps.len() < full.len());
}

/// A forged VMA covering nearly all of the address space (`[start, 2^64 - 4096)`, page
/// aligned, start < end): dropped from the maps — a consumer would otherwise walk 16 EiB —
/// while the other VMAs of the process stay.
#[test]
fn forged_vma_past_the_user_half_is_dropped() {
    use memlens_os_linux::{mm, tasks};
    let s = testlab::require("x86_64-kaslr");
    let raw = std::fs::read(&s.raw).expect("raw dump");
    let os = open(raw.clone());
    let k = os.kernel();
    let p = os
        .processes()
        .unwrap()
        .into_iter()
        .find(|p| !p.kernel_thread && p.pid > 1)
        .expect("a user process");
    let task = p.kernel_object.unwrap().0;
    let mm_va = tasks::task_mm(k, task).unwrap().expect("user mm");
    let maps = mm::maps(k, mm_va).unwrap();
    assert!(maps.len() > 2);
    let vma = mm::vma_addrs(k, mm_va).unwrap()[0];
    let end_off = k.btf().offset_of("vm_area_struct", "vm_end").unwrap();
    let start_off = k.btf().offset_of("vm_area_struct", "vm_start").unwrap();
    let pa = |va: u64| k.memory().translate(VirtAddr(va)).unwrap().0 .0 as usize;
    let start = u64::from_le_bytes(raw[pa(vma + start_off)..][..8].try_into().unwrap());
    assert!(maps.iter().any(|m| m.start.0 == start));

    let mut m = raw;
    let at = pa(vma + end_off);
    m[at..at + 8].copy_from_slice(&0xffff_ffff_ffff_f000u64.to_le_bytes());
    let os = open(m);
    let forged = mm::maps(os.kernel(), mm_va).unwrap();
    assert_eq!(
        forged.len(),
        maps.len() - 1,
        "only the forged VMA is dropped"
    );
    assert!(forged.iter().all(|m| m.start.0 != start));
    assert!(forged.iter().all(|m| m.end.0 <= 1 << 47));
}

//! Smeared memory on a real kernel: the lab's KASLR dump with task-list pointers broken
//! in a copy. The listing must stop or skip with a warning — partial, never a hang or a
//! panic.

use std::sync::Arc;

mod common;

use common::VecMem;
use memlens_core::{Os, PhysicalTarget, TargetInfo};
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

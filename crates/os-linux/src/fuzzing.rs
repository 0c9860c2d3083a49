//! Support for the whole-pipeline fuzz target (`fuzz/fuzz_targets/pipeline.rs`) and its
//! replay test: what `memlens ps` and its neighbours do after a dump is opened — find the
//! kernel, list processes, their maps and modules, kernel modules — with bounded work.
//! Not part of the stable API. **Key decision: the fuzz target and the replay test call
//! this one function**, so a crash input replayed by `cargo test` runs what the fuzzer ran.

use memlens_core::{MemoryViewExt, Os, PhysicalTarget, VirtAddr};

use crate::{LinuxOptions, LinuxOs};

/// Detects and opens a Linux kernel in `target`, then lists what the CLI lists: info,
/// kernel modules, processes, and for the first 8 processes their maps, modules (with
/// details for 4 of them) and a read of their memory. Returns whether a kernel opened.
/// Panics only if memlens panics (the point of fuzzing).
pub fn exercise(target: PhysicalTarget) -> bool {
    let _ = crate::detect(&target);
    let Ok(os) = LinuxOs::open(target, LinuxOptions::default()) else {
        return false;
    };
    let _ = os.info();
    let _ = os.kernel_modules();
    let Ok(procs) = os.processes() else {
        return true;
    };
    for p in procs.iter().take(8) {
        let Ok(proc) = os.process(p.pid) else {
            continue;
        };
        if let Ok(maps) = proc.maps() {
            if let Some(m) = maps.first() {
                let _ = proc.memory().read_vec(m.start, 64);
            }
        }
        if let Ok(mods) = proc.modules() {
            for m in mods.iter().take(4) {
                let _ = proc.module_details(m);
            }
        }
        let _ = proc.memory().read_vec(VirtAddr(0x40_0000), 64);
    }
    true
}

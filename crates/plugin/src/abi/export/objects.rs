//! Exported CPU, process, OS and target objects. **Key decision: structured results cross
//! as JSON** (the serde forms of the core types), so these vtables stay small and stable
//! while the core types grow; only memory goes through binary calls.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use memlens_core::{CpuState, Os, PhysicalTarget, Process};

use super::*;

unsafe extern "C" fn cpu_count(this: *const c_void) -> usize {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        unsafe { arc_ref::<dyn CpuState>(this) }.cpu_count()
    }))
    .unwrap_or(0)
}

unsafe extern "C" fn cpu_registers(
    this: *const c_void,
    cpu: usize,
    out: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        let regs = unsafe { arc_ref::<dyn CpuState>(this) }
            .registers(cpu)
            .map_err(|e| e.to_string())?;
        put_json(out, &regs)
    })
}

/// Exports CPU state.
pub fn export_cpu(c: Arc<dyn CpuState>) -> CpuObj {
    CpuObj {
        this: Box::into_raw(Box::new(c)) as *mut c_void,
        vt: CpuVtable {
            drop: arc_drop::<dyn CpuState>,
            cpu_count,
            registers: cpu_registers,
        },
    }
}

/// Exports a physical target: the object and its `TargetInfo` as JSON.
pub fn export_target(t: PhysicalTarget) -> Result<(PhysTargetObj, String), String> {
    let info =
        serde_json::to_string(&t.info).map_err(|e| format!("serialising TargetInfo: {e}"))?;
    Ok((
        PhysTargetObj {
            memory: export_memory(t.memory),
            writer: t.writer.map_or(MemObj::ABSENT, export_writer),
            cpu: t.cpu.map_or(CpuObj::ABSENT, export_cpu),
        },
        info,
    ))
}

// ---- processes ----

unsafe extern "C" fn proc_info(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        put_json(out, unsafe { arc_ref::<dyn Process>(this) }.info())
    })
}
unsafe extern "C" fn proc_memory(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32 {
    guard(Some(err), || {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        let m = export_memory(unsafe { arc_ref::<dyn Process>(this) }.memory());
        // SAFETY: `out` is writable.
        unsafe { *out = m };
        Ok(STATUS_OK)
    })
}
unsafe extern "C" fn proc_writer(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32 {
    guard(Some(err), || {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        match unsafe { arc_ref::<dyn Process>(this) }.writer() {
            Some(w) => {
                // SAFETY: `out` is writable.
                unsafe { *out = export_writer(w) };
                Ok(STATUS_OK)
            }
            None => Ok(STATUS_NONE),
        }
    })
}
unsafe extern "C" fn proc_maps(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(
            out,
            // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
            // of every vtable function), kept alive by the caller for the call.
            &unsafe { arc_ref::<dyn Process>(this) }
                .maps()
                .map_err(|e| e.to_string())?,
        )
    })
}
unsafe extern "C" fn proc_modules(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(
            out,
            // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
            // of every vtable function), kept alive by the caller for the call.
            &unsafe { arc_ref::<dyn Process>(this) }
                .modules()
                .map_err(|e| e.to_string())?,
        )
    })
}
unsafe extern "C" fn proc_module_details(
    this: *const c_void,
    module: StrRef,
    out: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // SAFETY: `module` is valid for the call.
        let json = unsafe { module.get() }.ok_or("no module given")?;
        let m: memlens_core::ModuleInfo =
            serde_json::from_str(&json).map_err(|e| format!("bad ModuleInfo JSON: {e}"))?;
        put_json(
            out,
            // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
            // of every vtable function), kept alive by the caller for the call.
            &unsafe { arc_ref::<dyn Process>(this) }
                .module_details(&m)
                .map_err(|e| e.to_string())?,
        )
    })
}

/// Exports a process.
pub fn export_process(p: Arc<dyn Process>) -> ProcObj {
    ProcObj {
        this: Box::into_raw(Box::new(p)) as *mut c_void,
        vt: ProcVtable {
            drop: arc_drop::<dyn Process>,
            info: proc_info,
            memory: proc_memory,
            writer: proc_writer,
            maps: proc_maps,
            modules: proc_modules,
            module_details: proc_module_details,
        },
    }
}

// ---- OS ----

unsafe extern "C" fn os_info(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        put_json(out, &unsafe { arc_ref::<dyn Os>(this) }.info())
    })
}
unsafe extern "C" fn os_processes(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(
            out,
            // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
            // of every vtable function), kept alive by the caller for the call.
            &unsafe { arc_ref::<dyn Os>(this) }
                .processes()
                .map_err(|e| e.to_string())?,
        )
    })
}
unsafe extern "C" fn os_process(
    this: *const c_void,
    pid: u32,
    out: *mut ProcObj,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        let p = unsafe { arc_ref::<dyn Os>(this) }
            .process(pid)
            .map_err(|e| e.to_string())?;
        // SAFETY: `out` is writable.
        unsafe { *out = export_process(p) };
        Ok(STATUS_OK)
    })
}
unsafe extern "C" fn os_kernel_modules(this: *const c_void, out: StrSink, err: StrSink) -> i32 {
    guard(Some(err), || {
        put_json(
            out,
            // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
            // of every vtable function), kept alive by the caller for the call.
            &unsafe { arc_ref::<dyn Os>(this) }
                .kernel_modules()
                .map_err(|e| e.to_string())?,
        )
    })
}
unsafe extern "C" fn os_kernel_memory(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32 {
    guard(Some(err), || {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        match unsafe { arc_ref::<dyn Os>(this) }.kernel_memory() {
            Some(m) => {
                // SAFETY: `out` is writable.
                unsafe { *out = export_memory(m) };
                Ok(STATUS_OK)
            }
            None => Ok(STATUS_NONE),
        }
    })
}
unsafe extern "C" fn os_physical(
    this: *const c_void,
    out: *mut PhysTargetObj,
    info: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // SAFETY: `this` is the live `Box<Arc<_>>` exported with this vtable (the contract
        // of every vtable function), kept alive by the caller for the call.
        match unsafe { arc_ref::<dyn Os>(this) }.physical() {
            Some(t) => {
                let (obj, json) = export_target(t)?;
                // SAFETY: `out` is writable; the sink is valid for the call.
                unsafe {
                    *out = obj;
                    info.put(&json);
                }
                Ok(STATUS_OK)
            }
            None => Ok(STATUS_NONE),
        }
    })
}

/// Exports an OS.
pub fn export_os(os: Arc<dyn Os>) -> OsObj {
    OsObj {
        this: Box::into_raw(Box::new(os)) as *mut c_void,
        vt: OsVtable {
            drop: arc_drop::<dyn Os>,
            info: os_info,
            processes: os_processes,
            process: os_process,
            kernel_modules: os_kernel_modules,
            kernel_memory: os_kernel_memory,
            physical: os_physical,
        },
    }
}

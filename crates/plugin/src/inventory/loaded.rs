//! Plugins loaded from files, as factories. **Key decision: a loaded factory holds the
//! library (through its `Origin`) for as long as it or anything it created lives**, so the
//! descriptor pointers it keeps stay valid without lifetimes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use memlens_core::{Os, PhysicalTarget};

use crate::abi::export::{export_os, export_target};
use crate::abi::import::{import_os, import_target, Origin};
use crate::abi::*;
use crate::args::PluginSpec;
use crate::error::{Error, Result};
use crate::registry::{check_input, ConnectorFactory, OsFactory, PluginMeta};
use crate::traits::TargetListing;

fn status_err(plugin: &str, during: &str, status: i32, err: &[u8]) -> Error {
    let message = String::from_utf8_lossy(err).into_owned();
    if status == STATUS_PANIC {
        Error::Panic {
            plugin: plugin.to_string(),
            during: during.to_string(),
            message,
        }
    } else {
        Error::Plugin {
            plugin: plugin.to_string(),
            message: if message.is_empty() {
                format!("{during} failed with status {status}")
            } else {
                message
            },
        }
    }
}

/// Calls a loaded descriptor's `targets` (same signature for both kinds).
fn loaded_targets(name: &str, f: TargetsFn, args: &str) -> Result<Vec<TargetListing>> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // SAFETY: a checked descriptor's function of a library kept loaded by the caller;
    // valid string and sinks.
    let st = unsafe {
        f(
            StrRef::new(args),
            StrSink::to_vec(&mut out),
            StrSink::to_vec(&mut err),
        )
    };
    if st != STATUS_OK {
        return Err(status_err(name, "targets", st, &err));
    }
    serde_json::from_slice(&out).map_err(|e| Error::Plugin {
        plugin: name.to_string(),
        message: format!("bad target list JSON: {e}"),
    })
}

/// A connector loaded from a file.
pub struct LoadedConnector {
    pub(super) origin: Arc<Origin>,
    pub(super) desc: *const ConnectorDescriptor,
    pub(super) meta: PluginMeta,
}

// SAFETY: the descriptor is an immutable static of a library kept loaded by `origin`.
unsafe impl Send for LoadedConnector {}
// SAFETY: shared references only read the descriptor, an immutable static of a library
// kept loaded by `origin`, and the descriptor types are `Sync` (see `abi::types`).
unsafe impl Sync for LoadedConnector {}

impl LoadedConnector {
    fn desc(&self) -> &ConnectorDescriptor {
        // SAFETY: checked at load; the library stays loaded while `origin` lives.
        unsafe { &*self.desc }
    }
    /// The file it was loaded from.
    pub fn path(&self) -> Option<&Path> {
        self.origin.path.as_deref()
    }
}

impl ConnectorFactory for LoadedConnector {
    fn meta(&self) -> PluginMeta {
        self.meta.clone()
    }
    fn help(&self) -> Result<String> {
        let mut out = Vec::new();
        // SAFETY: valid descriptor and sink.
        let st = unsafe { (self.desc().help)(StrSink::to_vec(&mut out)) };
        if st != STATUS_OK {
            return Err(status_err(&self.meta.name, "help", st, &out));
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    fn targets(&self, args: &str) -> Result<Vec<TargetListing>> {
        loaded_targets(&self.meta.name, self.desc().targets, args)
    }
    fn path(&self) -> Option<PathBuf> {
        self.origin.path.clone()
    }
    fn create(&self, spec: &PluginSpec, input: Option<Arc<dyn Os>>) -> Result<PhysicalTarget> {
        check_input(&self.meta.name, self.meta.input, input.is_some(), "an OS")?;
        let host = crate::logger::host_context();
        let input_obj = input.map(export_os);
        let mut out = PhysTargetObj {
            memory: MemObj::ABSENT,
            writer: MemObj::ABSENT,
            cpu: CpuObj::ABSENT,
        };
        let (mut info, mut err) = (Vec::new(), Vec::new());
        // SAFETY: all pointers valid for the call; the input object is moved to the plugin.
        let st = unsafe {
            (self.desc().create)(
                &host,
                StrRef::opt(spec.target.as_deref()),
                StrRef::new(&spec.args),
                input_obj
                    .as_ref()
                    .map_or(std::ptr::null(), |o| o as *const OsObj),
                &mut out,
                StrSink::to_vec(&mut info),
                StrSink::to_vec(&mut err),
            )
        };
        if st != STATUS_OK || out.memory.this.is_null() {
            return Err(status_err(&self.meta.name, "create", st, &err));
        }
        let info = String::from_utf8_lossy(&info).into_owned();
        // SAFETY: a valid owned target from this library; `info` lives for the call.
        unsafe { import_target(out, StrRef::new(&info), self.origin.clone()) }.map_err(|m| {
            Error::Plugin {
                plugin: self.meta.name.clone(),
                message: m,
            }
        })
    }
}

/// An OS plugin loaded from a file.
pub struct LoadedOs {
    pub(super) origin: Arc<Origin>,
    pub(super) desc: *const OsDescriptor,
    pub(super) meta: PluginMeta,
}

// SAFETY: the descriptor is an immutable static of a library kept loaded by `origin`.
unsafe impl Send for LoadedOs {}
// SAFETY: shared references only read the descriptor, an immutable static of a library
// kept loaded by `origin`, and the descriptor types are `Sync` (see `abi::types`).
unsafe impl Sync for LoadedOs {}

impl LoadedOs {
    fn desc(&self) -> &OsDescriptor {
        // SAFETY: checked at load; the library stays loaded while `origin` lives.
        unsafe { &*self.desc }
    }
}

impl OsFactory for LoadedOs {
    fn meta(&self) -> PluginMeta {
        self.meta.clone()
    }
    fn help(&self) -> Result<String> {
        let mut out = Vec::new();
        // SAFETY: valid descriptor and sink.
        let st = unsafe { (self.desc().help)(StrSink::to_vec(&mut out)) };
        if st != STATUS_OK {
            return Err(status_err(&self.meta.name, "help", st, &out));
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
    fn targets(&self, args: &str) -> Result<Vec<TargetListing>> {
        loaded_targets(&self.meta.name, self.desc().targets, args)
    }
    fn path(&self) -> Option<PathBuf> {
        self.origin.path.clone()
    }
    fn create(&self, spec: &PluginSpec, input: Option<PhysicalTarget>) -> Result<Arc<dyn Os>> {
        check_input(
            &self.meta.name,
            self.meta.input,
            input.is_some(),
            "a physical target",
        )?;
        let host = crate::logger::host_context();
        let input = match input {
            Some(t) => Some(export_target(t).map_err(|m| Error::Plugin {
                plugin: self.meta.name.clone(),
                message: m,
            })?),
            None => None,
        };
        let mut out = OsObj {
            this: std::ptr::null_mut(),
            vt: OsVtable {
                drop: absent_drop,
                info: absent_json,
                processes: absent_json,
                process: absent_process,
                kernel_modules: absent_json,
                kernel_memory: absent_mem,
                physical: absent_phys,
            },
        };
        let mut err = Vec::new();
        // SAFETY: all pointers valid for the call; the input target is moved to the plugin.
        let st = unsafe {
            (self.desc().create)(
                &host,
                StrRef::opt(spec.target.as_deref()),
                StrRef::new(&spec.args),
                input
                    .as_ref()
                    .map_or(std::ptr::null(), |(o, _)| o as *const PhysTargetObj),
                input.as_ref().map_or(StrRef::NONE, |(_, i)| StrRef::new(i)),
                &mut out,
                StrSink::to_vec(&mut err),
            )
        };
        if st != STATUS_OK || out.this.is_null() {
            return Err(status_err(&self.meta.name, "create", st, &err));
        }
        // SAFETY: a valid owned OS object from this library.
        Ok(unsafe { import_os(out, self.origin.clone()) })
    }
}

unsafe extern "C" fn absent_drop(_: *mut std::ffi::c_void) {}
unsafe extern "C" fn absent_json(_: *const std::ffi::c_void, _: StrSink, _: StrSink) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn absent_process(
    _: *const std::ffi::c_void,
    _: u32,
    _: *mut ProcObj,
    _: StrSink,
) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn absent_mem(_: *const std::ffi::c_void, _: *mut MemObj, _: StrSink) -> i32 {
    STATUS_NONE
}
unsafe extern "C" fn absent_phys(
    _: *const std::ffi::c_void,
    _: *mut PhysTargetObj,
    _: StrSink,
    _: StrSink,
) -> i32 {
    STATUS_NONE
}

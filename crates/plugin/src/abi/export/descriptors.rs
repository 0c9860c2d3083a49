//! The functions of plugin descriptors. **Key decision: each is a monomorphic
//! `extern "C"` function of the plugin type `T`**, so a descriptor is a `const` built at
//! compile time ([`connector_descriptor`], [`os_descriptor`]) and needs no registration.

use std::sync::Arc;

use memlens_core::{Os, PhysicalTarget};

use super::super::import::{self, Origin};
use super::*;
use crate::args::Args;
use crate::traits::{ConnectorPlugin, InputKind, OsPlugin};

fn check_input(name: &str, kind: InputKind, given: bool, what: &str) -> Result<(), String> {
    match (kind, given) {
        (InputKind::None, true) => Err(format!(
            "'{name}' takes no input, but the previous step gives it {what}"
        )),
        (InputKind::Required, false) => Err(format!(
            "'{name}' needs {what} as input: put a step before it"
        )),
        _ => Ok(()),
    }
}

/// The `help` function of connector `T`'s descriptor.
///
/// # Safety
/// `out` must be a valid sink.
pub unsafe extern "C" fn connector_help<T: ConnectorPlugin>(out: StrSink) -> i32 {
    guard(Some(out), || {
        // SAFETY: valid sink.
        unsafe { out.put(&T::help()) };
        Ok(STATUS_OK)
    })
}

/// The body of both descriptors' `targets`: parses `args` against `spec` (the target
/// argument made optional: listing is what one does before knowing the target) and
/// writes what `list` returns as JSON.
///
/// # Safety
/// `args` must be valid for the call, `out`/`err` valid sinks.
unsafe fn targets_json(
    name: &str,
    spec: fn() -> crate::args::ArgSpec,
    list: fn(&Args) -> Result<Vec<crate::traits::TargetListing>, crate::error::BoxError>,
    args: StrRef,
    out: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // SAFETY: valid for the call.
        let raw = unsafe { args.get() }.unwrap_or_default();
        let mut spec = spec();
        if let Some(t) = spec.target.as_mut() {
            t.required = false;
        }
        let a = Args::parse(name, &spec, None, &raw).map_err(|e| e.to_string())?;
        put_json(out, &list(&a).map_err(|e| e.to_string())?)
    })
}

/// The `targets` function of connector `T`'s descriptor.
///
/// # Safety
/// `args` must be valid for the call, `out`/`err` valid sinks.
pub unsafe extern "C" fn connector_targets<T: ConnectorPlugin>(
    args: StrRef,
    out: StrSink,
    err: StrSink,
) -> i32 {
    // SAFETY: forwarded from our caller.
    unsafe { targets_json(T::NAME, T::args, T::targets, args, out, err) }
}

/// The `targets` function of OS plugin `T`'s descriptor.
///
/// # Safety
/// `args` must be valid for the call, `out`/`err` valid sinks.
pub unsafe extern "C" fn os_targets<T: OsPlugin>(args: StrRef, out: StrSink, err: StrSink) -> i32 {
    // SAFETY: forwarded from our caller.
    unsafe { targets_json(T::NAME, T::args, T::targets, args, out, err) }
}

/// The `create` function of connector `T`'s descriptor.
///
/// # Safety
/// Arguments as documented on [`ConnectorDescriptor::create`].
pub unsafe extern "C" fn connector_create<T: ConnectorPlugin>(
    host: *const HostContext,
    target: StrRef,
    args: StrRef,
    input: *const OsObj,
    out: *mut PhysTargetObj,
    info: StrSink,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        // Take ownership of the input first: it is released on every path.
        let input: Option<Arc<dyn Os>> = if input.is_null() {
            None
        } else {
            // SAFETY: the host moved a valid OS object to us.
            Some(unsafe { import::import_os(*input, Origin::host("input OS")) })
        };
        // SAFETY: `host` is null or valid for the call.
        if let Some(h) = unsafe { host.as_ref() } {
            crate::logger::install_forwarder(h);
        }
        check_input(T::NAME, T::INPUT, input.is_some(), "an OS")?;
        // SAFETY: valid for the call.
        let (target, raw) = unsafe { (target.get(), args.get().unwrap_or_default()) };
        let a =
            Args::parse(T::NAME, &T::args(), target.as_deref(), &raw).map_err(|e| e.to_string())?;
        let t = T::create(&a, input).map_err(|e| e.to_string())?;
        let (obj, json) = export_target(t)?;
        // SAFETY: `out` is writable, the sink valid.
        unsafe {
            *out = obj;
            info.put(&json);
        }
        Ok(STATUS_OK)
    })
}

/// The `help` function of OS plugin `T`'s descriptor.
///
/// # Safety
/// `out` must be a valid sink.
pub unsafe extern "C" fn os_help<T: OsPlugin>(out: StrSink) -> i32 {
    guard(Some(out), || {
        // SAFETY: valid sink.
        unsafe { out.put(&T::help()) };
        Ok(STATUS_OK)
    })
}

/// The `create` function of OS plugin `T`'s descriptor.
///
/// # Safety
/// Arguments as documented on [`OsDescriptor::create`].
pub unsafe extern "C" fn os_create<T: OsPlugin>(
    host: *const HostContext,
    target: StrRef,
    args: StrRef,
    input: *const PhysTargetObj,
    input_info: StrRef,
    out: *mut OsObj,
    err: StrSink,
) -> i32 {
    guard(Some(err), || {
        let input: Option<PhysicalTarget> = if input.is_null() {
            None
        } else {
            // SAFETY: the host moved a valid target to us; the info is valid for the call.
            Some(unsafe { import::import_target(*input, input_info, Origin::host("input")) }?)
        };
        // SAFETY: `host` is null or valid for the call.
        if let Some(h) = unsafe { host.as_ref() } {
            crate::logger::install_forwarder(h);
        }
        check_input(T::NAME, T::INPUT, input.is_some(), "a physical target")?;
        // SAFETY: valid for the call.
        let (target, raw) = unsafe { (target.get(), args.get().unwrap_or_default()) };
        let a =
            Args::parse(T::NAME, &T::args(), target.as_deref(), &raw).map_err(|e| e.to_string())?;
        let os = T::create(&a, input).map_err(|e| e.to_string())?;
        // SAFETY: `out` is writable.
        unsafe { *out = export_os(os) };
        Ok(STATUS_OK)
    })
}

/// The descriptor of connector `T` (used by [`export_connector!`](crate::export_connector)).
pub const fn connector_descriptor<T: ConnectorPlugin>(symbol_suffix: &str) -> ConnectorDescriptor {
    ConnectorDescriptor {
        header: make_header(
            KIND_CONNECTOR,
            T::INPUT as u32,
            T::NAME,
            T::VERSION,
            T::DESCRIPTION,
            symbol_suffix,
        ),
        help: connector_help::<T>,
        targets: connector_targets::<T>,
        create: connector_create::<T>,
    }
}

/// The descriptor of OS plugin `T` (used by [`export_os!`](crate::export_os)).
pub const fn os_descriptor<T: OsPlugin>(symbol_suffix: &str) -> OsDescriptor {
    OsDescriptor {
        header: make_header(
            KIND_OS,
            T::INPUT as u32,
            T::NAME,
            T::VERSION,
            T::DESCRIPTION,
            symbol_suffix,
        ),
        help: os_help::<T>,
        targets: os_targets::<T>,
        create: os_create::<T>,
    }
}

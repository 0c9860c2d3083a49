//! `testbad`: a `cdylib` whose descriptors must be rejected, for the memlens-plugin tests.
//! **Key decision: every function here aborts the process**, so a test that passes proves
//! the host never called into a plugin whose ABI version or layout fingerprint differ.
//!
//! - `MEMLENS_CONNECTOR_BADABI`: ABI version `ABI_VERSION + 1`.
//! - `MEMLENS_CONNECTOR_BADFP`: correct ABI version, wrong layout fingerprint.
//! - `MEMLENS_OS_BADKIND`: exported under the OS prefix but declares a connector.

use memlens_plugin::abi::{
    make_header, ConnectorDescriptor, HostContext, OsObj, PhysTargetObj, PluginHeader, StrRef,
    StrSink, ABI_VERSION, KIND_CONNECTOR,
};

unsafe extern "C" fn abort_help(_: StrSink) -> i32 {
    std::process::abort()
}
unsafe extern "C" fn abort_targets(_: StrRef, _: StrSink, _: StrSink) -> i32 {
    std::process::abort()
}
unsafe extern "C" fn abort_create(
    _: *const HostContext,
    _: StrRef,
    _: StrRef,
    _: *const OsObj,
    _: *mut PhysTargetObj,
    _: StrSink,
    _: StrSink,
) -> i32 {
    std::process::abort()
}

const fn bad_abi(mut h: PluginHeader) -> PluginHeader {
    h.abi_version = ABI_VERSION + 1;
    h
}

const fn bad_fp(mut h: PluginHeader) -> PluginHeader {
    h.fingerprint ^= 1;
    h
}

const fn descriptor(header: PluginHeader) -> ConnectorDescriptor {
    ConnectorDescriptor {
        header,
        help: abort_help,
        targets: abort_targets,
        create: abort_create,
    }
}

/// Wrong ABI version.
#[used]
#[no_mangle]
pub static MEMLENS_CONNECTOR_BADABI: ConnectorDescriptor = descriptor(bad_abi(make_header(
    KIND_CONNECTOR,
    0,
    "badabi",
    "9.9.9",
    "built against another ABI version",
    "BADABI",
)));

/// Wrong layout fingerprint.
#[used]
#[no_mangle]
pub static MEMLENS_CONNECTOR_BADFP: ConnectorDescriptor = descriptor(bad_fp(make_header(
    KIND_CONNECTOR,
    0,
    "badfp",
    "9.9.9",
    "built with different ABI type layouts",
    "BADFP",
)));

/// Declares a connector under the OS prefix.
#[used]
#[no_mangle]
pub static MEMLENS_OS_BADKIND: ConnectorDescriptor = descriptor(make_header(
    KIND_CONNECTOR,
    0,
    "badkind",
    "9.9.9",
    "connector exported under the OS prefix",
    "BADKIND",
));

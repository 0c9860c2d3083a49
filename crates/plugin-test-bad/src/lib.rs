//! `testbad`: a `cdylib` whose descriptors must be rejected, for the memlens-plugin tests.
//! **Key decision: every function here aborts the process**, so a test that passes proves
//! the host never called into a plugin whose ABI version or layout fingerprint differ.
//!
//! - `MEMLENS_CONNECTOR_BADABI`: ABI version `ABI_VERSION + 1` (a plugin built by a newer
//!   memlens).
//! - `MEMLENS_OS_OLDABI`: ABI version 1 with version 1's OS descriptor layout (no `targets`
//!   field): a plugin built before the last ABI change, whose descriptor is shorter than
//!   the host's — calling through it would jump to `create` via the wrong slot.
//! - `MEMLENS_CONNECTOR_BADFP`: correct ABI version, wrong layout fingerprint.
//! - `MEMLENS_OS_BADKIND`: exported under the OS prefix but declares a connector.

use memlens_plugin::abi::{
    make_header, ConnectorDescriptor, HostContext, OsObj, PhysTargetObj, PluginHeader, StrRef,
    StrSink, ABI_VERSION, KIND_CONNECTOR, KIND_OS,
};

/// The ABI version whose `OsDescriptor` had no `targets` (version 2 added it).
pub const OLD_ABI_VERSION: u32 = 1;
const _: () = assert!(ABI_VERSION > OLD_ABI_VERSION);

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

unsafe extern "C" fn abort_os_create(
    _: *const HostContext,
    _: StrRef,
    _: StrRef,
    _: *const PhysTargetObj,
    _: StrRef,
    _: *mut memlens_plugin::abi::OsObj,
    _: StrSink,
) -> i32 {
    std::process::abort()
}

/// The OS descriptor of ABI version 1: `header`, `help`, `create` (no `targets`).
#[repr(C)]
pub struct OsDescriptorV1 {
    /// Header (ABI version 1).
    pub header: PluginHeader,
    /// Help.
    pub help: unsafe extern "C" fn(StrSink) -> i32,
    /// Create (at the offset where version 2 has `targets`).
    pub create: unsafe extern "C" fn(
        *const HostContext,
        StrRef,
        StrRef,
        *const PhysTargetObj,
        StrRef,
        *mut memlens_plugin::abi::OsObj,
        StrSink,
    ) -> i32,
}

// SAFETY: an immutable static of plain code addresses.
unsafe impl Sync for OsDescriptorV1 {}

const fn old_abi(mut h: PluginHeader) -> PluginHeader {
    h.abi_version = OLD_ABI_VERSION;
    h
}

/// Built against ABI version 1.
#[used]
#[no_mangle]
pub static MEMLENS_OS_OLDABI: OsDescriptorV1 = OsDescriptorV1 {
    header: old_abi(make_header(
        KIND_OS,
        2,
        "oldabi",
        "0.0.1",
        "built against ABI version 1 (OS descriptor without targets)",
        "OLDABI",
    )),
    help: abort_help,
    create: abort_os_create,
};

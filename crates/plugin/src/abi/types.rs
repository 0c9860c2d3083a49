//! The `#[repr(C)]` types that cross the plugin boundary. Nothing with a Rust-defined
//! layout crosses it: objects travel as a `this` pointer plus a vtable of `extern "C"`
//! functions **carried by value** (no pointer into the plugin's data segment to go stale),
//! strings travel as `(ptr, len)` pairs borrowed for one call, and anything a callee hands
//! back of variable size (JSON, messages, range lists) is pushed through a sink callback
//! that the caller owns, so no allocation is ever freed by another allocator.
//!
//! The C view of these types is `include/memlens_plugin.h` (generated; `tests/abi_header.rs`
//! proves its layout equals this one). Status codes ([`STATUS_OK`] …) are the only integer
//! error codes; messages travel through an error sink.

use std::ffi::c_void;

/// Version of this ABI. Bump on any change to a type in this module.
///
/// History: 1 = first version; 2 = [`OsDescriptor`] gained `targets` (at the same offset
/// as in [`ConnectorDescriptor`]).
pub const ABI_VERSION: u32 = 2;
/// First bytes of every descriptor.
pub const MAGIC: [u8; 8] = *b"MLPLUGIN";
/// Symbol-name prefix of connector descriptors.
pub const CONNECTOR_PREFIX: &str = "MEMLENS_CONNECTOR_";
/// Symbol-name prefix of OS descriptors.
pub const OS_PREFIX: &str = "MEMLENS_OS_";

/// The call succeeded.
pub const STATUS_OK: i32 = 0;
/// The call failed; a message was written to the error sink.
pub const STATUS_ERROR: i32 = 1;
/// The callee panicked; the panic was caught and its message written to the error sink.
pub const STATUS_PANIC: i32 = 2;
/// An optional object is absent (`kernel_memory`, `writer`, `physical`).
pub const STATUS_NONE: i32 = 3;

/// [`PluginHeader::kind`] of a connector.
pub const KIND_CONNECTOR: u32 = 1;
/// [`PluginHeader::kind`] of an OS plugin.
pub const KIND_OS: u32 = 2;

/// Length of [`PluginHeader::name`].
pub const NAME_LEN: usize = 32;
/// Length of [`PluginHeader::version`].
pub const VERSION_LEN: usize = 32;
/// Length of [`PluginHeader::description`].
pub const DESCRIPTION_LEN: usize = 192;

/// The fixed-size, pointer-free start of every descriptor. The analyzer reads these bytes
/// straight from the file (no relocation, no pointer chasing): strings are inline,
/// NUL-padded UTF-8.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`] of the crate that built the plugin.
    pub abi_version: u32,
    /// [`KIND_CONNECTOR`] or [`KIND_OS`].
    pub kind: u32,
    /// `size_of::<PluginHeader>()`.
    pub header_size: u32,
    /// [`InputKind`](crate::InputKind) as `u32`: whether the plugin accepts an input.
    pub input: u32,
    /// [`layout_fingerprint`](super::layout_fingerprint) for this kind.
    pub fingerprint: u64,
    /// Plugin name (`[a-z0-9_]+`), NUL-padded.
    pub name: [u8; NAME_LEN],
    /// Plugin version (`x.y.z`), NUL-padded.
    pub version: [u8; VERSION_LEN],
    /// One-line description, NUL-padded (truncated at a character boundary).
    pub description: [u8; DESCRIPTION_LEN],
}

/// A borrowed UTF-8 string: valid only during the call it is passed to. `ptr` null = none.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// First byte, or null.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// A receiver of bytes owned by the caller: the callee calls `write` (any number of
/// times) and the caller appends.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrSink {
    /// Caller's state.
    pub ctx: *mut c_void,
    /// Appends `len` bytes at `ptr`.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
}

/// One log record forwarded from a plugin to the host.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LogRecord {
    /// `log::Level` as `usize` (1 = error … 5 = trace).
    pub level: u32,
    /// Line, 0 if unknown.
    pub line: u32,
    /// Target (module path by default).
    pub target: StrRef,
    /// Formatted message.
    pub message: StrRef,
    /// Source file, or null.
    pub file: StrRef,
}

/// What the host hands to every `create` call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostContext {
    /// `size_of::<HostContext>()`.
    pub size: u32,
    /// The host's `log::max_level()` as `usize` (0 = off … 5 = trace).
    pub max_level: u32,
    /// Forwards one record to the host's logger.
    pub log: unsafe extern "C" fn(record: *const LogRecord),
}

/// One read of a batch.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CReadOp {
    /// Address.
    pub addr: u64,
    /// Destination (null only when `len` is 0).
    pub buf: *mut u8,
    /// Length.
    pub len: usize,
}

/// One write of a batch.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CWriteOp {
    /// Address.
    pub addr: u64,
    /// Source (null only when `len` is 0).
    pub buf: *const u8,
    /// Length.
    pub len: usize,
}

/// A memory error, flattened: `code` selects the variant, the other fields its context.
/// See [`super::errcode`] for the codes and which fields each uses.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CError {
    /// Variant code.
    pub code: u32,
    /// Page-table level, where the variant has one.
    pub level: u32,
    /// First numeric field (an address).
    pub a: u64,
    /// Second numeric field.
    pub b: u64,
    /// Third numeric field.
    pub c: u64,
    /// First text field (or the whole message for `OTHER`).
    pub msg: StrRef,
    /// Second text field.
    pub msg2: StrRef,
}

/// Receives the failed operations of a batch (only failures are reported).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ErrReport {
    /// Caller's state.
    pub ctx: *mut c_void,
    /// Reports that op `index` failed with `err`. `total == 0`: the whole op failed;
    /// otherwise one failed span `[offset, offset+len)` of a partial op of `total` bytes
    /// (called once per span).
    pub report: unsafe extern "C" fn(
        ctx: *mut c_void,
        index: usize,
        err: *const CError,
        offset: usize,
        len: usize,
        total: usize,
    ),
}

/// Receives ranges.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RangeSink {
    /// Caller's state.
    pub ctx: *mut c_void,
    /// Appends one range.
    pub push: unsafe extern "C" fn(ctx: *mut c_void, base: u64, len: u64),
}

/// Memory metadata.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CMetadata {
    /// Highest address.
    pub max_addr: u64,
    /// Backed bytes.
    pub real_size: u64,
    /// Preferred batch length.
    pub preferred_batch: u64,
    /// Non-zero if read-only.
    pub readonly: u32,
    /// Padding.
    pub reserved: u32,
}

/// Functions of a memory object (physical or virtual: addresses are `u64` either way).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MemVtable {
    /// Releases the object.
    pub drop: unsafe extern "C" fn(this: *mut c_void),
    /// Reads a batch; reports failures. Returns OK or PANIC.
    pub read_batch: unsafe extern "C" fn(
        this: *const c_void,
        ops: *mut CReadOp,
        n: usize,
        report: ErrReport,
    ) -> i32,
    /// Writes a batch, or null when the object cannot write.
    pub write_batch: Option<
        unsafe extern "C" fn(
            this: *const c_void,
            ops: *const CWriteOp,
            n: usize,
            report: ErrReport,
        ) -> i32,
    >,
    /// Fills `out`. Returns OK or PANIC.
    pub metadata: unsafe extern "C" fn(this: *const c_void, out: *mut CMetadata) -> i32,
    /// Pushes the backed ranges. Returns OK or PANIC.
    pub ranges: unsafe extern "C" fn(this: *const c_void, out: RangeSink) -> i32,
    /// [`native_fingerprint`](super::native_fingerprint) of the exporter.
    pub native_fingerprint: u64,
    /// Fast path: reads a batch of the caller's *Rust* `ReadOp<A>` array in place. Only
    /// called when `native_fingerprint` equals the caller's own (same rustc, same core
    /// types), and only with every op's outcome `Ok`; failures are taken out of the ops in
    /// the callee and reported through `report`, so no heap value changes allocator.
    pub read_batch_native: Option<
        unsafe extern "C" fn(
            this: *const c_void,
            ops: *mut c_void,
            n: usize,
            report: ErrReport,
        ) -> i32,
    >,
}

/// An owned memory object. `this` null = absent.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MemObj {
    /// The callee's object.
    pub this: *mut c_void,
    /// Its functions.
    pub vt: MemVtable,
}

/// Functions of a CPU-state object.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CpuVtable {
    /// Releases the object.
    pub drop: unsafe extern "C" fn(this: *mut c_void),
    /// Number of vCPUs (0 after a caught panic).
    pub cpu_count: unsafe extern "C" fn(this: *const c_void) -> usize,
    /// Writes vCPU `cpu`'s registers as JSON (`CpuRegisters`) to `out`.
    pub registers:
        unsafe extern "C" fn(this: *const c_void, cpu: usize, out: StrSink, err: StrSink) -> i32,
}

/// An owned CPU-state object. `this` null = absent.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CpuObj {
    /// The callee's object.
    pub this: *mut c_void,
    /// Its functions.
    pub vt: CpuVtable,
}

/// An owned physical target: memory, optional writer, optional CPU state. Its
/// `TargetInfo` travels beside it as JSON (a sink when it comes out of a call, a
/// [`StrRef`] when it goes in).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PhysTargetObj {
    /// Physical memory (never absent).
    pub memory: MemObj,
    /// Writer (`this` null = read-only).
    pub writer: MemObj,
    /// CPU state (`this` null = none).
    pub cpu: CpuObj,
}

/// Functions of a process object. Listings are JSON (see the crate docs for the cost).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ProcVtable {
    /// Releases the object.
    pub drop: unsafe extern "C" fn(this: *mut c_void),
    /// `ProcessInfo` as JSON.
    pub info: unsafe extern "C" fn(this: *const c_void, out: StrSink, err: StrSink) -> i32,
    /// The process's virtual memory.
    pub memory: unsafe extern "C" fn(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32,
    /// A writer, or NONE.
    pub writer: unsafe extern "C" fn(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32,
    /// `Vec<MapInfo>` as JSON.
    pub maps: unsafe extern "C" fn(this: *const c_void, out: StrSink, err: StrSink) -> i32,
    /// `Vec<ModuleInfo>` as JSON.
    pub modules: unsafe extern "C" fn(this: *const c_void, out: StrSink, err: StrSink) -> i32,
    /// `ModuleDetails` as JSON for the `ModuleInfo` JSON in `module`.
    pub module_details: unsafe extern "C" fn(
        this: *const c_void,
        module: StrRef,
        out: StrSink,
        err: StrSink,
    ) -> i32,
}

/// An owned process object.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ProcObj {
    /// The callee's object.
    pub this: *mut c_void,
    /// Its functions.
    pub vt: ProcVtable,
}

/// Functions of an OS object.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OsVtable {
    /// Releases the object.
    pub drop: unsafe extern "C" fn(this: *mut c_void),
    /// `OsInfo` as JSON.
    pub info: unsafe extern "C" fn(this: *const c_void, out: StrSink, err: StrSink) -> i32,
    /// `Vec<ProcessInfo>` as JSON.
    pub processes: unsafe extern "C" fn(this: *const c_void, out: StrSink, err: StrSink) -> i32,
    /// Opens process `pid`.
    pub process:
        unsafe extern "C" fn(this: *const c_void, pid: u32, out: *mut ProcObj, err: StrSink) -> i32,
    /// `Vec<ModuleInfo>` as JSON.
    pub kernel_modules:
        unsafe extern "C" fn(this: *const c_void, out: StrSink, err: StrSink) -> i32,
    /// The kernel's virtual memory, or NONE.
    pub kernel_memory:
        unsafe extern "C" fn(this: *const c_void, out: *mut MemObj, err: StrSink) -> i32,
    /// The physical target under the OS, or NONE; its `TargetInfo` JSON goes to `info`.
    pub physical: unsafe extern "C" fn(
        this: *const c_void,
        out: *mut PhysTargetObj,
        info: StrSink,
        err: StrSink,
    ) -> i32,
}

/// An owned OS object.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OsObj {
    /// The callee's object.
    pub this: *mut c_void,
    /// Its functions.
    pub vt: OsVtable,
}

/// The signature of the `help` function of both descriptors.
pub type HelpFn = unsafe extern "C" fn(out: StrSink) -> i32;

/// The signature of the `targets` function of both descriptors: writes
/// `Vec<TargetListing>` as JSON for the argument section `args` to `out`.
pub type TargetsFn = unsafe extern "C" fn(args: StrRef, out: StrSink, err: StrSink) -> i32;

/// The exported descriptor of a connector (`MEMLENS_CONNECTOR_<NAME>`). `header`, `help`
/// and `targets` have the same offsets in both descriptors.
#[repr(C)]
#[derive(Debug)]
pub struct ConnectorDescriptor {
    /// Pointer-free header, readable from the file.
    pub header: PluginHeader,
    /// Writes the help text to `out`.
    pub help: HelpFn,
    /// Writes `Vec<TargetListing>` as JSON for the argument section `args` to `out`.
    pub targets: TargetsFn,
    /// Creates a connector. `input` (nullable) is an OS that the plugin takes ownership of
    /// in every case; on OK `out` holds the target and its `TargetInfo` JSON went to `info`.
    pub create: unsafe extern "C" fn(
        host: *const HostContext,
        target: StrRef,
        args: StrRef,
        input: *const OsObj,
        out: *mut PhysTargetObj,
        info: StrSink,
        err: StrSink,
    ) -> i32,
}

/// The exported descriptor of an OS plugin (`MEMLENS_OS_<NAME>`).
#[repr(C)]
#[derive(Debug)]
pub struct OsDescriptor {
    /// Pointer-free header, readable from the file.
    pub header: PluginHeader,
    /// Writes the help text to `out`.
    pub help: HelpFn,
    /// Writes `Vec<TargetListing>` as JSON for the argument section `args` to `out` (what
    /// the OS plugin can open now; an empty list for most).
    pub targets: TargetsFn,
    /// Creates an OS. `input` (nullable) is a physical target that the plugin takes
    /// ownership of in every case; `input_info` is its `TargetInfo` JSON.
    pub create: unsafe extern "C" fn(
        host: *const HostContext,
        target: StrRef,
        args: StrRef,
        input: *const PhysTargetObj,
        input_info: StrRef,
        out: *mut OsObj,
        err: StrSink,
    ) -> i32,
}

// SAFETY: descriptors are immutable statics; their function pointers are plain code
// addresses, safe to share between threads.
unsafe impl Sync for ConnectorDescriptor {}
// SAFETY: descriptors are immutable statics; their function pointers are plain code
// addresses, safe to share between threads.
unsafe impl Sync for OsDescriptor {}

//! Logging bridge. **Key decision: the host passes a log callback and its level filter in
//! every `create` call** ([`HostContext`]); a plugin loaded as a shared library has its own
//! copy of the `log` crate's globals, so it installs a forwarding [`log::Log`] that hands
//! each record to the host, where the host's logger and filter apply. Statically linked
//! plugins share the host's `log` globals and need nothing.

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::abi::{HostContext, LogRecord, StrRef};

/// Forwards records to the host's callback.
struct Forwarder {
    log: unsafe extern "C" fn(*const LogRecord),
}

impl Log for Forwarder {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        let rec = LogRecord {
            level: r.level() as u32,
            line: r.line().unwrap_or(0),
            target: StrRef::new(r.target()),
            message: StrRef::new(&msg),
            file: StrRef::opt(r.file()),
        };
        // SAFETY: the host's callback is valid for the life of the process (the host is
        // never unloaded) and `rec` lives for the call.
        unsafe { (self.log)(&rec) }
    }
    fn flush(&self) {}
}

/// Installs the forwarding logger (once per library) and applies the host's level.
pub fn install_forwarder(host: &HostContext) {
    if (host.size as usize) < std::mem::size_of::<HostContext>() {
        return;
    }
    let level = level_filter(host.max_level);
    // Fails harmlessly when a logger is already installed: in a statically linked plugin
    // that is the host's own logger, in a loaded one our forwarder from an earlier call.
    static FORWARDER: std::sync::OnceLock<Forwarder> = std::sync::OnceLock::new();
    let fwd = FORWARDER.get_or_init(|| Forwarder { log: host.log });
    let _ = log::set_logger(fwd);
    log::set_max_level(level);
}

fn level_filter(v: u32) -> LevelFilter {
    match v {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

fn level(v: u32) -> Level {
    match v {
        0 | 1 => Level::Error,
        2 => Level::Warn,
        3 => Level::Info,
        4 => Level::Debug,
        _ => Level::Trace,
    }
}

/// The host side: receives a plugin's record and logs it through the host's logger.
///
/// # Safety
/// `rec` must be null or valid for the call.
pub unsafe extern "C" fn host_log(rec: *const LogRecord) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: by the caller's guarantee.
        let Some(r) = (unsafe { rec.as_ref() }) else {
            return;
        };
        let lvl = level(r.level);
        if lvl > log::max_level() {
            return;
        }
        // SAFETY: strings valid for the call.
        let (target, msg, file) = unsafe { (r.target.get(), r.message.get(), r.file.get()) };
        let target = target.unwrap_or_default();
        log::logger().log(
            &Record::builder()
                .level(lvl)
                .target(&target)
                .file(file.as_deref())
                .line(Some(r.line).filter(|&l| l != 0))
                .args(format_args!("{}", msg.unwrap_or_default()))
                .build(),
        );
    });
}

/// The context the host passes to `create`: its log callback and current level.
pub fn host_context() -> HostContext {
    HostContext {
        size: std::mem::size_of::<HostContext>() as u32,
        max_level: log::max_level() as usize as u32,
        log: host_log,
    }
}

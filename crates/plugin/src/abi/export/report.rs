//! How outcomes cross the ABI. **Key decision: an `Error` is flattened into a `CError`
//! whose strings are only borrowed for the call**, so nothing is allocated across the
//! boundary and the importer rebuilds the same `Error` variant.

use memlens_core::Error;

use super::*;

/// Calls `f` with the flattened form of `e` (strings borrowed for the call).
pub(crate) fn with_cerror<R>(e: &Error, f: impl FnOnce(&CError) -> R) -> R {
    let mut c = CError {
        code: errcode::OTHER,
        level: 0,
        a: 0,
        b: 0,
        c: 0,
        msg: StrRef::NONE,
        msg2: StrRef::NONE,
    };
    let owned: (String, String);
    match e {
        Error::OutOfRange { addr, len, max } => {
            c.code = errcode::OUT_OF_RANGE;
            (c.a, c.b, c.c) = (addr.0, *len as u64, max.0);
        }
        Error::Gap { addr } => {
            c.code = errcode::GAP;
            c.a = addr.0;
        }
        Error::NotPresent { va, root, level } => {
            c.code = errcode::NOT_PRESENT;
            (c.a, c.b, c.level) = (va.0, root.0, u32::from(*level));
        }
        Error::BadEntry {
            va,
            root,
            level,
            entry,
            why,
        } => {
            c.code = errcode::BAD_ENTRY;
            (c.a, c.b, c.c, c.level) = (va.0, root.0, *entry, u32::from(*level));
            c.msg = StrRef::new(why);
        }
        Error::NonCanonical { va, arch } => {
            c.code = errcode::NON_CANONICAL;
            c.a = va.0;
            c.msg = StrRef::new(arch);
        }
        Error::Io {
            path,
            offset,
            source,
        } => {
            c.code = errcode::IO;
            c.a = *offset;
            owned = (path.display().to_string(), source.to_string());
            c.msg = StrRef::new(&owned.0);
            c.msg2 = StrRef::new(&owned.1);
            return f(&c);
        }
        Error::ReadOnly { what } => {
            c.code = errcode::READ_ONLY;
            c.msg = StrRef::new(what);
        }
        Error::Unsupported { what } => {
            c.code = errcode::UNSUPPORTED;
            c.msg = StrRef::new(what);
        }
        Error::Corrupt { location, what } => {
            c.code = errcode::CORRUPT;
            c.msg = StrRef::new(location);
            c.msg2 = StrRef::new(what);
        }
        Error::Limit { what, limit } => {
            c.code = errcode::LIMIT;
            c.msg = StrRef::new(what);
            c.a = *limit;
        }
        other => {
            owned = (other.to_string(), String::new());
            c.msg = StrRef::new(&owned.0);
            return f(&c);
        }
    }
    f(&c)
}

/// Reports the failed outcomes of `results` (one per op, in order).
pub(super) fn report_results<'r>(
    results: impl Iterator<Item = &'r Result<(), Error>>,
    report: ErrReport,
    first: usize,
) {
    for (i, r) in results.enumerate() {
        let i = first + i;
        match r {
            Ok(()) => {}
            Err(Error::Partial { total, failed }) => {
                for span in failed {
                    with_cerror(&span.cause, |c| {
                        // SAFETY: the report callback is valid for the call.
                        unsafe { (report.report)(report.ctx, i, c, span.offset, span.len, *total) }
                    });
                }
            }
            Err(e) => with_cerror(e, |c| {
                // SAFETY: the report callback is valid for the call (the caller's contract).
                unsafe { (report.report)(report.ctx, i, c, 0, 0, 0) }
            }),
        }
    }
}

/// Reports a panic message for the whole batch (index `usize::MAX`).
fn report_panic(report: ErrReport, msg: &str) {
    let c = CError {
        code: errcode::OTHER,
        level: 0,
        a: 0,
        b: 0,
        c: 0,
        msg: StrRef::new(msg),
        msg2: StrRef::NONE,
    };
    // SAFETY: the report callback is valid for the call.
    unsafe { (report.report)(report.ctx, usize::MAX, &c, 0, 0, 0) }
}

/// The status of a memory call: OK, or a panic reported through `report`.
pub(super) fn status(r: std::thread::Result<()>, report: ErrReport) -> i32 {
    match r {
        Ok(()) => STATUS_OK,
        Err(p) => {
            report_panic(report, &panic_message(&*p));
            STATUS_PANIC
        }
    }
}

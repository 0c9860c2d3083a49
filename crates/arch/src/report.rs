//! Listings for the CLI (`memlens translate`, `memlens pagemap`). **Key decision: every
//! listing is a serialisable value with a separate text renderer**, so `--json` and the
//! human table come from the same data and never drift apart.

use std::fmt::Write as _;

use memlens_core::{PageSize, PhysAddr, PhysicalMemory, VirtAddr};
use serde::{Deserialize, Serialize};

use crate::pagemap::PageMap;
use crate::types::{PageFlags, Translation};
use crate::view::VirtualView;
use crate::walker::unset;

/// One row of `memlens translate`: the translation, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranslateRow {
    /// The address asked for.
    pub va: VirtAddr,
    /// Its physical address.
    pub pa: Option<PhysAddr>,
    /// Size of the page that maps it.
    pub size: Option<PageSize>,
    /// Effective permissions.
    pub flags: Option<PageFlags>,
    /// Why the translation failed (with the level and entry).
    pub error: Option<String>,
}

impl From<Result<Translation, memlens_core::Error>> for TranslateRow {
    fn from(r: Result<Translation, memlens_core::Error>) -> Self {
        match r {
            Ok(t) => Self {
                va: t.va,
                pa: Some(t.pa),
                size: Some(t.size),
                flags: Some(t.flags),
                error: None,
            },
            Err(e) => Self {
                va: error_va(&e).unwrap_or_default(),
                pa: None,
                size: None,
                flags: None,
                error: Some(e.to_string()),
            },
        }
    }
}

fn error_va(e: &memlens_core::Error) -> Option<VirtAddr> {
    use memlens_core::Error as E;
    match e.root_cause() {
        E::NotPresent { va, .. } | E::BadEntry { va, .. } | E::NonCanonical { va, .. } => Some(*va),
        _ => None,
    }
}

/// Translates `vas` through `view` (one batch) into rows, in input order.
pub fn translate_rows<P: PhysicalMemory>(
    view: &VirtualView<P>,
    vas: &[VirtAddr],
) -> Vec<TranslateRow> {
    let mut out: Vec<_> = (0..vas.len()).map(|_| unset()).collect();
    view.translate_batch(vas, &mut out);
    out.into_iter()
        .zip(vas)
        .map(|(r, va)| {
            let mut row = TranslateRow::from(r);
            row.va = *va;
            row
        })
        .collect()
}

/// The rows as a text table.
pub fn render_translations(rows: &[TranslateRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<20} {:<20} {:>8}  FLAGS", "VA", "PA", "PAGE");
    for r in rows {
        match (&r.pa, &r.size, &r.flags, &r.error) {
            (Some(pa), Some(size), Some(flags), _) => {
                let _ = writeln!(
                    s,
                    "{:<20} {:<20} {:>8}  {}",
                    r.va.to_string(),
                    pa.to_string(),
                    size.to_string(),
                    flags
                );
            }
            (_, _, _, e) => {
                let _ = writeln!(
                    s,
                    "{:<20} error: {}",
                    r.va.to_string(),
                    e.as_deref().unwrap_or("unknown")
                );
            }
        }
    }
    s
}

/// A page map as a text table, with a summary line.
pub fn render_page_map(pm: &PageMap) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<20} {:<20} {:>12} {:<20} {:>8}  FLAGS",
        "START", "END", "SIZE", "PA", "PAGE"
    );
    for r in &pm.ranges {
        let _ = writeln!(
            s,
            "{:<20} {:<20} {:>12} {:<20} {:>8}  {}",
            r.va.to_string(),
            format!("{:#x}", r.end()),
            memlens_core::size::format_size(r.len),
            r.pa.to_string(),
            r.page_size.to_string(),
            r.flags
        );
    }
    let st = &pm.stats;
    let _ = writeln!(
        s,
        "{} ranges, {} pages, {} mapped, {} tables read{}{}{}",
        pm.ranges.len(),
        st.pages,
        memlens_core::size::format_size(st.mapped_bytes),
        st.tables_read,
        if st.tables_unreadable > 0 {
            format!(", {} unreadable tables", st.tables_unreadable)
        } else {
            String::new()
        },
        if st.loops_skipped > 0 {
            format!(", {} looping entries skipped", st.loops_skipped)
        } else {
            String::new()
        },
        if st.truncated {
            " (TRUNCATED: a limit was hit)"
        } else {
            ""
        }
    );
    s
}

//! `__ksymtab`: the exported-symbol table, a fallback for data symbols that kallsyms lacks
//! (kernels without `CONFIG_KALLSYMS_ALL`). **Key decision: find an entry from its name
//! string, not from section symbols** (which such kernels do not list): the name is
//! located in the image as `NAME\0` (the strings are tail-merged), then the one 4-aligned `i32` whose position plus
//! value equals the name's address is the entry's `name_offset`; the `value_offset` four
//! bytes before it gives the symbol (`struct kernel_symbol` with PREL32 relocations, as on
//! x86-64 and arm64). At most [`MAX_NAME_COPIES`] copies of the name are considered, each
//! searched at most 2 MiB below (one pass over the image in all).

/// Address of exported symbol `name`, given the image bytes `img` mapped at `img_va`.
pub fn lookup(img: &[u8], img_va: u64, name: &str) -> Option<u64> {
    // `__ksymtab_strings` is merged: a name may be the tail of a longer one, so only the
    // terminator is required after it.
    let mut needle = Vec::with_capacity(name.len() + 1);
    needle.extend_from_slice(name.as_bytes());
    needle.push(0);
    // Ascending (memmem order): one binary search per word.
    let targets: Vec<u64> = memchr::memmem::find_iter(img, &needle)
        .take(MAX_NAME_COPIES)
        .map(|p| img_va.wrapping_add(p as u64))
        .collect();
    if targets.is_empty() {
        return None;
    }
    // `__ksymtab` precedes `__ksymtab_strings` within the read-only data (15-30k exports
    // of 12 bytes, plus `__kcrctab`: < 1 MiB): only the words up to `MAX_BEFORE` below a
    // candidate name are searched, not the whole image.
    let mut spans: Vec<(usize, usize)> = targets
        .iter()
        .map(|t| {
            let t = t.wrapping_sub(img_va) as usize;
            (t.saturating_sub(MAX_BEFORE) & !3, t)
        })
        .collect();
    spans.sort_unstable();
    let mut q = 4usize;
    for (lo, hi) in spans {
        q = q.max(lo).max(4);
        while q < hi && q + 4 <= img.len() {
            let v = i32::from_le_bytes(img.get(q..q + 4)?.try_into().ok()?) as i64;
            let at = img_va.wrapping_add(q as u64);
            if v != 0
                && targets.binary_search(&at.wrapping_add(v as u64)).is_ok()
                && plausible(img, q)
            {
                let e = q - 4;
                let val = i32::from_le_bytes(img.get(e..e + 4)?.try_into().ok()?) as i64;
                return Some(img_va.wrapping_add(e as u64).wrapping_add(val as u64));
            }
            q += 4;
        }
    }
    None
}

/// Most copies of `NAME\0` in the image considered: a name is in `__ksymtab_strings`
/// once and as the tail of a few longer strings; 4096 bounds the candidate list of an
/// image filled with the name (which would otherwise be 24 bytes per 8 bytes of image).
pub const MAX_NAME_COPIES: usize = 4096;

/// How far below its name string an entry is searched.
const MAX_BEFORE: usize = 2 << 20;

/// A random word can point at the name by chance; a real entry sits in a table whose
/// neighbours (12 bytes before or after) also name NUL-preceded printable strings.
fn plausible(img: &[u8], q: usize) -> bool {
    let names_string = |nq: usize| -> bool {
        let Some(b) = img.get(nq..nq + 4) else {
            return false;
        };
        let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64;
        let target = (nq as i64).wrapping_add(v);
        let Ok(t) = usize::try_from(target) else {
            return false;
        };
        t > 0
            && img.get(t - 1) == Some(&0)
            && img
                .get(t..t + 2)
                .is_some_and(|s| s.iter().all(|c| c.is_ascii_graphic()))
    };
    (q >= 12 && names_string(q - 12)) || names_string(q + 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three PREL32 `kernel_symbol`s at 0x100 naming `foo`, `init_task` and `bar` (the
    /// middle one's value is 0x5000), the names at 0x1000, then `copies` decoy copies of
    /// `init_task\0` from 0x2000.
    fn image(copies: usize) -> Vec<u8> {
        let mut img = vec![0u8; 0x2000 + 10 * copies];
        let names = b"\0foo\0init_task\0bar\0";
        img[0x1000..0x1000 + names.len()].copy_from_slice(names);
        for (i, (name_at, value)) in [(0x1001i64, 0x4000i64), (0x1005, 0x5000), (0x100f, 0x6000)]
            .into_iter()
            .enumerate()
        {
            let e = 0x100 + 12 * i as i64;
            img[e as usize..][..4].copy_from_slice(&((value - e) as i32).to_le_bytes());
            img[e as usize + 4..][..4].copy_from_slice(&((name_at - e - 4) as i32).to_le_bytes());
        }
        for c in 0..copies {
            img[0x2000 + 10 * c..][..10].copy_from_slice(b"init_task\0");
        }
        img
    }

    /// An image stuffed with copies of the name: the candidates are capped (the real
    /// entry, before the copies, is still found) and a lookup of copies only ends.
    #[test]
    fn copies_of_a_name_are_capped() {
        assert_eq!(lookup(&image(0), 0, "init_task"), Some(0x5000));
        let stuffed = image(4 * MAX_NAME_COPIES);
        assert_eq!(lookup(&stuffed, 0, "init_task"), Some(0x5000));
        assert_eq!(lookup(&stuffed[0x2000..], 0, "init_task"), None);
    }
}

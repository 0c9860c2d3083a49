//! "Not found" errors. **Key decision: a miss always lists what is available**, with a
//! did-you-mean suggestion when a name is within a small edit distance.

use crate::error::Error;
use crate::traits::PluginKind;

/// A "not found" error with a did-you-mean suggestion.
pub fn not_found(kind: PluginKind, name: &str, available: &[String]) -> Error {
    let suggestion = available
        .iter()
        .map(|a| (edit_distance(name, a), a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min()
        .map(|(_, a)| format!(" (did you mean '{a}'?)"))
        .unwrap_or_default();
    Error::NotFound {
        kind: kind.as_str(),
        name: name.to_string(),
        suggestion,
        available: if available.is_empty() {
            "none (set MEMLENS_PLUGIN_PATH or see `memlens plugins list`)".into()
        } else {
            available.join(", ")
        },
    }
}

/// Levenshtein distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

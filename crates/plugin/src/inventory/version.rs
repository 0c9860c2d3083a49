//! Plugin version ordering. **Key decision: components compare numerically where both
//! are numbers** (`1.10.0` > `1.9.3`), as text otherwise, so that the highest version wins
//! among duplicates without requiring strict semver.

/// Compares versions numerically per dot-separated component (`1.10.0` > `1.9.3`);
/// non-numeric components compare as text.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let mut ia = a.split(['.', '-', '+']);
    let mut ib = b.split(['.', '-', '+']);
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    _ => x.cmp(y),
                };
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

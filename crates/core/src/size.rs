//! Sizes with units: parsing `4k`, `2MiB`, `1g`, `0x1000`, `65536` and printing the
//! shortest exact binary unit. Units are always binary (1k = 1024): memory is sized in
//! powers of two, and a size that silently meant 1000 would misalign pages.

use crate::error::ParseError;

/// Parses a size: decimal or `0x` hex, with an optional binary unit suffix
/// (`b`, `k`/`kb`/`kib`, `m`/`mb`/`mib`, `g`…, `t`…; case-insensitive).
pub fn parse_size(s: &str) -> Result<u64, ParseError> {
    let bad = || ParseError::Size {
        input: s.to_string(),
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("0x") {
        return crate::addr::parse_u64(&lower).map_err(|_| bad());
    }
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n = crate::addr::parse_u64(num).map_err(|_| bad())?;
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

/// Formats a byte count with the largest binary unit that divides it exactly
/// (`4096` → `4KiB`, `1536` → `1536B`): the output parses back to the same number.
pub fn format_size(n: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, name) in UNITS {
        if n != 0 && n.trailing_zeros() >= shift {
            return format!("{}{}", n >> shift, name);
        }
    }
    format!("{n}B")
}

/// Formats a byte count approximately for humans (`1.50 GiB`).
pub fn format_size_approx(n: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, name) in UNITS {
        if n >= 1u64 << shift {
            return format!("{:.2} {}", n as f64 / (1u64 << shift) as f64, name);
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("0x1000").unwrap(), 4096);
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("64 MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("7b").unwrap(), 7);
        for bad in [
            "",
            "k",
            "4q",
            "0xzz",
            "99999999999999999999",
            "16777216t",
            "-4k",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format() {
        assert_eq!(format_size(4096), "4KiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(3 << 30), "3GiB");
        assert_eq!(format_size_approx(3 << 29), "1.50 GiB");
    }
}

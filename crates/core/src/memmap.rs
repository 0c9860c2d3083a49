//! Memory maps: where each guest-physical range lives in the backing store (a file
//! offset, a host mapping offset). **Key decision: a map is validated once, at
//! construction** (sorted, no zero lengths, no overlaps, no address overflow), so lookups
//! can be a plain binary search and never meet an inconsistent state.
//!
//! Reads that touch a gap fail for the bytes they cover; [`MemoryMap::pieces`] yields the
//! backed and unbacked pieces of an access so a backend can do exactly that.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::addr::PhysAddr;
use crate::error::{Error, ParseError, Result};

/// One mapped range: guest-physical `[base, base+len)` is stored at `backing..backing+len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapEntry {
    /// First guest-physical address.
    pub base: PhysAddr,
    /// Length in bytes.
    pub len: u64,
    /// Offset of the first byte in the backing store.
    pub backing: u64,
}

/// A validated list of [`MapEntry`]s, sorted by `base`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryMap {
    #[serde(rename = "range")]
    entries: Vec<MapEntry>,
}

/// A piece of an access, as resolved by [`MemoryMap::pieces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Bytes `[buf_off, buf_off+len)` of the access are at `backing` in the store.
    Backed {
        /// Offset in the caller's buffer.
        buf_off: usize,
        /// Offset in the backing store.
        backing: u64,
        /// Length.
        len: usize,
    },
    /// Bytes `[buf_off, buf_off+len)` of the access (starting at `addr`) have no backing.
    Gap {
        /// Offset in the caller's buffer.
        buf_off: usize,
        /// First unbacked address.
        addr: PhysAddr,
        /// Length.
        len: usize,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    #[serde(rename = "range")]
    ranges: Vec<MapFileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFileEntry {
    base: TomlNum,
    #[serde(alias = "length", alias = "size")]
    len: TomlNum,
    #[serde(default, alias = "offset", alias = "real_base")]
    backing: Option<TomlNum>,
}

/// A number in a TOML map file: an integer or a string such as `"0x1000"` or `"2MiB"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TomlNum {
    Int(i64),
    Str(String),
}

impl TomlNum {
    fn value(&self) -> Result<u64> {
        match self {
            TomlNum::Int(i) => {
                u64::try_from(*i).map_err(|_| Error::MemoryMap(format!("negative number {i}")))
            }
            TomlNum::Str(s) => Ok(crate::size::parse_size(s)?),
        }
    }
}

impl MemoryMap {
    /// Builds a map from entries in any order; errors on zero lengths, overlaps (in guest
    /// addresses) and ranges that wrap past 2^64.
    pub fn new(mut entries: Vec<MapEntry>) -> Result<Self> {
        for e in &entries {
            if e.len == 0 {
                return Err(Error::MemoryMap(format!(
                    "range at {} has length 0",
                    e.base
                )));
            }
            // The backing end (`backing + len`, exclusive) must itself be representable:
            // `backing_end` is compared with file sizes before any access.
            if e.base.0.checked_add(e.len - 1).is_none() || e.backing.checked_add(e.len).is_none() {
                return Err(Error::MemoryMap(format!(
                    "range at {} with length {:#x} wraps past the end of the address space",
                    e.base, e.len
                )));
            }
        }
        entries.sort_by_key(|e| e.base);
        for w in entries.windows(2) {
            if w[0].base.0 + (w[0].len - 1) >= w[1].base.0 {
                return Err(Error::MemoryMap(format!(
                    "ranges overlap: {}+{:#x} and {}+{:#x}",
                    w[0].base, w[0].len, w[1].base, w[1].len
                )));
            }
        }
        Ok(Self { entries })
    }

    /// The identity map of one range `[0, len)` at backing offset 0.
    pub fn identity(len: u64) -> Result<Self> {
        Self::new(vec![MapEntry {
            base: PhysAddr(0),
            len,
            backing: 0,
        }])
    }

    /// The entries, sorted by base.
    pub fn entries(&self) -> &[MapEntry] {
        &self.entries
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Highest mapped address (inclusive), or `None` for an empty map.
    pub fn max_addr(&self) -> Option<PhysAddr> {
        self.entries
            .last()
            .map(|e| PhysAddr(e.base.0 + (e.len - 1)))
    }

    /// Sum of the lengths.
    pub fn real_size(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| e.len)
            .fold(0u64, u64::saturating_add)
    }

    /// Highest backing offset + 1 that any entry needs (saturating, so a check against
    /// a file size fails closed).
    pub fn backing_end(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| e.backing.saturating_add(e.len))
            .max()
            .unwrap_or(0)
    }

    /// Index of the entry holding `addr`.
    #[inline]
    pub fn find(&self, addr: PhysAddr) -> Option<usize> {
        let i = self.entries.partition_point(|e| e.base <= addr);
        let e = self.entries.get(i.checked_sub(1)?)?;
        (addr.0 - e.base.0 < e.len).then_some(i - 1)
    }

    /// Backing offset of `addr` when the whole `[addr, addr+len)` is in one entry: the
    /// fast path of every backend.
    #[inline]
    pub fn resolve_contiguous(&self, addr: PhysAddr, len: usize) -> Option<u64> {
        let e = &self.entries[self.find(addr)?];
        let off = addr.0 - e.base.0;
        (len as u64 <= e.len - off).then_some(e.backing + off)
    }

    /// Splits the access `[addr, addr+len)` into backed pieces and gaps, in order.
    pub fn pieces(&self, addr: PhysAddr, len: usize) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut off = 0usize;
        let mut idx = self
            .entries
            .partition_point(|e| e.base <= addr)
            .saturating_sub(1);
        while off < len {
            let a = addr.0.wrapping_add(off as u64);
            if off > 0 && a == 0 {
                // Wrapped past 2^64: the rest is a gap.
                out.push(Piece::Gap {
                    buf_off: off,
                    addr: PhysAddr(a),
                    len: len - off,
                });
                break;
            }
            while idx < self.entries.len()
                && self.entries[idx].base.0 + (self.entries[idx].len - 1) < a
            {
                idx += 1;
            }
            let rest = (len - off) as u64;
            match self.entries.get(idx) {
                Some(e) if e.base.0 <= a => {
                    let n = rest.min(e.len - (a - e.base.0)) as usize;
                    out.push(Piece::Backed {
                        buf_off: off,
                        backing: e.backing + (a - e.base.0),
                        len: n,
                    });
                    off += n;
                }
                Some(e) => {
                    let n = rest.min(e.base.0 - a) as usize;
                    out.push(Piece::Gap {
                        buf_off: off,
                        addr: PhysAddr(a),
                        len: n,
                    });
                    off += n;
                }
                None => {
                    out.push(Piece::Gap {
                        buf_off: off,
                        addr: PhysAddr(a),
                        len: len - off,
                    });
                    off = len;
                }
            }
        }
        out
    }

    /// Parses a TOML map: `[[range]]` tables with `base`, `len` (or `length`/`size`) and an
    /// optional `backing` (or `offset`; default: equal to `base`). Numbers may be integers
    /// or strings with hex and units (`"0x1000"`, `"2MiB"`).
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: MapFile = toml::from_str(text).map_err(|e| {
            // One line, with the place: `line 3: invalid table header, expected ...`.
            let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            let message = match e.span() {
                Some(span) => {
                    let line = 1 + text[..span.start.min(text.len())].matches('\n').count();
                    format!("line {line}: {message}")
                }
                None => message,
            };
            ParseError::Syntax {
                what: "memory map TOML".into(),
                message,
            }
        })?;
        let mut entries = Vec::with_capacity(file.ranges.len());
        for r in file.ranges {
            let base = PhysAddr(r.base.value()?);
            let backing = match r.backing {
                Some(b) => b.value()?,
                None => base.0,
            };
            entries.push(MapEntry {
                base,
                len: r.len.value()?,
                backing,
            });
        }
        Self::new(entries)
    }

    /// Loads a TOML map from a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, 0, e))?;
        Self::from_toml(&text).map_err(|e| e.context(format!("memory map {}", path.display())))
    }

    /// Writes the map to `path` as TOML ([`MemoryMap::to_toml`]); [`MemoryMap::load`] reads
    /// it back.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_toml()).map_err(|e| Error::io(path, 0, e))
    }

    /// Serialises to TOML with hex strings (`base = "0x100000"`).
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            s.push_str(&format!(
                "[[range]]\nbase = \"{:#x}\"\nlen = \"{:#x}\"\nbacking = \"{:#x}\"\n\n",
                e.base.0, e.len, e.backing
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(base: u64, len: u64, backing: u64) -> MapEntry {
        MapEntry {
            base: PhysAddr(base),
            len,
            backing,
        }
    }

    /// Regression: a backing range ending exactly at 2^64 was accepted, and
    /// `backing_end` wrapped to 0 in release builds, so the "map past the end of the file"
    /// check passed and reads went before the file's mapping.
    #[test]
    fn backing_that_ends_at_2_pow_64_is_refused() {
        let r = MemoryMap::new(vec![e(0, 0x1000, u64::MAX - 0xfff)]);
        assert!(matches!(r, Err(Error::MemoryMap(_))), "{r:?}");
        let m = MemoryMap::new(vec![e(0, 0x1000, u64::MAX - 0x1000)]).unwrap();
        assert_eq!(m.backing_end(), u64::MAX);
    }

    #[test]
    fn validation() {
        assert!(MemoryMap::new(vec![e(0, 0, 0)]).is_err());
        assert!(MemoryMap::new(vec![e(0, 0x2000, 0), e(0x1000, 0x1000, 0)]).is_err());
        assert!(MemoryMap::new(vec![e(u64::MAX, 2, 0)]).is_err());
        assert!(MemoryMap::new(vec![e(0x1000, 0x1000, 0), e(0, 0x1000, 0x1000)]).is_ok());
    }

    #[test]
    fn pieces_and_lookup() {
        let m = MemoryMap::new(vec![e(0x1000, 0x1000, 0), e(0x3000, 0x1000, 0x1000)]).unwrap();
        assert_eq!(m.find(PhysAddr(0xfff)), None);
        assert_eq!(m.find(PhysAddr(0x1fff)), Some(0));
        assert_eq!(m.find(PhysAddr(0x2000)), None);
        assert_eq!(m.resolve_contiguous(PhysAddr(0x3800), 0x800), Some(0x1800));
        assert_eq!(m.resolve_contiguous(PhysAddr(0x3800), 0x801), None);
        let p = m.pieces(PhysAddr(0x1ff0), 0x2020);
        assert_eq!(
            p,
            vec![
                Piece::Backed {
                    buf_off: 0,
                    backing: 0xff0,
                    len: 0x10
                },
                Piece::Gap {
                    buf_off: 0x10,
                    addr: PhysAddr(0x2000),
                    len: 0x1000
                },
                Piece::Backed {
                    buf_off: 0x1010,
                    backing: 0x1000,
                    len: 0x1000
                },
                Piece::Gap {
                    buf_off: 0x2010,
                    addr: PhysAddr(0x4000),
                    len: 0x10
                },
            ]
        );
    }

    #[test]
    fn toml_round_trip() {
        let m = MemoryMap::from_toml(
            "[[range]]\nbase = 0\nlen = \"640k\"\n\n[[range]]\nbase = \"0x100000\"\nsize = \"1MiB\"\noffset = \"0xa0000\"\n",
        )
        .unwrap();
        assert_eq!(m.entries()[1], e(0x100000, 1 << 20, 0xa0000));
        assert_eq!(MemoryMap::from_toml(&m.to_toml()).unwrap(), m);
        assert!(MemoryMap::from_toml("[[range]]\nbase = -1\nlen = 1").is_err());
        assert!(MemoryMap::from_toml("[[range]]\nbase = 0").is_err());
        assert!(MemoryMap::from_toml("garbage =").is_err());
    }

    #[test]
    fn save_and_load_round_trip_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("memlens-memmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = MemoryMap::new(vec![e(0, 0xa0000, 0), e(0x100000, 0x1000, 0xa0000)]).unwrap();
        let p = dir.join("map.toml");
        m.save(&p).unwrap();
        assert_eq!(MemoryMap::load(&p).unwrap(), m);
        std::fs::write(
            &p,
            "[[range]]\nbase = 0\nlen = \"8k\"\n[[range]]\nbase = \"0x1000\"\nlen = \"4k\"\n",
        )
        .unwrap();
        let msg = MemoryMap::load(&p).unwrap_err().to_string();
        assert!(msg.contains("map.toml") && msg.contains("overlap"), "{msg}");
        let msg = MemoryMap::load(&dir.join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing.toml"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

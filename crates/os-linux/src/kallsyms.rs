//! kallsyms: the kernel's own symbol table, found and decoded from raw bytes.
//! **Key decision: find the tables by structure, not by symbol.** The token table always
//! holds the single-character tokens `"0".."9"` back to back (`0\01\02\0…9\0`, a memchr
//! anchor), and is followed by the token index: 256 ascending `u16` offsets that must
//! equal the offsets of the 256 strings. From there everything else is located by its
//! shape, working for the 5.x/6.x orders of the tables:
//!
//! - `kallsyms_num_syms` (`N`) directly precedes `kallsyms_names` in every layout; the
//!   names are followed by `kallsyms_markers` (`ceil(N/256)` ascending `u32`, the first 0),
//!   then optionally `kallsyms_seqs_of_names` (`3N` bytes, 6.2+ and Debian's 6.1), then the
//!   token table. In the newer order (Debian's 6.12) the seqs follow `relative_base`. A backward scan from the token table tries each plausible `N` and keeps
//!   the one whose markers fit exactly.
//! - `kallsyms_offsets` (`N` × `i32`) and `kallsyms_relative_base` are either just before
//!   `num_syms` (≤ 6.x older order) or just after the token index (newer order); both
//!   places are tried and the one whose decoded addresses ascend wins. Absolute-percpu
//!   encoding (x86-64 SMP: negative offsets are relative, non-negative are absolute) is
//!   detected from the signs.
//!
//! The parser works on a byte window copied from memory (or a `vmlinux` file): positions
//! are window offsets, which the caller maps back to physical addresses. At most
//! [`crate::scan::MAX_CANDIDATES`] token tables of one window or file are decoded.

use std::collections::HashMap;

use crate::error::{LinuxError, Result};

/// The single-character tokens `"0".."9"`, always adjacent in the token table.
pub const DIGITS_ANCHOR: &[u8] = b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00";

/// Positions (window offsets) of the kallsyms tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    /// `kallsyms_token_table`.
    pub token_table: usize,
    /// `kallsyms_token_index`.
    pub token_index: usize,
    /// `kallsyms_num_syms`.
    pub num_syms_pos: usize,
    /// `kallsyms_names`.
    pub names: usize,
    /// `kallsyms_markers`.
    pub markers: usize,
    /// `kallsyms_seqs_of_names`, when present.
    pub seqs_of_names: Option<usize>,
    /// `kallsyms_offsets`.
    pub offsets: usize,
    /// `kallsyms_relative_base`.
    pub relative_base_pos: usize,
    /// Number of symbols.
    pub num_syms: usize,
    /// The value of `kallsyms_relative_base` (relocated, as in memory).
    pub relative_base: u64,
    /// Whether offsets use the absolute-percpu encoding.
    pub absolute_percpu: bool,
}

/// One symbol (owned; used to build a [`SymbolTable`] from other sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Name.
    pub name: String,
    /// Type letter as `nm` prints it (`T`, `t`, `D`, `d`, …).
    pub kind: char,
    /// Address.
    pub addr: u64,
}

/// One symbol of a table, borrowing its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolRef<'a> {
    /// Name.
    pub name: &'a str,
    /// Type letter.
    pub kind: char,
    /// Address.
    pub addr: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    name: u32,
    len: u32,
    kind: u8,
    addr: u64,
}

/// A symbol table with lookup by name. **All names live in one buffer and the index maps
/// a 64-bit FNV-1a hash of the name to the best entry** (a global symbol wins over a local
/// one of the same name). A table decoded from kallsyms with `kallsyms_seqs_of_names`
/// starts *lazy*: [`SymbolTable::get`] binary-searches the name-sorted order the kernel
/// itself uses, decoding ~17 names per lookup, and the full table is decoded only when
/// [`SymbolTable::iter`] (or `len`-independent listing) needs it.
#[derive(Debug, Clone, Default)]
pub struct SymbolTable {
    full: std::sync::OnceLock<FullTable>,
    lazy: Option<Box<Lazy>>,
}

#[derive(Debug, Clone, Default)]
struct FullTable {
    names: String,
    entries: Vec<Entry>,
    index: HashMap<u64, u32>,
}

/// Undecoded kallsyms: names, markers and seqs (rebased copies) plus the tokens.
#[derive(Debug, Clone)]
struct Lazy {
    names: Vec<u8>,
    markers: Vec<u32>,
    seqs: Vec<u8>,
    tokens: Vec<Vec<u8>>,
    addrs: Vec<u64>,
}

impl Lazy {
    /// Decodes symbol `idx` into `out` (type letter first).
    fn decode(&self, idx: usize, out: &mut Vec<u8>) -> Option<()> {
        let mut p = *self.markers.get(idx >> 8)? as usize;
        p = skip_names(&self.names, p, idx & 0xff)?;
        let (len, hdr) = entry_len(&self.names, p)?;
        out.clear();
        for &t in self.names.get(p + hdr..p + hdr + len)? {
            out.extend_from_slice(self.tokens.get(t as usize)?);
        }
        Some(())
    }

    fn seq(&self, i: usize) -> Option<usize> {
        let b = self.seqs.get(3 * i..3 * i + 3)?;
        Some((b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize)
    }

    fn get(&self, name: &str) -> Option<u64> {
        let key = name.as_bytes();
        let n = self.addrs.len();
        let mut buf = Vec::with_capacity(64);
        let name_at =
            |i: usize, buf: &mut Vec<u8>| -> Option<()> { self.decode(self.seq(i)?, buf) };
        // Lower bound of `key` in the name-sorted order (names without the type letter).
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            name_at(mid, &mut buf)?;
            if buf.get(1..).unwrap_or(&[]) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut best: Option<(u64, bool)> = None;
        let mut i = lo;
        while i < n {
            let idx = self.seq(i)?;
            self.decode(idx, &mut buf)?;
            if buf.get(1..).unwrap_or(&[]) != key {
                break;
            }
            let global = buf.first().is_some_and(|c| c.is_ascii_uppercase());
            if best.is_none() || (global && !best.is_some_and(|b| b.1)) {
                best = Some((*self.addrs.get(idx)?, global));
            }
            i += 1;
        }
        best.map(|b| b.0)
    }

    fn build(&self) -> FullTable {
        let mut b = SymbolTableBuilder::with_capacity(self.addrs.len());
        let mut p = 0usize;
        let mut buf = Vec::with_capacity(128);
        for &addr in &self.addrs {
            let Some((len, hdr)) = entry_len(&self.names, p) else {
                break;
            };
            let Some(body) = self.names.get(p + hdr..p + hdr + len) else {
                break;
            };
            buf.clear();
            for &t in body {
                if let Some(tok) = self.tokens.get(t as usize) {
                    buf.extend_from_slice(tok);
                }
            }
            p += hdr + len;
            b.push(
                buf.get(1..).unwrap_or(&[]),
                buf.first().copied().unwrap_or(b'?'),
                addr,
            );
        }
        b.t
    }
}

fn fnv(s: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in s {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl FullTable {
    fn sym(&self, e: &Entry) -> SymbolRef<'_> {
        SymbolRef {
            name: self
                .names
                .get(e.name as usize..(e.name + e.len) as usize)
                .unwrap_or(""),
            kind: e.kind as char,
            addr: e.addr,
        }
    }
}

impl SymbolTable {
    /// Builds a table from owned symbols.
    pub fn new(syms: Vec<Symbol>) -> Self {
        let mut b = SymbolTableBuilder::with_capacity(syms.len());
        for s in &syms {
            b.push(s.name.as_bytes(), s.kind as u8, s.addr);
        }
        b.finish()
    }

    fn full(&self) -> &FullTable {
        self.full.get_or_init(|| match &self.lazy {
            Some(l) => l.build(),
            None => FullTable::default(),
        })
    }

    /// Whether names are still undecoded (lookups binary-search kallsyms).
    pub fn is_lazy(&self) -> bool {
        self.lazy.is_some() && self.full.get().is_none()
    }

    /// All symbols, in table order (decodes every name on first use).
    pub fn iter(&self) -> impl Iterator<Item = SymbolRef<'_>> + '_ {
        let f = self.full();
        f.entries.iter().map(move |e| f.sym(e))
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        match (&self.lazy, self.full.get()) {
            (Some(l), None) => l.addrs.len(),
            _ => self.full().entries.len(),
        }
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Address of `name`, preferring a global (upper-case type) symbol when several share it.
    pub fn get(&self, name: &str) -> Option<u64> {
        if let (Some(l), None) = (&self.lazy, self.full.get()) {
            return l.get(name);
        }
        let f = self.full();
        let i = *f.index.get(&fnv(name.as_bytes()))?;
        let e = f.entries.get(i as usize)?;
        (f.sym(e).name == name).then_some(e.addr)
    }

    /// Every symbol named `name` (a linear scan).
    pub fn get_all(&self, name: &str) -> Vec<SymbolRef<'_>> {
        self.iter().filter(|s| s.name == name).collect()
    }
}

/// Incremental construction of a [`SymbolTable`].
#[derive(Debug, Default)]
pub struct SymbolTableBuilder {
    t: FullTable,
}

impl SymbolTableBuilder {
    /// A builder with room for `n` symbols.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            t: FullTable {
                names: String::with_capacity(n * 24),
                entries: Vec::with_capacity(n),
                index: HashMap::with_capacity(n),
            },
        }
    }

    /// Adds a symbol (invalid UTF-8 in the name is replaced).
    pub fn push(&mut self, name: &[u8], kind: u8, addr: u64) {
        let t = &mut self.t;
        let start = t.names.len() as u32;
        match std::str::from_utf8(name) {
            Ok(s) => t.names.push_str(s),
            Err(_) => t.names.push_str(&String::from_utf8_lossy(name)),
        }
        let len = t.names.len() as u32 - start;
        let idx = t.entries.len() as u32;
        t.entries.push(Entry {
            name: start,
            len,
            kind,
            addr,
        });
        let global = kind.is_ascii_uppercase();
        let key = fnv(t.names.as_bytes().get(start as usize..).unwrap_or(&[]));
        match t.index.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(idx);
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let old_global = t
                    .entries
                    .get(*o.get() as usize)
                    .is_some_and(|e| e.kind.is_ascii_uppercase());
                if global && !old_global {
                    o.insert(idx);
                }
            }
        }
    }

    /// The finished table.
    pub fn finish(self) -> SymbolTable {
        SymbolTable {
            full: std::sync::OnceLock::from(self.t),
            lazy: None,
        }
    }
}

fn rd_u16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn rd_u32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn rd_u64(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Validates a token table around an occurrence of [`DIGITS_ANCHOR`] at `hit` (token
/// `'0'` = 0x30); returns `(token_table, token_index)` positions. The table's start is
/// not found by walking back (the bytes before it may be anything, so the first token's
/// start is ambiguous) but from the index: walk forward over tokens 0x30..0xff to the end
/// of the table, the index follows (aligned), and its entry 0x30 is the anchor's offset.
pub fn token_table_at(w: &[u8], hit: usize) -> Option<(usize, usize)> {
    let mut p = hit;
    for _ in 0x30..256 {
        let n = memchr::memchr(0, w.get(p..(p + 65).min(w.len()))?)?;
        if n == 0 {
            return None;
        }
        p += n + 1;
    }
    for align in [8usize, 4, 2] {
        let idx = p.div_ceil(align) * align;
        let Some(off30) = rd_u16(w, idx + 2 * 0x30) else {
            continue;
        };
        let Some(start) = hit.checked_sub(off30 as usize) else {
            continue;
        };
        if check_index(w, start, idx) {
            return Some((start, idx));
        }
    }
    None
}

/// Checks that 256 non-empty strings start at `table`, end before `idx`, and that the
/// index at `idx` holds their offsets.
fn check_index(w: &[u8], table: usize, idx: usize) -> bool {
    let mut p = table;
    for i in 0..256 {
        if rd_u16(w, idx + 2 * i) != u16::try_from(p - table).ok() {
            return false;
        }
        let Some(n) = w
            .get(p..(p + 65).min(w.len()))
            .and_then(|s| memchr::memchr(0, s))
        else {
            return false;
        };
        if n == 0 {
            return false;
        }
        p += n + 1;
    }
    p <= idx && idx - p < 8
}

/// The first [`crate::scan::MAX_CANDIDATES`] valid token tables in `w`:
/// `(token_table, token_index)` positions.
pub fn find_token_tables(w: &[u8]) -> Vec<(usize, usize)> {
    memchr::memmem::find_iter(w, DIGITS_ANCHOR)
        .filter_map(|hit| token_table_at(w, hit))
        .take(crate::scan::MAX_CANDIDATES)
        .collect()
}

/// Decodes one name entry at `p`; returns (length in tokens, header bytes).
fn entry_len(w: &[u8], p: usize) -> Option<(usize, usize)> {
    let b0 = *w.get(p)? as usize;
    if b0 & 0x80 != 0 {
        let b1 = *w.get(p + 1)? as usize;
        Some(((b0 & 0x7f) | (b1 << 7), 2))
    } else {
        Some((b0, 1))
    }
}

/// Skips `count` name entries from `p`; returns the end position.
fn skip_names(w: &[u8], mut p: usize, count: usize) -> Option<usize> {
    for _ in 0..count {
        let (len, hdr) = entry_len(w, p)?;
        if len == 0 {
            return None;
        }
        p = p.checked_add(hdr + len)?;
        if p > w.len() {
            return None;
        }
    }
    Some(p)
}

/// Locates `num_syms`, names, markers and seqs before a token table.
fn find_names(w: &[u8], tt: usize) -> Option<Layout> {
    let lo = tt.saturating_sub(16 << 20);
    let mut p = tt.checked_sub(4)? & !3;
    while p > lo {
        let n = rd_u32(w, p)? as usize;
        if (256..4_000_000).contains(&n) {
            if let Some(l) = try_num_syms(w, tt, p, n) {
                return Some(l);
            }
        }
        p -= 4;
    }
    None
}

fn try_num_syms(w: &[u8], tt: usize, p: usize, n: usize) -> Option<Layout> {
    let m = n.div_ceil(256);
    let names_candidates = [p + 4, p + 8];
    for seqs in [true, false] {
        let seq_len = if seqs { 3 * n } else { 0 };
        for pad in 0..8usize {
            let Some(seq_start) = tt.checked_sub(pad + seq_len) else {
                continue;
            };
            for pad2 in 0..8usize {
                let Some(ms) = seq_start.checked_sub(pad2 + 4 * m) else {
                    continue;
                };
                if ms % 4 != 0 || ms <= p + 4 || rd_u32(w, ms)? != 0 {
                    continue;
                }
                // Markers ascend.
                let mut prev = 0u32;
                let mut ok = true;
                for k in 1..m {
                    let v = rd_u32(w, ms + 4 * k)?;
                    if v <= prev {
                        ok = false;
                        break;
                    }
                    prev = v;
                }
                if !ok {
                    continue;
                }
                for &names in &names_candidates {
                    if names >= ms || prev as usize >= ms - names {
                        continue;
                    }
                    // The first 256 names must end exactly at markers[1].
                    if m > 1 {
                        let m1 = rd_u32(w, ms + 4)? as usize;
                        if skip_names(w, names, 256) != Some(names + m1) {
                            continue;
                        }
                    }
                    // All names must end right before the markers (modulo alignment).
                    let Some(end) = skip_names(w, names, n) else {
                        continue;
                    };
                    if end > ms || ms - end >= 8 {
                        continue;
                    }
                    return Some(Layout {
                        token_table: tt,
                        num_syms_pos: p,
                        names,
                        markers: ms,
                        // Each table starts aligned after the previous one.
                        seqs_of_names: if seqs {
                            let me = ms + 4 * m;
                            [me.div_ceil(8) * 8, me.div_ceil(4) * 4, me]
                                .into_iter()
                                .find(|s| s + 3 * n <= tt && tt - (s + 3 * n) < 8)
                        } else {
                            None
                        },
                        num_syms: n,
                        ..Layout::default()
                    });
                }
            }
        }
    }
    None
}

/// Scores how well `n` offsets at `off` decode to ascending addresses with base `base`.
fn decode_addrs(w: &[u8], off: usize, n: usize, base: u64) -> Option<(Vec<u64>, bool, usize)> {
    let raw: Vec<i32> = (0..n)
        .map(|i| rd_u32(w, off + 4 * i).map(|v| v as i32))
        .collect::<Option<_>>()?;
    let negatives = raw.iter().filter(|v| **v < 0).count();
    let percpu = negatives > n / 2;
    let addrs: Vec<u64> = raw
        .iter()
        .map(|&o| {
            if percpu {
                if o >= 0 {
                    o as u64
                } else {
                    base.wrapping_sub(1).wrapping_sub(o as i64 as u64)
                }
            } else {
                base.wrapping_add(o as u32 as u64)
            }
        })
        .collect();
    let ascending = addrs.windows(2).filter(|p| p[0] <= p[1]).count();
    Some((addrs, percpu, ascending))
}

/// Finds and decodes the kallsyms tables given a token table found by
/// [`find_token_tables`]. `where_` names the window for error messages.
pub fn parse(
    w: &[u8],
    token_table: usize,
    token_index: usize,
    where_: &str,
) -> Result<(Layout, SymbolTable)> {
    let err = |what: &str| LinuxError::Kallsyms {
        location: where_.to_string(),
        what: what.to_string(),
    };
    let mut l = find_names(w, token_table)
        .ok_or_else(|| err("no kallsyms_num_syms/names/markers fit before the token table"))?;
    l.token_index = token_index;
    let n = l.num_syms;
    // Candidate (offsets, relative_base) placements.
    let mut cands = Vec::new();
    let rb_old = (l.num_syms_pos & !7).checked_sub(8);
    if let Some(rb) = rb_old {
        for extra in [0usize, 4] {
            if let Some(o) = rb.checked_sub(4 * n + extra) {
                cands.push((o, rb));
            }
        }
    }
    let after = (token_index + 512).div_ceil(8) * 8;
    let rb_new = (after + 4 * n).div_ceil(8) * 8;
    cands.push((after, rb_new));
    let mut best: Option<(usize, usize, Vec<u64>, bool, usize)> = None;
    for (o, rb) in cands {
        let Some(base) = rd_u64(w, rb) else { continue };
        if base >> 48 != 0xffff && base >> 32 != 0 {
            continue;
        }
        if let Some((addrs, percpu, score)) = decode_addrs(w, o, n, base) {
            if best.as_ref().is_none_or(|b| score > b.4) {
                best = Some((o, rb, addrs, percpu, score));
            }
        }
    }
    let (offsets, rb, addrs, percpu, score) =
        best.ok_or_else(|| err("kallsyms_offsets/relative_base not found around the tables"))?;
    if score + 1 < n.saturating_sub(n / 100) {
        return Err(err(&format!(
            "decoded addresses do not ascend ({score} of {n} in order)"
        )));
    }
    l.offsets = offsets;
    l.relative_base_pos = rb;
    l.relative_base = rd_u64(w, rb).unwrap_or(0);
    l.absolute_percpu = percpu;
    // Newer order (6.x): `kallsyms_seqs_of_names` follows `kallsyms_relative_base`; the
    // sortedness check below rejects a wrong guess.
    let guessed = l.seqs_of_names.is_none() && w.len() >= rb + 8 + 3 * n;
    if guessed {
        l.seqs_of_names = Some(rb + 8);
    }
    // Token strings.
    let mut tokens: Vec<&[u8]> = Vec::with_capacity(256);
    for i in 0..256 {
        let o = rd_u16(w, token_index + 2 * i).ok_or_else(|| err("token index truncated"))?;
        let s = w
            .get(token_table + o as usize..)
            .ok_or_else(|| err("token out of range"))?;
        let e = memchr::memchr(0, s).ok_or_else(|| err("unterminated token"))?;
        tokens.push(&s[..e]);
    }
    // Names, markers and seqs, rebased to the names' start.
    let m = n.div_ceil(256);
    let names_end = l.markers;
    let lazy = Lazy {
        names: w
            .get(l.names..names_end)
            .ok_or_else(|| err("names out of the window"))?
            .to_vec(),
        markers: (0..m)
            .map(|i| rd_u32(w, l.markers + 4 * i))
            .collect::<Option<_>>()
            .ok_or_else(|| err("markers truncated"))?,
        seqs: match l.seqs_of_names {
            Some(sq) => w
                .get(sq..sq + 3 * n)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            None => Vec::new(),
        },
        tokens: tokens.iter().map(|t| t.to_vec()).collect(),
        addrs,
    };
    // Use the kernel's name order only if it checks out (first < middle < last names).
    let mut sorted = lazy.seqs.len() == 3 * n && n > 2;
    if sorted {
        let mut prev: Option<Vec<u8>> = None;
        for i in [0, n / 2, n - 1] {
            let mut b = Vec::new();
            let ok = lazy.seq(i).and_then(|x| lazy.decode(x, &mut b)).is_some();
            let cur = b.get(1..).unwrap_or(&[]).to_vec();
            if !ok || prev.as_ref().is_some_and(|p| *p > cur) {
                sorted = false;
                break;
            }
            prev = Some(cur);
        }
    }
    if guessed && !sorted {
        l.seqs_of_names = None;
    }
    let st = if sorted {
        SymbolTable {
            full: std::sync::OnceLock::new(),
            lazy: Some(Box::new(lazy)),
        }
    } else {
        let full = lazy.build();
        if full.entries.len() != n {
            return Err(err("names truncated"));
        }
        SymbolTable {
            full: std::sync::OnceLock::from(full),
            lazy: None,
        }
    };
    Ok((l, st))
}

/// Finds the first valid kallsyms in `w` and decodes it, trying at most
/// [`crate::scan::MAX_CANDIDATES`] token tables (see [`crate::scan::parse_first`]).
pub fn find_and_parse(w: &[u8], where_: &str) -> Result<(Layout, SymbolTable)> {
    crate::scan::parse_first(w, where_)
}

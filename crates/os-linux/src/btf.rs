//! BTF (BPF Type Format) parser. **Key decision: index once, resolve by name on demand.**
//!
//! The kernel's BTF blob (`__start_BTF`..`__stop_BTF`, ~5 MB) is copied out of memory once
//! and indexed in one linear pass: for each type id, its kind, name and the position of its
//! kind-specific data. Struct/union names go into a hash map. Member lookups
//! ([`Btf::member`], [`Btf::offset_of`]) then walk the members of one struct, descending
//! into anonymous structs and unions, and chase typedef/const/volatile/restrict/type_tag.
//! Nothing is trusted: every read is bounds-checked and every chase is depth-limited, so a
//! garbage blob gives an error or `None`, never a panic or a loop.
//!
//! Caps (a hostile blob can describe cycles and exponential fan-out):
//! - a blob is at most [`MAX_BLOB`] bytes (the caller checks before copying it out);
//! - typedef chains and nested arrays are followed at most [`MAX_CHASE`] steps;
//! - a member lookup descends at most [`MAX_ANON_DEPTH`] anonymous levels, never into a
//!   struct already on its path, and reads at most [`MAX_MEMBER_VISITS`] member records.

use std::collections::HashMap;

use crate::error::{LinuxError, Result};

/// BTF magic (little-endian u16 at offset 0).
pub const BTF_MAGIC: u16 = 0xEB9F;

/// Largest BTF blob copied out of memory: vmlinux BTF is 3-8 MiB for distribution kernels
/// (every type of the kernel); 64 MiB is eight times that and bounds the copy of a blob
/// whose header claims more.
pub const MAX_BLOB: usize = 64 << 20;

/// Most typedef/qualifier links or nested array levels followed for one type: real
/// chains are a few links (`const volatile typedef …`), arrays a few dimensions; a cycle
/// (an array whose element is itself) ends here with `None`.
pub const MAX_CHASE: u32 = 32;

/// Deepest nesting of anonymous structs/unions searched by [`Btf::member`]: the kernel
/// nests them 3-4 deep (`task_struct` → `union` → `struct` …).
pub const MAX_ANON_DEPTH: u32 = 16;

/// Most member records read by one [`Btf::member`] lookup: `task_struct`, the largest
/// struct searched, has ~250 members with its anonymous ones; 10 000 is forty times that,
/// and bounds a blob whose anonymous members fan out (65 535 per struct, 16 levels deep).
pub const MAX_MEMBER_VISITS: usize = 10_000;

/// BTF type kinds (the numbers of `include/uapi/linux/btf.h`).
#[allow(
    missing_docs,
    reason = "names are those of the kernel's BTF_KIND_* constants"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Void,
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl Kind {
    fn from_u32(k: u32) -> Option<Kind> {
        Some(match k {
            0 => Kind::Void,
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }

    /// Bytes of kind-specific data following the 12-byte common header.
    fn extra(self, vlen: usize) -> usize {
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => 4,
            Kind::Array => 12,
            Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => 12 * vlen,
            Kind::Enum | Kind::FuncProto => 8 * vlen,
            _ => 0,
        }
    }
}

/// One indexed type.
#[derive(Debug, Clone, Copy)]
struct TypeEntry {
    kind: Kind,
    name_off: u32,
    vlen: u16,
    kind_flag: bool,
    /// `size` or `type` (the union in `struct btf_type`).
    size_or_type: u32,
    /// Offset of the kind-specific data in the type section.
    data: usize,
}

/// A member of a struct or union, with its offset from the start of the *outermost*
/// struct it was looked up in (anonymous members are flattened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Offset in bits.
    pub bit_offset: u64,
    /// Bitfield width in bits (0 = not a bitfield).
    pub bitfield_size: u32,
    /// Type id of the member.
    pub type_id: u32,
}

impl Member {
    /// Offset in bytes (rounded down for bitfields).
    pub fn offset(&self) -> u64 {
        self.bit_offset / 8
    }
}

/// A parsed BTF blob.
pub struct Btf {
    types_sec: Vec<u8>,
    strings: Vec<u8>,
    /// Index = type id - 1.
    types: Vec<TypeEntry>,
    by_name: HashMap<String, Vec<u32>>,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("types", &self.types.len())
            .field("strings", &self.strings.len())
            .finish()
    }
}

fn rd_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn bad(what: impl Into<String>) -> LinuxError {
    LinuxError::Btf { what: what.into() }
}

/// Parses the 24-byte header; returns `(hdr_len, type_off, type_len, str_off, str_len)`.
fn header(blob: &[u8]) -> Result<(usize, usize, usize, usize, usize)> {
    if blob.len() < 24 {
        return Err(bad(format!(
            "blob of {} bytes is shorter than a header",
            blob.len()
        )));
    }
    let magic = u16::from_le_bytes([blob[0], blob[1]]);
    if magic != BTF_MAGIC {
        return Err(bad(format!(
            "magic {magic:#06x}, expected {BTF_MAGIC:#06x}"
        )));
    }
    if blob[2] != 1 {
        return Err(bad(format!("version {}, expected 1", blob[2])));
    }
    let f = |o| rd_u32(blob, o).map(|v| v as usize).unwrap_or(0);
    Ok((f(4), f(8), f(12), f(16), f(20)))
}

/// The total length of a BTF blob starting at `blob[0]` (header + types + strings), if the
/// header is valid. Used to size the copy out of memory and by the scanner.
pub fn blob_len(blob: &[u8]) -> Option<usize> {
    let (hdr, toff, tlen, soff, slen) = header(blob).ok()?;
    if !(24..=256).contains(&hdr) {
        return None;
    }
    let end_t = hdr.checked_add(toff)?.checked_add(tlen)?;
    let end_s = hdr.checked_add(soff)?.checked_add(slen)?;
    Some(end_t.max(end_s))
}

impl Btf {
    /// Parses and indexes a BTF blob.
    pub fn parse(blob: &[u8]) -> Result<Btf> {
        let (hdr, toff, tlen, soff, slen) = header(blob)?;
        let sect = |off: usize, len: usize, what: &str| -> Result<&[u8]> {
            hdr.checked_add(off)
                .and_then(|s| Some((s, s.checked_add(len)?)))
                .and_then(|(s, e)| blob.get(s..e))
                .ok_or_else(|| {
                    bad(format!(
                        "{what} section {off:#x}+{len:#x} past the blob end {:#x}",
                        blob.len()
                    ))
                })
        };
        let types_sec = sect(toff, tlen, "type")?.to_vec();
        let strings = sect(soff, slen, "string")?.to_vec();
        let mut types = Vec::new();
        let mut pos = 0usize;
        while pos < types_sec.len() {
            let (Some(name_off), Some(info), Some(st)) = (
                rd_u32(&types_sec, pos),
                rd_u32(&types_sec, pos + 4),
                rd_u32(&types_sec, pos + 8),
            ) else {
                return Err(bad(format!(
                    "type {} truncated at {pos:#x}",
                    types.len() + 1
                )));
            };
            let kind = Kind::from_u32((info >> 24) & 0x1f).ok_or_else(|| {
                bad(format!(
                    "type {} at {pos:#x} has unknown kind {}",
                    types.len() + 1,
                    (info >> 24) & 0x1f
                ))
            })?;
            let vlen = (info & 0xffff) as u16;
            let data = pos + 12;
            let end = data + kind.extra(vlen as usize);
            if end > types_sec.len() {
                return Err(bad(format!(
                    "type {} ({kind:?}) at {pos:#x} runs past the type section",
                    types.len() + 1
                )));
            }
            types.push(TypeEntry {
                kind,
                name_off,
                vlen,
                kind_flag: info >> 31 != 0,
                size_or_type: st,
                data,
            });
            pos = end;
        }
        let mut btf = Btf {
            types_sec,
            strings,
            types,
            by_name: HashMap::new(),
        };
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, t) in btf.types.iter().enumerate() {
            if matches!(
                t.kind,
                Kind::Struct | Kind::Union | Kind::Typedef | Kind::Enum | Kind::Enum64 | Kind::Int
            ) && t.name_off != 0
            {
                if let Some(n) = btf.str_at(t.name_off) {
                    by_name.entry(n.to_string()).or_default().push(i as u32 + 1);
                }
            }
        }
        btf.by_name = by_name;
        Ok(btf)
    }

    /// Number of types (ids run from 1 to this).
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    fn str_at(&self, off: u32) -> Option<&str> {
        let s = self.strings.get(off as usize..)?;
        let end = memchr::memchr(0, s)?;
        std::str::from_utf8(&s[..end]).ok()
    }

    fn entry(&self, id: u32) -> Option<&TypeEntry> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// The kind of type `id` (`Void` for id 0).
    pub fn kind(&self, id: u32) -> Option<Kind> {
        if id == 0 {
            return Some(Kind::Void);
        }
        self.entry(id).map(|t| t.kind)
    }

    /// The name of type `id` (empty for anonymous types).
    pub fn name(&self, id: u32) -> Option<&str> {
        self.entry(id).and_then(|t| self.str_at(t.name_off))
    }

    /// The first struct (or union, if no struct) named `name`, with members (not a forward
    /// declaration).
    pub fn struct_id(&self, name: &str) -> Option<u32> {
        let ids = self.by_name.get(name)?;
        ids.iter()
            .copied()
            .find(|id| self.kind(*id) == Some(Kind::Struct))
            .or_else(|| {
                ids.iter()
                    .copied()
                    .find(|id| self.kind(*id) == Some(Kind::Union))
            })
    }

    /// Follows typedef / const / volatile / restrict / type_tag to the underlying type
    /// (at most [`MAX_CHASE`] links; a longer chain or a cycle stops on a qualifier).
    pub fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..MAX_CHASE {
            match self.entry(id) {
                Some(t)
                    if matches!(
                        t.kind,
                        Kind::Typedef
                            | Kind::Const
                            | Kind::Volatile
                            | Kind::Restrict
                            | Kind::TypeTag
                    ) =>
                {
                    id = t.size_or_type
                }
                _ => return id,
            }
        }
        id
    }

    /// Size in bytes of type `id` (pointers are 8 bytes; arrays multiply). `None` for
    /// a type without a size, an overflowing product, or more than [`MAX_CHASE`] nested
    /// arrays (an array that contains itself).
    pub fn size_of(&self, id: u32) -> Option<u64> {
        // Iterative: the element count of each array level multiplies the final size.
        let mut id = id;
        let mut count = 1u64;
        for _ in 0..MAX_CHASE {
            let rid = self.resolve(id);
            let t = self.entry(rid)?;
            let size = match t.kind {
                Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Float => t.size_or_type as u64,
                Kind::Ptr => 8,
                Kind::Array => {
                    let (elem, n) = self.array(rid)?;
                    count = count.checked_mul(n as u64)?;
                    id = elem;
                    continue;
                }
                _ => return None,
            };
            return size.checked_mul(count);
        }
        None
    }

    /// Element type and element count of array type `id` (after resolving).
    pub fn array(&self, id: u32) -> Option<(u32, u32)> {
        let t = self.entry(self.resolve(id))?;
        if t.kind != Kind::Array {
            return None;
        }
        Some((
            rd_u32(&self.types_sec, t.data)?,
            rd_u32(&self.types_sec, t.data + 8)?,
        ))
    }

    /// The target of pointer type `id` (after resolving).
    pub fn pointee(&self, id: u32) -> Option<u32> {
        let t = self.entry(self.resolve(id))?;
        (t.kind == Kind::Ptr).then_some(t.size_or_type)
    }

    /// The member records of struct/union `id` (after resolving): `(name offset, type,
    /// bit_offset, bitfield_size)`, read lazily (no allocation per struct).
    fn member_records(&self, id: u32) -> impl Iterator<Item = (u32, u32, u64, u32)> + '_ {
        let t = self
            .entry(self.resolve(id))
            .filter(|t| matches!(t.kind, Kind::Struct | Kind::Union));
        let (data, vlen, kind_flag) = t.map_or((0, 0, false), |t| (t.data, t.vlen, t.kind_flag));
        (0..vlen as usize).map_while(move |i| {
            let p = data + 12 * i;
            let n = rd_u32(&self.types_sec, p)?;
            let ty = rd_u32(&self.types_sec, p + 4)?;
            let off = rd_u32(&self.types_sec, p + 8)?;
            let (bits, size) = if kind_flag {
                ((off & 0x00ff_ffff) as u64, off >> 24)
            } else {
                (off as u64, 0)
            };
            Some((n, ty, bits, size))
        })
    }

    /// Raw members of struct/union `id`: `(name, type, bit_offset, bitfield_size)`.
    pub fn members(&self, id: u32) -> Vec<(&str, u32, u64, u32)> {
        self.member_records(id)
            .map(|(n, ty, bits, size)| (self.str_at(n).unwrap_or(""), ty, bits, size))
            .collect()
    }

    /// Member `name` of struct/union `id`, searching anonymous struct/union members too
    /// (named members of a level first, then its anonymous ones in order). The offset is
    /// relative to the start of `id`. Bounded: see [`MAX_ANON_DEPTH`] and
    /// [`MAX_MEMBER_VISITS`]; a struct already on the path is not entered again.
    pub fn member(&self, id: u32, name: &str) -> Option<Member> {
        let mut path = Vec::new();
        let mut budget = MAX_MEMBER_VISITS;
        let found = self.member_depth(id, name, &mut path, &mut budget);
        if found.is_none() && budget == 0 {
            log::warn!(
                "BTF: lookup of member `{name}` in type {id} stopped after {MAX_MEMBER_VISITS} member records"
            );
        }
        found
    }

    fn member_depth(
        &self,
        id: u32,
        name: &str,
        path: &mut Vec<u32>,
        budget: &mut usize,
    ) -> Option<Member> {
        let rid = self.resolve(id);
        if path.len() > MAX_ANON_DEPTH as usize || path.contains(&rid) {
            return None;
        }
        let mut anon = Vec::new();
        for (n, ty, bits, size) in self.member_records(rid) {
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
            let n = self.str_at(n).unwrap_or("");
            if n == name {
                return Some(Member {
                    bit_offset: bits,
                    bitfield_size: size,
                    type_id: ty,
                });
            }
            if n.is_empty() {
                anon.push((ty, bits));
            }
        }
        path.push(rid);
        let mut found = None;
        for (ty, bits) in anon {
            if *budget == 0 {
                break;
            }
            if let Some(mut m) = self.member_depth(ty, name, path, budget) {
                m.bit_offset = m.bit_offset.saturating_add(bits);
                found = Some(m);
                break;
            }
        }
        path.pop();
        found
    }

    /// Resolves `path` (`member.member…`, each step through embedded structs) inside
    /// struct/union `id`; the offset is relative to the start of `id`.
    pub fn member_path(&self, id: u32, path: &str) -> Option<Member> {
        let mut cur = id;
        let mut total = 0u64;
        let mut last = None;
        for part in path.split('.') {
            let m = self.member(cur, part)?;
            total = total.saturating_add(m.bit_offset);
            cur = self.resolve(m.type_id);
            last = Some(Member {
                bit_offset: total,
                ..m
            });
        }
        last
    }

    /// Byte offset of `path` inside struct `strukt`, as an error naming the missing piece.
    pub fn offset_of(&self, strukt: &str, path: &str) -> Result<u64> {
        let missing = || LinuxError::MissingField {
            path: format!("{strukt}.{path}"),
        };
        let id = self.struct_id(strukt).ok_or_else(missing)?;
        self.member_path(id, path)
            .map(|m| m.offset())
            .ok_or_else(missing)
    }

    /// Size of struct `strukt`.
    pub fn struct_size(&self, strukt: &str) -> Result<u64> {
        self.struct_id(strukt)
            .and_then(|id| self.size_of(id))
            .ok_or_else(|| LinuxError::MissingField {
                path: strukt.to_string(),
            })
    }

    /// Value of enumerator `name` in any enum.
    pub fn enum_value(&self, name: &str) -> Option<i64> {
        for t in &self.types {
            match t.kind {
                Kind::Enum => {
                    for i in 0..t.vlen as usize {
                        let p = t.data + 8 * i;
                        if self.str_at(rd_u32(&self.types_sec, p)?) == Some(name) {
                            let v = rd_u32(&self.types_sec, p + 4)?;
                            // kind_flag set: signed values.
                            return Some(if t.kind_flag {
                                v as i32 as i64
                            } else {
                                v as i64
                            });
                        }
                    }
                }
                Kind::Enum64 => {
                    for i in 0..t.vlen as usize {
                        let p = t.data + 12 * i;
                        if self.str_at(rd_u32(&self.types_sec, p)?) == Some(name) {
                            let lo = rd_u32(&self.types_sec, p + 4)? as u64;
                            let hi = rd_u32(&self.types_sec, p + 8)? as u64;
                            return Some((hi << 32 | lo) as i64);
                        }
                    }
                }
                _ => {}
            }
        }
        None
    }
}

//! Test-only page-table builder, reference walker and in-memory physical memory.
//!
//! Written independently of the crate: raw `u64` entries, its own bit constants and its
//! own per-format level tables (hard-coded, not derived from `Mmu`), so a mistake in the
//! crate's descriptions is not copied here.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::atomic::{AtomicUsize, Ordering};

use memlens_core::{Error, MemoryMetadata, MemoryView, PhysAddr, ReadOp};

/// Physical memory backed by a vector; counts `read_batch` calls and ops.
pub struct Phys {
    pub data: Vec<u8>,
    pub calls: AtomicUsize,
    pub ops: AtomicUsize,
}

impl Phys {
    pub fn new(data: Vec<u8>) -> Self {
        Self {
            data,
            calls: AtomicUsize::new(0),
            ops: AtomicUsize::new(0),
        }
    }
    pub fn reset_counts(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.ops.store(0, Ordering::Relaxed);
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
    pub fn u64_at(&self, pa: u64) -> Option<u64> {
        let s = usize::try_from(pa).ok()?;
        let b = self.data.get(s..s.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
    pub fn u32_at(&self, pa: u64) -> Option<u64> {
        let s = usize::try_from(pa).ok()?;
        let b = self.data.get(s..s.checked_add(4)?)?;
        Some(u64::from(u32::from_le_bytes(b.try_into().ok()?)))
    }
}

impl MemoryView for Phys {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.ops.fetch_add(ops.len(), Ordering::Relaxed);
        let size = self.data.len() as u64;
        for op in ops {
            let a = op.addr.0;
            let len = op.buf.len() as u64;
            match a.checked_add(len) {
                Some(end) if end <= size => {
                    op.buf.copy_from_slice(&self.data[a as usize..end as usize]);
                    op.result = Ok(());
                }
                _ => {
                    op.result = Err(Error::OutOfRange {
                        addr: op.addr,
                        len: op.buf.len(),
                        max: PhysAddr(size.saturating_sub(1)),
                    })
                }
            }
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(self.data.len().saturating_sub(1) as u64),
            real_size: self.data.len() as u64,
            readonly: true,
            preferred_batch: 64,
        }
    }
}

/// Page-table formats, described by the builder's own constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    X86,
    Pae,
    X64,
    X64La57,
    /// aarch64 with granule shift and VA bits.
    A64 {
        g: u32,
        va: u32,
    },
}

/// (shift, index bits, may be a block/large page) per level, top first.
pub fn geometry(f: Fmt) -> Vec<(u32, u32, bool)> {
    match f {
        Fmt::X86 => vec![(22, 10, true), (12, 10, false)],
        Fmt::Pae => vec![(30, 2, false), (21, 9, true), (12, 9, false)],
        Fmt::X64 => vec![(39, 9, false), (30, 9, true), (21, 9, true), (12, 9, false)],
        Fmt::X64La57 => vec![
            (48, 9, false),
            (39, 9, false),
            (30, 9, true),
            (21, 9, true),
            (12, 9, false),
        ],
        Fmt::A64 { g: 12, va: 48 } => {
            vec![(39, 9, false), (30, 9, true), (21, 9, true), (12, 9, false)]
        }
        Fmt::A64 { g: 12, va: 39 } => vec![(30, 9, true), (21, 9, true), (12, 9, false)],
        Fmt::A64 { g: 14, va: 48 } => {
            vec![
                (47, 1, false),
                (36, 11, false),
                (25, 11, true),
                (14, 11, false),
            ]
        }
        Fmt::A64 { g: 16, va: 48 } => vec![(42, 6, false), (29, 13, true), (16, 13, false)],
        Fmt::A64 { g: 16, va: 52 } => vec![(42, 10, false), (29, 13, true), (16, 13, false)],
        // FEAT_LPA2: a level above the 48-bit top, and blocks one level higher.
        Fmt::A64 { g: 12, va: 52 } => vec![
            (48, 4, false),
            (39, 9, true),
            (30, 9, true),
            (21, 9, true),
            (12, 9, false),
        ],
        Fmt::A64 { g: 14, va: 52 } => vec![
            (47, 5, false),
            (36, 11, true),
            (25, 11, true),
            (14, 11, false),
        ],
        other => panic!("no geometry for {other:?}"),
    }
}

pub fn arch_name(f: Fmt) -> &'static str {
    match f {
        Fmt::X86 => "x86",
        Fmt::Pae => "x86-pae",
        Fmt::X64 => "x86_64",
        Fmt::X64La57 => "x86_64-la57",
        Fmt::A64 { g: 12, va: 48 } => "aarch64",
        Fmt::A64 { g: 12, va: 52 } => "aarch64-52",
        Fmt::A64 { g: 14, va: 52 } => "aarch64-16k-52",
        Fmt::A64 { g: 14, .. } => "aarch64-16k",
        Fmt::A64 { g: 16, va: 48 } => "aarch64-64k",
        Fmt::A64 { g: 16, va: 52 } => "aarch64-64k-52",
        Fmt::A64 { .. } => "aarch64-custom",
    }
}

pub fn entry_bytes(f: Fmt) -> u64 {
    if f == Fmt::X86 {
        4
    } else {
        8
    }
}

pub fn granule(f: Fmt) -> u64 {
    match f {
        Fmt::A64 { g, .. } => 1 << g,
        _ => 4096,
    }
}

pub fn va_bits(f: Fmt) -> u32 {
    match f {
        Fmt::X86 | Fmt::Pae => 32,
        Fmt::X64 => 48,
        Fmt::X64La57 => 57,
        Fmt::A64 { va, .. } => va,
    }
}

// x86 bits.
const P: u64 = 1;
const RW: u64 = 2;
const US: u64 = 4;
const PS: u64 = 0x80;
const XD: u64 = 1 << 63;
// aarch64 bits.
const VALID: u64 = 1;
const TABLE: u64 = 2;
const AF: u64 = 1 << 10;
const AP_EL0: u64 = 1 << 6;
const AP_RO: u64 = 1 << 7;
const DBM: u64 = 1 << 51;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

/// Permissions of a mapping, the builder's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm {
    pub w: bool,
    pub u: bool,
    pub nx: bool,
}

/// One mapping the builder made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub va: u64,
    pub pa: u64,
    pub size: u64,
    pub perm: Perm,
}

/// Builds page tables in a growing vector. Tables are allocated from `table_base` up.
pub struct Builder {
    pub fmt: Fmt,
    pub mem: Vec<u8>,
    pub next: u64,
    pub root_lo: u64,
    pub root_hi: u64,
    pub maps: Vec<Mapping>,
}

impl Builder {
    pub fn new(fmt: Fmt, table_base: u64) -> Self {
        let mut b = Self {
            fmt,
            mem: Vec::new(),
            next: table_base,
            root_lo: 0,
            root_hi: 0,
            maps: Vec::new(),
        };
        b.root_lo = b.alloc_table(0);
        b.root_hi = if matches!(fmt, Fmt::A64 { .. }) {
            b.alloc_table(0)
        } else {
            b.root_lo
        };
        b
    }

    fn table_bytes(&self, level: usize) -> u64 {
        (1u64 << geometry(self.fmt)[level].1) * entry_bytes(self.fmt)
    }

    fn alloc_table(&mut self, level: usize) -> u64 {
        let g = granule(self.fmt).max(self.table_bytes(level));
        let align = if self.fmt == Fmt::Pae && level == 0 {
            32
        } else {
            g
        };
        let at = self.next.div_ceil(align) * align;
        let size = self.table_bytes(level);
        self.next = at
            + size.max(if level == 0 && self.fmt == Fmt::Pae {
                32
            } else {
                g
            });
        if self.mem.len() < self.next as usize {
            self.mem.resize(self.next as usize, 0);
        }
        at
    }

    pub fn read(&self, pa: u64) -> u64 {
        let p = pa as usize;
        if entry_bytes(self.fmt) == 4 {
            u64::from(u32::from_le_bytes(self.mem[p..p + 4].try_into().unwrap()))
        } else {
            u64::from_le_bytes(self.mem[p..p + 8].try_into().unwrap())
        }
    }

    pub fn write(&mut self, pa: u64, v: u64) {
        let p = pa as usize;
        if entry_bytes(self.fmt) == 4 {
            self.mem[p..p + 4].copy_from_slice(&(v as u32).to_le_bytes());
        } else {
            self.mem[p..p + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    fn is_a64(&self) -> bool {
        matches!(self.fmt, Fmt::A64 { .. })
    }

    fn table_entry(&self, level: usize, next: u64) -> u64 {
        if self.is_a64() {
            a64_high_pa(self.fmt, next | VALID | TABLE, next)
        } else if self.fmt == Fmt::Pae && level == 0 {
            next | P
        } else {
            next | P | RW | US
        }
    }

    fn leaf_entry(&self, last: bool, pa: u64, perm: Perm) -> u64 {
        if self.is_a64() {
            let mut e = pa | VALID | AF;
            if last {
                e |= TABLE;
            }
            if !perm.w {
                e |= AP_RO;
            }
            if perm.u {
                e |= AP_EL0;
                e |= PXN; // Linux: user pages never kernel-executable
                if perm.nx {
                    e |= UXN;
                }
            } else if perm.nx {
                e |= PXN | UXN;
            } else {
                e |= UXN;
            }
            e = a64_high_pa(self.fmt, e, pa);
            e
        } else {
            let mut e = pa | P;
            if self.fmt == Fmt::X86 && !last {
                // PSE-36: PA[39:32] in bits 20:13.
                e = (pa & 0xffc0_0000) | (((pa >> 32) & 0xff) << 13) | P;
            }
            if perm.w {
                e |= RW;
            }
            if perm.u {
                e |= US;
            }
            if !last {
                e |= PS;
            }
            if perm.nx && self.fmt != Fmt::X86 {
                e |= XD;
            }
            e
        }
    }

    /// Maps `[va, va+size)` to `pa` with a page of `size` (must be a valid page size of the
    /// format and aligned). Returns false (and maps nothing) when it would conflict with
    /// an existing mapping or table.
    pub fn map(&mut self, va: u64, pa: u64, size: u64, mut perm: Perm) -> bool {
        if self.fmt == Fmt::X86 {
            perm.nx = false; // no NX without PAE
        }
        let geo = geometry(self.fmt);
        let upper = va >> 63 != 0 && self.fmt != Fmt::X86 && self.fmt != Fmt::Pae;
        let mut table = if upper && self.is_a64() {
            self.root_hi
        } else {
            self.root_lo
        };
        for (li, &(shift, bits, large)) in geo.iter().enumerate() {
            let last = li + 1 == geo.len();
            let idx = (va >> shift) & ((1u64 << bits) - 1);
            let at = table + idx * entry_bytes(self.fmt);
            let span = 1u64 << shift;
            let e = self.read(at);
            if span == size {
                if !(last || large) || e & 1 != 0 {
                    return false;
                }
                let leaf = self.leaf_entry(last, pa, perm);
                self.write(at, leaf);
                self.maps.push(Mapping { va, pa, size, perm });
                return true;
            }
            if last {
                return false;
            }
            if e & 1 == 0 {
                let t = self.alloc_table(li + 1);
                let te = self.table_entry(li, t);
                self.write(at, te);
                table = t;
            } else {
                let is_table = if self.is_a64() {
                    e & TABLE != 0
                } else {
                    e & PS == 0 || (self.fmt == Fmt::Pae && li == 0)
                };
                if !is_table {
                    return false;
                }
                table = self.table_addr(e);
            }
        }
        false
    }

    pub fn table_addr(&self, e: u64) -> u64 {
        match self.fmt {
            Fmt::X86 => e & 0xffff_f000,
            Fmt::A64 { g, va } => a64_out_addr(g, va, e) & !((1u64 << g) - 1),
            _ => e & 0x000f_ffff_ffff_f000,
        }
    }

    /// The mapped address with the builder's canonical form.
    pub fn canon(&self, va: u64) -> u64 {
        va
    }

    pub fn phys(&self) -> Phys {
        Phys::new(self.mem.clone())
    }
}

/// Puts the bits of `pa` above the descriptor's address field where the format keeps
/// them: PA[51:48] in bits 15:12 (64 KiB, 52-bit), PA[51:50] in bits 9:8 (LPA2).
fn a64_high_pa(f: Fmt, e: u64, pa: u64) -> u64 {
    match f {
        Fmt::A64 { g: 16, va: 52 } => (e & !(0xfu64 << 48)) | (((pa >> 48) & 0xf) << 12),
        Fmt::A64 { va: 52, .. } => (e & !(0x3u64 << 50)) | (((pa >> 50) & 0x3) << 8),
        _ => e,
    }
}

/// The output address a descriptor holds (before clearing the offset bits).
fn a64_out_addr(g: u32, va: u32, e: u64) -> u64 {
    match (g, va) {
        (16, 52) => (e & 0x0000_ffff_ffff_ffff) | (((e >> 12) & 0xf) << 48),
        (_, 52) => (e & 0x0003_ffff_ffff_ffff) | (((e >> 8) & 0x3) << 50),
        _ => e & 0x0000_ffff_ffff_ffff,
    }
}

/// Reference outcome of translating one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefOut {
    Ok {
        pa: u64,
        size: u64,
        perm: Perm,
    },
    NotPresent {
        level: u8,
    },
    Bad {
        level: u8,
    },
    NonCanonical,
    /// A table (or the root) could not be read; `level` is the level of the entry that
    /// pointed there (0 for the root).
    Unreadable {
        level: u8,
    },
}

/// Naive one-address walker, reading entries one at a time from `phys`.
pub fn ref_translate(f: Fmt, phys: &Phys, root_lo: u64, root_hi: u64, va: u64) -> RefOut {
    let geo = geometry(f);
    let vb = va_bits(f);
    let a64 = matches!(f, Fmt::A64 { .. });
    // Canonical form.
    let upper = match f {
        Fmt::X86 | Fmt::Pae => {
            if va >> 32 != 0 {
                return RefOut::NonCanonical;
            }
            false
        }
        Fmt::X64 | Fmt::X64La57 => {
            let top = va >> (vb - 1);
            if top != 0 && top != (u64::MAX >> (vb - 1)) {
                return RefOut::NonCanonical;
            }
            top != 0
        }
        Fmt::A64 { .. } => {
            let top = va >> vb;
            if top != 0 && top != (u64::MAX >> vb) {
                return RefOut::NonCanonical;
            }
            top != 0
        }
    };
    let eb = entry_bytes(f);
    let raw_root = if a64 && upper { root_hi } else { root_lo };
    let top_bytes = (1u64 << geo[0].1) * eb;
    let mut table = match f {
        Fmt::X86 => raw_root & 0xffff_f000,
        Fmt::Pae => raw_root & 0xffff_ffe0,
        Fmt::A64 { va: 52, .. } => {
            (raw_root & 0x0000_ffff_ffff_fffe & !(top_bytes - 1)) | ((raw_root >> 2) & 0xf) << 48
        }
        Fmt::A64 { .. } => raw_root & 0x0000_ffff_ffff_fffe & !(top_bytes - 1),
        _ => raw_root & 0x000f_ffff_ffff_f000,
    };
    let (mut ro, mut kern, mut nxu, mut nxk) = (false, false, false, false);
    let nlev = geo.len();
    for (li, &(shift, bits, large)) in geo.iter().enumerate() {
        let level = (nlev - li) as u8;
        let last = li + 1 == nlev;
        let idx = (va >> shift) & ((1u64 << bits) - 1);
        let at = table.wrapping_add(idx * eb);
        let e = if eb == 4 {
            phys.u32_at(at)
        } else {
            phys.u64_at(at)
        };
        let Some(e) = e else {
            return RefOut::Unreadable {
                level: if li == 0 { 0 } else { level + 1 },
            };
        };
        if e & 1 == 0 {
            return RefOut::NotPresent { level };
        }
        let perms_here = !(f == Fmt::Pae && li == 0);
        let is_leaf;
        if a64 {
            if last {
                if e & TABLE == 0 {
                    return RefOut::Bad { level };
                }
                is_leaf = true;
            } else if e & TABLE == 0 {
                if !large {
                    return RefOut::Bad { level };
                }
                is_leaf = true;
            } else {
                is_leaf = false;
            }
        } else if last {
            is_leaf = true;
        } else if e & PS != 0 {
            if !large {
                return RefOut::Bad { level };
            }
            is_leaf = true;
        } else {
            is_leaf = false;
        }
        if perms_here {
            if a64 {
                if is_leaf {
                    ro |= e & AP_RO != 0 && e & DBM == 0;
                    kern |= e & AP_EL0 == 0;
                    nxu |= e & UXN != 0;
                    nxk |= e & PXN != 0;
                } else {
                    ro |= e & (1 << 62) != 0;
                    kern |= e & (1 << 61) != 0;
                    nxu |= e & (1 << 60) != 0;
                    nxk |= e & (1 << 59) != 0;
                }
            } else {
                ro |= e & RW == 0;
                kern |= e & US == 0;
                if f != Fmt::X86 {
                    nxu |= e & XD != 0;
                    nxk |= e & XD != 0;
                }
            }
        }
        if is_leaf {
            let size = 1u64 << shift;
            let base = match f {
                Fmt::X86 => {
                    if last {
                        e & 0xffff_f000
                    } else {
                        (e & 0xffc0_0000) | (((e >> 13) & 0xff) << 32)
                    }
                }
                Fmt::A64 { g, va: vbits } => {
                    a64_out_addr(g, vbits, e) & !(size - 1) & !((1u64 << g) - 1)
                }
                _ => e & 0x000f_ffff_ffff_f000 & !(size - 1),
            };
            let user = !kern;
            return RefOut::Ok {
                pa: base | (va & (size - 1)),
                size,
                perm: Perm {
                    w: !ro,
                    u: user,
                    nx: if user { nxu } else { nxk },
                },
            };
        }
        table = match f {
            Fmt::X86 => e & 0xffff_f000,
            Fmt::A64 { g, va: vbits } => a64_out_addr(g, vbits, e) & !((1u64 << g) - 1),
            _ => e & 0x000f_ffff_ffff_f000,
        };
    }
    unreachable!("the loop returns at the last level")
}

/// Compares a crate outcome with the reference; returns a description of the mismatch.
pub fn compare(got: &Result<memlens_arch::Translation, Error>, want: RefOut) -> Result<(), String> {
    match (got, want) {
        (Ok(t), RefOut::Ok { pa, size, perm }) => {
            let ok = t.pa.0 == pa
                && t.size.bytes() == size
                && t.flags.writable == perm.w
                && t.flags.user == perm.u
                && t.flags.nx == perm.nx;
            if ok {
                Ok(())
            } else {
                Err(format!("got {t:?}, want {want:?}"))
            }
        }
        (Err(Error::NotPresent { level, .. }), RefOut::NotPresent { level: l }) if *level == l => {
            Ok(())
        }
        (Err(Error::BadEntry { level, .. }), RefOut::Bad { level: l }) if *level == l => Ok(()),
        (Err(Error::NonCanonical { .. }), RefOut::NonCanonical) => Ok(()),
        (Err(Error::BadEntry { level, .. }), RefOut::Unreadable { level: l }) if *level == l => {
            Ok(())
        }
        (Err(Error::Context { .. }), RefOut::Unreadable { level: 0 }) => Ok(()),
        (g, w) => Err(format!("got {g:?}, want {w:?}")),
    }
}

pub fn mmu(f: Fmt) -> memlens_arch::Mmu {
    memlens_arch::Mmu::from_name(arch_name(f)).expect("known arch")
}

/// Every format the synthetic tests cover.
#[allow(dead_code, reason = "not every test binary iterates all formats")]
pub const ALL: [Fmt; 11] = [
    Fmt::X86,
    Fmt::Pae,
    Fmt::X64,
    Fmt::X64La57,
    Fmt::A64 { g: 12, va: 48 },
    Fmt::A64 { g: 14, va: 48 },
    Fmt::A64 { g: 16, va: 48 },
    Fmt::A64 { g: 16, va: 52 },
    Fmt::A64 { g: 12, va: 39 },
    Fmt::A64 { g: 12, va: 52 },
    Fmt::A64 { g: 14, va: 52 },
];

/// The crate's MMU for a format, including the 39-bit aarch64 one that has no name.
#[allow(dead_code, reason = "not every test binary builds MMUs")]
pub fn crate_mmu(f: Fmt) -> memlens_arch::Mmu {
    match f {
        Fmt::A64 { g: 12, va: 39 } => {
            memlens_arch::Mmu::aarch64(memlens_arch::Granule::K4, 39).expect("aarch64 39-bit")
        }
        other => mmu(other),
    }
}

pub fn roots(b: &Builder) -> memlens_arch::Roots {
    memlens_arch::Roots::split(PhysAddr(b.root_lo), PhysAddr(b.root_hi))
}

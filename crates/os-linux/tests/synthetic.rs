//! kallsyms and BTF parsers on inputs laid out byte by byte here, following the kernel's
//! formats (scripts/kallsyms.c, include/uapi/linux/btf.h) — the builders share no code or
//! structs with the parsers.

use memlens_os_linux::btf::{Btf, Kind};
use memlens_os_linux::kallsyms;

fn pad(v: &mut Vec<u8>, align: usize) {
    while v.len() % align != 0 {
        v.push(0);
    }
}

/// Token `i`: the character itself for printable ASCII, otherwise a two-byte token that
/// no test name uses.
fn token(i: usize) -> Vec<u8> {
    if (0x21..0x7f).contains(&i) {
        vec![i as u8]
    } else {
        vec![b'~', b'A' + (i % 26) as u8]
    }
}

struct Syms {
    names: Vec<String>,
    addrs: Vec<u64>,
}

fn symbols(n: usize, base: u64) -> Syms {
    let mut names = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..n {
        let kind = if i % 3 == 0 { 'T' } else { 't' };
        names.push(format!("{kind}sym_{i:05}_{}", "x".repeat(i % 7)));
        addrs.push(base + 0x10 * i as u64);
    }
    Syms { names, addrs }
}

/// `(blob, expected positions)`; `new_order` puts offsets after the token index.
/// `seqs_last`: `kallsyms_seqs_of_names` after `relative_base` (the order of Debian's 6.12)
/// instead of between the markers and the token table.
fn build(
    s: &Syms,
    base: u64,
    percpu: bool,
    seqs: bool,
    new_order: bool,
    seqs_last: bool,
) -> Vec<u8> {
    let n = s.names.len();
    let mut offsets = Vec::new();
    for a in &s.addrs {
        let v: i32 = if percpu {
            // Negative: relative to base, encoded as -1 - (addr - base).
            -1 - (a - base) as i32
        } else {
            (a - base) as i32
        };
        offsets.extend_from_slice(&v.to_le_bytes());
    }
    let mut names = Vec::new();
    let mut markers = Vec::new();
    for (i, nm) in s.names.iter().enumerate() {
        if i % 256 == 0 {
            markers.extend_from_slice(&(names.len() as u32).to_le_bytes());
        }
        names.push(nm.len() as u8);
        names.extend_from_slice(nm.as_bytes()); // every char is its own token
    }
    let mut table = Vec::new();
    let mut index = Vec::new();
    for i in 0..256 {
        index.extend_from_slice(&(table.len() as u16).to_le_bytes());
        table.extend_from_slice(&token(i));
        table.push(0);
    }
    let mut out = vec![0xAAu8; 4096]; // unrelated bytes before
    let emit_offsets = |out: &mut Vec<u8>| {
        pad(out, 8);
        out.extend_from_slice(&offsets);
        pad(out, 8);
        out.extend_from_slice(&base.to_le_bytes());
    };
    if !new_order {
        emit_offsets(&mut out);
    }
    pad(&mut out, 8);
    out.extend_from_slice(&(n as u32).to_le_bytes());
    pad(&mut out, 8);
    out.extend_from_slice(&names);
    pad(&mut out, 8);
    out.extend_from_slice(&markers);
    let emit_seqs = |out: &mut Vec<u8>| {
        for i in 0..n {
            out.extend_from_slice(&[(i >> 16) as u8, (i >> 8) as u8, i as u8]);
        }
    };
    if seqs && !seqs_last {
        emit_seqs(&mut out);
    }
    pad(&mut out, 8);
    out.extend_from_slice(&table);
    pad(&mut out, 8);
    out.extend_from_slice(&index);
    if new_order {
        emit_offsets(&mut out);
    }
    if seqs && seqs_last {
        emit_seqs(&mut out);
    }
    out.extend_from_slice(&[0x55u8; 4096]);
    out
}

fn check(percpu: bool, seqs: bool, new_order: bool) {
    check_order(percpu, seqs, new_order, false)
}

fn check_order(percpu: bool, seqs: bool, new_order: bool, seqs_last: bool) {
    let base = 0xffff_ffff_8100_0000;
    let s = symbols(1000, base);
    let blob = build(&s, base, percpu, seqs, new_order, seqs_last);
    let (layout, table) = kallsyms::find_and_parse(&blob, "synthetic")
        .unwrap_or_else(|e| panic!("percpu={percpu} seqs={seqs} new={new_order}: {e}"));
    assert_eq!(layout.num_syms, 1000);
    assert_eq!(layout.relative_base, base);
    assert_eq!(layout.absolute_percpu, percpu);
    assert_eq!(layout.seqs_of_names.is_some(), seqs);
    assert_eq!(table.is_lazy(), seqs, "lookups use the kernel's name order");
    assert_eq!(table.len(), 1000);
    for (nm, a) in s.names.iter().zip(&s.addrs) {
        assert_eq!(table.get(&nm[1..]), Some(*a), "{nm}");
    }
    let first = table.iter().next().unwrap();
    assert_eq!((first.kind, first.name), ('T', "sym_00000_"));
}

#[test]
fn kallsyms_old_order_percpu_with_seqs() {
    check(true, true, false);
}

#[test]
fn kallsyms_old_order_plain_without_seqs() {
    check(false, false, false);
}

#[test]
fn kallsyms_new_order() {
    check(false, true, true);
}

/// Debian's 6.12: `seqs_of_names` after `relative_base`, found by where it is and kept
/// only because the names it orders are sorted (lookups use it: the table stays lazy).
#[test]
fn kallsyms_new_order_seqs_after_base() {
    check_order(false, true, true, true);
}

#[test]
fn kallsyms_truncated_is_an_error() {
    let base = 0xffff_ffff_8100_0000;
    let blob = build(&symbols(600, base), base, true, true, false, false);
    // Cut inside the names: the tables can no longer be located.
    let cut = 4096 + 600 * 4 + 300;
    let mut damaged = blob.clone();
    damaged[cut..cut + 2000].fill(0xff);
    assert!(kallsyms::find_and_parse(&damaged, "damaged").is_err());
    for n in [0, 100, 5000, blob.len() / 2] {
        assert!(kallsyms::find_and_parse(&blob[..n.min(blob.len())], "short").is_err());
    }
}

// ---- BTF ----

struct BtfBuilder {
    types: Vec<u8>,
    strings: Vec<u8>,
}

impl BtfBuilder {
    fn new() -> Self {
        Self {
            types: Vec::new(),
            strings: vec![0],
        }
    }
    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let o = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        o
    }
    fn w(&mut self, v: u32) {
        self.types.extend_from_slice(&v.to_le_bytes());
    }
    fn ty(&mut self, name: &str, kind: u32, vlen: u32, kflag: bool, size_or_type: u32) {
        let n = self.s(name);
        self.w(n);
        self.w((kflag as u32) << 31 | kind << 24 | vlen);
        self.w(size_or_type);
    }
    fn blob(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xEB9Fu16.to_le_bytes());
        out.push(1);
        out.push(0);
        for v in [
            24u32,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

fn sample_btf() -> Vec<u8> {
    let mut b = BtfBuilder::new();
    // 1: int
    b.ty("int", 1, 0, false, 4);
    b.w(32);
    // 2: void *
    b.ty("", 2, 0, false, 0);
    // 3: struct inner { int a; int b; }
    b.ty("inner", 4, 2, false, 8);
    for (n, t, off) in [("a", 1, 0), ("b", 1, 32)] {
        let s = b.s(n);
        b.w(s);
        b.w(t);
        b.w(off);
    }
    // 4: union { void *x; }
    b.ty("", 5, 1, false, 8);
    let s = b.s("x");
    b.w(s);
    b.w(2);
    b.w(0);
    // 5: struct outer (kind_flag: bitfield sizes in the offsets)
    b.ty("outer", 4, 4, true, 32);
    for (n, t, off) in [
        ("first", 1u32, 0u32),
        ("", 4, 64),
        ("in", 3, 128),
        ("bf", 1, 3 << 24 | 194),
    ] {
        let s = b.s(n);
        b.w(s);
        b.w(t);
        b.w(off);
    }
    // 6: typedef outer_t -> 5; 7: const -> 6
    b.ty("outer_t", 8, 0, false, 5);
    b.ty("", 10, 0, false, 6);
    // 8: int[10]
    b.ty("", 3, 0, false, 0);
    b.w(1);
    b.w(1);
    b.w(10);
    // 9: enum e { E_A = 1, E_B = -2 }
    b.ty("e", 6, 2, true, 4);
    for (n, v) in [("E_A", 1i32), ("E_B", -2)] {
        let s = b.s(n);
        b.w(s);
        b.w(v as u32);
    }
    b.blob()
}

#[test]
fn btf_synthetic_layouts() {
    let blob = sample_btf();
    assert_eq!(memlens_os_linux::btf::blob_len(&blob), Some(blob.len()));
    let btf = Btf::parse(&blob).unwrap();
    assert_eq!(btf.type_count(), 9);
    assert_eq!(btf.kind(4), Some(Kind::Union));
    assert_eq!(btf.struct_size("outer").unwrap(), 32);
    assert_eq!(
        btf.offset_of("outer", "x").unwrap(),
        8,
        "through the anonymous union"
    );
    assert_eq!(btf.offset_of("outer", "in.b").unwrap(), 20);
    let outer = btf.struct_id("outer").unwrap();
    let bf = btf.member(outer, "bf").unwrap();
    assert_eq!((bf.bit_offset, bf.bitfield_size), (194, 3));
    assert_eq!(btf.size_of(7), Some(32), "const -> typedef -> struct");
    assert_eq!(btf.size_of(8), Some(40));
    assert_eq!(btf.enum_value("E_B"), Some(-2));
    assert!(btf.offset_of("outer", "nope").is_err());
    assert!(btf.offset_of("nope", "x").is_err());
}

#[test]
fn btf_garbage_is_an_error() {
    let blob = sample_btf();
    for n in 0..blob.len() {
        let _ = Btf::parse(&blob[..n]); // never panics
    }
    let mut bad = blob.clone();
    bad[24 + 7] = 0x1f; // kind 31 in the first type
    assert!(Btf::parse(&bad).is_err());
    let mut huge = blob;
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes()); // type_len past the end
    assert!(Btf::parse(&huge).is_err());
}

impl BtfBuilder {
    /// `BTF_KIND_ARRAY` of `n` elements of type `elem` (index type 1).
    fn array(&mut self, elem: u32, n: u32) {
        self.ty("", 3, 0, false, 0);
        self.w(elem);
        self.w(1);
        self.w(n);
    }
    /// A struct with `members` as `(name, type, bit offset)`.
    fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) {
        self.ty(name, 4, members.len() as u32, false, size);
        for &(n, t, off) in members {
            let s = self.s(n);
            self.w(s);
            self.w(t);
            self.w(off);
        }
    }
}

/// Arrays whose element is the array itself (directly or through a typedef), a typedef
/// cycle, nesting deeper than MAX_CHASE, and a product that overflows: `None`, never
/// unbounded recursion (a stack overflow aborts the process).
#[test]
fn btf_self_referencing_arrays_have_no_size() {
    let mut b = BtfBuilder::new();
    b.ty("int", 1, 0, false, 4); // 1
    b.w(32);
    b.array(2, 4); // 2: element is itself
    b.ty("t", 8, 0, false, 4); // 3: typedef t -> 4
    b.array(3, 4); // 4: element is typedef t -> itself
    b.ty("a", 8, 0, false, 6); // 5: typedef a -> 6
    b.ty("b", 8, 0, false, 5); // 6: typedef b -> 5 (a cycle of typedefs)
    b.array(1, u32::MAX); // 7: int[2^32-1]
    b.array(7, u32::MAX); // 8: int[2^32-1][2^32-1]: 2^66 bytes
    let deep = 9;
    let levels = memlens_os_linux::btf::MAX_CHASE + 8;
    for i in 0..levels {
        // 9..: each an array of the next, the last of int.
        let elem = if i + 1 == levels { 1 } else { deep + i + 1 };
        b.array(elem, 1);
    }
    let btf = Btf::parse(&b.blob()).unwrap();
    for id in [2, 3, 4, 5, 6, 8, deep] {
        assert_eq!(btf.size_of(id), None, "type {id}");
    }
    assert_eq!(btf.size_of(7), Some(4 * u32::MAX as u64));
    assert_eq!(
        btf.size_of(deep + levels - 2),
        Some(4),
        "two levels are fine"
    );
}

/// Anonymous members that fan out (six levels of 1000 anonymous members each: 10^18
/// paths) and a struct that contains itself anonymously: a lookup of a missing member
/// reads a bounded number of records and returns `None`; real members are still found.
#[test]
fn btf_anonymous_fan_out_is_bounded() {
    let mut b = BtfBuilder::new();
    b.ty("int", 1, 0, false, 4); // 1
    b.w(32);
    const LEVELS: u32 = 6;
    for l in 0..LEVELS {
        // 2 + l: struct level_l { struct level_{l+1} (anonymous) x 1000 } ; the last holds `x`.
        if l + 1 == LEVELS {
            b.strukt(&format!("level_{l}"), 4, &[("x", 1, 0)]);
        } else {
            let anon = vec![("", 3 + l, 0); 1000];
            b.strukt(&format!("level_{l}"), 4, &anon);
        }
    }
    let me = 2 + LEVELS;
    b.strukt("me", 8, &[("", me, 0), ("y", 1, 32)]);
    let btf = Btf::parse(&b.blob()).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(
        btf.offset_of("level_0", "x").unwrap(),
        0,
        "first path reaches it"
    );
    assert!(btf.offset_of("level_0", "missing").is_err());
    assert!(btf.offset_of("level_1", "missing").is_err());
    assert_eq!(btf.offset_of("me", "y").unwrap(), 4);
    assert!(btf.offset_of("me", "missing").is_err());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
}

/// `module.mem[]` from BTF is walked per module: a count of a million entries, or an
/// entry of a MiB, is refused (module sizes are then not read) instead of walked.
#[test]
fn btf_module_mem_is_bounded() {
    let build = |count: u32, esz: u32| {
        let mut b = BtfBuilder::new();
        b.ty("long", 1, 0, false, 8); // 1
        b.w(64);
        b.strukt("module_memory", esz, &[("base", 1, 0), ("size", 1, 64)]); // 2
        b.array(2, count); // 3
        b.strukt(
            "module",
            64 + esz * count.min(16),
            &[("name", 1, 0), ("mem", 3, 512)],
        ); // 4
        Btf::parse(&b.blob()).unwrap()
    };
    use memlens_os_linux::layout::{module_mem, MAX_MODULE_MEM, MAX_MODULE_MEM_SIZE};
    assert_eq!(module_mem(&build(7, 80)), Some((64, 80, 7, 0, 8)));
    assert_eq!(module_mem(&build(1_000_000, 80)), None);
    assert_eq!(module_mem(&build(MAX_MODULE_MEM as u32 + 1, 80)), None);
    assert_eq!(module_mem(&build(7, MAX_MODULE_MEM_SIZE as u32 + 8)), None);
    assert_eq!(
        module_mem(&build(7, 4)),
        None,
        "base/size outside the entry"
    );
}

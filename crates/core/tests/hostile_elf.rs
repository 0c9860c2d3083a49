//! The in-memory ELF parser against hostile modules, with the heap measured: a counting
//! global allocator records the peak bytes allocated while each input is parsed, and
//! every input must stay under [`PEAK_LIMIT`] whatever its tables claim.
//!
//! Inputs: the fuzz regression inputs of `fuzz/seeds/module_elf/` (the same harness as
//! the `module_elf` fuzz target: the bytes are memory at address 0), and synthetic
//! modules over 1 GiB of readable memory, where every table a header names can really be
//! read, so only the parser's caps stand between a claim and an allocation.
//!
//! Regression: `oom-gnu-hash-symoffset` made `dynamic_symbols` allocate 16.5 GB (a
//! `DT_GNU_HASH` `symoffset` taken as the symbol count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use memlens_core::{elf, Error, MemoryMetadata, MemoryView, ReadOp, VirtAddr};

/// Peak heap a parse may reach (the bound for a whole `memlens modules` run).
const PEAK_LIMIT: usize = 100 << 20;

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: the caller's layout is passed on as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the peak heap growth during it.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let r = f();
    (r, PEAK.load(Relaxed).saturating_sub(base))
}

/// The `module_elf` harness: parse the module at 0, then its dynamic symbols.
fn parse(mem: &dyn MemoryView<Addr = VirtAddr>) -> Result<elf::Symbols, String> {
    let img = elf::read_image(mem, VirtAddr(0))?;
    elf::dynamic_symbols(mem, &img)
}

/// Memory at address 0 given by a function of the address (1 GiB readable).
struct Synth<F: Fn(u64) -> u8 + Sync + Send>(F);

const SYNTH_LEN: u64 = 1 << 30;

impl<F: Fn(u64) -> u8 + Sync + Send> MemoryView for Synth<F> {
    type Addr = VirtAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
        for op in ops {
            let end = op.addr.0.checked_add(op.buf.len() as u64);
            op.result = match end {
                Some(e) if e <= SYNTH_LEN => {
                    for (i, b) in op.buf.iter_mut().enumerate() {
                        *b = (self.0)(op.addr.0 + i as u64);
                    }
                    Ok(())
                }
                _ => Err(Error::Other(format!("{} unmapped", op.addr))),
            };
        }
    }
    fn metadata(&self) -> MemoryMetadata<VirtAddr> {
        MemoryMetadata {
            max_addr: VirtAddr(SYNTH_LEN),
            real_size: SYNTH_LEN,
            readonly: true,
            preferred_batch: 64,
        }
    }
}

/// Bytes at address 0 (the fuzz harness's view).
struct Bytes(Vec<u8>);

impl MemoryView for Bytes {
    type Addr = VirtAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
        for op in ops {
            let src = usize::try_from(op.addr.0)
                .ok()
                .and_then(|a| self.0.get(a..a.checked_add(op.buf.len())?));
            op.result = match src {
                Some(s) => {
                    op.buf.copy_from_slice(s);
                    Ok(())
                }
                None => Err(Error::Other(format!("{} unmapped", op.addr))),
            };
        }
    }
    fn metadata(&self) -> MemoryMetadata<VirtAddr> {
        MemoryMetadata {
            max_addr: VirtAddr(self.0.len() as u64),
            real_size: self.0.len() as u64,
            readonly: true,
            preferred_batch: 64,
        }
    }
}

const SYMTAB: u64 = 0x10000;
const STRTAB: u64 = 0x0200_0000;
const RELA: u64 = 0x0400_0000;

/// What a synthetic module's headers claim.
#[derive(Clone, Copy)]
struct Claims {
    /// `Some(symoffset)`: a `DT_GNU_HASH` with no buckets; `None`: `DT_HASH`.
    gnu_symoffset: Option<u32>,
    /// `DT_HASH` `nchain`.
    nchain: u32,
    strsz: u64,
    relasz: u64,
    /// The string table is one unterminated run of 'A' (every name as long as allowed).
    long_names: bool,
}

/// A module at 0: the ELF header and two program headers (one `PT_LOAD` over 1 GiB, a
/// `PT_DYNAMIC` at 0x1000), the dynamic section, the hash table, a symbol table at
/// [`SYMTAB`] whose every entry is a global function named at string offset 1, a string
/// table at [`STRTAB`], relocations at [`RELA`] naming symbol 1. Written byte by byte
/// from the ELF specification's offsets, not from the parser's constants.
fn synth(c: Claims) -> impl Fn(u64) -> u8 + Sync + Send {
    let mut head = vec![0u8; 0x3000];
    head[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    head[16..18].copy_from_slice(&3u16.to_le_bytes()); // e_type ET_DYN
    head[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    head[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    head[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
    let ph = |h: &mut Vec<u8>, at: usize, ty: u32, vaddr: u64, memsz: u64| {
        h[at..at + 4].copy_from_slice(&ty.to_le_bytes());
        h[at + 4..at + 8].copy_from_slice(&5u32.to_le_bytes());
        h[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
        h[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
    };
    ph(&mut head, 64, 1, 0, SYNTH_LEN);
    ph(&mut head, 120, 2, 0x1000, 0x100);
    let mut dynamic = vec![
        (6u64, SYMTAB),
        (5, STRTAB),
        (10, c.strsz),
        (7, RELA),
        (8, c.relasz),
    ];
    match c.gnu_symoffset {
        Some(_) => dynamic.push((0x6fff_fef5, 0x2000)),
        None => dynamic.push((4, 0x2000)),
    }
    for (k, (tag, val)) in dynamic.iter().enumerate() {
        let at = 0x1000 + k * 16;
        head[at..at + 8].copy_from_slice(&tag.to_le_bytes());
        head[at + 8..at + 16].copy_from_slice(&val.to_le_bytes());
    }
    match c.gnu_symoffset {
        // nbuckets 0, symoffset, bloom size 0, shift 0.
        Some(off) => head[0x2004..0x2008].copy_from_slice(&off.to_le_bytes()),
        // nbucket 0, nchain.
        None => head[0x2004..0x2008].copy_from_slice(&c.nchain.to_le_bytes()),
    }
    move |a: u64| -> u8 {
        if a < head.len() as u64 {
            return head[a as usize];
        }
        if (SYMTAB..STRTAB).contains(&a) {
            // Elf64_Sym: st_name u32, st_info, st_other, st_shndx u16, st_value, st_size.
            let (i, o) = ((a - SYMTAB) / 24, (a - SYMTAB) % 24);
            let mut sym = [0u8; 24];
            sym[0] = 1;
            sym[4] = 0x12; // STB_GLOBAL, STT_FUNC
            sym[6] = 1;
            sym[8..16].copy_from_slice(&(i * 16).to_le_bytes());
            return sym[o as usize];
        }
        if (STRTAB..RELA).contains(&a) {
            return match (a - STRTAB, c.long_names) {
                (0, _) => 0,
                (_, true) => b'A',
                (1, false) => b'f',
                (_, false) => 0,
            };
        }
        // Elf64_Rela: r_offset, r_info (symbol 1, type 7), r_addend.
        let o = (a - RELA) % 24;
        [0x40, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0][..]
            .get(o as usize)
            .copied()
            .unwrap_or(0)
    }
}

fn run_synth(what: &str, c: Claims) -> Result<elf::Symbols, String> {
    let mem = Synth(synth(c));
    let (r, peak) = measured(|| parse(&mem));
    assert!(
        peak < PEAK_LIMIT,
        "{what}: peak heap {peak} bytes (limit {PEAK_LIMIT})"
    );
    eprintln!("{what}: peak heap {peak} bytes");
    r
}

/// One test, so that no other test's allocations run during a measurement.
#[test]
fn hostile_modules_are_refused_within_bounded_memory() {
    // Every fuzz regression input of the module parser.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/module_elf");
    let mut inputs: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .collect();
    inputs.sort();
    assert!(
        inputs.iter().any(|p| p.ends_with("oom-gnu-hash-symoffset")),
        "the 16.5 GB regression input is missing from {dir}"
    );
    for p in &inputs {
        let mem = Bytes(std::fs::read(p).expect("read input"));
        let (r, peak) = measured(|| parse(&mem));
        assert!(peak < PEAK_LIMIT, "{}: peak heap {peak} bytes", p.display());
        // The real library among the seeds (gcc, laid out by its segments) parses.
        if p.ends_with("gcc-shared-nostdlib") {
            let (exports, imports) = r.expect("the gcc-built seed parses");
            let names: Vec<_> = exports.iter().map(|s| s.name.as_str()).collect();
            assert!(names.contains(&"memlens_seed_add"), "{names:?}");
            assert!(imports.iter().any(|s| s.name == "puts"), "{imports:?}");
        }
    }

    let plain = Claims {
        gnu_symoffset: None,
        nchain: 1000,
        strsz: 16,
        relasz: 24 * 10,
        long_names: false,
    };
    // A sane module: 999 exports named "f" at bias + i*16.
    let (exports, imports) = run_synth("sane", plain).expect("sane module");
    assert_eq!(exports.len(), 999);
    assert!(exports.iter().all(|s| s.name == "f"));
    assert_eq!(exports[0].addr, VirtAddr(16));
    assert!(imports.is_empty());

    let e = run_synth(
        "gnu symoffset",
        Claims {
            gnu_symoffset: Some(0xffff_fff0),
            ..plain
        },
    )
    .unwrap_err();
    assert!(e.contains("claims 4294967280 dynamic symbols"), "{e}");
    let e = run_synth(
        "hash nchain",
        Claims {
            nchain: u32::MAX,
            ..plain
        },
    )
    .unwrap_err();
    assert!(e.contains("claims 4294967295 dynamic symbols"), "{e}");
    let e = run_synth(
        "string table size",
        Claims {
            strsz: 1 << 40,
            ..plain
        },
    )
    .unwrap_err();
    assert!(e.contains("dynamic string table"), "{e}");
    // The most symbols read, each named by the same unterminated 16 MiB run of 'A': the
    // names alone would be 2 GiB.
    let e = run_synth(
        "overlapping long names",
        Claims {
            nchain: elf::MAX_SYMS as u32,
            strsz: elf::MAX_STRTAB as u64,
            long_names: true,
            ..plain
        },
    )
    .unwrap_err();
    assert!(e.contains("exceed"), "{e}");
    // A relocation table claiming 1 TiB: imports are best effort, exports still come.
    let (exports, _) = run_synth(
        "relocation size",
        Claims {
            relasz: 1 << 40,
            ..plain
        },
    )
    .expect("exports despite a bad relocation table");
    assert_eq!(exports.len(), 999);
}

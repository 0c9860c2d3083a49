//! Bad input: memory that holds no Linux kernel, garbage pages, and a real kernel whose
//! BTF was wiped, an arm64 kernel without its page tables. Each must end in a clear error —
//! never a panic or a hang.

use std::sync::Arc;

use memlens_core::{MemoryMetadata, MemoryView, PhysAddr, PhysicalTarget, ReadOp, TargetInfo};
use memlens_os_linux::{LinuxError, LinuxOptions, LinuxOs};
use proptest::prelude::*;

/// Physical memory held in a vector.
struct VecMem(Vec<u8>);

impl MemoryView for VecMem {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        for op in ops {
            let start = op.addr.0 as usize;
            let n = op.buf.len();
            match self.0.get(start..start.saturating_add(n)) {
                Some(src) if op.addr.0 < usize::MAX as u64 => {
                    op.buf.copy_from_slice(src);
                    op.result = Ok(());
                }
                _ => {
                    op.buf.fill(0);
                    op.result = Err(memlens_core::Error::OutOfRange {
                        addr: op.addr,
                        len: n,
                        max: PhysAddr(self.0.len() as u64 - 1),
                    });
                }
            }
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(self.0.len() as u64 - 1),
            real_size: self.0.len() as u64,
            readonly: true,
            preferred_batch: 1,
        }
    }
}

fn open(mem: Vec<u8>) -> Result<LinuxOs, LinuxError> {
    let t = PhysicalTarget::from_memory(Arc::new(VecMem(mem)), TargetInfo::default());
    LinuxOs::open(t, LinuxOptions::default())
}

#[test]
fn zeroed_memory_says_what_is_missing() {
    let e = open(vec![0u8; 8 << 20]).expect_err("no kernel in zeros");
    let msg = e.to_string();
    assert!(matches!(e, LinuxError::KernelNotFound { .. }), "{msg}");
    assert!(
        msg.contains("kallsyms") && msg.contains("symbols=PATH"),
        "{msg}"
    );
}

#[test]
fn detect_says_no_on_zeros() {
    let t =
        PhysicalTarget::from_memory(Arc::new(VecMem(vec![0u8; 4 << 20])), TargetInfo::default());
    assert_eq!(memlens_os_linux::detect(&t), None);
}

#[test]
fn a_banner_alone_is_reported() {
    let mut m = vec![0u8; 4 << 20];
    let b = b"Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0)";
    m[0x12345..0x12345 + b.len()].copy_from_slice(b);
    let msg = open(m).expect_err("banner without kallsyms").to_string();
    assert!(msg.contains("6.1.0-56-amd64"), "{msg}");
}

/// A valid-looking token table and its index at `at`, with nothing around them.
fn plant_token_table(m: &mut [u8], at: usize) {
    let mut table = Vec::new();
    let mut index = Vec::new();
    for i in 0..256u32 {
        index.push(table.len() as u16);
        let c = if (0x21..0x7f).contains(&i) {
            vec![i as u8]
        } else {
            vec![b'x', i as u8 | 1]
        };
        table.extend_from_slice(&c);
        table.push(0);
    }
    m[at..at + table.len()].copy_from_slice(&table);
    let idx_at = (at + table.len()).div_ceil(8) * 8;
    for (i, v) in index.iter().enumerate() {
        m[idx_at + 2 * i..idx_at + 2 * i + 2].copy_from_slice(&v.to_le_bytes());
    }
}

#[test]
fn anchor_without_tables_is_rejected() {
    let mut m = vec![0u8; 4 << 20];
    plant_token_table(&mut m, 1 << 20);
    let e = open(m).expect_err("tables missing");
    assert!(e.to_string().contains("kallsyms"), "{e}");
}

/// A guest that plants many token tables (decoys) makes the scan decode at most
/// MAX_CANDIDATES of them, then fail saying so — not decode every one.
#[test]
fn planted_token_tables_are_decoded_at_most_max_candidates_times() {
    use memlens_os_linux::scan::MAX_CANDIDATES;
    let mut m = vec![0u8; 40 << 20];
    for i in 0..MAX_CANDIDATES + 40 {
        plant_token_table(&mut m, (25 << 20) + i * (16 << 10));
    }
    let e = open(m).expect_err("decoys only");
    let msg = e.to_string();
    assert!(matches!(e, LinuxError::KernelNotFound { .. }), "{msg}");
    assert!(
        msg.contains(&format!(
            "{MAX_CANDIDATES} candidate kallsyms token tables decoded and rejected"
        )),
        "{msg}"
    );
    assert!(msg.contains("symbols=PATH"), "{msg}");
    // The same decoys in a file given as `vmlinux` content.
    let mut w = vec![0u8; 4 << 20];
    for i in 0..MAX_CANDIDATES + 40 {
        plant_token_table(&mut w, (1 << 20) + i * (16 << 10));
    }
    let e = memlens_os_linux::kallsyms::find_and_parse(&w, "decoys").unwrap_err();
    assert!(e.to_string().contains("the limit of"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Random pages, with the token-table anchor and a BTF header sprinkled in, never
    /// panic: the open fails with an error.
    #[test]
    fn random_pages_never_panic(seed in any::<u64>(), anchors in 0usize..4) {
        let mut m = vec![0u8; 2 << 20];
        let mut x = seed | 1;
        for b in m.iter_mut() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            *b = x as u8;
        }
        for i in 0..anchors {
            let at = (x as usize >> 8).wrapping_add(i * 65_537) % (m.len() - 64);
            m[at..at + 20].copy_from_slice(memlens_os_linux::kallsyms::DIGITS_ANCHOR);
            let bt = (at + 30_001) % (m.len() - 64);
            m[bt..bt + 8].copy_from_slice(memlens_os_linux::scan::BTF_HEADER);
        }
        prop_assert!(open(m).is_err());
    }
}

/// The lab's real kernel with its BTF blob zeroed: the error names BTF and the release.
#[test]
fn kernel_without_btf_is_a_clear_error() {
    let s = testlab::require("x86_64-nokaslr");
    let mut m = std::fs::read(&s.raw).expect("raw dump");
    let start = s.truth.guest.kallsyms["__start_BTF"];
    let stop = s.truth.guest.kallsyms["__stop_BTF"];
    // nokaslr: the image is at its link address, PA = VA - 0xffffffff80000000.
    let pa = (start - 0xffff_ffff_8000_0000) as usize;
    m[pa..pa + (stop - start) as usize].fill(0);
    let e = open(m).expect_err("no BTF");
    assert!(matches!(e, LinuxError::NoBtf { .. }), "{e}");
    assert!(e.to_string().contains(&s.truth.guest.kernel_release), "{e}");
}

/// A connector whose bytes in `[lo, hi)` read as zero (damage without copying a dump).
struct Zeroed<M> {
    inner: M,
    lo: u64,
    hi: u64,
}

impl<M: MemoryView<Addr = PhysAddr>> MemoryView for Zeroed<M> {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        self.inner.read_batch(ops);
        for op in ops {
            let (a, n) = (op.addr.0, op.buf.len() as u64);
            let (s, e) = (a.max(self.lo), (a + n).min(self.hi));
            if s < e {
                op.buf[(s - a) as usize..(e - a) as usize].fill(0);
            }
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        self.inner.metadata()
    }
    fn ranges(&self) -> Vec<memlens_core::MemRange<PhysAddr>> {
        self.inner.ranges()
    }
}

/// The lab's arm64 kernel with `swapper_pg_dir` zeroed: no other table maps both the
/// image and the linear map, so the open fails naming the page tables (no panic, no
/// wrong root).
#[test]
fn arm64_without_its_page_tables_is_a_clear_error() {
    let s = testlab::require("arm64");
    let raw = || memlens_connector_file::RawFile::open(&s.raw).expect("raw dump");
    let t = PhysicalTarget::from_memory(Arc::new(raw()), TargetInfo::default());
    let root = LinuxOs::open(t, LinuxOptions::default())
        .expect("healthy arm64 dump")
        .linux_info()
        .root
        .0;
    let damaged = Zeroed {
        inner: raw(),
        lo: root,
        hi: root + 4096,
    };
    let t = PhysicalTarget::from_memory(Arc::new(damaged), TargetInfo::default());
    let e = LinuxOs::open(t, LinuxOptions::default()).expect_err("no page tables");
    assert!(matches!(e, LinuxError::KernelNotFound { .. }), "{e}");
    assert!(e.to_string().contains("page tables"), "{e}");
}

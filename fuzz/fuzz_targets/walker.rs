//! Fuzz the page-table walker, the page map and the virtual view with arbitrary bytes as
//! physical memory (and so as page tables). Must never panic, hang or allocate without
//! bound; a batch must equal the same translations done one by one.
//!
//! Input: byte 0 = architecture, bytes 1..9 = lower root, 9..17 = upper root, byte 17 =
//! number of queries q, then q × 8 bytes of virtual addresses, the rest = memory.
//!
//! `cargo +nightly fuzz run walker`
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_arch::{find_mappings, page_map, translate, translate_vec, Mmu, PageMapOptions, Roots, VirtualView};
use memlens_core::{Error, MemoryMetadata, MemoryView, PhysAddr, ReadOp, VirtAddr};

struct Bytes<'a>(&'a [u8]);

impl MemoryView for Bytes<'_> {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        for op in ops {
            let start = usize::try_from(op.addr.0).ok();
            let end = start.and_then(|s| s.checked_add(op.buf.len()));
            match (start, end) {
                (Some(s), Some(e)) if e <= self.0.len() => {
                    op.buf.copy_from_slice(&self.0[s..e]);
                    op.result = Ok(());
                }
                _ => {
                    op.result = Err(Error::OutOfRange {
                        addr: op.addr,
                        len: op.buf.len(),
                        max: PhysAddr(self.0.len() as u64),
                    })
                }
            }
        }
    }
    fn metadata(&self) -> MemoryMetadata<PhysAddr> {
        MemoryMetadata {
            max_addr: PhysAddr(self.0.len() as u64),
            real_size: self.0.len() as u64,
            readonly: true,
            preferred_batch: 64,
        }
    }
}

fn u64_at(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = d.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 18 {
        return;
    }
    let names = memlens_arch::ARCH_NAMES;
    let Ok(mmu) = Mmu::from_name(names[usize::from(data[0]) % names.len()]) else {
        return;
    };
    let roots = Roots::split(PhysAddr(u64_at(data, 1) % 0x10_0000), PhysAddr(u64_at(data, 9)));
    let q = usize::from(data[17] % 64);
    let vas: Vec<VirtAddr> = (0..q).map(|i| VirtAddr(u64_at(data, 18 + i * 8))).collect();
    let mem = Bytes(data.get(18 + q * 8..).unwrap_or(&[]));
    let batch = translate_vec(&mem, &mmu, &roots, &vas);
    for (va, b) in vas.iter().zip(&batch) {
        let one = translate(&mem, &mmu, &roots, *va);
        assert_eq!(one.is_ok(), b.is_ok());
        if let (Ok(x), Ok(y)) = (&one, b) {
            assert_eq!(x, y);
        }
    }
    let opts = PageMapOptions { max_tables: 256, max_ranges: 4096, ..Default::default() };
    let pm = page_map(&mem, &mmu, &roots, &opts);
    assert!(pm.ranges.len() <= 4096 && pm.stats.tables_read <= 256);
    let _ = find_mappings(&mem, &mmu, &roots, PhysAddr(0), &opts);
    let view = VirtualView::new(&mem, mmu, roots);
    let mut buf = vec![0u8; 9000];
    for va in vas.iter().take(4) {
        let mut ops = [ReadOp::new(*va, &mut buf[..])];
        view.read_batch(&mut ops);
    }
});

//! Fuzz the in-memory ELF module parser (`memlens_core::elf`): arbitrary bytes as a
//! process's virtual memory with the module at address 0. Must never panic, hang or
//! allocate without bound.
//!
//! `cargo +nightly fuzz run module_elf`
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_core::{elf, Error, MemoryMetadata, MemoryView, ReadOp, VirtAddr};

struct Bytes<'a>(&'a [u8]);

impl MemoryView for Bytes<'_> {
    type Addr = VirtAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, VirtAddr>]) {
        for op in ops {
            let start = usize::try_from(op.addr.0).ok();
            let end = start.and_then(|s| s.checked_add(op.buf.len()));
            match (start, end) {
                (Some(s), Some(e)) if e <= self.0.len() => {
                    op.buf.copy_from_slice(&self.0[s..e]);
                    op.result = Ok(());
                }
                _ => op.result = Err(Error::Other(format!("{:#x} unmapped", op.addr.0))),
            }
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

fuzz_target!(|data: &[u8]| {
    let mem = Bytes(data);
    if let Ok(img) = elf::read_image(&mem, VirtAddr(0)) {
        let _ = elf::dynamic_symbols(&mem, &img);
    }
});

//! Test scaffolding shared by the os-linux integration tests.

use memlens_core::{MemoryMetadata, MemoryView, PhysAddr, ReadOp};

/// Physical memory held in a vector (a modified copy of a lab dump); bytes past its end
/// fail as a gap.
pub struct VecMem(pub Vec<u8>);

impl MemoryView for VecMem {
    type Addr = PhysAddr;
    fn read_batch(&self, ops: &mut [ReadOp<'_, PhysAddr>]) {
        for op in ops {
            let n = op.buf.len();
            let src = usize::try_from(op.addr.0)
                .ok()
                .and_then(|s| self.0.get(s..s.checked_add(n)?));
            match src {
                Some(src) => {
                    op.buf.copy_from_slice(src);
                    op.result = Ok(());
                }
                None => {
                    op.buf.fill(0);
                    op.result = Err(memlens_core::Error::Gap { addr: op.addr });
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

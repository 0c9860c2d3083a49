//! Quick read-rate probe: `cargo run --release --example rawspeed -- FILE SPAN_MIB DISTINCT`.
use memlens_core::{MemoryView, PhysAddr, ReadOp};

fn main() {
    let mut a = std::env::args().skip(1);
    let p = a.next().expect("usage: rawspeed FILE SPAN_MIB DISTINCT");
    let span: u64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(1024) << 20;
    let distinct: usize = a.next().and_then(|s| s.parse().ok()).unwrap_or(65536);
    let d = memlens_connector_file::open_dump(&p, &Default::default()).expect("open");
    let mut s = 1u64;
    let addrs: Vec<u64> = (0..distinct)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (0x100000 + s % (span - 0x200000)) & !7
        })
        .collect();
    let mut buf = vec![0u8; 8 * 256];
    for round in 0..3 {
        let t = std::time::Instant::now();
        let mut n = 0usize;
        while t.elapsed().as_secs_f64() < 1.0 {
            for chunk in addrs.chunks(256) {
                let mut ops: Vec<ReadOp<'_, PhysAddr>> = chunk
                    .iter()
                    .zip(buf.chunks_mut(8))
                    .map(|(a, b)| ReadOp::new(PhysAddr(*a), b))
                    .collect();
                d.read_batch(&mut ops);
                n += ops.len();
            }
        }
        println!(
            "round {round}: {:.1} M reads/s",
            n as f64 / t.elapsed().as_secs_f64() / 1e6
        );
    }
}

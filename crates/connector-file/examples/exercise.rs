//! Times the fuzz harness on one file: `cargo run --release --example exercise -- FILE [N]`.

fn main() {
    let mut a = std::env::args().skip(1);
    let p = std::path::PathBuf::from(a.next().expect("usage: exercise FILE [N]"));
    let n: usize = a.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    for c in memlens_connector_file::fuzzing::CHOICES {
        let t = std::time::Instant::now();
        let mut ok = false;
        for _ in 0..n {
            ok = memlens_connector_file::fuzzing::exercise(&p, c);
        }
        println!("{c:?}: opened={ok} {:?}/run", t.elapsed() / n as u32);
    }
}

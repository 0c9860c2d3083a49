//! Lists the processes of the Linux kernel in a dump, then the first bytes of each user
//! process's first mapping: `cargo run --release -p memlens --example ps -- guest.elf`.

use memlens::core::{MemoryViewExt, Os};
use memlens::file::{open_dump, DumpOptions};
use memlens::linux::{LinuxOptions, LinuxOs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: ps DUMP (raw, ELF core, kdump, LiME or AVML)")?;
    let dump = open_dump(&path, &DumpOptions::default())?;
    let os = LinuxOs::open(dump.target(), LinuxOptions::default())?;
    println!("{}", os.info().release.unwrap_or_default());
    for p in os.processes()? {
        let head = match os.process(p.pid).and_then(|proc| {
            let maps = proc.maps()?;
            let first = maps
                .first()
                .ok_or(memlens::Error::Other("no maps".into()))?;
            proc.memory().read_vec(first.start, 4)
        }) {
            Ok(b) if !p.kernel_thread => format!("{b:02x?}"),
            _ => String::new(),
        };
        println!("{:>6} {:>6} {:<16} {head}", p.pid, p.ppid, p.name);
    }
    Ok(())
}

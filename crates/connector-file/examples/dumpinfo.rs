//! Prints what memlens knows about a dump file: `cargo run --example dumpinfo -- FILE [FORMAT]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: dumpinfo FILE [auto|raw|elf|kdump|lime|avml]")?;
    let format = args.next().unwrap_or_else(|| "auto".into()).parse()?;
    let t = std::time::Instant::now();
    let dump = memlens_connector_file::open_dump(
        &path,
        &memlens_connector_file::DumpOptions::with_format(format),
    )?;
    eprintln!("opened in {:?}", t.elapsed());
    print!("{}", dump.info());
    Ok(())
}

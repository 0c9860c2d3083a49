//! Lists the plugin inventory and builds a chain from the command line, through loaded
//! plugins only:
//!
//! `MEMLENS_PLUGIN_PATH=/dir cargo run -p memlens-plugin --example chain -- -o native`

use memlens_plugin::{listing, Builder, Inventory, Output};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let inv = Inventory::scan();
    print!("{}", listing::list(None, &inv).to_text());
    if words.is_empty() {
        return Ok(());
    }
    let built = Builder::new().inventory(&inv).build_cli(&words)?;
    match &built.output {
        Output::Os(os) => {
            let info = os.info();
            println!("os: {} {:?}", info.plugin, info.release);
            let ps = os.processes()?;
            println!("{} processes", ps.len());
            for p in ps.iter().take(10) {
                println!("{:>7} {:>7} {}", p.pid, p.ppid, p.name);
            }
        }
        Output::Target(t) => {
            println!("target: {:?}", t.info);
            println!("memory: {:?}", t.memory.metadata());
        }
    }
    Ok(())
}

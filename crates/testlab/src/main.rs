//! `testlab`: provisions, builds, boots and inspects the real-target scenarios.

use std::io::BufRead;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "testlab",
    about = "memlens real-target test lab (QEMU guests, dumps, ground truth)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List scenarios and whether each is built.
    List,
    /// Build a scenario (or `all`), reusing cached ones unless --force.
    Build {
        /// Scenario name or `all`.
        name: String,
        /// Rebuild even if cached.
        #[arg(long)]
        force: bool,
        /// Scenarios built at once (each QEMU uses about one core).
        #[arg(long, short, default_value_t = 2)]
        jobs: usize,
    },
    /// Boot a scenario's guest and keep it running until Enter or Ctrl-C.
    Boot {
        /// Scenario name.
        name: String,
    },
    /// Print the path of a scenario's truth.json and a summary.
    Truth {
        /// Scenario name.
        name: String,
        /// Print the whole JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Print the lab folder.
    Dir,
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Cmd::List => {
            for s in testlab::SCENARIOS {
                let state = if testlab::Scenario::load_cached(s.name).is_some() {
                    "built"
                } else {
                    "-"
                };
                println!("{:<16} {:<6} {}", s.name, state, s.description);
            }
        }
        Cmd::Dir => println!("{}", testlab::util::lab_dir().display()),
        Cmd::Build { name, force, jobs } => {
            let names: Vec<&str> = if name == "all" {
                testlab::scenarios()
            } else {
                vec![testlab::spec(&name)?.name]
            };
            let queue = std::sync::Mutex::new(names.into_iter());
            let failed = std::sync::Mutex::new(Vec::new());
            std::thread::scope(|scope| {
                for _ in 0..jobs.max(1) {
                    scope.spawn(|| loop {
                        let next = queue.lock().ok().and_then(|mut q| q.next());
                        let Some(n) = next else { break };
                        let t = Instant::now();
                        let r = if force {
                            testlab::rebuild(n)
                        } else {
                            testlab::scenario(n)
                        };
                        match r {
                            Ok(s) => println!(
                                "{n}: ok in {:.1} s -> {}",
                                t.elapsed().as_secs_f64(),
                                s.dir.display()
                            ),
                            Err(e) => {
                                eprintln!(
                                    "{n}: FAILED after {:.1} s: {e}",
                                    t.elapsed().as_secs_f64()
                                );
                                if let Ok(mut f) = failed.lock() {
                                    f.push(n);
                                }
                            }
                        }
                    });
                }
            });
            let failed = failed.into_inner().unwrap_or_default();
            if !failed.is_empty() {
                bail!("failed scenarios: {}", failed.join(", "));
            }
        }
        Cmd::Boot { name } => {
            let g = testlab::boot_live(&name).with_context(|| format!("booting {name}"))?;
            println!("scenario:    {name}");
            println!("qemu pid:    {}", g.pid());
            println!("qmp socket:  {}", g.qmp_socket().display());
            println!("name:        {}", g.name());
            println!("console log: {}", g.console_log().display());
            println!("kernel:      {}", g.guest.kernel_release);
            println!("marker pid:  {}", g.guest.marker.pid);
            println!("running; press Enter (or Ctrl-C) to kill QEMU");
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
        }
        Cmd::Truth { name, json } => {
            testlab::spec(&name)?;
            let s = testlab::Scenario::load_cached(&name).with_context(|| {
                format!("scenario {name} is not built; run `cargo run -p testlab -- build {name}`")
            })?;
            if json {
                println!("{}", std::fs::read_to_string(&s.truth_path)?);
                return Ok(());
            }
            let t = &s.truth;
            println!("truth:        {}", s.truth_path.display());
            println!(
                "kernel:       {} ({})",
                t.guest.kernel_release, t.guest.kernel_cmdline
            );
            println!("processes:    {}", t.guest.processes.len());
            println!(
                "modules:      {}",
                t.guest
                    .modules
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            println!(
                "marker pid:   {} caught on vCPU {:?} after {} stop(s)",
                t.guest.marker.pid, t.monitor.marker_cpu, t.monitor.stop_attempts
            );
            for (k, v) in &t.guest.kallsyms {
                if ["_text", "init_task", "page_offset_base", "__start_BTF"].contains(&k.as_str()) {
                    println!("kallsyms:     {k} = {v:#x}");
                }
            }
            for c in &t.monitor.cpus {
                let g = |r: &str| {
                    c.get(r)
                        .map(|v| format!("{v:#x}"))
                        .unwrap_or_else(|| "?".into())
                };
                println!(
                    "vCPU {}:       CR3={} CR4={} RIP={} PC={}",
                    c.cpu,
                    g("CR3"),
                    g("CR4"),
                    g("RIP"),
                    g("PC")
                );
            }
            for (label, p) in [
                ("raw", &s.raw),
                ("elf", &s.elf),
                ("kdump-flat", &s.kdump_flat),
                ("kdump", &s.kdump),
            ] {
                let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                println!("{label:<13} {} ({} MiB)", p.display(), len >> 20);
            }
            if let Some(v) = &s.vmlinux {
                println!("vmlinux:      {}", v.display());
            }
        }
    }
    Ok(())
}

//! `memlens translate` and `memlens pagemap`: page-table walks over a target's physical
//! memory, with the root and architecture given (`--dtb`, `--arch`) or taken from the
//! target's recorded CPU registers (a dump's notes, QEMU's monitor).

use memlens::core::{PhysAddr, VirtAddr};
use memlens_arch::types::Roots;
use memlens_arch::view::VirtualView;
use memlens_arch::{Mmu, PageMapOptions};

use crate::exit::CliError;
use crate::output::FormatArgs;
use crate::target::TargetArgs;

/// Where the page tables are.
#[derive(clap::Args, Debug, Clone)]
pub struct WalkArgs {
    /// Page-table root (CR3 / TTBR; for aarch64 `TTBR0[,TTBR1]`). Default: the target's registers.
    #[arg(long, value_name = "ROOT")]
    pub dtb: Option<String>,
    /// Architecture (the list is generated from `memlens_arch::ARCH_NAMES`).
    #[arg(long, help = arch_help())]
    pub arch: Option<String>,
    /// The vCPU whose registers give the defaults.
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
}

/// The `--arch` help: every name `Mmu::from_name` accepts, so the list cannot drift.
fn arch_help() -> String {
    format!(
        "Architecture: {}. Default: from the target's registers; x86_64 when the target \
         records none",
        memlens_arch::ARCH_NAMES.join(", ")
    )
}

/// Resolves the MMU and roots for `t`. Registers that exist but cannot be decoded (an
/// aarch64 dump without TTBRs, an unknown register set) are an error unless `--arch` and
/// `--dtb` replace what they would have given: guessing x86_64 there would walk the
/// tables of another architecture and print nonsense.
pub fn mmu_and_roots(
    t: &memlens::core::PhysicalTarget,
    w: &WalkArgs,
) -> Result<(Mmu, Roots), CliError> {
    let regs = t.cpu.as_ref().and_then(|c| c.registers(w.cpu).ok());
    let from_regs = regs.as_ref().map(Mmu::from_registers);
    let undecodable = |e: &memlens_arch::ArchError, what: &str, hint: &'static str| {
        CliError::target_hint(
            anyhow::anyhow!("cannot take the {what} from cpu {}'s registers: {e}", w.cpu),
            hint,
        )
    };
    let mmu = match (&w.arch, &from_regs) {
        (Some(name), _) => {
            Mmu::from_name(name).map_err(|e| CliError::usage(e.to_string(), None))?
        }
        (None, Some(Ok((m, _)))) => *m,
        (None, Some(Err(e))) => {
            return Err(undecodable(
                e,
                "architecture",
                "give --arch NAME (see --help) and --dtb ROOT",
            ))
        }
        (None, None) => {
            Mmu::from_name("x86_64").map_err(|e| CliError::usage(e.to_string(), None))?
        }
    };
    let roots = match (&w.dtb, from_regs) {
        (Some(s), _) => {
            let parts: Vec<&str> = s.split(',').collect();
            let parse = |v: &str| {
                memlens::core::addr::parse_u64(v)
                    .map(|x| PhysAddr(mmu.mask_root(x)))
                    .map_err(|e| {
                        CliError::usage(format!("bad --dtb: {e}"), Some("e.g. --dtb 0x1c0a000"))
                    })
            };
            match parts.as_slice() {
                [one] => Roots::single(parse(one)?),
                [lo, hi] => Roots {
                    lower: parse(lo)?,
                    upper: parse(hi)?,
                },
                _ => return Err(CliError::usage("--dtb takes ROOT or TTBR0,TTBR1", None)),
            }
        }
        (None, Some(Ok((_, roots)))) => roots,
        (None, Some(Err(e))) => {
            return Err(undecodable(
                &e,
                "page-table root",
                "give --dtb ROOT (a CR3 value, or TTBR0,TTBR1 for aarch64)",
            ))
        }
        (None, None) => {
            return Err(CliError::usage(
                "no page-table root: the target records no CPU registers",
                Some("give --dtb ROOT (a CR3 or TTBR value)"),
            ))
        }
    };
    Ok((mmu, roots))
}

/// Arguments of `translate`.
#[derive(clap::Args, Debug)]
pub struct TranslateArgs {
    /// A dump file, then one or more virtual addresses.
    #[arg(value_name = "ARGS", num_args = 1.., required = true)]
    positional: Vec<String>,
    #[command(flatten)]
    chain: crate::target::ChainArgs,
    #[command(flatten)]
    walk: WalkArgs,
    #[command(flatten)]
    format: FormatArgs,
}

/// Runs `translate`.
pub fn translate(
    a: TranslateArgs,
    metrics: &mut crate::plugins::ChainMetrics,
) -> Result<(), CliError> {
    // With a chain, every positional is an address; otherwise the first is the dump.
    let (path, addrs) = if a.chain.chain.is_empty() {
        match a.positional.split_first() {
            Some((p, rest)) if !rest.is_empty() => (Some(p.into()), rest),
            _ => return Err(CliError::usage("expected TARGET VA...", None)),
        }
    } else {
        (None, a.positional.as_slice())
    };
    let vas = addrs
        .iter()
        .map(|s| {
            memlens::core::addr::parse_u64(s)
                .map(VirtAddr)
                .map_err(|e| CliError::usage(format!("bad address: {e}"), None))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let t = crate::target::open_physical(&a.chain.with_path(path), metrics)?;
    let (mmu, roots) = mmu_and_roots(&t, &a.walk)?;
    let view = VirtualView::new(t.memory.clone(), mmu, roots);
    let rows = memlens_arch::report::translate_rows(&view, &vas);
    if a.format.json {
        return crate::output::print_json(&rows);
    }
    print!("{}", memlens_arch::report::render_translations(&rows));
    if rows.iter().any(|r| r.error.is_some()) {
        return Err(CliError::target(anyhow::anyhow!(
            "some addresses are not mapped"
        )));
    }
    Ok(())
}

/// Arguments of `pagemap`.
#[derive(clap::Args, Debug)]
pub struct PageMapArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    walk: WalkArgs,
    /// Only ranges intersecting START-END (virtual, inclusive).
    #[arg(long, value_name = "START-END")]
    range: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `pagemap`.
pub fn pagemap(a: PageMapArgs, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let range = match &a.range {
        None => None,
        Some(r) => {
            let (s, e) = r
                .split_once('-')
                .ok_or_else(|| CliError::usage("--range takes START-END", None))?;
            let p = |v: &str| {
                memlens::core::addr::parse_u64(v)
                    .map(VirtAddr)
                    .map_err(|e| CliError::usage(format!("bad --range: {e}"), None))
            };
            Some((p(s)?, p(e)?))
        }
    };
    let t = crate::target::open_physical(&a.target, metrics)?;
    let (mmu, roots) = mmu_and_roots(&t, &a.walk)?;
    let opts = PageMapOptions {
        range,
        ..PageMapOptions::default()
    };
    let pm = memlens_arch::page_map(&*t.memory, &mmu, &roots, &opts);
    if a.json {
        return crate::output::print_json(&pm);
    }
    print!("{}", memlens_arch::report::render_page_map(&pm));
    Ok(())
}

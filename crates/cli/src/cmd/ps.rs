//! `memlens ps [TARGET]`: the processes of the target's OS (the host when no target).

use std::collections::BTreeMap;

use memlens::core::ProcessInfo;

use crate::exit::CliError;
use crate::output::{Format, FormatArgs, Table};
use crate::target::TargetArgs;

/// Arguments of `ps`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    target: TargetArgs,
    /// Show the parent/child tree (indented up to 32 levels; deeper ones show their extra
    /// depth as `…(+N)`).
    #[arg(long)]
    tree: bool,
    /// Hide kernel threads.
    #[arg(long)]
    no_kernel_threads: bool,
    #[command(flatten)]
    format: FormatArgs,
}

/// Runs `ps`.
pub fn run(a: Args, metrics: &mut crate::plugins::ChainMetrics) -> Result<(), CliError> {
    let os = crate::target::open_os(&a.target, metrics)?;
    let mut procs = os.processes().map_err(CliError::target)?;
    if a.no_kernel_threads {
        procs.retain(|p| !p.kernel_thread);
    }
    let format = a.format.format();
    if format == Format::Json {
        return crate::output::print_json(&procs);
    }
    let mut t = Table::new(vec![
        "PID", "PPID", "UID", "STATE", "THR", "NAME", "COMMAND",
    ]);
    let order: Vec<(usize, &ProcessInfo)> = if a.tree {
        tree_order(&procs)
    } else {
        procs.iter().map(|p| (0, p)).collect()
    };
    for (depth, p) in order {
        let name = format!(
            "{}{}",
            indent(depth),
            if p.kernel_thread {
                format!("[{}]", p.name)
            } else {
                p.name.clone()
            }
        );
        t.row(vec![
            p.pid.to_string(),
            p.ppid.to_string(),
            p.uid.map_or(String::new(), |u| u.to_string()),
            p.state.clone().unwrap_or_default(),
            p.threads.map_or(String::new(), |n| n.to_string()),
            name,
            p.cmdline.as_ref().map(|c| c.join(" ")).unwrap_or_default(),
        ]);
    }
    t.print(format)
}

/// Deepest tree level shown by indentation: parent links come from the target, and a
/// chain of a million processes would otherwise print a million-space indent on each of a
/// million lines (terabytes of output).
pub const MAX_INDENT: usize = 32;

/// Two spaces per level up to [`MAX_INDENT`], then the levels left as `…(+N)`.
fn indent(depth: usize) -> String {
    let mut s = "  ".repeat(depth.min(MAX_INDENT));
    if depth > MAX_INDENT {
        s.push_str(&format!("…(+{}) ", depth - MAX_INDENT));
    }
    s
}

/// Depth-first order of the process tree; processes whose parent is missing are roots.
/// Bounded: every process is emitted once, so a corrupt parent cycle cannot loop.
fn tree_order(procs: &[ProcessInfo]) -> Vec<(usize, &ProcessInfo)> {
    let pids: std::collections::HashSet<u32> = procs.iter().map(|p| p.pid).collect();
    let mut children: BTreeMap<u32, Vec<&ProcessInfo>> = BTreeMap::new();
    let mut roots = Vec::new();
    for p in procs {
        if p.ppid != p.pid && pids.contains(&p.ppid) {
            children.entry(p.ppid).or_default().push(p);
        } else {
            roots.push(p);
        }
    }
    let mut out = Vec::with_capacity(procs.len());
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<(usize, &ProcessInfo)> = roots.into_iter().rev().map(|p| (0, p)).collect();
    while let Some((d, p)) = stack.pop() {
        if !seen.insert(p.pid) {
            continue;
        }
        out.push((d, p));
        if let Some(kids) = children.get(&p.pid) {
            stack.extend(kids.iter().rev().map(|k| (d + 1, *k)));
        }
    }
    // Members of a parent cycle are unreachable from any root: list them flat.
    for p in procs {
        if !seen.contains(&p.pid) {
            seen.insert(p.pid);
            out.push((0, p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            name: format!("p{pid}"),
            ..Default::default()
        }
    }

    #[test]
    fn tree_handles_orphans_and_cycles() {
        let procs = vec![p(1, 0), p(2, 1), p(3, 2), p(4, 1), p(7, 8), p(8, 7)];
        let order: Vec<(usize, u32)> = tree_order(&procs)
            .into_iter()
            .map(|(d, p)| (d, p.pid))
            .collect();
        assert_eq!(order, vec![(0, 1), (1, 2), (2, 3), (1, 4), (0, 7), (0, 8)]);
    }

    /// A forged chain of 100 000 parents: the order is found in one pass and no line is
    /// indented by more than MAX_INDENT levels plus a depth marker.
    #[test]
    fn deep_chains_have_a_bounded_indent() {
        let procs: Vec<ProcessInfo> = (1..=100_000).map(|i| p(i, i - 1)).collect();
        let order = tree_order(&procs);
        assert_eq!(order.len(), procs.len());
        assert_eq!(
            order.last().map(|(d, p)| (*d, p.pid)),
            Some((99_999, 100_000))
        );
        assert_eq!(indent(2), "    ");
        assert_eq!(indent(MAX_INDENT), "  ".repeat(MAX_INDENT));
        let deepest = indent(99_999);
        assert_eq!(
            deepest,
            format!("{}…(+{}) ", "  ".repeat(MAX_INDENT), 99_999 - MAX_INDENT)
        );
        assert!(order.iter().all(|(d, _)| indent(*d).len() <= deepest.len()));
    }
}

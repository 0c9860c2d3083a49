//! `--help` of every command, pinned with insta snapshots (regenerate with
//! `INSTA_UPDATE=always cargo test -p memlens-cli --test help` and review the diff).

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args(args)
        .arg("--help")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .output()
        .expect("run memlens");
    assert!(
        out.status.success(),
        "{args:?} --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// Every command with its own help, in the order of `docs/cli.md` (the top level first).
const COMMANDS: &[&[&str]] = &[
    &[],
    &["info"],
    &["ps"],
    &["maps"],
    &["modules"],
    &["read"],
    &["dump"],
    &["search"],
    &["strings"],
    &["write"],
    &["translate"],
    &["pagemap"],
    &["plugins", "list"],
    &["plugins", "help"],
    &["plugins", "targets"],
    &["bench", "phys"],
    &["bench", "walk"],
    &["bench", "translate"],
    &["bench", "virt"],
    &["bench", "search"],
    &["bench", "cli"],
    &["completions"],
];

macro_rules! help_snapshot {
    ($name:ident, $($arg:literal),*) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(help(&[$($arg),*]));
        }
    };
}

help_snapshot!(top_level,);
help_snapshot!(info, "info");
help_snapshot!(ps, "ps");
help_snapshot!(maps, "maps");
help_snapshot!(modules, "modules");
help_snapshot!(read, "read");
help_snapshot!(search, "search");
help_snapshot!(write, "write");
help_snapshot!(translate, "translate");
help_snapshot!(pagemap, "pagemap");
help_snapshot!(plugins, "plugins");
help_snapshot!(plugins_list, "plugins", "list");
help_snapshot!(bench_walk, "bench", "walk");
help_snapshot!(bench_virt, "bench", "virt");
help_snapshot!(completions, "completions");
help_snapshot!(bench, "bench");
help_snapshot!(bench_phys, "bench", "phys");
help_snapshot!(bench_search, "bench", "search");
help_snapshot!(bench_cli, "bench", "cli");
help_snapshot!(dump, "dump");
help_snapshot!(strings, "strings");

#[test]
fn every_command_has_an_example() {
    for cmd in COMMANDS.iter().filter(|c| !c.is_empty()) {
        let h = help(cmd);
        let examples = h.split("Example").nth(1).unwrap_or("");
        assert!(
            examples.contains("memlens "),
            "`memlens {} --help` shows no example:\n{h}",
            cmd.join(" ")
        );
    }
}

/// `docs/cli.md` is generated from the clap definitions (every command's `--help`); this
/// test fails when it drifts. Regenerate with `MEMLENS_REGEN_DOCS=1 cargo test -p
/// memlens-cli --test help`.
#[test]
fn docs_cli_md_is_current() {
    let mut doc = String::from(
        "# memlens command line\n\n<!-- Generated from the clap definitions by crates/cli/tests/help.rs; \
         do not edit. Regenerate: MEMLENS_REGEN_DOCS=1 cargo test -p memlens-cli --test help -->\n",
    );
    for c in COMMANDS {
        let title = if c.is_empty() {
            "memlens".to_string()
        } else {
            format!("memlens {}", c.join(" "))
        };
        doc.push_str(&format!("\n## `{title}`\n\n```text\n{}```\n", help(c)));
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    if std::env::var_os("MEMLENS_REGEN_DOCS").is_some() {
        std::fs::write(&path, &doc).expect("write docs/cli.md");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(on_disk == doc, "docs/cli.md is out of date; regenerate with MEMLENS_REGEN_DOCS=1 cargo test -p memlens-cli --test help");
}

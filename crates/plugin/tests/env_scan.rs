//! `Inventory::scan` uses `$MEMLENS_PLUGIN_PATH` (absolute entries only) before the fixed
//! directories. (Own test binary: it sets a process-wide environment variable.)

mod common;

use common::*;
use memlens_plugin::inventory::default_search_paths;
use memlens_plugin::{Inventory, PluginKind};

#[test]
fn scan_uses_the_environment_path_first_and_never_the_current_directory() {
    let a = plugin_dir(&[TESTCONN]);
    let b = plugin_dir(&[TESTOS]);
    let joined =
        std::env::join_paths([a.path(), std::path::Path::new("relative/dir"), b.path()]).unwrap();
    std::env::set_var("MEMLENS_PLUGIN_PATH", &joined);
    let (paths, warnings) = default_search_paths();
    assert_eq!(paths[0], a.path());
    assert_eq!(paths[1], b.path());
    assert!(warnings[0].contains("relative/dir"), "{warnings:?}");
    let cwd = std::env::current_dir().unwrap();
    assert!(!paths.contains(&cwd) || cwd == std::env::current_exe().unwrap().parent().unwrap());
    assert!(paths.iter().any(|p| p.ends_with(".local/lib/memlens")));
    assert!(paths.contains(&"/usr/lib/memlens".into()));
    assert_eq!(
        paths.last().unwrap(),
        std::env::current_exe().unwrap().parent().unwrap()
    );
    let inv = Inventory::scan();
    assert_eq!(
        inv.find(PluginKind::Connector, "testconn").unwrap().path,
        a.path().join(TESTCONN)
    );
    assert_eq!(
        inv.find(PluginKind::Os, "testos").unwrap().path,
        b.path().join(TESTOS)
    );
    assert!(inv.warnings.iter().any(|w| w.contains("relative/dir")));
}

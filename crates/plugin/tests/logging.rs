//! Log records emitted inside a loaded plugin reach the host's logger, filtered by the
//! host's level. (Own test binary: it installs the process-wide logger.)

mod common;

use std::sync::Mutex;

use common::*;
use log::{Level, LevelFilter, Log, Metadata, Record};
use memlens_plugin::{Builder, Inventory};

struct Capture(Mutex<Vec<(Level, String, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((r.level(), r.target().to_string(), r.args().to_string()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn plugin_logs_reach_the_host_with_its_level() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(LevelFilter::Info);
    let d = plugin_dir(&[TESTCONN]);
    let inv = Inventory::scan_paths(&[d.path().to_path_buf()]);
    let b = Builder::new().inventory(&inv);
    b.build_cli(&["-c", "testconn::1MiB,log"]).unwrap();
    let got: Vec<_> = CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t, _)| t == "testconn")
        .cloned()
        .collect();
    assert_eq!(
        got,
        [
            (
                Level::Error,
                "testconn".into(),
                "log record at error".into()
            ),
            (Level::Warn, "testconn".into(), "log record at warn".into()),
            (Level::Info, "testconn".into(), "log record at info".into()),
        ]
    );
    // Raising the host's level reaches the plugin at its next create call.
    log::set_max_level(LevelFilter::Trace);
    CAPTURE.0.lock().unwrap().clear();
    b.build_cli(&["-c", "testconn::1MiB,log"]).unwrap();
    let n = CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t, _)| t == "testconn")
        .count();
    assert_eq!(n, 5);
}

//! A child process with known memory content (the crate's `memlens-native-testchild`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A running test child; killed on drop.
pub struct TestChild {
    pub child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub file: tempfile::NamedTempFile,
    pub file_content: Vec<u8>,
    pub values: HashMap<String, String>,
}

impl TestChild {
    pub fn spawn() -> TestChild {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        let mut content = b"MEMLENS-NATIVE-FILE-".to_vec();
        content.extend((0..3 * 4096u32).map(|i| (i % 251) as u8));
        file.write_all(&content).expect("write temp file");
        file.flush().expect("flush");
        let mut child = Command::new(env!("CARGO_BIN_EXE_memlens-native-testchild"))
            .arg(file.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn memlens-native-testchild");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("ready line");
        assert!(line.starts_with("ready "), "unexpected first line {line:?}");
        let values = line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TestChild {
            child,
            stdin,
            stdout,
            file,
            file_content: content,
            values,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A hex or decimal value from the ready line.
    pub fn num(&self, key: &str) -> u64 {
        let v = self.values.get(key).unwrap_or_else(|| panic!("no {key}"));
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).expect("hex"),
            None => v.parse().expect("number"),
        }
    }

    /// Sends a command and returns the reply line.
    pub fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").expect("send command");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reply");
        line.trim_end().to_string()
    }

    /// The heap string the child started with.
    pub fn heap_text(&self) -> String {
        format!("MEMLENS-NATIVE-HEAP-{}-0123456789abcdef", self.pid())
    }
}

impl Drop for TestChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A minimal QMP client. **Key decision: connect per request, never hold the socket.**
//! QEMU serves one QMP client at a time; holding a connection for the connector's lifetime
//! would lock out every other tool (and our own tests' monitor). A request costs one
//! connect + greeting + `qmp_capabilities` (about a millisecond locally).
//!
//! Wire format: newline-delimited JSON; asynchronous `event` messages are skipped while
//! waiting for a reply. Every read has a timeout, so a busy or dead socket is an error
//! naming the socket, never a hang.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::QemuError;

/// Default time allowed for each QMP exchange.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A QMP endpoint (a Unix socket path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpSocket {
    path: PathBuf,
    timeout: Duration,
}

struct Session {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl QmpSocket {
    /// An endpoint at `path` with the default timeout.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: TIMEOUT,
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: impl Into<String>) -> QemuError {
        QemuError::Qmp {
            socket: self.path.clone(),
            what: what.into(),
        }
    }

    fn connect(&self) -> Result<Session, QemuError> {
        let s = UnixStream::connect(&self.path).map_err(|e| {
            self.err(format!(
                "cannot connect: {e} (is QEMU running with -qmp unix:{},server=on,wait=off, and may this user open the socket?)",
                self.path.display()
            ))
        })?;
        s.set_read_timeout(Some(self.timeout))
            .and_then(|_| s.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.err(format!("cannot set timeouts: {e}")))?;
        let writer = s
            .try_clone()
            .map_err(|e| self.err(format!("cannot clone the socket: {e}")))?;
        let mut sess = Session {
            reader: BufReader::new(s),
            writer,
        };
        let greeting = self.read_message(&mut sess).map_err(|e| match e {
            QemuError::Qmp { what, .. } => self.err(format!(
                "no greeting ({what}); QEMU serves one QMP client at a time — another client may hold the socket"
            )),
            e => e,
        })?;
        if greeting.get("QMP").is_none() {
            return Err(self.err(format!("unexpected greeting {greeting}")));
        }
        self.exchange(&mut sess, &json!({"execute": "qmp_capabilities"}))?;
        Ok(sess)
    }

    fn read_message(&self, sess: &mut Session) -> Result<Value, QemuError> {
        let mut line = String::new();
        // Bounded: at most 1000 event messages are skipped before a reply.
        for _ in 0..1000 {
            line.clear();
            let n = sess
                .reader
                .read_line(&mut line)
                .map_err(|e| self.err(format!("read failed: {e}")))?;
            if n == 0 {
                return Err(self.err("QEMU closed the connection"));
            }
            let v: Value = serde_json::from_str(line.trim())
                .map_err(|e| self.err(format!("invalid JSON from QEMU ({e}): {line:?}")))?;
            if v.get("event").is_none() {
                return Ok(v);
            }
        }
        Err(self.err("more than 1000 events without a reply"))
    }

    fn exchange(&self, sess: &mut Session, cmd: &Value) -> Result<Value, QemuError> {
        let mut text = cmd.to_string();
        text.push('\n');
        sess.writer
            .write_all(text.as_bytes())
            .map_err(|e| self.err(format!("write failed: {e}")))?;
        let reply = self.read_message(sess)?;
        if let Some(e) = reply.get("error") {
            return Err(self.err(format!("command {cmd} failed: {e}")));
        }
        reply
            .get("return")
            .cloned()
            .ok_or_else(|| self.err(format!("reply without 'return': {reply}")))
    }

    /// Runs one QMP command (`execute` with optional `arguments`) and returns `return`.
    pub fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value, QemuError> {
        let mut sess = self.connect()?;
        let mut cmd = json!({ "execute": command });
        if let Some(a) = arguments {
            cmd["arguments"] = a;
        }
        self.exchange(&mut sess, &cmd)
    }

    /// Runs a human monitor command and returns its text.
    pub fn hmp(&self, command_line: &str) -> Result<String, QemuError> {
        let r = self.execute(
            "human-monitor-command",
            Some(json!({ "command-line": command_line })),
        )?;
        r.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(format!("'{command_line}' returned {r}, not text")))
    }

    /// Number of vCPUs (`query-cpus-fast`).
    pub fn cpu_count(&self) -> Result<usize, QemuError> {
        let r = self.execute("query-cpus-fast", None)?;
        r.as_array()
            .map(Vec::len)
            .ok_or_else(|| self.err(format!("query-cpus-fast returned {r}")))
    }

    /// Whether the guest is running (`query-status`).
    pub fn running(&self) -> Result<bool, QemuError> {
        let r = self.execute("query-status", None)?;
        r.get("running")
            .and_then(Value::as_bool)
            .ok_or_else(|| self.err(format!("query-status returned {r}")))
    }
}

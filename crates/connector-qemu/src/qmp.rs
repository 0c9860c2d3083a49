//! A minimal QMP client. **Key decision: connect per request, never hold the socket.**
//! QEMU serves one QMP client at a time; holding a connection for the connector's lifetime
//! would lock out every other tool (and our own tests' monitor). A request costs one
//! connect + greeting + `qmp_capabilities` (about a millisecond locally).
//!
//! Wire format: newline-delimited JSON; asynchronous `event` messages are skipped while
//! waiting for a reply. Every exchange has a deadline (each read waits only for the time
//! left of it), so a busy, dead or slowly dripping socket is an error naming the socket,
//! never a hang; and a line is read up to [`MAX_LINE`] bytes, so a reply without end is
//! an error, not an ever-growing buffer.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::QemuError;

/// Default time allowed for each QMP exchange.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Longest QMP message line read: `info registers -a` of a few hundred vCPUs or `info
/// mtree -f` of a large machine is a few MiB; a longer line is refused.
pub const MAX_LINE: u64 = 16 << 20;

/// Most vCPUs taken from `query-cpus-fast`: the count sizes per-vCPU work of callers.
pub const MAX_VCPUS: usize = 4096;

/// The socket, read with a deadline: each read waits at most for the time left.
struct Deadlined {
    stream: UnixStream,
    deadline: Instant,
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}
/// A QMP endpoint (a Unix socket path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpSocket {
    path: PathBuf,
    timeout: Duration,
}

struct Session {
    reader: BufReader<Deadlined>,
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

    /// The same endpoint with another time allowed for each exchange.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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
            reader: BufReader::new(Deadlined {
                stream: s,
                deadline: Instant::now() + self.timeout,
            }),
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
        let mut line = Vec::new();
        // Bounded: at most 1000 event messages are skipped before a reply.
        for _ in 0..1000 {
            line.clear();
            let n = (&mut sess.reader)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        self.err(format!("no complete reply within {:?}", self.timeout))
                    }
                    _ => self.err(format!("read failed: {e}")),
                })?;
            if n == 0 {
                return Err(self.err("QEMU closed the connection"));
            }
            if line.last() != Some(&b'\n') {
                return Err(self.err(if line.len() as u64 > MAX_LINE {
                    format!("a reply line is longer than {MAX_LINE} bytes")
                } else {
                    "QEMU closed the connection in the middle of a reply".into()
                }));
            }
            let v: Value = serde_json::from_slice(line.trim_ascii()).map_err(|e| {
                let start = String::from_utf8_lossy(&line[..line.len().min(200)]);
                self.err(format!("invalid JSON from QEMU ({e}): {start:?}"))
            })?;
            if v.get("event").is_none() {
                return Ok(v);
            }
        }
        Err(self.err("more than 1000 events without a reply"))
    }

    fn exchange(&self, sess: &mut Session, cmd: &Value) -> Result<Value, QemuError> {
        sess.reader.get_mut().deadline = Instant::now() + self.timeout;
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

    /// Number of vCPUs (`query-cpus-fast`), at most [`MAX_VCPUS`].
    pub fn cpu_count(&self) -> Result<usize, QemuError> {
        let r = self.execute("query-cpus-fast", None)?;
        r.as_array()
            .map(|a| a.len().min(MAX_VCPUS))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake QEMU on a fresh socket: greets, accepts `qmp_capabilities`, then answers
    /// the next command with `reply` (raw bytes, written in pieces of `piece` bytes with
    /// `pause` between them).
    fn fake(
        reply: Vec<u8>,
        piece: usize,
        pause: Duration,
    ) -> (QmpSocket, std::thread::JoinHandle<()>) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("memlens-qmp-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let _ = w.write_all(b"{\"QMP\": {}}\n");
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = w.write_all(b"{\"return\": {}}\n");
            line.clear();
            let _ = r.read_line(&mut line);
            for p in reply.chunks(piece.max(1)) {
                if w.write_all(p).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        });
        (QmpSocket::new(path), t)
    }

    #[test]
    fn a_reply_line_without_end_is_refused_at_the_cap() {
        let endless = vec![b' '; MAX_LINE as usize + 4096];
        let (q, t) = fake(endless, 1 << 20, Duration::ZERO);
        let e = q.execute("query-status", None).unwrap_err().to_string();
        assert!(e.contains("longer than 16777216 bytes"), "{e}");
        drop(q);
        let _ = t.join();
    }

    #[test]
    fn a_dripping_reply_ends_at_the_deadline() {
        let drip = b"{\"return\": [1, 2, 3, 4, 5, 6, 7, 8, 9]}\n".to_vec();
        let (q, t) = fake(drip, 1, Duration::from_millis(100));
        let q = q.with_timeout(Duration::from_millis(500));
        let start = Instant::now();
        let e = q.execute("query-cpus-fast", None).unwrap_err().to_string();
        assert!(e.contains("no complete reply within"), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        let _ = t.join();
    }

    #[test]
    fn vcpu_counts_are_clamped() {
        let many = format!(
            "{{\"return\": [{}]}}\n",
            vec!["{}"; MAX_VCPUS + 5].join(",")
        );
        let (q, t) = fake(many.into_bytes(), 1 << 20, Duration::ZERO);
        assert_eq!(q.cpu_count().unwrap(), MAX_VCPUS);
        let _ = t.join();
    }
}

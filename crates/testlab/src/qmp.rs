//! A small synchronous QMP client.
//!
//! Key decision: blocking I/O on a Unix socket, one command in flight at a time. QMP replies
//! arrive in order; asynchronous `event` messages interleave and are collected, not
//! treated as replies. No async runtime is pulled into every test that boots a guest.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Format of `dump-guest-memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// ELF core file with one `PT_LOAD` per RAM block (`paging=false`).
    Elf,
    /// makedumpfile *flattened* format, zlib-compressed pages (QEMU's `kdump-zlib`).
    KdumpZlib,
}

impl DumpFormat {
    /// The QMP name of the format.
    pub fn qmp_name(self) -> &'static str {
        match self {
            DumpFormat::Elf => "elf",
            DumpFormat::KdumpZlib => "kdump-zlib",
        }
    }
}

/// A connected QMP session (capabilities already negotiated).
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    path: PathBuf,
    /// Asynchronous events received so far (oldest first).
    pub events: Vec<Value>,
    /// The greeting's `QMP.version` object.
    pub version: Value,
}

impl Qmp {
    /// Connects to a QMP socket, retrying for up to `timeout` while QEMU creates it.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if start.elapsed() < timeout => {
                    log::trace!("QMP connect {}: {e}; retrying", path.display());
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(Error::Qmp {
                        command: "connect".into(),
                        detail: format!("{}: {e}", path.display()),
                    })
                }
            }
        };
        // Dumping a 4 GiB guest takes a while: be generous, but never hang forever.
        let io_timeout = Some(Duration::from_secs(900));
        let to_err = |e: std::io::Error| Error::Qmp {
            command: "connect".into(),
            detail: e.to_string(),
        };
        stream.set_read_timeout(io_timeout).map_err(to_err)?;
        stream.set_write_timeout(io_timeout).map_err(to_err)?;
        let writer = stream.try_clone().map_err(to_err)?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            path: path.into(),
            events: Vec::new(),
            version: Value::Null,
        };
        let greeting = qmp.read_message("greeting")?;
        qmp.version = greeting
            .get("QMP")
            .and_then(|q| q.get("version"))
            .cloned()
            .ok_or_else(|| {
                Error::parse(
                    "QMP greeting",
                    "an object with QMP.version",
                    &greeting.to_string(),
                )
            })?;
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// The socket this client is connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_message(&mut self, command: &str) -> Result<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(|e| Error::Qmp {
            command: command.into(),
            detail: format!("read: {e}"),
        })?;
        if n == 0 {
            return Err(Error::Qmp {
                command: command.into(),
                detail: "QEMU closed the QMP socket".into(),
            });
        }
        serde_json::from_str(&line).map_err(|_| {
            Error::parse(
                format!("QMP reply to {command}"),
                "one JSON object per line",
                line.trim(),
            )
        })
    }

    /// Sends a command and waits for its reply; returns the `return` value. A QMP `error`
    /// reply becomes [`Error::Qmp`] with its class and description.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        log::debug!("QMP -> {msg}");
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(|e| Error::Qmp {
                command: command.into(),
                detail: format!("write: {e}"),
            })?;
        loop {
            let reply = self.read_message(command)?;
            if reply.get("event").is_some() {
                log::debug!("QMP event {reply}");
                self.events.push(reply);
                continue;
            }
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                let class = e.get("class").and_then(Value::as_str).unwrap_or("?");
                let desc = e.get("desc").and_then(Value::as_str).unwrap_or("?");
                return Err(Error::Qmp {
                    command: command.into(),
                    detail: format!("{class}: {desc}"),
                });
            }
            return Err(Error::parse(
                format!("QMP reply to {command}"),
                "`return`, `error` or `event`",
                &reply.to_string(),
            ));
        }
    }

    /// Pauses all vCPUs (`stop`).
    pub fn stop(&mut self) -> Result<()> {
        self.execute("stop", None).map(drop)
    }

    /// Resumes the guest (`cont`).
    pub fn cont(&mut self) -> Result<()> {
        self.execute("cont", None).map(drop)
    }

    /// Whether the guest is running (`query-status`).
    pub fn running(&mut self) -> Result<bool> {
        let s = self.execute("query-status", None)?;
        s.get("running").and_then(Value::as_bool).ok_or_else(|| {
            Error::parse("query-status reply", "a `running` boolean", &s.to_string())
        })
    }

    /// Runs a human monitor command (e.g. `info registers -a`) and returns its text output.
    pub fn hmp(&mut self, command_line: &str) -> Result<String> {
        self.hmp_inner(command_line, None)
    }

    /// Runs a human monitor command with vCPU `cpu` selected (matters for `gva2gpa`, `x`,
    /// `info registers`, which use the current CPU's state).
    pub fn hmp_on_cpu(&mut self, command_line: &str, cpu: u32) -> Result<String> {
        self.hmp_inner(command_line, Some(cpu))
    }

    fn hmp_inner(&mut self, command_line: &str, cpu: Option<u32>) -> Result<String> {
        let mut args = json!({ "command-line": command_line });
        if let Some(c) = cpu {
            args["cpu-index"] = json!(c);
        }
        let r = self.execute("human-monitor-command", Some(args))?;
        r.as_str().map(|s| s.replace("\r\n", "\n")).ok_or_else(|| {
            Error::parse(
                format!("reply to HMP `{command_line}`"),
                "a string",
                &r.to_string(),
            )
        })
    }

    /// Writes all guest memory to `path` (synchronously; the guest is paused meanwhile).
    /// QEMU creates the file with mode 0400; an existing file is replaced.
    pub fn dump_guest_memory(&mut self, path: &Path, format: DumpFormat) -> Result<()> {
        let _ = std::fs::remove_file(path);
        let proto = format!("file:{}", path.display());
        self.execute(
            "dump-guest-memory",
            Some(json!({ "paging": false, "protocol": proto, "format": format.qmp_name() })),
        )
        .map(drop)
    }

    /// Translates a guest-virtual address with vCPU `cpu`'s page tables (`gva2gpa`).
    /// `Ok(None)` when QEMU says the address is unmapped.
    pub fn gva2gpa(&mut self, va: u64, cpu: u32) -> Result<Option<u64>> {
        let out = self.hmp_on_cpu(&format!("gva2gpa {va:#x}"), cpu)?;
        parse_gva2gpa(&out)
    }

    /// Reads one 64-bit value at a guest-virtual address through vCPU `cpu` (`x /1gx`).
    pub fn read_virt_u64(&mut self, va: u64, cpu: u32) -> Result<Option<u64>> {
        let out = self.hmp_on_cpu(&format!("x /1gx {va:#x}"), cpu)?;
        // "ffffffff82a1b2c0: 0xffff888000000000"
        let Some((_, v)) = out.trim().split_once(": ") else {
            return Ok(None);
        };
        let v = v.trim();
        match v
            .strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        {
            Some(x) => Ok(Some(x)),
            None => Err(Error::parse(
                "`x /1gx` output",
                "`ADDR: 0xVALUE`",
                out.trim(),
            )),
        }
    }

    /// Ends QEMU (`quit`); the socket closes afterwards.
    pub fn quit(&mut self) -> Result<()> {
        match self.execute("quit", None) {
            Ok(_) => Ok(()),
            // QEMU may close the socket before the reply is read.
            Err(Error::Qmp { detail, .. }) if detail.contains("closed") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Parses `gva2gpa` output: `gpa: 0x1234` or `Unmapped`.
pub fn parse_gva2gpa(out: &str) -> Result<Option<u64>> {
    let t = out.trim();
    if t.is_empty() || t.contains("Unmapped") || t.contains("unmapped") {
        return Ok(None);
    }
    t.strip_prefix("gpa:")
        .map(str::trim)
        .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
        .map(Some)
        .ok_or_else(|| Error::parse("gva2gpa output", "`gpa: 0xADDR` or `Unmapped`", t))
}

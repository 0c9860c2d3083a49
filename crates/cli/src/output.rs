//! Output helpers: hexdumps and JSON.

use std::io::Write;

use serde::Serialize;

use crate::exit::CliError;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| match e.io_error_kind() {
        Some(kind) => write_error(std::io::Error::from(kind)),
        None => CliError::target(e),
    })?;
    writeln!(out)
        .and_then(|()| out.flush())
        .map_err(write_error)?;
    Ok(())
}

/// A JSON array of the items of an iterator, serialised as they come (for listings too
/// long to hold): the same text as the array of a `Vec`. Serialises once.
pub struct JsonSeq<I>(std::cell::RefCell<Option<I>>);

impl<I> JsonSeq<I> {
    /// The array of `items`.
    pub fn new(items: I) -> Self {
        Self(std::cell::RefCell::new(Some(items)))
    }
}

impl<I: Iterator<Item = T>, T: Serialize> Serialize for JsonSeq<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items = self.0.borrow_mut().take();
        s.collect_seq(items.into_iter().flatten())
    }
}

/// Writes a canonical hexdump (`address  16 bytes  |ascii|`) of `bytes` starting at
/// `base`. Bytes flagged in `bad` (unreadable) print as `??`.
pub fn hexdump(out: &mut impl Write, base: u64, bytes: &[u8], bad: &[bool]) -> std::io::Result<()> {
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let off = row * 16;
        write!(out, "{:016x}  ", base.wrapping_add(off as u64))?;
        for i in 0..16 {
            match chunk.get(i) {
                Some(_) if bad.get(off + i).copied().unwrap_or(false) => write!(out, "?? ")?,
                Some(b) => write!(out, "{b:02x} ")?,
                None => write!(out, "   ")?,
            }
            if i == 7 {
                write!(out, " ")?;
            }
        }
        write!(out, " |")?;
        for (i, b) in chunk.iter().enumerate() {
            let c = if bad.get(off + i).copied().unwrap_or(false) {
                '?'
            } else if b.is_ascii_graphic() || *b == b' ' {
                *b as char
            } else {
                '.'
            };
            write!(out, "{c}")?;
        }
        writeln!(out, "|")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hexdump_format() {
        let mut v = Vec::new();
        super::hexdump(&mut v, 0x1000, b"hello, memlens!!xy", &[false, true]).unwrap();
        let s = String::from_utf8(v).unwrap();
        assert_eq!(
            s,
            "0000000000001000  68 ?? 6c 6c 6f 2c 20 6d  65 6d 6c 65 6e 73 21 21  |h?llo, memlens!!|\n\
             0000000000001010  78 79                                             |xy|\n"
        );
    }
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON (an array of objects with the documented fields).
    Json,
    /// CSV with a header row.
    Csv,
}

/// Output-format flags shared by listing commands.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct FormatArgs {
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV.
    #[arg(long)]
    pub csv: bool,
}

impl FormatArgs {
    /// The chosen format.
    pub fn format(&self) -> Format {
        match (self.json, self.csv) {
            (true, _) => Format::Json,
            (_, true) => Format::Csv,
            _ => Format::Table,
        }
    }
}

/// A table of strings printed aligned or as CSV.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints as `Table` or `Csv` (JSON is printed by the caller from typed data).
    pub fn print(&self, format: Format) -> Result<(), CliError> {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let r = match format {
            Format::Csv => self.write_csv(&mut out),
            _ => self.write_aligned(&mut out),
        };
        r.and_then(|_| out.flush()).map_err(write_error)
    }

    fn write_aligned(&self, out: &mut impl Write) -> std::io::Result<()> {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        write_header(out, &self.headers, &width)?;
        for r in &self.rows {
            write_aligned_row(out, &width, r)?;
        }
        Ok(())
    }

    fn write_csv(&self, out: &mut impl Write) -> std::io::Result<()> {
        write_csv_row(out, &self.headers)?;
        for r in &self.rows {
            write_csv_row(out, r)?;
        }
        Ok(())
    }
}

/// The header row, padded to `width` (all columns but the last), then painted.
fn write_header(out: &mut impl Write, headers: &[&str], width: &[usize]) -> std::io::Result<()> {
    let n = headers.len();
    // Pad before painting: escape codes have no width.
    let headers: Vec<String> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let padded = match width.get(i) {
                Some(w) if i + 1 < n => format!("{h:<w$}"),
                _ => h.to_string(),
            };
            crate::style::header(&padded)
        })
        .collect();
    writeln!(out, "{}", headers.join("  "))
}

/// One row, every column but the last padded to `width`.
fn write_aligned_row(
    out: &mut impl Write,
    width: &[usize],
    cells: &[String],
) -> std::io::Result<()> {
    let n = width.len();
    let mut s = String::new();
    for (i, w) in width.iter().enumerate() {
        let c = cells.get(i).map(String::as_str).unwrap_or("");
        if i + 1 == n {
            s.push_str(c);
        } else {
            s.push_str(&format!("{c:<w$}  "));
        }
    }
    writeln!(out, "{}", s.trim_end())
}

fn write_csv_row(out: &mut impl Write, cells: &[impl AsRef<str>]) -> std::io::Result<()> {
    let esc = |c: &str| {
        if c.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.to_string()
        }
    };
    let row: Vec<String> = cells.iter().map(|c| esc(c.as_ref())).collect();
    writeln!(out, "{}", row.join(","))
}

/// A table printed on stdout row by row, with column widths fixed in advance (all but
/// the last column), for listings too long to hold; or CSV.
pub struct StreamTable {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    width: Vec<usize>,
    csv: bool,
}

impl StreamTable {
    /// Prints the header of a table with these columns; `width` gives the width of every
    /// column but the last (a longer cell pushes its row's later columns right).
    pub fn new(headers: &[&str], width: &[usize], format: Format) -> std::io::Result<Self> {
        let mut t = Self {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            width: headers
                .iter()
                .enumerate()
                .map(|(i, h)| width.get(i).copied().unwrap_or(0).max(h.len()))
                .collect(),
            csv: format == Format::Csv,
        };
        if t.csv {
            write_csv_row(&mut t.out, headers)?;
        } else {
            write_header(&mut t.out, headers, &t.width)?;
        }
        Ok(t)
    }

    /// Prints one row.
    pub fn row(&mut self, cells: &[String]) -> std::io::Result<()> {
        if self.csv {
            write_csv_row(&mut self.out, cells)
        } else {
            write_aligned_row(&mut self.out, &self.width, cells)
        }
    }

    /// Flushes what is left.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Maps an output error: a closed pipe (`memlens ps | head`) ends the program quietly with
/// success, as Unix tools do; anything else is a target error.
pub fn write_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    CliError::target(anyhow::anyhow!("write failed: {e}"))
}

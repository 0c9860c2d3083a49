//! Output helpers: hexdumps and JSON.

use std::io::Write;

use serde::Serialize;

use crate::exit::CliError;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(CliError::target)?;
    writeln!(out).map_err(CliError::target)?;
    Ok(())
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

//! A bounded LZO1X decompressor for kdump pages (flag 0x2). **Key decision: our own ~100
//! lines rather than a crate.** The Rust LZO crates are either GPL (`lzo1x`, `minilzo-rs`,
//! `rust-lzo`), which this MIT/Apache project cannot link, or (`lzokay-native` 0.1) grow an
//! unbounded `Vec` and index it unchecked, so a hostile page can panic or allocate
//! gigabytes. Here the output is the caller's one-page buffer: every literal run, match
//! and back-reference is checked against the input length, the output length and the
//! bytes already written, so the worst case is an error after at most `out.len()` bytes.
//! (`lzokay-native`'s *compressor* produces the test data, so the tests do not share this
//! code's understanding of the format.)
//!
//! Format: the LZO1X instruction stream as documented in the Linux kernel's
//! `Documentation/staging/lzo.rst` (first-byte literal run, M1–M4 matches, 0–3 trailing
//! literals in the low two bits, end marker = M4 with distance 16384).

struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

struct In<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl In<'_> {
    fn byte(&mut self) -> Result<usize, &'static str> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or("input ends inside an instruction")?;
        self.pos += 1;
        Ok(usize::from(b))
    }
    fn le16(&mut self) -> Result<usize, &'static str> {
        Ok(self.byte()? | (self.byte()? << 8))
    }
    /// `base + 255 × (number of zero bytes) + next non-zero byte`.
    fn long_len(&mut self, base: usize) -> Result<usize, &'static str> {
        let mut n = base;
        loop {
            let b = self.byte()?;
            if b != 0 {
                return Ok(n + b);
            }
            n += 255;
        }
    }
}

impl Out<'_> {
    fn literals(&mut self, src: &mut In<'_>, n: usize) -> Result<(), &'static str> {
        let s = src
            .buf
            .get(src.pos..src.pos.checked_add(n).ok_or("length overflow")?)
            .ok_or("literal run past the end of the input")?;
        let d = self
            .buf
            .get_mut(self.pos..self.pos + n)
            .ok_or("output larger than one page")?;
        d.copy_from_slice(s);
        src.pos += n;
        self.pos += n;
        Ok(())
    }
    fn copy_match(&mut self, dist: usize, len: usize) -> Result<(), &'static str> {
        if dist == 0 || dist > self.pos {
            return Err("match refers before the start of the output");
        }
        if self.pos + len > self.buf.len() {
            return Err("output larger than one page");
        }
        // Byte by byte: matches may overlap their own output.
        for i in 0..len {
            self.buf[self.pos + i] = self.buf[self.pos + i - dist];
        }
        self.pos += len;
        Ok(())
    }
}

/// Decompresses LZO1X `input` into `out`; returns the number of bytes written.
pub(crate) fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, &'static str> {
    let mut src = In { buf: input, pos: 0 };
    let mut dst = Out { buf: out, pos: 0 };
    let mut state = 0usize;
    if let Some(&first) = input.first() {
        if first > 17 {
            src.pos = 1;
            let t = usize::from(first) - 17;
            dst.literals(&mut src, t)?;
            state = if t < 4 { t } else { 4 };
        }
    }
    loop {
        let t = src.byte()?;
        let (dist, len, next);
        if t < 16 {
            match state {
                0 => {
                    let n = if t == 0 { src.long_len(15)? } else { t };
                    dst.literals(&mut src, n + 3)?;
                    state = 4;
                    continue;
                }
                1..=3 => {
                    dist = (t >> 2) + (src.byte()? << 2) + 1;
                    len = 2;
                }
                _ => {
                    dist = (t >> 2) + (src.byte()? << 2) + 2049;
                    len = 3;
                }
            }
            next = t & 3;
        } else if t >= 64 {
            dist = ((t >> 2) & 7) + (src.byte()? << 3) + 1;
            len = (t >> 5) + 1;
            next = t & 3;
        } else if t >= 32 {
            len = if t & 31 == 0 {
                src.long_len(31)? + 2
            } else {
                (t & 31) + 2
            };
            let v = src.le16()?;
            dist = (v >> 2) + 1;
            next = v & 3;
        } else {
            len = if t & 7 == 0 {
                src.long_len(7)? + 2
            } else {
                (t & 7) + 2
            };
            let v = src.le16()?;
            let d = ((t & 8) << 11) + (v >> 2);
            if d == 0 {
                // End of stream.
                return if len == 3 && src.pos == input.len() {
                    Ok(dst.pos)
                } else {
                    Err("bad end-of-stream marker or data after it")
                };
            }
            dist = d + 16384;
            next = v & 3;
        }
        dst.copy_match(dist, len)?;
        dst.literals(&mut src, next)?;
        state = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_streams() {
        // 0x16 = 22: first-byte literal run of 5 bytes, then end marker 0x11 0x00 0x00.
        let mut out = [0u8; 5];
        assert_eq!(decompress(b"\x16hello\x11\x00\x00", &mut out), Ok(5));
        assert_eq!(&out, b"hello");
        // Too small an output buffer: error, no panic.
        let mut small = [0u8; 4];
        assert!(decompress(b"\x16hello\x11\x00\x00", &mut small).is_err());
        // A match before the start of the output.
        let mut out = [0u8; 64];
        assert!(decompress(b"\x12ab\xff\xff\x11\x00\x00", &mut out).is_err());
        // Garbage and empty input never panic.
        for junk in [
            &b""[..],
            b"\x00",
            b"\x00\x00\x00\x00",
            b"\xff\xff\xff",
            b"\x20\x00",
        ] {
            let _ = decompress(junk, &mut out);
        }
    }
}

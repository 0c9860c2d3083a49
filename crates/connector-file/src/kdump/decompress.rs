//! Decompression of one kdump page: exactly one block, or an error (a short page or a
//! decompression bomb); the output buffer is the caller's block, never sized from the file.

use std::cell::RefCell;

/// Page flag: zlib-compressed.
pub const COMPRESSED_ZLIB: u32 = 0x1;
/// Page flag: LZO-compressed.
pub const COMPRESSED_LZO: u32 = 0x2;
/// Page flag: snappy-compressed.
pub const COMPRESSED_SNAPPY: u32 = 0x4;
/// Page flag: zstd-compressed.
pub const COMPRESSED_ZSTD: u32 = 0x20;

thread_local! {
    static INFLATE: RefCell<flate2::Decompress> = RefCell::new(flate2::Decompress::new(true));
}

/// Decompresses one page into `out` (exactly `out.len()` bytes or an error).
pub(crate) fn decompress_page(flags: u32, input: &[u8], out: &mut [u8]) -> Result<(), String> {
    let n = out.len();
    if flags & COMPRESSED_ZLIB != 0 {
        INFLATE.with(|d| {
            let mut d = d.borrow_mut();
            d.reset(true);
            let st = d
                .decompress(input, out, flate2::FlushDecompress::Finish)
                .map_err(|e| format!("zlib: {e}"))?;
            match st {
                flate2::Status::StreamEnd if d.total_out() == n as u64 => Ok(()),
                flate2::Status::StreamEnd => Err(format!(
                    "zlib data decompresses to {} bytes, not one {n}-byte page",
                    d.total_out()
                )),
                _ => Err(format!(
                    "zlib data does not end within one {n}-byte page (truncated, or a decompression bomb)"
                )),
            }
        })
    } else if flags & COMPRESSED_SNAPPY != 0 {
        let len = snap::raw::decompress_len(input).map_err(|e| format!("snappy: {e}"))?;
        if len != n {
            return Err(format!(
                "snappy data declares {len} bytes, not one {n}-byte page"
            ));
        }
        let got = snap::raw::Decoder::new()
            .decompress(input, out)
            .map_err(|e| format!("snappy: {e}"))?;
        (got == n)
            .then_some(())
            .ok_or_else(|| format!("snappy data gave {got} bytes, not {n}"))
    } else if flags & COMPRESSED_ZSTD != 0 {
        let got = zstd::bulk::decompress_to_buffer(input, out)
            .map_err(|e| format!("zstd: {e} (more than one {n}-byte page, or corrupt)"))?;
        (got == n)
            .then_some(())
            .ok_or_else(|| format!("zstd data gave {got} bytes, not {n}"))
    } else if flags & COMPRESSED_LZO != 0 {
        let got = crate::lzo::decompress(input, out).map_err(|e| format!("lzo: {e}"))?;
        (got == n)
            .then_some(())
            .ok_or_else(|| format!("lzo data gave {got} bytes, not {n}"))
    } else {
        Err(format!("unknown compression flags {flags:#x}"))
    }
}

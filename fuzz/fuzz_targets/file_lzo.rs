//! The LZO1X page decompressor: arbitrary bytes must give an error or at most one page
//! (never a panic or a write past the buffer); and a page compressed by `lzokay-native`
//! (an independent encoder) must decompress to exactly itself. Seeds:
//! `crates/connector-file/tests/corpus-lzo`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_connector_file::fuzzing::{lzo, lzo_decompress};

fuzz_target!(|data: &[u8]| {
    let _ = lzo(data);
    let page = &data[..data.len().min(4096)];
    // lzokay-native compresses an empty input to nothing (no end marker), which is not an
    // LZO stream (and no kdump page is empty): round-trip non-empty pages only.
    if page.is_empty() {
        return;
    }
    if let Ok(packed) = lzokay_native::compress(page) {
        let mut out = vec![0u8; page.len()];
        assert_eq!(lzo_decompress(&packed, &mut out), Ok(page.len()));
        assert_eq!(out, page);
    }
});

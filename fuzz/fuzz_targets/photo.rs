//! Photo decoding with EXIF, resizing and encoding, under small limits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wardcheck_core::testing::fuzz::photo(data));

//! Template JSON parsed, and written back and read again when it parses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wardcheck_core::testing::fuzz::template(data));

//! A saved assessment loaded, then viewed, its history and conflicts read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wardcheck_core::testing::fuzz::document(data));

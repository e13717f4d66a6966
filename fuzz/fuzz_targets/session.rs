//! The relay's side of a sync session over a real workspace, fed arbitrary frames.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wardcheck_core::testing::fuzz::session(data));

//! The change policy over a hostile officer's writes decoded from the input: whatever it
//! takes is harmless, and nothing panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wardcheck_core::testing::fuzz::policy(data));

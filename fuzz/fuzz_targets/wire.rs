//! The automerge-repo wire decoder, and encoding back what decodes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wardcheck_core::testing::fuzz::wire(data));

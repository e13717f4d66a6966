//! UniFFI's `uniffi-bindgen` command, built at the version the phone library uses:
//! `cargo run -p wardcheck-bindgen -- generate --library <libwardcheck_ffi.so> ...`
//! (`ffi/generate-bindings.sh` runs it for Kotlin, Swift and Python).

fn main() {
    uniffi::uniffi_bindgen_main()
}

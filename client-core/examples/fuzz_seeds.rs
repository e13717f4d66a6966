//! Writes the fuzz targets' seed corpora from real inputs (see `fuzz/README.md`):
//! `cargo run -p wardcheck-core --example fuzz_seeds -- fuzz/corpus`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    wardcheck_core::testing::fuzz::write_seeds(std::path::Path::new(&dir))
}

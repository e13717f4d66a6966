#!/usr/bin/env bash
# Builds the phone library for this machine as the x86_64 Android build is made (the
# `release-phone` profile, `--features phone`, ffi/phone-env.sh, the Rust and link flags
# `.cargo/config.toml` gives Android, and x86_64 Android's baseline CPU features), then
# prints its size and where the bytes are.
#
#   ffi/phone-size.sh
#
# It links with `-z defs`: a symbol left undefined (an SQLite option that breaks its
# amalgamation, say) fails here instead of when a phone loads the library. Host builds
# (tests, the relay) use none of this. The library is left in target/release-phone/, where
# `WARDCHECK_FFI_LIBRARY` can point the bindings tests at it (ffi/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
source ffi/phone-env.sh
# The cc crate reads `TARGET_CFLAGS` only when cross-compiling: name this target.
export "CFLAGS_$(rustc -vV | sed -n 's/^host: //p' | tr - _)=$TARGET_CFLAGS"
# What x86_64-linux-android builds with: its baseline features (SSE4.2, POPCNT), then the
# `.cargo/config.toml` and ffi/phone-env.sh flags.
export RUSTFLAGS="-C target-feature=+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt \
-C force-unwind-tables=no -C llvm-args=-addrsig $PHONE_PATH_REMAP"
# `cargo rustc` passes the link flags to the library alone. `-z pack-relative-relocs` is
# the host linker's spelling of Android's `--pack-dyn-relocs=relr`.
cargo rustc --quiet --locked --profile release-phone -p wardcheck-ffi --features phone --lib \
    -- -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,--icf=safe -C link-arg=-Wl,-z,defs
library="$target_dir/release-phone/libwardcheck_ffi.so"
bytes=$(stat -c %s "$library")
echo "$library: $bytes bytes ($((6000000 - bytes)) under the 6 MB target)"
size -A "$library" | awk 'NR > 2 && $2 >= 4096 { printf "  %-20s %10d\n", $1, $2 }'

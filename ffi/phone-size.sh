#!/usr/bin/env bash
# Builds the phone library for this machine exactly as the phone builds are made (the
# `release-phone` profile, `--features tls`, the phone's SQLite options and packed relative
# relocations), then prints its size and where the bytes are.
#
#   ffi/phone-size.sh
#
# The Android targets get the same link flags from `.cargo/config.toml`; the C options
# (SQLite's, no C unwind tables) are environment variables from ffi/phone-env.sh, which the
# phone build commands in ffi/README.md source too. Host builds (tests, the relay) use none
# of them.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
source ffi/phone-env.sh
# The cc crate reads `TARGET_CFLAGS` only when cross-compiling: name this target.
export "CFLAGS_$(rustc -vV | sed -n 's/^host: //p' | tr - _)=$TARGET_CFLAGS"
# `cargo rustc` passes the link flags to the library alone: the dependencies are not rebuilt.
cargo rustc --quiet --locked --profile release-phone -p wardcheck-ffi --features tls --lib \
    -- -C link-arg=-Wl,-z,pack-relative-relocs
library="$target_dir/release-phone/libwardcheck_ffi.so"
echo "$library: $(stat -c %s "$library") bytes"
size -A "$library" | awk 'NR > 2 && $2 >= 4096 { printf "  %-20s %10d\n", $1, $2 }'

#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings of the phone library in one command:
# builds the library for this machine, then runs uniffi-bindgen (`ffi/uniffi-bindgen`, the
# UniFFI version the library uses) on it. The bindings are the same for every target, so
# those generated here go with a library built for Android or iOS.
#
#   ffi/generate-bindings.sh [OUT_DIR]     (default: target/bindings)
#
# OUT_DIR/uniffi/wardcheck/wardcheck.kt   Kotlin (package uniffi.wardcheck; JNA)
# OUT_DIR/wardcheck.swift, wardcheckFFI.h, wardcheckFFI.modulemap   Swift
# OUT_DIR/wardcheck.py                    Python (put the library beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bindings}"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$(uname -s)" in
    Darwin) library="$target_dir/debug/libwardcheck_ffi.dylib" ;;
    *) library="$target_dir/debug/libwardcheck_ffi.so" ;;
esac
cargo build --quiet --locked -p wardcheck-ffi --lib
cargo run --quiet --locked -p wardcheck-bindgen -- generate --library "$library" \
    --language kotlin --language swift --language python --no-format --out-dir "$out"
echo "bindings for $library in $out:"
find "$out" -type f | sort

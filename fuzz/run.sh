#!/usr/bin/env bash
# Runs the fuzz targets for a fixed time each, from seeds made of real inputs:
#   fuzz/run.sh SECONDS [TARGET...]      (every target of `cargo fuzz list` by default)
# A crash stops its target and fails the run; the input is left in
# fuzz/artifacts/<target>/ (keep it in client-core/tests/fuzz-crashers/<target>/ once fixed,
# in .../fuzz-crashers/open/<target>/ until then: such a target is not run).
set -euo pipefail
cd "$(dirname "$0")"
seconds=$1
shift
# cargo fuzz builds with nightly flags (-Zsanitizer=address, sanitizer coverage); the
# stable toolchain accepts them so.
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
# The seeds: frames of real sessions, the sample templates, photos with EXIF, saved
# assessments (client-core/src/testing/fuzz.rs). The corpus grows from them run by run.
(cd .. && cargo run -q --locked -p wardcheck-core --example fuzz_seeds -- fuzz/corpus)
for target in "${targets[@]}"; do
    # A crash found but not fixed yet would only be found again.
    open="../client-core/tests/fuzz-crashers/open/$target"
    if [ -n "$(ls -A "$open" 2>/dev/null)" ]; then
        echo "== fuzz $target: NOT RUN: it has open crashes to fix first ($open)"
        continue
    fi
    echo "== fuzz $target for ${seconds}s"
    cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done

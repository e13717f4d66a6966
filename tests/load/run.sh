#!/usr/bin/env bash
# The load benchmark: 1,000 simulated devices syncing with the relay, then with
# automerge-repo's node sync server, on loopback (see README.md beside this file).
# Extra arguments go to the load generator, e.g. `tests/load/run.sh --devices 200 --runs 1`.
set -euo pipefail
cd "$(dirname "$0")/../.."
(cd tests/load && npm ci --no-audit --no-fund --ignore-scripts)
cargo build --release --locked -p wardcheck-relay -p wardcheck-e2e --bin wardcheck-relay --bin loadgen
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/loadgen" "$@"

//! The load generator (`src/bin/loadgen`, see `tests/load/README.md`) still runs: a few
//! devices against the relay, every sync in sync and every comment everywhere.

use std::process::Command;

#[test]
fn the_load_generator_runs_against_the_relay() {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--devices", "20", "--wards", "2", "--rounds", "2"])
        .args(["--runs", "1", "--servers", "relay"])
        .env("WARDCHECK_RELAY_BIN", harness::relay_binary())
        .output()
        .expect("the load generator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // 20 devices × 2 rounds, no error (or device missing a comment).
    assert!(stdout.contains("| wardcheck relay | 40 | 0 |"), "{stdout}");
}

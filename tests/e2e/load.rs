//! The load generator (`src/bin/loadgen`, see `tests/load/README.md`) still runs: a few
//! devices against the relay, every sync in sync and every comment everywhere.

use std::process::Command;

/// Runs the load generator against the relay with `extra` arguments; its table.
fn loadgen(extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--devices", "20", "--wards", "2", "--rounds", "2"])
        .args(["--runs", "1", "--servers", "relay"])
        .args(extra)
        .env("WARDCHECK_RELAY_BIN", harness::relay_binary())
        .output()
        .expect("the load generator runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

#[test]
fn the_load_generator_runs_against_the_relay() {
    let stdout = loadgen(&[]);
    // 20 devices × 2 rounds, no error (or device missing a comment).
    assert!(stdout.contains("| wardcheck relay | 40 | 0 |"), "{stdout}");
    assert!(stdout.contains("all devices at once"), "{stdout}");
}

#[test]
fn the_load_generator_offers_an_open_loop_load() {
    // 40 syncs at 100 a second: about 0.4 s of arrivals.
    let stdout = loadgen(&["--rate", "100"]);
    assert!(stdout.contains("| wardcheck relay | 40 | 0 |"), "{stdout}");
    assert!(stdout.contains("arriving at 100 syncs/s"), "{stdout}");
}

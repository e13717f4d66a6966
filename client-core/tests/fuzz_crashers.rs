//! Every input that once crashed a fuzz target, kept in `tests/fuzz-crashers/<target>/`,
//! replayed through the target: a crash fixed stays fixed.
//!
//! `tests/fuzz-crashers/open/<target>/` holds crashes found but not fixed yet (`fuzz/run.sh`
//! does not fuzz their target meanwhile): the panics must still panic, so that the fix is
//! noticed and the input moved up to `<target>/`. Inputs named `*.unbounded` take memory
//! without end: they are never replayed here, only under libFuzzer's `-malloc_limit_mb`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use wardcheck_core::testing::fuzz::{TARGETS, Target};

/// The inputs kept for each target under `folder`, as (target body, input file).
fn crashers(folder: &str) -> Vec<(Target, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut found = Vec::new();
    for &(name, target) in TARGETS {
        let Ok(inputs) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for input in inputs {
            let input = input.unwrap().path();
            if input
                .extension()
                .is_none_or(|extension| extension != "unbounded")
            {
                found.push((target, input));
            }
        }
    }
    found
}

#[test]
fn kept_crashers_no_longer_crash() {
    for (target, input) in crashers("tests/fuzz-crashers") {
        eprintln!("replaying {}", input.display());
        target(&std::fs::read(&input).unwrap());
    }
}

#[test]
fn open_crashers_still_crash_until_fixed() {
    for (target, input) in crashers("tests/fuzz-crashers/open") {
        let bytes = std::fs::read(&input).unwrap();
        let crashed = catch_unwind(AssertUnwindSafe(|| target(&bytes))).is_err();
        assert!(
            crashed,
            "{} no longer crashes: move it to tests/fuzz-crashers/<target>/",
            input.display()
        );
    }
}

#[test]
fn every_folder_and_fuzz_target_is_known() {
    let known = |name: &str| TARGETS.iter().any(|(target, _)| *target == name);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["tests/fuzz-crashers", "tests/fuzz-crashers/open"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && name != "open" {
                assert!(
                    known(&name),
                    "{} is no fuzz target's folder",
                    path.display()
                );
            }
        }
    }
    for file in std::fs::read_dir(root.join("../fuzz/fuzz_targets")).unwrap() {
        let name = file
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            known(&name),
            "fuzz target {name} is not in wardcheck_core::testing::fuzz::TARGETS"
        );
    }
}

//! Every input that once crashed a fuzz target, kept in `tests/fuzz-crashers/<target>/`,
//! replayed through the target: a crash fixed stays fixed.
//!
//! `tests/fuzz-crashers/open/<target>/` holds crashes found but not fixed yet (`fuzz/run.sh`
//! does not fuzz their target meanwhile): the panics must still panic, so that the fix is
//! noticed and the input moved up to `<target>/`.
//!
//! Every test here runs under a cap on the process's memory ([`MEMORY_CAP`]), as libFuzzer
//! runs the targets: an input that makes Automerge take memory without end (a run of 2^35
//! rows in six bytes) fails its allocation and aborts this binary, instead of taking the
//! machine's memory.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;

use wardcheck_core::testing::fuzz::{TARGETS, Target};

/// The address space this test binary may take: room for the harness, its threads'
/// stacks and the allocator's arenas, far from what a run without end asks for.
const MEMORY_CAP: u64 = 2 << 30;

/// Caps the process's address space at [`MEMORY_CAP`], once (Linux: elsewhere the cap is
/// libFuzzer's alone).
fn cap_memory() {
    static CAP: Once = Once::new();
    CAP.call_once(|| {
        #[cfg(target_os = "linux")]
        {
            let cap = libc::rlimit {
                rlim_cur: MEMORY_CAP,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: setrlimit reads the struct it is given, which outlives the call.
            let set = unsafe { libc::setrlimit(libc::RLIMIT_AS, &cap) };
            assert_eq!(set, 0, "setrlimit: {}", std::io::Error::last_os_error());
        }
    });
}

/// The inputs kept for each target under `folder`, as (target body, input file).
fn crashers(folder: &str) -> Vec<(Target, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut found = Vec::new();
    for &(name, target) in TARGETS {
        let Ok(inputs) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for input in inputs {
            found.push((target, input.unwrap().path()));
        }
    }
    found
}

#[test]
fn kept_crashers_no_longer_crash() {
    cap_memory();
    for (target, input) in crashers("tests/fuzz-crashers") {
        eprintln!("replaying {}", input.display());
        target(&std::fs::read(&input).unwrap());
    }
}

#[test]
fn open_crashers_still_crash_until_fixed() {
    cap_memory();
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

//! The HTTP API against its own description: schemathesis (PyPI) reads
//! `GET /v1/openapi.json` from the real relay binary and, with a device's token, sends
//! every operation what the description allows (its examples, boundary values, random
//! data) and what it rules out. Every answer is checked: never a 5xx; a documented
//! status, content type and headers; a body of the documented schema (so every error is
//! `{"error", "code"}`); refusals of what the description rules out; 401 without the
//! token; 405 with `Allow` for methods no route takes.
//!
//! The device's document references one stored photo (and its thumbnail) and photos
//! never uploaded; blob requests name these addresses half of the time, so they get past
//! the scope check to the upload, range and listing code.
//!
//! Needs schemathesis 4: `WARDCHECK_SCHEMATHESIS`, or `target/schemathesis/bin/schemathesis`
//! (where `.ci/run` installs it), or `schemathesis` on `PATH`. Without it the test is
//! skipped, except under CI (`CI` set), where it fails. `WARDCHECK_SCHEMATHESIS_SEED`
//! replays a run (each run prints its seed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::Relay;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::Assessment;
use wardcheck_core::model::Author;
use wardcheck_core::testing::{jpeg, signed_evidence};

use crate::node;
use crate::support::{Phone, populate, template, ward_a};

/// Test cases per operation and phase: the run takes about 20 s (300: about a minute,
/// and found nothing more).
const MAX_EXAMPLES: &str = "100";

/// The stateful phase is left out: the one link (`/v1/blobs/missing` to the upload) is
/// followed by the fuzzing phase already, through the addresses bound below, and it
/// doubled the run.
const PHASES: &str = "examples,coverage,fuzzing";

/// A run far past its usual length has hung.
const DEADLINE: Duration = Duration::from_secs(600);

/// Every check but `positive_data_acceptance`: a request the description allows may
/// still be refused for what a schema cannot say (a `public_key` of 64 hex digits that is
/// not a point of the curve, a `GET /v1/sync` that is not a WebSocket upgrade).
const EXCLUDED_CHECKS: &str = "positive_data_acceptance";

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDCHECK_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let installed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/schemathesis/bin/schemathesis");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("schemathesis")
    }
}

/// Why schemathesis cannot run, if it cannot.
fn missing_schemathesis() -> Option<String> {
    let runs = Command::new(schemathesis())
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|output| output.status.success());
    (!runs).then(|| {
        format!(
            "`{}` does not run: `python3 -m venv target/schemathesis && \
             target/schemathesis/bin/pip install schemathesis` (as .ci/run does)",
            schemathesis().display()
        )
    })
}

/// A configuration binding blob addresses, in paths and in `/v1/blobs/missing` bodies, to
/// `hashes` half of the time.
fn config(hashes: &[BlobHash]) -> String {
    let values: Vec<String> = hashes.iter().map(|hash| format!("\"{hash}\"")).collect();
    format!(
        "[dictionaries.blobs]\nvalues = [{}]\n\n[parameters]\n\
         \"path.sha256\" = {{ dictionary = \"blobs\", probability = 0.5 }}\n\
         \"body.hashes[*]\" = {{ dictionary = \"blobs\", probability = 0.5 }}\n",
        values.join(", ")
    )
}

#[test]
fn the_api_keeps_to_its_description() {
    if !node::may_run("schemathesis test", missing_schemathesis()) {
        return;
    }
    // Enrolment tries are not rate limited here, so that they reach the enrolment code.
    let relay = Relay::start_with_config("enrol_per_minute = 1000000\n");
    populate(&relay);
    let phone = Phone::enrol(&relay, &relay.url, "officer-a1");
    let ws = &phone.workspace;
    let id = ws
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    let stored = ws
        .add_photo(&id, "c01", &jpeg(800, 600, 1), "Ảnh minh chứng", None)
        .unwrap();
    let mut doc = Assessment::load(&ws.export_document(&id).unwrap()).unwrap();
    let by = Author::new("officer-a1", "phone");
    let mut hashes = vec![stored.photo, stored.thumbnail];
    for n in 0..3 {
        let evidence = signed_evidence(300 + n, &by);
        doc.add_evidence("c04", &evidence, &by, 1).unwrap();
        hashes.push(evidence.photo);
    }
    ws.import_document(&doc.save()).unwrap();
    phone.sync();
    let token = ws.enrolment().unwrap().unwrap().token;

    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config(&hashes)).unwrap();
    let mut command = Command::new(schemathesis());
    command
        .arg("--config-file")
        .arg(&config_file)
        .arg("--no-color")
        .args(["run", &format!("{}/v1/openapi.json", relay.url)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--workers", "1"])
        .args(["--phases", PHASES])
        .args(["--generation-database", "none"])
        .current_dir(dir.path());
    if let Ok(seed) = std::env::var("WARDCHECK_SCHEMATHESIS_SEED") {
        command.args(["--seed", &seed]);
    }
    let run = node::run_command(command, DEADLINE);
    // Shown with `--nocapture`: what was tested, warnings, the seed.
    eprintln!("schemathesis took {:?}\n{}", run.elapsed, run.stdout);
    assert!(
        run.success,
        "schemathesis found answers that break the description:\n{}\n{}",
        run.stdout, run.stderr
    );
}

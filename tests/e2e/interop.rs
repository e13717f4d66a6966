//! A stock automerge-repo JavaScript client (`tests/interop/sync.mjs`, npm
//! `@automerge/automerge-repo` 2.x over its WebSocket adapter) syncs an assessment with the
//! real relay: it reads what a phone wrote and the phone reads what it wrote.
//!
//! Needs `node` and `tests/interop/node_modules` (`npm ci` there, as `.ci/run` does).
//! Without them the test is skipped, except under CI (`CI` set), where it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::Relay;
use wardcheck_core::doc::DocumentId;
use wardcheck_core::testing::jpeg;

use crate::node::{self, NodeRun};
use crate::support::{Phone, WARD_B, populate, template, ward_a};

/// How long the node process may take in all (the script gives up after 20 s itself).
const NODE_DEADLINE: Duration = Duration::from_secs(60);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Runs `node sync.mjs args…`, killing it after [`NODE_DEADLINE`].
fn run_sync_script(args: &[&str]) -> NodeRun {
    node::run(&interop_dir(), "sync.mjs", args, NODE_DEADLINE)
}

#[test]
fn a_stock_automerge_repo_js_client_syncs_with_the_relay() {
    let missing = node::missing_prerequisite(
        &interop_dir(),
        "@automerge/automerge-repo-network-websocket",
    );
    if !node::may_run("automerge-repo JS interop test", missing) {
        return;
    }
    let relay = Relay::start();
    populate(&relay);
    let phone = Phone::enrol(&relay, &relay.url, "officer-a1");
    let id = phone
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    // A history long enough that the relay sends it in several bounded sync messages.
    for n in 0..3 {
        phone
            .workspace
            .add_photo(&id, "c03", &jpeg(800, 600, n), &format!("photo {n}"), None)
            .unwrap();
    }
    let mut seed = 1u64;
    let criteria: Vec<String> = phone
        .workspace
        .view(&id)
        .unwrap()
        .criteria
        .iter()
        .map(|c| c.criterion.id.clone())
        .filter(|c| c != "c01")
        .collect();
    for criterion in &criteria {
        // Text that does not compress, so the catch-up really is large.
        let note: String = (0..3000)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                char::from(b'a' + (seed >> 59) as u8 % 26)
            })
            .collect();
        phone.workspace.set_note(&id, criterion, &note).unwrap();
    }
    phone
        .workspace
        .set_note(&id, "c01", "from the phone")
        .unwrap();
    phone.sync();

    // A second device of the same ward, whose token the JS client uses.
    let js_device = Phone::enrol(&relay, &relay.url, "officer-a2");
    let token = js_device.workspace.enrolment().unwrap().unwrap().token;
    let text = "bình luận từ automerge-repo (JS)";
    let run = run_sync_script(&[&relay.url, &token, &id.to_string(), text, "officer-a2"]);
    let printed = run.json_line("the JS client");
    eprintln!("the JS client synced in {:?}: {printed}", run.elapsed);
    assert_eq!(printed["period"], "2025");
    assert_eq!(printed["unit_id"], ward_a().id.as_str());
    // All of it, not only the first of the bounded messages the relay sent.
    assert_eq!(printed["c01_note"], "from the phone");
    assert_eq!(printed["comments"], 0);
    assert!(
        printed["sync_messages"].as_u64() > Some(1),
        "the history came in one message: {printed}"
    );

    // The phone gets the JS client's comments through the relay, and they read: one with
    // scalar strings as wardcheck writes them, one with plain JS strings (text objects).
    phone.sync();
    let view = phone.workspace.view(&id).unwrap();
    assert_eq!(view.comments.len(), 2, "{:?}", view.comments);
    let comment = &view.comments[0];
    assert_eq!(comment.text, text);
    assert_eq!(comment.by, "officer-a2");
    assert_eq!(comment.criterion, None);
    assert!(comment.at_ms > 0);
    let plain = &view.comments[1];
    assert_eq!(plain.text, format!("{text} (plain strings)"));
    assert_eq!(plain.by, "officer-a2");
    assert_eq!(plain.criterion.as_deref(), Some("c01"));
    assert!(plain.at_ms > 0);
    // What the phone wrote is still there.
    let c01 = view
        .criteria
        .iter()
        .find(|c| c.criterion.id == "c01")
        .unwrap();
    assert_eq!(c01.note, "from the phone");

    // A document outside the device's scope is unavailable to the JS client, not data.
    let elsewhere = DocumentId::for_assessment(WARD_B, "2025");
    let refused = run_sync_script(&[&relay.url, &token, &elsewhere.to_string()]);
    assert!(!refused.success, "stdout: {}", refused.stdout);
    assert!(
        refused.stderr.contains("unavailable"),
        "stderr: {}",
        refused.stderr
    );
    // A bad token is refused at the upgrade, and the client says so.
    let bad_token = run_sync_script(&[&relay.url, "not-a-token", &id.to_string()]);
    assert!(!bad_token.success, "stdout: {}", bad_token.stdout);
    assert!(
        bad_token.stderr.contains("401"),
        "stderr: {}",
        bad_token.stderr
    );
}

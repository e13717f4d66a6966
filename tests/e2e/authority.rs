//! The relay is the authority over every change. A modified client
//! (`tests/interop/attack.mjs`: a stock automerge-repo client with an officer's real
//! device token, `@automerge/automerge` 3 writing whatever it likes) makes each change of
//! issue 13 against the real relay binary; the relay refuses each whole and says why,
//! the honest phones never see it, the document still loads after a restart, and the
//! refusals are counted in `/metrics`. A refusal ends neither the connection nor the
//! sync of the client's other documents.
//!
//! Needs `node` and `tests/interop/node_modules` (as the interop test); skipped without
//! them, except under CI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::Relay;
use wardcheck_core::doc::DocumentId;
use wardcheck_core::model::{Action, Status};
use wardcheck_core::testing::jpeg;

use crate::node;
use crate::support::{Phone, metrics, populate, template, ward_a};

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Runs one attack as `user` with `token`; returns the script's JSON line.
fn attack(
    relay: &Relay,
    token: &str,
    id: &DocumentId,
    name: &str,
    user: &str,
    then: Option<&DocumentId>,
) -> serde_json::Value {
    let (id, then) = (id.to_string(), then.map(DocumentId::to_string));
    let mut args = vec![relay.url.as_str(), token, id.as_str(), name, user];
    args.extend(then.as_deref());
    node::run(&interop_dir(), "attack.mjs", &args, Duration::from_secs(60))
        .json_line(&format!("the attack {name}"))
}

#[test]
fn a_modified_client_can_neither_forge_nor_rewrite_an_assessment() {
    let missing = node::missing_prerequisite(&interop_dir(), "@automerge/automerge");
    if !node::may_run("the modified-client test", missing) {
        return;
    }
    let mut relay = Relay::start();
    populate(&relay);
    let officer = Phone::enrol(&relay, &relay.url, "officer-a1");
    let supervisor = Phone::enrol(&relay, &relay.url, "supervisor");
    let ws = &officer.workspace;
    let id = ws
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    let located = wardcheck_core::photo::GeoPoint::new(14.35, 108.0, Some(5.0)).unwrap();
    let photo = ws
        .add_photo(&id, "c03", &jpeg(640, 480, 3), "", Some(located))
        .unwrap();
    ws.step(&id, "c01", Action::Submit, None).unwrap();
    let other = ws
        .create_assessment(&ward_a(), "2026", &template())
        .unwrap();
    officer.sync();
    supervisor.sync();
    supervisor
        .workspace
        .step(&id, "c01", Action::Return, Some("thiếu ảnh"))
        .unwrap();
    supervisor.sync();
    officer.sync();
    let before = ws.view(&id).unwrap();
    assert_eq!(before.criteria[0].status, Status::Returned);

    let attacker = Phone::enrol(&relay, &relay.url, "officer-a2");
    let token = attacker.workspace.enrolment().unwrap().unwrap().token;
    let cases = [
        ("rewrite-return", "status log entries are append-only"),
        ("erase-return", "status log entries are append-only"),
        ("rewrite-unit-id", "the assessment's unit cannot change"),
        ("rewrite-unit-name", "the assessment's unit cannot change"),
        ("rewrite-period", "the assessment's structure cannot change"),
        ("template-parts", "the assessment's template cannot change"),
        ("move-evidence", "its signed fields never change"),
        ("future-round", "ahead of the criterion's round"),
        ("literal-approve", "only supervisors may approve or return"),
        ("forged-pred", "malformed change"),
    ];
    for (n, (name, reason)) in cases.iter().enumerate() {
        // The first goes on to another document over the same connection.
        let then = (n == 0).then_some(&other);
        let out = attack(&relay, &token, &id, name, "officer-a2", then);
        assert_eq!(out["outcome"], "refused", "{name}: {out}");
        let said = out["reason"].as_str().unwrap_or_default();
        assert!(said.contains(reason), "{name}: {said}");
        if then.is_some() {
            assert_eq!(out["then"], "accepted", "{name}: {out}");
        }
    }
    // Entries written as automerge-js map literals are read as a JS reader reads them.
    let out = attack(&relay, &token, &id, "literal-submit", "officer-a2", None);
    assert_eq!(out["outcome"], "accepted", "{out}");

    // The honest phones see none of the refused changes, and the literal's submission.
    officer.sync();
    let after = ws.view(&id).unwrap();
    assert_eq!(after.unit, before.unit);
    assert_eq!(after.period, "2025");
    assert_eq!(after.criteria[0].status, Status::Returned);
    assert_eq!(after.criteria[0].log, before.criteria[0].log);
    assert_eq!(after.criteria[1].status, Status::Submitted);
    let record = &after.criteria[2].evidence[0];
    assert_eq!(
        (record.photo, record.location),
        (photo.photo, Some(located))
    );
    assert_eq!(ws.view(&other).unwrap().comments.len(), 1);

    // Every refusal is counted by reason.
    let metrics = metrics(&relay);
    let refused = |code: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "wardcheck_changes_refused_total{{reason=\"{code}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(refused("append_only"), 2, "{metrics}");
    assert_eq!(refused("fixed"), 4, "{metrics}");
    assert_eq!(refused("signed_evidence"), 1, "{metrics}");
    assert_eq!(refused("future_round"), 1, "{metrics}");
    assert_eq!(refused("not_a_reviewer"), 1, "{metrics}");
    assert_eq!(refused("malformed"), 1, "{metrics}");

    // After a restart the document loads and syncs as before.
    relay.restart();
    let fresh = Phone::enrol(&relay, &relay.url, "officer-a3");
    fresh.sync();
    assert_eq!(fresh.workspace.view(&id).unwrap(), ws.view(&id).unwrap());
}

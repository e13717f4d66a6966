//! The change policy against honest edits and the attacks a modified client makes.

use std::sync::Arc;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

use super::*;
use crate::doc::FieldValue;
use crate::model::{Action, Author, Status, sample_templates};
use crate::testing::{sample_unit, signed_evidence};

fn officer() -> Author {
    Author::new("officer-a", "phone-a")
}

fn supervisor() -> Author {
    Author::new("sup", "console")
}

fn as_officer() -> Writer<'static> {
    Writer {
        user: "officer-a",
        role: Role::Officer,
    }
}

fn as_supervisor() -> Writer<'static> {
    Writer {
        user: "sup",
        role: Role::Supervisor,
    }
}

fn new_assessment() -> Assessment {
    let template = Arc::new(sample_templates().remove(1));
    Assessment::create(&sample_unit(), "2025", template).unwrap()
}

/// An assessment where c01 was submitted with a photo and returned, c02 submitted.
fn reviewed() -> Assessment {
    let mut doc = new_assessment();
    let (o, s) = (officer(), supervisor());
    doc.add_evidence("c01", &signed_evidence(1, &o), &o, 1_000)
        .unwrap();
    doc.step("c01", Action::Submit, None, &o, 2_000).unwrap();
    doc.step("c01", Action::Return, Some("blurred"), &s, 3_000)
        .unwrap();
    doc.step("c02", Action::Submit, None, &o, 4_000).unwrap();
    doc
}

/// Checks what `edit` does to a copy of `doc` as `writer` would send it.
fn honest(
    doc: &Assessment,
    writer: &Writer,
    edit: impl FnOnce(&mut Assessment) -> crate::Result<()>,
) -> Result<Admitted, Refusal> {
    let mut after = doc.clone();
    edit(&mut after).unwrap();
    check(&after, &doc.heads(), writer)
}

/// Checks one raw Automerge change, as a modified client may write anything.
fn raw(
    doc: &Assessment,
    writer: &Writer,
    change: impl FnOnce(&mut Transaction<'_>),
) -> Result<Admitted, Refusal> {
    let mut am = doc.automerge().fork();
    am.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| CommitOptions::default(),
        |tx| {
            change(tx);
            Ok(())
        },
    )
    .unwrap();
    let mut after = doc.clone();
    after.apply(&am.save_after(&doc.heads())).unwrap();
    check(&after, &doc.heads(), writer)
}

/// The object at `path` (map keys; list indexes as numbers).
fn at(doc: &impl ReadDoc, path: &[&str]) -> ObjId {
    path.iter().fold(ROOT, |obj, key| {
        let found = match key.parse::<usize>() {
            Ok(index) => doc.get(&obj, index),
            Err(_) => doc.get(&obj, *key),
        };
        found.unwrap().unwrap().1
    })
}

/// An edit through the core's API.
type Edit<'a> = Box<dyn FnOnce(&mut Assessment) -> crate::Result<()> + 'a>;

/// A raw change.
type RawChange = Box<dyn FnOnce(&mut Transaction<'_>)>;

fn c01_photo() -> String {
    signed_evidence(1, &officer()).photo.to_hex()
}

#[test]
fn every_honest_edit_passes() {
    let doc = reviewed();
    let (o, s) = (officer(), supervisor());
    let photo = signed_evidence(1, &o).photo;
    let officer_edits: Vec<Edit> = vec![
        Box::new(|d| d.set_note("c01", "Chi bộ họp định kỳ.", &o, 5_000)),
        Box::new(|d| d.step("c01", Action::Start, None, &o, 5_000).map(drop)),
        Box::new(|d| d.set_caption("c01", &photo, "Bảng nội quy", &o, 5_000)),
        Box::new(|d| d.remove_evidence("c01", &photo, &o, 5_000)),
        Box::new(|d| d.confirm_evidence("c01", &photo, &o, 5_000)),
        Box::new(|d| d.set_indicator("incidents", -3, &o, 5_000)),
        Box::new(|d| d.add_comment(Some("c02"), "đã bổ sung", &o, 5_000)),
        Box::new(|d| d.add_comment(None, "chung", &o, 5_000)),
        Box::new(|d| d.add_evidence("c03", &signed_evidence(2, &o), &o, 5_000)),
    ];
    for edit in officer_edits {
        assert_eq!(honest(&doc, &as_officer(), edit).map(|_| ()), Ok(()));
    }
    let supervisor_edits: Vec<Edit> = vec![
        Box::new(|d| d.step("c02", Action::Approve, None, &s, 5_000).map(drop)),
        Box::new(|d| {
            d.step("c02", Action::Return, Some("thiếu"), &s, 5_000)
                .map(drop)
        }),
        Box::new(|d| d.add_comment(Some("c01"), "xem lại", &s, 5_000)),
    ];
    for edit in supervisor_edits {
        assert_eq!(honest(&doc, &as_supervisor(), edit).map(|_| ()), Ok(()));
    }
}

#[test]
fn new_evidence_is_reported_for_its_signature_check() {
    let doc = new_assessment();
    let evidence = signed_evidence(7, &officer());
    let admitted = honest(&doc, &as_officer(), |d| {
        d.add_evidence("c05", &evidence, &officer(), 1)
    })
    .unwrap();
    assert_eq!(admitted.evidence, vec![("c05".to_owned(), evidence)]);
}

#[test]
fn a_forged_approval_rewriting_a_return_is_refused() {
    let doc = reviewed();
    let refused = raw(&doc, &as_officer(), |tx| {
        let entry = at(tx, &["criteria", "c01", "log", "1"]);
        tx.put(&entry, "action", "approve").unwrap();
    });
    assert_eq!(refused, Err(Refusal::AppendOnly("status log")));
}

#[test]
fn an_erased_return_is_refused() {
    let doc = reviewed();
    let refused = raw(&doc, &as_officer(), |tx| {
        let log = at(tx, &["criteria", "c01", "log"]);
        tx.delete(&log, 1).unwrap();
    });
    assert_eq!(refused, Err(Refusal::AppendOnly("status log")));
}

#[test]
fn the_genesis_never_changes() {
    let doc = reviewed();
    let cases: Vec<(RawChange, &str)> = vec![
        (
            Box::new(|tx| tx.put(at(tx, &["unit"]), "id", "elsewhere").unwrap()),
            "unit",
        ),
        (
            Box::new(|tx| tx.put(at(tx, &["unit"]), "name", "Another").unwrap()),
            "unit",
        ),
        (
            Box::new(|tx| tx.put(ROOT, "period", "2024").unwrap()),
            "structure",
        ),
        (
            Box::new(|tx| tx.put(at(tx, &["template"]), "parts", 99_u64).unwrap()),
            "template",
        ),
        (
            Box::new(|tx| {
                let json = at(tx, &["template", "json"]);
                tx.insert(&json, 0, "{").unwrap();
            }),
            "template",
        ),
        (
            Box::new(|tx| {
                tx.put_object(at(tx, &["criteria", "c01"]), "log", ObjType::List)
                    .unwrap();
            }),
            "criteria",
        ),
        (
            Box::new(|tx| tx.delete(at(tx, &["criteria"]), "c03").unwrap()),
            "criteria",
        ),
        (
            Box::new(|tx| tx.put(ROOT, "extra", 2_u64).unwrap()),
            "structure",
        ),
    ];
    for (change, what) in cases {
        assert_eq!(
            raw(&doc, &as_supervisor(), change),
            Err(Refusal::Fixed(what))
        );
    }
}

#[test]
fn signed_evidence_never_changes() {
    let doc = reviewed();
    let photo = c01_photo();
    for (field, value) in [
        ("lat", ScalarValue::F64(10.0)),
        ("lon", ScalarValue::F64(100.0)),
        ("captured_at", ScalarValue::from("2020-01-01T00:00:00Z")),
        ("officer", ScalarValue::from("someone-else")),
        ("signature", ScalarValue::from("00")),
    ] {
        let refused = raw(&doc, &as_officer(), |tx| {
            let record = at(tx, &["criteria", "c01", "evidence", &photo]);
            tx.put(&record, field, value).unwrap();
        });
        assert_eq!(refused, Err(Refusal::SignedEvidence), "{field}");
    }
    // Replacing the record, or deleting it.
    let replaced = raw(&doc, &as_officer(), |tx| {
        let map = at(tx, &["criteria", "c01", "evidence"]);
        tx.put_object(&map, photo.as_str(), ObjType::Map).unwrap();
    });
    assert_eq!(replaced, Err(Refusal::SignedEvidence));
    let deleted = raw(&doc, &as_officer(), |tx| {
        let map = at(tx, &["criteria", "c01", "evidence"]);
        tx.delete(&map, photo.as_str()).unwrap();
    });
    assert_eq!(deleted, Err(Refusal::SignedEvidence));
}

#[test]
fn a_record_added_beside_another_under_the_same_photo_is_refused() {
    // A record made concurrently under an existing key (no predecessor) leaves a conflict
    // whose winner may be the forged one.
    let base = new_assessment();
    let mut doc = base.clone();
    let o = officer();
    doc.add_evidence("c01", &signed_evidence(1, &o), &o, 1)
        .unwrap();
    let mut forged = base;
    forged.set_actor(automerge::ActorId::random());
    let mut evidence = signed_evidence(1, &o);
    evidence.caption = "forged".into();
    forged.add_evidence("c01", &evidence, &o, 2).unwrap();
    let mut after = doc.clone();
    after.merge(&forged).unwrap();
    assert_eq!(
        check(&after, &doc.heads(), &as_officer()),
        Err(Refusal::SignedEvidence)
    );
}

#[test]
fn an_officer_may_not_review_and_a_reviewer_needs_a_submission() {
    let doc = reviewed();
    let o = officer();
    // The lifecycle allows it on the copy: only the policy knows roles.
    let by_officer = honest(&doc, &as_officer(), |d| {
        d.step("c02", Action::Approve, None, &o, 9).map(drop)
    });
    assert_eq!(by_officer, Err(Refusal::NotAReviewer));
    // A review written by hand of a criterion never submitted.
    let nothing = raw(&doc, &as_supervisor(), |tx| {
        push_step(tx, "c03", "approve", 0, "sup");
    });
    assert_eq!(nothing, Err(Refusal::NothingToReview("approve")));
    // ... and one in a round the criterion has not reached.
    let ahead = raw(&doc, &as_supervisor(), |tx| {
        push_step(tx, "c02", "approve", 5, "sup");
    });
    assert_eq!(
        ahead,
        Err(Refusal::FutureRound {
            round: 5,
            current: 0
        })
    );
    // A reviewer's stale review of a round already reviewed is a concurrent review.
    let stale = raw(&doc, &as_supervisor(), |tx| {
        push_step(tx, "c01", "approve", 0, "sup");
    });
    assert_eq!(stale.map(|_| ()), Ok(()));
}

/// Appends a status log entry written field by field.
fn push_step(tx: &mut Transaction<'_>, criterion: &str, action: &str, round: u64, by: &str) {
    let log = at(tx, &["criteria", criterion, "log"]);
    let entry = tx
        .insert_object(&log, tx.length(&log), ObjType::Map)
        .unwrap();
    tx.put(&entry, "action", action).unwrap();
    tx.put(&entry, "round", round).unwrap();
    tx.put(&entry, "by", by).unwrap();
    tx.put(&entry, "device", "d").unwrap();
    tx.put(&entry, "at", 1_i64).unwrap();
    if action == "return" {
        tx.put(&entry, "reason", "why").unwrap();
    }
}

#[test]
fn an_officers_step_ahead_of_the_round_is_refused() {
    let doc = reviewed();
    let refused = raw(&doc, &as_officer(), |tx| {
        push_step(tx, "c01", "submit", u64::MAX, "officer-a");
    });
    assert_eq!(
        refused,
        Err(Refusal::FutureRound {
            round: u64::MAX,
            current: 1
        })
    );
    // In the current round (after the return: 1) or a stale one, it is fine.
    for round in [0, 1] {
        let ok = raw(&doc, &as_officer(), |tx| {
            push_step(tx, "c01", "start", round, "officer-a")
        });
        assert_eq!(ok.map(|_| ()), Ok(()));
    }
}

#[test]
fn an_officer_cannot_reopen_an_approved_criterion() {
    let mut doc = reviewed();
    doc.step("c02", Action::Approve, None, &supervisor(), 5)
        .unwrap();
    let reopened = raw(&doc, &as_officer(), |tx| {
        push_step(tx, "c02", "start", 1, "officer-a")
    });
    assert_eq!(reopened, Err(Refusal::Approved));
    // A step made offline before the approval (its round is the one reviewed) is stale
    // and harmless.
    let stale = raw(&doc, &as_officer(), |tx| {
        push_step(tx, "c02", "start", 0, "officer-a")
    });
    assert_eq!(stale.map(|_| ()), Ok(()));
}

#[test]
fn entries_and_messages_name_their_writer() {
    let doc = reviewed();
    let step = raw(&doc, &as_officer(), |tx| {
        push_step(tx, "c02", "start", 0, "officer-b")
    });
    assert_eq!(step, Err(Refusal::NotTheAuthor("status log entry")));
    let comment = honest(&doc, &as_officer(), |d| {
        d.add_comment(None, "x", &Author::new("officer-b", "p"), 1)
    });
    assert!(matches!(comment, Err(Refusal::NotTheAuthor(_))));
    let mut am = doc.automerge().fork();
    let message = r#"{"by":"sup","dev":"console","what":"status:approve","c":"c01"}"#;
    am.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| CommitOptions::default().with_message(message.to_owned()),
        |tx| {
            let note = at(tx, &["criteria", "c01", "note"]);
            tx.splice_text(&note, 0, 0, "x")?;
            Ok(())
        },
    )
    .unwrap();
    let after = Assessment::from_automerge(am).unwrap();
    assert_eq!(
        check(&after, &doc.heads(), &as_officer()),
        Err(Refusal::NotTheAuthor("a change message"))
    );
}

#[test]
fn a_log_entry_written_as_a_javascript_literal_reads_and_passes() {
    // automerge-js 3 writes `0` inside a literal as a float, and strings as text.
    let doc = new_assessment();
    let after_edit = raw(&doc, &as_officer(), |tx| {
        let log = at(tx, &["criteria", "c01", "log"]);
        let entry = tx.insert_object(&log, 0, ObjType::Map).unwrap();
        let action = tx.put_object(&entry, "action", ObjType::Text).unwrap();
        tx.splice_text(&action, 0, 0, "submit").unwrap();
        tx.put(&entry, "round", ScalarValue::F64(0.0)).unwrap();
        let by = tx.put_object(&entry, "by", ObjType::Text).unwrap();
        tx.splice_text(&by, 0, 0, "officer-a").unwrap();
        tx.put(&entry, "device", "js").unwrap();
        tx.put(&entry, "at", ScalarValue::F64(1.7e12)).unwrap();
    });
    assert_eq!(after_edit.map(|_| ()), Ok(()));
    // The reader sees it as the JS reader does.
    let mut am = doc.automerge().fork();
    am.transact::<_, _, automerge::AutomergeError>(|tx| {
        let log = at(tx, &["criteria", "c01", "log"]);
        let entry = tx.insert_object(&log, 0, ObjType::Map)?;
        tx.put(&entry, "action", "submit")?;
        tx.put(&entry, "round", ScalarValue::F64(0.0))?;
        Ok(())
    })
    .unwrap();
    let read = Assessment::from_automerge(am).unwrap();
    assert_eq!(
        read.criterion_view("c01").unwrap().status,
        Status::Submitted
    );
    // A round with a fraction is no round.
    let fraction = raw(&doc, &as_officer(), |tx| {
        let log = at(tx, &["criteria", "c01", "log"]);
        let entry = tx.insert_object(&log, 0, ObjType::Map).unwrap();
        tx.put(&entry, "action", "submit").unwrap();
        tx.put(&entry, "round", ScalarValue::F64(0.5)).unwrap();
        tx.put(&entry, "by", "officer-a").unwrap();
        tx.put(&entry, "device", "js").unwrap();
        tx.put(&entry, "at", 1_i64).unwrap();
    });
    assert!(matches!(fraction, Err(Refusal::Malformed { .. })));
}

#[test]
fn sizes_are_bounded() {
    let doc = reviewed();
    let long = "x".repeat(limits::NOTE_CHARS + 1);
    let note = honest(&doc, &as_officer(), |d| {
        d.set_note("c01", &long, &officer(), 1)
    });
    assert!(matches!(note, Err(Refusal::TooLarge { .. })));
    let comment = honest(&doc, &as_officer(), |d| {
        d.add_comment(None, &long, &officer(), 1)
    });
    assert!(matches!(comment, Err(Refusal::TooLarge { .. })));
    let photo = signed_evidence(1, &officer()).photo;
    let caption = honest(&doc, &as_officer(), |d| {
        d.set_caption("c01", &photo, &long, &officer(), 1)
    });
    assert!(matches!(caption, Err(Refusal::TooLarge { .. })));
}

#[test]
fn writes_outside_the_schema_and_empty_changes_are_refused() {
    let doc = reviewed();
    let outside = raw(&doc, &as_officer(), |tx| {
        let entry = at(tx, &["criteria", "c01", "log"]);
        let new = tx.insert_object(&entry, 0, ObjType::Map).unwrap();
        tx.put_object(&new, "nested", ObjType::Map).unwrap();
    });
    assert!(matches!(outside, Err(Refusal::Malformed { .. })));
    let indicator = raw(&doc, &as_officer(), |tx| {
        let map = at(tx, &["indicators"]);
        tx.put(&map, "incidents", "many").unwrap();
    });
    assert!(matches!(indicator, Err(Refusal::Malformed { .. })));
    let mut am = doc.automerge().fork();
    am.empty_commit(CommitOptions::default());
    let empty = Assessment::from_automerge(am).unwrap();
    assert!(matches!(
        check(&empty, &doc.heads(), &as_officer()),
        Err(Refusal::Malformed { .. })
    ));
}

#[test]
fn a_settled_conflict_passes() {
    let doc = reviewed();
    let photo = signed_evidence(1, &officer()).photo;
    let (mut a, mut b) = (doc.clone(), doc.clone());
    b.set_actor(automerge::ActorId::random());
    a.set_caption("c01", &photo, "one", &officer(), 1).unwrap();
    b.set_caption("c01", &photo, "two", &officer(), 2).unwrap();
    a.merge(&b).unwrap();
    let path = a.conflicts()[0].path.clone();
    let settled = honest(&a, &as_supervisor(), |d| {
        d.settle(&path, FieldValue::Text("two".into()), &supervisor(), 3)
    });
    assert_eq!(settled.map(|_| ()), Ok(()));
}

/// The same content written by other changes, as a client crafting a look-alike would.
fn look_alike(doc: &automerge::Automerge) -> automerge::Automerge {
    fn copy(from: &automerge::Automerge, obj: &ObjId, tx: &mut Transaction<'_>, to: &ObjId) {
        for item in from.map_range(obj, ..) {
            copy_value(
                from,
                item.id(),
                item.value,
                tx,
                to,
                item.key.as_ref().into(),
            );
        }
    }
    fn copy_value(
        from: &automerge::Automerge,
        id: ObjId,
        value: automerge::ValueRef<'_>,
        tx: &mut Transaction<'_>,
        to: &ObjId,
        prop: automerge::Prop,
    ) {
        match value {
            automerge::ValueRef::Object(kind) => {
                let child = match &prop {
                    automerge::Prop::Map(key) => tx.put_object(to, key.as_str(), kind),
                    automerge::Prop::Seq(index) => tx.insert_object(to, *index, kind),
                }
                .unwrap();
                match kind {
                    ObjType::Text => tx
                        .splice_text(&child, 0, 0, &from.text(&id).unwrap())
                        .unwrap(),
                    ObjType::List => {
                        for (n, item) in from.list_range(&id, ..).enumerate() {
                            copy_value(from, item.id(), item.value, tx, &child, n.into());
                        }
                    }
                    _ => copy(from, &id, tx, &child),
                }
            }
            automerge::ValueRef::Scalar(scalar) => {
                let scalar = ScalarValue::from(scalar);
                match prop {
                    automerge::Prop::Map(key) => tx.put(to, key.as_str(), scalar),
                    automerge::Prop::Seq(index) => tx.insert(to, index, scalar),
                }
                .unwrap()
            }
        }
    }
    let mut out = automerge::Automerge::new();
    out.transact::<_, _, automerge::AutomergeError>(|tx| {
        copy(doc, &ROOT, tx, &ROOT);
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn a_new_document_must_start_with_the_genesis() {
    let mut doc = new_assessment();
    doc.set_note("c01", "offline", &officer(), 1).unwrap();
    assert_eq!(check_new(&doc, &as_officer()).map(|_| ()), Ok(()));
    // The next period's, with the evidence carried over.
    let next = Assessment::create_next(&reviewed(), "2026", doc.template().clone(), &officer(), 9)
        .unwrap();
    let carried = check_new(&next, &as_officer()).unwrap();
    assert_eq!(carried.evidence.len(), 1);
    // The same content made by other first changes reads as an assessment, but is not
    // one wardcheck created: its id could not be trusted to match its genesis.
    let crafted = Assessment::from_automerge(look_alike(doc.automerge())).unwrap();
    assert_eq!(crafted.view().unwrap(), doc.view().unwrap());
    assert_eq!(check_new(&crafted, &as_officer()), Err(Refusal::Genesis));
    // The genuine genesis with an extra root change rewriting the unit.
    let rewritten = raw(&doc, &as_officer(), |tx| {
        tx.put(at(tx, &["unit"]), "name", "x").unwrap()
    });
    assert_eq!(rewritten, Err(Refusal::Fixed("unit")));
}

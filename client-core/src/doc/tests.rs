use std::sync::Arc;

use super::*;
use crate::model::{Status, sample_templates};
use crate::testing::{sample_unit, signed_evidence};

fn template(version: u32) -> Arc<Template> {
    Arc::new(
        sample_templates()
            .into_iter()
            .find(|t| t.version == version)
            .unwrap(),
    )
}

fn officer(n: u32) -> Author {
    Author::new(format!("officer-{n}"), format!("phone-{n}"))
}

fn supervisor() -> Author {
    Author::new("supervisor", "console")
}

fn new_assessment() -> Assessment {
    Assessment::create(&sample_unit(), "2025", template(2023)).unwrap()
}

/// A second replica of `doc`, as another device would have after syncing.
fn replica(doc: &Assessment) -> Assessment {
    Assessment::load(&doc.save()).unwrap()
}

#[test]
fn a_new_assessment_has_every_criterion_not_started() {
    let doc = new_assessment();
    let view = doc.view().unwrap();
    assert_eq!(view.criteria.len(), 22);
    assert!(view.criteria.iter().all(|c| c.status == Status::NotStarted));
    assert_eq!(view.progress.to_string(), "0/22 met");
    assert_eq!(
        view.id,
        DocumentId::for_assessment("kontum-ngo-may", "2025")
    );
    assert_eq!(doc.id().unwrap(), view.id);
    assert_eq!(view.template.to_string(), "model-ward-antt@2023");
}

#[test]
fn officers_creating_the_same_assessment_offline_get_one_document() {
    let mut a = new_assessment();
    let mut b = new_assessment();
    a.set_note("c01", "from a", &officer(1), 1_000).unwrap();
    b.set_note("c02", "from b", &officer(2), 2_000).unwrap();
    a.merge(&b).unwrap();
    assert!(a.conflicts().is_empty(), "{:?}", a.conflicts());
    let creations = a
        .history(None)
        .iter()
        .filter(|h| h.what == "create")
        .count();
    assert_eq!(creations, 1);
    let view = a.view().unwrap();
    assert_eq!(view.criteria[0].note, "from a");
    assert_eq!(view.criteria[1].note, "from b");
}

#[test]
fn the_first_changes_are_the_same_bytes_everywhere_and_each_is_small() {
    let raw = |doc: &Assessment| -> Vec<Vec<u8>> {
        doc.automerge()
            .get_changes(&[])
            .iter()
            .map(|change| change.raw_bytes().to_vec())
            .collect()
    };
    let (a, b) = (raw(&new_assessment()), raw(&new_assessment()));
    assert_eq!(a, b);
    // The ~20 KB template travels in pieces, none bigger than a sync message.
    assert!(a.len() > 5, "{} changes", a.len());
    let sizes: Vec<usize> = a.iter().map(Vec::len).collect();
    assert!(
        sizes
            .iter()
            .all(|&size| size <= TEMPLATE_PIECE_BYTES + 1024),
        "{sizes:?}"
    );
}

#[test]
fn bad_units_and_periods_are_refused() {
    let mut unit = sample_unit();
    assert!(matches!(
        Assessment::create(&unit, "2025 H1", template(2023)),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        Assessment::create(&unit, "", template(2023)),
        Err(Error::InvalidInput(_))
    ));
    unit.id = " ".into();
    assert!(matches!(
        Assessment::create(&unit, "2025", template(2023)),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn the_lifecycle_with_its_rules() {
    let mut doc = new_assessment();
    let o = officer(1);
    // c04 needs three photos.
    assert_eq!(
        doc.step("c04", Action::Start, None, &o, 1).unwrap(),
        Status::InProgress
    );
    assert!(matches!(
        doc.step("c04", Action::Submit, None, &o, 2),
        Err(Error::NotEnoughEvidence {
            required: 3,
            have: 0
        })
    ));
    for seed in 0..3 {
        doc.add_evidence("c04", &signed_evidence(seed, &o), &o, 3)
            .unwrap();
    }
    assert_eq!(
        doc.step("c04", Action::Submit, None, &o, 4).unwrap(),
        Status::Submitted
    );
    assert!(matches!(
        doc.step("c04", Action::Return, Some("  "), &supervisor(), 5),
        Err(Error::InvalidInput(_))
    ));
    doc.step(
        "c04",
        Action::Return,
        Some("façade photo is blurred"),
        &supervisor(),
        6,
    )
    .unwrap();
    let view = doc.criterion_view("c04").unwrap();
    assert_eq!(view.status, Status::Returned);
    assert_eq!(
        view.review.unwrap().reason.as_deref(),
        Some("façade photo is blurred")
    );
    doc.step("c04", Action::Start, None, &o, 7).unwrap();
    doc.step("c04", Action::Submit, None, &o, 8).unwrap();
    doc.step("c04", Action::Approve, None, &supervisor(), 9)
        .unwrap();
    assert!(matches!(
        doc.step("c04", Action::Start, None, &o, 10),
        Err(Error::NotAllowed {
            action: Action::Start,
            status: Status::Approved
        })
    ));
    assert!(matches!(
        doc.step("c99", Action::Start, None, &o, 10),
        Err(Error::UnknownCriterion(_))
    ));
    assert_eq!(doc.progress().unwrap().to_string(), "1/22 met");
}

#[test]
fn a_stale_offline_edit_cannot_undo_a_later_review() {
    let mut phone = new_assessment();
    let o = officer(1);
    phone.step("c01", Action::Submit, None, &o, 1).unwrap();
    let mut console = replica(&phone);
    let mut offline = replica(&phone);
    console
        .step("c01", Action::Approve, None, &supervisor(), 2)
        .unwrap();
    // The second phone never saw the approval, and keeps working for days.
    offline
        .step("c01", Action::Start, None, &officer(2), 3)
        .unwrap();
    offline
        .step("c01", Action::Submit, None, &officer(2), 4)
        .unwrap();
    offline
        .step("c01", Action::Start, None, &officer(2), 5)
        .unwrap();
    for order in [[&console, &offline], [&offline, &console]] {
        let mut merged = replica(&phone);
        merged.merge(order[0]).unwrap();
        merged.merge(order[1]).unwrap();
        assert_eq!(
            merged.criterion_view("c01").unwrap().status,
            Status::Approved
        );
    }
}

#[test]
fn evidence_is_idempotent_removable_and_restorable() {
    let mut doc = new_assessment();
    let o = officer(1);
    let e = signed_evidence(1, &o);
    doc.add_evidence("c03", &e, &o, 1).unwrap();
    let heads = doc.heads();
    doc.add_evidence("c03", &e, &o, 2).unwrap();
    assert_eq!(doc.criterion_view("c03").unwrap().evidence, vec![e.clone()]);
    doc.remove_evidence("c03", &e.photo, &o, 3).unwrap();
    assert!(doc.criterion_view("c03").unwrap().evidence.is_empty());
    doc.add_evidence("c03", &e, &o, 4).unwrap();
    assert_eq!(doc.criterion_view("c03").unwrap().evidence, vec![e.clone()]);
    assert_ne!(doc.heads(), heads);
    let unknown = BlobHash::of(b"nothing");
    assert!(matches!(
        doc.set_caption("c03", &unknown, "x", &o, 5),
        Err(Error::UnknownEvidence(_))
    ));
}

#[test]
fn concurrent_captions_are_a_conflict_a_supervisor_settles() {
    let mut a = new_assessment();
    let e = signed_evidence(1, &officer(1));
    a.add_evidence("c05", &e, &officer(1), 1_000).unwrap();
    let mut b = replica(&a);
    a.set_caption("c05", &e.photo, "reception room", &officer(1), 2_000)
        .unwrap();
    b.set_caption("c05", &e.photo, "phòng tiếp dân", &officer(2), 3_000)
        .unwrap();
    a.merge(&b).unwrap();
    let conflicts = a.conflicts();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let conflict = &conflicts[0];
    assert_eq!(
        conflict.path,
        format!("criteria/c05/evidence/{}/caption", e.photo)
    );
    assert_eq!(conflict.criterion.as_deref(), Some("c05"));
    let mut seen: Vec<_> = conflict
        .values
        .iter()
        .map(|v| (v.by.as_str(), v.device.as_str(), v.at_ms, v.value.clone()))
        .collect();
    seen.sort_by_key(|v| v.2);
    assert_eq!(
        seen,
        vec![
            (
                "officer-1",
                "phone-1",
                2_000,
                FieldValue::Text("reception room".into())
            ),
            (
                "officer-2",
                "phone-2",
                3_000,
                FieldValue::Text("phòng tiếp dân".into())
            ),
        ]
    );
    a.settle(
        &conflict.path,
        FieldValue::Text("phòng tiếp dân".into()),
        &supervisor(),
        4_000,
    )
    .unwrap();
    assert!(a.conflicts().is_empty());
    assert_eq!(
        a.criterion_view("c05").unwrap().evidence[0].caption,
        "phòng tiếp dân"
    );
    assert!(matches!(
        a.settle("criteria/c05/log", FieldValue::Null, &supervisor(), 5_000),
        Err(Error::NoConflict(_))
    ));
    assert!(matches!(
        a.settle("schema", FieldValue::Int(9), &supervisor(), 5_000),
        Err(Error::NoConflict(_))
    ));
}

#[test]
fn concurrent_note_edits_both_survive() {
    let mut a = new_assessment();
    a.set_note("c02", "Trụ sở đạt chuẩn.", &officer(1), 1)
        .unwrap();
    let mut b = replica(&a);
    a.set_note("c02", "Trụ sở đạt chuẩn. Có camera.", &officer(1), 2)
        .unwrap();
    b.set_note("c02", "Ghi chú: Trụ sở đạt chuẩn.", &officer(2), 3)
        .unwrap();
    a.merge(&b).unwrap();
    assert_eq!(
        a.criterion_view("c02").unwrap().note,
        "Ghi chú: Trụ sở đạt chuẩn. Có camera."
    );
    assert!(a.conflicts().is_empty());
}

#[test]
fn history_says_who_changed_what_when() {
    let mut doc = new_assessment();
    doc.set_note("c09", "x", &officer(1), 5_000).unwrap();
    doc.step("c09", Action::Submit, None, &officer(2), 6_000)
        .unwrap();
    doc.set_indicator("incidents", 5, &officer(1), 7_000)
        .unwrap();
    let history = doc.history(Some("c09"));
    let summary: Vec<_> = history
        .iter()
        .map(|h| (h.by.as_str(), h.device.as_str(), h.what.as_str(), h.at_ms))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("officer-1", "phone-1", "note", 5_000),
            ("officer-2", "phone-2", "status:submit", 6_000),
        ]
    );
    assert_eq!(doc.history(None).len(), 4);
}

#[test]
fn indicators_and_comments() {
    let mut doc = new_assessment();
    doc.set_indicator("incidents", 5, &officer(1), 1).unwrap();
    assert!(matches!(
        doc.set_indicator("Incidents!", 5, &officer(1), 1),
        Err(Error::InvalidInput(_))
    ));
    doc.add_comment(Some("c10"), "Cần bổ sung ảnh.", &supervisor(), 2)
        .unwrap();
    doc.add_comment(None, "Good progress", &supervisor(), 3)
        .unwrap();
    assert!(matches!(
        doc.add_comment(None, "  ", &supervisor(), 4),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        doc.add_comment(Some("nope"), "x", &supervisor(), 4),
        Err(Error::UnknownCriterion(_))
    ));
    let view = doc.view().unwrap();
    assert_eq!(view.indicators.len(), 1);
    assert_eq!(view.indicators[0].value, Some(5));
    assert_eq!(view.comments.len(), 2);
    assert_eq!(view.comments[0].criterion.as_deref(), Some("c10"));
}

/// automerge-repo's JavaScript clients store a plain string as collaborative text (unless
/// wrapped in `ImmutableString`): a comment written that way still reads.
#[test]
fn a_comment_written_with_text_objects_reads() {
    use automerge::transaction::Transactable;

    let mut doc = new_assessment();
    doc.add_comment(None, "from Rust", &supervisor(), 1)
        .unwrap();
    let comments = doc.map(&doc.doc, &ROOT, "comments").unwrap();
    let mut tx = doc.doc.transaction();
    let entry = tx
        .insert_object(&comments, tx.length(&comments), ObjType::Map)
        .unwrap();
    for (key, value) in [
        ("by", "console-js"),
        ("device", "peer-1"),
        ("text", "từ JS"),
    ] {
        let text = tx.put_object(&entry, key, ObjType::Text).unwrap();
        tx.splice_text(&text, 0, 0, value).unwrap();
    }
    tx.put(&entry, "at", 7_i64).unwrap();
    tx.commit();
    let view = doc.view().unwrap();
    assert_eq!(view.comments.len(), 2);
    assert_eq!(
        view.comments[1],
        Comment {
            criterion: None,
            by: "console-js".into(),
            device: "peer-1".into(),
            at_ms: 7,
            text: "từ JS".into(),
        }
    );
}

#[test]
fn the_next_period_starts_from_the_previous_one() {
    let mut prev = new_assessment();
    let o = officer(1);
    let kept = signed_evidence(1, &o);
    let dropped = signed_evidence(2, &o);
    prev.add_evidence("c04", &kept, &o, 1).unwrap();
    prev.add_evidence("c07", &dropped, &o, 1).unwrap(); // c07 is not in the 2024 set
    prev.set_indicator("incidents", 11, &o, 2).unwrap();
    let mut next = Assessment::create_next(&prev, "2026", template(2024), &o, 3).unwrap();
    let view = next.view().unwrap();
    assert_eq!((view.period.as_str(), view.criteria.len()), ("2026", 20));
    assert_eq!(view.unit, sample_unit());
    let c04 = next.criterion_view("c04").unwrap();
    assert_eq!(c04.status, Status::NotStarted);
    assert_eq!(c04.evidence.len(), 1);
    assert!(c04.evidence[0].to_reconfirm);
    assert_eq!(view.indicators[0].previous, Some(11));
    assert_eq!(view.indicators[0].value, None);
    next.confirm_evidence("c04", &kept.photo, &o, 4).unwrap();
    assert!(!next.criterion_view("c04").unwrap().evidence[0].to_reconfirm);
    assert!(matches!(
        Assessment::create_next(&prev, "2025", template(2024), &o, 3),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn foreign_or_broken_documents_are_refused() {
    assert!(Assessment::load(b"not automerge").is_err());
    let mut other = Automerge::new();
    other
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "hello", "world")?;
            Ok(())
        })
        .unwrap();
    assert!(matches!(
        Assessment::load(&other.save()),
        Err(Error::Malformed(_))
    ));
    // A change that breaks the schema is refused by `apply`, and the document is unchanged.
    let mut doc = new_assessment();
    let mut vandal = doc.automerge().fork();
    vandal
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "criteria", "gone")?;
            Ok(())
        })
        .unwrap();
    let heads = doc.heads();
    assert!(matches!(
        doc.apply(&vandal.save()),
        Err(Error::Malformed(_))
    ));
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.view().unwrap().criteria.len(), 22);
}

#[test]
fn assessments_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Assessment>();
}

#[test]
fn a_unit_is_named_in_printable_characters_of_bounded_length() {
    let template = template(2024);
    for name in [
        "Công an phường\u{202e}ưhp",
        "Ngô Mây\n",
        &"x".repeat(UNIT_FIELD_CHARS + 1),
    ] {
        let unit = Unit {
            name: name.into(),
            ..sample_unit()
        };
        assert!(matches!(
            Assessment::create(&unit, "2025", template.clone()),
            Err(Error::InvalidInput(_))
        ));
    }
}

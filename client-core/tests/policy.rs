//! The change policy against random writes by an officer's device: any object, any
//! operation, in any order and grouping. Whatever it lets through never changes a status
//! away from what reviewers decided, never makes the document unreadable (now or after a
//! save and load), and never alters an evidence record's signed fields. It never panics.

use std::sync::Arc;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};
use proptest::prelude::*;
use wardcheck_core::doc::{Assessment, Evidence};
use wardcheck_core::model::{Action, Author, Role, Status, sample_templates};
use wardcheck_core::policy::{self, Writer};
use wardcheck_core::testing::{sample_unit, signed_evidence};

const OFFICER: &str = "officer-a";

/// c01 returned, c02 approved, c03 submitted with a photo, c04 with a photo and a note,
/// a comment and an indicator: something of every kind to attack.
fn reviewed() -> Assessment {
    let template = Arc::new(sample_templates().remove(1));
    let mut doc = Assessment::create(&sample_unit(), "2025", template).unwrap();
    let (o, s) = (
        Author::new(OFFICER, "phone-a"),
        Author::new("sup", "console"),
    );
    doc.step("c01", Action::Submit, None, &o, 1).unwrap();
    doc.step("c01", Action::Return, Some("blurred"), &s, 2)
        .unwrap();
    doc.step("c02", Action::Submit, None, &o, 3).unwrap();
    doc.step("c02", Action::Approve, None, &s, 4).unwrap();
    doc.add_evidence("c03", &signed_evidence(1, &o), &o, 5)
        .unwrap();
    doc.step("c03", Action::Submit, None, &o, 6).unwrap();
    doc.add_evidence("c04", &signed_evidence(2, &o), &o, 7)
        .unwrap();
    doc.set_note("c04", "camera", &o, 8).unwrap();
    doc.add_comment(Some("c01"), "will redo", &o, 9).unwrap();
    doc.set_indicator("incidents", 2, &o, 10).unwrap();
    doc
}

/// Every object of the document, depth first.
fn objects(doc: &Automerge) -> Vec<(ObjId, ObjType)> {
    fn walk(doc: &Automerge, obj: ObjId, kind: ObjType, out: &mut Vec<(ObjId, ObjType)>) {
        out.push((obj.clone(), kind));
        let children: Vec<(ObjId, ObjType)> = match kind {
            ObjType::Map | ObjType::Table => doc
                .map_range(&obj, ..)
                .filter_map(|item| match item.value {
                    automerge::ValueRef::Object(kind) => Some((item.id(), kind)),
                    _ => None,
                })
                .collect(),
            ObjType::List => doc
                .list_range(&obj, ..)
                .filter_map(|item| match item.value {
                    automerge::ValueRef::Object(kind) => Some((item.id(), kind)),
                    _ => None,
                })
                .collect(),
            ObjType::Text => Vec::new(),
        };
        for (child, kind) in children {
            walk(doc, child, kind, out);
        }
    }
    let mut out = Vec::new();
    walk(doc, ROOT, ObjType::Map, &mut out);
    out
}

/// Keys a writer might use: the schema's, and others.
const KEYS: &[&str] = &[
    "action",
    "round",
    "by",
    "device",
    "at",
    "reason",
    "text",
    "criterion",
    "caption",
    "removed",
    "to_reconfirm",
    "lat",
    "lon",
    "officer",
    "signature",
    "captured_at",
    "id",
    "name",
    "period",
    "parts",
    "schema",
    "c01",
    "c02",
    "note",
    "log",
    "evidence",
    "incidents",
    "x",
];

#[derive(Debug, Clone)]
enum Value {
    Str(usize),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
    Null,
    Counter(i64),
}

const STRINGS: &[&str] = &[
    "approve", "return", "start", "submit", OFFICER, "sup", "", "x",
];

impl Value {
    fn scalar(&self) -> ScalarValue {
        match self {
            Value::Str(n) => ScalarValue::from(STRINGS[n % STRINGS.len()]),
            Value::Int(i) => ScalarValue::Int(*i),
            Value::Uint(u) => ScalarValue::Uint(*u),
            Value::Float(f) => ScalarValue::F64(*f),
            Value::Bool(b) => ScalarValue::Boolean(*b),
            Value::Null => ScalarValue::Null,
            Value::Counter(c) => ScalarValue::counter(*c),
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<usize>().prop_map(Value::Str),
        prop_oneof![Just(0i64), Just(1), Just(-1), any::<i64>()].prop_map(Value::Int),
        prop_oneof![Just(0u64), Just(1), Just(2), Just(u64::MAX)].prop_map(Value::Uint),
        prop_oneof![Just(0.0f64), Just(1.0), Just(0.5), Just(f64::NAN)].prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        any::<i64>().prop_map(Value::Counter),
    ]
}

/// One write, on the `obj`th object (modulo their number), at the `key`th key or index.
#[derive(Debug, Clone)]
enum Write {
    Put {
        obj: usize,
        key: usize,
        value: Value,
    },
    PutObject {
        obj: usize,
        key: usize,
        kind: u8,
    },
    Delete {
        obj: usize,
        key: usize,
    },
    Insert {
        obj: usize,
        at: usize,
        value: Value,
    },
    /// A log entry or comment, complete or not, in the officer's name or another's.
    Entry {
        obj: usize,
        action: usize,
        round: Value,
        mine: bool,
        fields: u8,
    },
    Splice {
        obj: usize,
        at: usize,
        delete: isize,
        text: String,
    },
    Increment {
        obj: usize,
        key: usize,
    },
}

fn write() -> impl Strategy<Value = Write> {
    let obj = any::<usize>();
    let key = any::<usize>();
    prop_oneof![
        (obj, key, value()).prop_map(|(obj, key, value)| Write::Put { obj, key, value }),
        (obj, key, 0u8..3).prop_map(|(obj, key, kind)| Write::PutObject { obj, key, kind }),
        (obj, key).prop_map(|(obj, key)| Write::Delete { obj, key }),
        (obj, key, value()).prop_map(|(obj, at, value)| Write::Insert { obj, at, value }),
        (obj, 0usize..4, value(), any::<bool>(), any::<u8>()).prop_map(
            |(obj, action, round, mine, fields)| Write::Entry {
                obj,
                action,
                round,
                mine,
                fields
            }
        ),
        (obj, key, -2isize..3, "[a-z]{0,3}").prop_map(|(obj, at, delete, text)| {
            Write::Splice {
                obj,
                at,
                delete,
                text,
            }
        }),
        (obj, key).prop_map(|(obj, key)| Write::Increment { obj, key }),
    ]
}

/// Makes `write` in `tx`, if Automerge allows it at all (errors are part of the game).
fn apply(tx: &mut Transaction<'_>, objects: &[(ObjId, ObjType)], write: &Write) {
    let pick = |n: usize| objects[n % objects.len()].clone();
    let key = |n: usize| KEYS[n % KEYS.len()];
    let _ = match write {
        Write::Put { obj, key: k, value } => {
            let (obj, kind) = pick(*obj);
            match kind {
                ObjType::List | ObjType::Text => {
                    let len = tx.length(&obj);
                    tx.put(&obj, *k % (len + 1), value.scalar())
                }
                _ => tx.put(&obj, key(*k), value.scalar()),
            }
        }
        Write::PutObject { obj, key: k, kind } => {
            let kind = [ObjType::Map, ObjType::List, ObjType::Text][*kind as usize];
            tx.put_object(pick(*obj).0, key(*k), kind).map(drop)
        }
        Write::Delete { obj, key: k } => {
            let (obj, kind) = pick(*obj);
            match kind {
                ObjType::List | ObjType::Text => {
                    let len = tx.length(&obj).max(1);
                    tx.delete(&obj, *k % len)
                }
                _ => tx.delete(&obj, key(*k)),
            }
        }
        Write::Insert { obj, at, value } => {
            let obj = pick(*obj).0;
            let len = tx.length(&obj);
            tx.insert(&obj, *at % (len + 1), value.scalar())
        }
        Write::Entry {
            obj,
            action,
            round,
            mine,
            fields,
        } => {
            let obj = pick(*obj).0;
            let len = tx.length(&obj);
            tx.insert_object(&obj, len, ObjType::Map).and_then(|entry| {
                let all = [
                    ("action", ScalarValue::from(STRINGS[*action])),
                    ("round", round.scalar()),
                    ("by", ScalarValue::from(if *mine { OFFICER } else { "sup" })),
                    ("device", ScalarValue::from("phone-a")),
                    ("at", ScalarValue::Int(1)),
                    ("reason", ScalarValue::from("why")),
                    ("text", ScalarValue::from("a comment")),
                ];
                for (n, (field, value)) in all.into_iter().enumerate() {
                    // Most entries get most fields; some lack one.
                    if *fields & (1 << n) != 0 || *fields > 200 {
                        tx.put(&entry, field, value)?;
                    }
                }
                Ok(())
            })
        }
        Write::Splice {
            obj,
            at,
            delete,
            text,
        } => {
            let obj = pick(*obj).0;
            let len = tx.length(&obj);
            tx.splice_text(&obj, *at % (len + 1), *delete, text)
        }
        Write::Increment { obj, key: k } => tx.increment(pick(*obj).0, key(*k), 1),
    };
}

/// An evidence record's signed fields, as stored, by photo.
fn signed(doc: &Assessment) -> Vec<Evidence> {
    let mut all: Vec<Evidence> = doc
        .view()
        .unwrap()
        .criteria
        .into_iter()
        .flat_map(|c| c.evidence)
        .collect();
    all.sort_by_key(|e| e.photo);
    all
}

/// Makes `changes` as a hostile officer's device on a copy of `before`; checks them with
/// the policy, and if it takes them, that they are harmless. Returns whether it took them.
fn check_writes(
    before: &Assessment,
    changes: &[Vec<Write>],
    actor: [u8; 16],
) -> Result<bool, TestCaseError> {
    let objects = objects(before.automerge());
    let mut hostile = before.automerge().fork().with_actor(ActorId::from(actor));
    for writes in changes {
        let _ = hostile.transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default(),
            |tx| {
                for write in writes {
                    apply(tx, &objects, write);
                }
                Ok(())
            },
        );
    }
    let mut after = before.clone();
    // As the relay does: applied unchecked to a copy, then only the policy decides.
    let message = sync_message(&hostile, before);
    if after
        .receive_sync_message_unchecked(&mut Default::default(), message)
        .is_err()
    {
        return Ok(false);
    }
    let writer = Writer {
        user: OFFICER,
        role: Role::Officer,
    };
    if policy::check(&after, &before.heads(), &writer).is_err() {
        return Ok(false);
    }
    // Taken: it must be harmless.
    let view = after.view().expect("a document the policy took reads");
    let reloaded = Assessment::load(&after.save()).expect("and loads again");
    prop_assert_eq!(reloaded.view().unwrap(), view.clone());
    let old = before.view().unwrap();
    for (was, now) in old.criteria.iter().zip(&view.criteria) {
        let reviews = |c: &wardcheck_core::doc::CriterionView| {
            c.log
                .iter()
                .filter(|t| t.action.is_review())
                .cloned()
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(reviews(was), reviews(now));
        prop_assert_eq!(&was.review, &now.review);
        if was.status == Status::Approved {
            prop_assert_eq!(now.status, Status::Approved);
        }
    }
    let now = signed(&after);
    for evidence in signed(before) {
        if let Some(now) = now.iter().find(|e| e.photo == evidence.photo) {
            prop_assert_eq!(now.claim(), evidence.claim());
            prop_assert_eq!(now.signature, evidence.signature);
        }
    }
    prop_assert_eq!(view.unit, old.unit);
    prop_assert_eq!(view.period, old.period);
    Ok(true)
}

#[test]
fn what_the_policy_lets_an_officer_write_keeps_reviews_readability_and_evidence() {
    let before = reviewed();
    let taken = std::sync::atomic::AtomicUsize::new(0);
    let cases = 400;
    let strategy = (
        prop::collection::vec(prop::collection::vec(write(), 1..5), 1..4),
        any::<[u8; 16]>(),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    runner
        .run(&strategy, |(changes, actor)| {
            if check_writes(&before, &changes, actor)? {
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    // Not a test that passes by refusing everything: a share of the random writes is
    // harmless (notes, comments, steps in the officer's name) and taken.
    let taken = taken.into_inner();
    eprintln!("{taken} of {cases} random change sets taken");
    assert!(
        taken * 20 >= cases as usize,
        "only {taken} of {cases} taken"
    );
}

/// The hostile document's changes since `before`, as one sync message would carry them.
fn sync_message(hostile: &Automerge, before: &Assessment) -> automerge::sync::Message {
    automerge::sync::Message {
        heads: hostile.get_heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: hostile.save_after(&before.heads()).into(),
        flags: None,
        version: automerge::sync::MessageVersion::V2,
    }
}

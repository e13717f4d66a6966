//! A hostile officer's device: random writes to any object of an assessment, any
//! operation, in any order and grouping, and what the change policy must make of them
//! (whatever it lets through never changes a status away from what reviewers decided,
//! never makes the document unreadable, now or after a save and load, and never alters an
//! evidence record's signed fields). Shared by the property test (`tests/policy.rs`,
//! writes drawn by proptest) and the `policy` fuzz target (writes decoded from bytes,
//! [`writes_from_bytes`]).

use std::fmt::Debug;
use std::sync::Arc;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

use crate::doc::{Assessment, Evidence};
use crate::model::{Action, Author, Role, Status, sample_templates};
use crate::policy::{self, Writer};
use crate::testing::{sample_unit, signed_evidence};

/// The officer the hostile device is enrolled for.
pub const OFFICER: &str = "officer-a";

/// c01 returned, c02 approved, c03 submitted with a photo, c04 with a photo and a note,
/// a comment and an indicator: something of every kind to attack.
pub fn reviewed() -> Assessment {
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
pub const KEYS: &[&str] = &[
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

/// A scalar to write.
#[derive(Debug, Clone)]
pub enum Value {
    /// The `n`th of [`STRINGS`] (modulo their number).
    Str(usize),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A float (NaN included).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Null.
    Null,
    /// A counter.
    Counter(i64),
}

/// Strings a writer might use: actions, names, nothing.
pub const STRINGS: &[&str] = &[
    "approve", "return", "start", "submit", OFFICER, "sup", "", "x",
];

impl Value {
    /// The scalar this value writes.
    pub fn scalar(&self) -> ScalarValue {
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

/// One write, on the `obj`th object (modulo their number), at the `key`th of [`KEYS`] or
/// the `key`th index (modulo the length).
#[derive(Debug, Clone)]
#[allow(missing_docs)] // the fields are named for what they pick
pub enum Write {
    /// A scalar put at a key or index.
    Put {
        obj: usize,
        key: usize,
        value: Value,
    },
    /// A new map, list or text (`kind` 0, 1, 2) put at a key.
    PutObject { obj: usize, key: usize, kind: u8 },
    /// A key or an element deleted.
    Delete { obj: usize, key: usize },
    /// A scalar inserted into a sequence.
    Insert { obj: usize, at: usize, value: Value },
    /// A log entry or comment appended, complete or not (`fields`: a bit per field), in the
    /// officer's name or another's.
    Entry {
        obj: usize,
        action: usize,
        round: Value,
        mine: bool,
        fields: u8,
    },
    /// Text spliced.
    Splice {
        obj: usize,
        at: usize,
        delete: isize,
        text: String,
    },
    /// A counter incremented.
    Increment { obj: usize, key: usize },
}

/// Makes `write` in `tx`, if Automerge allows it at all (errors are part of the game).
pub fn apply(tx: &mut Transaction<'_>, objects: &[(ObjId, ObjType)], write: &Write) {
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
            let kind = [ObjType::Map, ObjType::List, ObjType::Text][usize::from(*kind % 3)];
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
                    (
                        "action",
                        ScalarValue::from(STRINGS[*action % STRINGS.len()]),
                    ),
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
/// the policy, and if it takes them, that they are harmless. Returns whether it took them;
/// an error says what harm got through.
pub fn check_writes(
    before: &Assessment,
    changes: &[Vec<Write>],
    actor: [u8; 16],
) -> Result<bool, String> {
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
    // The policy catches Automerge's panics on forged changes (it refuses them as
    // malformed); libFuzzer's panic hook would abort on them all the same, so it is set
    // aside while the policy checks. A panic anywhere else still fails the input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let checked = policy::check(&after, &before.heads(), &writer);
    std::panic::set_hook(hook);
    if checked.is_err() {
        return Ok(false);
    }
    // Taken: it must be harmless.
    let view = after
        .view()
        .map_err(|e| format!("a document the policy took does not read: {e}"))?;
    let reloaded = Assessment::load(&after.save())
        .map_err(|e| format!("a document the policy took does not load again: {e}"))?;
    same(
        "the view after a save and load",
        &reloaded.view().map_err(|e| e.to_string())?,
        &view,
    )?;
    let old = before.view().unwrap();
    for (was, now) in old.criteria.iter().zip(&view.criteria) {
        let reviews = |c: &crate::doc::CriterionView| {
            c.log
                .iter()
                .filter(|t| t.action.is_review())
                .cloned()
                .collect::<Vec<_>>()
        };
        same("the reviews", &reviews(was), &reviews(now))?;
        same("the review", &was.review, &now.review)?;
        if was.status == Status::Approved {
            same("an approved status", &now.status, &Status::Approved)?;
        }
    }
    let now = signed(&after);
    for evidence in signed(before) {
        if let Some(now) = now.iter().find(|e| e.photo == evidence.photo) {
            same("a signed claim", &now.claim(), &evidence.claim())?;
            same("a signature", &now.signature, &evidence.signature)?;
        }
    }
    same("the unit", &view.unit, &old.unit)?;
    same("the period", &view.period, &old.period)?;
    Ok(true)
}

/// `Ok` if `a` equals `b`, else what differs.
fn same<T: PartialEq + Debug>(what: &str, a: &T, b: &T) -> Result<(), String> {
    if a == b {
        Ok(())
    } else {
        Err(format!("{what} changed: {b:?} became {a:?}"))
    }
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

/// Change sets and an actor decoded from `data`, for the fuzz target: the first byte picks
/// the actor, then every 6 bytes make one write (the top bit of its first byte starts a new
/// change).
pub fn writes_from_bytes(data: &[u8]) -> (Vec<Vec<Write>>, [u8; 16]) {
    let actor = [data.first().copied().unwrap_or(1) | 1; 16];
    let mut changes: Vec<Vec<Write>> = vec![Vec::new()];
    for bytes in data.get(1..).unwrap_or_default().chunks_exact(6) {
        let [op, obj, key, kind, small, wide] = [0, 1, 2, 3, 4, 5].map(|i| bytes[i]);
        if op & 0x80 != 0 && changes.last().is_some_and(|c| !c.is_empty()) {
            changes.push(Vec::new());
        }
        let (obj, key) = (usize::from(obj), usize::from(key));
        let value = value_from(kind, small, wide);
        let write = match op % 7 {
            0 => Write::Put { obj, key, value },
            1 => Write::PutObject {
                obj,
                key,
                kind: kind % 3,
            },
            2 => Write::Delete { obj, key },
            3 => Write::Insert {
                obj,
                at: key,
                value,
            },
            4 => Write::Entry {
                obj,
                action: usize::from(small % 4),
                round: value,
                mine: kind & 1 == 0,
                fields: wide,
            },
            5 => Write::Splice {
                obj,
                at: key,
                delete: isize::from(small % 5) - 2,
                text: (0..kind % 4)
                    .map(|n| char::from(b'a' + wide.wrapping_add(n) % 26))
                    .collect(),
            },
            _ => Write::Increment { obj, key },
        };
        if let Some(change) = changes.last_mut() {
            change.push(write);
        }
    }
    (changes, actor)
}

/// A value from three bytes: its kind, and a small and a wide payload (edges included).
fn value_from(kind: u8, small: u8, wide: u8) -> Value {
    let edge_int = [0, 1, -1, i64::MAX, i64::MIN, i64::from(wide)][usize::from(small % 6)];
    match (kind >> 2) % 7 {
        0 => Value::Str(usize::from(small)),
        1 => Value::Int(edge_int),
        2 => Value::Uint([0, 1, 2, u64::MAX, u64::from(wide)][usize::from(small % 5)]),
        3 => Value::Float([0.0, 1.0, 0.5, f64::NAN, f64::from(wide)][usize::from(small % 5)]),
        4 => Value::Bool(small & 1 == 1),
        5 => Value::Null,
        _ => Value::Counter(edge_int),
    }
}

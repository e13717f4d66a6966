//! The change policy: which changes to an assessment a writer may make.
//!
//! The relay accepts any automerge-repo client, so a modified phone can send any
//! Automerge change. This module is the one rule book, a pure function over the document
//! after the changes, the heads before them and the writer: [`check`]. The relay calls it
//! on every path that takes changes in (sync, a new document's push, concurrent pushes
//! merged, the console's reviews), and a phone's [`crate::Workspace`] calls it before it
//! commits its own edits, so an honest phone never makes a change the relay refuses.
//! It reads the new changes operation by operation and places each operation's object in
//! the schema (see [`crate::doc`]):
//!
//! - **The genesis never changes**: `schema`, `unit`, `period`, `template` and its pieces,
//!   the criteria and their `note`/`evidence`/`log` objects, the lists and maps under the
//!   root. A new document's genesis must be exactly the deterministic one
//!   ([`check_new`]).
//! - **Logs and comments are append-only**: an entry, by its Automerge object id, never
//!   changes or disappears once written; new entries are complete, typed and written in
//!   their author's name.
//! - **Reviews**: only reviewer roles approve or return, only over a submission of the
//!   round they close (or, for a return, an approval being withdrawn), never in a round
//!   ahead of the criterion's. Officers' steps are never ahead of the current round, and
//!   never in the round of an approval: only a return reopens an approved criterion.
//! - **Evidence**: a record is added under its photo's hash once; its signed fields never
//!   change (the relay's signature verdict stays true); only `caption`, `removed` and
//!   `to_reconfirm` do.
//! - **Notes** hold text; **indicators** whole numbers.
//! - **References point where an operation acts**: its `pred` and its sequence element
//!   name operations at its own object and key ([`refs`] says why).
//! - **Sizes are bounded** ([`limits`]): operations and entries per change, string
//!   lengths, entries per document.
//!
//! A change set is taken or refused whole, with a [`Refusal`] that says why.

mod entries;
pub mod limits;
mod place;
mod refs;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use automerge::legacy::{Key, ObjectId, Op, OpType};
use automerge::{ChangeHash, ExpandedChange, ObjId, ReadDoc, ScalarValue};

use crate::blob::BlobHash;
use crate::doc::{Assessment, ChangeNote, Evidence, read};
use crate::model::Role;
use place::{List, Place};

/// Who writes: the user the changes must be made by, and their role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer<'a> {
    /// The user id new entries must name as their author.
    pub user: &'a str,
    /// What the user may do.
    pub role: Role,
}

/// What a change set that passed brings that the caller acts on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admitted {
    /// The evidence records it adds, with their criterion: signatures to verify, blobs
    /// the document now references.
    pub evidence: Vec<(String, Evidence)>,
}

/// Why a change set was refused. The messages name no one: they reach logs and phones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A change touches the genesis or the fixed structure.
    #[error("the assessment's {0} cannot change")]
    Fixed(&'static str),
    /// A new document does not start with the deterministic genesis of its unit, period
    /// and template.
    #[error("the document does not start as an assessment created by wardcheck")]
    Genesis,
    /// A log entry or comment written earlier is changed or removed.
    #[error("{0} entries are append-only: once written, an entry never changes")]
    AppendOnly(&'static str),
    /// An evidence record's signed fields are changed, or a record replaced or deleted.
    #[error("evidence is never replaced or deleted, and its signed fields never change")]
    SignedEvidence,
    /// An officer approves or returns.
    #[error("only supervisors may approve or return a criterion")]
    NotAReviewer,
    /// A review with nothing to review in its round.
    #[error("nothing to review: {0} needs a submission of the round it closes")]
    NothingToReview(&'static str),
    /// An officer's step that would reopen an approved criterion.
    #[error("an approved criterion is reopened only by a supervisor's return")]
    Approved,
    /// A status step in a round the criterion has not reached.
    #[error("a step in round {round} is ahead of the criterion's round {current}")]
    FutureRound {
        /// The round the step names.
        round: u64,
        /// The criterion's round.
        current: u64,
    },
    /// An entry or change message names someone else as its author.
    #[error("{0} names another user as its author")]
    NotTheAuthor(&'static str),
    /// Something is missing, of the wrong type or outside the schema.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What is malformed.
        what: &'static str,
        /// How.
        why: &'static str,
    },
    /// Something is bigger than [`limits`] allow.
    #[error("too large: {what} has {size}, at most {limit} allowed")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size (characters, operations or entries).
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Refusal {
    /// A stable name for the kind of refusal, for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Fixed(_) => "fixed",
            Refusal::Genesis => "genesis",
            Refusal::AppendOnly(_) => "append_only",
            Refusal::SignedEvidence => "signed_evidence",
            Refusal::NotAReviewer => "not_a_reviewer",
            Refusal::NothingToReview(_) => "nothing_to_review",
            Refusal::Approved => "approved",
            Refusal::FutureRound { .. } => "future_round",
            Refusal::NotTheAuthor(_) => "not_the_author",
            Refusal::Malformed { .. } => "malformed",
            Refusal::TooLarge { .. } => "too_large",
        }
    }
}

fn malformed(what: &'static str, why: &'static str) -> Refusal {
    Refusal::Malformed { what, why }
}

fn bounded(what: &'static str, size: usize, limit: usize) -> Result<(), Refusal> {
    if size > limit {
        Err(Refusal::TooLarge { what, size, limit })
    } else {
        Ok(())
    }
}

/// Checks the changes `doc` holds beyond `since` (the heads before them), made by
/// `writer`. `Ok` with what they add if every one of them may be taken in; the first
/// reason to refuse otherwise.
///
/// Automerge 0.12 rebuilds changes from its operations, and panics on some it took in
/// from a forged change (a predecessor or element that is not where the operation
/// acts): such a document is refused too, as malformed.
pub fn check(doc: &Assessment, since: &[ChangeHash], writer: &Writer) -> Result<Admitted, Refusal> {
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_changes(doc, since, writer)
    }));
    checked.unwrap_or_else(|_| {
        Err(malformed(
            "change",
            "Automerge cannot rebuild the document's changes after it",
        ))
    })
}

fn check_changes(
    doc: &Assessment,
    since: &[ChangeHash],
    writer: &Writer,
) -> Result<Admitted, Refusal> {
    let changes = doc.automerge().get_changes(since);
    // Bounded before they are decoded: a decoded operation takes far more memory than
    // its encoding.
    for change in &changes {
        if change.is_empty() {
            return Err(malformed("change", "it has no operations"));
        }
        bounded(
            "a change (operations)",
            change.len(),
            limits::OPS_PER_CHANGE,
        )?;
    }
    let changes: Vec<ExpandedChange> = changes.iter().map(|change| change.decode()).collect();
    if changes.is_empty() {
        return Ok(Admitted::default());
    }
    let mut walk = Walk::new(doc, since, writer, &changes);
    for change in &changes {
        walk.change(change)?;
    }
    walk.finish()
}

/// Checks a document new to the checker: its first changes must be the deterministic
/// genesis that [`Assessment::create`] makes for its unit, period and template, and
/// everything after them passes [`check`].
pub fn check_new(doc: &Assessment, writer: &Writer) -> Result<Admitted, Refusal> {
    let am = doc.automerge();
    let unit = read::unit_of(am).map_err(|_| Refusal::Genesis)?;
    let period = read::string(am, &automerge::ROOT, "period").map_err(|_| Refusal::Genesis)?;
    let genesis =
        Assessment::create(&unit, &period, doc.template().clone()).map_err(|_| Refusal::Genesis)?;
    let heads = genesis.heads();
    if heads
        .iter()
        .any(|head| am.get_change_meta_by_hash(head).is_none())
    {
        return Err(Refusal::Genesis);
    }
    check(doc, &heads, writer)
}

/// A new entry of a log or of the comments.
struct NewEntry {
    list: List,
    obj: ObjId,
}

/// A new evidence record: its criterion, its key (the photo's hash) in the criterion's
/// evidence map, and itself.
struct NewRecord {
    criterion: String,
    key: String,
    map: ObjId,
    obj: ObjId,
}

/// One pass over a change set's operations, then the checks of what they leave.
struct Walk<'a> {
    doc: &'a Assessment,
    writer: &'a Writer<'a>,
    /// Objects the change set creates: they may be written until it ends.
    created: HashSet<ObjId>,
    places: BTreeMap<ObjId, Place>,
    entries: Vec<NewEntry>,
    records: Vec<NewRecord>,
    /// Objects whose final size is checked: notes, existing records' captions.
    notes: HashSet<ObjId>,
    touched_records: HashSet<ObjId>,
    indicators: bool,
    refs: refs::References<'a>,
}

impl<'a> Walk<'a> {
    fn new(
        doc: &'a Assessment,
        since: &'a [ChangeHash],
        writer: &'a Writer<'a>,
        changes: &[ExpandedChange],
    ) -> Self {
        let created = changes
            .iter()
            .flat_map(|change| {
                change
                    .operations
                    .iter()
                    .enumerate()
                    .filter(|(_, op)| matches!(op.action, OpType::Make(_)))
                    .map(|(n, _)| op_id(change, n))
            })
            .collect();
        Self {
            doc,
            writer,
            created,
            places: BTreeMap::new(),
            entries: Vec::new(),
            records: Vec::new(),
            notes: HashSet::new(),
            touched_records: HashSet::new(),
            indicators: false,
            refs: refs::References::new(doc.automerge(), since, changes),
        }
    }

    fn change(&mut self, change: &ExpandedChange) -> Result<(), Refusal> {
        self.message(change.message.as_deref())?;
        let entries_before = self.entries.len() + self.records.len();
        for (n, op) in change.operations.iter().enumerate() {
            self.op(op_id(change, n), op)?;
        }
        bounded(
            "a change (new entries)",
            self.entries.len() + self.records.len() - entries_before,
            limits::ENTRIES_PER_CHANGE,
        )
    }

    /// A change's message, if it is wardcheck's note ([`ChangeNote`]), names the writer:
    /// history shows changes by it.
    fn message(&self, message: Option<&str>) -> Result<(), Refusal> {
        let Some(message) = message else {
            return Ok(());
        };
        bounded(
            "a change message (bytes)",
            message.len(),
            limits::MESSAGE_BYTES,
        )?;
        match serde_json::from_str::<ChangeNote>(message) {
            Ok(note) if note.by != self.writer.user => {
                Err(Refusal::NotTheAuthor("a change message"))
            }
            _ => Ok(()),
        }
    }

    fn place(&mut self, obj: &ObjectId) -> Result<Place, Refusal> {
        let id = obj_id(obj);
        if let Some(place) = self.places.get(&id) {
            return Ok(place.clone());
        }
        let place = place::of(self.doc.automerge(), &id).ok_or(malformed(
            "change",
            "it writes to an object the document lacks",
        ))?;
        self.places.insert(id, place.clone());
        Ok(place)
    }

    fn op(&mut self, id: ObjId, op: &Op) -> Result<(), Refusal> {
        self.refs.check(&id, op)?;
        let target = obj_id(&op.obj);
        let key = match &op.key {
            Key::Map(key) => Some(key.as_str()),
            Key::Seq(_) => None,
        };
        match self.place(&op.obj)? {
            Place::Fixed(what) => Err(Refusal::Fixed(what)),
            Place::Outside => Err(malformed("change", "it writes outside the schema")),
            Place::Note => match op.action {
                OpType::Put(ScalarValue::Str(_)) | OpType::Delete => {
                    self.notes.insert(target);
                    Ok(())
                }
                _ => Err(malformed("note", "a note holds text only")),
            },
            Place::EvidenceMap { criterion } => {
                let key = key.ok_or(Refusal::SignedEvidence)?;
                let new_record = matches!(op.action, OpType::Make(automerge::ObjType::Map))
                    && op.pred.is_empty();
                if !new_record {
                    return Err(Refusal::SignedEvidence);
                }
                if key.parse::<BlobHash>().map(|h| h.to_hex()).as_deref() != Ok(key) {
                    return Err(malformed("evidence", "a record's key is its photo's hash"));
                }
                self.records.push(NewRecord {
                    criterion,
                    key: key.to_owned(),
                    map: target,
                    obj: id,
                });
                Ok(())
            }
            Place::Record => {
                let key = key.ok_or(Refusal::SignedEvidence)?;
                if self.created.contains(&target) {
                    return new_field(&op.action, entries::RECORD_FIELDS, key, "evidence");
                }
                // Settling a conflict may delete the values it does not keep.
                let allowed = matches!(
                    (key, &op.action),
                    ("caption" | "removed" | "to_reconfirm", OpType::Delete)
                        | ("caption", OpType::Put(ScalarValue::Str(_)))
                        | ("caption", OpType::Make(automerge::ObjType::Text))
                        | (
                            "removed" | "to_reconfirm",
                            OpType::Put(ScalarValue::Boolean(_))
                        )
                );
                if !allowed {
                    return Err(Refusal::SignedEvidence);
                }
                self.touched_records.insert(target);
                Ok(())
            }
            Place::RecordText { record, field } => {
                if !self.created.contains(&record) && field != "caption" {
                    return Err(Refusal::SignedEvidence);
                }
                self.touched_records.insert(record);
                text_op(&op.action, "evidence")
            }
            Place::List(list) => {
                if op.insert && matches!(op.action, OpType::Make(automerge::ObjType::Map)) {
                    self.entries.push(NewEntry { list, obj: id });
                    Ok(())
                } else {
                    Err(Refusal::AppendOnly(list.name()))
                }
            }
            Place::Entry(list) => {
                if !self.created.contains(&target) {
                    return Err(Refusal::AppendOnly(list.name()));
                }
                let key = key.ok_or(malformed(list.name(), "an entry is a map"))?;
                new_field(&op.action, list.fields(), key, list.name())
            }
            Place::EntryText { list, entry } => {
                if !self.created.contains(&entry) {
                    return Err(Refusal::AppendOnly(list.name()));
                }
                text_op(&op.action, list.name())
            }
            Place::Indicators => {
                let key = key.ok_or(malformed("indicators", "indicators are a map"))?;
                if !entries::indicator_key(key) {
                    return Err(malformed(
                        "indicators",
                        "a key is 1 to 64 lowercase letters, digits or '_'",
                    ));
                }
                match &op.action {
                    OpType::Put(value) if read::as_int(value).is_some() => {
                        self.indicators = true;
                        Ok(())
                    }
                    OpType::Delete => Ok(()),
                    _ => Err(malformed("indicators", "a value is a whole number")),
                }
            }
        }
    }

    /// The checks of what the operations left: new entries complete, sizes bounded,
    /// reviews and rounds as the rules say.
    fn finish(self) -> Result<Admitted, Refusal> {
        let am = self.doc.automerge();
        let template = self.doc.template();
        let mut logs = BTreeSet::new();
        let mut comments = false;
        for entry in &self.entries {
            let fields = read::Fields::of(am, &entry.obj);
            match &entry.list {
                List::Log(criterion) => {
                    entries::log_entry(&fields, self.writer)?;
                    logs.insert(criterion.clone());
                }
                List::Comments => {
                    entries::comment(&fields, self.writer, template)?;
                    comments = true;
                }
            }
        }
        let mut admitted = Admitted::default();
        for record in &self.records {
            if am
                .get_all(&record.map, record.key.as_str())
                .map(|v| v.len())
                != Ok(1)
            {
                return Err(Refusal::SignedEvidence);
            }
            let fields = read::Fields::of(am, &record.obj);
            let evidence = entries::record(&record.key, &fields)?;
            bounded(
                "a criterion (evidence records)",
                am.length(&record.map),
                limits::EVIDENCE_PER_CRITERION,
            )?;
            admitted.evidence.push((record.criterion.clone(), evidence));
        }
        for record in &self.touched_records {
            entries::caption(&read::Fields::of(am, record))?;
        }
        for note in &self.notes {
            let chars = am.text(note).map(|t| t.chars().count()).unwrap_or(0);
            bounded("a note (characters)", chars, limits::NOTE_CHARS)?;
        }
        if self.indicators {
            for name in ["indicators", "indicators_previous"] {
                if let Ok(Some((_, map))) = am.get(automerge::ROOT, name) {
                    bounded("the indicators", am.length(&map), limits::INDICATORS)?;
                }
            }
        }
        if comments && let Ok(Some((_, list))) = am.get(automerge::ROOT, "comments") {
            bounded("the comments", am.length(&list), limits::COMMENTS)?;
        }
        for criterion in &logs {
            entries::rounds(am, criterion, &self.created, self.writer)?;
        }
        Ok(admitted)
    }
}

/// A field of an entry or record created by this change set: a known key, a scalar or a
/// text object.
fn new_field(
    action: &OpType,
    fields: &[&str],
    key: &str,
    what: &'static str,
) -> Result<(), Refusal> {
    if !fields.contains(&key) {
        return Err(malformed(what, "a field outside the schema"));
    }
    match action {
        OpType::Put(_) | OpType::Make(automerge::ObjType::Text) => Ok(()),
        _ => Err(malformed(what, "a field holds a value or text")),
    }
}

fn text_op(action: &OpType, what: &'static str) -> Result<(), Refusal> {
    match action {
        OpType::Put(ScalarValue::Str(_)) | OpType::Delete => Ok(()),
        _ => Err(malformed(what, "a text field holds characters only")),
    }
}

/// The id of the `n`th operation of `change`.
fn op_id(change: &ExpandedChange, n: usize) -> ObjId {
    // The index is a hint Automerge corrects by the actor; any value works.
    ObjId::Id(
        change.start_op.get() + n as u64,
        change.actor_id.clone(),
        usize::MAX,
    )
}

fn obj_id(obj: &ObjectId) -> ObjId {
    match obj {
        ObjectId::Root => ObjId::Root,
        ObjectId::Id(id) => ObjId::Id(id.counter(), id.actor().clone(), usize::MAX),
    }
}

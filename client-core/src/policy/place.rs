//! Where an object sits in the assessment's schema, found from its path to the root.

use automerge::{Automerge, ObjId, Prop, ReadDoc};

use super::entries;

/// The append-only lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum List {
    /// A criterion's status log.
    Log(String),
    /// The assessment's comments.
    Comments,
}

impl List {
    /// What its entries are called in refusals.
    pub(super) fn name(&self) -> &'static str {
        match self {
            List::Log(_) => "status log",
            List::Comments => "comment",
        }
    }

    /// The fields an entry may have.
    pub(super) fn fields(&self) -> &'static [&'static str] {
        match self {
            List::Log(_) => entries::LOG_FIELDS,
            List::Comments => entries::COMMENT_FIELDS,
        }
    }
}

/// An object's place, which decides what may be done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Place {
    /// The genesis and the fixed structure, named for refusals.
    Fixed(&'static str),
    /// A criterion's note (text).
    Note,
    /// A criterion's map of evidence records.
    EvidenceMap {
        /// The criterion.
        criterion: String,
    },
    /// An evidence record.
    Record,
    /// A text object inside an evidence record.
    RecordText {
        /// The record.
        record: ObjId,
        /// Its field.
        field: String,
    },
    /// A status log or the comments.
    List(List),
    /// An entry of one.
    Entry(List),
    /// A text object inside an entry.
    EntryText {
        /// The list.
        list: List,
        /// The entry.
        entry: ObjId,
    },
    /// This period's or the previous period's indicators.
    Indicators,
    /// Anywhere else.
    Outside,
}

/// The place of `obj` in `doc`, or `None` if the document has no such object.
pub(super) fn of(doc: &Automerge, obj: &ObjId) -> Option<Place> {
    if *obj == ObjId::Root {
        return Some(Place::Fixed("structure"));
    }
    let path = doc.parents(obj).ok()?.path();
    let keys: Vec<Option<&str>> = path
        .iter()
        .map(|(_, prop)| match prop {
            Prop::Map(key) => Some(key.as_str()),
            Prop::Seq(_) => None,
        })
        .collect();
    // The object holding the `n`th step of the path.
    let holder = |n: usize| path[n].0.clone();
    Some(match keys.as_slice() {
        [Some("unit"), ..] => Place::Fixed("unit"),
        [Some("template"), ..] => Place::Fixed("template"),
        [Some("criteria")] | [Some("criteria"), Some(_)] => Place::Fixed("criteria"),
        [Some("criteria"), Some(_), Some("note")] => Place::Note,
        [Some("criteria"), Some(c), Some("evidence")] => Place::EvidenceMap {
            criterion: (*c).to_owned(),
        },
        [Some("criteria"), Some(_), Some("evidence"), Some(_)] => Place::Record,
        [
            Some("criteria"),
            Some(_),
            Some("evidence"),
            Some(_),
            Some(field),
        ] => Place::RecordText {
            record: holder(4),
            field: (*field).to_owned(),
        },
        [Some("criteria"), Some(c), Some("log")] => Place::List(List::Log((*c).to_owned())),
        [Some("criteria"), Some(c), Some("log"), None] => Place::Entry(List::Log((*c).to_owned())),
        [Some("criteria"), Some(c), Some("log"), None, Some(_)] => Place::EntryText {
            list: List::Log((*c).to_owned()),
            entry: holder(4),
        },
        [Some("comments")] => Place::List(List::Comments),
        [Some("comments"), None] => Place::Entry(List::Comments),
        [Some("comments"), None, Some(_)] => Place::EntryText {
            list: List::Comments,
            entry: holder(2),
        },
        [Some("indicators" | "indicators_previous")] => Place::Indicators,
        _ => Place::Outside,
    })
}

//! What supervisors need beyond the view: who changed what (history), and the fields
//! that concurrent offline edits left with different values (conflicts), to settle them.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use super::{Assessment, ChangeNote};
use crate::error::{Error, Result};
use crate::model::Author;

/// One change of the document, as history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When, in ms since the epoch, by the author's clock (second precision).
    pub at_ms: i64,
    /// The user who made it (empty for the document's creation).
    pub by: String,
    /// The device it was made on.
    pub device: String,
    /// What it did, e.g. `status:submit`, `note`, `evidence:add`.
    pub what: String,
    /// The criterion it touched, if any.
    pub criterion: Option<String>,
}

/// A plain value of a document field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number with decimals.
    Float(f64),
    /// Yes or no.
    Bool(bool),
    /// Nothing, or an object (two devices created the same object concurrently).
    Null,
}

impl FieldValue {
    fn of(value: &Value<'_>) -> Self {
        match value {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(t) => FieldValue::Text(t.to_string()),
                ScalarValue::Int(i) | ScalarValue::Timestamp(i) => FieldValue::Int(*i),
                ScalarValue::Uint(u) => FieldValue::Int(i64::try_from(*u).unwrap_or(i64::MAX)),
                ScalarValue::F64(f) => FieldValue::Float(*f),
                ScalarValue::Boolean(b) => FieldValue::Bool(*b),
                _ => FieldValue::Null,
            },
            Value::Object(_) => FieldValue::Null,
        }
    }

    fn to_scalar(&self) -> ScalarValue {
        match self {
            FieldValue::Text(t) => ScalarValue::from(t.as_str()),
            FieldValue::Int(i) => ScalarValue::Int(*i),
            FieldValue::Float(f) => ScalarValue::F64(*f),
            FieldValue::Bool(b) => ScalarValue::Boolean(*b),
            FieldValue::Null => ScalarValue::Null,
        }
    }
}

/// One of the values a conflicted field holds, with who wrote it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictValue {
    /// The value.
    pub value: FieldValue,
    /// The user who wrote it, if the change says.
    pub by: String,
    /// The device it was written on.
    pub device: String,
    /// When, in ms since the epoch (second precision).
    pub at_ms: i64,
}

/// A field where concurrent edits left different values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Where, as keys from the root joined by `/`, e.g.
    /// `criteria/c07/evidence/<sha256>/caption`.
    pub path: String,
    /// The criterion it belongs to, if any.
    pub criterion: Option<String>,
    /// The values, the one Automerge shows now first.
    pub values: Vec<ConflictValue>,
}

impl Assessment {
    /// Every change, oldest first, or only those touching `criterion`.
    pub fn history(&self, criterion: Option<&str>) -> Vec<HistoryEntry> {
        self.doc
            .get_changes_meta(&[])
            .into_iter()
            .filter_map(|meta| {
                let note: ChangeNote = serde_json::from_str(meta.message.as_deref()?).ok()?;
                if criterion.is_some() && note.c.as_deref() != criterion {
                    return None;
                }
                Some(HistoryEntry {
                    at_ms: meta.timestamp.saturating_mul(1000),
                    by: note.by,
                    device: note.dev,
                    what: note.what,
                    criterion: note.c,
                })
            })
            .collect()
    }

    /// Every map field holding more than one value after concurrent edits.
    pub fn conflicts(&self) -> Vec<Conflict> {
        let mut out = Vec::new();
        self.collect_conflicts(&ROOT, &mut Vec::new(), &mut out);
        out
    }

    fn collect_conflicts(&self, obj: &ObjId, path: &mut Vec<String>, out: &mut Vec<Conflict>) {
        let doc = &self.doc;
        for key in doc.keys(obj).collect::<Vec<_>>() {
            let Ok(values) = doc.get_all(obj, key.as_str()) else {
                continue;
            };
            path.push(key);
            if values.len() > 1 {
                out.push(Conflict {
                    path: path.join("/"),
                    criterion: (path.len() > 1 && path[0] == "criteria").then(|| path[1].clone()),
                    values: values
                        .iter()
                        .map(|(value, id)| self.conflict_value(value, id))
                        .collect(),
                });
            }
            // Recurse into the visible object, if it is a map (lists and text cannot conflict
            // in this schema: their entries are appended or spliced).
            if let Some((Value::Object(ObjType::Map), child)) = values.last() {
                self.collect_conflicts(child, path, out);
            }
            path.pop();
        }
    }

    fn conflict_value(&self, value: &Value<'_>, id: &ObjId) -> ConflictValue {
        let note = self
            .doc
            .hash_for_opid(id)
            .and_then(|hash| self.doc.get_change_meta_by_hash(&hash))
            .and_then(|meta| {
                let note: ChangeNote = serde_json::from_str(meta.message.as_deref()?).ok()?;
                Some((note, meta.timestamp))
            });
        let (by, device, at_ms) = match note {
            Some((note, seconds)) => (note.by, note.dev, seconds.saturating_mul(1000)),
            None => Default::default(),
        };
        ConflictValue {
            value: FieldValue::of(value),
            by,
            device,
            at_ms,
        }
    }

    /// Settles a conflict by writing the chosen (or a new) value over all of them.
    ///
    /// Only plain fields that are in conflict now can be settled this way; anything else
    /// is [`Error::NoConflict`], so this cannot be used to write arbitrary paths.
    pub fn settle(
        &mut self,
        path: &str,
        value: FieldValue,
        by: &Author,
        now_ms: i64,
    ) -> Result<()> {
        let conflict = self
            .conflicts()
            .into_iter()
            .find(|c| c.path == path)
            .filter(|c| c.values.iter().all(|v| v.value != FieldValue::Null))
            .ok_or_else(|| Error::NoConflict(path.into()))?;
        let keys: Vec<&str> = path.split('/').collect();
        let Some((last, parents)) = keys.split_last() else {
            return Err(Error::NoConflict(path.into()));
        };
        let what = format!("settle:{}", last);
        self.edit(
            by,
            now_ms,
            &what,
            conflict.criterion.as_deref(),
            |tx, shape| {
                let mut obj = ROOT;
                for key in parents {
                    obj = shape.map(tx, &obj, key)?;
                }
                tx.put(&obj, *last, value.to_scalar())?;
                Ok(())
            },
        )
    }
}

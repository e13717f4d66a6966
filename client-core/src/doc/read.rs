//! The read side: turning a document into views.

use automerge::{
    Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef,
};
use serde::{Deserialize, Serialize};

use super::{Assessment, DocumentId, Evidence, SCHEMA_VERSION, Shape};
use crate::error::{Error, Result};
use crate::model::{
    Action, Criterion, Progress, Status, Template, TemplateKey, Transition, Unit, derive,
};
use crate::photo::GeoPoint;

/// Everything a screen needs to show an assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentView {
    /// The document id.
    pub id: DocumentId,
    /// The ward unit.
    pub unit: Unit,
    /// The period, e.g. "2025".
    pub period: String,
    /// The template version the document was created from.
    pub template: TemplateKey,
    /// The criteria, in the template's order.
    pub criteria: Vec<CriterionView>,
    /// Counts per status.
    pub progress: Progress,
    /// Indicators of this period, with the previous period's values.
    pub indicators: Vec<Indicator>,
    /// Comments, oldest first.
    pub comments: Vec<Comment>,
}

/// One criterion of an assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionView {
    /// The criterion as the template defines it.
    pub criterion: Criterion,
    /// Its current status, derived from the log.
    pub status: Status,
    /// The current review round.
    pub round: u64,
    /// The collaborative note.
    pub note: String,
    /// Attached evidence (removed photos left out), oldest first.
    pub evidence: Vec<Evidence>,
    /// The review that decided the current round, if any.
    pub review: Option<Transition>,
    /// Reviews of the same round that lost to `review`: supervisors disagreed offline.
    pub contested_by: Vec<Transition>,
    /// The whole status log, in document order.
    pub log: Vec<Transition>,
}

/// An indicator such as incidents this period, next to the previous period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    /// The key, e.g. "incidents".
    pub key: String,
    /// This period's value, if entered.
    pub value: Option<i64>,
    /// The previous period's value, if known.
    pub previous: Option<i64>,
}

/// A comment on a criterion or on the whole assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// The criterion it is about, or `None` for the whole assessment.
    pub criterion: Option<String>,
    /// Its author.
    pub by: String,
    /// The author's device.
    pub device: String,
    /// When, in ms since the epoch.
    pub at_ms: i64,
    /// The text.
    pub text: String,
}

impl Assessment {
    /// Builds the whole view.
    pub fn view(&self) -> Result<AssessmentView> {
        let doc = &self.doc;
        let unit = unit_of(doc)?;
        let period = string(doc, &ROOT, "period")?;
        let criteria = self
            .template
            .criteria
            .iter()
            .map(|c| self.build_criterion(c))
            .collect::<Result<Vec<_>>>()?;
        let progress = Progress::count(criteria.iter().map(|c| c.status));
        Ok(AssessmentView {
            id: DocumentId::for_assessment(&unit.id, &period),
            unit,
            period,
            template: self.template.key(),
            criteria,
            progress,
            indicators: self.indicators()?,
            comments: self.comments()?,
        })
    }

    /// Builds the view of one criterion.
    pub fn criterion_view(&self, id: &str) -> Result<CriterionView> {
        let criterion = self
            .template
            .criterion(id)
            .ok_or_else(|| Error::UnknownCriterion(id.into()))?;
        self.build_criterion(criterion)
    }

    /// Counts per status, without building the rest of the view.
    pub fn progress(&self) -> Result<Progress> {
        let statuses = self
            .template
            .criteria
            .iter()
            .map(|c| Ok(derive(&self.log(&c.id)?).status))
            .collect::<Result<Vec<_>>>()?;
        Ok(Progress::count(statuses))
    }

    fn build_criterion(&self, criterion: &Criterion) -> Result<CriterionView> {
        let doc = &self.doc;
        let log = self.log(&criterion.id)?;
        let derived = derive(&log);
        let (status, round) = (derived.status, derived.round);
        let review = derived.review.cloned();
        let contested_by = derived.concurrent_reviews.into_iter().cloned().collect();
        let note = doc.text(Shape.criterion_child(doc, &criterion.id, "note")?)?;
        let mut evidence =
            evidence_in(doc, &Shape.criterion_child(doc, &criterion.id, "evidence")?)?;
        evidence.sort_by_key(|e| (e.added_at_ms, e.photo));
        Ok(CriterionView {
            criterion: criterion.clone(),
            status,
            round,
            note,
            evidence,
            review,
            contested_by,
            log,
        })
    }

    /// The status log of a criterion, in document order. Entries a foreign peer wrote in a
    /// shape this build does not know are skipped, not fatal.
    fn log(&self, criterion: &str) -> Result<Vec<Transition>> {
        let doc = &self.doc;
        Ok(log_in(doc, &Shape.criterion_child(doc, criterion, "log")?))
    }

    fn indicators(&self) -> Result<Vec<Indicator>> {
        let doc = &self.doc;
        let current = Shape.map(doc, &ROOT, "indicators")?;
        let previous = Shape.map(doc, &ROOT, "indicators_previous")?;
        let mut keys: Vec<String> = doc.keys(&current).chain(doc.keys(&previous)).collect();
        keys.sort();
        keys.dedup();
        Ok(keys
            .into_iter()
            .map(|key| Indicator {
                value: opt_int(doc, &current, &key),
                previous: opt_int(doc, &previous, &key),
                key,
            })
            .collect())
    }

    fn comments(&self) -> Result<Vec<Comment>> {
        let doc = &self.doc;
        let comments = Shape.map(doc, &ROOT, "comments")?;
        Ok(doc
            .list_range(&comments, ..)
            .filter_map(|item| {
                let c = Fields::of(doc, &item.id());
                Some(Comment {
                    criterion: c.string("criterion").map(str::to_owned),
                    by: c.string("by").unwrap_or_default().to_owned(),
                    device: c.string("device").unwrap_or_default().to_owned(),
                    at_ms: c.int("at").unwrap_or_default(),
                    text: c.string("text")?.to_owned(),
                })
            })
            .collect())
    }
}

/// The document's unit.
pub(crate) fn unit_of(doc: &Automerge) -> Result<Unit> {
    let unit = Shape.map(doc, &ROOT, "unit")?;
    Ok(Unit {
        id: string(doc, &unit, "id")?,
        name: string(doc, &unit, "name")?,
        city: string(doc, &unit, "city")?,
        province: string(doc, &unit, "province")?,
    })
}

/// The entries of a status log, in document order. Entries a foreign peer wrote in a shape
/// this build does not know are skipped, not fatal.
fn log_in(doc: &Automerge, log: &ObjId) -> Vec<Transition> {
    doc.list_range(log, ..)
        .filter_map(|item| transition(&Fields::of(doc, &item.id())))
        .collect()
}

/// A status log entry, or `None` if it lacks an action or a round.
pub(crate) fn transition(entry: &Fields) -> Option<Transition> {
    Some(Transition {
        action: Action::parse(entry.string("action")?)?,
        round: entry.uint("round")?,
        by: entry.string("by").unwrap_or_default().to_owned(),
        device: entry.string("device").unwrap_or_default().to_owned(),
        at_ms: entry.int("at").unwrap_or_default(),
        reason: entry.string("reason").map(str::to_owned),
    })
}

/// The evidence records of a criterion's `evidence` map, removed ones left out, in the
/// map's order.
fn evidence_in(doc: &Automerge, evidence: &ObjId) -> Result<Vec<Evidence>> {
    let mut records = Vec::new();
    for item in doc.map_range(evidence, ..) {
        if matches!(item.value, ValueRef::Object(ObjType::Map)) {
            let fields = Fields::of(doc, &item.id());
            if !fields.boolean("removed") {
                records.push(read_evidence(&item.key, &fields)?);
            }
        }
    }
    Ok(records)
}

pub(crate) fn read_evidence(key: &str, e: &Fields) -> Result<Evidence> {
    let malformed = |field: &str| Error::Malformed(format!("evidence field {field}"));
    let text = |field: &str| e.string(field).unwrap_or_default().to_owned();
    fn parse<T: std::str::FromStr>(e: &Fields, field: &str) -> Result<T> {
        e.string(field)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Malformed(format!("evidence field {field}")))
    }
    let location = match (e.float("lat"), e.float("lon")) {
        (Some(lat), Some(lon)) => GeoPoint::new(lat, lon, e.float("accuracy")).ok(),
        _ => None,
    };
    Ok(Evidence {
        photo: key.parse().map_err(|_| malformed("photo"))?,
        thumbnail: parse(e, "thumbnail")?,
        perceptual_hash: parse(e, "phash")?,
        width: e.uint("width").unwrap_or_default() as u32,
        height: e.uint("height").unwrap_or_default() as u32,
        caption: text("caption"),
        captured_at: text("captured_at"),
        location,
        officer: text("officer"),
        device: text("device"),
        device_key: parse(e, "device_key")?,
        signature: parse(e, "signature")?,
        added_at_ms: e.int("added_at").unwrap_or_default(),
        to_reconfirm: e.boolean("to_reconfirm"),
    })
}

/// The scalar fields of a small map, read in one pass: a `get` per field costs a search
/// of Automerge's columns each time, a range over the map one scan.
///
/// A text object reads as a string: wardcheck writes plain strings, but JavaScript
/// Automerge (3.x, as automerge-repo clients use it) stores a plain JS string as
/// collaborative text unless it is wrapped in `ImmutableString`.
pub(crate) struct Fields(Vec<(String, ScalarValue)>);

impl Fields {
    pub(crate) fn of(doc: &impl ReadDoc, obj: &ObjId) -> Self {
        Self(
            doc.map_range(obj, ..)
                .filter_map(|item| match item.value {
                    ValueRef::Scalar(value) => {
                        Some((item.key.into_owned(), ScalarValue::from(value)))
                    }
                    ValueRef::Object(ObjType::Text) => {
                        let text = doc.text(item.id()).ok()?;
                        Some((item.key.into_owned(), ScalarValue::Str(text.into())))
                    }
                    ValueRef::Object(_) => None,
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&ScalarValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn string(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            ScalarValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        as_int(self.get(key)?)
    }

    pub(crate) fn uint(&self, key: &str) -> Option<u64> {
        as_uint(self.get(key)?)
    }

    pub(crate) fn float(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            ScalarValue::F64(f) => Some(*f),
            other => as_int(other).map(|i| i as f64),
        }
    }

    pub(crate) fn boolean(&self, key: &str) -> bool {
        matches!(self.get(key), Some(ScalarValue::Boolean(true)))
    }
}

/// Parses the template stored in the document: its JSON in `parts` pieces (all of them
/// there, or the document is not complete yet), or in one string.
pub(super) fn template_of(doc: &Automerge) -> Result<Template> {
    let t = Shape.map(doc, &ROOT, "template")?;
    let json = match doc.get(&t, "json")? {
        Some((Value::Object(ObjType::List), pieces)) => {
            let expected = scalar(doc, &t, "parts").as_ref().and_then(as_uint);
            let mut json = String::new();
            let mut count = 0u64;
            for item in doc.list_range(&pieces, ..) {
                match item.value {
                    ValueRef::Scalar(ScalarValueRef::Str(piece)) => json.push_str(&piece),
                    _ => return Err(Error::Malformed("a template piece is not text".into())),
                }
                count += 1;
            }
            if expected != Some(count) {
                return Err(Error::Malformed("the template is incomplete".into()));
            }
            json
        }
        _ => string(doc, &t, "json")?,
    };
    Ok(Template::from_json(&json)?)
}

/// Checks the parts every view relies on.
pub(super) fn check_schema(doc: &Automerge) -> Result<()> {
    match scalar(doc, &ROOT, "schema").as_ref().and_then(as_uint) {
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(Error::Malformed(format!(
                "schema version {other}, this build reads {SCHEMA_VERSION}"
            )));
        }
        None => return Err(Error::Malformed("no schema version".into())),
    }
    for key in [
        "unit",
        "template",
        "criteria",
        "indicators",
        "indicators_previous",
        "comments",
    ] {
        Shape.map(doc, &ROOT, key)?;
    }
    string(doc, &ROOT, "period")?;
    Ok(())
}

fn scalar(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<ScalarValue> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(value), _))) => Some(value.into_owned()),
        _ => None,
    }
}

pub(crate) fn string(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Result<String> {
    match scalar(doc, obj, key) {
        Some(ScalarValue::Str(s)) => Ok(s.to_string()),
        _ => Err(Error::Malformed(format!("missing text {key:?}"))),
    }
}

fn opt_int(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<i64> {
    as_int(&scalar(doc, obj, key)?)
}

/// A whole number, however the writer stored it: wardcheck writes ints and uints, but
/// JavaScript Automerge (3.x) stores `0` and negative numbers inside map and list
/// literals as floats. A float with a fraction, infinite or out of range is not one.
pub(crate) fn as_int(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Some(*i),
        ScalarValue::Uint(u) => i64::try_from(*u).ok(),
        // Exactly representable range: beyond 2^63 the cast would saturate.
        ScalarValue::F64(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
        _ => None,
    }
}

/// A whole number that is not negative (see [`as_int`]).
pub(crate) fn as_uint(value: &ScalarValue) -> Option<u64> {
    match value {
        ScalarValue::Uint(u) => Some(*u),
        other => as_int(other).and_then(|i| u64::try_from(i).ok()),
    }
}

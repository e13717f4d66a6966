//! The checks of what a change set leaves: new entries complete and in their author's
//! name, evidence records whole, and the review rounds.

use std::collections::HashSet;

use automerge::{Automerge, ObjId, ROOT, ReadDoc};

use super::{Refusal, Writer, bounded, limits, malformed};
use crate::doc::{Evidence, read};
use crate::model::{Action, Status, Template, Transition, derive};
use crate::photo::GeoPoint;

/// The fields of a status log entry.
pub(super) const LOG_FIELDS: &[&str] = &["action", "round", "by", "device", "at", "reason"];
/// The fields of a comment.
pub(super) const COMMENT_FIELDS: &[&str] = &["criterion", "by", "device", "at", "text"];
/// The fields of an evidence record.
pub(super) const RECORD_FIELDS: &[&str] = &[
    "thumbnail",
    "phash",
    "width",
    "height",
    "caption",
    "captured_at",
    "lat",
    "lon",
    "accuracy",
    "officer",
    "device",
    "device_key",
    "signature",
    "added_at",
    "to_reconfirm",
    "removed",
];

pub(super) use crate::doc::is_indicator_key as indicator_key;

/// A text field: present (when `required`), a string or text, at most `limit`
/// characters. Returns it, or `""` when absent.
fn text<'f>(
    fields: &'f read::Fields,
    key: &str,
    what: &'static str,
    required: bool,
    limit: usize,
) -> Result<&'f str, Refusal> {
    match (fields.get(key), fields.string(key)) {
        (None, _) if !required => Ok(""),
        (_, Some(value)) if !required || !value.trim().is_empty() => {
            bounded(what, value.chars().count(), limit)?;
            Ok(value)
        }
        _ => Err(malformed(what, "a required text is missing or not text")),
    }
}

fn whole_number(fields: &read::Fields, key: &str, what: &'static str) -> Result<i64, Refusal> {
    fields
        .get(key)
        .and_then(read::as_int)
        .ok_or(malformed(what, "a required number is missing or not whole"))
}

fn author(fields: &read::Fields, writer: &Writer, what: &'static str) -> Result<(), Refusal> {
    if text(fields, "by", what, true, limits::ID_CHARS)? != writer.user {
        return Err(Refusal::NotTheAuthor(what));
    }
    text(fields, "device", what, true, limits::ID_CHARS)?;
    whole_number(fields, "at", what)?;
    Ok(())
}

/// A new status log entry: typed, complete, by the writer.
pub(super) fn log_entry(fields: &read::Fields, writer: &Writer) -> Result<Transition, Refusal> {
    const WHAT: &str = "status log entry";
    author(fields, writer, WHAT)?;
    let action = fields
        .string("action")
        .and_then(Action::parse)
        .ok_or(malformed(
            WHAT,
            "the action is start, submit, approve or return",
        ))?;
    if fields.get("round").and_then(read::as_uint).is_none() {
        return Err(malformed(WHAT, "the round is a whole number from 0"));
    }
    let reason = text(fields, "reason", WHAT, false, limits::REASON_CHARS)?;
    if action == Action::Return && reason.trim().is_empty() {
        return Err(malformed(WHAT, "a return needs a reason"));
    }
    read::transition(fields).ok_or(malformed(WHAT, "it does not read as a step"))
}

/// A new comment: text, by the writer, on the assessment or one of its criteria.
pub(super) fn comment(
    fields: &read::Fields,
    writer: &Writer,
    template: &Template,
) -> Result<(), Refusal> {
    const WHAT: &str = "comment";
    author(fields, writer, WHAT)?;
    text(fields, "text", WHAT, true, limits::COMMENT_CHARS)?;
    let criterion = text(fields, "criterion", WHAT, false, limits::ID_CHARS)?;
    if fields.get("criterion").is_some() && template.criterion(criterion).is_none() {
        return Err(malformed(WHAT, "it names a criterion the assessment lacks"));
    }
    Ok(())
}

/// A new evidence record: every signed field present and of its type, as the reader
/// reads it.
pub(super) fn record(key: &str, fields: &read::Fields) -> Result<Evidence, Refusal> {
    const WHAT: &str = "evidence record";
    let evidence = read::read_evidence(key, fields)
        .map_err(|_| malformed(WHAT, "a signed field is missing or not of its type"))?;
    for field in ["captured_at", "officer", "device"] {
        text(fields, field, WHAT, true, limits::ID_CHARS)?;
    }
    caption(fields)?;
    for field in ["width", "height"] {
        let value = fields.get(field).and_then(read::as_uint);
        if value.is_none_or(|v| u32::try_from(v).is_err()) {
            return Err(malformed(WHAT, "a size is a whole number of pixels"));
        }
    }
    whole_number(fields, "added_at", WHAT)?;
    let has = |key| fields.get(key).is_some();
    let location = match (has("lat"), has("lon")) {
        (false, false) => !has("accuracy"),
        (true, true) => {
            let accuracy = match has("accuracy") {
                true => fields.float("accuracy").map(Some),
                false => Some(None),
            };
            match (fields.float("lat"), fields.float("lon"), accuracy) {
                (Some(lat), Some(lon), Some(accuracy)) => GeoPoint::new(lat, lon, accuracy).is_ok(),
                _ => false,
            }
        }
        _ => false,
    };
    if !location {
        return Err(malformed(
            WHAT,
            "the location is latitude, longitude, accuracy",
        ));
    }
    Ok(evidence)
}

/// A record's mutable fields: the caption as text, the flags as booleans.
pub(super) fn caption(fields: &read::Fields) -> Result<(), Refusal> {
    const WHAT: &str = "evidence record";
    text(fields, "caption", WHAT, false, limits::CAPTION_CHARS)?;
    for flag in ["removed", "to_reconfirm"] {
        if fields
            .get(flag)
            .is_some_and(|v| !matches!(v, automerge::ScalarValue::Boolean(_)))
        {
            return Err(malformed(WHAT, "a flag is true or false"));
        }
    }
    Ok(())
}

/// The review rules over a criterion's log once its new entries (those in `created`) are
/// in: reviews by reviewers only, over something to review, never ahead of the round the
/// criterion had; officers' steps never ahead of the round it has now, and none in the
/// round of an approval (only a return reopens an approved criterion).
pub(super) fn rounds(
    doc: &Automerge,
    criterion: &str,
    created: &HashSet<ObjId>,
    writer: &Writer,
) -> Result<(), Refusal> {
    let log = ["criteria", criterion, "log"]
        .iter()
        .try_fold(ROOT, |obj, key| match doc.get(&obj, *key) {
            Ok(Some((_, child))) => Some(child),
            _ => None,
        })
        .ok_or(Refusal::Fixed("criteria"))?;
    bounded("a status log", doc.length(&log), limits::LOG_ENTRIES)?;
    let mut all = Vec::new();
    let mut new = Vec::new();
    for item in doc.list_range(&log, ..) {
        let Some(step) = read::transition(&read::Fields::of(doc, &item.id())) else {
            continue; // written before the policy, unreadable: the reader skips it too
        };
        if created.contains(&item.id()) {
            new.push(step.clone());
        } else {
            all.push(step);
        }
    }
    let decided = derive(&all);
    let (before, approved) = (decided.round, decided.status == Status::Approved);
    all.extend(new.iter().cloned());
    let after = derive(&all).round;
    for step in &new {
        if step.action.is_review() {
            if !writer.role.may_review() {
                return Err(Refusal::NotAReviewer);
            }
            if step.round > before {
                return Err(Refusal::FutureRound {
                    round: step.round,
                    current: before,
                });
            }
            if !reviewable(step, &all) {
                return Err(Refusal::NothingToReview(step.action.as_str()));
            }
        } else if step.round > after {
            return Err(Refusal::FutureRound {
                round: step.round,
                current: after,
            });
        } else if approved && step.round == before {
            // A step of the round an approval closed would count and undo it.
            return Err(Refusal::Approved);
        }
    }
    Ok(())
}

/// Whether the log holds what `review` reviews: a submission of its round or, for a
/// return, the approval of the round before (withdrawn).
fn reviewable(review: &Transition, log: &[Transition]) -> bool {
    log.iter().any(|step| {
        (step.action == Action::Submit && step.round == review.round)
            || (review.action == Action::Return
                && step.action == Action::Approve
                && step.round.saturating_add(1) == review.round)
    })
}

//! Where an operation's references point: its `pred` and its sequence element.
//!
//! Automerge applies a change's `pred` by op id alone: an operation that names an op of
//! another object or key as its predecessor hides that op, wherever it is (automerge 0.12,
//! `op_set2/change/batch.rs`: one cache of predecessors for the whole batch). So a
//! modified phone can append an innocent log entry whose `pred` names the supervisor's
//! return, and the return disappears; the policy's checks of each operation's own place
//! would never see it. Here every reference must point where the operation acts:
//!
//! - an insertion has no predecessor;
//! - a map operation's predecessors are operations at its own object and key;
//! - a sequence operation's element is an element of its own object, and its
//!   predecessors are that element or operations at it.
//!
//! Honest references point at what the writer saw: almost always what is visible at the
//! heads before the change set, or an operation of the set itself, both cheap to look up.
//! Anything else (an element a concurrent change deleted, a value it overwrote) is found
//! in the change that made it, at a cost: at most [`limits::REFERENCED_CHANGES`] such
//! changes per change set.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{ElementId, Key, ObjectId, Op, OpId};
use automerge::{ChangeHash, ExpandedChange, ObjId, ReadDoc};

use super::{Refusal, limits, malformed, obj_id, op_id};

/// Where an operation acts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Spot {
    /// A key of a map.
    Key(ObjId, String),
    /// An element of a sequence, by the id of the operation that inserted it.
    Element(ObjId, ObjId),
}

impl Spot {
    /// Where `op`, whose id is `id`, acts; `None` for a sequence operation at the head
    /// that inserts nothing.
    fn of(id: &ObjId, op: &Op) -> Option<Spot> {
        let obj = obj_id(&op.obj);
        match (&op.key, op.insert) {
            (_, true) => Some(Spot::Element(obj, id.clone())),
            (Key::Map(key), false) => Some(Spot::Key(obj, key.to_string())),
            (Key::Seq(ElementId::Id(element)), false) => {
                Some(Spot::Element(obj, legacy_id(element)))
            }
            (Key::Seq(ElementId::Head), false) => None,
        }
    }
}

/// The references of one change set, checked against the document after it and the
/// heads before it.
pub(super) struct References<'a> {
    doc: &'a automerge::Automerge,
    since: &'a [ChangeHash],
    /// Where each operation of the change set acts.
    new: HashMap<ObjId, Spot>,
    /// Ids visible at `since`, by place, as they are asked for.
    visible: HashMap<Spot, HashSet<ObjId>>,
    elements: HashMap<ObjId, HashSet<ObjId>>,
    /// Older changes decoded to find an operation, by hash.
    older: HashMap<ChangeHash, ExpandedChange>,
}

impl<'a> References<'a> {
    pub(super) fn new(
        doc: &'a automerge::Automerge,
        since: &'a [ChangeHash],
        changes: &[ExpandedChange],
    ) -> Self {
        let new = changes
            .iter()
            .flat_map(|change| {
                change.operations.iter().enumerate().filter_map(|(n, op)| {
                    let id = op_id(change, n);
                    Spot::of(&id, op).map(|spot| (id, spot))
                })
            })
            .collect();
        Self {
            doc,
            since,
            new,
            visible: HashMap::new(),
            elements: HashMap::new(),
            older: HashMap::new(),
        }
    }

    /// Checks that `op` (whose id is `id`) refers only to where it acts.
    pub(super) fn check(&mut self, id: &ObjId, op: &Op) -> Result<(), Refusal> {
        let stray = || malformed("change", "an operation refers to another place");
        if op.insert {
            return if op.pred.is_empty() {
                Ok(())
            } else {
                Err(stray())
            };
        }
        let spot = Spot::of(id, op).ok_or_else(stray)?;
        if let Spot::Element(obj, element) = &spot
            && !self.is_element_of(obj, element)?
        {
            return Err(stray());
        }
        for pred in op.pred.iter() {
            let pred = legacy_id(pred);
            if matches!(&spot, Spot::Element(_, element) if *element == pred) {
                continue;
            }
            if !self.is_at(&pred, &spot)? {
                return Err(stray());
            }
        }
        Ok(())
    }

    /// Whether `element` was inserted into the sequence `obj`.
    fn is_element_of(&mut self, obj: &ObjId, element: &ObjId) -> Result<bool, Refusal> {
        let spot = Spot::Element(obj.clone(), element.clone());
        if let Some(new) = self.new.get(element) {
            return Ok(*new == spot);
        }
        let (doc, since) = (self.doc, self.since);
        let visible = self.elements.entry(obj.clone()).or_insert_with(|| {
            doc.list_range_at(obj, .., since)
                .map(|item| item.id())
                .collect()
        });
        if visible.contains(element) {
            return Ok(true);
        }
        Ok(self.older_spot(element)? == Some(spot))
    }

    /// Whether the operation `id` acts at `spot`.
    fn is_at(&mut self, id: &ObjId, spot: &Spot) -> Result<bool, Refusal> {
        if let Some(new) = self.new.get(id) {
            return Ok(new == spot);
        }
        let (doc, since) = (self.doc, self.since);
        let visible = self
            .visible
            .entry(spot.clone())
            .or_insert_with(|| match spot {
                Spot::Key(obj, key) => doc
                    .get_all_at(obj, key.as_str(), since)
                    .map(|values| values.into_iter().map(|(_, id)| id).collect())
                    .unwrap_or_default(),
                // Sequences are never set in place by wardcheck: only the element itself
                // (checked by the caller) is an honest predecessor there.
                Spot::Element(..) => HashSet::new(),
            });
        if visible.contains(id) {
            return Ok(true);
        }
        Ok(self.older_spot(id)?.as_ref() == Some(spot))
    }

    /// Where the older operation `id` acts, found in the change that made it; `None` if
    /// the document has no such operation.
    fn older_spot(&mut self, id: &ObjId) -> Result<Option<Spot>, Refusal> {
        let ObjId::Id(counter, ..) = id else {
            return Ok(None);
        };
        let Some(hash) = self.doc.hash_for_opid(id) else {
            return Ok(None);
        };
        if !self.older.contains_key(&hash) {
            super::bounded(
                "a change set (older changes it refers to)",
                self.older.len() + 1,
                limits::REFERENCED_CHANGES,
            )?;
            let Some(change) = self.doc.get_change_by_hash(&hash) else {
                return Ok(None);
            };
            self.older.insert(hash, change.decode());
        }
        let change = &self.older[&hash];
        let found = counter
            .checked_sub(change.start_op.get())
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| change.operations.get(n));
        Ok(found.and_then(|op| Spot::of(id, op)))
    }
}

fn legacy_id(id: &OpId) -> ObjId {
    obj_id(&ObjectId::Id(id.clone()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{Change, ObjType, ROOT, legacy};

    use super::super::{Writer, check};
    use super::*;
    use crate::doc::Assessment;
    use crate::model::{Action, Author, Role, sample_templates};
    use crate::testing::{sample_unit, signed_evidence};

    fn officer() -> Author {
        Author::new("officer-a", "phone-a")
    }

    fn supervisor() -> Author {
        Author::new("sup", "console")
    }

    const AS_OFFICER: Writer<'static> = Writer {
        user: "officer-a",
        role: Role::Officer,
    };

    /// c01 submitted and returned; c02 submitted, approved, then the approval withdrawn;
    /// c03 with one signed photo.
    fn reviewed() -> (Assessment, String) {
        let template = Arc::new(sample_templates().remove(1));
        let mut doc = Assessment::create(&sample_unit(), "2025", template).unwrap();
        let (o, s) = (officer(), supervisor());
        doc.step("c01", Action::Submit, None, &o, 1).unwrap();
        doc.step("c01", Action::Return, Some("blurred"), &s, 2)
            .unwrap();
        doc.step("c02", Action::Submit, None, &o, 3).unwrap();
        doc.step("c02", Action::Approve, None, &s, 4).unwrap();
        doc.step("c02", Action::Return, Some("wrong ward"), &s, 5)
            .unwrap();
        let evidence = signed_evidence(1, &o);
        doc.add_evidence("c03", &evidence, &o, 6).unwrap();
        (doc, evidence.photo.to_hex())
    }

    /// The object or value at `path` (map keys, list indexes).
    fn at(doc: &impl ReadDoc, path: &[&str]) -> ObjId {
        path.iter().fold(ROOT, |obj, key| {
            let found = match key.parse::<usize>() {
                Ok(index) => doc.get(&obj, index),
                Err(_) => doc.get(&obj, *key),
            };
            found.unwrap().unwrap().1
        })
    }

    fn legacy(id: &ObjId) -> OpId {
        match id {
            ObjId::Id(counter, actor, _) => OpId::new(*counter, actor),
            ObjId::Root => unreachable!("the root is no operation"),
        }
    }

    /// Makes `edit` on a copy of `doc` as one change, lets `forge` rewrite its operations
    /// as a modified phone may, and checks that the result is refused twice over: by the
    /// reference check alone, on the document before it, and by the relay's path (applied
    /// to a copy, which Automerge may refuse, then [`check`] as an officer's).
    fn assert_refused(
        doc: &Assessment,
        edit: impl FnOnce(&mut Assessment),
        forge: impl FnOnce(&mut ExpandedChange),
    ) {
        let mut honest = doc.clone();
        edit(&mut honest);
        let changes = honest.automerge().get_changes(&doc.heads());
        let mut change = changes[0].decode();
        forge(&mut change);
        let heads = doc.heads();
        let mut refs = References::new(doc.automerge(), &heads, std::slice::from_ref(&change));
        let verdicts: Vec<_> = (0..change.operations.len())
            .map(|n| refs.check(&op_id(&change, n), &change.operations[n]))
            .collect();
        assert!(
            verdicts.contains(&Err(malformed(
                "change",
                "an operation refers to another place"
            ))),
            "the reference check lets it through"
        );
        let mut copy = doc.automerge().clone();
        if copy.apply_changes([Change::from(change)]).is_ok() {
            let after = Assessment::from_automerge(copy).unwrap();
            let verdict = check(&after, &heads, &AS_OFFICER);
            assert!(matches!(
                verdict,
                Err(Refusal::Malformed { what: "change", .. })
            ));
        }
    }

    /// Adds `victim` to the predecessors of the operation `which` picks.
    fn with_pred(victim: ObjId, which: impl Fn(&Op) -> bool) -> impl FnOnce(&mut ExpandedChange) {
        move |change| {
            let op = change.operations.iter_mut().find(|op| which(op)).unwrap();
            let mut pred: Vec<OpId> = op.pred.iter().cloned().collect();
            pred.push(legacy(&victim));
            op.pred = pred.into();
        }
    }

    fn put_of(key: &'static str) -> impl Fn(&Op) -> bool {
        move |op| op.key == Key::Map(key.into())
    }

    /// An officer's stale step (round 0) on `criterion`, written as a new log entry.
    fn stale_start(criterion: &'static str) -> impl FnOnce(&mut Assessment) {
        move |doc| {
            let mut am = doc.automerge().clone();
            let log = at(&am, &["criteria", criterion, "log"]);
            am.transact_with::<_, _, automerge::AutomergeError, _>(
                |_| CommitOptions::default(),
                |tx| {
                    let entry = tx.insert_object(&log, tx.length(&log), ObjType::Map)?;
                    tx.put(&entry, "action", "start")?;
                    tx.put(&entry, "round", 0_u64)?;
                    tx.put(&entry, "by", "officer-a")?;
                    tx.put(&entry, "device", "phone-a")?;
                    tx.put(&entry, "at", 9_i64)?;
                    Ok(())
                },
            )
            .unwrap();
            *doc = Assessment::from_automerge(am).unwrap();
        }
    }

    #[test]
    fn a_new_entry_naming_the_return_as_predecessor_is_refused() {
        let (doc, _) = reviewed();
        let the_return = at(doc.automerge(), &["criteria", "c01", "log", "1"]);
        assert_refused(&doc, stale_start("c01"), |change| {
            with_pred(the_return, |op| op.insert)(change)
        });
    }

    #[test]
    fn a_withdrawn_approval_cannot_be_revived() {
        let (doc, _) = reviewed();
        let the_return = at(doc.automerge(), &["criteria", "c02", "log", "2"]);
        assert_refused(&doc, stale_start("c02"), |change| {
            with_pred(the_return, put_of("action"))(change)
        });
    }

    #[test]
    fn a_signed_field_cannot_be_hidden_by_a_put_at_another_key() {
        let (doc, photo) = reviewed();
        let record = at(doc.automerge(), &["criteria", "c03", "evidence", &photo]);
        for field in ["captured_at", "signature"] {
            let victim = doc.automerge().get(&record, field).unwrap().unwrap().1;
            assert_refused(
                &doc,
                |d| {
                    let hash = photo.parse().unwrap();
                    d.set_caption("c03", &hash, "new", &officer(), 7).unwrap()
                },
                with_pred(victim, put_of("caption")),
            );
        }
    }

    #[test]
    fn a_new_record_cannot_hide_an_older_one() {
        let (doc, photo) = reviewed();
        let old = at(doc.automerge(), &["criteria", "c03", "evidence", &photo]);
        let newer = signed_evidence(2, &officer());
        assert_refused(
            &doc,
            |d| d.add_evidence("c03", &newer, &officer(), 7).unwrap(),
            with_pred(old, put_of("caption")),
        );
    }

    #[test]
    fn a_deletion_must_be_of_an_element_of_its_own_sequence() {
        let (mut doc, _) = reviewed();
        doc.set_note("c01", "abc", &officer(), 7).unwrap();
        let the_return = at(doc.automerge(), &["criteria", "c01", "log", "1"]);
        assert_refused(
            &doc,
            |d| d.set_note("c01", "ab", &officer(), 8).unwrap(),
            |change| {
                let delete = change
                    .operations
                    .iter_mut()
                    .find(|op| matches!(op.key, Key::Seq(_)))
                    .unwrap();
                let victim = legacy(&the_return);
                delete.key = Key::Seq(ElementId::Id(victim.clone()));
                delete.pred = vec![victim].into();
            },
        );
    }

    #[test]
    fn a_predecessor_the_document_lacks_is_refused() {
        let (doc, _) = reviewed();
        assert_refused(
            &doc,
            |d| d.set_indicator("incidents", 3, &officer(), 7).unwrap(),
            |change| {
                let actor = change.actor_id.clone();
                let op = change.operations.iter_mut().find(|op| !op.insert).unwrap();
                op.pred = vec![legacy::OpId::new(999_999, &actor)].into();
            },
        );
    }

    /// Honest references the heads before no longer show: a value and characters a
    /// concurrent change replaced or deleted.
    #[test]
    fn concurrent_edits_refer_to_what_their_writer_saw() {
        let (mut base, _) = reviewed();
        base.set_note("c01", "one two three", &officer(), 7)
            .unwrap();
        base.set_indicator("incidents", 1, &officer(), 8).unwrap();
        let fork = |doc: &Assessment| Assessment::from_automerge(doc.automerge().fork()).unwrap();
        let (mut ours, mut theirs) = (fork(&base), fork(&base));
        theirs
            .set_note("c01", "one three", &supervisor(), 9)
            .unwrap();
        theirs
            .set_indicator("incidents", 2, &supervisor(), 9)
            .unwrap();
        ours.set_note("c01", "one", &officer(), 10).unwrap();
        ours.set_indicator("incidents", 4, &officer(), 10).unwrap();
        let mut relay = theirs.clone();
        let before = relay.heads();
        relay.merge(&ours).unwrap();
        assert_eq!(check(&relay, &before, &AS_OFFICER).map(|_| ()), Ok(()));
    }
}

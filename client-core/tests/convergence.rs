//! Property tests: replicas editing offline and exchanging changes in any order, with
//! duplicates, converge; no evidence is lost; and no stale edit undoes a review.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use wardcheck_core::doc::Assessment;
use wardcheck_core::model::{Action, Author, Status, sample_templates};
use wardcheck_core::testing::{sample_unit, signed_evidence};

/// Criteria the test edits: three need no photo, one needs one.
const CRITERIA: [&str; 4] = ["c01", "c02", "c09", "c03"];

#[derive(Debug, Clone)]
enum Op {
    /// An officer on replica `r` takes a lifecycle step.
    Step { r: usize, c: usize, submit: bool },
    /// A supervisor on replica `r` reviews.
    Review { r: usize, c: usize, approve: bool },
    /// An officer rewrites part of the note.
    Note { r: usize, c: usize, text: String },
    /// An officer attaches a photo.
    Photo { r: usize, c: usize, seed: u64 },
    /// Replica `to` receives some changes made so far, in the given order, maybe twice.
    Deliver { to: usize, picks: Vec<usize> },
}

fn op(replicas: usize) -> impl Strategy<Value = Op> {
    let r = 0..replicas;
    let c = 0..CRITERIA.len();
    prop_oneof![
        3 => (r.clone(), c.clone(), any::<bool>()).prop_map(|(r, c, submit)| Op::Step { r, c, submit }),
        2 => (r.clone(), c.clone(), any::<bool>()).prop_map(|(r, c, approve)| Op::Review { r, c, approve }),
        2 => (r.clone(), c.clone(), "[a-z ]{0,12}").prop_map(|(r, c, text)| Op::Note { r, c, text }),
        2 => (r.clone(), c.clone(), 0u64..1_000).prop_map(|(r, c, seed)| Op::Photo { r, c, seed }),
        3 => (r, prop::collection::vec(any::<usize>(), 0..12)).prop_map(|(to, picks)| Op::Deliver { to, picks }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (3usize..=5).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n), 1..50)))
}

/// An officer step, remembered with the reviews (by time) its replica had seen.
struct StepMade {
    criterion: usize,
    saw_reviews: BTreeSet<i64>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_keep_evidence_and_respect_reviews((n, ops) in scenario()) {
        let template = Arc::new(sample_templates().remove(0));
        let origin = Assessment::create(&sample_unit(), "2025", template).unwrap();
        let mut replicas: Vec<Assessment> =
            (0..n).map(|_| Assessment::load(&origin.save()).unwrap()).collect();
        let mut changes: Vec<Vec<u8>> = Vec::new();
        let mut photos: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        let mut steps: Vec<StepMade> = Vec::new();

        for (clock, op) in ops.iter().enumerate() {
            // Each op's time is unique, so a review is identified by its `at_ms`.
            let now = clock as i64 + 1;
            let heads_before: Vec<_> = replicas.iter().map(Assessment::heads).collect();
            let officer = |r: usize| Author::new(format!("officer-{r}"), format!("phone-{r}"));
            let supervisor = |r: usize| Author::new("supervisor", format!("device-{r}"));
            let (r, result) = match op {
                Op::Step { r, c, submit } => {
                    let action = if *submit { Action::Submit } else { Action::Start };
                    let saw_reviews = replicas[*r]
                        .criterion_view(CRITERIA[*c])
                        .unwrap()
                        .log
                        .iter()
                        .filter(|t| t.action.is_review())
                        .map(|t| t.at_ms)
                        .collect();
                    let result = replicas[*r].step(CRITERIA[*c], action, None, &officer(*r), now);
                    if result.is_ok() {
                        steps.push(StepMade { criterion: *c, saw_reviews });
                    }
                    (*r, result.map(drop))
                }
                Op::Review { r, c, approve } => {
                    let (action, reason) = if *approve {
                        (Action::Approve, None)
                    } else {
                        (Action::Return, Some("more photos"))
                    };
                    (*r, replicas[*r].step(CRITERIA[*c], action, reason, &supervisor(*r), now).map(drop))
                }
                Op::Note { r, c, text } => {
                    (*r, replicas[*r].set_note(CRITERIA[*c], text, &officer(*r), now))
                }
                Op::Photo { r, c, seed } => {
                    let evidence = signed_evidence(*seed, &officer(*r));
                    photos.entry(*c).or_default().insert(evidence.photo.to_hex());
                    (*r, replicas[*r].add_evidence(CRITERIA[*c], &evidence, &officer(*r), now))
                }
                Op::Deliver { to, picks } => {
                    for pick in picks {
                        if !changes.is_empty() {
                            replicas[*to].apply(&changes[pick % changes.len()]).unwrap();
                        }
                    }
                    continue;
                }
            };
            // Refusals by the lifecycle are fine; anything else is a bug.
            if let Err(e) = &result {
                let expected = matches!(
                    e,
                    wardcheck_core::Error::NotAllowed { .. }
                        | wardcheck_core::Error::NotEnoughEvidence { .. }
                );
                prop_assert!(expected, "unexpected error {e}");
            }
            // What this op changed travels as its own chunk (empty if it was refused).
            changes.push(replicas[r].save_after(&heads_before[r]));
        }

        // Everyone receives everything, in reverse order, twice.
        for replica in &mut replicas {
            for chunk in changes.iter().rev().chain(changes.iter()) {
                replica.apply(chunk).unwrap();
            }
        }

        let first = replicas[0].view().unwrap();
        for replica in &replicas[1..] {
            prop_assert_eq!(replica.heads().len(), replicas[0].heads().len());
            let mut a = replica.heads();
            let mut b = replicas[0].heads();
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
            prop_assert_eq!(&replica.view().unwrap(), &first);
        }
        for (c, id) in CRITERIA.iter().enumerate() {
            let view = first.criteria.iter().find(|v| v.criterion.id == *id).unwrap();
            let kept: BTreeSet<String> = view.evidence.iter().map(|e| e.photo.to_hex()).collect();
            if let Some(added) = photos.get(&c) {
                prop_assert_eq!(&kept, added, "evidence lost on {}", id);
            }
            if let Some(review) = &view.review {
                // The reviews of the deciding round (concurrent supervisors may have made
                // several); an officer who saw one of them acted on the current round.
                let deciding: BTreeSet<i64> = view
                    .log
                    .iter()
                    .filter(|t| t.action.is_review() && t.round == review.round)
                    .map(|t| t.at_ms)
                    .collect();
                let informed = steps
                    .iter()
                    .any(|s| s.criterion == c && !s.saw_reviews.is_disjoint(&deciding));
                if !informed {
                    prop_assert_eq!(view.status, review.action.status(),
                        "a stale edit undid the review on {}", id);
                }
                prop_assert!(matches!(view.status,
                    Status::Approved | Status::Returned | Status::InProgress | Status::Submitted));
            }
        }
    }
}

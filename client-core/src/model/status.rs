//! Criterion statuses and the rule that derives them from an append-only log.
//!
//! A criterion's status is never stored as one overwritable field: two officers and a
//! supervisor editing offline would race on it, and whichever write Automerge happened to
//! pick would win. Instead every status change is a [`Transition`] appended to the
//! criterion's log, and the status is *derived* from the whole log by [`derive`], a pure
//! function of the set of entries. Every replica that holds the same entries derives the
//! same status, whatever order they arrived in.
//!
//! # Review rounds, and why a stale edit cannot undo a review
//!
//! Each review (approve or return) opens a new **round**: a review recorded while its
//! author saw round `r` belongs to round `r + 1`. Every officer transition records the round
//! its author saw when making it. The current round is the highest round any review
//! opened; an officer transition counts only if it was made in that round, that is, by
//! someone who had already seen the latest review. An edit made offline before the review
//! arrived carries an older round, so however late it syncs, it cannot change what the
//! reviewer decided.
//!
//! Concurrent reviews of the same round are settled deterministically: a return beats an
//! approval (the cautious outcome), then the later time, then the reviewer id.

use serde::{Deserialize, Serialize};

/// Where a criterion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nobody has worked on it yet.
    NotStarted,
    /// Officers are collecting evidence.
    InProgress,
    /// Sent for review (appraisal).
    Submitted,
    /// A supervisor accepted it: the criterion is met.
    Approved,
    /// A supervisor sent it back with a reason.
    Returned,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 5] = [
        Status::NotStarted,
        Status::InProgress,
        Status::Submitted,
        Status::Approved,
        Status::Returned,
    ];

    /// The name used in documents and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "not_started",
            Status::InProgress => "in_progress",
            Status::Submitted => "submitted",
            Status::Approved => "approved",
            Status::Returned => "returned",
        }
    }
}

/// What a transition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An officer starts (or resumes, after a return) work on the criterion.
    Start,
    /// An officer submits the criterion for review.
    Submit,
    /// A supervisor approves it.
    Approve,
    /// A supervisor returns it, with a reason.
    Return,
}

impl Action {
    /// The name used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Submit => "submit",
            Action::Approve => "approve",
            Action::Return => "return",
        }
    }

    /// Parses [`Action::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "start" => Some(Action::Start),
            "submit" => Some(Action::Submit),
            "approve" => Some(Action::Approve),
            "return" => Some(Action::Return),
            _ => None,
        }
    }

    /// Whether this is a supervisor's review rather than an officer's step.
    pub fn is_review(self) -> bool {
        matches!(self, Action::Approve | Action::Return)
    }

    /// The status this action leads to.
    pub fn status(self) -> Status {
        match self {
            Action::Start => Status::InProgress,
            Action::Submit => Status::Submitted,
            Action::Approve => Status::Approved,
            Action::Return => Status::Returned,
        }
    }

    /// Whether a person who sees `current` may take this action now.
    ///
    /// Officers cannot reopen an approved criterion (a supervisor returns it first);
    /// reviews need something to review: a submission, or an approval being withdrawn.
    pub fn allowed_from(self, current: Status) -> bool {
        match self {
            Action::Start => matches!(
                current,
                Status::NotStarted | Status::Submitted | Status::Returned
            ),
            Action::Submit => matches!(
                current,
                Status::NotStarted | Status::InProgress | Status::Returned
            ),
            Action::Approve => current == Status::Submitted,
            Action::Return => matches!(current, Status::Submitted | Status::Approved),
        }
    }
}

/// One entry of a criterion's status log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// What was done.
    pub action: Action,
    /// The round its author saw (for a review, the round it closes).
    pub round: u64,
    /// Who did it: an officer's or supervisor's user id.
    pub by: String,
    /// The device (or the relay's console) it was done on.
    pub device: String,
    /// When, in milliseconds since the Unix epoch, by the author's clock.
    pub at_ms: i64,
    /// Why, for a return.
    pub reason: Option<String>,
}

/// The outcome of [`derive`].
#[derive(Debug, Clone, PartialEq)]
pub struct Derived<'a> {
    /// The current status.
    pub status: Status,
    /// The current round: what a new transition must record.
    pub round: u64,
    /// The review that opened the current round, if any.
    pub review: Option<&'a Transition>,
    /// Other reviews of the current round that lost the tie (a conflict to show).
    pub concurrent_reviews: Vec<&'a Transition>,
}

/// Derives the status from a log whose entries are in the document's list order.
///
/// The result depends only on the entries and their list order, which Automerge makes
/// identical on every replica, so all replicas agree.
pub fn derive(log: &[Transition]) -> Derived<'_> {
    let round = log
        .iter()
        .filter(|t| t.action.is_review())
        .map(|t| t.round.saturating_add(1))
        .max()
        .unwrap_or(0);
    let mut reviews: Vec<&Transition> = log
        .iter()
        .filter(|t| t.action.is_review() && t.round.saturating_add(1) == round)
        .collect();
    // Winner first: return beats approve, then later time, then reviewer id.
    reviews.sort_by(|a, b| {
        let rank = |t: &Transition| t.action == Action::Return;
        (rank(b), b.at_ms, &b.by).cmp(&(rank(a), a.at_ms, &a.by))
    });
    let review = reviews.first().copied();
    let concurrent_reviews = reviews.iter().skip(1).copied().collect();
    let latest_officer_step = log
        .iter()
        .rfind(|t| !t.action.is_review() && t.round >= round);
    let status = match (latest_officer_step, review) {
        (Some(step), _) => step.action.status(),
        (None, Some(review)) => review.action.status(),
        (None, None) => Status::NotStarted,
    };
    Derived {
        status,
        round,
        review,
        concurrent_reviews,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(action: Action, round: u64, at_ms: i64) -> Transition {
        Transition {
            action,
            round,
            by: format!("user-{at_ms}"),
            device: "d".into(),
            at_ms,
            reason: (action == Action::Return).then(|| "photos missing".into()),
        }
    }

    #[test]
    fn empty_log_is_not_started() {
        let d = derive(&[]);
        assert_eq!((d.status, d.round), (Status::NotStarted, 0));
    }

    #[test]
    fn lifecycle_through_a_return() {
        let mut log = vec![t(Action::Start, 0, 1), t(Action::Submit, 0, 2)];
        assert_eq!(derive(&log).status, Status::Submitted);
        log.push(t(Action::Return, 0, 3));
        assert_eq!(derive(&log).status, Status::Returned);
        assert_eq!(derive(&log).round, 1);
        log.push(t(Action::Start, 1, 4));
        assert_eq!(derive(&log).status, Status::InProgress);
        log.push(t(Action::Submit, 1, 5));
        log.push(t(Action::Approve, 1, 6));
        assert_eq!(derive(&log).status, Status::Approved);
        assert_eq!(derive(&log).round, 2);
    }

    #[test]
    fn a_stale_edit_arriving_late_does_not_undo_a_review() {
        // The officer went offline at round 0 and kept editing; the review came first in
        // real time but the stale steps sync afterwards (later in the list).
        let log = vec![
            t(Action::Submit, 0, 1),
            t(Action::Approve, 0, 2),
            t(Action::Start, 0, 50),
            t(Action::Submit, 0, 60),
        ];
        assert_eq!(derive(&log).status, Status::Approved);
    }

    #[test]
    fn concurrent_reviews_prefer_the_return_in_any_order() {
        let approve = t(Action::Approve, 0, 9);
        let ret = t(Action::Return, 0, 5);
        for log in [
            vec![approve.clone(), ret.clone()],
            vec![ret.clone(), approve.clone()],
        ] {
            let d = derive(&log);
            assert_eq!(d.status, Status::Returned);
            assert_eq!(d.concurrent_reviews, vec![&approve]);
        }
    }

    #[test]
    fn transitions_allowed_by_the_lifecycle() {
        assert!(Action::Start.allowed_from(Status::Returned));
        assert!(!Action::Start.allowed_from(Status::Approved));
        assert!(!Action::Submit.allowed_from(Status::Approved));
        assert!(Action::Approve.allowed_from(Status::Submitted));
        assert!(!Action::Approve.allowed_from(Status::InProgress));
        assert!(Action::Return.allowed_from(Status::Approved));
        for action in [
            Action::Start,
            Action::Submit,
            Action::Approve,
            Action::Return,
        ] {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
    }
}

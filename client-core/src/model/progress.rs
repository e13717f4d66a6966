//! Progress of an assessment: how many criteria stand where.
//!
//! One definition for every screen: the phone's summary and the console's progress bars
//! both count with [`Progress::count`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Status;

/// Counts of criteria per status, out of the template's total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Criteria in the template.
    pub total: u32,
    /// Not started yet.
    pub not_started: u32,
    /// Being worked on.
    pub in_progress: u32,
    /// Submitted, waiting for review.
    pub submitted: u32,
    /// Approved: met.
    pub approved: u32,
    /// Returned by a reviewer.
    pub returned: u32,
}

impl Progress {
    /// Counts the given statuses, one per criterion.
    pub fn count(statuses: impl IntoIterator<Item = Status>) -> Self {
        statuses.into_iter().fold(Self::default(), |mut p, status| {
            p.total += 1;
            *match status {
                Status::NotStarted => &mut p.not_started,
                Status::InProgress => &mut p.in_progress,
                Status::Submitted => &mut p.submitted,
                Status::Approved => &mut p.approved,
                Status::Returned => &mut p.returned,
            } += 1;
            p
        })
    }

    /// Criteria met (approved).
    pub fn met(&self) -> u32 {
        self.approved
    }

    /// Criteria under review (submitted).
    pub fn under_review(&self) -> u32 {
        self.submitted
    }

    /// Whether every criterion is met.
    pub fn complete(&self) -> bool {
        self.total > 0 && self.approved == self.total
    }
}

/// "18/22 met, 4 under review": the summary used in reports.
impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} met", self.met(), self.total)?;
        if self.under_review() > 0 {
            write!(f, ", {} under review", self.under_review())?;
        }
        if self.returned > 0 {
            write!(f, ", {} returned", self.returned)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_summary() {
        let statuses = std::iter::repeat_n(Status::Approved, 18)
            .chain(std::iter::repeat_n(Status::Submitted, 4));
        let p = Progress::count(statuses);
        assert_eq!(p.total, 22);
        assert_eq!(p.to_string(), "18/22 met, 4 under review");
        assert!(!p.complete());
        let all = Progress::count(std::iter::repeat_n(Status::Approved, 20));
        assert_eq!(all.to_string(), "20/20 met");
        assert!(all.complete());
        assert!(!Progress::default().complete());
    }
}

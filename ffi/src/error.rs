//! The one error apps see: a few variants an app can act on, each with a message.
//!
//! Every core and transport error maps here once ([`From`]). Messages come from the core,
//! which keeps identities, positions, tokens and keys out of them, so apps may show or
//! log them as they are.

use wardcheck_core::Error as CoreError;
use wardcheck_core::transport::TransportError;

/// What a wardcheck call can fail with. In Kotlin a `WardcheckException` subclass, in
/// Swift a `WardcheckError` case, in Python a `WardcheckError` subclass; each carries a
/// message fit for a log or an error dialog.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum WardcheckError {
    /// The photo could not be turned into evidence (not a JPEG/PNG, corrupt, too large,
    /// bad location); nothing was stored.
    #[error("{message}")]
    InvalidPhoto {
        /// What was wrong with it.
        message: String,
    },
    /// A criteria template's JSON is invalid (the message names the field and line).
    #[error("{message}")]
    InvalidTemplate {
        /// What was wrong with it.
        message: String,
    },
    /// An argument is unusable: an empty id, a malformed assessment id or photo hash, a
    /// relay URL that is not http(s).
    #[error("{message}")]
    InvalidInput {
        /// What was wrong with it.
        message: String,
    },
    /// No such assessment, criterion, photo, template or conflict.
    #[error("{message}")]
    NotFound {
        /// What was missing.
        message: String,
    },
    /// The assessment for this unit and period exists already.
    #[error("{message}")]
    AlreadyExists {
        /// Which one.
        message: String,
    },
    /// The step is not allowed now: the criterion's status forbids it, or it lacks the
    /// photos its template asks for.
    #[error("{message}")]
    NotAllowed {
        /// Why.
        message: String,
    },
    /// An edit needs a signed-in user: enrol the device, or call `set_user`.
    #[error("{message}")]
    NotSignedIn {
        /// The core's message.
        message: String,
    },
    /// Syncing needs an enrolled device: call `enroll` first.
    #[error("{message}")]
    NotEnrolled {
        /// The core's message.
        message: String,
    },
    /// The relay refused the enrolment code (wrong, used or expired): ask for a new one.
    #[error("{message}")]
    EnrolmentRefused {
        /// The relay's answer.
        message: String,
    },
    /// The relay refused this device's token (revoked): enrol again.
    #[error("{message}")]
    Unauthorized {
        /// The relay's answer.
        message: String,
    },
    /// The relay could not be reached or stopped answering (after retries): try later.
    #[error("{message}")]
    RelayUnreachable {
        /// What failed.
        message: String,
    },
    /// The relay answered with an error or broke the sync protocol.
    #[error("{message}")]
    Relay {
        /// The relay's status and message.
        message: String,
    },
    /// The sync was cancelled (through its `SyncHandle` or by cancelling the caller's
    /// coroutine or task). What was synced before is kept.
    #[error("{message}")]
    Cancelled {
        /// The core's message.
        message: String,
    },
    /// The edit breaks a rule the relay holds for everyone (an officer approving, a note
    /// or caption too long, ...): nothing was changed. The message says which.
    #[error("{message}")]
    Refused {
        /// The rule.
        message: String,
    },
    /// Evidence whose signature or photo does not match its record.
    #[error("{message}")]
    InvalidEvidence {
        /// What did not match.
        message: String,
    },
    /// Another process (or another `Workspace` object) has this workspace open.
    #[error("{message}")]
    Locked {
        /// The core's message.
        message: String,
    },
    /// The local database or file system failed, or was written by a newer app.
    #[error("{message}")]
    Storage {
        /// What failed.
        message: String,
    },
    /// A document is damaged or not an assessment.
    #[error("{message}")]
    Document {
        /// What is wrong with it.
        message: String,
    },
    /// A failure inside the library that no app action explains (a bug: please report).
    #[error("{message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

impl From<CoreError> for WardcheckError {
    fn from(e: CoreError) -> Self {
        let message = e.to_string();
        match e {
            CoreError::Photo(_) => Self::InvalidPhoto { message },
            CoreError::Template(_) => Self::InvalidTemplate { message },
            CoreError::InvalidInput(_) => Self::InvalidInput { message },
            CoreError::UnknownTemplate(_)
            | CoreError::UnknownDocument(_)
            | CoreError::UnknownCriterion(_)
            | CoreError::UnknownEvidence(_)
            | CoreError::NoConflict(_) => Self::NotFound { message },
            CoreError::DocumentExists(_) => Self::AlreadyExists { message },
            CoreError::NotAllowed { .. } | CoreError::NotEnoughEvidence { .. } => {
                Self::NotAllowed { message }
            }
            CoreError::NotSignedIn => Self::NotSignedIn { message },
            CoreError::Provenance(_) => Self::InvalidEvidence { message },
            CoreError::Refused(_) => Self::Refused { message },
            CoreError::Locked => Self::Locked { message },
            CoreError::Store(_) | CoreError::StoreTooNew { .. } | CoreError::Io(_) => {
                Self::Storage { message }
            }
            CoreError::Malformed(_) | CoreError::Automerge(_) | CoreError::Inflation(_) => {
                Self::Document { message }
            }
            _ => Self::Internal { message },
        }
    }
}

impl From<TransportError> for WardcheckError {
    fn from(e: TransportError) -> Self {
        let message = e.to_string();
        match e {
            TransportError::Core(core) => core.into(),
            TransportError::Network(_) | TransportError::Timeout => {
                Self::RelayUnreachable { message }
            }
            TransportError::Unauthorized => Self::Unauthorized { message },
            TransportError::Http { .. } | TransportError::Protocol(_) => Self::Relay { message },
            TransportError::Cancelled => Self::Cancelled { message },
            TransportError::NotEnrolled => Self::NotEnrolled { message },
            TransportError::BadUrl => Self::InvalidInput { message },
            _ => Self::Internal { message },
        }
    }
}

impl WardcheckError {
    /// An unusable argument.
    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
        }
    }

    /// Maps an enrolment failure: there an unauthorised answer means the code was refused.
    pub(crate) fn from_enrolment(e: TransportError) -> Self {
        match e {
            TransportError::Unauthorized => Self::EnrolmentRefused {
                message: "the relay refused the enrolment code (wrong, used or expired)".into(),
            },
            other => other.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wardcheck_core::photo::PhotoError;

    #[test]
    fn core_and_transport_errors_map_to_what_apps_act_on() {
        assert!(matches!(
            CoreError::Photo(PhotoError::Empty).into(),
            WardcheckError::InvalidPhoto { message } if message == "photo refused: the photo is empty"
        ));
        assert!(matches!(
            CoreError::Locked.into(),
            WardcheckError::Locked { .. }
        ));
        assert!(matches!(
            TransportError::Core(CoreError::NotSignedIn).into(),
            WardcheckError::NotSignedIn { .. }
        ));
        assert!(matches!(
            TransportError::Timeout.into(),
            WardcheckError::RelayUnreachable { .. }
        ));
        // Unauthorised: a refused code when enrolling, a revoked device when syncing.
        assert!(matches!(
            WardcheckError::from_enrolment(TransportError::Unauthorized),
            WardcheckError::EnrolmentRefused { .. }
        ));
        assert!(matches!(
            TransportError::Unauthorized.into(),
            WardcheckError::Unauthorized { .. }
        ));
        assert!(matches!(
            WardcheckError::from_enrolment(TransportError::BadUrl),
            WardcheckError::InvalidInput { .. }
        ));
    }
}

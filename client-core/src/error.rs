//! The core's error type: one enum for every public call.
//!
//! Messages name what went wrong and never carry identities, GPS positions, tokens or
//! keys: they end up in logs and in the phone app's error dialogs.

use crate::blob::BlobHash;
use crate::doc::DocumentId;
use crate::model::{Action, Status, TemplateError, TemplateKey};
use crate::photo::{PhotoError, ProvenanceError};

/// Everything a core call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A criteria template file is invalid.
    #[error("invalid template: {0}")]
    Template(#[from] TemplateError),
    /// A photo could not be turned into evidence; nothing was stored.
    #[error("photo refused: {0}")]
    Photo(#[from] PhotoError),
    /// An evidence record's signature or photo does not match.
    #[error("evidence provenance: {0}")]
    Provenance(#[from] ProvenanceError),
    /// A caller's argument is unusable (empty id, bad period, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The template this assessment needs is not installed in the workspace.
    #[error("template {0} is not installed")]
    UnknownTemplate(TemplateKey),
    /// No assessment with this id in the workspace.
    #[error("no assessment {0}")]
    UnknownDocument(DocumentId),
    /// The assessment exists already.
    #[error("assessment {0} exists already")]
    DocumentExists(DocumentId),
    /// The assessment's template has no such criterion.
    #[error("no criterion {0:?} in this assessment")]
    UnknownCriterion(String),
    /// The criterion has no such evidence.
    #[error("no evidence {0} on this criterion")]
    UnknownEvidence(BlobHash),
    /// The lifecycle does not allow this step now.
    #[error("cannot {} a criterion that is {}", .action.as_str(), .status.as_str())]
    NotAllowed {
        /// The refused step.
        action: Action,
        /// The criterion's status when it was refused.
        status: Status,
    },
    /// Submitting needs the template's minimum number of photos.
    #[error("the criterion needs at least {required} photos, it has {have}")]
    NotEnoughEvidence {
        /// Photos the template asks for.
        required: u32,
        /// Photos attached now.
        have: u32,
    },
    /// Nothing is in conflict at this path.
    #[error("no conflict at {0}")]
    NoConflict(String),
    /// The change policy refuses the edit: nothing was changed (see [`crate::policy`]).
    #[error("refused: {0}")]
    Refused(#[from] crate::policy::Refusal),
    /// A document does not have the shape of an assessment (e.g. sent by a foreign peer).
    #[error("malformed assessment document: {0}")]
    Malformed(String),
    /// Automerge refused the operation or the bytes.
    #[error("document error: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// Bytes from elsewhere would expand past what Automerge may be given at once
    /// ([`crate::doc::MAX_INFLATED_BYTES`]), or are not Automerge chunks: refused before
    /// Automerge read them.
    #[error(transparent)]
    Inflation(#[from] crate::sync::InflationError),
    /// The local database failed.
    #[error("local store: {0}")]
    Store(#[from] rusqlite::Error),
    /// The local database was written by a newer wardcheck.
    #[error("the local store has schema version {found}, newer than this app's {supported}")]
    StoreTooNew {
        /// The version on disk.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// An edit needs a signed-in user ([`crate::Workspace::set_user`]).
    #[error("no user is signed in on this device")]
    NotSignedIn,
    /// Another process has this workspace open.
    #[error("the workspace is open in another process")]
    Locked,
    /// A file could not be read or written.
    #[error("file system: {0}")]
    Io(#[from] std::io::Error),
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

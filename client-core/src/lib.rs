//! wardcheck's shared core.

pub mod blob;
pub mod doc;
mod error;
pub mod model;
pub mod photo;
mod store;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "transport")]
pub mod transport;
mod workspace;

pub use error::{Error, Result};
pub use store::BlobInfo;
pub use workspace::{AssessmentSummary, Enrolment, SimilarEvidence, Workspace, WorkspaceConfig};

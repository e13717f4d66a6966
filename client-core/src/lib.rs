//! wardcheck's shared core: criteria templates, assessment documents (Automerge), the
//! local SQLite store, photo evidence, and the sans-IO sync engine.
//!
//! A [`Workspace`] is one device's data. Officers edit assessments offline; two replicas
//! converge by exchanging sync frames, whoever carries them:
//!
//! ```
//! use wardcheck_core::Workspace;
//! use wardcheck_core::model::{Action, Status, Unit, sample_templates};
//! use wardcheck_core::sync::{Session, SyncState, WorkspaceHost, wire::PeerMetadata};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let unit = Unit {
//!     id: "kontum-ngo-may".into(),
//!     name: "Công an phường Ngô Mây".into(),
//!     city: "Kon Tum".into(),
//!     province: "Kon Tum".into(),
//! };
//! let template = sample_templates().remove(1).key(); // the 2024 set, 20 criteria
//! let (phone_dir, relay_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
//! let phone = Workspace::open(phone_dir.path())?;
//! phone.set_user("officer-1")?;
//! let id = phone.create_assessment(&unit, "2025", &template)?;
//! phone.set_note(&id, "c01", "Chi bộ họp định kỳ hằng tháng.")?;
//! phone.step(&id, "c01", Action::Submit, None)?;
//!
//! // Sync with another store in memory: push frames in, take frames out.
//! let relay = Workspace::open(relay_dir.path())?;
//! let (mut phone_host, mut relay_host) = (WorkspaceHost::new(&phone), WorkspaceHost::new(&relay));
//! let mut ours = Session::initiate("phone", PeerMetadata::default());
//! let mut theirs = Session::accept("relay", PeerMetadata::default());
//! ours.add_document(id, SyncState::new(), &mut phone_host)?;
//! while !ours.is_settled() {
//!     for frame in ours.take_outgoing() {
//!         theirs.receive(&frame, &mut relay_host)?;
//!     }
//!     for frame in theirs.take_outgoing() {
//!         ours.receive(&frame, &mut phone_host)?;
//!     }
//! }
//! let view = relay.view(&id)?;
//! assert_eq!(view.criteria[0].status, Status::Submitted);
//! assert_eq!(view.progress.to_string(), "0/20 met, 1 under review");
//! # Ok(())
//! # }
//! ```

pub mod blob;
pub mod doc;
mod error;
pub mod migrate;
pub mod model;
pub mod photo;
pub mod policy;
mod store;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "transport")]
pub mod transport;
mod workspace;

pub use error::{Error, Result};
pub use store::BlobInfo;
pub use workspace::{
    AssessmentSummary, Enrolment, HeldListing, InstalledTemplate, MAX_FETCHING_BLOB_BYTES,
    MAX_FETCHING_BYTES, SimilarEvidence, Workspace, WorkspaceConfig,
};

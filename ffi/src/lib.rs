//! wardcheck's phone library: the core ([`wardcheck_core`]) for Kotlin (Android), Swift
//! (iOS) and Python through [UniFFI](https://mozilla.github.io/uniffi-rs/).
//!
//! A thin face: [`Workspace`] and [`Assessment`] objects whose methods convert arguments
//! and call the core; the core's records and enums exposed as they are
//! ([`records`]); one error, [`WardcheckError`]. Network calls (`enroll`, `sync`,
//! `fetch_photo`) are `async` (Kotlin `suspend fun`, Swift `async`) and run the core's
//! blocking transport on a thread of their own, so no async runtime is needed.
//!
//! ```
//! use wardcheck_ffi::{Action, Status, Workspace};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let workspace = Workspace::open(dir.path().display().to_string())?;
//! workspace.set_user("officer-1".into())?;
//! let template = workspace.templates()?.pop().expect("sample templates").template;
//! let unit = wardcheck_ffi::WardUnit {
//!     id: "kontum-ngo-may".into(),
//!     name: "Công an phường Ngô Mây".into(),
//!     city: "Kon Tum".into(),
//!     province: "Kon Tum".into(),
//! };
//! let key = wardcheck_ffi::TemplateKey { id: template.id, version: template.version };
//! let assessment = workspace.create_assessment(unit, "2025".into(), key)?;
//! assessment.set_note("c01".into(), "Họp định kỳ hằng tháng.".into())?;
//! assert_eq!(assessment.step("c01".into(), Action::Submit, None)?, Status::Submitted);
//! let progress = assessment.progress()?;
//! assert_eq!(wardcheck_ffi::progress_summary(progress), "0/20 met, 1 under review");
//! # Ok(())
//! # }
//! ```

mod error;
pub mod records;
mod sync;
mod worker;
mod workspace;

pub use error::WardcheckError;
pub use records::{EnrolmentInfo, SyncPhase, SyncProgress, SyncReport, WardUnit};
pub use sync::{SyncHandle, SyncListener};
pub use wardcheck_core::AssessmentSummary;
pub use wardcheck_core::doc::{
    AssessmentView, Comment, Conflict, ConflictValue, CriterionView, Evidence, FieldValue,
    HistoryEntry, Indicator,
};
pub use wardcheck_core::model::{
    Action, Area, Criterion, Localized, Owner, Progress, Status, Template, TemplateKey, Transition,
};
pub use wardcheck_core::photo::GeoPoint;
pub use workspace::{Assessment, Workspace};

uniffi::setup_scaffolding!("wardcheck");

/// Progress in words, as reports show it: "18/22 met, 4 under review, 1 returned".
#[uniffi::export]
pub fn progress_summary(progress: Progress) -> String {
    progress.to_string()
}

//! Plain data crossing the boundary: the core's own types, exposed as UniFFI records and
//! enums (mirrored with `#[uniffi::remote]`, so no copies to keep in step by hand), and
//! the few records of this crate where the core's shape cannot cross (sizes as `usize`,
//! the secret token).
//!
//! Ids and hashes travel as strings: assessment ids in base58 (as automerge-repo names
//! documents), photo hashes as 64 hex digits, perceptual hashes as 16 hex digits, keys and
//! signatures as the core prints them.

use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::{
    AssessmentView, Comment, Conflict, ConflictValue, CriterionView, DocumentId, Evidence,
    FieldValue, HistoryEntry, Indicator,
};
use wardcheck_core::model::{
    Action, Area, Criterion, Localized, Owner, Progress, Role, Status, Template, TemplateKey,
    Transition, Unit,
};
use wardcheck_core::photo::{GeoPoint, PerceptualHash, PublicKey, Signature};
use wardcheck_core::transport::{
    FetchingDocument, Phase, RefusedDocument, SyncProgress as CoreSyncProgress,
    SyncReport as CoreSyncReport,
};
use wardcheck_core::{AssessmentSummary, Enrolment};

/// Types that cross as their `Display` string and come back through `FromStr`.
macro_rules! as_string {
    ($($ty:ident),*) => {$(
        uniffi::custom_type!($ty, String, {
            remote,
            lower: |value| value.to_string(),
            try_lift: |s| Ok(s.parse()?),
        });
    )*};
}

as_string!(DocumentId, BlobHash, PerceptualHash, PublicKey, Signature);

/// A text in Vietnamese and English.
#[uniffi::remote(Record)]
pub struct Localized {
    /// Vietnamese.
    pub vi: String,
    /// English.
    pub en: String,
}

/// Who carries a criterion out.
#[uniffi::remote(Enum)]
pub enum Owner {
    /// The ward police.
    Police,
    /// The ward's Party committee and local government.
    LocalGovernment,
}

/// An area (lĩnh vực) grouping criteria.
#[uniffi::remote(Record)]
pub struct Area {
    /// Its id, named by [`Criterion::area`].
    pub id: String,
    /// Its title.
    pub title: Localized,
}

/// One criterion (tiêu chí) of a template.
#[uniffi::remote(Record)]
pub struct Criterion {
    /// Stable id, e.g. `c07`, kept across template versions.
    pub id: String,
    /// The number as printed in the official set.
    pub code: String,
    /// The id of its area.
    pub area: String,
    /// Its title.
    pub title: Localized,
    /// What evidence shows it is met.
    pub guidance: Localized,
    /// Photos a submission needs at least.
    pub min_photos: u32,
    /// Who carries it out.
    pub owner: Owner,
}

/// A versioned criteria set.
#[uniffi::remote(Record)]
pub struct Template {
    /// Its id, e.g. `model-ward-antt`.
    pub id: String,
    /// Its version, e.g. 2024.
    pub version: u32,
    /// Its title.
    pub title: Localized,
    /// What it is for.
    pub description: Localized,
    /// The areas grouping its criteria.
    pub areas: Vec<Area>,
    /// The criteria, in order.
    pub criteria: Vec<Criterion>,
}

/// An installed criteria set, and where it stands.
#[derive(uniffi::Record)]
pub struct InstalledTemplate {
    /// The set.
    pub template: Template,
    /// One of the illustrative samples built into the app, not an official set.
    pub sample: bool,
    /// Published by the relay.
    pub published: bool,
    /// Retired by the relay: it takes no new assessments.
    pub retired: bool,
}

impl From<wardcheck_core::InstalledTemplate> for InstalledTemplate {
    fn from(t: wardcheck_core::InstalledTemplate) -> Self {
        Self {
            template: (*t.template).clone(),
            sample: t.sample,
            published: t.published,
            retired: t.retired,
        }
    }
}

/// Names one version of one template.
#[uniffi::remote(Record)]
pub struct TemplateKey {
    /// The template's id.
    pub id: String,
    /// Its version.
    pub version: u32,
}

/// The core's [`Unit`], named so it does not shadow Kotlin's `Unit`.
pub type WardUnit = Unit;

/// A ward police unit.
#[uniffi::remote(Record)]
pub struct WardUnit {
    /// Stable id, e.g. `kontum-ngo-may`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its city.
    pub city: String,
    /// Its province.
    pub province: String,
}

/// Where a criterion stands.
#[uniffi::remote(Enum)]
pub enum Status {
    /// Nobody has worked on it yet.
    NotStarted,
    /// Officers are collecting evidence.
    InProgress,
    /// Sent for review.
    Submitted,
    /// A supervisor approved it: met.
    Approved,
    /// A supervisor returned it with a reason.
    Returned,
}

/// What a user may do.
#[uniffi::remote(Enum)]
pub enum Role {
    /// A field officer of a ward.
    Officer,
    /// A city or province supervisor: approves and returns criteria.
    Supervisor,
    /// Runs the relay.
    Admin,
}

/// A lifecycle step.
#[uniffi::remote(Enum)]
pub enum Action {
    /// An officer starts (or resumes) work.
    Start,
    /// An officer submits for review.
    Submit,
    /// A supervisor approves.
    Approve,
    /// A supervisor returns, with a reason.
    Return,
}

/// One entry of a criterion's status log.
#[uniffi::remote(Record)]
pub struct Transition {
    /// What was done.
    pub action: Action,
    /// The review round its author saw.
    pub round: u64,
    /// Who did it.
    pub by: String,
    /// On which device.
    pub device: String,
    /// When, in ms since the epoch, by the author's clock.
    pub at_ms: i64,
    /// Why, for a return.
    pub reason: Option<String>,
}

/// Counts of criteria per status (see [`crate::progress_summary`] for "18/22 met").
#[uniffi::remote(Record)]
pub struct Progress {
    /// Criteria in the template.
    pub total: u32,
    /// Not started.
    pub not_started: u32,
    /// Being worked on.
    pub in_progress: u32,
    /// Waiting for review.
    pub submitted: u32,
    /// Approved: met.
    pub approved: u32,
    /// Returned by a reviewer.
    pub returned: u32,
}

/// A position: the photo's EXIF GPS, or the app's own fix.
#[uniffi::remote(Record)]
pub struct GeoPoint {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
    /// Horizontal accuracy in metres, if known.
    pub accuracy_m: Option<f64>,
}

/// A photo attached to a criterion, with its signed capture record.
#[uniffi::remote(Record)]
pub struct Evidence {
    /// SHA-256 of the evidence JPEG (hex): pass it to `Workspace.photo`.
    pub photo: BlobHash,
    /// SHA-256 of the thumbnail JPEG (hex): pass it to `Workspace.photo`.
    pub thumbnail: BlobHash,
    /// Perceptual hash (16 hex digits).
    pub perceptual_hash: PerceptualHash,
    /// Evidence width in pixels.
    pub width: u32,
    /// Evidence height in pixels.
    pub height: u32,
    /// What the photo shows.
    pub caption: String,
    /// When it was taken (ISO 8601, from EXIF or the device clock).
    pub captured_at: String,
    /// Where it was taken, if known.
    pub location: Option<GeoPoint>,
    /// The officer who took it.
    pub officer: String,
    /// The device it was taken on.
    pub device: String,
    /// That device's public key.
    pub device_key: PublicKey,
    /// The device's signature over the capture record.
    pub signature: Signature,
    /// When it was attached, in ms since the epoch.
    pub added_at_ms: i64,
    /// Carried over from the previous period: confirm it again.
    pub to_reconfirm: bool,
}

/// One criterion of an assessment, as a screen shows it.
#[uniffi::remote(Record)]
pub struct CriterionView {
    /// The criterion as the template defines it.
    pub criterion: Criterion,
    /// Its status, derived from the log.
    pub status: Status,
    /// The current review round.
    pub round: u64,
    /// The officers' note.
    pub note: String,
    /// Attached photos (removed ones left out), oldest first.
    pub evidence: Vec<Evidence>,
    /// The review that decided the current round, if any.
    pub review: Option<Transition>,
    /// Concurrent reviews of the same round that lost.
    pub contested_by: Vec<Transition>,
    /// The whole status log.
    pub log: Vec<Transition>,
}

/// An indicator of the period next to the previous period's value.
#[uniffi::remote(Record)]
pub struct Indicator {
    /// Its key, e.g. `incidents`.
    pub key: String,
    /// This period's value, if entered.
    pub value: Option<i64>,
    /// The previous period's value, if known.
    pub previous: Option<i64>,
}

/// A comment on a criterion or on the whole assessment.
#[uniffi::remote(Record)]
pub struct Comment {
    /// The criterion, or none for the whole assessment.
    pub criterion: Option<String>,
    /// Its author.
    pub by: String,
    /// The author's device.
    pub device: String,
    /// When, in ms since the epoch.
    pub at_ms: i64,
    /// The text.
    pub text: String,
}

/// Everything a screen needs to show an assessment.
#[uniffi::remote(Record)]
pub struct AssessmentView {
    /// The assessment's id.
    pub id: DocumentId,
    /// The ward unit.
    pub unit: Unit,
    /// The period, e.g. `2025`.
    pub period: String,
    /// The template version it was created from.
    pub template: TemplateKey,
    /// The criteria, in the template's order.
    pub criteria: Vec<CriterionView>,
    /// Counts per status.
    pub progress: Progress,
    /// Indicators of this period.
    pub indicators: Vec<Indicator>,
    /// Comments, oldest first.
    pub comments: Vec<Comment>,
}

/// A line of the assessments list.
#[uniffi::remote(Record)]
pub struct AssessmentSummary {
    /// The assessment's id.
    pub id: DocumentId,
    /// The ward unit.
    pub unit: Unit,
    /// The period.
    pub period: String,
    /// The template version.
    pub template: TemplateKey,
    /// Counts per status.
    pub progress: Progress,
}

/// One change of an assessment, as history shows it.
#[uniffi::remote(Record)]
pub struct HistoryEntry {
    /// When, in ms since the epoch (second precision).
    pub at_ms: i64,
    /// The user who made it (empty for the creation).
    pub by: String,
    /// The device it was made on.
    pub device: String,
    /// What it did, e.g. `status:submit`, `note`, `evidence:add`.
    pub what: String,
    /// The criterion it touched, if any.
    pub criterion: Option<String>,
}

/// A plain value of a document field (in a conflict, or to settle one with).
#[uniffi::remote(Enum)]
pub enum FieldValue {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number with decimals.
    Float(f64),
    /// Yes or no.
    Bool(bool),
    /// Nothing, or an object.
    Null,
}

/// One of the values a conflicted field holds.
#[uniffi::remote(Record)]
pub struct ConflictValue {
    /// The value.
    pub value: FieldValue,
    /// Who wrote it.
    pub by: String,
    /// On which device.
    pub device: String,
    /// When, in ms since the epoch (second precision).
    pub at_ms: i64,
}

/// A field that concurrent offline edits left with different values: settle it with
/// `Assessment.settle(path, value)`.
#[uniffi::remote(Record)]
pub struct Conflict {
    /// Where, e.g. `criteria/c02/note`.
    pub path: String,
    /// The criterion it belongs to, if any.
    pub criterion: Option<String>,
    /// The values, the one shown now first.
    pub values: Vec<ConflictValue>,
}

/// The core's [`Phase`] under a name that says what it is a phase of.
pub type SyncPhase = Phase;

/// The phase a sync is in.
#[uniffi::remote(Enum)]
pub enum SyncPhase {
    /// Exchanging assessment changes.
    Documents,
    /// Sending photos the relay lacks (thumbnails first).
    Uploads,
    /// Fetching other devices' thumbnails.
    Downloads,
}

/// Where a running sync stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    /// The current phase.
    pub phase: SyncPhase,
    /// Assessments in sync so far.
    pub documents_done: u64,
    /// Assessments to sync.
    pub documents_total: u64,
    /// Photo bytes sent so far.
    pub bytes_sent: u64,
    /// Photo bytes to send.
    pub bytes_total: u64,
}

impl From<&CoreSyncProgress> for SyncProgress {
    fn from(p: &CoreSyncProgress) -> Self {
        Self {
            phase: p.phase,
            documents_done: p.documents_done as u64,
            documents_total: p.documents_total as u64,
            bytes_sent: p.bytes_sent,
            bytes_total: p.bytes_total,
        }
    }
}

/// What a sync did, and whether it finished.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Assessments now in sync with the relay.
    pub documents_in_sync: u64,
    /// Assessments the relay would not share or did not have.
    pub unavailable: Vec<DocumentId>,
    /// Assessments whose changes from this device the relay refused, with its reason
    /// (never from this library's own edits: they pass the same rules first).
    pub refused: Vec<RefusedDocument>,
    /// Photos (evidence and thumbnails) uploaded.
    pub blobs_uploaded: u64,
    /// Photo bytes sent (resumed uploads send only the rest).
    pub bytes_uploaded: u64,
    /// Photos the relay had already, so not sent.
    pub blobs_already_there: u64,
    /// Other devices' thumbnails fetched.
    pub thumbnails_fetched: u64,
    /// Thumbnails not on the relay yet (their phone has not uploaded them).
    pub thumbnails_not_yet_on_relay: u64,
    /// Thumbnail bytes received, pieces of downloads cut short included (kept).
    pub thumbnail_bytes_received: u64,
    /// Changes the relay's sync messages carried.
    pub changes_received: u64,
    /// Of those, the changes that were new here (a change that crossed the link before
    /// is kept, never asked for again).
    pub changes_new: u64,
    /// The bytes of those changes, as they came.
    pub change_bytes_received: u64,
    /// The bytes of this device's changes in sync messages written whole to the link (the
    /// relay keeps what reaches it, of a push cut short too).
    pub change_bytes_sent: u64,
    /// Criteria sets the relay publishes that this device installed.
    pub criteria_sets_received: u64,
    /// Assessments this device lacked, stored from the relay's snapshots of them (their
    /// changes are counted above).
    pub snapshots_fetched: u64,
    /// Snapshot bytes received, pieces of downloads cut short included (kept).
    pub snapshot_bytes_received: u64,
    /// Why the sync stopped before the end, if the link gave out after carrying
    /// something: what came is kept, the next sync goes on from it. `None` once finished.
    pub interrupted: Option<String>,
    /// Assessments the relay lists that this device still lacks, with how far each has
    /// come (kept across syncs): "32 of 36 KB". Empty once all are here.
    pub fetching: Vec<FetchingDocument>,
}

impl From<CoreSyncReport> for SyncReport {
    fn from(r: CoreSyncReport) -> Self {
        Self {
            documents_in_sync: r.documents_in_sync as u64,
            unavailable: r.unavailable,
            refused: r.refused,
            blobs_uploaded: r.blobs_uploaded as u64,
            bytes_uploaded: r.bytes_uploaded,
            blobs_already_there: r.blobs_already_there as u64,
            thumbnails_fetched: r.thumbnails_fetched as u64,
            thumbnails_not_yet_on_relay: r.thumbnails_not_yet_on_relay as u64,
            thumbnail_bytes_received: r.thumbnail_bytes_received,
            changes_received: r.changes_received,
            changes_new: r.changes_new,
            change_bytes_received: r.change_bytes_received,
            change_bytes_sent: r.change_bytes_sent,
            criteria_sets_received: r.criteria_sets_received as u64,
            snapshots_fetched: r.snapshots_fetched as u64,
            snapshot_bytes_received: r.snapshot_bytes_received,
            interrupted: r.interrupted,
            fetching: r.fetching,
        }
    }
}

/// An assessment the relay took no changes of, and why.
#[uniffi::remote(Record)]
pub struct RefusedDocument {
    /// The assessment.
    pub document: DocumentId,
    /// The relay's reason.
    pub reason: String,
}

/// An assessment being fetched: how much of it is here, of about how much.
#[uniffi::remote(Record)]
pub struct FetchingDocument {
    /// The assessment.
    pub document: DocumentId,
    /// The bytes of its changes kept here so far.
    pub bytes_held: u64,
    /// About its bytes on the relay (at least `bytes_held`).
    pub bytes_total: u64,
}

/// This device's enrolment with a relay (the token stays inside the library).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrolmentInfo {
    /// The relay's base URL.
    pub relay_url: String,
    /// The id the relay gave this device.
    pub device_id: String,
    /// The user the device was enrolled for (signed in from then on).
    pub user_id: String,
    /// That user's role: only supervisors approve and return.
    pub role: Role,
    /// That user's unit.
    pub unit_id: String,
}

impl From<Enrolment> for EnrolmentInfo {
    fn from(e: Enrolment) -> Self {
        Self {
            relay_url: e.relay_url,
            device_id: e.device_id,
            user_id: e.user_id,
            role: e.role,
            unit_id: e.unit_id,
        }
    }
}

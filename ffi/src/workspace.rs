//! The two objects: [`Workspace`] (one device's data) and [`Assessment`] (one checklist
//! in it). Methods only convert and call the core.

use std::sync::Arc;

use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::{
    AssessmentView, Conflict, CriterionView, DocumentId, Evidence, FieldValue, HistoryEntry,
};
use wardcheck_core::model::{Action, Progress, Status, TemplateKey};
use wardcheck_core::photo::GeoPoint;
use wardcheck_core::transport::{self, Relay};
use wardcheck_core::{AssessmentSummary, Workspace as CoreWorkspace};

use crate::records::{EnrolmentInfo, InstalledTemplate, SyncReport, WardUnit};
use crate::sync::{Observer, SyncHandle, SyncListener};
use crate::{WardcheckError, worker};

type Result<T, E = WardcheckError> = std::result::Result<T, E>;

/// One device's local data: a folder holding the store (assessments, photos, the device's
/// key, its enrolment). Open it once per process; every edit is on disk when the call
/// returns. Safe to use from any thread.
#[derive(uniffi::Object)]
pub struct Workspace {
    core: Arc<CoreWorkspace>,
}

#[uniffi::export]
impl Workspace {
    /// Opens the workspace in the folder `dir` (created if missing; on Android e.g.
    /// `context.filesDir`, on iOS the app's Application Support folder). Fails with
    /// `Locked` if it is open already, `Storage` if the folder cannot be used.
    #[uniffi::constructor]
    pub fn open(dir: String) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            core: Arc::new(CoreWorkspace::open(dir)?),
        }))
    }

    /// This device's id (made on first open).
    pub fn device_id(&self) -> String {
        self.core.device_id().to_owned()
    }

    /// The signed-in user, if any (enrolling signs its user in).
    pub fn user(&self) -> Option<String> {
        self.core.user()
    }

    /// Signs a user in on this device without a relay (e.g. before enrolment); their id is
    /// recorded with every edit.
    pub fn set_user(&self, user: String) -> Result<()> {
        Ok(self.core.set_user(&user)?)
    }

    /// Every installed criteria template, by id then version (the two samples on first
    /// open; those the relay publishes arrive at sync), marked: sample, published by the
    /// relay, retired (no new assessments).
    pub fn templates(&self) -> Result<Vec<InstalledTemplate>> {
        Ok(self
            .core
            .installed_templates()?
            .into_iter()
            .map(InstalledTemplate::from)
            .collect())
    }

    /// Installs a template from its JSON; fails with `InvalidTemplate` naming the field
    /// and line.
    pub fn install_template(&self, json: String) -> Result<TemplateKey> {
        Ok(self.core.install_template(&json)?)
    }

    /// Creates `unit`'s assessment for `period` (e.g. `2025`) from an installed template.
    /// Fails with `AlreadyExists` if this device has it already.
    pub fn create_assessment(
        &self,
        unit: WardUnit,
        period: String,
        template: TemplateKey,
    ) -> Result<Arc<Assessment>> {
        let id = self.core.create_assessment(&unit, &period, &template)?;
        Ok(self.assessment_object(id))
    }

    /// Every assessment on this device with its progress.
    pub fn assessments(&self) -> Result<Vec<AssessmentSummary>> {
        Ok(self.core.assessments()?)
    }

    /// The assessment with this id (from [`AssessmentSummary::id`]); `NotFound` if this
    /// device does not have it.
    pub fn assessment(&self, id: String) -> Result<Arc<Assessment>> {
        let id = parse_id(&id)?;
        if !self.core.has_document(&id)? {
            return Err(WardcheckError::NotFound {
                message: format!("no assessment {id}"),
            });
        }
        Ok(self.assessment_object(id))
    }

    /// A photo's bytes (JPEG) by its hash, [`Evidence::photo`] or [`Evidence::thumbnail`],
    /// or none if this device does not have it (another device's full-size photo: use
    /// [`Workspace::fetch_photo`]).
    pub fn photo(&self, hash: String) -> Result<Option<Vec<u8>>> {
        Ok(self.core.blob(&parse_hash(&hash)?)?)
    }

    /// Writes a photo this device has to the file `path` (for image loaders that take
    /// files) and returns whether it had it.
    pub fn write_photo(&self, hash: String, path: String) -> Result<bool> {
        match self.core.blob(&parse_hash(&hash)?)? {
            Some(bytes) => {
                std::fs::write(&path, bytes).map_err(wardcheck_core::Error::from)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The relay this device is enrolled with, if it is.
    pub fn enrolment(&self) -> Result<Option<EnrolmentInfo>> {
        Ok(self.core.enrolment()?.map(EnrolmentInfo::from))
    }

    /// Enrols this device with the relay at `relay_url` using the one-time `code` an
    /// administrator gave (e.g. scanned from a QR code), and signs the code's user in.
    /// Fails with `EnrolmentRefused` for a wrong, used or expired code and
    /// `RelayUnreachable` when the relay cannot be reached.
    pub async fn enroll(
        &self,
        relay_url: String,
        code: String,
        device_name: String,
    ) -> Result<EnrolmentInfo> {
        let core = self.core.clone();
        worker::run("enrol", move |_| {
            transport::enroll(&core, &relay_url, &code, &device_name)
                .map(EnrolmentInfo::from)
                .map_err(WardcheckError::from_enrolment)
        })
        .await
    }

    /// Syncs every assessment with the relay, then sends the photos it lacks and fetches
    /// others' thumbnails. Retries network failures with backoff; fails with
    /// `RelayUnreachable` when they persist, `NotEnrolled`, `Unauthorized` (revoked), or
    /// `Cancelled` when `handle` is cancelled or the awaiting coroutine/task is. Local
    /// edits go on while it runs. `listener` hears progress on the sync thread.
    #[uniffi::method(default(listener = None, handle = None))]
    pub async fn sync(
        &self,
        listener: Option<Arc<dyn SyncListener>>,
        handle: Option<Arc<SyncHandle>>,
    ) -> Result<SyncReport> {
        let core = self.core.clone();
        worker::run("sync", move |abandoned| {
            let relay = Relay::enrolled(&core)?;
            let observer = Observer {
                listener,
                handle,
                abandoned,
            };
            Ok(transport::sync_now(&core, &relay, &observer)?.into())
        })
        .await
    }

    /// A full-size photo by its hash: from this device if it has it, else from the relay
    /// (which keeps it; nothing is stored here).
    pub async fn fetch_photo(&self, hash: String) -> Result<Vec<u8>> {
        let hash = parse_hash(&hash)?;
        let core = self.core.clone();
        worker::run("fetch", move |_| {
            let relay = Relay::enrolled(&core)?;
            Ok(transport::fetch_photo(&core, &relay, &hash)?)
        })
        .await
    }
}

impl Workspace {
    fn assessment_object(&self, id: DocumentId) -> Arc<Assessment> {
        Arc::new(Assessment {
            core: self.core.clone(),
            id,
        })
    }
}

/// One assessment (a unit's checklist for a period) in a workspace: reads and edits.
/// Edits need a signed-in user and are on disk when the call returns.
#[derive(uniffi::Object)]
pub struct Assessment {
    core: Arc<CoreWorkspace>,
    id: DocumentId,
}

#[uniffi::export]
impl Assessment {
    /// Its id (stable across devices: derived from unit and period).
    pub fn id(&self) -> String {
        self.id.to_string()
    }

    /// Everything a screen shows: criteria with status, note, photos and reviews;
    /// progress; indicators; comments.
    pub fn view(&self) -> Result<AssessmentView> {
        Ok(self.core.view(&self.id)?)
    }

    /// One criterion's view, by id (e.g. `c05`).
    pub fn criterion(&self, criterion: String) -> Result<CriterionView> {
        Ok(self.core.criterion(&self.id, &criterion)?)
    }

    /// Counts per status ([`crate::progress_summary`] words them).
    pub fn progress(&self) -> Result<Progress> {
        Ok(self.core.progress(&self.id)?)
    }

    /// Who changed what, when, oldest first: every change, or one criterion's.
    #[uniffi::method(default(criterion = None))]
    pub fn history(&self, criterion: Option<String>) -> Result<Vec<HistoryEntry>> {
        Ok(self.core.history(&self.id, criterion.as_deref())?)
    }

    /// Fields that concurrent offline edits left with different values.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        Ok(self.core.conflicts(&self.id)?)
    }

    /// Takes a lifecycle step on a criterion and returns its new status. `NotAllowed` if
    /// the status forbids it or a submission lacks photos; a return needs a `reason`.
    #[uniffi::method(default(reason = None))]
    pub fn step(
        &self,
        criterion: String,
        action: Action,
        reason: Option<String>,
    ) -> Result<Status> {
        Ok(self
            .core
            .step(&self.id, &criterion, action, reason.as_deref())?)
    }

    /// Replaces a criterion's note.
    pub fn set_note(&self, criterion: String, text: String) -> Result<()> {
        Ok(self.core.set_note(&self.id, &criterion, &text)?)
    }

    /// Attaches a photo to a criterion from the camera's bytes (JPEG or PNG, as taken:
    /// EXIF orientation, time and GPS are read). `location` is the app's own fix, used
    /// when the photo has no GPS. The photo is resized, signed with the device's key and
    /// stored with its thumbnail. `InvalidPhoto` for bytes that are no usable photo or a
    /// location off the earth; nothing is stored then.
    #[uniffi::method(default(caption = "", location = None))]
    pub fn add_photo(
        &self,
        criterion: String,
        camera_bytes: Vec<u8>,
        caption: String,
        location: Option<GeoPoint>,
    ) -> Result<Evidence> {
        if let Some(location) = &location {
            location.validate().map_err(wardcheck_core::Error::from)?;
        }
        Ok(self
            .core
            .add_photo(&self.id, &criterion, &camera_bytes, &caption, location)?)
    }

    /// Changes a photo's caption (`photo`: [`Evidence::photo`]).
    pub fn set_caption(&self, criterion: String, photo: String, caption: String) -> Result<()> {
        let photo = parse_hash(&photo)?;
        Ok(self
            .core
            .set_caption(&self.id, &criterion, &photo, &caption)?)
    }

    /// Confirms a photo carried over from the previous period.
    pub fn confirm_evidence(&self, criterion: String, photo: String) -> Result<()> {
        let photo = parse_hash(&photo)?;
        Ok(self.core.confirm_evidence(&self.id, &criterion, &photo)?)
    }

    /// Detaches a photo (kept in the document, flagged, so no concurrent edit loses it).
    pub fn remove_evidence(&self, criterion: String, photo: String) -> Result<()> {
        let photo = parse_hash(&photo)?;
        Ok(self.core.remove_evidence(&self.id, &criterion, &photo)?)
    }

    /// Sets an indicator of this period (e.g. `incidents`).
    pub fn set_indicator(&self, key: String, value: i64) -> Result<()> {
        Ok(self.core.set_indicator(&self.id, &key, value)?)
    }

    /// Adds a comment on a criterion, or on the whole assessment when `criterion` is none.
    pub fn add_comment(&self, criterion: Option<String>, text: String) -> Result<()> {
        Ok(self
            .core
            .add_comment(&self.id, criterion.as_deref(), &text)?)
    }

    /// Settles a conflict ([`Conflict::path`]) with the chosen value.
    pub fn settle(&self, path: String, value: FieldValue) -> Result<()> {
        Ok(self.core.settle(&self.id, &path, value)?)
    }

    /// Creates the next period's assessment from this one (photos carried over, to be
    /// confirmed again).
    pub fn create_next_period(
        &self,
        period: String,
        template: TemplateKey,
    ) -> Result<Arc<Assessment>> {
        let id = self.core.create_next_period(&self.id, &period, &template)?;
        Ok(Arc::new(Assessment {
            core: self.core.clone(),
            id,
        }))
    }
}

fn parse_id(id: &str) -> Result<DocumentId> {
    id.trim()
        .parse()
        .map_err(|_| WardcheckError::invalid_input("not an assessment id"))
}

fn parse_hash(hash: &str) -> Result<BlobHash> {
    hash.trim()
        .parse()
        .map_err(|_| WardcheckError::invalid_input("not a photo hash (64 hex digits)"))
}

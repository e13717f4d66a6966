//! The workspace: one folder on the device holding the store, opened once per process.
//!
//! A [`Workspace`] is what the phone app (through `ffi`) and tests talk to. It keeps the
//! documents it has used in memory and writes every edit to SQLite before returning, in
//! the same transaction as the photo blobs the edit references.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::blob::{BlobHash, BlobKind};
use crate::doc::{
    Assessment, AssessmentView, Conflict, CriterionView, DocumentId, Evidence, HistoryEntry,
};
use crate::error::{Error, Result};
use crate::model::{Author, Progress, Role, Template, TemplateKey, Unit};
use crate::photo::{DeviceKey, PhotoConfig, PublicKey};
use crate::policy::{self, Writer};
use crate::store::Store;

mod edits;
mod exchange;
mod photos;
mod resume;
mod templates;
pub use resume::{HeldListing, MAX_FETCHING_BLOB_BYTES, MAX_FETCHING_BYTES};
pub use templates::InstalledTemplate;

/// How a workspace behaves; [`Default`] suits phones.
#[derive(Debug, Clone)]
pub struct WorkspaceConfig {
    /// Photo processing limits and sizes.
    pub photo: PhotoConfig,
    /// Compact a document (one snapshot instead of many chunks) once it has this many
    /// chunks; keeps opening a long-edited document fast.
    pub compact_after_chunks: usize,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        Self {
            photo: PhotoConfig::default(),
            compact_after_chunks: 64,
        }
    }
}

/// A line of the assessments list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentSummary {
    /// The document id.
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

/// Evidence that looks like a given photo, found by perceptual hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarEvidence {
    /// The assessment it is attached to.
    pub document: DocumentId,
    /// That assessment's unit id.
    pub unit_id: String,
    /// That assessment's period.
    pub period: String,
    /// The criterion.
    pub criterion: String,
    /// The evidence record.
    pub evidence: Evidence,
    /// Hamming distance of the perceptual hashes (0: the same picture).
    pub distance: u32,
}

/// One device's local data: a folder with a SQLite store, opened by one process at a time.
///
/// `Send + Sync`: calls from several threads are serialised on an internal lock. Photo
/// processing runs outside that lock.
pub struct Workspace {
    inner: Mutex<Inner>,
    device_id: String,
    device_key: DeviceKey,
    config: WorkspaceConfig,
    // Held for the workspace's lifetime: a second process must not write the same store
    // with the same in-memory documents.
    _lock: File,
}

struct Inner {
    store: Store,
    docs: HashMap<DocumentId, Assessment>,
    /// The heads at which each document's view was last cached in the store.
    cached_view_heads: HashMap<DocumentId, Vec<u8>>,
    templates: BTreeMap<TemplateKey, Arc<Template>>,
    user: Option<String>,
    /// The enrolled user's role, which the change policy checks edits against (an
    /// officer's until the device is enrolled).
    role: Role,
}

const DATABASE_FILE: &str = "wardcheck.sqlite3";
const LOCK_FILE: &str = "wardcheck.lock";
const USER_SETTING: &str = "user";
const ENROLMENT_SETTING: &str = "enrolment";

/// This device's enrolment with a relay. The token is a secret: it stays in the store.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    /// The relay's base URL, e.g. `https://relay.example:8080`.
    pub relay_url: String,
    /// The id the relay gave this device.
    pub device_id: String,
    /// The device's bearer token.
    pub token: String,
    /// The user the device was enrolled for.
    pub user_id: String,
    /// That user's role (enrolments saved before roles were kept read as officers').
    #[serde(default)]
    pub role: Role,
    /// That user's unit.
    pub unit_id: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("relay_url", &self.relay_url)
            .field("device_id", &self.device_id)
            .field("token", &"<secret>")
            .finish_non_exhaustive()
    }
}

impl Workspace {
    /// Opens the workspace in `dir` (created if missing) with the default configuration.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, WorkspaceConfig::default())
    }

    /// Opens the workspace in `dir` (created if missing).
    ///
    /// On first open it creates the device's id and key pair and installs the sample
    /// templates. Fails with [`Error::Locked`] if another process has it open.
    pub fn open_with(dir: impl AsRef<Path>, config: WorkspaceConfig) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let lock = File::create(dir.join(LOCK_FILE))?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => Error::Locked,
            std::fs::TryLockError::Error(e) => Error::Io(e),
        })?;
        let mut store = Store::open(&dir.join(DATABASE_FILE))?;
        let (device_id, device_key) = match store.device()? {
            Some(row) => (
                row.device_id,
                DeviceKey::from_secret_bytes(&row.secret_key)?,
            ),
            None => {
                let key = DeviceKey::generate()?;
                let id = random_id()?;
                store.write(|w| {
                    w.set_device(
                        &id,
                        &key.secret_bytes(),
                        &key.public_key().to_string(),
                        now_ms(),
                    )?;
                    for template in crate::model::sample_templates() {
                        w.put_template(&template.id, template.version, &template.to_json())?;
                    }
                    Ok(())
                })?;
                (id, key)
            }
        };
        let mut templates = BTreeMap::new();
        for json in store.templates()? {
            let template = Template::from_json(&json)?;
            templates.insert(template.key(), Arc::new(template));
        }
        let user = store.setting(USER_SETTING)?;
        let role = store
            .setting(ENROLMENT_SETTING)?
            .and_then(|json| serde_json::from_str::<Enrolment>(&json).ok())
            .map(|enrolment| enrolment.role)
            .unwrap_or_default();
        Ok(Self {
            inner: Mutex::new(Inner {
                store,
                docs: HashMap::new(),
                cached_view_heads: HashMap::new(),
                templates,
                user,
                role,
            }),
            device_id,
            device_key,
            config,
            _lock: lock,
        })
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// This device's public key, which verifies its evidence signatures.
    pub fn device_public_key(&self) -> PublicKey {
        self.device_key.public_key()
    }

    /// Signs a user in on this device: their id is recorded with every edit from now on.
    pub fn set_user(&self, user: &str) -> Result<()> {
        let user = user.trim();
        if user.is_empty() {
            return Err(Error::InvalidInput("a user id cannot be empty".into()));
        }
        let mut inner = self.lock();
        inner.store.write(|w| w.set_setting(USER_SETTING, user))?;
        inner.user = Some(user.into());
        Ok(())
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<String> {
        self.lock().user.clone()
    }

    /// Every assessment in the workspace with its progress.
    pub fn assessments(&self) -> Result<Vec<AssessmentSummary>> {
        let mut inner = self.lock();
        let ids = inner.store.document_ids()?;
        ids.iter()
            .map(|id| {
                let view = inner.view(id)?;
                Ok(AssessmentSummary {
                    id: view.id,
                    unit: view.unit,
                    period: view.period,
                    template: view.template,
                    progress: view.progress,
                })
            })
            .collect()
    }

    /// The whole view of an assessment.
    ///
    /// A document that is not in memory yet is shown from the view cached in the store
    /// when the document has not changed since; its Automerge history is loaded only when
    /// an edit or a sync needs it.
    pub fn view(&self, id: &DocumentId) -> Result<AssessmentView> {
        self.lock().view(id)
    }

    /// One criterion's view.
    pub fn criterion(&self, id: &DocumentId, criterion: &str) -> Result<CriterionView> {
        self.lock().doc(id)?.criterion_view(criterion)
    }

    /// Counts per status ("18/22 met, 4 under review").
    pub fn progress(&self, id: &DocumentId) -> Result<Progress> {
        self.lock().doc(id)?.progress()
    }

    /// Who changed what, when: all changes, or those of one criterion.
    pub fn history(&self, id: &DocumentId, criterion: Option<&str>) -> Result<Vec<HistoryEntry>> {
        Ok(self.lock().doc(id)?.history(criterion))
    }

    /// Fields that concurrent offline edits left with different values.
    pub fn conflicts(&self, id: &DocumentId) -> Result<Vec<Conflict>> {
        Ok(self.lock().doc(id)?.conflicts())
    }

    /// The relay this device is enrolled with, if it is.
    pub fn enrolment(&self) -> Result<Option<Enrolment>> {
        let json = self.lock().store.setting(ENROLMENT_SETTING)?;
        Ok(json.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Records an enrolment and signs its user in, in one transaction.
    pub fn save_enrolment(&self, enrolment: &Enrolment) -> Result<()> {
        let json =
            serde_json::to_string(enrolment).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mut inner = self.lock();
        inner.store.write(|w| {
            w.set_setting(ENROLMENT_SETTING, &json)?;
            w.set_setting(USER_SETTING, &enrolment.user_id)
        })?;
        inner.user = Some(enrolment.user_id.clone());
        inner.role = enrolment.role;
        Ok(())
    }

    /// Checks the database's integrity (for diagnostics and crash tests).
    pub fn integrity_check(&self) -> Result<()> {
        self.lock().store.integrity_check()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the store half-written (SQLite
        // transactions), so a poisoned lock is safe to keep using.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn author(&self, device: &str) -> Result<Author> {
        let user = self.user.clone().ok_or(Error::NotSignedIn)?;
        Ok(Author::new(user, device))
    }

    fn template(&self, key: &TemplateKey) -> Result<Arc<Template>> {
        self.templates
            .get(key)
            .cloned()
            .ok_or_else(|| Error::UnknownTemplate(key.clone()))
    }

    /// The document, from memory or loaded from the store.
    fn doc(&mut self, id: &DocumentId) -> Result<&mut Assessment> {
        if !self.docs.contains_key(id) {
            let stored = self
                .store
                .document(id)?
                .ok_or(Error::UnknownDocument(*id))?;
            let mut doc = automerge::Automerge::load(&stored.snapshot)?;
            for chunk in &stored.chunks {
                doc.load_incremental(chunk)?;
            }
            self.docs.insert(*id, Assessment::from_automerge(doc)?);
        }
        self.docs.get_mut(id).ok_or(Error::UnknownDocument(*id))
    }

    /// The view, from the store's cache when it is current and the document is not in
    /// memory; otherwise built, and cached for the next open.
    fn view(&mut self, id: &DocumentId) -> Result<AssessmentView> {
        if !self.docs.contains_key(id)
            && let Some(json) = self.store.cached_view(id)?
        {
            match serde_json::from_str(&json) {
                Ok(view) => return Ok(view),
                // A cache written by another version: rebuild it.
                Err(e) => tracing::debug!("ignoring a cached view: {e}"),
            }
        }
        let doc = self.doc(id)?;
        let view = doc.view()?;
        let heads = doc.heads_key();
        if self.cached_view_heads.get(id) != Some(&heads)
            && let Ok(json) = serde_json::to_string(&view)
        {
            // The cache only saves time: failing to write it must not fail the call.
            match self.store.write(|w| w.put_view(id, &heads, &json)) {
                Ok(()) => {
                    self.cached_view_heads.insert(*id, heads);
                }
                Err(e) => tracing::warn!("could not cache a view: {e}"),
            }
        }
        Ok(view)
    }

    fn insert_new(&mut self, assessment: Assessment) -> Result<DocumentId> {
        let view = assessment.view()?;
        let snapshot = assessment.save();
        let heads = assessment.heads_key();
        self.store.write(|w| {
            w.insert_document(
                &view.id,
                &view.unit.id,
                &view.period,
                &snapshot,
                &heads,
                now_ms(),
            )?;
            // Fetched or created here while a fetch was under way: either way whole now.
            w.delete_fetching_chunks(&view.id)
        })?;
        self.docs.insert(view.id, assessment);
        Ok(view.id)
    }

    /// Applies `f` to the document and stores the new changes, with `blobs`, in one
    /// transaction; with a `writer`, only if the change policy allows what `f` did. If
    /// the policy refuses or storing fails, the in-memory document is dropped so that the
    /// next call reloads what is really on disk: the caller sees the error and nothing
    /// half-done.
    fn change<T>(
        &mut self,
        id: &DocumentId,
        blobs: &[(BlobHash, BlobKind, &[u8])],
        now: i64,
        compact_after_chunks: usize,
        writer: Option<&Writer>,
        f: impl FnOnce(&mut Assessment) -> Result<T>,
    ) -> Result<T> {
        let doc = self.doc(id)?;
        let before = doc.heads();
        let changed = f(doc).and_then(|out| {
            if let Some(writer) = writer {
                policy::check(doc, &before, writer)?;
            }
            Ok((out, doc.heads() != before))
        });
        let stored = changed.and_then(|(out, changed)| {
            if !changed && blobs.is_empty() {
                return Ok((out, false));
            }
            let doc = self.doc(id)?;
            let chunk = doc.save_after(&before);
            let heads = doc.heads_key();
            self.store.write(|w| {
                for (hash, kind, bytes) in blobs {
                    w.put_blob(hash, *kind, bytes, now)?;
                }
                w.append_chunk(id, &chunk, &heads, now)
            })?;
            Ok((out, true))
        });
        let (out, written) = match stored {
            Ok(stored) => stored,
            Err(e) => {
                if self.docs.get(id).is_some_and(|doc| doc.heads() != before) {
                    self.docs.remove(id);
                }
                return Err(e);
            }
        };
        if written && let Err(e) = self.compact_if_due(id, compact_after_chunks) {
            // The edit is stored: compaction only saves time later, and failing it must
            // not report the edit as failed (a retry would make it twice).
            tracing::warn!("could not compact a document: {e}");
        }
        Ok(out)
    }

    /// Folds the chunks into a new snapshot once there are `limit` of them.
    fn compact_if_due(&mut self, id: &DocumentId, limit: usize) -> Result<()> {
        if self.store.chunk_count(id)? < limit {
            return Ok(());
        }
        let snapshot = self.doc(id)?.save();
        self.store.write(|w| w.replace_snapshot(id, &snapshot))
    }
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn now_iso() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Status, sample_templates};
    use crate::photo::GeoPoint;
    use crate::testing::{jpeg, sample_unit};

    fn template_2023() -> TemplateKey {
        sample_templates().remove(0).key()
    }

    fn signed_in(dir: &Path, user: &str) -> Workspace {
        let ws = Workspace::open(dir).unwrap();
        ws.set_user(user).unwrap();
        ws
    }

    fn new_assessment(ws: &Workspace) -> DocumentId {
        ws.create_assessment(&sample_unit(), "2025", &template_2023())
            .unwrap()
    }

    #[test]
    fn first_open_creates_the_device_and_installs_the_samples() {
        let dir = tempfile::tempdir().unwrap();
        let (device, key) = {
            let ws = Workspace::open(dir.path()).unwrap();
            assert_eq!(ws.templates().len(), 2);
            assert_eq!(ws.user(), None);
            (ws.device_id().to_owned(), ws.device_public_key())
        };
        let ws = Workspace::open(dir.path()).unwrap();
        assert_eq!(ws.device_id(), device);
        assert_eq!(ws.device_public_key(), key);
    }

    #[test]
    fn a_second_open_of_the_same_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Workspace::open(dir.path()).unwrap();
        assert!(matches!(Workspace::open(dir.path()), Err(Error::Locked)));
    }

    #[test]
    fn edits_need_a_signed_in_user() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let id = new_assessment(&ws);
        assert!(matches!(
            ws.set_note(&id, "c01", "x"),
            Err(Error::NotSignedIn)
        ));
        assert!(matches!(ws.set_user("  "), Err(Error::InvalidInput(_))));
        ws.set_user("officer-1").unwrap();
        ws.set_note(&id, "c01", "x").unwrap();
        drop(ws);
        assert_eq!(
            Workspace::open(dir.path()).unwrap().user().as_deref(),
            Some("officer-1")
        );
    }

    #[test]
    fn edits_survive_reopening_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let config = WorkspaceConfig {
            compact_after_chunks: 4,
            ..WorkspaceConfig::default()
        };
        let (id, before) = {
            let ws = Workspace::open_with(dir.path(), config.clone()).unwrap();
            ws.set_user("officer-1").unwrap();
            let id = new_assessment(&ws);
            for n in 0..21 {
                ws.set_note(&id, "c01", &format!("draft {n}")).unwrap();
            }
            ws.step(&id, "c01", Action::Submit, None).unwrap();
            assert!(ws.lock().store.chunk_count(&id).unwrap() < 4);
            (id, ws.view(&id).unwrap())
        };
        let ws = Workspace::open_with(dir.path(), config).unwrap();
        assert_eq!(ws.view(&id).unwrap(), before);
        assert_eq!(before.criteria[0].note, "draft 20");
        assert_eq!(ws.history(&id, Some("c01")).unwrap().len(), 22);
        assert!(matches!(
            ws.create_assessment(&sample_unit(), "2025", &template_2023()),
            Err(Error::DocumentExists(_))
        ));
    }

    #[test]
    fn the_device_refuses_what_the_relay_would_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ws = signed_in(dir.path(), "officer-1");
        let id = new_assessment(&ws);
        ws.step(&id, "c01", Action::Submit, None).unwrap();
        let before = ws.view(&id).unwrap();
        // An officer's device (as every device is until enrolled) does not review.
        assert!(matches!(
            ws.step(&id, "c01", Action::Approve, None),
            Err(Error::Refused(policy::Refusal::NotAReviewer))
        ));
        let long = "x".repeat(policy::limits::NOTE_CHARS + 1);
        assert!(matches!(
            ws.set_note(&id, "c02", &long),
            Err(Error::Refused(policy::Refusal::TooLarge { .. }))
        ));
        assert_eq!(ws.view(&id).unwrap(), before);
        drop(ws);
        let ws = Workspace::open(dir.path()).unwrap();
        assert_eq!(ws.view(&id).unwrap(), before);
        // Enrolled as a supervisor, the same device may.
        crate::testing::enrol_as(&ws, "sup", Role::Supervisor);
        ws.step(&id, "c01", Action::Approve, None).unwrap();
        assert_eq!(ws.view(&id).unwrap().criteria[0].status, Status::Approved);
    }

    #[test]
    fn reopening_shows_the_cached_view_until_the_document_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (id, shown) = {
            let ws = signed_in(dir.path(), "officer-1");
            let id = new_assessment(&ws);
            ws.set_note(&id, "c01", "cached").unwrap();
            (id, ws.view(&id).unwrap())
        };
        let ws = Workspace::open(dir.path()).unwrap();
        assert_eq!(ws.view(&id).unwrap(), shown);
        assert!(ws.lock().docs.is_empty(), "the view came from the cache");
        ws.set_user("officer-2").unwrap();
        ws.set_note(&id, "c01", "changed").unwrap();
        assert_eq!(ws.view(&id).unwrap().criteria[0].note, "changed");
        drop(ws);
        let ws = Workspace::open(dir.path()).unwrap();
        assert_eq!(ws.view(&id).unwrap().criteria[0].note, "changed");
        // A cache that no longer decodes is rebuilt, not an error.
        let heads = ws.lock().doc(&id).unwrap().heads_key();
        let mut inner = ws.lock();
        inner
            .store
            .write(|w| w.put_view(&id, &heads, "not json"))
            .unwrap();
        assert_eq!(
            inner.store.cached_view(&id).unwrap().as_deref(),
            Some("not json")
        );
        drop(inner);
        drop(ws);
        let ws = Workspace::open(dir.path()).unwrap();
        assert_eq!(ws.view(&id).unwrap().criteria[0].note, "changed");
    }

    #[test]
    fn a_photo_becomes_signed_evidence_with_its_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let ws = signed_in(dir.path(), "officer-1");
        let id = new_assessment(&ws);
        let here = GeoPoint::new(14.35, 108.0, Some(8.0)).unwrap();
        let evidence = ws
            .add_photo(&id, "c04", &jpeg(640, 480, 1), " façade ", Some(here))
            .unwrap();
        assert_eq!(evidence.caption, "façade");
        assert_eq!(evidence.location, Some(here));
        assert_eq!(
            (evidence.officer.as_str(), evidence.device.as_str()),
            ("officer-1", ws.device_id())
        );
        assert_eq!(
            ws.criterion(&id, "c04").unwrap().evidence,
            vec![evidence.clone()]
        );
        ws.verify_evidence(&evidence, &ws.device_public_key())
            .unwrap();

        let pending: Vec<_> = ws
            .pending_uploads()
            .unwrap()
            .into_iter()
            .map(|b| (b.hash, b.kind))
            .collect();
        assert_eq!(
            pending,
            vec![
                (evidence.thumbnail, BlobKind::Thumbnail),
                (evidence.photo, BlobKind::Evidence)
            ]
        );
        ws.mark_uploaded(&evidence.thumbnail).unwrap();
        assert!(ws.blob_info(&evidence.thumbnail).unwrap().unwrap().uploaded);
        assert_eq!(ws.pending_uploads().unwrap().len(), 1);

        // A record whose GPS was edited, or checked against another device's key, fails.
        let mut moved = evidence.clone();
        moved.location = GeoPoint::new(21.0, 105.8, None).ok();
        assert!(matches!(
            ws.verify_evidence(&moved, &ws.device_public_key()),
            Err(Error::Provenance(_))
        ));
        let other = DeviceKey::generate().unwrap().public_key();
        assert!(ws.verify_evidence(&evidence, &other).is_err());
    }

    #[test]
    fn a_bad_photo_is_refused_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ws = signed_in(dir.path(), "officer-1");
        let id = new_assessment(&ws);
        let history = ws.history(&id, None).unwrap().len();
        for bad in [&b""[..], b"not a photo", &jpeg(640, 480, 1)[..200]] {
            assert!(matches!(
                ws.add_photo(&id, "c04", bad, "x", None),
                Err(Error::Photo(_))
            ));
        }
        assert!(matches!(
            ws.add_photo(&id, "nope", &jpeg(64, 48, 1), "x", None),
            Err(Error::UnknownCriterion(_))
        ));
        assert!(ws.pending_uploads().unwrap().is_empty());
        assert_eq!(ws.history(&id, None).unwrap().len(), history);
    }

    #[test]
    fn a_reused_photo_is_found_in_another_assessment() {
        let dir = tempfile::tempdir().unwrap();
        let ws = signed_in(dir.path(), "officer-1");
        let first = new_assessment(&ws);
        let other_unit = Unit {
            id: "kontum-tran-hung-dao".into(),
            name: "Công an phường Trần Hưng Đạo".into(),
            ..sample_unit()
        };
        let second = ws
            .create_assessment(&other_unit, "2025", &template_2023())
            .unwrap();
        let original = ws
            .add_photo(&first, "c04", &jpeg(800, 600, 7), "", None)
            .unwrap();
        ws.add_photo(&first, "c05", &jpeg(800, 600, 99), "", None)
            .unwrap();
        // The same picture, forwarded (re-encoded) and attached to another ward's criterion.
        let forwarded = ws.blob(&original.photo).unwrap().unwrap();
        let reused = ws.add_photo(&second, "c06", &forwarded, "", None).unwrap();
        assert_ne!(reused.photo, original.photo);
        let found = ws.similar_evidence(reused.perceptual_hash, 6).unwrap();
        let places: Vec<_> = found
            .iter()
            .map(|s| (s.document, s.criterion.as_str()))
            .collect();
        assert!(places.contains(&(second, "c06")));
        assert!(places.contains(&(first, "c04")), "{found:?}");
        assert!(!places.contains(&(first, "c05")));
        assert!(found.windows(2).all(|w| w[0].distance <= w[1].distance));
        assert!(found.iter().any(|s| s.evidence == reused));
    }

    #[test]
    fn two_devices_exchange_documents_and_converge() {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = signed_in(dir_a.path(), "officer-1");
        let b = signed_in(dir_b.path(), "officer-2");
        // Both create the same assessment offline.
        let id = new_assessment(&a);
        assert_eq!(new_assessment(&b), id);
        a.set_note(&id, "c01", "from a").unwrap();
        b.set_indicator(&id, "incidents", 5).unwrap();
        b.import_document(&a.export_document(&id).unwrap()).unwrap();
        a.import_document(&b.export_document(&id).unwrap()).unwrap();
        assert_eq!(a.view(&id).unwrap(), b.view(&id).unwrap());
        assert_eq!(a.view(&id).unwrap().criteria[0].note, "from a");
        // A device that never had it gets it whole.
        let dir_c = tempfile::tempdir().unwrap();
        let c = Workspace::open(dir_c.path()).unwrap();
        assert_eq!(
            c.import_document(&a.export_document(&id).unwrap()).unwrap(),
            id
        );
        assert_eq!(c.view(&id).unwrap(), a.view(&id).unwrap());
        assert!(c.import_document(b"garbage").is_err());
        assert_eq!(c.assessments().unwrap().len(), 1);
    }

    #[test]
    fn templates_install_and_unknown_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ws = signed_in(dir.path(), "officer-1");
        let mut custom = sample_templates().remove(1);
        custom.version = 2026;
        let key = ws.install_template(&custom.to_json()).unwrap();
        assert_eq!(ws.templates().len(), 3);
        ws.create_assessment(&sample_unit(), "2026", &key).unwrap();
        let missing = TemplateKey {
            id: "other".into(),
            version: 1,
        };
        assert!(matches!(
            ws.create_assessment(&sample_unit(), "2027", &missing),
            Err(Error::UnknownTemplate(_))
        ));
        assert!(matches!(
            ws.install_template("{\n  \"id\": 3\n}"),
            Err(Error::Template(_))
        ));
    }

    #[test]
    fn sync_states_are_kept_per_peer_and_document() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let id = new_assessment(&ws);
        assert_eq!(ws.sync_state("relay", &id).unwrap(), None);
        ws.save_sync_state("relay", &id, b"state").unwrap();
        assert_eq!(
            ws.sync_state("relay", &id).unwrap().as_deref(),
            Some(&b"state"[..])
        );
    }

    #[test]
    fn workspace_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Workspace>();
    }

    #[test]
    fn a_snapshot_is_stored_only_as_the_document_its_hash_and_id_name() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = signed_in(a_dir.path(), "officer-a");
        let id = new_assessment(&a);
        a.set_note(&id, "c01", "đã kiểm tra").unwrap();
        let snapshot = a.export_document(&id).unwrap();
        let hash = BlobHash::of(&snapshot);
        let other = a
            .create_assessment(&sample_unit(), "2026", &template_2023())
            .unwrap();
        let b = signed_in(b_dir.path(), "officer-b");

        // Not the bytes the hash names: refused, and the pieces kept of them dropped.
        b.keep_fetching_blob(&hash, 0, &snapshot[..100]).unwrap();
        let mut broken = snapshot.clone();
        broken[50] ^= 1;
        assert!(matches!(
            b.import_snapshot("relay", &id, &hash, &broken),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(b.fetching_blob_len(&hash).unwrap(), 0);
        // Another assessment than the one listed: refused.
        assert!(matches!(
            b.import_snapshot("relay", &other, &hash, &snapshot),
            Err(Error::InvalidInput(_))
        ));
        assert!(!b.has_document(&other).unwrap() && !b.has_document(&id).unwrap());

        let changes = b.import_snapshot("relay", &id, &hash, &snapshot).unwrap();
        let history = automerge::Automerge::load(&snapshot)
            .unwrap()
            .get_changes(&[])
            .len();
        assert_eq!(changes, history as u64);
        assert_eq!(b.view(&id).unwrap(), a.view(&id).unwrap());
        // The sync with the relay starts from the snapshot's heads: it has all of them.
        let state = b.sync_state("relay", &id).unwrap().unwrap();
        let state = crate::sync::SyncState::decode(&state).unwrap();
        assert_eq!(state.shared_heads, a.heads(&id).unwrap());
    }
}

//! `GET /v1/sync`: documents sync over a WebSocket speaking the automerge-repo v1
//! protocol, driven by the core's sans-IO [`Session`].
//!
//! The relay is a [`SyncHost`] ([`RelayHost`]) with two rules:
//! - **Scope**: a device reads and writes only documents of the wards in its principal's
//!   scope; anything else is `doc-unavailable`, never data, whether it exists or not. A new
//!   document pushed by a device is accepted only once it reads as an assessment whose
//!   unit is in scope and whose id is the one derived from its unit and period.
//! - **Only reviewers review**: a change from an officer's device that adds an approval or
//!   a return is refused whole (`doc-unavailable`), so a phone cannot approve its own
//!   evidence; supervisors' and admins' devices may.
//! - **Evidence is checked**: each new evidence record's signature is verified against the
//!   keys registered for the officer's devices; the verdict is stored
//!   (`evidence_checks`), and a record that fails stays, flagged.
//! - **Durability before acknowledgement**: incoming changes are appended to the store
//!   (one SQLite transaction, `synchronous=FULL`) before the reply that carries the new
//!   heads is generated. If the write fails, the in-memory copy is dropped (it will be
//!   reloaded from disk) and the connection closes, so nothing unstored is acknowledged.
//!
//! One in-memory copy of each document is shared by all connections ([`DocCache`]), so a
//! device syncing now receives what another device pushed a moment ago; the least
//! recently used ones are dropped beyond its capacity and reloaded from the store. A new
//! document pushed over several connections (a link that keeps dropping) is put together
//! under the pushing device's id. Protocol work and SQLite calls run on the blocking
//! pool, never on the async workers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{Automerge, ChangeHash};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::{Assessment, DocumentId, ReviewScan};
use wardcheck_core::sync::wire::PeerMetadata;
use wardcheck_core::sync::{
    DEFAULT_MESSAGE_BUDGET, HostError, MIN_MESSAGE_BUDGET, SOCKET_READ_BUFFER, Session, SyncHost,
    generate_bounded,
};

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::AppError;
use crate::store::{EvidenceCheck, RelayStore, StoreError, Verdict};

/// The largest frame a device may send.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Compact a document when it is loaded with more chunks than this.
const COMPACT_AFTER_CHUNKS: usize = 64;

/// The sync route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/sync", get(upgrade))
}

/// The default number of documents [`DocCache`] keeps in memory.
pub const DEFAULT_CACHED_DOCUMENTS: usize = 512;

/// One shared in-memory copy per document, loaded from the store on first use and
/// shared by every connection (and the console). Bounded: once more than its capacity
/// are loaded, the least recently used documents that no one is using at that moment are
/// dropped; the next use loads them again from the store, which holds everything they
/// had (a change is stored before the copy that holds it is released).
pub struct DocCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
    /// New documents being pushed, not complete assessments yet, by pusher and id.
    pending: Mutex<HashMap<PendingKey, (Automerge, u64)>>,
}

/// Who pushes a new document (a device id), and which.
type PendingKey = (String, DocumentId);

/// At most this many incomplete pushes are kept; the oldest go first.
const MAX_PENDING_PUSHES: usize = 256;

/// A connection that sends nothing for this long gives its admission back
/// ([`AppState::sync_admission`]); its next frame waits for a place again.
pub const QUIET: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Default)]
struct CacheInner {
    docs: HashMap<DocumentId, (Arc<SharedDoc>, u64)>,
    /// Bumped on every use: the entries' second field orders them by last use.
    clock: u64,
}

/// A document in the cache: its ward and its in-memory copy.
pub struct SharedDoc {
    unit: String,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    doc: Assessment,
    /// How many reviews it holds (an officer's change may not add any).
    reviews: usize,
}

/// Loading or changing a cached document failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// There is no such document.
    #[error("no such document")]
    NotFound,
    /// The document belongs to a ward outside the caller's scope.
    #[error("the document is outside the scope")]
    OutOfScope,
    /// The store failed; an edit that could not be stored is dropped from memory too.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored document does not load as an assessment.
    #[error("the stored document does not load: {0}")]
    Corrupt(String),
    /// The edit itself failed; nothing changed.
    #[error(transparent)]
    Edit(#[from] wardcheck_core::Error),
}

impl SharedDoc {
    fn new(unit: String, doc: Assessment) -> Self {
        let reviews = review_count(&doc);
        Self {
            unit,
            loaded: Mutex::new(Loaded { doc, reviews }),
        }
    }

    /// The ward the document belongs to.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Reads the document (its lock is held meanwhile: keep `f` short).
    pub fn read<T>(&self, f: impl FnOnce(&Assessment) -> T) -> T {
        f(&lock(&self.loaded).doc)
    }
}

impl Default for DocCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHED_DOCUMENTS)
    }
}

impl DocCache {
    /// A cache that keeps about `capacity` documents in memory (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(CacheInner::default()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on the incomplete push under `key` (`None` if there is none; set it to
    /// `None` to drop it). At most [`MAX_PENDING_PUSHES`] are kept, the oldest dropped.
    fn with_pending<T>(&self, key: &PendingKey, f: impl FnOnce(&mut Option<Automerge>) -> T) -> T {
        let mut pending = lock(&self.pending);
        let (mut slot, stamp) = match pending.remove(key) {
            Some((doc, stamp)) => (Some(doc), stamp),
            None => (
                None,
                pending.values().map(|(_, s)| s + 1).max().unwrap_or(0),
            ),
        };
        let out = f(&mut slot);
        if let Some(doc) = slot {
            if pending.len() >= MAX_PENDING_PUSHES {
                let oldest = pending
                    .iter()
                    .min_by_key(|(_, (_, s))| *s)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    pending.remove(&oldest);
                }
            }
            pending.insert(key.clone(), (doc, stamp));
        }
        out
    }

    /// How many documents are in memory now.
    pub fn len(&self) -> usize {
        lock(&self.inner).docs.len()
    }

    /// Whether no document is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The document if it is in memory now.
    pub fn get(&self, id: &DocumentId) -> Option<Arc<SharedDoc>> {
        let mut inner = lock(&self.inner);
        inner.clock += 1;
        let now = inner.clock;
        let (doc, used) = inner.docs.get_mut(id)?;
        *used = now;
        Some(doc.clone())
    }

    /// The document, from memory or loaded from `store`; `None` if there is none. No
    /// scope check: callers check [`SharedDoc::unit`].
    pub fn open(
        &self,
        store: &RelayStore,
        id: &DocumentId,
    ) -> Result<Option<Arc<SharedDoc>>, DocError> {
        if let Some(doc) = self.get(id) {
            return Ok(Some(doc));
        }
        let Some(stored) = store.document(id)? else {
            return Ok(None);
        };
        let corrupt = |e: &dyn std::fmt::Display| DocError::Corrupt(e.to_string());
        let mut doc = Automerge::load(&stored.snapshot).map_err(|e| corrupt(&e))?;
        for chunk in &stored.chunks {
            doc.load_incremental(chunk).map_err(|e| corrupt(&e))?;
        }
        let assessment = Assessment::from_automerge(doc).map_err(|e| corrupt(&e))?;
        if stored.chunks.len() > COMPACT_AFTER_CHUNKS {
            store.replace_snapshot(id, &assessment.save(), stored.last_seq)?;
        }
        Ok(Some(self.insert(*id, stored.unit_id, assessment)))
    }

    /// The document if it exists and belongs to one of `wards`; `Ok(None)` if there is
    /// none; [`DocError::OutOfScope`] if it belongs to another ward. A document not in
    /// memory is looked up before it is loaded, so no one makes the relay load another
    /// ward's documents.
    pub fn open_in(
        &self,
        store: &RelayStore,
        id: &DocumentId,
        wards: &HashSet<String>,
    ) -> Result<Option<Arc<SharedDoc>>, DocError> {
        let shared = match self.get(id) {
            Some(shared) => shared,
            None => match store.document_unit(id)? {
                None => return Ok(None),
                Some(unit) if !wards.contains(&unit) => return Err(DocError::OutOfScope),
                Some(_) => match self.open(store, id)? {
                    Some(shared) => shared,
                    None => return Ok(None),
                },
            },
        };
        if wards.contains(shared.unit()) {
            Ok(Some(shared))
        } else {
            Err(DocError::OutOfScope)
        }
    }

    /// Edits a stored document as the relay (the console's reviews): `f` changes the
    /// shared copy, and what it changed is stored before this returns. Connections see
    /// it in their next sync message. If storing fails, the copy is dropped from memory
    /// (the next use reloads what is stored) and the error returned.
    pub fn edit<T>(
        &self,
        store: &RelayStore,
        id: &DocumentId,
        f: impl FnOnce(&mut Assessment) -> wardcheck_core::Result<T>,
    ) -> Result<T, DocError> {
        let shared = self.open(store, id)?.ok_or(DocError::NotFound)?;
        let mut loaded = lock(&shared.loaded);
        let before = loaded.doc.heads();
        let mut copy = loaded.doc.clone();
        let out = f(&mut copy)?;
        if copy.heads() != before {
            let scan = copy.review_scan()?;
            let chunk = copy.save_after(&before);
            if let Err(e) = store.append_chunk(id, &chunk, &copy.heads_key(), &blob_refs(&scan)) {
                drop(loaded);
                self.forget(id);
                return Err(e.into());
            }
            loaded.reviews = scan.reviews;
            loaded.doc = copy;
        }
        Ok(out)
    }

    /// Adds a loaded document (if another thread loaded it meanwhile, that copy wins), then
    /// drops the least recently used unused documents beyond the capacity.
    fn insert(&self, id: DocumentId, unit: String, doc: Assessment) -> Arc<SharedDoc> {
        let mut inner = lock(&self.inner);
        inner.clock += 1;
        let now = inner.clock;
        let shared = inner
            .docs
            .entry(id)
            .or_insert_with(|| (Arc::new(SharedDoc::new(unit, doc)), now))
            .0
            .clone();
        if inner.docs.len() > self.capacity {
            // In use: held by a connection (or by the caller, `shared`).
            let mut idle: Vec<(u64, DocumentId)> = inner
                .docs
                .iter()
                .filter(|(_, (doc, _))| Arc::strong_count(doc) == 1)
                .map(|(id, (_, used))| (*used, *id))
                .collect();
            idle.sort_unstable();
            let excess = inner.docs.len() - self.capacity;
            for (_, id) in idle.into_iter().take(excess) {
                inner.docs.remove(&id);
            }
        }
        shared
    }

    fn forget(&self, id: &DocumentId) {
        lock(&self.inner).docs.remove(id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The sync route's query (`token` is the auth layer's).
#[derive(Debug, Deserialize)]
struct SyncParams {
    /// The largest sync message the device wants, in bytes of changes as sent: a phone on
    /// a link that keeps dropping asks for smaller ones. Clamped to
    /// [`MIN_MESSAGE_BUDGET`]..=[`DEFAULT_MESSAGE_BUDGET`].
    budget: Option<usize>,
}

async fn upgrade(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<SyncParams>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let budget = params
        .budget
        .unwrap_or(DEFAULT_MESSAGE_BUDGET)
        .clamp(MIN_MESSAGE_BUDGET, DEFAULT_MESSAGE_BUDGET);
    let scope_of = principal.clone();
    let wards = state
        .db(move |store| store.wards_in_scope(&scope_of))
        .await?;
    Ok(ws
        .read_buffer_size(SOCKET_READ_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(socket, state, principal, wards, budget)))
}

async fn serve(
    mut socket: WebSocket,
    state: AppState,
    principal: Principal,
    wards: Vec<String>,
    budget: usize,
) {
    let revoked_device = principal
        .device_id
        .as_deref()
        .map(|d| state.revocations.revoked(d));
    let revoked = async move {
        match revoked_device {
            Some(revoked) => revoked.await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(revoked);
    let shutdown = state.shutdown.wait();
    tokio::pin!(shutdown);
    let metadata = PeerMetadata {
        storage_id: Some(state.relay_id.clone()),
        is_ephemeral: false,
    };
    let mut worker = Some((
        Session::accept(state.relay_id.clone(), metadata),
        RelayHost::new(
            state.store.clone(),
            state.docs.clone(),
            wards,
            principal.role != Role::Officer,
            principal
                .device_id
                .clone()
                .unwrap_or_else(|| principal.user_id.clone()),
            budget,
        ),
    ));
    let mut admitted = None;
    loop {
        let holding_place = admitted.is_some();
        let quiet = async move {
            if holding_place {
                tokio::time::sleep(QUIET).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let frame = tokio::select! {
            () = &mut revoked => {
                tracing::info!("closing the connection of a revoked device");
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            _ = &mut shutdown => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            () = quiet => {
                admitted = None;
                continue;
            }
            frame = socket.recv() => frame,
        };
        let frame = match frame {
            Some(Ok(Message::Binary(frame))) => frame,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => continue, // text, ping, pong
        };
        if admitted.is_none() {
            // First come, first served: the semaphore queues its waiters in order.
            admitted = tokio::select! {
                () = &mut revoked => return,
                _ = &mut shutdown => return,
                permit = state.sync_admission.clone().acquire_owned() => match permit {
                    Ok(permit) => Some(permit),
                    Err(_) => return,
                },
            };
        }
        let Some((mut session, mut host)) = worker.take() else {
            return;
        };
        // The permit covers the work only, not sending the answer to a slow phone.
        let Ok(permit) = state.sync_workers.acquire().await else {
            return;
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = session.receive(&frame, &mut host);
            let outgoing = session.take_outgoing();
            (session, host, result, outgoing)
        })
        .await;
        drop(permit);
        let Ok((session, host, result, outgoing)) = joined else {
            return;
        };
        for out in outgoing {
            if socket.send(Message::Binary(out.into())).await.is_err() {
                return;
            }
        }
        if let Err(e) = result {
            tracing::info!("ending a sync connection: {e}");
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        worker = Some((session, host));
    }
}

/// The relay's documents, as one connection may see them.
pub struct RelayHost {
    store: Arc<RelayStore>,
    docs: Arc<DocCache>,
    wards: HashSet<String>,
    /// Whether this principal may add reviews.
    may_review: bool,
    /// Who pushes new documents through this connection (the device, or the user).
    pusher: String,
    /// The size of the messages the peer wants, bytes of changes as sent.
    budget: usize,
}

impl RelayHost {
    /// A host for a principal whose scope is `wards`, and who may add reviews or not.
    /// `pusher` names who pushes through it (a device id): a new document pushed in
    /// parts over several connections is put together under that name. `budget` is the
    /// size of the messages it sends (see [`generate_bounded`]).
    pub fn new(
        store: Arc<RelayStore>,
        docs: Arc<DocCache>,
        wards: Vec<String>,
        may_review: bool,
        pusher: String,
        budget: usize,
    ) -> Self {
        Self {
            store,
            docs,
            wards: wards.into_iter().collect(),
            may_review,
            pusher,
            budget,
        }
    }

    /// The stored document if it exists and is in scope; `Ok(None)` if it does not exist;
    /// `Unavailable` if it exists outside the scope.
    fn open(&self, id: &DocumentId) -> Result<Option<Arc<SharedDoc>>, HostError> {
        match self.docs.open_in(&self.store, id, &self.wards) {
            Err(DocError::OutOfScope) => Err(HostError::Unavailable),
            other => other.map_err(failed),
        }
    }
}

impl RelayHost {
    /// Merges a pushed copy of a document into the stored one (already checked: in
    /// scope, and without reviews from a device that may not add them), storing what it
    /// adds.
    fn merge_into_stored(&self, id: &DocumentId, pushed: &Assessment) -> Result<(), HostError> {
        let stored = self.open(id)?.ok_or(HostError::Unavailable)?;
        let mut loaded = lock(&stored.loaded);
        let before = loaded.doc.heads();
        let mut merged = loaded.doc.clone();
        merged.merge(pushed).map_err(|_| HostError::Unavailable)?;
        if merged.heads() == before {
            return Ok(());
        }
        let scan = merged.review_scan().map_err(|_| HostError::Unavailable)?;
        if !self.may_review && scan.reviews > loaded.reviews {
            return Err(HostError::Unavailable);
        }
        let chunk = merged.save_after(&before);
        self.store
            .append_chunk(id, &chunk, &merged.heads_key(), &blob_refs(&scan))
            .map_err(failed)?;
        loaded.reviews = scan.reviews;
        loaded.doc = merged;
        drop(loaded);
        self.check_evidence(id, &scan)
    }

    /// Checks the signature of every evidence record not checked yet against the keys
    /// registered for the officer's devices, and records the verdicts. A record that fails
    /// stays in the document, flagged, never silently trusted.
    fn check_evidence(&self, id: &DocumentId, scan: &ReviewScan) -> Result<(), HostError> {
        if scan.evidence.is_empty() {
            return Ok(());
        }
        let checked: HashSet<(String, BlobHash)> = self
            .store
            .evidence_checks(id)
            .map_err(failed)?
            .into_iter()
            .map(|check| (check.criterion, check.photo))
            .collect();
        let mut checks = Vec::new();
        for (name, evidence) in &scan.evidence {
            if !checked.contains(&(name.clone(), evidence.photo)) {
                let verdict = if evidence.verify(&evidence.device_key, None).is_err() {
                    Verdict::BadSignature
                } else if self
                    .store
                    .key_belongs_to(&evidence.device_key.to_string(), &evidence.officer)
                    .map_err(failed)?
                {
                    Verdict::Verified
                } else {
                    Verdict::UnknownDevice
                };
                if verdict != Verdict::Verified {
                    tracing::warn!("an evidence record failed its signature check: {verdict:?}");
                }
                checks.push(EvidenceCheck {
                    criterion: name.clone(),
                    photo: evidence.photo,
                    verdict,
                });
            }
        }
        if !checks.is_empty() {
            self.store
                .record_evidence_checks(id, &checks)
                .map_err(failed)?;
        }
        Ok(())
    }
}

fn failed(e: impl std::fmt::Display) -> HostError {
    HostError::Failed(e.to_string())
}

/// How many reviews (approvals and returns) the assessment holds.
fn review_count(doc: &Assessment) -> usize {
    doc.review_scan().map(|scan| scan.reviews).unwrap_or(0)
}

/// Every blob an assessment references (photos and thumbnails).
fn blob_refs(scan: &ReviewScan) -> Vec<BlobHash> {
    scan.evidence
        .iter()
        .flat_map(|(_, e)| [e.photo, e.thumbnail])
        .collect()
}

impl SyncHost for RelayHost {
    fn has(&mut self, doc: &DocumentId) -> bool {
        matches!(self.open(doc), Ok(Some(_)))
    }

    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        let key = (self.pusher.clone(), *doc);
        if let Some(heads) = self
            .docs
            .with_pending(&key, |p| p.as_ref().map(Automerge::get_heads))
        {
            return Some(heads);
        }
        let doc = self.open(doc).ok()??;
        Some(doc.read(Assessment::heads))
    }

    fn generate(
        &mut self,
        doc: &DocumentId,
        state: &mut SyncState,
    ) -> Result<Vec<SyncMessage>, HostError> {
        let key = (self.pusher.clone(), *doc);
        let pending = self.docs.with_pending(&key, |p| {
            p.as_ref()
                .map(|pending| generate_bounded(pending, state, self.budget))
        });
        if let Some(messages) = pending {
            return Ok(messages);
        }
        match self.open(doc)? {
            Some(stored) => Ok(stored.read(|doc| doc.generate_sync_messages(state, self.budget))),
            None => Err(HostError::Unavailable),
        }
    }

    fn receive(
        &mut self,
        id: &DocumentId,
        state: &mut SyncState,
        message: SyncMessage,
    ) -> Result<(), HostError> {
        if let Some(stored) = self.open(id)? {
            let mut loaded = lock(&stored.loaded);
            let before = loaded.doc.heads();
            let (may_review, reviews) = (self.may_review, loaded.reviews);
            // Checked on the copy the message is applied to: no other connection may ever
            // see a refused change. One scan of the result serves the checks below.
            let mut scanned = None;
            let taken = loaded
                .doc
                .receive_sync_message_if(state, message, |candidate| {
                    if candidate.heads() == before {
                        return true;
                    }
                    let Ok(scan) = candidate.review_scan() else {
                        return false;
                    };
                    let allowed = may_review || scan.reviews <= reviews;
                    scanned = Some(scan);
                    allowed
                });
            // Refused, not an assessment any more, or not Automerge: keep ours.
            if !matches!(taken, Ok(true)) {
                return Err(HostError::Unavailable);
            }
            if let Some(scan) = scanned {
                let chunk = loaded.doc.save_after(&before);
                let heads = loaded.doc.heads_key();
                if let Err(e) = self
                    .store
                    .append_chunk(id, &chunk, &heads, &blob_refs(&scan))
                {
                    drop(loaded);
                    self.docs.forget(id);
                    return Err(failed(e));
                }
                loaded.reviews = scan.reviews;
                drop(loaded);
                self.check_evidence(id, &scan)?;
            }
            return Ok(());
        }
        // A document the relay does not have: only a peer that has it can push it. What
        // arrived is kept across connections until it reads as an assessment.
        let key = (self.pusher.clone(), *id);
        let complete = self.docs.with_pending(&key, |pending| {
            if pending.is_none() && message.heads.is_empty() {
                return Err(HostError::Unavailable);
            }
            let doc = pending.get_or_insert_with(Automerge::new);
            if doc.receive_sync_message(state, message).is_err() {
                *pending = None;
                return Err(HostError::Unavailable);
            }
            match Assessment::from_automerge(doc.clone()) {
                Ok(assessment) => {
                    *pending = None;
                    Ok(Some(assessment))
                }
                Err(_) => Ok(None), // not complete yet
            }
        })?;
        let Some(assessment) = complete else {
            return Ok(());
        };
        let view = assessment.view().map_err(|_| HostError::Unavailable)?;
        let scan = assessment
            .review_scan()
            .map_err(|_| HostError::Unavailable)?;
        if view.id != *id
            || !self.wards.contains(&view.unit.id)
            || (!self.may_review && scan.reviews > 0)
        {
            return Err(HostError::Unavailable);
        }
        let inserted = self.store.insert_document(
            id,
            &view.unit.id,
            &assessment.save(),
            &assessment.heads_key(),
            &blob_refs(&scan),
        );
        match inserted {
            Ok(()) => {
                self.check_evidence(id, &scan)?;
                self.docs.insert(*id, view.unit.id, assessment);
                Ok(())
            }
            // Another device pushed the same new assessment meanwhile (created offline on
            // both, the same first change): merge this one into it.
            Err(StoreError::Duplicate(_)) => self.merge_into_stored(id, &assessment),
            Err(e) => Err(failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wardcheck_core::model::{Action, Author, Unit, sample_templates};

    use super::*;
    use crate::store::accounts::tests::seed;
    use crate::store::tests::temp_store;

    /// Stores a new assessment of `ward` (a seeded ward) and returns its id.
    fn stored(store: &RelayStore, ward: &str) -> DocumentId {
        let unit = Unit {
            id: ward.into(),
            name: format!("Ward {ward}"),
            city: "Kon Tum".into(),
            province: "Kon Tum".into(),
        };
        let template = Arc::new(sample_templates().remove(1));
        let doc = Assessment::create(&unit, "2025", template).unwrap();
        let id = doc.id().unwrap();
        store
            .insert_document(&id, ward, &doc.save(), &doc.heads_key(), &[])
            .unwrap();
        id
    }

    /// A seeded store with one assessment of ward ngo-may, and a cache in front of it.
    fn one_ward() -> (
        tempfile::TempDir,
        Arc<RelayStore>,
        DocumentId,
        Arc<DocCache>,
    ) {
        let (dir, store) = temp_store();
        seed(&store);
        let id = stored(&store, "ngo-may");
        (dir, Arc::new(store), id, Arc::new(DocCache::new(4)))
    }

    /// A connection's host for a device of ward ngo-may.
    fn officer_host(store: &Arc<RelayStore>, docs: &Arc<DocCache>, may_review: bool) -> RelayHost {
        let wards = vec!["ngo-may".to_owned()];
        RelayHost::new(
            store.clone(),
            docs.clone(),
            wards,
            may_review,
            "d".into(),
            4096,
        )
    }

    fn note(doc: &SharedDoc) -> String {
        doc.read(|d| d.view().unwrap().criteria[0].note.clone())
    }

    #[test]
    fn an_evicted_document_reloads_from_the_store_with_every_edit() {
        let (_dir, store) = temp_store();
        seed(&store);
        let (a, b) = (stored(&store, "ngo-may"), stored(&store, "tran-hung-dao"));
        let cache = DocCache::new(1);
        let by = Author::new("sup-city", "console");
        let first = cache.get(&a).is_none();
        cache
            .edit(&store, &a, |doc| doc.set_note("c01", "kept", &by, 1))
            .unwrap();
        let heads = cache.get(&a).unwrap().read(Assessment::heads);
        assert!(first);
        // Another document loads: `a`, which no one uses, is dropped.
        cache.open(&store, &b).unwrap().unwrap();
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&a).is_none());
        let reloaded = cache.open(&store, &a).unwrap().unwrap();
        assert_eq!(reloaded.read(Assessment::heads), heads);
        assert_eq!(note(&reloaded), "kept");
        assert!(cache.get(&b).is_none());
    }

    #[test]
    fn the_same_new_assessment_pushed_twice_at_once_is_merged() {
        let (_dir, store, id, docs) = one_ward();
        let host = |may_review| officer_host(&store, &docs, may_review);
        // Another device created the same assessment offline (the same first changes)
        // and pushed it while the first push was being stored.
        let unit = Unit {
            id: "ngo-may".into(),
            name: "Ward ngo-may".into(),
            city: "Kon Tum".into(),
            province: "Kon Tum".into(),
        };
        let mut pushed =
            Assessment::create(&unit, "2025", Arc::new(sample_templates().remove(1))).unwrap();
        let officer = Author::new("officer-a", "phone");
        pushed
            .set_note("c01", "from the second phone", &officer, 1)
            .unwrap();
        host(false).merge_into_stored(&id, &pushed).unwrap();
        // Stored, not only in memory: it survives eviction.
        docs.forget(&id);
        let reloaded = docs.open(&store, &id).unwrap().unwrap();
        assert_eq!(note(&reloaded), "from the second phone");
        // An officer's copy carrying a review is refused whole; a reviewer's is taken.
        pushed
            .step("c01", Action::Submit, None, &officer, 2)
            .unwrap();
        pushed
            .step("c01", Action::Approve, None, &officer, 3)
            .unwrap();
        assert_eq!(
            host(false).merge_into_stored(&id, &pushed),
            Err(HostError::Unavailable)
        );
        assert_eq!(
            docs.open(&store, &id).unwrap().unwrap().read(review_count),
            0
        );
        host(true).merge_into_stored(&id, &pushed).unwrap();
        assert_eq!(
            docs.open(&store, &id).unwrap().unwrap().read(review_count),
            1
        );
    }

    /// Syncs `phone` with the relay through `host` until neither has anything to send.
    fn push(
        phone: &mut Assessment,
        host: &mut RelayHost,
        id: &DocumentId,
    ) -> Result<(), HostError> {
        let (mut ours, mut theirs) = (SyncState::new(), SyncState::new());
        for _ in 0..8 {
            let messages = phone.generate_sync_messages(&mut ours, DEFAULT_MESSAGE_BUDGET);
            if messages.is_empty() {
                return Ok(());
            }
            for message in messages {
                host.receive(id, &mut theirs, message)?;
            }
            for reply in host.generate(id, &mut theirs)? {
                phone.receive_sync_message(&mut ours, reply).unwrap();
            }
        }
        panic!("the sync did not settle");
    }

    #[test]
    fn an_officers_sync_message_adding_a_return_is_refused_whole() {
        let (_dir, store, id, docs) = one_ward();
        let host = |may_review| officer_host(&store, &docs, may_review);
        let mut phone = docs
            .open(&store, &id)
            .unwrap()
            .unwrap()
            .read(|doc| Assessment::load(&doc.save()).unwrap());
        let officer = Author::new("officer-a", "phone");
        phone.set_note("c01", "with a return", &officer, 1).unwrap();
        phone.step("c01", Action::Start, None, &officer, 2).unwrap();
        phone
            .step("c01", Action::Submit, None, &officer, 3)
            .unwrap();
        phone
            .step("c01", Action::Return, Some("self-review"), &officer, 4)
            .unwrap();
        assert_eq!(
            push(&mut phone.clone(), &mut host(false), &id),
            Err(HostError::Unavailable)
        );
        // Nothing of the message is in the shared copy or the store.
        let shared = docs.open(&store, &id).unwrap().unwrap();
        assert_eq!(
            (shared.read(review_count), note(&shared)),
            (0, String::new())
        );
        docs.forget(&id);
        let reloaded = docs.open(&store, &id).unwrap().unwrap();
        assert_eq!(
            (reloaded.read(review_count), note(&reloaded)),
            (0, String::new())
        );
        // A reviewer's device may.
        push(&mut phone, &mut host(true), &id).unwrap();
        let shared = docs.open(&store, &id).unwrap().unwrap();
        assert_eq!(shared.read(review_count), 1);
        assert_eq!(note(&shared), "with a return");
    }

    #[test]
    fn a_document_in_use_stays_and_edits_reach_its_users() {
        let (_dir, store) = temp_store();
        seed(&store);
        let ids = [
            stored(&store, "ngo-may"),
            stored(&store, "tran-hung-dao"),
            stored(&store, "an-hung"),
        ];
        let cache = DocCache::new(1);
        let held = cache.open(&store, &ids[0]).unwrap().unwrap();
        cache.open(&store, &ids[1]).unwrap().unwrap();
        cache.open(&store, &ids[2]).unwrap().unwrap();
        // The held one stays (one copy for everyone); the idle ones go.
        assert_eq!(cache.len(), 2);
        assert!(Arc::ptr_eq(&cache.get(&ids[0]).unwrap(), &held));
        let by = Author::new("sup-city", "console");
        cache
            .edit(&store, &ids[0], |doc| doc.set_note("c01", "seen", &by, 1))
            .unwrap();
        assert_eq!(note(&held), "seen");
        assert!(matches!(
            cache.edit(
                &store,
                &DocumentId::for_assessment("nowhere", "2025"),
                |_| Ok(())
            ),
            Err(DocError::NotFound)
        ));
    }
}

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
//! device syncing now receives what another device pushed a moment ago. Protocol work and
//! SQLite calls run on the blocking pool, never on the async workers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{Automerge, ChangeHash};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::routing::get;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::{Assessment, AssessmentView, DocumentId};
use wardcheck_core::sync::wire::PeerMetadata;
use wardcheck_core::sync::{
    DEFAULT_MESSAGE_BUDGET, HostError, Session, SyncHost, generate_bounded,
};

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::AppError;
use crate::store::{EvidenceCheck, RelayStore, Verdict};

/// The largest frame a device may send.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Compact a document when it is loaded with more chunks than this.
const COMPACT_AFTER_CHUNKS: usize = 64;

/// The sync route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/sync", get(upgrade))
}

/// One shared in-memory copy per document, loaded on first use.
#[derive(Default)]
pub struct DocCache {
    docs: Mutex<HashMap<DocumentId, Arc<Mutex<Assessment>>>>,
}

impl DocCache {
    fn get(&self, id: &DocumentId) -> Option<Arc<Mutex<Assessment>>> {
        lock(&self.docs).get(id).cloned()
    }

    fn insert(&self, id: DocumentId, doc: Assessment) -> Arc<Mutex<Assessment>> {
        lock(&self.docs)
            .entry(id)
            .or_insert_with(|| Arc::new(Mutex::new(doc)))
            .clone()
    }

    fn forget(&self, id: &DocumentId) {
        lock(&self.docs).remove(id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn upgrade(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let scope_of = principal.clone();
    let wards = state
        .db(move |store| store.wards_in_scope(&scope_of))
        .await?;
    Ok(ws
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(socket, state, principal, wards)))
}

async fn serve(mut socket: WebSocket, state: AppState, principal: Principal, wards: Vec<String>) {
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
        ),
    ));
    loop {
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
            frame = socket.recv() => frame,
        };
        let frame = match frame {
            Some(Ok(Message::Binary(frame))) => frame,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => continue, // text, ping, pong
        };
        let Some((mut session, mut host)) = worker.take() else {
            return;
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = session.receive(&frame, &mut host);
            let outgoing = session.take_outgoing();
            (session, host, result, outgoing)
        })
        .await;
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
    /// Documents a device is pushing that are not complete assessments yet.
    pending: HashMap<DocumentId, Automerge>,
}

impl RelayHost {
    /// A host for a principal whose scope is `wards`, and who may add reviews or not.
    pub fn new(
        store: Arc<RelayStore>,
        docs: Arc<DocCache>,
        wards: Vec<String>,
        may_review: bool,
    ) -> Self {
        Self {
            store,
            docs,
            wards: wards.into_iter().collect(),
            may_review,
            pending: HashMap::new(),
        }
    }

    /// The stored document if it exists and is in scope; `Ok(None)` if it does not exist;
    /// `Unavailable` if it exists outside the scope.
    pub(crate) fn open(
        &self,
        id: &DocumentId,
    ) -> Result<Option<Arc<Mutex<Assessment>>>, HostError> {
        let unit = self.store.document_unit(id).map_err(failed)?;
        match unit {
            None => Ok(None),
            Some(unit) if !self.wards.contains(&unit) => Err(HostError::Unavailable),
            Some(_) => {
                if let Some(doc) = self.docs.get(id) {
                    return Ok(Some(doc));
                }
                let Some(stored) = self.store.document(id).map_err(failed)? else {
                    return Ok(None);
                };
                let mut doc = Automerge::load(&stored.snapshot).map_err(failed)?;
                for chunk in &stored.chunks {
                    doc.load_incremental(chunk).map_err(failed)?;
                }
                let assessment = Assessment::from_automerge(doc).map_err(failed)?;
                if stored.chunks.len() > COMPACT_AFTER_CHUNKS {
                    self.store
                        .replace_snapshot(id, &assessment.save(), stored.last_seq)
                        .map_err(failed)?;
                }
                Ok(Some(self.docs.insert(*id, assessment)))
            }
        }
    }
}

impl RelayHost {
    /// Checks the signature of every evidence record not checked yet against the keys
    /// registered for the officer's devices, and records the verdicts. A record that fails
    /// stays in the document, flagged, never silently trusted.
    fn check_evidence(&self, id: &DocumentId, view: &AssessmentView) -> Result<(), HostError> {
        let checked: HashSet<(String, BlobHash)> = self
            .store
            .evidence_checks(id)
            .map_err(failed)?
            .into_iter()
            .map(|check| (check.criterion, check.photo))
            .collect();
        let mut checks = Vec::new();
        for criterion in &view.criteria {
            let name = &criterion.criterion.id;
            for evidence in &criterion.evidence {
                if checked.contains(&(name.clone(), evidence.photo)) {
                    continue;
                }
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
    doc.view()
        .map(|view| {
            view.criteria
                .iter()
                .flat_map(|c| &c.log)
                .filter(|t| t.action.is_review())
                .count()
        })
        .unwrap_or(0)
}

/// Every blob an assessment references (photos and thumbnails).
fn blob_refs(view: &AssessmentView) -> Vec<BlobHash> {
    view.criteria
        .iter()
        .flat_map(|c| &c.evidence)
        .flat_map(|e| [e.photo, e.thumbnail])
        .collect()
}

impl SyncHost for RelayHost {
    fn has(&mut self, doc: &DocumentId) -> bool {
        matches!(self.open(doc), Ok(Some(_)))
    }

    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        if let Some(pending) = self.pending.get(doc) {
            return Some(pending.get_heads());
        }
        let doc = self.open(doc).ok()??;
        Some(lock(&doc).heads())
    }

    fn generate(
        &mut self,
        doc: &DocumentId,
        state: &mut SyncState,
    ) -> Result<Vec<SyncMessage>, HostError> {
        if let Some(pending) = self.pending.get(doc) {
            return Ok(generate_bounded(pending, state, DEFAULT_MESSAGE_BUDGET));
        }
        match self.open(doc)? {
            Some(stored) => Ok(lock(&stored).generate_sync_messages(state)),
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
            let mut doc = lock(&stored);
            let before = doc.heads();
            if !self.may_review && !message.changes.is_empty() {
                // Check on a copy first: no other connection may ever see a refused change.
                let mut candidate = doc.clone();
                let mut candidate_state = state.clone();
                if candidate
                    .receive_sync_message(&mut candidate_state, message)
                    .is_err()
                    || review_count(&candidate) > review_count(&doc)
                {
                    return Err(HostError::Unavailable);
                }
                *doc = candidate;
                *state = candidate_state;
            } else if doc.receive_sync_message(state, message).is_err() {
                // Not an assessment any more, or not Automerge: refuse, keep ours.
                return Err(HostError::Unavailable);
            }
            if doc.heads() != before {
                let chunk = doc.save_after(&before);
                let view = doc.view().map_err(failed)?;
                let stored_ok =
                    self.store
                        .append_chunk(id, &chunk, &doc.heads_key(), &blob_refs(&view));
                if let Err(e) = stored_ok {
                    drop(doc);
                    self.docs.forget(id);
                    return Err(failed(e));
                }
                self.check_evidence(id, &view)?;
            }
            return Ok(());
        }
        // A document the relay does not have: only a peer that has it can push it.
        if !self.pending.contains_key(id) && message.heads.is_empty() {
            return Err(HostError::Unavailable);
        }
        let pending = self.pending.entry(*id).or_default();
        pending
            .receive_sync_message(state, message)
            .map_err(|_| HostError::Unavailable)?;
        let Ok(assessment) = Assessment::from_automerge(pending.clone()) else {
            return Ok(()); // not complete yet
        };
        self.pending.remove(id);
        let view = assessment.view().map_err(|_| HostError::Unavailable)?;
        if view.id != *id
            || !self.wards.contains(&view.unit.id)
            || (!self.may_review && review_count(&assessment) > 0)
        {
            return Err(HostError::Unavailable);
        }
        self.store
            .insert_document(
                id,
                &view.unit.id,
                &assessment.save(),
                &assessment.heads_key(),
                &blob_refs(&view),
            )
            .map_err(failed)?;
        self.check_evidence(id, &view)?;
        self.docs.insert(*id, assessment);
        Ok(())
    }
}

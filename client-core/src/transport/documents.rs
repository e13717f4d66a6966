//! The documents' part of a sync: [`Session`]s over WebSocket connections, for every
//! assessment the phone has and every one of its scope it lacks (the relay lists them on
//! the connection itself, or says its listing is the one the phone holds).
//!
//! What a connection moved is never moved again: the changes are stored as they arrive
//! (documents being fetched included, see [`WorkspaceHost`]), the sync states are saved
//! when a connection ends however it ends, and so is the message budget the link
//! carried, so the next attempt, `sync` call or start of the app resumes from them.

use std::collections::BTreeSet;
use std::time::Instant;

use tungstenite::Message;

use super::snapshots::synced_by_session;
use super::socket::{self, Socket};
use super::{
    FetchingDocument, Phase, RefusedDocument, Relay, SyncObserver, SyncProgress, TransportError,
};
use crate::doc::DocumentId;
use crate::sync::listing::Listing;
use crate::sync::wire::PeerMetadata;
use crate::sync::{
    DEFAULT_MESSAGE_BUDGET, DocStatus, MIN_MESSAGE_BUDGET, Session, SessionError, SyncState,
    WorkspaceHost,
};
use crate::{HeldListing, Workspace};

/// Syncs the documents, retrying as `relay` says. The message budget starts from the one
/// the link carried last; each sync connection that drops once open halves it (down to
/// [`MIN_MESSAGE_BUDGET`]), for this device's messages and the relay's; an exchange that
/// goes through without a drop doubles it for the next time (up to
/// [`DEFAULT_MESSAGE_BUDGET`]), so a link that got better gets big messages again.
pub(super) fn exchange(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    host: &mut WorkspaceHost<'_>,
) -> Result<Exchanged, TransportError> {
    let mut budget = workspace
        .message_budget(&relay.base)?
        .unwrap_or(DEFAULT_MESSAGE_BUDGET)
        .clamp(MIN_MESSAGE_BUDGET, DEFAULT_MESSAGE_BUDGET);
    let mut dropped = false;
    let exchanged = relay.retry(observer, || {
        host.set_budget(budget);
        let mut opened = false;
        let result = sync_documents(workspace, relay, observer, host, &mut opened);
        if opened && matches!(&result, Err(e) if e.is_transient()) {
            // The link dropped in the middle: smaller messages next time, both ways.
            budget = (budget / 2).max(MIN_MESSAGE_BUDGET);
            dropped = true;
            workspace.save_message_budget(&relay.base, budget)?;
        }
        result
    })?;
    if !dropped && budget < DEFAULT_MESSAGE_BUDGET {
        workspace.save_message_budget(&relay.base, (budget * 2).min(DEFAULT_MESSAGE_BUDGET))?;
    }
    Ok(exchanged)
}

/// Syncs the phone's documents and those the relay lists; `opened` tells whether a sync
/// connection opened.
fn sync_documents(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    host: &mut WorkspaceHost<'_>,
    opened: &mut bool,
) -> Result<Exchanged, TransportError> {
    let expected = workspace.relay_peer_id(&relay.base)?;
    match sync_session(workspace, relay, observer, host, expected.clone(), opened) {
        // Another relay answers at this address: once more, waiting for its `peer`.
        Err(TransportError::Protocol(SessionError::PeerChanged)) if expected.is_some() => {
            sync_session(workspace, relay, observer, host, None, opened)
        }
        other => other,
    }
}

/// One connection's sync of the phone's documents and of those the relay lists (the
/// listing it holds from before, then the one the relay sends first on the connection).
/// With the relay's `expected` peer id (from the last sync), the documents' first
/// messages go right behind `join`: one round trip less.
fn sync_session(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    host: &mut WorkspaceHost<'_>,
    expected: Option<String>,
    opened: &mut bool,
) -> Result<Exchanged, TransportError> {
    let held = workspace.relay_listing(&relay.base)?;
    let tag = held.as_ref().map_or("", |held| held.tag.as_str());
    let mut socket = socket::connect(relay, host.budget(), tag, observer)?;
    *opened = true;
    let metadata = PeerMetadata {
        storage_id: Some(workspace.device_id().to_owned()),
        is_ephemeral: false,
    };
    let mut session = Session::initiate(workspace.device_id(), metadata);
    if let Some(peer) = &expected {
        session.expect_peer(peer);
    }
    let here: BTreeSet<DocumentId> = workspace.document_ids()?.into_iter().collect();
    let refused = workspace.refused_contents(&relay.base)?;
    let listed = (held.iter()).flat_map(|held| synced_by_session(&held.documents, &here, &refused));
    let ids: BTreeSet<DocumentId> = here.iter().copied().chain(listed).collect();
    let mut talk = Talk {
        workspace,
        relay,
        observer,
        session,
        ids: BTreeSet::new(),
        listed: false,
    };
    talk.add(&ids, host)?;
    let outcome = talk.converse(&mut socket, held, host);
    // What arrived is stored: keep the states it left and the relay's id, however the
    // connection ended, so the next one starts from them.
    let Talk { session, ids, .. } = talk;
    for (id, state) in session.states() {
        workspace.save_sync_state(&relay.base, id, &state.encode())?;
    }
    if let Some(peer) = session
        .peer_id()
        .filter(|peer| expected.as_deref() != Some(*peer))
    {
        workspace.save_relay_peer_id(&relay.base, peer)?;
    }
    outcome?;
    let _ = socket.close(None);
    let _ = socket.flush();
    let mut exchanged = Exchanged::default();
    for id in &ids {
        match session.status(id) {
            Some(DocStatus::Unavailable) => exchanged.unavailable.push(*id),
            Some(DocStatus::Refused) => exchanged.refused.push(RefusedDocument {
                document: *id,
                reason: session.refusal(id).unwrap_or_default().to_owned(),
            }),
            _ => exchanged.in_sync += 1,
        }
    }
    Ok(exchanged)
}

/// One connection's conversation: the session and the documents it syncs.
struct Talk<'a> {
    workspace: &'a Workspace,
    relay: &'a Relay,
    observer: &'a dyn SyncObserver,
    session: Session,
    ids: BTreeSet<DocumentId>,
    /// Whether the relay's listing has come on this connection.
    listed: bool,
}

impl Talk<'_> {
    /// Starts syncing the documents of `ids` not synced yet, from their saved states.
    fn add(
        &mut self,
        ids: &BTreeSet<DocumentId>,
        host: &mut WorkspaceHost<'_>,
    ) -> Result<(), TransportError> {
        for id in ids {
            if self.ids.contains(id) {
                continue;
            }
            let state = (self.workspace.sync_state(&self.relay.base, id)?)
                .and_then(|bytes| SyncState::decode(&bytes).ok())
                .unwrap_or_default();
            self.session.add_document(*id, state, host)?;
            self.ids.insert(*id);
        }
        Ok(())
    }

    /// Takes the relay's listing (the documents it sent, or the `held` ones when the tag
    /// says they are the same): keeps it, drops what was kept of documents it no longer
    /// names, and syncs the ones it names that this connection does not sync yet (but
    /// those to download as snapshots, see [`super::snapshots`]).
    fn take_listing(
        &mut self,
        listing: Listing,
        held: Option<&HeldListing>,
        host: &mut WorkspaceHost<'_>,
    ) -> Result<(), TransportError> {
        let documents = match (listing.documents, held) {
            (Some(documents), _) => {
                let listing = HeldListing {
                    tag: listing.tag,
                    documents,
                    sets: listing.sets,
                };
                self.workspace
                    .save_relay_listing(&self.relay.base, Some(&listing))?;
                listing.documents
            }
            (None, Some(held)) if held.tag == listing.tag => held.documents.clone(),
            (None, _) => {
                // "Unchanged" for a listing this phone does not hold: ask for it whole.
                self.workspace.save_relay_listing(&self.relay.base, None)?;
                return Err(SessionError::Unexpected("wardcheck-documents").into());
            }
        };
        let here: BTreeSet<DocumentId> = self.workspace.document_ids()?.into_iter().collect();
        let wanted = (here.iter().copied())
            .chain(documents.iter().map(|d| d.id))
            .collect();
        // What was kept of a document the relay no longer lists is never asked for again.
        self.workspace.forget_fetching_except(&wanted)?;
        self.listed = true;
        let refused = self.workspace.refused_contents(&self.relay.base)?;
        let synced = synced_by_session(&documents, &here, &refused).collect();
        self.add(&synced, host)
    }

    /// Exchanges the session's frames over `socket` until the relay's listing has come and
    /// every document is settled.
    fn converse(
        &mut self,
        socket: &mut Socket,
        held: Option<HeldListing>,
        host: &mut WorkspaceHost<'_>,
    ) -> Result<(), TransportError> {
        let (relay, observer) = (self.relay, self.observer);
        let mut last_heard = Instant::now();
        loop {
            let frames = self.session.take_outgoing();
            let changes = host.take_generated_change_bytes();
            for frame in frames {
                socket::send(socket, frame, observer, relay.retry.idle_timeout)?;
            }
            // Counted once the whole batch is written (a batch cut short counts nothing).
            host.count_sent(changes);
            let done = (self.ids.iter())
                .filter(|id| self.session.status(id) != Some(DocStatus::Syncing))
                .count();
            observer.progress(&SyncProgress {
                phase: Phase::Documents,
                documents_done: done,
                documents_total: self.ids.len(),
                bytes_sent: 0,
                bytes_total: 0,
            });
            if self.listed && self.session.is_settled() {
                break;
            }
            if observer.is_cancelled() {
                return Err(TransportError::Cancelled);
            }
            match socket.read() {
                Ok(Message::Binary(frame)) => {
                    last_heard = Instant::now();
                    self.session.receive(&frame, host)?;
                    if let Some(listing) = self.session.take_listing() {
                        self.take_listing(listing, held.as_ref(), host)?;
                    } else if !self.listed && self.session.peer_id().is_some() {
                        // A relay sends its listing before `peer`: this one has none to
                        // send (an older relay), so the listing held stands.
                        self.listed = true;
                    }
                }
                Ok(Message::Close(_)) => {
                    return Err(TransportError::Network(
                        "the relay closed the connection".into(),
                    ));
                }
                Ok(_) => last_heard = Instant::now(),
                Err(e) if !socket::timed_out(&e) => return Err(e.into()),
                Err(_) if last_heard.elapsed() > relay.retry.idle_timeout => {
                    return Err(TransportError::Timeout);
                }
                Err(_) => {}
            }
        }
        Ok(())
    }
}

/// The documents the relay listed last that this phone still lacks, with how much of
/// each it keeps: what is left to fetch. For a document the relay serves a snapshot of,
/// the bytes of that snapshot downloaded so far, of its size; else both sides count
/// stored bytes (the relay's compacted state and the changes since, the changes kept
/// here), so the figure is "about".
pub(super) fn left_to_fetch(
    workspace: &Workspace,
    relay: &Relay,
) -> Result<Vec<FetchingDocument>, TransportError> {
    let Some(listing) = workspace.relay_listing(&relay.base)? else {
        return Ok(Vec::new());
    };
    // Documents here, and those already counted (a listing may name one twice).
    let mut seen: BTreeSet<DocumentId> = workspace.document_ids()?.into_iter().collect();
    let mut left = Vec::new();
    for listed in listing.documents {
        if !seen.insert(listed.id) {
            continue;
        }
        let (held, total) = match listed.snapshot {
            Some(snapshot) => (workspace.fetching_blob_len(&snapshot.hash)?, snapshot.bytes),
            None => (workspace.fetching_bytes(&listed.id)?, listed.bytes),
        };
        left.push(FetchingDocument {
            document: listed.id,
            bytes_held: held,
            bytes_total: total.max(held),
        });
    }
    Ok(left)
}

/// How the documents' exchange ended.
#[derive(Default)]
pub(super) struct Exchanged {
    pub in_sync: usize,
    pub unavailable: Vec<DocumentId>,
    pub refused: Vec<RefusedDocument>,
}

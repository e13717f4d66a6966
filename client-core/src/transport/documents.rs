//! The documents' part of a sync: [`Session`]s over WebSocket connections, for every
//! assessment the phone has and every one of its scope it lacks.
//!
//! What a connection moved is never moved again: the changes are stored as they arrive
//! (documents being fetched included, see [`WorkspaceHost`]), the sync states are saved
//! when a connection ends however it ends, and so is the message budget the link
//! carried, so the next attempt, `sync` call or start of the app resumes from them.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::Deserialize;
use tungstenite::Message;

use super::socket::{self, Socket};
use super::{
    Phase, RefusedDocument, Relay, SyncObserver, SyncProgress, TransportError, http_error,
};
use crate::Workspace;
use crate::doc::DocumentId;
use crate::sync::wire::PeerMetadata;
use crate::sync::{
    DEFAULT_MESSAGE_BUDGET, DocStatus, MIN_MESSAGE_BUDGET, Session, SessionError, SyncState,
    WorkspaceHost,
};

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

#[derive(Deserialize)]
struct ListedDocument {
    id: DocumentId,
}

/// Lists the relay's documents and syncs them with the phone's; `opened` tells whether a
/// sync connection opened.
fn sync_documents(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    host: &mut WorkspaceHost<'_>,
    opened: &mut bool,
) -> Result<Exchanged, TransportError> {
    let (url, bearer) = (relay.url("/v1/documents"), relay.bearer());
    let listed: Vec<ListedDocument> = relay.http(observer, move |agent| {
        let mut response = agent.get(&url).header("Authorization", &bearer).call()?;
        match response.status().as_u16() {
            200 => Ok(response.body_mut().read_json()?),
            status => Err(http_error(status, &mut response)),
        }
    })?;
    let ids: BTreeSet<DocumentId> = workspace
        .document_ids()?
        .into_iter()
        .chain(listed.into_iter().map(|d| d.id))
        .collect();
    // What was kept of a document the relay no longer lists is never asked for again.
    workspace.forget_fetching_except(&ids)?;

    let expected = workspace.relay_peer_id(&relay.base)?;
    let (ids, expected_now) = (&ids, expected.clone());
    match sync_session(workspace, relay, observer, host, ids, expected_now, opened) {
        // Another relay answers at this address: once more, waiting for its `peer`.
        Err(TransportError::Protocol(SessionError::PeerChanged)) if expected.is_some() => {
            sync_session(workspace, relay, observer, host, ids, None, opened)
        }
        other => other,
    }
}

/// One connection's sync of `ids`. With the relay's `expected` peer id (from the last
/// sync), the documents' first messages go right behind `join`: one round trip less.
fn sync_session(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    host: &mut WorkspaceHost<'_>,
    ids: &BTreeSet<DocumentId>,
    expected: Option<String>,
    opened: &mut bool,
) -> Result<Exchanged, TransportError> {
    let mut socket = socket::connect(relay, host.budget(), observer)?;
    *opened = true;
    let metadata = PeerMetadata {
        storage_id: Some(workspace.device_id().to_owned()),
        is_ephemeral: false,
    };
    let mut session = Session::initiate(workspace.device_id(), metadata);
    if let Some(peer) = &expected {
        session.expect_peer(peer);
    }
    for id in ids {
        let state = workspace
            .sync_state(&relay.base, id)?
            .and_then(|bytes| SyncState::decode(&bytes).ok())
            .unwrap_or_default();
        session.add_document(*id, state, host)?;
    }
    let outcome = converse(&mut socket, &mut session, host, ids, relay, observer);
    // What arrived is stored: keep the states it left and the relay's id, however the
    // connection ended, so the next one starts from them.
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
    for id in ids {
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

/// Exchanges the session's frames over `socket` until every document is settled.
fn converse(
    socket: &mut Socket,
    session: &mut Session,
    host: &mut WorkspaceHost<'_>,
    ids: &BTreeSet<DocumentId>,
    relay: &Relay,
    observer: &dyn SyncObserver,
) -> Result<(), TransportError> {
    let mut last_heard = Instant::now();
    loop {
        for frame in session.take_outgoing() {
            socket::send(socket, frame, observer, relay.retry.idle_timeout)?;
        }
        let done = ids
            .iter()
            .filter(|id| session.status(id) != Some(DocStatus::Syncing))
            .count();
        observer.progress(&SyncProgress {
            phase: Phase::Documents,
            documents_done: done,
            documents_total: ids.len(),
            bytes_sent: 0,
            bytes_total: 0,
        });
        if session.is_settled() {
            break;
        }
        if observer.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        match socket.read() {
            Ok(Message::Binary(frame)) => {
                last_heard = Instant::now();
                session.receive(&frame, host)?;
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

/// How the documents' exchange ended.
#[derive(Default)]
pub(super) struct Exchanged {
    pub in_sync: usize,
    pub unavailable: Vec<DocumentId>,
    pub refused: Vec<RefusedDocument>,
}

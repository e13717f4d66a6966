//! `GET /v1/sync`: documents sync over a WebSocket speaking the automerge-repo v1
//! protocol, driven by the core's sans-IO [`Session`] over a [`RelayHost`] (scope, the
//! change policy, durability: see [`crate::documents`]).
//!
//! A connection must `join` within [`JOIN_TIMEOUT`]; the listing a phone asks for
//! (`?listing=`, read from the store at the upgrade with the caller's wards) goes out
//! first, within the same timeout. Protocol work and SQLite calls run on the blocking
//! pool, never on the async workers, one message at a time per sync permit; connections
//! are admitted first come, first served.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wardcheck_core::sync::listing::{
    ListedDocument, ListedSnapshot, Listing, MAX_LISTED_DOCUMENTS,
};
use wardcheck_core::sync::wire::{PeerMetadata, WireMessage};
use wardcheck_core::sync::{
    DEFAULT_MESSAGE_BUDGET, MIN_MESSAGE_BUDGET, SOCKET_READ_BUFFER, Session,
};

use crate::AppState;
use crate::auth::Principal;
use crate::documents::RelayHost;
use crate::error::AppError;

/// The largest frame a device may send.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// A connection that sends nothing for this long gives its admission back
/// ([`AppState::sync_admission`]); its next frame waits for a place again.
pub const QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// A connection that has not sent its first frame (`join`) this long after the upgrade
/// is closed: an idle socket holds memory and a file descriptor.
pub const JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The sync route.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

/// The sync route's query (`token` is the auth layer's).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SyncParams {
    /// The largest sync message the device wants, in bytes of changes as sent: a phone on
    /// a link that keeps dropping asks for smaller ones. Clamped to
    /// `MIN_MESSAGE_BUDGET..=DEFAULT_MESSAGE_BUDGET` (2 to 16 KiB).
    budget: Option<usize>,
    /// Asks for the documents the device may read (a `wardcheck-documents` message
    /// before `peer`), given the tag of the listing it holds (empty for none): if that is
    /// the relay's listing still, the tag comes alone.
    listing: Option<String>,
    /// With `listing`: `1` asks for each document's snapshot too (`[id, bytes, snapshot
    /// SHA-256, snapshot bytes]` instead of `[id, bytes]`), which a phone that lacks the
    /// document downloads (`GET /v1/documents/{id}/snapshot/{sha256}`). Phones built
    /// before snapshots do not ask, and read the listing they know.
    snapshots: Option<u8>,
}

/// Opens the document sync (a WebSocket).
///
/// A WebSocket upgrade (`Connection: Upgrade`, `Upgrade: websocket`,
/// `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key`), then the automerge-repo
/// v1 protocol in binary CBOR frames (`join`, `peer`, `request`, `sync`,
/// `doc-unavailable`), at most 16 MiB each. The socket must send `join` within 10 s.
/// Documents outside the caller's scope are `doc-unavailable`, never data. With
/// `listing`, the relay first sends wardcheck's `wardcheck-documents` message: `tag`,
/// `documents` (`[id, bytes]` each, or `[id, bytes, snapshot SHA-256, snapshot bytes]`
/// with `snapshots=1`) and `sets`, the criteria sets published (`[id, version, SHA-256,
/// retired]` each, fetched by `GET /v1/criteria-sets/{id}/{version}`), unless the device
/// holds that listing already.
#[utoipa::path(
    get,
    path = "/v1/sync",
    tag = "sync",
    params(SyncParams),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open"),
        (
            status = 400,
            description = "`bad_request`: not a WebSocket upgrade (a header missing or \
                           wrong), or a `budget` that is not a number",
        ),
        (
            status = 426,
            description = "`rejected`: the connection cannot be upgraded",
        ),
    ),
)]
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
    let listed = params.listing.is_some();
    let with_snapshots = params.snapshots == Some(1);
    let (wards, documents, sets) = state
        .db(move |store| {
            let wards = store.wards_in_scope(&scope_of)?;
            let (documents, sets) = if listed {
                (
                    store.documents_for_wards(&wards)?,
                    store.listed_criteria_sets()?,
                )
            } else {
                (Vec::new(), Vec::new())
            };
            Ok((wards, documents, sets))
        })
        .await?;
    let listing = params.listing.map(|held| {
        if documents.len() > MAX_LISTED_DOCUMENTS {
            tracing::warn!(
                documents = documents.len(),
                "a listing names only the first {MAX_LISTED_DOCUMENTS} documents in scope"
            );
        }
        let documents = documents.into_iter().take(MAX_LISTED_DOCUMENTS);
        let documents = documents.map(|d| ListedDocument {
            id: d.id,
            bytes: d.bytes,
            snapshot: (d.snapshot_sha256)
                .filter(|_| with_snapshots)
                .map(|hash| ListedSnapshot {
                    hash,
                    bytes: d.snapshot_bytes,
                }),
        });
        let listing = Listing::of(documents.collect(), sets);
        WireMessage::Documents(listing.for_holder(&held)).encode()
    });
    Ok(ws
        .read_buffer_size(SOCKET_READ_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(socket, state, principal, wards, budget, listing)))
}

/// Serves one sync connection; `listing` (an encoded `wardcheck-documents`) goes first.
async fn serve(
    mut socket: WebSocket,
    state: AppState,
    principal: Principal,
    wards: Vec<String>,
    budget: usize,
    listing: Option<Vec<u8>>,
) {
    let join_by = tokio::time::Instant::now() + JOIN_TIMEOUT;
    if let Some(frame) = listing {
        // Within the join timeout, like everything before `join`.
        let send = tokio::time::timeout_at(join_by, socket.send(Message::Binary(frame.into())));
        if !matches!(send.await, Ok(Ok(()))) {
            return;
        }
    }
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
        RelayHost::new(&state, &principal, wards, budget),
    ));
    let mut joined = false;
    let mut admitted = None;
    loop {
        let holding_place = admitted.is_some();
        let quiet = async move {
            if !joined {
                tokio::time::sleep_until(join_by).await;
            } else if holding_place {
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
                if !joined {
                    tracing::info!("closing a sync connection that did not join in time");
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
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
        joined = true;
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

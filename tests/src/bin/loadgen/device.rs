//! One simulated device: an assessment in memory, synced over a WebSocket with the core's
//! [`Session`], exactly as a phone's `transport::sync_now` drives it (a new connection,
//! `join`/`peer`, the document's sync messages from the state kept since the last sync
//! until both sides have the same heads).

use std::time::{Duration, Instant};

use automerge::ChangeHash;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wardcheck_core::doc::{Assessment, DocumentId};
use wardcheck_core::model::Author;
use wardcheck_core::sync::wire::PeerMetadata;
use wardcheck_core::sync::{
    DEFAULT_MESSAGE_BUDGET, DocStatus, HostError, SOCKET_READ_BUFFER, Session, SessionError,
    SyncHost, SyncMessage, SyncState,
};

/// A sync that did not end in sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The WebSocket failed (connect, send or receive).
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server closed the connection before the document was in sync.
    #[error("closed before the document was in sync")]
    Closed,
    /// The protocol failed.
    #[error("protocol: {0}")]
    Session(#[from] SessionError),
    /// The server does not have or share the document.
    #[error("document unavailable")]
    Unavailable,
    /// It took longer than the time limit.
    #[error("timed out")]
    Timeout,
    /// An edit failed.
    #[error("edit: {0}")]
    Edit(#[from] wardcheck_core::Error),
}

/// How long one sync took.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// From sending the document's first sync message (right after `peer`) to being in
    /// sync: the sync itself.
    pub sync: Duration,
    /// From opening the TCP connection to being in sync.
    pub total: Duration,
}

/// A simulated phone.
pub struct Device {
    /// Its peer id.
    pub peer_id: String,
    /// Who it edits as.
    pub author: Author,
    /// The assessment it works on.
    pub id: DocumentId,
    /// Its replica.
    pub doc: Assessment,
    /// The WebSocket URL it syncs with (token included, for the relay).
    pub url: String,
    /// Connections opened so far.
    pub connections: usize,
    /// The sync state kept from the last sync, as a phone keeps it (`SyncState::encode`:
    /// the heads both sides had), so that the next sync starts from there.
    pub saved_state: Option<Vec<u8>>,
}

impl Device {
    /// One edit, as an officer makes: a note on a criterion and a comment whose text names
    /// the device and the round (checked at the end).
    pub fn edit(&mut self, criterion: &str, round: usize, now_ms: i64) -> Result<(), SyncError> {
        let text = comment_text(&self.peer_id, round);
        self.doc.set_note(criterion, &text, &self.author, now_ms)?;
        self.doc.add_comment(None, &text, &self.author, now_ms)?;
        Ok(())
    }

    /// Syncs the assessment over a new connection, within `limit`.
    pub async fn sync(&mut self, limit: Duration) -> Result<Timing, SyncError> {
        tokio::time::timeout(limit, self.sync_unbounded())
            .await
            .map_err(|_| SyncError::Timeout)?
    }

    async fn sync_unbounded(&mut self) -> Result<Timing, SyncError> {
        let opened = Instant::now();
        let config = WebSocketConfig::default().read_buffer_size(SOCKET_READ_BUFFER);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(self.url.as_str(), Some(config), false)
                .await?;
        let metadata = PeerMetadata {
            storage_id: None,
            is_ephemeral: false,
        };
        // A new peer id per connection: automerge-repo keeps a peer's sync state after it
        // leaves, and a device that starts each connection from a fresh state (as here)
        // must not be mistaken for the peer that state describes.
        self.connections += 1;
        let session_id = format!("{}-{}", self.peer_id, self.connections);
        let mut session = Session::initiate(session_id, metadata);
        let mut host = MemoryHost {
            id: self.id,
            doc: &mut self.doc,
        };
        let state = self
            .saved_state
            .as_deref()
            .and_then(|bytes| SyncState::decode(bytes).ok())
            .unwrap_or_default();
        session.add_document(self.id, state, &mut host)?;
        let mut syncing_since = None;
        loop {
            if syncing_since.is_none() && session.peer_id().is_some() {
                syncing_since = Some(Instant::now());
            }
            for frame in session.take_outgoing() {
                socket.send(Message::Binary(frame.into())).await?;
            }
            if session.is_settled() {
                break;
            }
            match socket.next().await {
                Some(Ok(Message::Binary(frame))) => session.receive(&frame, &mut host)?,
                Some(Ok(Message::Close(_))) | None => return Err(SyncError::Closed),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
        let done = Instant::now();
        self.saved_state = session
            .states()
            .find(|(id, _)| **id == self.id)
            .map(|(_, state)| state.encode());
        // Closing is not part of the sync; a failure here changes nothing.
        let _ = socket.close(None).await;
        match session.status(&self.id) {
            Some(DocStatus::InSync) => Ok(Timing {
                sync: done - syncing_since.unwrap_or(opened),
                total: done - opened,
            }),
            _ => Err(SyncError::Unavailable),
        }
    }
}

/// The text of the comment a device adds in a round.
pub fn comment_text(peer_id: &str, round: usize) -> String {
    format!("{peer_id} round {round}")
}

/// A device's one assessment as a [`SyncHost`].
struct MemoryHost<'a> {
    id: DocumentId,
    doc: &'a mut Assessment,
}

impl SyncHost for MemoryHost<'_> {
    fn has(&mut self, doc: &DocumentId) -> bool {
        *doc == self.id
    }

    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        (*doc == self.id).then(|| self.doc.heads())
    }

    fn generate(
        &mut self,
        doc: &DocumentId,
        state: &mut SyncState,
    ) -> Result<Vec<SyncMessage>, HostError> {
        if *doc != self.id {
            return Err(HostError::Unavailable);
        }
        Ok(self
            .doc
            .generate_sync_messages(state, DEFAULT_MESSAGE_BUDGET))
    }

    fn receive(
        &mut self,
        doc: &DocumentId,
        state: &mut SyncState,
        message: SyncMessage,
    ) -> Result<(), HostError> {
        if *doc != self.id {
            return Err(HostError::Unavailable);
        }
        self.doc
            .receive_sync_message(state, message)
            .map_err(|e| HostError::Failed(e.to_string()))
    }
}

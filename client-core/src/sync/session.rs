//! The protocol state machine: push frames in, take frames out.

use std::collections::{BTreeMap, VecDeque};

use automerge::ChangeHash;
use automerge::sync::{Message, State};

use super::listing::Listing;
use super::wire::{PROTOCOL_VERSION, PeerMetadata, WireError, WireMessage};
use crate::doc::DocumentId;

/// Why a host could not serve a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// It does not have the document, or will not share it with this peer. The peer is
    /// told `doc-unavailable`, never why.
    #[error("document unavailable")]
    Unavailable,
    /// The host refuses the changes the peer sent (the change policy): the peer is told
    /// `doc-unavailable` with this reason, and the session goes on with other documents.
    #[error("changes refused: {0}")]
    Refused(String),
    /// Storing or reading failed. The session ends so that nothing unstored is
    /// acknowledged.
    #[error("host failure: {0}")]
    Failed(String),
}

/// Who owns the documents a session syncs: a phone's workspace, or the relay.
pub trait SyncHost {
    /// Whether this host has the document (a peer that lacks one sends `request`).
    fn has(&mut self, doc: &DocumentId) -> bool;

    /// The document's current heads, or `None` if the host does not have it.
    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<ChangeHash>>;

    /// The next sync messages for the peer, in order, each of bounded size (see
    /// [`super::generate_bounded`]); empty when there is nothing to send.
    fn generate(&mut self, doc: &DocumentId, state: &mut State) -> Result<Vec<Message>, HostError>;

    /// Applies the peer's message. New changes must be durable when this returns: the
    /// reply generated next acknowledges them.
    fn receive(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<(), HostError>;
}

/// Which end of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The phone: sends `join`, then asks for documents.
    Initiator,
    /// The relay: answers `join` and whatever it is asked.
    Acceptor,
}

/// Where one document's sync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocStatus {
    /// Messages are being exchanged.
    Syncing,
    /// Both sides have the same heads.
    InSync,
    /// The peer does not have it, or will not share it.
    Unavailable,
    /// The peer refused our changes to it ([`Session::refusal`] says why): nothing more
    /// of it is exchanged on this connection.
    Refused,
}

/// A protocol failure: the session cannot go on and the connection should close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A frame that does not decode.
    #[error("bad frame: {0}")]
    Wire(#[from] WireError),
    /// A sync message that does not decode.
    #[error("bad sync message")]
    BadSyncMessage,
    /// A message out of order (e.g. `sync` before the handshake).
    #[error("unexpected {0} message")]
    Unexpected(&'static str),
    /// No protocol version in common.
    #[error("no common protocol version")]
    Version,
    /// The peer reported an error.
    #[error("the peer reported an error: {0}")]
    Peer(String),
    /// The host failed to store or read a document.
    #[error("{0}")]
    Host(String),
    /// `peer` named another peer than the one expected (see [`Session::expect_peer`]):
    /// the messages sent ahead went to the wrong peer. Start a new session without
    /// expecting one.
    #[error("the peer is not the one expected")]
    PeerChanged,
}

struct DocEntry {
    state: State,
    status: DocStatus,
    /// Why the changes were refused, when the status is [`DocStatus::Refused`].
    refusal: Option<String>,
}

impl DocEntry {
    fn new(state: State) -> Self {
        Self {
            state,
            status: DocStatus::Syncing,
            refusal: None,
        }
    }
}

/// One connection's sync: feed it frames with [`Session::receive`], send what
/// [`Session::take_outgoing`] returns.
pub struct Session {
    side: Side,
    our_id: String,
    /// The peer's id: from the handshake, or expected before it.
    their_id: Option<String>,
    /// Whether the handshake is done (`their_id` is confirmed).
    handshake_done: bool,
    metadata: PeerMetadata,
    docs: BTreeMap<DocumentId, DocEntry>,
    outbox: VecDeque<WireMessage>,
    /// The relay's listing, received and not taken yet (an initiator's).
    listing: Option<Listing>,
}

impl Session {
    /// A session that opens the connection: it queues `join` at once.
    pub fn initiate(our_id: impl Into<String>, metadata: PeerMetadata) -> Self {
        let mut session = Self::new(Side::Initiator, our_id.into(), metadata);
        session.outbox.push_back(WireMessage::Join {
            sender_id: session.our_id.clone(),
            supported_protocol_versions: vec![PROTOCOL_VERSION.into()],
            peer_metadata: Some(session.metadata.clone()),
        });
        session
    }

    /// A session that accepts a connection and waits for `join`.
    pub fn accept(our_id: impl Into<String>, metadata: PeerMetadata) -> Self {
        Self::new(Side::Acceptor, our_id.into(), metadata)
    }

    fn new(side: Side, our_id: String, metadata: PeerMetadata) -> Self {
        Self {
            side,
            our_id,
            their_id: None,
            handshake_done: false,
            metadata,
            docs: BTreeMap::new(),
            outbox: VecDeque::new(),
            listing: None,
        }
    }

    /// The peer's id, once the handshake is done.
    pub fn peer_id(&self) -> Option<&str> {
        self.their_id.as_deref().filter(|_| self.handshake_done)
    }

    /// Expects the peer a previous connection met ([`Session::peer_id`] then): documents'
    /// first messages go out right behind `join` instead of after `peer`, saving a round
    /// trip. Call it before adding documents. If `peer` then names another peer, the
    /// session fails with [`SessionError::PeerChanged`].
    pub fn expect_peer(&mut self, id: impl Into<String>) {
        if self.side == Side::Initiator && !self.handshake_done {
            self.their_id = Some(id.into());
        }
    }

    /// Starts syncing a document, from a saved state (or [`State::new`]). The first message
    /// goes out once the handshake is done.
    pub fn add_document(
        &mut self,
        doc: DocumentId,
        state: State,
        host: &mut impl SyncHost,
    ) -> Result<(), SessionError> {
        self.docs.insert(doc, DocEntry::new(state));
        if self.their_id.is_some() {
            self.send_first(doc, host)?;
        }
        Ok(())
    }

    /// Handles one incoming frame.
    pub fn receive(&mut self, frame: &[u8], host: &mut impl SyncHost) -> Result<(), SessionError> {
        match WireMessage::decode(frame)? {
            WireMessage::Join {
                sender_id,
                supported_protocol_versions,
                ..
            } => {
                if self.side != Side::Acceptor {
                    return Err(SessionError::Unexpected("join"));
                }
                match &self.their_id {
                    // A duplicated frame: already answered.
                    Some(known) if *known == sender_id => return Ok(()),
                    Some(_) => return Err(SessionError::Unexpected("join")),
                    None => {}
                }
                self.handshake_done = true;
                if !supported_protocol_versions
                    .iter()
                    .any(|v| v == PROTOCOL_VERSION)
                {
                    self.outbox.push_back(WireMessage::Error {
                        message: "unsupported protocol version".into(),
                    });
                    return Err(SessionError::Version);
                }
                self.outbox.push_back(WireMessage::Peer {
                    sender_id: self.our_id.clone(),
                    target_id: sender_id.clone(),
                    selected_protocol_version: PROTOCOL_VERSION.into(),
                    peer_metadata: Some(self.metadata.clone()),
                });
                self.their_id = Some(sender_id);
            }
            WireMessage::Peer {
                sender_id,
                selected_protocol_version,
                ..
            } => {
                if self.side != Side::Initiator {
                    return Err(SessionError::Unexpected("peer"));
                }
                if self.handshake_done {
                    // A duplicated frame: already handled.
                    if self.their_id == Some(sender_id) {
                        return Ok(());
                    }
                    return Err(SessionError::Unexpected("peer"));
                }
                if selected_protocol_version != PROTOCOL_VERSION {
                    return Err(SessionError::Version);
                }
                self.handshake_done = true;
                match self.their_id.replace(sender_id.clone()) {
                    // The documents' first messages went out behind `join`.
                    Some(expected) if expected == sender_id => {}
                    Some(_) => return Err(SessionError::PeerChanged),
                    None => {
                        let docs: Vec<DocumentId> = self.docs.keys().copied().collect();
                        for doc in docs {
                            self.send_first(doc, host)?;
                        }
                    }
                }
            }
            WireMessage::Request {
                document_id, data, ..
            }
            | WireMessage::Sync {
                document_id, data, ..
            } => {
                if !self.handshake_done {
                    return Err(SessionError::Unexpected("sync"));
                }
                let decode =
                    || Message::decode(&data).map_err(|e| crate::Error::Malformed(e.to_string()));
                let message =
                    crate::doc::untrusted(decode).map_err(|_| SessionError::BadSyncMessage)?;
                self.on_sync(document_id, message, host)?;
            }
            WireMessage::DocUnavailable {
                document_id,
                reason,
                ..
            } => {
                if let Some(entry) = self.docs.get_mut(&document_id) {
                    entry.status = match reason {
                        Some(_) => DocStatus::Refused,
                        None => DocStatus::Unavailable,
                    };
                    entry.refusal = reason;
                }
            }
            WireMessage::Documents(listing) => {
                if self.side != Side::Initiator {
                    return Err(SessionError::Unexpected("wardcheck-documents"));
                }
                self.listing = Some(listing);
            }
            WireMessage::Error { message } => return Err(SessionError::Peer(message)),
            WireMessage::Leave { .. } | WireMessage::Other { .. } => {}
        }
        Ok(())
    }

    /// The documents the relay listed on this connection (see [`super::listing`]), once:
    /// the caller adds those it wants.
    pub fn take_listing(&mut self) -> Option<Listing> {
        self.listing.take()
    }

    /// Frames to send now, in order.
    pub fn take_outgoing(&mut self) -> Vec<Vec<u8>> {
        self.outbox.drain(..).map(|m| m.encode()).collect()
    }

    /// Where each document stands.
    pub fn status(&self, doc: &DocumentId) -> Option<DocStatus> {
        self.docs.get(doc).map(|e| e.status)
    }

    /// Why the peer refused our changes to `doc`, if it did.
    pub fn refusal(&self, doc: &DocumentId) -> Option<&str> {
        self.docs.get(doc)?.refusal.as_deref()
    }

    /// Whether every document added is in sync or unavailable, and nothing is left to
    /// send: an initiator can close the connection.
    pub fn is_settled(&self) -> bool {
        self.handshake_done
            && self.outbox.is_empty()
            && self.docs.values().all(|e| e.status != DocStatus::Syncing)
    }

    /// The sync states to save, so the next session with this peer starts where this one
    /// ended.
    pub fn states(&self) -> impl Iterator<Item = (&DocumentId, &State)> {
        self.docs.iter().map(|(doc, e)| (doc, &e.state))
    }

    fn send_first(
        &mut self,
        doc: DocumentId,
        host: &mut impl SyncHost,
    ) -> Result<(), SessionError> {
        let has = host.has(&doc);
        let Some(entry) = self.docs.get_mut(&doc) else {
            return Ok(());
        };
        match host.generate(&doc, &mut entry.state) {
            Ok(messages) => {
                for message in messages {
                    let data = message.encode();
                    let (sender_id, target_id) = (
                        self.our_id.clone(),
                        self.their_id.clone().unwrap_or_default(),
                    );
                    self.outbox.push_back(if has {
                        WireMessage::Sync {
                            sender_id,
                            target_id,
                            document_id: doc,
                            data,
                        }
                    } else {
                        WireMessage::Request {
                            sender_id,
                            target_id,
                            document_id: doc,
                            data,
                        }
                    });
                }
            }
            Err(HostError::Unavailable | HostError::Refused(_)) => {
                entry.status = DocStatus::Unavailable
            }
            Err(HostError::Failed(e)) => return Err(SessionError::Host(e)),
        }
        Ok(())
    }

    fn on_sync(
        &mut self,
        doc: DocumentId,
        message: Message,
        host: &mut impl SyncHost,
    ) -> Result<(), SessionError> {
        if self.side == Side::Initiator && !self.docs.contains_key(&doc) {
            // A phone takes only the documents it asked for: a relay cannot make it
            // fetch (and keep) others.
            return Ok(());
        }
        let entry = self
            .docs
            .entry(doc)
            .or_insert_with(|| DocEntry::new(State::new()));
        if entry.status != DocStatus::Syncing
            && entry.status != DocStatus::InSync
            && self.side == Side::Acceptor
        {
            // Refused once on this connection: refuse again without asking the host.
            let reason = entry.refusal.clone();
            self.outbox.push_back(self.unavailable(doc, reason));
            return Ok(());
        }
        let reply = host
            .receive(&doc, &mut entry.state, message)
            .and_then(|()| host.generate(&doc, &mut entry.state));
        match reply {
            Ok(messages) => {
                // Equal heads: both sides hold the same document. A message may still go
                // out (it tells the peer our heads), but nothing is left to exchange.
                let ours = host.heads(&doc).map(sorted);
                let theirs = entry.state.their_heads.clone().map(sorted);
                entry.status = if ours.is_some() && ours == theirs {
                    DocStatus::InSync
                } else {
                    DocStatus::Syncing
                };
                for message in messages {
                    self.outbox.push_back(WireMessage::Sync {
                        sender_id: self.our_id.clone(),
                        target_id: self.their_id.clone().unwrap_or_default(),
                        document_id: doc,
                        data: message.encode(),
                    });
                }
            }
            Err(HostError::Unavailable) => {
                entry.status = DocStatus::Unavailable;
                self.outbox.push_back(self.unavailable(doc, None));
            }
            Err(HostError::Refused(reason)) => {
                entry.status = DocStatus::Refused;
                entry.refusal = Some(reason.clone());
                self.outbox.push_back(self.unavailable(doc, Some(reason)));
            }
            Err(HostError::Failed(e)) => return Err(SessionError::Host(e)),
        }
        Ok(())
    }

    fn unavailable(&self, doc: DocumentId, reason: Option<String>) -> WireMessage {
        WireMessage::DocUnavailable {
            sender_id: self.our_id.clone(),
            target_id: self.their_id.clone().unwrap_or_default(),
            document_id: doc,
            reason,
        }
    }
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

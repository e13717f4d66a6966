//! Syncing documents with a peer, sans I/O.
//!
//! # Why our own implementation of the automerge-repo protocol, not samod
//!
//! samod 0.16 speaks the same protocol and has share policies, but its storage trait
//! cannot report a failed write, and the relay must not acknowledge a change it has not
//! stored durably. Here the protocol is a small state machine ([`Session`]) over
//! Automerge's own sync API; the caller owns the socket, and a [`SyncHost`] owns the
//! documents: it applies what a peer sends and makes it durable *before* the session
//! generates the reply that acknowledges it (the reply carries the new heads). The same
//! engine runs on phones (over a [`crate::Workspace`]) and in the relay, and tests drive
//! it in memory.
//!
//! The wire format is automerge-repo v1 ([`wire`]): CBOR `join`/`peer` handshake, then
//! `request`/`sync`/`doc-unavailable` per document, so automerge-repo peers can sync too.

mod bloom;
mod bounded;
mod inflation;
pub mod listing;
mod session;
pub mod wire;
mod workspace_host;

pub use automerge::sync::{Message as SyncMessage, State as SyncState};
pub use bounded::{
    DEFAULT_MESSAGE_BUDGET, MIN_MESSAGE_BUDGET, SOCKET_READ_BUFFER, generate_bounded,
};
pub use inflation::{Inflated, InflationError, ROW_BYTES, check_inflation};
pub use session::{DocStatus, HostError, Session, SessionError, Side, SyncHost};
pub use workspace_host::WorkspaceHost;
#[cfg(test)]
mod tests;

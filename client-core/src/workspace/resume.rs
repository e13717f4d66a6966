//! What a sync with a relay resumes from, kept in the store so that neither a dropped
//! connection, nor the end of a `sync` call, nor a restart of the app loses it: the sync
//! state of each document, the relay's peer id, the message budget the link carried, the
//! relay's listing of documents, the changes of documents being fetched, and the bytes
//! of blobs being downloaded.

use std::collections::BTreeSet;

use super::Workspace;
use crate::blob::BlobHash;
use crate::doc::DocumentId;
use crate::error::{Error, Result};
use crate::sync::listing::{ListedDocument, ListedSet};

/// The most a document being fetched may take in the store before it reads whole: the
/// relay's own bound on a stored document (16 MiB).
pub const MAX_FETCHING_BYTES: u64 = 16 << 20;

/// The most the blobs being downloaded may take in the store, all together: more than the
/// largest blob a relay takes (20 MiB by default).
pub const MAX_FETCHING_BLOB_BYTES: u64 = 32 << 20;

/// The setting that holds the peer id of the relay at `relay` (its URL).
fn relay_peer_setting(relay: &str) -> String {
    format!("relay-peer:{relay}")
}

/// The setting that holds the message budget the link to `relay` carried last.
fn budget_setting(relay: &str) -> String {
    format!("relay-budget:{relay}")
}

/// The setting that holds the listing `relay` sent last.
fn listing_setting(relay: &str) -> String {
    format!("relay-listing:{relay}")
}

/// The setting that holds the contents (snapshots, criteria sets) of `relay` this device
/// could not take.
fn refused_contents_setting(relay: &str) -> String {
    format!("relay-refused:{relay}")
}

/// How many refused snapshots are remembered per relay (the oldest go first).
const REMEMBERED_REFUSALS: usize = 64;

/// A relay's listing as kept: its tag, documents and criteria sets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldListing {
    /// The tag the relay gave it.
    pub tag: String,
    /// The documents this device may read.
    pub documents: Vec<ListedDocument>,
    /// The criteria sets the relay publishes.
    #[serde(default)]
    pub sets: Vec<ListedSet>,
}

impl Workspace {
    /// The saved sync state with `peer` for a document, if any.
    pub fn sync_state(&self, peer: &str, id: &DocumentId) -> Result<Option<Vec<u8>>> {
        self.lock().store.sync_state(peer, id)
    }

    /// Saves the sync state with `peer` for a document, so the next sync resumes from it.
    pub fn save_sync_state(&self, peer: &str, id: &DocumentId, state: &[u8]) -> Result<()> {
        self.lock()
            .store
            .write(|w| w.set_sync_state(peer, id, state))
    }

    /// The relay's peer id as the last sync with `relay` met it, so the next sync can send
    /// its first messages right behind `join` (see [`crate::sync::Session::expect_peer`]).
    pub fn relay_peer_id(&self, relay: &str) -> Result<Option<String>> {
        self.lock().store.setting(&relay_peer_setting(relay))
    }

    /// Records the peer id `relay` answered with (see [`Workspace::relay_peer_id`]).
    pub fn save_relay_peer_id(&self, relay: &str, peer: &str) -> Result<()> {
        self.lock()
            .store
            .write(|w| w.set_setting(&relay_peer_setting(relay), peer))
    }

    /// The message budget (bytes of changes per sync message) the link to `relay` carried
    /// last, if a sync has recorded one.
    pub fn message_budget(&self, relay: &str) -> Result<Option<usize>> {
        let value = self.lock().store.setting(&budget_setting(relay))?;
        Ok(value.and_then(|value| value.parse().ok()))
    }

    /// Records the message budget for the link to `relay` (see
    /// [`Workspace::message_budget`]).
    pub fn save_message_budget(&self, relay: &str, budget: usize) -> Result<()> {
        self.lock()
            .store
            .write(|w| w.set_setting(&budget_setting(relay), &budget.to_string()))
    }

    /// The documents `relay` listed last (see [`crate::sync::listing`]), if it did; a kept
    /// listing that no longer reads counts as none (the relay sends it again).
    pub fn relay_listing(&self, relay: &str) -> Result<Option<HeldListing>> {
        let value = self.lock().store.setting(&listing_setting(relay))?;
        Ok(value.and_then(|value| serde_json::from_str(&value).ok()))
    }

    /// Keeps the listing `relay` sent (see [`Workspace::relay_listing`]); `None` forgets
    /// it.
    pub fn save_relay_listing(&self, relay: &str, listing: Option<&HeldListing>) -> Result<()> {
        let key = listing_setting(relay);
        let value = listing.map(|listing| serde_json::to_string(listing).unwrap_or_default());
        self.lock().store.write(|w| match &value {
            Some(value) => w.set_setting(&key, value),
            None => w.delete_setting(&key),
        })
    }

    /// The contents `relay` listed that this device could not take, by their SHA-256: a
    /// snapshot that is not an assessment it may store, or not what its name says (its
    /// document comes by sync messages instead), a criteria set that is not what the
    /// listing says (see [`crate::sync::listing`]). None is downloaded again.
    pub fn refused_contents(&self, relay: &str) -> Result<Vec<BlobHash>> {
        let value = self
            .lock()
            .store
            .setting(&refused_contents_setting(relay))?;
        Ok(value
            .and_then(|value| serde_json::from_str(&value).ok())
            .unwrap_or_default())
    }

    /// Remembers that the content named `hash` could not be taken (see
    /// [`Workspace::refused_contents`]), with the last [`REMEMBERED_REFUSALS`] others.
    pub fn refuse_content(&self, relay: &str, hash: &BlobHash) -> Result<()> {
        let mut refused = self.refused_contents(relay)?;
        if refused.contains(hash) {
            return Ok(());
        }
        refused.push(*hash);
        let excess = refused.len().saturating_sub(REMEMBERED_REFUSALS);
        refused.drain(..excess);
        let value = serde_json::to_string(&refused).unwrap_or_default();
        let key = refused_contents_setting(relay);
        self.lock().store.write(|w| w.set_setting(&key, &value))
    }

    /// The changes kept of a document being fetched, in the order they arrived (see
    /// [`Workspace::keep_fetching_chunk`]); empty if none.
    pub fn fetching_chunks(&self, id: &DocumentId) -> Result<Vec<Vec<u8>>> {
        self.lock().store.fetching_chunks(id)
    }

    /// The bytes kept of a document being fetched (its changes as they are stored, not
    /// compressed); 0 if none.
    pub fn fetching_bytes(&self, id: &DocumentId) -> Result<u64> {
        self.lock().store.fetching_bytes(id)
    }

    /// Keeps changes that arrived for a document this workspace does not have yet, so a
    /// fetch cut short resumes from them. They leave when the document is stored whole
    /// (in the same transaction) or [`Workspace::forget_fetching`] drops them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the document's kept changes would pass
    /// [`MAX_FETCHING_BYTES`]; nothing is kept then.
    pub fn keep_fetching_chunk(&self, id: &DocumentId, chunk: &[u8]) -> Result<()> {
        let mut inner = self.lock();
        let kept = inner.store.fetching_bytes(id)?;
        if kept + chunk.len() as u64 > MAX_FETCHING_BYTES {
            return Err(Error::InvalidInput(format!(
                "document {id} passes {MAX_FETCHING_BYTES} bytes before it reads whole"
            )));
        }
        inner.store.write(|w| w.append_fetching_chunk(id, chunk))
    }

    /// Drops what was kept of a document being fetched.
    pub fn forget_fetching(&self, id: &DocumentId) -> Result<()> {
        self.lock().store.write(|w| w.delete_fetching_chunks(id))
    }

    /// Drops what was kept of documents being fetched that are not in `wanted` (the
    /// relay no longer lists them: out of the device's scope now).
    pub fn forget_fetching_except(&self, wanted: &BTreeSet<DocumentId>) -> Result<()> {
        let mut inner = self.lock();
        let unwanted: Vec<DocumentId> = (inner.store.fetching_documents()?.into_iter())
            .filter(|id| !wanted.contains(id))
            .collect();
        if unwanted.is_empty() {
            return Ok(());
        }
        inner.store.write(|w| {
            unwanted
                .iter()
                .try_for_each(|id| w.delete_fetching_chunks(id))
        })
    }

    /// The bytes that arrived of a blob being downloaded (see
    /// [`Workspace::keep_fetching_blob`]); empty if none.
    pub fn fetching_blob(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        self.lock().store.fetching_blob(hash)
    }

    /// How many bytes arrived of a blob being downloaded; 0 if none.
    pub fn fetching_blob_len(&self, hash: &BlobHash) -> Result<u64> {
        self.lock().store.fetching_blob_len(hash)
    }

    /// Keeps bytes that arrived of a blob being downloaded, from byte `offset` on, right
    /// after those kept before, so a download cut short goes on from them. They leave
    /// when the blob is stored whole (in the same transaction) or
    /// [`Workspace::forget_fetching_blob`] drops them; the pieces of other blobs leave
    /// when they would pass [`MAX_FETCHING_BLOB_BYTES`] together.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `offset` is not where the kept bytes end (another
    /// download of the same blob kept some meanwhile), or if this blob alone would pass
    /// [`MAX_FETCHING_BLOB_BYTES`]; nothing is kept then.
    pub fn keep_fetching_blob(&self, hash: &BlobHash, offset: u64, piece: &[u8]) -> Result<()> {
        let mut inner = self.lock();
        let kept = inner.store.fetching_blob_len(hash)?;
        if kept != offset {
            return Err(Error::InvalidInput(format!(
                "blob {hash}: {kept} bytes are kept, not {offset}"
            )));
        }
        if kept + piece.len() as u64 > MAX_FETCHING_BLOB_BYTES {
            return Err(Error::InvalidInput(format!(
                "blob {hash} passes {MAX_FETCHING_BLOB_BYTES} bytes"
            )));
        }
        let all = inner.store.fetching_blob_bytes()? + piece.len() as u64;
        inner.store.write(|w| {
            if all > MAX_FETCHING_BLOB_BYTES {
                w.delete_other_fetching_blobs(hash)?;
            }
            w.append_fetching_blob(hash, piece)
        })
    }

    /// Drops what arrived of a blob being downloaded.
    pub fn forget_fetching_blob(&self, hash: &BlobHash) -> Result<()> {
        self.lock().store.write(|w| w.delete_fetching_blob(hash))
    }
}

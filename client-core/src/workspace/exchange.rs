//! Assessments between replicas: whole documents in and out, and the sync messages of a
//! session (see [`crate::sync`]).

use automerge::ReadDoc as _;

use super::{Workspace, now_ms};
use crate::blob::BlobHash;
use crate::doc::{Assessment, DocumentId};
use crate::error::{Error, Result};
use crate::sync::{SyncMessage, SyncState};

impl Workspace {
    /// The whole document, compacted, for sending to another replica.
    pub fn export_document(&self, id: &DocumentId) -> Result<Vec<u8>> {
        Ok(self.lock().doc(id)?.save())
    }

    /// Takes in a document (or changes to one) from another replica, storing what is new.
    /// Bytes that are not an assessment, or would expand past
    /// [`crate::doc::MAX_INFLATED_BYTES`], are refused and nothing is stored.
    pub fn import_document(&self, bytes: &[u8]) -> Result<DocumentId> {
        self.import(Assessment::load(bytes)?)
    }

    /// Stores document `id` downloaded whole as `relay`'s snapshot of it, named `hash`
    /// (see [`crate::sync::listing`]), and drops the pieces kept of the download. The
    /// sync with `relay` then starts from the snapshot's heads (the relay has all of
    /// them), so it asks only for what came after. Returns the changes it holds.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the bytes are not what `hash` names, or not an
    /// assessment with the id `id` (nothing is kept of them then); what
    /// [`Workspace::import_document`] refuses.
    pub fn import_snapshot(
        &self,
        relay: &str,
        id: &DocumentId,
        hash: &BlobHash,
        bytes: &[u8],
    ) -> Result<u64> {
        let assessment = (BlobHash::of(bytes) == *hash)
            .then(|| Assessment::load(bytes))
            .transpose();
        let assessment = match assessment {
            Ok(Some(assessment)) if assessment.id().ok() == Some(*id) => assessment,
            other => {
                self.forget_fetching_blob(hash)?;
                return Err(match other {
                    Err(e) => e,
                    _ => Error::InvalidInput(format!(
                        "the relay's snapshot {hash} is not assessment {id}"
                    )),
                });
            }
        };
        let changes = assessment.automerge().stats().num_changes;
        let mut state = SyncState::new();
        state.shared_heads = assessment.heads();
        self.import(assessment)?;
        self.save_sync_state(relay, id, &state.encode())?;
        self.forget_fetching_blob(hash)?;
        Ok(changes)
    }

    /// Stores `incoming`, an assessment read from elsewhere, or merges it into the stored
    /// one with its id.
    pub(crate) fn import(&self, incoming: Assessment) -> Result<DocumentId> {
        let id = incoming.id()?;
        let mut inner = self.lock();
        match inner.doc(&id) {
            Err(Error::UnknownDocument(_)) => inner.insert_new(incoming),
            Err(e) => Err(e),
            Ok(_) => {
                let limit = self.config.compact_after_chunks;
                inner.change(&id, &[], now_ms(), limit, None, |doc| doc.merge(&incoming))?;
                Ok(id)
            }
        }
    }

    /// Ids of every assessment in the workspace.
    pub fn document_ids(&self) -> Result<Vec<DocumentId>> {
        self.lock().store.document_ids()
    }

    /// Whether the workspace has this assessment.
    pub fn has_document(&self, id: &DocumentId) -> Result<bool> {
        let inner = self.lock();
        Ok(inner.docs.contains_key(id) || inner.store.has_document(id)?)
    }

    /// The current heads of an assessment.
    pub fn heads(&self, id: &DocumentId) -> Result<Vec<automerge::ChangeHash>> {
        Ok(self.lock().doc(id)?.heads())
    }

    /// Our next sync messages for a peer about an assessment, each carrying at most about
    /// `budget` bytes of changes (see [`crate::sync::generate_bounded`]); empty when there
    /// is nothing to send.
    pub fn generate_sync_messages(
        &self,
        id: &DocumentId,
        state: &mut SyncState,
        budget: usize,
    ) -> Result<Vec<SyncMessage>> {
        Ok(self.lock().doc(id)?.generate_sync_messages(state, budget))
    }

    /// Applies a peer's sync message; new changes are stored before this returns. Returns
    /// how many changes were new.
    pub fn receive_sync_message(
        &self,
        id: &DocumentId,
        state: &mut SyncState,
        message: SyncMessage,
    ) -> Result<u64> {
        let mut inner = self.lock();
        let limit = self.config.compact_after_chunks;
        inner.change(id, &[], now_ms(), limit, None, |doc| {
            let before = doc.automerge().stats().num_changes;
            doc.receive_sync_message(state, message)?;
            Ok(doc.automerge().stats().num_changes.saturating_sub(before))
        })
    }
}

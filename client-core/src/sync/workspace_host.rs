//! A phone's side of a sync: its workspace as a [`SyncHost`].

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use automerge::sync::{Message, State};
use automerge::{Automerge, Bundle, Change, ChangeHash, ReadDoc};

use super::{HostError, SyncHost};
use crate::Workspace;
use crate::doc::{
    Assessment, DocumentId, load_incremental_untrusted, receive_untrusted, untrusted,
};

/// Serves a workspace's assessments to a session, and fetches the ones it lacks.
///
/// A document being fetched arrives in bounded messages, each applying on its own; each
/// message's new changes are kept in the store as they arrive
/// ([`Workspace::keep_fetching_chunk`]), so a fetch cut short by a dropped link, the end of
/// a `sync` call or a restart of the app resumes from them: nothing that crossed the link
/// is asked for again. Once the document reads as a whole assessment with the id it was
/// asked under, it is stored as one (and what was kept of it dropped, in one transaction).
pub struct WorkspaceHost<'a> {
    workspace: &'a Workspace,
    fetching: HashMap<DocumentId, Automerge>,
    budget: usize,
    received: Received,
}

/// What a host took in from its peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Sync messages that carried changes.
    pub messages: u64,
    /// Their changes' bytes, as they came.
    pub bytes: u64,
    /// The changes they carried (counted in the chunks that parse on their own, as
    /// Automerge writes them: a change or a bundle per chunk).
    pub changes: u64,
    /// The changes of those that were new here; the others had come before.
    pub new_changes: u64,
}

impl<'a> WorkspaceHost<'a> {
    /// A host over `workspace`, sending messages of [`super::DEFAULT_MESSAGE_BUDGET`].
    pub fn new(workspace: &'a Workspace) -> Self {
        Self {
            workspace,
            fetching: HashMap::new(),
            budget: super::DEFAULT_MESSAGE_BUDGET,
            received: Received::default(),
        }
    }

    /// Sends messages carrying at most about `budget` bytes of changes from now on (at
    /// least [`super::MIN_MESSAGE_BUDGET`]): smaller ones for a link that keeps dropping.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget.max(super::MIN_MESSAGE_BUDGET);
    }

    /// What this host has taken in so far.
    pub fn received(&self) -> Received {
        self.received
    }

    fn stored(&self, doc: &DocumentId) -> Result<bool, HostError> {
        self.workspace.has_document(doc).map_err(failed)
    }

    /// The document being fetched as far as it has arrived, from the store the first
    /// time.
    fn arriving(&mut self, doc: &DocumentId) -> Result<&mut Automerge, HostError> {
        match self.fetching.entry(*doc) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => Ok(entry.insert(resume(self.workspace, doc)?)),
        }
    }

    /// Takes a message for a document not stored here yet.
    fn receive_fetching(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: Message,
        chunks: &[Vec<u8>],
    ) -> Result<u64, HostError> {
        let workspace = self.workspace;
        let arriving = self.arriving(doc)?;
        let before = arriving.stats().num_changes;
        if let Err(e) = receive_untrusted(arriving, state, message) {
            // What it holds may be broken: start this document over.
            self.fetching.remove(doc);
            workspace.forget_fetching(doc).map_err(failed)?;
            return Err(match e {
                crate::Error::Inflation(e) => HostError::Refused(e.to_string()),
                _ => HostError::Unavailable,
            });
        }
        let new = arriving.stats().num_changes.saturating_sub(before);
        // Complete yet? Checked in place: a partial document does not read as one.
        if Assessment::is_complete(arriving) {
            let whole = self.fetching.remove(doc).unwrap_or_default();
            return match Assessment::from_automerge(whole) {
                Ok(assessment) if assessment.id().ok() == Some(*doc) => {
                    // Taken in message by message, each bounded: stored as it is.
                    self.workspace.import(assessment).map_err(failed)?;
                    Ok(new)
                }
                _ => {
                    workspace.forget_fetching(doc).map_err(failed)?;
                    Err(HostError::Unavailable)
                }
            };
        }
        if new > 0
            && let Err(e) = workspace.keep_fetching_chunk(doc, &chunks.concat())
        {
            self.fetching.remove(doc);
            workspace.forget_fetching(doc).map_err(failed)?;
            return Err(match e {
                crate::Error::InvalidInput(reason) => HostError::Refused(reason),
                e => failed(e),
            });
        }
        Ok(new)
    }
}

/// What was kept of a document being fetched, loaded; an empty document if nothing was,
/// or if what was kept no longer loads (it is dropped then, and the fetch starts over).
fn resume(workspace: &Workspace, doc: &DocumentId) -> Result<Automerge, HostError> {
    let kept = workspace.fetching_chunks(doc).map_err(failed)?;
    let mut arriving = Automerge::new();
    if !kept.is_empty() && load_incremental_untrusted(&mut arriving, &kept.concat()).is_err() {
        workspace.forget_fetching(doc).map_err(failed)?;
        arriving = Automerge::new();
    }
    Ok(arriving)
}

/// How many changes a message's chunks carry: one per change chunk, a bundle's count for a
/// bundle; chunks that do not parse on their own count as none. Only for chunks Automerge
/// has taken (their inflation is checked).
fn changes_carried(chunks: &[Vec<u8>]) -> u64 {
    chunks
        .iter()
        .map(|chunk| {
            untrusted(|| {
                Ok(match Bundle::try_from(chunk.as_slice()) {
                    Ok(bundle) => bundle.iter_changes().count() as u64,
                    Err(_) => u64::from(Change::try_from(chunk.as_slice()).is_ok()),
                })
            })
            .unwrap_or(0)
        })
        .sum()
}

fn failed(e: crate::Error) -> HostError {
    HostError::Failed(e.to_string())
}

impl SyncHost for WorkspaceHost<'_> {
    fn has(&mut self, doc: &DocumentId) -> bool {
        self.stored(doc).unwrap_or(false)
    }

    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        if self.stored(doc).unwrap_or(false) {
            return self.workspace.heads(doc).ok();
        }
        self.arriving(doc).ok().map(|arriving| arriving.get_heads())
    }

    fn generate(&mut self, doc: &DocumentId, state: &mut State) -> Result<Vec<Message>, HostError> {
        if self.stored(doc)? {
            return self
                .workspace
                .generate_sync_messages(doc, state, self.budget)
                .map_err(failed);
        }
        let budget = self.budget;
        Ok(super::generate_bounded(self.arriving(doc)?, state, budget))
    }

    fn receive(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<(), HostError> {
        // A copy of what came (a message is bounded), to keep and count once it is taken.
        let chunks: Vec<Vec<u8>> = message.changes.iter().map(<[u8]>::to_vec).collect();
        let new = if self.stored(doc)? {
            match self.workspace.receive_sync_message(doc, state, message) {
                Ok(new) => new,
                // What the peer sent is not an assessment: refuse it, keep ours.
                Err(crate::Error::Malformed(_) | crate::Error::Automerge(_)) => {
                    return Err(HostError::Unavailable);
                }
                Err(crate::Error::Inflation(e)) => return Err(HostError::Refused(e.to_string())),
                Err(e) => return Err(failed(e)),
            }
        } else {
            self.receive_fetching(doc, state, message, &chunks)?
        };
        if !chunks.is_empty() {
            self.received.messages += 1;
            self.received.bytes += chunks.iter().map(|c| c.len() as u64).sum::<u64>();
            self.received.changes += changes_carried(&chunks);
            self.received.new_changes += new;
        }
        Ok(())
    }
}

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
    /// Bytes of changes in the messages generated since the transport last took them.
    change_bytes_generated: u64,
    change_bytes_sent: u64,
}

/// What a host took in from its peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// The bytes of the changes that came, as they came.
    pub bytes: u64,
    /// The changes that came (a change, a bundle or a whole document per chunk, as
    /// Automerge writes them).
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
            change_bytes_generated: 0,
            change_bytes_sent: 0,
        }
    }

    /// Sends messages carrying at most about `budget` bytes of changes from now on (at
    /// least [`super::MIN_MESSAGE_BUDGET`]): smaller ones for a link that keeps dropping.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget.max(super::MIN_MESSAGE_BUDGET);
    }

    /// The budget of this host's messages.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// What this host has taken in so far.
    pub fn received(&self) -> Received {
        self.received
    }

    /// The bytes of changes in the messages this host generated since the last call: those
    /// of the frames the session has queued since its outgoing frames were last taken.
    pub fn take_generated_change_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.change_bytes_generated)
    }

    /// Counts `bytes` of changes of this host's messages as written whole to the link
    /// (the transport knows).
    pub fn count_sent(&mut self, bytes: u64) {
        self.change_bytes_sent += bytes;
    }

    /// The bytes of changes of this host's messages written whole to the link so far.
    pub fn change_bytes_sent(&self) -> u64 {
        self.change_bytes_sent
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

    /// Takes a message for a document not stored here yet. On an error, what was kept of
    /// it is dropped and `state` starts over with it: it must not claim changes that
    /// were not kept.
    fn receive_fetching(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<u64, HostError> {
        let result = self.take_fetching(doc, state, message);
        if result.is_err() {
            self.fetching.remove(doc);
            self.workspace.forget_fetching(doc).map_err(failed)?;
            *state = State::new();
        }
        result
    }

    fn take_fetching(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<u64, HostError> {
        let workspace = self.workspace;
        let arriving = self.arriving(doc)?;
        let (before, heads) = (arriving.stats().num_changes, arriving.get_heads());
        receive_untrusted(arriving, state, message).map_err(|e| match e {
            crate::Error::Inflation(e) => HostError::Refused(e.to_string()),
            _ => HostError::Unavailable,
        })?;
        let new = arriving.stats().num_changes.saturating_sub(before);
        // Complete yet? Checked in place: a partial document does not read as one.
        if Assessment::is_complete(arriving) {
            let whole = self.fetching.remove(doc).unwrap_or_default();
            return match Assessment::from_automerge(whole) {
                // Taken in message by message, each bounded: stored as it is.
                Ok(assessment) if assessment.id().ok() == Some(*doc) => {
                    workspace.import(assessment).map_err(failed)?;
                    Ok(new)
                }
                _ => Err(HostError::Unavailable),
            };
        }
        if new > 0 {
            // What was applied (changes held back for a missing dependency included once
            // it came; duplicates not), so the store holds what `state` now claims.
            let applied = arriving.save_after(&heads);
            workspace
                .keep_fetching_chunk(doc, &applied)
                .map_err(|e| match e {
                    crate::Error::InvalidInput(reason) => HostError::Refused(reason),
                    e => failed(e),
                })?;
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

/// How many changes a message's chunks carry: one per change chunk, a bundle's or a whole
/// document's count for those; chunks that do not parse on their own count as none. Only
/// for chunks Automerge has taken (their inflation is checked).
fn changes_carried(chunks: &[Vec<u8>]) -> u64 {
    chunks
        .iter()
        .map(|chunk| {
            untrusted(|| {
                Ok(match Bundle::try_from(chunk.as_slice()) {
                    Ok(bundle) => bundle.iter_changes().count() as u64,
                    Err(_) => match Change::try_from(chunk.as_slice()) {
                        Ok(_) => 1,
                        Err(_) => Automerge::load(chunk).map_or(0, |d| d.stats().num_changes),
                    },
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
        let messages = if self.stored(doc)? {
            (self.workspace)
                .generate_sync_messages(doc, state, self.budget)
                .map_err(failed)?
        } else {
            let budget = self.budget;
            super::generate_bounded(self.arriving(doc)?, state, budget)
        };
        self.change_bytes_generated += (messages.iter())
            .flat_map(|message| message.changes.iter())
            .map(|chunk| chunk.len() as u64)
            .sum::<u64>();
        Ok(messages)
    }

    fn receive(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<(), HostError> {
        // A copy of what came (a message is bounded), to count once it is taken.
        let chunks: Vec<Vec<u8>> = message.changes.iter().map(<[u8]>::to_vec).collect();
        let new = if self.stored(doc)? {
            // The document is kept as it was on an error: so is the state.
            let before = state.clone();
            let received = self.workspace.receive_sync_message(doc, state, message);
            if received.is_err() {
                *state = before;
            }
            match received {
                Ok(new) => new,
                // What the peer sent is not an assessment: refuse it, keep ours.
                Err(crate::Error::Malformed(_) | crate::Error::Automerge(_)) => {
                    return Err(HostError::Unavailable);
                }
                Err(crate::Error::Inflation(e)) => return Err(HostError::Refused(e.to_string())),
                Err(e) => return Err(failed(e)),
            }
        } else {
            self.receive_fetching(doc, state, message)?
        };
        if !chunks.is_empty() {
            self.received.bytes += chunks.iter().map(|c| c.len() as u64).sum::<u64>();
            self.received.changes += changes_carried(&chunks);
            self.received.new_changes += new;
        }
        Ok(())
    }
}

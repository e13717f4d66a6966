//! A phone's side of a sync: its workspace as a [`SyncHost`].

use std::collections::HashMap;

use automerge::sync::{Message, State};
use automerge::{Automerge, ChangeHash};

use super::{HostError, SyncHost};
use crate::Workspace;
use crate::doc::{Assessment, DocumentId, receive_untrusted};

/// Serves a workspace's assessments to a session, and fetches the ones it lacks: a
/// fetched document is kept in memory until it reads as a whole assessment with the id it
/// was asked under, then stored.
pub struct WorkspaceHost<'a> {
    workspace: &'a Workspace,
    fetching: HashMap<DocumentId, Automerge>,
    budget: usize,
}

impl<'a> WorkspaceHost<'a> {
    /// A host over `workspace`, sending messages of [`super::DEFAULT_MESSAGE_BUDGET`].
    pub fn new(workspace: &'a Workspace) -> Self {
        Self {
            workspace,
            fetching: HashMap::new(),
            budget: super::DEFAULT_MESSAGE_BUDGET,
        }
    }

    /// Sends messages carrying at most about `budget` bytes of changes from now on (at
    /// least [`super::MIN_MESSAGE_BUDGET`]): smaller ones for a link that keeps dropping.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget.max(super::MIN_MESSAGE_BUDGET);
    }

    fn stored(&self, doc: &DocumentId) -> Result<bool, HostError> {
        self.workspace.has_document(doc).map_err(failed)
    }
}

fn failed(e: crate::Error) -> HostError {
    HostError::Failed(e.to_string())
}

impl SyncHost for WorkspaceHost<'_> {
    fn has(&mut self, doc: &DocumentId) -> bool {
        self.stored(doc).unwrap_or(false)
    }

    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        match self.fetching.get(doc) {
            Some(fetching) => Some(fetching.get_heads()),
            None => self.workspace.heads(doc).ok(),
        }
    }

    fn generate(&mut self, doc: &DocumentId, state: &mut State) -> Result<Vec<Message>, HostError> {
        if self.stored(doc)? {
            return self
                .workspace
                .generate_sync_messages(doc, state, self.budget)
                .map_err(failed);
        }
        let fetching = self.fetching.entry(*doc).or_default();
        Ok(super::generate_bounded(fetching, state, self.budget))
    }

    fn receive(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<(), HostError> {
        if self.stored(doc)? {
            return match self.workspace.receive_sync_message(doc, state, message) {
                Ok(()) => Ok(()),
                // What the peer sent is not an assessment: refuse it, keep ours.
                Err(crate::Error::Malformed(_) | crate::Error::Automerge(_)) => {
                    Err(HostError::Unavailable)
                }
                Err(crate::Error::Inflation(e)) => Err(HostError::Refused(e.to_string())),
                Err(e) => Err(failed(e)),
            };
        }
        let fetching = self.fetching.entry(*doc).or_default();
        if let Err(e) = receive_untrusted(fetching, state, message) {
            // What it holds may be broken: start this document over.
            self.fetching.remove(doc);
            return Err(match e {
                crate::Error::Inflation(e) => HostError::Refused(e.to_string()),
                _ => HostError::Unavailable,
            });
        }
        // Complete yet? A partial document does not read as an assessment.
        match Assessment::from_automerge(fetching.clone()) {
            Ok(assessment) if assessment.id().ok() == Some(*doc) => {
                // Taken in message by message, each bounded: stored as it is.
                self.workspace.import(assessment).map_err(failed)?;
                self.fetching.remove(doc);
                Ok(())
            }
            Ok(_) => Err(HostError::Unavailable),
            Err(_) => Ok(()),
        }
    }
}

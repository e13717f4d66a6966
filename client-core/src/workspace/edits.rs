//! Edits an officer or a supervisor makes to an assessment: each checked by the change
//! policy as the signed-in user and stored before it returns.

use super::{Workspace, now_ms};
use crate::blob::{BlobHash, BlobKind};
use crate::doc::{Assessment, DocumentId, FieldValue};
use crate::error::Result;
use crate::model::{Action, Author, Status};
use crate::policy::Writer;

impl Workspace {
    /// A lifecycle step (see [`Assessment::step`]).
    pub fn step(
        &self,
        id: &DocumentId,
        criterion: &str,
        action: Action,
        reason: Option<&str>,
    ) -> Result<Status> {
        self.edit(id, |doc, by, now| {
            doc.step(criterion, action, reason, by, now)
        })
    }

    /// Replaces a criterion's note.
    pub fn set_note(&self, id: &DocumentId, criterion: &str, text: &str) -> Result<()> {
        self.edit(id, |doc, by, now| doc.set_note(criterion, text, by, now))
    }

    /// Changes a photo's caption.
    pub fn set_caption(
        &self,
        id: &DocumentId,
        criterion: &str,
        photo: &BlobHash,
        caption: &str,
    ) -> Result<()> {
        self.edit(id, |doc, by, now| {
            doc.set_caption(criterion, photo, caption, by, now)
        })
    }

    /// Confirms a carried-over photo.
    pub fn confirm_evidence(
        &self,
        id: &DocumentId,
        criterion: &str,
        photo: &BlobHash,
    ) -> Result<()> {
        self.edit(id, |doc, by, now| {
            doc.confirm_evidence(criterion, photo, by, now)
        })
    }

    /// Detaches a photo (kept in the document, flagged).
    pub fn remove_evidence(
        &self,
        id: &DocumentId,
        criterion: &str,
        photo: &BlobHash,
    ) -> Result<()> {
        self.edit(id, |doc, by, now| {
            doc.remove_evidence(criterion, photo, by, now)
        })
    }

    /// Sets an indicator of this period.
    pub fn set_indicator(&self, id: &DocumentId, key: &str, value: i64) -> Result<()> {
        self.edit(id, |doc, by, now| doc.set_indicator(key, value, by, now))
    }

    /// Adds a comment.
    pub fn add_comment(&self, id: &DocumentId, criterion: Option<&str>, text: &str) -> Result<()> {
        self.edit(id, |doc, by, now| doc.add_comment(criterion, text, by, now))
    }

    /// Settles a conflict with the chosen value.
    pub fn settle(&self, id: &DocumentId, path: &str, value: FieldValue) -> Result<()> {
        self.edit(id, |doc, by, now| doc.settle(path, value, by, now))
    }

    pub(super) fn edit<T>(
        &self,
        id: &DocumentId,
        f: impl FnOnce(&mut Assessment, &Author, i64) -> Result<T>,
    ) -> Result<T> {
        self.edit_with_blobs(id, &[], f)
    }

    /// Applies `f` as the signed-in user and stores the change together with `blobs` in
    /// one transaction, if the change policy lets the user make it (the relay would
    /// refuse it otherwise): [`Error::Refused`] and nothing changed if not.
    pub(super) fn edit_with_blobs<T>(
        &self,
        id: &DocumentId,
        blobs: &[(BlobHash, BlobKind, &[u8])],
        f: impl FnOnce(&mut Assessment, &Author, i64) -> Result<T>,
    ) -> Result<T> {
        let mut inner = self.lock();
        let author = inner.author(&self.device_id)?;
        let writer = Writer {
            user: &author.user,
            role: inner.role,
        };
        let now = now_ms();
        let limit = self.config.compact_after_chunks;
        inner.change(id, blobs, now, limit, Some(&writer), |doc| {
            f(doc, &author, now)
        })
    }
}

//! The one way changes get into stored documents: [`Intake`].
//!
//! Every path that takes changes in (a connection's sync, a new document's push, two
//! pushes of the same new assessment merged, the console's reviews) goes through it:
//! the changes are made on a copy, checked by the core's change policy
//! ([`wardcheck_core::policy`]) against the writer's role, stored with the verdicts of
//! the evidence records they add (one transaction, `synchronous=FULL`), and only then is
//! the copy put in place of the shared document. No connection ever sees a change that
//! was refused or is not stored; a refusal is logged with the document, user, device and
//! reason, and counted in `/metrics`.

use std::sync::Arc;

use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::{Assessment, DocumentId, Evidence};
use wardcheck_core::policy::{self, Refusal, Writer};

use super::cache::Stored;
use super::{DocCache, DocError, SharedDoc};

/// The most a document may take in the store, in bytes of changes (the 10,000-change
/// assessment of the benchmarks takes 2.9 MB as separate chunks, 0.3 MB compacted).
pub const DOCUMENT_BYTES: usize = 16 << 20;
/// The most assessments one ward may have (one a period).
pub const WARD_DOCUMENTS: usize = 50;
use crate::metrics::Metrics;
use crate::store::{EvidenceCheck, RelayStore, StoreError, Verdict};

/// Takes changes into stored documents (see the module docs).
pub struct Intake {
    store: Arc<RelayStore>,
    docs: Arc<DocCache>,
    metrics: Arc<Metrics>,
    /// [`DOCUMENT_BYTES`] (smaller in tests).
    document_bytes: usize,
}

impl Intake {
    /// An intake over `store`, putting what it takes into `docs`' shared copies.
    pub fn new(store: Arc<RelayStore>, docs: Arc<DocCache>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            docs,
            metrics,
            document_bytes: DOCUMENT_BYTES,
        }
    }

    /// Changes stored document `id` (open as `shared`) as `writer`, on `device` (for the
    /// logs): `f` gets a copy. If the copy then holds new changes, they must pass the
    /// change policy; they are stored with the verdicts of the evidence records they add,
    /// and only then does the copy replace the shared document. On any error nothing
    /// changes. A document whose chunks come to outweigh its snapshot is compacted then
    /// (what devices that lack it download is its snapshot).
    pub fn change<T>(
        &self,
        id: &DocumentId,
        shared: &SharedDoc,
        writer: &Writer,
        device: &str,
        f: impl FnOnce(&mut Assessment) -> wardcheck_core::Result<T>,
    ) -> Result<T, DocError> {
        let mut doc = shared.lock();
        let before = doc.heads();
        let mut copy = doc.clone();
        let out = f(&mut copy)?;
        if copy.heads() == before {
            return Ok(out);
        }
        let admitted = policy::check(&copy, &before, writer)
            .map_err(|refusal| self.refused(id, writer, device, refusal))?;
        let chunk = copy.save_after(&before);
        let size = shared.stored_bytes() + chunk.len();
        if size > self.document_bytes {
            let refusal = Refusal::TooLarge {
                what: "the document (bytes)",
                size,
                limit: self.document_bytes,
            };
            return Err(self.refused(id, writer, device, refusal));
        }
        let (blobs, checks) = self.verdicts(&admitted.evidence)?;
        let seq = self
            .store
            .append_chunk(id, &chunk, &copy.heads_key(), &blobs, &checks)?;
        shared.stored_more(chunk.len());
        *doc = copy;
        shared.compact_if_due(&self.store, id, &doc, seq);
        Ok(out)
    }

    /// Stores `doc`, an assessment of ward `unit` new to the relay, pushed by `writer` on
    /// `device` (the caller has checked its id and scope): it must start with the
    /// deterministic genesis and pass the change policy. If another device pushed the
    /// same assessment meanwhile (created offline on both), `doc` is merged into it.
    pub fn add(
        &self,
        id: &DocumentId,
        unit: &str,
        doc: Assessment,
        writer: &Writer,
        device: &str,
    ) -> Result<(), DocError> {
        let admitted = policy::check_new(&doc, writer)
            .map_err(|refusal| self.refused(id, writer, device, refusal))?;
        let documents = self.store.ward_document_count(unit)?;
        if documents >= WARD_DOCUMENTS && self.store.document_unit(id)?.is_none() {
            let refusal = Refusal::TooLarge {
                what: "the ward (assessments)",
                size: documents + 1,
                limit: WARD_DOCUMENTS,
            };
            return Err(self.refused(id, writer, device, refusal));
        }
        let (blobs, checks) = self.verdicts(&admitted.evidence)?;
        let snapshot = doc.save();
        let inserted =
            self.store
                .insert_document(id, unit, &snapshot, &doc.heads_key(), &blobs, &checks);
        match inserted {
            Ok(()) => {
                let stored = (snapshot.len(), Stored::compacted(&snapshot));
                self.docs.insert(*id, unit.to_owned(), doc, stored);
                Ok(())
            }
            Err(StoreError::Duplicate(_)) => {
                let shared = self.docs.open(&self.store, id)?.ok_or(DocError::NotFound)?;
                self.change(id, &shared, writer, device, |stored| stored.merge(&doc))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn refused(
        &self,
        id: &DocumentId,
        writer: &Writer,
        device: &str,
        refusal: Refusal,
    ) -> DocError {
        tracing::warn!(
            document = %id,
            user = writer.user,
            device,
            reason = %refusal,
            "refused changes"
        );
        self.metrics.refused(refusal.code());
        DocError::Refused(refusal)
    }

    /// The blobs new evidence records reference, and each record's verdict: its
    /// signature checked against the key it names, and that key against the keys
    /// registered for the officer's devices. A record that fails stays, flagged.
    fn verdicts(
        &self,
        evidence: &[(String, Evidence)],
    ) -> Result<(Vec<BlobHash>, Vec<EvidenceCheck>), DocError> {
        let mut blobs = Vec::new();
        let mut checks = Vec::new();
        for (criterion, record) in evidence {
            let verdict = if record.verify(&record.device_key, None).is_err() {
                Verdict::BadSignature
            } else if self
                .store
                .key_belongs_to(&record.device_key.to_string(), &record.officer)?
            {
                Verdict::Verified
            } else {
                Verdict::UnknownDevice
            };
            if verdict != Verdict::Verified {
                tracing::warn!("an evidence record failed its signature check: {verdict:?}");
            }
            blobs.extend([record.photo, record.thumbnail]);
            checks.push(EvidenceCheck {
                criterion: criterion.clone(),
                photo: record.photo,
                verdict,
            });
        }
        Ok((blobs, checks))
    }
}

#[cfg(test)]
mod tests {
    use wardcheck_core::model::{Author, Role};

    use super::*;
    use crate::documents::testing::stored;
    use crate::routes::testing::TestRelay;

    const SUPERVISOR: Writer<'static> = Writer {
        user: "sup-city",
        role: Role::Supervisor,
    };

    const OFFICER: Writer<'static> = Writer {
        user: "officer-a",
        role: Role::Officer,
    };

    fn note(shared: &SharedDoc) -> String {
        shared.read(|d| d.criterion_view("c01").unwrap().note)
    }

    #[tokio::test]
    async fn a_change_the_store_fails_to_write_is_never_seen() {
        let relay = TestRelay::new();
        let state = &relay.state;
        let id = stored(&state.store, "ngo-may");
        let shared = state.docs.open(&state.store, &id).unwrap().unwrap();
        // The disk fails every chunk from now on.
        let db = rusqlite::Connection::open(state.config.database_path()).unwrap();
        db.execute_batch(
            "CREATE TRIGGER full_disk BEFORE INSERT ON document_chunks
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
        let by = Author::new("sup-city", "console");
        let failed = state
            .intake
            .change(&id, &shared, &SUPERVISOR, "console", |doc| {
                doc.set_note("c01", "never stored", &by, 1)
            });
        assert!(matches!(failed, Err(DocError::Store(_))), "{failed:?}");
        // Whoever holds the document next sees what is stored, nothing more.
        assert_eq!(note(&shared), "");
        db.execute_batch("DROP TRIGGER full_disk").unwrap();
        state
            .intake
            .change(&id, &shared, &SUPERVISOR, "console", |doc| {
                doc.set_note("c01", "stored", &by, 2)
            })
            .unwrap();
        assert_eq!(note(&shared), "stored");
    }

    #[tokio::test]
    async fn chunks_that_outweigh_the_snapshot_are_compacted_into_it() {
        let relay = TestRelay::new();
        let state = &relay.state;
        let officer = OFFICER;
        let by = Author::new("officer-a", "phone");
        let id = stored(&state.store, "ngo-may");
        let shared = state.docs.open(&state.store, &id).unwrap().unwrap();
        let first = state.store.document(&id).unwrap().unwrap().snapshot;
        let mut appended = 0;
        for n in 0..200 {
            let note = format!("{n}: {}", "kiểm tra ".repeat(30));
            let before = shared.lock().heads();
            state
                .intake
                .change(&id, &shared, &officer, "phone", |doc| {
                    doc.set_note("c01", &note, &by, n)
                })
                .unwrap();
            appended += shared.lock().save_after(&before).len();
        }
        let stored = state.store.document(&id).unwrap().unwrap();
        assert_ne!(stored.snapshot, first);
        let tail: usize = stored.chunks.iter().map(Vec::len).sum();
        assert!(tail <= stored.snapshot.len().max(16 << 10), "{tail}");
        // The snapshot and the chunks after it are the document, and the bound still
        // counts every byte that came.
        let mut loaded = automerge::Automerge::load(&stored.snapshot).unwrap();
        for chunk in &stored.chunks {
            loaded.load_incremental(chunk).unwrap();
        }
        assert_eq!(loaded.get_heads(), shared.lock().heads());
        assert!(shared.stored_bytes() >= first.len() + appended);
    }

    #[tokio::test]
    async fn a_document_and_a_ward_hold_a_bounded_amount() {
        let relay = TestRelay::new();
        let state = &relay.state;
        let officer = OFFICER;
        let by = Author::new("officer-a", "phone");
        // A document grows to its bound, not past it.
        let small = Intake {
            document_bytes: 40_000,
            ..Intake::new(
                state.store.clone(),
                state.docs.clone(),
                state.metrics.clone(),
            )
        };
        let id = stored(&state.store, "ngo-may");
        let shared = state.docs.open(&state.store, &id).unwrap().unwrap();
        let mut refused = None;
        for n in 0..200 {
            let note: String = (0..2_000)
                .map(|i| char::from(b'a' + ((n * 7 + i * i) % 26) as u8))
                .collect();
            if let Err(e) = small.change(&id, &shared, &officer, "phone", |doc| {
                doc.set_note("c01", &note, &by, n as i64)
            }) {
                refused = Some(e);
                break;
            }
        }
        assert!(
            matches!(refused, Some(DocError::Refused(Refusal::TooLarge { .. }))),
            "{refused:?}"
        );
        assert!(shared.stored_bytes() <= 40_000);
        // A ward's assessments: one a period, a bounded number.
        for n in 0..WARD_DOCUMENTS - 1 {
            let doc = crate::documents::testing::assessment_for("ngo-may", &format!("p{n}"));
            let id = doc.id().unwrap();
            state
                .intake
                .add(&id, "ngo-may", doc, &officer, "phone")
                .unwrap();
        }
        let doc = crate::documents::testing::assessment_for("ngo-may", "one-too-many");
        let id = doc.id().unwrap();
        let full = state.intake.add(&id, "ngo-may", doc, &officer, "phone");
        assert!(
            matches!(full, Err(DocError::Refused(Refusal::TooLarge { .. }))),
            "{full:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_change_is_counted_and_changes_nothing() {
        let relay = TestRelay::new();
        let state = &relay.state;
        let id = stored(&state.store, "ngo-may");
        let shared = state.docs.open(&state.store, &id).unwrap().unwrap();
        let officer = Writer {
            user: "officer-a",
            role: Role::Officer,
        };
        let by = Author::new("officer-a", "phone");
        let refused = state.intake.change(&id, &shared, &officer, "phone", |doc| {
            doc.set_note("c01", "x".repeat(20_000).as_str(), &by, 1)
        });
        assert!(
            matches!(refused, Err(DocError::Refused(Refusal::TooLarge { .. }))),
            "{refused:?}"
        );
        assert_eq!(note(&shared), "");
        assert!(
            state
                .metrics
                .render()
                .contains("wardcheck_changes_refused_total{reason=\"too_large\"} 1")
        );
    }
}

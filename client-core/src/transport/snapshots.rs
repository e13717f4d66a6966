//! Documents the phone lacks, downloaded as the relay's snapshot of them: the listing
//! names each one's snapshot by its SHA-256 ([`crate::sync::listing`]), the download
//! resumes with `Range` from the bytes a cut one brought, and the document's sync then
//! starts from the snapshot's heads, so a fetch moves its document's compressed bytes
//! about once however often the link drops (a fetch by sync messages moves a history
//! cut into small bundles, which compress far worse, and loses the messages a cut
//! interrupts).

use std::collections::BTreeSet;

use super::download::download;
use super::{Phase, Relay, SyncObserver, SyncProgress, SyncReport, TransportError};
use crate::blob::BlobHash;
use crate::doc::DocumentId;
use crate::sync::listing::{ListedDocument, ListedSnapshot};
use crate::{MAX_FETCHING_BYTES, Workspace};

/// Downloads and stores the snapshots of the documents the listing held for `relay`
/// names that this phone lacks, each retried as `relay` says. A snapshot the relay has
/// replaced since (a compaction) or no longer shares is skipped: the next listing says
/// what to fetch instead. A snapshot this phone cannot take (not what its name says, not
/// the assessment listed, a download the relay refuses) is remembered as refused, and
/// its document comes by sync messages instead; one the relay is too busy to serve (503)
/// waits for the next sync. Only a link that gives out, a cancel or a local failure ends
/// the call with an error. Returns how many documents the sync
/// connection now takes up (stored here, or to fetch by sync messages).
pub(super) fn fetch_missing(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    report: &mut SyncReport,
) -> Result<usize, TransportError> {
    let Some(listing) = workspace.relay_listing(&relay.base)? else {
        return Ok(0);
    };
    let refused = workspace.refused_contents(&relay.base)?;
    let mut here: BTreeSet<DocumentId> = workspace.document_ids()?.into_iter().collect();
    let missing: Vec<(DocumentId, ListedSnapshot)> = (listing.documents.iter())
        .filter_map(|listed| Some((listed.id, listed.snapshot?)))
        .filter(|(id, snapshot)| !refused.contains(&snapshot.hash) && here.insert(*id))
        .collect();
    let mut taken_up = 0;
    for (n, (id, snapshot)) in missing.iter().enumerate() {
        if observer.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        let hash = &snapshot.hash;
        let path = format!("/v1/documents/{id}/snapshot/{hash}");
        let limit = snapshot.bytes.min(MAX_FETCHING_BYTES);
        let received = &mut report.snapshot_bytes_received;
        let downloaded = relay.retry(observer, || {
            match download(workspace, relay, observer, (hash, &path), limit, received) {
                // Replaced since the listing, or out of scope now: not retried.
                Err(TransportError::Http {
                    status: 403 | 409, ..
                }) => Ok(None),
                other => other.map(Some),
            }
        });
        let taken = match downloaded {
            Ok(None) => {
                workspace.forget_fetching_blob(hash)?;
                continue;
            }
            Ok(Some(bytes)) => workspace
                .import_snapshot(&relay.base, id, hash, &bytes)
                .map_err(TransportError::from),
            Err(e) => Err(e),
        };
        match taken {
            Ok(changes) => {
                report.snapshots_fetched += 1;
                report.changes_received += changes;
                report.changes_new += changes;
            }
            // The relay busy or failing: this document waits for the next sync.
            Err(e @ TransportError::Http { .. }) if e.is_transient() => {
                tracing::warn!(document = %id, "the relay's snapshot {hash}: {e}");
                continue;
            }
            Err(e) if !refusable(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(document = %id, "the relay's snapshot {hash} is refused: {e}");
                workspace.refuse_content(&relay.base, hash)?;
            }
        }
        taken_up += 1;
        observer.progress(&SyncProgress {
            phase: Phase::Documents,
            documents_done: n + 1,
            documents_total: missing.len(),
            bytes_sent: 0,
            bytes_total: 0,
        });
    }
    Ok(taken_up)
}

/// Whether a snapshot that failed so is refused (its document then comes by sync
/// messages), rather than the failure ending the sync: not for a link that gave out, a
/// cancel or a failure of this device's own store.
fn refusable(e: &TransportError) -> bool {
    match e {
        TransportError::Core(core) => !matches!(
            core,
            crate::Error::Store(_)
                | crate::Error::Io(_)
                | crate::Error::StoreTooNew { .. }
                | crate::Error::Locked
        ),
        TransportError::Http { .. } | TransportError::Protocol(_) => !e.is_transient(),
        _ => false,
    }
}

/// The ids of the `listed` documents a sync session fetches: those this phone has
/// (`here`), those the relay serves no snapshot of, and those whose snapshot this phone
/// refused (the others come by [`fetch_missing`]).
pub(super) fn synced_by_session<'a>(
    listed: &'a [ListedDocument],
    here: &'a BTreeSet<DocumentId>,
    refused: &'a [BlobHash],
) -> impl Iterator<Item = DocumentId> + 'a {
    (listed.iter())
        .filter(|listed| match &listed.snapshot {
            Some(snapshot) => here.contains(&listed.id) || refused.contains(&snapshot.hash),
            None => true,
        })
        .map(|listed| listed.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HeldListing;
    use crate::transport::RetryPolicy;
    use crate::transport::scripted::{answer, scripted_relay};

    /// A workspace holding `relay`'s listing of one document with a snapshot named `hash`
    /// of `bytes`.
    fn listing_one(relay: &Relay, hash: BlobHash, bytes: u64) -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let listing = HeldListing {
            tag: "00".into(),
            documents: vec![ListedDocument {
                id: DocumentId::for_assessment("ngo-may", "2025"),
                bytes,
                snapshot: Some(ListedSnapshot { hash, bytes }),
            }],
            sets: Vec::new(),
        };
        ws.save_relay_listing(&relay.base, Some(&listing)).unwrap();
        (dir, ws)
    }

    #[test]
    fn a_replaced_snapshot_is_asked_for_once_and_skipped() {
        let (relay, asked) = scripted_relay(|_| answer("409 Conflict", "", 0, b""));
        let relay = relay.with_retry(RetryPolicy {
            attempts: 3,
            base_delay: std::time::Duration::from_millis(1),
            ..RetryPolicy::default()
        });
        let (_dir, ws) = listing_one(&relay, BlobHash::of(b"old"), 10);
        let mut report = SyncReport::default();
        assert_eq!(fetch_missing(&ws, &relay, &(), &mut report).unwrap(), 0);
        assert_eq!(asked.lock().unwrap().len(), 1, "a 409 is not retried");
        assert!(ws.refused_contents(&relay.base).unwrap().is_empty());
    }

    #[test]
    fn a_snapshot_that_is_not_what_its_name_says_is_refused_and_synced_instead() {
        let (relay, asked) = scripted_relay(|_| answer("200 OK", "", 5, b"bogus"));
        let hash = BlobHash::of(b"the real one");
        let (_dir, ws) = listing_one(&relay, hash, 5);
        let mut report = SyncReport::default();
        // The document is taken up by the sync connection instead; the call goes on.
        assert_eq!(fetch_missing(&ws, &relay, &(), &mut report).unwrap(), 1);
        assert_eq!(ws.refused_contents(&relay.base).unwrap(), [hash]);
        assert_eq!(
            (report.snapshots_fetched, report.snapshot_bytes_received),
            (0, 5)
        );
        let listing = ws.relay_listing(&relay.base).unwrap().unwrap();
        let here = BTreeSet::new();
        let refused = ws.refused_contents(&relay.base).unwrap();
        let synced: Vec<_> = synced_by_session(&listing.documents, &here, &refused).collect();
        assert_eq!(synced, [listing.documents[0].id]);
        // Not asked for again.
        assert_eq!(fetch_missing(&ws, &relay, &(), &mut report).unwrap(), 0);
        assert_eq!(asked.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_relay_sending_more_than_it_listed_is_read_no_further() {
        let big = vec![7u8; 100_000];
        let (relay, _) = scripted_relay(move |_| answer("200 OK", "", big.len(), &big));
        let (_dir, ws) = listing_one(&relay, BlobHash::of(b"x"), 1_000);
        let mut report = SyncReport::default();
        fetch_missing(&ws, &relay, &(), &mut report).unwrap();
        assert_eq!(report.snapshot_bytes_received, 1_000);
    }
}

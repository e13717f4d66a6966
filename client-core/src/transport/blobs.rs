//! The photos' part of a sync, over HTTP: uploads the relay lacks (resumed where a cut
//! one stopped, never one it has), thumbnails of others' photos, full photos on demand
//! (downloads resumed by `Range` from the bytes a cut one kept).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::download::download;
use super::{Phase, Relay, SyncObserver, SyncProgress, SyncReport, TransportError, http_error};
use crate::blob::{BlobHash, BlobKind};
use crate::{MAX_FETCHING_BLOB_BYTES, Workspace};

#[derive(Serialize)]
struct MissingRequest {
    hashes: Vec<BlobHash>,
}

#[derive(Deserialize)]
struct MissingResponse {
    missing: Vec<BlobHash>,
}

pub(super) fn upload_blobs(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    report: &mut SyncReport,
) -> Result<(), TransportError> {
    let pending = workspace.pending_uploads()?;
    if pending.is_empty() {
        return Ok(());
    }
    let (url, bearer) = (relay.url("/v1/blobs/missing"), relay.bearer());
    let request = MissingRequest {
        hashes: pending.iter().map(|b| b.hash).collect(),
    };
    let missing: BTreeSet<BlobHash> = relay
        .http(observer, move |agent| {
            let mut response = agent
                .post(&url)
                .header("Authorization", &bearer)
                .send_json(&request)?;
            match response.status().as_u16() {
                200 => Ok(response.body_mut().read_json::<MissingResponse>()?.missing),
                status => Err(http_error(status, &mut response)),
            }
        })?
        .into_iter()
        .collect();
    let bytes_total: u64 = pending
        .iter()
        .filter(|b| missing.contains(&b.hash))
        .map(|b| b.size)
        .sum();
    let mut bytes_sent = 0;
    for blob in pending {
        if observer.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        if !missing.contains(&blob.hash) {
            // The relay has it (another device sent the same photo): never send it.
            workspace.mark_uploaded(&blob.hash)?;
            report.blobs_already_there += 1;
            continue;
        }
        let Some(bytes) = workspace.blob(&blob.hash)? else {
            continue;
        };
        let sent = upload_one(relay, observer, &blob.hash, bytes)?;
        workspace.mark_uploaded(&blob.hash)?;
        report.blobs_uploaded += 1;
        report.bytes_uploaded += sent;
        bytes_sent += blob.size;
        observer.progress(&SyncProgress {
            phase: Phase::Uploads,
            documents_done: report.documents_in_sync,
            documents_total: report.documents_in_sync,
            bytes_sent,
            bytes_total,
        });
    }
    Ok(())
}

/// Uploads one blob, resuming where an interrupted upload stopped. Returns the bytes sent.
fn upload_one(
    relay: &Relay,
    observer: &dyn SyncObserver,
    hash: &BlobHash,
    bytes: Vec<u8>,
) -> Result<u64, TransportError> {
    let (url, bearer) = (relay.url(&format!("/v1/blobs/{hash}")), relay.bearer());
    relay.http(observer, move |agent| {
        let mut head = agent.head(&url).header("Authorization", &bearer).call()?;
        let offset: usize = match head.status().as_u16() {
            200 => return Ok(0),
            404 => head
                .headers()
                .get("Upload-Offset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .filter(|&n: &usize| n <= bytes.len())
                .unwrap_or(0),
            status => return Err(http_error(status, &mut head)),
        };
        let rest = &bytes[offset..];
        let mut response = agent
            .put(&url)
            .header("Authorization", &bearer)
            .header("Upload-Offset", &offset.to_string())
            .header("Upload-Length", &bytes.len().to_string())
            .header("Content-Type", "application/octet-stream")
            .send(rest)?;
        match response.status().as_u16() {
            200 | 201 | 204 => Ok(rest.len() as u64),
            status => Err(http_error(status, &mut response)),
        }
    })
}

pub(super) fn fetch_thumbnails(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    report: &mut SyncReport,
) -> Result<(), TransportError> {
    for id in workspace.document_ids()? {
        for criterion in workspace.view(&id)?.criteria {
            for evidence in criterion.evidence {
                if observer.is_cancelled() {
                    return Err(TransportError::Cancelled);
                }
                if workspace.blob_info(&evidence.thumbnail)?.is_none() {
                    let thumbnail = &evidence.thumbnail;
                    let received = &mut report.thumbnail_bytes_received;
                    match fetch(
                        workspace,
                        relay,
                        observer,
                        thumbnail,
                        BlobKind::Thumbnail,
                        received,
                    ) {
                        Ok(_) => report.thumbnails_fetched += 1,
                        // Not uploaded yet by the phone that took it: next sync.
                        Err(TransportError::Http { status: 404, .. }) => {
                            report.thumbnails_not_yet_on_relay += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Fetches a full evidence photo from the relay (on demand), verifies it and keeps it.
pub fn fetch_photo(
    workspace: &Workspace,
    relay: &Relay,
    photo: &BlobHash,
) -> Result<Vec<u8>, TransportError> {
    if let Some(bytes) = workspace.blob(photo)? {
        return Ok(bytes);
    }
    relay.retry(&(), || {
        fetch(workspace, relay, &(), photo, BlobKind::Evidence, &mut 0)
    })
}

/// Fetches a blob, going on from the bytes an earlier, cut download kept (see
/// [`download`]), and stores it. Adds the bytes that came to `received`.
fn fetch(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    hash: &BlobHash,
    kind: BlobKind,
    received: &mut u64,
) -> Result<Vec<u8>, TransportError> {
    let path = format!("/v1/blobs/{hash}");
    let limit = MAX_FETCHING_BLOB_BYTES;
    let bytes = download(workspace, relay, observer, (hash, &path), limit, received)?;
    workspace.store_fetched_blob(hash, kind, &bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::scripted::{answer, scripted_relay};

    fn photo() -> (Vec<u8>, BlobHash) {
        let bytes: Vec<u8> = (0..50_000u32).map(|n| (n * 7 % 251) as u8).collect();
        let hash = BlobHash::of(&bytes);
        (bytes, hash)
    }

    #[test]
    fn a_download_cut_short_goes_on_from_the_bytes_that_arrived() {
        let (bytes, hash) = photo();
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let blob = bytes.clone();
        let (relay, ranges) = scripted_relay(move |range| match range {
            // The first answer drops after 12,000 bytes of the body.
            None => answer("200 OK", "", blob.len(), &blob[..12_000]),
            Some(range) => {
                let from: usize = range["bytes=".len()..range.len() - 1].parse().unwrap();
                let headers = format!(
                    "Content-Range: bytes {from}-{}/{}\r\n",
                    blob.len() - 1,
                    blob.len()
                );
                answer(
                    "206 Partial Content",
                    &headers,
                    blob.len() - from,
                    &blob[from..],
                )
            }
        });
        assert!(matches!(
            fetch_photo(&ws, &relay, &hash),
            Err(TransportError::Network(_))
        ));
        assert_eq!(ws.fetching_blob(&hash).unwrap(), bytes[..12_000]);
        // The app restarts: what arrived is in the store.
        drop(ws);
        let ws = Workspace::open(dir.path()).unwrap();
        assert_eq!(fetch_photo(&ws, &relay, &hash).unwrap(), bytes);
        assert_eq!(
            *ranges.lock().unwrap(),
            [None, Some("bytes=12000-".to_owned())],
            "the second request asked only for the rest"
        );
        assert_eq!(ws.blob(&hash).unwrap().unwrap(), bytes);
        assert!(
            ws.fetching_blob(&hash).unwrap().is_empty(),
            "the pieces left"
        );
    }

    #[test]
    fn bytes_that_are_not_the_blob_are_dropped_and_the_download_starts_over() {
        let (bytes, hash) = photo();
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        // Held bytes longer than the blob: the relay answers 416, they go.
        ws.keep_fetching_blob(&hash, 0, &vec![0; 60_000]).unwrap();
        let blob = bytes.clone();
        let (relay, ranges) = scripted_relay(move |range| match range {
            Some(_) => answer(
                "416 Range Not Satisfiable",
                &format!("Content-Range: bytes */{}\r\n", blob.len()),
                0,
                b"",
            ),
            None => answer("200 OK", "", blob.len(), &blob),
        });
        assert!(fetch_photo(&ws, &relay, &hash).is_err());
        assert!(ws.fetching_blob(&hash).unwrap().is_empty());
        assert_eq!(fetch_photo(&ws, &relay, &hash).unwrap(), bytes);
        assert_eq!(ranges.lock().unwrap().len(), 2);

        // Whole but not what the hash names (a wrong beginning kept): refused, dropped.
        let other = BlobHash::of(b"another photo");
        ws.keep_fetching_blob(&other, 0, b"another").unwrap();
        let (relay, _) = scripted_relay(move |_| {
            let headers = "Content-Range: bytes 7-12/13\r\n";
            answer("206 Partial Content", headers, 6, b"photo!")
        });
        assert!(fetch_photo(&ws, &relay, &other).is_err());
        assert!(ws.fetching_blob(&other).unwrap().is_empty());
        assert!(ws.blob(&other).unwrap().is_none());
    }

    #[test]
    fn a_relay_that_ignores_the_range_or_answers_another_is_followed_safely() {
        let (bytes, hash) = photo();
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        // The relay sends the whole blob (200) to a `Range` request: the kept bytes go.
        ws.keep_fetching_blob(&hash, 0, &bytes[..1_000]).unwrap();
        let blob = bytes.clone();
        let (relay, ranges) = scripted_relay(move |_| answer("200 OK", "", blob.len(), &blob));
        assert_eq!(fetch_photo(&ws, &relay, &hash).unwrap(), bytes);
        assert_eq!(*ranges.lock().unwrap(), [Some("bytes=1000-".to_owned())]);

        // A part that does not start where the kept bytes end: they go, nothing is added.
        let (other, other_hash) = (b"a second photo".to_vec(), BlobHash::of(b"a second photo"));
        ws.keep_fetching_blob(&other_hash, 0, &other[..4]).unwrap();
        let (relay, _) = scripted_relay(move |_| {
            answer(
                "206 Partial Content",
                "Content-Range: bytes 2-13/14\r\n",
                12,
                &other[2..],
            )
        });
        assert!(fetch_photo(&ws, &relay, &other_hash).is_err());
        assert!(ws.fetching_blob(&other_hash).unwrap().is_empty());
        assert!(ws.blob(&other_hash).unwrap().is_none());

        // All of it had come before the link gave out: stored without asking.
        let (third, third_hash) = (b"a third photo".to_vec(), BlobHash::of(b"a third photo"));
        ws.keep_fetching_blob(&third_hash, 0, &third).unwrap();
        let (relay, ranges) = scripted_relay(|_| answer("500 Oops", "", 0, b""));
        assert_eq!(fetch_photo(&ws, &relay, &third_hash).unwrap(), third);
        assert!(ranges.lock().unwrap().is_empty());
    }

    #[test]
    fn the_pieces_of_downloads_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let (a, b) = (BlobHash::of(b"a"), BlobHash::of(b"b"));
        let half = vec![1; (MAX_FETCHING_BLOB_BYTES / 2) as usize];
        let len = half.len() as u64;
        ws.keep_fetching_blob(&a, 0, &half).unwrap();
        ws.keep_fetching_blob(&b, 0, &half).unwrap();
        // A third piece makes room by dropping the other blob's.
        ws.keep_fetching_blob(&b, len, b"more").unwrap();
        assert!(ws.fetching_blob(&a).unwrap().is_empty());
        assert_eq!(ws.fetching_blob(&b).unwrap().len(), half.len() + 4);
        // One blob alone never passes the bound.
        assert!(ws.keep_fetching_blob(&b, len + 4, &half).is_err());
        // A piece that does not follow what is kept (two downloads of one blob) is refused.
        assert!(ws.keep_fetching_blob(&b, len, b"again").is_err());
        assert_eq!(ws.fetching_blob(&b).unwrap().len(), half.len() + 4);
    }
}

//! Downloads by content hash that survive a dropping link: the bytes a cut download
//! brought are kept, and the next attempt asks for the rest with `Range` (photos,
//! thumbnails and the relay's snapshots of documents alike).

use std::io::Read;

use super::{Relay, SyncObserver, TransportError, http_error};
use crate::blob::BlobHash;
use crate::{MAX_FETCHING_BLOB_BYTES, Workspace};

/// Downloads `path` on the relay, the bytes named `hash`, going on from the bytes an
/// earlier, cut download of them kept (a `Range` request); bytes that arrive before a
/// cut are kept for the next attempt ([`Workspace::keep_fetching_blob`]). Returns them
/// whole and checked against `hash`; the caller stores them and drops the pieces kept.
/// Reads at most `limit` bytes in all (at most [`MAX_FETCHING_BLOB_BYTES`]). Adds the
/// bytes that came to `received`.
pub(super) fn download(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    (hash, path): (&BlobHash, &str),
    limit: u64,
    received: &mut u64,
) -> Result<Vec<u8>, TransportError> {
    let mut held = workspace.fetching_blob(hash)?;
    if held.is_empty() || BlobHash::of(&held) != *hash {
        let (from, limit) = (held.len() as u64, limit.min(MAX_FETCHING_BLOB_BYTES));
        let rest = download_rest(workspace, relay, observer, (hash, path), from, limit)?;
        *received += rest.bytes.len() as u64;
        if rest.offset == 0 && !held.is_empty() {
            // The relay sent the whole of it instead of the rest.
            workspace.forget_fetching_blob(hash)?;
            held.clear();
        }
        if let Some(cut) = rest.cut {
            if !rest.bytes.is_empty() {
                workspace.keep_fetching_blob(hash, rest.offset, &rest.bytes)?;
            }
            return Err(cut);
        }
        held.extend_from_slice(&rest.bytes);
    }
    if BlobHash::of(&held) != *hash {
        // Whole but not what `hash` names: none of it is worth keeping.
        workspace.forget_fetching_blob(hash)?;
        return Err(crate::Error::InvalidInput(format!("the relay's bytes are not {hash}")).into());
    }
    Ok(held)
}

/// What one `GET` brought: the bytes from `offset` on (0: all of them), and the error
/// that cut them short.
struct Rest {
    offset: u64,
    bytes: Vec<u8>,
    cut: Option<TransportError>,
}

/// Asks for the bytes of `path` (named `hash`) from `from` on, reading up to `limit` in
/// all. Held bytes that are not a beginning of the resource are dropped (and the error
/// says the download starts over).
fn download_rest(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    (hash, path): (&BlobHash, &str),
    from: u64,
    limit: u64,
) -> Result<Rest, TransportError> {
    let (url, bearer) = (relay.url(path), relay.bearer());
    let answer = relay.http(observer, move |agent| {
        let mut request = agent.get(&url).header("Authorization", &bearer);
        if from > 0 {
            request = request.header("Range", &format!("bytes={from}-"));
        }
        let mut response = request.call()?;
        let offset = match response.status().as_u16() {
            200 => 0,
            206 if range_start(&response) == Some(from) => from,
            // What was held is not a beginning of the resource (416: longer than it).
            206 | 416 => return Ok(None),
            status => return Err(http_error(status, &mut response)),
        };
        let mut bytes = Vec::new();
        // On an error, `read_to_end` leaves what it read in `bytes`.
        let cut = response
            .body_mut()
            .as_reader()
            .take(limit.saturating_sub(offset))
            .read_to_end(&mut bytes)
            .err()
            .map(|e| TransportError::Network(e.to_string()));
        Ok(Some(Rest { offset, bytes, cut }))
    })?;
    match answer {
        Some(rest) => Ok(rest),
        None => {
            workspace.forget_fetching_blob(hash)?;
            Err(TransportError::Network(format!(
                "the relay has no bytes of {hash} from {from} on: it starts over"
            )))
        }
    }
}

/// Where the part a `206` answer carries starts (`Content-Range: bytes a-b/size`).
fn range_start(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let value = response.headers().get("Content-Range")?.to_str().ok()?;
    let (start, _) = value.strip_prefix("bytes ")?.split_once('-')?;
    start.parse().ok()
}

//! The documents the caller may read, over HTTP:
//!
//! - `GET /v1/documents`: `[{"id", "unit_id", "updated_at", "bytes", "snapshot_sha256",
//!   "snapshot_bytes"}]` (`updated_at` in ms since the Unix epoch, `bytes` as stored), by
//!   ward then id. (Phones get the same on their sync connection: `GET
//!   /v1/sync?listing=`.)
//! - `GET /v1/documents/{id}/snapshot/{sha256}`: the document's stored snapshot (an
//!   Automerge save) while it is the one of that hash, with single-range support, so a
//!   phone that lacks the document downloads it like a photo, resuming where a cut
//!   download stopped, and syncs only what came after. 409 `snapshot_replaced` once the
//!   relay has compacted the document since (a new listing names the new snapshot).
//!   A document outside the caller's scope, or none, is 403 either way. Only the range
//!   asked for is read, and at most [`crate::config::fixed::SNAPSHOT_KIB_IN_FLIGHT`] of snapshots are
//!   read or sent at once (503 beyond: again in a moment).

use axum::Json;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::DocumentId;

use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::routes::ranges::{Part, content_headers};
use crate::store::DocumentSummary;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(snapshot))
}

/// The documents the caller may read, by ward then id.
#[utoipa::path(
    get,
    path = "/v1/documents",
    tag = "documents",
    responses((status = 200, description = "The documents", body = Vec<DocumentSummary>)),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<DocumentSummary>>, AppError> {
    let documents = state
        .db(move |store| store.documents_for_wards(&store.wards_in_scope(&principal)?))
        .await?;
    Ok(Json(documents))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct SnapshotAddress {
    /// The document id (bs58check).
    id: String,
    /// The snapshot's SHA-256 as 64 hex digits, as the listing names it.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    sha256: String,
}

/// A document's stored snapshot, or a single range of it (see the module docs).
#[utoipa::path(
    get,
    path = "/v1/documents/{id}/snapshot/{sha256}",
    tag = "documents",
    params(
        SnapshotAddress,
        (
            "Range" = Option<String>, Header,
            description = "One byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`); others are \
                           ignored",
        ),
    ),
    responses(
        (
            status = 200,
            description = "The snapshot",
            body = [u8],
            content_type = "application/octet-stream",
            headers(("ETag" = String, description = "The quoted hash")),
        ),
        (
            status = 206,
            description = "The range asked for",
            body = [u8],
            content_type = "application/octet-stream",
            headers(("Content-Range" = String, description = "`bytes a-b/size`")),
        ),
        (status = 400, description = "`invalid_address`: a malformed id or hash"),
        (
            status = 403,
            description = "`forbidden`: no document of that id in the caller's scope",
        ),
        (
            status = 409,
            description = "`snapshot_replaced`: the relay compacted the document since; a \
                           new listing names its snapshot",
        ),
        (
            status = 416,
            description = "`range_not_satisfiable`: the range starts past the end",
            headers(("Content-Range" = String, description = "`bytes */size`")),
        ),
        (
            status = 503,
            description = "`unavailable`: too many snapshot bytes are on their way; again \
                           in a moment",
        ),
    ),
)]
async fn snapshot(
    State(state): State<AppState>,
    principal: Principal,
    Path(SnapshotAddress { id, sha256 }): Path<SnapshotAddress>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let invalid = || AppError::bad_request("invalid_address", "a malformed document id or hash");
    let id: DocumentId = id.parse().map_err(|_| invalid())?;
    let hash: BlobHash = sha256.parse().map_err(|_| invalid())?;
    let replaced = || AppError::Conflict {
        code: "snapshot_replaced",
        message: "the relay compacted the document since it listed this snapshot: \
                  sync again for the new listing",
    };
    // Scope and name first, from the row's small columns; then only the bytes asked for.
    let info = state
        .db(move |store| {
            let Some(info) = store.snapshot_info(&id)? else {
                return Ok(None);
            };
            Ok(store
                .may_access_ward(&principal, &info.unit_id)?
                .then_some(info))
        })
        .await?
        .ok_or(AppError::Forbidden)?;
    if info.hash != hash {
        return Err(replaced());
    }
    let part = Part::asked(&headers, info.bytes)?;
    let (start, length) = (part.start, part.length);
    let kib = u32::try_from(length.div_ceil(1024)).unwrap_or(u32::MAX);
    let permit = (state.snapshot_kib.clone())
        .try_acquire_many_owned(kib)
        .map_err(|_| AppError::Unavailable)?;
    let bytes = state
        .db(move |store| store.snapshot_range(&id, &hash, start, length))
        .await?
        .ok_or_else(replaced)?;
    let headers = content_headers(&hash, part.length);
    let response = (part.status(), headers, held_body(bytes, permit)).into_response();
    Ok(part.label(response))
}

/// `bytes` as a body sent 64 KiB at a time, `permit` held until the last piece is taken
/// (the connection writes each before it takes the next).
fn held_body(bytes: Vec<u8>, permit: OwnedSemaphorePermit) -> Body {
    const PIECE: usize = 64 << 10;
    let bytes = Bytes::from(bytes);
    let pieces = (0..bytes.len()).step_by(PIECE).map(move |at| {
        let end = (at + PIECE).min(bytes.len());
        Ok::<_, Infallible>(bytes.slice(at..end))
    });
    Body::from_stream(stream::iter(pieces).map(move |piece| {
        let _held = &permit;
        piece
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use wardcheck_core::blob::BlobHash;
    use wardcheck_core::doc::DocumentId;

    use crate::routes::testing::{TestRelay, authed};

    #[tokio::test]
    async fn each_principal_lists_the_documents_of_its_wards() {
        let relay = TestRelay::new();
        let store = &relay.state.store;
        let a = DocumentId::for_assessment("ngo-may", "2025");
        let b = DocumentId::for_assessment("tran-hung-dao", "2025");
        let c = DocumentId::for_assessment("an-hung", "2025");
        store
            .insert_document(&a, "ngo-may", b"s", b"h", &[], &[])
            .unwrap();
        store
            .insert_document(&b, "tran-hung-dao", b"s", b"h", &[], &[])
            .unwrap();
        store
            .insert_document(&c, "an-hung", b"s", b"h", &[], &[])
            .unwrap();

        let list = |user: &'static str| {
            let token = relay.token(user);
            let relay = &relay;
            async move {
                let reply = relay
                    .send(
                        authed("GET", "/v1/documents", &token)
                            .body(Default::default())
                            .unwrap(),
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::OK);
                reply
                    .json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["id"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(list("officer-a").await, [a.to_string()]);
        assert_eq!(list("sup-kt").await, [a.to_string(), b.to_string()]);
        assert_eq!(list("admin").await.len(), 3);

        let token = relay.token("officer-b");
        let reply = relay
            .send(
                authed("GET", "/v1/documents", &token)
                    .body(Default::default())
                    .unwrap(),
            )
            .await;
        let body = reply.json();
        assert_eq!(body[0]["unit_id"], "tran-hung-dao");
        assert!(body[0]["updated_at"].as_i64().unwrap() > 0);
    }

    #[tokio::test]
    async fn a_snapshot_downloads_by_its_hash_in_ranges_within_scope_only() {
        let relay = TestRelay::new();
        let store = &relay.state.store;
        let id = DocumentId::for_assessment("ngo-may", "2025");
        let other = DocumentId::for_assessment("an-hung", "2025");
        store
            .insert_document(&id, "ngo-may", b"0123456789", b"h", &[], &[])
            .unwrap();
        store
            .insert_document(&other, "an-hung", b"abc", b"h", &[], &[])
            .unwrap();
        let token = relay.token("officer-a");
        let get = |path: String, range: Option<&'static str>| {
            let mut request = authed("GET", &path, &token);
            if let Some(range) = range {
                request = request.header("Range", range);
            }
            relay.send(request.body(Default::default()).unwrap())
        };
        let listed = get("/v1/documents".into(), None).await.json();
        let hash = BlobHash::of(b"0123456789");
        assert_eq!(listed[0]["snapshot_sha256"], hash.to_string());
        assert_eq!(listed[0]["snapshot_bytes"], 10);
        let path = format!("/v1/documents/{id}/snapshot/{hash}");

        let whole = get(path.clone(), None).await;
        assert_eq!(whole.status, StatusCode::OK);
        assert_eq!(whole.body, b"0123456789");
        assert_eq!(whole.headers["etag"], format!("\"{hash}\""));
        let rest = get(path.clone(), Some("bytes=4-")).await;
        assert_eq!(rest.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(rest.body, b"456789");
        assert_eq!(rest.headers["content-range"], "bytes 4-9/10");
        let past = get(path.clone(), Some("bytes=10-")).await;
        assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);

        // Another ward's document, or none: the same 403.
        let theirs = BlobHash::of(b"abc");
        let reply = get(format!("/v1/documents/{other}/snapshot/{theirs}"), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let none = DocumentId::for_assessment("ngo-may", "2030");
        let reply = get(format!("/v1/documents/{none}/snapshot/{hash}"), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let reply = get(format!("/v1/documents/{id}/snapshot/xyz"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["code"], "invalid_address");

        // Snapshot bytes on their way are bounded: past that, 503 until some are sent.
        let all = relay.state.snapshot_kib.available_permits() as u32;
        let taken = relay
            .state
            .snapshot_kib
            .clone()
            .acquire_many_owned(all)
            .await;
        let busy = get(path.clone(), None).await;
        assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
        drop(taken);
        assert_eq!(get(path.clone(), None).await.status, StatusCode::OK);
        assert_eq!(relay.state.snapshot_kib.available_permits(), all as usize);

        // Compacted since the listing: the old name is refused, the new listing names
        // the new snapshot.
        store
            .replace_snapshot(&id, &hash, b"compacted", None)
            .unwrap();
        let reply = get(path, Some("bytes=4-")).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(reply.json()["code"], "snapshot_replaced");
        let listed = get("/v1/documents".into(), None).await.json();
        assert_eq!(
            listed[0]["snapshot_sha256"],
            BlobHash::of(b"compacted").to_string()
        );
    }
}

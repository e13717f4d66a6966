//! Photo blobs over HTTP, content-addressed by SHA-256 (64 hex digits).
//!
//! - `HEAD /v1/blobs/{sha256}`: 200 with `Content-Length` if stored; else 404 with
//!   `Upload-Offset: N`, the bytes held of an interrupted upload (0 if none).
//! - `PUT /v1/blobs/{sha256}` with `Upload-Length: TOTAL` (required) and
//!   `Upload-Offset: N` (default 0), the body being bytes `N..` (all or some of the
//!   rest). Streamed to disk. Answers: 201 when the last byte arrived and the hash
//!   matched; 202 with `Upload-Offset` when the body ended early (continue from there);
//!   200 if the blob was already stored (the headers are checked, the body is not read); 409 with the held
//!   `Upload-Offset` on an offset mismatch or a concurrent upload of the same blob, 409
//!   `upload_length_mismatch` if an unfinished upload of it declared another length; 413
//!   `too_large` if `Upload-Length` is above `max_blob_bytes` or the body runs past it
//!   (the partial bytes are deleted); 422 `hash_mismatch` (deleted too); 507
//!   `upload_quota` / `uploads_full` when the caller's unfinished uploads, or everyone's,
//!   have no room for it ([`crate::uploads`]), before a byte is read.
//! - `GET /v1/blobs/{sha256}`: the bytes, with `ETag` (the quoted hash) and single-range
//!   support (`bytes=a-b`, `bytes=a-`, `bytes=-n`: 206 with `Content-Range`;
//!   unsatisfiable: 416). Multi-range and malformed `Range` headers are ignored (200).
//! - `POST /v1/blobs/missing` `{"hashes": [...]}` (at most 1000): `{"missing": [...]}`,
//!   those the caller may upload that the relay does not hold.
//!
//! **Access.** A blob is visible to a principal only if a document in their scope
//! references it ([`crate::RelayStore::blob_referenced_in_scope`]). Otherwise `HEAD`,
//! `GET` and `PUT` answer 403 with the generic body, whether the blob exists or not, so
//! nobody can probe for photos of other wards. A device uploads a photo after syncing
//! the document change that references it.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use utoipa::openapi::schema::Array;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wardcheck_core::blob::BlobHash;

use crate::AppState;
use crate::auth::Principal;
use crate::blobstore::{Upload, UploadError};
use crate::config::Config;
use crate::error::{AppError, AppJson, UPLOAD_OFFSET};
use crate::routes::ranges::{Part, content_headers, etag};
use crate::routes::{body_limited, openapi, timed};
use crate::store::{Reservation, now_ms};
use crate::uploads;

/// The header declaring an upload's total size.
pub const UPLOAD_LENGTH: &str = "upload-length";

/// Most hashes one `POST /v1/blobs/missing` may ask about.
pub const MAX_MISSING_QUERY: usize = 1000;

pub(crate) fn router(config: &Config) -> OpenApiRouter<AppState> {
    // No body limit layer: an upload's body is bounded by its declared length, which
    // `max_blob_bytes` bounds (`put_blob`), and running past it is a JSON 413 that leaves
    // nothing behind, not a broken body.
    let transfer = timed(
        OpenApiRouter::new().routes(routes!(get_blob, head_blob, put_blob)),
        config.blob_timeout,
    );
    // 1000 hashes of 64 digits need more than the default JSON limit.
    let missing = body_limited(
        timed(
            OpenApiRouter::new().routes(routes!(missing)),
            config.request_timeout,
        ),
        config.max_json_bytes.max(128 * 1024),
    );
    transfer.merge(missing)
}

/// The path of a blob.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct BlobAddress {
    /// The blob's SHA-256 as 64 hex digits.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    sha256: String,
}

fn parse_hash(raw: &str) -> Result<BlobHash, AppError> {
    raw.parse()
        .map_err(|_| AppError::bad_request("invalid_hash", "a blob address is 64 hex digits"))
}

/// 403 unless a document in the principal's scope references the blob.
async fn check_scope(
    state: &AppState,
    principal: Principal,
    hash: BlobHash,
) -> Result<(), AppError> {
    let allowed = state
        .db(move |store| store.blob_referenced_in_scope(&principal, &hash))
        .await?;
    if allowed {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// Whether a blob is stored, or how much of an interrupted upload the relay holds.
#[utoipa::path(
    head,
    path = "/v1/blobs/{sha256}",
    tag = "blobs",
    params(BlobAddress),
    responses(
        (
            status = 200,
            description = "Stored",
            headers(("Content-Length" = u64, description = "The blob's size")),
        ),
        (
            status = 404,
            description = "Not stored",
            headers((
                "Upload-Offset" = u64,
                description = "Bytes held of an interrupted upload (0 if none)"
            )),
        ),
        (status = 400, description = "`invalid_hash`: the address is not 64 hex digits"),
        (
            status = 403,
            description = "`forbidden`: no document in the caller's scope references the \
                           blob (whether it exists or not)",
        ),
    ),
)]
async fn head_blob(
    State(state): State<AppState>,
    principal: Principal,
    Path(BlobAddress { sha256: raw }): Path<BlobAddress>,
) -> Result<Response, AppError> {
    let hash = parse_hash(&raw)?;
    check_scope(&state, principal, hash).await?;
    Ok(match state.blobs.stored_size(&hash).await? {
        Some(size) => (StatusCode::OK, content_headers(&hash, size)).into_response(),
        None => {
            let held = state.blobs.partial_size(&hash).await?;
            (
                StatusCode::NOT_FOUND,
                [
                    (UPLOAD_OFFSET, HeaderValue::from(held)),
                    (header::CONTENT_LENGTH.as_str(), HeaderValue::from(0)),
                ],
            )
                .into_response()
        }
    })
}

/// A blob's bytes, or a single range of them.
#[utoipa::path(
    get,
    path = "/v1/blobs/{sha256}",
    tag = "blobs",
    params(
        BlobAddress,
        (
            "Range" = Option<String>, Header,
            description = "One byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`); others are \
                           ignored",
        ),
        (
            "If-None-Match" = Option<String>, Header,
            description = "The blob's `ETag` (its quoted hash), or `*`",
        ),
    ),
    responses(
        (
            status = 200,
            description = "The blob",
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
        (status = 304, description = "`If-None-Match` matched"),
        (status = 400, description = "`invalid_hash`: the address is not 64 hex digits"),
        (
            status = 403,
            description = "`forbidden`: no document in the caller's scope references the \
                           blob (whether it exists or not)",
        ),
        (status = 404, description = "`not_found`: not stored (yet)"),
        (
            status = 416,
            description = "`range_not_satisfiable`: the range starts past the end",
            headers(("Content-Range" = String, description = "`bytes */size`")),
        ),
    ),
)]
async fn get_blob(
    State(state): State<AppState>,
    principal: Principal,
    Path(BlobAddress { sha256: raw }): Path<BlobAddress>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let hash = parse_hash(&raw)?;
    check_scope(&state, principal, hash).await?;
    let (mut file, size) = state
        .blobs
        .open_read(&hash)
        .await?
        .ok_or(AppError::NotFound)?;
    if if_none_match(&headers, &hash) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag(&hash))]).into_response());
    }
    let part = Part::asked(&headers, size)?;
    if part.start > 0 {
        file.seek(std::io::SeekFrom::Start(part.start)).await?;
    }
    let body = Body::from_stream(ReaderStream::new(file.take(part.length)));
    let response = (part.status(), content_headers(&hash, part.length), body).into_response();
    Ok(part.label(response))
}

fn if_none_match(headers: &HeaderMap, hash: &BlobHash) -> bool {
    let Some(value) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = format!("\"{hash}\"");
    value
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == ours)
}

fn header_u64(headers: &HeaderMap, name: &'static str) -> Result<Option<u64>, AppError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or(AppError::bad_request(
            "invalid_upload_header",
            "Upload-Length and Upload-Offset are non-negative integers",
        ))
}

fn upload_response(status: StatusCode, hash: &BlobHash, held: u64) -> Response {
    (
        status,
        [
            (header::ETAG, etag(hash)),
            (
                UPLOAD_OFFSET.parse().expect("valid header name"),
                HeaderValue::from(held),
            ),
        ],
    )
        .into_response()
}

/// Uploads a blob, all at once or resuming an interrupted upload.
#[utoipa::path(
    put,
    path = "/v1/blobs/{sha256}",
    tag = "blobs",
    params(
        BlobAddress,
        ("Upload-Length" = u64, Header, description = "The blob's total size in bytes"),
        (
            "Upload-Offset" = Option<u64>, Header,
            description = "Where the body starts in the blob (0 by default)",
        ),
    ),
    request_body(
        content = [u8],
        content_type = "application/octet-stream",
        description = "Bytes from `Upload-Offset` on: all or some of the rest",
    ),
    responses(
        (status = 200, description = "Already stored; the body was not read"),
        (status = 201, description = "Stored: the last byte came and the hash matched"),
        (
            status = 202,
            description = "The body ended early; continue from `Upload-Offset`",
            headers(("Upload-Offset" = u64, description = "Bytes held")),
        ),
        (
            status = 400,
            description = "`invalid_hash`, `invalid_upload_header`, \
                           `missing_upload_length`, `offset_past_length`, \
                           `body_interrupted`",
        ),
        (
            status = 403,
            description = "`forbidden`: no document in the caller's scope references the \
                           blob (whether it exists or not)",
        ),
        (
            status = 409,
            description = "`offset_mismatch` or `upload_in_progress` (with the bytes held \
                           in `Upload-Offset`), `upload_length_mismatch`",
        ),
        (
            status = 413,
            description = "`too_large`: `Upload-Length` is over the relay's limit, or the \
                           body runs past it (nothing is kept)",
        ),
        (
            status = 422,
            description = "`hash_mismatch`: the bytes are not the blob's (nothing is kept)",
        ),
        (
            status = 507,
            description = "`upload_quota`, `uploads_full`: no room for another unfinished \
                           upload (the body is not read)",
        ),
    ),
)]
async fn put_blob(
    State(state): State<AppState>,
    principal: Principal,
    Path(BlobAddress { sha256: raw }): Path<BlobAddress>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let hash = parse_hash(&raw)?;
    check_scope(&state, principal.clone(), hash).await?;
    // The request is checked whole, even for a blob already stored.
    let total = header_u64(&headers, UPLOAD_LENGTH)?.ok_or(AppError::bad_request(
        "missing_upload_length",
        "Upload-Length (the blob's total size in bytes) is required",
    ))?;
    if total > state.config.max_blob_bytes {
        return Err(AppError::PayloadTooLarge);
    }
    let offset = header_u64(&headers, UPLOAD_OFFSET)?.unwrap_or(0);
    if offset > total {
        return Err(AppError::bad_request(
            "offset_past_length",
            "Upload-Offset is past Upload-Length",
        ));
    }
    // A declared body longer than what is left is refused before reading it.
    if let Some(length) = header_u64(&headers, header::CONTENT_LENGTH.as_str())?
        && length > total - offset
    {
        return Err(AppError::PayloadTooLarge);
    }
    // Idempotent: a stored blob is not uploaded again, and its body is not read.
    if let Some(size) = state.blobs.stored_size(&hash).await? {
        return Ok(upload_response(StatusCode::OK, &hash, size));
    }
    reserve(&state, &principal, hash, total).await?;
    let outcome = state.blobs.upload(&hash, offset, total, body).await;
    let left_nothing = matches!(
        outcome,
        Ok(Upload::Complete | Upload::AlreadyStored)
            | Err(UploadError::TooLong | UploadError::HashMismatch)
    );
    if left_nothing {
        state.db(move |store| store.release_partial(&hash)).await?;
    }
    match outcome {
        Ok(Upload::Complete) => {
            state.metrics.blobs_stored.inc();
            Ok(upload_response(StatusCode::CREATED, &hash, total))
        }
        Ok(Upload::AlreadyStored) => Ok(upload_response(StatusCode::OK, &hash, total)),
        Ok(Upload::Partial { received }) => {
            Ok(upload_response(StatusCode::ACCEPTED, &hash, received))
        }
        Err(UploadError::OffsetMismatch { current }) => Err(AppError::OffsetMismatch { current }),
        Err(UploadError::Busy { current }) => Err(AppError::UploadInProgress { current }),
        Err(UploadError::TooLong) => Err(AppError::PayloadTooLarge),
        Err(UploadError::HashMismatch) => Err(AppError::unprocessable(
            "hash_mismatch",
            "the bytes do not match the blob's SHA-256; upload it again from offset 0",
        )),
        Err(UploadError::Interrupted { .. }) => Err(AppError::bad_request(
            "body_interrupted",
            "the request body broke off; ask HEAD for the offset and resume",
        )),
        Err(err) => Err(AppError::internal(err)),
    }
}

/// Reserves room for the caller's upload of `hash` ([`crate::uploads`]): 409 if an
/// unfinished upload of it declared another length, 507 if there is no room.
async fn reserve(
    state: &AppState,
    principal: &Principal,
    hash: BlobHash,
    total: u64,
) -> Result<(), AppError> {
    let owner = principal
        .device_id
        .clone()
        .unwrap_or_else(|| principal.user_id.clone());
    let quota = state.config.partial_quota;
    let now = now_ms();
    let live = uploads::live_since(&state.config, now);
    let reservation = state
        .db(move |store| store.reserve_partial(&hash, &owner, total, &quota, live, now))
        .await?;
    match reservation {
        Reservation::Granted => Ok(()),
        Reservation::LengthMismatch => Err(AppError::Conflict {
            code: "upload_length_mismatch",
            message: "an unfinished upload of this blob declared another Upload-Length",
        }),
        Reservation::OwnerFull => Err(AppError::NoRoom {
            code: "upload_quota",
            message: "this device has too many unfinished uploads; finish them or let them expire",
        }),
        Reservation::AllFull => Err(AppError::NoRoom {
            code: "uploads_full",
            message: "the relay has no room for more unfinished uploads; retry later",
        }),
    }
}

/// Blobs a device may need to upload.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct MissingRequest {
    /// At most [`MAX_MISSING_QUERY`] addresses.
    #[schema(schema_with = asked)]
    hashes: Vec<BlobHash>,
}

/// Those of the asked blobs the caller may upload that the relay does not hold.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct MissingResponse {
    /// Addresses, each once.
    #[schema(schema_with = asked)]
    missing: Vec<BlobHash>,
}

/// The schema of the addresses one request may ask about.
fn asked() -> Array {
    openapi::sha256_list(MAX_MISSING_QUERY)
}

/// Which of some blobs the relay lacks that the caller may upload.
#[utoipa::path(
    post,
    path = "/v1/blobs/missing",
    tag = "blobs",
    request_body = MissingRequest,
    responses(
        (
            status = 200,
            description = "The missing ones",
            body = MissingResponse,
            links(
                ("upload" = (
                    operation_id = "put_blob",
                    parameters(("sha256" = "$response.body#/missing/0")),
                    description = "Upload the first missing blob"
                )),
            ),
        ),
        (
            status = 400,
            description = "`bad_json`: the body is not JSON; `not_json`: no \
                           `Content-Type: application/json`",
        ),
        (
            status = 422,
            description = "`invalid_body`: the JSON has the wrong shape (or an address is \
                           not 64 hex digits); `too_many_hashes`",
        ),
    ),
)]

async fn missing(
    State(state): State<AppState>,
    principal: Principal,
    AppJson(request): AppJson<MissingRequest>,
) -> Result<Json<MissingResponse>, AppError> {
    if request.hashes.len() > MAX_MISSING_QUERY {
        return Err(AppError::unprocessable(
            "too_many_hashes",
            "ask about at most 1000 hashes at a time",
        ));
    }
    let mut asked = request.hashes;
    let mut seen = std::collections::HashSet::new();
    asked.retain(|hash| seen.insert(*hash));
    let query = asked.clone();
    let allowed = state
        .db(move |store| store.blobs_referenced_in_scope(&principal, &query))
        .await?;
    let mut missing = Vec::new();
    for hash in asked {
        if allowed.contains(&hash) && state.blobs.stored_size(&hash).await?.is_none() {
            missing.push(hash);
        }
    }
    Ok(Json(MissingResponse { missing }))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use axum::body::{Body, Bytes};
    use axum::http::{Request, StatusCode};
    use serde_json::json;
    use wardcheck_core::doc::DocumentId;

    use super::*;
    use crate::blobstore::tests::BrokenBody;
    use crate::config::Settings;
    use crate::routes::testing::{Reply, TestRelay, authed, json_request};

    fn photo(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| ((i * 31 + seed) % 253) as u8)
            .collect()
    }

    /// A relay where ward ngo-may's document references `a`, and ward tran-hung-dao's
    /// references `b`.
    fn relay_with(a: &BlobHash, b: &BlobHash) -> TestRelay {
        relay_with_settings(a, b, Settings::default())
    }

    fn relay_with_settings(a: &BlobHash, b: &BlobHash, settings: Settings) -> TestRelay {
        let relay = TestRelay::with(settings);
        relay.document_referencing("ngo-may", &[*a]);
        relay.document_referencing("tran-hung-dao", &[]);
        // A blob referenced only by a later chunk counts too.
        let other = DocumentId::for_assessment("tran-hung-dao", "2025");
        relay
            .state
            .store
            .append_chunk(&other, b"c", b"h", &[*b], &[])
            .unwrap();
        relay
    }

    fn put(
        hash: &BlobHash,
        token: &str,
        offset: Option<u64>,
        total: u64,
        body: Body,
    ) -> Request<Body> {
        let mut builder =
            authed("PUT", &format!("/v1/blobs/{hash}"), token).header(UPLOAD_LENGTH, total);
        if let Some(offset) = offset {
            builder = builder.header(UPLOAD_OFFSET, offset);
        }
        builder.body(body).unwrap()
    }

    fn head(hash: &BlobHash, token: &str) -> Request<Body> {
        authed("HEAD", &format!("/v1/blobs/{hash}"), token)
            .body(Body::empty())
            .unwrap()
    }

    fn get_range(hash: &BlobHash, token: &str, range: Option<&str>) -> Request<Body> {
        let mut builder = authed("GET", &format!("/v1/blobs/{hash}"), token);
        if let Some(range) = range {
            builder = builder.header("range", range);
        }
        builder.body(Body::empty()).unwrap()
    }

    async fn upload(relay: &TestRelay, hash: &BlobHash, token: &str, bytes: &[u8]) -> Reply {
        relay
            .send(put(
                hash,
                token,
                None,
                bytes.len() as u64,
                Body::from(bytes.to_vec()),
            ))
            .await
    }

    #[tokio::test]
    async fn whole_upload_then_head_and_get() {
        let bytes = photo(50_000, 1);
        let a = BlobHash::of(&bytes);
        let relay = relay_with(&a, &BlobHash::of(b"b"));
        let token = relay.token("officer-a");

        let reply = relay.send(head(&a, &token)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.header("upload-offset"), Some("0"));

        let reply = upload(&relay, &a, &token, &bytes).await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(reply.header("upload-offset"), Some("50000"));
        assert_eq!(relay.state.metrics.blobs_stored.get(), 1);

        let reply = relay.send(head(&a, &token)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-length"), Some("50000"));
        assert!(reply.body.is_empty());

        let reply = relay.send(get_range(&a, &token, None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, bytes);
        assert_eq!(reply.header("etag"), Some(format!("\"{a}\"").as_str()));

        // A supervisor of the province reads it too.
        let supervisor = relay.token("sup-kt");
        assert_eq!(
            relay.send(get_range(&a, &supervisor, None)).await.body,
            bytes
        );
        let cached = relay
            .send(
                authed("GET", &format!("/v1/blobs/{a}"), &supervisor)
                    .header("if-none-match", format!("\"{a}\""))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
        assert!(cached.body.is_empty());
    }

    #[tokio::test]
    async fn an_interrupted_upload_resumes_with_only_the_missing_bytes() {
        let bytes = photo(120_000, 2);
        let a = BlobHash::of(&bytes);
        let relay = relay_with(&a, &BlobHash::of(b"b"));
        let token = relay.token("officer-a");
        let total = bytes.len() as u64;

        // The connection drops after 40,000 bytes.
        let broken = BrokenBody(VecDeque::from([
            Bytes::copy_from_slice(&bytes[..25_000]),
            Bytes::copy_from_slice(&bytes[25_000..40_000]),
        ]));
        let reply = relay
            .send(put(&a, &token, Some(0), total, Body::new(broken)))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);

        let reply = relay.send(head(&a, &token)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.header("upload-offset"), Some("40000"));

        // A body that ends early on purpose: 202 with the new offset.
        let part = bytes[40_000..70_000].to_vec();
        let reply = relay
            .send(put(&a, &token, Some(40_000), total, Body::from(part)))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert_eq!(reply.header("upload-offset"), Some("70000"));

        // The rest, and only the rest.
        let rest = bytes[70_000..].to_vec();
        assert_eq!(rest.len(), 50_000);
        let reply = relay
            .send(put(&a, &token, Some(70_000), total, Body::from(rest)))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(relay.send(get_range(&a, &token, None)).await.body, bytes);
    }

    #[tokio::test]
    async fn a_wrong_offset_is_409_with_the_held_offset() {
        let bytes = photo(10_000, 3);
        let a = BlobHash::of(&bytes);
        let relay = relay_with(&a, &BlobHash::of(b"b"));
        let token = relay.token("officer-a");
        let first = bytes[..4_000].to_vec();
        relay
            .send(put(&a, &token, None, 10_000, Body::from(first)))
            .await;
        for wrong in [0, 3_999, 4_001] {
            let rest = bytes[wrong as usize..].to_vec();
            let reply = relay
                .send(put(&a, &token, Some(wrong), 10_000, Body::from(rest)))
                .await;
            assert_eq!(reply.status, StatusCode::CONFLICT);
            assert_eq!(reply.header("upload-offset"), Some("4000"));
            assert_eq!(reply.json()["code"], "offset_mismatch");
        }
    }

    #[tokio::test]
    async fn wrong_bytes_are_422_and_nothing_is_kept() {
        let bytes = photo(10_000, 4);
        let a = BlobHash::of(&bytes);
        let relay = relay_with(&a, &BlobHash::of(b"b"));
        let token = relay.token("officer-a");
        let mut forged = bytes.clone();
        forged[5_000] ^= 1;
        let reply = upload(&relay, &a, &token, &forged).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.json()["code"], "hash_mismatch");
        let reply = relay.send(head(&a, &token)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.header("upload-offset"), Some("0"));
        assert_eq!(relay.state.blobs.count_stored().unwrap(), 0);
        let partial = relay.state.config.blobs_dir().join("partial");
        assert_eq!(std::fs::read_dir(partial).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn oversize_uploads_are_413_before_reading() {
        let bytes = photo(2_000, 5);
        let a = BlobHash::of(&bytes);
        let settings = Settings {
            max_blob_bytes: Some(1_000),
            ..Settings::default()
        };
        let relay = relay_with_settings(&a, &BlobHash::of(b"b"), settings);
        let token = relay.token("officer-a");
        // Declared too large: refused on the headers (the body would fail if read).
        let never_read = BrokenBody(VecDeque::new());
        let reply = relay
            .send(put(&a, &token, None, 2_000, Body::new(never_read)))
            .await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(reply.json()["code"], "too_large");
        // A body longer than declared.
        let small = photo(500, 6);
        let s = BlobHash::of(&small);
        let relay = relay_with(&s, &BlobHash::of(b"b"));
        let token = relay.token("officer-a");
        let reply = relay
            .send(put(&s, &token, None, 500, Body::from(photo(600, 6))))
            .await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(reply.json()["code"], "too_large");
        // It leaves nothing behind, and no reservation.
        assert!(relay.state.blobs.partial_hashes().await.unwrap().is_empty());
        assert!(relay.state.store.reserved_partials().unwrap().is_empty());
        // A PUT without Upload-Length.
        let reply = relay
            .send(
                authed("PUT", &format!("/v1/blobs/{s}"), &token)
                    .body(Body::from(small))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["code"], "missing_upload_length");
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_a_json_413_that_leaves_nothing() {
        let settings = Settings {
            max_blob_bytes: Some(1_000),
            ..Settings::default()
        };
        let bytes = photo(1_000, 12);
        let a = BlobHash::of(&bytes);
        let relay = relay_with_settings(&a, &BlobHash::of(b"b"), settings);
        let token = relay.token("officer-a");
        // 400 bytes held, then a resumed body that runs on past the declared length.
        let first = bytes[..400].to_vec();
        let reply = relay
            .send(put(&a, &token, None, 1_000, Body::from(first)))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        // No Content-Length: only reading finds it too long.
        let chunks = BrokenBody(VecDeque::from(vec![Bytes::from(vec![7u8; 500]); 2]));
        let reply = relay
            .send(put(&a, &token, Some(400), 1_000, Body::new(chunks)))
            .await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(reply.json()["code"], "too_large");
        assert!(relay.state.blobs.partial_hashes().await.unwrap().is_empty());
        assert!(relay.state.store.reserved_partials().unwrap().is_empty());
        // The upload starts again from nothing, and completes.
        assert_eq!(
            relay.send(head(&a, &token)).await.header("upload-offset"),
            Some("0")
        );
        assert_eq!(
            upload(&relay, &a, &token, &bytes).await.status,
            StatusCode::CREATED
        );
    }

    #[tokio::test]
    async fn unfinished_uploads_have_a_quota_per_device_and_in_all_and_expire() {
        let settings = Settings {
            max_blob_bytes: Some(1_000),
            partial_uploads_per_device: Some(2),
            partial_bytes_per_device: Some(2_000),
            partial_bytes_total: Some(3_000),
            partial_upload_ttl_secs: Some(2),
            ..Settings::default()
        };
        // Made-up hashes, listed by the officer's own document.
        let made_up: Vec<BlobHash> = (0..6u8).map(|n| BlobHash::of(&[n; 3])).collect();
        let relay = relay_with_settings(&made_up[0], &made_up[5], settings);
        relay
            .state
            .store
            .append_chunk(
                &DocumentId::for_assessment("ngo-may", "2025"),
                b"c",
                b"h",
                &made_up[..5],
                &[],
            )
            .unwrap();
        let (token, other) = (relay.token("officer-a"), relay.token("officer-a"));
        let park = |token: &str, hash: &BlobHash, total: u64, body: Body| {
            put(hash, token, None, total, body)
        };
        for hash in &made_up[..2] {
            let reply = relay
                .send(park(&token, hash, 1_000, Body::from("12345")))
                .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED);
        }
        // A third from the same device: refused before its body is read.
        let unread = Body::new(BrokenBody(VecDeque::new()));
        let reply = relay.send(park(&token, &made_up[2], 1_000, unread)).await;
        assert_eq!(reply.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(reply.json()["code"], "upload_quota");
        // Another device has its own quota, within the room for everyone (3,000 bytes).
        let reply = relay
            .send(park(&other, &made_up[2], 1_000, Body::from("1")))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        let reply = relay
            .send(park(&other, &made_up[3], 1, Body::from("1")))
            .await;
        assert_eq!(reply.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(reply.json()["code"], "uploads_full");
        // Continuing needs the same declared length.
        let reply = relay
            .send(put(&made_up[0], &token, Some(5), 999, Body::from("6")))
            .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(reply.json()["code"], "upload_length_mismatch");
        let reply = relay
            .send(put(&made_up[0], &token, Some(5), 1_000, Body::from("6")))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert_eq!(relay.state.blobs.partial_hashes().await.unwrap().len(), 3);

        // Untouched for the ttl, they stop counting at once, and the sweep deletes them.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let reply = relay
            .send(park(&token, &made_up[4], 1_000, Body::from("1")))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        let state = &relay.state;
        let deleted = uploads::sweep(&state.store, &state.blobs, &state.config)
            .await
            .unwrap();
        assert_eq!(deleted, 3);
        assert_eq!(
            state.blobs.partial_hashes().await.unwrap(),
            vec![made_up[4]]
        );
    }

    #[tokio::test]
    async fn uploading_a_stored_blob_again_is_a_200_no_op() {
        let bytes = photo(3_000, 7);
        let a = BlobHash::of(&bytes);
        let relay = relay_with(&a, &BlobHash::of(b"b"));
        let token = relay.token("officer-a");
        assert_eq!(
            upload(&relay, &a, &token, &bytes).await.status,
            StatusCode::CREATED
        );
        // The body would fail if it were read.
        let reply = relay
            .send(put(
                &a,
                &token,
                Some(0),
                3_000,
                Body::new(BrokenBody(VecDeque::new())),
            ))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(relay.state.metrics.blobs_stored.get(), 1);
        // A malformed request is refused all the same (it was a 200, schemathesis found).
        let malformed = authed("PUT", &format!("/v1/blobs/{a}"), &token)
            .header(UPLOAD_LENGTH, "")
            .header(UPLOAD_OFFSET, "_J")
            .body(Body::empty())
            .unwrap();
        let reply = relay.send(malformed).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["code"], "invalid_upload_header");
        let reply = relay
            .send(put(&a, &token, Some(3_001), 3_000, Body::empty()))
            .await;
        assert_eq!(reply.json()["code"], "offset_past_length");
    }

    #[tokio::test]
    async fn ranges_give_206_or_416() {
        let bytes = photo(1_000, 8);
        let a = BlobHash::of(&bytes);
        let relay = relay_with(&a, &BlobHash::of(b"b"));
        let token = relay.token("officer-a");
        upload(&relay, &a, &token, &bytes).await;

        let reply = relay
            .send(get_range(&a, &token, Some("bytes=100-199")))
            .await;
        assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(reply.body, &bytes[100..200]);
        assert_eq!(reply.header("content-range"), Some("bytes 100-199/1000"));
        assert_eq!(reply.header("content-length"), Some("100"));

        let reply = relay.send(get_range(&a, &token, Some("bytes=900-"))).await;
        assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(reply.body, &bytes[900..]);

        let reply = relay.send(get_range(&a, &token, Some("bytes=-10"))).await;
        assert_eq!(reply.body, &bytes[990..]);
        assert_eq!(reply.header("content-range"), Some("bytes 990-999/1000"));

        let reply = relay
            .send(get_range(&a, &token, Some("bytes=990-5000")))
            .await;
        assert_eq!(reply.body, &bytes[990..]);

        let reply = relay.send(get_range(&a, &token, Some("bytes=1000-"))).await;
        assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(reply.header("content-range"), Some("bytes */1000"));

        let reply = relay
            .send(get_range(&a, &token, Some("bytes=0-1,5-6")))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, bytes);
    }

    #[tokio::test]
    async fn officers_cannot_touch_another_wards_blobs() {
        let a_bytes = photo(1_000, 9);
        let b_bytes = photo(1_000, 10);
        let (a, b) = (BlobHash::of(&a_bytes), BlobHash::of(&b_bytes));
        let relay = relay_with(&a, &b);
        let officer_b = relay.token("officer-b");
        assert_eq!(
            upload(&relay, &b, &officer_b, &b_bytes).await.status,
            StatusCode::CREATED
        );

        let officer_a = relay.token("officer-a");
        let unreferenced = BlobHash::of(b"nobody references this");
        let mut bodies = Vec::new();
        for hash in [&b, &unreferenced] {
            // Stored (b) or not (unreferenced): the same 403.
            for request in [
                head(hash, &officer_a),
                get_range(hash, &officer_a, None),
                put(hash, &officer_a, None, 1_000, Body::from(b_bytes.clone())),
            ] {
                let reply = relay.send(request).await;
                assert_eq!(reply.status, StatusCode::FORBIDDEN);
                assert!(reply.header("upload-offset").is_none());
                assert!(reply.header("content-range").is_none());
                bodies.push(reply.body);
            }
        }
        let get_body = &bodies[1];
        assert_eq!(get_body, &bodies[4]);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(get_body).unwrap(),
            json!({"error": "not allowed", "code": "forbidden"})
        );
        // The province supervisor reads both wards.
        let supervisor = relay.token("sup-kt");
        assert_eq!(
            relay.send(get_range(&b, &supervisor, None)).await.body,
            b_bytes
        );
        assert_eq!(
            relay.send(head(&a, &supervisor)).await.status,
            StatusCode::NOT_FOUND
        );
        // A supervisor of another province does not; an admin does.
        relay
            .state
            .store
            .add_user(
                "sup-th",
                "Supervisor TH",
                crate::Role::Supervisor,
                "th",
                None,
            )
            .unwrap();
        let th = relay.token("sup-th");
        assert_eq!(
            relay.send(head(&b, &th)).await.status,
            StatusCode::FORBIDDEN
        );
        let admin = relay.token("admin");
        assert_eq!(relay.send(head(&b, &admin)).await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn missing_lists_only_what_the_caller_may_upload() {
        let a_bytes = photo(100, 11);
        let (a, b) = (BlobHash::of(&a_bytes), BlobHash::of(b"b"));
        let relay = relay_with(&a, &b);
        let token = relay.token("officer-a");
        let ask = |hashes: Vec<String>| {
            json_request(
                authed("POST", "/v1/blobs/missing", &token),
                json!({"hashes": hashes}),
            )
        };
        let unknown = BlobHash::of(b"unknown");
        let reply = relay
            .send(ask(vec![
                a.to_hex(),
                b.to_hex(),
                unknown.to_hex(),
                a.to_hex(),
            ]))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json(), json!({"missing": [a.to_hex()]}));

        upload(&relay, &a, &token, &a_bytes).await;
        let reply = relay.send(ask(vec![a.to_hex()])).await;
        assert_eq!(reply.json(), json!({"missing": []}));

        let too_many = vec![a.to_hex(); MAX_MISSING_QUERY + 1];
        let reply = relay.send(ask(too_many)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.json()["code"], "too_many_hashes");
        let reply = relay.send(ask(vec!["zz".into()])).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let reply = relay.send(ask(vec![a.to_hex(); MAX_MISSING_QUERY])).await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_bad_address_is_400() {
        let relay = relay_with(&BlobHash::of(b"a"), &BlobHash::of(b"b"));
        let token = relay.token("officer-a");
        let reply = relay
            .send(
                authed("GET", "/v1/blobs/not-a-hash", &token)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["code"], "invalid_hash");
    }
}

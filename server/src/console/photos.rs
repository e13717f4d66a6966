//! `GET /console/photo/{sha256}`: evidence photos and thumbnails for signed-in
//! supervisors, with the blob routes' scope rule: a blob is visible only through a
//! document in scope that references it; anything else is the same 403 whether it exists
//! or not.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;
use wardcheck_core::blob::BlobHash;

use super::session::Supervisor;
use crate::AppState;
use crate::error::AppError;

/// The photo (JPEG), if in scope; 403 if not (or malformed), 404 if in scope but not
/// uploaded yet.
pub async fn photo(
    State(state): State<AppState>,
    who: Supervisor,
    Path(hash): Path<String>,
) -> Result<Response, AppError> {
    let hash: BlobHash = hash.parse().map_err(|_| AppError::Forbidden)?;
    let principal = who.principal;
    let visible = state
        .db(move |store| store.blob_referenced_in_scope(&principal, &hash))
        .await?;
    if !visible {
        return Err(AppError::Forbidden);
    }
    let (file, size) = state
        .blobs
        .open_read(&hash)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (CONTENT_TYPE, "image/jpeg".to_owned()),
            (CONTENT_LENGTH, size.to_string()),
            // Content-addressed: it never changes, but it is not for shared caches.
            (
                CACHE_CONTROL,
                "private, max-age=86400, immutable".to_owned(),
            ),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}

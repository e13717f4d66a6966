//! What the HTTP API answers when something goes wrong.
//!
//! [`AppError`] has few variants, each an HTTP status and a stable `code`; the body is
//! always `{"error": "<message>", "code": "<code>"}`. Messages are fixed texts: they
//! never name a user, unit, device, token or file. The details of internal failures are
//! logged (inside the request's span) and never sent.

use axum::Json;
use axum::body::to_bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

/// The header that carries an upload's current offset.
pub const UPLOAD_OFFSET: &str = "upload-offset";

/// An error answer of the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// 400: the request is malformed.
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code.
        code: &'static str,
        /// Fixed human-readable text.
        message: &'static str,
    },
    /// 401: no token, an unknown or revoked token, or a bad enrolment code.
    #[error("authentication required")]
    Unauthorized,
    /// 403: the caller may not see or change this.
    #[error("not allowed")]
    Forbidden,
    /// 404.
    #[error("not found")]
    NotFound,
    /// 405: the route does not take this method (`Allow` says which it takes).
    #[error("the route does not take this method")]
    MethodNotAllowed,
    /// 408: the request (its body included) took longer than the route allows.
    #[error("the request took too long")]
    Timeout,
    /// 409 with the current upload offset in `Upload-Offset`.
    #[error("the upload offset does not match")]
    OffsetMismatch {
        /// Bytes the relay holds of this upload.
        current: u64,
    },
    /// 409: the request contradicts what the relay holds.
    #[error("{message}")]
    Conflict {
        /// Stable machine-readable code.
        code: &'static str,
        /// Fixed human-readable text.
        message: &'static str,
    },
    /// 409: another upload of the same blob is running; retry later.
    #[error("an upload of this blob is in progress")]
    UploadInProgress {
        /// Bytes the relay holds of this upload.
        current: u64,
    },
    /// 413.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 429 with `Retry-After`: too many requests from this client; wait that long.
    #[error("too many requests; retry later")]
    RateLimited {
        /// Seconds until a request would be taken.
        retry_after_secs: u64,
    },
    /// 416 with `Content-Range: bytes */<size>`.
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable {
        /// The blob's size.
        size: u64,
    },
    /// 422: well-formed but not acceptable.
    #[error("{message}")]
    Unprocessable {
        /// Stable machine-readable code.
        code: &'static str,
        /// Fixed human-readable text.
        message: &'static str,
    },
    /// 422: the change policy refuses the change; its reason names no one.
    #[error("refused: {0}")]
    Refused(wardcheck_core::policy::Refusal),
    /// 507: no room left for this, for this caller or for everyone.
    #[error("{message}")]
    NoRoom {
        /// Stable machine-readable code.
        code: &'static str,
        /// Fixed human-readable text.
        message: &'static str,
    },
    /// 503: the relay is shutting down or overloaded.
    #[error("the relay is unavailable")]
    Unavailable,
    /// Any other refusal by axum or a layer before a handler ran (see [`json_errors`]).
    #[error("{message}")]
    Rejected {
        /// The status it was answered with.
        status: StatusCode,
        /// Stable machine-readable code.
        code: &'static str,
        /// Fixed human-readable text.
        message: &'static str,
    },
    /// 500: logged with its details, answered generically.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// 400 with a code and a fixed message.
    pub fn bad_request(code: &'static str, message: &'static str) -> Self {
        AppError::BadRequest { code, message }
    }

    /// 422 with a code and a fixed message.
    pub fn unprocessable(code: &'static str, message: &'static str) -> Self {
        AppError::Unprocessable { code, message }
    }

    /// An internal error from anything that can be logged.
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError::Internal(err.into())
    }

    /// The error answering with `status`, for answers that came without one of ours.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => {
                AppError::bad_request("bad_request", "the request is malformed")
            }
            StatusCode::UNAUTHORIZED => AppError::Unauthorized,
            StatusCode::FORBIDDEN => AppError::Forbidden,
            StatusCode::NOT_FOUND => AppError::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => AppError::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            StatusCode::UNPROCESSABLE_ENTITY => {
                AppError::unprocessable("invalid_request", "the request is not acceptable")
            }
            StatusCode::SERVICE_UNAVAILABLE => AppError::Unavailable,
            status => AppError::Rejected {
                status,
                code: if status.is_server_error() {
                    "internal"
                } else {
                    "rejected"
                },
                message: status
                    .canonical_reason()
                    .unwrap_or("the request was refused"),
            },
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Timeout => StatusCode::REQUEST_TIMEOUT,
            AppError::OffsetMismatch { .. }
            | AppError::UploadInProgress { .. }
            | AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            AppError::Unprocessable { .. } | AppError::Refused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::NoRoom { .. } => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Rejected { status, .. } => *status,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code sent as `"code"`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Unprocessable { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::NoRoom { code, .. }
            | AppError::Rejected { code, .. } => code,
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Timeout => "timeout",
            AppError::OffsetMismatch { .. } => "offset_mismatch",
            AppError::UploadInProgress { .. } => "upload_in_progress",
            AppError::PayloadTooLarge => "too_large",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            AppError::Refused(_) => "refused",
            AppError::Unavailable => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error, example = json!({"error": "not allowed", "code": "forbidden"}))]
pub(crate) struct ErrorBody {
    /// What went wrong, a fixed text that names no user, unit, device, token or file.
    error: String,
    /// A stable machine-readable code (`unauthorized`, `forbidden`, `not_found`,
    /// `too_large`, ...), named with each route's answers.
    code: &'static str,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Internal(err) => {
                tracing::error!(error = %err, source = ?err.source(), "request failed")
            }
            other => tracing::debug!(
                status = status.as_u16(),
                code = other.code(),
                "request refused"
            ),
        }
        let body = ErrorBody {
            error: self.to_string(),
            code: self.code(),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            AppError::OffsetMismatch { current } | AppError::UploadInProgress { current } => {
                headers.insert(UPLOAD_OFFSET, HeaderValue::from(current));
            }
            AppError::RangeNotSatisfiable { size } => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
            }
            AppError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            AppError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        AppError::internal(err)
    }
}

impl From<std::io::Error> for AppError {
    fn from(err: std::io::Error) -> Self {
        AppError::internal(err)
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        AppError::internal(err)
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        tracing::debug!(reason = %rejection.body_text(), "bad JSON body");
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::PayloadTooLarge;
        }
        match rejection {
            JsonRejection::JsonDataError(_) => {
                AppError::unprocessable("invalid_body", "the JSON body has the wrong shape")
            }
            JsonRejection::MissingJsonContentType(_) => AppError::bad_request(
                "not_json",
                "the body must be JSON (Content-Type: application/json)",
            ),
            _ => AppError::bad_request("bad_json", "the body is not valid JSON"),
        }
    }
}

/// The largest body of a non-JSON error answer read, for the log.
const MAX_REJECTION_BODY: usize = 4096;

/// Gives every error answer the JSON shape. Handlers answer with [`AppError`]s already;
/// axum's own rejections (a path that does not decode, a form that does not parse, a
/// method the route does not take, a WebSocket request without its upgrade) and the
/// layers' (body limit, timeout) come as plain text or empty: they become the
/// [`AppError`] of their status ([`AppError::for_status`]), keeping their headers (`Allow`,
/// `Retry-After`). JSON and HTML answers, successes, and answers to `HEAD` (which have no
/// body) pass as they are.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let head = request.method() == Method::HEAD;
    let response = next.run(request).await;
    let status = response.status();
    let typed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("text/html")
        });
    if head || typed || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    if let Ok(text) = to_bytes(body, MAX_REJECTION_BODY).await {
        tracing::debug!(
            status = status.as_u16(),
            reason = %String::from_utf8_lossy(&text),
            "request rejected before its handler"
        );
    }
    let mut error = AppError::for_status(status).into_response();
    let set: Vec<_> = error.headers().keys().cloned().collect();
    for (name, value) in &parts.headers {
        let about_the_body = name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH;
        if !about_the_body && !set.contains(name) {
            error.headers_mut().append(name, value.clone());
        }
    }
    error
}

/// `axum::Json` whose rejections are [`AppError`]s, so a bad body gets the same JSON
/// error shape as everything else.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(AppJson(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body_of(err: AppError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_answer_json_with_a_code() {
        let (status, _, body) = body_of(AppError::Forbidden).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            serde_json::json!({"error": "not allowed", "code": "forbidden"})
        );

        let (status, headers, body) = body_of(AppError::OffsetMismatch { current: 42 }).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(headers[UPLOAD_OFFSET], "42");
        assert_eq!(body["code"], "offset_mismatch");

        let (_, headers, _) = body_of(AppError::RangeNotSatisfiable { size: 7 }).await;
        assert_eq!(headers[header::CONTENT_RANGE], "bytes */7");
    }

    #[tokio::test]
    async fn internal_details_stay_out_of_the_body() {
        let secret = std::io::Error::other("/data/blobs/partial/abc: disk full for user x");
        let (status, _, body) = body_of(secret.into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            serde_json::json!({"error": "internal error", "code": "internal"})
        );
    }
}

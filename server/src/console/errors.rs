//! Errors as pages: the console's handlers answer with the relay's [`AppError`]s (JSON
//! for the API); for a person in a browser they become a page in their language, with the
//! same status. The page says no more than the JSON did: every 403 is the same page.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::page;
use super::session::lang_of;
use crate::error::AppError;

/// The largest error body read (they are a few dozen bytes).
const MAX_ERROR_BODY: usize = 4096;

/// Turns a JSON error answer into an HTML page with the same status.
pub async fn as_pages(request: Request, next: Next) -> Response {
    let lang = lang_of(request.headers());
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let code = match to_bytes(response.into_body(), MAX_ERROR_BODY).await {
        Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        Err(_) => return AppError::internal("unreadable error body").into_response(),
    };
    let t = lang.texts();
    let message = match (status, code.as_str()) {
        (StatusCode::FORBIDDEN, _) => t.forbidden,
        (StatusCode::NOT_FOUND, _) => t.not_found,
        (_, "reason_required") => t.reason_required,
        (_, "not_allowed") => t.review_not_allowed,
        (_, "no_conflict") => t.conflict_gone,
        _ => t.failed,
    };
    let body = page(
        lang,
        None,
        message,
        html! {
            div.card {
                p.error role="alert" { (message) }
                p { a href="/console/" { (t.overview) } }
            }
        },
    );
    (status, body).into_response()
}

//! The supervisors' web console, served by the relay under `/console/`.
//!
//! Supervisors of a city or province sign in with a password, follow every ward's
//! progress, look at the photo evidence, approve or return criteria and settle what
//! offline edits left in conflict. Reviews and settled values are Automerge changes by
//! the supervisor, stored like any synced change, so phones get them at their next sync.
//!
//! | route | what | module |
//! |---|---|---|
//! | `GET /console/login`, `POST /console/login`, `POST /console/logout` | sign-in, sign-out | `session` |
//! | `GET /console/lang/{vi,en}` | language switch | `session` |
//! | `GET /console/` | overview: units, progress, last sync, stale evidence; filters, search | `pages` |
//! | `GET /console/d/{doc}` | a unit's checklist by area | `pages` |
//! | `GET /console/d/{doc}/c/{criterion}` | evidence, GPS, signatures, history, reuse, review forms | `pages` |
//! | `POST /console/d/{doc}/c/{criterion}/review` | approve, or return with a reason | `pages` |
//! | `GET /console/conflicts`, `POST /console/d/{doc}/settle` | conflicts inbox | `pages` |
//! | `GET /console/photo/{sha256}` | a photo or thumbnail in scope | `photos` |
//! | `GET /console/export/progress.csv`, `GET /console/d/{doc}/evidence.zip`, `GET /console/d/{doc}/dossier` | exports | `export` |
//!
//! Every page but sign-in needs a session (`session::Supervisor`); every POST checks the
//! session's CSRF token and the `Origin`. Documents outside the supervisor's scope, and
//! documents that do not exist, are the same 403. Errors are pages in the user's language
//! (`errors`).

mod docs;
mod errors;
mod export;
mod form_token;
mod i18n;
mod layout;
mod pages;
mod photos;
mod search;
mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::config::Config;
use crate::routes::json_limits;

/// The console's routes, and `/` redirecting to it.
pub fn router(config: &Config) -> Router<AppState> {
    let https = config.serves_https();
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/login",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/logout", post(session::sign_out))
        .route("/console/lang/{code}", get(session::switch_lang))
        .route("/console/", get(pages::overview))
        .route("/console/conflicts", get(pages::conflicts))
        .route("/console/d/{doc}", get(pages::unit))
        .route("/console/d/{doc}/c/{criterion}", get(pages::criterion))
        .route("/console/d/{doc}/c/{criterion}/review", post(pages::review))
        .route("/console/d/{doc}/settle", post(pages::settle))
        .route("/console/d/{doc}/dossier", get(export::dossier))
        .route("/console/d/{doc}/evidence.zip", get(export::evidence_zip))
        .route("/console/export/progress.csv", get(export::progress_csv))
        .route("/console/photo/{hash}", get(photos::photo))
        .layer(middleware::from_fn(move |request, next| {
            session::same_origin(https, request, next)
        }))
        .layer(json_limits(config))
        // The limits' and axum's rejections in the JSON shape, then as pages.
        .layer(middleware::from_fn(crate::error::json_errors))
        .layer(middleware::from_fn(errors::as_pages))
        .layer(middleware::from_fn(security_headers))
}

/// What the pages may load and who may frame them: only this relay, never inside
/// another site's frame (no clickjacking of the review buttons). The one script is the
/// dossier's `onclick="window.print()"`, allowed by its hash.
const CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
    script-src 'unsafe-hashes' 'sha256-MguIPR6qNR8D3B+eAlK+bIRTZe8t3wkOY4B/56Me9FU='; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The language switch goes back to the page it was clicked on.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

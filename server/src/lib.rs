//! The wardcheck relay: the server at the province police headquarters that phones
//! sync with.
//!
//! It keeps accounts (units, users, enrolled devices), the assessment documents and the
//! photo blobs they reference, and serves them over HTTP to enrolled devices, each
//! limited to the wards in its scope. See `README.md` for running it and the module
//! list; [`app`] is the whole HTTP API as an axum `Router`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use wardcheck_relay::{AppState, Config, serve};
//!
//! let config = Config::default(); // ./wardcheck-data, 127.0.0.1:8080
//! let state = AppState::open(config.clone())?;
//! let bound = serve::bind(&config).await?;
//! println!("listening on {}", bound.url());
//! bound.serve(state, serve::shutdown_signal()?).await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod auth;
pub mod blobstore;
pub mod config;
pub mod console;
pub mod documents;
pub mod error;
pub mod metrics;
pub mod names;
pub mod passwords;
pub mod ratelimit;
pub mod revocation;
mod routes;
pub mod serve;
mod state;
pub mod store;
pub mod uploads;

use axum::http::Request;
use axum::middleware;
use axum::{Extension, Router};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use auth::{Principal, Role};
pub use config::Config;
pub use documents::{DocCache, DocError, Intake, SharedDoc};
pub use error::{AppError, AppJson};
pub use revocation::Revocations;
pub use state::{AppState, OpenError, Shutdown};
pub use store::RelayStore;

/// The relay's HTTP API over `state` (see the `routes` table in `routes/mod.rs`) and the
/// supervisors' web console under `/console/` (see [`console`]).
///
/// Layers, outermost first: tracing (a span per request with method and path, never the
/// query string, which may hold a token), the JSON shape of every error
/// ([`error::json_errors`]), metrics (per route pattern), authentication (authenticated
/// areas only), then each area's body limit and timeout. The phone API's routes come with
/// their OpenAPI description, served at `GET /v1/openapi.json`.
pub fn app(state: AppState) -> Router {
    let (api, description) = routes::api(&state).split_for_parts();
    Router::new()
        .merge(api.layer(Extension(routes::openapi::Description::of(description))))
        .merge(console::router(&state.config))
        .fallback(routes::not_found)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(middleware::from_fn(error::json_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // Every answer is logged above with its status, and internal errors with
                // their details (`AppError`): a refusal by status (503, 507) is no error
                // of the relay's, and must not flood the log at error level.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .with_state(state)
}

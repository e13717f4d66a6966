//! The HTTP API, one module per area, assembled by [`crate::app`].
//!
//! | route | auth | module |
//! |---|---|---|
//! | `GET /healthz` | none | `health` |
//! | `GET /metrics` | none, loopback peers only unless `metrics_remote` | `health` |
//! | `POST /v1/enroll` | the one-time code in the body | `enroll` |
//! | `GET /v1/documents` | token | `documents` |
//! | `HEAD`/`GET`/`PUT /v1/blobs/{sha256}`, `POST /v1/blobs/missing` | token | `blobs` |
//! | `GET /v1/sync` (WebSocket) | token | `sync` |
//! | `GET /v1/openapi.json` (this API's OpenAPI description) | none | `openapi` |
//! | `/`, `/console/…` (the supervisors' console) | session cookie | [`crate::console`] |
//!
//! Each area's router carries its own body limit and timeout layers; the
//! authentication layer wraps every authenticated area (see [`crate::auth`]). Handlers are
//! routed with their OpenAPI description (`openapi`, served at `GET /v1/openapi.json`);
//! a layer shared by an area adds what it answers to the area's description.

pub(crate) mod blobs;
pub(crate) mod criteria;
pub(crate) mod documents;
pub(crate) mod enroll;
pub(crate) mod health;
pub(crate) mod openapi;
pub(crate) mod ranges;
pub(crate) mod sync;

use std::time::Duration;

use axum::http::StatusCode;
use axum::middleware;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::config::Config;
use crate::error::AppError;
use crate::{AppState, auth};

/// The phone API with its description: the public routes and the authenticated ones.
pub(crate) fn api(state: &AppState) -> OpenApiRouter<AppState> {
    openapi::router()
        .merge(public(state))
        .merge(authenticated(state))
}

/// Routes that need no token.
fn public(state: &AppState) -> OpenApiRouter<AppState> {
    health::router().merge(with_json_limits(enroll::router(state), &state.config))
}

/// Routes behind the authentication layer. The sync WebSocket (`routes/sync.rs`) is
/// merged here too, without the timeout layer (its connections live long).
fn authenticated(state: &AppState) -> OpenApiRouter<AppState> {
    let config = &state.config;
    let mut router = with_json_limits(documents::router().merge(criteria::router()), config)
        .merge(blobs::router(config))
        .merge(sync::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_principal,
        ));
    openapi::behind_token(router.get_openapi_mut());
    router
}

/// Body limit and timeout of small JSON requests, on `router` and in its description.
fn with_json_limits(router: OpenApiRouter<AppState>, config: &Config) -> OpenApiRouter<AppState> {
    body_limited(timed(router, config.request_timeout), config.max_json_bytes)
}

/// A timeout answering 408 (`timeout`), on `router` and in its description.
pub(crate) fn timed(router: OpenApiRouter<AppState>, after: Duration) -> OpenApiRouter<AppState> {
    let mut router = router.layer(timeout(after));
    openapi::add_error(
        router.get_openapi_mut(),
        StatusCode::REQUEST_TIMEOUT,
        "`timeout`: the request, its body included, took longer than the route allows",
    );
    router
}

/// A body limit of `max_bytes` answering 413 (`too_large`), on `router` and in its
/// description.
pub(crate) fn body_limited(
    router: OpenApiRouter<AppState>,
    max_bytes: usize,
) -> OpenApiRouter<AppState> {
    let mut router = router.layer(RequestBodyLimitLayer::new(max_bytes));
    openapi::add_error(
        router.get_openapi_mut(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "`too_large`: the body is larger than the route takes",
    );
    router
}

/// Body limit and timeout of small JSON requests, as layers (the console's forms).
pub(crate) fn json_limits(config: &Config) -> (RequestBodyLimitLayer, TimeoutLayer) {
    (
        RequestBodyLimitLayer::new(config.max_json_bytes),
        timeout(config.request_timeout),
    )
}

/// A timeout answering 408.
fn timeout(after: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, after)
}

/// Unknown paths.
pub(crate) async fn not_found() -> AppError {
    AppError::NotFound
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for handler tests: a relay on a temp folder, seeded accounts, enrolled
    //! devices, and a request runner.

    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, Response, StatusCode};
    use tower::ServiceExt;

    use wardcheck_core::blob::BlobHash;
    use wardcheck_core::doc::DocumentId;

    use crate::config::{Config, Settings};
    use crate::store::accounts::tests::seed;
    use crate::{AppState, app, auth};

    /// A relay on a temporary data folder, seeded with the test unit tree.
    pub(crate) struct TestRelay {
        pub _dir: tempfile::TempDir,
        pub state: AppState,
        pub app: Router,
    }

    impl TestRelay {
        pub(crate) fn new() -> Self {
            Self::with(Settings::default())
        }

        pub(crate) fn with(settings: Settings) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let settings = Settings {
                data: Some(dir.path().join("data")),
                ..settings
            };
            let state = AppState::open(Config::from_settings(settings).unwrap()).unwrap();
            seed(&state.store);
            let app = app(state.clone());
            Self {
                _dir: dir,
                state,
                app,
            }
        }

        /// Enrols a device for `user` straight through the store; returns (device id,
        /// token).
        pub(crate) fn device(&self, user: &str) -> (String, String) {
            let code = auth::new_enrolment_code();
            let code_hash = auth::enrolment_code_hash(&code).unwrap();
            self.state
                .store
                .create_enrolment_code(&code_hash, user, 0, i64::MAX)
                .unwrap();
            let token = auth::new_token();
            let id = auth::new_device_id();
            self.state
                .store
                .enrol(
                    &code_hash,
                    &crate::store::NewDevice {
                        id: id.clone(),
                        name: "test phone".into(),
                        token_hash: auth::token_hash(&token),
                        public_key: "11".repeat(32),
                    },
                    1,
                )
                .unwrap();
            (id, token)
        }

        /// Stores a (placeholder) document of `ward` for 2025 that references `blobs`, so
        /// they are in that ward's scope.
        pub(crate) fn document_referencing(&self, ward: &str, blobs: &[BlobHash]) {
            self.state
                .store
                .insert_document(
                    &DocumentId::for_assessment(ward, "2025"),
                    ward,
                    b"s",
                    b"h",
                    blobs,
                    &[],
                )
                .unwrap();
        }

        /// A token of a fresh device of `user`.
        pub(crate) fn token(&self, user: &str) -> String {
            self.device(user).1
        }

        pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
            let response = self.app.clone().oneshot(request).await.unwrap();
            Reply::read(response).await
        }
    }

    /// A response with its body read.
    pub(crate) struct Reply {
        pub status: StatusCode,
        pub headers: axum::http::HeaderMap,
        pub body: Vec<u8>,
    }

    impl Reply {
        pub(crate) async fn read(response: Response<Body>) -> Self {
            let status = response.status();
            let headers = response.headers().clone();
            let body = to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            Self {
                status,
                headers,
                body,
            }
        }

        pub(crate) fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
        }

        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }
    }

    /// A request builder with a bearer token.
    pub(crate) fn authed(method: &str, uri: &str, token: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
    }

    /// A JSON request.
    pub(crate) fn json_request(
        builder: axum::http::request::Builder,
        body: serde_json::Value,
    ) -> Request<Body> {
        builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    //! The authorization matrix: every authenticated route, every way a token can be
    //! missing or bad.

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use wardcheck_core::blob::BlobHash;

    use super::testing::{Reply, TestRelay};
    use crate::store::now_ms;

    /// (method, path, body) of every authenticated route. The blob is referenced by
    /// officer-a's ward, so a valid token gets past authorization.
    fn routes(hash: &BlobHash) -> Vec<(&'static str, String, &'static str)> {
        vec![
            ("GET", "/v1/documents".into(), ""),
            ("POST", "/v1/blobs/missing".into(), r#"{"hashes": []}"#),
            ("HEAD", format!("/v1/blobs/{hash}"), ""),
            ("GET", format!("/v1/blobs/{hash}"), ""),
            ("PUT", format!("/v1/blobs/{hash}"), "x"),
        ]
    }

    async fn call(
        relay: &TestRelay,
        (method, path, body): &(&'static str, String, &'static str),
        header: Option<&str>,
        query: Option<&str>,
    ) -> Reply {
        let uri = match query {
            Some(token) => format!("{path}?token={token}"),
            None => path.clone(),
        };
        let mut builder = Request::builder()
            .method(*method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("upload-length", "1");
        if let Some(value) = header {
            builder = builder.header("authorization", value);
        }
        relay.send(builder.body(Body::from(*body)).unwrap()).await
    }

    fn assert_401(reply: &Reply, what: &str) {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        if !reply.body.is_empty() {
            assert_eq!(reply.json()["code"], "unauthorized", "{what}");
        }
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }

    #[tokio::test]
    async fn every_route_needs_a_live_token() {
        let relay = TestRelay::new();
        let hash = BlobHash::of(b"x");
        relay.document_referencing("ngo-may", &[hash]);
        let (device, token) = relay.device("officer-a");
        let bearer = format!("Bearer {token}");
        for route in routes(&hash) {
            let what = format!("{} {}", route.0, route.1);
            assert_401(&call(&relay, &route, None, None).await, &what);
            assert_401(
                &call(&relay, &route, Some("Bearer nope"), None).await,
                &what,
            );
            assert_401(
                &call(&relay, &route, Some(&format!("Basic {token}")), None).await,
                &what,
            );
            assert_401(&call(&relay, &route, None, Some("nope")).await, &what);
            assert_401(&call(&relay, &route, Some("Bearer "), None).await, &what);

            let ok = call(&relay, &route, Some(&bearer), None).await;
            assert!(
                ok.status.is_success() || ok.status == StatusCode::NOT_FOUND,
                "{what}: {}",
                ok.status
            );
            let ok = call(&relay, &route, Some(&format!("bearer {token}")), None).await;
            assert_ne!(ok.status, StatusCode::UNAUTHORIZED, "{what}");
            let by_query = call(&relay, &route, None, Some(&token)).await;
            assert_ne!(by_query.status, StatusCode::UNAUTHORIZED, "{what}");
            assert_ne!(by_query.status, StatusCode::FORBIDDEN, "{what}");
        }

        // Revoked (as `admin device revoke` does, in the database): refused at once,
        // on the very next request, by header and by query.
        relay.state.store.revoke_device(&device, now_ms()).unwrap();
        for route in routes(&hash) {
            let what = format!("{} {}", route.0, route.1);
            assert_401(&call(&relay, &route, Some(&bearer), None).await, &what);
            assert_401(&call(&relay, &route, None, Some(&token)).await, &what);
        }
    }

    /// A body that never ends (a client that stops sending).
    struct NeverEnds;

    impl http_body::Body for NeverEnds {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test]
    async fn every_error_has_the_json_shape() {
        let relay = TestRelay::with(crate::config::Settings {
            request_timeout_secs: Some(1),
            ..Default::default()
        });
        let token = relay.token("officer-a");
        let bearer = format!("Bearer {token}");
        let request = |method: &str, uri: &str| {
            Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", &bearer)
        };
        let cases = [
            // A method the route does not take.
            (
                request("DELETE", "/v1/documents").body(Body::empty()),
                405,
                "method_not_allowed",
            ),
            // No route.
            (
                request("GET", "/v2/anything").body(Body::empty()),
                404,
                "not_found",
            ),
            // A declared body over the limit (refused by the limit layer, unread).
            (
                request("POST", "/v1/enroll")
                    .header("content-type", "application/json")
                    .header("content-length", "100000")
                    .body(Body::from(vec![b' '; 100_000])),
                413,
                "too_large",
            ),
            // A path that does not decode.
            (
                request("GET", "/v1/blobs/%FF%FE").body(Body::empty()),
                400,
                "bad_request",
            ),
            // The sync route without a WebSocket upgrade.
            (
                request("GET", "/v1/sync").body(Body::empty()),
                400,
                "bad_request",
            ),
            // A body that stops coming.
            (
                request("POST", "/v1/enroll")
                    .header("content-type", "application/json")
                    .body(Body::new(NeverEnds)),
                408,
                "timeout",
            ),
        ];
        for (request, status, code) in cases {
            let request = request.unwrap();
            let what = format!("{} {}", request.method(), request.uri());
            let reply = relay.send(request).await;
            assert_eq!(reply.status.as_u16(), status, "{what}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{what}"
            );
            let body = reply.json();
            assert_eq!(body["code"], code, "{what}: {body}");
            assert!(body["error"].is_string(), "{what}: {body}");
            if status == 405 {
                assert_eq!(reply.header("allow"), Some("GET,HEAD"), "{what}");
            }
        }
        // The console's own rejections are pages.
        let reply = relay
            .send(
                Request::delete("/console/login")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }

    #[tokio::test]
    async fn public_routes_need_no_token() {
        let relay = TestRelay::new();
        let health = relay
            .send(Request::get("/healthz").body(Body::empty()).unwrap())
            .await;
        assert_eq!(health.status, StatusCode::OK);
        let enroll = relay
            .send(
                Request::post("/v1/enroll")
                    .header("content-type", "application/json")
                    .body(Body::from(
                        r#"{"code": "x", "device_name": "p", "public_key": "k"}"#,
                    ))
                    .unwrap(),
            )
            .await;
        // Refused for its bad key, not for a missing token.
        assert_eq!(enroll.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

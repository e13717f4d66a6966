//! `GET /healthz` and `GET /metrics`.
//!
//! `/metrics` needs no token but answers only peers on the loopback interface (a
//! Prometheus agent on the relay host, or an SSH tunnel), unless `metrics_remote = true`:
//! request counts by route reveal activity patterns, not data. A request whose peer
//! address is unknown is treated as remote.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::AppError;
use crate::serve::Peer;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

/// Whether the relay is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "relay",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")),
)]
async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus metrics, for peers on the loopback interface (unless `metrics_remote`).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "relay",
    responses(
        (
            status = 200,
            description = "Prometheus text: requests by route and status, latency, open \
                           connections, blobs stored",
            body = String,
            content_type = "text/plain",
        ),
        (status = 403, description = "`forbidden`: not a loopback peer"),
    ),
)]
async fn metrics(
    State(state): State<AppState>,
    request: Request,
) -> Result<impl IntoResponse, AppError> {
    let loopback = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .is_some_and(|ConnectInfo(Peer(peer))| peer.ip().is_loopback());
    if !loopback && !state.config.metrics_remote {
        return Err(AppError::Forbidden);
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    ))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};

    use crate::config::Settings;
    use crate::routes::testing::TestRelay;
    use crate::serve::Peer;

    fn get(uri: &str, peer: Option<&str>) -> Request<Body> {
        let mut request = Request::get(uri).body(Body::empty()).unwrap();
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(ConnectInfo(Peer(peer.parse().unwrap())));
        }
        request
    }

    #[tokio::test]
    async fn healthz_answers_ok_without_a_token() {
        let relay = TestRelay::new();
        let reply = relay.send(get("/healthz", None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, b"ok");
    }

    #[tokio::test]
    async fn metrics_count_requests_for_loopback_peers_only() {
        let relay = TestRelay::new();
        relay.send(get("/healthz", None)).await;
        relay.send(get("/v1/documents", None)).await; // 401
        let reply = relay.send(get("/metrics", Some("127.0.0.1:5000"))).await;
        assert_eq!(reply.status, StatusCode::OK);
        let text = String::from_utf8(reply.body).unwrap();
        assert!(text.contains(
            r#"wardcheck_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ));
        assert!(text.contains(
            r#"wardcheck_http_requests_total{method="GET",route="/v1/documents",status="401"} 1"#
        ));
        assert!(text.contains("wardcheck_open_connections 0"));
        assert!(text.contains("wardcheck_blobs_stored 0"));

        let remote = relay.send(get("/metrics", Some("192.0.2.9:5000"))).await;
        assert_eq!(remote.status, StatusCode::FORBIDDEN);
        let unknown = relay.send(get("/metrics", None)).await;
        assert_eq!(unknown.status, StatusCode::FORBIDDEN);

        let open = TestRelay::with(Settings {
            metrics_remote: Some(true),
            ..Settings::default()
        });
        let remote = open.send(get("/metrics", Some("192.0.2.9:5000"))).await;
        assert_eq!(remote.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_paths_are_json_404s() {
        let relay = TestRelay::new();
        let reply = relay.send(get("/nope", None)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json()["code"], "not_found");
    }
}

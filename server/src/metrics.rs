//! Prometheus metrics: requests by route and status, latency, open connections, blobs
//! stored. Each [`Metrics`] has its own registry, so tests running several relays in
//! one process do not mix their numbers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::AppState;

/// The relay's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Open TCP connections (HTTP and TLS), kept by the server's listener.
    pub open_connections: IntGauge,
    /// Blobs stored on disk.
    pub blobs_stored: IntGauge,
    changes_refused: IntCounterVec,
    /// Connections closed as soon as accepted: their address had
    /// `connections_per_address` open already.
    pub connections_refused: IntCounter,
    /// Console passwords checked (argon2 verifications run).
    pub password_checks: IntCounter,
}

impl Metrics {
    /// Fresh metrics in a registry of their own.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("wardcheck_http_requests_total", "HTTP requests answered"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "wardcheck_http_request_duration_seconds",
                "Time to answer an HTTP request (until the response head)",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let open_connections = IntGauge::new(
            "wardcheck_open_connections",
            "Client connections currently open",
        )
        .expect("valid metric");
        let blobs_stored =
            IntGauge::new("wardcheck_blobs_stored", "Photo blobs stored").expect("valid metric");
        let changes_refused = IntCounterVec::new(
            Opts::new(
                "wardcheck_changes_refused_total",
                "Change sets the change policy refused, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let connections_refused = IntCounter::new(
            "wardcheck_connections_refused_total",
            "Connections closed at once: too many open from their address",
        )
        .expect("valid metric");
        let password_checks = IntCounter::new(
            "wardcheck_console_password_checks_total",
            "Console passwords checked",
        )
        .expect("valid metric");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(open_connections.clone()),
            Box::new(blobs_stored.clone()),
            Box::new(changes_refused.clone()),
            Box::new(connections_refused.clone()),
            Box::new(password_checks.clone()),
        ] {
            registry.register(metric).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            latency,
            open_connections,
            blobs_stored,
            changes_refused,
            connections_refused,
            password_checks,
        }
    }

    /// Counts a change set the change policy refused, by the refusal's code.
    pub fn refused(&self, reason: &str) {
        self.changes_refused.with_label_values(&[reason]).inc();
    }

    /// The metrics in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    fn observe(&self, route: &str, method: &str, status: u16, started: Instant) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(started.elapsed().as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware counting each routed request under its route pattern (e.g.
/// `/v1/blobs/{sha256}`, never the concrete path, which would explode the label set).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    state
        .metrics
        .observe(&route, &method, response.status().as_u16(), started);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::new();
        metrics.observe("/healthz", "GET", 200, Instant::now());
        metrics.blobs_stored.set(3);
        metrics.refused("not_a_reviewer");
        let text = metrics.render();
        assert!(text.contains(
            "wardcheck_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ));
        assert!(text.contains("wardcheck_http_request_duration_seconds_bucket"));
        assert!(text.contains("wardcheck_blobs_stored 3"));
        assert!(text.contains("wardcheck_open_connections 0"));
        assert!(text.contains("wardcheck_changes_refused_total{reason=\"not_a_reviewer\"} 1"));
    }
}

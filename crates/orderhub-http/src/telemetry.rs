//! Request metrics and the Prometheus endpoint. Names follow `orderhub_<thing>_<unit>`.

use crate::SharedState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;
use tracing::Instrument;

/// Latency buckets in seconds: fine below 20 ms, where an order API should live.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// The process-wide recorder, installed once (tests start many apps in one process).
    pub fn install() -> Metrics {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE
            .get_or_init(|| {
                let recorder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                    .expect("static buckets are valid")
                    .build_recorder();
                let handle = recorder.handle();
                // Another recorder may already be installed by an embedding program; ours then
                // only renders what it sees.
                let _ = metrics::set_global_recorder(recorder);
                metrics::describe_counter!(
                    "orderhub_http_requests_total",
                    "HTTP requests by route and status"
                );
                metrics::describe_histogram!(
                    "orderhub_http_request_duration_seconds",
                    "HTTP request latency"
                );
                metrics::describe_gauge!(
                    "orderhub_orders",
                    "Orders in the store by status and channel"
                );
                handle
            })
            .clone();
        Metrics { handle }
    }

    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// Counts and times every request under its route template (`/v1/orders/{id}`), never its raw path.
pub async fn track(State(_state): State<SharedState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    // Every log line written while serving the request carries its id, method and route (never
    // its body: bodies hold personal data).
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    let resp = next.run(req).instrument(span.clone()).await;
    let code = resp.status();
    let _entered = span.enter();
    if code.is_server_error() {
        tracing::error!(
            status = code.as_u16(),
            elapsed_ms = start.elapsed().as_millis() as u64,
            "The request failed on the server side."
        );
    } else {
        tracing::debug!(
            status = code.as_u16(),
            elapsed_ms = start.elapsed().as_millis() as u64,
            "Request served."
        );
    }
    let status = code.as_u16().to_string();
    metrics::counter!("orderhub_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("orderhub_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

//! Request metrics and the Prometheus endpoint. Names follow `orderhub_<thing>_<unit>`. Each
//! request runs in a span `request`, which continues the caller's W3C trace context when traces
//! are exported (`orderhub-telemetry`).

use crate::SharedState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
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
                metrics::describe_counter!(
                    "orderhub_http_shed_total",
                    "HTTP requests answered 503 by admission: over the in-flight limit or past their time"
                );
                metrics::describe_gauge!(
                    "orderhub_http_requests_in_flight",
                    "HTTP requests being handled (probes and the scrape not counted)"
                );
                metrics::describe_counter!(
                    "orderhub_store_queue_full_total",
                    "Store writes and reads refused because their queue was full"
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
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", |m| m.as_str());
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
    if orderhub_telemetry::enabled() {
        // The caller's W3C trace context, when it sent one: the request continues its trace.
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        orderhub_telemetry::set_parent(
            &span,
            header(orderhub_telemetry::TRACEPARENT),
            header(orderhub_telemetry::TRACESTATE),
        );
    }
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
    let (count, time) = series(&method, route, code.as_u16());
    count.increment(1);
    time.record(start.elapsed().as_secs_f64());
    resp
}

/// Series kept per route at most (methods × statuses); a route's further ones are not cached.
const SERIES_PER_ROUTE_MAX: usize = 32;

/// One route's request counter (by method and status) and duration histogram (by method).
type RouteSeries = Vec<(Method, u16, Counter, Histogram)>;

/// The counter and histogram of a route, method and status, registered with the recorder once:
/// making their keys (three label strings) and finding them in the recorder at every request
/// was measurable under `bench channels` (two webhook requests per channel order).
fn series(method: &Method, route: &str, status: u16) -> (Counter, Histogram) {
    static CACHE: OnceLock<RwLock<HashMap<String, RouteSeries>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(route)
        .and_then(|v| v.iter().find(|(m, s, _, _)| m == method && *s == status))
    {
        return (found.2.clone(), found.3.clone());
    }
    let (m, r) = (method.as_str().to_owned(), route.to_owned());
    let count = metrics::counter!("orderhub_http_requests_total", "method" => m.clone(), "route" => r.clone(), "status" => status.to_string());
    let time =
        metrics::histogram!("orderhub_http_request_duration_seconds", "method" => m, "route" => r);
    let mut w = cache.write().unwrap_or_else(|e| e.into_inner());
    let v = w.entry(route.to_owned()).or_default();
    // Another request may have added it since the read lock was let go.
    let known = v.iter().any(|(m, s, _, _)| m == method && *s == status);
    if !known && v.len() < SERIES_PER_ROUTE_MAX {
        v.push((method.clone(), status, count.clone(), time.clone()));
    }
    (count, time)
}

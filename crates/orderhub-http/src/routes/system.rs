//! Health, readiness, metrics and the OpenAPI document.

use crate::SharedState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "Up: `{\"status\":\"ok\"}`", body = serde_json::Value)))]
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// The process can serve: its database answers reads and takes writes. After a write the database
/// refused (disk full, read-only, unreachable), each call tries a write of its own; until one
/// commits the answer is 503 with the reason, so a balancer stops sending writes that would fail.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, description = "Ready: `{\"status\":\"ready\",\"store\":…}`", body = serde_json::Value), (status = 503, description = "Database unreachable or refusing writes: `{\"status\":\"unavailable\",\"store\":…,\"reason\":\"…\"}` (`database_unreachable`, or `writes_failing` with `since`; the error is logged)", body = serde_json::Value)))]
pub async fn readyz(State(state): State<SharedState>) -> Response {
    let backend = state.store.backend();
    let unavailable = |body: serde_json::Value| {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    };
    if let Err(e) = state.store.read(|r| r.ping()).await {
        tracing::warn!(error = %e, "Readiness check failed: the database does not answer.");
        return unavailable(
            json!({"status": "unavailable", "store": backend, "reason": "database_unreachable"}),
        );
    }
    if let Some(failed) = state.store.write_failure() {
        // Writes failed and none has committed since: try one now, or reuse the last try's
        // answer if it is under a second old.
        if !state.ready_probe.writes_work(&state.store, &failed).await {
            return unavailable(json!({
                "status": "unavailable",
                "store": backend,
                "reason": "writes_failing",
                "since": failed.since,
            }));
        }
    }
    axum::Json(json!({"status": "ready", "store": backend})).into_response()
}

/// The last write probe of `/readyz`: when, and whether the write went through.
#[derive(Default)]
pub struct ReadyProbe {
    last: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
}

/// How long a probe's answer stands for.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl ReadyProbe {
    async fn writes_work(
        &self,
        store: &orderhub_store::Store,
        failed: &orderhub_store::WriteFailure,
    ) -> bool {
        // Held across the probe: concurrent checks wait for it and take its answer.
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < PROBE_EVERY
        {
            return ok;
        }
        let ok = match store.probe_write().await {
            Ok(()) => true,
            Err(e) => {
                // Logged when the state changes, not at every check.
                if last.is_none_or(|(_, was)| was) {
                    tracing::warn!(error = %e, first = %failed.message, "Readiness check failed: the database refuses writes.");
                }
                false
            }
        };
        *last = Some((std::time::Instant::now(), ok));
        ok
    }
}

/// Prometheus metrics: request counts and latencies by route, orders by status and channel, the
/// store's group-commit counters, dead-letter depth and the relay's and dispatcher's lag.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<SharedState>) -> Response {
    if let Ok(counts) = state.store.read(|r| r.order_counts()).await {
        for (status, channel, n) in counts {
            metrics::gauge!("orderhub_orders", "status" => status, "channel" => channel)
                .set(n as f64);
        }
    }
    // Dead-letter depth per tenant, and how far each relay and dispatcher is behind its outbox.
    let ops = state
        .store
        .read(|r| {
            // Every tenant, so one whose last dead letter was delivered reads 0, not its last count.
            let tenants = r.tenants()?;
            let per_tenant = |counts: Vec<(orderhub_domain::TenantId, u64)>| {
                let mut depth: Vec<_> = tenants.iter().map(|t| (t.clone(), 0)).collect();
                for (t, n) in counts {
                    match depth.iter_mut().find(|(d, _)| *d == t) {
                        Some(d) => d.1 = n,
                        None => depth.push((t, n)),
                    }
                }
                depth
            };
            let dead = per_tenant(r.dead_letter_depth()?);
            let parked = per_tenant(r.parked_depth()?);
            Ok((dead, parked, r.consumer_lags()?))
        })
        .await;
    if let Ok((depth, parked, lags)) = ops {
        for (t, n) in depth {
            metrics::gauge!("orderhub_dead_letters", "tenant" => t.as_str().to_owned())
                .set(n as f64);
        }
        // Deliveries waiting in the store for their next attempt (a subscriber or carrier down).
        for (t, n) in parked {
            metrics::gauge!("orderhub_deliveries_parked", "tenant" => t.as_str().to_owned())
                .set(n as f64);
        }
        for (role, tenant, lag) in lags {
            metrics::gauge!("orderhub_outbox_lag_events", "consumer" => role, "tenant" => tenant.as_str().to_owned())
                .set(lag as f64);
        }
    }
    // Shops per tenant, channel and token state, every state written (0 once a shop leaves
    // it), so an alert on `orderhub_channel_shops{token_state=~"expiring|reauthorize"} > 0`
    // clears by itself.
    if let Ok(shops) = state.store.read(|r| r.channel_shops_all()).await {
        let now = state.clock.now();
        let mut n: std::collections::BTreeMap<(String, String, &'static str), u64> =
            Default::default();
        for s in &shops {
            let key = |st| (s.tenant_id.as_str().to_owned(), s.channel.clone(), st);
            for st in ["ok", "expiring", "expired", "reauthorize"] {
                n.entry(key(st)).or_default();
            }
            *n.entry(key(crate::routes::channels::token_state(&s.token, now)))
                .or_default() += 1;
        }
        for ((tenant, channel, st), k) in n {
            metrics::gauge!("orderhub_channel_shops", "tenant" => tenant, "channel" => channel,
                "token_state" => st)
            .set(k as f64);
        }
    }
    let w = state.store.write_stats();
    metrics::gauge!("orderhub_store_commit_groups").set(w.groups as f64);
    metrics::gauge!("orderhub_store_committed_jobs").set(w.jobs as f64);
    // Work the store refused because its queue was full (answered 503 `store_queue_full`).
    let q = state.store.queue_full();
    metrics::counter!("orderhub_store_queue_full_total", "queue" => "write").absolute(q.writes);
    metrics::counter!("orderhub_store_queue_full_total", "queue" => "read").absolute(q.reads);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// This API's OpenAPI 3 document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI document", body = serde_json::Value)))]
pub async fn openapi() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

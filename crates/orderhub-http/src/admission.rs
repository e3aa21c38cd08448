//! Admission: how many requests may be in flight at once, and how long one may take.
//!
//! Over the limit a request is answered at once with 503 `overloaded` and `Retry-After` (load is
//! shed, not queued: a queue in front of a saturated hub only adds latency to every request and
//! memory to the process). A request that runs past its time is answered 503 `request_timeout`
//! and its handler dropped; a write it had handed to the store may still commit, so clients retry
//! writes with the same Idempotency-Key. Both are counted in `orderhub_http_shed_total{reason}`.
//!
//! A semaphore's `try_acquire` (the mechanism of tower's `ConcurrencyLimit`, without its queue)
//! rather than tower's `ConcurrencyLimit` + `LoadShed` layers: axum applies a router's layers to
//! each route separately (a `ConcurrencyLimitLayer` would limit each route on its own), the probes
//! below must stay outside the limit, and the answer must be the API's JSON error.

use crate::error::{ApiError, RETRY_AFTER_BUSY_SECONDS};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight by default. Each holds a task, its body (≤ 1 MiB) and at most one job in a
/// store queue; 4,096 is far beyond what the writers commit in a request's time (a few thousand
/// orders a second on SQLite), so it sheds only a real flood, and keeps memory bounded then.
pub const MAX_IN_FLIGHT_DEFAULT: usize = 4_096;
/// A request's time by default: far above any healthy request (milliseconds), below the 60 s many
/// load balancers and clients give up at, so the client gets an answer it can act on.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Routes never shed (they still have the timeout): liveness, readiness and the metrics scrape
/// must answer while the hub is overloaded, which is when they matter.
pub const NOT_SHED: &[&str] = &["/healthz", "/readyz", "/metrics"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Requests handled at once (at least 1); the others are answered 503 at once.
    pub max_in_flight: usize,
    /// Time one request may take before it is answered 503.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_in_flight: MAX_IN_FLIGHT_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
        }
    }
}

/// The in-flight limit and timeout of one router, shared by its routes.
#[derive(Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limits: HttpLimits,
}

impl Admission {
    pub fn new(limits: HttpLimits) -> Admission {
        let max = limits.max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        Admission {
            permits: Arc::new(Semaphore::new(max)),
            limits: HttpLimits {
                max_in_flight: max,
                ..limits
            },
        }
    }
}

/// A request counted in flight until dropped; keeps `orderhub_http_requests_in_flight` current.
struct InFlight {
    permit: Option<OwnedSemaphorePermit>,
    admission: Admission,
}

impl InFlight {
    fn new(permit: OwnedSemaphorePermit, admission: &Admission) -> InFlight {
        let f = InFlight {
            permit: Some(permit),
            admission: admission.clone(),
        };
        f.admission.publish();
        f
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.admission.publish();
    }
}

impl Admission {
    /// Requests in flight now (not counting the routes never shed).
    pub fn in_flight(&self) -> usize {
        self.limits.max_in_flight - self.permits.available_permits()
    }

    /// Requests in flight now, as a gauge (each change sets it from the semaphore itself, so the
    /// last one set is right).
    fn publish(&self) {
        metrics::gauge!("orderhub_http_requests_in_flight").set(self.in_flight() as f64);
    }
}

pub(crate) async fn admit(State(a): State<Admission>, req: Request, next: Next) -> Response {
    let _in_flight = if NOT_SHED.contains(&req.uri().path()) {
        None
    } else {
        match a.permits.clone().try_acquire_owned() {
            Ok(p) => Some(InFlight::new(p, &a)),
            Err(_) => {
                metrics::counter!("orderhub_http_shed_total", "reason" => "in_flight").increment(1);
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    format!(
                        "more than {} requests are in flight (max_requests_in_flight); retry shortly",
                        a.limits.max_in_flight
                    ),
                )
                .retry_after(RETRY_AFTER_BUSY_SECONDS)
                .into_response();
            }
        }
    };
    match tokio::time::timeout(a.limits.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("orderhub_http_shed_total", "reason" => "timeout").increment(1);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "the request took longer than {} ms (request_timeout); a write may still \
                     commit: retry with the same Idempotency-Key",
                    a.limits.request_timeout.as_millis()
                ),
            )
            .retry_after(RETRY_AFTER_BUSY_SECONDS)
            .into_response()
        }
    }
}

//! orderhub's HTTP API v1: the router, thin route handlers, authentication, idempotency, metrics and
//! the OpenAPI document generated from the code.
//!
//! Handlers parse and check input, call one use case through the store, and render the result;
//! business rules stay in `orderhub-domain`/`orderhub-core`. Every error becomes a response in
//! `error.rs` and nowhere else. Personal data never reaches a log line: request bodies are not
//! logged, and domain types mask it in `Debug`.

pub mod admission;
pub mod auth;
pub mod bootstrap;
pub mod console;
pub mod error;
pub mod extract;
pub mod limits;
pub mod openapi;
pub mod outbound;
pub mod policy;
pub mod routes;
pub mod telemetry;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use orderhub_core::ports::Clock;
use orderhub_store::Store;
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Largest request body accepted. A 500-line B2B order is ~150 KiB; anything far beyond is a
/// mistake or an attack.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

pub struct AppState {
    pub store: Store,
    pub keys: auth::KeyCache,
    pub inflight: extract::Inflight,
    pub clock: Arc<dyn Clock>,
    pub metrics: telemetry::Metrics,
    /// The webhooks' shop cache, and the processor's wake-up when a channel message is stored.
    pub intake: orderhub_intake::Webhooks,
    /// Which addresses subscriptions and shops may point at (checked when they are created).
    pub outbound: orderhub_core::outbound::OutboundPolicy,
    /// `/readyz`'s write probe while writes fail: one at a time, its answer reused for a second
    /// (the route needs no key: callers must not be able to make the hub write at will).
    pub ready_probe: routes::system::ReadyProbe,
    /// Shops authorized by OAuth: the state key, `--public-url`, the states used.
    pub oauth: routes::oauth::OAuth,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// A state that lets subscriptions and shops point anywhere (tests, tools); `orderhub serve`
    /// uses [`AppState::with_outbound`].
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> SharedState {
        AppState::with_outbound(
            store,
            clock,
            orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        )
    }

    /// The state with the outbound URL policy `outbound`, for creation here and for the channel
    /// calls of the intake processor that shares `intake`.
    pub fn with_outbound(
        store: Store,
        clock: Arc<dyn Clock>,
        outbound: orderhub_core::outbound::OutboundPolicy,
    ) -> SharedState {
        AppState::with_oauth(store, clock, outbound, routes::oauth::OAuth::unset())
    }

    /// The state with the outbound policy and the OAuth settings (`orderhub serve`: the state
    /// key derived from the hub's secret, `--public-url`).
    pub fn with_oauth(
        store: Store,
        clock: Arc<dyn Clock>,
        outbound: orderhub_core::outbound::OutboundPolicy,
        oauth: routes::oauth::OAuth,
    ) -> SharedState {
        Arc::new(AppState {
            store,
            keys: auth::KeyCache::default(),
            inflight: extract::Inflight::default(),
            clock,
            metrics: telemetry::Metrics::install(),
            intake: orderhub_intake::Webhooks {
                outbound,
                ..Default::default()
            },
            outbound,
            ready_probe: Default::default(),
            oauth,
        })
    }
}

/// The whole HTTP surface, ready to serve, with the default [`admission::HttpLimits`].
pub fn router(state: SharedState) -> Router {
    router_with(
        state,
        admission::Admission::new(admission::HttpLimits::default()),
    )
}

/// The whole HTTP surface with `admission`'s limits on requests in flight and each request's time.
pub fn router_with(state: SharedState, admission: admission::Admission) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    routes::routes()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            policy::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::track,
        ))
        // Outside the request metrics (a shed request is counted in `orderhub_http_shed_total`),
        // inside the request id (its 503 carries one too).
        .layer(axum::middleware::from_fn_with_state(
            admission,
            admission::admit,
        ))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

//! Routes: one file per resource, each handler thin.

pub mod channels;
pub mod events;
pub mod exceptions;
pub mod inventory;
pub mod keys;
pub mod orders;
pub mod stats;
pub mod subscriptions;
pub mod system;

use crate::SharedState;
use crate::error::ApiError;
use axum::Router;
use axum::routing::{get, post};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/v1/orders", post(orders::create).get(orders::list))
        .route("/v1/orders/{id}", get(orders::get))
        .route("/v1/orders/{id}/timeline", get(orders::timeline))
        .route("/v1/orders/{id}/retry", post(orders::retry))
        .route("/v1/orders/{id}/carrier", post(orders::switch_carrier))
        .route("/v1/orders/{id}/{action}", post(orders::transition))
        .route("/v1/exceptions", get(exceptions::board))
        .route("/v1/whoami", get(stats::whoami))
        .route("/v1/stats", get(stats::stats))
        .route("/", get(crate::console::index))
        .route("/console/{file}", get(crate::console::asset))
        .route("/v1/events", get(events::list))
        .route("/v1/skus/{sku}", axum::routing::put(inventory::put_sku))
        .route(
            "/v1/warehouses/{id}",
            axum::routing::put(inventory::put_warehouse),
        )
        .route(
            "/v1/channels/{channel}/inventory-policy",
            axum::routing::put(inventory::put_channel_policy),
        )
        .route("/v1/inventory/receipts", post(inventory::receipt))
        .route("/v1/inventory/adjustments", post(inventory::adjustment))
        .route("/v1/inventory/snapshots", post(inventory::snapshot))
        .route("/v1/inventory/returns", post(inventory::returns))
        .route("/v1/inventory/{sku}", get(inventory::get))
        .route("/v1/inventory/{sku}/ledger", get(inventory::ledger))
        .route("/v1/backorders", get(inventory::backorders))
        .route("/v1/reservations", post(inventory::reserve))
        .route("/v1/reservations/{id}", get(inventory::get_reservation))
        .route(
            "/v1/reservations/{id}/{action}",
            post(inventory::move_reservation),
        )
        .route(
            "/v1/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/v1/subscriptions/{id}",
            axum::routing::delete(subscriptions::delete),
        )
        .route("/v1/dead-letters", get(subscriptions::list_dead))
        .route("/v1/dead-letters/replay", post(subscriptions::replay_all))
        .route("/v1/dead-letters/{id}", get(subscriptions::get_dead))
        .route(
            "/v1/dead-letters/{id}/replay",
            post(subscriptions::replay_one),
        )
        .route(
            "/v1/channels/{channel}/shops/{shop}",
            axum::routing::put(channels::put_shop).get(channels::get_shop),
        )
        .route(
            "/v1/channels/{channel}/shops/{shop}/webhook",
            post(channels::webhook),
        )
        .route("/v1/channel-messages", get(channels::messages))
        .route("/v1/api-keys", post(keys::create).get(keys::list))
        .route("/v1/api-keys/{id}/revoke", post(keys::revoke))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
}

/// Parses a query string into `T`, naming the offending parameter.
pub fn parse_query<T: serde::de::DeserializeOwned>(q: Option<&str>) -> Result<T, ApiError> {
    // No text column takes NUL (PostgreSQL refuses it): refused here, naming the parameter.
    if let Some((k, _)) =
        form_urlencoded_parse(q.unwrap_or("")).find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "a query parameter may not contain the NUL character (%00)",
        )
        .field(k.replace('\0', "")));
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(q.unwrap_or("")));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let msg = e.into_inner().to_string();
        let (code, field) = match msg.strip_prefix("unknown field `") {
            Some(rest) => (
                "unknown_parameter",
                rest.split('`').next().unwrap_or("").to_owned(),
            ),
            None => ("invalid_parameter", field),
        };
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, code, msg).field(field)
    })
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}

/// The `limit` query parameter: `default` when absent, refused outside 1..=`max`.
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "out_of_range",
            format!("limit must be 1 to {max}"),
        )
        .field("limit"));
    }
    Ok(limit)
}

/// The writer partition of a stock movement: the hash of the (smallest) SKU it moves. Everything
/// that moves one SKU's stock — reservations, receipts, orders' payments, cancels and shipments —
/// goes to one writer, which serves a hot SKU in large groups instead of having writers queue on
/// its row lock.
pub fn stock_partition(sku: Option<&orderhub_domain::Sku>) -> u64 {
    partition(("stock", sku))
}

/// The writer partition for a key: writes with equal keys go to the same writer thread.
pub fn partition<T: std::hash::Hash>(key: T) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

//! Routes: one file per resource, each handler thin.

pub mod after_sales;
pub mod blacklist;
pub mod bulk;
pub mod carriers;
pub mod channels;
pub mod combine;
pub mod customers;
pub mod edits;
pub mod events;
pub mod exceptions;
pub mod health;
pub mod inventory;
pub mod keys;
pub mod listings;
pub mod metrics;
pub mod oauth;
pub mod orders;
pub mod reports;
pub mod rules;
pub mod stats;
pub mod subscriptions;
pub mod system;
pub mod waves;
pub mod workflow;

use crate::SharedState;
use crate::error::ApiError;
use crate::policy::{Need, Reach, Rule};
use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use orderhub_core::auth::Permission as P;

/// One route: its rule and its handler.
pub struct Route {
    pub rule: Rule,
    pub handler: MethodRouter<SharedState>,
}

fn route<H, T>(method: Method, path: &'static str, need: Need, reach: Reach, handler: H) -> Route
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a method the router takes");
    Route {
        rule: Rule {
            method,
            path,
            need,
            reach,
        },
        handler: on(filter, handler),
    }
}

/// Every route of the API with what it needs and what it acts on (see [`crate::policy`]). The
/// router is built from this table and nothing else, so a route cannot be added without a rule.
pub fn table() -> Vec<Route> {
    use Method as M;
    use Need::{AnyKey, Nothing, Permission as Can, TransitionInPath};
    use Reach::{Caller, Pool, Public, ShopInPath, ShopObjects, WholeTenant};
    vec![
        route(
            M::POST,
            "/v1/orders",
            Can(P::OrdersCreate),
            ShopObjects,
            orders::create,
        ),
        route(
            M::GET,
            "/v1/orders",
            Can(P::OrdersRead),
            ShopObjects,
            orders::list,
        ),
        route(
            M::GET,
            "/v1/orders/{id}",
            Can(P::OrdersRead),
            ShopObjects,
            orders::get,
        ),
        route(
            M::GET,
            "/v1/orders/{id}/timeline",
            Can(P::OrdersRead),
            ShopObjects,
            orders::timeline,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/retry",
            Can(P::FulfillmentSteer),
            ShopObjects,
            orders::retry,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/carrier",
            Can(P::FulfillmentSteer),
            ShopObjects,
            orders::switch_carrier,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/exceptions/{kind}/resolve",
            Can(P::ExceptionsResolve),
            ShopObjects,
            orders::resolve_exception,
        ),
        route(
            M::POST,
            "/v1/orders/bulk",
            Can(P::OrdersRead),
            ShopObjects,
            bulk::bulk,
        ),
        route(
            M::GET,
            "/v1/orders/{id}/exceptions",
            Can(P::OrdersRead),
            ShopObjects,
            workflow::order_exceptions,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/exceptions/{kind}/assign",
            Can(P::ExceptionsWork),
            ShopObjects,
            workflow::assign,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/exceptions/{kind}/unassign",
            Can(P::ExceptionsWork),
            ShopObjects,
            workflow::unassign,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/exceptions/{kind}/notes",
            Can(P::ExceptionsWork),
            ShopObjects,
            workflow::add_note,
        ),
        route(
            M::GET,
            "/v1/settings/exception-sla",
            Can(P::OrdersRead),
            WholeTenant,
            workflow::get_sla,
        ),
        route(
            M::PUT,
            "/v1/settings/exception-sla",
            Can(P::ExceptionSlaManage),
            WholeTenant,
            workflow::put_sla,
        ),
        route(
            M::GET,
            "/v1/interventions",
            Can(P::InterventionsRead),
            ShopObjects,
            workflow::interventions,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/after-sales",
            Can(P::AfterSalesWrite),
            ShopObjects,
            after_sales::open,
        ),
        route(
            M::GET,
            "/v1/after-sales",
            Can(P::AfterSalesRead),
            ShopObjects,
            after_sales::list,
        ),
        route(
            M::GET,
            "/v1/after-sales/{id}",
            Can(P::AfterSalesRead),
            ShopObjects,
            after_sales::get,
        ),
        route(
            M::POST,
            "/v1/after-sales/{id}/approve",
            Can(P::AfterSalesWrite),
            ShopObjects,
            after_sales::approve,
        ),
        route(
            M::POST,
            "/v1/after-sales/{id}/refuse",
            Can(P::AfterSalesWrite),
            ShopObjects,
            after_sales::refuse,
        ),
        route(
            M::POST,
            "/v1/after-sales/{id}/receive",
            Can(P::AfterSalesReceive),
            ShopObjects,
            after_sales::receive,
        ),
        route(
            M::POST,
            "/v1/after-sales/{id}/refund",
            Can(P::AfterSalesRefund),
            ShopObjects,
            after_sales::refund,
        ),
        route(
            M::POST,
            "/v1/after-sales/{id}/exchange",
            Can(P::AfterSalesWrite),
            ShopObjects,
            after_sales::exchange,
        ),
        route(
            M::POST,
            "/v1/after-sales/{id}/close",
            Can(P::AfterSalesWrite),
            ShopObjects,
            after_sales::close,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/edits",
            Can(P::OrdersEdit),
            ShopObjects,
            edits::request,
        ),
        route(
            M::GET,
            "/v1/orders/{id}/edits",
            Can(P::OrdersRead),
            ShopObjects,
            edits::order_log,
        ),
        route(
            M::GET,
            "/v1/edits",
            Can(P::OrdersRead),
            ShopObjects,
            edits::list,
        ),
        route(
            M::GET,
            "/v1/edits/{id}",
            Can(P::OrdersRead),
            ShopObjects,
            edits::get,
        ),
        route(
            M::POST,
            "/v1/edits/{id}/approve",
            Can(P::OrdersEditApprove),
            ShopObjects,
            edits::approve,
        ),
        route(
            M::POST,
            "/v1/edits/{id}/reject",
            Can(P::OrdersEditApprove),
            ShopObjects,
            edits::reject,
        ),
        route(
            M::GET,
            "/v1/settings/order-edits",
            Can(P::OrdersRead),
            WholeTenant,
            edits::get_rules,
        ),
        route(
            M::PUT,
            "/v1/settings/order-edits",
            Can(P::EditRulesManage),
            WholeTenant,
            edits::put_rules,
        ),
        route(
            M::POST,
            "/v1/rule-sets",
            Can(P::RulesWrite),
            WholeTenant,
            rules::create,
        ),
        route(
            M::POST,
            "/v1/customers",
            Can(P::CustomersWrite),
            WholeTenant,
            customers::create,
        ),
        route(
            M::GET,
            "/v1/customers/{id}",
            Can(P::CustomersRead),
            WholeTenant,
            customers::get,
        ),
        route(
            M::POST,
            "/v1/customers/{id}/buyers",
            Can(P::CustomersWrite),
            WholeTenant,
            customers::link,
        ),
        route(
            M::POST,
            "/v1/customers/{id}/invoice-profiles",
            Can(P::CustomersWrite),
            WholeTenant,
            customers::add_profile,
        ),
        route(
            M::GET,
            "/v1/customers/{id}/invoice-profiles/{profile_id}",
            Can(P::CustomersRead),
            WholeTenant,
            customers::versions,
        ),
        route(
            M::POST,
            "/v1/customers/{id}/invoice-profiles/{profile_id}/versions",
            Can(P::CustomersWrite),
            WholeTenant,
            customers::version,
        ),
        route(
            M::POST,
            "/v1/customers/{id}/invoice-profiles/{profile_id}/deactivate",
            Can(P::CustomersWrite),
            WholeTenant,
            customers::deactivate,
        ),
        route(
            M::GET,
            "/v1/invoice-profiles/scan",
            Can(P::CustomersRead),
            WholeTenant,
            customers::scan,
        ),
        route(
            M::GET,
            "/v1/rule-sets",
            Can(P::RulesRead),
            WholeTenant,
            rules::list,
        ),
        route(
            M::GET,
            "/v1/rule-sets/{id}",
            Can(P::RulesRead),
            WholeTenant,
            rules::get,
        ),
        route(
            M::POST,
            "/v1/rule-sets/{id}/submit",
            Can(P::RulesWrite),
            WholeTenant,
            rules::submit,
        ),
        route(
            M::POST,
            "/v1/rule-sets/{id}/approve",
            Can(P::RulesApprove),
            WholeTenant,
            rules::approve,
        ),
        route(
            M::POST,
            "/v1/rule-sets/{id}/publish",
            Can(P::RulesApprove),
            WholeTenant,
            rules::publish,
        ),
        route(
            M::POST,
            "/v1/rule-sets/{id}/test",
            Can(P::RulesRead),
            ShopObjects,
            rules::test,
        ),
        route(
            M::GET,
            "/v1/rule-sets/{id}/sandbox",
            Can(P::RulesRead),
            WholeTenant,
            rules::sandbox,
        ),
        route(
            M::POST,
            "/v1/blacklist",
            Can(P::RulesWrite),
            WholeTenant,
            blacklist::add,
        ),
        route(
            M::GET,
            "/v1/blacklist",
            Can(P::RulesRead),
            WholeTenant,
            blacklist::list,
        ),
        route(
            M::DELETE,
            "/v1/blacklist/{id}",
            Can(P::RulesWrite),
            WholeTenant,
            blacklist::delete,
        ),
        route(
            M::POST,
            "/v1/waves",
            Can(P::WavesWrite),
            WholeTenant,
            waves::create,
        ),
        route(
            M::GET,
            "/v1/waves",
            Can(P::WavesRead),
            WholeTenant,
            waves::list,
        ),
        route(
            M::GET,
            "/v1/waves/{id}",
            Can(P::WavesRead),
            WholeTenant,
            waves::get,
        ),
        route(
            M::POST,
            "/v1/waves/{id}/start",
            Can(P::WavesWrite),
            WholeTenant,
            waves::start,
        ),
        route(
            M::POST,
            "/v1/waves/{id}/close",
            Can(P::WavesWrite),
            WholeTenant,
            waves::close,
        ),
        route(
            M::POST,
            "/v1/merges/preview",
            Can(P::OrdersCombine),
            ShopObjects,
            combine::preview,
        ),
        route(
            M::POST,
            "/v1/merges",
            Can(P::OrdersCombine),
            ShopObjects,
            combine::merge,
        ),
        route(
            M::GET,
            "/v1/merges/{id}",
            Can(P::OrdersRead),
            ShopObjects,
            combine::get,
        ),
        route(
            M::POST,
            "/v1/merges/{id}/undo",
            Can(P::OrdersCombine),
            ShopObjects,
            combine::undo,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/split",
            Can(P::OrdersCombine),
            ShopObjects,
            combine::split,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/parcels/{parcel_id}/ship",
            Can(P::ParcelsShip),
            ShopObjects,
            combine::ship,
        ),
        route(
            M::GET,
            "/v1/settings/merges",
            Can(P::OrdersRead),
            WholeTenant,
            combine::get_rules,
        ),
        route(
            M::PUT,
            "/v1/settings/merges",
            Can(P::MergeRulesManage),
            WholeTenant,
            combine::put_rules,
        ),
        route(
            M::POST,
            "/v1/orders/{id}/{action}",
            TransitionInPath,
            ShopObjects,
            orders::transition,
        ),
        route(
            M::GET,
            "/v1/exceptions",
            Can(P::OrdersRead),
            ShopObjects,
            exceptions::board,
        ),
        route(M::GET, "/v1/whoami", AnyKey, Caller, stats::whoami),
        route(
            M::GET,
            "/v1/stats",
            Can(P::StatsRead),
            ShopObjects,
            stats::stats,
        ),
        route(
            M::GET,
            "/v1/reports/status-differences",
            Can(P::StatsRead),
            ShopObjects,
            reports::status_differences,
        ),
        route(
            M::GET,
            "/v1/metrics/golden",
            Can(P::MetricsRead),
            ShopObjects,
            metrics::golden,
        ),
        route(
            M::POST,
            "/v1/quality/check",
            Can(P::QualityRun),
            WholeTenant,
            metrics::check,
        ),
        route(
            M::GET,
            "/v1/quality/alerts",
            Can(P::MetricsRead),
            WholeTenant,
            metrics::alerts,
        ),
        route(
            M::POST,
            "/v1/health/compute",
            Can(P::HealthManage),
            WholeTenant,
            health::compute,
        ),
        route(
            M::GET,
            "/v1/health/scores",
            Can(P::MetricsRead),
            ShopObjects,
            health::scores,
        ),
        route(
            M::GET,
            "/v1/health/live",
            Can(P::MetricsRead),
            ShopObjects,
            health::live,
        ),
        route(
            M::GET,
            "/v1/health/orders",
            Can(P::OrdersRead),
            ShopObjects,
            health::orders,
        ),
        route(
            M::GET,
            "/v1/health/config",
            Can(P::MetricsRead),
            WholeTenant,
            health::get_config,
        ),
        route(
            M::PUT,
            "/v1/health/config",
            Can(P::HealthManage),
            WholeTenant,
            health::put_config,
        ),
        route(
            M::GET,
            "/v1/events",
            Can(P::EventsRead),
            ShopObjects,
            events::list,
        ),
        route(
            M::PUT,
            "/v1/skus/{sku}",
            Can(P::MasterData),
            WholeTenant,
            inventory::put_sku,
        ),
        route(
            M::PUT,
            "/v1/warehouses/{id}",
            Can(P::MasterData),
            WholeTenant,
            inventory::put_warehouse,
        ),
        route(
            M::PUT,
            "/v1/channels/{channel}/inventory-policy",
            Can(P::MasterData),
            WholeTenant,
            inventory::put_channel_policy,
        ),
        route(
            M::POST,
            "/v1/inventory/receipts",
            Can(P::StockMove),
            WholeTenant,
            inventory::receipt,
        ),
        route(
            M::POST,
            "/v1/inventory/adjustments",
            Can(P::StockMove),
            WholeTenant,
            inventory::adjustment,
        ),
        route(
            M::POST,
            "/v1/inventory/snapshots",
            Can(P::StockMove),
            WholeTenant,
            inventory::snapshot,
        ),
        route(
            M::POST,
            "/v1/inventory/returns",
            Can(P::StockMove),
            WholeTenant,
            inventory::returns,
        ),
        route(
            M::GET,
            "/v1/inventory/{sku}",
            Can(P::InventoryRead),
            Pool,
            inventory::get,
        ),
        route(
            M::GET,
            "/v1/inventory/{sku}/ledger",
            Can(P::InventoryRead),
            WholeTenant,
            inventory::ledger,
        ),
        route(
            M::GET,
            "/v1/backorders",
            Can(P::OrdersRead),
            ShopObjects,
            inventory::backorders,
        ),
        route(
            M::POST,
            "/v1/reservations",
            Can(P::Reserve),
            WholeTenant,
            inventory::reserve,
        ),
        route(
            M::GET,
            "/v1/reservations/{id}",
            Can(P::InventoryRead),
            WholeTenant,
            inventory::get_reservation,
        ),
        route(
            M::POST,
            "/v1/reservations/{id}/{action}",
            Can(P::Reserve),
            WholeTenant,
            inventory::move_reservation,
        ),
        route(
            M::POST,
            "/v1/subscriptions",
            Can(P::SubscriptionsManage),
            ShopObjects,
            subscriptions::create,
        ),
        route(
            M::GET,
            "/v1/subscriptions",
            Can(P::SubscriptionsManage),
            ShopObjects,
            subscriptions::list,
        ),
        route(
            M::DELETE,
            "/v1/subscriptions/{id}",
            Can(P::SubscriptionsManage),
            ShopObjects,
            subscriptions::delete,
        ),
        route(
            M::PATCH,
            "/v1/subscriptions/{id}",
            Can(P::SubscriptionsManage),
            ShopObjects,
            subscriptions::update,
        ),
        route(
            M::GET,
            "/v1/dead-letters",
            Can(P::DeliveriesOperate),
            ShopObjects,
            subscriptions::list_dead,
        ),
        route(
            M::POST,
            "/v1/dead-letters/replay",
            Can(P::DeliveriesOperate),
            ShopObjects,
            subscriptions::replay_all,
        ),
        route(
            M::GET,
            "/v1/dead-letters/{id}",
            Can(P::DeliveriesOperate),
            ShopObjects,
            subscriptions::get_dead,
        ),
        route(
            M::POST,
            "/v1/dead-letters/{id}/replay",
            Can(P::DeliveriesOperate),
            ShopObjects,
            subscriptions::replay_one,
        ),
        route(
            M::GET,
            "/v1/channels/{channel}/shops/{shop}",
            Can(P::ChannelsRead),
            ShopInPath,
            channels::get_shop,
        ),
        route(
            M::PUT,
            "/v1/channels/{channel}/shops/{shop}",
            Can(P::ChannelsManage),
            ShopInPath,
            channels::put_shop,
        ),
        route(
            M::POST,
            "/v1/channels/{channel}/shops/{shop}/authorize",
            Can(P::ChannelsManage),
            ShopInPath,
            oauth::authorize,
        ),
        route(
            M::GET,
            "/oauth/callback/{channel}",
            Nothing,
            Public,
            oauth::callback,
        ),
        route(
            M::GET,
            "/v1/carriers",
            Can(P::CarriersRead),
            WholeTenant,
            carriers::list,
        ),
        route(
            M::PUT,
            "/v1/carriers/{carrier}",
            Can(P::CarriersManage),
            WholeTenant,
            carriers::put,
        ),
        route(
            M::DELETE,
            "/v1/carriers/{carrier}",
            Can(P::CarriersManage),
            WholeTenant,
            carriers::delete,
        ),
        route(
            M::POST,
            "/v1/listings",
            Can(P::MasterData),
            ShopObjects,
            listings::create,
        ),
        route(
            M::GET,
            "/v1/listings",
            Can(P::InventoryRead),
            ShopObjects,
            listings::list,
        ),
        route(
            M::GET,
            "/v1/listings/drift",
            Can(P::InventoryRead),
            ShopObjects,
            listings::drift,
        ),
        route(
            M::POST,
            "/v1/listings/reconcile",
            Can(P::MasterData),
            ShopObjects,
            listings::reconcile,
        ),
        route(
            M::GET,
            "/v1/listings/{id}",
            Can(P::InventoryRead),
            ShopObjects,
            listings::get,
        ),
        route(
            M::PATCH,
            "/v1/listings/{id}",
            Can(P::MasterData),
            ShopObjects,
            listings::update,
        ),
        route(
            M::DELETE,
            "/v1/listings/{id}",
            Can(P::MasterData),
            ShopObjects,
            listings::delete,
        ),
        route(
            M::POST,
            "/v1/tenants/{tenant}/carriers/{carrier}/track-push",
            Nothing,
            Public,
            carriers::track_push,
        ),
        route(
            M::POST,
            "/v1/tenants/{tenant}/channels/{channel}/shops/{shop}/webhook",
            Nothing,
            Public,
            channels::webhook,
        ),
        route(
            M::POST,
            "/v1/channels/{channel}/shops/{shop}/webhook",
            Nothing,
            Public,
            channels::webhook_without_tenant,
        ),
        route(
            M::GET,
            "/v1/channel-messages",
            Can(P::ChannelsRead),
            ShopObjects,
            channels::messages,
        ),
        route(
            M::POST,
            "/v1/api-keys",
            Can(P::KeysManage),
            ShopObjects,
            keys::create,
        ),
        route(
            M::GET,
            "/v1/api-keys",
            Can(P::KeysManage),
            ShopObjects,
            keys::list,
        ),
        route(
            M::POST,
            "/v1/api-keys/{id}/revoke",
            Can(P::KeysManage),
            ShopObjects,
            keys::revoke,
        ),
        route(M::GET, "/", Nothing, Public, crate::console::index),
        route(
            M::GET,
            "/console/{file}",
            Nothing,
            Public,
            crate::console::asset,
        ),
        route(M::GET, "/healthz", Nothing, Public, system::healthz),
        route(M::GET, "/readyz", Nothing, Public, system::readyz),
        route(M::GET, "/metrics", Nothing, Public, system::metrics),
        route(M::GET, "/openapi.json", Nothing, Public, system::openapi),
    ]
}

pub fn routes() -> Router<SharedState> {
    table()
        .into_iter()
        .fold(Router::new(), |r, route| {
            r.route(route.rule.path, route.handler)
        })
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
}

/// A key's shop scope as the stores' list filters take it (`None`: every shop).
pub fn scope_strings(p: &orderhub_core::auth::Principal) -> Option<Vec<String>> {
    p.shops
        .as_ref()
        .map(|s| s.iter().map(|x| x.as_str().to_owned()).collect())
}

/// A UUID from the path (or a body's id field): 400 `invalid_id` naming `field` when it is not one.
pub fn uuid_param(raw: &str, field: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("{field} must be a UUID"),
        )
        .field(field)
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

/// The cursor of the page after `rows`: the last row's `key` when the page is full (a store read
/// of `limit` rows), none on the last page.
pub fn next_cursor<T, K>(rows: &[T], limit: u32, key: impl FnOnce(&T) -> K) -> Option<K> {
    (rows.len() == limit as usize)
        .then(|| rows.last().map(key))
        .flatten()
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

//! The OpenAPI document, assembled from the handlers' annotations and the wire types.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, Type};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "orderhub", description = "Order center API v1: standard orders, lifecycle, events."),
    paths(
        crate::routes::orders::create,
        crate::routes::orders::get,
        crate::routes::orders::list,
        crate::routes::orders::transition,
        crate::routes::orders::timeline,
        crate::routes::orders::retry,
        crate::routes::orders::switch_carrier,
        crate::routes::orders::resolve_exception,
        crate::routes::after_sales::open,
        crate::routes::after_sales::list,
        crate::routes::after_sales::get,
        crate::routes::after_sales::approve,
        crate::routes::after_sales::refuse,
        crate::routes::after_sales::receive,
        crate::routes::after_sales::refund,
        crate::routes::after_sales::exchange,
        crate::routes::after_sales::close,
        crate::routes::edits::request,
        crate::routes::edits::order_log,
        crate::routes::edits::list,
        crate::routes::edits::get,
        crate::routes::edits::approve,
        crate::routes::edits::reject,
        crate::routes::edits::get_rules,
        crate::routes::edits::put_rules,
        crate::routes::rules::create,
        crate::routes::rules::list,
        crate::routes::rules::get,
        crate::routes::rules::submit,
        crate::routes::rules::approve,
        crate::routes::rules::publish,
        crate::routes::rules::test,
        crate::routes::rules::sandbox,
        crate::routes::blacklist::add,
        crate::routes::blacklist::list,
        crate::routes::blacklist::delete,
        crate::routes::customers::create,
        crate::routes::customers::get,
        crate::routes::customers::link,
        crate::routes::customers::add_profile,
        crate::routes::customers::versions,
        crate::routes::customers::version,
        crate::routes::customers::deactivate,
        crate::routes::customers::scan,
        crate::routes::waves::create,
        crate::routes::waves::list,
        crate::routes::waves::get,
        crate::routes::waves::start,
        crate::routes::waves::close,
        crate::routes::combine::preview,
        crate::routes::combine::merge,
        crate::routes::combine::get,
        crate::routes::combine::undo,
        crate::routes::combine::split,
        crate::routes::combine::ship,
        crate::routes::combine::get_rules,
        crate::routes::combine::put_rules,
        crate::routes::exceptions::board,
        crate::routes::workflow::assign,
        crate::routes::workflow::unassign,
        crate::routes::workflow::add_note,
        crate::routes::workflow::order_exceptions,
        crate::routes::workflow::get_sla,
        crate::routes::workflow::put_sla,
        crate::routes::workflow::interventions,
        crate::routes::bulk::bulk,
        crate::routes::stats::whoami,
        crate::routes::stats::stats,
        crate::routes::reports::status_differences,
        crate::routes::metrics::golden,
        crate::routes::metrics::check,
        crate::routes::metrics::alerts,
        crate::routes::health::compute,
        crate::routes::health::scores,
        crate::routes::health::live,
        crate::routes::health::orders,
        crate::routes::health::get_config,
        crate::routes::health::put_config,
        crate::routes::events::list,
        crate::routes::inventory::put_sku,
        crate::routes::inventory::put_warehouse,
        crate::routes::inventory::put_channel_policy,
        crate::routes::inventory::receipt,
        crate::routes::inventory::adjustment,
        crate::routes::inventory::snapshot,
        crate::routes::inventory::returns,
        crate::routes::inventory::get,
        crate::routes::inventory::ledger,
        crate::routes::inventory::reserve,
        crate::routes::inventory::backorders,
        crate::routes::inventory::get_reservation,
        crate::routes::inventory::move_reservation,
        crate::routes::subscriptions::create,
        crate::routes::subscriptions::list,
        crate::routes::subscriptions::delete,
        crate::routes::subscriptions::update,
        crate::routes::subscriptions::list_dead,
        crate::routes::subscriptions::get_dead,
        crate::routes::subscriptions::replay_one,
        crate::routes::subscriptions::replay_all,
        crate::routes::carriers::list,
        crate::routes::carriers::put,
        crate::routes::carriers::delete,
        crate::routes::carriers::track_push,
        crate::routes::listings::create,
        crate::routes::listings::list,
        crate::routes::listings::get,
        crate::routes::listings::update,
        crate::routes::listings::delete,
        crate::routes::listings::drift,
        crate::routes::listings::reconcile,
        crate::routes::channels::put_shop,
        crate::routes::channels::get_shop,
        crate::routes::channels::webhook,
        crate::routes::channels::webhook_without_tenant,
        crate::routes::channels::messages,
        crate::routes::oauth::authorize,
        crate::routes::oauth::callback,
        crate::routes::keys::create,
        crate::routes::keys::list,
        crate::routes::keys::revoke,
        crate::routes::system::healthz,
        crate::routes::system::readyz,
        crate::routes::system::metrics,
        crate::routes::system::openapi,
    ),
    components(schemas(orderhub_api::ErrorBody, orderhub_api::ErrorDetail)),
    modifiers(&Bearer, &Answers)
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// What every operation can answer besides what its handler's annotation lists: the statuses that
/// come from the layers every request passes (authentication, the body limit, JSON and query
/// parsing, the store), each with the error body. A route's own annotation names the rest (404 on
/// an unknown id, 409 on a move not allowed …) and wins where both name a status.
struct Answers;

/// Paths served without the store (and without the error body).
const NO_STORE: [&str; 3] = ["/healthz", "/metrics", "/openapi.json"];

impl Modify for Answers {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        for (path, item) in api.paths.paths.iter_mut() {
            let store = !NO_STORE.contains(&path.as_str());
            let path_params = path.contains('{');
            for (method, op) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ] {
                let Some(op) = op else { continue };
                answers(op, method, store, path_params);
            }
        }
    }
}

fn answers(op: &mut Operation, method: &str, store: bool, path_params: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let query = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    let body = op.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(status, description));
    };
    if secured {
        add(
            "401",
            "`unauthenticated`: no API key, not a Bearer key, or an unknown or revoked one",
        );
        add(
            "403",
            "`forbidden`: the key's role may not do this (or the resource is outside its shop scope)",
        );
        if query {
            add(
                "400",
                "A query parameter is unknown, malformed or out of range (`unknown_parameter`, \
                 `invalid_parameter`, `out_of_range`, `invalid_cursor` …); `field` names it",
            );
        }
        if body {
            add(
                "400",
                "The body is not JSON (`malformed_json`), cannot be read (`unreadable_body`), or \
                 the Idempotency-Key header is invalid (`invalid_idempotency_key`)",
            );
            add(
                "413",
                "`body_too_large`: the body exceeds 1 MiB (`BODY_BYTES_MAX`)",
            );
            add(
                "422",
                "A field has the wrong type, is unknown or missing, or breaks a rule or bound \
                 (`invalid_type`, `unknown_field`, `out_of_range`, `too_long`, `too_many` …); \
                 `field` names it and the message the rule and the limit",
            );
        }
        if path_params {
            add(
                "404",
                "`not_found`: no such resource for this tenant and key",
            );
            add(
                "422",
                "A path parameter breaks its rule (an id that is not one); `field` names it",
            );
        }
        if method != "get" {
            add(
                "409",
                "A concurrent change got in the way (`write_conflict`; retry), or a request with the \
                 same Idempotency-Key is being processed (`idempotency_key_in_use`)",
            );
        }
    }
    if store {
        add(
            "500",
            "`internal`: an unexpected store failure; quote the x-request-id header",
        );
        add(
            "503",
            "Retry after the `Retry-After` header's seconds: `store_unavailable` (the database is \
             unavailable), `store_queue_full` (the store's write or read queue is full; nothing was \
             written), `overloaded` (too many requests in flight), `request_timeout` (the request \
             ran out of time; a write may still commit, so retry with the same Idempotency-Key)",
        );
    } else if secured {
        add(
            "503",
            "Retry after the `Retry-After` header's seconds: `overloaded` (too many requests in \
             flight) or `request_timeout` (the request ran out of time)",
        );
    }
}

/// A response with the error body (`application/json`, [`orderhub_api::ErrorBody`]).
fn error_response(status: &str, description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    let mut r = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    if status == "401" {
        r = r.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(utoipa::openapi::schema::Object::with_type(Type::String))
                .description(Some("`Bearer`"))
                .build(),
        );
    }
    RefOr::T(r.build())
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

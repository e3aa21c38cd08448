//! The OpenAPI document, assembled from the handlers' annotations and the wire types.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
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
        crate::routes::exceptions::board,
        crate::routes::stats::whoami,
        crate::routes::stats::stats,
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
        crate::routes::subscriptions::list_dead,
        crate::routes::subscriptions::get_dead,
        crate::routes::subscriptions::replay_one,
        crate::routes::subscriptions::replay_all,
        crate::routes::channels::put_shop,
        crate::routes::channels::get_shop,
        crate::routes::channels::webhook,
        crate::routes::channels::messages,
        crate::routes::keys::create,
        crate::routes::keys::list,
        crate::routes::keys::revoke,
        crate::routes::system::healthz,
        crate::routes::system::readyz,
        crate::routes::system::metrics,
        crate::routes::system::openapi,
    ),
    modifiers(&Bearer)
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

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

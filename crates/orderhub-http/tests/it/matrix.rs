//! The authorization matrix: every declared route × every role × three shop scopes (all shops,
//! the fixture's shop, another shop) × two tenants, plus no key, each against the answer the
//! route's rule promises. The routes come from the router's own table (`policy::rules()`): a
//! route added without a case here fails the test, and so does a route the OpenAPI document
//! lists that has no rule, or the reverse.
//!
//! The fixture lives in shop `shop-alpha` of the default tenant: an order, a backordered order,
//! a channel shop, a channel message, a subscription made by a key scoped to `shop-alpha` and its
//! dead letter, a key scoped to `shop-alpha`, a reservation. What the rule promises:
//! - no key: 401, except routes that need none (their answer does not depend on a key);
//! - a role without the route's permission: 403;
//! - a key scoped to shops on a whole-tenant route: 403 `out_of_scope`;
//! - another shop's key or another tenant's key on one of the fixture's objects: 404;
//! - their lists answer 200 without the fixture's objects; the fixture's own keys' lists hold them;
//! - every other caller passes authorization (not 401, 403 or 404) and never gets a 5xx;
//! - nothing of the fixture's ids ever appears in an answer to another shop's or tenant's key.

use crate::app::*;
use crate::on_every_backend;
use orderhub_core::auth::{Principal, Role};
use orderhub_domain::{ShopId, TenantId};
use orderhub_http::policy::{self, Need, Reach, Rule};
use orderhub_store::DeadLetterRow;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use uuid::Uuid;

on_every_backend!(every_route_answers_every_role_scope_and_tenant_as_its_rule_says);

const ALPHA: &str = "shop-alpha";
const BETA: &str = "shop-beta";

/// Who calls.
#[derive(Clone, Debug)]
enum Caller {
    NoKey,
    /// A key of the default tenant: role and scope (`None`: every shop).
    Key {
        role: Role,
        scope: Option<&'static str>,
        key: String,
    },
    /// The other tenant's admin.
    OtherTenant,
}

impl Caller {
    fn key(&self) -> Option<&str> {
        match self {
            Caller::NoKey => None,
            Caller::Key { key, .. } => Some(key),
            Caller::OtherTenant => Some(OTHER_TENANT_KEY),
        }
    }
    fn principal(&self) -> Option<Principal> {
        let (role, scope, tenant) = match self {
            Caller::NoKey => return None,
            Caller::Key { role, scope, .. } => (*role, *scope, "default"),
            Caller::OtherTenant => (Role::Admin, None, "other"),
        };
        Some(Principal {
            tenant_id: TenantId::parse(tenant).unwrap(),
            key_id: String::new(),
            key_name: String::new(),
            role,
            shops: scope.map(|s| vec![ShopId::parse(s).unwrap()]),
            pii_read: false,
        })
    }
    /// Whether the fixture (shop-alpha of the default tenant) is within the caller's reach.
    fn reaches_fixture(&self) -> bool {
        matches!(self, Caller::Key { scope, .. } if scope.is_none_or(|s| s == ALPHA))
    }
    fn label(&self) -> String {
        match self {
            Caller::NoKey => "no key".into(),
            Caller::Key { role, scope, .. } => {
                format!(
                    "{} scoped to {}",
                    role.as_str(),
                    scope.unwrap_or("every shop")
                )
            }
            Caller::OtherTenant => "the other tenant's admin".into(),
        }
    }
}

/// What a route is, for the matrix.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// Needs no key; its answer is the same whoever calls.
    Public,
    /// One of the fixture's objects (in the path): 404 for callers outside its reach.
    Object,
    /// A list: callers outside the fixture's reach get 200 without the marker, the others 200
    /// with it.
    List(&'static str),
    /// Creates something in shop-alpha: a key scoped to another shop gets 403.
    CreateInAlpha,
    /// Acts on the tenant (or the caller's own scope): no object of the fixture's in the path.
    Tenant,
    /// Configures the fixture's channel shop: a key scoped to another shop gets 404.
    ShopConfig,
    /// Replays every dead letter the caller sees: none of the fixture's for callers outside it.
    ReplayAll,
    /// The live figures: callers outside the fixture count none of its orders and dead letters.
    Stats,
}

/// The roles that may use each route, written out by hand (not read from the code's permission
/// table, so a permission granted by mistake there fails here). The order-move route is called
/// with `cancel`.
const GRANTS: &[(&str, &str)] = &[
    ("POST /v1/orders", "admin ops"),
    ("GET /v1/orders", "*"),
    ("GET /v1/orders/{id}", "*"),
    ("GET /v1/orders/{id}/timeline", "*"),
    ("POST /v1/orders/{id}/retry", "admin ops warehouse"),
    ("POST /v1/orders/{id}/carrier", "admin ops warehouse"),
    (
        "POST /v1/orders/{id}/exceptions/{kind}/resolve",
        "admin ops",
    ),
    ("POST /v1/orders/{id}/edits", "admin ops"),
    // Any key that reads orders reaches the route; the action's own permission (cancel, in the
    // case below) decides, once per request.
    ("POST /v1/orders/bulk", "admin ops finance"),
    ("GET /v1/orders/{id}/exceptions", "*"),
    (
        "POST /v1/orders/{id}/exceptions/{kind}/assign",
        "admin ops warehouse",
    ),
    (
        "POST /v1/orders/{id}/exceptions/{kind}/unassign",
        "admin ops warehouse",
    ),
    (
        "POST /v1/orders/{id}/exceptions/{kind}/notes",
        "admin ops warehouse",
    ),
    ("GET /v1/settings/exception-sla", "*"),
    ("PUT /v1/settings/exception-sla", "admin"),
    ("GET /v1/interventions", "admin ops"),
    ("GET /v1/orders/{id}/edits", "*"),
    ("GET /v1/edits", "*"),
    ("GET /v1/edits/{id}", "*"),
    ("POST /v1/edits/{id}/approve", "admin"),
    ("POST /v1/edits/{id}/reject", "admin"),
    ("GET /v1/settings/order-edits", "*"),
    ("PUT /v1/settings/order-edits", "admin"),
    ("POST /v1/rule-sets", "admin ops"),
    ("GET /v1/rule-sets", "admin ops"),
    ("GET /v1/rule-sets/{id}", "admin ops"),
    ("POST /v1/rule-sets/{id}/submit", "admin ops"),
    ("POST /v1/rule-sets/{id}/approve", "admin"),
    ("POST /v1/rule-sets/{id}/publish", "admin"),
    ("POST /v1/rule-sets/{id}/test", "admin ops"),
    ("GET /v1/rule-sets/{id}/sandbox", "admin ops"),
    ("POST /v1/blacklist", "admin ops"),
    ("GET /v1/blacklist", "admin ops"),
    ("DELETE /v1/blacklist/{id}", "admin ops"),
    ("POST /v1/customers", "admin ops finance"),
    ("GET /v1/customers/{id}", "admin ops finance"),
    ("POST /v1/customers/{id}/buyers", "admin ops finance"),
    (
        "POST /v1/customers/{id}/invoice-profiles",
        "admin ops finance",
    ),
    (
        "GET /v1/customers/{id}/invoice-profiles/{profile_id}",
        "admin ops finance",
    ),
    (
        "POST /v1/customers/{id}/invoice-profiles/{profile_id}/versions",
        "admin ops finance",
    ),
    (
        "POST /v1/customers/{id}/invoice-profiles/{profile_id}/deactivate",
        "admin ops finance",
    ),
    ("GET /v1/invoice-profiles/scan", "admin ops finance"),
    ("POST /v1/waves", "admin ops warehouse"),
    ("GET /v1/waves", "*"),
    ("GET /v1/waves/{id}", "*"),
    ("POST /v1/waves/{id}/start", "admin ops warehouse"),
    ("POST /v1/waves/{id}/close", "admin ops warehouse"),
    ("POST /v1/merges/preview", "admin ops"),
    ("POST /v1/merges", "admin ops"),
    ("GET /v1/merges/{id}", "*"),
    ("POST /v1/merges/{id}/undo", "admin ops"),
    ("POST /v1/orders/{id}/split", "admin ops"),
    (
        "POST /v1/orders/{id}/parcels/{parcel_id}/ship",
        "admin ops warehouse",
    ),
    ("GET /v1/settings/merges", "*"),
    ("PUT /v1/settings/merges", "admin"),
    ("POST /v1/orders/{id}/{action}", "admin ops finance"),
    ("POST /v1/orders/{id}/after-sales", "admin ops"),
    ("GET /v1/after-sales", "*"),
    ("GET /v1/after-sales/{id}", "*"),
    ("POST /v1/after-sales/{id}/approve", "admin ops"),
    ("POST /v1/after-sales/{id}/refuse", "admin ops"),
    ("POST /v1/after-sales/{id}/receive", "admin ops warehouse"),
    ("POST /v1/after-sales/{id}/refund", "admin ops finance"),
    ("POST /v1/after-sales/{id}/exchange", "admin ops"),
    ("POST /v1/after-sales/{id}/close", "admin ops"),
    ("GET /v1/exceptions", "*"),
    ("GET /v1/whoami", "* analyst"),
    ("GET /v1/stats", "*"),
    ("GET /v1/reports/status-differences", "*"),
    ("GET /v1/metrics/golden", "* analyst"),
    ("POST /v1/quality/check", "admin"),
    ("GET /v1/quality/alerts", "* analyst"),
    ("POST /v1/health/compute", "admin"),
    ("GET /v1/health/scores", "* analyst"),
    ("GET /v1/health/live", "* analyst"),
    ("GET /v1/health/orders", "*"),
    ("GET /v1/health/config", "* analyst"),
    ("PUT /v1/health/config", "admin"),
    ("GET /v1/events", "*"),
    ("PUT /v1/skus/{sku}", "admin ops"),
    ("PUT /v1/warehouses/{id}", "admin ops"),
    ("PUT /v1/channels/{channel}/inventory-policy", "admin ops"),
    ("POST /v1/inventory/receipts", "admin ops warehouse"),
    ("POST /v1/inventory/adjustments", "admin ops warehouse"),
    ("POST /v1/inventory/snapshots", "admin ops warehouse"),
    ("POST /v1/inventory/returns", "admin ops warehouse"),
    ("GET /v1/inventory/{sku}", "*"),
    ("GET /v1/inventory/{sku}/ledger", "*"),
    ("GET /v1/backorders", "*"),
    ("POST /v1/reservations", "admin ops"),
    ("GET /v1/reservations/{id}", "*"),
    ("POST /v1/reservations/{id}/{action}", "admin ops"),
    ("POST /v1/subscriptions", "admin"),
    ("GET /v1/subscriptions", "admin"),
    ("DELETE /v1/subscriptions/{id}", "admin"),
    ("PATCH /v1/subscriptions/{id}", "admin"),
    ("GET /v1/dead-letters", "admin ops"),
    ("POST /v1/dead-letters/replay", "admin ops"),
    ("GET /v1/dead-letters/{id}", "admin ops"),
    ("POST /v1/dead-letters/{id}/replay", "admin ops"),
    ("GET /v1/channels/{channel}/shops/{shop}", "admin ops"),
    ("PUT /v1/channels/{channel}/shops/{shop}", "admin"),
    (
        "POST /v1/channels/{channel}/shops/{shop}/authorize",
        "admin",
    ),
    ("GET /v1/carriers", "admin ops"),
    ("PUT /v1/carriers/{carrier}", "admin"),
    ("DELETE /v1/carriers/{carrier}", "admin"),
    ("POST /v1/listings", "admin ops"),
    ("GET /v1/listings", "*"),
    ("GET /v1/listings/drift", "*"),
    ("POST /v1/listings/reconcile", "admin ops"),
    ("GET /v1/listings/{id}", "*"),
    ("PATCH /v1/listings/{id}", "admin ops"),
    ("DELETE /v1/listings/{id}", "admin ops"),
    ("GET /v1/channel-messages", "admin ops"),
    ("POST /v1/api-keys", "admin"),
    ("GET /v1/api-keys", "admin"),
    ("POST /v1/api-keys/{id}/revoke", "admin"),
];

/// Whether README's promise lets `role` use the route (routes that need no key: everyone).
fn granted(rule: &Rule, role: Role) -> bool {
    if rule.need == Need::Nothing {
        return true;
    }
    let key = format!("{} {}", rule.method, rule.path);
    let roles = GRANTS
        .iter()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("{key} has no hand-written grant in tests/it/matrix.rs"))
        .1;
    // `*`: every role that reads orders — all but the analyst, who is named where granted.
    roles
        .split(' ')
        .any(|r| r == role.as_str() || (r == "*" && role != Role::Analyst))
}

struct Fixture {
    order: String,
    backordered: String,
    subscription: String,
    dead_letter: String,
    key_id: String,
    reservation: String,
    admin_alpha: String,
    listing: String,
    /// An after-sales case on the backordered order.
    case: String,
    /// An edit of another order of shop-alpha, waiting for approval.
    edit: String,
    /// A merge of two paid orders of shop-alpha: (group, a member, the parcel).
    group: (String, String, String),
    /// A draft rule set of the tenant's.
    rule_set: String,
    /// A customer of the tenant's and its invoice profile.
    customer: (String, String),
}

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    kind: Kind,
}

async fn ok(app: &TestApp, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
    let r = app
        .call(
            method.clone(),
            path,
            Some(key),
            body.map(|b| b.to_string()).as_deref(),
            &[],
        )
        .await;
    assert!(
        r.status.is_success(),
        "fixture {method} {path}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.bytes)
    );
    r.body
}

async fn new_key(app: &TestApp, role: &str, shops: Option<&[&str]>) -> (String, String) {
    let r = ok(
        app,
        Method::POST,
        "/v1/api-keys",
        ADMIN_KEY,
        Some(json!({"name": "matrix", "role": role, "shops": shops})),
    )
    .await;
    (
        r["key"].as_str().unwrap().to_owned(),
        r["key_id"].as_str().unwrap().to_owned(),
    )
}

async fn fixture(app: &TestApp) -> Fixture {
    let post = |path: &'static str, body: Value| ok(app, Method::POST, path, ADMIN_KEY, Some(body));
    ok(
        app,
        Method::PUT,
        "/v1/skus/M-SKU",
        ADMIN_KEY,
        Some(json!({"title": "m"})),
    )
    .await;
    ok(
        app,
        Method::PUT,
        "/v1/warehouses/M-WH",
        ADMIN_KEY,
        Some(json!({"name": "m", "priority": 0, "regions": ["浙江省"]})),
    )
    .await;
    post(
        "/v1/inventory/receipts",
        json!({"sku": "M-SKU", "warehouse_id": "M-WH", "quantity": 100, "reference": "m"}),
    )
    .await;
    let reservation = post(
        "/v1/reservations",
        json!({"reference": "m-r1", "lines": [{"sku": "M-SKU", "quantity": 1}], "hold_seconds": 300}),
    )
    .await["reservation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = app.create(ADMIN_KEY, ALPHA, "M-1").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Its SKUs have no stock: paid, it waits on backorder with an out_of_stock exception.
    for sku in ["SKU-1", "SKU-2", "SKU-3"] {
        ok(
            app,
            Method::PUT,
            &format!("/v1/skus/{sku}"),
            ADMIN_KEY,
            Some(json!({"title": sku})),
        )
        .await;
    }
    let backordered = app.create(ADMIN_KEY, ALPHA, "M-2").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        app,
        Method::POST,
        &format!("/v1/orders/{backordered}/pay"),
        ADMIN_KEY,
        Some(json!({})),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/v1/channels/douyin/shops/{ALPHA}"),
        ADMIN_KEY,
        Some(json!({"app_key": "m", "secret": "m-secret", "api_base_url": "http://127.0.0.1:9"})),
    )
    .await;
    // A push without a valid signature: refused and recorded as a rejected message of the shop.
    let r = app
        .call(
            Method::POST,
            &format!("/v1/tenants/default/channels/douyin/shops/{ALPHA}/webhook"),
            None,
            Some("{}"),
            &[],
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let (admin_alpha, _) = new_key(app, "admin", Some(&[ALPHA])).await;
    let subscription = ok(
        app,
        Method::POST,
        "/v1/subscriptions",
        &admin_alpha,
        Some(json!({"url": "https://example.com/alpha", "event_types": ["*"]})),
    )
    .await["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dead = DeadLetterRow {
        tenant_id: TenantId::parse("default").unwrap(),
        dead_letter_id: Uuid::now_v7(),
        subscription_id: subscription.parse().unwrap(),
        event_id: Uuid::now_v7(),
        event_type: "order.created".into(),
        aggregate_id: order.parse().unwrap(),
        seq: 1,
        body: json!({"payload": {"shop_id": ALPHA}}).to_string(),
        attempts: 8,
        last_error: "HTTP 503".into(),
        state: "dead".into(),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    let dead_letter = dead.dead_letter_id.to_string();
    app.store
        .write(0, move |tx| Ok(tx.dead_letter_put(&dead)?))
        .await
        .unwrap();
    let (_, key_id) = new_key(app, "viewer", Some(&[ALPHA])).await;
    let listing = new_listing(app, "M-ITEM").await;
    let case = new_case(app, &backordered).await;
    let edit = pending_edit(app, "M-3").await;
    let group = new_group(app).await;
    let rule_set = rule_set(app, "draft").await;
    let customer = new_customer(app).await;
    Fixture {
        rule_set,
        customer,
        case,
        edit,
        group,
        listing,
        order,
        backordered,
        subscription,
        dead_letter,
        key_id,
        reservation,
        admin_alpha,
    }
}

/// A refund case on one unit of the first line of `order` (paid), by the default tenant's admin.
async fn new_case(app: &TestApp, order: &str) -> String {
    ok(
        app,
        Method::POST,
        &format!("/v1/orders/{order}/after-sales"),
        ADMIN_KEY,
        Some(
            json!({"kind": "refund_only", "lines": [{"line_id": 1, "quantity": 1}], "reason": "m"}),
        ),
    )
    .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A new order of shop-alpha with an edit of its lines (sensitive by default) asked by the
/// default tenant's admin: the edit's id, pending.
async fn pending_edit(app: &TestApp, external: &str) -> String {
    let order = app.create(ADMIN_KEY, ALPHA, external).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = ok(
        app,
        Method::POST,
        &format!("/v1/orders/{order}/edits"),
        ADMIN_KEY,
        Some(json!({"reason": "matrix", "quantities": [{"line_id": 1, "quantity": 3}]})),
    )
    .await;
    assert_eq!(r["edit"]["state"], "pending", "{r}");
    r["edit"]["edit_id"].as_str().unwrap().to_owned()
}

/// A merge of two new paid orders of shop-alpha (lines of a SKU outside the master, so nothing
/// waits on stock), by the default tenant's admin: (group id, a member, the parcel id).
async fn new_group(app: &TestApp) -> (String, String, String) {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut body = order_json(ALPHA, &format!("M-G{}", Uuid::now_v7().simple()));
        body["lines"] =
            json!([{"sku": "M-LOOSE", "title": "loose", "quantity": 1, "unit_price": "5.00"}]);
        let id = ok(app, Method::POST, "/v1/orders", ADMIN_KEY, Some(body)).await["order_id"]
            .as_str()
            .unwrap()
            .to_owned();
        ok(
            app,
            Method::POST,
            &format!("/v1/orders/{id}/pay"),
            ADMIN_KEY,
            Some(json!({})),
        )
        .await;
        ids.push(id);
    }
    let r = ok(
        app,
        Method::POST,
        "/v1/merges",
        ADMIN_KEY,
        Some(json!({"order_ids": ids, "reason": "matrix"})),
    )
    .await;
    (
        r["group"]["group_id"].as_str().unwrap().to_owned(),
        ids[0].clone(),
        r["group"]["parcel_id"].as_str().unwrap().to_owned(),
    )
}

/// A listing of M-SKU in shop-alpha, made by the default tenant's admin.
async fn new_listing(app: &TestApp, item: &str) -> String {
    ok(
        app,
        Method::POST,
        "/v1/listings",
        ADMIN_KEY,
        Some(
            json!({"channel": "douyin", "shop_id": ALPHA, "sku": "M-SKU", "channel_item_id": item}),
        ),
    )
    .await["listing_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A body of an invoice profile (a 普票 of a published unified social credit code).
fn profile_json() -> Value {
    json!({"title": "华为技术有限公司", "tax_id": "914403001922038216", "kind": "normal"})
}

/// A customer of the default tenant with one invoice profile: (customer id, profile id).
async fn new_customer(app: &TestApp) -> (String, String) {
    let c = ok(
        app,
        Method::POST,
        "/v1/customers",
        ADMIN_KEY,
        Some(json!({"name": "m"})),
    )
    .await["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/customers/{c}/invoice-profiles");
    let p = ok(app, Method::POST, &path, ADMIN_KEY, Some(profile_json())).await["profile_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (c, p)
}

/// A fresh rule set, written by a fresh ops key, moved to `state` (draft, submitted or
/// approved — approved by the fixture's admin key, so any matrix caller may publish it).
async fn rule_set(app: &TestApp, state: &str) -> String {
    let (author, _) = new_key(app, "ops", None).await;
    let body = json!({"name": "matrix", "rules": [
        {"id": "R1", "name": "big", "kind": "hold", "condition": "paid_cents > 100000000"}
    ]});
    let id = ok(app, Method::POST, "/v1/rule-sets", &author, Some(body)).await["rule_set_id"]
        .as_str()
        .unwrap()
        .to_owned();
    if state != "draft" {
        let path = format!("/v1/rule-sets/{id}/submit");
        ok(app, Method::POST, &path, &author, None).await;
    }
    if state == "approved" {
        let path = format!("/v1/rule-sets/{id}/approve");
        ok(app, Method::POST, &path, ADMIN_KEY, None).await;
    }
    id
}

/// A fresh wave of M-WH holding a new released order of shop-alpha, made by the default
/// tenant's admin and left `open` or `started`.
async fn new_wave(app: &TestApp, state: &str) -> String {
    let mut body = order_json(ALPHA, &format!("M-W{}", Uuid::now_v7().simple()));
    body["lines"] =
        json!([{"sku": "M-LOOSE", "title": "loose", "quantity": 1, "unit_price": "5.00"}]);
    let id = ok(app, Method::POST, "/v1/orders", ADMIN_KEY, Some(body)).await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (step, body) in [
        ("pay", json!({})),
        ("allocate", json!({"warehouse_id": "M-WH"})),
        ("release", json!({})),
    ] {
        let path = format!("/v1/orders/{id}/{step}");
        ok(app, Method::POST, &path, ADMIN_KEY, Some(body)).await;
    }
    let body = json!({"warehouse_id": "M-WH"});
    let r = ok(app, Method::POST, "/v1/waves", ADMIN_KEY, Some(body)).await;
    let wave = r["waves"][0]["wave_id"].as_str().unwrap().to_owned();
    if state == "started" {
        let path = format!("/v1/waves/{wave}/start");
        ok(app, Method::POST, &path, ADMIN_KEY, None).await;
    }
    wave
}

/// The request the matrix sends for a rule. Routes that use their object up get a fresh one for
/// each call (a new order to cancel, a new key to revoke, a new subscription to delete).
async fn case(app: &TestApp, f: &Fixture, rule: &Rule) -> Case {
    use Kind::*;
    let m = rule.method.clone();
    let c = |path: String, body: Option<Value>, kind: Kind| Case {
        method: m.clone(),
        path,
        body,
        kind,
    };
    let o = &f.order;
    let ext = format!("M-{}", Uuid::now_v7().simple());
    match (rule.method.as_str(), rule.path) {
        ("POST", "/v1/orders") => c(
            "/v1/orders".into(),
            Some(order_json(ALPHA, &ext)),
            CreateInAlpha,
        ),
        ("GET", "/v1/orders") => c("/v1/orders?limit=500".into(), None, List("order")),
        ("GET", "/v1/orders/{id}") => c(format!("/v1/orders/{o}"), None, Object),
        ("GET", "/v1/orders/{id}/timeline") => c(format!("/v1/orders/{o}/timeline"), None, Object),
        ("POST", "/v1/orders/{id}/retry") => c(format!("/v1/orders/{o}/retry"), None, Object),
        ("POST", "/v1/orders/{id}/carrier") => c(
            format!("/v1/orders/{o}/carrier"),
            Some(json!({"carrier": "yto"})),
            Object,
        ),
        ("POST", "/v1/orders/{id}/exceptions/{kind}/resolve") => {
            let fresh = app.create(ADMIN_KEY, ALPHA, &ext).await.body["order_id"]
                .as_str()
                .unwrap()
                .to_owned();
            app.raise(&fresh, "stop_shipment").await;
            c(
                format!("/v1/orders/{fresh}/exceptions/stop_shipment/resolve"),
                Some(json!({"reason": "matrix"})),
                Object,
            )
        }
        ("POST", "/v1/orders/bulk") => c(
            rule.path.into(),
            Some(json!({"action": "cancel", "reason": "m", "preview": true, "search": {"q": o}})),
            List("order"),
        ),
        ("GET", "/v1/orders/{id}/exceptions") => {
            c(format!("/v1/orders/{o}/exceptions"), None, Object)
        }
        ("POST", p) if p.starts_with("/v1/orders/{id}/exceptions/{kind}/") => {
            let fresh = app.create(ADMIN_KEY, ALPHA, &ext).await.body["order_id"]
                .as_str()
                .unwrap()
                .to_owned();
            app.raise(&fresh, "stop_shipment").await;
            let body = match p.rsplit('/').next() {
                Some("assign") => json!({"assignee": "me"}),
                Some("notes") => json!({"text": "matrix"}),
                _ => json!({}),
            };
            c(
                p.replace("{id}", &fresh).replace("{kind}", "stop_shipment"),
                Some(body),
                Object,
            )
        }
        ("GET", "/v1/settings/exception-sla") => c(rule.path.into(), None, Tenant),
        ("PUT", "/v1/settings/exception-sla") => c(
            rule.path.into(),
            Some(json!({"hours": {"no_waybill": 3}, "default_hours": 8})),
            Tenant,
        ),
        ("GET", "/v1/interventions") => c("/v1/interventions?days=7".into(), None, Tenant),
        ("POST", "/v1/orders/{id}/edits") => c(
            format!("/v1/orders/{o}/edits"),
            Some(json!({"reason": "matrix", "seller_memo": ext})),
            Object,
        ),
        ("GET", "/v1/orders/{id}/edits") => c(format!("/v1/orders/{o}/edits"), None, Object),
        ("GET", "/v1/edits") => c("/v1/edits?limit=200".into(), None, List("edit")),
        ("GET", "/v1/edits/{id}") => c(format!("/v1/edits/{}", f.edit), None, Object),
        ("POST", "/v1/edits/{id}/approve") => {
            let fresh = pending_edit(app, &ext).await;
            c(format!("/v1/edits/{fresh}/approve"), None, Object)
        }
        ("POST", "/v1/edits/{id}/reject") => {
            let fresh = pending_edit(app, &ext).await;
            c(
                format!("/v1/edits/{fresh}/reject"),
                Some(json!({"reason": "matrix"})),
                Object,
            )
        }
        ("GET", "/v1/settings/order-edits") => c(rule.path.into(), None, Tenant),
        ("PUT", "/v1/settings/order-edits") => c(rule.path.into(), Some(json!({})), Tenant),
        ("POST", "/v1/rule-sets") => c(
            rule.path.into(),
            Some(json!({"name": "m", "rules": []})),
            Tenant,
        ),
        ("GET", "/v1/rule-sets") => c(rule.path.into(), None, Tenant),
        // A fresh value per case: a repeat of one would be 409.
        ("POST", "/v1/blacklist") => c(
            rule.path.into(),
            Some(json!({"kind": "buyer", "value": format!("m-{ext}")})),
            Tenant,
        ),
        ("GET", "/v1/blacklist") => c(rule.path.into(), None, Tenant),
        ("POST", "/v1/customers") => c(rule.path.into(), Some(json!({"name": "m"})), Tenant),
        ("GET", "/v1/invoice-profiles/scan") => c(rule.path.into(), None, Tenant),
        ("POST", "/v1/customers/{id}/buyers") => c(
            format!("/v1/customers/{}/buyers", f.customer.0),
            Some(json!({"channel": "taobao", "buyer_id": ext})),
            Object,
        ),
        ("POST", "/v1/customers/{id}/invoice-profiles") => c(
            format!("/v1/customers/{}/invoice-profiles", f.customer.0),
            Some(profile_json()),
            Object,
        ),
        ("GET" | "POST", p) if p.starts_with("/v1/customers/{id}") => {
            let body = p.ends_with("/versions").then(profile_json);
            c(
                p.replace("{id}", &f.customer.0)
                    .replace("{profile_id}", &f.customer.1),
                body,
                Object,
            )
        }
        ("GET", "/v1/rule-sets/{id}") => c(format!("/v1/rule-sets/{}", f.rule_set), None, Object),
        ("POST", "/v1/rule-sets/{id}/test") => c(
            format!("/v1/rule-sets/{}/test", f.rule_set),
            Some(json!({"order_id": o})),
            Object,
        ),
        ("GET", "/v1/rule-sets/{id}/sandbox") => c(
            format!("/v1/rule-sets/{}/sandbox?days=1", f.rule_set),
            None,
            Object,
        ),
        ("POST", p) if p.starts_with("/v1/rule-sets/{id}/") => {
            let step = p.rsplit('/').next().unwrap_or_default();
            let from = match step {
                "submit" => "draft",
                "approve" => "submitted",
                _ => "approved",
            };
            let fresh = rule_set(app, from).await;
            c(format!("/v1/rule-sets/{fresh}/{step}"), None, Object)
        }
        ("POST", "/v1/waves") => c(
            rule.path.into(),
            Some(json!({"warehouse_id": "M-WH"})),
            Tenant,
        ),
        ("GET", "/v1/waves") => c(rule.path.into(), None, Tenant),
        ("GET", "/v1/waves/{id}") => {
            let fresh = new_wave(app, "open").await;
            c(format!("/v1/waves/{fresh}"), None, Object)
        }
        ("POST", p) if p.starts_with("/v1/waves/{id}/") => {
            let step = p.rsplit('/').next().unwrap_or_default();
            let fresh = new_wave(app, if step == "close" { "started" } else { "open" }).await;
            c(format!("/v1/waves/{fresh}/{step}"), None, Object)
        }
        ("POST", "/v1/merges/preview") => c(
            rule.path.into(),
            Some(json!({"order_ids": [o, f.backordered]})),
            Object,
        ),
        // The fixture's unpaid order refuses the merge (409), past authorization.
        ("POST", "/v1/merges") => c(
            rule.path.into(),
            Some(json!({"order_ids": [o, f.backordered]})),
            Object,
        ),
        ("GET", "/v1/merges/{id}") => c(format!("/v1/merges/{}", f.group.0), None, Object),
        ("POST", "/v1/merges/{id}/undo") => {
            let (fresh, _, _) = new_group(app).await;
            c(format!("/v1/merges/{fresh}/undo"), None, Object)
        }
        ("POST", "/v1/orders/{id}/split") => c(
            format!("/v1/orders/{o}/split"),
            Some(json!({"by": "stock"})),
            Object,
        ),
        // Its member is not released: 409, past authorization.
        ("POST", "/v1/orders/{id}/parcels/{parcel_id}/ship") => c(
            format!("/v1/orders/{}/parcels/{}/ship", f.group.1, f.group.2),
            Some(json!({"carrier": "sf", "tracking_no": "SF1", "logistics_no": "L1"})),
            Object,
        ),
        ("GET", "/v1/settings/merges") => c(rule.path.into(), None, Tenant),
        ("PUT", "/v1/settings/merges") => c(rule.path.into(), Some(json!({})), Tenant),
        ("POST", "/v1/orders/{id}/{action}") => {
            let fresh = app.create(ADMIN_KEY, ALPHA, &ext).await.body["order_id"]
                .as_str()
                .unwrap()
                .to_owned();
            c(
                format!("/v1/orders/{fresh}/cancel"),
                Some(json!({"reason": "matrix"})),
                Object,
            )
        }
        ("POST", "/v1/orders/{id}/after-sales") => {
            let fresh = app.create(ADMIN_KEY, ALPHA, &ext).await.body["order_id"]
                .as_str()
                .unwrap()
                .to_owned();
            ok(
                app,
                Method::POST,
                &format!("/v1/orders/{fresh}/pay"),
                ADMIN_KEY,
                Some(json!({})),
            )
            .await;
            c(
                format!("/v1/orders/{fresh}/after-sales"),
                Some(
                    json!({"kind": "refund_only", "lines": [{"line_id": 2, "quantity": 1}], "reason": "m"}),
                ),
                Object,
            )
        }
        ("GET", "/v1/after-sales") => c("/v1/after-sales?limit=200".into(), None, List("case")),
        ("GET", "/v1/after-sales/{id}") => c(format!("/v1/after-sales/{}", f.case), None, Object),
        // The fixture's case: the first caller allowed moves it, the next ones get 409 (past
        // authorization either way).
        ("POST", "/v1/after-sales/{id}/refuse") => c(
            format!("/v1/after-sales/{}/refuse", f.case),
            Some(json!({"reason": "m"})),
            Object,
        ),
        ("POST", "/v1/after-sales/{id}/receive") => c(
            format!("/v1/after-sales/{}/receive", f.case),
            Some(json!({"qc_passed": true})),
            Object,
        ),
        ("POST", p) if p.starts_with("/v1/after-sales/{id}/") => {
            c(p.replace("{id}", &f.case), None, Object)
        }
        ("GET", "/v1/exceptions") => {
            c("/v1/exceptions?limit=500".into(), None, List("backordered"))
        }
        ("GET", "/v1/whoami") => c("/v1/whoami".into(), None, Tenant),
        ("GET", "/v1/stats") => c("/v1/stats".into(), None, Stats),
        ("GET", "/v1/reports/status-differences") => {
            c("/v1/reports/status-differences".into(), None, Tenant)
        }
        // Aggregates of the caller's own scope: no object of the fixture's in the path.
        ("GET", "/v1/metrics/golden") => {
            let today = chrono::Utc::now().date_naive();
            c(
                format!(
                    "/v1/metrics/golden?from={}&to={today}&by=shop",
                    today - chrono::Duration::days(1)
                ),
                None,
                Tenant,
            )
        }
        ("POST", "/v1/quality/check") => c(rule.path.into(), None, Tenant),
        ("GET", "/v1/quality/alerts") => c(
            "/v1/quality/alerts?from=2026-01-01&to=2026-01-31".into(),
            None,
            Tenant,
        ),
        ("POST", "/v1/health/compute") => c(rule.path.into(), None, Tenant),
        ("GET", "/v1/health/scores") => c(
            "/v1/health/scores?dimension=shop&from=2026-01-01&to=2026-01-31".into(),
            None,
            Tenant,
        ),
        ("GET", "/v1/health/live") => c(
            "/v1/health/live?dimension=shop&window_seconds=600".into(),
            None,
            Tenant,
        ),
        // The orders behind a shop's score: another shop's key is refused that shop (404).
        ("GET", "/v1/health/orders") => {
            let today = chrono::Utc::now().date_naive();
            c(
                format!("/v1/health/orders?dimension=shop&key={ALPHA}&date={today}"),
                None,
                ShopConfig,
            )
        }
        ("GET", "/v1/health/config") => c(rule.path.into(), None, Tenant),
        ("PUT", "/v1/health/config") => c(
            rule.path.into(),
            Some(json!({
                "weights": {"on_time": 30, "exceptions": 15, "exception_age": 15, "refunds": 10,
                            "sync_lag": 10, "write_back": 10, "tracking": 10},
                "grade_a": 90, "grade_b": 80, "grade_c": 70, "alert_days": 3,
                "sync_lag_seconds": 1800, "write_back_seconds": 7200, "tracking_seconds": 86400
            })),
            Tenant,
        ),
        ("GET", "/v1/events") => c("/v1/events?limit=1000".into(), None, List("order")),
        ("PUT", "/v1/skus/{sku}") => {
            c("/v1/skus/M-SKU".into(), Some(json!({"title": "m"})), Tenant)
        }
        ("PUT", "/v1/warehouses/{id}") => c(
            "/v1/warehouses/M-WH".into(),
            Some(json!({"name": "m", "priority": 0, "regions": ["浙江省"]})),
            Tenant,
        ),
        ("PUT", "/v1/channels/{channel}/inventory-policy") => c(
            "/v1/channels/douyin/inventory-policy".into(),
            Some(json!({"allocation": "shared"})),
            Tenant,
        ),
        ("POST", "/v1/inventory/receipts") => c(
            rule.path.into(),
            Some(json!({"sku": "M-SKU", "warehouse_id": "M-WH", "quantity": 1, "reference": ext})),
            Tenant,
        ),
        ("POST", "/v1/inventory/adjustments") => c(
            rule.path.into(),
            Some(
                json!({"sku": "M-SKU", "warehouse_id": "M-WH", "delta": 1, "reason": "stock_take"}),
            ),
            Tenant,
        ),
        ("POST", "/v1/inventory/snapshots") => c(
            rule.path.into(),
            Some(
                json!({"warehouse_id": "M-WH", "as_of": chrono::Utc::now().to_rfc3339(),
                        "items": [{"sku": "M-SKU", "on_hand": 100}]}),
            ),
            Tenant,
        ),
        ("POST", "/v1/inventory/returns") => c(
            rule.path.into(),
            Some(
                json!({"sku": "M-SKU", "warehouse_id": "M-WH", "quantity": 1, "qc": "passed", "reference": ext}),
            ),
            Tenant,
        ),
        ("GET", "/v1/inventory/{sku}") => c("/v1/inventory/M-SKU".into(), None, Tenant),
        ("GET", "/v1/inventory/{sku}/ledger") => {
            c("/v1/inventory/M-SKU/ledger".into(), None, Tenant)
        }
        ("GET", "/v1/backorders") => {
            c("/v1/backorders?limit=500".into(), None, List("backordered"))
        }
        ("POST", "/v1/reservations") => c(
            rule.path.into(),
            Some(
                json!({"reference": ext, "lines": [{"sku": "M-SKU", "quantity": 1}], "hold_seconds": 60}),
            ),
            Tenant,
        ),
        // Reservations belong to the tenant, not a shop: the other tenant's admin gets 404.
        ("GET", "/v1/reservations/{id}") => {
            c(format!("/v1/reservations/{}", f.reservation), None, Object)
        }
        ("POST", "/v1/reservations/{id}/{action}") => c(
            format!("/v1/reservations/{}/commit", f.reservation),
            None,
            Object,
        ),
        ("POST", "/v1/subscriptions") => c(
            rule.path.into(),
            Some(json!({"url": "https://example.com/m", "event_types": ["order.paid"]})),
            Tenant,
        ),
        ("GET", "/v1/subscriptions") => c(rule.path.into(), None, List("subscription")),
        ("PATCH", "/v1/subscriptions/{id}") => c(
            format!("/v1/subscriptions/{}", f.subscription),
            Some(json!({"template": null})),
            Object,
        ),
        ("DELETE", "/v1/subscriptions/{id}") => {
            let fresh = ok(
                app,
                Method::POST,
                "/v1/subscriptions",
                &f.admin_alpha,
                Some(json!({"url": "https://example.com/d", "event_types": ["*"]})),
            )
            .await["subscription_id"]
                .as_str()
                .unwrap()
                .to_owned();
            c(format!("/v1/subscriptions/{fresh}"), None, Object)
        }
        ("GET", "/v1/dead-letters") => c(
            "/v1/dead-letters?state=all".into(),
            None,
            List("dead_letter"),
        ),
        ("POST", "/v1/dead-letters/replay") => c(rule.path.into(), None, ReplayAll),
        ("GET", "/v1/dead-letters/{id}") => {
            c(format!("/v1/dead-letters/{}", f.dead_letter), None, Object)
        }
        ("POST", "/v1/dead-letters/{id}/replay") => c(
            format!("/v1/dead-letters/{}/replay", f.dead_letter),
            None,
            Object,
        ),
        ("GET", "/v1/channels/{channel}/shops/{shop}") => {
            c(format!("/v1/channels/douyin/shops/{ALPHA}"), None, Object)
        }
        ("PUT", "/v1/channels/{channel}/shops/{shop}") => c(
            format!("/v1/channels/douyin/shops/{ALPHA}"),
            Some(
                json!({"app_key": "m", "secret": "m-secret", "api_base_url": "http://127.0.0.1:9"}),
            ),
            ShopConfig,
        ),
        // The test hub has no --public-url: every caller who reaches a shop of that id (the
        // other tenant configures its own above) gets 409.
        ("POST", "/v1/channels/{channel}/shops/{shop}/authorize") => c(
            format!("/v1/channels/douyin/shops/{ALPHA}/authorize"),
            Some(json!({"service_id": "1"})),
            ShopConfig,
        ),
        // The platform's redirect: the state is the authentication, the same answer for every key.
        ("GET", "/oauth/callback/{channel}") => c(
            "/oauth/callback/douyin?code=c&state=forged".into(),
            None,
            Public,
        ),
        ("GET", "/v1/carriers") => c(rule.path.into(), None, Tenant),
        ("PUT", "/v1/carriers/{carrier}") => c(
            "/v1/carriers/sf".into(),
            Some(json!({"base_url": "http://127.0.0.1:9", "app_key": "m-app",
                        "secret": "m-secret", "customer_code": "m-customer"})),
            Tenant,
        ),
        // Removes an account the default tenant's admin makes fresh for each call.
        ("DELETE", "/v1/carriers/{carrier}") => {
            ok(
                app,
                Method::PUT,
                "/v1/carriers/ems",
                ADMIN_KEY,
                Some(json!({"base_url": "http://127.0.0.1:9", "app_key": "m-app",
                            "secret": "m-secret", "customer_code": "m-customer"})),
            )
            .await;
            c("/v1/carriers/ems".into(), None, Tenant)
        }
        ("POST", "/v1/listings") => c(
            rule.path.into(),
            Some(
                json!({"channel": "pdd", "shop_id": ALPHA, "sku": "M-SKU", "channel_item_id": ext}),
            ),
            CreateInAlpha,
        ),
        ("GET", "/v1/listings") => c("/v1/listings?limit=500".into(), None, List("listing")),
        // The drift list: the fixture's listing has no drift, so no marker to look for.
        ("GET", "/v1/listings/drift") => c("/v1/listings/drift?limit=500".into(), None, Tenant),
        // Makes every listing the caller sees due for a read: none for callers outside it.
        ("POST", "/v1/listings/reconcile") => c(rule.path.into(), None, ReplayAll),
        ("GET", "/v1/listings/{id}") => c(format!("/v1/listings/{}", f.listing), None, Object),
        ("PATCH", "/v1/listings/{id}") => c(
            format!("/v1/listings/{}", f.listing),
            Some(json!({"fixed_quantity": 3})),
            Object,
        ),
        ("DELETE", "/v1/blacklist/{id}") => {
            let fresh = ok(
                app,
                Method::POST,
                "/v1/blacklist",
                ADMIN_KEY,
                Some(json!({"kind": "buyer", "value": format!("d-{ext}")})),
            )
            .await["entry_id"]
                .as_str()
                .unwrap()
                .to_owned();
            c(format!("/v1/blacklist/{fresh}"), None, Object)
        }
        ("DELETE", "/v1/listings/{id}") => {
            let fresh = new_listing(app, &ext).await;
            c(format!("/v1/listings/{fresh}"), None, Object)
        }
        ("POST", "/v1/tenants/{tenant}/channels/{channel}/shops/{shop}/webhook") => c(
            format!("/v1/tenants/default/channels/douyin/shops/{ALPHA}/webhook"),
            Some(json!({})),
            Public,
        ),
        // A carrier's push: its signature is the authentication, the same answer for every key.
        ("POST", "/v1/tenants/{tenant}/carriers/{carrier}/track-push") => c(
            "/v1/tenants/default/carriers/sf/track-push".into(),
            Some(json!({})),
            Public,
        ),
        ("POST", "/v1/channels/{channel}/shops/{shop}/webhook") => c(
            format!("/v1/channels/douyin/shops/{ALPHA}/webhook"),
            Some(json!({})),
            Public,
        ),
        ("GET", "/v1/channel-messages") => c(
            "/v1/channel-messages?state=all".into(),
            None,
            List("shop-alpha"),
        ),
        ("POST", "/v1/api-keys") => c(
            rule.path.into(),
            Some(json!({"name": "m", "role": "viewer", "shops": [ALPHA]})),
            CreateInAlpha,
        ),
        ("GET", "/v1/api-keys") => c(rule.path.into(), None, List("key")),
        ("POST", "/v1/api-keys/{id}/revoke") => {
            let (_, id) = new_key(app, "viewer", Some(&[ALPHA])).await;
            c(format!("/v1/api-keys/{id}/revoke"), None, Object)
        }
        ("GET", "/") => c("/".into(), None, Public),
        ("GET", "/console/{file}") => c("/console/app.js".into(), None, Public),
        ("GET", "/healthz" | "/readyz" | "/metrics" | "/openapi.json") => {
            c(rule.path.into(), None, Public)
        }
        (m, p) => panic!(
            "{m} {p} has no case in the authorization matrix (tests/it/matrix.rs): \
             add one saying what it acts on"
        ),
    }
}

/// The marker a list must show to callers that reach the fixture.
fn marker<'a>(f: &'a Fixture, name: &'a str) -> &'a str {
    match name {
        "order" => &f.order,
        "backordered" => &f.backordered,
        "subscription" => &f.subscription,
        "dead_letter" => &f.dead_letter,
        "key" => &f.key_id,
        "listing" => &f.listing,
        "case" => &f.case,
        "edit" => &f.edit,
        other => other,
    }
}

async fn every_route_answers_every_role_scope_and_tenant_as_its_rule_says(app: TestApp) {
    let f = fixture(&app).await;
    let rules = policy::rules();

    // The OpenAPI document and the rules name the same operations (the console's files are not
    // API operations).
    let doc = app
        .call(Method::GET, "/openapi.json", None, None, &[])
        .await
        .body;
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    let declared: BTreeSet<String> = rules
        .iter()
        .filter(|r| !(r.path == "/" || r.path.starts_with("/console/")))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        documented, declared,
        "OpenAPI operations and route rules differ"
    );

    let mut callers = vec![Caller::NoKey, Caller::OtherTenant];
    for role in Role::ALL {
        for scope in [None, Some(ALPHA), Some(BETA)] {
            let shops: Option<Vec<&str>> = scope.map(|s| vec![s]);
            let (key, _) = new_key(&app, role.as_str(), shops.as_deref()).await;
            callers.push(Caller::Key { role, scope, key });
        }
    }
    let secrets = [
        f.order.as_str(),
        &f.backordered,
        &f.subscription,
        &f.dead_letter,
        &f.key_id,
        &f.reservation,
        &f.edit,
        &f.customer.0,
        &f.customer.1,
    ];
    let mut cases = 0;
    let mut failures = Vec::new();
    for rule in &rules {
        let mut public_status = None;
        for caller in &callers {
            let c = case(&app, &f, rule).await;
            let r = app
                .call(
                    c.method.clone(),
                    &c.path,
                    caller.key(),
                    c.body.as_ref().map(Value::to_string).as_deref(),
                    &[],
                )
                .await;
            cases += 1;
            let text = String::from_utf8_lossy(&r.bytes);
            let what = format!("{} {} by {}", c.method, c.path, caller.label());
            let mut fail =
                |why: String| failures.push(format!("{what}: {why} — {} {text:.200}", r.status));
            if r.status.is_server_error() {
                fail("a server error".into());
                continue;
            }
            let outside = matches!(
                caller,
                Caller::OtherTenant
                    | Caller::Key {
                        scope: Some(BETA),
                        ..
                    }
            );
            if outside && c.kind != Kind::Public && secrets.iter().any(|s| text.contains(s)) {
                fail("the answer holds an object of shop-alpha of the default tenant".into());
            }
            let expected = expect(rule, &c, caller);
            match expected {
                Expect::SameForAll => {
                    let s = *public_status.get_or_insert(r.status);
                    if r.status != s {
                        fail(format!(
                            "a route that needs no key answered {s} to another caller"
                        ));
                    }
                }
                Expect::Status(s, code) => {
                    if r.status != s || code.is_some_and(|code| r.code() != code) {
                        fail(format!("expected {s} {}", code.unwrap_or("")));
                    }
                }
                Expect::Passes(m) => {
                    if [
                        StatusCode::UNAUTHORIZED,
                        StatusCode::FORBIDDEN,
                        StatusCode::NOT_FOUND,
                    ]
                    .contains(&r.status)
                    {
                        fail("expected to pass authorization".into());
                    } else if let Some(m) = m
                        && !text.contains(marker(&f, m))
                    {
                        fail(format!("the list lacks the fixture's {m}"));
                    }
                }
                Expect::PassesInOwnTenant => {
                    if [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&r.status) {
                        fail("expected to pass the role and scope checks".into());
                    }
                }
                Expect::NothingQueued => {
                    if r.status != StatusCode::ACCEPTED || r.body["queued"] != 0 {
                        fail("expected 202 with nothing queued".into());
                    }
                }
                Expect::CountsFixture => {
                    if r.status != StatusCode::OK
                        || orders_counted(&r.body) == 0
                        || r.body["dead_letters"] == 0
                    {
                        fail(
                            "expected figures counting the fixture's orders and dead letter".into(),
                        );
                    }
                }
                Expect::CountsNothing => {
                    let orders = orders_counted(&r.body);
                    if r.status != StatusCode::OK
                        || orders != 0
                        || r.body["dead_letters"] != 0
                        || text.contains(ALPHA)
                    {
                        fail(
                            "expected figures without the fixture's orders, dead letters or shop"
                                .into(),
                        );
                    }
                }
                Expect::ListWithout(m) => {
                    if r.status != StatusCode::OK {
                        fail("expected 200".into());
                    } else if text.contains(marker(&f, m)) {
                        fail(format!("the list shows the fixture's {m}"));
                    }
                }
            }
        }
    }
    let matrix_cases = cases;
    // A method a declared path does not take is 405 for everyone, never a server error.
    for rule in &rules {
        for m in [Method::TRACE, Method::PATCH] {
            if rules
                .iter()
                .any(|r| r.path == rule.path && r.method.as_str() == m.as_str())
            {
                continue;
            }
            let path = rule.path.replace('{', "x").replace('}', "");
            for key in [None, Some(ADMIN_KEY)] {
                let r = app.call(m.clone(), &path, key, None, &[]).await;
                cases += 1;
                if r.status != StatusCode::METHOD_NOT_ALLOWED {
                    failures.push(format!("{m} {path}: {} instead of 405", r.status));
                }
            }
        }
    }
    println!(
        "authorization matrix: {} routes × {} callers = {matrix_cases} cases, and {} requests \
         with a method the path does not take",
        rules.len(),
        callers.len(),
        cases - matrix_cases
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ from their rule:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The orders `/v1/stats` counts over its hour.
fn orders_counted(stats: &Value) -> u64 {
    stats["orders_per_minute"]
        .as_array()
        .map_or(0, |m| m.iter().filter_map(|x| x["orders"].as_u64()).sum())
}

enum Expect {
    /// The route needs no key: every caller gets the same answer.
    SameForAll,
    Status(StatusCode, Option<&'static str>),
    /// Through authorization; a list shows the marker.
    Passes(Option<&'static str>),
    /// Through the role and scope checks (the other tenant on its own tenant's space, where the
    /// object may not exist: 404 allowed).
    PassesInOwnTenant,
    /// 200 without the marker.
    ListWithout(&'static str),
    /// 202 with nothing queued.
    NothingQueued,
    /// 200 counting no order and no dead letter of the fixture's, naming none of its shops.
    CountsNothing,
    /// 200 counting the fixture's orders and its dead letter.
    CountsFixture,
}

/// What a caller's request must get, from the route's rule alone.
fn expect(rule: &Rule, c: &Case, caller: &Caller) -> Expect {
    if rule.need == Need::Nothing {
        return Expect::SameForAll;
    }
    let Some(p) = caller.principal() else {
        return Expect::Status(StatusCode::UNAUTHORIZED, Some("unauthenticated"));
    };
    if !granted(rule, p.role) {
        return Expect::Status(StatusCode::FORBIDDEN, Some("forbidden"));
    }
    if rule.reach == Reach::WholeTenant && p.shops.is_some() {
        return Expect::Status(StatusCode::FORBIDDEN, Some("out_of_scope"));
    }
    let reaches = caller.reaches_fixture();
    let other_tenant = matches!(caller, Caller::OtherTenant);
    match c.kind {
        Kind::Public => Expect::SameForAll,
        Kind::Tenant if other_tenant => Expect::PassesInOwnTenant,
        // Shop ids are each tenant's own: another tenant configures its own shop of that id.
        // A scoped key outside the shop gets 404.
        Kind::ShopConfig if other_tenant => Expect::PassesInOwnTenant,
        Kind::ShopConfig if !reaches => Expect::Status(StatusCode::NOT_FOUND, None),
        Kind::ShopConfig => Expect::Passes(None),
        Kind::Object if !reaches => Expect::Status(StatusCode::NOT_FOUND, None),
        Kind::Object | Kind::Tenant => Expect::Passes(None),
        Kind::List(m) if reaches => Expect::Passes(Some(m)),
        Kind::List(m) => Expect::ListWithout(m),
        // Another tenant creates in its own space; a key scoped to another shop may not.
        Kind::CreateInAlpha
            if matches!(
                caller,
                Caller::Key {
                    scope: Some(BETA),
                    ..
                }
            ) =>
        {
            Expect::Status(StatusCode::FORBIDDEN, None)
        }
        Kind::CreateInAlpha => Expect::Passes(None),
        Kind::ReplayAll if reaches => Expect::Passes(None),
        Kind::ReplayAll => Expect::NothingQueued,
        Kind::Stats if reaches => Expect::CountsFixture,
        // The other tenant's figures are its own (it made orders above); only the ids are checked.
        Kind::Stats if other_tenant => Expect::PassesInOwnTenant,
        Kind::Stats => Expect::CountsNothing,
    }
}

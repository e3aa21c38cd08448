//! The console's API: order search, the exception board, whoami and stats, and the console itself.

use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_every_backend!(
    search_filters_return_exactly_the_matching_orders_within_scope_and_tenant,
    bad_search_parameters_are_400_naming_the_parameter,
    the_exception_board_lists_an_exception_and_drops_it_once_resolved,
    search_results_carry_no_personal_data_without_pii_read,
    the_console_is_served_with_a_strict_content_security_policy,
    whoami_and_stats_describe_the_caller_and_its_tenant,
    retry_and_switch_carrier_are_recorded_events_for_the_workers,
);

fn order(shop: &str, external: &str, nick: &str, buyer_id: Option<&str>) -> Value {
    let mut o = order_json(shop, external);
    o["buyer"] = json!({"nick": nick, "id": buyer_id});
    o
}

async fn created(app: &TestApp, key: &str, body: &Value) -> String {
    let r = app.post("/v1/orders", key, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["order_id"].as_str().unwrap().to_owned()
}

/// The order ids a search returns, sorted.
async fn found(app: &TestApp, key: &str, query: &str) -> Vec<String> {
    let r = app.get(&format!("/v1/orders?{query}"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
    let mut ids: Vec<String> = r.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<&String>) -> Vec<String> {
    v.sort();
    v.into_iter().cloned().collect()
}

async fn search_filters_return_exactly_the_matching_orders_within_scope_and_tenant(app: TestApp) {
    let a1 = created(&app, ADMIN_KEY, &order("shop-a", "E1", "alice", None)).await;
    let b1 = created(&app, ADMIN_KEY, &order("shop-b", "E1", "bob", Some("b-9"))).await;
    let a2 = created(&app, ADMIN_KEY, &order("shop-a", "E2", "alice", None)).await;
    let other = created(
        &app,
        OTHER_TENANT_KEY,
        &order("shop-a", "E1", "alice", None),
    )
    .await;

    let k = ADMIN_KEY;
    assert_eq!(
        found(&app, k, "external_order_id=E1").await,
        sorted(vec![&a1, &b1]),
        "an external id across shops, not another tenant's"
    );
    assert_eq!(found(&app, k, "buyer=alice").await, sorted(vec![&a1, &a2]));
    assert_eq!(
        found(&app, k, "buyer=b-9").await,
        vec![b1.clone()],
        "buyer id"
    );
    assert_eq!(
        found(&app, k, "buyer=ali").await,
        Vec::<String>::new(),
        "exact"
    );
    assert_eq!(found(&app, k, "q=E2").await, vec![a2.clone()]);
    assert_eq!(found(&app, k, &format!("q={a1}")).await, vec![a1.clone()]);
    assert_eq!(found(&app, k, "q=alice").await, sorted(vec![&a1, &a2]));
    assert_eq!(
        found(&app, k, "external_order_id=E1&shop=shop-b").await,
        vec![b1.clone()]
    );
    assert_eq!(
        found(&app, OTHER_TENANT_KEY, "external_order_id=E1").await,
        vec![other.clone()]
    );
    assert_eq!(
        found(&app, OTHER_TENANT_KEY, &format!("q={a1}")).await,
        Vec::<String>::new(),
        "another tenant's order id finds nothing"
    );

    let scoped = app.key("viewer", Some(&["shop-a"]), false).await;
    assert_eq!(
        found(&app, &scoped, "external_order_id=E1").await,
        vec![a1.clone()],
        "the key's shop scope applies"
    );
    assert_eq!(
        found(&app, &scoped, "buyer=b-9").await,
        Vec::<String>::new()
    );

    let past = "2020-01-01T00:00:00%2B08:00";
    let future = "2099-01-01T00:00:00Z";
    assert_eq!(
        found(&app, k, &format!("created_from={past}&created_to={future}")).await,
        sorted(vec![&a1, &b1, &a2])
    );
    assert_eq!(
        found(&app, k, &format!("created_from={future}")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(&app, k, &format!("created_to={past}")).await,
        Vec::<String>::new()
    );
    // Paging a search with a cursor returns each order once.
    let first = app.get("/v1/orders?buyer=alice&limit=1", k).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(
            &format!("/v1/orders?buyer=alice&limit=1&cursor={cursor}"),
            k,
        )
        .await;
    let mut both = vec![
        first.body["orders"][0]["order_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        second.body["orders"][0]["order_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    both.sort();
    assert_eq!(both, sorted(vec![&a1, &a2]));
}

async fn bad_search_parameters_are_400_naming_the_parameter(app: TestApp) {
    for (query, code, field) in [
        ("created_from=yesterday", "invalid_time", "created_from"),
        ("created_to=2026-13-01", "invalid_time", "created_to"),
        (
            "created_from=2026-11-12T00:00:00Z&created_to=2026-11-11T00:00:00Z",
            "invalid_range",
            "created_from",
        ),
        (
            "exception=Out%20Of%20Stock",
            "invalid_parameter",
            "exception",
        ),
        ("buyer=%01", "invalid_parameter", "buyer"),
        ("nickname=x", "unknown_parameter", "nickname"),
    ] {
        let r = app.get(&format!("/v1/orders?{query}"), ADMIN_KEY).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
        assert_eq!((r.code(), r.field()), (code, field), "{query}");
    }
    let long = "x".repeat(129);
    let r = app.get(&format!("/v1/orders?q={long}"), ADMIN_KEY).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "q"));
    let r = app.get("/v1/exceptions?kind=No!", ADMIN_KEY).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "kind"));
    let r = app.get("/v1/exceptions?limit=0", ADMIN_KEY).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "limit"));
}

async fn put(app: &TestApp, path: &str, body: Value) {
    let r = app
        .call(
            Method::PUT,
            path,
            Some(ADMIN_KEY),
            Some(&body.to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
}

fn board_kinds(b: &Value) -> Vec<(String, String)> {
    b["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["order_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn the_exception_board_lists_an_exception_and_drops_it_once_resolved(app: TestApp) {
    put(
        &app,
        "/v1/warehouses/HZ",
        json!({"name": "HZ", "priority": 0, "regions": []}),
    )
    .await;
    put(&app, "/v1/skus/TEA", json!({"title": "Tea"})).await;
    let mut body = order("shop-a", "X1", "alice", None);
    body["lines"] = json!([{"sku": "TEA", "title": "Tea", "quantity": 2, "unit_price": "10.00"}]);
    let short = created(&app, ADMIN_KEY, &body).await;
    let r = app
        .post(&format!("/v1/orders/{short}/pay"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(
        r.body["exceptions"],
        json!(["out_of_stock"]),
        "{:?}",
        r.body
    );
    let held = created(&app, ADMIN_KEY, &order("shop-b", "X2", "bob", None)).await;
    for (action, body) in [
        ("pay", json!({})),
        ("hold", json!({"reason": "check address"})),
    ] {
        let r = app
            .post(&format!("/v1/orders/{held}/{action}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    }
    created(&app, ADMIN_KEY, &order("shop-a", "X3", "carol", None)).await;

    let b = app.get("/v1/exceptions", ADMIN_KEY).await;
    assert_eq!(b.status, StatusCode::OK, "{:?}", b.body);
    let mut kinds = board_kinds(&b.body);
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("on_hold".to_owned(), held.clone()),
            ("out_of_stock".to_owned(), short.clone())
        ]
    );
    assert_eq!(b.body["counts"], json!({"on_hold": 1, "out_of_stock": 1}));
    for e in b.body["exceptions"].as_array().unwrap() {
        assert!(e["since"].is_string(), "{e}");
        assert!(e["age_seconds"].as_i64().unwrap() >= 0);
        let want = if e["kind"] == "on_hold" {
            json!(["approve", "cancel"])
        } else {
            json!(["cancel"])
        };
        assert_eq!(e["actions"], want, "{e}");
    }
    assert_eq!(
        b.body["exceptions"][0]["external_order_id"], "X1",
        "oldest first"
    );
    // The same orders through the search.
    assert_eq!(
        found(&app, ADMIN_KEY, "exception=any").await,
        vec![short.clone()]
    );
    assert_eq!(
        found(&app, ADMIN_KEY, "exception=out_of_stock").await,
        vec![short.clone()]
    );
    assert_eq!(
        found(&app, ADMIN_KEY, "exception=no_waybill").await,
        Vec::<String>::new()
    );
    // A viewer sees the board but may act on nothing; a key for shop-a sees only its order.
    let viewer = app.key("viewer", None, false).await;
    let v = app.get("/v1/exceptions", &viewer).await;
    assert!(
        v.body["exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actions"] == json!([]))
    );
    let scoped = app.key("ops", Some(&["shop-a"]), false).await;
    let s = app.get("/v1/exceptions", &scoped).await;
    assert_eq!(
        board_kinds(&s.body),
        vec![("out_of_stock".to_owned(), short.clone())]
    );
    assert_eq!(s.body["counts"], json!({"out_of_stock": 1}));
    let only = app.get("/v1/exceptions?kind=on_hold", ADMIN_KEY).await;
    assert_eq!(
        board_kinds(&only.body),
        vec![("on_hold".to_owned(), held.clone())]
    );
    // More held than a page shows: the page is cut, the count is of all of them.
    let also = created(&app, ADMIN_KEY, &order("shop-b", "X4", "dave", None)).await;
    for (action, body) in [
        ("pay", json!({})),
        ("hold", json!({"reason": "fraud check"})),
    ] {
        let r = app
            .post(&format!("/v1/orders/{also}/{action}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    }
    let page = app
        .get("/v1/exceptions?kind=on_hold&limit=1", ADMIN_KEY)
        .await;
    assert_eq!(page.body["exceptions"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["counts"]["on_hold"], 2, "{:?}", page.body);
    let r = app
        .post(
            &format!("/v1/orders/{also}/cancel"),
            ADMIN_KEY,
            &json!({"reason": "fraud"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // The other tenant has no exceptions.
    let o = app.get("/v1/exceptions", OTHER_TENANT_KEY).await;
    assert_eq!(o.body["exceptions"], json!([]));

    // Approving the hold and receiving stock resolve both.
    let r = app
        .post(&format!("/v1/orders/{held}/approve"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(
            "/v1/inventory/receipts",
            ADMIN_KEY,
            &json!({"sku": "TEA", "warehouse_id": "HZ", "quantity": 5, "reference": "GRN-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = app.get("/v1/exceptions", ADMIN_KEY).await;
    assert_eq!(b.body["exceptions"], json!([]), "{:?}", b.body);
    assert_eq!(b.body["counts"], json!({}));
    assert_eq!(
        found(&app, ADMIN_KEY, "exception=any").await,
        Vec::<String>::new()
    );
}

async fn search_results_carry_no_personal_data_without_pii_read(app: TestApp) {
    created(&app, ADMIN_KEY, &order("shop-a", "P1", "alice", None)).await;
    let plain = app.key("viewer", None, false).await;
    let pii = app.key("viewer", None, true).await;
    for query in [
        "external_order_id=P1",
        "q=P1",
        "buyer=alice",
        "exception=any",
    ] {
        let r = app.get(&format!("/v1/orders?{query}"), &plain).await;
        let text = String::from_utf8(r.bytes).unwrap();
        for secret in ["13812345678", "王小明", "文三路100号"] {
            assert!(!text.contains(secret), "{query} leaked {secret}: {text}");
        }
    }
    let r = app.get("/v1/orders?external_order_id=P1", &pii).await;
    assert_eq!(r.body["orders"][0]["receiver"]["phone"], "13812345678");
    // Personal data is not searchable: a phone number finds nothing.
    assert_eq!(
        found(&app, &pii, "q=13812345678").await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(&app, &pii, "buyer=王小明").await,
        Vec::<String>::new()
    );
}

async fn the_console_is_served_with_a_strict_content_security_policy(app: TestApp) {
    let r = app.call(Method::GET, "/", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(r.bytes).unwrap();
    assert!(html.contains("data-testid=\"login-form\""));
    assert!(!html.contains("<script>"), "no inline script");
    for (path, ctype) in [
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
        ("/console/chart.umd.min.js", "text/javascript"),
    ] {
        let r = app.call(Method::GET, path, None, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ctype),
            "{path}"
        );
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
    }
    let r = app
        .call(Method::GET, "/console/../Cargo.toml", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call(Method::GET, "/console/secret.js", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn whoami_and_stats_describe_the_caller_and_its_tenant(app: TestApp) {
    let me = app.get("/v1/whoami", ADMIN_KEY).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(
        (me.body["tenant_id"].as_str(), me.body["role"].as_str()),
        (Some("default"), Some("admin"))
    );
    let scoped = app.key("warehouse", Some(&["shop-a"]), false).await;
    let me = app.get("/v1/whoami", &scoped).await;
    assert_eq!(me.body["role"], "warehouse");
    assert_eq!(me.body["shops"], json!(["shop-a"]));
    assert_eq!(me.body["pii_read"], false);
    assert!(
        me.body["transitions"]
            .as_array()
            .unwrap()
            .contains(&json!("ship"))
    );
    assert!(
        !me.body["transitions"]
            .as_array()
            .unwrap()
            .contains(&json!("approve"))
    );
    // The console shows rule-set steps by these: the warehouse key takes none of them, ops
    // drafts and submits, the admin also approves and publishes.
    assert_eq!(me.body["rules"], json!([]));
    let ops = app.key("ops", None, false).await;
    let me = app.get("/v1/whoami", &ops).await;
    assert_eq!(me.body["rules"], json!(["read", "write"]));
    let me = app.get("/v1/whoami", ADMIN_KEY).await;
    assert_eq!(me.body["rules"], json!(["read", "write", "approve"]));
    let r = app.call(Method::GET, "/v1/whoami", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    created(&app, ADMIN_KEY, &order("shop-a", "S1", "alice", None)).await;
    created(&app, ADMIN_KEY, &order("shop-b", "S2", "bob", None)).await;
    let s = app.get("/v1/stats", ADMIN_KEY).await;
    assert_eq!(s.status, StatusCode::OK, "{:?}", s.body);
    let minutes = s.body["orders_per_minute"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    let total: u64 = minutes.iter().map(|m| m["orders"].as_u64().unwrap()).sum();
    assert_eq!(total, 2);
    let s = app.get("/v1/stats", &scoped).await;
    let total: u64 = s.body["orders_per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["orders"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1, "the shop scope applies");
    let o = app.get("/v1/stats", OTHER_TENANT_KEY).await;
    assert!(
        o.body["orders_per_minute"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["orders"] == 0)
    );
}

/// The exception board's "retry" and "switch carrier": each an audited change with its event
/// (`order.retry_requested`, `order.carrier_switched`) for fulfillment and write-back to act on;
/// refused for roles that do not run fulfillment, for carriers off the whitelist, and once the
/// order is past where they apply.
async fn retry_and_switch_carrier_are_recorded_events_for_the_workers(app: TestApp) {
    let id = created(&app, ADMIN_KEY, &order("shop-a", "R1", "alice", None)).await;
    let r = app
        .post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let version = r.body["version"].as_u64().unwrap();

    let r = app
        .post(&format!("/v1/orders/{id}/retry"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"].as_u64(), Some(version + 1));
    let r = app
        .post(
            &format!("/v1/orders/{id}/carrier"),
            ADMIN_KEY,
            &json!({"carrier": "sf"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["fulfillment"]["preferred_carrier"], "sf");

    let events = app.get("/v1/events?after=0&limit=1000", ADMIN_KEY).await;
    let of_order: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["aggregate_id"] == id.as_str())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(of_order.contains(&"order.retry_requested"), "{of_order:?}");
    assert!(of_order.contains(&"order.carrier_switched"), "{of_order:?}");
    let tl = app
        .get(&format!("/v1/orders/{id}/timeline"), ADMIN_KEY)
        .await;
    let steps: Vec<&str> = tl.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert!(steps.ends_with(&["retry", "switch_carrier"]), "{steps:?}");

    // Off the tenant's whitelist (sf, zto and jt here); a viewer; after cancelling.
    let r = app
        .post(
            &format!("/v1/orders/{id}/carrier"),
            ADMIN_KEY,
            &json!({"carrier": "yto"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], "carrier");
    let viewer = app.key("viewer", None, false).await;
    let r = app
        .post(&format!("/v1/orders/{id}/retry"), &viewer, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            ADMIN_KEY,
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for (path, body) in [("retry", json!({})), ("carrier", json!({"carrier": "zto"}))] {
        let r = app
            .post(&format!("/v1/orders/{id}/{path}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "action_not_allowed");
    }
}

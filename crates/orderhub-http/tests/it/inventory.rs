use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;

on_every_backend!(
    two_hundred_clients_racing_for_a_thousand_units_get_exactly_a_thousand,
    a_checkout_hold_is_committed_then_consumed_and_the_ledger_shows_each_step,
    bad_inventory_input_is_refused_and_writes_no_ledger_row,
    listings_are_reconciled_on_demand_and_bad_requests_name_their_field,
);

async fn seed(app: &TestApp, stock: &[(&str, &str, i64)]) {
    for (w, p, regions) in [
        ("HZ", 0, json!(["浙江省"])),
        ("SH", 1, json!(["上海市", "浙江省"])),
    ] {
        let r = app
            .call(
                Method::PUT,
                &format!("/v1/warehouses/{w}"),
                Some(ADMIN_KEY),
                Some(&json!({"name": w, "priority": p, "regions": regions}).to_string()),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    for s in ["TEA", "CUP", "HOT"] {
        let r = app
            .call(
                Method::PUT,
                &format!("/v1/skus/{s}"),
                Some(ADMIN_KEY),
                Some(&json!({"title": s}).to_string()),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let kit = json!({"title": "Gift box", "components": [{"sku": "TEA", "quantity": 2}, {"sku": "CUP", "quantity": 1}]});
    assert_eq!(
        app.call(
            Method::PUT,
            "/v1/skus/GIFT",
            Some(ADMIN_KEY),
            Some(&kit.to_string()),
            &[]
        )
        .await
        .status,
        StatusCode::OK
    );
    for (s, w, q) in stock {
        let r = app
            .post(
                "/v1/inventory/receipts",
                ADMIN_KEY,
                &json!({"sku": s, "warehouse_id": w, "quantity": q, "reference": "GRN-1"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
}

async fn two_hundred_clients_racing_for_a_thousand_units_get_exactly_a_thousand(app: TestApp) {
    seed(&app, &[("HOT", "HZ", 1000)]).await;
    let app = Arc::new(app);
    let clients: Vec<_> = (0..200)
        .map(|c| {
            let app = app.clone();
            tokio::spawn(async move {
                let (mut won, mut refused) = (0, 0);
                for i in 0..6 {
                    let body = json!({"reference": format!("buyer-{c}-{i}"), "lines": [{"sku": "HOT", "quantity": 1}], "mode": "at_payment"});
                    let r = app.post("/v1/reservations", ADMIN_KEY, &body).await;
                    match r.status {
                        StatusCode::CREATED => won += 1,
                        StatusCode::CONFLICT => {
                            assert_eq!((r.code(), r.field()), ("out_of_stock", "lines[0].sku"));
                            refused += 1;
                        }
                        other => panic!("unexpected {other}: {:?}", r.body),
                    }
                }
                (won, refused)
            })
        })
        .collect();
    let (mut won, mut refused) = (0, 0);
    for c in clients {
        let (w, r) = c.await.unwrap();
        won += w;
        refused += r;
    }
    assert_eq!(
        (won, refused),
        (1000, 200),
        "exactly the stock was reserved; every other attempt was told why"
    );
    let inv = app.get("/v1/inventory/HOT", ADMIN_KEY).await;
    assert_eq!(
        (
            inv.body["on_hand"].as_i64(),
            inv.body["reserved"].as_i64(),
            inv.body["available"].as_i64()
        ),
        (Some(1000), Some(1000), Some(0))
    );
    let ledger = app
        .get("/v1/inventory/HOT/ledger?limit=1000", ADMIN_KEY)
        .await;
    let entries = ledger.body["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        1000,
        "receipt + 999 reservations on the first page"
    );
    let last = app
        .get(
            &format!(
                "/v1/inventory/HOT/ledger?after={}",
                ledger.body["next_after"]
            ),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(last.body["entries"][0]["reserved_after"], 1000);
}

async fn a_checkout_hold_is_committed_then_consumed_and_the_ledger_shows_each_step(app: TestApp) {
    seed(&app, &[("TEA", "HZ", 10), ("CUP", "HZ", 10)]).await;
    let r = app.post("/v1/reservations", ADMIN_KEY, &json!({"reference": "checkout-9", "lines": [{"sku": "GIFT", "quantity": 3}], "region": "浙江省", "hold_seconds": 120})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "held");
    assert!(r.body["expires_at"].is_string());
    let lines: Vec<(String, i64)> = r.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![("CUP".to_owned(), 3), ("TEA".to_owned(), 6)],
        "the kit became its components"
    );
    let id = r.body["reservation_id"].as_str().unwrap().to_owned();
    let gift = app.get("/v1/inventory/GIFT", ADMIN_KEY).await;
    assert_eq!(
        (
            gift.body["is_kit"].as_bool(),
            gift.body["available"].as_i64()
        ),
        (Some(true), Some(2)),
        "4 TEA and 7 CUP left make 2 gift boxes"
    );
    for (action, state) in [("commit", "committed"), ("consume", "consumed")] {
        let r = app
            .call(
                Method::POST,
                &format!("/v1/reservations/{id}/{action}"),
                Some(ADMIN_KEY),
                None,
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.body["state"].as_str()),
            (StatusCode::OK, Some(state)),
            "{:?}",
            r.body
        );
    }
    let r = app
        .call(
            Method::POST,
            &format!("/v1/reservations/{id}/release"),
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "reservation_not_allowed")
    );
    let tea = app.get("/v1/inventory/TEA", ADMIN_KEY).await;
    assert_eq!(
        (tea.body["on_hand"].as_i64(), tea.body["reserved"].as_i64()),
        (Some(4), Some(0))
    );
    let moves: Vec<String> = app.get("/v1/inventory/TEA/ledger", ADMIN_KEY).await.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["movement"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(moves, ["receipt", "reserve", "consume"]);
    let events = app.get("/v1/events?limit=1000", ADMIN_KEY).await;
    assert!(
        events.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "inventory.changed"
                && e["payload"]["sku"] == "TEA"
                && e["payload"]["available"] == 4)
    );
}

async fn bad_inventory_input_is_refused_and_writes_no_ledger_row(app: TestApp) {
    seed(&app, &[("TEA", "HZ", 5)]).await;
    let cases = [
        (
            "/v1/inventory/receipts",
            json!({"sku": "NOPE", "warehouse_id": "HZ", "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_sku",
        ),
        (
            "/v1/inventory/receipts",
            json!({"sku": "TEA", "warehouse_id": "XX", "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_warehouse",
        ),
        (
            "/v1/inventory/receipts",
            json!({"sku": "TEA", "warehouse_id": "HZ", "quantity": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must_be_positive",
        ),
        (
            "/v1/inventory/receipts",
            json!({"sku": "TEA", "warehouse_id": "HZ", "quantity": -3}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must_be_positive",
        ),
        (
            "/v1/inventory/receipts",
            json!({"sku": "GIFT", "warehouse_id": "HZ", "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "kit_has_no_stock",
        ),
        (
            "/v1/inventory/adjustments",
            json!({"sku": "TEA", "warehouse_id": "HZ", "delta": -6, "reason": "stock_take"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "would_go_negative",
        ),
        (
            "/v1/inventory/adjustments",
            json!({"sku": "TEA", "warehouse_id": "HZ", "delta": 1, "reason": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
        ),
        (
            "/v1/reservations",
            json!({"reference": "x", "lines": [{"sku": "TEA", "quantity": 6}]}),
            StatusCode::CONFLICT,
            "out_of_stock",
        ),
        (
            "/v1/reservations",
            json!({"reference": "x", "lines": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
        ),
        (
            "/v1/reservations",
            json!({"reference": "x", "lines": [{"sku": "TEA", "quantity": 1}], "mode": "someday"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_mode",
        ),
        (
            "/v1/reservations",
            json!({"reference": "x", "lines": [{"sku": "TEA", "quantity": 1}], "hold_seconds": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
        ),
    ];
    for (path, body, status, code) in cases {
        let r = app.post(path, ADMIN_KEY, &body).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code),
            "{path} {body}: {:?}",
            r.body
        );
    }
    let viewer = app.key("viewer", None, false).await;
    let r = app
        .post(
            "/v1/inventory/receipts",
            &viewer,
            &json!({"sku": "TEA", "warehouse_id": "HZ", "quantity": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ledger = app.get("/v1/inventory/TEA/ledger", ADMIN_KEY).await;
    assert_eq!(
        ledger.body["entries"].as_array().unwrap().len(),
        1,
        "only the seed receipt"
    );
    let r = app
        .call(
            Method::POST,
            "/v1/reservations/01a20000-0000-7000-8000-000000000000/release",
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/v1/inventory/NOPE", ADMIN_KEY).await.status,
        StatusCode::NOT_FOUND
    );
}

on_every_backend!(
    paying_an_order_reserves_its_stock_shipping_consumes_it_cancelling_releases_it,
    an_order_without_stock_waits_on_backorder_and_is_served_in_payment_order,
);

fn order_of(external: &str, sku: &str, quantity: u32) -> serde_json::Value {
    json!({
        "shop_id": "tmall-1", "channel": "taobao", "external_order_id": external,
        "receiver": {"name": "王小明", "phone": "13812345678", "province": "浙江省", "city": "杭州市", "detail": "文三路100号"},
        "lines": [{"sku": sku, "title": "tea", "quantity": quantity, "unit_price": "10.00"}],
        "amounts": {"currency": "CNY"}
    })
}

async fn create_and_pay(app: &TestApp, external: &str, sku: &str, q: u32) -> serde_json::Value {
    let o = app
        .post("/v1/orders", ADMIN_KEY, &order_of(external, sku, q))
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{:?}", o.body);
    let id = o.body["order_id"].as_str().unwrap().to_owned();
    let paid = app
        .post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    paid.body
}

async fn tea(app: &TestApp) -> (i64, i64) {
    let v = app.get("/v1/inventory/TEA", ADMIN_KEY).await.body;
    (
        v["on_hand"].as_i64().unwrap(),
        v["reserved"].as_i64().unwrap(),
    )
}

async fn paying_an_order_reserves_its_stock_shipping_consumes_it_cancelling_releases_it(
    app: TestApp,
) {
    seed(&app, &[("TEA", "HZ", 10)]).await;
    let a = create_and_pay(&app, "O1", "TEA", 3).await;
    assert!(a["reservation_id"].is_string(), "{a}");
    assert_eq!(a["exceptions"], json!([]));
    assert_eq!(tea(&app).await, (10, 3));
    let id = a["order_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/orders/{id}/allocate"),
            ADMIN_KEY,
            &json!({"warehouse_id": "SH"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_the_reserved_warehouse"
        )
    );
    for (action, body) in [
        ("allocate", json!({"warehouse_id": "HZ"})),
        ("release", json!({})),
        (
            "ship",
            json!({"carrier": "sf", "tracking_no": "SF1", "logistics_no": "L1"}),
        ),
    ] {
        let r = app
            .post(&format!("/v1/orders/{id}/{action}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    }
    assert_eq!(
        tea(&app).await,
        (7, 0),
        "shipping consumed the reserved units"
    );
    let b = create_and_pay(&app, "O2", "TEA", 4).await;
    assert_eq!(tea(&app).await, (7, 4));
    let id = b["order_id"].as_str().unwrap();
    assert_eq!(
        app.post(
            &format!("/v1/orders/{id}/cancel"),
            ADMIN_KEY,
            &json!({"reason": "buyer asked"})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(tea(&app).await, (7, 0), "cancelling released them");
    let rid = b["reservation_id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/reservations/{rid}"), ADMIN_KEY)
            .await
            .body["state"],
        "released_cancelled"
    );
}

async fn an_order_without_stock_waits_on_backorder_and_is_served_in_payment_order(app: TestApp) {
    seed(&app, &[("TEA", "HZ", 2)]).await;
    let first = create_and_pay(&app, "B1", "TEA", 3).await;
    assert_eq!(first["status"], "paid", "the payment stands");
    assert_eq!(first["exceptions"], json!(["out_of_stock"]));
    assert!(first["reservation_id"].is_null());
    let second = create_and_pay(&app, "B2", "TEA", 1).await;
    assert_eq!(
        second["exceptions"],
        json!([]),
        "an order that fits is served"
    );
    let third = create_and_pay(&app, "B3", "TEA", 2).await;
    assert_eq!(
        third["exceptions"],
        json!(["out_of_stock"]),
        "one unit left, two needed"
    );
    let id1 = first["order_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/orders/{id1}/allocate"),
            ADMIN_KEY,
            &json!({"warehouse_id": "HZ"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "reservation_not_allowed"),
        "no allocation while on backorder"
    );
    // Three more arrive (four available): the first order (3 units) is served; the third (2 units)
    // waits for the next receipt.
    app.post(
        "/v1/inventory/receipts",
        ADMIN_KEY,
        &json!({"sku": "TEA", "warehouse_id": "HZ", "quantity": 3}),
    )
    .await;
    let o1 = app.get(&format!("/v1/orders/{id1}"), ADMIN_KEY).await.body;
    assert_eq!(o1["exceptions"], json!([]));
    assert!(o1["reservation_id"].is_string());
    let id3 = third["order_id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/orders/{id3}"), ADMIN_KEY).await.body["exceptions"],
        json!(["out_of_stock"])
    );
    assert_eq!(tea(&app).await, (5, 4));
    app.post(
        "/v1/inventory/receipts",
        ADMIN_KEY,
        &json!({"sku": "TEA", "warehouse_id": "HZ", "quantity": 1}),
    )
    .await;
    assert_eq!(
        app.get(&format!("/v1/orders/{id3}"), ADMIN_KEY).await.body["exceptions"],
        json!([])
    );
    assert_eq!(tea(&app).await, (6, 6));
    assert!(
        app.get("/v1/backorders", ADMIN_KEY).await.body["backorders"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let tl = app
        .get(&format!("/v1/orders/{id1}/timeline"), ADMIN_KEY)
        .await
        .body;
    let actions: Vec<&str> = tl["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    // Going on backorder and leaving it are exceptions like any other: each its own version,
    // audited, with an event subscribers and the exception board see.
    assert_eq!(
        actions,
        [
            "create",
            "pay",
            "exception.raised",
            "stock_reserved",
            "exception.resolved"
        ]
    );
    let events = app
        .get("/v1/events?after=0&limit=1000", ADMIN_KEY)
        .await
        .body;
    let of_first: Vec<(String, String, u64)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["aggregate_id"] == id1 && e["type"].as_str().unwrap().starts_with("exception.")
        })
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["payload"]["exception"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["aggregate_version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        of_first,
        [
            ("exception.raised".to_owned(), "out_of_stock".to_owned(), 3),
            (
                "exception.resolved".to_owned(),
                "out_of_stock".to_owned(),
                5
            )
        ],
        "{events}"
    );
}

on_every_backend!(
    an_erp_snapshot_posts_differences_refuses_older_ones_and_never_overwrites_reservations
);

async fn an_erp_snapshot_posts_differences_refuses_older_ones_and_never_overwrites_reservations(
    app: TestApp,
) {
    seed(
        &app,
        &[("TEA", "HZ", 10), ("CUP", "HZ", 5), ("HOT", "HZ", 8)],
    )
    .await;
    let r = app.post("/v1/reservations", ADMIN_KEY, &json!({"reference": "c", "lines": [{"sku": "HOT", "quantity": 6}], "mode": "at_payment"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let snap = |as_of: &str, items: serde_json::Value| json!({"warehouse_id": "HZ", "as_of": as_of, "items": items});
    let r = app.post("/v1/inventory/snapshots", ADMIN_KEY, &snap("2026-11-23T08:00:00+08:00", json!([
        {"sku": "TEA", "on_hand": 12}, {"sku": "CUP", "on_hand": 5}, {"sku": "HOT", "on_hand": 4}
    ]))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["adjusted"], json!([{"sku": "TEA", "delta": 2}]));
    assert_eq!(r.body["unchanged"], 1);
    assert_eq!(
        r.body["conflicts"],
        json!([{"sku": "HOT", "snapshot_on_hand": 4, "reserved": 6}])
    );
    assert_eq!(tea(&app).await, (12, 0));
    let hot = app.get("/v1/inventory/HOT", ADMIN_KEY).await.body;
    assert_eq!(
        (hot["on_hand"].as_i64(), hot["reserved"].as_i64()),
        (Some(8), Some(6)),
        "reservations untouched"
    );
    let ledger = app.get("/v1/inventory/TEA/ledger", ADMIN_KEY).await.body;
    assert_eq!(ledger["entries"][1]["reason"], "erp_sync");
    // Older (compared as instants, whatever the offset) or equal: refused, nothing written.
    for as_of in [
        "2026-11-23T00:00:00Z",
        "2026-11-22T23:59:59-00:00",
        "2026-11-23T07:59:59+08:00",
    ] {
        let r = app
            .post(
                "/v1/inventory/snapshots",
                ADMIN_KEY,
                &snap(as_of, json!([{"sku": "TEA", "on_hand": 1}])),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "stale_snapshot"),
            "{as_of}: {:?}",
            r.body
        );
    }
    assert_eq!(tea(&app).await, (12, 0));
    let r = app
        .post(
            "/v1/inventory/snapshots",
            ADMIN_KEY,
            &snap(
                "2026-11-23T09:00:00+08:00",
                json!([{"sku": "NOPE", "on_hand": 1}]),
            ),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "items[0].sku")
    );
    let r = app
        .post(
            "/v1/inventory/snapshots",
            ADMIN_KEY,
            &snap(
                "2026-11-23T09:00:00+08:00",
                json!([{"sku": "TEA", "on_hand": 3}, {"sku": "TEA", "on_hand": 4}]),
            ),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "duplicate")
    );
    let r = app
        .post(
            "/v1/inventory/snapshots",
            ADMIN_KEY,
            &snap(
                "2026-11-23T09:00:00+08:00",
                json!([{"sku": "TEA", "on_hand": 9}]),
            ),
        )
        .await;
    assert_eq!(r.body["adjusted"], json!([{"sku": "TEA", "delta": -3}]));
}

on_every_backend!(low_priority_channels_close_below_their_threshold_and_reopen_when_stock_returns);

async fn low_priority_channels_close_below_their_threshold_and_reopen_when_stock_returns(
    app: TestApp,
) {
    seed(&app, &[("TEA", "HZ", 100)]).await;
    let put = |ch: &'static str, body: serde_json::Value| {
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                &format!("/v1/channels/{ch}/inventory-policy"),
                Some(ADMIN_KEY),
                Some(&body.to_string()),
                &[],
            )
            .await
        }
    };
    assert_eq!(
        put("taobao", json!({"allocation": "shared", "safety_stock": 5}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        put(
            "douyin",
            json!({"allocation": "ratio", "percent": 30, "close_below": 20})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        put(
            "pdd",
            json!({"allocation": "quota", "units": 10, "close_below": 50})
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = put("jd", json!({"allocation": "ratio"})).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "percent")
    );
    let channels = |v: &serde_json::Value| -> Vec<(String, i64, bool)> {
        v["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["channel"].as_str().unwrap().to_owned(),
                    c["listed"].as_i64().unwrap(),
                    c["closed"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let v = app.get("/v1/inventory/TEA", ADMIN_KEY).await.body;
    assert_eq!(
        channels(&v),
        vec![
            ("douyin".into(), 30, false),
            ("pdd".into(), 10, false),
            ("taobao".into(), 95, false)
        ]
    );
    // 60 reserved: 40 left, pdd (closes at 50) closes.
    let r = app.post("/v1/reservations", ADMIN_KEY, &json!({"reference": "big", "lines": [{"sku": "TEA", "quantity": 60}], "mode": "at_payment"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let v = app.get("/v1/inventory/TEA", ADMIN_KEY).await.body;
    assert_eq!(
        channels(&v),
        vec![
            ("douyin".into(), 12, false),
            ("pdd".into(), 0, true),
            ("taobao".into(), 35, false)
        ]
    );
    let rid = r.body["reservation_id"].as_str().unwrap().to_owned();
    app.call(
        Method::POST,
        &format!("/v1/reservations/{rid}/release"),
        Some(ADMIN_KEY),
        None,
        &[],
    )
    .await;
    let events = app.get("/v1/events?limit=1000", ADMIN_KEY).await.body;
    let listing: Vec<(String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("channel."))
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["payload"]["channel"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listing,
        vec![
            ("channel.listing_closed".into(), "pdd".into()),
            ("channel.listing_reopened".into(), "pdd".into())
        ]
    );
}

on_every_backend!(returns_go_back_on_hand_only_after_a_qc_pass);

async fn returns_go_back_on_hand_only_after_a_qc_pass(app: TestApp) {
    seed(&app, &[("TEA", "HZ", 5)]).await;
    let ret = |qc: &str| json!({"sku": "TEA", "warehouse_id": "HZ", "quantity": 2, "qc": qc, "reference": "RMA-7"});
    let r = app
        .post("/v1/inventory/returns", ADMIN_KEY, &ret("failed"))
        .await;
    assert_eq!(
        (r.status, r.body["restocked"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    assert_eq!(tea(&app).await, (5, 0));
    let r = app
        .post("/v1/inventory/returns", ADMIN_KEY, &ret("passed"))
        .await;
    assert_eq!(
        (
            r.status,
            r.body["restocked"].as_bool(),
            r.body["position"]["on_hand"].as_i64()
        ),
        (StatusCode::OK, Some(true), Some(7))
    );
    let r = app
        .post("/v1/inventory/returns", ADMIN_KEY, &ret("maybe"))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "qc")
    );
    let moves: Vec<String> = app.get("/v1/inventory/TEA/ledger", ADMIN_KEY).await.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["movement"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(moves, ["receipt", "return"]);
}

/// `POST /v1/listings/reconcile` makes listings due for a shelf read (one, a channel's, a shop's
/// or all the key sees) and refuses what it cannot take, naming the field; `GET
/// /v1/listings/drift` lists only listings with a drift, and every listing shows its drift state.
async fn listings_are_reconciled_on_demand_and_bad_requests_name_their_field(app: TestApp) {
    seed(&app, &[("TEA", "HZ", 10)]).await;
    let mut ids = Vec::new();
    for (channel, item) in [("taobao", "600001"), ("pdd", "900001")] {
        let r = app
            .post(
                "/v1/listings",
                ADMIN_KEY,
                &json!({"channel": channel, "shop_id": "shop-1", "sku": "TEA",
                        "channel_item_id": item, "channel_sku_id": "5001"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["drift"]["units"], 0);
        assert!(r.body["drift"]["next_check_at"].is_string());
        ids.push(r.body["listing_id"].as_str().unwrap().to_owned());
    }
    let reconcile = |body: serde_json::Value| {
        let app = &app;
        async move { app.post("/v1/listings/reconcile", ADMIN_KEY, &body).await }
    };
    let r = reconcile(json!({})).await;
    assert_eq!(
        (r.status, r.body["queued"].as_u64()),
        (StatusCode::ACCEPTED, Some(2))
    );
    let r = reconcile(json!({"channel": "pdd"})).await;
    assert_eq!(r.body["queued"], 1, "{:?}", r.body);
    let r = reconcile(json!({"listing_id": ids[0]})).await;
    assert_eq!(r.body["queued"], 1, "{:?}", r.body);
    let r = reconcile(json!({"shop_id": "shop-2"})).await;
    assert_eq!(r.body["queued"], 0, "{:?}", r.body);
    // Refusals, each naming its field.
    for (body, status, field) in [
        (
            json!({"channel": "ebay"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "channel",
        ),
        (
            json!({"listing_id": "not-a-uuid"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "listing_id",
        ),
        (
            json!({"shop_id": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "shop_id",
        ),
    ] {
        let r = reconcile(body.clone()).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{body}: {:?}", r.body);
    }
    let r = reconcile(json!({"listing_id": uuid::Uuid::now_v7().to_string()})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = reconcile(json!({"every": true})).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "every")
    );
    // Nothing has drifted: the drift list is empty; its bounds are checked like the list's.
    let r = app
        .call(
            Method::GET,
            "/v1/listings/drift",
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["listings"], json!([]));
    let r = app
        .call(
            Method::GET,
            "/v1/listings/drift?limit=501",
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "limit");
    // A viewer may look but not reconcile.
    let k = app
        .post(
            "/v1/api-keys",
            ADMIN_KEY,
            &json!({"name": "v", "role": "viewer"}),
        )
        .await;
    let viewer = k.body["key"].as_str().unwrap().to_owned();
    let r = app
        .post("/v1/listings/reconcile", &viewer, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

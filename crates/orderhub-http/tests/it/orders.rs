use crate::app::*;
use crate::on_every_backend;
use reqwest::StatusCode;
use serde_json::json;

on_every_backend!(
    an_order_goes_from_creation_to_completion_and_its_timeline_shows_every_step,
    a_move_not_allowed_from_the_current_status_is_409_with_status_and_version,
    shipping_needs_a_whitelisted_carrier_and_its_acknowledgement,
    concurrent_creates_of_one_external_id_make_one_order,
    listing_filters_and_pages_with_a_cursor,
    totals_are_computed_and_source_time_offsets_kept,
);

async fn an_order_goes_from_creation_to_completion_and_its_timeline_shows_every_step(app: TestApp) {
    let r = app.create(ADMIN_KEY, "tmall-1", "T1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["version"].as_u64()),
        (Some("pending_payment"), Some(1))
    );
    let id = r.body["order_id"].as_str().unwrap().to_owned();
    let steps = [
        (
            "pay",
            json!({"paid_at": "2026-11-11T00:01:00+08:00"}),
            "paid",
        ),
        ("hold", json!({"reason": "address looks wrong"}), "on_hold"),
        ("approve", json!({}), "paid"),
        ("allocate", json!({"warehouse_id": "WH-HZ"}), "allocated"),
        ("release", json!({}), "released"),
        (
            "ship",
            json!({"carrier": "sf", "tracking_no": "SF1234567890", "logistics_no": "SFACK-1"}),
            "shipped",
        ),
        ("pickup", json!({}), "in_transit"),
        ("deliver", json!({}), "delivered"),
        ("complete", json!({}), "completed"),
    ];
    for (i, (action, body, status)) in steps.iter().enumerate() {
        let r = app
            .post(&format!("/v1/orders/{id}/{action}"), ADMIN_KEY, body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
        assert_eq!(r.body["status"].as_str(), Some(*status));
        assert_eq!(
            r.body["version"].as_u64(),
            Some(i as u64 + 2),
            "version grows by one per change"
        );
    }
    let got = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await;
    assert_eq!(got.body["fulfillment"]["tracking_no"], "SF1234567890");
    assert_eq!(got.body["paid_at"], "2026-11-11T00:01:00+08:00");
    let tl = app
        .get(&format!("/v1/orders/{id}/timeline"), ADMIN_KEY)
        .await;
    let actions: Vec<&str> = tl.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create", "pay", "hold", "approve", "allocate", "release", "ship", "pickup", "deliver",
            "complete"
        ]
    );
    assert!(
        tl.body["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["since_created_ms"].as_i64().unwrap() >= 0)
    );
    let ev = app.get("/v1/events", ADMIN_KEY).await;
    let types: Vec<&str> = ev.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"order.created"));
    assert_eq!(types.last(), Some(&"order.completed"));
    assert_eq!(types.len(), 10);
    assert_eq!(
        ev.body["events"][1]["subject"],
        "orderhub.default.order.paid"
    );
}

async fn a_move_not_allowed_from_the_current_status_is_409_with_status_and_version(app: TestApp) {
    let id = app.create(ADMIN_KEY, "s1", "N1").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.event_count().await;
    let r = app
        .post(&format!("/v1/orders/{id}/release"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "transition_not_allowed");
    assert_eq!(
        (
            r.body["error"]["current_status"].as_str(),
            r.body["error"]["current_version"].as_u64()
        ),
        (Some("pending_payment"), Some(1))
    );
    app.post(
        &format!("/v1/orders/{id}/cancel"),
        ADMIN_KEY,
        &json!({"reason": "buyer changed mind"}),
    )
    .await;
    let r = app
        .post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["current_status"].as_str()),
        (StatusCode::CONFLICT, Some("cancelled"))
    );
    assert_eq!(
        app.event_count().await,
        before + 1,
        "only the cancel wrote an event"
    );
    let r = app
        .post(&format!("/v1/orders/{id}/teleport"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "unknown_action")
    );
}

async fn shipping_needs_a_whitelisted_carrier_and_its_acknowledgement(app: TestApp) {
    let id = app.create(ADMIN_KEY, "s1", "S1").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (a, b) in [
        ("pay", json!({})),
        ("allocate", json!({"warehouse_id": "WH1"})),
        ("release", json!({})),
    ] {
        assert_eq!(
            app.post(&format!("/v1/orders/{id}/{a}"), ADMIN_KEY, &b)
                .await
                .status,
            StatusCode::OK
        );
    }
    let path = format!("/v1/orders/{id}/ship");
    let ship = |b: serde_json::Value| {
        let (app, path) = (&app, &path);
        async move { app.post(path, ADMIN_KEY, &b).await }
    };
    let r = ship(json!({"carrier": "yto", "tracking_no": "YT1", "logistics_no": "L1"})).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "carrier_not_whitelisted",
            "carrier"
        )
    );
    let r = ship(json!({"carrier": "sf", "tracking_no": "SF1"})).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "required", "logistics_no")
    );
    let r = ship(json!({"carrier": "sf", "tracking_no": "", "logistics_no": "L1"})).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "tracking_no")
    );
    let r =
        ship(json!({"carrier": "sf", "tracking_no": "SF1", "logistics_no": "L1", "reason": "x"}))
            .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_for_this_action",
            "reason"
        )
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await.body["status"],
        "released"
    );
    assert_eq!(
        ship(json!({"carrier": "zto", "tracking_no": "ZT1", "logistics_no": "L1"}))
            .await
            .status,
        StatusCode::OK
    );
}

async fn concurrent_creates_of_one_external_id_make_one_order(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.create(ADMIN_KEY, "jd-1", "RACE-1").await })
        })
        .collect();
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let created = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let existing = results
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!((created, existing), (1, 23));
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|r| r.body["order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "everyone got the same order back");
    assert_eq!(app.order_count().await, 1);
}

async fn listing_filters_and_pages_with_a_cursor(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..12 {
        let shop = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(
            app.create(ADMIN_KEY, shop, &format!("L{i}")).await.body["order_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.post(&format!("/v1/orders/{}/pay", ids[3]), ADMIN_KEY, &json!({}))
        .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/orders?limit=5&cursor={c}"),
            None => "/v1/orders?limit=5".to_owned(),
        };
        let page = app.get(&q, ADMIN_KEY).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.extend(
            page.body["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every order once, in creation order");
    let paid = app.get("/v1/orders?status=paid", ADMIN_KEY).await;
    assert_eq!(paid.body["orders"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/v1/orders?shop=odd", ADMIN_KEY).await.body["orders"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        app.get("/v1/orders?channel=jd", ADMIN_KEY).await.body["orders"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let r = app
        .get(
            "/v1/orders?updated_since=2000-01-01T00:00:00%2B08:00",
            ADMIN_KEY,
        )
        .await;
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 12);
    for (q, field) in [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
        ("updated_since=yesterday", "updated_since"),
        ("colour=red", "colour"),
    ] {
        let r = app.get(&format!("/v1/orders?{q}"), ADMIN_KEY).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, field),
            "{q}: {:?}",
            r.body
        );
    }
}

async fn totals_are_computed_and_source_time_offsets_kept(app: TestApp) {
    let r = app.create(ADMIN_KEY, "s1", "M1").await;
    let a = &r.body["amounts"];
    // 2 × 49.90 − 5.00 + 20.00 + 3 × 9.90 = 144.50 goods after line discounts; + 8.00 shipping.
    assert_eq!(
        (
            a["goods_total"].as_str(),
            a["discount"].as_str(),
            a["shipping_fee"].as_str(),
            a["paid_amount"].as_str()
        ),
        (Some("149.50"), Some("5.00"), Some("8.00"), Some("152.50"))
    );
    assert_eq!(r.body["lines"][0]["paid_amount"], "94.80");
    assert_eq!(r.body["channel_created_at"], "2026-11-11T00:00:05+08:00");
    assert_eq!(r.body["lines"][0]["title"], "T恤 ®™ 😀");
}

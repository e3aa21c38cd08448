//! Waves over HTTP (issue 28): released orders of a warehouse become waves with pick lists,
//! started and closed once each; bad input is a 4xx naming the field; two creations at once
//! never put one order in two waves.

use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;

on_every_backend!(released_orders_become_waves_with_pick_lists_started_and_closed_once);
on_every_backend!(an_unknown_warehouse_or_a_policy_out_of_bounds_is_refused_naming_the_field);
on_every_backend!(two_creations_at_once_never_put_one_order_in_two_waves);

async fn warehouse(app: &TestApp, id: &str) {
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/warehouses/{id}"),
            Some(ADMIN_KEY),
            Some(&json!({"name": id, "priority": 0, "regions": []}).to_string()),
            &[],
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

/// A released order of `wh` (order_json's lines: SKU-1 ×2, SKU-2 ×1, SKU-3 ×3).
async fn released(app: &TestApp, ext: &str, wh: &str) -> String {
    let r = app.create(ADMIN_KEY, "s1", ext).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["order_id"].as_str().unwrap().to_owned();
    for step in ["pay", "allocate", "release"] {
        let body = if step == "allocate" {
            json!({"warehouse_id": wh})
        } else {
            json!({})
        };
        let r = app
            .post(&format!("/v1/orders/{id}/{step}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {:?}", r.body);
    }
    id
}

/// Every order id in the tenant's waves, one entry per membership.
async fn waved(app: &TestApp) -> Vec<String> {
    let list = app.get("/v1/waves?limit=200", ADMIN_KEY).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    let mut out = Vec::new();
    for w in list.body["waves"].as_array().unwrap() {
        let one = app
            .get(
                &format!("/v1/waves/{}", w["wave_id"].as_str().unwrap()),
                ADMIN_KEY,
            )
            .await;
        for o in one.body["order_ids"].as_array().unwrap() {
            out.push(o.as_str().unwrap().to_owned());
        }
    }
    out
}

async fn released_orders_become_waves_with_pick_lists_started_and_closed_once(app: TestApp) {
    warehouse(&app, "WH1").await;
    warehouse(&app, "WH2").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(released(&app, &format!("W-{n}"), "WH1").await);
    }
    let elsewhere = released(&app, "W-9", "WH2").await;
    let body = json!({"warehouse_id": "WH1", "max_orders": 2, "by_carrier": false});
    let r = app.post("/v1/waves", ADMIN_KEY, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["orders"], 3);
    let waves = r.body["waves"].as_array().unwrap().clone();
    assert_eq!(waves.len(), 2);
    assert_eq!(waves[0]["orders"], 2);
    assert_eq!(waves[0]["status"], "open");
    let first = waves[0]["wave_id"].as_str().unwrap().to_owned();

    // The wave with its pick list: per SKU the total and each order's part, by SKU.
    let w = app.get(&format!("/v1/waves/{first}"), ADMIN_KEY).await;
    assert_eq!(w.status, StatusCode::OK, "{:?}", w.body);
    assert_eq!(w.body["order_ids"], json!([ids[0], ids[1]]));
    let picks = w.body["picks"].as_array().unwrap();
    let skus: Vec<&str> = picks.iter().map(|p| p["sku"].as_str().unwrap()).collect();
    assert_eq!(skus, ["SKU-1", "SKU-2", "SKU-3"]);
    assert_eq!(picks[0]["quantity"], 4);
    assert_eq!(
        picks[2]["orders"],
        json!([{"order_id": ids[0], "quantity": 3}, {"order_id": ids[1], "quantity": 3}])
    );
    assert_eq!(w.body["policy"]["max_orders"], 2);

    // Waved orders are not waved again; the other warehouse's order never was.
    let again = app.post("/v1/waves", ADMIN_KEY, &body).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert_eq!(again.body["orders"], 0);
    let all = waved(&app).await;
    assert_eq!(all.len(), 3);
    assert!(!all.contains(&elsewhere));

    let step = |s: &'static str| {
        let path = format!("/v1/waves/{first}/{s}");
        let app = &app;
        async move { app.post(&path, ADMIN_KEY, &json!({})).await }
    };
    let closing_open = step("close").await;
    assert_eq!(closing_open.status, StatusCode::CONFLICT);
    assert_eq!(closing_open.code(), "wave_wrong_state");
    let started = step("start").await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    assert_eq!(started.body["status"], "started");
    assert!(started.body["started_at"].is_string());
    let closed = step("close").await;
    assert_eq!(closed.status, StatusCode::OK, "{:?}", closed.body);
    assert_eq!(closed.body["status"], "closed");
    for s in ["close", "start"] {
        let r = step(s).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{s} a closed wave");
        assert_eq!(r.code(), "wave_wrong_state");
    }
    let closed_list = app.get("/v1/waves?status=closed", ADMIN_KEY).await;
    assert_eq!(closed_list.body["waves"].as_array().unwrap().len(), 1);

    // Each change left its event.
    let events = app.get("/v1/events?limit=1000", ADMIN_KEY).await;
    let types: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| t.starts_with("wave."))
        .collect();
    use orderhub_domain::event_types::{WAVE_CLOSED, WAVE_CREATED, WAVE_STARTED};
    assert_eq!(
        types,
        [WAVE_CREATED, WAVE_CREATED, WAVE_STARTED, WAVE_CLOSED]
    );
    let missing = app
        .get("/v1/waves/0190a0a0-0000-7000-8000-000000000000", ADMIN_KEY)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn an_unknown_warehouse_or_a_policy_out_of_bounds_is_refused_naming_the_field(app: TestApp) {
    warehouse(&app, "WH1").await;
    released(&app, "B-1", "WH1").await;
    let cases: [(Value, &str); 5] = [
        (json!({"warehouse_id": "WH9"}), "warehouse_id"),
        (
            json!({"warehouse_id": "WH1", "max_orders": 0}),
            "max_orders",
        ),
        (
            json!({"warehouse_id": "WH1", "max_lines": 10_001}),
            "max_lines",
        ),
        (
            json!({"warehouse_id": "WH1", "deadline_bucket_hours": 169}),
            "deadline_bucket_hours",
        ),
        (json!({"warehouse_id": "WH1", "limit": 20_001}), "limit"),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/waves", ADMIN_KEY, &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
        assert_eq!(r.field(), field, "{body}");
    }
    let r = app
        .post(
            "/v1/waves",
            ADMIN_KEY,
            &json!({"warehouse_id": "WH1", "colour": 1}),
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    let viewer = app.key("viewer", None, false).await;
    let r = app
        .post("/v1/waves", &viewer, &json!({"warehouse_id": "WH1"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(waved(&app).await.is_empty(), "nothing written");
    let r = app.get("/v1/waves?limit=0", ADMIN_KEY).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.field(), "limit");
}

async fn two_creations_at_once_never_put_one_order_in_two_waves(app: TestApp) {
    warehouse(&app, "WH1").await;
    let mut ids = HashSet::new();
    for n in 0..8 {
        ids.insert(released(&app, &format!("R-{n}"), "WH1").await);
    }
    let body = json!({"warehouse_id": "WH1", "max_orders": 3});
    let warehouse_key = app.key("warehouse", None, false).await;
    let (a, b) = tokio::join!(
        app.post("/v1/waves", ADMIN_KEY, &body),
        app.post("/v1/waves", &warehouse_key, &body)
    );
    for r in [&a, &b] {
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    assert_eq!(
        a.body["orders"].as_u64().unwrap() + b.body["orders"].as_u64().unwrap(),
        8,
        "every order waved once between the two"
    );
    let all = waved(&app).await;
    let distinct: HashSet<String> = all.iter().cloned().collect();
    assert_eq!(all.len(), distinct.len(), "an order in two waves: {all:?}");
    assert_eq!(distinct, ids);
}

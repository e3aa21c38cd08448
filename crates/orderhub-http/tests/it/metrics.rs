//! `GET /v1/metrics/golden`, `POST /v1/quality/check`, `GET /v1/quality/alerts` (issue 23): the
//! figures by day and shop, a test order left out, a scoped key's shops only, the analyst who sees
//! the figures and no order, and bad input answered 400 naming the field.

use crate::app::*;
use crate::on_every_backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    golden_metrics_answer_by_day_and_shop_within_the_callers_scope,
    an_analyst_reads_the_metrics_and_no_order,
    bad_metric_queries_name_the_field_and_the_limit,
);

/// Creates an order (152.50) in `shop` and pays it at `paid_at`; `test`: a test order.
async fn paid(app: &TestApp, shop: &str, ext: &str, paid_at: &str, test: bool) {
    let mut body = order_json(shop, ext);
    body["is_test"] = json!(test);
    let r = app.post("/v1/orders", ADMIN_KEY, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["order_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/orders/{id}/pay"),
            ADMIN_KEY,
            &json!({"paid_at": paid_at}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

fn figures(v: &Value) -> (String, String, u64, String) {
    (
        v["key"].as_str().unwrap().to_owned(),
        v["gmv"].as_str().unwrap().to_owned(),
        v["orders"].as_u64().unwrap(),
        v["aov"].as_str().unwrap().to_owned(),
    )
}

fn f(key: &str, gmv: &str, orders: u64, aov: &str) -> (String, String, u64, String) {
    (key.into(), gmv.into(), orders, aov.into())
}

async fn golden_metrics_answer_by_day_and_shop_within_the_callers_scope(app: TestApp) {
    paid(&app, "shop-a", "G1", "2026-12-01T10:00:00Z", false).await;
    paid(&app, "shop-b", "G2", "2026-12-01T23:30:00Z", false).await;
    // 02:00 on Dec 2 in China is Dec 1 in UTC.
    paid(&app, "shop-a", "G3", "2026-12-02T02:00:00+08:00", false).await;
    paid(&app, "shop-a", "G4", "2026-12-01T10:00:00Z", true).await;

    let r = app
        .get(
            "/v1/metrics/golden?from=2026-12-01&to=2026-12-02",
            ADMIN_KEY,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let days: Vec<_> = r.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(figures)
        .collect();
    assert_eq!(
        days,
        [
            f("2026-12-01", "457.50", 3, "152.50"),
            f("2026-12-02", "0.00", 0, "0.00"),
        ]
    );
    assert_eq!(figures(&r.body["total"]), f("all", "457.50", 3, "152.50"));
    assert_eq!(r.body["total"]["refund_rate"], "0.0000");
    assert_eq!(r.body["total"]["on_time_ship_rate"], Value::Null);

    let scoped = app.key("viewer", Some(&["shop-b"]), false).await;
    let r = app
        .get(
            "/v1/metrics/golden?from=2026-12-01&to=2026-12-01&by=shop",
            &scoped,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let shops: Vec<_> = r.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(figures)
        .collect();
    assert_eq!(shops, [f("shop-b", "152.50", 1, "152.50")]);

    let r = app
        .get(
            "/v1/metrics/golden?from=2026-12-01&to=2026-12-01&by=channel",
            ADMIN_KEY,
        )
        .await;
    let channels: Vec<_> = r.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(figures)
        .collect();
    assert_eq!(channels, [f("taobao", "457.50", 3, "152.50")]);

    // No history before Dec 1: the check raises nothing, and says which day it checked.
    let r = app
        .post(
            "/v1/quality/check?date=2026-12-01&threshold_pct=5",
            ADMIN_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["day"], "2026-12-01");
    assert_eq!(r.body["raised"], json!([]));
}

async fn an_analyst_reads_the_metrics_and_no_order(app: TestApp) {
    paid(&app, "shop-a", "A1", "2026-12-01T10:00:00Z", false).await;
    let analyst = app.key("analyst", None, false).await;
    let r = app
        .get("/v1/metrics/golden?from=2026-12-01&to=2026-12-01", &analyst)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["total"]["gmv"], "152.50");
    let r = app
        .get("/v1/quality/alerts?from=2026-12-01&to=2026-12-31", &analyst)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for path in ["/v1/orders", "/v1/events", "/v1/after-sales", "/v1/stats"] {
        let r = app.get(path, &analyst).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {:?}", r.body);
    }
    let r = app.post("/v1/quality/check", &analyst, &json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn bad_metric_queries_name_the_field_and_the_limit(app: TestApp) {
    for (query, field, code) in [
        ("from=2026-13-01&to=2026-12-01", "from", "invalid_date"),
        ("from=2026-12-01", "to", "missing_parameter"),
        ("to=2026-12-01", "from", "missing_parameter"),
        ("from=2026-12-02&to=2026-12-01", "to", "out_of_range"),
        ("from=2026-01-01&to=2026-04-03", "to", "range_too_long"),
        (
            "from=2026-12-01&to=2026-12-01&by=week",
            "by",
            "invalid_value",
        ),
    ] {
        let r = app
            .get(&format!("/v1/metrics/golden?{query}"), ADMIN_KEY)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
        assert_eq!(r.field(), field, "{query}: {:?}", r.body);
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{query}");
        }
    }
    // The refusal names the limit; 92 days (inclusive) pass.
    let r = app
        .get(
            "/v1/metrics/golden?from=2026-01-01&to=2026-04-03",
            ADMIN_KEY,
        )
        .await;
    assert!(
        r.body.to_string().contains("at most 92 days"),
        "{:?}",
        r.body
    );
    let r = app
        .get(
            "/v1/metrics/golden?from=2026-01-01&to=2026-04-02",
            ADMIN_KEY,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["groups"].as_array().unwrap().len(), 92);
    for (query, field) in [
        ("date=yesterday", "date"),
        ("threshold_pct=0", "threshold_pct"),
        ("threshold_pct=abc", "threshold_pct"),
    ] {
        let r = app
            .post(&format!("/v1/quality/check?{query}"), ADMIN_KEY, &json!({}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
        assert_eq!(r.field(), field, "{query}");
    }
    let r = app
        .get(
            "/v1/quality/alerts?from=2026-12-01&to=2026-12-02&limit=0",
            ADMIN_KEY,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.field(), "limit");
}

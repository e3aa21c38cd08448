//! `/v1/health/*` (issue 24): a seeded history of four days where shop-a ships nothing on time
//! goes below C, the third day raises the alerts of its groups once (shop-a's event names its
//! shop), computing again raises nothing; the analyst reads the grades and not the orders behind
//! them; a bad configuration or query is refused naming its field.

use crate::app::*;
use crate::on_every_backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    three_days_below_c_raise_one_alert_and_the_orders_behind_the_drop,
    bad_health_configurations_and_queries_name_the_field,
    the_live_view_scores_the_orders_paid_in_its_window_only,
);

/// Only shipping on time and refunds count (received days after payment, every seeded order
/// would lag behind its channel).
fn config() -> Value {
    json!({
        "weights": {"on_time": 1, "exceptions": 0, "exception_age": 0, "refunds": 1,
                    "sync_lag": 0, "write_back": 0, "tracking": 0},
        "grade_a": 90, "grade_b": 80, "grade_c": 70, "alert_days": 3,
        "sync_lag_seconds": 1800, "write_back_seconds": 7200, "tracking_seconds": 86400
    })
}

/// An order of `shop` in `province` paid on December `d` at 08:00 UTC, due by `ship_by`.
async fn paid(
    app: &TestApp,
    shop: &str,
    province: &str,
    ext: &str,
    d: u32,
    ship_by: &str,
) -> String {
    let mut body = order_json(shop, ext);
    body["promised_ship_by"] = json!(ship_by);
    body["receiver"]["province"] = json!(province);
    let r = app.post("/v1/orders", ADMIN_KEY, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["order_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/orders/{id}/pay"),
            ADMIN_KEY,
            &json!({"paid_at": format!("2026-12-{d:02}T08:00:00Z")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    id
}

async fn put_config(app: &TestApp, body: &Value) -> Resp {
    app.call(
        reqwest::Method::PUT,
        "/v1/health/config",
        Some(ADMIN_KEY),
        Some(&body.to_string()),
        &[],
    )
    .await
}

fn alerts_of(r: &Resp) -> Vec<(String, String, String)> {
    r.body["raised"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["dimension"].as_str().unwrap().to_owned(),
                a["key"].as_str().unwrap().to_owned(),
                a["streak_start"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn three_days_below_c_raise_one_alert_and_the_orders_behind_the_drop(app: TestApp) {
    let r = put_config(&app, &config()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Days 1–4: shop-a's order was due that evening and never shipped; shop-b's is due in 2099.
    let mut late = Vec::new();
    for d in 1..=4 {
        late.push(
            paid(
                &app,
                "shop-a",
                "浙江省",
                &format!("A{d}"),
                d,
                &format!("2026-12-{d:02}T20:00:00Z"),
            )
            .await,
        );
        paid(
            &app,
            "shop-b",
            "广东省",
            &format!("B{d}"),
            d,
            "2099-01-01T00:00:00Z",
        )
        .await;
    }
    let mut raised = Vec::new();
    for d in 1..=4 {
        let r = app
            .post(
                &format!("/v1/health/compute?date=2026-12-{d:02}"),
                ADMIN_KEY,
                &json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        raised.push(alerts_of(&r));
    }
    assert_eq!(raised[0], []);
    assert_eq!(raised[1], []);
    // Every group shop-a's late orders fall in goes below C: its shop, its channel, no
    // warehouse and no carrier yet, its province.
    let a = |dim: &str, key: &str| (dim.to_owned(), key.to_owned(), "2026-12-01".to_owned());
    assert_eq!(
        raised[2],
        [
            a("shop", "shop-a"),
            a("channel", "taobao"),
            a("warehouse", "none"),
            a("carrier", "none"),
            a("region", "浙江省")
        ]
    );
    assert_eq!(raised[3], [], "day 4 continues the same streak");
    let again = app
        .post("/v1/health/compute?date=2026-12-03", ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(alerts_of(&again), [], "computing again raises nothing");

    let events = app.get("/v1/events?limit=1000", ADMIN_KEY).await;
    let health: Vec<&Value> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "health.alert")
        .collect();
    assert_eq!(health.len(), 5);
    let shop: Vec<_> = health
        .iter()
        .filter(|e| e["payload"]["dimension"] == "shop")
        .collect();
    assert_eq!(shop.len(), 1, "exactly one alert for shop-a's streak");
    assert_eq!(shop[0]["payload"]["shop_id"], "shop-a");
    assert_eq!(shop[0]["payload"]["day"], "2026-12-03");
    assert!(app.metrics().await.contains("orderhub_health_alerts_total"));

    // The grades, as the analyst reads them: figures only.
    let analyst = app.key("analyst", None, false).await;
    let r = app
        .get(
            "/v1/health/scores?dimension=shop&from=2026-12-01&to=2026-12-04",
            &analyst,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let grades: Vec<_> = r.body["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {}",
                s["day"].as_str().unwrap(),
                s["key"].as_str().unwrap(),
                s["score"].as_str().unwrap(),
                s["grade"].as_str().unwrap()
            )
        })
        .collect();
    let mut want = Vec::new();
    for d in 1..=4 {
        want.push(format!("2026-12-0{d} shop-a 50.0 D"));
        want.push(format!("2026-12-0{d} shop-b 100.0 A"));
    }
    assert_eq!(grades, want);
    let orders = "/v1/health/orders?dimension=shop&key=shop-a&date=2026-12-02";
    let r = app.get(orders, &analyst).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the analyst sees no order");

    // The orders behind shop-a's drop on day 2.
    let r = app
        .get(&format!("{orders}&component=on_time"), ADMIN_KEY)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Every component it fails is named, weighted or not (received days after its payment).
    assert_eq!(
        r.body["orders"],
        json!([{"order_id": late[1], "failing": ["on_time", "sync_lag"]}])
    );
    let r = app
        .get(&format!("{orders}&component=refunds"), ADMIN_KEY)
        .await;
    assert_eq!(r.body["orders"], json!([]));

    // A key scoped to shop-b sees its shop's grades only, and not the other dimensions.
    let scoped = app.key("viewer", Some(&["shop-b"]), false).await;
    let r = app
        .get(
            "/v1/health/scores?dimension=shop&from=2026-12-01&to=2026-12-04",
            &scoped,
        )
        .await;
    let keys: Vec<_> = r.body["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].clone())
        .collect();
    assert_eq!(keys, vec![json!("shop-b"); 4]);
    let r = app
        .get(
            "/v1/health/scores?dimension=region&from=2026-12-01&to=2026-12-04",
            &scoped,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "out_of_scope");
    let r = app.get(orders, &scoped).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn bad_health_configurations_and_queries_name_the_field(app: TestApp) {
    let mut c = config();
    c["grade_b"] = json!(95);
    let r = put_config(&app, &c).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((r.field(), r.code()), ("grade_b", "must_descend"));
    let mut c = config();
    c["weights"]["on_time"] = json!(0);
    c["weights"]["refunds"] = json!(0);
    let r = put_config(&app, &c).await;
    assert_eq!((r.field(), r.code()), ("weights", "must_sum_above_zero"));
    let r = app.get("/v1/health/config", ADMIN_KEY).await;
    assert_eq!(r.body["grade_c"], 70, "the defaults stand");
    for (path, field) in [
        (
            "/v1/health/scores?dimension=city&from=2026-12-01&to=2026-12-02",
            "dimension",
        ),
        (
            "/v1/health/scores?dimension=shop&from=2026-01-01&to=2026-12-02",
            "to",
        ),
        ("/v1/health/scores?dimension=shop&to=2026-12-02", "from"),
        (
            "/v1/health/orders?dimension=shop&key=s&date=2026-13-01",
            "date",
        ),
        (
            "/v1/health/orders?dimension=shop&key=s&date=2026-12-01&component=speed",
            "component",
        ),
        (
            "/v1/health/orders?dimension=shop&key=s&date=2026-12-01&after=x",
            "after",
        ),
        (
            "/v1/health/live?dimension=shop&window_seconds=9",
            "window_seconds",
        ),
        (
            "/v1/health/live?dimension=shop&window_seconds=1h",
            "window_seconds",
        ),
        ("/v1/health/live?window_seconds=600", "dimension"),
    ] {
        let r = app.get(path, ADMIN_KEY).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.field(), field, "{path}");
    }
    let r = app
        .post(
            "/v1/health/compute?date=+20261-01-01",
            ADMIN_KEY,
            &json!({}),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "date"));
}

/// An order of `shop` paid `ago` before now, due 10 minutes after its payment and not shipped:
/// late once those minutes passed.
async fn paid_ago(app: &TestApp, shop: &str, ext: &str, ago: chrono::Duration) -> String {
    let paid = chrono::Utc::now() - ago;
    let due = paid + chrono::Duration::minutes(10);
    let mut body = order_json(shop, ext);
    body["promised_ship_by"] = json!(due.to_rfc3339());
    let r = app.post("/v1/orders", ADMIN_KEY, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["order_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/orders/{id}/pay"),
            ADMIN_KEY,
            &json!({"paid_at": paid.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    id
}

/// The shop's (orders, on_time judged, on_time failing) in a live answer.
fn live_of(r: &Resp, shop: &str) -> Option<(u64, u64, u64)> {
    let s = r.body["scores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == shop)?;
    let on_time = s["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "on_time")
        .unwrap();
    Some((
        s["orders"].as_u64().unwrap(),
        on_time["judged"].as_u64().unwrap(),
        on_time["failing"].as_u64().unwrap(),
    ))
}

async fn the_live_view_scores_the_orders_paid_in_its_window_only(app: TestApp) {
    let r = put_config(&app, &config()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // shop-a: one order paid 5 minutes ago (not due yet), one 3 hours ago (late by now).
    paid_ago(&app, "shop-a", "L1", chrono::Duration::minutes(5)).await;
    paid_ago(&app, "shop-a", "L2", chrono::Duration::hours(3)).await;
    let hour = app
        .get(
            "/v1/health/live?dimension=shop&window_seconds=3600",
            ADMIN_KEY,
        )
        .await;
    assert_eq!(hour.status, StatusCode::OK, "{:?}", hour.body);
    assert_eq!(hour.body["window_seconds"], 3600);
    assert_eq!(live_of(&hour, "shop-a"), Some((1, 0, 0)), "{:?}", hour.body);
    let four = app
        .get(
            "/v1/health/live?dimension=shop&window_seconds=14400",
            ADMIN_KEY,
        )
        .await;
    assert_eq!(live_of(&four, "shop-a"), Some((2, 1, 1)), "{:?}", four.body);
    let s = &four.body["scores"][0];
    assert_eq!(
        (s["score"].as_str(), s["grade"].as_str()),
        (Some("50.0"), Some("D"))
    );
    // The default window is an hour; nothing is stored.
    let default = app.get("/v1/health/live?dimension=shop", ADMIN_KEY).await;
    assert_eq!(live_of(&default, "shop-a"), Some((1, 0, 0)));
    let today = chrono::Utc::now().date_naive();
    let stored = app
        .get(
            &format!("/v1/health/scores?dimension=shop&from={today}&to={today}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(
        stored.body["scores"],
        json!([]),
        "the live view stores nothing"
    );
    // The analyst reads it (figures only); another dimension of a shop-scoped key is refused by
    // the matrix's cases.
    let analyst = app.key("analyst", None, false).await;
    let r = app
        .get(
            "/v1/health/live?dimension=carrier&window_seconds=600",
            &analyst,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

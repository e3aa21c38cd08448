//! Stops that stop (issue 19): an order carrying `stop_shipment` is refused every move towards
//! shipment until an operator resolves the exception, with a reason, through the API.

use crate::app::*;
use crate::on_every_backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    a_stopped_order_answers_409_to_allocate_release_and_ship_but_may_be_held_and_cancelled,
    an_operator_resolves_a_stop_with_a_reason_and_the_order_ships,
);

/// A new order of shop `s1` moved by `moves` (admin key); its id.
async fn order_at(app: &TestApp, external: &str, moves: &[(&str, Value)]) -> String {
    let id = app.create(ADMIN_KEY, "s1", external).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (a, b) in moves {
        let r = app
            .post(&format!("/v1/orders/{id}/{a}"), ADMIN_KEY, b)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{a}: {:?}", r.body);
    }
    id
}

fn to_paid() -> Vec<(&'static str, Value)> {
    vec![("pay", json!({}))]
}
fn to_allocated() -> Vec<(&'static str, Value)> {
    let mut v = to_paid();
    v.push(("allocate", json!({"warehouse_id": "WH1"})));
    v
}
fn to_released() -> Vec<(&'static str, Value)> {
    let mut v = to_allocated();
    v.push(("release", json!({})));
    v
}
fn ship_body() -> Value {
    json!({"carrier": "sf", "tracking_no": "SF1", "logistics_no": "L1"})
}

async fn a_stopped_order_answers_409_to_allocate_release_and_ship_but_may_be_held_and_cancelled(
    app: TestApp,
) {
    let cases = [
        (
            "ST-P",
            to_paid(),
            "allocate",
            json!({"warehouse_id": "WH1"}),
            "paid",
        ),
        ("ST-A", to_allocated(), "release", json!({}), "allocated"),
        ("ST-R", to_released(), "ship", ship_body(), "released"),
    ];
    for (ext, moves, action, body, status) in cases {
        let id = order_at(&app, ext, &moves).await;
        let version = app.raise(&id, "stop_shipment").await;
        let events = app.event_count().await;
        let r = app
            .post(&format!("/v1/orders/{id}/{action}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (
                StatusCode::CONFLICT,
                "order_stopped",
                "exceptions.stop_shipment"
            ),
            "{action}: {:?}",
            r.body
        );
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("stop_shipment") && msg.contains(action),
            "{msg}"
        );
        assert_eq!(
            (
                r.body["error"]["current_status"].as_str(),
                r.body["error"]["current_version"].as_u64()
            ),
            (Some(status), Some(version))
        );
        // Refused means unchanged: same status and version, no event written.
        let o = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await.body;
        assert_eq!(
            (o["status"].as_str(), o["version"].as_u64()),
            (Some(status), Some(version))
        );
        assert_eq!(app.event_count().await, events, "{action} wrote an event");
    }
    // Hold (and approve) and cancel remain open to a stopped order; allocation stays refused.
    let id = order_at(&app, "ST-H", &to_paid()).await;
    app.raise(&id, "after_sale").await;
    let hold = app
        .post(
            &format!("/v1/orders/{id}/hold"),
            ADMIN_KEY,
            &json!({"reason": "refund asked"}),
        )
        .await;
    assert_eq!(hold.status, StatusCode::OK, "{:?}", hold.body);
    let approve = app
        .post(&format!("/v1/orders/{id}/approve"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(approve.status, StatusCode::OK, "{:?}", approve.body);
    let r = app
        .post(
            &format!("/v1/orders/{id}/allocate"),
            ADMIN_KEY,
            &json!({"warehouse_id": "WH1"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "order_stopped")
    );
    let cancel = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            ADMIN_KEY,
            &json!({"reason": "refunded"}),
        )
        .await;
    assert_eq!(
        (cancel.status, cancel.body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
}

async fn an_operator_resolves_a_stop_with_a_reason_and_the_order_ships(app: TestApp) {
    let id = order_at(&app, "RS-1", &to_released()).await;
    let version = app.raise(&id, "stop_shipment").await;
    let path = format!("/v1/orders/{id}/exceptions/stop_shipment/resolve");
    // The reason is required and bounded.
    for (body, code) in [
        (json!({}), "missing_field"),
        (json!({"reason": "  "}), "required"),
        (json!({"reason": "x".repeat(501)}), "too_long"),
    ] {
        let r = app.post(&path, ADMIN_KEY, &body).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, code, "reason"),
            "{body}"
        );
    }
    let why = json!({"reason": "buyer confirmed by phone: ship it"});
    // Not for roles without the permission, not outside the key's shops or tenant.
    for role in ["warehouse", "finance", "viewer"] {
        let key = app.key(role, None, false).await;
        assert_eq!(
            app.post(&path, &key, &why).await.status,
            StatusCode::FORBIDDEN
        );
    }
    let elsewhere = app.key("ops", Some(&["s2"]), false).await;
    assert_eq!(
        app.post(&path, &elsewhere, &why).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&path, OTHER_TENANT_KEY, &why).await.status,
        StatusCode::NOT_FOUND
    );
    // A kind the order does not carry.
    let r = app
        .post(
            &format!("/v1/orders/{id}/exceptions/after_sale/resolve"),
            ADMIN_KEY,
            &why,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "exception_not_open")
    );
    // Nothing of that changed the order.
    let o = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await.body;
    assert_eq!(o["version"].as_u64(), Some(version));
    // An ops key resolves it: the order without the stop, one version later.
    let ops = app.key("ops", Some(&["s1"]), false).await;
    let r = app.post(&path, &ops, &why).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["status"].as_str(),
            r.body["version"].as_u64(),
            r.body["exceptions"].as_array().map(Vec::len)
        ),
        (Some("released"), Some(version + 1), Some(0)),
        "{:?}",
        r.body
    );
    // Its timeline says who resolved it and why; its event says which exception.
    let tl = app
        .get(&format!("/v1/orders/{id}/timeline"), ADMIN_KEY)
        .await;
    let step = tl.body["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(step["action"], "exception.resolved");
    assert_eq!(step["actor"], "ops:ops");
    assert_eq!(step["detail"]["exception"], "stop_shipment");
    assert_eq!(
        step["detail"]["detail"]["reason"],
        "buyer confirmed by phone: ship it"
    );
    let ev = app.get("/v1/events?limit=1000", ADMIN_KEY).await;
    let last = ev.body["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "exception.resolved", "{last}");
    assert_eq!(last["payload"]["exception"], "stop_shipment", "{last}");
    // Resolved once: a second resolve finds nothing open.
    assert_eq!(
        app.post(&path, ADMIN_KEY, &why).await.code(),
        "exception_not_open"
    );
    // The order moves again.
    let r = app
        .post(&format!("/v1/orders/{id}/ship"), ADMIN_KEY, &ship_body())
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("shipped")),
        "{:?}",
        r.body
    );
}

//! Merge and split over HTTP (issue 21): a preview that says why an order is left out, a merge
//! answered with its group and orders, one parcel shipping every member with one tracking number,
//! a split order shipping parcel by parcel with the units shipped per line, and the 4xx a client
//! acts on (bad ids 400, a refused merge 409 naming the order, a whole-order shipment of a split
//! order 409, a role without the permission 403).

use crate::app::*;
use crate::on_every_backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    two_orders_merge_after_a_preview_and_ship_as_one_parcel,
    a_split_order_ships_parcel_by_parcel_with_units_shipped_per_line,
);

async fn paid(app: &TestApp, ext: &str, detail: &str) -> String {
    let mut body = order_json("shop-a", ext);
    body["receiver"]["detail"] = json!(detail);
    let r = app.post("/v1/orders", ADMIN_KEY, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["order_id"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    id
}

async fn released(app: &TestApp, id: &str) {
    for (action, body) in [
        ("allocate", json!({"warehouse_id": "WH1"})),
        ("release", json!({})),
    ] {
        let r = app
            .post(&format!("/v1/orders/{id}/{action}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.body);
    }
}

fn waybill(tracking: &str) -> Value {
    json!({"carrier": "sf", "tracking_no": tracking, "logistics_no": format!("L{tracking}")})
}

async fn two_orders_merge_after_a_preview_and_ship_as_one_parcel(app: TestApp) {
    let ops = app.key("ops", None, false).await;
    let warehouse = app.key("warehouse", None, false).await;
    // The merge settings: admin only, bounded.
    let put = |key: String, body: Value| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::PUT,
                "/v1/settings/merges",
                Some(&key),
                Some(&body.to_string()),
                &[],
            )
            .await
        }
    };
    let r = put(ops.clone(), json!({"window_minutes": 60})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = put(ADMIN_KEY.to_owned(), json!({"window_minutes": 0})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "window_minutes");
    let r = put(
        ADMIN_KEY.to_owned(),
        json!({"window_minutes": 600, "cross_shop": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get("/v1/settings/merges", &ops).await;
    assert_eq!(
        r.body,
        json!({"auto": false, "window_minutes": 600, "cross_shop": false})
    );
    let a = paid(&app, "MG-A", "文三路100号").await;
    let b = paid(&app, "MG-B", "文三路 100 号").await;
    let c = paid(&app, "MG-C", "莫干山路8号").await;
    let r = app
        .post("/v1/merges/preview", &ops, &json!({"order_ids": [a, b, c]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["mergeable"].as_array().unwrap().len(),
        2,
        "{}",
        r.body
    );
    assert_eq!(r.body["refused"][0]["order_id"], json!(c));
    assert_eq!(r.body["refused"][0]["code"], "other_receiver");
    // All or nothing: the merge names the order that does not qualify.
    let r = app
        .post("/v1/merges", &ops, &json!({"order_ids": [a, b, c]}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "merge_refused");
    assert_eq!(r.body["error"]["field"], "order_ids[2]");
    // Bad input: the field and the rule.
    let r = app
        .post("/v1/merges", &ops, &json!({"order_ids": [a, "nope"]}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "order_ids[1]");
    let r = app.get("/v1/merges/not-a-uuid", &ops).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "invalid_id");
    // The warehouse key may ship parcels, not merge.
    let r = app
        .post("/v1/merges", &warehouse, &json!({"order_ids": [a, b]}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = app
        .post(
            "/v1/merges",
            &ops,
            &json!({"order_ids": [a, b], "reason": "same buyer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let group = r.body["group"]["group_id"].as_str().unwrap().to_owned();
    let parcel = r.body["group"]["parcel_id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 2);
    let g = app.get(&format!("/v1/merges/{group}"), &ops).await;
    assert_eq!(g.body["state"], "open");
    let o = app.get(&format!("/v1/orders/{a}"), &ops).await.body;
    assert_eq!(o["shipment_group"], json!(group));
    assert_eq!(o["parcels"][0]["parcel_id"], json!(parcel));
    released(&app, &a).await;
    released(&app, &b).await;
    let r = app
        .post(
            &format!("/v1/orders/{a}/parcels/{parcel}/ship"),
            &warehouse,
            &waybill("SF777"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for id in [&a, &b] {
        let o = app.get(&format!("/v1/orders/{id}"), &ops).await.body;
        assert_eq!(o["status"], "shipped");
        assert_eq!(o["fulfillment"]["tracking_no"], "SF777");
    }
    let g = app.get(&format!("/v1/merges/{group}"), &ops).await;
    assert_eq!(g.body["state"], "shipped");
    // Undo after shipment: refused, the group as it is.
    let r = app
        .post(&format!("/v1/merges/{group}/undo"), &ops, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "group_not_open");
    let ev = app.get("/v1/events?limit=1000", ADMIN_KEY).await.body;
    let merged = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "order.merged")
        .count();
    assert_eq!(merged, 2, "one order.merged per member");
}

async fn a_split_order_ships_parcel_by_parcel_with_units_shipped_per_line(app: TestApp) {
    let ops = app.key("ops", None, false).await;
    let viewer = app.key("viewer", None, false).await;
    let id = paid(&app, "SP-1", "文三路100号").await;
    let body = json!({"by": "lines", "parcels": [
        {"lines": [{"line_id": 1, "quantity": 2}]},
        {"lines": [{"line_id": 2, "quantity": 1}, {"line_id": 3, "quantity": 3}]},
    ]});
    let r = app
        .post(&format!("/v1/orders/{id}/split"), &viewer, &body)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.post("/v1/orders/not-an-id/split", &ops, &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let short = json!({"by": "lines", "parcels": [
        {"lines": [{"line_id": 1, "quantity": 2}]}, {"lines": [{"line_id": 2, "quantity": 1}]},
    ]});
    let r = app
        .post(&format!("/v1/orders/{id}/split"), &ops, &short)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "does_not_add_up");
    let r = app
        .post(&format!("/v1/orders/{id}/split"), &ops, &body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let parcels: Vec<String> = r.body["parcels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["parcel_id"].as_str().unwrap().to_owned())
        .collect();
    released(&app, &id).await;
    // The whole order does not ship at once any more.
    let r = app
        .post(&format!("/v1/orders/{id}/ship"), ADMIN_KEY, &waybill("SF1"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "ships_in_parcels");
    let r = app
        .post(
            &format!("/v1/orders/{id}/parcels/{}/ship", parcels[0]),
            &ops,
            &waybill("SF1"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let o = &r.body["orders"][0];
    assert_eq!(o["status"], "released");
    assert_eq!(o["lines"][0]["shipped"], 2);
    assert_eq!(o["lines"][1]["shipped"], 0);
    assert_eq!(o["parcels"][0]["state"], "shipped");
    let r = app
        .post(
            &format!("/v1/orders/{id}/parcels/{}/ship", parcels[1]),
            &ops,
            &waybill("SF2"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let o = &r.body["orders"][0];
    assert_eq!(o["status"], "shipped");
    assert_eq!(o["lines"][2]["shipped"], 3);
    assert_eq!(o["fulfillment"]["tracking_no"], "SF2");
    let r = app
        .post(
            &format!("/v1/orders/{id}/parcels/not-a-uuid/ship"),
            &ops,
            &waybill("SF3"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "parcel_id");
}

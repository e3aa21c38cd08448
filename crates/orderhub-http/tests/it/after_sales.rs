//! After-sales cases over HTTP (issue 21): open, list, read, approve, refund, close; structured
//! 4xx for what breaks a rule; idempotent replays; and the races a user relies on — a refund
//! approval against a shipment, two approvals of one case — each with exactly one winner and a
//! 409 that says why for the other.

use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_every_backend!(
    a_case_is_opened_approved_refunded_closed_and_shown_on_the_timeline,
    bad_input_is_answered_4xx_naming_the_field_and_nothing_is_written,
    a_refund_approval_racing_a_shipment_has_one_winner_and_a_409,
    two_approvals_of_one_case_at_once_have_one_effect,
    an_exchange_after_qc_ships_a_replacement_order,
);

/// SKU-2 tracked (10 in WH1); the other lines of `order_json` are not.
async fn seed_stock(app: &TestApp) {
    for (path, body) in [
        ("/v1/skus/SKU-2", json!({"title": "Cap"})),
        (
            "/v1/warehouses/WH1",
            json!({"name": "WH1", "priority": 0, "regions": []}),
        ),
    ] {
        let r = app
            .call(
                Method::PUT,
                path,
                Some(ADMIN_KEY),
                Some(&body.to_string()),
                &[],
            )
            .await;
        assert!(r.status.is_success(), "{path}: {:?}", r.body);
    }
    let r = app
        .post(
            "/v1/inventory/receipts",
            ADMIN_KEY,
            &json!({"sku": "SKU-2", "warehouse_id": "WH1", "quantity": 10}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

async fn order_at(app: &TestApp, external: &str, moves: &[&str]) -> String {
    let id = app.create(ADMIN_KEY, "s1", external).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for a in moves {
        let body = match *a {
            "allocate" => json!({"warehouse_id": "WH1"}),
            "ship" => ship_body(external),
            _ => json!({}),
        };
        let r = app
            .post(&format!("/v1/orders/{id}/{a}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{a}: {:?}", r.body);
    }
    id
}

fn ship_body(n: &str) -> Value {
    json!({"carrier": "sf", "tracking_no": format!("SF{}", n.replace('-', "")), "logistics_no": "L1"})
}

async fn open(app: &TestApp, order: &str, lines: Value) -> Resp {
    app.post(
        &format!("/v1/orders/{order}/after-sales"),
        ADMIN_KEY,
        &json!({"kind": "refund_only", "lines": lines, "reason": "买家不想要了"}),
    )
    .await
}

async fn reserved(app: &TestApp) -> i64 {
    let r = app.get("/v1/inventory/SKU-2", ADMIN_KEY).await;
    r.body["reserved"].as_i64().unwrap()
}

async fn a_case_is_opened_approved_refunded_closed_and_shown_on_the_timeline(app: TestApp) {
    seed_stock(&app).await;
    let id = order_at(&app, "AS-1", &["pay", "allocate"]).await;
    assert_eq!(reserved(&app).await, 1);
    let r = open(&app, &id, json!([{"line_id": 2, "quantity": 1}])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "requested");
    assert_eq!(r.body["effect"], "stop_lines");
    assert_eq!(r.body["amount"], "20.00");
    let case = r.body["case_id"].as_str().unwrap().to_owned();
    let list = app
        .get(
            &format!("/v1/after-sales?state=requested&order_id={id}&limit=10"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["cases"][0]["case_id"], case.as_str());
    // Approve with an Idempotency-Key: the repeat replays the first answer, one effect.
    let approve = |key: &'static str| {
        let path = format!("/v1/after-sales/{case}/approve");
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &path,
                Some(ADMIN_KEY),
                None,
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let first = approve("approve-1").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["state"], "approved");
    assert_eq!(first.body["order_status"], "allocated");
    let again = approve("approve-1").await;
    assert_eq!((again.status, &again.bytes), (first.status, &first.bytes));
    assert_eq!(
        reserved(&app).await,
        0,
        "the refunded line's unit is back in the pool"
    );
    let o = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await;
    assert_eq!(o.body["lines"][1]["to_ship"], 0, "{:?}", o.body["lines"]);
    assert!(o.body["lines"][0].get("to_ship").is_none());
    let other = approve("approve-2").await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    assert_eq!(other.code(), "after_sale_not_allowed");
    // Finance records the refund.
    let finance = app.key("finance", None, false).await;
    let r = app
        .post(
            &format!("/v1/after-sales/{case}/refund"),
            &finance,
            &json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (StatusCode::OK, Some("refunded"))
    );
    // Finance may not close it; ops may.
    let r = app
        .post(
            &format!("/v1/after-sales/{case}/close"),
            &finance,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/v1/after-sales/{case}/close"),
            ADMIN_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (StatusCode::OK, Some("closed"))
    );
    let got = app.get(&format!("/v1/after-sales/{case}"), ADMIN_KEY).await;
    let steps: Vec<&str> = got.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["to"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["approved", "refunded", "closed"]);
    let tl = app
        .get(&format!("/v1/orders/{id}/timeline"), ADMIN_KEY)
        .await;
    let actions: Vec<&str> = tl.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .filter(|a| a.starts_with("after_sale."))
        .collect();
    assert_eq!(
        actions,
        [
            "after_sale.requested",
            "after_sale.approved",
            "after_sale.refunded",
            "after_sale.closed"
        ]
    );
    let events = app.get("/v1/events?limit=1000", ADMIN_KEY).await;
    let refunded = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "order.refunded")
        .expect("order.refunded");
    assert_eq!(refunded["payload"]["after_sale"]["amount"], "20.00");
    // The order goes on with the rest.
    let r = app
        .post(&format!("/v1/orders/{id}/release"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn bad_input_is_answered_4xx_naming_the_field_and_nothing_is_written(app: TestApp) {
    let id = order_at(&app, "AS-2", &["pay"]).await;
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({"kind": "swap", "lines": [{"line_id": 1, "quantity": 1}], "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_kind",
            "kind",
        ),
        (
            // An exchange is of goods delivered.
            json!({"kind": "exchange", "lines": [{"line_id": 1, "quantity": 1}], "reason": "x"}),
            StatusCode::CONFLICT,
            "after_sale_not_now",
            "",
        ),
        (
            json!({"kind": "refund_only", "lines": [{"line_id": 1, "quantity": 3}], "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "exceeds_line_quantity",
            "lines[0].quantity",
        ),
        (
            json!({"kind": "refund_only", "lines": [{"line_id": 2, "quantity": 1, "amount": "20.01"}], "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "exceeds_line_paid",
            "lines[0].amount",
        ),
        (
            json!({"kind": "refund_only", "lines": [{"line_id": 2, "quantity": 1, "amount": 20}], "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "money_must_be_string",
            "lines[0].amount",
        ),
        (
            json!({"kind": "refund_only", "lines": [{"line_id": 9, "quantity": 1}], "reason": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_line",
            "lines[0].line_id",
        ),
        (
            json!({"kind": "refund_only", "lines": [{"line_id": 1, "quantity": 1}], "reason": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "reason",
        ),
        (
            json!({"kind": "return_and_refund", "lines": [{"line_id": 1, "quantity": 1}], "reason": "x"}),
            StatusCode::CONFLICT,
            "after_sale_not_now",
            "",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = app
            .post(&format!("/v1/orders/{id}/after-sales"), ADMIN_KEY, &body)
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (status, code, field),
            "{body}"
        );
    }
    for (path, status, field) in [
        ("/v1/after-sales/not-a-uuid", StatusCode::BAD_REQUEST, "id"),
        (
            "/v1/after-sales?state=lost",
            StatusCode::BAD_REQUEST,
            "state",
        ),
        ("/v1/after-sales?limit=0", StatusCode::BAD_REQUEST, "limit"),
        (
            "/v1/after-sales?limit=201",
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            "/v1/after-sales?order_id=x",
            StatusCode::BAD_REQUEST,
            "order_id",
        ),
        (
            "/v1/after-sales?cursor=%%",
            StatusCode::BAD_REQUEST,
            "cursor",
        ),
        (
            "/v1/after-sales/00000000-0000-7000-8000-000000000000",
            StatusCode::NOT_FOUND,
            "",
        ),
    ] {
        let r = app.get(path, ADMIN_KEY).await;
        assert_eq!(
            (r.status, r.field()),
            (status, field),
            "{path}: {:?}",
            r.body
        );
    }
    let list = app
        .get(&format!("/v1/after-sales?order_id={id}"), ADMIN_KEY)
        .await;
    assert_eq!(list.body["cases"], json!([]), "nothing was written");
    // An order outside a scoped key's shops does not exist for it.
    let other = app.key("ops", Some(&["s2"]), false).await;
    let r = app
        .post(
            &format!("/v1/orders/{id}/after-sales"),
            &other,
            &json!({"kind": "refund_only", "lines": [{"line_id": 1, "quantity": 1}], "reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn a_refund_approval_racing_a_shipment_has_one_winner_and_a_409(app: TestApp) {
    for n in 0..4 {
        let ext = format!("AS-R{n}");
        let id = order_at(&app, &ext, &["pay", "allocate", "release"]).await;
        let r = open(&app, &id, json!([{"line_id": 1, "quantity": 2}])).await;
        assert_eq!(r.body["effect"], "intercept_at_warehouse");
        let case = r.body["case_id"].as_str().unwrap().to_owned();
        let approve_path = format!("/v1/after-sales/{case}/approve");
        let ship_path = format!("/v1/orders/{id}/ship");
        let ship = ship_body(&ext);
        let empty = json!({});
        let (a, s) = tokio::join!(
            app.post(&approve_path, ADMIN_KEY, &empty),
            app.post(&ship_path, ADMIN_KEY, &ship),
        );
        let wins = [a.status, s.status]
            .iter()
            .filter(|x| **x == StatusCode::OK)
            .count();
        assert_eq!(wins, 1, "approve {:?} / ship {:?}", a.body, s.body);
        if a.status == StatusCode::OK {
            assert_eq!(
                (s.status, s.code()),
                (StatusCode::CONFLICT, "order_stopped")
            );
        } else {
            assert_eq!(
                (a.status, a.code(), a.field()),
                (StatusCode::CONFLICT, "after_sale_effect_changed", "effect")
            );
            assert_eq!(a.body["error"]["current_status"], "shipped");
            // The approver accepts the new effect: the parcel is to be intercepted.
            let r = app
                .post(
                    &approve_path,
                    ADMIN_KEY,
                    &json!({"effect": "intercept_parcel"}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            assert_eq!(r.body["effect"], "intercept_parcel");
            let o = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await;
            assert!(
                o.body["exceptions"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("after_sale"))
            );
        }
    }
}

async fn two_approvals_of_one_case_at_once_have_one_effect(app: TestApp) {
    seed_stock(&app).await;
    for n in 0..3 {
        let id = order_at(&app, &format!("AS-D{n}"), &["pay"]).await;
        let before = reserved(&app).await;
        let r = open(&app, &id, json!([{"line_id": 2, "quantity": 1}])).await;
        let case = r.body["case_id"].as_str().unwrap().to_owned();
        let path = format!("/v1/after-sales/{case}/approve");
        let empty = json!({});
        let (a, b) = tokio::join!(
            app.post(&path, ADMIN_KEY, &empty),
            app.post(&path, ADMIN_KEY, &empty),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
        let loser = if a.status == StatusCode::CONFLICT {
            &a
        } else {
            &b
        };
        assert_eq!(loser.code(), "after_sale_not_allowed");
        assert_eq!(reserved(&app).await, before - 1, "one unit released, once");
    }
}

async fn an_exchange_after_qc_ships_a_replacement_order(app: TestApp) {
    seed_stock(&app).await;
    let id = order_at(
        &app,
        "EXCH-1",
        &["pay", "allocate", "release", "ship", "deliver"],
    )
    .await;
    let r = app
        .post(
            &format!("/v1/orders/{id}/after-sales"),
            ADMIN_KEY,
            &json!({"kind": "exchange", "lines": [{"line_id": 2, "quantity": 1}], "reason": "尺码不对"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        (r.body["kind"].as_str(), r.body["amount"].as_str()),
        (Some("exchange"), Some("0.00"))
    );
    let case = r.body["case_id"].as_str().unwrap().to_owned();
    let step = |action: &'static str, body: Value| {
        let (app, case) = (&app, case.clone());
        async move {
            app.post(
                &format!("/v1/after-sales/{case}/{action}"),
                ADMIN_KEY,
                &body,
            )
            .await
        }
    };
    // Not before the goods passed QC.
    let r = step("exchange", json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "after_sale_not_allowed")
    );
    let r = step("approve", json!({})).await;
    assert_eq!(r.body["state"], "goods_returning", "{:?}", r.body);
    let r = step("receive", json!({"qc_passed": true, "warehouse_id": "WH1"})).await;
    assert_eq!(r.body["state"], "qc_passed", "{:?}", r.body);
    // A replacement naming an undefined SKU, or a line not in the case: 422 naming the field.
    for (body, field, rule) in [
        (
            json!({"replacements": [{"line_id": 2, "sku": "NOPE"}]}),
            "replacements[0].sku",
            "unknown_sku",
        ),
        (
            json!({"replacements": [{"line_id": 1, "sku": "SKU-2"}]}),
            "replacements[0].line_id",
            "not_in_case",
        ),
        (
            json!({"replacements": [{"line_id": 2, "sku": ""}]}),
            "replacements[0].sku",
            "",
        ),
    ] {
        let r = step("exchange", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
        assert_eq!(r.field(), field, "{body}");
        if !rule.is_empty() {
            assert_eq!(r.code(), rule, "{body}");
        }
    }
    let before = reserved(&app).await;
    let r = step("exchange", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "exchanged");
    let replacement = r.body["replacement_order_id"].as_str().unwrap().to_owned();
    let o = app
        .get(&format!("/v1/orders/{replacement}"), ADMIN_KEY)
        .await;
    assert_eq!(o.body["status"], "paid", "{:?}", o.body);
    assert_eq!(
        o.body["amounts"]["paid_amount"], "0.00",
        "{:?}",
        o.body["amounts"]
    );
    assert_eq!(o.body["kind"]["type"], "exchange");
    assert_eq!(o.body["kind"]["original_order_id"], id.as_str());
    assert_eq!(o.body["lines"][0]["sku"], "SKU-2");
    assert_eq!(
        reserved(&app).await,
        before + 1,
        "the replacement reserves its unit"
    );
    let r = step("close", json!({})).await;
    assert_eq!(r.body["state"], "closed", "{:?}", r.body);
}

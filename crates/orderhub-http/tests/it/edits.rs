//! Order edits with approval over HTTP (issue 21): the statuses and codes a client acts on, the
//! change log masked for keys without `pii:read`, the timeline and events, the tenant's rules,
//! and two approvers answering at once.

use crate::app::*;
use crate::on_every_backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    an_address_edit_after_payment_waits_for_a_second_key_and_is_masked_without_pii,
    a_released_order_answers_409_naming_its_status_and_bad_input_names_the_field,
    a_two_level_rule_set_by_an_admin_needs_two_approvers_and_two_at_once_apply_once,
    a_goods_edit_short_of_stock_is_refused_and_writes_nothing,
);

async fn paid_order(app: &TestApp, ext: &str) -> String {
    let id = app.create(ADMIN_KEY, "shop-a", ext).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    id
}

fn new_address() -> Value {
    json!({
        "reason": "买家来电改地址",
        "receiver": {"name": "李四", "phone": "13900009999", "province": "浙江省",
                     "city": "宁波市", "detail": "中山路8号"}
    })
}

async fn an_address_edit_after_payment_waits_for_a_second_key_and_is_masked_without_pii(
    app: TestApp,
) {
    let ops = app.key("ops", None, false).await;
    let lead = app.key("admin", None, true).await;
    let viewer = app.key("viewer", None, false).await;
    let id = paid_order(&app, "ED-1").await;
    // What the console offers each key.
    let w = app.get("/v1/whoami", &ops).await.body;
    assert_eq!(
        (w["orders_edit"].clone(), w["edits_approve"].clone()),
        (json!(true), json!(false))
    );
    let w = app.get("/v1/whoami", &lead).await.body;
    assert_eq!(w["edits_approve"], true);

    // A memo applies at once: 200 with the order.
    let r = app
        .post(
            &format!("/v1/orders/{id}/edits"),
            &ops,
            &json!({"reason": "note", "seller_memo": "易碎"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["edit"]["state"], "applied");
    assert_eq!(r.body["order"]["seller_memo"], "易碎");
    assert_eq!(r.body["order"]["version"], 3);

    // The address of a paid order waits: 202, the order unchanged.
    let r = app
        .post(&format!("/v1/orders/{id}/edits"), &ops, &new_address())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let e = &r.body["edit"];
    assert_eq!(e["state"], "pending");
    assert_eq!(e["sensitive"], json!(["address_after_payment"]));
    assert_eq!(e["changes"][0]["after"]["phone"], "139****9999", "{e}");
    assert!(!r.body.to_string().contains("13900009999"));
    let edit = e["edit_id"].as_str().unwrap().to_owned();

    // The approvers' queue, masked for a key without pii:read, clear for one with it.
    let q = app.get("/v1/edits", &viewer).await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(q.body["edits"][0]["edit_id"], edit.as_str());
    assert!(!q.body.to_string().contains("13900009999"));
    let q = app.get("/v1/edits", &lead).await;
    assert_eq!(
        q.body["edits"][0]["changes"][0]["after"]["phone"],
        "13900009999"
    );
    assert_eq!(q.body["edits"][0]["masked"], false);

    // An operator may not approve; the approval needs a key with the permission.
    let r = app
        .post(&format!("/v1/edits/{edit}/approve"), &ops, &json!({}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app
        .post(&format!("/v1/edits/{edit}/approve"), &lead, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["edit"]["state"], "applied");
    assert_eq!(r.body["order"]["receiver"]["city"], "宁波市");
    assert_eq!(r.body["order"]["receiver"]["phone"], "13900009999");
    // Decided: a second approval is told so.
    let again = app
        .post(&format!("/v1/edits/{edit}/approve"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "edit_not_pending")
    );

    // The change log: both edits; who, why, before/after, masked for the viewer.
    let log = app.get(&format!("/v1/orders/{id}/edits"), &viewer).await;
    assert_eq!(log.status, StatusCode::OK);
    let edits = log.body["edits"].as_array().unwrap();
    assert_eq!(edits.len(), 2);
    assert_eq!(edits[1]["reason"], "买家来电改地址");
    assert_eq!(edits[1]["changes"][0]["before"]["phone"], "138****5678");
    assert!(
        edits[1]["approvals"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin:")
    );
    assert!(!log.body.to_string().contains("中山路8号"));

    // The timeline and the events: requested, then edited; no personal data in either.
    let tl = app.get(&format!("/v1/orders/{id}/timeline"), &lead).await;
    let actions: Vec<&str> = tl.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.ends_with(&["edit", "edit_requested", "edit"]),
        "{actions:?}"
    );
    assert!(!tl.body.to_string().contains("13900009999"));
    let ev = app.get("/v1/events?limit=1000", ADMIN_KEY).await.body;
    let types: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["aggregate_id"] == id.as_str())
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert!(
        types.contains(&"order.edit_requested") && types.contains(&"order.edited"),
        "{types:?}"
    );
    assert!(!ev.to_string().contains("13900009999"));
}

async fn a_released_order_answers_409_naming_its_status_and_bad_input_names_the_field(
    app: TestApp,
) {
    let id = paid_order(&app, "ED-2").await;
    for (path, body) in [
        ("allocate", json!({"warehouse_id": "WH-HZ"})),
        ("release", json!({})),
    ] {
        let r = app
            .post(&format!("/v1/orders/{id}/{path}"), ADMIN_KEY, &body)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = app
        .post(
            &format!("/v1/orders/{id}/edits"),
            ADMIN_KEY,
            &json!({"reason": "late", "seller_memo": "x"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "edit_not_allowed")
    );
    assert_eq!(r.body["error"]["current_status"], "released");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("released")
    );

    let other = paid_order(&app, "ED-3").await;
    let path = format!("/v1/orders/{other}/edits");
    for (body, code, field) in [
        (json!({"seller_memo": "x"}), "missing_field", "reason"),
        (
            json!({"reason": "", "seller_memo": "x"}),
            "required",
            "reason",
        ),
        (json!({"reason": "r"}), "required", "edit"),
        (
            json!({"reason": "r", "seller_memo": "x".repeat(1001)}),
            "too_long",
            "seller_memo",
        ),
        (
            json!({"reason": "r", "quantities": [{"line_id": 9, "quantity": 1}]}),
            "unknown_line",
            "quantities[0].line_id",
        ),
        (
            json!({"reason": "r", "quantities": [{"line_id": 1, "quantity": 0}]}),
            "must_be_positive",
            "quantities[0].quantity",
        ),
        (
            json!({"reason": "r", "remove_lines": [2]}),
            "not_a_gift",
            "remove_lines[0]",
        ),
        (
            json!({"reason": "r", "promised_ship_by": "tomorrow"}),
            "invalid_time",
            "promised_ship_by",
        ),
        (
            json!({"reason": "r", "receiver": {"name": "a", "phone": "abc", "province": "p",
                   "city": "c", "detail": "d"}}),
            "invalid_phone",
            "receiver.phone",
        ),
    ] {
        let r = app.post(&path, ADMIN_KEY, &body).await;
        assert!(r.status.is_client_error(), "{body}: {}", r.status);
        assert_eq!((r.code(), r.field()), (code, field), "{body}: {}", r.body);
    }
    // Ids that are not ids.
    let r = app
        .post("/v1/edits/nope/approve", ADMIN_KEY, &json!({}))
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "id"));
    let r = app
        .post(
            &format!("/v1/edits/{}/approve", uuid::Uuid::now_v7()),
            ADMIN_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn a_two_level_rule_set_by_an_admin_needs_two_approvers_and_two_at_once_apply_once(
    app: TestApp,
) {
    let ops = app.key("ops", None, false).await;
    let a1 = app.key("admin", None, false).await;
    let a2 = app.key("admin", None, false).await;
    let r = app.get("/v1/settings/order-edits", &ops).await;
    assert_eq!(
        r.body,
        json!({"address_after_payment": true, "lines": true, "amount_above": null,
               "approvals_required": 1})
    );
    let put = |key: String, body: Value| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::PUT,
                "/v1/settings/order-edits",
                Some(&key),
                Some(&body.to_string()),
                &[],
            )
            .await
        }
    };
    let r = put(ops.clone(), json!({"approvals_required": 2})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = put(ADMIN_KEY.into(), json!({"approvals_required": 3})).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "approvals_required")
    );
    let r = put(
        ADMIN_KEY.into(),
        json!({"approvals_required": 2, "amount_above": "100.00"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["amount_above"], "100.00");

    // Above 100.00: even a memo waits, for two approvers.
    let id = paid_order(&app, "ED-4").await;
    let r = app
        .post(
            &format!("/v1/orders/{id}/edits"),
            &ops,
            &json!({"reason": "r", "seller_memo": "gift wrap"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["edit"]["sensitive"], json!(["amount_above"]));
    let edit = r.body["edit"]["edit_id"].as_str().unwrap().to_owned();
    // One edit waits at a time.
    let r = app
        .post(
            &format!("/v1/orders/{id}/edits"),
            &ops,
            &json!({"reason": "r", "seller_memo": "other"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "edit_pending"));
    let first = app
        .post(&format!("/v1/edits/{edit}/approve"), &a1, &json!({}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["edit"]["state"], "pending");
    assert_eq!(first.body["edit"]["approvals"].as_array().unwrap().len(), 1);
    assert!(first.body["order"].is_null());
    let again = app
        .post(&format!("/v1/edits/{edit}/approve"), &a1, &json!({}))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "already_approved")
    );
    let last = app
        .post(&format!("/v1/edits/{edit}/approve"), &a2, &json!({}))
        .await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    assert_eq!(last.body["order"]["seller_memo"], "gift wrap");

    // Back to one approval; two approvers at once on a fresh edit: one applies it, the other is
    // told it was decided.
    let r = put(ADMIN_KEY.into(), json!({"amount_above": "100.00"})).await;
    assert_eq!(r.body["approvals_required"], 1);
    let r = app
        .post(
            &format!("/v1/orders/{id}/edits"),
            &a1,
            &json!({"reason": "r", "seller_memo": "second"}),
        )
        .await;
    let edit = r.body["edit"]["edit_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/edits/{edit}/approve");
    let empty = json!({});
    let (x, y) = tokio::join!(
        app.post(&path, &a2, &empty),
        app.post(&path, ADMIN_KEY, &empty)
    );
    let mut statuses = [x.status, y.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} {}",
        x.body,
        y.body
    );
    let loser = if x.status == StatusCode::CONFLICT {
        &x
    } else {
        &y
    };
    assert_eq!(loser.code(), "edit_not_pending");
    let o = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await.body;
    assert_eq!(o["seller_memo"], "second");
    let log = app
        .get(&format!("/v1/orders/{id}/edits"), ADMIN_KEY)
        .await
        .body;
    let applied = log["edits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "applied")
        .count();
    assert_eq!(applied, 2);
}

async fn a_goods_edit_short_of_stock_is_refused_and_writes_nothing(app: TestApp) {
    for (path, body) in [
        ("/v1/skus/TEA", json!({"title": "tea"})),
        (
            "/v1/warehouses/HZ",
            json!({"name": "HZ", "priority": 0, "regions": ["浙江省"]}),
        ),
    ] {
        let r = app
            .call(
                reqwest::Method::PUT,
                path,
                Some(ADMIN_KEY),
                Some(&body.to_string()),
                &[],
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let r = app
        .post(
            "/v1/inventory/receipts",
            ADMIN_KEY,
            &json!({"sku": "TEA", "warehouse_id": "HZ", "quantity": 3, "reference": "grn"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let mut o = order_json("shop-a", "ED-5");
    o["lines"] = json!([{"sku": "TEA", "title": "tea", "quantity": 1, "unit_price": "10.00"}]);
    let id = app.post("/v1/orders", ADMIN_KEY, &o).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
        .await;
    let r = app
        .call(
            reqwest::Method::PUT,
            "/v1/settings/order-edits",
            Some(ADMIN_KEY),
            Some(&json!({"lines": false}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let before = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await.body;
    let r = app
        .post(
            &format!("/v1/orders/{id}/edits"),
            ADMIN_KEY,
            &json!({"reason": "more", "quantities": [{"line_id": 1, "quantity": 4}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "out_of_stock"),
        "{}",
        r.body
    );
    let after = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await.body;
    assert_eq!(before, after);
    let stock = app.get("/v1/inventory/TEA", ADMIN_KEY).await.body;
    assert!(stock.to_string().contains("\"reserved\":1"), "{stock}");
    let r = app
        .post(
            &format!("/v1/orders/{id}/edits"),
            ADMIN_KEY,
            &json!({"reason": "more", "quantities": [{"line_id": 1, "quantity": 3}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order"]["amounts"]["paid_amount"], "38.00");
    let stock = app.get("/v1/inventory/TEA", ADMIN_KEY).await.body;
    assert!(stock.to_string().contains("\"reserved\":3"), "{stock}");
}

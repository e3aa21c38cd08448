use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_every_backend!(bad_input_gets_a_clear_error_naming_the_field_and_writes_nothing);

fn with(mut v: Value, path: &[&str], new: Value) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = match p.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[*p],
        };
    }
    let last = path[path.len() - 1];
    if new.is_null() {
        cur.as_object_mut().unwrap().remove(last);
    } else {
        cur[last] = new;
    }
    v
}

async fn bad_input_gets_a_clear_error_naming_the_field_and_writes_nothing(app: TestApp) {
    let good = order_json("s1", "BAD-1");
    let cases: Vec<(&str, String, StatusCode, &str, &str)> = vec![
        (
            "malformed JSON",
            "{\"shop_id\": ".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "",
        ),
        (
            "not an object",
            "[1,2]".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            "",
        ),
        (
            "unknown field",
            with(good.clone(), &["colour"], json!("red")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            "colour",
        ),
        (
            "unknown nested field",
            with(good.clone(), &["lines", "0", "colour"], json!("red")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            "lines[0].colour",
        ),
        (
            "missing field",
            with(good.clone(), &["receiver"], Value::Null).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "receiver",
        ),
        (
            "wrong type",
            with(good.clone(), &["lines", "0", "quantity"], json!("two")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            "lines[0].quantity",
        ),
        (
            "zero quantity",
            with(good.clone(), &["lines", "1", "quantity"], json!(0)).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must_be_positive",
            "lines[1].quantity",
        ),
        (
            "negative quantity",
            with(good.clone(), &["lines", "0", "quantity"], json!(-1)).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            "lines[0].quantity",
        ),
        (
            "money as float",
            with(good.clone(), &["lines", "0", "unit_price"], json!(49.9)).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "money_must_be_string",
            "lines[0].unit_price",
        ),
        (
            "money as integer",
            with(good.clone(), &["amounts", "shipping_fee"], json!(8)).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "money_must_be_string",
            "amounts.shipping_fee",
        ),
        (
            "three decimals",
            with(good.clone(), &["lines", "2", "unit_price"], json!("9.999")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_decimals",
            "lines[2].unit_price",
        ),
        (
            "negative money",
            with(good.clone(), &["amounts", "shipping_fee"], json!("-1.00")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must_not_be_negative",
            "amounts.shipping_fee",
        ),
        (
            "no lines",
            with(good.clone(), &["lines"], json!([])).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "lines",
        ),
        (
            "unknown currency",
            with(good.clone(), &["amounts", "currency"], json!("XBT")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
            "amounts.currency",
        ),
        (
            "totals that do not add up",
            with(good.clone(), &["amounts", "paid_amount"], json!("1.00")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "does_not_add_up",
            "amounts.paid_amount",
        ),
        (
            "time without offset",
            with(good.clone(), &["created_at"], json!("2026-11-11 00:00:05")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_time",
            "created_at",
        ),
        (
            "bad phone",
            with(good.clone(), &["receiver", "phone"], json!("call me")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone",
            "receiver.phone",
        ),
        (
            "empty sku",
            with(good.clone(), &["lines", "0", "sku"], json!(" ")).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "lines[0].sku",
        ),
        (
            "oversized body",
            with(good.clone(), &["seller_memo"], json!("x".repeat(1_100_000))).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "",
        ),
    ];
    for (what, body, status, code, field) in cases {
        let r = app
            .call(
                Method::POST,
                "/v1/orders",
                Some(ADMIN_KEY),
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (status, code, field),
            "{what}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        assert!(
            !r.body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}: a message for people"
        );
        assert_eq!(r.headers["content-type"], "application/json", "{what}");
    }
    assert_eq!(app.order_count().await, 0, "no partial write");
    assert_eq!(app.event_count().await, 0);
    let r = app.get("/v1/orders/not-a-uuid", ADMIN_KEY).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "order_id")
    );
    let r = app
        .get("/v1/orders/01a20000-0000-7000-8000-000000000000", ADMIN_KEY)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = app.get("/v1/nothing-here", ADMIN_KEY).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

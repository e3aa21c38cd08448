//! Carrier accounts per tenant (issue 19): configured by an admin, secrets kept encrypted and never
//! answered, every field bounded, the base URL under the outbound URL policy; and the shipment
//! facts waybills need (SKU weights, warehouse senders) in the master data, bounded too.

use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_every_backend!(
    an_admin_configures_a_carrier_and_no_answer_ever_shows_its_secrets,
    carrier_accounts_refuse_what_they_cannot_use_naming_the_field,
    weights_and_senders_are_master_data_bounded_and_checked,
    a_carriers_signed_tracking_push_moves_the_order_once_and_a_forged_one_nothing,
);

async fn put(app: &TestApp, path: &str, key: &str, body: &Value) -> Resp {
    app.call(Method::PUT, path, Some(key), Some(&body.to_string()), &[])
        .await
}

async fn delete(app: &TestApp, path: &str, key: &str) -> Resp {
    app.call(Method::DELETE, path, Some(key), None, &[]).await
}

const SECRET: &str = "sf-check-word-0a1b2c3d";

fn sf() -> Value {
    json!({"base_url": "http://127.0.0.1:9/", "app_key": "PARTNER-0042", "secret": SECRET,
           "customer_code": "7551234567", "priority": 1, "track_per_minute": 30})
}

async fn an_admin_configures_a_carrier_and_no_answer_ever_shows_its_secrets(app: TestApp) {
    let r = put(&app, "/v1/carriers/sf", ADMIN_KEY, &sf()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["carrier"].as_str(),
            r.body["base_url"].as_str(),
            r.body["app_key"].as_str(),
            r.body["has_secret"].as_bool(),
            r.body["has_access_token"].as_bool(),
            r.body["enabled"].as_bool(),
            r.body["track_per_minute"].as_u64(),
            r.body["version"].as_i64(),
        ),
        (
            Some("sf"),
            Some("http://127.0.0.1:9"),
            Some("PART****"),
            Some(true),
            Some(false),
            Some(true),
            Some(30),
            Some(1)
        )
    );
    // Changed without repeating the secret: it is kept.
    let mut change = sf();
    change.as_object_mut().unwrap().remove("secret");
    change["enabled"] = json!(false);
    let r = put(&app, "/v1/carriers/sf", ADMIN_KEY, &change).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["has_secret"].as_bool(), r.body["version"].as_i64()),
        (Some(true), Some(2))
    );
    // An ops key reads the list; nothing of any answer or event holds a secret.
    let ops = app.key("ops", None, false).await;
    let list = app.get("/v1/carriers", &ops).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["carriers"][0]["enabled"], false);
    let events = app.get("/v1/events?limit=1000", ADMIN_KEY).await;
    let configured: Vec<&Value> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "carrier.configured")
        .collect();
    assert_eq!(configured.len(), 2);
    assert_eq!(configured[1]["payload"]["version"], 2);
    for text in [
        String::from_utf8_lossy(&list.bytes).to_string(),
        String::from_utf8_lossy(&events.bytes).to_string(),
    ] {
        assert!(
            !text.contains(SECRET) && !text.contains("PARTNER-0042"),
            "{text}"
        );
    }
    // Not in the database either: the store keeps ciphertext (the store's suite reads the rows).
    // Nor for another tenant, nor for a key that may not configure carriers.
    let other = app.get("/v1/carriers", OTHER_TENANT_KEY).await;
    assert_eq!(other.body["carriers"], json!([]));
    assert_eq!(
        put(&app, "/v1/carriers/sf", &ops, &sf()).await.status,
        StatusCode::FORBIDDEN
    );
    // Carriers that need more than a key and secret say so.
    let need = [
        ("jd", "access_token"),
        ("yto", "access_token"),
        ("jt", "customer_password"),
    ];
    for (carrier, field) in need {
        let r = put(&app, &format!("/v1/carriers/{carrier}"), ADMIN_KEY, &sf()).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, "required", field),
            "{carrier}"
        );
    }
    let mut jt = sf();
    jt["customer_password"] = json!("jt-pass");
    assert_eq!(
        put(&app, "/v1/carriers/jt", ADMIN_KEY, &jt).await.status,
        StatusCode::OK
    );
    // A new account needs its secret.
    let r = put(&app, "/v1/carriers/zto", ADMIN_KEY, &change).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "required", "secret")
    );
    // Removed: gone from the list, an event, a second removal is 404.
    let r = delete(&app, "/v1/carriers/sf", ADMIN_KEY).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let list = app.get("/v1/carriers", ADMIN_KEY).await;
    assert_eq!(
        list.body["carriers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["carrier"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["jt"]
    );
    assert_eq!(
        delete(&app, "/v1/carriers/sf", ADMIN_KEY).await.status,
        StatusCode::NOT_FOUND
    );
    let r = put(&app, "/v1/carriers/dhl", ADMIN_KEY, &sf()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "unknown_carrier")
    );
}

async fn carrier_accounts_refuse_what_they_cannot_use_naming_the_field(app: TestApp) {
    let with = |k: &str, v: Value| {
        let mut b = sf();
        b[k] = v;
        b
    };
    let cases = [
        (
            with("base_url", json!("ftp://x")),
            "invalid_url",
            "base_url",
        ),
        (with("base_url", json!("sf-api")), "invalid_url", "base_url"),
        (
            with("base_url", json!("http://u:p@127.0.0.1:9")),
            "credentials_in_url",
            "base_url",
        ),
        (
            with("base_url", json!("http://127.0.0.1:9/?k=v")),
            "invalid_url",
            "base_url",
        ),
        (
            with("base_url", json!(format!("http://h/{}", "p".repeat(3000)))),
            "too_long",
            "base_url",
        ),
        (
            with("app_key", json!("a".repeat(257))),
            "too_long",
            "app_key",
        ),
        (with("app_key", json!("  ")), "required", "app_key"),
        (
            with("customer_code", json!("")),
            "required",
            "customer_code",
        ),
        (
            with("secret", json!("s".repeat(4097))),
            "too_long",
            "secret",
        ),
        (with("priority", json!(1001)), "out_of_range", "priority"),
        (
            with("track_per_minute", json!(0)),
            "out_of_range",
            "track_per_minute",
        ),
        (
            with("track_per_minute", json!(6001)),
            "out_of_range",
            "track_per_minute",
        ),
    ];
    for (body, code, field) in cases {
        let r = put(&app, "/v1/carriers/sf", ADMIN_KEY, &body).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, code, field),
            "{body}"
        );
    }
    let r = put(
        &app,
        "/v1/carriers/sf",
        ADMIN_KEY,
        &with("sandbox", json!(true)),
    )
    .await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    assert_eq!(
        app.get("/v1/carriers", ADMIN_KEY).await.body["carriers"],
        json!([])
    );
    // The outbound URL policy: a hub that may not call private addresses refuses one here.
    let backend = if app.pg.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let strict = spawn_app_with(
        backend,
        orderhub_core::outbound::OutboundPolicy {
            allow_private: false,
        },
    )
    .await
    .unwrap();
    for url in [
        "http://127.0.0.1:9",
        "http://169.254.169.254",
        "http://10.0.0.8",
    ] {
        let r = put(
            &strict,
            "/v1/carriers/sf",
            ADMIN_KEY,
            &with("base_url", json!(url)),
        )
        .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "private_address",
                "base_url"
            ),
            "{url}"
        );
    }
}

async fn weights_and_senders_are_master_data_bounded_and_checked(app: TestApp) {
    let sku = |w: Value| json!({"title": "tee", "weight_kg": w});
    assert_eq!(
        put(&app, "/v1/skus/TEE", ADMIN_KEY, &sku(json!("1.25")))
            .await
            .status,
        StatusCode::OK
    );
    for (w, code) in [
        (json!("0"), "out_of_range"),
        (json!("-1"), "out_of_range"),
        (json!("1000.001"), "out_of_range"),
        (json!("1.2345"), "too_precise"),
        (json!("heavy"), "invalid_number"),
        (json!("9".repeat(40)), "too_long"),
    ] {
        let r = put(&app, "/v1/skus/TEE", ADMIN_KEY, &sku(w.clone())).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, code, "weight_kg"),
            "{w}"
        );
    }
    let sender = json!({"name": "李仓管", "phone": "13900001111", "province": "广东省",
                        "city": "广州市", "district": "白云区", "detail": "太和镇 8 号"});
    let wh = |sender: Value, parcel: Value| json!({"name": "广州仓", "priority": 1, "sender": sender, "parcel_max_kg": parcel});
    let r = put(
        &app,
        "/v1/warehouses/GZ",
        ADMIN_KEY,
        &wh(sender.clone(), json!("20")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let with = |k: &str, v: Value| {
        let mut s = sender.clone();
        s[k] = v;
        s
    };
    for (body, code, field) in [
        (
            wh(with("city", json!(" ")), json!("20")),
            "required",
            "sender.city",
        ),
        (
            wh(with("phone", json!("")), json!("20")),
            "required",
            "sender.phone",
        ),
        (
            wh(with("phone", json!("1".repeat(33))), json!("20")),
            "too_long",
            "sender.phone",
        ),
        (
            wh(with("detail", json!("路".repeat(129))), json!("20")),
            "too_long",
            "sender.detail",
        ),
        (
            wh(sender.clone(), json!("0")),
            "out_of_range",
            "parcel_max_kg",
        ),
    ] {
        let r = put(&app, "/v1/warehouses/GZ", ADMIN_KEY, &body).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, code, field),
            "{body}"
        );
    }
    // What was stored: the warehouse's sender, read back by the store (and not in clear).
    let t = orderhub_domain::TenantId::parse("default").unwrap();
    let stored = app.store.read(move |r| r.warehouses(&t)).await.unwrap();
    let s = stored[0].sender.as_ref().unwrap();
    assert_eq!(
        (s.city.as_str(), s.phone.expose()),
        ("广州市", "13900001111")
    );
    assert_eq!(stored[0].parcel_max_kg, Some("20".parse().unwrap()));
}

async fn order_view(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await.body
}

/// POSTs a carrier's push (a form, with the headers it signs in, as the carrier sends it) to the
/// tenant's push URL.
async fn push(app: &TestApp, carrier: &str, signed: orderhub_carriers::SignedPush) -> Resp {
    let mut req = app
        .client
        .post(format!(
            "{}/v1/tenants/default/carriers/{carrier}/track-push",
            app.base
        ))
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in &signed.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let r = req.body(signed.body).send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        bytes,
    }
}

/// A shipped order per carrier taking pushes — SF waybill `SF1`, J&T waybill `JT1` (signed in its
/// headers): the carrier pushes "picked up", then "delivered" — the order goes in transit, then
/// delivered, with no poll; the same push again changes nothing; a push signed with another
/// secret is refused (401) and moves nothing; a push for a waybill no order holds is acknowledged
/// and ignored.
async fn a_carriers_signed_tracking_push_moves_the_order_once_and_a_forged_one_nothing(
    app: TestApp,
) {
    use orderhub_carriers::{CarrierKind, TrackStatus, signed_track_push};
    const JT_KEY: &str = "jt-private-key-9f8e7d";
    let jt = json!({"base_url": "http://127.0.0.1:9/", "app_key": "178337126125932605",
                    "secret": JT_KEY, "customer_code": "J0086474299",
                    "customer_password": "H5CD3zE6", "priority": 2, "track_per_minute": 30});
    for (kind, account, secret, waybill, ack) in [
        (
            CarrierKind::Sf,
            sf(),
            SECRET,
            "SF1",
            ("return_code", "0000"),
        ),
        (CarrierKind::Jt, jt, JT_KEY, "JT1", ("code", "1")),
    ] {
        let carrier = kind.code();
        let app_key = account["app_key"].as_str().unwrap().to_owned();
        let r = put(
            &app,
            &format!("/v1/carriers/{carrier}"),
            ADMIN_KEY,
            &account,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{carrier}: {:?}", r.body);
        let id = app
            .create(ADMIN_KEY, "s1", &format!("PUSH-{carrier}"))
            .await
            .body["order_id"]
            .as_str()
            .unwrap()
            .to_owned();
        for (a, b) in [
            ("pay", json!({})),
            ("allocate", json!({"warehouse_id": "WH1"})),
            ("release", json!({})),
            (
                "ship",
                json!({"carrier": carrier, "tracking_no": waybill, "logistics_no": "L1"}),
            ),
        ] {
            let r = app
                .post(&format!("/v1/orders/{id}/{a}"), ADMIN_KEY, &b)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{carrier} {a}: {:?}", r.body);
        }
        let now = chrono::Utc::now();
        let signed = |secret: &str, no: &str, st: TrackStatus| {
            signed_track_push(kind, &app_key, secret, no, &[(st, now)]).unwrap()
        };
        // Forged: another secret. Refused, and the order is as it was.
        let before = order_view(&app, &id).await;
        let r = push(
            &app,
            carrier,
            signed("not-the-secret", waybill, TrackStatus::PickedUp),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{carrier}: {:?}",
            r.body
        );
        assert_eq!(order_view(&app, &id).await["version"], before["version"]);
        assert_eq!(before["status"], "shipped");
        // Picked up: in transit, acknowledged the way the carrier expects.
        let r = push(
            &app,
            carrier,
            signed(secret, waybill, TrackStatus::PickedUp),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{carrier}: {:?}", r.body);
        assert_eq!(r.body[ack.0], ack.1, "{carrier}: {:?}", r.body);
        assert_eq!(
            order_view(&app, &id).await["status"],
            "in_transit",
            "{carrier}"
        );
        // Delivered, then the same push again: one change only.
        let delivered = signed(secret, waybill, TrackStatus::Delivered);
        let r = push(&app, carrier, delivered.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{carrier}: {:?}", r.body);
        let after = order_view(&app, &id).await;
        assert_eq!(after["status"], "delivered", "{carrier}");
        let r = push(&app, carrier, delivered).await;
        assert_eq!(r.status, StatusCode::OK, "{carrier}: {:?}", r.body);
        assert_eq!(
            order_view(&app, &id).await["version"],
            after["version"],
            "{carrier}: nothing changed"
        );
        // A waybill no order holds: acknowledged, ignored.
        let r = push(
            &app,
            carrier,
            signed(secret, "NOBODY-1", TrackStatus::Delivered),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{carrier}: {:?}", r.body);
    }
    // J&T's signature is in its headers: the right body without them is refused.
    let mut bare = signed_track_push(
        CarrierKind::Jt,
        "178337126125932605",
        JT_KEY,
        "JT1",
        &[(TrackStatus::Exception, chrono::Utc::now())],
    )
    .unwrap();
    bare.headers.clear();
    let r = push(&app, "jt", bare).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    // A carrier whose pushes are not taken is told so.
    let r = push(
        &app,
        "ems",
        orderhub_carriers::SignedPush {
            headers: Vec::new(),
            body: b"x=1".to_vec(),
        },
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
}

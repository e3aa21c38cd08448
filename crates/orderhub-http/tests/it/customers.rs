//! Customers and invoice profiles over HTTP (issue 23): a bad tax id is a 400 naming the field
//! and the rule; an order of a linked buyer takes the profile's current version, an earlier
//! order keeps its own; the scan lists the order whose profile moved on; an event per change.

use crate::app::*;
use crate::on_every_backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    a_linked_buyers_orders_take_the_current_profile_version_and_the_scan_sees_changes
);
on_every_backend!(a_bad_profile_is_refused_naming_field_and_rule);

fn profile(title: &str, tax_id: &str) -> Value {
    json!({"title": title, "tax_id": tax_id, "kind": "normal", "medium": "electronic"})
}

async fn customer(app: &TestApp) -> String {
    let r = app
        .post("/v1/customers", ADMIN_KEY, &json!({"name": "张三"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["customer_id"].as_str().unwrap().to_owned()
}

async fn order(app: &TestApp, external: &str) -> Value {
    let mut o = order_json("shop-a", external);
    o["buyer"]["id"] = json!("tb-buyer-1");
    let r = app.post("/v1/orders", ADMIN_KEY, &o).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn a_linked_buyers_orders_take_the_current_profile_version_and_the_scan_sees_changes(
    app: TestApp,
) {
    let c = customer(&app).await;
    let link = json!({"channel": "taobao", "buyer_id": "tb-buyer-1"});
    let r = app
        .post(&format!("/v1/customers/{c}/buyers"), ADMIN_KEY, &link)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app
        .post(
            &format!("/v1/customers/{c}/invoice-profiles"),
            ADMIN_KEY,
            &profile("华为技术有限公司", "914403001922038216"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let pid = r.body["profile_id"].as_str().unwrap().to_owned();
    let first = order(&app, "INV-1").await;
    assert_eq!(first["invoice_profile_id"], json!(pid));
    assert_eq!(first["invoice_profile_version"], 1);
    let mut v2 = profile("阿里巴巴（中国）有限公司", "91330100716105852F");
    v2["expected_version"] = json!(1);
    let r = app
        .post(
            &format!("/v1/customers/{c}/invoice-profiles/{pid}/versions"),
            ADMIN_KEY,
            &v2,
        )
        .await;
    assert_eq!(
        (r.status, &r.body["version"]),
        (StatusCode::CREATED, &json!(2))
    );
    // The same expected version again: someone else's change came first.
    let r = app
        .post(
            &format!("/v1/customers/{c}/invoice-profiles/{pid}/versions"),
            ADMIN_KEY,
            &v2,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "profile_version_moved");
    let second = order(&app, "INV-2").await;
    assert_eq!(second["invoice_profile_version"], 2);
    let again = app
        .get(
            &format!("/v1/orders/{}", first["order_id"].as_str().unwrap()),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(again.body["invoice_profile_version"], 1);
    // The timeline: both versions, newest first, the old one as it was.
    let t = app
        .get(
            &format!("/v1/customers/{c}/invoice-profiles/{pid}"),
            ADMIN_KEY,
        )
        .await;
    let tax: Vec<&str> = t.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["tax_id"].as_str().unwrap())
        .collect();
    assert_eq!(tax, ["91330100716105852F", "914403001922038216"]);
    // Without pii:read the title and the tax id come masked.
    let finance = app.key("finance", None, false).await;
    let t = app
        .get(
            &format!("/v1/customers/{c}/invoice-profiles/{pid}"),
            &finance,
        )
        .await;
    let v = &t.body["versions"][0];
    assert_eq!(v["tax_id"], "913****852F", "{v}");
    assert!(
        v["title"].as_str().unwrap().ends_with('*'),
        "the title masked: {v}"
    );
    // The scan: the first order holds an outdated version; then the profile is deactivated.
    let s = app.get("/v1/invoice-profiles/scan", ADMIN_KEY).await;
    assert_eq!(s.status, StatusCode::OK, "{:?}", s.body);
    assert_eq!(
        s.body["findings"].as_array().unwrap().len(),
        1,
        "{:?}",
        s.body
    );
    assert_eq!(s.body["findings"][0]["order_id"], first["order_id"]);
    assert_eq!(s.body["findings"][0]["reasons"], json!(["outdated"]));
    let r = app
        .post(
            &format!("/v1/customers/{c}/invoice-profiles/{pid}/deactivate"),
            ADMIN_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let s = app
        .get("/v1/invoice-profiles/scan?limit=1", ADMIN_KEY)
        .await;
    assert_eq!(
        s.body["findings"][0]["reasons"],
        json!(["deactivated", "outdated"])
    );
    let cursor = s.body["next_cursor"].as_str().unwrap().to_owned();
    let s = app
        .get(
            &format!("/v1/invoice-profiles/scan?limit=1&cursor={cursor}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(s.body["findings"][0]["order_id"], second["order_id"]);
    assert_eq!(s.body["findings"][0]["reasons"], json!(["deactivated"]));
    // A third order of the buyer takes no profile: none is active.
    let third = order(&app, "INV-3").await;
    assert_eq!(third["invoice_profile_id"], Value::Null);
    // Each change is an event.
    let e = app.get("/v1/events?limit=200", ADMIN_KEY).await;
    let types: Vec<&str> = e.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| t.starts_with("customer.") || t.starts_with("invoice_profile."))
        .collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "customer.linked",
            "invoice_profile.versioned",
            "invoice_profile.versioned",
            "invoice_profile.versioned"
        ]
    );
}

async fn a_bad_profile_is_refused_naming_field_and_rule(app: TestApp) {
    let c = customer(&app).await;
    let path = format!("/v1/customers/{c}/invoice-profiles");
    let cases = [
        (profile("x", "914403001922038217"), "tax_id", "check_digit"),
        (profile("x", "91440300192203821I"), "tax_id", "charset"),
        (profile("x", "440300192203821"), "tax_id", "length"),
        (profile("", "914403001922038216"), "title", "required"),
        (
            json!({"title": "x", "tax_id": "914403001922038216", "kind": "vat"}),
            "kind",
            "invalid_value",
        ),
        (
            json!({"title": "x", "tax_id": "914403001922038216", "kind": "special"}),
            "bank_name",
            "required_for_special",
        ),
    ];
    for (body, field, rule) in cases {
        let r = app.post(&path, ADMIN_KEY, &body).await;
        assert!(r.status.is_client_error(), "{body}: {:?}", r.body);
        assert_eq!(
            (
                r.body["error"]["field"].as_str(),
                r.body["error"]["code"].as_str()
            ),
            (Some(field), Some(rule)),
            "{body}: {:?}",
            r.body
        );
    }
    let finance = app.key("finance", None, false).await;
    let got = app.get(&format!("/v1/customers/{c}"), &finance).await;
    assert_eq!(got.body["invoice_profiles"], json!([]), "nothing written");
    assert_eq!(got.body["name"], "张*", "masked without pii:read");
}

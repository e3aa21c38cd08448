//! Rule sets over HTTP (issue 22): a refused rule names its place, the author's key cannot
//! approve, and the sandbox's decisions for a fixed history equal what the live path decides for
//! the same orders once that draft is published.

use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_every_backend!(the_sandbox_decides_what_the_live_path_decides_once_the_draft_is_published);
on_every_backend!(a_stored_set_that_no_longer_compiles_is_a_409_naming_it_never_a_500);

async fn put(app: &TestApp, path: &str, body: Value) {
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

/// SKU-1 weighs 1.5 kg, SKU-2 0.2 kg; plenty of each in WH1.
async fn goods(app: &TestApp) {
    put(
        app,
        "/v1/skus/SKU-1",
        json!({"title": "Tee", "weight_kg": "1.5"}),
    )
    .await;
    put(
        app,
        "/v1/skus/SKU-2",
        json!({"title": "Cap", "weight_kg": "0.2"}),
    )
    .await;
    put(
        app,
        "/v1/warehouses/WH1",
        json!({"name": "WH1", "priority": 0, "regions": []}),
    )
    .await;
    for sku in ["SKU-1", "SKU-2"] {
        let body = json!({"sku": sku, "warehouse_id": "WH1", "quantity": 1000});
        let r = app.post("/v1/inventory/receipts", ADMIN_KEY, &body).await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
}

/// Order `n` of a fixed history: its city, goods and quantities vary with `n`.
fn history(n: usize, ext: &str) -> Value {
    let city = ["乌鲁木齐市", "杭州市", "乌鲁木齐市", "成都市"][n % 4];
    let mut o = order_json("shop-a", ext);
    o["receiver"]["city"] = json!(city);
    o["lines"] = json!([
        {"sku": "SKU-1", "title": "Tee", "quantity": 1 + n % 3, "unit_price": "49.90"},
        {"sku": "SKU-2", "title": "Cap", "quantity": 1 + n % 5, "unit_price": "20.00"}
    ]);
    o
}

/// Creates and pays order `n` under `ext`; returns it as answered after payment.
async fn paid(app: &TestApp, n: usize, ext: &str) -> Value {
    let r = app.post("/v1/orders", ADMIN_KEY, &history(n, ext)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["order_id"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

fn rules() -> Value {
    json!([
        {"id": "H1", "name": "many caps", "kind": "hold", "condition": "quantity > 5"},
        {"id": "T1", "name": "far", "kind": "tag", "condition": "city.contains('乌鲁木齐')",
         "action": {"tags": ["far-west"]}},
        {"id": "C1", "name": "heavy to Urumqi", "kind": "carrier",
         "condition": "city.contains('乌鲁木齐') && weight_kg > 2.0",
         "action": {"carrier": "ems"}, "priority": 1}
    ])
}

async fn the_sandbox_decides_what_the_live_path_decides_once_the_draft_is_published(app: TestApp) {
    goods(&app).await;
    let second_admin = app.key("admin", None, false).await;
    const N: usize = 12;
    let mut ids = Vec::new();
    for n in 0..N {
        ids.push(paid(&app, n, &format!("H-{n}")).await["order_id"].clone());
    }
    // A rule that names an unknown fact: 400 naming the rule, its field and the place.
    let bad = json!({"name": "bad", "rules": [
        {"id": "X1", "name": "x", "kind": "hold", "condition": "channel == 'jd' &&\n amount > 1"}
    ]});
    let r = app.post("/v1/rule-sets", ADMIN_KEY, &bad).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (
            StatusCode::BAD_REQUEST,
            "invalid_rules",
            "rules.X1.condition"
        )
    );
    assert_eq!(r.body["errors"][0]["at"], json!([2, 2]), "{:?}", r.body);

    let r = app
        .post(
            "/v1/rule-sets",
            ADMIN_KEY,
            &json!({"name": "v1", "rules": rules()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let set = r.body["rule_set_id"].as_str().unwrap().to_owned();
    // The sandbox over the history, nothing written.
    let events = app.event_count().await;
    let r = app
        .get(&format!("/v1/rule-sets/{set}/sandbox?days=1"), ADMIN_KEY)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let report = r.body["report"].clone();
    assert_eq!(report["orders"], json!(N));
    assert_eq!(report["live_version"], Value::Null);
    assert_eq!(app.event_count().await, events, "the sandbox wrote nothing");
    // Each order's decisions by the draft.
    let mut expected = Vec::new();
    for id in &ids {
        let r = app
            .post(
                &format!("/v1/rule-sets/{set}/test"),
                ADMIN_KEY,
                &json!({"order_id": id}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        expected.push(r.body["decisions"].clone());
    }
    let held = expected.iter().filter(|d| !d["hold"].is_null()).count();
    let ems = expected.iter().filter(|d| !d["carrier"].is_null()).count();
    assert!(
        held > 0 && held < N && ems > 0 && ems < N,
        "a history that tells: {held} held, {ems} ems"
    );
    assert_eq!(report["would_hold"]["count"], json!(held));
    assert_eq!(report["carrier_mix_draft"]["ems"], json!(ems));

    // The author's key cannot approve; another admin's can; then it is published.
    let path = |step: &str| format!("/v1/rule-sets/{set}/{step}");
    assert_eq!(
        app.post(&path("submit"), ADMIN_KEY, &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let r = app.post(&path("approve"), ADMIN_KEY, &json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "own_rule_set")
    );
    assert_eq!(
        app.post(&path("approve"), &second_admin, &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let r = app.post(&path("publish"), &second_admin, &json!({})).await;
    assert_eq!(
        (r.status, r.body["state"].clone()),
        (StatusCode::OK, json!("published"))
    );
    let r = app.get("/v1/rule-sets", ADMIN_KEY).await;
    assert_eq!(r.body["live_version"], r.body["rule_sets"][0]["version"]);

    // The same orders again, through the live path: the same decisions.
    for (n, d) in expected.iter().enumerate() {
        let o = paid(&app, n, &format!("L-{n}")).await;
        let want_status = if d["hold"].is_null() {
            "paid"
        } else {
            "on_hold"
        };
        assert_eq!(o["status"], json!(want_status), "order {n}: {d}");
        let carrier = d["carrier"][0].clone();
        assert_eq!(
            o["fulfillment"]["preferred_carrier"], carrier,
            "order {n}: {o}"
        );
        assert_eq!(o["tags"], d["tags"], "order {n}");
        if let Some(rule) = d["hold"]["rule"].as_str() {
            let reason = o["hold_reason"].as_str().unwrap_or_default();
            assert!(
                reason.starts_with(&format!("held by rule {rule} v")),
                "{reason}"
            );
        }
    }
}

/// A set stored before a stricter check (an upgrade) that no longer compiles: its test and its
/// sandbox answer 409 `rule_set_not_compilable` naming its version, never a 500.
async fn a_stored_set_that_no_longer_compiles_is_a_409_naming_it_never_a_500(app: TestApp) {
    goods(&app).await;
    let id = paid(&app, 0, "NC-0").await["order_id"].clone();
    let r = app
        .post(
            "/v1/rule-sets",
            ADMIN_KEY,
            &json!({"name": "v1", "rules": rules()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let good: uuid::Uuid = r.body["rule_set_id"].as_str().unwrap().parse().unwrap();
    // The same set as an older release might have stored it, as version 2.
    let t = orderhub_domain::TenantId::parse("default").unwrap();
    let set = uuid::Uuid::now_v7();
    app.store
        .write(0, move |tx| {
            let mut rec = tx.rule_set_get(&t, good)?.unwrap();
            rec.rule_set_id = set;
            rec.version = 2;
            rec.rules[0].condition = "paid_cents >".into();
            tx.rule_set_insert(&rec)?;
            Ok(())
        })
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/v1/rule-sets/{set}/test"),
            ADMIN_KEY,
            &json!({"order_id": id}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "rule_set_not_compilable"),
        "{:?}",
        r.body
    );
    let r = app
        .get(&format!("/v1/rule-sets/{set}/sandbox?days=1"), ADMIN_KEY)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "rule_set_not_compilable"),
        "{:?}",
        r.body
    );
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("v2"),
        "{:?}",
        r.body
    );
}

on_every_backend!(
    blacklisted_buyers_phones_and_addresses_are_held_and_a_buyers_first_order_is_told
);

/// An order of `buyer` to `phone` at `detail` (district 西湖区, Hangzhou), created and paid.
async fn bought(app: &TestApp, ext: &str, buyer: &str, phone: &str, detail: &str) -> Value {
    let mut o = history(1, ext);
    o["buyer"] = json!({"id": buyer, "nick": "n"});
    o["receiver"]["phone"] = json!(phone);
    o["receiver"]["detail"] = json!(detail);
    let r = app.post("/v1/orders", ADMIN_KEY, &o).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["order_id"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn blacklisted_buyers_phones_and_addresses_are_held_and_a_buyers_first_order_is_told(
    app: TestApp,
) {
    goods(&app).await;
    let second_admin = app.key("admin", None, false).await;
    // Entries go in as values and come back without them.
    for (kind, value) in [
        ("buyer", "tb-bad"),
        ("phone", "+86 139-0000-9999"),
        ("address", "浙江省 杭州市 西湖区 黑名单路1号"),
    ] {
        let body = json!({"kind": kind, "value": value, "note": "chargebacks"});
        let r = app.post("/v1/blacklist", ADMIN_KEY, &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["kind"], json!(kind));
        // The same value, written otherwise: the same entry.
        if kind == "phone" {
            let again = json!({"kind": "phone", "value": "13900009999"});
            let r = app.post("/v1/blacklist", ADMIN_KEY, &again).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::CONFLICT, "blacklist_entry_exists")
            );
        }
    }
    let r = app
        .post(
            "/v1/blacklist",
            ADMIN_KEY,
            &json!({"kind": "email", "value": "x"}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "kind")
    );
    let r = app
        .post(
            "/v1/blacklist",
            ADMIN_KEY,
            &json!({"kind": "phone", "value": " - "}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "value")
    );
    let r = app.get("/v1/blacklist", ADMIN_KEY).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["entries"].as_array().unwrap().len(), 3);
    let listed = r.body.to_string();
    for clear in ["tb-bad", "9999", "黑名单"] {
        assert!(!listed.contains(clear), "{listed}");
    }

    let set = json!({"name": "risk", "rules": [
        {"id": "B1", "name": "blacklisted", "kind": "hold",
         "condition": "buyer_blacklisted || phone_blacklisted || address_blacklisted"},
        {"id": "F1", "name": "first order", "kind": "tag", "condition": "buyer_order_count == 0",
         "action": {"tags": ["first-order"]}},
        {"id": "F2", "name": "regular", "kind": "tag", "condition": "buyer_order_count >= 2",
         "action": {"tags": ["regular"]}}
    ]});
    let r = app.post("/v1/rule-sets", ADMIN_KEY, &set).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let set = r.body["rule_set_id"].as_str().unwrap().to_owned();
    let path = |step: &str| format!("/v1/rule-sets/{set}/{step}");
    app.post(&path("submit"), ADMIN_KEY, &json!({})).await;
    let r = app.post(&path("approve"), ADMIN_KEY, &json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "own_rule_set")
    );
    for step in ["approve", "publish"] {
        let r = app.post(&path(step), &second_admin, &json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {:?}", r.body);
    }

    // One buyer's first, second and third orders.
    let tags = |o: &Value| o["tags"].clone();
    let first = bought(&app, "B-1", "tb-ok", "13800000001", "文三路1号").await;
    assert_eq!(
        (first["status"].clone(), tags(&first)),
        (json!("paid"), json!(["first-order"]))
    );
    let second = bought(&app, "B-2", "tb-ok", "13800000001", "文三路1号").await;
    assert_eq!(tags(&second), json!([]));
    let third = bought(&app, "B-3", "tb-ok", "13800000001", "文三路1号").await;
    assert_eq!(tags(&third), json!(["regular"]));
    // Each list matches on its own, whatever the spacing it was written with.
    for (ext, buyer, phone, detail) in [
        ("K-1", "tb-bad", "13800000002", "文三路2号"),
        ("K-2", "tb-new", "139 0000 9999", "文三路3号"),
        ("K-3", "tb-new2", "13800000003", "黑名单路1号"),
    ] {
        let o = bought(&app, ext, buyer, phone, detail).await;
        assert_eq!(o["status"], json!("on_hold"), "{ext}: {o}");
        assert!(
            o["hold_reason"]
                .as_str()
                .unwrap_or_default()
                .starts_with("held by rule B1 v"),
            "{o}"
        );
    }
    // The rule test reads the same facts as the live path.
    let r = app
        .post(
            &path("test"),
            ADMIN_KEY,
            &json!({"order_id": second["order_id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["decisions"]["tags"], json!([]), "{:?}", r.body);
    // Off the list: the next order of that buyer is not held.
    let r = app.get("/v1/blacklist", ADMIN_KEY).await;
    for e in r.body["entries"].as_array().unwrap() {
        let id = e["entry_id"].as_str().unwrap();
        let r = app
            .call(
                Method::DELETE,
                &format!("/v1/blacklist/{id}"),
                Some(ADMIN_KEY),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    let o = bought(&app, "K-4", "tb-bad", "13800000002", "文三路2号").await;
    assert_eq!(o["status"], json!("paid"), "{o}");
    assert_eq!(tags(&o), json!([]), "tb-bad's second order (K-1 before it)");
}

on_every_backend!(
    a_gift_rule_adds_free_lines_that_reserve_stock_and_a_gift_out_of_stock_is_skipped
);

/// Writes, submits, approves (another admin) and publishes `rules`; the author cannot approve.
async fn live(app: &TestApp, rules: Value) -> String {
    let second_admin = app.key("admin", None, false).await;
    let r = app
        .post(
            "/v1/rule-sets",
            ADMIN_KEY,
            &json!({"name": "s", "rules": rules}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let set = r.body["rule_set_id"].as_str().unwrap().to_owned();
    let path = |step: &str| format!("/v1/rule-sets/{set}/{step}");
    app.post(&path("submit"), ADMIN_KEY, &json!({})).await;
    let r = app.post(&path("approve"), ADMIN_KEY, &json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "own_rule_set")
    );
    for step in ["approve", "publish"] {
        let r = app.post(&path(step), &second_admin, &json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {:?}", r.body);
    }
    set
}

async fn a_gift_rule_adds_free_lines_that_reserve_stock_and_a_gift_out_of_stock_is_skipped(
    app: TestApp,
) {
    goods(&app).await;
    put(&app, "/v1/skus/GIFT-1", json!({"title": "小样"})).await;
    put(&app, "/v1/skus/GIFT-0", json!({"title": "钥匙扣"})).await;
    let body = json!({"sku": "GIFT-1", "warehouse_id": "WH1", "quantity": 3});
    let r = app.post("/v1/inventory/receipts", ADMIN_KEY, &body).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    // A gift of a SKU the master does not know: refused, naming the place.
    let bad = json!({"name": "bad", "rules": [{"id": "G9", "name": "g", "kind": "gift",
        "condition": "true", "action": {"lines": [{"sku": "NOPE", "quantity": 1}]}}]});
    let r = app.post("/v1/rule-sets", ADMIN_KEY, &bad).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (
            StatusCode::BAD_REQUEST,
            "invalid_rules",
            "rules.G9.action.lines[0].sku"
        ),
        "{:?}",
        r.body
    );
    let rules = json!([
        {"id": "G1", "name": "tee buyers get a sample", "kind": "gift", "condition": "'SKU-1' in skus",
         "action": {"lines": [{"sku": "GIFT-1", "quantity": 2}, {"sku": "GIFT-0", "quantity": 1}]}},
        {"id": "G2", "name": "last year's promotion", "kind": "gift", "condition": "true",
         "action": {"lines": [{"sku": "GIFT-1", "quantity": 1}],
                    "window": {"from": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}}}
    ]);
    let before = paid(&app, 0, "GB-0").await;
    let set = live(&app, rules).await;
    let r = app
        .get(&format!("/v1/rule-sets/{set}/sandbox?days=1"), ADMIN_KEY)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["report"]["gift_lines_draft"],
        json!(2),
        "{:?}",
        r.body
    );

    let first = paid(&app, 0, "G-1").await;
    let lines = first["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{first}");
    assert_eq!(
        (
            lines[2]["sku"].clone(),
            lines[2]["quantity"].clone(),
            lines[2]["unit_price"].clone(),
            lines[2]["title"].clone()
        ),
        (json!("GIFT-1"), json!(2), json!("0.00"), json!("小样"))
    );
    // The gift is free: what the buyer pays is what the same order paid without rules.
    assert_eq!(first["amounts"], before["amounts"]);
    let tl = app
        .get(
            &format!(
                "/v1/orders/{}/timeline",
                first["order_id"].as_str().unwrap()
            ),
            ADMIN_KEY,
        )
        .await;
    let gifts = &tl.body["steps"][0]["detail"]["rules"]["gifts"];
    assert_eq!(gifts["added"][0]["rule"], json!("G1 v1"), "{:?}", tl.body);
    assert_eq!(gifts["added"][0]["line_id"], json!(3), "{gifts}");
    assert_eq!(
        (
            gifts["skipped"][0]["sku"].clone(),
            gifts["skipped"][0]["skipped"].clone()
        ),
        (json!("GIFT-0"), json!("not enough stock"))
    );
    // Paid: the gift holds its stock like any line; the next order finds one unit left.
    let inv = app.get("/v1/inventory/GIFT-1", ADMIN_KEY).await;
    assert_eq!(inv.body["reserved"], json!(2), "{:?}", inv.body);
    let second = paid(&app, 0, "G-2").await;
    assert_eq!(second["lines"].as_array().unwrap().len(), 2, "{second}");
    assert_eq!(second["status"], json!("paid"));
}

on_every_backend!(
    a_warehouse_rule_ranks_warehouses_before_the_default_and_forbidding_a_split_waits
);

/// The warehouse an order's reservation took its stock from (`None`: nothing reserved).
async fn reserved_in(app: &TestApp, order: &Value) -> Option<String> {
    let id = order["reservation_id"].as_str()?;
    let r = app.get(&format!("/v1/reservations/{id}"), ADMIN_KEY).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["lines"][0]["warehouse_id"]
        .as_str()
        .map(str::to_owned)
}

async fn a_warehouse_rule_ranks_warehouses_before_the_default_and_forbidding_a_split_waits(
    app: TestApp,
) {
    // WH1 (priority 0) has everything; WH2 (priority 5) too; WH3 has nothing.
    goods(&app).await;
    for (wh, priority) in [("WH2", 5), ("WH3", 9)] {
        put(
            &app,
            &format!("/v1/warehouses/{wh}"),
            json!({"name": wh, "priority": priority, "regions": []}),
        )
        .await;
    }
    for sku in ["SKU-1", "SKU-2"] {
        let body = json!({"sku": sku, "warehouse_id": "WH2", "quantity": 1000});
        let r = app.post("/v1/inventory/receipts", ADMIN_KEY, &body).await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    let before = paid(&app, 1, "W-0").await;
    assert_eq!(reserved_in(&app, &before).await.as_deref(), Some("WH1"));
    // A warehouse not defined: refused, naming the place.
    let bad = json!({"name": "bad", "rules": [{"id": "W9", "name": "w", "kind": "warehouse",
        "condition": "true", "action": {"warehouses": ["WH2", "NOWHERE"], "split": "allow"}}]});
    let r = app.post("/v1/rule-sets", ADMIN_KEY, &bad).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "rules.W9.action.warehouses[1]"),
        "{:?}",
        r.body
    );
    // Hangzhou ships from WH2 first; Chengdu only from WH3 (forbid); Ürümqi WH3, then the default.
    let set = live(
        &app,
        json!([
            {"id": "W1", "name": "Hangzhou from WH2", "kind": "warehouse",
             "condition": "city == '杭州市'", "action": {"warehouses": ["WH3", "WH2"], "split": "forbid"}},
            {"id": "W2", "name": "Chengdu from WH3 only", "kind": "warehouse",
             "condition": "city == '成都市'", "action": {"warehouses": ["WH3"], "split": "forbid"}},
            {"id": "W3", "name": "Urumqi WH3 or anywhere", "kind": "warehouse",
             "condition": "city == '乌鲁木齐市'", "action": {"warehouses": ["WH3"], "split": "allow"}}
        ]),
    )
    .await;
    let r = app
        .get(&format!("/v1/rule-sets/{set}/sandbox?days=1"), ADMIN_KEY)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["report"]["warehouse_mix_draft"]["WH3"],
        json!(1),
        "{:?}",
        r.body
    );

    // history(1): Hangzhou; WH3 has nothing, WH2 everything.
    let hz = paid(&app, 1, "W-1").await;
    assert_eq!(reserved_in(&app, &hz).await.as_deref(), Some("WH2"), "{hz}");
    // history(3): Chengdu; only WH3, which has nothing: the order waits on backorder.
    let cd = paid(&app, 3, "W-3").await;
    assert_eq!(reserved_in(&app, &cd).await, None, "{cd}");
    assert!(
        cd["exceptions"].to_string().contains("out_of_stock"),
        "{cd}"
    );
    // history(0): Ürümqi; WH3 has nothing, the default choice follows: WH1.
    let urumqi = paid(&app, 0, "W-2").await;
    assert_eq!(reserved_in(&app, &urumqi).await.as_deref(), Some("WH1"));
    // The create entry names the rule and the set's version.
    let tl = app
        .get(
            &format!("/v1/orders/{}/timeline", hz["order_id"].as_str().unwrap()),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(
        tl.body["steps"][0]["detail"]["rules"]["warehouse"]["rule"],
        json!("W1"),
        "{:?}",
        tl.body
    );
    // Stock reaches WH3: the Chengdu order is served from there.
    for sku in ["SKU-1", "SKU-2"] {
        let body = json!({"sku": sku, "warehouse_id": "WH3", "quantity": 50});
        let r = app.post("/v1/inventory/receipts", ADMIN_KEY, &body).await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    let r = app
        .get(
            &format!("/v1/orders/{}", cd["order_id"].as_str().unwrap()),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(
        reserved_in(&app, &r.body).await.as_deref(),
        Some("WH3"),
        "{:?}",
        r.body
    );
}

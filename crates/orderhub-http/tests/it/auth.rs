use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

on_every_backend!(
    requests_without_a_valid_key_are_401,
    each_role_may_do_only_its_part,
    a_key_scoped_to_shops_sees_nothing_else,
    another_tenants_order_is_404_not_403,
    personal_data_is_masked_without_pii_read,
    a_revoked_key_stops_working,
    a_key_mints_only_keys_within_its_own_rights,
);

async fn a_key_mints_only_keys_within_its_own_rights(app: TestApp) {
    let scoped_admin = app.key("admin", Some(&["shop-a"]), false).await;
    let mint = |body: serde_json::Value| {
        let k = scoped_admin.clone();
        let app = &app;
        async move { app.post("/v1/api-keys", &k, &body).await }
    };
    for (body, code, field) in [
        (
            json!({"name": "x", "role": "admin"}),
            "beyond_own_scope",
            "shops",
        ),
        (
            json!({"name": "x", "role": "viewer", "shops": ["shop-b"]}),
            "beyond_own_scope",
            "shops",
        ),
        (
            json!({"name": "x", "role": "viewer", "shops": ["shop-a", "shop-b"]}),
            "beyond_own_scope",
            "shops",
        ),
        (
            json!({"name": "x", "role": "viewer", "shops": ["shop-a"], "scopes": ["pii:read"]}),
            "beyond_own_scope",
            "scopes",
        ),
    ] {
        let r = mint(body.clone()).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::FORBIDDEN, code, field),
            "{body}"
        );
    }
    let r = mint(json!({"name": "wms", "role": "warehouse", "shops": ["shop-a"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let minted = r.body["key_id"].as_str().unwrap().to_owned();
    // It lists only the keys within its scope: itself and what it minted, not the tenant's admin.
    let listed = app.get("/v1/api-keys", &scoped_admin).await;
    assert_eq!(
        listed.body.as_array().unwrap().len(),
        2,
        "{:?}",
        listed.body
    );
    assert!(
        listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["shops"] == json!(["shop-a"]))
    );
    // The unscoped admin key is not there to revoke.
    let all = app.get("/v1/api-keys", ADMIN_KEY).await;
    let admin_id = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["shops"].is_null() && k["role"] == "admin")
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &format!("/v1/api-keys/{admin_id}/revoke"),
            &scoped_admin,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/v1/orders", ADMIN_KEY).await.status,
        StatusCode::OK,
        "still works"
    );
    let r = app
        .post(
            &format!("/v1/api-keys/{minted}/revoke"),
            &scoped_admin,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // A key limited to no shop at all is refused (it would be within every scoped key's scope).
    let r = app
        .post(
            "/v1/api-keys",
            ADMIN_KEY,
            &json!({"name": "x", "role": "viewer", "shops": []}),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "empty", "shops")
    );
    // An admin without pii:read cannot grant it either, unscoped or not.
    let plain_admin = app.key("admin", None, false).await;
    let r = app
        .post(
            "/v1/api-keys",
            &plain_admin,
            &json!({"name": "x", "role": "viewer", "scopes": ["pii:read"]}),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::FORBIDDEN, "scopes"));
}

async fn requests_without_a_valid_key_are_401(app: TestApp) {
    let r = app.call(Method::GET, "/v1/orders", None, None, &[]).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(
        app.get("/v1/orders", "nope").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .call(
            Method::GET,
            "/v1/orders",
            None,
            None,
            &[("authorization", "Basic abc")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn each_role_may_do_only_its_part(app: TestApp) {
    let viewer = app.key("viewer", None, false).await;
    let warehouse = app.key("warehouse", None, false).await;
    let finance = app.key("finance", None, false).await;
    let ops = app.key("ops", None, false).await;
    let r = app.create(&viewer, "s1", "R1").await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let id = app.create(&ops, "s1", "R1").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get(&format!("/v1/orders/{id}"), &viewer).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.post(&format!("/v1/orders/{id}/pay"), &warehouse, &json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&format!("/v1/orders/{id}/pay"), &finance, &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post(
            &format!("/v1/orders/{id}/allocate"),
            &finance,
            &json!({"warehouse_id": "W"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            &format!("/v1/orders/{id}/allocate"),
            &warehouse,
            &json!({"warehouse_id": "W"})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/v1/api-keys", &ops).await.status,
        StatusCode::FORBIDDEN
    );
    let keys = app.get("/v1/api-keys", ADMIN_KEY).await;
    assert_eq!(keys.body.as_array().unwrap().len(), 5);
    assert!(
        keys.body
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none()),
        "keys are never shown again"
    );
    let r = app
        .post(
            "/v1/api-keys",
            ADMIN_KEY,
            &json!({"name": "x", "role": "superuser"}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "role")
    );
}

async fn a_key_scoped_to_shops_sees_nothing_else(app: TestApp) {
    let a = app.create(ADMIN_KEY, "shop-a", "SC1").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create(ADMIN_KEY, "shop-b", "SC2").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let scoped = app.key("ops", Some(&["shop-a"]), false).await;
    assert_eq!(
        app.get(&format!("/v1/orders/{a}"), &scoped).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{b}"), &scoped).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&format!("/v1/orders/{b}/pay"), &scoped, &json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{b}/timeline"), &scoped)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let list = app.get("/v1/orders", &scoped).await;
    let ids: Vec<&str> = list.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    assert_eq!(
        app.create(&scoped, "shop-b", "SC3").await.status,
        StatusCode::FORBIDDEN
    );
    let events = app.get("/v1/events", &scoped).await;
    assert!(
        events.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["payload"]["shop_id"] == "shop-a")
    );
}

async fn another_tenants_order_is_404_not_403(app: TestApp) {
    let id = app.create(ADMIN_KEY, "s1", "T1").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get(&format!("/v1/orders/{id}"), OTHER_TENANT_KEY)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(
            &format!("/v1/orders/{id}/cancel"),
            OTHER_TENANT_KEY,
            &json!({"reason": "x"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        app.get("/v1/orders", OTHER_TENANT_KEY).await.body["orders"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        app.get("/v1/events", OTHER_TENANT_KEY).await.body["events"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The same shop and external id in the other tenant is another order.
    let r = app.create(OTHER_TENANT_KEY, "s1", "T1").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.body["order_id"].as_str().unwrap(), id);
}

async fn personal_data_is_masked_without_pii_read(app: TestApp) {
    let plain = app.key("ops", None, false).await;
    let r = app.create(&plain, "s1", "P1").await;
    let rc = &r.body["receiver"];
    assert_eq!(
        (
            rc["phone"].as_str(),
            rc["name"].as_str(),
            rc["masked"].as_bool()
        ),
        (Some("138****5678"), Some("王**"), Some(true))
    );
    assert!(!r.body.to_string().contains("文三路100号"));
    let id = r.body["order_id"].as_str().unwrap();
    let clear = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await;
    assert_eq!(
        (
            clear.body["receiver"]["phone"].as_str(),
            clear.body["receiver"]["detail"].as_str()
        ),
        (Some("13812345678"), Some("文三路100号"))
    );
    let listed = app.get("/v1/orders", &plain).await;
    assert!(!listed.body.to_string().contains("13812345678"));
    let events = app.get("/v1/events", ADMIN_KEY).await;
    assert!(
        !events.body.to_string().contains("13812345678"),
        "events carry no personal data"
    );
}

async fn a_revoked_key_stops_working(app: TestApp) {
    let r = app
        .post(
            "/v1/api-keys",
            ADMIN_KEY,
            &json!({"name": "temp", "role": "viewer"}),
        )
        .await;
    let (key, key_id) = (
        r.body["key"].as_str().unwrap().to_owned(),
        r.body["key_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(app.get("/v1/orders", &key).await.status, StatusCode::OK);
    let r = app
        .call(
            Method::POST,
            &format!("/v1/api-keys/{key_id}/revoke"),
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/v1/orders", &key).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .call(
            Method::POST,
            &format!("/v1/api-keys/{key_id}/revoke"),
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

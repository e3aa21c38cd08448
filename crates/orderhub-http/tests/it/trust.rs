//! Trust (issue 18): the bootstrap key after a revoke, personal data at rest, refused pushes,
//! the outbound URL policy.

use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

on_every_backend!(a_revoked_bootstrap_key_stays_revoked_across_a_restart,);

/// `orderhub serve --bootstrap-api-key K` runs `bootstrap(store, Some(K))` on every start. Once K
/// is revoked, the next start must go on (it failed on the key's unique hash) and K must stay
/// revoked.
async fn a_revoked_bootstrap_key_stays_revoked_across_a_restart(app: TestApp) {
    let r = app
        .post(
            "/v1/api-keys",
            ADMIN_KEY,
            &json!({"name": "second admin", "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let second = r.body["key"].as_str().unwrap().to_owned();
    let keys = app.get("/v1/api-keys", &second).await;
    let boot_id = keys.body.as_array().map_or_else(
        || keys.body["api_keys"].as_array().unwrap().clone(),
        |a| a.clone(),
    );
    let boot_id = boot_id
        .iter()
        .find(|k| k["name"] == "bootstrap admin")
        .unwrap_or_else(|| panic!("the bootstrap key is listed: {:?}", keys.body))["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::POST,
            &format!("/v1/api-keys/{boot_id}/revoke"),
            Some(&second),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let before = app.store.read(|r| r.tenant_count()).await.unwrap();
    // The restart's bootstrap with the same key.
    let generated = orderhub_http::bootstrap::bootstrap(&app.store, Some(ADMIN_KEY), &[])
        .await
        .expect("a restart with a revoked bootstrap key starts");
    assert_eq!(generated, None, "no key is made or shown");
    assert_eq!(app.store.read(|r| r.tenant_count()).await.unwrap(), before);
    assert_eq!(
        app.get("/v1/orders", ADMIN_KEY).await.status,
        StatusCode::UNAUTHORIZED,
        "the revoked key stays revoked"
    );
    let t = orderhub_domain::TenantId::parse("default").unwrap();
    let keys = app.store.read(move |r| r.api_keys(&t)).await.unwrap();
    let boot: Vec<_> = keys
        .iter()
        .filter(|k| k.name == "bootstrap admin")
        .collect();
    assert_eq!(boot.len(), 1, "not inserted again: {keys:?}");
    assert!(boot[0].revoked_at.is_some());
    // The other admin key works as before.
    assert_eq!(app.get("/v1/orders", &second).await.status, StatusCode::OK);
}

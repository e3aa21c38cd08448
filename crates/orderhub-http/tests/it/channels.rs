//! Channel intake end to end: a channel simulator's signed push reaches the webhook, is kept raw,
//! processed in the background into a standard order (fetched from the simulator's order API),
//! deduplicated, versioned; bad pushes are refused and recorded.

use crate::app::{ADMIN_KEY, TestApp};
use crate::on_every_backend;
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{ChannelKind, ShopCredentials};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub(crate) fn creds() -> ShopCredentials {
    let mut c = ShopCredentials::new("app-key-1", "s3cret");
    c.access_token = "tok-1".into();
    // Kuaishou encrypts pushes with the app's message key (Base64 of 32 bytes).
    c.message_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into();
    c
}

/// Starts the processor the hub runs beside the API.
pub(crate) fn start_processor(app: &TestApp) -> tokio::sync::watch::Sender<bool> {
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(orderhub_intake::process::run(
        app.store.clone(),
        app.intake.clone(),
        rx,
    ));
    stop
}

async fn configure(app: &TestApp, kind: ChannelKind, shop: &str, url: &str) {
    let c = creds();
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/channels/{}/shops/{shop}", kind.code()),
            Some(ADMIN_KEY),
            Some(&json!({"app_key": c.app_key, "secret": c.secret, "access_token": c.access_token, "message_key": c.message_key, "api_base_url": url}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

pub(crate) async fn push(
    app: &TestApp,
    kind: ChannelKind,
    shop: &str,
    p: &sim::SignedPush,
    body: &[u8],
) -> crate::app::Resp {
    push_to(app, "default", kind, shop, p, body).await
}

/// A push to the webhook of `tenant`'s shop.
async fn push_to(
    app: &TestApp,
    tenant: &str,
    kind: ChannelKind,
    shop: &str,
    p: &sim::SignedPush,
    body: &[u8],
) -> crate::app::Resp {
    let path = format!(
        "/v1/tenants/{tenant}/channels/{}/shops/{shop}/webhook",
        kind.code()
    );
    push_at(app, &path, p, body).await
}

/// A push to the deprecated path without a tenant.
async fn push_without_tenant(
    app: &TestApp,
    kind: ChannelKind,
    shop: &str,
    p: &sim::SignedPush,
) -> crate::app::Resp {
    let path = format!("/v1/channels/{}/shops/{shop}/webhook", kind.code());
    push_at(app, &path, p, &p.body).await
}

/// A signed push (its headers and query parameters) posted to `path`, with no API key: the
/// channel's signature is the authentication.
async fn push_at(app: &TestApp, path: &str, p: &sim::SignedPush, body: &[u8]) -> crate::app::Resp {
    let mut path = path.to_owned();
    if !p.query.is_empty() {
        let q: Vec<String> = p.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        path = format!("{path}?{}", q.join("&"));
    }
    let mut headers: Vec<(&str, &str)> = p
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    headers.push(("content-type", p.content_type));
    let body = String::from_utf8(body.to_vec()).unwrap();
    let mut rb = app.client.post(format!("{}{path}", app.base)).body(body);
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let bytes = r.bytes().await.unwrap().to_vec();
    crate::app::Resp {
        status,
        headers: Default::default(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        bytes,
    }
}

pub(crate) async fn order_of(
    app: &TestApp,
    channel: &str,
    external: &str,
    within: Duration,
) -> Value {
    let until = Instant::now() + within;
    loop {
        let r = app
            .get(
                &format!("/v1/orders?channel={channel}&limit=200"),
                ADMIN_KEY,
            )
            .await;
        if let Some(o) = r.body["orders"]
            .as_array()
            .and_then(|os| os.iter().find(|o| o["external_order_id"] == external))
        {
            return o.clone();
        }
        assert!(Instant::now() < until, "order {external} never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn messages(app: &TestApp, state: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/v1/channel-messages?state={state}"), ADMIN_KEY)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body.as_array().cloned().unwrap_or_default()
}

async fn a_signed_push_becomes_one_order_and_bad_pushes_are_recorded(app: TestApp) {
    let _stop = start_processor(&app);
    for kind in ChannelKind::ALL {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 5, 11))
            .await
            .unwrap();
        let shop = format!("{}shop", kind.code());
        configure(&app, kind, &shop, &url).await;
        let order = handle.orders()[0].clone();
        let p = sim::signed_push(kind, &order, &creds(), chrono::Utc::now()).unwrap();
        let r = push(&app, kind, &shop, &p, &p.body).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{kind}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        let o = order_of(
            &app,
            kind.code(),
            &order.external_order_id,
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(o["shop_id"], shop);
        assert_eq!(o["channel_status"], order.channel_status, "{kind}");
        assert_eq!(
            o["amounts"]["paid_amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap(),
            order.amounts.paid,
            "{kind}: yuan, exactly"
        );
        let expected = match order.canonical.domain() {
            orderhub_domain::Status::PendingPayment => "pending_payment",
            orderhub_domain::Status::Cancelled => "cancelled",
            _ => "",
        };
        if !expected.is_empty() {
            assert_eq!(o["status"], expected, "{kind}");
        }
        // The same push again: acknowledged, stored once, still one order.
        let r = push(&app, kind, &shop, &p, &p.body).await;
        assert_eq!(r.status, StatusCode::OK);
        let all: Vec<Value> = messages(&app, "all")
            .await
            .into_iter()
            .filter(|m| m["shop_id"] == shop)
            .collect();
        assert_eq!(all.len(), 1, "{kind}: {all:?}");
        // A tampered body (WeChat: its signature, which covers the query in plain mode) is
        // refused, recorded with its rule, and changes nothing.
        let mut bad = p.body.clone();
        let mut tampered = p.clone();
        if kind == ChannelKind::Wechat {
            for (k, v) in tampered.query.iter_mut() {
                if k == "signature" {
                    // Change the first hex digit (to one it is not: a fixed "0" left
                    // one signature in sixteen intact).
                    let first = if v.starts_with('0') { '1' } else { '0' };
                    *v = format!("{first}{}", &v[1..]);
                }
            }
        } else {
            let at = bad.iter().position(|b| b.is_ascii_digit()).unwrap();
            bad[at] = if bad[at] == b'9' { b'8' } else { bad[at] + 1 };
        }
        let r = push(&app, kind, &shop, &tampered, &bad).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{kind}");
        assert_eq!(r.body["error"]["code"], "bad_signature");
        let rejected: Vec<Value> = messages(&app, "rejected")
            .await
            .into_iter()
            .filter(|m| m["shop_id"] == shop)
            .collect();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0]["rule"], "bad_signature");
        // An unknown shop is 404; the message is not stored (no tenant to keep it for).
        let r = push(&app, kind, "noshop", &p, &p.body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body["error"]["code"], "unknown_shop");
    }
}

async fn a_newer_channel_version_moves_the_order(app: TestApp) {
    let _stop = start_processor(&app);
    let kind = ChannelKind::Douyin;
    let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 8, 5))
        .await
        .unwrap();
    let shop = "dyshop";
    configure(&app, kind, shop, &url).await;
    // An order the buyer has paid.
    let order = handle
        .orders()
        .into_iter()
        .find(|o| o.canonical.domain() == orderhub_domain::Status::Paid)
        .expect("the simulator has a paid order");
    let p = sim::signed_push(kind, &order, &creds(), chrono::Utc::now()).unwrap();
    assert_eq!(
        push(&app, kind, shop, &p, &p.body).await.status,
        StatusCode::OK
    );
    let o = order_of(
        &app,
        "douyin",
        &order.external_order_id,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o["status"], "paid");
    let version = o["version"].as_u64().unwrap();
    // The buyer cancels on the channel (a newer version): the order is cancelled here too.
    let (status, _) = HttpClient::new()
        .call(
            "POST",
            &format!("{url}/_sim/orders"),
            "application/json",
            &[],
            json!({"external_order_id": order.external_order_id, "canonical": "cancelled", "bump_secs": 60}).to_string().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let changed = handle
        .orders()
        .into_iter()
        .find(|x| x.external_order_id == order.external_order_id)
        .unwrap();
    let p2 = sim::signed_push(kind, &changed, &creds(), chrono::Utc::now()).unwrap();
    assert_eq!(
        push(&app, kind, shop, &p2, &p2.body).await.status,
        StatusCode::OK
    );
    let until = Instant::now() + Duration::from_secs(20);
    let o = loop {
        let o = order_of(
            &app,
            "douyin",
            &order.external_order_id,
            Duration::from_secs(5),
        )
        .await;
        if o["status"] == "cancelled" {
            break o;
        }
        assert!(Instant::now() < until, "never cancelled: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(o["version"].as_u64().unwrap() > version);
    assert_eq!(o["channel_status"], changed.channel_status);
}

/// A B2B portal and an ERP connect through the configurable channel with nothing but their
/// mapping files: the shop is configured with the file's text, the portal's signed push (in the
/// portal's own field names, units and signature scheme) becomes a standard order; a mapping that
/// is not valid is refused naming the mapping key, and only the custom channel takes one.
async fn a_custom_portal_connects_by_its_mapping_file_alone(app: TestApp) {
    use orderhub_channels::mapped::{self, Mapping};
    let _stop = start_processor(&app);
    let files = [
        (
            "acme",
            include_str!("../../../orderhub-channels/mappings/acme-b2b.toml").to_owned(),
        ),
        (
            "erp-1",
            include_str!("../../../orderhub-channels/mappings/erp-example.toml").to_owned(),
        ),
        (
            "erp-form",
            include_str!("../../../orderhub-channels/mappings/erp-form-example.toml").to_owned(),
        ),
    ];
    for (shop, text) in &files {
        let shop = *shop;
        let mapping = Mapping::from_toml(text).unwrap();
        let (url, handle) = sim::spawn_mapped(mapping.clone(), SimSettings::new(creds(), 3, 5))
            .await
            .unwrap();
        let c = creds();
        let r = app
            .call(
                Method::PUT,
                &format!("/v1/channels/custom/shops/{shop}"),
                Some(ADMIN_KEY),
                Some(&json!({"app_key": c.app_key, "secret": c.secret, "access_token": c.access_token,
                    "api_base_url": url, "mapping": text}).to_string()),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{shop}: {:?}", r.body);
        assert_eq!(
            r.body["webhook_path"],
            format!("/v1/tenants/default/channels/custom/shops/{shop}/webhook")
        );
        let order = handle.orders()[0].clone();
        let p = mapped::signed_push(&mapping, &order, &c, chrono::Utc::now());
        let r = push(&app, ChannelKind::Custom, shop, &p, &p.body).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{shop}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        // Both simulators number their orders alike: the shop tells them apart.
        let o = order_of(
            &app,
            &format!("custom&shop={shop}"),
            &order.external_order_id,
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(o["shop_id"], shop);
        assert_eq!(o["channel_status"], order.channel_status, "{shop}");
        assert_eq!(
            o["amounts"]["paid_amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap(),
            order.amounts.paid,
            "{shop}: money in the portal's unit, read exactly"
        );
        assert_eq!(o["lines"].as_array().map(Vec::len), Some(order.lines.len()));
        // A body changed after signing is refused by the portal's own scheme.
        let mut bad = p.body.clone();
        // (A digit of a form's %XX escape would make it another byte: refused before that.)
        let in_escape = |i: usize| (1..=2).any(|back| i >= back && bad[i - back] == b'%');
        let at = (0..bad.len())
            .find(|&i| bad[i].is_ascii_digit() && !in_escape(i))
            .unwrap();
        bad[at] = if bad[at] == b'9' { b'8' } else { bad[at] + 1 };
        let r = push(&app, ChannelKind::Custom, shop, &p, &bad).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{shop}");
        assert_eq!(r.body["error"]["code"], "bad_signature");
    }
    let put = |channel: &'static str, body: Value| {
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                &format!("/v1/channels/{channel}/shops/portal-2"),
                Some(ADMIN_KEY),
                Some(&body.to_string()),
                &[],
            )
            .await
        }
    };
    let base = json!({"app_key": "k", "secret": "s", "api_base_url": "http://127.0.0.1:9"});
    // A status mapped to something that is not a canonical status.
    let mut broken = files[0].1.replace("= \"paid\"", "= \"paid_maybe\"");
    assert_ne!(broken, files[0].1, "the example maps some status to paid");
    let mut body = base.clone();
    body["mapping"] = json!(broken);
    let r = put("custom", body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(
        r.body["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("mapping.status"),
        "{:?}",
        r.body
    );
    // Not TOML at all.
    broken = "name = ".into();
    let mut body = base.clone();
    body["mapping"] = json!(broken);
    assert_eq!(
        put("custom", body).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A custom shop without its mapping, and a built-in channel given one.
    let r = put("custom", base.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "mapping");
    let mut body = base.clone();
    body["mapping"] = json!(files[0].1);
    let r = put("douyin", body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["code"], "mapping_not_allowed");
}

/// Rotating a shop's secret takes effect at the next push: webhooks keep the shops they read for a
/// few seconds, and configuring a shop forgets it.
async fn a_rotated_secret_applies_to_the_next_push(app: TestApp) {
    let kind = ChannelKind::Douyin;
    let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 3, 7))
        .await
        .unwrap();
    configure(&app, kind, "rotating", &url).await;
    let orders = handle.orders();
    let old = creds();
    let p = sim::signed_push(kind, &orders[0], &old, chrono::Utc::now()).unwrap();
    assert_eq!(
        push(&app, kind, "rotating", &p, &p.body).await.status,
        StatusCode::OK
    );
    let mut new = creds();
    new.secret = "rotated-s3cret".into();
    let r = app
        .call(
            Method::PUT,
            "/v1/channels/douyin/shops/rotating",
            Some(ADMIN_KEY),
            Some(&json!({"app_key": new.app_key, "secret": new.secret, "access_token": new.access_token, "api_base_url": url}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let stale = sim::signed_push(kind, &orders[1], &old, chrono::Utc::now()).unwrap();
    assert_eq!(
        push(&app, kind, "rotating", &stale, &stale.body)
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "the old secret no longer signs"
    );
    let fresh = sim::signed_push(kind, &orders[1], &new, chrono::Utc::now()).unwrap();
    assert_eq!(
        push(&app, kind, "rotating", &fresh, &fresh.body)
            .await
            .status,
        StatusCode::OK
    );
}

/// A shop's token expires on the channel's side: the processor renews it and the pushed order
/// arrives; the shop's view shows the token's state (never the token); a renewal the channel
/// refuses shows as `reauthorize`.
async fn an_expired_token_is_renewed_and_the_shop_shows_its_token_state(app: TestApp) {
    // The gap between two renewals of one shop (a minute in service), short here: the test
    // renews, then has the renewal refused, within seconds.
    orderhub_intake::tokens::set_renewal_gap(Duration::from_millis(200));
    let stop = start_processor(&app);
    let kind = ChannelKind::Douyin;
    let mut c = creds();
    c.refresh_token = "rt-9f2c61".into();
    let (url, handle) = sim::spawn(kind, SimSettings::new(c.clone(), 3, 17))
        .await
        .unwrap();
    let path = "/v1/channels/douyin/shops/tokened";
    let put = |expires: &str| {
        json!({"app_key": c.app_key, "secret": c.secret, "access_token": c.access_token,
            "api_base_url": url, "refresh_token": c.refresh_token,
            "access_token_expires_at": expires})
        .to_string()
    };
    // A lifetime that is not a time is refused, naming the field.
    let r = app
        .call(
            Method::PUT,
            path,
            Some(ADMIN_KEY),
            Some(&put("tomorrow")),
            &[],
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    assert!(
        r.body.to_string().contains("access_token_expires_at"),
        "{:?}",
        r.body
    );
    let r = app
        .call(
            Method::PUT,
            path,
            Some(ADMIN_KEY),
            Some(&put("2099-01-02T08:00:00+08:00")),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let view = app.get(path, ADMIN_KEY).await;
    assert_eq!(view.status, StatusCode::OK);
    assert_eq!(view.body["token"]["state"], "ok", "{:?}", view.body);
    assert_eq!(view.body["token"]["renewable"], true);
    assert_eq!(
        view.body["token"]["access_token_expires_at"],
        "2099-01-02T00:00:00Z"
    );
    let text = String::from_utf8_lossy(&view.bytes);
    for secret in [&c.secret, &c.access_token, &c.refresh_token] {
        assert!(!text.contains(secret.as_str()), "{text}");
    }
    // The channel expires the token early (a seller's password change does that): the push is
    // processed all the same, with a renewed token.
    handle.expire_access_token();
    let order = handle.orders()[0].clone();
    let p = sim::signed_push(kind, &order, &c, chrono::Utc::now()).unwrap();
    assert_eq!(
        push(&app, kind, "tokened", &p, &p.body).await.status,
        StatusCode::OK
    );
    order_of(
        &app,
        "douyin",
        &order.external_order_id,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(handle.stats.snapshot().token_grants, 1);
    let view = app.get(path, ADMIN_KEY).await;
    assert_eq!(view.body["token"]["state"], "ok");
    let renewed_expiry = view.body["token"]["access_token_expires_at"].clone();
    assert_ne!(
        renewed_expiry, "2099-01-02T00:00:00Z",
        "the grant's own lifetime is kept"
    );
    let renewed = handle.access_token().unwrap();
    assert!(
        !String::from_utf8_lossy(&view.bytes).contains(&renewed),
        "the renewed token is not shown"
    );
    // Re-applying the configuration without tokens (a new URL, say) keeps the renewed token.
    let r = app
        .call(
            Method::PUT,
            path,
            Some(ADMIN_KEY),
            Some(
                &json!({"app_key": c.app_key, "secret": c.secret, "api_base_url": url}).to_string(),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["token"]["access_token_expires_at"], renewed_expiry);
    let again = handle.new_order(|_| {}).expect("nothing offered");
    let p = sim::signed_push(kind, &again, &c, chrono::Utc::now()).unwrap();
    assert_eq!(
        push(&app, kind, "tokened", &p, &p.body).await.status,
        StatusCode::OK
    );
    order_of(
        &app,
        "douyin",
        &again.external_order_id,
        Duration::from_secs(20),
    )
    .await;
    let stats = handle.stats.snapshot();
    assert_eq!(
        (stats.token_grants, stats.token_expired),
        (1, 1),
        "the kept token works: {stats:?}"
    );
    // The seller revokes the app: the next push's order cannot be fetched, and the shop says why.
    handle.revoke_refresh_token();
    handle.expire_access_token();
    let next = handle.new_order(|_| {}).expect("nothing offered");
    let p = sim::signed_push(kind, &next, &c, chrono::Utc::now()).unwrap();
    assert_eq!(
        push(&app, kind, "tokened", &p, &p.body).await.status,
        StatusCode::OK,
        "the push is still taken and kept"
    );
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let view = app.get(path, ADMIN_KEY).await;
        if view.body["token"]["state"] == "reauthorize" {
            assert!(
                view.body["token"]["problem"]
                    .as_str()
                    .is_some_and(|p| p.contains("authorize the app")),
                "{:?}",
                view.body
            );
            break;
        }
        assert!(Instant::now() < until, "never marked: {:?}", view.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The console's channel page shows it beside the shop's pull cursor.
    let stats = app.get("/v1/stats", ADMIN_KEY).await;
    let shop = stats.body["pull_cursors"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["shop_id"] == "tokened"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(shop["token_state"], "reauthorize", "{:?}", stats.body);
    assert!(shop["token_problem"].is_string());

    // Its message gives up meanwhile (retries spent: marked failed here rather than waited for).
    let _ = stop.send(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting: Vec<Value> = messages(&app, "pending")
        .await
        .into_iter()
        .filter(|m| m["shop_id"] == "tokened")
        .collect();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let id: uuid::Uuid = waiting[0]["message_id"].as_str().unwrap().parse().unwrap();
    let t = orderhub_domain::TenantId::parse("default").unwrap();
    app.store
        .write(0, move |tx| {
            Ok(tx.channel_message_update(
                &t,
                id,
                "failed",
                Some("retrying"),
                None,
                Some("the token was refused"),
                chrono::Utc::now(),
            )?)
        })
        .await
        .unwrap();
    // The seller authorizes the app again; configured with the new tokens, the shop's failed
    // message goes back to pending and its order arrives.
    let (access, refresh) = handle.reauthorize();
    let r = app
        .call(
            Method::PUT,
            path,
            Some(ADMIN_KEY),
            Some(
                &json!({"app_key": c.app_key, "secret": c.secret, "api_base_url": url,
                    "access_token": access, "refresh_token": refresh})
                .to_string(),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["token"]["state"], "ok", "{:?}", r.body);
    assert_eq!(r.body["messages_requeued"], 1, "{:?}", r.body);
    let _stop = start_processor(&app);
    order_of(
        &app,
        "douyin",
        &next.external_order_id,
        Duration::from_secs(20),
    )
    .await;
}

/// A seller's authorization that ends soon (Kuaishou's and Taobao's refresh tokens end for good)
/// shows before orders stop: in the shop's view, on the console's channel page and in /metrics,
/// and clears once the shop is authorized again.
async fn a_shop_whose_authorization_ends_soon_says_so(app: TestApp) {
    // The metrics recorder is one per process: a tenant of this test's own.
    let tenant = format!("a-{}", uuid::Uuid::now_v7().simple());
    let t = orderhub_domain::TenantId::parse(&tenant).unwrap();
    let key = format!("auth-key-{tenant}");
    orderhub_http::bootstrap::ensure_tenant(&app.store, &t, "Authorizations", &["sf".to_owned()])
        .await
        .unwrap();
    orderhub_http::bootstrap::ensure_admin_key(&app.store, &t, Some(&key), "admin")
        .await
        .unwrap();
    let path = "/v1/channels/douyin/shops/ending";
    let now = chrono::Utc::now();
    let configure = |refresh_ends: chrono::DateTime<chrono::Utc>| {
        json!({"app_key": "app-1", "secret": "s3cret", "access_token": "tok-1",
            "refresh_token": "rt-1", "api_base_url": "http://127.0.0.1:9",
            "access_token_expires_at": (now + chrono::Duration::days(1)).to_rfc3339(),
            "refresh_token_expires_at": refresh_ends.to_rfc3339()})
        .to_string()
    };
    let gauge = |m: &str, st: &str| {
        let prefix = format!(
            "orderhub_channel_shops{{tenant=\"{tenant}\",channel=\"douyin\",token_state=\"{st}\"}} "
        );
        m.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().parse::<f64>().unwrap())
    };
    let ends = now + chrono::Duration::days(3);
    let r = app
        .call(Method::PUT, path, Some(&key), Some(&configure(ends)), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let view = app.get(path, &key).await;
    assert_eq!(view.body["token"]["state"], "expiring", "{:?}", view.body);
    let stats = app.get("/v1/stats", &key).await;
    let shop = &stats.body["pull_cursors"][0];
    assert_eq!(
        (shop["shop_id"].as_str(), shop["token_state"].as_str()),
        (Some("ending"), Some("expiring")),
        "{:?}",
        stats.body
    );
    assert_eq!(
        shop["refresh_token_expires_at"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp()),
        Some(ends.timestamp())
    );
    let m = app.metrics().await;
    assert_eq!(
        (gauge(&m, "expiring"), gauge(&m, "ok")),
        (Some(1.0), Some(0.0)),
        "{m}"
    );
    // Authorized again: a refresh token for months.
    let r = app
        .call(
            Method::PUT,
            path,
            Some(&key),
            Some(&configure(now + chrono::Duration::days(90))),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["token"]["state"], "ok", "{:?}", r.body);
    let m = app.metrics().await;
    assert_eq!(
        (gauge(&m, "expiring"), gauge(&m, "ok")),
        (Some(0.0), Some(1.0)),
        "{m}"
    );
}

/// Shop ids are each tenant's own: two tenants configure the same shop id of a channel (each
/// with its own app), neither learns of the other's, and each one's pushes reach only its own.
async fn two_tenants_configure_the_same_shop_id_each_its_own(app: TestApp) {
    let _stop = start_processor(&app);
    let kind = ChannelKind::Douyin;
    let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 3, 5))
        .await
        .unwrap();
    configure(&app, kind, "twin", &url).await;
    // The push path without a tenant (deprecated) serves a shop id one tenant configures.
    let early = handle.orders()[1].clone();
    let p = sim::signed_push(kind, &early, &creds(), chrono::Utc::now()).unwrap();
    let r = push_without_tenant(&app, kind, "twin", &p).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let put = |key: &'static str, app_key: &str, secret: &str| {
        let body = json!({"app_key": app_key, "secret": secret, "api_base_url": url}).to_string();
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                "/v1/channels/douyin/shops/twin",
                Some(key),
                Some(&body),
                &[],
            )
            .await
        }
    };
    let r = put(crate::app::OTHER_TENANT_KEY, "other-app", "other-secret").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["webhook_path"],
        "/v1/tenants/other/channels/douyin/shops/twin/webhook"
    );
    // Each tenant sees its own configuration; neither overwrote the other's.
    let mine = app.get("/v1/channels/douyin/shops/twin", ADMIN_KEY).await;
    assert_eq!(mine.body["app_key"], creds().app_key);
    let theirs = app
        .get(
            "/v1/channels/douyin/shops/twin",
            crate::app::OTHER_TENANT_KEY,
        )
        .await;
    assert_eq!(theirs.body["app_key"], "other-app");
    // A push signed with this tenant's secret is refused at the other tenant's webhook and taken
    // at its own; the order is this tenant's only.
    let order = handle.orders()[0].clone();
    let p = sim::signed_push(kind, &order, &creds(), chrono::Utc::now()).unwrap();
    let r = push_to(&app, "other", kind, "twin", &p, &p.body).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let r = push(&app, kind, "twin", &p, &p.body).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let o = order_of(
        &app,
        kind.code(),
        &order.external_order_id,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o["shop_id"], "twin");
    let other_orders = app
        .get("/v1/orders?limit=500", crate::app::OTHER_TENANT_KEY)
        .await;
    assert_eq!(
        other_orders.body["orders"],
        json!([]),
        "{:?}",
        other_orders.body
    );
    order_of(
        &app,
        kind.code(),
        &early.external_order_id,
        Duration::from_secs(20),
    )
    .await;
    // Two tenants configure it now: the path without a tenant cannot tell whose it is.
    let r = push_without_tenant(&app, kind, "twin", &p).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "ambiguous_shop")
    );
}

on_every_backend!(
    two_tenants_configure_the_same_shop_id_each_its_own,
    a_shop_whose_authorization_ends_soon_says_so,
    a_rotated_secret_applies_to_the_next_push,
    a_signed_push_becomes_one_order_and_bad_pushes_are_recorded,
    a_newer_channel_version_moves_the_order,
    a_custom_portal_connects_by_its_mapping_file_alone,
    an_expired_token_is_renewed_and_the_shop_shows_its_token_state,
);

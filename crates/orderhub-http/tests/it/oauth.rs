//! Authorizing a shop by OAuth against each channel's simulator: the authorize route's page, the
//! simulator's redirect with a code, the public callback storing the tokens the intake worker
//! then uses; forged, reused and foreign states, refused codes and another seller's grant are
//! refused with nothing stored.

use crate::app::{ADMIN_KEY, TestApp};
use crate::channels::{creds, order_of, push, start_processor};
use orderhub_channels::sim::{self, SimHandle, SimSettings};
use orderhub_channels::{ChannelKind, ShopCredentials};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// Runs each named test on SQLite and PostgreSQL with an app that has a `--public-url`.
macro_rules! on_every_backend_public {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::app::spawn_app_public("sqlite").await.unwrap()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::app::spawn_app_public("postgres").await {
                    Some(app) => super::$name(app).await,
                    None => eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here"),
                }
            }
        }
    )*};
}

on_every_backend_public!(
    each_channel_s_shop_is_authorized_and_its_tokens_used,
    bad_states_refused_codes_and_other_sellers_store_nothing,
);

crate::on_every_backend!(a_hub_without_public_url_or_a_channel_without_code_flow_says_so);

const SHOP: &str = "oauth-shop";

fn oauth_creds() -> ShopCredentials {
    let mut c = creds();
    c.app_secret = "app-secret-1".into();
    c
}

/// A simulator of `kind` and the shop configured against it (its old token `tok-1`).
async fn setup(app: &TestApp, kind: ChannelKind) -> (String, SimHandle) {
    let c = oauth_creds();
    let (url, handle) = sim::spawn(kind, SimSettings::new(c.clone(), 3, 23))
        .await
        .unwrap();
    // Douyin's page takes no redirect URI: the one registered with the service is used.
    let registered = (kind == ChannelKind::Douyin)
        .then(|| format!("{}/oauth/callback/{}", app.base, kind.code()));
    handle.register_redirect_uri(registered, Some(SHOP.into()));
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/channels/{}/shops/{SHOP}", kind.code()),
            Some(ADMIN_KEY),
            Some(
                &json!({"app_key": c.app_key, "secret": c.secret, "access_token": c.access_token,
                "message_key": c.message_key, "app_secret": c.app_secret, "api_base_url": url})
                .to_string(),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (url, handle)
}

async fn authorize(app: &TestApp, kind: ChannelKind) -> crate::app::Resp {
    app.call(
        Method::POST,
        &format!("/v1/channels/{}/shops/{SHOP}/authorize", kind.code()),
        Some(ADMIN_KEY),
        Some(&json!({"scope": "merchant_order,merchant_item", "service_id": "77"}).to_string()),
        &[],
    )
    .await
}

/// The seller's browser at the page: the simulator's redirect to the callback.
async fn follow_page(page: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(page).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{page}");
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn callback(app: &TestApp, url: &str) -> crate::app::Resp {
    let path = url
        .strip_prefix(&app.base)
        .expect("the callback is on the hub");
    app.call(Method::GET, path, None, None, &[]).await
}

fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn param(url: &str, k: &str) -> String {
    query(url)
        .into_iter()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

async fn stored_token(app: &TestApp, kind: ChannelKind) -> String {
    let c = kind.code().to_owned();
    let t = orderhub_domain::TenantId::parse("default").unwrap();
    app.store
        .read(move |r| r.channel_shop(&t, &c, SHOP))
        .await
        .unwrap()
        .unwrap()
        .access_token
}

const CODE_CHANNELS: [ChannelKind; 5] = [
    ChannelKind::Taobao,
    ChannelKind::Jd,
    ChannelKind::Pdd,
    ChannelKind::Douyin,
    ChannelKind::Kuaishou,
];

async fn each_channel_s_shop_is_authorized_and_its_tokens_used(app: TestApp) {
    let stop = start_processor(&app);
    for kind in CODE_CHANNELS {
        let (url, handle) = setup(&app, kind).await;
        let r = authorize(&app, kind).await;
        assert_eq!(r.status, StatusCode::OK, "{kind}: {:?}", r.body);
        let page = r.body["authorize_url"].as_str().unwrap().to_owned();
        let redirect = format!("{}/oauth/callback/{}", app.base, kind.code());
        assert_eq!(r.body["redirect_uri"], redirect.as_str());
        assert!(
            page.starts_with(&url),
            "{kind}: the simulator's page: {page}"
        );
        assert!(!param(&page, "state").is_empty(), "{page}");
        if kind != ChannelKind::Douyin {
            assert_eq!(param(&page, "redirect_uri"), redirect, "{kind}");
        }
        let back = follow_page(&page).await;
        assert!(back.starts_with(&redirect), "{kind}: {back}");
        assert_eq!(param(&back, "state"), param(&page, "state"));
        let done = callback(&app, &back).await;
        assert_eq!(done.status, StatusCode::OK, "{kind}: {:?}", done.body);
        assert_eq!(done.body["authorized"], true);
        assert_eq!(done.body["shop_id"], SHOP);
        // The channel's new token is the shop's; the old one no longer works on the channel.
        let granted = handle
            .access_token()
            .expect("the simulator granted a token");
        assert_ne!(granted, "tok-1");
        assert_eq!(stored_token(&app, kind).await, granted, "{kind}");
        let text = String::from_utf8_lossy(&done.bytes);
        assert!(!text.contains(&granted), "no token in the answer");
        // The intake worker fetches a pushed order with it.
        let order = handle.orders()[0].clone();
        let p = sim::signed_push(kind, &order, &oauth_creds(), chrono::Utc::now()).unwrap();
        assert_eq!(
            push(&app, kind, SHOP, &p, &p.body).await.status,
            StatusCode::OK
        );
        order_of(
            &app,
            kind.code(),
            &order.external_order_id,
            Duration::from_secs(20),
        )
        .await;
        // The same redirect again (a reload, a replay): the state was used.
        let again = callback(&app, &back).await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST, "{kind}");
        assert_eq!((again.code(), again.field()), ("invalid_state", "state"));
    }
    stop.send(true).ok();
}

async fn bad_states_refused_codes_and_other_sellers_store_nothing(app: TestApp) {
    let kind = ChannelKind::Pdd;
    let (_url, handle) = setup(&app, kind).await;
    let cb = |q: &str| format!("{}/oauth/callback/pdd?{q}", app.base);
    // No state, a forged one, a tampered one: 400 naming the state, never a 5xx.
    let r = authorize(&app, kind).await;
    let state = param(r.body["authorize_url"].as_str().unwrap(), "state");
    let (payload, tag) = state.split_once('.').unwrap();
    let tampered = format!("{}A.{tag}", payload);
    for q in [
        "code=c".to_owned(),
        "code=c&state=forged".to_owned(),
        "code=c&state=eyJ0IjoiZGVmYXVsdCJ9.AAAA".to_owned(),
        format!("code=c&state={tampered}"),
        format!("code=c&state={}", "x".repeat(5000)),
    ] {
        let r = callback(&app, &cb(&q)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {:?}", r.body);
        assert_eq!((r.code(), r.field()), ("invalid_state", "state"), "{q}");
    }
    // A state for PDD at another channel's callback.
    let r = callback(
        &app,
        &format!("{}/oauth/callback/jd?code=c&state={state}", app.base),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_state")
    );
    // A code the platform refuses: 400 naming its error; the old token stays.
    let r = callback(&app, &cb(&format!("code=never-issued&state={state}"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!((r.code(), r.field()), ("code_refused", "code"));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10020"),
        "{:?}",
        r.body
    );
    assert_eq!(stored_token(&app, kind).await, "tok-1");
    // The seller logged in to another shop: refused, nothing stored.
    handle.register_redirect_uri(None, Some("someone-else".into()));
    let r = authorize(&app, kind).await;
    let back = follow_page(r.body["authorize_url"].as_str().unwrap()).await;
    let r = callback(&app, &back).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!((r.code(), r.field()), ("seller_mismatch", "shop"));
    assert_eq!(stored_token(&app, kind).await, "tok-1");
    // The platform sent no code (the seller declined).
    let r = authorize(&app, kind).await;
    let state = param(r.body["authorize_url"].as_str().unwrap(), "state");
    let r = callback(&app, &cb(&format!("state={state}&error=access_denied"))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "code"));
    // A browser gets a page saying so.
    handle.register_redirect_uri(None, Some(SHOP.into()));
    let r = authorize(&app, kind).await;
    let back = follow_page(r.body["authorize_url"].as_str().unwrap()).await;
    let path = back.strip_prefix(&app.base).unwrap();
    let r = app
        .call(Method::GET, path, None, None, &[("accept", "text/html")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&r.bytes).contains("shop authorized"));
    assert_eq!(
        stored_token(&app, kind).await,
        handle.access_token().unwrap()
    );
    // WeChat Channels shops need no authorization: said, not attempted.
    let (_url, _wechat) = setup(&app, ChannelKind::Wechat).await;
    let r = authorize(&app, ChannelKind::Wechat).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!((r.code(), r.field()), ("not_supported", "channel"));
}

async fn a_hub_without_public_url_or_a_channel_without_code_flow_says_so(app: TestApp) {
    let (_url, _handle) = setup(&app, ChannelKind::Taobao).await;
    let r = authorize(&app, ChannelKind::Taobao).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!((r.code(), r.field()), ("public_url_not_set", "public_url"));
    let r = app
        .call(
            Method::POST,
            "/v1/channels/taobao/shops/not-configured/authorize",
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let body: Value = r.body;
    assert_eq!(body["error"]["field"], "shop");
}

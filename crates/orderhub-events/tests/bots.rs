//! Group-bot subscriptions (issue 24) against simulators of the three platforms' webhooks, each
//! checking a message the way its documentation says the platform does: WeCom the bot's key in
//! the URL and a markdown body of at most 4,096 bytes; DingTalk the `timestamp` (ms, within an
//! hour) and `sign` = urlencode(base64(HMAC-SHA256(secret, "<timestamp>\n<secret>"))) in the URL;
//! Feishu `timestamp` (s, within an hour) and `sign` = base64(HMAC-SHA256("<timestamp>\n<secret>",
//! "")) in the body. The signatures are recomputed here with the HMAC crate, not with orderhub's
//! functions. DingTalk answers its first message "send too fast" (130101): it is sent again.

mod harness;

use axum::extract::{Path, Query, State};
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use orderhub_domain::TenantId;
use orderhub_store::{Store, SubscriptionFormat, SubscriptionRow};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const DING_SECRET: &str = "SECtest0123456789";
const FEISHU_SECRET: &str = "feishu-secret";

#[derive(Default)]
struct Bots {
    /// (platform, the message's text) accepted.
    got: Mutex<Vec<(String, String)>>,
    /// (platform, why) refused.
    refused: Mutex<Vec<(String, String)>>,
    ding_calls: Mutex<u32>,
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

fn refuse(b: &Bots, who: &str, why: &str, answer: Value) -> axum::Json<Value> {
    b.refused.lock().push((who.into(), why.into()));
    axum::Json(answer)
}

async fn wecom(
    State(b): State<Arc<Bots>>,
    Query(q): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    if q.get("key").map(String::as_str) != Some("wecom-key") {
        return refuse(
            &b,
            "wecom",
            "key",
            json!({"errcode": 93000, "errmsg": "invalid webhook url"}),
        );
    }
    let content = body["markdown"]["content"].as_str().unwrap_or("");
    if body["msgtype"] != "markdown" || content.is_empty() || content.len() > 4096 {
        return refuse(
            &b,
            "wecom",
            "body",
            json!({"errcode": 40008, "errmsg": "invalid message type"}),
        );
    }
    b.got.lock().push(("wecom".into(), content.into()));
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

async fn dingtalk(
    State(b): State<Arc<Bots>>,
    Query(q): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
    let fresh = (Utc::now().timestamp_millis() - ts).abs() < 3_600_000;
    let want = hmac_b64(
        DING_SECRET.as_bytes(),
        format!("{ts}\n{DING_SECRET}").as_bytes(),
    );
    // `Query` has decoded the URL encoding: the value compares with the plain base64.
    if q.get("access_token").map(String::as_str) != Some("ding-token")
        || !fresh
        || q.get("sign") != Some(&want)
    {
        return refuse(
            &b,
            "dingtalk",
            "sign",
            json!({"errcode": 310000, "errmsg": "sign not match"}),
        );
    }
    let first = {
        let mut n = b.ding_calls.lock();
        *n += 1;
        *n == 1
    };
    if first {
        return axum::Json(
            json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
        );
    }
    let text = body["markdown"]["text"].as_str().unwrap_or("");
    if body["msgtype"] != "markdown" || body["markdown"]["title"].as_str().is_none_or(str::is_empty)
    {
        return refuse(
            &b,
            "dingtalk",
            "body",
            json!({"errcode": 40035, "errmsg": "missing title"}),
        );
    }
    b.got.lock().push(("dingtalk".into(), text.into()));
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

async fn feishu(
    State(b): State<Arc<Bots>>,
    Path(hook): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let ts: i64 = body["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let fresh = (Utc::now().timestamp() - ts).abs() < 3600;
    let want = hmac_b64(format!("{ts}\n{FEISHU_SECRET}").as_bytes(), b"");
    if hook != "hook-1" || !fresh || body["sign"].as_str() != Some(want.as_str()) {
        return refuse(
            &b,
            "feishu",
            "sign",
            json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}),
        );
    }
    let text = body["content"]["text"].as_str().unwrap_or("");
    if body["msg_type"] != "text" || text.is_empty() {
        return refuse(
            &b,
            "feishu",
            "body",
            json!({"code": 9499, "msg": "Bad Request"}),
        );
    }
    b.got.lock().push(("feishu".into(), text.into()));
    axum::Json(json!({"code": 0, "msg": "success", "data": {}}))
}

async fn start_bots() -> (String, Arc<Bots>) {
    let b = Arc::new(Bots::default());
    let app = axum::Router::new()
        .route("/cgi-bin/webhook/send", axum::routing::post(wecom))
        .route("/robot/send", axum::routing::post(dingtalk))
        .route("/open-apis/bot/v2/hook/{hook}", axum::routing::post(feishu))
        .with_state(b.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), b)
}

async fn subscribe_bot(
    store: &Store,
    t: &TenantId,
    format: SubscriptionFormat,
    url: String,
    secret: &str,
) {
    subscribe_with(store, t, format, url, secret, None).await;
}

async fn subscribe_with(
    store: &Store,
    t: &TenantId,
    format: SubscriptionFormat,
    url: String,
    secret: &str,
    template: Option<&str>,
) {
    let row = SubscriptionRow {
        tenant_id: t.clone(),
        subscription_id: Uuid::now_v7(),
        url,
        event_types: vec!["order.created".into()],
        secret: secret.into(),
        description: format.as_str().into(),
        created_at: Utc::now(),
        shops: None,
        format,
        template: template.map(str::to_owned),
    };
    store
        .write(0, move |tx| Ok(tx.subscription_insert(&row)?))
        .await
        .unwrap();
}

async fn every_bot_gets_the_event_signed_as_its_platform_checks(backend: &str) {
    let Some(ts) = harness::open(backend) else {
        return;
    };
    let tenant = harness::new_tenant(&ts.store).await;
    let (base, bots) = start_bots().await;
    let s = &ts.store;
    subscribe_bot(
        s,
        &tenant,
        SubscriptionFormat::Wecom,
        format!("{base}/cgi-bin/webhook/send?key=wecom-key"),
        "",
    )
    .await;
    subscribe_bot(
        s,
        &tenant,
        SubscriptionFormat::Dingtalk,
        format!("{base}/robot/send?access_token=ding-token"),
        DING_SECRET,
    )
    .await;
    subscribe_bot(
        s,
        &tenant,
        SubscriptionFormat::Feishu,
        format!("{base}/open-apis/bot/v2/hook/hook-1"),
        FEISHU_SECRET,
    )
    .await;
    // The stored rows come back with their format and the bot's secret.
    let t2 = tenant.clone();
    let subs = s.read(move |r| r.subscriptions(Some(&t2))).await.unwrap();
    let mut formats: Vec<&str> = subs.iter().map(|x| x.format.as_str()).collect();
    formats.sort_unstable();
    assert_eq!(formats, ["dingtalk", "feishu", "wecom"]);
    assert!(subs.iter().any(|x| x.secret == DING_SECRET));
    assert!(
        subs.iter()
            .any(|x| x.url.ends_with("access_token=ding-token")),
        "the whole URL comes back from its sealed column"
    );
    // What the `url` column and the API hold for a bot: its URL with the key blanked (the whole
    // URL is sealed with the bot's secret; the round trip above reads it back).
    for (format, url) in [
        (
            SubscriptionFormat::Wecom,
            "https://q/cgi-bin/webhook/send?key=wecom-key",
        ),
        (
            SubscriptionFormat::Feishu,
            "https://f/open-apis/bot/v2/hook/hook-1",
        ),
    ] {
        let shown = orderhub_store::ops::redacted_bot_url(format, url);
        assert!(
            !shown.contains("wecom-key") && !shown.contains("hook-1"),
            "{shown}"
        );
    }
    let cfg = orderhub_events::EventsConfig {
        poll_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        subscriptions_refresh: Duration::from_millis(100),
        ..orderhub_events::EventsConfig::default()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    harness::write_shop_events(s, &tenant, &[Some("tmall-1")]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while bots.got.lock().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rt.stop().await;
    assert!(bots.refused.lock().is_empty(), "{:?}", bots.refused.lock());
    let got = bots.got.lock().clone();
    let mut platforms: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    platforms.sort_unstable();
    assert_eq!(platforms, ["dingtalk", "feishu", "wecom"], "{got:?}");
    for (p, text) in &got {
        assert!(
            text.contains("order.created") && text.contains("shop: tmall-1"),
            "{p}: {text}"
        );
    }
    assert_eq!(
        *bots.ding_calls.lock(),
        2,
        "\"too fast\" once, then delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bot_gets_the_event_signed_as_its_platform_checks_sqlite() {
    every_bot_gets_the_event_signed_as_its_platform_checks("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bot_gets_the_event_signed_as_its_platform_checks_postgres() {
    every_bot_gets_the_event_signed_as_its_platform_checks("postgres").await;
}

/// A subscription's template is its message: rendered into the WeCom and DingTalk messages with
/// the event's fields (the stored template comes back from the store); a template that fails on
/// the event (stored before a check, or naming a field this event makes fail) sends the fixed
/// message instead — never a lost notification.
async fn a_template_is_the_message_and_a_failing_one_sends_the_fixed_one(backend: &str) {
    let Some(ts) = harness::open(backend) else {
        return;
    };
    let tenant = harness::new_tenant(&ts.store).await;
    let (base, bots) = start_bots().await;
    let s = &ts.store;
    let template = "新订单 {{ order or order_id }} · 店铺 {{ shop }}{% if tracking_no %} · {{ tracking_no }}{% endif %}";
    orderhub_events::template::validate(template).unwrap();
    subscribe_with(
        s,
        &tenant,
        SubscriptionFormat::Wecom,
        format!("{base}/cgi-bin/webhook/send?key=wecom-key"),
        "",
        Some(template),
    )
    .await;
    subscribe_with(
        s,
        &tenant,
        SubscriptionFormat::Dingtalk,
        format!("{base}/robot/send?access_token=ding-token"),
        DING_SECRET,
        Some(template),
    )
    .await;
    // Not what the API stores (it refuses an unknown name): a failure at delivery.
    subscribe_with(
        s,
        &tenant,
        SubscriptionFormat::Feishu,
        format!("{base}/open-apis/bot/v2/hook/hook-1"),
        FEISHU_SECRET,
        Some("{{ receiver_name }}"),
    )
    .await;
    let t2 = tenant.clone();
    let subs = s.read(move |r| r.subscriptions(Some(&t2))).await.unwrap();
    assert_eq!(
        subs.iter()
            .filter(|x| x.template.as_deref() == Some(template))
            .count(),
        2
    );
    let cfg = orderhub_events::EventsConfig {
        poll_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        subscriptions_refresh: Duration::from_millis(100),
        ..orderhub_events::EventsConfig::default()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let written = harness::write_shop_events(s, &tenant, &[Some("tmall-1")]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while bots.got.lock().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rt.stop().await;
    assert!(bots.refused.lock().is_empty(), "{:?}", bots.refused.lock());
    let got: HashMap<String, String> = bots.got.lock().iter().cloned().collect();
    let order_id = written[0].2;
    let want = format!("新订单 {order_id} · 店铺 tmall-1");
    assert!(got["wecom"].ends_with(&want), "{}", got["wecom"]);
    assert!(got["wecom"].starts_with("**orderhub · order.created**"));
    assert!(got["dingtalk"].ends_with(&want), "{}", got["dingtalk"]);
    assert!(
        got["feishu"].contains("shop: tmall-1") && !got["feishu"].contains("新订单"),
        "the fixed message: {}",
        got["feishu"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_is_the_message_and_a_failing_one_sends_the_fixed_one_sqlite() {
    a_template_is_the_message_and_a_failing_one_sends_the_fixed_one("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_is_the_message_and_a_failing_one_sends_the_fixed_one_postgres() {
    a_template_is_the_message_and_a_failing_one_sends_the_fixed_one("postgres").await;
}

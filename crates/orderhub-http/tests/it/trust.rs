//! Trust (issue 18): the bootstrap key after a revoke, personal data at rest, refused pushes,
//! the outbound URL policy.

use crate::app::*;
use crate::on_every_backend;
use futures::StreamExt;
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

// ---- The outbound URL policy ----------------------------------------------------------------

/// Runs each named test on both backends with the outbound URL policy of `orderhub serve`
/// (private addresses refused).
macro_rules! on_every_backend_public_only {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use orderhub_core::outbound::OutboundPolicy;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = crate::app::spawn_app_with("sqlite", OutboundPolicy::PUBLIC_ONLY).await;
                super::$name(app.unwrap()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match crate::app::spawn_app_with("postgres", OutboundPolicy::PUBLIC_ONLY).await {
                    Some(app) => super::$name(app).await,
                    None => eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here"),
                }
            }
        }
    )*};
}

on_every_backend_public_only!(private_destinations_are_refused_when_created,);
on_every_backend!(
    private_destinations_are_allowed_with_the_setting,
    a_delivery_to_a_name_that_now_resolves_to_loopback_is_refused_by_the_policy_alone,
);

/// Each refused at creation, with the address class; none of them is ever connected to.
const PRIVATE_URLS: [(&str, &str); 6] = [
    ("http://127.0.0.1:9/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link local"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://localhost:9/hook", "loopback"),
    ("http://[::ffff:192.168.0.1]/hook", "private"),
];

async fn private_destinations_are_refused_when_created(app: TestApp) {
    for (url, class) in PRIVATE_URLS {
        let r = app
            .post(
                "/v1/subscriptions",
                ADMIN_KEY,
                &json!({"url": url, "event_types": ["*"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!((r.code(), r.field()), ("private_address", "url"), "{url}");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(class), "{url}: {msg}");
        let r = app
            .call(
                Method::PUT,
                "/v1/channels/taobao/shops/ssrfshop",
                Some(ADMIN_KEY),
                Some(
                    &json!({"app_key": "k", "secret": "s", "access_token": "t", "api_base_url": url})
                        .to_string(),
                ),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(
            (r.code(), r.field()),
            ("private_address", "api_base_url"),
            "{url}"
        );
    }
    let subs = app.get("/v1/subscriptions", ADMIN_KEY).await;
    assert_eq!(subs.status, StatusCode::OK);
    assert!(
        !subs.body.to_string().contains("hook"),
        "nothing was created: {}",
        subs.body
    );
}

async fn private_destinations_are_allowed_with_the_setting(app: TestApp) {
    for (url, _) in PRIVATE_URLS {
        let r = app
            .post(
                "/v1/subscriptions",
                ADMIN_KEY,
                &json!({"url": url, "event_types": ["*"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{url}: {:?}", r.body);
    }
    let r = app
        .call(
            Method::PUT,
            "/v1/channels/taobao/shops/ssrfshop",
            Some(ADMIN_KEY),
            Some(
                &json!({"app_key": "k", "secret": "s", "access_token": "t", "api_base_url": "http://169.254.169.254"})
                    .to_string(),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// A local HTTP endpoint that answers every request with `status` and counts the requests and
/// connections it got. Listens on 127.0.0.1 only.
pub struct Receiver {
    pub port: u16,
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

pub async fn receiver(status: u16) -> Receiver {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { port, hits }
}

pub fn fast_events(
    outbound: orderhub_core::outbound::OutboundPolicy,
) -> orderhub_events::EventsConfig {
    use std::time::Duration;
    orderhub_events::EventsConfig {
        lease_ttl: Duration::from_secs(2),
        poll_interval: Duration::from_millis(50),
        supervise_every: Duration::from_millis(200),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        replay_poll: Duration::from_millis(100),
        subscriptions_refresh: Duration::from_millis(100),
        max_attempts: 2,
        delivery_timeout: Duration::from_secs(2),
        outbound,
        ..orderhub_events::EventsConfig::default()
    }
}

/// Dead letters of the default tenant, once there are at least `n` (within 30 s).
pub async fn dead_letters(app: &TestApp, n: usize) -> Vec<serde_json::Value> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = app.get("/v1/dead-letters?limit=100", ADMIN_KEY).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let all = r.body["dead_letters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if all.len() >= n {
            return all;
        }
        assert!(
            std::time::Instant::now() < until,
            "{n} dead letters never appeared: {all:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Subscriptions made while private addresses were allowed; then the dispatcher runs with the
/// policy of `orderhub serve`: `localhost` resolves to loopback at call time, `127.0.0.1` is
/// loopback as written. Neither is connected to, and the dead letters say only that the policy
/// refused them (nothing a tenant could read a port's state from).
async fn a_delivery_to_a_name_that_now_resolves_to_loopback_is_refused_by_the_policy_alone(
    app: TestApp,
) {
    use orderhub_core::outbound::{OutboundPolicy, REFUSED};
    use std::sync::atomic::Ordering;
    let open = receiver(200).await;
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for url in [
        format!("http://localhost:{}/hook", open.port),
        format!("http://127.0.0.1:{}/hook", open.port),
        format!("http://localhost:{closed_port}/hook"),
    ] {
        let r = app
            .post(
                "/v1/subscriptions",
                ADMIN_KEY,
                &json!({"url": url, "event_types": ["order.created"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let events = orderhub_events::EventsRuntime::start(
        app.store.clone(),
        fast_events(OutboundPolicy::PUBLIC_ONLY),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        app.create(ADMIN_KEY, "shop-1", "SSRF-1").await.status,
        StatusCode::CREATED
    );
    let dead = dead_letters(&app, 3).await;
    events.stop().await;
    assert_eq!(open.hits.load(Ordering::SeqCst), 0, "nothing was sent");
    for d in &dead {
        assert_eq!(d["last_error"], REFUSED, "{d}");
        assert_eq!(d["attempts"], 1, "not retried: {d}");
    }
}

/// The channel API client of the hub's intake (fetches, pulls, token renewals, write-backs) at
/// call time: a shop's `api_base_url` naming a loopback host is not connected to under the policy
/// of `orderhub serve`, and the call reports only the policy; allowed, the same call goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_api_calls_to_private_addresses_are_refused_at_call_time() {
    use orderhub_channels::ApiError;
    use orderhub_core::outbound::{OutboundPolicy, REFUSED};
    use std::sync::atomic::Ordering;
    let open = receiver(200).await;
    let strict = orderhub_intake::channel_client(OutboundPolicy::PUBLIC_ONLY);
    for url in [
        format!("http://localhost:{}/router/rest", open.port),
        format!("http://127.0.0.1:{}/router/rest", open.port),
        format!("http://[::ffff:127.0.0.1]:{}/router/rest", open.port),
    ] {
        match strict
            .call("GET", &url, "text/plain", &[], Vec::new())
            .await
        {
            Err(ApiError::Transport(why)) => assert_eq!(why, REFUSED, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    assert_eq!(open.hits.load(Ordering::SeqCst), 0, "nothing was sent");
    let allowed = orderhub_intake::channel_client(OutboundPolicy::ALLOW_PRIVATE);
    let url = format!("http://localhost:{}/router/rest", open.port);
    let (status, _) = allowed
        .call("GET", &url, "text/plain", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(open.hits.load(Ordering::SeqCst), 1);
}

// ---- Refused pushes -------------------------------------------------------------------------

on_every_backend!(forged_pushes_are_kept_bounded_and_make_no_order,);

/// Anyone can post to a shop's webhook. Twice the cap of forged pushes (signed with a wrong
/// secret) leave exactly the cap of records, none with its body or headers, the rest counted;
/// no order is made; the refusals are in /metrics.
async fn forged_pushes_are_kept_bounded_and_make_no_order(app: TestApp) {
    use orderhub_channels::sim;
    use orderhub_channels::{ChannelKind, ShopCredentials};
    use orderhub_intake::REFUSED_KEPT_MAX;
    let kind = ChannelKind::Taobao;
    let (_, handle) = taobao_shop(&app, "forgedshop", 1, 7).await;
    let before = refused_metric(&app).await;
    let forger = ShopCredentials::new("app-key-1", "not-the-secret");
    let order = handle.orders()[0].clone();
    let p = sim::signed_push(kind, &order, &forger, chrono::Utc::now()).unwrap();
    let total = 2 * REFUSED_KEPT_MAX as usize;
    let statuses: Vec<StatusCode> = futures::stream::iter(0..total)
        .map(|_| {
            let p = p.clone();
            let app = &app;
            async move {
                let mut rb = app
                    .client
                    .post(format!(
                        "{}/v1/tenants/default/channels/taobao/shops/forgedshop/webhook",
                        app.base
                    ))
                    .header("content-type", p.content_type)
                    .body(p.body.clone());
                for (k, v) in &p.headers {
                    rb = rb.header(k.as_str(), v.as_str());
                }
                if !p.query.is_empty() {
                    rb = rb.query(&p.query);
                }
                rb.send().await.unwrap().status()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "every forged push is 401"
    );
    let t = orderhub_domain::TenantId::parse("default").unwrap();
    let t2 = t.clone();
    let rows = app
        .store
        .read(move |r| r.channel_messages(Some(&t2), Some("rejected"), None, 10_000, None))
        .await
        .unwrap();
    let rows: Vec<_> = rows.iter().filter(|m| m.shop_id == "forgedshop").collect();
    assert_eq!(
        rows.len(),
        REFUSED_KEPT_MAX as usize,
        "at most the cap is kept"
    );
    for m in &rows {
        assert!(m.body.is_empty() && m.headers.is_empty(), "no body kept");
        assert_eq!(m.rule.as_deref(), Some("bad_signature"));
        let reason = m.reason.as_deref().unwrap();
        assert!(
            reason.contains(&format!("{} bytes, sha256 ", p.body.len())),
            "{reason}"
        );
    }
    let counts = app
        .store
        .read(move |r| r.channel_refusals(&t))
        .await
        .unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(
        (
            counts[0].shop_id.as_str(),
            counts[0].kept,
            counts[0].dropped
        ),
        ("forgedshop", REFUSED_KEPT_MAX, REFUSED_KEPT_MAX),
        "the rest is counted"
    );
    assert_eq!(app.order_count().await, 0, "a forged push makes no order");
    assert!(
        refused_metric(&app).await - before >= total as f64,
        "the metric counts every refused push"
    );
}

/// `orderhub_channel_pushes_refused_total{channel="taobao",rule="bad_signature"}` (tests in this
/// process share the recorder: compare differences).
async fn refused_metric(app: &TestApp) -> f64 {
    app.metrics()
        .await
        .lines()
        .find(|l| {
            l.starts_with("orderhub_channel_pushes_refused_total")
                && l.contains("channel=\"taobao\"")
                && l.contains("rule=\"bad_signature\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// ---- Personal data at rest ------------------------------------------------------------------

on_every_backend!(personal_data_is_nowhere_in_clear_after_a_full_flow,);

/// Receivers, distinctive enough that a hit is theirs: one arrives by a channel push, one by the
/// API. Name, phone and detail address are the personal fields.
const CHANNEL_RECEIVER: [&str; 3] = ["欧阳翀龑", "18712349876", "龙蟠里乙9号楼"];
const API_RECEIVER: [&str; 3] = ["司徒翯翾", "15876543219", "翠微路甲7号院3单元"];

/// The forms a value could take at rest: as written, JSON-escaped (`\uXXXX`, either case; and
/// with the backslash doubled, as PostgreSQL's record text shows it), and as the hex text that
/// PostgreSQL shows for `bytea`.
fn forms(v: &str) -> Vec<(String, String)> {
    let esc = |upper: bool| -> String {
        v.chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf)
                        .iter()
                        .map(|u| {
                            if upper {
                                format!("\\u{u:04X}")
                            } else {
                                format!("\\u{u:04x}")
                            }
                        })
                        .collect()
                }
            })
            .collect()
    };
    let mut out = vec![(v.to_owned(), format!("{v} as written"))];
    for upper in [false, true] {
        let e = esc(upper);
        if e != v {
            out.push((
                e.replace('\\', "\\\\"),
                format!("{v} JSON-escaped, doubled"),
            ));
            out.push((e, format!("{v} JSON-escaped")));
        }
    }
    let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
    out.push((hex, format!("{v} as bytea hex")));
    out
}

/// Where each form of each value occurs: `(what, where)`.
fn hits_in(places: &[(String, Vec<u8>)], values: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for v in values {
        for (needle, what) in forms(v) {
            for (place, bytes) in places {
                if let Some(at) = bytes
                    .windows(needle.len())
                    .position(|w| w == needle.as_bytes())
                {
                    hits.push(format!("{what} found in {place} at byte {at}"));
                }
            }
        }
    }
    hits
}

/// Every byte the app's database holds: the SQLite file and its WAL, or each row of every table
/// of the test's PostgreSQL schema as text (`<table> row <n>`).
async fn stored_bytes(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    if let Some(path) = &app.sqlite_path {
        let mut out = Vec::new();
        for suffix in ["", "-wal"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            let bytes = std::fs::read(&p).unwrap_or_default();
            out.push((p.display().to_string(), bytes));
        }
        return out;
    }
    let (url, schema) = app.pg.clone().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let tables: Vec<String> = c
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                &[&schema],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(tables.len() > 10, "the schema's tables: {tables:?}");
        let mut out = Vec::new();
        for t in tables {
            let rows = c
                .query(&format!("SELECT t::text FROM {schema}.\"{t}\" t"), &[])
                .unwrap();
            for (i, r) in rows.iter().enumerate() {
                let text: String = r.get(0);
                out.push((format!("table {t} row {i}"), text.into_bytes()));
            }
        }
        out
    })
    .await
    .unwrap()
}

async fn personal_data_is_nowhere_in_clear_after_a_full_flow(app: TestApp) {
    use orderhub_channels::sim;
    use orderhub_channels::{ChannelKind, ShopCredentials};
    use orderhub_domain::Personal;
    use std::time::{Duration, Instant};
    // The processor and the event dispatcher the hub runs beside the API.
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(orderhub_intake::process::run(
        app.store.clone(),
        app.intake.clone(),
        rx,
    ));
    let failing = receiver(500).await;
    let r = app
        .post(
            "/v1/subscriptions",
            ADMIN_KEY,
            &json!({"url": format!("http://127.0.0.1:{}/hook", failing.port), "event_types": ["*"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let events = orderhub_events::EventsRuntime::start(
        app.store.clone(),
        fast_events(orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE),
        vec![],
    )
    .await
    .unwrap();

    // 1. A channel push, signed, of an order whose receiver is CHANNEL_RECEIVER; and the same
    //    order pushed by a forger (refused: its body is not kept).
    let kind = ChannelKind::Taobao;
    let (creds, handle) = taobao_shop(&app, "piishop", 0, 3).await;
    let order = handle
        .new_order(|o| {
            o.receiver.name = Personal::new(CHANNEL_RECEIVER[0]);
            o.receiver.phone = Personal::new(CHANNEL_RECEIVER[1]);
            o.receiver.detail = Personal::new(CHANNEL_RECEIVER[2]);
        })
        .expect("nothing offered");
    let send = |p: sim::SignedPush| {
        let mut rb = app
            .client
            .post(format!(
                "{}/v1/tenants/default/channels/taobao/shops/piishop/webhook",
                app.base
            ))
            .header("content-type", p.content_type)
            .body(p.body.clone());
        for (k, v) in &p.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if !p.query.is_empty() {
            rb = rb.query(&p.query);
        }
        rb.send()
    };
    let p = sim::signed_push(kind, &order, &creds, chrono::Utc::now()).unwrap();
    assert_eq!(send(p).await.unwrap().status(), StatusCode::OK);
    let forged = sim::signed_push(
        kind,
        &order,
        &ShopCredentials::new("app-key-1", "wrong"),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(
        send(forged).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let pii = app.key("admin", None, true).await;
    let until = Instant::now() + Duration::from_secs(20);
    let channel_order = loop {
        let r = app.get("/v1/orders?channel=taobao&limit=50", &pii).await;
        if let Some(o) = r.body["orders"].as_array().and_then(|os| {
            os.iter()
                .find(|o| o["external_order_id"] == order.external_order_id)
                .cloned()
        }) {
            break o;
        }
        assert!(Instant::now() < until, "the pushed order never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = channel_order["order_id"].as_str().unwrap();
    let full = app.get(&format!("/v1/orders/{id}"), &pii).await;
    assert_eq!(
        full.body["receiver"]["phone"], CHANNEL_RECEIVER[1],
        "the receiver arrived and reads back with pii:read"
    );

    // 2. An API create with a pii:read key and an Idempotency-Key, then the same request again:
    //    the stored response comes back (it holds the receiver in clear), the same bytes.
    let mut body = order_json("shop-1", "PII-FLOW-1");
    body["receiver"]["name"] = json!(API_RECEIVER[0]);
    body["receiver"]["phone"] = json!(API_RECEIVER[1]);
    body["receiver"]["detail"] = json!(API_RECEIVER[2]);
    let body = body.to_string();
    let headers = [("idempotency-key", "pii-flow-key-1")];
    let first = app
        .call(
            Method::POST,
            "/v1/orders",
            Some(&pii),
            Some(&body),
            &headers,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["receiver"]["phone"], API_RECEIVER[1]);
    let again = app
        .call(
            Method::POST,
            "/v1/orders",
            Some(&pii),
            Some(&body),
            &headers,
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.bytes, first.bytes, "the stored response, replayed");

    // 3. The subscription's endpoint fails: the orders' events become dead letters; one is
    //    replayed (and fails again).
    let dead = dead_letters(&app, 2).await;
    let dl = dead[0]["dead_letter_id"].as_str().unwrap();
    let r = app
        .call(
            Method::POST,
            &format!("/v1/dead-letters/{dl}/replay"),
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let hits_before = failing.hits.load(std::sync::atomic::Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(20);
    while failing.hits.load(std::sync::atomic::Ordering::SeqCst) == hits_before {
        assert!(Instant::now() < until, "the replay was never attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    events.stop().await;

    // 4. Nothing at rest holds a receiver's name, phone or address in clear.
    let places = stored_bytes(&app).await;
    assert!(
        !hits_in(&places, &["PII-FLOW-1", &order.external_order_id]).is_empty(),
        "the scan reads where the orders are (their external ids are stored in clear)"
    );
    let mut values: Vec<&str> = CHANNEL_RECEIVER.to_vec();
    values.extend(API_RECEIVER);
    let hits = hits_in(&places, &values);
    assert!(
        hits.is_empty(),
        "personal data in clear at rest:\n{}",
        hits.join("\n")
    );
}

/// Pinduoduo's message service is reached at a URL made from the shop's `api_base_url`: under the
/// policy of `orderhub serve` a loopback one is not connected to; allowed, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pdd_message_service_connection_obeys_the_policy() {
    use orderhub_channels::sim::{self, SimSettings};
    use orderhub_channels::{ChannelKind, ShopCredentials};
    use orderhub_core::outbound::OutboundPolicy;
    use std::time::{Duration, Instant};
    let app = spawn_app("sqlite").await.unwrap();
    let creds = ShopCredentials::new("pdd-client-1", "pdd-s3cret");
    let (url, handle) = sim::spawn(ChannelKind::Pdd, SimSettings::new(creds.clone(), 0, 5))
        .await
        .unwrap();
    let r = app
        .call(
            Method::PUT,
            "/v1/channels/pdd/shops/171504183",
            Some(ADMIN_KEY),
            Some(&json!({"app_key": creds.app_key, "secret": creds.secret, "access_token": "tok", "api_base_url": url}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let relay = |outbound| {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let hooks = orderhub_intake::Webhooks {
            outbound,
            ..Default::default()
        };
        tokio::spawn(orderhub_intake::pmc::run(app.store.clone(), hooks, rx));
        stop
    };
    let stop = relay(OutboundPolicy::PUBLIC_ONLY);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    assert_eq!(
        handle.pmc_stats().connections,
        0,
        "nothing was connected to"
    );
    let _stop = relay(OutboundPolicy::ALLOW_PRIVATE);
    let until = Instant::now() + Duration::from_secs(15);
    while handle.pmc_stats().connections == 0 {
        assert!(Instant::now() < until, "allowed, the relay connects");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Taobao simulator with `orders` orders and a shop of the default tenant configured against
/// it; the shop's credentials and the simulator.
async fn taobao_shop(
    app: &TestApp,
    shop: &str,
    orders: usize,
    seed: u64,
) -> (
    orderhub_channels::ShopCredentials,
    orderhub_channels::sim::SimHandle,
) {
    use orderhub_channels::sim::{self, SimSettings};
    let mut creds = orderhub_channels::ShopCredentials::new("app-key-1", "s3cret");
    creds.access_token = "tok-1".into();
    let (url, handle) = sim::spawn(
        orderhub_channels::ChannelKind::Taobao,
        SimSettings::new(creds.clone(), orders, seed),
    )
    .await
    .unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/channels/taobao/shops/{shop}"),
            Some(ADMIN_KEY),
            Some(&json!({"app_key": creds.app_key, "secret": creds.secret, "access_token": creds.access_token, "api_base_url": url}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (creds, handle)
}

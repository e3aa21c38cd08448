use orderhub_core::crypto::PiiCipher;
use orderhub_core::ports::SystemClock;
use orderhub_domain::TenantId;
use orderhub_http::{AppState, bootstrap};
use orderhub_store::{Store, StoreConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

pub const ADMIN_KEY: &str = "test-admin-key";
pub const OTHER_TENANT_KEY: &str = "other-tenant-admin-key";

/// Runs each named test on SQLite and PostgreSQL, as `<test>::sqlite` and `<test>::postgres`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::app::spawn_app("sqlite").await.unwrap()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::app::spawn_app("postgres").await {
                    Some(app) => super::$name(app).await,
                    None => eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here"),
                }
            }
        }
    )*};
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The app's store, for seeding what no route writes (dead letters come from the dispatcher).
    pub store: Store,
    /// The webhooks' state: the processor takes stored messages from its inbox.
    pub intake: orderhub_intake::Webhooks,
    /// Where the data lives: the SQLite file, or PostgreSQL's URL and the test's schema.
    pub sqlite_path: Option<std::path::PathBuf>,
    pub pg: Option<(String, String)>,
    /// The router's limit on requests in flight: how many are in flight now.
    pub admission: orderhub_http::admission::Admission,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl Resp {
    /// The error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }
}

pub async fn spawn_app(backend: &str) -> Option<TestApp> {
    spawn_app_with(
        backend,
        orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
    )
    .await
}

/// An app whose outbound URL policy is `outbound` (the default app allows private addresses:
/// the tests' simulators and receivers listen on loopback).
pub async fn spawn_app_with(
    backend: &str,
    outbound: orderhub_core::outbound::OutboundPolicy,
) -> Option<TestApp> {
    spawn_app_limited(
        backend,
        outbound,
        orderhub_http::admission::HttpLimits::default(),
    )
    .await
}

/// An app with `limits` on requests in flight and each request's time.
pub async fn spawn_app_limited(
    backend: &str,
    outbound: orderhub_core::outbound::OutboundPolicy,
    limits: orderhub_http::admission::HttpLimits,
) -> Option<TestApp> {
    spawn_app_full(backend, outbound, limits, false).await
}

/// An app whose `--public-url` is its own address (shops can be authorized by OAuth).
pub async fn spawn_app_public(backend: &str) -> Option<TestApp> {
    spawn_app_full(
        backend,
        orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        orderhub_http::admission::HttpLimits::default(),
        true,
    )
    .await
}

async fn spawn_app_full(
    backend: &str,
    outbound: orderhub_core::outbound::OutboundPolicy,
    limits: orderhub_http::admission::HttpLimits,
    public: bool,
) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite_path = None;
    let mut pg = None;
    let cipher = PiiCipher::from_hex(&PiiCipher::generate_hex()).unwrap();
    let config = match backend {
        "sqlite" => {
            sqlite_path = Some(dir.path().join("orderhub.db"));
            StoreConfig::Sqlite {
                path: dir.path().join("orderhub.db"),
            }
        }
        _ => {
            let url = std::env::var("ORDERHUB_TEST_DATABASE_URL")
                .ok()
                .filter(|s| !s.is_empty());
            let required = std::env::var("ORDERHUB_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
            assert!(
                url.is_some() || !required,
                "ORDERHUB_REQUIRE_POSTGRES=1 but ORDERHUB_TEST_DATABASE_URL is not set"
            );
            let url = url?;
            let schema = format!("h_{}", uuid::Uuid::now_v7().simple());
            let (u, s) = (url.clone(), schema.clone());
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&u, postgres::NoTls).unwrap_or_else(|e| {
                    panic!("ORDERHUB_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
                c.batch_execute(&format!("CREATE SCHEMA {s}")).unwrap();
            })
            .join()
            .unwrap();
            pg = Some((url.clone(), schema.clone()));
            let sep = if url.contains('?') { '&' } else { '?' };
            StoreConfig::Postgres {
                url: format!("{url}{sep}options=-c%20search_path%3D{schema}"),
                writers: 4,
                readers: 2,
            }
        }
    };
    let oauth_key = cipher.derive_key("oauth-state");
    let store = Store::open(&config, cipher).unwrap();
    // The carriers whose tracking pushes are taken (yto stays off: tests use it as the one off
    // the whitelist).
    let carriers = vec!["sf".to_owned(), "zto".to_owned(), "jt".to_owned()];
    bootstrap::bootstrap(&store, Some(ADMIN_KEY), &carriers)
        .await
        .unwrap();
    let other = TenantId::parse("other").unwrap();
    bootstrap::ensure_tenant(&store, &other, "Other", &carriers)
        .await
        .unwrap();
    bootstrap::ensure_admin_key(&store, &other, Some(OTHER_TENANT_KEY), "other admin")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let oauth = orderhub_http::routes::oauth::OAuth::new(
        oauth_key,
        public.then(|| format!("http://{addr}")),
    );
    let state = AppState::with_oauth(store.clone(), Arc::new(SystemClock), outbound, oauth);
    let intake = state.intake.clone();
    let admission = orderhub_http::admission::Admission::new(limits);
    let app = orderhub_http::router_with(state, admission.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Some(TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        store,
        intake,
        sqlite_path,
        pg,
        admission,
        _dir: dir,
    })
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
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

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None, &[]).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(&body.to_string()), &[])
            .await
    }

    pub async fn create(&self, key: &str, shop: &str, external: &str) -> Resp {
        self.post("/v1/orders", key, &order_json(shop, external))
            .await
    }

    /// Raises exception `code` on order `id` of the default tenant through the core function
    /// intake and the watchdogs use. Returns the order's version after it.
    pub async fn raise(&self, id: &str, code: &'static str) -> u64 {
        let id = orderhub_domain::OrderId::parse(id).unwrap();
        let actor = orderhub_core::usecases::Actor::system(
            &TenantId::parse("default").unwrap(),
            "test-intake",
        );
        let o = self
            .store
            .write(0, move |tx| {
                orderhub_core::usecases::raise_exception(
                    tx,
                    &actor,
                    id,
                    code,
                    json!({"channel_status": "TRADE_CLOSED"}),
                    chrono::Utc::now(),
                )
            })
            .await
            .unwrap()
            .expect("the order did not carry the exception yet");
        o.version
    }

    /// A new API key of `role` for the default tenant.
    pub async fn key(&self, role: &str, shops: Option<&[&str]>, pii: bool) -> String {
        let scopes: Vec<&str> = if pii { vec!["pii:read"] } else { vec![] };
        let r = self
            .post(
                "/v1/api-keys",
                ADMIN_KEY,
                &json!({"name": role, "role": role, "shops": shops, "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["key"].as_str().unwrap().to_owned()
    }

    pub async fn event_count(&self) -> usize {
        self.get("/v1/events?limit=1000", ADMIN_KEY).await.body["events"]
            .as_array()
            .unwrap()
            .len()
    }

    pub async fn order_count(&self) -> usize {
        self.get("/v1/orders?limit=500", ADMIN_KEY).await.body["orders"]
            .as_array()
            .unwrap()
            .len()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub fn order_json(shop: &str, external: &str) -> Value {
    json!({
        "shop_id": shop,
        "channel": "taobao",
        "external_order_id": external,
        "channel_status": "WAIT_BUYER_PAY",
        "created_at": "2026-11-11T00:00:05+08:00",
        "buyer": {"nick": "小王"},
        "receiver": {
            "name": "王小明", "phone": "13812345678", "province": "浙江省", "city": "杭州市",
            "district": "西湖区", "detail": "文三路100号"
        },
        "lines": [
            {"sku": "SKU-1", "title": "T恤 ®™ 😀", "quantity": 2, "unit_price": "49.90", "discount": "5.00"},
            {"sku": "SKU-2", "title": "Cap", "quantity": 1, "unit_price": "20.00"},
            {"sku": "SKU-3", "title": "Socks", "quantity": 3, "unit_price": "9.90"}
        ],
        "amounts": {"currency": "CNY", "shipping_fee": "8.00"}
    })
}

//! Test fixtures: stores on fresh databases, a webhook subscriber, events written straight into
//! the outbox, a private nats-server that can be stopped and started.

#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use orderhub_core::ports::EventRecord;
use orderhub_domain::TenantId;
use orderhub_store::{DeadLetterRow, Lease, Store, SubscriptionRow};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const SECRET: &str = "whsec_test_secret";

pub use orderhub_store::testing::open;

pub async fn new_tenant(store: &Store) -> TenantId {
    let t = TenantId::parse(&format!("t{}", &Uuid::new_v4().simple().to_string()[..12])).unwrap();
    let t2 = t.clone();
    store
        .write(0, move |tx| {
            Ok(tx.tenant_insert(&t2, "test", &serde_json::json!({}))?)
        })
        .await
        .unwrap();
    t
}

pub async fn subscribe(store: &Store, tenant: &TenantId, url: &str, types: &[&str]) -> Uuid {
    subscribe_scoped(store, tenant, url, types, None).await
}

/// A subscription made by a key scoped to `shops` (`None`: every shop).
pub async fn subscribe_scoped(
    store: &Store,
    tenant: &TenantId,
    url: &str,
    types: &[&str],
    shops: Option<&[&str]>,
) -> Uuid {
    let row = SubscriptionRow {
        tenant_id: tenant.clone(),
        subscription_id: Uuid::now_v7(),
        url: url.to_owned(),
        event_types: types.iter().map(|s| s.to_string()).collect(),
        secret: SECRET.into(),
        description: "test".into(),
        created_at: Utc::now(),
        shops: shops.map(|s| {
            s.iter()
                .map(|x| orderhub_domain::ShopId::parse(x).unwrap())
                .collect()
        }),
        format: orderhub_store::SubscriptionFormat::Webhook,
        template: None,
    };
    let id = row.subscription_id;
    store
        .write(0, move |tx| Ok(tx.subscription_insert(&row)?))
        .await
        .unwrap();
    id
}

/// Writes one `order.created` event for a new order of each shop given (`None`: an event of no
/// shop), in that order, one transaction each.
pub async fn write_shop_events(
    store: &Store,
    tenant: &TenantId,
    shops: &[Option<&str>],
) -> Vec<Written> {
    let mut out = Vec::new();
    for shop in shops {
        let a = Uuid::now_v7();
        let e = EventRecord {
            event_id: Uuid::now_v7(),
            tenant_id: tenant.clone(),
            event_type: "order.created".into(),
            aggregate_id: a,
            aggregate_version: 1,
            occurred_at: Utc::now(),
            trace_id: "test".into(),
            payload: match shop {
                Some(s) => serde_json::json!({"order_id": a, "shop_id": s}),
                None => serde_json::json!({"order_id": a}),
            }
            .to_string(),
        };
        out.push((e.event_id, e.event_type.clone(), a, 1));
        store
            .write(0, move |tx| Ok(tx.outbox_append(&e)?))
            .await
            .unwrap();
    }
    out
}

/// (event id, type, aggregate, version) of an event written to the outbox.
pub type Written = (Uuid, String, Uuid, u64);

fn event_type(version: u64) -> &'static str {
    match version {
        1 => "order.created",
        2 => "order.paid",
        3 => "order.allocated",
        4 => "order.released",
        5 => "order.shipped",
        _ => "order.delivered",
    }
}

/// Writes `versions` events for each of `aggregates` aggregates: one transaction per version, so
/// aggregates interleave in the outbox.
pub async fn write_events(
    store: &Store,
    tenant: &TenantId,
    aggregates: usize,
    versions: u64,
) -> Vec<Written> {
    write_events_paced(store, tenant, aggregates, versions, Duration::ZERO).await
}

pub async fn write_events_slowly(
    store: &Store,
    tenant: &TenantId,
    aggregates: usize,
    versions: u64,
) -> Vec<Written> {
    write_events_paced(
        store,
        tenant,
        aggregates,
        versions,
        Duration::from_millis(100),
    )
    .await
}

/// Spreads the writes over about `over`.
pub async fn write_events_over(
    store: &Store,
    tenant: &TenantId,
    aggregates: usize,
    versions: u64,
    over: Duration,
) -> Vec<Written> {
    write_events_paced(store, tenant, aggregates, versions, over / versions as u32).await
}

async fn write_events_paced(
    store: &Store,
    tenant: &TenantId,
    aggregates: usize,
    versions: u64,
    pause: Duration,
) -> Vec<Written> {
    let aggs: Vec<Uuid> = (0..aggregates).map(|_| Uuid::now_v7()).collect();
    let mut out = Vec::new();
    for v in 1..=versions {
        let events: Vec<EventRecord> = aggs
            .iter()
            .map(|a| EventRecord {
                event_id: Uuid::now_v7(),
                tenant_id: tenant.clone(),
                event_type: event_type(v).into(),
                aggregate_id: *a,
                aggregate_version: v,
                occurred_at: Utc::now(),
                trace_id: "test".into(),
                payload: serde_json::json!({"order_id": a, "version": v}).to_string(),
            })
            .collect();
        out.extend(
            events
                .iter()
                .map(|e| (e.event_id, e.event_type.clone(), e.aggregate_id, v)),
        );
        store
            .write(0, move |tx| {
                for e in &events {
                    tx.outbox_append(e)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    out
}

pub async fn wait_dead_letters(
    store: &Store,
    tenant: &TenantId,
    state: &str,
    n: usize,
    within: Duration,
) -> Vec<DeadLetterRow> {
    let until = Instant::now() + within;
    loop {
        let (t, s) = (tenant.clone(), state.to_owned());
        let rows = store
            .read(move |r| r.dead_letters(Some(&t), Some(&s), None, 1000, None))
            .await
            .unwrap();
        if rows.len() >= n {
            return rows;
        }
        assert!(
            Instant::now() < until,
            "{} dead letters in state {state}, waited for {n}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn leases_of(store: &Store, tenant: &TenantId) -> Vec<Lease> {
    let t = tenant.as_str().to_owned();
    store
        .read(move |r| r.leases(""))
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.name.ends_with(&format!("/{t}")))
        .collect()
}

/// The NATS JetStream of this run (`ORDERHUB_TEST_NATS_URL`); call after [`have_nats`].
pub fn nats_url() -> String {
    std::env::var("ORDERHUB_TEST_NATS_URL").expect("have_nats() checked ORDERHUB_TEST_NATS_URL")
}

/// A NATS 2.12+ server with `sync_interval: always` (`ORDERHUB_TEST_NATS_DURABLE_URL`,
/// scripts/nats-durable.sh; CI starts it); call after [`have_durable_nats`].
pub fn durable_nats_url() -> String {
    std::env::var("ORDERHUB_TEST_NATS_DURABLE_URL")
        .expect("have_durable_nats() checked ORDERHUB_TEST_NATS_DURABLE_URL")
}

/// Whether CI asked for every NATS test to run (`ORDERHUB_REQUIRE_NATS=1`): then a missing or
/// unreachable server fails the test instead of skipping it.
fn nats_required() -> bool {
    std::env::var("ORDERHUB_REQUIRE_NATS").is_ok_and(|v| v == "1")
}

/// Whether the NATS named by `ORDERHUB_TEST_NATS_URL` is there. Without it (the variable unset, or
/// nothing listening) the test prints that it was not run and passes — unless
/// `ORDERHUB_REQUIRE_NATS=1`, when it fails.
pub fn have_nats() -> bool {
    have_nats_at("ORDERHUB_TEST_NATS_URL")
}

/// The same for the durable NATS 2.12+ of `ORDERHUB_TEST_NATS_DURABLE_URL`.
pub fn have_durable_nats() -> bool {
    have_nats_at("ORDERHUB_TEST_NATS_DURABLE_URL")
}

fn have_nats_at(var: &str) -> bool {
    let url = std::env::var(var).ok().filter(|s| !s.is_empty());
    let problem = match &url {
        None => format!("{var} is not set"),
        Some(url) => {
            let addr = url.trim_start_matches("nats://");
            let reachable = std::net::ToSocketAddrs::to_socket_addrs(addr)
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|a| {
                    std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok()
                });
            if reachable {
                return true;
            }
            format!("NATS is not reachable at {url} ({var})")
        }
    };
    assert!(
        !nats_required(),
        "ORDERHUB_REQUIRE_NATS=1 but {problem} (start it with ci/services.sh nats)"
    );
    eprintln!("{problem}: NATS not tested here");
    false
}

/// Where the nats-server binary the outage test starts is, if installed. Missing: the test prints
/// that it was not run, unless `ORDERHUB_REQUIRE_NATS=1`.
pub fn nats_server_bin() -> Option<&'static str> {
    let bin = [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .or_else(|| {
        std::process::Command::new("nats-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
            .then_some("nats-server")
    });
    if bin.is_none() {
        assert!(
            !nats_required(),
            "ORDERHUB_REQUIRE_NATS=1 but nats-server is not installed (ci/services.sh installs it)"
        );
        eprintln!("nats-server is not installed: the NATS outage test did not run");
    }
    bin
}

/// Messages of the tenant in the streams (every partition).
pub async fn stream_count(tenant: &TenantId) -> u64 {
    stream_count_at(&nats_url(), tenant).await
}

pub async fn stream_count_at(url: &str, tenant: &TenantId) -> u64 {
    use async_nats::jetstream::consumer;
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut total = 0;
    for p in 0..orderhub_events::EventsConfig::default().nats_partitions {
        let Ok(stream) = js
            .get_stream(format!("{}{p}", orderhub_events::nats::STREAM_PREFIX))
            .await
        else {
            continue;
        };
        let mut c: consumer::Consumer<consumer::pull::Config> = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: format!("orderhub.p{p}.{}.>", tenant.as_str()),
                inactive_threshold: Duration::from_secs(5),
                ..Default::default()
            })
            .await
            .unwrap();
        total += c.info().await.unwrap().num_pending;
    }
    total
}

/// How long NATS stays down in the outage test (the issue asks for 30 s).
pub fn down_secs() -> u64 {
    std::env::var("ORDERHUB_TEST_NATS_DOWN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

/// A nats-server of the test's own, with JetStream on a file store, that can be stopped.
pub struct OwnNats {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnNats {
    pub fn start() -> OwnNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut n = OwnNats {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let bin = nats_server_bin().unwrap_or("nats-server");
        let child = std::process::Command::new(bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({bin}): {e}"));
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FailEvery {
    Never,
    Second,
    Always,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate: Uuid,
    pub version: u64,
    pub ok: bool,
}

#[derive(Default)]
struct HookState {
    mode: AtomicU8,
    n: AtomicU64,
    bad_sig: AtomicU64,
    log: Mutex<Vec<Received>>,
    /// Aggregates whose events are always refused, whatever the mode.
    failing: Mutex<HashSet<Uuid>>,
}

/// A webhook receiver that checks signatures and fails as told.
pub struct Subscriber {
    pub url: String,
    state: Arc<HookState>,
}

async fn receive(
    State(st): State<Arc<HookState>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> StatusCode {
    let sig = headers
        .get("orderhub-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if orderhub_events::sign::verify(SECRET, sig, &body, Utc::now().timestamp(), 300).is_err() {
        st.bad_sig.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let n = st.n.fetch_add(1, Ordering::SeqCst);
    let aggregate: Uuid = v["aggregate_id"].as_str().unwrap().parse().unwrap();
    let ok = !st.failing.lock().contains(&aggregate)
        && match st.mode.load(Ordering::SeqCst) {
            0 => true,
            1 => n % 2 == 1,
            _ => false,
        };
    st.log.lock().push(Received {
        event_id: v["event_id"].as_str().unwrap().parse().unwrap(),
        event_type: v["type"].as_str().unwrap().to_owned(),
        aggregate,
        version: v["aggregate_version"].as_u64().unwrap(),
        ok,
    });
    if ok {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl Subscriber {
    pub async fn start(mode: FailEvery) -> Subscriber {
        let state = Arc::new(HookState::default());
        let s = Subscriber {
            url: String::new(),
            state: state.clone(),
        };
        s.set_mode(mode);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        Subscriber { url, ..s }
    }

    pub fn set_mode(&self, mode: FailEvery) {
        let m = match mode {
            FailEvery::Never => 0,
            FailEvery::Second => 1,
            FailEvery::Always => 2,
        };
        self.state.mode.store(m, Ordering::SeqCst);
    }

    /// Refuses every event of `aggregate` from now on.
    pub fn fail_aggregate(&self, aggregate: Uuid) {
        self.state.failing.lock().insert(aggregate);
    }

    /// Requests (delivered or refused) for events of `aggregate`.
    pub fn requests_for(&self, aggregate: Uuid) -> Vec<Received> {
        self.state
            .log
            .lock()
            .iter()
            .filter(|r| r.aggregate == aggregate)
            .cloned()
            .collect()
    }

    pub fn delivered_ids(&self) -> Vec<Uuid> {
        self.state
            .log
            .lock()
            .iter()
            .filter(|r| r.ok)
            .map(|r| r.event_id)
            .collect()
    }

    pub fn count_of(&self, written: &[Written]) -> usize {
        let ids: HashSet<Uuid> = written.iter().map(|w| w.0).collect();
        self.state
            .log
            .lock()
            .iter()
            .filter(|r| r.ok && ids.contains(&r.event_id))
            .count()
    }

    pub fn failed(&self) -> usize {
        self.state.log.lock().iter().filter(|r| !r.ok).count()
    }

    pub fn bad_signatures(&self) -> u64 {
        self.state.bad_sig.load(Ordering::SeqCst)
    }

    pub fn requests_for_type(&self, t: &str) -> usize {
        self.state
            .log
            .lock()
            .iter()
            .filter(|r| r.event_type == t)
            .count()
    }

    /// Successful deliveries of an event beyond its first.
    pub fn duplicates(&self) -> usize {
        let mut seen = HashMap::<Uuid, usize>::new();
        for r in self.state.log.lock().iter().filter(|r| r.ok) {
            *seen.entry(r.event_id).or_default() += 1;
        }
        seen.values().map(|n| n - 1).sum()
    }

    pub async fn wait_for_all(&self, written: &[Written], within: Duration) {
        let want: HashSet<Uuid> = written.iter().map(|w| w.0).collect();
        let until = Instant::now() + within;
        loop {
            let got: HashSet<Uuid> = self.delivered_ids().into_iter().collect();
            let missing = want.difference(&got).count();
            if missing == 0 {
                return;
            }
            assert!(
                Instant::now() < until,
                "{missing} of {} events never reached the subscriber",
                want.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// No request for version v of an aggregate came before version v-1 was delivered.
    pub fn assert_in_version_order_per_aggregate(&self) {
        let log = self.state.log.lock();
        let mut delivered: HashMap<Uuid, u64> = HashMap::new();
        for r in log.iter() {
            let high = delivered.get(&r.aggregate).copied().unwrap_or(0);
            assert!(
                r.version <= high + 1,
                "aggregate {} got version {} before version {} was delivered",
                r.aggregate,
                r.version,
                high + 1
            );
            if r.ok && r.version == high + 1 {
                delivered.insert(r.aggregate, r.version);
            }
        }
    }
}

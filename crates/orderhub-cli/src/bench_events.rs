//! `orderhub bench events`: how fast a payment reaches a downstream system.
//!
//! An in-process hub (SQLite in a temporary directory, or `--database-url`) with a webhook
//! subscription for `order.paid` pointing at a receiver in this process. Orders are created first,
//! then paid over HTTP at `--rate` per second (open loop: each payment is sent at its scheduled
//! time whatever the hub does). Latency is from sending the payment to the receiver getting the
//! signed `order.paid` webhook: commit, outbox, bus (in-process or NATS JetStream with
//! `--nats-url`), dispatcher, HTTP delivery. With `--nats-url`, the relay's throughput to
//! JetStream is measured too: `--relay-events` events are written to a fresh tenant's outbox and
//! timed from the first to the last acknowledged publish.

use crate::bench::{
    Conn, OrderTemplate, Target, buckets, histogram, micros, order_id, progress_bar,
    write_histogram,
};
use crate::config::{LogFormat, Settings};
use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use clap::Args;
use hyper::{Method, Uri};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    /// Orders to pay.
    #[arg(long, default_value_t = 20_000)]
    orders: u64,
    /// Payments per second (open loop).
    #[arg(long, default_value_t = 2_000.0)]
    rate: f64,
    /// Relay and dispatch through NATS JetStream at this URL instead of the in-process bus.
    #[arg(long)]
    nats_url: Option<String>,
    /// JetStream partition streams (as `serve --nats-partitions`).
    #[arg(long, default_value_t = 4)]
    nats_partitions: u32,
    /// Run the hub on this PostgreSQL database instead of SQLite in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// With --nats-url: events written to a fresh tenant's outbox to time the relay.
    #[arg(long, default_value_t = 100_000)]
    relay_events: u64,
    /// Connections used to create and pay orders.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

type Seen = Arc<Mutex<HashMap<Uuid, Instant>>>;

async fn receiver(seen: Seen) -> Result<String> {
    async fn hook(
        axum::extract::State(seen): axum::extract::State<Seen>,
        body: Bytes,
    ) -> axum::http::StatusCode {
        let at = Instant::now();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some(id) = v["aggregate_id"].as_str().and_then(|s| s.parse().ok())
        {
            seen.lock().entry(id).or_insert(at);
        }
        axum::http::StatusCode::NO_CONTENT
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(seen);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(url)
}

pub async fn run(a: EventsArgs) -> Result<()> {
    anyhow::ensure!(
        a.rate > 0.0 && a.orders > 0,
        "--rate and --orders must be positive"
    );
    let dir = tempfile::Builder::new()
        .prefix("orderhub-bench-events-")
        .tempdir()?;
    let key = format!("bench-{}", Uuid::new_v4().simple());
    let settings = Settings {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.path().to_path_buf(),
        database_url: a
            .database_url
            .clone()
            .map(orderhub_core::secret::Secret::from),
        pii_key: None,
        pg_writers: crate::config::DEFAULT_PG_WRITERS,
        bootstrap_api_key: Some(orderhub_core::secret::Secret::from(key.clone())),
        log_format: LogFormat::Pretty,
        nats_url: a.nats_url.clone(),
        nats_partitions: a.nats_partitions,
        fulfillment: crate::config::FulfillmentMode::Off,
        track_schedule: Default::default(),
        carrier: orderhub_carriers::CarrierKind::Zto,
        carrier_fallback: Default::default(),
        // Local simulators and receivers: loopback addresses.
        allow_private_urls: true,
        public_url: None,
        webhook_max_attempts: orderhub_events::runtime::DEFAULT_MAX_ATTEMPTS,
        webhook_backoff_max: orderhub_events::runtime::DEFAULT_BACKOFF_MAX,
        listing_reconcile_every: crate::config::DEFAULT_LISTING_RECONCILE_EVERY,
        status_check: Some(Default::default()),
        carrier_check: Some(Default::default()),
        ship_by_risk_lead: orderhub_fulfillment::DEFAULT_SHIP_BY_RISK_LEAD,
        no_tracking_after: orderhub_fulfillment::DEFAULT_NO_TRACKING_AFTER,
        completion: Default::default(),
        http: Default::default(),
    };
    let (hub, _) = crate::hub::start(&settings).await?;
    // A tenant of this run's own: its subjects and its durable NATS consumer are new, so events of
    // earlier runs on a shared NATS server cannot mix in.
    let tenant = orderhub_domain::TenantId::parse(&format!(
        "bench{}",
        &Uuid::new_v4().simple().to_string()[..10]
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = format!("bench-{}", Uuid::new_v4().simple());
    orderhub_http::bootstrap::ensure_tenant(&hub.store, &tenant, "bench events", &[])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    orderhub_http::bootstrap::ensure_admin_key(&hub.store, &tenant, Some(&key), "bench")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = Arc::new(Target::new(hub.addr.to_string(), &key)?);
    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let hook_url = receiver(seen.clone()).await?;
    let mut conn = Conn::new(target.clone());
    let sub = serde_json::json!({"url": hook_url, "event_types": [orderhub_domain::event_types::ORDER_PAID], "description": "bench"});
    conn.send(
        Method::POST,
        Uri::from_static("/v1/subscriptions"),
        Bytes::from(sub.to_string()),
    )
    .await
    .map_err(|f| anyhow::anyhow!("subscribing failed: {}", f.label()))?;
    let bus = match &a.nats_url {
        Some(u) => format!("NATS JetStream ({u})"),
        None => "in-process bus".to_owned(),
    };
    let store_name = if a.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite (temp dir)"
    };
    println!(
        "bench events: {} orders paid at {}/s; store {store_name}; bus {bus}",
        a.orders, a.rate
    );

    // 1. Create the orders (not timed).
    let run_id = Uuid::new_v4().simple().to_string();
    let template = Arc::new(OrderTemplate::new(1, &run_id[..8]));
    let ids: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::with_capacity(a.orders as usize)));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bar = progress_bar(a.orders, "created");
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (target, template, ids, next, bar, n) = (
            target.clone(),
            template.clone(),
            ids.clone(),
            next.clone(),
            bar.clone(),
            a.orders,
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let mut buf = BytesMut::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let body = template.body(&mut buf, i);
                let r = conn
                    .send(Method::POST, Uri::from_static("/v1/orders"), body)
                    .await
                    .map_err(|f| anyhow::anyhow!("create failed: {}", f.label()))?;
                let id = order_id(&r)
                    .context("no order id in the response")?
                    .to_owned();
                ids.lock().push(id);
                bar.inc(1);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    bar.finish_and_clear();
    let ids: Vec<String> = std::mem::take(&mut *ids.lock());

    // Let the bus drain the order.created events first, so payments are not queued behind them.
    drain(&hub.store, &tenant).await?;

    // 2. Pay them at the offered rate; remember when each payment was sent.
    let sent: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let (ptx, prx) = async_channel(a.concurrency.max(1) * 4);
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bar = progress_bar(a.orders, "paid");
    let mut workers = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (target, prx, sent, failures, bar) = (
            target.clone(),
            prx.clone(),
            sent.clone(),
            failures.clone(),
            bar.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            while let Ok(id) = prx.recv().await {
                let id: String = id;
                let uri: Uri = match format!("/v1/orders/{id}/pay").parse() {
                    Ok(u) => u,
                    Err(_) => continue,
                };
                if let Ok(u) = id.parse::<Uuid>() {
                    sent.lock().insert(u, Instant::now());
                }
                if conn
                    .send(Method::POST, uri, Bytes::from_static(b"{}"))
                    .await
                    .is_err()
                {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                bar.inc(1);
            }
        }));
    }
    let t0 = Instant::now();
    let mut late = 0u64;
    for (i, id) in ids.iter().enumerate() {
        let due = t0 + Duration::from_secs_f64(i as f64 / a.rate);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        } else if now - due > Duration::from_millis(5) {
            late += 1;
        }
        ptx.send(id.clone()).await.ok();
    }
    ptx.close();
    for w in workers {
        let _ = w.await;
    }
    let offered_for = t0.elapsed();
    bar.finish_and_clear();

    // 3. Wait for every order.paid at the receiver.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let got = seen.lock().len();
        if got as u64 >= a.orders || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut h = histogram();
    let (sent, seen) = (sent.lock().clone(), seen.lock().clone());
    let mut missing = 0u64;
    for (id, at) in &sent {
        match seen.get(id) {
            Some(r) => {
                let _ = h.record(micros(r.saturating_duration_since(*at)).max(1));
            }
            None => missing += 1,
        }
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n  payments offered over {:.1} s ({:.0}/s achieved), {late} sent late, {} failed",
        offered_for.as_secs_f64(),
        a.orders as f64 / offered_for.as_secs_f64(),
        failures.load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "  payment → webhook order.paid: {} received, {missing} missing",
        h.len()
    );
    let _ = writeln!(
        out,
        "  latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
    write_histogram(&mut out, "payment → webhook latency (ms)", &buckets(&h));
    print!("{out}");

    // 4. Relay throughput to NATS.
    let relay = if a.nats_url.is_some() && a.relay_events > 0 {
        let (rate, samples) = relay_throughput(&hub.store, a.relay_events).await?;
        Some(
            serde_json::json!({"events": a.relay_events, "events_per_s": rate,
            "events_per_s_over_time": samples}),
        )
    } else {
        None
    };
    crate::bench::write_json(
        a.json.as_deref(),
        &serde_json::json!({
            "bench": "events",
            "store": store_name,
            "bus": bus,
            "orders": a.orders,
            "offered_per_s": a.rate,
            "achieved_per_s": a.orders as f64 / offered_for.as_secs_f64(),
            "sent_late": late,
            "received": h.len(),
            "missing": missing,
            "latency_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p999": ms(0.999),
                "max": h.max() as f64 / 1000.0},
            "latency_target_p99_ms": if a.nats_url.is_some() { 100 } else { 50 },
            "latency_histogram": buckets(&h),
            "relay": relay,
        }),
    )?;
    // The dispatcher's ordered consumers are ephemeral: the server drops them once the hub is gone.
    hub.stop().await;
    anyhow::ensure!(missing == 0, "{missing} order.paid webhooks never arrived");
    Ok(())
}

/// Waits until the tenant's dispatcher has finished every event in the outbox.
async fn drain(store: &orderhub_store::Store, t: &orderhub_domain::TenantId) -> Result<()> {
    let lease = format!("dispatch/{}", t.as_str());
    let until = Instant::now() + Duration::from_secs(600);
    loop {
        let (t2, l2) = (t.clone(), lease.clone());
        let (head, pos) = store
            .read(move |r| {
                let head = r.outbox_head(&t2)?;
                let pos = r.leases(&l2)?.first().map(|l| l.position).unwrap_or(0);
                Ok((head, pos))
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if pos >= head {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < until,
            "the bus did not drain within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bounded multi-consumer channel from tokio's primitives.
fn async_channel(cap: usize) -> (Sender, Receiver) {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(cap);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    (Sender(Some(tx)), Receiver(rx))
}

struct Sender(Option<tokio::sync::mpsc::Sender<String>>);
impl Sender {
    async fn send(&self, s: String) -> Result<(), ()> {
        match &self.0 {
            Some(tx) => tx.send(s).await.map_err(|_| ()),
            None => Err(()),
        }
    }
    fn close(mut self) {
        self.0 = None;
    }
}

#[derive(Clone)]
struct Receiver(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<String>>>);
impl Receiver {
    async fn recv(&self) -> Result<String, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}

async fn relay_throughput(store: &orderhub_store::Store, n: u64) -> Result<(f64, Vec<f64>)> {
    use orderhub_core::ports::EventRecord;
    let tenant = orderhub_domain::TenantId::parse(&format!(
        "relay{}",
        &Uuid::new_v4().simple().to_string()[..8]
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = tenant.clone();
    store
        .write(0, move |tx| {
            Ok(tx.tenant_insert(&t, "relay bench", &serde_json::json!({}))?)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar = progress_bar(n, "written");
    let mut written = 0u64;
    while written < n {
        let k = (n - written).min(1000);
        let t = tenant.clone();
        store
            .write(0, move |tx| {
                for _ in 0..k {
                    let agg = Uuid::now_v7();
                    tx.outbox_append(&EventRecord {
                        event_id: Uuid::now_v7(),
                        tenant_id: t.clone(),
                        event_type: orderhub_domain::event_types::ORDER_CREATED.into(),
                        aggregate_id: agg,
                        aggregate_version: 1,
                        occurred_at: chrono::Utc::now(),
                        trace_id: "bench".into(),
                        payload: serde_json::json!({"order_id": agg, "status": "pending_payment"})
                            .to_string(),
                    })?;
                }
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        written += k;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    // The relay takes the new tenant within a second; time from its first to its last publish.
    let name = format!("relay/{}", tenant.as_str());
    let bar = progress_bar(n, "relayed");
    let mut first: Option<(Instant, i64)> = None;
    let until = Instant::now() + Duration::from_secs(300);
    let mut samples: Vec<f64> = Vec::new();
    let mut mark = (Instant::now(), 0i64);
    loop {
        let nm = name.clone();
        let pos = store
            .read(move |r| r.leases(&nm))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .first()
            .map(|l| l.position)
            .unwrap_or(0);
        bar.set_position(pos as u64);
        if pos > 0 && first.is_none() {
            first = Some((Instant::now(), pos));
            mark = (Instant::now(), pos);
        }
        if mark.0.elapsed() >= Duration::from_secs(1) && first.is_some() {
            samples.push((pos - mark.1) as f64 / mark.0.elapsed().as_secs_f64());
            mark = (Instant::now(), pos);
        }
        if pos as u64 >= n {
            break;
        }
        anyhow::ensure!(
            Instant::now() < until,
            "the relay did not publish everything within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bar.finish_and_clear();
    let (t1, p1) = first.unwrap_or((Instant::now(), 0));
    let rate = (n as i64 - p1) as f64 / t1.elapsed().as_secs_f64().max(1e-6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n  relay to NATS JetStream: {n} events, {rate:.0} events/s (publish acks awaited, dedup by event id)"
    );
    if !samples.is_empty() {
        crate::bench::write_per_second(&mut out, "events/s", &samples);
    }
    print!("{out}");
    Ok((rate, samples))
}

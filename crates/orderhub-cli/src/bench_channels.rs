//! `orderhub bench channels`: all seven simulated channels push at once through the webhooks of an
//! in-process hub (SQLite in a temporary directory); every push is signed by its channel, verified,
//! kept raw, deduplicated (each is sent twice), and processed into an order (fetched from the
//! channel's simulated API, merged, paid orders reserving stock). It prints push → stored (the
//! webhook's answer, after the commit that keeps the message) latency, pushes/s, and channel
//! orders/s end to end. Then it pulls one simulated shop of `--pull-orders` orders at the
//! channel's rate limit and compares the time with what the limit allows.
//!
//! `--rules N` publishes a live rule set of N rules (`orderhub_rules::sample`: every kind, every
//! sort of fact, weights read from the SKU master) before the pushes, so every order created and
//! paid is evaluated on the intake path. `--rules-compare N` runs the push part twice in one
//! process, side by side — without rules, then with N — and prints the second's orders/s as a
//! share of the first's (issue 22's target: at least 90 % with 200 rules).

use crate::bench::{Conn, Target, buckets, histogram, micros, progress_bar, write_histogram};
use crate::config::{LogFormat, Settings};
use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use hyper::{Method, Uri};
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{ChannelKind, ShopCredentials};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct ChannelsArgs {
    /// Orders each simulated channel holds and pushes.
    #[arg(long, default_value_t = 2000)]
    orders_per_channel: usize,
    /// Connections pushing at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Orders of the shop pulled at the rate limit (0: skip the pull part).
    #[arg(long, default_value_t = 100_000)]
    pull_orders: usize,
    /// The simulated channel's rate limit for the pull, requests per second.
    #[arg(long, default_value_t = 50.0)]
    pull_rate: f64,
    #[arg(long, default_value_t = 100)]
    pull_page_size: u32,
    /// A live rule set of this many rules on the intake path (0: none).
    #[arg(long, default_value_t = 0)]
    rules: usize,
    /// Run the pushes without rules, then with this many, and print the ratio (no pull part).
    #[arg(long, default_value_t = 0)]
    rules_compare: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// Publishes a set of `n` sample rules for the default tenant, effective now: drafted by one
/// system key, approved by another (the author never approves).
async fn publish_rules(store: &orderhub_store::Store, n: usize) -> Result<()> {
    use orderhub_core::rules;
    let tenant = orderhub_domain::TenantId::parse(orderhub_http::bootstrap::DEFAULT_TENANT)?;
    let author = orderhub_core::usecases::Actor::system(&tenant, "bench-author");
    let mut approver = orderhub_core::usecases::Actor::system(&tenant, "bench-approver");
    approver.principal.key_id = "bench-approver".into();
    let set = orderhub_rules::sample::rules(n);
    store
        .write(0, move |tx| {
            let now = chrono::Utc::now();
            let d = rules::create_draft(tx, &author, "bench", set.clone(), now)?;
            rules::submit(tx, &author, d.rule_set_id, now)?;
            rules::approve(tx, &approver, d.rule_set_id, now)?;
            rules::publish(tx, &approver, d.rule_set_id, None, now)
        })
        .await
        .context("publishing the bench's rule set")?;
    Ok(())
}

pub async fn run(a: ChannelsArgs) -> Result<()> {
    if a.rules_compare == 0 {
        return run_once(&a, a.rules).await.map(drop);
    }
    let side = ChannelsArgs {
        pull_orders: 0,
        json: None,
        ..a.clone()
    };
    println!(
        "bench channels --rules-compare {}: without rules, then with them, side by side\n",
        a.rules_compare
    );
    let without = run_once(&side, 0).await?;
    let with = run_once(&side, a.rules_compare).await?;
    let share = with / without.max(1e-9) * 100.0;
    println!(
        "\n  orders/s end to end: {without:.0} without rules, {with:.0} with {} rules: {share:.1} % (target ≥ 90 %)",
        a.rules_compare
    );
    crate::bench::write_json(
        a.json.as_deref(),
        &serde_json::json!({
            "bench": "channels-rules",
            "rules": a.rules_compare,
            "orders_per_s_without_rules": without,
            "orders_per_s_with_rules": with,
            "share_percent": share,
            "share_target_percent": 90,
        }),
    )
}

fn creds() -> ShopCredentials {
    let mut c = ShopCredentials::new("bench-app", "bench-secret");
    c.access_token = "bench-token".into();
    c.message_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into();
    c
}

struct Push {
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// One run; returns its channel orders/s end to end.
async fn run_once(a: &ChannelsArgs, rules: usize) -> Result<f64> {
    let dir = tempfile::Builder::new()
        .prefix("orderhub-bench-channels-")
        .tempdir()?;
    let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let settings = Settings {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.path().to_path_buf(),
        database_url: None,
        pii_key: None,
        pg_writers: crate::config::DEFAULT_PG_WRITERS,
        bootstrap_api_key: Some(orderhub_core::secret::Secret::from(key.clone())),
        log_format: LogFormat::Pretty,
        nats_url: None,
        nats_partitions: 4,
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
    let target = Arc::new(Target::new(hub.addr.to_string(), &key)?);
    let mut conn = Conn::new(target.clone());
    let c = creds();
    if rules > 0 {
        publish_rules(&hub.store, rules).await?;
    }
    println!(
        "bench channels: {} channels × {} orders pushed (each twice) through the webhooks; SQLite (temp dir); {}",
        ChannelKind::ALL.len(),
        a.orders_per_channel,
        if rules > 0 {
            format!("a live rule set of {rules} rules")
        } else {
            "no rules".to_owned()
        }
    );
    // Every SKU the simulators sell is tracked with ample stock, so paid orders reserve.
    let mut pushes: Vec<Push> = Vec::new();
    let mut skus = BTreeSet::new();
    let mut expected = 0usize;
    // The simulators' handles, kept for the run.
    let mut sims = Vec::new();
    for kind in ChannelKind::ALL {
        let (url, handle) = sim::spawn(kind, SimSettings::new(c.clone(), a.orders_per_channel, 42))
            .await
            .with_context(|| format!("{} simulator", kind.code()))?;
        let shop = format!("{}-bench", kind.code());
        let body = serde_json::json!({"app_key": c.app_key, "secret": c.secret, "access_token": c.access_token,
            "message_key": c.message_key, "api_base_url": url});
        let uri: Uri = format!("/v1/channels/{}/shops/{shop}", kind.code()).parse()?;
        conn.send(Method::PUT, uri, Bytes::from(body.to_string()))
            .await
            .map_err(|f| anyhow::anyhow!("configuring {shop}: {}", f.label()))?;
        let now = chrono::Utc::now();
        for o in handle.orders() {
            expected += 1;
            skus.extend(o.lines.iter().map(|l| l.sku.clone()));
            let p = sim::signed_push(kind, &o, &c, now)?;
            let path = p.url(&format!(
                "/v1/tenants/default/channels/{}/shops/{shop}/webhook",
                kind.code()
            ));
            let mut headers = p.headers.clone();
            headers.push(("content-type".into(), p.content_type.into()));
            pushes.push(Push {
                path,
                headers,
                body: Bytes::from(p.body),
            });
        }
        sims.push(handle);
    }
    conn.send(
        Method::PUT,
        Uri::from_static("/v1/warehouses/BENCH"),
        Bytes::from_static(br#"{"name":"bench"}"#),
    )
    .await
    .map_err(|f| anyhow::anyhow!("warehouse: {}", f.label()))?;
    for sku in &skus {
        let Ok(s) = orderhub_domain::Sku::parse(sku) else {
            continue;
        };
        let uri: Uri = format!(
            "/v1/skus/{}",
            form_urlencoded::byte_serialize(s.as_str().as_bytes()).collect::<String>()
        )
        .parse()?;
        if conn
            .send(Method::PUT, uri, Bytes::from(r#"{"title":"bench"}"#))
            .await
            .is_ok()
        {
            let r = serde_json::json!({"sku": s.as_str(), "warehouse_id": "BENCH", "quantity": 1_000_000});
            let _ = conn
                .send(
                    Method::POST,
                    Uri::from_static("/v1/inventory/receipts"),
                    Bytes::from(r.to_string()),
                )
                .await;
        }
    }
    // Interleave the channels and send each push twice (the second must be a duplicate).
    let n = pushes.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|i| {
        (
            i % a.orders_per_channel.max(1),
            i / a.orders_per_channel.max(1),
        )
    });
    let order: Vec<usize> = order.iter().copied().chain(order.iter().copied()).collect();
    let pushes = Arc::new(pushes);
    let order = Arc::new(order);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let lat = Arc::new(parking_lot::Mutex::new(histogram()));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bar = progress_bar(order.len() as u64, "pushes");
    let writes_before = hub.store.write_stats();
    let disk_before = disk_bytes_written();
    let cpu_before = cpu_seconds();
    let threads_before = thread_times();
    // Counted in the database (the tenant's orders: a walk of its smallest index), not by the
    // processor's own tally.
    let all_orders = orderhub_store::OrderFilter::all(
        orderhub_domain::TenantId::parse(orderhub_http::bootstrap::DEFAULT_TENANT)?,
        1,
    );
    let t0 = Instant::now();
    // Orders stored and pushes answered per second, from the first push on.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (store, f, sampling, bar) = (
            hub.store.clone(),
            all_orders.clone(),
            sampling.clone(),
            bar.clone(),
        );
        tokio::spawn(async move {
            let (mut orders_s, mut pushes_s) = (Vec::new(), Vec::new());
            let mut mark = (Instant::now(), 0u64, 0u64);
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let secs = mark.0.elapsed().as_secs_f64();
                if secs < 1.0 {
                    continue;
                }
                let f = f.clone();
                let n = store.read(move |r| r.order_count(&f)).await.unwrap_or(0);
                let pushed = bar.position();
                orders_s.push(n.saturating_sub(mark.1) as f64 / secs);
                pushes_s.push(pushed.saturating_sub(mark.2) as f64 / secs);
                mark = (Instant::now(), n, pushed);
            }
            (orders_s, pushes_s)
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (pushes, order, next, lat, failed, bar, addr) = (
            pushes.clone(),
            order.clone(),
            next.clone(),
            lat.clone(),
            failed.clone(),
            bar.clone(),
            hub.addr.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await.ok()?;
            let _ = stream.set_nodelay(true);
            let (mut sender, c) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .ok()?;
            tokio::spawn(c);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&p) = order.get(i) else {
                    return Some(());
                };
                let p = &pushes[p];
                let mut req = hyper::Request::new(http_body_util::Full::new(p.body.clone()));
                *req.method_mut() = Method::POST;
                *req.uri_mut() = p.path.parse().ok()?;
                req.headers_mut().insert(
                    hyper::header::HOST,
                    hyper::header::HeaderValue::from_static("bench"),
                );
                for (k, v) in &p.headers {
                    if let (Ok(k), Ok(v)) = (
                        hyper::header::HeaderName::from_bytes(k.as_bytes()),
                        hyper::header::HeaderValue::from_str(v),
                    ) {
                        req.headers_mut().append(k, v);
                    }
                }
                let started = Instant::now();
                sender.ready().await.ok()?;
                let ok = match sender.send_request(req).await {
                    Ok(resp) => {
                        let s = resp.status();
                        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                        s.is_success()
                    }
                    Err(_) => false,
                };
                if ok {
                    let _ = lat.lock().record(micros(started.elapsed()).max(1));
                } else {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                bar.inc(1);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let pushed_in = t0.elapsed();
    bar.finish_and_clear();
    // Wait until every order exists (processed in the background).
    let bar = progress_bar(expected as u64, "orders");
    let until = Instant::now() + Duration::from_secs(600);
    let done_at = loop {
        let f = all_orders.clone();
        let n = hub
            .store
            .read(move |r| r.order_count(&f))
            .await
            .unwrap_or(0);
        bar.set_position(n);
        if n as usize >= expected {
            break t0.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < until,
            "only {n} of {expected} orders after 10 minutes"
        );
        // Often enough for the figure (±1% over a 10 s run), rarely enough not to hold the hub's
        // readers and checkpoints back.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    bar.finish_and_clear();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (per_second, pushes_per_second) = sampler.await.unwrap_or_default();
    let disk = disk_bytes_written()
        .zip(disk_before)
        .map(|(a, b)| a.saturating_sub(b));
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|((u, s), (u0, s0))| (u - u0, s - s0));
    let threads = thread_times_since(&threads_before);
    let writes = hub.store.write_stats().since(&writes_before);
    let h = lat.lock().clone();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let stored = hub
        .store
        .read(|r| r.channel_messages(None, None, None, 1_000_000, None))
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n  {} pushes ({} distinct) answered in {:.1} s: {:.0} pushes/s, {} failed; {stored} messages kept (duplicates refused)",
        order.len(),
        n,
        pushed_in.as_secs_f64(),
        order.len() as f64 / pushed_in.as_secs_f64(),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "  push → stored (webhook answer) ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "  {expected} channel orders verified, stored, deduplicated, fetched and merged in {:.1} s: {:.0} orders/s end to end",
        done_at.as_secs_f64(),
        expected as f64 / done_at.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  store: {} write jobs in {} commits ({:.1} per commit, {:.0} commits/s); the writer busy {:.0}% of the time, committing {:.0}%",
        writes.jobs,
        writes.groups,
        writes.jobs as f64 / writes.groups.max(1) as f64,
        writes.groups as f64 / done_at.as_secs_f64(),
        writes.busy_micros as f64 / 1e4 / done_at.as_secs_f64(),
        writes.commit_micros as f64 / 1e4 / done_at.as_secs_f64(),
    );
    let _ = writeln!(
        out,
        "  a write job's wait: {:.1} ms queued for the writer on average, {:.1} ms from its commit to its answer",
        writes.queued_micros as f64 / 1e3 / writes.jobs.max(1) as f64,
        writes.sync_wait_micros as f64 / 1e3 / writes.jobs.max(1) as f64,
    );
    if writes.syncs > 0 {
        let _ = writeln!(
            out,
            "  syncs (beside the writer): {} fdatasyncs of the WAL, {:.1} ms each, {:.1} commits each",
            writes.syncs,
            writes.sync_micros as f64 / 1e3 / writes.syncs as f64,
            writes.groups as f64 / writes.syncs as f64,
        );
    }
    if let Some((user, system)) = cpu {
        // Steadier than orders/s on a shared machine: what the work costs, not how fast the
        // machine's cores were today. Simulators and pushing clients included (same process).
        let per = |s: f64| s * 1e6 / expected.max(1) as f64;
        let _ = writeln!(
            out,
            "  CPU: {:.0} µs per order (user {:.0}, system {:.0}; simulators and pushers included), cores busy {:.0}% of {}",
            per(user + system),
            per(user),
            per(system),
            (user + system) * 100.0
                / done_at.as_secs_f64()
                / std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );
    }
    if !threads.is_empty() {
        // Where a serial step loses time on a crowded machine: waiting for a core after it was
        // woken (the scheduler's run queue) rather than running.
        let _ = writeln!(
            out,
            "  threads while pushing (ms running / ms runnable but waiting for a core / times scheduled):"
        );
        for (name, t) in &threads {
            let _ = writeln!(
                out,
                "    {name:<16} {:>6.0} / {:>6.0} / {:>7}",
                t.run_ns as f64 / 1e6,
                t.wait_ns as f64 / 1e6,
                t.slices
            );
        }
    }
    if let Some(d) = disk {
        let _ = writeln!(
            out,
            "  disk: {:.1} KB written per order (WAL, checkpoints; from /proc/self/io)",
            d as f64 / 1024.0 / expected.max(1) as f64
        );
    }
    write_histogram(&mut out, "push → stored latency (ms)", &buckets(&h));
    crate::bench::write_per_second(&mut out, "pushes answered/s", &pushes_per_second);
    crate::bench::write_per_second(&mut out, "orders stored/s", &per_second);
    print!("{out}");
    hub.stop().await;
    drop(sims);

    let pull = if a.pull_orders > 0 {
        Some(pull_bench(a).await?)
    } else {
        None
    };
    crate::bench::write_json(
        a.json.as_deref(),
        &serde_json::json!({
            "bench": "channels",
            "store": "SQLite (temp dir)",
            "rules": rules,
            "channels": ChannelKind::ALL.len(),
            "pushes": order.len(),
            "distinct_pushes": n,
            "pushes_per_s": order.len() as f64 / pushed_in.as_secs_f64(),
            "pushes_failed": failed.load(std::sync::atomic::Ordering::Relaxed),
            "push_to_stored_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99),
                "max": h.max() as f64 / 1000.0},
            "push_to_stored_target_p99_ms": 50,
            "push_latency_histogram": buckets(&h),
            "orders": expected,
            "orders_per_s_end_to_end": expected as f64 / done_at.as_secs_f64(),
            "orders_per_s_end_to_end_target": 5000,
            "orders_stored_per_s_over_time": per_second,
            "pushes_answered_per_s_over_time": pushes_per_second,
            "store_write_jobs": writes.jobs,
            "store_commits": writes.groups,
            "disk_bytes_per_order": disk.map(|d| d / expected.max(1) as u64),
            "cpu_us_per_order": cpu.map(|(u, s)| (u + s) * 1e6 / expected.max(1) as f64),
            "threads_while_pushing_ms": threads.iter().map(|(name, t)| (name.clone(), serde_json::json!({
                "running": t.run_ns as f64 / 1e6, "waiting_for_cpu": t.wait_ns as f64 / 1e6, "scheduled": t.slices})))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            "pull": pull,
        }),
    )?;
    Ok(expected as f64 / done_at.as_secs_f64())
}

async fn pull_bench(a: &ChannelsArgs) -> Result<serde_json::Value> {
    let dir = tempfile::Builder::new()
        .prefix("orderhub-bench-pull-")
        .tempdir()?;
    let store = orderhub_store::Store::open(
        &orderhub_store::StoreConfig::Sqlite {
            path: dir.path().join("o.db"),
        },
        orderhub_core::crypto::PiiCipher::from_hex(
            &orderhub_core::crypto::PiiCipher::generate_hex(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let kind = ChannelKind::Douyin;
    let c = creds();
    let (url, handle) = sim::spawn(kind, SimSettings::new(c.clone(), a.pull_orders, 7)).await?;
    handle.knobs.set(sim::Knobs {
        throttle_per_sec: a.pull_rate,
        ..Default::default()
    });
    let t = orderhub_domain::TenantId::parse("pull").map_err(|e| anyhow::anyhow!("{e}"))?;
    let t2 = t.clone();
    store
        .write(0, move |tx| {
            Ok(tx.tenant_insert(&t2, "pull", &serde_json::json!({}))?)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let shop = orderhub_store::ChannelShopRow {
        channel: kind.code().into(),
        shop_id: "pull-shop".into(),
        tenant_id: t,
        app_key: c.app_key.clone(),
        secret: c.secret.clone(),
        access_token: c.access_token.clone(),
        message_key: String::new(),
        api_base_url: url,
        created_at: chrono::Utc::now(),
        mapping: None,
        token: Default::default(),
    };
    let s2 = shop.clone();
    store
        .write(0, move |tx| Ok(tx.channel_shop_put(&s2)?))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let served = handle.orders();
    let from = served
        .iter()
        .map(|o| o.modified_at)
        .min()
        .context("no orders")?
        .to_utc()
        - chrono::Duration::seconds(1);
    let to = served
        .iter()
        .map(|o| o.modified_at)
        .max()
        .context("no orders")?
        .to_utc()
        + chrono::Duration::seconds(1);
    let cfg = orderhub_intake::pull::PullConfig {
        page_size: a.pull_page_size,
        rate_per_sec: a.pull_rate,
        ..Default::default()
    };
    let pages = served.len().div_ceil(a.pull_page_size as usize);
    let allowed = pages.saturating_sub(1) as f64 / a.pull_rate;
    println!(
        "\n  pull: {} orders of one {} shop, {} per page, the channel allowing {}/s → {pages} pages, {allowed:.1} s at the limit",
        served.len(),
        kind.code(),
        a.pull_page_size,
        a.pull_rate
    );
    let mut bucket = orderhub_intake::pull::Bucket::new(cfg.rate_per_sec, cfg.burst);
    let http = orderhub_channels::client::HttpClient::new();
    let t0 = Instant::now();
    let r = orderhub_intake::pull::pull_window(&store, &http, &shop, from, to, &cfg, &mut bucket)
        .await
        .map_err(|e| anyhow::anyhow!("pull: {e:?}"))?;
    let took = t0.elapsed().as_secs_f64();
    println!(
        "  pulled {} orders ({} created) in {:.1} s = {:.1}% of the time the rate limit allows ({} throttled answers; {:.1} s waiting for pages, {:.1} s keeping and merging)",
        r.orders,
        r.created,
        took,
        took / allowed.max(1e-9) * 100.0,
        r.throttled,
        r.fetch_ms as f64 / 1000.0,
        r.merge_ms as f64 / 1000.0
    );
    anyhow::ensure!(
        r.orders as usize == served.len(),
        "pulled {} of {} orders",
        r.orders,
        served.len()
    );
    Ok(serde_json::json!({
        "orders": r.orders,
        "rate_limit_per_s": a.pull_rate,
        "pages": pages,
        "seconds": took,
        "seconds_the_limit_allows": allowed,
        "percent_of_allowed": took / allowed.max(1e-9) * 100.0,
        "percent_of_allowed_target_max": 110,
        "throttled": r.throttled,
    }))
}

/// Bytes this process has had written to storage so far (`write_bytes` of `/proc/self/io`);
/// `None` where the kernel does not say.
#[derive(Debug, Default, Clone, Copy)]
struct ThreadTime {
    run_ns: u64,
    wait_ns: u64,
    slices: u64,
}

/// Time on and waiting for a CPU per thread name (Linux: /proc/self/task/*/schedstat), threads
/// of one pool summed (`tokio-runtime-w`, `orderhub-reader`).
fn thread_times() -> std::collections::BTreeMap<String, ThreadTime> {
    let mut out = std::collections::BTreeMap::<String, ThreadTime>::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let p = t.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(p.join("comm")),
            std::fs::read_to_string(p.join("schedstat")),
        ) else {
            continue;
        };
        let f: Vec<u64> = stat
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let [run_ns, wait_ns, slices] = f[..] else {
            continue;
        };
        let name = comm
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        let e = out.entry(name.to_owned()).or_default();
        e.run_ns += run_ns;
        e.wait_ns += wait_ns;
        e.slices += slices;
    }
    out
}

/// [`thread_times`] since `before`, busiest first.
fn thread_times_since(
    before: &std::collections::BTreeMap<String, ThreadTime>,
) -> Vec<(String, ThreadTime)> {
    let mut v: Vec<(String, ThreadTime)> = thread_times()
        .into_iter()
        .map(|(name, t)| {
            let b = before.get(&name).copied().unwrap_or_default();
            let d = ThreadTime {
                run_ns: t.run_ns.saturating_sub(b.run_ns),
                wait_ns: t.wait_ns.saturating_sub(b.wait_ns),
                slices: t.slices.saturating_sub(b.slices),
            };
            (name, d)
        })
        .filter(|(_, t)| t.run_ns + t.wait_ns >= 1_000_000)
        .collect();
    v.sort_by_key(|(_, t)| std::cmp::Reverse(t.run_ns));
    v
}

/// This process's user and system CPU seconds (Linux: /proc/self/stat).
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are the line's fields 14 and 15; this list starts at field 3 (the state).
    let ticks = |i: usize| f.get(i)?.parse::<f64>().ok();
    // The kernel's USER_HZ, 100 on every Linux this runs on.
    Some((ticks(11)? / 100.0, ticks(12)? / 100.0))
}

fn disk_bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

//! `orderhub bench stock-sync` (issue 20): the pool is the source of truth for every shelf.
//!
//! An in-process hub (SQLite in a temporary directory) with one shop on each of the seven channel
//! simulators, each simulator throttling at `--channel-rate` calls a second (its token bucket:
//! calls over it get the channel's own throttling error).
//!
//! 1. **Sync**: `--listings` SKUs, each listed on one channel (round robin over the seven), then
//!    `--rate` stock changes a second for `--duration` seconds (receipts of one unit of a SKU
//!    picked at random, over keep-alive connections). Each change's latency runs from the
//!    receipt's answer (after its commit) to the first stock call that sets the listing's shelf
//!    to that quantity or a later one (quantities only rise, so "at least" is exact), as the
//!    simulator takes it. It prints p50/p99 per channel and overall, calls per channel against
//!    changes (coalescing) and whether each channel's rate held (its throttled answers).
//! 2. **Flash sale**: `--flash-stock` units of one SKU listed on all seven channels at once, then
//!    `--flash-buyers` buyers split across the simulators, each buying one unit from the shelf
//!    (refused by the platform when its shelf is at 0) and the sale pushed to the hub's webhook,
//!    signed, as the channel would. It prints units sold per channel (more than the stock is
//!    overselling: what the shelves' latency let through), the orders the hub could not reserve
//!    stock for (backorders) and the time from the pool's last unit to every shelf at 0.
//!
//! Kuaishou's stock call is incremental only and the adapter refuses to send it (SOURCES.md):
//! its listings are counted apart (never synced), and in the flash sale its shelf is the one its
//! seller set in Kuaishou's back office.

use crate::bench::{Conn, Lat, Target, histogram, micros};
use crate::config::{LogFormat, Settings};
use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use hyper::{Method, Uri};
use orderhub_channels::sim::{self, Knobs, SimHandle, SimSettings};
use orderhub_channels::{CanonicalStatus, ChannelKind, ShopCredentials, StockUpdate};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct StockSyncArgs {
    /// Listings (one SKU each), spread round robin over the seven channels.
    #[arg(long, default_value_t = 10_000)]
    listings: usize,
    /// Stock changes (receipts of one unit) per second.
    #[arg(long, default_value_t = 2_000.0)]
    rate: f64,
    /// How long the changes are offered, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Each channel simulator's rate limit, calls per second (token bucket, one second's burst).
    #[arg(long, default_value_t = 500.0)]
    channel_rate: f64,
    /// Connections sending the stock changes.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Units of the flash-sale SKU.
    #[arg(long, default_value_t = 300)]
    flash_stock: i64,
    /// Buyers of the flash sale, split across the seven channels (one unit each).
    #[arg(long, default_value_t = 3_000)]
    flash_buyers: u64,
    /// Over how many seconds the flash sale's buyers arrive (evenly).
    #[arg(long, default_value_t = 3.0)]
    flash_seconds: f64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

const WAREHOUSE: &str = "SS-WH";
/// What each SKU of the sync part holds before the changes.
const INITIAL: i64 = 100;
/// How long the shelves may take to show the first quantities, and to catch up after the load.
const SETTLE: Duration = Duration::from_secs(180);
const ITEM_BASE: u64 = 10_000_000;
const SKU_BASE: u64 = 20_000_000;

fn creds() -> ShopCredentials {
    let mut c = ShopCredentials::new("bench-app", "bench-secret");
    c.access_token = "bench-token".into();
    c.message_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into();
    c
}

fn shop_of(kind: ChannelKind) -> String {
    format!("{}-stock", kind.code())
}

/// Kuaishou's stock call is refused by its adapter (incremental only): never synced.
fn syncable(kind: ChannelKind) -> bool {
    kind != ChannelKind::Kuaishou
}

fn hub_settings(dir: &std::path::Path, key: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.to_path_buf(),
        database_url: None,
        pii_key: None,
        pg_writers: crate::config::DEFAULT_PG_WRITERS,
        bootstrap_api_key: Some(orderhub_core::secret::Secret::from(key.to_owned())),
        log_format: LogFormat::Pretty,
        nats_url: None,
        nats_partitions: 4,
        fulfillment: crate::config::FulfillmentMode::Off,
        track_schedule: Default::default(),
        carrier: orderhub_carriers::CarrierKind::Zto,
        carrier_fallback: Default::default(),
        allow_private_urls: true,
        public_url: None,
        webhook_max_attempts: orderhub_events::runtime::DEFAULT_MAX_ATTEMPTS,
        webhook_backoff_max: orderhub_events::runtime::DEFAULT_BACKOFF_MAX,
        // Shelves read back once an hour: the bench measures pushes, not the reconciler (its
        // first read of each new listing still happens, at the start).
        listing_reconcile_every: Duration::from_secs(3600),
        status_check: None,
        carrier_check: None,
        ship_by_risk_lead: orderhub_fulfillment::DEFAULT_SHIP_BY_RISK_LEAD,
        no_tracking_after: orderhub_fulfillment::DEFAULT_NO_TRACKING_AFTER,
        completion: Default::default(),
        http: Default::default(),
    }
}

/// One simulated channel shop.
struct Channel {
    kind: ChannelKind,
    sim: SimHandle,
}

/// Sends `bodies` to `path` over `concurrency` connections; every answer must be 2xx.
async fn seed_all(
    target: &Arc<Target>,
    method: Method,
    bodies: Vec<(String, serde_json::Value)>,
    concurrency: usize,
) -> Result<()> {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (target, bodies, next, method) =
            (target.clone(), bodies.clone(), next.clone(), method.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some((path, body)) = bodies.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                crate::bench_flash::seed(&mut conn, method.clone(), path, body.clone()).await?;
            }
        }));
    }
    for t in tasks {
        t.await.context("a seeding task")??;
    }
    Ok(())
}

/// The hub, its seven shops on the simulators, and the warehouse.
async fn open(a: &StockSyncArgs, dir: &std::path::Path) -> Result<Opened> {
    let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let (hub, _) = crate::hub::start(&hub_settings(dir, &key)).await?;
    let target = Arc::new(Target::new(hub.addr.to_string(), &key)?);
    let mut conn = Conn::new(target.clone());
    let c = creds();
    let mut channels = Vec::new();
    for kind in ChannelKind::ALL {
        let (url, sim) = sim::spawn(kind, SimSettings::new(c.clone(), 0, 5))
            .await
            .with_context(|| format!("the {} simulator", kind.code()))?;
        sim.knobs.set(Knobs {
            throttle_per_sec: a.channel_rate,
            ..Knobs::default()
        });
        crate::bench_flash::seed(
            &mut conn,
            Method::PUT,
            &format!("/v1/channels/{}/shops/{}", kind.code(), shop_of(kind)),
            serde_json::json!({"app_key": c.app_key, "secret": c.secret,
                "access_token": c.access_token, "message_key": c.message_key, "api_base_url": url}),
        )
        .await?;
        channels.push(Channel { kind, sim });
    }
    crate::bench_flash::seed(
        &mut conn,
        Method::PUT,
        &format!("/v1/warehouses/{WAREHOUSE}"),
        serde_json::json!({"name": "stock sync"}),
    )
    .await?;
    Ok(Opened {
        hub,
        target,
        channels,
    })
}

struct Opened {
    hub: crate::hub::RunningHub,
    target: Arc<Target>,
    channels: Vec<Channel>,
}

/// Creates SKUs `skus` with `initial` units each, then a listing per (sku, channel index, item
/// id, SKU id), offered on its simulator.
async fn list(
    o: &Opened,
    skus: &[String],
    initial: i64,
    listings: &[(usize, usize, String, String)],
) -> Result<()> {
    let sku_bodies = skus
        .iter()
        .map(|s| {
            (
                format!("/v1/skus/{s}"),
                serde_json::json!({"title": "stock sync"}),
            )
        })
        .collect();
    seed_all(&o.target, Method::PUT, sku_bodies, 32).await?;
    let receipts = skus
        .iter()
        .map(|s| {
            (
                "/v1/inventory/receipts".to_owned(),
                serde_json::json!({"sku": s, "warehouse_id": WAREHOUSE, "quantity": initial}),
            )
        })
        .collect();
    seed_all(&o.target, Method::POST, receipts, 32).await?;
    let mut bodies = Vec::new();
    for (sku, ch, item, sku_id) in listings {
        let kind = o.channels[*ch].kind;
        o.channels[*ch].sim.offer(&skus[*sku], item, sku_id);
        bodies.push((
            "/v1/listings".to_owned(),
            serde_json::json!({"channel": kind.code(), "shop_id": shop_of(kind),
                "sku": skus[*sku], "channel_item_id": item, "channel_sku_id": sku_id}),
        ));
    }
    seed_all(&o.target, Method::POST, bodies, 32).await
}

/// Waits until every shelf of `skus` offered on a synced channel shows `want` (or `SETTLE`
/// passes); returns how long it took and whether it happened.
async fn wait_shelves(o: &Opened, skus: &[String], want: i64) -> (f64, bool) {
    let t0 = Instant::now();
    loop {
        let all = o.channels.iter().filter(|c| syncable(c.kind)).all(|c| {
            skus.iter()
                .all(|s| !c.sim.is_offered(s) || c.sim.offered_shelf(s) == Some(want))
        });
        if all || t0.elapsed() > SETTLE {
            return (t0.elapsed().as_secs_f64(), all);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Part 1: the sync

/// One listing of the sync part, as the watcher and the load see it.
#[derive(Default)]
struct Watched {
    /// The highest quantity its shelf has shown.
    shown: i64,
    /// Changes acknowledged by the hub and not yet on the shelf: (quantity, when answered).
    pending: std::collections::VecDeque<(i64, Instant)>,
    /// Receipts answered so far.
    changes: i64,
}

struct SyncState {
    listings: Vec<Mutex<Watched>>,
    /// Latency per channel, µs.
    latency: Vec<Mutex<Histogram<u64>>>,
    channel_of: Vec<usize>,
}

impl SyncState {
    /// A stock call set `q` on listing `i`'s shelf.
    fn shelf_set(&self, i: usize, q: i64) {
        let Some(w) = self.listings.get(i) else {
            return;
        };
        let now = Instant::now();
        let mut w = w.lock();
        w.shown = w.shown.max(q);
        let mut done = Vec::new();
        while w.pending.front().is_some_and(|(want, _)| *want <= q) {
            if let Some((_, at)) = w.pending.pop_front() {
                done.push(micros(now.saturating_duration_since(at)));
            }
        }
        drop(w);
        let mut h = self.latency[self.channel_of[i]].lock();
        for us in done {
            h.saturating_record(us);
        }
    }

    /// The hub answered a receipt of listing `i`'s SKU: its shelf should show one more.
    fn changed(&self, i: usize, at: Instant) {
        let mut w = self.listings[i].lock();
        w.changes += 1;
        let want = INITIAL + w.changes;
        if w.shown >= want {
            drop(w);
            self.latency[self.channel_of[i]].lock().saturating_record(1);
        } else {
            w.pending.push_back((want, at));
        }
    }
}

/// The listing a stock call's update names (the ids the bench gave it).
fn listing_of(u: &StockUpdate) -> Option<usize> {
    let sku: u64 = u.sku_id.parse().ok()?;
    usize::try_from(sku.checked_sub(SKU_BASE)?).ok()
}

/// Offers `rate` receipts a second for `duration` over `concurrency` connections; returns
/// (answered, failed, seconds).
async fn load(
    target: &Arc<Target>,
    state: &Arc<SyncState>,
    skus: &Arc<Vec<String>>,
    a: &StockSyncArgs,
) -> (u64, u64, f64) {
    let total = (a.rate * a.duration).round() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (target, state, skus, next, ok, failed, rate) = (
            target.clone(),
            state.clone(),
            skus.clone(),
            next.clone(),
            ok.clone(),
            failed.clone(),
            a.rate,
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= total {
                    return;
                }
                let at = t0 + Duration::from_secs_f64(j as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                // A SKU picked by a multiplicative hash of the change's number: spread, seeded.
                let i = (j.wrapping_mul(2_654_435_761) % skus.len() as u64) as usize;
                let body = serde_json::json!({"sku": skus[i], "warehouse_id": WAREHOUSE,
                    "quantity": 1});
                match conn
                    .send(
                        Method::POST,
                        Uri::from_static("/v1/inventory/receipts"),
                        Bytes::from(body.to_string()),
                    )
                    .await
                {
                    Ok(_) => {
                        state.changed(i, Instant::now());
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    )
}

#[derive(Debug, Serialize)]
struct ChannelSync {
    channel: String,
    listings: usize,
    synced: bool,
    changes: u64,
    stock_calls: u64,
    /// Changes per stock call (how much coalescing saved).
    changes_per_call: f64,
    calls_per_s: f64,
    rate_limit_per_s: f64,
    /// Calls the simulator answered with its throttling error (over its rate limit).
    throttled: u64,
    /// Changes whose quantity never reached the shelf within the settle time.
    not_reached: u64,
    latency_ms: Lat,
}

#[derive(Debug, Serialize)]
struct SyncReport {
    listings: usize,
    skus: usize,
    rate_offered: f64,
    duration_s: f64,
    changes_answered: u64,
    changes_failed: u64,
    changes_per_s: f64,
    initial_sync_s: f64,
    initial_sync_complete: bool,
    /// Change → shelf, every synced channel together.
    latency_ms: Lat,
    p99_target_ms: f64,
    p99_met: bool,
    not_reached: u64,
    channels: Vec<ChannelSync>,
}

async fn sync_part(a: &StockSyncArgs, o: &Opened) -> Result<SyncReport> {
    let n = a.listings.max(ChannelKind::ALL.len());
    let skus: Vec<String> = (0..n).map(|i| format!("SS-{i:05}")).collect();
    let listings: Vec<(usize, usize, String, String)> = (0..n)
        .map(|i| {
            let ch = i % o.channels.len();
            (
                i,
                ch,
                (ITEM_BASE + i as u64).to_string(),
                (SKU_BASE + i as u64).to_string(),
            )
        })
        .collect();
    println!(
        "stock sync: {n} listings (one SKU each) over {} channels, each simulator limited to {} calls/s …",
        o.channels.len(),
        a.channel_rate
    );
    let t = Instant::now();
    list(o, &skus, INITIAL, &listings).await?;
    println!(
        "  seeded {n} SKUs and listings in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (initial_sync_s, initial_sync_complete) = wait_shelves(o, &skus, INITIAL).await;
    println!("  every synced shelf showed {INITIAL} after {initial_sync_s:.1} s");
    let state = Arc::new(SyncState {
        listings: (0..n).map(|_| Mutex::new(Watched::default())).collect(),
        latency: (0..o.channels.len())
            .map(|_| Mutex::new(histogram()))
            .collect(),
        channel_of: listings.iter().map(|l| l.1).collect(),
    });
    for w in &state.listings {
        w.lock().shown = INITIAL;
    }
    let before: Vec<(u64, u64)> = o
        .channels
        .iter()
        .map(|c| (c.sim.stock_calls(), c.sim.stats.snapshot().throttled))
        .collect();
    for c in &o.channels {
        let st = state.clone();
        c.sim.watch_shelf(Arc::new(move |updates: &[StockUpdate]| {
            for u in updates {
                if let Some(i) = listing_of(u) {
                    st.shelf_set(i, u.quantity);
                }
            }
        }));
    }
    let skus = Arc::new(skus);
    let (answered, failed, secs) = load(&o.target, &state, &skus, a).await;
    let load_end = Instant::now();
    // The shelves catch up.
    while load_end.elapsed() < SETTLE {
        let pending = state
            .listings
            .iter()
            .enumerate()
            .filter(|(i, _)| syncable(o.channels[state.channel_of[*i]].kind))
            .any(|(_, w)| !w.lock().pending.is_empty());
        if !pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls_secs = load_end.elapsed().as_secs_f64() + secs;
    Ok(sync_report(
        a,
        o,
        &state,
        &before,
        (answered, failed, secs, calls_secs),
        (initial_sync_s, initial_sync_complete),
    ))
}

fn sync_report(
    a: &StockSyncArgs,
    o: &Opened,
    state: &SyncState,
    before: &[(u64, u64)],
    (answered, failed, secs, calls_secs): (u64, u64, f64, f64),
    (initial_sync_s, initial_sync_complete): (f64, bool),
) -> SyncReport {
    let mut all = histogram();
    let mut channels = Vec::new();
    let mut not_reached_all = 0;
    for (ci, c) in o.channels.iter().enumerate() {
        let mine: Vec<&Mutex<Watched>> = state
            .listings
            .iter()
            .enumerate()
            .filter(|(i, _)| state.channel_of[*i] == ci)
            .map(|(_, w)| w)
            .collect();
        let changes: u64 = mine.iter().map(|w| w.lock().changes as u64).sum();
        let not_reached: u64 = mine.iter().map(|w| w.lock().pending.len() as u64).sum();
        let h = state.latency[ci].lock().clone();
        let calls = c.sim.stock_calls() - before[ci].0;
        if syncable(c.kind) {
            let _ = all.add(&h);
            not_reached_all += not_reached;
        }
        channels.push(ChannelSync {
            channel: c.kind.code().to_owned(),
            listings: mine.len(),
            synced: syncable(c.kind),
            changes,
            stock_calls: calls,
            changes_per_call: changes as f64 / calls.max(1) as f64,
            calls_per_s: calls as f64 / calls_secs.max(1e-9),
            rate_limit_per_s: a.channel_rate,
            throttled: c.sim.stats.snapshot().throttled - before[ci].1,
            not_reached,
            latency_ms: Lat::of(&h),
        });
    }
    let latency = Lat::of(&all);
    SyncReport {
        listings: state.listings.len(),
        skus: state.listings.len(),
        rate_offered: a.rate,
        duration_s: a.duration,
        changes_answered: answered,
        changes_failed: failed,
        changes_per_s: answered as f64 / secs.max(1e-9),
        initial_sync_s,
        initial_sync_complete,
        p99_target_ms: 2_000.0,
        p99_met: latency.p99_ms < 2_000.0 && not_reached_all == 0,
        latency_ms: latency,
        not_reached: not_reached_all,
        channels,
    }
}

// ---------------------------------------------------------------------------------------------
// Part 2: the flash sale

const FLASH_SKU: &str = "SS-FLASH";
const FLASH_ITEM: u64 = 30_000_000;
const FLASH_SKU_ID: u64 = 40_000_000;

#[derive(Debug, Serialize)]
struct ChannelFlash {
    channel: String,
    buyers: u64,
    sold_units: u64,
    refused_empty_shelf: u64,
    /// When this channel's shelf showed 0, ms after the pool's last unit was taken (negative:
    /// before it, by its own sales).
    shelf_zero_after_pool_empty_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
struct FlashReport {
    stock: i64,
    buyers: u64,
    /// Over how many seconds the buyers arrived.
    arrival_s: f64,
    sold_units: u64,
    /// max(sold − stock, 0): units the shelves sold beyond the pool.
    oversold: u64,
    /// The same, Kuaishou left out (its shelf is not synced).
    oversold_synced_channels: u64,
    pushes_accepted: u64,
    pushes_failed: u64,
    orders_stored: u64,
    /// Paid orders the hub could not reserve stock for (backorders).
    backorders: u64,
    /// From the pool's last unit reserved to every synced shelf at 0.
    pool_empty_to_all_shelves_zero_ms: Option<f64>,
    elapsed_s: f64,
    channels: Vec<ChannelFlash>,
}

/// When each flash listing's shelf first showed 0 (by a stock call or a sale).
#[derive(Default)]
struct ZeroTimes {
    at: Mutex<HashMap<usize, Instant>>,
}

async fn flash_part(a: &StockSyncArgs, o: &Opened) -> Result<FlashReport> {
    let skus = vec![FLASH_SKU.to_owned()];
    let listings: Vec<(usize, usize, String, String)> = (0..o.channels.len())
        .map(|ch| {
            (
                0,
                ch,
                (FLASH_ITEM + ch as u64).to_string(),
                (FLASH_SKU_ID + ch as u64).to_string(),
            )
        })
        .collect();
    println!(
        "flash sale: {} units of {FLASH_SKU} listed on {} channels, {} buyers …",
        a.flash_stock,
        o.channels.len(),
        a.flash_buyers
    );
    list(o, &skus, a.flash_stock, &listings).await?;
    let stock = a.flash_stock;
    let (secs, ok) = wait_shelves(o, &skus, stock).await;
    anyhow::ensure!(
        ok,
        "the flash sale's shelves did not show {stock} within {secs:.0} s"
    );
    // Kuaishou's shelf is kept in its back office: its seller typed the stock there.
    for (ch, c) in o.channels.iter().enumerate() {
        if !syncable(c.kind) {
            c.sim.set_shelf(&listings[ch].2, &listings[ch].3, stock);
        }
    }
    let zeros = Arc::new(ZeroTimes::default());
    for (ch, c) in o.channels.iter().enumerate() {
        let z = zeros.clone();
        c.sim.watch_shelf(Arc::new(move |updates: &[StockUpdate]| {
            if updates.iter().any(|u| u.quantity <= 0) {
                z.at.lock().entry(ch).or_insert_with(Instant::now);
            }
        }));
    }
    let before: Vec<sim::StatsSnapshot> =
        o.channels.iter().map(|c| c.sim.stats.snapshot()).collect();
    let t0 = Instant::now();
    let pool_empty = watch_pool(o.target.clone(), stock);
    let (accepted, failed) = buyers(o, a.flash_buyers, a.flash_seconds, &zeros).await;
    let elapsed_s = t0.elapsed().as_secs_f64();
    let pool_empty = pool_empty.await.ok().flatten();
    // Every synced shelf at 0 (a stock call or its own sales took it there).
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        let all = o
            .channels
            .iter()
            .filter(|c| syncable(c.kind))
            .all(|c| c.sim.offered_shelf(FLASH_SKU).is_some_and(|q| q <= 0));
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let orders_stored = wait_orders(o, accepted).await;
    let backorders = count_backorders(&o.target).await?;
    Ok(flash_report(
        a,
        o,
        &before,
        &zeros,
        pool_empty,
        accepted,
        failed,
        orders_stored,
        backorders,
        elapsed_s,
    ))
}

/// Polls the flash SKU's stock until its pool is empty (nothing available); returns when.
fn watch_pool(target: Arc<Target>, stock: i64) -> tokio::task::JoinHandle<Option<Instant>> {
    tokio::spawn(async move {
        let mut conn = Conn::new(target);
        let until = Instant::now() + SETTLE;
        while Instant::now() < until {
            let uri = Uri::from_static("/v1/inventory/SS-FLASH");
            if let Ok(body) = conn.send(Method::GET, uri, Bytes::new()).await
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
            {
                let field = |k: &str| v.get(k).and_then(serde_json::Value::as_i64);
                if let (Some(on_hand), Some(reserved)) = (field("on_hand"), field("reserved"))
                    && on_hand - reserved <= 0
                    && on_hand >= stock
                {
                    return Some(Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    })
}

/// The buyers, split round robin across the channels, arriving evenly over `secs` (64 at a time
/// at most): each buys one unit from
/// the shelf (the platform refuses at 0) and the channel pushes the sale to the hub's webhook.
/// Returns (pushes accepted, pushes failed).
async fn buyers(o: &Opened, n: u64, secs: f64, zeros: &Arc<ZeroTimes>) -> (u64, u64) {
    let t0 = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sims: Arc<Vec<(ChannelKind, SimHandle)>> =
        Arc::new(o.channels.iter().map(|c| (c.kind, c.sim.clone())).collect());
    let base = format!("http://{}", o.hub.addr);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (next, ok, failed, sims, zeros, base) = (
            next.clone(),
            ok.clone(),
            failed.clone(),
            sims.clone(),
            zeros.clone(),
            base.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = orderhub_channels::client::HttpClient::new();
            let c = creds();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= n {
                    return;
                }
                let at = t0 + Duration::from_secs_f64(secs * b as f64 / n as f64);
                tokio::time::sleep_until(at.into()).await;
                let ch = (b % sims.len() as u64) as usize;
                let (kind, sim) = &sims[ch];
                let sale = sim.new_order(|o| {
                    o.lines.truncate(1);
                    let l = &mut o.lines[0];
                    l.sku = FLASH_SKU.to_owned();
                    l.quantity = 1;
                    l.paid_amount = l.unit_price - l.discount;
                    o.amounts.goods_total = l.unit_price;
                    o.amounts.discount = l.discount;
                    o.amounts.paid = l.paid_amount + o.amounts.shipping_fee;
                    o.canonical = CanonicalStatus::Paid;
                    o.paid_at = Some(o.created_at);
                });
                if sim.offered_shelf(FLASH_SKU).is_some_and(|q| q <= 0) {
                    zeros.at.lock().entry(ch).or_insert_with(Instant::now);
                }
                let Ok(order) = sale else { continue };
                let Ok(p) = sim::signed_push(*kind, &order, &c, chrono::Utc::now()) else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let url = p.url(&format!(
                    "{base}/v1/tenants/default/channels/{}/shops/{}/webhook",
                    kind.code(),
                    shop_of(*kind)
                ));
                match http
                    .call("POST", &url, p.content_type, &p.headers, p.body)
                    .await
                {
                    Ok((s, _)) if (200..300).contains(&s) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

/// Waits (at most 60 s) until the hub stored an order for each accepted push of the flash sale;
/// returns the orders stored.
async fn wait_orders(o: &Opened, accepted: u64) -> u64 {
    let Ok(tenant) = orderhub_domain::TenantId::parse(orderhub_http::bootstrap::DEFAULT_TENANT)
    else {
        return 0;
    };
    let f = orderhub_store::OrderFilter::all(tenant, 1);
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let f2 = f.clone();
        let n = o
            .hub
            .store
            .read(move |r| r.order_count(&f2))
            .await
            .unwrap_or(0);
        if n >= accepted || Instant::now() > until {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Paid orders waiting for stock (`GET /v1/backorders`, every page).
async fn count_backorders(target: &Arc<Target>) -> Result<u64> {
    let mut conn = Conn::new(target.clone());
    let (mut n, mut cursor) = (0u64, None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/backorders?limit=500&cursor={c}"),
            None => "/v1/backorders?limit=500".to_owned(),
        };
        let uri = Uri::try_from(path.as_str()).context("the backorders path")?;
        let body = conn
            .send(Method::GET, uri, Bytes::new())
            .await
            .map_err(|f| anyhow::anyhow!("GET {path}: {}", f.label()))?;
        let page: serde_json::Value = serde_json::from_slice(&body).context("backorders")?;
        n += page["backorders"].as_array().map_or(0, Vec::len) as u64;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(n),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn flash_report(
    a: &StockSyncArgs,
    o: &Opened,
    before: &[sim::StatsSnapshot],
    zeros: &ZeroTimes,
    pool_empty: Option<Instant>,
    accepted: u64,
    failed: u64,
    orders_stored: u64,
    backorders: u64,
    elapsed_s: f64,
) -> FlashReport {
    let zeros = zeros.at.lock().clone();
    let since = |t: Instant| {
        pool_empty.map(|p| {
            if t >= p {
                t.duration_since(p).as_secs_f64() * 1e3
            } else {
                -(p.duration_since(t).as_secs_f64() * 1e3)
            }
        })
    };
    let n = o.channels.len() as u64;
    let mut channels = Vec::new();
    let (mut sold, mut sold_synced) = (0u64, 0u64);
    for (ch, c) in o.channels.iter().enumerate() {
        let s = c.sim.stats.snapshot();
        let units = s.sold_units - before[ch].sold_units;
        sold += units;
        if syncable(c.kind) {
            sold_synced += units;
        }
        channels.push(ChannelFlash {
            channel: c.kind.code().to_owned(),
            buyers: a.flash_buyers / n + u64::from((ch as u64) < a.flash_buyers % n),
            sold_units: units,
            refused_empty_shelf: s.refused_empty_shelf - before[ch].refused_empty_shelf,
            shelf_zero_after_pool_empty_ms: zeros.get(&ch).and_then(|t| since(*t)),
        });
    }
    let all_zero = o
        .channels
        .iter()
        .enumerate()
        .filter(|(_, c)| syncable(c.kind))
        .map(|(ch, _)| zeros.get(&ch).copied())
        .collect::<Option<Vec<Instant>>>()
        .and_then(|ts| ts.into_iter().max())
        .and_then(since);
    let stock = a.flash_stock.max(0) as u64;
    FlashReport {
        stock: a.flash_stock,
        buyers: a.flash_buyers,
        arrival_s: a.flash_seconds,
        sold_units: sold,
        oversold: sold.saturating_sub(stock),
        oversold_synced_channels: sold_synced.saturating_sub(stock),
        pushes_accepted: accepted,
        pushes_failed: failed,
        orders_stored,
        backorders,
        pool_empty_to_all_shelves_zero_ms: all_zero,
        elapsed_s,
        channels,
    }
}

// ---------------------------------------------------------------------------------------------
// The command

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    backend: &'static str,
    sync: SyncReport,
    flash_sale: FlashReport,
}

fn print_sync(s: &mut String, r: &SyncReport) {
    let _ = writeln!(s, "\norderhub bench stock-sync");
    let _ = writeln!(
        s,
        "  sync         {} listings, {:.0} changes/s offered for {:.0} s: {} answered ({:.0}/s), {} failed",
        r.listings,
        r.rate_offered,
        r.duration_s,
        r.changes_answered,
        r.changes_per_s,
        r.changes_failed
    );
    let _ = writeln!(
        s,
        "  change → shelf (synced channels) p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} changes; {} never reached — p99 < 2 s: {}",
        r.latency_ms.p50_ms,
        r.latency_ms.p90_ms,
        r.latency_ms.p99_ms,
        r.latency_ms.max_ms,
        r.latency_ms.count,
        r.not_reached,
        if r.p99_met { "met" } else { "NOT met" }
    );
    let _ = writeln!(
        s,
        "\n  channel   listings  changes   calls  changes/call  calls/s  limit/s  throttled  p50 ms   p99 ms"
    );
    for c in &r.channels {
        if !c.synced {
            let _ = writeln!(
                s,
                "  {:<9} {:>8} {:>8} {:>7}  not synced: its stock call is incremental only (SOURCES.md)",
                c.channel, c.listings, c.changes, c.stock_calls
            );
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<9} {:>8} {:>8} {:>7} {:>13.1} {:>8.0} {:>8.0} {:>10} {:>7.0} {:>8.0}",
            c.channel,
            c.listings,
            c.changes,
            c.stock_calls,
            c.changes_per_call,
            c.calls_per_s,
            c.rate_limit_per_s,
            c.throttled,
            c.latency_ms.p50_ms,
            c.latency_ms.p99_ms
        );
    }
}

fn print_flash(s: &mut String, r: &FlashReport) {
    let _ = writeln!(
        s,
        "\n  flash sale   {} units on 7 channels, {} buyers over {:.1} s: {} units sold — oversold {} ({} without Kuaishou, whose shelf is not synced)",
        r.stock, r.buyers, r.arrival_s, r.sold_units, r.oversold, r.oversold_synced_channels
    );
    let _ = writeln!(
        s,
        "  hub          {} sales pushed ({} failed), {} orders stored, {} could not reserve stock (backorders)",
        r.pushes_accepted, r.pushes_failed, r.orders_stored, r.backorders
    );
    let _ = writeln!(
        s,
        "  pool empty → every synced shelf at 0: {}",
        r.pool_empty_to_all_shelves_zero_ms
            .map_or("not seen".to_owned(), |ms| format!("{ms:.0} ms"))
    );
    let _ = writeln!(
        s,
        "\n  channel   buyers  sold  refused (shelf at 0)  shelf at 0 after pool empty"
    );
    for c in &r.channels {
        let _ = writeln!(
            s,
            "  {:<9} {:>6} {:>5} {:>21}  {}",
            c.channel,
            c.buyers,
            c.sold_units,
            c.refused_empty_shelf,
            c.shelf_zero_after_pool_empty_ms
                .map_or("—".to_owned(), |ms| format!("{ms:.0} ms"))
        );
    }
}

pub async fn run(a: StockSyncArgs) -> Result<()> {
    anyhow::ensure!(a.rate > 0.0 && a.rate.is_finite(), "--rate must be above 0");
    anyhow::ensure!(
        a.duration > 0.0 && a.duration.is_finite(),
        "--duration must be above 0"
    );
    anyhow::ensure!(a.listings <= 100_000, "--listings must be at most 100000");
    anyhow::ensure!(a.flash_stock >= 1, "--flash-stock must be at least 1");
    anyhow::ensure!(
        a.flash_seconds >= 0.0 && a.flash_seconds <= 600.0,
        "--flash-seconds must be 0 to 600"
    );
    let dir = tempfile::Builder::new()
        .prefix("orderhub-bench-stock-")
        .tempdir()?;
    let o = open(&a, dir.path()).await?;
    let sync = sync_part(&a, &o).await?;
    let flash_sale = flash_part(&a, &o).await?;
    let report = Report {
        bench: "stock-sync",
        backend: "sqlite",
        sync,
        flash_sale,
    };
    let mut s = String::new();
    print_sync(&mut s, &report.sync);
    print_flash(&mut s, &report.flash_sale);
    println!("{s}");
    crate::bench::write_json(a.json.as_deref(), &report)?;
    o.hub.stop().await;
    Ok(())
}

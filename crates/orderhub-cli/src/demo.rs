//! `orderhub demo`: the whole flow, live, on the embedded default (SQLite + the in-process bus) —
//! the hub with its fulfillment on the carrier simulators, the seven channel simulators pushing
//! signed orders to its webhooks (Pinduoduo's over its message service, as it does), a seeded
//! catalogue, warehouses and stock, and a business day
//! compressed into minutes: a morning, a promotion peak, a flash sale on one SKU, a carrier
//! outage that trips its breaker (fulfillment falls back to the next carrier), an evening, and
//! throughout buyers who pay late, cancel, or ask for refunds after delivery.
//!
//! It prints the console URL with two API keys (an admin key that sees personal data and an ops
//! key that does not), and one live summary line read from the hub's own event feed and stock:
//! orders and their rate, shipped, open exceptions, breakers, and whether anything was oversold.
//! Ctrl-C stops it cleanly; `--exit-after-day` stops after the day (tests and CI use it).
//!
//! The demo is a client like any other: it configures shops, SKUs (with weights), warehouses
//! (with their senders), keys and the tenant's carrier accounts through the HTTP API, and the
//! channels reach the hub only through their signed pushes. The hub runs its production
//! fulfillment (`--fulfillment carriers`): the carrier accounts the demo configures point at
//! the seven carrier simulators it starts, so the real adapters and their credentials run.

use crate::config::{LogFormat, Settings};
use anyhow::{Context, Result};
use clap::Args;
use orderhub_carriers::CarrierKind;
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, SimHandle, SimSettings};
use orderhub_channels::{CanonicalStatus, ChannelKind, ChannelOrder, ShopCredentials};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod bot;
mod closes;
mod desk;
mod health;
mod rules;

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where the hub and its console listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Keep the demo's SQLite database here (default: a temporary directory removed at exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// How long the business day lasts, in minutes.
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// Channel orders per second outside the peaks (the promotion peak is six times this).
    #[arg(long, default_value_t = 15.0)]
    rate: f64,
    /// Stop after the day instead of serving on (with a trickle of orders) until Ctrl-C.
    #[arg(long)]
    exit_after_day: bool,
    /// Seed of the buyers' choices; the same seed plays the same day.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// The brand's catalogue: (SKU, title, units per warehouse). `SKII-FTE-230` is short on purpose:
/// paid orders beyond its stock wait as backorders with an `out_of_stock` exception.
const CATALOGUE: &[(&str, &str, i64)] = &[
    ("AIRPODS-PRO-2", "Apple® AirPods Pro 2 无线耳机™", 5_000),
    ("TEE-COTTON-WHT-M", "🔥爆款🔥 纯棉短袖T恤 白色 M码", 5_000),
    ("NUTS-750G", "三只松鼠® 每日坚果 750g 🎁礼盒装", 5_000),
    (
        "REDMI-NOTE13P-256",
        "小米 Redmi Note 13 Pro 5G 8+256GB",
        5_000,
    ),
    ("ORANGE-GANNAN-5J", "🍊赣南脐橙 5斤装 现摘现发", 5_000),
    ("NIKE-AF1-42", "Nike 耐克 Air Force 1 ’07 白色 42码", 5_000),
    ("STROLLER-GB", "好孩子 婴儿推车 轻便折叠 👶", 5_000),
    ("SKII-FTE-230", "SK-II 神仙水 230ml 护肤精华露™", 40),
    ("MUG-THERMOS-500", "膳魔师 保温杯 500ml", 5_000),
    ("TEA-LONGJING-250G", "西湖龙井 明前特级 250g", 5_000),
];
/// A SKU the brand lists before its stock arrives: orders for it wait on backorder
/// (`out_of_stock`). The browser tests buy it, so their orders stay where they put them.
const RESTOCK_SKU: &str = "LIMITED-RESTOCK";
const RESTOCK_TITLE: &str = "限量联名款（到货中 restock pending）";
const FLASH_SKU: &str = "MAOTAI-FLASH-53";
const FLASH_TITLE: &str = "飞天茅台 53度 500ml（秒杀 flash sale）";
/// Units on sale in the flash sale, and buyers racing for them.
const FLASH_STOCK: i64 = 300;
const FLASH_BUYERS: u64 = 3_000;
/// (id, name, priority, provinces served; empty = everywhere)
/// Where each warehouse's parcels leave from: (warehouse, province, city, district, street).
const SENDERS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "HZ",
        "浙江省",
        "杭州市",
        "余杭区",
        "仓前街道文一西路 1888 号",
    ),
    ("SZ", "广东省", "深圳市", "宝安区", "福永街道物流园 6 栋"),
    (
        "CD",
        "四川省",
        "成都市",
        "双流区",
        "西航港街道空港一路 99 号",
    ),
    (
        "BJ",
        "北京市",
        "北京市",
        "大兴区",
        "亦庄经济开发区科创十街 15 号",
    ),
];
/// A unit's shipping weight in kilograms, by SKU (what waybills declare).
fn weight_of(sku: &str) -> &'static str {
    match sku {
        "AIRPODS-PRO-2" => "0.35",
        "TEE-COTTON-WHT-M" => "0.25",
        "NUTS-750G" => "0.9",
        "REDMI-NOTE13P-256" => "0.6",
        "ORANGE-GANNAN-5J" => "2.6",
        "NIKE-AF1-42" => "1.4",
        "STROLLER-GB" => "7.5",
        "SKII-FTE-230" => "0.5",
        "MUG-THERMOS-500" => "0.45",
        "TEA-LONGJING-250G" => "0.4",
        "MAOTAI-FLASH-53" => "1.1",
        _ => "1",
    }
}
const WAREHOUSES: &[(&str, &str, u32, &[&str])] = &[
    (
        "HZ",
        "杭州仓 Hangzhou",
        1,
        &["浙江省", "江苏省", "上海市", "安徽省"],
    ),
    (
        "SZ",
        "深圳仓 Shenzhen",
        1,
        &["广东省", "广西壮族自治区", "福建省"],
    ),
    (
        "CD",
        "成都仓 Chengdu",
        2,
        &["四川省", "重庆市", "湖北省", "新疆维吾尔自治区"],
    ),
    ("BJ", "北京仓 Beijing", 3, &[]),
];
/// Share of the day's orders by channel (weights).
const CHANNEL_MIX: &[(ChannelKind, u32)] = &[
    (ChannelKind::Taobao, 30),
    (ChannelKind::Pdd, 20),
    (ChannelKind::Douyin, 20),
    (ChannelKind::Jd, 15),
    (ChannelKind::Kuaishou, 7),
    (ChannelKind::Wechat, 4),
    (ChannelKind::Youzan, 4),
];
/// The carrier the hub ships with, the one that fails in the outage, and its fallbacks.
const CARRIER: CarrierKind = CarrierKind::Zto;
const FALLBACK: &[CarrierKind] = &[CarrierKind::Yto, CarrierKind::Jt];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Morning,
    Peak,
    FlashSale,
    CarrierOutage,
    Evening,
    AfterHours,
}

impl Phase {
    /// Where the day is at `f` (0 = opening, 1 = closing).
    fn at(f: f64) -> Phase {
        match f {
            f if f < 0.25 => Phase::Morning,
            f if f < 0.45 => Phase::Peak,
            f if f < 0.55 => Phase::FlashSale,
            f if f < 0.75 => Phase::CarrierOutage,
            f if f < 1.0 => Phase::Evening,
            _ => Phase::AfterHours,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Phase::Morning => "早间 morning",
            Phase::Peak => "大促高峰 promotion peak",
            Phase::FlashSale => "秒杀 flash sale",
            Phase::CarrierOutage => "承运商故障 carrier outage",
            Phase::Evening => "晚间 evening",
            Phase::AfterHours => "夜间 after hours",
        }
    }
    /// Orders per second, as a multiple of `--rate`.
    fn load(self) -> f64 {
        match self {
            Phase::Morning | Phase::Evening => 1.0,
            Phase::Peak => 6.0,
            Phase::FlashSale | Phase::CarrierOutage => 2.0,
            Phase::AfterHours => 0.3,
        }
    }
}

/// The hub's HTTP API as the demo uses it.
#[derive(Clone)]
struct Api {
    http: HttpClient,
    base: String,
    auth: Vec<(String, String)>,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(u16, serde_json::Value)> {
        let (status, body) = self
            .http
            .call(
                method,
                &format!("{}{path}", self.base),
                "application/json",
                &self.auth,
                if body.is_null() {
                    Vec::new()
                } else {
                    body.to_string().into_bytes()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{method} {path}: {e}"))?;
        Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
    }

    /// A call that must succeed (seeding): a non-2xx answer is an error naming the path.
    async fn ok(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let (status, v) = self.call(method, path, body).await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {v}"
        );
        Ok(v)
    }
}

/// One simulated channel shop and where it pushes.
struct Shop {
    kind: ChannelKind,
    sim: SimHandle,
    webhook: String,
    /// The demo's one HTTP client (its connection pool), shared with [`Api`].
    http: HttpClient,
}

/// What the hub's event feed has said so far.
#[derive(Default)]
struct Tally {
    by_type: BTreeMap<String, u64>,
    raised: BTreeMap<String, u64>,
    resolved: u64,
    /// Latest breaker state per carrier.
    breakers: BTreeMap<String, String>,
}

impl Tally {
    fn count(&self, t: &str) -> u64 {
        self.by_type.get(t).copied().unwrap_or(0)
    }
    fn open_exceptions(&self) -> u64 {
        self.raised
            .values()
            .sum::<u64>()
            .saturating_sub(self.resolved)
    }
}

fn creds(kind: ChannelKind) -> ShopCredentials {
    let mut c = ShopCredentials::new(
        format!("demo-{}", kind.code()),
        format!("demo-secret-{}", kind.code()),
    );
    c.access_token = format!("demo-token-{}", kind.code());
    // Kuaishou encrypts its pushes with a Base64 AES key; the others ignore it.
    c.message_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into();
    c
}

/// The hub's settings for the demo: the embedded store in `data_dir`, production fulfillment on
/// the carrier simulators, loopback addresses allowed.
fn demo_settings(a: &DemoArgs, data_dir: std::path::PathBuf, admin_key: &str) -> Settings {
    Settings {
        listen: a.listen.clone(),
        data_dir,
        database_url: None,
        pii_key: None,
        pg_writers: crate::config::DEFAULT_PG_WRITERS,
        bootstrap_api_key: Some(orderhub_core::secret::Secret::from(admin_key.to_owned())),
        // Logs are not switched on (the summary line is the demo's output; the hub's own logs
        // would bury it).
        log_format: LogFormat::Pretty,
        nats_url: None,
        nats_partitions: 4,
        // Production fulfillment: the carrier accounts configured below, on the simulators.
        fulfillment: crate::config::FulfillmentMode::Carriers,
        // A business day in minutes: parcels are polled every 2 s instead of on the hourly
        // schedule (the simulators' scans advance every 2 s).
        track_schedule: orderhub_fulfillment::TrackSchedule::every(Duration::from_secs(2)),
        carrier: CARRIER,
        carrier_fallback: HashMap::from([(CARRIER, FALLBACK.to_vec())]),
        // Local simulators and receivers: loopback addresses.
        allow_private_urls: true,
        public_url: None,
        webhook_max_attempts: orderhub_events::runtime::DEFAULT_MAX_ATTEMPTS,
        webhook_backoff_max: orderhub_events::runtime::DEFAULT_BACKOFF_MAX,
        listing_reconcile_every: crate::config::DEFAULT_LISTING_RECONCILE_EVERY,
        // A business day in minutes: orders are compared with their channels every 20 s once
        // unchanged for 10 s (the day's silent closes, `demo/closes.rs`, are found so).
        status_check: Some(orderhub_intake::status_check::StatusCheckConfig {
            interval: chrono::Duration::seconds(20),
            settle: chrono::Duration::seconds(10),
            poll: Duration::from_secs(2),
            ..Default::default()
        }),
        // Shipped orders compared with their carriers' tracking as often.
        carrier_check: Some(orderhub_fulfillment::reconcile::CarrierCheckConfig {
            interval: chrono::Duration::seconds(20),
            settle: chrono::Duration::seconds(10),
            poll: Duration::from_secs(2),
            ..Default::default()
        }),
        ship_by_risk_lead: orderhub_fulfillment::DEFAULT_SHIP_BY_RISK_LEAD,
        // A parcel unscanned for 2 business hours raises `no_tracking` (the outage's parcels).
        no_tracking_after: Duration::from_secs_f64((a.minutes * 60.0 * 2.0 / 24.0).max(1.0)),
        completion: Default::default(),
        http: Default::default(),
    }
}

pub async fn run(a: DemoArgs) -> Result<()> {
    anyhow::ensure!(
        a.minutes > 0.0 && a.minutes.is_finite(),
        "--minutes must be above 0"
    );
    anyhow::ensure!(a.rate > 0.0 && a.rate.is_finite(), "--rate must be above 0");
    let temp = match &a.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("orderhub-demo-")
                .tempdir()?,
        ),
    };
    let data_dir = a
        .data_dir
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()))
        .context("no data directory")?;
    let admin_key = format!("demo-admin-{}", uuid::Uuid::new_v4().simple());
    let settings = demo_settings(&a, data_dir.clone(), &admin_key);
    let fleet = orderhub_carriers::sim::fleet::start()
        .await
        .context("cannot start the carrier simulators")?;
    let (hub, _) = crate::hub::start(&settings).await?;
    let api = Api {
        http: HttpClient::new(),
        base: format!("http://{}", hub.addr),
        auth: vec![("authorization".into(), format!("Bearer {admin_key}"))],
    };
    configure_carriers(&api, &fleet).await?;
    health::configure(&api, Duration::from_secs_f64(a.minutes * 60.0)).await?;
    println!("orderhub demo — starting the hub, 7 channel simulators and 7 carrier simulators …");
    let ops_key = seed_catalogue(&api).await?;
    // The operations desk: refunds, returns through QC, address edits approved by a second key.
    let ops_api = Api {
        auth: vec![("authorization".into(), format!("Bearer {ops_key}"))],
        ..api.clone()
    };
    // The rules live before the first order: ops writes them, the admin approves and publishes.
    let (rule_set, rule_version) = rules::publish(&api, &ops_api).await?;
    let team_bot = bot::start(&api).await?;
    let shops = Arc::new(open_shops(&api).await?);
    let (desk_stop, desk_rx) = tokio::sync::watch::channel(false);
    let desk_every = Duration::from_secs_f64((a.minutes * 60.0 / 90.0).clamp(0.2, 3.0));
    let desk = tokio::spawn(desk::run(
        api.clone(),
        ops_api,
        desk_every,
        a.seed,
        desk_rx.clone(),
    ));
    // Closes on the Taobao simulator that never reach the hub: the status reconciler finds them.
    let taobao = shops
        .iter()
        .find(|s| s.kind == ChannelKind::Taobao)
        .map(|s| s.sim.clone())
        .context("no Taobao simulator")?;
    let closes = tokio::spawn(closes::run(
        api.clone(),
        taobao,
        "taobao-flagship".into(),
        desk_every * 8,
        desk_rx,
    ));
    let (t0, day) = (Instant::now(), Duration::from_secs_f64(a.minutes * 60.0));
    let health = health::spawn(&api, t0, day, desk_stop.subscribe());
    println!();
    println!("  console  http://{}/", hub.addr);
    println!("  admin key (sees personal data)   {admin_key}");
    println!("  ops key   (personal data masked) {ops_key}");
    println!("  data     {}", data_dir.display());
    println!(
        "  the day: {} min — morning, promotion peak (×6), flash sale ({FLASH_BUYERS} buyers for {FLASH_STOCK} units), carrier outage ({} down, falls back to {}), evening. Ctrl-C stops.",
        a.minutes,
        CARRIER.code(),
        FALLBACK
            .iter()
            .map(|c| c.code())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();

    let stop = crate::hub::shutdown_signal();
    tokio::pin!(stop);
    let mut rng = StdRng::seed_from_u64(a.seed);
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tally = Tally::default();
    let mut after = 0i64;
    let mut due = 0.0f64;
    let mut phase = Phase::Morning;
    let mut flash: Option<tokio::task::JoinHandle<(u64, u64, u64)>> = None;
    let mut flash_result = None;
    let mut oversold: Option<usize> = None;
    let mut backorders: Option<usize> = None;
    let (mut last_orders, mut last_at) = (0u64, Instant::now());
    let mut rate_now = 0.0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ticks = 0u64;
    let tty = std::io::stdout().is_terminal();
    let mut interrupted = false;
    loop {
        tokio::select! {
            _ = &mut stop => { interrupted = true; break; }
            _ = tick.tick() => {}
        }
        ticks += 1;
        let f = t0.elapsed().as_secs_f64() / day.as_secs_f64();
        let now_phase = Phase::at(f);
        if now_phase == Phase::AfterHours && a.exit_after_day {
            break;
        }
        if now_phase != phase {
            on_phase_change(phase, now_phase, &fleet, &api, &mut flash);
            phase = now_phase;
        }
        if let Some(h) = &flash
            && h.is_finished()
            && let Some(h) = flash.take()
        {
            flash_result = h.await.ok();
        }
        due += a.rate * phase.load() * 0.1;
        while due >= 1.0 {
            due -= 1.0;
            place_order(&shops, &mut rng, &sent, &failed);
        }
        if ticks.is_multiple_of(10) {
            after = read_events(&api, after, &mut tally).await;
            if ticks.is_multiple_of(50) || oversold.is_none() {
                oversold = oversold_positions(&hub.store).await;
                backorders = count_backorders(&api).await;
            }
            let created = tally.count(orderhub_domain::event_types::ORDER_CREATED);
            let dt = last_at.elapsed().as_secs_f64();
            if dt > 0.0 {
                rate_now = created.saturating_sub(last_orders) as f64 / dt;
            }
            (last_orders, last_at) = (created, Instant::now());
            let line = summary(
                t0.elapsed(),
                phase,
                &tally,
                &Gauges {
                    rate: rate_now,
                    oversold,
                    backorders,
                    flash: flash_result,
                    failed: failed.load(Ordering::Relaxed),
                },
            );
            if tty {
                print!("\r\x1b[2K{line}");
                let _ = std::io::stdout().flush();
            } else if ticks.is_multiple_of(50) {
                println!("{line}");
            }
        }
    }
    if tty {
        println!();
    }
    // Let what is in flight land, then the final word.
    if !interrupted {
        on_phase_change(phase, Phase::AfterHours, &fleet, &api, &mut flash);
        if let Some(h) = flash.take() {
            flash_result = h.await.ok();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let _ = desk_stop.send(true);
    let _ = desk.await;
    let closed = closes.await.unwrap_or_default();
    let health_seen = health.await.unwrap_or_default();
    let _ = read_events(&api, after, &mut tally).await;
    let violations = crate::hub::inventory_violations(&hub.store, false).await?.2;
    let counts = hub
        .store
        .read(|r| r.order_counts())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let backorders = count_backorders(&api).await;
    let rules_line = rules::sandbox_line(&api, &rule_set, rule_version).await;
    println!(
        "{}",
        report(
            &tally,
            backorders,
            &counts,
            flash_result,
            &violations,
            sent.load(Ordering::Relaxed)
        )
    );
    println!("  rules                   {rules_line}");
    println!("  team bot (DingTalk sim) {}", bot::line(&team_bot));
    println!(
        "  status reconciler       {}",
        closes::line(&api, &closed).await
    );
    health::print(&health_seen);
    hub.stop().await;
    drop(temp);
    anyhow::ensure!(
        violations.is_empty(),
        "inventory invariants broken: {}",
        violations.join("; ")
    );
    Ok(())
}

/// The catalogue, warehouses and stock, and an ops key without `pii:read`; returns the ops key.
async fn seed_catalogue(api: &Api) -> Result<String> {
    for (id, name, priority, regions) in WAREHOUSES {
        let sender = SENDERS.iter().find(|s| s.0 == *id).map(|s| {
            serde_json::json!({"name": format!("{name} 发货组"), "phone": "4008001234",
                "province": s.1, "city": s.2, "district": s.3, "detail": s.4})
        });
        api.ok(
            "PUT",
            &format!("/v1/warehouses/{id}"),
            serde_json::json!({"name": name, "priority": priority, "regions": regions,
                "sender": sender, "parcel_max_kg": "20"}),
        )
        .await?;
    }
    let items = CATALOGUE
        .iter()
        .map(|(s, t, n)| (*s, *t, *n))
        .chain([(FLASH_SKU, FLASH_TITLE, 0), (RESTOCK_SKU, RESTOCK_TITLE, 0)]);
    for (sku, title, per_warehouse) in items {
        api.ok(
            "PUT",
            &format!("/v1/skus/{sku}"),
            serde_json::json!({"title": title, "weight_kg": weight_of(sku)}),
        )
        .await?;
        for (wh, ..) in WAREHOUSES {
            if sku == RESTOCK_SKU {
                break;
            }
            let quantity = if sku == FLASH_SKU {
                // The flash sale's stock sits in one warehouse.
                if *wh == "HZ" { FLASH_STOCK } else { continue }
            } else {
                per_warehouse
            };
            api.ok(
                "POST",
                "/v1/inventory/receipts",
                serde_json::json!({"sku": sku, "warehouse_id": wh, "quantity": quantity}),
            )
            .await?;
        }
    }
    let key = api
        .ok(
            "POST",
            "/v1/api-keys",
            serde_json::json!({"name": "demo ops", "role": "ops"}),
        )
        .await?;
    key.get("key")
        .or_else(|| key.get("secret"))
        .and_then(|k| k.as_str())
        .map(str::to_owned)
        .with_context(|| format!("the new API key's answer has no key: {key}"))
}

/// The tenant's carrier accounts, one per carrier of the day's route (ZTO first, then its
/// fallbacks), each pointing at its simulator with the credentials the simulator checks.
async fn configure_carriers(api: &Api, fleet: &orderhub_carriers::sim::fleet::Fleet) -> Result<()> {
    for (i, kind) in std::iter::once(&CARRIER).chain(FALLBACK).enumerate() {
        let (cfg, _) = orderhub_carriers::sim::fleet::credentials(*kind);
        let url = fleet
            .urls
            .get(kind)
            .with_context(|| format!("no simulator for {kind}"))?;
        api.ok(
            "PUT",
            &format!("/v1/carriers/{}", kind.code()),
            serde_json::json!({
                "base_url": url, "app_key": cfg.app_key, "secret": cfg.secret.expose(),
                "customer_code": cfg.customer_code,
                "access_token": cfg.access_token.as_ref().map(|s| s.expose()),
                "customer_password": cfg.customer_password.as_ref().map(|s| s.expose()),
                "priority": i + 1,
                // The simulators keep no quota; the demo's day is short.
                "track_per_minute": 6000,
            }),
        )
        .await?;
    }
    Ok(())
}

/// One simulated shop per channel, configured in the hub with the simulator's API as its base URL
/// (the hub also pulls them, as it would a real platform).
async fn open_shops(api: &Api) -> Result<Vec<Shop>> {
    let mut shops = Vec::new();
    for (kind, _) in CHANNEL_MIX {
        let c = creds(*kind);
        let (url, sim) = sim::spawn(*kind, SimSettings::new(c.clone(), 0, 11))
            .await
            .with_context(|| format!("the {} simulator", kind.code()))?;
        // A Pinduoduo shop's id is its mall id: its messages come over the message service,
        // which names the mall (the simulator's is 77977).
        let shop = match kind {
            ChannelKind::Pdd => PDD_MALL.to_string(),
            _ => format!("{}-flagship", kind.code()),
        };
        api.ok(
            "PUT",
            &format!("/v1/channels/{}/shops/{shop}", kind.code()),
            serde_json::json!({"app_key": c.app_key, "secret": c.secret,
                "access_token": c.access_token, "message_key": c.message_key, "api_base_url": url}),
        )
        .await?;
        shops.push(Shop {
            kind: *kind,
            sim,
            http: api.http.clone(),
            webhook: format!(
                "{}/v1/tenants/default/channels/{}/shops/{shop}/webhook",
                api.base,
                kind.code()
            ),
        });
    }
    Ok(shops)
}

fn on_phase_change(
    from: Phase,
    to: Phase,
    fleet: &orderhub_carriers::sim::fleet::Fleet,
    api: &Api,
    flash: &mut Option<tokio::task::JoinHandle<(u64, u64, u64)>>,
) {
    let zto = fleet.handles.get(&CARRIER);
    if to == Phase::FlashSale && flash.is_none() {
        *flash = Some(tokio::spawn(flash_sale(api.clone())));
    }
    if to == Phase::CarrierOutage
        && let Some(h) = zto
    {
        h.knobs.set_error_rate(1.0);
    }
    if from == Phase::CarrierOutage
        && let Some(h) = zto
    {
        h.knobs.set_error_rate(0.0);
    }
}

/// `FLASH_BUYERS` buyers race for `FLASH_STOCK` units, each reserving one at payment; returns
/// (sold, refused, errors).
async fn flash_sale(api: Api) -> (u64, u64, u64) {
    let next = Arc::new(AtomicU64::new(0));
    let (sold, refused, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (api, next, sold, refused, errors) = (
            api.clone(),
            next.clone(),
            sold.clone(),
            refused.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= FLASH_BUYERS {
                    break;
                }
                let body = serde_json::json!({"reference": format!("flash-buyer-{n}"),
                    "lines": [{"sku": FLASH_SKU, "quantity": 1}], "mode": "at_payment"});
                match api.call("POST", "/v1/reservations", body).await {
                    Ok((s, _)) if (200..300).contains(&s) => &sold,
                    Ok((409, _)) => &refused,
                    _ => &errors,
                }
                .fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        sold.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    )
}

/// A buyer orders on a channel: the simulator holds the order, signs its push and sends it to the
/// hub's webhook (Pinduoduo: a message on its message service, which the hub's relay takes). Some buyers pay a few seconds later, some cancel, some ask for a refund after
/// delivery — each a later change on the channel and another push.
fn place_order(
    shops: &Arc<Vec<Shop>>,
    rng: &mut StdRng,
    sent: &Arc<AtomicU64>,
    failed: &Arc<AtomicU64>,
) {
    let total: u32 = CHANNEL_MIX.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    let i = CHANNEL_MIX
        .iter()
        .position(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .unwrap_or(0);
    let lines: Vec<usize> = (0..rng.random_range(1..=2usize))
        .map(|_| rng.random_range(0..CATALOGUE.len()))
        .collect();
    let roll: f64 = rng.random();
    // (delay, what happens next)
    let followup = match roll {
        r if r < 0.08 => Some((rng.random_range(3..8u64), CanonicalStatus::Paid)),
        r if r < 0.11 => Some((rng.random_range(1..4u64), CanonicalStatus::Cancelled)),
        r if r < 0.13 => Some((rng.random_range(20..40u64), CanonicalStatus::Cancelled)),
        _ => None,
    };
    let pays_later = matches!(followup, Some((_, CanonicalStatus::Paid)));
    let (shops, sent, failed) = (shops.clone(), sent.clone(), failed.clone());
    tokio::spawn(async move {
        let shop = &shops[i];
        let order = shop.sim.new_order(|o| {
            o.lines.truncate(lines.len());
            for (l, c) in o.lines.iter_mut().zip(&lines) {
                l.sku = CATALOGUE[*c].0.to_owned();
                l.title = CATALOGUE[*c].1.to_owned();
            }
            let goods: rust_decimal::Decimal = o
                .lines
                .iter()
                .map(|l| l.unit_price * rust_decimal::Decimal::from(l.quantity))
                .sum();
            let discount: rust_decimal::Decimal = o.lines.iter().map(|l| l.discount).sum();
            o.amounts.goods_total = goods;
            o.amounts.discount = discount;
            o.amounts.paid = goods + o.amounts.shipping_fee - discount;
            if pays_later {
                o.canonical = CanonicalStatus::PendingPayment;
                o.paid_at = None;
            } else {
                o.canonical = CanonicalStatus::Paid;
                o.paid_at = Some(o.created_at);
            }
        });
        // The demo links no listing to the simulators' shelves: no sale is refused.
        let Ok(order) = order else {
            return;
        };
        push(shop, &order, &sent, &failed).await;
        if let Some((delay, to)) = followup {
            tokio::time::sleep(Duration::from_secs(delay)).await;
            if let Some(changed) = shop.sim.set_status(&order.external_order_id, to) {
                push(shop, &changed, &sent, &failed).await;
            }
        }
    });
}

/// The demo's Pinduoduo mall (the one the PDD simulator's messages name).
const PDD_MALL: i64 = 77977;

async fn push(shop: &Shop, order: &ChannelOrder, sent: &AtomicU64, failed: &AtomicU64) {
    // Pinduoduo has no webhook: its messages reach the hub over the message service, which the
    // hub keeps a connection to (orderhub-intake's relay).
    if shop.kind == ChannelKind::Pdd {
        let topic = orderhub_channels::pdd::pmc::topic(order.canonical);
        shop.sim
            .pmc_publish(topic, PDD_MALL, &order.external_order_id);
        sent.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let c = creds(shop.kind);
    let Ok(p) = sim::signed_push(shop.kind, order, &c, chrono::Utc::now()) else {
        failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let url = p.url(&shop.webhook);
    match shop
        .http
        .call("POST", &url, p.content_type, &p.headers, p.body)
        .await
    {
        Ok((s, _)) if (200..300).contains(&s) => sent.fetch_add(1, Ordering::Relaxed),
        _ => failed.fetch_add(1, Ordering::Relaxed),
    };
}

/// Stock positions whose available stock is below zero (what overselling would leave), read in one
/// consistent snapshot. The full ledger check runs at the end of the day, when nothing moves.
async fn oversold_positions(store: &orderhub_store::Store) -> Option<usize> {
    store.read(|r| r.positions()).await.ok().map(|p| {
        p.iter()
            .filter(|(.., row)| row.level.available() < 0)
            .count()
    })
}

/// Paid orders waiting for stock (`GET /v1/backorders`, every page).
async fn count_backorders(api: &Api) -> Option<usize> {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/backorders?limit=500&cursor={c}"),
            None => "/v1/backorders?limit=500".to_owned(),
        };
        let (200, page) = api.call("GET", &path, serde_json::Value::Null).await.ok()? else {
            return None;
        };
        n += page["backorders"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Some(n),
        }
    }
}

/// Reads the hub's event feed after `after` and counts it; returns the new position.
async fn read_events(api: &Api, mut after: i64, tally: &mut Tally) -> i64 {
    loop {
        let Ok((200, page)) = api
            .call(
                "GET",
                &format!("/v1/events?after={after}&limit=1000"),
                serde_json::Value::Null,
            )
            .await
        else {
            return after;
        };
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            let t = e["type"].as_str().unwrap_or_default().to_owned();
            use orderhub_domain::event_types as e;
            match t.as_str() {
                e::EXCEPTION_RAISED => {
                    let kind = e["payload"]["exception"].as_str().unwrap_or("other");
                    *tally.raised.entry(kind.to_owned()).or_default() += 1;
                }
                e::EXCEPTION_RESOLVED => tally.resolved += 1,
                e::CARRIER_BREAKER_CHANGED => {
                    let p = &e["payload"];
                    if let (Some(c), Some(to)) = (p["carrier"].as_str(), p["to"].as_str()) {
                        tally.breakers.insert(c.to_owned(), to.to_owned());
                    }
                }
                _ => {}
            }
            *tally.by_type.entry(t).or_default() += 1;
        }
        let next = page["next_after"].as_i64().unwrap_or(after);
        if events.is_empty() || next == after {
            return next;
        }
        after = next;
    }
}

/// What the summary line shows beside the event tally.
#[derive(Clone, Copy)]
struct Gauges {
    /// Orders created per second over the last second.
    rate: f64,
    /// Positions below zero; `None` before the first look.
    oversold: Option<usize>,
    backorders: Option<usize>,
    /// The flash sale's (sold, refused, errors) once it is over.
    flash: Option<(u64, u64, u64)>,
    /// Pushes the hub did not accept.
    failed: u64,
}

fn summary(elapsed: Duration, phase: Phase, t: &Tally, g: &Gauges) -> String {
    let Gauges {
        rate,
        oversold,
        backorders,
        flash,
        failed,
    } = *g;
    let s = elapsed.as_secs();
    let breakers: Vec<String> = t
        .breakers
        .iter()
        .filter(|(_, state)| state.as_str() != "closed")
        .map(|(c, state)| format!("{c} {state}"))
        .collect();
    let mut line = format!(
        "[{:02}:{:02} {}] orders {} ({rate:.0}/s) · shipped {} · exceptions {} · backorders {} · breakers {} · oversold {}",
        s / 60,
        s % 60,
        phase.label(),
        t.count(orderhub_domain::event_types::ORDER_CREATED),
        t.count(orderhub_domain::event_types::ORDER_SHIPPED),
        t.open_exceptions(),
        backorders.map_or("…".to_owned(), |n| n.to_string()),
        if breakers.is_empty() {
            "closed".to_owned()
        } else {
            breakers.join(", ")
        },
        match oversold {
            Some(0) => "0".to_owned(),
            Some(n) => format!("{n} POSITIONS BELOW ZERO"),
            None => "…".to_owned(),
        }
    );
    if let Some((sold, refused, _)) = flash {
        line.push_str(&format!(" · flash {sold} sold / {refused} refused"));
    }
    if failed > 0 {
        line.push_str(&format!(" · {failed} pushes failed"));
    }
    line
}

fn report(
    t: &Tally,
    backorders: Option<usize>,
    counts: &[(String, String, u64)],
    flash: Option<(u64, u64, u64)>,
    violations: &[String],
    pushes: u64,
) -> String {
    use orderhub_domain::event_types as ev;
    use std::fmt::Write as _;
    let mut out = String::from("\nthe day in numbers\n");
    let mut by_channel: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for (status, channel, n) in counts {
        *by_channel.entry(channel).or_default() += n;
        *by_status.entry(status).or_default() += n;
    }
    let list = |m: &BTreeMap<&str, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let _ = writeln!(out, "  signed pushes accepted  {pushes}");
    let _ = writeln!(
        out,
        "  on backorder (no stock) {}",
        backorders.map_or("?".to_owned(), |n| n.to_string())
    );
    let _ = writeln!(out, "  orders by channel       {}", list(&by_channel));
    let _ = writeln!(out, "  orders by status        {}", list(&by_status));
    let raised: BTreeMap<&str, u64> = t.raised.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let _ = writeln!(
        out,
        "  exceptions raised       {} (resolved {})",
        if raised.is_empty() {
            "none".to_owned()
        } else {
            list(&raised)
        },
        t.resolved
    );
    let breaker_changes = t.count(orderhub_domain::event_types::CARRIER_BREAKER_CHANGED);
    let _ = writeln!(
        out,
        "  carrier breaker changes {breaker_changes}; waybills {}",
        t.count(orderhub_domain::event_types::WAYBILL_CREATED)
    );
    if let Some((sold, refused, errors)) = flash {
        let _ = writeln!(
            out,
            "  flash sale              {FLASH_BUYERS} buyers for {FLASH_STOCK} units: {sold} sold, {refused} refused, {errors} errors"
        );
    }
    let _ = writeln!(
        out,
        "  operations desk         {} refunds · {} returns received ({} failed QC → quarantine) · {} address edits asked, {} applied after a second key's approval · {} orders merged",
        t.count(ev::AFTER_SALE_REFUNDED),
        t.count(ev::AFTER_SALE_RECEIVED),
        t.count(ev::AFTER_SALE_QC_FAILED),
        t.count(ev::ORDER_EDIT_REQUESTED),
        t.count(ev::ORDER_EDITED),
        t.count(ev::ORDER_MERGED),
    );
    let _ = writeln!(
        out,
        "  inventory check         {}",
        if violations.is_empty() {
            "every invariant holds — oversold 0".to_owned()
        } else {
            format!("{} VIOLATIONS", violations.len())
        }
    );
    out
}

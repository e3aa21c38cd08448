//! Stock push (issue 20): what each listing's shelf should show goes to its channel. The wanted
//! quantity is set in the transaction of every stock movement (`orderhub_core::listings`); this
//! worker takes the listings whose want is not acknowledged yet, calls each channel's stock call
//! (several SKUs of one item at once where the channel takes them) and records what the channel
//! acknowledged: the quantity and the want version it sent.
//!
//! - **Coalescing**: one worker per tenant (the lease `stockpush/<tenant>`), calls one after the
//!   other, so at most one call per listing is in flight; it sends the want as read when the call
//!   is built. A want that moves while the call is out leaves the listing due (its version is
//!   above the one acknowledged), and the next round sends the latest quantity: many changes
//!   during a slow call cost one more call, not one each.
//! - **Failures** back off per listing (1 s doubling, equal jitter, at most [`BACKOFF_MAX`]); a
//!   throttled answer backs off the whole shop; a refused token goes through the renewal path
//!   (`tokens::call`). Stock pushes are **never dead-lettered**: only the latest quantity matters,
//!   so a listing is tried again until it succeeds; its `attempts` and `last_error` show in the
//!   API and `orderhub_listings_push_failing` counts listings whose last push failed.
//! - **Fencing**: a call goes out only before the lease's local deadline (¾ of its TTL after it
//!   was taken or renewed), so a frozen process that lost the lease does not send an old quantity
//!   after the new holder sent the latest.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use orderhub_channels::{ApiError, StockUpdate};
use orderhub_core::ports::ListingRecord;
use orderhub_domain::TenantId;
use orderhub_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The longest a failing listing waits between two pushes.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// The first retry's wait; it doubles with each failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct StockPushConfig {
    /// Listings taken per tenant and round: one read, and at most this many calls before the
    /// lease is looked at again.
    pub batch_max: u32,
    /// How often other processes' changes are looked for (this process's commits wake it).
    pub poll: Duration,
    pub lease_ttl: Duration,
    pub outbound: orderhub_core::outbound::OutboundPolicy,
    /// The drift reconciler, run in the same rounds under the same lease (`reconcile.rs`).
    pub reconcile: crate::reconcile::ReconcileConfig,
}

impl Default for StockPushConfig {
    fn default() -> Self {
        StockPushConfig {
            batch_max: 1_000,
            poll: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(10),
            outbound: orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
            reconcile: crate::reconcile::ReconcileConfig::default(),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    pub calls: u32,
    pub acknowledged: u32,
    pub failed: u32,
    pub throttled: u32,
}

/// The wait after `attempts` failures (attempts ≥ 1): base × 2^(attempts−1), capped, the second
/// half of it random (equal jitter) so a shop's listings do not come back in one burst.
pub fn backoff(attempts: u32) -> Duration {
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    let half = full / 2;
    let r = (uuid::Uuid::new_v4().as_u128() % 1_000) as u32;
    half + half.mul_f64(f64::from(r) / 1_000.0)
}

fn later(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::seconds(300))
}

/// The push worker's state: one HTTP client and, per shop, when a throttled shop may be called
/// again.
pub struct StockPusher {
    store: Store,
    http: orderhub_channels::client::HttpClient,
    cfg: StockPushConfig,
    shop_pause: HashMap<(TenantId, String, String), (Instant, u32)>,
}

impl StockPusher {
    pub fn new(store: Store, cfg: StockPushConfig) -> StockPusher {
        StockPusher {
            http: crate::channel_client(cfg.outbound),
            store,
            cfg,
            shop_pause: HashMap::new(),
        }
    }

    /// One round for `tenant`: every due listing (at most `batch_max`), calls made until
    /// `deadline` (the lease's local deadline).
    pub async fn push_due(
        &mut self,
        tenant: &TenantId,
        deadline: Instant,
    ) -> Result<PushReport, orderhub_core::StoreError> {
        let (t, now, n) = (tenant.clone(), Utc::now(), self.cfg.batch_max);
        let due = self.store.read(move |r| r.listings_due(&t, now, n)).await?;
        let mut report = PushReport::default();
        let mut shops: BTreeMap<(String, String), Vec<ListingRecord>> = BTreeMap::new();
        for l in due {
            shops
                .entry((l.channel.as_str().to_owned(), l.shop_id.as_str().to_owned()))
                .or_default()
                .push(l);
        }
        // Shops are called side by side (each shop's calls one after the other: at most one
        // call per listing in flight, and a shop's rate is its own).
        let mut work = Vec::new();
        for ((channel, shop), listings) in shops {
            let key = (tenant.clone(), channel.clone(), shop.clone());
            if self
                .shop_pause
                .get(&key)
                .is_some_and(|(until, _)| *until > Instant::now())
            {
                continue;
            }
            work.push((key, channel, shop, listings));
        }
        let this = &*self;
        // At most SHOPS_AT_ONCE shops called at a time: a tenant of thousands of shops is not
        // thousands of tasks and connections at once.
        let outcomes: Vec<_> = futures::stream::iter(work.into_iter().map(
            |(key, channel, shop, listings)| async move {
                let mut r = PushReport::default();
                let out = this
                    .push_shop(tenant, &channel, &shop, listings, deadline, &mut r)
                    .await;
                (key, out, r)
            },
        ))
        .buffer_unordered(SHOPS_AT_ONCE)
        .collect()
        .await;
        let mut first_error = None;
        for (key, out, r) in outcomes {
            report.calls += r.calls;
            report.acknowledged += r.acknowledged;
            report.failed += r.failed;
            report.throttled += r.throttled;
            match out {
                Ok(ShopOutcome::Throttled) => {
                    let n = self.shop_pause.get(&key).map_or(1, |(_, n)| n + 1);
                    self.shop_pause
                        .insert(key, (Instant::now() + backoff(n), n));
                }
                Ok(ShopOutcome::Answered) => {
                    self.shop_pause.remove(&key);
                }
                Ok(ShopOutcome::NoAnswer) => {}
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// One shop's due listings, call after call; the acknowledgements are stored together at
    /// the end (one write per shop and round, not one per call).
    async fn push_shop(
        &self,
        tenant: &TenantId,
        channel: &str,
        shop: &str,
        listings: Vec<ListingRecord>,
        deadline: Instant,
        report: &mut PushReport,
    ) -> Result<ShopOutcome, orderhub_core::StoreError> {
        let configured = crate::ConfiguredShop::load(&self.store, tenant, channel, shop).await?;
        let (row, adapter) = match configured.as_deref() {
            Some(crate::ConfiguredShop {
                row,
                adapter: Ok(a),
            }) => (row.clone(), a),
            Some(crate::ConfiguredShop {
                adapter: Err(e), ..
            }) => {
                let e = e.clone();
                self.failed(tenant, channel, &listings, &e, report).await?;
                return Ok(ShopOutcome::NoAnswer);
            }
            None => {
                let e = format!("the {channel} shop {shop} is not configured");
                self.failed(tenant, channel, &listings, &e, report).await?;
                return Ok(ShopOutcome::NoAnswer);
            }
        };
        // Chunks of one item, as large as the channel takes.
        let batch = adapter.stock_batch_max().max(1);
        let mut items: BTreeMap<&str, Vec<&ListingRecord>> = BTreeMap::new();
        for l in &listings {
            items.entry(l.channel_item_id.as_str()).or_default().push(l);
        }
        let chunks: Vec<Vec<&ListingRecord>> = items
            .into_values()
            .flat_map(|v| v.chunks(batch).map(<[_]>::to_vec).collect::<Vec<_>>())
            .collect();
        let mut acked: Vec<&ListingRecord> = Vec::new();
        let mut outcome = ShopOutcome::NoAnswer;
        for (i, chunk) in chunks.iter().enumerate() {
            if Instant::now() >= deadline {
                break;
            }
            let updates: Vec<StockUpdate> = chunk
                .iter()
                .map(|l| StockUpdate {
                    item_id: l.channel_item_id.clone(),
                    sku_id: l.channel_sku_id.clone(),
                    quantity: l.want_qty,
                })
                .collect();
            report.calls += 1;
            let answer = crate::tokens::call(
                &self.store,
                &self.http,
                &row,
                adapter.as_ref(),
                |c| Ok(adapter.stock_request(&updates, c, Utc::now())?),
                |b| adapter.parse_stock_ack(b),
            )
            .await;
            match answer {
                Ok(()) => {
                    outcome = ShopOutcome::Answered;
                    acked.extend(chunk.iter().copied());
                }
                Err(ApiError::Throttled { code }) => {
                    // The whole shop waits: its other listings would be throttled too.
                    report.throttled += 1;
                    self.store_acks(tenant, channel, &acked, report).await?;
                    let rest: Vec<ListingRecord> =
                        chunks[i..].iter().flatten().map(|l| (*l).clone()).collect();
                    let e = format!("throttled by the channel ({code})");
                    count(channel, "throttled", rest.len() as u64);
                    self.failed_quietly(tenant, &rest, &e, report).await?;
                    return Ok(ShopOutcome::Throttled);
                }
                Err(e) => {
                    let owned: Vec<ListingRecord> = chunk.iter().map(|l| (*l).clone()).collect();
                    self.failed(tenant, channel, &owned, &describe(&e), report)
                        .await?;
                }
            }
        }
        self.store_acks(tenant, channel, &acked, report).await?;
        Ok(outcome)
    }

    async fn store_acks(
        &self,
        tenant: &TenantId,
        channel: &str,
        acked: &[&ListingRecord],
        report: &mut PushReport,
    ) -> Result<(), orderhub_core::StoreError> {
        if acked.is_empty() {
            return Ok(());
        }
        let n = self.acknowledged(tenant, acked).await?;
        report.acknowledged += n;
        count(channel, "acknowledged", u64::from(n));
        Ok(())
    }

    /// Stores what the channel acknowledged for each listing of `chunk`: the quantity and the
    /// want version that were sent (a later want stays due).
    async fn acknowledged(
        &self,
        tenant: &TenantId,
        chunk: &[&ListingRecord],
    ) -> Result<u32, orderhub_core::StoreError> {
        let t = tenant.clone();
        let acks: Vec<(uuid::Uuid, i64, i64)> = chunk
            .iter()
            .map(|l| (l.listing_id, l.want_qty, l.want_version))
            .collect();
        let n = acks.len() as u32;
        self.store
            .write_alone(0, move |tx| {
                let now = Utc::now();
                for (id, q, v) in &acks {
                    tx.listing_pushed(&t, *id, *q, *v, now)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| {
                orderhub_core::StoreError::new(orderhub_core::StoreErrorKind::Other, e.to_string())
            })?;
        Ok(n)
    }

    async fn failed(
        &self,
        tenant: &TenantId,
        channel: &str,
        listings: &[ListingRecord],
        error: &str,
        report: &mut PushReport,
    ) -> Result<(), orderhub_core::StoreError> {
        count(channel, "failed", listings.len() as u64);
        self.failed_quietly(tenant, listings, error, report).await
    }

    async fn failed_quietly(
        &self,
        tenant: &TenantId,
        listings: &[ListingRecord],
        error: &str,
        report: &mut PushReport,
    ) -> Result<(), orderhub_core::StoreError> {
        let t = tenant.clone();
        let error: String = error.chars().take(500).collect();
        let rows: Vec<(uuid::Uuid, u32)> = listings
            .iter()
            .map(|l| (l.listing_id, l.attempts + 1))
            .collect();
        report.failed += rows.len() as u32;
        tracing::debug!(tenant = %tenant, listings = rows.len(), error = %error, "A stock push failed; it is tried again later.");
        self.store
            .write_alone(0, move |tx| {
                let now = Utc::now();
                for (id, attempts) in &rows {
                    tx.listing_push_failed(&t, *id, &error, later(now, backoff(*attempts)), now)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| {
                orderhub_core::StoreError::new(orderhub_core::StoreErrorKind::Other, e.to_string())
            })
    }
}

/// How a shop's round ended, for its throttling pause.
enum ShopOutcome {
    /// At least one call answered (the shop's pause is lifted).
    Answered,
    /// Throttled: the shop waits before its next call.
    Throttled,
    /// No call answered (none made, or every one failed otherwise).
    NoAnswer,
}

/// The error as the listing keeps it: no secrets (channel answers carry codes and messages only).
pub(crate) fn describe(e: &ApiError) -> String {
    match e {
        ApiError::Rejected(r) => format!(
            "{}: {} ({})",
            r.rule,
            r.message,
            r.field.as_deref().unwrap_or("")
        ),
        other => other.to_string(),
    }
}

fn count(channel: &str, outcome: &'static str, n: u64) {
    metrics::counter!("orderhub_listing_push_total", "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(n);
}

/// The lease that makes one process the pusher of a tenant.
pub fn lease_name(tenant: &TenantId) -> String {
    format!("stockpush/{tenant}")
}

/// Pushes every tenant's due listings under its lease, woken by this store's commits and every
/// `poll`, until `stop`.
/// Shops of one tenant a push round calls at once.
const SHOPS_AT_ONCE: usize = 16;

pub async fn run(store: Store, cfg: StockPushConfig, mut stop: tokio::sync::watch::Receiver<bool>) {
    let holder = format!("stockpush-{}", uuid::Uuid::new_v4().simple());
    let mut commits = store.commits();
    let mut pusher = StockPusher::new(store.clone(), cfg.clone());
    let mut reconciler =
        crate::reconcile::Reconciler::new(store.clone(), cfg.reconcile.clone(), cfg.outbound);
    let mut failing: HashMap<TenantId, u64> = HashMap::new();
    let mut drift: HashMap<TenantId, Vec<(String, i64)>> = HashMap::new();
    loop {
        // Commits wake the worker, but a busy hub commits hundreds of times a second: one round
        // per ROUND_MIN at most (a stock change still reaches the call within that).
        let round = Instant::now();
        let mut tenants = store
            .read(|r| r.listing_tenants_due(Utc::now(), 1_000))
            .await
            .unwrap_or_default();
        // And tenants with a shelf to read back (the reconciler, in the same lease).
        let checks = store
            .read(|r| r.listing_tenants_check_due(Utc::now(), 1_000))
            .await
            .unwrap_or_default();
        for t in checks {
            if !tenants.contains(&t) {
                tenants.push(t);
            }
        }
        for t in tenants {
            let (name, h, ttl) = (lease_name(&t), holder.clone(), cfg.lease_ttl);
            let taken = Instant::now();
            let held = store
                .write_alone(0, move |tx| {
                    Ok(tx.lease_acquire(&name, &h, Utc::now(), ttl)?)
                })
                .await;
            if !matches!(held, Ok(Some(_))) {
                continue;
            }
            let deadline = taken + cfg.lease_ttl.mul_f64(0.75);
            if let Err(e) = pusher.push_due(&t, deadline).await {
                tracing::warn!(tenant = %t, error = %e, "A stock push round failed; it runs again.");
            }
            match reconciler.reconcile_due(&t, deadline).await {
                Ok(r) if r.judged > 0 || r.failed > 0 => {
                    let t2 = t.clone();
                    if let Ok(units) = store.read(move |r| r.listing_drift_units(&t2)).await {
                        drift.insert(t.clone(), units);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(tenant = %t, error = %e, "A drift reconciliation round failed; it runs again.");
                }
            }
            let t2 = t.clone();
            if let Ok(n) = store.read(move |r| r.listings_failing(&t2)).await {
                failing.insert(t, n);
            }
        }
        metrics::gauge!("orderhub_listings_push_failing").set(failing.values().sum::<u64>() as f64);
        drift_gauge(&drift);
        tokio::select! {
            _ = tokio::time::sleep(cfg.poll) => {}
            _ = commits.changed() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let rest = ROUND_MIN.saturating_sub(round.elapsed());
        if !rest.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(rest) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// `orderhub_listing_drift_units{channel}`: the units by which shelves differ from what their
/// channels last acknowledged, as last read (every channel seen keeps its series, 0 when clean).
fn drift_gauge(drift: &HashMap<TenantId, Vec<(String, i64)>>) {
    let mut per: BTreeMap<&str, i64> = BTreeMap::new();
    for k in orderhub_channels::ChannelKind::ALL {
        per.insert(k.code(), 0);
    }
    for units in drift.values() {
        for (c, u) in units {
            *per.entry(c.as_str()).or_default() += u;
        }
    }
    for (c, u) in per {
        metrics::gauge!("orderhub_listing_drift_units", "channel" => c.to_owned()).set(u as f64);
    }
}

/// The shortest time between two rounds of the worker.
const ROUND_MIN: Duration = Duration::from_millis(100);

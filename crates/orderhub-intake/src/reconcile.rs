//! Drift reconciler (issue 20): each listing's shelf is read back from its channel (the channel's
//! own item or SKU read, `Channel::stock_read_request`) and compared with what the channel last
//! acknowledged; `orderhub_core::listings::record_reading` records the drift and repairs it by
//! making the current want due for the stock push.
//!
//! - **When**: every listing is read every `rules.interval` (10 min by default) — its `check_at`
//!   moves on at each read — and at once when `POST /v1/listings/reconcile` makes it due. A
//!   repair is checked by a read `rules.verify_after` later.
//! - **Serial with the push**: the reconciler runs in the stock-push worker's round, under the
//!   same lease (`stockpush/<tenant>`), so no push of the tenant is in flight while a shelf is
//!   read; a reading older than a push acknowledged since is not judged (`stale`).
//! - **Within quota**: one call reads every SKU of an item where the channel answers whole items
//!   (Taobao, Pinduoduo), one SKU per call elsewhere (JD); at most `reads_per_minute` calls per
//!   shop, and a throttled answer pauses the shop's reads (1 s doubling, ≤ 5 min). What is not
//!   read for these reasons is read again `verify_after` later, nothing concluded.
//! - **No false drift**: a refused, failed or unparsable read records only its error
//!   (`check_error`); a drift is only ever a quantity the channel answered.

use crate::stock_push::backoff;
use chrono::Utc;
use orderhub_channels::{ApiError, StockLevel, StockQuery};
use orderhub_core::listings::{DriftRules, Reading};
use orderhub_core::ports::ListingRecord;
use orderhub_domain::TenantId;
use orderhub_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    pub rules: DriftRules,
    /// Listings taken per tenant and round.
    pub batch_max: u32,
    /// Shelf reads per shop and minute at most (the channel's quota is shared with the order
    /// pull and the stock push).
    pub reads_per_minute: u32,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            rules: DriftRules::default(),
            batch_max: 100,
            reads_per_minute: 60,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Calls made to channels.
    pub reads: u32,
    /// Listings whose shelf was read and judged.
    pub judged: u32,
    /// New drifts found, and repairs scheduled.
    pub found: u32,
    pub repaired: u32,
    /// Listings whose read gave no quantity (refused, failed, not in the answer).
    pub failed: u32,
    /// Listings left for later (throttled, out of budget, past the lease's deadline).
    pub later: u32,
}

/// A shop's read budget: calls in the current minute, and a pause after throttling.
#[derive(Debug, Default)]
struct Budget {
    window: Option<Instant>,
    used: u32,
    paused_until: Option<Instant>,
    throttles: u32,
}

impl Budget {
    fn take(&mut self, per_minute: u32, now: Instant) -> bool {
        if self.paused_until.is_some_and(|p| p > now) {
            return false;
        }
        if self
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(60))
        {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used >= per_minute {
            return false;
        }
        self.used += 1;
        true
    }
}

pub struct Reconciler {
    store: Store,
    http: orderhub_channels::client::HttpClient,
    cfg: ReconcileConfig,
    budgets: HashMap<(TenantId, String, String), Budget>,
}

/// The level of `l`'s SKU in a read's answer: the same SKU id, of the same item (or of no item,
/// where the channel names SKUs only).
fn level_for<'a>(levels: &'a [StockLevel], l: &ListingRecord) -> Option<&'a StockLevel> {
    levels.iter().find(|v| {
        v.sku_id == l.channel_sku_id && (v.item_id.is_empty() || v.item_id == l.channel_item_id)
    })
}

impl Reconciler {
    pub fn new(
        store: Store,
        cfg: ReconcileConfig,
        outbound: orderhub_core::outbound::OutboundPolicy,
    ) -> Reconciler {
        Reconciler {
            http: crate::channel_client(outbound),
            store,
            cfg,
            budgets: HashMap::new(),
        }
    }

    /// One round for `tenant`: every listing due for a read (at most `batch_max`), calls made
    /// until `deadline` (the lease's local deadline).
    pub async fn reconcile_due(
        &mut self,
        tenant: &TenantId,
        deadline: Instant,
    ) -> Result<ReconcileReport, orderhub_core::StoreError> {
        let (t, now, n) = (tenant.clone(), Utc::now(), self.cfg.batch_max);
        let due = self
            .store
            .read(move |r| r.listings_check_due(&t, now, n))
            .await?;
        let mut report = ReconcileReport::default();
        let mut shops: BTreeMap<(String, String), Vec<ListingRecord>> = BTreeMap::new();
        let mut unpushed = Vec::new();
        for l in due {
            if l.pushed_qty.is_none() {
                // Nothing acknowledged yet: nothing to compare a shelf with.
                unpushed.push((l.listing_id, Reading::Skipped));
            } else {
                shops
                    .entry((l.channel.as_str().to_owned(), l.shop_id.as_str().to_owned()))
                    .or_default()
                    .push(l);
            }
        }
        self.record(tenant, unpushed, &mut report).await?;
        for ((channel, shop), listings) in shops {
            self.reconcile_shop(tenant, &channel, &shop, listings, deadline, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn reconcile_shop(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop: &str,
        listings: Vec<ListingRecord>,
        deadline: Instant,
        report: &mut ReconcileReport,
    ) -> Result<(), orderhub_core::StoreError> {
        let configured = crate::ConfiguredShop::load(&self.store, tenant, channel, shop).await?;
        let (row, adapter) = match configured.as_deref() {
            Some(crate::ConfiguredShop {
                row,
                adapter: Ok(a),
            }) => (row.clone(), a),
            other => {
                let e = match other {
                    Some(crate::ConfiguredShop {
                        adapter: Err(e), ..
                    }) => e.clone(),
                    _ => format!("the {channel} shop {shop} is not configured"),
                };
                let all = listings
                    .iter()
                    .map(|l| (l.listing_id, Reading::Failed(e.clone())))
                    .collect();
                return self.record(tenant, all, report).await;
            }
        };
        let batch = adapter.stock_read_batch_max().max(1);
        let mut items: BTreeMap<&str, Vec<&ListingRecord>> = BTreeMap::new();
        for l in &listings {
            items.entry(l.channel_item_id.as_str()).or_default().push(l);
        }
        let chunks: Vec<Vec<&ListingRecord>> = items
            .into_values()
            .flat_map(|v| v.chunks(batch).map(<[_]>::to_vec).collect::<Vec<_>>())
            .collect();
        let key = (tenant.clone(), channel.to_owned(), shop.to_owned());
        for chunk in chunks {
            let now = Instant::now();
            let allowed = now < deadline
                && self
                    .budgets
                    .entry(key.clone())
                    .or_default()
                    .take(self.cfg.reads_per_minute, now);
            if !allowed {
                let later = chunk
                    .iter()
                    .map(|l| (l.listing_id, Reading::Later))
                    .collect();
                self.record(tenant, later, report).await?;
                continue;
            }
            let q = StockQuery {
                item_id: chunk[0].channel_item_id.clone(),
                sku_ids: chunk.iter().map(|l| l.channel_sku_id.clone()).collect(),
            };
            report.reads += 1;
            let answer = crate::tokens::call(
                &self.store,
                &self.http,
                &row,
                adapter.as_ref(),
                |c| Ok(adapter.stock_read_request(&q, c, Utc::now())?),
                |b| adapter.parse_stock_read(b),
            )
            .await;
            let budget = self.budgets.entry(key.clone()).or_default();
            let readings = readings(channel, answer, &chunk, budget);
            self.record(tenant, readings, report).await?;
        }
        Ok(())
    }

    /// Records readings of the tenant's listings in one transaction of their own (listing rows
    /// only, like the push's acknowledgements).
    async fn record(
        &self,
        tenant: &TenantId,
        readings: Vec<(uuid::Uuid, Reading)>,
        report: &mut ReconcileReport,
    ) -> Result<(), orderhub_core::StoreError> {
        if readings.is_empty() {
            return Ok(());
        }
        for (_, r) in &readings {
            match r {
                Reading::Failed(_) => report.failed += 1,
                Reading::Later => report.later += 1,
                _ => {}
            }
        }
        let (t, rules) = (tenant.clone(), self.cfg.rules.clone());
        let outcomes = self
            .store
            .write_alone(0, move |tx| {
                let now = Utc::now();
                let mut out = Vec::new();
                for (id, r) in &readings {
                    let judged = matches!(r, Reading::Seen { .. });
                    if let Some(o) =
                        orderhub_core::listings::record_reading(tx, &t, *id, r, &rules, now)?
                    {
                        out.push((judged && !o.stale, o));
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| {
                orderhub_core::StoreError::new(orderhub_core::StoreErrorKind::Other, e.to_string())
            })?;
        for (judged, o) in outcomes {
            report.judged += u32::from(judged);
            report.found += u32::from(o.found);
            report.repaired += u32::from(o.repaired);
        }
        Ok(())
    }
}

/// What a read's answer says of each listing of `chunk`; a throttled answer pauses the shop.
fn readings(
    channel: &str,
    answer: Result<Vec<StockLevel>, ApiError>,
    chunk: &[&ListingRecord],
    budget: &mut Budget,
) -> Vec<(uuid::Uuid, Reading)> {
    match answer {
        Ok(levels) => {
            budget.throttles = 0;
            count(channel, "read");
            chunk
                .iter()
                .map(|l| {
                    let r = match level_for(&levels, l) {
                        Some(v) => Reading::Seen {
                            quantity: v.quantity,
                            pushed_version: l.pushed_version,
                        },
                        None => {
                            Reading::Failed("the channel's answer does not hold this SKU".into())
                        }
                    };
                    (l.listing_id, r)
                })
                .collect()
        }
        Err(ApiError::Throttled { .. }) => {
            count(channel, "throttled");
            budget.throttles += 1;
            budget.paused_until = Some(Instant::now() + backoff(budget.throttles));
            chunk
                .iter()
                .map(|l| (l.listing_id, Reading::Later))
                .collect()
        }
        Err(e) => {
            count(channel, "failed");
            let e = crate::stock_push::describe(&e);
            chunk
                .iter()
                .map(|l| (l.listing_id, Reading::Failed(e.clone())))
                .collect()
        }
    }
}

fn count(channel: &str, outcome: &'static str) {
    metrics::counter!("orderhub_listing_reads_total", "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(1);
}

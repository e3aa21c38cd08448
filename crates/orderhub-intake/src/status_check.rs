//! Order status reconciliation with the channels (issue 24): every open channel order is read back
//! from its channel now and then (the channel's own order detail call, as the processor makes
//! it) and compared with ours.
//!
//! - **A lost report is applied**: the channel's answer is merged like any report
//!   ([`crate::process::merge`], the decision table of `orderhub_domain::channel_update`): a close,
//!   a refund or a shipment we never heard of changes the order as its push would have.
//! - **A difference left after the merge is raised**: `orderhub_domain::status_check::difference`
//!   (its table: paid or shipped only on the channel, shipped here but not written back there,
//!   closed there) becomes the order's `status_mismatch` exception, the channel's own, with both
//!   views and the remedy in its detail, and a row in `status_differences` (the monthly report
//!   of the channels, shops and carriers that deviate most). The next check that finds none lifts
//!   it. A difference still there at the next check is neither raised nor counted again.
//! - **When**: an order in `orderhub_store::status_checks::CHECKED_STATUSES` is checked once it
//!   has been unchanged for `settle` (a push in flight is not taken for a difference), then every
//!   `interval`; never-checked orders first. A check that failed (the channel refused or did not
//!   answer) is recorded as `failed` and tried again an `interval` later.
//! - **Within quota**: at most `calls_per_minute` detail calls per shop (shared with the pull,
//!   the processor's detail calls and the stock push, so kept low); a throttled answer ends the
//!   shop's round. Calls stop at the round's deadline (the lease's).
//! - Every change is one transaction: the merge is one; the exception, its difference row and the
//!   check's record are the next.

use crate::process::{actor, facts, merge, partition};
use chrono::{DateTime, Utc};
use orderhub_channels::ApiError;
use orderhub_core::intake::Ingested;
use orderhub_core::usecases;
use orderhub_domain::status_check::{self, STATUS_MISMATCH};
use orderhub_domain::{ShopId, Status, TenantId};
use orderhub_store::Store;
use orderhub_store::status_checks::{DifferenceRow, DueCheck};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct StatusCheckConfig {
    /// How often an open order is compared with its channel (at most).
    pub interval: chrono::Duration,
    /// How long an order must have been unchanged before it is compared.
    pub settle: chrono::Duration,
    /// Orders taken per tenant and round.
    pub batch_max: u32,
    /// Detail calls per shop and minute at most.
    pub calls_per_minute: u32,
    /// Between two rounds of the worker.
    pub poll: Duration,
    /// The lease a node holds on a tenant's checks for one round.
    pub lease_ttl: Duration,
}

impl Default for StatusCheckConfig {
    fn default() -> Self {
        StatusCheckConfig {
            interval: chrono::Duration::hours(6),
            settle: chrono::Duration::minutes(30),
            batch_max: 200,
            calls_per_minute: 30,
            poll: Duration::from_secs(60),
            lease_ttl: Duration::from_secs(120),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCheckReport {
    /// Orders read back from their channel.
    pub checked: u32,
    /// Lost reports applied: the channel's answer moved the order.
    pub repaired: u32,
    /// Differences raised (new `status_mismatch` exceptions).
    pub raised: u32,
    /// `status_mismatch` exceptions lifted (the difference is gone).
    pub lifted: u32,
    /// Orders whose channel could not be read (refused, failed, shop not configured).
    pub failed: u32,
    /// Orders left for a later round (quota or deadline).
    pub deferred: u32,
}

/// Calls made per shop in the current minute.
struct Budget {
    since: Instant,
    used: u32,
}

pub struct StatusChecker {
    store: Store,
    http: orderhub_channels::client::HttpClient,
    cfg: StatusCheckConfig,
    budgets: HashMap<(TenantId, String, String), Budget>,
}

/// What one order's check found, as recorded.
#[derive(Clone)]
enum Found {
    Agrees { repaired: bool },
    Differs(status_check::Difference, Status),
    Failed(String),
}

impl StatusChecker {
    pub fn new(
        store: Store,
        cfg: StatusCheckConfig,
        outbound: orderhub_core::outbound::OutboundPolicy,
    ) -> StatusChecker {
        StatusChecker {
            http: crate::channel_client(outbound),
            store,
            cfg,
            budgets: HashMap::new(),
        }
    }

    fn take_call(&mut self, tenant: &TenantId, d: &DueCheck, now: Instant) -> bool {
        let key = (tenant.clone(), d.channel.clone(), d.shop_id.clone());
        let b = self.budgets.entry(key).or_insert(Budget {
            since: now,
            used: 0,
        });
        if now.saturating_duration_since(b.since) >= Duration::from_secs(60) {
            *b = Budget {
                since: now,
                used: 0,
            };
        }
        if b.used >= self.cfg.calls_per_minute {
            return false;
        }
        b.used += 1;
        true
    }

    /// One round for `tenant` as of `now`: the orders due (at most `batch_max`), calls made until
    /// `deadline`.
    pub async fn check_due(
        &mut self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<StatusCheckReport, orderhub_core::StoreError> {
        let (t, n) = (tenant.clone(), self.cfg.batch_max);
        let (settled, checked) = (now - self.cfg.settle, now - self.cfg.interval);
        let due = self
            .store
            .read(move |r| r.status_checks_due(&t, settled, checked, n))
            .await?;
        let mut report = StatusCheckReport::default();
        let mut shops: HashMap<(String, String), Option<Arc<crate::ConfiguredShop>>> =
            HashMap::new();
        let mut throttled: Vec<(String, String)> = Vec::new();
        for d in due {
            let shop_key = (d.channel.clone(), d.shop_id.clone());
            if Instant::now() >= deadline || throttled.contains(&shop_key) {
                report.deferred += 1;
                continue;
            }
            if !shops.contains_key(&shop_key) {
                let s = crate::ConfiguredShop::load(&self.store, tenant, &d.channel, &d.shop_id)
                    .await?;
                shops.insert(shop_key.clone(), s);
            }
            let shop = shops.get(&shop_key).cloned().flatten();
            let callable = shop.as_deref().is_some_and(|s| s.adapter.is_ok());
            // Only a call spends the shop's quota (a shop without an adapter is recorded failed).
            if callable && !self.take_call(tenant, &d, Instant::now()) {
                report.deferred += 1;
                continue;
            }
            let found = match self.read_back(tenant, &d, shop.as_deref()).await {
                Err(ApiError::Throttled { .. }) => {
                    throttled.push(shop_key);
                    report.deferred += 1;
                    continue;
                }
                Err(e) => Found::Failed(crate::stock_push::describe(&e)),
                Ok(found) => found,
            };
            self.record(tenant, &d, found, now, &mut report).await?;
        }
        Ok(report)
    }

    /// Reads the order back from its channel and merges it: what was found.
    async fn read_back(
        &self,
        tenant: &TenantId,
        d: &DueCheck,
        shop: Option<&crate::ConfiguredShop>,
    ) -> Result<Found, ApiError> {
        let Some(crate::ConfiguredShop {
            row,
            adapter: Ok(adapter),
        }) = shop
        else {
            return Ok(Found::Failed(format!(
                "the {} shop {} has no adapter now",
                d.channel, d.shop_id
            )));
        };
        let theirs = crate::tokens::call(
            &self.store,
            &self.http,
            row,
            adapter.as_ref(),
            |c| Ok(adapter.detail_request(&d.external_order_id, c, Utc::now())),
            |body| adapter.parse_detail(body),
        )
        .await?;
        let Ok(shop_id) = ShopId::parse(&d.shop_id) else {
            return Ok(Found::Failed("the shop id is not valid".into()));
        };
        // Our status just before the merge: what the merge itself changed is the repair (the
        // status taken with the due list may have moved on since, by fulfillment).
        let (t, id) = (tenant.clone(), d.order_id);
        let before = match self.store.read(move |r| r.order_get(&t, id)).await {
            Ok(Some(o)) => o.status,
            Ok(None) => return Ok(Found::Failed("the order is gone".into())),
            Err(e) => return Ok(Found::Failed(format!("the store: {e}"))),
        };
        let merged = match merge(&self.store, tenant, &shop_id, &theirs).await {
            Ok(m) => m,
            Err(e) => {
                return Ok(Found::Failed(format!(
                    "the channel's order was refused: {e}"
                )));
            }
        };
        // Repaired: the merge moved the order (a newer version that changed nothing of its
        // status is only the channel's echo of our own write-back).
        let ours = match merged {
            Ingested::Updated(o) | Ingested::Stale(o) | Ingested::Created(o) => o,
        };
        let repaired = ours.status != before;
        let f = facts(&theirs);
        let view = status_check::ChannelView {
            status: f.canonical,
            shipped: f.partly_shipped || f.shipment.is_some(),
            in_after_sales: f
                .refunds
                .iter()
                .any(|r| *r != orderhub_domain::channel_update::RefundState::None)
                || ours.has_exception(orderhub_domain::channel_update::AFTER_SALE)
                || ours.has_exception(orderhub_domain::channel_update::STOP_SHIPMENT),
        };
        Ok(match status_check::difference(ours.status, view) {
            Some(kind) => Found::Differs(kind, f.canonical),
            None => Found::Agrees { repaired },
        })
    }

    /// Writes what the check found: the exception raised or lifted, the difference's row and the
    /// check's record, in one transaction.
    async fn record(
        &self,
        tenant: &TenantId,
        d: &DueCheck,
        found: Found,
        now: DateTime<Utc>,
        report: &mut StatusCheckReport,
    ) -> Result<(), orderhub_core::StoreError> {
        report.checked += 1;
        let a = actor(tenant);
        let (t, id) = (tenant.clone(), d.order_id);
        let part = partition(&d.shop_id, &d.external_order_id);
        let outcome = match &found {
            Found::Agrees { repaired: true } => "repaired".to_owned(),
            Found::Agrees { repaired: false } => "agrees".to_owned(),
            Found::Differs(kind, _) => kind.as_str().to_owned(),
            Found::Failed(_) => "failed".to_owned(),
        };
        let (o2, f2) = (outcome.clone(), found.clone());
        let r = self
            .store
            .write(part, move |tx| {
                let mut change = Change::default();
                let order = tx.order_get(&t, id)?;
                match (&f2, order) {
                    (Found::Differs(kind, theirs), Some(o)) => {
                        let detail = serde_json::json!({
                            "kind": kind.as_str(),
                            "ours": o.status.as_str(),
                            "channel": theirs.as_str(),
                            "remedy": kind.remedy(o.status),
                        });
                        // A difference of another kind than the one raised: the old one is
                        // lifted and the new one raised (and counted), so the exception's detail
                        // says what is wrong now.
                        let before = tx.status_check_outcome(&t, id)?;
                        if o.has_exception(STATUS_MISMATCH)
                            && before.as_deref().is_some_and(|b| b != kind.as_str())
                        {
                            let lifted = serde_json::json!({"kind": before, "now": kind.as_str()});
                            usecases::lift_by_channel(tx, &a, id, STATUS_MISMATCH, lifted, now)?;
                        }
                        if usecases::raise_by_channel(tx, &a, id, STATUS_MISMATCH, detail, now)?
                            .is_some()
                        {
                            change.raised = true;
                            tx.status_difference_insert(&DifferenceRow::of(
                                &o,
                                kind.as_str(),
                                theirs.as_str(),
                                now,
                            ))?;
                        }
                    }
                    (Found::Agrees { .. }, Some(_)) => {
                        let detail = serde_json::json!({"kind": "agrees"});
                        change.lifted =
                            usecases::lift_by_channel(tx, &a, id, STATUS_MISMATCH, detail, now)?
                                .is_some();
                    }
                    _ => {}
                }
                tx.status_check_record(&t, id, now, &o2)?;
                Ok(change)
            })
            .await;
        let change = match r {
            Ok(c) => c,
            Err(orderhub_core::CoreError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(order = %d.order_id, error = %e, "A status check could not be recorded.");
                report.failed += 1;
                return Ok(());
            }
        };
        match &found {
            Found::Agrees { repaired: true } => report.repaired += 1,
            Found::Failed(why) => {
                tracing::info!(order = %d.order_id, channel = %d.channel, why = %why, "A status check could not read the channel's order.");
                report.failed += 1;
            }
            _ => {}
        }
        report.raised += u32::from(change.raised);
        report.lifted += u32::from(change.lifted);
        // A difference is counted under its kind once, when raised; checks that find it again
        // count as `still_differs` (alert rules sum the kinds).
        let label = match &found {
            Found::Differs(..) if !change.raised => "still_differs".to_owned(),
            _ => outcome,
        };
        metrics::counter!("orderhub_status_checks_total", "channel" => d.channel.clone(), "outcome" => label).increment(1);
        Ok(())
    }
}

#[derive(Default)]
struct Change {
    raised: bool,
    lifted: bool,
}

pub fn lease_name(tenant: &TenantId) -> String {
    format!("statuscheck/{tenant}")
}

/// Checks every tenant's due orders under its lease, every `cfg.poll`, until `stop`.
pub async fn run(
    store: Store,
    cfg: StatusCheckConfig,
    outbound: orderhub_core::outbound::OutboundPolicy,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (poll, lease_ttl) = (cfg.poll, cfg.lease_ttl);
    let holder = format!("statuscheck-{}", uuid::Uuid::new_v4().simple());
    let mut checker = StatusChecker::new(store.clone(), cfg, outbound);
    loop {
        let tenants = store
            .read(|r| r.status_check_tenants(10_000))
            .await
            .unwrap_or_default();
        for t in tenants {
            let (name, h) = (lease_name(&t), holder.clone());
            let taken = Instant::now();
            let held = store
                .write_alone(0, move |tx| {
                    Ok(tx.lease_acquire(&name, &h, Utc::now(), lease_ttl)?)
                })
                .await;
            if !matches!(held, Ok(Some(_))) {
                continue;
            }
            let deadline = taken + lease_ttl.mul_f64(0.75);
            if let Err(e) = checker.check_due(&t, Utc::now(), deadline).await {
                tracing::warn!(tenant = %t, error = %e, "A status check round failed; it runs again.");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

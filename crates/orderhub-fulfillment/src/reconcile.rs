//! Status reconciliation with the carriers (issue 24, the carriers' side of the channel check in
//! `orderhub-intake/src/status_check.rs`): every shipped order's tracking is read again now and
//! then, within its carrier's tracking quota, and compared with our status.
//!
//! - **What we missed is applied first**, as the tracking poll would ([`crate::apply_track`]):
//!   a lost push, or a poll schedule that ended, leaves a picked-up or delivered parcel behind;
//!   the check moves the order and records `repaired`.
//! - **A difference left is raised**: `orderhub_domain::carrier_check::difference` (its table:
//!   delivered by the carrier only, a problem scan at the carrier, no record of the waybill long
//!   after we shipped, delivered here and not by the carrier) becomes the order's
//!   `carrier_status_mismatch` exception with both views, the carrier's last words and the remedy
//!   in its detail, and a row in `status_differences` beside the channels' (the monthly report
//!   counts both; its `carriers` list ranks these too). The next check that finds none lifts it;
//!   a difference still there is neither raised nor counted again; one of another kind lifts the
//!   old and raises (and counts) the new.
//! - **When**: orders with a live waybill that are shipped or in transit, delivered within
//!   `delivered_window`, or hold the exception (so it can be lifted), once unchanged for `settle`,
//!   then every `interval`; never-checked first. A check that could not read the carrier is
//!   recorded `failed` and tried an `interval` later.
//! - **Within quota**: each call takes one of the carrier's tracking calls
//!   ([`crate::TenantCarriers::take_track_call`], the budget the tracking poll spends — one budget
//!   per account, never a second one); a spent quota or a throttled answer ends that carrier's
//!   round. One node checks a tenant at a time (lease `carriercheck/<tenant>`).
//! - Every change is one transaction: the apply is the poll's own; the exception, its difference
//!   row and the check's record are the next.

use crate::{Fulfillment, TenantCarriers, system_actor, waybill_of};
use chrono::{DateTime, Utc};
use orderhub_carriers::{CarrierError, CarrierKind, TrackEvent, TrackStatus};
use orderhub_core::usecases::{self, Actor};
use orderhub_domain::carrier_check::{
    self, CARRIER_STATUS_MISMATCH, CarrierDifference, CarrierState,
};
use orderhub_domain::{Order, TenantId};
use orderhub_store::status_checks::DifferenceRow;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct CarrierCheckConfig {
    /// How often a shipped order's tracking is compared with our status (at most).
    pub interval: chrono::Duration,
    /// How long an order must have been unchanged before it is compared.
    pub settle: chrono::Duration,
    /// How long after shipping a carrier with no record of the waybill is a difference.
    pub no_record_after: chrono::Duration,
    /// Delivered orders are compared for this long after they last changed.
    pub delivered_window: chrono::Duration,
    /// Orders taken per tenant and round.
    pub batch_max: u32,
    /// Between two rounds of the worker.
    pub poll: Duration,
    /// The lease a node holds on a tenant's checks for one round.
    pub lease_ttl: Duration,
}

impl Default for CarrierCheckConfig {
    fn default() -> Self {
        CarrierCheckConfig {
            interval: chrono::Duration::hours(6),
            settle: chrono::Duration::minutes(30),
            // Two days: a label printed on Friday is handed over on Monday at the latest.
            no_record_after: chrono::Duration::hours(48),
            // The default window before a delivered order completes by itself.
            delivered_window: chrono::Duration::days(7),
            batch_max: 200,
            poll: Duration::from_secs(60),
            lease_ttl: Duration::from_secs(120),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarrierCheckReport {
    /// Orders whose tracking was read.
    pub checked: u32,
    /// Tracking we missed applied: the order moved.
    pub repaired: u32,
    /// Differences raised (new `carrier_status_mismatch` exceptions).
    pub raised: u32,
    /// Exceptions lifted (the difference is gone).
    pub lifted: u32,
    /// Orders whose carrier could not be read.
    pub failed: u32,
    /// Orders left for a later round (quota, throttling or deadline).
    pub deferred: u32,
}

/// What one order's check found.
#[derive(Debug, Clone)]
enum Found {
    Agrees {
        repaired: bool,
    },
    Differs {
        kind: CarrierDifference,
        state: CarrierState,
        /// The carrier's last event: its status and time ([`last_words`]).
        says: String,
    },
    Failed(String),
}

/// What the carrier's events say, reduced ([`CarrierState`]): delivered if any event says so,
/// else a problem when the last event is one, else moving, label only or nothing.
pub fn state_of(events: &[TrackEvent]) -> CarrierState {
    let has = |s: TrackStatus| events.iter().any(|e| e.status == s);
    if has(TrackStatus::Delivered) {
        return CarrierState::Delivered;
    }
    if events.iter().max_by_key(|e| e.at).map(|e| e.status) == Some(TrackStatus::Exception) {
        return CarrierState::Problem;
    }
    if has(TrackStatus::PickedUp) || has(TrackStatus::InTransit) {
        CarrierState::Moving
    } else if has(TrackStatus::Accepted) {
        CarrierState::LabelOnly
    } else {
        CarrierState::NoRecord
    }
}

/// The carrier's last event as its status and time — never its words: scan descriptions name the
/// signer and the courier (personal data), and the detail goes into the audit and the events.
fn last_words(events: &[TrackEvent]) -> String {
    events
        .iter()
        .max_by_key(|e| e.at)
        .map(|e| {
            format!(
                "{} at {}",
                format!("{:?}", e.status).to_lowercase(),
                e.at.to_rfc3339()
            )
        })
        .unwrap_or_else(|| "no event".into())
}

/// Reads the order's tracking (one call of its carrier's quota), applies what we missed and
/// decides. `Err(kind)`: the carrier's quota is spent or it throttled — the order waits.
async fn check_one(
    f: &Fulfillment,
    cfg: &CarrierCheckConfig,
    tenant: &TenantId,
    carriers: &TenantCarriers,
    order: &Order,
    now: DateTime<Utc>,
) -> Result<Found, CarrierKind> {
    let Some(w) = waybill_of(order) else {
        // The waybill was cancelled: nothing of the carrier's to compare.
        return Ok(Found::Agrees { repaired: false });
    };
    let Some(carrier) = carriers.carriers.get(&w.carrier) else {
        return Ok(Found::Failed(format!(
            "the carrier {} is not configured for this tenant",
            w.carrier.code()
        )));
    };
    if !carriers.take_track_call(w.carrier) {
        return Err(w.carrier);
    }
    metrics::counter!("orderhub_carrier_track_calls_total", "carrier" => w.carrier.code())
        .increment(1);
    let (events, says) = match f.call(carrier.track(&w.tracking_no)).await {
        Ok(events) => {
            let says = last_words(&events);
            (events, says)
        }
        // A refusal says nothing of the parcel (an unknown account or a bad signature refuses
        // every query alike): no conclusion. A carrier without a record of the waybill answers
        // it with no event, which is compared below.
        Err(CarrierError::Rejected { code, .. }) => {
            return Ok(Found::Failed(format!(
                "the carrier refused the query ({code})"
            )));
        }
        Err(CarrierError::Throttled { .. }) => return Err(w.carrier),
        Err(e) => return Ok(Found::Failed(e.to_string())),
    };
    let repaired = match crate::apply_track(&f.store, tenant, order, &events).await {
        Ok(moved) => moved,
        // Refused for good (the move is invalid for this order): the order stays where it is,
        // and what the carrier says is compared with it.
        Err(e) if !e.retryable => false,
        Err(e) => return Ok(Found::Failed(e.message)),
    };
    let ours = match crate::read_order(&f.store, tenant, order.id).await {
        Ok(Some(o)) => o.status,
        Ok(None) => return Ok(Found::Failed("the order is gone".into())),
        Err(e) => return Ok(Found::Failed(e.message)),
    };
    let state = state_of(&events);
    let shipped = order.fulfillment.shipped_at.unwrap_or(order.updated_at);
    let view = carrier_check::CarrierView {
        state,
        overdue: now - shipped > cfg.no_record_after,
    };
    Ok(match carrier_check::difference(ours, view) {
        Some(kind) => Found::Differs { kind, state, says },
        None => Found::Agrees { repaired },
    })
}

/// One round for `tenant` as of `now`: the orders due (at most `batch_max`), calls made until
/// `deadline`.
pub async fn check_due(
    f: &Fulfillment,
    cfg: &CarrierCheckConfig,
    tenant: &TenantId,
    now: DateTime<Utc>,
    deadline: Instant,
) -> Result<CarrierCheckReport, orderhub_core::StoreError> {
    let mut report = CarrierCheckReport::default();
    let carriers = match f.carriers_of(tenant).await {
        Ok(Some(c)) => c,
        // No carriers: its orders move by API and WMS, there is no tracking to compare.
        Ok(None) => return Ok(report),
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e.message, "A carrier check could not read the tenant's carriers.");
            return Ok(report);
        }
    };
    let (t, n) = (tenant.clone(), cfg.batch_max);
    let (settled, checked, delivered) = (
        now - cfg.settle,
        now - cfg.interval,
        now - cfg.delivered_window,
    );
    let due = f
        .store
        .read(move |r| r.carrier_checks_due(&t, settled, checked, delivered, n))
        .await?;
    let mut spent: Vec<CarrierKind> = Vec::new();
    for id in due {
        let order = match crate::read_order(&f.store, tenant, id).await {
            Ok(Some(o)) => o,
            Ok(None) => continue,
            Err(e) => {
                return Err(orderhub_core::StoreError::new(
                    orderhub_core::StoreErrorKind::Other,
                    e.message,
                ));
            }
        };
        let carrier = waybill_of(&order).map(|w| w.carrier);
        if Instant::now() >= deadline || carrier.is_some_and(|c| spent.contains(&c)) {
            report.deferred += 1;
            continue;
        }
        match check_one(f, cfg, tenant, &carriers, &order, now).await {
            Ok(found) => record(f, tenant, &order, found, now, &mut report).await?,
            Err(kind) => {
                spent.push(kind);
                report.deferred += 1;
            }
        }
    }
    Ok(report)
}

#[derive(Default)]
struct Change {
    raised: bool,
    lifted: bool,
}

fn outcome_of(found: &Found) -> &'static str {
    match found {
        Found::Agrees { repaired: true } => "repaired",
        Found::Agrees { repaired: false } => "agrees",
        Found::Differs { kind, .. } => kind.as_str(),
        Found::Failed(_) => "failed",
    }
}

/// Writes what the check found: the exception raised or lifted, the difference's row and the
/// check's record, in one transaction.
async fn record(
    f: &Fulfillment,
    tenant: &TenantId,
    order: &Order,
    found: Found,
    now: DateTime<Utc>,
    report: &mut CarrierCheckReport,
) -> Result<(), orderhub_core::StoreError> {
    report.checked += 1;
    let outcome = outcome_of(&found);
    let actor = system_actor(tenant, "carrier check");
    let (t, id, f2) = (tenant.clone(), order.id, found.clone());
    let r = f
        .store
        .write(0, move |tx| {
            record_tx(tx, &t, id, &actor, &f2, outcome, now)
        })
        .await;
    let change = match r {
        Ok(c) => c,
        Err(orderhub_core::CoreError::Store(e)) => return Err(e),
        Err(e) => {
            tracing::warn!(order = %order.id, error = %e, "A carrier check could not be recorded.");
            report.failed += 1;
            return Ok(());
        }
    };
    match &found {
        Found::Agrees { repaired: true } => report.repaired += 1,
        Found::Failed(why) => {
            tracing::info!(order = %order.id, why = %why, "A carrier check could not read the parcel's tracking.");
            report.failed += 1;
        }
        _ => {}
    }
    report.raised += u32::from(change.raised);
    report.lifted += u32::from(change.lifted);
    let carrier = order
        .fulfillment
        .carrier
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    // A difference is counted under its kind once, when raised; checks that find it again
    // count as `still_differs` (alert rules sum the kinds).
    let label = match &found {
        Found::Differs { .. } if !change.raised => "still_differs",
        _ => outcome,
    };
    metrics::counter!("orderhub_carrier_checks_total", "carrier" => carrier, "outcome" => label)
        .increment(1);
    Ok(())
}

/// The check's transaction: the exception raised (a new kind lifting the old first) or lifted, the
/// difference's row once, the check's record.
fn record_tx(
    tx: &mut dyn orderhub_store::AdminTx,
    t: &TenantId,
    id: orderhub_domain::OrderId,
    actor: &Actor,
    found: &Found,
    outcome: &'static str,
    now: DateTime<Utc>,
) -> Result<Change, orderhub_core::CoreError> {
    let mut change = Change::default();
    let Some(o) = tx.order_get(t, id)? else {
        return Ok(change);
    };
    match found {
        Found::Differs { kind, state, says } => {
            let before = tx.carrier_check_outcome(t, id)?;
            if o.has_exception(CARRIER_STATUS_MISMATCH)
                && before.as_deref().is_some_and(|b| b != kind.as_str())
            {
                let lifted = serde_json::json!({"kind": before, "now": kind.as_str()});
                usecases::resolve_by_watchdog(tx, actor, id, CARRIER_STATUS_MISMATCH, lifted, now)?;
            }
            let detail = serde_json::json!({
                "kind": kind.as_str(),
                "ours": o.status.as_str(),
                "carrier": state.as_str(),
                "carrier_says": says,
                "remedy": kind.remedy(),
            });
            let raised =
                usecases::raise_exception(tx, actor, id, CARRIER_STATUS_MISMATCH, detail, now)?;
            if raised.is_some() {
                change.raised = true;
                tx.status_difference_insert(&DifferenceRow::of(
                    &o,
                    kind.as_str(),
                    state.as_str(),
                    now,
                ))?;
            }
        }
        Found::Agrees { .. } => {
            let detail = serde_json::json!({"kind": "agrees"});
            change.lifted =
                usecases::resolve_by_watchdog(tx, actor, id, CARRIER_STATUS_MISMATCH, detail, now)?
                    .is_some();
        }
        Found::Failed(_) => {}
    }
    tx.carrier_check_record(t, id, now, outcome)?;
    Ok(change)
}

pub fn lease_name(tenant: &TenantId) -> String {
    format!("carriercheck/{tenant}")
}

/// Checks every tenant's due orders under its lease, every `cfg.poll`, until `stop`.
pub async fn run(
    f: Arc<Fulfillment>,
    cfg: CarrierCheckConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let holder = format!("carriercheck-{}", uuid::Uuid::new_v4().simple());
    loop {
        let tenants = f.store.read(|r| r.tenants()).await.unwrap_or_default();
        for t in tenants {
            let (name, h, ttl) = (lease_name(&t), holder.clone(), cfg.lease_ttl);
            let taken = Instant::now();
            let held = f
                .store
                .write_alone(0, move |tx| {
                    Ok(tx.lease_acquire(&name, &h, Utc::now(), ttl)?)
                })
                .await;
            if !matches!(held, Ok(Some(_))) {
                continue;
            }
            let deadline = taken + cfg.lease_ttl.mul_f64(0.75);
            if let Err(e) = check_due(&f, &cfg, &t, f.clock.now(), deadline).await {
                tracing::warn!(tenant = %t, error = %e, "A carrier check round failed; it runs again.");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.poll) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(status: TrackStatus, minute: i64) -> TrackEvent {
        TrackEvent {
            at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute),
            status,
            description: String::new(),
        }
    }

    #[test]
    fn tracking_reduces_to_one_state() {
        use TrackStatus as T;
        assert_eq!(state_of(&[]), CarrierState::NoRecord);
        assert_eq!(state_of(&[ev(T::Accepted, 0)]), CarrierState::LabelOnly);
        assert_eq!(
            state_of(&[ev(T::Accepted, 0), ev(T::PickedUp, 1)]),
            CarrierState::Moving
        );
        assert_eq!(
            state_of(&[ev(T::PickedUp, 1), ev(T::Exception, 2)]),
            CarrierState::Problem
        );
        assert_eq!(
            state_of(&[ev(T::Exception, 1), ev(T::InTransit, 2)]),
            CarrierState::Moving,
            "a problem the parcel moved on from"
        );
        assert_eq!(
            state_of(&[ev(T::Exception, 3), ev(T::Delivered, 2)]),
            CarrierState::Delivered
        );
    }
}

//! Watchdogs: orders stuck between fulfillment steps. Each finding raises an exception on the order
//! (`exception.raised`, a metric, visible on the order) and applies its remedy:
//!
//! | exception | when | remedy |
//! |---|---|---|
//! | `not_released` | paid or allocated, not released after `not_released_after` | run the step again (re-publish) |
//! | `no_waybill` | released without a waybill after `no_waybill_after` | request the waybill again (breakers and fallback apply) |
//! | `no_tracking` | shipped, not picked up after `no_tracking_after` | poll the carrier now (within its quota) |
//! | `waybill_cancel_failed` | stopped with a live waybill, its cancellation failed | try again every `cancel_retry_every` |
//! | `ship_by_at_risk` | still to ship, its ship-by deadline less than `ship_by_risk_lead` away (or past) | none: people act; the shipment resolves it |
//!
//! Stopped orders (`orderhub_domain::lifecycle::STOPS`) wait for an operator and are not moved on;
//! a stopped order's live waybill is cancelled (see `Fulfillment::cancel_waybill`; the watchdog
//! retries what failed). The exception resolves itself (`exception.resolved`) when the order
//! leaves that status. Shipped and in-transit parcels are polled for tracking when their
//! [`crate::schedule`] slot is due and their carrier's quota has room. Tenants without carriers
//! are not scanned: their orders move by API and WMS. One process scans a tenant at a time
//! (lease `watchdog/<tenant>`); after each scan the lease's position is the outbox head read before
//! it began, so the watchdog's lag is how many events came after its last scan.

use crate::{Fulfillment, Step, system_actor};
use chrono::Utc;
use futures::StreamExt;
use orderhub_core::usecases::{self, INTERCEPT_PARCEL, SHIP_BY_AT_RISK, WAYBILL_CANCEL_FAILED};
use orderhub_domain::lifecycle::stopped_by;
use orderhub_domain::{Order, OrderId, Status, TenantId};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Orders of `tenant` in `status` (a failed read is logged; the next scan tries again).
pub(crate) async fn orders_in(f: &Fulfillment, tenant: &TenantId, status: Status) -> Vec<Order> {
    f.store
        .orders_with_status(tenant, status)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "A watchdog could not list orders.");
            Vec::new()
        })
}

pub(crate) fn older_than(f: &Fulfillment, at: chrono::DateTime<Utc>, d: Duration) -> bool {
    f.clock.now() - at > chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

async fn raise(
    f: &Fulfillment,
    tenant: &TenantId,
    o: &Order,
    code: &'static str,
    detail: serde_json::Value,
) {
    if o.has_exception(code) {
        return;
    }
    let actor = system_actor(tenant, "watchdog");
    let id = o.id;
    let now = f.clock.now();
    let r = f
        .store
        .write(0, move |tx| {
            usecases::raise_exception(tx, &actor, id, code, detail.clone(), now)
        })
        .await;
    match r {
        Ok(Some(_)) => {
            metrics::counter!("orderhub_exceptions_raised_total", "code" => code).increment(1);
            tracing::warn!(tenant = %tenant, order_id = %o.id, exception = code, "A watchdog raised an exception.");
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "A watchdog could not raise an exception."),
    }
}

/// Resolves `ship_by_at_risk` on an order whose deadline moved away or was cleared (`due`: the
/// deadline now, or null).
async fn lift_ship_by(f: &Fulfillment, tenant: &TenantId, o: &Order, due: serde_json::Value) {
    if !o.has_exception(SHIP_BY_AT_RISK) {
        return;
    }
    let actor = system_actor(tenant, "watchdog");
    let (id, now) = (o.id, f.clock.now());
    let detail = serde_json::json!({
        "reason": "the ship-by deadline moved beyond the risk lead",
        "resolved_by": "watchdog",
        "promised_ship_by": due,
    });
    let r = f
        .store
        .write(0, move |tx| {
            usecases::resolve_by_watchdog(tx, &actor, id, SHIP_BY_AT_RISK, detail.clone(), now)
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "A watchdog could not resolve an exception.");
    }
}

/// Parcels polled at once by one scan (each call waits on its carrier; the per-carrier quota
/// still bounds the rate).
const TRACK_CONCURRENCY: usize = 16;

/// One shipped order of a scan: a stopped parcel's cancellation retried, its tracking polled when
/// due, `no_tracking` raised (and one poll as its remedy) when nothing moved within the bound.
/// Returns whether it is stuck without tracking.
async fn shipped_one(
    f: &Fulfillment,
    tenant: &TenantId,
    carriers: &crate::carriers::TenantCarriers,
    o: Order,
    track: bool,
) -> bool {
    let cfg = &f.cfg;
    if o.fulfillment.waybill_cancelled_at.is_some() {
        return false;
    }
    if stopped_by(&o).is_some() && !o.has_exception(INTERCEPT_PARCEL) {
        // The event-driven attempt ran when the stop was raised; this retries one that
        // failed, every `cancel_retry_every` (the first sighting only starts the clock).
        let due = f
            .cancel_last_tried(o.id)
            .is_some_and(|t| t.elapsed() >= cfg.cancel_retry_every);
        if due {
            match f.cancel_waybill(tenant, carriers, &o).await {
                Ok(Step::WaybillCancelled) => return false,
                Ok(_) => {}
                Err(e) => {
                    raise(
                        f,
                        tenant,
                        &o,
                        WAYBILL_CANCEL_FAILED,
                        serde_json::json!({"carrier": o.fulfillment.carrier, "error": e.message}),
                    )
                    .await
                }
            }
        }
    }
    let since = o.fulfillment.shipped_at.unwrap_or(o.updated_at);
    let stuck = older_than(f, since, cfg.no_tracking_after);
    let moved = track && f.track_if_due(tenant, carriers, &o).await;
    if !stuck || moved {
        return false;
    }
    if o.has_exception("no_tracking") {
        return true;
    }
    raise(
        f,
        tenant,
        &o,
        "no_tracking",
        serde_json::json!({"carrier": o.fulfillment.carrier, "since": since}),
    )
    .await;
    // The remedy: one poll now, if the carrier's quota has room.
    let kind = o
        .fulfillment
        .carrier
        .as_ref()
        .and_then(|c| orderhub_carriers::CarrierKind::parse(c.as_str()).ok());
    let moved = kind.is_some_and(|k| carriers.take_track_call(k))
        && f.track(tenant, carriers, &o).await.unwrap_or(false);
    !moved
}

/// One scan of one tenant. Returns how many orders were found stuck, per exception. `track`:
/// poll the parcels whose schedule slot is due.
pub async fn scan(f: &Fulfillment, tenant: &TenantId, track: bool) -> [(&'static str, usize); 3] {
    let cfg = &f.cfg;
    let carriers = match f.carriers_of(tenant).await {
        Ok(Some(c)) => c,
        Ok(None) => return [("not_released", 0), ("no_waybill", 0), ("no_tracking", 0)],
        Err(e) => {
            tracing::warn!(error = %e.message, "A watchdog could not read the tenant's carriers.");
            return [("not_released", 0), ("no_waybill", 0), ("no_tracking", 0)];
        }
    };
    let mut not_released = 0;
    // An order found paid is moved on (allocated) at once: it is not counted again when the
    // allocated ones are read.
    let mut seen = HashSet::new();
    for status in [Status::Paid, Status::Allocated] {
        for o in orders_in(f, tenant, status).await {
            if !seen.insert(o.id) {
                continue;
            }
            // On backorder or stopped: waiting on stock or on an operator, not stuck.
            if o.exceptions
                .iter()
                .any(|e| e == orderhub_domain::order::OUT_OF_STOCK)
                || stopped_by(&o).is_some()
            {
                continue;
            }
            let since = o.paid_at.map(|p| p.to_utc()).unwrap_or(o.updated_at);
            if older_than(f, since, cfg.not_released_after) {
                not_released += 1;
                raise(
                    f,
                    tenant,
                    &o,
                    "not_released",
                    serde_json::json!({"status": o.status.as_str(), "since": since}),
                )
                .await;
                let _ = f.step(tenant, o.id).await;
            }
        }
    }
    let mut no_waybill = 0;
    for o in orders_in(f, tenant, Status::Released).await {
        if stopped_by(&o).is_some() {
            continue;
        }
        if older_than(f, o.updated_at, cfg.no_waybill_after) {
            no_waybill += 1;
            raise(
                f,
                tenant,
                &o,
                "no_waybill",
                serde_json::json!({"since": o.updated_at}),
            )
            .await;
            if let Err(e) = f.step(tenant, o.id).await {
                tracing::warn!(order_id = %o.id, error = %e.message, "The waybill was asked for again and not issued.");
            }
        }
    }
    let shipped = orders_in(f, tenant, Status::Shipped).await;
    let mut open: HashSet<OrderId> = shipped.iter().map(|o| o.id).collect();
    // Parcels are polled (and their remedies taken) TRACK_CONCURRENCY at a time: one at a time,
    // a pass over many thousand parcels in transit would take longer than the schedule's slots.
    let no_tracking = futures::stream::iter(shipped)
        .map(|o| shipped_one(f, tenant, &carriers, o, track))
        .buffer_unordered(TRACK_CONCURRENCY)
        .filter(|stuck| std::future::ready(*stuck))
        .count()
        .await;
    if track {
        let moving = orders_in(f, tenant, Status::InTransit).await;
        open.extend(moving.iter().map(|o| o.id));
        let carriers = &carriers;
        futures::stream::iter(moving)
            .for_each_concurrent(TRACK_CONCURRENCY, |o| async move {
                f.track_if_due(tenant, carriers, &o).await;
            })
            .await;
        f.keep_only(&open);
    }
    metrics::gauge!("orderhub_watchdog_stuck_orders", "exception" => "not_released")
        .set(not_released as f64);
    metrics::gauge!("orderhub_watchdog_stuck_orders", "exception" => "no_waybill")
        .set(no_waybill as f64);
    metrics::gauge!("orderhub_watchdog_stuck_orders", "exception" => "no_tracking")
        .set(no_tracking as f64);
    [
        ("not_released", not_released),
        ("no_waybill", no_waybill),
        ("no_tracking", no_tracking),
    ]
}

/// Orders of `tenant` still to ship (paid, held, allocated or released, stopped ones included:
/// a stop does not move a deadline) whose ship-by deadline is less than `ship_by_risk_lead` away
/// or already past: each is raised `ship_by_at_risk` once, with its deadline and the minutes left
/// (negative once missed). Every tenant is scanned, with carriers of its own or not. Returns how
/// many orders are at risk now.
pub async fn deadlines(f: &Fulfillment, tenant: &TenantId) -> usize {
    let now = f.clock.now();
    let lead = chrono::Duration::from_std(f.cfg.ship_by_risk_lead).unwrap_or(chrono::Duration::MAX);
    let mut at_risk = 0;
    for status in [
        Status::Paid,
        Status::OnHold,
        Status::Allocated,
        Status::Released,
    ] {
        for o in orders_in(f, tenant, status).await {
            let Some(due) = o.promised_ship_by else {
                lift_ship_by(f, tenant, &o, serde_json::Value::Null).await;
                continue;
            };
            let left = due.to_utc() - now;
            if left > lead {
                // An edit moved the deadline away: no longer at risk.
                lift_ship_by(f, tenant, &o, serde_json::json!(due)).await;
                continue;
            }
            at_risk += 1;
            raise(
                f,
                tenant,
                &o,
                SHIP_BY_AT_RISK,
                serde_json::json!({
                    "promised_ship_by": due,
                    "minutes_left": left.num_minutes(),
                    "status": o.status.as_str(),
                }),
            )
            .await;
        }
    }
    metrics::gauge!("orderhub_watchdog_stuck_orders", "exception" => SHIP_BY_AT_RISK)
        .set(at_risk as f64);
    at_risk
}

/// Scans every tenant whose watchdog lease this process holds, every `watch_every`, polling the
/// parcels whose tracking is due.
pub async fn run(f: Arc<Fulfillment>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let holder = orderhub_events::lease::holder_id();
    let tick = f.cfg.watch_every;
    // When each tenant's delivered orders were last looked at for completion.
    let mut completed_at: std::collections::HashMap<TenantId, std::time::Instant> =
        Default::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let tenants = match f.store.read(|r| r.tenants()).await {
            Ok(t) => t,
            Err(_) => continue,
        };
        for t in tenants {
            let name = format!("watchdog/{}", t.as_str());
            let ttl = (tick * 3).max(Duration::from_secs(3));
            match orderhub_events::lease::acquire(&f.store, &name, &holder, ttl).await {
                Ok(Some(lease)) => {
                    // A scan sees every order as of at least the events committed before it
                    // began: the lease's position says so, and the consumer lag in /metrics
                    // (`orderhub_outbox_lag_events{consumer="watchdog"}`) falls to 0 with it.
                    let t2 = t.clone();
                    let head = f.store.read(move |r| r.outbox_head(&t2)).await;
                    deadlines(&f, &t).await;
                    scan(&f, &t, true).await;
                    let due = completed_at
                        .get(&t)
                        .is_none_or(|at| at.elapsed() >= f.cfg.completion.every);
                    if due {
                        crate::completion::complete_delivered(&f, &t).await;
                        completed_at.insert(t.clone(), std::time::Instant::now());
                    }
                    if let Ok(head) = head
                        && let Err(e) =
                            orderhub_events::lease::advance(&f.store, &lease, head, ttl).await
                    {
                        tracing::warn!(error = %e, "A watchdog could not store its position.");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "A watchdog could not take its lease."),
            }
        }
    }
}

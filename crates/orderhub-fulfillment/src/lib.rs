//! Fulfillment driven by events (DESIGN §1, §5): `order.paid` → allocate (a [`WarehouseStrategy`])
//! → `order.allocated` → release to the WMS → `order.released` → waybill from the carrier (through
//! the [`CarrierRouter`]: circuit breaker per carrier, fallback chain per route) → `Shipped` only
//! with the carrier's acknowledgement → tracking polled → `InTransit` → `Delivered`.
//!
//! The steps run as an in-process [`Target`] of the event dispatcher, so they get its ordering per
//! order, retries with backoff and dead letters. Watchdogs ([`watchdog`]) find orders stuck
//! between steps, raise an exception on them and apply the remedy; the exception resolves itself
//! when the order moves on.

pub mod strategy;
pub mod watchdog;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use orderhub_carriers::{
    Address, BreakerChange, Carrier, CarrierKind, CarrierRouter, Item, RouteError, TrackStatus,
    WaybillRequest,
};
use orderhub_core::CoreError;
use orderhub_core::ports::EventRecord;
use orderhub_core::usecases::{self, Actor};
use orderhub_domain::ids::CarrierCode;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Order, OrderId, Status, TenantId};
use orderhub_events::{Delivery, Target, TargetError};
use orderhub_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
pub use strategy::{ByStockRegionPriority, WarehouseStrategy};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct FulfillmentConfig {
    /// The carrier asked first; its fallback chain is the router's.
    pub default_carrier: CarrierKind,
    /// Where parcels are sent from (the warehouse's address, as the carrier needs it).
    pub sender: Address,
    /// Watchdog: paid (or allocated) but not released after this long.
    pub not_released_after: Duration,
    /// Watchdog: released without a waybill after this long.
    pub no_waybill_after: Duration,
    /// Watchdog: shipped without tracking movement after this long.
    pub no_tracking_after: Duration,
    pub track_every: Duration,
    pub watch_every: Duration,
}

impl Default for FulfillmentConfig {
    fn default() -> Self {
        FulfillmentConfig {
            default_carrier: CarrierKind::Zto,
            sender: Address {
                name: "orderhub warehouse".into(),
                phone: "4000000000".into(),
                province: "浙江省".into(),
                city: "杭州市".into(),
                district: "余杭区".into(),
                detail: "仓前街道 1 号".into(),
            },
            not_released_after: Duration::from_secs(120),
            no_waybill_after: Duration::from_secs(120),
            no_tracking_after: Duration::from_secs(3600),
            track_every: Duration::from_secs(5),
            watch_every: Duration::from_secs(5),
        }
    }
}

pub struct Fulfillment {
    pub store: Store,
    pub router: Arc<CarrierRouter>,
    pub carriers: HashMap<CarrierKind, Arc<dyn Carrier>>,
    pub strategy: Arc<dyn WarehouseStrategy>,
    pub cfg: FulfillmentConfig,
    id: Uuid,
}

/// The system actor fulfillment moves orders as (see [`Actor::system`]).
pub fn system_actor(tenant: &TenantId, what: &str) -> Actor {
    Actor::system(tenant, what)
}

/// How one step went.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The order moved (to this status).
    Moved(Status),
    /// Nothing to do: the order is elsewhere in its life (moved on, held, on backorder,
    /// stopped, cancelled).
    Nothing,
}

fn store_err(e: CoreError) -> TargetError {
    match e {
        CoreError::Validation(v) => TargetError::permanent(format!("{}: {}", v.field, v.message)),
        CoreError::Forbidden(m) => TargetError::permanent(m),
        other => TargetError::retry(other.to_string()),
    }
}

/// The writer partition of a move that touches the order's stock (as the HTTP API picks it).
fn stock_partition(o: &Order) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ("stock", o.lines.iter().map(|l| &l.sku).min()).hash(&mut h);
    h.finish()
}

impl Fulfillment {
    pub fn new(
        store: Store,
        carriers: Vec<Arc<dyn Carrier>>,
        router: Arc<CarrierRouter>,
        strategy: Arc<dyn WarehouseStrategy>,
        cfg: FulfillmentConfig,
    ) -> Fulfillment {
        Fulfillment {
            store,
            router,
            carriers: carriers.into_iter().map(|c| (c.kind(), c)).collect(),
            strategy,
            cfg,
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"orderhub.fulfillment"),
        }
    }

    async fn order(&self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, TargetError> {
        let t = tenant.clone();
        self.store
            .read(move |r| r.order_get(&t, id))
            .await
            .map_err(|e| TargetError::retry(e.to_string()))
    }

    async fn move_order(
        &self,
        tenant: &TenantId,
        order: &Order,
        cmd: Command,
        extra: Option<EventRecord>,
    ) -> Result<Step, TargetError> {
        let actor = system_actor(tenant, "fulfillment");
        let id = order.id;
        let part = stock_partition(order);
        let r = self
            .store
            .write(part, move |tx| {
                if let Some(e) = &extra {
                    tx.outbox_append(e)?;
                }
                usecases::transition(tx, &actor, id, &cmd, Utc::now())
            })
            .await;
        match r {
            Ok(o) => Ok(Step::Moved(o.status)),
            // Someone (a person, a channel, another node) moved it first: nothing left to do.
            Err(CoreError::NotAllowed { .. }) => Ok(Step::Nothing),
            // A stop was raised in the meantime: the order waits for an operator.
            Err(CoreError::Stopped { .. }) => Ok(Step::Nothing),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Takes the order one step further, from wherever it is. Safe to call again at any time (the
    /// watchdogs do): every step checks the status it starts from, and carriers dedupe waybills on
    /// the order id.
    pub async fn step(&self, tenant: &TenantId, id: OrderId) -> Result<Step, TargetError> {
        let Some(order) = self.order(tenant, id).await? else {
            return Ok(Step::Nothing);
        };
        if order
            .exceptions
            .iter()
            .any(|e| e == orderhub_domain::order::OUT_OF_STOCK)
        {
            return Ok(Step::Nothing);
        }
        // Stopped (stop_shipment, after_sale …): the lifecycle refuses every step towards shipment,
        // and no waybill is asked of a carrier for a parcel that must not leave.
        if orderhub_domain::lifecycle::stopped_by(&order).is_some() {
            return Ok(Step::Nothing);
        }
        match order.status {
            Status::Paid => {
                let t = tenant.clone();
                let reservation = order.reservation_id;
                let (warehouses, reserved) = self
                    .store
                    .read(move |r| {
                        let w = r.warehouses(&t)?;
                        let res = match reservation {
                            Some(rid) => r.reservation(&t, rid)?,
                            None => None,
                        };
                        Ok((w, res))
                    })
                    .await
                    .map_err(|e| TargetError::retry(e.to_string()))?;
                let reserved_wh =
                    reserved.and_then(|r| r.lines.first().map(|l| l.warehouse_id.clone()));
                let Some(wh) = self
                    .strategy
                    .choose(&order, reserved_wh.as_ref(), &warehouses)
                else {
                    return Err(TargetError::retry("no warehouse can ship this order"));
                };
                self.move_order(tenant, &order, Command::Allocate { warehouse_id: wh }, None)
                    .await
            }
            Status::Allocated => {
                self.move_order(tenant, &order, Command::Release, None)
                    .await
            }
            Status::Released => self.waybill_and_ship(tenant, &order).await,
            _ => Ok(Step::Nothing),
        }
    }

    fn waybill_request(&self, order: &Order) -> WaybillRequest {
        let r = &order.receiver;
        WaybillRequest {
            order_id: order.id.as_uuid(),
            tenant_id: order.tenant_id.as_str().to_owned(),
            sender: self.cfg.sender.clone(),
            receiver: Address {
                name: r.name.expose().to_owned(),
                phone: r.phone.expose().to_owned(),
                province: r.province.clone(),
                city: r.city.clone(),
                district: r.district.clone().unwrap_or_default(),
                detail: r.detail.expose().to_owned(),
            },
            parcels: 1,
            weight_kg: rust_decimal::Decimal::ONE,
            items: order
                .lines
                .iter()
                .map(|l| Item {
                    sku: l.sku.to_string(),
                    title: l.title.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            remark: None,
        }
    }

    async fn waybill_and_ship(
        &self,
        tenant: &TenantId,
        order: &Order,
    ) -> Result<Step, TargetError> {
        let req = self.waybill_request(order);
        // The carrier an operator switched the order to, else the tenant's default route; its
        // fallback chain applies either way.
        let first = order
            .fulfillment
            .preferred_carrier
            .as_ref()
            .and_then(|c| orderhub_carriers::CarrierKind::parse(c.as_str()).ok())
            .unwrap_or(self.cfg.default_carrier);
        let routed = match self.router.create_waybill(first, &req).await {
            Ok(r) => r,
            Err(RouteError::Exhausted { attempts }) => {
                let tried: Vec<String> = attempts
                    .iter()
                    .map(|a| format!("{}: {}", a.carrier.code(), a.detail))
                    .collect();
                return Err(TargetError::retry(format!(
                    "no carrier issued a waybill ({})",
                    tried.join("; ")
                )));
            }
            Err(e) => return Err(TargetError::permanent(e.to_string())),
        };
        let w = routed.waybill;
        let carrier = CarrierCode::parse(w.carrier.code())
            .map_err(|e| TargetError::permanent(e.message.to_string()))?;
        let attempts: Vec<serde_json::Value> = routed
            .attempts
            .iter()
            .map(|a| {
                serde_json::json!({
                    "carrier": a.carrier.code(),
                    "outcome": format!("{:?}", a.outcome),
                    "elapsed_ms": a.elapsed.as_millis() as u64,
                })
            })
            .collect();
        let event = EventRecord {
            event_id: Uuid::now_v7(),
            tenant_id: tenant.clone(),
            event_type: orderhub_domain::event_types::WAYBILL_CREATED.into(),
            aggregate_id: order.id.as_uuid(),
            aggregate_version: order.version,
            occurred_at: Utc::now(),
            trace_id: "fulfillment".into(),
            payload: serde_json::json!({
                "order_id": order.id,
                "shop_id": order.shop_id,
                "carrier": w.carrier.code(),
                "tracking_no": w.tracking_no,
                "logistics_no": w.logistics_no,
                "attempts": attempts,
            })
            .to_string(),
        };
        self.move_order(
            tenant,
            order,
            Command::Ship {
                carrier,
                tracking_no: w.tracking_no,
                logistics_no: w.logistics_no,
            },
            Some(event),
        )
        .await
    }

    /// Polls the carrier for a shipped order and moves it: picked up → `InTransit`, delivered →
    /// `Delivered`. Returns whether the carrier reported movement.
    pub async fn track(&self, tenant: &TenantId, order: &Order) -> Result<bool, TargetError> {
        let (Some(code), Some(no)) = (&order.fulfillment.carrier, &order.fulfillment.tracking_no)
        else {
            return Ok(false);
        };
        let Ok(kind) = CarrierKind::parse(code.as_str()) else {
            return Ok(false);
        };
        let Some(carrier) = self.carriers.get(&kind) else {
            return Ok(false);
        };
        let events = carrier
            .track(no)
            .await
            .map_err(|e| TargetError::retry(e.to_string()))?;
        let latest = events.iter().map(|e| e.status).max_by_key(|s| rank(*s));
        let mut moved = false;
        let mut cur = order.clone();
        let picked_up = matches!(
            latest,
            Some(TrackStatus::PickedUp | TrackStatus::InTransit | TrackStatus::Delivered)
        );
        if picked_up
            && cur.status == Status::Shipped
            && let Step::Moved(s) = self.move_order(tenant, &cur, Command::Pickup, None).await?
        {
            moved = true;
            cur.status = s;
        }
        if latest == Some(TrackStatus::Delivered) && cur.status == Status::InTransit {
            let fresh = self.order(tenant, order.id).await?.unwrap_or(cur);
            if let Step::Moved(_) = self
                .move_order(tenant, &fresh, Command::Deliver, None)
                .await?
            {
                moved = true;
            }
        }
        Ok(moved)
    }

    /// Writes a `carrier.breaker_changed` event to every tenant's outbox.
    pub async fn record_breaker_change(&self, c: &BreakerChange) {
        let tenants = match self.store.read(|r| r.tenants()).await {
            Ok(t) => t,
            Err(_) => return,
        };
        let agg = Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("carrier:{}", c.carrier.code()).as_bytes(),
        );
        let payload = serde_json::json!({
            "carrier": c.carrier.code(),
            "from": format!("{:?}", c.from).to_lowercase(),
            "to": format!("{:?}", c.to).to_lowercase(),
            "reason": format!("{:?}", c.reason),
            "at": c.at,
        })
        .to_string();
        let at: DateTime<Utc> = c.at;
        let version = u64::try_from(at.timestamp_micros()).unwrap_or(0);
        let _ = self
            .store
            .write(0, move |tx| {
                for t in &tenants {
                    tx.outbox_append(&EventRecord {
                        event_id: Uuid::now_v7(),
                        tenant_id: t.clone(),
                        event_type: orderhub_domain::event_types::CARRIER_BREAKER_CHANGED.into(),
                        aggregate_id: agg,
                        aggregate_version: version,
                        occurred_at: at,
                        trace_id: "carrier-breaker".into(),
                        payload: payload.clone(),
                    })?;
                }
                Ok(())
            })
            .await;
    }
}

fn rank(s: TrackStatus) -> u8 {
    match s {
        TrackStatus::Accepted => 0,
        TrackStatus::Exception => 1,
        TrackStatus::PickedUp => 2,
        TrackStatus::InTransit => 3,
        TrackStatus::Delivered => 4,
    }
}

impl Target for Fulfillment {
    fn id(&self) -> Uuid {
        self.id
    }

    fn kind(&self) -> &str {
        "fulfillment"
    }

    fn wants(&self, event_type: &str) -> bool {
        use orderhub_domain::event_types as e;
        matches!(
            event_type,
            e::ORDER_PAID
                | e::ORDER_APPROVED
                | e::ORDER_ALLOCATED
                | e::ORDER_RELEASED
                | e::ORDER_STOCK_RESERVED
                | e::ORDER_RETRY_REQUESTED
                | e::ORDER_CARRIER_SWITCHED
        )
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            self.step(&d.tenant, OrderId::from_uuid(d.aggregate_id))
                .await
                .map(|_| ())
        })
    }
}

/// Starts the tracking poller, the watchdogs and the breaker-event writer. They stop with `stop`.
pub fn spawn_background(
    f: Arc<Fulfillment>,
    mut breaker_changes: tokio::sync::mpsc::UnboundedReceiver<BreakerChange>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let f2 = f.clone();
    let mut s2 = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                c = breaker_changes.recv() => match c {
                    Some(c) => {
                        tracing::warn!(carrier = c.carrier.code(), from = ?c.from, to = ?c.to, reason = ?c.reason, "A carrier's circuit breaker changed.");
                        f2.record_breaker_change(&c).await;
                    }
                    None => return,
                },
                _ = s2.changed() => return,
            }
        }
    });
    tokio::spawn(watchdog::run(f, stop));
}

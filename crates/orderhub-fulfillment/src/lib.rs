//! Fulfillment driven by events (DESIGN §1, §5): `order.paid` → allocate (a [`WarehouseStrategy`])
//! → `order.allocated` → release to the WMS → `order.released` → waybill from the carrier (through
//! the tenant's [`CarrierRouter`]: circuit breaker per carrier, fallback chain) → `Shipped` only
//! with the carrier's acknowledgement → tracking polled on a schedule ([`schedule`]) within each
//! carrier's quota → `InTransit` → `Delivered`. A stop raised on an order whose waybill is issued
//! and not yet picked up (`exception.raised`) has the carrier cancel the waybill.
//!
//! Whose carriers: a [`CarrierDirectory`] — each tenant's configured accounts in production
//! ([`carriers::StoredCarriers`]; a tenant with none gets no automatic step at all: its orders
//! move by API and WMS), one shared set for the simulated fleet and tests. Nothing here falls
//! back to a simulator.
//!
//! The steps run as an in-process [`Target`] of the event dispatcher, so they get its ordering per
//! order, retries with backoff and dead letters. Watchdogs ([`watchdog`]) find orders stuck
//! between steps, raise an exception on them and apply the remedy; the exception resolves itself
//! when the order moves on.

pub mod carriers;
pub mod completion;
pub mod escalation;
pub mod parcel;
pub mod reconcile;
pub mod schedule;
pub mod strategy;
pub mod watchdog;

pub use carriers::{CarrierDirectory, SharedCarriers, StoredCarriers, TenantCarriers};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use orderhub_carriers::{
    Address, BreakerChange, Carrier, CarrierError, CarrierKind, CarrierRouter, Item, RouteError,
    TrackStatus, Waybill, WaybillRequest,
};
use orderhub_core::CoreError;
use orderhub_core::ports::{EventRecord, SkuRecord, WarehouseRecord};
use orderhub_core::usecases::{self, Actor, INTERCEPT_PARCEL, WAYBILL_CANCEL_FAILED};
use orderhub_domain::ids::CarrierCode;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Order, OrderId, Status, TenantId};
use orderhub_events::{Delivery, Target, TargetError};
use orderhub_store::Store;
use parking_lot::Mutex;
use rust_decimal::Decimal;
pub use schedule::TrackSchedule;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
pub use strategy::{ByStockRegionPriority, WarehouseStrategy};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct FulfillmentConfig {
    /// The carrier asked first when the carriers are shared (the simulated fleet); a tenant's
    /// configured accounts name their own by priority.
    pub default_carrier: CarrierKind,
    /// Where parcels leave from when the allocated warehouse gives no sender. `None` (the
    /// default): no waybill is asked for until the warehouse's master data says where its
    /// parcels leave from. Only the simulated fleet and tests set one.
    pub fallback_sender: Option<Address>,
    /// Watchdog: paid (or allocated) but not released after this long.
    pub not_released_after: Duration,
    /// Watchdog: released without a waybill after this long.
    pub no_waybill_after: Duration,
    /// Watchdog: shipped (not picked up) after this long.
    pub no_tracking_after: Duration,
    /// Watchdog: an order still to ship is at risk (`ship_by_at_risk`) this long before its
    /// ship-by deadline.
    pub ship_by_risk_lead: Duration,
    /// When parcels are polled for tracking.
    pub track: TrackSchedule,
    /// Tracking calls per minute per carrier when the carriers are shared (a tenant's
    /// configured account says its own).
    pub shared_track_per_minute: u32,
    /// Watchdog: how often a stopped order's waybill cancellation is tried again after it
    /// failed.
    pub cancel_retry_every: Duration,
    /// A tracking or cancellation call that takes longer has failed.
    pub call_timeout: Duration,
    pub watch_every: Duration,
    /// When delivered orders complete by themselves.
    pub completion: completion::Completion,
    /// The carriers' side of status reconciliation ([`reconcile`]); `None` (the default): no
    /// checks.
    pub carrier_check: Option<reconcile::CarrierCheckConfig>,
}

/// How long before its ship-by deadline an order still to ship is raised as at risk.
pub const DEFAULT_SHIP_BY_RISK_LEAD: Duration = Duration::from_secs(4 * 3600);
/// A parcel not picked up within a day is the alert carriers' own consoles raise.
pub const DEFAULT_NO_TRACKING_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Default for FulfillmentConfig {
    fn default() -> Self {
        FulfillmentConfig {
            default_carrier: CarrierKind::Zto,
            fallback_sender: None,
            not_released_after: Duration::from_secs(120),
            no_waybill_after: Duration::from_secs(120),
            no_tracking_after: DEFAULT_NO_TRACKING_AFTER,
            // Four hours: time for a warehouse shift to pick, pack and hand over the parcel.
            ship_by_risk_lead: DEFAULT_SHIP_BY_RISK_LEAD,
            track: TrackSchedule::default(),
            shared_track_per_minute: 60,
            cancel_retry_every: Duration::from_secs(300),
            call_timeout: Duration::from_secs(3),
            watch_every: Duration::from_secs(5),
            completion: completion::Completion::default(),
            carrier_check: None,
        }
    }
}

/// The sender the simulated fleet's waybills carry when a warehouse gives none (`--fulfillment
/// sim` and tests only; never the production default).
pub fn simulated_sender() -> Address {
    Address {
        name: "orderhub warehouse".into(),
        phone: "4000000000".into(),
        province: "浙江省".into(),
        city: "杭州市".into(),
        district: "余杭区".into(),
        detail: "仓前街道 1 号".into(),
    }
}

pub struct Fulfillment {
    pub store: Store,
    pub directory: Arc<dyn CarrierDirectory>,
    pub strategy: Arc<dyn WarehouseStrategy>,
    pub cfg: FulfillmentConfig,
    id: Uuid,
    /// The schedule slot each parcel was last polled in, by this process (open parcels only:
    /// the watchdog forgets orders it no longer sees shipped or in transit).
    polled: Mutex<HashMap<OrderId, u64>>,
    /// When this process last tried (or first saw) the cancellation of a stopped order's waybill.
    cancel_tried: Mutex<HashMap<OrderId, std::time::Instant>>,
    /// Where the watchdogs, exceptions, waybill events and tracking schedule read the time
    /// ([`Fulfillment::with_clock`]; the system clock by default).
    pub clock: Arc<dyn orderhub_core::ports::Clock>,
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
    /// The carrier cancelled the waybill of the (stopped) order.
    WaybillCancelled,
    /// Nothing to do: the order is elsewhere in its life (moved on, held, on backorder,
    /// stopped, cancelled), or its tenant has no carriers.
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

/// The waybill an order holds, when it holds one the carrier has not cancelled.
fn waybill_of(order: &Order) -> Option<Waybill> {
    let f = &order.fulfillment;
    if f.waybill_cancelled_at.is_some() {
        return None;
    }
    Some(Waybill {
        carrier: CarrierKind::parse(f.carrier.as_ref()?.as_str()).ok()?,
        tracking_no: f.tracking_no.clone()?,
        logistics_no: f.logistics_no.clone().unwrap_or_default(),
    })
}

async fn read_order(
    store: &Store,
    tenant: &TenantId,
    id: OrderId,
) -> Result<Option<Order>, TargetError> {
    let t = tenant.clone();
    store
        .read(move |r| r.order_get(&t, id))
        .await
        .map_err(|e| TargetError::retry(e.to_string()))
}

/// Moves the order by `cmd` as fulfillment (order, audit, outbox and `extra` in one transaction).
async fn move_order(
    now: DateTime<Utc>,
    store: &Store,
    tenant: &TenantId,
    order: &Order,
    cmd: Command,
    extra: Option<EventRecord>,
) -> Result<Step, TargetError> {
    match try_move(now, store, tenant, order, cmd, extra).await {
        Ok(o) => Ok(Step::Moved(o.status)),
        // Someone (a person, a channel, another node) moved it first: nothing left to do.
        Err(CoreError::NotAllowed { .. }) => Ok(Step::Nothing),
        // A stop was raised in the meantime: the order waits for an operator.
        Err(CoreError::Stopped { .. }) => Ok(Step::Nothing),
        Err(e) => Err(store_err(e)),
    }
}

async fn try_move(
    now: DateTime<Utc>,
    store: &Store,
    tenant: &TenantId,
    order: &Order,
    cmd: Command,
    extra: Option<EventRecord>,
) -> Result<Order, CoreError> {
    let actor = system_actor(tenant, "fulfillment");
    let id = order.id;
    let part = stock_partition(order);
    store
        .write(part, move |tx| {
            if let Some(e) = &extra {
                tx.outbox_append(e)?;
            }
            usecases::transition(tx, &actor, id, &cmd, now)
        })
        .await
}

/// Writes a `carrier.breaker_changed` event to each of `tenants`' outboxes.
pub async fn record_breaker_change(store: &Store, tenants: &[TenantId], c: &BreakerChange) {
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
    let tenants = tenants.to_vec();
    let _ = store
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

impl Fulfillment {
    /// Fulfillment with one set of carriers for every tenant (the simulated fleet, tests):
    /// `cfg.default_carrier` first, the router's chains after it.
    pub fn new(
        store: Store,
        carriers: Vec<Arc<dyn Carrier>>,
        router: Arc<CarrierRouter>,
        strategy: Arc<dyn WarehouseStrategy>,
        cfg: FulfillmentConfig,
    ) -> Fulfillment {
        let per_minute = cfg.shared_track_per_minute;
        let shared = TenantCarriers::new(router, carriers, cfg.default_carrier, |_| per_minute);
        Fulfillment::with_directory(
            store,
            Arc::new(SharedCarriers(Arc::new(shared))),
            strategy,
            cfg,
        )
    }

    /// Fulfillment with the carriers `directory` names per tenant.
    pub fn with_directory(
        store: Store,
        directory: Arc<dyn CarrierDirectory>,
        strategy: Arc<dyn WarehouseStrategy>,
        cfg: FulfillmentConfig,
    ) -> Fulfillment {
        Fulfillment {
            store,
            directory,
            strategy,
            cfg,
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"orderhub.fulfillment"),
            polled: Mutex::new(HashMap::new()),
            cancel_tried: Mutex::new(HashMap::new()),
            clock: Arc::new(orderhub_core::ports::SystemClock),
        }
    }

    /// The same fulfillment reading the time from `clock` (tests: a `ManualClock`, so a
    /// watchdog's threshold passes when the test moves the clock, not after a sleep).
    pub fn with_clock(mut self, clock: Arc<dyn orderhub_core::ports::Clock>) -> Fulfillment {
        self.clock = clock;
        self
    }

    /// The tenant's carriers; `None`: it has none, and fulfillment takes no step for it.
    pub async fn carriers_of(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<Arc<TenantCarriers>>, TargetError> {
        self.directory
            .for_tenant(tenant)
            .await
            .map_err(TargetError::retry)
    }

    async fn order(&self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, TargetError> {
        read_order(&self.store, tenant, id).await
    }

    async fn move_order(
        &self,
        tenant: &TenantId,
        order: &Order,
        cmd: Command,
        extra: Option<EventRecord>,
    ) -> Result<Step, TargetError> {
        move_order(self.clock.now(), &self.store, tenant, order, cmd, extra).await
    }

    async fn try_move(
        &self,
        tenant: &TenantId,
        order: &Order,
        cmd: Command,
        extra: Option<EventRecord>,
    ) -> Result<Order, CoreError> {
        try_move(self.clock.now(), &self.store, tenant, order, cmd, extra).await
    }

    /// Raises `code` on the order (once: an open one is left as it is).
    async fn raise(
        &self,
        tenant: &TenantId,
        order: &Order,
        code: &'static str,
        detail: serde_json::Value,
    ) -> Result<(), TargetError> {
        if order.has_exception(code) {
            return Ok(());
        }
        let actor = system_actor(tenant, "fulfillment");
        let id = order.id;
        let now = self.clock.now();
        self.store
            .write(stock_partition(order), move |tx| {
                usecases::raise_exception(tx, &actor, id, code, detail.clone(), now)
            })
            .await
            .map_err(store_err)?;
        metrics::counter!("orderhub_exceptions_raised_total", "code" => code).increment(1);
        tracing::warn!(tenant = %tenant, order_id = %order.id, exception = code, "Fulfillment raised an exception.");
        Ok(())
    }

    /// Takes the order one step further, from wherever it is. Safe to call again at any time (the
    /// watchdogs do): every step checks the status it starts from, carriers dedupe waybills on
    /// the order id, and a cancelled waybill is recorded on the order.
    pub async fn step(&self, tenant: &TenantId, id: OrderId) -> Result<Step, TargetError> {
        let Some(carriers) = self.carriers_of(tenant).await? else {
            return Ok(Step::Nothing);
        };
        let Some(order) = self.order(tenant, id).await? else {
            return Ok(Step::Nothing);
        };
        // Stopped (stop_shipment, after_sale …): the lifecycle refuses every step towards shipment,
        // no waybill is asked of a carrier for a parcel that must not leave, and one already issued
        // is cancelled.
        if orderhub_domain::lifecycle::stopped_by(&order).is_some() {
            return self.cancel_waybill(tenant, &carriers, &order).await;
        }
        if order
            .exceptions
            .iter()
            .any(|e| e == orderhub_domain::order::OUT_OF_STOCK)
        {
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
            // A split or merged order ships parcel by parcel, each with the waybill the warehouse
            // reports (`POST /v1/orders/{id}/parcels/{parcel}/ship`): no whole-order waybill.
            Status::Released if !order.parcels.is_empty() => Ok(Step::Nothing),
            Status::Released => self.waybill_and_ship(tenant, &carriers, &order).await,
            _ => Ok(Step::Nothing),
        }
    }

    /// The tenant's warehouses and the SKU records of the order's lines (and of kits'
    /// components), read once.
    async fn master_data(
        &self,
        order: &Order,
    ) -> Result<(Vec<WarehouseRecord>, Skus), TargetError> {
        let t = order.tenant_id.clone();
        let skus: Vec<_> = order.lines.iter().map(|l| l.sku.clone()).collect();
        self.store
            .read(move |r| {
                let w = r.warehouses(&t)?;
                let mut recs = Skus::new();
                for sku in &skus {
                    if recs.contains_key(sku) {
                        continue;
                    }
                    let rec = r.sku(&t, sku)?;
                    for (part, _) in rec.iter().flat_map(|k| k.components.iter().flatten()) {
                        if !recs.contains_key(part) {
                            let p = r.sku(&t, part)?;
                            recs.insert(part.clone(), p);
                        }
                    }
                    recs.insert(sku.clone(), rec);
                }
                Ok((w, recs))
            })
            .await
            .map_err(|e| TargetError::retry(e.to_string()))
    }

    /// The sender of `order`'s waybill: its warehouse's, else the configured fallback (the
    /// simulated fleet only); `Err` (permanent) naming the warehouse without one.
    fn sender(&self, order: &Order, wh: Option<&WarehouseRecord>) -> Result<Address, TargetError> {
        match (
            wh.and_then(|w| w.sender.as_ref()),
            &self.cfg.fallback_sender,
        ) {
            (Some(s), _) => Ok(Address {
                name: s.name.expose().to_owned(),
                phone: s.phone.expose().to_owned(),
                province: s.province.clone(),
                city: s.city.clone(),
                district: s.district.clone(),
                detail: s.detail.expose().to_owned(),
            }),
            (None, Some(fallback)) => Ok(fallback.clone()),
            (None, None) => {
                let name = order
                    .fulfillment
                    .warehouse_id
                    .as_ref()
                    .map_or("(none)".to_owned(), |w| w.to_string());
                Err(TargetError::permanent(format!(
                    "warehouse {name} has no sender address: PUT /v1/warehouses/{name} with its sender"
                )))
            }
        }
    }

    /// What the waybill of `order` declares: the allocated warehouse's sender, the weight from
    /// the SKU master and the parcel count ([`parcel`]). `Err`: a permanent reason no waybill
    /// can be asked for (the warehouse gives no sender).
    pub async fn waybill_request(
        &self,
        order: &Order,
    ) -> Result<(WaybillRequest, parcel::Parcels), TargetError> {
        let (warehouses, records) = self.master_data(order).await?;
        let wh = order
            .fulfillment
            .warehouse_id
            .as_ref()
            .and_then(|id| warehouses.iter().find(|w| &w.warehouse_id == id));
        let sender = self.sender(order, wh)?;
        // What is left to ship of each line: units an approved after-sales case stopped before
        // shipment are neither weighed nor listed on the waybill.
        let lines: Vec<parcel::LineWeight> = order
            .lines
            .iter()
            .filter(|l| order.units_to_ship(l.line_id) > 0)
            .map(|l| parcel::LineWeight {
                quantity: order.units_to_ship(l.line_id),
                unit_kg: unit_kg(&records, &l.sku),
            })
            .collect();
        let facts = parcel::parcels(&lines, wh.and_then(|w| w.parcel_max_kg));
        let r = &order.receiver;
        let req = WaybillRequest {
            order_id: order.id.as_uuid(),
            tenant_id: order.tenant_id.as_str().to_owned(),
            sender,
            receiver: Address {
                name: r.name.expose().to_owned(),
                phone: r.phone.expose().to_owned(),
                province: r.province.clone(),
                city: r.city.clone(),
                district: r.district.clone().unwrap_or_default(),
                detail: r.detail.expose().to_owned(),
            },
            parcels: facts.parcels,
            weight_kg: facts.weight_kg,
            items: order
                .lines
                .iter()
                .filter(|l| order.units_to_ship(l.line_id) > 0)
                .map(|l| Item {
                    sku: l.sku.to_string(),
                    title: l.title.clone(),
                    quantity: order.units_to_ship(l.line_id),
                })
                .collect(),
            remark: None,
        };
        Ok((req, facts))
    }

    async fn waybill_and_ship(
        &self,
        tenant: &TenantId,
        carriers: &TenantCarriers,
        order: &Order,
    ) -> Result<Step, TargetError> {
        let (req, facts) = self.waybill_request(order).await?;
        // The carrier an operator switched the order to, if the tenant has it, else the tenant's
        // first; its fallback chain applies either way.
        let first = order
            .fulfillment
            .preferred_carrier
            .as_ref()
            .and_then(|c| CarrierKind::parse(c.as_str()).ok())
            .filter(|k| carriers.carriers.contains_key(k))
            .unwrap_or(carriers.default_carrier);
        let routed = match carriers.router.create_waybill(first, &req).await {
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
            occurred_at: self.clock.now(),
            trace_id: "fulfillment".into(),
            payload: serde_json::json!({
                "order_id": order.id,
                "shop_id": order.shop_id,
                "carrier": w.carrier.code(),
                "tracking_no": w.tracking_no,
                "logistics_no": w.logistics_no,
                "weight_kg": facts.weight_kg.to_string(),
                "weight_estimated": facts.estimated,
                "parcels": facts.parcels,
                "attempts": attempts,
            })
            .to_string(),
        };
        let cmd = Command::Ship {
            carrier,
            tracking_no: w.tracking_no.clone(),
            logistics_no: w.logistics_no.clone(),
        };
        match self.try_move(tenant, order, cmd, Some(event)).await {
            Ok(o) => Ok(Step::Moved(o.status)),
            Err(CoreError::NotAllowed { .. }) => Ok(Step::Nothing),
            // Stopped while the carrier issued the waybill: the waybill never reaches the order,
            // so it is cancelled now (the carrier frees the order number for a later waybill).
            Err(CoreError::Stopped { .. }) => {
                self.cancel_unrecorded(tenant, carriers, order, &w).await
            }
            Err(e) => Err(store_err(e)),
        }
    }

    /// Cancels a waybill issued for an order that was stopped before it could ship (the waybill
    /// is not on the order). One attempt; if it fails, `waybill_cancel_failed` names the waybill
    /// for a person to cancel.
    async fn cancel_unrecorded(
        &self,
        tenant: &TenantId,
        carriers: &TenantCarriers,
        order: &Order,
        w: &Waybill,
    ) -> Result<Step, TargetError> {
        let outcome = match carriers.carriers.get(&w.carrier) {
            Some(c) => self.call(c.cancel_waybill(w)).await,
            None => Err(CarrierError::Rejected {
                code: "not_configured".into(),
                message: "the carrier is no longer configured".into(),
            }),
        };
        let fresh = self.order(tenant, order.id).await?.unwrap_or(order.clone());
        match outcome {
            Ok(()) => self.record_cancelled(tenant, &fresh, w).await,
            Err(e) => {
                self.raise(
                    tenant,
                    &fresh,
                    WAYBILL_CANCEL_FAILED,
                    serde_json::json!({
                        "carrier": w.carrier.code(), "tracking_no": w.tracking_no,
                        "logistics_no": w.logistics_no, "error": e.to_string(),
                        "note": "issued while the order was being stopped; not on the order: cancel it with the carrier",
                    }),
                )
                .await?;
                Ok(Step::Nothing)
            }
        }
    }

    async fn record_cancelled(
        &self,
        tenant: &TenantId,
        order: &Order,
        w: &Waybill,
    ) -> Result<Step, TargetError> {
        let actor = system_actor(tenant, "fulfillment");
        let (id, tracking) = (order.id, w.tracking_no.clone());
        let carrier = CarrierCode::parse(w.carrier.code())
            .map_err(|e| TargetError::permanent(e.message.to_string()))?;
        let now = self.clock.now();
        self.store
            .write(stock_partition(order), move |tx| {
                usecases::record_waybill_cancelled(tx, &actor, id, &carrier, &tracking, now)
            })
            .await
            .map_err(store_err)?;
        self.cancel_tried.lock().remove(&order.id);
        metrics::counter!("orderhub_waybills_cancelled_total", "carrier" => w.carrier.code())
            .increment(1);
        tracing::info!(tenant = %tenant, order_id = %order.id, carrier = w.carrier.code(), "A stopped order's waybill was cancelled with the carrier.");
        Ok(Step::WaybillCancelled)
    }

    /// One carrier call within the call timeout.
    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, CarrierError>>,
    ) -> Result<T, CarrierError> {
        match tokio::time::timeout(self.cfg.call_timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(CarrierError::Timeout),
        }
    }

    /// A stopped order that holds a waybill the carrier has not picked up: the carrier cancels
    /// it, and the order records it (`waybill.cancelled`). The carrier refusing because it has
    /// the parcel already raises `intercept_parcel` (a person asks the carrier to intercept it);
    /// any other refusal `waybill_cancel_failed`. A failure to reach the carrier is retried (the
    /// dispatcher's backoff, then the watchdog every `cancel_retry_every`). Nothing happens for
    /// an order without a live waybill, or whose parcel is known picked up (in transit or later:
    /// those stops are after-sales, not cancellations).
    pub async fn cancel_waybill(
        &self,
        tenant: &TenantId,
        carriers: &TenantCarriers,
        order: &Order,
    ) -> Result<Step, TargetError> {
        if order.status != Status::Shipped || order.has_exception(INTERCEPT_PARCEL) {
            return Ok(Step::Nothing);
        }
        let Some(w) = waybill_of(order) else {
            return Ok(Step::Nothing);
        };
        self.cancel_tried
            .lock()
            .insert(order.id, std::time::Instant::now());
        let Some(carrier) = carriers.carriers.get(&w.carrier) else {
            self.raise(
                tenant,
                order,
                WAYBILL_CANCEL_FAILED,
                serde_json::json!({"carrier": w.carrier.code(), "tracking_no": w.tracking_no,
                    "error": "the carrier is not configured for this tenant"}),
            )
            .await?;
            return Ok(Step::Nothing);
        };
        match self.call(carrier.cancel_waybill(&w)).await {
            Ok(()) => self.record_cancelled(tenant, order, &w).await,
            Err(CarrierError::Rejected { code, message }) => {
                // Refused: because the carrier has the parcel already? Its tracking says.
                let picked_up = self
                    .call(carrier.track(&w.tracking_no))
                    .await
                    .map(|events| {
                        events.iter().any(|e| {
                            matches!(
                                e.status,
                                TrackStatus::PickedUp
                                    | TrackStatus::InTransit
                                    | TrackStatus::Delivered
                            )
                        })
                    })
                    .unwrap_or(false);
                let detail = serde_json::json!({
                    "carrier": w.carrier.code(), "tracking_no": w.tracking_no,
                    "carrier_code": code, "carrier_message": message,
                });
                let code = if picked_up {
                    INTERCEPT_PARCEL
                } else {
                    WAYBILL_CANCEL_FAILED
                };
                self.raise(tenant, order, code, detail).await?;
                Ok(Step::Nothing)
            }
            Err(e) => Err(TargetError::retry(format!(
                "the carrier did not cancel the waybill: {e}"
            ))),
        }
    }

    /// Polls the carrier for a shipped order and moves it: picked up → `InTransit`, delivered →
    /// `Delivered`. Returns whether the carrier reported movement. Takes no quota: callers do.
    pub async fn track(
        &self,
        tenant: &TenantId,
        carriers: &TenantCarriers,
        order: &Order,
    ) -> Result<bool, TargetError> {
        let Some(w) = waybill_of(order) else {
            return Ok(false);
        };
        let Some(carrier) = carriers.carriers.get(&w.carrier) else {
            return Ok(false);
        };
        metrics::counter!("orderhub_carrier_track_calls_total", "carrier" => w.carrier.code())
            .increment(1);
        let events = self
            .call(carrier.track(&w.tracking_no))
            .await
            .map_err(|e| TargetError::retry(e.to_string()))?;
        apply_track(&self.store, tenant, order, &events).await
    }

    /// Polls the parcel if its schedule slot is due and its carrier's quota has room; records
    /// the slot. Returns whether the carrier reported movement (`false` when not polled).
    pub async fn track_if_due(
        &self,
        tenant: &TenantId,
        carriers: &TenantCarriers,
        order: &Order,
    ) -> bool {
        let Some(w) = waybill_of(order) else {
            return false;
        };
        let Some(shipped) = order.fulfillment.shipped_at else {
            return false;
        };
        let age = (self.clock.now() - shipped).to_std().unwrap_or_default();
        let last = self.polled.lock().get(&order.id).copied();
        if !self.cfg.track.due(age, last) || !carriers.take_track_call(w.carrier) {
            return false;
        }
        if let Some(slot) = self.cfg.track.slot(age) {
            self.polled.lock().insert(order.id, slot);
        }
        match self.track(tenant, carriers, order).await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!(order_id = %order.id, carrier = w.carrier.code(), error = %e.message, "A tracking poll failed; the next slot polls again.");
                false
            }
        }
    }

    /// Forgets per-parcel state of orders no longer open (what the watchdog saw last scan).
    pub(crate) fn keep_only(&self, open: &std::collections::HashSet<OrderId>) {
        self.polled.lock().retain(|id, _| open.contains(id));
        self.cancel_tried.lock().retain(|id, _| open.contains(id));
    }

    /// When this process last tried (or first saw) the cancellation of `id`'s waybill; records
    /// now when it never did.
    pub(crate) fn cancel_last_tried(&self, id: OrderId) -> Option<std::time::Instant> {
        let mut m = self.cancel_tried.lock();
        match m.get(&id) {
            Some(t) => Some(*t),
            None => {
                m.insert(id, std::time::Instant::now());
                None
            }
        }
    }
}

/// SKU records by SKU (`None`: not in the master).
type Skus = HashMap<orderhub_domain::Sku, Option<SkuRecord>>;

/// One unit's weight: the SKU's own, else (a kit) its components' when each is known.
fn unit_kg(records: &Skus, sku: &orderhub_domain::Sku) -> Option<Decimal> {
    let rec = records.get(sku)?.as_ref()?;
    rec.weight_kg.or_else(|| {
        let parts: Vec<(u32, Option<Decimal>)> = rec
            .components
            .as_ref()?
            .iter()
            .map(|(p, n)| (*n, records.get(p).and_then(|r| r.as_ref()?.weight_kg)))
            .collect();
        parcel::kit_unit_kg(&parts)
    })
}

/// Moves a shipped order by what its carrier reported (a poll's answer or a push): picked
/// up → `InTransit`, delivered → `Delivered`, each in its own store transaction with audit
/// and outbox. Idempotent: events the order is already past move nothing. Returns whether
/// the order moved.
pub async fn apply_track(
    store: &Store,
    tenant: &TenantId,
    order: &Order,
    events: &[orderhub_carriers::TrackEvent],
) -> Result<bool, TargetError> {
    let latest = events.iter().map(|e| e.status).max_by_key(|s| rank(*s));
    let mut moved = false;
    let mut cur = order.clone();
    let picked_up = matches!(
        latest,
        Some(TrackStatus::PickedUp | TrackStatus::InTransit | TrackStatus::Delivered)
    );
    if picked_up
        && cur.status == Status::Shipped
        && let Step::Moved(s) =
            move_order(Utc::now(), store, tenant, &cur, Command::Pickup, None).await?
    {
        moved = true;
        cur.status = s;
    }
    if latest == Some(TrackStatus::Delivered) && cur.status == Status::InTransit {
        let fresh = read_order(store, tenant, order.id).await?.unwrap_or(cur);
        if let Step::Moved(_) =
            move_order(Utc::now(), store, tenant, &fresh, Command::Deliver, None).await?
        {
            moved = true;
        }
    }
    Ok(moved)
}

/// Applies a carrier's verified tracking push: each tracking number's events to the order
/// holding that waybill with that carrier, through [`apply_track`] (the path
/// polling takes). Tracking numbers no order holds (or another carrier's) are counted and
/// ignored, so the carrier is acknowledged rather than pushing again forever.
pub async fn apply_push(
    store: &Store,
    tenant: &TenantId,
    carrier: CarrierKind,
    events: Vec<(String, orderhub_carriers::TrackEvent)>,
) -> Result<PushApplied, TargetError> {
    let mut by_no: std::collections::BTreeMap<String, Vec<orderhub_carriers::TrackEvent>> =
        Default::default();
    for (no, e) in events {
        by_no.entry(no).or_default().push(e);
    }
    let mut out = PushApplied::default();
    for (no, evs) in by_no {
        let t = tenant.clone();
        let id = store
            .read(move |r| orderhub_store::CarrierRead::order_by_tracking(r, &t, &no))
            .await
            .map_err(|e| TargetError::retry(e.to_string()))?;
        let order = match id {
            Some(id) => read_order(store, tenant, id).await?,
            None => None,
        };
        let Some(order) = order.filter(|o| waybill_of(o).is_some_and(|w| w.carrier == carrier))
        else {
            out.unknown += 1;
            continue;
        };
        out.known += 1;
        if apply_track(store, tenant, &order, &evs).await? {
            out.moved += 1;
        }
    }
    Ok(out)
}

/// What a tracking push did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushApplied {
    /// Tracking numbers that are a waybill of this carrier on one of the tenant's orders.
    pub known: u32,
    /// Of those, the orders that moved (a repeated push moves none).
    pub moved: u32,
    /// Tracking numbers no order of the tenant holds with this carrier: acknowledged, ignored.
    pub unknown: u32,
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
                // An edit may have reserved a backordered order's new goods, or moved an
                // allocation: the next step is taken at once (steps are idempotent).
                | e::ORDER_EDITED
                | e::EXCEPTION_RAISED
                | e::CARRIER_CONFIGURED
                | e::CARRIER_REMOVED
        )
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        use orderhub_domain::event_types as e;
        Box::pin(async move {
            match d.event_type.as_str() {
                e::CARRIER_CONFIGURED | e::CARRIER_REMOVED => {
                    self.directory.forget(&d.tenant);
                    Ok(())
                }
                // A stop on an order with a waybill: its cancellation. Other exceptions are the
                // watchdogs' (which take their remedy themselves) or wait for stock or a person.
                e::EXCEPTION_RAISED => {
                    let id = OrderId::from_uuid(d.aggregate_id);
                    let Some(carriers) = self.carriers_of(&d.tenant).await? else {
                        return Ok(());
                    };
                    let Some(order) = self.order(&d.tenant, id).await? else {
                        return Ok(());
                    };
                    if orderhub_domain::lifecycle::stopped_by(&order).is_some() {
                        self.cancel_waybill(&d.tenant, &carriers, &order).await?;
                    }
                    Ok(())
                }
                _ => self
                    .step(&d.tenant, OrderId::from_uuid(d.aggregate_id))
                    .await
                    .map(|_| ()),
            }
        })
    }
}

/// Starts the watchdogs (which poll tracking on its schedule), the carrier checks when configured
/// ([`reconcile`]) and the writer of breaker changes of the shared carriers (to every tenant).
/// They stop with `stop`.
pub fn spawn_background(
    f: Arc<Fulfillment>,
    mut breaker_changes: tokio::sync::mpsc::UnboundedReceiver<BreakerChange>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let f2 = f.clone();
    let mut s2 = stop.clone();
    let breakers = tokio::spawn(async move {
        loop {
            tokio::select! {
                c = breaker_changes.recv() => match c {
                    Some(c) => {
                        tracing::warn!(carrier = c.carrier.code(), from = ?c.from, to = ?c.to, reason = ?c.reason, "A carrier's circuit breaker changed.");
                        let tenants = f2.store.read(|r| r.tenants()).await.unwrap_or_default();
                        record_breaker_change(&f2.store, &tenants, &c).await;
                    }
                    None => return,
                },
                _ = s2.changed() => return,
            }
        }
    });
    let mut tasks = vec![breakers];
    if let Some(cfg) = f.cfg.carrier_check.clone() {
        tasks.push(tokio::spawn(reconcile::run(f.clone(), cfg, stop.clone())));
    }
    tasks.push(tokio::spawn(watchdog::run(f, stop)));
    tasks
}

//! The ports use cases run over. Backends implement them; use cases never see SQL.

use chrono::{DateTime, Utc};
use orderhub_domain::Sku;
use orderhub_domain::ids::{Channel, WarehouseId};
use orderhub_domain::inventory::{AllocationPolicy, DeductionMode, ReservationState, StockLevel};
use orderhub_domain::lifecycle::Policy;
use orderhub_domain::{ExternalOrderId, Order, OrderId, ShopId, Status, TenantId};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// A unique constraint refused the write.
    UniqueViolation,
    /// Another transaction got in the way (serialization failure, deadlock, busy): retry the whole
    /// transaction.
    Conflict,
    /// The database cannot be reached or refused the connection.
    Unavailable,
    /// Stored data could not be read back (a document or ciphertext that does not decode).
    Corrupt,
    /// The store's queue for this kind of work (writes or reads) is full: the work was refused
    /// before it started, nothing of it was written. Try again shortly (HTTP: 503 with
    /// `Retry-After`); it says nothing about the data.
    Busy,
    Other,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("store error ({kind:?}): {message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn is_unique_violation(&self) -> bool {
        self.kind == StoreErrorKind::UniqueViolation
    }
    pub fn is_retryable(&self) -> bool {
        self.kind == StoreErrorKind::Conflict
    }
    /// Refused because the store's queue was full ([`StoreErrorKind::Busy`]): try again later.
    pub fn is_busy(&self) -> bool {
        self.kind == StoreErrorKind::Busy
    }
}

/// One step of one order's history: who did what, when, from which state to which.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub audit_id: Uuid,
    pub tenant_id: TenantId,
    pub order_id: OrderId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub key_id: String,
    pub request_id: String,
    pub action: String,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub from_version: u64,
    pub to_version: u64,
    pub detail: serde_json::Value,
}

/// An event as it sits in the outbox. `seq` is given by the store at commit, in commit order per
/// tenant, so a reader that follows `seq` never skips a row committed late.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub event_id: Uuid,
    pub tenant_id: TenantId,
    pub event_type: String,
    /// The order, reservation or stock position the event is about.
    pub aggregate_id: Uuid,
    pub aggregate_version: u64,
    pub occurred_at: DateTime<Utc>,
    /// The request id (and later the W3C trace context) of the change that raised it.
    pub trace_id: String,
    /// The payload as JSON text, serialized once when the event is raised.
    pub payload: String,
}

/// A stored first response to an idempotent request.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub key: String,
    pub request_hash: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// One open write transaction with every table a change needs. A backend commits it once; until
/// then nothing is visible to anyone else. Reads here see this transaction's own writes and lock
/// what they read for update where the backend has row locks.
pub trait Tx:
    InventoryTx
    + ListingTx
    + AfterSaleTx
    + crate::edits::EditTx
    + crate::workflow::WorkflowTx
    + crate::combine::CombineTx
    + crate::rules::RuleTx
    + crate::quality::QualityTx
    + crate::health::HealthTx
    + crate::customers::CustomerTx
    + crate::waves::WaveTx
{
    fn order_get(&mut self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, StoreError>;
    fn order_by_external(
        &mut self,
        tenant: &TenantId,
        shop: &ShopId,
        external: &ExternalOrderId,
    ) -> Result<Option<Order>, StoreError>;
    /// Inserts a new order. `Ok(false)`: (tenant, shop, external id) exists already; nothing written.
    fn order_insert(&mut self, order: &Order) -> Result<bool, StoreError>;
    /// Writes `order` over the stored row whose version is `order.version - 1`; any other stored
    /// version is a `Conflict`.
    fn order_update(&mut self, order: &Order) -> Result<(), StoreError>;
    fn audit_append(&mut self, entry: &AuditEntry) -> Result<(), StoreError>;
    fn outbox_append(&mut self, event: &EventRecord) -> Result<(), StoreError>;
    fn idempotency_get(
        &mut self,
        tenant: &TenantId,
        key_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Inserts a new record; a record with that key exists already → `UniqueViolation`.
    fn idempotency_put(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError>;
    /// Stores the response on a record put earlier in this transaction.
    fn idempotency_complete(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError>;
    fn tenant_policy(&mut self, tenant: &TenantId) -> Result<Policy, StoreError>;
}

/// A SKU of the master: a kit lists its components and holds no stock of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SkuRecord {
    pub sku: Sku,
    pub title: String,
    pub components: Option<Vec<(Sku, u32)>>,
    /// The weight of one unit as shipped, in kilograms (what a waybill declares); `None`: not
    /// known (see `orderhub-fulfillment`'s `parcel` for what a waybill counts then).
    pub weight_kg: Option<rust_decimal::Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WarehouseRecord {
    pub warehouse_id: WarehouseId,
    pub name: String,
    /// Lower ships first.
    pub priority: u32,
    /// Provinces (or region codes) it ships to; empty for everywhere.
    pub regions: Vec<String>,
    /// Where its parcels leave from, as carriers print it on the label; `None`: not given (no
    /// waybill is asked for an order allocated here until it is).
    pub sender: Option<SenderAddress>,
    /// The heaviest parcel it packs, in kilograms: an order heavier than this leaves in several
    /// parcels. `None`: one parcel per order.
    pub parcel_max_kg: Option<rust_decimal::Decimal>,
}

/// A warehouse's sender on waybills. Contact name, phone and street are personal-ish data: the
/// store keeps the whole address encrypted, and `Personal` masks them in `Debug`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SenderAddress {
    pub name: orderhub_domain::Personal,
    pub phone: orderhub_domain::Personal,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: orderhub_domain::Personal,
}

/// One ledger row: the movement on one (sku, warehouse) and the balance after it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub tenant_id: TenantId,
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    /// receipt, adjustment, reserve, release, consume, return
    pub movement: &'static str,
    /// Signed change of on-hand (receipt, adjustment, consume, return) or of reserved (reserve,
    /// release).
    pub quantity: i64,
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub after: StockLevel,
    pub at: DateTime<Utc>,
}

/// A stock position with the version that grows on every change (its events carry it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StockRow {
    pub level: StockLevel,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReservedLine {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReservationRecord {
    pub tenant_id: TenantId,
    pub reservation_id: Uuid,
    /// The order id or the caller's checkout reference.
    pub reference: String,
    pub state: ReservationState,
    pub mode: DeductionMode,
    pub lines: Vec<ReservedLine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How one channel lists stock from the shared pool.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelPolicy {
    pub channel: Channel,
    pub allocation: AllocationPolicy,
    /// Units kept back from the channel's listing.
    pub safety_stock: i64,
    /// At or below this many units available in the pool, the channel is closed (lists 0).
    /// Low-priority channels get higher thresholds, so they close first.
    pub close_below: i64,
}

/// Inventory reads and writes inside the same transaction as everything else.
pub trait InventoryTx {
    fn sku_get(&mut self, tenant: &TenantId, sku: &Sku) -> Result<Option<SkuRecord>, StoreError>;
    fn sku_put(
        &mut self,
        tenant: &TenantId,
        rec: &SkuRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    fn warehouse_put(
        &mut self,
        tenant: &TenantId,
        rec: &WarehouseRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    fn warehouses(&mut self, tenant: &TenantId) -> Result<Vec<WarehouseRecord>, StoreError>;
    /// The position, locked for update where the backend has row locks.
    fn stock_get(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: &WarehouseId,
    ) -> Result<Option<StockRow>, StoreError>;
    fn stock_put(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: &WarehouseId,
        row: StockRow,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    fn ledger_append(&mut self, row: &LedgerRow) -> Result<(), StoreError>;
    /// The reservation, locked for update where the backend has row locks.
    fn reservation_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ReservationRecord>, StoreError>;
    fn reservation_put(&mut self, rec: &ReservationRecord) -> Result<(), StoreError>;
    /// Held reservations whose expiry is at or before `now`, oldest first.
    fn reservations_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Uuid)>, StoreError>;
    /// Puts a paid order on backorder for the SKUs it is short of.
    fn backorder_add(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        paid_at: DateTime<Utc>,
        skus: &[Sku],
    ) -> Result<(), StoreError>;
    fn backorder_remove(&mut self, tenant: &TenantId, order: OrderId) -> Result<(), StoreError>;
    /// The as-of time of the last snapshot applied to the warehouse, locked for update.
    fn snapshot_watermark(
        &mut self,
        tenant: &TenantId,
        wh: &WarehouseId,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn snapshot_watermark_put(
        &mut self,
        tenant: &TenantId,
        wh: &WarehouseId,
        as_of: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Every position of the SKU (all warehouses), not locked: for pool figures such as channel
    /// thresholds.
    fn stock_all(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<(WarehouseId, StockRow)>, StoreError>;
    fn channel_policies(&mut self, tenant: &TenantId) -> Result<Vec<ChannelPolicy>, StoreError>;
    fn channel_policy_put(
        &mut self,
        tenant: &TenantId,
        p: &ChannelPolicy,
    ) -> Result<(), StoreError>;
    /// The channels currently closed for the SKU.
    fn closed_channels(&mut self, tenant: &TenantId, sku: &Sku)
    -> Result<Vec<Channel>, StoreError>;
    fn channel_listing_put(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        channel: &Channel,
        closed: bool,
    ) -> Result<(), StoreError>;
    /// Orders waiting for `sku`, in payment order.
    fn backorders_for_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError>;
}

/// A link between our SKU (or kit) and one channel item (and SKU of it) in one shop, with what its
/// shelf should show (`want_*`, set in the transaction of every stock movement) and what the channel
/// last acknowledged (`pushed_*`, set by the stock-push worker).
#[derive(Debug, Clone, PartialEq)]
pub struct ListingRecord {
    pub tenant_id: TenantId,
    pub listing_id: Uuid,
    pub channel: Channel,
    pub shop_id: ShopId,
    /// Our SKU or kit.
    pub sku: Sku,
    pub channel_item_id: String,
    /// Empty for an item without SKUs of its own.
    pub channel_sku_id: String,
    /// A paused listing is neither recomputed nor pushed.
    pub paused: bool,
    /// Shown instead of the computed quantity (a seller's own figure).
    pub fixed_quantity: Option<i64>,
    pub want_qty: i64,
    /// Grows each time `want_qty` changes.
    pub want_version: i64,
    /// What the channel last acknowledged, and the `want_version` it was sent for.
    pub pushed_qty: Option<i64>,
    pub pushed_version: i64,
    pub pushed_at: Option<DateTime<Utc>>,
    /// Failed pushes since the last success.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the drift reconciler last read back from the shelf, and the drift it found.
    pub drift: ListingDrift,
}

/// A listing's shelf as the drift reconciler read it back (`core::listings::record_reading`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListingDrift {
    /// What the channel's shelf showed at the last read, and when.
    pub seen_qty: Option<i64>,
    pub seen_at: Option<DateTime<Utc>>,
    /// The shelf minus what the channel last acknowledged, at the last read that could compare
    /// (0: no drift). Kept while a repair is on its way, until a read shows the shelf right.
    pub units: i64,
    /// When this drift was first seen (`None`: no drift).
    pub first_seen_at: Option<DateTime<Utc>>,
    /// The drift came back after an earlier one was repaired (the seller edits stock in the
    /// channel's back office).
    pub recurring: bool,
    /// Drifts found on this listing so far, and when the last repair was scheduled.
    pub count: u32,
    pub repaired_at: Option<DateTime<Utc>>,
    /// When the reconciler reads this shelf next.
    pub check_at: DateTime<Utc>,
    /// Why the last read gave no quantity (the channel refused or has no read call; the SKU is
    /// not in its answer); `None` after a read that did.
    pub check_error: Option<String>,
}

/// Which listings an on-demand reconciliation reads (within the key's shops).
#[derive(Debug, Clone, Default)]
pub struct CheckScope {
    pub listing_id: Option<Uuid>,
    pub channel: Option<Channel>,
    pub shop_id: Option<ShopId>,
    /// The key's shop scope (`None`: every shop).
    pub shops: Option<Vec<String>>,
}

impl ListingRecord {
    /// Whether the shelf still waits for `want_qty`.
    pub fn is_due(&self) -> bool {
        !self.paused && self.want_version > self.pushed_version
    }
}

/// Listings inside the same transaction as the stock they follow.
pub trait ListingTx {
    /// The listing, locked for update where the backend has row locks.
    fn listing_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ListingRecord>, StoreError>;
    /// Inserts a listing and the stock SKUs that drive it (`drivers`: the SKU, or a kit's
    /// components). `Ok(false)`: the (channel, shop, item, SKU id) is listed already; nothing written.
    fn listing_insert(&mut self, rec: &ListingRecord, drivers: &[Sku]) -> Result<bool, StoreError>;
    /// Writes `paused`, `fixed_quantity` and `updated_at`.
    fn listing_config_put(&mut self, rec: &ListingRecord) -> Result<(), StoreError>;
    /// Removes the listing and its drivers; `false` when there was none.
    fn listing_delete(&mut self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError>;
    /// Listings whose quantity follows stock of `sku` (one index lookup), locked for update where
    /// the backend has row locks, so the pool is read after any concurrent writer of them committed.
    fn listings_driven_by(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<ListingRecord>, StoreError>;
    /// Listings of our SKU or kit `sku` itself, locked like [`ListingTx::listings_driven_by`].
    fn listings_of_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<ListingRecord>, StoreError>;
    /// Every listing of the tenant on `channel` (a policy change recomputes them), locked likewise.
    fn listings_on_channel(
        &mut self,
        tenant: &TenantId,
        channel: &Channel,
    ) -> Result<Vec<ListingRecord>, StoreError>;
    /// Replaces the stock SKUs that drive the listing (a kit's components changed).
    fn listing_drivers_put(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        drivers: &[Sku],
    ) -> Result<(), StoreError>;
    /// A new quantity for the shelf: `want_qty`, `want_version` and `next_attempt_at` (due now).
    fn listing_want_put(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        qty: i64,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The channel acknowledged `qty` sent for `version`: stored unless an acknowledgement of a
    /// later version is stored already; failures are forgotten and the listing, if its want moved
    /// on meanwhile, stays due at once. `Ok(false)`: nothing changed (gone, or a later ack stored).
    fn listing_pushed(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        qty: i64,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// A push failed: one attempt more, the error kept, not tried again before `next_attempt_at`.
    fn listing_push_failed(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Writes `rec.drift` (every field of it) and nothing else.
    fn listing_drift_put(&mut self, rec: &ListingRecord) -> Result<(), StoreError>;
    /// Makes the listings in `scope` due for a shelf read at `at`; how many.
    fn listings_check_request(
        &mut self,
        tenant: &TenantId,
        scope: &CheckScope,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// One movement of a quarantine position: returned goods that failed QC, held apart from the
/// sellable stock (never reserved, never listed), each unit linked to its after-sales case.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRow {
    pub tenant_id: TenantId,
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    /// Signed change of the quarantined quantity.
    pub quantity: i64,
    /// The position's quantity after this movement.
    pub quantity_after: i64,
    pub case_id: Uuid,
    pub order_id: OrderId,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// After-sales cases (`orderhub_domain::after_sales`) inside the order's transaction.
pub trait AfterSaleTx {
    /// The case, locked for update where the backend has row locks.
    fn case_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<orderhub_domain::after_sales::AfterSaleCase>, StoreError>;
    /// Every case of the order (at most `after_sales::CASES_PER_ORDER_MAX` + 1), oldest first.
    fn cases_of_order(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Vec<orderhub_domain::after_sales::AfterSaleCase>, StoreError>;
    /// Inserts a new case. `Ok(false)`: a case of the order with the same channel key exists;
    /// nothing written.
    fn case_insert(
        &mut self,
        tenant: &TenantId,
        case: &orderhub_domain::after_sales::AfterSaleCase,
    ) -> Result<bool, StoreError>;
    /// Writes `case` over the stored one whose version is `from_version`; any other stored
    /// version is a `Conflict`.
    fn case_update(
        &mut self,
        tenant: &TenantId,
        case: &orderhub_domain::after_sales::AfterSaleCase,
        from_version: u64,
    ) -> Result<(), StoreError>;
    /// Moves the quarantine position by `row.quantity` (its `quantity_after` is computed here and
    /// returned) and appends the row to its ledger.
    fn quarantine_move(&mut self, row: &QuarantineRow) -> Result<i64, StoreError>;
}

/// Where time comes from. Tests use a fixed clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to: the seeded simulation and tests that would otherwise
/// sleep (a reservation's hold runs out when the test advances the clock, not after real minutes).
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: std::sync::Mutex::new(at),
        }
    }

    /// Moves the clock forward by `by` (a negative duration is ignored: time does not go back).
    pub fn advance(&self, by: chrono::Duration) {
        if by > chrono::Duration::zero() {
            let mut now = self
                .now
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

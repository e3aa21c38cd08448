//! Inventory on the wire: SKUs, warehouses, receipts, adjustments, reservations, stock views.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentIn {
    pub sku: String,
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: u32,
}

/// A SKU of the master. With `components` it is a kit: it holds no stock of its own and reserves
/// its components together.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSkuRequest {
    pub title: String,
    #[serde(default)]
    pub components: Option<Vec<ComponentIn>>,
    /// The weight of one unit as shipped, in kilograms, as a decimal string (`"1.25"`): above 0,
    /// at most 1000, to the gram. What waybills declare; without it a unit counts 1 kg.
    #[serde(default)]
    #[schema(example = "1.25")]
    pub weight_kg: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutWarehouseRequest {
    pub name: String,
    /// Lower ships first.
    #[serde(default)]
    #[schema(maximum = 1_000_000)]
    pub priority: u32,
    /// Provinces it ships to (e.g. "浙江省"); empty or absent for everywhere.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Where its parcels leave from, as carriers print it on the label. Without it no waybill
    /// is asked for orders allocated here (fulfillment with carriers). Stored encrypted.
    #[serde(default)]
    pub sender: Option<SenderIn>,
    /// The heaviest parcel it packs, in kilograms, as a decimal string: a heavier order is
    /// declared as several parcels. Absent: one parcel per order.
    #[serde(default)]
    #[schema(example = "20")]
    pub parcel_max_kg: Option<String>,
}

/// A warehouse's sender: contact, phone and address.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SenderIn {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    #[serde(default)]
    pub district: String,
    /// Street and number.
    pub detail: String,
}

impl std::fmt::Debug for SenderIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderIn")
            .field("province", &self.province)
            .field("city", &self.city)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    pub sku: String,
    pub warehouse_id: String,
    /// Units received, at least 1.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub quantity: i64,
    /// The caller's document (ASN, GRN number).
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    pub sku: String,
    pub warehouse_id: String,
    /// Counted − expected: negative for a loss; not 0.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub delta: i64,
    /// stock_take, damaged, found, erp_sync, or a short text.
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveLineIn {
    pub sku: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: u32,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// The order id or checkout id this is for.
    pub reference: String,
    pub lines: Vec<ReserveLineIn>,
    /// The receiver's province: only warehouses covering it are used.
    #[serde(default)]
    pub region: Option<String>,
    /// Reserve in this warehouse only.
    #[serde(default)]
    pub warehouse_id: Option<String>,
    /// checkout (default: a hold, committed at payment), at_payment (committed now), presale (hold
    /// until the final payment), pos (hold until pickup).
    #[serde(default)]
    pub mode: Option<String>,
    /// How long a hold lasts, 1 to 86,400 seconds; default 300.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400)]
    pub hold_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// cancelled (default) or manual.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PositionView {
    pub warehouse_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    /// Grows by one on every movement of this position.
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InventoryView {
    pub sku: String,
    pub title: String,
    pub is_kit: bool,
    /// Totals over every warehouse. For a kit: whole kits that could be reserved.
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub warehouses: Vec<PositionView>,
    /// Per sales channel with a policy: what it may list, and whether it is closed.
    pub channels: Vec<ChannelView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservedLineView {
    pub sku: String,
    pub warehouse_id: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationView {
    pub reservation_id: Uuid,
    pub reference: String,
    /// held, committed, consumed, released_cancelled, released_expired, released_manual
    pub state: String,
    pub mode: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Component units per warehouse (kits expanded).
    pub lines: Vec<ReservedLineView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerEntryView {
    pub entry_id: i64,
    pub warehouse_id: String,
    /// receipt, adjustment, reserve, release, consume, return
    pub movement: String,
    pub quantity: i64,
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub on_hand_after: i64,
    pub reserved_after: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntryView>,
    pub next_after: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotItemIn {
    pub sku: String,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub on_hand: i64,
}

/// A full stock count of one warehouse from an ERP or WMS.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    pub warehouse_id: String,
    /// When the count was taken (RFC 3339 with offset). Must be later than the last applied.
    pub as_of: String,
    pub items: Vec<SnapshotItemIn>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SnapshotAdjustment {
    pub sku: String,
    pub delta: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SnapshotConflict {
    pub sku: String,
    pub snapshot_on_hand: i64,
    pub reserved: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SnapshotResult {
    /// Differences posted as `erp_sync` adjustments.
    pub adjusted: Vec<SnapshotAdjustment>,
    pub unchanged: usize,
    /// Counted below what live reservations hold: not applied; someone must look.
    pub conflicts: Vec<SnapshotConflict>,
}

/// How a channel lists stock from the shared pool.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutChannelPolicyRequest {
    /// shared (the whole pool), ratio (`percent` of it) or quota (at most `units`).
    pub allocation: String,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub percent: Option<u8>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub units: Option<i64>,
    /// Units kept back from this channel's listing.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub safety_stock: i64,
    /// At or below this many units available in the pool, the channel lists 0 (closed). Give
    /// low-priority channels higher thresholds, so they close first.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub close_below: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelView {
    pub channel: String,
    /// What the channel may list now.
    pub listed: i64,
    pub closed: bool,
}

/// Returned goods after quality control.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    pub sku: String,
    pub warehouse_id: String,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub quantity: i64,
    /// passed: back on hand; failed: not restocked.
    pub qc: String,
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReturnResult {
    pub restocked: bool,
    pub position: Option<PositionView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackorderView {
    pub order_id: Uuid,
    /// The SKU the order waits for.
    pub sku: String,
    pub paid_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackorderPage {
    /// In payment order: the order in which stock will serve them.
    pub backorders: Vec<BackorderView>,
    pub next_cursor: Option<String>,
}

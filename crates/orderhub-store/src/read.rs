//! What readers ask of the store, and the rows they get back.

use chrono::{DateTime, Utc};
use orderhub_core::StoreError;
use orderhub_core::auth::Role;
use orderhub_core::ports::AuditEntry;
use orderhub_core::ports::{
    ChannelPolicy, LedgerRow, ReservationRecord, SkuRecord, StockRow, WarehouseRecord,
};
use orderhub_domain::ids::Channel;
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::{Order, OrderId, ShopId, Sku, Status, TenantId};
use uuid::Uuid;

/// A listing request. Results come in `order_id` order (creation order, as ids are UUIDv7), after
/// the cursor; an order created while a client pages is never returned twice, and no order that
/// existed when paging began is skipped.
#[derive(Debug, Clone)]
pub struct OrderFilter {
    pub tenant_id: TenantId,
    pub status: Option<Status>,
    pub channel: Option<Channel>,
    pub shop_id: Option<ShopId>,
    pub updated_since: Option<DateTime<Utc>>,
    /// The console's search conditions (ids, buyer, exceptions, creation time).
    pub search: OrderSearch,
    /// The caller's shop scope; `None` for every shop.
    pub shops: Option<Vec<ShopId>>,
    pub after: Option<OrderId>,
    pub limit: u32,
}

impl OrderFilter {
    /// Every order of the tenant, the first `limit` of them.
    pub fn all(tenant_id: TenantId, limit: u32) -> Self {
        OrderFilter {
            tenant_id,
            status: None,
            channel: None,
            shop_id: None,
            updated_since: None,
            search: OrderSearch::default(),
            shops: None,
            after: None,
            limit,
        }
    }
}

/// Search conditions beyond status, channel and shop, each backed by an index of `orders`
/// (migration 0006). None of them touches personal data: receiver fields are encrypted at rest and
/// cannot be searched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderSearch {
    /// The channel's order id, in any shop of the tenant.
    pub external_order_id: Option<String>,
    /// Buyer nick or buyer id, exact.
    pub buyer: Option<String>,
    /// Any one id: orderhub's order id, the channel's order id, or the buyer's nick or id.
    pub any_id: Option<String>,
    pub exception: Option<ExceptionFilter>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExceptionFilter {
    /// Orders with at least one open exception.
    Any,
    /// Orders with this open exception (`out_of_stock`, `no_waybill` …).
    Kind(String),
}

/// The `exceptions` column of `orders`: the open exception codes between spaces (` a b `), empty
/// when there are none, so one kind is found with `instr(exceptions, ' kind ')` and "any" with
/// `exceptions <> ''` (the partial index's condition).
pub fn exceptions_column(o: &Order) -> String {
    if o.exceptions.is_empty() {
        String::new()
    } else {
        format!(" {} ", o.exceptions.join(" "))
    }
}

/// Open exceptions per kind, for the exception board's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenException {
    pub order: Order,
    /// When the order's oldest open exception was raised (kept by the store in `exception_since`).
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    pub shops: Option<Vec<ShopId>>,
    pub pii_read: bool,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An outbox event with the position the store gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: orderhub_core::EventRecord,
    /// The W3C trace context of the write that raised it (`None` when traces were off): the relay,
    /// NATS and the delivery continue that trace.
    pub traceparent: Option<String>,
}

/// Reads, on a reader connection. Personal data comes back decrypted; callers mask it.
pub trait ReadConn:
    Send
    + crate::ops::OpsRead
    + crate::ops::ChannelRead
    + crate::carriers::CarrierRead
    + crate::listings::ListingRead
    + crate::after_sales::AfterSaleRead
    + crate::edits::EditRead
    + crate::workflow::WorkflowRead
    + crate::combine::CombineRead
    + crate::rules::RuleRead
    + crate::blacklist::BlacklistRead
    + crate::waves::WaveRead
    + crate::audit::AuditRead
    + crate::status_checks::StatusCheckRead
    + crate::metrics::MetricsRead
    + crate::health::HealthRead
    + crate::customers::CustomerRead
{
    fn ping(&mut self) -> Result<(), StoreError>;
    fn order_get(&mut self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, StoreError>;
    fn order_list(&mut self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError>;
    /// How many orders `filter` matches in all (its cursor and limit aside), counted in the
    /// database without reading them.
    fn order_count(&mut self, filter: &OrderFilter) -> Result<u64, StoreError>;
    /// Orders with open exceptions, newest first by when their exceptions opened (at most `limit`),
    /// with that time; `filter`'s status, channel, shop, scope and search apply.
    fn open_exceptions(&mut self, filter: &OrderFilter) -> Result<Vec<OpenException>, StoreError>;
    /// Open exceptions per kind over the tenant's orders (in the shop scope, when given).
    fn exception_counts(
        &mut self,
        tenant: &TenantId,
        shops: Option<&[ShopId]>,
    ) -> Result<Vec<(String, u64)>, StoreError>;
    /// Orders created per minute since `since` (minutes as Unix time / 60, only minutes that have
    /// orders), in the shop scope when given.
    fn orders_per_minute(
        &mut self,
        tenant: &TenantId,
        shops: Option<&[ShopId]>,
        since: DateTime<Utc>,
    ) -> Result<Vec<(i64, u64)>, StoreError>;
    fn audit_for_order(
        &mut self,
        tenant: &TenantId,
        id: OrderId,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    fn events_after(
        &mut self,
        tenant: &TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The key with this hash, if it exists and is not revoked.
    fn api_key_by_hash(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    /// The key with this hash, revoked or not (bootstrap must not insert a revoked key again).
    fn api_key_by_hash_any(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    fn api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKeyRow>, StoreError>;
    fn tenant_exists(&mut self, tenant: &TenantId) -> Result<bool, StoreError>;
    fn tenant_count(&mut self) -> Result<u64, StoreError>;
    /// Orders per (status, channel) over all tenants, for /metrics.
    fn order_counts(&mut self) -> Result<Vec<(String, String, u64)>, StoreError>;
    fn is_broken(&self) -> bool {
        false
    }

    // Inventory.
    fn sku(&mut self, tenant: &TenantId, sku: &Sku) -> Result<Option<SkuRecord>, StoreError>;
    fn warehouses(&mut self, tenant: &TenantId) -> Result<Vec<WarehouseRecord>, StoreError>;
    /// The SKU's stock in every warehouse that has a position for it.
    fn stock_for_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<(WarehouseId, StockRow)>, StoreError>;
    /// Ledger rows of one SKU (optionally one warehouse) after `after`, in order, with their ids.
    fn ledger(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: Option<&WarehouseId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, LedgerRow)>, StoreError>;
    fn reservation(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ReservationRecord>, StoreError>;
    /// The tenant's channel policies.
    fn channel_policies(&mut self, tenant: &TenantId) -> Result<Vec<ChannelPolicy>, StoreError>;
    /// Every stock position of every tenant, for the invariant check.
    fn positions(&mut self) -> Result<Vec<(TenantId, Sku, WarehouseId, StockRow)>, StoreError>;
    /// Held and committed reservations of every tenant, for the invariant check.
    fn active_reservations(&mut self) -> Result<Vec<ReservationRecord>, StoreError>;
    /// Orders on backorder, in payment order: (order, SKU it waits for, paid at), after a position;
    /// `shops`: only these shops' orders (a shop-scoped caller's view).
    fn backorders(
        &mut self,
        tenant: &TenantId,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: u32,
        shops: Option<&[String]>,
    ) -> Result<Vec<(OrderId, Sku, DateTime<Utc>)>, StoreError>;
}

/// Counts per exception kind from counts per `exceptions` column value (` a b ` → a and b).
pub(crate) fn count_kinds(groups: Vec<(String, u64)>) -> Vec<(String, u64)> {
    let mut by_kind = std::collections::BTreeMap::<String, u64>::new();
    for (column, n) in groups {
        for kind in column.split_whitespace() {
            *by_kind.entry(kind.to_owned()).or_default() += n;
        }
    }
    by_kind.into_iter().collect()
}

/// Counts per (minute, shop) into counts per minute over the shops in scope.
pub(crate) fn per_minute(
    rows: Vec<(i64, String, i64)>,
    shops: Option<&[ShopId]>,
) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = Vec::new();
    for (minute, shop, n) in rows {
        if shops.is_some_and(|s| !s.iter().any(|x| x.as_str() == shop)) {
            continue;
        }
        match out.last_mut() {
            Some((m, c)) if *m == minute => *c += n as u64,
            _ => out.push((minute, n as u64)),
        }
    }
    out
}

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
    /// The caller's shop scope; `None` for every shop.
    pub shops: Option<Vec<ShopId>>,
    pub after: Option<OrderId>,
    pub limit: u32,
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
}

/// Reads, on a reader connection. Personal data comes back decrypted; callers mask it.
pub trait ReadConn: Send + crate::ops::OpsRead + crate::ops::ChannelRead {
    fn ping(&mut self) -> Result<(), StoreError>;
    fn order_get(&mut self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, StoreError>;
    fn order_list(&mut self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError>;
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
    /// Orders on backorder, in payment order: (order, SKU it waits for, paid at), after a position.
    fn backorders(
        &mut self,
        tenant: &TenantId,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: u32,
    ) -> Result<Vec<(OrderId, Sku, DateTime<Utc>)>, StoreError>;
}

//! The ports use cases run over. Backends implement them; use cases never see SQL.

use chrono::{DateTime, Utc};
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
    pub aggregate_id: OrderId,
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
pub trait Tx {
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

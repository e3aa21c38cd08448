//! What a writer's open group holds besides its SQL: events and audit rows that go in at commit, and
//! a count of writes, so that a refused job's leftovers can be told apart from a clean refusal.

use orderhub_core::ports::{AuditEntry, EventRecord, LedgerRow, StockRow};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::{Sku, TenantId};
use std::collections::{BTreeMap, HashMap};

/// A stock position's key.
pub(crate) type Position = (TenantId, Sku, WarehouseId);

#[derive(Default)]
pub(crate) struct Pending {
    /// Events wait here until commit, when they are numbered in commit order; each with the
    /// `traceparent` of the job that raised it.
    pub outbox: Vec<(EventRecord, Option<String>)>,
    /// The `traceparent` of the job running now (`None` when traces are off).
    pub traceparent: Option<String>,
    /// Audit entries wait here until commit, to go in with one statement per group.
    pub audit: Vec<AuditEntry>,
    /// Ledger rows wait here until commit, in movement order.
    pub ledger: Vec<LedgerRow>,
    /// Stock positions this group has read or written: the group holds their row locks, so what it
    /// saw stays true until it commits, and a hot SKU's row is read once per group, not per job.
    pub stock: HashMap<Position, StockRow>,
    /// Positions changed by this group, written once at commit (PostgreSQL) with their last value.
    pub stock_dirty: std::collections::BTreeSet<Position>,
    /// The greatest position this transaction holds the row lock of (PostgreSQL): a lock on a
    /// greater one may be waited for, a lock on a smaller one may not (see `postgres_inv.rs`).
    pub locked_max: Option<Position>,
    /// Listings whose wanted quantity this group changed (PostgreSQL): written at commit, in key
    /// order and after every stock row is locked, so a listing row is never locked before a
    /// stock row (no cycle between groups holding one and waiting for the other).
    pub listing_wants:
        std::collections::BTreeMap<(String, uuid::Uuid), (i64, chrono::DateTime<chrono::Utc>)>,
    /// Rows written directly (orders, idempotency records, tenants, keys, stock).
    pub writes: u64,
    mark: (u64, usize, usize, usize),
}

impl Pending {
    pub fn clear(&mut self) {
        self.outbox.clear();
        self.audit.clear();
        self.ledger.clear();
        self.stock.clear();
        self.stock_dirty.clear();
        self.listing_wants.clear();
        self.locked_max = None;
    }

    fn position(&self) -> (u64, usize, usize, usize) {
        (
            self.writes,
            self.outbox.len(),
            self.audit.len(),
            self.ledger.len(),
        )
    }

    pub fn mark(&mut self) {
        self.mark = self.position();
    }

    pub fn wrote_since_mark(&self) -> bool {
        self.mark != self.position()
    }

    /// The group's events by tenant, tenants in sorted order: the order in which outbox heads are
    /// locked, so two groups never wait on each other in a cycle.
    /// The group's audit entries by tenant (tenants in byte order, entries in the order written).
    pub fn take_audit_by_tenant(&mut self) -> BTreeMap<String, Vec<AuditEntry>> {
        let mut by_tenant: BTreeMap<String, Vec<AuditEntry>> = BTreeMap::new();
        for e in self.audit.drain(..) {
            by_tenant
                .entry(e.tenant_id.as_str().to_owned())
                .or_default()
                .push(e);
        }
        by_tenant
    }

    pub fn take_events_by_tenant(
        &mut self,
    ) -> BTreeMap<String, Vec<(EventRecord, Option<String>)>> {
        let mut by_tenant: BTreeMap<String, Vec<(EventRecord, Option<String>)>> = BTreeMap::new();
        for e in self.outbox.drain(..) {
            by_tenant
                .entry(e.0.tenant_id.as_str().to_owned())
                .or_default()
                .push(e);
        }
        by_tenant
    }

    /// Holds `event` for the commit, with the running job's `traceparent`.
    pub fn append_event(&mut self, event: &EventRecord) {
        self.outbox.push((event.clone(), self.traceparent.clone()));
    }
}

//! What a writer's open group holds besides its SQL: events and audit rows that go in at commit, and
//! a count of writes, so that a refused job's leftovers can be told apart from a clean refusal.

use orderhub_core::ports::{AuditEntry, EventRecord};
use std::collections::BTreeMap;

#[derive(Default)]
pub(crate) struct Pending {
    /// Events wait here until commit, when they are numbered in commit order.
    pub outbox: Vec<EventRecord>,
    /// Audit entries wait here until commit, to go in with one statement per group.
    pub audit: Vec<AuditEntry>,
    /// Rows written directly (orders, idempotency records, tenants, keys).
    pub writes: u64,
    mark: (u64, usize, usize),
}

impl Pending {
    pub fn clear(&mut self) {
        self.outbox.clear();
        self.audit.clear();
    }

    fn position(&self) -> (u64, usize, usize) {
        (self.writes, self.outbox.len(), self.audit.len())
    }

    pub fn mark(&mut self) {
        self.mark = self.position();
    }

    pub fn wrote_since_mark(&self) -> bool {
        self.mark != self.position()
    }

    /// The group's events by tenant, tenants in sorted order: the order in which outbox heads are
    /// locked, so two groups never wait on each other in a cycle.
    pub fn take_events_by_tenant(&mut self) -> BTreeMap<String, Vec<EventRecord>> {
        let mut by_tenant: BTreeMap<String, Vec<EventRecord>> = BTreeMap::new();
        for e in self.outbox.drain(..) {
            by_tenant
                .entry(e.tenant_id.as_str().to_owned())
                .or_default()
                .push(e);
        }
        by_tenant
    }
}

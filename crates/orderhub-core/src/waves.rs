//! Waves (issue 28, first slice): a warehouse's released orders grouped into waves with pick lists
//! ([`orderhub_domain::wave::plan`]), then started and closed by a person. An order is in at most
//! one open or started wave: the store's unique index on the active membership refuses a second,
//! so two creations racing for the same orders never share one (the group that loses reruns and
//! reads the winner's waves).
//!
//! Every change writes the wave, one audit entry per order of it (the order's status and version
//! unchanged; the entry names the wave) and one outbox event whose aggregate is the wave, through
//! one [`Tx`].

use crate::auth::Permission;
use crate::edits::Who;
use crate::error::CoreError;
use crate::ports::{AuditEntry, EventRecord, StoreError, Tx};
use crate::usecases::Actor;
use chrono::{DateTime, Utc};
use orderhub_domain::event_types as et;
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::wave::{Pick, WaveOrder, WavePolicy, plan};
use orderhub_domain::{OrderId, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// Released orders one creation takes at most: a day of a large warehouse, waved in about a
/// second (the `bench waves` figure in README).
pub const WAVE_TAKE_MAX: u32 = 20_000;

/// Where a wave stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveStatus {
    Open,
    Started,
    Closed,
}

impl WaveStatus {
    pub const ALL: [WaveStatus; 3] = [WaveStatus::Open, WaveStatus::Started, WaveStatus::Closed];
    pub fn as_str(self) -> &'static str {
        match self {
            WaveStatus::Open => "open",
            WaveStatus::Started => "started",
            WaveStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<WaveStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A stored wave with its orders and pick list.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveRecord {
    pub tenant_id: TenantId,
    pub wave_id: Uuid,
    pub warehouse_id: WarehouseId,
    pub status: WaveStatus,
    pub policy: WavePolicy,
    /// Its orders in the order they were waved.
    pub orders: Vec<OrderId>,
    /// Order lines in it.
    pub lines: u32,
    /// The pick list, in walking order (by SKU until bins exist).
    pub picks: Vec<Pick>,
    /// Its earliest ship-by deadline.
    pub earliest_ship_by: Option<DateTime<Utc>>,
    pub created_by: Who,
    pub started_by: Option<Who>,
    pub closed_by: Option<Who>,
}

impl WaveRecord {
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_by.at
    }
}

/// A released order the store offers for waving, with the version its audit entry names.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveCandidate {
    pub order: WaveOrder,
    pub version: u64,
}

/// The store's part, inside the wave's transaction.
pub trait WaveTx {
    /// Released orders of `warehouse` in no wave yet, oldest order id first, at most `limit`.
    fn wave_candidates(
        &mut self,
        tenant: &TenantId,
        warehouse: &WarehouseId,
        limit: u32,
    ) -> Result<Vec<WaveCandidate>, StoreError>;
    /// Inserts the wave and its orders as active members. An order already active in another
    /// wave: `UniqueViolation` (the group reruns and reads it back).
    fn wave_insert(&mut self, wave: &WaveRecord) -> Result<(), StoreError>;
    /// The wave, locked for update where the backend has row locks.
    fn wave_get(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<WaveRecord>, StoreError>;
    /// Writes status and who started or closed it; a closed wave's orders stop being active.
    fn wave_update(&mut self, wave: &WaveRecord) -> Result<(), StoreError>;
}

fn allowed(actor: &Actor, p: Permission) -> Result<(), CoreError> {
    let pr = &actor.principal;
    if !pr.can(p) {
        return Err(CoreError::Forbidden(format!(
            "role {} may not {}",
            pr.role.as_str(),
            p.describe()
        )));
    }
    if pr.shops.is_some() {
        return Err(CoreError::Forbidden(
            "waves hold a warehouse's orders of every shop: a key scoped to shops may not change them"
                .into(),
        ));
    }
    Ok(())
}

/// What a wave's event and audit entries say of it.
fn summary(w: &WaveRecord) -> serde_json::Value {
    json!({
        "wave_id": w.wave_id,
        "warehouse_id": w.warehouse_id.as_str(),
        "status": w.status.as_str(),
        "orders": w.orders.len(),
        "lines": w.lines,
        "skus": w.picks.len(),
    })
}

fn version_of(w: &WaveRecord) -> u64 {
    match w.status {
        WaveStatus::Open => 1,
        WaveStatus::Started => 2,
        WaveStatus::Closed => 3,
    }
}

fn audit(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: (OrderId, orderhub_domain::Status, u64),
    action: &str,
    detail: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let p = &actor.principal;
    tx.audit_append(&AuditEntry {
        audit_id: Uuid::now_v7(),
        tenant_id: p.tenant_id.clone(),
        order_id: order.0,
        at: now,
        actor: format!("{}:{}", p.role.as_str(), p.key_name),
        key_id: p.key_id.clone(),
        request_id: actor.request_id.clone(),
        action: action.to_owned(),
        from_status: Some(order.1),
        to_status: order.1,
        from_version: order.2,
        to_version: order.2,
        detail: detail.clone(),
    })
}

fn event(
    tx: &mut dyn Tx,
    actor: &Actor,
    w: &WaveRecord,
    event_type: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.outbox_append(&EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: w.tenant_id.clone(),
        event_type: event_type.to_owned(),
        aggregate_id: w.wave_id,
        aggregate_version: version_of(w),
        occurred_at: now,
        trace_id: actor.request_id.clone(),
        payload: summary(w).to_string(),
    })
}

/// Waves `warehouse`'s released orders never waved yet (at most `take`, oldest first) by
/// `policy`. No candidate: no wave, nothing written.
pub fn create_waves(
    tx: &mut dyn Tx,
    actor: &Actor,
    warehouse: &WarehouseId,
    policy: &WavePolicy,
    take: u32,
    now: DateTime<Utc>,
) -> Result<Vec<WaveRecord>, CoreError> {
    allowed(actor, Permission::WavesWrite)?;
    policy.check()?;
    if take == 0 || take > WAVE_TAKE_MAX {
        return Err(ValidationError::new(
            "limit",
            "out_of_range",
            format!("limit must be 1-{WAVE_TAKE_MAX}"),
        )
        .into());
    }
    let tenant = actor.principal.tenant_id.clone();
    if !tx
        .warehouses(&tenant)?
        .iter()
        .any(|w| &w.warehouse_id == warehouse)
    {
        return Err(ValidationError::new(
            "warehouse_id",
            "unknown_warehouse",
            format!("the tenant has no warehouse {warehouse}"),
        )
        .into());
    }
    let candidates = tx.wave_candidates(&tenant, warehouse, take)?;
    let versions: std::collections::HashMap<OrderId, u64> =
        candidates.iter().map(|c| (c.order.id, c.version)).collect();
    let orders: Vec<WaveOrder> = candidates.into_iter().map(|c| c.order).collect();
    let mut out = Vec::new();
    for planned in plan(&orders, policy) {
        let w = WaveRecord {
            tenant_id: tenant.clone(),
            wave_id: Uuid::now_v7(),
            warehouse_id: warehouse.clone(),
            status: WaveStatus::Open,
            policy: policy.clone(),
            orders: planned.orders,
            lines: planned.lines,
            picks: planned.picks,
            earliest_ship_by: planned.earliest,
            created_by: Who::of(actor, now),
            started_by: None,
            closed_by: None,
        };
        tx.wave_insert(&w)?;
        let detail = json!({ "wave_id": w.wave_id });
        for id in &w.orders {
            let v = versions.get(id).copied().unwrap_or_default();
            audit(
                tx,
                actor,
                (*id, orderhub_domain::Status::Released, v),
                et::WAVE_CREATED,
                &detail,
                now,
            )?;
        }
        event(tx, actor, &w, et::WAVE_CREATED, now)?;
        out.push(w);
    }
    Ok(out)
}

fn wrong_state(w: &WaveRecord, step: &str, expect: WaveStatus) -> CoreError {
    CoreError::WaveConflict {
        code: "wave_wrong_state",
        message: format!(
            "cannot {step} wave {} that is {}; it must be {}",
            w.wave_id,
            w.status.as_str(),
            expect.as_str()
        ),
        status: Some(w.status),
    }
}

/// Moves the wave from `from` to `to`, with an audit entry per order and the event.
fn step(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    (name, from, to, event_type): (&str, WaveStatus, WaveStatus, &str),
    now: DateTime<Utc>,
) -> Result<WaveRecord, CoreError> {
    allowed(actor, Permission::WavesWrite)?;
    let tenant = actor.principal.tenant_id.clone();
    let mut w = tx.wave_get(&tenant, id)?.ok_or(CoreError::WaveNotFound)?;
    if w.status != from {
        return Err(wrong_state(&w, name, from));
    }
    w.status = to;
    match to {
        WaveStatus::Started => w.started_by = Some(Who::of(actor, now)),
        WaveStatus::Closed => w.closed_by = Some(Who::of(actor, now)),
        WaveStatus::Open => {}
    }
    tx.wave_update(&w)?;
    let detail = json!({ "wave_id": w.wave_id });
    for oid in &w.orders {
        // An order gone from the store (never, short of a hand in the database) has no history
        // to write to.
        if let Some(o) = tx.order_get(&tenant, *oid)? {
            audit(
                tx,
                actor,
                (o.id, o.status, o.version),
                event_type,
                &detail,
                now,
            )?;
        }
    }
    event(tx, actor, &w, event_type, now)?;
    Ok(w)
}

/// Open → started: a picker took the wave.
pub fn start(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<WaveRecord, CoreError> {
    step(
        tx,
        actor,
        id,
        (
            "start",
            WaveStatus::Open,
            WaveStatus::Started,
            et::WAVE_STARTED,
        ),
        now,
    )
}

/// Started → closed: the wave is picked. Its orders stop being active members, but an order once
/// waved is never offered again (scanning, and what happens to an order a closed wave did not
/// finish, are later slices).
pub fn close(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<WaveRecord, CoreError> {
    step(
        tx,
        actor,
        id,
        (
            "close",
            WaveStatus::Started,
            WaveStatus::Closed,
            et::WAVE_CLOSED,
        ),
        now,
    )
}

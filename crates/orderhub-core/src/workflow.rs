//! The exception workflow (issue 21): each open exception of an order — and each hold, kind
//! [`ON_HOLD`] — is a work item with an assignee, notes, a due time from the tenant's SLA for its
//! kind, and an escalation once that time passes unresolved.
//!
//! Items follow the order: [`on_raised`] and [`on_resolved`] are called by `usecases` in the
//! transaction that raises or resolves the exception (or holds and releases the order), so an item
//! exists exactly while the order carries its exception. The order document stays the truth: an
//! item whose order no longer carries its exception is closed when the escalation pass meets it.
//! Assignments, notes and escalations change the item (its own version), write an audit entry on
//! the order (its version unchanged) and an event whose aggregate is the item, in one transaction.

use crate::auth::Permission;
use crate::error::CoreError;
use crate::ports::{AuditEntry, EventRecord, Tx};
use crate::usecases::Actor;
use chrono::{DateTime, Duration, Utc};
use orderhub_domain::event_types as ev;
use orderhub_domain::{Order, OrderId, ShopId, Status, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The pseudo-kind of an order waiting on hold: a hold waits for a person like an exception.
pub const ON_HOLD: &str = "on_hold";
/// The longest note, in characters.
pub const NOTE_LEN_MAX: usize = 1000;
/// Notes one item keeps at most.
pub const NOTES_PER_ITEM_MAX: u32 = 100;
/// The longest SLA a tenant may set for a kind: 30 days.
pub const SLA_HOURS_MAX: u32 = 720;
/// Kinds a tenant may name in its SLA.
pub const SLA_KINDS_MAX: usize = 64;

/// The tenant's SLA: hours from raise to due, per exception kind, and for kinds it does not name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub hours: BTreeMap<String, u32>,
    pub default_hours: u32,
}

impl Default for Sla {
    /// Stock shortages wait a day for goods; a paid order not released or without a waybill, or
    /// near its ship-by deadline, two hours; an after-sale half a day; a hold four hours; anything else eight.
    fn default() -> Self {
        let hours = [
            ("out_of_stock", 24),
            ("not_released", 2),
            ("no_waybill", 2),
            ("no_tracking", 24),
            // Raised hours before the deadline: due halfway there.
            ("ship_by_at_risk", 2),
            ("after_sale", 12),
            (ON_HOLD, 4),
        ]
        .into_iter()
        .map(|(k, h)| (k.to_owned(), h))
        .collect();
        Sla {
            hours,
            default_hours: 8,
        }
    }
}

impl Sla {
    pub fn hours_for(&self, kind: &str) -> u32 {
        self.hours.get(kind).copied().unwrap_or(self.default_hours)
    }

    /// When an exception of `kind` raised at `raised_at` is due.
    pub fn due(&self, kind: &str, raised_at: DateTime<Utc>) -> DateTime<Utc> {
        raised_at + Duration::hours(i64::from(self.hours_for(kind)))
    }

    /// Every figure 1 to [`SLA_HOURS_MAX`] hours, kinds named as exception kinds are.
    pub fn check(&self) -> Result<(), ValidationError> {
        let bad_hours = |field: String| {
            ValidationError::new(
                field,
                "out_of_range",
                format!("an SLA is 1 to {SLA_HOURS_MAX} hours"),
            )
        };
        if !(1..=SLA_HOURS_MAX).contains(&self.default_hours) {
            return Err(bad_hours("default_hours".into()));
        }
        if self.hours.len() > SLA_KINDS_MAX {
            return Err(ValidationError::new(
                "hours",
                "too_many",
                format!("at most {SLA_KINDS_MAX} kinds"),
            ));
        }
        for (k, h) in &self.hours {
            if !is_kind(k) {
                return Err(ValidationError::new(
                    format!("hours.{k}"),
                    "invalid_kind",
                    "a kind is 1 to 64 lower-case letters, digits and _",
                ));
            }
            if !(1..=SLA_HOURS_MAX).contains(h) {
                return Err(bad_hours(format!("hours.{k}")));
            }
        }
        Ok(())
    }
}

/// Whether `k` is spelled as exception kinds are: 1 to 64 of `a-z`, `0-9`, `_`.
pub fn is_kind(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkState {
    Open,
    Resolved,
}

impl WorkState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Open => "open",
            WorkState::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<WorkState> {
        match s {
            "open" => Some(WorkState::Open),
            "resolved" => Some(WorkState::Resolved),
            _ => None,
        }
    }
}

/// One exception of one order as a piece of work.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    pub tenant_id: TenantId,
    pub work_id: Uuid,
    pub order_id: OrderId,
    pub shop_id: ShopId,
    pub kind: String,
    pub state: WorkState,
    pub raised_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// The key (id) that handles it, and its name when it was assigned.
    pub assignee: Option<String>,
    pub assignee_name: Option<String>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Notes written on it.
    pub notes: u32,
    /// Grows by one at every change of the item (its events carry it).
    pub version: u64,
}

impl WorkItem {
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == WorkState::Open && now >= self.due_at
    }
}

/// A note on a work item. The text is sealed at rest (people write phone numbers into notes).
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub note_id: Uuid,
    pub work_id: Uuid,
    pub at: DateTime<Utc>,
    pub key_id: String,
    /// `role:key name`, as the audit trail names people.
    pub actor: String,
    pub text: String,
}

/// Work items inside the order's transaction.
pub trait WorkflowTx {
    /// The open item of (order, kind), locked for update where the backend has row locks.
    fn work_open_get(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        kind: &str,
    ) -> Result<Option<WorkItem>, crate::StoreError>;
    /// Inserts an item. `Ok(false)`: (order, kind) has an open item already; nothing written.
    fn work_insert(&mut self, item: &WorkItem) -> Result<bool, crate::StoreError>;
    /// Writes `item` over the stored one if its version is still `item.version - 1`. `Ok(false)`:
    /// it moved meanwhile; nothing written.
    fn work_update(&mut self, item: &WorkItem) -> Result<bool, crate::StoreError>;
    fn work_note_insert(&mut self, tenant: &TenantId, note: &Note)
    -> Result<(), crate::StoreError>;
    /// Open items not escalated whose due time is at or before `now`, earliest first:
    /// (tenant, item, order).
    fn work_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Uuid, OrderId)>, crate::StoreError>;
    /// The item, locked for update where the backend has row locks.
    fn work_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<WorkItem>, crate::StoreError>;
    /// The tenant's SLA ([`Sla::default`] when it set none).
    fn exception_sla(&mut self, tenant: &TenantId) -> Result<Sla, crate::StoreError>;
    fn exception_sla_put(
        &mut self,
        tenant: &TenantId,
        sla: &Sla,
        at: DateTime<Utc>,
    ) -> Result<(), crate::StoreError>;
}

fn require(actor: &Actor, p: Permission) -> Result<(), CoreError> {
    if actor.principal.can(p) {
        Ok(())
    } else {
        Err(CoreError::Forbidden(format!(
            "role {} may not {}",
            actor.principal.role.as_str(),
            p.describe()
        )))
    }
}

/// Called where exception `kind` is raised on `order` (as stored after it): opens its item, due
/// by the tenant's SLA from `at`. An item open already stays as it is.
pub(crate) fn on_raised(
    tx: &mut dyn Tx,
    order: &Order,
    kind: &str,
    at: DateTime<Utc>,
) -> Result<(), CoreError> {
    if tx
        .work_open_get(&order.tenant_id, order.id, kind)?
        .is_some()
    {
        return Ok(());
    }
    let sla = tx.exception_sla(&order.tenant_id)?;
    tx.work_insert(&new_item(order, kind, at, &sla))?;
    Ok(())
}

fn new_item(order: &Order, kind: &str, at: DateTime<Utc>, sla: &Sla) -> WorkItem {
    WorkItem {
        tenant_id: order.tenant_id.clone(),
        work_id: Uuid::now_v7(),
        order_id: order.id,
        shop_id: order.shop_id.clone(),
        kind: kind.to_owned(),
        state: WorkState::Open,
        raised_at: at,
        due_at: sla.due(kind, at),
        assignee: None,
        assignee_name: None,
        assigned_at: None,
        escalated_at: None,
        resolved_at: None,
        notes: 0,
        version: 1,
    }
}

/// Called where exception `kind` of `order` is resolved: closes its item (notes and assignee
/// kept). Nothing open: nothing to do.
pub(crate) fn on_resolved(
    tx: &mut dyn Tx,
    order: &Order,
    kind: &str,
    at: DateTime<Utc>,
) -> Result<(), CoreError> {
    if let Some(mut item) = tx.work_open_get(&order.tenant_id, order.id, kind)? {
        close(tx, &mut item, at)?;
    }
    Ok(())
}

fn close(tx: &mut dyn Tx, item: &mut WorkItem, at: DateTime<Utc>) -> Result<(), CoreError> {
    item.state = WorkState::Resolved;
    item.resolved_at = Some(at);
    item.version += 1;
    if !tx.work_update(item)? {
        return Err(moved());
    }
    Ok(())
}

/// Called after an order's move: a hold opens an [`ON_HOLD`] item, leaving the hold closes it.
pub(crate) fn on_moved(
    tx: &mut dyn Tx,
    before: &Order,
    after: &Order,
    at: DateTime<Utc>,
) -> Result<(), CoreError> {
    match (
        before.status == Status::OnHold,
        after.status == Status::OnHold,
    ) {
        (false, true) => on_raised(tx, after, ON_HOLD, at),
        (true, false) => on_resolved(tx, after, ON_HOLD, at),
        _ => Ok(()),
    }
}

fn moved() -> CoreError {
    CoreError::Store(crate::StoreError::new(
        crate::StoreErrorKind::Conflict,
        "the exception's work item changed during this transaction",
    ))
}

/// Whether `order` carries `kind` (a hold: is on hold).
fn carries(order: &Order, kind: &str) -> bool {
    if kind == ON_HOLD {
        order.status == Status::OnHold
    } else {
        order.has_exception(kind)
    }
}

/// The order and the open item of its exception `kind`, as the caller may see them: the order
/// outside its scope is not found; an exception the order does not carry is
/// [`CoreError::NoSuchException`]. An item missing for a carried exception (cannot happen after
/// migration 0021's backfill) is opened now.
fn open_item(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(Order, WorkItem), CoreError> {
    let p = &actor.principal;
    let order = tx
        .order_get(&p.tenant_id, order_id)?
        .filter(|o| p.sees_shop(&o.shop_id))
        .ok_or(CoreError::NotFound)?;
    if !carries(&order, kind) {
        return Err(CoreError::NoSuchException(kind.to_owned()));
    }
    if let Some(item) = tx.work_open_get(&p.tenant_id, order_id, kind)? {
        return Ok((order, item));
    }
    on_raised(tx, &order, kind, now)?;
    let item = tx
        .work_open_get(&p.tenant_id, order_id, kind)?
        .ok_or_else(moved)?;
    Ok((order, item))
}

/// Who an exception is given to: a key of the tenant (id and name).
#[derive(Debug, Clone, PartialEq)]
pub struct Assignee {
    pub key_id: String,
    pub name: String,
}

/// Gives the open exception `kind` of the order to `to`. **First assignment wins**: an
/// exception assigned to another key is refused (409 `exception_assigned`, naming the holder)
/// unless `replace` names that holder — taking over is explicit, never a silent last write. Two
/// operators taking one exception at once: one gets it, the other is told who did (both
/// transactions lock the order's row first, then the item). Assigning to the holder again
/// changes nothing.
pub fn assign(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    kind: &str,
    to: &Assignee,
    replace: Option<&str>,
    now: DateTime<Utc>,
) -> Result<WorkItem, CoreError> {
    require(actor, Permission::ExceptionsWork)?;
    let (order, mut item) = open_item(tx, actor, order_id, kind, now)?;
    if item.assignee.as_deref() == Some(to.key_id.as_str()) {
        return Ok(item);
    }
    if let Some(holder) = &item.assignee
        && replace != Some(holder.as_str())
    {
        return Err(CoreError::ExceptionAssigned {
            holder: holder.clone(),
            holder_name: item.assignee_name.clone().unwrap_or_default(),
        });
    }
    let before = item.assignee.clone();
    item.assignee = Some(to.key_id.clone());
    item.assignee_name = Some(to.name.clone());
    item.assigned_at = Some(now);
    item.version += 1;
    if !tx.work_update(&item)? {
        return Err(moved());
    }
    let detail = json!({ "exception": kind, "assignee": to.key_id, "assignee_name": to.name, "replaced": before });
    record(
        tx,
        actor,
        &order,
        &item,
        ev::EXCEPTION_ASSIGNED,
        detail,
        now,
    )?;
    Ok(item)
}

/// Takes the assignee off the open exception `kind` of the order. Not assigned: nothing changes.
pub fn unassign(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<WorkItem, CoreError> {
    require(actor, Permission::ExceptionsWork)?;
    let (order, mut item) = open_item(tx, actor, order_id, kind, now)?;
    let Some(before) = item.assignee.take() else {
        return Ok(item);
    };
    item.assignee_name = None;
    item.assigned_at = None;
    item.version += 1;
    if !tx.work_update(&item)? {
        return Err(moved());
    }
    let detail = json!({ "exception": kind, "was": before });
    record(
        tx,
        actor,
        &order,
        &item,
        ev::EXCEPTION_UNASSIGNED,
        detail,
        now,
    )?;
    Ok(item)
}

/// Writes a note (1 to [`NOTE_LEN_MAX`] characters, line breaks allowed, no other control
/// characters) on the open exception `kind` of the order; at most [`NOTES_PER_ITEM_MAX`] per item.
pub fn add_note(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    kind: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(WorkItem, Note), CoreError> {
    require(actor, Permission::ExceptionsWork)?;
    let text = text.trim();
    if text.is_empty()
        || text.chars().count() > NOTE_LEN_MAX
        || text.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ValidationError::new(
            "text",
            if text.is_empty() {
                "required"
            } else {
                "invalid_text"
            },
            format!("a note is 1 to {NOTE_LEN_MAX} characters, without control characters but line breaks"),
        )
        .into());
    }
    let (order, mut item) = open_item(tx, actor, order_id, kind, now)?;
    if item.notes >= NOTES_PER_ITEM_MAX {
        return Err(ValidationError::new(
            "text",
            "too_many_notes",
            format!("an exception keeps at most {NOTES_PER_ITEM_MAX} notes"),
        )
        .into());
    }
    let p = &actor.principal;
    let note = Note {
        note_id: Uuid::now_v7(),
        work_id: item.work_id,
        at: now,
        key_id: p.key_id.clone(),
        actor: format!("{}:{}", p.role.as_str(), p.key_name),
        text: text.to_owned(),
    };
    tx.work_note_insert(&p.tenant_id, &note)?;
    item.notes += 1;
    item.version += 1;
    if !tx.work_update(&item)? {
        return Err(moved());
    }
    // The audit entry and the event say a note was written, never what it says.
    let detail = json!({ "exception": kind, "note_id": note.note_id });
    record(tx, actor, &order, &item, ev::EXCEPTION_NOTED, detail, now)?;
    Ok((item, note))
}

/// Sets the tenant's SLA (admin). Items open already keep their due time; new ones use it.
pub fn put_sla(
    tx: &mut dyn Tx,
    actor: &Actor,
    sla: &Sla,
    now: DateTime<Utc>,
) -> Result<Sla, CoreError> {
    require(actor, Permission::ExceptionSlaManage)?;
    sla.check()?;
    tx.exception_sla_put(&actor.principal.tenant_id, sla, now)?;
    Ok(sla.clone())
}

/// An item the escalation pass escalated.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalated {
    pub tenant_id: TenantId,
    pub kind: String,
    pub work_id: Uuid,
}

/// The escalation pass: open items past their due time, not yet escalated, at most `limit`,
/// each marked escalated once (`escalated_at`, version + 1) with an audit entry on its order and
/// an `exception.escalated` event, in the caller's transaction. An item whose order no longer
/// carries its exception is closed instead (it was resolved by a path that did not close it).
/// Returns what it escalated. A second pass at the same time escalates nothing again: the item is
/// read under its order's lock and changed only from the version read.
pub fn escalate_due(
    tx: &mut dyn Tx,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Escalated>, CoreError> {
    let mut out = Vec::new();
    for (tenant, work_id, order_id) in tx.work_due(now, limit)? {
        // The order's row first, then the item's, as every other writer of items does.
        let order = tx.order_get(&tenant, order_id)?;
        let Some(mut item) = tx.work_get(&tenant, work_id)? else {
            continue;
        };
        if item.state != WorkState::Open || item.escalated_at.is_some() || item.due_at > now {
            continue;
        }
        let Some(order) = order.filter(|o| carries(o, &item.kind)) else {
            close(tx, &mut item, now)?;
            continue;
        };
        item.escalated_at = Some(now);
        item.version += 1;
        if !tx.work_update(&item)? {
            continue;
        }
        let actor = Actor::system(&tenant, "escalation");
        let overdue = (now - item.due_at).num_seconds();
        let detail = json!({
            "exception": item.kind,
            "due_at": item.due_at,
            "overdue_seconds": overdue,
            "assignee": item.assignee,
        });
        record(
            tx,
            &actor,
            &order,
            &item,
            ev::EXCEPTION_ESCALATED,
            detail,
            now,
        )?;
        out.push(Escalated {
            tenant_id: tenant,
            kind: item.kind.clone(),
            work_id,
        });
    }
    Ok(out)
}

/// The item as events carry it (no note text, no personal data).
pub fn item_json(item: &WorkItem) -> serde_json::Value {
    json!({
        "work_id": item.work_id,
        "order_id": item.order_id,
        "shop_id": item.shop_id,
        "kind": item.kind,
        "state": item.state.as_str(),
        "raised_at": item.raised_at,
        "due_at": item.due_at,
        "assignee": item.assignee,
        "assignee_name": item.assignee_name,
        "escalated_at": item.escalated_at,
        "notes": item.notes,
        "version": item.version,
    })
}

/// The audit entry on the order (its version and status unchanged) and the event, whose
/// aggregate is the item.
fn record(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    item: &WorkItem,
    event_type: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let p = &actor.principal;
    tx.audit_append(&AuditEntry {
        audit_id: Uuid::now_v7(),
        tenant_id: order.tenant_id.clone(),
        order_id: order.id,
        at: now,
        actor: format!("{}:{}", p.role.as_str(), p.key_name),
        key_id: p.key_id.clone(),
        request_id: actor.request_id.clone(),
        action: event_type.to_owned(),
        from_status: Some(order.status),
        to_status: order.status,
        from_version: order.version,
        to_version: order.version,
        detail: detail.clone(),
    })?;
    let mut payload = item_json(item);
    payload["status"] = json!(order.status.as_str());
    payload["order_version"] = json!(order.version);
    payload["detail"] = detail;
    tx.outbox_append(&EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: order.tenant_id.clone(),
        event_type: event_type.to_owned(),
        aggregate_id: item.work_id,
        aggregate_version: item.version,
        occurred_at: now,
        trace_id: actor.request_id.clone(),
        payload: payload.to_string(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sla_gives_each_kind_its_hours_and_others_eight() {
        let sla = Sla::default();
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(sla.due("out_of_stock", t) - t, Duration::hours(24));
        assert_eq!(sla.due("not_released", t) - t, Duration::hours(2));
        assert_eq!(sla.due("after_sale", t) - t, Duration::hours(12));
        assert_eq!(sla.due("unknown_channel_status", t) - t, Duration::hours(8));
        assert!(sla.check().is_ok());
    }

    #[test]
    fn an_sla_out_of_range_or_with_a_bad_kind_is_refused_naming_the_field() {
        let mut sla = Sla::default();
        sla.hours.insert("no_waybill".into(), 0);
        assert_eq!(sla.check().unwrap_err().field, "hours.no_waybill");
        let mut sla = Sla::default();
        sla.hours.insert("Bad Kind".into(), 3);
        assert_eq!(sla.check().unwrap_err().rule, "invalid_kind");
        let sla = Sla {
            default_hours: SLA_HOURS_MAX + 1,
            ..Sla::default()
        };
        assert_eq!(sla.check().unwrap_err().field, "default_hours");
    }
}

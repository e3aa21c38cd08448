//! Creating an order and moving it: each writes order, audit entry and outbox event through one
//! `Tx`, or returns an error having written nothing (the backend rolls the `Tx` back to before the
//! call on error).

use crate::auth::{Permission, Principal};
use crate::error::CoreError;
use crate::ports::{AuditEntry, EventRecord, Tx};
use chrono::{DateTime, Utc};
use orderhub_domain::lifecycle::{self, Command, EventType, TransitionError};
use orderhub_domain::order::OrderDraft;
use orderhub_domain::{Order, OrderId};
use serde_json::json;
use uuid::Uuid;

/// Who is acting, for permission checks and the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Principal,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new order was stored.
    New(Order),
    /// The shop's order with that external id exists already; it is returned unchanged.
    Existing(Order),
}

/// The event payload: what a downstream system needs to act, without personal data (a consumer
/// that needs the address reads the order with a key that holds `pii:read`).
pub fn event_payload(o: &Order) -> serde_json::Value {
    json!({
        "order_id": o.id,
        "shop_id": o.shop_id,
        "channel": o.channel,
        "external_order_id": o.external_order_id,
        "status": o.status.as_str(),
        "version": o.version,
        "currency": o.currency.code(),
        "paid_amount": o.paid_amount.amount().to_string(),
        "warehouse_id": o.fulfillment.warehouse_id,
        "carrier": o.fulfillment.carrier,
        "tracking_no": o.fulfillment.tracking_no,
        "lines": o.lines.iter().map(|l| json!({
            "line_id": l.line_id, "sku": l.sku, "quantity": l.quantity,
            "paid_amount": l.paid_amount.amount().to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn record(
    tx: &mut dyn Tx,
    actor: &Actor,
    before: Option<&Order>,
    after: &Order,
    action: &str,
    event: EventType,
    detail: serde_json::Value,
) -> Result<(), CoreError> {
    let p = &actor.principal;
    tx.audit_append(&AuditEntry {
        audit_id: Uuid::now_v7(),
        tenant_id: after.tenant_id.clone(),
        order_id: after.id,
        at: after.updated_at,
        actor: format!("{}:{}", p.role.as_str(), p.key_name),
        key_id: p.key_id.clone(),
        request_id: actor.request_id.clone(),
        action: action.to_owned(),
        from_status: before.map(|b| b.status),
        to_status: after.status,
        from_version: before.map_or(0, |b| b.version),
        to_version: after.version,
        detail,
    })?;
    tx.outbox_append(&EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: after.tenant_id.clone(),
        event_type: event.as_str().to_owned(),
        aggregate_id: after.id,
        aggregate_version: after.version,
        occurred_at: after.updated_at,
        trace_id: actor.request_id.clone(),
        payload: event_payload(after),
    })?;
    Ok(())
}

/// Creates the order, or returns the one the shop already has under that external id. Two
/// concurrent creates of one (shop, external id) produce one order: the store's unique key decides
/// and the loser reads the winner's order back.
pub fn create_order(
    tx: &mut dyn Tx,
    actor: &Actor,
    draft: OrderDraft,
    now: DateTime<Utc>,
) -> Result<Created, CoreError> {
    let p = &actor.principal;
    if !p.can(Permission::OrdersCreate) {
        return Err(CoreError::Forbidden(format!(
            "role {} may not create orders",
            p.role.as_str()
        )));
    }
    if !p.sees_shop(&draft.shop_id) {
        return Err(CoreError::Forbidden(format!(
            "this API key is not scoped to shop {}",
            draft.shop_id
        )));
    }
    if let Some(existing) =
        tx.order_by_external(&p.tenant_id, &draft.shop_id, &draft.external_order_id)?
    {
        return Ok(Created::Existing(existing));
    }
    let (shop, ext) = (draft.shop_id.clone(), draft.external_order_id.clone());
    let order = Order::create(
        draft,
        OrderId::from_uuid(Uuid::now_v7()),
        p.tenant_id.clone(),
        now,
    )?;
    if !tx.order_insert(&order)? {
        // Lost a race with another transaction that committed the same external id first.
        let existing = tx
            .order_by_external(&p.tenant_id, &shop, &ext)?
            .ok_or_else(|| {
                crate::StoreError::new(
                    crate::StoreErrorKind::Conflict,
                    "order vanished after a unique violation",
                )
            })?;
        return Ok(Created::Existing(existing));
    }
    record(
        tx,
        actor,
        None,
        &order,
        "create",
        EventType::OrderCreated,
        json!({}),
    )?;
    Ok(Created::New(order))
}

/// Moves one order by one command, checking role, shop scope, lifecycle and guards.
pub fn transition(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    cmd: &Command,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let p = &actor.principal;
    let kind = cmd.kind();
    if !p.can(Permission::Transition(kind)) {
        return Err(CoreError::Forbidden(format!(
            "role {} may not {} orders",
            p.role.as_str(),
            kind.as_str()
        )));
    }
    let order = tx
        .order_get(&p.tenant_id, order_id)?
        .filter(|o| p.sees_shop(&o.shop_id))
        .ok_or(CoreError::NotFound)?;
    let policy = tx.tenant_policy(&p.tenant_id)?;
    let next = lifecycle::apply(&order, cmd, &policy, now).map_err(|e| match e {
        TransitionError::NotAllowed {
            command,
            status,
            version,
        } => CoreError::NotAllowed {
            command,
            status,
            version,
        },
        TransitionError::Guard(v) => CoreError::Validation(v),
    })?;
    tx.order_update(&next)?;
    let detail = match cmd {
        Command::Hold { reason } | Command::Cancel { reason } => json!({ "reason": reason }),
        Command::Allocate { warehouse_id } => json!({ "warehouse_id": warehouse_id }),
        Command::Ship {
            carrier,
            tracking_no,
            logistics_no,
        } => {
            json!({ "carrier": carrier, "tracking_no": tracking_no, "logistics_no": logistics_no })
        }
        Command::Pay { paid_at, .. } => json!({ "paid_at": next.paid_at.or(*paid_at) }),
        Command::Approve
        | Command::Release
        | Command::Pickup
        | Command::Deliver
        | Command::Complete => json!({}),
    };
    record(
        tx,
        actor,
        Some(&order),
        &next,
        kind.as_str(),
        kind.event(),
        detail,
    )?;
    Ok(next)
}

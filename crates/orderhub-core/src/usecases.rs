//! Creating an order and moving it: each writes order, audit entry and outbox event through one
//! `Tx`, or returns an error having written nothing (the backend rolls the `Tx` back to before the
//! call on error).

use crate::auth::{Permission, Principal};
use crate::error::CoreError;
use crate::ports::{AuditEntry, EventRecord, Tx};
use chrono::{DateTime, Utc};
use orderhub_domain::ids::{CarrierCode, Channel, WarehouseId};
use orderhub_domain::lifecycle::{self, Command, EventType, TransitionError};
use orderhub_domain::order::{OUT_OF_STOCK, OrderDraft};
use orderhub_domain::{ExternalOrderId, ShopId, Sku};
use orderhub_domain::{Order, OrderId, Status};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// Who is acting, for permission checks and the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Principal,
    pub request_id: String,
}

impl Actor {
    /// orderhub itself acting for `tenant` (fulfillment, intake, watchdogs): an admin principal
    /// named `what`, with a fresh request id so its audit entries and events can be followed.
    pub fn system(tenant: &orderhub_domain::TenantId, what: &str) -> Actor {
        Actor {
            principal: Principal {
                tenant_id: tenant.clone(),
                key_id: "system".into(),
                key_name: what.into(),
                role: crate::auth::Role::Admin,
                shops: None,
                pii_read: true,
            },
            request_id: format!("{what}-{}", Uuid::now_v7().simple()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new order was stored.
    New(Order),
    /// The shop's order with that external id exists already; it is returned unchanged.
    Existing(Order),
}

#[derive(Serialize)]
struct PayloadLine<'a> {
    line_id: u32,
    sku: &'a Sku,
    quantity: u32,
    paid_amount: String,
    /// Units still to ship when an after-sales case stopped some of the line (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    to_ship: Option<u32>,
}

#[derive(Serialize)]
struct Payload<'a> {
    order_id: OrderId,
    shop_id: &'a ShopId,
    channel: &'a Channel,
    external_order_id: &'a ExternalOrderId,
    status: &'static str,
    version: u64,
    currency: &'static str,
    paid_amount: String,
    warehouse_id: Option<&'a WarehouseId>,
    carrier: Option<&'a CarrierCode>,
    tracking_no: Option<&'a str>,
    lines: Vec<PayloadLine<'a>>,
}

/// The event payload, as JSON text: what a downstream system needs to act, without personal data
/// (a consumer that needs the address reads the order with a key that holds `pii:read`).
pub fn event_payload(o: &Order) -> String {
    let p = Payload {
        order_id: o.id,
        shop_id: &o.shop_id,
        channel: &o.channel,
        external_order_id: &o.external_order_id,
        status: o.status.as_str(),
        version: o.version,
        currency: o.currency.code(),
        paid_amount: o.paid_amount.format(o.currency),
        warehouse_id: o.fulfillment.warehouse_id.as_ref(),
        carrier: o.fulfillment.carrier.as_ref(),
        tracking_no: o.fulfillment.tracking_no.as_deref(),
        lines: o
            .lines
            .iter()
            .map(|l| PayloadLine {
                line_id: l.line_id,
                sku: &l.sku,
                quantity: l.quantity,
                paid_amount: l.paid_amount.format(o.currency),
                to_ship: Some(o.units_to_ship(l.line_id)).filter(|u| *u != l.quantity),
            })
            .collect(),
    };
    serde_json::to_string(&p).expect("serializing plain structs cannot fail")
}

/// Records a change of an order: its audit entry and its event (`event_type`), as every change does.
pub(crate) fn record(
    tx: &mut dyn Tx,
    actor: &Actor,
    before: Option<&Order>,
    after: &Order,
    action: &str,
    event_type: &str,
    detail: serde_json::Value,
) -> Result<(), CoreError> {
    record_with(
        tx,
        actor,
        before,
        after,
        (action, event_type),
        detail,
        serde_json::Map::new(),
    )
}

/// [`record`], with `extra` fields added to the event's payload (never personal data).
pub(crate) fn record_with(
    tx: &mut dyn Tx,
    actor: &Actor,
    before: Option<&Order>,
    after: &Order,
    (action, event_type): (&str, &str),
    detail: serde_json::Value,
    extra: serde_json::Map<String, serde_json::Value>,
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
        event_type: event_type.to_owned(),
        aggregate_id: after.id.as_uuid(),
        aggregate_version: after.version,
        occurred_at: after.updated_at,
        trace_id: actor.request_id.clone(),
        payload: if extra.is_empty() {
            event_payload(after)
        } else {
            let mut payload: serde_json::Value =
                serde_json::from_str(&event_payload(after)).unwrap_or_default();
            if let Some(p) = payload.as_object_mut() {
                p.extend(extra);
            }
            payload.to_string()
        },
    })?;
    Ok(())
}

/// Creates the order, or returns the one the shop already has under that external id: checks and
/// builds it ([`new_order`]), then stores it ([`insert_order`]).
pub fn create_order(
    tx: &mut dyn Tx,
    actor: &Actor,
    draft: OrderDraft,
    now: DateTime<Utc>,
) -> Result<Created, CoreError> {
    let order = new_order(actor, draft, now)?;
    insert_order(tx, actor, &order)
}

/// Checks that the caller may create this order and builds it, outside any transaction: nothing here
/// needs the store, so it need not run on a writer thread.
pub fn new_order(actor: &Actor, draft: OrderDraft, now: DateTime<Utc>) -> Result<Order, CoreError> {
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
    Ok(Order::create(
        draft,
        OrderId::from_uuid(Uuid::now_v7()),
        p.tenant_id.clone(),
        now,
    )?)
}

/// Stores an order built by [`new_order`], or returns the one the shop already has under that
/// external id. Two concurrent creates of one (shop, external id) produce one order: the store's
/// unique key decides and the loser reads the winner's order back.
///
/// The tenant's live rule set decides first (`crate::rules`): its tags and preferred carrier go
/// into the new order and its `create` audit entry names the set and the rules that fired
/// (holds and deadlines are decided at payment).
pub fn insert_order(tx: &mut dyn Tx, actor: &Actor, order: &Order) -> Result<Created, CoreError> {
    let mut order = order.clone();
    let applied = crate::rules::decide_on_create(tx, &mut order)?;
    crate::customers::bind_on_create(tx, &mut order)?;
    if crate::inventory::creation_hold(&order, order.created_at).is_some() {
        insert_holding_order(tx, actor, &order, applied.as_ref())
    } else {
        insert_plain_order(tx, actor, &order, applied.as_ref())
    }
}

/// What a `create` audit entry says: the rule set's decisions, if any, and the version of the
/// customer's invoice profile the order took, if it took one.
fn create_detail(applied: Option<&crate::rules::Applied>, order: &Order) -> serde_json::Value {
    let mut d = match applied {
        Some(a) => json!({ "rules": a.detail() }),
        None => json!({}),
    };
    if let (Some(id), Some(v)) = (&order.invoice_profile_id, order.invoice_profile_version) {
        d["invoice_profile"] = json!({ "profile_id": id, "version": v });
    }
    d
}

fn insert_plain_order(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    applied: Option<&crate::rules::Applied>,
) -> Result<Created, CoreError> {
    // No lookup first: the insert itself finds an existing order (one statement, not two), and it
    // also settles a race with another transaction creating the same external id.
    if !tx.order_insert(order)? {
        let existing = tx
            .order_by_external(&order.tenant_id, &order.shop_id, &order.external_order_id)?
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
        order,
        "create",
        EventType::OrderCreated.as_str(),
        create_detail(applied, order),
    )?;
    Ok(Created::New(order.clone()))
}

/// A presale or POS order holds its stock when it is created (or waits on backorder for it).
/// The existing order is looked up first so a repeat creates no second hold; should another
/// transaction still win the insert, the group is retried and finds it.
fn insert_holding_order(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    applied: Option<&crate::rules::Applied>,
) -> Result<Created, CoreError> {
    if let Some(existing) =
        tx.order_by_external(&order.tenant_id, &order.shop_id, &order.external_order_id)?
    {
        return Ok(Created::Existing(existing));
    }
    let mut order = order.clone();
    let now = order.created_at;
    crate::inventory::reserve_for_order(tx, actor, &mut order, now)?;
    // Created on backorder: stored without the flag, raised one version later with its event.
    let short = order.has_exception(OUT_OF_STOCK);
    set_flag(&mut order, OUT_OF_STOCK, false);
    if !tx.order_insert(&order)? {
        return Err(crate::StoreError::new(
            crate::StoreErrorKind::Conflict,
            "a concurrent create of this order committed first",
        )
        .into());
    }
    record(
        tx,
        actor,
        None,
        &order,
        "create",
        EventType::OrderCreated.as_str(),
        create_detail(applied, &order),
    )?;
    if short {
        let detail = stock_detail(true, "create");
        order = set_exception(tx, actor, order, OUT_OF_STOCK, true, detail, now)?;
    }
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
    crate::combine::refuse_whole_shipment(&order, kind)?;
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
        TransitionError::Stopped {
            command,
            exception,
            status,
            version,
        } => CoreError::Stopped {
            command,
            exception,
            status,
            version,
        },
        TransitionError::Guard(v) => CoreError::Validation(v),
    })?;
    let mut next = next;
    // At payment the live rule set gives the deadline (in this move) and decides a hold (the
    // next one).
    let (at_pay, ship_by) = if kind == lifecycle::CommandKind::Pay {
        crate::rules::decide_on_pay(tx, &mut next, now)?
    } else {
        (None, serde_json::Value::Null)
    };
    crate::combine::on_order_changed(tx, actor, &order, &mut next, now)?;
    crate::inventory::on_order_move(tx, actor, &mut next, kind, now)?;
    // Going on backorder (or leaving it) is announced as an exception of its own, one version
    // after the move, as every other exception is: the move is stored with the flag as it was.
    let stock_flag = stock_flag_change(&order, &next);
    if let Some(raised) = stock_flag {
        set_flag(&mut next, OUT_OF_STOCK, !raised);
    }
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
        Command::Pay { paid_at, .. } if ship_by.is_null() => {
            json!({ "paid_at": next.paid_at.or(*paid_at) })
        }
        Command::Pay { paid_at, .. } => {
            json!({ "paid_at": next.paid_at.or(*paid_at), "ship_by": ship_by })
        }
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
        kind.event().as_str(),
        detail,
    )?;
    crate::workflow::on_moved(tx, &order, &next, now)?;
    let mut stored = resolve_moved_on(tx, actor, next, now)?;
    if kind == lifecycle::CommandKind::Pay && stock_flag.is_none() {
        stored = crate::combine::auto_merge(tx, actor, stored, now)?;
    }
    if kind == lifecycle::CommandKind::Pay {
        stored = crate::rules::hold_on_pay(tx, stored, at_pay.as_ref(), now)?;
    }
    match stock_flag {
        Some(raised) => set_exception(
            tx,
            actor,
            stored,
            OUT_OF_STOCK,
            raised,
            stock_detail(raised, kind.as_str()),
            now,
        ),
        None => Ok(stored),
    }
}

/// `Some(true)` when `after` went on backorder (`out_of_stock`) and `before` was not, `Some(false)`
/// when it left it, `None` when nothing changed.
pub(crate) fn stock_flag_change(before: &Order, after: &Order) -> Option<bool> {
    let (had, has) = (
        before.has_exception(OUT_OF_STOCK),
        after.has_exception(OUT_OF_STOCK),
    );
    (had != has).then_some(has)
}

/// What an `out_of_stock` exception's event says about it.
pub(crate) fn stock_detail(raised: bool, by: &str) -> serde_json::Value {
    if raised {
        json!({ "reason": "not enough stock: the order waits on backorder (GET /v1/backorders)", "raised_by": by })
    } else {
        json!({ "resolved_by": by })
    }
}

pub(crate) fn set_flag(order: &mut Order, code: &str, on: bool) {
    order.exceptions.retain(|e| e != code);
    if on {
        order.exceptions.push(code.to_owned());
    } else {
        // Resolved, by whoever: no longer the channel's to lift.
        order.channel_seen.raised.retain(|e| e != code);
    }
}

/// Raises (`raised`) or resolves the exception `code` on `order` as stored: one more version with
/// its audit entry and its `exception.raised` / `exception.resolved` event. Returns the order as
/// stored.
pub(crate) fn set_exception(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: Order,
    code: &str,
    raised: bool,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let mut next = order.clone();
    set_flag(&mut next, code, raised);
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    let event = if raised {
        orderhub_domain::event_types::EXCEPTION_RAISED
    } else {
        orderhub_domain::event_types::EXCEPTION_RESOLVED
    };
    exception_event(tx, actor, &order, &next, event, code, detail)?;
    Ok(next)
}

/// Exceptions the watchdogs raise, and the status each one is about: once the order has left that
/// status the exception is resolved by the move itself.
pub const WATCHDOG_EXCEPTIONS: &[(&str, &[Status])] = &[
    ("not_released", &[Status::Paid, Status::Allocated]),
    ("no_waybill", &[Status::Released]),
    ("no_tracking", &[Status::Shipped]),
    (
        SHIP_BY_AT_RISK,
        &[
            Status::Paid,
            Status::OnHold,
            Status::Allocated,
            Status::Released,
        ],
    ),
];

/// An order still to ship whose ship-by deadline (`promised_ship_by`: the channel's promise, or a
/// deadline rule's) is near or past: raised by the fulfillment watchdog before the deadline, not
/// after; resolved by the shipment (or the cancellation) itself.
pub const SHIP_BY_AT_RISK: &str = "ship_by_at_risk";

fn exception_event(
    tx: &mut dyn Tx,
    actor: &Actor,
    before: &Order,
    after: &Order,
    event_type: &str,
    code: &str,
    detail: serde_json::Value,
) -> Result<(), CoreError> {
    // The exception's work item opens and closes with it (`workflow`).
    if event_type == orderhub_domain::event_types::EXCEPTION_RAISED {
        crate::workflow::on_raised(tx, after, code, after.updated_at)?;
    } else if event_type == orderhub_domain::event_types::EXCEPTION_RESOLVED {
        crate::workflow::on_resolved(tx, after, code, after.updated_at)?;
    }
    let p = &actor.principal;
    tx.audit_append(&AuditEntry {
        audit_id: Uuid::now_v7(),
        tenant_id: after.tenant_id.clone(),
        order_id: after.id,
        at: after.updated_at,
        actor: format!("{}:{}", p.role.as_str(), p.key_name),
        key_id: p.key_id.clone(),
        request_id: actor.request_id.clone(),
        action: event_type.to_owned(),
        from_status: Some(before.status),
        to_status: after.status,
        from_version: before.version,
        to_version: after.version,
        detail: json!({ "exception": code, "detail": detail }),
    })?;
    let mut payload: serde_json::Value =
        serde_json::from_str(&event_payload(after)).unwrap_or_default();
    payload["exception"] = json!(code);
    payload["detail"] = detail;
    tx.outbox_append(&EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: after.tenant_id.clone(),
        event_type: event_type.to_owned(),
        aggregate_id: after.id.as_uuid(),
        aggregate_version: after.version,
        occurred_at: after.updated_at,
        trace_id: actor.request_id.clone(),
        payload: payload.to_string(),
    })?;
    Ok(())
}

/// Raises exception `code` on an order (its status does not change): version + 1, audit entry,
/// `exception.raised`. `Ok(None)` when the order has it already.
pub fn raise_exception(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    code: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<Order>, CoreError> {
    raise(tx, actor, order_id, code, detail, now, false)
}

/// Raises exception `code` for the order's channel (intake): as [`raise_exception`], and the
/// exception is marked as the channel's, so the channel may lift it once it no longer gives a reason
/// for it. `Ok(None)` when the order has it already (then it stays whoever's it was).
pub fn raise_by_channel(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    code: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<Order>, CoreError> {
    raise(tx, actor, order_id, code, detail, now, true)
}

/// The one way an exception is raised: version + 1, audit entry, `exception.raised`; `by_channel`
/// marks it as the channel's own. `Ok(None)` when the order has it already.
fn raise(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    code: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
    by_channel: bool,
) -> Result<Option<Order>, CoreError> {
    let order = tx
        .order_get(&actor.principal.tenant_id, order_id)?
        .ok_or(CoreError::NotFound)?;
    if order.has_exception(code) {
        return Ok(None);
    }
    let mut next = order.clone();
    set_flag(&mut next, code, true);
    if by_channel {
        next.channel_seen.raised.push(code.to_owned());
    }
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    exception_event(
        tx,
        actor,
        &order,
        &next,
        orderhub_domain::event_types::EXCEPTION_RAISED,
        code,
        detail,
    )?;
    Ok(Some(next))
}

/// Resolves exception `code` because the order's channel no longer gives a reason for it: only an
/// exception the channel raised ([`raise_by_channel`]), never one an operator (or anyone else)
/// raised. `Ok(None)` when there is nothing of the channel's to lift.
pub fn lift_by_channel(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    code: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<Order>, CoreError> {
    lift_if(tx, actor, order_id, code, detail, now, |o| {
        o.channel_seen.raised.iter().any(|c| c == code)
    })
}

/// Resolves `code` on the order when it has it and `whose` says so: version + 1, audit entry,
/// `exception.resolved`. `Ok(None)` otherwise.
fn lift_if(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    code: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
    whose: impl Fn(&Order) -> bool,
) -> Result<Option<Order>, CoreError> {
    let order = tx
        .order_get(&actor.principal.tenant_id, order_id)?
        .ok_or(CoreError::NotFound)?;
    if !order.has_exception(code) || !whose(&order) {
        return Ok(None);
    }
    set_exception(tx, actor, order, code, false, detail, now).map(Some)
}

/// Resolves a watchdog's exception `code` whose reason has passed while the order stayed where it
/// was (an edit moved the ship-by deadline away): the order without it (version + 1), its audit
/// entry and `exception.resolved`. `Ok(None)` when the order does not have it.
pub fn resolve_by_watchdog(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    code: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<Order>, CoreError> {
    lift_if(tx, actor, order_id, code, detail, now, |_| true)
}

/// The longest reason an operator may give for resolving an exception.
pub const RESOLVE_REASON_MAX: usize = 500;

/// An operator resolves the open exception `code` on an order, giving `reason`: the order without
/// it (version + 1) with its audit entry (who, reason) and `exception.resolved` event, in the
/// caller's transaction. Resolving a stop ([`lifecycle::STOPS`]) lets the order move towards
/// shipment again. `out_of_stock` is refused: it is the stock's state (the order holds no
/// reservation), and resolves itself when stock arrives or the order is cancelled.
pub fn resolve_exception(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    code: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let p = &actor.principal;
    if !p.can(Permission::ExceptionsResolve) {
        return Err(CoreError::Forbidden(format!(
            "role {} may not {}",
            p.role.as_str(),
            Permission::ExceptionsResolve.describe()
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > RESOLVE_REASON_MAX {
        return Err(CoreError::Validation(
            orderhub_domain::ValidationError::new(
                "reason",
                if reason.is_empty() {
                    "required"
                } else {
                    "too_long"
                },
                format!("reason must be 1 to {RESOLVE_REASON_MAX} characters"),
            ),
        ));
    }
    let order = visible_order(tx, actor, order_id)?;
    if !order.has_exception(code) {
        return Err(CoreError::NoSuchException(code.to_owned()));
    }
    if code == OUT_OF_STOCK {
        return Err(CoreError::ExceptionNotResolvable(
            "out_of_stock resolves itself when stock for the order arrives (a receipt or \
             adjustment) or when the order is cancelled"
                .into(),
        ));
    }
    let detail = json!({ "reason": reason, "resolved_by": "operator" });
    set_exception(tx, actor, order, code, false, detail, now)
}

/// Resolves the watchdog exceptions of `order` (as it is after a move) whose status it has left,
/// each with an `exception.resolved` event. Returns the order as stored.
pub(crate) fn resolve_moved_on(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: Order,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let stale: Vec<String> = order
        .exceptions
        .iter()
        .filter(|e| {
            WATCHDOG_EXCEPTIONS
                .iter()
                .any(|(code, during)| code == e && !during.contains(&order.status))
        })
        .cloned()
        .collect();
    let mut cur = order;
    for code in stale {
        let by = json!({ "resolved_by": cur.status.as_str() });
        cur = set_exception(tx, actor, cur, &code, false, by, now)?;
    }
    Ok(cur)
}

/// Whether an order's next fulfillment step can be retried from `status`: not yet shipped, or
/// shipped and waiting for tracking or the channel's acknowledgement.
pub fn retry_allowed(status: Status) -> bool {
    matches!(
        status,
        Status::Paid
            | Status::Allocated
            | Status::Released
            | Status::Shipped
            | Status::InTransit
            | Status::Delivered
    )
}

/// Whether an order in `status` can still be given another carrier: before shipment.
pub fn carrier_switch_allowed(status: Status) -> bool {
    matches!(
        status,
        Status::Paid | Status::OnHold | Status::Allocated | Status::Released
    )
}

/// Whether the caller may retry or re-route fulfillment (admin, ops, warehouse).
pub fn may_steer_fulfillment(p: &Principal) -> bool {
    p.can(Permission::FulfillmentSteer)
}

fn require_steer(actor: &Actor) -> Result<(), CoreError> {
    if may_steer_fulfillment(&actor.principal) {
        Ok(())
    } else {
        Err(CoreError::Forbidden(format!(
            "role {} may not {}",
            actor.principal.role.as_str(),
            Permission::FulfillmentSteer.describe()
        )))
    }
}

/// Asks the workers to try the order's next step again now — allocation, release, the waybill,
/// the channel write-back — rather than at their watchdog's next round: an
/// `order.retry_requested` event in the order's own transaction (with its audit entry), which the
/// fulfillment and write-back targets act on. The steps are idempotent, so a retry of a step that
/// went through in the meantime does nothing.
pub fn request_retry(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    require_steer(actor)?;
    let order = visible_order(tx, actor, order_id)?;
    if !retry_allowed(order.status) {
        return Err(CoreError::NotNow {
            action: "retry",
            status: order.status,
            version: order.version,
        });
    }
    let detail = json!({ "exceptions": order.exceptions });
    save_change(
        tx,
        actor,
        &order,
        |_| {},
        now,
        ("retry", orderhub_domain::event_types::ORDER_RETRY_REQUESTED),
        detail,
    )
}

/// Routes the order's waybill to `carrier` (it must be on the tenant's whitelist) instead of the
/// default route — what an operator does when a carrier keeps failing an order. Only before
/// shipment; an `order.carrier_switched` event lets fulfillment try at once.
pub fn switch_carrier(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    carrier: CarrierCode,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    require_steer(actor)?;
    let order = visible_order(tx, actor, order_id)?;
    if !carrier_switch_allowed(order.status) {
        return Err(CoreError::NotNow {
            action: "switch the carrier of",
            status: order.status,
            version: order.version,
        });
    }
    let policy = tx.tenant_policy(&actor.principal.tenant_id)?;
    if !policy.carrier_whitelist.contains(&carrier) {
        return Err(CoreError::Validation(
            orderhub_domain::ValidationError::new(
                "carrier",
                "carrier_not_whitelisted",
                format!("carrier {carrier} is not on this tenant's carrier whitelist"),
            ),
        ));
    }
    let detail = json!({ "from": order.fulfillment.preferred_carrier, "to": carrier });
    save_change(
        tx,
        actor,
        &order,
        |o| o.fulfillment.preferred_carrier = Some(carrier),
        now,
        (
            "switch_carrier",
            orderhub_domain::event_types::ORDER_CARRIER_SWITCHED,
        ),
        detail,
    )
}

/// The order `order_id` as the caller may see it: another tenant's, or a shop outside the key's
/// scope, is not found.
pub(crate) fn visible_order(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
) -> Result<Order, CoreError> {
    tx.order_get(&actor.principal.tenant_id, order_id)?
        .filter(|o| actor.principal.sees_shop(&o.shop_id))
        .ok_or(CoreError::NotFound)
}

/// A change to an order that is not a lifecycle move: `edit`, the next version, and the audit
/// entry and event (`action`, `event_type`) with it.
fn save_change(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    edit: impl FnOnce(&mut Order),
    now: DateTime<Utc>,
    (action, event_type): (&str, &str),
    detail: serde_json::Value,
) -> Result<Order, CoreError> {
    let mut next = order.clone();
    edit(&mut next);
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    record(tx, actor, Some(order), &next, action, event_type, detail)?;
    Ok(next)
}

/// Records that the order's channel acknowledged the write-back of its shipment: `last_sync_at`,
/// version + 1, audit entry and `writeback.acknowledged`; a `writeback_failed` exception resolves.
pub fn mark_synced(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let order = tx
        .order_get(&actor.principal.tenant_id, order_id)?
        .ok_or(CoreError::NotFound)?;
    let next = order.clone();
    mark_synced_order(tx, actor, &order, next, detail, now)
}

/// [`mark_synced`] of `order` (as stored) into `next` (its changes so far, not yet written).
pub(crate) fn mark_synced_order(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    mut next: Order,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let order = order.clone();
    next.last_sync_at = Some(now);
    next.exceptions.retain(|e| e != "writeback_failed");
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    record(
        tx,
        actor,
        Some(&order),
        &next,
        "channel_writeback",
        orderhub_domain::event_types::WRITEBACK_ACKNOWLEDGED,
        detail,
    )?;
    if order.has_exception("writeback_failed") {
        exception_event(
            tx,
            actor,
            &order,
            &next,
            orderhub_domain::event_types::EXCEPTION_RESOLVED,
            "writeback_failed",
            json!({ "resolved_by": orderhub_domain::event_types::WRITEBACK_ACKNOWLEDGED }),
        )?;
    }
    Ok(next)
}

/// The exception fulfillment raises when a stopped order's waybill could not be cancelled (the
/// carrier refused, or kept failing); it resolves itself when the cancellation goes through.
pub const WAYBILL_CANCEL_FAILED: &str = "waybill_cancel_failed";
/// The exception fulfillment raises when a stopped order's parcel is already with the carrier:
/// only an interception (a call to the carrier, by a person) stops it now.
pub const INTERCEPT_PARCEL: &str = "intercept_parcel";

/// Records that the carrier cancelled waybill `tracking_no` of a stopped order: on the order
/// (`fulfillment.waybill_cancelled_at`, when the order holds that waybill; a waybill issued while
/// the stop was being raised never reached the order) with version + 1, an audit entry and a
/// `waybill.cancelled` event whose payload adds `cancelled` (carrier, tracking number); an open
/// `waybill_cancel_failed` resolves in the same transaction. Recorded once: a second call for a
/// waybill the order already records as cancelled changes nothing and returns `Ok(None)`.
pub fn record_waybill_cancelled(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    carrier: &CarrierCode,
    tracking_no: &str,
    now: DateTime<Utc>,
) -> Result<Option<Order>, CoreError> {
    let order = tx
        .order_get(&actor.principal.tenant_id, order_id)?
        .ok_or(CoreError::NotFound)?;
    let holds = order.fulfillment.tracking_no.as_deref() == Some(tracking_no);
    if holds && order.fulfillment.waybill_cancelled_at.is_some() {
        return Ok(None);
    }
    let mut next = order.clone();
    if holds {
        next.fulfillment.waybill_cancelled_at = Some(now);
    }
    let failed = next.has_exception(WAYBILL_CANCEL_FAILED);
    next.exceptions.retain(|e| e != WAYBILL_CANCEL_FAILED);
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    let cancelled = json!({ "carrier": carrier, "tracking_no": tracking_no, "on_order": holds });
    let p = &actor.principal;
    tx.audit_append(&AuditEntry {
        audit_id: Uuid::now_v7(),
        tenant_id: next.tenant_id.clone(),
        order_id: next.id,
        at: now,
        actor: format!("{}:{}", p.role.as_str(), p.key_name),
        key_id: p.key_id.clone(),
        request_id: actor.request_id.clone(),
        action: orderhub_domain::event_types::WAYBILL_CANCELLED.to_owned(),
        from_status: Some(order.status),
        to_status: next.status,
        from_version: order.version,
        to_version: next.version,
        detail: json!({ "cancelled": cancelled, "stop": lifecycle::stopped_by(&order) }),
    })?;
    let mut payload: serde_json::Value =
        serde_json::from_str(&event_payload(&next)).unwrap_or_default();
    payload["cancelled"] = cancelled;
    tx.outbox_append(&EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: next.tenant_id.clone(),
        event_type: orderhub_domain::event_types::WAYBILL_CANCELLED.to_owned(),
        aggregate_id: next.id.as_uuid(),
        aggregate_version: next.version,
        occurred_at: now,
        trace_id: actor.request_id.clone(),
        payload: payload.to_string(),
    })?;
    if failed {
        exception_event(
            tx,
            actor,
            &order,
            &next,
            orderhub_domain::event_types::EXCEPTION_RESOLVED,
            WAYBILL_CANCEL_FAILED,
            json!({ "resolved_by": orderhub_domain::event_types::WAYBILL_CANCELLED }),
        )?;
    }
    Ok(Some(next))
}

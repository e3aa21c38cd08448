//! After-sales cases (RMA) over the `Tx` port: open, approve, refuse, receive with QC, refund,
//! close; and the cases the channel opens (refund states reported per line).
//!
//! Every step is one order version: the case row, the order (its `stopped_lines`, its stop, its
//! cancellation when nothing is left), the stock (released reservation units, a return put back on
//! hand, a quarantine position), the audit entry (the order's timeline shows the case) and the
//! `after_sale.*` / `order.refunded` events commit together or not at all. The order is the
//! aggregate of the events and the row that serializes the steps: two approvals of one case, or an
//! approval and a shipment, meet on the order's row and version.

use crate::auth::Permission;
use crate::error::CoreError;
use crate::inventory::{self, ReturnInput};
use crate::ports::{QuarantineRow, Tx};
use crate::usecases::{self, Actor};
use chrono::{DateTime, Utc};
use orderhub_domain::after_sales::{
    self as rma, AfterSaleCase, CaseAction, CaseKind, CaseSource, CaseState, Effect, LineClaim, Qc,
    StoppedLine,
};
use orderhub_domain::channel_update::{AFTER_SALE, LineRefund, RefundState};
use orderhub_domain::event_types as ev;
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Order, OrderId, Sku, Status, ValidationError};
use serde_json::json;
use uuid::Uuid;

/// What an operator opens.
#[derive(Debug, Clone)]
pub struct OpenCase {
    pub kind: CaseKind,
    pub lines: Vec<LineClaim>,
    pub reason: String,
}

/// The result of a receipt's quality control.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub qc_passed: bool,
    /// Where the goods came back to; the order's warehouse when not given.
    pub warehouse_id: Option<WarehouseId>,
    pub note: Option<String>,
}

fn require(actor: &Actor, p: Permission) -> Result<(), CoreError> {
    crate::inventory::require(actor, p, &p.describe())
}

fn actor_name(actor: &Actor) -> String {
    let p = &actor.principal;
    format!("{}:{}", p.role.as_str(), p.key_name)
}

fn visible_order(tx: &mut dyn Tx, actor: &Actor, id: OrderId) -> Result<Order, CoreError> {
    tx.order_get(&actor.principal.tenant_id, id)?
        .filter(|o| actor.principal.sees_shop(&o.shop_id))
        .ok_or(CoreError::NotFound)
}

/// The case, if the caller may see its order's shop; locked with its row.
fn visible_case(tx: &mut dyn Tx, actor: &Actor, id: Uuid) -> Result<AfterSaleCase, CoreError> {
    tx.case_get(&actor.principal.tenant_id, id)?
        .filter(|c| actor.principal.sees_shop(&c.shop_id))
        .ok_or(CoreError::CaseNotFound)
}

fn not_now(why: &'static str, o: &Order) -> CoreError {
    CoreError::CaseNotNow {
        why,
        status: o.status,
        version: o.version,
    }
}

/// The case as events and audit entries carry it (no personal data).
pub fn case_json(c: &AfterSaleCase) -> serde_json::Value {
    json!({
        "case_id": c.case_id,
        "kind": c.kind.as_str(),
        "state": c.state.as_str(),
        "effect": c.effect.map(Effect::as_str),
        "amount": c.amount.to_string(),
        "lines": c.lines.iter().map(|l| json!({
            "line_id": l.line_id, "sku": l.sku, "quantity": l.quantity, "amount": l.amount.to_string(),
        })).collect::<Vec<_>>(),
        "replacement_order_id": c.replacement_order_id,
        "source": match &c.source { CaseSource::Operator => "operator", CaseSource::Channel { .. } => "channel" },
        "version": c.version,
    })
}

/// Writes one step of a case with its order: the order one version on (with `edit` applied), the
/// audit entry (`event_type` as its action, the case and `detail`) and the events.
#[allow(clippy::too_many_arguments)]
fn save(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    edit: impl FnOnce(&mut Order),
    case: &AfterSaleCase,
    event_types: &[&str],
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let mut next = order.clone();
    edit(&mut next);
    next.version += 1;
    next.updated_at = now;
    crate::combine::on_order_changed(tx, actor, order, &mut next, now)?;
    tx.order_update(&next)?;
    let mut d = json!({ "case": case_json(case) });
    if let (Some(m), serde_json::Value::Object(extra)) = (d.as_object_mut(), detail) {
        m.extend(extra);
    }
    let mut extra = serde_json::Map::new();
    extra.insert("after_sale".into(), case_json(case));
    usecases::record_with(
        tx,
        actor,
        Some(order),
        &next,
        (event_types[0], event_types[0]),
        d,
        extra.clone(),
    )?;
    for t in &event_types[1..] {
        tx.outbox_append(&crate::ports::EventRecord {
            event_id: Uuid::now_v7(),
            tenant_id: next.tenant_id.clone(),
            event_type: (*t).to_owned(),
            aggregate_id: next.id.as_uuid(),
            aggregate_version: next.version,
            occurred_at: now,
            trace_id: actor.request_id.clone(),
            payload: {
                let mut p: serde_json::Value =
                    serde_json::from_str(&usecases::event_payload(&next)).unwrap_or_default();
                if let Some(o) = p.as_object_mut() {
                    o.extend(extra.clone());
                }
                p.to_string()
            },
        })?;
    }
    let next = if crate::combine::waits_no_more(order, &next) {
        usecases::set_exception(
            tx,
            actor,
            next,
            orderhub_domain::order::OUT_OF_STOCK,
            false,
            usecases::stock_detail(false, "parcels_cut"),
            now,
        )?
    } else {
        next
    };
    crate::combine::complete_if_shipped(tx, actor, next, now)
}

fn step(
    case: &mut AfterSaleCase,
    action: CaseAction,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let version = case.version;
    case.step(action, &actor_name(actor), now)
        .map_err(|state| CoreError::CaseNotAllowed {
            action: action.as_str(),
            state,
            version,
        })
}

/// An operator opens a case on an order's lines (`requested`): the claims are checked to the cent
/// against every other case of the order, and the case keeps the effect approving it would have
/// as the order is now. `after_sale.requested`.
pub fn open(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    input: &OpenCase,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    require(actor, Permission::AfterSalesWrite)?;
    let reason = rma::text("reason", &input.reason)?;
    let order = visible_order(tx, actor, order_id)?;
    open_case(
        tx,
        actor,
        order,
        input.kind,
        &input.lines,
        reason,
        CaseSource::Operator,
        now,
    )
}

#[allow(clippy::too_many_arguments)]
fn open_case(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: Order,
    kind: CaseKind,
    claims: &[LineClaim],
    reason: String,
    source: CaseSource,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    rma::effect(kind, order.status).map_err(|n| not_now(n.why, &order))?;
    let t = actor.principal.tenant_id.clone();
    let others = tx.cases_of_order(&t, order.id)?;
    if others.len() >= rma::CASES_PER_ORDER_MAX {
        return Err(ValidationError::new(
            "order_id",
            "too_many_cases",
            format!(
                "an order may have at most {} after-sales cases",
                rma::CASES_PER_ORDER_MAX
            ),
        )
        .into());
    }
    let mut lines = rma::check_claims(&order, &others, claims)?;
    if kind == CaseKind::Exchange {
        // No money moves in an exchange: its lines claim units, not amounts.
        let zero = orderhub_domain::Money::ZERO;
        for l in &mut lines {
            l.amount = zero;
        }
    }
    let effect = effect_on(kind, &order, &lines).map_err(|n| not_now(n.why, &order))?;
    let case = AfterSaleCase {
        case_id: Uuid::now_v7(),
        order_id: order.id,
        shop_id: order.shop_id.clone(),
        kind,
        state: CaseState::Requested,
        amount: rma::total(&lines)?,
        lines,
        reason,
        source,
        effect: Some(effect),
        stop: order
            .has_exception(AFTER_SALE)
            .then(|| AFTER_SALE.to_owned()),
        qc: None,
        steps: Vec::new(),
        replacement_order_id: None,
        refusal: None,
        channel_writeback: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    if !tx.case_insert(&t, &case)? {
        return Err(crate::StoreError::new(
            crate::StoreErrorKind::Conflict,
            "a concurrent report opened this channel case first",
        )
        .into());
    }
    let detail = json!({ "reason": case.reason });
    let order = save(
        tx,
        actor,
        &order,
        |_| {},
        &case,
        &[ev::AFTER_SALE_REQUESTED],
        detail,
        now,
    )?;
    Ok((case, order))
}

/// Approves a requested case and applies its effect to the order ([`rma::effect`], decided by the
/// order's status now): stop the lines before release (their reserved units back to the pool; the
/// order cancelled through the usual cancel when nothing is left), stop the order for an
/// interception after release or shipment (`after_sale`), nothing for money only, a return
/// expected (`goods_returning`). When the order moved on since the case was opened and the effect
/// is no longer the case's, the approval is refused (409) unless `accept` names the new effect.
pub fn approve(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    accept: Option<Effect>,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    require(actor, Permission::AfterSalesWrite)?;
    let mut case = visible_case(tx, actor, case_id)?;
    let from = case.version;
    let order = visible_order(tx, actor, case.order_id)?;
    step(&mut case, CaseAction::Approve, actor, now)?;
    let effect = effect_on(case.kind, &order, &case.lines).map_err(|n| not_now(n.why, &order))?;
    let expected = accept.or(case.effect).unwrap_or(effect);
    if expected != effect {
        return Err(CoreError::EffectChanged {
            expected,
            now: effect,
            status: order.status,
            version: order.version,
        });
    }
    case.effect = Some(effect);
    if effect == Effect::ExpectReturn {
        step(&mut case, CaseAction::ExpectReturn, actor, now)?;
    }
    let t = actor.principal.tenant_id.clone();
    let mut detail = json!({ "effect": effect.as_str() });
    let mut stopped = Vec::new();
    match effect {
        Effect::StopLines => {
            for l in &case.lines {
                stopped.push(StoppedLine {
                    line_id: l.line_id,
                    quantity: l.quantity,
                    case_id,
                });
            }
        }
        Effect::InterceptAtWarehouse | Effect::InterceptParcel => {
            detail["intercept"] = json!(if effect == Effect::InterceptParcel {
                "the parcel has a waybill: intercept it (the order is stopped: after_sale)"
            } else {
                "released to the warehouse: pull the goods before they leave (the order is stopped: after_sale)"
            });
            case.stop = Some(AFTER_SALE.to_owned());
        }
        Effect::MoneyOnly | Effect::ExpectReturn => {}
    }
    let mut with_stops = order.clone();
    with_stops.stopped_lines.extend(stopped.iter().cloned());
    let left: u32 = with_stops
        .lines
        .iter()
        .map(|l| with_stops.units_to_ship(l.line_id))
        .sum();
    // A partly shipped order's parcels give their stopped units back as they are cut
    // (`combine::on_order_changed`, inside `save`).
    let releases = effect == Effect::StopLines && left > 0 && order.shipped_lines.is_empty();
    if releases {
        detail["stock"] = release_stopped(tx, actor, &order, &case, now)?;
    }
    let emptied = releases && reservation_emptied(tx, &order)?;
    tx.case_update(&t, &case, from)?;
    let mut order = save(
        tx,
        actor,
        &order,
        |o| {
            o.stopped_lines.extend(stopped);
            if emptied {
                o.reservation_id = None;
            }
        },
        &case,
        &[ev::AFTER_SALE_APPROVED],
        detail,
        now,
    )?;
    if effect == Effect::StopLines && left == 0 {
        // Nothing left to ship: the usual cancel (its stock release, its event).
        let cmd = Command::Cancel {
            reason: format!("after-sales case {case_id}: every line refunded before shipment"),
        };
        order = usecases::transition(tx, actor, order.id, &cmd, now)?;
    }
    if matches!(
        effect,
        Effect::InterceptAtWarehouse | Effect::InterceptParcel
    ) {
        let why = json!({
            "reason": "an approved after-sales case needs the goods intercepted",
            "case_id": case_id,
            "effect": effect.as_str(),
        });
        order =
            usecases::raise_exception(tx, actor, order.id, AFTER_SALE, why, now)?.unwrap_or(order);
    }
    Ok((case, order))
}

/// What approving a case of `kind` on `lines` does to `order` now: [`rma::effect`]'s table, except
/// that a refund of units a partly shipped order has not shipped yet (released, in parcels, some
/// shipped; every claimed unit among those still to ship) stops them: its unshipped parcels are
/// cut to what is left (`combine::on_order_changed`), and once nothing unshipped is left the
/// order has shipped.
fn effect_on(
    kind: CaseKind,
    order: &Order,
    lines: &[rma::CaseLine],
) -> Result<Effect, rma::NotNow> {
    let effect = rma::effect(kind, order.status)?;
    let partly_shipped = order.status == Status::Released
        && order.shipment_group.is_none()
        && !order.parcels.is_empty()
        && !order.shipped_lines.is_empty();
    let left = orderhub_domain::combine::remaining(order);
    let unshipped = |line: u32| {
        left.iter()
            .find(|l| l.line_id == line)
            .map_or(0, |l| l.quantity)
    };
    let claimed = |line: u32| -> u32 {
        lines
            .iter()
            .filter(|l| l.line_id == line)
            .map(|l| l.quantity)
            .sum()
    };
    if effect == Effect::InterceptAtWarehouse
        && partly_shipped
        && lines
            .iter()
            .all(|l| claimed(l.line_id) <= unshipped(l.line_id))
    {
        return Ok(Effect::StopLines);
    }
    Ok(effect)
}

/// Every reserved unit of the order was stopped (what is left to ship is untracked): the
/// reservation was released whole, and the order must hold none any more — a shipment then
/// consumes nothing instead of failing on a released reservation.
fn reservation_emptied(tx: &mut dyn Tx, order: &Order) -> Result<bool, CoreError> {
    Ok(match order.reservation_id {
        Some(r) => tx
            .reservation_get(&order.tenant_id, r)?
            .is_some_and(|rec| !rec.state.is_active()),
        None => false,
    })
}

/// Releases the reserved units of an approved case's lines (kits as their components).
fn release_stopped(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    case: &AfterSaleCase,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, CoreError> {
    let Some(reservation) = order.reservation_id else {
        return Ok(json!({ "released": null, "why": "the order holds no reservation" }));
    };
    let t = actor.principal.tenant_id.clone();
    let lines: Vec<(Sku, u32)> = case
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity))
        .collect();
    let units = inventory::tracked_units(tx, &t, &lines)?;
    let released = inventory::release_units(tx, actor, reservation, &units, now)?;
    Ok(json!({
        "reservation": reservation,
        "released": released.iter().map(|(s, q)| json!({"sku": s, "quantity": q})).collect::<Vec<_>>(),
    }))
}

/// Refuses a requested case: its lines count no more against what is left to refund.
pub fn refuse(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    require(actor, Permission::AfterSalesWrite)?;
    let reason = rma::text("reason", reason)?;
    let mut case = visible_case(tx, actor, case_id)?;
    let from = case.version;
    let order = visible_order(tx, actor, case.order_id)?;
    step(&mut case, CaseAction::Refuse, actor, now)?;
    // Kept on the case: a channel-opened case's refusal tells the channel why.
    case.refusal = Some(reason.clone());
    write_step(
        tx,
        actor,
        &order,
        &case,
        from,
        &[ev::AFTER_SALE_REFUSED],
        json!({ "reason": reason }),
        now,
    )
}

/// Closes a refunded case (or one whose goods failed QC, without a refund).
pub fn close(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    require(actor, Permission::AfterSalesWrite)?;
    simple_step(
        tx,
        actor,
        case_id,
        CaseAction::Close,
        ev::AFTER_SALE_CLOSED,
        json!({}),
        now,
    )
}

/// Records that the money went back: `after_sale.refunded` and `order.refunded`.
pub fn refund(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    require(actor, Permission::AfterSalesRefund)?;
    let mut case = visible_case(tx, actor, case_id)?;
    let from = case.version;
    let order = visible_order(tx, actor, case.order_id)?;
    step(&mut case, CaseAction::Refund, actor, now)?;
    write_step(
        tx,
        actor,
        &order,
        &case,
        from,
        &[ev::AFTER_SALE_REFUNDED, ev::ORDER_REFUNDED],
        json!({ "refunded": case.amount.to_string() }),
        now,
    )
}

fn simple_step(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    action: CaseAction,
    event_type: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    let mut case = visible_case(tx, actor, case_id)?;
    let from = case.version;
    let order = visible_order(tx, actor, case.order_id)?;
    step(&mut case, action, actor, now)?;
    write_step(tx, actor, &order, &case, from, &[event_type], detail, now)
}

#[allow(clippy::too_many_arguments)]
fn write_step(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    case: &AfterSaleCase,
    from: u64,
    events: &[&str],
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    tx.case_update(&actor.principal.tenant_id, case, from)?;
    let order = save(tx, actor, order, |_| {}, case, events, detail, now)?;
    Ok((case.clone(), order))
}

/// Another SKU (a variant) to ship instead of line `line_id`'s in an exchange.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub line_id: u32,
    pub sku: Sku,
}

/// The result of an exchange: the case (`exchanged`), the original order and the replacement.
#[derive(Debug, Clone)]
pub struct Exchanged {
    pub case: AfterSaleCase,
    pub order: Order,
    pub replacement: Order,
}

/// An exchange whose goods passed QC ships the replacement goods: a replacement order (kind
/// `exchange`, linked to the case and the original order; amount 0; the original's shop, channel,
/// buyer and receiver; per case line the same quantity of its SKU, or of the SKU `replacements`
/// names, which must be defined) is created and paid through the normal paths — it reserves its
/// stock (or waits on backorder) and flows through fulfillment as any order. Its external id is
/// `EX-<case id>`, so it is created once. The case is `exchanged` and names it;
/// `after_sale.exchanged` on the original order.
pub fn exchange(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    replacements: &[Replacement],
    now: DateTime<Utc>,
) -> Result<Exchanged, CoreError> {
    require(actor, Permission::AfterSalesWrite)?;
    let mut case = visible_case(tx, actor, case_id)?;
    let from = case.version;
    let order = visible_order(tx, actor, case.order_id)?;
    step(&mut case, CaseAction::Exchange, actor, now)?;
    let draft = replacement_draft(tx, &order, &case, replacements)?;
    let new = Order::create(
        draft,
        OrderId::from_uuid(Uuid::now_v7()),
        order.tenant_id.clone(),
        now,
    )?;
    let created = match usecases::insert_order(tx, actor, &new)? {
        usecases::Created::New(o) | usecases::Created::Existing(o) => o,
    };
    let pay = Command::Pay {
        paid_at: None,
        amount: None,
    };
    let replacement = usecases::transition(tx, actor, created.id, &pay, now)?;
    case.replacement_order_id = Some(replacement.id);
    let detail = json!({
        "replacement_order_id": replacement.id,
        "lines": replacement.lines.iter().map(|l| json!({"sku": l.sku, "quantity": l.quantity})).collect::<Vec<_>>(),
    });
    let (case, order) = write_step(
        tx,
        actor,
        &order,
        &case,
        from,
        &[ev::AFTER_SALE_EXCHANGED],
        detail,
        now,
    )?;
    Ok(Exchanged {
        case,
        order,
        replacement,
    })
}

/// The replacement order's draft: the original's shop, channel, buyer and receiver; the case's
/// lines at price 0, each with its replacement SKU when one is named (a defined SKU, for a line
/// of the case, named once).
fn replacement_draft(
    tx: &mut dyn Tx,
    order: &Order,
    case: &AfterSaleCase,
    replacements: &[Replacement],
) -> Result<orderhub_domain::order::OrderDraft, CoreError> {
    use orderhub_domain::order::{LineDraft, OrderDraft};
    for (i, r) in replacements.iter().enumerate() {
        let field = format!("replacements[{i}]");
        if !case.lines.iter().any(|l| l.line_id == r.line_id) {
            return Err(ValidationError::new(
                format!("{field}.line_id"),
                "not_in_case",
                format!("line {} is not a line of the case", r.line_id),
            )
            .into());
        }
        if replacements[..i].iter().any(|x| x.line_id == r.line_id) {
            return Err(ValidationError::new(
                format!("{field}.line_id"),
                "duplicate",
                format!("line {} is named twice", r.line_id),
            )
            .into());
        }
        if tx.sku_get(&order.tenant_id, &r.sku)?.is_none() {
            return Err(ValidationError::new(
                format!("{field}.sku"),
                "unknown_sku",
                format!("SKU {} is not defined", r.sku),
            )
            .into());
        }
    }
    let zero = orderhub_domain::Money::ZERO;
    let lines = case
        .lines
        .iter()
        .map(|l| {
            let named = replacements.iter().find(|r| r.line_id == l.line_id);
            let line = order.lines.iter().find(|o| o.line_id == l.line_id);
            let title = line.map_or_else(|| l.sku.to_string(), |o| o.title.clone());
            let is_kit = named.is_none() && line.is_some_and(|o| o.is_kit);
            LineDraft {
                external_line_id: None,
                sku: named.map_or_else(|| l.sku.clone(), |r| r.sku.clone()),
                title,
                quantity: l.quantity,
                unit_price: zero,
                discount: zero,
                paid_amount: None,
                is_kit,
            }
        })
        .collect();
    let ext = format!("EX-{}", case.case_id.simple());
    Ok(OrderDraft {
        shop_id: order.shop_id.clone(),
        channel: order.channel.clone(),
        external_order_id: orderhub_domain::ExternalOrderId::parse(&ext)?,
        channel_status: None,
        channel_updated_at: None,
        buyer: order.buyer.clone(),
        receiver: order.receiver.clone(),
        lines,
        currency: order.currency,
        goods_total: None,
        shipping_fee: zero,
        discount: None,
        paid_amount: None,
        kind: orderhub_domain::OrderKind::Exchange {
            case_id: case.case_id,
            original_order_id: order.id,
        },
        is_test: order.is_test,
        is_employee: order.is_employee,
        channel_created_at: None,
        promised_ship_by: None,
        invoice_profile_id: None,
        tags: vec!["exchange".into()],
        buyer_message: None,
        seller_memo: Some(format!(
            "exchange of order {} (case {})",
            order.id, case.case_id
        )),
    })
}

/// The warehouse that received a case's goods: the one named, else the order's; it must exist.
fn received_at(
    tx: &mut dyn Tx,
    t: &orderhub_domain::TenantId,
    order: &Order,
    r: &Receipt,
) -> Result<WarehouseId, CoreError> {
    let wh = r
        .warehouse_id
        .clone()
        .or_else(|| order.fulfillment.warehouse_id.clone())
        .ok_or_else(|| {
            ValidationError::new(
                "warehouse_id",
                "required",
                "the order names no warehouse: say which warehouse received the goods",
            )
        })?;
    if !tx.warehouses(t)?.iter().any(|w| w.warehouse_id == wh) {
        return Err(ValidationError::new(
            "warehouse_id",
            "unknown_warehouse",
            format!("warehouse {wh} is not defined"),
        )
        .into());
    }
    Ok(wh)
}

/// The returned goods of a case arrived and went through QC: `received`, then `qc_passed` (the
/// units back on hand: a `return` ledger row per SKU, backorders served) or `qc_failed` (a
/// quarantine position per SKU with its own ledger rows, never sellable, linked to the case).
pub fn receive(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    r: &Receipt,
    now: DateTime<Utc>,
) -> Result<(AfterSaleCase, Order), CoreError> {
    require(actor, Permission::AfterSalesReceive)?;
    let note = r
        .note
        .as_deref()
        .map(|n| rma::text("note", n))
        .transpose()?;
    let mut case = visible_case(tx, actor, case_id)?;
    let from = case.version;
    let order = visible_order(tx, actor, case.order_id)?;
    step(&mut case, CaseAction::Receive, actor, now)?;
    let t = actor.principal.tenant_id.clone();
    let wh = received_at(tx, &t, &order, r)?;
    let order = write_step(
        tx,
        actor,
        &order,
        &case,
        from,
        &[ev::AFTER_SALE_RECEIVED],
        json!({ "warehouse_id": wh }),
        now,
    )?
    .1;
    let from = case.version;
    let action = if r.qc_passed {
        CaseAction::QcPass
    } else {
        CaseAction::QcFail
    };
    step(&mut case, action, actor, now)?;
    case.qc = Some(Qc {
        passed: r.qc_passed,
        warehouse_id: wh.clone(),
        note: note.clone(),
        at: now,
    });
    let lines: Vec<(Sku, u32)> = case
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity))
        .collect();
    let units = inventory::tracked_units(tx, &t, &lines)?;
    let reference = format!("after_sale:{case_id}");
    let mut moved = Vec::new();
    for (sku, qty) in &units {
        if r.qc_passed {
            let input = ReturnInput {
                sku: sku.clone(),
                warehouse_id: wh.clone(),
                quantity: *qty,
                qc_passed: true,
                reference: Some(reference.clone()),
            };
            let row = inventory::return_inner(tx, actor, &input, now)?;
            moved.push(
                json!({"sku": sku, "quantity": qty, "on_hand": row.map(|r| r.level.on_hand)}),
            );
        } else {
            let after = tx.quarantine_move(&QuarantineRow {
                tenant_id: t.clone(),
                sku: sku.clone(),
                warehouse_id: wh.clone(),
                quantity: *qty,
                quantity_after: 0,
                case_id,
                order_id: order.id,
                reason: note.clone().unwrap_or_else(|| "qc_failed".into()),
                at: now,
            })?;
            moved.push(json!({"sku": sku, "quantity": qty, "quarantined": after}));
        }
    }
    let event = if r.qc_passed {
        ev::AFTER_SALE_QC_PASSED
    } else {
        ev::AFTER_SALE_QC_FAILED
    };
    let key = if r.qc_passed {
        "restocked"
    } else {
        "quarantined"
    };
    let mut detail = json!({ "warehouse_id": wh, "note": note });
    detail[key] = json!(moved);
    write_step(tx, actor, &order, &case, from, &[event], detail, now)
}

/// What the channel reported of each line's refund, turned into cases: a line newly `requested`
/// opens a `refund_only` case (one per channel refund per line: its key is the line and how many
/// channel cases the line had before, so a repeated report opens nothing new) linked to the
/// order's `after_sale` stop; `refunded` moves the line's open channel case to `refunded`
/// (approved by the channel first, if it was still requested; opened first if the channel never
/// reported the request); `rejected` refuses it. The channel's stop keeps the line from shipping
/// as before; what the case's approval would do to the stock is left to an operator (the channel
/// decided the refund, not orderhub), and nothing is written back to the channel. Returns the
/// order as stored.
pub fn from_channel(
    tx: &mut dyn Tx,
    actor: &Actor,
    mut order: Order,
    before: &[LineRefund],
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    if order.status == Status::PendingPayment || order.status == Status::Cancelled {
        return Ok(order);
    }
    let was = |line: u32| {
        before
            .iter()
            .find(|r| r.line_id == line)
            .map_or(RefundState::None, |r| r.state)
    };
    let reported: Vec<LineRefund> = order.channel_seen.refunds.clone();
    for r in reported {
        if r.state == was(r.line_id) || r.state == RefundState::None {
            continue;
        }
        order = channel_line(tx, actor, order, r.line_id, r.state, now)?;
    }
    Ok(order)
}

fn channel_line(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: Order,
    line_id: u32,
    state: RefundState,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let cases = tx.cases_of_order(&t, order.id)?;
    let of_line: Vec<&AfterSaleCase> = cases
        .iter()
        .filter(|c| matches!(c.source, CaseSource::Channel { .. }))
        .filter(|c| c.lines.iter().any(|l| l.line_id == line_id))
        .collect();
    let open_case = of_line
        .iter()
        .find(|c| !c.state.is_final() && c.state != CaseState::Refunded);
    let open = open_case.map(|c| c.case_id);
    // The channel withdrew or refused its refund: only a case still waiting for our decision is
    // refused with it. One an operator already approved (or took further) stays as it is — a
    // report must never fail the order's intake over a case (it would be retried forever).
    let waiting = open_case.is_some_and(|c| c.state == CaseState::Requested);
    let key = format!("{line_id}:{}", of_line.len() + 1);
    match (state, open) {
        (RefundState::Requested, Some(_)) | (RefundState::None, _) => Ok(order),
        (RefundState::Rejected, None) => Ok(order),
        (RefundState::Rejected, Some(_)) if !waiting => Ok(order),
        (RefundState::Rejected, Some(id)) => {
            let (_, o) = simple_step(
                tx,
                actor,
                id,
                CaseAction::Refuse,
                ev::AFTER_SALE_REFUSED,
                json!({ "reason": "refused or closed on the channel" }),
                now,
            )?;
            Ok(o)
        }
        (RefundState::Requested, None) => {
            Ok(open_for_channel(tx, actor, order, line_id, key, now)?
                .map_or_else(|o| o, |(_, o)| o))
        }
        (RefundState::Refunded, open) => {
            let id = match open {
                Some(id) => id,
                None => match open_for_channel(tx, actor, order, line_id, key, now)? {
                    Ok((c, _)) => c.case_id,
                    Err(o) => return Ok(o),
                },
            };
            channel_refunded(tx, actor, id, now)
        }
    }
}

/// Opens the channel's case for what is left of the line. `Err(order)`: nothing is left to claim
/// (other cases hold the whole line) or the order is past what a refund case takes; nothing opened.
fn open_for_channel(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: Order,
    line_id: u32,
    key: String,
    now: DateTime<Utc>,
) -> Result<Result<(AfterSaleCase, Order), Order>, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let cases = tx.cases_of_order(&t, order.id)?;
    let claimed = rma::claimed(&cases);
    let Some(line) = order.lines.iter().find(|l| l.line_id == line_id) else {
        return Ok(Err(order));
    };
    let left = line
        .quantity
        .saturating_sub(claimed.get(&line_id).map_or(0, |c| c.0));
    if left == 0
        || cases.len() >= rma::CASES_PER_ORDER_MAX
        || rma::effect(CaseKind::RefundOnly, order.status).is_err()
    {
        return Ok(Err(order));
    }
    let claim = [LineClaim {
        line_id,
        quantity: left,
        amount: None,
    }];
    let reason = "the buyer asked for a refund on the channel".to_owned();
    let source = CaseSource::Channel { key };
    open_case(
        tx,
        actor,
        order,
        CaseKind::RefundOnly,
        &claim,
        reason,
        source,
        now,
    )
    .map(Ok)
}

/// The channel refunded the line: the case approved by the channel (without touching the order's
/// stock: the channel's `after_sale` stop holds the line) and refunded.
fn channel_refunded(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let mut case = tx.case_get(&t, case_id)?.ok_or(CoreError::CaseNotFound)?;
    let mut order = tx
        .order_get(&t, case.order_id)?
        .ok_or(CoreError::NotFound)?;
    if case.state == CaseState::Requested {
        let from = case.version;
        step(&mut case, CaseAction::Approve, actor, now)?;
        // The channel decided: nothing of the order's stock moves here.
        case.effect = None;
        let detail = json!({ "effect": null, "why": "refunded on the channel: the channel's after_sale stop holds the line" });
        order = write_step(
            tx,
            actor,
            &order,
            &case,
            from,
            &[ev::AFTER_SALE_APPROVED],
            detail,
            now,
        )?
        .1;
    }
    if case.state == CaseState::Approved && case.kind == CaseKind::RefundOnly {
        let from = case.version;
        step(&mut case, CaseAction::Refund, actor, now)?;
        let detail = json!({ "refunded": case.amount.to_string(), "by": "channel" });
        order = write_step(
            tx,
            actor,
            &order,
            &case,
            from,
            &[ev::AFTER_SALE_REFUNDED, ev::ORDER_REFUNDED],
            detail,
            now,
        )?
        .1;
    }
    Ok(order)
}

/// The name intake's system actor has (`Actor::system(tenant, CHANNEL_ACTOR)`): a case step by it
/// is the channel's own decision (reported by the channel), never written back to the channel.
pub const CHANNEL_ACTOR: &str = "intake";

/// A seller's decision on a channel-opened case, to be written back to the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerDecision {
    /// `Approve` or `Refuse`.
    pub action: CaseAction,
    /// The operator's reason, for a refusal.
    pub refusal: Option<String>,
}

/// The decision on a channel-opened case the channel has not been told yet: its approve or refuse
/// step, unless the channel made it itself (a step by intake's actor, [`CHANNEL_ACTOR`]) or the
/// write-back is recorded already. `None` for operator cases and undecided ones.
pub fn decision_to_write_back(c: &AfterSaleCase) -> Option<SellerDecision> {
    if !matches!(c.source, CaseSource::Channel { .. }) || c.channel_writeback.is_some() {
        return None;
    }
    let channel = format!("{}:{CHANNEL_ACTOR}", crate::auth::Role::Admin.as_str());
    let s = c
        .steps
        .iter()
        .find(|s| matches!(s.action, CaseAction::Approve | CaseAction::Refuse))?;
    if s.actor == channel {
        return None;
    }
    Some(SellerDecision {
        action: s.action,
        refusal: (s.action == CaseAction::Refuse).then(|| c.refusal.clone().unwrap_or_default()),
    })
}

/// Records how a channel-opened case's decision reached the channel (once: `Ok(false)` when it
/// is recorded already, nothing written). The case keeps its state and version; the order moves
/// one version with the audit entry (`after_sale_channel_writeback`) and a `writeback.acknowledged`
/// event whose payload carries `after_sale` (the case) and `refund_writeback` (decision, outcome,
/// refund id), so the order's timeline shows it.
pub fn record_channel_writeback(
    tx: &mut dyn Tx,
    actor: &Actor,
    case_id: Uuid,
    wb: rma::ChannelWriteback,
    now: DateTime<Utc>,
) -> Result<bool, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let mut case = tx.case_get(&t, case_id)?.ok_or(CoreError::CaseNotFound)?;
    if case.channel_writeback.is_some() {
        return Ok(false);
    }
    let order = tx
        .order_get(&t, case.order_id)?
        .ok_or(CoreError::NotFound)?;
    let detail = json!({
        "case_id": case.case_id,
        "decision": wb.decision.as_str(),
        "outcome": wb.outcome.as_str(),
        "refund_id": wb.refund_id,
    });
    case.channel_writeback = Some(wb);
    tx.case_update(&t, &case, case.version)?;
    let mut next = order.clone();
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    // The event names the case and the decision, so a subscriber tells it from a shipment's.
    let mut extra = serde_json::Map::new();
    extra.insert("after_sale".into(), case_json(&case));
    extra.insert("refund_writeback".into(), detail.clone());
    usecases::record_with(
        tx,
        actor,
        Some(&order),
        &next,
        ("after_sale_channel_writeback", ev::WRITEBACK_ACKNOWLEDGED),
        detail,
        extra,
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderhub_domain::after_sales::{ChannelWriteback, WritebackOutcome};
    use orderhub_domain::{Money, ShopId};

    fn channel_case() -> AfterSaleCase {
        AfterSaleCase {
            case_id: Uuid::now_v7(),
            order_id: OrderId::from_uuid(Uuid::now_v7()),
            shop_id: ShopId::parse("s").unwrap(),
            kind: CaseKind::RefundOnly,
            state: CaseState::Requested,
            lines: vec![],
            amount: Money::ZERO,
            reason: "r".into(),
            source: CaseSource::Channel { key: "1:1".into() },
            effect: Some(Effect::StopLines),
            stop: None,
            qc: None,
            steps: vec![],
            replacement_order_id: None,
            refusal: None,
            channel_writeback: None,
            version: 1,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn only_a_sellers_unrecorded_decision_on_a_channel_case_is_written_back() {
        let at = DateTime::UNIX_EPOCH;
        let mut c = channel_case();
        assert_eq!(decision_to_write_back(&c), None, "undecided");
        c.step(CaseAction::Refuse, "admin:desk", at).unwrap();
        c.refusal = Some("已发货".into());
        assert_eq!(
            decision_to_write_back(&c),
            Some(SellerDecision {
                action: CaseAction::Refuse,
                refusal: Some("已发货".into())
            })
        );
        // Recorded once: never again.
        c.channel_writeback = Some(ChannelWriteback {
            decision: CaseAction::Refuse,
            outcome: WritebackOutcome::Acknowledged,
            refund_id: Some("1".into()),
            at,
        });
        assert_eq!(decision_to_write_back(&c), None);
        // The channel's own decision (intake's actor) is not told back to the channel.
        let mut c = channel_case();
        c.step(CaseAction::Approve, &format!("admin:{CHANNEL_ACTOR}"), at)
            .unwrap();
        assert_eq!(decision_to_write_back(&c), None);
        // An operator's own case has no channel to tell.
        let mut c = channel_case();
        c.source = CaseSource::Operator;
        c.step(CaseAction::Approve, "admin:desk", at).unwrap();
        assert_eq!(decision_to_write_back(&c), None);
    }
}

//! Inventory use cases: the SKU master, warehouses, receipts and adjustments, reservations and their
//! moves, and the expiry sweep. Each movement writes the stock position, a ledger row with the
//! balance after it and an `inventory.changed` event through one `Tx`; the arithmetic is
//! `orderhub_domain::inventory`'s.

use crate::auth::Permission;
use crate::error::CoreError;
use crate::ports::{
    ChannelPolicy, EventRecord, LedgerRow, ReservationRecord, ReservedLine, SkuRecord, StockRow,
    Tx, WarehouseRecord,
};
use crate::usecases::Actor;
use chrono::{DateTime, Duration, Utc};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::inventory::{
    self, DeductionMode, InventoryError, KitBook, Movement, ReleaseReason, ReservationCommand,
    ReservationError, ReservationState, WarehouseCover,
};
use orderhub_domain::lifecycle::CommandKind;
use orderhub_domain::order::OUT_OF_STOCK;
use orderhub_domain::{Order, OrderKind, Sku, Status, TenantId, ValidationError};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// How long a checkout hold lasts when the caller does not say.
pub const HOLD_DEFAULT: Duration = Duration::minutes(5);
/// The longest hold a caller may ask for: a day covers presale deposits taken overnight; longer
/// holds belong to committed reservations.
pub const HOLD_MAX: Duration = Duration::hours(24);
/// Lines in one reservation, as for orders.
pub const RESERVATION_LINES_MAX: usize = 500;

/// Refuses `actor` unless its role has `p` (`what`: the refused action, for the message).
pub(crate) fn require(actor: &Actor, p: Permission, what: &str) -> Result<(), CoreError> {
    if actor.principal.can(p) {
        Ok(())
    } else {
        Err(CoreError::Forbidden(format!(
            "role {} may not {what}",
            actor.principal.role.as_str()
        )))
    }
}

/// A validation error naming the field and the rule.
pub(crate) fn invalid(field: &str, rule: &'static str, message: impl Into<String>) -> CoreError {
    CoreError::Validation(ValidationError::new(field, rule, message))
}

/// The id events about one stock position carry: stable for (tenant, sku, warehouse).
pub fn position_id(tenant: &TenantId, sku: &Sku, wh: &WarehouseId) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("orderhub/stock/{tenant}/{sku}/{wh}").as_bytes(),
    )
}

#[derive(Serialize)]
struct ChangedPayload<'a> {
    sku: &'a Sku,
    warehouse_id: &'a WarehouseId,
    movement: &'static str,
    quantity: i64,
    on_hand: i64,
    reserved: i64,
    available: i64,
    reference: Option<&'a str>,
}

fn movement_name(m: &Movement) -> (&'static str, i64, Option<String>) {
    match m {
        Movement::Receipt { qty } => ("receipt", *qty, None),
        Movement::Adjustment { delta, reason } => ("adjustment", *delta, Some(reason_name(reason))),
        Movement::Reserve { qty } => ("reserve", *qty, None),
        Movement::Release { qty } => ("release", -*qty, None),
        Movement::Consume { qty } => ("consume", -*qty, None),
        Movement::Return { qty } => ("return", *qty, None),
    }
}

fn reason_name(r: &inventory::AdjustmentReason) -> String {
    match r {
        inventory::AdjustmentReason::StockTake => "stock_take".into(),
        inventory::AdjustmentReason::Damaged => "damaged".into(),
        inventory::AdjustmentReason::Found => "found".into(),
        inventory::AdjustmentReason::ErpSync => "erp_sync".into(),
        inventory::AdjustmentReason::Other(s) => s.clone(),
    }
}

/// Applies one movement to one position: stock row, ledger row, event. Nothing is written when the
/// domain refuses.
fn move_stock(
    tx: &mut dyn Tx,
    actor: &Actor,
    sku: &Sku,
    wh: &WarehouseId,
    m: Movement,
    reference: Option<&str>,
    now: DateTime<Utc>,
) -> Result<StockRow, CoreError> {
    let tenant = &actor.principal.tenant_id;
    let row = tx.stock_get(tenant, sku, wh)?.unwrap_or_default();
    let level = row.level.apply(&m).map_err(|e| match e {
        InventoryError::Insufficient {
            requested,
            available,
        } => CoreError::OutOfStock {
            field: "quantity".into(),
            sku: sku.to_string(),
            requested,
            available,
        },
        InventoryError::WouldGoNegative { what } => invalid(
            "quantity",
            "would_go_negative",
            format!("this would take {what} of {sku} in {wh} below zero"),
        ),
        InventoryError::Invalid(v) => CoreError::Validation(v),
    })?;
    let next = StockRow {
        level,
        version: row.version + 1,
    };
    tx.stock_put(tenant, sku, wh, next, now)?;
    let (name, quantity, reason) = movement_name(&m);
    tx.ledger_append(&LedgerRow {
        tenant_id: tenant.clone(),
        sku: sku.clone(),
        warehouse_id: wh.clone(),
        movement: name,
        quantity,
        reason,
        reference: reference.map(str::to_owned),
        after: level,
        at: now,
    })?;
    let payload = ChangedPayload {
        sku,
        warehouse_id: wh,
        movement: name,
        quantity,
        on_hand: level.on_hand,
        reserved: level.reserved,
        available: level.available(),
        reference,
    };
    tx.outbox_append(&EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: tenant.clone(),
        event_type: orderhub_domain::event_types::INVENTORY_CHANGED.into(),
        aggregate_id: position_id(tenant, sku, wh),
        aggregate_version: next.version,
        occurred_at: now,
        trace_id: actor.request_id.clone(),
        payload: serde_json::to_string(&payload).expect("plain struct serializes"),
    })?;
    update_channel_listings(tx, actor, sku, now)?;
    crate::listings::on_stock_moved(tx, tenant, sku, now)?;
    Ok(next)
}

pub fn define_sku(
    tx: &mut dyn Tx,
    actor: &Actor,
    rec: &SkuRecord,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    require(actor, Permission::MasterData, "define SKUs")?;
    let t = &actor.principal.tenant_id;
    if rec.title.trim().is_empty() {
        return Err(invalid("title", "required", "title must not be empty"));
    }
    if let Some(w) = rec.weight_kg {
        weight("weight_kg", w)?;
    }
    if let Some(parts) = &rec.components {
        if parts.is_empty() {
            return Err(invalid(
                "components",
                "required",
                "a kit needs at least one component",
            ));
        }
        for (i, (part, n)) in parts.iter().enumerate() {
            if *n == 0 {
                return Err(invalid(
                    &format!("components[{i}].quantity"),
                    "must_be_positive",
                    "quantity must be at least 1",
                ));
            }
            if part == &rec.sku {
                return Err(invalid(
                    &format!("components[{i}].sku"),
                    "kit_contains_itself",
                    "a kit cannot contain itself",
                ));
            }
            match tx.sku_get(t, part)? {
                None => {
                    return Err(invalid(
                        &format!("components[{i}].sku"),
                        "unknown_sku",
                        format!("define {part} before the kit"),
                    ));
                }
                Some(p) if p.components.is_some() => {
                    return Err(invalid(
                        &format!("components[{i}].sku"),
                        "nested_kit",
                        "a kit's components must be plain SKUs",
                    ));
                }
                Some(_) => {}
            }
        }
    }
    tx.sku_put(t, rec, now)?;
    crate::listings::on_sku_defined(tx, t, &rec.sku, now)?;
    Ok(())
}

pub fn define_warehouse(
    tx: &mut dyn Tx,
    actor: &Actor,
    rec: &WarehouseRecord,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    require(actor, Permission::MasterData, "define warehouses")?;
    if rec.name.trim().is_empty() {
        return Err(invalid("name", "required", "name must not be empty"));
    }
    if let Some(w) = rec.parcel_max_kg {
        weight("parcel_max_kg", w)?;
    }
    if let Some(s) = &rec.sender {
        for (field, v) in [
            ("sender.name", s.name.expose()),
            ("sender.phone", s.phone.expose()),
            ("sender.province", s.province.as_str()),
            ("sender.city", s.city.as_str()),
            ("sender.detail", s.detail.expose()),
        ] {
            if v.trim().is_empty() {
                return Err(invalid(
                    field,
                    "required",
                    format!("{field} must not be empty: carriers print it on the label"),
                ));
            }
        }
    }
    tx.warehouse_put(&actor.principal.tenant_id, rec, now)?;
    Ok(())
}

/// The heaviest unit (or parcel) a waybill may declare, in kilograms: express carriers' heaviest
/// services end well below a tonne; beyond is freight, which no carrier here books.
pub const WEIGHT_KG_MAX: u32 = 1_000;
/// Weights are kept to the gram, as carriers take them.
pub const WEIGHT_DECIMALS_MAX: u32 = 3;

/// A weight in kilograms: above zero, at most [`WEIGHT_KG_MAX`], to the gram.
fn weight(field: &str, w: rust_decimal::Decimal) -> Result<(), CoreError> {
    if w <= rust_decimal::Decimal::ZERO || w > rust_decimal::Decimal::from(WEIGHT_KG_MAX) {
        return Err(invalid(
            field,
            "out_of_range",
            format!("{field} must be above 0 and at most {WEIGHT_KG_MAX} kg"),
        ));
    }
    if w.normalize().scale() > WEIGHT_DECIMALS_MAX {
        return Err(invalid(
            field,
            "too_precise",
            format!("{field} takes at most {WEIGHT_DECIMALS_MAX} decimal places (grams)"),
        ));
    }
    Ok(())
}

/// A plain SKU of the master that can hold stock, and a known warehouse.
fn stock_position(
    tx: &mut dyn Tx,
    tenant: &TenantId,
    sku: &Sku,
    wh: &WarehouseId,
) -> Result<(), CoreError> {
    match tx.sku_get(tenant, sku)? {
        None => {
            return Err(invalid(
                "sku",
                "unknown_sku",
                format!("{sku} is not in the SKU master"),
            ));
        }
        Some(s) if s.components.is_some() => {
            return Err(invalid(
                "sku",
                "kit_has_no_stock",
                format!("{sku} is a kit; receive its components"),
            ));
        }
        Some(_) => {}
    }
    if !tx.warehouses(tenant)?.iter().any(|w| &w.warehouse_id == wh) {
        return Err(invalid(
            "warehouse_id",
            "unknown_warehouse",
            format!("warehouse {wh} is not defined"),
        ));
    }
    Ok(())
}

/// Goods received into a warehouse.
pub fn receive(
    tx: &mut dyn Tx,
    actor: &Actor,
    sku: &Sku,
    wh: &WarehouseId,
    qty: i64,
    reference: Option<&str>,
    now: DateTime<Utc>,
) -> Result<StockRow, CoreError> {
    require(actor, Permission::StockMove, "receive stock")?;
    let t = actor.principal.tenant_id.clone();
    stock_position(tx, &t, sku, wh)?;
    let row = move_stock(
        tx,
        actor,
        sku,
        wh,
        Movement::Receipt { qty },
        reference,
        now,
    )?;
    serve_backorders(tx, actor, sku, now)?;
    Ok(row)
}

/// Orders served from backorder per receipt at most; the rest wait for the next receipt.
const BACKORDERS_PER_RECEIPT_MAX: u32 = 200;

/// Reserves stock for orders waiting on `sku`, in payment order, until one cannot be served: a later
/// order never jumps ahead of an earlier one.
fn serve_backorders(
    tx: &mut dyn Tx,
    actor: &Actor,
    sku: &Sku,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = actor.principal.tenant_id.clone();
    for id in tx.backorders_for_sku(&t, sku, BACKORDERS_PER_RECEIPT_MAX)? {
        let Some(order) = tx.order_get(&t, id)? else {
            tx.backorder_remove(&t, id)?;
            continue;
        };
        if !order.has_exception(OUT_OF_STOCK) || order.status.is_terminal() {
            tx.backorder_remove(&t, id)?;
            continue;
        }
        let mut next = order.clone();
        match reserve_for_order(tx, actor, &mut next, now)? {
            Reserved::Yes | Reserved::Untracked => {
                tx.backorder_remove(&t, id)?;
                // An allocated order went on backorder when the channel changed its goods: its
                // allocation follows the stock.
                follow_reservation(tx, &t, &mut next)?;
                // The reservation is one version; the exception it resolves, the next.
                next.exceptions.push(OUT_OF_STOCK.to_owned());
                next.version += 1;
                next.updated_at = now;
                tx.order_update(&next)?;
                crate::usecases::record(
                    tx,
                    actor,
                    Some(&order),
                    &next,
                    "stock_reserved",
                    orderhub_domain::event_types::ORDER_STOCK_RESERVED,
                    serde_json::json!({ "sku": sku }),
                )?;
                let detail = crate::usecases::stock_detail(false, "stock_reserved");
                crate::usecases::set_exception(tx, actor, next, OUT_OF_STOCK, false, detail, now)?;
            }
            Reserved::Short => break,
        }
    }
    Ok(())
}

/// What reserving an order's stock came to.
pub(crate) enum Reserved {
    Yes,
    /// None of its SKUs are in the SKU master: nothing to reserve.
    Untracked,
    /// Not enough stock; the order waits on backorder for the SKU short.
    Short,
}

/// Reserves the order's tracked lines (SKUs in the master) in one warehouse covering the receiver's
/// province, committed at once (the order is paid). Short of stock, the order gets the
/// `out_of_stock` exception and waits on backorder for the SKU short.
pub(crate) fn reserve_for_order(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &mut Order,
    now: DateTime<Utc>,
) -> Result<Reserved, CoreError> {
    // A split order's parcels waiting on backorder reserve only their own units.
    if order
        .parcels
        .iter()
        .any(|p| p.state == orderhub_domain::combine::ParcelState::Waiting)
    {
        return crate::combine::reserve_waiting(tx, actor, order, now);
    }
    let t = actor.principal.tenant_id.clone();
    let mut lines = Vec::new();
    for l in &order.lines {
        // Units an after-sales case stopped are neither reserved nor shipped.
        let units = order.units_to_ship(l.line_id);
        if units > 0 && tx.sku_get(&t, &l.sku)?.is_some() {
            lines.push((l.sku.clone(), units));
        }
    }
    if lines.is_empty() {
        order.exceptions.retain(|e| e != OUT_OF_STOCK);
        return Ok(Reserved::Untracked);
    }
    // Unpaid presale and POS orders hold their stock; paid orders commit it at once.
    let hold_for = if order.status == Status::PendingPayment {
        creation_hold(order, now)
    } else {
        None
    };
    let input = ReserveInput {
        reference: order.id.to_string(),
        lines,
        region: Some(order.receiver.province.clone()).filter(|p| !p.is_empty()),
        warehouse: None,
        mode: deduction_mode(order),
        hold_for,
    };
    match reserve_routed(tx, actor, order, &input, now) {
        Ok(rec) => {
            order.reservation_id = Some(rec.reservation_id);
            order.exceptions.retain(|e| e != OUT_OF_STOCK);
            Ok(Reserved::Yes)
        }
        Err(CoreError::OutOfStock { sku, .. }) => {
            let sku = Sku::parse(&sku)?;
            if !order.has_exception(OUT_OF_STOCK) {
                order.exceptions.push(OUT_OF_STOCK.to_owned());
            }
            let paid_at = order.paid_at.map_or(now, |p| p.to_utc());
            tx.backorder_remove(&t, order.id)?;
            tx.backorder_add(&t, order.id, paid_at, std::slice::from_ref(&sku))?;
            Ok(Reserved::Short)
        }
        Err(e) => Err(e),
    }
}

/// [`reserve_inner`] for an order a warehouse rule routes (`Fulfillment::warehouse_route`): its
/// ranked warehouses first, each taking every unit or none; then, when the rule allows it, the
/// default choice (region, priority). A rule that forbids it leaves the order short (backorder)
/// until one of its warehouses has everything. Without a route: the default choice.
fn reserve_routed(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    input: &ReserveInput,
    now: DateTime<Utc>,
) -> Result<ReservationRecord, CoreError> {
    let Some(route) = &order.fulfillment.warehouse_route else {
        return reserve_inner(tx, actor, input, now);
    };
    let mut short = None;
    for w in &route.warehouses {
        let one = ReserveInput {
            region: None,
            warehouse: Some(w.clone()),
            ..input.clone()
        };
        match reserve_inner(tx, actor, &one, now) {
            Ok(rec) => return Ok(rec),
            Err(e @ CoreError::OutOfStock { .. }) => short = short.or(Some(e)),
            // A ranked warehouse no longer defined: the next one (any other fault is the order's).
            Err(CoreError::Validation(v)) if v.rule == "unknown_warehouse" => {}
            Err(e) => return Err(e),
        }
    }
    if route.split_allowed {
        return reserve_inner(tx, actor, input, now);
    }
    Err(short.unwrap_or_else(|| CoreError::OutOfStock {
        field: "lines".into(),
        sku: input.lines[0].0.to_string(),
        requested: i64::from(input.lines[0].1),
        available: 0,
    }))
}

/// What an order's move does to its stock: paying reserves it (or puts the order on backorder),
/// cancelling releases it, shipping consumes it. Allocation and shipment wait while the order is on
/// backorder, and allocation must name the warehouse that holds the reservation.
pub(crate) fn on_order_move(
    tx: &mut dyn Tx,
    actor: &Actor,
    next: &mut Order,
    kind: CommandKind,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = actor.principal.tenant_id.clone();
    let backordered = next.has_exception(OUT_OF_STOCK);
    match kind {
        CommandKind::Pay => {
            let held = match next.reservation_id {
                Some(id) => tx.reservation_get(&t, id)?,
                None => None,
            };
            match held.map(|r| (r.reservation_id, r.state)) {
                // A presale deposit's or POS ticket's hold: the payment commits it.
                Some((id, ReservationState::Held { expires_at })) if now < expires_at => {
                    move_inner(tx, actor, id, ReservationCommand::Commit, now)?;
                }
                // The hold ran out before the payment came: give it back, then reserve afresh.
                Some((id, ReservationState::Held { .. })) => {
                    move_inner(tx, actor, id, ReservationCommand::Expire, now)?;
                    next.reservation_id = None;
                    reserve_for_order(tx, actor, next, now)?;
                }
                Some((_, ReservationState::Committed)) => {}
                // Released by the sweeper, or never made: reserve now (a backordered order stays
                // in the queue, now as a paid one).
                Some(_) | None => {
                    next.reservation_id = None;
                    if !backordered {
                        reserve_for_order(tx, actor, next, now)?;
                    }
                }
            }
        }
        CommandKind::Cancel => {
            if let Some(id) = next.reservation_id
                && tx
                    .reservation_get(&t, id)?
                    .is_some_and(|r| r.state.is_active())
            {
                move_inner(
                    tx,
                    actor,
                    id,
                    ReservationCommand::Release(ReleaseReason::Cancelled),
                    now,
                )?;
            }
            if backordered {
                tx.backorder_remove(&t, next.id)?;
                next.exceptions.retain(|e| e != OUT_OF_STOCK);
            }
        }
        // Release too: an allocated order goes on backorder only when the channel changes its
        // goods (`rereserve`), and the warehouse must not get an order without its stock.
        // A split order with a parcel whose units are reserved may go to the warehouse for it
        // while another parcel waits on backorder (its parcels ship one by one).
        CommandKind::Allocate | CommandKind::Release | CommandKind::Ship
            if backordered
                && (kind == CommandKind::Ship
                    || !orderhub_domain::combine::has_ready_parcel(next)) =>
        {
            return Err(CoreError::ReservationNotAllowed(format!(
                "the order is on backorder (out_of_stock): it cannot {} until its stock is reserved",
                kind.as_str()
            )));
        }
        CommandKind::Allocate => {
            if let (Some(id), Some(wh)) = (next.reservation_id, &next.fulfillment.warehouse_id)
                && let Some(rec) = tx.reservation_get(&t, id)?
                && let Some(held) = rec.lines.first().map(|l| &l.warehouse_id)
                && held != wh
            {
                return Err(invalid(
                    "warehouse_id",
                    "not_the_reserved_warehouse",
                    format!("the order's stock is reserved in {held}; allocate it there"),
                ));
            }
        }
        CommandKind::Ship => {
            if let Some(id) = next.reservation_id {
                move_inner(tx, actor, id, ReservationCommand::Consume, now)?;
            }
        }
        CommandKind::Hold
        | CommandKind::Approve
        | CommandKind::Release
        | CommandKind::Pickup
        | CommandKind::Deliver
        | CommandKind::Complete => {}
    }
    Ok(())
}

/// The channel changed the goods of an order that holds stock (or waits for it): its reservation
/// is released and the new lines reserved in the caller's transaction, as a payment reserves
/// (short of stock, the order goes on backorder with `out_of_stock` set on `next`). An allocated
/// order's allocation follows the new reservation's warehouse. Returns what happened, for the
/// audit entry.
pub(crate) fn rereserve(
    tx: &mut dyn Tx,
    actor: &Actor,
    next: &mut Order,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let mut released = None;
    if let Some(id) = next.reservation_id
        && tx
            .reservation_get(&t, id)?
            .is_some_and(|r| r.state.is_active())
    {
        move_inner(
            tx,
            actor,
            id,
            ReservationCommand::Release(ReleaseReason::Manual),
            now,
        )?;
        released = Some(id);
    }
    next.reservation_id = None;
    if next.has_exception(OUT_OF_STOCK) {
        tx.backorder_remove(&t, next.id)?;
    }
    let outcome = match reserve_for_order(tx, actor, next, now)? {
        Reserved::Yes => "reserved",
        Reserved::Untracked => "untracked",
        Reserved::Short => "short",
    };
    let from = next.fulfillment.warehouse_id.clone();
    let moved = follow_reservation(tx, &t, next)?;
    Ok(serde_json::json!({
        "released": released,
        "reserved": next.reservation_id,
        "outcome": outcome,
        "allocation": moved.then(|| serde_json::json!({"from": from, "to": next.fulfillment.warehouse_id})),
    }))
}

/// An operator's edit changed the goods (or the receiver's province) of an order whose stock
/// follows it: as [`rereserve`], but short of stock the edit is refused
/// ([`CoreError::OutOfStock`], field `lines`) and the caller's transaction rolls back — an edit
/// never puts an order on backorder. Returns what happened, for the audit entry.
pub(crate) fn rereserve_or_refuse(
    tx: &mut dyn Tx,
    actor: &Actor,
    next: &mut Order,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let mut released = None;
    if let Some(id) = next.reservation_id
        && tx
            .reservation_get(&t, id)?
            .is_some_and(|r| r.state.is_active())
    {
        move_inner(
            tx,
            actor,
            id,
            ReservationCommand::Release(ReleaseReason::Manual),
            now,
        )?;
        released = Some(id);
    }
    next.reservation_id = None;
    if next.has_exception(OUT_OF_STOCK) {
        tx.backorder_remove(&t, next.id)?;
        next.exceptions.retain(|e| e != OUT_OF_STOCK);
    }
    // What is left to ship of each line, as `reserve_for_order` counts it: units an approved
    // after-sales case stopped are not reserved again.
    let mut lines = Vec::new();
    for l in &next.lines {
        let units = next.units_to_ship(l.line_id);
        if units > 0 && tx.sku_get(&t, &l.sku)?.is_some() {
            lines.push((l.sku.clone(), units));
        }
    }
    let outcome = if lines.is_empty() {
        "untracked"
    } else {
        let hold_for = if next.status == Status::PendingPayment {
            creation_hold(next, now)
        } else {
            None
        };
        let input = ReserveInput {
            reference: next.id.to_string(),
            lines,
            region: Some(next.receiver.province.clone()).filter(|p| !p.is_empty()),
            warehouse: None,
            mode: deduction_mode(next),
            hold_for,
        };
        let rec = reserve_inner(tx, actor, &input, now).map_err(|e| match e {
            CoreError::OutOfStock {
                sku,
                requested,
                available,
                ..
            } => CoreError::OutOfStock {
                field: "lines".into(),
                sku,
                requested,
                available,
            },
            e => e,
        })?;
        next.reservation_id = Some(rec.reservation_id);
        "reserved"
    };
    let from = next.fulfillment.warehouse_id.clone();
    let moved = follow_reservation(tx, &t, next)?;
    Ok(serde_json::json!({
        "released": released,
        "reserved": next.reservation_id,
        "outcome": outcome,
        "allocation": moved.then(|| serde_json::json!({"from": from, "to": next.fulfillment.warehouse_id})),
    }))
}

/// Points an allocated order's allocation at the warehouse holding its reservation (what the
/// default warehouse strategy chooses) when they differ. Returns whether it moved.
fn follow_reservation(tx: &mut dyn Tx, t: &TenantId, order: &mut Order) -> Result<bool, CoreError> {
    if order.status != Status::Allocated {
        return Ok(false);
    }
    let Some(id) = order.reservation_id else {
        return Ok(false);
    };
    let held = tx
        .reservation_get(t, id)?
        .and_then(|r| r.lines.first().map(|l| l.warehouse_id.clone()));
    match held {
        Some(wh) if order.fulfillment.warehouse_id.as_ref() != Some(&wh) => {
            order.fulfillment.warehouse_id = Some(wh);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// A correction of on-hand stock with its reason (a stock-take posts counted − expected).
pub fn adjust(
    tx: &mut dyn Tx,
    actor: &Actor,
    sku: &Sku,
    wh: &WarehouseId,
    delta: i64,
    reason: inventory::AdjustmentReason,
    now: DateTime<Utc>,
) -> Result<StockRow, CoreError> {
    require(actor, Permission::StockMove, "adjust stock")?;
    let t = actor.principal.tenant_id.clone();
    stock_position(tx, &t, sku, wh)?;
    move_stock(
        tx,
        actor,
        sku,
        wh,
        Movement::Adjustment { delta, reason },
        None,
        now,
    )
}

/// What to reserve and where from.
#[derive(Debug, Clone)]
pub struct ReserveInput {
    pub reference: String,
    pub lines: Vec<(Sku, u32)>,
    /// The receiver's province (or region code): only warehouses covering it are candidates.
    pub region: Option<String>,
    /// Reserve in this warehouse only.
    pub warehouse: Option<WarehouseId>,
    pub mode: DeductionMode,
    /// `Some`: a hold (checkout, presale deposit, POS ticket) that the sweeper releases after this
    /// long unless it is committed (or, for POS, consumed). `None`: committed at once (a paid order).
    pub hold_for: Option<Duration>,
}

/// Reserves every unit of every line in one warehouse — the first, by priority, that covers the
/// region and has all of it — or nothing. Kits reserve their components together.
pub fn reserve(
    tx: &mut dyn Tx,
    actor: &Actor,
    input: &ReserveInput,
    now: DateTime<Utc>,
) -> Result<ReservationRecord, CoreError> {
    require(actor, Permission::Reserve, "reserve stock")?;
    if input
        .hold_for
        .is_some_and(|h| h <= Duration::zero() || h > HOLD_MAX)
    {
        return Err(invalid(
            "hold_seconds",
            "out_of_range",
            format!("a hold lasts 1 s to {} h", HOLD_MAX.num_hours()),
        ));
    }
    reserve_inner(tx, actor, input, now)
}

/// [`reserve`] without the permission check: for the stock effects of order moves, which the
/// order permission covers.
pub(crate) fn reserve_inner(
    tx: &mut dyn Tx,
    actor: &Actor,
    input: &ReserveInput,
    now: DateTime<Utc>,
) -> Result<ReservationRecord, CoreError> {
    let t = actor.principal.tenant_id.clone();
    if input.lines.is_empty() {
        return Err(invalid(
            "lines",
            "required",
            "a reservation needs at least one line",
        ));
    }
    if input.lines.len() > RESERVATION_LINES_MAX {
        return Err(invalid(
            "lines",
            "too_many",
            format!("at most {RESERVATION_LINES_MAX} lines"),
        ));
    }
    let mut kits = KitBook::new();
    for (i, (sku, qty)) in input.lines.iter().enumerate() {
        if *qty == 0 {
            return Err(invalid(
                &format!("lines[{i}].quantity"),
                "must_be_positive",
                "quantity must be at least 1",
            ));
        }
        match tx.sku_get(&t, sku)? {
            None => {
                return Err(invalid(
                    &format!("lines[{i}].sku"),
                    "unknown_sku",
                    format!("{sku} is not in the SKU master"),
                ));
            }
            Some(SkuRecord {
                components: Some(parts),
                ..
            }) => {
                kits.insert(sku.clone(), parts);
            }
            Some(_) => {}
        }
    }
    let units = inventory::expand_kits(&input.lines, &kits)?;
    let all = tx.warehouses(&t)?;
    let covers: Vec<WarehouseCover> = all
        .iter()
        .map(|w| WarehouseCover {
            warehouse: w.warehouse_id.clone(),
            priority: w.priority,
            regions: w.regions.clone(),
        })
        .collect();
    let candidates: Vec<WarehouseId> = match &input.warehouse {
        Some(w) if all.iter().any(|x| &x.warehouse_id == w) => vec![w.clone()],
        Some(w) => {
            return Err(invalid(
                "warehouse_id",
                "unknown_warehouse",
                format!("warehouse {w} is not defined"),
            ));
        }
        // A region narrows the candidates to the warehouses that ship there; without one, every
        // warehouse is a candidate, by priority.
        None => match input.region.as_deref() {
            Some(region) => inventory::warehouses_for(&covers, region)
                .into_iter()
                .map(|c| c.warehouse.clone())
                .collect(),
            None => all.iter().map(|w| w.warehouse_id.clone()).collect(),
        },
    };
    // The shortest line, for the refusal: the first SKU (in SKU order) no candidate can cover.
    let mut short: Option<(Sku, i64, i64)> = None;
    for wh in &candidates {
        // Positions are read (and locked) in SKU order, so two reservations never wait on each other
        // in a cycle.
        let mut fits = true;
        for (sku, need) in &units {
            let have = tx
                .stock_get(&t, sku, wh)?
                .unwrap_or_default()
                .level
                .available();
            if have < *need {
                fits = false;
                match &mut short {
                    Some((s, _, best)) if s == sku => *best = (*best).max(have),
                    Some(_) => {}
                    None => short = Some((sku.clone(), *need, have)),
                }
                break;
            }
        }
        if fits {
            return place(tx, actor, &t, wh, &units, input, now);
        }
    }
    let (sku, requested, available) = short.unwrap_or_else(|| {
        let (s, n) = units
            .iter()
            .next()
            .map(|(s, n)| (s.clone(), *n))
            .expect("at least one line");
        (s, n, 0)
    });
    let field = input
        .lines
        .iter()
        .position(|(s, _)| {
            s == &sku
                || kits
                    .get(s)
                    .is_some_and(|p| p.iter().any(|(c, _)| c == &sku))
        })
        .map_or("lines".to_owned(), |i| format!("lines[{i}].sku"));
    Err(CoreError::OutOfStock {
        field,
        sku: sku.to_string(),
        requested,
        available,
    })
}

fn place(
    tx: &mut dyn Tx,
    actor: &Actor,
    t: &TenantId,
    wh: &WarehouseId,
    units: &BTreeMap<Sku, i64>,
    input: &ReserveInput,
    now: DateTime<Utc>,
) -> Result<ReservationRecord, CoreError> {
    let id = Uuid::now_v7();
    let reference = format!("reservation:{id}");
    let mut lines = Vec::with_capacity(units.len());
    for (sku, qty) in units {
        move_stock(
            tx,
            actor,
            sku,
            wh,
            Movement::Reserve { qty: *qty },
            Some(&reference),
            now,
        )?;
        lines.push(ReservedLine {
            sku: sku.clone(),
            warehouse_id: wh.clone(),
            quantity: *qty,
        });
    }
    let state = match input.hold_for {
        Some(h) => ReservationState::Held {
            expires_at: now + h,
        },
        None => ReservationState::Committed,
    };
    let rec = ReservationRecord {
        tenant_id: t.clone(),
        reservation_id: id,
        reference: input.reference.clone(),
        state,
        mode: input.mode,
        lines,
        created_at: now,
        updated_at: now,
    };
    tx.reservation_put(&rec)?;
    Ok(rec)
}

/// Commit, consume or release a reservation; the sweeper's expiry too. Moves every line's stock.
pub fn move_reservation(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    cmd: ReservationCommand,
    now: DateTime<Utc>,
) -> Result<ReservationRecord, CoreError> {
    require(actor, Permission::Reserve, "change reservations")?;
    move_inner(tx, actor, id, cmd, now)
}

pub(crate) fn move_inner(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    cmd: ReservationCommand,
    now: DateTime<Utc>,
) -> Result<ReservationRecord, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let mut rec = tx
        .reservation_get(&t, id)?
        .ok_or(CoreError::ReservationNotFound)?;
    let next = inventory::next_state(rec.state, cmd, rec.mode, now).map_err(|e| {
        CoreError::ReservationNotAllowed(match e {
            ReservationError::NotAllowed { from, command } => format!(
                "cannot {command:?} a reservation that is {}",
                state_name(from)
            ),
            ReservationError::Expired { expires_at } => {
                format!("the hold expired at {expires_at}; its stock is released")
            }
            ReservationError::NotYetExpired { expires_at } => {
                format!("the hold lasts until {expires_at}")
            }
        })
    })?;
    let reference = format!("reservation:{id}");
    for line in &rec.lines {
        if let Some(m) = inventory::movement_for(cmd, line.quantity) {
            move_stock(
                tx,
                actor,
                &line.sku,
                &line.warehouse_id,
                m,
                Some(&reference),
                now,
            )?;
        }
    }
    rec.state = next;
    rec.updated_at = now;
    tx.reservation_put(&rec)?;
    Ok(rec)
}

/// Releases held reservations past their expiry, at most `limit` per call. Returns how many.
pub fn expire_due(tx: &mut dyn Tx, now: DateTime<Utc>, limit: u32) -> Result<usize, CoreError> {
    let due = tx.reservations_due(now, limit)?;
    for (tenant, id) in &due {
        let actor = Actor {
            principal: crate::auth::Principal {
                tenant_id: tenant.clone(),
                key_id: "system".into(),
                key_name: "expiry sweeper".into(),
                role: crate::auth::Role::Admin,
                shops: None,
                pii_read: false,
            },
            request_id: "sweeper".into(),
        };
        move_reservation(tx, &actor, *id, ReservationCommand::Expire, now)?;
    }
    Ok(due.len())
}

pub fn state_name(s: ReservationState) -> &'static str {
    match s {
        ReservationState::Held { .. } => "held",
        ReservationState::Committed => "committed",
        ReservationState::Consumed => "consumed",
        ReservationState::Released(ReleaseReason::Cancelled) => "released_cancelled",
        ReservationState::Released(ReleaseReason::Expired) => "released_expired",
        ReservationState::Released(ReleaseReason::Manual) => "released_manual",
    }
}

pub fn mode_name(m: DeductionMode) -> &'static str {
    match m {
        DeductionMode::AtPayment => "at_payment",
        DeductionMode::Presale => "presale",
        DeductionMode::Pos => "pos",
    }
}

pub fn parse_mode(s: &str) -> Option<DeductionMode> {
    [
        DeductionMode::AtPayment,
        DeductionMode::Presale,
        DeductionMode::Pos,
    ]
    .into_iter()
    .find(|m| mode_name(*m) == s)
}

/// Reads a stored state back; `expires_at` goes with `held`.
pub fn parse_state(s: &str, expires_at: Option<DateTime<Utc>>) -> Option<ReservationState> {
    Some(match s {
        "held" => ReservationState::Held {
            expires_at: expires_at?,
        },
        "committed" => ReservationState::Committed,
        "consumed" => ReservationState::Consumed,
        "released_cancelled" => ReservationState::Released(ReleaseReason::Cancelled),
        "released_expired" => ReservationState::Released(ReleaseReason::Expired),
        "released_manual" => ReservationState::Released(ReleaseReason::Manual),
        _ => return None,
    })
}

/// One SKU's counted stock in a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotItem {
    pub sku: Sku,
    pub on_hand: i64,
}

/// What applying a snapshot did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotOutcome {
    /// (sku, delta) posted as `erp_sync` adjustments.
    pub adjusted: Vec<(Sku, i64)>,
    pub unchanged: usize,
    /// (sku, snapshot on-hand, reserved now): the snapshot counts fewer units than live reservations
    /// hold. Not applied — reservations are never overwritten; someone must look.
    pub conflicts: Vec<(Sku, i64, i64)>,
}

/// Snapshots per call at most: a warehouse's whole catalogue, in one transaction.
pub const SNAPSHOT_ITEMS_MAX: usize = 20_000;

/// A full stock snapshot of one warehouse from an ERP or WMS, as of a time. A snapshot older than
/// (or as old as) the last one applied is refused; differences post as `erp_sync` adjustments, so
/// the ledger explains every unit, and never below what live reservations hold.
pub fn apply_snapshot(
    tx: &mut dyn Tx,
    actor: &Actor,
    wh: &WarehouseId,
    as_of: DateTime<Utc>,
    items: &[SnapshotItem],
    now: DateTime<Utc>,
) -> Result<SnapshotOutcome, CoreError> {
    require(actor, Permission::StockMove, "apply stock snapshots")?;
    let t = actor.principal.tenant_id.clone();
    if items.len() > SNAPSHOT_ITEMS_MAX {
        return Err(invalid(
            "items",
            "too_many",
            format!("at most {SNAPSHOT_ITEMS_MAX} items per snapshot"),
        ));
    }
    if !tx.warehouses(&t)?.iter().any(|w| &w.warehouse_id == wh) {
        return Err(invalid(
            "warehouse_id",
            "unknown_warehouse",
            format!("warehouse {wh} is not defined"),
        ));
    }
    if let Some(last) = tx.snapshot_watermark(&t, wh)?
        && as_of <= last
    {
        return Err(CoreError::StaleSnapshot(format!(
            "as_of {as_of} is not after the last snapshot applied to {wh} ({last})"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("items[{i}]");
        if !seen.insert(item.sku.clone()) {
            return Err(invalid(
                &format!("{field}.sku"),
                "duplicate",
                format!("{} appears twice", item.sku),
            ));
        }
        if item.on_hand < 0 {
            return Err(invalid(
                &format!("{field}.on_hand"),
                "must_not_be_negative",
                "on_hand must be 0 or more",
            ));
        }
        match tx.sku_get(&t, &item.sku)? {
            None => {
                return Err(invalid(
                    &format!("{field}.sku"),
                    "unknown_sku",
                    format!("{} is not in the SKU master", item.sku),
                ));
            }
            Some(s) if s.components.is_some() => {
                return Err(invalid(
                    &format!("{field}.sku"),
                    "kit_has_no_stock",
                    format!("{} is a kit", item.sku),
                ));
            }
            Some(_) => {}
        }
    }
    let mut out = SnapshotOutcome::default();
    for item in items {
        let level = tx.stock_get(&t, &item.sku, wh)?.unwrap_or_default().level;
        let delta = item.on_hand - level.on_hand;
        if delta == 0 {
            out.unchanged += 1;
        } else if item.on_hand < level.reserved {
            out.conflicts
                .push((item.sku.clone(), item.on_hand, level.reserved));
        } else {
            let m = Movement::Adjustment {
                delta,
                reason: inventory::AdjustmentReason::ErpSync,
            };
            move_stock(tx, actor, &item.sku, wh, m, Some("snapshot"), now)?;
            if delta > 0 {
                serve_backorders(tx, actor, &item.sku, now)?;
            }
            out.adjusted.push((item.sku.clone(), delta));
        }
    }
    tx.snapshot_watermark_put(&t, wh, as_of)?;
    Ok(out)
}

/// Closes a channel's listing of `sku` when the pool falls to its threshold and reopens it when
/// stock returns; each change is an event (`channel.listing_closed` / `channel.listing_reopened`)
/// for the channel write-back to push.
fn update_channel_listings(
    tx: &mut dyn Tx,
    actor: &Actor,
    sku: &Sku,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = actor.principal.tenant_id.clone();
    let policies = tx.channel_policies(&t)?;
    if policies.is_empty() {
        return Ok(());
    }
    let pool: i64 = tx
        .stock_all(&t, sku)?
        .iter()
        .map(|(_, r)| r.level.available())
        .sum();
    let closed = tx.closed_channels(&t, sku)?;
    for p in &policies {
        let listing = inventory::channel_listing(pool, p.safety_stock, p.allocation, p.close_below);
        if listing.closed == closed.contains(&p.channel) {
            continue;
        }
        tx.channel_listing_put(&t, sku, &p.channel, listing.closed)?;
        let event_type = if listing.closed {
            orderhub_domain::event_types::CHANNEL_LISTING_CLOSED
        } else {
            orderhub_domain::event_types::CHANNEL_LISTING_REOPENED
        };
        tx.outbox_append(&EventRecord {
            event_id: Uuid::now_v7(),
            tenant_id: t.clone(),
            event_type: event_type.into(),
            aggregate_id: Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("orderhub/listing/{t}/{sku}/{}", p.channel).as_bytes(),
            ),
            aggregate_version: 0,
            occurred_at: now,
            trace_id: actor.request_id.clone(),
            payload: serde_json::json!({
                "sku": sku, "channel": p.channel, "pool_available": pool, "listed": listing.listed,
            })
            .to_string(),
        })?;
    }
    Ok(())
}

/// Sets how a channel lists stock from the shared pool.
pub fn set_channel_policy(
    tx: &mut dyn Tx,
    actor: &Actor,
    p: &ChannelPolicy,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    require(actor, Permission::MasterData, "set channel policies")?;
    if p.safety_stock < 0 {
        return Err(invalid(
            "safety_stock",
            "must_not_be_negative",
            "safety_stock must be 0 or more",
        ));
    }
    if p.close_below < 0 {
        return Err(invalid(
            "close_below",
            "must_not_be_negative",
            "close_below must be 0 or more",
        ));
    }
    match p.allocation {
        inventory::AllocationPolicy::Ratio { percent } if percent == 0 || percent > 100 => {
            return Err(invalid(
                "percent",
                "out_of_range",
                "percent must be 1 to 100",
            ));
        }
        inventory::AllocationPolicy::Quota { units } if units < 0 => {
            return Err(invalid(
                "units",
                "must_not_be_negative",
                "units must be 0 or more",
            ));
        }
        _ => {}
    }
    tx.channel_policy_put(&actor.principal.tenant_id, p)?;
    crate::listings::on_policy_changed(tx, &actor.principal.tenant_id, &p.channel, now)?;
    Ok(())
}

/// A returned item after quality control.
#[derive(Debug, Clone)]
pub struct ReturnInput {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub quantity: i64,
    pub qc_passed: bool,
    /// The after-sale or RMA number.
    pub reference: Option<String>,
}

/// A QC pass puts the returned units back on hand (a `return` movement); a fail leaves stock alone.
/// Returns the position when it was restocked.
pub fn return_to_stock(
    tx: &mut dyn Tx,
    actor: &Actor,
    r: &ReturnInput,
    now: DateTime<Utc>,
) -> Result<Option<StockRow>, CoreError> {
    require(actor, Permission::StockMove, "restock returns")?;
    return_inner(tx, actor, r, now)
}

/// [`return_to_stock`] without the permission check: for an after-sales case's receipt, which the
/// case's own permission covers.
pub(crate) fn return_inner(
    tx: &mut dyn Tx,
    actor: &Actor,
    r: &ReturnInput,
    now: DateTime<Utc>,
) -> Result<Option<StockRow>, CoreError> {
    let t = actor.principal.tenant_id.clone();
    stock_position(tx, &t, &r.sku, &r.warehouse_id)?;
    if r.quantity <= 0 {
        return Err(invalid(
            "quantity",
            "must_be_positive",
            "quantity must be at least 1",
        ));
    }
    if !r.qc_passed {
        return Ok(None);
    }
    let m = Movement::Return { qty: r.quantity };
    let row = move_stock(
        tx,
        actor,
        &r.sku,
        &r.warehouse_id,
        m,
        r.reference.as_deref(),
        now,
    )?;
    serve_backorders(tx, actor, &r.sku, now)?;
    Ok(Some(row))
}

/// Stock units of `lines` per SKU: kits become their components, SKUs outside the master (not
/// tracked) are left out.
pub(crate) fn tracked_units(
    tx: &mut dyn Tx,
    t: &TenantId,
    lines: &[(Sku, u32)],
) -> Result<BTreeMap<Sku, i64>, CoreError> {
    let mut kits = KitBook::new();
    let mut tracked = Vec::new();
    for (sku, qty) in lines {
        match tx.sku_get(t, sku)? {
            None => {}
            Some(SkuRecord {
                components: Some(parts),
                ..
            }) => {
                kits.insert(sku.clone(), parts);
                tracked.push((sku.clone(), *qty));
            }
            Some(_) => tracked.push((sku.clone(), *qty)),
        }
    }
    Ok(inventory::expand_kits(&tracked, &kits)?)
}

/// Gives part of an order's active reservation back to the pool: `units` per SKU (at most what it
/// holds of each), each a `release` movement with its ledger row and event; the reservation keeps
/// the rest (released altogether when nothing is left). What an approved refund of a line not yet
/// shipped does. Returns the units released per SKU.
pub(crate) fn release_units(
    tx: &mut dyn Tx,
    actor: &Actor,
    reservation: uuid::Uuid,
    units: &BTreeMap<Sku, i64>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<Sku, i64>, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let Some(mut rec) = tx.reservation_get(&t, reservation)? else {
        return Ok(BTreeMap::new());
    };
    if !rec.state.is_active() {
        return Ok(BTreeMap::new());
    }
    let reference = format!("reservation:{reservation}");
    let mut released = BTreeMap::new();
    for line in &mut rec.lines {
        let want = units
            .get(&line.sku)
            .copied()
            .unwrap_or(0)
            .min(line.quantity);
        if want <= 0 {
            continue;
        }
        move_stock(
            tx,
            actor,
            &line.sku,
            &line.warehouse_id,
            Movement::Release { qty: want },
            Some(&reference),
            now,
        )?;
        line.quantity -= want;
        released.insert(line.sku.clone(), want);
    }
    rec.lines.retain(|l| l.quantity > 0);
    if rec.lines.is_empty() {
        rec.state = ReservationState::Released(ReleaseReason::Manual);
    }
    rec.updated_at = now;
    tx.reservation_put(&rec)?;
    Ok(released)
}

/// Ships part of an order's active reservation: `units` per SKU leave the warehouse (a `consume`
/// movement each, with its ledger row and event); the reservation keeps the rest and is consumed
/// once nothing is left. What shipping one parcel of a split or merged order does. Refused
/// (nothing written, the caller's transaction rolled back) when the reservation holds fewer units
/// of a SKU than asked.
pub(crate) fn consume_units(
    tx: &mut dyn Tx,
    actor: &Actor,
    reservation: uuid::Uuid,
    units: &BTreeMap<Sku, i64>,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = actor.principal.tenant_id.clone();
    let mut rec = tx
        .reservation_get(&t, reservation)?
        .filter(|r| r.state.is_active())
        .ok_or_else(|| {
            CoreError::ReservationNotAllowed(format!(
                "reservation {reservation} holds no stock to ship from"
            ))
        })?;
    let reference = format!("reservation:{reservation}");
    for (sku, want) in units {
        let held: i64 = rec
            .lines
            .iter()
            .filter(|l| &l.sku == sku)
            .map(|l| l.quantity)
            .sum();
        if held < *want {
            return Err(CoreError::ReservationNotAllowed(format!(
                "reservation {reservation} holds {held} of {sku}; the parcel needs {want}"
            )));
        }
        let mut left = *want;
        for line in rec.lines.iter_mut().filter(|l| &l.sku == sku) {
            let take = left.min(line.quantity);
            if take == 0 {
                continue;
            }
            move_stock(
                tx,
                actor,
                &line.sku,
                &line.warehouse_id,
                Movement::Consume { qty: take },
                Some(&reference),
                now,
            )?;
            line.quantity -= take;
            left -= take;
        }
    }
    rec.lines.retain(|l| l.quantity > 0);
    if rec.lines.is_empty() {
        rec.state = ReservationState::Consumed;
    }
    rec.updated_at = now;
    tx.reservation_put(&rec)?;
    Ok(())
}

/// Puts `order` on backorder for `sku` (short): the `out_of_stock` flag and its queue entry at
/// the order's payment time.
pub(crate) fn go_on_backorder(
    tx: &mut dyn Tx,
    t: &TenantId,
    order: &mut Order,
    sku: &Sku,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    if !order.has_exception(OUT_OF_STOCK) {
        order.exceptions.push(OUT_OF_STOCK.to_owned());
    }
    let paid_at = order.paid_at.map_or(now, |p| p.to_utc());
    tx.backorder_remove(t, order.id)?;
    tx.backorder_add(t, order.id, paid_at, std::slice::from_ref(sku))?;
    Ok(())
}

/// A presale hold lasts until the final payment is due; this long when the order names no date.
pub const PRESALE_HOLD_DEFAULT: Duration = Duration::hours(72);
/// A POS ticket holds its goods for the buyer this long.
pub const POS_HOLD_DEFAULT: Duration = Duration::hours(24);

/// The hold an unpaid order takes when it is created, by kind: presale (deposit paid; held until
/// the final payment is due) and POS pickup (held from the ticket). Other kinds reserve at payment.
pub fn creation_hold(order: &Order, now: DateTime<Utc>) -> Option<Duration> {
    match &order.kind {
        OrderKind::Presale {
            final_payment_due, ..
        } => Some(
            final_payment_due
                .map(|d| d.to_utc() - now)
                .filter(|d| *d > Duration::zero())
                .unwrap_or(PRESALE_HOLD_DEFAULT),
        ),
        OrderKind::PosPickup { .. } => Some(POS_HOLD_DEFAULT),
        OrderKind::Normal | OrderKind::B2b { .. } | OrderKind::Exchange { .. } => None,
    }
}

/// The deduction mode an order's kind implies.
pub fn deduction_mode(order: &Order) -> DeductionMode {
    match order.kind {
        OrderKind::Presale { .. } => DeductionMode::Presale,
        OrderKind::PosPickup { .. } => DeductionMode::Pos,
        OrderKind::Normal | OrderKind::B2b { .. } | OrderKind::Exchange { .. } => {
            DeductionMode::AtPayment
        }
    }
}

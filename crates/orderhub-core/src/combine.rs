//! Merge and split (issue 21) over the `Tx` port: shipment groups (several orders, one parcel),
//! parcels (one order, several parcels), shipping one parcel with its waybill, and what a change of
//! a member does to its group. The rules are `orderhub_domain::combine`'s.
//!
//! Each order stays the aggregate of its own changes: a merge, an undo, a split or a parcel's
//! shipment writes every order it touches (one more version, audit entry, event) and the group row
//! in one transaction. Orders are read (and, on PostgreSQL, locked) in id order, so two merges of
//! overlapping orders wait on each other instead of deadlocking, and the loser sees the winner's
//! group on the order and is refused (`in_group`).
//!
//! Stock stays per order: a merged member keeps its own reservation; a parcel ships by consuming
//! its units from its order's reservation (`inventory::consume_units`); a split by stock reserves
//! what one warehouse has now and leaves the order on backorder for the rest, whose parcel reserves
//! its own units when stock arrives ([`reserve_waiting`]).

use crate::auth::Permission;
use crate::error::CoreError;
use crate::inventory::{ReserveInput, Reserved};
use crate::ports::{StoreError, Tx};
use crate::usecases::{Actor, record_with};
use chrono::{DateTime, Utc};
use orderhub_domain::combine::{
    self, GroupState, LeftGroup, LineQty, MergeRules, Parcel, ParcelState, Refusal, ShipmentGroup,
    WarehouseOffer,
};
use orderhub_domain::event_types as ev;
use orderhub_domain::ids::{CarrierCode, WarehouseId};
use orderhub_domain::inventory::{ReleaseReason, ReservationCommand, WarehouseCover};
use orderhub_domain::lifecycle::{self, Command, TransitionError};
use orderhub_domain::order::OUT_OF_STOCK;
use orderhub_domain::{Order, OrderId, Sku, Status, TenantId, ValidationError};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Shipment groups and merge settings inside the orders' transaction.
pub trait CombineTx {
    /// The group, locked for update where the backend has row locks.
    fn group_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ShipmentGroup>, StoreError>;
    fn group_insert(&mut self, tenant: &TenantId, g: &ShipmentGroup) -> Result<(), StoreError>;
    /// Writes `g` over the stored group whose version is `g.version - 1`; any other stored
    /// version is a `Conflict`.
    fn group_update(&mut self, tenant: &TenantId, g: &ShipmentGroup) -> Result<(), StoreError>;
    fn merge_rules(&mut self, tenant: &TenantId) -> Result<MergeRules, StoreError>;
    /// The newest orders (at most 50, newest first) of `order`'s buyer — by the channel's buyer id,
    /// else its nick — with their stored status: the automatic merge's candidates. Empty when the
    /// order names no buyer. May miss orders written in the same group of writes (they are seen
    /// by the next payment).
    fn buyer_orders(
        &mut self,
        tenant: &TenantId,
        order: &Order,
    ) -> Result<Vec<(OrderId, String)>, StoreError>;
    fn merge_rules_put(
        &mut self,
        tenant: &TenantId,
        rules: &MergeRules,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

fn require(actor: &Actor, p: Permission) -> Result<(), CoreError> {
    crate::inventory::require(actor, p, &p.describe())
}

fn conflict(code: &'static str, message: impl Into<String>) -> CoreError {
    CoreError::Combine {
        code,
        message: message.into(),
        field: None,
        status: None,
        version: None,
    }
}

fn order_conflict(code: &'static str, message: impl Into<String>, o: &Order) -> CoreError {
    CoreError::Combine {
        code,
        message: message.into(),
        field: None,
        status: Some(o.status),
        version: Some(o.version),
    }
}

fn reason_of(reason: Option<&str>) -> Result<Option<String>, CoreError> {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) if r.chars().count() > combine::REASON_MAX => Err(ValidationError::new(
            "reason",
            "too_long",
            format!("reason must be at most {} characters", combine::REASON_MAX),
        )
        .into()),
        r => Ok(r.map(str::to_owned)),
    }
}

/// The warehouse an order ships from as far as is known: its allocation, else where its stock is
/// reserved.
fn ship_from(tx: &mut dyn Tx, o: &Order) -> Result<Option<WarehouseId>, CoreError> {
    if let Some(w) = &o.fulfillment.warehouse_id {
        return Ok(Some(w.clone()));
    }
    match o.reservation_id {
        Some(id) => Ok(tx
            .reservation_get(&o.tenant_id, id)?
            .filter(|r| r.state.is_active())
            .and_then(|r| r.lines.first().map(|l| l.warehouse_id.clone()))),
        None => Ok(None),
    }
}

/// What a merge of some orders would do.
#[derive(Debug, Clone)]
pub struct MergePreview {
    /// The orders that would be merged, the first being the one the others are compared with.
    pub mergeable: Vec<OrderId>,
    /// The others and why not.
    pub refused: Vec<(OrderId, Refusal)>,
    pub rules: MergeRules,
}

fn check_ids(ids: &[OrderId]) -> Result<(), CoreError> {
    if ids.len() < 2 || ids.len() > combine::MERGE_ORDERS_MAX {
        return Err(ValidationError::new(
            "order_ids",
            "out_of_range",
            format!("a merge takes 2 to {} orders", combine::MERGE_ORDERS_MAX),
        )
        .into());
    }
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !seen.insert(*id) {
            return Err(ValidationError::new(
                format!("order_ids[{i}]"),
                "duplicate",
                format!("order {id} is named twice"),
            )
            .into());
        }
    }
    Ok(())
}

/// What merging `ids` would do, without doing it: the orders that qualify and, for each other,
/// the code and sentence of why not. An order the key cannot see answers not found.
pub fn preview_merge(
    tx: &mut dyn Tx,
    actor: &Actor,
    ids: &[OrderId],
) -> Result<MergePreview, CoreError> {
    require(actor, Permission::OrdersCombine)?;
    check_ids(ids)?;
    let (preview, _) = assess(tx, actor, ids)?;
    Ok(preview)
}

/// Reads the orders in id order and sorts them into mergeable and refused.
fn assess(
    tx: &mut dyn Tx,
    actor: &Actor,
    ids: &[OrderId],
) -> Result<(MergePreview, Vec<Order>), CoreError> {
    let t = actor.principal.tenant_id.clone();
    let rules = tx.merge_rules(&t)?;
    let mut sorted = ids.to_vec();
    sorted.sort();
    let mut refused = Vec::new();
    let mut fit = Vec::new();
    for id in sorted {
        let o = tx
            .order_get(&t, id)?
            .filter(|o| actor.principal.sees_shop(&o.shop_id));
        // An order the key cannot see does not exist for it: the whole request is not found
        // (naming nothing of another shop's).
        let o = o.ok_or(CoreError::NotFound)?;
        match combine::refusal(&o) {
            Some(r) => refused.push((id, r)),
            None => fit.push(o),
        }
    }
    // The first paid is what the others are compared with.
    fit.sort_by_key(|o| (combine::window_time(o), o.id));
    let mut members: Vec<Order> = Vec::new();
    let mut first_wh: Option<WarehouseId> = None;
    for o in fit {
        let wh = ship_from(tx, &o)?;
        let why = match members.first() {
            None => None,
            Some(first) => combine::refusal_against(first, &o, &rules).or_else(|| {
                match (&first_wh, &wh) {
                    (Some(a), Some(b)) if a != b => Some(Refusal {
                        code: "other_warehouse",
                        message: format!(
                            "the order ships from {b}, the merge from {a}: one parcel leaves one warehouse"
                        ),
                    }),
                    _ => None,
                }
            }),
        };
        match why {
            Some(r) => refused.push((o.id, r)),
            None => {
                if first_wh.is_none() {
                    first_wh = wh;
                }
                members.push(o);
            }
        }
    }
    if members.len() < 2 {
        // One order alone is no merge: it is refused too, unless something else already was.
        for o in members.drain(..) {
            refused.push((
                o.id,
                Refusal {
                    code: "nothing_to_merge_with",
                    message: "no other order qualifies to ship with it".into(),
                },
            ));
        }
    }
    let preview = MergePreview {
        mergeable: members.iter().map(|o| o.id).collect(),
        refused,
        rules,
    };
    Ok((preview, members))
}

/// The result of a merge: the group and its member orders as stored.
#[derive(Debug, Clone)]
pub struct Merged {
    pub group: ShipmentGroup,
    pub orders: Vec<Order>,
}

/// Merges `ids` into one shipment group, all or nothing: any order that does not qualify refuses
/// the merge (409 `merge_refused`, naming it as `order_ids[i]` and why; [`preview_merge`] shows
/// every reason). Each member gets the group's parcel with its own lines, one more version, an
/// audit entry and `order.merged`.
pub fn merge(
    tx: &mut dyn Tx,
    actor: &Actor,
    ids: &[OrderId],
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Merged, CoreError> {
    require(actor, Permission::OrdersCombine)?;
    check_ids(ids)?;
    let reason = reason_of(reason)?;
    let (preview, members) = assess(tx, actor, ids)?;
    if let Some((id, r)) = preview.refused.first() {
        let i = ids.iter().position(|x| x == id).unwrap_or(0);
        return Err(CoreError::Combine {
            code: "merge_refused",
            message: format!("order {id} cannot be merged: {} ({})", r.message, r.code),
            field: Some(format!("order_ids[{i}]")),
            status: None,
            version: None,
        });
    }
    form_group(tx, actor, members, "manual", reason, now)
}

fn form_group(
    tx: &mut dyn Tx,
    actor: &Actor,
    members: Vec<Order>,
    origin: &str,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Merged, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let p = &actor.principal;
    let group = ShipmentGroup {
        group_id: Uuid::now_v7(),
        parcel_id: Uuid::now_v7(),
        state: GroupState::Open,
        members: members.iter().map(|o| o.id).collect(),
        left: Vec::new(),
        origin: origin.to_owned(),
        reason: reason.clone(),
        created_by: format!("{}:{}", p.role.as_str(), p.key_name),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    tx.group_insert(&t, &group)?;
    let mut stored = Vec::new();
    for o in members {
        let mut next = o.clone();
        let mut parcel = Parcel::new(
            group.parcel_id,
            combine::remaining(&o),
            ParcelState::Planned,
            Some(group.group_id),
        );
        parcel.warehouse_id = ship_from(tx, &o)?;
        next.parcels = vec![parcel];
        next.shipment_group = Some(group.group_id);
        next.version += 1;
        next.updated_at = now;
        tx.order_update(&next)?;
        let detail = json!({
            "group_id": group.group_id, "parcel_id": group.parcel_id,
            "members": group.members, "origin": origin, "reason": reason,
        });
        record_with(
            tx,
            actor,
            Some(&o),
            &next,
            ("merge", ev::ORDER_MERGED),
            detail,
            group_extra(&group),
        )?;
        stored.push(next);
    }
    Ok(Merged {
        group,
        orders: stored,
    })
}

fn group_extra(g: &ShipmentGroup) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("group_id".into(), json!(g.group_id));
    m.insert("parcel_id".into(), json!(g.parcel_id));
    m.insert("members".into(), json!(g.members));
    m
}

/// The group `id` as the caller may see it: every member in the key's shop scope.
fn visible_group(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
) -> Result<(ShipmentGroup, Vec<Order>), CoreError> {
    let t = actor.principal.tenant_id.clone();
    let g = tx.group_get(&t, id)?.ok_or(CoreError::GroupNotFound)?;
    let mut ids = g.members.clone();
    ids.sort();
    let mut orders = Vec::new();
    for m in ids {
        let o = tx.order_get(&t, m)?.ok_or(CoreError::GroupNotFound)?;
        if !actor.principal.sees_shop(&o.shop_id) {
            return Err(CoreError::GroupNotFound);
        }
        orders.push(o);
    }
    Ok((g, orders))
}

/// Undoes an open merge before any member is released: each member leaves the group (its parcel
/// gone, one more version, `order.unmerged`), the group is `undone`. A released member refuses it
/// (409 `member_released`), the group untouched.
pub fn undo_merge(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<ShipmentGroup, CoreError> {
    require(actor, Permission::OrdersCombine)?;
    let (mut g, orders) = visible_group(tx, actor, id)?;
    if g.state != GroupState::Open {
        return Err(conflict(
            "group_not_open",
            format!(
                "the merge is {}: only an open merge is undone",
                g.state.as_str()
            ),
        ));
    }
    if let Some(o) = orders
        .iter()
        .find(|o| !matches!(o.status, Status::Paid | Status::OnHold | Status::Allocated))
    {
        let mut e = order_conflict(
            "member_released",
            format!(
                "order {} is {}: a merge is undone only before release",
                o.id, o.status
            ),
            o,
        );
        if let CoreError::Combine { field, .. } = &mut e {
            let i = g.members.iter().position(|m| *m == o.id).unwrap_or(0);
            *field = Some(format!("members[{i}]"));
        }
        return Err(e);
    }
    for o in orders {
        unmerge_order(tx, actor, &o, &g, "undone", now)?;
    }
    g.state = GroupState::Undone;
    g.version += 1;
    g.updated_at = now;
    tx.group_update(&actor.principal.tenant_id.clone(), &g)?;
    Ok(g)
}

/// Takes `o` (as stored) out of group `g`: version + 1, `order.unmerged`.
fn unmerge_order(
    tx: &mut dyn Tx,
    actor: &Actor,
    o: &Order,
    g: &ShipmentGroup,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let mut next = o.clone();
    leave(&mut next, g.group_id);
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    record_with(
        tx,
        actor,
        Some(o),
        &next,
        ("unmerge", ev::ORDER_UNMERGED),
        json!({ "group_id": g.group_id, "why": why }),
        group_extra(g),
    )?;
    Ok(next)
}

fn leave(o: &mut Order, group: Uuid) {
    o.shipment_group = None;
    o.parcels.retain(|p| p.group_id != Some(group));
}

fn goods(o: &Order) -> Vec<(u32, &Sku, u32)> {
    o.lines
        .iter()
        .map(|l| (l.line_id, &l.sku, o.units_to_ship(l.line_id)))
        .collect()
}

/// What a change of an order (`old` → `next`, not yet written) does to its shipment plan; called
/// by every path that changes an order's status, goods or receiver (lifecycle moves, channel
/// updates, edits) before it writes `next`. Cancelled, or with other goods or another receiver:
/// a merged order leaves its group (a group left with one member is dissolved, that member
/// leaving too, one version of its own); a split order not yet partly shipped loses its parcels
/// (a split by stock gives its parcels' reservations back and reserves the order whole again, or
/// puts it back on backorder). A partly shipped order is not cancelled (409 `partly_shipped`);
/// when its goods change, its unshipped parcels are cut to what is left to ship
/// ([`cut_to_remaining`]), and its shipment completes once nothing unshipped is left
/// ([`complete_if_shipped`], called by the writer after the order is written).
pub(crate) fn on_order_changed(
    tx: &mut dyn Tx,
    actor: &Actor,
    old: &Order,
    next: &mut Order,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    if next.parcels.is_empty() && next.shipment_group.is_none() {
        return Ok(());
    }
    let cancelled = next.status == Status::Cancelled && old.status != Status::Cancelled;
    if cancelled && !old.shipped_lines.is_empty() {
        return Err(order_conflict(
            "partly_shipped",
            "part of the order has shipped: it cannot be cancelled (open an after-sales case)",
            old,
        ));
    }
    let why = if cancelled {
        "cancelled"
    } else if goods(old) != goods(next) {
        "goods_changed"
    } else if combine::receiver_key(&old.receiver) != combine::receiver_key(&next.receiver) {
        "receiver_changed"
    } else {
        return Ok(());
    };
    if let Some(gid) = next.shipment_group {
        return leave_group(tx, actor, gid, next, why, now);
    }
    if why == "goods_changed" && !next.shipped_lines.is_empty() {
        return cut_to_remaining(tx, actor, old, next, now);
    }
    if next.shipped_lines.is_empty() {
        // A split by stock holds part of the order's units in a parcel's own reservation, or
        // waits for part of them: without its plan the order reserves (or waits for) its units
        // whole again, as any order does.
        let by_stock = next.parcels.iter().any(|p| {
            p.state == ParcelState::Waiting
                || p.reservation_id
                    .is_some_and(|r| Some(r) != next.reservation_id)
        });
        release_parcel_reservations(tx, actor, next, now)?;
        next.parcels.clear();
        if by_stock && !cancelled {
            crate::inventory::rereserve(tx, actor, next, now)?;
        }
    }
    Ok(())
}

/// A partly shipped order whose goods changed (`old` → `next`, not yet written): its unshipped
/// parcels are cut to what is left to ship, first parcels first ([`combine::cut_parcels`]), emptied
/// ones dropped; each cut planned parcel gives the units it lost back from the reservation holding
/// them (its own, else the order's: `release_units`, a `release` ledger row per SKU), a reservation
/// left empty is forgotten, and an order whose waiting parcel went leaves backorder. A change
/// needing more units than the parcels hold (or fewer than shipped) is refused (409
/// `partly_shipped`).
fn cut_to_remaining(
    tx: &mut dyn Tx,
    actor: &Actor,
    old: &Order,
    next: &mut Order,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = actor.principal.tenant_id.clone();
    let cuts = combine::cut_parcels(next).map_err(|r| order_conflict(r.code, r.message, old))?;
    for cut in &cuts {
        if cut.parcel.state != ParcelState::Planned {
            continue;
        }
        let Some(rid) = cut.parcel.reservation_id.or(old.reservation_id) else {
            continue;
        };
        let tracked = tracked_lines(tx, &t, old, &cut.removed)?;
        let units = crate::inventory::tracked_units(tx, &t, &tracked)?;
        if !units.is_empty() {
            crate::inventory::release_units(tx, actor, rid, &units, now)?;
        }
    }
    let active = |tx: &mut dyn Tx, id: Option<Uuid>| -> Result<Option<Uuid>, CoreError> {
        Ok(match id {
            Some(r)
                if tx
                    .reservation_get(&t, r)?
                    .is_some_and(|r| r.state.is_active()) =>
            {
                Some(r)
            }
            _ => None,
        })
    };
    next.reservation_id = active(tx, next.reservation_id)?;
    for i in 0..next.parcels.len() {
        let kept = active(tx, next.parcels[i].reservation_id)?;
        next.parcels[i].reservation_id = kept;
    }
    // The waiting parcel went: the order waits for nothing any more. Its `out_of_stock` is
    // resolved by the caller once the order is written (`exception.resolved`, the work item
    // closed: `usecases::set_exception`).
    let waited = old.parcels.iter().any(|p| p.state == ParcelState::Waiting);
    if waited && !next.parcels.iter().any(|p| p.state == ParcelState::Waiting) {
        tx.backorder_remove(&t, next.id)?;
    }
    Ok(())
}

/// Whether a cut of `old`'s parcels (now `next`) took away the parcel that waited on backorder
/// while the order still carries `out_of_stock`: then the caller resolves it.
pub(crate) fn waits_no_more(old: &Order, next: &Order) -> bool {
    next.has_exception(OUT_OF_STOCK)
        && old.parcels.iter().any(|p| p.state == ParcelState::Waiting)
        && !next.parcels.is_empty()
        && !next.parcels.iter().any(|p| p.state == ParcelState::Waiting)
}

/// After a goods change cut a partly shipped order's last unshipped parcel away (`order` as
/// stored, released, every unit to ship shipped): the order completes its shipment as its last
/// parcel's shipment would — `shipped` through the lifecycle with the waybill of the parcel that
/// left last, `order.shipped`, one version of its own. The goods left already, so a stop on the
/// order or a carrier since taken off the whitelist does not hold the record back. Any other
/// order is returned as it is.
pub(crate) fn complete_if_shipped(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: Order,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    if order.status != Status::Released
        || order.parcels.is_empty()
        || order.shipped_lines.is_empty()
        || !combine::all_shipped(&order)
    {
        return Ok(order);
    }
    let Some(last) = order
        .parcels
        .iter()
        .filter(|p| p.state == ParcelState::Shipped)
        .max_by_key(|p| p.shipped_at)
        .cloned()
    else {
        return Ok(order);
    };
    let (Some(carrier), Some(tracking_no)) = (last.carrier.clone(), last.tracking_no.clone())
    else {
        return Ok(order);
    };
    let logistics_no = last
        .logistics_no
        .clone()
        .unwrap_or_else(|| tracking_no.clone());
    let cmd = Command::Ship {
        carrier: carrier.clone(),
        tracking_no: tracking_no.clone(),
        logistics_no,
    };
    let mut policy = tx.tenant_policy(&actor.principal.tenant_id.clone())?;
    if !policy.carrier_whitelist.contains(&carrier) {
        policy.carrier_whitelist.push(carrier.clone());
    }
    let mut unstopped = order.clone();
    unstopped.exceptions.clear();
    let mut next = lifecycle::apply(&unstopped, &cmd, &policy, now).map_err(transition_error)?;
    next.exceptions = order.exceptions.clone();
    // Every parcel that left was acknowledged by the channel one by one already (a partial
    // write-back): nothing is left to write back.
    if next.parcels.iter().all(|p| p.synced_at.is_some()) {
        next.last_sync_at = Some(now);
    }
    tx.order_update(&next)?;
    let detail = json!({
        "parcel_id": last.parcel_id, "carrier": carrier, "tracking_no": tracking_no,
        "why": "the order's goods changed and nothing unshipped is left: it shipped with its last parcel",
    });
    let mut extra = serde_json::Map::new();
    extra.insert(
        "parcel".into(),
        json!({ "parcel_id": last.parcel_id, "lines": last.lines, "carrier": carrier,
                "tracking_no": tracking_no }),
    );
    record_with(
        tx,
        actor,
        Some(&order),
        &next,
        ("ship", ev::ORDER_SHIPPED),
        detail,
        extra,
    )?;
    crate::usecases::resolve_moved_on(tx, actor, next, now)
}

/// `next` (not yet written) leaves group `gid` because of `why`; the group records it, and is
/// dissolved when fewer than two members are left (the last one leaves as well).
fn leave_group(
    tx: &mut dyn Tx,
    actor: &Actor,
    gid: Uuid,
    next: &mut Order,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = actor.principal.tenant_id.clone();
    leave(next, gid);
    let Some(mut g) = tx.group_get(&t, gid)? else {
        return Ok(());
    };
    if g.state != GroupState::Open {
        return Ok(());
    }
    g.members.retain(|m| *m != next.id);
    g.left.push(LeftGroup {
        order_id: next.id,
        why: why.to_owned(),
        at: now,
    });
    if g.members.len() < 2 {
        g.state = GroupState::Dissolved;
        for m in std::mem::take(&mut g.members) {
            if let Some(o) = tx.order_get(&t, m)? {
                unmerge_order(tx, actor, &o, &g, "dissolved", now)?;
            }
            g.left.push(LeftGroup {
                order_id: m,
                why: "dissolved".into(),
                at: now,
            });
        }
    }
    g.version += 1;
    g.updated_at = now;
    tx.group_update(&t, &g).map_err(CoreError::from)
}

/// Releases the active reservations parcels hold of their own (served from backorder after a
/// split by stock); the order's own reservation is its lifecycle's to release.
fn release_parcel_reservations(
    tx: &mut dyn Tx,
    actor: &Actor,
    o: &mut Order,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let t = actor.principal.tenant_id.clone();
    for p in &mut o.parcels {
        if let Some(id) = p.reservation_id.take()
            && Some(id) != o.reservation_id
            && tx
                .reservation_get(&t, id)?
                .is_some_and(|r| r.state.is_active())
        {
            crate::inventory::move_inner(
                tx,
                actor,
                id,
                ReservationCommand::Release(ReleaseReason::Manual),
                now,
            )?;
        }
    }
    Ok(())
}

/// Refuses a whole-order shipment (`Ship` through the lifecycle) of an order that ships in
/// parcels (409 `ships_in_parcels`): each parcel ships through [`ship_parcel`].
pub(crate) fn refuse_whole_shipment(
    order: &Order,
    kind: lifecycle::CommandKind,
) -> Result<(), CoreError> {
    if kind == lifecycle::CommandKind::Ship && !order.parcels.is_empty() {
        return Err(order_conflict(
            "ships_in_parcels",
            format!(
                "the order ships in {} parcels: POST /v1/orders/{}/parcels/{{parcel_id}}/ship",
                order.parcels.len(),
                order.id
            ),
            order,
        ));
    }
    Ok(())
}

/// How an order is split.
#[derive(Debug, Clone)]
pub enum SplitBy {
    /// Parcels with these lines and quantities, covering every unit still to ship once.
    Lines(Vec<Vec<LineQty>>),
    /// What one warehouse has now ships now, the rest waits on backorder (the order must be on
    /// backorder).
    Stock,
    /// Parcels within the weight limit of the warehouse the order ships from (its
    /// `parcel_max_kg`), by the SKU master's unit weights.
    Weight,
}

/// Splits an order (paid, not released, not merged, not split) into parcels, with an audit entry
/// and `order.split`. By lines: each parcel ships from the order's warehouse when its turn comes
/// (the order's one reservation). By stock: the warehouse (among those shipping to the receiver)
/// that has the most of what is short reserves it now as the first parcel; the second waits on
/// backorder, the order staying on it (`out_of_stock`) until that parcel's stock is reserved.
pub fn split(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    by: SplitBy,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    require(actor, Permission::OrdersCombine)?;
    let reason = reason_of(reason)?;
    let order = crate::usecases::visible_order(tx, actor, order_id)?;
    if let Some(r) = combine::split_refusal(&order) {
        return Err(order_conflict(r.code, r.message, &order));
    }
    let mut next = order.clone();
    let detail = match by {
        SplitBy::Lines(parcels) => {
            combine::check_split(&order, &parcels)?;
            let short = order.has_exception(OUT_OF_STOCK);
            let wh = ship_from(tx, &order)?;
            next.parcels = parcels
                .iter()
                .map(|lines| {
                    let state = if short {
                        ParcelState::Waiting
                    } else {
                        ParcelState::Planned
                    };
                    let mut p = Parcel::new(Uuid::now_v7(), lines.clone(), state, None);
                    p.warehouse_id = wh.clone();
                    p
                })
                .collect();
            json!({ "by": "lines", "reason": reason, "parcels": next.parcels })
        }
        SplitBy::Stock => split_by_stock(tx, actor, &order, &mut next, now)?,
        SplitBy::Weight => split_by_weight(tx, &order, &mut next)?,
    };
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    let mut extra = serde_json::Map::new();
    extra.insert("parcels".into(), parcels_payload(&next));
    let mut detail = detail;
    detail["reason"] = json!(reason);
    record_with(
        tx,
        actor,
        Some(&order),
        &next,
        ("split", ev::ORDER_SPLIT),
        detail,
        extra,
    )?;
    Ok(next)
}

/// Parcels as event payloads carry them: ids, state, lines, waybill; no personal data.
fn parcels_payload(o: &Order) -> serde_json::Value {
    json!(
        o.parcels
            .iter()
            .map(|p| json!({
                "parcel_id": p.parcel_id, "group_id": p.group_id, "state": p.state.as_str(),
                "lines": p.lines, "warehouse_id": p.warehouse_id, "carrier": p.carrier,
                "tracking_no": p.tracking_no,
            }))
            .collect::<Vec<_>>()
    )
}

/// The stock side of a split by stock: offers per candidate warehouse, the plan, the first
/// parcel's reservation. Fills `next`'s parcels and reservation; returns the audit detail.
fn split_by_stock(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    next: &mut Order,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, CoreError> {
    let t = actor.principal.tenant_id.clone();
    if !order.has_exception(OUT_OF_STOCK) {
        return Err(order_conflict(
            "not_short",
            "the order is not on backorder: its stock is reserved whole, nothing to split by stock",
            order,
        ));
    }
    let left = combine::remaining(order);
    let offers = offers(tx, &t, order, &left)?;
    let plan = combine::plan_by_stock(&left, &offers)?;
    let tracked = tracked_lines(tx, &t, order, &plan.now)?;
    let mut first = Parcel::new(Uuid::now_v7(), plan.now.clone(), ParcelState::Planned, None);
    first.warehouse_id = Some(plan.warehouse_id.clone());
    if !tracked.is_empty() {
        let input = ReserveInput {
            reference: order.id.to_string(),
            lines: tracked,
            region: None,
            warehouse: Some(plan.warehouse_id.clone()),
            mode: crate::inventory::deduction_mode(order),
            hold_for: None,
        };
        let rec = crate::inventory::reserve_inner(tx, actor, &input, now)?;
        next.reservation_id = Some(rec.reservation_id);
    }
    let rest = Parcel::new(
        Uuid::now_v7(),
        plan.later.clone(),
        ParcelState::Waiting,
        None,
    );
    // The order stays on backorder for the rest, queued on its SKUs.
    let short: Vec<Sku> = tracked_lines(tx, &t, order, &plan.later)?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    if let Some(sku) = short.first() {
        crate::inventory::go_on_backorder(tx, &t, next, sku, now)?;
    }
    next.parcels = vec![first, rest];
    Ok(json!({
        "by": "stock", "warehouse_id": plan.warehouse_id, "now": plan.now, "later": plan.later,
        "reservation_id": next.reservation_id,
    }))
}

/// A split by weight: the warehouse the order ships from, its parcel limit, each line's unit
/// weight (a kit without one: its components'; unknown: 1 kg, as a waybill declares it), the
/// plan. Fills `next`'s parcels; returns the audit detail.
fn split_by_weight(
    tx: &mut dyn Tx,
    order: &Order,
    next: &mut Order,
) -> Result<serde_json::Value, CoreError> {
    let t = order.tenant_id.clone();
    let Some(wh) = ship_from(tx, order)? else {
        return Err(order_conflict(
            "no_warehouse",
            "the order has no warehouse yet (neither allocated nor reserved): its parcel limit is not known",
            order,
        ));
    };
    let max = tx
        .warehouses(&t)?
        .into_iter()
        .find(|w| w.warehouse_id == wh)
        .and_then(|w| w.parcel_max_kg)
        .unwrap_or_default();
    let mut unit_kg = BTreeMap::new();
    for l in &order.lines {
        if let Some(kg) = unit_weight(tx, &t, &l.sku)? {
            unit_kg.insert(l.line_id, kg);
        }
    }
    let left = combine::remaining(order);
    let plan = combine::plan_by_weight(&left, &unit_kg, max)?;
    let state = if order.has_exception(OUT_OF_STOCK) {
        ParcelState::Waiting
    } else {
        ParcelState::Planned
    };
    next.parcels = plan
        .into_iter()
        .map(|lines| {
            let mut p = Parcel::new(Uuid::now_v7(), lines, state, None);
            p.warehouse_id = Some(wh.clone());
            p
        })
        .collect();
    Ok(
        json!({ "by": "weight", "warehouse_id": wh, "parcel_max_kg": max.to_string(),
               "parcels": next.parcels }),
    )
}

/// The weight of one unit of `sku` in kilograms: its own, else a kit's components' (each known).
fn unit_weight(
    tx: &mut dyn Tx,
    t: &TenantId,
    sku: &Sku,
) -> Result<Option<rust_decimal::Decimal>, CoreError> {
    let Some(rec) = tx.sku_get(t, sku)? else {
        return Ok(None);
    };
    if rec.weight_kg.is_some() {
        return Ok(rec.weight_kg);
    }
    let Some(parts) = rec.components else {
        return Ok(None);
    };
    let mut sum = rust_decimal::Decimal::ZERO;
    for (c, n) in parts {
        match tx.sku_get(t, &c)?.and_then(|r| r.weight_kg) {
            Some(w) => sum += w * rust_decimal::Decimal::from(n),
            None => return Ok(None),
        }
    }
    Ok(Some(sum))
}

/// `(sku, units)` of the tracked lines (SKUs in the master) among `lines` of `order`.
fn tracked_lines(
    tx: &mut dyn Tx,
    t: &TenantId,
    order: &Order,
    lines: &[LineQty],
) -> Result<Vec<(Sku, u32)>, CoreError> {
    let mut out = Vec::new();
    for l in lines {
        if let Some(line) = order.lines.iter().find(|x| x.line_id == l.line_id)
            && tx.sku_get(t, &line.sku)?.is_some()
        {
            out.push((line.sku.clone(), l.quantity));
        }
    }
    Ok(out)
}

/// Stock units (SKU, count) one unit of a line takes: a kit's components, or the SKU itself.
type PerUnit = Vec<(Sku, i64)>;

/// What each warehouse shipping to the receiver could ship of `left` now, by priority: per line
/// in line order, the units its available stock covers (a kit: the least over its components;
/// an untracked SKU: all of it), each unit counted once.
fn offers(
    tx: &mut dyn Tx,
    t: &TenantId,
    order: &Order,
    left: &[LineQty],
) -> Result<Vec<WarehouseOffer>, CoreError> {
    let all = tx.warehouses(t)?;
    let covers: Vec<WarehouseCover> = all
        .iter()
        .map(|w| WarehouseCover {
            warehouse: w.warehouse_id.clone(),
            priority: w.priority,
            regions: w.regions.clone(),
        })
        .collect();
    let candidates: Vec<WarehouseId> = if order.receiver.province.is_empty() {
        all.iter().map(|w| w.warehouse_id.clone()).collect()
    } else {
        orderhub_domain::inventory::warehouses_for(&covers, &order.receiver.province)
            .into_iter()
            .map(|c| c.warehouse.clone())
            .collect()
    };
    // Per line: its stock units per unit of the line (`None`: untracked).
    let mut needs: Vec<(LineQty, Option<PerUnit>)> = Vec::new();
    let mut skus = BTreeSet::new();
    for l in left {
        let Some(line) = order.lines.iter().find(|x| x.line_id == l.line_id) else {
            continue;
        };
        let per_unit = crate::inventory::tracked_units(tx, t, &[(line.sku.clone(), 1)])?;
        if per_unit.is_empty() {
            needs.push((*l, None));
        } else {
            skus.extend(per_unit.keys().cloned());
            needs.push((*l, Some(per_unit.into_iter().collect())));
        }
    }
    let mut offers = Vec::new();
    for wh in candidates {
        // Positions in SKU order, as every reservation reads them.
        let mut budget: BTreeMap<Sku, i64> = BTreeMap::new();
        for s in &skus {
            let have = tx
                .stock_get(t, s, &wh)?
                .unwrap_or_default()
                .level
                .available();
            budget.insert(s.clone(), have.max(0));
        }
        let mut lines = Vec::new();
        for (l, per) in &needs {
            let units = match per {
                None => l.quantity,
                Some(parts) => {
                    let most = parts
                        .iter()
                        .map(|(s, n)| budget.get(s).copied().unwrap_or(0) / (*n).max(1))
                        .min()
                        .unwrap_or(0);
                    let units = most.min(i64::from(l.quantity)).max(0) as u32;
                    for (s, n) in parts {
                        if let Some(b) = budget.get_mut(s) {
                            *b -= n * i64::from(units);
                        }
                    }
                    units
                }
            };
            if units > 0 {
                lines.push(LineQty {
                    line_id: l.line_id,
                    quantity: units,
                });
            }
        }
        offers.push(WarehouseOffer {
            warehouse_id: wh,
            lines,
        });
    }
    Ok(offers)
}

/// Reserves the units of an order's parcels waiting on backorder (stock arrived, or a payment):
/// every waiting parcel in one warehouse, or none. Served, they are planned in that warehouse and
/// hold the new reservation (the order's own, when it holds none active); short, the order stays
/// on backorder for the SKU short.
pub(crate) fn reserve_waiting(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &mut Order,
    now: DateTime<Utc>,
) -> Result<Reserved, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let waiting: Vec<LineQty> = order
        .parcels
        .iter()
        .filter(|p| p.state == ParcelState::Waiting)
        .flat_map(|p| p.lines.iter().copied())
        .collect();
    let lines = tracked_lines(tx, &t, order, &waiting)?;
    let served = |order: &mut Order, rid: Option<Uuid>, wh: Option<WarehouseId>| {
        for p in order
            .parcels
            .iter_mut()
            .filter(|p| p.state == ParcelState::Waiting)
        {
            p.state = ParcelState::Planned;
            p.reservation_id = rid;
            p.warehouse_id = wh.clone();
        }
        order.exceptions.retain(|e| e != OUT_OF_STOCK);
    };
    if lines.is_empty() {
        served(order, None, None);
        return Ok(Reserved::Untracked);
    }
    let input = ReserveInput {
        reference: order.id.to_string(),
        lines,
        region: Some(order.receiver.province.clone()).filter(|p| !p.is_empty()),
        warehouse: None,
        mode: crate::inventory::deduction_mode(order),
        hold_for: None,
    };
    match crate::inventory::reserve_inner(tx, actor, &input, now) {
        Ok(rec) => {
            let wh = rec.lines.first().map(|l| l.warehouse_id.clone());
            let own_active = match order.reservation_id {
                Some(id) => tx
                    .reservation_get(&t, id)?
                    .is_some_and(|r| r.state.is_active()),
                None => false,
            };
            if own_active {
                served(order, Some(rec.reservation_id), wh);
            } else {
                order.reservation_id = Some(rec.reservation_id);
                served(order, None, wh);
            }
            Ok(Reserved::Yes)
        }
        Err(CoreError::OutOfStock { sku, .. }) => {
            let sku = Sku::parse(&sku)?;
            crate::inventory::go_on_backorder(tx, &t, order, &sku, now)?;
            Ok(Reserved::Short)
        }
        Err(e) => Err(e),
    }
}

/// A parcel's waybill, as the warehouse (or its WMS) reports it.
#[derive(Debug, Clone)]
pub struct ParcelWaybill {
    pub carrier: CarrierCode,
    pub tracking_no: String,
    pub logistics_no: String,
}

fn transition_error(e: TransitionError) -> CoreError {
    match e {
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
    }
}

/// Ships parcel `parcel_id` of order `order_id` with its waybill: for a merged parcel, every
/// member order at once. Each order must be released and not stopped; the carrier must be on the
/// tenant's whitelist (the lifecycle's guard of a shipment). Per order: the parcel's units are
/// consumed from its reservation, added to its shipped quantities per line; the order whose last
/// unit this was moves to `shipped` (`order.shipped`, tracking number = this parcel's), another
/// stays released with `order.parcel_shipped`. The same waybill again answers the orders as they
/// are (idempotent); another waybill for a shipped parcel is refused (`parcel_shipped`).
pub fn ship_parcel(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    parcel_id: Uuid,
    waybill: &ParcelWaybill,
    now: DateTime<Utc>,
) -> Result<Vec<Order>, CoreError> {
    require(actor, Permission::ParcelsShip)?;
    let t = actor.principal.tenant_id.clone();
    let order = crate::usecases::visible_order(tx, actor, order_id)?;
    let parcel = order
        .parcels
        .iter()
        .find(|p| p.parcel_id == parcel_id)
        .cloned()
        .ok_or(CoreError::ParcelNotFound)?;
    match parcel.state {
        ParcelState::Shipped if parcel.tracking_no.as_deref() == Some(&waybill.tracking_no) => {
            return Ok(vec![order]);
        }
        ParcelState::Shipped => {
            return Err(order_conflict(
                "parcel_shipped",
                format!(
                    "the parcel shipped already with tracking number {}",
                    parcel.tracking_no.as_deref().unwrap_or("")
                ),
                &order,
            ));
        }
        ParcelState::Waiting => {
            return Err(order_conflict(
                "parcel_waiting",
                "the parcel's stock is short: it waits on backorder",
                &order,
            ));
        }
        ParcelState::Planned => {}
    }
    let ToShip {
        mut group,
        orders,
        cmd,
        policy,
    } = members_to_ship(tx, actor, &order, &parcel, waybill, now)?;
    let mut stored = Vec::new();
    for o in orders {
        stored.push(ship_one(
            tx, actor, &o, parcel_id, &cmd, waybill, &policy, now,
        )?);
    }
    if let Some(g) = &mut group {
        g.state = GroupState::Shipped;
        g.version += 1;
        g.updated_at = now;
        tx.group_update(&t, g)?;
    }
    Ok(stored)
}

/// The orders a parcel ships (a merged parcel: every member of its open group, in id order),
/// each checked as a shipment is: released, visible to the key, the lifecycle's guards (not
/// stopped, a whitelisted carrier, a well-formed waybill), all from one warehouse.
struct ToShip {
    group: Option<ShipmentGroup>,
    orders: Vec<Order>,
    cmd: Command,
    policy: lifecycle::Policy,
}

fn members_to_ship(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    parcel: &Parcel,
    waybill: &ParcelWaybill,
    now: DateTime<Utc>,
) -> Result<ToShip, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let order_id = order.id;
    let group = match parcel.group_id {
        Some(g) => Some(tx.group_get(&t, g)?.ok_or(CoreError::GroupNotFound)?),
        None => None,
    };
    let mut members = match &group {
        Some(g) if g.state == GroupState::Open => g.members.clone(),
        Some(g) => {
            return Err(conflict(
                "group_not_open",
                format!("the parcel's merge is {}", g.state.as_str()),
            ));
        }
        None => vec![order_id],
    };
    members.sort();
    let policy = tx.tenant_policy(&t)?;
    let cmd = Command::Ship {
        carrier: waybill.carrier.clone(),
        tracking_no: waybill.tracking_no.clone(),
        logistics_no: waybill.logistics_no.clone(),
    };
    let mut orders = Vec::new();
    for m in &members {
        let o = if *m == order_id {
            order.clone()
        } else {
            tx.order_get(&t, *m)?.ok_or(CoreError::NotFound)?
        };
        if !actor.principal.sees_shop(&o.shop_id) {
            return Err(CoreError::NotFound);
        }
        if o.status != Status::Released {
            return Err(order_conflict(
                "not_released",
                format!(
                    "order {} is {}: a parcel leaves once every order in it is released",
                    o.id, o.status
                ),
                &o,
            ));
        }
        // The lifecycle's guards of a shipment: released, not stopped, a whitelisted carrier and
        // a well-formed waybill.
        lifecycle::apply(&o, &cmd, &policy, now).map_err(transition_error)?;
        orders.push(o);
    }
    let warehouses: BTreeSet<_> = orders
        .iter()
        .map(|o| o.fulfillment.warehouse_id.clone())
        .collect();
    if warehouses.len() > 1 {
        return Err(conflict(
            "warehouses_differ",
            "the merged orders are released to different warehouses: one parcel leaves one warehouse",
        ));
    }
    Ok(ToShip {
        group,
        orders,
        cmd,
        policy,
    })
}

#[allow(clippy::too_many_arguments)]
fn ship_one(
    tx: &mut dyn Tx,
    actor: &Actor,
    o: &Order,
    parcel_id: Uuid,
    cmd: &Command,
    waybill: &ParcelWaybill,
    policy: &lifecycle::Policy,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let mut staged = o.clone();
    let Some(p) = staged.parcels.iter_mut().find(|p| p.parcel_id == parcel_id) else {
        return Err(CoreError::ParcelNotFound);
    };
    let lines = p.lines.clone();
    let reservation = p.reservation_id.or(o.reservation_id);
    p.state = ParcelState::Shipped;
    p.carrier = Some(waybill.carrier.clone());
    p.tracking_no = Some(waybill.tracking_no.clone());
    p.logistics_no = Some(waybill.logistics_no.clone());
    p.shipped_at = Some(now);
    p.warehouse_id = o
        .fulfillment
        .warehouse_id
        .clone()
        .or(p.warehouse_id.clone());
    let tracked = tracked_lines(tx, &t, o, &lines)?;
    let units = crate::inventory::tracked_units(tx, &t, &tracked)?;
    if !units.is_empty() {
        let id = reservation.ok_or_else(|| {
            CoreError::ReservationNotAllowed("the parcel's stock is not reserved".into())
        })?;
        crate::inventory::consume_units(tx, actor, id, &units, now)?;
    }
    combine::add_shipped(&mut staged, &lines);
    let mut extra = serde_json::Map::new();
    extra.insert(
        "parcel".into(),
        json!({ "parcel_id": parcel_id, "lines": lines, "carrier": waybill.carrier,
                "tracking_no": waybill.tracking_no }),
    );
    let detail = json!({
        "parcel_id": parcel_id, "lines": lines, "carrier": waybill.carrier,
        "tracking_no": waybill.tracking_no, "logistics_no": waybill.logistics_no,
    });
    if combine::all_shipped(&staged) {
        let next = lifecycle::apply(&staged, cmd, policy, now).map_err(transition_error)?;
        tx.order_update(&next)?;
        record_with(
            tx,
            actor,
            Some(o),
            &next,
            ("ship", ev::ORDER_SHIPPED),
            detail,
            extra,
        )?;
        crate::usecases::resolve_moved_on(tx, actor, next, now)
    } else {
        staged.version += 1;
        staged.updated_at = now;
        tx.order_update(&staged)?;
        record_with(
            tx,
            actor,
            Some(o),
            &staged,
            ("ship_parcel", ev::ORDER_PARCEL_SHIPPED),
            detail,
            extra,
        )?;
        Ok(staged)
    }
}

/// Records that the order's channel acknowledged the shipment of `parcels` (each parcel's
/// `synced_at`); once every shipped parcel is acknowledged and the order shipped whole, the order's
/// `last_sync_at` too (a `writeback_failed` exception resolves), as [`crate::usecases::mark_synced`].
pub fn mark_parcels_synced(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    parcels: &[Uuid],
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let order = tx.order_get(&t, order_id)?.ok_or(CoreError::NotFound)?;
    let mut next = order.clone();
    for p in next
        .parcels
        .iter_mut()
        .filter(|p| parcels.contains(&p.parcel_id) && p.synced_at.is_none())
    {
        p.synced_at = Some(now);
    }
    let done = combine::all_shipped(&next)
        && next
            .parcels
            .iter()
            .all(|p| p.state != ParcelState::Shipped || p.synced_at.is_some());
    if done {
        return crate::usecases::mark_synced_order(tx, actor, &order, next, detail, now);
    }
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    crate::usecases::record(
        tx,
        actor,
        Some(&order),
        &next,
        "channel_writeback",
        ev::WRITEBACK_ACKNOWLEDGED,
        detail,
    )?;
    Ok(next)
}

/// The tenant's merge settings.
pub fn merge_rules(tx: &mut dyn Tx, actor: &Actor) -> Result<MergeRules, CoreError> {
    require(actor, Permission::OrdersRead)?;
    Ok(tx.merge_rules(&actor.principal.tenant_id.clone())?)
}

/// Sets the tenant's merge settings (admin).
pub fn set_merge_rules(
    tx: &mut dyn Tx,
    actor: &Actor,
    rules: &MergeRules,
    now: DateTime<Utc>,
) -> Result<MergeRules, CoreError> {
    require(actor, Permission::MergeRulesManage)?;
    rules.check()?;
    tx.merge_rules_put(&actor.principal.tenant_id.clone(), rules, now)?;
    Ok(rules.clone())
}

/// The automatic merge, run in the transaction of every payment (`usecases::transition`) when
/// the tenant turned it on (`merge_rules.auto`): the just-paid `order` (as stored) joins the open
/// merge of another order of its buyer whose first member it qualifies against, or forms a merge
/// with those of the buyer's orders that qualify ([`assess`], the rules a manual merge follows).
/// An order that does not qualify ships alone; nothing is refused.
///
/// The candidates are the buyer's open orders the paying principal may see (a shop-scoped key
/// merges within its shops; an order of a shop it does not see is passed over, never a 404), read
/// — on PostgreSQL locked — in id order, as every merge reads its orders, so two payments of one
/// buyer at once wait on each other instead of locking each other's orders in opposite orders. A
/// candidate that cannot be merged never fails the payment: only the store's own errors (a
/// conflict, retried as any) do. Returns the order as stored.
pub(crate) fn auto_merge(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: Order,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let rules = tx.merge_rules(&t)?;
    if !rules.auto || combine::refusal(&order).is_some() {
        return Ok(order);
    }
    let open = [Status::Paid, Status::OnHold, Status::Allocated];
    let mut ids: Vec<OrderId> = tx
        .buyer_orders(&t, &order)?
        .into_iter()
        .filter(|(id, st)| *id != order.id && open.iter().any(|s| s.as_str() == st))
        .map(|(id, _)| id)
        .take(combine::MERGE_ORDERS_MAX - 1)
        .collect();
    // Canonical order: by id, as `assess` and a manual merge read (and lock) orders.
    ids.sort();
    let mut candidates = Vec::new();
    for id in ids {
        if let Some(o) = tx
            .order_get(&t, id)?
            .filter(|o| actor.principal.sees_shop(&o.shop_id))
        {
            candidates.push(o);
        }
    }
    // An open merge of the buyer's: join it when the order qualifies against its first member.
    for o in &candidates {
        let Some(g) = o.shipment_group else { continue };
        if let Some(joined) = join_group(tx, actor, &order, g, &rules, now)? {
            return Ok(joined);
        }
    }
    let mut ids: Vec<OrderId> = candidates.iter().map(|o| o.id).collect();
    if ids.is_empty() {
        return Ok(order);
    }
    ids.push(order.id);
    let (preview, members) = match assess(tx, actor, &ids) {
        Ok(r) => r,
        Err(e @ CoreError::Store(_)) => return Err(e),
        // A candidate that cannot be assessed is not the payment's failure: it ships alone.
        Err(_) => return Ok(order),
    };
    if !preview.mergeable.contains(&order.id) {
        return Ok(order);
    }
    let merged = form_group(tx, actor, members, "auto", None, now)?;
    Ok(merged
        .orders
        .into_iter()
        .find(|o| o.id == order.id)
        .unwrap_or(order))
}

/// Adds `order` (as stored) to the open group `gid` when it qualifies against the group's first
/// member and ships from the same warehouse: `Ok(None)` when it does not.
fn join_group(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    gid: Uuid,
    rules: &MergeRules,
    now: DateTime<Utc>,
) -> Result<Option<Order>, CoreError> {
    let t = actor.principal.tenant_id.clone();
    let Some(mut g) = tx.group_get(&t, gid)? else {
        return Ok(None);
    };
    if g.state != GroupState::Open || g.members.len() >= combine::MERGE_ORDERS_MAX {
        return Ok(None);
    }
    let Some(first) = g.members.first().copied() else {
        return Ok(None);
    };
    // Every member in the principal's sight (read in id order, as the candidates were).
    let mut ids = g.members.clone();
    ids.sort();
    for id in ids {
        match tx.order_get(&t, id)? {
            Some(m) if actor.principal.sees_shop(&m.shop_id) => {}
            _ => return Ok(None),
        }
    }
    let Some(first) = tx.order_get(&t, first)? else {
        return Ok(None);
    };
    if combine::refusal_against(&first, order, rules).is_some() {
        return Ok(None);
    }
    let wh = ship_from(tx, order)?;
    if let (Some(a), Some(b)) = (ship_from(tx, &first)?, &wh)
        && a != *b
    {
        return Ok(None);
    }
    g.members.push(order.id);
    g.version += 1;
    g.updated_at = now;
    tx.group_update(&t, &g)?;
    let mut next = order.clone();
    let mut parcel = Parcel::new(
        g.parcel_id,
        combine::remaining(order),
        ParcelState::Planned,
        Some(g.group_id),
    );
    parcel.warehouse_id = wh;
    next.parcels = vec![parcel];
    next.shipment_group = Some(g.group_id);
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    let detail = json!({
        "group_id": g.group_id, "parcel_id": g.parcel_id, "members": g.members, "origin": "auto",
        "joined": true,
    });
    record_with(
        tx,
        actor,
        Some(order),
        &next,
        ("merge", ev::ORDER_MERGED),
        detail,
        group_extra(&g),
    )?;
    Ok(Some(next))
}

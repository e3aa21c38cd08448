//! Merge and split (issue 21): the shipment side of an order, pure.
//!
//! Every channel order stays an order of its own — its lifecycle, its lines, its write-back to its
//! channel. What changes is how its units leave the warehouse:
//! - a **merge** puts several orders of one buyer to one address into a **shipment group**: the
//!   warehouse ships them as one parcel, and each member order records that parcel (its own lines
//!   in it) with the same tracking number;
//! - a **split** gives one order several parcels (lines and quantities per parcel); each parcel
//!   ships with its own waybill, and the order keeps the units shipped per line
//!   ([`Order::shipped_lines`]); it is `shipped` once every unit to ship has left.
//!
//! Who may join a merge is [`refusal`] (one order alone) and [`refusal_against`] (an order against
//! the group's first one), each answering a code and why; splits are checked by
//! [`check_split`] (explicit lines) and planned by [`plan_by_stock`] (what one warehouse has now,
//! the rest later).

use crate::ids::{CarrierCode, WarehouseId};
use crate::lifecycle::Status;
use crate::order::{OUT_OF_STOCK, Order, Receiver};
use crate::{OrderId, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Orders in one merge at most.
pub const MERGE_ORDERS_MAX: usize = 20;
/// Parcels of one order at most.
pub const PARCELS_MAX: usize = 20;
/// The merge window when the tenant set none: orders paid within a day of each other.
pub const WINDOW_DEFAULT_MINUTES: u32 = 24 * 60;
/// The longest merge window a tenant may set: a week.
pub const WINDOW_MAX_MINUTES: u32 = 7 * 24 * 60;
/// A merge's or split's reason, in characters.
pub const REASON_MAX: usize = 500;

/// Units of one line of one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineQty {
    pub line_id: u32,
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParcelState {
    /// Its units are reserved (or untracked): it may ship once the order is released.
    Planned,
    /// Its units are short: it waits on backorder for stock.
    Waiting,
    Shipped,
}

impl ParcelState {
    pub fn as_str(self) -> &'static str {
        match self {
            ParcelState::Planned => "planned",
            ParcelState::Waiting => "waiting",
            ParcelState::Shipped => "shipped",
        }
    }
}

/// One parcel as one order sees it: the order's lines in it, its waybill once shipped. A merged
/// parcel is the same `parcel_id` (and `group_id`) in each member order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parcel {
    pub parcel_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    pub lines: Vec<LineQty>,
    pub state: ParcelState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<WarehouseId>,
    /// The reservation holding this parcel's units when it is not the order's own
    /// (`Order::reservation_id`): a parcel served from backorder after a split by stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<CarrierCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logistics_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_at: Option<DateTime<Utc>>,
    /// When the order's channel acknowledged this parcel's shipment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<DateTime<Utc>>,
}

impl Parcel {
    pub fn new(
        parcel_id: Uuid,
        lines: Vec<LineQty>,
        state: ParcelState,
        group_id: Option<Uuid>,
    ) -> Parcel {
        Parcel {
            parcel_id,
            group_id,
            lines,
            state,
            warehouse_id: None,
            reservation_id: None,
            carrier: None,
            tracking_no: None,
            logistics_no: None,
            shipped_at: None,
            synced_at: None,
        }
    }
}

/// The tenant's merge settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRules {
    /// Merge automatically when an order is paid: it joins the open merge of the same buyer and
    /// address, or forms one with the buyer's other orders that qualify.
    #[serde(default)]
    pub auto: bool,
    /// Orders paid at most this many minutes apart may be merged.
    #[serde(default = "default_window")]
    pub window_minutes: u32,
    /// Orders of different shops (and channels) of the tenant may be merged.
    #[serde(default)]
    pub cross_shop: bool,
}

fn default_window() -> u32 {
    WINDOW_DEFAULT_MINUTES
}

impl Default for MergeRules {
    fn default() -> Self {
        MergeRules {
            auto: false,
            window_minutes: WINDOW_DEFAULT_MINUTES,
            cross_shop: false,
        }
    }
}

impl MergeRules {
    pub fn check(&self) -> Result<(), ValidationError> {
        if self.window_minutes == 0 || self.window_minutes > WINDOW_MAX_MINUTES {
            return Err(ValidationError::new(
                "window_minutes",
                "out_of_range",
                format!("window_minutes must be 1 to {WINDOW_MAX_MINUTES}"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// Its members wait to ship together.
    Open,
    /// Undone by an operator before release.
    Undone,
    /// Fewer than two members were left (one cancelled, or changed its address or goods).
    Dissolved,
    /// Its parcel left.
    Shipped,
}

impl GroupState {
    pub const ALL: [GroupState; 4] = [
        GroupState::Open,
        GroupState::Undone,
        GroupState::Dissolved,
        GroupState::Shipped,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Open => "open",
            GroupState::Undone => "undone",
            GroupState::Dissolved => "dissolved",
            GroupState::Shipped => "shipped",
        }
    }
    pub fn parse(s: &str) -> Option<GroupState> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// A shipment group: orders shipped as one parcel. No personal data (the receiver is the
/// members').
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentGroup {
    pub group_id: Uuid,
    pub parcel_id: Uuid,
    pub state: GroupState,
    /// Members, in the order they were merged; a member that left is in `left`.
    pub members: Vec<OrderId>,
    #[serde(default)]
    pub left: Vec<LeftGroup>,
    /// `manual` or `auto`.
    pub origin: String,
    pub reason: Option<String>,
    pub created_by: String,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A member that left a group, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftGroup {
    pub order_id: OrderId,
    pub why: String,
    pub at: DateTime<Utc>,
}

/// Why an order may not join a merge: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Option<Refusal> {
    Some(Refusal {
        code,
        message: message.into(),
    })
}

/// Units still to ship of each line: its quantity less what after-sales cases stopped and what
/// shipped already. Lines with none left are left out.
pub fn remaining(order: &Order) -> Vec<LineQty> {
    order
        .lines
        .iter()
        .map(|l| LineQty {
            line_id: l.line_id,
            quantity: order
                .units_to_ship(l.line_id)
                .saturating_sub(shipped(order, l.line_id)),
        })
        .filter(|l| l.quantity > 0)
        .collect()
}

/// Units of line `line_id` shipped so far.
pub fn shipped(order: &Order, line_id: u32) -> u32 {
    order
        .shipped_lines
        .iter()
        .filter(|s| s.line_id == line_id)
        .map(|s| s.quantity)
        .sum()
}

/// Adds `lines` to what shipped of each line.
pub fn add_shipped(order: &mut Order, lines: &[LineQty]) {
    for l in lines {
        match order
            .shipped_lines
            .iter_mut()
            .find(|s| s.line_id == l.line_id)
        {
            Some(s) => s.quantity += l.quantity,
            None => order.shipped_lines.push(*l),
        }
    }
    order.shipped_lines.sort_by_key(|s| s.line_id);
}

/// Whether every unit to ship has shipped.
pub fn all_shipped(order: &Order) -> bool {
    remaining(order).is_empty()
}

/// What cutting one unshipped parcel gave up: the parcel as it was and the units it lost (all of
/// them when it was dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    pub parcel: Parcel,
    pub removed: Vec<LineQty>,
}

/// Cuts a partly shipped order's unshipped parcels to what is left to ship ([`remaining`]) after
/// its goods changed: per line, planned parcels keep their units before waiting ones (first
/// parcels first within each); a parcel left empty is dropped. Returns what each cut parcel gave up. Refused (nothing changed) when what is
/// left to ship needs more units than the unshipped parcels hold, or a line would ship fewer units
/// than have shipped already.
pub fn cut_parcels(order: &mut Order) -> Result<Vec<Cut>, Refusal> {
    for s in &order.shipped_lines {
        let to_ship = order.units_to_ship(s.line_id);
        if to_ship < s.quantity {
            return Err(Refusal {
                code: "partly_shipped",
                message: format!(
                    "line {}: {} units shipped already, the change leaves {to_ship} to ship",
                    s.line_id, s.quantity
                ),
            });
        }
    }
    let mut budget: BTreeMap<u32, u32> = remaining(order)
        .into_iter()
        .map(|l| (l.line_id, l.quantity))
        .collect();
    // Units stay first in planned parcels (their stock is reserved), then in waiting ones, so a
    // cut gives up what is still awaited before what is held; parcels keep their order.
    let mut outcome: Vec<Option<(Parcel, Vec<LineQty>)>> = vec![None; order.parcels.len()];
    for pass in [ParcelState::Planned, ParcelState::Waiting] {
        for (i, p) in order.parcels.iter().enumerate() {
            if p.state != pass {
                continue;
            }
            let mut kept = p.clone();
            let mut removed = Vec::new();
            kept.lines.clear();
            for l in &p.lines {
                let left = budget.entry(l.line_id).or_default();
                let keep = l.quantity.min(*left);
                *left -= keep;
                if keep > 0 {
                    kept.lines.push(LineQty {
                        line_id: l.line_id,
                        quantity: keep,
                    });
                }
                if keep < l.quantity {
                    removed.push(LineQty {
                        line_id: l.line_id,
                        quantity: l.quantity - keep,
                    });
                }
            }
            outcome[i] = Some((kept, removed));
        }
    }
    let mut parcels = Vec::new();
    let mut cuts = Vec::new();
    for (p, o) in order.parcels.iter().zip(outcome) {
        let Some((kept, removed)) = o else {
            parcels.push(p.clone());
            continue;
        };
        if !removed.is_empty() {
            cuts.push(Cut {
                parcel: p.clone(),
                removed,
            });
        }
        if !kept.lines.is_empty() {
            parcels.push(kept);
        }
    }
    if let Some((line, more)) = budget.into_iter().find(|(_, n)| *n > 0) {
        return Err(Refusal {
            code: "partly_shipped",
            message: format!(
                "line {line}: the change needs {more} more units than the order's parcels hold; part of the order has shipped, so its parcels are only cut (open an after-sales case or a new order)"
            ),
        });
    }
    order.parcels = parcels;
    Ok(cuts)
}

/// Whether the order has a parcel ready to leave (planned, its units reserved): what lets an
/// order split by stock be allocated and released while its other parcel waits on backorder.
pub fn has_ready_parcel(order: &Order) -> bool {
    order
        .parcels
        .iter()
        .any(|p| p.state == ParcelState::Planned)
}

/// The receiver compared for a merge: name, phone digits, province, city, district, town and
/// street, each without spaces and case. Built in memory from the decrypted order, never stored.
pub fn receiver_key(r: &Receiver) -> String {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let phone: String = r
        .phone
        .expose()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    [
        norm(r.name.expose()),
        phone,
        norm(&r.province),
        norm(&r.city),
        norm(r.district.as_deref().unwrap_or("")),
        norm(r.town.as_deref().unwrap_or("")),
        norm(r.detail.expose()),
    ]
    .join("\u{1f}")
}

/// When an order counts as placed for the merge window: paid, else created.
pub fn window_time(o: &Order) -> DateTime<Utc> {
    o.paid_at.map_or(o.created_at, |p| p.to_utc())
}

/// Why `o` alone cannot join a merge, if it cannot: it must be paid and not released (paid, on
/// hold or allocated), in no group, not split, nothing shipped, not stopped, not on backorder.
pub fn refusal(o: &Order) -> Option<Refusal> {
    if !matches!(o.status, Status::Paid | Status::OnHold | Status::Allocated) {
        return refuse(
            "status",
            format!(
                "the order is {}: only paid orders not yet released are merged",
                o.status
            ),
        );
    }
    if let Some(g) = o.shipment_group {
        return refuse(
            "in_group",
            format!("the order is merged already (group {g})"),
        );
    }
    if !o.parcels.is_empty() {
        return refuse("split", "the order is split into parcels");
    }
    if !o.shipped_lines.is_empty() {
        return refuse("partly_shipped", "part of the order has shipped");
    }
    if let Some(stop) = crate::lifecycle::stopped_by(o) {
        return refuse("stopped", format!("the order is stopped by {stop}"));
    }
    if o.has_exception(OUT_OF_STOCK) {
        return refuse("out_of_stock", "the order waits on backorder");
    }
    if remaining(o).is_empty() {
        return refuse("nothing_to_ship", "the order has nothing left to ship");
    }
    None
}

/// Why `o` cannot join a merge whose first order is `first`: a different shop (or channel) unless
/// the rules allow it, another receiver, paid outside the window.
pub fn refusal_against(first: &Order, o: &Order, rules: &MergeRules) -> Option<Refusal> {
    if !rules.cross_shop && o.shop_id != first.shop_id {
        return refuse(
            "other_shop",
            format!(
                "the order is of shop {}, the merge of shop {} (the tenant does not merge across shops)",
                o.shop_id, first.shop_id
            ),
        );
    }
    if receiver_key(&o.receiver) != receiver_key(&first.receiver) {
        return refuse(
            "other_receiver",
            "the order goes to another receiver or address",
        );
    }
    let gap = (window_time(o) - window_time(first)).abs();
    if gap > chrono::Duration::minutes(i64::from(rules.window_minutes)) {
        return refuse(
            "outside_window",
            format!(
                "the orders were paid {} minutes apart; the window is {} minutes",
                gap.num_minutes(),
                rules.window_minutes
            ),
        );
    }
    None
}

fn invalid(field: String, rule: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, rule, message)
}

/// Checks an explicit split of `order`: 2 to [`PARCELS_MAX`] parcels, each with lines of the
/// order and positive quantities, that together cover every unit still to ship exactly once.
pub fn check_split(order: &Order, parcels: &[Vec<LineQty>]) -> Result<(), ValidationError> {
    if parcels.len() < 2 || parcels.len() > PARCELS_MAX {
        return Err(invalid(
            "parcels".into(),
            "out_of_range",
            format!("a split makes 2 to {PARCELS_MAX} parcels"),
        ));
    }
    let left: BTreeMap<u32, u32> = remaining(order)
        .into_iter()
        .map(|l| (l.line_id, l.quantity))
        .collect();
    let mut sum: BTreeMap<u32, u32> = BTreeMap::new();
    for (i, p) in parcels.iter().enumerate() {
        if p.is_empty() {
            return Err(invalid(
                format!("parcels[{i}].lines"),
                "required",
                "a parcel needs at least one line",
            ));
        }
        for (j, l) in p.iter().enumerate() {
            let at = |f: &str| format!("parcels[{i}].lines[{j}].{f}");
            if !left.contains_key(&l.line_id) {
                return Err(invalid(
                    at("line_id"),
                    "unknown_line",
                    format!("the order has no line {} left to ship", l.line_id),
                ));
            }
            if l.quantity == 0 {
                return Err(invalid(
                    at("quantity"),
                    "must_be_positive",
                    "quantity must be at least 1",
                ));
            }
            let s = sum.entry(l.line_id).or_default();
            *s = s.saturating_add(l.quantity);
        }
    }
    for (line, want) in &left {
        let got = sum.get(line).copied().unwrap_or(0);
        if got != *want {
            return Err(invalid(
                "parcels".into(),
                "does_not_add_up",
                format!("line {line} has {want} units to ship; the parcels carry {got}"),
            ));
        }
    }
    Ok(())
}

/// What one warehouse could ship now of an order's remaining lines.
#[derive(Debug, Clone, PartialEq)]
pub struct WarehouseOffer {
    pub warehouse_id: WarehouseId,
    /// Per line, the units it has (at most what is left of the line).
    pub lines: Vec<LineQty>,
}

/// A split by stock: what ships now from `warehouse_id`, and what waits on backorder.
#[derive(Debug, Clone, PartialEq)]
pub struct StockPlan {
    pub warehouse_id: WarehouseId,
    pub now: Vec<LineQty>,
    pub later: Vec<LineQty>,
}

/// Plans a split by stock over `offers` (candidate warehouses, best first): the one offering the
/// most units (the first of equals) ships them now, the rest waits. Refused when no warehouse has
/// any unit (`no_stock`: the order waits whole) or one has them all (`fits_whole`: nothing to
/// split).
pub fn plan_by_stock(
    remaining: &[LineQty],
    offers: &[WarehouseOffer],
) -> Result<StockPlan, ValidationError> {
    let total = |ls: &[LineQty]| ls.iter().map(|l| u64::from(l.quantity)).sum::<u64>();
    let want = total(remaining);
    let mut best: Option<&WarehouseOffer> = None;
    for o in offers {
        if best.is_none_or(|b| total(&o.lines) > total(&b.lines)) {
            best = Some(o);
        }
    }
    let Some(best) = best.filter(|b| total(&b.lines) > 0) else {
        return Err(invalid(
            "by".into(),
            "no_stock",
            "no warehouse that ships to the receiver has any of the order's units: it waits whole",
        ));
    };
    if total(&best.lines) >= want {
        return Err(invalid(
            "by".into(),
            "fits_whole",
            format!(
                "warehouse {} has every unit of the order: nothing to split",
                best.warehouse_id
            ),
        ));
    }
    let mut now = Vec::new();
    let mut later = Vec::new();
    for l in remaining {
        let have = best
            .lines
            .iter()
            .find(|o| o.line_id == l.line_id)
            .map_or(0, |o| o.quantity.min(l.quantity));
        if have > 0 {
            now.push(LineQty {
                line_id: l.line_id,
                quantity: have,
            });
        }
        if l.quantity > have {
            later.push(LineQty {
                line_id: l.line_id,
                quantity: l.quantity - have,
            });
        }
    }
    Ok(StockPlan {
        warehouse_id: best.warehouse_id.clone(),
        now,
        later,
    })
}

/// Plans a split by weight: the units of `remaining` (each line's unit weight in `unit_kg`, in
/// kilograms) packed first-fit, heaviest lines first, into parcels of at most `max_kg`; a unit
/// heavier than that travels alone. Refused when everything fits one parcel (`fits_whole`), when
/// more than [`PARCELS_MAX`] parcels would be needed (`too_many_parcels`), or when the maximum is
/// not positive.
pub fn plan_by_weight(
    remaining: &[LineQty],
    unit_kg: &BTreeMap<u32, rust_decimal::Decimal>,
    max_kg: rust_decimal::Decimal,
) -> Result<Vec<Vec<LineQty>>, ValidationError> {
    use rust_decimal::Decimal;
    use rust_decimal::prelude::ToPrimitive;
    // Whole units in a quotient of weights (beyond u32: as many as there are).
    let whole = |q: Decimal| q.floor().to_u32().unwrap_or(u32::MAX);
    if max_kg <= Decimal::ZERO {
        return Err(invalid(
            "by".into(),
            "no_parcel_limit",
            "the warehouse sets no parcel weight limit (parcel_max_kg)",
        ));
    }
    let mut lines: Vec<(LineQty, Decimal)> = remaining
        .iter()
        .map(|l| (*l, unit_kg.get(&l.line_id).copied().unwrap_or(Decimal::ONE)))
        .collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.line_id.cmp(&b.0.line_id)));
    // Each parcel: its lines and the weight left in it.
    let mut parcels: Vec<(Vec<LineQty>, Decimal)> = Vec::new();
    let too_many = || {
        invalid(
            "by".into(),
            "too_many_parcels",
            format!("the order needs more than {PARCELS_MAX} parcels of {max_kg} kg"),
        )
    };
    for (line, w) in lines {
        let mut left = line.quantity;
        for (content, room) in parcels.iter_mut() {
            if left == 0 {
                break;
            }
            let fit = if w <= Decimal::ZERO {
                left
            } else {
                whole(*room / w).min(left)
            };
            if fit > 0 {
                content.push(LineQty {
                    line_id: line.line_id,
                    quantity: fit,
                });
                *room -= w * Decimal::from(fit);
                left -= fit;
            }
        }
        while left > 0 {
            if parcels.len() >= PARCELS_MAX {
                return Err(too_many());
            }
            let per = if w <= Decimal::ZERO {
                left
            } else {
                whole(max_kg / w).clamp(1, left)
            };
            parcels.push((
                vec![LineQty {
                    line_id: line.line_id,
                    quantity: per,
                }],
                (max_kg - w * Decimal::from(per)).max(Decimal::ZERO),
            ));
            left -= per;
        }
    }
    if parcels.len() < 2 {
        return Err(invalid(
            "by".into(),
            "fits_whole",
            format!("the order fits one parcel of {max_kg} kg: nothing to split"),
        ));
    }
    Ok(parcels
        .into_iter()
        .map(|(mut c, _)| {
            c.sort_by_key(|l| l.line_id);
            c
        })
        .collect())
}

/// Whether a split is allowed from the order's status: paid and not released (paid, on hold,
/// allocated), not merged, nothing shipped, no split already.
pub fn split_refusal(o: &Order) -> Option<Refusal> {
    if !matches!(o.status, Status::Paid | Status::OnHold | Status::Allocated) {
        return refuse(
            "status",
            format!(
                "the order is {}: only paid orders not yet released are split",
                o.status
            ),
        );
    }
    if o.shipment_group.is_some() {
        return refuse("in_group", "the order is merged: undo the merge first");
    }
    if !o.parcels.is_empty() {
        return refuse("split", "the order is split already");
    }
    if let Some(stop) = crate::lifecycle::stopped_by(o) {
        return refuse("stopped", format!("the order is stopped by {stop}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::tests::order;
    use crate::{Personal, ShopId};

    fn paid() -> Order {
        let mut o = order();
        o.status = Status::Paid;
        o
    }

    fn lq(line_id: u32, quantity: u32) -> LineQty {
        LineQty { line_id, quantity }
    }

    #[test]
    fn remaining_counts_shipped_and_stopped_units_out() {
        let mut o = paid();
        assert_eq!(remaining(&o), vec![lq(1, 2), lq(2, 1)]);
        add_shipped(&mut o, &[lq(1, 1)]);
        assert_eq!(remaining(&o), vec![lq(1, 1), lq(2, 1)]);
        add_shipped(&mut o, &[lq(1, 1), lq(2, 1)]);
        assert!(all_shipped(&o));
        assert_eq!(o.shipped_lines, vec![lq(1, 2), lq(2, 1)]);
    }

    #[test]
    fn a_partly_shipped_order_s_parcels_are_cut_to_what_is_left_first_parcels_first() {
        use crate::after_sales::StoppedLine;
        let mut o = paid();
        o.lines[0].quantity = 4;
        let p = |id: u128, lines, state| Parcel::new(Uuid::from_u128(id), lines, state, None);
        o.parcels = vec![
            p(1, vec![lq(1, 1)], ParcelState::Shipped),
            p(2, vec![lq(1, 2), lq(2, 1)], ParcelState::Planned),
            p(3, vec![lq(1, 1)], ParcelState::Waiting),
        ];
        add_shipped(&mut o, &[lq(1, 1)]);
        let stop = |line_id, quantity| StoppedLine {
            line_id,
            quantity,
            case_id: Uuid::from_u128(9),
        };
        // Nothing changed: nothing cut.
        assert!(cut_parcels(&mut o.clone()).unwrap().is_empty());
        // One unit of line 1 stopped: the planned parcel keeps its units, the waiting one loses its.
        let mut a = o.clone();
        a.stopped_lines = vec![stop(1, 1)];
        let cuts = cut_parcels(&mut a).unwrap();
        assert_eq!(cuts.len(), 1);
        assert_eq!(
            (cuts[0].parcel.parcel_id, &cuts[0].removed),
            (Uuid::from_u128(3), &vec![lq(1, 1)])
        );
        assert_eq!(a.parcels.len(), 2, "the emptied parcel is dropped");
        // Line 2 stopped and two of line 1: parcel 2 keeps one unit, parcel 3 goes.
        let mut b = o.clone();
        b.stopped_lines = vec![stop(1, 2), stop(2, 1)];
        let cuts = cut_parcels(&mut b).unwrap();
        assert_eq!(cuts[0].removed, vec![lq(1, 1), lq(2, 1)]);
        assert_eq!(b.parcels[1].lines, vec![lq(1, 1)]);
        assert_eq!(b.parcels.len(), 2);
        // Everything unshipped stopped: only the shipped parcel is left, and all has shipped.
        let mut c = o.clone();
        c.stopped_lines = vec![stop(1, 3), stop(2, 1)];
        cut_parcels(&mut c).unwrap();
        assert_eq!(c.parcels.len(), 1);
        assert!(all_shipped(&c));
        // More than the parcels hold, or fewer than shipped: refused, nothing changed.
        let mut d = o.clone();
        d.lines[1].quantity = 2;
        assert_eq!(cut_parcels(&mut d).unwrap_err().code, "partly_shipped");
        assert_eq!(d.parcels, o.parcels);
        let mut e = o.clone();
        e.stopped_lines = vec![stop(1, 4)];
        assert_eq!(cut_parcels(&mut e).unwrap_err().code, "partly_shipped");
        // A waiting parcel before a planned one: the waiting one gives its unit up first (the
        // planned one's stock is reserved).
        let mut f = o.clone();
        f.parcels.swap(1, 2);
        f.stopped_lines = vec![stop(1, 1)];
        let cuts = cut_parcels(&mut f).unwrap();
        assert_eq!(cuts.len(), 1);
        assert_eq!(cuts[0].parcel.parcel_id, Uuid::from_u128(3));
        assert_eq!(
            f.parcels.iter().map(|p| p.parcel_id).collect::<Vec<_>>(),
            vec![Uuid::from_u128(1), Uuid::from_u128(2)]
        );
    }

    #[test]
    fn an_order_alone_is_refused_for_each_reason_with_its_code() {
        assert_eq!(refusal(&paid()), None);
        let mut o = paid();
        o.status = Status::Released;
        assert_eq!(refusal(&o).unwrap().code, "status");
        let mut o = paid();
        o.status = Status::PendingPayment;
        assert_eq!(refusal(&o).unwrap().code, "status");
        let mut o = paid();
        o.shipment_group = Some(Uuid::from_u128(7));
        assert_eq!(refusal(&o).unwrap().code, "in_group");
        let mut o = paid();
        o.parcels = vec![Parcel::new(
            Uuid::from_u128(1),
            vec![lq(1, 2)],
            ParcelState::Planned,
            None,
        )];
        assert_eq!(refusal(&o).unwrap().code, "split");
        let mut o = paid();
        o.exceptions = vec!["after_sale".into()];
        assert_eq!(refusal(&o).unwrap().code, "stopped");
        let mut o = paid();
        o.exceptions = vec![OUT_OF_STOCK.into()];
        assert_eq!(refusal(&o).unwrap().code, "out_of_stock");
    }

    #[test]
    fn another_shop_receiver_or_time_outside_the_window_is_refused() {
        let rules = MergeRules::default();
        let a = paid();
        let mut b = paid();
        // Spaces, case and phone punctuation do not make another receiver.
        b.receiver.detail = Personal::new(" 文三路100号 ");
        b.receiver.phone = Personal::new("138-0000-1234");
        assert_eq!(refusal_against(&a, &b, &rules), None);
        b.receiver.detail = Personal::new("文三路 101 号");
        assert_eq!(
            refusal_against(&a, &b, &rules).unwrap().code,
            "other_receiver"
        );
        let mut c = paid();
        c.shop_id = ShopId::parse("other-shop").unwrap();
        assert_eq!(refusal_against(&a, &c, &rules).unwrap().code, "other_shop");
        let cross = MergeRules {
            cross_shop: true,
            ..MergeRules::default()
        };
        assert_eq!(refusal_against(&a, &c, &cross), None);
        let mut d = paid();
        d.created_at = a.created_at + chrono::Duration::minutes(61);
        let narrow = MergeRules {
            window_minutes: 60,
            ..MergeRules::default()
        };
        assert_eq!(
            refusal_against(&a, &d, &narrow).unwrap().code,
            "outside_window"
        );
        d.created_at = a.created_at + chrono::Duration::minutes(60);
        assert_eq!(refusal_against(&a, &d, &narrow), None);
    }

    #[test]
    fn an_explicit_split_must_cover_every_unit_exactly_once() {
        let o = paid();
        assert!(check_split(&o, &[vec![lq(1, 1)], vec![lq(1, 1), lq(2, 1)]]).is_ok());
        let e = check_split(&o, &[vec![lq(1, 2)], vec![lq(2, 1), lq(1, 1)]]).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("parcels", "does_not_add_up"));
        let e = check_split(&o, &[vec![lq(1, 2)], vec![]]).unwrap_err();
        assert_eq!(e.field, "parcels[1].lines");
        let e = check_split(&o, &[vec![lq(1, 2)], vec![lq(9, 1)]]).unwrap_err();
        assert_eq!(e.field, "parcels[1].lines[0].line_id");
        let e = check_split(&o, &[vec![lq(1, 2), lq(2, 1)]]).unwrap_err();
        assert_eq!(e.rule, "out_of_range");
        let e = check_split(&o, &[vec![lq(1, 2), lq(2, 1)], vec![lq(2, 0)]]).unwrap_err();
        assert_eq!(e.rule, "must_be_positive");
    }

    #[test]
    fn a_split_by_stock_ships_the_best_warehouse_now_and_the_rest_later() {
        let wh = |s: &str| WarehouseId::parse(s).unwrap();
        let left = [lq(1, 2), lq(2, 1)];
        let offers = [
            WarehouseOffer {
                warehouse_id: wh("A"),
                lines: vec![lq(2, 1)],
            },
            WarehouseOffer {
                warehouse_id: wh("B"),
                lines: vec![lq(1, 2)],
            },
        ];
        let plan = plan_by_stock(&left, &offers).unwrap();
        assert_eq!(plan.warehouse_id, wh("B"));
        assert_eq!((plan.now, plan.later), (vec![lq(1, 2)], vec![lq(2, 1)]));
        let none = [WarehouseOffer {
            warehouse_id: wh("A"),
            lines: vec![],
        }];
        assert_eq!(plan_by_stock(&left, &none).unwrap_err().rule, "no_stock");
        let all = [WarehouseOffer {
            warehouse_id: wh("A"),
            lines: vec![lq(1, 2), lq(2, 1)],
        }];
        assert_eq!(plan_by_stock(&left, &all).unwrap_err().rule, "fits_whole");
    }

    #[test]
    fn a_split_by_weight_packs_heaviest_first_within_the_limit() {
        let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
        let w: BTreeMap<u32, rust_decimal::Decimal> = [(1, d("4")), (2, d("1.5"))].into();
        // 3 × 4 kg and 2 × 1.5 kg into 10 kg parcels: [4, 4, 1.5], [4, 1.5].
        let plan = plan_by_weight(&[lq(1, 3), lq(2, 2)], &w, d("10")).unwrap();
        assert_eq!(
            plan,
            vec![vec![lq(1, 2), lq(2, 1)], vec![lq(1, 1), lq(2, 1)]]
        );
        for p in &plan {
            let kg: rust_decimal::Decimal = p
                .iter()
                .map(|l| w[&l.line_id] * rust_decimal::Decimal::from(l.quantity))
                .sum();
            assert!(kg <= d("10"), "{p:?} weighs {kg}");
        }
        // Every unit once.
        let units: u32 = plan.iter().flatten().map(|l| l.quantity).sum();
        assert_eq!(units, 5);
        assert_eq!(
            plan_by_weight(&[lq(1, 2)], &w, d("10")).unwrap_err().rule,
            "fits_whole"
        );
        // A unit over the limit travels alone; an unknown weight counts 1 kg.
        let plan = plan_by_weight(&[lq(1, 2), lq(3, 1)], &w, d("3")).unwrap();
        assert_eq!(plan, vec![vec![lq(1, 1)], vec![lq(1, 1)], vec![lq(3, 1)]]);
        assert_eq!(
            plan_by_weight(&[lq(1, 30)], &w, d("3")).unwrap_err().rule,
            "too_many_parcels"
        );
    }

    #[test]
    fn merge_rules_bound_the_window() {
        assert!(MergeRules::default().check().is_ok());
        let r = MergeRules {
            window_minutes: WINDOW_MAX_MINUTES + 1,
            ..MergeRules::default()
        };
        assert_eq!(r.check().unwrap_err().field, "window_minutes");
    }
}

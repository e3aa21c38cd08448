//! Order edits (issue 21): what an operator may change on an order before it is released, each
//! change as a before/after per field, and which edits a tenant's rules mark sensitive (those wait
//! for the approval of people other than the requester).
//!
//! Editable: receiver (the whole address), seller memo, promised ship-by time, invoice profile,
//! line quantities, gift lines (price 0) added or removed. Only before release ([`EDITABLE`]):
//! once the warehouse has the order, an edit is refused (the caller stops the order first).

use crate::lifecycle::Status;
use crate::order::{LINES_MAX, OrderLine, QUANTITY_MAX, Receiver, TEXT_LEN_MAX, TITLE_LEN_MAX};
use crate::personal::{MaskKind, mask};
use crate::{Money, Order, OrderKind, Personal, Sku, ValidationError};
use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

/// The statuses an order may be edited in: before the warehouse has it.
pub const EDITABLE: [Status; 4] = [
    Status::PendingPayment,
    Status::Paid,
    Status::OnHold,
    Status::Allocated,
];

/// Whether an order in `status` may be edited.
pub fn editable(status: Status) -> bool {
    EDITABLE.contains(&status)
}

/// Gift lines one edit may add.
pub const GIFTS_MAX: usize = 20;
/// An invoice profile id, as the customer master names it.
pub const INVOICE_PROFILE_LEN_MAX: usize = 64;
/// The reason every edit, approval note and rejection gives, in characters.
pub const EDIT_REASON_MAX: usize = 500;
/// Approvals a tenant may require at most (a two-level flow).
pub const APPROVALS_MAX: u8 = 2;

/// The fields an edit may change, by the name its change log uses.
pub const FIELD_RECEIVER: &str = "receiver";
pub const FIELD_SELLER_MEMO: &str = "seller_memo";
pub const FIELD_SHIP_BY: &str = "promised_ship_by";
pub const FIELD_INVOICE: &str = "invoice_profile_id";
pub const FIELD_LINES: &str = "lines";
/// Not asked for: follows a change of lines that changes the totals.
pub const FIELD_AMOUNTS: &str = "amounts";

/// `Some(None)` for a field given as `null` (clear it), `None` when absent (leave it).
pub fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantityChange {
    pub line_id: u32,
    pub quantity: u32,
}

/// A line given away: price 0, no discount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GiftLine {
    pub sku: Sku,
    pub title: String,
    pub quantity: u32,
}

/// What one edit asks for. Absent fields stay as they are; `Some(None)` clears an optional one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrderEdit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<Receiver>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub seller_memo: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub promised_ship_by: Option<Option<DateTime<FixedOffset>>>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub invoice_profile_id: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantities: Vec<QuantityChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_gifts: Vec<GiftLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_lines: Vec<u32>,
}

/// One field's value before and after an edit, as the change log keeps it (personal data in
/// clear: the store seals it, views mask it with [`Change::masked`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// An edit applied to an order: the order as it would be (version not moved) and what changed.
#[derive(Debug, Clone)]
pub struct Applied {
    pub order: Order,
    pub changes: Vec<Change>,
}

fn invalid(
    field: impl Into<String>,
    rule: &'static str,
    msg: impl Into<String>,
) -> ValidationError {
    ValidationError::new(field, rule, msg)
}

fn quantity(field: &str, q: u32) -> Result<(), ValidationError> {
    if q == 0 || q > QUANTITY_MAX {
        return Err(invalid(
            field,
            if q == 0 {
                "must_be_positive"
            } else {
                "too_large"
            },
            format!("quantity must be 1 to {QUANTITY_MAX}"),
        ));
    }
    Ok(())
}

impl OrderEdit {
    /// Whether the edit changes the goods (so stock follows it).
    pub fn touches_lines(&self) -> bool {
        !(self.quantities.is_empty() && self.add_gifts.is_empty() && self.remove_lines.is_empty())
    }

    /// Bounds and shape, before the order is read: something asked, lists bounded, no line
    /// named twice, quantities in range, texts bounded.
    pub fn check(&self) -> Result<(), ValidationError> {
        if self.receiver.is_none()
            && self.seller_memo.is_none()
            && self.promised_ship_by.is_none()
            && self.invoice_profile_id.is_none()
            && !self.touches_lines()
        {
            return Err(invalid(
                "edit",
                "required",
                "an edit must change at least one of receiver, seller_memo, promised_ship_by, \
                 invoice_profile_id, quantities, add_gifts, remove_lines",
            ));
        }
        if self.quantities.len() > LINES_MAX || self.remove_lines.len() > LINES_MAX {
            return Err(invalid(
                "quantities",
                "too_many",
                format!("at most {LINES_MAX} lines per edit"),
            ));
        }
        if self.add_gifts.len() > GIFTS_MAX {
            return Err(invalid(
                "add_gifts",
                "too_many",
                format!("at most {GIFTS_MAX} gift lines per edit"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, q) in self.quantities.iter().enumerate() {
            quantity(&format!("quantities[{i}].quantity"), q.quantity)?;
            if !seen.insert(q.line_id) {
                return Err(invalid(
                    format!("quantities[{i}].line_id"),
                    "duplicate_line",
                    format!("line {} is named twice", q.line_id),
                ));
            }
        }
        for (i, id) in self.remove_lines.iter().enumerate() {
            if !seen.insert(*id) {
                return Err(invalid(
                    format!("remove_lines[{i}]"),
                    "duplicate_line",
                    format!("line {id} is named twice"),
                ));
            }
        }
        for (i, g) in self.add_gifts.iter().enumerate() {
            quantity(&format!("add_gifts[{i}].quantity"), g.quantity)?;
            let t = g.title.trim();
            if t.is_empty() || t.chars().count() > TITLE_LEN_MAX {
                return Err(invalid(
                    format!("add_gifts[{i}].title"),
                    if t.is_empty() { "required" } else { "too_long" },
                    format!("title must be 1 to {TITLE_LEN_MAX} characters"),
                ));
            }
        }
        for (field, v, max) in [
            (FIELD_SELLER_MEMO, &self.seller_memo, TEXT_LEN_MAX),
            (
                FIELD_INVOICE,
                &self.invoice_profile_id,
                INVOICE_PROFILE_LEN_MAX,
            ),
        ] {
            if let Some(Some(t)) = v
                && t.chars().count() > max
            {
                return Err(invalid(
                    field,
                    "too_long",
                    format!("{field} must be at most {max} characters"),
                ));
            }
        }
        if let Some(r) = &self.receiver
            && (r.name.is_empty() || r.phone.is_empty() || r.detail.is_empty())
        {
            return Err(invalid(
                "receiver",
                "required",
                "receiver.name, receiver.phone and receiver.detail must not be empty",
            ));
        }
        Ok(())
    }

    /// The order as this edit leaves it and each field's before/after; refused when a line it
    /// names is not there, a removed line is not a gift, a quantity leaves a line discount above
    /// its total, a presale order's total would change, or nothing would change.
    pub fn apply(&self, order: &Order) -> Result<Applied, ValidationError> {
        self.check()?;
        let mut next = order.clone();
        if let Some(r) = &self.receiver {
            next.receiver = r.clone();
        }
        if let Some(v) = &self.seller_memo {
            next.seller_memo = v.clone();
        }
        if let Some(v) = &self.promised_ship_by {
            next.promised_ship_by = *v;
            next.fulfillment.ship_by_rule = None;
        }
        if let Some(v) = &self.invoice_profile_id {
            next.invoice_profile_id = v.clone();
            // An edited id is the operator's, not a version the order took from its customer.
            next.invoice_profile_version = None;
        }
        if self.touches_lines() {
            self.apply_lines(order, &mut next)?;
        }
        let mut changes = Vec::new();
        for field in [
            FIELD_RECEIVER,
            FIELD_SELLER_MEMO,
            FIELD_SHIP_BY,
            FIELD_INVOICE,
            FIELD_LINES,
            FIELD_AMOUNTS,
        ] {
            let (before, after) = (field_value(order, field), field_value(&next, field));
            if before != after {
                changes.push(Change {
                    field: field.to_owned(),
                    before,
                    after,
                });
            }
        }
        if changes.is_empty() {
            return Err(invalid(
                "edit",
                "no_change",
                "the edit changes nothing: every field already holds the value asked for",
            ));
        }
        Ok(Applied {
            order: next,
            changes,
        })
    }

    fn apply_lines(&self, order: &Order, next: &mut Order) -> Result<(), ValidationError> {
        let position = |lines: &[OrderLine], id: u32| lines.iter().position(|l| l.line_id == id);
        for (i, id) in self.remove_lines.iter().enumerate() {
            let field = format!("remove_lines[{i}]");
            let at = position(&next.lines, *id)
                .ok_or_else(|| invalid(&field, "unknown_line", format!("no line {id}")))?;
            if next.lines[at].unit_price != Money::ZERO {
                return Err(invalid(
                    field,
                    "not_a_gift",
                    format!("line {id} has a price: only gift lines (price 0) may be removed"),
                ));
            }
            next.lines.remove(at);
        }
        for (i, q) in self.quantities.iter().enumerate() {
            let field = format!("quantities[{i}].quantity");
            let at = position(&next.lines, q.line_id).ok_or_else(|| {
                invalid(
                    format!("quantities[{i}].line_id"),
                    "unknown_line",
                    format!("no line {}", q.line_id),
                )
            })?;
            let l = &mut next.lines[at];
            let gross = l.unit_price.checked_mul(q.quantity).ok_or_else(|| {
                invalid(&field, "too_large", "quantity × unit_price is too large")
            })?;
            l.paid_amount = gross.checked_sub(l.discount).ok_or_else(|| {
                invalid(
                    &field,
                    "exceeds_line_total",
                    format!(
                        "line {}'s discount {} would exceed unit_price × quantity = {gross}",
                        l.line_id, l.discount
                    ),
                )
            })?;
            l.quantity = q.quantity;
        }
        let last_id = order
            .lines
            .iter()
            .chain(next.lines.iter())
            .map(|l| l.line_id)
            .max()
            .unwrap_or(0);
        for (g, line_id) in self.add_gifts.iter().zip(last_id + 1..) {
            next.lines.push(OrderLine {
                line_id,
                external_line_id: None,
                sku: g.sku.clone(),
                title: g.title.trim().to_owned(),
                quantity: g.quantity,
                unit_price: Money::ZERO,
                discount: Money::ZERO,
                paid_amount: Money::ZERO,
                is_kit: false,
            });
        }
        if next.lines.is_empty() || next.lines.len() > LINES_MAX {
            return Err(invalid(
                "remove_lines",
                if next.lines.is_empty() {
                    "required"
                } else {
                    "too_many"
                },
                format!("an order keeps 1 to {LINES_MAX} lines"),
            ));
        }
        retotal(order, next)
    }
}

/// The totals after the lines changed: goods total from the lines, the order's own discount
/// (beyond line discounts) kept, paid amount = goods + shipping − discount.
fn retotal(order: &Order, next: &mut Order) -> Result<(), ValidationError> {
    let too_large = || invalid("quantities", "too_large", "the order total is too large");
    let sum = |lines: &[OrderLine], f: fn(&OrderLine) -> Option<Money>| {
        lines
            .iter()
            .try_fold(Money::ZERO, |acc, l| acc.checked_add(f(l)?))
    };
    let goods = sum(&next.lines, |l| l.unit_price.checked_mul(l.quantity)).ok_or_else(too_large)?;
    let old_line_discounts = sum(&order.lines, |l| Some(l.discount)).ok_or_else(too_large)?;
    let new_line_discounts = sum(&next.lines, |l| Some(l.discount)).ok_or_else(too_large)?;
    let discount = order
        .discount
        .checked_sub(old_line_discounts)
        .unwrap_or(Money::ZERO)
        .checked_add(new_line_discounts)
        .ok_or_else(too_large)?;
    let paid = goods
        .checked_add(order.shipping_fee)
        .and_then(|t| t.checked_sub(discount))
        .ok_or_else(|| {
            invalid(
                "quantities",
                "exceeds_total",
                "the order's discount would exceed its goods total + shipping fee",
            )
        })?;
    if matches!(order.kind, OrderKind::Presale { .. }) && paid != order.paid_amount {
        return Err(invalid(
            "quantities",
            "presale_total_fixed",
            "a presale order's total is split into deposit and final payment: only gift lines \
             may change",
        ));
    }
    next.goods_total = goods;
    next.discount = discount;
    next.paid_amount = paid;
    Ok(())
}

fn line_json(o: &Order, l: &OrderLine) -> Value {
    json!({
        "line_id": l.line_id,
        "sku": l.sku,
        "title": l.title,
        "quantity": l.quantity,
        "unit_price": l.unit_price.format(o.currency),
        "discount": l.discount.format(o.currency),
        "paid_amount": l.paid_amount.format(o.currency),
    })
}

/// One field of `order` as the change log shows it (personal data in clear).
pub fn field_value(order: &Order, field: &str) -> Value {
    let c = order.currency;
    match field {
        FIELD_RECEIVER => {
            let r = &order.receiver;
            json!({
                "name": r.name.expose(), "phone": r.phone.expose(), "province": r.province,
                "city": r.city, "district": r.district, "town": r.town,
                "detail": r.detail.expose(), "region_code": r.region_code,
            })
        }
        FIELD_SELLER_MEMO => json!(order.seller_memo),
        FIELD_SHIP_BY => json!(order.promised_ship_by),
        FIELD_INVOICE => json!(order.invoice_profile_id),
        FIELD_LINES => Value::Array(order.lines.iter().map(|l| line_json(order, l)).collect()),
        FIELD_AMOUNTS => json!({
            "goods_total": order.goods_total.format(c),
            "discount": order.discount.format(c),
            "paid_amount": order.paid_amount.format(c),
        }),
        _ => Value::Null,
    }
}

/// The first recorded change whose field no longer holds the value the edit was asked against:
/// the order moved on under it (an edit applied after approval re-checks this).
pub fn stale_field<'a>(changes: &'a [Change], order: &Order) -> Option<&'a str> {
    changes
        .iter()
        .find(|c| field_value(order, &c.field) != c.before)
        .map(|c| c.field.as_str())
}

fn mask_receiver(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for (key, kind) in [
            ("name", MaskKind::Name),
            ("phone", MaskKind::Phone),
            ("detail", MaskKind::Address),
        ] {
            if let Some(Value::String(s)) = m.get(key) {
                let masked = mask(s, kind);
                m.insert(key.to_owned(), Value::String(masked));
            }
        }
    }
    v
}

impl Change {
    /// The change as someone without `pii:read` may see it: the receiver's name, phone and
    /// address detail masked as order reads mask them.
    pub fn masked(&self) -> Change {
        if self.field != FIELD_RECEIVER {
            return self.clone();
        }
        Change {
            field: self.field.clone(),
            before: mask_receiver(&self.before),
            after: mask_receiver(&self.after),
        }
    }
}

/// Which edits need approval, per tenant. Defaults: an address changed after payment and any
/// change of lines or quantities need one approval; memo, ship-by and invoice edits do not; no
/// amount threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditRules {
    pub address_after_payment: bool,
    pub lines: bool,
    /// Any edit of an order whose paid amount is above this needs approval.
    pub amount_above: Option<Decimal>,
    /// Distinct approvers (never the requester) a sensitive edit needs: 1 or 2.
    pub approvals_required: u8,
}

impl Default for EditRules {
    fn default() -> Self {
        EditRules {
            address_after_payment: true,
            lines: true,
            amount_above: None,
            approvals_required: 1,
        }
    }
}

/// Why an edit needs approval, by the rule's name.
pub const SENSITIVE_ADDRESS_AFTER_PAYMENT: &str = "address_after_payment";
pub const SENSITIVE_LINES: &str = "lines";
pub const SENSITIVE_AMOUNT_ABOVE: &str = "amount_above";

impl EditRules {
    pub fn check(&self) -> Result<(), ValidationError> {
        if !(1..=APPROVALS_MAX).contains(&self.approvals_required) {
            return Err(invalid(
                "approvals_required",
                "out_of_range",
                format!("approvals_required must be 1 to {APPROVALS_MAX}"),
            ));
        }
        if let Some(a) = self.amount_above
            && (a.is_sign_negative() || a.scale() > 2 || a > Decimal::from(10_000_000_000u64))
        {
            return Err(invalid(
                "amount_above",
                "out_of_range",
                "amount_above must be 0 to 10000000000 with at most 2 decimals",
            ));
        }
        Ok(())
    }

    /// The rules an edit of `order` making `changes` falls under; empty: it applies at once.
    pub fn reasons(&self, order: &Order, changes: &[Change]) -> Vec<&'static str> {
        let has = |f: &str| changes.iter().any(|c| c.field == f);
        let mut why = Vec::new();
        if self.address_after_payment
            && has(FIELD_RECEIVER)
            && order.status != Status::PendingPayment
        {
            why.push(SENSITIVE_ADDRESS_AFTER_PAYMENT);
        }
        if self.lines && has(FIELD_LINES) {
            why.push(SENSITIVE_LINES);
        }
        // The amount before or after the edit, whichever is larger: an edit that raises an
        // order above the limit needs approval as much as one of an order already above it.
        let after = changes
            .iter()
            .find(|c| c.field == FIELD_AMOUNTS)
            .and_then(|c| c.after["paid_amount"].as_str())
            .and_then(|a| a.parse::<Decimal>().ok())
            .unwrap_or_default();
        if let Some(limit) = self.amount_above
            && order.paid_amount.amount().max(after) > limit
        {
            why.push(SENSITIVE_AMOUNT_ABOVE);
        }
        why
    }
}

/// A receiver with its personal fields as given (for edits built outside the wire).
pub fn receiver(name: &str, phone: &str, province: &str, city: &str, detail: &str) -> Receiver {
    Receiver {
        name: Personal::new(name),
        phone: Personal::new(phone),
        province: province.to_owned(),
        city: city.to_owned(),
        district: None,
        town: None,
        detail: Personal::new(detail),
        region_code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::tests::{money, order};

    fn gift(sku: &str) -> GiftLine {
        GiftLine {
            sku: Sku::parse(sku).unwrap(),
            title: "gift".into(),
            quantity: 1,
        }
    }

    #[test]
    fn a_quantity_change_retotals_the_order_and_logs_lines_and_amounts() {
        let o = order();
        let e = OrderEdit {
            quantities: vec![QuantityChange {
                line_id: 1,
                quantity: 3,
            }],
            ..Default::default()
        };
        let a = e.apply(&o).unwrap();
        assert_eq!(a.order.lines[0].paid_amount, money("144.70"));
        assert_eq!(a.order.goods_total, money("169.70"));
        assert_eq!(a.order.paid_amount, money("172.70"));
        let fields: Vec<&str> = a.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, [FIELD_LINES, FIELD_AMOUNTS]);
        assert_eq!(a.changes[1].before["paid_amount"], "122.80");
        assert_eq!(a.changes[1].after["paid_amount"], "172.70");
    }

    #[test]
    fn gifts_are_added_with_new_ids_and_only_gifts_may_be_removed() {
        let o = order();
        let added = OrderEdit {
            add_gifts: vec![gift("FREE-1")],
            ..Default::default()
        }
        .apply(&o)
        .unwrap();
        let g = added.order.lines.last().unwrap();
        assert_eq!((g.line_id, g.paid_amount), (3, Money::ZERO));
        assert_eq!(added.order.paid_amount, o.paid_amount);
        // Totals unchanged: only the lines are logged.
        assert_eq!(added.changes.len(), 1);
        let removed = OrderEdit {
            remove_lines: vec![3],
            ..Default::default()
        }
        .apply(&added.order)
        .unwrap();
        assert_eq!(removed.order.lines.len(), 2);
        let e = OrderEdit {
            remove_lines: vec![2],
            ..Default::default()
        }
        .apply(&o)
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("remove_lines[0]", "not_a_gift")
        );
        let e = OrderEdit {
            quantities: vec![QuantityChange {
                line_id: 9,
                quantity: 1,
            }],
            ..Default::default()
        }
        .apply(&o)
        .unwrap_err();
        assert_eq!(e.rule, "unknown_line");
    }

    #[test]
    fn an_edit_that_changes_nothing_or_asks_nothing_is_refused() {
        let o = order();
        assert_eq!(OrderEdit::default().apply(&o).unwrap_err().rule, "required");
        let same = OrderEdit {
            seller_memo: Some(o.seller_memo.clone()),
            ..Default::default()
        };
        assert_eq!(same.apply(&o).unwrap_err().rule, "no_change");
        let e = OrderEdit {
            seller_memo: Some(Some("x".repeat(TEXT_LEN_MAX + 1))),
            ..Default::default()
        };
        assert_eq!(e.check().unwrap_err().rule, "too_long");
    }

    #[test]
    fn the_receiver_is_masked_in_the_view_and_a_moved_field_is_stale() {
        let o = order();
        let e = OrderEdit {
            receiver: Some(receiver(
                "李四",
                "13900009999",
                "上海市",
                "上海市",
                "南京路 1 号",
            )),
            ..Default::default()
        };
        let a = e.apply(&o).unwrap();
        let m = a.changes[0].masked();
        assert_eq!(m.after["phone"], "139****9999");
        assert_eq!(m.after["province"], "上海市");
        assert!(!m.to_owned().after.to_string().contains("南京路"));
        assert_eq!(stale_field(&a.changes, &o), None);
        assert_eq!(stale_field(&a.changes, &a.order), Some(FIELD_RECEIVER));
    }

    /// The amount rule looks at the order after the edit too: raising an order above the limit
    /// needs approval.
    #[test]
    fn an_edit_raising_the_amount_above_the_limit_needs_approval() {
        let o = order();
        let priced = o
            .lines
            .iter()
            .find(|l| l.unit_price != Money::ZERO)
            .unwrap();
        let limit = o.paid_amount.amount() + Decimal::from(1);
        let rules = EditRules {
            amount_above: Some(limit),
            lines: false,
            ..EditRules::default()
        };
        let more = OrderEdit {
            quantities: vec![QuantityChange {
                line_id: priced.line_id,
                quantity: priced.quantity + 10,
            }],
            ..Default::default()
        };
        let c = more.apply(&o).unwrap().changes;
        assert_eq!(rules.reasons(&o, &c), [SENSITIVE_AMOUNT_ABOVE]);
    }

    #[test]
    fn rules_name_why_an_edit_needs_approval() {
        let mut o = order();
        let addr = OrderEdit {
            receiver: Some(receiver(
                "李四",
                "13900009999",
                "上海市",
                "上海市",
                "南京路 1 号",
            )),
            ..Default::default()
        };
        let rules = EditRules::default();
        let c = addr.apply(&o).unwrap().changes;
        assert!(rules.reasons(&o, &c).is_empty(), "unpaid: no approval");
        o.status = Status::Paid;
        assert_eq!(rules.reasons(&o, &c), [SENSITIVE_ADDRESS_AFTER_PAYMENT]);
        let strict = EditRules {
            amount_above: Some(Decimal::from(100)),
            ..EditRules::default()
        };
        let memo = OrderEdit {
            seller_memo: Some(Some("call first".into())),
            ..Default::default()
        };
        let c = memo.apply(&o).unwrap().changes;
        assert_eq!(strict.reasons(&o, &c), [SENSITIVE_AMOUNT_ABOVE]);
        assert!(rules.reasons(&o, &c).is_empty());
        let bad = EditRules {
            approvals_required: 3,
            ..EditRules::default()
        };
        assert_eq!(bad.check().unwrap_err().field, "approvals_required");
    }

    #[test]
    fn a_presale_total_may_not_change() {
        let mut o = order();
        o.kind = OrderKind::Presale {
            deposit: money("22.80"),
            final_payment: money("100"),
            final_payment_due: None,
        };
        let e = OrderEdit {
            quantities: vec![QuantityChange {
                line_id: 2,
                quantity: 2,
            }],
            ..Default::default()
        };
        assert_eq!(e.apply(&o).unwrap_err().rule, "presale_total_fixed");
        let g = OrderEdit {
            add_gifts: vec![gift("FREE-1")],
            ..Default::default()
        };
        assert!(g.apply(&o).is_ok());
    }
}

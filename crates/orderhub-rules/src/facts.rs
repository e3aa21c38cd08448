//! The facts a condition may name: a flat view of one order, built from the order as the core
//! holds it (receiver decrypted in memory, never logged: only province, city and district are
//! facts — not the receiver's name, phone or street). Money is in minor units of the order's
//! currency (`paid_cents > 500000` is "paid over 5,000.00"), so no float touches money.

use cel::{Context, Value};
use orderhub_domain::{Order, OrderKind};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::sync::Arc;

/// Every name a condition may use, in the order the docs list them. The order's status is not
/// one: a rule decides on what was bought, by whom and where it goes, so the same order gets the
/// same decisions at creation, at payment and in the sandbox.
pub const FACT_NAMES: [&str; 25] = [
    "channel",
    "shop",
    "kind",
    "currency",
    "paid_cents",
    "goods_total_cents",
    "shipping_fee_cents",
    "discount_cents",
    "skus",
    "quantity",
    "line_count",
    "tags",
    "weight_kg",
    "province",
    "city",
    "district",
    "buyer_message",
    "seller_memo",
    "is_test",
    "is_employee",
    "is_presale",
    "buyer_order_count",
    "buyer_blacklisted",
    "phone_blacklisted",
    "address_blacklisted",
];

/// Facts that cost a read of the store, given by the caller (the rules crate reads nothing):
/// each only when a rule of the set names it ([`crate::RuleSet::needs`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extra {
    /// The order's goods' weight from the SKU master (`None`: 0.0 to a condition).
    pub weight_kg: Option<Decimal>,
    /// Orders of the same buyer id in the tenant before this one (`None`, no buyer id: 0).
    pub buyer_order_count: Option<u32>,
    /// Whether the buyer id, the receiver's phone, the receiver's address is on the tenant's
    /// blacklist (matched by the caller through the blind index, never in clear).
    pub buyer_blacklisted: bool,
    pub phone_blacklisted: bool,
    pub address_blacklisted: bool,
}

/// One order's facts. Build with [`Facts::of`].
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    values: Vec<(&'static str, Value)>,
    /// The order's creation time: not a fact a condition names, the time a gift rule's window
    /// is checked against.
    at: chrono::DateTime<chrono::Utc>,
}

fn s(v: &str) -> Value {
    Value::String(Arc::new(v.to_owned()))
}

fn cents(d: Decimal) -> Value {
    // Amounts hold at most 2 places and 10^10 (domain::money): the product fits an i64.
    Value::Int(
        (d * Decimal::ONE_HUNDRED)
            .trunc()
            .to_i64()
            .unwrap_or(i64::MAX),
    )
}

fn list(items: impl Iterator<Item = String>) -> Value {
    Value::List(Arc::new(
        items.map(|t| Value::String(Arc::new(t))).collect(),
    ))
}

fn kind(k: &OrderKind) -> &'static str {
    match k {
        OrderKind::Normal => "normal",
        OrderKind::Presale { .. } => "presale",
        OrderKind::PosPickup { .. } => "pos_pickup",
        OrderKind::B2b { .. } => "b2b",
        OrderKind::Exchange { .. } => "exchange",
    }
}

impl Facts {
    /// The facts of `order`. `weight_kg`: the order's goods' weight from the SKU master (the
    /// caller reads it only when a rule names it, [`crate::RuleSet::needs_weight`]); `None` is
    /// 0.0 to a condition.
    pub fn of(order: &Order, weight_kg: Option<Decimal>) -> Facts {
        Facts::with(
            order,
            &Extra {
                weight_kg,
                ..Extra::default()
            },
        )
    }

    /// The facts of `order` with the facts the caller read from the store.
    pub fn with(order: &Order, extra: &Extra) -> Facts {
        let weight_kg = extra.weight_kg;
        let r = &order.receiver;
        let values = vec![
            ("channel", s(order.channel.as_str())),
            ("shop", s(order.shop_id.as_str())),
            ("kind", s(kind(&order.kind))),
            ("currency", s(order.currency.code())),
            ("paid_cents", cents(order.paid_amount.amount())),
            ("goods_total_cents", cents(order.goods_total.amount())),
            ("shipping_fee_cents", cents(order.shipping_fee.amount())),
            ("discount_cents", cents(order.discount.amount())),
            (
                "skus",
                list(order.lines.iter().map(|l| l.sku.as_str().to_owned())),
            ),
            (
                "quantity",
                Value::Int(order.lines.iter().map(|l| i64::from(l.quantity)).sum()),
            ),
            ("line_count", Value::Int(order.lines.len() as i64)),
            ("tags", list(order.tags.iter().cloned())),
            (
                "weight_kg",
                Value::Float(weight_kg.and_then(|w| w.to_f64()).unwrap_or(0.0)),
            ),
            ("province", s(&r.province)),
            ("city", s(&r.city)),
            ("district", s(r.district.as_deref().unwrap_or(""))),
            (
                "buyer_message",
                s(order.buyer_message.as_deref().unwrap_or("")),
            ),
            ("seller_memo", s(order.seller_memo.as_deref().unwrap_or(""))),
            ("is_test", Value::Bool(order.is_test)),
            ("is_employee", Value::Bool(order.is_employee)),
            (
                "is_presale",
                Value::Bool(matches!(order.kind, OrderKind::Presale { .. })),
            ),
            (
                "buyer_order_count",
                Value::Int(i64::from(extra.buyer_order_count.unwrap_or(0))),
            ),
            ("buyer_blacklisted", Value::Bool(extra.buyer_blacklisted)),
            ("phone_blacklisted", Value::Bool(extra.phone_blacklisted)),
            (
                "address_blacklisted",
                Value::Bool(extra.address_blacklisted),
            ),
        ];
        debug_assert_eq!(values.len(), FACT_NAMES.len());
        Facts {
            values,
            at: order.created_at,
        }
    }

    /// One fact's value (tests and the rule test's answer).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The order's creation time (gift windows).
    pub fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.at
    }

    /// Binds the facts whose positions in [`FACT_NAMES`] are set in `mask`.
    pub(crate) fn bind(&self, ctx: &mut Context<'_, '_>, mask: u64) {
        for (i, (name, value)) in self.values.iter().enumerate() {
            if mask & (1 << i) != 0 {
                ctx.add_variable_from_value(*name, value.clone());
            }
        }
    }

    /// These facts with `name`'s value replaced (tests: values of other types than the order's).
    #[cfg(test)]
    pub(crate) fn replaced(mut self, name: &str, value: Value) -> Facts {
        if let Some(slot) = self.values.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        }
        self
    }

    /// The value of the fact at position `i` of [`FACT_NAMES`].
    pub(crate) fn value(&self, i: usize) -> &Value {
        let (name, value) = &self.values[i];
        debug_assert_eq!(*name, FACT_NAMES[i]);
        value
    }
}

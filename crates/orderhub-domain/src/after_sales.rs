//! After-sales cases (RMA): a buyer's refund or return of one or more lines of one order.
//!
//! Kinds: `refund_only`, `return_and_refund` and `exchange` (换货: the goods come back and, once
//! they pass QC, a replacement order ships them again — no money moves). The moves of a case are
//! one table, [`next`] (written out again in the tests, row by row):
//!
//! ```text
//! requested ─approve─► approved ─refund─► refunded ─close─► closed          (refund_only)
//! requested ─approve─► approved ─expect_return─► goods_returning
//!           ─receive─► received ─qc─► qc_passed | qc_failed ─refund─► refunded ─close─► closed
//!                                                qc_failed ─close─► closed   (return_and_refund)
//! requested ─approve─► approved ─expect_return─► goods_returning
//!           ─receive─► received ─qc─► qc_passed ─exchange─► exchanged ─close─► closed
//!                                     qc_failed ─close─► closed                (exchange)
//! requested ─refuse─► refused                                                 (every kind)
//! ```
//!
//! What approving does to the order depends on where the order is ([`effect`]): before release a
//! refund stops the line (its stock goes back to the pool; nothing left → the order is cancelled);
//! released → the warehouse must pull it, shipped → the parcel must be intercepted (both: the
//! order is stopped); with the carrier or delivered → money only (refund_only) or the goods are
//! expected back (return_and_refund). A case keeps the effect it was opened with; approving it
//! when the order has moved on to another effect is refused unless the approver accepts the new
//! one — so a refund approved as "stopped before shipment" can never race a shipment and win
//! both ways.
//! Claims are checked to the cent ([`check_claims`]): over every case of a line that is not
//! refused, the quantities add up to at most the line's quantity and the amounts to at most what
//! was paid for it.

use crate::ValidationError;
use crate::lifecycle::Status;
use crate::order::Order;
use crate::{Money, OrderId, ShopId, Sku};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Lines in one case at most (an order has at most `order::LINES_MAX`).
pub const CASE_LINES_MAX: usize = 100;
/// Cases one order may carry at most: a bound on the reads of every claim check.
pub const CASES_PER_ORDER_MAX: usize = 50;
/// A case's reason and notes, in characters.
pub const CASE_TEXT_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    RefundOnly,
    ReturnAndRefund,
    /// The delivered goods come back and the same (or another) SKU ships again, on a replacement
    /// order of its own; no money moves. QC failed: the exchange is refused — the case closes
    /// without a replacement (the goods quarantined), as a return whose QC failed may.
    Exchange,
}

impl CaseKind {
    pub const ALL: [CaseKind; 3] = [
        CaseKind::RefundOnly,
        CaseKind::ReturnAndRefund,
        CaseKind::Exchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::RefundOnly => "refund_only",
            CaseKind::ReturnAndRefund => "return_and_refund",
            CaseKind::Exchange => "exchange",
        }
    }

    pub fn parse(s: &str) -> Result<CaseKind, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    "unknown_kind",
                    format!("unknown kind {s:?}; one of refund_only, return_and_refund, exchange"),
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Requested,
    Approved,
    Refused,
    GoodsReturning,
    Received,
    QcPassed,
    QcFailed,
    Refunded,
    /// An exchange whose replacement order was created.
    Exchanged,
    Closed,
}

impl CaseState {
    pub const ALL: [CaseState; 10] = [
        CaseState::Requested,
        CaseState::Approved,
        CaseState::Refused,
        CaseState::GoodsReturning,
        CaseState::Received,
        CaseState::QcPassed,
        CaseState::QcFailed,
        CaseState::Refunded,
        CaseState::Exchanged,
        CaseState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Requested => "requested",
            CaseState::Approved => "approved",
            CaseState::Refused => "refused",
            CaseState::GoodsReturning => "goods_returning",
            CaseState::Received => "received",
            CaseState::QcPassed => "qc_passed",
            CaseState::QcFailed => "qc_failed",
            CaseState::Refunded => "refunded",
            CaseState::Exchanged => "exchanged",
            CaseState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Result<CaseState, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "state",
                    "unknown_state",
                    format!(
                        "unknown state {s:?}; one of {}",
                        Self::ALL.map(|s| s.as_str()).join(", ")
                    ),
                )
            })
    }

    /// Refused or closed: nothing moves it any more.
    pub fn is_final(self) -> bool {
        matches!(self, CaseState::Refused | CaseState::Closed)
    }

    /// Whether the case's lines count against what is left to refund (every state but refused).
    pub fn claims(self) -> bool {
        self != CaseState::Refused
    }
}

/// What someone does to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseAction {
    Approve,
    Refuse,
    /// The return is on its way (taken at once after approving a return).
    ExpectReturn,
    /// The returned goods arrived at the warehouse.
    Receive,
    /// Quality control of the received goods: passed or failed.
    QcPass,
    QcFail,
    Refund,
    /// The replacement goods ship: a replacement order is created.
    Exchange,
    Close,
}

impl CaseAction {
    pub const ALL: [CaseAction; 9] = [
        CaseAction::Approve,
        CaseAction::Refuse,
        CaseAction::ExpectReturn,
        CaseAction::Receive,
        CaseAction::QcPass,
        CaseAction::QcFail,
        CaseAction::Refund,
        CaseAction::Exchange,
        CaseAction::Close,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseAction::Approve => "approve",
            CaseAction::Refuse => "refuse",
            CaseAction::ExpectReturn => "expect_return",
            CaseAction::Receive => "receive",
            CaseAction::QcPass => "qc_pass",
            CaseAction::QcFail => "qc_fail",
            CaseAction::Refund => "refund",
            CaseAction::Exchange => "exchange",
            CaseAction::Close => "close",
        }
    }
}

/// The one table of a case's moves: where `action` takes a case of `kind` from `from`.
pub fn next(kind: CaseKind, from: CaseState, action: CaseAction) -> Option<CaseState> {
    use CaseAction as A;
    use CaseKind as K;
    use CaseState as S;
    match (kind, from, action) {
        (_, S::Requested, A::Approve) => Some(S::Approved),
        (_, S::Requested, A::Refuse) => Some(S::Refused),
        (K::RefundOnly, S::Approved, A::Refund) => Some(S::Refunded),
        (K::ReturnAndRefund, S::Approved, A::ExpectReturn) => Some(S::GoodsReturning),
        (K::ReturnAndRefund, S::GoodsReturning, A::Receive) => Some(S::Received),
        (K::ReturnAndRefund, S::Received, A::QcPass) => Some(S::QcPassed),
        (K::ReturnAndRefund, S::Received, A::QcFail) => Some(S::QcFailed),
        (K::ReturnAndRefund, S::QcPassed | S::QcFailed, A::Refund) => Some(S::Refunded),
        (K::ReturnAndRefund, S::QcFailed, A::Close) => Some(S::Closed),
        (K::RefundOnly | K::ReturnAndRefund, S::Refunded, A::Close) => Some(S::Closed),
        (K::Exchange, S::Approved, A::ExpectReturn) => Some(S::GoodsReturning),
        (K::Exchange, S::GoodsReturning, A::Receive) => Some(S::Received),
        (K::Exchange, S::Received, A::QcPass) => Some(S::QcPassed),
        (K::Exchange, S::Received, A::QcFail) => Some(S::QcFailed),
        (K::Exchange, S::QcPassed, A::Exchange) => Some(S::Exchanged),
        (K::Exchange, S::Exchanged | S::QcFailed, A::Close) => Some(S::Closed),
        _ => None,
    }
}

/// What approving a case does to its order, decided by the order's status when it is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Not yet released: the lines' stock goes back to the pool and the order goes on with the
    /// rest (cancelled when nothing is left).
    StopLines,
    /// Released to the warehouse: the warehouse must pull the goods before they leave; the order
    /// is stopped (`after_sale`), so it cannot be shipped.
    InterceptAtWarehouse,
    /// Shipped (a waybill exists): the parcel must be intercepted; the order is stopped
    /// (`after_sale`), which has fulfillment ask the carrier to cancel the waybill (or raise
    /// `intercept_parcel` for a person) as for any stop after shipment.
    InterceptParcel,
    /// With the carrier or delivered, refund only: the money goes back, the goods stay.
    MoneyOnly,
    /// Shipped, with the carrier or delivered, return and refund: the goods are expected back.
    ExpectReturn,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::StopLines => "stop_lines",
            Effect::InterceptAtWarehouse => "intercept_at_warehouse",
            Effect::InterceptParcel => "intercept_parcel",
            Effect::MoneyOnly => "money_only",
            Effect::ExpectReturn => "expect_return",
        }
    }

    pub fn parse(s: &str) -> Result<Effect, ValidationError> {
        [
            Effect::StopLines,
            Effect::InterceptAtWarehouse,
            Effect::InterceptParcel,
            Effect::MoneyOnly,
            Effect::ExpectReturn,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
        .ok_or_else(|| {
            ValidationError::new(
                "effect",
                "unknown_effect",
                "effect is one of stop_lines, intercept_at_warehouse, intercept_parcel, money_only, expect_return",
            )
        })
    }
}

/// Why a case of this kind cannot be opened or approved for an order in this status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotNow {
    pub why: &'static str,
}

/// What approving a case of `kind` does to an order in `status` (the table of effects).
pub fn effect(kind: CaseKind, status: Status) -> Result<Effect, NotNow> {
    use CaseKind as K;
    use Status as S;
    match (kind, status) {
        (_, S::PendingPayment) => Err(NotNow {
            why: "the order is not paid: there is nothing to refund (cancel it instead)",
        }),
        (_, S::Cancelled) => Err(NotNow {
            why: "the order is cancelled: its stock is released already",
        }),
        (K::RefundOnly, S::Paid | S::OnHold | S::Allocated) => Ok(Effect::StopLines),
        (K::RefundOnly, S::Released) => Ok(Effect::InterceptAtWarehouse),
        (K::RefundOnly, S::Shipped) => Ok(Effect::InterceptParcel),
        (K::RefundOnly, S::InTransit | S::Delivered | S::Completed) => Ok(Effect::MoneyOnly),
        (K::ReturnAndRefund, S::Paid | S::OnHold | S::Allocated | S::Released) => Err(NotNow {
            why: "nothing has left the warehouse: there is nothing to return (open refund_only)",
        }),
        (K::ReturnAndRefund, S::Shipped | S::InTransit | S::Delivered | S::Completed) => {
            Ok(Effect::ExpectReturn)
        }
        (K::Exchange, S::Delivered | S::Completed) => Ok(Effect::ExpectReturn),
        (K::Exchange, _) => Err(NotNow {
            why: "an exchange is of goods the buyer received: the order is not delivered",
        }),
    }
}

/// One line of a case: which order line, how many units and how much money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseLine {
    pub line_id: u32,
    pub sku: Sku,
    pub quantity: u32,
    pub amount: Money,
}

/// A line as asked for: the amount defaults to what was paid for the units asked
/// (the line's paid amount × quantity ÷ line quantity, rounded down to the cent; the whole line
/// gets exactly its paid amount).
#[derive(Debug, Clone, PartialEq)]
pub struct LineClaim {
    pub line_id: u32,
    pub quantity: u32,
    pub amount: Option<Money>,
}

/// Units of one order line an approved case stopped before shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedLine {
    pub line_id: u32,
    pub quantity: u32,
    pub case_id: Uuid,
}

/// Who opened the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum CaseSource {
    Operator,
    /// The channel reported the refund; `key` is unique per order (one case per channel refund
    /// per line), so a repeated report opens nothing new.
    Channel {
        key: String,
    },
}

/// The seller's decision on a channel-opened case, as written back to the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritebackOutcome {
    /// The channel acknowledged the decision call.
    Acknowledged,
    /// The channel's refund already showed the decision (a retry after a lost answer, or the
    /// seller decided on the channel too): nothing was sent.
    AlreadyDecided,
    /// The channel has no call for a seller's decision: the decision stays in orderhub.
    NoCall,
}

impl WritebackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            WritebackOutcome::Acknowledged => "acknowledged",
            WritebackOutcome::AlreadyDecided => "already_decided",
            WritebackOutcome::NoCall => "no_call",
        }
    }
}

/// What the write-back of a channel-opened case's decision recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelWriteback {
    /// `approve` or `refuse`.
    pub decision: CaseAction,
    pub outcome: WritebackOutcome,
    /// The channel's refund id the decision was for (none when the channel has no call).
    pub refund_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// Quality control of a return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qc {
    pub passed: bool,
    pub warehouse_id: crate::ids::WarehouseId,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// One step of a case: who moved it where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseStep {
    pub at: DateTime<Utc>,
    pub action: CaseAction,
    pub from: CaseState,
    pub to: CaseState,
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AfterSaleCase {
    pub case_id: Uuid,
    pub order_id: OrderId,
    pub shop_id: ShopId,
    pub kind: CaseKind,
    pub state: CaseState,
    pub lines: Vec<CaseLine>,
    /// Σ of the lines' amounts.
    pub amount: Money,
    pub reason: String,
    pub source: CaseSource,
    /// The effect approving it had (or, while requested, would have as the order was when the
    /// case was opened).
    pub effect: Option<Effect>,
    /// The order's exception this case raised or is linked to (`after_sale`), if any.
    pub stop: Option<String>,
    pub qc: Option<Qc>,
    pub steps: Vec<CaseStep>,
    /// An exchange's replacement order, once `exchanged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_order_id: Option<OrderId>,
    /// The reason an operator gave when refusing the case (what a channel-opened case's refusal
    /// tells the channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// A channel-opened case: how the seller's decision reached the channel, once it did (or
    /// once it was found the channel has no call for it). Set once; never moves the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_writeback: Option<ChannelWriteback>,
    /// 1 at opening, +1 at every step.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AfterSaleCase {
    /// Whether its lines count against what is left of the order's lines: every case but a
    /// refused one — and an exchange closed without a replacement (QC failed: the buyer may
    /// still be refunded for those units by a case of its own).
    pub fn claims(&self) -> bool {
        self.state.claims()
            && !(self.kind == CaseKind::Exchange
                && self.state == CaseState::Closed
                && self.replacement_order_id.is_none())
    }

    /// Moves the case by `action` (the table [`next`]), recording the step. `Err` with the state
    /// it is in when the table has no such move.
    pub fn step(
        &mut self,
        action: CaseAction,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CaseState> {
        let to = next(self.kind, self.state, action).ok_or(self.state)?;
        self.steps.push(CaseStep {
            at: now,
            action,
            from: self.state,
            to,
            actor: actor.to_owned(),
        });
        self.state = to;
        self.version += 1;
        self.updated_at = now;
        Ok(())
    }
}

/// A reason or note: trimmed, 1 to [`CASE_TEXT_MAX`] characters.
pub fn text(field: &str, s: &str) -> Result<String, ValidationError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ValidationError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    }
    if t.chars().count() > CASE_TEXT_MAX {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} must be at most {CASE_TEXT_MAX} characters"),
        ));
    }
    Ok(t.to_owned())
}

/// Per order line: units and money claimed by the cases that count ([`CaseState::claims`]).
pub fn claimed<'a>(
    cases: impl IntoIterator<Item = &'a AfterSaleCase>,
) -> BTreeMap<u32, (u32, Money)> {
    let mut m: BTreeMap<u32, (u32, Money)> = BTreeMap::new();
    for c in cases.into_iter().filter(|c| c.claims()) {
        for l in &c.lines {
            let e = m.entry(l.line_id).or_insert((0, Money::ZERO));
            e.0 = e.0.saturating_add(l.quantity);
            e.1 = e.1.checked_add(l.amount).unwrap_or(e.1);
        }
    }
    m
}

/// An exchange claims units at no money, but the units it takes back are paid for: the money
/// left to refund on each line is less their share, or a later refund of the rest would pay for
/// the exchanged units too.
fn add_exchanged_shares(
    order: &Order,
    others: &[AfterSaleCase],
    before: &mut BTreeMap<u32, (u32, Money)>,
) {
    for c in others
        .iter()
        .filter(|c| c.kind == CaseKind::Exchange && c.claims())
    {
        for l in &c.lines {
            let (Some(line), Some(e)) = (
                order.lines.iter().find(|x| x.line_id == l.line_id),
                before.get_mut(&l.line_id),
            ) else {
                continue;
            };
            let share = default_amount(
                refundable(order, line.paid_amount),
                l.quantity,
                line.quantity,
                order.currency,
            );
            e.1 = e.1.checked_add(share).unwrap_or(e.1);
        }
    }
}

/// Checks a new case's lines against the order and every other case of it, to the cent: each line
/// exists once, 1 ≤ quantity, Σ quantities ≤ the line's quantity and Σ amounts ≤ its paid amount
/// over all cases that are not refused. Returns the case's lines with their amounts.
pub fn check_claims(
    order: &Order,
    others: &[AfterSaleCase],
    claims: &[LineClaim],
) -> Result<Vec<CaseLine>, ValidationError> {
    if claims.is_empty() {
        return Err(ValidationError::new(
            "lines",
            "required",
            "a case needs at least one line",
        ));
    }
    if claims.len() > CASE_LINES_MAX {
        return Err(ValidationError::new(
            "lines",
            "too_many",
            format!("a case may have at most {CASE_LINES_MAX} lines"),
        ));
    }
    let mut before = claimed(others);
    add_exchanged_shares(order, others, &mut before);
    let mut out: Vec<CaseLine> = Vec::with_capacity(claims.len());
    for (i, c) in claims.iter().enumerate() {
        let at = |f: &str| format!("lines[{i}].{f}");
        let Some(line) = order.lines.iter().find(|l| l.line_id == c.line_id) else {
            return Err(ValidationError::new(
                at("line_id"),
                "unknown_line",
                format!("the order has no line {}", c.line_id),
            ));
        };
        if out.iter().any(|l| l.line_id == c.line_id) {
            return Err(ValidationError::new(
                at("line_id"),
                "duplicate_line",
                format!("line {} is named twice", c.line_id),
            ));
        }
        let (q_before, a_before) = before.get(&c.line_id).copied().unwrap_or_default();
        let q_left = line.quantity.saturating_sub(q_before);
        if c.quantity == 0 {
            return Err(ValidationError::new(
                at("quantity"),
                "must_be_positive",
                "quantity must be at least 1",
            ));
        }
        if c.quantity > q_left {
            return Err(ValidationError::new(
                at("quantity"),
                "exceeds_line_quantity",
                format!(
                    "line {} has {} units, {q_before} of them claimed by other cases: at most {q_left} left",
                    c.line_id, line.quantity
                ),
            ));
        }
        let paid_for_line = refundable(order, line.paid_amount);
        let a_left = paid_for_line.checked_sub(a_before).unwrap_or(Money::ZERO);
        let amount = match c.amount {
            Some(a) => a,
            None if c.quantity == q_left => a_left,
            None => {
                default_amount(paid_for_line, c.quantity, line.quantity, order.currency).min(a_left)
            }
        };
        if amount > a_left {
            return Err(ValidationError::new(
                at("amount"),
                "exceeds_line_paid",
                format!(
                    "line {} was paid {paid_for_line}, {a_before} of it claimed by other cases: at most {a_left} left, asked {amount}",
                    c.line_id
                ),
            ));
        }
        out.push(CaseLine {
            line_id: c.line_id,
            sku: line.sku.clone(),
            quantity: c.quantity,
            amount,
        });
    }
    Ok(out)
}

/// What the buyer actually paid for a line whose own total is `line_paid`: its share of the
/// order's payment for goods (`paid_amount − shipping_fee`, so a whole-order coupon is borne by
/// every line in proportion), rounded down to the minor unit, never more than `line_paid`. The
/// lines' shares add up to at most what was paid for the goods.
pub fn refundable(order: &Order, line_paid: Money) -> Money {
    use rust_decimal::Decimal;
    let lines: Decimal = order.lines.iter().map(|l| l.paid_amount.amount()).sum();
    let goods = (order.paid_amount.amount() - order.shipping_fee.amount()).max(Decimal::ZERO);
    if lines <= Decimal::ZERO || goods >= lines {
        return line_paid;
    }
    let v = (line_paid.amount() * goods / lines).round_dp_with_strategy(
        order.currency.minor_digits(),
        rust_decimal::RoundingStrategy::ToZero,
    );
    Money::from_decimal("amount", v, order.currency)
        .unwrap_or(Money::ZERO)
        .min(line_paid)
}

/// `paid × quantity ÷ of`, rounded down to the currency's minor unit.
fn default_amount(paid: Money, quantity: u32, of: u32, currency: crate::Currency) -> Money {
    use rust_decimal::Decimal;
    let v = (paid.amount() * Decimal::from(quantity) / Decimal::from(of.max(1)))
        .round_dp_with_strategy(
            currency.minor_digits(),
            rust_decimal::RoundingStrategy::ToZero,
        );
    Money::from_decimal("amount", v, currency).unwrap_or(Money::ZERO)
}

/// Σ of the lines' amounts.
pub fn total(lines: &[CaseLine]) -> Result<Money, ValidationError> {
    lines.iter().try_fold(Money::ZERO, |acc, l| {
        acc.checked_add(l.amount)
            .ok_or_else(|| ValidationError::new("lines", "too_large", "the amounts overflow"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::tests::{money, order};

    /// A whole-order coupon is borne by every line in proportion: a line's refund is capped by
    /// its share of what the buyer paid for the goods, not by its own total before the coupon.
    #[test]
    fn a_refund_is_capped_by_the_line_s_share_after_a_whole_order_coupon() {
        let mut o = order();
        let lines: rust_decimal::Decimal = o.lines.iter().map(|l| l.paid_amount.amount()).sum();
        // A coupon of 30% of the goods on top of the line discounts.
        let goods = (lines * rust_decimal::Decimal::new(7, 1)).round_dp(2);
        o.paid_amount = money(&(goods + o.shipping_fee.amount()).to_string());
        let first = o.lines[0].clone();
        let share = refundable(&o, first.paid_amount);
        assert!(
            share < first.paid_amount,
            "{share} vs {}",
            first.paid_amount
        );
        let all: rust_decimal::Decimal = o
            .lines
            .iter()
            .map(|l| refundable(&o, l.paid_amount).amount())
            .sum();
        assert!(
            all <= goods,
            "the shares {all} exceed what was paid for the goods {goods}"
        );
        let whole = vec![LineClaim {
            line_id: first.line_id,
            quantity: first.quantity,
            amount: Some(first.paid_amount),
        }];
        let e = check_claims(&o, &[], &whole).unwrap_err();
        assert_eq!(e.rule, "exceeds_line_paid", "{e:?}");
        let default = vec![LineClaim {
            line_id: first.line_id,
            quantity: first.quantity,
            amount: None,
        }];
        assert_eq!(check_claims(&o, &[], &default).unwrap()[0].amount, share);
    }

    /// The table written out once more, independently of [`next`]: every move there is.
    const MOVES: &[(CaseKind, CaseState, CaseAction, CaseState)] = {
        use CaseAction as A;
        use CaseKind as K;
        use CaseState as S;
        &[
            (K::RefundOnly, S::Requested, A::Approve, S::Approved),
            (K::RefundOnly, S::Requested, A::Refuse, S::Refused),
            (K::RefundOnly, S::Approved, A::Refund, S::Refunded),
            (K::RefundOnly, S::Refunded, A::Close, S::Closed),
            (K::ReturnAndRefund, S::Requested, A::Approve, S::Approved),
            (K::ReturnAndRefund, S::Requested, A::Refuse, S::Refused),
            (
                K::ReturnAndRefund,
                S::Approved,
                A::ExpectReturn,
                S::GoodsReturning,
            ),
            (
                K::ReturnAndRefund,
                S::GoodsReturning,
                A::Receive,
                S::Received,
            ),
            (K::ReturnAndRefund, S::Received, A::QcPass, S::QcPassed),
            (K::ReturnAndRefund, S::Received, A::QcFail, S::QcFailed),
            (K::ReturnAndRefund, S::QcPassed, A::Refund, S::Refunded),
            (K::ReturnAndRefund, S::QcFailed, A::Refund, S::Refunded),
            (K::ReturnAndRefund, S::QcFailed, A::Close, S::Closed),
            (K::ReturnAndRefund, S::Refunded, A::Close, S::Closed),
            (K::Exchange, S::Requested, A::Approve, S::Approved),
            (K::Exchange, S::Requested, A::Refuse, S::Refused),
            (K::Exchange, S::Approved, A::ExpectReturn, S::GoodsReturning),
            (K::Exchange, S::GoodsReturning, A::Receive, S::Received),
            (K::Exchange, S::Received, A::QcPass, S::QcPassed),
            (K::Exchange, S::Received, A::QcFail, S::QcFailed),
            (K::Exchange, S::QcPassed, A::Exchange, S::Exchanged),
            (K::Exchange, S::Exchanged, A::Close, S::Closed),
            (K::Exchange, S::QcFailed, A::Close, S::Closed),
        ]
    };

    #[test]
    fn the_table_allows_exactly_the_moves_written_out() {
        for kind in CaseKind::ALL {
            for from in CaseState::ALL {
                for action in CaseAction::ALL {
                    let want = MOVES
                        .iter()
                        .find(|(k, f, a, _)| *k == kind && *f == from && *a == action)
                        .map(|m| m.3);
                    assert_eq!(
                        next(kind, from, action),
                        want,
                        "{} {} {}",
                        kind.as_str(),
                        from.as_str(),
                        action.as_str()
                    );
                }
            }
        }
    }

    #[test]
    fn final_states_have_no_move_and_a_refund_only_case_never_goes_through_qc() {
        for kind in CaseKind::ALL {
            for a in CaseAction::ALL {
                assert_eq!(next(kind, CaseState::Refused, a), None);
                assert_eq!(next(kind, CaseState::Closed, a), None);
            }
        }
        for s in CaseState::ALL {
            for a in [CaseAction::Receive, CaseAction::QcPass, CaseAction::QcFail] {
                assert_eq!(next(CaseKind::RefundOnly, s, a), None);
            }
        }
    }

    #[test]
    fn the_effect_of_approving_follows_the_order_status() {
        use CaseKind as K;
        use Effect as E;
        use Status as S;
        let rows: &[(K, S, Option<E>)] = &[
            (K::RefundOnly, S::PendingPayment, None),
            (K::RefundOnly, S::Paid, Some(E::StopLines)),
            (K::RefundOnly, S::OnHold, Some(E::StopLines)),
            (K::RefundOnly, S::Allocated, Some(E::StopLines)),
            (K::RefundOnly, S::Released, Some(E::InterceptAtWarehouse)),
            (K::RefundOnly, S::Shipped, Some(E::InterceptParcel)),
            (K::RefundOnly, S::InTransit, Some(E::MoneyOnly)),
            (K::RefundOnly, S::Delivered, Some(E::MoneyOnly)),
            (K::RefundOnly, S::Completed, Some(E::MoneyOnly)),
            (K::RefundOnly, S::Cancelled, None),
            (K::ReturnAndRefund, S::PendingPayment, None),
            (K::ReturnAndRefund, S::Paid, None),
            (K::ReturnAndRefund, S::OnHold, None),
            (K::ReturnAndRefund, S::Allocated, None),
            (K::ReturnAndRefund, S::Released, None),
            (K::ReturnAndRefund, S::Shipped, Some(E::ExpectReturn)),
            (K::ReturnAndRefund, S::InTransit, Some(E::ExpectReturn)),
            (K::ReturnAndRefund, S::Delivered, Some(E::ExpectReturn)),
            (K::ReturnAndRefund, S::Completed, Some(E::ExpectReturn)),
            (K::ReturnAndRefund, S::Cancelled, None),
            (K::Exchange, S::PendingPayment, None),
            (K::Exchange, S::Paid, None),
            (K::Exchange, S::OnHold, None),
            (K::Exchange, S::Allocated, None),
            (K::Exchange, S::Released, None),
            (K::Exchange, S::Shipped, None),
            (K::Exchange, S::InTransit, None),
            (K::Exchange, S::Delivered, Some(E::ExpectReturn)),
            (K::Exchange, S::Completed, Some(E::ExpectReturn)),
            (K::Exchange, S::Cancelled, None),
        ];
        assert_eq!(rows.len(), CaseKind::ALL.len() * Status::ALL.len());
        for (k, s, e) in rows {
            assert_eq!(effect(*k, *s).ok(), *e, "{} {}", k.as_str(), s.as_str());
        }
    }

    fn case(line_id: u32, q: u32, amount: &str, state: CaseState) -> AfterSaleCase {
        AfterSaleCase {
            case_id: Uuid::now_v7(),
            order_id: OrderId::from_uuid(Uuid::now_v7()),
            shop_id: ShopId::parse("s").unwrap(),
            kind: CaseKind::RefundOnly,
            state,
            lines: vec![CaseLine {
                line_id,
                sku: Sku::parse("SKU-A").unwrap(),
                quantity: q,
                amount: money(amount),
            }],
            amount: money(amount),
            reason: "r".into(),
            source: CaseSource::Operator,
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

    fn claim(line_id: u32, quantity: u32, amount: Option<&str>) -> LineClaim {
        LineClaim {
            line_id,
            quantity,
            amount: amount.map(money),
        }
    }

    #[test]
    fn claims_add_up_to_at_most_the_line_to_the_cent() {
        // Line 1: 2 × 49.90 − 5.00 = 94.80.
        let o = order();
        let first = check_claims(&o, &[], &[claim(1, 1, None)]).unwrap();
        assert_eq!(first[0].amount, money("47.40"));
        let others = vec![case(1, 1, "47.40", CaseState::Approved)];
        // The rest of the line is exactly what is left.
        let rest = check_claims(&o, &others, &[claim(1, 1, None)]).unwrap();
        assert_eq!(rest[0].amount, money("47.40"));
        let e = check_claims(&o, &others, &[claim(1, 1, Some("47.41"))]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("lines[0].amount", "exceeds_line_paid")
        );
        let e = check_claims(&o, &others, &[claim(1, 2, None)]).unwrap_err();
        assert_eq!(e.rule, "exceeds_line_quantity");
        // A refused case gives its claim back.
        let refused = vec![case(1, 2, "94.80", CaseState::Refused)];
        assert!(check_claims(&o, &refused, &[claim(1, 2, Some("94.80"))]).is_ok());
        // Two cases that each fit but together do not.
        let two = vec![
            case(1, 1, "90.00", CaseState::Refunded),
            case(2, 1, "20.00", CaseState::Requested),
        ];
        let e = check_claims(&o, &two, &[claim(1, 1, Some("4.81"))]).unwrap_err();
        assert_eq!(e.rule, "exceeds_line_paid");
        assert!(check_claims(&o, &two, &[claim(1, 1, Some("4.80"))]).is_ok());
        let e = check_claims(&o, &two, &[claim(2, 1, None)]).unwrap_err();
        assert_eq!(e.rule, "exceeds_line_quantity");
    }

    #[test]
    fn lines_are_required_known_and_named_once() {
        let o = order();
        assert_eq!(check_claims(&o, &[], &[]).unwrap_err().rule, "required");
        assert_eq!(
            check_claims(&o, &[], &[claim(9, 1, None)])
                .unwrap_err()
                .rule,
            "unknown_line"
        );
        assert_eq!(
            check_claims(&o, &[], &[claim(1, 1, None), claim(1, 1, None)])
                .unwrap_err()
                .rule,
            "duplicate_line"
        );
        assert_eq!(
            check_claims(&o, &[], &[claim(1, 0, None)])
                .unwrap_err()
                .rule,
            "must_be_positive"
        );
    }

    #[test]
    fn a_step_records_who_and_refuses_moves_off_the_table() {
        let mut c = case(1, 1, "1", CaseState::Requested);
        c.step(CaseAction::Approve, "ops:k", DateTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(
            (c.state, c.version, c.steps.len()),
            (CaseState::Approved, 2, 1)
        );
        assert_eq!(
            c.step(CaseAction::Approve, "ops:k", DateTime::UNIX_EPOCH),
            Err(CaseState::Approved)
        );
        assert_eq!(c.version, 2);
    }
}

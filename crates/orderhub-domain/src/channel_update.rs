//! What a channel says about an order after it was created, as a decision table: our order (its
//! status, amounts, lines, receiver, exceptions, hold) × what the channel reports now (its status,
//! amounts, lines with each line's refund state, receiver, whether it may ship, its own shipment)
//! → the actions to take, in the order to take them. Pure: `orderhub-core::intake` applies the
//! actions with its use cases, in one transaction.
//!
//! Nothing a channel says later is dropped without a word: each difference is applied, refused
//! with an exception, or ignored with the reason written in the audit entry.
//!
//! # The table
//!
//! "Content" is the amounts (totals, line money, presale split), the lines (goods and quantities),
//! the receiver and the buyer's and seller's notes. "Refund" means a line newly reported
//! `Requested` or `Refunded` (a line whose state did not change since the last report is not news,
//! so a stop an operator resolved is not raised again by the same refund). "Shipped on the
//! channel" is a channel status of shipped, delivered or completed, a partly shipped status, or a
//! shipment (carrier and tracking number) in the channel's payload.
//!
//! | our status | the channel says | content | status | refund | not shippable |
//! |---|---|---|---|---|---|
//! | any | an older or as old version | — stale: nothing at all | | | |
//! | pending payment | pending payment | apply | — | ignored (unpaid) | ignored |
//! | pending payment | paid | apply, then | pay | `after_sale` | hold |
//! | paid, on hold | pending payment / paid | apply; new goods re-reserve stock | — | `after_sale` | paid: hold |
//! | allocated | pending payment / paid | apply; new goods re-reserve, the allocation follows the new reservation | — | `after_sale` | `stop_shipment` |
//! | released | pending payment / paid | not applied: `changed_after_release` (once per new difference), the channel's version kept beside the order | — | `after_sale` | `stop_shipment` |
//! | shipped or later | not closed | ignored: changes after shipment are after-sales | — | `after_sale` | ignored |
//! | not shipped | shipped on the channel | ignored | pay if unpaid; `shipped_on_channel`, its carrier and tracking number recorded | `after_sale` | ignored |
//! | before release | closed | ignored | cancel | (closed) | — |
//! | released | closed | ignored | `stop_shipment` | (closed) | — |
//! | shipped or later | closed | ignored | `after_sale` | (closed) | — |
//! | cancelled | anything | ignored: the order is closed here | — | — | — |
//!
//! Lifting, in every row where the channel is not closed: `after_sale` that the channel raised is
//! lifted once no line is `Requested` or `Refunded` any more (refused or closed refunds);
//! `stop_shipment` that the channel raised (it forbade shipping an allocated or released order) is
//! lifted once the channel allows shipping again; the channel's own hold (a hold whose reason
//! starts with [`CHANNEL_HOLD`]) is lifted once it allows shipping. An exception someone else
//! raised — an operator, or orderhub before it kept track of who raised what — is never lifted by
//! the channel, nor are `shipped_on_channel`, `changed_after_release` or a close's `stop_shipment`:
//! those need a person.
//!
//! Choices where the issue is silent:
//! - A line change re-reserves only when the goods (SKU and quantity) change, and only for an order
//!   that holds stock or would (paid, or a presale/POS hold): the old reservation is released and
//!   the new lines reserved in the same transaction; short of stock the order goes on backorder
//!   (`out_of_stock`) exactly as a payment without stock does.
//! - An allocated order cannot go back to paid (the lifecycle's moves are irreversible, DESIGN §3).
//!   Its allocation is the warehouse holding its reservation (what the default strategy picks), so
//!   after a re-reservation the allocation is pointed at the new reservation's warehouse in the
//!   same version; on backorder it may not be released until its stock is reserved. An address
//!   change alone keeps the reservation and the allocation (the warehouse still ships anywhere;
//!   reserving again by the new province could put a fully stocked order on backorder).
//! - After release nothing is changed silently; the stop names what changed (amounts and lines
//!   in figures, the receiver only as "changed": personal data never goes into an event).
//! - A personal receiver field the channel now shows masked (`*`) where it used to show it clear
//!   is not a change: the channel hid it, the buyer did not move.
//! - Line ids stay stable: a line the channel still has (same external line id) keeps its id; a new
//!   line gets the next free id.

use crate::lifecycle::Status;
use crate::money::Money;
use crate::order::{Order, OrderKind, OrderLine, Receiver};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Hold reasons the channel sets start with this, so it lifts only its own holds.
pub const CHANNEL_HOLD: &str = "channel: ";
/// The stop raised when the channel changes an order already released to the warehouse.
pub const CHANGED_AFTER_RELEASE: &str = "changed_after_release";
pub const AFTER_SALE: &str = "after_sale";
pub const STOP_SHIPMENT: &str = "stop_shipment";
pub const SHIPPED_ON_CHANNEL: &str = "shipped_on_channel";
/// The longest hold reason taken from a channel (the lifecycle's bound is 256).
pub const HOLD_REASON_CHARS_MAX: usize = 200;

/// The after-sale state of one line, as the channel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    #[default]
    None,
    /// Asked for and in progress.
    Requested,
    Refunded,
    /// Refused, or closed without a refund.
    Rejected,
}

impl RefundState {
    /// Requested or refunded: the line must not ship as it is.
    pub fn is_open(self) -> bool {
        matches!(self, RefundState::Requested | RefundState::Refunded)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::None => "none",
            RefundState::Requested => "requested",
            RefundState::Refunded => "refunded",
            RefundState::Rejected => "rejected",
        }
    }
}

/// A shipment the channel reports that orderhub did not make (the seller's own backend, another
/// ERP): the channel's carrier (its own code or name) and the tracking number. No personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelShipment {
    pub carrier: String,
    pub tracking_no: String,
}

/// One line's refund state as the channel last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRefund {
    pub line_id: u32,
    pub state: RefundState,
}

/// The channel's version of an order released to the warehouse, which was not applied: the next
/// report is compared with it, so one change raises one stop. The receiver's personal fields are
/// encrypted at rest like the order's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unapplied {
    pub goods_total: Money,
    pub shipping_fee: Money,
    pub discount: Money,
    pub paid_amount: Money,
    pub lines: Vec<OrderLine>,
    pub receiver: Receiver,
}

/// What orderhub remembers of an order's channel reports beyond its status, so that a report is
/// compared with the last one rather than acted on again.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChannelSeen {
    /// Open exceptions the channel raised: the only ones it may lift.
    #[serde(default)]
    pub raised: Vec<String>,
    /// Each line's last reported refund state (lines without one are left out).
    #[serde(default)]
    pub refunds: Vec<LineRefund>,
    /// The channel reported the order shipped while orderhub had not shipped it.
    #[serde(default)]
    pub shipped: bool,
    /// After release: the channel's version that was not applied.
    #[serde(default)]
    pub unapplied: Option<Box<Unapplied>>,
}

impl ChannelSeen {
    pub fn is_empty(&self) -> bool {
        self.raised.is_empty()
            && self.refunds.is_empty()
            && !self.shipped
            && self.unapplied.is_none()
    }
}

/// What the channel reports now.
#[derive(Debug, Clone)]
pub struct Report {
    /// The channel's version of the order, built from its payload by `Order::create` (so its
    /// amounts are checked as a new order's are). Its id, status and times are not used.
    pub order: Order,
    /// The channel's status mapped to the lifecycle.
    pub canonical: Status,
    /// Some packages left, others not (the lifecycle has no such status; `canonical` says paid).
    pub partly_shipped: bool,
    /// Each line's refund state, in the order of `order.lines`.
    pub refunds: Vec<RefundState>,
    /// The channel forbids shipping for now, and why.
    pub not_shippable: Option<String>,
    pub paid_at: Option<DateTime<FixedOffset>>,
    /// The channel's own shipment, when it shipped the order itself.
    pub shipment: Option<ChannelShipment>,
}

/// What differs between the channel's report and the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Change {
    Status,
    Amounts,
    Lines,
    Receiver,
    Notes,
    Refunds,
    Shipment,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Status => "status",
            Change::Amounts => "amounts",
            Change::Lines => "lines",
            Change::Receiver => "receiver",
            Change::Notes => "notes",
            Change::Refunds => "refunds",
            Change::Shipment => "shipment",
        }
    }
}

/// One decided action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Take the channel's amounts: totals, each line's money, the presale split.
    ApplyAmounts,
    /// Take the channel's lines (ids kept per external line id). `rereserve`: the goods changed on
    /// an order that holds stock (or would): release its reservation and reserve the new lines in
    /// the same transaction; an allocated order's allocation follows the new reservation.
    ApplyLines {
        rereserve: bool,
    },
    ApplyReceiver,
    /// The buyer's message and the seller's memo.
    ApplyNotes,
    /// After release: keep the channel's version beside the order (compared with next time).
    KeepUnapplied,
    /// The channel's version is the order's again: forget the one kept.
    ForgetUnapplied,
    /// Remember each line's refund state.
    RecordRefunds,
    /// Record the channel's own shipment on the order (and that the channel shipped it).
    RecordShipment,
    Pay {
        paid_at: Option<DateTime<FixedOffset>>,
    },
    Cancel {
        reason: String,
    },
    Hold {
        reason: String,
    },
    /// Approve a hold the channel set (its reason starts with [`CHANNEL_HOLD`]).
    LiftChannelHold,
    /// Raise the exception (marked as the channel's) unless it is open already.
    Raise {
        exception: &'static str,
        detail: Value,
    },
    /// Resolve an exception the channel raised.
    Lift {
        exception: &'static str,
        detail: Value,
    },
    /// A difference deliberately not acted on, and why (written in the audit entry).
    Ignore {
        what: Change,
        why: &'static str,
    },
}

/// The table's answer for one report.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The report is not newer than the order's channel version: nothing changes at all.
    pub stale: bool,
    /// What differs, for the `order.channel_updated` event (`changed`).
    pub changed: Vec<Change>,
    /// In the order to apply them.
    pub actions: Vec<Action>,
}

impl Decision {
    pub fn changed_names(&self) -> Vec<&'static str> {
        self.changed.iter().map(|c| c.as_str()).collect()
    }

    /// Whether the decision holds this action.
    pub fn has(&self, a: &Action) -> bool {
        self.actions.contains(a)
    }

    /// Whether the goods changed on an order whose stock must be reserved again.
    pub fn rereserve(&self) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a, Action::ApplyLines { rereserve: true }))
    }
}

/// Whether a report with the channel's modified time `reported` is not newer than the order's:
/// such a report changes nothing (push, pull, repeats and replays arrive in any order).
pub fn is_stale(ours: &Order, reported: Option<DateTime<FixedOffset>>) -> bool {
    matches!((reported, ours.channel_updated_at), (Some(new), Some(stored)) if new <= stored)
}

fn before_release(s: Status) -> bool {
    matches!(
        s,
        Status::PendingPayment | Status::Paid | Status::OnHold | Status::Allocated
    )
}

fn shipped_or_later(s: Status) -> bool {
    matches!(
        s,
        Status::Shipped | Status::InTransit | Status::Delivered | Status::Completed
    )
}

/// The content a report is compared with.
struct Content<'a> {
    goods_total: Money,
    shipping_fee: Money,
    discount: Money,
    paid_amount: Money,
    lines: &'a [OrderLine],
    receiver: &'a Receiver,
}

impl<'a> Content<'a> {
    fn of(o: &'a Order) -> Content<'a> {
        Content {
            goods_total: o.goods_total,
            shipping_fee: o.shipping_fee,
            discount: o.discount,
            paid_amount: o.paid_amount,
            lines: &o.lines,
            receiver: &o.receiver,
        }
    }

    fn kept(u: &'a Unapplied) -> Content<'a> {
        Content {
            goods_total: u.goods_total,
            shipping_fee: u.shipping_fee,
            discount: u.discount,
            paid_amount: u.paid_amount,
            lines: &u.lines,
            receiver: &u.receiver,
        }
    }
}

/// The ids the channel's lines get on the order: a line the order has (same external line id, or
/// the same position where neither has one) keeps its id; others take the next free ones.
pub fn line_ids(ours: &[OrderLine], theirs: &[OrderLine]) -> Vec<u32> {
    let mut next = ours.iter().map(|l| l.line_id).max().unwrap_or(0);
    let mut taken = std::collections::BTreeSet::new();
    theirs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let same = match &t.external_line_id {
                Some(x) => ours.iter().find(|o| {
                    o.external_line_id.as_ref() == Some(x) && !taken.contains(&o.line_id)
                }),
                None => ours
                    .get(i)
                    .filter(|o| o.external_line_id.is_none() && !taken.contains(&o.line_id)),
            };
            match same {
                Some(o) => {
                    taken.insert(o.line_id);
                    o.line_id
                }
                None => {
                    next += 1;
                    next
                }
            }
        })
        .collect()
}

/// The order's lines without those the hub's gift rules added (`Fulfillment::gift_lines`).
fn channel_lines(o: &Order) -> Vec<OrderLine> {
    o.lines
        .iter()
        .filter(|l| !o.fulfillment.gift_lines.contains(&l.line_id))
        .cloned()
        .collect()
}

/// The channel's lines with the ids they take on the order.
fn numbered(ours: &[OrderLine], theirs: &[OrderLine]) -> Vec<OrderLine> {
    theirs
        .iter()
        .zip(line_ids(ours, theirs))
        .map(|(l, id)| OrderLine {
            line_id: id,
            ..l.clone()
        })
        .collect()
}

/// The goods of each line, by line id: what a line change is about.
fn goods(lines: &[OrderLine]) -> BTreeMap<u32, (&crate::Sku, u32, bool)> {
    lines
        .iter()
        .map(|l| (l.line_id, (&l.sku, l.quantity, l.is_kit)))
        .collect()
}

/// Units per SKU: what stock is reserved for.
fn units(lines: &[OrderLine]) -> BTreeMap<(&crate::Sku, bool), u64> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry((&l.sku, l.is_kit)).or_insert(0) += u64::from(l.quantity);
    }
    m
}

fn money(lines: &[OrderLine]) -> BTreeMap<u32, (Money, Money, Money)> {
    lines
        .iter()
        .map(|l| (l.line_id, (l.unit_price, l.discount, l.paid_amount)))
        .collect()
}

fn amounts_differ(base: &Content<'_>, theirs: &Content<'_>) -> bool {
    (
        base.goods_total,
        base.shipping_fee,
        base.discount,
        base.paid_amount,
    ) != (
        theirs.goods_total,
        theirs.shipping_fee,
        theirs.discount,
        theirs.paid_amount,
    ) || money(base.lines) != money(theirs.lines)
}

/// A personal field the channel masks (`138****0000`, `张**`).
fn hidden(s: &str) -> bool {
    s.contains('*')
}

fn personal_differs(ours: &crate::Personal, theirs: &crate::Personal) -> bool {
    let (o, t) = (ours.expose(), theirs.expose());
    // Shown masked where it was shown clear: the channel hid it, nothing moved.
    let hid_now = hidden(t) && !hidden(o);
    o != t && !hid_now
}

fn receiver_differs(ours: &Receiver, theirs: &Receiver) -> bool {
    (&ours.province, &ours.city, &ours.district, &ours.town)
        != (
            &theirs.province,
            &theirs.city,
            &theirs.district,
            &theirs.town,
        )
        || personal_differs(&ours.name, &theirs.name)
        || personal_differs(&ours.phone, &theirs.phone)
        || personal_differs(&ours.detail, &theirs.detail)
}

/// What differs between `base` and the channel's content (lines already numbered as ours).
fn content_changes(base: &Content<'_>, theirs: &Content<'_>) -> Vec<Change> {
    let mut out = Vec::new();
    if amounts_differ(base, theirs) {
        out.push(Change::Amounts);
    }
    if goods(base.lines) != goods(theirs.lines) {
        out.push(Change::Lines);
    }
    if receiver_differs(base.receiver, theirs.receiver) {
        out.push(Change::Receiver);
    }
    out
}

/// Amounts and goods in figures (no personal data), for an audit entry or a stop's detail.
pub fn content_detail(ours: &Order, theirs: &Order) -> Value {
    let c = ours.currency;
    let amounts = |o: &Order| {
        json!({
            "goods_total": o.goods_total.format(c),
            "shipping_fee": o.shipping_fee.format(c),
            "discount": o.discount.format(c),
            "paid_amount": o.paid_amount.format(c),
        })
    };
    let lines = |ls: &[OrderLine]| {
        ls.iter()
            .map(|l| {
                json!({
                    "line_id": l.line_id,
                    "external_line_id": l.external_line_id,
                    "sku": l.sku,
                    "quantity": l.quantity,
                    "paid_amount": l.paid_amount.format(c),
                })
            })
            .collect::<Vec<_>>()
    };
    json!({
        "ours": {"amounts": amounts(ours), "lines": lines(&ours.lines)},
        "channel": {"amounts": amounts(theirs), "lines": lines(&numbered(&ours.lines, &theirs.lines))},
    })
}

/// Decides what to do with one channel report about an existing order (see the module's table).
pub fn decide(ours: &Order, r: &Report) -> Decision {
    if is_stale(ours, r.order.channel_updated_at) {
        return Decision {
            stale: true,
            changed: Vec::new(),
            actions: Vec::new(),
        };
    }
    let theirs_lines = numbered(&ours.lines, &r.order.lines);
    let theirs = Content {
        lines: &theirs_lines,
        ..Content::of(&r.order)
    };
    let mut changed = Vec::new();
    let mut actions = Vec::new();
    if r.order.channel_status != ours.channel_status {
        changed.push(Change::Status);
    }
    // After release the report is compared with what the channel last said that was not applied.
    let released = ours.status == Status::Released;
    // The lines the hub's gift rules added are not the channel's: left out of the comparison.
    let own = channel_lines(ours);
    let base = match &ours.channel_seen.unapplied {
        Some(u) if released => Content::kept(u),
        _ => Content {
            lines: &own,
            ..Content::of(ours)
        },
    };
    let content = content_changes(&base, &theirs);
    changed.extend(content.iter().copied());
    let notes =
        (&r.order.buyer_message, &r.order.seller_memo) != (&ours.buyer_message, &ours.seller_memo);
    if notes {
        changed.push(Change::Notes);
    }
    // Refunds: each line's state now, and the lines that newly opened one.
    let refunds: Vec<LineRefund> = theirs_lines
        .iter()
        .zip(r.refunds.iter().copied())
        .filter(|(_, s)| *s != RefundState::None)
        .map(|(l, state)| LineRefund {
            line_id: l.line_id,
            state,
        })
        .collect();
    if refunds != ours.channel_seen.refunds {
        changed.push(Change::Refunds);
        actions.push(Action::RecordRefunds);
    }
    let before = |id: u32| {
        ours.channel_seen
            .refunds
            .iter()
            .find(|x| x.line_id == id)
            .map_or(RefundState::None, |x| x.state)
    };
    let opened: Vec<(&OrderLine, RefundState)> = theirs_lines
        .iter()
        .zip(r.refunds.iter().copied())
        .filter(|(l, s)| s.is_open() && before(l.line_id) != *s)
        .collect();
    let refund_detail = || {
        json!({
            "reason": "a refund was asked for or made on the channel",
            "lines": opened.iter().map(|(l, s)| json!({
                "line_id": l.line_id,
                "external_line_id": l.external_line_id,
                "sku": l.sku,
                "refund": s.as_str(),
            })).collect::<Vec<_>>(),
        })
    };
    let shipped_here = shipped_or_later(ours.status);
    let shipped_there = shipped_or_later(r.canonical) || r.partly_shipped || r.shipment.is_some();
    let new_shipment = r.shipment.is_some() && r.shipment != ours.fulfillment.channel_shipment;
    let ignore_content = |actions: &mut Vec<Action>, why: &'static str| {
        for c in content
            .iter()
            .copied()
            .chain(notes.then_some(Change::Notes))
        {
            actions.push(Action::Ignore { what: c, why });
        }
    };

    if ours.status == Status::Cancelled {
        ignore_content(&mut actions, "the order is cancelled here");
        return Decision {
            stale: false,
            changed,
            actions,
        };
    }

    if r.canonical == Status::Cancelled {
        ignore_content(&mut actions, "the channel closed the order");
        let closed = |what: &str| json!({"reason": format!("closed on the channel {what}"), "channel_status": r.order.channel_status, "status": ours.status.as_str()});
        if before_release(ours.status) {
            actions.push(Action::Cancel {
                reason: "closed on the channel".into(),
            });
        } else if ours.status == Status::Released {
            actions.push(Action::Raise {
                exception: STOP_SHIPMENT,
                detail: closed("after release"),
            });
        } else if shipped_here {
            actions.push(Action::Raise {
                exception: AFTER_SALE,
                detail: closed("after shipment"),
            });
        }
        return Decision {
            stale: false,
            changed,
            actions,
        };
    }

    if shipped_there && !shipped_here {
        if new_shipment {
            changed.push(Change::Shipment);
        }
        ignore_content(
            &mut actions,
            "the channel shipped the order itself: an operator reconciles it",
        );
        if ours.status == Status::PendingPayment {
            actions.push(Action::Pay { paid_at: r.paid_at });
        }
        if new_shipment || !ours.channel_seen.shipped {
            actions.push(Action::RecordShipment);
            let s = r.shipment.as_ref();
            actions.push(Action::Raise {
                exception: SHIPPED_ON_CHANNEL,
                detail: json!({
                    "reason": if r.partly_shipped { "partly shipped on the channel" } else { "shipped on the channel" },
                    "channel_status": r.order.channel_status,
                    "status": ours.status.as_str(),
                    "carrier": s.map(|s| &s.carrier),
                    "tracking_no": s.map(|s| &s.tracking_no),
                }),
            });
        }
        if !opened.is_empty() {
            actions.push(Action::Raise {
                exception: AFTER_SALE,
                detail: refund_detail(),
            });
        }
        lifts(ours, r, &mut actions);
        return Decision {
            stale: false,
            changed,
            actions,
        };
    }

    if shipped_here {
        ignore_content(
            &mut actions,
            "the parcel has left: a change after shipment is an after-sale",
        );
        if !opened.is_empty() {
            actions.push(Action::Raise {
                exception: AFTER_SALE,
                detail: refund_detail(),
            });
        }
        if r.not_shippable.is_some() {
            actions.push(Action::Ignore {
                what: Change::Status,
                why: "not shippable, but shipped already",
            });
        }
        lifts(ours, r, &mut actions);
        return Decision {
            stale: false,
            changed,
            actions,
        };
    }

    if released {
        // Back to what was released: nothing to stop for (an open stop stays for its operator).
        let as_released = content_changes(&Content::of(ours), &theirs).is_empty();
        if as_released {
            if ours.channel_seen.unapplied.is_some() {
                actions.push(Action::ForgetUnapplied);
            }
        } else if !content.is_empty() {
            actions.push(Action::KeepUnapplied);
            actions.push(Action::Raise {
                exception: CHANGED_AFTER_RELEASE,
                detail: json!({
                    "reason": "the channel changed the order after it was released to the warehouse; nothing was applied",
                    "changed": content.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    "amounts_and_lines": content_detail(ours, &r.order),
                }),
            });
        }
        if notes {
            actions.push(Action::Ignore {
                what: Change::Notes,
                why: "released to the warehouse: notes are not changed after release",
            });
        }
        if !opened.is_empty() {
            actions.push(Action::Raise {
                exception: AFTER_SALE,
                detail: refund_detail(),
            });
        }
        if let Some(why) = &r.not_shippable {
            actions.push(Action::Raise {
                exception: STOP_SHIPMENT,
                detail: json!({"reason": format!("the channel forbids shipping: {why}")}),
            });
        }
        lifts(ours, r, &mut actions);
        return Decision {
            stale: false,
            changed,
            actions,
        };
    }

    // Before release: the channel's content is the order's.
    if content.contains(&Change::Amounts) {
        actions.push(Action::ApplyAmounts);
    }
    if content.contains(&Change::Lines) {
        let holds_stock = ours.status != Status::PendingPayment || ours.reservation_id.is_some();
        let rereserve = holds_stock && units(&channel_lines(ours)) != units(&theirs_lines);
        actions.push(Action::ApplyLines { rereserve });
    }
    if content.contains(&Change::Receiver) {
        actions.push(Action::ApplyReceiver);
    }
    if notes {
        actions.push(Action::ApplyNotes);
    }
    let mut status = ours.status;
    if status == Status::PendingPayment && r.canonical != Status::PendingPayment {
        actions.push(Action::Pay { paid_at: r.paid_at });
        status = Status::Paid;
    }
    if status == Status::PendingPayment {
        if !opened.is_empty() {
            actions.push(Action::Ignore {
                what: Change::Refunds,
                why: "not paid: nothing to refund yet",
            });
        }
    } else if !opened.is_empty() {
        actions.push(Action::Raise {
            exception: AFTER_SALE,
            detail: refund_detail(),
        });
    }
    match (&r.not_shippable, status) {
        (Some(why), Status::Paid) => actions.push(Action::Hold {
            reason: format!(
                "{CHANNEL_HOLD}{}",
                why.chars().take(HOLD_REASON_CHARS_MAX).collect::<String>()
            ),
        }),
        // Held by someone else (a review rule, an operator): approving that hold must not ship
        // it, so the channel's word is a stop of its own.
        (Some(why), Status::Allocated | Status::OnHold)
            if status == Status::Allocated
                || !ours
                    .hold_reason
                    .as_deref()
                    .is_some_and(|h| h.starts_with(CHANNEL_HOLD)) =>
        {
            actions.push(Action::Raise {
                exception: STOP_SHIPMENT,
                detail: json!({"reason": format!("the channel forbids shipping: {why}")}),
            })
        }
        (None, Status::OnHold)
            if ours
                .hold_reason
                .as_deref()
                .is_some_and(|h| h.starts_with(CHANNEL_HOLD)) =>
        {
            actions.push(Action::LiftChannelHold)
        }
        _ => {}
    }
    lifts(ours, r, &mut actions);
    Decision {
        stale: false,
        changed,
        actions,
    }
}

/// Lifts the stops the channel raised and no longer has reason for (never another's).
fn lifts(ours: &Order, r: &Report, actions: &mut Vec<Action>) {
    let by_channel =
        |code: &str| ours.has_exception(code) && ours.channel_seen.raised.iter().any(|c| c == code);
    let raising = |code: &str, actions: &[Action]| {
        actions
            .iter()
            .any(|a| matches!(a, Action::Raise { exception, .. } if *exception == code))
    };
    if by_channel(AFTER_SALE)
        && r.canonical != Status::Cancelled
        && !r.refunds.iter().any(|s| s.is_open())
        && !raising(AFTER_SALE, actions)
    {
        actions.push(Action::Lift {
            exception: AFTER_SALE,
            detail: json!({"reason": "the channel reports no open refund any more", "resolved_by": "channel"}),
        });
    }
    if by_channel(STOP_SHIPMENT)
        && matches!(r.canonical, Status::PendingPayment | Status::Paid)
        && r.not_shippable.is_none()
        && !raising(STOP_SHIPMENT, actions)
    {
        actions.push(Action::Lift {
            exception: STOP_SHIPMENT,
            detail: json!({"reason": "the channel allows shipping again", "resolved_by": "channel"}),
        });
    }
}

/// The order as the channel's report leaves it, before any lifecycle move or exception: the
/// channel's status and version, the content the decision applies (line ids kept), and what is
/// remembered of the report (refunds, the unapplied version, the channel's shipment). Version and
/// `updated_at` are the caller's.
pub fn applied(ours: &Order, r: &Report, d: &Decision) -> Order {
    let mut next = ours.clone();
    let theirs = &r.order;
    next.channel_status = theirs.channel_status.clone();
    next.channel_updated_at = theirs.channel_updated_at;
    let numbered_lines = numbered(&ours.lines, &theirs.lines);
    for a in &d.actions {
        match a {
            Action::ApplyAmounts => {
                next.goods_total = theirs.goods_total;
                next.shipping_fee = theirs.shipping_fee;
                next.discount = theirs.discount;
                next.paid_amount = theirs.paid_amount;
                // The presale split must add up to the new total: the channel's (same kind only).
                if matches!(
                    (&next.kind, &theirs.kind),
                    (OrderKind::Presale { .. }, OrderKind::Presale { .. })
                ) {
                    next.kind = theirs.kind.clone();
                }
                if !d
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::ApplyLines { .. }))
                {
                    // Money per line: the lines are the same goods under the same ids.
                    for l in next.lines.iter_mut() {
                        if let Some(t) = numbered_lines.iter().find(|t| t.line_id == l.line_id) {
                            l.unit_price = t.unit_price;
                            l.discount = t.discount;
                            l.paid_amount = t.paid_amount;
                        }
                    }
                }
            }
            Action::ApplyLines { .. } => {
                // The hub's gift lines stay (their ids are above every line the channel had).
                next.lines = numbered_lines.clone();
                next.lines.extend(
                    ours.lines
                        .iter()
                        .filter(|l| ours.fulfillment.gift_lines.contains(&l.line_id))
                        .filter(|l| !numbered_lines.iter().any(|t| t.line_id == l.line_id))
                        .cloned(),
                );
            }
            Action::ApplyReceiver => next.receiver = theirs.receiver.clone(),
            Action::ApplyNotes => {
                next.buyer_message = theirs.buyer_message.clone();
                next.seller_memo = theirs.seller_memo.clone();
            }
            Action::KeepUnapplied => {
                next.channel_seen.unapplied = Some(Box::new(Unapplied {
                    goods_total: theirs.goods_total,
                    shipping_fee: theirs.shipping_fee,
                    discount: theirs.discount,
                    paid_amount: theirs.paid_amount,
                    lines: numbered_lines.clone(),
                    receiver: theirs.receiver.clone(),
                }))
            }
            Action::ForgetUnapplied => next.channel_seen.unapplied = None,
            Action::RecordRefunds => {
                next.channel_seen.refunds = numbered_lines
                    .iter()
                    .zip(r.refunds.iter().copied())
                    .filter(|(_, s)| *s != RefundState::None)
                    .map(|(l, state)| LineRefund {
                        line_id: l.line_id,
                        state,
                    })
                    .collect();
            }
            Action::RecordShipment => {
                next.channel_seen.shipped = true;
                if r.shipment.is_some() {
                    next.fulfillment.channel_shipment = r.shipment.clone();
                }
            }
            Action::Pay { .. }
            | Action::Cancel { .. }
            | Action::Hold { .. }
            | Action::LiftChannelHold
            | Action::Raise { .. }
            | Action::Lift { .. }
            | Action::Ignore { .. } => {}
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Personal;
    use crate::order::tests::{draft, money};
    use crate::{OrderId, TenantId};
    use chrono::Utc;

    fn at(minutes: i64) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-11T10:00:00+08:00").unwrap()
            + chrono::Duration::minutes(minutes)
    }

    fn build(d: crate::order::OrderDraft) -> Order {
        Order::create(
            d,
            OrderId::from_uuid(uuid::Uuid::now_v7()),
            TenantId::parse("acme").unwrap(),
            Utc::now(),
        )
        .unwrap()
    }

    /// The channel's first version: two lines (external ids L1, L2), 122.80 to pay.
    fn channel_draft() -> crate::order::OrderDraft {
        let mut d = draft();
        d.channel_status = Some("WAIT_SELLER_SEND_GOODS".into());
        d.channel_updated_at = Some(at(0));
        d.lines[0].external_line_id = Some("L1".into());
        d.lines[1].external_line_id = Some("L2".into());
        d
    }

    /// Our order, as created from the channel's first version, now in `status`.
    fn ours(status: Status) -> Order {
        let mut o = build(channel_draft());
        o.status = status;
        if status != Status::PendingPayment {
            o.paid_at = Some(at(0));
        }
        if matches!(status, Status::Allocated | Status::Released) {
            o.fulfillment.warehouse_id = Some(crate::ids::WarehouseId::parse("HZ").unwrap());
        }
        o
    }

    /// A newer report (one minute later) of the same order, changed by `edit`.
    fn report(canonical: Status, edit: impl FnOnce(&mut crate::order::OrderDraft)) -> Report {
        let mut d = channel_draft();
        d.channel_updated_at = Some(at(1));
        edit(&mut d);
        Report {
            order: build(d),
            canonical,
            partly_shipped: false,
            refunds: vec![RefundState::None; 2],
            not_shippable: None,
            paid_at: Some(at(0)),
            shipment: None,
        }
    }

    fn unchanged(canonical: Status) -> Report {
        report(canonical, |_| {})
    }

    /// 改价: the seller takes 10.00 off the first line before payment (paid 90.00 … here 112.80).
    fn price_cut(d: &mut crate::order::OrderDraft) {
        d.lines[0].discount = money("15.00");
        d.lines[0].paid_amount = None;
    }

    fn new_address(d: &mut crate::order::OrderDraft) {
        d.receiver.detail = Personal::new("文一路 1 号");
        d.receiver.district = Some("拱墅区".into());
    }

    fn more_of_line_2(d: &mut crate::order::OrderDraft) {
        d.lines[1].quantity = 3;
        d.lines[1].paid_amount = None;
    }

    fn raised(d: &Decision) -> Vec<&'static str> {
        d.actions
            .iter()
            .filter_map(|a| match a {
                Action::Raise { exception, .. } => Some(*exception),
                _ => None,
            })
            .collect()
    }

    fn lifted(d: &Decision) -> Vec<&'static str> {
        d.actions
            .iter()
            .filter_map(|a| match a {
                Action::Lift { exception, .. } => Some(*exception),
                _ => None,
            })
            .collect()
    }

    fn ignored(d: &Decision) -> Vec<Change> {
        d.actions
            .iter()
            .filter_map(|a| match a {
                Action::Ignore { what, .. } => Some(*what),
                _ => None,
            })
            .collect()
    }

    fn with_refund(mut r: Report, line: usize, s: RefundState) -> Report {
        r.refunds[line] = s;
        r
    }

    #[test]
    fn an_older_or_as_old_report_is_stale_and_changes_nothing() {
        let o = ours(Status::Paid);
        for minutes in [-5, 0] {
            let mut r = report(Status::Cancelled, price_cut);
            r.order.channel_updated_at = Some(at(minutes));
            let d = decide(&o, &r);
            assert!(d.stale);
            assert!(d.actions.is_empty() && d.changed.is_empty());
        }
        assert!(!decide(&o, &unchanged(Status::Paid)).stale);
    }

    #[test]
    fn a_report_that_changes_nothing_decides_nothing() {
        for s in [
            Status::PendingPayment,
            Status::Paid,
            Status::Released,
            Status::Shipped,
        ] {
            let d = decide(
                &ours(s),
                &unchanged(if s == Status::PendingPayment {
                    s
                } else {
                    Status::Paid
                }),
            );
            assert_eq!(
                (d.changed.clone(), d.actions.clone()),
                (vec![], vec![]),
                "{s}"
            );
        }
    }

    #[test]
    fn pending_payment_price_change_is_applied_and_line_ids_kept() {
        let o = ours(Status::PendingPayment);
        let r = report(Status::PendingPayment, price_cut);
        let d = decide(&o, &r);
        assert_eq!(d.changed, vec![Change::Amounts]);
        assert_eq!(d.actions, vec![Action::ApplyAmounts]);
        let n = applied(&o, &r, &d);
        assert_eq!(n.paid_amount, money("112.80"));
        assert_eq!(n.discount, money("15.00"));
        assert_eq!(n.lines[0].paid_amount, money("84.80"));
        assert_eq!(
            n.lines.iter().map(|l| l.line_id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(n.status, Status::PendingPayment);
    }

    #[test]
    fn pending_payment_then_paid_applies_the_new_price_before_paying() {
        let o = ours(Status::PendingPayment);
        let d = decide(&o, &report(Status::Paid, price_cut));
        assert_eq!(
            d.actions,
            vec![
                Action::ApplyAmounts,
                Action::Pay {
                    paid_at: Some(at(0))
                }
            ]
        );
        assert!(d.changed.contains(&Change::Amounts));
    }

    #[test]
    fn pending_payment_line_change_takes_the_lines_without_touching_stock() {
        let o = ours(Status::PendingPayment);
        let d = decide(&o, &report(Status::PendingPayment, more_of_line_2));
        assert_eq!(
            d.actions,
            vec![
                Action::ApplyAmounts,
                Action::ApplyLines { rereserve: false }
            ]
        );
    }

    #[test]
    fn a_held_presale_order_re_reserves_when_its_goods_change_before_payment() {
        let mut o = ours(Status::PendingPayment);
        o.reservation_id = Some(uuid::Uuid::now_v7());
        let d = decide(&o, &report(Status::PendingPayment, more_of_line_2));
        assert!(d.rereserve());
    }

    #[test]
    fn paid_line_change_applies_and_re_reserves() {
        for s in [Status::Paid, Status::OnHold, Status::Allocated] {
            let o = ours(s);
            let r = report(Status::Paid, more_of_line_2);
            let d = decide(&o, &r);
            assert!(d.has(&Action::ApplyLines { rereserve: true }), "{s}: {d:?}");
            assert!(d.has(&Action::ApplyAmounts), "{s}");
            assert!(d.changed.contains(&Change::Lines));
            let n = applied(&o, &r, &d);
            assert_eq!(n.lines[1].quantity, 3);
            assert_eq!(
                (n.status, n.fulfillment.clone()),
                (o.status, o.fulfillment.clone()),
                "{s}"
            );
        }
    }

    #[test]
    fn a_price_change_alone_does_not_re_reserve() {
        let d = decide(&ours(Status::Paid), &report(Status::Paid, price_cut));
        assert_eq!(d.actions, vec![Action::ApplyAmounts]);
    }

    #[test]
    fn a_new_line_gets_the_next_id_and_a_dropped_line_goes() {
        let o = ours(Status::Paid);
        let r = report(Status::Paid, |d| {
            let mut extra = d.lines[1].clone();
            extra.external_line_id = Some("L3".into());
            extra.sku = crate::Sku::parse("SKU-C").unwrap();
            d.lines.remove(0);
            d.lines.push(extra);
            d.paid_amount = None;
            d.goods_total = None;
            d.discount = None;
        });
        let d = decide(&o, &r);
        let n = applied(&o, &r, &d);
        let ids: Vec<_> = n
            .lines
            .iter()
            .map(|l| (l.line_id, l.sku.to_string()))
            .collect();
        assert_eq!(ids, vec![(2, "SKU-B".into()), (3, "SKU-C".into())]);
        assert!(d.rereserve());
    }

    #[test]
    fn before_release_an_address_change_is_applied_without_re_reserving() {
        for s in [
            Status::PendingPayment,
            Status::Paid,
            Status::OnHold,
            Status::Allocated,
        ] {
            let o = ours(s);
            let r = report(
                if s == Status::PendingPayment {
                    s
                } else {
                    Status::Paid
                },
                new_address,
            );
            let d = decide(&o, &r);
            assert_eq!(d.actions, vec![Action::ApplyReceiver], "{s}");
            let n = applied(&o, &r, &d);
            assert_eq!(n.receiver.detail.expose(), "文一路 1 号");
            assert_eq!(n.receiver.district.as_deref(), Some("拱墅区"));
        }
    }

    #[test]
    fn a_receiver_the_channel_now_masks_is_not_a_change_but_a_new_mask_is() {
        let o = ours(Status::Paid);
        let d = decide(
            &o,
            &report(Status::Paid, |d| {
                d.receiver.phone = Personal::new("138****1234")
            }),
        );
        assert!(d.actions.is_empty(), "{d:?}");
        let mut masked = o.clone();
        masked.receiver.name = Personal::new("王**");
        let d = decide(
            &masked,
            &report(Status::Paid, |d| d.receiver.name = Personal::new("李**")),
        );
        assert_eq!(d.actions, vec![Action::ApplyReceiver]);
    }

    #[test]
    fn a_gift_line_the_hub_added_is_not_a_line_change_and_stays_when_the_channels_lines_apply() {
        let mut o = ours(Status::Paid);
        let gift = OrderLine {
            line_id: 3,
            external_line_id: None,
            sku: crate::Sku::parse("GIFT-1").unwrap(),
            title: "小样".into(),
            quantity: 1,
            unit_price: Money::ZERO,
            discount: Money::ZERO,
            paid_amount: Money::ZERO,
            is_kit: false,
        };
        o.lines.push(gift.clone());
        o.fulfillment.gift_lines = vec![3];
        let memo = |d: &mut crate::order::OrderDraft| d.seller_memo = Some("发顺丰".into());
        let d = decide(&o, &report(Status::Paid, memo));
        assert_eq!(d.actions, vec![Action::ApplyNotes], "{d:?}");
        // The same without the marker: the gift line reads as goods the channel removed.
        let mut unmarked = o.clone();
        unmarked.fulfillment.gift_lines.clear();
        let d = decide(&unmarked, &report(Status::Paid, memo));
        assert!(d.changed.contains(&Change::Lines), "{d:?}");
        // The channel adds a line: its lines apply, the gift stays, under its own id.
        let more = |d: &mut crate::order::OrderDraft| {
            let mut l = d.lines[1].clone();
            l.external_line_id = Some("L3".into());
            d.lines.push(l);
        };
        let r = report(Status::Paid, more);
        let d = decide(&o, &r);
        assert!(
            d.actions
                .iter()
                .any(|a| matches!(a, Action::ApplyLines { .. })),
            "{d:?}"
        );
        let n = applied(&o, &r, &d);
        let ids: Vec<(u32, &str)> = n
            .lines
            .iter()
            .map(|l| (l.line_id, l.sku.as_str()))
            .collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert!(ids.contains(&(3, "GIFT-1")), "{ids:?}");
        assert_eq!(ids.iter().filter(|(id, _)| *id == 3).count(), 1, "{ids:?}");
    }

    #[test]
    fn notes_are_applied_before_release_and_ignored_after() {
        let edit = |d: &mut crate::order::OrderDraft| d.seller_memo = Some("发顺丰".into());
        let d = decide(&ours(Status::Paid), &report(Status::Paid, edit));
        assert_eq!(d.actions, vec![Action::ApplyNotes]);
        let d = decide(&ours(Status::Released), &report(Status::Paid, edit));
        assert_eq!(ignored(&d), vec![Change::Notes]);
        assert!(raised(&d).is_empty());
    }

    #[test]
    fn after_release_a_change_stops_the_order_and_changes_nothing() {
        for edit in [price_cut as fn(&mut _), more_of_line_2, new_address] {
            let o = ours(Status::Released);
            let r = report(Status::Paid, edit);
            let d = decide(&o, &r);
            assert_eq!(raised(&d), vec![CHANGED_AFTER_RELEASE], "{d:?}");
            assert!(d.has(&Action::KeepUnapplied));
            let n = applied(&o, &r, &d);
            assert_eq!(
                (&n.lines, n.paid_amount, &n.receiver),
                (&o.lines, o.paid_amount, &o.receiver)
            );
            assert!(n.channel_seen.unapplied.is_some());
            // The stop's detail names the change, and never a personal field.
            let detail = d.actions.iter().find_map(|a| match a {
                Action::Raise { detail, .. } => Some(detail.to_string()),
                _ => None,
            });
            let text = detail.unwrap();
            assert!(
                !text.contains("文一路") && !text.contains("13800001234"),
                "{text}"
            );
        }
    }

    #[test]
    fn after_release_the_same_change_reported_again_raises_no_second_stop() {
        let o = ours(Status::Released);
        let r = report(Status::Paid, new_address);
        let d = decide(&o, &r);
        let mut n = applied(&o, &r, &d);
        // An operator resolved the stop; the channel reports the same version again, newer.
        let mut again = report(Status::Paid, new_address);
        again.order.channel_updated_at = Some(at(2));
        n.channel_seen.raised.clear();
        let d2 = decide(&n, &again);
        assert!(raised(&d2).is_empty(), "{d2:?}");
        // A further change is news.
        let mut third = report(Status::Paid, |d| {
            new_address(d);
            price_cut(d);
        });
        third.order.channel_updated_at = Some(at(3));
        assert_eq!(raised(&decide(&n, &third)), vec![CHANGED_AFTER_RELEASE]);
        // The channel goes back to what was released: the kept version is forgotten.
        let mut back = unchanged(Status::Paid);
        back.order.channel_updated_at = Some(at(4));
        assert_eq!(decide(&n, &back).actions, vec![Action::ForgetUnapplied]);
    }

    #[test]
    fn after_shipment_changes_are_ignored_with_a_reason() {
        for s in [
            Status::Shipped,
            Status::InTransit,
            Status::Delivered,
            Status::Completed,
        ] {
            let d = decide(
                &ours(s),
                &report(Status::Shipped, |d| {
                    price_cut(d);
                    new_address(d);
                }),
            );
            assert_eq!(ignored(&d), vec![Change::Amounts, Change::Receiver], "{s}");
            assert!(raised(&d).is_empty());
        }
    }

    #[test]
    fn a_refund_on_a_paid_not_shipped_order_raises_after_sale_naming_the_line() {
        for s in [
            Status::Paid,
            Status::OnHold,
            Status::Allocated,
            Status::Released,
        ] {
            let d = decide(
                &ours(s),
                &with_refund(unchanged(Status::Paid), 1, RefundState::Requested),
            );
            assert_eq!(raised(&d), vec![AFTER_SALE], "{s}");
            assert!(d.changed.contains(&Change::Refunds));
            let detail = d
                .actions
                .iter()
                .find_map(|a| match a {
                    Action::Raise { detail, .. } => Some(detail.clone()),
                    _ => None,
                })
                .unwrap();
            assert_eq!(detail["lines"][0]["line_id"], 2);
            assert_eq!(detail["lines"][0]["external_line_id"], "L2");
            assert_eq!(detail["lines"][0]["refund"], "requested");
        }
    }

    #[test]
    fn a_refund_on_a_shipped_order_raises_after_sale_as_before() {
        let d = decide(
            &ours(Status::Shipped),
            &with_refund(unchanged(Status::Shipped), 0, RefundState::Refunded),
        );
        assert_eq!(raised(&d), vec![AFTER_SALE]);
    }

    #[test]
    fn a_refund_on_an_unpaid_order_is_ignored() {
        let d = decide(
            &ours(Status::PendingPayment),
            &with_refund(unchanged(Status::PendingPayment), 0, RefundState::Requested),
        );
        assert!(raised(&d).is_empty());
        assert_eq!(ignored(&d), vec![Change::Refunds]);
    }

    #[test]
    fn the_same_refund_reported_again_is_not_news_but_its_completion_is() {
        let o = ours(Status::Paid);
        let r = with_refund(unchanged(Status::Paid), 1, RefundState::Requested);
        let d = decide(&o, &r);
        let mut n = applied(&o, &r, &d);
        n.exceptions.clear(); // an operator resolved it
        let mut again = with_refund(unchanged(Status::Paid), 1, RefundState::Requested);
        again.order.channel_updated_at = Some(at(2));
        assert!(raised(&decide(&n, &again)).is_empty());
        let mut done = with_refund(unchanged(Status::Paid), 1, RefundState::Refunded);
        done.order.channel_updated_at = Some(at(3));
        assert_eq!(raised(&decide(&n, &done)), vec![AFTER_SALE]);
    }

    #[test]
    fn a_refund_closed_lifts_the_stop_the_channel_raised() {
        let mut o = ours(Status::Paid);
        o.exceptions = vec![AFTER_SALE.into()];
        o.channel_seen.raised = vec![AFTER_SALE.into()];
        o.channel_seen.refunds = vec![LineRefund {
            line_id: 2,
            state: RefundState::Requested,
        }];
        let d = decide(
            &o,
            &with_refund(unchanged(Status::Paid), 1, RefundState::Rejected),
        );
        assert_eq!(lifted(&d), vec![AFTER_SALE]);
        // Still open on another line: kept.
        let mut r = with_refund(unchanged(Status::Paid), 1, RefundState::Rejected);
        r.refunds[0] = RefundState::Refunded;
        assert!(lifted(&decide(&o, &r)).is_empty());
    }

    #[test]
    fn an_operator_stop_is_never_lifted_by_the_channel() {
        let mut o = ours(Status::Paid);
        o.exceptions = vec![AFTER_SALE.into(), STOP_SHIPMENT.into()];
        let d = decide(&o, &unchanged(Status::Paid));
        assert!(lifted(&d).is_empty(), "{d:?}");
        // Nor the channel's own stops that need a person.
        let mut o = ours(Status::Released);
        o.exceptions = vec![SHIPPED_ON_CHANNEL.into(), CHANGED_AFTER_RELEASE.into()];
        o.channel_seen.raised = o.exceptions.clone();
        assert!(lifted(&decide(&o, &unchanged(Status::Paid))).is_empty());
    }

    #[test]
    fn the_channel_forbids_shipping_paid_is_held_allocated_and_released_are_stopped() {
        let mut r = unchanged(Status::Paid);
        r.not_shippable = Some("group not formed".into());
        let d = decide(&ours(Status::Paid), &r);
        assert_eq!(
            d.actions,
            vec![Action::Hold {
                reason: "channel: group not formed".into()
            }]
        );
        for s in [Status::Allocated, Status::Released] {
            assert_eq!(raised(&decide(&ours(s), &r)), vec![STOP_SHIPMENT], "{s}");
        }
        // Allowed again: the channel's stop is lifted, the channel's hold approved.
        let mut stopped = ours(Status::Released);
        stopped.exceptions = vec![STOP_SHIPMENT.into()];
        stopped.channel_seen.raised = vec![STOP_SHIPMENT.into()];
        assert_eq!(
            lifted(&decide(&stopped, &unchanged(Status::Paid))),
            vec![STOP_SHIPMENT]
        );
        let mut held = ours(Status::OnHold);
        held.hold_reason = Some("channel: group not formed".into());
        assert_eq!(
            decide(&held, &unchanged(Status::Paid)).actions,
            vec![Action::LiftChannelHold]
        );
        held.hold_reason = Some("address check".into());
        assert!(decide(&held, &unchanged(Status::Paid)).actions.is_empty());
        // Held by a review rule (or an operator) when the channel forbids shipping: a stop of the
        // channel's, so approving the hold does not ship it; the channel's own hold needs none.
        assert_eq!(raised(&decide(&held, &r)), vec![STOP_SHIPMENT]);
        held.hold_reason = Some("channel: group not formed".into());
        assert!(raised(&decide(&held, &r)).is_empty());
    }

    #[test]
    fn closed_on_the_channel_cancels_before_release_stops_after() {
        for s in [
            Status::PendingPayment,
            Status::Paid,
            Status::OnHold,
            Status::Allocated,
        ] {
            let d = decide(&ours(s), &report(Status::Cancelled, price_cut));
            assert_eq!(
                d.actions,
                vec![
                    Action::Ignore {
                        what: Change::Amounts,
                        why: "the channel closed the order"
                    },
                    Action::Cancel {
                        reason: "closed on the channel".into()
                    }
                ],
                "{s}"
            );
        }
        assert_eq!(
            raised(&decide(
                &ours(Status::Released),
                &unchanged(Status::Cancelled)
            )),
            vec![STOP_SHIPMENT]
        );
        assert_eq!(
            raised(&decide(
                &ours(Status::Delivered),
                &unchanged(Status::Cancelled)
            )),
            vec![AFTER_SALE]
        );
    }

    #[test]
    fn shipped_on_the_channel_stops_our_shipment_and_records_the_tracking() {
        for s in [
            Status::PendingPayment,
            Status::Paid,
            Status::OnHold,
            Status::Allocated,
            Status::Released,
        ] {
            let o = ours(s);
            let mut r = report(Status::Shipped, price_cut);
            r.shipment = Some(ChannelShipment {
                carrier: "shunfeng".into(),
                tracking_no: "SF1001".into(),
            });
            let d = decide(&o, &r);
            assert_eq!(raised(&d), vec![SHIPPED_ON_CHANNEL], "{s}");
            assert_eq!(
                d.has(&Action::Pay {
                    paid_at: Some(at(0))
                }),
                s == Status::PendingPayment
            );
            assert!(ignored(&d).contains(&Change::Amounts));
            let n = applied(&o, &r, &d);
            assert_eq!(n.fulfillment.channel_shipment, r.shipment);
            assert_eq!(n.paid_amount, o.paid_amount);
            let detail = d.actions.iter().find_map(|a| match a {
                Action::Raise { detail, .. } => Some(detail.clone()),
                _ => None,
            });
            assert_eq!(detail.unwrap()["tracking_no"], "SF1001");
            // Reported again (an operator resolved it): not raised a second time.
            let mut again = r.clone();
            again.order.channel_updated_at = Some(at(2));
            assert!(raised(&decide(&n, &again)).is_empty());
        }
    }

    #[test]
    fn a_partly_shipped_order_or_a_channel_tracking_number_counts_as_shipped_on_the_channel() {
        let mut r = unchanged(Status::Paid);
        r.partly_shipped = true;
        assert_eq!(
            raised(&decide(&ours(Status::Paid), &r)),
            vec![SHIPPED_ON_CHANNEL]
        );
        let mut r = unchanged(Status::Paid);
        r.shipment = Some(ChannelShipment {
            carrier: "44".into(),
            tracking_no: "YT1".into(),
        });
        assert_eq!(
            raised(&decide(&ours(Status::Allocated), &r)),
            vec![SHIPPED_ON_CHANNEL]
        );
        // Our own shipment written back shows on the channel: nothing to say.
        assert!(raised(&decide(&ours(Status::Shipped), &r)).is_empty());
    }

    #[test]
    fn a_cancelled_order_ignores_what_the_channel_says() {
        let d = decide(&ours(Status::Cancelled), &report(Status::Paid, new_address));
        assert_eq!(ignored(&d), vec![Change::Receiver]);
        assert!(raised(&d).is_empty());
    }

    #[test]
    fn the_event_names_what_changed() {
        let mut r = with_refund(
            report(Status::Paid, |d| {
                price_cut(d);
                new_address(d);
                d.channel_status = Some("SELLER_CONSIGNED_PART".into());
            }),
            0,
            RefundState::Requested,
        );
        r.partly_shipped = false;
        let d = decide(&ours(Status::Paid), &r);
        assert_eq!(
            d.changed_names(),
            vec!["status", "amounts", "receiver", "refunds"]
        );
    }
}

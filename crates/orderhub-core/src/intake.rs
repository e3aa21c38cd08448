//! Channel intake: an order as a channel reports it, merged into the standard order.
//!
//! One order per (tenant, shop, external id). A new one is created (and paid, held, cancelled as
//! the channel's status says). For a known one, a report older than (or as old as) the stored
//! channel version is ignored; a newer one goes through the domain's decision table
//! ([`orderhub_domain::channel_update`]) and each decided action is applied here with the use
//! cases, all in the caller's transaction: the channel's version with what it changed (amounts,
//! lines with their stock re-reserved, receiver, notes — or, after release, nothing but a stop),
//! then the lifecycle moves (pay, cancel, hold, lift the channel's hold) and the exceptions raised
//! or lifted (DESIGN §1, §3, §10).

use crate::error::CoreError;
use crate::ports::Tx;
use crate::usecases::{self, Actor, Created};
use chrono::{DateTime, FixedOffset, Utc};
use orderhub_domain::channel_update::{
    self, AFTER_SALE, Action, CHANNEL_HOLD, ChannelShipment, Decision, LineRefund, RefundState,
    Report, SHIPPED_ON_CHANNEL, STOP_SHIPMENT,
};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::{OUT_OF_STOCK, OrderDraft};
use orderhub_domain::{Order, Status};
use serde_json::json;

/// What the channel says beyond the order's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelFacts {
    /// The channel's status mapped to the lifecycle.
    pub canonical: Status,
    /// The channel says some packages left and others not (`canonical` is then paid).
    pub partly_shipped: bool,
    /// Each line's refund / after-sale state, in the order of the draft's lines (missing: none).
    pub refunds: Vec<RefundState>,
    /// The channel forbids shipping for now (group not formed, risk review), with its reason.
    pub not_shippable: Option<String>,
    /// When the buyer paid, as the channel says (source offset kept).
    pub paid_at: Option<DateTime<FixedOffset>>,
    /// The channel's own shipment (carrier, tracking number) when it shipped the order itself.
    pub shipment: Option<ChannelShipment>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    Created(Order),
    Updated(Order),
    /// The stored channel version is as new or newer: nothing changed.
    Stale(Order),
}

fn after(status: Status, of: &[Status]) -> bool {
    of.contains(&status)
}

const PAID_OR_LATER: &[Status] = &[
    Status::Paid,
    Status::OnHold,
    Status::Allocated,
    Status::Released,
    Status::Shipped,
    Status::InTransit,
    Status::Delivered,
    Status::Completed,
];
const SHIPPED_OR_LATER: &[Status] = &[
    Status::Shipped,
    Status::InTransit,
    Status::Delivered,
    Status::Completed,
];

impl ChannelFacts {
    /// The channel shipped (some of) the order: its status, a partly-shipped status, or a tracking
    /// number of its own.
    fn shipped(&self) -> bool {
        after(self.canonical, SHIPPED_OR_LATER) || self.partly_shipped || self.shipment.is_some()
    }

    fn refund(&self, i: usize) -> RefundState {
        self.refunds.get(i).copied().unwrap_or_default()
    }
}

/// Merges one channel report into its order, in the caller's transaction.
pub fn ingest(
    tx: &mut dyn Tx,
    actor: &Actor,
    draft: OrderDraft,
    facts: &ChannelFacts,
    now: DateTime<Utc>,
) -> Result<Ingested, CoreError> {
    let tenant = actor.principal.tenant_id.clone();
    let existing = tx.order_by_external(&tenant, &draft.shop_id, &draft.external_order_id)?;
    let Some(old) = existing else {
        return create(tx, actor, draft, facts, now).map(Ingested::Created);
    };
    if channel_update::is_stale(&old, draft.channel_updated_at) {
        return Ok(Ingested::Stale(old));
    }
    // Each reported line's refund state, by the channel's line id: `facts.refunds` follows the
    // draft's lines, and when the draft's content is refused the order keeps its own lines.
    let by_line_id: std::collections::HashMap<String, RefundState> = draft
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((l.external_line_id.clone()?, facts.refund(i))))
        .collect();
    let draft_lines = draft.lines.len();
    let (reported, refused) = channel_version(&old, draft, now);
    let refunds = reported
        .lines
        .iter()
        .enumerate()
        .map(
            |(i, l)| match l.external_line_id.as_ref().and_then(|x| by_line_id.get(x)) {
                Some(s) => *s,
                None if refused.is_none() || draft_lines == reported.lines.len() => facts.refund(i),
                // Not matched to a reported line: what the channel said of it last, so a refused
                // report neither raises nor lifts a stop on its account.
                None => old
                    .channel_seen
                    .refunds
                    .iter()
                    .find(|r| r.line_id == l.line_id)
                    .map(|r| r.state)
                    .unwrap_or_default(),
            },
        )
        .collect();
    let report = Report {
        refunds,
        order: reported,
        canonical: facts.canonical,
        partly_shipped: facts.partly_shipped,
        not_shippable: facts.not_shippable.clone(),
        paid_at: facts.paid_at,
        shipment: facts.shipment.clone(),
    };
    let decision = channel_update::decide(&old, &report);
    let refunds_before = old.channel_seen.refunds.clone();
    let mut o = record_report(tx, actor, &old, &report, &decision, refused, now)?;
    let id = o.id;
    let moved = |tx: &mut dyn Tx, cmd: Command| usecases::transition(tx, actor, id, &cmd, now);
    for a in &decision.actions {
        match a {
            Action::Pay { paid_at } => {
                o = moved(
                    tx,
                    Command::Pay {
                        paid_at: *paid_at,
                        amount: None,
                    },
                )?
            }
            Action::Cancel { reason } => {
                o = moved(
                    tx,
                    Command::Cancel {
                        reason: reason.clone(),
                    },
                )?
            }
            Action::Hold { reason } => o = channel_forbids(tx, actor, o, reason, now)?,
            Action::LiftChannelHold => o = moved(tx, Command::Approve)?,
            Action::Raise { exception, detail } => {
                o = usecases::raise_by_channel(tx, actor, id, exception, detail.clone(), now)?
                    .unwrap_or(o)
            }
            Action::Lift { exception, detail } => {
                o = usecases::lift_by_channel(tx, actor, id, exception, detail.clone(), now)?
                    .unwrap_or(o)
            }
            // Written with the channel's version (`record_report`), or only said in its audit.
            Action::ApplyAmounts
            | Action::ApplyLines { .. }
            | Action::ApplyReceiver
            | Action::ApplyNotes
            | Action::KeepUnapplied
            | Action::ForgetUnapplied
            | Action::RecordRefunds
            | Action::RecordShipment
            | Action::Ignore { .. } => {}
        }
    }
    let o = crate::after_sales::from_channel(tx, actor, o, &refunds_before, now)?;
    Ok(Ingested::Updated(o))
}

/// The channel forbids shipping a paid order (`reason`: the channel hold's reason): it is held,
/// and the hold lifts when the channel allows shipping again. When a review rule held it first
/// (at payment, in this same report), the channel's word is a `stop_shipment` of the channel's
/// instead — approving the rule's hold must not ship it —, lifted the same way.
fn channel_forbids(
    tx: &mut dyn Tx,
    actor: &Actor,
    o: Order,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    if o.status == Status::OnHold {
        let why = reason.strip_prefix(CHANNEL_HOLD).unwrap_or(reason);
        let detail = json!({"reason": format!("the channel forbids shipping: {why}")});
        return Ok(
            usecases::raise_by_channel(tx, actor, o.id, STOP_SHIPMENT, detail, now)?.unwrap_or(o),
        );
    }
    let hold = Command::Hold {
        reason: reason.to_owned(),
    };
    usecases::transition(tx, actor, o.id, &hold, now)
}

/// The channel's version as an order, its amounts and lines checked as a new order's are. A
/// receiver without name or phone (channels blank them once an order is done) is not a new
/// receiver: ours stands in. Content the domain refuses (amounts that do not add up …) does not
/// hold up the rest of the report — a close must still cancel —: our own content stands in, and
/// the refusal (field, rule) is written in the update's audit entry.
fn channel_version(
    old: &Order,
    mut draft: OrderDraft,
    now: DateTime<Utc>,
) -> (Order, Option<orderhub_domain::ValidationError>) {
    if draft.receiver.name.is_empty() || draft.receiver.phone.is_empty() {
        draft.receiver = old.receiver.clone();
    }
    let (status, updated_at) = (draft.channel_status.clone(), draft.channel_updated_at);
    let notes = (draft.buyer_message.clone(), draft.seller_memo.clone());
    match Order::create(draft, old.id, old.tenant_id.clone(), now) {
        Ok(o) => (o, None),
        Err(v) => {
            let mut o = old.clone();
            o.channel_status = status;
            o.channel_updated_at = updated_at;
            (o.buyer_message, o.seller_memo) = notes;
            (o, Some(v))
        }
    }
}

/// The channel's new version: one order version holding the channel status, the content the
/// decision applies (stock re-reserved in the same transaction when the goods changed) and what is
/// remembered of the report, with its audit entry (what was applied, what ignored and why) and its
/// `order.channel_updated` event naming what changed. Going on backorder (or off it) follows as an
/// exception of its own, one version later, as it does after a payment. Returns the order as stored.
fn record_report(
    tx: &mut dyn Tx,
    actor: &Actor,
    old: &Order,
    report: &Report,
    d: &Decision,
    refused: Option<orderhub_domain::ValidationError>,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let mut next = channel_update::applied(old, report, d);
    next.version = old.version + 1;
    next.updated_at = now;
    crate::combine::on_order_changed(tx, actor, old, &mut next, now)?;
    let stock = if d.rereserve() {
        crate::inventory::rereserve(tx, actor, &mut next, now)?
    } else {
        serde_json::Value::Null
    };
    let stock_flag = usecases::stock_flag_change(old, &next);
    if let Some(raised) = stock_flag {
        usecases::set_flag(&mut next, OUT_OF_STOCK, !raised);
    }
    tx.order_update(&next)?;
    let applied: Vec<&str> = d
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ApplyAmounts => Some("amounts"),
            Action::ApplyLines { .. } => Some("lines"),
            Action::ApplyReceiver => Some("receiver"),
            Action::ApplyNotes => Some("notes"),
            _ => None,
        })
        .collect();
    let ignored: Vec<serde_json::Value> = d
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Ignore { what, why } => Some(json!({"what": what.as_str(), "why": why})),
            _ => None,
        })
        .collect();
    let mut detail = json!({
        "channel_status": next.channel_status,
        "changed": d.changed_names(),
        "applied": applied,
        "ignored": ignored,
    });
    if d.has(&Action::ApplyAmounts)
        || d.actions
            .iter()
            .any(|a| matches!(a, Action::ApplyLines { .. }))
    {
        detail["amounts_and_lines"] = channel_update::content_detail(old, &report.order);
    }
    if !stock.is_null() {
        detail["stock"] = stock;
    }
    if let Some(v) = refused {
        detail["refused"] = json!({
            "field": v.field,
            "rule": v.rule,
            "message": v.message,
            "why": "the channel's amounts and lines were refused; the rest of the report was applied",
        });
    }
    if d.has(&Action::KeepUnapplied) {
        detail["not_applied"] =
            json!("released to the warehouse: the channel's version is kept beside the order");
    }
    let mut extra = serde_json::Map::new();
    extra.insert("changed".into(), json!(d.changed_names()));
    extra.insert("channel_status".into(), json!(next.channel_status));
    usecases::record_with(
        tx,
        actor,
        Some(old),
        &next,
        (
            "channel_update",
            orderhub_domain::event_types::ORDER_CHANNEL_UPDATED,
        ),
        detail,
        extra,
    )?;
    match stock_flag {
        Some(raised) => usecases::set_exception(
            tx,
            actor,
            next,
            OUT_OF_STOCK,
            raised,
            usecases::stock_detail(raised, "channel_update"),
            now,
        ),
        None => Ok(next),
    }
}

/// A (shop, external id) seen for the first time: created, then moved where the channel's status
/// says; what the channel says beyond the status (each line's refund state, its own shipment) is
/// remembered from the start, so the first update compares with it.
fn create(
    tx: &mut dyn Tx,
    actor: &Actor,
    draft: OrderDraft,
    facts: &ChannelFacts,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let paid_at = facts.paid_at;
    let mut order = usecases::new_order(actor, draft, now)?;
    order.channel_seen.refunds = order
        .lines
        .iter()
        .enumerate()
        .filter(|(i, _)| facts.refund(*i) != RefundState::None)
        .map(|(i, l)| LineRefund {
            line_id: l.line_id,
            state: facts.refund(i),
        })
        .collect();
    if facts.shipped() {
        order.channel_seen.shipped = true;
        order.fulfillment.channel_shipment = facts.shipment.clone();
    }
    let mut o = match usecases::insert_order(tx, actor, &order)? {
        Created::New(o) | Created::Existing(o) => o,
    };
    let id = o.id;
    if after(facts.canonical, PAID_OR_LATER)
        || (facts.canonical == Status::Cancelled && paid_at.is_some())
    {
        o = usecases::transition(
            tx,
            actor,
            id,
            &Command::Pay {
                paid_at,
                amount: None,
            },
            now,
        )?;
    }
    if facts.canonical == Status::Cancelled {
        return usecases::transition(
            tx,
            actor,
            id,
            &Command::Cancel {
                reason: "closed on the channel".into(),
            },
            now,
        );
    }
    if let Some(why) = &facts.not_shippable
        && matches!(o.status, Status::Paid | Status::OnHold)
        && !facts.shipped()
    {
        let reason = format!(
            "{CHANNEL_HOLD}{}",
            why.chars()
                .take(channel_update::HOLD_REASON_CHARS_MAX)
                .collect::<String>()
        );
        o = channel_forbids(tx, actor, o, &reason, now)?;
    }
    if facts.shipped() {
        // Shipped on the channel before orderhub knew the order (its own backend, an ERP).
        let s = facts.shipment.as_ref();
        let detail = json!({
            "reason": if facts.partly_shipped { "partly shipped on the channel" } else { "shipped on the channel" },
            "channel_status": o.channel_status,
            "status": o.status.as_str(),
            "carrier": s.map(|s| &s.carrier),
            "tracking_no": s.map(|s| &s.tracking_no),
        });
        o = usecases::raise_by_channel(tx, actor, id, SHIPPED_ON_CHANNEL, detail, now)?
            .unwrap_or(o);
    }
    let refunded: Vec<serde_json::Value> = o
        .lines
        .iter()
        .enumerate()
        .filter(|(i, _)| facts.refund(*i).is_open())
        .map(|(i, l)| {
            json!({
                "line_id": l.line_id,
                "external_line_id": l.external_line_id,
                "sku": l.sku,
                "refund": facts.refund(i).as_str(),
            })
        })
        .collect();
    if o.status != Status::PendingPayment && !refunded.is_empty() {
        let detail =
            json!({"reason": "a refund was asked for or made on the channel", "lines": refunded});
        o = usecases::raise_by_channel(tx, actor, id, AFTER_SALE, detail, now)?.unwrap_or(o);
    }
    crate::after_sales::from_channel(tx, actor, o, &[], now)
}

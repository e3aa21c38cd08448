//! Channel intake: an order as a channel reports it, merged into the standard order.
//!
//! One order per (tenant, shop, external id); a report older than (or as old as) the stored channel
//! version is ignored; a newer one moves the order where the lifecycle allows it, and where it
//! does not — the channel closes or refunds an order that is already released or shipped — raises
//! an exception instead of a silent change (DESIGN §1, §3).

use crate::error::CoreError;
use crate::ports::Tx;
use crate::usecases::{self, Actor, Created};
use chrono::{DateTime, Utc};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::OrderDraft;
use orderhub_domain::{Order, Status};
use serde_json::json;

/// What the channel says beyond the order's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelFacts {
    /// The channel's status mapped to the lifecycle.
    pub canonical: Status,
    /// A line has a refund requested or done.
    pub after_sale: bool,
    /// The channel forbids shipping for now (group not formed, risk review), with its reason.
    pub not_shippable: Option<String>,
    /// When the buyer paid, as the channel says (source offset kept).
    pub paid_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    Created(Order),
    Updated(Order),
    /// The stored channel version is as new or newer: nothing changed.
    Stale(Order),
}

/// Hold reasons intake sets start with this, so it lifts only its own holds.
const CHANNEL_HOLD: &str = "channel: ";

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
        let paid_at = facts.paid_at;
        let order = match usecases::create_order(tx, actor, draft, now)? {
            Created::New(o) | Created::Existing(o) => o,
        };
        let id = order.id;
        let mut o = order;
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
            o = usecases::transition(
                tx,
                actor,
                id,
                &Command::Cancel {
                    reason: "closed on the channel".into(),
                },
                now,
            )?;
        } else if let Some(why) = &facts.not_shippable
            && o.status == Status::Paid
        {
            o = usecases::transition(
                tx,
                actor,
                id,
                &Command::Hold {
                    reason: format!("{CHANNEL_HOLD}{why}"),
                },
                now,
            )?;
        }
        if after(facts.canonical, SHIPPED_OR_LATER) {
            // Shipped on the channel before orderhub knew the order (its own backend, an ERP).
            o = usecases::raise_exception(
                tx,
                actor,
                id,
                "shipped_on_channel",
                json!({"channel_status": o.channel_status}),
                now,
            )?
            .unwrap_or(o);
        }
        return Ok(Ingested::Created(o));
    };
    if let (Some(new), Some(stored)) = (draft.channel_updated_at, old.channel_updated_at)
        && new <= stored
    {
        return Ok(Ingested::Stale(old));
    }
    // Record the channel's new version first, so a later report compares against it.
    let mut next = old.clone();
    next.channel_status = draft.channel_status.clone();
    next.channel_updated_at = draft.channel_updated_at;
    next.version += 1;
    next.updated_at = now;
    tx.order_update(&next)?;
    usecases::record(
        tx,
        actor,
        Some(&old),
        &next,
        "channel_update",
        orderhub_domain::event_types::ORDER_CHANNEL_UPDATED,
        json!({"channel_status": next.channel_status}),
    )?;
    let id = next.id;
    let mut o = next;
    let raise = |tx: &mut dyn Tx, o: Order, code: &str| -> Result<Order, CoreError> {
        let detail = json!({"channel_status": o.channel_status, "status": o.status.as_str()});
        Ok(usecases::raise_exception(tx, actor, id, code, detail, now)?.unwrap_or(o))
    };
    match facts.canonical {
        Status::Cancelled => match o.status {
            Status::PendingPayment | Status::Paid | Status::OnHold | Status::Allocated => {
                o = usecases::transition(
                    tx,
                    actor,
                    id,
                    &Command::Cancel {
                        reason: "closed on the channel".into(),
                    },
                    now,
                )?;
            }
            // Released to the warehouse: it may still be stopped there.
            Status::Released => o = raise(tx, o, "stop_shipment")?,
            s if after(s, SHIPPED_OR_LATER) => o = raise(tx, o, "after_sale")?,
            _ => {}
        },
        c if after(c, PAID_OR_LATER) && o.status == Status::PendingPayment => {
            let paid_at = facts.paid_at;
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
        _ => {}
    }
    if facts.after_sale && facts.canonical != Status::Cancelled {
        if o.status == Status::Released {
            o = raise(tx, o, "stop_shipment")?;
        } else if after(o.status, SHIPPED_OR_LATER) {
            o = raise(tx, o, "after_sale")?;
        }
    }
    match (&facts.not_shippable, o.status) {
        (Some(why), Status::Paid) => {
            o = usecases::transition(
                tx,
                actor,
                id,
                &Command::Hold {
                    reason: format!("{CHANNEL_HOLD}{why}"),
                },
                now,
            )?;
        }
        (None, Status::OnHold)
            if o.hold_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(CHANNEL_HOLD)) =>
        {
            o = usecases::transition(tx, actor, id, &Command::Approve, now)?;
        }
        _ => {}
    }
    Ok(Ingested::Updated(o))
}

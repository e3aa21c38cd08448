//! Delivered orders complete by themselves once their channel's confirmation window has passed
//! (issue 26: nothing moved delivered orders on, so every watcher that reads delivered orders —
//! the write-back watchdog, the tracking poll — read all of history, growing without end).
//!
//! The window counts from the delivery (`fulfillment.delivered_at`; the order's last change for
//! orders delivered before it was kept), per channel ([`Completion::window`]): the buyer's time to
//! confirm receipt or complain on the platform. An order with an open exception (a failed
//! write-back, a stop) or an after-sales case still open (a return on its way, a refund to pay) is
//! left as it is: completing it would hide it. At most [`PER_PASS`] orders a pass, oldest first. The move
//! is the ordinary `complete` transition by the system actor — one version, an audit entry and
//! `order.completed` in one transaction — and a person or a channel completing it first is fine
//! (the move then finds nothing to do).

use crate::{Fulfillment, Step};
use orderhub_domain::after_sales::CaseState;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Order, OrderId, Status, TenantId};
use orderhub_store::CaseFilter;
use std::collections::HashMap;
use std::time::Duration;

/// The default window: a week after delivery.
pub const DEFAULT_COMPLETE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// When delivered orders complete by themselves.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The window of every channel not named in `by_channel`; `None`: never.
    pub after: Option<Duration>,
    /// Windows by channel code (`taobao`, `jd`, …, `api` for orders made through the API);
    /// `None`: that channel's orders never complete by themselves.
    pub by_channel: HashMap<String, Option<Duration>>,
    /// How often a tenant's delivered orders are looked at.
    pub every: Duration,
}

impl Default for Completion {
    fn default() -> Self {
        Completion {
            after: Some(DEFAULT_COMPLETE_AFTER),
            by_channel: HashMap::new(),
            every: Duration::from_secs(600),
        }
    }
}

impl Completion {
    /// The window of `channel`'s orders.
    pub fn window(&self, channel: &str) -> Option<Duration> {
        match self.by_channel.get(channel) {
            Some(w) => *w,
            None => self.after,
        }
    }
}

/// The most orders one pass completes (oldest delivery first); the rest wait for the next pass,
/// so a first pass over years of delivered orders stays short inside the watchdog's lease.
pub const PER_PASS: usize = 200;

/// Whether an after-sales case in `state` still waits on someone (a return on its way, a refund
/// to pay): its order does not complete under it.
fn case_open(state: CaseState) -> bool {
    !matches!(
        state,
        CaseState::Refused | CaseState::Closed | CaseState::Refunded | CaseState::Exchanged
    )
}

/// Whether `order` has an after-sales case still open (`None`: the store could not say).
async fn has_open_case(f: &Fulfillment, tenant: &TenantId, order: OrderId) -> Option<bool> {
    let filter = CaseFilter {
        tenant: tenant.clone(),
        state: None,
        order_id: Some(order),
        shops: None,
        after: None,
        limit: orderhub_domain::after_sales::CASES_PER_ORDER_MAX as u32 + 1,
    };
    let cases = f.store.read(move |r| r.after_sales(&filter)).await.ok()?;
    Some(cases.iter().any(|c| case_open(c.state)))
}

/// Completes `tenant`'s delivered orders whose window has passed (at the fulfillment's clock),
/// at most [`PER_PASS`]; how many it completed.
pub async fn complete_delivered(f: &Fulfillment, tenant: &TenantId) -> usize {
    let mut due: Vec<Order> = crate::watchdog::orders_in(f, tenant, Status::Delivered)
        .await
        .into_iter()
        .filter(|o| {
            o.exceptions.is_empty()
                && f.cfg
                    .completion
                    .window(o.channel.as_str())
                    .is_some_and(|w| crate::watchdog::older_than(f, delivered_at(o), w))
        })
        .collect();
    due.sort_by_key(delivered_at);
    let mut done = 0;
    for o in due.iter().take(PER_PASS) {
        // An open case (a return on its way, a refund to pay) keeps the order open; so does a
        // store that cannot say.
        if has_open_case(f, tenant, o.id).await != Some(false) {
            continue;
        }
        match f.move_order(tenant, o, Command::Complete, None).await {
            Ok(Step::Moved(_)) => done += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(order_id = %o.id, error = %e.message, "A delivered order past its window could not be completed.");
            }
        }
    }
    if done > 0 {
        metrics::counter!("orderhub_orders_auto_completed_total").increment(done as u64);
        tracing::info!(tenant = %tenant, completed = done, "Delivered orders past their confirmation window completed.");
    }
    done
}

fn delivered_at(o: &Order) -> chrono::DateTime<chrono::Utc> {
    o.fulfillment.delivered_at.unwrap_or(o.updated_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_named_has_its_own_window_or_none() {
        let day = Duration::from_secs(86_400);
        let c = Completion {
            after: Some(7 * day),
            by_channel: HashMap::from([
                ("taobao".to_owned(), Some(10 * day)),
                ("b2b".to_owned(), None),
            ]),
            every: day,
        };
        assert_eq!(c.window("taobao"), Some(10 * day));
        assert_eq!(c.window("b2b"), None, "never by itself");
        assert_eq!(c.window("jd"), Some(7 * day));
        assert_eq!(
            Completion::default().window("api"),
            Some(DEFAULT_COMPLETE_AFTER)
        );
    }
}

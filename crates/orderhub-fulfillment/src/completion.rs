//! Delivered orders complete by themselves once their channel's confirmation window has passed
//! (issue 26: nothing moved delivered orders on, so every watcher that reads delivered orders —
//! the write-back watchdog, the tracking poll — read all of history, growing without end).
//!
//! The window counts from the delivery (`fulfillment.delivered_at`; the order's last change for
//! orders delivered before it was kept), per channel ([`Completion::window`]): the buyer's time to
//! confirm receipt or complain on the platform. An order with an open exception (an after-sales
//! case, a failed write-back, a stop) is left for a person: completing it would hide it. The move
//! is the ordinary `complete` transition by the system actor — one version, an audit entry and
//! `order.completed` in one transaction — and a person or a channel completing it first is fine
//! (the move then finds nothing to do).

use crate::{Fulfillment, Step};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Status, TenantId};
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

/// Completes `tenant`'s delivered orders whose window has passed (at the fulfillment's clock);
/// how many it completed.
pub async fn complete_delivered(f: &Fulfillment, tenant: &TenantId) -> usize {
    let mut done = 0;
    for o in crate::watchdog::orders_in(f, tenant, Status::Delivered).await {
        let Some(window) = f.cfg.completion.window(o.channel.as_str()) else {
            continue;
        };
        if !o.exceptions.is_empty() {
            continue;
        }
        let since = o.fulfillment.delivered_at.unwrap_or(o.updated_at);
        if !crate::watchdog::older_than(f, since, window) {
            continue;
        }
        match f.move_order(tenant, &o, Command::Complete, None).await {
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

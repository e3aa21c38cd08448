//! The escalation worker (issue 21): every [`EVERY`], the process holding the lease
//! [`LEASE`] runs `orderhub_core::workflow::escalate_due` — open exceptions past the due time the
//! tenant's SLA gave them are marked escalated once, each with an audit entry on its order and an
//! `exception.escalated` event — and counts them in `orderhub_exceptions_escalated_total{kind}`.
//! Time comes from a [`Clock`], so a test moves a `ManualClock` instead of waiting.

use orderhub_core::CoreError;
use orderhub_core::ports::Clock;
use orderhub_core::workflow::{self, Escalated};
use orderhub_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// One lease for every tenant: a pass reads due items through one index.
pub const LEASE: &str = "escalation";
/// How often a pass runs.
pub const EVERY: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(90);
/// Items escalated per transaction.
const BATCH: u32 = 200;

/// One pass, if this holder takes (or holds) the lease: what it escalated. Another holder's
/// lease: nothing.
pub async fn pass(
    store: &Store,
    holder: &str,
    clock: &dyn Clock,
) -> Result<Vec<Escalated>, CoreError> {
    if orderhub_events::lease::acquire(store, LEASE, holder, TTL)
        .await?
        .is_none()
    {
        return Ok(Vec::new());
    }
    let mut all = Vec::new();
    loop {
        let now = clock.now();
        let done = store
            .write(0, move |tx| workflow::escalate_due(tx, now, BATCH))
            .await?;
        for e in &done {
            metrics::counter!("orderhub_exceptions_escalated_total", "kind" => e.kind.clone())
                .increment(1);
        }
        let n = done.len();
        all.extend(done);
        if n < BATCH as usize {
            return Ok(all);
        }
    }
}

/// Runs a pass every [`EVERY`] until `stop`; hands the lease back when it stops.
pub fn spawn(
    store: Store,
    clock: Arc<dyn Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let holder = orderhub_events::lease::holder_id();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tick.tick() => {}
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        break;
                    }
                    continue;
                }
            }
            match pass(&store, &holder, clock.as_ref()).await {
                Ok(done) if !done.is_empty() => {
                    tracing::info!(escalated = done.len(), "Escalated overdue exceptions.");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "The escalation pass failed; it runs again."),
            }
        }
        // Hand the lease back so another process takes over at once.
        let name = LEASE.to_owned();
        let h = holder.clone();
        let _ = store
            .write_alone(0, move |tx| {
                if let Some(l) = tx.lease_acquire(&name, &h, chrono::Utc::now(), TTL)? {
                    tx.lease_release(&l.name, &l.holder, l.fence)?;
                }
                Ok(())
            })
            .await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use orderhub_core::auth::Role;
    use orderhub_core::ports::ManualClock;
    use orderhub_core::usecases::{Actor, Created, create_order, raise_exception};
    use orderhub_domain::ids::Channel;
    use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, Receiver};
    use orderhub_domain::{
        Currency, ExternalOrderId, Money, OrderId, OrderKind, Personal, ShopId, Sku, TenantId,
    };

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn draft() -> OrderDraft {
        let m = |s: &str| Money::parse("m", s, Currency::CNY).unwrap();
        OrderDraft {
            shop_id: ShopId::parse("s1").unwrap(),
            channel: Channel::parse("taobao").unwrap(),
            external_order_id: ExternalOrderId::parse("E1").unwrap(),
            channel_status: None,
            channel_updated_at: None,
            buyer: Buyer {
                id: None,
                nick: None,
            },
            receiver: Receiver {
                name: Personal::new("王小明"),
                phone: Personal::new("13812345678"),
                province: "浙江省".into(),
                city: "杭州市".into(),
                district: None,
                town: None,
                detail: Personal::new("文三路100号"),
                region_code: None,
            },
            lines: vec![LineDraft {
                external_line_id: None,
                sku: Sku::parse("A").unwrap(),
                title: "a".into(),
                quantity: 1,
                unit_price: m("1.00"),
                discount: Money::ZERO,
                paid_amount: None,
                is_kit: false,
            }],
            currency: Currency::CNY,
            goods_total: None,
            shipping_fee: m("0"),
            discount: None,
            paid_amount: None,
            kind: OrderKind::Normal,
            is_test: false,
            is_employee: false,
            channel_created_at: None,
            promised_ship_by: None,
            invoice_profile_id: None,
            tags: vec![],
            buyer_message: None,
            seller_memo: None,
        }
    }

    async fn seeded(store: &Store) -> OrderId {
        let t = TenantId::parse("esc").unwrap();
        let t2 = t.clone();
        store
            .write(0, move |tx| {
                tx.tenant_insert(&t2, "Esc", &serde_json::json!({}))?;
                Ok(())
            })
            .await
            .unwrap();
        let mut a = Actor::system(&t, "test");
        a.principal.role = Role::Admin;
        let draft = draft();
        let a2 = a.clone();
        let o = match store
            .write(0, move |tx| create_order(tx, &a2, draft.clone(), t0()))
            .await
            .unwrap()
        {
            Created::New(o) | Created::Existing(o) => o,
        };
        let id = o.id;
        store
            .write(0, move |tx| {
                raise_exception(tx, &a, id, "no_waybill", serde_json::json!({}), t0())
            })
            .await
            .unwrap();
        id
    }

    /// Two processes' passes at once on the manual clock: one holds the lease and escalates the
    /// item once; before its due time nothing; after, nothing again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_escalates_an_overdue_exception_once_under_its_lease() {
        for backend in ["sqlite", "postgres"] {
            let Some(ts) = orderhub_store::testing::open(backend) else {
                continue;
            };
            seeded(&ts.store).await;
            let clock = ManualClock::new(t0());
            clock.advance(chrono::Duration::minutes(119));
            assert!(pass(&ts.store, "a", &clock).await.unwrap().is_empty());
            clock.advance(chrono::Duration::minutes(1));
            let (x, y) = tokio::join!(pass(&ts.store, "a", &clock), pass(&ts.store, "b", &clock));
            let (x, y) = (x.unwrap(), y.unwrap());
            assert!(y.is_empty(), "{backend}: b does not hold the lease");
            assert_eq!(x.len(), 1, "{backend}");
            assert_eq!(x[0].kind, "no_waybill");
            clock.advance(chrono::Duration::hours(1));
            assert!(pass(&ts.store, "a", &clock).await.unwrap().is_empty());
        }
    }
}

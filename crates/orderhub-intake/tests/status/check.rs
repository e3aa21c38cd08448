//! Order status reconciliation against the Taobao simulator on both backends (issue 24): a close
//! the channel made without a push reaching us is applied by the check; an order we shipped that
//! the channel still waits for (the write-back did not land) becomes a `status_mismatch` with
//! both views, counted once in the month's differences, and lifted by the check after the
//! channel shows the shipment; an order checked lately is not read again before its interval.

use super::stock_push::{actor, far, setup, wh};
use chrono::{Duration, Utc};
use orderhub_channels::sim::SimHandle;
use orderhub_channels::{CanonicalStatus, ChannelKind, ChannelOrder};
use orderhub_core::intake::Ingested;
use orderhub_core::usecases;
use orderhub_domain::ids::CarrierCode;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::status_check::STATUS_MISMATCH;
use orderhub_domain::{Order, OrderId, ShopId, Status, TenantId};
use orderhub_intake::status_check::{StatusCheckConfig, StatusCheckReport, StatusChecker};
use orderhub_store::Store;

/// A paid order of TEA on the channel, merged here as its push would be.
async fn paid_order(
    store: &Store,
    sim: &SimHandle,
    t: &TenantId,
    shop: &ShopId,
) -> (ChannelOrder, Order) {
    let c = sim
        .new_order(|o| {
            o.canonical = CanonicalStatus::Paid;
            o.paid_at = Some(o.created_at);
            for l in &mut o.lines {
                l.sku = "TEA".into();
            }
        })
        .expect("nothing offered");
    let o = match orderhub_intake::process::merge(store, t, shop, &c)
        .await
        .unwrap()
    {
        Ingested::Created(o) => o,
        other => panic!("{other:?}"),
    };
    assert_eq!(o.status, Status::Paid);
    (c, o)
}

async fn order(store: &Store, t: &TenantId, id: OrderId) -> Order {
    let t = t.clone();
    store
        .read(move |r| r.order_get(&t, id))
        .await
        .unwrap()
        .unwrap()
}

async fn ship_here(store: &Store, t: &TenantId, id: OrderId) {
    let a = actor(t);
    store
        .write(0, move |tx| {
            let now = Utc::now();
            for cmd in [
                Command::Allocate { warehouse_id: wh() },
                Command::Release,
                Command::Ship {
                    carrier: CarrierCode::parse("zto").unwrap(),
                    tracking_no: "ZT7700001".into(),
                    logistics_no: "L1".into(),
                },
            ] {
                usecases::transition(tx, &a, id, &cmd, now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

async fn round(c: &mut StatusChecker, t: &TenantId, hours_on: i64) -> StatusCheckReport {
    c.check_due(t, Utc::now() + Duration::hours(hours_on), far())
        .await
        .unwrap()
}

async fn a_lost_close_is_applied_and_a_missing_write_back_is_raised_then_lifted(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = &env.store;
    let (sim, row) = setup(store, ChannelKind::Taobao, 1_000).await;
    let t = row.tenant_id.clone();
    let shop = ShopId::parse(&row.shop_id).unwrap();
    let (closed_c, closed) = paid_order(store, &sim, &t, &shop).await;
    let (shipped_c, shipped) = paid_order(store, &sim, &t, &shop).await;
    // The buyer's close on the channel: its push never reached us.
    sim.set_status(&closed_c.external_order_id, CanonicalStatus::Cancelled)
        .unwrap();
    // We shipped; the write-back to the channel did not run.
    ship_here(store, &t, shipped.id).await;
    let mut checker = StatusChecker::new(
        store.clone(),
        StatusCheckConfig::default(),
        orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
    );
    // Not yet settled (changed just now): nothing is read.
    assert_eq!(round(&mut checker, &t, 0).await.checked, 0);

    let r = round(&mut checker, &t, 1).await;
    assert_eq!(
        (r.checked, r.repaired, r.raised, r.lifted, r.failed),
        (2, 1, 1, 0, 0),
        "{r:?}"
    );
    assert_eq!(order(store, &t, closed.id).await.status, Status::Cancelled);
    let o = order(store, &t, shipped.id).await;
    assert!(o.has_exception(STATUS_MISMATCH), "{:?}", o.exceptions);
    let (t2, id) = (t.clone(), shipped.id);
    let check = store
        .read(move |r| r.status_check_of(&t2, id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check.1, "not_shipped_on_channel");
    let t2 = t.clone();
    let month = store
        .read(move |r| {
            r.status_difference_counts(
                &t2,
                Utc::now() - Duration::days(31),
                Utc::now() + Duration::days(31),
                None,
            )
        })
        .await
        .unwrap();
    assert_eq!(month.len(), 1, "{month:?}");
    let m = &month[0];
    assert_eq!(
        (
            m.channel.as_str(),
            m.shop_id.as_str(),
            m.carrier.as_str(),
            m.kind.as_str(),
            m.count
        ),
        (
            "taobao",
            row.shop_id.as_str(),
            "zto",
            "not_shipped_on_channel",
            1
        )
    );
    // A shop scope that is not this shop sees none.
    let t2 = t.clone();
    let other = store
        .read(move |r| {
            r.status_difference_counts(
                &t2,
                Utc::now() - Duration::days(31),
                Utc::now() + Duration::days(31),
                Some(&["another-shop".to_owned()]),
            )
        })
        .await
        .unwrap();
    assert!(other.is_empty(), "{other:?}");

    // Checked an hour ahead: not again before the interval (6 h).
    assert_eq!(round(&mut checker, &t, 2).await.checked, 0);

    // The shipment reaches the channel: the next check lifts the exception, counts nothing new.
    sim.set_status(&shipped_c.external_order_id, CanonicalStatus::Shipped)
        .unwrap();
    let r = round(&mut checker, &t, 8).await;
    assert_eq!(
        (r.checked, r.raised, r.lifted),
        (1, 0, 1),
        "only the open order is read again: {r:?}"
    );
    let o = order(store, &t, shipped.id).await;
    assert!(!o.has_exception(STATUS_MISMATCH), "{:?}", o.exceptions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_close_is_applied_and_a_missing_write_back_is_raised_then_lifted_sqlite() {
    a_lost_close_is_applied_and_a_missing_write_back_is_raised_then_lifted("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_close_is_applied_and_a_missing_write_back_is_raised_then_lifted_postgres() {
    a_lost_close_is_applied_and_a_missing_write_back_is_raised_then_lifted("postgres").await;
}

//! Waves (issue 28) on both backends: creations racing on different writers never share an order
//! (the unique index on active membership), each change writes its audit entries and event in
//! its transaction, and the steps refuse a wave in the wrong state.

use crate::backend::*;
use chrono::Utc;
use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::ports::WarehouseRecord;
use orderhub_core::usecases::{Created, create_order, transition};
use orderhub_core::waves::{self, WaveRecord, WaveStatus};
use orderhub_domain::OrderId;
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::wave::WavePolicy;
use std::collections::HashSet;

conformance!(
    creations_racing_on_different_writers_never_share_an_order,
    each_wave_change_writes_its_audit_entries_and_event_and_refuses_a_wrong_state,
);

fn wh(s: &str) -> WarehouseId {
    WarehouseId::parse(s).unwrap()
}

async fn setup(ts: &TestStore) {
    seed_tenant(&ts.store, "acme").await;
    ts.store
        .write(0, |tx| {
            for w in ["WH-A", "WH-B"] {
                let rec = WarehouseRecord {
                    warehouse_id: wh(w),
                    name: w.into(),
                    priority: 0,
                    regions: vec![],
                    sender: None,
                    parcel_max_kg: None,
                };
                tx.warehouse_put(&tenant("acme"), &rec, Utc::now())?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// A released order of `warehouse` (the draft's SKUs are outside the master: nothing reserved).
async fn released(ts: &TestStore, ext: &str, warehouse: &str) -> OrderId {
    let a = actor("acme", Role::Admin);
    let d = draft("tmall-1", ext);
    let w = wh(warehouse);
    ts.store
        .write(0, move |tx| {
            let Created::New(o) = create_order(tx, &a, d.clone(), Utc::now())? else {
                panic!("a new order");
            };
            let now = Utc::now();
            for c in [
                Command::Pay {
                    paid_at: None,
                    amount: None,
                },
                Command::Allocate {
                    warehouse_id: w.clone(),
                },
                Command::Release,
            ] {
                transition(tx, &a, o.id, &c, now)?;
            }
            Ok(o.id)
        })
        .await
        .unwrap()
}

async fn create(ts: &TestStore, partition: u64, max_orders: u32) -> Vec<WaveRecord> {
    let a = actor("acme", Role::Warehouse);
    let p = WavePolicy {
        max_orders,
        ..WavePolicy::default()
    };
    ts.store
        .write(partition, move |tx| {
            waves::create_waves(tx, &a, &wh("WH-A"), &p, 20_000, Utc::now())
        })
        .await
        .unwrap()
}

async fn creations_racing_on_different_writers_never_share_an_order(ts: TestStore) {
    setup(&ts).await;
    let mut ids = HashSet::new();
    for n in 0..12 {
        ids.insert(released(&ts, &format!("R-{n}"), "WH-A").await);
    }
    released(&ts, "R-B", "WH-B").await;
    // Partitions 1 and 2 are different writers on PostgreSQL (4 of them): both read the same
    // candidates; the one that commits second hits the unique index and reruns.
    let (a, b) = tokio::join!(create(&ts, 1, 5), create(&ts, 2, 5));
    let all: Vec<OrderId> = a
        .iter()
        .chain(b.iter())
        .flat_map(|w| w.orders.clone())
        .collect();
    let distinct: HashSet<OrderId> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "an order in two waves");
    assert_eq!(
        distinct, ids,
        "every released order of WH-A waved, none of WH-B"
    );
    assert_eq!(ts.count("wave_orders"), 12);
    // Nothing left to wave.
    assert!(create(&ts, 3, 5).await.is_empty());
}

async fn each_wave_change_writes_its_audit_entries_and_event_and_refuses_a_wrong_state(
    ts: TestStore,
) {
    setup(&ts).await;
    for n in 0..3 {
        released(&ts, &format!("S-{n}"), "WH-A").await;
    }
    let audit_before = ts.count("audit");
    let outbox_before = ts.count("outbox");
    let made = create(&ts, 0, 50).await;
    assert_eq!(made.len(), 1);
    let w = &made[0];
    assert_eq!(w.orders.len(), 3);
    assert_eq!(ts.count("audit"), audit_before + 3, "one entry per order");
    assert_eq!(ts.count("outbox"), outbox_before + 1, "one event per wave");
    let read = {
        let (t, id) = (tenant("acme"), w.wave_id);
        ts.store
            .read(move |r| r.wave(&t, id))
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(&read, w, "the wave reads back as written");

    let id = w.wave_id;
    let step = |close: bool| {
        let a = actor("acme", Role::Warehouse);
        ts.store.write(0, move |tx| {
            if close {
                waves::close(tx, &a, id, Utc::now())
            } else {
                waves::start(tx, &a, id, Utc::now())
            }
        })
    };
    let wrong = |r: Result<WaveRecord, CoreError>| match r {
        Err(CoreError::WaveConflict { code, status, .. }) => (code, status),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        wrong(step(true).await),
        ("wave_wrong_state", Some(WaveStatus::Open))
    );
    assert_eq!(step(false).await.unwrap().status, WaveStatus::Started);
    assert_eq!(step(true).await.unwrap().status, WaveStatus::Closed);
    assert_eq!(
        wrong(step(true).await),
        ("wave_wrong_state", Some(WaveStatus::Closed))
    );
    assert_eq!(
        wrong(step(false).await),
        ("wave_wrong_state", Some(WaveStatus::Closed))
    );
    assert_eq!(
        ts.count("audit"),
        audit_before + 9,
        "start and close: 3 each"
    );
    assert_eq!(ts.count("outbox"), outbox_before + 3);
    let active = ts.raw_text("SELECT CAST(sum(active) AS TEXT) FROM wave_orders");
    assert_eq!(active, ["0"], "a closed wave's orders are no longer active");
    // A viewer may not wave.
    let viewer = actor("acme", Role::Viewer);
    let r = ts
        .store
        .write(0, move |tx| {
            waves::create_waves(
                tx,
                &viewer,
                &wh("WH-A"),
                &WavePolicy::default(),
                10,
                Utc::now(),
            )
        })
        .await;
    assert!(matches!(r, Err(CoreError::Forbidden(_))), "{r:?}");
    let unknown = actor("acme", Role::Admin);
    let r = ts
        .store
        .write(0, move |tx| {
            waves::create_waves(
                tx,
                &unknown,
                &wh("WH-Z"),
                &WavePolicy::default(),
                10,
                Utc::now(),
            )
        })
        .await;
    assert!(
        matches!(&r, Err(CoreError::Validation(v)) if v.field == "warehouse_id"),
        "{r:?}"
    );
}

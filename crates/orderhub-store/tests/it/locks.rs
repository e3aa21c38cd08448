//! PostgreSQL row locks between writers and between nodes: stock rows are locked in one canonical
//! order, so no cycle of waits forms, and every wait is bounded, so a node frozen inside a
//! transaction holds the others up for seconds. SQLite has one writer per database: nothing to
//! order there.

use crate::backend::*;
use orderhub_core::CoreError;
use orderhub_core::ports::StockRow;
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::{Sku, TenantId};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};

fn pg() -> Option<TestStore> {
    let ts = open("postgres");
    if ts.is_none() {
        eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here");
    }
    ts
}

fn key(s: &str) -> (TenantId, Sku, WarehouseId) {
    (
        tenant("acme"),
        Sku::parse(s).unwrap(),
        WarehouseId::parse("HZ").unwrap(),
    )
}

/// Stock rows for `skus` in warehouse HZ, 10 on hand each.
fn seed_stock(ts: &TestStore, skus: &[&str]) {
    for s in skus {
        ts.exec(&format!(
            "INSERT INTO stock VALUES ('acme', '{s}', 'HZ', 10, 0, 1, now())"
        ));
    }
}

/// Locks `first`, waits at the barrier (first attempt only) until the other node holds its first
/// row, then locks `second`. Errors met on the way are written down; the job returns its attempts.
fn locking_job(
    first: &'static str,
    second: &'static str,
    barrier: Arc<Barrier>,
    errors: Arc<Mutex<Vec<String>>>,
) -> impl FnMut(&mut dyn orderhub_store::AdminTx) -> Result<u32, CoreError> + Send + 'static {
    let waited = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU32::new(0));
    move |tx| {
        let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let (t, s, w) = key(first);
        let got: Option<StockRow> = tx.stock_get(&t, &s, &w).inspect_err(|e| {
            errors.lock().unwrap().push(e.message.clone());
        })?;
        assert!(got.is_some());
        if !waited.swap(true, Ordering::SeqCst) {
            barrier.wait();
        }
        let (t, s, w) = key(second);
        tx.stock_get(&t, &s, &w).inspect_err(|e| {
            errors.lock().unwrap().push(e.message.clone());
        })?;
        Ok(n)
    }
}

/// Node A locks SKU-A then SKU-B; node B, at the same moment, SKU-B then SKU-A. Taken as they come,
/// that is a deadlock PostgreSQL breaks after a second by failing one side. In the canonical order,
/// node B does not wait for SKU-A (smaller than the SKU-B it holds): it finds it taken, rolls back
/// and runs again, locking both up front in order, behind node A.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_locking_stock_rows_in_opposite_orders_never_deadlock() {
    let Some(ts) = pg() else { return };
    seed_tenant(&ts.store, "acme").await;
    seed_stock(&ts, &["SKU-A", "SKU-B"]);
    let other = orderhub_store::Store::open(&ts.config, cipher()).unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let errors_a = Arc::new(Mutex::new(Vec::new()));
    let errors_b = Arc::new(Mutex::new(Vec::new()));
    let a = ts.store.write(
        0,
        locking_job("SKU-A", "SKU-B", barrier.clone(), errors_a.clone()),
    );
    let b = other.write(0, locking_job("SKU-B", "SKU-A", barrier, errors_b.clone()));
    let (a, b) = tokio::join!(a, b);
    let (errors_a, errors_b) = (errors_a.lock().unwrap(), errors_b.lock().unwrap());
    for e in errors_a.iter().chain(errors_b.iter()) {
        assert!(!e.contains("deadlock"), "a deadlock between the nodes: {e}");
    }
    assert_eq!(
        a.unwrap(),
        1,
        "node A took its rows in order, once: {errors_a:?}"
    );
    assert!(
        errors_b.iter().any(|e| e.contains("could not obtain lock")),
        "node B must have found SKU-A taken without waiting for it: {errors_b:?}"
    );
    assert_eq!(b.unwrap(), 2, "node B ran again and got both: {errors_b:?}");
}

/// A node frozen (SIGSTOP, a VM pause) in the middle of its transaction holds its row locks while
/// it sleeps. The store bounds every session: PostgreSQL ends the frozen node's session after the
/// idle-in-transaction timeout, and the other node's lock waits end (and are retried) meanwhile, so
/// its write goes through while the frozen node still sleeps; the frozen node, on waking, finds its
/// transaction gone and commits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_frozen_inside_a_transaction_holds_no_one_up_past_its_idle_timeout() {
    let Some(ts) = pg() else { return };
    seed_tenant(&ts.store, "acme").await;
    seed_stock(&ts, &["SKU-A"]);
    let frozen = orderhub_store::Store::open(&ts.config, cipher()).unwrap();
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
    let mut signal = Some(locked_tx);
    let wake = Arc::new(Mutex::new(wake_rx));
    // The frozen node's writer locks the row and then stops, inside its transaction.
    let frozen_write = async move {
        frozen
            .write(0, move |tx| {
                let (t, s, w) = key("SKU-A");
                let mut row = tx.stock_get(&t, &s, &w)?.expect("seeded");
                if let Some(l) = signal.take() {
                    let _ = l.send(());
                    let _ = wake.lock().unwrap().recv();
                }
                row.level.reserved += 5;
                tx.stock_put(&t, &s, &w, row, chrono::Utc::now())?;
                Ok(())
            })
            .await
    };
    let frozen_write = tokio::spawn(frozen_write);
    locked_rx.await.unwrap();
    // A bound on the wait, so that a store without session bounds fails here instead of hanging.
    let moved = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        ts.store.write(0, |tx| {
            let (t, s, w) = key("SKU-A");
            let mut row = tx.stock_get(&t, &s, &w)?.expect("seeded");
            row.level.reserved += 1;
            tx.stock_put(&t, &s, &w, row, chrono::Utc::now())?;
            Ok(row.level.reserved)
        }),
    )
    .await;
    wake_tx.send(()).unwrap();
    let woke = frozen_write.await.unwrap();
    assert_eq!(
        moved
            .expect("the other node is not held up by the frozen one")
            .unwrap(),
        1,
        "the other node's write goes through while the frozen one sleeps"
    );
    assert!(
        woke.is_err(),
        "the frozen transaction was ended by the server, not committed on waking"
    );
    let Raw::Postgres(url) = &ts.raw else {
        unreachable!()
    };
    let url = url.clone();
    let reserved: i64 = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query_one("SELECT reserved FROM stock WHERE sku = 'SKU-A'", &[])
            .unwrap()
            .get(0)
    })
    .join()
    .unwrap();
    assert_eq!(reserved, 1, "only the live node's write is in the database");
}

/// Many reservations of multi-SKU baskets in every order, on two nodes at once: every one
/// completes (none is refused for a conflict it kept meeting) and the stock balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn baskets_in_every_order_on_two_nodes_all_reserve_and_balance() {
    let Some(ts) = pg() else { return };
    seed_tenant(&ts.store, "acme").await;
    let skus = ["SKU-A", "SKU-B", "SKU-C", "SKU-D"];
    for s in skus {
        ts.exec(&format!(
            "INSERT INTO stock VALUES ('acme', '{s}', 'HZ', 1000, 0, 1, now())"
        ));
    }
    let other = orderhub_store::Store::open(&ts.config, cipher()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..400u64 {
        let node = if i % 2 == 0 {
            ts.store.clone()
        } else {
            other.clone()
        };
        // Two or three SKUs, rotated and reversed by i: every pair is taken in both orders.
        let mut basket: Vec<&str> = skus
            .iter()
            .cycle()
            .skip(i as usize % 4)
            .take(2 + (i as usize % 2))
            .copied()
            .collect();
        if i % 3 == 0 {
            basket.reverse();
        }
        tasks.push(tokio::spawn(async move {
            node.write(i, move |tx| {
                for s in &basket {
                    let (t, s, w) = key(s);
                    let mut row = tx.stock_get(&t, &s, &w)?.expect("seeded");
                    row.level.reserved += 1;
                    tx.stock_put(&t, &s, &w, row, chrono::Utc::now())?;
                }
                Ok(basket.len() as i64)
            })
            .await
        }));
    }
    let mut units = 0;
    for t in tasks {
        units += t.await.unwrap().expect("every basket reserves");
    }
    let reserved: i64 = {
        let Raw::Postgres(url) = &ts.raw else {
            unreachable!()
        };
        let url = url.clone();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.query_one("SELECT sum(reserved)::bigint FROM stock", &[])
                .unwrap()
                .get(0)
        })
        .join()
        .unwrap()
    };
    assert_eq!(reserved, units, "every unit reserved once");
}

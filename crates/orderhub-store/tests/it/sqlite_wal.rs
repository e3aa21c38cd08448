//! SQLite only: what the embedded store's write-ahead log does under sustained load.

use crate::backend::*;
use orderhub_core::auth::Role;
use orderhub_core::usecases::create_order;
use orderhub_store::OrderFilter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The WAL header's checkpoint sequence: SQLite adds one each time the log starts over.
fn wal_restarts(db: &std::path::Path) -> Option<u32> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let bytes = std::fs::read(std::path::PathBuf::from(wal)).ok()?;
    Some(u32::from_be_bytes(bytes.get(12..16)?.try_into().ok()?))
}

/// Writes that never pause and readers that are always reading: the log must still start over
/// now and then (else it grows by every commit for as long as the load lasts, and so does the
/// disk it takes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_starts_over_while_writes_and_reads_never_stop() {
    let ts = open("sqlite").unwrap();
    let Raw::Sqlite(path) = &ts.raw else {
        unreachable!()
    };
    seed_tenant(&ts.store, "t1").await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (store, stop) = (ts.store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (a, d) = (actor("t1", Role::Ops), draft("s1", &format!("w{w}-{n}")));
                store
                    .write(n, move |tx| {
                        create_order(tx, &a, d.clone(), chrono::Utc::now())
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for _ in 0..4 {
        let (store, stop) = (ts.store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                store
                    .read(|r| r.order_list(&OrderFilter::all(tenant("t1"), 50)))
                    .await
                    .unwrap();
            }
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    let started = std::time::Instant::now();
    // Long enough for several of the writer's checkpoint intervals (250 ms), on a slow machine.
    while started.elapsed() < std::time::Duration::from_secs(4) && seen.len() < 4 {
        if let Some(s) = wal_restarts(path) {
            seen.insert(s);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        seen.len() >= 4,
        "the WAL started over {} times under 4 s of sustained load (checkpoint sequences seen: {seen:?})",
        seen.len().saturating_sub(1)
    );
}

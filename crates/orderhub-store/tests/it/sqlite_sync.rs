//! SQLite only: commits are synced beside the writer, and nothing leaves the store before its sync —
//! neither the write's answer nor a read that saw it.

use crate::backend::*;
use orderhub_core::auth::Role;
use orderhub_core::usecases::create_order;
use orderhub_store::{OrderFilter, Store};
use std::time::Duration;

async fn orders_of_t1(store: Store) -> usize {
    store
        .read(|r| r.order_list(&OrderFilter::all(tenant("t1"), 50)))
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_neither_answered_nor_read_before_it_is_synced() {
    let ts = open("sqlite").unwrap();
    seed_tenant(&ts.store, "t1").await;
    let hold = ts
        .store
        .hold_syncs()
        .expect("the SQLite store syncs its commits beside the writer");

    // Nothing unsynced yet: a read does not wait for a sync.
    let n = tokio::time::timeout(Duration::from_secs(30), orders_of_t1(ts.store.clone()))
        .await
        .expect("a read of synced data waited for a sync");
    assert_eq!(n, 0);

    let groups = ts.store.write_stats().groups;
    let store = ts.store.clone();
    let write = tokio::spawn(async move {
        let (a, d) = (actor("t1", Role::Ops), draft("s1", "o-1"));
        store
            .write(1, move |tx| {
                create_order(tx, &a, d.clone(), chrono::Utc::now())
            })
            .await
    });
    while ts.store.write_stats().groups == groups {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Committed, so SQLite's readers see it; but it is not on disk yet.
    let read = tokio::spawn(orders_of_t1(ts.store.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !write.is_finished(),
        "a write was answered before its commit was synced"
    );
    assert!(
        !read.is_finished(),
        "a read returned a commit that was not synced yet"
    );

    drop(hold);
    let created = write.await.unwrap().expect("the write, once synced");
    assert!(
        matches!(created, orderhub_core::usecases::Created::New(o) if o.external_order_id.as_str() == "o-1")
    );
    assert_eq!(
        read.await.unwrap(),
        1,
        "the read saw the commit it waited for"
    );
    assert!(ts.store.write_stats().syncs >= 1);
}

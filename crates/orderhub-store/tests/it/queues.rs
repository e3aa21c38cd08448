//! The store's queues are bounded: a write or read that finds its queue full is refused at once
//! (`Busy`), writes nothing, and never waits; the work that was queued commits. On both backends.

use crate::backend::*;
use orderhub_core::auth::Role;
use orderhub_core::usecases::create_order;
use orderhub_core::{CoreError, StoreErrorKind};
use orderhub_store::{OrderFilter, READ_QUEUE_MAX, Store, WRITE_QUEUE_MAX};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::Poll;
use std::time::Duration;

conformance!(
    a_full_write_queue_refuses_at_once_and_what_was_queued_commits,
    a_full_read_queue_refuses_at_once_and_what_was_queued_is_answered,
);

/// Closed until `open`: jobs that wait on it hold their writer or reader thread.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (m, cv) = &*self.0;
        let mut open = m.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// Waits (at most a minute) until `n` held jobs run.
async fn until_running(running: &AtomicUsize, n: usize) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while running.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the held jobs never ran");
}

async fn t1_orders(store: &Store) -> Vec<String> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let f = OrderFilter {
            after,
            ..OrderFilter::all(tenant("t1"), 1000)
        };
        let page = store.read(move |r| r.order_list(&f)).await.unwrap();
        after = page.last().map(|o| o.id);
        let n = page.len();
        all.extend(page.into_iter().map(|o| o.external_order_id.to_string()));
        if n < 1000 {
            return all;
        }
    }
}

async fn a_full_write_queue_refuses_at_once_and_what_was_queued_commits(ts: TestStore) {
    let store = ts.store.clone();
    seed_tenant(&store, "t1").await;
    let writers = store.writers() as u64;
    // Every writer runs a job that waits for the gate: nothing queued behind it is taken.
    let (gate, running) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let mut held = Vec::new();
    for p in 0..writers {
        let (g, r, s) = (gate.clone(), running.clone(), store.clone());
        held.push(tokio::spawn(async move {
            s.write(p, move |_tx| {
                r.fetch_add(1, Ordering::SeqCst);
                g.wait();
                Ok(())
            })
            .await
        }));
    }
    until_running(&running, writers as usize).await;

    let before = store.queue_full().writes;
    let write = |p: u64, ext: String| {
        let (a, d) = (actor("t1", Role::Ops), draft("s1", &ext));
        Box::pin(store.write(p, move |tx| {
            create_order(tx, &a, d.clone(), chrono::Utc::now())
        }))
    };
    // Each writer's queue filled to its bound: each write is queued on its first poll.
    let mut queued = Vec::new();
    for p in 0..writers {
        for i in 0..WRITE_QUEUE_MAX {
            let mut w = write(p, format!("q-{p}-{i}"));
            assert!(
                futures::poll!(w.as_mut()).is_pending(),
                "write {i} of {WRITE_QUEUE_MAX} on writer {p} was not queued"
            );
            queued.push(w);
        }
    }
    // One more per writer: refused at once (its first poll answers), without running.
    for p in 0..writers {
        let mut w = write(p, format!("refused-{p}"));
        match futures::poll!(w.as_mut()) {
            Poll::Ready(Err(CoreError::Store(e))) => {
                assert_eq!(e.kind, StoreErrorKind::Busy, "{e}");
                assert!(e.message.contains("write queue is full"), "{e}");
                assert!(e.message.contains(&WRITE_QUEUE_MAX.to_string()), "{e}");
            }
            Poll::Ready(other) => panic!("a write beyond the queue's bound answered {other:?}"),
            Poll::Pending => panic!("a write beyond the queue's bound waited"),
        }
    }
    assert_eq!(store.queue_full().writes - before, writers);

    gate.open();
    for h in held {
        h.await.unwrap().unwrap();
    }
    for w in futures::future::join_all(queued).await {
        w.expect("a queued write, once the writer was free");
    }
    let orders = t1_orders(&store).await;
    assert_eq!(orders.len(), writers as usize * WRITE_QUEUE_MAX);
    assert!(
        !orders.iter().any(|o| o.starts_with("refused-")),
        "a refused write was committed"
    );
    // Once the queue drains, writes are taken again.
    let (a, d) = (actor("t1", Role::Ops), draft("s1", "after"));
    store
        .write(0, move |tx| {
            create_order(tx, &a, d.clone(), chrono::Utc::now())
        })
        .await
        .expect("a write after the queue drained");
}

async fn a_full_read_queue_refuses_at_once_and_what_was_queued_is_answered(ts: TestStore) {
    let store = ts.store.clone();
    seed_tenant(&store, "t1").await;
    let readers = store.readers();
    let (gate, running) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let mut held = Vec::new();
    for _ in 0..readers {
        let (g, r, s) = (gate.clone(), running.clone(), store.clone());
        held.push(tokio::spawn(async move {
            s.read(move |_conn| {
                r.fetch_add(1, Ordering::SeqCst);
                g.wait();
                Ok(())
            })
            .await
        }));
    }
    until_running(&running, readers).await;

    let before = store.queue_full().reads;
    let read = || Box::pin(store.read(|r| r.tenants()));
    let mut queued = Vec::new();
    for i in 0..READ_QUEUE_MAX {
        let mut r = read();
        assert!(
            futures::poll!(r.as_mut()).is_pending(),
            "read {i} of {READ_QUEUE_MAX} was not queued"
        );
        queued.push(r);
    }
    let mut refused = read();
    match futures::poll!(refused.as_mut()) {
        Poll::Ready(Err(e)) => {
            assert_eq!(e.kind, StoreErrorKind::Busy, "{e}");
            assert!(e.message.contains("read queue is full"), "{e}");
        }
        Poll::Ready(Ok(_)) => panic!("a read beyond the queue's bound ran"),
        Poll::Pending => panic!("a read beyond the queue's bound waited"),
    }
    assert_eq!(store.queue_full().reads - before, 1);

    gate.open();
    for h in held {
        h.await.unwrap().unwrap();
    }
    for r in futures::future::join_all(queued).await {
        assert_eq!(r.expect("a queued read").len(), 1, "the one tenant");
    }
}

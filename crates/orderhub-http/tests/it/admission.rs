//! Load is refused, not queued: a full store queue, too many requests in flight and a request
//! past its time are answered 503 JSON with `Retry-After` at once, and nothing is half-written.

use crate::app::*;
use orderhub_http::admission::HttpLimits;
use orderhub_store::{Store, WRITE_QUEUE_MAX};
use reqwest::{Method, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

crate::on_every_backend!(a_full_store_queue_answers_503_with_retry_after_and_writes_nothing);

macro_rules! limited {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name("sqlite").await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name("postgres").await
            }
        }
    )*};
}

limited!(
    requests_over_the_in_flight_limit_are_shed_with_503_and_probes_still_answer,
    a_request_past_its_time_answers_503_and_its_write_is_found_by_its_idempotency_key,
);

/// Closed until opened: every writer of the store runs a job that waits on it, so writes queue.
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

/// Holds every writer of `store` until the gate opens (returns once they all wait on it).
async fn hold_writers(store: &Store) -> Gate {
    let (gate, running) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    for p in 0..store.writers() as u64 {
        let (g, r, s) = (gate.clone(), running.clone(), store.clone());
        tokio::spawn(async move {
            s.write(p, move |_tx| {
                r.fetch_add(1, Ordering::SeqCst);
                g.wait();
                Ok(())
            })
            .await
        });
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while running.load(Ordering::SeqCst) < store.writers() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the writers never ran the holding jobs");
    gate
}

fn retry_after(r: &Resp) -> u64 {
    r.headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("a 503 without Retry-After: {:?}", r.body))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn a_full_store_queue_answers_503_with_retry_after_and_writes_nothing(app: TestApp) {
    let gate = hold_writers(&app.store).await;
    // Every writer's queue filled to its bound with writes that do nothing.
    let mut queued = Vec::new();
    for p in 0..app.store.writers() as u64 {
        for _ in 0..WRITE_QUEUE_MAX {
            let mut w = Box::pin(app.store.write(p, |_tx| Ok(())));
            assert!(futures::poll!(w.as_mut()).is_pending());
            queued.push(w);
        }
    }
    let r = app.create(ADMIN_KEY, "s1", "o-busy").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.code(), "store_queue_full");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "write queue is full ({WRITE_QUEUE_MAX} jobs waiting)"
            )),
        "{:?}",
        r.body
    );
    assert_eq!(retry_after(&r), 1);
    assert!(
        app.metrics()
            .await
            .contains("orderhub_store_queue_full_total{queue=\"write\"}")
    );

    gate.open();
    for w in futures::future::join_all(queued).await {
        w.unwrap();
    }
    // Nothing of the refused request was written; the client's retry goes through.
    assert_eq!(app.order_count().await, 0);
    let r = app.create(ADMIN_KEY, "s1", "o-busy").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(app.order_count().await, 1);
}

async fn requests_over_the_in_flight_limit_are_shed_with_503_and_probes_still_answer(
    backend: &str,
) {
    let limits = HttpLimits {
        max_in_flight: 2,
        ..HttpLimits::default()
    };
    let Some(app) = spawn_app_limited(
        backend,
        orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        limits,
    )
    .await
    else {
        eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here");
        return;
    };
    let app = Arc::new(app);
    // Two creates held open by the writers: the limit is reached.
    let gate = hold_writers(&app.store).await;
    let held: Vec<_> = (0..2)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { app.create(ADMIN_KEY, "s1", &format!("held-{i}")).await })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), async {
        while app.admission.in_flight() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the two held requests never were in flight");
    // A third request is shed at once.
    let shed = app.get("/v1/orders", ADMIN_KEY).await;
    assert_eq!(
        shed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        shed.body
    );
    assert_eq!(shed.code(), "overloaded", "{:?}", shed.body);
    assert!(
        shed.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 2 requests are in flight"),
        "{:?}",
        shed.body
    );
    assert_eq!(retry_after(&shed), 1);
    assert!(shed.headers.contains_key("x-request-id"));
    // Still shed while the two are held (not queued behind them).
    let again = app
        .call(
            Method::POST,
            "/v1/orders",
            Some(ADMIN_KEY),
            Some(&order_json("s1", "shed").to_string()),
            &[],
        )
        .await;
    assert_eq!(again.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(again.code(), "overloaded");
    // Probes and the scrape are never shed.
    for path in ["/healthz", "/readyz"] {
        let r = app.call(Method::GET, path, None, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
    }
    assert!(
        app.metrics()
            .await
            .contains("orderhub_http_shed_total{reason=\"in_flight\"}")
    );

    gate.open();
    for h in held {
        let r = h.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    // The shed create wrote nothing; requests are taken again.
    assert_eq!(app.order_count().await, 2);
    assert_eq!(
        app.get("/v1/orders", ADMIN_KEY).await.status,
        StatusCode::OK
    );
}

async fn a_request_past_its_time_answers_503_and_its_write_is_found_by_its_idempotency_key(
    backend: &str,
) {
    let limits = HttpLimits {
        request_timeout: Duration::from_secs(1),
        ..HttpLimits::default()
    };
    let Some(app) = spawn_app_limited(
        backend,
        orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        limits,
    )
    .await
    else {
        eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here");
        return;
    };
    let gate = hold_writers(&app.store).await;
    let body = order_json("s1", "slow").to_string();
    let post = || {
        app.call(
            Method::POST,
            "/v1/orders",
            Some(ADMIN_KEY),
            Some(&body),
            &[("idempotency-key", "slow-1")],
        )
    };
    // The writers are held: the create cannot commit within its second.
    let r = post().await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.code(), "request_timeout");
    assert_eq!(retry_after(&r), 1);
    gate.open();
    // Its write was queued and commits anyway; the retry with the same key finds it, once.
    let again = post().await;
    assert!(
        again.status == StatusCode::CREATED || again.status == StatusCode::OK,
        "{:?}",
        again.body
    );
    assert_eq!(app.order_count().await, 1);
}

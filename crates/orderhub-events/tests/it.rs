//! The relay and the dispatcher against real stores (SQLite, PostgreSQL) and the real NATS
//! JetStream: nothing lost, order kept per order, duplicates only where at-least-once allows them.

mod harness;

use harness::*;
use orderhub_events::EventsConfig;
use orderhub_store::ops::{DEAD, DELIVERED, REPLAYING};
use std::time::Duration;

fn fast() -> EventsConfig {
    EventsConfig {
        lease_ttl: Duration::from_secs(2),
        poll_interval: Duration::from_millis(50),
        supervise_every: Duration::from_millis(200),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        replay_poll: Duration::from_millis(100),
        subscriptions_refresh: Duration::from_millis(100),
        ..EventsConfig::default()
    }
}

/// A subscriber that fails every other delivery still gets every event, each order's events in
/// version order, every request signed.
async fn half_failing_subscriber(backend: &str, nats: bool) {
    half_failing_subscriber_at(backend, nats.then(nats_url)).await;
}

async fn half_failing_subscriber_at(backend: &str, nats: Option<String>) {
    let Some(ts) = open(backend) else { return };
    let tenant = new_tenant(&ts.store).await;
    let hook = Subscriber::start(FailEvery::Second).await;
    subscribe(&ts.store, &tenant, &hook.url, &["*"]).await;
    // Enough attempts that no event runs out of them by bad luck (2^-40).
    let cfg = EventsConfig {
        nats_url: nats,
        max_attempts: 40,
        ..fast()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let written = write_events(&ts.store, &tenant, 30, 10).await;
    hook.wait_for_all(&written, Duration::from_secs(60)).await;
    rt.stop().await;
    hook.assert_in_version_order_per_aggregate();
    assert!(hook.failed() > 0, "the subscriber failed some deliveries");
    assert_eq!(hook.bad_signatures(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_failing_subscriber_sqlite_in_process_bus() {
    half_failing_subscriber("sqlite", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_failing_subscriber_postgres_in_process_bus() {
    half_failing_subscriber("postgres", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_failing_subscriber_sqlite_nats() {
    if !have_nats() {
        return;
    }
    half_failing_subscriber("sqlite", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_failing_subscriber_postgres_nats() {
    if !have_nats() {
        return;
    }
    half_failing_subscriber("postgres", true).await;
}

/// The same on NATS 2.12+ with `sync_interval: always`, where the relay publishes atomic batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_failing_subscriber_sqlite_durable_nats_atomic_batches() {
    if !have_durable_nats() {
        return;
    }
    half_failing_subscriber_at("sqlite", Some(durable_nats_url())).await;
}

/// A relay that crashed after JetStream acknowledged a batch but before it stored its position
/// publishes the batch again: nothing is stored twice (per message on old servers; on 2.12+ the
/// atomic batch is refused whole and republished message by message).
async fn republished_batch_is_not_stored_twice(url: String, atomic: Option<bool>) {
    let Some(ts) = open("sqlite") else { return };
    let tenant = new_tenant(&ts.store).await;
    write_events(&ts.store, &tenant, 7, 3).await;
    let t = tenant.clone();
    let rows = ts
        .store
        .read(move |r| r.events_after(&t, 0, 1000))
        .await
        .unwrap();
    let nats = orderhub_events::nats::connect(&url, 4).await.unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while nats.client.server_info().version.is_empty() {
        assert!(std::time::Instant::now() < until, "not connected to {url}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(atomic) = atomic {
        assert_eq!(
            nats.atomic_batches(),
            atomic,
            "server {}",
            nats.client.server_info().version
        );
    }
    assert_eq!(nats.publish(&rows).await.unwrap(), rows.len());
    assert_eq!(
        nats.publish(&rows).await.unwrap(),
        0,
        "every event a duplicate"
    );
    assert_eq!(nats.publish(&rows[5..12]).await.unwrap(), 0);
    let stored = stream_count_at(&url, &tenant).await;
    assert_eq!(stored, rows.len() as u64);
    // A subscription's event goes to every partition (each partition's reader meets it before the
    // partition's later events), once per partition however often it is published.
    let mut barrier = rows[0].clone();
    barrier.seq = rows.last().unwrap().seq + 1;
    barrier.event.event_id = uuid::Uuid::now_v7();
    barrier.event.event_type = "subscription.created".into();
    barrier.event.aggregate_id = uuid::Uuid::now_v7();
    let copies = nats.partitions as usize;
    assert_eq!(
        nats.publish(std::slice::from_ref(&barrier)).await.unwrap(),
        copies
    );
    assert_eq!(
        nats.publish(std::slice::from_ref(&barrier)).await.unwrap(),
        0
    );
    assert_eq!(
        stream_count_at(&url, &tenant).await,
        (rows.len() + copies) as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republished_batch_is_not_stored_twice_nats() {
    if !have_nats() {
        return;
    }
    republished_batch_is_not_stored_twice(nats_url(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republished_batch_is_not_stored_twice_durable_nats_atomic_batches() {
    if !have_durable_nats() {
        return;
    }
    republished_batch_is_not_stored_twice(durable_nats_url(), Some(true)).await;
}

/// A subscriber that refuses one order's events: that order's delivery waits out its backoff (an
/// hour here, as during a real outage) holding only its own (subscription, order) lane. Every other
/// order's events are delivered meanwhile, the refused order's later events wait behind its first,
/// and the dispatcher's stored position stays below the event still being retried, so a restart
/// would send it again.
async fn one_order_retrying_holds_back_only_itself(backend: &str, nats: bool) {
    let Some(ts) = open(backend) else { return };
    let tenant = new_tenant(&ts.store).await;
    let hook = Subscriber::start(FailEvery::Never).await;
    subscribe(&ts.store, &tenant, &hook.url, &["*"]).await;
    // Written before the dispatcher starts, so the subscriber refuses them from the first.
    let stuck = write_events(&ts.store, &tenant, 1, 3).await;
    let stuck_order = stuck[0].2;
    hook.fail_aggregate(stuck_order);
    let cfg = EventsConfig {
        nats_url: nats.then(nats_url),
        backoff_base: Duration::from_secs(3600),
        backoff_max: Duration::from_secs(3600),
        ..fast()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let others = write_events(&ts.store, &tenant, 20, 3).await;
    hook.wait_for_all(&others, Duration::from_secs(60)).await;
    hook.assert_in_version_order_per_aggregate();
    let asked = hook.requests_for(stuck_order);
    assert_eq!(
        asked.iter().map(|r| (r.version, r.ok)).collect::<Vec<_>>(),
        vec![(1, false)],
        "one refused attempt, then the order waits for its next; its later events wait behind it"
    );
    if !nats {
        // The outbox position is a watermark: it stays below the event still in its retries.
        let position = leases_of(&ts.store, &tenant)
            .await
            .into_iter()
            .find(|l| l.name.starts_with("dispatch/"))
            .map(|l| l.position);
        assert_eq!(
            position,
            Some(0),
            "nothing before the stuck order's first event"
        );
    }
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_retrying_holds_back_only_itself_sqlite() {
    one_order_retrying_holds_back_only_itself("sqlite", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_retrying_holds_back_only_itself_postgres() {
    one_order_retrying_holds_back_only_itself("postgres", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_retrying_holds_back_only_itself_sqlite_nats() {
    if !have_nats() {
        return;
    }
    one_order_retrying_holds_back_only_itself("sqlite", true).await;
}

/// A subscriber down for longer than the in-memory attempts: its deliveries are parked in the
/// store, so they hold none of the tenant's in-flight events — another subscriber gets every event
/// meanwhile, though the tenant may have only 4 in flight — and once it is back it gets every event
/// too, each order's in version order, nothing dead-lettered.
async fn a_subscriber_down_is_parked_and_holds_no_one_up(backend: &str, nats: bool) {
    let Some(ts) = open(backend) else { return };
    let tenant = new_tenant(&ts.store).await;
    let down = Subscriber::start(FailEvery::Always).await;
    let up = Subscriber::start(FailEvery::Never).await;
    subscribe(&ts.store, &tenant, &down.url, &["*"]).await;
    subscribe(&ts.store, &tenant, &up.url, &["*"]).await;
    let cfg = EventsConfig {
        nats_url: nats.then(nats_url),
        max_attempts: 1000,
        park_after: 2,
        max_in_flight_events: 4,
        ..fast()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let written = write_events(&ts.store, &tenant, 10, 3).await;
    up.wait_for_all(&written, Duration::from_secs(60)).await;
    assert_eq!(
        down.delivered_ids().len(),
        0,
        "the subscriber is still down"
    );
    let t = tenant.clone();
    let parked = ts.store.read(move |r| r.parked_depth()).await.unwrap();
    let parked: u64 = parked.iter().filter(|(x, _)| *x == t).map(|(_, n)| n).sum();
    assert!(parked > 0, "the failing deliveries wait in the store");
    down.set_mode(FailEvery::Never);
    down.wait_for_all(&written, Duration::from_secs(60)).await;
    down.assert_in_version_order_per_aggregate();
    up.assert_in_version_order_per_aggregate();
    // A delivery's parked row goes once the subscriber's answer is back and the removal has
    // committed, a moment after the subscriber logged the request: wait for the store to catch up.
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let t = tenant.clone();
        let left = ts.store.read(move |r| r.parked_lanes(&t)).await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "nothing left parked: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = tenant.clone();
    let dead = ts
        .store
        .read(move |r| r.dead_letters(Some(&t), None, None, 100, None))
        .await
        .unwrap();
    assert!(dead.is_empty(), "nothing dead-lettered");
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_down_is_parked_and_holds_no_one_up_sqlite() {
    a_subscriber_down_is_parked_and_holds_no_one_up("sqlite", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_down_is_parked_and_holds_no_one_up_postgres() {
    a_subscriber_down_is_parked_and_holds_no_one_up("postgres", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_down_is_parked_and_holds_no_one_up_postgres_nats() {
    if !have_nats() {
        return;
    }
    a_subscriber_down_is_parked_and_holds_no_one_up("postgres", true).await;
}

/// A subscriber that stays down: the order's first event spends its attempts (some in memory, the
/// rest parked) and becomes a dead letter; the order's later events, parked behind it, follow it
/// to the dead letters at once instead of each starting hours of retries of its own.
async fn a_lane_whose_first_event_dies_takes_its_followers_along(backend: &str) {
    let Some(ts) = open(backend) else { return };
    let tenant = new_tenant(&ts.store).await;
    let hook = Subscriber::start(FailEvery::Always).await;
    subscribe(&ts.store, &tenant, &hook.url, &["*"]).await;
    let cfg = EventsConfig {
        max_attempts: 4,
        park_after: 2,
        ..fast()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let written = write_events(&ts.store, &tenant, 2, 3).await;
    let dls = wait_dead_letters(
        &ts.store,
        &tenant,
        DEAD,
        written.len(),
        Duration::from_secs(60),
    )
    .await;
    let followers = dls
        .iter()
        .filter(|d| d.last_error.contains("an earlier event of its order"))
        .count();
    assert!(
        followers >= 1,
        "{:?}",
        dls.iter().map(|d| &d.last_error).collect::<Vec<_>>()
    );
    let t = tenant.clone();
    let left = ts.store.read(move |r| r.parked_lanes(&t)).await.unwrap();
    assert!(left.is_empty(), "nothing left parked: {left:?}");
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_whose_first_event_dies_takes_its_followers_along_sqlite() {
    a_lane_whose_first_event_dies_takes_its_followers_along("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_whose_first_event_dies_takes_its_followers_along_postgres() {
    a_lane_whose_first_event_dies_takes_its_followers_along("postgres").await;
}

/// Attempts spent → a dead letter with the last error; replayed once the endpoint works → delivered.
async fn dead_letters_then_replay(backend: &str) {
    let Some(ts) = open(backend) else { return };
    let tenant = new_tenant(&ts.store).await;
    let hook = Subscriber::start(FailEvery::Always).await;
    subscribe(&ts.store, &tenant, &hook.url, &["order.paid"]).await;
    let cfg = EventsConfig {
        max_attempts: 3,
        ..fast()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let written = write_events(&ts.store, &tenant, 4, 2).await;
    let paid = written.iter().filter(|e| e.1 == "order.paid").count();
    let dls = wait_dead_letters(&ts.store, &tenant, DEAD, paid, Duration::from_secs(30)).await;
    for d in &dls {
        assert_eq!(d.attempts, 3);
        assert_eq!(d.event_type, "order.paid");
        assert!(d.last_error.contains("HTTP 500"), "{}", d.last_error);
    }
    // Events the subscription does not want never reach it or the dead letters.
    assert_eq!(hook.requests_for_type("order.created"), 0);
    hook.set_mode(FailEvery::Never);
    let t = tenant.clone();
    let moved = ts
        .store
        .write(0, move |tx| {
            Ok(tx.dead_letter_move(&t, None, DEAD, REPLAYING, chrono::Utc::now())?)
        })
        .await
        .unwrap();
    assert_eq!(moved as usize, paid);
    wait_dead_letters(&ts.store, &tenant, DELIVERED, paid, Duration::from_secs(30)).await;
    let ok: std::collections::HashSet<_> = hook.delivered_ids().into_iter().collect();
    for d in dls {
        assert!(ok.contains(&d.event_id));
    }
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_then_replay_sqlite() {
    dead_letters_then_replay("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_then_replay_postgres() {
    dead_letters_then_replay("postgres").await;
}

/// A subscription made by a key scoped to a shop receives that shop's events and nothing else;
/// an unscoped one receives every event.
async fn a_scoped_subscription_receives_only_its_shops_events(backend: &str, nats: bool) {
    let Some(ts) = open(backend) else { return };
    let tenant = new_tenant(&ts.store).await;
    let all = Subscriber::start(FailEvery::Never).await;
    let alpha = Subscriber::start(FailEvery::Never).await;
    subscribe(&ts.store, &tenant, &all.url, &["*"]).await;
    subscribe_scoped(
        &ts.store,
        &tenant,
        &alpha.url,
        &["*"],
        Some(&["shop-alpha"]),
    )
    .await;
    let cfg = EventsConfig {
        nats_url: nats.then(nats_url),
        ..fast()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let others = write_shop_events(
        &ts.store,
        &tenant,
        &[Some("shop-beta"), None, Some("shop-beta")],
    )
    .await;
    let mine = write_shop_events(
        &ts.store,
        &tenant,
        &[Some("shop-alpha"), Some("shop-alpha")],
    )
    .await;
    let every: Vec<Written> = others.iter().chain(&mine).cloned().collect();
    all.wait_for_all(&every, Duration::from_secs(60)).await;
    alpha.wait_for_all(&mine, Duration::from_secs(60)).await;
    rt.stop().await;
    assert_eq!(
        alpha.count_of(&others),
        0,
        "another shop's or no shop's event reached it"
    );
    assert_eq!(alpha.count_of(&mine), mine.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_subscription_receives_only_its_shops_events_sqlite() {
    a_scoped_subscription_receives_only_its_shops_events("sqlite", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_subscription_receives_only_its_shops_events_postgres_nats() {
    if !have_nats() {
        return;
    }
    a_scoped_subscription_receives_only_its_shops_events("postgres", true).await;
}

/// The process relaying dies mid-stream (no graceful hand-back): another takes the lease when it
/// expires and nothing is lost; JetStream drops what the dead one had already published.
async fn relay_killed_mid_stream(backend: &str) {
    if !have_nats() {
        return;
    }
    let Some(ts) = open(backend) else { return };
    let tenant = new_tenant(&ts.store).await;
    let hook = Subscriber::start(FailEvery::Never).await;
    subscribe(&ts.store, &tenant, &hook.url, &["*"]).await;
    let cfg = EventsConfig {
        nats_url: Some(nats_url()),
        ..fast()
    };
    let first = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg.clone(), vec![])
        .await
        .unwrap();
    let writer = {
        let (s, t) = (ts.store.clone(), tenant.clone());
        tokio::spawn(async move { write_events_slowly(&s, &t, 10, 30).await })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    let held = leases_of(&ts.store, &tenant).await;
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|l| l.holder == first.holder()), "{held:?}");
    let fence_before = held.iter().map(|l| l.fence).max().unwrap();
    first.kill();
    let second = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let written = writer.await.unwrap();
    hook.wait_for_all(&written, Duration::from_secs(60)).await;
    let held = leases_of(&ts.store, &tenant).await;
    assert!(
        held.iter()
            .all(|l| l.holder == second.holder() && l.fence > fence_before),
        "{held:?}"
    );
    // In the stream: every event exactly once (JetStream's dedup by event id).
    assert_eq!(stream_count(&tenant).await, written.len() as u64);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_stream_sqlite() {
    relay_killed_mid_stream("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_stream_postgres() {
    relay_killed_mid_stream("postgres").await;
}

/// Two processes on one PostgreSQL and one NATS: one relays and dispatches the tenant at a time,
/// each event reaches the stream once; the other takes over when the first is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_one_lease_holder_and_failover() {
    if !have_nats() {
        return;
    }
    let Some(ts) = open("postgres") else { return };
    let other = ts.reopen();
    let tenant = new_tenant(&ts.store).await;
    let hook = Subscriber::start(FailEvery::Never).await;
    subscribe(&ts.store, &tenant, &hook.url, &["*"]).await;
    let cfg = EventsConfig {
        nats_url: Some(nats_url()),
        ..fast()
    };
    let a = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg.clone(), vec![])
        .await
        .unwrap();
    let b = orderhub_events::EventsRuntime::start(other.clone(), cfg, vec![])
        .await
        .unwrap();
    let first = write_events(&ts.store, &tenant, 20, 5).await;
    hook.wait_for_all(&first, Duration::from_secs(60)).await;
    let mine = |rt: &orderhub_events::EventsRuntime| {
        rt.running()
            .into_iter()
            .filter(|n| n.ends_with(tenant.as_str()))
            .count()
    };
    // Each lease is held by exactly one of the two.
    assert_eq!(
        mine(&a) + mine(&b),
        2,
        "a: {:?} b: {:?}",
        a.running(),
        b.running()
    );
    assert_eq!(stream_count(&tenant).await, first.len() as u64);
    // Every event went out once: none was relayed by both.
    assert_eq!(hook.duplicates(), 0);
    let relay = format!("relay/{}", tenant.as_str());
    let survivor = if a.running().contains(&relay) {
        a.kill();
        b
    } else {
        b.kill();
        a
    };
    let second = write_events(&other, &tenant, 20, 5).await;
    hook.wait_for_all(&second, Duration::from_secs(60)).await;
    assert_eq!(mine(&survivor), 2, "{:?}", survivor.running());
    assert_eq!(
        stream_count(&tenant).await,
        (first.len() + second.len()) as u64
    );
    // The survivor started from the positions the first holder stored with its lease: each
    // order's events still reached the subscriber in version order.
    hook.assert_in_version_order_per_aggregate();
    let dispatch = leases_of(&ts.store, &tenant)
        .await
        .into_iter()
        .find(|l| l.name.starts_with("dispatch/"))
        .expect("the dispatcher's lease");
    assert_eq!(
        dispatch.parts.len(),
        EventsConfig::default().nats_partitions as usize,
        "one stored position per stream partition: {dispatch:?}"
    );
    survivor.stop().await;
}

/// NATS goes away: orders are still accepted (the outbox keeps the events); when it returns the
/// backlog drains and the subscriber gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_then_back_backlog_drains() {
    if nats_server_bin().is_none() {
        return;
    }
    let Some(ts) = open("sqlite") else { return };
    let mut server = OwnNats::start();
    let tenant = new_tenant(&ts.store).await;
    let hook = Subscriber::start(FailEvery::Never).await;
    subscribe(&ts.store, &tenant, &hook.url, &["*"]).await;
    let cfg = EventsConfig {
        nats_url: Some(server.url()),
        ..fast()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let before = write_events(&ts.store, &tenant, 5, 4).await;
    hook.wait_for_all(&before, Duration::from_secs(30)).await;
    server.stop();
    // Writes go on while NATS is down.
    let down_for = down_secs();
    let during = write_events_over(&ts.store, &tenant, 20, 4, Duration::from_secs(down_for)).await;
    assert_eq!(
        hook.count_of(&during),
        0,
        "nothing can be delivered through a dead NATS"
    );
    server.restart();
    hook.wait_for_all(&during, Duration::from_secs(90)).await;
    rt.stop().await;
}

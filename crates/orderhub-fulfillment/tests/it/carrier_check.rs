//! The carriers' side of status reconciliation against the carrier simulators (ZTO), on SQLite
//! and PostgreSQL: each kind of difference the simulator can show is raised as
//! `carrier_status_mismatch` with both views, counted once in the month's differences (with its
//! carrier), not again while it lasts, and lifted by the check that finds the two agreeing; what
//! the carrier says that we missed is applied instead of raised. The clock is a `ManualClock`.

use super::*;
use orderhub_core::ports::ManualClock;
use orderhub_domain::carrier_check::CARRIER_STATUS_MISMATCH;
use orderhub_fulfillment::reconcile::{self, CarrierCheckConfig, CarrierCheckReport};

/// Every order due at every round: no settling, no interval.
fn eager() -> CarrierCheckConfig {
    CarrierCheckConfig {
        interval: chrono::Duration::zero(),
        settle: chrono::Duration::zero(),
        ..CarrierCheckConfig::default()
    }
}

/// A shipped ZTO order of a new tenant, and fulfillment reading the time from a manual clock an
/// hour ahead (moves made at the real time are settled at once).
async fn setup(
    env: &orderhub_store::testing::TestStore,
) -> (
    Fulfillment,
    fleet::Fleet,
    TenantId,
    OrderId,
    Arc<ManualClock>,
) {
    let t = tenant(&env.store).await;
    let (f, fleet, id) = shipped_by_hand(env, &t, sim_config()).await;
    let clock = Arc::new(ManualClock::new(Utc::now() + chrono::Duration::hours(1)));
    (f.with_clock(clock.clone()), fleet, t, id, clock)
}

async fn check(f: &Fulfillment, t: &TenantId) -> CarrierCheckReport {
    let deadline = Instant::now() + Duration::from_secs(60);
    reconcile::check_due(f, &eager(), t, f.clock.now(), deadline)
        .await
        .unwrap()
}

/// The month's differences of `kind` counted for the tenant, and with which carrier.
async fn counted(f: &Fulfillment, t: &TenantId, kind: &str) -> Vec<(String, u64)> {
    let (t, now) = (t.clone(), f.clock.now());
    let day = chrono::Duration::days(1);
    let rows = f
        .store
        .read(move |r| r.status_difference_counts(&t, now - day, now + day, None))
        .await
        .unwrap();
    rows.into_iter()
        .filter(|r| r.kind == kind)
        .map(|r| (r.carrier, r.count))
        .collect()
}

/// The raised exception's detail (the last `exception.raised` of the order).
async fn raised_detail(store: &Store, t: &TenantId) -> serde_json::Value {
    let raised = events_of(store, t, "exception.raised").await;
    let last = raised
        .into_iter()
        .rev()
        .find(|e| e["exception"] == CARRIER_STATUS_MISMATCH)
        .expect("an exception.raised for the carrier check");
    last["detail"].clone()
}

/// Raised once, counted once, still there at the next check without a second count.
async fn assert_raised_once(f: &Fulfillment, t: &TenantId, id: OrderId, kind: &str) {
    let o = get(&f.store, t, id).await;
    assert!(
        o.has_exception(CARRIER_STATUS_MISMATCH),
        "{:?}",
        o.exceptions
    );
    let detail = raised_detail(&f.store, t).await;
    assert_eq!(detail["kind"], kind);
    assert_eq!(detail["ours"], o.status.as_str());
    assert!(detail["remedy"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(counted(f, t, kind).await, vec![("zto".to_owned(), 1)]);
    let again = check(f, t).await;
    assert_eq!((again.checked, again.raised), (1, 0), "{again:?}");
    assert_eq!(counted(f, t, kind).await, vec![("zto".to_owned(), 1)]);
}

async fn assert_lifted(f: &Fulfillment, t: &TenantId, id: OrderId, kind: &str) {
    let r = check(f, t).await;
    assert_eq!((r.lifted, r.raised), (1, 0), "{r:?}");
    let o = get(&f.store, t, id).await;
    assert!(
        !o.has_exception(CARRIER_STATUS_MISMATCH),
        "{:?}",
        o.exceptions
    );
    let resolved = events_of(&f.store, t, "exception.resolved").await;
    assert!(
        resolved
            .iter()
            .any(|e| e["exception"] == CARRIER_STATUS_MISMATCH)
    );
    // The month keeps what was found.
    assert_eq!(counted(f, t, kind).await, vec![("zto".to_owned(), 1)]);
}

/// Delivered here (by hand, the API's move), the carrier has not even picked it up:
/// `delivered_here_not_by_carrier`; lifted once the carrier delivers it too.
async fn delivered_here_not_by_the_carrier(backend: &str) {
    let Some(env) = open(backend) else { return };
    let (f, fleet, t, id, _) = setup(&env).await;
    let actor = system_actor(&t, "test");
    env.store
        .write(0, move |tx| {
            usecases::transition(tx, &actor, id, &Command::Deliver, Utc::now())
        })
        .await
        .unwrap();
    let r = check(&f, &t).await;
    assert_eq!((r.checked, r.raised, r.repaired), (1, 1, 0), "{r:?}");
    assert_raised_once(&f, &t, id, "delivered_here_not_by_carrier").await;
    assert_eq!(raised_detail(&env.store, &t).await["carrier"], "label_only");
    // The carrier's tracking runs to delivery.
    let tracking = get(&env.store, &t, id)
        .await
        .fulfillment
        .tracking_no
        .unwrap();
    fleet.handles[&CarrierKind::Zto].tracks.deliver(&tracking);
    assert_lifted(&f, &t, id, "delivered_here_not_by_carrier").await;
}

/// The carrier's last scan is a problem (refused, returned) while we show the parcel shipped:
/// `problem_at_carrier`; lifted once the problem is cleared.
async fn a_problem_at_the_carrier(backend: &str) {
    let Some(env) = open(backend) else { return };
    let (f, fleet, t, id, _) = setup(&env).await;
    let zto = fleet.handles[&CarrierKind::Zto].clone();
    let tracking = get(&env.store, &t, id)
        .await
        .fulfillment
        .tracking_no
        .unwrap();
    // Before: the label only — no difference (a parcel waiting for its pickup is the watchdog's).
    let r = check(&f, &t).await;
    assert_eq!((r.checked, r.raised), (1, 0), "{r:?}");
    zto.tracks.problem(&tracking);
    let r = check(&f, &t).await;
    assert_eq!(r.raised, 1, "{r:?}");
    assert_raised_once(&f, &t, id, "problem_at_carrier").await;
    assert_eq!(raised_detail(&env.store, &t).await["carrier"], "problem");
    zto.tracks.clear(&tracking);
    assert_lifted(&f, &t, id, "problem_at_carrier").await;
}

/// Shipped with a tracking number the carrier never issued (a label printed elsewhere, never
/// handed over): nothing until 48 hours after shipping, then `no_carrier_record`; lifted once the
/// waybill is one the carrier knows.
async fn no_record_at_the_carrier(backend: &str) {
    let Some(env) = open(backend) else { return };
    let (f, _fleet, t, known, clock) = setup(&env).await;
    let id = paid_orders(&env.store, &t, 1).await[0];
    for _ in 0..2 {
        f.step(&t, id).await.unwrap();
    }
    let actor = system_actor(&t, "test");
    env.store
        .write(0, move |tx| {
            let ship = Command::Ship {
                carrier: orderhub_domain::ids::CarrierCode::parse("zto").unwrap(),
                tracking_no: "79999999999".into(),
                logistics_no: "L1".into(),
            };
            usecases::transition(tx, &actor, id, &ship, Utc::now())
        })
        .await
        .unwrap();
    let r = check(&f, &t).await;
    assert_eq!((r.checked, r.raised, r.failed), (2, 0, 0), "{r:?}");
    clock.advance(chrono::Duration::hours(48));
    let r = check(&f, &t).await;
    assert_eq!(r.raised, 1, "{r:?}");
    assert_raised_once_of_two(&f, &t, id).await;
    // The waybill is corrected to one the carrier issued (the other order's, here).
    let good = get(&env.store, &t, known).await.fulfillment.tracking_no;
    let t2 = t.clone();
    env.store
        .write(0, move |tx| {
            let mut o = tx.order_get(&t2, id)?.unwrap();
            o.fulfillment.tracking_no = good.clone();
            o.version += 1;
            tx.order_update(&o)?;
            Ok(())
        })
        .await
        .unwrap();
    let r = check(&f, &t).await;
    assert_eq!(r.lifted, 1, "{r:?}");
    assert!(
        !get(&env.store, &t, id)
            .await
            .has_exception(CARRIER_STATUS_MISMATCH)
    );
}

/// As [`assert_raised_once`], with a second order (that agrees) checked beside it.
async fn assert_raised_once_of_two(f: &Fulfillment, t: &TenantId, id: OrderId) {
    let o = get(&f.store, t, id).await;
    assert!(
        o.has_exception(CARRIER_STATUS_MISMATCH),
        "{:?}",
        o.exceptions
    );
    let detail = raised_detail(&f.store, t).await;
    assert_eq!(detail["kind"], "no_carrier_record");
    assert_eq!(detail["carrier"], "no_record");
    assert_eq!(detail["carrier_says"], "no event", "{detail}");
    let kind = "no_carrier_record";
    assert_eq!(counted(f, t, kind).await, vec![("zto".to_owned(), 1)]);
    let again = check(f, t).await;
    assert_eq!(again.raised, 0, "{again:?}");
    assert_eq!(counted(f, t, kind).await, vec![("zto".to_owned(), 1)]);
}

/// A delivery the carrier reported that we missed (no push, no poll) is applied, not raised:
/// `repaired`, the order delivered, nothing counted.
async fn a_missed_delivery_is_applied(backend: &str) {
    let Some(env) = open(backend) else { return };
    let (f, fleet, t, id, _) = setup(&env).await;
    let tracking = get(&env.store, &t, id)
        .await
        .fulfillment
        .tracking_no
        .unwrap();
    fleet.handles[&CarrierKind::Zto].tracks.deliver(&tracking);
    let r = check(&f, &t).await;
    assert_eq!((r.checked, r.repaired, r.raised), (1, 1, 0), "{r:?}");
    let o = get(&env.store, &t, id).await;
    assert_eq!(o.status, Status::Delivered);
    assert!(!o.has_exception(CARRIER_STATUS_MISMATCH));
    let (t2, now) = (t.clone(), f.clock.now());
    let rows = env
        .store
        .read(move |r| r.status_difference_counts(&t2, now - chrono::Duration::days(1), now, None))
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
}

/// The check spends the carrier's tracking quota (the poll's own): with none left, nothing is
/// called and the order waits for a later round.
async fn the_check_spends_the_pollers_quota() {
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let cfg = FulfillmentConfig {
        shared_track_per_minute: 1,
        ..sim_config()
    };
    let (f, fleet, _) = shipped_by_hand(&env, &t, cfg).await;
    let zto = fleet.handles[&CarrierKind::Zto].clone();
    let carriers = f.carriers_of(&t).await.unwrap().unwrap();
    assert!(carriers.take_track_call(CarrierKind::Zto), "the one call");
    let calls = zto.stats.snapshot().calls;
    let r = reconcile::check_due(
        &f,
        &eager(),
        &t,
        Utc::now() + chrono::Duration::hours(1),
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!((r.checked, r.deferred), (0, 1), "{r:?}");
    assert_eq!(zto.stats.snapshot().calls, calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_delivered_here_not_by_the_carrier_sqlite() {
    delivered_here_not_by_the_carrier("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_delivered_here_not_by_the_carrier_postgres() {
    delivered_here_not_by_the_carrier("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_a_problem_at_the_carrier_sqlite() {
    a_problem_at_the_carrier("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_a_problem_at_the_carrier_postgres() {
    a_problem_at_the_carrier("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_no_record_at_the_carrier_sqlite() {
    no_record_at_the_carrier("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_no_record_at_the_carrier_postgres() {
    no_record_at_the_carrier("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_a_missed_delivery_is_applied_sqlite() {
    a_missed_delivery_is_applied("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_a_missed_delivery_is_applied_postgres() {
    a_missed_delivery_is_applied("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_check_spends_the_pollers_quota() {
    the_check_spends_the_pollers_quota().await;
}

//! The drift reconciler against the channel simulators on both backends (issue 20): a shelf
//! edited in the channel's back office is found, shown and repaired by a push of the current
//! want; a drift that comes back after a repair is named recurring; a paused listing's drift is
//! reported, never repaired; a channel refusing the read for a while creates no drift.

use super::stock_push::{actor, far, get, list, pusher, setup};
use chrono::Utc;
use orderhub_channels::ChannelKind;
use orderhub_channels::sim::SimHandle;
use orderhub_core::listings::{self, DriftRules, ListingChange};
use orderhub_core::ports::{CheckScope, ListingRecord};
use orderhub_domain::TenantId;
use orderhub_intake::reconcile::{ReconcileConfig, ReconcileReport, Reconciler};
use orderhub_store::Store;
use uuid::Uuid;

fn reconciler(store: &Store, rules: DriftRules) -> Reconciler {
    Reconciler::new(
        store.clone(),
        ReconcileConfig {
            rules,
            ..ReconcileConfig::default()
        },
        orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
    )
}

/// `POST /v1/listings/reconcile` for every listing of the tenant, then one reconciler round.
async fn reconcile_now(store: &Store, t: &TenantId, r: &mut Reconciler) -> ReconcileReport {
    let a = actor(t);
    let n = store
        .write_alone(0, move |tx| {
            listings::request_reconcile(tx, &a, &CheckScope::default(), Utc::now())
        })
        .await
        .unwrap();
    assert!(n > 0, "nothing to reconcile");
    r.reconcile_due(t, far()).await.unwrap()
}

async fn pause(store: &Store, t: &TenantId, id: Uuid) {
    let a = actor(t);
    store
        .write_alone(0, move |tx| {
            listings::update_listing(
                tx,
                &a,
                id,
                &ListingChange {
                    paused: Some(true),
                    fixed_quantity: None,
                },
                Utc::now(),
            )
        })
        .await
        .unwrap()
        .unwrap();
}

fn drift(l: &ListingRecord) -> (i64, Option<i64>, bool) {
    (l.drift.units, l.drift.seen_qty, l.drift.recurring)
}

/// Pushed once, the shelf shows what was acknowledged.
async fn pushed(store: &Store, t: &TenantId, sim: &SimHandle, item: &str, sku: &str, q: i64) {
    pusher(store).push_due(t, far()).await.unwrap();
    assert_eq!(sim.shelf(item, sku), Some(q));
}

async fn the_reconciler_finds_a_drift_and_repairs_it(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = &env.store;
    let (sim, row) = setup(store, ChannelKind::Taobao, 10).await;
    let t = row.tenant_id.clone();
    let l = list(store, &row, "600001", "5001", "TEA").await;
    pushed(store, &t, &sim, "600001", "5001", 10).await;
    let mut r = reconciler(store, DriftRules::default());

    // In sync: read and judged, nothing found, nothing pushed.
    let rep = reconcile_now(store, &t, &mut r).await;
    assert_eq!((rep.reads, rep.judged, rep.found), (1, 1, 0), "{rep:?}");
    let now = get(store, &t, l.listing_id).await;
    assert_eq!(drift(&now), (0, Some(10), false));
    assert!(now.drift.seen_at.is_some() && now.drift.check_error.is_none());
    assert!(!now.is_due());

    // The seller raises the shelf in Taobao's back office: 25 shown for 10 in stock.
    sim.set_shelf("600001", "5001", 25);
    let rep = reconcile_now(store, &t, &mut r).await;
    assert_eq!((rep.found, rep.repaired), (1, 1), "{rep:?}");
    let found = get(store, &t, l.listing_id).await;
    assert_eq!(drift(&found), (15, Some(25), false));
    assert_eq!(found.drift.count, 1);
    assert!(found.drift.first_seen_at.is_some() && found.drift.repaired_at.is_some());
    assert!(found.is_due(), "the repair is a push of the current want");
    assert_eq!(found.want_qty, 10);
    let units = store
        .read({
            let t = t.clone();
            move |r| r.listing_drift_units(&t)
        })
        .await
        .unwrap();
    assert_eq!(units, vec![("taobao".to_string(), 15)]);

    // The push puts the shelf right; the next read finds it so and clears the drift.
    pusher(store).push_due(&t, far()).await.unwrap();
    assert_eq!(sim.shelf("600001", "5001"), Some(10));
    reconcile_now(store, &t, &mut r).await;
    let fixed = get(store, &t, l.listing_id).await;
    assert_eq!(drift(&fixed), (0, Some(10), false));
    assert!(fixed.drift.first_seen_at.is_none());
    assert_eq!(fixed.drift.count, 1, "the history stays");
}

/// Youzan's read (`youzan.item.get`, the whole item): a SKU's drift and an item without specs
/// in sync, then repaired by the push.
async fn youzan_shelves_are_read_back_and_repaired(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = &env.store;
    let (sim, row) = setup(store, ChannelKind::Youzan, 10).await;
    let t = row.tenant_id.clone();
    let sku_l = list(store, &row, "470000012", "36812345", "TEA").await;
    let plain = list(store, &row, "470000013", "", "TEA").await;
    pusher(store).push_due(&t, far()).await.unwrap();
    assert_eq!(sim.shelf("470000013", ""), Some(10));
    pushed(store, &t, &sim, "470000012", "36812345", 10).await;
    let mut r = reconciler(store, DriftRules::default());
    let rep = reconcile_now(store, &t, &mut r).await;
    assert_eq!((rep.reads, rep.found), (2, 0), "{rep:?}");
    sim.set_shelf("470000012", "36812345", 25);
    let rep = reconcile_now(store, &t, &mut r).await;
    assert_eq!((rep.found, rep.repaired), (1, 1), "{rep:?}");
    assert_eq!(
        drift(&get(store, &t, sku_l.listing_id).await),
        (15, Some(25), false)
    );
    assert_eq!(
        drift(&get(store, &t, plain.listing_id).await),
        (0, Some(10), false)
    );
    pusher(store).push_due(&t, far()).await.unwrap();
    assert_eq!(sim.shelf("470000012", "36812345"), Some(10));
    reconcile_now(store, &t, &mut r).await;
    assert_eq!(
        drift(&get(store, &t, sku_l.listing_id).await),
        (0, Some(10), false)
    );
}

async fn a_drift_that_comes_back_after_a_repair_is_recurring(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = &env.store;
    let (sim, row) = setup(store, ChannelKind::Pdd, 10).await;
    let t = row.tenant_id.clone();
    let l = list(store, &row, "900001", "70001", "TEA").await;
    pushed(store, &t, &sim, "900001", "70001", 10).await;
    let mut r = reconciler(store, DriftRules::default());

    // A shelf showing fewer units may be a sale on the channel not taken in yet: found, read
    // again after the grace, not repaired yet.
    sim.set_shelf("900001", "70001", 7);
    let rep = reconcile_now(store, &t, &mut r).await;
    assert_eq!((rep.found, rep.repaired), (1, 0), "{rep:?}");
    let short = get(store, &t, l.listing_id).await;
    assert_eq!(drift(&short), (-3, Some(7), false));
    assert!(!short.is_due());
    assert_eq!(
        short.drift.check_at,
        short.drift.first_seen_at.unwrap() + DriftRules::default().short_grace,
        "read again when the grace is over"
    );
    // Still short once the grace is over: repaired.
    let mut after_grace = reconciler(
        store,
        DriftRules {
            short_grace: chrono::Duration::zero(),
            ..DriftRules::default()
        },
    );
    let rep = reconcile_now(store, &t, &mut after_grace).await;
    assert_eq!(
        (rep.found, rep.repaired),
        (0, 1),
        "the same drift, repaired"
    );
    pushed(store, &t, &sim, "900001", "70001", 10).await;
    reconcile_now(store, &t, &mut r).await;
    assert_eq!(
        drift(&get(store, &t, l.listing_id).await),
        (0, Some(10), false)
    );

    // The seller edits the shelf again: the drift is back, named recurring, repaired again.
    sim.set_shelf("900001", "70001", 40);
    let rep = reconcile_now(store, &t, &mut r).await;
    assert_eq!((rep.found, rep.repaired), (1, 1), "{rep:?}");
    let back = get(store, &t, l.listing_id).await;
    assert_eq!(drift(&back), (30, Some(40), true));
    assert_eq!(back.drift.count, 2);
    pushed(store, &t, &sim, "900001", "70001", 10).await;
}

async fn a_paused_listing_s_drift_is_reported_not_repaired(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = &env.store;
    let (sim, row) = setup(store, ChannelKind::Jd, 10).await;
    let t = row.tenant_id.clone();
    let l = list(store, &row, "100001", "200001", "TEA").await;
    pushed(store, &t, &sim, "", "200001", 10).await;
    pause(store, &t, l.listing_id).await;
    sim.set_shelf("", "200001", 99);
    let mut r = reconciler(store, DriftRules::default());
    let rep = reconcile_now(store, &t, &mut r).await;
    assert_eq!((rep.found, rep.repaired), (1, 0), "{rep:?}");
    let paused = get(store, &t, l.listing_id).await;
    assert_eq!(drift(&paused), (89, Some(99), false));
    assert!(paused.drift.repaired_at.is_none());
    assert_eq!(
        paused.want_version, paused.pushed_version,
        "no push scheduled"
    );
    pusher(store).push_due(&t, far()).await.unwrap();
    assert_eq!(
        sim.shelf("", "200001"),
        Some(99),
        "the seller's figure stays"
    );
}

async fn a_channel_refusing_the_read_for_a_while_creates_no_drift(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = env.store.clone();
    let (sim, mut row) = setup(&store, ChannelKind::Taobao, 10).await;
    let t = row.tenant_id.clone();
    let l = list(&store, &row, "600001", "5001", "TEA").await;
    pushed(&store, &t, &sim, "600001", "5001", 10).await;
    let mut r = reconciler(&store, DriftRules::default());
    // The seller revokes the app: every read is refused (the token cannot be renewed).
    sim.revoke_refresh_token();
    sim.expire_access_token();
    for _ in 0..3 {
        let rep = reconcile_now(&store, &t, &mut r).await;
        assert_eq!((rep.failed, rep.found, rep.judged), (1, 0, 0), "{rep:?}");
    }
    let refused = get(&store, &t, l.listing_id).await;
    assert_eq!(drift(&refused), (0, None, false), "a refusal is no reading");
    assert!(refused.drift.check_error.is_some());
    assert!(!refused.is_due(), "nothing pushed for a refusal");
    // Authorized again: the read goes through and the shelf is right.
    let (access, refresh) = sim.reauthorize();
    row.access_token = access;
    row.token.refresh_token = refresh;
    row.token.problem = None;
    let r2 = row.clone();
    store
        .write(0, move |tx| Ok(tx.channel_shop_put(&r2)?))
        .await
        .unwrap();
    let rep = reconcile_now(&store, &t, &mut r).await;
    assert_eq!((rep.judged, rep.found), (1, 0), "{rep:?}");
    let ok = get(&store, &t, l.listing_id).await;
    assert_eq!(drift(&ok), (0, Some(10), false));
    assert!(ok.drift.check_error.is_none());
}

/// The running worker (what `orderhub serve` starts): a reconcile request is read in its next
/// round and the shelf edited in the back office is put right, with no call made by the test.
async fn the_running_worker_reconciles_on_request_and_repairs_the_shelf(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = env.store.clone();
    let (sim, row) = setup(&store, ChannelKind::Taobao, 10).await;
    let t = row.tenant_id.clone();
    let l = list(&store, &row, "600001", "5001", "TEA").await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(orderhub_intake::stock_push::run(
        store.clone(),
        orderhub_intake::stock_push::StockPushConfig::default(),
        stop_rx,
    ));
    super::until("the first push", || async {
        sim.shelf("600001", "5001") == Some(10)
    })
    .await;
    sim.set_shelf("600001", "5001", 50);
    let a = actor(&t);
    let scope = CheckScope {
        listing_id: Some(l.listing_id),
        ..CheckScope::default()
    };
    store
        .write_alone(0, move |tx| {
            listings::request_reconcile(tx, &a, &scope, Utc::now())
        })
        .await
        .unwrap();
    super::until("the drift found and repaired", || async {
        let now = get(&store, &t, l.listing_id).await;
        now.drift.count == 1 && sim.shelf("600001", "5001") == Some(10)
    })
    .await;
    let found = get(&store, &t, l.listing_id).await;
    assert!(found.drift.repaired_at.is_some(), "{:?}", found.drift);
    stop_tx.send(true).unwrap();
    worker.await.unwrap();
}

macro_rules! both {
    ($($name:ident),*) => {$(
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

both!(
    the_reconciler_finds_a_drift_and_repairs_it,
    a_drift_that_comes_back_after_a_repair_is_recurring,
    a_paused_listing_s_drift_is_reported_not_repaired,
    a_channel_refusing_the_read_for_a_while_creates_no_drift,
    the_running_worker_reconciles_on_request_and_repairs_the_shelf,
    youzan_shelves_are_read_back_and_repaired
);

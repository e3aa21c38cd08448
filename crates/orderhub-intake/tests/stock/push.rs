//! The stock push against the channel simulators on both backends (issue 20): what the shelf
//! shows follows sales, thresholds, kits, pauses and fixed quantities; changes made while a call
//! is slow coalesce into one more call with the latest quantity; a throttling channel and a
//! refused token are waited out, never dead-lettered.

use super::{creds, shop, until};
use chrono::Utc;
use orderhub_channels::ChannelKind;
use orderhub_channels::sim::{self, Knobs, SimHandle, SimSettings};
use orderhub_core::auth::{Principal, Role};
use orderhub_core::inventory as inv;
use orderhub_core::listings::{self, ListingChange, NewListing};
use orderhub_core::ports::{ChannelPolicy, ListingRecord, SkuRecord, WarehouseRecord};
use orderhub_core::usecases::Actor;
use orderhub_domain::ids::{Channel, WarehouseId};
use orderhub_domain::inventory::{AdjustmentReason, AllocationPolicy};
use orderhub_domain::{ShopId, Sku, TenantId};
use orderhub_intake::stock_push::{StockPushConfig, StockPusher};
use orderhub_store::{ChannelShopRow, Store};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub(super) fn actor(t: &TenantId) -> Actor {
    Actor {
        principal: Principal {
            tenant_id: t.clone(),
            key_id: "k".into(),
            key_name: "test".into(),
            role: Role::Admin,
            shops: None,
            pii_read: false,
        },
        request_id: "req".into(),
    }
}

pub(super) fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

pub(super) fn wh() -> WarehouseId {
    WarehouseId::parse("HZ").unwrap()
}

/// A simulator of `kind`, a shop on it, a warehouse, TEA and CUP with stock and kit GIFT.
pub(super) async fn setup(
    store: &Store,
    kind: ChannelKind,
    tea: i64,
) -> (SimHandle, ChannelShopRow) {
    let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 1, 1))
        .await
        .unwrap();
    let row = shop(store, kind, &url).await;
    let a = actor(&row.tenant_id);
    store
        .write(0, move |tx| {
            let now = Utc::now();
            inv::define_warehouse(
                tx,
                &a,
                &WarehouseRecord {
                    warehouse_id: wh(),
                    name: "HZ".into(),
                    priority: 0,
                    regions: vec![],
                    sender: None,
                    parcel_max_kg: None,
                },
                now,
            )?;
            for s in ["TEA", "CUP"] {
                let rec = SkuRecord {
                    sku: sku(s),
                    title: s.into(),
                    components: None,
                    weight_kg: None,
                };
                inv::define_sku(tx, &a, &rec, now)?;
            }
            let kit = SkuRecord {
                sku: sku("GIFT"),
                title: "gift".into(),
                components: Some(vec![(sku("TEA"), 2), (sku("CUP"), 1)]),
                weight_kg: None,
            };
            inv::define_sku(tx, &a, &kit, now)?;
            inv::receive(tx, &a, &sku("TEA"), &wh(), tea, None, now)?;
            inv::receive(tx, &a, &sku("CUP"), &wh(), 3, None, now)?;
            Ok(())
        })
        .await
        .unwrap();
    (handle, row)
}

pub(super) async fn list(
    store: &Store,
    row: &ChannelShopRow,
    item: &str,
    sku_id: &str,
    of: &str,
) -> ListingRecord {
    let a = actor(&row.tenant_id);
    let n = NewListing {
        channel: Channel::parse(&row.channel).unwrap(),
        shop_id: ShopId::parse(&row.shop_id).unwrap(),
        sku: sku(of),
        channel_item_id: item.into(),
        channel_sku_id: sku_id.into(),
        paused: false,
        fixed_quantity: None,
    };
    store
        .write(0, move |tx| {
            listings::create_listing(tx, &a, &n, Utc::now())
        })
        .await
        .unwrap()
        .unwrap()
}

pub(super) async fn adjust(store: &Store, t: &TenantId, s: &str, delta: i64) {
    let (a, s) = (actor(t), sku(s));
    store
        .write(0, move |tx| {
            inv::adjust(
                tx,
                &a,
                &s,
                &wh(),
                delta,
                AdjustmentReason::StockTake,
                Utc::now(),
            )
        })
        .await
        .unwrap();
}

pub(super) async fn get(store: &Store, t: &TenantId, id: Uuid) -> ListingRecord {
    let t = t.clone();
    store
        .read(move |r| r.listing(&t, id))
        .await
        .unwrap()
        .unwrap()
}

pub(super) fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

pub(super) fn pusher(store: &Store) -> StockPusher {
    StockPusher::new(store.clone(), StockPushConfig::default())
}

async fn every_kind_of_listing_reaches_its_shelf(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = &env.store;
    let (sim, row) = setup(store, ChannelKind::Taobao, 10).await;
    let t = row.tenant_id.clone();
    let plain = list(store, &row, "600001", "5001", "TEA").await;
    let kit = list(store, &row, "600002", "", "GIFT").await;
    let paused = list(store, &row, "600003", "5003", "TEA").await;
    let fixed = list(store, &row, "600004", "5004", "TEA").await;
    let a = actor(&t);
    let (pid, fid) = (paused.listing_id, fixed.listing_id);
    store
        .write(0, move |tx| {
            listings::update_listing(
                tx,
                &a,
                pid,
                &ListingChange {
                    paused: Some(true),
                    fixed_quantity: None,
                },
                Utc::now(),
            )?;
            listings::update_listing(
                tx,
                &a,
                fid,
                &ListingChange {
                    paused: None,
                    fixed_quantity: Some(Some(99)),
                },
                Utc::now(),
            )
        })
        .await
        .unwrap();
    let mut p = pusher(store);
    let r = p.push_due(&t, far()).await.unwrap();
    assert_eq!(r.failed, 0, "{r:?}");
    assert_eq!(sim.shelf("600001", "5001"), Some(10));
    assert_eq!(sim.shelf("600002", ""), Some(3), "min(10 / 2, 3 / 1)");
    assert_eq!(sim.shelf("600004", "5004"), Some(99), "the fixed quantity");
    // Paused before the first round: never sent.
    assert_eq!(sim.shelf("600003", "5003"), None, "paused: not pushed");
    let l = get(store, &t, plain.listing_id).await;
    assert_eq!(
        (l.pushed_qty, l.pushed_version, l.want_version),
        (Some(10), 1, 1)
    );

    // A sale lowers the shelf; the kit follows its components.
    adjust(store, &t, "TEA", -4).await;
    p.push_due(&t, far()).await.unwrap();
    assert_eq!(sim.shelf("600001", "5001"), Some(6));
    assert_eq!(sim.shelf("600002", ""), Some(3));
    assert_eq!(sim.shelf("600004", "5004"), Some(99));
    // A close threshold shows 0, and stock coming back reopens the shelf.
    let a = actor(&t);
    store
        .write(0, move |tx| {
            inv::set_channel_policy(
                tx,
                &a,
                &ChannelPolicy {
                    channel: Channel::parse("taobao").unwrap(),
                    allocation: AllocationPolicy::Shared,
                    safety_stock: 0,
                    close_below: 5,
                },
                Utc::now(),
            )
        })
        .await
        .unwrap();
    adjust(store, &t, "TEA", -2).await;
    p.push_due(&t, far()).await.unwrap();
    assert_eq!(
        sim.shelf("600001", "5001"),
        Some(0),
        "closed at the threshold"
    );
    assert_eq!(
        sim.shelf("600002", ""),
        Some(0),
        "2 TEA make one kit, below the threshold"
    );
    adjust(store, &t, "TEA", 10).await;
    p.push_due(&t, far()).await.unwrap();
    assert_eq!(sim.shelf("600001", "5001"), Some(14), "reopened");
    assert_eq!(sim.shelf("600003", "5003"), None, "still paused");
    assert_eq!(sim.shelf("600004", "5004"), Some(99));
    assert!(
        get(store, &t, plain.listing_id).await.want_version
            <= get(store, &t, plain.listing_id).await.pushed_version
    );
    assert!(get(store, &t, kit.listing_id).await.last_error.is_none());
}

async fn changes_during_a_slow_call_coalesce_and_the_last_quantity_wins(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = env.store.clone();
    let (sim, row) = setup(&store, ChannelKind::Pdd, 100).await;
    let t = row.tenant_id.clone();
    let l = list(&store, &row, "900001", "70001", "TEA").await;
    sim.knobs.set(Knobs {
        latency_ms: 400,
        ..Knobs::default()
    });
    let calls_before = sim.stats.snapshot().calls;
    let (s2, t2) = (store.clone(), t.clone());
    let first = tokio::spawn(async move { pusher(&s2).push_due(&t2, far()).await.unwrap() });
    until("the first call is out", || async {
        sim.stats.snapshot().calls > calls_before
    })
    .await;
    for _ in 0..20 {
        adjust(&store, &t, "TEA", -1).await;
    }
    let r = first.await.unwrap();
    assert_eq!(r.calls, 1);
    let mid = get(&store, &t, l.listing_id).await;
    assert_eq!(
        mid.pushed_qty,
        Some(100),
        "the first call's quantity, acknowledged"
    );
    assert!(
        mid.want_version > mid.pushed_version,
        "still due: the want moved during the call"
    );
    sim.knobs.set(Knobs::default());
    let r = pusher(&store).push_due(&t, far()).await.unwrap();
    assert_eq!(r.calls, 1, "one more call for twenty changes");
    assert_eq!(
        sim.shelf("900001", "70001"),
        Some(80),
        "the last quantity wins"
    );
    assert_eq!(sim.stock_calls(), 2);
    let done = get(&store, &t, l.listing_id).await;
    assert_eq!(
        (done.pushed_qty, done.pushed_version),
        (Some(80), done.want_version)
    );
}

async fn a_throttling_channel_and_a_refused_token_are_waited_out(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = env.store.clone();
    let (sim, mut row) = setup(&store, ChannelKind::Jd, 10).await;
    let t = row.tenant_id.clone();
    let l = list(&store, &row, "100001", "200001", "TEA").await;
    let mut p = pusher(&store);
    // Throttled: the first call takes the bucket's only token, the next is refused.
    sim.knobs.set(Knobs {
        throttle_per_sec: 0.001,
        ..Knobs::default()
    });
    p.push_due(&t, far()).await.unwrap();
    assert_eq!(sim.shelf("", "200001"), Some(10));
    adjust(&store, &t, "TEA", -3).await;
    let r = p.push_due(&t, far()).await.unwrap();
    assert_eq!(r.throttled, 1, "{r:?}");
    let waiting = get(&store, &t, l.listing_id).await;
    assert_eq!(waiting.attempts, 1);
    assert!(
        waiting
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("throttled"))
    );
    assert_eq!(sim.shelf("", "200001"), Some(10));
    // The channel recovers: pushed once the backoff (≤ 1 s) is over.
    sim.knobs.set(Knobs::default());
    push_until(&mut p, &t, || sim.shelf("", "200001") == Some(7)).await;
    assert_eq!(get(&store, &t, l.listing_id).await.attempts, 0);

    // The token expires: renewed through the channel's token call, the push goes through.
    sim.expire_access_token();
    adjust(&store, &t, "TEA", -1).await;
    p.push_due(&t, far()).await.unwrap();
    assert_eq!(sim.shelf("", "200001"), Some(6));
    // The seller revokes the app: every push fails (kept, not dead-lettered) until the shop is
    // authorized again.
    sim.revoke_refresh_token();
    sim.expire_access_token();
    adjust(&store, &t, "TEA", -1).await;
    let r = p.push_due(&t, far()).await.unwrap();
    assert_eq!(r.failed, 1, "{r:?}");
    let refused = get(&store, &t, l.listing_id).await;
    assert!(refused.last_error.is_some() && refused.want_version > refused.pushed_version);
    let (access, refresh) = sim.reauthorize();
    row.access_token = access;
    row.token.refresh_token = refresh;
    row.token.problem = None;
    let r2 = row.clone();
    store
        .write(0, move |tx| Ok(tx.channel_shop_put(&r2)?))
        .await
        .unwrap();
    push_until(&mut p, &t, || sim.shelf("", "200001") == Some(5)).await;
}

/// WeChat Channels and Youzan take whole quantities (`diff_type` 3, `type` 0): their shelves follow
/// sales like the others'. Kuaishou's call takes a difference only: refused without a call, the
/// reason kept on the listing.
async fn wechat_and_youzan_shelves_follow_and_kuaishou_says_why_not(backend: &str) {
    let Some(env) = orderhub_store::testing::open(backend) else {
        return;
    };
    let store = &env.store;
    for (kind, item, sku_id) in [
        (ChannelKind::Wechat, "324545", "9328425"),
        (ChannelKind::Youzan, "470000012", "36812345"),
        (ChannelKind::Youzan, "470000013", ""),
    ] {
        let (sim, row) = setup(store, kind, 10).await;
        let t = row.tenant_id.clone();
        let l = list(store, &row, item, sku_id, "TEA").await;
        let mut p = pusher(store);
        let r = p.push_due(&t, far()).await.unwrap();
        assert_eq!(r.failed, 0, "{kind}: {r:?}");
        assert_eq!(sim.shelf(item, sku_id), Some(10), "{kind}");
        adjust(store, &t, "TEA", -4).await;
        p.push_due(&t, far()).await.unwrap();
        assert_eq!(sim.shelf(item, sku_id), Some(6), "{kind}");
        let done = get(store, &t, l.listing_id).await;
        assert_eq!(done.pushed_qty, Some(6), "{kind}");
        assert!(done.last_error.is_none(), "{kind}");
    }
    let (sim, row) = setup(store, ChannelKind::Kuaishou, 10).await;
    let t = row.tenant_id.clone();
    let l = list(store, &row, "5201314", "88001", "TEA").await;
    let r = pusher(store).push_due(&t, far()).await.unwrap();
    assert_eq!(r.failed, 1, "{r:?}");
    assert_eq!(sim.stock_calls(), 0, "no call sent");
    let refused = get(store, &t, l.listing_id).await;
    assert!(
        refused
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("not_supported") && e.contains("difference")),
        "{:?}",
        refused.last_error
    );
    assert_eq!(refused.pushed_qty, None);
}

/// Runs rounds (20 s at most) until `done` holds: backoffs are under a second here.
async fn push_until(p: &mut StockPusher, t: &TenantId, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the shelf never got there"
        );
        p.push_due(t, far()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    every_kind_of_listing_reaches_its_shelf,
    changes_during_a_slow_call_coalesce_and_the_last_quantity_wins,
    a_throttling_channel_and_a_refused_token_are_waited_out,
    wechat_and_youzan_shelves_follow_and_kuaishou_says_why_not
);

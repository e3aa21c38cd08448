//! Listings (issue 20) on both backends: what a shelf should show follows every stock movement in
//! its transaction, and the push state records only what the channel acknowledged.

use crate::backend::*;
use chrono::{DateTime, Duration, Utc};
use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::inventory::{self as inv, ReserveInput};
use orderhub_core::listings::{self, ListingChange, NewListing};
use orderhub_core::ports::{ChannelPolicy, ListingRecord, SkuRecord, WarehouseRecord};
use orderhub_domain::ids::{Channel, WarehouseId};
use orderhub_domain::inventory::{AllocationPolicy, DeductionMode};
use orderhub_domain::{ShopId, Sku};
use orderhub_store::ListingFilter;
use uuid::Uuid;

conformance!(
    a_sale_lowers_the_shelf_and_an_acknowledgement_records_what_was_sent,
    a_channel_at_its_threshold_wants_zero_and_gets_stock_back_when_it_returns,
    a_kit_listing_follows_its_scarcest_component,
    a_paused_listing_is_left_alone_and_a_fixed_quantity_wins,
    one_channel_item_is_listed_once_and_lists_filter_and_page,
    several_movements_in_one_transaction_leave_the_last_quantity,
);

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// A tenant with one warehouse, SKUs TEA and CUP, kit GIFT (2 TEA + 1 CUP), and `stock`.
async fn seed(ts: &TestStore, tea: i64, cup: i64) {
    seed_tenant(&ts.store, "acme").await;
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let now = t0();
            let wh = WarehouseId::parse("HZ").unwrap();
            inv::define_warehouse(
                tx,
                &a,
                &WarehouseRecord {
                    warehouse_id: wh.clone(),
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
            for (s, q) in [("TEA", tea), ("CUP", cup)] {
                if q > 0 {
                    inv::receive(tx, &a, &sku(s), &wh, q, None, now)?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
}

fn new(channel: &str, item: &str, s: &str) -> NewListing {
    NewListing {
        channel: Channel::parse(channel).unwrap(),
        shop_id: ShopId::parse("shop-1").unwrap(),
        sku: sku(s),
        channel_item_id: item.into(),
        channel_sku_id: String::new(),
        paused: false,
        fixed_quantity: None,
    }
}

async fn list(ts: &TestStore, n: NewListing) -> Result<Option<ListingRecord>, CoreError> {
    let a = actor("acme", Role::Ops);
    ts.store
        .write(0, move |tx| listings::create_listing(tx, &a, &n, t0()))
        .await
}

async fn get(ts: &TestStore, id: Uuid) -> ListingRecord {
    ts.store
        .read(move |r| r.listing(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap()
}

/// Moves stock of `s` by `delta` (an adjustment) at `t0`.
async fn adjust(ts: &TestStore, s: &str, delta: i64) {
    let (a, s) = (actor("acme", Role::Admin), sku(s));
    ts.store
        .write(0, move |tx| {
            inv::adjust(
                tx,
                &a,
                &s,
                &WarehouseId::parse("HZ").unwrap(),
                delta,
                orderhub_domain::inventory::AdjustmentReason::StockTake,
                t0(),
            )
        })
        .await
        .unwrap();
}

async fn sell(ts: &TestStore, s: &str, n: u32) {
    let (a, s) = (actor("acme", Role::Admin), sku(s));
    ts.store
        .write(0, move |tx| {
            inv::reserve(
                tx,
                &a,
                &ReserveInput {
                    reference: format!("order-{}", Uuid::now_v7()),
                    lines: vec![(s.clone(), n)],
                    region: None,
                    warehouse: None,
                    mode: DeductionMode::AtPayment,
                    hold_for: None,
                },
                t0(),
            )
        })
        .await
        .unwrap();
}

async fn pushed(ts: &TestStore, id: Uuid, qty: i64, version: i64) -> bool {
    ts.store
        .write(0, move |tx| {
            Ok(tx.listing_pushed(&tenant("acme"), id, qty, version, t0())?)
        })
        .await
        .unwrap()
}

async fn due(ts: &TestStore) -> Vec<Uuid> {
    ts.store
        .read(|r| r.listings_due(&tenant("acme"), t0() + Duration::seconds(1), 100))
        .await
        .unwrap()
        .iter()
        .map(|l| l.listing_id)
        .collect()
}

async fn a_sale_lowers_the_shelf_and_an_acknowledgement_records_what_was_sent(ts: TestStore) {
    seed(&ts, 10, 0).await;
    let l = list(&ts, new("taobao", "600001", "TEA"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (l.want_qty, l.want_version),
        (10, 1),
        "a new listing wants the pool at once"
    );
    assert_eq!(due(&ts).await, vec![l.listing_id]);
    sell(&ts, "TEA", 3).await;
    let after = get(&ts, l.listing_id).await;
    assert_eq!(
        (after.want_qty, after.want_version),
        (7, 2),
        "the sale's transaction lowered it"
    );
    // The worker sent 10 (version 1) before the sale: acknowledged, the listing stays due.
    assert!(pushed(&ts, l.listing_id, 10, 1).await);
    let l1 = get(&ts, l.listing_id).await;
    assert_eq!((l1.pushed_qty, l1.pushed_version), (Some(10), 1));
    assert_eq!(
        due(&ts).await,
        vec![l.listing_id],
        "want 7 is not on the shelf yet"
    );
    assert!(pushed(&ts, l.listing_id, 7, 2).await);
    assert!(due(&ts).await.is_empty());
    // A late acknowledgement of the older version changes nothing.
    assert!(!pushed(&ts, l.listing_id, 10, 1).await);
    assert_eq!(get(&ts, l.listing_id).await.pushed_qty, Some(7));
    // A failure counts, keeps its error and waits.
    let id = l.listing_id;
    sell(&ts, "TEA", 1).await;
    ts.store
        .write(0, move |tx| {
            Ok(tx.listing_push_failed(
                &tenant("acme"),
                id,
                "throttled",
                t0() + Duration::seconds(30),
                t0(),
            )?)
        })
        .await
        .unwrap();
    let failed = get(&ts, id).await;
    assert_eq!(
        (failed.attempts, failed.last_error.as_deref()),
        (1, Some("throttled"))
    );
    assert!(due(&ts).await.is_empty(), "not before its next attempt");
    let failing = ts
        .store
        .read(|r| r.listings_failing(&tenant("acme")))
        .await
        .unwrap();
    assert_eq!(failing, 1);
    assert!(pushed(&ts, id, 6, 3).await);
    assert_eq!(
        get(&ts, id).await.attempts,
        0,
        "a success forgets the failures"
    );
}

async fn a_channel_at_its_threshold_wants_zero_and_gets_stock_back_when_it_returns(ts: TestStore) {
    seed(&ts, 10, 0).await;
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            inv::set_channel_policy(
                tx,
                &a,
                &ChannelPolicy {
                    channel: Channel::parse("douyin").unwrap(),
                    allocation: AllocationPolicy::Shared,
                    safety_stock: 2,
                    close_below: 5,
                },
                t0(),
            )
        })
        .await
        .unwrap();
    let dy = list(&ts, new("douyin", "3500001", "TEA"))
        .await
        .unwrap()
        .unwrap();
    let tb = list(&ts, new("taobao", "600001", "TEA"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dy.want_qty, 8, "the pool less the channel's safety stock");
    assert_eq!(tb.want_qty, 10, "no policy: the whole pool");
    adjust(&ts, "TEA", -5).await;
    assert_eq!(
        get(&ts, dy.listing_id).await.want_qty,
        0,
        "closed at its threshold"
    );
    assert_eq!(get(&ts, tb.listing_id).await.want_qty, 5);
    adjust(&ts, "TEA", 4).await;
    let reopened = get(&ts, dy.listing_id).await;
    assert_eq!(
        reopened.want_qty, 7,
        "reopened with the pool less safety stock"
    );
    // A policy change recomputes in its own transaction.
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            inv::set_channel_policy(
                tx,
                &a,
                &ChannelPolicy {
                    channel: Channel::parse("douyin").unwrap(),
                    allocation: AllocationPolicy::Quota { units: 3 },
                    safety_stock: 0,
                    close_below: 0,
                },
                t0(),
            )
        })
        .await
        .unwrap();
    assert_eq!(get(&ts, dy.listing_id).await.want_qty, 3);
}

async fn a_kit_listing_follows_its_scarcest_component(ts: TestStore) {
    seed(&ts, 9, 10).await;
    let kit = list(&ts, new("pdd", "900001", "GIFT"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kit.want_qty, 4, "9 TEA make 4 kits of 2");
    adjust(&ts, "CUP", -8).await;
    assert_eq!(get(&ts, kit.listing_id).await.want_qty, 2, "2 cups left");
    sell(&ts, "GIFT", 1).await;
    assert_eq!(get(&ts, kit.listing_id).await.want_qty, 1);
    // The kit redefined with 3 TEA: its listing follows the new recipe at once.
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let rec = SkuRecord {
                sku: sku("GIFT"),
                title: "gift".into(),
                components: Some(vec![(sku("TEA"), 7)]),
                weight_kg: None,
            };
            inv::define_sku(tx, &a, &rec, t0())
        })
        .await
        .unwrap();
    assert_eq!(get(&ts, kit.listing_id).await.want_qty, 1, "7 TEA: one kit");
    adjust(&ts, "CUP", -1).await;
    assert_eq!(
        get(&ts, kit.listing_id).await.want_qty,
        1,
        "CUP no longer drives it"
    );
    adjust(&ts, "TEA", 7).await;
    assert_eq!(get(&ts, kit.listing_id).await.want_qty, 2);
}

async fn a_paused_listing_is_left_alone_and_a_fixed_quantity_wins(ts: TestStore) {
    seed(&ts, 10, 0).await;
    let mut n = new("jd", "100001", "TEA");
    n.paused = true;
    let paused = list(&ts, n).await.unwrap().unwrap();
    assert_eq!(paused.want_version, 0);
    let mut n = new("jd", "100002", "TEA");
    n.fixed_quantity = Some(50);
    let fixed = list(&ts, n).await.unwrap().unwrap();
    assert_eq!(fixed.want_qty, 50);
    sell(&ts, "TEA", 4).await;
    assert_eq!(
        get(&ts, paused.listing_id).await.want_version,
        0,
        "paused: untouched"
    );
    assert_eq!(
        get(&ts, fixed.listing_id).await.want_version,
        1,
        "fixed: unchanged"
    );
    assert_eq!(
        due(&ts).await,
        vec![fixed.listing_id],
        "a paused listing is never due"
    );
    let a = actor("acme", Role::Ops);
    let id = paused.listing_id;
    let resumed = ts
        .store
        .write(0, move |tx| {
            listings::update_listing(
                tx,
                &a,
                id,
                &ListingChange {
                    paused: Some(false),
                    fixed_quantity: None,
                },
                t0(),
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (resumed.want_qty, resumed.want_version),
        (6, 1),
        "resumed with the pool now"
    );
    let a = actor("acme", Role::Ops);
    let id = fixed.listing_id;
    ts.store
        .write(0, move |tx| {
            listings::update_listing(
                tx,
                &a,
                id,
                &ListingChange {
                    paused: None,
                    fixed_quantity: Some(None),
                },
                t0(),
            )
        })
        .await
        .unwrap();
    let unfixed = get(&ts, fixed.listing_id).await;
    assert_eq!(
        (
            unfixed.want_qty,
            unfixed.want_version,
            unfixed.fixed_quantity
        ),
        (6, 2, None)
    );
}

async fn one_channel_item_is_listed_once_and_lists_filter_and_page(ts: TestStore) {
    seed(&ts, 10, 0).await;
    let first = list(&ts, new("taobao", "600001", "TEA")).await.unwrap();
    assert!(first.is_some());
    assert!(
        list(&ts, new("taobao", "600001", "CUP"))
            .await
            .unwrap()
            .is_none(),
        "listed once"
    );
    let mut other_sku = new("taobao", "600001", "CUP");
    other_sku.channel_sku_id = "5001".into();
    assert!(
        list(&ts, other_sku).await.unwrap().is_some(),
        "another SKU of the item"
    );
    assert!(
        list(&ts, new("pdd", "900001", "TEA"))
            .await
            .unwrap()
            .is_some()
    );
    let unknown = list(&ts, new("pdd", "900002", "NOPE")).await.unwrap_err();
    assert!(matches!(unknown, CoreError::Validation(v) if v.rule == "unknown_sku"));
    let bad = list(&ts, new("pdd", "9 0", "TEA")).await.unwrap_err();
    assert!(matches!(bad, CoreError::Validation(v) if v.field == "channel_item_id"));
    let filter = |f: fn(&mut ListingFilter)| {
        let mut base = ListingFilter {
            tenant: tenant("acme"),
            channel: None,
            shop_id: None,
            sku: None,
            failing: false,
            drifting: false,
            shops: None,
            after: None,
            limit: 100,
        };
        f(&mut base);
        base
    };
    let all = ts
        .store
        .read(move |r| r.listings(&filter(|_| {})))
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let tb = ts
        .store
        .read(move |r| r.listings(&filter(|f| f.channel = Some("taobao".into()))))
        .await
        .unwrap();
    assert_eq!(tb.len(), 2);
    let page1 = ts
        .store
        .read(move |r| r.listings(&filter(|f| f.limit = 2)))
        .await
        .unwrap();
    let after = page1.last().unwrap().listing_id;
    let mut f2 = filter(|f| f.limit = 2);
    f2.after = Some(after);
    let page2 = ts.store.read(move |r| r.listings(&f2)).await.unwrap();
    assert_eq!(page1.len() + page2.len(), 3);
    assert!(page2.iter().all(|l| l.listing_id > after));
    let scoped = ts
        .store
        .read(move |r| r.listings(&filter(|f| f.shops = Some(vec!["shop-2".into()]))))
        .await
        .unwrap();
    assert!(scoped.is_empty(), "another shop's key sees none");
    let other = ts
        .store
        .read(|r| r.listing(&tenant("other"), Uuid::now_v7()))
        .await
        .unwrap();
    assert!(other.is_none());
    let a = actor("acme", Role::Ops);
    let id = all[0].listing_id;
    assert!(
        ts.store
            .write(0, move |tx| listings::delete_listing(tx, &a, id))
            .await
            .unwrap()
    );
    assert_eq!(
        ts.store
            .read(move |r| r.listings(&filter(|_| {})))
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Two movements of a listed SKU in one transaction (as a group commit runs several jobs): the
/// listing wants what the second left, not the first — on PostgreSQL the wanted quantity is
/// written at commit, and the second movement must see the first's.
async fn several_movements_in_one_transaction_leave_the_last_quantity(ts: TestStore) {
    seed(&ts, 10, 5).await;
    let l = list(&ts, new("taobao", "item-1", "TEA"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(get(&ts, l.listing_id).await.want_qty, 10);
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let wh = WarehouseId::parse("HZ").unwrap();
            let reason = orderhub_domain::inventory::AdjustmentReason::StockTake;
            inv::adjust(tx, &a, &sku("TEA"), &wh, -3, reason.clone(), t0())?;
            // Back to what the listing had before this transaction: the second movement must
            // still be written, or the shelf would keep the first's 7.
            inv::adjust(tx, &a, &sku("TEA"), &wh, 3, reason, t0())
        })
        .await
        .unwrap();
    let after = get(&ts, l.listing_id).await;
    assert_eq!(after.want_qty, 10, "{after:?}");
    adjust(&ts, "TEA", -4).await;
    assert_eq!(get(&ts, l.listing_id).await.want_qty, 6);
}

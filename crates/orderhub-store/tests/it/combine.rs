//! Merge and split with partial shipment (issue 21) on both backends: orders of one buyer and
//! address merge into one parcel (refusals say why), undo before release, a merge racing the
//! channel's cancel or address change ends consistent, explicit splits ship parcel by parcel with
//! shipped quantities per line, a split by stock ships what is in stock and the rest when it
//! arrives — and the stock ledger and reservations agree throughout.

use crate::backend::*;
use chrono::Utc;
use orderhub_core::CoreError;
use orderhub_core::after_sales::{self as rma, OpenCase};
use orderhub_core::auth::Role;
use orderhub_core::combine::{self, ParcelWaybill, SplitBy};
use orderhub_core::intake::{ChannelFacts, Ingested, ingest};
use orderhub_core::inventory as inv;
use orderhub_core::ports::{SkuRecord, WarehouseRecord};
use orderhub_core::usecases::{Actor, transition};
use orderhub_domain::after_sales::{AfterSaleCase, CaseKind, Effect, LineClaim};
use orderhub_domain::combine::{GroupState, LineQty, MergeRules, ParcelState};
use orderhub_domain::ids::{CarrierCode, WarehouseId};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::{LineDraft, OUT_OF_STOCK, OrderDraft};
use orderhub_domain::{Currency, Money, Order, OrderId, Personal, Sku, Status};
use uuid::Uuid;

conformance!(
    a_merge_is_previewed_then_ships_its_orders_as_one_parcel,
    a_merge_is_undone_before_release_and_refused_after,
    a_merge_racing_the_channel_cancelling_a_member_ends_consistent,
    a_member_whose_address_the_channel_changes_leaves_the_merge,
    an_explicit_split_ships_parcel_by_parcel_with_shipped_quantities_per_line,
    a_split_by_stock_ships_what_is_in_stock_and_the_rest_when_it_arrives,
    a_split_by_stock_the_channel_readdresses_or_cancels_waits_whole_or_releases_all,
    a_split_by_weight_keeps_each_parcel_within_the_warehouse_limit,
    with_the_automatic_merge_on_a_payment_merges_or_joins_the_buyers_orders,
    a_refund_of_unshipped_units_cuts_a_partly_shipped_orders_parcels_and_the_last_ships_it,
    a_shop_scoped_payment_merges_within_its_shops_and_passes_over_the_others,
    two_payments_of_one_buyer_at_once_both_succeed_and_merge,
);

fn admin() -> Actor {
    actor("acme", Role::Admin)
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn hz() -> WarehouseId {
    WarehouseId::parse("HZ").unwrap()
}

/// A tenant with warehouse HZ (Zhejiang) holding `tea` units of TEA and 10 of CUP.
async fn seed(ts: &TestStore, tea: i64) {
    seed_tenant(&ts.store, "acme").await;
    let a = admin();
    ts.store
        .write(0, move |tx| {
            let now = Utc::now();
            let rec = WarehouseRecord {
                warehouse_id: hz(),
                name: "HZ".into(),
                priority: 0,
                regions: vec!["浙江省".into()],
                sender: None,
                parcel_max_kg: None,
            };
            inv::define_warehouse(tx, &a, &rec, now)?;
            for s in ["TEA", "CUP"] {
                let rec = SkuRecord {
                    sku: sku(s),
                    title: s.into(),
                    components: None,
                    weight_kg: None,
                };
                inv::define_sku(tx, &a, &rec, now)?;
            }
            if tea > 0 {
                inv::receive(tx, &a, &sku("TEA"), &hz(), tea, None, now)?;
            }
            inv::receive(tx, &a, &sku("CUP"), &hz(), 10, None, now)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// A channel order of `tea` TEA and `cup` CUP (lines with channel ids L1, L2), as the channel
/// reports it at `minute`: paid, to `detail`.
fn report(
    shop: &str,
    ext: &str,
    tea: u32,
    cup: u32,
    detail: &str,
    minute: i64,
) -> (OrderDraft, ChannelFacts) {
    let mut d = draft(shop, ext);
    let line = |i: usize, s: &str, q: u32| LineDraft {
        external_line_id: Some(format!("L{i}")),
        sku: sku(s),
        title: s.into(),
        quantity: q,
        unit_price: Money::parse("p", "10.00", Currency::CNY).unwrap(),
        discount: Money::ZERO,
        paid_amount: None,
        is_kit: false,
    };
    d.lines = vec![line(1, "TEA", tea)];
    if cup > 0 {
        d.lines.push(line(2, "CUP", cup));
    }
    d.receiver.detail = Personal::new(detail);
    d.channel_status = Some("WAIT_SELLER_SEND_GOODS".into());
    d.channel_updated_at = Some(
        chrono::DateTime::from_timestamp(1_800_000_000 + minute * 60, 0)
            .unwrap()
            .fixed_offset(),
    );
    let f = ChannelFacts {
        canonical: Status::Paid,
        partly_shipped: false,
        refunds: vec![],
        not_shippable: None,
        paid_at: None,
        shipment: None,
    };
    (d, f)
}

async fn channel(ts: &TestStore, (d, f): (OrderDraft, ChannelFacts)) -> Order {
    let a = admin();
    match ts
        .store
        .write(0, move |tx| ingest(tx, &a, d.clone(), &f, Utc::now()))
        .await
        .unwrap()
    {
        Ingested::Created(o) | Ingested::Updated(o) => o,
        Ingested::Stale(o) => panic!("stale {o:?}"),
    }
}

async fn get(ts: &TestStore, id: OrderId) -> Order {
    ts.store
        .read(move |r| r.order_get(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap()
}

async fn mv(ts: &TestStore, id: OrderId, cmd: Command) -> Result<Order, CoreError> {
    let a = admin();
    ts.store
        .write(id.as_uuid().as_u128() as u64, move |tx| {
            transition(tx, &a, id, &cmd, Utc::now())
        })
        .await
}

async fn release(ts: &TestStore, id: OrderId) {
    mv(ts, id, Command::Allocate { warehouse_id: hz() })
        .await
        .unwrap();
    mv(ts, id, Command::Release).await.unwrap();
}

async fn merge(ts: &TestStore, ids: Vec<OrderId>) -> Result<combine::Merged, CoreError> {
    let a = admin();
    ts.store
        .write(ids[0].as_uuid().as_u128() as u64, move |tx| {
            combine::merge(tx, &a, &ids, Some("same buyer"), Utc::now())
        })
        .await
}

async fn ship(
    ts: &TestStore,
    id: OrderId,
    parcel: Uuid,
    tracking: &str,
) -> Result<Vec<Order>, CoreError> {
    let a = admin();
    let w = ParcelWaybill {
        carrier: CarrierCode::parse("sf").unwrap(),
        tracking_no: tracking.into(),
        logistics_no: format!("L-{tracking}"),
    };
    ts.store
        .write(id.as_uuid().as_u128() as u64, move |tx| {
            combine::ship_parcel(tx, &a, id, parcel, &w, Utc::now())
        })
        .await
}

async fn split(ts: &TestStore, id: OrderId, by: SplitBy) -> Result<Order, CoreError> {
    let a = admin();
    ts.store
        .write(id.as_uuid().as_u128() as u64, move |tx| {
            combine::split(tx, &a, id, by.clone(), None, Utc::now())
        })
        .await
}

fn code(e: CoreError) -> &'static str {
    match e {
        CoreError::Combine { code, .. } => code,
        other => panic!("expected a combine refusal, got {other:?}"),
    }
}

/// (on hand, reserved) of `s` in HZ.
async fn stock(ts: &TestStore, s: &str) -> (i64, i64) {
    let s = sku(s);
    let row = ts
        .store
        .write(0, move |tx| Ok(tx.stock_get(&tenant("acme"), &s, &hz())?))
        .await
        .unwrap()
        .unwrap_or_default();
    (row.level.on_hand, row.level.reserved)
}

/// `orderhub inventory check`'s reservation invariant: every position's `reserved` is the sum
/// of the active reservations' lines on it, and no level is negative.
async fn reservations_agree(ts: &TestStore) {
    let positions = ts.store.read(|r| r.positions()).await.unwrap();
    let active = ts.store.read(|r| r.active_reservations()).await.unwrap();
    for (t, s, wh, row) in positions {
        let held: i64 = active
            .iter()
            .filter(|r| r.tenant_id == t)
            .flat_map(|r| r.lines.iter())
            .filter(|l| l.sku == s && l.warehouse_id == wh)
            .map(|l| l.quantity)
            .sum();
        assert_eq!(
            row.level.reserved, held,
            "{s}@{wh}: reserved vs reservations"
        );
        assert!(row.level.on_hand >= row.level.reserved && row.level.reserved >= 0);
    }
}

/// Every order names an open group only if the group lists it, and an open group lists only
/// orders that name it and are not cancelled.
async fn groups_agree(ts: &TestStore, orders: &[OrderId]) {
    for id in orders {
        let o = get(ts, *id).await;
        if let Some(g) = o.shipment_group {
            let group = ts
                .store
                .read(move |r| r.group(&tenant("acme"), g))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(group.state, GroupState::Open, "{id} names a closed group");
            assert!(group.members.contains(id));
            assert_ne!(o.status, Status::Cancelled);
            assert_eq!(o.parcels.len(), 1);
            for m in &group.members {
                assert_eq!(get(ts, *m).await.shipment_group, Some(g));
            }
            assert!(group.members.len() >= 2);
        } else {
            assert!(o.parcels.iter().all(|p| p.group_id.is_none()));
        }
    }
}

async fn a_merge_is_previewed_then_ships_its_orders_as_one_parcel(ts: TestStore) {
    seed(&ts, 10).await;
    let a = channel(&ts, report("shop-a", "A", 2, 0, "文三路100号", 0)).await;
    let b = channel(&ts, report("shop-a", "B", 1, 0, " 文三路 100号", 0)).await;
    let c = channel(&ts, report("shop-a", "C", 1, 0, "文三路 200 号", 0)).await;
    let d = channel(&ts, report("shop-b", "D", 1, 0, "文三路100号", 0)).await;
    assert_eq!(stock(&ts, "TEA").await, (10, 5));
    let ids = vec![a.id, b.id, c.id, d.id];
    let who = admin();
    let p = ts
        .store
        .write(0, move |tx| combine::preview_merge(tx, &who, &ids))
        .await
        .unwrap();
    assert_eq!(p.mergeable.len(), 2);
    assert!(p.mergeable.contains(&a.id) && p.mergeable.contains(&b.id));
    let why = |id: OrderId| p.refused.iter().find(|(i, _)| *i == id).unwrap().1.code;
    assert_eq!(why(c.id), "other_receiver");
    assert_eq!(why(d.id), "other_shop");
    // All or nothing: one order that does not qualify refuses the merge, naming it.
    let e = merge(&ts, vec![a.id, b.id, c.id]).await.unwrap_err();
    match e {
        CoreError::Combine { code, field, .. } => {
            assert_eq!(
                (code, field.as_deref()),
                ("merge_refused", Some("order_ids[2]"))
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(get(&ts, a.id).await.version, a.version, "nothing written");
    let m = merge(&ts, vec![a.id, b.id]).await.unwrap();
    assert_eq!(m.group.state, GroupState::Open);
    for o in [a.id, b.id] {
        let o = get(&ts, o).await;
        assert_eq!(o.shipment_group, Some(m.group.group_id));
        assert_eq!(o.parcels[0].parcel_id, m.group.parcel_id);
    }
    // A merged order is in no other merge.
    let e = merge(&ts, vec![b.id, c.id]).await.unwrap_err();
    assert_eq!(code(e), "merge_refused");
    release(&ts, a.id).await;
    // One member released, the other not: the parcel waits for both.
    assert_eq!(
        code(
            ship(&ts, a.id, m.group.parcel_id, "SF100")
                .await
                .unwrap_err()
        ),
        "not_released"
    );
    release(&ts, b.id).await;
    // The whole-order shipment is refused: the parcel ships.
    let e = mv(
        &ts,
        a.id,
        Command::Ship {
            carrier: CarrierCode::parse("sf").unwrap(),
            tracking_no: "SF1".into(),
            logistics_no: "L1".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(code(e), "ships_in_parcels");
    let shipped = ship(&ts, b.id, m.group.parcel_id, "SF100").await.unwrap();
    assert_eq!(shipped.len(), 2);
    for o in [a.id, b.id] {
        let o = get(&ts, o).await;
        assert_eq!(o.status, Status::Shipped);
        assert_eq!(o.fulfillment.tracking_no.as_deref(), Some("SF100"));
        assert_eq!(o.parcels[0].state, ParcelState::Shipped);
    }
    assert_eq!(
        get(&ts, a.id).await.shipped_lines,
        vec![LineQty {
            line_id: 1,
            quantity: 2
        }]
    );
    let g = m.group.group_id;
    let group = ts
        .store
        .read(move |r| r.group(&tenant("acme"), g))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(group.state, GroupState::Shipped);
    // A and B's three units left; C and D still hold theirs.
    assert_eq!(stock(&ts, "TEA").await, (7, 2));
    reservations_agree(&ts).await;
}

async fn a_merge_is_undone_before_release_and_refused_after(ts: TestStore) {
    seed(&ts, 10).await;
    let a = channel(&ts, report("shop-a", "A", 1, 0, "文三路100号", 0)).await;
    let b = channel(&ts, report("shop-a", "B", 1, 0, "文三路100号", 0)).await;
    let m = merge(&ts, vec![a.id, b.id]).await.unwrap();
    let g = m.group.group_id;
    let who = admin();
    let undone = ts
        .store
        .write(0, move |tx| combine::undo_merge(tx, &who, g, Utc::now()))
        .await
        .unwrap();
    assert_eq!(undone.state, GroupState::Undone);
    for id in [a.id, b.id] {
        let o = get(&ts, id).await;
        assert_eq!((o.shipment_group, o.parcels.len()), (None, 0));
    }
    // Undone once: not again.
    let who = admin();
    let e = ts
        .store
        .write(0, move |tx| combine::undo_merge(tx, &who, g, Utc::now()))
        .await
        .unwrap_err();
    assert_eq!(code(e), "group_not_open");
    let m = merge(&ts, vec![a.id, b.id]).await.unwrap();
    release(&ts, a.id).await;
    let g = m.group.group_id;
    let who = admin();
    let e = ts
        .store
        .write(0, move |tx| combine::undo_merge(tx, &who, g, Utc::now()))
        .await
        .unwrap_err();
    assert_eq!(code(e), "member_released");
    assert_eq!(get(&ts, b.id).await.shipment_group, Some(g), "untouched");
    reservations_agree(&ts).await;
}

async fn a_merge_racing_the_channel_cancelling_a_member_ends_consistent(ts: TestStore) {
    seed(&ts, 100).await;
    let mut all = Vec::new();
    let mut merged_first = 0;
    for round in 0..6 {
        let a = channel(
            &ts,
            report("shop-a", &format!("A{round}"), 1, 0, "x路1号", 0),
        )
        .await;
        let b = channel(
            &ts,
            report("shop-a", &format!("B{round}"), 1, 0, "x路1号", 0),
        )
        .await;
        // The channel closes B (its cancel goes through the same lifecycle move) while an
        // operator merges A and B; one waits for the other on B's row.
        let (mut d, mut f) = report("shop-a", &format!("B{round}"), 1, 0, "x路1号", 1);
        d.channel_status = Some("TRADE_CLOSED".into());
        f.canonical = Status::Cancelled;
        let s = ts.store.clone();
        let ca = admin();
        let cancel = tokio::spawn(async move {
            s.write(1, move |tx| ingest(tx, &ca, d.clone(), &f, Utc::now()))
                .await
        });
        let merged = merge(&ts, vec![a.id, b.id]).await;
        cancel.await.unwrap().unwrap();
        let b_now = get(&ts, b.id).await;
        assert_eq!(
            b_now.status,
            Status::Cancelled,
            "the channel's cancel always applies"
        );
        match merged {
            Ok(m) => {
                merged_first += 1;
                // Merged, then B left: a group of one is dissolved.
                let g = m.group.group_id;
                let group = ts
                    .store
                    .read(move |r| r.group(&tenant("acme"), g))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(group.state, GroupState::Dissolved);
                assert!(
                    group
                        .left
                        .iter()
                        .any(|l| l.order_id == b.id && l.why == "cancelled")
                );
            }
            Err(e) => assert_eq!(code(e), "merge_refused"),
        }
        assert_eq!(get(&ts, a.id).await.shipment_group, None);
        all.extend([a.id, b.id]);
    }
    eprintln!("merge first in {merged_first} of 6 rounds");
    groups_agree(&ts, &all).await;
    // Six A orders still hold one unit each; every B released its unit.
    assert_eq!(stock(&ts, "TEA").await, (100, 6));
    reservations_agree(&ts).await;
    // Three members, one cancelled: the other two stay merged.
    let a = channel(&ts, report("shop-a", "A9", 1, 0, "y路2号", 0)).await;
    let b = channel(&ts, report("shop-a", "B9", 1, 0, "y路2号", 0)).await;
    let c = channel(&ts, report("shop-a", "C9", 1, 0, "y路2号", 0)).await;
    let m = merge(&ts, vec![a.id, b.id, c.id]).await.unwrap();
    mv(
        &ts,
        c.id,
        Command::Cancel {
            reason: "buyer".into(),
        },
    )
    .await
    .unwrap();
    let g = m.group.group_id;
    let group = ts
        .store
        .read(move |r| r.group(&tenant("acme"), g))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(group.state, GroupState::Open);
    assert_eq!(group.members.len(), 2);
    groups_agree(&ts, &[a.id, b.id, c.id]).await;
}

async fn a_member_whose_address_the_channel_changes_leaves_the_merge(ts: TestStore) {
    seed(&ts, 10).await;
    let a = channel(&ts, report("shop-a", "A", 1, 0, "文三路100号", 0)).await;
    let b = channel(&ts, report("shop-a", "B", 1, 0, "文三路100号", 0)).await;
    let s = ts.store.clone();
    let ca = admin();
    let moved = tokio::spawn(async move {
        let (d, f) = report("shop-a", "B", 1, 0, "莫干山路8号", 1);
        s.write(1, move |tx| ingest(tx, &ca, d.clone(), &f, Utc::now()))
            .await
    });
    let merged = merge(&ts, vec![a.id, b.id]).await;
    moved.await.unwrap().unwrap();
    // Either the merge saw the new address (refused) or the address change took B out of it.
    if let Err(e) = merged {
        assert_eq!(code(e), "merge_refused");
    }
    for id in [a.id, b.id] {
        let o = get(&ts, id).await;
        assert_eq!((o.shipment_group, o.parcels.len()), (None, 0));
    }
    assert_eq!(get(&ts, b.id).await.receiver.detail.expose(), "莫干山路8号");
    groups_agree(&ts, &[a.id, b.id]).await;
    reservations_agree(&ts).await;
}

async fn an_explicit_split_ships_parcel_by_parcel_with_shipped_quantities_per_line(ts: TestStore) {
    seed(&ts, 10).await;
    let o = channel(&ts, report("shop-a", "S1", 3, 1, "文三路100号", 0)).await;
    let lq = |line_id, quantity| LineQty { line_id, quantity };
    // Every unit in exactly one parcel.
    let e = split(
        &ts,
        o.id,
        SplitBy::Lines(vec![vec![lq(1, 2)], vec![lq(2, 1)]]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, CoreError::Validation(v) if v.rule == "does_not_add_up"));
    let o = split(
        &ts,
        o.id,
        SplitBy::Lines(vec![vec![lq(1, 2)], vec![lq(1, 1), lq(2, 1)]]),
    )
    .await
    .unwrap();
    let (p1, p2) = (o.parcels[0].parcel_id, o.parcels[1].parcel_id);
    assert_eq!(
        code(split(&ts, o.id, SplitBy::Lines(vec![])).await.unwrap_err()),
        "split"
    );
    // Not released yet: no parcel leaves.
    assert_eq!(
        code(ship(&ts, o.id, p1, "SF1").await.unwrap_err()),
        "not_released"
    );
    release(&ts, o.id).await;
    let after = ship(&ts, o.id, p1, "SF1").await.unwrap().remove(0);
    assert_eq!(after.status, Status::Released, "one parcel of two left");
    assert_eq!(after.shipped_lines, vec![lq(1, 2)]);
    assert_eq!(stock(&ts, "TEA").await, (8, 1));
    // The same waybill again is the same shipment; another one is refused.
    let again = ship(&ts, o.id, p1, "SF1").await.unwrap().remove(0);
    assert_eq!(again.version, after.version);
    assert_eq!(
        code(ship(&ts, o.id, p1, "SF9").await.unwrap_err()),
        "parcel_shipped"
    );
    // Part of it left: it is not cancelled.
    let e = mv(&ts, o.id, Command::Cancel { reason: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(code(e), "partly_shipped");
    let done = ship(&ts, o.id, p2, "SF2").await.unwrap().remove(0);
    assert_eq!(done.status, Status::Shipped);
    assert_eq!(done.shipped_lines, vec![lq(1, 3), lq(2, 1)]);
    assert_eq!(done.fulfillment.tracking_no.as_deref(), Some("SF2"));
    let tracking: Vec<_> = done
        .parcels
        .iter()
        .map(|p| p.tracking_no.clone().unwrap())
        .collect();
    assert_eq!(tracking, ["SF1", "SF2"]);
    assert_eq!(stock(&ts, "TEA").await, (7, 0));
    assert_eq!(stock(&ts, "CUP").await, (9, 0));
    reservations_agree(&ts).await;
}

async fn a_split_by_stock_ships_what_is_in_stock_and_the_rest_when_it_arrives(ts: TestStore) {
    seed(&ts, 2).await;
    let o = channel(&ts, report("shop-a", "S2", 3, 1, "文三路100号", 0)).await;
    assert!(o.has_exception(OUT_OF_STOCK), "3 TEA wanted, 2 in stock");
    assert_eq!(stock(&ts, "TEA").await, (2, 0));
    let o = split(&ts, o.id, SplitBy::Stock).await.unwrap();
    let lq = |line_id, quantity| LineQty { line_id, quantity };
    assert_eq!(o.parcels[0].lines, vec![lq(1, 2), lq(2, 1)]);
    assert_eq!(o.parcels[0].state, ParcelState::Planned);
    assert_eq!(o.parcels[1].lines, vec![lq(1, 1)]);
    assert_eq!(o.parcels[1].state, ParcelState::Waiting);
    assert!(o.has_exception(OUT_OF_STOCK), "the rest waits on backorder");
    assert_eq!(stock(&ts, "TEA").await, (2, 2));
    assert_eq!(stock(&ts, "CUP").await, (10, 1));
    // The part in stock goes to the warehouse and leaves now.
    release(&ts, o.id).await;
    let (p1, p2) = (o.parcels[0].parcel_id, o.parcels[1].parcel_id);
    assert_eq!(
        code(ship(&ts, o.id, p2, "SF2").await.unwrap_err()),
        "parcel_waiting"
    );
    let now = ship(&ts, o.id, p1, "SF1").await.unwrap().remove(0);
    assert_eq!(now.status, Status::Released);
    assert_eq!(now.shipped_lines, vec![lq(1, 2), lq(2, 1)]);
    assert_eq!(stock(&ts, "TEA").await, (0, 0));
    reservations_agree(&ts).await;
    // Stock arrives: the waiting parcel reserves its unit and the order leaves backorder.
    let a = admin();
    ts.store
        .write(0, move |tx| {
            inv::receive(tx, &a, &sku("TEA"), &hz(), 5, None, Utc::now())?;
            Ok(())
        })
        .await
        .unwrap();
    let served = get(&ts, o.id).await;
    assert!(!served.has_exception(OUT_OF_STOCK));
    assert_eq!(served.parcels[1].state, ParcelState::Planned);
    assert_eq!(stock(&ts, "TEA").await, (5, 1));
    let done = ship(&ts, o.id, p2, "SF2").await.unwrap().remove(0);
    assert_eq!(done.status, Status::Shipped);
    assert_eq!(done.shipped_lines, vec![lq(1, 3), lq(2, 1)]);
    assert_eq!(stock(&ts, "TEA").await, (4, 0));
    reservations_agree(&ts).await;
}

async fn a_split_by_stock_the_channel_readdresses_or_cancels_waits_whole_or_releases_all(
    ts: TestStore,
) {
    seed(&ts, 2).await;
    let o = channel(&ts, report("shop-a", "S3", 3, 1, "文三路100号", 0)).await;
    let o = split(&ts, o.id, SplitBy::Stock).await.unwrap();
    assert_eq!(o.parcels.len(), 2);
    assert_eq!(stock(&ts, "TEA").await, (2, 2));
    // The channel changes the address: the plan goes, and with it the part reserved for the
    // first parcel — the order waits whole on backorder again, never holding units twice.
    let changed = channel(&ts, report("shop-a", "S3", 3, 1, "文三路 200 号", 1)).await;
    assert!(changed.parcels.is_empty());
    assert!(
        changed.has_exception(OUT_OF_STOCK),
        "{:?}",
        changed.exceptions
    );
    assert_eq!(stock(&ts, "TEA").await, (2, 0));
    assert_eq!(stock(&ts, "CUP").await, (10, 0));
    reservations_agree(&ts).await;
    // Stock arrives: the order is served whole, once.
    let a = admin();
    ts.store
        .write(0, move |tx| {
            inv::receive(tx, &a, &sku("TEA"), &hz(), 1, None, Utc::now())?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(!get(&ts, o.id).await.has_exception(OUT_OF_STOCK));
    assert_eq!(stock(&ts, "TEA").await, (3, 3));
    assert_eq!(stock(&ts, "CUP").await, (10, 1));
    reservations_agree(&ts).await;
    // Another order split by stock, then cancelled: every unit it held goes back.
    let a = admin();
    ts.store
        .write(0, move |tx| {
            inv::receive(tx, &a, &sku("TEA"), &hz(), 1, None, Utc::now())?;
            Ok(())
        })
        .await
        .unwrap();
    let o = channel(&ts, report("shop-a", "S4", 3, 1, "文三路100号", 0)).await;
    assert!(o.has_exception(OUT_OF_STOCK));
    let o = split(&ts, o.id, SplitBy::Stock).await.unwrap();
    assert_eq!(
        o.parcels[0].lines,
        vec![
            LineQty {
                line_id: 1,
                quantity: 1
            },
            LineQty {
                line_id: 2,
                quantity: 1
            }
        ]
    );
    assert_eq!(stock(&ts, "TEA").await, (4, 4));
    mv(
        &ts,
        o.id,
        Command::Cancel {
            reason: "buyer".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(stock(&ts, "TEA").await, (4, 3));
    assert_eq!(
        stock(&ts, "CUP").await,
        (10, 1),
        "S3 holds its cup; S4 gave its back"
    );
    let backorders = ts
        .store
        .read(|r| r.backorders(&tenant("acme"), None, 100, None))
        .await
        .unwrap();
    assert!(backorders.iter().all(|b| b.0 != o.id), "off backorder");
    reservations_agree(&ts).await;
}

async fn a_split_by_weight_keeps_each_parcel_within_the_warehouse_limit(ts: TestStore) {
    seed(&ts, 10).await;
    let a = admin();
    ts.store
        .write(0, move |tx| {
            let now = Utc::now();
            let kg = |s: &str| Some(s.parse().unwrap());
            for (s, w) in [("TEA", "4"), ("CUP", "1.5")] {
                let rec = SkuRecord {
                    sku: sku(s),
                    title: s.into(),
                    components: None,
                    weight_kg: kg(w),
                };
                inv::define_sku(tx, &a, &rec, now)?;
            }
            let rec = WarehouseRecord {
                warehouse_id: hz(),
                name: "HZ".into(),
                priority: 0,
                regions: vec!["浙江省".into()],
                sender: None,
                parcel_max_kg: kg("10"),
            };
            inv::define_warehouse(tx, &a, &rec, now)?;
            Ok(())
        })
        .await
        .unwrap();
    let o = channel(&ts, report("shop-a", "W1", 3, 2, "文三路100号", 0)).await;
    let o = split(&ts, o.id, SplitBy::Weight).await.unwrap();
    let lq = |line_id, quantity| LineQty { line_id, quantity };
    assert_eq!(o.parcels.len(), 2);
    assert_eq!(o.parcels[0].lines, vec![lq(1, 2), lq(2, 1)]);
    assert_eq!(o.parcels[1].lines, vec![lq(1, 1), lq(2, 1)]);
    assert!(o.parcels.iter().all(|p| p.warehouse_id == Some(hz())));
    // One that fits one parcel is not split.
    let small = channel(&ts, report("shop-a", "W2", 1, 1, "文三路100号", 0)).await;
    let e = split(&ts, small.id, SplitBy::Weight).await.unwrap_err();
    assert!(matches!(e, CoreError::Validation(v) if v.rule == "fits_whole"));
    release(&ts, o.id).await;
    for (i, p) in o.parcels.iter().enumerate() {
        ship(&ts, o.id, p.parcel_id, &format!("SFW{i}"))
            .await
            .unwrap();
    }
    assert_eq!(get(&ts, o.id).await.status, Status::Shipped);
    assert_eq!(stock(&ts, "TEA").await, (7, 1));
    reservations_agree(&ts).await;
}

async fn with_the_automatic_merge_on_a_payment_merges_or_joins_the_buyers_orders(ts: TestStore) {
    seed(&ts, 10).await;
    // Off (the default): paid orders of one buyer and address ship apart.
    let a = channel(&ts, report("shop-a", "AM0", 1, 0, "文三路100号", 0)).await;
    assert_eq!(a.shipment_group, None);
    let who = admin();
    let rules = orderhub_domain::combine::MergeRules {
        auto: true,
        ..Default::default()
    };
    ts.store
        .write(0, move |tx| {
            combine::set_merge_rules(tx, &who, &rules, Utc::now())
        })
        .await
        .unwrap();
    // On: the next payment of that buyer merges with it; a third joins; another address does not.
    let b = channel(&ts, report("shop-a", "AM1", 1, 0, "文三路100号", 0)).await;
    let g = b.shipment_group.expect("merged at payment");
    assert_eq!(get(&ts, a.id).await.shipment_group, Some(g));
    let c = channel(&ts, report("shop-a", "AM2", 2, 0, " 文三路 100 号", 0)).await;
    assert_eq!(c.shipment_group, Some(g), "joins the open merge");
    let d = channel(&ts, report("shop-a", "AM3", 1, 0, "莫干山路8号", 0)).await;
    assert_eq!(d.shipment_group, None);
    let group = ts
        .store
        .read(move |r| r.group(&tenant("acme"), g))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(group.origin, "auto");
    assert_eq!(group.members.len(), 3);
    groups_agree(&ts, &[a.id, b.id, c.id, d.id]).await;
    // The merged parcel ships every member at once.
    for id in [a.id, b.id, c.id] {
        release(&ts, id).await;
    }
    let shipped = ship(&ts, c.id, group.parcel_id, "SF-AUTO").await.unwrap();
    assert_eq!(shipped.len(), 3);
    assert!(shipped.iter().all(|o| o.status == Status::Shipped));
    reservations_agree(&ts).await;
}

/// A refund-only case of `quantity` units of line `line_id`, opened and decided by ops.
async fn refund_case(ts: &TestStore, id: OrderId, line_id: u32, quantity: u32) -> AfterSaleCase {
    let a = actor("acme", Role::Ops);
    let input = OpenCase {
        kind: CaseKind::RefundOnly,
        lines: vec![LineClaim {
            line_id,
            quantity,
            amount: None,
        }],
        reason: "buyer asked".into(),
    };
    ts.store
        .write(1, move |tx| rma::open(tx, &a, id, &input, Utc::now()))
        .await
        .unwrap()
        .0
}

async fn approve_case(ts: &TestStore, c: &AfterSaleCase) -> Order {
    let (a, id) = (actor("acme", Role::Ops), c.case_id);
    ts.store
        .write(2, move |tx| rma::approve(tx, &a, id, None, Utc::now()))
        .await
        .unwrap()
        .1
}

async fn a_refund_of_unshipped_units_cuts_a_partly_shipped_orders_parcels_and_the_last_ships_it(
    ts: TestStore,
) {
    seed(&ts, 10).await;
    let o = channel(&ts, report("shop-a", "PC1", 3, 1, "文三路100号", 0)).await;
    let lq = |line_id, quantity| LineQty { line_id, quantity };
    let o = split(
        &ts,
        o.id,
        SplitBy::Lines(vec![vec![lq(1, 2)], vec![lq(1, 1), lq(2, 1)]]),
    )
    .await
    .unwrap();
    let p1 = o.parcels[0].parcel_id;
    release(&ts, o.id).await;
    ship(&ts, o.id, p1, "SF1").await.unwrap();
    assert_eq!(stock(&ts, "TEA").await, (8, 1));
    assert_eq!(stock(&ts, "CUP").await, (10, 1));
    // The cup not yet shipped is refunded: it is stopped, the parcel keeps only its tea and the
    // cup's unit goes back to the pool; the order goes on, not stopped.
    let c = refund_case(&ts, o.id, 2, 1).await;
    assert_eq!(c.effect, Some(Effect::StopLines));
    let after = approve_case(&ts, &c).await;
    assert_eq!(after.status, Status::Released);
    assert_eq!(after.parcels.len(), 2);
    assert_eq!(after.parcels[1].lines, vec![lq(1, 1)]);
    assert_eq!(orderhub_domain::lifecycle::stopped_by(&after), None);
    assert_eq!(stock(&ts, "CUP").await, (10, 0));
    assert_eq!(stock(&ts, "TEA").await, (8, 1));
    reservations_agree(&ts).await;
    // A refund of more than is left to ship is still an interception at the warehouse.
    let big = refund_case(&ts, o.id, 1, 2).await;
    assert_eq!(big.effect, Some(Effect::InterceptAtWarehouse));
    let (a, id) = (actor("acme", Role::Ops), big.case_id);
    ts.store
        .write(2, move |tx| {
            rma::refuse(tx, &a, id, "not eligible", Utc::now())
        })
        .await
        .unwrap();
    // The channel acknowledged the parcel that left (a partial write-back).
    let (a, id) = (admin(), o.id);
    ts.store
        .write(3, move |tx| {
            combine::mark_parcels_synced(tx, &a, id, &[p1], serde_json::json!({}), Utc::now())
        })
        .await
        .unwrap();
    // The last unshipped unit refunded: the parcel is gone and the order has shipped, with the
    // waybill of the parcel that left — written back already, so nothing is left to write back.
    let c = refund_case(&ts, o.id, 1, 1).await;
    let done = approve_case(&ts, &c).await;
    assert_eq!(done.status, Status::Shipped);
    assert_eq!(done.parcels.len(), 1);
    assert_eq!(done.fulfillment.tracking_no.as_deref(), Some("SF1"));
    assert_eq!(done.shipped_lines, vec![lq(1, 2)]);
    assert!(done.last_sync_at.is_some());
    assert_eq!(stock(&ts, "TEA").await, (8, 0));
    reservations_agree(&ts).await;
}

async fn auto_on(ts: &TestStore, cross_shop: bool) {
    let who = admin();
    let rules = MergeRules {
        auto: true,
        cross_shop,
        ..Default::default()
    };
    ts.store
        .write(0, move |tx| {
            combine::set_merge_rules(tx, &who, &rules, Utc::now())
        })
        .await
        .unwrap();
}

/// A channel order of `tea` TEA, reported before payment (to be paid by the caller).
async fn unpaid(ts: &TestStore, shop: &str, ext: &str, tea: u32) -> Order {
    let (mut d, mut f) = report(shop, ext, tea, 0, "文三路100号", 0);
    d.channel_status = Some("WAIT_BUYER_PAY".into());
    f.canonical = Status::PendingPayment;
    let o = channel(ts, (d, f)).await;
    assert_eq!(o.status, Status::PendingPayment);
    o
}

fn pay() -> Command {
    Command::Pay {
        paid_at: None,
        amount: None,
    }
}

async fn a_shop_scoped_payment_merges_within_its_shops_and_passes_over_the_others(ts: TestStore) {
    seed(&ts, 10).await;
    // The buyer's paid orders in shop-b and shop-a, before the automatic merge is on.
    let other = channel(&ts, report("shop-b", "SC0", 1, 0, "文三路100号", 0)).await;
    let mine = channel(&ts, report("shop-a", "SC1", 1, 0, "文三路100号", 0)).await;
    auto_on(&ts, true).await;
    let x = unpaid(&ts, "shop-a", "SC2", 1).await;
    // A key of shop-a pays: the buyer's order in shop-b is not its to see, nor to merge.
    let mut scoped = admin();
    scoped.principal.shops = Some(vec![orderhub_domain::ShopId::parse("shop-a").unwrap()]);
    let id = x.id;
    let paid = ts
        .store
        .write(5, move |tx| transition(tx, &scoped, id, &pay(), Utc::now()))
        .await
        .unwrap();
    assert_eq!(paid.status, Status::Paid);
    let g = paid
        .shipment_group
        .expect("merged with the order of its own shop");
    let group = ts
        .store
        .read(move |r| r.group(&tenant("acme"), g))
        .await
        .unwrap()
        .unwrap();
    let mut want = vec![mine.id, x.id];
    want.sort();
    let mut got = group.members.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(get(&ts, other.id).await.shipment_group, None);
    groups_agree(&ts, &[other.id, mine.id, x.id]).await;
}

async fn two_payments_of_one_buyer_at_once_both_succeed_and_merge(ts: TestStore) {
    seed(&ts, 10).await;
    let first = channel(&ts, report("shop-a", "TP0", 1, 0, "文三路100号", 0)).await;
    let second = channel(&ts, report("shop-a", "TP1", 1, 0, "文三路100号", 0)).await;
    auto_on(&ts, false).await;
    let x = unpaid(&ts, "shop-a", "TP2", 1).await;
    let y = unpaid(&ts, "shop-a", "TP3", 1).await;
    // Each payment on a writer (and PostgreSQL transaction) of its own, at once.
    let run = |id: OrderId, part: u64| {
        let store = ts.store.clone();
        tokio::spawn(async move {
            let a = admin();
            store
                .write(part, move |tx| transition(tx, &a, id, &pay(), Utc::now()))
                .await
        })
    };
    let (a, b) = tokio::join!(run(x.id, 1), run(y.id, 2));
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_eq!((a.status, b.status), (Status::Paid, Status::Paid));
    // One merge of the buyer's four orders, whichever payment came first.
    let all = [first.id, second.id, x.id, y.id];
    let g = get(&ts, x.id).await.shipment_group.expect("merged");
    for id in all {
        assert_eq!(get(&ts, id).await.shipment_group, Some(g), "{id}");
    }
    groups_agree(&ts, &all).await;
    reservations_agree(&ts).await;
}

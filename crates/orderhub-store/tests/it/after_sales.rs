//! After-sales cases (issue 21) on both backends: claims to the cent, a refund before shipment
//! gives the line's stock back (or cancels the order through the cancel path), a return's QC puts
//! goods back on hand or into quarantine, the channel's refund states open and move cases, and the
//! races: a refund approval against a shipment or a release, two approvals of one case.

use crate::backend::*;
use chrono::Utc;
use orderhub_core::CoreError;
use orderhub_core::after_sales::{self as rma, OpenCase, Receipt};
use orderhub_core::auth::Role;
use orderhub_core::inventory as inv;
use orderhub_core::ports::{SkuRecord, WarehouseRecord};
use orderhub_core::usecases::{create_order, transition};
use orderhub_domain::after_sales::{AfterSaleCase, CaseKind, CaseState, Effect, LineClaim};
use orderhub_domain::ids::{CarrierCode, WarehouseId};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Money, Order, OrderId, Sku, Status};
use orderhub_store::CaseFilter;

conformance!(
    a_refund_before_release_gives_the_line_back_and_the_order_ships_the_rest,
    refunding_every_line_before_release_cancels_the_order_through_the_cancel_path,
    claims_over_every_case_stay_within_the_line_to_the_cent,
    a_return_failing_qc_is_quarantined_and_a_passing_one_is_back_on_hand,
    a_refund_approval_racing_a_shipment_lets_exactly_one_win,
    a_refund_approval_racing_a_release_lets_exactly_one_win,
    two_approvals_of_one_case_have_one_effect,
    the_channel_opens_one_case_per_refund_and_moves_it_to_refunded,
    an_exchange_ships_the_replacement_on_an_order_of_its_own_after_qc,
);

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn hz() -> WarehouseId {
    WarehouseId::parse("HZ").unwrap()
}

fn yuan(s: &str) -> Money {
    Money::parse("m", s, orderhub_domain::Currency::CNY).unwrap()
}

/// The tenant, warehouse HZ and SKU-0..2 with 100 units each.
async fn seed(ts: &TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let now = Utc::now();
            let rec = WarehouseRecord {
                warehouse_id: hz(),
                name: "HZ".into(),
                priority: 0,
                regions: vec![],
                sender: None,
                parcel_max_kg: None,
            };
            inv::define_warehouse(tx, &a, &rec, now)?;
            for i in 0..3 {
                let s = sku(&format!("SKU-{i}"));
                let rec = SkuRecord {
                    sku: s.clone(),
                    title: "x".into(),
                    components: None,
                    weight_kg: None,
                };
                inv::define_sku(tx, &a, &rec, now)?;
                inv::receive(tx, &a, &s, &hz(), 100, None, now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// A paid order `ext` (lines SKU-0 ×1, SKU-1 ×2, SKU-2 ×3 at 10.50; paid 10.50, 21.00, 31.50),
/// moved on by `then`.
async fn order(ts: &TestStore, ext: &str, then: &[Command]) -> Order {
    let a = actor("acme", Role::Admin);
    let d = draft("tmall-1", ext);
    let mut o = match ts
        .store
        .write(0, move |tx| create_order(tx, &a, d.clone(), Utc::now()))
        .await
        .unwrap()
    {
        orderhub_core::usecases::Created::New(o) => o,
        other => panic!("{other:?}"),
    };
    let mut cmds = vec![Command::Pay {
        paid_at: None,
        amount: None,
    }];
    cmds.extend(then.iter().cloned());
    for c in cmds {
        o = apply(ts, o.id, c).await.unwrap();
    }
    o
}

fn allocate() -> Command {
    Command::Allocate { warehouse_id: hz() }
}

fn ship(n: u32) -> Command {
    Command::Ship {
        carrier: CarrierCode::parse("sf").unwrap(),
        tracking_no: format!("SF{n:08}"),
        logistics_no: format!("LN{n}"),
    }
}

async fn apply(ts: &TestStore, id: OrderId, cmd: Command) -> Result<Order, CoreError> {
    let a = actor("acme", Role::Admin);
    ts.store
        .write(id.as_uuid().as_u128() as u64, move |tx| {
            transition(tx, &a, id, &cmd, Utc::now())
        })
        .await
}

fn claim(line_id: u32, quantity: u32, amount: Option<&str>) -> LineClaim {
    LineClaim {
        line_id,
        quantity,
        amount: amount.map(yuan),
    }
}

async fn open(
    ts: &TestStore,
    id: OrderId,
    kind: CaseKind,
    lines: Vec<LineClaim>,
) -> Result<AfterSaleCase, CoreError> {
    let a = actor("acme", Role::Ops);
    let input = OpenCase {
        kind,
        lines,
        reason: "buyer asked".into(),
    };
    ts.store
        .write(1, move |tx| rma::open(tx, &a, id, &input, Utc::now()))
        .await
        .map(|(c, _)| c)
}

/// Runs one case action on writer `part`.
async fn act<F>(ts: &TestStore, part: u64, f: F) -> Result<(AfterSaleCase, Order), CoreError>
where
    F: Fn(
            &mut dyn orderhub_core::Tx,
            &orderhub_core::usecases::Actor,
        ) -> Result<(AfterSaleCase, Order), CoreError>
        + Send
        + 'static,
{
    let a = actor("acme", Role::Ops);
    ts.store.write(part, move |tx| f(tx, &a)).await
}

async fn approve(ts: &TestStore, c: &AfterSaleCase) -> Result<(AfterSaleCase, Order), CoreError> {
    let id = c.case_id;
    act(ts, 2, move |tx, a| {
        rma::approve(tx, a, id, None, Utc::now())
    })
    .await
}

/// (on_hand, reserved) of a SKU in HZ.
async fn level(ts: &TestStore, s: &str) -> (i64, i64) {
    let s = sku(s);
    let rows = ts
        .store
        .read(move |r| r.stock_for_sku(&tenant("acme"), &s))
        .await
        .unwrap();
    let l = rows[0].1.level;
    (l.on_hand, l.reserved)
}

async fn event_types(ts: &TestStore, id: OrderId) -> Vec<String> {
    ts.store
        .read(move |r| r.events_after(&tenant("acme"), 0, 10_000))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.aggregate_id == id.as_uuid())
        .map(|e| e.event.event_type)
        .collect()
}

async fn order_now(ts: &TestStore, id: OrderId) -> Order {
    ts.store
        .read(move |r| r.order_get(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap()
}

async fn case_now(ts: &TestStore, id: uuid::Uuid) -> AfterSaleCase {
    ts.store
        .read(move |r| r.after_sale(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap()
}

async fn a_refund_before_release_gives_the_line_back_and_the_order_ships_the_rest(ts: TestStore) {
    seed(&ts).await;
    let o = order(&ts, "R1", &[allocate()]).await;
    assert_eq!(level(&ts, "SKU-1").await, (100, 2));
    let c = open(&ts, o.id, CaseKind::RefundOnly, vec![claim(2, 1, None)])
        .await
        .unwrap();
    assert_eq!(
        (c.state, c.effect, c.amount),
        (CaseState::Requested, Some(Effect::StopLines), yuan("10.50"))
    );
    // Requested changes no stock.
    assert_eq!(level(&ts, "SKU-1").await, (100, 2));
    let (c, after) = approve(&ts, &c).await.unwrap();
    assert_eq!(c.state, CaseState::Approved);
    assert_eq!(after.status, Status::Allocated);
    assert_eq!(after.units_to_ship(2), 1);
    assert_eq!(
        level(&ts, "SKU-1").await,
        (100, 1),
        "one unit back in the pool"
    );
    let id = c.case_id;
    let (c, _) = act(&ts, 2, move |tx, a| rma::refund(tx, a, id, Utc::now()))
        .await
        .unwrap();
    assert_eq!(c.state, CaseState::Refunded);
    let (c, _) = act(&ts, 2, move |tx, a| rma::close(tx, a, id, Utc::now()))
        .await
        .unwrap();
    assert_eq!(c.state, CaseState::Closed);
    // The rest ships: the shipment consumes what is still reserved, nothing more.
    apply(&ts, o.id, Command::Release).await.unwrap();
    apply(&ts, o.id, ship(1)).await.unwrap();
    assert_eq!(level(&ts, "SKU-1").await, (99, 0));
    assert_eq!(level(&ts, "SKU-0").await, (99, 0));
    let types = event_types(&ts, o.id).await;
    for t in [
        "after_sale.requested",
        "after_sale.approved",
        "after_sale.refunded",
        "order.refunded",
        "after_sale.closed",
    ] {
        assert_eq!(
            types.iter().filter(|x| *x == t).count(),
            1,
            "{t} in {types:?}"
        );
    }
    // The order's timeline shows the case's steps.
    let audit = ts
        .store
        .read(move |r| r.audit_for_order(&tenant("acme"), o.id))
        .await
        .unwrap();
    let steps: Vec<&str> = audit
        .iter()
        .filter(|e| e.action.starts_with("after_sale."))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "after_sale.requested",
            "after_sale.approved",
            "after_sale.refunded",
            "after_sale.closed"
        ]
    );
    let approved = audit
        .iter()
        .find(|e| e.action == "after_sale.approved")
        .unwrap();
    assert_eq!(approved.detail["case"]["case_id"], c.case_id.to_string());
    assert_eq!(approved.detail["stock"]["released"][0]["quantity"], 1);
}

async fn refunding_every_line_before_release_cancels_the_order_through_the_cancel_path(
    ts: TestStore,
) {
    seed(&ts).await;
    let o = order(&ts, "R2", &[]).await;
    let lines = vec![claim(1, 1, None), claim(2, 2, None), claim(3, 3, None)];
    let c = open(&ts, o.id, CaseKind::RefundOnly, lines).await.unwrap();
    assert_eq!(c.amount, yuan("63.00"));
    let (_, after) = approve(&ts, &c).await.unwrap();
    assert_eq!(after.status, Status::Cancelled);
    for s in ["SKU-0", "SKU-1", "SKU-2"] {
        assert_eq!(level(&ts, s).await, (100, 0), "{s}");
    }
    let types = event_types(&ts, o.id).await;
    assert!(types.contains(&"order.cancelled".to_owned()), "{types:?}");
    let r = ts
        .store
        .read(move |r| r.reservation(&tenant("acme"), o.reservation_id.unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert!(!r.state.is_active());
}

async fn claims_over_every_case_stay_within_the_line_to_the_cent(ts: TestStore) {
    seed(&ts).await;
    let o = order(&ts, "R3", &[]).await;
    // Line 3: 3 units, 31.50 paid.
    let first = open(&ts, o.id, CaseKind::RefundOnly, vec![claim(3, 2, None)])
        .await
        .unwrap();
    assert_eq!(first.amount, yuan("21.00"));
    let e = open(&ts, o.id, CaseKind::RefundOnly, vec![claim(3, 2, None)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CoreError::Validation(v) if v.rule == "exceeds_line_quantity"),
        "{e:?}"
    );
    let e = open(
        &ts,
        o.id,
        CaseKind::RefundOnly,
        vec![claim(3, 1, Some("10.51"))],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, CoreError::Validation(v) if v.rule == "exceeds_line_paid" && v.field == "lines[0].amount"),
        "{e:?}"
    );
    let last = open(&ts, o.id, CaseKind::RefundOnly, vec![claim(3, 1, None)])
        .await
        .unwrap();
    assert_eq!(last.amount, yuan("10.50"));
    // A refused case gives its claim back.
    let id = first.case_id;
    act(&ts, 2, move |tx, a| {
        rma::refuse(tx, a, id, "not eligible", Utc::now())
    })
    .await
    .unwrap();
    open(
        &ts,
        o.id,
        CaseKind::RefundOnly,
        vec![claim(3, 2, Some("21.00"))],
    )
    .await
    .unwrap();
    // A return of goods never shipped is refused with the reason.
    let e = open(
        &ts,
        o.id,
        CaseKind::ReturnAndRefund,
        vec![claim(1, 1, None)],
    )
    .await
    .unwrap_err();
    assert!(matches!(e, CoreError::CaseNotNow { .. }), "{e:?}");
    // Nothing was written by the refusals.
    let f = CaseFilter {
        tenant: tenant("acme"),
        state: None,
        order_id: Some(o.id),
        shops: None,
        after: None,
        limit: 50,
    };
    let all = ts.store.read(move |r| r.after_sales(&f)).await.unwrap();
    assert_eq!(all.len(), 3);
}

async fn a_return_failing_qc_is_quarantined_and_a_passing_one_is_back_on_hand(ts: TestStore) {
    seed(&ts).await;
    let o = order(
        &ts,
        "R4",
        &[allocate(), Command::Release, ship(4), Command::Deliver],
    )
    .await;
    assert_eq!(level(&ts, "SKU-0").await, (99, 0));
    assert_eq!(level(&ts, "SKU-2").await, (97, 0));
    let failed = open(
        &ts,
        o.id,
        CaseKind::ReturnAndRefund,
        vec![claim(1, 1, None)],
    )
    .await
    .unwrap();
    let passed = open(
        &ts,
        o.id,
        CaseKind::ReturnAndRefund,
        vec![claim(3, 2, None)],
    )
    .await
    .unwrap();
    for c in [&failed, &passed] {
        let (c, _) = approve(&ts, c).await.unwrap();
        assert_eq!(c.state, CaseState::GoodsReturning);
    }
    let id = failed.case_id;
    let (c, _) = act(&ts, 2, move |tx, a| {
        let r = Receipt {
            qc_passed: false,
            warehouse_id: None,
            note: Some("screen cracked".into()),
        };
        rma::receive(tx, a, id, &r, Utc::now())
    })
    .await
    .unwrap();
    assert_eq!(c.state, CaseState::QcFailed);
    // What people typed about the case reads back as typed, and is sealed at rest.
    assert_eq!(
        (c.reason.as_str(), c.qc.as_ref().unwrap().note.as_deref()),
        ("buyer asked", Some("screen cracked"))
    );
    let raw = ts
        .raw_text("SELECT CAST(doc AS TEXT) FROM after_sales")
        .join("\n");
    assert!(
        !raw.contains("buyer asked") && !raw.contains("screen cracked") && raw.contains("enc1:"),
        "{raw}"
    );
    assert_eq!(level(&ts, "SKU-0").await, (99, 0), "never back on sale");
    let q = ts
        .store
        .read(move |r| r.quarantine_of_case(&tenant("acme"), id))
        .await
        .unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].sku.as_str(), q[0].quantity, q[0].quantity_after),
        ("SKU-0", 1, 1)
    );
    assert_eq!(q[0].order_id, o.id);
    let pos = ts
        .store
        .read(|r| r.quarantine_position(&tenant("acme"), &sku("SKU-0"), &hz()))
        .await
        .unwrap();
    assert_eq!(pos, 1);
    let id = passed.case_id;
    let (c, _) = act(&ts, 2, move |tx, a| {
        let r = Receipt {
            qc_passed: true,
            warehouse_id: Some(hz()),
            note: None,
        };
        rma::receive(tx, a, id, &r, Utc::now())
    })
    .await
    .unwrap();
    assert_eq!(c.state, CaseState::QcPassed);
    assert_eq!(level(&ts, "SKU-2").await, (99, 0), "two back on hand");
    let ledger = ts
        .store
        .read(|r| r.ledger(&tenant("acme"), &sku("SKU-2"), Some(&hz()), 0, 100))
        .await
        .unwrap();
    let ret = ledger.iter().find(|(_, l)| l.movement == "return").unwrap();
    assert_eq!(ret.1.quantity, 2);
    assert_eq!(
        ret.1.reference.as_deref(),
        Some(format!("after_sale:{id}").as_str())
    );
    // Receiving twice is refused: the case has moved on.
    let e = act(&ts, 2, move |tx, a| {
        let r = Receipt {
            qc_passed: true,
            warehouse_id: None,
            note: None,
        };
        rma::receive(tx, a, id, &r, Utc::now())
    })
    .await
    .unwrap_err();
    assert!(matches!(e, CoreError::CaseNotAllowed { .. }), "{e:?}");
    let (c, _) = act(&ts, 2, move |tx, a| rma::refund(tx, a, id, Utc::now()))
        .await
        .unwrap();
    assert_eq!(c.state, CaseState::Refunded);
    let fid = failed.case_id;
    let (c, _) = act(&ts, 2, move |tx, a| rma::close(tx, a, fid, Utc::now()))
        .await
        .unwrap();
    assert_eq!(c.state, CaseState::Closed);
    let types = event_types(&ts, o.id).await;
    for t in [
        "after_sale.received",
        "after_sale.qc_failed",
        "after_sale.qc_passed",
    ] {
        assert!(types.contains(&t.to_owned()), "{t} in {types:?}");
    }
}

/// Runs `a` and `b` at once, on two writers.
async fn race<A, B>(ts: &TestStore, a: A, b: B) -> (bool, bool)
where
    A: Fn(&mut dyn orderhub_core::Tx, &orderhub_core::usecases::Actor) -> Result<(), CoreError>
        + Send
        + 'static,
    B: Fn(&mut dyn orderhub_core::Tx, &orderhub_core::usecases::Actor) -> Result<(), CoreError>
        + Send
        + 'static,
{
    let (x, y) = (actor("acme", Role::Ops), actor("acme", Role::Admin));
    let (s1, s2) = (ts.store.clone(), ts.store.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { s1.write(11, move |tx| a(tx, &x)).await }),
        tokio::spawn(async move { s2.write(12, move |tx| b(tx, &y)).await }),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    (ra.is_ok(), rb.is_ok())
}

async fn a_refund_approval_racing_a_shipment_lets_exactly_one_win(ts: TestStore) {
    seed(&ts).await;
    for n in 0..6 {
        let o = order(&ts, &format!("RS{n}"), &[allocate(), Command::Release]).await;
        let c = open(&ts, o.id, CaseKind::RefundOnly, vec![claim(1, 1, None)])
            .await
            .unwrap();
        assert_eq!(c.effect, Some(Effect::InterceptAtWarehouse));
        let (case_id, id) = (c.case_id, o.id);
        let (approved, shipped) = race(
            &ts,
            move |tx, a| {
                rma::approve(tx, a, case_id, None, Utc::now())?;
                Ok(())
            },
            move |tx, a| {
                transition(tx, a, id, &ship(100 + n), Utc::now())?;
                Ok(())
            },
        )
        .await;
        assert!(approved ^ shipped, "exactly one wins: {approved} {shipped}");
        let now = order_now(&ts, o.id).await;
        if approved {
            assert_eq!(now.status, Status::Released);
            assert!(now.has_exception("after_sale"));
            // The loser is told: the order is stopped.
            let e = apply(&ts, o.id, ship(200 + n)).await.unwrap_err();
            assert!(matches!(e, CoreError::Stopped { .. }), "{e:?}");
        } else {
            assert_eq!(now.status, Status::Shipped);
            assert_eq!(case_now(&ts, case_id).await.state, CaseState::Requested);
            let e = approve(&ts, &c).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    CoreError::EffectChanged {
                        now: Effect::InterceptParcel,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
    }
}

async fn a_refund_approval_racing_a_release_lets_exactly_one_win(ts: TestStore) {
    seed(&ts).await;
    let mut still_reserved = 0;
    for n in 0..6 {
        let o = order(&ts, &format!("RR{n}"), &[allocate()]).await;
        let lines = vec![claim(1, 1, None), claim(2, 2, None), claim(3, 3, None)];
        let c = open(&ts, o.id, CaseKind::RefundOnly, lines).await.unwrap();
        let (case_id, id) = (c.case_id, o.id);
        let (approved, released) = race(
            &ts,
            move |tx, a| {
                rma::approve(tx, a, case_id, None, Utc::now())?;
                Ok(())
            },
            move |tx, a| {
                transition(tx, a, id, &Command::Release, Utc::now())?;
                Ok(())
            },
        )
        .await;
        assert!(
            approved ^ released,
            "exactly one wins: {approved} {released}"
        );
        let now = order_now(&ts, o.id).await;
        if approved {
            assert_eq!(now.status, Status::Cancelled);
        } else {
            assert_eq!(now.status, Status::Released);
            assert_eq!(case_now(&ts, case_id).await.state, CaseState::Requested);
            still_reserved += 1;
        }
    }
    // Whatever won, no stock is lost or released twice: the released orders hold theirs.
    for (i, s) in ["SKU-0", "SKU-1", "SKU-2"].into_iter().enumerate() {
        assert_eq!(
            level(&ts, s).await,
            (100, still_reserved * (i as i64 + 1)),
            "{s}"
        );
    }
}

async fn two_approvals_of_one_case_have_one_effect(ts: TestStore) {
    seed(&ts).await;
    for n in 0..4 {
        let o = order(&ts, &format!("RA{n}"), &[]).await;
        let before = level(&ts, "SKU-1").await;
        let c = open(&ts, o.id, CaseKind::RefundOnly, vec![claim(2, 1, None)])
            .await
            .unwrap();
        let id = c.case_id;
        let (a, b) = race(
            &ts,
            move |tx, a| {
                rma::approve(tx, a, id, None, Utc::now())?;
                Ok(())
            },
            move |tx, a| {
                rma::approve(tx, a, id, None, Utc::now())?;
                Ok(())
            },
        )
        .await;
        assert!(a ^ b, "one approval wins: {a} {b}");
        assert_eq!(level(&ts, "SKU-1").await, (before.0, before.1 - 1));
        let approvals = event_types(&ts, o.id)
            .await
            .iter()
            .filter(|t| *t == "after_sale.approved")
            .count();
        assert_eq!(approvals, 1);
        let now = order_now(&ts, o.id).await;
        assert_eq!(now.stopped_lines.len(), 1);
    }
}

async fn the_channel_opens_one_case_per_refund_and_moves_it_to_refunded(ts: TestStore) {
    use orderhub_core::intake::{ChannelFacts, Ingested, ingest};
    use orderhub_domain::channel_update::RefundState;
    seed_tenant(&ts.store, "acme").await;
    let report = |minutes: i64, refund: RefundState| {
        let mut d = draft("tmall-1", "C1");
        for (i, l) in d.lines.iter_mut().enumerate() {
            l.external_line_id = Some(format!("L{i}"));
        }
        d.channel_status = Some("WAIT_SELLER_SEND_GOODS".into());
        d.channel_updated_at = Some(
            chrono::DateTime::from_timestamp(1_800_000_000 + minutes * 60, 0)
                .unwrap()
                .fixed_offset(),
        );
        let f = ChannelFacts {
            canonical: Status::Paid,
            partly_shipped: false,
            refunds: vec![RefundState::None, refund, RefundState::None],
            not_shippable: None,
            paid_at: None,
            shipment: None,
        };
        (d, f)
    };
    let ingest_one = |d: orderhub_domain::order::OrderDraft, f: ChannelFacts| {
        let a = actor("acme", Role::Admin);
        let s = ts.store.clone();
        async move {
            match s
                .write(0, move |tx| ingest(tx, &a, d.clone(), &f, Utc::now()))
                .await
                .unwrap()
            {
                Ingested::Created(o) | Ingested::Updated(o) => o,
                Ingested::Stale(o) => panic!("stale {o:?}"),
            }
        }
    };
    let (d, f) = report(0, RefundState::None);
    let o = ingest_one(d, f).await;
    let (d, f) = report(1, RefundState::Requested);
    let stopped = ingest_one(d, f).await;
    assert!(
        stopped.has_exception("after_sale"),
        "the line must not ship"
    );
    let cases_of = |id: OrderId| {
        let s = ts.store.clone();
        async move {
            let f = CaseFilter {
                tenant: tenant("acme"),
                state: None,
                order_id: Some(id),
                shops: None,
                after: None,
                limit: 50,
            };
            s.read(move |r| r.after_sales(&f)).await.unwrap()
        }
    };
    let cases = cases_of(o.id).await;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].state, CaseState::Requested);
    assert_eq!(cases[0].stop.as_deref(), Some("after_sale"));
    assert_eq!(
        (cases[0].lines[0].line_id, cases[0].lines[0].quantity),
        (2, 2)
    );
    assert_eq!(cases[0].amount, yuan("21.00"));
    // The same refund reported again (a newer report): no second case.
    let (d, f) = report(2, RefundState::Requested);
    ingest_one(d, f).await;
    assert_eq!(cases_of(o.id).await.len(), 1);
    // Refunded on the channel: the case is refunded; the stop stays.
    let (d, f) = report(3, RefundState::Refunded);
    let after = ingest_one(d, f).await;
    assert!(after.has_exception("after_sale"));
    let cases = cases_of(o.id).await;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].state, CaseState::Refunded);
    let types = event_types(&ts, o.id).await;
    assert!(types.contains(&"order.refunded".to_owned()), "{types:?}");
}

async fn receive_qc(ts: &TestStore, c: &AfterSaleCase, passed: bool) -> AfterSaleCase {
    let id = c.case_id;
    act(ts, 2, move |tx, a| {
        let r = Receipt {
            qc_passed: passed,
            warehouse_id: Some(hz()),
            note: None,
        };
        rma::receive(tx, a, id, &r, Utc::now())
    })
    .await
    .unwrap()
    .0
}

async fn exchange(
    ts: &TestStore,
    c: &AfterSaleCase,
    replacements: Vec<rma::Replacement>,
) -> Result<rma::Exchanged, CoreError> {
    let (a, id) = (actor("acme", Role::Ops), c.case_id);
    ts.store
        .write(2, move |tx| {
            rma::exchange(tx, &a, id, &replacements, Utc::now())
        })
        .await
}

async fn an_exchange_ships_the_replacement_on_an_order_of_its_own_after_qc(ts: TestStore) {
    seed(&ts).await;
    // Not delivered yet: no exchange.
    let shipped = order(&ts, "X0", &[allocate(), Command::Release, ship(7)]).await;
    let e = open(&ts, shipped.id, CaseKind::Exchange, vec![claim(2, 1, None)])
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::CaseNotNow { .. }), "{e:?}");
    let o = order(
        &ts,
        "X1",
        &[allocate(), Command::Release, ship(8), Command::Deliver],
    )
    .await;
    assert_eq!(
        level(&ts, "SKU-1").await,
        (96, 0),
        "two orders shipped two each"
    );
    // One unit of line 2 (SKU-1) comes back and SKU-2 ships instead; one unit of line 3 comes
    // back and fails QC.
    let c = open(&ts, o.id, CaseKind::Exchange, vec![claim(2, 1, None)])
        .await
        .unwrap();
    assert_eq!(c.amount, Money::ZERO, "no money moves in an exchange");
    let failed = open(&ts, o.id, CaseKind::Exchange, vec![claim(3, 1, None)])
        .await
        .unwrap();
    for x in [&c, &failed] {
        let (x, _) = approve(&ts, x).await.unwrap();
        assert_eq!(x.state, CaseState::GoodsReturning);
    }
    // Before QC passed there is nothing to ship.
    let e = exchange(&ts, &c, vec![]).await.unwrap_err();
    assert!(matches!(e, CoreError::CaseNotAllowed { .. }), "{e:?}");
    let c = receive_qc(&ts, &c, true).await;
    assert_eq!(c.state, CaseState::QcPassed);
    assert_eq!(
        level(&ts, "SKU-1").await,
        (97, 0),
        "the returned unit is back"
    );
    // The replacement SKU must be defined, for a line of the case.
    let unknown = vec![rma::Replacement {
        line_id: 2,
        sku: sku("NOPE"),
    }];
    let e = exchange(&ts, &c, unknown).await.unwrap_err();
    assert!(matches!(e, CoreError::Validation(v) if v.rule == "unknown_sku"));
    let other_line = vec![rma::Replacement {
        line_id: 3,
        sku: sku("SKU-2"),
    }];
    let e = exchange(&ts, &c, other_line).await.unwrap_err();
    assert!(matches!(e, CoreError::Validation(v) if v.rule == "not_in_case"));
    let done = exchange(
        &ts,
        &c,
        vec![rma::Replacement {
            line_id: 2,
            sku: sku("SKU-2"),
        }],
    )
    .await
    .unwrap();
    assert_eq!(done.case.state, CaseState::Exchanged);
    let r = done.replacement;
    assert_eq!(done.case.replacement_order_id, Some(r.id));
    assert_eq!(r.status, Status::Paid);
    assert_eq!(r.paid_amount, Money::ZERO);
    assert_eq!(
        (r.shop_id.clone(), r.channel.clone()),
        (o.shop_id.clone(), o.channel.clone())
    );
    assert_eq!(r.receiver.detail.expose(), o.receiver.detail.expose());
    assert_eq!(
        r.kind,
        orderhub_domain::OrderKind::Exchange {
            case_id: c.case_id,
            original_order_id: o.id
        }
    );
    assert_eq!(r.lines.len(), 1);
    assert_eq!((r.lines[0].sku.as_str(), r.lines[0].quantity), ("SKU-2", 1));
    // Its stock is reserved as any paid order's, and it ships through the lifecycle.
    assert!(r.reservation_id.is_some());
    assert_eq!(level(&ts, "SKU-2").await, (94, 1));
    for cmd in [allocate(), Command::Release, ship(9)] {
        apply(&ts, r.id, cmd).await.unwrap();
    }
    assert_eq!(level(&ts, "SKU-2").await, (93, 0));
    // Once: the table refuses a second exchange; the case closes.
    let e = exchange(&ts, &done.case, vec![]).await.unwrap_err();
    assert!(matches!(e, CoreError::CaseNotAllowed { .. }), "{e:?}");
    let id = c.case_id;
    let (closed, _) = act(&ts, 2, move |tx, a| rma::close(tx, a, id, Utc::now()))
        .await
        .unwrap();
    assert_eq!(closed.state, CaseState::Closed);
    assert!(
        event_types(&ts, o.id)
            .await
            .iter()
            .any(|t| t == "after_sale.exchanged")
    );
    // QC failed: the exchange is refused — no replacement, the case closes.
    let failed = receive_qc(&ts, &failed, false).await;
    assert_eq!(failed.state, CaseState::QcFailed);
    let e = exchange(&ts, &failed, vec![]).await.unwrap_err();
    assert!(matches!(e, CoreError::CaseNotAllowed { .. }), "{e:?}");
    let id = failed.case_id;
    let (closed, _) = act(&ts, 2, move |tx, a| rma::close(tx, a, id, Utc::now()))
        .await
        .unwrap();
    assert_eq!(
        (closed.state, closed.replacement_order_id),
        (CaseState::Closed, None)
    );
    // Closed without a replacement, it no longer holds its unit: a refund of every unit of the
    // line (3) may be opened.
    let refund = open(&ts, o.id, CaseKind::RefundOnly, vec![claim(3, 3, None)]).await;
    assert!(refund.is_ok(), "{refund:?}");
    // Line 2's other unit refunded: its share of the line, not the whole line (the exchanged
    // unit was paid for too).
    let paid = o.lines.iter().find(|l| l.line_id == 2).unwrap().paid_amount;
    let rest = open(&ts, o.id, CaseKind::RefundOnly, vec![claim(2, 1, None)])
        .await
        .unwrap();
    assert!(
        rest.amount.amount() * rust_decimal::Decimal::from(2) <= paid.amount(),
        "one of two units refunded {} of a line paid {paid}",
        rest.amount
    );
}

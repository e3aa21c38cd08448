//! Order health scores (issue 24) on both backends: each order judged by its columns (late,
//! refunded, shipped without write-back or scan), the orders behind a drop, and a seeded history
//! where one shop stays below C for three days — one alert per streak, none on a second run.
//! Every time is fixed: payments, shipments and the computation's clock.

use crate::backend::Raw;
use crate::backend::*;
use chrono::{DateTime, NaiveDate, Utc};
use orderhub_core::after_sales::{self as rma, OpenCase};
use orderhub_core::auth::Role;
use orderhub_core::inventory as inv;
use orderhub_core::ports::{SkuRecord, WarehouseRecord};
use orderhub_core::usecases::{
    Created, create_order, raise_exception, resolve_by_watchdog, transition,
};
use orderhub_domain::after_sales::{CaseKind, LineClaim};
use orderhub_domain::event_types;
use orderhub_domain::health::{Counts, Grade, HealthConfig, Weights};
use orderhub_domain::ids::{CarrierCode, WarehouseId};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{OrderId, Sku};
use orderhub_store::health::day_range;
use orderhub_store::health::{OrdersQuery, compute};

conformance!(
    health_counts_judge_each_order_by_its_columns,
    exceptions_and_lag_are_judged_by_the_query,
    three_days_below_c_raise_one_alert_per_streak,
    migration_0030_fills_the_columns_as_the_code_writes_them,
);

fn hz() -> WarehouseId {
    WarehouseId::parse("HZ").unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
}

async fn seed(ts: &TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let now = at("2026-11-01T00:00:00Z");
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
                let s = Sku::parse(&format!("SKU-{i}")).unwrap();
                let rec = SkuRecord {
                    sku: s.clone(),
                    title: "x".into(),
                    components: None,
                    weight_kg: None,
                };
                inv::define_sku(tx, &a, &rec, now)?;
                inv::receive(tx, &a, &s, &hz(), 10_000, None, now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Creates an order of `shop` paid (and received) at `paid_at`, due by `ship_by`.
async fn order(ts: &TestStore, shop: &str, ext: &str, paid_at: &str, ship_by: &str) -> OrderId {
    let a = actor("acme", Role::Admin);
    let mut d = draft(shop, ext);
    d.promised_ship_by = Some(DateTime::parse_from_rfc3339(ship_by).unwrap());
    let p = DateTime::parse_from_rfc3339(paid_at).unwrap();
    ts.store
        .write(0, move |tx| {
            let now = p.to_utc();
            let o = match create_order(tx, &a, d.clone(), now)? {
                Created::New(o) => o,
                other => panic!("{other:?}"),
            };
            let pay = Command::Pay {
                paid_at: Some(p),
                amount: None,
            };
            transition(tx, &a, o.id, &pay, now)?;
            Ok(o.id)
        })
        .await
        .unwrap()
}

/// Allocates, releases and ships `id` at `when` with sf.
async fn ship(ts: &TestStore, id: OrderId, n: u32, when: &str) {
    let a = actor("acme", Role::Admin);
    let when = at(when);
    ts.store
        .write(0, move |tx| {
            for c in [
                Command::Allocate { warehouse_id: hz() },
                Command::Release,
                Command::Ship {
                    carrier: CarrierCode::parse("sf").unwrap(),
                    tracking_no: format!("SF{n:08}"),
                    logistics_no: format!("LN{n}"),
                },
            ] {
                transition(tx, &a, id, &c, when)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

async fn refund_line_one(ts: &TestStore, id: OrderId) {
    let a = actor("acme", Role::Admin);
    ts.store
        .write(1, move |tx| {
            let now = at("2026-12-03T09:00:00Z");
            let input = OpenCase {
                kind: CaseKind::RefundOnly,
                lines: vec![LineClaim {
                    line_id: 1,
                    quantity: 1,
                    amount: None,
                }],
                reason: "buyer asked".into(),
            };
            let (c, _) = rma::open(tx, &a, id, &input, now)?;
            rma::approve(tx, &a, c.case_id, None, now)?;
            rma::refund(tx, &a, c.case_id, now)?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn health_counts_judge_each_order_by_its_columns(ts: TestStore) {
    seed(&ts).await;
    // Dec 1, shop tmall-1: shipped on time (never acknowledged by the channel nor scanned),
    // overdue and never shipped, refunded (not yet due). Shop jd-1: one not due yet.
    let shipped = order(
        &ts,
        "tmall-1",
        "A",
        "2026-12-01T10:00:00Z",
        "2026-12-01T18:00:00Z",
    )
    .await;
    ship(&ts, shipped, 1, "2026-12-01T17:00:00Z").await;
    let overdue = order(
        &ts,
        "tmall-1",
        "B",
        "2026-12-01T10:00:00Z",
        "2026-12-02T10:00:00Z",
    )
    .await;
    let refunded = order(
        &ts,
        "tmall-1",
        "C",
        "2026-12-01T11:00:00Z",
        "2026-12-09T10:00:00Z",
    )
    .await;
    refund_line_one(&ts, refunded).await;
    order(
        &ts,
        "jd-1",
        "D",
        "2026-12-01T11:00:00Z",
        "2026-12-09T10:00:00Z",
    )
    .await;
    let now = at("2026-12-05T00:00:00Z");
    let cfg = HealthConfig::default();
    let groups = ts
        .store
        .read(move |r| r.health_counts(&tenant("acme"), day_range(day(1)), now, &cfg))
        .await
        .unwrap();
    let got: Vec<_> = groups
        .iter()
        .map(|g| {
            (
                g.shop.as_str(),
                g.warehouse.as_str(),
                g.carrier.as_str(),
                g.counts,
            )
        })
        .collect();
    let one = Counts {
        orders: 1,
        ..Counts::default()
    };
    assert_eq!(
        got,
        [
            ("jd-1", "none", "none", one),
            (
                "tmall-1",
                "HZ",
                "sf",
                Counts {
                    due: 1,
                    shipped: 1,
                    write_back_failed: 1,
                    untracked: 1,
                    ..one
                }
            ),
            (
                "tmall-1",
                "none",
                "none",
                Counts {
                    orders: 2,
                    due: 1,
                    late: 1,
                    refunded: 1,
                    ..Counts::default()
                }
            ),
        ]
    );
    // Before B's deadline nothing is late and the shipment's bounds have not passed.
    let early = at("2026-12-01T18:00:00Z");
    let groups = ts
        .store
        .read(move |r| r.health_counts(&tenant("acme"), day_range(day(1)), early, &cfg))
        .await
        .unwrap();
    let mut total = Counts::default();
    groups.iter().for_each(|g| total.add(&g.counts));
    assert_eq!(
        (total.late, total.write_back_failed, total.untracked),
        (0, 0, 0)
    );

    // The orders behind tmall-1's drop: each with what it fails, by id; one component only.
    let q = |component: Option<&'static str>, after: Option<OrderId>| OrdersQuery {
        day: day(1),
        dimension: "shop",
        key: "tmall-1".into(),
        component,
        after,
        limit: 2,
    };
    let page = ts
        .store
        .read(move |r| r.health_orders(&tenant("acme"), &q(None, None), now, &cfg))
        .await
        .unwrap();
    let ids: Vec<_> = page
        .iter()
        .map(|o| (o.order_id, o.failing.clone()))
        .collect();
    assert_eq!(
        ids,
        [
            (shipped, vec!["write_back", "tracking"]),
            (overdue, vec!["on_time"]),
        ]
    );
    let rest = ts
        .store
        .read(move |r| r.health_orders(&tenant("acme"), &q(None, Some(overdue)), now, &cfg))
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(
        (rest[0].order_id, rest[0].failing.clone()),
        (refunded, vec!["refunds"])
    );
    let late = ts
        .store
        .read(move |r| r.health_orders(&tenant("acme"), &q(Some("on_time"), None), now, &cfg))
        .await
        .unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].order_id, overdue);
}

/// Only shipping on time counts, so that the seeded grades are plain.
fn on_time_only() -> HealthConfig {
    HealthConfig {
        weights: Weights {
            on_time: 1,
            exceptions: 0,
            exception_age: 0,
            refunds: 0,
            sync_lag: 0,
            write_back: 0,
            tracking: 0,
        },
        ..HealthConfig::default()
    }
}

/// Day `d`: tmall-1 ships nothing of one order due that day; jd-1 ships three on time.
async fn seed_day(ts: &TestStore, d: u32) {
    let paid = format!("2026-12-{d:02}T08:00:00Z");
    let by = format!("2026-12-{d:02}T20:00:00Z");
    order(ts, "tmall-1", &format!("T{d}"), &paid, &by).await;
    for i in 0..3 {
        let id = order(ts, "jd-1", &format!("J{d}-{i}"), &paid, &by).await;
        ship(ts, id, d * 10 + i, &format!("2026-12-{d:02}T12:00:00Z")).await;
    }
}

async fn three_days_below_c_raise_one_alert_per_streak(ts: TestStore) {
    seed(&ts).await;
    let cfg = on_time_only();
    ts.store
        .write(0, move |tx| {
            tx.health_config_put(&tenant("acme"), &cfg, at("2026-11-30T00:00:00Z"))?;
            Ok(())
        })
        .await
        .unwrap();
    let now = at("2026-12-09T00:00:00Z");
    let mut raised = Vec::new();
    for d in 1..=4 {
        seed_day(&ts, d).await;
        let c = compute(&ts.store, &tenant("acme"), day(d), now, "req-h")
            .await
            .unwrap();
        raised.push(
            c.raised
                .iter()
                .map(|a| (a.dimension.clone(), a.key.clone(), a.streak_start))
                .collect::<Vec<_>>(),
        );
        let grade = |dim: &str, key: &str| {
            c.scores
                .iter()
                .find(|s| s.dimension == dim && s.key == key)
                .and_then(|s| s.grade)
        };
        assert_eq!(grade("shop", "tmall-1"), Some(Grade::D));
        assert_eq!(grade("shop", "jd-1"), Some(Grade::A));
        assert_eq!(grade("channel", "taobao"), Some(Grade::C), "3 of 4 on time");
    }
    assert_eq!(raised[0], []);
    assert_eq!(raised[1], []);
    let s = |dim: &str, key: &str| (dim.to_owned(), key.to_owned(), day(1));
    assert_eq!(
        raised[2],
        [
            s("shop", "tmall-1"),
            s("warehouse", "none"),
            s("carrier", "none")
        ]
    );
    assert_eq!(raised[3], [], "day 4 continues the same streak");
    // Computing day 3 again replaces its scores and raises nothing.
    let again = compute(&ts.store, &tenant("acme"), day(3), now, "req-h")
        .await
        .unwrap();
    assert!(again.raised.is_empty());
    let stored = ts
        .store
        .read(|r| r.health_scores(&tenant("acme"), Some("shop"), None, day(1), day(4), 100))
        .await
        .unwrap();
    let got: Vec<_> = stored
        .iter()
        .map(|s| (s.day, s.key.as_str(), s.score.map(|x| x.to_string())))
        .collect();
    let mut want = Vec::new();
    for d in 1..=4 {
        want.push((day(d), "jd-1", Some("100.0".to_owned())));
        want.push((day(d), "tmall-1", Some("0.0".to_owned())));
    }
    assert_eq!(got, want);
    let events = ts
        .store
        .read(|r| r.events_after(&tenant("acme"), 0, 10_000))
        .await
        .unwrap();
    let alerts: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.event.event_type == event_types::HEALTH_ALERT)
        .map(|e| serde_json::from_str(&e.event.payload).unwrap())
        .collect();
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts[0]["shop_id"], "tmall-1");
    assert_eq!(alerts[0]["streak_start"], "2026-12-01");
    assert_eq!(alerts[0]["day"], "2026-12-03");
    assert_eq!(alerts[1]["shop_id"], serde_json::Value::Null);
}

/// The statements of migration 0030 that fill the new columns from the documents.
fn backfill(ts: &TestStore) -> String {
    let m = match ts.raw {
        Raw::Sqlite(_) => include_str!("../../migrations/sqlite/0030_health.sql"),
        Raw::Postgres(_) => include_str!("../../migrations/postgres/0030_health.sql"),
    };
    let at = m.find("\nUPDATE ").unwrap();
    let end = at + m[at..].find(";\n").unwrap() + 2;
    m[at..end].to_owned()
}

fn columns(ts: &TestStore) -> Vec<String> {
    ts.raw_text(
        "SELECT concat_ws('|', order_id, warehouse_id, carrier, province,
                coalesce(CAST(synced_at AS TEXT), '-'), coalesce(CAST(tracked_at AS TEXT), '-'))
         FROM orders ORDER BY order_id",
    )
}

async fn migration_0030_fills_the_columns_as_the_code_writes_them(ts: TestStore) {
    seed(&ts).await;
    // Shipped then picked up (scanned), shipped only, and paid only.
    let a = order(
        &ts,
        "tmall-1",
        "A",
        "2026-12-01T10:00:00Z",
        "2026-12-02T10:00:00Z",
    )
    .await;
    ship(&ts, a, 1, "2026-12-01T12:00:00Z").await;
    let actor = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            transition(
                tx,
                &actor,
                a,
                &Command::Pickup,
                at("2026-12-01T13:00:00.250Z"),
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let b = order(
        &ts,
        "tmall-1",
        "B",
        "2026-12-01T10:00:00Z",
        "2026-12-02T10:00:00Z",
    )
    .await;
    ship(&ts, b, 2, "2026-12-01T12:00:00Z").await;
    order(
        &ts,
        "jd-1",
        "C",
        "2026-12-01T10:00:00Z",
        "2026-12-02T10:00:00Z",
    )
    .await;
    let written = columns(&ts);
    assert_eq!(written.len(), 3, "{written:?}");
    assert!(written.iter().any(|r| r.contains("|HZ|sf|")), "{written:?}");
    ts.exec(
        "UPDATE orders SET warehouse_id = 'none', carrier = 'none', province = '',
             synced_at = NULL, tracked_at = NULL",
    );
    assert_ne!(columns(&ts), written);
    ts.exec(&backfill(&ts));
    assert_eq!(columns(&ts), written);
}

/// Creates an order of tmall-1 at `created` paid at `paid`, then runs `then` on it in the same
/// transaction.
async fn order_then<F>(ts: &TestStore, ext: &str, created: &str, paid: &str, then: F) -> OrderId
where
    F: Fn(
            &mut dyn orderhub_store::AdminTx,
            OrderId,
            DateTime<Utc>,
        ) -> Result<(), orderhub_core::CoreError>
        + Send
        + 'static,
{
    let a = actor("acme", Role::Admin);
    let d = draft("tmall-1", ext);
    let (created, paid) = (at(created), DateTime::parse_from_rfc3339(paid).unwrap());
    ts.store
        .write(0, move |tx| {
            let o = match create_order(tx, &a, d.clone(), created)? {
                Created::New(o) => o,
                other => panic!("{other:?}"),
            };
            let pay = Command::Pay {
                paid_at: Some(paid),
                amount: None,
            };
            transition(tx, &a, o.id, &pay, created)?;
            then(tx, o.id, created)?;
            Ok(o.id)
        })
        .await
        .unwrap()
}

/// The exception and lag predicates of the per-order query on each backend: an open exception
/// past its SLA due time, one resolved (an exception, not overdue), a manual hold (neither), an
/// order received two hours after its payment (lagged at a 30-minute bound), and one of none.
async fn exceptions_and_lag_are_judged_by_the_query(ts: TestStore) {
    seed(&ts).await;
    let a = actor("acme", Role::Admin);
    let (t0, paid) = ("2026-12-02T10:00:00Z", "2026-12-02T10:00:00Z");
    let a1 = a.clone();
    order_then(&ts, "OPEN", t0, paid, move |tx, id, now| {
        raise_exception(tx, &a1, id, "no_waybill", serde_json::json!({}), now)?;
        Ok(())
    })
    .await;
    let a2 = a.clone();
    order_then(&ts, "RESOLVED", t0, paid, move |tx, id, now| {
        raise_exception(tx, &a2, id, "no_waybill", serde_json::json!({}), now)?;
        resolve_by_watchdog(tx, &a2, id, "no_waybill", serde_json::json!({}), now)?;
        Ok(())
    })
    .await;
    let a3 = a.clone();
    order_then(&ts, "HELD", t0, paid, move |tx, id, now| {
        let hold = Command::Hold {
            reason: "call the buyer".into(),
        };
        transition(tx, &a3, id, &hold, now)?;
        Ok(())
    })
    .await;
    order_then(&ts, "LATE-IN", "2026-12-02T12:00:00Z", paid, |_, _, _| {
        Ok(())
    })
    .await;
    order_then(&ts, "PLAIN", t0, paid, |_, _, _| Ok(())).await;
    let cfg = HealthConfig::default();
    // A week later: the open exception is past any SLA's due time.
    let now = at("2026-12-09T00:00:00Z");
    let groups = ts
        .store
        .read(move |r| r.health_counts(&tenant("acme"), day_range(day(2)), now, &cfg))
        .await
        .unwrap();
    let got: Vec<_> = groups.iter().map(|g| (g.shop.as_str(), g.counts)).collect();
    assert_eq!(
        got,
        [(
            "tmall-1",
            Counts {
                orders: 5,
                with_exception: 2,
                exception_overdue: 1,
                lagged: 1,
                ..Counts::default()
            }
        )]
    );
    // The orders behind the exceptions' drop: the open one and the resolved one.
    let q = OrdersQuery {
        day: day(2),
        dimension: "shop",
        key: "tmall-1".into(),
        component: Some("exceptions"),
        after: None,
        limit: 10,
    };
    let page = ts
        .store
        .read(move |r| r.health_orders(&tenant("acme"), &q, now, &cfg))
        .await
        .unwrap();
    assert_eq!(page.len(), 2, "{page:?}");
}

//! Golden metrics and the data-quality check (issue 23) on both backends: what counts (paid, not
//! test, not employee), refunds netted on the order's payment day, AOV, refund and on-time rates,
//! the UTC day; a day 20% up raises the GMV and order alerts once, a day within 5% raises none.
//! Every time is fixed: payments, shipments and the check's clock.

use crate::backend::*;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use orderhub_core::after_sales::{self as rma, OpenCase};
use orderhub_core::auth::Role;
use orderhub_core::inventory as inv;
use orderhub_core::ports::{SkuRecord, WarehouseRecord};
use orderhub_core::quality::MetricRow;
use orderhub_core::usecases::{Created, create_order, transition};
use orderhub_domain::after_sales::{CaseKind, LineClaim};
use orderhub_domain::event_types;
use orderhub_domain::ids::{CarrierCode, WarehouseId};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::metrics::Sums;
use orderhub_domain::order::OrderDraft;
use orderhub_domain::{OrderId, Sku};
use orderhub_store::metrics::{day_start, quality_check};
use rust_decimal::Decimal;

conformance!(
    golden_sums_count_paid_orders_only_net_of_refunds_by_utc_day,
    migration_0028_fills_the_columns_as_the_code_writes_them,
    a_day_twenty_percent_up_raises_the_gmv_and_order_alerts_once,
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

/// The tenant, warehouse HZ and SKU-0..2 with 1,000 units each (every `draft` order is 63.00).
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
                inv::receive(tx, &a, &s, &hz(), 1_000, None, now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Creates `d` and, when `paid_at` is given, pays it then; returns its id.
async fn order(ts: &TestStore, d: OrderDraft, paid_at: Option<&str>) -> OrderId {
    let a = actor("acme", Role::Admin);
    let paid_at = paid_at.map(|p| DateTime::parse_from_rfc3339(p).unwrap());
    ts.store
        .write(0, move |tx| {
            let now = paid_at.map_or(at("2026-11-30T00:00:00Z"), |p| p.to_utc());
            let o = match create_order(tx, &a, d.clone(), now)? {
                Created::New(o) => o,
                other => panic!("{other:?}"),
            };
            if let Some(p) = paid_at {
                let pay = Command::Pay {
                    paid_at: Some(p),
                    amount: None,
                };
                transition(tx, &a, o.id, &pay, now)?;
            }
            Ok(o.id)
        })
        .await
        .unwrap()
}

/// Allocates, releases and ships `id` at `when`.
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

/// Opens a refund of line 1 (SKU-0 ×1, 10.50) on `id`, approves it and records the refund.
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

async fn sums(ts: &TestStore, from: NaiveDate, to: NaiveDate) -> Vec<MetricRow> {
    ts.store
        .read(move |r| {
            r.metric_sums(
                &tenant("acme"),
                None,
                day_start(from),
                day_start(to + Duration::days(1)),
            )
        })
        .await
        .unwrap()
}

fn with_deadline(ext: &str, by: &str) -> OrderDraft {
    let mut d = draft("tmall-1", ext);
    d.promised_ship_by = Some(DateTime::parse_from_rfc3339(by).unwrap());
    d
}

async fn golden_sums_count_paid_orders_only_net_of_refunds_by_utc_day(ts: TestStore) {
    seed(&ts).await;
    // Counted on Dec 1: shipped on time, shipped late, refunded 10.50, and one paid at 01:00 in
    // +08:00 on Dec 2 — still Dec 1 in UTC — in another shop.
    let on_time = order(
        &ts,
        with_deadline("A", "2026-12-01T18:00:00Z"),
        Some("2026-12-01T10:00:00Z"),
    )
    .await;
    ship(&ts, on_time, 1, "2026-12-01T18:00:00Z").await;
    let late = order(
        &ts,
        with_deadline("B", "2026-12-01T12:00:00Z"),
        Some("2026-12-01T10:00:00Z"),
    )
    .await;
    ship(&ts, late, 2, "2026-12-01T12:00:01Z").await;
    let refunded = order(&ts, draft("tmall-1", "C"), Some("2026-12-01T11:00:00Z")).await;
    refund_line_one(&ts, refunded).await;
    order(&ts, draft("jd-1", "G"), Some("2026-12-02T01:00:00+08:00")).await;
    // Not counted: a test order, an employee order, an unpaid one.
    let mut test = draft("tmall-1", "D");
    test.is_test = true;
    order(&ts, test, Some("2026-12-01T10:00:00Z")).await;
    let mut employee = draft("tmall-1", "E");
    employee.is_employee = true;
    order(&ts, employee, Some("2026-12-01T10:00:00Z")).await;
    order(&ts, draft("tmall-1", "F"), None).await;
    // Dec 2 in UTC.
    order(&ts, draft("tmall-1", "H"), Some("2026-12-02T10:00:00Z")).await;

    let rows = sums(&ts, day(1), day(2)).await;
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.day, r.shop_id.as_str(), r.sums))
        .collect();
    assert_eq!(
        got,
        [
            (
                day(1),
                "jd-1",
                Sums {
                    orders: 1,
                    paid_cents: 6_300,
                    ..Sums::default()
                }
            ),
            (
                day(1),
                "tmall-1",
                Sums {
                    orders: 3,
                    paid_cents: 18_900,
                    refunded_cents: 1_050,
                    refunded_orders: 1,
                    shipped_with_deadline: 2,
                    shipped_on_time: 1,
                }
            ),
            (
                day(2),
                "tmall-1",
                Sums {
                    orders: 1,
                    paid_cents: 6_300,
                    ..Sums::default()
                }
            ),
        ]
    );
    let mut dec1 = Sums::default();
    for r in rows.iter().filter(|r| r.day == day(1)) {
        dec1.add(&r.sums);
    }
    let g = dec1.golden();
    assert_eq!(g.gmv.to_string(), "241.50");
    assert_eq!(g.orders, 4);
    assert_eq!(g.aov.to_string(), "60.38");
    assert_eq!(g.refund_rate.to_string(), "0.2500");
    assert_eq!(
        g.on_time_ship_rate.map(|r| r.to_string()),
        Some("0.5000".into())
    );

    // A shop-scoped read sees its shops only.
    let scoped = ts
        .store
        .read(|r| {
            r.metric_sums(
                &tenant("acme"),
                Some(&[orderhub_domain::ShopId::parse("jd-1").unwrap()]),
                day_start(day(1)),
                day_start(day(3)),
            )
        })
        .await
        .unwrap();
    assert_eq!(scoped.len(), 1);
    assert_eq!(scoped[0].shop_id, "jd-1");
}

/// `n` orders of 63.00 paid on `d` at 10:00 UTC.
async fn orders_on(ts: &TestStore, d: u32, n: u32) {
    for i in 0..n {
        let paid = format!("2026-12-{d:02}T10:00:{i:02}Z");
        order(ts, draft("tmall-1", &format!("Q{d}-{i}")), Some(&paid)).await;
    }
}

async fn a_day_twenty_percent_up_raises_the_gmv_and_order_alerts_once(ts: TestStore) {
    seed(&ts).await;
    for d in 1..=7 {
        orders_on(&ts, d, 5).await;
    }
    orders_on(&ts, 8, 6).await;
    let now = Utc.with_ymd_and_hms(2026, 12, 9, 2, 0, 0).unwrap();
    let five = Decimal::from(5);
    let raised = quality_check(&ts.store, &tenant("acme"), day(8), five, now, "req-q")
        .await
        .unwrap();
    let got: Vec<_> = raised
        .iter()
        .map(|a| {
            (
                a.scope_kind.as_str(),
                a.scope.as_str(),
                a.metric.as_str(),
                a.value.to_string(),
                a.baseline.to_string(),
                a.change_pct.to_string(),
            )
        })
        .collect();
    let s = |x: &str| x.to_owned();
    let gmv = (s("378.00"), s("315"), s("20.00"));
    let orders = (s("6"), s("5"), s("20.00"));
    let want: Vec<_> = [("all", ""), ("channel", "taobao"), ("shop", "tmall-1")]
        .into_iter()
        .flat_map(|(k, sc)| {
            [
                (k, sc, "gmv", gmv.0.clone(), gmv.1.clone(), gmv.2.clone()),
                (
                    k,
                    sc,
                    "orders",
                    orders.0.clone(),
                    orders.1.clone(),
                    orders.2.clone(),
                ),
            ]
        })
        .collect();
    assert_eq!(got, want);

    // Stored, listed, and each with its event; a second run raises nothing again.
    let again = quality_check(&ts.store, &tenant("acme"), day(8), five, now, "req-q")
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let listed = ts
        .store
        .read(|r| r.quality_alerts(&tenant("acme"), day(1), day(30), None, 100))
        .await
        .unwrap();
    assert_eq!(listed.len(), 6);
    let page = ts
        .store
        .read(move |r| r.quality_alerts(&tenant("acme"), day(1), day(30), None, 4))
        .await
        .unwrap();
    let last = page[3].alert_id;
    let rest = ts
        .store
        .read(move |r| r.quality_alerts(&tenant("acme"), day(1), day(30), Some(last), 4))
        .await
        .unwrap();
    assert_eq!(page.len() + rest.len(), 6);
    let events = ts
        .store
        .read(|r| r.events_after(&tenant("acme"), 0, 10_000))
        .await
        .unwrap();
    let alerts: Vec<_> = events
        .iter()
        .filter(|e| e.event.event_type == event_types::QUALITY_ALERT)
        .collect();
    assert_eq!(alerts.len(), 6);
    let p: serde_json::Value = serde_json::from_str(&alerts[0].event.payload).unwrap();
    assert_eq!(p["metric"], "gmv");
    assert_eq!(p["change_pct"], "20.00");
    assert_eq!(
        p["shop_id"],
        serde_json::Value::Null,
        "the tenant's alert is of no shop"
    );
    let shop: Vec<serde_json::Value> = alerts
        .iter()
        .map(|e| serde_json::from_str(&e.event.payload).unwrap())
        .filter(|p: &serde_json::Value| p["scope_kind"] == "shop")
        .collect();
    assert_eq!(shop.len(), 2);
    assert!(shop.iter().all(|p| p["shop_id"] == "tmall-1"));

    // Day 9 back at 5 orders: 315.00 against the mean of days 2–8 (324.00) is −2.78%: nothing.
    orders_on(&ts, 9, 5).await;
    let now = now + Duration::days(1);
    let raised = quality_check(&ts.store, &tenant("acme"), day(9), five, now, "req-q")
        .await
        .unwrap();
    assert!(raised.is_empty(), "{raised:?}");
}

/// The statements of migration 0028 that fill the new columns from the documents.
fn backfill(ts: &TestStore) -> (String, bool) {
    let (m, sqlite) = match ts.raw {
        Raw::Sqlite(_) => (
            include_str!("../../migrations/sqlite/0028_quality.sql"),
            true,
        ),
        Raw::Postgres(_) => (
            include_str!("../../migrations/postgres/0028_quality.sql"),
            false,
        ),
    };
    let mut out = String::new();
    for (at, _) in m.match_indices("\nUPDATE ") {
        let end = at + m[at..].find(";\n").unwrap() + 2;
        out.push_str(&m[at..end]);
    }
    (out, sqlite)
}

fn columns(ts: &TestStore) -> Vec<String> {
    let mut rows = ts.raw_text(
        "SELECT concat_ws('|', order_id, coalesce(CAST(paid_at AS TEXT), '-'), paid_cents,
                CAST(metrics_excluded AS TEXT), coalesce(CAST(ship_by AS TEXT), '-'),
                coalesce(CAST(shipped_at AS TEXT), '-')) FROM orders ORDER BY order_id",
    );
    rows.extend(ts.raw_text(
        "SELECT concat_ws('|', case_id, coalesce(CAST(refunded_cents AS TEXT), '-'))
         FROM after_sales ORDER BY case_id",
    ));
    rows
}

async fn migration_0028_fills_the_columns_as_the_code_writes_them(ts: TestStore) {
    seed(&ts).await;
    let a = order(
        &ts,
        with_deadline("A", "2026-12-01T18:00:00.250Z"),
        Some("2026-12-02T01:00:00.5+08:00"),
    )
    .await;
    ship(&ts, a, 1, "2026-12-01T19:00:00Z").await;
    refund_line_one(&ts, a).await;
    let mut test = draft("tmall-1", "T");
    test.is_employee = true;
    order(&ts, test, Some("2026-12-01T10:00:00Z")).await;
    order(&ts, draft("tmall-1", "U"), None).await;
    let written = columns(&ts);
    assert_eq!(written.len(), 4, "{written:?}");
    let (sql, sqlite) = backfill(&ts);
    let f = if sqlite { "0" } else { "false" };
    ts.exec(&format!(
        "UPDATE orders SET paid_at = NULL, paid_cents = 0, metrics_excluded = {f}, ship_by = NULL,
             shipped_at = NULL;
         UPDATE after_sales SET refunded_cents = NULL;"
    ));
    assert_ne!(columns(&ts), written);
    ts.exec(&sql);
    assert_eq!(columns(&ts), written);
}

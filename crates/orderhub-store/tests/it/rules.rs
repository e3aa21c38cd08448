//! Rule sets (issue 22) on both backends: the approval steps (the author never approves), the
//! live set chosen by effective time, and hold, tag and carrier rules applied to orders in the
//! order's own transaction with the set's version and the rule in the audit.

use crate::backend::*;
use chrono::{Duration, TimeZone, Utc};
use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::inventory as inv;
use orderhub_core::ports::{SkuRecord, WarehouseRecord};
use orderhub_core::rules::{self, RuleSetRecord, RuleSetState};
use orderhub_core::usecases::{Actor, Created, create_order, transition};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::LineDraft;
use orderhub_domain::{Currency, Money, Order, Sku, Status};
use orderhub_rules::{Rule, RuleKind};
use serde_json::json;

conformance!(
    a_rule_set_needs_a_second_key_to_approve_and_moves_one_step_at_a_time,
    the_live_set_is_the_latest_published_whose_effective_time_has_passed,
    hold_tag_and_carrier_rules_decide_in_the_orders_transaction_and_the_audit_names_them,
    a_deadline_rule_gives_an_order_its_ship_by_unless_its_channel_promised_one,
    a_review_hold_and_the_channels_stop_at_one_payment_both_stand,
    a_live_set_that_no_longer_compiles_never_stops_an_order,
);

fn key(role: Role, key_id: &str) -> Actor {
    let mut a = actor("acme", role);
    a.principal.key_id = key_id.into();
    a.principal.key_name = key_id.into();
    a
}

fn rule(id: &str, kind: RuleKind, condition: &str, action: serde_json::Value) -> Rule {
    Rule {
        id: id.into(),
        name: format!("rule {id}"),
        kind,
        condition: condition.into(),
        action,
        priority: 0,
        enabled: true,
    }
}

async fn draft_set(ts: &TestStore, author: &Actor, rules: Vec<Rule>) -> RuleSetRecord {
    let a = author.clone();
    ts.store
        .write(0, move |tx| {
            rules::create_draft(tx, &a, "set", rules.clone(), Utc::now())
        })
        .await
        .unwrap()
}

/// Drafts, submits, approves (by `approver`) and publishes `rules`, effective at `at`.
async fn publish(ts: &TestStore, rules: Vec<Rule>, at: chrono::DateTime<Utc>) -> RuleSetRecord {
    let (ops, admin) = (key(Role::Ops, "ops1"), key(Role::Admin, "admin1"));
    let set = draft_set(ts, &ops, rules).await;
    let id = set.rule_set_id;
    ts.store
        .write(0, move |tx| {
            rules::submit(tx, &ops, id, at)?;
            rules::approve(tx, &admin, id, at)?;
            rules::publish(tx, &admin, id, Some(at), at)
        })
        .await
        .unwrap()
}

async fn a_rule_set_needs_a_second_key_to_approve_and_moves_one_step_at_a_time(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let (ops, admin, admin2) = (
        key(Role::Ops, "ops1"),
        key(Role::Admin, "admin1"),
        key(Role::Admin, "admin2"),
    );
    // A rule naming an unknown fact is refused, naming the rule and the place; nothing written.
    let bad = vec![rule("R1", RuleKind::Hold, "amount > 5", json!({}))];
    let a = ops.clone();
    let e = ts
        .store
        .write(0, move |tx| {
            rules::create_draft(tx, &a, "bad", bad.clone(), Utc::now())
        })
        .await
        .unwrap_err();
    match e {
        CoreError::InvalidRules(errs) => {
            assert_eq!((errs[0].rule.as_str(), errs[0].at), ("R1", Some((1, 1))))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ts.count("rule_sets"), 0);

    let set = draft_set(
        &ts,
        &admin,
        vec![rule("R1", RuleKind::Hold, "true", json!({}))],
    )
    .await;
    assert_eq!((set.version, set.state), (1, RuleSetState::Draft));
    let id = set.rule_set_id;
    let now = Utc::now();
    let (a, o) = (admin.clone(), ops.clone());
    let r = ts
        .store
        .write(0, move |tx| {
            // Approving a draft: wrong state. An operator may not approve at all.
            let early = rules::approve(tx, &a, id, now).unwrap_err();
            let ops_approve = rules::approve(tx, &o, id, now).unwrap_err();
            rules::submit(tx, &o, id, now)?;
            let own = rules::approve(tx, &a, id, now).unwrap_err();
            let publish_early = rules::publish(tx, &a, id, None, now).unwrap_err();
            Ok((early, ops_approve, own, publish_early))
        })
        .await
        .unwrap();
    assert!(
        matches!(
            r.0,
            CoreError::RuleSetConflict {
                code: "rule_set_wrong_state",
                ..
            }
        ),
        "{:?}",
        r.0
    );
    assert!(matches!(r.1, CoreError::Forbidden(_)), "{:?}", r.1);
    assert!(matches!(r.2, CoreError::OwnRuleSet(_)), "{:?}", r.2);
    assert!(
        matches!(r.3, CoreError::RuleSetConflict { .. }),
        "{:?}",
        r.3
    );
    let a2 = admin2.clone();
    let published = ts
        .store
        .write(0, move |tx| {
            rules::approve(tx, &a2, id, now)?;
            rules::publish(tx, &a2, id, None, now)
        })
        .await
        .unwrap();
    assert_eq!(published.state, RuleSetState::Published);
    assert_eq!(
        published.meta.approved_by.as_ref().unwrap().key_id,
        "admin2"
    );
    assert_eq!(published.effective_at, Some(now));
    // Read back as stored, on a reader.
    let t = tenant("acme");
    let back = ts
        .store
        .read(move |r| r.rule_set(&t, id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.rules, set.rules);
    assert_eq!(back.meta, published.meta);
    let next = draft_set(&ts, &ops, vec![]).await;
    assert_eq!(next.version, 2);
}

async fn the_live_set_is_the_latest_published_whose_effective_time_has_passed(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let t0 = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let v1 = publish(&ts, vec![], t0).await;
    let v2 = publish(&ts, vec![], t0 + Duration::hours(2)).await;
    // v3 is approved but never published: never live.
    let (ops, admin) = (key(Role::Ops, "ops1"), key(Role::Admin, "admin1"));
    let v3 = draft_set(&ts, &ops, vec![]).await.rule_set_id;
    ts.store
        .write(0, move |tx| {
            rules::submit(tx, &ops, v3, t0)?;
            rules::approve(tx, &admin, v3, t0)
        })
        .await
        .unwrap();
    let live = |at: chrono::DateTime<Utc>| {
        let t = tenant("acme");
        let s = ts.store.clone();
        async move {
            let t2 = t.clone();
            let w = s
                .write(0, move |tx| {
                    Ok(tx.rule_set_live(&t2, at)?.map(|r| r.version))
                })
                .await
                .unwrap();
            let r = s
                .read(move |r| Ok(r.rule_set_live_at(&t, at)?.map(|r| r.version)))
                .await
                .unwrap();
            assert_eq!(w, r, "writer and reader agree at {at}");
            w
        }
    };
    assert_eq!(live(t0 - Duration::seconds(1)).await, None);
    assert_eq!(live(t0).await, Some(v1.version));
    assert_eq!(live(t0 + Duration::hours(1)).await, Some(v1.version));
    assert_eq!(live(t0 + Duration::hours(2)).await, Some(v2.version));
    assert_eq!(live(t0 + Duration::days(9)).await, Some(v2.version));
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

/// Warehouse everywhere; HEAVY weighs 1.5 kg, LIGHT 0.2 kg; 100 of each.
async fn seed_goods(ts: &TestStore) {
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let now = Utc::now();
            let wh = WarehouseId::parse("WH").unwrap();
            let rec = WarehouseRecord {
                warehouse_id: wh.clone(),
                name: "WH".into(),
                priority: 0,
                regions: vec![],
                sender: None,
                parcel_max_kg: None,
            };
            inv::define_warehouse(tx, &a, &rec, now)?;
            for (s, w) in [("HEAVY", "1.5"), ("LIGHT", "0.2")] {
                let rec = SkuRecord {
                    sku: sku(s),
                    title: s.into(),
                    components: None,
                    weight_kg: Some(w.parse().unwrap()),
                };
                inv::define_sku(tx, &a, &rec, now)?;
                inv::receive(tx, &a, &sku(s), &wh, 100, None, now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Creates and pays an order of `qty` × `goods` to `city`; returns it as stored after payment.
async fn order(ts: &TestStore, ext: &str, city: &str, goods: &str, qty: u32) -> Order {
    order_promised(ts, ext, city, goods, qty, None).await
}

/// As [`order`], with the channel's promised ship-by.
async fn order_promised(
    ts: &TestStore,
    ext: &str,
    city: &str,
    goods: &str,
    qty: u32,
    promised: Option<chrono::DateTime<chrono::FixedOffset>>,
) -> Order {
    let mut d = draft("shop-a", ext);
    d.promised_ship_by = promised;
    d.receiver.city = city.into();
    d.lines = vec![LineDraft {
        external_line_id: None,
        sku: sku(goods),
        title: goods.into(),
        quantity: qty,
        unit_price: Money::parse("p", "10.00", Currency::CNY).unwrap(),
        discount: Money::ZERO,
        paid_amount: None,
        is_kit: false,
    }];
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let now = Utc::now();
            let Created::New(o) = create_order(tx, &a, d.clone(), now)? else {
                panic!("existing")
            };
            let pay = Command::Pay {
                paid_at: None,
                amount: None,
            };
            transition(tx, &a, o.id, &pay, now)
        })
        .await
        .unwrap()
}

async fn hold_tag_and_carrier_rules_decide_in_the_orders_transaction_and_the_audit_names_them(
    ts: TestStore,
) {
    seed_tenant(&ts.store, "acme").await;
    seed_goods(&ts).await;
    // Before any set is live, nothing is decided.
    let plain = order(&ts, "P0", "乌鲁木齐市", "HEAVY", 5).await;
    assert_eq!(plain.status, Status::Paid);
    assert!(plain.fulfillment.preferred_carrier.is_none() && plain.tags.is_empty());
    let set = publish(
        &ts,
        vec![
            rule("H1", RuleKind::Hold, "quantity > 4", json!({})),
            rule(
                "T1",
                RuleKind::Tag,
                "skus.exists(s, s == 'HEAVY')",
                json!({"tags": ["heavy"]}),
            ),
            rule(
                "C1",
                RuleKind::Carrier,
                "city.contains('乌鲁木齐') && weight_kg > 2.0",
                json!({"carrier": "ems"}),
            ),
        ],
        Utc::now() - Duration::seconds(1),
    )
    .await;
    // Ürümqi, 2 × 1.5 kg = 3 kg: EMS, tagged, not held (2 units).
    let ems = order(&ts, "P1", "乌鲁木齐市", "HEAVY", 2).await;
    assert_eq!(ems.status, Status::Paid);
    assert_eq!(
        ems.fulfillment.preferred_carrier.as_ref().unwrap().as_str(),
        "ems"
    );
    assert_eq!(ems.tags, ["heavy"]);
    // Ürümqi, 1 × 1.5 kg: no carrier rule.
    let light = order(&ts, "P2", "乌鲁木齐市", "HEAVY", 1).await;
    assert!(light.fulfillment.preferred_carrier.is_none());
    // Hangzhou, 5 light units: held at payment by H1, with the set's version in the reason.
    let held = order(&ts, "P3", "杭州市", "LIGHT", 5).await;
    assert_eq!(held.status, Status::OnHold);
    let reason = format!("held by rule H1 v{}: rule H1", set.version);
    assert_eq!(held.hold_reason.as_deref(), Some(reason.as_str()));
    assert!(held.tags.is_empty());
    // The timeline: the create entry names the set, its version and the rules that fired; the
    // hold entry is by the rules.
    let (t, id) = (tenant("acme"), ems.id);
    let audit = ts
        .store
        .read(move |r| r.audit_for_order(&t, id))
        .await
        .unwrap();
    let create = audit.iter().find(|e| e.action == "create").unwrap();
    let d = &create.detail["rules"];
    assert_eq!(d["rule_set_version"], json!(set.version));
    assert_eq!(d["carrier"], json!({"carrier": "ems", "rule": "C1"}));
    let fired: Vec<_> = d["fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].clone())
        .collect();
    assert_eq!(fired, [json!("C1"), json!("T1")]);
    let (t, id) = (tenant("acme"), held.id);
    let audit = ts
        .store
        .read(move |r| r.audit_for_order(&t, id))
        .await
        .unwrap();
    let hold = audit.iter().find(|e| e.action == "hold").unwrap();
    assert_eq!(hold.detail["reason"], json!(reason));
    assert!(hold.actor.ends_with(":rules"), "{}", hold.actor);
}

async fn a_deadline_rule_gives_an_order_its_ship_by_unless_its_channel_promised_one(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    seed_goods(&ts).await;
    let mut bulk = rule(
        "D0",
        RuleKind::Deadline,
        "quantity > 4",
        json!({"ship_within_hours": 24}),
    );
    bulk.priority = -1;
    let set = publish(
        &ts,
        vec![
            rule(
                "D1",
                RuleKind::Deadline,
                "true",
                json!({"ship_within_hours": 48}),
            ),
            bulk,
        ],
        Utc::now() - Duration::seconds(1),
    )
    .await;
    // Created unpaid: no deadline yet (an order is work once paid). Paid: 48 hours from its
    // payment, the rule and its set's version kept with it.
    let (a, now) = (actor("acme", Role::Admin), Utc::now());
    let unpaid = ts
        .store
        .write(0, move |tx| {
            create_order(tx, &a, draft("shop-a", "D0"), now)
        })
        .await
        .unwrap();
    let Created::New(unpaid) = unpaid else {
        panic!("existing")
    };
    assert_eq!(unpaid.promised_ship_by, None);
    let one = order(&ts, "D1", "杭州市", "LIGHT", 1).await;
    assert_eq!(
        one.promised_ship_by,
        Some(one.paid_at.unwrap() + Duration::hours(48))
    );
    let marker = format!("D1 v{}", set.version);
    assert_eq!(
        one.fulfillment.ship_by_rule.as_deref(),
        Some(marker.as_str())
    );
    // Five units: the bulk rule comes first by priority.
    let five = order(&ts, "D2", "杭州市", "LIGHT", 5).await;
    assert_eq!(
        five.promised_ship_by,
        Some(five.paid_at.unwrap() + Duration::hours(24))
    );
    // The channel promised a time (in its own offset): the promise is kept as given.
    let promised = chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2031, 1, 2, 18, 0, 0)
        .unwrap();
    let kept = order_promised(&ts, "D3", "杭州市", "LIGHT", 1, Some(promised)).await;
    assert_eq!(kept.promised_ship_by, Some(promised));
    assert_eq!(
        kept.promised_ship_by.unwrap().offset().local_minus_utc(),
        8 * 3600
    );
    assert_eq!(kept.fulfillment.ship_by_rule, None);
    // The pay entry names the rule, the set's version and the deadline it gave.
    let (t, id) = (tenant("acme"), one.id);
    let audit = ts
        .store
        .read(move |r| r.audit_for_order(&t, id))
        .await
        .unwrap();
    let pay = audit.iter().find(|e| e.action == "pay").unwrap();
    let ship_by = &pay.detail["ship_by"];
    assert_eq!(ship_by["rule_set_version"], json!(set.version));
    assert_eq!(
        (&ship_by["rule"], &ship_by["hours"]),
        (&json!("D1"), &json!(48))
    );
    assert_eq!(ship_by["promised_ship_by"], json!(one.promised_ship_by));
}

/// A review rule holds an order at payment while the channel, in the same report, forbids
/// shipping it: the report goes through (it once failed, holding a held order), the order is
/// held by the rule and stopped by the channel, so approving the rule's hold does not ship it;
/// the channel's stop lifts when the channel allows shipping again, the rule's hold stays.
async fn a_review_hold_and_the_channels_stop_at_one_payment_both_stand(ts: TestStore) {
    use orderhub_core::intake::{ChannelFacts, Ingested, ingest};
    use orderhub_domain::channel_update::STOP_SHIPMENT;
    seed_tenant(&ts.store, "acme").await;
    publish(
        &ts,
        vec![rule("H1", RuleKind::Hold, "true", json!({}))],
        Utc::now() - Duration::seconds(1),
    )
    .await;
    let report = |minutes: i64, canonical: Status, not_shippable: Option<&str>, ext: &str| {
        let cn = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let at = cn.with_ymd_and_hms(2026, 11, 11, 10, 0, 0).unwrap() + Duration::minutes(minutes);
        let mut d = draft("tmall-1", ext);
        d.channel_status = Some(format!("S{minutes}"));
        d.channel_updated_at = Some(at);
        let facts = ChannelFacts {
            canonical,
            partly_shipped: false,
            refunds: vec![Default::default(); d.lines.len()],
            not_shippable: not_shippable.map(str::to_owned),
            paid_at: (canonical != Status::PendingPayment).then_some(at),
            shipment: None,
        };
        let a = actor("acme", Role::Admin);
        let store = ts.store.clone();
        async move {
            store
                .write(0, move |tx| ingest(tx, &a, d.clone(), &facts, Utc::now()))
                .await
                .unwrap()
        }
    };
    let order_of = |i: Ingested| match i {
        Ingested::Created(o) | Ingested::Updated(o) | Ingested::Stale(o) => o,
    };
    // Unpaid first; then paid and not shippable in one report.
    let o = order_of(report(1, Status::PendingPayment, None, "CH-R1").await);
    assert_eq!(o.status, Status::PendingPayment);
    let o = order_of(report(2, Status::Paid, Some("risk review"), "CH-R1").await);
    assert_eq!(o.status, Status::OnHold);
    assert!(
        o.hold_reason
            .as_deref()
            .unwrap()
            .starts_with("held by rule H1"),
        "{o:?}"
    );
    assert!(o.has_exception(STOP_SHIPMENT), "{:?}", o.exceptions);
    // The channel allows shipping again: its stop lifts, the review hold stays.
    let o = order_of(report(3, Status::Paid, None, "CH-R1").await);
    assert_eq!(o.status, Status::OnHold);
    assert!(!o.has_exception(STOP_SHIPMENT), "{:?}", o.exceptions);
    // Created paid and not shippable in its first report: the same.
    let o = order_of(report(1, Status::Paid, Some("group not formed"), "CH-R2").await);
    assert_eq!(o.status, Status::OnHold);
    assert!(
        o.hold_reason
            .as_deref()
            .unwrap()
            .starts_with("held by rule H1")
    );
    assert!(o.has_exception(STOP_SHIPMENT), "{:?}", o.exceptions);
}

/// A live set stored before a stricter check (an upgrade) that no longer compiles: orders are
/// still created and paid — intake never stalls on it — without its decisions, and the create
/// entry says why.
async fn a_live_set_that_no_longer_compiles_never_stops_an_order(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    seed_goods(&ts).await;
    let good = publish(
        &ts,
        vec![rule("H1", RuleKind::Hold, "true", json!({}))],
        Utc::now() - Duration::seconds(2),
    )
    .await;
    // The same set as the store might hold it from an older release: a condition that does
    // not parse, published later.
    let mut broken = good.clone();
    broken.rule_set_id = uuid::Uuid::now_v7();
    broken.version = good.version + 1;
    broken.rules[0].condition = "paid_cents >".into();
    broken.effective_at = Some(Utc::now() - Duration::seconds(1));
    let b = broken.clone();
    ts.store
        .write(0, move |tx| Ok(tx.rule_set_insert(&b)?))
        .await
        .unwrap();
    let o = order(&ts, "B1", "杭州市", "LIGHT", 1).await;
    assert_eq!(
        o.status,
        Status::Paid,
        "not held by a set that does not compile"
    );
    let (t, id) = (tenant("acme"), o.id);
    let audit = ts
        .store
        .read(move |r| r.audit_for_order(&t, id))
        .await
        .unwrap();
    let create = audit.iter().find(|e| e.action == "create").unwrap();
    let d = &create.detail["rules"];
    assert_eq!(d["rule_set_version"], json!(broken.version));
    assert!(d["errors"][0][1].as_str().unwrap().contains("H1"), "{d}");
}

//! The exception workflow (issue 21) on both backends: an exception (or a hold) opens a work item
//! due by the tenant's SLA and resolving it closes the item; two operators taking one exception at
//! once end with one holder and the other told who; the escalation pass, on a manual clock, marks
//! an overdue item once (twice at once: still once) with its event; the board's filters; notes
//! sealed at rest and kept after resolution; the interventions read from the audit trail.

use crate::backend::*;
use chrono::{DateTime, Duration, Utc};
use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::ports::{Clock, ManualClock};
use orderhub_core::usecases::{
    Actor, Created, create_order, raise_exception, resolve_exception, transition,
};
use orderhub_core::workflow::{self, Assignee, Sla, WorkState};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Order, OrderId};
use orderhub_store::{AssigneeFilter, WorkFilter};
use std::sync::Arc;

conformance!(
    an_exception_opens_an_item_due_by_the_sla_and_resolving_it_closes_the_item,
    two_operators_assigning_one_exception_at_once_end_with_one_holder,
    the_escalation_pass_marks_an_overdue_item_once_on_the_manual_clock,
    the_board_reads_open_items_by_assignee_kind_and_due_time,
    notes_are_sealed_at_rest_and_kept_after_the_exception_is_resolved,
    interventions_count_what_keys_did_not_what_the_workers_did,
    exceptions_open_before_the_migration_are_backfilled_and_work_as_any_other,
);

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
        .unwrap()
        .to_utc()
}

fn op(key_id: &str) -> Actor {
    let mut a = actor("acme", Role::Ops);
    a.principal.key_id = key_id.into();
    a.principal.key_name = format!("name-{key_id}");
    a.request_id = format!("req-{key_id}");
    a
}

fn me(a: &Actor) -> Assignee {
    Assignee {
        key_id: a.principal.key_id.clone(),
        name: a.principal.key_name.clone(),
    }
}

async fn new_order(ts: &TestStore, ext: &str, at: DateTime<Utc>) -> Order {
    let a = actor("acme", Role::Admin);
    let d = draft("shop-a", ext);
    let o = match ts
        .store
        .write(0, move |tx| create_order(tx, &a, d.clone(), at))
        .await
        .unwrap()
    {
        Created::New(o) | Created::Existing(o) => o,
    };
    let a = actor("acme", Role::Admin);
    let pay = Command::Pay {
        paid_at: None,
        amount: None,
    };
    ts.store
        .write(0, move |tx| transition(tx, &a, o.id, &pay, at))
        .await
        .unwrap()
}

async fn raise(ts: &TestStore, id: OrderId, code: &'static str, at: DateTime<Utc>) {
    let a = Actor::system(&tenant("acme"), "test-watchdog");
    ts.store
        .write(0, move |tx| {
            raise_exception(tx, &a, id, code, serde_json::json!({}), at)
        })
        .await
        .unwrap()
        .expect("raised");
}

async fn items(ts: &TestStore, id: OrderId) -> Vec<workflow::WorkItem> {
    ts.store
        .read(move |r| r.work_of_order(&tenant("acme"), id))
        .await
        .unwrap()
}

async fn an_exception_opens_an_item_due_by_the_sla_and_resolving_it_closes_the_item(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let admin = actor("acme", Role::Admin);
    let mut sla = Sla::default();
    sla.hours.insert("stop_shipment".into(), 3);
    let s = sla.clone();
    ts.store
        .write(0, move |tx| workflow::put_sla(tx, &admin, &s, t0()))
        .await
        .unwrap();
    // Ops may not set it.
    let ops = op("ops-1");
    let r = ts
        .store
        .write(0, move |tx| {
            workflow::put_sla(tx, &ops, &Sla::default(), t0())
        })
        .await;
    assert!(matches!(r, Err(CoreError::Forbidden(_))), "{r:?}");

    let o = new_order(&ts, "W-1", t0()).await;
    raise(&ts, o.id, "stop_shipment", t0()).await;
    let it = items(&ts, o.id).await;
    assert_eq!(it.len(), 1);
    assert_eq!(it[0].kind, "stop_shipment");
    assert_eq!(it[0].state, WorkState::Open);
    assert_eq!(it[0].due_at - it[0].raised_at, Duration::hours(3));
    assert_eq!(it[0].raised_at, t0());

    // A hold is an item too (default 4 h); approving closes it.
    let a = actor("acme", Role::Admin);
    let id = o.id;
    let hold = Command::Hold {
        reason: "check".into(),
    };
    ts.store
        .write(0, move |tx| transition(tx, &a, id, &hold, t0()))
        .await
        .unwrap();
    let held = items(&ts, o.id).await;
    let h = held.iter().find(|i| i.kind == workflow::ON_HOLD).unwrap();
    assert_eq!(h.due_at - h.raised_at, Duration::hours(4));
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| transition(tx, &a, id, &Command::Approve, t0()))
        .await
        .unwrap();
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            resolve_exception(tx, &a, id, "stop_shipment", "re-requested", t0())
        })
        .await
        .unwrap();
    let after = items(&ts, o.id).await;
    assert_eq!(after.len(), 2);
    assert!(
        after
            .iter()
            .all(|i| i.state == WorkState::Resolved && i.resolved_at == Some(t0())),
        "{after:?}"
    );
    // Raised again: a new item (the old one stays resolved).
    raise(&ts, o.id, "stop_shipment", t0() + Duration::hours(1)).await;
    let again = items(&ts, o.id).await;
    assert_eq!(again.len(), 3);
    assert_eq!(
        again.iter().filter(|i| i.state == WorkState::Open).count(),
        1
    );
}

async fn two_operators_assigning_one_exception_at_once_end_with_one_holder(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    for round in 0..5 {
        let o = new_order(&ts, &format!("A-{round}"), t0()).await;
        raise(&ts, o.id, "stop_shipment", t0()).await;
        let (a, b) = (op("alice"), op("bob"));
        let id = o.id;
        let (ra, rb) = tokio::join!(
            ts.store.write(1, move |tx| {
                workflow::assign(tx, &a, id, "stop_shipment", &me(&a), None, t0())
            }),
            ts.store.write(2, move |tx| {
                workflow::assign(tx, &b, id, "stop_shipment", &me(&b), None, t0())
            }),
        );
        let (winner, loser) = match (&ra, &rb) {
            (Ok(_), Err(e)) => ("alice", e),
            (Err(e), Ok(_)) => ("bob", e),
            other => panic!("exactly one assignment must win: {other:?}"),
        };
        match loser {
            CoreError::ExceptionAssigned {
                holder,
                holder_name,
            } => {
                assert_eq!(holder, winner);
                assert_eq!(holder_name, &format!("name-{winner}"));
            }
            e => panic!("the loser must be told who holds it: {e:?}"),
        }
        let it = items(&ts, id).await;
        assert_eq!(it[0].assignee.as_deref(), Some(winner));
        assert_eq!(it[0].version, 2, "one change of the item");

        // Taking it over names the holder; naming someone else is refused.
        let loser_name = if winner == "alice" { "bob" } else { "alice" };
        let l = op(loser_name);
        let r = ts
            .store
            .write(0, move |tx| {
                workflow::assign(tx, &l, id, "stop_shipment", &me(&l), Some("carol"), t0())
            })
            .await;
        assert!(
            matches!(r, Err(CoreError::ExceptionAssigned { .. })),
            "{r:?}"
        );
        let l = op(loser_name);
        let w = winner.to_owned();
        let took = ts
            .store
            .write(0, move |tx| {
                workflow::assign(tx, &l, id, "stop_shipment", &me(&l), Some(&w), t0())
            })
            .await
            .unwrap();
        assert_eq!(took.assignee.as_deref(), Some(loser_name));
    }
    // Every assignment is in the outbox, its aggregate the item; the audit trail has them.
    let events = ts
        .store
        .read(|r| r.events_after(&tenant("acme"), 0, 10_000))
        .await
        .unwrap();
    let assigned = events
        .iter()
        .filter(|e| e.event.event_type == "exception.assigned")
        .count();
    assert_eq!(assigned, 10, "a winner and a takeover per round");
    // A viewer may not assign.
    let o = new_order(&ts, "A-viewer", t0()).await;
    raise(&ts, o.id, "stop_shipment", t0()).await;
    let v = actor("acme", Role::Viewer);
    let r = ts
        .store
        .write(0, move |tx| {
            workflow::assign(tx, &v, o.id, "stop_shipment", &me(&v), None, t0())
        })
        .await;
    assert!(matches!(r, Err(CoreError::Forbidden(_))), "{r:?}");
    // An exception the order does not carry has no item to assign.
    let a = op("alice");
    let r = ts
        .store
        .write(0, move |tx| {
            workflow::assign(tx, &a, o.id, "no_waybill", &me(&a), None, t0())
        })
        .await;
    assert!(matches!(r, Err(CoreError::NoSuchException(_))), "{r:?}");
}

async fn escalate(ts: &TestStore, part: u64, now: DateTime<Utc>) -> Vec<workflow::Escalated> {
    ts.store
        .write(part, move |tx| workflow::escalate_due(tx, now, 100))
        .await
        .unwrap()
}

async fn the_escalation_pass_marks_an_overdue_item_once_on_the_manual_clock(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let clock = Arc::new(ManualClock::new(t0()));
    let o = new_order(&ts, "E-1", clock.now()).await;
    let p = new_order(&ts, "E-2", clock.now()).await;
    raise(&ts, o.id, "not_released", clock.now()).await; // 2 h
    raise(&ts, p.id, "after_sale", clock.now()).await; // 12 h

    clock.advance(Duration::minutes(119));
    assert!(
        escalate(&ts, 0, clock.now()).await.is_empty(),
        "not due yet"
    );
    clock.advance(Duration::minutes(1));
    // Two passes at once (two nodes, two writers): the item is escalated once.
    let now = clock.now();
    let (a, b) = tokio::join!(escalate(&ts, 1, now), escalate(&ts, 2, now));
    let done: Vec<_> = a.into_iter().chain(b).collect();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].kind, "not_released");
    let it = items(&ts, o.id).await;
    assert_eq!(it[0].escalated_at, Some(now));
    clock.advance(Duration::hours(1));
    assert!(escalate(&ts, 0, clock.now()).await.is_empty(), "only once");

    // The after-sale is resolved before its due time: never escalated.
    let a = actor("acme", Role::Admin);
    let (pid, at) = (p.id, clock.now());
    ts.store
        .write(0, move |tx| {
            resolve_exception(tx, &a, pid, "after_sale", "refund refused", at)
        })
        .await
        .unwrap();
    clock.advance(Duration::hours(12));
    assert!(escalate(&ts, 0, clock.now()).await.is_empty());

    // One event, its aggregate the item, its payload the order and the due time, no note.
    let events = ts
        .store
        .read(|r| r.events_after(&tenant("acme"), 0, 10_000))
        .await
        .unwrap();
    let esc: Vec<_> = events
        .iter()
        .filter(|e| e.event.event_type == "exception.escalated")
        .collect();
    assert_eq!(esc.len(), 1);
    assert_eq!(esc[0].event.aggregate_id, it[0].work_id);
    let payload: serde_json::Value = serde_json::from_str(&esc[0].event.payload).unwrap();
    assert_eq!(payload["order_id"], o.id.to_string());
    assert_eq!(payload["shop_id"], "shop-a");
    assert_eq!(payload["kind"], "not_released");
    // And an audit entry on the order, by the escalation worker, the order's version unchanged.
    let audit = ts
        .store
        .read(move |r| r.audit_for_order(&tenant("acme"), o.id))
        .await
        .unwrap();
    let e = audit
        .iter()
        .find(|a| a.action == "exception.escalated")
        .unwrap();
    assert_eq!(e.key_id, "system");
    assert_eq!(e.from_version, e.to_version);
}

async fn the_board_reads_open_items_by_assignee_kind_and_due_time(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let o1 = new_order(&ts, "B-1", t0()).await;
    let o2 = new_order(&ts, "B-2", t0()).await;
    let o3 = new_order(&ts, "B-3", t0()).await;
    raise(&ts, o1.id, "no_waybill", t0()).await; // due +2 h
    raise(&ts, o2.id, "out_of_stock", t0()).await; // due +24 h
    raise(&ts, o3.id, "no_waybill", t0() - Duration::hours(5)).await; // overdue
    let alice = op("alice");
    let id = o2.id;
    ts.store
        .write(0, move |tx| {
            workflow::assign(tx, &alice, id, "out_of_stock", &me(&alice), None, t0())
        })
        .await
        .unwrap();
    let store = ts.store.clone();
    let list = |f: WorkFilter| {
        let store = store.clone();
        async move {
            store
                .read(move |r| r.work_list(&f))
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.order_id)
                .collect::<Vec<_>>()
        }
    };
    let base = WorkFilter {
        tenant: tenant("acme"),
        shops: None,
        kind: None,
        assignee: None,
        due_before: None,
        raised_before: None,
        limit: 10,
    };
    // Earliest due first.
    assert_eq!(list(base.clone()).await, vec![o3.id, o1.id, o2.id]);
    let f = WorkFilter {
        assignee: Some(AssigneeFilter::Key("alice".into())),
        ..base.clone()
    };
    assert_eq!(list(f).await, vec![o2.id]);
    let f = WorkFilter {
        assignee: Some(AssigneeFilter::Unassigned),
        ..base.clone()
    };
    assert_eq!(list(f).await, vec![o3.id, o1.id]);
    let f = WorkFilter {
        kind: Some("out_of_stock".into()),
        ..base.clone()
    };
    assert_eq!(list(f).await, vec![o2.id]);
    let f = WorkFilter {
        due_before: Some(t0()),
        ..base.clone()
    };
    assert_eq!(list(f).await, vec![o3.id], "overdue now");
    let f = WorkFilter {
        raised_before: Some(t0() - Duration::hours(1)),
        ..base.clone()
    };
    assert_eq!(list(f).await, vec![o3.id], "open over an hour");
    let f = WorkFilter {
        shops: Some(vec!["shop-b".into()]),
        ..base.clone()
    };
    assert!(list(f).await.is_empty(), "another shop's key sees none");
    let f = WorkFilter { limit: 1, ..base };
    assert_eq!(list(f).await, vec![o3.id]);
}

async fn notes_are_sealed_at_rest_and_kept_after_the_exception_is_resolved(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let o = new_order(&ts, "N-1", t0()).await;
    raise(&ts, o.id, "stop_shipment", t0()).await;
    let a = op("alice");
    let id = o.id;
    let (item, note) = ts
        .store
        .write(0, move |tx| {
            workflow::add_note(
                tx,
                &a,
                id,
                "stop_shipment",
                "buyer called 13812345678",
                t0(),
            )
        })
        .await
        .unwrap();
    assert_eq!(item.notes, 1);
    assert_eq!(note.actor, "ops:name-alice");
    // Bounds: empty, too long, control characters.
    for bad in ["  ", &"x".repeat(workflow::NOTE_LEN_MAX + 1), "a\u{7}b"] {
        let (a, bad) = (op("alice"), bad.to_owned());
        let r = ts
            .store
            .write(0, move |tx| {
                workflow::add_note(tx, &a, id, "stop_shipment", &bad, t0())
            })
            .await;
        assert!(matches!(r, Err(CoreError::Validation(_))), "{r:?}");
    }
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            resolve_exception(tx, &a, id, "stop_shipment", "released", t0())
        })
        .await
        .unwrap();
    let (its, notes) = ts
        .store
        .read(move |r| {
            let its = r.work_of_order(&tenant("acme"), id)?;
            let ids: Vec<_> = its.iter().map(|i| i.work_id).collect();
            Ok((its.clone(), r.notes_of(&tenant("acme"), &ids)?))
        })
        .await
        .unwrap();
    assert_eq!(its[0].state, WorkState::Resolved);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].text, "buyer called 13812345678");
    let raw = ts.raw_text("SELECT sealed FROM exception_notes");
    assert_eq!(raw.len(), 1);
    assert!(!raw[0].contains("13812345678"), "sealed at rest");
    // Notes on a resolved exception: there is no open one to write on.
    let a = op("alice");
    let r = ts
        .store
        .write(0, move |tx| {
            workflow::add_note(tx, &a, id, "stop_shipment", "late", t0())
        })
        .await;
    assert!(matches!(r, Err(CoreError::NoSuchException(_))), "{r:?}");
}

async fn interventions_count_what_keys_did_not_what_the_workers_did(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let now = Utc::now();
    let o = new_order(&ts, "I-1", now).await;
    let id = o.id;
    // The admin (key k1) holds, approves, resolves by hand; a worker raises and resolves.
    let a = actor("acme", Role::Admin);
    let hold = Command::Hold { reason: "x".into() };
    ts.store
        .write(0, move |tx| transition(tx, &a, id, &hold, now))
        .await
        .unwrap();
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| transition(tx, &a, id, &Command::Approve, now))
        .await
        .unwrap();
    raise(&ts, id, "stop_shipment", now).await;
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            resolve_exception(tx, &a, id, "stop_shipment", "ok", now)
        })
        .await
        .unwrap();
    raise(&ts, id, "not_released", now).await;
    // A worker's cancel resolves not_released: not a person's doing.
    let w = Actor::system(&tenant("acme"), "fulfillment");
    let cancel = Command::Cancel {
        reason: "timeout".into(),
    };
    ts.store
        .write(0, move |tx| transition(tx, &w, id, &cancel, now))
        .await
        .unwrap();
    let actions = ["hold", "approve", "exception.resolved", "cancel", "create"];
    let rows = ts
        .store
        .read(move |r| r.interventions(&tenant("acme"), now - Duration::days(1), 0, &actions, None))
        .await
        .unwrap();
    let count = |action: &str| -> u64 {
        rows.iter()
            .filter(|r| r.action == action)
            .map(|r| r.count)
            .sum()
    };
    assert_eq!(count("hold"), 1);
    assert_eq!(count("approve"), 1);
    assert_eq!(
        count("exception.resolved"),
        1,
        "the resolution by hand only"
    );
    assert_eq!(count("cancel"), 0, "the worker's move is not counted");
    assert_eq!(count("create"), 1, "{rows:?}");
    assert!(rows.iter().all(|r| r.actor == "admin:test"), "{rows:?}");
    let today = now.timestamp().div_euclid(86_400);
    assert!(rows.iter().all(|r| r.day == today));
    // Another shop's key counts none of shop-a's orders.
    let rows = ts
        .store
        .read(move |r| {
            r.interventions(
                &tenant("acme"),
                now - Duration::days(1),
                0,
                &["hold"],
                Some(&["shop-b".to_owned()]),
            )
        })
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    // Outside the window: nothing.
    let rows = ts
        .store
        .read(move |r| {
            r.interventions(&tenant("acme"), now + Duration::days(1), 0, &["hold"], None)
        })
        .await
        .unwrap();
    assert!(rows.is_empty());
}

/// Migration 0021's backfill, run again over a database whose items are gone (as before the
/// migration): each open exception and hold becomes an item due by the default SLA, found by its
/// id like any other — resolved, approved and escalated through the use cases.
async fn exceptions_open_before_the_migration_are_backfilled_and_work_as_any_other(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let a = new_order(&ts, "M-1", t0()).await;
    let b = new_order(&ts, "M-2", t0()).await;
    raise(&ts, a.id, "stop_shipment", t0()).await;
    let adm = actor("acme", Role::Admin);
    let hold = Command::Hold {
        reason: "check".into(),
    };
    let bid = b.id;
    ts.store
        .write(0, move |tx| transition(tx, &adm, bid, &hold, t0()))
        .await
        .unwrap();
    let migration = match ts.raw {
        Raw::Sqlite(_) => include_str!("../../migrations/sqlite/0021_exception_workflow.sql"),
        Raw::Postgres(_) => include_str!("../../migrations/postgres/0021_exception_workflow.sql"),
    };
    let backfill = &migration[migration
        .find("-- Exceptions and holds open before this migration")
        .unwrap()..];
    ts.exec("DELETE FROM exception_work");
    ts.exec(backfill);
    let ia = items(&ts, a.id).await;
    let ib = items(&ts, b.id).await;
    assert_eq!((ia.len(), ib.len()), (1, 1), "{ia:?} {ib:?}");
    assert_eq!(ia[0].kind, "stop_shipment");
    assert_eq!(ia[0].raised_at, t0());
    assert_eq!(ia[0].due_at - ia[0].raised_at, Duration::hours(8));
    assert_eq!(ib[0].kind, workflow::ON_HOLD);
    assert_eq!(ib[0].due_at - ib[0].raised_at, Duration::hours(4));
    // Found by id: escalated once, assigned, then closed by the resolution and the approval.
    let done = escalate(&ts, 0, t0() + Duration::hours(9)).await;
    assert_eq!(done.len(), 2, "{done:?}");
    let al = op("alice");
    let aid = a.id;
    ts.store
        .write(0, move |tx| {
            workflow::assign(tx, &al, aid, "stop_shipment", &me(&al), None, t0())
        })
        .await
        .unwrap();
    let adm = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            resolve_exception(tx, &adm, aid, "stop_shipment", "ok", t0())
        })
        .await
        .unwrap();
    let adm = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            transition(tx, &adm, bid, &Command::Approve, t0())
        })
        .await
        .unwrap();
    for id in [a.id, b.id] {
        let it = items(&ts, id).await;
        assert_eq!(it[0].state, WorkState::Resolved, "{it:?}");
    }
}

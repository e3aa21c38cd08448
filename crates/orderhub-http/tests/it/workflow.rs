//! The exception workflow and bulk actions over HTTP (issue 21): two operators taking one
//! exception at once (one wins, the other is told who, a takeover names the holder), notes kept
//! after the exception is resolved, the board's filters and due times, the SLA setting, the
//! interventions dashboard, and bulk actions — preview without writes, then each order alone,
//! successes and refusals side by side, the Idempotency-Key replayed, the action's permission
//! checked once.

use crate::app::*;
use crate::on_every_backend;
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    two_operators_taking_one_exception_at_once_one_wins_and_the_other_is_told_who,
    the_board_filters_by_assignee_kind_and_overdue_and_notes_outlive_the_exception,
    bulk_approve_previews_then_acts_on_each_order_alone_and_replays_its_key,
    bulk_actions_over_a_search_check_the_actions_permission_and_their_bounds,
    the_interventions_dashboard_counts_people_by_kind_actor_and_day,
);

async fn order(app: &TestApp, ext: &str, pay: bool) -> String {
    let id = app.create(ADMIN_KEY, "shop-a", ext).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    if pay {
        let r = app
            .post(&format!("/v1/orders/{id}/pay"), ADMIN_KEY, &json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    id
}

async fn key_id(app: &TestApp, key: &str) -> String {
    app.get("/v1/whoami", key).await.body["key_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn board_rows(b: &Value) -> Vec<(String, String)> {
    b["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["order_id"].as_str().unwrap().to_owned(),
                e["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn two_operators_taking_one_exception_at_once_one_wins_and_the_other_is_told_who(
    app: TestApp,
) {
    let (alice, bob) = (
        app.key("ops", None, false).await,
        app.key("warehouse", None, false).await,
    );
    let (alice_id, bob_id) = (key_id(&app, &alice).await, key_id(&app, &bob).await);
    let w = app.get("/v1/whoami", &bob).await.body;
    assert_eq!(w["exceptions_work"], true);
    assert_eq!(w["interventions"], false);
    for round in 0..3 {
        let id = order(&app, &format!("WF-{round}"), true).await;
        app.raise(&id, "stop_shipment").await;
        let path = format!("/v1/orders/{id}/exceptions/stop_shipment/assign");
        let me = json!({"assignee": "me"});
        let (a, b) = tokio::join!(app.post(&path, &alice, &me), app.post(&path, &bob, &me));
        let (winner, loser) = match (a.status, b.status) {
            (StatusCode::OK, StatusCode::CONFLICT) => (&alice_id, b),
            (StatusCode::CONFLICT, StatusCode::OK) => (&bob_id, a),
            other => panic!("exactly one must win: {other:?} {} {}", a.body, b.body),
        };
        assert_eq!(loser.code(), "exception_assigned", "{}", loser.body);
        assert_eq!(loser.field(), "replace");
        assert!(
            loser.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(winner.as_str())
        );
        // The board says who holds it.
        let b = app
            .get(&format!("/v1/exceptions?assignee={winner}"), ADMIN_KEY)
            .await;
        assert!(board_rows(&b.body).contains(&(id.clone(), "stop_shipment".into())));
        // Taking over names the holder.
        let taker = if winner == &alice_id { &bob } else { &alice };
        let r = app
            .post(&path, taker, &json!({"assignee": "me", "replace": winner}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_ne!(r.body["assignee"].as_str(), Some(winner.as_str()));
        // Unassign: nobody holds it; the board's unassigned filter shows it again.
        let r = app
            .post(
                &format!("/v1/orders/{id}/exceptions/stop_shipment/unassign"),
                taker,
                &json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["assignee"], Value::Null);
    }
    // Assigning to another key by id; a revoked or unknown key is refused.
    let id = order(&app, "WF-x", true).await;
    app.raise(&id, "after_sale").await;
    let path = format!("/v1/orders/{id}/exceptions/after_sale/assign");
    let r = app
        .post(&path, ADMIN_KEY, &json!({"assignee": bob_id}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["assignee_name"], "warehouse");
    let r = app
        .post(&path, ADMIN_KEY, &json!({"assignee": "no-such-key"}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_key")
    );
    // A kind the order does not carry: 409; a bad id: 400; a viewer: 403.
    let r = app
        .post(
            &format!("/v1/orders/{id}/exceptions/no_waybill/assign"),
            ADMIN_KEY,
            &json!({"assignee": "me"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "exception_not_open")
    );
    let r = app
        .post(
            "/v1/orders/not-an-id/exceptions/after_sale/assign",
            ADMIN_KEY,
            &json!({"assignee": "me"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    let viewer = app.key("viewer", None, false).await;
    let r = app.post(&path, &viewer, &json!({"assignee": "me"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Each change is an event whose aggregate is the item, and an entry on the order's timeline.
    let events = app.get("/v1/events?limit=1000", ADMIN_KEY).await.body;
    let assigned = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "exception.assigned")
        .count();
    assert_eq!(assigned, 3 * 2 + 1);
    let tl = app
        .get(&format!("/v1/orders/{id}/timeline"), ADMIN_KEY)
        .await;
    assert!(
        tl.body["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["action"] == "exception.assigned")
    );
}

async fn the_board_filters_by_assignee_kind_and_overdue_and_notes_outlive_the_exception(
    app: TestApp,
) {
    let ops = app.key("ops", None, false).await;
    let a = order(&app, "BF-1", true).await;
    let b = order(&app, "BF-2", true).await;
    let c = order(&app, "BF-3", true).await;
    app.raise(&a, "stop_shipment").await;
    app.raise(&b, "after_sale").await;
    // Raised five hours ago (the watchdog's clock): past the 2 h SLA of not_released.
    let id = orderhub_domain::OrderId::parse(&c).unwrap();
    let actor = orderhub_core::usecases::Actor::system(
        &orderhub_domain::TenantId::parse("default").unwrap(),
        "test-watchdog",
    );
    app.store
        .write(0, move |tx| {
            orderhub_core::usecases::raise_exception(
                tx,
                &actor,
                id,
                "not_released",
                json!({}),
                Utc::now() - Duration::hours(5),
            )
        })
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/v1/orders/{a}/exceptions/stop_shipment/assign"),
            &ops,
            &json!({"assignee": "me"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let rows = |q: &'static str, key: &'static str| {
        let app = &app;
        async move { board_rows(&app.get(&format!("/v1/exceptions{q}"), key).await.body) }
    };
    let mine = board_rows(&app.get("/v1/exceptions?assignee=me", &ops).await.body);
    assert_eq!(mine, vec![(a.clone(), "stop_shipment".to_owned())]);
    assert!(rows("?assignee=me", ADMIN_KEY).await.is_empty());
    let un = rows("?assignee=unassigned", ADMIN_KEY).await;
    assert!(un.contains(&(b.clone(), "after_sale".into())));
    assert!(un.contains(&(c.clone(), "not_released".into())));
    assert!(!un.iter().any(|(o, _)| o == &a));
    assert_eq!(
        rows("?assignee=unassigned&kind=after_sale", ADMIN_KEY).await,
        vec![(b.clone(), "after_sale".to_owned())]
    );
    assert_eq!(
        rows("?overdue=true", ADMIN_KEY).await,
        vec![(c.clone(), "not_released".to_owned())]
    );
    assert_eq!(
        rows("?older_than_hours=4", ADMIN_KEY).await,
        vec![(c.clone(), "not_released".to_owned())]
    );
    // Sorted by due time: not_released (overdue), stop_shipment (the default 8 h), after_sale
    // (12 h).
    let due = rows("?sort=due", ADMIN_KEY).await;
    let pos = |o: &str| due.iter().position(|(x, _)| x == o).unwrap();
    assert!(pos(&c) < pos(&a) && pos(&a) < pos(&b), "{due:?}");
    // Every row has a due time; the overdue one says so.
    let full = app.get("/v1/exceptions", ADMIN_KEY).await.body;
    for e in full["exceptions"].as_array().unwrap() {
        assert!(e["due_at"].is_string(), "{e}");
        assert_eq!(e["overdue"], e["order_id"] == c.as_str(), "{e}");
    }
    let bad = app.get("/v1/exceptions?assignee=a%20b", ADMIN_KEY).await;
    assert_eq!(
        (bad.status, bad.field()),
        (StatusCode::BAD_REQUEST, "assignee")
    );
    let bad = app.get("/v1/exceptions?sort=age", ADMIN_KEY).await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, "sort"));

    // Notes: written, bounded, kept after the exception is resolved.
    let note_path = format!("/v1/orders/{a}/exceptions/stop_shipment/notes");
    let r = app
        .post(
            &note_path,
            &ops,
            &json!({"text": "仓库说明天补发\n已联系买家"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["notes_count"], 1);
    let r = app
        .post(&note_path, &ops, &json!({"text": "x".repeat(1001)}))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "text")
    );
    let r = app
        .post(
            &format!("/v1/orders/{a}/exceptions/stop_shipment/resolve"),
            &ops,
            &json!({"reason": "补发"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ex = app
        .get(&format!("/v1/orders/{a}/exceptions"), ADMIN_KEY)
        .await
        .body;
    let item = &ex["exceptions"][0];
    assert_eq!(item["state"], "resolved");
    assert_eq!(item["notes"][0]["text"], "仓库说明天补发\n已联系买家");
    assert!(
        item["notes"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("ops:")
    );
    let mine = board_rows(&app.get("/v1/exceptions?assignee=me", &ops).await.body);
    assert!(mine.is_empty(), "resolved: off the board");

    // The SLA: an admin sets it, new exceptions are due by it; ops may not.
    let r = app
        .call(
            reqwest::Method::PUT,
            "/v1/settings/exception-sla",
            Some(&ops),
            Some(&json!({"hours": {"after_sale": 1}, "default_hours": 8}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            reqwest::Method::PUT,
            "/v1/settings/exception-sla",
            Some(ADMIN_KEY),
            Some(&json!({"hours": {"after_sale": 0}, "default_hours": 8}).to_string()),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "hours.after_sale")
    );
    let r = app
        .call(
            reqwest::Method::PUT,
            "/v1/settings/exception-sla",
            Some(ADMIN_KEY),
            Some(&json!({"hours": {"after_sale": 1}, "default_hours": 8}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = order(&app, "BF-4", true).await;
    app.raise(&d, "after_sale").await;
    let ex = app
        .get(&format!("/v1/orders/{d}/exceptions"), ADMIN_KEY)
        .await
        .body;
    let it = &ex["exceptions"][0];
    let raised = chrono::DateTime::parse_from_rfc3339(it["raised_at"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(it["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(due - raised, Duration::hours(1));
    let got = app.get("/v1/settings/exception-sla", &ops).await.body;
    assert_eq!(got["hours"]["after_sale"], 1);
}

async fn bulk(app: &TestApp, key: &str, body: Value, idem: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = idem.map(|k| ("idempotency-key", k)).into_iter().collect();
    app.call(
        reqwest::Method::POST,
        "/v1/orders/bulk",
        Some(key),
        Some(&body.to_string()),
        &headers,
    )
    .await
}

fn outcomes(r: &Resp) -> Vec<(String, String, String)> {
    r.body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .iter()
        .map(|x| {
            (
                x["order_id"].as_str().unwrap().to_owned(),
                x["outcome"].as_str().unwrap().to_owned(),
                x["error"]["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn status_of(app: &TestApp, id: &str) -> (String, u64) {
    let o = app.get(&format!("/v1/orders/{id}"), ADMIN_KEY).await.body;
    (
        o["status"].as_str().unwrap().to_owned(),
        o["version"].as_u64().unwrap(),
    )
}

async fn bulk_approve_previews_then_acts_on_each_order_alone_and_replays_its_key(app: TestApp) {
    let ops = app.key("ops", None, false).await;
    let held1 = order(&app, "BK-1", true).await;
    let held2 = order(&app, "BK-2", true).await;
    let paid = order(&app, "BK-3", true).await;
    for id in [&held1, &held2] {
        let r = app
            .post(
                &format!("/v1/orders/{id}/hold"),
                ADMIN_KEY,
                &json!({"reason": "风控"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let elsewhere = app.create(ADMIN_KEY, "shop-b", "BK-4").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ids = json!([held1, paid, held2, held1, elsewhere]);
    let before = [
        status_of(&app, &held1).await,
        status_of(&app, &held2).await,
        status_of(&app, &paid).await,
    ];
    let events = app.event_count().await;

    // A key scoped to shop-a: shop-b's order does not exist for it.
    let scoped = app.key("ops", Some(&["shop-a"]), false).await;
    let r = bulk(
        &app,
        &scoped,
        json!({"action": "approve", "order_ids": ids, "preview": true}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        outcomes(&r),
        vec![
            (held1.clone(), "would_apply".into(), "".into()),
            (
                paid.clone(),
                "refused".into(),
                "transition_not_allowed".into()
            ),
            (held2.clone(), "would_apply".into(), "".into()),
            (elsewhere.clone(), "not_found".into(), "not_found".into()),
        ],
        "repeats count once"
    );
    assert_eq!(r.body["preview"], true);
    assert_eq!(
        (r.body["succeeded"].clone(), r.body["refused"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(r.body["results"][1]["status"], "paid");
    // The preview wrote nothing.
    assert_eq!(app.event_count().await, events);
    assert_eq!(status_of(&app, &held1).await, before[0]);

    // The run: each order alone; the refusal stops none of the others.
    let body = json!({"action": "approve", "order_ids": [held1, paid, held2]});
    let r = bulk(&app, &ops, body.clone(), Some("bulk-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        outcomes(&r),
        vec![
            (held1.clone(), "done".into(), "".into()),
            (
                paid.clone(),
                "refused".into(),
                "transition_not_allowed".into()
            ),
            (held2.clone(), "done".into(), "".into()),
        ]
    );
    assert_eq!(
        status_of(&app, &held1).await,
        ("paid".into(), before[0].1 + 1)
    );
    assert_eq!(
        status_of(&app, &held2).await,
        ("paid".into(), before[1].1 + 1)
    );
    assert_eq!(status_of(&app, &paid).await, before[2]);
    let events_after = app.event_count().await;
    // The same key again: the stored answer, nothing done twice.
    let again = bulk(&app, &ops, body.clone(), Some("bulk-1")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, r.body);
    assert_eq!(app.event_count().await, events_after);
    // The same key with another request: refused.
    let other = bulk(
        &app,
        &ops,
        json!({"action": "approve", "order_ids": [held1]}),
        Some("bulk-1"),
    )
    .await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    // The board's holds were closed by the approvals.
    let b = app.get("/v1/exceptions?kind=on_hold", ADMIN_KEY).await.body;
    assert!(board_rows(&b).is_empty(), "{b}");

    // Hold with a reason, then set the memo; a hold without a reason is refused whole.
    let r = bulk(
        &app,
        &ops,
        json!({"action": "hold", "order_ids": [paid]}),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, "reason")
    );
    let r = bulk(
        &app,
        &ops,
        json!({"action": "set_seller_memo", "seller_memo": "加急", "reason": "大促", "order_ids": [paid, held1]}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        outcomes(&r)
            .iter()
            .map(|o| o.1.as_str())
            .collect::<Vec<_>>(),
        vec!["done", "done"]
    );
    let o = app.get(&format!("/v1/orders/{paid}"), ADMIN_KEY).await.body;
    assert_eq!(o["seller_memo"], "加急", "{o}");
}

async fn bulk_actions_over_a_search_check_the_actions_permission_and_their_bounds(app: TestApp) {
    let mut paid = Vec::new();
    for i in 0..4 {
        paid.push(order(&app, &format!("BS-{i}"), true).await);
    }
    let unpaid = order(&app, "BS-u", false).await;
    // Finance may cancel but not approve or hold: checked once, before any order is read.
    let finance = app.key("finance", None, false).await;
    let viewer = app.key("viewer", None, false).await;
    let search = json!({"shop": "shop-a", "status": "paid"});
    for (key, body) in [
        (
            &finance,
            json!({"action": "approve", "search": search, "preview": true}),
        ),
        (
            &finance,
            json!({"action": "retry", "search": search, "preview": true}),
        ),
        (
            &viewer,
            json!({"action": "cancel", "search": search, "reason": "x", "preview": true}),
        ),
    ] {
        let r = bulk(&app, key, body.clone(), None).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{body}: {}",
            r.body
        );
    }
    // Finance may cancel: the preview lists every paid order of the search.
    let r = bulk(
        &app,
        &finance,
        json!({"action": "cancel", "search": search, "reason": "x", "preview": true}),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["matched"].clone()),
        (StatusCode::OK, json!(4)),
        "{}",
        r.body
    );
    // Hold every paid order of the search: 4 done.
    let ops = app.key("ops", None, false).await;
    let r = bulk(
        &app,
        &ops,
        json!({"action": "hold", "search": search, "reason": "盘点"}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["matched"], 4);
    assert_eq!(r.body["succeeded"], 4);
    let mut got: Vec<String> = outcomes(&r).into_iter().map(|o| o.0).collect();
    got.sort();
    paid.sort();
    assert_eq!(got, paid);
    // Switch carrier over a list: one off the whitelist is refused for every order, per order.
    let r = bulk(
        &app,
        &ops,
        json!({"action": "switch_carrier", "carrier": "yto", "order_ids": [paid[0], unpaid], "preview": true}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let o = outcomes(&r);
    assert_eq!(o[0].2, "carrier_not_whitelisted");
    assert_eq!(o[1].2, "action_not_allowed", "unpaid: not before payment");
    // Bounds and shapes.
    let many: Vec<String> = (0..501).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for (body, status, field) in [
        (
            json!({"action": "approve", "order_ids": many}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "order_ids",
        ),
        (
            json!({"action": "approve", "order_ids": [paid[0], "nope"]}),
            StatusCode::BAD_REQUEST,
            "order_ids[1]",
        ),
        (
            json!({"action": "approve"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "search",
        ),
        (
            json!({"action": "approve", "search": {}, "order_ids": [paid[0]]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "search",
        ),
        (
            json!({"action": "approve", "search": {"colour": "red"}}),
            StatusCode::BAD_REQUEST,
            "search.colour",
        ),
        (
            json!({"action": "approve", "search": {"limit": "5"}}),
            StatusCode::BAD_REQUEST,
            "search.limit",
        ),
        (
            json!({"action": "delete", "order_ids": [paid[0]]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "action",
        ),
        (
            json!({"action": "approve", "carrier": "sf", "order_ids": [paid[0]]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "carrier",
        ),
    ] {
        let r = bulk(&app, ADMIN_KEY, body.clone(), None).await;
        assert_eq!((r.status, r.field()), (status, field), "{body}: {}", r.body);
    }
}

async fn the_interventions_dashboard_counts_people_by_kind_actor_and_day(app: TestApp) {
    let ops = app.key("ops", None, false).await;
    let a = order(&app, "IV-1", true).await;
    let b = order(&app, "IV-2", true).await;
    let hold = |id: String| {
        let (app, ops) = (&app, ops.clone());
        async move {
            app.post(
                &format!("/v1/orders/{id}/hold"),
                &ops,
                &json!({"reason": "x"}),
            )
            .await
        }
    };
    hold(a.clone()).await;
    hold(b.clone()).await;
    app.post(&format!("/v1/orders/{a}/approve"), &ops, &json!({}))
        .await;
    app.post(
        &format!("/v1/orders/{b}/cancel"),
        ADMIN_KEY,
        &json!({"reason": "dup"}),
    )
    .await;
    app.raise(&a, "stop_shipment").await; // a worker: not counted
    app.post(
        &format!("/v1/orders/{a}/exceptions/stop_shipment/notes"),
        &ops,
        &json!({"text": "看一下"}),
    )
    .await;
    let r = app
        .post(
            &format!("/v1/orders/{a}/exceptions/stop_shipment/resolve"),
            &ops,
            &json!({"reason": "ok"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .get("/v1/interventions?days=7&tz_offset_minutes=480", ADMIN_KEY)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body;
    assert_eq!(d["by_kind"]["hold"], 2, "{d}");
    assert_eq!(d["by_kind"]["approve"], 1);
    assert_eq!(d["by_kind"]["cancel"], 1);
    assert_eq!(d["by_kind"]["resolve"], 1);
    assert_eq!(d["by_kind"]["note"], 1);
    assert_eq!(d["by_actor"]["ops:ops"], 5, "{d}");
    assert_eq!(d["total"], 6);
    let days = d["by_day"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let today = (Utc::now() + Duration::hours(8))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(days[6]["day"], today.as_str());
    assert_eq!(days[6]["total"], 6);
    assert_eq!(days[0]["total"], 0);
    // A warehouse key may not read it; bounds are named.
    let wh = app.key("warehouse", None, false).await;
    assert_eq!(
        app.get("/v1/interventions", &wh).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app.get("/v1/interventions?days=91", ADMIN_KEY).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "days"));
    // A key scoped to another shop counts none of shop-a's.
    let other = app.key("ops", Some(&["shop-b"]), false).await;
    let r = app.get("/v1/interventions", &other).await;
    assert_eq!(r.body["total"], 0, "{}", r.body);
}

use crate::backend::*;
use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::idempotency::{IdempotencyKey, StoredResponse, run_idempotent};
use orderhub_core::usecases::{Created, create_order, transition};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Order, OrderId, ShopId, Status};
use orderhub_store::{ApiKeyRow, OrderFilter};

/// Runs each named test once per backend, as `<test>::sqlite` and `<test>::postgres`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(crate::backend::open("sqlite").unwrap()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                match crate::backend::open("postgres") {
                    Some(ts) => super::$name(ts).await,
                    None => eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here"),
                }
            }
        }
    )*};
}

conformance!(
    an_order_reads_back_as_written_with_personal_data_encrypted_at_rest,
    one_external_id_makes_one_order_however_many_create_it_at_once,
    a_transition_writes_order_audit_and_event_together,
    a_refused_transition_writes_nothing,
    failing_jobs_in_a_group_do_not_take_the_others_down,
    events_are_numbered_without_gaps_in_commit_order,
    an_idempotency_key_replays_the_first_response_and_refuses_another_request,
    paging_returns_every_order_once_while_orders_are_being_added,
    filters_and_shop_scopes_narrow_the_listing,
    revoked_api_keys_no_longer_authenticate,
    another_tenant_cannot_see_or_move_an_order,
    a_stale_version_is_a_conflict,
    two_nodes_given_one_idempotency_key_at_once_execute_it_once,
);

async fn create(ts: &TestStore, t: &str, shop: &str, ext: &str) -> Order {
    let (a, d) = (actor(t, Role::Ops), draft(shop, ext));
    match ts
        .store
        .write(0, move |tx| {
            create_order(tx, &a, d.clone(), chrono::Utc::now())
        })
        .await
        .unwrap()
    {
        Created::New(o) | Created::Existing(o) => o,
    }
}

async fn apply(ts: &TestStore, t: &str, id: OrderId, cmd: Command) -> Result<Order, CoreError> {
    let a = actor(t, Role::Admin);
    let key = id.as_uuid().as_u128() as u64;
    ts.store
        .write(key, move |tx| {
            transition(tx, &a, id, &cmd, chrono::Utc::now())
        })
        .await
}

fn filter(t: &str) -> OrderFilter {
    OrderFilter {
        tenant_id: tenant(t),
        status: None,
        channel: None,
        shop_id: None,
        updated_since: None,
        shops: None,
        after: None,
        limit: 1000,
    }
}

async fn an_order_reads_back_as_written_with_personal_data_encrypted_at_rest(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let o = create(&ts, "acme", "tmall-1", "T1").await;
    let back = ts
        .store
        .read(move |r| r.order_get(&tenant("acme"), o.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, o);
    assert_eq!(back.receiver.phone.expose(), "13812345678");
    let raw = ts.raw_docs().join("\n");
    assert!(
        !raw.contains("文三路") && !raw.contains("13812345678") && !raw.contains("王小明"),
        "{raw}"
    );
    assert!(raw.contains("enc1:"));
}

async fn one_external_id_makes_one_order_however_many_create_it_at_once(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let (s, a, d) = (
            ts.store.clone(),
            actor("acme", Role::Ops),
            draft("jd-1", "RACE-1"),
        );
        // Different partitions: on PostgreSQL these are different writers and connections.
        tasks.push(tokio::spawn(async move {
            s.write(i, move |tx| {
                create_order(tx, &a, d.clone(), chrono::Utc::now())
            })
            .await
        }));
    }
    let mut new = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Created::New(o) => {
                new += 1;
                ids.insert(o.id);
            }
            Created::Existing(o) => {
                ids.insert(o.id);
            }
        }
    }
    assert_eq!(
        (new, ids.len()),
        (1, 1),
        "exactly one order created, every caller got it back"
    );
    assert_eq!(ts.count("orders"), 1);
    assert_eq!(ts.count("outbox"), 1, "one order.created event");
}

async fn a_transition_writes_order_audit_and_event_together(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let o = create(&ts, "acme", "s1", "A1").await;
    let paid = apply(
        &ts,
        "acme",
        o.id,
        Command::Pay {
            paid_at: None,
            amount: None,
        },
    )
    .await
    .unwrap();
    assert_eq!((paid.status, paid.version), (Status::Paid, 2));
    let audit = ts
        .store
        .read(move |r| r.audit_for_order(&tenant("acme"), o.id))
        .await
        .unwrap();
    let steps: Vec<_> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.from_version, a.to_version, a.to_status))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("create", 0, 1, Status::PendingPayment),
            ("pay", 1, 2, Status::Paid)
        ]
    );
    let events = ts
        .store
        .read(|r| r.events_after(&tenant("acme"), 0, 100))
        .await
        .unwrap();
    let ev: Vec<_> = events
        .iter()
        .map(|e| (e.event.event_type.as_str(), e.event.aggregate_version))
        .collect();
    assert_eq!(ev, vec![("order.created", 1), ("order.paid", 2)]);
    assert!(
        events
            .iter()
            .all(|e| !e.event.payload.to_string().contains("13812345678")),
        "no personal data in events"
    );
}

async fn a_refused_transition_writes_nothing(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let o = create(&ts, "acme", "s1", "A1").await;
    let before = (ts.count("audit"), ts.count("outbox"));
    let e = apply(&ts, "acme", o.id, Command::Release)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            CoreError::NotAllowed {
                status: Status::PendingPayment,
                version: 1,
                ..
            }
        ),
        "{e:?}"
    );
    let e = apply(&ts, "acme", o.id, Command::Cancel { reason: " ".into() })
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Validation(_)), "{e:?}");
    assert_eq!((ts.count("audit"), ts.count("outbox")), before);
    let back = ts
        .store
        .read(move |r| r.order_get(&tenant("acme"), o.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.version, 1);
}

async fn failing_jobs_in_a_group_do_not_take_the_others_down(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let mut orders = Vec::new();
    for i in 0..30 {
        orders.push(create(&ts, "acme", "s1", &format!("G{i}")).await);
    }
    // Every order gets a good pay and a bad ship at once; all land in the same few groups.
    let mut tasks = Vec::new();
    for o in &orders {
        for cmd in [
            Command::Pay {
                paid_at: None,
                amount: None,
            },
            Command::Release,
        ] {
            let (s, a, id) = (ts.store.clone(), actor("acme", Role::Admin), o.id);
            tasks.push(tokio::spawn(async move {
                s.write(0, move |tx| {
                    transition(tx, &a, id, &cmd, chrono::Utc::now())
                })
                .await
            }));
        }
    }
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 30, "every pay succeeded");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(CoreError::NotAllowed { .. })))
    );
    let paid = ts
        .store
        .read(|r| {
            r.order_list(&OrderFilter {
                status: Some(Status::Paid),
                ..filter("acme")
            })
        })
        .await
        .unwrap();
    assert_eq!(paid.len(), 30);
    assert_eq!(ts.count("outbox"), 60);
}

async fn events_are_numbered_without_gaps_in_commit_order(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    seed_tenant(&ts.store, "beta").await;
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let t = if i % 3 == 0 { "beta" } else { "acme" };
        let (s, a, d) = (
            ts.store.clone(),
            actor(t, Role::Ops),
            draft("s1", &format!("E{i}")),
        );
        tasks.push(tokio::spawn(async move {
            s.write(i, move |tx| {
                create_order(tx, &a, d.clone(), chrono::Utc::now())
            })
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for (t, n) in [("acme", 133), ("beta", 67)] {
        let events = ts
            .store
            .read(move |r| r.events_after(&tenant(t), 0, 1000))
            .await
            .unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=n).collect::<Vec<_>>(),
            "tenant {t}: one gapless sequence"
        );
        let tail = ts
            .store
            .read(move |r| r.events_after(&tenant(t), n - 5, 1000))
            .await
            .unwrap();
        assert_eq!(tail.len(), 5);
    }
}

async fn an_idempotency_key_replays_the_first_response_and_refuses_another_request(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let key = |hash: &str| IdempotencyKey {
        tenant_id: tenant("acme"),
        key_id: "k1".into(),
        key: "idem-1".into(),
        request_hash: hash.into(),
    };
    let run = |k: IdempotencyKey, ext: &'static str| {
        let a = actor("acme", Role::Ops);
        ts.store.write(0, move |tx| {
            run_idempotent(tx, Some(&k), chrono::Utc::now(), |tx| {
                let o = match create_order(tx, &a, draft("s1", ext), chrono::Utc::now())? {
                    Created::New(o) | Created::Existing(o) => o,
                };
                Ok(StoredResponse {
                    status: 201,
                    body: o.id.to_string().into_bytes(),
                    replayed: false,
                })
            })
        })
    };
    let first = run(key("h1"), "I1").await.unwrap();
    let again = run(key("h1"), "I2").await.unwrap();
    assert_eq!(
        (again.status, &again.body, again.replayed),
        (201, &first.body, true)
    );
    assert_eq!(ts.count("orders"), 1, "the replay created nothing");
    assert!(matches!(
        run(key("h2"), "I3").await,
        Err(CoreError::IdempotencyMismatch)
    ));
}

async fn paging_returns_every_order_once_while_orders_are_being_added(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let mut before = std::collections::BTreeSet::new();
    for i in 0..60 {
        before.insert(create(&ts, "acme", "s1", &format!("P{i}")).await.id);
    }
    let writer = {
        let s = ts.store.clone();
        tokio::spawn(async move {
            for i in 0..60u64 {
                let (a, d) = (actor("acme", Role::Ops), draft("s2", &format!("Q{i}")));
                s.write(i, move |tx| {
                    create_order(tx, &a, d.clone(), chrono::Utc::now())
                })
                .await
                .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let f = OrderFilter {
            after,
            limit: 7,
            ..filter("acme")
        };
        let page = ts.store.read(move |r| r.order_list(&f)).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|o| o.id);
        seen.extend(page.into_iter().map(|o| o.id));
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    let unique: std::collections::BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no order returned twice");
    assert!(
        before.is_subset(&unique),
        "every order that existed when paging began was returned"
    );
}

async fn filters_and_shop_scopes_narrow_the_listing(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let a = create(&ts, "acme", "shop-a", "F1").await;
    let b = create(&ts, "acme", "shop-b", "F2").await;
    apply(
        &ts,
        "acme",
        b.id,
        Command::Pay {
            paid_at: None,
            amount: None,
        },
    )
    .await
    .unwrap();
    let list = |f: OrderFilter| ts.store.read(move |r| r.order_list(&f));
    let ids = |v: Vec<Order>| v.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(list(OrderFilter {
            status: Some(Status::Paid),
            ..filter("acme")
        })
        .await
        .unwrap()),
        vec![b.id]
    );
    assert_eq!(
        ids(list(OrderFilter {
            shop_id: Some(ShopId::parse("shop-a").unwrap()),
            ..filter("acme")
        })
        .await
        .unwrap()),
        vec![a.id]
    );
    assert_eq!(
        ids(list(OrderFilter {
            shops: Some(vec![ShopId::parse("shop-b").unwrap()]),
            ..filter("acme")
        })
        .await
        .unwrap()),
        vec![b.id]
    );
    assert!(
        list(OrderFilter {
            shops: Some(vec![]),
            ..filter("acme")
        })
        .await
        .unwrap()
        .is_empty()
    );
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(
        list(OrderFilter {
            updated_since: Some(later),
            ..filter("acme")
        })
        .await
        .unwrap()
        .is_empty()
    );
    let earlier = a.created_at - chrono::Duration::seconds(5);
    assert_eq!(
        list(OrderFilter {
            updated_since: Some(earlier),
            ..filter("acme")
        })
        .await
        .unwrap()
        .len(),
        2
    );
    let ch = orderhub_domain::ids::Channel::parse("jd").unwrap();
    assert!(
        list(OrderFilter {
            channel: Some(ch),
            ..filter("acme")
        })
        .await
        .unwrap()
        .is_empty()
    );
}

async fn revoked_api_keys_no_longer_authenticate(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let row = ApiKeyRow {
        key_id: "key-1".into(),
        tenant_id: tenant("acme"),
        name: "ops key".into(),
        role: Role::Warehouse,
        shops: Some(vec![ShopId::parse("s1").unwrap()]),
        pii_read: false,
        created_at: chrono::Utc::now(),
        revoked_at: None,
    };
    let r2 = row.clone();
    ts.store
        .write(0, move |tx| Ok(tx.api_key_insert(&r2, "hash-1")?))
        .await
        .unwrap();
    let found = ts
        .store
        .read(|r| r.api_key_by_hash("hash-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.role, found.shops.clone(), found.pii_read),
        (Role::Warehouse, row.shops.clone(), false)
    );
    let revoked = ts
        .store
        .write(0, |tx| {
            Ok(tx.api_key_revoke(&tenant("acme"), "key-1", chrono::Utc::now())?)
        })
        .await
        .unwrap();
    assert!(revoked);
    assert!(
        ts.store
            .read(|r| r.api_key_by_hash("hash-1"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        ts.store
            .read(|r| r.api_keys(&tenant("acme")))
            .await
            .unwrap()
            .len(),
        1,
        "still listed, as revoked"
    );
}

async fn another_tenant_cannot_see_or_move_an_order(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    seed_tenant(&ts.store, "beta").await;
    let o = create(&ts, "acme", "s1", "X1").await;
    assert!(
        ts.store
            .read(move |r| r.order_get(&tenant("beta"), o.id))
            .await
            .unwrap()
            .is_none()
    );
    let e = apply(
        &ts,
        "beta",
        o.id,
        Command::Pay {
            paid_at: None,
            amount: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, CoreError::NotFound));
    // The same external id in another tenant is another order.
    let other = create(&ts, "beta", "s1", "X1").await;
    assert_ne!(other.id, o.id);
}

async fn a_stale_version_is_a_conflict(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let o = create(&ts, "acme", "s1", "V1").await;
    let mut stale = o.clone();
    stale.version = 5;
    let e = ts
        .store
        .write(0, move |tx| Ok(tx.order_update(&stale)?))
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Store(s) if s.is_retryable()));
}

async fn two_nodes_given_one_idempotency_key_at_once_execute_it_once(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let other_node = orderhub_store::Store::open(&ts.config, cipher()).unwrap();
    for round in 0..8 {
        let o = create(&ts, "acme", "s1", &format!("N{round}")).await;
        let key = IdempotencyKey {
            tenant_id: tenant("acme"),
            key_id: "k1".into(),
            key: format!("pay-{round}"),
            request_hash: "h".into(),
        };
        let pay = |node: orderhub_store::Store| {
            let (a, k, id) = (actor("acme", Role::Admin), key.clone(), o.id);
            tokio::spawn(async move {
                node.write(0, move |tx| {
                    run_idempotent(tx, Some(&k), chrono::Utc::now(), |tx| {
                        let cmd = Command::Pay {
                            paid_at: None,
                            amount: None,
                        };
                        let paid = transition(tx, &a, id, &cmd, chrono::Utc::now())?;
                        Ok(StoredResponse {
                            status: 200,
                            body: paid.version.to_string().into_bytes(),
                            replayed: false,
                        })
                    })
                })
                .await
            })
        };
        let (x, y) = (pay(ts.store.clone()), pay(other_node.clone()));
        let (x, y) = (x.await.unwrap().unwrap(), y.await.unwrap().unwrap());
        assert_eq!(
            (x.status, &x.body),
            (y.status, &y.body),
            "round {round}: both got the first response"
        );
        assert!(
            x.replayed != y.replayed,
            "round {round}: exactly one executed"
        );
    }
    assert_eq!(
        ts.count("outbox"),
        16,
        "8 creates and 8 payments, none twice"
    );
}

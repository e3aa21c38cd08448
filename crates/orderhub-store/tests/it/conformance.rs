use crate::backend::*;
use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::idempotency::{IdempotencyKey, StoredResponse, run_idempotent};
use orderhub_core::usecases::{Created, create_order, transition};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Order, OrderId, ShopId, Status};
use orderhub_store::{ApiKeyRow, OrderFilter};

conformance!(
    an_order_reads_back_as_written_with_personal_data_encrypted_at_rest,
    one_external_id_makes_one_order_however_many_create_it_at_once,
    a_transition_writes_order_audit_and_event_together,
    a_refused_transition_writes_nothing,
    failing_jobs_in_a_group_do_not_take_the_others_down,
    events_are_numbered_without_gaps_in_commit_order,
    events_keep_the_trace_context_of_the_write_that_raised_them,
    an_idempotency_key_replays_the_first_response_and_refuses_another_request,
    stored_responses_are_sealed_and_older_clear_ones_are_sealed_when_the_store_opens,
    paging_returns_every_order_once_while_orders_are_being_added,
    filters_and_shop_scopes_narrow_the_listing,
    revoked_api_keys_no_longer_authenticate,
    another_tenant_cannot_see_or_move_an_order,
    a_stale_version_is_a_conflict,
    an_order_changed_several_times_in_one_transaction_is_stored_once_in_its_last_version,
    two_nodes_given_one_idempotency_key_at_once_execute_it_once,
    a_node_moves_an_order_on_from_what_another_node_made_of_it,
    carrier_accounts_read_back_with_their_secrets_encrypted_at_rest,
    weights_and_warehouse_senders_read_back_with_the_sender_encrypted_at_rest,
    a_lease_keeps_its_partition_positions_and_only_its_holder_moves_them,
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
    OrderFilter::all(tenant(t), 1000)
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

tokio::task_local! {
    /// The `traceparent` the trace hook hands the store inside [`TRACE`]`.scope`.
    static TRACE: String;
}

/// The trace hook as the binary installs it, with the caller's trace context taken from a task
/// local instead of a span: outside a scope (every other test) writes are untraced.
fn trace_hook() -> Option<(tracing::Span, String)> {
    TRACE
        .try_with(|tp| (tracing::Span::none(), tp.clone()))
        .ok()
}

/// Issue 24: an event's outbox row keeps the `traceparent` of the write that raised it, also when
/// the writer commits traced and untraced writes in one group; an untraced write leaves it empty.
async fn events_keep_the_trace_context_of_the_write_that_raised_them(ts: TestStore) {
    orderhub_store::set_trace_hook(trace_hook);
    seed_tenant(&ts.store, "acme").await;
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let (s, a, d) = (
            ts.store.clone(),
            actor("acme", Role::Ops),
            draft("s1", &format!("TP{i}")),
        );
        let traceparent = (i % 2 == 0).then(|| format!("00-{:032x}-{:016x}-01", i + 1, i + 1));
        tasks.push(tokio::spawn(async move {
            // One partition: the writes share groups.
            let write = s.write(0, move |tx| {
                create_order(tx, &a, d.clone(), chrono::Utc::now())
            });
            let created = match traceparent.clone() {
                Some(tp) => TRACE.scope(tp, write).await,
                None => write.await,
            };
            let order = match created.unwrap() {
                Created::New(o) | Created::Existing(o) => o,
            };
            (order.id.as_uuid(), traceparent)
        }));
    }
    let mut want = std::collections::HashMap::new();
    for t in tasks {
        let (id, tp) = t.await.unwrap();
        want.insert(id, tp);
    }
    let events = ts
        .store
        .read(|r| r.events_after(&tenant("acme"), 0, 1000))
        .await
        .unwrap();
    assert_eq!(events.len(), 40);
    for e in events {
        assert_eq!(
            Some(&e.traceparent),
            want.get(&e.event.aggregate_id),
            "event {} of order {}",
            e.seq,
            e.event.aggregate_id
        );
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

/// A stored response may hold a receiver in clear (a key with `pii:read`): it is kept sealed with
/// the personal-data cipher; a row stored in clear by an earlier version is sealed when the store
/// opens, and both still replay.
async fn stored_responses_are_sealed_and_older_clear_ones_are_sealed_when_the_store_opens(
    ts: TestStore,
) {
    seed_tenant(&ts.store, "acme").await;
    const CLEAR: &str = r#"{"receiver":{"phone":"13912345678"}}"#;
    let replay = |store: orderhub_store::Store, key: &'static str| async move {
        let k = IdempotencyKey {
            tenant_id: tenant("acme"),
            key_id: "k1".into(),
            key: key.into(),
            request_hash: "h".into(),
        };
        store
            .write(0, move |tx| {
                run_idempotent(tx, Some(&k), chrono::Utc::now(), |_| {
                    Ok(StoredResponse {
                        status: 201,
                        body: CLEAR.as_bytes().to_vec(),
                        replayed: false,
                    })
                })
            })
            .await
    };
    replay(ts.store.clone(), "new").await.unwrap();
    // A row as a version before sealing wrote it.
    ts.exec(&format!(
        "INSERT INTO idempotency VALUES ('acme', 'k1', 'legacy', 'h', 201, {}, {})",
        match ts.raw {
            Raw::Sqlite(_) => format!("CAST('{CLEAR}' AS BLOB)"),
            Raw::Postgres(_) => format!("convert_to('{CLEAR}', 'UTF8')"),
        },
        match ts.raw {
            Raw::Sqlite(_) => "0",
            Raw::Postgres(_) => "now()",
        }
    ));
    let reopened = orderhub_store::Store::open(&ts.config, cipher()).unwrap();
    let bodies = ts.idempotency_bodies();
    assert_eq!(bodies.len(), 2);
    for b in &bodies {
        assert!(b.starts_with(b"enc1:"), "{}", String::from_utf8_lossy(b));
        assert!(!String::from_utf8_lossy(b).contains("13912345678"));
    }
    for key in ["new", "legacy"] {
        let r = replay(reopened.clone(), key).await.unwrap();
        assert_eq!(
            (r.body.as_slice(), r.replayed),
            (CLEAR.as_bytes(), true),
            "{key}"
        );
    }
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
            search: Default::default(),
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
            search: Default::default(),
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

/// Two hubs on one database (a second process on the same SQLite file, a second node on
/// PostgreSQL): an order one of them changed moments ago (SQLite's writer keeps such orders in
/// memory) and the other changed since is moved on from the other's version, not refused as a
/// conflict nor overwritten.
async fn a_node_moves_an_order_on_from_what_another_node_made_of_it(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let o = create(&ts, "acme", "s1", "N1").await;
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
    assert_eq!(paid.version, 2);
    let other = orderhub_store::Store::open(&ts.config, cipher()).unwrap();
    let (a, id) = (actor("acme", Role::Admin), o.id);
    let held = other
        .write(0, move |tx| {
            let hold = Command::Hold {
                reason: "address check".into(),
            };
            transition(tx, &a, id, &hold, chrono::Utc::now())
        })
        .await
        .unwrap();
    assert_eq!((held.version, held.status), (3, Status::OnHold));
    let approved = apply(&ts, "acme", o.id, Command::Approve).await.unwrap();
    assert_eq!(approved.version, 4);
    let stored = ts
        .store
        .read(move |r| r.order_get(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.version, stored.status), (4, approved.status));
    let trail = ts
        .store
        .read(move |r| r.audit_for_order(&tenant("acme"), id))
        .await
        .unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["create", "pay", "hold", "approve"]);
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

/// A channel order is often created, paid and flagged in its first transaction (SQLite keeps such
/// an order in memory until commit): inside the transaction every read sees the latest version, a
/// second create of its external id finds it, a stale update is refused, and the table holds the
/// last version once.
async fn an_order_changed_several_times_in_one_transaction_is_stored_once_in_its_last_version(
    ts: TestStore,
) {
    seed_tenant(&ts.store, "acme").await;
    let (a, d) = (actor("acme", Role::Admin), draft("s1", "M1"));
    let (id, repeat, stale_refused) = ts
        .store
        .write(0, move |tx| {
            let Created::New(o) = create_order(tx, &a, d.clone(), chrono::Utc::now())? else {
                panic!("the order is new");
            };
            let paid = transition(
                tx,
                &a,
                o.id,
                &Command::Pay {
                    paid_at: None,
                    amount: None,
                },
                chrono::Utc::now(),
            )?;
            assert_eq!(tx.order_get(&o.tenant_id, o.id)?.unwrap().version, 2);
            let held = transition(
                tx,
                &a,
                o.id,
                &Command::Hold {
                    reason: "check the address".into(),
                },
                chrono::Utc::now(),
            )?;
            let read = tx.order_get(&o.tenant_id, o.id)?.unwrap();
            assert_eq!((read.status, read.version), (Status::OnHold, held.version));
            let by_ext = tx
                .order_by_external(&o.tenant_id, &o.shop_id, &o.external_order_id)?
                .unwrap();
            assert_eq!(by_ext.version, held.version);
            let repeat = create_order(tx, &a, d.clone(), chrono::Utc::now())?;
            let stale_refused = tx.order_update(&paid).is_err();
            Ok((o.id, repeat, stale_refused))
        })
        .await
        .unwrap();
    assert!(matches!(repeat, Created::Existing(o) if o.id == id && o.status == Status::OnHold));
    assert!(
        stale_refused,
        "an update from an older version is a conflict"
    );
    let stored = ts
        .store
        .read(move |r| r.order_get(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.status, stored.version), (Status::OnHold, 3));
    let all = ts
        .store
        .read(|r| r.order_list(&filter("acme")))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    // The search columns follow the last version too.
    let mut f = filter("acme");
    f.status = Some(Status::OnHold);
    assert_eq!(ts.store.read(move |r| r.order_count(&f)).await.unwrap(), 1);
    let events = ts
        .store
        .read(|r| r.events_after(&tenant("acme"), 0, 100))
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
    assert_eq!(types, ["order.created", "order.paid", "order.held"]);
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

// ---- Inventory ----

use orderhub_core::inventory::{self as inv, ReserveInput};
use orderhub_core::ports::{SkuRecord, WarehouseRecord};
use orderhub_domain::Sku;
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::inventory::{
    DeductionMode, ReleaseReason, ReservationCommand, ReservationState, StockLevel,
};

conformance!(
    stock_moves_through_receipt_reserve_commit_consume_with_a_balanced_ledger,
    concurrent_reservations_never_take_more_than_the_stock,
    kits_reserve_their_components_together_or_not_at_all,
    held_reservations_expire_and_give_their_stock_back,
    reservations_choose_the_first_covering_warehouse_with_all_of_it,
    concurrent_kits_sharing_a_component_never_oversell_it,
    presale_orders_hold_stock_at_the_deposit_and_commit_it_at_the_final_payment,
    a_presale_hold_that_ran_out_before_the_final_payment_is_made_afresh,
    a_pos_ticket_holds_its_goods_until_it_is_cancelled,
);

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}
fn wh(s: &str) -> WarehouseId {
    WarehouseId::parse(s).unwrap()
}

async fn seed_inventory(ts: &TestStore, stock: &[(&str, &str, i64)]) {
    seed_tenant(&ts.store, "acme").await;
    let stock: Vec<(String, String, i64)> = stock
        .iter()
        .map(|(s, w, q)| (s.to_string(), w.to_string(), *q))
        .collect();
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let now = chrono::Utc::now();
            for (i, (w, regions)) in [
                ("HZ", vec!["浙江省"]),
                ("SH", vec!["上海市", "浙江省"]),
                ("BJ", vec!["北京市"]),
            ]
            .iter()
            .enumerate()
            {
                let rec = WarehouseRecord {
                    warehouse_id: wh(w),
                    name: w.to_string(),
                    priority: i as u32,
                    regions: regions.iter().map(|r| r.to_string()).collect(),
                    sender: None,
                    parcel_max_kg: None,
                };
                inv::define_warehouse(tx, &a, &rec, now)?;
            }
            for s in ["TEA", "CUP", "HOT"] {
                inv::define_sku(
                    tx,
                    &a,
                    &SkuRecord {
                        sku: sku(s),
                        title: s.into(),
                        components: None,
                        weight_kg: None,
                    },
                    now,
                )?;
            }
            let kit = SkuRecord {
                sku: sku("GIFT"),
                title: "gift box".into(),
                components: Some(vec![(sku("TEA"), 2), (sku("CUP"), 1)]),
                weight_kg: None,
            };
            inv::define_sku(tx, &a, &kit, now)?;
            let mug = SkuRecord {
                sku: sku("MUGSET"),
                title: "mug set".into(),
                components: Some(vec![(sku("CUP"), 2)]),
                weight_kg: None,
            };
            inv::define_sku(tx, &a, &mug, now)?;
            for (s, w, q) in &stock {
                inv::receive(tx, &a, &sku(s), &wh(w), *q, Some("GRN-1"), now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

fn reserve_input(lines: &[(&str, u32)], hold: Option<i64>) -> ReserveInput {
    ReserveInput {
        reference: "checkout-1".into(),
        lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
        region: Some("浙江省".into()),
        warehouse: None,
        mode: DeductionMode::AtPayment,
        hold_for: hold.map(chrono::Duration::seconds),
    }
}

async fn level(ts: &TestStore, s: &str, w: &str) -> StockLevel {
    let (s, w) = (sku(s), wh(w));
    let rows = ts
        .store
        .read(move |r| r.stock_for_sku(&tenant("acme"), &s))
        .await
        .unwrap();
    rows.into_iter()
        .find(|(x, _)| x == &w)
        .map(|(_, r)| r.level)
        .unwrap_or_default()
}

async fn stock_moves_through_receipt_reserve_commit_consume_with_a_balanced_ledger(ts: TestStore) {
    seed_inventory(&ts, &[("TEA", "HZ", 10)]).await;
    let a = actor("acme", Role::Admin);
    let input = reserve_input(&[("TEA", 4)], Some(300));
    let r = ts
        .store
        .write(0, move |tx| {
            inv::reserve(tx, &a, &input, chrono::Utc::now())
        })
        .await
        .unwrap();
    assert!(matches!(r.state, ReservationState::Held { .. }));
    assert_eq!(
        level(&ts, "TEA", "HZ").await,
        StockLevel {
            on_hand: 10,
            reserved: 4
        }
    );
    for cmd in [ReservationCommand::Commit, ReservationCommand::Consume] {
        let (a, id) = (actor("acme", Role::Admin), r.reservation_id);
        ts.store
            .write(0, move |tx| {
                inv::move_reservation(tx, &a, id, cmd, chrono::Utc::now())
            })
            .await
            .unwrap();
    }
    assert_eq!(
        level(&ts, "TEA", "HZ").await,
        StockLevel {
            on_hand: 6,
            reserved: 0
        }
    );
    let (a, id) = (actor("acme", Role::Admin), r.reservation_id);
    let e = ts
        .store
        .write(0, move |tx| {
            inv::move_reservation(
                tx,
                &a,
                id,
                ReservationCommand::Release(ReleaseReason::Cancelled),
                chrono::Utc::now(),
            )
        })
        .await;
    assert!(
        matches!(e, Err(CoreError::ReservationNotAllowed(_))),
        "a consumed reservation cannot be released"
    );
    let ledger = ts
        .store
        .read(|r| r.ledger(&tenant("acme"), &sku("TEA"), None, 0, 100))
        .await
        .unwrap();
    let moves: Vec<_> = ledger
        .iter()
        .map(|(_, l)| (l.movement, l.quantity, l.after.on_hand, l.after.reserved))
        .collect();
    assert_eq!(
        moves,
        vec![
            ("receipt", 10, 10, 0),
            ("reserve", 4, 10, 4),
            ("consume", -4, 6, 0)
        ]
    );
    // Bad movements write nothing.
    let a = actor("acme", Role::Admin);
    let e = ts
        .store
        .write(0, move |tx| {
            inv::receive(tx, &a, &sku("GIFT"), &wh("HZ"), 5, None, chrono::Utc::now())
        })
        .await;
    assert!(matches!(e, Err(CoreError::Validation(v)) if v.rule == "kit_has_no_stock"));
    let a = actor("acme", Role::Admin);
    let e = ts
        .store
        .write(0, move |tx| {
            inv::receive(tx, &a, &sku("TEA"), &wh("XX"), 5, None, chrono::Utc::now())
        })
        .await;
    assert!(matches!(e, Err(CoreError::Validation(v)) if v.rule == "unknown_warehouse"));
    let a = actor("acme", Role::Admin);
    let e = ts
        .store
        .write(0, move |tx| {
            inv::adjust(
                tx,
                &a,
                &sku("TEA"),
                &wh("HZ"),
                -7,
                orderhub_domain::inventory::AdjustmentReason::StockTake,
                chrono::Utc::now(),
            )
        })
        .await;
    assert!(matches!(e, Err(CoreError::Validation(v)) if v.rule == "would_go_negative"));
    assert_eq!(
        ts.store
            .read(|r| r.ledger(&tenant("acme"), &sku("TEA"), None, 0, 100))
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn concurrent_reservations_never_take_more_than_the_stock(ts: TestStore) {
    seed_inventory(&ts, &[("HOT", "HZ", 100)]).await;
    // Two stores on one database stand for two orderhub processes.
    let other = orderhub_store::Store::open(&ts.config, cipher()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let node = if i % 2 == 0 {
            ts.store.clone()
        } else {
            other.clone()
        };
        let a = actor("acme", Role::Ops);
        let input = reserve_input(&[("HOT", 1)], None);
        tasks.push(tokio::spawn(async move {
            node.write(i, move |tx| {
                inv::reserve(tx, &a, &input, chrono::Utc::now())
            })
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CoreError::OutOfStock { available: 0, .. }) => {}
            Err(e) => panic!("a refusal must say out of stock, got {e:?}"),
        }
    }
    assert_eq!(ok, 100, "exactly the stock, no more");
    assert_eq!(
        level(&ts, "HOT", "HZ").await,
        StockLevel {
            on_hand: 100,
            reserved: 100
        }
    );
    assert_eq!(
        ts.count("ledger"),
        101,
        "one receipt and one row per reservation"
    );
}

async fn kits_reserve_their_components_together_or_not_at_all(ts: TestStore) {
    seed_inventory(&ts, &[("TEA", "HZ", 5), ("CUP", "HZ", 4)]).await;
    let reserve = |lines: Vec<(&'static str, u32)>| {
        let a = actor("acme", Role::Ops);
        let input = reserve_input(&lines, None);
        ts.store.write(0, move |tx| {
            inv::reserve(tx, &a, &input, chrono::Utc::now())
        })
    };
    // GIFT = 2 TEA + 1 CUP; MUGSET = 2 CUP. They share CUP.
    reserve(vec![("GIFT", 2)]).await.unwrap();
    assert_eq!(level(&ts, "TEA", "HZ").await.reserved, 4);
    assert_eq!(level(&ts, "CUP", "HZ").await.reserved, 2);
    let e = reserve(vec![("GIFT", 1)]).await.unwrap_err();
    assert!(
        matches!(&e, CoreError::OutOfStock { sku, requested: 2, available: 1, .. } if sku == "TEA"),
        "{e:?}"
    );
    assert_eq!(
        level(&ts, "CUP", "HZ").await.reserved,
        2,
        "no component of a refused kit is held"
    );
    reserve(vec![("MUGSET", 1)]).await.unwrap();
    assert!(
        reserve(vec![("MUGSET", 1)]).await.is_err(),
        "the shared component is gone"
    );
    assert_eq!(
        level(&ts, "CUP", "HZ").await,
        StockLevel {
            on_hand: 4,
            reserved: 4
        }
    );
}

async fn held_reservations_expire_and_give_their_stock_back(ts: TestStore) {
    seed_inventory(&ts, &[("TEA", "HZ", 3)]).await;
    let a = actor("acme", Role::Ops);
    let t0 = chrono::Utc::now();
    let input = reserve_input(&[("TEA", 3)], Some(60));
    let r = ts
        .store
        .write(0, move |tx| inv::reserve(tx, &a, &input, t0))
        .await
        .unwrap();
    let before = ts
        .store
        .write(0, move |tx| {
            inv::expire_due(tx, t0 + chrono::Duration::seconds(59), 100)
        })
        .await
        .unwrap();
    assert_eq!(before, 0);
    let after = ts
        .store
        .write(0, move |tx| {
            inv::expire_due(tx, t0 + chrono::Duration::seconds(60), 100)
        })
        .await
        .unwrap();
    assert_eq!(after, 1);
    assert_eq!(level(&ts, "TEA", "HZ").await.reserved, 0);
    // A payment arriving now finds the hold released.
    let (a, id) = (actor("acme", Role::Ops), r.reservation_id);
    let e = ts
        .store
        .write(0, move |tx| {
            inv::move_reservation(
                tx,
                &a,
                id,
                ReservationCommand::Commit,
                t0 + chrono::Duration::seconds(61),
            )
        })
        .await;
    assert!(matches!(e, Err(CoreError::ReservationNotAllowed(_))));
    assert_eq!(level(&ts, "TEA", "HZ").await.reserved, 0);
}

async fn reservations_choose_the_first_covering_warehouse_with_all_of_it(ts: TestStore) {
    seed_inventory(
        &ts,
        &[("TEA", "HZ", 2), ("TEA", "SH", 10), ("TEA", "BJ", 50)],
    )
    .await;
    let reserve = |q: u32, region: &'static str| {
        let a = actor("acme", Role::Ops);
        let mut input = reserve_input(&[("TEA", q)], None);
        input.region = Some(region.into());
        ts.store.write(0, move |tx| {
            inv::reserve(tx, &a, &input, chrono::Utc::now())
        })
    };
    assert_eq!(
        reserve(2, "浙江省").await.unwrap().lines[0].warehouse_id,
        wh("HZ")
    );
    assert_eq!(
        reserve(5, "浙江省").await.unwrap().lines[0].warehouse_id,
        wh("SH"),
        "HZ is out, SH covers 浙江省 too"
    );
    let e = reserve(6, "浙江省").await.unwrap_err();
    assert!(
        matches!(
            e,
            CoreError::OutOfStock {
                requested: 6,
                available: 5,
                ..
            }
        ),
        "BJ does not ship to 浙江省: {e:?}"
    );
    assert_eq!(
        reserve(6, "北京市").await.unwrap().lines[0].warehouse_id,
        wh("BJ")
    );
}

async fn concurrent_kits_sharing_a_component_never_oversell_it(ts: TestStore) {
    seed_inventory(&ts, &[("TEA", "HZ", 50), ("CUP", "HZ", 30)]).await;
    let other = orderhub_store::Store::open(&ts.config, cipher()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..120u64 {
        let node = if i % 2 == 0 {
            ts.store.clone()
        } else {
            other.clone()
        };
        let kit = if i % 3 == 0 { "MUGSET" } else { "GIFT" };
        let a = actor("acme", Role::Ops);
        let input = reserve_input(&[(kit, 1)], None);
        tasks.push(tokio::spawn(async move {
            (
                kit,
                node.write(i, move |tx| {
                    inv::reserve(tx, &a, &input, chrono::Utc::now())
                })
                .await,
            )
        }));
    }
    let (mut gifts, mut mugs) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            ("GIFT", Ok(_)) => gifts += 1,
            (_, Ok(_)) => mugs += 1,
            (_, Err(CoreError::OutOfStock { .. })) => {}
            (_, Err(e)) => panic!("{e:?}"),
        }
    }
    let (tea, cup) = (level(&ts, "TEA", "HZ").await, level(&ts, "CUP", "HZ").await);
    assert_eq!(tea.reserved, 2 * gifts, "GIFT = 2 TEA + 1 CUP");
    assert_eq!(cup.reserved, gifts + 2 * mugs, "MUGSET = 2 CUP");
    assert!(tea.available() >= 0 && cup.available() >= 0);
    assert!(
        cup.available() < 2,
        "CUP ran out: every kit that could be made was made ({gifts} gifts, {mugs} mug sets)"
    );
}

fn kind_draft(ext: &str, kind: orderhub_domain::OrderKind) -> orderhub_domain::order::OrderDraft {
    let mut d = draft("s1", ext);
    let mut line = d.lines[0].clone();
    line.sku = sku("TEA");
    line.quantity = 2;
    d.lines = vec![line];
    d.kind = kind;
    d
}

fn presale(due: chrono::DateTime<chrono::Utc>) -> orderhub_domain::OrderKind {
    let m =
        |s: &str| orderhub_domain::Money::parse("m", s, orderhub_domain::Currency::CNY).unwrap();
    orderhub_domain::OrderKind::Presale {
        deposit: m("5.00"),
        final_payment: m("16.00"),
        final_payment_due: Some(due.fixed_offset()),
    }
}

async fn create_at(
    ts: &TestStore,
    d: orderhub_domain::order::OrderDraft,
    at: chrono::DateTime<chrono::Utc>,
) -> Order {
    let a = actor("acme", Role::Ops);
    match ts
        .store
        .write(0, move |tx| create_order(tx, &a, d.clone(), at))
        .await
        .unwrap()
    {
        Created::New(o) => o,
        Created::Existing(o) => panic!("expected a new order, got {o:?}"),
    }
}

async fn reservation_state(ts: &TestStore, id: uuid::Uuid) -> ReservationState {
    ts.store
        .read(move |r| r.reservation(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap()
        .state
}

async fn presale_orders_hold_stock_at_the_deposit_and_commit_it_at_the_final_payment(
    ts: TestStore,
) {
    seed_inventory(&ts, &[("TEA", "HZ", 10)]).await;
    let t0 = chrono::Utc::now();
    let o = create_at(
        &ts,
        kind_draft("PS1", presale(t0 + chrono::Duration::seconds(60))),
        t0,
    )
    .await;
    let rid = o.reservation_id.expect("the deposit holds the stock");
    assert!(matches!(
        reservation_state(&ts, rid).await,
        ReservationState::Held { .. }
    ));
    assert_eq!(
        level(&ts, "TEA", "HZ").await,
        StockLevel {
            on_hand: 10,
            reserved: 2
        }
    );
    let a = actor("acme", Role::Admin);
    let paid = ts
        .store
        .write(0, move |tx| {
            transition(
                tx,
                &a,
                o.id,
                &Command::Pay {
                    paid_at: None,
                    amount: None,
                },
                t0 + chrono::Duration::seconds(30),
            )
        })
        .await
        .unwrap();
    assert_eq!(paid.reservation_id, Some(rid));
    assert_eq!(
        reservation_state(&ts, rid).await,
        ReservationState::Committed
    );
    assert_eq!(
        level(&ts, "TEA", "HZ").await,
        StockLevel {
            on_hand: 10,
            reserved: 2
        },
        "committed, not reserved twice"
    );
    // A repeat of the create makes no second hold.
    let a = actor("acme", Role::Ops);
    let d = kind_draft("PS1", presale(t0 + chrono::Duration::seconds(60)));
    let again = ts
        .store
        .write(0, move |tx| create_order(tx, &a, d.clone(), t0))
        .await
        .unwrap();
    assert!(matches!(again, Created::Existing(_)));
    assert_eq!(level(&ts, "TEA", "HZ").await.reserved, 2);
}

async fn a_presale_hold_that_ran_out_before_the_final_payment_is_made_afresh(ts: TestStore) {
    seed_inventory(&ts, &[("TEA", "HZ", 10)]).await;
    let t0 = chrono::Utc::now();
    let o = create_at(
        &ts,
        kind_draft("PS2", presale(t0 + chrono::Duration::seconds(60))),
        t0,
    )
    .await;
    let first = o.reservation_id.unwrap();
    let a = actor("acme", Role::Admin);
    let paid = ts
        .store
        .write(0, move |tx| {
            transition(
                tx,
                &a,
                o.id,
                &Command::Pay {
                    paid_at: None,
                    amount: None,
                },
                t0 + chrono::Duration::seconds(61),
            )
        })
        .await
        .unwrap();
    let second = paid.reservation_id.expect("reserved afresh at payment");
    assert_ne!(second, first);
    assert_eq!(
        reservation_state(&ts, first).await,
        ReservationState::Released(ReleaseReason::Expired)
    );
    assert_eq!(
        reservation_state(&ts, second).await,
        ReservationState::Committed
    );
    assert_eq!(
        level(&ts, "TEA", "HZ").await,
        StockLevel {
            on_hand: 10,
            reserved: 2
        }
    );
}

async fn a_pos_ticket_holds_its_goods_until_it_is_cancelled(ts: TestStore) {
    seed_inventory(&ts, &[("TEA", "HZ", 3)]).await;
    let t0 = chrono::Utc::now();
    let o = create_at(
        &ts,
        kind_draft(
            "POS1",
            orderhub_domain::OrderKind::PosPickup {
                store_id: "SH-01".into(),
            },
        ),
        t0,
    )
    .await;
    let rid = o.reservation_id.unwrap();
    assert_eq!(level(&ts, "TEA", "HZ").await.reserved, 2);
    let short = create_at(
        &ts,
        kind_draft(
            "POS2",
            orderhub_domain::OrderKind::PosPickup {
                store_id: "SH-01".into(),
            },
        ),
        t0,
    )
    .await;
    assert_eq!(
        short.exceptions,
        vec!["out_of_stock".to_owned()],
        "a ticket without stock waits on backorder"
    );
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            transition(
                tx,
                &a,
                o.id,
                &Command::Cancel {
                    reason: "buyer left".into(),
                },
                t0,
            )
        })
        .await
        .unwrap();
    assert_eq!(
        reservation_state(&ts, rid).await,
        ReservationState::Released(ReleaseReason::Cancelled)
    );
    assert_eq!(level(&ts, "TEA", "HZ").await.reserved, 0);
}

// ---------------------------------------------------------------------------------------------
// Channel intake: one order per shop and external id, newer channel versions win.

async fn ingest_at(
    ts: &TestStore,
    t: &str,
    minutes: i64,
    canonical: Status,
    after_sale: bool,
    not_shippable: Option<&str>,
) -> orderhub_core::intake::Ingested {
    use chrono::TimeZone;
    let cn = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let at =
        cn.with_ymd_and_hms(2026, 11, 11, 10, 0, 0).unwrap() + chrono::Duration::minutes(minutes);
    let mut d = draft("tmall-1", "CH-1");
    d.channel_status = Some(format!("S{minutes}"));
    d.channel_updated_at = Some(at);
    let refund = if after_sale {
        orderhub_domain::channel_update::RefundState::Requested
    } else {
        orderhub_domain::channel_update::RefundState::None
    };
    let facts = orderhub_core::intake::ChannelFacts {
        canonical,
        partly_shipped: false,
        refunds: vec![refund; d.lines.len()],
        not_shippable: not_shippable.map(str::to_owned),
        paid_at: Some(at),
        shipment: None,
    };
    let a = actor(t, Role::Admin);
    ts.store
        .write(0, move |tx| {
            orderhub_core::intake::ingest(tx, &a, d.clone(), &facts, chrono::Utc::now())
        })
        .await
        .unwrap()
}

async fn channel_reports_merge_by_version_and_conflicts_raise_exceptions(ts: TestStore) {
    use orderhub_core::intake::Ingested;
    let t = "intake";
    seed_tenant(&ts.store, t).await;
    let o = match ingest_at(&ts, t, 10, Status::Paid, false, None).await {
        Ingested::Created(o) => o,
        other => panic!("{other:?}"),
    };
    assert_eq!(o.status, Status::Paid);
    // An older report (even one that says cancelled) changes nothing.
    let Ingested::Stale(same) = ingest_at(&ts, t, 5, Status::Cancelled, false, None).await else {
        panic!("an older version must be ignored")
    };
    assert_eq!((same.status, same.version), (o.status, o.version));
    // As old as the stored one: ignored too (a duplicate).
    assert!(matches!(
        ingest_at(&ts, t, 10, Status::Cancelled, false, None).await,
        Ingested::Stale(_)
    ));
    // Newer: the channel says it may not ship (group not formed) → held; then shippable → released.
    let Ingested::Updated(held) =
        ingest_at(&ts, t, 20, Status::Paid, false, Some("group not formed")).await
    else {
        panic!()
    };
    assert_eq!(held.status, Status::OnHold);
    assert_eq!(held.channel_status.as_deref(), Some("S20"));
    let Ingested::Updated(free) = ingest_at(&ts, t, 30, Status::Paid, false, None).await else {
        panic!()
    };
    assert_eq!(free.status, Status::Paid);
    // Released to the warehouse, then the buyer closes the order on the channel: not a silent
    // cancel — a stop-shipment exception.
    apply(
        &ts,
        t,
        o.id,
        Command::Allocate {
            warehouse_id: wh("hz"),
        },
    )
    .await
    .unwrap();
    apply(&ts, t, o.id, Command::Release).await.unwrap();
    let Ingested::Updated(stop) = ingest_at(&ts, t, 40, Status::Cancelled, false, None).await
    else {
        panic!()
    };
    assert_eq!(stop.status, Status::Released);
    assert!(
        stop.exceptions.iter().any(|e| e == "stop_shipment"),
        "{:?}",
        stop.exceptions
    );
    // Stopped: shipping it is refused, naming the stop, and changes nothing.
    let ship = Command::Ship {
        carrier: orderhub_domain::ids::CarrierCode::parse("zto").unwrap(),
        tracking_no: "7700001".into(),
        logistics_no: "L1".into(),
    };
    match apply(&ts, t, o.id, ship.clone()).await {
        Err(CoreError::Stopped {
            exception, status, ..
        }) => assert_eq!(
            (exception.as_str(), status),
            ("stop_shipment", Status::Released)
        ),
        other => panic!("shipping a stopped order must be refused, got {other:?}"),
    }
    // An operator resolves the stop (the warehouse had already packed it): it may ship again.
    let a = actor(t, Role::Ops);
    let id = o.id;
    let resolved = ts
        .store
        .write(0, move |tx| {
            orderhub_core::usecases::resolve_exception(
                tx,
                &a,
                id,
                "stop_shipment",
                "buyer confirmed by phone",
                chrono::Utc::now(),
            )
        })
        .await
        .unwrap();
    assert!(resolved.exceptions.is_empty(), "{:?}", resolved.exceptions);
    assert_eq!(resolved.version, stop.version + 1);
    // Shipped, then a refund is requested on the channel: an after-sale exception.
    apply(&ts, t, o.id, ship).await.unwrap();
    let Ingested::Updated(sale) = ingest_at(&ts, t, 50, Status::Shipped, true, None).await else {
        panic!()
    };
    assert_eq!(sale.status, Status::Shipped);
    assert!(
        sale.exceptions.iter().any(|e| e == "after_sale"),
        "{:?}",
        sale.exceptions
    );
    // Every change went out as an event with the order's version.
    let tenant = orderhub_domain::TenantId::parse(t).unwrap();
    let events = ts
        .store
        .read(move |r| r.events_after(&tenant, 0, 1000))
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
    for want in [
        "order.created",
        "order.paid",
        "order.held",
        "order.channel_updated",
        "exception.raised",
    ] {
        assert!(types.contains(&want), "{want} missing from {types:?}");
    }
}

conformance!(channel_reports_merge_by_version_and_conflicts_raise_exceptions);

/// A replay puts the shop's pushes back to pending, and only pushes: a refused pulled order's
/// record (the answer of an API call, not a push) and an unauthenticated push kept without its
/// body are not processed as pushes again.
async fn a_replay_requeues_pushes_and_leaves_other_records_alone(ts: TestStore) {
    use orderhub_store::ChannelMessageRow;
    seed_tenant(&ts.store, "acme").await;
    let now = chrono::Utc::now();
    let row = |dedup: &str| ChannelMessageRow {
        tenant_id: tenant("acme"),
        message_id: uuid::Uuid::now_v7(),
        channel: "douyin".into(),
        shop_id: "s1".into(),
        dedup_key: dedup.into(),
        received_at: now,
        headers: Vec::new(),
        body: b"{}".to_vec(),
        state: "rejected".into(),
        rule: Some("unknown_status".into()),
        field: None,
        reason: None,
        attempts: 1,
        processed_at: Some(now),
    };
    let rows = vec![
        row("douyin:push-1"),
        row("pull-refused:sha256:00"),
        row("rejected:0190"),
    ];
    ts.store
        .write(0, move |tx| {
            for r in &rows {
                tx.channel_message_insert(r)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let n = ts
        .store
        .write(0, move |tx| {
            Ok(tx.channel_messages_requeue(
                &tenant("acme"),
                "douyin",
                "s1",
                now - chrono::Duration::minutes(1),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(n, 1, "only the push");
    let pending = ts
        .store
        .read(|r| r.channel_messages(Some(&tenant("acme")), Some("pending"), None, 10, None))
        .await
        .unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|m| m.dedup_key.as_str())
            .collect::<Vec<_>>(),
        vec!["douyin:push-1"]
    );
}

conformance!(a_replay_requeues_pushes_and_leaves_other_records_alone);

// ---------------------------------------------------------------------------------------------
// What the channel says after creation (issue 19): the domain's decision table applied by intake
// in one transaction — amounts, lines (stock re-reserved), receiver before release; a stop after
// release; per-line refunds; the channel's own shipment.

use orderhub_core::intake::{ChannelFacts, Ingested, ingest};
use orderhub_domain::channel_update::{ChannelShipment, RefundState};

fn cn_at(minutes: i64) -> chrono::DateTime<chrono::FixedOffset> {
    use chrono::TimeZone;
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 11, 10, 0, 0)
        .unwrap()
        + chrono::Duration::minutes(minutes)
}

fn yuan(s: &str) -> orderhub_domain::Money {
    orderhub_domain::Money::parse("m", s, orderhub_domain::Currency::CNY).unwrap()
}

/// A channel order `ext` as the channel reports it at `minutes`: lines (external id, SKU,
/// quantity, unit price, line discount), totals computed.
fn chan_draft(
    ext: &str,
    minutes: i64,
    status: &str,
    lines: &[(&str, &str, u32, &str, &str)],
) -> orderhub_domain::order::OrderDraft {
    let mut d = draft("tmall-1", ext);
    d.channel_status = Some(status.into());
    d.channel_updated_at = Some(cn_at(minutes));
    let template = d.lines[0].clone();
    d.lines = lines
        .iter()
        .map(
            |(id, s, q, unit, discount)| orderhub_domain::order::LineDraft {
                external_line_id: Some(id.to_string()),
                sku: sku(s),
                title: format!("{s} ®"),
                quantity: *q,
                unit_price: yuan(unit),
                discount: yuan(discount),
                paid_amount: None,
                ..template.clone()
            },
        )
        .collect();
    d
}

fn facts_of(canonical: Status) -> ChannelFacts {
    ChannelFacts {
        canonical,
        partly_shipped: false,
        refunds: Vec::new(),
        not_shippable: None,
        paid_at: Some(cn_at(1)),
        shipment: None,
    }
}

async fn report(
    ts: &TestStore,
    d: orderhub_domain::order::OrderDraft,
    f: ChannelFacts,
) -> Result<Ingested, CoreError> {
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            ingest(tx, &a, d.clone(), &f, chrono::Utc::now())
        })
        .await
}

fn updated(r: Result<Ingested, CoreError>) -> Order {
    match r {
        Ok(Ingested::Updated(o)) | Ok(Ingested::Created(o)) => o,
        other => panic!("expected a merged order, got {other:?}"),
    }
}

async fn events_of(ts: &TestStore, id: OrderId) -> Vec<(String, serde_json::Value)> {
    let t = tenant("acme");
    ts.store
        .read(move |r| r.events_after(&t, 0, 10_000))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.aggregate_id == id.as_uuid())
        .map(|e| {
            (
                e.event.event_type.clone(),
                serde_json::from_str(&e.event.payload).unwrap(),
            )
        })
        .collect()
}

async fn audit_of(ts: &TestStore, id: OrderId) -> Vec<orderhub_core::ports::AuditEntry> {
    let t = tenant("acme");
    ts.store
        .read(move |r| r.audit_for_order(&t, id))
        .await
        .unwrap()
}

async fn order_now(ts: &TestStore, id: OrderId) -> Order {
    ts.store
        .read(move |r| r.order_get(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap()
}

/// 改价: the seller takes 10.00 off before the buyer pays; the buyer pays 90.00.
async fn a_price_change_before_payment_is_applied(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let line = |discount| [("L1", "TEA", 1, "100.00", discount)];
    let o = updated(
        report(
            &ts,
            chan_draft("P1", 0, "WAIT_BUYER_PAY", &line("0.00")),
            facts_of(Status::PendingPayment),
        )
        .await,
    );
    assert_eq!((o.paid_amount, o.discount), (yuan("100.00"), yuan("0.00")));
    let cut = updated(
        report(
            &ts,
            chan_draft("P1", 1, "WAIT_BUYER_PAY", &line("10.00")),
            facts_of(Status::PendingPayment),
        )
        .await,
    );
    assert_eq!(cut.status, Status::PendingPayment);
    assert_eq!(
        (cut.paid_amount, cut.discount, cut.lines[0].paid_amount),
        (yuan("90.00"), yuan("10.00"), yuan("90.00"))
    );
    assert_eq!(cut.lines[0].line_id, 1, "the line keeps its id");
    // Then paid at the new price.
    let paid = updated(
        report(
            &ts,
            chan_draft("P1", 2, "WAIT_SELLER_SEND_GOODS", &line("10.00")),
            facts_of(Status::Paid),
        )
        .await,
    );
    assert_eq!(
        (paid.status, paid.paid_amount),
        (Status::Paid, yuan("90.00"))
    );
    assert_eq!(order_now(&ts, o.id).await, paid, "stored as returned");
    // The event says what changed; the audit entry keeps the amounts before and after.
    let events = events_of(&ts, o.id).await;
    let changed: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(t, _)| t == "order.channel_updated")
        .map(|(_, p)| &p["changed"])
        .collect();
    assert_eq!(changed[0], &serde_json::json!(["amounts"]));
    assert_eq!(changed[1], &serde_json::json!(["status"]));
    assert!(events.iter().any(|(t, _)| t == "order.paid"));
    let audit = audit_of(&ts, o.id).await;
    let upd = audit.iter().find(|e| e.action == "channel_update").unwrap();
    assert_eq!(upd.detail["applied"], serde_json::json!(["amounts"]));
    assert_eq!(
        upd.detail["amounts_and_lines"]["ours"]["amounts"]["paid_amount"],
        "100.00"
    );
    assert_eq!(
        upd.detail["amounts_and_lines"]["channel"]["amounts"]["paid_amount"],
        "90.00"
    );
    assert_eq!((upd.from_version, upd.to_version), (1, 2));
    // An older report of the same order changes nothing.
    assert!(matches!(
        report(
            &ts,
            chan_draft("P1", 1, "WAIT_BUYER_PAY", &line("30.00")),
            facts_of(Status::PendingPayment),
        )
        .await,
        Ok(Ingested::Stale(_))
    ));
    assert_eq!(order_now(&ts, o.id).await.version, paid.version);
}

async fn a_line_change_on_a_paid_order_re_reserves_its_stock(ts: TestStore) {
    seed_inventory(&ts, &[("TEA", "HZ", 10), ("CUP", "HZ", 5)]).await;
    let o = updated(
        report(
            &ts,
            chan_draft(
                "R1",
                0,
                "WAIT_SELLER_SEND_GOODS",
                &[
                    ("L1", "TEA", 2, "10.00", "0.00"),
                    ("L2", "CUP", 1, "5.00", "0.00"),
                ],
            ),
            facts_of(Status::Paid),
        )
        .await,
    );
    assert_eq!(o.status, Status::Paid);
    let first = o.reservation_id.expect("paid orders reserve");
    assert_eq!(
        (
            level(&ts, "TEA", "HZ").await.reserved,
            level(&ts, "CUP", "HZ").await.reserved
        ),
        (2, 1)
    );
    // The buyer takes one more tea and a second cup on the channel.
    let more = updated(
        report(
            &ts,
            chan_draft(
                "R1",
                1,
                "WAIT_SELLER_SEND_GOODS",
                &[
                    ("L1", "TEA", 3, "10.00", "0.00"),
                    ("L2", "CUP", 2, "5.00", "0.00"),
                ],
            ),
            facts_of(Status::Paid),
        )
        .await,
    );
    let second = more.reservation_id.expect("reserved again");
    assert_ne!(second, first);
    assert_eq!(
        reservation_state(&ts, first).await,
        ReservationState::Released(ReleaseReason::Manual)
    );
    let rec = ts
        .store
        .read(move |r| r.reservation(&tenant("acme"), second))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, ReservationState::Committed);
    let mut held: Vec<(String, i64)> = rec
        .lines
        .iter()
        .map(|l| (l.sku.to_string(), l.quantity))
        .collect();
    held.sort();
    assert_eq!(held, vec![("CUP".into(), 2), ("TEA".into(), 3)]);
    assert_eq!(
        (
            level(&ts, "TEA", "HZ").await,
            level(&ts, "CUP", "HZ").await.reserved
        ),
        (
            StockLevel {
                on_hand: 10,
                reserved: 3
            },
            2
        ),
        "the old reservation released, the new one held: nothing counted twice"
    );
    // The ledger explains it: reserve 2, release 2, reserve 3.
    let t = tenant("acme");
    let ledger = ts
        .store
        .read(move |r| r.ledger(&t, &sku("TEA"), None, 0, 100))
        .await
        .unwrap();
    let moves: Vec<(&str, i64)> = ledger
        .iter()
        .map(|(_, row)| (row.movement, row.quantity))
        .filter(|(m, _)| *m != "receipt")
        .collect();
    assert_eq!(moves, vec![("reserve", 2), ("release", -2), ("reserve", 3)]);
    assert_eq!(
        more.lines
            .iter()
            .map(|l| (l.line_id, l.quantity))
            .collect::<Vec<_>>(),
        vec![(1, 3), (2, 2)]
    );
    // Now a line of something out of stock: the order waits on backorder, as a payment without
    // stock does, and may not be allocated; the reservation it had is given back.
    let short = updated(
        report(
            &ts,
            chan_draft(
                "R1",
                2,
                "WAIT_SELLER_SEND_GOODS",
                &[
                    ("L1", "TEA", 3, "10.00", "0.00"),
                    ("L3", "HOT", 1, "5.00", "0.00"),
                ],
            ),
            facts_of(Status::Paid),
        )
        .await,
    );
    assert_eq!(short.exceptions, vec!["out_of_stock".to_owned()]);
    assert_eq!(short.reservation_id, None);
    assert_eq!(level(&ts, "TEA", "HZ").await.reserved, 0);
    assert_eq!(level(&ts, "CUP", "HZ").await.reserved, 0);
    assert_eq!(
        short
            .lines
            .iter()
            .map(|l| (l.line_id, l.sku.to_string()))
            .collect::<Vec<_>>(),
        vec![(1, "TEA".into()), (3, "HOT".into())],
        "a new line takes the next id; the dropped line's id is not reused"
    );
    let refused = apply(
        &ts,
        "acme",
        o.id,
        Command::Allocate {
            warehouse_id: wh("HZ"),
        },
    )
    .await;
    assert!(
        matches!(refused, Err(CoreError::ReservationNotAllowed(_))),
        "{refused:?}"
    );
    let events = events_of(&ts, o.id).await;
    assert!(
        events
            .iter()
            .any(|(t, p)| t == "exception.raised" && p["exception"] == "out_of_stock")
    );
}

async fn an_allocated_order_whose_goods_change_is_allocated_where_its_new_stock_is(ts: TestStore) {
    // HZ has tea for two; SH (also covering 浙江省) for five.
    seed_inventory(&ts, &[("TEA", "HZ", 2), ("TEA", "SH", 5)]).await;
    let o = updated(
        report(
            &ts,
            chan_draft(
                "A1",
                0,
                "WAIT_SELLER_SEND_GOODS",
                &[("L1", "TEA", 2, "10.00", "0.00")],
            ),
            facts_of(Status::Paid),
        )
        .await,
    );
    apply(
        &ts,
        "acme",
        o.id,
        Command::Allocate {
            warehouse_id: wh("HZ"),
        },
    )
    .await
    .unwrap();
    let more = updated(
        report(
            &ts,
            chan_draft(
                "A1",
                1,
                "WAIT_SELLER_SEND_GOODS",
                &[("L1", "TEA", 4, "10.00", "0.00")],
            ),
            facts_of(Status::Paid),
        )
        .await,
    );
    assert_eq!(more.status, Status::Allocated);
    assert_eq!(more.fulfillment.warehouse_id, Some(wh("SH")));
    assert_eq!(level(&ts, "TEA", "HZ").await.reserved, 0);
    assert_eq!(level(&ts, "TEA", "SH").await.reserved, 4);
    let audit = audit_of(&ts, o.id).await;
    let upd = audit
        .iter()
        .rev()
        .find(|e| e.action == "channel_update")
        .unwrap();
    assert_eq!(upd.detail["stock"]["allocation"]["to"], "SH");
    // It releases and ships from there.
    apply(&ts, "acme", o.id, Command::Release).await.unwrap();
}

async fn an_address_change_before_release_is_applied_and_encrypted(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let lines = [("L1", "TEA", 1, "10.00", "0.00")];
    let o = updated(
        report(
            &ts,
            chan_draft("D1", 0, "WAIT_SELLER_SEND_GOODS", &lines),
            facts_of(Status::Paid),
        )
        .await,
    );
    let mut d = chan_draft("D1", 1, "WAIT_SELLER_SEND_GOODS", &lines);
    d.receiver.detail = orderhub_domain::Personal::new("莫干山路 77 号");
    d.receiver.phone = orderhub_domain::Personal::new("13900007777");
    d.receiver.district = Some("拱墅区".into());
    let moved = updated(report(&ts, d, facts_of(Status::Paid)).await);
    assert_eq!(moved.receiver.detail.expose(), "莫干山路 77 号");
    assert_eq!(moved.receiver.phone.expose(), "13900007777");
    assert_eq!(moved.receiver.district.as_deref(), Some("拱墅区"));
    assert_eq!(moved.status, Status::Paid);
    assert_eq!(order_now(&ts, o.id).await.receiver, moved.receiver);
    let raw = ts.raw_docs().join("\n");
    assert!(
        !raw.contains("莫干山路") && !raw.contains("13900007777"),
        "the new receiver is encrypted at rest"
    );
    let events = events_of(&ts, o.id).await;
    let (_, upd) = events
        .iter()
        .rev()
        .find(|(t, _)| t == "order.channel_updated")
        .unwrap();
    assert_eq!(upd["changed"], serde_json::json!(["receiver"]));
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains("莫干山路") && !all.contains("13900007777") && !all.contains("文三路"),
        "no receiver field in any event"
    );
}

async fn a_change_after_release_stops_the_order_and_leaves_it_unchanged(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let lines = |discount| [("L1", "TEA", 1, "100.00", discount)];
    let o = updated(
        report(
            &ts,
            chan_draft("X1", 0, "WAIT_SELLER_SEND_GOODS", &lines("0.00")),
            facts_of(Status::Paid),
        )
        .await,
    );
    apply(
        &ts,
        "acme",
        o.id,
        Command::Allocate {
            warehouse_id: wh("HZ"),
        },
    )
    .await
    .unwrap();
    let released = apply(&ts, "acme", o.id, Command::Release).await.unwrap();
    let mut d = chan_draft("X1", 1, "WAIT_SELLER_SEND_GOODS", &lines("10.00"));
    d.receiver.detail = orderhub_domain::Personal::new("莫干山路 77 号");
    let stopped = updated(report(&ts, d.clone(), facts_of(Status::Paid)).await);
    assert_eq!(stopped.status, Status::Released);
    assert_eq!(stopped.exceptions, vec!["changed_after_release".to_owned()]);
    assert_eq!(
        (stopped.paid_amount, &stopped.receiver, &stopped.lines,),
        (released.paid_amount, &released.receiver, &released.lines),
        "nothing applied"
    );
    let raw = ts.raw_docs().join("\n");
    assert!(
        !raw.contains("莫干山路"),
        "the channel's version kept beside the order is encrypted too"
    );
    let events = events_of(&ts, o.id).await;
    let (_, raised) = events
        .iter()
        .find(|(t, p)| t == "exception.raised" && p["exception"] == "changed_after_release")
        .unwrap();
    assert_eq!(
        raised["detail"]["changed"],
        serde_json::json!(["amounts", "receiver"])
    );
    assert_eq!(
        raised["detail"]["amounts_and_lines"]["channel"]["amounts"]["paid_amount"],
        "90.00"
    );
    assert!(!raised.to_string().contains("莫干山路"));
    let ship = Command::Ship {
        carrier: orderhub_domain::ids::CarrierCode::parse("zto").unwrap(),
        tracking_no: "7700001".into(),
        logistics_no: "L1".into(),
    };
    match apply(&ts, "acme", o.id, ship.clone()).await {
        Err(CoreError::Stopped { exception, .. }) => {
            assert_eq!(exception, "changed_after_release")
        }
        other => panic!("a stopped order must not ship: {other:?}"),
    }
    // An operator resolves it (the warehouse relabelled the parcel); the same channel version
    // reported again does not stop it a second time.
    let a = actor("acme", Role::Ops);
    let id = o.id;
    ts.store
        .write(0, move |tx| {
            orderhub_core::usecases::resolve_exception(
                tx,
                &a,
                id,
                "changed_after_release",
                "relabelled at the warehouse",
                chrono::Utc::now(),
            )
        })
        .await
        .unwrap();
    d.channel_updated_at = Some(cn_at(2));
    let again = updated(report(&ts, d, facts_of(Status::Paid)).await);
    assert!(again.exceptions.is_empty(), "{:?}", again.exceptions);
    apply(&ts, "acme", o.id, ship).await.unwrap();
}

async fn a_refund_on_a_line_stops_the_order_until_the_channel_closes_it(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let lines = [
        ("L1", "TEA", 1, "10.00", "0.00"),
        ("L2", "CUP", 1, "5.00", "0.00"),
    ];
    let refund = |minutes, state| {
        let mut f = facts_of(Status::Paid);
        f.refunds = vec![RefundState::None, state];
        (
            chan_draft("F1", minutes, "WAIT_SELLER_SEND_GOODS", &lines),
            f,
        )
    };
    let o = updated(
        report(
            &ts,
            chan_draft("F1", 0, "WAIT_SELLER_SEND_GOODS", &lines),
            facts_of(Status::Paid),
        )
        .await,
    );
    let (d, f) = refund(1, RefundState::Requested);
    let stopped = updated(report(&ts, d, f).await);
    assert_eq!(stopped.exceptions, vec!["after_sale".to_owned()]);
    let events = events_of(&ts, o.id).await;
    let (_, raised) = events
        .iter()
        .find(|(t, p)| t == "exception.raised" && p["exception"] == "after_sale")
        .unwrap();
    assert_eq!(raised["detail"]["lines"][0]["line_id"], 2);
    assert_eq!(raised["detail"]["lines"][0]["external_line_id"], "L2");
    let allocate = Command::Allocate {
        warehouse_id: wh("HZ"),
    };
    assert!(matches!(
        apply(&ts, "acme", o.id, allocate.clone()).await,
        Err(CoreError::Stopped { ref exception, .. }) if exception == "after_sale"
    ));
    // The seller refuses the refund: the channel's stop is lifted, and the order moves on.
    let (d, f) = refund(2, RefundState::Rejected);
    let lifted = updated(report(&ts, d, f).await);
    assert!(lifted.exceptions.is_empty(), "{:?}", lifted.exceptions);
    let audit = audit_of(&ts, o.id).await;
    let resolved = audit
        .iter()
        .find(|e| e.action == "exception.resolved")
        .unwrap();
    assert_eq!(resolved.detail["detail"]["resolved_by"], "channel");
    apply(&ts, "acme", o.id, allocate).await.unwrap();
    // A refund on a released order: release already happened, shipping is refused.
    apply(&ts, "acme", o.id, Command::Release).await.unwrap();
    let (d, f) = refund(3, RefundState::Refunded);
    let stopped = updated(report(&ts, d, f).await);
    assert_eq!(stopped.exceptions, vec!["after_sale".to_owned()]);
    // A stop someone else raised is never lifted by the channel.
    let other = updated(
        report(
            &ts,
            chan_draft("F2", 0, "WAIT_SELLER_SEND_GOODS", &lines),
            facts_of(Status::Paid),
        )
        .await,
    );
    let a = actor("acme", Role::Admin);
    let id = other.id;
    ts.store
        .write(0, move |tx| {
            orderhub_core::usecases::raise_exception(
                tx,
                &a,
                id,
                "after_sale",
                serde_json::json!({"reason": "the buyer phoned"}),
                chrono::Utc::now(),
            )
        })
        .await
        .unwrap();
    let mut f = facts_of(Status::Paid);
    f.refunds = vec![RefundState::Rejected, RefundState::None];
    let kept = updated(
        report(
            &ts,
            chan_draft("F2", 1, "WAIT_SELLER_SEND_GOODS", &lines),
            f,
        )
        .await,
    );
    assert_eq!(kept.exceptions, vec!["after_sale".to_owned()]);
    // Every line refunded and the order closed on the channel: cancelled here (before release).
    let mut f = facts_of(Status::Cancelled);
    f.refunds = vec![RefundState::Refunded, RefundState::Refunded];
    let closed = updated(report(&ts, chan_draft("F2", 2, "TRADE_CLOSED", &lines), f).await);
    assert_eq!(closed.status, Status::Cancelled);
}

async fn shipped_on_the_channel_stops_the_order_and_records_the_tracking(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let lines = [("L1", "TEA", 1, "10.00", "0.00")];
    let o = updated(
        report(
            &ts,
            chan_draft("S1", 0, "WAIT_SELLER_SEND_GOODS", &lines),
            facts_of(Status::Paid),
        )
        .await,
    );
    let mut f = facts_of(Status::Shipped);
    f.shipment = Some(ChannelShipment {
        carrier: "shunfeng".into(),
        tracking_no: "SF1001".into(),
    });
    let shipped = updated(
        report(
            &ts,
            chan_draft("S1", 1, "WAIT_BUYER_CONFIRM_GOODS", &lines),
            f.clone(),
        )
        .await,
    );
    assert_eq!(shipped.status, Status::Paid, "orderhub did not ship it");
    assert_eq!(shipped.exceptions, vec!["shipped_on_channel".to_owned()]);
    assert_eq!(shipped.fulfillment.channel_shipment, f.shipment);
    assert_eq!(shipped.fulfillment.tracking_no, None);
    assert!(matches!(
        apply(&ts, "acme", o.id, Command::Allocate { warehouse_id: wh("HZ") }).await,
        Err(CoreError::Stopped { ref exception, .. }) if exception == "shipped_on_channel"
    ));
    let events = events_of(&ts, o.id).await;
    let (_, raised) = events
        .iter()
        .find(|(t, p)| t == "exception.raised" && p["exception"] == "shipped_on_channel")
        .unwrap();
    assert_eq!(raised["detail"]["tracking_no"], "SF1001");
    assert_eq!(raised["detail"]["carrier"], "shunfeng");
    // The same again (newer) raises nothing more.
    let again = updated(
        report(
            &ts,
            chan_draft("S1", 2, "WAIT_BUYER_CONFIRM_GOODS", &lines),
            f,
        )
        .await,
    );
    assert_eq!(again.exceptions, vec!["shipped_on_channel".to_owned()]);
    let raised_count = events_of(&ts, o.id)
        .await
        .iter()
        .filter(|(t, _)| t == "exception.raised")
        .count();
    assert_eq!(raised_count, 1);
}

/// A later version whose content the domain refuses (amounts that do not add up) or whose
/// receiver the channel blanked still moves the order: a close must cancel it whatever else the
/// payload says. The refusal is written in the audit entry.
async fn a_later_version_with_refused_content_still_moves_the_order(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let lines = [("L1", "TEA", 1, "10.00", "0.00")];
    let o = updated(
        report(
            &ts,
            chan_draft("B1", 0, "WAIT_SELLER_SEND_GOODS", &lines),
            facts_of(Status::Paid),
        )
        .await,
    );
    // The receiver blanked: not a new receiver.
    let mut d = chan_draft("B1", 1, "WAIT_SELLER_SEND_GOODS", &lines);
    d.receiver.name = orderhub_domain::Personal::new("");
    d.receiver.phone = orderhub_domain::Personal::new("");
    let kept = updated(report(&ts, d, facts_of(Status::Paid)).await);
    assert_eq!(kept.receiver, o.receiver);
    assert_eq!(kept.version, o.version + 1);
    // Amounts that do not add up, and the order closed.
    let mut d = chan_draft("B1", 2, "TRADE_CLOSED", &lines);
    d.paid_amount = Some(yuan("7.00"));
    let closed = updated(report(&ts, d, facts_of(Status::Cancelled)).await);
    assert_eq!(closed.status, Status::Cancelled);
    assert_eq!(closed.paid_amount, o.paid_amount);
    let audit = audit_of(&ts, o.id).await;
    let upd = audit
        .iter()
        .rev()
        .find(|e| e.action == "channel_update")
        .unwrap();
    assert_eq!(upd.detail["refused"]["field"], "amounts.paid_amount");
    assert_eq!(upd.detail["refused"]["rule"], "does_not_add_up");
}

/// A report whose content is refused (its amounts do not add up) and which lists its lines in
/// another order, one fewer: refunds are matched to the order's lines by the channel's line id,
/// so the open refund on L2 still holds the stop, and a refund the refused report does not mention
/// is neither raised nor lifted on its account.
async fn a_refused_report_neither_lifts_nor_misplaces_a_refund(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let lines = [
        ("L1", "TEA", 1, "10.00", "0.00"),
        ("L2", "CUP", 1, "5.00", "0.00"),
    ];
    let o = updated(
        report(
            &ts,
            chan_draft("R1", 0, "WAIT_SELLER_SEND_GOODS", &lines),
            facts_of(Status::Paid),
        )
        .await,
    );
    let mut f = facts_of(Status::Paid);
    f.refunds = vec![RefundState::None, RefundState::Requested];
    let stopped = updated(
        report(
            &ts,
            chan_draft("R1", 1, "WAIT_SELLER_SEND_GOODS", &lines),
            f,
        )
        .await,
    );
    assert_eq!(stopped.exceptions, vec!["after_sale".to_owned()]);
    // L2 first, L1 left out, amounts that do not add up: refused content.
    let mut d = chan_draft(
        "R1",
        2,
        "WAIT_SELLER_SEND_GOODS",
        &[("L2", "CUP", 1, "5.00", "0.00")],
    );
    d.paid_amount = Some(yuan("1.00"));
    let mut f = facts_of(Status::Paid);
    f.refunds = vec![RefundState::Requested];
    let kept = updated(report(&ts, d, f).await);
    assert_eq!(kept.lines.len(), 2, "the refused content was not applied");
    assert_eq!(
        kept.exceptions,
        vec!["after_sale".to_owned()],
        "L2's refund is still open: the stop stays"
    );
    // The same refused shape without a word on refunds for L1: nothing lifted either.
    let mut d = chan_draft(
        "R1",
        3,
        "WAIT_SELLER_SEND_GOODS",
        &[("L1", "TEA", 1, "10.00", "0.00")],
    );
    d.paid_amount = Some(yuan("1.00"));
    let kept = updated(report(&ts, d, facts_of(Status::Paid)).await);
    assert_eq!(kept.exceptions, vec!["after_sale".to_owned()], "{o:?}");
}

conformance!(
    a_refused_report_neither_lifts_nor_misplaces_a_refund,
    a_later_version_with_refused_content_still_moves_the_order,
    a_price_change_before_payment_is_applied,
    a_line_change_on_a_paid_order_re_reserves_its_stock,
    an_allocated_order_whose_goods_change_is_allocated_where_its_new_stock_is,
    an_address_change_before_release_is_applied_and_encrypted,
    a_change_after_release_stops_the_order_and_leaves_it_unchanged,
    a_refund_on_a_line_stops_the_order_until_the_channel_closes_it,
    shipped_on_the_channel_stops_the_order_and_records_the_tracking,
);

/// A tenant's carrier accounts: created at version 1, replaced at the next, listed by priority,
/// each tenant's own, removed; secret, access token and customer password are ciphertext in the
/// table and come back in clear.
async fn carrier_accounts_read_back_with_their_secrets_encrypted_at_rest(ts: TestStore) {
    use orderhub_store::CarrierAccountRow;
    let t = orderhub_domain::TenantId::parse("carrier-t").unwrap();
    let row = |carrier: &str, priority: u32| CarrierAccountRow {
        tenant_id: t.clone(),
        carrier: carrier.into(),
        base_url: "https://sfapi.sf-express.com".into(),
        app_key: "PARTNER-1".into(),
        secret: format!("check-word-of-{carrier}"),
        customer_code: "7551234567".into(),
        access_token: Some("token-9f8e".into()),
        customer_password: None,
        enabled: true,
        priority,
        track_per_minute: 60,
        version: 0,
        updated_at: chrono::Utc::now(),
    };
    let put = |r: CarrierAccountRow| {
        let store = ts.store.clone();
        async move {
            store
                .write(0, move |tx| Ok(tx.carrier_account_put(&r)?))
                .await
                .unwrap()
        }
    };
    assert_eq!(put(row("sf", 2)).await, 1);
    assert_eq!(put(row("zto", 1)).await, 1);
    let mut changed = row("sf", 3);
    changed.enabled = false;
    changed.customer_password = Some("pw".into());
    assert_eq!(put(changed.clone()).await, 2);
    let t2 = t.clone();
    let all = ts
        .store
        .read(move |r| r.carrier_accounts(&t2))
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|a| (a.carrier.as_str(), a.version, a.enabled))
            .collect::<Vec<_>>(),
        [("zto", 1, true), ("sf", 2, false)]
    );
    assert_eq!(all[1].secret, "check-word-of-sf");
    assert_eq!(all[1].access_token.as_deref(), Some("token-9f8e"));
    assert_eq!(all[1].customer_password.as_deref(), Some("pw"));
    // In the table: ciphertext only.
    let raw = ts
        .raw_text(
            "SELECT secret || ' ' || coalesce(access_token, '') || ' ' || coalesce(customer_password, '') FROM carrier_accounts",
        )
        .join("\n");
    assert!(
        !raw.contains("check-word") && !raw.contains("token-9f8e") && raw.contains("enc1:"),
        "{raw}"
    );
    assert!(!format!("{:?}", all[1]).contains("check-word"));
    // Another tenant has none of them.
    let other = ts
        .store
        .read(|r| r.carrier_accounts(&orderhub_domain::TenantId::parse("other").unwrap()))
        .await
        .unwrap();
    assert!(other.is_empty());
    let (t3, t4) = (t.clone(), t.clone());
    let gone = ts
        .store
        .write(0, move |tx| Ok(tx.carrier_account_delete(&t3, "sf")?))
        .await
        .unwrap();
    let again = ts
        .store
        .write(0, move |tx| Ok(tx.carrier_account_delete(&t4, "sf")?))
        .await
        .unwrap();
    assert_eq!((gone, again), (true, false));
}

/// A SKU's weight and a warehouse's sender and largest parcel read back as written — through the
/// writer (its cache) and a reader — with the sender's phone and street not in the table.
async fn weights_and_warehouse_senders_read_back_with_the_sender_encrypted_at_rest(ts: TestStore) {
    use orderhub_core::ports::{SenderAddress, SkuRecord, WarehouseRecord};
    use orderhub_domain::Personal;
    let a = actor("default", Role::Admin);
    let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
    let sender = SenderAddress {
        name: Personal::new("李仓管"),
        phone: Personal::new("13900001111"),
        province: "广东省".into(),
        city: "广州市".into(),
        district: "白云区".into(),
        detail: Personal::new("太和镇 8 号"),
    };
    let wh = WarehouseRecord {
        warehouse_id: orderhub_domain::ids::WarehouseId::parse("GZ").unwrap(),
        name: "广州仓".into(),
        priority: 1,
        regions: vec![],
        sender: Some(sender.clone()),
        parcel_max_kg: Some(d("20")),
    };
    let bare = WarehouseRecord {
        warehouse_id: orderhub_domain::ids::WarehouseId::parse("BJ").unwrap(),
        name: "北京仓".into(),
        priority: 2,
        regions: vec![],
        sender: None,
        parcel_max_kg: None,
    };
    let tee = SkuRecord {
        sku: orderhub_domain::Sku::parse("TEE").unwrap(),
        title: "tee".into(),
        components: None,
        weight_kg: Some(d("1.25")),
    };
    let (w1, w2, s1) = (wh.clone(), bare.clone(), tee.clone());
    let from_writer = ts
        .store
        .write(0, move |tx| {
            let now = chrono::Utc::now();
            orderhub_core::inventory::define_warehouse(tx, &a, &w1, now)?;
            orderhub_core::inventory::define_warehouse(tx, &a, &w2, now)?;
            orderhub_core::inventory::define_sku(tx, &a, &s1, now)?;
            let t = a.principal.tenant_id.clone();
            Ok((tx.warehouses(&t)?, tx.sku_get(&t, &s1.sku)?))
        })
        .await
        .unwrap();
    assert_eq!(
        from_writer,
        (vec![wh.clone(), bare.clone()], Some(tee.clone()))
    );
    let t = orderhub_domain::TenantId::parse("default").unwrap();
    let sku = tee.sku.clone();
    let from_reader = ts
        .store
        .read(move |r| Ok((r.warehouses(&t)?, r.sku(&t, &sku)?)))
        .await
        .unwrap();
    assert_eq!(from_reader, (vec![wh, bare], Some(tee)));
    let raw = ts
        .raw_text("SELECT coalesce(sender, '') FROM warehouses")
        .join("\n");
    assert!(
        !raw.contains("13900001111") && !raw.contains("太和镇") && raw.contains("enc1:"),
        "{raw}"
    );
}

/// Issue 27: a dispatcher on NATS stores where it stands in each stream partition with its lease;
/// the next holder reads them back, and a holder that lost the lease (an older fence) cannot
/// overwrite them.
async fn a_lease_keeps_its_partition_positions_and_only_its_holder_moves_them(ts: TestStore) {
    use std::time::Duration;
    let ttl = Duration::from_secs(10);
    let name = "dispatch/acme";
    let acquire = |holder: &'static str, now: chrono::DateTime<chrono::Utc>| {
        let s = ts.store.clone();
        async move {
            s.write(0, move |tx| Ok(tx.lease_acquire(name, holder, now, ttl)?))
                .await
                .unwrap()
        }
    };
    let t0 = chrono::Utc::now();
    let a = acquire("node-a", t0).await.expect("a free lease is taken");
    assert!(
        a.parts.is_empty(),
        "no positions before the first holder stores any"
    );
    let (an, ah, af) = (a.name.clone(), a.holder.clone(), a.fence);
    let stored = ts
        .store
        .write(0, move |tx| {
            Ok(tx.lease_advance_parts(&an, &ah, af, 40, &[12, 0, 57, 3], t0, ttl)?)
        })
        .await
        .unwrap();
    assert!(stored);
    assert!(
        acquire("node-b", t0).await.is_none(),
        "held until it expires"
    );
    // a pauses past its lease; b takes it over and reads where a stood.
    let later = t0 + chrono::Duration::seconds(11);
    let b = acquire("node-b", later)
        .await
        .expect("an expired lease is taken");
    assert_eq!(b.fence, a.fence + 1);
    assert_eq!(b.parts, vec![12, 0, 57, 3]);
    assert_eq!(b.position, 40);
    // a wakes and tries to store what it did meanwhile: refused, b's positions stay.
    let (an, ah, af) = (a.name.clone(), a.holder.clone(), a.fence);
    let stale = ts
        .store
        .write(0, move |tx| {
            Ok(tx.lease_advance_parts(&an, &ah, af, 99, &[99, 99, 99, 99], later, ttl)?)
        })
        .await
        .unwrap();
    assert!(!stale, "an older fence moves nothing");
    let (bn, bh, bf) = (b.name.clone(), b.holder.clone(), b.fence);
    assert!(
        ts.store
            .write(0, move |tx| {
                Ok(tx.lease_advance_parts(&bn, &bh, bf, 41, &[13, 2, 57, 3], later, ttl)?)
            })
            .await
            .unwrap()
    );
    let now = ts.store.read(|r| r.leases("dispatch/")).await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(
        (now[0].position, now[0].parts.clone()),
        (41, vec![13, 2, 57, 3])
    );
    assert_eq!(now[0].holder, "node-b");
}

//! The audit log's hash chain (issue 23) on both backends: entries written by the use cases,
//! from several writers at once, form one unbroken chain per tenant; an UPDATE, a DELETE or an
//! INSERT done directly in the database is named by `verify` at the entry where it was done.

use crate::backend::*;
use orderhub_core::audit_chain::Break;
use orderhub_core::auth::Role;
use orderhub_core::usecases::{Created, create_order, transition};
use orderhub_domain::TenantId;
use orderhub_domain::lifecycle::Command;
use orderhub_store::audit::verify;

conformance!(
    entries_written_at_once_by_several_writers_form_one_chain_per_tenant,
    an_update_a_delete_and_an_insert_in_the_database_are_each_named,
);

fn t(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

/// `n` orders of tenant `tenant` created and paid, each on its own partition (writer).
async fn orders(ts: &TestStore, tenant: &str, n: usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = ts.store.clone();
        let a = actor(tenant, Role::Ops);
        let d = draft("s1", &format!("{tenant}-{}", uuid::Uuid::now_v7().simple()));
        tasks.push(tokio::spawn(async move {
            s.write(i as u64, move |tx| {
                let now = chrono::Utc::now();
                let o = match create_order(tx, &a, d.clone(), now)? {
                    Created::New(o) | Created::Existing(o) => o,
                };
                let pay = Command::Pay {
                    paid_at: None,
                    amount: None,
                };
                transition(tx, &a, o.id, &pay, now)
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

async fn check(ts: &TestStore, tenant: &str) -> orderhub_store::ChainReport {
    verify(&ts.store, &t(tenant), |_, _| {}).await.unwrap()
}

async fn entries_written_at_once_by_several_writers_form_one_chain_per_tenant(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    seed_tenant(&ts.store, "beta").await;
    let (a, b) = tokio::join!(orders(&ts, "acme", 24), orders(&ts, "beta", 9));
    let _ = (a, b);
    let acme = check(&ts, "acme").await;
    assert_eq!(acme.broken, None);
    // Each order: its creation and its payment.
    assert_eq!((acme.checked, acme.head.seq), (48, 48));
    assert_eq!(acme.head.hash.len(), 64, "a SHA-256 in hex");
    let beta = check(&ts, "beta").await;
    assert_eq!((beta.broken, beta.checked), (None, 18));
    assert_ne!(acme.head.hash, beta.head.hash);
    // Walked while more entries commit: what lands beyond the head the walk began with is no
    // break.
    let walks = async {
        let mut found = Vec::new();
        for _ in 0..6 {
            found.push(check(&ts, "acme").await.broken);
        }
        found
    };
    let ((), found) = tokio::join!(orders(&ts, "acme", 30), walks);
    assert!(found.iter().all(Option::is_none), "{found:?}");
    assert_eq!(check(&ts, "acme").await.head.seq, 108);
}

async fn an_update_a_delete_and_an_insert_in_the_database_are_each_named(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    orders(&ts, "acme", 4).await;
    assert_eq!(check(&ts, "acme").await.broken, None);
    let id_of = |seq: u64| {
        ts.raw_text(&format!(
            "SELECT CAST(audit_id AS TEXT) FROM audit WHERE tenant_id = 'acme' AND chain_seq = {seq}"
        ))[0]
            .clone()
    };

    // An UPDATE of one entry's actor: that entry is named.
    let third = id_of(3);
    ts.exec("UPDATE audit SET actor = 'someone else' WHERE tenant_id = 'acme' AND chain_seq = 3");
    assert_eq!(
        check(&ts, "acme").await.broken,
        Some(Break::Edited {
            seq: 3,
            audit_id: third.parse().unwrap()
        })
    );
    // Put back as it was, the chain holds again.
    ts.exec(
        "UPDATE audit SET actor = (SELECT actor FROM audit WHERE tenant_id = 'acme' AND chain_seq = 4)
         WHERE tenant_id = 'acme' AND chain_seq = 3",
    );
    assert_eq!(check(&ts, "acme").await.broken, None, "put back as it was");

    // A DELETE in the middle, then of the last entry.
    ts.exec("DELETE FROM audit WHERE tenant_id = 'acme' AND chain_seq = 5");
    assert_eq!(
        check(&ts, "acme").await.broken,
        Some(Break::Deleted { from: 5, to: 5 })
    );
    ts.exec("DELETE FROM audit WHERE tenant_id = 'acme' AND chain_seq > 5");
    let r = check(&ts, "acme").await;
    assert_eq!(r.broken, Some(Break::Deleted { from: 5, to: 8 }));

    // An INSERT: an entry copied under another id, unnumbered as a forger would leave it.
    let other = seed_other(&ts).await;
    let r = check(&ts, "acme").await;
    assert!(
        matches!(r.broken, Some(Break::Deleted { .. })),
        "the first break is still the deletion"
    );
    let r = check(&ts, &other).await;
    assert_eq!(r.broken, None);
    let forged = |ts: &TestStore| {
        format!(
            "INSERT INTO audit (tenant_id, order_id, audit_id, at, actor, key_id, request_id, action,
                                from_status, to_status, from_version, to_version, detail)
             SELECT tenant_id, order_id, {new_id}, at, actor, key_id, request_id, 'cancel',
                    from_status, 'cancelled', from_version, to_version, detail
             FROM audit WHERE tenant_id = '{other}' AND chain_seq = 1",
            new_id = uuid_literal(ts, "0190a1b2-0000-7000-8000-000000000001"),
        )
    };
    assert!(
        ts.try_exec(&forged(&ts)).is_err(),
        "the schema refuses an entry without a number"
    );
    // The schema refuses an unnumbered entry; a forger with the rights to drop that guard:
    ts.exec(match ts.config {
        orderhub_store::StoreConfig::Postgres { .. } => {
            "ALTER TABLE audit DROP CONSTRAINT audit_chained"
        }
        _ => "DROP TRIGGER audit_chained",
    });
    ts.exec(&forged(&ts));
    assert_eq!(
        check(&ts, &other).await.broken,
        Some(Break::Inserted {
            seq: None,
            audit_id: "0190a1b2-0000-7000-8000-000000000001".parse().unwrap()
        })
    );
}

/// A UUID as a literal of the audit table's id column.
fn uuid_literal(ts: &TestStore, id: &str) -> String {
    match ts.config {
        orderhub_store::StoreConfig::Postgres { .. } => format!("'{id}'::uuid"),
        _ => format!("'{id}'"),
    }
}

/// A second tenant with one paid order; its name.
async fn seed_other(ts: &TestStore) -> String {
    seed_tenant(&ts.store, "other").await;
    orders(ts, "other", 1).await;
    "other".into()
}

//! Customers and invoice profiles (issue 23, migration 0027) on both backends: versions append
//! and old ones stay readable; an order takes its customer's profile version at creation, in its
//! own transaction; the compliance scan lists orders whose profile moved on, was deactivated or
//! holds an invalid tax id; bad input is refused naming the field; contents are sealed at rest.

use crate::backend::*;
use chrono::{Duration, Utc};
use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::customers::{self as cu, ProfileInput, ProfileVersion};
use orderhub_core::usecases::{Actor, Created, create_order};
use orderhub_domain::Order;
use orderhub_domain::ids::Channel;
use orderhub_domain::invoice::{InvoiceKind, InvoiceMedium, ProfileContent, ScanReason};
use orderhub_store::{ReadConn, Store, invoice_scan};
use uuid::Uuid;

conformance!(
    profile_versions_append_and_the_old_one_stays_readable,
    an_order_takes_the_profile_version_current_at_its_creation,
    the_scan_lists_orders_whose_profile_moved_was_deactivated_or_is_invalid,
    bad_input_is_refused_naming_the_field_and_nothing_is_written,
);

fn content(title: &str, tax_id: &str) -> ProfileContent {
    ProfileContent {
        title: title.into(),
        tax_id: tax_id.into(),
        kind: InvoiceKind::Normal,
        medium: InvoiceMedium::Electronic,
        bank_name: None,
        bank_account: None,
        address: None,
        phone: None,
    }
}

fn input(title: &str, tax_id: &str) -> ProfileInput {
    ProfileInput {
        content: content(title, tax_id),
        is_default: true,
        active: true,
        expires_at: None,
    }
}

const HUAWEI: &str = "914403001922038216";
const ALIBABA: &str = "91330100716105852F";

/// A customer with buyer `b1` on taobao linked, and one default profile.
async fn customer_with_profile(s: &Store, a: &Actor) -> (Uuid, ProfileVersion) {
    let a = a.clone();
    s.write(0, move |tx| {
        let now = Utc::now();
        let c = cu::create_customer(tx, &a, "华为采购部", now)?;
        cu::link_buyer(
            tx,
            &a,
            c.customer_id,
            Channel::parse("taobao").unwrap(),
            "b1",
            now,
        )?;
        let p = cu::add_profile(
            tx,
            &a,
            c.customer_id,
            &input("华为技术有限公司", HUAWEI),
            now,
        )?;
        Ok((c.customer_id, p))
    })
    .await
    .unwrap()
}

async fn order(s: &Store, a: &Actor, external: &str) -> Order {
    let (a, d) = (a.clone(), draft("s1", external));
    match s
        .write(0, move |tx| create_order(tx, &a, d.clone(), Utc::now()))
        .await
        .unwrap()
    {
        Created::New(o) | Created::Existing(o) => o,
    }
}

async fn profile_versions_append_and_the_old_one_stays_readable(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let a = actor("acme", Role::Ops);
    let (cid, v1) = customer_with_profile(&ts.store, &a).await;
    let (a2, pid) = (a.clone(), v1.profile_id);
    let v2 = ts
        .store
        .write(0, move |tx| {
            cu::version_profile(
                tx,
                &a2,
                (cid, pid),
                &input("阿里巴巴（中国）有限公司", ALIBABA),
                Some(1),
                Utc::now(),
            )
        })
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // A change on top of a version someone else moved past is refused, nothing written.
    let a3 = a.clone();
    let late = ts
        .store
        .write(0, move |tx| {
            cu::version_profile(
                tx,
                &a3,
                (cid, pid),
                &input("x", HUAWEI),
                Some(1),
                Utc::now(),
            )
        })
        .await;
    assert!(matches!(
        late,
        Err(CoreError::CustomerConflict {
            code: "profile_version_moved",
            ..
        })
    ));
    let t = tenant("acme");
    let (versions, current, customer) = ts
        .store
        .read(move |r| {
            Ok((
                r.profile_versions(&t, pid, 10)?,
                r.customer_profiles(&t, cid)?,
                r.customer(&t, cid)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.content.tax_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(2, ALIBABA), (1, HUAWEI)]
    );
    assert_eq!(versions[1], v1, "version 1 reads back as it was written");
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].version, 2);
    assert_eq!(customer.unwrap().name.expose(), "华为采购部");
    // Titles, tax ids and names are sealed at rest.
    assert_eq!(ts.count("invoice_profiles"), 2);
    for sql in [
        "SELECT content FROM invoice_profiles",
        "SELECT name FROM customers",
    ] {
        for raw in ts.raw_text(sql) {
            assert!(
                !raw.contains(HUAWEI) && !raw.contains("华为"),
                "{sql}: {raw}"
            );
        }
    }
    assert_eq!(ts.count("outbox"), 4, "created, linked, two versions");
}

async fn an_order_takes_the_profile_version_current_at_its_creation(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let a = actor("acme", Role::Ops);
    let (cid, v1) = customer_with_profile(&ts.store, &a).await;
    let first = order(&ts.store, &a, "E1").await;
    assert_eq!(
        first.invoice_profile_id,
        Some(v1.profile_id.to_string()),
        "the linked buyer's default profile"
    );
    assert_eq!(first.invoice_profile_version, Some(1));
    let (a2, pid) = (a.clone(), v1.profile_id);
    ts.store
        .write(0, move |tx| {
            cu::version_profile(
                tx,
                &a2,
                (cid, pid),
                &input("新抬头", ALIBABA),
                None,
                Utc::now(),
            )
        })
        .await
        .unwrap();
    let second = order(&ts.store, &a, "E2").await;
    assert_eq!(second.invoice_profile_version, Some(2));
    let t = tenant("acme");
    let (id1, id2) = (first.id, second.id);
    let (again, audit) = ts
        .store
        .read(move |r| Ok((r.order_get(&t, id1)?, r.audit_for_order(&t, id2)?)))
        .await
        .unwrap();
    assert_eq!(
        again.unwrap().invoice_profile_version,
        Some(1),
        "the earlier order keeps its version"
    );
    assert_eq!(audit[0].detail["invoice_profile"]["version"], 2);
    // An order of a buyer nobody linked takes nothing; one that brings an id keeps it.
    let mut d = draft("s1", "E3");
    d.buyer.id = Some("stranger".into());
    let a3 = a.clone();
    let o = ts
        .store
        .write(0, move |tx| create_order(tx, &a3, d.clone(), Utc::now()))
        .await
        .unwrap();
    let Created::New(o) = o else { panic!() };
    assert_eq!(o.invoice_profile_id, None);
    let mut d = draft("s1", "E4");
    d.invoice_profile_id = Some("own".into());
    let Created::New(o) = ts
        .store
        .write(0, move |tx| create_order(tx, &a, d.clone(), Utc::now()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (o.invoice_profile_id.as_deref(), o.invoice_profile_version),
        (Some("own"), None)
    );
}

async fn scan(s: &Store, page: u32) -> Vec<(String, Vec<ScanReason>)> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let p = s
            .read(move |r: &mut dyn ReadConn| {
                invoice_scan(r, &tenant("acme"), None, after, (page, Utc::now()))
            })
            .await
            .unwrap();
        out.extend(
            p.findings
                .into_iter()
                .map(|f| (f.invoice_profile_id, f.reasons)),
        );
        match p.next_cursor {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

async fn the_scan_lists_orders_whose_profile_moved_was_deactivated_or_is_invalid(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let a = actor("acme", Role::Ops);
    let (cid, p1) = customer_with_profile(&ts.store, &a).await;
    let on_p1 = order(&ts.store, &a, "E1").await;
    assert!(scan(&ts.store, 2).await.is_empty(), "all is well");
    // A second profile, written before tax ids were checked (straight through the port): its
    // order lists as invalid. The first is deactivated after its order took it.
    let (a2, pid1) = (a.clone(), p1.profile_id);
    let p2 = ts
        .store
        .write(0, move |tx| {
            let now = Utc::now();
            let mut bad = p1.clone();
            bad.profile_id = Uuid::now_v7();
            bad.content.tax_id = "914403001922038217".into();
            bad.by.at = now + Duration::seconds(1);
            assert!(cu::CustomerTx::profile_insert(tx, &bad)?);
            Ok(bad.profile_id)
        })
        .await
        .unwrap();
    let on_p2 = order(&ts.store, &a, "E2").await;
    assert_eq!(on_p2.invoice_profile_id, Some(p2.to_string()));
    // The first profile changes title, then is deactivated (a version with the same content).
    ts.store
        .write(0, move |tx| {
            let now = Utc::now();
            cu::version_profile(tx, &a2, (cid, pid1), &input("新抬头", HUAWEI), None, now)?;
            cu::deactivate_profile(tx, &a2, (cid, pid1), now)
        })
        .await
        .unwrap();
    let mut own = draft("s1", "E3");
    own.invoice_profile_id = Some("typed-by-hand".into());
    let a3 = a.clone();
    ts.store
        .write(0, move |tx| create_order(tx, &a3, own.clone(), Utc::now()))
        .await
        .unwrap();
    order(&ts.store, &a, "E4").await; // takes p2 as well
    let found = scan(&ts.store, 2).await;
    assert_eq!(
        found,
        vec![
            (
                pid1.to_string(),
                vec![ScanReason::Deactivated, ScanReason::Outdated]
            ),
            (p2.to_string(), vec![ScanReason::InvalidTaxId]),
            ("typed-by-hand".into(), vec![ScanReason::UnknownProfile]),
            (p2.to_string(), vec![ScanReason::InvalidTaxId]),
        ],
        "in creation order, across pages of two"
    );
    assert_eq!(on_p1.invoice_profile_version, Some(1));
}

async fn bad_input_is_refused_naming_the_field_and_nothing_is_written(ts: TestStore) {
    seed_tenant(&ts.store, "acme").await;
    let a = actor("acme", Role::Ops);
    let (cid, _) = customer_with_profile(&ts.store, &a).await;
    let refused = |title: &str, tax: &str, kind| {
        let mut i = input(title, tax);
        i.content.kind = kind;
        let a = a.clone();
        let s = ts.store.clone();
        async move {
            match s
                .write(0, move |tx| cu::add_profile(tx, &a, cid, &i, Utc::now()))
                .await
            {
                Err(CoreError::Validation(e)) => (e.field, e.rule),
                other => panic!("{other:?}"),
            }
        }
    };
    let bad_digit = refused("x", "914403001922038217", InvoiceKind::Normal).await;
    assert_eq!(bad_digit, ("tax_id".to_owned(), "check_digit"));
    let old = refused("x", "440300192203821", InvoiceKind::Normal).await;
    assert_eq!(old, ("tax_id".to_owned(), "length"));
    let special = refused("x", HUAWEI, InvoiceKind::Special).await;
    assert_eq!(special, ("bank_name".to_owned(), "required_for_special"));
    let long = refused(&"长".repeat(101), HUAWEI, InvoiceKind::Normal).await;
    assert_eq!(long, ("title".to_owned(), "too_long"));
    assert_eq!(ts.count("invoice_profiles"), 1);
    // A warehouse key may not touch customers; a buyer id is linked to one customer only.
    let w = actor("acme", Role::Warehouse);
    let r = ts
        .store
        .write(0, move |tx| cu::create_customer(tx, &w, "x", Utc::now()))
        .await;
    assert!(matches!(r, Err(CoreError::Forbidden(_))));
    let a2 = a.clone();
    let r = ts
        .store
        .write(0, move |tx| {
            let other = cu::create_customer(tx, &a2, "别人", Utc::now())?;
            cu::link_buyer(
                tx,
                &a2,
                other.customer_id,
                Channel::parse("taobao").unwrap(),
                "b1",
                Utc::now(),
            )
        })
        .await;
    assert!(matches!(
        r,
        Err(CoreError::CustomerConflict {
            code: "buyer_linked",
            ..
        })
    ));
    assert_eq!(
        ts.count("customers"),
        1,
        "the refused transaction wrote nothing"
    );
}

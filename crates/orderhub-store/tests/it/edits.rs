//! Order edits with approval (issue 21) on both backends: an edit applies at once or waits for a
//! second key, goods changes re-reserve stock in the order's transaction (refused whole when
//! short), the change log keeps personal data sealed, and races — two approvers at once, an edit
//! against a release — end one way, never both.

use crate::backend::*;
use chrono::Utc;
use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::edits::{self, EditRecord, EditState};
use orderhub_core::inventory as inv;
use orderhub_core::ports::{SkuRecord, WarehouseRecord};
use orderhub_core::usecases::{Actor, Created, create_order, transition};
use orderhub_domain::edit::{EditRules, GiftLine, OrderEdit, QuantityChange, receiver};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::LineDraft;
use orderhub_domain::{Currency, Money, Order, OrderId, Sku, Status};
use orderhub_store::EditFilter;
use uuid::Uuid;

conformance!(
    a_memo_edit_applies_at_once_and_an_address_after_payment_waits_for_another_key,
    goods_edits_re_reserve_stock_in_the_same_transaction_and_are_refused_whole_when_short,
    two_approvers_at_once_apply_the_edit_exactly_once,
    a_two_level_rule_needs_two_distinct_approvers_neither_the_requester,
    an_approved_edit_fails_when_the_order_moved_on_and_says_why,
    an_edit_racing_a_release_ends_one_way,
    a_released_order_is_not_edited_and_one_edit_waits_at_a_time,
    an_edit_that_fits_the_stock_takes_a_backordered_order_off_backorder,
    an_edit_after_a_refund_reserves_only_what_is_left_to_ship,
);

fn key(role: Role, key_id: &str) -> Actor {
    let mut a = actor("acme", role);
    a.principal.key_id = key_id.into();
    a.principal.key_name = key_id.into();
    a.request_id = format!("req-{key_id}");
    a
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

/// A tenant with warehouse HZ (Zhejiang only) holding `tea` units of TEA; SKU FREE (a gift,
/// 10 in stock).
async fn seed(ts: &TestStore, tea: i64) {
    seed_tenant(&ts.store, "acme").await;
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            let now = Utc::now();
            let wh = WarehouseId::parse("HZ").unwrap();
            let rec = WarehouseRecord {
                warehouse_id: wh.clone(),
                name: "HZ".into(),
                priority: 0,
                regions: vec!["浙江省".into()],
                sender: None,
                parcel_max_kg: None,
            };
            inv::define_warehouse(tx, &a, &rec, now)?;
            for s in ["TEA", "FREE"] {
                let rec = SkuRecord {
                    sku: sku(s),
                    title: s.into(),
                    components: None,
                    weight_kg: None,
                };
                inv::define_sku(tx, &a, &rec, now)?;
            }
            inv::receive(tx, &a, &sku("TEA"), &wh, tea, None, now)?;
            inv::receive(tx, &a, &sku("FREE"), &wh, 10, None, now)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// An order of `qty` TEA at 10.00, paid when `paid` (its stock reserved).
async fn order(ts: &TestStore, ext: &str, qty: u32, paid: bool) -> Order {
    let a = actor("acme", Role::Admin);
    let mut d = draft("shop-a", ext);
    d.lines = vec![LineDraft {
        external_line_id: None,
        sku: sku("TEA"),
        title: "tea".into(),
        quantity: qty,
        unit_price: Money::parse("p", "10.00", Currency::CNY).unwrap(),
        discount: Money::ZERO,
        paid_amount: None,
        is_kit: false,
    }];
    let o = match ts
        .store
        .write(0, move |tx| create_order(tx, &a, d.clone(), Utc::now()))
        .await
        .unwrap()
    {
        Created::New(o) | Created::Existing(o) => o,
    };
    if !paid {
        return o;
    }
    move_order(
        ts,
        o.id,
        Command::Pay {
            paid_at: None,
            amount: None,
        },
    )
    .await
    .unwrap()
}

async fn move_order(ts: &TestStore, id: OrderId, cmd: Command) -> Result<Order, CoreError> {
    let a = actor("acme", Role::Admin);
    ts.store
        .write(id.as_uuid().as_u128() as u64, move |tx| {
            transition(tx, &a, id, &cmd, Utc::now())
        })
        .await
}

async fn edit(
    ts: &TestStore,
    who: &Actor,
    id: OrderId,
    e: OrderEdit,
) -> Result<edits::EditResult, CoreError> {
    let a = who.clone();
    ts.store
        .write(id.as_uuid().as_u128() as u64, move |tx| {
            edits::request_edit(tx, &a, id, e.clone(), "buyer called", Utc::now())
        })
        .await
}

async fn approve(
    ts: &TestStore,
    who: &Actor,
    id: Uuid,
    part: u64,
) -> Result<edits::EditResult, CoreError> {
    let a = who.clone();
    ts.store
        .write(part, move |tx| edits::approve_edit(tx, &a, id, Utc::now()))
        .await
}

async fn set_rules(ts: &TestStore, rules: EditRules) {
    let a = actor("acme", Role::Admin);
    ts.store
        .write(0, move |tx| {
            edits::set_edit_rules(tx, &a, &rules, Utc::now())
        })
        .await
        .unwrap();
}

async fn order_now(ts: &TestStore, id: OrderId) -> Order {
    ts.store
        .read(move |r| r.order_get(&tenant("acme"), id))
        .await
        .unwrap()
        .unwrap()
}

async fn log(ts: &TestStore, id: OrderId) -> Vec<EditRecord> {
    let f = EditFilter {
        tenant: tenant("acme"),
        order: Some(id),
        state: None,
        shops: None,
        after: None,
        limit: 100,
    };
    ts.store.read(move |r| r.edits(&f)).await.unwrap()
}

async fn events(ts: &TestStore, id: OrderId, kind: &str) -> usize {
    let t = tenant("acme");
    ts.store
        .read(move |r| r.events_after(&t, 0, 10_000))
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event.aggregate_id == id.as_uuid() && e.event.event_type == kind)
        .count()
}

async fn reserved_tea(ts: &TestStore) -> i64 {
    ts.store
        .read(move |r| r.stock_for_sku(&tenant("acme"), &sku("TEA")))
        .await
        .unwrap()
        .first()
        .map_or(0, |(_, r)| r.level.reserved)
}

fn ningbo() -> OrderEdit {
    OrderEdit {
        receiver: Some(receiver(
            "李四",
            "13900009999",
            "浙江省",
            "宁波市",
            "中山路 8 号",
        )),
        ..Default::default()
    }
}

fn memo(s: &str) -> OrderEdit {
    OrderEdit {
        seller_memo: Some(Some(s.into())),
        ..Default::default()
    }
}

fn quantity(q: u32) -> OrderEdit {
    OrderEdit {
        quantities: vec![QuantityChange {
            line_id: 1,
            quantity: q,
        }],
        ..Default::default()
    }
}

async fn a_memo_edit_applies_at_once_and_an_address_after_payment_waits_for_another_key(
    ts: TestStore,
) {
    seed(&ts, 10).await;
    let o = order(&ts, "E-1", 1, true).await;
    let ops = key(Role::Ops, "ops-1");
    let r = edit(&ts, &ops, o.id, memo("call before delivery"))
        .await
        .unwrap();
    assert_eq!(r.edit.state, EditState::Applied);
    let after = r.order.unwrap();
    assert_eq!(after.version, o.version + 1);
    assert_eq!(after.seller_memo.as_deref(), Some("call before delivery"));
    assert_eq!(events(&ts, o.id, "order.edited").await, 1);

    // The address of a paid order: sensitive by default, it waits.
    let r = edit(&ts, &ops, o.id, ningbo()).await.unwrap();
    assert_eq!(r.edit.state, EditState::Pending);
    assert_eq!(r.edit.meta.sensitive, ["address_after_payment"]);
    assert!(r.order.is_none());
    assert_eq!(order_now(&ts, o.id).await.receiver.city, "杭州市");
    assert_eq!(events(&ts, o.id, "order.edit_requested").await, 1);
    // Nobody approves their own edit, whatever their role.
    let mut own = key(Role::Admin, "ops-1");
    own.principal.role = Role::Admin;
    match approve(&ts, &own, r.edit.edit_id, 0).await {
        Err(CoreError::OwnEdit(_)) => {}
        other => panic!("the requester approved its own edit: {other:?}"),
    }
    // An operator may ask but not approve.
    match approve(&ts, &key(Role::Ops, "ops-2"), r.edit.edit_id, 0).await {
        Err(CoreError::Forbidden(_)) => {}
        other => panic!("ops approved: {other:?}"),
    }
    let done = approve(&ts, &key(Role::Admin, "lead-1"), r.edit.edit_id, 0)
        .await
        .unwrap();
    assert_eq!(done.edit.state, EditState::Applied);
    let now = order_now(&ts, o.id).await;
    assert_eq!(now.receiver.city, "宁波市");
    assert_eq!(now.receiver.phone.expose(), "13900009999");
    assert_eq!(done.edit.meta.applied_version, Some(now.version));

    // The change log: both edits, with before/after, who and why; personal data sealed at rest.
    let entries = log(&ts, o.id).await;
    assert_eq!(entries.len(), 2);
    let addr = &entries[1];
    assert_eq!(addr.meta.requested_by.key_id, "ops-1");
    assert_eq!(addr.meta.approvals[0].key_id, "lead-1");
    assert_eq!(addr.meta.reason, "buyer called");
    assert_eq!(addr.changes[0].before["phone"], "13812345678");
    assert_eq!(addr.changes[0].after["phone"], "13900009999");
    let raw = ts.raw_text("SELECT sealed FROM order_edits").join(" ")
        + &ts
            .raw_text("SELECT CAST(meta AS TEXT) FROM order_edits")
            .join(" ");
    assert!(
        !raw.contains("13900009999") && !raw.contains("中山路"),
        "{raw}"
    );
    // The timeline: requested, then edited — masked.
    let t = tenant("acme");
    let id = o.id;
    let audit = ts
        .store
        .read(move |r| r.audit_for_order(&t, id))
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert!(
        actions.ends_with(&["edit", "edit_requested", "edit"]),
        "{actions:?}"
    );
    let detail = audit.last().unwrap().detail.to_string();
    assert!(
        detail.contains("139****9999") && !detail.contains("13900009999"),
        "{detail}"
    );
}

async fn goods_edits_re_reserve_stock_in_the_same_transaction_and_are_refused_whole_when_short(
    ts: TestStore,
) {
    seed(&ts, 5).await;
    set_rules(
        &ts,
        EditRules {
            lines: false,
            ..EditRules::default()
        },
    )
    .await;
    let o = order(&ts, "E-2", 2, true).await;
    assert_eq!(reserved_tea(&ts).await, 2);
    let ops = key(Role::Ops, "ops-1");
    let r = edit(&ts, &ops, o.id, quantity(4)).await.unwrap();
    let after = r.order.unwrap();
    assert_eq!(after.paid_amount.amount().to_string(), "40.00");
    assert_eq!(reserved_tea(&ts).await, 4);
    assert_ne!(after.reservation_id, o.reservation_id);
    // A gift line reserves its stock too.
    let gift = OrderEdit {
        add_gifts: vec![GiftLine {
            sku: sku("FREE"),
            title: "sample".into(),
            quantity: 1,
        }],
        ..Default::default()
    };
    let after = edit(&ts, &ops, o.id, gift).await.unwrap().order.unwrap();
    assert_eq!(after.lines.len(), 2);
    assert_eq!(after.paid_amount.amount().to_string(), "40.00");

    // Six: one more than there is. Refused, nothing written: order, stock, log, events as before.
    let events_before = events(&ts, o.id, "order.edited").await;
    match edit(&ts, &ops, o.id, quantity(6)).await {
        Err(CoreError::OutOfStock { sku, requested, .. }) => {
            assert_eq!((sku.as_str(), requested), ("TEA", 6));
        }
        other => panic!("expected out_of_stock: {other:?}"),
    }
    let now = order_now(&ts, o.id).await;
    assert_eq!((now.version, now.lines[0].quantity), (after.version, 4));
    assert_eq!(reserved_tea(&ts).await, 4);
    assert_eq!(log(&ts, o.id).await.len(), 2);
    assert_eq!(events(&ts, o.id, "order.edited").await, events_before);
    // Never more reserved than on hand, whatever was tried.
    let levels = ts
        .store
        .read(move |r| r.stock_for_sku(&tenant("acme"), &sku("TEA")))
        .await
        .unwrap();
    assert!(
        levels
            .iter()
            .all(|(_, r)| r.level.reserved <= r.level.on_hand)
    );
}

async fn two_approvers_at_once_apply_the_edit_exactly_once(ts: TestStore) {
    seed(&ts, 10).await;
    let o = order(&ts, "E-3", 1, true).await;
    let r = edit(&ts, &key(Role::Ops, "ops-1"), o.id, quantity(3))
        .await
        .unwrap();
    assert_eq!(r.edit.state, EditState::Pending);
    let id = r.edit.edit_id;
    // Two approvers, on two writers (PostgreSQL) at once.
    let (l1, l2) = (key(Role::Admin, "lead-1"), key(Role::Admin, "lead-2"));
    let (a, b) = tokio::join!(approve(&ts, &l1, id, 1), approve(&ts, &l2, id, 2));
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("expected exactly one approval to apply the edit: {other:?}"),
    };
    assert_eq!(won.edit.state, EditState::Applied);
    match lost {
        CoreError::EditConflict { code, .. } => assert_eq!(code, "edit_not_pending"),
        other => panic!("the other approver should be told it was decided: {other:?}"),
    }
    let now = order_now(&ts, o.id).await;
    assert_eq!((now.version, now.lines[0].quantity), (o.version + 1, 3));
    assert_eq!(events(&ts, o.id, "order.edited").await, 1);
    assert_eq!(reserved_tea(&ts).await, 3);
}

async fn a_two_level_rule_needs_two_distinct_approvers_neither_the_requester(ts: TestStore) {
    seed(&ts, 10).await;
    set_rules(
        &ts,
        EditRules {
            approvals_required: 2,
            ..EditRules::default()
        },
    )
    .await;
    let o = order(&ts, "E-4", 1, true).await;
    let r = edit(&ts, &key(Role::Admin, "boss-0"), o.id, ningbo())
        .await
        .unwrap();
    let id = r.edit.edit_id;
    assert_eq!(r.edit.meta.approvals_required, 2);
    let first = approve(&ts, &key(Role::Admin, "lead-1"), id, 0)
        .await
        .unwrap();
    assert_eq!(first.edit.state, EditState::Pending);
    assert_eq!(events(&ts, o.id, "order.edit_approved").await, 1);
    assert_eq!(order_now(&ts, o.id).await.version, o.version);
    match approve(&ts, &key(Role::Admin, "lead-1"), id, 0).await {
        Err(CoreError::EditConflict { code, .. }) => assert_eq!(code, "already_approved"),
        other => panic!("one key approved twice: {other:?}"),
    }
    match approve(&ts, &key(Role::Admin, "boss-0"), id, 0).await {
        Err(CoreError::OwnEdit(_)) => {}
        other => panic!("the requester approved: {other:?}"),
    }
    let second = approve(&ts, &key(Role::Admin, "lead-2"), id, 0)
        .await
        .unwrap();
    assert_eq!(second.edit.state, EditState::Applied);
    assert_eq!(second.edit.meta.approvals.len(), 2);
    assert_eq!(order_now(&ts, o.id).await.receiver.city, "宁波市");
}

async fn an_approved_edit_fails_when_the_order_moved_on_and_says_why(ts: TestStore) {
    seed(&ts, 10).await;
    let o = order(&ts, "E-5", 1, true).await;
    let ops = key(Role::Ops, "ops-1");
    // The order moves on (allocated) under a pending edit: the fields it changes did not, so it
    // still applies.
    let r = edit(&ts, &ops, o.id, ningbo()).await.unwrap();
    let wh = WarehouseId::parse("HZ").unwrap();
    move_order(&ts, o.id, Command::Allocate { warehouse_id: wh })
        .await
        .unwrap();
    let ok = approve(&ts, &key(Role::Admin, "lead-1"), r.edit.edit_id, 0)
        .await
        .unwrap();
    assert_eq!(ok.edit.state, EditState::Applied);
    // Released under a pending edit: the approval records the failure, the order stays as it is.
    let r = edit(&ts, &ops, o.id, memo("fragile")).await.unwrap();
    assert_eq!(r.edit.state, EditState::Applied, "a memo needs no approval");
    let r = edit(&ts, &ops, o.id, quantity(2)).await.unwrap();
    assert_eq!(r.edit.state, EditState::Pending);
    let released = move_order(&ts, o.id, Command::Release).await.unwrap();
    let failed = approve(&ts, &key(Role::Admin, "lead-1"), r.edit.edit_id, 0)
        .await
        .unwrap();
    assert_eq!(failed.edit.state, EditState::Failed);
    let why = failed.edit.meta.failure.clone().unwrap();
    assert!(why.contains("released"), "{why}");
    let now = order_now(&ts, o.id).await;
    assert_eq!((now.version, now.lines[0].quantity), (released.version, 1));
    assert_eq!(events(&ts, o.id, "order.edit_failed").await, 1);
    let stored = log(&ts, o.id).await;
    assert_eq!(stored.last().unwrap().state, EditState::Failed);
}

async fn an_edit_racing_a_release_ends_one_way(ts: TestStore) {
    seed(&ts, 50).await;
    let wh = WarehouseId::parse("HZ").unwrap();
    for i in 0..6 {
        let o = order(&ts, &format!("E-R{i}"), 1, true).await;
        let o = move_order(
            &ts,
            o.id,
            Command::Allocate {
                warehouse_id: wh.clone(),
            },
        )
        .await
        .unwrap();
        let ops = key(Role::Ops, "ops-1");
        // The edit on another writer than the release (PostgreSQL: two transactions at once).
        let a = ops.clone();
        let id = o.id;
        let edit_job = ts.store.write(7 + i, move |tx| {
            edits::request_edit(tx, &a, id, memo("leave at door"), "buyer asked", Utc::now())
        });
        let (edited, released) = tokio::join!(edit_job, move_order(&ts, o.id, Command::Release));
        let released = released.expect("the release is never refused by an edit");
        let now = order_now(&ts, o.id).await;
        assert_eq!(now.status, Status::Released);
        match edited {
            // The edit first: the release moved the edited order on.
            Ok(r) => {
                let v = r.edit.meta.applied_version.unwrap();
                assert!(
                    v < released.version,
                    "edit {v}, release {}",
                    released.version
                );
                assert_eq!(now.seller_memo.as_deref(), Some("leave at door"));
            }
            // The release first: the edit is refused naming the status, and changed nothing.
            Err(CoreError::EditConflict { code, status, .. }) => {
                assert_eq!((code, status), ("edit_not_allowed", Some(Status::Released)));
                assert_eq!(now.seller_memo, None);
                assert_eq!(now.version, released.version);
                assert!(log(&ts, o.id).await.is_empty());
            }
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
}

async fn a_released_order_is_not_edited_and_one_edit_waits_at_a_time(ts: TestStore) {
    seed(&ts, 10).await;
    let ops = key(Role::Ops, "ops-1");
    let o = order(&ts, "E-6", 1, true).await;
    let r = edit(&ts, &ops, o.id, ningbo()).await.unwrap();
    assert_eq!(r.edit.state, EditState::Pending);
    match edit(&ts, &ops, o.id, memo("x")).await {
        Err(CoreError::EditConflict { code, message, .. }) => {
            assert_eq!(code, "edit_pending");
            assert!(message.contains(&r.edit.edit_id.to_string()), "{message}");
        }
        other => panic!("a second edit while one waits: {other:?}"),
    }
    // A rejected edit no longer blocks; it stays in the log.
    let lead = key(Role::Admin, "lead-1");
    let a = lead.clone();
    let id = r.edit.edit_id;
    let rej = ts
        .store
        .write(0, move |tx| {
            edits::reject_edit(tx, &a, id, "wrong city", Utc::now())
        })
        .await
        .unwrap();
    assert_eq!(rej.edit.state, EditState::Rejected);
    assert_eq!(rej.edit.meta.decision_note.as_deref(), Some("wrong city"));
    match approve(&ts, &lead, id, 0).await {
        Err(CoreError::EditConflict { code, .. }) => assert_eq!(code, "edit_not_pending"),
        other => panic!("a rejected edit was approved: {other:?}"),
    }
    let wh = WarehouseId::parse("HZ").unwrap();
    move_order(&ts, o.id, Command::Allocate { warehouse_id: wh })
        .await
        .unwrap();
    move_order(&ts, o.id, Command::Release).await.unwrap();
    match edit(&ts, &ops, o.id, memo("x")).await {
        Err(CoreError::EditConflict {
            code,
            status,
            message,
            ..
        }) => {
            assert_eq!((code, status), ("edit_not_allowed", Some(Status::Released)));
            assert!(message.contains("released"), "{message}");
        }
        other => panic!("a released order was edited: {other:?}"),
    }
    // Bounds: the reason is required.
    let a = ops.clone();
    let id = o.id;
    let r = ts
        .store
        .write(0, move |tx| {
            edits::request_edit(tx, &a, id, memo("y"), " ", Utc::now())
        })
        .await;
    assert!(matches!(r, Err(CoreError::Validation(v)) if v.field == "reason"));
}

async fn an_edit_that_fits_the_stock_takes_a_backordered_order_off_backorder(ts: TestStore) {
    seed(&ts, 2).await;
    set_rules(
        &ts,
        EditRules {
            lines: false,
            ..EditRules::default()
        },
    )
    .await;
    // Three wanted, two on hand: paid, it waits on backorder.
    let o = order(&ts, "E-7", 3, true).await;
    assert!(o.has_exception("out_of_stock"));
    assert_eq!(reserved_tea(&ts).await, 0);
    assert_eq!(waiting(&ts).await.len(), 1);
    // Still short at four: refused whole, still waiting as it was.
    assert!(matches!(
        edit(&ts, &key(Role::Ops, "ops-1"), o.id, quantity(4)).await,
        Err(CoreError::OutOfStock { .. })
    ));
    assert_eq!(waiting(&ts).await.len(), 1);
    assert_eq!(order_now(&ts, o.id).await, o);
    // Two fit: reserved in the edit's transaction, off backorder, announced one version later.
    let r = edit(&ts, &key(Role::Ops, "ops-1"), o.id, quantity(2))
        .await
        .unwrap();
    let now = r.order.unwrap();
    assert!(!now.has_exception("out_of_stock"), "{:?}", now.exceptions);
    assert_eq!(now.version, o.version + 2);
    assert_eq!(r.edit.meta.applied_version, Some(o.version + 1));
    assert_eq!(reserved_tea(&ts).await, 2);
    assert!(waiting(&ts).await.is_empty());
    assert_eq!(events(&ts, o.id, "order.edited").await, 1);
    assert_eq!(events(&ts, o.id, "exception.resolved").await, 1);
    assert_eq!(order_now(&ts, o.id).await, now);
}

async fn waiting(ts: &TestStore) -> Vec<(OrderId, Sku, chrono::DateTime<Utc>)> {
    let t = tenant("acme");
    ts.store
        .read(move |r| r.backorders(&t, None, 100, None))
        .await
        .unwrap()
}

/// A unit refunded before release (an approved after-sales case stopped it, its stock back in the
/// pool) stays refunded when an edit of the goods re-reserves the order: only what is left to ship is
/// reserved again, so the refunded unit is neither held nor shipped.
async fn an_edit_after_a_refund_reserves_only_what_is_left_to_ship(ts: TestStore) {
    use orderhub_core::after_sales::{self as rma, OpenCase};
    use orderhub_domain::after_sales::{CaseKind, LineClaim};
    seed(&ts, 5).await;
    set_rules(
        &ts,
        EditRules {
            lines: false,
            ..EditRules::default()
        },
    )
    .await;
    let o = order(&ts, "E-9", 2, true).await;
    assert_eq!(reserved_tea(&ts).await, 2);
    let (a, id) = (actor("acme", Role::Ops), o.id);
    let case = ts
        .store
        .write(1, move |tx| {
            let input = OpenCase {
                kind: CaseKind::RefundOnly,
                lines: vec![LineClaim {
                    line_id: 1,
                    quantity: 1,
                    amount: None,
                }],
                reason: "buyer asked".into(),
            };
            rma::open(tx, &a, id, &input, Utc::now())
        })
        .await
        .unwrap()
        .0;
    let a = actor("acme", Role::Ops);
    ts.store
        .write(1, move |tx| {
            rma::approve(tx, &a, case.case_id, None, Utc::now())
        })
        .await
        .unwrap();
    assert_eq!(reserved_tea(&ts).await, 1, "the refunded unit went back");
    // A gift added: the order's goods are reserved again, from what is left to ship.
    let gift = OrderEdit {
        add_gifts: vec![GiftLine {
            sku: sku("FREE"),
            title: "gift".into(),
            quantity: 1,
        }],
        ..Default::default()
    };
    let r = edit(&ts, &key(Role::Ops, "ops-1"), o.id, gift)
        .await
        .unwrap();
    assert_eq!(r.edit.state, EditState::Applied);
    assert_eq!(
        reserved_tea(&ts).await,
        1,
        "the refunded unit is not held again"
    );
    let now = order_now(&ts, o.id).await;
    assert_eq!(now.units_to_ship(1), 1);
}

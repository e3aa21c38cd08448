//! Refund write-back against the Taobao simulator, on both stores: a buyer's refund reaches
//! orderhub through the pull (a channel case), the operator decides, and the decision reaches the
//! channel once — agreed, refused with the operator's reason, and after the channel failed twice.

use super::{creds, shop, window};
use chrono::Utc;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{CanonicalStatus, ChannelKind, ChannelOrder, RefundDecision};
use orderhub_domain::after_sales::{AfterSaleCase, CaseState, WritebackOutcome};
use orderhub_domain::{Order, TenantId};
use orderhub_intake::pull::{Bucket, PullConfig, pull_window};
use orderhub_intake::refund_writeback::RefundWriteBack;
use orderhub_store::testing::open;
use orderhub_store::{CaseFilter, OrderFilter, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn operator(t: &TenantId) -> orderhub_core::usecases::Actor {
    orderhub_core::usecases::Actor {
        principal: orderhub_core::auth::Principal {
            tenant_id: t.clone(),
            key_id: "k".into(),
            key_name: "desk".into(),
            role: orderhub_core::auth::Role::Admin,
            shops: None,
            pii_read: false,
        },
        request_id: "r".into(),
    }
}

async fn order_of(store: &Store, t: &TenantId, ext: &str) -> Order {
    let f = OrderFilter::all(t.clone(), 1000);
    store
        .read(move |r| r.order_list(&f))
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.external_order_id.to_string() == ext)
        .unwrap_or_else(|| panic!("order {ext} was pulled"))
}

async fn case_of(store: &Store, t: &TenantId, o: &Order) -> AfterSaleCase {
    let f = CaseFilter {
        tenant: t.clone(),
        state: None,
        order_id: Some(o.id),
        shops: None,
        after: None,
        limit: 10,
    };
    let cases = store.read(move |r| r.after_sales(&f)).await.unwrap();
    assert_eq!(cases.len(), 1, "one channel case per refund: {cases:?}");
    cases.into_iter().next().unwrap()
}

/// Waits until the case records its write-back.
async fn written_back(store: &Store, t: &TenantId, o: &Order) -> AfterSaleCase {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let c = case_of(store, t, o).await;
        if c.channel_writeback.is_some() {
            return c;
        }
        assert!(Instant::now() < until, "never written back: {c:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pull(store: &Store, shop: &orderhub_store::ChannelShopRow) {
    let http = orderhub_channels::client::HttpClient::new();
    let cfg = PullConfig {
        rate_per_sec: 500.0,
        ..PullConfig::default()
    };
    let (from, to) = window();
    let mut bucket = Bucket::new(cfg.rate_per_sec, cfg.burst);
    pull_window(store, &http, shop, from, to, &cfg, &mut bucket)
        .await
        .unwrap();
}

async fn decisions_on_channel_refunds_reach_the_channel_once(backend: &str, kind: ChannelKind) {
    let Some(env) = open(backend) else { return };
    let store = env.store.clone();
    let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 30, 4))
        .await
        .unwrap();
    let shop = shop(&store, kind, &url).await;
    let t = shop.tenant_id.clone();
    pull(&store, &shop).await;
    // Three paid orders; the buyer asks for a refund of each one's first line on the channel.
    // Where the channel's order shows a refund on every line (JD: the apply locks the order),
    // orders of one line, so that one case opens per refund.
    let per_order = matches!(kind, ChannelKind::Jd);
    let paid: Vec<ChannelOrder> = handle
        .orders()
        .into_iter()
        .filter(|o| o.canonical == CanonicalStatus::Paid && o.shippable)
        .filter(|o| !per_order || o.lines.len() == 1)
        .take(3)
        .collect();
    assert_eq!(paid.len(), 3, "the simulator has paid orders");
    let refunds: Vec<String> = paid
        .iter()
        .map(|o| {
            handle
                .open_refund(&o.external_order_id, &o.lines[0].external_line_id)
                .unwrap()
        })
        .collect();
    assert!(
        handle
            .open_refund(&paid[0].external_order_id, "no-such-line")
            .is_none()
    );
    // The existing intake path: the next pull opens a channel case per refund.
    pull(&store, &shop).await;
    let mut orders = Vec::new();
    for o in &paid {
        let order = order_of(&store, &t, &o.external_order_id).await;
        let c = case_of(&store, &t, &order).await;
        assert_eq!(c.state, CaseState::Requested);
        assert!(matches!(
            c.source,
            orderhub_domain::after_sales::CaseSource::Channel { .. }
        ));
        orders.push((order, c));
    }
    let wb = Arc::new(RefundWriteBack::new(store.clone()));
    let ev = orderhub_events::EventsConfig {
        poll_interval: Duration::from_millis(50),
        supervise_every: Duration::from_millis(100),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        max_attempts: 6,
        ..orderhub_events::EventsConfig::default()
    };
    let rt = orderhub_events::EventsRuntime::start(store.clone(), ev, vec![wb.clone()])
        .await
        .unwrap();
    let op = operator(&t);

    // 1. Approved: the channel hears the agreement once.
    let (a, id) = (op.clone(), orders[0].1.case_id);
    store
        .write(0, move |tx| {
            orderhub_core::after_sales::approve(tx, &a, id, None, Utc::now())
        })
        .await
        .unwrap();
    let c = written_back(&store, &t, &orders[0].0).await;
    let w = c.channel_writeback.unwrap();
    assert_eq!(w.outcome, WritebackOutcome::Acknowledged);
    assert_eq!(w.refund_id.as_deref(), Some(refunds[0].as_str()));
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].refund_id.as_str(), &d[0].decision),
        (refunds[0].as_str(), &RefundDecision::Agree)
    );

    // 2. Refused: the channel hears the refusal with the operator's reason.
    let reason = "商品已发出，请收货后再申请";
    let (a, id) = (op.clone(), orders[1].1.case_id);
    store
        .write(0, move |tx| {
            orderhub_core::after_sales::refuse(tx, &a, id, reason, Utc::now())
        })
        .await
        .unwrap();
    let c = written_back(&store, &t, &orders[1].0).await;
    assert_eq!(
        c.channel_writeback.unwrap().outcome,
        WritebackOutcome::Acknowledged
    );
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[1].refund_id, refunds[1]);
    assert_eq!(
        d[1].decision,
        RefundDecision::Refuse {
            reason: reason.into()
        }
    );
    // A channel whose refusal names one of its reason codes: the simulator recorded the one the
    // write-back chose from the channel's list (one needing no evidence: its "其他").
    let coded = matches!(
        kind,
        ChannelKind::Douyin | ChannelKind::Kuaishou | ChannelKind::Wechat
    );
    assert_eq!(d[1].reason_code.is_some(), coded, "{d:?}");

    // 3. The channel fails the decision call twice: retried, then recorded exactly once.
    handle.fail_refund_decisions(2);
    let errors = handle.stats.snapshot().errors;
    let (a, id) = (op.clone(), orders[2].1.case_id);
    store
        .write(0, move |tx| {
            orderhub_core::after_sales::approve(tx, &a, id, None, Utc::now())
        })
        .await
        .unwrap();
    written_back(&store, &t, &orders[2].0).await;
    assert!(
        handle.stats.snapshot().errors >= errors + 2,
        "the two failures were met"
    );
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 3, "{d:?}");
    assert_eq!(d.iter().filter(|r| r.refund_id == refunds[2]).count(), 1);

    // 4. Delivered again (a restart replays the events): nothing recorded is sent again.
    for (o, _) in &orders {
        assert_eq!(wb.push(&t, o.id).await.unwrap(), 0);
    }
    assert_eq!(handle.refund_decisions().len(), 3);
    // A later pull sees the refused refund on the channel: the refused case stays as it is.
    pull(&store, &shop).await;
    assert_eq!(
        case_of(&store, &t, &orders[1].0).await.state,
        CaseState::Refused
    );
    // Each recorded decision: `writeback.acknowledged` naming the case and the refund.
    let t2 = t.clone();
    let events = store
        .read(move |r| r.events_after(&t2, 0, 10_000))
        .await
        .unwrap();
    let acks: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.event.event_type == "writeback.acknowledged")
        .map(|e| serde_json::from_str(&e.event.payload).unwrap())
        .collect();
    assert_eq!(acks.len(), 3, "{acks:?}");
    for (i, (_, c)) in orders.iter().enumerate() {
        assert!(
            acks.iter()
                .any(|p| p["after_sale"]["case_id"] == c.case_id.to_string()
                    && p["refund_writeback"]["refund_id"] == refunds[i].as_str()),
            "{acks:?}"
        );
    }
    rt.stop().await;
}

/// One channel's write-back on both backends: `decisions_reach!(taobao, ChannelKind::Taobao)`
/// makes the tests `taobao_decisions_reach_the_channel::sqlite` and `…::postgres`.
macro_rules! decisions_reach {
    ($name:ident, $kind:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                decisions_on_channel_refunds_reach_the_channel_once("sqlite", $kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                decisions_on_channel_refunds_reach_the_channel_once("postgres", $kind).await;
            }
        }
    };
}

decisions_reach!(taobao_decisions_reach_the_channel, ChannelKind::Taobao);
decisions_reach!(youzan_decisions_reach_the_channel, ChannelKind::Youzan);
decisions_reach!(jd_decisions_reach_the_channel, ChannelKind::Jd);
decisions_reach!(wechat_decisions_reach_the_channel, ChannelKind::Wechat);

/// Pinduoduo: the refund reaches orderhub (its detail's `refund_status` 2, on every line: orders
/// of one line here); the write-back finds the after-sale by the order
/// (`pdd.refund.information.get`). An approval reaches the channel once (`pdd.refund.agree`); PDD
/// has no refusal call, so a refusal is recorded as "no call" and nothing is sent.
async fn pdd_agrees_once_and_records_refusals_as_no_call(backend: &str) {
    let Some(env) = open(backend) else { return };
    let store = env.store.clone();
    let (url, handle) = sim::spawn(ChannelKind::Pdd, SimSettings::new(creds(), 30, 4))
        .await
        .unwrap();
    let shop = shop(&store, ChannelKind::Pdd, &url).await;
    let t = shop.tenant_id.clone();
    pull(&store, &shop).await;
    let paid: Vec<ChannelOrder> = handle
        .orders()
        .into_iter()
        .filter(|o| o.canonical == CanonicalStatus::Paid && o.shippable && o.lines.len() == 1)
        .take(2)
        .collect();
    assert_eq!(paid.len(), 2, "the simulator has paid single-line orders");
    let refunds: Vec<String> = paid
        .iter()
        .map(|o| {
            let id = handle
                .open_refund(&o.external_order_id, &o.lines[0].external_line_id)
                .unwrap();
            // PDD's read needs the order: the refund id is `{order_sn}:{after_sales_id}`.
            format!("{}:{id}", o.external_order_id)
        })
        .collect();
    pull(&store, &shop).await;
    let mut orders = Vec::new();
    for o in &paid {
        let order = order_of(&store, &t, &o.external_order_id).await;
        let c = case_of(&store, &t, &order).await;
        orders.push((order, c));
    }
    let wb = RefundWriteBack::new(store.clone());
    let (a, id) = (operator(&t), orders[0].1.case_id);
    store
        .write(0, move |tx| {
            orderhub_core::after_sales::approve(tx, &a, id, None, Utc::now())
        })
        .await
        .unwrap();
    assert_eq!(wb.push(&t, orders[0].0.id).await.unwrap(), 1);
    let w = case_of(&store, &t, &orders[0].0)
        .await
        .channel_writeback
        .unwrap();
    assert_eq!(
        (w.outcome, w.refund_id.as_deref()),
        (WritebackOutcome::Acknowledged, Some(refunds[0].as_str()))
    );
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].decision, RefundDecision::Agree);
    assert!(refunds[0].ends_with(&format!(":{}", d[0].refund_id)));
    // Refused: read, but no call for the decision; recorded as "no call".
    let (a, id) = (operator(&t), orders[1].1.case_id);
    store
        .write(0, move |tx| {
            orderhub_core::after_sales::refuse(tx, &a, id, "商品已发出", Utc::now())
        })
        .await
        .unwrap();
    assert_eq!(wb.push(&t, orders[1].0.id).await.unwrap(), 1);
    let w = case_of(&store, &t, &orders[1].0)
        .await
        .channel_writeback
        .unwrap();
    assert_eq!(
        (w.outcome, w.refund_id.as_deref()),
        (WritebackOutcome::NoCall, Some(refunds[1].as_str()))
    );
    assert_eq!(handle.refund_decisions().len(), 1, "no refusal sent");
    // Again: each is recorded once, nothing more is sent.
    let calls = handle.stats.snapshot().calls;
    for (o, _) in &orders {
        assert_eq!(wb.push(&t, o.id).await.unwrap(), 0, "recorded once");
    }
    assert_eq!(
        handle.stats.snapshot().calls,
        calls,
        "no call to the channel"
    );
    assert_eq!(handle.refund_decisions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdd_agrees_once_and_records_refusals_as_no_call_sqlite() {
    pdd_agrees_once_and_records_refusals_as_no_call("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdd_agrees_once_and_records_refusals_as_no_call_postgres() {
    pdd_agrees_once_and_records_refusals_as_no_call("postgres").await;
}

/// Two refunds on one order: a refusal the channel cannot take (a one-character reason; Taobao's
/// `refuse_message` takes 2–200) fails for good, and does not keep the other case's approval
/// from the channel.
async fn one_cases_failure_does_not_hold_back_another(backend: &str) {
    let Some(env) = open(backend) else { return };
    let store = env.store.clone();
    let (url, handle) = sim::spawn(ChannelKind::Taobao, SimSettings::new(creds(), 40, 7))
        .await
        .unwrap();
    let shop = shop(&store, ChannelKind::Taobao, &url).await;
    let t = shop.tenant_id.clone();
    pull(&store, &shop).await;
    let o = handle
        .orders()
        .into_iter()
        .find(|o| o.canonical == CanonicalStatus::Paid && o.shippable && o.lines.len() >= 2)
        .expect("a paid order of two lines");
    let r: Vec<String> = o.lines[..2]
        .iter()
        .map(|l| {
            handle
                .open_refund(&o.external_order_id, &l.external_line_id)
                .unwrap()
        })
        .collect();
    pull(&store, &shop).await;
    let order = order_of(&store, &t, &o.external_order_id).await;
    let f = CaseFilter {
        tenant: t.clone(),
        state: None,
        order_id: Some(order.id),
        shops: None,
        after: None,
        limit: 10,
    };
    let cases = store.read(move |r| r.after_sales(&f)).await.unwrap();
    assert_eq!(cases.len(), 2, "{cases:?}");
    let line_of = |c: &AfterSaleCase| c.lines[0].line_id;
    let ext = |line: u32| {
        order
            .lines
            .iter()
            .find(|l| l.line_id == line)
            .and_then(|l| l.external_line_id.clone())
            .unwrap()
    };
    let (a, b) = (&cases[0], &cases[1]);
    let (op, id) = (operator(&t), a.case_id);
    store
        .write(0, move |tx| {
            orderhub_core::after_sales::refuse(tx, &op, id, "不", Utc::now())
        })
        .await
        .unwrap();
    let (op, id) = (operator(&t), b.case_id);
    store
        .write(0, move |tx| {
            orderhub_core::after_sales::approve(tx, &op, id, None, Utc::now())
        })
        .await
        .unwrap();
    let wb = RefundWriteBack::new(store.clone());
    let e = wb.push(&t, order.id).await.unwrap_err();
    assert!(!e.retryable, "the refusal cannot be built: {}", e.message);
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].decision, RefundDecision::Agree);
    assert_eq!(d[0].line_id.as_deref(), Some(ext(line_of(b)).as_str()));
    assert!(r.contains(&d[0].refund_id));
    let f = CaseFilter {
        tenant: t.clone(),
        state: None,
        order_id: Some(order.id),
        shops: None,
        after: None,
        limit: 10,
    };
    let cases = store.read(move |r| r.after_sales(&f)).await.unwrap();
    let recorded: Vec<bool> = cases
        .iter()
        .map(|c| c.channel_writeback.is_some())
        .collect();
    assert_eq!(recorded, vec![false, true], "only the approval is recorded");
    // Again: the approval is not sent twice, the refusal still fails.
    assert!(wb.push(&t, order.id).await.is_err());
    assert_eq!(handle.refund_decisions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cases_failure_does_not_hold_back_another_sqlite() {
    one_cases_failure_does_not_hold_back_another("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cases_failure_does_not_hold_back_another_postgres() {
    one_cases_failure_does_not_hold_back_another("postgres").await;
}

/// A decision whose delivery never reached the target (no dispatcher running, as when its
/// attempts were spent): the watchdog finds it and writes it back, once.
async fn the_watchdog_writes_back_what_no_delivery_did(backend: &str) {
    let Some(env) = open(backend) else { return };
    let store = env.store.clone();
    let (url, handle) = sim::spawn(ChannelKind::Taobao, SimSettings::new(creds(), 20, 11))
        .await
        .unwrap();
    let shop = shop(&store, ChannelKind::Taobao, &url).await;
    let t = shop.tenant_id.clone();
    pull(&store, &shop).await;
    let o = handle
        .orders()
        .into_iter()
        .find(|o| o.canonical == CanonicalStatus::Paid && o.shippable)
        .expect("a paid order");
    let refund = handle
        .open_refund(&o.external_order_id, &o.lines[0].external_line_id)
        .unwrap();
    pull(&store, &shop).await;
    let order = order_of(&store, &t, &o.external_order_id).await;
    let c = case_of(&store, &t, &order).await;
    let (op, id) = (operator(&t), c.case_id);
    store
        .write(0, move |tx| {
            orderhub_core::after_sales::approve(tx, &op, id, None, Utc::now())
        })
        .await
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(orderhub_intake::refund_writeback::watchdog(
        Arc::new(RefundWriteBack::new(store.clone())),
        Duration::from_millis(100),
        stop_rx,
    ));
    let c = written_back(&store, &t, &order).await;
    assert_eq!(
        c.channel_writeback.unwrap().refund_id.as_deref(),
        Some(refund.as_str())
    );
    // Later ticks find it recorded: nothing more is sent.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let _ = stop.send(true);
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].refund_id, refund);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_writes_back_what_no_delivery_did_sqlite() {
    the_watchdog_writes_back_what_no_delivery_did("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_writes_back_what_no_delivery_did_postgres() {
    the_watchdog_writes_back_what_no_delivery_did("postgres").await;
}

decisions_reach!(kuaishou_decisions_reach_the_channel, ChannelKind::Kuaishou);
decisions_reach!(douyin_decisions_reach_the_channel, ChannelKind::Douyin);

//! Fulfillment end to end on the real stores and the in-process bus, against the carrier
//! simulators over TCP: paid orders ship and are delivered; a carrier answering in 8 s trips its
//! breaker and orders ship through the fallback; a stuck order raises an exception that resolves
//! itself when the order moves on.

use chrono::Utc;
use orderhub_carriers::breaker::State;
use orderhub_carriers::sim::fleet;
use orderhub_carriers::{BreakerConfig, CarrierKind, CarrierRouter};
use orderhub_core::usecases::{self, Created};
use orderhub_domain::ids::Channel;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, Receiver};
use orderhub_domain::{
    Currency, ExternalOrderId, Money, OrderId, OrderKind, Personal, ShopId, Sku, Status, TenantId,
};
use orderhub_events::{EventsConfig, EventsRuntime};
use orderhub_fulfillment::{ByStockRegionPriority, Fulfillment, FulfillmentConfig, system_actor};
use orderhub_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use orderhub_store::testing::open;

#[path = "it/carrier_check.rs"]
mod carrier_check;

fn draft(external: &str) -> OrderDraft {
    let m = |s: &str| Money::parse("m", s, Currency::CNY).unwrap();
    OrderDraft {
        shop_id: ShopId::parse("shop-1").unwrap(),
        channel: Channel::parse("taobao").unwrap(),
        external_order_id: ExternalOrderId::parse(external).unwrap(),
        channel_status: None,
        channel_updated_at: None,
        buyer: Buyer {
            id: None,
            nick: None,
        },
        receiver: Receiver {
            name: Personal::new("王小明"),
            phone: Personal::new("13812345678"),
            province: "浙江省".into(),
            city: "杭州市".into(),
            district: Some("西湖区".into()),
            town: None,
            detail: Personal::new("文三路100号"),
            region_code: None,
        },
        lines: vec![LineDraft {
            external_line_id: None,
            sku: Sku::parse("GIFT-CARD").unwrap(),
            title: "Gift card ®".into(),
            quantity: 1,
            unit_price: m("99.00"),
            discount: Money::ZERO,
            paid_amount: None,
            is_kit: false,
        }],
        currency: Currency::CNY,
        goods_total: None,
        shipping_fee: m("0"),
        discount: None,
        paid_amount: None,
        kind: OrderKind::Normal,
        is_test: false,
        is_employee: false,
        channel_created_at: None,
        promised_ship_by: None,
        invoice_profile_id: None,
        tags: vec![],
        buyer_message: None,
        seller_memo: None,
    }
}

async fn tenant(store: &Store) -> TenantId {
    let t = TenantId::parse(&format!("f{}", &Uuid::new_v4().simple().to_string()[..10])).unwrap();
    let t2 = t.clone();
    store
        .write(0, move |tx| {
            Ok(tx.tenant_insert(
                &t2,
                "t",
                &serde_json::json!({"carrier_whitelist": ["sf","jd","cainiao","zto","yto","jt","ems"]}),
            )?)
        })
        .await
        .unwrap();
    t
}

/// Creates and pays `n` orders; returns their ids.
async fn paid_orders(store: &Store, t: &TenantId, n: usize) -> Vec<OrderId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let actor = system_actor(t, "test");
        let d = draft(&format!("E{i}-{}", Uuid::new_v4().simple()));
        let id = store
            .write(0, move |tx| {
                let o = match usecases::create_order(tx, &actor, d.clone(), Utc::now())? {
                    Created::New(o) | Created::Existing(o) => o,
                };
                let cmd = Command::Pay {
                    paid_at: None,
                    amount: None,
                };
                usecases::transition(tx, &actor, o.id, &cmd, Utc::now())?;
                Ok(o.id)
            })
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

struct Hub {
    rt: EventsRuntime,
    fleet: fleet::Fleet,
    router: Arc<CarrierRouter>,
    stop: tokio::sync::watch::Sender<bool>,
}

fn events_config() -> EventsConfig {
    EventsConfig {
        poll_interval: Duration::from_millis(50),
        supervise_every: Duration::from_millis(200),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        max_attempts: 50,
        ..EventsConfig::default()
    }
}

async fn start(
    store: &Store,
    cfg: FulfillmentConfig,
    chains: HashMap<CarrierKind, Vec<CarrierKind>>,
    breaker: BreakerConfig,
) -> Hub {
    start_with(store, cfg, chains, breaker, events_config()).await
}

async fn start_with(
    store: &Store,
    cfg: FulfillmentConfig,
    chains: HashMap<CarrierKind, Vec<CarrierKind>>,
    breaker: BreakerConfig,
    ev: EventsConfig,
) -> Hub {
    let fleet = fleet::start().await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let router =
        Arc::new(CarrierRouter::new(fleet.carriers.clone(), breaker, chains).with_observer(tx));
    let f = Arc::new(Fulfillment::new(
        store.clone(),
        fleet.carriers.clone(),
        router.clone(),
        Arc::new(ByStockRegionPriority),
        cfg,
    ));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    orderhub_fulfillment::spawn_background(f.clone(), rx, stop_rx);
    let rt = EventsRuntime::start(store.clone(), ev, vec![f])
        .await
        .unwrap();
    Hub {
        rt,
        fleet,
        router,
        stop,
    }
}

async fn wait_all(
    store: &Store,
    t: &TenantId,
    ids: &[OrderId],
    within: Duration,
    done: impl Fn(&orderhub_domain::Order) -> bool,
) -> Vec<orderhub_domain::Order> {
    let until = Instant::now() + within;
    loop {
        let (t2, ids2) = (t.clone(), ids.to_vec());
        let orders = store
            .read(move |r| {
                ids2.iter()
                    .map(|id| r.order_get(&t2, *id).map(|o| o.unwrap()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .unwrap();
        let pending = orders.iter().filter(|o| !done(o)).count();
        if pending == 0 {
            return orders;
        }
        assert!(
            Instant::now() < until,
            "{pending} of {} orders did not get there; statuses: {:?}",
            ids.len(),
            orders
                .iter()
                .map(|o| (o.status, o.exceptions.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn events_of(store: &Store, t: &TenantId, kind: &str) -> Vec<serde_json::Value> {
    let t2 = t.clone();
    let rows = store
        .read(move |r| r.events_after(&t2, 0, 100_000))
        .await
        .unwrap();
    rows.into_iter()
        .filter(|e| e.event.event_type == kind)
        .map(|e| serde_json::from_str(&e.event.payload).unwrap())
        .collect()
}

/// The watchdog's lag in /metrics (`orderhub_outbox_lag_events{consumer="watchdog"}`, the store's
/// `consumer_lags`) falls to 0 once it has scanned after the tenant's last event, and rises again
/// with new events until its next scan.
async fn the_watchdogs_lag_falls_to_zero_once_it_has_scanned(backend: &str) {
    let Some(env) = open(backend) else { return };
    let t = tenant(&env.store).await;
    let watchdog_lag = || {
        let (store, t) = (env.store.clone(), t.clone());
        async move {
            store
                .read(|r| r.consumer_lags())
                .await
                .unwrap()
                .into_iter()
                .find(|(c, tenant, _)| c == "watchdog" && *tenant == t)
                .map(|l| l.2)
        }
    };
    let wait_for_zero = |what: &'static str| async move {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let lag = watchdog_lag().await;
            if lag == Some(0) {
                return;
            }
            assert!(
                Instant::now() < until,
                "{what}: the watchdog's lag is {lag:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let cfg = FulfillmentConfig {
        watch_every: Duration::from_millis(100),
        ..sim_config()
    };
    let hub = start(&env.store, cfg, HashMap::new(), BreakerConfig::default()).await;
    let ids = paid_orders(&env.store, &t, 3).await;
    wait_all(&env.store, &t, &ids, Duration::from_secs(60), |o| {
        o.status == Status::Shipped
    })
    .await;
    wait_for_zero("after the orders shipped").await;
    // The lag is counted in events: stopped watchdogs fall behind by every event written after.
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
    let t2 = t.clone();
    let head = || {
        let (store, t) = (env.store.clone(), t2.clone());
        async move { store.read(move |r| r.outbox_head(&t)).await.unwrap() }
    };
    let (before, lag_before) = (head().await, watchdog_lag().await.unwrap());
    paid_orders(&env.store, &t, 2).await;
    let behind = head().await - before;
    assert!(behind >= 4, "two orders created and paid: {behind} events");
    assert_eq!(watchdog_lag().await, Some(lag_before + behind));
    // A watchdog started again scans and catches up.
    let cfg = FulfillmentConfig {
        watch_every: Duration::from_millis(100),
        ..no_watchdogs()
    };
    let hub = start(&env.store, cfg, HashMap::new(), BreakerConfig::default()).await;
    wait_for_zero("after a new scan").await;
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdogs_lag_falls_to_zero_once_it_has_scanned_sqlite() {
    the_watchdogs_lag_falls_to_zero_once_it_has_scanned("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdogs_lag_falls_to_zero_once_it_has_scanned_postgres() {
    the_watchdogs_lag_falls_to_zero_once_it_has_scanned("postgres").await;
}

async fn paid_orders_ship_and_deliver(backend: &str) {
    let Some(env) = open(backend) else { return };
    let t = tenant(&env.store).await;
    let cfg = FulfillmentConfig {
        track: orderhub_fulfillment::TrackSchedule::every(Duration::from_millis(200)),
        watch_every: Duration::from_millis(200),
        ..sim_config()
    };
    let hub = start(&env.store, cfg, HashMap::new(), BreakerConfig::default()).await;
    for h in hub.fleet.handles.values() {
        h.knobs.update(|k| k.track_step_ms = 100);
    }
    let ids = paid_orders(&env.store, &t, 10).await;
    let orders = wait_all(&env.store, &t, &ids, Duration::from_secs(60), |o| {
        o.status == Status::Delivered
    })
    .await;
    for o in &orders {
        assert_eq!(o.fulfillment.carrier.as_ref().unwrap().as_str(), "zto");
        let no = o.fulfillment.tracking_no.as_deref().unwrap();
        assert!(no.starts_with('7') && no.len() == 12, "{no}");
        assert!(
            o.fulfillment
                .logistics_no
                .as_deref()
                .is_some_and(|l| !l.is_empty())
        );
    }
    // One waybill per order, recorded before the shipment.
    let waybills = events_of(&env.store, &t, "waybill.created").await;
    assert_eq!(waybills.len(), ids.len());
    assert_eq!(
        hub.fleet.handles[&CarrierKind::Zto]
            .stats
            .snapshot()
            .waybills,
        ids.len() as u64
    );
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
}

/// An operator switches an order to another carrier before it ships (the exception board's
/// "switch carrier"): its waybill comes from that carrier, the others' from the default route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switched_carrier_issues_the_waybill() {
    let Some(env) = open("sqlite") else { return };
    let t = tenant(&env.store).await;
    // Paid and switched before fulfillment runs, so the first waybill request already sees it.
    let ids = paid_orders(&env.store, &t, 3).await;
    let actor = system_actor(&t, "operator");
    let switched = ids[0];
    env.store
        .write(0, move |tx| {
            usecases::switch_carrier(
                tx,
                &actor,
                switched,
                orderhub_domain::ids::CarrierCode::parse("yto").unwrap(),
                Utc::now(),
            )
        })
        .await
        .unwrap();
    let hub = start(
        &env.store,
        sim_config(),
        HashMap::new(),
        BreakerConfig::default(),
    )
    .await;
    let orders = wait_all(&env.store, &t, &ids, Duration::from_secs(60), |o| {
        o.fulfillment.carrier.is_some()
    })
    .await;
    for o in &orders {
        let want = if o.id == switched { "yto" } else { "zto" };
        assert_eq!(o.fulfillment.carrier.as_ref().unwrap().as_str(), want);
    }
    assert_eq!(
        hub.fleet.handles[&CarrierKind::Yto]
            .stats
            .snapshot()
            .waybills,
        1
    );
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_orders_ship_and_deliver_sqlite() {
    paid_orders_ship_and_deliver("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_orders_ship_and_deliver_postgres() {
    paid_orders_ship_and_deliver("postgres").await;
}

/// J&T answers in 8 s: the first calls time out at 3 s, the breaker opens after 5 failures, every
/// order ships with ZTO (the route's fallback) and none waits beyond the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_carrier_trips_the_breaker_and_orders_ship_through_the_fallback() {
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let cfg = FulfillmentConfig {
        default_carrier: CarrierKind::Jt,
        ..sim_config()
    };
    let chains = HashMap::from([(CarrierKind::Jt, vec![CarrierKind::Zto])]);
    let hub = start(&env.store, cfg, chains, BreakerConfig::default()).await;
    hub.fleet.handles[&CarrierKind::Jt]
        .knobs
        .set_latency(Duration::from_secs(8));
    let started = Instant::now();
    let ids = paid_orders(&env.store, &t, 20).await;
    let orders = wait_all(&env.store, &t, &ids, Duration::from_secs(30), |o| {
        o.status == Status::Shipped
    })
    .await;
    // The bound: one call timeout (3 s) per order at most, plus the pipeline; far below 8 s each.
    assert!(started.elapsed() < Duration::from_secs(30));
    for o in &orders {
        assert_eq!(o.fulfillment.carrier.as_ref().unwrap().as_str(), "zto");
    }
    let jt = hub
        .router
        .states()
        .into_iter()
        .find(|(k, _)| *k == CarrierKind::Jt)
        .unwrap()
        .1;
    assert_eq!(jt, State::Open);
    // With the breaker open, later orders go straight to ZTO: J&T is not called again.
    let jt_calls = hub.fleet.handles[&CarrierKind::Jt].stats.snapshot().calls;
    let quick = Instant::now();
    let more = paid_orders(&env.store, &t, 10).await;
    let orders = wait_all(&env.store, &t, &more, Duration::from_secs(30), |o| {
        o.status == Status::Shipped
    })
    .await;
    assert!(
        orders
            .iter()
            .all(|o| o.fulfillment.carrier.as_ref().unwrap().as_str() == "zto")
    );
    assert_eq!(
        hub.fleet.handles[&CarrierKind::Jt].stats.snapshot().calls,
        jt_calls
    );
    assert!(
        quick.elapsed() < Duration::from_secs(8),
        "orders waited on the slow carrier"
    );
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let changes = events_of(&env.store, &t, "carrier.breaker_changed").await;
        if changes
            .iter()
            .any(|c| c["carrier"] == "jt" && c["to"] == "open")
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "no carrier.breaker_changed event: {changes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
}

/// ZTO answers garbage and has no fallback: the order stays released, the watchdog raises
/// `no_waybill`; once ZTO works again the watchdog's re-request ships it and the exception resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_without_waybill_raises_an_exception_that_resolves_itself() {
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let cfg = FulfillmentConfig {
        no_waybill_after: Duration::from_millis(300),
        watch_every: Duration::from_millis(100),
        ..sim_config()
    };
    let breaker = BreakerConfig {
        open_for: Duration::from_secs(2),
        ..BreakerConfig::default()
    };
    let hub = start(&env.store, cfg, HashMap::new(), breaker).await;
    hub.fleet.handles[&CarrierKind::Zto]
        .knobs
        .update(|k| k.broken = true);
    let ids = paid_orders(&env.store, &t, 1).await;
    wait_all(&env.store, &t, &ids, Duration::from_secs(30), |o| {
        o.status == Status::Released && o.exceptions.iter().any(|e| e == "no_waybill")
    })
    .await;
    let raised = events_of(&env.store, &t, "exception.raised").await;
    assert!(
        raised.iter().any(|e| e["exception"] == "no_waybill"),
        "{raised:?}"
    );
    hub.fleet.handles[&CarrierKind::Zto]
        .knobs
        .update(|k| k.broken = false);
    // The breaker may have opened on the garbage; it probes again after its open period.
    let o = wait_all(&env.store, &t, &ids, Duration::from_secs(60), |o| {
        o.status == Status::Shipped
    })
    .await;
    assert!(o[0].exceptions.is_empty(), "{:?}", o[0].exceptions);
    let resolved = events_of(&env.store, &t, "exception.resolved").await;
    assert!(
        resolved.iter().any(|e| e["exception"] == "no_waybill"),
        "{resolved:?}"
    );
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
}

/// The simulated fleet's configuration: waybills from warehouses without a sender carry the
/// simulated one.
fn sim_config() -> FulfillmentConfig {
    FulfillmentConfig {
        fallback_sender: Some(orderhub_fulfillment::simulated_sender()),
        ..FulfillmentConfig::default()
    }
}

/// Watchdogs that never look within a test: whatever moves an order there was an event.
fn no_watchdogs() -> FulfillmentConfig {
    FulfillmentConfig {
        watch_every: Duration::from_secs(3600),
        ..sim_config()
    }
}

/// A paid order short of stock waits on backorder (`out_of_stock`, with its `exception.raised`);
/// the receipt that serves it moves it on at once — fulfillment takes `order.stock_reserved`, it
/// does not wait for a watchdog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backordered_order_ships_once_its_stock_arrives() {
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let actor = system_actor(&t, "stock");
    let (sku, wh) = (
        Sku::parse("GIFT-CARD").unwrap(),
        orderhub_domain::ids::WarehouseId::parse("HZ").unwrap(),
    );
    let (a, s2, w2) = (actor.clone(), sku.clone(), wh.clone());
    env.store
        .write(0, move |tx| {
            let now = Utc::now();
            orderhub_core::inventory::define_sku(
                tx,
                &a,
                &orderhub_core::ports::SkuRecord {
                    sku: s2.clone(),
                    title: "gift card".into(),
                    components: None,
                    weight_kg: None,
                },
                now,
            )?;
            orderhub_core::inventory::define_warehouse(
                tx,
                &a,
                &orderhub_core::ports::WarehouseRecord {
                    warehouse_id: w2.clone(),
                    name: "杭州".into(),
                    priority: 1,
                    regions: vec![],
                    sender: None,
                    parcel_max_kg: None,
                },
                now,
            )
        })
        .await
        .unwrap();
    let hub = start(
        &env.store,
        no_watchdogs(),
        HashMap::new(),
        BreakerConfig::default(),
    )
    .await;
    let ids = paid_orders(&env.store, &t, 1).await;
    let o = wait_all(&env.store, &t, &ids, Duration::from_secs(5), |_| true).await;
    assert_eq!(
        (o[0].status, o[0].exceptions.clone()),
        (Status::Paid, vec!["out_of_stock".to_owned()])
    );
    let raised = events_of(&env.store, &t, "exception.raised").await;
    assert!(
        raised.iter().any(|e| e["exception"] == "out_of_stock"),
        "{raised:?}"
    );
    let w3 = wh.clone();
    env.store
        .write(0, move |tx| {
            orderhub_core::inventory::receive(tx, &actor, &sku, &w3, 1, None, Utc::now())
        })
        .await
        .unwrap();
    let o = wait_all(&env.store, &t, &ids, Duration::from_secs(30), |o| {
        o.status == Status::Shipped
    })
    .await;
    assert!(o[0].exceptions.is_empty(), "{:?}", o[0].exceptions);
    assert_eq!(o[0].fulfillment.warehouse_id.as_ref(), Some(&wh));
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
}

/// The carrier fails until the dispatcher gives the waybill up (a dead letter); once it is back,
/// an operator's retry (`POST /v1/orders/{id}/retry`: `order.retry_requested`) issues the waybill
/// at once — with the watchdogs idle, nothing else would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_request_takes_the_next_step_at_once() {
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let ev = EventsConfig {
        max_attempts: 2,
        ..events_config()
    };
    let hub = start_with(
        &env.store,
        no_watchdogs(),
        HashMap::new(),
        BreakerConfig::default(),
        ev,
    )
    .await;
    let zto = &hub.fleet.handles[&CarrierKind::Zto];
    zto.knobs.update(|k| k.broken = true);
    let ids = paid_orders(&env.store, &t, 1).await;
    // Released, and the waybill given up: a dead letter for fulfillment.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let t2 = t.clone();
        let dead = env
            .store
            .read(move |r| r.dead_letters(Some(&t2), None, None, 10, None))
            .await
            .unwrap();
        if !dead.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "the waybill was never given up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = wait_all(&env.store, &t, &ids, Duration::from_secs(5), |_| true).await;
    assert_eq!(o[0].status, Status::Released);
    zto.knobs.update(|k| k.broken = false);
    let actor = system_actor(&t, "operator");
    let id = ids[0];
    env.store
        .write(0, move |tx| {
            usecases::request_retry(tx, &actor, id, Utc::now())
        })
        .await
        .unwrap();
    let o = wait_all(&env.store, &t, &ids, Duration::from_secs(30), |o| {
        o.status == Status::Shipped
    })
    .await;
    assert_eq!(o[0].fulfillment.carrier.as_ref().unwrap().as_str(), "zto");
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
}

/// A stopped order (`stop_shipment`) is not moved by the fulfillment worker from any status, asks
/// no carrier for a waybill, and is not taken for stuck by the watchdogs; once an operator resolves
/// the stop, the worker takes it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_order_is_left_alone_until_an_operator_resolves_the_stop() {
    use orderhub_fulfillment::Step;
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let fleet = fleet::start().await.unwrap();
    let router = Arc::new(CarrierRouter::new(
        fleet.carriers.clone(),
        BreakerConfig::default(),
        HashMap::new(),
    ));
    // Every order counts as stuck at once, should the watchdogs look at it.
    let cfg = FulfillmentConfig {
        not_released_after: Duration::ZERO,
        no_waybill_after: Duration::ZERO,
        ..no_watchdogs()
    };
    let f = Fulfillment::new(
        env.store.clone(),
        fleet.carriers.clone(),
        router,
        Arc::new(ByStockRegionPriority),
        cfg,
    );
    let ids = paid_orders(&env.store, &t, 3).await;
    let actor = system_actor(&t, "test");
    // One stays paid, one is allocated, one released; then the channel stops all three.
    let (a, r) = (ids[1], ids[2]);
    for (id, n) in [(a, 1), (r, 2)] {
        for _ in 0..n {
            assert!(matches!(f.step(&t, id).await, Ok(Step::Moved(_))));
        }
    }
    for id in ids.clone() {
        let actor = actor.clone();
        env.store
            .write(0, move |tx| {
                usecases::raise_exception(
                    tx,
                    &actor,
                    id,
                    "stop_shipment",
                    serde_json::json!({}),
                    Utc::now(),
                )
            })
            .await
            .unwrap();
    }
    let get = |id: OrderId| {
        let (store, t) = (env.store.clone(), t.clone());
        async move {
            store
                .read(move |rd| rd.order_get(&t, id))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let before: Vec<_> = snapshot(&ids, &get).await;
    for id in &ids {
        assert_eq!(f.step(&t, *id).await.unwrap(), Step::Nothing);
    }
    assert_eq!(
        orderhub_fulfillment::watchdog::scan(&f, &t, false).await,
        [("not_released", 0), ("no_waybill", 0), ("no_tracking", 0)]
    );
    assert_eq!(
        snapshot(&ids, &get).await,
        before,
        "nothing moved, nothing raised"
    );
    assert!(
        events_of(&env.store, &t, "waybill.created")
            .await
            .is_empty(),
        "no waybill for a stopped order"
    );
    // Resolved by an operator: the released order ships on the next step.
    let ops = system_actor(&t, "operator");
    env.store
        .write(0, move |tx| {
            usecases::resolve_exception(tx, &ops, r, "stop_shipment", "packed already", Utc::now())
        })
        .await
        .unwrap();
    assert_eq!(f.step(&t, r).await.unwrap(), Step::Moved(Status::Shipped));
    assert_eq!(events_of(&env.store, &t, "waybill.created").await.len(), 1);
}

/// (status, version, exceptions) of each order, in order.
async fn snapshot<F, Fut>(ids: &[OrderId], get: &F) -> Vec<(Status, u64, Vec<String>)>
where
    F: Fn(OrderId) -> Fut,
    Fut: std::future::Future<Output = orderhub_domain::Order>,
{
    let mut v = Vec::new();
    for id in ids {
        let o = get(*id).await;
        v.push((o.status, o.version, o.exceptions));
    }
    v
}

// ---- Real shipment facts, tenants' own carriers, tracking on a schedule, cancelled waybills
// (issue 19).

/// Defines warehouse `GZ` (sender in 广州市, parcels of at most 2 kg) and SKUs `TEE` (1.5 kg)
/// and `MUG` (0.8 kg) with 100 of each in stock.
async fn guangzhou_master_data(store: &Store, t: &TenantId) {
    use orderhub_core::ports::{SenderAddress, SkuRecord, WarehouseRecord};
    let actor = system_actor(t, "master-data");
    store
        .write(0, move |tx| {
            let now = Utc::now();
            let wh = orderhub_domain::ids::WarehouseId::parse("GZ").unwrap();
            orderhub_core::inventory::define_warehouse(
                tx,
                &actor,
                &WarehouseRecord {
                    warehouse_id: wh.clone(),
                    name: "广州仓".into(),
                    priority: 1,
                    regions: vec![],
                    sender: Some(SenderAddress {
                        name: Personal::new("李仓管"),
                        phone: Personal::new("13900001111"),
                        province: "广东省".into(),
                        city: "广州市".into(),
                        district: "白云区".into(),
                        detail: Personal::new("太和镇 8 号"),
                    }),
                    parcel_max_kg: Some("2".parse().unwrap()),
                },
                now,
            )?;
            for (sku, kg) in [("TEE", "1.5"), ("MUG", "0.8")] {
                let sku = Sku::parse(sku).unwrap();
                orderhub_core::inventory::define_sku(
                    tx,
                    &actor,
                    &SkuRecord {
                        sku: sku.clone(),
                        title: sku.to_string(),
                        components: None,
                        weight_kg: Some(kg.parse().unwrap()),
                    },
                    now,
                )?;
                orderhub_core::inventory::receive(tx, &actor, &sku, &wh, 100, None, now)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// A paid order of 2 × TEE and 1 × MUG (3.8 kg).
async fn paid_tee_and_mug(store: &Store, t: &TenantId) -> OrderId {
    let actor = system_actor(t, "test");
    let mut d = draft(&format!("W-{}", Uuid::new_v4().simple()));
    let line = d.lines[0].clone();
    d.lines = vec![
        LineDraft {
            sku: Sku::parse("TEE").unwrap(),
            quantity: 2,
            ..line.clone()
        },
        LineDraft {
            sku: Sku::parse("MUG").unwrap(),
            quantity: 1,
            ..line
        },
    ];
    store
        .write(0, move |tx| {
            let o = match usecases::create_order(tx, &actor, d.clone(), Utc::now())? {
                Created::New(o) | Created::Existing(o) => o,
            };
            let cmd = Command::Pay {
                paid_at: None,
                amount: None,
            };
            usecases::transition(tx, &actor, o.id, &cmd, Utc::now())?;
            Ok(o.id)
        })
        .await
        .unwrap()
}

/// The waybill declares what the master data says: the allocated warehouse's sender, the summed
/// weight of the lines' SKUs and a parcel count from the warehouse's largest parcel — as the
/// carrier's simulator read them from SF's wire format.
async fn the_waybill_carries_the_warehouse_sender_the_summed_weight_and_the_parcel_count(
    backend: &str,
) {
    let Some(env) = open(backend) else { return };
    let t = tenant(&env.store).await;
    guangzhou_master_data(&env.store, &t).await;
    let cfg = FulfillmentConfig {
        default_carrier: CarrierKind::Sf,
        ..no_watchdogs_without_fallback()
    };
    assert!(cfg.fallback_sender.is_none(), "no fixed sender by default");
    let hub = start(&env.store, cfg, HashMap::new(), BreakerConfig::default()).await;
    let id = paid_tee_and_mug(&env.store, &t).await;
    let o = wait_all(&env.store, &t, &[id], Duration::from_secs(30), |o| {
        o.status == Status::Shipped
    })
    .await;
    assert_eq!(
        o[0].fulfillment.warehouse_id.as_ref().unwrap().as_str(),
        "GZ"
    );
    let got = hub.fleet.handles[&CarrierKind::Sf]
        .log
        .waybill(&id.as_uuid().simple().to_string())
        .expect("SF received the waybill request");
    assert_eq!(
        got,
        orderhub_carriers::sim::Received {
            sender_city: "广州市".into(),
            weight_kg: Some("3.8".parse().unwrap()),
            parcels: Some(2),
        }
    );
    let created = events_of(&env.store, &t, "waybill.created").await;
    assert_eq!(
        (
            created[0]["weight_kg"].as_str(),
            created[0]["parcels"].as_u64(),
            created[0]["weight_estimated"].as_bool()
        ),
        (Some("3.8"), Some(2), Some(false))
    );
    let _ = hub.stop.send(true);
    hub.rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waybill_carries_the_warehouse_sender_the_summed_weight_and_the_parcel_count_sqlite() {
    the_waybill_carries_the_warehouse_sender_the_summed_weight_and_the_parcel_count("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waybill_carries_the_warehouse_sender_the_summed_weight_and_the_parcel_count_postgres()
{
    the_waybill_carries_the_warehouse_sender_the_summed_weight_and_the_parcel_count("postgres")
        .await;
}

/// Without a sender for its warehouse (and no simulated fallback), no carrier is asked: the order
/// stays released and the step fails naming the warehouse to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_waybill_is_asked_for_a_warehouse_without_a_sender() {
    use orderhub_fulfillment::Step;
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let fleet = fleet::start().await.unwrap();
    let router = Arc::new(CarrierRouter::new(
        fleet.carriers.clone(),
        BreakerConfig::default(),
        HashMap::new(),
    ));
    let f = Fulfillment::new(
        env.store.clone(),
        fleet.carriers.clone(),
        router,
        Arc::new(ByStockRegionPriority),
        no_watchdogs_without_fallback(),
    );
    let id = paid_orders(&env.store, &t, 1).await[0];
    assert!(matches!(
        f.step(&t, id).await,
        Ok(Step::Moved(Status::Allocated))
    ));
    assert!(matches!(
        f.step(&t, id).await,
        Ok(Step::Moved(Status::Released))
    ));
    let e = f.step(&t, id).await.unwrap_err();
    assert!(
        !e.retryable && e.message.contains("has no sender address"),
        "{e:?}"
    );
    assert_eq!(fleet.handles[&CarrierKind::Zto].stats.snapshot().calls, 0);
}

fn no_watchdogs_without_fallback() -> FulfillmentConfig {
    FulfillmentConfig {
        watch_every: Duration::from_secs(3600),
        ..FulfillmentConfig::default()
    }
}

/// Fulfillment on the fleet without background tasks, and an order of `t` shipped by it (ZTO).
async fn shipped_by_hand(
    env: &orderhub_store::testing::TestStore,
    t: &TenantId,
    cfg: FulfillmentConfig,
) -> (Fulfillment, fleet::Fleet, OrderId) {
    use orderhub_fulfillment::Step;
    let fleet = fleet::start().await.unwrap();
    // Parcels wait for the pickup scan until a test says otherwise.
    for h in fleet.handles.values() {
        h.knobs.update(|k| k.track_step_ms = 0);
    }
    let router = Arc::new(CarrierRouter::new(
        fleet.carriers.clone(),
        BreakerConfig::default(),
        HashMap::new(),
    ));
    let f = Fulfillment::new(
        env.store.clone(),
        fleet.carriers.clone(),
        router,
        Arc::new(ByStockRegionPriority),
        cfg,
    );
    let id = paid_orders(&env.store, t, 1).await[0];
    for _ in 0..3 {
        assert!(matches!(f.step(t, id).await, Ok(Step::Moved(_))));
    }
    (f, fleet, id)
}

async fn raise(store: &Store, t: &TenantId, id: OrderId, code: &'static str) {
    let actor = system_actor(t, "channel");
    store
        .write(0, move |tx| {
            usecases::raise_exception(tx, &actor, id, code, serde_json::json!({}), Utc::now())
        })
        .await
        .unwrap();
}

async fn get(store: &Store, t: &TenantId, id: OrderId) -> orderhub_domain::Order {
    let t = t.clone();
    store
        .read(move |r| r.order_get(&t, id))
        .await
        .unwrap()
        .unwrap()
}

/// After a waybill, a stop (`after_sale` on a shipped order the carrier has not picked up) has
/// the carrier cancel the waybill: at once through `exception.raised`, retried while the carrier
/// fails, recorded once on the order (`waybill_cancelled_at`, `waybill.cancelled`, the audit
/// trail), and the dead tracking number is not polled again.
async fn a_stopped_orders_waybill_is_cancelled_with_the_carrier_once(backend: &str) {
    let Some(env) = open(backend) else { return };
    let t = tenant(&env.store).await;
    let cfg = FulfillmentConfig {
        track: orderhub_fulfillment::TrackSchedule::every(Duration::from_millis(1)),
        ..sim_config()
    };
    let (f, fleet, id) = shipped_by_hand(&env, &t, cfg).await;
    let f = Arc::new(f);
    let zto = fleet.handles[&CarrierKind::Zto].clone();
    let o = get(&env.store, &t, id).await;
    let tracking = o.fulfillment.tracking_no.clone().unwrap();
    assert_eq!(o.status, Status::Shipped);
    // The carrier is down when the stop arrives: the dispatcher retries until it is back.
    zto.knobs.set_error_rate(1.0);
    let rt = EventsRuntime::start(env.store.clone(), events_config(), vec![f.clone()])
        .await
        .unwrap();
    raise(&env.store, &t, id, "after_sale").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(zto.stats.snapshot().cancels, 0);
    assert!(
        zto.stats.snapshot().errors > 1,
        "retried while the carrier failed"
    );
    zto.knobs.set_error_rate(0.0);
    let o = wait_all(&env.store, &t, &[id], Duration::from_secs(30), |o| {
        o.fulfillment.waybill_cancelled_at.is_some()
    })
    .await;
    assert!(zto.log.was_cancelled(&tracking));
    assert_eq!(o[0].status, Status::Shipped);
    let cancelled = events_of(&env.store, &t, "waybill.cancelled").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["cancelled"]["tracking_no"], tracking.as_str());
    assert_eq!(cancelled[0]["cancelled"]["on_order"], true);
    // Once: a repeated stop event, a retry request or a watchdog pass changes nothing.
    let carriers = f.carriers_of(&t).await.unwrap().unwrap();
    assert_eq!(
        f.cancel_waybill(&t, &carriers, &o[0]).await.unwrap(),
        orderhub_fulfillment::Step::Nothing
    );
    assert_eq!(
        f.step(&t, id).await.unwrap(),
        orderhub_fulfillment::Step::Nothing
    );
    let calls = zto.stats.snapshot().calls;
    orderhub_fulfillment::watchdog::scan(&f, &t, true).await;
    assert_eq!(zto.stats.snapshot().cancels, 1);
    assert_eq!(
        zto.stats.snapshot().calls,
        calls,
        "a cancelled waybill is neither cancelled again nor tracked"
    );
    assert_eq!(
        events_of(&env.store, &t, "waybill.cancelled").await.len(),
        1
    );
    // The timeline says who cancelled what, and why.
    let t2 = t.clone();
    let audit = env
        .store
        .read(move |r| r.audit_for_order(&t2, id))
        .await
        .unwrap();
    let step = audit
        .iter()
        .find(|a| a.action == "waybill.cancelled")
        .expect("an audit entry");
    assert_eq!(step.detail["stop"], "after_sale");
    assert_eq!(step.detail["cancelled"]["carrier"], "zto");
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_orders_waybill_is_cancelled_with_the_carrier_once_sqlite() {
    a_stopped_orders_waybill_is_cancelled_with_the_carrier_once("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_orders_waybill_is_cancelled_with_the_carrier_once_postgres() {
    a_stopped_orders_waybill_is_cancelled_with_the_carrier_once("postgres").await;
}

/// The carrier has the parcel already: it refuses the cancellation and the order gets
/// `intercept_parcel` (a person asks the carrier to intercept it); a refusal for another reason
/// is `waybill_cancel_failed`, and the watchdog tries again, which resolves it.
async fn a_refused_cancellation_asks_for_interception_or_a_retry(backend: &str) {
    use orderhub_fulfillment::Step;
    let Some(env) = open(backend) else { return };
    let t = tenant(&env.store).await;
    let cfg = FulfillmentConfig {
        cancel_retry_every: Duration::ZERO,
        ..no_watchdogs()
    };
    let (f, fleet, picked) = shipped_by_hand(&env, &t, cfg.clone()).await;
    let zto = fleet.handles[&CarrierKind::Zto].clone();
    let carriers = f.carriers_of(&t).await.unwrap().unwrap();
    // Picked up (the simulator's scans advance at once), then stopped.
    zto.knobs.update(|k| k.track_step_ms = 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    raise(&env.store, &t, picked, "after_sale").await;
    let o = get(&env.store, &t, picked).await;
    assert_eq!(
        f.cancel_waybill(&t, &carriers, &o).await.unwrap(),
        Step::Nothing
    );
    let o = get(&env.store, &t, picked).await;
    assert!(o.has_exception("intercept_parcel"), "{:?}", o.exceptions);
    assert!(o.fulfillment.waybill_cancelled_at.is_none());
    // Another order, refused for another reason: waybill_cancel_failed, then the retry works.
    zto.knobs.update(|k| k.track_step_ms = 0);
    let id = paid_orders(&env.store, &t, 1).await[0];
    for _ in 0..3 {
        f.step(&t, id).await.unwrap();
    }
    assert_eq!(get(&env.store, &t, id).await.status, Status::Shipped);
    // A refusal that is not a pickup: the carrier is not (no longer) configured for the tenant.
    raise(&env.store, &t, id, "after_sale").await;
    let o = get(&env.store, &t, id).await;
    let none = orderhub_fulfillment::TenantCarriers::new(
        Arc::new(CarrierRouter::new(
            vec![],
            BreakerConfig::default(),
            HashMap::new(),
        )),
        vec![],
        CarrierKind::Zto,
        |_| 1,
    );
    assert_eq!(
        f.cancel_waybill(&t, &none, &o).await.unwrap(),
        Step::Nothing
    );
    let o = get(&env.store, &t, id).await;
    assert!(
        o.has_exception("waybill_cancel_failed"),
        "{:?}",
        o.exceptions
    );
    // The watchdog's retry (every `cancel_retry_every`, here at once after the first sighting)
    // cancels it and resolves the exception.
    orderhub_fulfillment::watchdog::scan(&f, &t, false).await;
    orderhub_fulfillment::watchdog::scan(&f, &t, false).await;
    let o = get(&env.store, &t, id).await;
    assert!(o.fulfillment.waybill_cancelled_at.is_some());
    assert!(
        !o.has_exception("waybill_cancel_failed"),
        "{:?}",
        o.exceptions
    );
    let resolved = events_of(&env.store, &t, "exception.resolved").await;
    assert!(
        resolved
            .iter()
            .any(|e| e["exception"] == "waybill_cancel_failed"),
        "{resolved:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cancellation_asks_for_interception_or_a_retry_sqlite() {
    a_refused_cancellation_asks_for_interception_or_a_retry("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cancellation_asks_for_interception_or_a_retry_postgres() {
    a_refused_cancellation_asks_for_interception_or_a_retry("postgres").await;
}

/// A stop raised while the carrier is issuing the waybill: the shipment is refused, so the new
/// waybill never reaches the order — and is cancelled at once, recorded on the order's trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waybill_issued_while_the_order_was_stopped_is_cancelled() {
    use orderhub_fulfillment::Step;
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let fleet = fleet::start().await.unwrap();
    let router = Arc::new(CarrierRouter::new(
        fleet.carriers.clone(),
        BreakerConfig::default(),
        HashMap::new(),
    ));
    let f = Arc::new(Fulfillment::new(
        env.store.clone(),
        fleet.carriers.clone(),
        router,
        Arc::new(ByStockRegionPriority),
        FulfillmentConfig {
            track: orderhub_fulfillment::TrackSchedule::every(Duration::from_secs(3600)),
            ..sim_config()
        },
    ));
    let id = paid_orders(&env.store, &t, 1).await[0];
    for _ in 0..2 {
        f.step(&t, id).await.unwrap();
    }
    let zto = fleet.handles[&CarrierKind::Zto].clone();
    zto.knobs.set_latency(Duration::from_millis(800));
    let (f2, t2) = (f.clone(), t.clone());
    let stepping = tokio::spawn(async move { f2.step(&t2, id).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    raise(&env.store, &t, id, "stop_shipment").await;
    assert_eq!(stepping.await.unwrap().unwrap(), Step::WaybillCancelled);
    let o = get(&env.store, &t, id).await;
    assert_eq!(o.status, Status::Released);
    assert!(o.fulfillment.tracking_no.is_none());
    assert_eq!(zto.stats.snapshot().cancels, 1);
    let cancelled = events_of(&env.store, &t, "waybill.cancelled").await;
    assert_eq!(cancelled[0]["cancelled"]["on_order"], false);
    // Resolved by an operator, the order gets a new waybill (the number was freed).
    zto.knobs.set_latency(Duration::ZERO);
    let ops = system_actor(&t, "operator");
    env.store
        .write(0, move |tx| {
            usecases::resolve_exception(
                tx,
                &ops,
                id,
                "stop_shipment",
                "buyer confirmed",
                Utc::now(),
            )
        })
        .await
        .unwrap();
    assert_eq!(f.step(&t, id).await.unwrap(), Step::Moved(Status::Shipped));
    let o = get(&env.store, &t, id).await;
    assert!(
        !zto.log
            .was_cancelled(o.fulfillment.tracking_no.as_deref().unwrap())
    );
}

/// Tracking follows the schedule and the carrier's quota: nothing before the first slot, and
/// never more polls in a minute than the quota allows, however many parcels are due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_waits_for_its_slot_and_never_exceeds_the_quota() {
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let fleet = fleet::start().await.unwrap();
    let router = Arc::new(CarrierRouter::new(
        fleet.carriers.clone(),
        BreakerConfig::default(),
        HashMap::new(),
    ));
    let later = FulfillmentConfig {
        track: orderhub_fulfillment::TrackSchedule::default(),
        shared_track_per_minute: 3,
        ..sim_config()
    };
    let f = Fulfillment::new(
        env.store.clone(),
        fleet.carriers.clone(),
        router.clone(),
        Arc::new(ByStockRegionPriority),
        later,
    );
    let ids = paid_orders(&env.store, &t, 5).await;
    for id in &ids {
        for _ in 0..3 {
            f.step(&t, *id).await.unwrap();
        }
    }
    let zto = fleet.handles[&CarrierKind::Zto].clone();
    let after_waybills = zto.stats.snapshot().calls;
    // Just shipped: the first poll is 30 minutes away, however often the watchdog looks.
    for _ in 0..5 {
        orderhub_fulfillment::watchdog::scan(&f, &t, true).await;
    }
    assert_eq!(zto.stats.snapshot().calls, after_waybills);
    // Every parcel due at once (a schedule polling every millisecond): the quota of 3 a minute
    // holds, scan after scan.
    let eager = Fulfillment::new(
        env.store.clone(),
        fleet.carriers.clone(),
        router,
        Arc::new(ByStockRegionPriority),
        FulfillmentConfig {
            track: orderhub_fulfillment::TrackSchedule::every(Duration::from_millis(1)),
            shared_track_per_minute: 3,
            ..sim_config()
        },
    );
    for _ in 0..10 {
        orderhub_fulfillment::watchdog::scan(&eager, &t, true).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(zto.stats.snapshot().calls - after_waybills, 3);
}

/// `--fulfillment carriers`: each tenant's own accounts. A tenant without one gets no automatic
/// step (its orders move by API and WMS); one with an account ships through that account's
/// endpoint and credentials, and a change of the account is picked up.
async fn each_tenant_ships_with_its_own_carrier_accounts(backend: &str) {
    use orderhub_fulfillment::{Step, StoredCarriers};
    let Some(env) = open(backend) else { return };
    let (with, without) = (tenant(&env.store).await, tenant(&env.store).await);
    let fleet = fleet::start().await.unwrap();
    let f = Fulfillment::with_directory(
        env.store.clone(),
        Arc::new(StoredCarriers::new(
            env.store.clone(),
            BreakerConfig::default(),
            orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        )),
        Arc::new(ByStockRegionPriority),
        FulfillmentConfig {
            fallback_sender: Some(orderhub_fulfillment::simulated_sender()),
            ..no_watchdogs_without_fallback()
        },
    );
    let lone = paid_orders(&env.store, &without, 1).await[0];
    assert_eq!(f.step(&without, lone).await.unwrap(), Step::Nothing);
    assert_eq!(get(&env.store, &without, lone).await.status, Status::Paid);
    // An account with YTO, pointing at its simulator with the simulator's credentials.
    let put = |kind: CarrierKind, enabled: bool| {
        let (cfg, _) = orderhub_carriers::sim::fleet::credentials(kind);
        let row = orderhub_store::CarrierAccountRow {
            tenant_id: with.clone(),
            carrier: kind.code().into(),
            base_url: fleet.urls[&kind].clone(),
            app_key: cfg.app_key.clone(),
            secret: cfg.secret.expose().into(),
            customer_code: cfg.customer_code.clone(),
            access_token: cfg.access_token.as_ref().map(|s| s.expose().to_owned()),
            customer_password: cfg
                .customer_password
                .as_ref()
                .map(|s| s.expose().to_owned()),
            enabled,
            priority: 1,
            track_per_minute: 60,
            version: 0,
            updated_at: Utc::now(),
        };
        let store = env.store.clone();
        async move {
            store
                .write(0, move |tx| Ok(tx.carrier_account_put(&row)?))
                .await
                .unwrap()
        }
    };
    put(CarrierKind::Yto, true).await;
    let id = paid_orders(&env.store, &with, 1).await[0];
    for _ in 0..3 {
        f.step(&with, id).await.unwrap();
    }
    let o = get(&env.store, &with, id).await;
    assert_eq!(
        (o.status, o.fulfillment.carrier.as_ref().unwrap().as_str()),
        (Status::Shipped, "yto")
    );
    assert_eq!(
        fleet.handles[&CarrierKind::Yto].stats.snapshot().waybills,
        1
    );
    // Disabled (a change of the account, read again once forgotten): no more steps.
    put(CarrierKind::Yto, false).await;
    f.directory.forget(&with);
    let next = paid_orders(&env.store, &with, 1).await[0];
    assert_eq!(f.step(&with, next).await.unwrap(), Step::Nothing);
    assert_eq!(get(&env.store, &with, next).await.status, Status::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_ships_with_its_own_carrier_accounts_sqlite() {
    each_tenant_ships_with_its_own_carrier_accounts("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_ships_with_its_own_carrier_accounts_postgres() {
    each_tenant_ships_with_its_own_carrier_accounts("postgres").await;
}

/// The watchdog reads the time from the fulfillment's clock: with a `ManualClock`, paid orders
/// are not taken for stuck until the test moves the clock past `not_released_after` (30 minutes
/// here) — no sleep, and no zero threshold that would flag everything at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_flags_paid_orders_once_the_test_clock_passes_its_threshold() {
    use orderhub_core::ports::{Clock, ManualClock};
    let env = open("sqlite").unwrap();
    let t = tenant(&env.store).await;
    let fleet = fleet::start().await.unwrap();
    let router = Arc::new(CarrierRouter::new(
        fleet.carriers.clone(),
        BreakerConfig::default(),
        HashMap::new(),
    ));
    let cfg = FulfillmentConfig {
        not_released_after: Duration::from_secs(30 * 60),
        no_waybill_after: Duration::from_secs(30 * 60),
        ..no_watchdogs()
    };
    let ids = paid_orders(&env.store, &t, 2).await;
    let clock = Arc::new(ManualClock::new(Utc::now() + chrono::Duration::seconds(1)));
    let f = Fulfillment::new(
        env.store.clone(),
        fleet.carriers.clone(),
        router,
        Arc::new(ByStockRegionPriority),
        cfg,
    )
    .with_clock(clock.clone());
    let scan = || orderhub_fulfillment::watchdog::scan(&f, &t, false);
    assert_eq!(
        scan().await,
        [("not_released", 0), ("no_waybill", 0), ("no_tracking", 0)]
    );
    clock.advance(chrono::Duration::minutes(29));
    assert_eq!(scan().await[0], ("not_released", 0), "29 minutes: not yet");
    clock.advance(chrono::Duration::minutes(2));
    assert_eq!(scan().await[0], ("not_released", 2), "31 minutes: both");
    let (store, t2) = (env.store.clone(), t.clone());
    let orders = store
        .read(move |r| {
            ids.iter()
                .map(|id| r.order_get(&t2, *id).map(|o| o.unwrap()))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    for o in &orders {
        assert!(o.has_exception("not_released"), "{:?}", o.exceptions);
        assert_eq!(o.updated_at, clock.now(), "raised at the test clock's time");
    }
}

/// `ship_by_at_risk` is raised before the deadline, not after: an order promised to ship in ten
/// hours is left alone until less than the lead (four hours) is left, raised once with its
/// deadline and the minutes left, kept while the order is held, and resolved by the move that
/// takes it off the road to shipment (here its cancellation). An order without a deadline is
/// never raised. With the test clock: no sleep.
async fn ship_by_at_risk_is_raised_before_the_deadline_and_resolved_by_the_move(backend: &str) {
    use orderhub_core::ports::{Clock, ManualClock};
    use orderhub_core::usecases::SHIP_BY_AT_RISK;
    let Some(env) = open(backend) else { return };
    let t = tenant(&env.store).await;
    let start = Utc::now() + chrono::Duration::seconds(1);
    let due = (start + chrono::Duration::hours(10))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    let mut ids = Vec::new();
    for promised in [Some(due), None] {
        let actor = system_actor(&t, "test");
        let mut d = draft(&format!("S-{}", Uuid::new_v4().simple()));
        d.promised_ship_by = promised;
        let id = env
            .store
            .write(0, move |tx| {
                let o = match usecases::create_order(tx, &actor, d.clone(), Utc::now())? {
                    Created::New(o) | Created::Existing(o) => o,
                };
                let pay = Command::Pay {
                    paid_at: None,
                    amount: None,
                };
                usecases::transition(tx, &actor, o.id, &pay, Utc::now())?;
                Ok(o.id)
            })
            .await
            .unwrap();
        ids.push(id);
    }
    let (promised, open_ended) = (ids[0], ids[1]);
    let fleet = fleet::start().await.unwrap();
    let router = Arc::new(CarrierRouter::new(
        fleet.carriers.clone(),
        BreakerConfig::default(),
        HashMap::new(),
    ));
    let clock = Arc::new(ManualClock::new(start));
    let f = Fulfillment::new(
        env.store.clone(),
        fleet.carriers.clone(),
        router,
        Arc::new(ByStockRegionPriority),
        no_watchdogs(),
    )
    .with_clock(clock.clone());
    assert_eq!(f.cfg.ship_by_risk_lead, Duration::from_secs(4 * 3600));
    let get = |id: OrderId| {
        let (store, t) = (env.store.clone(), t.clone());
        async move {
            store
                .read(move |r| r.order_get(&t, id))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let scan = || orderhub_fulfillment::watchdog::deadlines(&f, &t);
    assert_eq!(scan().await, 0, "ten hours left");
    clock.advance(chrono::Duration::hours(5));
    assert_eq!(scan().await, 0, "five hours left: more than the lead");
    assert!(!get(promised).await.has_exception(SHIP_BY_AT_RISK));
    clock.advance(chrono::Duration::minutes(61));
    assert_eq!(scan().await, 1, "three hours 59 minutes left");
    let o = get(promised).await;
    assert!(o.has_exception(SHIP_BY_AT_RISK), "{:?}", o.exceptions);
    assert!(!get(open_ended).await.has_exception(SHIP_BY_AT_RISK));
    let raised = events_of(&env.store, &t, "exception.raised").await;
    let ours: Vec<_> = raised
        .iter()
        .filter(|e| e["exception"] == SHIP_BY_AT_RISK)
        .collect();
    assert_eq!(ours.len(), 1, "{raised:?}");
    // A second scan raises nothing new.
    let version = o.version;
    assert_eq!(scan().await, 1);
    assert_eq!(get(promised).await.version, version);
    // Held: still to ship, still at risk.
    let actor = system_actor(&t, "test");
    let hold = Command::Hold {
        reason: "check the address".into(),
    };
    let a2 = actor.clone();
    env.store
        .write(0, move |tx| {
            usecases::transition(tx, &a2, promised, &hold, Utc::now())
        })
        .await
        .unwrap();
    assert!(get(promised).await.has_exception(SHIP_BY_AT_RISK));
    // An operator moves the deadline two days on: the next scan resolves it; moved back within
    // the lead, the next scan raises it again.
    let edit_ship_by = |hours: i64| {
        let (store, a) = (env.store.clone(), actor.clone());
        let at = (clock.now() + chrono::Duration::hours(hours)).fixed_offset();
        async move {
            store
                .write(0, move |tx| {
                    let edit = orderhub_domain::edit::OrderEdit {
                        promised_ship_by: Some(Some(at)),
                        ..Default::default()
                    };
                    orderhub_core::edits::request_edit(
                        tx,
                        &a,
                        promised,
                        edit,
                        "buyer agreed",
                        Utc::now(),
                    )
                })
                .await
                .unwrap()
        }
    };
    let r = edit_ship_by(48).await;
    assert!(r.order.is_some(), "applied at once: {:?}", r.edit.state);
    assert_eq!(scan().await, 0);
    assert!(!get(promised).await.has_exception(SHIP_BY_AT_RISK));
    let resolved = events_of(&env.store, &t, "exception.resolved").await;
    assert!(
        resolved.iter().any(|e| e["exception"] == SHIP_BY_AT_RISK),
        "{resolved:?}"
    );
    edit_ship_by(2).await;
    assert_eq!(scan().await, 1);
    assert!(get(promised).await.has_exception(SHIP_BY_AT_RISK));
    // Cancelled: no longer to ship; the move resolves it.
    let cancel = Command::Cancel {
        reason: "buyer cancelled".into(),
    };
    env.store
        .write(0, move |tx| {
            usecases::transition(tx, &actor, promised, &cancel, Utc::now())
        })
        .await
        .unwrap();
    let o = get(promised).await;
    assert_eq!(o.status, Status::Cancelled);
    assert!(!o.has_exception(SHIP_BY_AT_RISK), "{:?}", o.exceptions);
    assert_eq!(scan().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ship_by_at_risk_is_raised_before_the_deadline_and_resolved_by_the_move_sqlite() {
    ship_by_at_risk_is_raised_before_the_deadline_and_resolved_by_the_move("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ship_by_at_risk_is_raised_before_the_deadline_and_resolved_by_the_move_postgres() {
    ship_by_at_risk_is_raised_before_the_deadline_and_resolved_by_the_move("postgres").await;
}

/// Issue 26: delivered orders complete by themselves once their channel's window has passed, at
/// the fulfillment's clock (a `ManualClock`: no sleep): a Taobao window of three days here, the
/// default week for other channels. An order with an open exception, or with an after-sales case
/// still open, is left for a person; one delivered later completes later. Each completion is the
/// ordinary `complete` move.
async fn delivered_orders_complete_after_their_channels_window(backend: &str) {
    use orderhub_core::ports::ManualClock;
    use orderhub_fulfillment::Step;
    use orderhub_fulfillment::completion::{Completion, complete_delivered};
    let Some(env) = open(backend) else { return };
    let t = tenant(&env.store).await;
    let cfg = FulfillmentConfig {
        completion: Completion {
            by_channel: HashMap::from([(
                "taobao".to_owned(),
                Some(Duration::from_secs(3 * 86_400)),
            )]),
            ..Completion::default()
        },
        ..no_watchdogs()
    };
    let (f, _fleet, first) = shipped_by_hand(&env, &t, cfg).await;
    let mut ids = vec![first];
    for id in paid_orders(&env.store, &t, 3).await {
        for _ in 0..3 {
            assert!(matches!(f.step(&t, id).await, Ok(Step::Moved(_))));
        }
        ids.push(id);
    }
    let start = Utc::now() + chrono::Duration::seconds(1);
    let deliver = |id: OrderId, at: chrono::DateTime<Utc>| {
        let (store, actor) = (env.store.clone(), system_actor(&t, "carrier"));
        async move {
            store
                .write(0, move |tx| {
                    usecases::transition(tx, &actor, id, &Command::Deliver, at)
                })
                .await
                .unwrap();
        }
    };
    let (a, held, later, returning) = (ids[0], ids[1], ids[2], ids[3]);
    deliver(a, start).await;
    deliver(held, start).await;
    deliver(later, start + chrono::Duration::days(2)).await;
    deliver(returning, start).await;
    raise(&env.store, &t, held, "writeback_failed").await;
    // An operator opens a return on the fourth: no exception, but a case still open.
    let op = system_actor(&t, "operator");
    env.store
        .write(0, move |tx| {
            let input = orderhub_core::after_sales::OpenCase {
                kind: orderhub_domain::after_sales::CaseKind::ReturnAndRefund,
                lines: vec![orderhub_domain::after_sales::LineClaim {
                    line_id: 1,
                    quantity: 1,
                    amount: None,
                }],
                reason: "尺码不合适".into(),
            };
            orderhub_core::after_sales::open(tx, &op, returning, &input, Utc::now()).map(|_| ())
        })
        .await
        .unwrap();
    assert!(get(&env.store, &t, returning).await.exceptions.is_empty());
    let clock = Arc::new(ManualClock::new(start + chrono::Duration::days(2)));
    let f = f.with_clock(clock.clone());
    let status = |id| {
        let (store, t) = (env.store.clone(), t.clone());
        async move { get(&store, &t, id).await.status }
    };
    clock.advance(chrono::Duration::hours(23));
    assert_eq!(complete_delivered(&f, &t).await, 0, "two days and 23 hours");
    clock.advance(chrono::Duration::minutes(61));
    assert_eq!(
        complete_delivered(&f, &t).await,
        1,
        "three days after delivery"
    );
    assert_eq!(status(a).await, Status::Completed);
    assert_eq!(
        status(held).await,
        Status::Delivered,
        "its exception waits for a person"
    );
    assert_eq!(status(later).await, Status::Delivered);
    assert_eq!(
        status(returning).await,
        Status::Delivered,
        "its return is still open"
    );
    assert_eq!(complete_delivered(&f, &t).await, 0, "nothing twice");
    clock.advance(chrono::Duration::days(2));
    assert_eq!(complete_delivered(&f, &t).await, 1);
    assert_eq!(status(later).await, Status::Completed);
    let completed = events_of(
        &env.store,
        &t,
        orderhub_domain::event_types::ORDER_COMPLETED,
    )
    .await;
    assert_eq!(completed.len(), 2, "{completed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_orders_complete_after_their_channels_window_sqlite() {
    delivered_orders_complete_after_their_channels_window("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_orders_complete_after_their_channels_window_postgres() {
    delivered_orders_complete_after_their_channels_window("postgres").await;
}

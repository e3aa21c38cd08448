//! Taobao's message service (TMC) against the Taobao simulator speaking it, on both stores: a
//! `CONNECT` with a wrong sign is refused in the protocol; a client that read a message and went
//! away before storing it (a crash) leaves it unconfirmed, and the relay takes it when it comes
//! again; each message is confirmed once stored, however often it came (one kept copy, one order
//! per trade); a seller no shop here is gets `Failed`; after a cut the relay signs in again and
//! takes what came meanwhile; a burst beyond what it takes at once is confirmed whole.

use super::{creds, orders_of, shop, until};
use futures::{SinkExt, StreamExt};
use orderhub_channels::ChannelKind;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::taobao::tmc::{self, message_type};
use orderhub_store::testing::open;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const NICK: &str = "模拟旗舰店";
/// The seller's user id: the id its shop is configured with here.
const SELLER: i64 = 2_200_000_000_001;
const SHOP: &str = "2200000000001";
const TOPIC: &str = "taobao_trade_TradeBuyerPay";

type Raw =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Signs in as the SDK does with `secret`; the service's answer.
async fn sign_in(ws: &str, secret: &str) -> (Raw, tmc::Frame) {
    let (mut raw, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let hello = tmc::connect_frame(&creds().app_key, secret, tmc::GROUP, now);
    raw.send(Message::Binary(tmc::encode(&hello).into()))
        .await
        .unwrap();
    let ack = next_frame(&mut raw).await;
    assert_eq!(ack.message_type, message_type::CONNECTACK);
    assert_eq!(ack.flag, hello.flag);
    (raw, ack)
}

async fn next_frame(raw: &mut Raw) -> tmc::Frame {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), raw.next())
            .await
            .expect("a frame within 10 s")
            .expect("the connection is open")
            .unwrap();
        if let Message::Binary(b) = m {
            return tmc::decode(&b).unwrap();
        }
    }
}

async fn kept(store: &orderhub_store::Store) -> usize {
    let kept = store
        .read(|r| r.channel_messages(None, Some("processed"), None, 100, None))
        .await
        .unwrap();
    kept.iter().filter(|m| m.shop_id == SHOP).count()
}

async fn taobao_messages_arrive_over_tmc(backend: &str) {
    let Some(env) = open(backend) else {
        eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here");
        return;
    };
    let kind = ChannelKind::Taobao;
    let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 3, 9))
        .await
        .unwrap();
    let ws = tmc::service_url(&url);
    // A wrong sign: refused in the protocol, with a code and a phrase, and never given a token.
    let (_, refused) = sign_in(&ws, "not-the-secret").await;
    assert!(refused.is_error() && refused.token.is_none(), "{refused:?}");
    assert_eq!(handle.tmc_stats().refused, 1);
    // A crash before storing: a client signs in, reads the message and goes away unconfirmed.
    let trades = handle.orders();
    handle.tmc_publish(TOPIC, SELLER, NICK, &trades[0].external_order_id);
    let (mut crashing, ack) = sign_in(&ws, &creds().secret).await;
    assert!(!ack.is_error() && ack.token.is_some(), "{ack:?}");
    let read = next_frame(&mut crashing).await;
    assert_eq!(read.text("topic"), Some(TOPIC));
    drop(crashing);
    assert_eq!(handle.tmc_unconfirmed(), 1);
    assert_eq!(handle.tmc_stats().confirmed, 0);
    // Every unconfirmed message is sent again at the simulator's next tick (20 ms): the relay
    // sees each many times.
    handle.tmc_redeliver_after(Duration::ZERO);
    // The shop is configured with its seller's user id (what the message names it by).
    let mut row = shop(&env.store, kind, &url).await;
    row.shop_id = SHOP.into();
    let r = row.clone();
    env.store
        .write(0, move |tx| Ok(tx.channel_shop_put(&r)?))
        .await
        .unwrap();
    let hooks = orderhub_intake::Webhooks::default();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let processor = tokio::spawn(orderhub_intake::process::run(
        env.store.clone(),
        hooks.clone(),
        rx.clone(),
    ));
    let relay = tokio::spawn(orderhub_intake::tmc::run(
        env.store.clone(),
        hooks.clone(),
        rx,
    ));
    for o in &trades {
        handle.tmc_publish(TOPIC, SELLER, NICK, &o.external_order_id);
    }
    handle.tmc_publish(TOPIC, 2_200_000_000_999, "别家店", "3900000000000000999");
    let t = row.tenant_id.clone();
    until("three orders, four messages kept and confirmed", || async {
        let s = handle.tmc_stats();
        orders_of(&env.store, &t).await == 3
            && kept(&env.store).await == 4
            && s.confirmed == 4
            && s.failed >= 1
    })
    .await;
    let s = handle.tmc_stats();
    // Sent more often than taken: the duplicates were deduplicated (one kept copy per id).
    assert!(s.sent > 4 && s.redelivered > 0, "{s:?}");
    assert!(s.pull_requests >= 1, "{s:?}");
    // Only the unknown seller's message is left, answered `Failed` and sent again.
    assert_eq!(handle.tmc_unconfirmed(), 1);
    // A cut: the relay signs in again and takes what was published meanwhile.
    let connections = s.connections;
    handle.tmc_drop_connections();
    let next = handle.new_order(|_| {}).expect("nothing offered");
    handle.tmc_publish(TOPIC, SELLER, NICK, &next.external_order_id);
    until("the fourth order after the cut", || async {
        orders_of(&env.store, &t).await == 4 && handle.tmc_stats().confirmed == 5
    })
    .await;
    let s = handle.tmc_stats();
    assert!(s.connections > connections, "{s:?}");
    assert_eq!((s.confirmed, s.refused), (5, 1), "{s:?}");
    assert_eq!(kept(&env.store).await, 5);
    // A burst larger than the messages the relay takes at once (a backlog after an outage):
    // every one confirmed, still one order per trade.
    let began = std::time::Instant::now();
    for i in 0..200 {
        let trade = &trades[i % trades.len()];
        handle.tmc_publish(TOPIC, SELLER, NICK, &trade.external_order_id);
    }
    until("the burst confirmed", || async {
        handle.tmc_stats().confirmed == 205
    })
    .await;
    eprintln!(
        "TMC relay ({backend}): 200 messages stored and confirmed in {} ms",
        began.elapsed().as_millis()
    );
    assert_eq!(orders_of(&env.store, &t).await, 4);
    drop(stop);
    for task in [processor, relay] {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("returns once its stop sender is gone")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taobao_messages_arrive_over_tmc_sqlite() {
    taobao_messages_arrive_over_tmc("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taobao_messages_arrive_over_tmc_postgres() {
    taobao_messages_arrive_over_tmc("postgres").await;
}

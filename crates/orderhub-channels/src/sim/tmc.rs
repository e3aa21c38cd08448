//! The simulator's side of Taobao's message service (`crate::taobao::tmc`): a WebSocket at
//! `/tmc` speaking the SDKs' binary framing. It waits for the client's `CONNECT`, refuses a
//! wrong app key or sign, or a clock off by more than [`CLOCK_TOLERANCE`], with a `CONNECTACK`
//! carrying a status code and phrase (then closes); otherwise answers with the connection's
//! token. It pushes each published message as a `SEND` frame, sends it again while it is neither
//! confirmed nor answered failed ([`Tmc::redeliver_after`]), takes `Confirm`, `Failed` and
//! `PullRequest`, and pings. **Assumed** (no public source): the tolerance, the refusal's code
//! (403), the redelivery delay, the path, and that a `Failed` message is sent again after the
//! same delay (TheNorthMemory/tmc.js documents the failure as asking the service to resend).

use super::Engine;
use crate::taobao::tmc::{self, Frame, Value, kind, message_type};
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How far the client's `timestamp` may be from the simulator's clock.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(600);
/// The status code of a refused `CONNECT` (**assumed**).
pub const REFUSED_CODE: i32 = 403;

/// What the message service did, as a test reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TmcStats {
    pub connections: u64,
    /// `CONNECT`s refused (wrong app key, sign or clock).
    pub refused: u64,
    /// Frames sent, first deliveries and redeliveries.
    pub sent: u64,
    pub redelivered: u64,
    pub confirmed: u64,
    /// `Failed` answers (each message is sent again after them).
    pub failed: u64,
    pub pull_requests: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    sent: AtomicU64,
    redelivered: AtomicU64,
    confirmed: AtomicU64,
    failed: AtomicU64,
    pull_requests: AtomicU64,
}

#[derive(Default)]
struct Inner {
    next_id: i64,
    queue: VecDeque<(i64, Frame)>,
    /// Sent and not yet confirmed: the frame and when it was last sent.
    unconfirmed: BTreeMap<i64, (Frame, Instant)>,
}

pub(crate) struct Tmc {
    inner: Mutex<Inner>,
    counters: Counters,
    /// Bumped to close every open connection.
    generation: AtomicU64,
    redeliver_ms: AtomicU64,
}

impl Default for Tmc {
    fn default() -> Tmc {
        Tmc {
            inner: Mutex::default(),
            counters: Counters::default(),
            generation: AtomicU64::new(0),
            redeliver_ms: AtomicU64::new(1000),
        }
    }
}

impl Tmc {
    pub(crate) fn stats(&self) -> TmcStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TmcStats {
            connections: l(&c.connections),
            refused: l(&c.refused),
            sent: l(&c.sent),
            redelivered: l(&c.redelivered),
            confirmed: l(&c.confirmed),
            failed: l(&c.failed),
            pull_requests: l(&c.pull_requests),
        }
    }

    /// Queues a message of `topic` (`taobao_trade_TradeBuyerPay`, …) about trade `tid` of the
    /// seller `user_id` (`nick`); returns its id.
    pub(crate) fn publish(&self, topic: &str, user_id: i64, nick: &str, tid: &str) -> i64 {
        let mut i = self.inner.lock();
        i.next_id += 1;
        let id = 2_000_000_000 + i.next_id;
        let now = chrono::Utc::now().timestamp_millis();
        // The content's fields as the legacy NotifyTrade names them (SOURCES.md § Taobao).
        let tid_json = tid.parse::<u64>().map_or_else(|_| json!(tid), |n| json!(n));
        let content = json!({
            "tid": tid_json,
            "status": topic.trim_start_matches("taobao_trade_"),
            "seller_nick": nick,
        })
        .to_string();
        let frame = Frame::new(message_type::SEND)
            .with("id", Value::Int64(id))
            .with("topic", Value::Text(topic.into()))
            .with("content", Value::Text(content))
            .with("time", Value::Date(now))
            .with("nick", Value::Text(nick.into()))
            .with("userid", Value::Int64(user_id))
            .with("outtime", Value::Date(now));
        i.queue.push_back((id, frame));
        id
    }

    pub(crate) fn drop_connections(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn set_redeliver_after(&self, d: Duration) {
        self.redeliver_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Messages published and not yet confirmed.
    pub(crate) fn unconfirmed(&self) -> usize {
        let i = self.inner.lock();
        i.queue.len() + i.unconfirmed.len()
    }

    /// The frames to send now: queued ones, and unconfirmed ones sent too long ago.
    fn due(&self) -> Vec<Frame> {
        let after = Duration::from_millis(self.redeliver_ms.load(Ordering::Relaxed));
        let now = Instant::now();
        let mut i = self.inner.lock();
        let mut out = Vec::new();
        for (frame, at) in i.unconfirmed.values_mut() {
            if now.duration_since(*at) >= after {
                *at = now;
                out.push(frame.clone());
                self.counters.redelivered.fetch_add(1, Ordering::Relaxed);
            }
        }
        while let Some((id, frame)) = i.queue.pop_front() {
            out.push(frame.clone());
            i.unconfirmed.insert(id, (frame, now));
        }
        out
    }

    /// A client frame on an open connection (its token checked by the caller).
    fn answered(&self, f: &Frame) {
        let c = &self.counters;
        let id = tmc::message_id(f);
        match f.kind().and_then(|k| i8::try_from(k).ok()) {
            Some(kind::PULL_REQUEST) => {
                c.pull_requests.fetch_add(1, Ordering::Relaxed);
            }
            Some(kind::CONFIRM)
                if id.is_some_and(|id| self.inner.lock().unconfirmed.remove(&id).is_some()) =>
            {
                c.confirmed.fetch_add(1, Ordering::Relaxed);
            }
            Some(kind::FAILED) => {
                // Sent again once the redelivery delay has passed from now.
                let mut i = self.inner.lock();
                if let Some((_, at)) = id.and_then(|id| i.unconfirmed.get_mut(&id)) {
                    *at = Instant::now();
                    c.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    /// Checks a `CONNECT`: the app key, the sign over `app_key, group_name, timestamp` and the
    /// clock.
    fn admits(&self, f: &Frame, creds: &crate::ShopCredentials) -> bool {
        let (Some(app_key), Some(ts), Some(given)) =
            (f.text("app_key"), f.text("timestamp"), f.text("sign"))
        else {
            return false;
        };
        let group = f.text("group_name").unwrap_or_default();
        let want = tmc::sign(app_key, group, ts, &creds.secret);
        let skew = ts
            .parse::<i64>()
            .map(|ms| (chrono::Utc::now().timestamp_millis() - ms).unsigned_abs())
            .unwrap_or(u64::MAX);
        app_key == creds.app_key
            && crate::sign::hex_eq(&want, given)
            && skew <= CLOCK_TOLERANCE.as_millis() as u64
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Publish {
    /// `taobao_trade_TradeBuyerPay` unless given.
    #[serde(default)]
    topic: Option<String>,
    /// The seller's user id (the id of a Taobao shop here).
    user_id: i64,
    /// The seller's nick.
    nick: String,
    /// The trade's `tid`; unless given, one message per order the simulator holds.
    #[serde(default)]
    tid: Option<String>,
}

/// `POST /_sim/tmc {"user_id": 2200000000001, "nick": "模拟旗舰店", "topic"?, "tid"?}`: queues messages for the connected
/// clients (one per order held unless `tid` names one); answers their ids.
pub(super) async fn post_publish(
    State(e): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Response {
    if e.kind != crate::ChannelKind::Taobao {
        return StatusCode::NOT_FOUND.into_response();
    }
    let p: Publish = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(err) => {
            return (StatusCode::BAD_REQUEST, format!("invalid message: {err}")).into_response();
        }
    };
    let topic = p
        .topic
        .unwrap_or_else(|| "taobao_trade_TradeBuyerPay".into());
    let tids: Vec<String> = match p.tid {
        Some(t) => vec![t],
        None => e
            .orders
            .lock()
            .list
            .iter()
            .map(|o| o.external_order_id.clone())
            .collect(),
    };
    let ids: Vec<i64> = tids
        .iter()
        .map(|t| e.tmc.publish(&topic, p.user_id, &p.nick, t))
        .collect();
    axum::Json(json!({"queued": ids})).into_response()
}

pub(super) async fn connect(State(e): State<Arc<Engine>>, ws: WebSocketUpgrade) -> Response {
    if e.kind != crate::ChannelKind::Taobao {
        return StatusCode::NOT_FOUND.into_response();
    }
    ws.max_message_size(tmc::FRAME_BYTES_MAX)
        .on_upgrade(move |socket| session(e, socket))
}

/// The `CONNECT` and its answer; the connection's token when it is admitted.
async fn handshake(e: &Engine, socket: &mut WebSocket) -> Option<String> {
    let first = tokio::time::timeout(Duration::from_secs(10), socket.recv()).await;
    let Ok(Some(Ok(Message::Binary(b)))) = first else {
        return None;
    };
    let f = tmc::decode(&b).ok()?;
    if f.message_type != message_type::CONNECT {
        return None;
    }
    let mut ack = Frame::new(message_type::CONNECTACK);
    ack.flag = f.flag;
    let token = if e.tmc.admits(&f, &e.settings.creds) {
        e.tmc.counters.connections.fetch_add(1, Ordering::Relaxed);
        let token = format!("sim-{:016x}", rand::random::<u64>());
        ack.token = Some(token.clone());
        Some(token)
    } else {
        e.tmc.counters.refused.fetch_add(1, Ordering::Relaxed);
        ack.status_code = REFUSED_CODE;
        ack.status_phrase = Some("invalid sign".into());
        None
    };
    let sent = socket.send(Message::Binary(tmc::encode(&ack).into())).await;
    if token.is_none() || sent.is_err() {
        let _ = socket.send(Message::Close(None)).await;
        return None;
    }
    token
}

async fn session(e: Arc<Engine>, mut socket: WebSocket) {
    let generation = e.tmc.generation.load(Ordering::SeqCst);
    let Some(token) = handshake(&e, &mut socket).await else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut ping = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Binary(b))) => {
                    // A frame without this connection's token is not this client's.
                    if let Ok(f) = tmc::decode(&b)
                        && f.message_type == message_type::SEND
                        && f.token.as_deref() == Some(token.as_str())
                    {
                        e.tmc.answered(&f);
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_))) => {}
                _ => return,
            },
            _ = tick.tick() => {
                if e.tmc.generation.load(Ordering::SeqCst) != generation {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                for mut frame in e.tmc.due() {
                    frame.token = Some(token.clone());
                    e.tmc.counters.sent.fetch_add(1, Ordering::Relaxed);
                    if socket.send(Message::Binary(tmc::encode(&frame).into())).await.is_err() {
                        return;
                    }
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

//! The simulator's side of Pinduoduo's message service (`crate::pdd::pmc`): a WebSocket at
//! `/message/{client_id}/{ms}/{sign}` that refuses a wrong sign or a clock off by more than
//! [`CLOCK_TOLERANCE`], sends each published message as a `Common` frame, sends it again while
//! it is not acknowledged ([`Pmc::redeliver_after`]), takes `Ack`, `Fail` and `HeartBeat`
//! frames, and sends its own heartbeats. **Assumed** (no public source): the tolerance, the
//! redelivery delay and that a `Fail` is not sent again.

use super::Engine;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How far the client's clock in the path may be from the simulator's.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(600);

/// What the message service did, as a test reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PmcStats {
    pub connections: u64,
    /// Connections refused (wrong sign, client id or clock).
    pub refused: u64,
    /// Frames sent, first deliveries and redeliveries.
    pub sent: u64,
    pub redelivered: u64,
    pub acked: u64,
    pub failed: u64,
    pub heartbeats_received: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    sent: AtomicU64,
    redelivered: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    heartbeats_received: AtomicU64,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    queue: VecDeque<(u64, Value)>,
    /// Sent and not yet answered: the frame and when it was last sent.
    unacked: BTreeMap<u64, (Value, Instant)>,
}

pub(crate) struct Pmc {
    inner: Mutex<Inner>,
    counters: Counters,
    /// Bumped to close every open connection.
    generation: AtomicU64,
    redeliver_ms: AtomicU64,
}

impl Default for Pmc {
    fn default() -> Pmc {
        Pmc {
            inner: Mutex::default(),
            counters: Counters::default(),
            generation: AtomicU64::new(0),
            redeliver_ms: AtomicU64::new(1000),
        }
    }
}

impl Pmc {
    pub(crate) fn stats(&self) -> PmcStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PmcStats {
            connections: l(&c.connections),
            refused: l(&c.refused),
            sent: l(&c.sent),
            redelivered: l(&c.redelivered),
            acked: l(&c.acked),
            failed: l(&c.failed),
            heartbeats_received: l(&c.heartbeats_received),
        }
    }

    /// Queues a message of `kind` (`pdd_trade_TradeConfirmed`, …) about order `tid` of mall
    /// `mall_id`; returns its id.
    pub(crate) fn publish(&self, kind: &str, mall_id: i64, tid: &str) -> u64 {
        let mut i = self.inner.lock();
        i.next_id += 1;
        let id = 7_000_000 + i.next_id;
        let now = chrono::Utc::now().timestamp_millis();
        let content = json!({"mall_id": mall_id, "tid": tid}).to_string();
        let frame = json!({"id": id, "commandType": "Common", "time": now, "sendTime": now,
            "message": {"type": kind, "mallID": mall_id, "content": content}});
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

    pub(crate) fn unanswered(&self) -> usize {
        let i = self.inner.lock();
        i.queue.len() + i.unacked.len()
    }

    /// The frames to send now: queued ones, and unanswered ones sent too long ago.
    fn due(&self) -> Vec<Value> {
        let after = Duration::from_millis(self.redeliver_ms.load(Ordering::Relaxed));
        let now = Instant::now();
        let mut i = self.inner.lock();
        let mut out = Vec::new();
        for (_, (frame, at)) in i.unacked.iter_mut() {
            if now.duration_since(*at) >= after {
                *at = now;
                out.push(frame.clone());
                self.counters.redelivered.fetch_add(1, Ordering::Relaxed);
            }
        }
        while let Some((id, frame)) = i.queue.pop_front() {
            out.push(frame.clone());
            i.unacked.insert(id, (frame, now));
        }
        out
    }

    fn answered(&self, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let c = &self.counters;
        match v["commandType"].as_str() {
            Some("HeartBeat") => {
                c.heartbeats_received.fetch_add(1, Ordering::Relaxed);
            }
            Some(kind @ ("Ack" | "Fail")) => {
                let id = v["id"].as_u64().or_else(|| v["id"].as_str()?.parse().ok());
                if id.is_some_and(|id| self.inner.lock().unacked.remove(&id).is_some()) {
                    let n = if kind == "Ack" { &c.acked } else { &c.failed };
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Publish {
    /// `pdd_trade_TradeConfirmed` unless given.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    mall_id: i64,
    /// The order's `order_sn`; unless given, one message per order the simulator holds.
    #[serde(default)]
    tid: Option<String>,
}

/// `POST /_sim/pmc {"mall_id": 171504183, "type"?, "tid"?}`: queues messages for the connected
/// clients (one per order held unless `tid` names one); answers their ids.
pub(super) async fn post_publish(
    State(e): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Response {
    if e.kind != crate::ChannelKind::Pdd {
        return StatusCode::NOT_FOUND.into_response();
    }
    let p: Publish = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(err) => {
            return (StatusCode::BAD_REQUEST, format!("invalid message: {err}")).into_response();
        }
    };
    let kind = p.kind.unwrap_or_else(|| "pdd_trade_TradeConfirmed".into());
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
    let ids: Vec<u64> = tids
        .iter()
        .map(|t| e.pmc.publish(&kind, p.mall_id, t))
        .collect();
    axum::Json(json!({"queued": ids})).into_response()
}

pub(super) async fn connect(
    State(e): State<Arc<Engine>>,
    Path((client_id, millis, sign)): Path<(String, i64, String)>,
    ws: WebSocketUpgrade,
) -> Response {
    if e.kind != crate::ChannelKind::Pdd {
        return StatusCode::NOT_FOUND.into_response();
    }
    let creds = &e.settings.creds;
    let skew = (chrono::Utc::now().timestamp_millis() - millis).unsigned_abs();
    if client_id != creds.app_key
        // Base64 is case-sensitive: compared byte for byte.
        || !crate::sign::constant_time_eq(
            crate::pdd::pmc::sign(&client_id, millis, &creds.secret).as_bytes(),
            sign.as_bytes(),
        )
        || skew > CLOCK_TOLERANCE.as_millis() as u64
    {
        e.pmc.counters.refused.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::UNAUTHORIZED, "invalid sign").into_response();
    }
    e.pmc.counters.connections.fetch_add(1, Ordering::Relaxed);
    ws.on_upgrade(move |socket| session(e, socket))
}

async fn session(e: Arc<Engine>, mut socket: WebSocket) {
    let generation = e.pmc.generation.load(Ordering::SeqCst);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut beat = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => e.pmc.answered(t.as_str()),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => {}
                _ => return,
            },
            _ = tick.tick() => {
                if e.pmc.generation.load(Ordering::SeqCst) != generation {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                for frame in e.pmc.due() {
                    e.pmc.counters.sent.fetch_add(1, Ordering::Relaxed);
                    if socket.send(Message::Text(frame.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            _ = beat.tick() => {
                let hb = json!({"commandType": "HeartBeat",
                    "time": chrono::Utc::now().timestamp_millis()});
                if socket.send(Message::Text(hb.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

//! Simulators of the seven carriers, for tests, the demo and benchmarks. Each speaks its carrier's
//! wire format (same paths and field names, checks the same signature with the configured secret
//! and answers the carrier's own auth error when it is wrong), issues tracking numbers in that
//! carrier's format, dedupes on the merchant order number, and serves tracking that advances.
//!
//! What each simulator received is kept for tests to read ([`SimLog`]: the facts of the last
//! waybill requests — sender city, weight, parcel count where the carrier's wire carries them —
//! and the waybills cancelled), bounded to the newest [`LOG_MAX`] of each.
//!
//! Knobs change a running simulator: `latency` (every answer waits), `error_rate` (fraction of 5xx
//! answers), `throttle_per_sec` (a token bucket; over it the carrier's throttling answer),
//! `broken` (answers that do not parse) and `reject_all` (business refusals). They are set through
//! [`SimKnobs`] in-process or over HTTP: `GET/POST /_sim/knobs`, `GET /_sim/stats`,
//! `POST /_sim/advance/{tracking_no}`.
//!
//! The engine here is carrier-agnostic; the carrier folders' `sim.rs` files parse and render.

pub mod fleet;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{CarrierKind, TrackStatus};

/// Runtime knobs. Serialized as the body of `/_sim/knobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    pub latency_ms: u64,
    /// 0.0 ..= 1.0
    pub error_rate: f64,
    /// 0 means no throttling.
    pub throttle_per_sec: f64,
    pub broken: bool,
    pub reject_all: bool,
    /// Tracking advances one step per this many milliseconds; 0 means only when told.
    pub track_step_ms: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            latency_ms: 0,
            error_rate: 0.0,
            throttle_per_sec: 0.0,
            broken: false,
            reject_all: false,
            track_step_ms: 2000,
        }
    }
}

/// Shared, changeable knobs of one simulator.
#[derive(Debug, Default)]
pub struct SimKnobs {
    knobs: Mutex<Knobs>,
}

impl SimKnobs {
    pub fn get(&self) -> Knobs {
        self.knobs.lock().clone()
    }
    pub fn set(&self, knobs: Knobs) {
        *self.knobs.lock() = sanitize(knobs);
    }
    pub fn update(&self, f: impl FnOnce(&mut Knobs)) {
        let mut k = self.knobs.lock();
        f(&mut k);
        *k = sanitize(k.clone());
    }
    pub fn set_latency(&self, latency: Duration) {
        self.update(|k| k.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
    }
    pub fn set_error_rate(&self, rate: f64) {
        self.update(|k| k.error_rate = rate);
    }
    pub fn set_throttle_per_sec(&self, rate: f64) {
        self.update(|k| k.throttle_per_sec = rate);
    }
    pub fn set_broken(&self, broken: bool) {
        self.update(|k| k.broken = broken);
    }
    pub fn set_reject_all(&self, reject: bool) {
        self.update(|k| k.reject_all = reject);
    }
    pub fn set_track_step(&self, step: Duration) {
        self.update(|k| k.track_step_ms = u64::try_from(step.as_millis()).unwrap_or(u64::MAX));
    }
}

/// A simulated latency past a minute is a misconfiguration, not a test of anything.
const LATENCY_MS_MAX: u64 = 60_000;

fn sanitize(mut k: Knobs) -> Knobs {
    k.latency_ms = k.latency_ms.min(LATENCY_MS_MAX);
    k.error_rate = if k.error_rate.is_finite() {
        k.error_rate.clamp(0.0, 1.0)
    } else {
        0.0
    };
    k.throttle_per_sec = if k.throttle_per_sec.is_finite() {
        k.throttle_per_sec.max(0.0)
    } else {
        0.0
    };
    k
}

/// Counters served at `/_sim/stats`.
#[derive(Debug, Default)]
pub struct SimStats {
    calls: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    waybills: AtomicU64,
    cancels: AtomicU64,
    rejected: AtomicU64,
    auth_failures: AtomicU64,
    broken: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub calls: u64,
    pub throttled: u64,
    pub errors: u64,
    pub waybills: u64,
    /// Waybills cancelled (a repeated cancel of one waybill counts again).
    #[serde(default)]
    pub cancels: u64,
    pub rejected: u64,
    pub auth_failures: u64,
    pub broken: u64,
}

impl SimStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            calls: l(&self.calls),
            throttled: l(&self.throttled),
            errors: l(&self.errors),
            waybills: l(&self.waybills),
            cancels: l(&self.cancels),
            rejected: l(&self.rejected),
            auth_failures: l(&self.auth_failures),
            broken: l(&self.broken),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// What a simulator checks requests against: the same credentials its adapter is configured with.
#[derive(Debug, Clone, Default)]
pub struct SimSettings {
    pub app_key: String,
    pub secret: String,
    pub customer_code: String,
    pub access_token: String,
    pub customer_password: String,
    pub knobs: Arc<SimKnobs>,
    pub stats: Arc<SimStats>,
    pub log: Arc<SimLog>,
    pub tracks: Arc<SimTracks>,
}

/// Parcels a test has moved by hand: marked with a problem scan (their tracking ends with one: the
/// carrier reports the parcel refused or returned), or delivered at once.
#[derive(Debug, Default)]
pub struct SimTracks {
    problems: Mutex<std::collections::HashSet<String>>,
    delivered: Mutex<std::collections::HashSet<String>>,
}

impl SimTracks {
    /// The parcel's tracking runs to delivery from now on, whatever the clock.
    pub fn deliver(&self, tracking_no: &str) {
        self.delivered.lock().insert(tracking_no.to_owned());
    }

    fn is_delivered(&self, tracking_no: &str) -> bool {
        self.delivered.lock().contains(tracking_no)
    }

    /// The parcel's tracking ends with a problem scan from now on.
    pub fn problem(&self, tracking_no: &str) {
        self.problems.lock().insert(tracking_no.to_owned());
    }

    /// The parcel's problem scan is gone (the carrier cleared it).
    pub fn clear(&self, tracking_no: &str) {
        self.problems.lock().remove(tracking_no);
    }

    fn has_problem(&self, tracking_no: &str) -> bool {
        self.problems.lock().contains(tracking_no)
    }
}

impl SimSettings {
    pub fn new(
        app_key: impl Into<String>,
        secret: impl Into<String>,
        customer_code: impl Into<String>,
    ) -> SimSettings {
        SimSettings {
            app_key: app_key.into(),
            secret: secret.into(),
            customer_code: customer_code.into(),
            ..SimSettings::default()
        }
    }

    pub fn handle(&self) -> SimHandle {
        SimHandle {
            knobs: self.knobs.clone(),
            stats: self.stats.clone(),
            log: self.log.clone(),
            tracks: self.tracks.clone(),
        }
    }
}

/// What a test keeps of a running simulator.
#[derive(Debug, Clone)]
pub struct SimHandle {
    pub knobs: Arc<SimKnobs>,
    pub stats: Arc<SimStats>,
    pub log: Arc<SimLog>,
    pub tracks: Arc<SimTracks>,
}

/// What a waybill request told the carrier about the shipment, as the simulator read it from
/// the carrier's own wire format (`None` where that format does not carry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub sender_city: String,
    pub weight_kg: Option<rust_decimal::Decimal>,
    pub parcels: Option<u32>,
}

/// Entries a simulator keeps of each kind: a demo runs for hours.
pub const LOG_MAX: usize = 10_000;

/// What a simulator received: waybill requests' facts by merchant order number, and the
/// tracking numbers it cancelled, the newest [`LOG_MAX`] of each.
#[derive(Debug, Default)]
pub struct SimLog {
    waybills: Mutex<std::collections::VecDeque<(String, Received)>>,
    cancelled: Mutex<std::collections::VecDeque<String>>,
}

impl SimLog {
    /// The facts of the last waybill request for merchant order number `order_no` (orderhub's
    /// order id without hyphens).
    pub fn waybill(&self, order_no: &str) -> Option<Received> {
        self.waybills
            .lock()
            .iter()
            .rev()
            .find(|(o, _)| o == order_no)
            .map(|(_, r)| r.clone())
    }
    /// Whether the simulator cancelled this waybill.
    pub fn was_cancelled(&self, tracking_no: &str) -> bool {
        self.cancelled.lock().iter().any(|t| t == tracking_no)
    }
    fn push_waybill(&self, order_no: String, r: Received) {
        let mut w = self.waybills.lock();
        if w.len() >= LOG_MAX {
            w.pop_front();
        }
        w.push_back((order_no, r));
    }
    fn push_cancel(&self, tracking_no: String) {
        let mut c = self.cancelled.lock();
        if c.len() >= LOG_MAX {
            c.pop_front();
        }
        c.push_back(tracking_no);
    }
}

/// A request as the wire layer sees it.
pub(crate) struct RawRequest {
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// What a carrier call asks for, once parsed and authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Create {
        order_no: String,
        /// Cainiao: the underlying carrier whose number format to issue.
        cp: Option<String>,
        /// What the request said of the shipment, where the wire carries it.
        facts: Option<Received>,
    },
    Track {
        tracking_no: String,
    },
    Cancel {
        tracking_no: Option<String>,
        order_no: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    Auth,
    BadRequest(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Accepted,
    PickedUp,
    InTransit,
    Delivered,
    /// A problem scan (refused, returned): never reached by time, only when a test marks the
    /// parcel ([`SimTracks::problem`]); it comes after the steps reached.
    Problem,
}

impl Step {
    const ORDER: [Step; 4] = [
        Step::Accepted,
        Step::PickedUp,
        Step::InTransit,
        Step::Delivered,
    ];

    pub fn status(self) -> TrackStatus {
        match self {
            Step::Accepted => TrackStatus::Accepted,
            Step::PickedUp => TrackStatus::PickedUp,
            Step::InTransit => TrackStatus::InTransit,
            Step::Delivered => TrackStatus::Delivered,
            Step::Problem => TrackStatus::Exception,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimEvent {
    pub at: DateTime<Utc>,
    pub step: Step,
}

pub(crate) enum SimOk {
    Created {
        order_no: String,
        tracking_no: String,
        logistics_no: String,
    },
    Tracked {
        tracking_no: String,
        events: Vec<SimEvent>,
    },
    Cancelled {
        tracking_no: String,
        order_no: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SimErr {
    Auth,
    Throttled,
    Rejected,
    BadRequest(String),
    NotFound,
}

/// One carrier's wire format, simulator side.
pub(crate) trait Wire: Send + Sync + 'static {
    fn parse(&self, settings: &SimSettings, req: &RawRequest) -> Result<Call, Fault>;
    /// The body of a successful answer (HTTP 200).
    fn ok(&self, settings: &SimSettings, ok: &SimOk) -> Vec<u8>;
    /// Status and body of an error answer in the carrier's own shape.
    fn err(&self, settings: &SimSettings, err: &SimErr) -> (u16, Vec<u8>);
    fn tracking_no(&self, call_cp: Option<&str>, serial: u64) -> String;
    /// The carrier's acknowledgement for a new order.
    fn logistics_no(&self, order_no: &str, serial: u64) -> String;
    fn content_type(&self) -> &'static str {
        "application/json;charset=UTF-8"
    }
}

fn wire(kind: CarrierKind) -> Box<dyn Wire> {
    match kind {
        CarrierKind::Sf => Box::new(crate::sf::sim::SfWire),
        CarrierKind::Jd => Box::new(crate::jd::sim::JdWire),
        CarrierKind::Cainiao => Box::new(crate::cainiao::sim::CainiaoWire),
        CarrierKind::Zto => Box::new(crate::zto::sim::ZtoWire),
        CarrierKind::Yto => Box::new(crate::yto::sim::YtoWire),
        CarrierKind::Jt => Box::new(crate::jt::sim::JtWire),
        CarrierKind::Ems => Box::new(crate::ems::sim::EmsWire),
    }
}

#[derive(Debug, Clone)]
struct Shipment {
    order_no: String,
    tracking_no: String,
    logistics_no: String,
    created: Instant,
    created_at: DateTime<Utc>,
    manual_steps: u32,
    cancelled: bool,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Engine {
    settings: SimSettings,
    wire: Box<dyn Wire>,
    /// Random per simulator so two runs do not hand out the same numbers.
    serial_base: u64,
    serial: AtomicU64,
    by_order: Mutex<HashMap<String, String>>,
    shipments: Mutex<HashMap<String, Shipment>>,
    bucket: Mutex<Bucket>,
}

impl Engine {
    fn next_serial(&self) -> u64 {
        self.serial_base + self.serial.fetch_add(1, Ordering::Relaxed)
    }

    fn take_token(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return true;
        }
        let mut b = self.bucket.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        // Burst capacity is one second's worth of calls (at least one call).
        let capacity = rate.max(1.0);
        b.tokens = (b.tokens + elapsed * rate).min(capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn steps_reached(&self, s: &Shipment, knobs: &Knobs) -> usize {
        if s.cancelled {
            return 0;
        }
        if self.settings.tracks.is_delivered(&s.tracking_no) {
            return Step::ORDER.len() - 1;
        }
        let timed = if knobs.track_step_ms == 0 {
            0
        } else {
            let elapsed = Instant::now()
                .saturating_duration_since(s.created)
                .as_millis();
            usize::try_from(elapsed / u128::from(knobs.track_step_ms)).unwrap_or(usize::MAX)
        };
        timed
            .saturating_add(s.manual_steps as usize)
            .min(Step::ORDER.len() - 1)
    }

    fn events(&self, s: &Shipment, knobs: &Knobs) -> Vec<SimEvent> {
        let reached = self.steps_reached(s, knobs);
        let step_ms = if knobs.track_step_ms == 0 {
            1000
        } else {
            knobs.track_step_ms
        };
        let problem = (!s.cancelled && self.settings.tracks.has_problem(&s.tracking_no))
            .then_some(Step::Problem);
        Step::ORDER[..=reached]
            .iter()
            .chain(problem.iter())
            .enumerate()
            .map(|(i, step)| SimEvent {
                at: s.created_at
                    + chrono::Duration::milliseconds(
                        i64::try_from(step_ms.saturating_mul(i as u64)).unwrap_or(i64::MAX / 4),
                    ),
                step: *step,
            })
            .collect()
    }

    async fn handle(&self, req: RawRequest) -> Response {
        let knobs = self.settings.knobs.get();
        let stats = &self.settings.stats;
        bump(&stats.calls);
        if knobs.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(knobs.latency_ms)).await;
        }
        let roll: f64 = rand::rng().random();
        if roll < knobs.error_rate {
            bump(&stats.errors);
            return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response();
        }
        if !self.take_token(knobs.throttle_per_sec) {
            bump(&stats.throttled);
            return self.error(SimErr::Throttled);
        }
        let call = match self.wire.parse(&self.settings, &req) {
            Ok(call) => call,
            Err(Fault::Auth) => {
                bump(&stats.auth_failures);
                return self.error(SimErr::Auth);
            }
            Err(Fault::BadRequest(m)) => return self.error(SimErr::BadRequest(m)),
        };
        let answer = match call {
            Call::Create {
                order_no,
                cp,
                facts,
            } => {
                if knobs.reject_all {
                    bump(&stats.rejected);
                    return self.error(SimErr::Rejected);
                }
                if let Some(f) = facts {
                    self.settings.log.push_waybill(order_no.clone(), f);
                }
                self.create(order_no, cp.as_deref())
            }
            // A waybill the carrier never issued has no event (route queries answer an empty
            // list for a number they do not know — assumed, the carriers' docs are silent).
            Call::Track { tracking_no } => SimOk::Tracked {
                events: match self.shipments.lock().get(&tracking_no) {
                    Some(s) => self.events(s, &knobs),
                    None => Vec::new(),
                },
                tracking_no,
            },
            Call::Cancel {
                tracking_no,
                order_no,
            } => match self.cancel(tracking_no, order_no, &knobs) {
                Ok(ok) => ok,
                Err(e) => return self.error(e),
            },
        };
        let mut body = self.wire.ok(&self.settings, &answer);
        if knobs.broken {
            bump(&stats.broken);
            // Half an answer: what a proxy cutting the connection, or a carrier mid-deploy, sends.
            body.truncate(body.len() / 2);
        }
        ([(header::CONTENT_TYPE, self.wire.content_type())], body).into_response()
    }

    fn create(&self, order_no: String, cp: Option<&str>) -> SimOk {
        let mut by_order = self.by_order.lock();
        let mut shipments = self.shipments.lock();
        // The same order number answers the same waybill (carriers dedupe on it) — unless that
        // waybill was cancelled: then the number is free again and a new waybill is issued.
        if let Some(s) = by_order
            .get(&order_no)
            .and_then(|t| shipments.get(t))
            .filter(|s| !s.cancelled)
        {
            return SimOk::Created {
                order_no,
                tracking_no: s.tracking_no.clone(),
                logistics_no: s.logistics_no.clone(),
            };
        }
        let serial = self.next_serial();
        let tracking_no = self.wire.tracking_no(cp, serial);
        let logistics_no = self.wire.logistics_no(&order_no, serial);
        by_order.insert(order_no.clone(), tracking_no.clone());
        shipments.insert(
            tracking_no.clone(),
            Shipment {
                order_no: order_no.clone(),
                tracking_no: tracking_no.clone(),
                logistics_no: logistics_no.clone(),
                created: Instant::now(),
                created_at: Utc::now(),
                manual_steps: 0,
                cancelled: false,
            },
        );
        bump(&self.settings.stats.waybills);
        SimOk::Created {
            order_no,
            tracking_no,
            logistics_no,
        }
    }

    fn cancel(
        &self,
        tracking_no: Option<String>,
        order_no: Option<String>,
        knobs: &Knobs,
    ) -> Result<SimOk, SimErr> {
        let tracking_no = match (tracking_no, order_no) {
            (Some(t), _) if !t.is_empty() => t,
            (_, Some(o)) => self
                .by_order
                .lock()
                .get(&o)
                .cloned()
                .ok_or(SimErr::NotFound)?,
            _ => return Err(SimErr::BadRequest("no waybill to cancel".into())),
        };
        let mut shipments = self.shipments.lock();
        let picked_up = match shipments.get(&tracking_no) {
            Some(s) => self.steps_reached(s, knobs) > 0,
            None => return Err(SimErr::NotFound),
        };
        if picked_up {
            return Err(SimErr::Rejected);
        }
        let s = shipments.get_mut(&tracking_no).ok_or(SimErr::NotFound)?;
        s.cancelled = true;
        bump(&self.settings.stats.cancels);
        self.settings.log.push_cancel(tracking_no.clone());
        Ok(SimOk::Cancelled {
            tracking_no,
            order_no: s.order_no.clone(),
        })
    }

    fn advance(&self, tracking_no: &str) -> Option<TrackStatus> {
        let knobs = self.settings.knobs.get();
        let mut shipments = self.shipments.lock();
        let s = shipments.get_mut(tracking_no)?;
        s.manual_steps = s.manual_steps.saturating_add(1);
        let reached = self.steps_reached(s, &knobs);
        Some(Step::ORDER[reached].status())
    }

    fn error(&self, err: SimErr) -> Response {
        let (status, body) = self.wire.err(&self.settings, &err);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        (
            status,
            [(header::CONTENT_TYPE, self.wire.content_type())],
            body,
        )
            .into_response()
    }
}

/// Request bodies to a simulator are small JSON or form documents.
const REQUEST_BYTES_MAX: usize = 256 * 1024;

/// Serves one carrier's simulator on `listener` until the task is dropped.
pub async fn serve(
    kind: CarrierKind,
    listener: tokio::net::TcpListener,
    settings: SimSettings,
) -> std::io::Result<()> {
    axum::serve(listener, router(kind, settings)).await
}

/// Binds 127.0.0.1 on a free port, spawns the simulator and returns its base URL and handle.
pub async fn spawn(
    kind: CarrierKind,
    settings: SimSettings,
) -> std::io::Result<(String, SimHandle)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = settings.handle();
    tokio::spawn(async move {
        if let Err(e) = serve(kind, listener, settings).await {
            tracing::warn!(carrier = %kind, error = %e, "The carrier simulator stopped.");
        }
    });
    Ok((format!("http://{addr}"), handle))
}

fn router(kind: CarrierKind, settings: SimSettings) -> Router {
    let engine = Arc::new(Engine {
        wire: wire(kind),
        serial_base: rand::rng().random_range(100_000..900_000) * 1_000_000,
        serial: AtomicU64::new(0),
        by_order: Mutex::new(HashMap::new()),
        shipments: Mutex::new(HashMap::new()),
        bucket: Mutex::new(Bucket {
            tokens: settings.knobs.get().throttle_per_sec.max(1.0),
            last: Instant::now(),
        }),
        settings,
    });
    Router::new()
        .route("/_sim/knobs", get(get_knobs).post(post_knobs))
        .route("/_sim/stats", get(get_stats))
        .route("/_sim/advance/{tracking_no}", post(advance))
        .fallback(carrier_call)
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .with_state(engine)
}

async fn get_knobs(State(e): State<Arc<Engine>>) -> axum::Json<Knobs> {
    axum::Json(e.settings.knobs.get())
}

async fn post_knobs(State(e): State<Arc<Engine>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Knobs>(&body) {
        Ok(k) => {
            e.settings.knobs.set(k);
            axum::Json(e.settings.knobs.get()).into_response()
        }
        Err(err) => (StatusCode::BAD_REQUEST, format!("invalid knobs: {err}")).into_response(),
    }
}

async fn get_stats(State(e): State<Arc<Engine>>) -> axum::Json<StatsSnapshot> {
    axum::Json(e.settings.stats.snapshot())
}

async fn advance(State(e): State<Arc<Engine>>, Path(tracking_no): Path<String>) -> Response {
    match e.advance(&tracking_no) {
        Some(status) => {
            axum::Json(serde_json::json!({ "tracking_no": tracking_no, "status": status }))
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "unknown tracking number").into_response(),
    }
}

async fn carrier_call(
    State(e): State<Arc<Engine>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST only").into_response();
    }
    let req = RawRequest {
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers,
        body,
    };
    e.handle(req).await
}

/// `prefix` followed by `digits` decimal digits of `serial` (zero-padded, wrapped to fit).
pub(crate) fn numbered(prefix: &str, digits: u32, serial: u64) -> String {
    let modulus = 10u64.saturating_pow(digits);
    format!(
        "{prefix}{:0width$}",
        serial % modulus,
        width = digits as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_the_requested_width() {
        assert_eq!(numbered("SF", 12, 42), "SF000000000042");
        assert_eq!(numbered("7", 11, 123_456_789_012_345), "756789012345");
        assert_eq!(numbered("7", 11, 123_456_789_012_345).len(), 12);
    }

    #[test]
    fn knobs_are_clamped() {
        let k = SimKnobs::default();
        k.set(Knobs {
            error_rate: 7.0,
            throttle_per_sec: f64::NAN,
            latency_ms: u64::MAX,
            ..Knobs::default()
        });
        let got = k.get();
        assert_eq!(got.error_rate, 1.0);
        assert_eq!(got.throttle_per_sec, 0.0);
        assert_eq!(got.latency_ms, LATENCY_MS_MAX);
    }
}

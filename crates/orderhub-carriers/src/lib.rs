//! The carrier side of fulfillment: one adapter per carrier (SF Express, JD Logistics, Cainiao, ZTO,
//! YTO, J&T, EMS) that speaks that carrier's open-platform wire format, a simulator of each carrier
//! that can be slowed, throttled and broken (only with the `sim` feature: the product links no
//! simulator), a pure circuit breaker and a router that walks a fallback chain of carriers behind
//! their breakers.
//!
//! What must not live here: orders, storage, the hub's own HTTP API. This crate knows nothing of
//! orderhub's store or routes; the waybill it returns is handed to the order lifecycle by the caller.
//! Personal data (the receiver's phone and street address) is sent to the carrier, because the
//! carrier needs it, but never logged and never put into an error message.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub mod breaker;
pub mod cainiao;
pub mod ems;
mod http;
pub mod jd;
pub mod jt;
#[cfg(test)]
mod push_tests;
pub mod router;
pub mod sf;
pub mod sign;
/// The simulators: built only with the `sim` feature (tests, the demo, the benchmarks), so
/// `orderhub serve` links none of them, nor axum through this crate.
#[cfg(feature = "sim")]
pub mod sim;
#[doc(hidden)]
pub mod testing;
mod wire;
pub mod yto;
pub mod zto;

pub use breaker::{BreakerConfig, BreakerOpen, CircuitBreaker, Outcome, Permit, State, Transition};
pub use http::{AddressFilter, HttpClient};
pub use router::{Attempt, BreakerChange, CarrierRouter, RouteError, Routed};

/// The carriers orderhub ships with. `code()` is the slug used by `orderhub-domain`'s `CarrierCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CarrierKind {
    Sf,
    Jd,
    Cainiao,
    Zto,
    Yto,
    Jt,
    Ems,
}

impl CarrierKind {
    pub const ALL: [CarrierKind; 7] = [
        CarrierKind::Sf,
        CarrierKind::Jd,
        CarrierKind::Cainiao,
        CarrierKind::Zto,
        CarrierKind::Yto,
        CarrierKind::Jt,
        CarrierKind::Ems,
    ];

    pub fn code(self) -> &'static str {
        match self {
            CarrierKind::Sf => "sf",
            CarrierKind::Jd => "jd",
            CarrierKind::Cainiao => "cainiao",
            CarrierKind::Zto => "zto",
            CarrierKind::Yto => "yto",
            CarrierKind::Jt => "jt",
            CarrierKind::Ems => "ems",
        }
    }

    /// Parses a carrier slug (`"sf"`, `"jt"`, …). Only the exact lower-case codes are accepted.
    pub fn parse(s: &str) -> Result<CarrierKind, UnknownCarrier> {
        CarrierKind::ALL
            .into_iter()
            .find(|k| k.code() == s)
            .ok_or_else(|| UnknownCarrier(s.chars().take(32).collect()))
    }
}

impl fmt::Display for CarrierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for CarrierKind {
    type Err = UnknownCarrier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CarrierKind::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown carrier code {0:?}")]
pub struct UnknownCarrier(pub String);

/// A postal address as the carriers want it: plain text, split into the administrative levels.
/// `phone` and `detail` are personal data: `Debug` masks them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Address")
            .field("name", &"***")
            .field("phone", &"***")
            .field("province", &self.province)
            .field("city", &self.city)
            .field("district", &self.district)
            .field("detail", &"***")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub title: String,
    pub quantity: u32,
}

/// Everything a carrier needs to issue a waybill for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaybillRequest {
    /// orderhub's order id; sent as the merchant order number, on which every carrier dedupes.
    pub order_id: uuid::Uuid,
    pub tenant_id: String,
    pub sender: Address,
    pub receiver: Address,
    pub parcels: u32,
    pub weight_kg: Decimal,
    pub items: Vec<Item>,
    pub remark: Option<String>,
}

impl WaybillRequest {
    /// The merchant order number sent to carriers: the order id without hyphens (32 characters),
    /// because several carriers cap the field at 32 to 50 characters and some refuse '-'.
    pub fn merchant_order_no(&self) -> String {
        self.order_id.simple().to_string()
    }
}

/// A carrier's answer to a waybill request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waybill {
    pub carrier: CarrierKind,
    /// The waybill (mail) number printed on the label and used for tracking.
    pub tracking_no: String,
    /// The carrier's acknowledgement: its own order id, or its echo of our order number where it
    /// issues no id of its own (see SOURCES.md per carrier).
    pub logistics_no: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrackStatus {
    Accepted,
    PickedUp,
    InTransit,
    Delivered,
    Exception,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackEvent {
    pub at: DateTime<Utc>,
    pub status: TrackStatus,
    pub description: String,
}

/// What went wrong with a carrier call, in the terms the circuit breaker needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// No answer within the call timeout.
    #[error("the carrier did not answer in time")]
    Timeout,
    /// Could not connect, or the carrier answered 5xx.
    #[error("the carrier is unavailable: {0}")]
    Unavailable(String),
    /// The carrier's own throttling answer.
    #[error("the carrier throttled the call")]
    Throttled { retry_after: Option<Duration> },
    /// A business refusal (bad address, unknown account, wrong signature …). The carrier is
    /// healthy; this does not count against its breaker.
    #[error("the carrier refused: {code}: {message}")]
    Rejected { code: String, message: String },
    /// An answer that does not parse or lacks what it must carry. Counts as a failure.
    #[error("the carrier's answer does not parse: {0}")]
    BadResponse(String),
}

impl CarrierError {
    /// A short stable name for metrics labels and attempt logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            CarrierError::Timeout => "timeout",
            CarrierError::Unavailable(_) => "unavailable",
            CarrierError::Throttled { .. } => "throttled",
            CarrierError::Rejected { .. } => "rejected",
            CarrierError::BadResponse(_) => "bad_response",
        }
    }

    /// How the breaker counts this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            CarrierError::Rejected { .. } => Outcome::Ignored,
            CarrierError::Timeout
            | CarrierError::Unavailable(_)
            | CarrierError::Throttled { .. }
            | CarrierError::BadResponse(_) => Outcome::Failure,
        }
    }
}

/// A secret that does not print itself.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

/// How one adapter reaches its carrier. What each field means per carrier is in SOURCES.md;
/// in short: `app_key` is the platform account (SF partnerID, ZTO appKey, J&T apiAccount, Cainiao
/// logistic_provider_id, JD app_key, YTO app key, EMS authorization code), `secret` signs (SF
/// checkWord, ZTO appSecret, J&T privateKey, Cainiao secret, JD appSecret, YTO secret, EMS SM4
/// key), `customer_code` is the shipping account (SF monthly card, ZTO/J&T/JD/YTO customer code,
/// Cainiao cpCode, EMS senderNo).
#[derive(Debug, Clone)]
pub struct CarrierConfig {
    pub kind: CarrierKind,
    /// `http://host:port` with no trailing slash; the adapter appends the carrier's path.
    pub base_url: String,
    pub app_key: String,
    pub secret: Secret,
    pub customer_code: String,
    /// JD's OAuth access token; YTO's per-API path token. Unused elsewhere.
    pub access_token: Option<Secret>,
    /// J&T's customer password (hashed into its business digest). Unused elsewhere.
    pub customer_password: Option<Secret>,
}

impl CarrierConfig {
    /// A config with the fields every carrier uses; the optional ones empty.
    pub fn new(
        kind: CarrierKind,
        base_url: impl Into<String>,
        app_key: impl Into<String>,
        secret: impl Into<String>,
        customer_code: impl Into<String>,
    ) -> CarrierConfig {
        CarrierConfig {
            kind,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            app_key: app_key.into(),
            secret: Secret::new(secret),
            customer_code: customer_code.into(),
            access_token: None,
            customer_password: None,
        }
    }

    pub(crate) fn access_token(&self) -> &str {
        self.access_token.as_ref().map(Secret::expose).unwrap_or("")
    }

    pub(crate) fn customer_password(&self) -> &str {
        self.customer_password
            .as_ref()
            .map(Secret::expose)
            .unwrap_or("")
    }
}

/// A boxed future, so `Arc<dyn Carrier>` works.
pub type CarrierFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CarrierError>> + Send + 'a>>;

/// One carrier's open platform.
pub trait Carrier: Send + Sync {
    fn kind(&self) -> CarrierKind;
    fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill>;
    fn track<'a>(&'a self, tracking_no: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>>;
    /// Cancels a waybill. Takes the whole waybill because several carriers cancel by their
    /// acknowledgement or our order number rather than the tracking number.
    fn cancel_waybill<'a>(&'a self, waybill: &'a Waybill) -> CarrierFuture<'a, ()>;
}

/// Why a carrier's tracking push was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The signature does not verify with the account's secret, or the push names another
    /// account. Nothing in it is used.
    #[error("the push is not signed by this account")]
    BadSignature,
    /// Signed, but not the shape the carrier documents (the reason names the field, never
    /// echoes the body).
    #[error("the push does not parse: {0}")]
    Malformed(String),
    /// orderhub does not take tracking pushes from this carrier (yet): it is polled.
    #[error("tracking pushes from this carrier are not supported; it is polled")]
    Unsupported,
}

/// The carriers whose tracking pushes orderhub takes (see SOURCES.md, "Tracking pushes").
pub fn takes_track_push(kind: CarrierKind) -> bool {
    matches!(kind, CarrierKind::Sf | CarrierKind::Zto | CarrierKind::Jt)
}

/// Verifies a tracking push with the account's `app_key` and `secret` and parses it into
/// (tracking number, event) pairs. `headers` are the request's (name, value) pairs, matched
/// without regard to case: J&T signs in headers, SF and ZTO in the body. Pure: nothing is
/// looked up or written.
pub fn parse_track_push(
    kind: CarrierKind,
    app_key: &str,
    secret: &Secret,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Vec<(String, TrackEvent)>, PushError> {
    match kind {
        CarrierKind::Sf => sf::transformers::parse_route_push(body, app_key, secret.expose()),
        CarrierKind::Zto => zto::transformers::parse_track_push(body, app_key, secret.expose()),
        CarrierKind::Jt => {
            jt::transformers::parse_track_push(headers, body, app_key, secret.expose())
        }
        _ => Err(PushError::Unsupported),
    }
}

/// The answer the carrier expects to a push: (content type, body). `ok = false` refuses it.
pub fn push_answer(kind: CarrierKind, ok: bool) -> (&'static str, Vec<u8>) {
    let body = match kind {
        CarrierKind::Sf => sf::transformers::route_push_answer(ok),
        CarrierKind::Zto => zto::transformers::track_push_answer(ok),
        CarrierKind::Jt => jt::transformers::track_push_answer(ok),
        _ => serde_json::json!({"success": ok}).to_string().into_bytes(),
    };
    ("application/json;charset=UTF-8", body)
}

/// A push as a carrier sends it: the headers it sets (J&T signs there) and the form body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPush {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A correctly signed push of `events` for `tracking_no`, in `kind`'s documented shape: what
/// the carrier (or its simulator) sends. `None` for carriers whose pushes are not taken.
pub fn signed_track_push(
    kind: CarrierKind,
    app_key: &str,
    secret: &str,
    tracking_no: &str,
    events: &[(TrackStatus, DateTime<Utc>)],
) -> Option<SignedPush> {
    let body = match kind {
        CarrierKind::Sf => {
            let routes: Vec<_> = events
                .iter()
                .map(|(st, at)| sf::transformers::WaybillRoute {
                    id: None,
                    mailno: tracking_no.to_string(),
                    orderid: None,
                    accept_time: wire::china_time_string(*at),
                    accept_address: "深圳市".into(),
                    remark: format!("{st:?}"),
                    op_code: match st {
                        TrackStatus::Accepted => "54",
                        TrackStatus::PickedUp => "50",
                        TrackStatus::InTransit => "30",
                        TrackStatus::Delivered => "80",
                        TrackStatus::Exception => "70",
                    }
                    .into(),
                })
                .collect();
            let ts = Utc::now().timestamp_millis().to_string();
            sf::transformers::route_push_form(app_key, secret, &ts, &routes)
        }
        CarrierKind::Zto => {
            let scans: Vec<_> = events
                .iter()
                .map(|(st, at)| zto::transformers::PushedScan {
                    bill_code: tracking_no.to_string(),
                    scan_type: match st {
                        TrackStatus::Accepted => "下单",
                        TrackStatus::PickedUp => "GOT",
                        TrackStatus::InTransit => "DEPARTURE",
                        TrackStatus::Delivered => "SIGN",
                        TrackStatus::Exception => "PROBLEM",
                    }
                    .into(),
                    scan_date: serde_json::Value::from(at.timestamp_millis()),
                    desc: format!("{st:?}"),
                })
                .collect();
            zto::transformers::track_push_form(app_key, secret, &scans)
        }
        CarrierKind::Jt => {
            let trace = jt::transformers::PushedTrace {
                bill_code: tracking_no.to_string(),
                details: events
                    .iter()
                    .map(|(st, at)| jt::transformers::PushedScan {
                        scan_type: match st {
                            TrackStatus::Accepted => "下单",
                            TrackStatus::PickedUp => "快件揽收",
                            TrackStatus::InTransit => "发件扫描",
                            TrackStatus::Delivered => "快件签收",
                            TrackStatus::Exception => "问题件扫描",
                        }
                        .into(),
                        scan_type_code: None,
                        scan_time: wire::china_time_string(*at),
                        desc: format!("{st:?}"),
                    })
                    .collect(),
                top: None,
            };
            let ts = Utc::now().timestamp_millis().to_string();
            let (headers, body) =
                jt::transformers::track_push_request(app_key, secret, &ts, &trace);
            return Some(SignedPush {
                headers,
                body: body.into_bytes(),
            });
        }
        _ => return None,
    };
    Some(SignedPush {
        headers: Vec::new(),
        body: body.into_bytes(),
    })
}

/// Builds the adapter for a configuration, sharing one HTTP connection pool.
pub fn adapter(config: CarrierConfig, http: HttpClient) -> std::sync::Arc<dyn Carrier> {
    use std::sync::Arc;
    match config.kind {
        CarrierKind::Sf => Arc::new(sf::Sf::new(config, http)),
        CarrierKind::Jd => Arc::new(jd::Jd::new(config, http)),
        CarrierKind::Cainiao => Arc::new(cainiao::Cainiao::new(config, http)),
        CarrierKind::Zto => Arc::new(zto::Zto::new(config, http)),
        CarrierKind::Yto => Arc::new(yto::Yto::new(config, http)),
        CarrierKind::Jt => Arc::new(jt::Jt::new(config, http)),
        CarrierKind::Ems => Arc::new(ems::Ems::new(config, http)),
    }
}

/// Parses a JSON body, naming what failed without echoing the body (it may hold personal data).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    what: &str,
    body: &[u8],
) -> Result<T, CarrierError> {
    serde_json::from_slice(body).map_err(|e| {
        CarrierError::BadResponse(format!(
            "{what}: {} at line {} column {}",
            classify(&e),
            e.line(),
            e.column()
        ))
    })
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "truncated",
    }
}

/// Truncates a carrier's message for an error: carriers echo input in their messages, so keep
/// them short. Messages are the carrier's own words about a field, not our payload.
pub(crate) fn short(s: &str) -> String {
    const MESSAGE_CHARS_MAX: usize = 120;
    s.chars().take(MESSAGE_CHARS_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_codes_round_trip_and_match_the_domain_slugs() {
        let codes: Vec<_> = CarrierKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes, ["sf", "jd", "cainiao", "zto", "yto", "jt", "ems"]);
        for k in CarrierKind::ALL {
            assert_eq!(CarrierKind::parse(k.code()), Ok(k));
            assert_eq!(k.to_string().parse::<CarrierKind>(), Ok(k));
        }
        assert!(CarrierKind::parse("SF").is_err());
        assert!(CarrierKind::parse("dhl").is_err());
    }

    #[test]
    fn an_address_does_not_print_the_phone_or_street() {
        let a = Address {
            name: "张三".into(),
            phone: "13800000000".into(),
            province: "广东省".into(),
            city: "深圳市".into(),
            district: "南山区".into(),
            detail: "科技园路1号".into(),
        };
        let printed = format!("{a:?}");
        assert!(!printed.contains("13800000000"));
        assert!(!printed.contains("科技园"));
        assert!(!printed.contains("张三"));
        assert!(printed.contains("深圳市"));
        assert_eq!(format!("{:?}", Secret::new("k")), "Secret(***)");
    }

    #[test]
    fn only_a_business_refusal_is_ignored_by_the_breaker() {
        let rejected = CarrierError::Rejected {
            code: "x".into(),
            message: "y".into(),
        };
        assert_eq!(rejected.outcome(), Outcome::Ignored);
        for e in [
            CarrierError::Timeout,
            CarrierError::Unavailable("503".into()),
            CarrierError::Throttled { retry_after: None },
            CarrierError::BadResponse("x".into()),
        ] {
            assert_eq!(e.outcome(), Outcome::Failure, "{e:?}");
        }
    }
}

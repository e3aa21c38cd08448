//! YTO Express open platform (圆通) wire shapes and pure conversions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{kg, parse_china_time};
use crate::{CarrierError, TrackEvent, TrackStatus, WaybillRequest, short, sign};

pub const CREATE: &str = "privacy_create_adapter";
pub const TRACK: &str = "track_query_adapter";
pub const CANCEL: &str = "korder_cancel_adapter";
pub const VERSION: &str = "v1";

/// Error codes not found in public material; chosen, see SOURCES.md.
pub const SIGNATURE: &str = "S01";
pub const THROTTLED: &str = "S05";

/// `sign = Base64(MD5(param + method + v + secret))`.
pub fn sign(param: &str, method: &str, secret: &str) -> String {
    sign::md5_base64(format!("{param}{method}{VERSION}{secret}").as_bytes())
}

/// `/open/{method}/v1/{token}/{customerCode}`.
pub fn path(method: &str, token: &str, customer_code: &str) -> String {
    format!("/open/{method}/{VERSION}/{token}/{customer_code}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub timestamp: String,
    pub param: String,
    pub sign: String,
    pub format: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Create {
    pub logistics_no: String,
    pub sender_name: String,
    pub sender_province_name: String,
    pub sender_city_name: String,
    pub sender_county_name: String,
    pub sender_address: String,
    pub sender_mobile: String,
    pub recipient_name: String,
    pub recipient_province_name: String,
    pub recipient_city_name: String,
    pub recipient_county_name: String,
    pub recipient_address: String,
    pub recipient_mobile: String,
    #[serde(default)]
    pub goods: Vec<Goods>,
    pub weight: String,
    /// PK = standard express.
    pub product_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goods {
    pub name: String,
    pub quantity: u32,
}

pub fn create(req: &WaybillRequest) -> Create {
    let (s, r) = (&req.sender, &req.receiver);
    Create {
        logistics_no: req.merchant_order_no(),
        sender_name: s.name.clone(),
        sender_province_name: s.province.clone(),
        sender_city_name: s.city.clone(),
        sender_county_name: s.district.clone(),
        sender_address: s.detail.clone(),
        sender_mobile: s.phone.clone(),
        recipient_name: r.name.clone(),
        recipient_province_name: r.province.clone(),
        recipient_city_name: r.city.clone(),
        recipient_county_name: r.district.clone(),
        recipient_address: r.detail.clone(),
        recipient_mobile: r.phone.clone(),
        goods: req
            .items
            .iter()
            .map(|i| Goods {
                name: i.title.clone(),
                quantity: i.quantity,
            })
            .collect(),
        weight: kg(req.weight_kg),
        product_code: "PK".into(),
        remark: req.remark.clone(),
    }
}

/// YTO's failure answer: `{"success": false, "code": "...", "reason": "..."}` (success may be a
/// string).
fn failure(v: &Value) -> Option<CarrierError> {
    let obj = v.as_object()?;
    let failed = match obj.get("success") {
        Some(Value::Bool(b)) => !b,
        Some(Value::String(s)) => s == "false",
        _ => obj.contains_key("reason") && !obj.contains_key("mailNo"),
    };
    if !failed {
        return None;
    }
    let code = match obj.get("code") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let message = short(obj.get("reason").and_then(Value::as_str).unwrap_or(""));
    Some(if code == THROTTLED {
        CarrierError::Throttled { retry_after: None }
    } else {
        CarrierError::Rejected { code, message }
    })
}

pub fn parse_answer(body: &[u8]) -> Result<Value, CarrierError> {
    let v: Value = crate::parse_json("YTO answer", body)?;
    match failure(&v) {
        Some(e) => Err(e),
        None => Ok(v),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub logistics_no: String,
    pub mail_no: String,
}

pub fn created(v: Value) -> Result<(String, String), CarrierError> {
    let c: Created = serde_json::from_value(v)
        .map_err(|_| CarrierError::BadResponse("YTO answer is not an order".into()))?;
    if c.mail_no.is_empty() {
        return Err(CarrierError::BadResponse(
            "YTO issued no mail number".into(),
        ));
    }
    Ok((c.mail_no, c.logistics_no))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrackQuery {
    #[serde(rename = "NUMBER")]
    pub number: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    #[serde(rename = "waybill_No")]
    pub waybill_no: String,
    #[serde(rename = "upload_Time")]
    pub upload_time: String,
    #[serde(rename = "infoContent")]
    pub info_content: String,
    #[serde(rename = "processInfo", default)]
    pub process_info: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Info {
    /// ORDER (chosen)
    Ordered,
    /// GOT
    Got,
    /// DEPARTURE, ARRIVAL, SENT_SCAN
    Transit,
    /// SIGNED
    Signed,
    /// FAILED, RETURN
    Problem,
    Unknown,
}

impl Info {
    pub fn parse(s: &str) -> Info {
        match s {
            "ORDER" => Info::Ordered,
            "GOT" => Info::Got,
            "DEPARTURE" | "ARRIVAL" | "SENT_SCAN" => Info::Transit,
            "SIGNED" => Info::Signed,
            "FAILED" | "RETURN" => Info::Problem,
            _ => Info::Unknown,
        }
    }

    pub fn status(self) -> TrackStatus {
        match self {
            Info::Ordered => TrackStatus::Accepted,
            Info::Got => TrackStatus::PickedUp,
            Info::Transit => TrackStatus::InTransit,
            Info::Signed => TrackStatus::Delivered,
            Info::Problem | Info::Unknown => TrackStatus::Exception,
        }
    }
}

pub fn track_events(v: Value) -> Result<Vec<TrackEvent>, CarrierError> {
    let traces: Vec<Trace> = serde_json::from_value(v)
        .map_err(|_| CarrierError::BadResponse("YTO answer is not a trace list".into()))?;
    traces
        .into_iter()
        .map(|t| {
            Ok(TrackEvent {
                at: parse_china_time(&t.upload_time).ok_or_else(|| {
                    CarrierError::BadResponse("YTO upload_Time is not a time".into())
                })?,
                status: Info::parse(&t.info_content).status(),
                description: t.process_info,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub logistics_no: String,
    pub cancel_desc: String,
}

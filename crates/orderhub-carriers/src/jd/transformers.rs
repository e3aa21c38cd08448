//! JD Logistics open platform (京东物流 LOP, ECAP) wire shapes and pure conversions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{goods_name, parse_china_time, total_quantity};
use crate::{CarrierError, TrackEvent, TrackStatus, WaybillRequest, parse_json, short, sign};

pub const CREATE: &str = "/ecap/v1/orders/create";
pub const TRACK: &str = "/ecap/v1/orders/trace/query";
pub const CANCEL: &str = "/ecap/v1/orders/cancel";
pub const VERSION: &str = "2.0";
pub const DOMAIN: &str = "ECAP";

/// Gateway codes not found in public material; chosen, see SOURCES.md.
pub const SIGNATURE: i64 = 1007;
pub const THROTTLED: i64 = 1009;

/// `md5-salt`: lower-case hex MD5 of `secret + "access_token" + token + "app_key" + key +
/// "method" + path + "param_json" + body + "timestamp" + ts + "v" + "2.0" + secret`.
pub fn sign(
    secret: &str,
    token: &str,
    app_key: &str,
    path: &str,
    body: &str,
    timestamp: &str,
) -> String {
    let content = format!(
        "{secret}access_token{token}app_key{app_key}method{path}param_json{body}timestamp{timestamp}v{VERSION}{secret}"
    );
    sign::md5_hex(content.as_bytes())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub name: String,
    pub mobile: String,
    pub full_address: String,
}

impl From<&crate::Address> for Contact {
    fn from(a: &crate::Address) -> Contact {
        Contact {
            name: a.name.clone(),
            mobile: a.phone.clone(),
            full_address: format!("{}{}{}{}", a.province, a.city, a.district, a.detail),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Create {
    pub order_id: String,
    pub customer_code: String,
    /// 1 = express.
    pub order_origin: u32,
    pub sender_contact: Contact,
    pub receiver_contact: Contact,
    pub products_req: ProductsReq,
    /// 3 = monthly settlement.
    pub settle_type: u32,
    pub cargoes: Vec<Cargo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductsReq {
    /// ed-m-0001 = 京东标快.
    pub product_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cargo {
    pub name: String,
    pub quantity: u32,
    /// Kilograms.
    pub weight: rust_decimal::Decimal,
    pub volume: rust_decimal::Decimal,
}

pub fn create(req: &WaybillRequest, customer_code: &str) -> Create {
    Create {
        order_id: req.merchant_order_no(),
        customer_code: customer_code.to_string(),
        order_origin: 1,
        sender_contact: (&req.sender).into(),
        receiver_contact: (&req.receiver).into(),
        products_req: ProductsReq {
            product_code: "ed-m-0001".into(),
        },
        settle_type: 3,
        cargoes: vec![Cargo {
            name: goods_name(req),
            quantity: total_quantity(req),
            weight: req.weight_kg.round_dp(3),
            volume: rust_decimal::Decimal::ZERO,
        }],
        remark: req.remark.clone(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    /// A number in JD's answers; tolerate a string.
    pub code: Value,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub data: Option<Value>,
}

pub fn parse_answer(body: &[u8]) -> Result<Value, CarrierError> {
    let a: Answer = parse_json("JD answer", body)?;
    let code = match &a.code {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| CarrierError::BadResponse("JD code is not a number".into()))?;
    match code {
        0 => Ok(a.data.unwrap_or(Value::Null)),
        THROTTLED => Err(CarrierError::Throttled { retry_after: None }),
        other => Err(CarrierError::Rejected {
            code: other.to_string(),
            message: short(a.msg.as_deref().unwrap_or("")),
        }),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub waybill_code: String,
    pub order_code: String,
}

pub fn created(data: Value) -> Result<(String, String), CarrierError> {
    let c: Created = serde_json::from_value(data)
        .map_err(|_| CarrierError::BadResponse("JD data is not an order".into()))?;
    if c.waybill_code.is_empty() {
        return Err(CarrierError::BadResponse(
            "JD issued no waybill code".into(),
        ));
    }
    Ok((c.waybill_code, c.order_code))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceQuery {
    pub waybill_code: String,
    pub customer_code: String,
    pub order_origin: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Traces {
    pub waybill_code: String,
    #[serde(default)]
    pub trace_details: Vec<TraceDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceDetail {
    pub operation_time: String,
    #[serde(default)]
    pub operation_title: String,
    #[serde(default)]
    pub operation_remark: String,
    pub category: String,
}

/// Trace categories (chosen codes, see SOURCES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Ordered,
    Collected,
    Transport,
    Delivering,
    Signed,
    Abnormal,
    Unknown,
}

impl Category {
    pub fn parse(s: &str) -> Category {
        match s {
            "100" => Category::Ordered,
            "200" => Category::Collected,
            "300" => Category::Transport,
            "400" => Category::Delivering,
            "500" => Category::Signed,
            "600" => Category::Abnormal,
            _ => Category::Unknown,
        }
    }

    pub fn status(self) -> TrackStatus {
        match self {
            Category::Ordered => TrackStatus::Accepted,
            Category::Collected => TrackStatus::PickedUp,
            Category::Transport | Category::Delivering => TrackStatus::InTransit,
            Category::Signed => TrackStatus::Delivered,
            Category::Abnormal | Category::Unknown => TrackStatus::Exception,
        }
    }
}

pub fn track_events(data: Value) -> Result<Vec<TrackEvent>, CarrierError> {
    let t: Traces = serde_json::from_value(data)
        .map_err(|_| CarrierError::BadResponse("JD data is not a trace".into()))?;
    t.trace_details
        .into_iter()
        .map(|d| {
            Ok(TrackEvent {
                at: parse_china_time(&d.operation_time).ok_or_else(|| {
                    CarrierError::BadResponse("JD operationTime is not a time".into())
                })?,
                status: Category::parse(&d.category).status(),
                description: d.operation_title,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub waybill_code: String,
    pub customer_code: String,
    pub order_origin: u32,
    pub cancel_reason: String,
    pub cancel_reason_code: String,
}

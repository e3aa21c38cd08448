//! EMS (中国邮政速递 协议客户 API 开放平台) wire shapes and pure conversions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{china_time_string, grams, parse_china_time};
use crate::{CarrierError, TrackEvent, TrackStatus, WaybillRequest, parse_json, short, sign};

pub const PATH: &str = "/amp-prod-api/f/amp/api/open";
pub const CREATE: &str = "020003";
pub const TRACK: &str = "040001";
pub const CANCEL: &str = "020006";
pub const PREFIX: &str = "|$4|";
/// Not found in public material; chosen, see SOURCES.md.
pub const SIGNATURE: &str = "S00001";
pub const THROTTLED: &str = "S00009";

/// `logitcsInterface = "|$4|" + Base64(SM4-ECB-PKCS7(json + signKey, key = Base64Decode(signKey)))`.
/// `None` if the key is not 16 bytes of Base64.
pub fn encrypt(json: &str, sign_key: &str) -> Option<String> {
    let key = sign::b64_decode(sign_key)?;
    let cipher = sign::sm4_ecb_encrypt(&key, format!("{json}{sign_key}").as_bytes())?;
    Some(format!("{PREFIX}{}", sign::b64(&cipher)))
}

/// The inverse, checking the key suffix: the JSON, or `None` if it is not ours.
pub fn decrypt(field: &str, sign_key: &str) -> Option<String> {
    let key = sign::b64_decode(sign_key)?;
    let cipher = sign::b64_decode(field.strip_prefix(PREFIX)?)?;
    let plain = String::from_utf8(sign::sm4_ecb_decrypt(&key, &cipher)?).ok()?;
    plain.strip_suffix(sign_key).map(str::to_string)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub mobile: String,
    pub prov: String,
    pub city: String,
    pub county: String,
    pub address: String,
}

impl From<&crate::Address> for Party {
    fn from(a: &crate::Address) -> Party {
        Party {
            name: a.name.clone(),
            mobile: a.phone.clone(),
            prov: a.province.clone(),
            city: a.city.clone(),
            county: a.district.clone(),
            address: a.detail.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrder {
    pub created_time: String,
    pub ecommerce_user_id: String,
    pub sender_no: String,
    pub logistics_order_no: String,
    /// 3 = goods.
    pub contents_attribute: String,
    /// 10 = 电商标快.
    pub biz_product_no: String,
    /// Grams.
    pub weight: String,
    pub sender: Party,
    pub receiver: Party,
    pub cargos: Vec<Cargo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cargo {
    pub cargo_name: String,
    pub cargo_quantity: String,
}

pub fn create_order(
    req: &WaybillRequest,
    sender_no: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> CreateOrder {
    CreateOrder {
        created_time: china_time_string(now),
        ecommerce_user_id: req.tenant_id.chars().take(50).collect(),
        sender_no: sender_no.to_string(),
        logistics_order_no: req.merchant_order_no(),
        contents_attribute: "3".into(),
        biz_product_no: "10".into(),
        weight: grams(req.weight_kg).to_string(),
        sender: (&req.sender).into(),
        receiver: (&req.receiver).into(),
        cargos: req
            .items
            .iter()
            .map(|i| Cargo {
                cargo_name: i.title.clone(),
                cargo_quantity: i.quantity.to_string(),
            })
            .collect(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    #[serde(default)]
    pub serial_no: Option<String>,
    pub ret_code: String,
    #[serde(default)]
    pub ret_msg: Option<String>,
    /// A JSON document in a string.
    #[serde(default)]
    pub ret_body: Option<String>,
    #[serde(default)]
    pub success: Option<bool>,
}

pub fn parse_answer(body: &[u8]) -> Result<Value, CarrierError> {
    let a: Answer = parse_json("EMS answer", body)?;
    match a.ret_code.as_str() {
        "00000" => {
            let inner = a.ret_body.unwrap_or_default();
            if inner.trim().is_empty() {
                return Ok(Value::Null);
            }
            parse_json("EMS retBody", inner.as_bytes())
        }
        THROTTLED => Err(CarrierError::Throttled { retry_after: None }),
        _ => Err(CarrierError::Rejected {
            code: a.ret_code,
            message: short(a.ret_msg.as_deref().unwrap_or("")),
        }),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub logistics_order_no: String,
    pub waybill_no: String,
    #[serde(default)]
    pub route_code: Option<String>,
}

pub fn created(v: Value) -> Result<(String, String), CarrierError> {
    // The body is one object, or a one-element array of them.
    let v = match v {
        Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        other => other,
    };
    let c: Created = serde_json::from_value(v)
        .map_err(|_| CarrierError::BadResponse("EMS retBody is not an order".into()))?;
    if c.waybill_no.is_empty() {
        return Err(CarrierError::BadResponse(
            "EMS issued no waybill number".into(),
        ));
    }
    Ok((c.waybill_no, c.logistics_order_no))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackQuery {
    pub waybill_no: String,
    /// 0 = ascending by time.
    pub direction: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    pub waybill_no: String,
    pub op_time: String,
    pub op_code: String,
    #[serde(default)]
    pub op_name: String,
    #[serde(default)]
    pub op_desc: String,
}

/// EMS operation codes (chosen subset, see SOURCES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Ordered,
    Posted,
    Transit,
    Delivering,
    Delivered,
    Undelivered,
    Unknown,
}

impl OpCode {
    pub fn parse(s: &str) -> OpCode {
        match s {
            "100" => OpCode::Ordered,
            "203" => OpCode::Posted,
            "306" | "389" => OpCode::Transit,
            "702" => OpCode::Delivering,
            "704" => OpCode::Delivered,
            "711" => OpCode::Undelivered,
            _ => OpCode::Unknown,
        }
    }

    pub fn status(self) -> TrackStatus {
        match self {
            OpCode::Ordered => TrackStatus::Accepted,
            OpCode::Posted => TrackStatus::PickedUp,
            OpCode::Transit | OpCode::Delivering => TrackStatus::InTransit,
            OpCode::Delivered => TrackStatus::Delivered,
            OpCode::Undelivered | OpCode::Unknown => TrackStatus::Exception,
        }
    }
}

pub fn track_events(v: Value) -> Result<Vec<TrackEvent>, CarrierError> {
    let traces: Vec<Trace> = serde_json::from_value(v)
        .map_err(|_| CarrierError::BadResponse("EMS retBody is not a trace list".into()))?;
    traces
        .into_iter()
        .map(|t| {
            Ok(TrackEvent {
                at: parse_china_time(&t.op_time)
                    .ok_or_else(|| CarrierError::BadResponse("EMS opTime is not a time".into()))?,
                status: OpCode::parse(&t.op_code).status(),
                description: t.op_name,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub logistics_order_no: String,
    pub waybill_no: String,
    pub cancel_reason: String,
}

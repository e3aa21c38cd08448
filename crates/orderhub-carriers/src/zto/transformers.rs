//! ZTO open platform (中通 ZOP) wire shapes and pure conversions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{from_millis, kg, total_quantity};
use crate::{CarrierError, TrackEvent, TrackStatus, WaybillRequest, parse_json, short, sign};

pub const CREATE: &str = "zto.open.createOrder";
pub const TRACK: &str = "zto.merchant.waybill.track.query";
pub const CANCEL: &str = "zto.open.cancelPreOrder";

/// Status codes of ZOP's error answers. `SIGNATURE` and `THROTTLED` were not found in public
/// material; chosen, see SOURCES.md.
pub const SIGNATURE: &str = "S01";
pub const THROTTLED: &str = "S05";

/// `x-dataDigest = Base64(MD5(body + appSecret))` over the exact JSON body sent.
pub fn data_digest(body: &str, app_secret: &str) -> String {
    sign::md5_base64(format!("{body}{app_secret}").as_bytes())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrder {
    /// 1 = group customer, 2 = other.
    pub partner_type: String,
    /// 1 = network-wide waybill.
    pub order_type: String,
    pub partner_order_code: String,
    pub account_info: AccountInfo,
    pub sender_info: SenderInfo,
    pub receive_info: ReceiveInfo,
    pub summary_info: SummaryInfo,
    #[serde(default)]
    pub order_items: Vec<OrderItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    pub account_id: String,
    #[serde(rename = "type")]
    pub kind: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SenderInfo {
    pub sender_name: String,
    pub sender_mobile: String,
    pub sender_province: String,
    pub sender_city: String,
    pub sender_district: String,
    pub sender_address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiveInfo {
    pub receiver_name: String,
    pub receiver_mobile: String,
    pub receiver_province: String,
    pub receiver_city: String,
    pub receiver_district: String,
    pub receiver_address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryInfo {
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub name: String,
    pub quantity: u32,
    #[serde(default)]
    pub weight: String,
}

pub fn create_order(req: &WaybillRequest, account_id: &str) -> CreateOrder {
    let s = &req.sender;
    let r = &req.receiver;
    CreateOrder {
        partner_type: "2".into(),
        order_type: "1".into(),
        partner_order_code: req.merchant_order_no(),
        account_info: AccountInfo {
            account_id: account_id.to_string(),
            kind: 1,
        },
        sender_info: SenderInfo {
            sender_name: s.name.clone(),
            sender_mobile: s.phone.clone(),
            sender_province: s.province.clone(),
            sender_city: s.city.clone(),
            sender_district: s.district.clone(),
            sender_address: s.detail.clone(),
        },
        receive_info: ReceiveInfo {
            receiver_name: r.name.clone(),
            receiver_mobile: r.phone.clone(),
            receiver_province: r.province.clone(),
            receiver_city: r.city.clone(),
            receiver_district: r.district.clone(),
            receiver_address: r.detail.clone(),
        },
        summary_info: SummaryInfo {
            quantity: total_quantity(req),
        },
        order_items: req
            .items
            .iter()
            .map(|i| OrderItem {
                name: i.title.clone(),
                quantity: i.quantity,
                weight: String::new(),
            })
            .chain(std::iter::once(OrderItem {
                name: "总重".into(),
                quantity: 0,
                weight: kg(req.weight_kg),
            }))
            .filter(|i| i.quantity > 0 || !i.weight.is_empty())
            .collect(),
        remark: req.remark.clone(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub status: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub status_code: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
}

pub fn parse_answer(body: &[u8]) -> Result<Value, CarrierError> {
    let a: Answer = parse_json("ZTO answer", body)?;
    if a.status {
        return Ok(a.result.unwrap_or(Value::Null));
    }
    let code = a.status_code.unwrap_or_default();
    let message = short(a.message.as_deref().unwrap_or(""));
    Err(match code.as_str() {
        THROTTLED => CarrierError::Throttled { retry_after: None },
        _ => CarrierError::Rejected { code, message },
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub bill_code: String,
    pub order_code: String,
    #[serde(default)]
    pub site_code: Option<String>,
}

pub fn created(result: Value) -> Result<(String, String), CarrierError> {
    let c: Created = serde_json::from_value(result)
        .map_err(|_| CarrierError::BadResponse("ZTO result is not an order".into()))?;
    if c.bill_code.is_empty() {
        return Err(CarrierError::BadResponse("ZTO issued no bill code".into()));
    }
    Ok((c.bill_code, c.order_code))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackQuery {
    pub bill_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scan {
    pub scan_type: String,
    /// Milliseconds since the epoch.
    pub scan_date: i64,
    #[serde(default)]
    pub desc: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanType {
    /// 下单 (order placed; chosen name, see SOURCES.md)
    Ordered,
    /// 收件
    Collected,
    /// 发件, 到件
    Transit,
    /// 派件
    Delivering,
    /// 签收
    Signed,
    /// 问题件, 退件
    Problem,
    Unknown,
}

impl ScanType {
    pub fn parse(s: &str) -> ScanType {
        match s {
            "下单" => ScanType::Ordered,
            "收件" => ScanType::Collected,
            "发件" | "到件" => ScanType::Transit,
            "派件" => ScanType::Delivering,
            "签收" => ScanType::Signed,
            "问题件" | "退件" => ScanType::Problem,
            _ => ScanType::Unknown,
        }
    }

    pub fn status(self) -> TrackStatus {
        match self {
            ScanType::Ordered => TrackStatus::Accepted,
            ScanType::Collected => TrackStatus::PickedUp,
            ScanType::Transit | ScanType::Delivering => TrackStatus::InTransit,
            ScanType::Signed => TrackStatus::Delivered,
            ScanType::Problem | ScanType::Unknown => TrackStatus::Exception,
        }
    }
}

pub fn track_events(result: Value) -> Result<Vec<TrackEvent>, CarrierError> {
    let scans: Vec<Scan> = serde_json::from_value(result)
        .map_err(|_| CarrierError::BadResponse("ZTO result is not a scan list".into()))?;
    scans
        .into_iter()
        .map(|s| {
            Ok(TrackEvent {
                at: from_millis(s.scan_date)
                    .ok_or_else(|| CarrierError::BadResponse("ZTO scanDate out of range".into()))?,
                status: ScanType::parse(&s.scan_type).status(),
                description: s.desc,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub cancel_type: String,
    pub bill_code: String,
}

// Track push (轨迹推送, after 轨迹订阅): ZTO posts form-encoded `msg_type=Traces`, `company_id`,
// `data` (JSON: one scan, or a list of them) and `data_digest = Base64(MD5(data + key))`, and
// wants `{"status":true,"message":"","result":"success","statusCode":"0"}` back.

pub const PUSH_MSG_TYPE: &str = "Traces";

/// One pushed scan. `scanDate` is milliseconds or `yyyy-MM-dd HH:mm:ss` (both seen).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedScan {
    pub bill_code: String,
    pub scan_type: String,
    pub scan_date: Value,
    #[serde(default)]
    pub desc: String,
}

/// Push scan types: the subscription's English codes (`SIGN`, `RESIGN` seen in a public client;
/// `GOT`, `DEPARTURE`, `ARRIVAL`, `DISPATCH`, `PROBLEM`, `RETURN` chosen, see SOURCES.md) and the
/// Chinese names the query API uses.
pub fn push_scan_status(s: &str) -> TrackStatus {
    match s {
        "GOT" => TrackStatus::PickedUp,
        "DEPARTURE" | "ARRIVAL" | "DISPATCH" => TrackStatus::InTransit,
        "SIGN" => TrackStatus::Delivered,
        "RESIGN" | "PROBLEM" | "RETURN" => TrackStatus::Exception,
        other => ScanType::parse(other).status(),
    }
}

/// Verifies (constant time; `company_id` must be the account's) and parses a track push.
pub fn parse_track_push(
    body: &[u8],
    company_id: &str,
    key: &str,
) -> Result<Vec<(String, TrackEvent)>, crate::PushError> {
    let form = crate::wire::form_decode(body);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let expected = data_digest(field("data"), key);
    if field("data_digest").is_empty()
        || !sign::constant_time_eq(expected.as_bytes(), field("data_digest").as_bytes())
        || field("company_id") != company_id
    {
        return Err(crate::PushError::BadSignature);
    }
    if field("msg_type") != PUSH_MSG_TYPE {
        return Err(crate::PushError::Malformed("msg_type is not Traces".into()));
    }
    let data: Value = serde_json::from_str(field("data"))
        .map_err(|_| crate::PushError::Malformed("data is not JSON".into()))?;
    let scans: Vec<PushedScan> = match data {
        Value::Array(_) => serde_json::from_value(data),
        other => serde_json::from_value(other).map(|s| vec![s]),
    }
    .map_err(|_| crate::PushError::Malformed("data is not a scan".into()))?;
    scans
        .into_iter()
        .map(|s| {
            let at = match &s.scan_date {
                Value::Number(n) => n.as_i64().and_then(from_millis),
                Value::String(t) => t
                    .parse::<i64>()
                    .ok()
                    .and_then(from_millis)
                    .or_else(|| crate::wire::parse_china_time(t)),
                _ => None,
            }
            .ok_or_else(|| crate::PushError::Malformed("scanDate is not a time".into()))?;
            Ok((
                s.bill_code,
                TrackEvent {
                    at,
                    status: push_scan_status(&s.scan_type),
                    description: short(&s.desc),
                },
            ))
        })
        .collect()
}

/// What ZTO expects back.
pub fn track_push_answer(ok: bool) -> Vec<u8> {
    let v = if ok {
        serde_json::json!({"status": true, "message": "", "result": "success", "statusCode": "0"})
    } else {
        serde_json::json!({"status": false, "message": "refused", "result": "fail", "statusCode": ""})
    };
    v.to_string().into_bytes()
}

/// A track push as ZTO sends it, signed with `key` (tests, the simulator).
pub fn track_push_form(company_id: &str, key: &str, scans: &[PushedScan]) -> String {
    let data = serde_json::to_string(scans).unwrap_or_default();
    let digest = data_digest(&data, key);
    crate::wire::form_encode(&[
        ("msg_type", PUSH_MSG_TYPE),
        ("company_id", company_id),
        ("data", &data),
        ("data_digest", &digest),
    ])
}

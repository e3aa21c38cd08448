//! Cainiao link gateway (菜鸟 PAC/LINK) wire shapes and pure conversions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{grams, parse_china_time};
use crate::{CarrierError, TrackEvent, TrackStatus, WaybillRequest, parse_json, short, sign};

pub const PATH: &str = "/gateway/link.do";
pub const GET: &str = "TMS_WAYBILL_GET";
pub const DISCARD: &str = "TMS_WAYBILL_DISCARD";
/// Not found in public material; chosen, see SOURCES.md.
pub const TRACE: &str = "TMS_WAYBILL_TRACE_QUERY";
/// Chosen, see SOURCES.md.
pub const SIGNATURE: &str = "S12";
pub const THROTTLED: &str = "S14";

/// `data_digest = Base64(MD5(logistics_interface + secret))`.
pub fn data_digest(content: &str, secret: &str) -> String {
    sign::md5_base64(format!("{content}{secret}").as_bytes())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CnAddress {
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub mobile: String,
    pub address: CnAddress,
}

impl From<&crate::Address> for Party {
    fn from(a: &crate::Address) -> Party {
        Party {
            name: a.name.clone(),
            mobile: a.phone.clone(),
            address: CnAddress {
                province: a.province.clone(),
                city: a.city.clone(),
                district: a.district.clone(),
                detail: a.detail.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaybillGet {
    pub cp_code: String,
    pub sender: Party,
    pub trade_order_info_dtos: Vec<TradeOrderInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeOrderInfo {
    /// Our key for this parcel in the answer; the merchant order number.
    pub object_id: String,
    pub order_info: OrderInfo,
    pub package_info: PackageInfo,
    pub recipient: Party,
    pub template_url: String,
    pub user_id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderInfo {
    pub order_channels_type: String,
    pub trade_order_list: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageInfo {
    pub id: String,
    pub items: Vec<PackageItem>,
    /// Grams.
    pub weight: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageItem {
    pub name: String,
    pub count: u32,
}

pub fn waybill_get(req: &WaybillRequest, cp_code: &str) -> WaybillGet {
    let order_no = req.merchant_order_no();
    WaybillGet {
        cp_code: cp_code.to_string(),
        sender: (&req.sender).into(),
        trade_order_info_dtos: vec![TradeOrderInfo {
            object_id: order_no.clone(),
            order_info: OrderInfo {
                order_channels_type: "OTHERS".into(),
                trade_order_list: vec![order_no.clone()],
            },
            package_info: PackageInfo {
                id: order_no,
                items: req
                    .items
                    .iter()
                    .map(|i| PackageItem {
                        name: i.title.clone(),
                        count: i.quantity,
                    })
                    .collect(),
                weight: grams(req.weight_kg),
            },
            recipient: (&req.receiver).into(),
            template_url: "http://cloudprint.cainiao.com/template/standard/101/123".into(),
            user_id: 0,
        }],
    }
}

/// Every answer: `success` (a bool or "true"/"false"), `errorCode`, `errorMsg`, then the API's
/// own fields.
pub fn parse_answer(body: &[u8]) -> Result<Value, CarrierError> {
    let v: Value = parse_json("Cainiao answer", body)?;
    let obj = v
        .as_object()
        .ok_or_else(|| CarrierError::BadResponse("Cainiao answer is not an object".into()))?;
    let success = match obj.get("success") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" => true,
        Some(Value::String(s)) if s == "false" => false,
        _ => {
            return Err(CarrierError::BadResponse(
                "Cainiao answer has no success flag".into(),
            ));
        }
    };
    if success {
        return Ok(v);
    }
    let code = obj
        .get("errorCode")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let message = short(obj.get("errorMsg").and_then(Value::as_str).unwrap_or(""));
    Err(if code == THROTTLED {
        CarrierError::Throttled { retry_after: None }
    } else {
        CarrierError::Rejected { code, message }
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaybillGetResponse {
    #[serde(default)]
    pub waybill_cloud_print_response_list: Vec<CloudPrint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudPrint {
    pub object_id: String,
    pub waybill_code: String,
    #[serde(default)]
    pub print_data: String,
}

pub fn created(v: Value, object_id: &str) -> Result<(String, String), CarrierError> {
    let r: WaybillGetResponse = serde_json::from_value(v)
        .map_err(|_| CarrierError::BadResponse("Cainiao answer is not a waybill list".into()))?;
    let p = r
        .waybill_cloud_print_response_list
        .into_iter()
        .find(|p| p.object_id == object_id && !p.waybill_code.is_empty())
        .ok_or_else(|| {
            CarrierError::BadResponse("Cainiao issued no waybill for the parcel".into())
        })?;
    Ok((p.waybill_code, p.object_id))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByWaybill {
    pub cp_code: String,
    pub waybill_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceResponse {
    #[serde(default)]
    pub full_trace_detail: Vec<TraceDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceDetail {
    pub time: String,
    pub action: String,
    #[serde(default)]
    pub desc: String,
}

/// Cainiao's normalized logistics actions (chosen names, see SOURCES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Got,
    Transport,
    Delivering,
    Sign,
    Failed,
    Unknown,
}

impl Action {
    pub fn parse(s: &str) -> Action {
        match s {
            "ACCEPT" => Action::Accept,
            "GOT" => Action::Got,
            "DEPARTURE" | "ARRIVAL" | "TRANSPORT" => Action::Transport,
            "DELIVERING" => Action::Delivering,
            "SIGN" => Action::Sign,
            "FAILED" | "REJECT" => Action::Failed,
            _ => Action::Unknown,
        }
    }

    pub fn status(self) -> TrackStatus {
        match self {
            Action::Accept => TrackStatus::Accepted,
            Action::Got => TrackStatus::PickedUp,
            Action::Transport | Action::Delivering => TrackStatus::InTransit,
            Action::Sign => TrackStatus::Delivered,
            Action::Failed | Action::Unknown => TrackStatus::Exception,
        }
    }
}

pub fn track_events(v: Value) -> Result<Vec<TrackEvent>, CarrierError> {
    let r: TraceResponse = serde_json::from_value(v)
        .map_err(|_| CarrierError::BadResponse("Cainiao answer is not a trace".into()))?;
    r.full_trace_detail
        .into_iter()
        .map(|d| {
            Ok(TrackEvent {
                at: parse_china_time(&d.time).ok_or_else(|| {
                    CarrierError::BadResponse("Cainiao time is not a time".into())
                })?,
                status: Action::parse(&d.action).status(),
                description: d.desc,
            })
        })
        .collect()
}

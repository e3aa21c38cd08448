//! SF Express open platform (丰桥) wire shapes and pure conversions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{kg, parse_china_time, total_quantity};
use crate::{CarrierError, TrackEvent, TrackStatus, WaybillRequest, parse_json, short, sign};

pub const CREATE: &str = "EXP_RECE_CREATE_ORDER";
pub const ROUTES: &str = "EXP_RECE_SEARCH_ROUTES";
pub const UPDATE: &str = "EXP_RECE_UPDATE_ORDER";
pub const PATH: &str = "/std/service";

/// `msgDigest = Base64(MD5(URLEncode(msgData + timestamp + checkWord)))`, URL encoding as Java's.
pub fn msg_digest(msg_data: &str, timestamp: &str, check_word: &str) -> String {
    let text = format!("{msg_data}{timestamp}{check_word}");
    sign::md5_base64(sign::java_url_encode(&text).as_bytes())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrder {
    pub language: String,
    pub order_id: String,
    pub cargo_details: Vec<CargoDetail>,
    pub contact_info_list: Vec<ContactInfo>,
    #[serde(default)]
    pub monthly_card: String,
    /// 1 = 顺丰特快, 2 = 顺丰标快.
    #[serde(default)]
    pub express_type_id: u32,
    /// 1 = sender pays.
    #[serde(default)]
    pub pay_method: u32,
    #[serde(default)]
    pub parcel_qty: u32,
    #[serde(default)]
    pub total_weight: String,
    #[serde(default)]
    pub is_return_routelabel: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CargoDetail {
    pub name: String,
    pub count: u32,
    pub unit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    /// 1 = sender, 2 = receiver.
    pub contact_type: u32,
    pub contact: String,
    pub mobile: String,
    pub country: String,
    pub province: String,
    pub city: String,
    pub county: String,
    pub address: String,
}

pub fn create_order(req: &WaybillRequest, monthly_card: &str) -> CreateOrder {
    let contact = |t: u32, a: &crate::Address| ContactInfo {
        contact_type: t,
        contact: a.name.clone(),
        mobile: a.phone.clone(),
        country: "CN".into(),
        province: a.province.clone(),
        city: a.city.clone(),
        county: a.district.clone(),
        address: a.detail.clone(),
    };
    CreateOrder {
        language: "zh-CN".into(),
        order_id: req.merchant_order_no(),
        cargo_details: req
            .items
            .iter()
            .map(|i| CargoDetail {
                name: i.title.clone(),
                count: i.quantity,
                unit: "件".into(),
            })
            .collect(),
        contact_info_list: vec![contact(1, &req.sender), contact(2, &req.receiver)],
        monthly_card: monthly_card.to_string(),
        express_type_id: 2,
        pay_method: 1,
        parcel_qty: req.parcels.max(1),
        total_weight: kg(req.weight_kg),
        is_return_routelabel: 0,
        remark: req.remark.clone().or_else(|| {
            (total_quantity(req) > 1).then(|| format!("{} items", total_quantity(req)))
        }),
    }
}

/// The outer envelope of every SF answer. `apiResultData` is a JSON document in a string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub api_result_code: String,
    #[serde(default)]
    pub api_error_msg: Option<String>,
    #[serde(default, rename = "apiResponseID")]
    pub api_response_id: Option<String>,
    #[serde(default)]
    pub api_result_data: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultData {
    pub success: bool,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_msg: Option<String>,
    #[serde(default)]
    pub msg_data: Option<Value>,
}

/// Gateway codes: A1000 success; A1005 traffic control (流量受控); A1009/A1099 SF-side faults;
/// the other A10xx are refusals of this request (missing field, expired, IP, permission,
/// signature). See SOURCES.md.
pub fn parse_envelope(body: &[u8]) -> Result<Value, CarrierError> {
    let env: Envelope = parse_json("SF envelope", body)?;
    let message = short(env.api_error_msg.as_deref().unwrap_or(""));
    match env.api_result_code.as_str() {
        "A1000" => {}
        "A1005" => return Err(CarrierError::Throttled { retry_after: None }),
        "A1009" | "A1099" => {
            return Err(CarrierError::Unavailable(format!(
                "SF {}: {message}",
                env.api_result_code
            )));
        }
        "A1001" | "A1002" | "A1003" | "A1004" | "A1006" | "A1007" | "A1008" => {
            return Err(CarrierError::Rejected {
                code: env.api_result_code,
                message,
            });
        }
        other => {
            return Err(CarrierError::BadResponse(format!(
                "SF answered an unknown code {}",
                short(other)
            )));
        }
    }
    let data = env.api_result_data.ok_or_else(|| {
        CarrierError::BadResponse("SF answered A1000 without apiResultData".into())
    })?;
    let result: ResultData = parse_json("SF apiResultData", data.as_bytes())?;
    if !result.success {
        return Err(CarrierError::Rejected {
            code: result.error_code.unwrap_or_default(),
            message: short(result.error_msg.as_deref().unwrap_or("")),
        });
    }
    Ok(result.msg_data.unwrap_or(Value::Null))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub order_id: String,
    #[serde(default)]
    pub waybill_no_info_list: Vec<WaybillNoInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaybillNoInfo {
    /// 1 = main waybill, 2 = child, 3 = return.
    pub waybill_type: u32,
    pub waybill_no: String,
}

/// (tracking number, SF's echo of our order id).
pub fn created(msg_data: Value) -> Result<(String, String), CarrierError> {
    let c: Created = serde_json::from_value(msg_data)
        .map_err(|_| CarrierError::BadResponse("SF msgData is not an order".into()))?;
    let main = c
        .waybill_no_info_list
        .iter()
        .find(|w| w.waybill_type == 1)
        .or_else(|| c.waybill_no_info_list.first())
        .filter(|w| !w.waybill_no.is_empty())
        .ok_or_else(|| CarrierError::BadResponse("SF issued no waybill number".into()))?;
    Ok((main.waybill_no.clone(), c.order_id))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteQuery {
    /// 1 = by waybill number.
    pub tracking_type: u32,
    pub tracking_number: Vec<String>,
    pub method_type: u32,
    pub language: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    #[serde(default)]
    pub route_resps: Vec<RouteResp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteResp {
    pub mail_no: String,
    #[serde(default)]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub accept_time: String,
    #[serde(default)]
    pub accept_address: String,
    #[serde(default)]
    pub remark: String,
    pub op_code: String,
}

/// SF operation codes we know; anything else is an exception to look at, never a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 54: order received (chosen, see SOURCES.md).
    Received,
    /// 50: picked up (顺丰已收取快件).
    PickedUp,
    /// 30, 31, 36: sorting and line-haul scans.
    Transit,
    /// 44: out for delivery (派送中).
    Delivering,
    /// 80: signed for (已签收).
    Signed,
    /// 70, 33: delivery failed, held.
    Problem,
    Unknown,
}

impl OpCode {
    pub fn parse(s: &str) -> OpCode {
        match s {
            "54" => OpCode::Received,
            "50" => OpCode::PickedUp,
            "30" | "31" | "36" => OpCode::Transit,
            "44" => OpCode::Delivering,
            "80" => OpCode::Signed,
            "70" | "33" => OpCode::Problem,
            _ => OpCode::Unknown,
        }
    }

    pub fn status(self) -> TrackStatus {
        match self {
            OpCode::Received => TrackStatus::Accepted,
            OpCode::PickedUp => TrackStatus::PickedUp,
            OpCode::Transit | OpCode::Delivering => TrackStatus::InTransit,
            OpCode::Signed => TrackStatus::Delivered,
            OpCode::Problem | OpCode::Unknown => TrackStatus::Exception,
        }
    }
}

pub fn track_events(msg_data: Value, tracking_no: &str) -> Result<Vec<TrackEvent>, CarrierError> {
    let r: Routes = serde_json::from_value(msg_data)
        .map_err(|_| CarrierError::BadResponse("SF msgData is not a route list".into()))?;
    let resp = r
        .route_resps
        .into_iter()
        .find(|r| r.mail_no == tracking_no)
        .ok_or_else(|| {
            CarrierError::BadResponse("SF answered routes for another waybill".into())
        })?;
    resp.routes
        .into_iter()
        .map(|route| {
            let at = parse_china_time(&route.accept_time).ok_or_else(|| {
                CarrierError::BadResponse("SF route acceptTime is not a time".into())
            })?;
            Ok(TrackEvent {
                at,
                status: OpCode::parse(&route.op_code).status(),
                description: route.remark,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateOrder {
    pub order_id: String,
    /// 1 = confirm, 2 = cancel.
    pub deal_type: u32,
    #[serde(default)]
    pub waybill_no_info_list: Vec<WaybillNoInfo>,
}

// Route push (路由推送, RoutePushService): SF posts each new route of a waybill to the URL the
// merchant registered, form-encoded like its API calls (`partnerID`, `requestID`, `serviceCode`,
// `timestamp`, `msgData`, `msgDigest`), `msgData` = `{"Body":{"WaybillRoute":[…]}}`. SF wants
// `{"return_code":"0000","return_msg":"成功"}` back; anything else makes it push again.

pub const ROUTE_PUSH: &str = "RoutePushService";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoutePush {
    #[serde(rename = "Body")]
    pub body: RoutePushBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoutePushBody {
    #[serde(rename = "WaybillRoute", default)]
    pub waybill_route: Vec<WaybillRoute>,
}

/// One pushed route. Field names as SF spells them (`mailno`, `orderid` in lower case).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaybillRoute {
    #[serde(default)]
    pub id: Option<Value>,
    pub mailno: String,
    #[serde(default)]
    pub orderid: Option<String>,
    pub accept_time: String,
    #[serde(default)]
    pub accept_address: String,
    #[serde(default)]
    pub remark: String,
    pub op_code: String,
}

/// Verifies and parses a route push. The digest is checked in constant time against both forms
/// SF's clients compute (`msg_digest` over the Java-URL-encoded text, as SF's SDK signs; and
/// over the raw text, as some receivers check); `partnerID`, when sent, must be the account's.
pub fn parse_route_push(
    body: &[u8],
    partner_id: &str,
    check_word: &str,
) -> Result<Vec<(String, TrackEvent)>, crate::PushError> {
    let form = crate::wire::form_decode(body);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let (msg, ts, digest) = (field("msgData"), field("timestamp"), field("msgDigest"));
    let encoded = msg_digest(msg, ts, check_word);
    let raw = sign::md5_base64(format!("{msg}{ts}{check_word}").as_bytes());
    let signed = !digest.is_empty()
        && (sign::constant_time_eq(encoded.as_bytes(), digest.as_bytes())
            | sign::constant_time_eq(raw.as_bytes(), digest.as_bytes()));
    if !signed || (form.contains_key("partnerID") && field("partnerID") != partner_id) {
        return Err(crate::PushError::BadSignature);
    }
    let push: RoutePush = serde_json::from_str(msg)
        .map_err(|_| crate::PushError::Malformed("msgData is not a WaybillRoute push".into()))?;
    push.body
        .waybill_route
        .into_iter()
        .map(|r| {
            let at = parse_china_time(&r.accept_time).ok_or_else(|| {
                crate::PushError::Malformed("acceptTime is not yyyy-MM-dd HH:mm:ss".into())
            })?;
            Ok((
                r.mailno,
                TrackEvent {
                    at,
                    status: OpCode::parse(&r.op_code).status(),
                    description: short(&r.remark),
                },
            ))
        })
        .collect()
}

/// What SF expects back: `0000` acknowledges; `1000` refuses (SF pushes again later).
pub fn route_push_answer(ok: bool) -> Vec<u8> {
    let (code, msg) = if ok {
        ("0000", "成功")
    } else {
        ("1000", "失败")
    };
    serde_json::json!({"return_code": code, "return_msg": msg})
        .to_string()
        .into_bytes()
}

/// A route push as SF sends it, signed with `check_word` (tests, the simulator).
pub fn route_push_form(
    partner_id: &str,
    check_word: &str,
    timestamp: &str,
    routes: &[WaybillRoute],
) -> String {
    let msg = serde_json::json!({"Body": {"WaybillRoute": routes}}).to_string();
    let digest = msg_digest(&msg, timestamp, check_word);
    crate::wire::form_encode(&[
        ("partnerID", partner_id),
        ("requestID", &uuid::Uuid::new_v4().simple().to_string()),
        ("serviceCode", ROUTE_PUSH),
        ("timestamp", timestamp),
        ("msgData", &msg),
        ("msgDigest", &digest),
    ])
}

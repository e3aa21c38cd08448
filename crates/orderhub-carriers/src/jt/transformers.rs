//! J&T Express China open platform (极兔) wire shapes and pure conversions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{kg, parse_china_time, total_quantity};
use crate::{CarrierError, TrackEvent, TrackStatus, WaybillRequest, parse_json, short, sign};

pub const CREATE: &str = "/webopenplatformapi/api/order/addOrder";
pub const TRACK: &str = "/webopenplatformapi/api/logistics/trace";
pub const CANCEL: &str = "/webopenplatformapi/api/order/cancelOrder";

/// "headers signature verification failed" (documented). `THROTTLED` was not found; chosen.
pub const SIGNATURE: &str = "145003030";
pub const THROTTLED: &str = "145003052";

/// Header `digest = Base64(MD5(bizContent + privateKey))` over the exact bizContent sent.
pub fn header_digest(biz_content: &str, private_key: &str) -> String {
    sign::md5_base64(format!("{biz_content}{private_key}").as_bytes())
}

/// The `digest` inside bizContent: `Base64(MD5(customerCode + UPPER(HEX(MD5(password +
/// "jadada236t2"))) + privateKey))`.
pub fn business_digest(customer_code: &str, password: &str, private_key: &str) -> String {
    let cipher = sign::md5_hex(format!("{password}jadada236t2").as_bytes()).to_uppercase();
    sign::md5_base64(format!("{customer_code}{cipher}{private_key}").as_bytes())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub name: String,
    pub mobile: String,
    pub prov: String,
    pub city: String,
    pub area: String,
    pub address: String,
}

impl From<&crate::Address> for Party {
    fn from(a: &crate::Address) -> Party {
        Party {
            name: a.name.clone(),
            mobile: a.phone.clone(),
            prov: a.province.clone(),
            city: a.city.clone(),
            area: a.district.clone(),
            address: a.detail.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JtItem {
    pub item_name: String,
    pub number: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddOrder {
    pub customer_code: String,
    pub digest: String,
    pub txlogistic_id: String,
    /// EZ = standard express.
    pub express_type: String,
    /// 1 = individual, 2 = monthly settlement.
    pub order_type: String,
    /// 01 = door-to-door pickup.
    pub service_type: String,
    pub delivery_type: String,
    /// PP_PM = sender pays, monthly.
    pub pay_type: String,
    pub sender: Party,
    pub receiver: Party,
    pub goods_type: String,
    pub weight: String,
    pub total_quantity: u32,
    #[serde(default)]
    pub items: Vec<JtItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

pub fn add_order(req: &WaybillRequest, customer_code: &str, digest: String) -> AddOrder {
    AddOrder {
        customer_code: customer_code.to_string(),
        digest,
        txlogistic_id: req.merchant_order_no(),
        express_type: "EZ".into(),
        order_type: "2".into(),
        service_type: "01".into(),
        delivery_type: "04".into(),
        pay_type: "PP_PM".into(),
        sender: (&req.sender).into(),
        receiver: (&req.receiver).into(),
        goods_type: "bm000006".into(),
        weight: kg(req.weight_kg),
        total_quantity: total_quantity(req),
        items: req
            .items
            .iter()
            .map(|i| JtItem {
                item_name: i.title.clone(),
                number: i.quantity,
            })
            .collect(),
        remark: req.remark.clone(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub code: String,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub data: Option<Value>,
}

pub fn parse_answer(body: &[u8]) -> Result<Value, CarrierError> {
    let a: Answer = parse_json("J&T answer", body)?;
    match a.code.as_str() {
        "1" => Ok(a.data.unwrap_or(Value::Null)),
        THROTTLED => Err(CarrierError::Throttled { retry_after: None }),
        _ => Err(CarrierError::Rejected {
            code: a.code,
            message: short(a.msg.as_deref().unwrap_or("")),
        }),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub txlogistic_id: String,
    pub bill_code: String,
    #[serde(default)]
    pub sorting_code: Option<String>,
}

pub fn created(data: Value) -> Result<(String, String), CarrierError> {
    let c: Created = serde_json::from_value(data)
        .map_err(|_| CarrierError::BadResponse("J&T data is not an order".into()))?;
    if c.bill_code.is_empty() {
        return Err(CarrierError::BadResponse("J&T issued no bill code".into()));
    }
    Ok((c.bill_code, c.txlogistic_id))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceQuery {
    pub bill_codes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    pub bill_code: String,
    #[serde(default)]
    pub details: Vec<Detail>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub scan_time: String,
    #[serde(default)]
    pub desc: String,
    pub scan_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanType {
    /// 下单 (chosen, see SOURCES.md)
    Ordered,
    /// 快件揽收
    Collected,
    /// 发件扫描, 到件扫描
    Transit,
    /// 出仓扫描 (out for delivery)
    OutForDelivery,
    /// 快件签收
    Signed,
    /// 问题件扫描, 退件扫描
    Problem,
    Unknown,
}

impl ScanType {
    pub fn parse(s: &str) -> ScanType {
        match s {
            "下单" => ScanType::Ordered,
            "快件揽收" => ScanType::Collected,
            "发件扫描" | "到件扫描" => ScanType::Transit,
            "出仓扫描" => ScanType::OutForDelivery,
            "快件签收" => ScanType::Signed,
            "问题件扫描" | "退件扫描" => ScanType::Problem,
            _ => ScanType::Unknown,
        }
    }

    pub fn status(self) -> TrackStatus {
        match self {
            ScanType::Ordered => TrackStatus::Accepted,
            ScanType::Collected => TrackStatus::PickedUp,
            ScanType::Transit | ScanType::OutForDelivery => TrackStatus::InTransit,
            ScanType::Signed => TrackStatus::Delivered,
            ScanType::Problem | ScanType::Unknown => TrackStatus::Exception,
        }
    }
}

pub fn track_events(data: Value, tracking_no: &str) -> Result<Vec<TrackEvent>, CarrierError> {
    let traces: Vec<Trace> = serde_json::from_value(data)
        .map_err(|_| CarrierError::BadResponse("J&T data is not a trace list".into()))?;
    let trace = traces
        .into_iter()
        .find(|t| t.bill_code == tracking_no)
        .ok_or_else(|| CarrierError::BadResponse("J&T answered another waybill".into()))?;
    trace
        .details
        .into_iter()
        .map(|d| {
            Ok(TrackEvent {
                at: parse_china_time(&d.scan_time).ok_or_else(|| {
                    CarrierError::BadResponse("J&T scanTime is not a time".into())
                })?,
                status: ScanType::parse(&d.scan_type).status(),
                description: d.desc,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrder {
    pub customer_code: String,
    pub digest: String,
    pub txlogistic_id: String,
    pub order_type: String,
    pub reason: String,
}

// Track push (轨迹推送 / 轨迹回传, after 轨迹订阅 `/api/trace/subscribe`): J&T posts the same
// envelope as its API calls, the other way round — form `bizContent=<JSON>` with headers
// `apiAccount`, `digest = Base64(MD5(bizContent + privateKey))` and `timestamp` (ms) — and
// wants `{"code":"1","msg":"success","data":"SUCCESS"}` back. `bizContent` is one waybill
// `{billCode, details[{scanType, scanTypeCode, scanTime, desc}]}`, a list of them, or one scan
// with its fields at the top level (all three seen in receivers; see SOURCES.md).

/// One pushed waybill: its scans in `details`, or a single scan at the top level.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedTrace {
    pub bill_code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<PushedScan>,
    #[serde(default, flatten)]
    pub top: Option<PushedScan>,
}

/// One pushed scan. `scanType` is a name (快件揽收 …); `scanTypeCode` (10, 20, …) is read when
/// the name is not one orderhub knows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedScan {
    #[serde(default)]
    pub scan_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_type_code: Option<Value>,
    pub scan_time: String,
    #[serde(default)]
    pub desc: String,
}

/// The scan node codes J&T documents (10 pick up, 20 departure, 30 arrival, 94 delivery, 100
/// delivery signature, 110 problematic, 172 return, 173 return signed, 200 collected, 300–306
/// terminal).
pub fn scan_code_status(code: &str) -> Option<TrackStatus> {
    Some(match code {
        "10" | "200" => TrackStatus::PickedUp,
        "20" | "30" | "94" => TrackStatus::InTransit,
        "100" => TrackStatus::Delivered,
        "110" | "172" | "173" | "300" | "301" | "302" | "303" | "304" | "305" | "306" => {
            TrackStatus::Exception
        }
        _ => return None,
    })
}

fn pushed_status(s: &PushedScan) -> TrackStatus {
    match ScanType::parse(&s.scan_type) {
        ScanType::Unknown => {
            let code = match &s.scan_type_code {
                Some(Value::String(c)) => c.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            scan_code_status(&code).unwrap_or(TrackStatus::Exception)
        }
        known => known.status(),
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Verifies (constant time; the `apiAccount` header must be the account's) and parses a track
/// push.
pub fn parse_track_push(
    headers: &[(String, String)],
    body: &[u8],
    api_account: &str,
    private_key: &str,
) -> Result<Vec<(String, TrackEvent)>, crate::PushError> {
    let form = crate::wire::form_decode(body);
    let biz = form.get("bizContent").map(String::as_str).unwrap_or("");
    let digest = header(headers, "digest");
    let expected = header_digest(biz, private_key);
    if digest.is_empty()
        || !sign::constant_time_eq(expected.as_bytes(), digest.as_bytes())
        || header(headers, "apiAccount") != api_account
    {
        return Err(crate::PushError::BadSignature);
    }
    let value: Value = serde_json::from_str(biz)
        .map_err(|_| crate::PushError::Malformed("bizContent is not JSON".into()))?;
    let traces: Vec<PushedTrace> = match value {
        Value::Array(_) => serde_json::from_value(value),
        other => serde_json::from_value(other).map(|t| vec![t]),
    }
    .map_err(|_| {
        crate::PushError::Malformed("bizContent is not a billCode with its details".into())
    })?;
    let mut out = Vec::new();
    for t in traces {
        if t.bill_code.is_empty() {
            return Err(crate::PushError::Malformed("billCode is empty".into()));
        }
        let scans = if t.details.is_empty() {
            t.top.into_iter().collect()
        } else {
            t.details
        };
        for s in scans {
            let at = parse_china_time(&s.scan_time)
                .ok_or_else(|| crate::PushError::Malformed("scanTime is not a time".into()))?;
            out.push((
                t.bill_code.clone(),
                TrackEvent {
                    at,
                    status: pushed_status(&s),
                    description: short(&s.desc),
                },
            ));
        }
    }
    Ok(out)
}

/// What J&T expects back: `code` "1" acknowledges; anything else and it pushes again.
pub fn track_push_answer(ok: bool) -> Vec<u8> {
    let v = if ok {
        serde_json::json!({"code": "1", "msg": "success", "data": "SUCCESS"})
    } else {
        serde_json::json!({"code": "0", "msg": "fail", "data": "FAIL"})
    };
    v.to_string().into_bytes()
}

/// A track push as J&T sends it, signed with `private_key`: (headers, form body).
pub fn track_push_request(
    api_account: &str,
    private_key: &str,
    timestamp: &str,
    trace: &PushedTrace,
) -> (Vec<(String, String)>, String) {
    let biz = serde_json::to_string(trace).unwrap_or_default();
    let headers = vec![
        ("apiAccount".to_string(), api_account.to_string()),
        ("digest".to_string(), header_digest(&biz, private_key)),
        ("timestamp".to_string(), timestamp.to_string()),
    ];
    (headers, crate::wire::form_encode(&[("bizContent", &biz)]))
}

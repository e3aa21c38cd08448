//! Cainiao's side of the wire, for the simulator.

use super::transformers as t;
use crate::sign::constant_time_eq;
use crate::sim::{Call, Fault, RawRequest, SimErr, SimOk, SimSettings, Step, Wire, numbered};
use crate::wire::{china_time_string, form_decode};

pub(crate) struct CainiaoWire;

fn failure(code: &str, msg: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"success": "false", "errorCode": code, "errorMsg": msg}))
        .unwrap_or_default()
}

fn action(step: Step) -> &'static str {
    match step {
        Step::Accepted => "ACCEPT",
        Step::PickedUp => "GOT",
        Step::InTransit => "TRANSPORT",
        Step::Delivered => "SIGN",
        Step::Problem => "FAILED",
    }
}

impl Wire for CainiaoWire {
    fn parse(&self, s: &SimSettings, req: &RawRequest) -> Result<Call, Fault> {
        if req.path != t::PATH {
            return Err(Fault::BadRequest("unknown path".into()));
        }
        let form = form_decode(&req.body);
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let content = field("logistics_interface");
        let expected = t::data_digest(content, &s.secret);
        if field("logistic_provider_id") != s.app_key
            || !constant_time_eq(expected.as_bytes(), field("data_digest").as_bytes())
        {
            return Err(Fault::Auth);
        }
        let bad = |_| Fault::BadRequest("logistics_interface does not parse".into());
        match field("msg_type") {
            t::GET => {
                let g: t::WaybillGet = serde_json::from_str(content).map_err(bad)?;
                let dto = g
                    .trade_order_info_dtos
                    .into_iter()
                    .next()
                    .ok_or_else(|| Fault::BadRequest("no tradeOrderInfoDtos".into()))?;
                Ok(Call::Create {
                    order_no: dto.object_id,
                    cp: Some(g.cp_code),
                    facts: None,
                })
            }
            t::TRACE => {
                let q: t::ByWaybill = serde_json::from_str(content).map_err(bad)?;
                Ok(Call::Track {
                    tracking_no: q.waybill_code,
                })
            }
            t::DISCARD => {
                let q: t::ByWaybill = serde_json::from_str(content).map_err(bad)?;
                Ok(Call::Cancel {
                    tracking_no: Some(q.waybill_code),
                    order_no: None,
                })
            }
            _ => Err(Fault::BadRequest("unknown msg_type".into())),
        }
    }

    fn ok(&self, _: &SimSettings, ok: &SimOk) -> Vec<u8> {
        let v = match ok {
            SimOk::Created {
                order_no,
                tracking_no,
                ..
            } => serde_json::json!({
                "success": "true", "errorCode": "", "errorMsg": "",
                "waybillCloudPrintResponseList": [{"objectId": order_no, "waybillCode": tracking_no, "printData": "{}"}],
            }),
            SimOk::Tracked { events, .. } => serde_json::json!({
                "success": "true",
                "fullTraceDetail": events.iter().map(|e| serde_json::json!({
                    "time": china_time_string(e.at), "action": action(e.step), "desc": format!("{:?}", e.step),
                })).collect::<Vec<_>>(),
            }),
            SimOk::Cancelled { .. } => {
                serde_json::json!({"success": "true", "discardResult": true})
            }
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    fn err(&self, _: &SimSettings, err: &SimErr) -> (u16, Vec<u8>) {
        let body = match err {
            SimErr::Auth => failure(t::SIGNATURE, "签名校验失败"),
            SimErr::Throttled => failure(t::THROTTLED, "流量限制"),
            SimErr::Rejected => failure("isv.address-not-reachable", "地址不可达"),
            SimErr::BadRequest(m) => failure("isv.invalid-parameter", m),
            SimErr::NotFound => failure("isv.waybill-not-exist", "面单不存在"),
        };
        (200, body)
    }

    /// The number of the underlying carrier.
    fn tracking_no(&self, cp: Option<&str>, serial: u64) -> String {
        match cp.unwrap_or("") {
            "ZTO" => numbered("7", 11, serial),
            "YTO" => numbered("YT", 13, serial),
            "STO" => numbered("77", 11, serial),
            "YUNDA" => numbered("43", 11, serial),
            "JTSD" => numbered("JT", 13, serial),
            "SF" => numbered("SF", 12, serial),
            "EMS" | "POSTB" => numbered("1100", 9, serial),
            _ => numbered("CN", 13, serial),
        }
    }

    fn logistics_no(&self, order_no: &str, _: u64) -> String {
        order_no.to_string()
    }
}

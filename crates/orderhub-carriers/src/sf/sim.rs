//! SF's side of the wire, for the simulator.

use super::transformers as t;
use crate::sign::constant_time_eq;
use crate::sim::{
    Call, Fault, RawRequest, Received, SimErr, SimOk, SimSettings, Step, Wire, numbered,
};
use crate::wire::{china_time_string, form_decode};

pub(crate) struct SfWire;

fn envelope(code: &str, msg: &str, data: Option<String>) -> Vec<u8> {
    serde_json::to_vec(&t::Envelope {
        api_result_code: code.into(),
        api_error_msg: Some(msg.into()),
        api_response_id: Some(uuid::Uuid::new_v4().simple().to_string()),
        api_result_data: data,
    })
    .unwrap_or_default()
}

fn data(success: bool, code: &str, msg: Option<&str>, msg_data: serde_json::Value) -> String {
    serde_json::to_string(&t::ResultData {
        success,
        error_code: Some(code.into()),
        error_msg: msg.map(str::to_string),
        msg_data: Some(msg_data),
    })
    .unwrap_or_default()
}

fn op_code(step: Step) -> &'static str {
    match step {
        Step::Accepted => "54",
        Step::PickedUp => "50",
        Step::InTransit => "30",
        Step::Delivered => "80",
        Step::Problem => "70",
    }
}

impl Wire for SfWire {
    fn parse(&self, s: &SimSettings, req: &RawRequest) -> Result<Call, Fault> {
        if req.path != t::PATH {
            return Err(Fault::BadRequest("unknown path".into()));
        }
        let form = form_decode(&req.body);
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let expected = t::msg_digest(field("msgData"), field("timestamp"), &s.secret);
        if field("partnerID") != s.app_key
            || !constant_time_eq(expected.as_bytes(), field("msgDigest").as_bytes())
        {
            return Err(Fault::Auth);
        }
        let msg = field("msgData").as_bytes();
        let bad = |_| Fault::BadRequest("msgData does not parse".into());
        match field("serviceCode") {
            t::CREATE => {
                let order: t::CreateOrder = serde_json::from_slice(msg).map_err(bad)?;
                let facts = order
                    .contact_info_list
                    .iter()
                    .find(|c| c.contact_type == 1)
                    .map(|sender| Received {
                        sender_city: sender.city.clone(),
                        weight_kg: order.total_weight.parse().ok(),
                        parcels: Some(order.parcel_qty),
                    });
                Ok(Call::Create {
                    order_no: order.order_id,
                    cp: None,
                    facts,
                })
            }
            t::ROUTES => {
                let q: t::RouteQuery = serde_json::from_slice(msg).map_err(bad)?;
                let tracking_no = q
                    .tracking_number
                    .into_iter()
                    .next()
                    .ok_or_else(|| Fault::BadRequest("no trackingNumber".into()))?;
                Ok(Call::Track { tracking_no })
            }
            t::UPDATE => {
                let u: t::UpdateOrder = serde_json::from_slice(msg).map_err(bad)?;
                Ok(Call::Cancel {
                    tracking_no: u
                        .waybill_no_info_list
                        .into_iter()
                        .next()
                        .map(|w| w.waybill_no),
                    order_no: Some(u.order_id),
                })
            }
            _ => Err(Fault::BadRequest("unknown serviceCode".into())),
        }
    }

    fn ok(&self, _: &SimSettings, ok: &SimOk) -> Vec<u8> {
        let msg_data = match ok {
            SimOk::Created {
                order_no,
                tracking_no,
                ..
            } => serde_json::json!({
                "orderId": order_no, "originCode": "021", "destCode": "755", "filterResult": 2,
                "waybillNoInfoList": [{"waybillType": 1, "waybillNo": tracking_no}],
            }),
            SimOk::Tracked {
                tracking_no,
                events,
            } => serde_json::json!({"routeResps": [{
                "mailNo": tracking_no,
                "routes": events.iter().map(|e| serde_json::json!({
                    "acceptTime": china_time_string(e.at), "acceptAddress": "深圳市",
                    "remark": format!("{:?}", e.step), "opCode": op_code(e.step),
                })).collect::<Vec<_>>(),
            }]}),
            SimOk::Cancelled {
                tracking_no,
                order_no,
            } => serde_json::json!({
                "orderId": order_no, "resStatus": 2,
                "waybillNoInfoList": [{"waybillType": 1, "waybillNo": tracking_no}],
            }),
        };
        envelope("A1000", "", Some(data(true, "S0000", None, msg_data)))
    }

    fn err(&self, _: &SimSettings, err: &SimErr) -> (u16, Vec<u8>) {
        let body = match err {
            SimErr::Auth => envelope("A1006", "数字签名无效", None),
            SimErr::Throttled => envelope("A1005", "流量受控", None),
            SimErr::BadRequest(m) => envelope("A1001", m, None),
            SimErr::Rejected => envelope(
                "A1000",
                "",
                Some(data(
                    false,
                    "8019",
                    Some("收件地址超出派送范围"),
                    serde_json::Value::Null,
                )),
            ),
            SimErr::NotFound => envelope(
                "A1000",
                "",
                Some(data(
                    false,
                    "8018",
                    Some("未获取到订单信息"),
                    serde_json::Value::Null,
                )),
            ),
        };
        (200, body)
    }

    fn tracking_no(&self, _: Option<&str>, serial: u64) -> String {
        numbered("SF", 12, serial)
    }

    fn logistics_no(&self, order_no: &str, _: u64) -> String {
        order_no.to_string()
    }
}

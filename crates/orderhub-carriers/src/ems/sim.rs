//! EMS's side of the wire, for the simulator.

use super::transformers as t;
use crate::sim::{
    Call, Fault, RawRequest, Received, SimErr, SimOk, SimSettings, Step, Wire, numbered,
};
use crate::wire::{china_time_string, form_decode};

pub(crate) struct EmsWire;

fn answer(code: &str, msg: &str, body: Option<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&t::Answer {
        serial_no: Some(uuid::Uuid::new_v4().simple().to_string()),
        ret_code: code.into(),
        ret_msg: Some(msg.into()),
        ret_body: body.map(|b| b.to_string()),
        success: Some(code == "00000"),
    })
    .unwrap_or_default()
}

fn op_code(step: Step) -> &'static str {
    match step {
        Step::Accepted => "100",
        Step::PickedUp => "203",
        Step::InTransit => "306",
        Step::Delivered => "704",
        Step::Problem => "711",
    }
}

impl Wire for EmsWire {
    fn parse(&self, s: &SimSettings, req: &RawRequest) -> Result<Call, Fault> {
        if req.path != t::PATH {
            return Err(Fault::BadRequest("unknown path".into()));
        }
        let form = form_decode(&req.body);
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        if field("authorization") != s.app_key || field("senderNo") != s.customer_code {
            return Err(Fault::Auth);
        }
        let json = t::decrypt(field("logitcsInterface"), &s.secret).ok_or(Fault::Auth)?;
        let bad = |_| Fault::BadRequest("logitcsInterface does not parse".into());
        match field("apiCode") {
            t::CREATE => {
                let mut orders: Vec<t::CreateOrder> = serde_json::from_str(&json).map_err(bad)?;
                if orders.is_empty() {
                    return Err(Fault::BadRequest("no order".into()));
                }
                let o = orders.swap_remove(0);
                // EMS takes grams.
                let facts = Received {
                    sender_city: o.sender.city.clone(),
                    weight_kg: o
                        .weight
                        .parse::<rust_decimal::Decimal>()
                        .ok()
                        .map(|g| g / rust_decimal::Decimal::from(1000)),
                    parcels: None,
                };
                Ok(Call::Create {
                    order_no: o.logistics_order_no,
                    cp: None,
                    facts: Some(facts),
                })
            }
            t::TRACK => {
                let q: t::TrackQuery = serde_json::from_str(&json).map_err(bad)?;
                Ok(Call::Track {
                    tracking_no: q.waybill_no,
                })
            }
            t::CANCEL => {
                let c: t::Cancel = serde_json::from_str(&json).map_err(bad)?;
                Ok(Call::Cancel {
                    tracking_no: Some(c.waybill_no),
                    order_no: Some(c.logistics_order_no),
                })
            }
            _ => Err(Fault::BadRequest("unknown apiCode".into())),
        }
    }

    fn ok(&self, _: &SimSettings, ok: &SimOk) -> Vec<u8> {
        let body = match ok {
            SimOk::Created {
                order_no,
                tracking_no,
                ..
            } => serde_json::json!({
                "logisticsOrderNo": order_no, "waybillNo": tracking_no, "routeCode": "755-A",
            }),
            SimOk::Tracked {
                tracking_no,
                events,
            } => serde_json::Value::Array(
                events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "waybillNo": tracking_no, "opTime": china_time_string(e.at),
                            "opCode": op_code(e.step), "opName": format!("{:?}", e.step),
                        })
                    })
                    .collect(),
            ),
            SimOk::Cancelled {
                order_no,
                tracking_no,
            } => serde_json::json!({
                "logisticsOrderNo": order_no, "waybillNo": tracking_no,
            }),
        };
        answer("00000", "成功", Some(body))
    }

    fn err(&self, _: &SimSettings, err: &SimErr) -> (u16, Vec<u8>) {
        let body = match err {
            SimErr::Auth => answer(t::SIGNATURE, "授权码或签名校验失败", None),
            SimErr::Throttled => answer(t::THROTTLED, "访问频率超限", None),
            SimErr::Rejected => answer("B00010", "收件地址不可达", None),
            SimErr::BadRequest(m) => answer("B00001", m, None),
            SimErr::NotFound => answer("B00002", "邮件不存在", None),
        };
        (200, body)
    }

    fn tracking_no(&self, _: Option<&str>, serial: u64) -> String {
        numbered("1100", 9, serial)
    }

    fn logistics_no(&self, order_no: &str, _: u64) -> String {
        order_no.to_string()
    }
}

//! YTO's side of the wire, for the simulator.

use super::transformers as t;
use crate::sign::constant_time_eq;
use crate::sim::{
    Call, Fault, RawRequest, Received, SimErr, SimOk, SimSettings, Step, Wire, numbered,
};
use crate::wire::china_time_string;

pub(crate) struct YtoWire;

fn failure(code: &str, reason: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"success": false, "code": code, "reason": reason}))
        .unwrap_or_default()
}

fn info(step: Step) -> &'static str {
    match step {
        Step::Accepted => "ORDER",
        Step::PickedUp => "GOT",
        Step::InTransit => "ARRIVAL",
        Step::Delivered => "SIGNED",
        Step::Problem => "FAILED",
    }
}

impl Wire for YtoWire {
    fn parse(&self, s: &SimSettings, req: &RawRequest) -> Result<Call, Fault> {
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let method = match parts.as_slice() {
            ["open", method, v, token, code] if *v == t::VERSION => {
                if *token != s.access_token || *code != s.customer_code {
                    return Err(Fault::Auth);
                }
                *method
            }
            _ => return Err(Fault::BadRequest("unknown path".into())),
        };
        let env: t::Envelope = serde_json::from_slice(&req.body)
            .map_err(|_| Fault::BadRequest("envelope does not parse".into()))?;
        let expected = t::sign(&env.param, method, &s.secret);
        if !constant_time_eq(expected.as_bytes(), env.sign.as_bytes()) {
            return Err(Fault::Auth);
        }
        let bad = |_| Fault::BadRequest("param does not parse".into());
        match method {
            t::CREATE => {
                let c: t::Create = serde_json::from_str(&env.param).map_err(bad)?;
                let facts = Received {
                    sender_city: c.sender_city_name.clone(),
                    weight_kg: c.weight.parse().ok(),
                    parcels: None,
                };
                Ok(Call::Create {
                    order_no: c.logistics_no,
                    cp: None,
                    facts: Some(facts),
                })
            }
            t::TRACK => {
                let q: t::TrackQuery = serde_json::from_str(&env.param).map_err(bad)?;
                Ok(Call::Track {
                    tracking_no: q.number,
                })
            }
            t::CANCEL => {
                let c: t::Cancel = serde_json::from_str(&env.param).map_err(bad)?;
                Ok(Call::Cancel {
                    tracking_no: None,
                    order_no: Some(c.logistics_no),
                })
            }
            _ => Err(Fault::BadRequest("unknown method".into())),
        }
    }

    fn ok(&self, _: &SimSettings, ok: &SimOk) -> Vec<u8> {
        let v = match ok {
            SimOk::Created {
                order_no,
                tracking_no,
                ..
            } => serde_json::json!({
                "logisticsNo": order_no, "mailNo": tracking_no, "shortAddress": "755-A1",
            }),
            SimOk::Tracked {
                tracking_no,
                events,
            } => serde_json::Value::Array(
                events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "waybill_No": tracking_no, "upload_Time": china_time_string(e.at),
                            "infoContent": info(e.step), "processInfo": format!("{:?}", e.step),
                        })
                    })
                    .collect(),
            ),
            SimOk::Cancelled { order_no, .. } => {
                serde_json::json!({"logisticsNo": order_no, "success": true})
            }
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    fn err(&self, _: &SimSettings, err: &SimErr) -> (u16, Vec<u8>) {
        let body = match err {
            SimErr::Auth => failure(t::SIGNATURE, "签名验证失败"),
            SimErr::Throttled => failure(t::THROTTLED, "调用频率超限"),
            SimErr::Rejected => failure("S10", "收件地址超区"),
            SimErr::BadRequest(m) => failure("S02", m),
            SimErr::NotFound => failure("S03", "订单不存在"),
        };
        (200, body)
    }

    fn tracking_no(&self, _: Option<&str>, serial: u64) -> String {
        numbered("YT", 13, serial)
    }

    fn logistics_no(&self, order_no: &str, _: u64) -> String {
        order_no.to_string()
    }
}

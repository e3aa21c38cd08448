//! ZTO's side of the wire, for the simulator.

use super::transformers as t;
use crate::sign::constant_time_eq;
use crate::sim::{
    Call, Fault, RawRequest, Received, SimErr, SimOk, SimSettings, Step, Wire, numbered,
};

pub(crate) struct ZtoWire;

fn answer(status: bool, code: &str, message: &str, result: Option<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&t::Answer {
        status,
        message: Some(message.into()),
        status_code: Some(code.into()),
        result,
    })
    .unwrap_or_default()
}

fn scan_type(step: Step) -> &'static str {
    match step {
        Step::Accepted => "下单",
        Step::PickedUp => "收件",
        Step::InTransit => "到件",
        Step::Delivered => "签收",
        Step::Problem => "问题件",
    }
}

impl Wire for ZtoWire {
    fn parse(&self, s: &SimSettings, req: &RawRequest) -> Result<Call, Fault> {
        let body =
            std::str::from_utf8(&req.body).map_err(|_| Fault::BadRequest("not UTF-8".into()))?;
        let expected = t::data_digest(body, &s.secret);
        if req.header("x-appKey") != s.app_key
            || !constant_time_eq(expected.as_bytes(), req.header("x-dataDigest").as_bytes())
        {
            return Err(Fault::Auth);
        }
        let bad = |_| Fault::BadRequest("body does not parse".into());
        match req.path.trim_start_matches('/') {
            t::CREATE => {
                let o: t::CreateOrder = serde_json::from_str(body).map_err(bad)?;
                // ZOP has no parcel count: the weight rides on an item of its own.
                let facts = Received {
                    sender_city: o.sender_info.sender_city.clone(),
                    weight_kg: o
                        .order_items
                        .iter()
                        .find(|i| !i.weight.is_empty())
                        .and_then(|i| i.weight.parse().ok()),
                    parcels: None,
                };
                Ok(Call::Create {
                    order_no: o.partner_order_code,
                    cp: None,
                    facts: Some(facts),
                })
            }
            t::TRACK => {
                let q: t::TrackQuery = serde_json::from_str(body).map_err(bad)?;
                Ok(Call::Track {
                    tracking_no: q.bill_code,
                })
            }
            t::CANCEL => {
                let c: t::Cancel = serde_json::from_str(body).map_err(bad)?;
                Ok(Call::Cancel {
                    tracking_no: Some(c.bill_code),
                    order_no: None,
                })
            }
            _ => Err(Fault::BadRequest("unknown API".into())),
        }
    }

    fn ok(&self, _: &SimSettings, ok: &SimOk) -> Vec<u8> {
        let result = match ok {
            SimOk::Created {
                tracking_no,
                logistics_no,
                ..
            } => serde_json::json!({
                "billCode": tracking_no, "orderCode": logistics_no, "siteCode": "02100",
            }),
            SimOk::Tracked { events, .. } => serde_json::Value::Array(
                events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "scanType": scan_type(e.step), "scanDate": e.at.timestamp_millis(),
                            "desc": format!("{:?}", e.step),
                        })
                    })
                    .collect(),
            ),
            SimOk::Cancelled { .. } => serde_json::Value::Bool(true),
        };
        answer(true, "SYS000", "", Some(result))
    }

    fn err(&self, _: &SimSettings, err: &SimErr) -> (u16, Vec<u8>) {
        let body = match err {
            SimErr::Auth => answer(false, t::SIGNATURE, "签名校验失败", None),
            SimErr::Throttled => answer(false, t::THROTTLED, "调用频率超限", None),
            SimErr::Rejected => answer(false, "E1001", "收件地址不在服务范围", None),
            SimErr::BadRequest(m) => answer(false, "E1000", m, None),
            SimErr::NotFound => answer(false, "E1002", "运单不存在", None),
        };
        (200, body)
    }

    fn tracking_no(&self, _: Option<&str>, serial: u64) -> String {
        numbered("7", 11, serial)
    }

    fn logistics_no(&self, _: &str, serial: u64) -> String {
        numbered("ZTO", 15, serial)
    }
}

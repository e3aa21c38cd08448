//! JD's side of the wire, for the simulator.

use super::transformers as t;
use crate::sign::constant_time_eq;
use crate::sim::{Call, Fault, RawRequest, SimErr, SimOk, SimSettings, Step, Wire, numbered};
use crate::wire::{china_time_string, form_decode};

pub(crate) struct JdWire;

fn answer(code: i64, msg: &str, data: Option<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&t::Answer {
        code: code.into(),
        msg: Some(msg.into()),
        data,
    })
    .unwrap_or_default()
}

fn category(step: Step) -> &'static str {
    match step {
        Step::Accepted => "100",
        Step::PickedUp => "200",
        Step::InTransit => "300",
        Step::Delivered => "500",
        Step::Problem => "600",
    }
}

fn first<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, Fault> {
    let mut v: Vec<T> =
        serde_json::from_str(body).map_err(|_| Fault::BadRequest("body does not parse".into()))?;
    if v.is_empty() {
        return Err(Fault::BadRequest("empty body".into()));
    }
    Ok(v.swap_remove(0))
}

impl Wire for JdWire {
    fn parse(&self, s: &SimSettings, req: &RawRequest) -> Result<Call, Fault> {
        let q = form_decode(req.query.as_bytes());
        let field = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
        let body =
            std::str::from_utf8(&req.body).map_err(|_| Fault::BadRequest("not UTF-8".into()))?;
        let expected = t::sign(
            &s.secret,
            &s.access_token,
            &s.app_key,
            &req.path,
            body,
            field("timestamp"),
        );
        if field("app_key") != s.app_key
            || field("access_token") != s.access_token
            || !constant_time_eq(
                expected.as_bytes(),
                field("sign").to_ascii_lowercase().as_bytes(),
            )
        {
            return Err(Fault::Auth);
        }
        match req.path.as_str() {
            t::CREATE => {
                let c: t::Create = first(body)?;
                Ok(Call::Create {
                    order_no: c.order_id,
                    cp: None,
                    facts: None,
                })
            }
            t::TRACK => {
                let q: t::TraceQuery = first(body)?;
                Ok(Call::Track {
                    tracking_no: q.waybill_code,
                })
            }
            t::CANCEL => {
                let c: t::Cancel = first(body)?;
                Ok(Call::Cancel {
                    tracking_no: Some(c.waybill_code),
                    order_no: None,
                })
            }
            _ => Err(Fault::BadRequest("unknown API".into())),
        }
    }

    fn ok(&self, _: &SimSettings, ok: &SimOk) -> Vec<u8> {
        let data = match ok {
            SimOk::Created {
                tracking_no,
                logistics_no,
                ..
            } => serde_json::json!({
                "waybillCode": tracking_no, "orderCode": logistics_no, "needRetry": false,
            }),
            SimOk::Tracked {
                tracking_no,
                events,
            } => serde_json::json!({
                "waybillCode": tracking_no,
                "traceDetails": events.iter().map(|e| serde_json::json!({
                    "operationTime": china_time_string(e.at), "operationTitle": format!("{:?}", e.step),
                    "operationRemark": "", "category": category(e.step),
                })).collect::<Vec<_>>(),
            }),
            SimOk::Cancelled { .. } => serde_json::json!({"resultType": 0}),
        };
        answer(0, "success", Some(data))
    }

    fn err(&self, _: &SimSettings, err: &SimErr) -> (u16, Vec<u8>) {
        let body = match err {
            SimErr::Auth => answer(t::SIGNATURE, "签名错误", None),
            SimErr::Throttled => answer(t::THROTTLED, "调用频率超限", None),
            SimErr::Rejected => answer(2001, "收件地址超区", None),
            SimErr::BadRequest(m) => answer(2000, m, None),
            SimErr::NotFound => answer(2002, "运单不存在", None),
        };
        (200, body)
    }

    fn tracking_no(&self, _: Option<&str>, serial: u64) -> String {
        numbered("JDV", 12, serial)
    }

    fn logistics_no(&self, _: &str, serial: u64) -> String {
        numbered("ESL", 14, serial)
    }
}

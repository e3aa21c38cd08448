//! J&T's side of the wire, for the simulator.

use super::transformers as t;
use crate::sign::constant_time_eq;
use crate::sim::{
    Call, Fault, RawRequest, Received, SimErr, SimOk, SimSettings, Step, Wire, numbered,
};
use crate::wire::{china_time_string, form_decode};

pub(crate) struct JtWire;

fn answer(code: &str, msg: &str, data: Option<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&t::Answer {
        code: code.into(),
        msg: Some(msg.into()),
        data,
    })
    .unwrap_or_default()
}

fn scan_type(step: Step) -> &'static str {
    match step {
        Step::Accepted => "下单",
        Step::PickedUp => "快件揽收",
        Step::InTransit => "到件扫描",
        Step::Delivered => "快件签收",
        Step::Problem => "问题件扫描",
    }
}

impl Wire for JtWire {
    fn parse(&self, s: &SimSettings, req: &RawRequest) -> Result<Call, Fault> {
        let form = form_decode(&req.body);
        let biz = form.get("bizContent").map(String::as_str).unwrap_or("");
        let expected = t::header_digest(biz, &s.secret);
        if req.header("apiAccount") != s.app_key
            || !constant_time_eq(expected.as_bytes(), req.header("digest").as_bytes())
        {
            return Err(Fault::Auth);
        }
        let business = t::business_digest(&s.customer_code, &s.customer_password, &s.secret);
        let bad = |_| Fault::BadRequest("bizContent does not parse".into());
        match req.path.as_str() {
            t::CREATE => {
                let o: t::AddOrder = serde_json::from_str(biz).map_err(bad)?;
                if o.customer_code != s.customer_code || o.digest != business {
                    return Err(Fault::Auth);
                }
                let facts = Received {
                    sender_city: o.sender.city.clone(),
                    weight_kg: o.weight.parse().ok(),
                    parcels: None,
                };
                Ok(Call::Create {
                    order_no: o.txlogistic_id,
                    cp: None,
                    facts: Some(facts),
                })
            }
            t::TRACK => {
                let q: t::TraceQuery = serde_json::from_str(biz).map_err(bad)?;
                Ok(Call::Track {
                    tracking_no: q.bill_codes,
                })
            }
            t::CANCEL => {
                let c: t::CancelOrder = serde_json::from_str(biz).map_err(bad)?;
                if c.digest != business {
                    return Err(Fault::Auth);
                }
                Ok(Call::Cancel {
                    tracking_no: None,
                    order_no: Some(c.txlogistic_id),
                })
            }
            _ => Err(Fault::BadRequest("unknown API".into())),
        }
    }

    fn ok(&self, _: &SimSettings, ok: &SimOk) -> Vec<u8> {
        let data = match ok {
            SimOk::Created {
                order_no,
                tracking_no,
                ..
            } => serde_json::json!({
                "txlogisticId": order_no, "billCode": tracking_no, "sortingCode": "021-A1",
            }),
            SimOk::Tracked {
                tracking_no,
                events,
            } => serde_json::json!([{
                "billCode": tracking_no,
                "details": events.iter().map(|e| serde_json::json!({
                    "scanTime": china_time_string(e.at), "desc": format!("{:?}", e.step),
                    "scanType": scan_type(e.step),
                })).collect::<Vec<_>>(),
            }]),
            SimOk::Cancelled {
                order_no,
                tracking_no,
            } => serde_json::json!({
                "txlogisticId": order_no, "billCode": tracking_no,
            }),
        };
        answer("1", "success", Some(data))
    }

    fn err(&self, _: &SimSettings, err: &SimErr) -> (u16, Vec<u8>) {
        let body = match err {
            SimErr::Auth => answer(t::SIGNATURE, "headers signature verification failed", None),
            SimErr::Throttled => answer(t::THROTTLED, "request too frequent", None),
            SimErr::Rejected => answer("145003062", "receiver address out of service area", None),
            SimErr::BadRequest(m) => answer("145003050", m, None),
            SimErr::NotFound => answer("145003063", "order does not exist", None),
        };
        (200, body)
    }

    fn tracking_no(&self, _: Option<&str>, serial: u64) -> String {
        numbered("JT", 13, serial)
    }

    fn logistics_no(&self, order_no: &str, _: u64) -> String {
        order_no.to_string()
    }
}

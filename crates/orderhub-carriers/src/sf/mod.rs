//! SF Express (顺丰) through its open platform (丰桥): one endpoint, `serviceCode` selects the API,
//! form-encoded, signed with `msgDigest`. Shapes in `transformers.rs`, sources in SOURCES.md.

#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use chrono::Utc;

use crate::wire::form_encode;
use crate::{
    Carrier, CarrierConfig, CarrierError, CarrierFuture, CarrierKind, HttpClient, TrackEvent,
    Waybill, WaybillRequest,
};
use transformers as t;

pub struct Sf {
    config: CarrierConfig,
    http: HttpClient,
}

impl Sf {
    pub fn new(config: CarrierConfig, http: HttpClient) -> Sf {
        Sf { config, http }
    }

    /// The form body for one call, with `timestamp` in milliseconds.
    pub fn form(&self, service_code: &str, msg_data: &str, timestamp: &str) -> String {
        let digest = t::msg_digest(msg_data, timestamp, self.config.secret.expose());
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        form_encode(&[
            ("partnerID", &self.config.app_key),
            ("requestID", &request_id),
            ("serviceCode", service_code),
            ("timestamp", timestamp),
            ("msgData", msg_data),
            ("msgDigest", &digest),
        ])
    }

    async fn call(
        &self,
        service_code: &str,
        msg_data: &impl serde::Serialize,
    ) -> Result<serde_json::Value, CarrierError> {
        let msg_data = serde_json::to_string(msg_data)
            .map_err(|_| CarrierError::BadResponse("cannot encode msgData".into()))?;
        let timestamp = Utc::now().timestamp_millis().to_string();
        let body = self.form(service_code, &msg_data, &timestamp);
        let url = format!("{}{}", self.config.base_url, t::PATH);
        let answer = self
            .http
            .post(
                &url,
                "application/x-www-form-urlencoded;charset=UTF-8",
                &[],
                body.into_bytes(),
            )
            .await?;
        t::parse_envelope(&answer)
    }
}

impl Carrier for Sf {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Sf
    }

    fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill> {
        Box::pin(async move {
            let order = t::create_order(req, &self.config.customer_code);
            let msg = self.call(t::CREATE, &order).await?;
            let (tracking_no, logistics_no) = t::created(msg)?;
            Ok(Waybill {
                carrier: CarrierKind::Sf,
                tracking_no,
                logistics_no,
            })
        })
    }

    fn track<'a>(&'a self, tracking_no: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>> {
        Box::pin(async move {
            let query = t::RouteQuery {
                tracking_type: 1,
                tracking_number: vec![tracking_no.to_string()],
                method_type: 1,
                language: "0".into(),
            };
            let msg = self.call(t::ROUTES, &query).await?;
            t::track_events(msg, tracking_no)
        })
    }

    fn cancel_waybill<'a>(&'a self, waybill: &'a Waybill) -> CarrierFuture<'a, ()> {
        Box::pin(async move {
            let update = t::UpdateOrder {
                order_id: waybill.logistics_no.clone(),
                deal_type: 2,
                waybill_no_info_list: vec![t::WaybillNoInfo {
                    waybill_type: 1,
                    waybill_no: waybill.tracking_no.clone(),
                }],
            };
            self.call(t::UPDATE, &update).await.map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::transformers as t;
    use crate::wire::form_decode;
    use crate::{CarrierError, TrackStatus};

    /// Worked out with Python 3 (SOURCES.md): base64(md5(quote_plus(s, safe='*').replace('~', '%7E'))).
    #[test]
    fn msg_digest_matches_an_independent_computation() {
        let msg = r#"{"orderId":"abc 1","language":"zh-CN","remark":"中~*"}"#;
        assert_eq!(
            t::msg_digest(msg, "1700000000000", "checkWord123"),
            SF_DIGEST
        );
    }
    const SF_DIGEST: &str = "CFmY1rd6AEajZXmgkq+x4A==";

    #[test]
    fn the_create_form_carries_the_fields_sf_documents() {
        let cfg = crate::CarrierConfig::new(
            crate::CarrierKind::Sf,
            "http://x",
            "PARTNER",
            "cw",
            "7551234567",
        );
        let sf = super::Sf::new(cfg, crate::HttpClient::new());
        let order = t::create_order(&crate::testing::request(), "7551234567");
        let msg = serde_json::to_string(&order).unwrap();
        let form = form_decode(sf.form(t::CREATE, &msg, "1700000000000").as_bytes());
        assert_eq!(form["partnerID"], "PARTNER");
        assert_eq!(form["serviceCode"], "EXP_RECE_CREATE_ORDER");
        assert_eq!(form["timestamp"], "1700000000000");
        assert_eq!(
            form["msgDigest"],
            t::msg_digest(&msg, "1700000000000", "cw")
        );
        assert_eq!(form["requestID"].len(), 32);
        let v: serde_json::Value = serde_json::from_str(&form["msgData"]).unwrap();
        assert_eq!(v["orderId"], crate::testing::request().merchant_order_no());
        assert_eq!(v["monthlyCard"], "7551234567");
        assert_eq!(v["contactInfoList"][1]["contactType"], 2);
        assert_eq!(v["contactInfoList"][1]["county"], "南山区");
        assert_eq!(v["totalWeight"], "1.25");
        assert_eq!(v["cargoDetails"][0]["count"], 2);
    }

    fn envelope(code: &str, data: Option<&str>) -> Vec<u8> {
        serde_json::to_vec(&t::Envelope {
            api_result_code: code.into(),
            api_error_msg: Some("msg".into()),
            api_response_id: None,
            api_result_data: data.map(str::to_string),
        })
        .unwrap()
    }

    #[test]
    fn a_created_order_yields_the_main_waybill_number() {
        let data = r#"{"success":true,"errorCode":"S0000","errorMsg":null,"msgData":{"orderId":"o1","filterResult":2,"waybillNoInfoList":[{"waybillType":2,"waybillNo":"SF2"},{"waybillType":1,"waybillNo":"SF7444400043266"}]}}"#;
        let msg = t::parse_envelope(&envelope("A1000", Some(data))).unwrap();
        assert_eq!(
            t::created(msg).unwrap(),
            ("SF7444400043266".into(), "o1".into())
        );
    }

    #[test]
    fn gateway_codes_map_to_breaker_terms() {
        assert_eq!(
            t::parse_envelope(&envelope("A1005", None)),
            Err(CarrierError::Throttled { retry_after: None })
        );
        assert!(
            matches!(t::parse_envelope(&envelope("A1006", None)), Err(CarrierError::Rejected { code, .. }) if code == "A1006")
        );
        assert!(matches!(
            t::parse_envelope(&envelope("A1099", None)),
            Err(CarrierError::Unavailable(_))
        ));
        assert!(matches!(
            t::parse_envelope(&envelope("Z9", None)),
            Err(CarrierError::BadResponse(_))
        ));
        assert!(matches!(
            t::parse_envelope(&envelope("A1000", None)),
            Err(CarrierError::BadResponse(_))
        ));
        let refused = r#"{"success":false,"errorCode":"8016","errorMsg":"重复下单"}"#;
        assert!(
            matches!(t::parse_envelope(&envelope("A1000", Some(refused))), Err(CarrierError::Rejected { code, .. }) if code == "8016")
        );
    }

    #[test]
    fn garbage_and_truncated_answers_are_bad_responses() {
        let good = envelope("A1000", Some(r#"{"success":true,"msgData":{}}"#));
        for body in [&b""[..], b"<html>", b"{}", &good[..good.len() / 2]] {
            assert!(
                matches!(t::parse_envelope(body), Err(CarrierError::BadResponse(_))),
                "{body:?}"
            );
        }
        let inner_truncated = envelope("A1000", Some(r#"{"success":tr"#));
        assert!(matches!(
            t::parse_envelope(&inner_truncated),
            Err(CarrierError::BadResponse(_))
        ));
        assert!(matches!(
            t::created(serde_json::json!({"orderId":"o","waybillNoInfoList":[]})),
            Err(CarrierError::BadResponse(_))
        ));
    }

    #[test]
    fn routes_map_op_codes_and_unknown_codes_are_exceptions() {
        let msg = serde_json::json!({"routeResps":[{"mailNo":"SF1","routes":[
            {"acceptTime":"2024-01-02 08:00:00","acceptAddress":"深圳","remark":"收件","opCode":"50"},
            {"acceptTime":"2024-01-02 12:00:00","remark":"签收","opCode":"80"},
            {"acceptTime":"2024-01-02 13:00:00","remark":"?","opCode":"999"}]}]});
        let ev = t::track_events(msg, "SF1").unwrap();
        let st: Vec<_> = ev.iter().map(|e| e.status).collect();
        assert_eq!(
            st,
            [
                TrackStatus::PickedUp,
                TrackStatus::Delivered,
                TrackStatus::Exception
            ]
        );
        assert_eq!(ev[0].at.to_rfc3339(), "2024-01-02T00:00:00+00:00");
        let bad_time = serde_json::json!({"routeResps":[{"mailNo":"SF1","routes":[{"acceptTime":"soon","opCode":"50"}]}]});
        assert!(matches!(
            t::track_events(bad_time, "SF1"),
            Err(CarrierError::BadResponse(_))
        ));
    }
}

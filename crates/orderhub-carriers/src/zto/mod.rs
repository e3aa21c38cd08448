//! ZTO Express (中通) through ZOP: one path per API name, a JSON body, `x-appKey` and
//! `x-dataDigest` headers. Shapes in `transformers.rs`, sources in SOURCES.md.

#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use crate::http::Headers;
use crate::{
    Carrier, CarrierConfig, CarrierError, CarrierFuture, CarrierKind, HttpClient, TrackEvent,
    Waybill, WaybillRequest,
};
use transformers as t;

pub struct Zto {
    config: CarrierConfig,
    http: HttpClient,
}

impl Zto {
    pub fn new(config: CarrierConfig, http: HttpClient) -> Zto {
        Zto { config, http }
    }

    /// (url, headers, body) of one call.
    pub fn request(
        &self,
        api: &str,
        body: &impl serde::Serialize,
    ) -> Result<(String, Headers, String), CarrierError> {
        let body = serde_json::to_string(body)
            .map_err(|_| CarrierError::BadResponse("cannot encode the ZTO body".into()))?;
        let digest = t::data_digest(&body, self.config.secret.expose());
        let headers = vec![
            ("x-appKey", self.config.app_key.clone()),
            ("x-dataDigest", digest),
        ];
        Ok((format!("{}/{api}", self.config.base_url), headers, body))
    }

    async fn call(
        &self,
        api: &str,
        body: &impl serde::Serialize,
    ) -> Result<serde_json::Value, CarrierError> {
        let (url, headers, body) = self.request(api, body)?;
        let answer = self
            .http
            .post(
                &url,
                "application/json;charset=UTF-8",
                &headers,
                body.into_bytes(),
            )
            .await?;
        t::parse_answer(&answer)
    }
}

impl Carrier for Zto {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Zto
    }

    fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill> {
        Box::pin(async move {
            let order = t::create_order(req, &self.config.customer_code);
            let (tracking_no, logistics_no) = t::created(self.call(t::CREATE, &order).await?)?;
            Ok(Waybill {
                carrier: CarrierKind::Zto,
                tracking_no,
                logistics_no,
            })
        })
    }

    fn track<'a>(&'a self, tracking_no: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>> {
        Box::pin(async move {
            let q = t::TrackQuery {
                bill_code: tracking_no.to_string(),
            };
            t::track_events(self.call(t::TRACK, &q).await?)
        })
    }

    fn cancel_waybill<'a>(&'a self, waybill: &'a Waybill) -> CarrierFuture<'a, ()> {
        Box::pin(async move {
            let c = t::Cancel {
                cancel_type: "1".into(),
                bill_code: waybill.tracking_no.clone(),
            };
            self.call(t::CANCEL, &c).await.map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::transformers as t;
    use crate::{CarrierError, TrackStatus};

    /// Python 3: base64(md5((body + secret).encode())), see SOURCES.md.
    #[test]
    fn data_digest_matches_an_independent_computation() {
        assert_eq!(
            t::data_digest(r#"{"billCode":"73100000000"}"#, "kfpttestkey=="),
            ZTO_DIGEST
        );
    }
    const ZTO_DIGEST: &str = "0a6H1u51c55ZIMW4D8DeDg==";

    #[test]
    fn the_create_request_has_zops_names_and_headers() {
        let cfg = crate::CarrierConfig::new(
            crate::CarrierKind::Zto,
            "http://h:1",
            "APPKEY",
            "sec",
            "ACC1",
        );
        let zto = super::Zto::new(cfg, crate::HttpClient::new());
        let order = t::create_order(&crate::testing::request(), "ACC1");
        let (url, headers, body) = zto.request(t::CREATE, &order).unwrap();
        assert_eq!(url, "http://h:1/zto.open.createOrder");
        assert_eq!(headers[0], ("x-appKey", "APPKEY".to_string()));
        assert_eq!(headers[1].1, t::data_digest(&body, "sec"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["partnerOrderCode"],
            crate::testing::request().merchant_order_no()
        );
        assert_eq!(v["accountInfo"]["accountId"], "ACC1");
        assert_eq!(v["receiveInfo"]["receiverDistrict"], "南山区");
        assert_eq!(v["senderInfo"]["senderCity"], "上海市");
        assert_eq!(v["summaryInfo"]["quantity"], 2);
    }

    #[test]
    fn answers_map_to_results_and_errors() {
        let ok = br#"{"status":true,"message":"","statusCode":"SYS000","result":{"billCode":"731234567890","orderCode":"ZTO-1","siteCode":"02100"}}"#;
        assert_eq!(
            t::created(t::parse_answer(ok).unwrap()).unwrap(),
            ("731234567890".into(), "ZTO-1".into())
        );
        let throttled = br#"{"status":false,"statusCode":"S05","message":"too fast"}"#;
        assert_eq!(
            t::parse_answer(throttled),
            Err(CarrierError::Throttled { retry_after: None })
        );
        let auth = br#"{"status":false,"statusCode":"S01","message":"sign"}"#;
        assert!(
            matches!(t::parse_answer(auth), Err(CarrierError::Rejected { code, .. }) if code == "S01")
        );
        for body in [&b"nope"[..], b"{\"status\":tr", &ok[..ok.len() - 5]] {
            assert!(matches!(
                t::parse_answer(body),
                Err(CarrierError::BadResponse(_))
            ));
        }
        assert!(matches!(
            t::created(serde_json::json!({"billCode":"","orderCode":"x"})),
            Err(CarrierError::BadResponse(_))
        ));
        assert!(matches!(
            t::created(serde_json::json!([1])),
            Err(CarrierError::BadResponse(_))
        ));
    }

    #[test]
    fn scans_map_to_statuses() {
        let r = serde_json::json!([
            {"scanType":"收件","scanDate":1704153600000i64,"desc":"a"},
            {"scanType":"到件","scanDate":1704157200000i64,"desc":"b"},
            {"scanType":"签收","scanDate":1704160800000i64,"desc":"c"},
            {"scanType":"外星","scanDate":1704160800000i64,"desc":"d"}]);
        let st: Vec<_> = t::track_events(r)
            .unwrap()
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(
            st,
            [
                TrackStatus::PickedUp,
                TrackStatus::InTransit,
                TrackStatus::Delivered,
                TrackStatus::Exception
            ]
        );
        assert!(
            t::track_events(serde_json::json!([{"scanType":"收件","scanDate":i64::MAX}])).is_err()
        );
    }
}

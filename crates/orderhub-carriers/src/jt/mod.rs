//! J&T Express (极兔) through its China open platform: one path per API, a form body with
//! `bizContent`, headers `apiAccount`, `digest`, `timestamp`. Shapes in `transformers.rs`.

#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use chrono::Utc;

use crate::http::Headers;
use crate::wire::form_encode;
use crate::{
    Carrier, CarrierConfig, CarrierError, CarrierFuture, CarrierKind, HttpClient, TrackEvent,
    Waybill, WaybillRequest,
};
use transformers as t;

pub struct Jt {
    config: CarrierConfig,
    http: HttpClient,
}

impl Jt {
    pub fn new(config: CarrierConfig, http: HttpClient) -> Jt {
        Jt { config, http }
    }

    fn business_digest(&self) -> String {
        t::business_digest(
            &self.config.customer_code,
            self.config.customer_password(),
            self.config.secret.expose(),
        )
    }

    /// (headers, form body) of one call.
    pub fn request(
        &self,
        biz: &impl serde::Serialize,
        timestamp: &str,
    ) -> Result<(Headers, String), CarrierError> {
        let biz = serde_json::to_string(biz)
            .map_err(|_| CarrierError::BadResponse("cannot encode bizContent".into()))?;
        let headers = vec![
            ("apiAccount", self.config.app_key.clone()),
            (
                "digest",
                t::header_digest(&biz, self.config.secret.expose()),
            ),
            ("timestamp", timestamp.to_string()),
        ];
        Ok((headers, form_encode(&[("bizContent", &biz)])))
    }

    async fn call(
        &self,
        path: &str,
        biz: &impl serde::Serialize,
    ) -> Result<serde_json::Value, CarrierError> {
        let (headers, body) = self.request(biz, &Utc::now().timestamp_millis().to_string())?;
        let url = format!("{}{path}", self.config.base_url);
        let answer = self
            .http
            .post(
                &url,
                "application/x-www-form-urlencoded;charset=UTF-8",
                &headers,
                body.into_bytes(),
            )
            .await?;
        t::parse_answer(&answer)
    }
}

impl Carrier for Jt {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Jt
    }

    fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill> {
        Box::pin(async move {
            let order = t::add_order(req, &self.config.customer_code, self.business_digest());
            let (tracking_no, logistics_no) = t::created(self.call(t::CREATE, &order).await?)?;
            Ok(Waybill {
                carrier: CarrierKind::Jt,
                tracking_no,
                logistics_no,
            })
        })
    }

    fn track<'a>(&'a self, tracking_no: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>> {
        Box::pin(async move {
            let q = t::TraceQuery {
                bill_codes: tracking_no.to_string(),
            };
            t::track_events(self.call(t::TRACK, &q).await?, tracking_no)
        })
    }

    fn cancel_waybill<'a>(&'a self, waybill: &'a Waybill) -> CarrierFuture<'a, ()> {
        Box::pin(async move {
            let c = t::CancelOrder {
                customer_code: self.config.customer_code.clone(),
                digest: self.business_digest(),
                txlogistic_id: waybill.logistics_no.clone(),
                order_type: "2".into(),
                reason: "merchant cancelled".into(),
            };
            self.call(t::CANCEL, &c).await.map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::transformers as t;
    use crate::wire::form_decode;
    use crate::{CarrierError, TrackStatus};

    /// Python 3, see SOURCES.md.
    #[test]
    fn digests_match_an_independent_computation() {
        assert_eq!(
            t::header_digest(
                r#"{"billCodes":"JT0000000000001"}"#,
                "a0a1047cce70493c9d5d29704f05d0d9"
            ),
            JT_HEADER
        );
        assert_eq!(
            t::business_digest(
                "J0086000020",
                "H5CD3zE6",
                "a0a1047cce70493c9d5d29704f05d0d9"
            ),
            JT_BUSINESS
        );
    }
    const JT_HEADER: &str = "zZTDO0cjcDK9pkkJmgByqg==";
    const JT_BUSINESS: &str = "AUGwR+HIGSXUkrQ/7Nte7g==";

    #[test]
    fn the_create_request_carries_bizcontent_and_three_headers() {
        let mut cfg = crate::CarrierConfig::new(
            crate::CarrierKind::Jt,
            "http://h",
            "178337126125932605",
            "pk",
            "J0086",
        );
        cfg.customer_password = Some("pw".into());
        let jt = super::Jt::new(cfg, crate::HttpClient::new());
        let order = t::add_order(
            &crate::testing::request(),
            "J0086",
            t::business_digest("J0086", "pw", "pk"),
        );
        let (headers, body) = jt.request(&order, "1700000000000").unwrap();
        let form = form_decode(body.as_bytes());
        let biz = &form["bizContent"];
        assert_eq!(headers[0], ("apiAccount", "178337126125932605".to_string()));
        assert_eq!(headers[1], ("digest", t::header_digest(biz, "pk")));
        assert_eq!(headers[2], ("timestamp", "1700000000000".to_string()));
        let v: serde_json::Value = serde_json::from_str(biz).unwrap();
        assert_eq!(
            v["txlogisticId"],
            crate::testing::request().merchant_order_no()
        );
        assert_eq!(v["customerCode"], "J0086");
        assert_eq!(v["digest"], t::business_digest("J0086", "pw", "pk"));
        assert_eq!(v["receiver"]["area"], "南山区");
        assert_eq!(v["expressType"], "EZ");
    }

    #[test]
    fn answers_map_to_results_and_errors() {
        let ok = br#"{"code":"1","msg":"success","data":{"txlogisticId":"o1","billCode":"JT0012345678901","sortingCode":"A1"}}"#;
        assert_eq!(
            t::created(t::parse_answer(ok).unwrap()).unwrap(),
            ("JT0012345678901".into(), "o1".into())
        );
        assert_eq!(
            t::parse_answer(br#"{"code":"145003052","msg":"limit"}"#),
            Err(CarrierError::Throttled { retry_after: None })
        );
        assert!(
            matches!(t::parse_answer(br#"{"code":"145003030","msg":"headers signature verification failed"}"#),
            Err(CarrierError::Rejected { code, .. }) if code == "145003030")
        );
        for body in [&b""[..], b"{\"code\":1}", &ok[..30]] {
            assert!(
                matches!(t::parse_answer(body), Err(CarrierError::BadResponse(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn traces_map_scan_types() {
        let data = serde_json::json!([{"billCode":"JT1","details":[
            {"scanTime":"2024-01-02 08:00:00","desc":"a","scanType":"快件揽收"},
            {"scanTime":"2024-01-02 09:00:00","desc":"b","scanType":"快件签收"},
            {"scanTime":"2024-01-02 10:00:00","desc":"c","scanType":"问题件扫描"}]}]);
        let st: Vec<_> = t::track_events(data, "JT1")
            .unwrap()
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(
            st,
            [
                TrackStatus::PickedUp,
                TrackStatus::Delivered,
                TrackStatus::Exception
            ]
        );
        assert!(t::track_events(serde_json::json!([]), "JT1").is_err());
    }
}

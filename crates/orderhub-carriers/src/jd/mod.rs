//! JD Logistics (京东物流) through its LOP gateway: one path per API, a JSON array body, system
//! parameters and the `md5-salt` signature in the query string. Shapes in `transformers.rs`.

#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use chrono::Utc;

use crate::wire::{china_time_string, form_encode};
use crate::{
    Carrier, CarrierConfig, CarrierError, CarrierFuture, CarrierKind, HttpClient, TrackEvent,
    Waybill, WaybillRequest,
};
use transformers as t;

pub struct Jd {
    config: CarrierConfig,
    http: HttpClient,
}

impl Jd {
    pub fn new(config: CarrierConfig, http: HttpClient) -> Jd {
        Jd { config, http }
    }

    /// (url with query, JSON body) of one call. The body is a one-element array, as LOP wants.
    pub fn request(
        &self,
        path: &str,
        param: &impl serde::Serialize,
        timestamp: &str,
    ) -> Result<(String, String), CarrierError> {
        let body = serde_json::to_string(&[param])
            .map_err(|_| CarrierError::BadResponse("cannot encode the JD body".into()))?;
        let token = self.config.access_token();
        let sign = t::sign(
            self.config.secret.expose(),
            token,
            &self.config.app_key,
            path,
            &body,
            timestamp,
        );
        let query = form_encode(&[
            ("LOP-DN", t::DOMAIN),
            ("app_key", &self.config.app_key),
            ("access_token", token),
            ("timestamp", timestamp),
            ("v", t::VERSION),
            ("sign", &sign),
            ("algorithm", "md5-salt"),
        ]);
        Ok((format!("{}{path}?{query}", self.config.base_url), body))
    }

    async fn call(
        &self,
        path: &str,
        param: &impl serde::Serialize,
    ) -> Result<serde_json::Value, CarrierError> {
        let (url, body) = self.request(path, param, &china_time_string(Utc::now()))?;
        let answer = self
            .http
            .post(
                &url,
                "application/json;charset=utf-8",
                &[("lop-tz", "8".to_string())],
                body.into_bytes(),
            )
            .await?;
        t::parse_answer(&answer)
    }
}

impl Carrier for Jd {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Jd
    }

    fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill> {
        Box::pin(async move {
            let c = t::create(req, &self.config.customer_code);
            let (tracking_no, logistics_no) = t::created(self.call(t::CREATE, &c).await?)?;
            Ok(Waybill {
                carrier: CarrierKind::Jd,
                tracking_no,
                logistics_no,
            })
        })
    }

    fn track<'a>(&'a self, tracking_no: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>> {
        Box::pin(async move {
            let q = t::TraceQuery {
                waybill_code: tracking_no.to_string(),
                customer_code: self.config.customer_code.clone(),
                order_origin: 1,
            };
            t::track_events(self.call(t::TRACK, &q).await?)
        })
    }

    fn cancel_waybill<'a>(&'a self, waybill: &'a Waybill) -> CarrierFuture<'a, ()> {
        Box::pin(async move {
            let c = t::Cancel {
                waybill_code: waybill.tracking_no.clone(),
                customer_code: self.config.customer_code.clone(),
                order_origin: 1,
                cancel_reason: "merchant cancelled".into(),
                cancel_reason_code: "1".into(),
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
    fn sign_matches_an_independent_computation() {
        let got = t::sign(
            "sec",
            "tok",
            "key",
            "/ecap/v1/orders/create",
            r#"[{"orderId":"1"}]"#,
            "2024-01-02 08:00:00",
        );
        assert_eq!(got, JD_SIGN);
    }
    const JD_SIGN: &str = "e3a15d240b2f73294960308a23aa7a0a";

    #[test]
    fn the_create_request_has_lop_query_and_an_array_body() {
        let mut cfg =
            crate::CarrierConfig::new(crate::CarrierKind::Jd, "http://h", "key", "sec", "010K1");
        cfg.access_token = Some("tok".into());
        let jd = super::Jd::new(cfg, crate::HttpClient::new());
        let c = t::create(&crate::testing::request(), "010K1");
        let (url, body) = jd.request(t::CREATE, &c, "2024-01-02 08:00:00").unwrap();
        let (path, query) = url.split_once('?').unwrap();
        assert_eq!(path, "http://h/ecap/v1/orders/create");
        let q = form_decode(query.as_bytes());
        assert_eq!(q["LOP-DN"], "ECAP");
        assert_eq!(q["v"], "2.0");
        assert_eq!(q["algorithm"], "md5-salt");
        assert_eq!(
            q["sign"],
            t::sign("sec", "tok", "key", t::CREATE, &body, "2024-01-02 08:00:00")
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v[0]["orderId"],
            crate::testing::request().merchant_order_no()
        );
        assert_eq!(v[0]["customerCode"], "010K1");
        assert_eq!(
            v[0]["receiverContact"]["fullAddress"],
            "广东省深圳市南山区科技园路1号"
        );
        assert_eq!(v[0]["productsReq"]["productCode"], "ed-m-0001");
        assert_eq!(v[0]["cargoes"][0]["weight"], "1.25");
    }

    #[test]
    fn answers_map_to_results_and_errors() {
        let ok = br#"{"code":0,"msg":"success","data":{"waybillCode":"JDV000123456789","orderCode":"ESL1"}}"#;
        assert_eq!(
            t::created(t::parse_answer(ok).unwrap()).unwrap(),
            ("JDV000123456789".into(), "ESL1".into())
        );
        assert_eq!(
            t::parse_answer(br#"{"code":1009,"msg":"limit"}"#),
            Err(CarrierError::Throttled { retry_after: None })
        );
        assert!(
            matches!(t::parse_answer(br#"{"code":"1007","msg":"sign"}"#), Err(CarrierError::Rejected { code, .. }) if code == "1007")
        );
        for body in [&b""[..], b"{\"code\":null}", &ok[..25]] {
            assert!(
                matches!(t::parse_answer(body), Err(CarrierError::BadResponse(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn traces_map_categories() {
        let d = serde_json::json!({"waybillCode":"JDV1","traceDetails":[
            {"operationTime":"2024-01-02 08:00:00","operationTitle":"揽收","category":"200"},
            {"operationTime":"2024-01-02 09:00:00","operationTitle":"签收","category":"500"},
            {"operationTime":"2024-01-02 10:00:00","operationTitle":"?","category":"x"}]});
        let st: Vec<_> = t::track_events(d)
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
    }
}

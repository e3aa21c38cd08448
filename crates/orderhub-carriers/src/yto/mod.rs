//! YTO Express (圆通) through its open platform: `/open/{method}/v1/{token}/{customerCode}`, a JSON
//! envelope with the parameters as a string and `sign`. Shapes in `transformers.rs`.

#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use chrono::Utc;

use crate::{
    Carrier, CarrierConfig, CarrierError, CarrierFuture, CarrierKind, HttpClient, TrackEvent,
    Waybill, WaybillRequest,
};
use transformers as t;

pub struct Yto {
    config: CarrierConfig,
    http: HttpClient,
}

impl Yto {
    pub fn new(config: CarrierConfig, http: HttpClient) -> Yto {
        Yto { config, http }
    }

    /// (url, JSON body) of one call.
    pub fn request(
        &self,
        method: &str,
        param: &impl serde::Serialize,
        timestamp: &str,
    ) -> Result<(String, String), CarrierError> {
        let param = serde_json::to_string(param)
            .map_err(|_| CarrierError::BadResponse("cannot encode the YTO param".into()))?;
        let envelope = t::Envelope {
            timestamp: timestamp.to_string(),
            sign: t::sign(&param, method, self.config.secret.expose()),
            param,
            format: "JSON".into(),
        };
        let body = serde_json::to_string(&envelope)
            .map_err(|_| CarrierError::BadResponse("cannot encode the YTO envelope".into()))?;
        let url = format!(
            "{}{}",
            self.config.base_url,
            t::path(
                method,
                self.config.access_token(),
                &self.config.customer_code
            )
        );
        Ok((url, body))
    }

    async fn call(
        &self,
        method: &str,
        param: &impl serde::Serialize,
    ) -> Result<serde_json::Value, CarrierError> {
        let (url, body) =
            self.request(method, param, &Utc::now().timestamp_millis().to_string())?;
        let answer = self
            .http
            .post(
                &url,
                "application/json;charset=UTF-8",
                &[],
                body.into_bytes(),
            )
            .await?;
        t::parse_answer(&answer)
    }
}

impl Carrier for Yto {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Yto
    }

    fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill> {
        Box::pin(async move {
            let (tracking_no, logistics_no) =
                t::created(self.call(t::CREATE, &t::create(req)).await?)?;
            Ok(Waybill {
                carrier: CarrierKind::Yto,
                tracking_no,
                logistics_no,
            })
        })
    }

    fn track<'a>(&'a self, tracking_no: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>> {
        Box::pin(async move {
            let q = t::TrackQuery {
                number: tracking_no.to_string(),
            };
            t::track_events(self.call(t::TRACK, &q).await?)
        })
    }

    fn cancel_waybill<'a>(&'a self, waybill: &'a Waybill) -> CarrierFuture<'a, ()> {
        Box::pin(async move {
            let c = t::Cancel {
                logistics_no: waybill.logistics_no.clone(),
                cancel_desc: "merchant cancelled".into(),
            };
            self.call(t::CANCEL, &c).await.map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::transformers as t;
    use crate::{CarrierError, TrackStatus};

    /// Python 3, see SOURCES.md.
    #[test]
    fn sign_matches_an_independent_computation() {
        assert_eq!(
            t::sign(
                r#"{"NUMBER":"YT2819014489339"}"#,
                "track_query_adapter",
                "123456"
            ),
            YTO_SIGN
        );
    }
    const YTO_SIGN: &str = "vsqS+4HXwp4eWg50AEhiKA==";

    #[test]
    fn the_create_request_has_yto_names() {
        let mut cfg =
            crate::CarrierConfig::new(crate::CarrierKind::Yto, "http://h", "k", "sec", "K21000119");
        cfg.access_token = Some("Ef4kfE".into());
        let yto = super::Yto::new(cfg, crate::HttpClient::new());
        let (url, body) = yto
            .request(
                t::CREATE,
                &t::create(&crate::testing::request()),
                "1700000000000",
            )
            .unwrap();
        assert_eq!(
            url,
            "http://h/open/privacy_create_adapter/v1/Ef4kfE/K21000119"
        );
        let env: t::Envelope = serde_json::from_str(&body).unwrap();
        assert_eq!(env.format, "JSON");
        assert_eq!(env.timestamp, "1700000000000");
        assert_eq!(env.sign, t::sign(&env.param, t::CREATE, "sec"));
        let p: serde_json::Value = serde_json::from_str(&env.param).unwrap();
        assert_eq!(
            p["logisticsNo"],
            crate::testing::request().merchant_order_no()
        );
        assert_eq!(p["recipientCountyName"], "南山区");
        assert_eq!(p["weight"], "1.25");
    }

    #[test]
    fn answers_map_to_results_and_errors() {
        let ok = br#"{"logisticsNo":"o1","mailNo":"YT1234567890123","shortAddress":"300-A"}"#;
        assert_eq!(
            t::created(t::parse_answer(ok).unwrap()).unwrap(),
            ("YT1234567890123".into(), "o1".into())
        );
        assert_eq!(
            t::parse_answer(br#"{"success":false,"code":"S05","reason":"limit"}"#),
            Err(CarrierError::Throttled { retry_after: None })
        );
        assert!(
            matches!(t::parse_answer(br#"{"success":"false","code":"S01","reason":"sign"}"#), Err(CarrierError::Rejected { code, .. }) if code == "S01")
        );
        for body in [&b""[..], b"[1,", &ok[..20]] {
            assert!(matches!(
                t::parse_answer(body),
                Err(CarrierError::BadResponse(_))
            ));
        }
        assert!(matches!(
            t::created(serde_json::json!({"logisticsNo":"o"})),
            Err(CarrierError::BadResponse(_))
        ));
    }

    #[test]
    fn traces_map_info_content() {
        let v = serde_json::json!([
            {"waybill_No":"YT1","upload_Time":"2024-01-02 08:00:00","infoContent":"GOT","processInfo":"a"},
            {"waybill_No":"YT1","upload_Time":"2024-01-02 09:00:00","infoContent":"ARRIVAL","processInfo":"b"},
            {"waybill_No":"YT1","upload_Time":"2024-01-02 10:00:00","infoContent":"SIGNED","processInfo":"c"}]);
        let st: Vec<_> = t::track_events(v)
            .unwrap()
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(
            st,
            [
                TrackStatus::PickedUp,
                TrackStatus::InTransit,
                TrackStatus::Delivered
            ]
        );
    }
}

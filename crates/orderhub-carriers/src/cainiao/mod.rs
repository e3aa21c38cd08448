//! Cainiao (菜鸟) electronic waybills through the link gateway: one URL, a form with `msg_type`,
//! `logistic_provider_id`, `data_digest` and the JSON `logistics_interface`. The waybill number
//! is issued in the format of the underlying carrier (`cpCode`, here `customer_code`).

#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use crate::wire::form_encode;
use crate::{
    Carrier, CarrierConfig, CarrierError, CarrierFuture, CarrierKind, HttpClient, TrackEvent,
    Waybill, WaybillRequest,
};
use transformers as t;

pub struct Cainiao {
    config: CarrierConfig,
    http: HttpClient,
}

impl Cainiao {
    pub fn new(config: CarrierConfig, http: HttpClient) -> Cainiao {
        Cainiao { config, http }
    }

    pub fn form(
        &self,
        msg_type: &str,
        content: &impl serde::Serialize,
    ) -> Result<String, CarrierError> {
        let content = serde_json::to_string(content)
            .map_err(|_| CarrierError::BadResponse("cannot encode logistics_interface".into()))?;
        let digest = t::data_digest(&content, self.config.secret.expose());
        Ok(form_encode(&[
            ("msg_type", msg_type),
            ("logistic_provider_id", &self.config.app_key),
            ("data_digest", &digest),
            ("logistics_interface", &content),
        ]))
    }

    async fn call(
        &self,
        msg_type: &str,
        content: &impl serde::Serialize,
    ) -> Result<serde_json::Value, CarrierError> {
        let body = self.form(msg_type, content)?;
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
        t::parse_answer(&answer)
    }
}

impl Carrier for Cainiao {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Cainiao
    }

    fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill> {
        Box::pin(async move {
            let get = t::waybill_get(req, &self.config.customer_code);
            let answer = self.call(t::GET, &get).await?;
            let (tracking_no, logistics_no) = t::created(answer, &req.merchant_order_no())?;
            Ok(Waybill {
                carrier: CarrierKind::Cainiao,
                tracking_no,
                logistics_no,
            })
        })
    }

    fn track<'a>(&'a self, tracking_no: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>> {
        Box::pin(async move {
            let q = t::ByWaybill {
                cp_code: self.config.customer_code.clone(),
                waybill_code: tracking_no.to_string(),
            };
            t::track_events(self.call(t::TRACE, &q).await?)
        })
    }

    fn cancel_waybill<'a>(&'a self, waybill: &'a Waybill) -> CarrierFuture<'a, ()> {
        Box::pin(async move {
            let q = t::ByWaybill {
                cp_code: self.config.customer_code.clone(),
                waybill_code: waybill.tracking_no.clone(),
            };
            let answer = self.call(t::DISCARD, &q).await?;
            match answer.get("discardResult") {
                Some(serde_json::Value::Bool(true)) => Ok(()),
                _ => Err(CarrierError::BadResponse(
                    "Cainiao did not confirm the discard".into(),
                )),
            }
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
    fn data_digest_matches_an_independent_computation() {
        assert_eq!(
            t::data_digest(
                r#"{"cpCode":"ZTO","waybillCode":"7300"}"#,
                "olmT3icH12h5n2Q0978x3BZnD89g722q"
            ),
            CN_DIGEST
        );
    }
    const CN_DIGEST: &str = "EW8i/K24ASlU/ImQ1s0wNA==";

    #[test]
    fn the_waybill_get_form_has_link_fields() {
        let cfg = crate::CarrierConfig::new(
            crate::CarrierKind::Cainiao,
            "http://h",
            "TOKEN1",
            "sec",
            "ZTO",
        );
        let cn = super::Cainiao::new(cfg, crate::HttpClient::new());
        let form = form_decode(
            cn.form(t::GET, &t::waybill_get(&crate::testing::request(), "ZTO"))
                .unwrap()
                .as_bytes(),
        );
        assert_eq!(form["msg_type"], "TMS_WAYBILL_GET");
        assert_eq!(form["logistic_provider_id"], "TOKEN1");
        assert_eq!(
            form["data_digest"],
            t::data_digest(&form["logistics_interface"], "sec")
        );
        let v: serde_json::Value = serde_json::from_str(&form["logistics_interface"]).unwrap();
        assert_eq!(v["cpCode"], "ZTO");
        let dto = &v["tradeOrderInfoDtos"][0];
        assert_eq!(
            dto["objectId"],
            crate::testing::request().merchant_order_no()
        );
        assert_eq!(dto["recipient"]["address"]["district"], "南山区");
        assert_eq!(dto["packageInfo"]["weight"], 1250);
    }

    #[test]
    fn answers_map_to_results_and_errors() {
        let ok = br#"{"success":"true","waybillCloudPrintResponseList":[{"objectId":"o1","waybillCode":"731000000001","printData":"{}"}]}"#;
        assert_eq!(
            t::created(t::parse_answer(ok).unwrap(), "o1").unwrap(),
            ("731000000001".into(), "o1".into())
        );
        assert!(matches!(
            t::created(t::parse_answer(ok).unwrap(), "o2"),
            Err(CarrierError::BadResponse(_))
        ));
        assert_eq!(
            t::parse_answer(br#"{"success":false,"errorCode":"S14","errorMsg":"limit"}"#),
            Err(CarrierError::Throttled { retry_after: None })
        );
        assert!(
            matches!(t::parse_answer(br#"{"success":"false","errorCode":"S12","errorMsg":"sign"}"#), Err(CarrierError::Rejected { code, .. }) if code == "S12")
        );
        for body in [&b""[..], b"[]", b"{\"x\":1}", &ok[..40]] {
            assert!(
                matches!(t::parse_answer(body), Err(CarrierError::BadResponse(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn traces_map_actions() {
        let v = serde_json::json!({"success":true,"fullTraceDetail":[
            {"time":"2024-01-02 08:00:00","action":"GOT","desc":"a"},
            {"time":"2024-01-02 09:00:00","action":"SIGN","desc":"b"},
            {"time":"2024-01-02 10:00:00","action":"???","desc":"c"}]});
        let st: Vec<_> = t::track_events(v)
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

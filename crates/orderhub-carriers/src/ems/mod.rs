//! EMS (中国邮政速递) through the agreement-customer API platform: one URL, `apiCode` selects the
//! API, a form whose `logitcsInterface` (sic) is the JSON payload encrypted with SM4.

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

pub struct Ems {
    config: CarrierConfig,
    http: HttpClient,
}

impl Ems {
    pub fn new(config: CarrierConfig, http: HttpClient) -> Ems {
        Ems { config, http }
    }

    pub fn form(
        &self,
        api_code: &str,
        payload: &impl serde::Serialize,
        timestamp: &str,
    ) -> Result<String, CarrierError> {
        let json = serde_json::to_string(payload)
            .map_err(|_| CarrierError::BadResponse("cannot encode the EMS payload".into()))?;
        let encrypted = t::encrypt(&json, self.config.secret.expose()).ok_or_else(|| {
            CarrierError::Rejected {
                code: "invalid_config".into(),
                message: "the EMS sign key is not 16 bytes of Base64".into(),
            }
        })?;
        Ok(form_encode(&[
            ("apiCode", api_code),
            ("senderNo", &self.config.customer_code),
            ("authorization", &self.config.app_key),
            ("msgType", "0"),
            ("timeStamp", timestamp),
            ("version", "V1.0.0"),
            ("logitcsInterface", &encrypted),
        ]))
    }

    async fn call(
        &self,
        api_code: &str,
        payload: &impl serde::Serialize,
    ) -> Result<serde_json::Value, CarrierError> {
        let body = self.form(api_code, payload, &china_time_string(Utc::now()))?;
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

impl Carrier for Ems {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Ems
    }

    fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill> {
        Box::pin(async move {
            let order = t::create_order(req, &self.config.customer_code, Utc::now());
            let (tracking_no, logistics_no) = t::created(self.call(t::CREATE, &[order]).await?)?;
            Ok(Waybill {
                carrier: CarrierKind::Ems,
                tracking_no,
                logistics_no,
            })
        })
    }

    fn track<'a>(&'a self, tracking_no: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>> {
        Box::pin(async move {
            let q = t::TrackQuery {
                waybill_no: tracking_no.to_string(),
                direction: "0".into(),
            };
            t::track_events(self.call(t::TRACK, &q).await?)
        })
    }

    fn cancel_waybill<'a>(&'a self, waybill: &'a Waybill) -> CarrierFuture<'a, ()> {
        Box::pin(async move {
            let c = t::Cancel {
                logistics_order_no: waybill.logistics_no.clone(),
                waybill_no: waybill.tracking_no.clone(),
                cancel_reason: "merchant cancelled".into(),
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

    /// Two vectors published with an EMS client's tests, produced by Node's `sm4-ecb` cipher and,
    /// by that project's account, EMS's official sign tool (SOURCES.md, EMS).
    #[test]
    fn encryption_matches_published_vectors() {
        assert_eq!(
            t::encrypt(
                r#"{"language":"zh-CN","orderId":"QIAO-20200618-004"}"#,
                "TvaBgrhE46sft3nZlfe7xw=="
            )
            .unwrap(),
            "|$4|efB6PnjDpgHG4xfrvYlXonyBuMJoGTynkfasopHvbl2u3nmNeP+rznA3DyRwb/2GeZL7I3rL6HKD5+Tv3Uy6x8jIDISbYG8Bg14caH2flYE="
        );
        assert_eq!(
            t::encrypt(r#"[{"wholeAddress":"ABC123"}]"#, "WjNoNmhXWE12SFZJdk0zWQ==").unwrap(),
            "|$4|slRLUixzb1DplJxnGKMG5tcXh0zH5Ry1qZAIemYxDc7VfSxow31WUmgLbzbJt996Ud/vpaVOMcwyqsLvQRXPaA=="
        );
        assert!(t::encrypt("{}", "short").is_none());
    }

    #[test]
    fn decryption_inverts_and_refuses_a_wrong_key() {
        let key = "TvaBgrhE46sft3nZlfe7xw==";
        let e = t::encrypt(r#"{"a":1}"#, key).unwrap();
        assert_eq!(t::decrypt(&e, key).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(t::decrypt(&e, "WjNoNmhXWE12SFZJdk0zWQ=="), None);
        assert_eq!(t::decrypt("garbage", key), None);
        assert_eq!(t::decrypt("|$4|!!!", key), None);
    }

    #[test]
    fn the_create_form_has_the_platform_fields() {
        let cfg = crate::CarrierConfig::new(
            crate::CarrierKind::Ems,
            "http://h",
            "AUTH",
            "TvaBgrhE46sft3nZlfe7xw==",
            "1100172843670",
        );
        let ems = super::Ems::new(cfg, crate::HttpClient::new());
        let order = t::create_order(
            &crate::testing::request(),
            "1100172843670",
            chrono::Utc::now(),
        );
        let form = form_decode(
            ems.form(t::CREATE, &[order], "2024-01-02 08:00:00")
                .unwrap()
                .as_bytes(),
        );
        assert_eq!(form["apiCode"], "020003");
        assert_eq!(form["senderNo"], "1100172843670");
        assert_eq!(form["authorization"], "AUTH");
        assert_eq!(form["timeStamp"], "2024-01-02 08:00:00");
        let json = t::decrypt(&form["logitcsInterface"], "TvaBgrhE46sft3nZlfe7xw==").unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v[0]["logisticsOrderNo"],
            crate::testing::request().merchant_order_no()
        );
        assert_eq!(v[0]["receiver"]["county"], "南山区");
        assert_eq!(v[0]["weight"], "1250");
    }

    #[test]
    fn answers_map_to_results_and_errors() {
        let ok = br#"{"serialNo":"1","retCode":"00000","retMsg":"ok","retBody":"{\"logisticsOrderNo\":\"o1\",\"waybillNo\":\"1100000000001\"}","success":true}"#;
        assert_eq!(
            t::created(t::parse_answer(ok).unwrap()).unwrap(),
            ("1100000000001".into(), "o1".into())
        );
        assert_eq!(
            t::parse_answer(br#"{"retCode":"S00009","retMsg":"limit"}"#),
            Err(CarrierError::Throttled { retry_after: None })
        );
        assert!(
            matches!(t::parse_answer(br#"{"retCode":"S00001","retMsg":"sign"}"#), Err(CarrierError::Rejected { code, .. }) if code == "S00001")
        );
        let inner_broken = br#"{"retCode":"00000","retBody":"{\"waybillNo\":"}"#;
        for body in [&b""[..], &inner_broken[..], &ok[..50]] {
            assert!(
                matches!(t::parse_answer(body), Err(CarrierError::BadResponse(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn traces_map_op_codes() {
        let v = serde_json::json!([
            {"waybillNo":"1","opTime":"2024-01-02 08:00:00","opCode":"203","opName":"收寄"},
            {"waybillNo":"1","opTime":"2024-01-02 09:00:00","opCode":"704","opName":"妥投"},
            {"waybillNo":"1","opTime":"2024-01-02 10:00:00","opCode":"999","opName":"?"}]);
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

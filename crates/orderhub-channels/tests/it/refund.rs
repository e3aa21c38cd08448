//! Refund decisions (issue 21): the seller's agreement or refusal of a channel refund, as the
//! platform's calls take it (SOURCES.md, "Refund decisions"), signed as its other calls are; the
//! answers read from the SDK's response shapes; the simulator answers them and records decisions.

use super::creds;
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{
    ApiError, Channel, ChannelKind, ChannelRefund, RefundDecision, RefundState, adapter,
};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn param<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

fn waiting() -> ChannelRefund {
    ChannelRefund {
        refund_id: "70000000000001".into(),
        external_order_id: "3900000000000000001".into(),
        external_line_id: Some("3900000000000000001".into()),
        state: RefundState::Requested,
        raw_status: "WAIT_SELLER_AGREE".into(),
        phase: Some("onsale".into()),
        version: Some(1_731_300_000_000),
    }
}

#[test]
fn taobao_reads_a_refund_with_refund_get_naming_phase_and_version() {
    let a = adapter(ChannelKind::Taobao).unwrap();
    let req = a
        .refund_get_request("70000000000001", &creds(), at())
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "method"), Some("taobao.refund.get"));
    assert_eq!(param(&p, "refund_id"), Some("70000000000001"));
    assert!(param(&p, "fields").unwrap().contains("refund_version"));
    assert_eq!(
        param(&p, "sign").unwrap(),
        orderhub_channels::taobao::top_sign(&p, "s3cret")
    );
    assert_eq!(
        a.refund_get_request("12ab", &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // The answer in the SDK's `Refund` shape (bububa/opentaobao model/refund/Refund.go).
    let body = br#"{"refund_get_response":{"refund":{"refund_id":"70000000000001","tid":3900000000000000001,"oid":3900000000000000001,"status":"WAIT_SELLER_AGREE","refund_phase":"onsale","refund_version":1731300000000},"request_id":"x"}}"#;
    assert_eq!(a.parse_refund(body).unwrap(), waiting());
    let unknown =
        br#"{"refund_get_response":{"refund":{"refund_id":"1","tid":1,"status":"NEW_THING"}}}"#;
    assert!(
        matches!(a.parse_refund(unknown), Err(ApiError::Rejected(r)) if r.rule == "unknown_status")
    );
    let err = br#"{"error_response":{"code":7,"msg":"App Call Limited","sub_code":"accesscontrol.limited-by-app-access-count"}}"#;
    assert!(matches!(
        a.parse_refund(err),
        Err(ApiError::Throttled { .. })
    ));
}

#[test]
fn taobao_agrees_with_rp_refund_review_and_refuses_with_refund_refuse() {
    let a = adapter(ChannelKind::Taobao).unwrap();
    let req = a
        .refund_decision_request(&waiting(), &RefundDecision::Agree, &creds(), at())
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "method"), Some("taobao.rp.refund.review"));
    assert_eq!(param(&p, "refund_id"), Some("70000000000001"));
    assert_eq!(param(&p, "result"), Some("true"));
    assert_eq!(param(&p, "refund_phase"), Some("onsale"));
    assert_eq!(param(&p, "refund_version"), Some("1731300000000"));
    assert_eq!(param(&p, "operator"), Some("orderhub"));
    assert_eq!(param(&p, "session"), Some("tok-1"));
    assert_eq!(
        param(&p, "sign").unwrap(),
        orderhub_channels::taobao::top_sign(&p, "s3cret")
    );
    // Review names the version: a refund read without one is refused before any call.
    let mut r = waiting();
    r.version = None;
    assert_eq!(
        a.refund_decision_request(&r, &RefundDecision::Agree, &creds(), at())
            .unwrap_err()
            .rule,
        "missing_field"
    );
    let long = "很".repeat(300);
    let req = a
        .refund_decision_request(
            &waiting(),
            &RefundDecision::Refuse { reason: long },
            &creds(),
            at(),
        )
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "method"), Some("taobao.refund.refuse"));
    assert_eq!(
        param(&p, "refuse_message").unwrap().chars().count(),
        200,
        "cut to refuse_message's 200 characters"
    );
    assert_eq!(param(&p, "refund_version"), Some("1731300000000"));
    assert_eq!(
        a.refund_decision_request(
            &waiting(),
            &RefundDecision::Refuse {
                reason: " x ".into()
            },
            &creds(),
            at()
        )
        .unwrap_err()
        .rule,
        "bad_value",
        "refuse_message takes 2 to 200 characters"
    );
    // The answers (bububa/opentaobao TaobaoRpRefundReviewAPIResponse, TaobaoRefundRefuseAPIResponse).
    a.parse_refund_decision_ack(
        br#"{"rp_refund_review_response":{"is_success":true,"request_id":"x"}}"#,
    )
    .unwrap();
    a.parse_refund_decision_ack(br#"{"refund_refuse_response":{"refund":{"refund_id":"1","status":"SELLER_REFUSE_BUYER"},"is_success":true}}"#)
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"refund_refuse_response":{"is_success":false}}"#),
        Err(ApiError::Api { .. })
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"something_else":{}}"#),
        Err(ApiError::Rejected(_))
    ));
}

/// The configurable channel (a B2B portal or an ERP by mapping) declares no refund calls: its
/// adapter says so before any call, and the write-back records "no call".
#[test]
fn the_configurable_channel_has_no_refund_call_and_says_so_before_any_call() {
    let text = std::fs::read_to_string(format!(
        "{}/mappings/acme-b2b.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let a = orderhub_channels::mapped::Mapped::new(
        orderhub_channels::mapped::Mapping::from_toml(&text).unwrap(),
    );
    assert_eq!(
        a.refund_get_request("1", &creds(), at()).unwrap_err().rule,
        "not_supported"
    );
    assert_eq!(
        a.order_refunds_request("1", &creds(), at())
            .unwrap_err()
            .rule,
        "not_supported"
    );
    assert_eq!(
        a.refund_decision_request(&waiting(), &RefundDecision::Agree, &creds(), at())
            .unwrap_err()
            .rule,
        "not_supported"
    );
}

#[tokio::test]
async fn the_taobao_simulator_serves_refunds_checks_signatures_and_records_decisions() {
    let (url, handle) = sim::spawn(ChannelKind::Taobao, SimSettings::new(creds(), 5, 1))
        .await
        .unwrap();
    let a = adapter(ChannelKind::Taobao).unwrap();
    let http = HttpClient::new();
    let o = handle.orders().into_iter().next().unwrap();
    let line = o.lines[0].external_line_id.clone();
    let id = handle.open_refund(&o.external_order_id, &line).unwrap();
    // The order's detail shows the refund on the line.
    let (_, body) = http
        .send(
            &url,
            &a.detail_request(&o.external_order_id, &creds(), at()),
        )
        .await
        .unwrap();
    let detail = a.parse_detail(&body).unwrap();
    assert_eq!(detail.lines[0].refund, RefundState::Requested);
    assert_eq!(detail.lines[0].refund_id.as_deref(), Some(id.as_str()));
    let (_, body) = http
        .send(&url, &a.refund_get_request(&id, &creds(), at()).unwrap())
        .await
        .unwrap();
    let r = a.parse_refund(&body).unwrap();
    assert_eq!(
        (r.state, r.external_line_id.as_deref()),
        (RefundState::Requested, Some(line.as_str()))
    );
    // A wrong signature is refused like any call.
    let mut bad = creds();
    bad.secret = "other".into();
    let (_, body) = http
        .send(
            &url,
            &a.refund_decision_request(&r, &RefundDecision::Agree, &bad, at())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&body),
        Err(ApiError::Auth { .. })
    ));
    // An unknown refund id: the channel's error.
    let mut unknown = r.clone();
    unknown.refund_id = "99".into();
    let (_, body) = http
        .send(
            &url,
            &a.refund_decision_request(&unknown, &RefundDecision::Agree, &creds(), at())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&body),
        Err(ApiError::Api { .. })
    ));
    assert!(handle.refund_decisions().is_empty());
    // Agreed twice: acknowledged twice, recorded once.
    for _ in 0..2 {
        let (_, body) = http
            .send(
                &url,
                &a.refund_decision_request(&r, &RefundDecision::Agree, &creds(), at())
                    .unwrap(),
            )
            .await
            .unwrap();
        a.parse_refund_decision_ack(&body).unwrap();
    }
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].refund_id.as_str(), &d[0].decision),
        (id.as_str(), &RefundDecision::Agree)
    );
}

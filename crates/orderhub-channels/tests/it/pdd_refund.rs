//! Pinduoduo after-sales (issue 21): the order's after-sale read by `pdd.refund.information.get`
//! (by the order, then by the order and the after-sale id), agreed with `pdd.refund.agree`, as
//! lywzx/pdd-node-sdk and SchafferJ/open-pdd take and answer them; signed as the adapter's other
//! calls. PDD has no refusal call: a refusal is `not_supported` before any call. And the PDD
//! simulator serving them.

use super::creds;
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{
    ApiError, ApiRequest, CanonicalStatus, ChannelKind, ChannelRefund, RefundDecision, RefundState,
    adapter,
};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// The call's parameters, after checking its signature.
fn call(req: &ApiRequest) -> Vec<(String, String)> {
    let p: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let sign = p.iter().find(|(k, _)| k == "sign").unwrap().1.clone();
    assert_eq!(sign, orderhub_channels::pdd::api_sign(&p, "s3cret"));
    assert_eq!(req.path_and_query, "/api/router");
    p
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

fn waiting() -> ChannelRefund {
    ChannelRefund {
        refund_id: "241111-123456789012345:5032101".into(),
        external_order_id: "241111-123456789012345".into(),
        external_line_id: Some("1183458394".into()),
        state: RefundState::Requested,
        raw_status: "2".into(),
        phase: None,
        version: None,
    }
}

/// The detail answer in the SDKs' fields (`PddRefundInformationGetResponseInterface`).
const DETAIL: &str = r#"{"refund_information_get_response":{"id":5032101,"order_sn":"241111-123456789012345","after_sales_status":2,"after_sales_type":1,"after_sales_reason":"不想要了","sku_id":"1183458394","goods_number":1,"goods_price":19.9,"refund_amount":19.9,"shipping_status":0,"speed_refund_flag":0,"expire_time":1731400000,"request_id":"x"}}"#;

#[test]
fn pdd_reads_the_after_sale_of_an_order_by_refund_information_get() {
    let a = adapter(ChannelKind::Pdd).unwrap();
    let p = call(
        &a.order_refunds_request("241111-123456789012345", &creds(), at())
            .unwrap(),
    );
    assert_eq!(get(&p, "type"), Some("pdd.refund.information.get"));
    assert_eq!(get(&p, "order_sn"), Some("241111-123456789012345"));
    assert_eq!(get(&p, "after_sales_id"), None, "by the order alone");
    assert_eq!(get(&p, "access_token"), Some("tok-1"));
    assert_eq!(
        a.parse_order_refunds(DETAIL.as_bytes()).unwrap(),
        vec![waiting()]
    );
    let p = call(
        &a.refund_get_request("241111-123456789012345:5032101", &creds(), at())
            .unwrap(),
    );
    assert_eq!(get(&p, "type"), Some("pdd.refund.information.get"));
    assert_eq!(get(&p, "after_sales_id"), Some("5032101"));
    assert_eq!(get(&p, "order_sn"), Some("241111-123456789012345"));
    assert_eq!(a.parse_refund(DETAIL.as_bytes()).unwrap(), waiting());
    // The read needs the order: a bare after-sale id is refused before any call.
    assert_eq!(
        a.refund_get_request("5032101", &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // Agreed by the seller: nothing is left to agree to; an unknown status is refused.
    let agreed = DETAIL.replace("\"after_sales_status\":2", "\"after_sales_status\":4");
    assert_eq!(
        a.parse_refund(agreed.as_bytes()).unwrap().state,
        RefundState::Refunded
    );
    let odd = DETAIL.replace("\"after_sales_status\":2", "\"after_sales_status\":99");
    assert!(
        matches!(a.parse_refund(odd.as_bytes()), Err(ApiError::Rejected(r)) if r.rule == "unknown_status")
    );
    let err = r#"{"error_response":{"error_code":70031,"error_msg":"调用已被系统限流","sub_code":"70031","sub_msg":"","request_id":"x"}}"#;
    assert!(matches!(
        a.parse_refund(err.as_bytes()),
        Err(ApiError::Throttled { .. })
    ));
}

#[test]
fn pdd_agrees_with_refund_agree_and_has_no_refusal_call() {
    let a = adapter(ChannelKind::Pdd).unwrap();
    let p = call(
        &a.refund_decision_request(&waiting(), &RefundDecision::Agree, &creds(), at())
            .unwrap(),
    );
    assert_eq!(get(&p, "type"), Some("pdd.refund.agree"));
    let request: serde_json::Value = serde_json::from_str(get(&p, "request").unwrap()).unwrap();
    assert_eq!(
        request,
        serde_json::json!({"after_sales_id": 5032101, "order_sn": "241111-123456789012345", "operate_desc": "approved in orderhub"})
    );
    let refuse = RefundDecision::Refuse {
        reason: "已发货".into(),
    };
    assert_eq!(
        a.refund_decision_request(&waiting(), &refuse, &creds(), at())
            .unwrap_err()
            .rule,
        "not_supported"
    );
    // The answers (`PddRefundAgreeResponseInterface`: response.result{after_sales_id, order_sn,
    // succ, message}).
    a.parse_refund_decision_ack(r#"{"response":{"result":{"after_sales_id":5032101,"order_sn":"241111-123456789012345","succ":true,"message":"退款操作成功"}}}"#.as_bytes())
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(r#"{"response":{"result":{"after_sales_id":5032101,"succ":false,"message":"售后单状态已变更"}}}"#.as_bytes()),
        Err(ApiError::Api { message, .. }) if message == "售后单状态已变更"
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(
            br#"{"error_response":{"error_code":10019,"error_msg":"access_token expired"}}"#
        ),
        Err(ApiError::Auth { .. })
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"response":{}}"#),
        Err(ApiError::Rejected(_))
    ));
}

async fn send(url: &str, req: &ApiRequest) -> Vec<u8> {
    HttpClient::new().send(url, req).await.unwrap().1.to_vec()
}

#[tokio::test]
async fn the_pdd_simulator_serves_after_sales_and_records_agreements() {
    let (url, handle) = sim::spawn(ChannelKind::Pdd, SimSettings::new(creds(), 8, 3))
        .await
        .unwrap();
    let a = adapter(ChannelKind::Pdd).unwrap();
    let o = handle
        .orders()
        .into_iter()
        .find(|o| o.canonical == CanonicalStatus::Paid)
        .unwrap();
    let line = o.lines[0].external_line_id.clone();
    assert_eq!(
        Some(&line),
        o.lines[0].platform_sku_id.as_ref(),
        "PDD's line is its SKU"
    );
    let id = handle.open_refund(&o.external_order_id, &line).unwrap();
    let detail = a
        .parse_detail(
            &send(
                &url,
                &a.detail_request(&o.external_order_id, &creds(), at()),
            )
            .await,
        )
        .unwrap();
    assert_eq!(detail.lines[0].refund, RefundState::Requested);
    let listed = a
        .parse_order_refunds(
            &send(
                &url,
                &a.order_refunds_request(&o.external_order_id, &creds(), at())
                    .unwrap(),
            )
            .await,
        )
        .unwrap();
    let composite = format!("{}:{id}", o.external_order_id);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].refund_id.as_str(),
            listed[0].external_line_id.as_deref()
        ),
        (composite.as_str(), Some(line.as_str()))
    );
    let r = a
        .parse_refund(
            &send(
                &url,
                &a.refund_get_request(&composite, &creds(), at()).unwrap(),
            )
            .await,
        )
        .unwrap();
    assert_eq!(r.state, RefundState::Requested);
    // A wrong signature is refused like any call; the system error is tried again.
    let mut bad = creds();
    bad.secret = "other".into();
    let req = a
        .refund_decision_request(&r, &RefundDecision::Agree, &bad, at())
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&send(&url, &req).await),
        Err(ApiError::Auth { .. })
    ));
    handle.fail_refund_decisions(1);
    let req = a
        .refund_decision_request(&r, &RefundDecision::Agree, &creds(), at())
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&send(&url, &req).await),
        Err(ApiError::Api { .. })
    ));
    a.parse_refund_decision_ack(&send(&url, &req).await)
        .unwrap();
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (
            d[0].refund_id.as_str(),
            &d[0].decision,
            d[0].line_id.as_deref()
        ),
        (id.as_str(), &RefundDecision::Agree, Some(line.as_str()))
    );
}

//! Kuaishou refund decisions (issue 21), from the API declarations generated from Kuaishou's docs
//! (crywolfx/kuaishou-merchant-open-api `packages/common/Interface/api.declaration.ts`:
//! `open.seller.order.refund.detail` → `MerchantRefundDetailDataView`,
//! `open.seller.order.refund.approve`, `open.seller.order.refund.returngoods.approve`,
//! `open.refund.reject`): request parameters in `param`, signed as the adapter's other calls; the
//! answers in the declared field names; then the simulator.

use super::{creds, order};
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::kuaishou::api_sign;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{
    ApiError, ApiRequest, ChannelKind, ChannelRefund, RefundDecision, RefundState, adapter,
};
use serde_json::{Value, json};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn form(req: &ApiRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

fn param<'a>(p: &'a [(String, String)], k: &str) -> &'a str {
    p.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn biz(req: &ApiRequest) -> Value {
    serde_json::from_str(param(&form(req), "param")).unwrap()
}

/// A refund-only application waiting for the seller, as the read answers it.
fn applied() -> ChannelRefund {
    ChannelRefund {
        refund_id: "2100000000000001".into(),
        external_order_id: "2411110000000001".into(),
        external_line_id: None,
        state: RefundState::Requested,
        raw_status: "10".into(),
        phase: Some("890".into()),
        version: Some(1_731_300_000_000),
    }
}

#[test]
fn kuaishou_detail_names_the_lines_refund_from_the_newest_of_order_refund_list() {
    // One SKU per order; orderRefundList is newest first.
    let o = order(ChannelKind::Kuaishou, "kuaishou/edge-refunded.json");
    assert_eq!(o.lines.len(), 1);
    assert_eq!(o.lines[0].refund_id.as_deref(), Some("9001"));
    let o = order(ChannelKind::Kuaishou, "kuaishou/order-detail-response.json");
    assert_eq!(o.lines[0].refund_id, None);
}

#[test]
fn kuaishou_reads_a_refund_with_open_seller_order_refund_detail() {
    let a = adapter(ChannelKind::Kuaishou).unwrap();
    let req = a
        .refund_get_request("2100000000000001", &creds(), at())
        .unwrap();
    assert_eq!(req.path_and_query, "/open/seller/order/refund/detail");
    let p = form(&req);
    assert_eq!(param(&p, "method"), "open.seller.order.refund.detail");
    assert_eq!(param(&p, "access_token"), "tok-1");
    assert_eq!(param(&p, "sign"), api_sign(&p, "s3cret"));
    // refundId is a Long.
    assert_eq!(biz(&req), json!({"refundId": 2_100_000_000_000_001u64}));
    assert_eq!(
        a.refund_get_request("W1", &creds(), at()).unwrap_err().rule,
        "bad_value"
    );
    let body = json!({"result": 1, "code": "1", "msg": "success", "data": {
        "refundId": 2_100_000_000_000_001u64, "oid": 2_411_110_000_000_001u64,
        "skuId": 1_000_001, "refundFee": 890, "status": 10, "refundType": 1,
        "handlingWay": 10, "negotiateStatus": 1, "updateTime": 1_731_300_000_000i64,
        "createTime": 1_731_200_000_000i64, "refundReasonDesc": "不想要了",
    }});
    assert_eq!(
        a.parse_refund(body.to_string().as_bytes()).unwrap(),
        applied()
    );
    // Every status of the declaration maps.
    for (status, state) in [
        (11, RefundState::Requested),
        (20, RefundState::Requested),
        (22, RefundState::Requested),
        (40, RefundState::Requested),
        (50, RefundState::Requested),
        (60, RefundState::Refunded),
        (70, RefundState::Rejected),
    ] {
        let b = json!({"result": 1, "data": {"refundId": 1, "oid": 2, "status": status}});
        assert_eq!(
            a.parse_refund(b.to_string().as_bytes()).unwrap().state,
            state
        );
    }
    let unknown = br#"{"result":1,"data":{"refundId":1,"oid":2,"status":99}}"#;
    assert!(
        matches!(a.parse_refund(unknown), Err(ApiError::Rejected(r)) if r.rule == "unknown_status")
    );
    let expired =
        r#"{"result":28,"code":"803000","msg":"鉴权失败","error_msg":"TOKEN过期","sub_code":"28"}"#;
    assert!(matches!(
        a.parse_refund(expired.as_bytes()),
        Err(ApiError::Auth { .. })
    ));
}

#[test]
fn kuaishou_agrees_with_refund_approve_or_returngoods_approve_and_does_not_refuse() {
    let a = adapter(ChannelKind::Kuaishou).unwrap();
    let req = a
        .refund_decision_request(&applied(), &RefundDecision::Agree, &creds(), at())
        .unwrap();
    assert_eq!(req.path_and_query, "/open/seller/order/refund/approve");
    let p = form(&req);
    assert_eq!(param(&p, "method"), "open.seller.order.refund.approve");
    assert_eq!(param(&p, "sign"), api_sign(&p, "s3cret"));
    // refundId, refundAmount (fen), status (the refund's current status).
    assert_eq!(
        biz(&req),
        json!({"refundId": 2_100_000_000_000_001u64, "refundAmount": 890, "status": 10})
    );
    // A return application (11): the return approval, to the default return address.
    let mut ret = applied();
    ret.raw_status = "11".into();
    let req = a
        .refund_decision_request(&ret, &RefundDecision::Agree, &creds(), at())
        .unwrap();
    assert_eq!(
        param(&form(&req), "method"),
        "open.seller.order.refund.returngoods.approve"
    );
    assert_eq!(
        biz(&req),
        json!({"refundId": 2_100_000_000_000_001u64, "refundAmount": 890})
    );
    let rule = |r: &ChannelRefund, d: &RefundDecision| {
        a.refund_decision_request(r, d, &creds(), at())
            .unwrap_err()
            .rule
    };
    // No call: a refusal (open.refund.reject's reasonCode), a refund past the application.
    let refuse = RefundDecision::Refuse {
        reason: "已发货".into(),
    };
    assert_eq!(rule(&applied(), &refuse), "not_supported");
    let mut executing = applied();
    executing.raw_status = "50".into();
    assert_eq!(rule(&executing, &RefundDecision::Agree), "not_supported");
    let mut no_fee = applied();
    no_fee.phase = None;
    assert_eq!(rule(&no_fee, &RefundDecision::Agree), "missing_field");
    // The answers: result 1; any other result is the channel's error.
    a.parse_refund_decision_ack(br#"{"result":1,"code":"1","msg":"success"}"#)
        .unwrap();
    let refused =
        r#"{"result":12,"error_msg":"退款单状态已变更","code":"12","msg":"退款单状态已变更"}"#;
    assert!(matches!(
        a.parse_refund_decision_ack(refused.as_bytes()),
        Err(ApiError::Api { .. })
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"code":"1"}"#),
        Err(ApiError::Rejected(_))
    ));
}

#[tokio::test]
async fn the_kuaishou_simulator_serves_refunds_and_records_agreements() {
    let (url, handle) = sim::spawn(ChannelKind::Kuaishou, SimSettings::new(creds(), 5, 1))
        .await
        .unwrap();
    let a = adapter(ChannelKind::Kuaishou).unwrap();
    let http = HttpClient::new();
    let send = |req: ApiRequest| {
        let (http, url) = (http.clone(), url.clone());
        async move { http.send(&url, &req).await.unwrap().1 }
    };
    let o = handle.orders().into_iter().next().unwrap();
    let line = o.lines[0].external_line_id.clone();
    let id = handle.open_refund(&o.external_order_id, &line).unwrap();
    let detail = a
        .parse_detail(&send(a.detail_request(&o.external_order_id, &creds(), at())).await)
        .unwrap();
    assert_eq!(
        (detail.lines[0].refund, detail.lines[0].refund_id.as_deref()),
        (RefundState::Requested, Some(id.as_str()))
    );
    let r = a
        .parse_refund(&send(a.refund_get_request(&id, &creds(), at()).unwrap()).await)
        .unwrap();
    assert_eq!(
        (r.state, r.raw_status.as_str(), r.external_order_id.as_str()),
        (RefundState::Requested, "10", o.external_order_id.as_str())
    );
    // Another signature; an amount not the refund's: refused.
    let mut bad = creds();
    bad.secret = "other".into();
    let answer = send(
        a.refund_decision_request(&r, &RefundDecision::Agree, &bad, at())
            .unwrap(),
    )
    .await;
    assert!(matches!(
        a.parse_refund_decision_ack(&answer),
        Err(ApiError::Auth { .. })
    ));
    let mut wrong = r.clone();
    wrong.phase = Some("1".into());
    let answer = send(
        a.refund_decision_request(&wrong, &RefundDecision::Agree, &creds(), at())
            .unwrap(),
    )
    .await;
    assert!(matches!(
        a.parse_refund_decision_ack(&answer),
        Err(ApiError::Api { .. })
    ));
    assert!(handle.refund_decisions().is_empty());
    for _ in 0..2 {
        let answer = send(
            a.refund_decision_request(&r, &RefundDecision::Agree, &creds(), at())
                .unwrap(),
        )
        .await;
        a.parse_refund_decision_ack(&answer).unwrap();
    }
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].refund_id.as_str(), &d[0].decision),
        (id.as_str(), &RefundDecision::Agree)
    );
}

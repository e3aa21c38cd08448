//! Kuaishou refund decisions (issue 21), from the API declarations generated from Kuaishou's docs
//! (crywolfx/kuaishou-merchant-open-api `packages/common/Interface/api.declaration.ts`:
//! `open.seller.order.refund.detail` → `MerchantRefundDetailDataView`,
//! `open.seller.order.refund.approve`, `open.seller.order.refund.returngoods.approve`,
//! `open.refund.reject`, `open.refund.reject.reason` → `MerchantRefundRejectReasonView`): request
//! parameters in `param`, signed as the adapter's other calls; the
//! answers in the declared field names; then the simulator.

use super::{creds, order};
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::kuaishou::api_sign;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{
    ApiError, ApiRequest, ChannelKind, ChannelRefund, RefundDecision, RefundState, RefusalReason,
    adapter,
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
fn kuaishou_agrees_with_refund_approve_or_returngoods_approve() {
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
    // A refusal without a reasonCode: refused before any call; no call for a refund past the
    // application.
    let refuse = RefundDecision::Refuse {
        reason: "已发货".into(),
    };
    assert_eq!(rule(&applied(), &refuse), "missing_field");
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

fn reason(code: &str, text: &str, needs_evidence: bool) -> RefusalReason {
    RefusalReason {
        code: code.into(),
        text: text.into(),
        needs_evidence,
    }
}

#[test]
fn kuaishou_reads_the_reject_reasons_and_refuses_with_open_refund_reject() {
    let a = adapter(ChannelKind::Kuaishou).unwrap();
    let req = a
        .refusal_reasons_request(&applied(), &creds(), at())
        .unwrap();
    assert_eq!(req.path_and_query, "/open/refund/reject/reason");
    let p = form(&req);
    assert_eq!(param(&p, "method"), "open.refund.reject.reason");
    assert_eq!(param(&p, "sign"), api_sign(&p, "s3cret"));
    assert_eq!(biz(&req), json!({"refundId": 2_100_000_000_000_001u64}));
    // The answer: data[] of MerchantRefundRejectReasonView; pictures required = evidence.
    let body = json!({"result": 1, "code": "1", "msg": "success", "data": [
        {"code": 11, "desc": "买家已签收", "tip": "请上传签收凭证", "requiredRejectDesc": false, "requiredRejectImage": true},
        {"code": "12", "desc": "其他", "requiredRejectDesc": true, "requiredRejectImage": false},
        {"code": 13, "desc": "已协商一致"},
    ]});
    let list = a
        .parse_refusal_reasons(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        list,
        vec![
            reason("11", "买家已签收", true),
            reason("12", "其他", false),
            reason("13", "已协商一致", false),
        ]
    );
    assert!(
        a.parse_refusal_reasons(br#"{"result":1,"data":null}"#)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        a.parse_refusal_reasons(br#"{"result":1,"data":[{"desc":"x"}]}"#),
        Err(ApiError::Rejected(_))
    ));
    assert!(matches!(
        a.parse_refusal_reasons(
            r#"{"result":12,"error_msg":"退款单不存在","code":"12","msg":"退款单不存在"}"#
                .as_bytes()
        ),
        Err(ApiError::Api { .. })
    ));
    // The refusal: refundId, reasonCode, rejectDesc (the seller's reason), refundVersion.
    let code = reason("12", "其他", false);
    let req = a
        .refusal_request(&applied(), " 已发货 ", Some(&code), &creds(), at())
        .unwrap();
    assert_eq!(req.path_and_query, "/open/refund/reject");
    let p = form(&req);
    assert_eq!(param(&p, "method"), "open.refund.reject");
    assert_eq!(param(&p, "sign"), api_sign(&p, "s3cret"));
    assert_eq!(
        biz(&req),
        json!({"refundId": 2_100_000_000_000_001u64, "reasonCode": 12,
            "rejectDesc": "已发货", "refundVersion": 1_731_300_000_000i64})
    );
    // An empty reason: the code's text; a return application (11) likewise refused.
    let mut ret = applied();
    ret.raw_status = "11".into();
    let req = a
        .refusal_request(&ret, "", Some(&code), &creds(), at())
        .unwrap();
    assert_eq!(biz(&req)["rejectDesc"], "其他");
    // Without the version: refused before any call; past the application: no call.
    let mut unversioned = applied();
    unversioned.version = None;
    let e = a
        .refusal_request(&unversioned, "x", Some(&code), &creds(), at())
        .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("missing_field", Some("refundVersion"))
    );
    let mut executing = applied();
    executing.raw_status = "50".into();
    assert_eq!(
        a.refusal_reasons_request(&executing, &creds(), at())
            .unwrap_err()
            .rule,
        "not_supported"
    );
}

#[tokio::test]
async fn the_kuaishou_simulator_serves_reject_reasons_and_checks_the_code() {
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
    let id = handle
        .open_refund(&o.external_order_id, &o.lines[0].external_line_id)
        .unwrap();
    let r = a
        .parse_refund(&send(a.refund_get_request(&id, &creds(), at()).unwrap()).await)
        .unwrap();
    let list = a
        .parse_refusal_reasons(&send(a.refusal_reasons_request(&r, &creds(), at()).unwrap()).await)
        .unwrap();
    assert!(list.iter().any(|r| r.needs_evidence));
    let chosen = orderhub_channels::choose_refusal_reason(&list)
        .unwrap()
        .clone();
    assert_eq!(chosen.text, "其他");
    // A code needing pictures, a code not offered, a stale version: refused, nothing recorded.
    let pictures = list.iter().find(|r| r.needs_evidence).unwrap().clone();
    let mut stale = r.clone();
    stale.version = Some(r.version.unwrap() - 1);
    for (refund, code) in [
        (&r, pictures),
        (&r, reason("999", "x", false)),
        (&stale, chosen.clone()),
    ] {
        let req = a
            .refusal_request(refund, "已发货", Some(&code), &creds(), at())
            .unwrap();
        assert!(a.parse_refund_decision_ack(&send(req).await).is_err());
    }
    assert!(handle.refund_decisions().is_empty());
    let req = a
        .refusal_request(&r, "已发货", Some(&chosen), &creds(), at())
        .unwrap();
    a.parse_refund_decision_ack(&send(req).await).unwrap();
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (&d[0].decision, d[0].reason_code.as_deref()),
        (
            &RefundDecision::Refuse {
                reason: "已发货".into()
            },
            Some(chosen.code.as_str())
        )
    );
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

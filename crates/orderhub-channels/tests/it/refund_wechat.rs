//! WeChat Channels refund decisions (issue 21): the order detail's after-sale ids, the after-sale
//! read (`getaftersaleorder`), `acceptapply` / `rejectapply` as WeChat's doc pages for those calls
//! give them (SOURCES.md, "Refund decisions"); the samples are the fudiwei SDK's fixtures.

use super::{creds, fixture};
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::wechat::refund as wr;
use orderhub_channels::{
    ApiError, ApiRequest, ChannelKind, ChannelRefund, RefundDecision, RefundState, RefusalReason,
    adapter,
};
use serde_json::{Value, json};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn body(req: &ApiRequest) -> Value {
    serde_json::from_slice(&req.body).unwrap()
}

fn waiting(kind: &str, status: &str) -> ChannelRefund {
    ChannelRefund {
        refund_id: "1768715750567651".into(),
        external_order_id: "3705115058471208928".into(),
        external_line_id: Some("3286:4740".into()),
        state: RefundState::Requested,
        raw_status: status.into(),
        phase: Some(kind.into()),
        version: None,
    }
}

#[test]
fn wechat_lists_an_orders_after_sales_from_its_detail() {
    let a = adapter(ChannelKind::Wechat).unwrap();
    let req = a
        .order_refunds_request("37423523451235145", &creds(), at())
        .unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path_and_query,
        "/channels/ec/order/get?access_token=tok-1"
    );
    assert_eq!(body(&req), json!({"order_id": "37423523451235145"}));
    // The SDK's order/get sample: one after-sale, no line named.
    let listed = a
        .parse_order_refunds(&fixture("wechat/ec-order-get-response.json"))
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].refund_id, "1234");
    assert_eq!(listed[0].external_order_id, "37423523451235145");
    assert_eq!(listed[0].external_line_id, None);
    assert_eq!(listed[0].raw_status, "13");
    // An order without after-sales has none; a list that is not a list is refused.
    let none = br#"{"errcode":0,"order":{"order_id":"1","status":20,"order_detail":{}}}"#;
    assert!(a.parse_order_refunds(none).unwrap().is_empty());
    let bad =
        br#"{"errcode":0,"order":{"order_id":"1","aftersale_detail":{"aftersale_order_list":{}}}}"#;
    assert!(matches!(
        a.parse_order_refunds(bad),
        Err(ApiError::Rejected(r)) if r.rule == "bad_value"
    ));
    assert!(matches!(
        a.parse_order_refunds(br#"{"errcode":42001,"errmsg":"access_token expired"}"#),
        Err(ApiError::Auth { .. })
    ));
}

#[test]
fn wechat_reads_an_after_sale_with_getaftersaleorder() {
    let a = adapter(ChannelKind::Wechat).unwrap();
    let req = a.refund_get_request("123456", &creds(), at()).unwrap();
    assert_eq!(
        req.path_and_query,
        "/channels/ec/aftersale/getaftersaleorder?access_token=tok-1"
    );
    assert_eq!(req.content_type, "application/json");
    assert_eq!(body(&req), json!({"after_sale_order_id": "123456"}));
    assert_eq!(
        a.refund_get_request("12ab", &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // The SDK's getaftersaleorder sample: its product_info names the line (product:sku).
    let r = a
        .parse_refund(&fixture(
            "wechat/ec-aftersale-get-aftersale-order-response.json",
        ))
        .unwrap();
    assert_eq!(
        r,
        ChannelRefund {
            refund_id: "123456".into(),
            external_order_id: "1768683047558651".into(),
            external_line_id: Some("3286:4740".into()),
            state: RefundState::Refunded,
            raw_status: "MERCHANT_REFUND_SUCCESS".into(),
            phase: Some("REFUND".into()),
            version: None,
        }
    );
    let v = |status: &str| {
        format!(
            r#"{{"errcode":0,"after_sale_order":{{"after_sale_order_id":"1","order_id":"2","status":"{status}","type":"RETURN"}}}}"#
        )
    };
    for (status, state) in [
        ("MERCHANT_PROCESSING", RefundState::Requested),
        ("MERCHANT_WAIT_RECEIPT", RefundState::Requested),
        ("USER_WAIT_RETURN", RefundState::Refunded),
        ("MERCHANT_REJECT_RETURN", RefundState::Rejected),
        ("USER_CANCELD", RefundState::Rejected),
    ] {
        let r = a.parse_refund(v(status).as_bytes()).unwrap();
        assert_eq!((r.state, r.external_line_id), (state, None), "{status}");
    }
    assert!(matches!(
        a.parse_refund(v("SOMETHING_NEW").as_bytes()),
        Err(ApiError::Rejected(r)) if r.rule == "unknown_status"
    ));
    assert!(matches!(
        a.parse_refund(br#"{"errcode":10020000,"errmsg":"aftersale order not exist"}"#),
        Err(ApiError::Api { code, .. }) if code == "10020000"
    ));
    assert!(matches!(
        a.parse_refund(br#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#),
        Err(ApiError::Throttled { .. })
    ));
}

#[test]
fn wechat_agrees_with_acceptapply_and_refuses_with_rejectapply() {
    let a = adapter(ChannelKind::Wechat).unwrap();
    let agree =
        |r: &ChannelRefund| a.refund_decision_request(r, &RefundDecision::Agree, &creds(), at());
    // A refund-only after-sale: the id alone (the doc: accept_type is for returns).
    let req = agree(&waiting("REFUND", "MERCHANT_PROCESSING")).unwrap();
    assert_eq!(
        req.path_and_query,
        "/channels/ec/aftersale/acceptapply?access_token=tok-1"
    );
    assert_eq!(
        body(&req),
        json!({"after_sale_order_id": "1768715750567651"})
    );
    // A return waiting for the seller's first answer needs the return address id: not sent.
    let e = agree(&waiting("RETURN", "MERCHANT_PROCESSING")).unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("missing_field", Some("address_id"))
    );
    // The returned goods arrived: confirm receipt and refund (accept_type 2).
    let req = agree(&waiting("RETURN", "MERCHANT_WAIT_RECEIPT")).unwrap();
    assert_eq!(
        body(&req),
        json!({"after_sale_order_id": "1768715750567651", "accept_type": 2})
    );
    // Refused: rejectapply with the reason and the reason type (required: one of the shop's
    // reasons from rejectreason/get; without one, refused before any call).
    let e = a
        .refund_decision_request(
            &waiting("REFUND", "MERCHANT_PROCESSING"),
            &RefundDecision::Refuse { reason: "x".into() },
            &creds(),
            at(),
        )
        .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("missing_field", Some("reject_reason_type"))
    );
    let code = RefusalReason {
        code: "1".into(),
        text: "其他".into(),
        needs_evidence: false,
    };
    let refuse = |reason: &str| {
        a.refusal_request(
            &waiting("REFUND", "MERCHANT_PROCESSING"),
            reason,
            Some(&code),
            &creds(),
            at(),
        )
        .unwrap()
    };
    let req = refuse(" 商品已发出 ");
    assert_eq!(
        req.path_and_query,
        "/channels/ec/aftersale/rejectapply?access_token=tok-1"
    );
    assert_eq!(
        body(&req),
        json!({"after_sale_order_id": "1768715750567651", "reject_reason": "商品已发出", "reject_reason_type": 1})
    );
    let long = body(&refuse(&"很".repeat(300)));
    assert_eq!(long["reject_reason"].as_str().unwrap().chars().count(), 200);
    assert_eq!(
        body(&refuse("  ")),
        json!({"after_sale_order_id": "1768715750567651", "reject_reason_type": 1})
    );
    let mut bad = waiting("REFUND", "MERCHANT_PROCESSING");
    bad.refund_id = "x1".into();
    assert_eq!(agree(&bad).unwrap_err().rule, "bad_value");
    // The answers: errcode 0; WeChat's errors (the doc's 10021041 "not allowed in this state").
    a.parse_refund_decision_ack(br#"{"errcode":0,"errmsg":"ok"}"#)
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"errcode":10021041,"errmsg":"not supported"}"#),
        Err(ApiError::Api { code, .. }) if code == "10021041"
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"errmsg":"ok"}"#),
        Err(ApiError::Rejected(_))
    ));
}

#[test]
fn wechat_reads_the_shops_reject_reasons() {
    let a = adapter(ChannelKind::Wechat).unwrap();
    let req = a
        .refusal_reasons_request(&waiting("REFUND", "MERCHANT_PROCESSING"), &creds(), at())
        .unwrap();
    assert_eq!(
        req.path_and_query,
        "/channels/ec/aftersale/rejectreason/get?access_token=tok-1"
    );
    assert_eq!(
        wr::REJECT_REASONS_PATH,
        "/channels/ec/aftersale/rejectreason/get"
    );
    assert_eq!(body(&req), json!({}));
    // WxJava's AfterSaleRejectReasonResponse (`reject_reason_list`) and the fudiwei SDK's
    // (`reason_list`): the same entries.
    let entries = json!([
        {"reject_reason_type": 1, "reject_reason_type_text": "已发货", "reject_reason": "商品已发货", "reject_scene": 1},
        {"reject_reason_type": "9", "reject_reason": "其他"},
    ]);
    let want = vec![
        RefusalReason {
            code: "1".into(),
            text: "已发货".into(),
            needs_evidence: false,
        },
        RefusalReason {
            code: "9".into(),
            text: "其他".into(),
            needs_evidence: false,
        },
    ];
    for key in ["reject_reason_list", "reason_list"] {
        let b = json!({"errcode": 0, "errmsg": "ok", key: entries});
        assert_eq!(
            a.parse_refusal_reasons(b.to_string().as_bytes()).unwrap(),
            want
        );
    }
    assert!(matches!(
        a.parse_refusal_reasons(br#"{"errcode":0,"reject_reason_list":[{"reject_reason":"x"}]}"#),
        Err(ApiError::Rejected(_))
    ));
    assert!(matches!(
        a.parse_refusal_reasons(br#"{"errcode":40001,"errmsg":"invalid credential"}"#),
        Err(ApiError::Auth { .. })
    ));
}

async fn send(http: &HttpClient, url: &str, req: &ApiRequest) -> Vec<u8> {
    http.send(url, req).await.unwrap().1.to_vec()
}

#[tokio::test]
async fn the_wechat_simulator_serves_after_sales_checks_calls_and_records_decisions() {
    let (url, handle) = sim::spawn(ChannelKind::Wechat, SimSettings::new(creds(), 5, 1))
        .await
        .unwrap();
    let a = adapter(ChannelKind::Wechat).unwrap();
    let http = HttpClient::new();
    let orders = handle.orders();
    let o = &orders[0];
    let line = o.lines[0].external_line_id.clone();
    let id = handle.open_refund(&o.external_order_id, &line).unwrap();
    // The detail shows the line in after-sale and lists the after-sale's id.
    let detail_req = a.detail_request(&o.external_order_id, &creds(), at());
    let detail_body = send(&http, &url, &detail_req).await;
    let detail = a.parse_detail(&detail_body).unwrap();
    assert_eq!(detail.lines[0].external_line_id, line);
    assert_eq!(detail.lines[0].refund, RefundState::Requested);
    let listed = a.parse_order_refunds(&detail_body).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| r.refund_id.as_str())
            .collect::<Vec<_>>(),
        [id.as_str()]
    );
    let body = send(
        &http,
        &url,
        &a.refund_get_request(&id, &creds(), at()).unwrap(),
    )
    .await;
    let r = a.parse_refund(&body).unwrap();
    assert_eq!(
        (r.state, r.external_line_id.as_deref(), r.phase.as_deref()),
        (RefundState::Requested, Some(line.as_str()), Some("REFUND"))
    );
    // A wrong access token, an unknown after-sale, a refusal without its reason type: refused.
    let mut bad = creds();
    bad.access_token = "other".into();
    let req = a
        .refund_decision_request(&r, &RefundDecision::Agree, &bad, at())
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&send(&http, &url, &req).await),
        Err(ApiError::Auth { .. })
    ));
    let mut unknown = r.clone();
    unknown.refund_id = "99".into();
    let req = a
        .refund_decision_request(&unknown, &RefundDecision::Agree, &creds(), at())
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&send(&http, &url, &req).await),
        Err(ApiError::Api { .. })
    ));
    let refuse = RefundDecision::Refuse {
        reason: "已发货".into(),
    };
    // The shop's reasons; a reason type it does not offer (or none) is refused.
    let req = a.refusal_reasons_request(&r, &creds(), at()).unwrap();
    let list = a
        .parse_refusal_reasons(&send(&http, &url, &req).await)
        .unwrap();
    let chosen = orderhub_channels::choose_refusal_reason(&list)
        .unwrap()
        .clone();
    assert_eq!(chosen.text, "其他");
    let mut req = a
        .refusal_request(&r, "已发货", Some(&chosen), &creds(), at())
        .unwrap();
    for b in [
        json!({"after_sale_order_id": id, "reject_reason": "x"}),
        json!({"after_sale_order_id": id, "reject_reason_type": 999}),
    ] {
        req.body = serde_json::to_vec(&b).unwrap();
        assert!(matches!(
            a.parse_refund_decision_ack(&send(&http, &url, &req).await),
            Err(ApiError::Api { .. })
        ));
    }
    assert!(handle.refund_decisions().is_empty());
    // Agreed twice: acknowledged twice, recorded once.
    for _ in 0..2 {
        let req = a
            .refund_decision_request(&r, &RefundDecision::Agree, &creds(), at())
            .unwrap();
        a.parse_refund_decision_ack(&send(&http, &url, &req).await)
            .unwrap();
    }
    // Another order's refund refused: recorded with the reason; the read shows the refusal.
    let o2 = &orders[1];
    let line2 = o2.lines[0].external_line_id.clone();
    let id2 = handle.open_refund(&o2.external_order_id, &line2).unwrap();
    let body = send(
        &http,
        &url,
        &a.refund_get_request(&id2, &creds(), at()).unwrap(),
    )
    .await;
    let r2 = a.parse_refund(&body).unwrap();
    let req = a
        .refusal_request(&r2, "已发货", Some(&chosen), &creds(), at())
        .unwrap();
    a.parse_refund_decision_ack(&send(&http, &url, &req).await)
        .unwrap();
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(
        (d[0].refund_id.as_str(), &d[0].decision),
        (id.as_str(), &RefundDecision::Agree)
    );
    assert_eq!(
        (d[1].refund_id.as_str(), &d[1].decision),
        (id2.as_str(), &refuse)
    );
    assert_eq!(d[1].reason_code.as_deref(), Some(chosen.code.as_str()));
    let body = send(
        &http,
        &url,
        &a.refund_get_request(&id2, &creds(), at()).unwrap(),
    )
    .await;
    let r2 = a.parse_refund(&body).unwrap();
    assert_eq!(
        (r2.state, r2.raw_status.as_str()),
        (RefundState::Rejected, "MERCHANT_REJECT_REFUND")
    );
}

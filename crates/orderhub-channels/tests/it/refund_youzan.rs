//! Youzan refund decisions (issue 21), from Youzan's own API docs as mirrored in nest-mods/youzan
//! (`docs/trade/youzan.trade.get.json`, `docs/trade_advanced/youzan.trade.refund.get.json`,
//! `docs/seller_refund/youzan.trade.refund.{agree,refuse}.json`,
//! `youzan.trade.returngoods.refuse.json`): request parameters, the `responseDemo` /
//! `errorResponseDemo` answers and the listed error codes; then the simulator.

use super::{creds, order};
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{
    ApiError, ApiRequest, ChannelKind, ChannelRefund, RefundDecision, RefundState, adapter,
};
use serde_json::{Value, json};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn body(req: &ApiRequest) -> Value {
    serde_json::from_slice(&req.body).unwrap()
}

/// A refund waiting for the seller, as the read answers it (the agree doc's request demo values).
fn waiting() -> ChannelRefund {
    ChannelRefund {
        refund_id: "201806201524210000010610".into(),
        external_order_id: "E20180620152357069300003".into(),
        external_line_id: Some("1457682800074819540".into()),
        state: RefundState::Requested,
        raw_status: "WAIT_SELLER_AGREE".into(),
        phase: Some("refund".into()),
        version: Some(1_529_479_461_152),
    }
}

#[test]
fn youzan_detail_names_each_lines_refund_from_refund_order() {
    // trade.get 4.0.0: `refund_order[]{refund_id, refund_state, oids[{oid}]}`.
    let o = order(ChannelKind::Youzan, "youzan/doc-refund-order-oids.json");
    let ids: Vec<_> = o
        .lines
        .iter()
        .map(|l| (l.external_line_id.as_str(), l.refund_id.as_deref()))
        .collect();
    assert_eq!(
        ids,
        [
            ("1479000000000000021", None),
            ("1479000000000000022", Some("201903081200000001")),
        ]
    );
}

#[test]
fn youzan_reads_a_refund_with_refund_get_3_0_0() {
    let a = adapter(ChannelKind::Youzan).unwrap();
    let req = a
        .refund_get_request("201807041506110000020693", &creds(), at())
        .unwrap();
    // The same request shape as the adapter's other calls: POST JSON, the token in the query.
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path_and_query,
        "/api/youzan.trade.refund.get/3.0.0?access_token=tok-1"
    );
    assert_eq!(body(&req), json!({"refund_id": "201807041506110000020693"}));
    assert_eq!(
        a.refund_get_request("W1 2", &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // The doc's responseDemo, as written there.
    let demo = br#"{"response":{"reason":51,"refund_type":"BUYER_APPLY_REFUND","item_id":18080319,"created":"2018-07-04 15:06:11","oid":"1457682800074819540","version":1530687971462,"refund_id":"201807041506110000020693","tid":"E20180701125857069300003","kdt_id":41042176,"return_goods":false,"refund_fee":"2.00","modified":"2018-07-04 15:07:09","cs_status":1,"desc":"","status":"SUCCESS"}}"#;
    assert_eq!(
        a.parse_refund(demo).unwrap(),
        ChannelRefund {
            refund_id: "201807041506110000020693".into(),
            external_order_id: "E20180701125857069300003".into(),
            external_line_id: Some("1457682800074819540".into()),
            state: RefundState::Refunded,
            raw_status: "SUCCESS".into(),
            phase: Some("refund".into()),
            version: Some(1_530_687_971_462),
        }
    );
    // The gateway's envelope; every status of the doc maps.
    for (status, state) in [
        ("WAIT_SELLER_AGREE", RefundState::Requested),
        ("WAIT_BUYER_RETURN_GOODS", RefundState::Requested),
        ("WAIT_SELLER_CONFIRM_GOODS", RefundState::Requested),
        ("SELLER_REFUSE_BUYER", RefundState::Rejected),
        ("SELLER_REFUSE_BUYER_RETURN_GOODS", RefundState::Rejected),
        ("CLOSED", RefundState::Rejected),
        ("SUCCESS", RefundState::Refunded),
    ] {
        let b = json!({"success": true, "code": 200, "message": "successful", "data": {
            "refund_id": "201807041506110000020693", "tid": "E20180701125857069300003",
            "oid": "1457682800074819540", "status": status, "version": "1530687971462",
            "return_goods": true,
        }});
        let r = a.parse_refund(b.to_string().as_bytes()).unwrap();
        assert_eq!((r.state, r.phase.as_deref()), (state, Some("return_goods")));
        assert_eq!(r.version, Some(1_530_687_971_462), "a numeric string too");
    }
    let unknown = br#"{"response":{"refund_id":"1","tid":"E1","status":"NEW_THING"}}"#;
    assert!(
        matches!(a.parse_refund(unknown), Err(ApiError::Rejected(r)) if r.rule == "unknown_status")
    );
    // The doc's errorResponseDemo and error code 103011024 退款记录不存在.
    let err = r#"{"error_response":{"code":103011024,"message":"退款记录不存在"}}"#;
    assert!(matches!(
        a.parse_refund(err.as_bytes()),
        Err(ApiError::Api { code, .. }) if code == "103011024"
    ));
    let gw = r#"{"gw_err_resp":{"err_code":4203,"err_msg":"请求凭证不存在"}}"#;
    assert!(matches!(
        a.parse_refund(gw.as_bytes()),
        Err(ApiError::Auth { .. })
    ));
}

#[test]
fn youzan_agrees_with_refund_agree_and_refuses_with_refund_refuse() {
    let a = adapter(ChannelKind::Youzan).unwrap();
    let req = a
        .refund_decision_request(&waiting(), &RefundDecision::Agree, &creds(), at())
        .unwrap();
    assert_eq!(
        req.path_and_query,
        "/api/youzan.trade.refund.agree/3.0.0?access_token=tok-1"
    );
    // The agree doc: refund_id (String) and version (Number), both required.
    assert_eq!(
        body(&req),
        json!({"refund_id": "201806201524210000010610", "version": 1_529_479_461_152i64})
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
    assert_eq!(
        req.path_and_query,
        "/api/youzan.trade.refund.refuse/3.0.0?access_token=tok-1"
    );
    let b = body(&req);
    assert_eq!(b["refund_id"], "201806201524210000010610");
    assert_eq!(b["version"], 1_529_479_461_152i64);
    assert_eq!(b["remark"].as_str().unwrap().chars().count(), 200);
    // Returned goods waiting for the seller: refused with returngoods.refuse (卖家未收到货).
    let mut returned = waiting();
    returned.raw_status = "WAIT_SELLER_CONFIRM_GOODS".into();
    returned.phase = Some("return_goods".into());
    let req = a
        .refund_decision_request(
            &returned,
            &RefundDecision::Refuse {
                reason: "未收到货".into(),
            },
            &creds(),
            at(),
        )
        .unwrap();
    assert_eq!(
        req.path_and_query,
        "/api/youzan.trade.returngoods.refuse/3.0.0?access_token=tok-1"
    );
    assert_eq!(body(&req)["remark"], "未收到货");
    // Refused before any call: no version, an empty remark, agreeing to a return (the return
    // address orderhub lacks), a return already agreed to.
    let mut r = waiting();
    r.version = None;
    let rule = |r: &ChannelRefund, d: &RefundDecision| {
        a.refund_decision_request(r, d, &creds(), at())
            .unwrap_err()
            .rule
    };
    assert_eq!(rule(&r, &RefundDecision::Agree), "missing_field");
    let blank = RefundDecision::Refuse {
        reason: "  ".into(),
    };
    assert_eq!(rule(&waiting(), &blank), "bad_value");
    let mut ret = waiting();
    ret.phase = Some("return_goods".into());
    assert_eq!(rule(&ret, &RefundDecision::Agree), "not_supported");
    ret.raw_status = "WAIT_BUYER_RETURN_GOODS".into();
    assert_eq!(rule(&ret, &RefundDecision::Agree), "not_supported");
}

#[test]
fn youzan_reads_decision_answers_and_their_errors() {
    let a = adapter(ChannelKind::Youzan).unwrap();
    // The docs' responseDemo, and the gateway's envelope of the same.
    a.parse_refund_decision_ack(br#"{"response":{"is_success":true}}"#)
        .unwrap();
    a.parse_refund_decision_ack(
        br#"{"success":true,"code":200,"message":"successful","data":{"is_success":true}}"#,
    )
    .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"response":{"is_success":false}}"#),
        Err(ApiError::Api { .. })
    ));
    // errorResponseDemo (103010039 退款版本号错误) in both shapes; 102010003 退款操作请求太快了.
    for e in [
        r#"{"error_response":{"code":103010039,"message":"退款版本号错误！"}}"#,
        r#"{"success":false,"code":103010039,"message":"退款版本号错误！"}"#,
    ] {
        assert!(matches!(
            a.parse_refund_decision_ack(e.as_bytes()),
            Err(ApiError::Api { code, .. }) if code == "103010039"
        ));
    }
    let fast = r#"{"error_response":{"code":102010003,"message":"退款操作请求太快了，请慢点～"}}"#;
    assert!(matches!(
        a.parse_refund_decision_ack(fast.as_bytes()),
        Err(ApiError::Throttled { .. })
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"something":{}}"#),
        Err(ApiError::Rejected(_))
    ));
}

#[tokio::test]
async fn the_youzan_simulator_serves_refunds_and_records_decisions() {
    let (url, handle) = sim::spawn(ChannelKind::Youzan, SimSettings::new(creds(), 5, 1))
        .await
        .unwrap();
    let a = adapter(ChannelKind::Youzan).unwrap();
    let http = HttpClient::new();
    let send = |req: ApiRequest| {
        let (http, url) = (http.clone(), url.clone());
        async move { http.send(&url, &req).await.unwrap().1 }
    };
    let orders = handle.orders();
    let (o, other) = (&orders[0], &orders[1]);
    let line = o.lines[0].external_line_id.clone();
    let id = handle.open_refund(&o.external_order_id, &line).unwrap();
    // The order's detail shows the refund on the line, with its id.
    let detail = a
        .parse_detail(&send(a.detail_request(&o.external_order_id, &creds(), at())).await)
        .unwrap();
    assert_eq!(detail.lines[0].refund, RefundState::Requested);
    assert_eq!(detail.lines[0].refund_id.as_deref(), Some(id.as_str()));
    let r = a
        .parse_refund(&send(a.refund_get_request(&id, &creds(), at()).unwrap()).await)
        .unwrap();
    assert_eq!(
        (
            r.state,
            r.external_line_id.as_deref(),
            r.raw_status.as_str()
        ),
        (
            RefundState::Requested,
            Some(line.as_str()),
            "WAIT_SELLER_AGREE"
        )
    );
    assert!(r.version.is_some());
    // Another token is refused like any call.
    let mut bad = creds();
    bad.access_token = "other".into();
    let answer = send(
        a.refund_decision_request(&r, &RefundDecision::Agree, &bad, at())
            .unwrap(),
    )
    .await;
    assert!(matches!(
        a.parse_refund_decision_ack(&answer),
        Err(ApiError::Auth { .. })
    ));
    // An unknown refund, a version not the refund's: the channel's errors.
    for edit in [
        (|r: &mut ChannelRefund| r.refund_id = "99".into()) as fn(&mut ChannelRefund),
        |r| r.version = Some(1),
    ] {
        let mut x = r.clone();
        edit(&mut x);
        let answer = send(
            a.refund_decision_request(&x, &RefundDecision::Agree, &creds(), at())
                .unwrap(),
        )
        .await;
        assert!(matches!(
            a.parse_refund_decision_ack(&answer),
            Err(ApiError::Api { .. })
        ));
    }
    assert!(handle.refund_decisions().is_empty());
    // Agreed twice: acknowledged twice, recorded once.
    for _ in 0..2 {
        let answer = send(
            a.refund_decision_request(&r, &RefundDecision::Agree, &creds(), at())
                .unwrap(),
        )
        .await;
        a.parse_refund_decision_ack(&answer).unwrap();
    }
    // A refusal with the seller's remark: the detail then shows the refund refused (10).
    let line2 = other.lines[0].external_line_id.clone();
    let id2 = handle
        .open_refund(&other.external_order_id, &line2)
        .unwrap();
    let r2 = a
        .parse_refund(&send(a.refund_get_request(&id2, &creds(), at()).unwrap()).await)
        .unwrap();
    let refuse = RefundDecision::Refuse {
        reason: "商品已发出".into(),
    };
    let answer = send(
        a.refund_decision_request(&r2, &refuse, &creds(), at())
            .unwrap(),
    )
    .await;
    a.parse_refund_decision_ack(&answer).unwrap();
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
    let detail = a
        .parse_detail(&send(a.detail_request(&other.external_order_id, &creds(), at())).await)
        .unwrap();
    assert_eq!(
        (
            detail.lines[0].refund,
            detail.lines[0].refund_raw.as_deref()
        ),
        (RefundState::Rejected, Some("10"))
    );
    let r2 = a
        .parse_refund(&send(a.refund_get_request(&id2, &creds(), at()).unwrap()).await)
        .unwrap();
    assert_eq!(r2.raw_status, "SELLER_REFUSE_BUYER");
}

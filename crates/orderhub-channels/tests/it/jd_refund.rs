//! JD POP refund applies (退款审核单, issue 21): listed by order, read by id, reviewed, as the JOS
//! SDK request classes take them (`PopAfsSoaRefundapply{QueryPageList,QueryById,ReplyRefund}Request`)
//! and answered in the SDK's response shapes (`queryResult{success, errorCode, errorMsg,
//! totalCount, result[RefundApplyVo]}`, `replyResult{success, errorCode, errorMsg}`); signed as the
//! adapter's other JOS calls. And the JD simulator serving them.

use super::{creds, order};
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{
    ApiError, ApiRequest, CanonicalStatus, ChannelKind, ChannelRefund, RefundDecision, RefundState,
    adapter,
};
use serde_json::Value;

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// The call's method and business parameters, after checking its JOS signature.
fn call(req: &ApiRequest) -> (String, Value) {
    let p: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let get = |k: &str| {
        p.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(req.path_and_query, "/routerjson");
    assert_eq!(get("access_token"), "tok-1");
    assert_eq!(get("v"), "2.0");
    assert_eq!(get("sign"), orderhub_channels::jd::api_sign(&p, "s3cret"));
    (
        get("method"),
        serde_json::from_str(&get("360buy_param_json")).unwrap(),
    )
}

fn waiting() -> ChannelRefund {
    ChannelRefund {
        refund_id: "1234567".into(),
        external_order_id: "281046817990".into(),
        external_line_id: Some("100012043978".into()),
        state: RefundState::Requested,
        raw_status: "0".into(),
        phase: None,
        version: None,
    }
}

#[test]
fn jd_lists_the_applies_of_an_order_and_reads_one_by_id() {
    let a = adapter(ChannelKind::Jd).unwrap();
    let (method, biz) = call(
        &a.order_refunds_request("281046817990", &creds(), at())
            .unwrap(),
    );
    assert_eq!(method, "jingdong.pop.afs.soa.refundapply.queryPageList");
    assert_eq!(
        biz,
        serde_json::json!({"orderId": "281046817990", "pageIndex": 1, "pageSize": 20})
    );
    assert_eq!(
        a.order_refunds_request("28104x", &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // The list names no SKU; an apply refused once comes after the one waiting.
    let body = r#"{"jingdong_pop_afs_soa_refundapply_queryPageList_responce":{"code":"0","queryResult":{"success":true,"totalCount":2,"result":[
        {"id":1234500,"buyerId":"jd_buyer","buyerName":"王*","checkTime":"2024-11-11 10:05:00","applyTime":"2024-11-11 10:00:00","applyRefundSum":69900,"status":2,"checkUserName":"shop","orderId":"281046817990","checkRemark":"已发货","reason":"不想要了","systemId":1},
        {"id":1234567,"buyerId":"jd_buyer","applyTime":"2024-11-11 11:00:00","applyRefundSum":69900,"status":0,"orderId":"281046817990","reason":"不想要了","systemId":1}]}}}"#.as_bytes();
    let listed = a.parse_order_refunds(body).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| (r.refund_id.as_str(), r.state, r.external_line_id.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("1234567", RefundState::Requested, None),
            ("1234500", RefundState::Rejected, None),
        ]
    );
    let empty = r#"{"jingdong_pop_afs_soa_refundapply_queryPageList_responce":{"code":"0","queryResult":{"success":true,"totalCount":0}}}"#.as_bytes();
    assert!(a.parse_order_refunds(empty).unwrap().is_empty());

    let (method, biz) = call(&a.refund_get_request("1234567", &creds(), at()).unwrap());
    assert_eq!(method, "jingdong.pop.afs.soa.refundapply.queryById");
    assert_eq!(biz, serde_json::json!({"id": 1234567}));
    assert_eq!(
        a.refund_get_request("12ab", &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // queryById's RefundApplyVo names the SKUs (`skuVoList`): JD's line is the SKU.
    let body = r#"{"jingdong_pop_afs_soa_refundapply_queryById_responce":{"code":"0","queryResult":{"success":true,"totalCount":1,"result":[
        {"id":1234567,"applyTime":"2024-11-11 11:00:00","applyRefundSum":69900,"status":0,"orderId":"281046817990","reason":"不想要了","systemId":1,
         "skuVoList":[{"skuId":100012043978,"skuUuid":"u1","skuName":"保温杯","skuCount":1}],"partRefundType":0}]}}}"#.as_bytes();
    assert_eq!(a.parse_refund(body).unwrap(), waiting());
    // An apply of several SKUs (the buyer's cancellation of a whole order before shipment)
    // names no single line: the write-back takes it for each of them.
    let whole = r#"{"jingdong_pop_afs_soa_refundapply_queryById_responce":{"code":"0","queryResult":{"success":true,"totalCount":1,"result":[
        {"id":1234567,"status":0,"orderId":"281046817990",
         "skuVoList":[{"skuId":100012043978,"skuCount":1},{"skuId":100012043979,"skuCount":2}]}]}}}"#.as_bytes();
    assert_eq!(a.parse_refund(whole).unwrap().external_line_id, None);
    let unknown = r#"{"jingdong_pop_afs_soa_refundapply_queryById_responce":{"code":"0","queryResult":{"success":true,"result":[{"id":1,"orderId":"2","status":42}]}}}"#.as_bytes();
    assert!(
        matches!(a.parse_refund(unknown), Err(ApiError::Rejected(r)) if r.rule == "unknown_status")
    );
    let none = r#"{"jingdong_pop_afs_soa_refundapply_queryById_responce":{"code":"0","queryResult":{"success":true,"result":[]}}}"#.as_bytes();
    assert!(matches!(a.parse_refund(none), Err(ApiError::Rejected(_))));
    // The query's own failure, and the router's envelope.
    let failed = r#"{"jingdong_pop_afs_soa_refundapply_queryById_responce":{"code":"0","queryResult":{"success":false,"errorCode":"500","errorMsg":"查询异常"}}}"#.as_bytes();
    assert!(matches!(a.parse_refund(failed), Err(ApiError::Api { code, .. }) if code == "500"));
    let auth = r#"{"error_response":{"code":"19","zh_desc":"token已过期或者不存在，请重新授权访问","en_desc":"Invalid access_token"}}"#.as_bytes();
    assert!(matches!(a.parse_refund(auth), Err(ApiError::Auth { .. })));
    assert!(matches!(
        a.parse_order_refunds(auth),
        Err(ApiError::Auth { .. })
    ));
}

#[test]
fn jd_reviews_an_apply_with_reply_refund() {
    let a = adapter(ChannelKind::Jd).unwrap();
    let (method, biz) = call(
        &a.refund_decision_request(&waiting(), &RefundDecision::Agree, &creds(), at())
            .unwrap(),
    );
    assert_eq!(method, "jingdong.pop.afs.soa.refundapply.replyRefund");
    assert_eq!(
        biz,
        serde_json::json!({"status": 1, "id": 1234567, "checkUserName": "orderhub", "remark": "approved in orderhub"})
    );
    let long = "很".repeat(300);
    let (_, biz) = call(
        &a.refund_decision_request(
            &waiting(),
            &RefundDecision::Refuse { reason: long },
            &creds(),
            at(),
        )
        .unwrap(),
    );
    assert_eq!((&biz["status"], &biz["rejectType"]), (&2.into(), &5.into()));
    assert_eq!(biz["remark"].as_str().unwrap().chars().count(), 200);
    let refuse_blank = RefundDecision::Refuse {
        reason: "  ".into(),
    };
    assert_eq!(
        a.refund_decision_request(&waiting(), &refuse_blank, &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value",
        "remark is required"
    );
    let mut r = waiting();
    r.refund_id = "A1".into();
    assert_eq!(
        a.refund_decision_request(&r, &RefundDecision::Agree, &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // The answers (`ReplyResult{success, errorCode, errorMsg}`).
    a.parse_refund_decision_ack(
        r#"{"jingdong_pop_afs_soa_refundapply_replyRefund_responce":{"code":"0","replyResult":{"success":true}}}"#.as_bytes(),
    )
    .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(r#"{"jingdong_pop_afs_soa_refundapply_replyRefund_responce":{"code":"0","replyResult":{"success":false,"errorCode":"E01","errorMsg":"退款单状态不正确"}}}"#.as_bytes()),
        Err(ApiError::Api { code, .. }) if code == "E01"
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(
            r#"{"error_response":{"code":"74","zh_desc":"接口调用次数超过限制"}}"#.as_bytes()
        ),
        Err(ApiError::Throttled { .. })
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(r#"{"something_else":{}}"#.as_bytes()),
        Err(ApiError::Rejected(_))
    ));
}

#[test]
fn a_locked_jd_order_shows_its_lines_waiting_for_the_seller() {
    let o = order(ChannelKind::Jd, "jd/edge-locked.json");
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, false));
    for l in &o.lines {
        assert_eq!(l.refund, RefundState::Requested);
        assert_eq!(l.refund_raw.as_deref(), Some("LOCKED"));
        assert_eq!(l.refund_id, None, "JD's order names no apply");
    }
    let o = order(ChannelKind::Jd, "jd/pop-order-get-response.json");
    assert!(o.lines.iter().all(|l| l.refund == RefundState::None));
}

async fn send(url: &str, req: &ApiRequest) -> Vec<u8> {
    HttpClient::new().send(url, req).await.unwrap().1.to_vec()
}

#[tokio::test]
async fn the_jd_simulator_serves_applies_checks_reviews_and_records_decisions() {
    let (url, handle) = sim::spawn(ChannelKind::Jd, SimSettings::new(creds(), 8, 3))
        .await
        .unwrap();
    let a = adapter(ChannelKind::Jd).unwrap();
    let o = handle
        .orders()
        .into_iter()
        .find(|o| o.canonical == CanonicalStatus::Paid)
        .unwrap();
    let line = o.lines[0].external_line_id.clone();
    assert_eq!(
        Some(&line),
        o.lines[0].platform_sku_id.as_ref(),
        "JD's line is its SKU"
    );
    let id = handle.open_refund(&o.external_order_id, &line).unwrap();
    // The order is locked; its applies name no SKU, the apply read by id does.
    let detail = a
        .parse_detail(
            &send(
                &url,
                &a.detail_request(&o.external_order_id, &creds(), at()),
            )
            .await,
        )
        .unwrap();
    assert_eq!(detail.channel_status, "LOCKED");
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
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].refund_id.as_str(),
            listed[0].external_line_id.as_deref()
        ),
        (id.as_str(), None)
    );
    let r = a
        .parse_refund(&send(&url, &a.refund_get_request(&id, &creds(), at()).unwrap()).await)
        .unwrap();
    assert_eq!(
        (r.state, r.external_line_id.as_deref()),
        (RefundState::Requested, Some(line.as_str()))
    );
    // A wrong signature is refused like any call; an unknown apply is the channel's error.
    let mut bad = creds();
    bad.secret = "other".into();
    let req = a
        .refund_decision_request(&r, &RefundDecision::Agree, &bad, at())
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&send(&url, &req).await),
        Err(ApiError::Auth { .. })
    ));
    let mut unknown = r.clone();
    unknown.refund_id = "99".into();
    let req = a
        .refund_decision_request(&unknown, &RefundDecision::Agree, &creds(), at())
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&send(&url, &req).await),
        Err(ApiError::Api { .. })
    ));
    // The channel's system error is tried again.
    handle.fail_refund_decisions(1);
    let req = a
        .refund_decision_request(&r, &RefundDecision::Agree, &creds(), at())
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(&send(&url, &req).await),
        Err(ApiError::Api { .. })
    ));
    assert!(handle.refund_decisions().is_empty());
    // Refused with the operator's reason: recorded; the order is no longer locked.
    let refuse = RefundDecision::Refuse {
        reason: "已发货".into(),
    };
    let req = a
        .refund_decision_request(&r, &refuse, &creds(), at())
        .unwrap();
    a.parse_refund_decision_ack(&send(&url, &req).await)
        .unwrap();
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].refund_id.as_str(), &d[0].decision),
        (id.as_str(), &refuse)
    );
    let r = a
        .parse_refund(&send(&url, &a.refund_get_request(&id, &creds(), at()).unwrap()).await)
        .unwrap();
    assert_eq!(
        (r.state, r.raw_status.as_str()),
        (RefundState::Rejected, "2")
    );
    let detail = a
        .parse_detail(
            &send(
                &url,
                &a.detail_request(&o.external_order_id, &creds(), at()),
            )
            .await,
        )
        .unwrap();
    assert_ne!(detail.channel_status, "LOCKED");
}

//! Douyin refund decisions (issue 21): the order's after-sales (`afterSale.List`), the
//! after-sale read (`afterSale.Detail`) and the agreement (`afterSale.operate`), signed through
//! the gateway like the order calls (SOURCES.md, "Refund decisions"). The list sample is the
//! fudiwei SDK's fixture; the detail answers are written from its `AftersaleDetailResponse`
//! model (its own sample is empty). Refusals name a `reject_reason_code` read from
//! `afterSale/rejectReasonCodeList` (the doudian SDK's `AfterSaleRejectReasonCodeList*` models).

use super::{creds, fixture};
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::douyin::{api_sign, refund as dr};
use orderhub_channels::sim::{self, SimSettings};
use orderhub_channels::{
    ApiError, ApiRequest, ChannelKind, ChannelRefund, RefundDecision, RefundState, RefusalReason,
    adapter,
};
use serde_json::{Value, json};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn query(req: &ApiRequest) -> Vec<(String, String)> {
    let q = req.path_and_query.split_once('?').unwrap().1;
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn q<'a>(p: &'a [(String, String)], k: &str) -> &'a str {
    p.iter()
        .find(|(key, _)| key == k)
        .map_or("", |(_, v)| v.as_str())
}

/// The call's method, path and business parameters; its signature checked as the gateway does.
fn call(req: &ApiRequest) -> (String, Value) {
    let p = query(req);
    let param_json = std::str::from_utf8(&req.body).unwrap();
    assert_eq!(
        q(&p, "sign"),
        api_sign(
            "app-key-1",
            q(&p, "method"),
            param_json,
            q(&p, "timestamp"),
            q(&p, "v"),
            "s3cret"
        )
    );
    assert_eq!(q(&p, "access_token"), "tok-1");
    let path = req.path_and_query.split_once('?').unwrap().0;
    assert_eq!(path, format!("/{}", q(&p, "method").replace('.', "/")));
    (
        q(&p, "method").to_owned(),
        serde_json::from_str(param_json).unwrap(),
    )
}

fn waiting(kind: &str, status: &str) -> ChannelRefund {
    ChannelRefund {
        refund_id: "6986853269519810849".into(),
        external_order_id: "4821780700279174718".into(),
        external_line_id: Some("4821780700279174718".into()),
        state: RefundState::Requested,
        raw_status: status.into(),
        phase: Some(kind.into()),
        version: Some(1_626_860_666),
    }
}

#[test]
fn douyin_lists_an_orders_after_sales_with_aftersale_list() {
    let a = adapter(ChannelKind::Douyin).unwrap();
    let req = a
        .order_refunds_request("4821780700279174718", &creds(), at())
        .unwrap();
    assert_eq!(
        call(&req),
        (
            "afterSale.List".to_owned(),
            json!({"order_id": "4821780700279174718", "page": 0, "size": 20})
        )
    );
    assert_eq!(
        a.order_refunds_request("48x", &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // The SDK's list sample (BOM, ids as quoted strings, numbers as strings): one after-sale of
    // the line 4821780700279174718, waiting for the seller's second agreement (11).
    let listed = a
        .parse_order_refunds(&fixture("douyin/aftersale-list-response.json"))
        .unwrap();
    assert_eq!(
        listed,
        vec![ChannelRefund {
            refund_id: "6986853269519810849".into(),
            external_order_id: "4821780700279174718".into(),
            external_line_id: Some("4821780700279174718".into()),
            state: RefundState::Requested,
            raw_status: "11".into(),
            phase: Some("0".into()),
            version: Some(1_626_860_666),
        }]
    );
    assert!(
        a.parse_order_refunds(br#"{"code":10000,"data":{"items":[]}}"#)
            .unwrap()
            .is_empty()
    );
    let err =
        r#"{"code":50002,"msg":"x","sub_code":"isv.business-failed:11005","sub_msg":"操作失败"}"#
            .as_bytes();
    assert!(matches!(
        a.parse_order_refunds(err),
        Err(ApiError::Api { .. })
    ));
}

#[test]
fn douyin_reads_an_after_sale_with_aftersale_detail() {
    let a = adapter(ChannelKind::Douyin).unwrap();
    let req = a
        .refund_get_request("6986853269519810849", &creds(), at())
        .unwrap();
    assert_eq!(
        call(&req),
        (
            "afterSale.Detail".to_owned(),
            json!({"after_sale_id": "6986853269519810849"})
        )
    );
    assert_eq!(
        a.refund_get_request("12ab", &creds(), at())
            .unwrap_err()
            .rule,
        "bad_value"
    );
    // The SDK's own detail sample is empty: refused, naming what is missing.
    assert!(matches!(
        a.parse_refund(&fixture("douyin/aftersale-detail-response.json")),
        Err(ApiError::Rejected(r)) if r.rule == "missing_field"
    ));
    let body = |status: &str| {
        json!({"code": 10000, "msg": "success", "data": {
            "process_info": {"after_sale_info": {
                "after_sale_id": 6986853269519810849u64, "after_sale_status": status.parse::<i64>().unwrap_or(-1),
                "after_sale_type": 1, "refund_status": 1, "update_time": 1626860666,
            }},
            "order_info": {"shop_order_id": "4821780700279174718",
                "sku_order_infos": [{"sku_order_id": "4821780700279174718", "product_id": 1, "sku_id": 2}]},
        }})
        .to_string()
    };
    assert_eq!(
        a.parse_refund(body("6").as_bytes()).unwrap(),
        waiting("1", "6")
    );
    for (status, state) in [
        ("7", RefundState::Refunded),
        ("11", RefundState::Requested),
        ("12", RefundState::Refunded),
        ("27", RefundState::Rejected),
        ("28", RefundState::Rejected),
    ] {
        assert_eq!(
            a.parse_refund(body(status).as_bytes()).unwrap().state,
            state,
            "{status}"
        );
    }
    assert!(matches!(
        a.parse_refund(body("99").as_bytes()),
        Err(ApiError::Rejected(r)) if r.rule == "unknown_status"
    ));
}

#[test]
fn douyin_agrees_with_aftersale_operate() {
    let a = adapter(ChannelKind::Douyin).unwrap();
    let agree = |r: &ChannelRefund| {
        a.refund_decision_request(r, &RefundDecision::Agree, &creds(), at())
            .map(|req| call(&req))
    };
    let item = json!({"aftersale_id": "6986853269519810849", "update_time": 1626860666});
    // Refund-only (1) waiting for the seller: 201; before shipment (2): 401; a return whose
    // goods came back (0, 11): 111. Each names the version read (update_time).
    for (kind, status, ty) in [("1", "6", 201), ("2", "6", 401), ("0", "11", 111)] {
        assert_eq!(
            agree(&waiting(kind, status)).unwrap(),
            (
                "afterSale.operate".to_owned(),
                json!({"type": ty, "items": [item]})
            ),
            "{kind}/{status}"
        );
    }
    assert_eq!(dr::AGREE_REFUND, 201);
    // A return or exchange waiting for its first answer needs the shop's return address id.
    for kind in ["0", "3"] {
        let e = agree(&waiting(kind, "6")).unwrap_err();
        assert_eq!(
            (e.rule, e.field.as_deref()),
            ("missing_field", Some("receiver_address_id"))
        );
    }
    let mut unknown = waiting("1", "6");
    unknown.phase = None;
    assert_eq!(agree(&unknown).unwrap_err().rule, "missing_field");
    // Refusing needs a reject_reason_code: without one, refused before any call.
    let e = a
        .refund_decision_request(
            &waiting("1", "6"),
            &RefundDecision::Refuse {
                reason: "已发货".into(),
            },
            &creds(),
            at(),
        )
        .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("missing_field", Some("reject_reason_code"))
    );
    // The answers: each item's status_code (the SDK's AftersaleOperateResponse).
    a.parse_refund_decision_ack(br#"{"code":10000,"msg":"success","data":{"items":[{"aftersale_id":6986853269519810849,"status_code":0,"status_msg":"success"}]}}"#)
        .unwrap();
    assert!(matches!(
        a.parse_refund_decision_ack(r#"{"code":10000,"data":{"items":[{"aftersale_id":1,"status_code":11005,"status_msg":"操作失败"}]}}"#.as_bytes()),
        Err(ApiError::Api { .. })
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(r#"{"code":50002,"msg":"业务处理失败","sub_code":"isv.business-failed:20309541","sub_msg":"售后状态错误"}"#.as_bytes()),
        Err(ApiError::Api { code, .. }) if code.contains("20309541")
    ));
    assert!(matches!(
        a.parse_refund_decision_ack(br#"{"data":{}}"#),
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
fn douyin_reads_the_reject_reasons_and_refuses_with_a_code() {
    let a = adapter(ChannelKind::Douyin).unwrap();
    // The list: `aftersale_id` a number (the SDK's param is a Long).
    let req = a
        .refusal_reasons_request(&waiting("1", "6"), &creds(), at())
        .unwrap();
    assert_eq!(
        call(&req),
        (
            "afterSale.rejectReasonCodeList".to_owned(),
            json!({"aftersale_id": 6986853269519810849u64})
        )
    );
    // Its answer, in the SDK's ItemsItem fields (codes as numbers or strings).
    let body = json!({"code": 10000, "msg": "success", "data": {"items": [
        {"reject_reason_code": 1, "reason": "买家已签收", "evidence_need": "Y",
         "evidence_description": "请提供发货物流进度截图", "image": "/obj/x.png", "order_type": -1, "pkg": 1},
        {"reject_reason_code": "7", "reason": "其他", "evidence_need": "N", "order_type": -1, "pkg": -1},
        {"reject_reason_code": 9, "reason": "无标记"},
    ]}});
    let list = a
        .parse_refusal_reasons(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        list,
        vec![
            reason("1", "买家已签收", true),
            reason("7", "其他", false),
            reason("9", "无标记", true),
        ]
    );
    assert_eq!(
        orderhub_channels::choose_refusal_reason(&list),
        Some(&list[1])
    );
    assert!(
        a.parse_refusal_reasons(br#"{"code":10000,"data":{}}"#)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        a.parse_refusal_reasons(br#"{"code":10000,"data":{"items":[{"reason":"x"}]}}"#),
        Err(ApiError::Rejected(_))
    ));
    assert!(matches!(
        a.parse_refusal_reasons(r#"{"code":50002,"msg":"业务处理失败","sub_code":"isv.business-failed:1","sub_msg":"售后单不存在"}"#.as_bytes()),
        Err(ApiError::Api { .. })
    ));
    // The refusal: 202 / 102 / 112 by type and status, reason = the code's text, remark = the
    // seller's, the code a number, the version read.
    let code = reason("7", "其他", false);
    for (kind, status, ty) in [("1", "6", 202), ("0", "6", 102), ("0", "11", 112)] {
        let req = a
            .refusal_request(
                &waiting(kind, status),
                " 已发货 ",
                Some(&code),
                &creds(),
                at(),
            )
            .unwrap();
        assert_eq!(
            call(&req),
            (
                "afterSale.operate".to_owned(),
                json!({"type": ty, "items": [{"aftersale_id": "6986853269519810849",
                    "reason": "其他", "remark": "已发货", "reject_reason_code": 7,
                    "update_time": 1626860666}]})
            ),
            "{kind}/{status}"
        );
    }
    // Before shipment (refused by shipping) and exchanges: no call.
    for kind in ["2", "3"] {
        let r = waiting(kind, "6");
        assert_eq!(
            a.refusal_reasons_request(&r, &creds(), at())
                .unwrap_err()
                .rule,
            "not_supported"
        );
        let e = a
            .refusal_request(&r, "x", Some(&code), &creds(), at())
            .unwrap_err();
        assert_eq!(e.rule, "not_supported");
    }
    // An empty reason: the code's text is the remark; the answer is the agreement's.
    let req = a
        .refusal_request(&waiting("1", "6"), "  ", Some(&code), &creds(), at())
        .unwrap();
    assert_eq!(call(&req).1["items"][0]["remark"], "其他");
    let long = "退".repeat(300);
    let req = a
        .refusal_request(&waiting("1", "6"), &long, Some(&code), &creds(), at())
        .unwrap();
    assert_eq!(
        call(&req).1["items"][0]["remark"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        200
    );
}

#[tokio::test]
async fn the_douyin_simulator_serves_reject_reasons_and_checks_the_code() {
    let (url, handle) = sim::spawn(ChannelKind::Douyin, SimSettings::new(creds(), 5, 1))
        .await
        .unwrap();
    let a = adapter(ChannelKind::Douyin).unwrap();
    let http = HttpClient::new();
    let o = handle.orders().into_iter().next().unwrap();
    let id = handle
        .open_refund(&o.external_order_id, &o.lines[0].external_line_id)
        .unwrap();
    let req = a.refund_get_request(&id, &creds(), at()).unwrap();
    let r = a.parse_refund(&send(&http, &url, &req).await).unwrap();
    let req = a.refusal_reasons_request(&r, &creds(), at()).unwrap();
    let list = a
        .parse_refusal_reasons(&send(&http, &url, &req).await)
        .unwrap();
    assert!(list.iter().any(|r| r.needs_evidence));
    let chosen = orderhub_channels::choose_refusal_reason(&list)
        .unwrap()
        .clone();
    assert_eq!(chosen.text, "其他");
    // A code needing evidence (none sent) and a code not offered: refused, nothing recorded.
    let evidence = list.iter().find(|r| r.needs_evidence).unwrap();
    for code in [evidence.clone(), reason("999", "x", false)] {
        let req = a
            .refusal_request(&r, "已发货", Some(&code), &creds(), at())
            .unwrap();
        assert!(
            a.parse_refund_decision_ack(&send(&http, &url, &req).await)
                .is_err()
        );
    }
    assert!(handle.refund_decisions().is_empty());
    let req = a
        .refusal_request(&r, "已发货", Some(&chosen), &creds(), at())
        .unwrap();
    a.parse_refund_decision_ack(&send(&http, &url, &req).await)
        .unwrap();
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

async fn send(http: &HttpClient, url: &str, req: &ApiRequest) -> Vec<u8> {
    http.send(url, req).await.unwrap().1.to_vec()
}

#[tokio::test]
async fn the_douyin_simulator_serves_after_sales_checks_calls_and_records_agreements() {
    let (url, handle) = sim::spawn(ChannelKind::Douyin, SimSettings::new(creds(), 5, 1))
        .await
        .unwrap();
    let a = adapter(ChannelKind::Douyin).unwrap();
    let http = HttpClient::new();
    let o = handle.orders().into_iter().next().unwrap();
    let line = o.lines[0].external_line_id.clone();
    let id = handle.open_refund(&o.external_order_id, &line).unwrap();
    // The detail shows the line waiting for the seller (6), without the after-sale's id.
    let body = send(
        &http,
        &url,
        &a.detail_request(&o.external_order_id, &creds(), at()),
    )
    .await;
    let detail = a.parse_detail(&body).unwrap();
    assert_eq!(detail.lines[0].refund, RefundState::Requested);
    assert_eq!(detail.lines[0].refund_id, None);
    // The order's list names the after-sale and its line; the read says the same.
    let req = a
        .order_refunds_request(&o.external_order_id, &creds(), at())
        .unwrap();
    let listed = a
        .parse_order_refunds(&send(&http, &url, &req).await)
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].refund_id.as_str(),
            listed[0].external_line_id.as_deref()
        ),
        (id.as_str(), Some(line.as_str()))
    );
    let req = a.refund_get_request(&id, &creds(), at()).unwrap();
    let r = a.parse_refund(&send(&http, &url, &req).await).unwrap();
    assert_eq!(
        (r.state, r.external_line_id.as_deref(), r.phase.as_deref()),
        (RefundState::Requested, Some(line.as_str()), Some("1"))
    );
    assert!(r.version.is_some());
    // A stale version, a wrong signature, an unknown after-sale: refused, nothing recorded.
    let mut stale = r.clone();
    stale.version = Some(r.version.unwrap() - 60);
    let mut bad = creds();
    bad.secret = "other".into();
    let mut unknown = r.clone();
    unknown.refund_id = "99".into();
    for (refund, c) in [(&stale, creds()), (&r, bad), (&unknown, creds())] {
        let req = a
            .refund_decision_request(refund, &RefundDecision::Agree, &c, at())
            .unwrap();
        assert!(
            a.parse_refund_decision_ack(&send(&http, &url, &req).await)
                .is_err()
        );
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
    let d = handle.refund_decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].refund_id.as_str(), &d[0].decision),
        (id.as_str(), &RefundDecision::Agree)
    );
}

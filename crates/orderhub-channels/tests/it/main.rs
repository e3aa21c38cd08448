//! The adapters over their fixtures (real public samples and edge cases in the same shapes), and
//! against the simulators over TCP on 127.0.0.1.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use orderhub_channels::client::{HttpClient, pull_window};
use orderhub_channels::sim::{self, Knobs, SimSettings};
use orderhub_channels::{
    ApiError, CanonicalStatus, ChannelKind, ChannelOrder, PushEvent, RefundState, Rejected,
    Shipment, ShopCredentials, adapter,
};
use orderhub_domain::ShopId;
use parking_lot::Mutex;
use rust_decimal::Decimal;

mod field_meanings;
mod jd_refund;
mod mapped;
mod pdd_refund;
mod refund;
mod refund_douyin;
mod refund_kuaishou;
mod refund_wechat;
mod refund_youzan;
mod stock;

fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn order(kind: ChannelKind, path: &str) -> ChannelOrder {
    adapter(kind)
        .unwrap()
        .parse_order(&fixture(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn reject(kind: ChannelKind, body: &[u8]) -> Rejected {
    adapter(kind)
        .unwrap()
        .parse_order(body)
        .expect_err("must be refused")
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The domain's own check of a draft: lines, totals and presale amounts must add up.
fn create(
    draft: orderhub_domain::order::OrderDraft,
) -> Result<orderhub_domain::Order, orderhub_domain::ValidationError> {
    orderhub_domain::Order::create(
        draft,
        orderhub_domain::OrderId::parse("0190a0e0-0000-7000-8000-000000000000").unwrap(),
        orderhub_domain::TenantId::parse("t1").unwrap(),
        Utc::now(),
    )
}

fn yuan(o: &ChannelOrder) -> [String; 4] {
    let a = o.amounts;
    [a.goods_total, a.shipping_fee, a.discount, a.paid].map(|d| d.to_string())
}

// ---- Douyin ---------------------------------------------------------------------------------

#[test]
fn douyin_real_detail_sample_reads_string_numbers_fen_and_keeps_the_china_offset() {
    let o = order(ChannelKind::Douyin, "douyin/order-detail-response.json");
    assert_eq!(o.external_order_id, "4781320682406083640");
    // The SDK sample says order_status "3" (已发货) with a contradicting "待支付" description.
    assert_eq!(
        (o.channel_status.as_str(), o.canonical),
        ("3", CanonicalStatus::Shipped)
    );
    assert_eq!(o.created_at.to_rfc3339(), "2021-04-02T17:23:33+08:00");
    assert_eq!(o.amounts.paid, d("5.00"));
    assert_eq!(o.amounts.shipping_fee, d("0.10"));
    assert_eq!(o.lines.len(), 1);
    let l = &o.lines[0];
    assert_eq!((l.sku.as_str(), l.quantity), ("43564553", 2));
    // origin_amount is the unit price (商品现价), sum_amount 200 the line total.
    assert_eq!(l.unit_price, d("1.00"));
    assert_eq!(l.refund, RefundState::Requested);
    assert_eq!(l.refund_raw.as_deref(), Some("6"));
    assert_eq!(o.receiver.district.as_deref(), Some("海淀区"));
    assert_eq!(o.receiver.town.as_deref(), Some("中关村街道"));
    // The sample's phase list says phase 1 of 2 (deposit 1.00): a presale order.
    let p = o.presale.as_ref().unwrap();
    assert_eq!(
        (p.deposit, p.final_payment, p.final_paid),
        (d("1.00"), d("4.00"), false)
    );
    assert!(
        o.shippable,
        "already shipped: the presale flag does not hold it back"
    );
    // The sample's amounts do not add up (paid 5.00 for 2 × 1.00): the domain refuses it.
    let draft = o.to_draft(&ShopId::parse("dy-1").unwrap()).unwrap();
    let e = create(draft).unwrap_err();
    assert_eq!(e.rule, "does_not_add_up");
    assert_eq!(o.buyer_message.as_deref(), Some("要xxx"));
}

#[test]
fn douyin_real_search_list_sample_reads_json_numbers() {
    let page = adapter(ChannelKind::Douyin)
        .unwrap()
        .parse_list(&fixture("douyin/order-search-list-response.json"))
        .unwrap();
    assert_eq!(page.total, Some(1000));
    assert!(page.has_next);
    let o = &page.orders[0];
    assert_eq!(o.canonical, CanonicalStatus::Shipped);
    assert_eq!(o.amounts.paid, d("5.00"));
    assert!(o.receiver.oaid.is_some());
}

#[test]
fn douyin_edge_fixtures_map_as_expected() {
    let k = ChannelKind::Douyin;
    let o = order(k, "douyin/edge-multiline-presale.json");
    assert_eq!(o.canonical, CanonicalStatus::Paid);
    assert_eq!(o.lines.len(), 2);
    assert_eq!(o.lines[0].title, "Apple® AirPods Pro™ 🎧 预售");
    assert_eq!(o.lines[0].discount, d("20.00"));
    assert_eq!(
        yuan(&o),
        ["258.80", "0.00", "20.00", "238.80"].map(String::from)
    );
    let p = o.presale.as_ref().unwrap();
    assert_eq!(
        (p.deposit, p.final_payment, p.final_paid),
        (d("50.00"), d("188.80"), false)
    );
    assert_eq!(
        p.final_payment_due.unwrap().to_rfc3339(),
        "2024-11-15T00:00:00+08:00"
    );
    assert!(!o.shippable);
    assert_eq!(o.buyer_message.as_deref(), Some("请尽快发货😊"));
    // Deposit + final = paid, lines add up: the domain takes it as a presale draft.
    let draft = o.to_draft(&ShopId::parse("dy-1").unwrap()).unwrap();
    assert!(matches!(
        draft.kind,
        orderhub_domain::OrderKind::Presale { .. }
    ));
    assert_eq!(
        draft.channel_updated_at.unwrap().to_rfc3339(),
        "2024-11-11T01:00:00+08:00"
    );

    let o = order(k, "douyin/edge-partly-refunded.json");
    assert_eq!(o.canonical, CanonicalStatus::Shipped);
    let refunds: Vec<_> = o.lines.iter().map(|l| l.refund).collect();
    assert_eq!(refunds, [RefundState::Refunded, RefundState::None]);
    assert_eq!(
        yuan(&o),
        ["93.00", "6.00", "0.00", "99.00"].map(String::from)
    );

    let o = order(k, "douyin/edge-cancelled-after-payment.json");
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment);

    let o = order(k, "douyin/edge-missing-optional.json");
    assert_eq!(o.canonical, CanonicalStatus::PendingPayment);
    assert!(o.paid_at.is_none());
    assert_eq!(
        o.modified_at, o.created_at,
        "no update_time: the creation is the version"
    );
    assert_eq!(o.receiver.province, "");
    assert!(o.buyer_message.is_none());
    assert!(!o.cancelled_after_payment);

    let e = reject(k, &fixture("douyin/bad-unknown-status.json"));
    assert_eq!(e.rule, "unknown_status");
    assert_eq!(
        e.field.as_deref(),
        Some("data.shop_order_detail.order_status")
    );
}

#[test]
fn douyin_every_status_in_the_map_maps_and_others_are_refused() {
    use orderhub_channels::douyin::{AfterSaleStatus, OrderStatus};
    let expect = [
        ("1", CanonicalStatus::PendingPayment),
        ("105", CanonicalStatus::Paid),
        ("2", CanonicalStatus::Paid),
        ("101", CanonicalStatus::PartlyShipped),
        ("3", CanonicalStatus::Shipped),
        ("4", CanonicalStatus::Cancelled),
        ("5", CanonicalStatus::Completed),
    ];
    assert_eq!(OrderStatus::ALL.len(), expect.len());
    for (code, c) in expect {
        assert_eq!(OrderStatus::parse(code).unwrap().target(), c, "{code}");
    }
    assert!(OrderStatus::parse("103").is_none());
    assert_eq!(
        AfterSaleStatus::parse("12").unwrap().target(),
        RefundState::Refunded
    );
    assert_eq!(
        AfterSaleStatus::parse("27").unwrap().target(),
        RefundState::Rejected
    );
    for s in AfterSaleStatus::ALL {
        assert_eq!(AfterSaleStatus::parse(s.code()), Some(*s));
    }
}

#[test]
fn douyin_real_push_samples_parse_and_name_the_order() {
    let a = adapter(ChannelKind::Douyin).unwrap();
    let m = a
        .parse_push(&[], &fixture("douyin/push-trade-create-event.json"))
        .unwrap();
    assert_eq!(m.items[0].event, PushEvent::OrderCreated);
    assert_eq!(m.items[0].order_id, "12345");
    // The sample's paid event carries tag 110 (TradePending in the message list).
    let m = a
        .parse_push(&[], &fixture("douyin/push-trade-paid-event.json"))
        .unwrap();
    assert_eq!(
        (m.items[0].raw_event.as_str(), m.items[0].event),
        ("110", PushEvent::OrderChanged)
    );
    let m = a
        .parse_push(&[], &fixture("douyin/push-refund-created-event.json"))
        .unwrap();
    assert_eq!(m.items[0].event, PushEvent::Refund);
    assert_eq!(m.items[0].order_id, "4705288465508532862");
    for f in [
        "push-trade-canceled-event.json",
        "push-trade-success-event.json",
        "push-trade-memo-modify-event.json",
        "push-trade-amount-changed-event.json",
        "push-trade-partly-seller-ship-event.json",
        "push-trade-address-change-applied-event.json",
        "push-trade-appointment-event.json",
        "push-trade-pending-event.json",
    ] {
        a.parse_push(&[], &fixture(&format!("douyin/{f}")))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

// ---- WeChat ---------------------------------------------------------------------------------

#[test]
fn wechat_real_order_sample_and_edges() {
    let k = ChannelKind::Wechat;
    let o = order(k, "wechat/ec-order-get-response.json");
    assert_eq!(o.external_order_id, "37423523451235145");
    assert_eq!(o.canonical, CanonicalStatus::Paid);
    assert_eq!(
        yuan(&o),
        ["200.00", "5.00", "100.00", "105.00"].map(String::from)
    );
    assert_eq!(o.lines[0].refund, RefundState::Requested);
    assert_eq!(o.created_at.to_rfc3339(), "2022-07-23T00:00:00+08:00");
    assert_eq!(o.seller_memo.as_deref(), Some("库存不足，取消"));

    let o = order(k, "wechat/edge-multiline-partly-refunded.json");
    assert_eq!(o.canonical, CanonicalStatus::Shipped);
    assert_eq!(o.lines[0].title, "健身环 Ring-Fit® 🏋️");
    let refunds: Vec<_> = o.lines.iter().map(|l| l.refund).collect();
    assert_eq!(refunds, [RefundState::None, RefundState::Refunded]);
    assert_eq!(
        yuan(&o),
        ["300.00", "5.00", "10.00", "295.00"].map(String::from)
    );

    let o = order(k, "wechat/edge-cancelled-after-payment.json");
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment);
    assert_eq!(o.lines[0].refund, RefundState::Refunded);

    let o = order(k, "wechat/edge-missing-optional.json");
    assert_eq!(o.canonical, CanonicalStatus::PendingPayment);
    assert!(o.paid_at.is_none() && o.buyer_message.is_none());
    assert!(o.receiver.name.is_empty());

    let e = reject(k, &fixture("wechat/bad-unknown-status.json"));
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("unknown_status", Some("order.status"))
    );
}

#[test]
fn wechat_every_status_maps_and_push_samples_parse_with_numeric_or_string_ids() {
    use orderhub_channels::wechat::OrderStatus;
    let expect = [
        ("10", CanonicalStatus::PendingPayment),
        ("20", CanonicalStatus::Paid),
        ("21", CanonicalStatus::PartlyShipped),
        ("30", CanonicalStatus::Shipped),
        ("100", CanonicalStatus::Completed),
        ("200", CanonicalStatus::Cancelled),
        ("250", CanonicalStatus::Cancelled),
    ];
    assert_eq!(OrderStatus::ALL.len(), expect.len());
    for (code, c) in expect {
        assert_eq!(OrderStatus::parse(code).unwrap().target(), c);
    }
    let a = adapter(ChannelKind::Wechat).unwrap();
    let m = a
        .parse_push(&[], &fixture("wechat/push-ec-order-new-event.json"))
        .unwrap();
    assert_eq!(m.items[0].order_id, "3705115058471208928");
    assert_eq!(m.items[0].event, PushEvent::OrderCreated);
    let m = a
        .parse_push(&[], &fixture("wechat/push-ec-order-pay-event.json"))
        .unwrap();
    assert_eq!(
        (m.items[0].order_id.as_str(), m.items[0].event),
        ("3705115058471208928", PushEvent::OrderPaid)
    );
    let m = a
        .parse_push(&[], &fixture("wechat/push-ec-aftersale-update-event.json"))
        .unwrap();
    assert_eq!(
        (m.items[0].order_id.as_str(), m.items[0].event),
        ("12345", PushEvent::Refund)
    );
    for f in [
        "cancel",
        "confirm",
        "deliver",
        "settle",
        "extended-info-update",
    ] {
        a.parse_push(
            &[],
            &fixture(&format!("wechat/push-ec-order-{f}-event.json")),
        )
        .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let e = a.parse_push(&[], br#"{"Encrypt":"abc"}"#).unwrap_err();
    assert_eq!(e.rule, "encrypted");
    let page = a
        .parse_list(&fixture("wechat/ec-order-list-get-response.json"))
        .unwrap();
    assert_eq!(page.order_ids.len(), 2);
    assert_eq!(page.next_cursor.as_deref(), Some("THE_NEXT_KEY_NEW"));
}

// ---- Youzan ---------------------------------------------------------------------------------

#[test]
fn youzan_demo_with_numeric_status_is_refused_not_guessed() {
    // The scraped 4.0.0 demo writes "status": 60 where the field doc says a string enum.
    let e = reject(ChannelKind::Youzan, &fixture("youzan/trade-get-demo.json"));
    assert_eq!(e.rule, "unknown_status");
    assert_eq!(
        e.field.as_deref(),
        Some("data.full_order_info.order_info.status")
    );
}

#[test]
fn youzan_demo_and_edges_map_yuan_strings_and_local_times() {
    let k = ChannelKind::Youzan;
    let o = order(k, "youzan/trade-get-demo-status-string.json");
    assert_eq!(o.external_order_id, "E20180308214644100400012");
    assert_eq!(o.canonical, CanonicalStatus::Shipped);
    assert_eq!(o.amounts.paid, d("320.60"));
    assert_eq!(o.lines.len(), 4);
    assert_eq!(o.lines[0].unit_price, d("88.00"));
    assert_eq!(o.lines[0].paid_amount, d("75.65"));
    assert_eq!(o.created_at.to_rfc3339(), "2018-03-08T21:46:44+08:00");
    assert_eq!(o.modified_at.to_rfc3339(), "2018-03-09T21:00:08+08:00");
    assert!(o.seller_memo.is_some());
    assert!(
        o.buyer_message.is_none(),
        "an empty buyer_message is absent"
    );

    let o = order(k, "youzan/edge-wait-confirm-group.json");
    assert_eq!(o.canonical, CanonicalStatus::Paid);
    assert!(!o.shippable);
    assert_eq!(o.lines[0].title, "西湖龙井®  明前特级 250g 🍵");

    let o = order(k, "youzan/edge-partly-refunded.json");
    let refunds: Vec<_> = o.lines.iter().map(|l| l.refund).collect();
    assert_eq!(refunds, [RefundState::None, RefundState::Refunded]);
    assert_eq!(o.lines[1].sku, "2", "no outer SKU: the platform SKU id");
    assert_eq!(
        yuan(&o),
        ["25.50", "6.00", "0.00", "31.50"].map(String::from)
    );
    let draft = o.to_draft(&ShopId::parse("yz-1").unwrap()).unwrap();
    assert_eq!(create(draft).unwrap().lines.len(), 2);
}

#[test]
fn youzan_every_status_maps() {
    use orderhub_channels::youzan::TradeStatus;
    assert_eq!(TradeStatus::ALL.len(), 11);
    for s in TradeStatus::ALL {
        assert_eq!(TradeStatus::parse(s.code()), Some(*s));
    }
    assert_eq!(
        TradeStatus::parse("TRADE_SUCCESS").unwrap().target(),
        CanonicalStatus::Completed
    );
    assert_eq!(
        TradeStatus::parse("TRADE_BUYER_SIGNED").unwrap().target(),
        CanonicalStatus::Delivered
    );
    assert!(TradeStatus::parse("TRADE_REFUND").is_none());
}

#[test]
fn youzan_errors_tell_throttling_from_credentials() {
    let a = adapter(ChannelKind::Youzan).unwrap();
    // As Youzan announced its per-shop limits; the gateway's form of the same code.
    for throttled in [
        r#"{"msg":"请求太频繁","code":4101}"#,
        r#"{"gw_err_resp":{"err_code":4101,"err_msg":"请求太频繁"}}"#,
    ] {
        assert!(
            matches!(
                a.api_error(throttled.as_bytes()),
                Some(ApiError::Throttled { .. })
            ),
            "{throttled}"
        );
    }
    for refused in ["4201", "4202", "4203"] {
        let body =
            format!(r#"{{"gw_err_resp":{{"err_code":{refused},"err_msg":"请求凭证过期"}}}}"#);
        assert!(
            matches!(a.api_error(body.as_bytes()), Some(ApiError::Auth { .. })),
            "{refused}"
        );
    }
    assert!(
        a.api_error(br#"{"success":true,"code":200,"data":{"is_success":true}}"#)
            .is_none()
    );
    assert!(matches!(
        a.api_error(r#"{"success":false,"code":141500101,"message":"订单不存在"}"#.as_bytes()),
        Some(ApiError::Api { .. })
    ));
}

// ---- Taobao ---------------------------------------------------------------------------------

#[test]
fn taobao_fullinfo_reads_top_shapes_yuan_strings_and_masked_receiver() {
    let k = ChannelKind::Taobao;
    let o = order(k, "taobao/trade-fullinfo-get-response.json");
    assert_eq!(o.external_order_id, "3900000000000000001");
    assert_eq!(
        (o.channel_status.as_str(), o.canonical),
        ("WAIT_SELLER_SEND_GOODS", CanonicalStatus::Paid)
    );
    assert_eq!(o.lines.len(), 2);
    assert_eq!(o.lines[0].title, "Apple® AirPods Pro™ 🎧 无线降噪耳机");
    assert_eq!(o.lines[0].external_line_id, "3900000000000000011");
    assert_eq!(o.lines[0].sku, "AIRPODS-PRO-2");
    assert_eq!(o.lines[0].discount, d("100.00"));
    assert_eq!(o.lines[0].refund, RefundState::None);
    assert_eq!(o.lines[0].refund_raw, None, "NO_REFUND is no refund");
    assert_eq!(
        o.lines[1].sku, "5012345678901",
        "no outer SKU: the platform SKU id"
    );
    assert_eq!(
        yuan(&o),
        ["2018.80", "0.00", "100.00", "1918.80"].map(String::from)
    );
    assert_eq!(o.created_at.to_rfc3339(), "2024-11-11T00:02:13+08:00");
    assert_eq!(o.modified_at.to_rfc3339(), "2024-11-11T00:05:00+08:00");
    assert!(o.receiver.receiver_masked);
    assert!(o.receiver.oaid.is_some());
    assert_eq!(o.receiver.town.as_deref(), Some("文新街道"));
    assert_eq!(o.buyer_message.as_deref(), Some("请尽快发货，谢谢😊"));
    assert!(o.shippable && o.presale.is_none());
    let draft = o.to_draft(&ShopId::parse("tb-1").unwrap()).unwrap();
    assert_eq!(create(draft).unwrap().lines.len(), 2);
}

#[test]
fn taobao_increment_list_reads_trades_trade_and_has_next() {
    let page = adapter(ChannelKind::Taobao)
        .unwrap()
        .parse_list(&fixture("taobao/trades-sold-increment-get-response.json"))
        .unwrap();
    assert_eq!(page.total, Some(2));
    assert!(!page.has_next);
    assert_eq!(page.orders.len(), 2);
    assert_eq!(page.orders[0].canonical, CanonicalStatus::Shipped);
    assert_eq!(page.orders[1].canonical, CanonicalStatus::Completed);
    assert_eq!(
        yuan(&page.orders[1]),
        ["1540.00", "6.00", "0.00", "1546.00"].map(String::from)
    );
    // An empty window: TOP leaves `trades` out.
    let page = adapter(ChannelKind::Taobao)
        .unwrap()
        .parse_list(
            br#"{"trades_sold_increment_get_response":{"has_next":false,"request_id":"x"}}"#,
        )
        .unwrap();
    assert!(page.orders.is_empty() && !page.has_next);
}

#[test]
fn taobao_edge_fixtures_map_as_expected() {
    let k = ChannelKind::Taobao;
    let o = order(k, "taobao/edge-presale.json");
    assert_eq!(o.canonical, CanonicalStatus::PendingPayment);
    let p = o.presale.as_ref().unwrap();
    assert_eq!(
        (p.deposit, p.final_payment, p.final_paid),
        (d("50.00"), d("249.00"), false)
    );
    assert!(!o.shippable);
    assert_eq!(
        o.not_shippable_reason.as_deref(),
        Some("presale final payment outstanding")
    );
    assert!(o.paid_at.is_none(), "an empty pay_time is unset");
    let draft = o.to_draft(&ShopId::parse("tb-1").unwrap()).unwrap();
    assert!(matches!(
        draft.kind,
        orderhub_domain::OrderKind::Presale { .. }
    ));
    create(draft).unwrap();

    let o = order(k, "taobao/edge-partly-refunded.json");
    assert_eq!(o.canonical, CanonicalStatus::Shipped);
    let refunds: Vec<_> = o.lines.iter().map(|l| l.refund).collect();
    assert_eq!(refunds, [RefundState::Refunded, RefundState::None]);
    assert_eq!(o.lines[0].refund_raw.as_deref(), Some("SUCCESS"));
    assert_eq!(o.lines[1].title, "Nike 耐克 Air Force 1 ’07 运动鞋");
    assert_eq!(
        yuan(&o),
        ["93.00", "6.00", "0.00", "99.00"].map(String::from)
    );

    let o = order(k, "taobao/edge-cancelled-after-payment.json");
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment);
    assert_eq!(o.lines[0].refund, RefundState::Refunded);

    let o = order(k, "taobao/edge-missing-optional.json");
    assert_eq!(o.canonical, CanonicalStatus::PendingPayment);
    assert_eq!(o.external_order_id, "3900000000000000007");
    assert_eq!(o.lines[0].external_line_id, "3900000000000000071");
    assert!(o.paid_at.is_none() && o.buyer_message.is_none());
    assert_eq!(o.modified_at, o.created_at);
    assert!(o.receiver.name.is_empty() && !o.receiver.receiver_masked);
    assert_eq!(o.amounts.shipping_fee, d("0"));
    assert!(!o.cancelled_after_payment);

    let o = order(k, "taobao/edge-group-hold.json");
    assert_eq!(o.canonical, CanonicalStatus::Paid);
    assert!(!o.shippable);
    assert_eq!(
        o.not_shippable_reason.as_deref(),
        Some("the group has not formed yet")
    );

    // PAID_FORBID_CONSIGN: paid, must not ship.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("taobao/trade-fullinfo-get-response.json")).unwrap();
    v["trade_fullinfo_get_response"]["trade"]["status"] = "PAID_FORBID_CONSIGN".into();
    let o = adapter(k)
        .unwrap()
        .parse_order(&serde_json::to_vec(&v).unwrap())
        .unwrap();
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, false));

    // Both presale payments made: shippable, final paid.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("taobao/edge-presale.json")).unwrap();
    v["trade_fullinfo_get_response"]["trade"]["status"] = "WAIT_SELLER_SEND_GOODS".into();
    v["trade_fullinfo_get_response"]["trade"]["step_trade_status"] = "FRONT_PAID_FINAL_PAID".into();
    v["trade_fullinfo_get_response"]["trade"]["step_paid_fee"] = "299.00".into();
    let o = adapter(k)
        .unwrap()
        .parse_order(&serde_json::to_vec(&v).unwrap())
        .unwrap();
    assert!(o.shippable && o.presale.as_ref().unwrap().final_paid);

    let e = reject(k, &fixture("taobao/bad-unknown-status.json"));
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "unknown_status",
            Some("trade_fullinfo_get_response.trade.status")
        )
    );
    // An unknown refund code on a line is refused too, never guessed.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("taobao/edge-partly-refunded.json")).unwrap();
    v["trade_fullinfo_get_response"]["trade"]["orders"]["order"][0]["refund_status"] =
        "REFUND_SOMEHOW".into();
    let e = reject(k, &serde_json::to_vec(&v).unwrap());
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "unknown_status",
            Some("trade_fullinfo_get_response.trade.orders.order[0].refund_status")
        )
    );
}

#[test]
fn taobao_every_status_maps_and_others_are_refused() {
    use orderhub_channels::taobao::{RefundStatus, TradeStatus};
    let expect = [
        ("TRADE_NO_CREATE_PAY", CanonicalStatus::PendingPayment),
        ("WAIT_BUYER_PAY", CanonicalStatus::PendingPayment),
        ("PAY_PENDING", CanonicalStatus::PendingPayment),
        ("WAIT_PRE_AUTH_CONFIRM", CanonicalStatus::PendingPayment),
        ("WAIT_SELLER_SEND_GOODS", CanonicalStatus::Paid),
        ("PAID_FORBID_CONSIGN", CanonicalStatus::Paid),
        ("SELLER_CONSIGNED_PART", CanonicalStatus::PartlyShipped),
        ("WAIT_BUYER_CONFIRM_GOODS", CanonicalStatus::Shipped),
        ("TRADE_BUYER_SIGNED", CanonicalStatus::Delivered),
        ("TRADE_FINISHED", CanonicalStatus::Completed),
        ("TRADE_CLOSED", CanonicalStatus::Cancelled),
        ("TRADE_CLOSED_BY_TAOBAO", CanonicalStatus::Cancelled),
    ];
    assert_eq!(TradeStatus::ALL.len(), expect.len());
    for (code, c) in expect {
        assert_eq!(TradeStatus::parse(code).unwrap().target(), c, "{code}");
    }
    for s in ["ALL_WAIT_PAY", "ALL_CLOSED", "trade_finished", ""] {
        assert!(TradeStatus::parse(s).is_none(), "{s}");
    }
    let refunds = [
        ("NO_REFUND", RefundState::None),
        ("WAIT_SELLER_AGREE", RefundState::Requested),
        ("WAIT_BUYER_RETURN_GOODS", RefundState::Requested),
        ("WAIT_SELLER_CONFIRM_GOODS", RefundState::Requested),
        ("SELLER_REFUSE_BUYER", RefundState::Rejected),
        ("CLOSED", RefundState::Rejected),
        ("SUCCESS", RefundState::Refunded),
    ];
    assert_eq!(RefundStatus::ALL.len(), refunds.len());
    for (code, r) in refunds {
        assert_eq!(RefundStatus::parse(code).unwrap().target(), r, "{code}");
    }
}

#[test]
fn taobao_app_call_limited_is_throttling_and_auth_codes_are_auth() {
    let a = adapter(ChannelKind::Taobao).unwrap();
    let body = fixture("taobao/error-app-call-limited.json");
    assert!(matches!(
        a.parse_list(&body),
        Err(ApiError::Throttled { .. })
    ));
    assert!(matches!(
        a.parse_detail(&body),
        Err(ApiError::Throttled { .. })
    ));
    let e = a
        .api_error(br#"{"error_response":{"code":27,"msg":"Invalid session"}}"#)
        .unwrap();
    assert!(matches!(e, ApiError::Auth { .. }));
    let e = a
        .api_error(br#"{"error_response":{"code":15,"msg":"Remote service error","sub_code":"isv.trade-not-exist"}}"#)
        .unwrap();
    assert!(matches!(e, ApiError::Api { .. }));
    assert!(
        a.api_error(&fixture("taobao/trade-fullinfo-get-response.json"))
            .is_none()
    );
}

#[test]
fn taobao_requests_are_signed_top_style() {
    use orderhub_channels::taobao::top_sign;
    let a = adapter(ChannelKind::Taobao).unwrap();
    let req = a.detail_request("3900000000000000001", &creds(), now());
    assert_eq!(
        (req.method, req.path_and_query.as_str()),
        ("POST", "/router/rest")
    );
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("timestamp").as_deref(), Some("2024-11-11 20:00:00"));
    assert_eq!(get("method").as_deref(), Some("taobao.trade.fullinfo.get"));
    assert_eq!(get("session").as_deref(), Some("tok-1"));
    // UPPER(MD5(secret + sorted k+v + secret)), worked out by hand below.
    let mut sorted: Vec<_> = pairs.iter().filter(|(k, _)| k != "sign").cloned().collect();
    sorted.sort();
    let plain: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
    let expected = orderhub_channels::sign::md5_hex(format!("s3cret{plain}s3cret").as_bytes())
        .to_ascii_uppercase();
    assert_eq!(get("sign").unwrap(), expected);
    assert_eq!(top_sign(&pairs, "s3cret"), expected);
    // sign_method=hmac: HMAC-MD5 keyed with the secret over the same concatenation.
    let mut h = pairs.clone();
    h.retain(|(k, _)| k != "sign");
    for p in h.iter_mut() {
        if p.0 == "sign_method" {
            p.1 = "hmac".into();
        }
    }
    assert_ne!(top_sign(&h, "s3cret"), expected);
    assert_eq!(top_sign(&h, "s3cret").len(), 32);
}

// ---- Pinduoduo ------------------------------------------------------------------------------

fn pdd_with(
    path: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<ChannelOrder, Rejected> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(path)).unwrap();
    edit(&mut v["order_info_get_response"]["order_info"]);
    adapter(ChannelKind::Pdd)
        .unwrap()
        .parse_order(&serde_json::to_vec(&v).unwrap())
}

#[test]
fn pdd_order_information_reads_yuan_numbers_ciphertexts_and_district_town() {
    let k = ChannelKind::Pdd;
    let o = order(k, "pdd/order-information-get-response.json");
    assert_eq!(o.external_order_id, "241111-513924381790012");
    assert_eq!(
        (o.channel_status.as_str(), o.canonical),
        ("1", CanonicalStatus::Paid)
    );
    assert_eq!(o.lines.len(), 2);
    assert_eq!(o.lines[0].title, "Apple® AirPods Pro™ 🎧 预售款");
    assert_eq!(o.lines[0].external_line_id, "1212345678");
    assert_eq!(o.lines[1].sku, "CABLE-1M");
    assert_eq!(o.lines[1].unit_price, d("29.90"));
    assert_eq!(o.lines[1].paid_amount, d("59.80"));
    let a = o.amounts;
    assert_eq!(
        (a.goods_total, a.shipping_fee, a.discount, a.paid),
        (d("258.80"), d("0"), d("20.00"), d("238.80"))
    );
    assert!(o.receiver.receiver_masked, "ciphertexts are masked values");
    assert_eq!(
        o.receiver.oaid.as_deref(),
        Some("1dc2f6e0b2a74c8d9f5b3c1e7a6d4b20")
    );
    assert_eq!(o.receiver.district.as_deref(), Some("南山区"));
    assert_eq!(o.created_at.to_rfc3339(), "2024-11-11T00:03:09+08:00");
    assert_eq!(o.buyer_message.as_deref(), Some("请尽快发货😊"));
    assert_eq!(o.seller_memo.as_deref(), Some("老客户"));
    assert!(o.shippable);
    let draft = o.to_draft(&ShopId::parse("pdd-1").unwrap()).unwrap();
    assert_eq!(create(draft).unwrap().lines.len(), 2);
}

#[test]
fn pdd_increment_list_and_masks_when_ciphertexts_are_empty() {
    let page = adapter(ChannelKind::Pdd)
        .unwrap()
        .parse_list(&fixture(
            "pdd/order-number-list-increment-get-response.json",
        ))
        .unwrap();
    assert!(page.has_next);
    assert_eq!(page.total, None, "use_has_next: no total");
    assert_eq!(page.orders.len(), 2);
    assert_eq!(page.orders[0].canonical, CanonicalStatus::Shipped);
    let b = &page.orders[1];
    assert_eq!(b.canonical, CanonicalStatus::Delivered);
    assert_eq!(b.receiver.name.expose(), "李*");
    assert!(b.receiver.receiver_masked);
    assert_eq!(
        (b.amounts.paid, b.amounts.shipping_fee),
        (d("65.70"), d("6"))
    );
}

#[test]
fn pdd_group_risk_presale_refund_and_cancel_edges() {
    let k = ChannelKind::Pdd;
    let o = order(k, "pdd/edge-group-not-formed.json");
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, false));
    assert_eq!(
        o.not_shippable_reason.as_deref(),
        Some("the group has not formed yet")
    );
    let o = pdd_with("pdd/edge-group-not-formed.json", |v| {
        v["group_status"] = 2.into()
    })
    .unwrap();
    assert_eq!(
        o.not_shippable_reason.as_deref(),
        Some("the group failed (the order will be refunded)")
    );

    let o = order(k, "pdd/edge-risk-review.json");
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, false));
    assert_eq!(
        o.not_shippable_reason.as_deref(),
        Some("under risk review (risk_control_status 1)")
    );
    assert_eq!(
        o.receiver.phone.expose(),
        "*******5678",
        "under review: masks only"
    );

    let o = order(k, "pdd/edge-presale-deposit.json");
    let p = o.presale.as_ref().unwrap();
    assert_eq!(
        (p.deposit, p.final_payment, p.final_paid),
        (d("50"), d("249"), false)
    );
    assert!(!o.shippable);
    create(o.to_draft(&ShopId::parse("pdd-1").unwrap()).unwrap()).unwrap();
    let o = pdd_with("pdd/edge-presale-deposit.json", |v| {
        v["step_order_info"]["step_trade_status"] = 2.into()
    })
    .unwrap();
    assert!(o.shippable && o.presale.unwrap().final_paid);

    let o = order(k, "pdd/edge-refunded-after-shipping.json");
    assert_eq!(o.canonical, CanonicalStatus::Shipped);
    assert_eq!(o.lines[0].refund, RefundState::Refunded);
    assert_eq!(o.lines[0].refund_raw.as_deref(), Some("10"));

    let o = order(k, "pdd/edge-cancelled-after-payment.json");
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment && o.shippable);
    let o = pdd_with("pdd/order-information-get-response.json", |v| {
        v["confirm_status"] = 2.into()
    })
    .unwrap();
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);

    let o = order(k, "pdd/edge-missing-optional.json");
    assert_eq!(o.canonical, CanonicalStatus::Paid);
    assert_eq!(o.amounts.paid, d("19.90"), "a yuan string is read too");
    assert!(o.paid_at.is_none() && o.buyer_message.is_none() && o.shippable);
    assert_eq!(o.modified_at, o.created_at);
    assert!(o.receiver.name.is_empty());

    let e = reject(k, &fixture("pdd/bad-unknown-status.json"));
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "unknown_status",
            Some("order_info_get_response.order_info.order_status")
        )
    );
    for (field, bad) in [
        ("refund_status", 9),
        ("confirm_status", 3),
        ("group_status", 7),
        ("risk_control_status", 2),
        ("trade_type", 5),
    ] {
        let e = pdd_with("pdd/order-information-get-response.json", |v| {
            v[field] = bad.into()
        })
        .unwrap_err();
        assert_eq!(
            (e.rule, e.field.unwrap()),
            (
                "unknown_status",
                format!("order_info_get_response.order_info.{field}")
            )
        );
    }
}

#[test]
fn pdd_yuan_numbers_convert_exactly() {
    for (n, want) in [
        (serde_json::json!(0.07), "0.07"),
        (serde_json::json!(0.1), "0.10"),
        (serde_json::json!(0.3), "0.30"),
        (serde_json::json!(19.9), "19.90"),
        (serde_json::json!(1234567.89), "1234567.89"),
        (serde_json::json!(100), "100.00"),
        (serde_json::json!("88.80"), "88.80"),
    ] {
        let o = pdd_with("pdd/edge-missing-optional.json", |v| {
            v["pay_amount"] = n.clone();
            v["item_list"][0]["goods_price"] = n.clone();
        })
        .unwrap();
        assert_eq!(o.amounts.paid, d(want), "{n}");
        assert_eq!(o.lines[0].unit_price, d(want), "{n}");
    }
    let e = pdd_with("pdd/edge-missing-optional.json", |v| {
        v["pay_amount"] = "19,90".into()
    })
    .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "bad_value",
            Some("order_info_get_response.order_info.pay_amount")
        )
    );
}

#[test]
fn pdd_every_status_maps() {
    use orderhub_channels::pdd::{
        ConfirmStatus, GroupStatus, OrderStatus, RefundStatus, RiskControlStatus,
    };
    let expect = [
        ("1", CanonicalStatus::Paid),
        ("2", CanonicalStatus::Shipped),
        ("3", CanonicalStatus::Delivered),
    ];
    assert_eq!(OrderStatus::ALL.len(), expect.len());
    for (code, c) in expect {
        assert_eq!(OrderStatus::parse(code).unwrap().target(), c);
    }
    assert!(OrderStatus::parse("0").is_none() && OrderStatus::parse("5").is_none());
    let refunds = [
        ("1", RefundState::None),
        ("2", RefundState::Requested),
        ("3", RefundState::Requested),
        ("4", RefundState::Refunded),
    ];
    assert_eq!(RefundStatus::ALL.len(), refunds.len());
    for (code, r) in refunds {
        assert_eq!(RefundStatus::parse(code).unwrap().target(), r);
    }
    assert_eq!(ConfirmStatus::ALL.len(), 3);
    assert_eq!(GroupStatus::ALL.len(), 3);
    assert!(GroupStatus::parse("1").unwrap().target());
    assert!(!GroupStatus::parse("0").unwrap().target());
    assert!(RiskControlStatus::parse("1").unwrap().target());
}

#[test]
fn pdd_errors_throttling_and_auth() {
    let a = adapter(ChannelKind::Pdd).unwrap();
    let body = fixture("pdd/error-throttled.json");
    assert!(matches!(
        a.parse_list(&body),
        Err(ApiError::Throttled { .. })
    ));
    assert!(matches!(
        a.api_error(
            r#"{"error_response":{"error_code":10019,"error_msg":"access_token已过期"}}"#
                .as_bytes()
        ),
        Some(ApiError::Auth { .. })
    ));
    assert!(matches!(
        a.api_error(
            r#"{"error_response":{"error_code":50001,"error_msg":"业务服务错误"}}"#.as_bytes()
        ),
        Some(ApiError::Api { .. })
    ));
    assert!(
        a.api_error(&fixture("pdd/order-information-get-response.json"))
            .is_none()
    );
    // The request: a form POST signed UPPER(MD5(secret + sorted k+v + secret)).
    let req = a.detail_request("241111-1", &creds(), now());
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let mut sorted: Vec<_> = pairs.iter().filter(|(k, _)| k != "sign").cloned().collect();
    sorted.sort();
    let plain: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
    let sign = pairs.iter().find(|(k, _)| k == "sign").unwrap().1.clone();
    assert_eq!(
        sign,
        orderhub_channels::sign::md5_hex(format!("s3cret{plain}s3cret").as_bytes())
            .to_ascii_uppercase()
    );
    assert!(plain.contains("typepdd.order.information.get"));
    assert!(plain.contains(&format!("timestamp{}", now().timestamp())));
}

// ---- JD POP ---------------------------------------------------------------------------------

fn jd_with(
    path: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<ChannelOrder, Rejected> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(path)).unwrap();
    edit(&mut v["jingdong_pop_order_get_responce"]["orderDetailInfo"]["orderInfo"]);
    adapter(ChannelKind::Jd)
        .unwrap()
        .parse_order(&serde_json::to_vec(&v).unwrap())
}

#[test]
fn jd_order_get_reads_responce_roots_camel_case_and_yuan_strings() {
    let k = ChannelKind::Jd;
    let o = order(k, "jd/pop-order-get-response.json");
    assert_eq!(o.external_order_id, "281046817987");
    assert_eq!(o.channel_shop_id.as_deref(), Some("10622317"));
    assert_eq!(
        (o.channel_status.as_str(), o.canonical),
        ("WAIT_SELLER_STOCK_OUT", CanonicalStatus::Paid)
    );
    assert_eq!(o.lines.len(), 2);
    assert_eq!(
        o.lines[0].title,
        "小米® Redmi Note 13 Pro 5G 手机 8+256GB 🔥"
    );
    assert_eq!(o.lines[0].sku, "REDMI-N13P-256");
    assert_eq!(
        o.lines[1].sku, "100008348542",
        "no outer SKU: the JD SKU id"
    );
    assert_eq!(o.lines[1].quantity, 2);
    assert_eq!(
        yuan(&o),
        ["4879.00", "0.00", "200.00", "4679.00"].map(String::from)
    );
    assert!(o.receiver.receiver_masked);
    assert_eq!(o.receiver.district.as_deref(), Some("五环内"));
    assert_eq!(o.receiver.town.as_deref(), Some("中关村街道"));
    assert_eq!(o.paid_at.unwrap().to_rfc3339(), "2024-11-11T00:04:30+08:00");
    assert_eq!(o.buyer_message.as_deref(), Some("周末送货🙏"));
    assert_eq!(o.seller_memo.as_deref(), Some("优先发"));
    assert!(o.buyer.id.is_some() && o.shippable);
    let draft = o.to_draft(&ShopId::parse("jd-1").unwrap()).unwrap();
    assert_eq!(create(draft).unwrap().lines.len(), 2);
}

#[test]
fn jd_search_page_and_edges() {
    let k = ChannelKind::Jd;
    let page = adapter(k)
        .unwrap()
        .parse_list(&fixture("jd/pop-order-search-response.json"))
        .unwrap();
    assert_eq!(page.total, Some(2));
    assert_eq!(page.orders.len(), 2);
    assert_eq!(page.orders[0].canonical, CanonicalStatus::Shipped);
    assert_eq!(page.orders[1].canonical, CanonicalStatus::Completed);
    assert_eq!(
        yuan(&page.orders[1]),
        ["59.70", "6.00", "0.00", "65.70"].map(String::from)
    );

    let o = order(k, "jd/edge-locked.json");
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, false));
    assert!(o.not_shippable_reason.unwrap().contains("LOCKED"));
    let o = order(k, "jd/edge-paused.json");
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, false));

    let o = order(k, "jd/edge-cancelled-after-payment.json");
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment);

    let o = order(k, "jd/edge-duplicate-sku-lines.json");
    let ids: Vec<_> = o
        .lines
        .iter()
        .map(|l| l.external_line_id.as_str())
        .collect();
    assert_eq!(ids, ["100040404040", "100040404040-1"]);
    assert_eq!(o.lines[1].unit_price, d("0"));

    let o = order(k, "jd/edge-missing-optional.json");
    assert_eq!(
        o.external_order_id, "281046817994",
        "a numeric orderId is read"
    );
    assert!(o.paid_at.is_none() && o.buyer_message.is_none() && o.shippable);
    assert_eq!(o.modified_at, o.created_at);
    assert!(o.receiver.name.is_empty());
    assert_eq!(o.amounts.paid, d("9.90"));

    let o = jd_with("jd/pop-order-get-response.json", |v| {
        v["orderEndTime"] = "1970-01-01 00:00:00".into();
        v["paymentConfirmTime"] = "0001-01-01 00:00:00".into();
    })
    .unwrap();
    assert!(o.paid_at.is_none(), "JD's unset markers are no time");

    let e = reject(k, &fixture("jd/bad-unknown-status.json"));
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "unknown_status",
            Some("jingdong_pop_order_get_responce.orderDetailInfo.orderInfo.orderState")
        )
    );
    let e = jd_with("jd/pop-order-get-response.json", |v| {
        v["orderPayment"] = "4,679".into()
    })
    .unwrap_err();
    assert_eq!(e.rule, "bad_value");
}

#[test]
fn jd_every_state_maps() {
    use orderhub_channels::jd::OrderState;
    let expect = [
        ("WAIT_SELLER_STOCK_OUT", CanonicalStatus::Paid),
        ("WAIT_SELLER_DELIVERY", CanonicalStatus::Paid),
        ("WAIT_SEND_CODE", CanonicalStatus::Paid),
        ("POP_ORDER_PAUSE", CanonicalStatus::Paid),
        ("LOCKED", CanonicalStatus::Paid),
        ("WAIT_GOODS_RECEIVE_CONFIRM", CanonicalStatus::Shipped),
        ("FINISHED_L", CanonicalStatus::Completed),
        ("TRADE_CANCELED", CanonicalStatus::Cancelled),
    ];
    assert_eq!(OrderState::ALL.len(), expect.len());
    for (code, c) in expect {
        assert_eq!(OrderState::parse(code).unwrap().target(), c, "{code}");
    }
    assert!(OrderState::parse("TRADE_CANCELLED").is_none());
    assert_eq!(
        orderhub_channels::jd::ALL_STATES.split(',').count(),
        OrderState::ALL.len()
    );
}

#[test]
fn jd_errors_and_signature() {
    let a = adapter(ChannelKind::Jd).unwrap();
    assert!(matches!(
        a.parse_list(&fixture("jd/error-throttled.json")),
        Err(ApiError::Throttled { .. })
    ));
    assert!(matches!(
        a.parse_detail(&fixture("jd/error-api-result-false.json")),
        Err(ApiError::Api { .. })
    ));
    assert!(matches!(
        a.api_error(br#"{"error_response":{"code":"19","en_desc":"Invalid access_token"}}"#),
        Some(ApiError::Auth { .. })
    ));
    assert!(
        a.api_error(&fixture("jd/pop-order-get-response.json"))
            .is_none()
    );
    let req = a.detail_request("281046817987", &creds(), now());
    assert_eq!(req.path_and_query, "/routerjson");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("timestamp").as_deref(),
        Some("2024-11-11 20:00:00.000+0800")
    );
    let biz: serde_json::Value = serde_json::from_str(&get("360buy_param_json").unwrap()).unwrap();
    assert_eq!(biz["order_id"], "281046817987");
    let mut sorted: Vec<_> = pairs.iter().filter(|(k, _)| k != "sign").cloned().collect();
    sorted.sort();
    let plain: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
    assert_eq!(
        get("sign").unwrap(),
        orderhub_channels::sign::md5_hex(format!("s3cret{plain}s3cret").as_bytes())
            .to_ascii_uppercase()
    );
}

// ---- Kuaishou -------------------------------------------------------------------------------

fn ks_with(
    path: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<ChannelOrder, Rejected> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(path)).unwrap();
    edit(&mut v["data"]);
    adapter(ChannelKind::Kuaishou)
        .unwrap()
        .parse_order(&serde_json::to_vec(&v).unwrap())
}

#[test]
fn kuaishou_detail_reads_fen_milliseconds_and_hidden_receivers() {
    let k = ChannelKind::Kuaishou;
    let o = order(k, "kuaishou/order-detail-response.json");
    assert_eq!(o.external_order_id, "2411110000000101");
    assert_eq!(
        (o.channel_status.as_str(), o.canonical),
        ("30", CanonicalStatus::Paid)
    );
    assert_eq!(o.lines.len(), 1);
    let l = &o.lines[0];
    assert_eq!(l.title, "【官方旗舰】Apple® AirPods Pro 无线耳机™ 🎧");
    assert_eq!((l.sku.as_str(), l.quantity), ("SKU-KS-1", 1));
    assert_eq!(
        (l.unit_price, l.paid_amount, l.discount),
        (d("1899.00"), d("1799.00"), d("100.00"))
    );
    assert_eq!(
        yuan(&o),
        ["1899.00", "0.00", "100.00", "1799.00"].map(String::from)
    );
    assert_eq!(o.created_at.to_rfc3339(), "2024-11-11T00:01:00+08:00");
    assert_eq!(o.paid_at.unwrap().to_rfc3339(), "2024-11-11T00:01:05+08:00");
    assert!(
        o.receiver.receiver_masked,
        "ciphertexts are not plain values"
    );
    assert_eq!(o.receiver.district.as_deref(), Some("武侯区"));
    assert_eq!(o.buyer_message.as_deref(), Some("请尽快发货😊"));
    assert_eq!(
        o.seller_memo.as_deref(),
        Some("优先发顺丰"),
        "the newest seller note"
    );
    assert!(o.shippable);
    create(o.to_draft(&ShopId::parse("ks-1").unwrap()).unwrap()).unwrap();
}

#[test]
fn kuaishou_cursor_list_pages_until_nomore() {
    let a = adapter(ChannelKind::Kuaishou).unwrap();
    let page = a
        .parse_list(&fixture("kuaishou/order-cursor-list-response.json"))
        .unwrap();
    assert!(page.has_next);
    assert_eq!(page.next_cursor.as_deref(), Some("MTczMTI5NzYwMDAwMA=="));
    assert_eq!(page.orders.len(), 2);
    assert_eq!(page.orders[0].canonical, CanonicalStatus::Shipped);
    assert_eq!(page.orders[1].canonical, CanonicalStatus::Completed);
    assert_eq!(
        yuan(&page.orders[1]),
        ["59.70", "6.00", "0.00", "65.70"].map(String::from)
    );
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("kuaishou/order-cursor-list-response.json")).unwrap();
    v["data"]["cursor"] = "nomore".into();
    let page = a.parse_list(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(!page.has_next && page.next_cursor.is_none());
    // The request: the cursor goes back in `param`, times in milliseconds, queryType 2.
    let (from, to) = window();
    let q = orderhub_channels::ListQuery {
        modified_from: from,
        modified_to: to,
        page: 2,
        page_size: 50,
        cursor: Some("abc".into()),
    };
    let req = a.list_request(&q, &creds(), now());
    assert_eq!(req.path_and_query, "/open/order/cursor/list");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let param: serde_json::Value = serde_json::from_str(&get("param")).unwrap();
    assert_eq!(param["cursor"], "abc");
    assert_eq!(param["queryType"], 2);
    assert_eq!(param["beginTime"], from.timestamp_millis());
    assert_eq!(get("timestamp"), now().timestamp_millis().to_string());
    // sign = md5(sorted k=v joined by & + "&signSecret=" + secret), lowercase hex.
    let mut sorted: Vec<_> = pairs.iter().filter(|(k, _)| k != "sign").cloned().collect();
    sorted.sort();
    let plain = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        get("sign"),
        orderhub_channels::sign::md5_hex(format!("{plain}&signSecret=s3cret").as_bytes())
    );
}

#[test]
fn kuaishou_presale_refund_cancel_risk_and_missing_edges() {
    let k = ChannelKind::Kuaishou;
    let o = order(k, "kuaishou/edge-presale-deposit.json");
    let p = o.presale.as_ref().unwrap();
    assert_eq!(
        (p.deposit, p.final_payment, p.final_paid),
        (d("50.00"), d("249.00"), false)
    );
    assert_eq!(
        p.final_payment_due.unwrap().to_rfc3339(),
        "2024-11-15T00:00:00+08:00"
    );
    assert!(!o.shippable);
    create(o.to_draft(&ShopId::parse("ks-1").unwrap()).unwrap()).unwrap();
    let o = ks_with("kuaishou/edge-presale-deposit.json", |v| {
        v["orderStepInfo"]["orderPaymentSteps"][1]["payStepStatus"] = 30.into()
    })
    .unwrap();
    assert!(o.shippable && o.presale.unwrap().final_paid);

    let o = order(k, "kuaishou/edge-refunded.json");
    assert_eq!(o.canonical, CanonicalStatus::Shipped);
    assert_eq!(
        o.lines[0].refund,
        RefundState::Refunded,
        "the newest refund counts"
    );
    assert_eq!(o.lines[0].refund_raw.as_deref(), Some("60"));

    let o = order(k, "kuaishou/edge-cancelled-after-payment.json");
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment);

    let o = order(k, "kuaishou/edge-risk.json");
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, false));
    assert!(o.not_shippable_reason.unwrap().contains("10001"));

    let o = order(k, "kuaishou/edge-missing-optional.json");
    assert_eq!(o.canonical, CanonicalStatus::PendingPayment);
    assert_eq!(o.amounts.paid, d("9.90"));
    assert!(o.paid_at.is_none() && o.buyer_message.is_none() && o.seller_memo.is_none());
    assert!(o.receiver.name.is_empty() && !o.receiver.receiver_masked);
    assert_eq!(o.modified_at, o.created_at);

    let e = reject(k, &fixture("kuaishou/bad-unknown-status.json"));
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("unknown_status", Some("data.orderBaseInfo.status"))
    );
    let e = ks_with("kuaishou/edge-refunded.json", |v| {
        v["orderRefundList"][0]["refundStatus"] = 99.into()
    })
    .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "unknown_status",
            Some("data.orderRefundList[0].refundStatus")
        )
    );
    // Fen must be whole numbers.
    let e = ks_with("kuaishou/order-detail-response.json", |v| {
        v["orderBaseInfo"]["totalFee"] = serde_json::json!(1799.5)
    })
    .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("bad_value", Some("data.orderBaseInfo.totalFee"))
    );
}

#[test]
fn kuaishou_every_status_maps_and_errors_classify() {
    use orderhub_channels::kuaishou::{OrderStatus, RefundStatus};
    let expect = [
        ("10", CanonicalStatus::PendingPayment),
        ("30", CanonicalStatus::Paid),
        ("40", CanonicalStatus::Shipped),
        ("50", CanonicalStatus::Delivered),
        ("70", CanonicalStatus::Completed),
        ("80", CanonicalStatus::Cancelled),
    ];
    assert_eq!(OrderStatus::ALL.len(), expect.len());
    for (code, c) in expect {
        assert_eq!(OrderStatus::parse(code).unwrap().target(), c);
    }
    assert!(OrderStatus::parse("0").is_none(), "0 未知 is refused");
    assert_eq!(RefundStatus::ALL.len(), 11);
    assert_eq!(
        RefundStatus::parse("60").unwrap().target(),
        RefundState::Refunded
    );
    assert_eq!(
        RefundStatus::parse("70").unwrap().target(),
        RefundState::Rejected
    );
    let a = adapter(ChannelKind::Kuaishou).unwrap();
    assert!(matches!(
        a.parse_list(&fixture("kuaishou/error-throttled.json")),
        Err(ApiError::Throttled { .. })
    ));
    assert!(matches!(
        a.api_error(br#"{"result":28,"error_msg":"access_token invalid"}"#),
        Some(ApiError::Auth { .. })
    ));
    // As quoted from real answers: an expired token (28), a revoked authorization (24, FAQ
    // K0006; read as throttling until the FAQ was found), a daily quota spent (K1008).
    assert!(matches!(
        a.api_error(r#"{"result":28,"code":"803000","msg":"鉴权失败","error_msg":"TOKEN过期","sub_code":"28","sub_msg":"TOKEN过期"}"#.as_bytes()),
        Some(ApiError::Auth { .. })
    ));
    assert!(matches!(
        a.api_error(br#"{"result":24,"error_msg":"AUTHORIZATION_REVOKED"}"#),
        Some(ApiError::Auth { .. })
    ));
    assert!(matches!(
        a.api_error(br#"{"result":1017,"error_msg":"[1017] exceed quota limit,[apiId:12;primaryUserId:34]"}"#),
        Some(ApiError::Throttled { .. })
    ));
    assert!(
        a.api_error(&fixture("kuaishou/order-detail-response.json"))
            .is_none()
    );
}

#[test]
fn kuaishou_pushes_are_aes_encrypted_events() {
    use orderhub_channels::kuaishou::{decrypt_push, encrypt_push};
    let a = adapter(ChannelKind::Kuaishou).unwrap();
    let plain = fixture("kuaishou/push-event-decrypted.json");
    let body = encrypt_push(&plain, &creds()).unwrap();
    assert_eq!(decrypt_push(&body, &creds()).unwrap(), plain);
    // Encrypted, parse_push refuses; opened, it reads the event.
    assert_eq!(a.parse_push(&[], &body).unwrap_err().rule, "encrypted");
    let m = a
        .parse_push(&[], &a.open_push(&body, &creds()).unwrap())
        .unwrap();
    assert_eq!(m.items[0].order_id, "2411110000000101");
    assert_eq!(m.items[0].event, PushEvent::OrderCreated);
    assert_eq!(m.items[0].raw_event, "kwaishop_order_addOrder");
    // createTime in the fixture is 2024-11-11 00:01 +08:00.
    let at = Utc.with_ymd_and_hms(2024, 11, 10, 16, 3, 0).unwrap();
    a.verify_push(&[], &body, &creds(), at, TOLERANCE).unwrap();
    let late = at + chrono::Duration::hours(1);
    assert_eq!(
        a.verify_push(&[], &body, &creds(), late, TOLERANCE)
            .unwrap_err()
            .rule,
        "stale_timestamp"
    );
    // Another app's event, junk, a bad key: refused.
    let mut other = creds();
    other.app_key = "another-app".into();
    assert_eq!(
        a.verify_push(&[], &body, &other, at, TOLERANCE)
            .unwrap_err()
            .rule,
        "bad_signature"
    );
    for junk in [&b""[..], b"not base64 !!", b"AAAA"] {
        assert_eq!(
            a.verify_push(&[], junk, &creds(), at, TOLERANCE)
                .unwrap_err()
                .rule,
            "bad_signature"
        );
    }
    let mut nokey = creds();
    nokey.message_key = "short".into();
    assert!(a.open_push(&body, &nokey).is_err());
    // A test ping without an order is acknowledged, not ingested.
    let m = a
        .parse_push(&[], br#"{"event":"kwaishop_order_addOrder","test":true}"#)
        .unwrap();
    assert!(m.is_test && m.items.is_empty());
}

// ---- Bad payloads (every adapter) -----------------------------------------------------------

#[test]
fn bad_payloads_are_refused_with_a_rule_never_a_panic() {
    let cases: [(ChannelKind, &str); 3] = [
        (ChannelKind::Douyin, "douyin/order-detail-response.json"),
        (ChannelKind::Wechat, "wechat/ec-order-get-response.json"),
        (
            ChannelKind::Youzan,
            "youzan/trade-get-demo-status-string.json",
        ),
    ];
    for (k, f) in cases {
        let good = fixture(f);
        let a = adapter(k).unwrap();
        assert_eq!(
            a.parse_order(&good[..good.len() / 2]).unwrap_err().rule,
            "truncated_json",
            "{k}"
        );
        assert_eq!(
            a.parse_order(b"<xml>").unwrap_err().rule,
            "malformed_json",
            "{k}"
        );
        assert_eq!(
            a.parse_order(b"{}").unwrap_err().rule,
            "missing_field",
            "{k}"
        );
        assert_eq!(
            a.parse_order(b"[1,2]").unwrap_err().rule,
            "wrong_type",
            "{k}"
        );
        // Every prefix of a real payload is refused or parsed, never a panic.
        for n in (0..good.len()).step_by(97) {
            let _ = a.parse_order(&good[..n]);
            let _ = a.parse_push(&[], &good[..n]);
        }
    }
    // Wrong type deep inside names the field and does not echo the value.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("wechat/ec-order-get-response.json")).unwrap();
    v["order"]["order_detail"]["delivery_info"]["address_info"]["tel_number"] =
        serde_json::json!({"x": "13912345678"});
    let e = reject(ChannelKind::Wechat, &serde_json::to_vec(&v).unwrap());
    assert_eq!(e.rule, "wrong_type");
    assert_eq!(
        e.field.as_deref(),
        Some("order.order_detail.delivery_info.address_info.tel_number")
    );
    assert!(!e.to_string().contains("13912345678"));
    // A bad amount is `bad_value`, naming the field.
    v = serde_json::from_slice(&fixture("wechat/ec-order-get-response.json")).unwrap();
    v["order"]["order_detail"]["price_info"]["order_price"] = serde_json::json!("10.5");
    let e = reject(ChannelKind::Wechat, &serde_json::to_vec(&v).unwrap());
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "bad_value",
            Some("order.order_detail.price_info.order_price")
        )
    );
}

/// The channels built in the second round: every prefix of a real-shaped payload is refused
/// (never a panic), and no refusal quotes a phone number planted in the payload.
const PREFIX_CASES: [(ChannelKind, &str, &str); 4] = [
    (
        ChannelKind::Taobao,
        "taobao/trade-fullinfo-get-response.json",
        "/trade_fullinfo_get_response/trade/receiver_mobile",
    ),
    (
        ChannelKind::Pdd,
        "pdd/order-information-get-response.json",
        "/order_info_get_response/order_info/receiver_phone",
    ),
    (
        ChannelKind::Jd,
        "jd/pop-order-get-response.json",
        "/jingdong_pop_order_get_responce/orderDetailInfo/orderInfo/consigneeInfo/mobile",
    ),
    (
        ChannelKind::Kuaishou,
        "kuaishou/order-detail-response.json",
        "/data/orderAddress/mobile",
    ),
];

#[test]
fn every_prefix_of_a_payload_is_refused_and_no_refusal_quotes_a_phone() {
    const PHONE: &str = "13912345678";
    for (k, f, phone_at) in PREFIX_CASES {
        let a = adapter(k).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&fixture(f)).unwrap();
        *v.pointer_mut(phone_at).unwrap() = PHONE.into();
        let good = serde_json::to_vec_pretty(&v).unwrap();
        let o = a.parse_order(&good).unwrap_or_else(|e| panic!("{k}: {e}"));
        assert_eq!(o.receiver.phone.expose(), PHONE, "{k}");
        for n in 0..good.len() {
            let e = a
                .parse_order(&good[..n])
                .expect_err("a prefix is not an order");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(PHONE), "{k}: prefix {n}: {shown}");
            let _ = a.parse_push(&[], &good[..n]);
            let _ = a.parse_list(&good[..n]);
        }
        assert_eq!(
            a.parse_order(&good[..good.len() / 2]).unwrap_err().rule,
            "truncated_json",
            "{k}"
        );
        for junk in [&b"<xml>"[..], b"", b"null", b"[1,2]", b"{}", b"\xff\xfe"] {
            let e = a.parse_order(junk).expect_err("junk is not an order");
            assert!(!e.rule.is_empty(), "{k}");
        }
        // The phone number where an object belongs, and an object where the phone belongs.
        let mut w = v.clone();
        *w.pointer_mut(phone_at).unwrap() = serde_json::json!({"x": PHONE});
        let e = a.parse_order(&serde_json::to_vec(&w).unwrap()).unwrap_err();
        assert_eq!(e.rule, "wrong_type", "{k}");
        assert!(!format!("{e} {e:?}").contains(PHONE), "{k}");
        // Every top-level block taken out in turn: a rejection or a parse, never a panic.
        let (parent, _) = phone_at.rsplit_once('/').unwrap();
        let keys: Vec<String> = v
            .pointer(parent)
            .and_then(|o| o.as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            let mut w = v.clone();
            w.pointer_mut(parent)
                .and_then(|o| o.as_object_mut())
                .unwrap()
                .remove(&key);
            if let Err(e) = a.parse_order(&serde_json::to_vec(&w).unwrap()) {
                assert!(!format!("{e} {e:?}").contains(PHONE), "{k}: without {key}");
            }
        }
    }
}

/// Amounts beyond `Decimal`'s range once multiplied by a count or added up: these inputs panicked
/// with "Multiplication overflowed" / "Subtraction overflowed" / "Addition overflowed" in
/// `wire::line` and `wire::amounts` before amounts were bounded (found while fuzzing the adapters,
/// scripts/fuzz-channels.sh).
#[test]
fn amounts_too_large_for_arithmetic_are_refused_not_a_panic() {
    const BIG: &str = "79228162514264337593543950335"; // Decimal::MAX
    let neg = format!("-{BIG}");
    /// What to replace in the fixture, and with which field set to a huge amount.
    type Edits = &'static [(&'static str, &'static str)];
    let cases: [(ChannelKind, &str, Edits); 5] = [
        // unit price × 2 overflows.
        (
            ChannelKind::Taobao,
            "taobao/trade-fullinfo-get-response.json",
            &[(r#""price": "1899.00""#, "price"), (r#""num": 1,"#, "num")],
        ),
        // goods total − a huge negative payment overflows.
        (
            ChannelKind::Taobao,
            "taobao/edge-cancelled-after-payment.json",
            &[(r#""payment": "39.90""#, "payment-")],
        ),
        (
            ChannelKind::Jd,
            "jd/edge-cancelled-after-payment.json",
            &[(r#""orderPayment": "1899.00""#, "orderPayment-")],
        ),
        (
            ChannelKind::Pdd,
            "pdd/edge-missing-optional.json",
            &[(r#""pay_amount": "19.90""#, "pay_amount-")],
        ),
        // goods total + a huge shipping fee overflows.
        (
            ChannelKind::Youzan,
            "youzan/edge-partly-refunded.json",
            &[(r#""post_fee": "6.00""#, "post_fee")],
        ),
    ];
    for (kind, path, edits) in cases {
        let mut body = String::from_utf8(fixture(path)).unwrap();
        for (from, to) in edits {
            assert!(body.contains(from), "{path}: {from}");
            let to = match *to {
                "num" => r#""num": 2,"#.to_string(),
                f if f.ends_with('-') => format!(r#""{}": "{neg}""#, f.trim_end_matches('-')),
                f => format!(r#""{f}": "{BIG}""#),
            };
            body = body.replacen(from, &to, 1);
        }
        let e = reject(kind, body.as_bytes());
        assert_eq!(e.rule, "bad_value", "{path}: {e}");
        assert!(e.to_string().contains("at most"), "{path}: {e}");
        let a = adapter(kind).unwrap();
        assert!(a.parse_detail(body.as_bytes()).is_err(), "{path}");
    }
    // The bound itself: 10¹² yuan is read, a fen more is not.
    let at = |v: &str| {
        let body = String::from_utf8(fixture("taobao/edge-cancelled-after-payment.json"))
            .unwrap()
            .replacen(r#""payment": "39.90""#, &format!(r#""payment": "{v}""#), 1);
        adapter(ChannelKind::Taobao)
            .unwrap()
            .parse_order(body.as_bytes())
            .map(|o| o.amounts.paid)
    };
    assert_eq!(at("1000000000000").unwrap(), d("1000000000000"));
    assert_eq!(at("1000000000000.01").unwrap_err().rule, "bad_value");
}

// ---- Signatures -----------------------------------------------------------------------------

/// A Base64 AES-256 key (Kuaishou's message key); other channels do not use it.
const MESSAGE_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_MESSAGE_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

fn creds() -> ShopCredentials {
    let mut c = ShopCredentials::new("app-key-1", "s3cret");
    c.access_token = "tok-1".into();
    c.message_key = MESSAGE_KEY.into();
    c
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 11, 11, 12, 0, 0).unwrap()
}

const TOLERANCE: Duration = Duration::from_secs(300);

#[test]
fn signed_pushes_verify_and_tampering_or_a_wrong_secret_fails() {
    for kind in SIM_CHANNELS {
        let a = adapter(kind).unwrap();
        let o = order(
            kind,
            match kind {
                ChannelKind::Douyin => "douyin/edge-partly-refunded.json",
                ChannelKind::Wechat => "wechat/edge-multiline-partly-refunded.json",
                ChannelKind::Taobao => "taobao/edge-partly-refunded.json",
                ChannelKind::Pdd => "pdd/edge-refunded-after-shipping.json",
                ChannelKind::Jd => "jd/pop-order-get-response.json",
                ChannelKind::Kuaishou => "kuaishou/edge-refunded.json",
                _ => "youzan/edge-partly-refunded.json",
            },
        );
        let p = sim::signed_push(kind, &o, &creds(), now()).unwrap();
        let mut headers = p.headers.clone();
        headers.extend(p.query.clone());
        a.verify_push(&headers, &p.body, &creds(), now(), TOLERANCE)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let opened = a.open_push(&p.body, &creds()).unwrap();
        let m = a.parse_push(&headers, &opened).unwrap();
        assert_eq!(m.items[0].order_id, o.external_order_id, "{kind}");

        let mut tampered = p.body.clone();
        let at = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
        tampered[at] = if tampered[at] == b'9' {
            b'8'
        } else {
            tampered[at] + 1
        };
        let e = a.verify_push(&headers, &tampered, &creds(), now(), TOLERANCE);
        // WeChat signs the query, not the body: its body can only be protected in safe mode.
        if kind != ChannelKind::Wechat {
            assert_eq!(e.unwrap_err().rule, "bad_signature", "{kind}");
        }
        let mut wrong = creds();
        wrong.secret = "other".into();
        wrong.message_key = OTHER_MESSAGE_KEY.into();
        assert_eq!(
            a.verify_push(&headers, &p.body, &wrong, now(), TOLERANCE)
                .unwrap_err()
                .rule,
            "bad_signature",
            "{kind}"
        );
    }
}

#[test]
fn signed_pushes_outside_the_tolerance_are_stale() {
    for (kind, f) in [
        (ChannelKind::Taobao, "taobao/edge-partly-refunded.json"),
        (ChannelKind::Pdd, "pdd/edge-refunded-after-shipping.json"),
        (ChannelKind::Jd, "jd/pop-order-get-response.json"),
        (ChannelKind::Kuaishou, "kuaishou/edge-refunded.json"),
    ] {
        let o = order(kind, f);
        let p = sim::signed_push(kind, &o, &creds(), now()).unwrap();
        let a = adapter(kind).unwrap();
        let mut h = p.headers.clone();
        h.extend(p.query.clone());
        for skew in [-301i64, 301] {
            let at = now() + chrono::Duration::seconds(skew);
            let e = a
                .verify_push(&h, &p.body, &creds(), at, TOLERANCE)
                .unwrap_err();
            assert_eq!(e.rule, "stale_timestamp", "{kind} {skew}");
        }
        a.verify_push(
            &h,
            &p.body,
            &creds(),
            now() + chrono::Duration::seconds(299),
            TOLERANCE,
        )
        .unwrap();
    }
}

#[test]
fn wechat_push_outside_the_tolerance_is_stale() {
    let o = order(ChannelKind::Wechat, "wechat/ec-order-get-response.json");
    let p = sim::signed_push(ChannelKind::Wechat, &o, &creds(), now()).unwrap();
    let later = now() + chrono::Duration::seconds(301);
    let e = adapter(ChannelKind::Wechat)
        .unwrap()
        .verify_push(&p.query, &p.body, &creds(), later, TOLERANCE)
        .unwrap_err();
    assert_eq!(e.rule, "stale_timestamp");
}

// ---- Against the simulators over TCP --------------------------------------------------------

const SIM_CHANNELS: [ChannelKind; 7] = [
    ChannelKind::Taobao,
    ChannelKind::Jd,
    ChannelKind::Kuaishou,
    ChannelKind::Pdd,
    ChannelKind::Douyin,
    ChannelKind::Wechat,
    ChannelKind::Youzan,
];

fn window() -> (DateTime<chrono::FixedOffset>, DateTime<chrono::FixedOffset>) {
    let cn = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    (
        cn.with_ymd_and_hms(2024, 11, 10, 0, 0, 0).unwrap(),
        cn.with_ymd_and_hms(2024, 11, 13, 0, 0, 0).unwrap(),
    )
}

#[tokio::test]
async fn pulling_pages_through_every_order_exactly_once() {
    for kind in SIM_CHANNELS {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 57, 7))
            .await
            .unwrap();
        let (from, to) = window();
        let got = pull_window(
            adapter(kind).unwrap().as_ref(),
            &HttpClient::new(),
            &url,
            &creds(),
            from,
            to,
            10,
            Utc::now,
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let served = handle.orders();
        assert_eq!(got.len(), served.len(), "{kind}");
        let ids: HashSet<_> = got.iter().map(|o| o.external_order_id.clone()).collect();
        assert_eq!(ids.len(), served.len(), "{kind}: no duplicates");
        for s in &served {
            let g = got
                .iter()
                .find(|o| o.external_order_id == s.external_order_id)
                .unwrap();
            assert_eq!(g.canonical, s.canonical, "{kind}");
            assert_eq!(g.channel_status, s.channel_status, "{kind}");
            assert_eq!(g.amounts, s.amounts, "{kind}");
            assert_eq!(g.modified_at, s.modified_at, "{kind}");
            assert_eq!(g.lines.len(), s.lines.len(), "{kind}");
            assert_eq!(g.lines[0].title, s.lines[0].title, "{kind}");
            assert_eq!(g.receiver.phone, s.receiver.phone, "{kind}");
            // Generated orders add up, so the domain takes every one as a draft.
            create(g.to_draft(&ShopId::parse("s1").unwrap()).unwrap())
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
        // Same seed, same orders.
        let (_, again) = sim::spawn(kind, SimSettings::new(creds(), 57, 7))
            .await
            .unwrap();
        assert_eq!(again.orders(), served, "{kind}");
    }
}

#[tokio::test]
async fn a_modified_order_shows_up_in_the_next_window_with_a_newer_version() {
    for kind in SIM_CHANNELS {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 5, 3))
            .await
            .unwrap();
        let id = handle.orders()[0].external_order_id.clone();
        let before = handle.orders()[0].modified_at;
        let body = serde_json::json!({"external_order_id": id, "canonical": "cancelled", "bump_secs": 3600});
        let (status, _) = HttpClient::new()
            .call(
                "POST",
                &format!("{url}/_sim/orders"),
                "application/json",
                &[],
                body.to_string().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        let from = before + chrono::Duration::seconds(1800);
        let to = before + chrono::Duration::seconds(7200);
        let got = pull_window(
            adapter(kind).unwrap().as_ref(),
            &HttpClient::new(),
            &url,
            &creds(),
            from,
            to,
            10,
            Utc::now,
        )
        .await
        .unwrap();
        assert_eq!(got.len(), 1, "{kind}");
        assert_eq!(got[0].external_order_id, id);
        assert_eq!(got[0].canonical, CanonicalStatus::Cancelled);
        assert!(got[0].modified_at > before);
    }
}

/// The detail answer follows the order: asked before and after the channel changes it, it says
/// what the order is now (the simulator keeps each order's rendered answer until it changes).
#[tokio::test]
async fn an_order_detail_asked_again_after_a_change_shows_the_change() {
    for kind in SIM_CHANNELS {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 5, 3))
            .await
            .unwrap();
        let a = adapter(kind).unwrap();
        let http = HttpClient::new();
        let detail = |id: String| {
            let (a, http, url) = (&a, &http, &url);
            async move {
                let req = a.detail_request(&id, &creds(), Utc::now());
                let (_, body) = http.send(url, &req).await.unwrap();
                a.parse_detail(&body).unwrap()
            }
        };
        let first = handle.orders()[0].clone();
        let id = first.external_order_id.clone();
        let before = detail(id.clone()).await;
        assert_eq!(before.canonical, first.canonical, "{kind}");
        assert_eq!(
            detail(id.clone()).await.modified_at,
            before.modified_at,
            "{kind}"
        );
        let target = if first.canonical == CanonicalStatus::Cancelled {
            CanonicalStatus::Completed
        } else {
            CanonicalStatus::Cancelled
        };
        let changed = handle.set_status(&id, target).unwrap();
        let after = detail(id).await;
        assert_eq!(after.canonical, changed.canonical, "{kind}");
        assert_ne!(after.canonical, before.canonical, "{kind}");
        assert!(after.modified_at > before.modified_at, "{kind}");
    }
}

#[tokio::test]
async fn throttling_is_the_channels_own_error_and_recognised() {
    for kind in SIM_CHANNELS {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 30, 1))
            .await
            .unwrap();
        handle.knobs.set(Knobs {
            throttle_per_sec: 1.0,
            ..Knobs::default()
        });
        let (from, to) = window();
        let mut throttled = false;
        for _ in 0..5 {
            match pull_window(
                adapter(kind).unwrap().as_ref(),
                &HttpClient::new(),
                &url,
                &creds(),
                from,
                to,
                5,
                Utc::now,
            )
            .await
            {
                Err(ApiError::Throttled { .. }) => throttled = true,
                Err(e) => panic!("{kind}: {e}"),
                Ok(_) => {}
            }
        }
        assert!(throttled, "{kind}");
        assert!(handle.stats.snapshot().throttled > 0);
    }
}

#[tokio::test]
async fn wrong_credentials_get_the_channels_auth_error() {
    for kind in SIM_CHANNELS {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 3, 1))
            .await
            .unwrap();
        let mut bad = creds();
        bad.secret = "nope".into();
        bad.access_token = "nope".into();
        let (from, to) = window();
        let e = pull_window(
            adapter(kind).unwrap().as_ref(),
            &HttpClient::new(),
            &url,
            &bad,
            from,
            to,
            5,
            Utc::now,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ApiError::Auth { .. }), "{kind}: {e:?}");
        assert_eq!(handle.stats.snapshot().auth_failures, 1);
    }
}

#[tokio::test]
async fn every_channel_has_an_adapter_and_a_simulator() {
    for k in ChannelKind::ALL {
        assert_eq!(adapter(k).unwrap().kind(), k);
        sim::spawn(k, SimSettings::new(creds(), 1, 1))
            .await
            .unwrap_or_else(|e| panic!("{k}: {e}"));
    }
}

#[tokio::test]
async fn injected_errors_are_transport_errors() {
    let (url, handle) = sim::spawn(ChannelKind::Douyin, SimSettings::new(creds(), 3, 1))
        .await
        .unwrap();
    handle.knobs.set(Knobs {
        error_rate: 1.0,
        ..Knobs::default()
    });
    let (from, to) = window();
    let e = pull_window(
        adapter(ChannelKind::Douyin).unwrap().as_ref(),
        &HttpClient::new(),
        &url,
        &creds(),
        from,
        to,
        5,
        Utc::now,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ApiError::Transport(_)));
}

/// A webhook receiver that verifies and records what the simulator pushes to it.
#[tokio::test]
async fn the_simulator_pushes_signed_messages_that_verify() {
    for kind in SIM_CHANNELS {
        let (url, _handle) = sim::spawn(kind, SimSettings::new(creds(), 4, 9))
            .await
            .unwrap();
        let seen: Arc<Mutex<Vec<Result<String, String>>>> = Arc::default();
        let seen2 = seen.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen2.clone();
                async move {
                    let mut h: Vec<(String, String)> = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    h.extend(
                        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned(),
                    );
                    let a = adapter(kind).unwrap();
                    let r = a
                        .verify_push(&h, &body, &creds(), Utc::now(), TOLERANCE)
                        .and_then(|_| a.open_push(&body, &creds()))
                        .and_then(|opened| a.parse_push(&h, &opened))
                        .map(|m| m.items[0].order_id.clone())
                        .map_err(|e| e.rule.to_string());
                    let ok = r.is_ok();
                    seen.lock().push(r);
                    if ok {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::UNAUTHORIZED
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = HttpClient::new();
        let cmd = serde_json::json!({"url": hook, "count": 3});
        let (status, body) = http
            .call(
                "POST",
                &format!("{url}/_sim/push"),
                "application/json",
                &[],
                cmd.to_string().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            answer["statuses"],
            serde_json::json!([200, 200, 200]),
            "{kind}"
        );
        assert!(seen.lock().iter().all(Result::is_ok), "{kind}");
        let cmd = serde_json::json!({
            "url": hook, "count": 1, "secret": "wrong", "message_key": OTHER_MESSAGE_KEY,
        });
        let (_, body) = http
            .call(
                "POST",
                &format!("{url}/_sim/push"),
                "application/json",
                &[],
                cmd.to_string().into_bytes(),
            )
            .await
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["statuses"], serde_json::json!([401]), "{kind}");
        assert_eq!(
            seen.lock().last().cloned(),
            Some(Err("bad_signature".to_string()))
        );
    }
}

// ---------------------------------------------------------------- write-back

/// The channel's own code for orderhub's `sf`, as each simulator must record it.
fn sf_code(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Taobao => "SF",
        ChannelKind::Jd => "467",
        ChannelKind::Pdd => "44",
        ChannelKind::Douyin => "shunfeng",
        ChannelKind::Kuaishou => "5",
        ChannelKind::Wechat => "SF",
        ChannelKind::Youzan => "7",
        ChannelKind::Custom => unreachable!("the custom channel's codes come from its mapping"),
    }
}

fn shipment(id: &str, carrier: &str, tracking: &str) -> Shipment {
    Shipment {
        external_order_id: id.to_string(),
        carrier: carrier.to_string(),
        tracking_no: tracking.to_string(),
        line_ids: None,
    }
}

/// Sends a ship call and reads its answer.
async fn ship(kind: ChannelKind, url: &str, s: &Shipment) -> Result<(), ApiError> {
    let a = adapter(kind).unwrap();
    let req = a.ship_request(s, &creds(), Utc::now())?;
    let (_, body) = HttpClient::new().send(url, &req).await?;
    a.parse_ship_ack(&body)
}

fn shippable(orders: &[ChannelOrder]) -> Vec<ChannelOrder> {
    orders
        .iter()
        .filter(|o| o.canonical == CanonicalStatus::Paid && o.shippable)
        .cloned()
        .collect()
}

#[tokio::test]
async fn shipping_writes_back_with_the_channels_carrier_code_idempotently() {
    for kind in SIM_CHANNELS {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 60, 5))
            .await
            .unwrap();
        let ready = shippable(&handle.orders());
        assert!(ready.len() >= 2, "{kind}: not enough paid orders");
        let o = &ready[0];
        let s = shipment(&o.external_order_id, "sf", "SF1400000001");
        ship(kind, &url, &s)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(
            handle.shipments(),
            vec![(
                o.external_order_id.clone(),
                sf_code(kind).to_string(),
                "SF1400000001".to_string()
            )],
            "{kind}"
        );
        // The same shipment again is a success, recorded once.
        ship(kind, &url, &s)
            .await
            .unwrap_or_else(|e| panic!("{kind} repeat: {e}"));
        assert_eq!(handle.shipments().len(), 1, "{kind}");
        // A different tracking number on the shipped order is the channel's refusal.
        let other = shipment(&o.external_order_id, "sf", "SF1400000002");
        let e = ship(kind, &url, &other).await.unwrap_err();
        assert!(matches!(e, ApiError::Api { .. }), "{kind}: {e:?}");
        // An order the channel does not know.
        let e = ship(kind, &url, &shipment("999000111", "sf", "SF1"))
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Api { .. }), "{kind}: {e:?}");
        assert_eq!(handle.shipments().len(), 1, "{kind}");

        // A later pull sees the order shipped, modified after it was.
        let cn = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let n = Utc::now().with_timezone(&cn);
        let pulled = pull_window(
            adapter(kind).unwrap().as_ref(),
            &HttpClient::new(),
            &url,
            &creds(),
            n - chrono::Duration::minutes(5),
            n + chrono::Duration::minutes(5),
            20,
            Utc::now,
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let got = pulled
            .iter()
            .find(|p| p.external_order_id == o.external_order_id)
            .unwrap_or_else(|| panic!("{kind}: the shipped order is not in the pull"));
        assert_eq!(got.canonical, CanonicalStatus::Shipped, "{kind}");
        assert!(got.modified_at > o.modified_at, "{kind}");
    }
}

#[tokio::test]
async fn unknown_carriers_and_bad_shipments_are_refused_without_a_call() {
    for kind in SIM_CHANNELS {
        let (_url, handle) = sim::spawn(kind, SimSettings::new(creds(), 5, 5))
            .await
            .unwrap();
        let a = adapter(kind).unwrap();
        let id = handle.orders()[0].external_order_id.clone();
        for carrier in ["cainiao", "acme", "", "SF"] {
            let e = a
                .ship_request(&shipment(&id, carrier, "SF1"), &creds(), Utc::now())
                .unwrap_err();
            assert_eq!(e.rule, "unknown_carrier", "{kind} {carrier:?}");
        }
        for (id, tracking) in [
            ("", "SF1"),
            (id.as_str(), ""),
            (id.as_str(), "SF 1"),
            ("1'--", "SF1"),
        ] {
            let e = a
                .ship_request(&shipment(id, "sf", tracking), &creds(), Utc::now())
                .unwrap_err();
            assert_eq!(e.rule, "bad_value", "{kind}");
        }
        assert_eq!(handle.stats.snapshot().calls, 0, "{kind}");
        for body in [
            &b""[..],
            b"not json",
            b"{}",
            b"[]",
            b"{\"code\":\"x\"",
            b"null",
        ] {
            assert!(a.parse_ship_ack(body).is_err(), "{kind}: {body:?}");
        }
        // Every orderhub carrier either maps or is refused as unknown, never anything else.
        for carrier in orderhub_channels::ship::CARRIERS {
            if let Err(e) = a.ship_request(&shipment(&id, carrier, "X1"), &creds(), Utc::now()) {
                assert_eq!(e.rule, "unknown_carrier", "{kind} {carrier}");
            }
        }
    }
}

#[tokio::test]
async fn failed_and_throttled_ship_calls_are_errors_and_a_retry_succeeds() {
    for kind in SIM_CHANNELS {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 60, 6))
            .await
            .unwrap();
        let o = shippable(&handle.orders()).remove(0);
        let s = shipment(&o.external_order_id, "zto", "ZT7700001");
        handle.knobs.set(Knobs {
            fail_ship: true,
            ..Knobs::default()
        });
        let e = ship(kind, &url, &s).await.unwrap_err();
        assert!(matches!(e, ApiError::Api { .. }), "{kind}: {e:?}");
        assert!(handle.shipments().is_empty(), "{kind}");
        handle.knobs.set(Knobs {
            throttle_per_sec: 0.001,
            ..Knobs::default()
        });
        let mut throttled = false;
        for _ in 0..3 {
            match ship(kind, &url, &s).await {
                Err(ApiError::Throttled { .. }) => throttled = true,
                Ok(()) => {}
                Err(e) => panic!("{kind}: {e:?}"),
            }
        }
        assert!(throttled, "{kind}");
        handle.knobs.set(Knobs::default());
        ship(kind, &url, &s)
            .await
            .unwrap_or_else(|e| panic!("{kind} retry: {e}"));
        assert_eq!(handle.shipments().len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn partial_shipments_go_by_line_where_the_channel_takes_lines() {
    for kind in SIM_CHANNELS {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 80, 7))
            .await
            .unwrap();
        let a = adapter(kind).unwrap();
        if !matches!(kind, ChannelKind::Taobao | ChannelKind::Youzan) {
            // Whole orders only (Kuaishou and PDD orders carry one SKU anyway).
            let o = shippable(&handle.orders()).remove(0);
            let mut s = shipment(&o.external_order_id, "yto", "YT5500001");
            s.line_ids = Some(vec![o.lines[0].external_line_id.clone()]);
            let e = a.ship_request(&s, &creds(), Utc::now()).unwrap_err();
            assert_eq!(e.rule, "partial_unsupported", "{kind}");
            continue;
        }
        let Some(o) = shippable(&handle.orders())
            .into_iter()
            .find(|o| o.lines.len() >= 2)
        else {
            panic!("{kind}: no multi-line paid order");
        };
        let mut s = shipment(&o.external_order_id, "yto", "YT5500001");
        s.line_ids = Some(vec![o.lines[0].external_line_id.clone()]);
        let mut empty = s.clone();
        empty.line_ids = Some(Vec::new());
        assert_eq!(
            a.ship_request(&empty, &creds(), Utc::now())
                .unwrap_err()
                .rule,
            "bad_value"
        );
        ship(kind, &url, &s)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let now_shipped = handle
            .orders()
            .into_iter()
            .find(|x| x.external_order_id == o.external_order_id)
            .unwrap();
        assert_eq!(
            now_shipped.canonical,
            CanonicalStatus::PartlyShipped,
            "{kind}"
        );
        let rest: Vec<String> = o.lines[1..]
            .iter()
            .map(|l| l.external_line_id.clone())
            .collect();
        let mut s2 = shipment(&o.external_order_id, "yto", "YT5500002");
        s2.line_ids = Some(rest);
        ship(kind, &url, &s2)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let done = handle
            .orders()
            .into_iter()
            .find(|x| x.external_order_id == o.external_order_id)
            .unwrap();
        assert_eq!(done.canonical, CanonicalStatus::Shipped, "{kind}");
        assert_eq!(handle.shipments().len(), 2, "{kind}");
    }
}

// ---------------------------------------------------------------- WeChat safe mode

/// WeChat's published WXBizMsgCrypt test vector (the official Java sample's
/// `testAesEncrypt`): EncodingAESKey, appid and the 16-byte random prefix fixed, the message
/// "我是中文abcd123" encrypts to exactly this Base64, and it decrypts back.
#[test]
fn wechat_safe_mode_matches_the_published_wxbizmsgcrypt_vector() {
    use orderhub_channels::wechat::{decrypt_safe_mode, encrypt_safe_mode};
    let mut c = ShopCredentials::new("wxb11529c136998cb6", "pamtest");
    c.message_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into();
    let cipher =
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";
    let random: [u8; 16] = *b"aaaabbbbccccdddd";
    assert_eq!(
        encrypt_safe_mode("我是中文abcd123".as_bytes(), &c, random).unwrap(),
        cipher
    );
    assert_eq!(
        decrypt_safe_mode(cipher, &c).unwrap(),
        "我是中文abcd123".as_bytes()
    );
    // The same ciphertext for another app is refused: it names the appid it was sent to.
    let mut other = c.clone();
    other.app_key = "wx0000000000000000".into();
    assert_eq!(
        decrypt_safe_mode(cipher, &other).unwrap_err().rule,
        "bad_signature"
    );
    // Another key does not decrypt it into anything.
    let mut wrong = c.clone();
    wrong.message_key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg".into();
    assert_eq!(
        decrypt_safe_mode(cipher, &wrong).unwrap_err().rule,
        "bad_signature"
    );
    // Truncated or not Base64: refused, never a panic.
    for bad in ["", "jn1L23DB", "!!!!", &cipher[..cipher.len() - 8]] {
        assert!(decrypt_safe_mode(bad, &c).is_err(), "{bad:?}");
    }
}

/// A shop configured with an EncodingAESKey receives safe-mode pushes: `msg_signature` over the
/// ciphertext is checked, the message opens with the shop's key and parses as the plain push
/// would; a changed ciphertext is refused by its signature.
#[tokio::test]
async fn wechat_safe_mode_pushes_verify_open_and_parse() {
    let mut c = ShopCredentials::new("wx5823bf96d3bd56c7", "QDG6eK");
    c.message_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into();
    let a = adapter(ChannelKind::Wechat).unwrap();
    let (_url, handle) = sim::spawn(ChannelKind::Wechat, SimSettings::new(c.clone(), 3, 3))
        .await
        .unwrap();
    let order = handle.orders()[0].clone();
    let p = sim::signed_push(ChannelKind::Wechat, &order, &c, Utc::now()).unwrap();
    let mut params = p.query.clone();
    params.extend(p.headers.clone());
    assert!(params.iter().any(|(k, _)| k == "msg_signature"));
    let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert!(body.get("Encrypt").is_some() && body.get("Event").is_none());
    a.verify_push(&params, &p.body, &c, Utc::now(), Duration::from_secs(300))
        .unwrap();
    // Not opened, it is refused as encrypted; opened, it is the order's push.
    assert_eq!(
        a.parse_push(&params, &p.body).unwrap_err().rule,
        "encrypted"
    );
    let opened = a.open_push(&p.body, &c).unwrap();
    let push = a.parse_push(&params, &opened).unwrap();
    assert_eq!(push.items[0].order_id, order.external_order_id);
    // A changed ciphertext fails msg_signature.
    let enc = body["Encrypt"].as_str().unwrap();
    let flipped = if enc.starts_with('A') { "B" } else { "A" };
    let tampered =
        serde_json::json!({"ToUserName": "gh_sim", "Encrypt": format!("{flipped}{}", &enc[1..])});
    let tampered = serde_json::to_vec(&tampered).unwrap();
    assert_eq!(
        a.verify_push(&params, &tampered, &c, Utc::now(), Duration::from_secs(300))
            .unwrap_err()
            .rule,
        "bad_signature"
    );
}

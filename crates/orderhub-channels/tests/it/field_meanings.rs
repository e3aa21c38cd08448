//! Issue 19, "Field meanings": payloads written from each channel's own field documentation
//! (SDK model docs, API doc metadata), cited per test and in SOURCES.md, not from our fixtures.

use orderhub_channels::{CanonicalStatus, ChannelKind, RefundState};
use orderhub_domain::ShopId;

use super::{create, d, fixture, order, reject, yuan};

fn accepted(o: &orderhub_channels::ChannelOrder) {
    let draft = o.to_draft(&ShopId::parse("s-1").unwrap()).unwrap();
    create(draft).unwrap_or_else(|e| panic!("{}: {e:?}", o.external_order_id));
}

/// fudiwei SDK `OrderSearchListResponse.cs`: `origin_amount` 商品现价 (unit), `sum_amount`
/// 商品现总价 (line total, fen); the SDK sample has item_num 2, origin 100, sum 200.
#[test]
fn douyin_origin_amount_is_the_unit_price_and_sum_amount_the_line_total() {
    let o = order(ChannelKind::Douyin, "douyin/doc-unit-price-quantity-2.json");
    let l = &o.lines[0];
    assert_eq!(
        (l.quantity, l.unit_price, l.paid_amount, l.discount),
        (2, d("1.00"), d("2.00"), d("0.00"))
    );
    assert_eq!(yuan(&o), ["2.00", "0.10", "0.00", "2.10"].map(String::from));
    accepted(&o);
    // The real SDK sample: unit 1.00 × 2 (it was read as 0.50 before).
    let s = order(ChannelKind::Douyin, "douyin/order-detail-response.json");
    assert_eq!((s.lines[0].unit_price, s.lines[0].quantity), (d("1.00"), 2));
    // A line total that is not unit × quantity is refused naming sum_amount.
    let body = String::from_utf8(fixture("douyin/doc-unit-price-quantity-2.json"))
        .unwrap()
        .replace("\"sum_amount\": \"200\"", "\"sum_amount\": \"100\"");
    let e = reject(ChannelKind::Douyin, body.as_bytes());
    assert_eq!(e.rule, "does_not_add_up");
    assert_eq!(
        e.field.as_deref(),
        Some("data.shop_order_detail.sku_order_list[0].sum_amount")
    );
}

/// TOP Order / OrderAmount doc (bububa/opentaobao `model/trade/OrderAmount.go`): `payment =
/// price * num + adjust_fee - discount_fee + post_fee`, the post fee included when the trade has
/// a single line; `total_fee = price * num + adjust_fee - discount_fee`.
#[test]
fn taobao_single_line_payment_without_divide_order_fee_gives_the_post_fee_back() {
    let o = order(
        ChannelKind::Taobao,
        "taobao/doc-single-line-payment-with-post-fee.json",
    );
    let l = &o.lines[0];
    assert_eq!(
        (l.quantity, l.unit_price, l.discount, l.paid_amount),
        (2, d("100.00"), d("5.00"), d("195.00"))
    );
    assert_eq!(
        yuan(&o),
        ["200.00", "10.00", "5.00", "205.00"].map(String::from)
    );
    accepted(&o);
    // A single line's payment below the post fee cannot be: refused naming the line's payment.
    let body = String::from_utf8(fixture("taobao/doc-single-line-payment-with-post-fee.json"))
        .unwrap()
        .replace("\"payment\": \"205.00\"\n", "\"payment\": \"5.00\"\n");
    let e = reject(ChannelKind::Taobao, body.as_bytes());
    assert_eq!(e.rule, "does_not_add_up");
    assert_eq!(
        e.field.as_deref(),
        Some("trade_fullinfo_get_response.trade.orders.order[0].payment")
    );
}

/// youzan.trade.get 4.0.0 field doc (shared/channel-samples/youzan/apidoc-youzan.trade.get.json):
/// `refund_order.oids` is `StructurizationTradeRefundItemDetail[]` with `oid`; the refund's own
/// `refund_state` is 1/10/20/30/40/50/60.
#[test]
fn youzan_refund_order_oids_are_objects_and_each_refund_has_its_own_state() {
    let o = order(ChannelKind::Youzan, "youzan/doc-refund-order-oids.json");
    let states: Vec<_> = o
        .lines
        .iter()
        .map(|l| {
            (
                l.external_line_id.as_str(),
                l.refund,
                l.refund_raw.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("1479000000000000021", RefundState::None, None),
            ("1479000000000000022", RefundState::Refunded, Some("60")),
        ]
    );
    accepted(&o);
    // Seller refused (10) and closed (50) are refusals; an unknown code is refused by name.
    for (code, want) in [
        ("10", RefundState::Rejected),
        ("50", RefundState::Rejected),
        ("20", RefundState::Requested),
    ] {
        let body = String::from_utf8(fixture("youzan/doc-refund-order-oids.json"))
            .unwrap()
            .replace("\"refund_state\": 60", &format!("\"refund_state\": {code}"));
        let o = orderhub_channels::adapter(ChannelKind::Youzan)
            .unwrap()
            .parse_order(body.as_bytes())
            .unwrap();
        assert_eq!(o.lines[1].refund, want, "refund_state {code}");
    }
    let body = String::from_utf8(fixture("youzan/doc-refund-order-oids.json"))
        .unwrap()
        .replace("\"refund_state\": 60", "\"refund_state\": 2");
    let e = reject(ChannelKind::Youzan, body.as_bytes());
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("unknown_status", Some("data.refund_order[0].refund_state"))
    );
}

/// youzan.trade.get 4.0.0 field doc: `order_tags.is_down_payment_pre` 是否定金预售,
/// `pay_info.phase_payments[]{phase, real_price, pay_start_time, pay_end_time}`; WAIT_BUYER_PAY
/// covers 定金待付、等待尾款支付开始、尾款待付.
#[test]
fn youzan_deposit_presale_is_a_presale() {
    let o = order(ChannelKind::Youzan, "youzan/doc-deposit-presale.json");
    assert_eq!(o.canonical, CanonicalStatus::PendingPayment);
    let p = o.presale.as_ref().expect("a deposit presale");
    assert_eq!(
        (p.deposit, p.final_payment, p.final_paid),
        (d("50.00"), d("249.00"), false)
    );
    assert_eq!(
        p.final_payment_due.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-03-11T00:00:00+08:00")
    );
    assert!(!o.shippable);
    accepted(&o);
    // Both phases paid: still a presale, final paid, shippable.
    let body = String::from_utf8(fixture("youzan/doc-deposit-presale.json"))
        .unwrap()
        .replace("\"WAIT_BUYER_PAY\"", "\"WAIT_SELLER_SEND_GOODS\"");
    let o = orderhub_channels::adapter(ChannelKind::Youzan)
        .unwrap()
        .parse_order(body.as_bytes())
        .unwrap();
    let p = o.presale.as_ref().unwrap();
    assert!(p.final_paid && o.shippable);
    // `is_preorder` (预订单) alone is not a deposit presale.
    let body = String::from_utf8(fixture("youzan/doc-deposit-presale.json"))
        .unwrap()
        .replace(
            "\"is_down_payment_pre\": true, \"is_preorder\": false",
            "\"is_down_payment_pre\": false, \"is_preorder\": true",
        );
    let o = orderhub_channels::adapter(ChannelKind::Youzan)
        .unwrap()
        .parse_order(body.as_bytes())
        .unwrap();
    assert!(o.presale.is_none());
}

/// The channel's own shipment, from each payload's documented fields (SOURCES.md § Channel
/// shipments): Douyin `logistics_info[].company` / `tracking_no` and WeChat `delivery_info.
/// delivery_product_info[].delivery_id` / `waybill_id` as the SDK samples write them; JD
/// `waybill` / `logisticsId` and Kuaishou `orderLogisticsInfo` present but empty before shipment;
/// Taobao `orders.order[].invoice_no` / `logistics_company`, PDD `tracking_number` /
/// `logistics_id`, Youzan `delivery_order[].dists[].express_info` as their docs name them.
#[test]
fn each_channel_reads_its_own_shipment_from_the_documented_fields() {
    let s = |o: &orderhub_channels::ChannelOrder| {
        o.shipment
            .as_ref()
            .map(|s| (s.carrier.clone(), s.tracking_no.clone()))
    };
    let douyin = order(ChannelKind::Douyin, "douyin/order-detail-response.json");
    assert_eq!(
        s(&douyin),
        Some(("shunfeng".to_string(), "3617355413".to_string()))
    );
    let wechat = order(ChannelKind::Wechat, "wechat/ec-order-get-response.json");
    assert_eq!(
        s(&wechat),
        Some(("STO".to_string(), "134654612313".to_string()))
    );
    // Empty before shipment: no shipment.
    for (kind, path) in [
        (ChannelKind::Jd, "jd/pop-order-get-response.json"),
        (ChannelKind::Kuaishou, "kuaishou/order-detail-response.json"),
        (
            ChannelKind::Taobao,
            "taobao/trade-fullinfo-get-response.json",
        ),
        (ChannelKind::Pdd, "pdd/order-information-get-response.json"),
        (ChannelKind::Youzan, "youzan/doc-refund-order-oids.json"),
    ] {
        assert_eq!(s(&order(kind, path)), None, "{kind}");
    }
    let with = |kind, path: &str, from: &str, to: &str| {
        let body = String::from_utf8(fixture(path))
            .unwrap()
            .replacen(from, to, 1);
        orderhub_channels::adapter(kind)
            .unwrap()
            .parse_order(body.as_bytes())
            .unwrap()
    };
    let jd = with(
        ChannelKind::Jd,
        "jd/pop-order-get-response.json",
        "\"waybill\": \"\",\n        \"logisticsId\": \"\"",
        "\"waybill\": \"JDVA00000001\",\n        \"logisticsId\": \"2087\"",
    );
    assert_eq!(s(&jd), Some(("2087".into(), "JDVA00000001".into())));
    let pdd = with(
        ChannelKind::Pdd,
        "pdd/order-information-get-response.json",
        "\"order_status\": 1,",
        "\"order_status\": 2, \"tracking_number\": \"YT1\", \"logistics_id\": 85,",
    );
    assert_eq!(s(&pdd), Some(("85".into(), "YT1".into())));
    // PDD writes 0 / "" before shipment: not a shipment.
    let none = with(
        ChannelKind::Pdd,
        "pdd/order-information-get-response.json",
        "\"order_status\": 1,",
        "\"order_status\": 1, \"tracking_number\": \"\", \"logistics_id\": 0,",
    );
    assert_eq!(s(&none), None);
    let tb = with(
        ChannelKind::Taobao,
        "taobao/trade-fullinfo-get-response.json",
        "\"refund_status\": \"NO_REFUND\",",
        "\"refund_status\": \"NO_REFUND\", \"logistics_company\": \"圆通速递\", \"invoice_no\": \"YT9\",",
    );
    assert_eq!(s(&tb), Some(("圆通速递".into(), "YT9".into())));
    // Youzan: a shipment still 待发货 (express_state 0) is none; a shipped one is.
    let dists =
        r#""dists": [{"dist_id": "D1", "express_info": {"express_id": 1, "express_no": "ST1"}}]"#;
    for (state, want) in [(0, None), (1, Some(("1".to_string(), "ST1".to_string())))] {
        let yz = with(
            ChannelKind::Youzan,
            "youzan/doc-refund-order-oids.json",
            "\"refund_order\": [",
            &format!(
                "\"delivery_order\": [{{\"express_state\": {state}, {dists}}}], \"refund_order\": ["
            ),
        );
        assert_eq!(s(&yz), want, "express_state {state}");
    }
    // Bounded: a tracking number is cut to 64 characters.
    let long = with(
        ChannelKind::Pdd,
        "pdd/order-information-get-response.json",
        "\"order_status\": 1,",
        &format!(
            "\"order_status\": 2, \"tracking_number\": \"{}\",",
            "9".repeat(500)
        ),
    );
    assert_eq!(long.shipment.unwrap().tracking_no.len(), 64);
}

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

/// The order's goods total, shipping fee, discount and paid amount, compared to the cent (a JSON
/// number such as PDD's `99.8` keeps its own scale).
fn money(o: &orderhub_channels::ChannelOrder) -> [rust_decimal::Decimal; 4] {
    let a = o.amounts;
    [a.goods_total, a.shipping_fee, a.discount, a.paid]
}

/// `path`'s fixture with `from` replaced by `to` (once, which must be there), parsed.
fn parse_replaced(
    kind: ChannelKind,
    path: &str,
    from: &str,
    to: &str,
) -> Result<orderhub_channels::ChannelOrder, orderhub_channels::Rejected> {
    let body = String::from_utf8(fixture(path)).unwrap();
    assert!(body.contains(from), "{path} has no {from}");
    orderhub_channels::adapter(kind)
        .unwrap()
        .parse_order(body.replacen(from, to, 1).as_bytes())
}

/// PDD order doc (`pdd.order.information.get`; lywzx/pdd-node-sdk `PddOrderInformationGet.ts`,
/// SchafferJ/open-pdd `pdd_order_information_get.rs`): yuan; `goods_price` 商品销售价格 (unit),
/// `goods_count`; `goods_amount` = goods_price × goods_count − 订单改价折扣金额; `discount_amount`
/// = platform + seller + 团长免单; `pay_amount` = goods_amount − discount_amount + postage + 服务费.
#[test]
fn pdd_goods_price_is_the_unit_price_and_pay_amount_includes_postage_and_service_fees() {
    let path = "pdd/doc-discounts-postage-service-fee.json";
    let o = order(ChannelKind::Pdd, path);
    let l = &o.lines[0];
    assert_eq!(
        (l.quantity, l.unit_price, l.paid_amount),
        (2, d("49.90"), d("99.80"))
    );
    // goods 99.80; shipping = postage 6.00 + 顺丰加价 10.00; discount = 3.00 platform + 5.00
    // seller; paid 107.80.
    assert_eq!(money(&o), ["99.80", "16.00", "8.00", "107.80"].map(d));
    assert_eq!(
        (o.canonical, o.shippable, o.presale.is_none()),
        (CanonicalStatus::Paid, true, true)
    );
    assert_eq!(o.lines[0].refund, RefundState::None);
    // Times are China time.
    assert_eq!(o.created_at.to_rfc3339(), "2024-03-08T20:15:00+08:00");
    assert_eq!(
        o.paid_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-03-08T20:15:30+08:00")
    );
    accepted(&o);
    // Without the service fee the same discounts and postage: paid 97.80.
    let body = String::from_utf8(fixture(path))
        .unwrap()
        .replace(
            "{ \"service_fee\": 10.0, \"service_name\": \"sf_express_fee\" }",
            "",
        )
        .replace("\"pay_amount\": 107.8", "\"pay_amount\": 97.8");
    let o = orderhub_channels::adapter(ChannelKind::Pdd)
        .unwrap()
        .parse_order(body.as_bytes())
        .unwrap();
    assert_eq!(money(&o), ["99.80", "6.00", "8.00", "97.80"].map(d));
    accepted(&o);
    // A seller's price change (改价 9.80) lowers goods_amount and pay_amount: the order's
    // discount covers it with the platform and seller discounts.
    let body = String::from_utf8(fixture(path))
        .unwrap()
        .replace("\"goods_amount\": 99.8", "\"goods_amount\": 90.0")
        .replace("\"order_change_amount\": 0", "\"order_change_amount\": 9.8")
        .replace("\"pay_amount\": 107.8", "\"pay_amount\": 98.0");
    let o = orderhub_channels::adapter(ChannelKind::Pdd)
        .unwrap()
        .parse_order(body.as_bytes())
        .unwrap();
    assert_eq!(o.lines[0].unit_price, d("49.90"));
    assert_eq!(money(&o), ["99.80", "16.00", "17.80", "98.00"].map(d));
    accepted(&o);
    // refund_status 4 before shipping = everything refunded: cancelled after payment.
    let o = parse_replaced(
        ChannelKind::Pdd,
        path,
        "\"refund_status\": 1,",
        "\"refund_status\": 4,",
    )
    .unwrap();
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment);
    assert_eq!(o.lines[0].refund, RefundState::Refunded);
    // A negative service fee is refused by name.
    let e = parse_replaced(
        ChannelKind::Pdd,
        path,
        "\"service_fee\": 10.0",
        "\"service_fee\": -10.0",
    )
    .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "bad_value",
            Some("order_info_get_response.order_info.service_fee_detail[0].service_fee")
        )
    );
}

/// JOS order doc as carried by qihang `JdOrder.java` / `JdOrderItem.java` (zeasin/qihangerp-oms):
/// `orderTotalPrice` 订单金额 (不减优惠，不加运费服务费税费), `orderSellerPrice` = total − 商家优惠,
/// `orderPayment` 应付款 = 货款 − 用户优惠 − 余额 + 运费 + 税费 + 服务费, `balanceUsed` 余额支付金额,
/// `jdPrice` SKU的京东价 (unit), `itemTotal` 数量; yuan strings.
#[test]
fn jd_balance_used_is_paid_money_and_jd_price_is_the_unit_price() {
    let path = "jd/doc-balance-coupon-freight.json";
    let o = order(ChannelKind::Jd, path);
    let got: Vec<_> = o
        .lines
        .iter()
        .map(|l| (l.quantity, l.unit_price, l.paid_amount))
        .collect();
    assert_eq!(
        got,
        [(2, d("59.90"), d("119.80")), (1, d("20.00"), d("20.00"))]
    );
    // goods 139.80 + freight 8.00 − (seller 10.00 + 京东券 5.00) = 132.80 = orderPayment 112.80
    // + balance 20.00 (the balance was read as a discount before).
    assert_eq!(money(&o), ["139.80", "8.00", "15.00", "132.80"].map(d));
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, true));
    assert_eq!(o.created_at.to_rfc3339(), "2024-05-20T09:30:00+08:00");
    assert_eq!(
        o.paid_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-05-20T09:31:02+08:00")
    );
    accepted(&o);
    // No balance: all of it through orderPayment.
    let o = parse_replaced(
        ChannelKind::Jd,
        path,
        "\"balanceUsed\": \"20.00\",\n        \"orderPayment\": \"112.80\"",
        "\"balanceUsed\": \"0.00\",\n        \"orderPayment\": \"132.80\"",
    )
    .unwrap();
    assert_eq!(money(&o), ["139.80", "8.00", "15.00", "132.80"].map(d));
    // A total that is not Σ jdPrice × itemTotal (as if jdPrice were the line total) is refused.
    let e = parse_replaced(
        ChannelKind::Jd,
        path,
        "\"orderTotalPrice\": \"139.80\"",
        "\"orderTotalPrice\": \"79.90\"",
    )
    .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        (
            "does_not_add_up",
            Some("jingdong_pop_order_get_responce.orderDetailInfo.orderInfo.orderTotalPrice")
        )
    );
    let e = parse_replaced(
        ChannelKind::Jd,
        path,
        "\"balanceUsed\": \"20.00\"",
        "\"balanceUsed\": \"-1.00\"",
    )
    .unwrap_err();
    assert_eq!(e.rule, "bad_value");
    // LOCKED (已锁定) and POP_ORDER_PAUSE stay paid but are not shippable.
    for state in ["LOCKED", "POP_ORDER_PAUSE"] {
        let o = parse_replaced(
            ChannelKind::Jd,
            path,
            "\"WAIT_SELLER_STOCK_OUT\"",
            &format!("\"{state}\""),
        )
        .unwrap();
        assert_eq!(
            (o.canonical, o.shippable),
            (CanonicalStatus::Paid, false),
            "{state}"
        );
    }
}

/// Kuaishou `open.order.detail` schema (crywolfx/kuaishou-merchant-open-api
/// `api.declaration.ts`, `OrderItemInfo` / `OrderDetailBaseInfo`): fen; `originalPrice`
/// 商品促销前单价, `price` 商品单价 (units), `num`; `expressFee` 运费, `discountFee` 促销减价;
/// `disableDeliveryReasonCode` "字段有值时不允许发货"; `orderNoteInfo` newest first; times in ms.
#[test]
fn kuaishou_original_price_is_the_unit_price_and_delivery_holds_block_shipping() {
    let path = "kuaishou/doc-promotion-express-quantity-3.json";
    let o = order(ChannelKind::Kuaishou, path);
    let l = &o.lines[0];
    assert_eq!(
        (l.quantity, l.unit_price, l.discount, l.paid_amount),
        (3, d("39.90"), d("12.00"), d("107.70"))
    );
    assert_eq!(money(&o), ["119.70", "6.00", "12.00", "113.70"].map(d));
    assert_eq!((o.canonical, o.shippable), (CanonicalStatus::Paid, true));
    assert_eq!(o.created_at.to_rfc3339(), "2024-05-14T09:30:00+08:00");
    assert_eq!(
        o.paid_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-05-14T09:31:05+08:00")
    );
    assert_eq!(o.seller_memo.as_deref(), Some("后备注：改发顺丰"));
    accepted(&o);
    // 履约拦截: 1 多人拼团 forming, 2 risk review after payment → not shippable.
    for code in ["1", "2"] {
        let o = parse_replaced(
            ChannelKind::Kuaishou,
            path,
            "\"disableDeliveryReasonCode\": []",
            &format!("\"disableDeliveryReasonCode\": [{code}]"),
        )
        .unwrap();
        assert!(!o.shippable, "code {code}");
        assert!(
            o.not_shippable_reason
                .as_deref()
                .is_some_and(|r| r.contains(&format!("disableDeliveryReasonCode {code}"))),
            "{:?}",
            o.not_shippable_reason
        );
    }
    // totalFee below expressFee cannot include it: refused by name.
    let e = parse_replaced(
        ChannelKind::Kuaishou,
        path,
        "\"totalFee\": 11370",
        "\"totalFee\": 500",
    )
    .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("does_not_add_up", Some("data.orderBaseInfo.totalFee"))
    );
}

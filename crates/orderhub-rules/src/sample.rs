//! Synthetic orders and rule sets for tests and `orderhub bench rules`: deterministic from a
//! number, so a run can be repeated.

use crate::{Rule, RuleKind};
use chrono::{TimeZone, Utc};
use orderhub_domain::ids::Channel;
use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, Receiver};
use orderhub_domain::{
    Currency, ExternalOrderId, Money, Order, OrderId, OrderKind, Personal, ShopId, Sku, TenantId,
};
use serde_json::json;

const CITIES: [(&str, &str); 6] = [
    ("浙江省", "杭州市"),
    ("新疆维吾尔自治区", "乌鲁木齐市"),
    ("广东省", "深圳市"),
    ("北京市", "北京市"),
    ("四川省", "成都市"),
    ("西藏自治区", "拉萨市"),
];
const CHANNELS: [&str; 4] = ["taobao", "jd", "pdd", "douyin"];

fn money(cents: u64) -> Money {
    Money::from_decimal(
        "amount",
        rust_decimal::Decimal::new(cents as i64, 2),
        Currency::CNY,
    )
    .unwrap_or(Money::ZERO)
}

/// Order number `i` of a synthetic history: its city, channel, goods and amounts vary with `i`.
pub fn order(i: u64) -> Order {
    let (province, city) = CITIES[(i % CITIES.len() as u64) as usize];
    let lines = (0..1 + i % 3)
        .map(|n| LineDraft {
            external_line_id: None,
            sku: Sku::parse(&format!("SKU-{}", (i + n) % 50)).unwrap_or_else(|_| unreachable!()),
            title: "goods".into(),
            quantity: 1 + ((i + n) % 4) as u32,
            unit_price: money(1_000 + (i * 7_919 % 90_000)),
            discount: Money::ZERO,
            paid_amount: None,
            is_kit: false,
        })
        .collect();
    let draft = OrderDraft {
        shop_id: ShopId::parse("shop-1").unwrap_or_else(|_| unreachable!()),
        channel: Channel::parse(CHANNELS[(i % 4) as usize]).unwrap_or_else(|_| unreachable!()),
        external_order_id: ExternalOrderId::parse(&format!("X{i}"))
            .unwrap_or_else(|_| unreachable!()),
        channel_status: None,
        channel_updated_at: None,
        buyer: Buyer {
            id: None,
            nick: Some(format!("buyer{}", i % 97)),
        },
        receiver: Receiver {
            name: Personal::new("收件人"),
            phone: Personal::new("13800000000"),
            province: province.into(),
            city: city.into(),
            district: None,
            town: None,
            detail: Personal::new("某路 1 号"),
            region_code: None,
        },
        lines,
        currency: Currency::CNY,
        goods_total: None,
        shipping_fee: Money::ZERO,
        discount: None,
        paid_amount: None,
        kind: OrderKind::Normal,
        is_test: i.is_multiple_of(50),
        is_employee: false,
        channel_created_at: None,
        promised_ship_by: None,
        invoice_profile_id: None,
        tags: vec![],
        buyer_message: i
            .is_multiple_of(5)
            .then(|| "请尽快发货，不要放发票".to_owned()),
        seller_memo: None,
    };
    let at = Utc
        .timestamp_opt(1_790_000_000 + i as i64, 0)
        .single()
        .unwrap_or_default();
    let id = OrderId::from_uuid(uuid::Uuid::from_u128(u128::from(i) + 1));
    let tenant = TenantId::parse("bench").unwrap_or_else(|_| unreachable!());
    Order::create(draft, id, tenant, at).unwrap_or_else(|e| unreachable!("sample order: {e}"))
}

/// `n` rules of the three kinds over every sort of fact, as a tenant might write them.
pub fn rules(n: usize) -> Vec<Rule> {
    let templates: [(RuleKind, &str, serde_json::Value); 8] = [
        (RuleKind::Hold, "paid_cents > {k}00000", json!({})),
        (
            RuleKind::Hold,
            "buyer_message.contains('发票') && quantity > {m}",
            json!({}),
        ),
        (
            RuleKind::Tag,
            "channel == 'jd' && paid_cents > {k}0000",
            json!({"tags": ["big-jd"]}),
        ),
        (
            RuleKind::Tag,
            "skus.exists(s, s == 'SKU-{k}')",
            json!({"tags": ["has-sku"]}),
        ),
        (
            RuleKind::Carrier,
            "city.contains('乌鲁木齐') && weight_kg > {m}.0",
            json!({"carrier": "ems"}),
        ),
        (
            RuleKind::Carrier,
            "province in ['西藏自治区', '青海省'] && line_count >= {m}",
            json!({"carrier": "ems"}),
        ),
        (
            RuleKind::Hold,
            "!is_test && kind == 'normal' && discount_cents > {k}000",
            json!({}),
        ),
        (
            RuleKind::Tag,
            "size(tags) == 0 && shop == 'shop-{k}'",
            json!({"tags": ["shop-k"]}),
        ),
    ];
    (0..n)
        .map(|i| {
            let (kind, cond, action) = &templates[i % templates.len()];
            let k = 1 + i % 97;
            let m = 1 + i % 5;
            Rule {
                id: format!("R{i}"),
                name: format!("rule {i}"),
                kind: *kind,
                condition: cond
                    .replace("{k}", &k.to_string())
                    .replace("{m}", &m.to_string()),
                action: action.clone(),
                priority: (i % 10) as i32,
                enabled: true,
            }
        })
        .collect()
}

//! Seeded generation of realistic orders: Chinese names and addresses, titles with emoji and
//! ®™, one to three lines, discounts, shipping fees. The same seed gives the same orders.

use chrono::{Duration, TimeZone};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::SimWire;
use crate::wire::china;
use crate::{
    Amounts, CanonicalStatus, ChannelBuyer, ChannelKind, ChannelLine, ChannelOrder,
    ChannelReceiver, RefundState,
};
use orderhub_domain::Personal;

const SURNAMES: &[&str] = &[
    "张", "王", "李", "赵", "陈", "刘", "杨", "黄", "周", "吴", "欧阳",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "洋", "艳", "子涵",
];
/// (province, city, district, town)
const PLACES: &[(&str, &str, &str, &str)] = &[
    ("浙江省", "杭州市", "西湖区", "文新街道"),
    ("广东省", "深圳市", "南山区", "粤海街道"),
    ("北京市", "北京市", "海淀区", "中关村街道"),
    ("上海市", "上海市", "浦东新区", "张江镇"),
    ("四川省", "成都市", "武侯区", "桂溪街道"),
    ("江苏省", "南京市", "鼓楼区", "湖南路街道"),
    ("湖北省", "武汉市", "洪山区", "关山街道"),
    ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", "燕儿窝街道"),
];
const STREETS: &[&str] = &[
    "文三路",
    "科技园南路",
    "丹棱街",
    "碧波路",
    "天府大道",
    "中山北路",
];
const TITLES: &[&str] = &[
    "【官方旗舰】Apple® AirPods Pro 无线耳机™",
    "🔥爆款🔥 纯棉短袖T恤 男女同款 夏季",
    "三只松鼠® 每日坚果 750g/30袋 🎁礼盒装",
    "小米 Redmi Note 13 Pro 5G 手机 8+256GB",
    "🍊赣南脐橙 5斤装 现摘现发 新鲜水果",
    "Nike 耐克 Air Force 1 ’07 运动鞋 白色",
    "好孩子 婴儿推车 可坐可躺 轻便折叠 👶",
    "SK-II 神仙水 230ml 护肤精华露™",
];
const MESSAGES: &[&str] = &["请尽快发货，谢谢😊", "发顺丰", "不要放快递柜 🙏", ""];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn price(rng: &mut StdRng) -> Decimal {
    // 9.90 ..= 899.00, two decimals.
    Decimal::new(rng.random_range(990..=89_900), 2)
}

/// `n` orders for `kind`, modified a minute apart from 2024-11-11 00:00 +08:00 on.
pub(crate) fn generate_orders(
    kind: ChannelKind,
    wire: &dyn SimWire,
    n: usize,
    seed: u64,
) -> Vec<ChannelOrder> {
    (0..n as u64)
        .map(|i| {
            one(
                kind,
                wire,
                i + 1,
                seed.wrapping_mul(1_000_003).wrapping_add(i),
            )
        })
        .collect()
}

pub(crate) fn one(kind: ChannelKind, wire: &dyn SimWire, serial: u64, seed: u64) -> ChannelOrder {
    let mut rng = StdRng::seed_from_u64(seed);
    let base = china()
        .with_ymd_and_hms(2024, 11, 11, 0, 0, 0)
        .single()
        .unwrap_or_else(|| chrono::Utc::now().with_timezone(&china()));
    let created_at = base + Duration::minutes(serial as i64);
    let canonical = *pick(
        &mut rng,
        &[
            CanonicalStatus::PendingPayment,
            CanonicalStatus::Paid,
            CanonicalStatus::Paid,
            CanonicalStatus::Paid,
            CanonicalStatus::Shipped,
            CanonicalStatus::Completed,
        ],
    );
    let paid_at =
        (canonical != CanonicalStatus::PendingPayment).then(|| created_at + Duration::seconds(40));
    let modified_at = created_at + Duration::seconds(50);
    let mut lines = Vec::new();
    for l in 0..rng.random_range(1..=3u32) {
        let unit_price = price(&mut rng);
        let quantity = rng.random_range(1..=3u32);
        let gross = unit_price * Decimal::from(quantity);
        let discount = if rng.random_bool(0.3) {
            (gross / Decimal::from(10)).round_dp(2)
        } else {
            Decimal::ZERO
        };
        let sku_serial = rng.random_range(10_000..99_999u32);
        lines.push(ChannelLine {
            external_line_id: format!("{}{l}", wire.order_id(serial)),
            sku: format!("SKU-{sku_serial}"),
            platform_sku_id: Some(format!("{}", 3_000_000 + sku_serial)),
            title: pick(&mut rng, TITLES).to_string(),
            quantity,
            unit_price,
            discount,
            paid_amount: gross - discount,
            refund: RefundState::None,
            refund_raw: None,
            refund_id: None,
        });
    }
    let goods_total: Decimal = lines
        .iter()
        .map(|l| l.unit_price * Decimal::from(l.quantity))
        .sum();
    let discount: Decimal = lines.iter().map(|l| l.discount).sum();
    let shipping_fee = if rng.random_bool(0.5) {
        Decimal::ZERO
    } else {
        Decimal::new(600, 2)
    };
    let (province, city, district, town) = *pick(&mut rng, PLACES);
    let name = format!("{}{}", pick(&mut rng, SURNAMES), pick(&mut rng, GIVEN));
    let phone = format!(
        "1{}{:08}",
        rng.random_range(30..=99u32),
        rng.random_range(0..100_000_000u32)
    );
    let detail = format!(
        "{}{}号{}栋{}室",
        pick(&mut rng, STREETS),
        rng.random_range(1..999u32),
        rng.random_range(1..30u32),
        rng.random_range(101..2505u32)
    );
    let message = pick(&mut rng, MESSAGES).to_string();
    let mut order = ChannelOrder {
        channel: kind,
        external_order_id: wire.order_id(serial),
        channel_shop_id: Some("77977".into()),
        channel_status: wire.status_code(canonical).to_string(),
        canonical,
        lines,
        receiver: ChannelReceiver {
            name: Personal::new(name),
            phone: Personal::new(phone),
            province: province.into(),
            city: city.into(),
            district: Some(district.into()),
            town: Some(town.into()),
            detail: Personal::new(detail),
            receiver_masked: false,
            oaid: None,
        },
        buyer: ChannelBuyer {
            id: Some(format!("buyer{}", rng.random_range(100_000..999_999u32))),
            nick: Some(format!("{}🌸", pick(&mut rng, GIVEN))),
        },
        amounts: Amounts {
            goods_total,
            shipping_fee,
            discount,
            paid: goods_total + shipping_fee - discount,
        },
        created_at,
        paid_at,
        modified_at,
        version: None,
        presale: None,
        shippable: true,
        not_shippable_reason: None,
        cancelled_after_payment: false,
        buyer_message: (!message.is_empty()).then_some(message),
        seller_memo: None,
        shipment: None,
    };
    wire.normalise(&mut order);
    order
}

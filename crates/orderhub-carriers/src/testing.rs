//! A sample waybill request for tests, examples and benchmarks (not real people).

use rust_decimal::Decimal;

use crate::{Address, Item, WaybillRequest};

pub fn request() -> WaybillRequest {
    request_for(uuid::Uuid::from_u128(
        0x0192_0000_0000_7000_8000_0000_0000_0001,
    ))
}

pub fn request_for(order_id: uuid::Uuid) -> WaybillRequest {
    WaybillRequest {
        order_id,
        tenant_id: "t1".into(),
        sender: Address {
            name: "仓库".into(),
            phone: "02100000000".into(),
            province: "上海市".into(),
            city: "上海市".into(),
            district: "青浦区".into(),
            detail: "华新镇1号".into(),
        },
        receiver: Address {
            name: "收件人".into(),
            phone: "13800000000".into(),
            province: "广东省".into(),
            city: "深圳市".into(),
            district: "南山区".into(),
            detail: "科技园路1号".into(),
        },
        parcels: 1,
        weight_kg: Decimal::new(125, 2),
        items: vec![Item {
            sku: "SKU-1".into(),
            title: "T恤".into(),
            quantity: 2,
        }],
        remark: None,
    }
}

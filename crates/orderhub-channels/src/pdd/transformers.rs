//! Pinduoduo (拼多多) wire shapes: `pdd.order.number.list.increment.get`,
//! `pdd.order.information.get`, the `error_response` envelope, and the push this crate receives.
//! Money is yuan as JSON **numbers** (`pay_amount: 19.9`; one SDK types them as strings), read as
//! [`Text`] so either parses to an exact `Decimal`; times `yyyy-MM-dd HH:mm:ss` (+08:00); the
//! codes (order_status, refund_status, confirm_status, group_status, risk_control_status) are
//! small integers.

use serde::{Deserialize, Serialize};

use crate::wire::{OptText, Text};

#[derive(Debug, Deserialize, Serialize)]
pub struct PddError {
    #[serde(default)]
    pub error_code: OptText,
    #[serde(default)]
    pub error_msg: Option<String>,
    #[serde(default)]
    pub sub_code: OptText,
    #[serde(default)]
    pub sub_msg: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ErrorEnvelope {
    #[serde(default)]
    pub error_response: Option<PddError>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct IncrementEnvelope {
    pub order_sn_increment_get_response: Option<IncrementResponse>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct IncrementResponse {
    /// Only with `use_has_next=true`.
    #[serde(default)]
    pub has_next: Option<bool>,
    #[serde(default)]
    pub total_count: OptText,
    #[serde(default)]
    pub order_sn_list: Option<Vec<OrderInfo>>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct InfoEnvelope {
    pub order_info_get_response: Option<InfoResponse>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct InfoResponse {
    pub order_info: OrderInfo,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OrderInfo {
    pub order_sn: Text,
    /// 1 待发货, 2 已发货待签收, 3 已签收.
    pub order_status: Text,
    /// 1 无售后或售后关闭, 2 售后处理中, 3 退款中, 4 退款成功.
    #[serde(default)]
    pub refund_status: OptText,
    /// The detailed after-sale code (0 none … 33); kept as the raw refund code.
    #[serde(default)]
    pub after_sales_status: OptText,
    /// 0 未成交, 1 已成交, 2 已取消.
    #[serde(default)]
    pub confirm_status: OptText,
    /// 0 拼团中, 1 已成团, 2 团失败.
    #[serde(default)]
    pub group_status: OptText,
    /// 0 normal, 1 under review (审核中).
    #[serde(default)]
    pub risk_control_status: OptText,
    /// 0 普通订单, 1 定金订单.
    #[serde(default)]
    pub trade_type: OptText,
    #[serde(default)]
    pub is_pre_sale: OptText,
    #[serde(default)]
    pub pre_sale_time: OptText,
    #[serde(default)]
    pub step_order_info: Option<StepOrderInfo>,
    #[serde(default)]
    pub created_time: OptText,
    #[serde(default)]
    pub pay_time: OptText,
    #[serde(default)]
    pub confirm_time: OptText,
    #[serde(default)]
    pub updated_at: OptText,
    /// 支付金额 (yuan) = goods_amount − discount_amount + postage + 服务费 (the doc's formula).
    pub pay_amount: Text,
    #[serde(default)]
    pub goods_amount: OptText,
    #[serde(default)]
    pub discount_amount: OptText,
    #[serde(default)]
    pub postage: OptText,
    /// 服务费明细 (`sf_express_fee` 顺丰加价, `install_fee` 上门安装, …): what the buyer paid for
    /// services on top of goods and postage; part of `pay_amount`.
    #[serde(default)]
    pub service_fee_detail: Option<Vec<ServiceFee>>,
    #[serde(default)]
    pub buyer_memo: Option<String>,
    #[serde(default)]
    pub remark: Option<String>,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    /// PDD's `town` is the district (区/县) level.
    #[serde(default)]
    pub town: Option<String>,
    /// Ciphertexts (`~…~`) while the order waits to ship and is not under review; else empty.
    #[serde(default)]
    pub receiver_name: Option<String>,
    #[serde(default)]
    pub receiver_phone: Option<String>,
    #[serde(default)]
    pub receiver_address: Option<String>,
    #[serde(default)]
    pub receiver_name_mask: Option<String>,
    #[serde(default)]
    pub receiver_phone_mask: Option<String>,
    #[serde(default)]
    pub receiver_address_mask: Option<String>,
    /// 合单 id: the handle of the receiver for merging shipments.
    #[serde(default)]
    pub open_address_id: Option<String>,
    #[serde(default)]
    pub item_list: Option<Vec<Item>>,
    /// 快递公司编号: PDD's numeric carrier id (0 or absent before shipment).
    #[serde(default)]
    pub logistics_id: OptText,
    /// 快递运单号.
    #[serde(default)]
    pub tracking_number: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct StepOrderInfo {
    /// 已付定金 (yuan).
    #[serde(default)]
    pub advanced_paid_fee: OptText,
    #[serde(default)]
    pub step_paid_fee: OptText,
    /// 0 定金未付尾款未付, 1 定金已付尾款未付, 2 定金已付尾款已付.
    #[serde(default)]
    pub step_trade_status: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Item {
    #[serde(default)]
    pub goods_id: OptText,
    #[serde(default)]
    pub sku_id: OptText,
    #[serde(default)]
    pub outer_id: Option<String>,
    #[serde(default)]
    pub outer_goods_id: Option<String>,
    pub goods_name: String,
    #[serde(default)]
    pub goods_spec: Option<String>,
    /// 商品销售价格: the **unit** price (yuan; 商品单件 单价：元 in the order list doc).
    pub goods_price: Text,
    /// 商品数量.
    pub goods_count: Text,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ServiceFee {
    /// 服务费金额 (yuan).
    #[serde(default)]
    pub service_fee: OptText,
    /// sf_express_fee, install_fee, store_install_fee, …
    #[serde(default)]
    pub service_name: Option<String>,
}

/// `content` of a push (**assumed** webhook form, see SOURCES.md § Pinduoduo).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct PushContent {
    pub tid: Text,
    #[serde(default)]
    pub mall_id: OptText,
}

//! Kuaishou shop (快手小店) wire shapes: `open.order.cursor.list`, `open.order.detail`, the
//! `{result, error_msg, code, msg, sub_code, sub_msg, data}` envelope, and the decrypted push.
//! One order is one SKU (`orderItemInfo` is an object). Money is integer **fen**; times are Unix
//! **milliseconds**; ids are numbers.

use serde::{Deserialize, Serialize};

use crate::wire::{OptText, Text};

#[derive(Debug, Deserialize, Serialize)]
pub struct Envelope<T> {
    /// 1 = success.
    #[serde(default)]
    pub result: OptText,
    #[serde(default)]
    pub error_msg: Option<String>,
    #[serde(default)]
    pub code: OptText,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub sub_code: OptText,
    #[serde(default)]
    pub sub_msg: Option<String>,
    pub data: Option<T>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListData {
    /// The next cursor; `"nomore"` when the window is exhausted.
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub page_size: OptText,
    #[serde(default)]
    pub begin_time: OptText,
    #[serde(default)]
    pub end_time: OptText,
    #[serde(default)]
    pub order_list: Option<Vec<OrderDetail>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetail {
    pub order_base_info: OrderBaseInfo,
    #[serde(default)]
    pub order_item_info: Option<OrderItemInfo>,
    /// Newest first.
    #[serde(default)]
    pub order_refund_list: Option<Vec<OrderRefund>>,
    #[serde(default)]
    pub order_address: Option<OrderAddress>,
    #[serde(default)]
    pub order_note: Option<OrderNote>,
    #[serde(default)]
    pub order_step_info: Option<OrderStepInfo>,
    /// The packages sent (`OrderLogisticsInfo`: expressNo 快递单号, expressCode 快递公司code).
    #[serde(default)]
    pub order_logistics_info: Option<Vec<OrderLogistics>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLogistics {
    #[serde(default)]
    pub express_no: OptText,
    #[serde(default)]
    pub express_code: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderBaseInfo {
    pub oid: Text,
    /// 10 待付款, 30 已付款, 40 已发货, 50 已签收, 70 订单成功, 80 订单失败 (0 未知).
    pub status: Text,
    #[serde(default)]
    pub buyer_open_id: Option<String>,
    #[serde(default)]
    pub buyer_nick: Option<String>,
    #[serde(default)]
    pub seller_open_id: Option<String>,
    #[serde(default)]
    pub seller_nick: Option<String>,
    /// 订单商品总价 (fen). **Read as** what the buyer pays, `expressFee` included (SOURCES.md).
    pub total_fee: Text,
    /// 运费 (fen).
    #[serde(default)]
    pub express_fee: OptText,
    /// 促销减价、折扣价格 (fen).
    #[serde(default)]
    pub discount_fee: OptText,
    #[serde(default)]
    pub pay_time: OptText,
    #[serde(default)]
    pub create_time: OptText,
    #[serde(default)]
    pub update_time: OptText,
    #[serde(default)]
    pub send_time: OptText,
    #[serde(default)]
    pub refund_time: OptText,
    /// The buyer's message.
    #[serde(default)]
    pub remark: Option<String>,
    /// 0 not presale, 1 presale (ships later).
    #[serde(default)]
    pub pre_sale: OptText,
    /// 10001 = 骗补订单, not to ship.
    #[serde(default)]
    pub risk_code: OptText,
    /// 履约拦截标 (hold): 1 多人拼团活动进行中, 2 支付后风控审核中; "字段有值时不允许发货".
    #[serde(default)]
    pub disable_delivery_reason_code: Option<Vec<Text>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemInfo {
    #[serde(default)]
    pub sku_id: OptText,
    #[serde(default)]
    pub rel_sku_id: OptText,
    /// The merchant's SKU code.
    #[serde(default)]
    pub sku_nick: Option<String>,
    #[serde(default)]
    pub goods_code: Option<String>,
    #[serde(default)]
    pub item_id: OptText,
    pub item_title: String,
    /// sku数量.
    pub num: Text,
    /// 商品促销前单价快照 (unit, fen).
    #[serde(default)]
    pub original_price: OptText,
    /// 商品单价快照 (unit, fen).
    pub price: Text,
    /// 折扣金额 (fen).
    #[serde(default)]
    pub discount_fee: OptText,
    #[serde(default)]
    pub order_item_id: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRefund {
    #[serde(default)]
    pub refund_id: OptText,
    #[serde(default)]
    pub refund_status: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderAddress {
    #[serde(default)]
    pub consignee: Option<String>,
    #[serde(default)]
    pub encrypted_consignee: Option<String>,
    #[serde(default)]
    pub desensitise_consignee: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub encrypted_mobile: Option<String>,
    #[serde(default)]
    pub desensitise_mobile: Option<String>,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub district: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub encrypted_address: Option<String>,
    #[serde(default)]
    pub desensitise_address: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderNote {
    /// 【废弃字段】 replaced by `orderNoteInfo`; oldest first.
    #[serde(default)]
    pub seller_note: Option<Vec<String>>,
    /// 卖家备注明细 (at most 30), newest first.
    #[serde(default)]
    pub order_note_info: Option<Vec<OrderNoteInfo>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderNoteInfo {
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub create_time: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStepInfo {
    #[serde(default)]
    pub order_payment_steps: Option<Vec<PaymentStep>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStep {
    /// 1 = 定金预售.
    #[serde(default)]
    pub pay_step_type: OptText,
    /// 1 deposit, 2 final.
    #[serde(default)]
    pub pay_step_no: OptText,
    /// 5 初始化, 10 待支付, 30 已支付, 80 已关闭, 90 已退款.
    #[serde(default)]
    pub pay_step_status: OptText,
    /// Fen.
    #[serde(default)]
    pub payment_fee: OptText,
    #[serde(default)]
    pub step_total_price: OptText,
    #[serde(default)]
    pub start_pay_time: OptText,
}

/// The decrypted push (official demo `EventDomainServiceImpl`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushEvent {
    #[serde(default)]
    pub event_id: OptText,
    #[serde(default)]
    pub biz_id: OptText,
    #[serde(default)]
    pub user_id: OptText,
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
    pub app_key: Option<String>,
    pub event: String,
    /// A JSON string.
    #[serde(default)]
    pub info: Option<String>,
    /// Unix milliseconds.
    #[serde(default)]
    pub create_time: OptText,
    #[serde(default)]
    pub test: Option<bool>,
}

//! Taobao/Tmall (TOP) wire shapes: `taobao.trades.sold.increment.get`,
//! `taobao.trade.fullinfo.get`, the TOP error envelope, and the push this crate receives.
//! TOP's JSON wraps every list in an object named after its element (`trades.trade[]`,
//! `orders.order[]`). Money is yuan as decimal strings; times `yyyy-MM-dd HH:mm:ss` (+08:00);
//! ids are numbers (`tid`, `oid`) with `tid_str` / `oid_str` twins, so they are [`Text`].

use serde::{Deserialize, Serialize};

use crate::wire::{OptText, Text};

/// `{"error_response": {"code": 7, "msg": "App Call Limited", "sub_code": …, "sub_msg": …}}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct TopError {
    #[serde(default)]
    pub code: OptText,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub sub_code: Option<String>,
    #[serde(default)]
    pub sub_msg: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ErrorEnvelope {
    #[serde(default)]
    pub error_response: Option<TopError>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct IncrementEnvelope {
    pub trades_sold_increment_get_response: Option<IncrementResponse>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct IncrementResponse {
    #[serde(default)]
    pub total_results: OptText,
    /// Only with `use_has_next=true`.
    #[serde(default)]
    pub has_next: Option<bool>,
    /// Absent when the window holds no trade.
    #[serde(default)]
    pub trades: Option<Trades>,
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Trades {
    #[serde(default)]
    pub trade: Vec<Trade>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct FullinfoEnvelope {
    pub trade_fullinfo_get_response: Option<FullinfoResponse>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct FullinfoResponse {
    pub trade: Trade,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Trade {
    pub tid: Text,
    #[serde(default)]
    pub tid_str: Option<String>,
    pub status: Text,
    /// `fixed`, `step` (分阶段 / presale), `cod`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub created: OptText,
    #[serde(default)]
    pub pay_time: OptText,
    #[serde(default)]
    pub modified: OptText,
    #[serde(default)]
    pub end_time: OptText,
    pub payment: Text,
    #[serde(default)]
    pub total_fee: OptText,
    #[serde(default)]
    pub post_fee: OptText,
    #[serde(default)]
    pub discount_fee: OptText,
    /// FRONT_NOPAID_FINAL_NOPAID, FRONT_PAID_FINAL_NOPAID, FRONT_PAID_FINAL_PAID.
    #[serde(default)]
    pub step_trade_status: Option<String>,
    /// What has been paid of a step (presale) trade so far.
    #[serde(default)]
    pub step_paid_fee: OptText,
    #[serde(default)]
    pub seller_nick: Option<String>,
    #[serde(default)]
    pub buyer_nick: Option<String>,
    #[serde(default)]
    pub buyer_open_uid: Option<String>,
    #[serde(default)]
    pub buyer_message: Option<String>,
    #[serde(default)]
    pub seller_memo: Option<String>,
    #[serde(default)]
    pub receiver_name: Option<String>,
    #[serde(default)]
    pub receiver_mobile: Option<String>,
    #[serde(default)]
    pub receiver_phone: Option<String>,
    #[serde(default)]
    pub receiver_state: Option<String>,
    #[serde(default)]
    pub receiver_city: Option<String>,
    #[serde(default)]
    pub receiver_district: Option<String>,
    #[serde(default)]
    pub receiver_town: Option<String>,
    #[serde(default)]
    pub receiver_address: Option<String>,
    /// The handle of the encrypted receiver (decrypting, privacy numbers, merging shipments).
    #[serde(default)]
    pub oaid: Option<String>,
    /// 聚划算一起买: 1 = shipping forbidden for now.
    #[serde(default)]
    pub forbid_consign: OptText,
    /// 天猫拼团拦截: 1 = the group has not formed.
    #[serde(default)]
    pub team_buy_hold: OptText,
    #[serde(default)]
    pub share_group_hold: OptText,
    /// TOP 拦截标识: 1 = held by the platform.
    #[serde(default)]
    pub top_hold: OptText,
    #[serde(default)]
    pub orders: Option<Orders>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Orders {
    #[serde(default)]
    pub order: Vec<Order>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Order {
    pub oid: Text,
    #[serde(default)]
    pub oid_str: Option<String>,
    #[serde(default)]
    pub status: OptText,
    pub title: String,
    pub price: Text,
    pub num: Text,
    #[serde(default)]
    pub num_iid: OptText,
    #[serde(default)]
    pub sku_id: OptText,
    #[serde(default)]
    pub outer_sku_id: Option<String>,
    #[serde(default)]
    pub outer_iid: Option<String>,
    /// 应付金额 (price × num + adjust_fee − discount_fee).
    #[serde(default)]
    pub total_fee: OptText,
    /// 子订单实付金额.
    #[serde(default)]
    pub payment: OptText,
    /// 分摊之后的实付金额 (order-level discounts spread over the lines).
    #[serde(default)]
    pub divide_order_fee: OptText,
    #[serde(default)]
    pub discount_fee: OptText,
    #[serde(default)]
    pub refund_status: Option<String>,
    /// 最近退款ID: the line's latest refund (TOP Order doc, bububa/opentaobao `Order.RefundId`).
    #[serde(default)]
    pub refund_id: OptText,
    /// 子订单发货的快递公司名称: the carrier's name, once the line shipped.
    #[serde(default)]
    pub logistics_company: Option<String>,
    /// 子订单所在包裹的运单号: the tracking number of the line's package.
    #[serde(default)]
    pub invoice_no: Option<String>,
}

/// The body of a push (form fields), as this crate receives it: see SOURCES.md § Taobao, the
/// HTTP push form is **assumed** (TMC itself is a long-lived connection).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct PushContent {
    pub tid: Text,
    #[serde(default)]
    pub oid: OptText,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub payment: OptText,
    #[serde(default)]
    pub buyer_nick: Option<String>,
    #[serde(default)]
    pub seller_nick: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

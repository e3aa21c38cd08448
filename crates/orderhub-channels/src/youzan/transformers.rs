//! Youzan (有赞) wire shapes: `youzan.trade.get` 4.0.0, `youzan.trades.sold.get` 4.0.0, push.
//! Money is yuan as decimal strings; times `yyyy-MM-dd HH:mm:ss` (+08:00); big ids as numbers.

use serde::{Deserialize, Serialize};

use crate::wire::{OptText, Text};

/// The open-platform answer: `{success, code, message, data}`; the scraped 4.0 demo wraps the
/// same content in `response`.
#[derive(Debug, Deserialize, Serialize)]
pub struct Envelope<T> {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub code: OptText,
    #[serde(default, alias = "msg")]
    pub message: Option<String>,
    #[serde(alias = "response")]
    pub data: Option<T>,
    #[serde(default)]
    pub gw_err_resp: Option<GwError>,
    /// The error shape of the API docs' `errorResponseDemo` (e.g. youzan.trade.refund.agree 3.0.0:
    /// `{"error_response":{"code":103010039,"message":"退款版本号错误！"}}`).
    #[serde(default)]
    pub error_response: Option<ErrorResponse>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ErrorResponse {
    #[serde(default)]
    pub code: OptText,
    #[serde(default, alias = "msg")]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct GwError {
    #[serde(default)]
    pub err_code: OptText,
    #[serde(default)]
    pub err_msg: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct TradeData {
    pub full_order_info: FullOrderInfo,
    #[serde(default)]
    pub refund_order: Vec<RefundOrder>,
    /// The shipments (`StructurizationTradeDeliveryDetail[]`, youzan.trade.get 4.0.0 doc).
    #[serde(default)]
    pub delivery_order: Vec<DeliveryOrder>,
}

/// One shipment: `express_state` 0 待发货 / 1 已发货, its packages in `dists`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DeliveryOrder {
    #[serde(default)]
    pub express_state: OptText,
    #[serde(default)]
    pub dists: Vec<DeliveryDist>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DeliveryDist {
    #[serde(default)]
    pub dist_id: OptText,
    #[serde(default)]
    pub express_info: Option<ExpressInfo>,
}

/// `express_id` (the carrier, a Youzan number), `express_no` (the tracking number).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ExpressInfo {
    #[serde(default)]
    pub express_id: OptText,
    #[serde(default)]
    pub express_no: OptText,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ListData {
    #[serde(default)]
    pub full_order_info_list: Vec<TradeData>,
    #[serde(default)]
    pub total_results: OptText,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct RefundOrder {
    /// The refund's lines: `StructurizationTradeRefundItemDetail[]`, objects `{oid}`
    /// (youzan.trade.get 4.0.0 field doc, `refund_order.oids.oid`).
    #[serde(default)]
    pub oids: Vec<RefundItem>,
    /// This refund's own state, 1/10/20/30/40/50/60 (same doc), not the order's 0/1/2/11/12.
    #[serde(default)]
    pub refund_state: OptText,
    #[serde(default)]
    pub refund_id: OptText,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct RefundItem {
    pub oid: Text,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct FullOrderInfo {
    pub order_info: OrderInfo,
    #[serde(default)]
    pub address_info: Option<AddressInfo>,
    #[serde(default)]
    pub remark_info: Option<RemarkInfo>,
    pub pay_info: PayInfo,
    #[serde(default)]
    pub buyer_info: Option<BuyerInfo>,
    pub orders: Vec<Line>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct OrderInfo {
    pub tid: Text,
    pub status: Text,
    pub created: OptText,
    #[serde(default)]
    pub pay_time: OptText,
    #[serde(default)]
    pub update_time: OptText,
    #[serde(default)]
    pub refund_state: OptText,
    #[serde(default)]
    pub order_tags: Option<OrderTags>,
    #[serde(default)]
    pub node_kdt_id: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OrderTags {
    /// 是否定金预售 (youzan.trade.get 4.0.0 field doc). `is_preorder` (是否预订单) is another
    /// thing and is not read.
    #[serde(default)]
    pub is_down_payment_pre: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AddressInfo {
    #[serde(default)]
    pub receiver_name: Option<String>,
    #[serde(default)]
    pub receiver_tel: Option<String>,
    #[serde(default)]
    pub delivery_province: Option<String>,
    #[serde(default)]
    pub delivery_city: Option<String>,
    #[serde(default)]
    pub delivery_district: Option<String>,
    #[serde(default)]
    pub delivery_address: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RemarkInfo {
    #[serde(default)]
    pub buyer_message: Option<String>,
    #[serde(default)]
    pub trade_memo: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PayInfo {
    #[serde(default)]
    pub total_fee: OptText,
    #[serde(default)]
    pub post_fee: OptText,
    pub payment: Text,
    /// 多阶段信息 (deposit presale): `phase`, `real_price` (阶段支付金额), `pay_start_time`,
    /// `pay_end_time`.
    #[serde(default)]
    pub phase_payments: Vec<PhasePayment>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PhasePayment {
    pub phase: Text,
    #[serde(default)]
    pub real_price: OptText,
    #[serde(default)]
    pub pay_start_time: OptText,
    #[serde(default)]
    pub pay_end_time: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct BuyerInfo {
    #[serde(default)]
    pub buyer_id: OptText,
    #[serde(default)]
    pub yz_open_id: Option<String>,
    #[serde(default)]
    pub fans_nickname: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Line {
    #[serde(default)]
    pub oid: OptText,
    #[serde(default)]
    pub item_id: OptText,
    #[serde(default)]
    pub sku_id: OptText,
    #[serde(default)]
    pub outer_sku_id: Option<String>,
    pub title: String,
    pub price: Text,
    pub num: Text,
    pub payment: Text,
}

/// The push body (JSON). `msg` is URL-encoded JSON.
#[derive(Debug, Deserialize, Serialize)]
pub struct Push {
    pub client_id: String,
    #[serde(default)]
    pub id: OptText,
    #[serde(default)]
    pub kdt_id: OptText,
    pub msg: String,
    pub sign: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub test: Option<bool>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub version: OptText,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PushMsg {
    pub tid: Text,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub update_time: OptText,
    #[serde(default)]
    pub full_order_info: Option<FullOrderInfo>,
}

//! Douyin shop (抖店) wire shapes: `/order/orderDetail`, `/order/searchList`, push messages.
//! Money is integer fen; times are Unix seconds; numbers arrive as numbers or numeric strings
//! (the detail sample writes every number as a string), so they are [`Text`].

use serde::{Deserialize, Serialize};

use crate::wire::{OptText, Text};

#[derive(Debug, Deserialize, Serialize)]
pub struct Envelope<T> {
    #[serde(default)]
    pub code: OptText,
    #[serde(default)]
    pub err_no: OptText,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub sub_code: Option<String>,
    #[serde(default)]
    pub sub_msg: Option<String>,
    pub data: Option<T>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct DetailData {
    pub shop_order_detail: ShopOrder,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ListData {
    #[serde(default)]
    pub shop_order_list: Vec<ShopOrder>,
    #[serde(default)]
    pub page: OptText,
    #[serde(default)]
    pub size: OptText,
    #[serde(default)]
    pub total: OptText,
}

/// One package of `logistics_info` (the detail sample's shape).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Logistics {
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub tracking_no: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ShopOrder {
    pub order_id: Text,
    #[serde(default)]
    pub shop_id: OptText,
    pub order_status: Text,
    #[serde(default)]
    pub main_status: OptText,
    pub create_time: OptText,
    #[serde(default)]
    pub update_time: OptText,
    #[serde(default)]
    pub pay_time: OptText,
    #[serde(default)]
    pub order_amount: OptText,
    pub pay_amount: Text,
    #[serde(default)]
    pub post_amount: OptText,
    #[serde(default)]
    pub promotion_amount: OptText,
    #[serde(default)]
    pub trade_type: OptText,
    #[serde(default)]
    pub buyer_words: Option<String>,
    #[serde(default)]
    pub seller_words: Option<String>,
    #[serde(default)]
    pub doudian_open_id: Option<String>,
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
    pub encrypt_post_receiver: Option<String>,
    #[serde(default)]
    pub encrypt_post_tel: Option<String>,
    #[serde(default)]
    pub post_addr: Option<PostAddr>,
    #[serde(default)]
    pub sku_order_list: Vec<SkuOrder>,
    #[serde(default)]
    pub order_phase_list: Vec<Phase>,
    /// The packages sent: carrier (`company` code, `company_name`) and `tracking_no` each.
    #[serde(default)]
    pub logistics_info: Vec<Logistics>,
    #[serde(default)]
    pub cancel_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct PostAddr {
    #[serde(default)]
    pub province: Option<Named>,
    #[serde(default)]
    pub city: Option<Named>,
    /// Douyin's `town` is the district (区/县) level.
    #[serde(default)]
    pub town: Option<Named>,
    /// Douyin's `street` is the town / street (街道/镇) level.
    #[serde(default)]
    pub street: Option<Named>,
    #[serde(default)]
    pub encrypt_detail: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Named {
    #[serde(default)]
    pub id: OptText,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SkuOrder {
    pub order_id: Text,
    #[serde(default)]
    pub parent_order_id: OptText,
    #[serde(default)]
    pub sku_id: OptText,
    #[serde(default)]
    pub out_sku_id: OptText,
    #[serde(default)]
    pub code: Option<String>,
    pub product_name: String,
    pub item_num: Text,
    /// 商品现价: the **unit** price (fen), fudiwei SDK `OrderSearchListResponse.cs` ("商品现价");
    /// the SDK sample has `item_num 2, origin_amount 100, sum_amount 200`.
    pub origin_amount: Text,
    /// 商品现总价 (fen): the line total, `origin_amount × item_num` (same SDK file).
    #[serde(default)]
    pub sum_amount: OptText,
    pub pay_amount: Text,
    #[serde(default)]
    pub after_sale_info: Option<AfterSaleInfo>,
    #[serde(default)]
    pub pre_sale_type: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AfterSaleInfo {
    #[serde(default)]
    pub after_sale_status: OptText,
    #[serde(default)]
    pub after_sale_type: OptText,
    #[serde(default)]
    pub refund_status: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Phase {
    #[serde(default)]
    pub current_phase: OptText,
    #[serde(default)]
    pub total_phase: OptText,
    #[serde(default)]
    pub phase_sum_amount: OptText,
    #[serde(default)]
    pub phase_pay_amount: OptText,
    #[serde(default)]
    pub pay_success: OptText,
    #[serde(default)]
    pub phase_open_time: OptText,
}

/// One push event. The SDK reads the body as an array of these; the samples are single objects
/// with `msgId` and an object `data`, the documented form has `msg_id` and a JSON-string `data`.
#[derive(Debug, Deserialize, Serialize)]
pub struct PushEvent {
    pub tag: Text,
    #[serde(default, alias = "msgId")]
    pub msg_id: Option<String>,
    pub data: serde_json::Value,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PushData {
    #[serde(default)]
    pub p_id: OptText,
    #[serde(default)]
    pub shop_id: OptText,
}

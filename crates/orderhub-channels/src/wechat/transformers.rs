//! WeChat Channels shop (视频号小店, channels/ec) wire shapes: `order/get`, `order/list/get`,
//! push events. Money is fen; times Unix seconds; push `order_id` is a number or a string.

use serde::{Deserialize, Serialize};

use crate::wire::{OptText, Text};

#[derive(Debug, Deserialize, Serialize)]
pub struct Envelope {
    #[serde(default)]
    pub errcode: OptText,
    #[serde(default)]
    pub errmsg: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct GetResponse {
    pub order: Order,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ListResponse {
    #[serde(default)]
    pub order_id_list: Vec<Text>,
    #[serde(default)]
    pub next_key: Option<String>,
    #[serde(default)]
    pub has_more: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Order {
    pub order_id: Text,
    pub status: Text,
    pub create_time: OptText,
    #[serde(default)]
    pub update_time: OptText,
    pub order_detail: OrderDetail,
    #[serde(default)]
    pub openid: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct OrderDetail {
    pub product_infos: Vec<ProductInfo>,
    #[serde(default)]
    pub pay_info: Option<PayInfo>,
    pub price_info: PriceInfo,
    #[serde(default)]
    pub delivery_info: Option<DeliveryInfo>,
    #[serde(default)]
    pub ext_info: Option<ExtInfo>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ProductInfo {
    pub product_id: Text,
    pub sku_id: Text,
    #[serde(default)]
    pub out_sku_id: Option<String>,
    pub sku_cnt: Text,
    pub title: String,
    pub sale_price: Text,
    /// 实付 (fen), in newer answers; else sale_price × sku_cnt.
    #[serde(default)]
    pub real_price: OptText,
    #[serde(default)]
    pub on_aftersale_sku_cnt: OptText,
    #[serde(default)]
    pub finish_aftersale_sku_cnt: OptText,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PayInfo {
    #[serde(default)]
    pub pay_time: OptText,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PriceInfo {
    #[serde(default)]
    pub product_price: OptText,
    pub order_price: Text,
    #[serde(default)]
    pub freight: OptText,
    #[serde(default)]
    pub discounted_price: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DeliveryInfo {
    #[serde(default)]
    pub address_info: Option<AddressInfo>,
    /// The packages sent: `delivery_id` (the carrier's code, e.g. `STO`), `waybill_id`.
    #[serde(default)]
    pub delivery_product_info: Vec<DeliveryProduct>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DeliveryProduct {
    #[serde(default)]
    pub waybill_id: OptText,
    #[serde(default)]
    pub delivery_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AddressInfo {
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub province_name: Option<String>,
    #[serde(default)]
    pub city_name: Option<String>,
    #[serde(default)]
    pub county_name: Option<String>,
    #[serde(default)]
    pub detail_info: Option<String>,
    #[serde(default)]
    pub tel_number: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ExtInfo {
    #[serde(default)]
    pub customer_notes: Option<String>,
    #[serde(default)]
    pub merchant_notes: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PushEvent {
    #[serde(default)]
    pub to_user_name: Option<String>,
    #[serde(default)]
    pub create_time: OptText,
    pub event: String,
    #[serde(default, rename = "order_info")]
    pub order_info: Option<PushOrderInfo>,
    #[serde(default, rename = "finder_shop_aftersale_status_update")]
    pub aftersale: Option<PushAftersale>,
    #[serde(default, rename = "Encrypt")]
    pub encrypt: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PushOrderInfo {
    pub order_id: Text,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PushAftersale {
    #[serde(default)]
    pub order_id: OptText,
}

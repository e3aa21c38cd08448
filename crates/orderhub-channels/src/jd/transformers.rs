//! JD POP (京东 JOS) wire shapes: `jingdong.pop.order.search`, `jingdong.pop.order.get`, the
//! JOS error envelope, and the push this crate receives. The response roots are spelled
//! `…_responce` (sic). Field names are camelCase; money is yuan as decimal strings; times
//! `yyyy-MM-dd HH:mm:ss` (+08:00), `0001-01-01 00:00:00` / `1970-01-01 00:00:00` = unset.

use serde::{Deserialize, Serialize};

use crate::wire::{OptText, Text};

/// `{"error_response": {"code": "19", "zh_desc": …, "en_desc": …}}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct JosError {
    #[serde(default)]
    pub code: OptText,
    #[serde(default)]
    pub zh_desc: Option<String>,
    #[serde(default)]
    pub en_desc: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ErrorEnvelope {
    #[serde(default)]
    pub error_response: Option<JosError>,
    #[serde(default)]
    pub jingdong_pop_order_search_responce: Option<ApiResultHolder>,
    #[serde(default)]
    pub jingdong_pop_order_get_responce: Option<ApiResultHolder>,
}

/// Just enough of either answer to find its `apiResult`.
#[derive(Debug, Deserialize, Serialize)]
pub struct ApiResultHolder {
    #[serde(default)]
    pub searchorderinfo_result: Option<ApiResultOnly>,
    #[serde(default, rename = "orderDetailInfo")]
    pub order_detail_info: Option<ApiResultOnly>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ApiResultOnly {
    #[serde(default, rename = "apiResult")]
    pub api_result: Option<ApiResult>,
}

/// `apiResult{success, englishErrCode, chineseErrCode, numberCode}`; `success` is a boolean or
/// the string "true".
#[derive(Debug, Deserialize, Serialize)]
pub struct ApiResult {
    #[serde(default)]
    pub success: OptText,
    #[serde(default, rename = "numberCode")]
    pub number_code: OptText,
    #[serde(default, rename = "chineseErrCode")]
    pub chinese_err_code: Option<String>,
    #[serde(default, rename = "englishErrCode")]
    pub english_err_code: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct SearchEnvelope {
    pub jingdong_pop_order_search_responce: Option<SearchResponce>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct SearchResponce {
    #[serde(default)]
    pub code: OptText,
    pub searchorderinfo_result: SearchResult,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct SearchResult {
    #[serde(default, rename = "orderTotal")]
    pub order_total: OptText,
    #[serde(default, rename = "orderInfoList")]
    pub order_info_list: Option<Vec<OrderInfo>>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct GetEnvelope {
    pub jingdong_pop_order_get_responce: Option<GetResponce>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct GetResponce {
    #[serde(default)]
    pub code: OptText,
    #[serde(rename = "orderDetailInfo")]
    pub order_detail_info: OrderDetailInfo,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct OrderDetailInfo {
    #[serde(rename = "orderInfo")]
    pub order_info: OrderInfo,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderInfo {
    pub order_id: Text,
    #[serde(default)]
    pub vender_id: OptText,
    #[serde(default)]
    pub order_type: OptText,
    pub order_state: Text,
    #[serde(default)]
    pub order_state_remark: Option<String>,
    /// 订单总金额 = 订单金额 (不减优惠，不加运费服务费税费): Σ jdPrice × itemTotal.
    #[serde(default)]
    pub order_total_price: OptText,
    /// 订单货款金额 (订单总金额 − 商家优惠金额).
    #[serde(default)]
    pub order_seller_price: OptText,
    /// 用户应付金额 = 货款 − 用户优惠 − 余额 + 运费 + 税费 + 服务费: what is left to pay after
    /// the buyer's JD balance (`balanceUsed`) was spent.
    pub order_payment: Text,
    /// 余额支付金额: the part the buyer paid from the JD account balance (not in orderPayment).
    #[serde(default)]
    pub balance_used: OptText,
    #[serde(default)]
    pub freight_price: OptText,
    #[serde(default)]
    pub seller_discount: OptText,
    #[serde(default)]
    pub order_start_time: OptText,
    #[serde(default)]
    pub payment_confirm_time: OptText,
    #[serde(default)]
    pub modified: OptText,
    #[serde(default)]
    pub order_end_time: OptText,
    /// The buyer's message.
    #[serde(default)]
    pub order_remark: Option<String>,
    /// The seller's memo.
    #[serde(default)]
    pub vender_remark: Option<String>,
    #[serde(default)]
    pub consignee_info: Option<ConsigneeInfo>,
    #[serde(default)]
    pub item_info_list: Option<Vec<ItemInfo>>,
    #[serde(default, rename = "open_id_buyer")]
    pub open_id_buyer: Option<String>,
    #[serde(default, rename = "xid_buyer")]
    pub xid_buyer: Option<String>,
    /// 运单号, once shipped (`OrderSearchInfo.waybill`).
    #[serde(default)]
    pub waybill: Option<String>,
    /// JD's carrier id (`OrderSearchInfo.logistics_id`; camelCase in these shapes).
    #[serde(default, alias = "logistics_id")]
    pub logistics_id: OptText,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsigneeInfo {
    #[serde(default)]
    pub fullname: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub telephone: Option<String>,
    #[serde(default)]
    pub full_address: Option<String>,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    /// JD's `county` is the district (区/县) level; `town` the street / town level.
    #[serde(default)]
    pub county: Option<String>,
    #[serde(default)]
    pub town: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemInfo {
    #[serde(default)]
    pub sku_id: OptText,
    #[serde(default)]
    pub ware_id: OptText,
    #[serde(default)]
    pub outer_sku_id: Option<String>,
    #[serde(default)]
    pub product_no: Option<String>,
    pub sku_name: String,
    /// Unit price (yuan).
    pub jd_price: Text,
    /// The count.
    pub item_total: Text,
}

/// `content` of a push (**assumed** webhook form, see SOURCES.md § JD).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushContent {
    pub order_id: Text,
    #[serde(default)]
    pub vender_id: OptText,
    #[serde(default)]
    pub order_state: Option<String>,
}

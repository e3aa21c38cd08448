//! JD POP (京东 JOS). Detail `jingdong.pop.order.get`, incremental pull
//! `jingdong.pop.order.search` by modified time (`start_date`/`end_date`, `dateType` 0) with
//! `page`/`page_size`; every call is a form POST to `/routerjson` with app_key, method,
//! access_token, timestamp, v and the business parameters as `360buy_param_json`, signed
//! `UPPER(MD5(secret + sorted(k+v) + secret))`. JD's order answer has no per-line refund state:
//! a buyer's refund apply before shipment (退款审核单) locks the order (`LOCKED`), read as every
//! line's refund waiting for the seller; the applies themselves are read and decided with the
//! `jingdong.pop.afs.soa.refundapply.*` calls ([`refund`]). After-sales after shipment live in the
//! separate `jingdong.asc.*` APIs, not built. Push: **assumed** form, see SOURCES.md § JD.

pub mod refund;
#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::wire;
use crate::{
    ApiError, ApiRequest, CanonicalStatus, Channel, ChannelBuyer, ChannelKind, ChannelOrder,
    ChannelShipment, ListQuery, OrderPage, PushEvent, PushItem, PushMessage, RefundState, Rejected,
    ShopCredentials,
};
use transformers as t;

code_map! {
    /// `orderState` (qihang JdOrder.java l.72; JOS order docs as quoted by public integrations).
    pub enum OrderState -> CanonicalStatus {
        WaitSellerStockOut = "WAIT_SELLER_STOCK_OUT" => Paid,
        /// 海外购: waiting for the seller to ship.
        WaitSellerDelivery = "WAIT_SELLER_DELIVERY" => Paid,
        /// LOC (voucher) orders: waiting for the code to be sent.
        WaitSendCode = "WAIT_SEND_CODE" => Paid,
        /// Paused by JD: paid, must not ship (see `shippable`).
        PopOrderPause = "POP_ORDER_PAUSE" => Paid,
        /// Locked (a cancellation or dispute is pending): paid, must not ship.
        Locked = "LOCKED" => Paid,
        WaitGoodsReceiveConfirm = "WAIT_GOODS_RECEIVE_CONFIRM" => Shipped,
        FinishedL = "FINISHED_L" => Completed,
        TradeCanceled = "TRADE_CANCELED" => Cancelled,
    }
}

pub const SEARCH_METHOD: &str = "jingdong.pop.order.search";
pub const GET_METHOD: &str = "jingdong.pop.order.get";
pub const PATH: &str = "/routerjson";
/// Renews a shop's access token on JD's OAuth service (its own host, `open-oauth.jd.com`), not
/// signed: the app secret goes as a parameter (JustAuth `AuthJdRequest`, ysdk-go `auth`). The
/// answer is flat JSON: `access_token`, `expires_in` (seconds), `refresh_token`, `scope`,
/// `open_id`, `time` (ms), `code` 0.
pub const TOKEN_PATH: &str = "/oauth2/refresh_token";
/// Exchanges the authorization code for the shop's tokens on JD's OAuth service: `GET` with
/// `app_key`, `app_secret`, `grant_type=authorization_code`, `code` (JustAuth `AuthJdRequest`,
/// zeasin/qihangerp-sdk `JdTokenApiHelper`). The answer is the refresh call's flat JSON.
pub const TOKEN_CREATE_PATH: &str = "/oauth2/access_token";
/// The seller's authorization page (`app_key`, `response_type=code`, `redirect_uri`, `state`,
/// `scope=snsapi_base`).
pub const AUTHORIZE_URL: &str = "https://open-oauth.jd.com/oauth2/to_login";
/// Where JD's OAuth service answers when the API is JD's own.
pub const OAUTH_BASE_URL: &str = "https://open-oauth.jd.com";
/// Every state, for `order_state` of the search (JOS searches only the states it is given).
pub const ALL_STATES: &str = "WAIT_SELLER_STOCK_OUT,WAIT_SELLER_DELIVERY,WAIT_SEND_CODE,POP_ORDER_PAUSE,LOCKED,WAIT_GOODS_RECEIVE_CONFIRM,FINISHED_L,TRADE_CANCELED";
pub const OPTIONAL_FIELDS: &str = "orderId,venderId,orderType,orderState,orderStateRemark,orderTotalPrice,orderSellerPrice,orderPayment,freightPrice,sellerDiscount,orderStartTime,paymentConfirmTime,modified,orderEndTime,orderRemark,venderRemark,consigneeInfo,itemInfoList,open_id_buyer,xid_buyer";
/// **Assumed** (see SOURCES.md): the code the simulator answers when throttling. The adapter
/// recognises throttling by the descriptions too (限流, 频繁, 超过, limit, frequen).
pub const THROTTLE_CODE: &str = "74";
/// **Assumed**: invalid access_token or signature.
pub const AUTH_CODE: &str = "19";
/// `jingdong.pop.order.shipment`: `orderId`, `logiCoprId` (carrier id), `logiNo` (tracking number)
/// in `360buy_param_json` (xxl4/laravel-store `PopOrderShipmentRequest.php`). Whole orders only.
/// Answer `jingdong_pop_order_shipment_responce{sopjosshipment_result{success, errorCode,
/// chineseErrCode}}` — **from memory**.
/// `jingdong.stock.write.updateSkuStock` (设置商家库存): `skuId`, `stockNum` (the whole
/// quantity), optional `storeId`; answer `jingdong_stock_write_updateSkuStock_responce{success}`
/// (JD SDK `StockWriteUpdateSkuStockRequest`/`Response`; the `_responce` spelling is JOS's, as
/// in the order calls). One SKU per call; JD sells SKUs, so a SKU id is required.
pub const STOCK_METHOD: &str = "jingdong.stock.write.updateSkuStock";
/// `jingdong.stock.read.findSkuStock` (获取sku库存信息): `skuId`, optional `field` in
/// `360buy_param_json`; answer `skuStocks`, a list of `SkuStock` (JD Java SDK
/// `StockReadFindSkuStockRequest`/`Response`, `…StockReadService.response.findSkuStock.SkuStock`).
/// One SKU per call. **Assumed**: each `SkuStock` carries `skuId` and `stockNum` (the names of the
/// write call), and the envelope key `jingdong_stock_read_findSkuStock_responce`.
pub const STOCK_READ_METHOD: &str = "jingdong.stock.read.findSkuStock";
pub const SHIP_METHOD: &str = "jingdong.pop.order.shipment";
/// orderhub carrier → JOS `logiCoprId` (`jingdong.vender.delivery.company` ids). **Assumed** (from
/// memory, no public table found): verify before production.
pub const CARRIERS: &crate::ship::CarrierTable = &[
    ("yto", "463"),
    ("ems", "465"),
    ("sf", "467"),
    ("sto", "470"),
    ("yunda", "1327"),
    ("zto", "1499"),
    ("jd", "2087"),
];
/// **Assumed** `errorCode` of "already shipped" (read as success).
pub const ALREADY_SHIPPED_CODE: &str = "10400002";
/// **Assumed** `errorCode` of "the order's state does not allow shipping".
pub const SHIP_CONFLICT_CODE: &str = "10400001";
/// **Assumed** system error code.
pub const SYSTEM_ERROR_CODE: &str = "10000";

pub struct Jd;

pub(crate) fn order_from(o: t::OrderInfo, base: &str) -> Result<ChannelOrder, Rejected> {
    let f = |n: &str| format!("{base}.{n}");
    let raw_status = o.order_state.as_str().trim().to_string();
    let state = OrderState::parse(&raw_status)
        .ok_or_else(|| Rejected::unknown_status(&f("orderState"), &raw_status))?;
    let canonical = state.target();
    let external_order_id = o.order_id.as_str().trim().to_string();
    if external_order_id.is_empty() {
        return Err(Rejected::missing(&f("orderId")));
    }
    let items = o.item_info_list.as_deref().unwrap_or(&[]);
    let mut lines = Vec::with_capacity(items.len());
    let mut seen: Vec<String> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let lf = |n: &str| format!("{base}.itemInfoList[{i}].{n}");
        let quantity = wire::quantity(&lf("itemTotal"), &it.item_total)?;
        let unit = wire::yuan(&lf("jdPrice"), &it.jd_price)?;
        // No line id and no line payment: the SKU id names the line; the order discount
        // covers coupons and seller discounts.
        let sku_id = wire::opt_str(&it.sku_id).or_else(|| wire::opt_str(&it.ware_id));
        let mut line_id = sku_id
            .clone()
            .unwrap_or_else(|| format!("{external_order_id}-{i}"));
        if seen.contains(&line_id) {
            line_id = format!("{line_id}-{i}");
        }
        seen.push(line_id.clone());
        lines.push(wire::line(
            line_id,
            wire::nonempty(&it.outer_sku_id).or_else(|| wire::nonempty(&it.product_no)),
            sku_id,
            it.sku_name.clone(),
            quantity,
            unit,
            unit * Decimal::from(quantity),
            RefundState::None,
            None,
        ));
    }
    if lines.is_empty() {
        return Err(Rejected::missing(&f("itemInfoList")));
    }
    // **Assumed** (SOURCES.md § Refund decisions): JD locks an order while the buyer's refund
    // apply waits for the seller; the apply is of the order, so every line shows it.
    if state == OrderState::Locked {
        for l in &mut lines {
            l.refund = RefundState::Requested;
            l.refund_raw = Some(OrderState::Locked.code().to_owned());
        }
    }
    // orderTotalPrice is Σ jdPrice × itemTotal (订单金额，不减优惠，不加运费): a total that is not
    // names a misread price (jdPrice is the SKU's unit price, itemTotal the count).
    if let Some(t) = o.order_total_price.as_ref().filter(|t| !t.is_empty()) {
        let total = wire::yuan(&f("orderTotalPrice"), t)?;
        let gross: Decimal = lines
            .iter()
            .map(|l| l.unit_price * Decimal::from(l.quantity))
            .sum();
        if total != gross {
            return Err(Rejected::at(
                "does_not_add_up",
                &f("orderTotalPrice"),
                format!(
                    "{} must equal Σ jdPrice × itemTotal = {gross}, got {total}",
                    f("orderTotalPrice")
                ),
            ));
        }
    }
    let shipping = wire::opt_yuan(&f("freightPrice"), &o.freight_price)?;
    // 应付款 = 货款 − 用户优惠 − 余额 + 运费 + …: the balance the buyer spent is paid money, not a
    // discount, so the order's paid amount is orderPayment + balanceUsed.
    let balance = wire::opt_yuan(&f("balanceUsed"), &o.balance_used)?;
    if balance < Decimal::ZERO {
        return Err(Rejected::bad_value(
            &f("balanceUsed"),
            "an amount of at least 0",
        ));
    }
    let paid = wire::yuan(&f("orderPayment"), &o.order_payment)? + balance;
    let created_at = wire::req_china_time(&f("orderStartTime"), &o.order_start_time)?;
    let paid_at = wire::china_time(&f("paymentConfirmTime"), &o.payment_confirm_time)?;
    let modified_at = wire::china_time(&f("modified"), &o.modified)?.unwrap_or(created_at);
    let reason = match state {
        OrderState::PopOrderPause => Some("paused by JD (POP_ORDER_PAUSE)"),
        OrderState::Locked => Some("locked: a cancellation or dispute is pending (LOCKED)"),
        _ => None,
    };
    let c = o.consignee_info.unwrap_or_default();
    let phone = wire::nonempty(&c.mobile).or_else(|| wire::nonempty(&c.telephone));
    let receiver = wire::receiver(
        c.fullname,
        phone,
        c.province,
        c.city,
        c.county,
        c.town,
        c.full_address,
        None,
    );
    let amounts = wire::amounts(&lines, shipping, paid);
    let shipment = ChannelShipment::new(
        wire::opt_str(&o.logistics_id).as_deref(),
        o.waybill.as_deref(),
    );
    Ok(ChannelOrder {
        channel: ChannelKind::Jd,
        external_order_id,
        channel_shop_id: wire::opt_str(&o.vender_id),
        channel_status: raw_status,
        canonical,
        lines,
        receiver,
        buyer: ChannelBuyer {
            id: wire::nonempty(&o.open_id_buyer).or_else(|| wire::nonempty(&o.xid_buyer)),
            nick: None,
        },
        amounts,
        created_at,
        paid_at,
        modified_at,
        version: None,
        presale: None,
        shippable: reason.is_none(),
        not_shippable_reason: reason.map(str::to_string),
        cancelled_after_payment: canonical == CanonicalStatus::Cancelled && paid_at.is_some(),
        buyer_message: wire::nonempty(&o.order_remark),
        seller_memo: wire::nonempty(&o.vender_remark),
        shipment,
    })
}

/// JOS: `UPPER(MD5(secret + sorted(k+v) + secret))` over every parameter but `sign`.
pub fn api_sign(params: &[(String, String)], secret: &str) -> String {
    crate::sign::wrapped_md5_upper(params, secret)
}

/// JOS's `timestamp`: `yyyy-MM-dd HH:mm:ss.SSS+0800`.
pub fn jos_timestamp(now: DateTime<Utc>) -> String {
    now.with_timezone(&wire::china())
        .format("%Y-%m-%d %H:%M:%S%.3f%z")
        .to_string()
}

fn request(
    method: &str,
    param_json: serde_json::Value,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> ApiRequest {
    let mut params: Vec<(String, String)> = vec![
        ("method".into(), method.into()),
        ("app_key".into(), creds.app_key.clone()),
        ("access_token".into(), creds.access_token.clone()),
        ("timestamp".into(), jos_timestamp(now)),
        ("v".into(), "2.0".into()),
        ("360buy_param_json".into(), param_json.to_string()),
    ];
    let sign = api_sign(&params, &creds.secret);
    params.push(("sign".into(), sign));
    ApiRequest {
        method: "POST",
        path_and_query: PATH.into(),
        content_type: "application/x-www-form-urlencoded;charset=utf-8",
        headers: Vec::new(),
        body: wire::form_encode(&params).into_bytes(),
    }
}

fn form_param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn classify(code: String, desc: &str) -> ApiError {
    let lower = desc.to_ascii_lowercase();
    if code == THROTTLE_CODE
        || desc.contains("限流")
        || desc.contains("频繁")
        || desc.contains("超过")
        || lower.contains("limit")
        || lower.contains("frequen")
    {
        return ApiError::Throttled { code };
    }
    if code == AUTH_CODE
        || desc.contains("签名")
        || lower.contains("token")
        || lower.contains("sign")
    {
        return ApiError::Auth { code };
    }
    ApiError::Api {
        code,
        message: desc.chars().take(200).collect(),
    }
}

impl Channel for Jd {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Jd
    }

    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected> {
        let env: t::GetEnvelope = wire::parse_json(body)?;
        let r = env
            .jingdong_pop_order_get_responce
            .ok_or_else(|| Rejected::missing("jingdong_pop_order_get_responce"))?;
        order_from(
            r.order_detail_info.order_info,
            "jingdong_pop_order_get_responce.orderDetailInfo.orderInfo",
        )
    }

    fn parse_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<PushMessage, Rejected> {
        if body.len() > wire::BODY_BYTES_MAX {
            return Err(Rejected::new("too_large", None, "the push is too large"));
        }
        let form = wire::form_decode(body);
        let topic = form_param(&form, "topic")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Rejected::missing("topic"))?
            .to_string();
        let content = form_param(&form, "content").ok_or_else(|| Rejected::missing("content"))?;
        let c: t::PushContent = wire::parse_json(content.as_bytes()).map_err(|r| Rejected {
            field: Some(format!("content.{}", r.field.unwrap_or_default())),
            ..r
        })?;
        let order_id =
            wire::opt_str(&Some(c.order_id)).ok_or_else(|| Rejected::missing("content.orderId"))?;
        // The state named in the message says what happened; an unknown or absent state is a
        // change to fetch.
        let event = match c
            .order_state
            .as_deref()
            .and_then(OrderState::parse)
            .map(OrderState::target)
        {
            Some(CanonicalStatus::Paid) => PushEvent::OrderPaid,
            Some(CanonicalStatus::Shipped) | Some(CanonicalStatus::PartlyShipped) => {
                PushEvent::OrderShipped
            }
            Some(CanonicalStatus::Completed) | Some(CanonicalStatus::Delivered) => {
                PushEvent::OrderCompleted
            }
            Some(CanonicalStatus::Cancelled) => PushEvent::OrderCancelled,
            Some(CanonicalStatus::PendingPayment) => PushEvent::OrderCreated,
            None if topic.contains("refund") || topic.contains("afs") => PushEvent::Refund,
            None => PushEvent::OrderChanged,
        };
        Ok(PushMessage {
            channel: ChannelKind::Jd,
            items: vec![PushItem {
                event,
                raw_event: topic,
                order_id,
                message_id: form_param(&form, "id").map(str::to_string),
                channel_shop_id: wire::opt_str(&c.vender_id),
                order: None,
            }],
            is_test: false,
        })
    }

    /// Every field but `sign` is signed like a JOS call; `timestamp` is among them and is
    /// checked against `now ± tolerance`.
    fn verify_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
        tolerance: Duration,
    ) -> Result<(), Rejected> {
        let form = wire::form_decode(body);
        let given = form_param(&form, "sign").ok_or_else(|| {
            Rejected::new("bad_signature", Some("sign"), "the sign field is missing")
        })?;
        if form_param(&form, "app_key") != Some(creds.app_key.as_str()) {
            return Err(Rejected::bad_signature("app_key is not this shop's app"));
        }
        if !crate::sign::hex_eq(&api_sign(&form, &creds.secret), given) {
            return Err(Rejected::bad_signature("sign does not match the fields"));
        }
        let ts = form_param(&form, "timestamp").unwrap_or("");
        let at = DateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.3f%z").map_err(|_| {
            Rejected::bad_value("timestamp", "a time like 2024-11-11 20:00:00.000+0800")
        })?;
        wire::check_fresh(at.with_timezone(&Utc), now, tolerance)
    }

    fn list_request(
        &self,
        q: &ListQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest {
        request(
            SEARCH_METHOD,
            serde_json::json!({
                "start_date": wire::china_time_string(q.modified_from),
                "end_date": wire::china_time_string(q.modified_to),
                "order_state": ALL_STATES,
                "optional_fields": OPTIONAL_FIELDS,
                "page": q.page.to_string(),
                "page_size": q.page_size.to_string(),
                "sortType": "0",
                "dateType": "0",
            }),
            creds,
            now,
        )
    }

    fn parse_list(&self, body: &[u8]) -> Result<OrderPage, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let env: t::SearchEnvelope = wire::parse_json(body)?;
        let r = env
            .jingdong_pop_order_search_responce
            .ok_or_else(|| Rejected::missing("jingdong_pop_order_search_responce"))?;
        let base = "jingdong_pop_order_search_responce.searchorderinfo_result";
        let res = r.searchorderinfo_result;
        let total = wire::opt_int(&format!("{base}.orderTotal"), &res.order_total)?.unwrap_or(0);
        let mut orders = Vec::new();
        for (i, o) in res
            .order_info_list
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            orders.push(order_from(o, &format!("{base}.orderInfoList[{i}]"))?);
        }
        // JOS answers the total only: a non-empty page may have a successor; the puller stops
        // once it has seen `orderTotal` orders.
        Ok(OrderPage {
            has_next: !orders.is_empty(),
            orders,
            order_ids: Vec::new(),
            total: u64::try_from(total).ok(),
            next_cursor: None,
        })
    }

    fn detail_request(&self, id: &str, creds: &ShopCredentials, now: DateTime<Utc>) -> ApiRequest {
        request(
            GET_METHOD,
            serde_json::json!({ "order_id": id, "optional_fields": OPTIONAL_FIELDS }),
            creds,
            now,
        )
    }

    fn ship_request(
        &self,
        s: &crate::Shipment,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let id = crate::ship::check(s, CARRIERS, false)?;
        let param = serde_json::json!({
            "orderId": s.external_order_id,
            "logiCoprId": id,
            "logiNo": s.tracking_no,
        });
        Ok(request(SHIP_METHOD, param, creds, now))
    }

    fn stock_request(
        &self,
        updates: &[crate::StockUpdate],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock(updates, 1)?;
        let u = &updates[0];
        if u.sku_id.is_empty() {
            return Err(Rejected::missing("sku_id"));
        }
        let sku: u64 = u
            .sku_id
            .parse()
            .map_err(|_| Rejected::bad_value("sku_id", "JD's numeric skuId"))?;
        let param = serde_json::json!({ "skuId": sku, "stockNum": u.quantity });
        Ok(request(STOCK_METHOD, param, creds, now))
    }

    fn stock_read_request(
        &self,
        q: &crate::StockQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock_query(q, 1)?;
        let sku: u64 = q.sku_ids[0]
            .parse()
            .map_err(|_| Rejected::bad_value("sku_id", "JD's numeric skuId"))?;
        Ok(request(
            STOCK_READ_METHOD,
            serde_json::json!({ "skuId": sku }),
            creds,
            now,
        ))
    }

    fn parse_stock_read(&self, body: &[u8]) -> Result<Vec<crate::StockLevel>, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        let key = "jingdong_stock_read_findSkuStock_responce";
        let r = v
            .get(key)
            .filter(|r| r.is_object())
            .ok_or_else(|| Rejected::missing(key))?;
        let stocks = match r.get("skuStocks") {
            None | Some(serde_json::Value::Null) => &[][..],
            Some(serde_json::Value::Array(a)) => a.as_slice(),
            Some(_) => return Err(Rejected::bad_value("skuStocks", "a list").into()),
        };
        let mut levels = Vec::with_capacity(stocks.len());
        for (i, s) in stocks.iter().enumerate() {
            // JD names the SKU only: item "".
            levels.push(crate::StockLevel {
                item_id: String::new(),
                sku_id: crate::level_id(s.get("skuId"), &format!("skuStocks[{i}].skuId"))?,
                quantity: crate::level_qty(s.get("stockNum"), &format!("skuStocks[{i}].stockNum"))?,
            });
        }
        Ok(levels)
    }

    fn parse_stock_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        match v.pointer("/jingdong_stock_write_updateSkuStock_responce/success") {
            Some(serde_json::Value::Bool(true)) => Ok(()),
            Some(serde_json::Value::String(s)) if s == "true" => Ok(()),
            Some(_) => Err(ApiError::Api {
                code: "success_false".into(),
                message: "the channel answered success false".into(),
            }),
            None => Err(ApiError::Rejected(Rejected::missing(
                "jingdong_stock_write_updateSkuStock_responce.success",
            ))),
        }
    }

    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        let field = "jingdong_pop_order_shipment_responce.sopjosshipment_result";
        let r = v
            .pointer("/jingdong_pop_order_shipment_responce/sopjosshipment_result")
            .ok_or_else(|| Rejected::missing(field))?;
        let text = |k: &str| match r.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        match text("success").as_str() {
            "true" => Ok(()),
            "false" => {
                let code = text("errorCode");
                if code == ALREADY_SHIPPED_CODE {
                    return Ok(());
                }
                let desc = format!("{} {}", text("chineseErrCode"), text("englishErrCode"));
                Err(classify(code, desc.trim()))
            }
            _ => Err(Rejected::bad_value(&format!("{field}.success"), "a boolean").into()),
        }
    }

    fn order_refunds_request(
        &self,
        external_order_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let param = refund::list_params(external_order_id)?;
        Ok(request(refund::LIST_METHOD, param, creds, now))
    }

    fn parse_order_refunds(&self, body: &[u8]) -> Result<Vec<crate::ChannelRefund>, ApiError> {
        self.api_error(body)
            .map_or_else(|| refund::parse_list(body), Err)
    }

    fn refund_get_request(
        &self,
        refund_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let param = refund::get_params(refund_id)?;
        Ok(request(refund::GET_METHOD, param, creds, now))
    }

    fn parse_refund(&self, body: &[u8]) -> Result<crate::ChannelRefund, ApiError> {
        self.api_error(body)
            .map_or_else(|| refund::parse(body), Err)
    }

    fn refund_decision_request(
        &self,
        r: &crate::ChannelRefund,
        d: &crate::RefundDecision,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let param = refund::decision_params(r, d)?;
        Ok(request(refund::REPLY_METHOD, param, creds, now))
    }

    fn parse_refund_decision_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        self.api_error(body).map_or_else(|| refund::ack(body), Err)
    }

    fn token_request(
        &self,
        _shop_id: &str,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Option<ApiRequest> {
        if creds.refresh_token.is_empty() {
            return None;
        }
        let q = wire::form_encode(&[
            ("app_key".into(), creds.app_key.clone()),
            ("app_secret".into(), creds.secret.clone()),
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), creds.refresh_token.clone()),
        ]);
        Some(ApiRequest {
            method: "GET",
            path_and_query: format!("{TOKEN_PATH}?{q}"),
            content_type: "application/x-www-form-urlencoded;charset=utf-8",
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    fn authorize_url(
        &self,
        api_base_url: &str,
        p: &crate::AuthorizeParams<'_>,
    ) -> Result<String, Rejected> {
        // The page is on the OAuth host, like the token calls (`token_base_url`).
        Ok(crate::authorize_at(
            &self.token_base_url(api_base_url),
            "jd.com",
            AUTHORIZE_URL,
            &[
                ("app_key", p.app_key),
                ("response_type", "code"),
                ("redirect_uri", p.redirect_uri),
                ("state", p.state),
                ("scope", "snsapi_base"),
            ],
        ))
    }

    fn code_request(
        &self,
        code: &str,
        _redirect_uri: &str,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_code(code)?;
        let q = wire::form_encode(&[
            ("app_key".into(), creds.app_key.clone()),
            ("app_secret".into(), creds.secret.clone()),
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.to_owned()),
        ]);
        Ok(ApiRequest {
            method: "GET",
            path_and_query: format!("{TOKEN_CREATE_PATH}?{q}"),
            content_type: "application/x-www-form-urlencoded;charset=utf-8",
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    fn token_base_url(&self, api_base_url: &str) -> String {
        if api_base_url.contains("api.jd.com") {
            OAUTH_BASE_URL.to_owned()
        } else {
            api_base_url.to_owned()
        }
    }

    fn parse_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<crate::TokenGrant, ApiError> {
        // The router's envelope (a system error, throttling): tried again.
        if let Some(e) = self.api_error(body) {
            return Err(crate::token::refusal_only(e, |_| false));
        }
        let v = crate::token::json(body)?;
        // Refusals come as a non-zero `code` with `msg` (ysdk-go). **Assumed**: one whose message
        // names the refresh token or the grant is a refusal; any other is the platform's trouble,
        // tried again later.
        let code = crate::token::int_at(&v, "/code").unwrap_or(0);
        if code != 0 || v.get("access_token").is_none() {
            let msg = v
                .get("msg")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let refused = msg.contains("refresh_token") || msg.contains("授权");
            let code = code.to_string();
            return Err(crate::token::refusal_only(
                classify(code.clone(), msg),
                |_| refused && code != SYSTEM_ERROR_CODE,
            ));
        }
        use crate::token::Expiry::InSeconds;
        Ok(crate::token::grant(
            &v,
            now,
            "/access_token",
            InSeconds("/expires_in"),
            Some(("/refresh_token", None)),
        )?)
    }

    fn api_error(&self, body: &[u8]) -> Option<ApiError> {
        let env: t::ErrorEnvelope = wire::try_json(body)?;
        if let Some(e) = env.error_response {
            let code = wire::opt_str(&e.code).unwrap_or_default();
            let desc = format!(
                "{} {}",
                e.zh_desc.unwrap_or_default(),
                e.en_desc.unwrap_or_default()
            );
            return Some(classify(code, desc.trim()));
        }
        let holder = env
            .jingdong_pop_order_search_responce
            .or(env.jingdong_pop_order_get_responce)?;
        let result = holder
            .searchorderinfo_result
            .or(holder.order_detail_info)?
            .api_result?;
        if wire::opt_str(&result.success).as_deref() == Some("false") {
            let code = wire::opt_str(&result.number_code).unwrap_or_default();
            let desc = format!(
                "{} {}",
                result.chinese_err_code.unwrap_or_default(),
                result.english_err_code.unwrap_or_default()
            );
            return Some(classify(code, desc.trim()));
        }
        None
    }
}

//! Douyin shop (抖店). Order detail `/order/orderDetail`, incremental pull `/order/searchList`
//! by `update_time` (page from 0), push as a JSON array signed with header `event-sign` =
//! MD5(app_key + body + app_secret). Sources: SOURCES.md § Douyin.

pub mod refund;
#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::wire::{self, OptText};
use crate::{
    ApiError, ApiRequest, CanonicalStatus, Channel, ChannelBuyer, ChannelKind, ChannelOrder,
    ChannelShipment, ListQuery, OrderPage, Presale, PushEvent, PushItem, PushMessage, RefundState,
    Rejected, ShopCredentials,
};
use transformers as t;

code_map! {
    /// `order_status` (qihang DouOrder.java l.39; doudian order docs).
    pub enum OrderStatus -> CanonicalStatus {
        PendingConfirmOrPay = "1" => PendingPayment,
        Paid = "105" => Paid,
        Stocking = "2" => Paid,
        PartlyShipped = "101" => PartlyShipped,
        Shipped = "3" => Shipped,
        Cancelled = "4" => Cancelled,
        Completed = "5" => Completed,
    }
}

code_map! {
    /// `after_sale_info.after_sale_status` (qihang DouRefund.java l.42). `0` = no after-sale.
    /// 14 换货成功 is an exchange: nothing was refunded.
    pub enum AfterSaleStatus -> RefundState {
        NoAfterSale = "0" => None,
        ExchangeWaitBuyerReceive = "3" => Requested,
        WaitSellerAgree = "6" => Requested,
        WaitBuyerReturn = "7" => Requested,
        WaitSellerShip = "8" => Requested,
        WaitSellerSecondAgree = "11" => Requested,
        Success = "12" => Refunded,
        ExchangeSuccess = "14" => None,
        SellerRefusedOnce = "27" => Rejected,
        Failed = "28" => Rejected,
        SellerRefusedTwice = "29" => Rejected,
    }
}

code_map! {
    /// Push `tag` (doudian message list: doudian_trade_* 100…113, doudian_refund_* 200…).
    pub enum Tag -> PushEvent {
        TradeCreate = "100" => PushEvent::OrderCreated,
        TradePaid = "101" => PushEvent::OrderPaid,
        TradeSellerShip = "102" => PushEvent::OrderShipped,
        TradeSuccess = "103" => PushEvent::OrderCompleted,
        TradeLogisticsChanged = "104" => PushEvent::OrderChanged,
        TradeAddressChanged = "105" => PushEvent::OrderChanged,
        TradeCanceled = "106" => PushEvent::OrderCancelled,
        TradePartlySellerShip = "108" => PushEvent::OrderShipped,
        TradeAmountChanged = "109" => PushEvent::OrderChanged,
        TradePending = "110" => PushEvent::OrderChanged,
        TradeAddressChangeApplied = "111" => PushEvent::OrderChanged,
        TradeMemoModify = "113" => PushEvent::OrderChanged,
    }
}

pub const DETAIL_METHOD: &str = "order.orderDetail";
pub const LIST_METHOD: &str = "order.searchList";
pub const SUCCESS_CODE: &str = "10000";
/// Renews a shop's access token through the signed gateway with no `access_token`, param_json
/// `{"grant_type": "refresh_token", "refresh_token": …}` (zsmhub/doudian-sdk
/// `access_token_builder.go`); the answer's `data` carries `access_token`, `expires_in`
/// (seconds, 7 days), `refresh_token` (14 days), `shop_id`, `authority_id`.
pub const TOKEN_METHOD: &str = "token.refresh";
/// Exchanges the authorization code for the shop's tokens through the signed gateway, param_json
/// `{"code", "grant_type": "authorization_code"}` (tool apps; the official Go SDK's
/// `token_create_request.go`, westng/doudian-sdk `TokenCreateParam`). The answer's `data` has the
/// refresh call's fields, `shop_id` among them.
pub const TOKEN_CREATE_METHOD: &str = "token.create";
/// The service market's authorization page (`service_id`, `state`; the redirect URI is the one
/// registered with the service, not a parameter) (gaigeshen doudian `Constants.java`).
pub const AUTHORIZE_URL: &str = "https://fuwu.jinritemai.com/authorize";
/// A refresh token that expired or is unknown (renhonghai/doudian-sdk `ErrNoConstant.php`).
pub const REFRESH_REFUSED_SUB_CODE: &str = "dop.token-generate-failed:token-expired";
/// A call with an access token that expired (same source).
pub const TOKEN_EXPIRED_SUB_CODE: &str = "isv.access-token-expired";
/// The throttling answer the simulator gives and the adapter recognises (see SOURCES.md: the
/// exact public code was not found; any error whose sub_code or message speaks of a limit is
/// treated as throttling).
pub const THROTTLE_SUB_CODE: &str = "isv.access-limited";

/// `order.logisticsAdd`: ship a whole order (`order_id`, `company_code`, `logistics_code` = the
/// tracking number; SOURCES.md § Douyin write-back).
pub const SHIP_METHOD: &str = "order.logisticsAdd";
/// orderhub carrier → Douyin `company_code` (kuaidi100-style slugs, as listed by
/// `order.logisticsCompanyList`; see SOURCES.md). 菜鸟 (cainiao) is a network, not one courier:
/// no code.
pub const CARRIERS: &crate::ship::CarrierTable = &[
    ("sf", "shunfeng"),
    ("zto", "zhongtong"),
    ("yto", "yuantong"),
    ("sto", "shentong"),
    ("yunda", "yunda"),
    ("ems", "ems"),
    ("jd", "jd"),
    ("jt", "jtexpress"),
    ("dbl", "debangkuaidi"),
];
/// **Assumed** sub_code of "the order is already shipped" (read as success).
pub const ALREADY_SHIPPED_SUB_CODE: &str = "isv.business-failed:order-already-shipped";
/// **Assumed** sub_code of "the order's state does not allow shipping" (another tracking number).
pub const SHIP_CONFLICT_SUB_CODE: &str = "isv.business-failed:order-status-not-allowed";
/// **Assumed** system error (retry).
/// `sku.syncStock` (库存同步, path `/sku/syncStock`): `product_id`, `sku_id` (or `out_sku_id`),
/// `stock_num`, `incremental` (false: the whole quantity), optional `idempotent_id`,
/// `out_warehouse_id`, `supplier_id`, `store_id` … (westng/doudian-sdk
/// `src/Api/sku_syncStock/SkuSyncStockRequest.php`, `param/SkuSyncStockParam.php`). The answer
/// is the usual envelope (`code` 10000 = success). **Assumed**: `product_id`, `sku_id` and
/// `stock_num` are JSON integers (int64 as in the order calls' ids). One SKU per call
/// (`sku.syncStockBatch` takes several; not used).
pub const STOCK_METHOD: &str = "sku.syncStock";
pub const SYSTEM_ERROR_SUB_CODE: &str = "isp.service-error";

pub struct Douyin;

fn order_from(o: t::ShopOrder, base: &str) -> Result<ChannelOrder, Rejected> {
    let f = |name: &str| format!("{base}.{name}");
    let raw_status = o.order_status.0.trim().to_string();
    let canonical = OrderStatus::parse(&raw_status)
        .ok_or_else(|| Rejected::unknown_status(&f("order_status"), &raw_status))?
        .target();
    let mut lines = Vec::with_capacity(o.sku_order_list.len());
    for (i, s) in o.sku_order_list.iter().enumerate() {
        let lf = |name: &str| format!("{base}.sku_order_list[{i}].{name}");
        let qty = wire::quantity(&lf("item_num"), &s.item_num)?;
        // `origin_amount` is the unit price, `sum_amount` the line total (SDK field docs).
        let unit = wire::fen(&lf("origin_amount"), &s.origin_amount)?;
        let paid = wire::fen(&lf("pay_amount"), &s.pay_amount)?;
        if let Some(sum) = match &s.sum_amount {
            Some(t) if !t.is_empty() => Some(wire::fen(&lf("sum_amount"), t)?),
            _ => None,
        } {
            let gross = unit * rust_decimal::Decimal::from(qty);
            if sum != gross {
                return Err(Rejected::at(
                    "does_not_add_up",
                    &lf("sum_amount"),
                    format!(
                        "{} must equal origin_amount × item_num = {gross}, got {sum}",
                        lf("sum_amount")
                    ),
                ));
            }
        }
        let (refund, refund_raw) = match s
            .after_sale_info
            .as_ref()
            .and_then(|a| wire::opt_str(&a.after_sale_status))
        {
            Some(code) => (
                AfterSaleStatus::parse(&code)
                    .ok_or_else(|| {
                        Rejected::unknown_status(&lf("after_sale_info.after_sale_status"), &code)
                    })?
                    .target(),
                Some(code),
            ),
            None => (RefundState::None, None),
        };
        lines.push(wire::line(
            s.order_id.0.trim().to_string(),
            wire::opt_str(&s.out_sku_id).or_else(|| wire::nonempty(&s.code)),
            wire::opt_str(&s.sku_id),
            s.product_name.clone(),
            qty,
            unit,
            paid,
            refund,
            refund_raw,
        ));
    }
    if lines.is_empty() {
        return Err(Rejected::missing(&f("sku_order_list")));
    }
    let shipping = wire::opt_fen(&f("post_amount"), &o.post_amount)?;
    let paid = wire::fen(&f("pay_amount"), &o.pay_amount)?;
    let created_at = wire::req_unix_secs(&f("create_time"), &o.create_time)?;
    let paid_at = wire::unix_secs(&f("pay_time"), &o.pay_time)?;
    let modified_at = wire::unix_secs(&f("update_time"), &o.update_time)?.unwrap_or(created_at);
    // Presale (定金预售): two phases; the first is the deposit.
    let presale = match o.order_phase_list.first() {
        Some(p) if wire::opt_int("total_phase", &p.total_phase)?.unwrap_or(1) >= 2 => {
            let deposit_phase = o
                .order_phase_list
                .iter()
                .find(|p| wire::opt_str(&p.current_phase).as_deref() == Some("1"));
            let deposit = match deposit_phase {
                Some(p) => {
                    wire::opt_fen(&f("order_phase_list.phase_sum_amount"), &p.phase_sum_amount)?
                }
                None => rust_decimal::Decimal::ZERO,
            };
            let final_phase = o
                .order_phase_list
                .iter()
                .find(|p| wire::opt_str(&p.current_phase).as_deref() == Some("2"));
            let final_paid = final_phase
                .is_some_and(|p| wire::opt_str(&p.pay_success).as_deref() == Some("true"));
            let due = match final_phase {
                Some(p) => {
                    wire::unix_secs(&f("order_phase_list.phase_open_time"), &p.phase_open_time)?
                }
                None => None,
            };
            Some(Presale {
                deposit,
                final_payment: (paid - deposit).max(rust_decimal::Decimal::ZERO),
                final_payment_due: due,
                final_paid,
            })
        }
        _ => None,
    };
    let (shippable, reason) = match &presale {
        Some(p) if !p.final_paid && canonical == CanonicalStatus::Paid => {
            (false, Some("presale final payment outstanding".to_string()))
        }
        _ => (true, None),
    };
    let addr = o.post_addr.unwrap_or_default();
    let name = |n: &Option<t::Named>| n.as_ref().and_then(|n| wire::nonempty(&n.name));
    let receiver = wire::receiver(
        o.encrypt_post_receiver.clone(),
        o.encrypt_post_tel.clone(),
        name(&addr.province),
        name(&addr.city),
        name(&addr.town),
        name(&addr.street),
        addr.encrypt_detail.clone().or(addr.detail.clone()),
        o.doudian_open_id.clone(),
    );
    let amounts = wire::amounts(&lines, shipping, paid);
    let shipment = o.logistics_info.iter().find_map(|l| {
        let carrier = wire::nonempty(&l.company).or_else(|| wire::nonempty(&l.company_name));
        ChannelShipment::new(carrier.as_deref(), wire::opt_str(&l.tracking_no).as_deref())
    });
    Ok(ChannelOrder {
        channel: ChannelKind::Douyin,
        external_order_id: o.order_id.0.trim().to_string(),
        channel_shop_id: wire::opt_str(&o.shop_id),
        channel_status: raw_status,
        canonical,
        lines,
        receiver,
        buyer: ChannelBuyer {
            id: wire::nonempty(&o.doudian_open_id).or(wire::nonempty(&o.open_id)),
            nick: None,
        },
        amounts,
        created_at,
        paid_at,
        modified_at,
        version: None,
        presale,
        shippable,
        not_shippable_reason: reason,
        cancelled_after_payment: canonical == CanonicalStatus::Cancelled && paid_at.is_some(),
        buyer_message: wire::nonempty(&o.buyer_words),
        seller_memo: wire::nonempty(&o.seller_words),
        shipment,
    })
}

fn envelope_error(
    code: &OptText,
    sub_code: &Option<String>,
    msg: &Option<String>,
) -> Option<ApiError> {
    let code = wire::opt_str(code)?;
    if code == SUCCESS_CODE || code == "0" {
        return None;
    }
    let sub = sub_code.clone().unwrap_or_default();
    let msg = msg.clone().unwrap_or_default();
    if sub.contains("limit") || msg.contains("限流") || msg.contains("频繁") {
        return Some(ApiError::Throttled {
            code: format!("{code}/{sub}"),
        });
    }
    if sub.contains("sign") || sub.contains("token") || sub.contains("access-token") {
        return Some(ApiError::Auth {
            code: format!("{code}/{sub}"),
        });
    }
    Some(ApiError::Api {
        code: format!("{code}/{sub}"),
        message: msg.chars().take(200).collect(),
    })
}

/// `md5(secret + "app_key"… + "method"… + "param_json"… + "timestamp"… + "v"… + secret)`, hex.
pub fn api_sign(
    app_key: &str,
    method: &str,
    param_json: &str,
    timestamp: &str,
    v: &str,
    secret: &str,
) -> String {
    let plain = format!(
        "{secret}app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v{v}{secret}"
    );
    crate::sign::md5_hex(plain.as_bytes())
}

pub fn push_sign(app_key: &str, body: &[u8], secret: &str) -> String {
    let mut plain = Vec::with_capacity(app_key.len() + body.len() + secret.len());
    plain.extend_from_slice(app_key.as_bytes());
    plain.extend_from_slice(body);
    plain.extend_from_slice(secret.as_bytes());
    crate::sign::md5_hex(&plain)
}

fn request(
    method: &str,
    params: serde_json::Value,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> ApiRequest {
    signed(method, params, creds, Some(&creds.access_token), now)
}

fn signed(
    method: &str,
    params: serde_json::Value,
    creds: &ShopCredentials,
    access_token: Option<&str>,
    now: DateTime<Utc>,
) -> ApiRequest {
    // serde_json's map keeps keys sorted, which is what the signature wants of param_json.
    let param_json = params.to_string();
    let ts = now.timestamp().to_string();
    let sign = api_sign(&creds.app_key, method, &param_json, &ts, "2", &creds.secret);
    let mut query = vec![
        ("app_key".into(), creds.app_key.clone()),
        ("method".into(), method.into()),
    ];
    if let Some(t) = access_token {
        query.push(("access_token".into(), t.to_owned()));
    }
    query.extend([
        ("timestamp".into(), ts),
        ("v".into(), "2".into()),
        ("sign_method".into(), "md5".into()),
        ("sign".into(), sign),
    ]);
    let query = wire::form_encode(&query);
    ApiRequest {
        method: "POST",
        path_and_query: format!("/{}?{query}", method.replace('.', "/")),
        content_type: "application/json",
        headers: Vec::new(),
        body: param_json.into_bytes(),
    }
}

impl Channel for Douyin {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Douyin
    }

    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected> {
        let env: t::Envelope<t::DetailData> = wire::parse_json(body)?;
        let data = env.data.ok_or_else(|| Rejected::missing("data"))?;
        order_from(data.shop_order_detail, "data.shop_order_detail")
    }

    fn parse_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<PushMessage, Rejected> {
        let value: serde_json::Value = wire::parse_json(body)?;
        let events: Vec<t::PushEvent> = match value {
            serde_json::Value::Array(_) => wire::parse_json(body)?,
            serde_json::Value::Object(_) => vec![wire::parse_json(body)?],
            _ => {
                return Err(Rejected::at(
                    "wrong_type",
                    ".",
                    "the push must be an array of events",
                ));
            }
        };
        let mut items = Vec::with_capacity(events.len());
        for (i, e) in events.into_iter().enumerate() {
            let field = format!("[{i}].data");
            // `data` is a JSON string in the documented form and an object in the SDK samples.
            let data: t::PushData = match &e.data {
                serde_json::Value::String(s) => {
                    wire::parse_json(s.as_bytes()).map_err(|r| Rejected {
                        field: Some(field.clone()),
                        ..r
                    })?
                }
                v @ serde_json::Value::Object(_) => serde_json::from_value(v.clone())
                    .map_err(|_| Rejected::at("wrong_type", &field, "data has the wrong shape"))?,
                _ => {
                    return Err(Rejected::at(
                        "wrong_type",
                        &field,
                        "data must be an object or a JSON string",
                    ));
                }
            };
            let raw = e.tag.0.trim().to_string();
            let event = Tag::parse(&raw)
                .map(Tag::target)
                .unwrap_or(if raw.starts_with('2') {
                    PushEvent::Refund
                } else {
                    PushEvent::Other
                });
            let order_id = wire::opt_str(&data.p_id)
                .ok_or_else(|| Rejected::missing(&format!("{field}.p_id")))?;
            items.push(PushItem {
                event,
                raw_event: raw,
                order_id,
                message_id: e.msg_id,
                channel_shop_id: wire::opt_str(&data.shop_id),
                order: None,
            });
        }
        if items.is_empty() {
            return Err(Rejected::missing("[0]"));
        }
        Ok(PushMessage {
            channel: ChannelKind::Douyin,
            items,
            is_test: false,
        })
    }

    /// Douyin signs the raw body only: there is no signed timestamp, so `tolerance` cannot be
    /// applied here; replays are caught by deduplicating `msg_id`.
    fn verify_push(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
        _tolerance: Duration,
    ) -> Result<(), Rejected> {
        let given = wire::header(headers, "event-sign").ok_or_else(|| {
            Rejected::new(
                "bad_signature",
                Some("event-sign"),
                "the event-sign header is missing",
            )
        })?;
        if let Some(app) = wire::header(headers, "app-id")
            && app != creds.app_key
        {
            return Err(Rejected::bad_signature(
                "the app-id header is not this shop's app",
            ));
        }
        let expected = push_sign(&creds.app_key, body, &creds.secret);
        if !crate::sign::hex_eq(&expected, given) {
            return Err(Rejected::bad_signature(
                "event-sign does not match the body",
            ));
        }
        Ok(())
    }

    fn list_request(
        &self,
        q: &ListQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest {
        let params = serde_json::json!({
            "update_time_start": q.modified_from.timestamp(),
            "update_time_end": q.modified_to.timestamp(),
            "page": q.page.saturating_sub(1),
            "size": q.page_size,
            "order_by": "update_time",
            "order_asc": true,
        });
        request(LIST_METHOD, params, creds, now)
    }

    fn parse_list(&self, body: &[u8]) -> Result<OrderPage, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let env: t::Envelope<t::ListData> = wire::parse_json(body)?;
        let data = env.data.ok_or_else(|| Rejected::missing("data"))?;
        let page = wire::opt_int("data.page", &data.page)?.unwrap_or(0);
        let size = wire::opt_int("data.size", &data.size)?.unwrap_or(0);
        let total = wire::opt_int("data.total", &data.total)?.unwrap_or(0);
        let mut orders = Vec::with_capacity(data.shop_order_list.len());
        for (i, o) in data.shop_order_list.into_iter().enumerate() {
            orders.push(order_from(o, &format!("data.shop_order_list[{i}]"))?);
        }
        Ok(OrderPage {
            orders,
            order_ids: Vec::new(),
            has_next: (page + 1).saturating_mul(size) < total,
            total: u64::try_from(total).ok(),
            next_cursor: None,
        })
    }

    fn detail_request(&self, id: &str, creds: &ShopCredentials, now: DateTime<Utc>) -> ApiRequest {
        request(
            DETAIL_METHOD,
            serde_json::json!({ "shop_order_id": id }),
            creds,
            now,
        )
    }

    fn token_request(
        &self,
        _shop_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Option<ApiRequest> {
        (!creds.refresh_token.is_empty()).then(|| {
            signed(
                TOKEN_METHOD,
                serde_json::json!({"grant_type": "refresh_token", "refresh_token": creds.refresh_token}),
                creds,
                None,
                now,
            )
        })
    }

    fn authorize_url(
        &self,
        api_base_url: &str,
        p: &crate::AuthorizeParams<'_>,
    ) -> Result<String, Rejected> {
        let service = p
            .service_id
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Rejected::missing("service_id"))?;
        Ok(crate::authorize_at(
            api_base_url,
            "jinritemai.com",
            AUTHORIZE_URL,
            &[("service_id", service.trim()), ("state", p.state)],
        ))
    }

    fn code_request(
        &self,
        code: &str,
        _redirect_uri: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_code(code)?;
        Ok(signed(
            TOKEN_CREATE_METHOD,
            serde_json::json!({"code": code, "grant_type": "authorization_code"}),
            creds,
            None,
            now,
        ))
    }

    fn parse_code_token(
        &self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<crate::CodeGrant, ApiError> {
        let grant = self.parse_token(body, now)?;
        crate::token::grant_naming_shop(grant, body, "/data/shop_id")
    }

    fn parse_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<crate::TokenGrant, ApiError> {
        // A refusal names the refresh token's failure (`dop.token-generate-failed:*`); any other
        // error (a wrong app secret included) is tried again.
        if let Some(e) = self.api_error(body) {
            return Err(crate::token::refusal_only(e, |code| {
                code.contains("token-generate-failed") || code.contains("refresh")
            }));
        }
        let v = crate::token::json(body)?;
        let data = v.get("data").ok_or_else(|| Rejected::missing("data"))?;
        use crate::token::Expiry::InSeconds;
        Ok(crate::token::grant(
            data,
            now,
            "/access_token",
            InSeconds("/expires_in"),
            Some(("/refresh_token", None)),
        )?)
    }

    fn api_error(&self, body: &[u8]) -> Option<ApiError> {
        // The answer's data is skipped, not built into a tree: this runs on every answer.
        let env: t::Envelope<serde::de::IgnoredAny> = wire::try_json(body)?;
        envelope_error(&env.code, &env.sub_code, &env.msg.or(env.message))
    }

    fn ship_request(
        &self,
        s: &crate::Shipment,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let code = crate::ship::check(s, CARRIERS, false)?;
        let params = serde_json::json!({
            "order_id": s.external_order_id,
            "company_code": code,
            "logistics_code": s.tracking_no,
        });
        Ok(request(SHIP_METHOD, params, creds, now))
    }

    fn stock_request(
        &self,
        updates: &[crate::StockUpdate],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock(updates, 1)?;
        let u = &updates[0];
        let id = |field: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| Rejected::bad_value(field, "Douyin's numeric id"))
        };
        if u.sku_id.is_empty() {
            return Err(Rejected::missing("sku_id"));
        }
        let params = serde_json::json!({
            "product_id": id("item_id", &u.item_id)?,
            "sku_id": id("sku_id", &u.sku_id)?,
            "stock_num": u.quantity,
            "incremental": false,
        });
        Ok(request(STOCK_METHOD, params, creds, now))
    }

    fn parse_stock_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let env: t::Envelope<serde_json::Value> = wire::parse_json(body)?;
        match wire::opt_str(&env.code).as_deref() {
            Some(SUCCESS_CODE | "0") => Ok(()),
            Some(c) => Err(ApiError::Api {
                code: c.to_owned(),
                message: "the channel did not answer success".into(),
            }),
            None => Err(Rejected::missing("code").into()),
        }
    }

    fn refund_get_request(
        &self,
        refund_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(request(
            refund::DETAIL_METHOD,
            refund::detail_params(refund_id)?,
            creds,
            now,
        ))
    }

    fn parse_refund(&self, body: &[u8]) -> Result<crate::ChannelRefund, ApiError> {
        crate::read_answer(self.api_error(body), body, refund::parse)
    }

    /// `afterSale.List` by `order_id`: the order detail names no after-sale.
    fn order_refunds_request(
        &self,
        external_order_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(request(
            refund::LIST_METHOD,
            refund::list_params(external_order_id)?,
            creds,
            now,
        ))
    }

    fn parse_order_refunds(&self, body: &[u8]) -> Result<Vec<crate::ChannelRefund>, ApiError> {
        crate::read_answer(self.api_error(body), body, refund::parse_list)
    }

    fn refund_decision_request(
        &self,
        r: &crate::ChannelRefund,
        d: &crate::RefundDecision,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(request(
            refund::OPERATE_METHOD,
            refund::decision_params(r, d)?,
            creds,
            now,
        ))
    }

    fn parse_refund_decision_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        self.api_error(body).map_or_else(|| refund::ack(body), Err)
    }

    /// `afterSale.rejectReasonCodeList` for the after-sale.
    fn refusal_reasons_request(
        &self,
        r: &crate::ChannelRefund,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(request(
            refund::REJECT_REASONS_METHOD,
            refund::reasons_params(r)?,
            creds,
            now,
        ))
    }

    fn parse_refusal_reasons(&self, body: &[u8]) -> Result<Vec<crate::RefusalReason>, ApiError> {
        crate::read_answer(self.api_error(body), body, refund::parse_reasons)
    }

    fn refusal_request(
        &self,
        r: &crate::ChannelRefund,
        reason: &str,
        code: Option<&crate::RefusalReason>,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(request(
            refund::OPERATE_METHOD,
            refund::refusal_params(r, reason, code)?,
            creds,
            now,
        ))
    }

    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        crate::ship::ack(self.api_error(body), &[ALREADY_SHIPPED_SUB_CODE], || {
            let env: t::Envelope<serde_json::Value> = wire::parse_json(body)?;
            match wire::opt_str(&env.code) {
                Some(_) => Ok(()),
                None => Err(Rejected::missing("code")),
            }
        })
    }
}

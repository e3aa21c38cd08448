//! Pinduoduo (拼多多). Detail `pdd.order.information.get`, incremental pull
//! `pdd.order.number.list.increment.get` by `start_updated_at`/`end_updated_at` (Unix seconds)
//! with `page`/`page_size`/`use_has_next`; every call is a form POST to `/api/router` with
//! `type`, `client_id`, `access_token`, `timestamp` and `sign = UPPER(MD5(secret + sorted(k+v) +
//! secret))`. Only paid orders exist on the API: `order_status` says shipping (1/2/3),
//! `confirm_status` whether the deal stands (2 = cancelled), `group_status` whether the group
//! formed, `risk_control_status` whether the order is under review. Push: **assumed** form, see
//! SOURCES.md § Pinduoduo. The seller's agreement to an after-sale: [`refund`] (no refusal call).

pub mod pmc;
pub mod refund;
#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::wire;
use crate::{
    ApiError, ApiRequest, CanonicalStatus, Channel, ChannelBuyer, ChannelKind, ChannelOrder,
    ChannelShipment, ListQuery, OrderPage, Presale, PushEvent, PushItem, PushMessage, RefundState,
    Rejected, ShopCredentials,
};
use transformers as t;

code_map! {
    /// `order_status` (发货状态: open-pdd `pdd_order_information_get.rs`; pdd-node-sdk
    /// PddOrderInformationGet.ts l.398).
    pub enum OrderStatus -> CanonicalStatus {
        WaitShip = "1" => Paid,
        ShippedWaitSign = "2" => Shipped,
        Signed = "3" => Delivered,
    }
}

code_map! {
    /// `refund_status` (order level; PDD orders are one SKU as a rule, so it applies to every
    /// line): 1 none or closed, 2 after-sale in progress, 3 refunding, 4 refunded.
    pub enum RefundStatus -> RefundState {
        NoneOrClosed = "1" => None,
        InProgress = "2" => Requested,
        Refunding = "3" => Requested,
        Refunded = "4" => Refunded,
    }
}

code_map! {
    /// `confirm_status` (成交状态): 0 not yet confirmed, 1 confirmed, 2 cancelled.
    pub enum ConfirmStatus -> bool {
        NotConfirmed = "0" => false,
        Confirmed = "1" => true,
        Cancelled = "2" => false,
    }
}

code_map! {
    /// `group_status` (成团状态) → whether the group stands: 0 forming, 1 formed, 2 failed.
    pub enum GroupStatus -> bool {
        Forming = "0" => false,
        Formed = "1" => true,
        Failed = "2" => false,
    }
}

code_map! {
    /// `risk_control_status` → under review: 0 normal, 1 审核中.
    pub enum RiskControlStatus -> bool {
        Normal = "0" => false,
        UnderReview = "1" => true,
    }
}

code_map! {
    /// `step_order_info.step_trade_status` of deposit (定金) orders → final paid.
    pub enum StepTradeStatus -> bool {
        NothingPaid = "0" => false,
        DepositPaid = "1" => false,
        AllPaid = "2" => true,
    }
}

pub const INCREMENT_TYPE: &str = "pdd.order.number.list.increment.get";
pub const INFO_TYPE: &str = "pdd.order.information.get";
pub const PATH: &str = "/api/router";
/// Renews a shop's access token through the signed gateway with `refresh_token` and no
/// `access_token` (the official Java SDK's `PopAccessTokenClient.refresh`, ruhao/pinduoduo). The
/// answer `pop_auth_token_refresh_response` carries `access_token`, `expires_in` (seconds),
/// `refresh_token`, `refresh_token_expires_in`, `owner_id`, `scope`.
pub const TOKEN_TYPE: &str = "pdd.pop.auth.token.refresh";
/// Exchanges the authorization code for the shop's tokens through the signed gateway: `code`
/// (niltor/open-pdd-net-sdk `CreatePopAuthTokenRequestModel`, lywzx/pdd-node-sdk
/// `PddPopAuthTokenCreate`). The answer `pop_auth_token_create_response` has the refresh call's
/// fields and `owner_id` (商家店铺id).
pub const TOKEN_CREATE_TYPE: &str = "pdd.pop.auth.token.create";
/// The merchant's web authorization page (`response_type=code`, `client_id`, `redirect_uri`,
/// `state`).
pub const AUTHORIZE_URL: &str = "https://fuwu.pinduoduo.com/service-market/auth";
/// **Assumed** (no public sample of the refusal): the gateway's error for a refresh token that is
/// unknown or expired. Besides it, only the gateway's credential errors (10019, messages about
/// the access token or the signature) are refusals; any other error is tried again.
pub const REFRESH_REFUSED_CODE: &str = "10020";
/// **Assumed** (see SOURCES.md): the gateway's rate-limit error code. Errors whose message
/// speaks of 限流 / 频繁 / limit are throttling too.
pub const THROTTLE_CODE: &str = "70031";
/// **Assumed**: access_token invalid or expired. Messages about the signature or the
/// access_token are auth errors too.
pub const AUTH_CODE: &str = "10019";
/// `pdd.goods.quantity.update` (商品库存更新接口): `goods_id`, `sku_id` (or `outer_id`),
/// `quantity`, `update_type` 1 = whole quantity (全量, the default); answer
/// `goods_quantity_update_response{is_success}` (PDD POP SDK `PddGoodsQuantityUpdateRequest`).
/// One SKU per call.
pub const STOCK_TYPE: &str = "pdd.goods.quantity.update";

/// `pdd.logistics.online.send`: `order_sn`, `logistics_id` (numeric), `tracking_number`; answer
/// `logistics_online_send_response{is_success}` (lywzx/pdd-node-sdk). Whole orders only.
pub const SHIP_TYPE: &str = "pdd.logistics.online.send";
/// orderhub carrier → PDD `logistics_id` (`pdd.logistics.companies.get` ids). **Assumed** (from
/// memory, no public table found): verify against the companies API before production.
pub const CARRIERS: &crate::ship::CarrierTable = &[
    ("sto", "1"),
    ("sf", "44"),
    ("yto", "85"),
    ("zto", "115"),
    ("ems", "118"),
    ("jd", "120"),
    ("yunda", "121"),
    ("jt", "384"),
];
/// **Assumed** error code of "already shipped" (read as success).
pub const ALREADY_SHIPPED_CODE: &str = "52101";
/// **Assumed** error code of "the order's state does not allow shipping".
pub const SHIP_CONFLICT_CODE: &str = "52102";
/// **Assumed** system error code.
pub const SYSTEM_ERROR_CODE: &str = "50000";

/// `pdd.goods.detail.get` (商品明细): `goods_id`; answer `goods_detail_get_response{goods_id,
/// sku_list[{sku_id, quantity, reserve_quantity, is_onsale}]}` (lywzx/pdd-node-sdk
/// `PddGoodsDetailGet.ts`, 3,000 calls a minute per app). One call reads every SKU of the goods;
/// `quantity` is what the shelf sells (`reserve_quantity`, units held by unpaid orders, is not
/// added).
pub const GOODS_READ_TYPE: &str = "pdd.goods.detail.get";
/// SKU ids one read takes: the answer holds the whole goods, this only bounds the query.
pub const STOCK_READ_MAX: usize = 200;

pub struct Pdd;

fn code(t: &wire::OptText, default: &str) -> String {
    wire::opt_str(t).unwrap_or_else(|| default.to_string())
}

fn parse_code<C: Copy>(
    parse: impl Fn(&str) -> Option<C>,
    field: &str,
    raw: &str,
) -> Result<C, Rejected> {
    parse(raw).ok_or_else(|| Rejected::unknown_status(field, raw))
}

pub(crate) fn order_from(o: t::OrderInfo, base: &str) -> Result<ChannelOrder, Rejected> {
    let f = |n: &str| format!("{base}.{n}");
    let raw_status = o.order_status.as_str().trim().to_string();
    let status = parse_code(OrderStatus::parse, &f("order_status"), &raw_status)?;
    let refund_code = code(&o.refund_status, "1");
    let refund = parse_code(RefundStatus::parse, &f("refund_status"), &refund_code)?;
    let confirm = parse_code(
        ConfirmStatus::parse,
        &f("confirm_status"),
        &code(&o.confirm_status, "1"),
    )?;
    let group = parse_code(
        GroupStatus::parse,
        &f("group_status"),
        &code(&o.group_status, "1"),
    )?;
    let risk = parse_code(
        RiskControlStatus::parse,
        &f("risk_control_status"),
        &code(&o.risk_control_status, "0"),
    )?;
    // Cancelled: the deal was cancelled, or everything was refunded before shipping.
    let canonical = if confirm == ConfirmStatus::Cancelled
        || (refund == RefundStatus::Refunded && status == OrderStatus::WaitShip)
    {
        CanonicalStatus::Cancelled
    } else {
        status.target()
    };
    let external_order_id = o.order_sn.as_str().trim().to_string();
    if external_order_id.is_empty() {
        return Err(Rejected::missing(&f("order_sn")));
    }
    let after_sale = wire::opt_str(&o.after_sales_status).filter(|c| c != "0");
    let refund_raw = (refund != RefundStatus::NoneOrClosed)
        .then(|| after_sale.clone().unwrap_or_else(|| refund_code.clone()));
    let items = o.item_list.as_deref().unwrap_or(&[]);
    let mut lines = Vec::with_capacity(items.len());
    let mut seen: Vec<String> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let lf = |n: &str| format!("{base}.item_list[{i}].{n}");
        let quantity = wire::quantity(&lf("goods_count"), &it.goods_count)?;
        let unit = wire::yuan(&lf("goods_price"), &it.goods_price)?;
        // PDD has no line id and no line payment: the SKU id names the line, the order-level
        // discount covers what was taken off.
        let sku_id = wire::opt_str(&it.sku_id).or_else(|| wire::opt_str(&it.goods_id));
        let mut line_id = sku_id
            .clone()
            .unwrap_or_else(|| format!("{external_order_id}-{i}"));
        if seen.contains(&line_id) {
            line_id = format!("{line_id}-{i}");
        }
        seen.push(line_id.clone());
        lines.push(wire::line(
            line_id,
            wire::nonempty(&it.outer_id).or_else(|| wire::nonempty(&it.outer_goods_id)),
            sku_id,
            it.goods_name.clone(),
            quantity,
            unit,
            unit * rust_decimal::Decimal::from(quantity),
            refund.target(),
            refund_raw.clone(),
        ));
    }
    if lines.is_empty() {
        return Err(Rejected::missing(&f("item_list")));
    }
    // pay_amount = goods_amount − discount_amount + postage + 服务费 (order doc). Service fees
    // (顺丰加价, delivery to the door, installation) are charges for getting the goods to the
    // buyer, which the order can only say as shipping: without them here, they would be read as
    // a negative discount (and the order refused) or hide part of the real discount.
    let mut shipping = wire::opt_yuan(&f("postage"), &o.postage)?;
    for (i, s) in o.service_fee_detail.iter().flatten().enumerate() {
        let fee = wire::opt_yuan(
            &f(&format!("service_fee_detail[{i}].service_fee")),
            &s.service_fee,
        )?;
        if fee < rust_decimal::Decimal::ZERO {
            return Err(Rejected::bad_value(
                &f(&format!("service_fee_detail[{i}].service_fee")),
                "an amount of at least 0",
            ));
        }
        shipping += fee;
    }
    let paid = wire::yuan(&f("pay_amount"), &o.pay_amount)?;
    let created_at = wire::req_china_time(&f("created_time"), &o.created_time)?;
    let paid_at = wire::china_time(&f("pay_time"), &o.pay_time)?;
    let modified_at = wire::china_time(&f("updated_at"), &o.updated_at)?.unwrap_or(created_at);

    // 定金 (deposit) orders: trade_type 1 with step_order_info.
    let presale = match (code(&o.trade_type, "0").as_str(), &o.step_order_info) {
        ("1", Some(s)) => {
            let step_code = code(&s.step_trade_status, "0");
            let final_paid = parse_code(
                StepTradeStatus::parse,
                &f("step_order_info.step_trade_status"),
                &step_code,
            )?
            .target();
            let deposit = wire::opt_yuan(
                &f("step_order_info.advanced_paid_fee"),
                &s.advanced_paid_fee,
            )?
            .min(paid);
            Some(Presale {
                deposit,
                final_payment: paid - deposit,
                final_payment_due: None,
                final_paid,
            })
        }
        ("0" | "1", _) => None,
        (other, _) => return Err(Rejected::unknown_status(&f("trade_type"), other)),
    };

    let reason = if canonical != CanonicalStatus::Paid {
        None
    } else if risk.target() {
        Some("under risk review (risk_control_status 1)")
    } else if group == GroupStatus::Forming {
        Some("the group has not formed yet")
    } else if group == GroupStatus::Failed {
        Some("the group failed (the order will be refunded)")
    } else if !confirm.target() {
        Some("the deal is not confirmed yet (confirm_status 0)")
    } else if presale.as_ref().is_some_and(|p| !p.final_paid) {
        Some("presale final payment outstanding")
    } else {
        None
    };

    // The ciphertexts when PDD gives them (waiting to ship, not under review), else the masks.
    let pick = |cipher: &Option<String>, mask: &Option<String>| {
        wire::nonempty(cipher).or_else(|| wire::nonempty(mask))
    };
    let receiver = wire::receiver(
        pick(&o.receiver_name, &o.receiver_name_mask),
        pick(&o.receiver_phone, &o.receiver_phone_mask),
        o.province.clone(),
        o.city.clone(),
        o.town.clone(),
        None,
        pick(&o.receiver_address, &o.receiver_address_mask),
        o.open_address_id.clone(),
    );
    let amounts = wire::amounts(&lines, shipping, paid);
    // `logistics_id` is PDD's carrier id, `tracking_number` the waybill (order_info doc).
    let shipment = ChannelShipment::new(
        wire::opt_str(&o.logistics_id).as_deref(),
        o.tracking_number.as_deref(),
    );
    Ok(ChannelOrder {
        channel: ChannelKind::Pdd,
        external_order_id,
        channel_shop_id: None,
        channel_status: raw_status,
        canonical,
        lines,
        receiver,
        buyer: ChannelBuyer::default(),
        amounts,
        created_at,
        paid_at,
        modified_at,
        version: None,
        presale,
        shippable: reason.is_none(),
        not_shippable_reason: reason.map(str::to_string),
        cancelled_after_payment: canonical == CanonicalStatus::Cancelled && paid_at.is_some(),
        buyer_message: wire::nonempty(&o.buyer_memo),
        seller_memo: wire::nonempty(&o.remark),
        shipment,
    })
}

/// The signed form this adapter takes as a push (`client_id`, `type`, `id`, `content`,
/// `timestamp` in Unix seconds, `sign` as for an API call): what the simulator sends, and what
/// the message service's relay hands over for each message.
pub fn push_form(
    topic: &str,
    id: Option<&str>,
    content: &str,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> Vec<u8> {
    let mut params: Vec<(String, String)> = vec![
        ("client_id".into(), creds.app_key.clone()),
        ("type".into(), topic.into()),
        ("content".into(), content.into()),
        ("timestamp".into(), now.timestamp().to_string()),
    ];
    if let Some(id) = id {
        params.push(("id".into(), id.into()));
    }
    let sign = api_sign(&params, &creds.secret);
    params.push(("sign".into(), sign));
    wire::form_encode(&params).into_bytes()
}

/// `UPPER(MD5(secret + sorted(k+v) + secret))` over every parameter but `sign`.
pub fn api_sign(params: &[(String, String)], secret: &str) -> String {
    crate::sign::wrapped_md5_upper(params, secret)
}

fn request(
    kind: &str,
    biz: Vec<(String, String)>,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> ApiRequest {
    signed(kind, biz, creds, Some(&creds.access_token), now)
}

fn signed(
    kind: &str,
    biz: Vec<(String, String)>,
    creds: &ShopCredentials,
    access_token: Option<&str>,
    now: DateTime<Utc>,
) -> ApiRequest {
    let mut params: Vec<(String, String)> = vec![
        ("type".into(), kind.into()),
        ("client_id".into(), creds.app_key.clone()),
    ];
    if let Some(t) = access_token {
        params.push(("access_token".into(), t.to_owned()));
    }
    params.extend([
        ("timestamp".into(), now.timestamp().to_string()),
        ("data_type".into(), "JSON".into()),
    ]);
    params.extend(biz);
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

/// What a PDD message topic means (`pdd_trade_*`, `pdd_refund_*`; **assumed** names).
pub fn topic_event(topic: &str) -> PushEvent {
    match topic {
        "pdd_trade_TradeConfirmed" => PushEvent::OrderPaid,
        "pdd_trade_TradeSellerShip" => PushEvent::OrderShipped,
        "pdd_trade_TradeSuccess" => PushEvent::OrderCompleted,
        "pdd_trade_TradeClose" => PushEvent::OrderCancelled,
        t if t.starts_with("pdd_refund_") => PushEvent::Refund,
        t if t.starts_with("pdd_trade_") => PushEvent::OrderChanged,
        _ => PushEvent::Other,
    }
}

fn form_param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn envelope_error(e: &t::PddError) -> ApiError {
    let code = wire::opt_str(&e.error_code).unwrap_or_default();
    let sub = wire::opt_str(&e.sub_code).unwrap_or_default();
    let msg = format!(
        "{} {}",
        e.error_msg.clone().unwrap_or_default(),
        e.sub_msg.clone().unwrap_or_default()
    );
    let tag = if sub.is_empty() {
        code.clone()
    } else {
        format!("{code}/{sub}")
    };
    let lower = msg.to_ascii_lowercase();
    if code == THROTTLE_CODE
        || msg.contains("限流")
        || msg.contains("频繁")
        || lower.contains("limit")
    {
        return ApiError::Throttled { code: tag };
    }
    if code == AUTH_CODE || msg.contains("签名") || lower.contains("access_token") {
        return ApiError::Auth { code: tag };
    }
    ApiError::Api {
        code: tag,
        message: msg.trim().chars().take(200).collect(),
    }
}

impl Channel for Pdd {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Pdd
    }

    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected> {
        let env: t::InfoEnvelope = wire::parse_json(body)?;
        let r = env
            .order_info_get_response
            .ok_or_else(|| Rejected::missing("order_info_get_response"))?;
        order_from(r.order_info, "order_info_get_response.order_info")
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
        let topic = form_param(&form, "type")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Rejected::missing("type"))?
            .to_string();
        let content = form_param(&form, "content").ok_or_else(|| Rejected::missing("content"))?;
        let c: t::PushContent = wire::parse_json(content.as_bytes()).map_err(|r| Rejected {
            field: Some(format!("content.{}", r.field.unwrap_or_default())),
            ..r
        })?;
        let order_id =
            wire::opt_str(&Some(c.tid)).ok_or_else(|| Rejected::missing("content.tid"))?;
        Ok(PushMessage {
            channel: ChannelKind::Pdd,
            items: vec![PushItem {
                event: topic_event(&topic),
                raw_event: topic,
                order_id,
                message_id: form_param(&form, "id").map(str::to_string),
                channel_shop_id: wire::opt_str(&c.mall_id),
                order: None,
            }],
            is_test: false,
        })
    }

    /// Every field but `sign` is signed like an API call; `timestamp` (Unix seconds) is among
    /// them and is checked against `now ± tolerance`.
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
        if form_param(&form, "client_id") != Some(creds.app_key.as_str()) {
            return Err(Rejected::bad_signature("client_id is not this shop's app"));
        }
        if !crate::sign::hex_eq(&api_sign(&form, &creds.secret), given) {
            return Err(Rejected::bad_signature("sign does not match the fields"));
        }
        let ts = form_param(&form, "timestamp").map(|s| wire::Text(s.to_string()));
        let at =
            wire::unix_secs("timestamp", &ts)?.ok_or_else(|| Rejected::missing("timestamp"))?;
        wire::check_fresh(at.with_timezone(&Utc), now, tolerance)
    }

    fn list_request(
        &self,
        q: &ListQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest {
        request(
            INCREMENT_TYPE,
            vec![
                (
                    "start_updated_at".into(),
                    q.modified_from.timestamp().to_string(),
                ),
                (
                    "end_updated_at".into(),
                    q.modified_to.timestamp().to_string(),
                ),
                ("is_lucky_flag".into(), "0".into()),
                ("order_status".into(), "5".into()),
                ("refund_status".into(), "5".into()),
                ("page".into(), q.page.to_string()),
                ("page_size".into(), q.page_size.to_string()),
                ("use_has_next".into(), "true".into()),
            ],
            creds,
            now,
        )
    }

    fn parse_list(&self, body: &[u8]) -> Result<OrderPage, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let env: t::IncrementEnvelope = wire::parse_json(body)?;
        let r = env
            .order_sn_increment_get_response
            .ok_or_else(|| Rejected::missing("order_sn_increment_get_response"))?;
        let total = wire::opt_int(
            "order_sn_increment_get_response.total_count",
            &r.total_count,
        )?;
        let mut orders = Vec::new();
        for (i, o) in r.order_sn_list.unwrap_or_default().into_iter().enumerate() {
            orders.push(order_from(
                o,
                &format!("order_sn_increment_get_response.order_sn_list[{i}]"),
            )?);
        }
        let has_next = r.has_next.unwrap_or(!orders.is_empty());
        Ok(OrderPage {
            orders,
            order_ids: Vec::new(),
            has_next,
            // With use_has_next PDD answers no total (or 0): only a positive count is a total.
            total: total.filter(|t| *t > 0).and_then(|t| u64::try_from(t).ok()),
            next_cursor: None,
        })
    }

    fn detail_request(&self, id: &str, creds: &ShopCredentials, now: DateTime<Utc>) -> ApiRequest {
        request(
            INFO_TYPE,
            vec![("order_sn".into(), id.to_string())],
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
        let biz = vec![
            ("order_sn".into(), s.external_order_id.clone()),
            ("logistics_id".into(), id.into()),
            ("tracking_number".into(), s.tracking_no.clone()),
        ];
        Ok(request(SHIP_TYPE, biz, creds, now))
    }

    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        crate::ship::ack(self.api_error(body), &[ALREADY_SHIPPED_CODE], || {
            crate::ship::success_flag(body, "/logistics_online_send_response/is_success")
        })
    }

    fn stock_request(
        &self,
        updates: &[crate::StockUpdate],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock(updates, 1)?;
        let u = &updates[0];
        // `sku_id` or `outer_id` is required: a PDD goods always has SKUs.
        if u.sku_id.is_empty() {
            return Err(Rejected::missing("sku_id"));
        }
        let biz = vec![
            ("goods_id".into(), u.item_id.clone()),
            ("sku_id".into(), u.sku_id.clone()),
            ("quantity".into(), u.quantity.to_string()),
            ("update_type".into(), "1".into()),
        ];
        Ok(request(STOCK_TYPE, biz, creds, now))
    }

    fn parse_stock_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        crate::ship::success_flag(body, "/goods_quantity_update_response/is_success").map_err(|r| {
            match r.rule {
                "not_shipped" => ApiError::Api {
                    code: "is_success_false".into(),
                    message: "the channel answered is_success false".into(),
                },
                _ => ApiError::Rejected(r),
            }
        })
    }

    fn stock_read_batch_max(&self) -> usize {
        STOCK_READ_MAX
    }

    fn stock_read_request(
        &self,
        q: &crate::StockQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock_query(q, STOCK_READ_MAX)?;
        let biz = vec![("goods_id".into(), q.item_id.clone())];
        Ok(request(GOODS_READ_TYPE, biz, creds, now))
    }

    fn parse_stock_read(&self, body: &[u8]) -> Result<Vec<crate::StockLevel>, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        let goods = v
            .get("goods_detail_get_response")
            .filter(|g| g.is_object())
            .ok_or_else(|| Rejected::missing("goods_detail_get_response"))?;
        let id = crate::level_id(goods.get("goods_id"), "goods_detail_get_response.goods_id")?;
        let skus = match goods.get("sku_list") {
            None | Some(serde_json::Value::Null) => &[][..],
            Some(serde_json::Value::Array(a)) => a.as_slice(),
            Some(_) => {
                return Err(Rejected::bad_value("sku_list", "a list of SKUs").into());
            }
        };
        let mut levels = Vec::with_capacity(skus.len());
        for (i, sku) in skus.iter().enumerate() {
            levels.push(crate::StockLevel {
                item_id: id.clone(),
                sku_id: crate::level_id(sku.get("sku_id"), &format!("sku_list[{i}].sku_id"))?,
                quantity: crate::level_qty(
                    sku.get("quantity"),
                    &format!("sku_list[{i}].quantity"),
                )?,
            });
        }
        Ok(levels)
    }

    fn order_refunds_request(
        &self,
        external_order_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let biz = refund::order_params(external_order_id)?;
        Ok(request(refund::INFO_TYPE, biz, creds, now))
    }

    /// By the order alone the detail answers the order's after-sale: a list of one.
    fn parse_order_refunds(&self, body: &[u8]) -> Result<Vec<crate::ChannelRefund>, ApiError> {
        Ok(vec![self.parse_refund(body)?])
    }

    fn refund_get_request(
        &self,
        refund_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let biz = refund::get_params(refund_id)?;
        Ok(request(refund::INFO_TYPE, biz, creds, now))
    }

    fn parse_refund(&self, body: &[u8]) -> Result<crate::ChannelRefund, ApiError> {
        crate::read_answer(self.api_error(body), body, refund::parse)
    }

    fn refund_decision_request(
        &self,
        r: &crate::ChannelRefund,
        d: &crate::RefundDecision,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let biz = refund::decision_params(r, d)?;
        Ok(request(refund::AGREE_TYPE, biz, creds, now))
    }

    fn parse_refund_decision_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        self.api_error(body).map_or_else(|| refund::ack(body), Err)
    }

    fn token_request(
        &self,
        _shop_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Option<ApiRequest> {
        (!creds.refresh_token.is_empty()).then(|| {
            signed(
                TOKEN_TYPE,
                vec![("refresh_token".into(), creds.refresh_token.clone())],
                creds,
                None,
                now,
            )
        })
    }

    fn parse_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<crate::TokenGrant, ApiError> {
        if let Some(env) = wire::try_json::<t::ErrorEnvelope>(body)
            && let Some(e) = &env.error_response
        {
            let code = wire::opt_str(&e.error_code).unwrap_or_default();
            return Err(crate::token::refusal_only(envelope_error(e), |_| {
                code == REFRESH_REFUSED_CODE
            }));
        }
        let v = crate::token::json(body)?;
        use crate::token::Expiry::InSeconds;
        let r = v
            .get("pop_auth_token_refresh_response")
            .or_else(|| v.get("pop_auth_token_create_response"))
            .ok_or_else(|| Rejected::missing("pop_auth_token_refresh_response"))?;
        Ok(crate::token::grant(
            r,
            now,
            "/access_token",
            InSeconds("/expires_in"),
            Some((
                "/refresh_token",
                Some(InSeconds("/refresh_token_expires_in")),
            )),
        )?)
    }

    fn authorize_url(
        &self,
        api_base_url: &str,
        p: &crate::AuthorizeParams<'_>,
    ) -> Result<String, Rejected> {
        Ok(crate::authorize_at(
            api_base_url,
            "pinduoduo.com",
            AUTHORIZE_URL,
            &[
                ("response_type", "code"),
                ("client_id", p.app_key),
                ("redirect_uri", p.redirect_uri),
                ("state", p.state),
            ],
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
            TOKEN_CREATE_TYPE,
            vec![("code".into(), code.to_owned())],
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
        crate::token::grant_naming_shop(grant, body, "/pop_auth_token_create_response/owner_id")
    }

    fn api_error(&self, body: &[u8]) -> Option<ApiError> {
        let env: t::ErrorEnvelope = wire::try_json(body)?;
        env.error_response.as_ref().map(envelope_error)
    }
}

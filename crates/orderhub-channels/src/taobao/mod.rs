//! Taobao/Tmall (TOP). Detail `taobao.trade.fullinfo.get`, incremental pull
//! `taobao.trades.sold.increment.get` by `start_modified`/`end_modified` with
//! `page_no`/`page_size`/`use_has_next`; every call is a form POST to `/router/rest` signed
//! `UPPER(MD5(secret + sorted(k+v) + secret))` (`sign_method=md5`) or
//! `UPPER(HMAC_MD5(secret, sorted(k+v)))` (`hmac`). TOP error `code 7` ("App Call Limited") is
//! throttling. Push: TOP's message service (TMC) is a WebSocket with a binary framing ([`tmc`],
//! relayed by the hub); what reaches an HTTP webhook here is a TOP-signed form (`topic`,
//! `content`, `timestamp`, …, `sign`) **defined by orderhub** — the relay's — see SOURCES.md
//! § Taobao.

pub mod refund;
#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod tmc;
pub mod transformers;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::wire;
use crate::{
    ApiError, ApiRequest, CanonicalStatus, Channel, ChannelBuyer, ChannelKind, ChannelOrder,
    ChannelShipment, ListQuery, OrderPage, Presale, PushEvent, PushItem, PushMessage, RefundState,
    Rejected, ShopCredentials,
};
use transformers as t;

code_map! {
    /// `trade.status` (TOP Trade doc via bububa/opentaobao `model/trade/Trade.go`; qihang
    /// OmsTaoOrder.java l.225).
    pub enum TradeStatus -> CanonicalStatus {
        TradeNoCreatePay = "TRADE_NO_CREATE_PAY" => PendingPayment,
        WaitBuyerPay = "WAIT_BUYER_PAY" => PendingPayment,
        /// 外卡支付付款确认中: the payment is not confirmed yet.
        PayPending = "PAY_PENDING" => PendingPayment,
        /// 0元购合约中: a contract order, nothing paid yet.
        WaitPreAuthConfirm = "WAIT_PRE_AUTH_CONFIRM" => PendingPayment,
        WaitSellerSendGoods = "WAIT_SELLER_SEND_GOODS" => Paid,
        /// 拼团中 or shipping held by the platform: paid but must not ship (see `shippable`).
        PaidForbidConsign = "PAID_FORBID_CONSIGN" => Paid,
        SellerConsignedPart = "SELLER_CONSIGNED_PART" => PartlyShipped,
        WaitBuyerConfirmGoods = "WAIT_BUYER_CONFIRM_GOODS" => Shipped,
        /// 买家已签收 (cash on delivery).
        TradeBuyerSigned = "TRADE_BUYER_SIGNED" => Delivered,
        TradeFinished = "TRADE_FINISHED" => Completed,
        /// Closed after payment because everything was refunded.
        TradeClosed = "TRADE_CLOSED" => Cancelled,
        /// Closed before payment by the buyer, the seller or Taobao.
        TradeClosedByTaobao = "TRADE_CLOSED_BY_TAOBAO" => Cancelled,
    }
}

code_map! {
    /// `order.refund_status` per child order (TOP Order doc; qihang OmsTaoRefund.java l.94).
    /// `NO_REFUND` is what TOP writes on lines without a refund. `CLOSED` = closed without a
    /// refund.
    pub enum RefundStatus -> RefundState {
        NoRefund = "NO_REFUND" => None,
        WaitSellerAgree = "WAIT_SELLER_AGREE" => Requested,
        WaitBuyerReturnGoods = "WAIT_BUYER_RETURN_GOODS" => Requested,
        WaitSellerConfirmGoods = "WAIT_SELLER_CONFIRM_GOODS" => Requested,
        SellerRefuseBuyer = "SELLER_REFUSE_BUYER" => Rejected,
        Closed = "CLOSED" => Rejected,
        Success = "SUCCESS" => Refunded,
    }
}

code_map! {
    /// `step_trade_status` of step-paid (presale) trades → (deposit paid, final paid).
    pub enum StepTradeStatus -> (bool, bool) {
        FrontNopaidFinalNopaid = "FRONT_NOPAID_FINAL_NOPAID" => (false, false),
        FrontPaidFinalNopaid = "FRONT_PAID_FINAL_NOPAID" => (true, false),
        FrontPaidFinalPaid = "FRONT_PAID_FINAL_PAID" => (true, true),
    }
}

pub const INCREMENT_METHOD: &str = "taobao.trades.sold.increment.get";
pub const FULLINFO_METHOD: &str = "taobao.trade.fullinfo.get";
pub const PATH: &str = "/router/rest";
/// Renews a shop's session with its `refresh_token`, through the signed router without a
/// `session` (bububa/opentaobao `TaobaoTopAuthTokenRefresh`, aliexpress-sdk
/// `TopAuthTokenRefreshRequest`). The answer's `token_result` is a JSON document in a string.
pub const TOKEN_METHOD: &str = "taobao.top.auth.token.refresh";
/// Exchanges the authorization code for the shop's session through the signed router without a
/// `session`: `code` (and an optional `uuid`, not sent) (bububa/opentaobao
/// `TaobaoTopAuthTokenCreate`, the TOP SDKs' `TopAuthTokenCreateRequest`). The answer
/// `top_auth_token_create_response.token_result` has the refresh call's shape.
pub const TOKEN_CREATE_METHOD: &str = "taobao.top.auth.token.create";
/// The seller's authorization page (`response_type=code`, `client_id`, `redirect_uri`, `state`,
/// `view=web`).
pub const AUTHORIZE_URL: &str = "https://oauth.taobao.com/authorize";
/// **Assumed** (no public sample of the refusal): the router's business error with this sub code
/// when the refresh token is unknown, expired or the app may not refresh. Any error that is not
/// The refusal is recognised by its sub code (this one, or any naming the refresh token or the
/// session); other errors are tried again.
pub const REFRESH_REFUSED_SUB_CODE: &str = "isv.refresh-token-invalid";
/// TOP error `code 7` "App Call Limited" (`sub_code accesscontrol.limited-by-app-access-count`).
pub const THROTTLE_CODE: &str = "7";
/// TOP errors about the caller: 25 invalid signature, 26 missing session, 27 invalid session,
/// 28 missing app key, 29 invalid app key (TOP error list, from memory: see SOURCES.md).
pub const AUTH_CODES: [&str; 5] = ["25", "26", "27", "28", "29"];
/// The trade fields asked for (the increment API answers only what `fields` names).
pub const FIELDS: &str = "tid,tid_str,status,type,created,pay_time,modified,end_time,payment,total_fee,post_fee,discount_fee,step_trade_status,step_paid_fee,seller_nick,buyer_nick,buyer_open_uid,buyer_message,seller_memo,receiver_name,receiver_mobile,receiver_phone,receiver_state,receiver_city,receiver_district,receiver_town,receiver_address,oaid,forbid_consign,team_buy_hold,share_group_hold,top_hold,orders";

/// `taobao.logistics.offline.send` (自己联系物流): `tid`, `out_sid` (tracking number),
/// `company_code`; a partial shipment sends `is_split=1` and `sub_tid` (comma-separated oids).
/// Answer `logistics_offline_send_response{shipping{is_success}}` (bububa/opentaobao).
pub const SHIP_METHOD: &str = "taobao.logistics.offline.send";
/// orderhub carrier → TOP `company_code` (`taobao.logistics.companies.get` codes; SOURCES.md).
pub const CARRIERS: &crate::ship::CarrierTable = &[
    ("sf", "SF"),
    ("zto", "ZTO"),
    ("yto", "YTO"),
    ("sto", "STO"),
    ("yunda", "YUNDA"),
    ("ems", "EMS"),
    ("jd", "JD"),
    ("jt", "JTSD"),
    ("dbl", "DBKD"),
];
/// **Assumed** sub_code of "already shipped" (read as success).
pub const ALREADY_SHIPPED_SUB_CODE: &str = "isv.logistics-offline-service-error:B04";
/// **Assumed** sub_code of "the trade's state does not allow shipping".
pub const SHIP_CONFLICT_SUB_CODE: &str = "isv.logistics-offline-service-error:B01";

/// `taobao.item.quantity.update` (宝贝/SKU库存修改): `num_iid`, optional `sku_id`, `quantity`,
/// `type` 1 = whole quantity (全量, the default); answer `item_quantity_update_response{item}`
/// (bububa/opentaobao `TaobaoItemQuantityUpdateAPIRequest`). One SKU or a SKU-less item per call.
pub const ITEM_STOCK_METHOD: &str = "taobao.item.quantity.update";
/// `taobao.skus.quantity.update` (SKU库存批量修改): `num_iid`, `skuid_quantities`
/// `skuId:qty;skuId:qty` (at most 20), `type` 1 = whole quantity; answer
/// `skus_quantity_update_response{item}` (mzzya/tbsdk `TaobaoSkusQuantityUpdate`).
pub const SKUS_STOCK_METHOD: &str = "taobao.skus.quantity.update";
/// SKUs per `taobao.skus.quantity.update` call (its documented limit).
pub const STOCK_BATCH_MAX: usize = 20;

/// `taobao.item.seller.get` (获取单个商品详细信息): `num_iid` and `fields` (any field of the
/// Item structure); answer `item_seller_get_response{item{num_iid,num,skus{sku[{sku_id,
/// quantity}]}}}` (bububa/opentaobao `TaobaoItemSellerGetAPIRequest`/`Response`, `Sku.go`). One
/// call reads every SKU of the item. The field name `sku` in `fields` is **assumed** (SOURCES.md).
pub const ITEM_READ_METHOD: &str = "taobao.item.seller.get";
/// The fields asked of `taobao.item.seller.get`: the item's id, its own quantity and its SKUs.
pub const ITEM_READ_FIELDS: &str = "num_iid,num,sku";
/// SKU ids one read takes: the answer holds the whole item, this only bounds the query.
pub const STOCK_READ_MAX: usize = 200;

pub struct Taobao;

fn flag(field: &str, t: &wire::OptText) -> Result<bool, Rejected> {
    match wire::opt_str(t).as_deref() {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(_) => Err(Rejected::bad_value(field, "0 or 1")),
    }
}

fn id(t: &t::Trade) -> String {
    wire::nonempty(&t.tid_str).unwrap_or_else(|| t.tid.as_str().trim().to_string())
}

pub(crate) fn order_from(tr: t::Trade, base: &str) -> Result<ChannelOrder, Rejected> {
    let f = |n: &str| format!("{base}.{n}");
    let raw_status = tr.status.as_str().trim().to_string();
    let status = TradeStatus::parse(&raw_status)
        .ok_or_else(|| Rejected::unknown_status(&f("status"), &raw_status))?;
    let canonical = status.target();
    let external_order_id = id(&tr);
    if external_order_id.is_empty() {
        return Err(Rejected::missing(&f("tid")));
    }
    let orders = tr
        .orders
        .as_ref()
        .map(|o| o.order.as_slice())
        .unwrap_or(&[]);
    let shipping = wire::opt_yuan(&f("post_fee"), &tr.post_fee)?;
    let mut lines = Vec::with_capacity(orders.len());
    for (i, l) in orders.iter().enumerate() {
        let lf = |n: &str| format!("{base}.orders.order[{i}].{n}");
        let oid = wire::nonempty(&l.oid_str).unwrap_or_else(|| l.oid.as_str().trim().to_string());
        if oid.is_empty() {
            return Err(Rejected::missing(&lf("oid")));
        }
        let (refund, refund_raw) = match wire::nonempty(&l.refund_status) {
            Some(code) => (
                RefundStatus::parse(&code)
                    .ok_or_else(|| Rejected::unknown_status(&lf("refund_status"), &code))?
                    .target(),
                Some(code),
            ),
            None => (RefundState::None, None),
        };
        let quantity = wire::quantity(&lf("num"), &l.num)?;
        let unit = wire::yuan(&lf("price"), &l.price)?;
        // What the line cost the buyer after every discount: the shared-out amount when TOP
        // gives it, else the line's own payment, else what it was due.
        // TOP's Order doc: `payment = price * num + adjust_fee - discount_fee + post_fee`, the
        // post fee included when the trade has a single line (not when it has several), so a
        // lone line's payment gives the post fee back here.
        let paid = match (&l.divide_order_fee, &l.payment, &l.total_fee) {
            (Some(d), _, _) if !d.is_empty() => wire::yuan(&lf("divide_order_fee"), d)?,
            (_, Some(p), _) if !p.is_empty() => {
                let payment = wire::yuan(&lf("payment"), p)?;
                if orders.len() == 1 {
                    payment
                        .checked_sub(shipping)
                        .filter(|v| !v.is_sign_negative())
                        .ok_or_else(|| {
                            Rejected::at(
                                "does_not_add_up",
                                &lf("payment"),
                                format!(
                                    "{} of a single-line trade includes post_fee ({shipping}), \
                                     so it cannot be below it, got {payment}",
                                    lf("payment")
                                ),
                            )
                        })?
                } else {
                    payment
                }
            }
            (_, _, Some(t)) if !t.is_empty() => wire::yuan(&lf("total_fee"), t)?,
            _ => return Err(Rejected::missing(&lf("payment"))),
        };
        let mut line = wire::line(
            oid,
            wire::nonempty(&l.outer_sku_id),
            wire::opt_str(&l.sku_id).or_else(|| wire::opt_str(&l.num_iid)),
            l.title.clone(),
            quantity,
            unit,
            paid,
            refund,
            refund_raw.filter(|c| c != RefundStatus::NoRefund.code()),
        );
        line.refund_id = wire::opt_str(&l.refund_id).filter(|r| r != "0");
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(Rejected::missing(&f("orders.order")));
    }
    let paid = wire::yuan(&f("payment"), &tr.payment)?;
    let created_at = wire::req_china_time(&f("created"), &tr.created)?;
    let paid_at = wire::china_time(&f("pay_time"), &tr.pay_time)?;
    let modified_at = wire::china_time(&f("modified"), &tr.modified)?.unwrap_or(created_at);

    // Presale (分阶段付款): the deposit is what was paid while the final is outstanding. Once
    // both are paid the trade no longer tells the deposit apart (see SOURCES.md).
    let presale = match wire::nonempty(&tr.step_trade_status) {
        Some(code) => {
            let (_, final_paid) = StepTradeStatus::parse(&code)
                .ok_or_else(|| Rejected::unknown_status(&f("step_trade_status"), &code))?
                .target();
            let step_paid = wire::opt_yuan(&f("step_paid_fee"), &tr.step_paid_fee)?;
            let deposit = if final_paid {
                Decimal::ZERO
            } else {
                step_paid.min(paid)
            };
            Some(Presale {
                deposit,
                final_payment: paid - deposit,
                final_payment_due: None,
                final_paid,
            })
        }
        None => None,
    };

    let open = matches!(
        canonical,
        CanonicalStatus::PendingPayment | CanonicalStatus::Paid
    );
    let reason = if status == TradeStatus::PaidForbidConsign {
        Some("paid but shipping is forbidden (group buying or platform hold)")
    } else if flag(&f("team_buy_hold"), &tr.team_buy_hold)?
        || flag(&f("share_group_hold"), &tr.share_group_hold)?
    {
        Some("the group has not formed yet")
    } else if flag(&f("forbid_consign"), &tr.forbid_consign)? {
        Some("shipping is forbidden for now (forbid_consign)")
    } else if flag(&f("top_hold"), &tr.top_hold)? {
        Some("held by the platform (top_hold)")
    } else if presale.as_ref().is_some_and(|p| !p.final_paid) {
        Some("presale final payment outstanding")
    } else {
        None
    };
    let reason = reason.filter(|_| open).map(str::to_string);

    let mobile = wire::nonempty(&tr.receiver_mobile).or_else(|| wire::nonempty(&tr.receiver_phone));
    let receiver = wire::receiver(
        tr.receiver_name.clone(),
        mobile,
        tr.receiver_state.clone(),
        tr.receiver_city.clone(),
        tr.receiver_district.clone(),
        tr.receiver_town.clone(),
        tr.receiver_address.clone(),
        tr.oaid.clone(),
    );
    let amounts = wire::amounts(&lines, shipping, paid);
    // The first line's package that has a tracking number (the Order doc's `invoice_no`).
    let shipment = orders.iter().find_map(|l| {
        ChannelShipment::new(l.logistics_company.as_deref(), l.invoice_no.as_deref())
    });
    Ok(ChannelOrder {
        channel: ChannelKind::Taobao,
        external_order_id,
        channel_shop_id: wire::nonempty(&tr.seller_nick),
        channel_status: raw_status,
        canonical,
        lines,
        receiver,
        buyer: ChannelBuyer {
            id: wire::nonempty(&tr.buyer_open_uid),
            nick: wire::nonempty(&tr.buyer_nick),
        },
        amounts,
        created_at,
        paid_at,
        modified_at,
        version: None,
        presale,
        shippable: reason.is_none(),
        not_shippable_reason: reason,
        cancelled_after_payment: canonical == CanonicalStatus::Cancelled && paid_at.is_some(),
        buyer_message: wire::nonempty(&tr.buyer_message),
        seller_memo: wire::nonempty(&tr.seller_memo),
        shipment,
    })
}

/// TOP's signature over every parameter but `sign`: `md5` → UPPER(MD5(secret + sorted(k+v) +
/// secret)); `hmac` → UPPER(HMAC_MD5(key = secret, sorted(k+v))).
pub fn top_sign(params: &[(String, String)], secret: &str) -> String {
    let method = params
        .iter()
        .find(|(k, _)| k == "sign_method")
        .map(|(_, v)| v.as_str())
        .unwrap_or("md5");
    if method.eq_ignore_ascii_case("hmac") {
        let concat = crate::sign::sorted_concat(params, &["sign"]);
        crate::sign::hmac_md5_hex(secret.as_bytes(), concat.as_bytes()).to_ascii_uppercase()
    } else {
        crate::sign::wrapped_md5_upper(params, secret)
    }
}

fn request(
    method: &str,
    biz: Vec<(String, String)>,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> ApiRequest {
    signed(method, biz, creds, Some(&creds.access_token), now)
}

fn signed(
    method: &str,
    biz: Vec<(String, String)>,
    creds: &ShopCredentials,
    session: Option<&str>,
    now: DateTime<Utc>,
) -> ApiRequest {
    let mut params: Vec<(String, String)> = vec![
        ("method".into(), method.into()),
        ("app_key".into(), creds.app_key.clone()),
    ];
    if let Some(s) = session {
        params.push(("session".into(), s.to_owned()));
    }
    params.extend([
        (
            "timestamp".into(),
            wire::china_time_string(now.with_timezone(&wire::china())),
        ),
        ("format".into(), "json".into()),
        ("v".into(), "2.0".into()),
        ("sign_method".into(), "md5".into()),
    ]);
    params.extend(biz);
    let sign = top_sign(&params, &creds.secret);
    params.push(("sign".into(), sign));
    ApiRequest {
        method: "POST",
        path_and_query: PATH.into(),
        content_type: "application/x-www-form-urlencoded;charset=utf-8",
        headers: Vec::new(),
        body: wire::form_encode(&params).into_bytes(),
    }
}

/// What a TMC topic means for the order (`taobao_trade_*`, `taobao_refund_*`).
pub fn topic_event(topic: &str) -> PushEvent {
    match topic {
        "taobao_trade_TradeCreate" => PushEvent::OrderCreated,
        "taobao_trade_TradeBuyerPay" => PushEvent::OrderPaid,
        "taobao_trade_TradeSellerShip" | "taobao_trade_TradePartlySellerShip" => {
            PushEvent::OrderShipped
        }
        "taobao_trade_TradeSuccess" => PushEvent::OrderCompleted,
        "taobao_trade_TradeClose" => PushEvent::OrderCancelled,
        "taobao_trade_TradePartlyRefund" => PushEvent::Refund,
        t if t.starts_with("taobao_refund_") => PushEvent::Refund,
        t if t.starts_with("taobao_trade_") => PushEvent::OrderChanged,
        _ => PushEvent::Other,
    }
}

fn form_param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn envelope_error(e: &t::TopError) -> ApiError {
    let code = wire::opt_str(&e.code).unwrap_or_default();
    let sub = e.sub_code.clone().unwrap_or_default();
    let tag = if sub.is_empty() {
        code.clone()
    } else {
        format!("{code}/{sub}")
    };
    if code == THROTTLE_CODE || sub.starts_with("accesscontrol.limited") {
        return ApiError::Throttled { code: tag };
    }
    if AUTH_CODES.contains(&code.as_str()) {
        return ApiError::Auth { code: tag };
    }
    let msg = e.sub_msg.clone().or(e.msg.clone()).unwrap_or_default();
    ApiError::Api {
        code: tag,
        message: msg.chars().take(200).collect(),
    }
}

impl Channel for Taobao {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Taobao
    }

    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected> {
        let env: t::FullinfoEnvelope = wire::parse_json(body)?;
        let r = env
            .trade_fullinfo_get_response
            .ok_or_else(|| Rejected::missing("trade_fullinfo_get_response"))?;
        order_from(r.trade, "trade_fullinfo_get_response.trade")
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
            wire::opt_str(&Some(c.tid)).ok_or_else(|| Rejected::missing("content.tid"))?;
        Ok(PushMessage {
            channel: ChannelKind::Taobao,
            items: vec![PushItem {
                event: topic_event(&topic),
                raw_event: topic,
                order_id,
                message_id: form_param(&form, "id").map(str::to_string),
                channel_shop_id: c
                    .seller_nick
                    .or(form_param(&form, "user_nick").map(str::to_string)),
                order: None,
            }],
            is_test: false,
        })
    }

    /// Every form field but `sign` is signed TOP-style with the app secret, `timestamp`
    /// included, so the time is checked against `now ± tolerance`.
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
        if !crate::sign::hex_eq(&top_sign(&form, &creds.secret), given) {
            return Err(Rejected::bad_signature("sign does not match the fields"));
        }
        let ts = form_param(&form, "timestamp").map(|s| wire::Text(s.to_string()));
        let at = wire::req_china_time("timestamp", &ts)?;
        wire::check_fresh(at.with_timezone(&Utc), now, tolerance)
    }

    fn list_request(
        &self,
        q: &ListQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest {
        request(
            INCREMENT_METHOD,
            vec![
                ("fields".into(), FIELDS.into()),
                (
                    "start_modified".into(),
                    wire::china_time_string(q.modified_from),
                ),
                (
                    "end_modified".into(),
                    wire::china_time_string(q.modified_to),
                ),
                ("page_no".into(), q.page.to_string()),
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
            .trades_sold_increment_get_response
            .ok_or_else(|| Rejected::missing("trades_sold_increment_get_response"))?;
        let total = wire::opt_int(
            "trades_sold_increment_get_response.total_results",
            &r.total_results,
        )?;
        let mut orders = Vec::new();
        for (i, tr) in r.trades.unwrap_or_default().trade.into_iter().enumerate() {
            orders.push(order_from(
                tr,
                &format!("trades_sold_increment_get_response.trades.trade[{i}]"),
            )?);
        }
        // With use_has_next TOP answers has_next; without it only the total (stop at it).
        let has_next = r.has_next.unwrap_or(!orders.is_empty());
        Ok(OrderPage {
            orders,
            order_ids: Vec::new(),
            has_next,
            total: total.and_then(|t| u64::try_from(t).ok()),
            next_cursor: None,
        })
    }

    fn detail_request(&self, id: &str, creds: &ShopCredentials, now: DateTime<Utc>) -> ApiRequest {
        request(
            FULLINFO_METHOD,
            vec![
                ("fields".into(), FIELDS.into()),
                ("tid".into(), id.to_string()),
            ],
            creds,
            now,
        )
    }

    fn api_error(&self, body: &[u8]) -> Option<ApiError> {
        let env: t::ErrorEnvelope = wire::try_json(body)?;
        env.error_response.as_ref().map(envelope_error)
    }

    fn ship_request(
        &self,
        s: &crate::Shipment,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let code = crate::ship::check(s, CARRIERS, true)?;
        let mut biz: Vec<(String, String)> = vec![
            ("tid".into(), s.external_order_id.clone()),
            ("out_sid".into(), s.tracking_no.clone()),
            ("company_code".into(), code.into()),
        ];
        if let Some(lines) = &s.line_ids {
            biz.push(("is_split".into(), "1".into()));
            biz.push(("sub_tid".into(), lines.join(",")));
        }
        Ok(request(SHIP_METHOD, biz, creds, now))
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
                vec![("refresh_token".into(), creds.refresh_token.clone())],
                creds,
                None,
                now,
            )
        })
    }

    fn parse_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<crate::TokenGrant, ApiError> {
        let env: t::ErrorEnvelope = wire::try_json(body).unwrap_or(t::ErrorEnvelope {
            error_response: None,
        });
        if let Some(e) = &env.error_response {
            // A refusal names the refresh token or the session in its sub code (our assumed
            // one, `invalid-sessionkey`, `session-expired`, …); any other error is tried again.
            let sub = e.sub_code.as_deref().unwrap_or("").to_ascii_lowercase();
            let refused = sub == REFRESH_REFUSED_SUB_CODE
                || sub.contains("refresh")
                || sub.contains("session");
            return Err(crate::token::refusal_only(envelope_error(e), |_| refused));
        }
        let v = crate::token::json(body)?;
        // The refresh call and the code exchange answer the same document under their own names.
        let inner = v
            .pointer("/top_auth_token_refresh_response/token_result")
            .or_else(|| v.pointer("/top_auth_token_create_response/token_result"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| Rejected::missing("token_result"))?;
        let r = crate::token::json(inner.as_bytes())?;
        use crate::token::Expiry::InSeconds;
        Ok(crate::token::grant(
            &r,
            now,
            "/access_token",
            InSeconds("/expires_in"),
            Some(("/refresh_token", Some(InSeconds("/re_expires_in")))),
        )?)
    }

    fn authorize_url(
        &self,
        api_base_url: &str,
        p: &crate::AuthorizeParams<'_>,
    ) -> Result<String, Rejected> {
        Ok(crate::authorize_at(
            api_base_url,
            "taobao.com",
            AUTHORIZE_URL,
            &[
                ("response_type", "code"),
                ("client_id", p.app_key),
                ("redirect_uri", p.redirect_uri),
                ("state", p.state),
                ("view", "web"),
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
            TOKEN_CREATE_METHOD,
            vec![("code".into(), code.to_owned())],
            creds,
            None,
            now,
        ))
    }

    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        crate::ship::ack(self.api_error(body), &[ALREADY_SHIPPED_SUB_CODE], || {
            crate::ship::success_flag(body, "/logistics_offline_send_response/shipping/is_success")
        })
    }

    fn stock_batch_max(&self) -> usize {
        STOCK_BATCH_MAX
    }

    fn refund_get_request(
        &self,
        refund_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(request(
            refund::GET_METHOD,
            refund::get_params(refund_id)?,
            creds,
            now,
        ))
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
        let (method, biz) = refund::decision_params(r, d)?;
        Ok(request(method, biz, creds, now))
    }

    fn parse_refund_decision_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        self.api_error(body).map_or_else(|| refund::ack(body), Err)
    }

    fn stock_request(
        &self,
        updates: &[crate::StockUpdate],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock(updates, STOCK_BATCH_MAX)?;
        let item = updates[0].item_id.clone();
        if let [one] = updates {
            let mut biz = vec![("num_iid".into(), item)];
            if !one.sku_id.is_empty() {
                biz.push(("sku_id".into(), one.sku_id.clone()));
            }
            biz.push(("quantity".into(), one.quantity.to_string()));
            biz.push(("type".into(), "1".into()));
            return Ok(request(ITEM_STOCK_METHOD, biz, creds, now));
        }
        if updates.iter().any(|u| u.sku_id.is_empty()) {
            return Err(Rejected::missing("sku_id"));
        }
        let pairs: Vec<String> = updates
            .iter()
            .map(|u| format!("{}:{}", u.sku_id, u.quantity))
            .collect();
        let biz = vec![
            ("num_iid".into(), item),
            ("skuid_quantities".into(), pairs.join(";")),
            ("type".into(), "1".into()),
        ];
        Ok(request(SKUS_STOCK_METHOD, biz, creds, now))
    }

    fn parse_stock_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        for key in [
            "item_quantity_update_response",
            "skus_quantity_update_response",
        ] {
            if v.pointer(&format!("/{key}/item"))
                .is_some_and(|i| i.is_object())
            {
                return Ok(());
            }
        }
        Err(ApiError::Rejected(Rejected::missing(
            "item_quantity_update_response.item",
        )))
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
        let biz = vec![
            ("fields".into(), ITEM_READ_FIELDS.into()),
            ("num_iid".into(), q.item_id.clone()),
        ];
        Ok(request(ITEM_READ_METHOD, biz, creds, now))
    }

    fn parse_stock_read(&self, body: &[u8]) -> Result<Vec<crate::StockLevel>, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        let item = v
            .pointer("/item_seller_get_response/item")
            .filter(|i| i.is_object())
            .ok_or_else(|| Rejected::missing("item_seller_get_response.item"))?;
        let id = crate::level_id(item.get("num_iid"), "item.num_iid")?;
        // The item's own quantity (for SKU-less items; the sum of its SKUs otherwise).
        let mut levels = vec![crate::StockLevel {
            item_id: id.clone(),
            sku_id: String::new(),
            quantity: crate::level_qty(item.get("num"), "item.num")?,
        }];
        let skus = match item.pointer("/skus/sku") {
            None | Some(serde_json::Value::Null) => &[][..],
            Some(serde_json::Value::Array(a)) => a.as_slice(),
            Some(_) => return Err(Rejected::bad_value("item.skus.sku", "a list of SKUs").into()),
        };
        for (i, sku) in skus.iter().enumerate() {
            levels.push(crate::StockLevel {
                item_id: id.clone(),
                sku_id: crate::level_id(sku.get("sku_id"), &format!("item.skus.sku[{i}].sku_id"))?,
                quantity: crate::level_qty(
                    sku.get("quantity"),
                    &format!("item.skus.sku[{i}].quantity"),
                )?,
            });
        }
        Ok(levels)
    }
}

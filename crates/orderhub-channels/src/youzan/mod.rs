//! Youzan (有赞). Detail `youzan.trade.get` 4.0.0, pull `youzan.trades.sold.get` 4.0.0 by
//! `start_update`/`end_update` with `page_no`/`page_size`; calls go to
//! `/api/{api}/{version}?access_token=…` without a request signature. Push: a JSON body whose
//! `sign` = MD5(client_id + msg + client_secret); `msg` is URL-encoded JSON. Sources: SOURCES.md §
//! Youzan.
//!
//! Refund decisions ([`refund`]): the detail's `refund_order[]` names each line's refund;
//! `youzan.trade.refund.get` / `.agree` / `.refuse` 3.0.0 (SOURCES.md § Refund decisions).

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
    ChannelShipment, ListQuery, OrderPage, Presale, PushEvent, PushItem, PushMessage, RefundState,
    Rejected, ShopCredentials,
};
use transformers as t;

code_map! {
    /// `order_info.status` (youzan.trade.get 4.0.0 doc; 3.0.0 adds the last four).
    pub enum TradeStatus -> CanonicalStatus {
        WaitBuyerPay = "WAIT_BUYER_PAY" => PendingPayment,
        TradePaid = "TRADE_PAID" => Paid,
        WaitConfirm = "WAIT_CONFIRM" => Paid,
        WaitSellerSendGoods = "WAIT_SELLER_SEND_GOODS" => Paid,
        WaitBuyerConfirmGoods = "WAIT_BUYER_CONFIRM_GOODS" => Shipped,
        TradeSuccess = "TRADE_SUCCESS" => Completed,
        TradeClosed = "TRADE_CLOSED" => Cancelled,
        TradeNoCreatePay = "TRADE_NO_CREATE_PAY" => PendingPayment,
        WaitPayReturn = "WAIT_PAY_RETURN" => PendingPayment,
        WaitGroup = "WAIT_GROUP" => Paid,
        TradeBuyerSigned = "TRADE_BUYER_SIGNED" => Delivered,
    }
}

code_map! {
    /// `order_info.refund_state` (trade.get 4.0.0 doc): 0 none, 1 partly refunding, 2 partly
    /// refunded, 11 fully refunding, 12 fully refunded.
    pub enum OrderRefundState -> RefundState {
        NoRefund = "0" => None,
        PartRefunding = "1" => Requested,
        PartRefunded = "2" => Refunded,
        FullRefunding = "11" => Requested,
        FullRefunded = "12" => Refunded,
    }
}

code_map! {
    /// `refund_order[].refund_state`, one refund's own state (trade.get 4.0.0 doc): 1 buyer
    /// asked, 10 seller refused, 20 return agreed (waiting for the goods), 30 goods returned
    /// (waiting for the seller), 40 seller refused (goods not received), 50 closed, 60 refunded.
    pub enum RefundOrderState -> RefundState {
        Applied = "1" => Requested,
        SellerRefused = "10" => Rejected,
        WaitBuyerReturn = "20" => Requested,
        WaitSellerConfirm = "30" => Requested,
        SellerRefusedNoGoods = "40" => Rejected,
        Closed = "50" => Rejected,
        Refunded = "60" => Refunded,
    }
}

pub const GET_API: &str = "youzan.trade.get";
pub const LIST_API: &str = "youzan.trades.sold.get";
/// Throttling: `{"msg":"请求太频繁","code":4101}` (Youzan's operations team announcing per-shop
/// limits, bbs.youzan.com thread 678847, 2020-01-14, advising a retry after 30 s or 120 s). Read
/// from the gateway's `gw_err_resp` or the answer's own `code`; messages about 频 / 限流 too. It was
/// 4201 (a credential error, below) and then an assumed 4290 before that announcement was found.
pub const THROTTLE_CODE: &str = "4101";
/// The gateway's credential errors (`gw_err_resp.err_code`; doc.youzanyun.com digest, confirmed
/// by live probes without credentials): 4201 非法的请求凭证, 4202 请求凭证过期, 4203 请求凭证不存在.
pub const AUTH_CODES: [&str; 3] = ["4201", "4202", "4203"];
/// A shop's access token from the app's own credentials (self-use apps' silent grant):
/// `POST /auth/token` with JSON `client_id`, `client_secret`, `authorize_type: "silent"`,
/// `grant_id` (the shop's kdt_id), `refresh: true`; the answer `data.access_token`,
/// `data.expires` (a moment in ms; 7 days), `data.authority_id` (youzan/open-sdk-php `Token.php`,
/// open-sdk-node `token.js`). Refusals: `success: false` with `code` 1004 授权关系已过期 and kin.
pub const TOKEN_PATH: &str = "/auth/token";
/// The token call's refusals that need the seller: 1004 授权关系已过期, 1005 非法授权码.
pub const TOKEN_REFUSED_CODES: [&str; 2] = ["1004", "1005"];
/// `youzan.logistics.online.confirm` 3.0.0: `tid`, `out_stype` (numeric carrier id), `out_sid`
/// (tracking number), `is_no_express`, `oids` for a partial shipment; answer `data.is_success`.
pub const SHIP_API: &str = "youzan.logistics.online.confirm";
pub const SHIP_VERSION: &str = "3.0.0";
/// orderhub carrier → Youzan `out_stype` (`youzan.logistics.express.get` ids). **Assumed** (from
/// memory, no public table found): verify before production.
pub const CARRIERS: &crate::ship::CarrierTable = &[
    ("sto", "1"),
    ("yto", "2"),
    ("zto", "3"),
    ("yunda", "4"),
    ("sf", "7"),
    ("ems", "11"),
];
/// **Assumed** code of "already shipped" (read as success).
pub const ALREADY_SHIPPED_CODE: &str = "101300010";
/// **Assumed** code of "the order's state does not allow shipping".
pub const SHIP_CONFLICT_CODE: &str = "101300011";
/// `youzan.item.quantity.update` 3.0.0 (全量或增量方式更新SKU库存): `item_id` (商品数字编号,
/// number), `quantity`, `sku_id` (number; may be left out for an item without specs, else
/// required), `type` 0 = 全量 (default) / 1 = 增量; answer `is_success` (nest-mods youzan
/// TypeScript SDK `ItemItemQuantityUpdate`; the same four parameters in a Go SDK's
/// `YouzanItemQuantityUpdateRequest`, version 3.0.0). orderhub sends `type` 0 always.
pub const STOCK_API: &str = "youzan.item.quantity.update";
pub const STOCK_VERSION: &str = "3.0.0";
/// `type` 全量 (the whole quantity).
pub const STOCK_TYPE_WHOLE: i64 = 0;
/// `youzan.item.get` 3.0.0 (商品详情): `item_id` (number) or `alias`; answer `item{item_id,
/// quantity (总库存), skus[{item_id, sku_id, quantity (属于这个Sku的商品的数量),
/// with_hold_quantity}]}` (nest-mods youzan TypeScript SDK `ItemItemGet`). One call per item,
/// every SKU of it; an item without specs answers its own `quantity` (SKU id `""`).
pub const ITEM_READ_API: &str = "youzan.item.get";
pub const ITEM_READ_VERSION: &str = "3.0.0";
/// SKU ids one read takes: the answer holds the whole item, this only bounds the query.
pub const STOCK_READ_MAX: usize = 200;
/// **Assumed** system error code.
pub const SYSTEM_ERROR_CODE: &str = "50000";

pub struct Youzan;

fn order_from(d: t::TradeData, base: &str) -> Result<ChannelOrder, Rejected> {
    let f = |n: &str| format!("{base}.full_order_info.{n}");
    let fo = d.full_order_info;
    let oi = fo.order_info;
    let raw_status = oi.status.as_str().trim().to_string();
    let status = TradeStatus::parse(&raw_status)
        .ok_or_else(|| Rejected::unknown_status(&f("order_info.status"), &raw_status))?;
    let canonical = status.target();
    let refund_code = wire::opt_str(&oi.refund_state).unwrap_or_else(|| "0".into());
    let order_refund = OrderRefundState::parse(&refund_code)
        .ok_or_else(|| Rejected::unknown_status(&f("order_info.refund_state"), &refund_code))?;
    // Each refund names its lines (`refund_order[].oids[].oid`) and has its own state; a line
    // named by several refunds takes the one still open, else a refunded one, else a refused
    // or closed one. A full refund (11/12) covers the lines no refund names. The line's refund id
    // is the kept refund's (what a seller's decision names).
    let mut per_line: std::collections::HashMap<String, (RefundState, String, Option<String>)> =
        std::collections::HashMap::new();
    for (j, r) in d.refund_order.iter().enumerate() {
        let (state, code) = match wire::opt_str(&r.refund_state) {
            Some(code) => (
                RefundOrderState::parse(&code)
                    .ok_or_else(|| {
                        Rejected::unknown_status(
                            &format!("{base}.refund_order[{j}].refund_state"),
                            &code,
                        )
                    })?
                    .target(),
                code,
            ),
            None => (order_refund.target(), refund_code.clone()),
        };
        let refund_id = wire::opt_str(&r.refund_id).filter(|id| !id.trim().is_empty());
        for (k, item) in r.oids.iter().enumerate() {
            let oid = item.oid.as_str().trim().to_string();
            if oid.is_empty() {
                return Err(Rejected::missing(&format!(
                    "{base}.refund_order[{j}].oids[{k}].oid"
                )));
            }
            let rank = |s: RefundState| match s {
                RefundState::Requested => 3,
                RefundState::Refunded => 2,
                RefundState::Rejected => 1,
                RefundState::None => 0,
            };
            let keep = per_line
                .get(&oid)
                .is_some_and(|(prev, _, _)| rank(*prev) >= rank(state));
            if !keep {
                per_line.insert(oid, (state, code.clone(), refund_id.clone()));
            }
        }
    }
    let full = matches!(
        order_refund,
        OrderRefundState::FullRefunding | OrderRefundState::FullRefunded
    );
    let mut lines = Vec::with_capacity(fo.orders.len());
    for (i, l) in fo.orders.iter().enumerate() {
        let lf = |n: &str| format!("{base}.full_order_info.orders[{i}].{n}");
        let id = wire::opt_str(&l.oid)
            .or_else(|| wire::opt_str(&l.item_id).map(|x| format!("{x}-{i}")))
            .ok_or_else(|| Rejected::missing(&lf("oid")))?;
        let (refund, refund_raw, refund_id) = match per_line.get(&id) {
            Some((state, code, refund_id)) => (*state, Some(code.clone()), refund_id.clone()),
            None if full => (order_refund.target(), Some(refund_code.clone()), None),
            None => (RefundState::None, None, None),
        };
        let mut line = wire::line(
            id,
            wire::nonempty(&l.outer_sku_id),
            wire::opt_str(&l.sku_id),
            l.title.clone(),
            wire::quantity(&lf("num"), &l.num)?,
            wire::yuan(&lf("price"), &l.price)?,
            wire::yuan(&lf("payment"), &l.payment)?,
            refund,
            refund_raw,
        );
        line.refund_id = refund_id;
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(Rejected::missing(&f("orders")));
    }
    let shipping = wire::opt_yuan(&f("pay_info.post_fee"), &fo.pay_info.post_fee)?;
    let paid = wire::yuan(&f("pay_info.payment"), &fo.pay_info.payment)?;
    let created_at = wire::req_china_time(&f("order_info.created"), &oi.created)?;
    let paid_at = wire::china_time(&f("order_info.pay_time"), &oi.pay_time)?;
    let modified_at =
        wire::china_time(&f("order_info.update_time"), &oi.update_time)?.unwrap_or(created_at);
    let a = fo.address_info.unwrap_or_default();
    let r = fo.remark_info.unwrap_or_default();
    let b = fo.buyer_info.unwrap_or_default();
    // Deposit presale (定金预售): `order_tags.is_down_payment_pre`; the phases in
    // `pay_info.phase_payments` (phase 1 = deposit, phase 2 = final). While any phase is unpaid
    // the order is WAIT_BUYER_PAY (the status doc: 定金待付、等待尾款支付开始、尾款待付).
    let presale = if oi
        .order_tags
        .as_ref()
        .and_then(|t| t.is_down_payment_pre)
        .unwrap_or(false)
    {
        let phase = |n: &str| {
            fo.pay_info
                .phase_payments
                .iter()
                .enumerate()
                .find(|(_, p)| p.phase.as_str().trim() == n)
        };
        let deposit = match phase("1") {
            Some((j, p)) => wire::opt_yuan(
                &f(&format!("pay_info.phase_payments[{j}].real_price")),
                &p.real_price,
            )?,
            None => Decimal::ZERO,
        };
        let due = match phase("2") {
            Some((j, p)) => wire::china_time(
                &f(&format!("pay_info.phase_payments[{j}].pay_start_time")),
                &p.pay_start_time,
            )?,
            None => None,
        };
        let deposit = deposit.min(paid);
        Some(Presale {
            deposit,
            final_payment: paid - deposit,
            final_payment_due: due,
            final_paid: !matches!(
                canonical,
                CanonicalStatus::PendingPayment | CanonicalStatus::Cancelled
            ),
        })
    } else {
        None
    };
    let (shippable, reason) = match status {
        TradeStatus::WaitConfirm | TradeStatus::WaitGroup => (
            false,
            Some("waiting for the group to form or the order to be accepted".to_string()),
        ),
        _ if presale.as_ref().is_some_and(|p| !p.final_paid) => {
            (false, Some("presale final payment outstanding".to_string()))
        }
        _ => (true, None),
    };
    // The first package with a tracking number, of a shipment not still 待发货 (express_state 0).
    let shipment = d
        .delivery_order
        .iter()
        .filter(|o| wire::opt_str(&o.express_state).as_deref() != Some("0"))
        .flat_map(|o| o.dists.iter())
        .filter_map(|x| x.express_info.as_ref())
        .find_map(|e| {
            ChannelShipment::new(
                wire::opt_str(&e.express_id).as_deref(),
                wire::opt_str(&e.express_no).as_deref(),
            )
        });
    Ok(ChannelOrder {
        channel: ChannelKind::Youzan,
        external_order_id: oi.tid.as_str().trim().to_string(),
        channel_shop_id: wire::opt_str(&oi.node_kdt_id),
        channel_status: raw_status,
        canonical,
        amounts: wire::amounts(&lines, shipping, paid),
        lines,
        receiver: wire::receiver(
            a.receiver_name,
            a.receiver_tel,
            a.delivery_province,
            a.delivery_city,
            a.delivery_district,
            None,
            a.delivery_address,
            None,
        ),
        buyer: ChannelBuyer {
            id: wire::nonempty(&b.yz_open_id).or(wire::opt_str(&b.buyer_id)),
            nick: wire::nonempty(&b.fans_nickname),
        },
        created_at,
        paid_at,
        modified_at,
        version: None,
        presale,
        shippable,
        not_shippable_reason: reason,
        cancelled_after_payment: canonical == CanonicalStatus::Cancelled && paid_at.is_some(),
        buyer_message: wire::nonempty(&r.buyer_message),
        seller_memo: wire::nonempty(&r.trade_memo),
        shipment,
    })
}

pub fn push_sign(client_id: &str, msg: &str, secret: &str) -> String {
    crate::sign::md5_hex(format!("{client_id}{msg}{secret}").as_bytes())
}

fn request(api: &str, body: serde_json::Value, creds: &ShopCredentials) -> ApiRequest {
    request_v(api, "4.0.0", body, creds)
}

fn request_v(
    api: &str,
    version: &str,
    body: serde_json::Value,
    creds: &ShopCredentials,
) -> ApiRequest {
    ApiRequest {
        method: "POST",
        path_and_query: format!(
            "/api/{api}/{version}?{}",
            wire::form_encode(&[("access_token".into(), creds.access_token.clone())])
        ),
        content_type: "application/json",
        headers: Vec::new(),
        body: wire::json_bytes(&body),
    }
}

impl Channel for Youzan {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Youzan
    }

    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected> {
        let env: t::Envelope<t::TradeData> = wire::parse_json(body)?;
        let data = env.data.ok_or_else(|| Rejected::missing("data"))?;
        order_from(data, "data")
    }

    fn parse_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<PushMessage, Rejected> {
        let p: t::Push = wire::parse_json(body)?;
        let is_test = p.test.unwrap_or(false);
        let decoded: String = form_urlencoded::parse(format!("m={}", p.msg).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if is_test && decoded.trim().is_empty() {
            return Ok(PushMessage {
                channel: ChannelKind::Youzan,
                items: Vec::new(),
                is_test,
            });
        }
        let msg: t::PushMsg = wire::parse_json(decoded.as_bytes()).map_err(|r| Rejected {
            field: Some(format!("msg.{}", r.field.unwrap_or_default())),
            ..r
        })?;
        let order = match msg.full_order_info {
            Some(fo) => Some(order_from(
                t::TradeData {
                    full_order_info: fo,
                    refund_order: Vec::new(),
                    delivery_order: Vec::new(),
                },
                "msg",
            )?),
            None => None,
        };
        let event = match p.kind.as_str() {
            "trade_TradeCreate" => PushEvent::OrderCreated,
            "trade_TradePaid" | "trade_TradeBuyerPay" => PushEvent::OrderPaid,
            "trade_TradeSellerShip" | "trade_TradePartlySellerShip" => PushEvent::OrderShipped,
            "trade_TradeSuccess" => PushEvent::OrderCompleted,
            "trade_TradeClose" => PushEvent::OrderCancelled,
            k if k.starts_with("trade_refund") || k.starts_with("TRADE_REFUND") => {
                PushEvent::Refund
            }
            "TRADE_ORDER_STATE" => match p
                .status
                .as_deref()
                .and_then(TradeStatus::parse)
                .map(TradeStatus::target)
            {
                Some(CanonicalStatus::PendingPayment) => PushEvent::OrderCreated,
                Some(CanonicalStatus::Paid) => PushEvent::OrderPaid,
                Some(CanonicalStatus::Shipped) | Some(CanonicalStatus::PartlyShipped) => {
                    PushEvent::OrderShipped
                }
                Some(CanonicalStatus::Completed) | Some(CanonicalStatus::Delivered) => {
                    PushEvent::OrderCompleted
                }
                Some(CanonicalStatus::Cancelled) => PushEvent::OrderCancelled,
                None => PushEvent::OrderChanged,
            },
            k if k.starts_with("trade_") => PushEvent::OrderChanged,
            _ => PushEvent::Other,
        };
        let order_id = msg.tid.as_str().trim().to_string();
        if order_id.is_empty() {
            return Err(Rejected::missing("msg.tid"));
        }
        Ok(PushMessage {
            channel: ChannelKind::Youzan,
            items: vec![PushItem {
                event,
                raw_event: p.kind,
                order_id,
                message_id: wire::opt_str(&p.id),
                channel_shop_id: wire::opt_str(&p.kdt_id),
                order,
            }],
            is_test,
        })
    }

    /// Youzan signs `client_id + msg + secret` only: no time is signed, so `tolerance` is not
    /// applied (the `version` field is outside the signature); replays are caught by `id`.
    fn verify_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
        _tolerance: Duration,
    ) -> Result<(), Rejected> {
        let p: t::Push = wire::parse_json(body)?;
        if p.client_id != creds.app_key {
            return Err(Rejected::bad_signature("client_id is not this shop's app"));
        }
        if !crate::sign::hex_eq(&push_sign(&p.client_id, &p.msg, &creds.secret), &p.sign) {
            return Err(Rejected::bad_signature(
                "sign does not match client_id + msg",
            ));
        }
        Ok(())
    }

    fn list_request(
        &self,
        q: &ListQuery,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> ApiRequest {
        request(
            LIST_API,
            serde_json::json!({
                "start_update": wire::china_time_string(q.modified_from),
                "end_update": wire::china_time_string(q.modified_to),
                "page_no": q.page,
                "page_size": q.page_size,
            }),
            creds,
        )
    }

    fn parse_list(&self, body: &[u8]) -> Result<OrderPage, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let env: t::Envelope<t::ListData> = wire::parse_json(body)?;
        let data = env.data.ok_or_else(|| Rejected::missing("data"))?;
        let total = wire::opt_int("data.total_results", &data.total_results)?.unwrap_or(0);
        let mut orders = Vec::new();
        for (i, d) in data.full_order_info_list.into_iter().enumerate() {
            orders.push(order_from(d, &format!("data.full_order_info_list[{i}]"))?);
        }
        // Youzan answers the total, not whether there is a next page: a non-empty page may
        // have a successor; `pull_window` stops once it has seen `total` orders.
        Ok(OrderPage {
            has_next: !orders.is_empty(),
            orders,
            order_ids: Vec::new(),
            total: u64::try_from(total).ok(),
            next_cursor: None,
        })
    }

    fn detail_request(&self, id: &str, creds: &ShopCredentials, _now: DateTime<Utc>) -> ApiRequest {
        request(GET_API, serde_json::json!({ "tid": id }), creds)
    }

    fn ship_request(
        &self,
        s: &crate::Shipment,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let code = crate::ship::check(s, CARRIERS, true)?;
        let mut body = serde_json::json!({
            "tid": s.external_order_id,
            "out_stype": code,
            "out_sid": s.tracking_no,
            "is_no_express": 0,
        });
        if let Some(lines) = &s.line_ids {
            body["oids"] = lines.join(",").into();
        }
        Ok(request_v(SHIP_API, SHIP_VERSION, body, creds))
    }

    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        crate::ship::ack(self.api_error(body), &[ALREADY_SHIPPED_CODE], || {
            crate::ship::success_flag(body, "/data/is_success")
        })
    }

    fn stock_request(
        &self,
        updates: &[crate::StockUpdate],
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock(updates, 1)?;
        let u = &updates[0];
        let id = |field: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| Rejected::bad_value(field, "Youzan's numeric id"))
        };
        let mut body = serde_json::json!({
            "item_id": id("item_id", &u.item_id)?,
            "quantity": u.quantity,
            "type": STOCK_TYPE_WHOLE,
        });
        if !u.sku_id.is_empty() {
            body["sku_id"] = id("sku_id", &u.sku_id)?.into();
        }
        Ok(request_v(STOCK_API, STOCK_VERSION, body, creds))
    }

    fn parse_stock_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        let flag = ["/data/is_success", "/response/is_success"]
            .into_iter()
            .find_map(|p| v.pointer(p).map(|f| (p, f)));
        match flag {
            Some((_, serde_json::Value::Bool(true))) => Ok(()),
            Some((_, serde_json::Value::Bool(false))) => Err(ApiError::Api {
                code: v
                    .get("code")
                    .map(|c| c.to_string().trim_matches('"').to_owned())
                    .unwrap_or_default(),
                message: "the channel answered is_success false".into(),
            }),
            Some((p, _)) => Err(Rejected::at(
                "wrong_type",
                &p.trim_start_matches('/').replace('/', "."),
                "must be a boolean",
            )
            .into()),
            None => Err(Rejected::missing("data.is_success").into()),
        }
    }

    fn stock_read_batch_max(&self) -> usize {
        STOCK_READ_MAX
    }

    fn stock_read_request(
        &self,
        q: &crate::StockQuery,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock_query(q, STOCK_READ_MAX)?;
        let item_id = q
            .item_id
            .parse::<u64>()
            .map_err(|_| Rejected::bad_value("item_id", "Youzan's numeric id"))?;
        let body = serde_json::json!({ "item_id": item_id });
        Ok(request_v(ITEM_READ_API, ITEM_READ_VERSION, body, creds))
    }

    fn parse_stock_read(&self, body: &[u8]) -> Result<Vec<crate::StockLevel>, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        let item = ["/data/item", "/response/item"]
            .into_iter()
            .find_map(|p| v.pointer(p))
            .filter(|i| i.is_object())
            .ok_or_else(|| Rejected::missing("data.item"))?;
        let id = crate::level_id(item.get("item_id"), "data.item.item_id")?;
        let skus = match item.get("skus") {
            None | Some(serde_json::Value::Null) => &[][..],
            Some(serde_json::Value::Array(a)) => a.as_slice(),
            Some(_) => return Err(Rejected::bad_value("data.item.skus", "a list of SKUs").into()),
        };
        if skus.is_empty() {
            let quantity = crate::level_qty(item.get("quantity"), "data.item.quantity")?;
            return Ok(vec![crate::StockLevel {
                item_id: id,
                sku_id: String::new(),
                quantity,
            }]);
        }
        let mut levels = Vec::with_capacity(skus.len());
        for (i, sku) in skus.iter().enumerate() {
            let field = |f: &str| format!("data.item.skus[{i}].{f}");
            levels.push(crate::StockLevel {
                item_id: id.clone(),
                sku_id: crate::level_id(sku.get("sku_id"), &field("sku_id"))?,
                quantity: crate::level_qty(sku.get("quantity"), &field("quantity"))?,
            });
        }
        Ok(levels)
    }

    fn refund_get_request(
        &self,
        refund_id: &str,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        refund::check_id(refund_id)?;
        Ok(request_v(
            refund::GET_API,
            refund::VERSION,
            serde_json::json!({ "refund_id": refund_id }),
            creds,
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
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let (api, body) = refund::decision(r, d)?;
        Ok(request_v(api, refund::VERSION, body, creds))
    }

    fn parse_refund_decision_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        self.api_error(body).map_or_else(|| refund::ack(body), Err)
    }

    fn token_request(
        &self,
        shop_id: &str,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Option<ApiRequest> {
        Some(ApiRequest {
            method: "POST",
            path_and_query: TOKEN_PATH.into(),
            content_type: "application/json",
            headers: Vec::new(),
            body: wire::json_bytes(&serde_json::json!({
                "client_id": creds.app_key, "client_secret": creds.secret,
                "authorize_type": "silent", "grant_id": shop_id, "refresh": true,
            })),
        })
    }

    fn authorize_url(
        &self,
        _api_base_url: &str,
        _p: &crate::AuthorizeParams<'_>,
    ) -> Result<String, Rejected> {
        Err(crate::oauth_unsupported(
            "Youzan shops are served by self-use apps, whose tokens come from the silent grant to the app's credentials and the shop's grant_id; the tool-app code flow is not built",
        ))
    }

    fn parse_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<crate::TokenGrant, ApiError> {
        let v = crate::token::json(body)?;
        if v.get("success").and_then(serde_json::Value::as_bool) != Some(true) {
            if let Some(e @ ApiError::Throttled { .. }) = self.api_error(body) {
                return Err(e);
            }
            let code = crate::token::int_at(&v, "/code").unwrap_or(0).to_string();
            // 1004 授权关系已过期 and 1005 非法授权码 mean the shop must authorize the app again;
            // any other answer (1103 and 1105 mean several things; system errors) is tried again.
            if TOKEN_REFUSED_CODES.contains(&code.as_str()) {
                return Err(ApiError::Auth { code });
            }
            let message = v
                .get("message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            return Err(ApiError::Api {
                code,
                message: message.chars().take(200).collect(),
            });
        }
        let data = v.get("data").ok_or_else(|| Rejected::missing("data"))?;
        Ok(crate::token::grant(
            data,
            now,
            "/access_token",
            crate::token::Expiry::AtMillis("/expires"),
            None,
        )?)
    }

    fn api_error(&self, body: &[u8]) -> Option<ApiError> {
        // The answer's data is skipped, not built into a tree: this runs on every answer.
        let env: t::Envelope<serde::de::IgnoredAny> = wire::try_json(body)?;
        if let Some(gw) = env.gw_err_resp {
            let code = wire::opt_str(&gw.err_code).unwrap_or_default();
            let msg = gw.err_msg.unwrap_or_default();
            if code == THROTTLE_CODE || msg.contains("频") || msg.contains("限流") {
                return Some(ApiError::Throttled { code });
            }
            if AUTH_CODES.contains(&code.as_str()) || msg.contains("token") {
                return Some(ApiError::Auth { code });
            }
            return Some(ApiError::Api {
                code,
                message: msg.chars().take(200).collect(),
            });
        }
        if let Some(e) = env.error_response {
            let code = wire::opt_str(&e.code).unwrap_or_default();
            let msg: String = e.message.unwrap_or_default().chars().take(200).collect();
            if code == THROTTLE_CODE || code == refund::TOO_FAST_CODE || msg.contains("频繁") {
                return Some(ApiError::Throttled { code });
            }
            return Some(ApiError::Api { code, message: msg });
        }
        let code = wire::opt_str(&env.code).unwrap_or_default();
        // The throttling answer as announced carries no `success`.
        if env.success == Some(false) || env.success.is_none() && code == THROTTLE_CODE {
            let msg = env.message.as_deref().unwrap_or_default();
            if code == THROTTLE_CODE
                || code == refund::TOO_FAST_CODE
                || msg.contains("频繁")
                || msg.contains("限流")
            {
                return Some(ApiError::Throttled { code });
            }
            return Some(ApiError::Api {
                code,
                message: env.message.unwrap_or_default().chars().take(200).collect(),
            });
        }
        None
    }
}

//! Youzan's side of the wire, for the simulator.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{GET_API, LIST_API, THROTTLE_CODE, TradeStatus, push_sign};
use crate::sim::{
    Page, RawRequest, ShipAnswer, SignedPush, SimCall, SimErr, SimFault, SimWire, param,
};
use crate::wire::{china_time_string, json_bytes};
use crate::{CanonicalStatus, ChannelOrder, RefundDecision, RefundState, ShopCredentials};

use super::refund::{self as yr, RefundStatus};

pub(crate) struct YouzanWire;

/// One refund's own `refund_state` in the detail's `refund_order[]` (trade.get 4.0.0 doc): 1
/// waiting for the seller, 10 refused, 60 refunded.
fn refund_order_state(s: RefundState) -> u8 {
    match s {
        RefundState::None | RefundState::Requested => 1,
        RefundState::Rejected => 10,
        RefundState::Refunded => 60,
    }
}

/// The order's `refund_state` (0 none, 1 partly refunding, 2 partly refunded, 11 fully
/// refunding, 12 fully refunded) from its lines' refunds.
fn order_refund_state(o: &ChannelOrder) -> u8 {
    let all = |s: RefundState| o.lines.iter().all(|l| l.refund == s);
    let any = |s: RefundState| o.lines.iter().any(|l| l.refund == s);
    match () {
        _ if any(RefundState::Requested) && all(RefundState::Requested) => 11,
        _ if any(RefundState::Requested) => 1,
        _ if all(RefundState::Refunded) => 12,
        _ if any(RefundState::Refunded) => 2,
        _ => 0,
    }
}

/// The detail's `refund_order[]`: one refund per line the simulator opened one on, naming it.
fn refund_orders(o: &ChannelOrder) -> Vec<Value> {
    o.lines
        .iter()
        .filter(|l| l.refund != RefundState::None)
        .map(|l| {
            json!({
                "refund_id": l.refund_id,
                "refund_type": 1,
                "refund_state": refund_order_state(l.refund),
                "refund_fee": l.paid_amount.to_string(),
                "oids": [{"oid": l.external_line_id}],
            })
        })
        .collect()
}

/// A body value as text: a string, or a number written as digits.
fn text(p: &Value, k: &str) -> String {
    match p.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The refund calls (`/api/{api}/3.0.0`): the read, the agreement and the refusal; as the docs
/// list them, `refund_id` and `version` are required, and `remark` for a refusal.
/// `youzan.trade.returngoods.refuse` is not served (the simulator's refunds wait for the seller's
/// agreement, never for returned goods).
fn refund_call(api: &str, p: &Value) -> Option<Result<SimCall, SimFault>> {
    let refund_id = text(p, "refund_id");
    if ![yr::GET_API, yr::AGREE_API, yr::REFUSE_API].contains(&api) {
        return None;
    }
    if refund_id.is_empty() {
        return Some(Err(SimFault::BadRequest("refund_id 不能为空".into())));
    }
    if api == yr::GET_API {
        return Some(Ok(SimCall::RefundGet { refund_id }));
    }
    let Some(version) = p.get("version").and_then(Value::as_i64) else {
        return Some(Err(SimFault::BadRequest("version 不能为空".into())));
    };
    let decision = if api == yr::AGREE_API {
        RefundDecision::Agree
    } else {
        match p.get("remark").and_then(Value::as_str).map(str::trim) {
            Some(r) if !r.is_empty() => RefundDecision::Refuse {
                reason: r.to_string(),
            },
            _ => return Some(Err(SimFault::BadRequest("remark 不能为空".into()))),
        }
    };
    Some(Ok(SimCall::RefundDecision {
        refund_id,
        decision,
        version: Some(version),
    }))
}

pub(crate) fn render(o: &ChannelOrder) -> Value {
    let r = &o.receiver;
    json!({
        "full_order_info": {
            "order_info": {
                "tid": o.external_order_id,
                "status": o.channel_status,
                "created": china_time_string(o.created_at),
                "pay_time": o.paid_at.map(china_time_string).unwrap_or_default(),
                "update_time": china_time_string(o.modified_at),
                "refund_state": order_refund_state(o),
                "type": 0,
                "order_tags": {},
            },
            "address_info": {
                "receiver_name": r.name.expose(), "receiver_tel": r.phone.expose(),
                "delivery_province": r.province, "delivery_city": r.city,
                "delivery_district": r.district, "delivery_address": r.detail.expose(),
            },
            "remark_info": {"buyer_message": o.buyer_message.clone().unwrap_or_default(),
                "trade_memo": o.seller_memo.clone().unwrap_or_default(), "star": 0},
            "pay_info": {
                "total_fee": o.amounts.goods_total.to_string(),
                "post_fee": o.amounts.shipping_fee.to_string(),
                "payment": o.amounts.paid.to_string(),
            },
            "buyer_info": {"yz_open_id": o.buyer.id, "fans_nickname": o.buyer.nick},
            "orders": o.lines.iter().map(|l| json!({
                "oid": l.external_line_id,
                "item_id": 1_436_413_407u64,
                "sku_id": l.platform_sku_id.as_deref().unwrap_or("0").parse::<u64>().unwrap_or(0),
                "outer_sku_id": l.sku,
                "title": l.title,
                "price": l.unit_price.to_string(),
                "num": l.quantity,
                "total_fee": l.paid_amount.to_string(),
                "payment": l.paid_amount.to_string(),
            })).collect::<Vec<_>>(),
        },
        "refund_order": refund_orders(o),
    })
}

/// `youzan.item.quantity.update` as the channel checks it: `item_id` a number, `sku_id` a number
/// or absent (an item without specs), `quantity` a whole number; `type` 0 (全量) or absent (its
/// default). A difference (`type` 1) is refused: orderhub never sends one.
fn stock_call(p: &Value) -> Result<SimCall, SimFault> {
    let item = p.get("item_id").and_then(Value::as_u64);
    let sku = match p.get("sku_id") {
        None | Some(Value::Null) => Some(String::new()),
        Some(v) => v.as_u64().map(|n| n.to_string()),
    };
    let quantity = p
        .get("quantity")
        .and_then(Value::as_i64)
        .filter(|q| *q >= 0);
    let whole = matches!(p.get("type").map(Value::as_i64), None | Some(Some(0)));
    match (item, sku, quantity) {
        (Some(item), Some(sku_id), Some(quantity)) if whole => Ok(SimCall::Stock {
            updates: vec![crate::StockUpdate {
                item_id: item.to_string(),
                sku_id,
                quantity,
            }],
        }),
        _ => Err(SimFault::BadRequest(
            "item_id, quantity, sku_id (numbers), type 0".into(),
        )),
    }
}

fn ok(data: Value) -> Vec<u8> {
    json_bytes(&json!({"success": true, "code": 200, "message": "successful", "data": data}))
}

fn time(v: &Value, k: &str) -> DateTime<Utc> {
    let s = v
        .get(k)
        .and_then(Value::as_str)
        .map(|s| crate::wire::Text(s.to_string()));
    crate::wire::china_time(k, &s)
        .ok()
        .flatten()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl SimWire for YouzanWire {
    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
        let q = req.query_pairs();
        if req.path == super::TOKEN_PATH {
            let p: Value = serde_json::from_slice(&req.body)
                .map_err(|_| SimFault::BadRequest("请使用 application/json".into()))?;
            let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            if s("client_id") != creds.app_key || s("client_secret") != creds.secret {
                return Err(SimFault::Auth);
            }
            if s("authorize_type") != "silent" || s("grant_id").is_empty() {
                return Err(SimFault::BadRequest("authorize_type / grant_id".into()));
            }
            return Ok(SimCall::Token { refresh: None });
        }
        if creds.access_token.is_empty() || param(&q, "access_token") != creds.access_token {
            return Err(SimFault::Auth);
        }
        let p: Value = serde_json::from_slice(&req.body)
            .map_err(|_| SimFault::BadRequest("the body is not JSON".into()))?;
        if req.path == format!("/api/{LIST_API}/4.0.0") {
            Ok(SimCall::List {
                from: time(&p, "start_update"),
                to: time(&p, "end_update"),
                page: p.get("page_no").and_then(Value::as_u64).unwrap_or(1) as u32,
                page_size: p.get("page_size").and_then(Value::as_u64).unwrap_or(20) as u32,
                cursor: None,
            })
        } else if req.path == format!("/api/{GET_API}/4.0.0") {
            Ok(SimCall::Detail {
                id: p
                    .get("tid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            })
        } else if req.path == format!("/api/{}/{}", super::SHIP_API, super::SHIP_VERSION) {
            let s = |k: &str| match p.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let oids = s("oids");
            Ok(SimCall::Ship {
                id: s("tid"),
                carrier: s("out_stype"),
                tracking_no: s("out_sid"),
                line_ids: (!oids.is_empty()).then(|| oids.split(',').map(str::to_string).collect()),
            })
        } else if req.path == format!("/api/{}/{}", super::STOCK_API, super::STOCK_VERSION) {
            stock_call(&p)
        } else if req.path == format!("/api/{}/{}", super::ITEM_READ_API, super::ITEM_READ_VERSION)
        {
            match p.get("item_id").and_then(Value::as_u64) {
                Some(item) => Ok(SimCall::StockRead {
                    item_id: item.to_string(),
                    sku_ids: Vec::new(),
                }),
                None => Err(SimFault::BadRequest("item_id (a number)".into())),
            }
        } else if let Some(call) = req
            .path
            .strip_prefix("/api/")
            .and_then(|rest| rest.strip_suffix(&format!("/{}", yr::VERSION)))
            .and_then(|api| refund_call(api, &p))
        {
            call
        } else {
            Err(SimFault::BadRequest("unknown api".into()))
        }
    }

    /// The simulator's refunds carry the refund read's `status` codes (the detail's
    /// `refund_order[].refund_state` is rendered from the line's state).
    fn refund_code(&self, s: RefundState) -> &'static str {
        match s {
            RefundState::None | RefundState::Requested => RefundStatus::WaitSellerAgree,
            RefundState::Rejected => RefundStatus::SellerRefuseBuyer,
            RefundState::Refunded => RefundStatus::Success,
        }
        .code()
    }

    /// `youzan.trade.refund.get` 3.0.0 in the docs' field names and types; the simulator's refunds
    /// are refunds without goods to return.
    fn refund(&self, r: &crate::ChannelRefund) -> Vec<u8> {
        ok(json!({
            "refund_id": r.refund_id,
            "tid": r.external_order_id,
            "oid": r.external_line_id,
            "status": r.raw_status,
            "version": r.version,
            "return_goods": false,
            "refund_type": "BUYER_APPLY_REFUND",
            "cs_status": 1,
        }))
    }

    fn refund_decided(&self, _agree: bool) -> Vec<u8> {
        ok(json!({"is_success": true}))
    }

    fn list(&self, page: &Page<'_>) -> Vec<u8> {
        ok(json!({
            "full_order_info_list": page.orders.iter().map(render).collect::<Vec<_>>(),
            "total_results": page.total,
        }))
    }

    fn detail(&self, o: &ChannelOrder) -> Vec<u8> {
        ok(render(o))
    }

    fn has_carrier(&self, code: &str) -> bool {
        super::CARRIERS.iter().any(|(_, c)| *c == code)
    }

    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>) {
        let fail = |code: &str, msg: &str| {
            (
                200,
                json_bytes(&json!({
                    "success": false, "code": code.parse::<i64>().unwrap_or(0), "message": msg,
                })),
            )
        };
        match answer {
            ShipAnswer::Shipped => (
                200,
                json_bytes(
                    &json!({"success": true, "code": 200, "message": "successful",
                    "data": {"is_success": true}}),
                ),
            ),
            ShipAnswer::Repeat => fail(super::ALREADY_SHIPPED_CODE, "订单已发货"),
            ShipAnswer::Conflict => fail(super::SHIP_CONFLICT_CODE, "订单状态不允许发货"),
            ShipAnswer::UnknownCarrier => fail("40001", "物流公司不存在"),
            ShipAnswer::SystemError => fail(super::SYSTEM_ERROR_CODE, "系统繁忙，请稍后重试"),
        }
    }

    fn stock(&self, _updates: &[crate::StockUpdate]) -> Vec<u8> {
        ok(json!({"is_success": true}))
    }

    /// `youzan.item.get`: the item's SKUs and their quantities (`quantity` 总库存 their sum); an
    /// item without specs (SKU id `""`) answers its own quantity and no SKUs.
    fn stock_read(&self, item_id: &str, levels: &[crate::StockLevel]) -> Vec<u8> {
        let num = |s: &str| s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n));
        let skus: Vec<Value> = levels
            .iter()
            .filter(|l| !l.sku_id.is_empty())
            .map(|l| {
                json!({"item_id": num(item_id), "sku_id": num(&l.sku_id), "quantity": l.quantity,
                       "with_hold_quantity": 0})
            })
            .collect();
        let total: i64 = if skus.is_empty() {
            levels.iter().map(|l| l.quantity).sum()
        } else {
            levels
                .iter()
                .filter(|l| !l.sku_id.is_empty())
                .map(|l| l.quantity)
                .sum()
        };
        ok(json!({"item": {"item_id": num(item_id), "quantity": total, "skus": skus}}))
    }

    fn token(&self, g: &crate::sim::SimGrant) -> Vec<u8> {
        let expires = (g.now + chrono::Duration::seconds(g.expires_in)).timestamp_millis();
        json_bytes(
            &json!({"success": true, "code": 200, "message": null, "data": {
                "access_token": g.access_token, "expires": expires, "scope": "trade item",
                "authority_id": "42583152",
            }}),
        )
    }

    fn error(&self, err: &SimErr) -> (u16, Vec<u8>) {
        let body = match err {
            SimErr::Auth => {
                json!({"gw_err_resp": {"err_code": 4203, "err_msg": "access_token 不存在或已过期"}})
            }
            SimErr::TokenExpired => {
                json!({"gw_err_resp": {"trace_id": "yz7-sim", "err_code": 4202, "err_msg": "请求凭证过期"}})
            }
            SimErr::RefreshRefused => {
                json!({"success": false, "code": 1004, "data": null, "message": "授权关系已过期"})
            }
            SimErr::Throttled => {
                json!({"gw_err_resp": {"err_code": THROTTLE_CODE.parse::<i64>().unwrap_or(0), "err_msg": "请求太频繁"}})
            }
            SimErr::BadRequest(m) => json!({"success": false, "code": 40001, "message": m}),
            SimErr::NotFound => {
                json!({"success": false, "code": 101_300_002, "message": "订单不存在"})
            }
        };
        (200, json_bytes(&body))
    }

    fn push(&self, o: &ChannelOrder, creds: &ShopCredentials, _now: DateTime<Utc>) -> SignedPush {
        let msg_json = json!({
            "tid": o.external_order_id,
            "status": o.channel_status,
            "update_time": china_time_string(o.modified_at),
        })
        .to_string();
        let msg: String = form_urlencoded::byte_serialize(msg_json.as_bytes()).collect();
        let body = json_bytes(&json!({
            "client_id": creds.app_key,
            "id": format!("{}-{}", o.external_order_id, o.modified_at.timestamp()),
            "kdt_id": 77977,
            "kdt_name": "模拟店铺",
            "mode": 1,
            "msg": msg,
            "sendCount": 0,
            "sign": push_sign(&creds.app_key, &msg, &creds.secret),
            "status": o.channel_status,
            "test": false,
            "type": "TRADE_ORDER_STATE",
            "version": o.modified_at.timestamp(),
        }));
        SignedPush {
            query: Vec::new(),
            headers: Vec::new(),
            content_type: "application/json",
            body,
        }
    }

    fn status_code(&self, c: CanonicalStatus) -> &str {
        match c {
            CanonicalStatus::PendingPayment => TradeStatus::WaitBuyerPay,
            CanonicalStatus::Paid => TradeStatus::WaitSellerSendGoods,
            CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => {
                TradeStatus::WaitBuyerConfirmGoods
            }
            CanonicalStatus::Delivered => TradeStatus::TradeBuyerSigned,
            CanonicalStatus::Completed => TradeStatus::TradeSuccess,
            CanonicalStatus::Cancelled => TradeStatus::TradeClosed,
        }
        .code()
    }

    fn order_id(&self, serial: u64) -> String {
        format!("E20241111{:015}", serial)
    }
}

//! Pinduoduo's side of the wire (POP router), for the simulator.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{AUTH_CODE, INCREMENT_TYPE, INFO_TYPE, OrderStatus, PATH, THROTTLE_CODE, api_sign};
use crate::sim::{
    Page, RawRequest, ShipAnswer, SignedPush, SimCall, SimErr, SimFault, SimWire, param,
};
use crate::wire::{china_time_string, json_bytes};
use crate::{CanonicalStatus, ChannelOrder, ShopCredentials};

pub(crate) struct PddWire;

/// A yuan amount as PDD writes it: a JSON number (`19.9`). Two-decimal amounts print and read
/// back exactly through the shortest round-trip form of a double.
pub(crate) fn yuan_number(d: Decimal) -> Value {
    format!("{:.2}", d)
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

pub(crate) fn render(o: &ChannelOrder) -> Value {
    let r = &o.receiver;
    let goods: Decimal = o
        .lines
        .iter()
        .map(|l| l.unit_price * Decimal::from(l.quantity))
        .sum();
    json!({
        "order_sn": o.external_order_id,
        "order_status": o.channel_status.parse::<i64>().unwrap_or(0),
        // 2 (售后处理中) while a line's refund waits for the seller, else 1 (无售后或售后关闭).
        "refund_status": if o.lines.iter().any(|l| l.refund == crate::RefundState::Requested) { 2 } else { 1 },
        "after_sales_status": 0,
        "confirm_status": if o.canonical == CanonicalStatus::Cancelled { 2 } else { 1 },
        "group_status": 1,
        "risk_control_status": 0,
        "trade_type": 0,
        "is_pre_sale": 0,
        "created_time": china_time_string(o.created_at),
        "confirm_time": o.paid_at.map(china_time_string),
        "pay_time": o.paid_at.map(china_time_string),
        "updated_at": china_time_string(o.modified_at),
        "pay_amount": yuan_number(o.amounts.paid),
        "goods_amount": yuan_number(goods),
        "discount_amount": yuan_number(o.amounts.discount),
        "postage": yuan_number(o.amounts.shipping_fee),
        "buyer_memo": o.buyer_message.clone().unwrap_or_default(),
        "remark": o.seller_memo.clone().unwrap_or_default(),
        "province": r.province,
        "city": r.city,
        "town": r.district,
        "receiver_name": r.name.expose(),
        "receiver_phone": r.phone.expose(),
        "receiver_address": r.detail.expose(),
        "receiver_name_mask": "*",
        "receiver_phone_mask": "*******",
        "receiver_address_mask": "****",
        "item_list": o.lines.iter().map(|l| json!({
            "goods_id": 400_000_000_000u64,
            "sku_id": l.platform_sku_id.as_deref().unwrap_or("0").parse::<u64>().unwrap_or(0),
            "outer_id": l.sku,
            "outer_goods_id": "",
            "goods_name": l.title,
            "goods_spec": "默认",
            "goods_price": yuan_number(l.unit_price),
            "goods_count": l.quantity,
        })).collect::<Vec<_>>(),
    })
}

/// The after-sale calls: the detail (by the order, or by the order and the after-sale id) and the
/// agreement, whose `request` object must name a numeric `after_sales_id` and the `order_sn`.
fn refund_call(p: &[(String, String)]) -> Result<SimCall, SimFault> {
    let bad = |m: &str| Err(SimFault::BadRequest(m.into()));
    if param(p, "type") == super::refund::INFO_TYPE {
        let order = param(p, "order_sn");
        if order.is_empty() {
            return bad("order_sn");
        }
        return match param(p, "after_sales_id") {
            "" => Ok(SimCall::OrderRefunds {
                order_id: order.to_owned(),
            }),
            id if id.bytes().all(|b| b.is_ascii_digit()) => Ok(SimCall::RefundGet {
                refund_id: id.to_owned(),
            }),
            _ => bad("after_sales_id"),
        };
    }
    let Ok(Value::Object(r)) = serde_json::from_str::<Value>(param(p, "request")) else {
        return bad("request");
    };
    let id = match r.get("after_sales_id") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let order = r.get("order_sn").and_then(Value::as_str).unwrap_or("");
    match id {
        Some(id) if !order.is_empty() => Ok(SimCall::RefundDecision {
            refund_id: id.to_string(),
            decision: crate::RefundDecision::Agree,
            version: None,
        }),
        _ => bad("request.after_sales_id, request.order_sn"),
    }
}

fn secs(pairs: &[(String, String)], k: &str) -> DateTime<Utc> {
    param(pairs, k)
        .parse::<i64>()
        .ok()
        .and_then(|n| DateTime::from_timestamp(n, 0))
        .unwrap_or_default()
}

impl SimWire for PddWire {
    fn refund_code(&self, s: crate::RefundState) -> &'static str {
        match s {
            crate::RefundState::None | crate::RefundState::Rejected => "1",
            crate::RefundState::Requested => "2",
            crate::RefundState::Refunded => "4",
        }
    }

    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
        if req.path != PATH {
            return Err(SimFault::BadRequest("unknown path".into()));
        }
        let mut p = req.query_pairs();
        p.extend(crate::wire::form_decode(&req.body));
        let given = param(&p, "sign").to_string();
        if param(&p, "client_id") != creds.app_key
            || !crate::sign::hex_eq(&api_sign(&p, &creds.secret), &given)
        {
            return Err(SimFault::Auth);
        }
        if param(&p, "type") == super::TOKEN_CREATE_TYPE {
            return Ok(SimCall::CodeToken {
                code: param(&p, "code").to_string(),
            });
        }
        if param(&p, "type") == super::TOKEN_TYPE {
            return Ok(SimCall::Token {
                refresh: Some(param(&p, "refresh_token").to_string()),
            });
        }
        if creds.access_token.is_empty() || param(&p, "access_token") != creds.access_token {
            return Err(SimFault::Auth);
        }
        let num = |k: &str, d: u32| param(&p, k).parse::<u32>().unwrap_or(d);
        match param(&p, "type") {
            INCREMENT_TYPE => Ok(SimCall::List {
                from: secs(&p, "start_updated_at"),
                to: secs(&p, "end_updated_at"),
                page: num("page", 1),
                page_size: num("page_size", 100),
                cursor: None,
            }),
            INFO_TYPE => Ok(SimCall::Detail {
                id: param(&p, "order_sn").to_string(),
            }),
            super::STOCK_TYPE => {
                let q = param(&p, "quantity")
                    .parse::<i64>()
                    .ok()
                    .filter(|q| *q >= 0);
                match (q, param(&p, "update_type")) {
                    (Some(quantity), "" | "1") if !param(&p, "sku_id").is_empty() => {
                        Ok(SimCall::Stock {
                            updates: vec![crate::StockUpdate {
                                item_id: param(&p, "goods_id").to_string(),
                                sku_id: param(&p, "sku_id").to_string(),
                                quantity,
                            }],
                        })
                    }
                    _ => Err(SimFault::BadRequest("goods_id, sku_id, quantity".into())),
                }
            }
            super::SHIP_TYPE => Ok(SimCall::Ship {
                id: param(&p, "order_sn").to_string(),
                carrier: param(&p, "logistics_id").to_string(),
                tracking_no: param(&p, "tracking_number").to_string(),
                line_ids: None,
            }),
            super::GOODS_READ_TYPE => {
                let goods = param(&p, "goods_id");
                if goods.is_empty() {
                    return Err(SimFault::BadRequest("goods_id".into()));
                }
                Ok(SimCall::StockRead {
                    item_id: goods.to_string(),
                    sku_ids: Vec::new(),
                })
            }
            super::refund::INFO_TYPE | super::refund::AGREE_TYPE => refund_call(&p),
            _ => Err(SimFault::BadRequest("type not found".into())),
        }
    }

    /// The after-sale detail: `after_sales_status` for the refund's state (waiting for the seller
    /// 2, refunded 10, refused 6), its line's `sku_id`.
    fn refund(&self, r: &crate::ChannelRefund) -> Vec<u8> {
        use crate::RefundState as S;
        let status = match r.state {
            S::None => 0,
            S::Requested => 2,
            S::Refunded => 10,
            S::Rejected => 6,
        };
        let sku = r
            .external_line_id
            .as_deref()
            .and_then(|l| l.split('-').next())
            .and_then(|l| l.parse::<u64>().ok());
        json_bytes(&json!({"refund_information_get_response": {
            "id": r.refund_id.parse::<u64>().unwrap_or(0),
            "order_sn": r.external_order_id,
            "after_sales_status": status,
            "after_sales_type": 2,
            "after_sales_reason": "不想要了",
            "sku_id": sku,
            "goods_number": 1,
            "shipping_status": 0,
            "request_id": "sim",
        }}))
    }

    /// By the order alone: its latest after-sale; none is PDD's error (**assumed** code).
    fn order_refunds(&self, _order_id: &str, refunds: &[crate::ChannelRefund]) -> Vec<u8> {
        match refunds.last() {
            Some(r) => self.refund(r),
            None => json_bytes(&json!({"error_response": {
                "error_code": 10000, "error_msg": "售后单不存在",
                "sub_code": "10000", "sub_msg": "售后单不存在", "request_id": "sim",
            }})),
        }
    }

    fn refund_decided(&self, _agree: bool) -> Vec<u8> {
        json_bytes(&json!({"response": {"result": {"succ": true, "message": "退款操作成功"}}}))
    }

    fn list(&self, page: &Page<'_>) -> Vec<u8> {
        json_bytes(&json!({"order_sn_increment_get_response": {
            "has_next": page.has_next,
            "order_sn_list": page.orders.iter().map(render).collect::<Vec<_>>(),
            "request_id": "sim",
        }}))
    }

    fn detail(&self, o: &ChannelOrder) -> Vec<u8> {
        json_bytes(
            &json!({"order_info_get_response": {"order_info": render(o), "request_id": "sim"}}),
        )
    }

    fn has_carrier(&self, code: &str) -> bool {
        super::CARRIERS.iter().any(|(_, c)| *c == code)
    }

    fn stock(&self, _updates: &[crate::StockUpdate]) -> Vec<u8> {
        json_bytes(
            &json!({"goods_quantity_update_response": {"is_success": true, "request_id": "sim"}}),
        )
    }

    fn stock_read(&self, item_id: &str, levels: &[crate::StockLevel]) -> Vec<u8> {
        let num = |s: &str| s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n));
        let skus: Vec<Value> = levels
            .iter()
            .filter(|l| !l.sku_id.is_empty())
            .map(|l| json!({"sku_id": num(&l.sku_id), "quantity": l.quantity, "reserve_quantity": 0, "is_onsale": 1}))
            .collect();
        json_bytes(&json!({"goods_detail_get_response": {
            "goods_id": num(item_id), "status": 1, "sku_list": skus, "request_id": "sim",
        }}))
    }

    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>) {
        let biz = |code: &str, msg: &str| {
            (
                200,
                json_bytes(&json!({"error_response": {
                    "error_code": code.parse::<i64>().unwrap_or(0), "error_msg": msg,
                    "sub_code": code, "sub_msg": msg, "request_id": "sim",
                }})),
            )
        };
        match answer {
            ShipAnswer::Shipped => (
                200,
                json_bytes(&json!({"logistics_online_send_response": {
                    "is_success": true, "request_id": "sim",
                }})),
            ),
            ShipAnswer::Repeat => biz(super::ALREADY_SHIPPED_CODE, "订单已发货"),
            ShipAnswer::Conflict => biz(super::SHIP_CONFLICT_CODE, "订单状态不允许发货"),
            ShipAnswer::UnknownCarrier => biz("10000", "快递公司不存在"),
            ShipAnswer::SystemError => biz(super::SYSTEM_ERROR_CODE, "系统异常，请稍后重试"),
        }
    }

    fn code_token(&self, g: &crate::sim::SimGrant, shop_id: &str) -> Vec<u8> {
        let v: Value = serde_json::from_slice(&self.token(g)).unwrap_or_default();
        let mut r = v["pop_auth_token_refresh_response"].clone();
        r["owner_id"] = json!(shop_id);
        json_bytes(&json!({"pop_auth_token_create_response": r}))
    }

    fn token(&self, g: &crate::sim::SimGrant) -> Vec<u8> {
        let at = |secs: i64| g.now.timestamp() + secs;
        json_bytes(&json!({"pop_auth_token_refresh_response": {
            "access_token": g.access_token, "expires_in": g.expires_in,
            "expires_at": at(g.expires_in), "refresh_token": g.refresh_token,
            "refresh_token_expires_in": g.refresh_expires_in,
            "refresh_token_expires_at": at(g.refresh_expires_in),
            "owner_id": "sim-owner", "owner_name": "sim店铺",
            "scope": ["pdd.order.information.get", "pdd.order.number.list.increment.get"],
            "request_id": "sim",
        }}))
    }

    fn error(&self, err: &SimErr) -> (u16, Vec<u8>) {
        let (code, msg, sub) = match err {
            SimErr::TokenExpired => (
                AUTH_CODE.parse::<i64>().unwrap_or(0),
                "access_token已过期".to_string(),
                "access_token expired",
            ),
            SimErr::RefreshRefused => (
                super::REFRESH_REFUSED_CODE.parse::<i64>().unwrap_or(0),
                "refresh_token已过期或不存在".to_string(),
                "refresh_token invalid",
            ),
            SimErr::Auth => (
                AUTH_CODE.parse::<i64>().unwrap_or(0),
                "access_token已过期或签名错误".to_string(),
                "invalid access_token or sign",
            ),
            SimErr::Throttled => (
                THROTTLE_CODE.parse::<i64>().unwrap_or(0),
                "调用已被系统限流".to_string(),
                "rate limited",
            ),
            SimErr::BadRequest(m) => (10000, m.clone(), "bad parameter"),
            SimErr::NotFound => (50001, "订单不存在".to_string(), "order not found"),
        };
        (
            200,
            json_bytes(&json!({"error_response": {
                "error_code": code, "error_msg": msg, "sub_code": code.to_string(),
                "sub_msg": sub, "request_id": "sim",
            }})),
        )
    }

    fn push(&self, o: &ChannelOrder, creds: &ShopCredentials, now: DateTime<Utc>) -> SignedPush {
        let topic = super::pmc::topic(o.canonical);
        let content = json!({"tid": o.external_order_id, "mall_id": 77977}).to_string();
        let id = format!("{}-{}", o.external_order_id, o.modified_at.timestamp());
        SignedPush {
            query: Vec::new(),
            headers: Vec::new(),
            content_type: "application/x-www-form-urlencoded;charset=utf-8",
            body: super::push_form(topic, Some(&id), &content, creds, now),
        }
    }

    fn status_code(&self, c: CanonicalStatus) -> &str {
        match c {
            CanonicalStatus::PendingPayment
            | CanonicalStatus::Paid
            | CanonicalStatus::Cancelled => OrderStatus::WaitShip,
            CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => {
                OrderStatus::ShippedWaitSign
            }
            CanonicalStatus::Delivered | CanonicalStatus::Completed => OrderStatus::Signed,
        }
        .code()
    }

    /// PDD serves paid orders only, ships in one go, and ends at "signed for".
    fn normalise(&self, o: &mut ChannelOrder) {
        o.canonical = match o.canonical {
            CanonicalStatus::PendingPayment => {
                o.paid_at = Some(o.created_at + Duration::seconds(40));
                CanonicalStatus::Paid
            }
            CanonicalStatus::PartlyShipped => CanonicalStatus::Shipped,
            CanonicalStatus::Completed => CanonicalStatus::Delivered,
            c => c,
        };
        o.channel_status = self.status_code(o.canonical).to_string();
        // PDD's lines are its SKUs: the line id is the sku_id (a repeated SKU `{sku_id}-{index}`),
        // as the adapter reads it.
        let mut seen: Vec<String> = Vec::new();
        for (i, l) in o.lines.iter_mut().enumerate() {
            let mut id = l
                .platform_sku_id
                .clone()
                .unwrap_or_else(|| l.external_line_id.clone());
            if seen.contains(&id) {
                id = format!("{id}-{i}");
            }
            seen.push(id.clone());
            l.external_line_id = id;
        }
    }

    fn order_id(&self, serial: u64) -> String {
        format!("241111-{:015}", serial)
    }
}

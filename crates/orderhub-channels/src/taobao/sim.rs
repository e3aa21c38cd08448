//! Taobao's side of the wire (TOP router), for the simulator.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    FULLINFO_METHOD, INCREMENT_METHOD, PATH, RefundStatus, THROTTLE_CODE, TradeStatus, top_sign,
};
use crate::sim::{
    Page, RawRequest, ShipAnswer, SignedPush, SimCall, SimErr, SimFault, SimWire, param,
};
use crate::wire::{china, china_time_string, json_bytes};
use crate::{CanonicalStatus, ChannelOrder, RefundDecision, RefundState, ShopCredentials};

/// TOP's refund status for a refund state, as the simulator writes it.
fn refund_code(s: RefundState) -> &'static str {
    match s {
        RefundState::None => RefundStatus::NoRefund,
        RefundState::Requested => RefundStatus::WaitSellerAgree,
        RefundState::Refunded => RefundStatus::Success,
        RefundState::Rejected => RefundStatus::SellerRefuseBuyer,
    }
    .code()
}

/// A refund decision call's parameters: the refund id and version it names.
fn decision_call(p: &[(String, String)], decision: RefundDecision) -> Result<SimCall, SimFault> {
    let refund_id = param(p, "refund_id");
    if refund_id.is_empty() {
        return Err(SimFault::BadRequest("refund_id".into()));
    }
    let version = match param(p, "refund_version") {
        "" => None,
        v => Some(
            v.parse::<i64>()
                .map_err(|_| SimFault::BadRequest("refund_version".into()))?,
        ),
    };
    Ok(SimCall::RefundDecision {
        refund_id: refund_id.to_string(),
        decision,
        version,
    })
}

pub(crate) struct TaobaoWire;

/// A money amount as TOP writes it: a yuan string with two decimals.
pub(crate) fn yuan(d: rust_decimal::Decimal) -> String {
    format!("{:.2}", d)
}

/// An id as a JSON number when it fits, else as a string (TOP also sends the `*_str` twin).
fn num_id(s: &str) -> Value {
    s.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(s))
}

pub(crate) fn render(o: &ChannelOrder) -> Value {
    let r = &o.receiver;
    json!({
        "tid": num_id(&o.external_order_id),
        "tid_str": o.external_order_id,
        "status": o.channel_status,
        "type": "fixed",
        "created": china_time_string(o.created_at),
        "pay_time": o.paid_at.map(china_time_string),
        "modified": china_time_string(o.modified_at),
        "payment": yuan(o.amounts.paid),
        "total_fee": yuan(o.amounts.goods_total),
        "post_fee": yuan(o.amounts.shipping_fee),
        "discount_fee": yuan(o.amounts.discount),
        "seller_nick": "模拟旗舰店",
        "buyer_nick": o.buyer.nick,
        "buyer_open_uid": o.buyer.id,
        "buyer_message": o.buyer_message,
        "seller_memo": o.seller_memo,
        "receiver_name": r.name.expose(),
        "receiver_mobile": r.phone.expose(),
        "receiver_state": r.province,
        "receiver_city": r.city,
        "receiver_district": r.district,
        "receiver_town": r.town,
        "receiver_address": r.detail.expose(),
        "orders": {"order": o.lines.iter().map(|l| json!({
            "oid": num_id(&l.external_line_id),
            "oid_str": l.external_line_id,
            "status": o.channel_status,
            "title": l.title,
            "price": yuan(l.unit_price),
            "num": l.quantity,
            "num_iid": 600_000_000_000u64,
            "sku_id": l.platform_sku_id,
            "outer_sku_id": l.sku,
            "total_fee": yuan(l.paid_amount),
            // TOP's Order doc: a lone line's payment includes the trade's post fee.
            "payment": yuan(if o.lines.len() == 1 { l.paid_amount + o.amounts.shipping_fee } else { l.paid_amount }),
            "divide_order_fee": yuan(l.paid_amount),
            "discount_fee": yuan(l.discount),
            "refund_status": match l.refund {
                RefundState::None => RefundStatus::NoRefund.code().to_owned(),
                s => l.refund_raw.clone().unwrap_or_else(|| refund_code(s).to_owned()),
            },
            "refund_id": l.refund_id.as_deref().map(num_id),
        })).collect::<Vec<_>>()},
    })
}

/// A whole quantity as TOP takes it with `type=1`: 0 or more.
fn stock_qty(s: &str) -> Result<i64, SimFault> {
    s.parse::<i64>()
        .ok()
        .filter(|q| *q >= 0)
        .ok_or_else(|| SimFault::BadRequest("quantity".into()))
}

fn time(pairs: &[(String, String)], k: &str) -> DateTime<Utc> {
    let s = Some(crate::wire::Text(param(pairs, k).to_string()));
    crate::wire::china_time(k, &s)
        .ok()
        .flatten()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// The refund calls: the read, the review (agreement) and the refusal.
fn refund_call(p: &[(String, String)]) -> Result<SimCall, SimFault> {
    match param(p, "method") {
        super::refund::GET_METHOD => match param(p, "refund_id") {
            "" => Err(SimFault::BadRequest("refund_id".into())),
            id => Ok(SimCall::RefundGet {
                refund_id: id.to_string(),
            }),
        },
        super::refund::REVIEW_METHOD => {
            // Review takes the phase, the version and an operator; `result=false` (not
            // approved, or a review withdrawn) is not a refusal and not simulated.
            if param(p, "result") != "true"
                || param(p, "operator").is_empty()
                || param(p, "refund_phase").is_empty()
                || param(p, "refund_version").is_empty()
            {
                return Err(SimFault::BadRequest(
                    "operator, refund_phase, refund_version, result=true".into(),
                ));
            }
            decision_call(p, RefundDecision::Agree)
        }
        super::refund::REFUSE_METHOD => {
            let reason = param(p, "refuse_message");
            if !(2..=200).contains(&reason.chars().count()) {
                return Err(SimFault::BadRequest("refuse_message: 2-200".into()));
            }
            decision_call(
                p,
                RefundDecision::Refuse {
                    reason: reason.to_string(),
                },
            )
        }
        _ => Err(SimFault::BadRequest("Invalid method".into())),
    }
}

impl SimWire for TaobaoWire {
    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
        if req.path != PATH {
            return Err(SimFault::BadRequest("unknown path".into()));
        }
        // TOP takes parameters from the query string and the form body alike.
        let mut p = req.query_pairs();
        p.extend(crate::wire::form_decode(&req.body));
        let given = param(&p, "sign").to_string();
        if param(&p, "app_key") != creds.app_key
            || !crate::sign::hex_eq(&top_sign(&p, &creds.secret), &given)
        {
            return Err(SimFault::Auth);
        }
        // The token call carries no session; every other call the shop's valid one.
        if param(&p, "method") == super::TOKEN_CREATE_METHOD {
            return Ok(SimCall::CodeToken {
                code: param(&p, "code").to_string(),
            });
        }
        if param(&p, "method") == super::TOKEN_METHOD {
            return Ok(SimCall::Token {
                refresh: Some(param(&p, "refresh_token").to_string()),
            });
        }
        if creds.access_token.is_empty() || param(&p, "session") != creds.access_token {
            return Err(SimFault::Auth);
        }
        let num = |k: &str, d: u32| param(&p, k).parse::<u32>().unwrap_or(d);
        match param(&p, "method") {
            INCREMENT_METHOD => Ok(SimCall::List {
                from: time(&p, "start_modified"),
                to: time(&p, "end_modified"),
                page: num("page_no", 1),
                page_size: num("page_size", 40),
                cursor: None,
            }),
            FULLINFO_METHOD => Ok(SimCall::Detail {
                id: param(&p, "tid").to_string(),
            }),
            super::SHIP_METHOD => Ok(SimCall::Ship {
                id: param(&p, "tid").to_string(),
                carrier: param(&p, "company_code").to_string(),
                tracking_no: param(&p, "out_sid").to_string(),
                line_ids: (param(&p, "is_split") == "1").then(|| {
                    param(&p, "sub_tid")
                        .split(',')
                        .map(str::to_string)
                        .collect()
                }),
            }),
            super::ITEM_STOCK_METHOD => Ok(SimCall::Stock {
                updates: vec![crate::StockUpdate {
                    item_id: param(&p, "num_iid").to_string(),
                    sku_id: param(&p, "sku_id").to_string(),
                    quantity: stock_qty(param(&p, "quantity"))?,
                }],
            }),
            super::SKUS_STOCK_METHOD => {
                let item = param(&p, "num_iid").to_string();
                let mut updates = Vec::new();
                for pair in param(&p, "skuid_quantities").split(';') {
                    let (sku, q) = pair
                        .split_once(':')
                        .ok_or_else(|| SimFault::BadRequest("skuid_quantities".into()))?;
                    updates.push(crate::StockUpdate {
                        item_id: item.clone(),
                        sku_id: sku.to_string(),
                        quantity: stock_qty(q)?,
                    });
                }
                if updates.len() > super::STOCK_BATCH_MAX {
                    return Err(SimFault::BadRequest("at most 20 SKUs".into()));
                }
                Ok(SimCall::Stock { updates })
            }
            super::ITEM_READ_METHOD => {
                let item = param(&p, "num_iid");
                if item.is_empty() {
                    return Err(SimFault::BadRequest("num_iid".into()));
                }
                Ok(SimCall::StockRead {
                    item_id: item.to_string(),
                    sku_ids: Vec::new(),
                })
            }
            super::refund::GET_METHOD
            | super::refund::REVIEW_METHOD
            | super::refund::REFUSE_METHOD => refund_call(&p),
            _ => Err(SimFault::BadRequest("Invalid method".into())),
        }
    }

    fn stock(&self, updates: &[crate::StockUpdate]) -> Vec<u8> {
        let item = updates.first().map(|u| u.item_id.as_str()).unwrap_or("");
        let skus: Vec<Value> = updates
            .iter()
            .filter(|u| !u.sku_id.is_empty())
            .map(|u| json!({"sku_id": num_id(&u.sku_id), "quantity": u.quantity, "modified": "2026-01-01 00:00:00"}))
            .collect();
        let mut it = json!({"num_iid": num_id(item), "num": updates.iter().map(|u| u.quantity).sum::<i64>(), "modified": "2026-01-01 00:00:00"});
        if !skus.is_empty() {
            it["skus"] = json!({ "sku": skus });
        }
        let key = if updates.len() == 1 {
            "item_quantity_update_response"
        } else {
            "skus_quantity_update_response"
        };
        json_bytes(&json!({ key: {"item": it, "request_id": "sim"} }))
    }

    fn stock_read(&self, item_id: &str, levels: &[crate::StockLevel]) -> Vec<u8> {
        let skus: Vec<Value> = levels
            .iter()
            .filter(|l| !l.sku_id.is_empty())
            .map(|l| json!({"sku_id": num_id(&l.sku_id), "quantity": l.quantity, "status": "normal"}))
            .collect();
        // The item's own quantity: its SKU-less shelf, else the sum of its SKUs (as TOP's `num`).
        let num = levels.iter().find(|l| l.sku_id.is_empty()).map_or_else(
            || levels.iter().map(|l| l.quantity).sum::<i64>(),
            |l| l.quantity,
        );
        let mut it = json!({"num_iid": num_id(item_id), "num": num});
        if !skus.is_empty() {
            it["skus"] = json!({ "sku": skus });
        }
        json_bytes(&json!({"item_seller_get_response": {"item": it, "request_id": "sim"}}))
    }

    fn list(&self, page: &Page<'_>) -> Vec<u8> {
        // With use_has_next=true TOP answers has_next and no total.
        let mut r = json!({
            "has_next": page.has_next,
            "request_id": "sim",
        });
        if !page.orders.is_empty() {
            r["trades"] = json!({"trade": page.orders.iter().map(render).collect::<Vec<_>>()});
        }
        json_bytes(&json!({ "trades_sold_increment_get_response": r }))
    }

    fn detail(&self, o: &ChannelOrder) -> Vec<u8> {
        json_bytes(
            &json!({"trade_fullinfo_get_response": {"trade": render(o), "request_id": "sim"}}),
        )
    }

    fn refund_code(&self, s: RefundState) -> &'static str {
        refund_code(s)
    }

    fn refund(&self, r: &crate::ChannelRefund) -> Vec<u8> {
        json_bytes(&json!({"refund_get_response": {"refund": {
            "refund_id": r.refund_id,
            "tid": num_id(&r.external_order_id),
            "oid": r.external_line_id.as_deref().map(num_id),
            "status": r.raw_status,
            "refund_phase": r.phase,
            "refund_version": r.version,
        }, "request_id": "sim"}}))
    }

    fn refund_decided(&self, agree: bool) -> Vec<u8> {
        let key = if agree {
            "rp_refund_review_response"
        } else {
            "refund_refuse_response"
        };
        json_bytes(&json!({ key: {"is_success": true, "request_id": "sim"} }))
    }

    fn has_carrier(&self, code: &str) -> bool {
        super::CARRIERS.iter().any(|(_, c)| *c == code)
    }

    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>) {
        let biz = |code: i64, msg: &str, sub: &str, sub_msg: &str| {
            (
                200,
                json_bytes(&json!({"error_response": {
                    "code": code, "msg": msg, "sub_code": sub, "sub_msg": sub_msg,
                    "request_id": "sim",
                }})),
            )
        };
        match answer {
            ShipAnswer::Shipped => (
                200,
                json_bytes(&json!({"logistics_offline_send_response": {
                    "shipping": {"is_success": true}, "request_id": "sim",
                }})),
            ),
            ShipAnswer::Repeat => biz(
                15,
                "Remote service error",
                super::ALREADY_SHIPPED_SUB_CODE,
                "订单已发货",
            ),
            ShipAnswer::Conflict => biz(
                15,
                "Remote service error",
                super::SHIP_CONFLICT_SUB_CODE,
                "订单状态不允许发货",
            ),
            ShipAnswer::UnknownCarrier => biz(
                41,
                "Invalid arguments",
                "isv.invalid-parameter:company_code",
                "物流公司不存在",
            ),
            ShipAnswer::SystemError => biz(
                10,
                "Service currently unavailable",
                "isp.service-unavailable",
                "服务暂不可用",
            ),
        }
    }

    fn code_token(&self, g: &crate::sim::SimGrant, _shop_id: &str) -> Vec<u8> {
        let v: Value = serde_json::from_slice(&self.token(g)).unwrap_or_default();
        json_bytes(&json!({"top_auth_token_create_response": v["top_auth_token_refresh_response"]}))
    }

    fn token(&self, g: &crate::sim::SimGrant) -> Vec<u8> {
        let ms = |secs: i64| (g.now + chrono::Duration::seconds(secs)).timestamp_millis();
        let result = json!({
            "access_token": g.access_token, "token_type": "Bearer",
            "expires_in": g.expires_in, "expire_time": ms(g.expires_in),
            "refresh_token": g.refresh_token, "re_expires_in": g.refresh_expires_in,
            "refresh_token_valid_time": ms(g.refresh_expires_in),
            "r1_expires_in": 1800, "r2_expires_in": 0, "w1_expires_in": 1800, "w2_expires_in": 0,
            "taobao_user_nick": "sim%E5%BA%97", "taobao_user_id": "2200000000001",
        });
        json_bytes(&json!({"top_auth_token_refresh_response": {
            "token_result": result.to_string(), "request_id": "sim",
        }}))
    }

    fn error(&self, err: &SimErr) -> (u16, Vec<u8>) {
        let e = match err {
            SimErr::Auth => json!({"code": 25, "msg": "Invalid signature"}),
            SimErr::TokenExpired => json!({"code": 27, "msg": "Invalid session",
                "sub_code": "invalid-sessionkey", "sub_msg": "SessionKey非法"}),
            SimErr::RefreshRefused => json!({"code": 15, "msg": "Remote service error",
                "sub_code": super::REFRESH_REFUSED_SUB_CODE, "sub_msg": "refresh_token无效或已过期"}),
            SimErr::Throttled => json!({
                "code": THROTTLE_CODE.parse::<i64>().unwrap_or(7),
                "msg": "App Call Limited",
                "sub_code": "accesscontrol.limited-by-app-access-count",
                "sub_msg": "This ban will last for 1 more seconds",
            }),
            SimErr::BadRequest(m) => json!({"code": 41, "msg": "Invalid arguments", "sub_msg": m}),
            SimErr::NotFound => json!({
                "code": 15, "msg": "Remote service error",
                "sub_code": "isv.trade-not-exist", "sub_msg": "交易不存在",
            }),
        };
        let mut e = e;
        e["request_id"] = json!("sim");
        (200, json_bytes(&json!({ "error_response": e })))
    }

    fn push(&self, o: &ChannelOrder, creds: &ShopCredentials, now: DateTime<Utc>) -> SignedPush {
        let topic = match o.canonical {
            CanonicalStatus::PendingPayment => "taobao_trade_TradeCreate",
            CanonicalStatus::Paid => "taobao_trade_TradeBuyerPay",
            CanonicalStatus::PartlyShipped => "taobao_trade_TradePartlySellerShip",
            CanonicalStatus::Shipped => "taobao_trade_TradeSellerShip",
            CanonicalStatus::Delivered | CanonicalStatus::Completed => "taobao_trade_TradeSuccess",
            CanonicalStatus::Cancelled => "taobao_trade_TradeClose",
        };
        let content = json!({
            "tid": num_id(&o.external_order_id),
            "oid": num_id(&o.external_order_id),
            "status": topic.trim_start_matches("taobao_trade_"),
            "payment": yuan(o.amounts.paid),
            "buyer_nick": o.buyer.nick,
            "seller_nick": "模拟旗舰店",
            "type": "fixed",
        })
        .to_string();
        let mut params: Vec<(String, String)> = vec![
            ("app_key".into(), creds.app_key.clone()),
            ("topic".into(), topic.into()),
            (
                "id".into(),
                format!("{}-{}", o.external_order_id, o.modified_at.timestamp()),
            ),
            ("pub_time".into(), china_time_string(o.modified_at)),
            ("user_nick".into(), "模拟旗舰店".into()),
            ("content".into(), content),
            (
                "timestamp".into(),
                china_time_string(now.with_timezone(&china())),
            ),
            ("sign_method".into(), "md5".into()),
        ];
        let sign = top_sign(&params, &creds.secret);
        params.push(("sign".into(), sign));
        SignedPush {
            query: Vec::new(),
            headers: Vec::new(),
            content_type: "application/x-www-form-urlencoded;charset=utf-8",
            body: crate::wire::form_encode(&params).into_bytes(),
        }
    }

    fn status_code(&self, c: CanonicalStatus) -> &str {
        match c {
            CanonicalStatus::PendingPayment => TradeStatus::WaitBuyerPay,
            CanonicalStatus::Paid => TradeStatus::WaitSellerSendGoods,
            CanonicalStatus::PartlyShipped => TradeStatus::SellerConsignedPart,
            CanonicalStatus::Shipped => TradeStatus::WaitBuyerConfirmGoods,
            CanonicalStatus::Delivered => TradeStatus::TradeBuyerSigned,
            CanonicalStatus::Completed => TradeStatus::TradeFinished,
            CanonicalStatus::Cancelled => TradeStatus::TradeClosedByTaobao,
        }
        .code()
    }

    fn order_id(&self, serial: u64) -> String {
        format!("{}", 3_900_000_000_000_000_000u64 + serial)
    }
}

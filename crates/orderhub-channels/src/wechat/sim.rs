//! WeChat Channels' side of the wire, for the simulator.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::refund::{self, AftersaleStatus};
use super::{GET_PATH, LIST_PATH, OrderStatus, signature};
use crate::sim::{
    Page, RawRequest, ShipAnswer, SignedPush, SimCall, SimErr, SimFault, SimWire, param,
};
use crate::wire::{json_bytes, yuan_to_fen};
use crate::{
    CanonicalStatus, ChannelLine, ChannelOrder, ChannelRefund, RefundDecision, RefundState,
    ShopCredentials,
};

pub(crate) struct WechatWire;

pub(crate) fn render(o: &ChannelOrder) -> Value {
    let r = &o.receiver;
    json!({
        "order_id": o.external_order_id,
        "status": o.channel_status.parse::<i64>().unwrap_or(0),
        "create_time": o.created_at.timestamp(),
        "update_time": o.modified_at.timestamp(),
        "openid": o.buyer.id,
        "order_detail": {
            "product_infos": o.lines.iter().map(|l| {
                let (product, sku) = product_sku(l);
                let (on, finished) = match l.refund {
                    RefundState::Requested => (l.quantity, 0),
                    RefundState::Refunded => (0, l.quantity),
                    RefundState::None | RefundState::Rejected => (0, 0),
                };
                json!({
                    "product_id": product,
                    "sku_id": sku,
                    "out_sku_id": l.sku,
                    "sku_cnt": l.quantity,
                    "title": l.title,
                    "sale_price": yuan_to_fen(l.unit_price),
                    "real_price": yuan_to_fen(l.paid_amount),
                    "on_aftersale_sku_cnt": on,
                    "finish_aftersale_sku_cnt": finished,
                })
            }).collect::<Vec<_>>(),
            "pay_info": {"pay_time": o.paid_at.map(|t| t.timestamp()).unwrap_or(0), "payment_method": 1},
            "price_info": {
                "product_price": yuan_to_fen(o.amounts.goods_total),
                "order_price": yuan_to_fen(o.amounts.paid),
                "freight": yuan_to_fen(o.amounts.shipping_fee),
                "discounted_price": yuan_to_fen(o.amounts.discount),
                "is_discounted": !o.amounts.discount.is_zero(),
            },
            "delivery_info": {"address_info": {
                "user_name": r.name.expose(), "tel_number": r.phone.expose(),
                "province_name": r.province, "city_name": r.city,
                "county_name": r.district, "detail_info": r.detail.expose(), "postal_code": "",
            }, "deliver_method": 0},
            "ext_info": {"customer_notes": o.buyer_message.clone().unwrap_or_default(),
                "merchant_notes": o.seller_memo.clone().unwrap_or_default()},
        },
        // The order's after-sales, ids only (the real list also has a numeric `status` whose
        // codes the sources do not document: not rendered).
        "aftersale_detail": {
            "aftersale_order_list": o.lines.iter().filter_map(|l| l.refund_id.as_ref())
                .map(|id| json!({"aftersale_order_id": id})).collect::<Vec<_>>(),
            "on_aftersale_order_cnt": o.lines.iter()
                .filter(|l| l.refund == RefundState::Requested).count(),
        },
    })
}

/// A line's `product_id` and `sku_id`: the simulator's line id is `product_id:sku_id`, as the
/// adapter makes it ([`WechatWire::normalise`]).
fn product_sku(l: &ChannelLine) -> (String, String) {
    match l.external_line_id.split_once(':') {
        Some((p, s)) => (p.to_owned(), s.to_owned()),
        None => (
            l.external_line_id.clone(),
            l.platform_sku_id.clone().unwrap_or_default(),
        ),
    }
}

/// The after-sale id a decision call names: a string of digits (WeChat's doc types it string).
fn aftersale_id(p: &Value) -> Result<String, SimFault> {
    match p.get("after_sale_order_id") {
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(s.clone())
        }
        _ => Err(SimFault::BadRequest(
            "after_sale_order_id must be an after-sale id (a string)".into(),
        )),
    }
}

/// The shop's refusal reasons `rejectreason/get` serves: (`reject_reason_type`,
/// `reject_reason_type_text`).
const SIM_REJECT_REASONS: [(i64, &str); 4] = [
    (1, "商品已发货，请买家拒收后申请"),
    (2, "买家已签收，商品不支持七天无理由"),
    (3, "已与买家协商一致"),
    (10, "其他"),
];

/// `acceptapply` / `rejectapply` as WeChat checks them: the after-sale id; `accept_type` 1 or 2
/// where given; `reject_reason_type` a number (required), `reject_reason` a string where given.
fn decision_call(path: &str, p: &Value) -> Result<SimCall, SimFault> {
    let refund_id = aftersale_id(p)?;
    let decision = if path == refund::ACCEPT_PATH {
        match p.get("accept_type") {
            None => {}
            Some(t) if matches!(t.as_i64(), Some(1 | 2)) => {}
            Some(_) => return Err(SimFault::BadRequest("accept_type must be 1 or 2".into())),
        }
        RefundDecision::Agree
    } else {
        let code = p.get("reject_reason_type").and_then(Value::as_i64);
        if !SIM_REJECT_REASONS.iter().any(|r| Some(r.0) == code) {
            return Err(SimFault::BadRequest(
                "reject_reason_type is required: one of rejectreason/get's".into(),
            ));
        }
        let reason = match p.get("reject_reason") {
            None => String::new(),
            Some(Value::String(r)) => r.clone(),
            Some(_) => {
                return Err(SimFault::BadRequest(
                    "reject_reason must be a string".into(),
                ));
            }
        };
        return Ok(SimCall::CodedRefusal {
            refund_id,
            reason,
            code: code.unwrap_or_default().to_string(),
            version: None,
        });
    };
    Ok(SimCall::RefundDecision {
        refund_id,
        decision,
        version: None,
    })
}

/// `stock/update` as the channel checks it: `product_id` and `sku_id` strings of digits, `num`
/// a whole quantity; only `diff_type` 3 (设置) is taken (a difference would need the shelf's
/// own arithmetic, which orderhub never asks for).
fn stock_call(p: &Value) -> Result<SimCall, SimFault> {
    let id = |k: &str| match p.get(k) {
        Some(Value::String(s)) if !s.is_empty() && s.parse::<u64>().is_ok() => Some(s.clone()),
        _ => None,
    };
    let num = p.get("num").and_then(Value::as_i64).filter(|q| *q >= 0);
    let set = p.get("diff_type").and_then(Value::as_i64) == Some(super::STOCK_DIFF_TYPE_SET);
    match (id("product_id"), id("sku_id"), num) {
        (Some(item_id), Some(sku_id), Some(quantity)) if set => Ok(SimCall::Stock {
            updates: vec![crate::StockUpdate {
                item_id,
                sku_id,
                quantity,
            }],
        }),
        _ => Err(SimFault::BadRequest(
            "product_id, sku_id (uint64 strings), diff_type 3, num".into(),
        )),
    }
}

impl SimWire for WechatWire {
    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
        let q = req.query_pairs();
        if req.path == super::TOKEN_PATH {
            let p: Value = serde_json::from_slice(&req.body)
                .map_err(|_| SimFault::BadRequest("the body is not JSON".into()))?;
            let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            if s("grant_type") != "client_credential" {
                return Err(SimFault::BadRequest("invalid grant_type".into()));
            }
            if s("appid") != creds.app_key
                || creds.app_secret.is_empty()
                || s("secret") != creds.app_secret
            {
                return Err(SimFault::Auth);
            }
            return Ok(SimCall::Token { refresh: None });
        }
        if creds.access_token.is_empty() || param(&q, "access_token") != creds.access_token {
            return Err(SimFault::Auth);
        }
        let p: Value = serde_json::from_slice(&req.body)
            .map_err(|_| SimFault::BadRequest("the body is not JSON".into()))?;
        match req.path.as_str() {
            LIST_PATH => {
                let range = p.get("update_time_range").cloned().unwrap_or_default();
                let int = |k: &str| range.get(k).and_then(Value::as_i64).unwrap_or(0);
                Ok(SimCall::List {
                    from: DateTime::from_timestamp(int("start_time"), 0).unwrap_or_default(),
                    to: DateTime::from_timestamp(int("end_time"), 0).unwrap_or_default(),
                    page: 1,
                    page_size: p.get("page_size").and_then(Value::as_u64).unwrap_or(10) as u32,
                    cursor: p
                        .get("next_key")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
            }
            GET_PATH => Ok(SimCall::Detail {
                id: p
                    .get("order_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }),
            super::SHIP_PATH => {
                let d = p
                    .get("delivery_list")
                    .and_then(|l| l.get(0))
                    .cloned()
                    .unwrap_or_default();
                let s =
                    |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                Ok(SimCall::Ship {
                    id: s(&p, "order_id"),
                    carrier: s(&d, "delivery_id"),
                    tracking_no: s(&d, "waybill_id"),
                    line_ids: None,
                })
            }
            super::STOCK_PATH => stock_call(&p),
            refund::AFTERSALE_GET_PATH => Ok(SimCall::RefundGet {
                refund_id: aftersale_id(&p)?,
            }),
            path @ (refund::ACCEPT_PATH | refund::REJECT_PATH) => decision_call(path, &p),
            refund::REJECT_REASONS_PATH => Ok(SimCall::RefusalReasons { refund_id: None }),
            _ => Err(SimFault::BadRequest("unknown path".into())),
        }
    }

    fn list(&self, page: &Page<'_>) -> Vec<u8> {
        json_bytes(&json!({
            "errcode": 0, "errmsg": "ok",
            "order_id_list": page.orders.iter().map(|o| o.external_order_id.clone()).collect::<Vec<_>>(),
            "next_key": page.next_cursor.clone().unwrap_or_default(),
            "has_more": page.has_next,
        }))
    }

    fn detail(&self, o: &ChannelOrder) -> Vec<u8> {
        json_bytes(&json!({"errcode": 0, "errmsg": "ok", "order": render(o)}))
    }

    fn has_carrier(&self, code: &str) -> bool {
        super::CARRIERS.iter().any(|(_, c)| *c == code)
    }

    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>) {
        let (code, msg) = match answer {
            ShipAnswer::Shipped => ("0", "ok"),
            ShipAnswer::Repeat => (super::ALREADY_SHIPPED_CODE, "order already delivered"),
            ShipAnswer::Conflict => (super::SHIP_CONFLICT_CODE, "order status not allowed"),
            ShipAnswer::UnknownCarrier => ("47001", "invalid delivery_id"),
            ShipAnswer::SystemError => (super::SYSTEM_ERROR_CODE, "system error"),
        };
        (
            200,
            json_bytes(&json!({"errcode": code.parse::<i64>().unwrap_or(-1), "errmsg": msg})),
        )
    }

    fn stock(&self, _updates: &[crate::StockUpdate]) -> Vec<u8> {
        json_bytes(&json!({"errcode": 0, "errmsg": "ok"}))
    }

    fn token(&self, g: &crate::sim::SimGrant) -> Vec<u8> {
        json_bytes(&json!({"access_token": g.access_token, "expires_in": g.expires_in}))
    }

    fn error(&self, err: &SimErr) -> (u16, Vec<u8>) {
        let (code, msg) = match err {
            SimErr::Auth => (40001, "invalid credential".to_string()),
            SimErr::TokenExpired => (42001, "access_token expired rid: sim".to_string()),
            // The client credential has no refresh token to refuse; a wrong AppSecret is `Auth`.
            SimErr::RefreshRefused => (40001, "invalid credential".to_string()),
            SimErr::Throttled => (45011, "api minute-quota reach limit".to_string()),
            SimErr::BadRequest(m) => (47001, m.clone()),
            SimErr::NotFound => (100002, "order not found".to_string()),
        };
        (200, json_bytes(&json!({"errcode": code, "errmsg": msg})))
    }

    fn push(&self, o: &ChannelOrder, creds: &ShopCredentials, now: DateTime<Utc>) -> SignedPush {
        let event = match o.canonical {
            CanonicalStatus::PendingPayment => "channels_ec_order_new",
            CanonicalStatus::Paid => "channels_ec_order_pay",
            CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => {
                "channels_ec_order_deliver"
            }
            CanonicalStatus::Delivered | CanonicalStatus::Completed => "channels_ec_order_confirm",
            CanonicalStatus::Cancelled => "channels_ec_order_cancel",
        };
        let ts = now.timestamp().to_string();
        let nonce = format!("{}", o.modified_at.timestamp() % 1_000_000);
        let body = json_bytes(&json!({
            "ToUserName": "gh_sim", "FromUserName": o.buyer.id, "CreateTime": now.timestamp(),
            "MsgType": "event", "Event": event,
            "order_info": {"order_id": o.external_order_id.parse::<u64>().unwrap_or(0)},
        }));
        let mut query = vec![
            ("signature".into(), signature(&[&creds.secret, &ts, &nonce])),
            ("timestamp".into(), ts.clone()),
            ("nonce".into(), nonce.clone()),
        ];
        // A shop with an EncodingAESKey gets safe-mode pushes: the message encrypted, signed
        // once more over the ciphertext (msg_signature).
        let body = match super::safe_mode_key(creds) {
            Some(_) => match super::encrypt_safe_mode(&body, creds, sha1_16(&body)) {
                Ok(enc) => {
                    query.push(("encrypt_type".into(), "aes".into()));
                    query.push((
                        "msg_signature".into(),
                        signature(&[&creds.secret, &ts, &nonce, &enc]),
                    ));
                    json_bytes(&json!({"ToUserName": "gh_sim", "Encrypt": enc}))
                }
                Err(_) => body,
            },
            None => body,
        };
        SignedPush {
            query,
            headers: Vec::new(),
            content_type: "application/json",
            body,
        }
    }

    fn status_code(&self, c: CanonicalStatus) -> &str {
        match c {
            CanonicalStatus::PendingPayment => OrderStatus::WaitPay,
            CanonicalStatus::Paid => OrderStatus::WaitShip,
            CanonicalStatus::PartlyShipped => OrderStatus::PartlyShipped,
            CanonicalStatus::Shipped | CanonicalStatus::Delivered => OrderStatus::WaitReceive,
            CanonicalStatus::Completed => OrderStatus::Completed,
            CanonicalStatus::Cancelled => OrderStatus::CancelledUnpaid,
        }
        .code()
    }

    fn order_id(&self, serial: u64) -> String {
        format!("{}", 3_705_115_058_000_000_000u64 + serial)
    }

    fn cursor_paged(&self) -> bool {
        true
    }

    /// Line ids as the adapter reads them back: `product_id:sku_id` (the generated line id
    /// becomes the product id).
    fn normalise(&self, o: &mut ChannelOrder) {
        for l in &mut o.lines {
            if !l.external_line_id.contains(':') {
                let sku = l.platform_sku_id.clone().unwrap_or_else(|| l.sku.clone());
                l.external_line_id = format!("{}:{sku}", l.external_line_id);
            }
        }
    }

    fn refund_code(&self, state: RefundState) -> &'static str {
        match state {
            RefundState::None => "",
            RefundState::Requested => AftersaleStatus::MerchantProcessing.code(),
            RefundState::Refunded => AftersaleStatus::MerchantRefundSuccess.code(),
            RefundState::Rejected => AftersaleStatus::MerchantRejectRefund.code(),
        }
    }

    /// `getaftersaleorder`'s answer: every simulated after-sale is a refund-only one (`REFUND`).
    fn refund(&self, r: &ChannelRefund) -> Vec<u8> {
        let (product, sku) = r
            .external_line_id
            .as_deref()
            .and_then(|l| l.split_once(':'))
            .unwrap_or_default();
        let at = r.version.unwrap_or(0) / 1000;
        json_bytes(&json!({
            "errcode": 0, "errmsg": "ok",
            "after_sale_order": {
                "after_sale_order_id": r.refund_id,
                "status": r.raw_status,
                "order_id": r.external_order_id,
                "product_info": {"product_id": product, "sku_id": sku, "count": 1},
                "type": refund::TYPE_REFUND,
                "create_time": at,
                "update_time": at,
            },
        }))
    }

    /// `rejectreason/get`'s answer (WxJava `AfterSaleRejectReasonResponse`).
    fn refusal_reasons(&self, _r: Option<&crate::ChannelRefund>) -> Vec<u8> {
        let list: Vec<Value> = SIM_REJECT_REASONS
            .iter()
            .map(|(t, text)| {
                json!({"reject_reason_type": t, "reject_reason_type_text": text,
                    "reject_reason": text, "reject_scene": 1})
            })
            .collect();
        json_bytes(&json!({"errcode": 0, "errmsg": "ok", "reject_reason_list": list}))
    }

    fn refund_decided(&self, _agree: bool) -> Vec<u8> {
        json_bytes(&json!({"errcode": 0, "errmsg": "ok"}))
    }
}

/// 16 bytes that vary with the message (the simulator's stand-in for WeChat's random prefix, so
/// the same order pushes the same ciphertext and tests replay).
fn sha1_16(data: &[u8]) -> [u8; 16] {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(data);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

//! Kuaishou's side of the wire, for the simulator.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{
    AUTH_RESULT, DETAIL_METHOD, LIST_METHOD, NO_MORE, OrderStatus, THROTTLE_RESULT, api_sign,
    encrypt_push, path,
};
use crate::sim::{
    Page, RawRequest, ShipAnswer, SignedPush, SimCall, SimErr, SimFault, SimWire, param,
};
use crate::wire::{json_bytes, yuan_to_fen};
use crate::{Amounts, CanonicalStatus, ChannelOrder, RefundDecision, RefundState, ShopCredentials};

use super::refund as kr;

pub(crate) struct KuaishouWire;

/// The refund amount (fen) the simulator shows for a refund: its refunds carry no amount, so a
/// stand-in derived from the id, which the agreement's `refundAmount` must equal (Kuaishou checks
/// it against the refund's).
fn refund_fee(refund_id: &str) -> i64 {
    100 + (refund_id.parse::<u64>().unwrap_or(0) % 9_900) as i64
}

/// The reasons `open.refund.reject.reason` lists for every simulated refund: (`code`, `desc`,
/// `requiredRejectDesc`, `requiredRejectImage`).
const SIM_REJECT_REASONS: [(i64, &str, bool, bool); 4] = [
    (101, "买家已签收，商品无质量问题", false, true),
    (102, "商品已发出，请买家拒收后申请", true, true),
    (103, "已与买家协商一致", false, false),
    (199, "其他", true, false),
];

/// `open.refund.reject` as Kuaishou checks it: a `reasonCode` the list offers, `rejectDesc` /
/// `rejectImages` where that code requires them, a numeric `refundVersion`.
fn reject_call(refund_id: String, biz: &Value) -> Result<SimCall, SimFault> {
    let code = biz.get("reasonCode").and_then(Value::as_i64);
    let Some((code, _, need_desc, need_image)) =
        SIM_REJECT_REASONS.iter().find(|r| Some(r.0) == code)
    else {
        return Err(SimFault::BadRequest("reasonCode 不合法".into()));
    };
    let desc = biz
        .get("rejectDesc")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let images = biz
        .get("rejectImages")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if (*need_desc && desc.is_empty()) || (*need_image && !images) {
        return Err(SimFault::BadRequest("拒绝描述或图片不能为空".into()));
    }
    let Some(version) = biz.get("refundVersion").and_then(Value::as_i64) else {
        return Err(SimFault::BadRequest("refundVersion 不能为空".into()));
    };
    Ok(SimCall::CodedRefusal {
        refund_id,
        reason: desc.to_owned(),
        code: code.to_string(),
        version: Some(version),
    })
}

/// The refund calls: the read, the agreement to a refund-only application (the simulator's
/// refunds are all refund-only, status 10; the return approval is not served), the refusal
/// reasons and the refusal.
fn refund_call(method: &str, biz: &Value) -> Option<Result<SimCall, SimFault>> {
    if ![
        kr::DETAIL_METHOD,
        kr::APPROVE_METHOD,
        kr::REJECT_REASONS_METHOD,
        kr::REJECT_METHOD,
    ]
    .contains(&method)
    {
        return None;
    }
    let refund_id = match biz.get("refundId").and_then(Value::as_u64) {
        Some(id) => id.to_string(),
        None => return Some(Err(SimFault::BadRequest("refundId 不能为空".into()))),
    };
    match method {
        kr::DETAIL_METHOD => return Some(Ok(SimCall::RefundGet { refund_id })),
        kr::REJECT_REASONS_METHOD => {
            let refund_id = Some(refund_id);
            return Some(Ok(SimCall::RefusalReasons { refund_id }));
        }
        kr::REJECT_METHOD => return Some(reject_call(refund_id, biz)),
        _ => {}
    }
    if biz.get("refundAmount").and_then(Value::as_i64) != Some(refund_fee(&refund_id)) {
        return Some(Err(SimFault::BadRequest(
            "refundAmount 与退款单金额不一致".into(),
        )));
    }
    if biz.get("status").is_some_and(|s| s.as_i64() != Some(10)) {
        return Some(Err(SimFault::BadRequest(
            "status 不是退款单当前状态".into(),
        )));
    }
    Some(Ok(SimCall::RefundDecision {
        refund_id,
        decision: RefundDecision::Agree,
        version: None,
    }))
}

fn num_id(s: &str) -> Value {
    s.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(s))
}

pub(crate) fn render(o: &ChannelOrder) -> Value {
    let r = &o.receiver;
    let l = &o.lines[0];
    let ms =
        |t: Option<DateTime<chrono::FixedOffset>>| t.map(|t| t.timestamp_millis()).unwrap_or(0);
    json!({
        "orderBaseInfo": {
            "oid": num_id(&o.external_order_id),
            "status": o.channel_status.parse::<i64>().unwrap_or(0),
            "buyerOpenId": o.buyer.id,
            "buyerNick": o.buyer.nick,
            "sellerOpenId": "f1a2b3c4d5e6",
            "sellerNick": "模拟快手小店",
            "totalFee": yuan_to_fen(o.amounts.paid),
            "expressFee": yuan_to_fen(o.amounts.shipping_fee),
            "discountFee": yuan_to_fen(o.amounts.discount),
            "payTime": ms(o.paid_at),
            "createTime": o.created_at.timestamp_millis(),
            "updateTime": o.modified_at.timestamp_millis(),
            "remark": o.buyer_message.clone().unwrap_or_default(),
            "preSale": 0,
            "riskCode": 0,
        },
        "orderItemInfo": {
            "skuId": l.platform_sku_id.as_deref().map(num_id),
            "skuNick": l.sku,
            "itemId": 22_000_000_000u64,
            "itemTitle": l.title,
            "num": l.quantity,
            "originalPrice": yuan_to_fen(l.unit_price),
            "price": yuan_to_fen(l.unit_price),
            "discountFee": yuan_to_fen(l.discount),
            "orderItemId": num_id(&l.external_line_id),
        },
        // Newest first; the simulator opens at most one refund per order.
        "orderRefundList": l.refund_id.iter().filter(|_| l.refund != RefundState::None).map(|id| json!({
            "refundId": num_id(id),
            "refundStatus": l.refund_raw.as_deref().and_then(|c| c.parse::<i64>().ok()),
        })).collect::<Vec<_>>(),
        "orderAddress": {
            "consignee": r.name.expose(),
            "mobile": r.phone.expose(),
            "province": r.province,
            "city": r.city,
            "district": r.district,
            "address": r.detail.expose(),
        },
        "orderNote": {"sellerNote": o.seller_memo.iter().collect::<Vec<_>>()},
    })
}

fn ok(data: Value) -> Vec<u8> {
    json_bytes(&json!({"result": 1, "code": "1", "msg": "success", "data": data}))
}

impl SimWire for KuaishouWire {
    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
        let mut p = req.query_pairs();
        p.extend(crate::wire::form_decode(&req.body));
        if req.path == super::TOKEN_CREATE_PATH {
            if param(&p, "app_id") != creds.app_key || param(&p, "app_secret") != creds.app_secret {
                return Err(SimFault::Auth);
            }
            if param(&p, "grant_type") != "code" {
                return Err(SimFault::BadRequest("grant_type".into()));
            }
            return Ok(SimCall::CodeToken {
                code: param(&p, "code").to_string(),
            });
        }
        if req.path == super::TOKEN_PATH {
            if param(&p, "app_id") != creds.app_key || param(&p, "app_secret") != creds.app_secret {
                return Err(SimFault::Auth);
            }
            return Ok(SimCall::Token {
                refresh: Some(param(&p, "refresh_token").to_string()),
            });
        }
        let method = param(&p, "method");
        if req.path != path(method) {
            return Err(SimFault::BadRequest(
                "the path does not match method".into(),
            ));
        }
        let given = param(&p, "sign").to_string();
        if param(&p, "appkey") != creds.app_key
            || !crate::sign::constant_time_eq(
                api_sign(&p, &creds.secret).as_bytes(),
                given.as_bytes(),
            )
            || creds.access_token.is_empty()
            || param(&p, "access_token") != creds.access_token
        {
            return Err(SimFault::Auth);
        }
        let biz: Value = serde_json::from_str(param(&p, "param"))
            .map_err(|_| SimFault::BadRequest("param is not JSON".into()))?;
        let int = |k: &str| biz.get(k).and_then(Value::as_i64).unwrap_or(0);
        match method {
            LIST_METHOD => Ok(SimCall::List {
                from: DateTime::from_timestamp_millis(int("beginTime")).unwrap_or_default(),
                to: DateTime::from_timestamp_millis(int("endTime")).unwrap_or_default(),
                page: 1,
                page_size: u32::try_from(int("pageSize")).unwrap_or(20),
                cursor: biz
                    .get("cursor")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
            DETAIL_METHOD => Ok(SimCall::Detail {
                id: biz
                    .get("oid")
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .unwrap_or_default(),
            }),
            super::SHIP_METHOD => {
                let s = |k: &str| match biz.get(k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                Ok(SimCall::Ship {
                    id: s("orderId"),
                    carrier: s("expressCode"),
                    tracking_no: s("expressNo"),
                    line_ids: None,
                })
            }
            m => refund_call(m, &biz)
                .unwrap_or_else(|| Err(SimFault::BadRequest("unknown method".into()))),
        }
    }

    /// `status` of the detail's `orderRefundList` and of the refund read: 10 买家仅退款申请,
    /// 60 退款成功, 70 退款失败.
    fn refund_code(&self, s: RefundState) -> &'static str {
        match s {
            RefundState::None | RefundState::Requested => kr::REFUND_ONLY_APPLIED,
            RefundState::Refunded => super::RefundStatus::Refunded.code(),
            RefundState::Rejected => super::RefundStatus::RefundFailed.code(),
        }
    }

    /// `open.seller.order.refund.detail`'s `data` in the declaration's field names.
    fn refund(&self, r: &crate::ChannelRefund) -> Vec<u8> {
        ok(json!({
            "refundId": num_id(&r.refund_id),
            "oid": num_id(&r.external_order_id),
            "refundFee": refund_fee(&r.refund_id),
            "status": r.raw_status.parse::<i64>().unwrap_or(0),
            "refundType": 1,
            "handlingWay": 10,
            "negotiateStatus": 1,
            "updateTime": r.version,
        }))
    }

    fn refund_decided(&self, _agree: bool) -> Vec<u8> {
        json_bytes(&json!({"result": 1, "code": "1", "msg": "success"}))
    }

    /// `open.refund.reject.reason`'s `data` (`MerchantRefundRejectReasonView`).
    fn refusal_reasons(&self, _r: Option<&crate::ChannelRefund>) -> Vec<u8> {
        ok(Value::Array(
            SIM_REJECT_REASONS
                .iter()
                .map(|(code, desc, need_desc, need_image)| {
                    json!({"code": code, "desc": desc, "tip": "",
                        "requiredRejectDesc": need_desc, "requiredRejectImage": need_image})
                })
                .collect(),
        ))
    }

    fn list(&self, page: &Page<'_>) -> Vec<u8> {
        ok(json!({
            "pageSize": page.page_size,
            "cursor": page.next_cursor.clone().unwrap_or_else(|| NO_MORE.to_string()),
            "orderList": page.orders.iter().map(render).collect::<Vec<_>>(),
        }))
    }

    fn detail(&self, o: &ChannelOrder) -> Vec<u8> {
        ok(render(o))
    }

    fn has_carrier(&self, code: &str) -> bool {
        super::CARRIERS.iter().any(|(_, c)| *c == code)
    }

    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>) {
        let fail = |result: &str, msg: &str| {
            (
                200,
                json_bytes(&json!({
                    "result": result.parse::<i64>().unwrap_or(0),
                    "error_msg": msg, "code": result, "msg": msg,
                })),
            )
        };
        match answer {
            // Kuaishou answers a repeat with the same tracking number as a success.
            ShipAnswer::Shipped | ShipAnswer::Repeat => (
                200,
                json_bytes(&json!({"result": 1, "code": "1", "msg": "success", "data": {}})),
            ),
            ShipAnswer::Conflict => fail(super::SHIP_CONFLICT_RESULT, "订单状态不允许发货"),
            ShipAnswer::UnknownCarrier => fail("12", "快递公司编码不存在"),
            ShipAnswer::SystemError => fail(super::SYSTEM_ERROR_RESULT, "系统繁忙，请稍后重试"),
        }
    }

    fn token(&self, g: &crate::sim::SimGrant) -> Vec<u8> {
        json_bytes(&json!({
            "result": 1, "access_token": g.access_token, "expires_in": g.expires_in,
            "refresh_token": g.refresh_token, "refresh_token_expires_in": g.refresh_expires_in,
            "scopes": ["merchant_order", "merchant_item"],
        }))
    }

    fn error(&self, err: &SimErr) -> (u16, Vec<u8>) {
        let (result, msg) = match err {
            SimErr::RefreshRefused => {
                return (
                    200,
                    json_bytes(&json!({
                        "result": super::REFRESH_REFUSED_RESULT.parse::<i64>().unwrap_or(0),
                        "error": "access_denied", "error_msg": "refreshToken.discarded",
                    })),
                );
            }
            // As a real answer quoted in public caller code.
            SimErr::TokenExpired => {
                return (
                    200,
                    json_bytes(&json!({
                        "result": AUTH_RESULT.parse::<i64>().unwrap_or(0),
                        "code": "803000", "msg": "鉴权失败", "error_msg": "TOKEN过期",
                        "sub_code": AUTH_RESULT, "sub_msg": "TOKEN过期",
                    })),
                );
            }
            SimErr::Auth => (
                AUTH_RESULT.to_string(),
                "access_token无效或签名错误".to_string(),
            ),
            // The FAQ's K1008 message.
            SimErr::Throttled => (
                THROTTLE_RESULT.to_string(),
                "Exceed qps limit, KEY [apiId:open.order.cursor.list;appkey:sim], MAX_QPS [300.0]"
                    .to_string(),
            ),
            SimErr::BadRequest(m) => ("12".into(), m.clone()),
            SimErr::NotFound => ("40".into(), "订单不存在".into()),
        };
        (
            200,
            json_bytes(&json!({
                "result": result.parse::<i64>().unwrap_or(0),
                "error_msg": msg,
                "code": result,
                "msg": msg,
            })),
        )
    }

    fn push(&self, o: &ChannelOrder, creds: &ShopCredentials, now: DateTime<Utc>) -> SignedPush {
        let event = match o.canonical {
            CanonicalStatus::PendingPayment => "kwaishop_order_addOrder",
            CanonicalStatus::Paid => "kwaishop_order_paySuccess",
            CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => {
                "kwaishop_order_deliverySuccess"
            }
            CanonicalStatus::Delivered | CanonicalStatus::Completed => {
                "kwaishop_order_orderSuccess"
            }
            CanonicalStatus::Cancelled => "kwaishop_order_orderFail",
        };
        let plain = json!({
            "eventId": format!("{}-{}", o.external_order_id, o.modified_at.timestamp_millis()),
            "bizId": num_id(&o.external_order_id),
            "userId": 77977,
            "openId": "f1a2b3c4d5e6",
            "appKey": creds.app_key,
            "event": event,
            "info": json!({
                "oid": num_id(&o.external_order_id),
                "status": o.channel_status.parse::<i64>().unwrap_or(0),
                "updateTime": o.modified_at.timestamp_millis(),
            }).to_string(),
            "createTime": now.timestamp_millis(),
            "test": false,
        })
        .to_string();
        SignedPush {
            query: Vec::new(),
            headers: Vec::new(),
            content_type: "text/plain;charset=utf-8",
            // A key that is not an AES key sends what cannot be decrypted.
            body: encrypt_push(plain.as_bytes(), creds)
                .unwrap_or_else(|_| b"not-encrypted".to_vec()),
        }
    }

    fn status_code(&self, c: CanonicalStatus) -> &str {
        match c {
            CanonicalStatus::PendingPayment => OrderStatus::WaitPay,
            CanonicalStatus::Paid => OrderStatus::Paid,
            CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => OrderStatus::Shipped,
            CanonicalStatus::Delivered => OrderStatus::Signed,
            CanonicalStatus::Completed => OrderStatus::Success,
            CanonicalStatus::Cancelled => OrderStatus::Failed,
        }
        .code()
    }

    /// One SKU per Kuaishou order: keep the first line and recompute the amounts.
    fn normalise(&self, o: &mut ChannelOrder) {
        o.lines.truncate(1);
        if o.canonical == CanonicalStatus::PartlyShipped {
            o.canonical = CanonicalStatus::Shipped;
        }
        o.channel_status = self.status_code(o.canonical).to_string();
        let goods_total: Decimal = o
            .lines
            .iter()
            .map(|l| l.unit_price * Decimal::from(l.quantity))
            .sum();
        let discount: Decimal = o.lines.iter().map(|l| l.discount).sum();
        let shipping_fee = o.amounts.shipping_fee;
        o.amounts = Amounts {
            goods_total,
            shipping_fee,
            discount,
            paid: goods_total + shipping_fee - discount,
        };
    }

    fn cursor_paged(&self) -> bool {
        true
    }

    fn order_id(&self, serial: u64) -> String {
        format!("{}", 2_411_110_000_000_000u64 + serial)
    }
}

//! Douyin's side of the wire, for the simulator.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::refund;
use super::{
    ALREADY_SHIPPED_SUB_CODE, CARRIERS, DETAIL_METHOD, LIST_METHOD, OrderStatus,
    SHIP_CONFLICT_SUB_CODE, SHIP_METHOD, SYSTEM_ERROR_SUB_CODE, THROTTLE_SUB_CODE, api_sign,
    push_sign,
};
use crate::sim::{
    Page, RawRequest, ShipAnswer, SignedPush, SimCall, SimErr, SimFault, SimWire, param as get,
};
use crate::wire::{json_bytes, yuan_to_fen};
use crate::{
    CanonicalStatus, ChannelOrder, ChannelRefund, RefundDecision, RefundState, ShopCredentials,
};

pub(crate) struct DouyinWire;

pub(crate) fn render(o: &ChannelOrder) -> Value {
    let r = &o.receiver;
    json!({
        "order_id": o.external_order_id,
        "shop_id": o.channel_shop_id.as_deref().unwrap_or("0").parse::<i64>().unwrap_or(0),
        "order_status": o.channel_status.parse::<i64>().unwrap_or(0),
        "create_time": o.created_at.timestamp(),
        "update_time": o.modified_at.timestamp(),
        "pay_time": o.paid_at.map(|t| t.timestamp()).unwrap_or(0),
        "order_amount": yuan_to_fen(o.amounts.paid),
        "pay_amount": yuan_to_fen(o.amounts.paid),
        "post_amount": yuan_to_fen(o.amounts.shipping_fee),
        "promotion_amount": yuan_to_fen(o.amounts.discount),
        "buyer_words": o.buyer_message.clone().unwrap_or_default(),
        "seller_words": o.seller_memo.clone().unwrap_or_default(),
        "doudian_open_id": o.buyer.id,
        "encrypt_post_receiver": r.name.expose(),
        "encrypt_post_tel": r.phone.expose(),
        "post_addr": {
            "province": {"id": "330000", "name": r.province},
            "city": {"id": "330100", "name": r.city},
            "town": {"id": "330106", "name": r.district},
            "street": {"id": "330106001", "name": r.town},
            "encrypt_detail": r.detail.expose(),
        },
        "sku_order_list": o.lines.iter().map(|l| json!({
            "order_id": l.external_line_id,
            "parent_order_id": o.external_order_id,
            "sku_id": l.platform_sku_id.as_deref().unwrap_or("0").parse::<i64>().unwrap_or(0),
            "out_sku_id": l.sku,
            "product_name": l.title,
            "item_num": l.quantity,
            "origin_amount": yuan_to_fen(l.unit_price),
            "sum_amount": yuan_to_fen(l.unit_price * rust_decimal::Decimal::from(l.quantity)),
            "pay_amount": yuan_to_fen(l.paid_amount),
            "after_sale_info": {
                "after_sale_status": l.refund_raw.as_deref().unwrap_or("0").parse::<i64>().unwrap_or(0),
                "after_sale_type": if l.refund_raw.is_some() { SIM_AFTERSALE_TYPE } else { 0 },
                "refund_status": 0,
            },
        })).collect::<Vec<_>>(),
    })
}

/// Every simulated after-sale is a refund-only one (`aftersale_type` 1, 售后仅退款).
const SIM_AFTERSALE_TYPE: i64 = 1;

/// The reasons `afterSale/rejectReasonCodeList` offers for every simulated after-sale:
/// (`reject_reason_code`, `reason`, `evidence_need`).
const SIM_REJECT_REASONS: [(i64, &str, &str); 4] = [
    (1, "买家已签收商品，请退货退款", "Y"),
    (2, "商品已影响二次销售", "Y"),
    (3, "已与买家协商一致", "N"),
    (4, "其他", "N"),
];

/// A refusal's `reject_reason_code`: one of the list's, and one needing evidence only with
/// `evidence` sent.
fn reject_code(item: &Value) -> Result<String, SimFault> {
    let code = item.get("reject_reason_code").and_then(Value::as_i64);
    let Some((code, _, need)) = SIM_REJECT_REASONS.iter().find(|r| Some(r.0) == code) else {
        return Err(SimFault::BadRequest(
            "reject_reason_code is not one of afterSale/rejectReasonCodeList's".into(),
        ));
    };
    let evidence = item
        .get("evidence")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    if *need == "Y" && !evidence {
        return Err(SimFault::BadRequest(
            "evidence is required for this reject_reason_code".into(),
        ));
    }
    Ok(code.to_string())
}

/// An id the after-sale calls name: a string of digits (the SDK types them string).
fn digits(p: &Value, k: &str) -> Result<String, SimFault> {
    match p.get(k) {
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(s.clone())
        }
        _ => Err(SimFault::BadRequest(format!(
            "{k} must be an id (a string of digits)"
        ))),
    }
}

/// `afterSale.operate` as Douyin checks it: a known `type`; `items` 1–20, each with its
/// `aftersale_id`; a refusal's `reason`, `remark` and `reject_reason_code`; a first agreement to
/// a return (101) its `logistics.receiver_address_id`; `update_time` (where given) is the version
/// the decision names.
fn operate_call(p: &Value) -> Result<SimCall, SimFault> {
    let ty = p.get("type").and_then(Value::as_i64).unwrap_or(0);
    let items = p.get("items").and_then(Value::as_array).map(Vec::as_slice);
    let item = match items {
        Some([one]) => one,
        Some(many) if (2..=20).contains(&many.len()) => {
            return Err(SimFault::BadRequest(
                "the simulator takes one after-sale per call".into(),
            ));
        }
        _ => return Err(SimFault::BadRequest("items: 1 to 20 after-sales".into())),
    };
    let refund_id = digits(item, "aftersale_id")?;
    let s = |k: &str| {
        item.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let decision = match ty {
        refund::AGREE_REFUND | refund::AGREE_PRESALE_REFUND | refund::AGREE_RETURN => {
            RefundDecision::Agree
        }
        refund::AGREE_RETURN_APPLY => {
            if item.pointer("/logistics/receiver_address_id").is_none() {
                return Err(SimFault::BadRequest(
                    "logistics.receiver_address_id is required for type 101".into(),
                ));
            }
            RefundDecision::Agree
        }
        t if refund::REFUSE_TYPES.contains(&t) => {
            if s("reason").is_empty()
                || s("remark").is_empty()
                || !item.get("reject_reason_code").is_some_and(Value::is_i64)
            {
                return Err(SimFault::BadRequest(
                    "a refusal needs reason, remark and reject_reason_code".into(),
                ));
            }
            return Ok(SimCall::CodedRefusal {
                refund_id,
                reason: s("remark"),
                code: reject_code(item)?,
                version: version(item)?,
            });
        }
        _ => return Err(SimFault::BadRequest("unknown type".into())),
    };
    Ok(SimCall::RefundDecision {
        refund_id,
        decision,
        version: version(item)?,
    })
}

/// The item's `update_time` (seconds), as the refund's version (milliseconds).
fn version(item: &Value) -> Result<Option<i64>, SimFault> {
    match item.get("update_time") {
        None => Ok(None),
        Some(v) => Ok(Some(
            v.as_i64()
                .ok_or_else(|| SimFault::BadRequest("update_time must be Unix seconds".into()))?
                * 1000,
        )),
    }
}

/// One after-sale as `afterSale.List` and `afterSale.Detail` name it.
fn aftersale_status(r: &ChannelRefund) -> i64 {
    r.raw_status.parse::<i64>().unwrap_or(0)
}

fn fail(code: i64, sub: &str, msg: &str) -> (u16, Vec<u8>) {
    (
        200,
        json_bytes(
            &json!({"err_no": code, "message": msg, "code": code, "msg": msg,
            "sub_code": sub, "sub_msg": msg, "data": null}),
        ),
    )
}

fn ok(data: Value) -> Vec<u8> {
    json_bytes(&json!({
        "err_no": 0, "message": "success", "code": 10000, "msg": "success",
        "sub_code": "", "sub_msg": "", "data": data,
    }))
}

/// The token calls (signed, no access token): the code exchange or the refresh.
fn token_call(method: &str, p: &Value) -> Result<SimCall, SimFault> {
    let create = method == super::TOKEN_CREATE_METHOD;
    let grant = if create {
        "authorization_code"
    } else {
        "refresh_token"
    };
    if p.get("grant_type").and_then(Value::as_str) != Some(grant) {
        return Err(SimFault::BadRequest("grant_type".into()));
    }
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(if create {
        SimCall::CodeToken { code: text("code") }
    } else {
        SimCall::Token {
            refresh: Some(text("refresh_token")),
        }
    })
}

impl SimWire for DouyinWire {
    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
        let q = req.query_pairs();
        let method = get(&q, "method");
        if req.path != format!("/{}", method.replace('.', "/")) {
            return Err(SimFault::BadRequest(
                "the path does not match method".into(),
            ));
        }
        let param_json = std::str::from_utf8(&req.body)
            .map_err(|_| SimFault::BadRequest("param_json is not UTF-8".into()))?;
        let expected = api_sign(
            get(&q, "app_key"),
            method,
            param_json,
            get(&q, "timestamp"),
            get(&q, "v"),
            &creds.secret,
        );
        if get(&q, "app_key") != creds.app_key || !crate::sign::hex_eq(&expected, get(&q, "sign")) {
            return Err(SimFault::Auth);
        }
        let p: Value = serde_json::from_str(param_json)
            .map_err(|_| SimFault::BadRequest("param_json is not JSON".into()))?;
        if method == super::TOKEN_CREATE_METHOD || method == super::TOKEN_METHOD {
            return token_call(method, &p);
        }
        if creds.access_token.is_empty() || get(&q, "access_token") != creds.access_token {
            return Err(SimFault::Auth);
        }
        let int = |k: &str| p.get(k).and_then(Value::as_i64).unwrap_or(0);
        match method {
            LIST_METHOD => Ok(SimCall::List {
                from: DateTime::from_timestamp(int("update_time_start"), 0).unwrap_or_default(),
                to: DateTime::from_timestamp(int("update_time_end"), 0).unwrap_or_default(),
                page: u32::try_from(int("page") + 1).unwrap_or(1),
                page_size: u32::try_from(int("size")).unwrap_or(20),
                cursor: None,
            }),
            DETAIL_METHOD => Ok(SimCall::Detail {
                id: p
                    .get("shop_order_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }),
            SHIP_METHOD => {
                let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                Ok(SimCall::Ship {
                    id: s("order_id"),
                    carrier: s("company_code"),
                    tracking_no: s("logistics_code"),
                    line_ids: None,
                })
            }
            super::STOCK_METHOD => {
                let id = |k: &str| p.get(k).and_then(Value::as_u64);
                let qty = p
                    .get("stock_num")
                    .and_then(Value::as_i64)
                    .filter(|q| *q >= 0);
                let whole = p.get("incremental").and_then(Value::as_bool) != Some(true);
                match (id("product_id"), id("sku_id"), qty) {
                    (Some(product), Some(sku), Some(quantity)) if whole => Ok(SimCall::Stock {
                        updates: vec![crate::StockUpdate {
                            item_id: product.to_string(),
                            sku_id: sku.to_string(),
                            quantity,
                        }],
                    }),
                    _ => Err(SimFault::BadRequest(
                        "product_id, sku_id, stock_num, incremental false".into(),
                    )),
                }
            }
            refund::LIST_METHOD => Ok(SimCall::OrderRefunds {
                order_id: digits(&p, "order_id")?,
            }),
            refund::DETAIL_METHOD => Ok(SimCall::RefundGet {
                refund_id: digits(&p, "after_sale_id")?,
            }),
            refund::OPERATE_METHOD => operate_call(&p),
            refund::REJECT_REASONS_METHOD => match p.get("aftersale_id").and_then(Value::as_u64) {
                Some(id) => Ok(SimCall::RefusalReasons {
                    refund_id: Some(id.to_string()),
                }),
                None => Err(SimFault::BadRequest("aftersale_id must be a number".into())),
            },
            _ => Err(SimFault::BadRequest("unknown method".into())),
        }
    }

    fn refund_code(&self, state: RefundState) -> &'static str {
        use super::AfterSaleStatus as S;
        match state {
            RefundState::None => S::NoAfterSale,
            RefundState::Requested => S::WaitSellerAgree,
            RefundState::Refunded => S::Success,
            RefundState::Rejected => S::SellerRefusedOnce,
        }
        .code()
    }

    /// `afterSale.Detail`'s answer (the fudiwei SDK's `AftersaleDetailResponse` fields).
    fn refund(&self, r: &ChannelRefund) -> Vec<u8> {
        let at = r.version.unwrap_or(0) / 1000;
        ok(json!({
            "process_info": {"after_sale_info": {
                "after_sale_id": r.refund_id,
                "after_sale_status": aftersale_status(r),
                "after_sale_type": SIM_AFTERSALE_TYPE,
                "refund_status": 1,
                "apply_time": at, "create_time": at, "update_time": at,
            }},
            "order_info": {
                "shop_order_id": r.external_order_id,
                "sku_order_infos": r.external_line_id.iter()
                    .map(|l| json!({"sku_order_id": l, "after_sale_item_count": 1}))
                    .collect::<Vec<_>>(),
            },
        }))
    }

    /// `afterSale.List`'s answer (the SDK sample's shape: ids as strings).
    fn order_refunds(&self, order_id: &str, refunds: &[ChannelRefund]) -> Vec<u8> {
        let items: Vec<Value> = refunds
            .iter()
            .map(|r| {
                json!({
                    "aftersale_info": {
                        "aftersale_id": r.refund_id,
                        "aftersale_status": aftersale_status(r),
                        "aftersale_type": SIM_AFTERSALE_TYPE,
                        "update_time": r.version.unwrap_or(0) / 1000,
                    },
                    "order_info": {
                        "shop_order_id": order_id,
                        "related_order_info": r.external_line_id.iter()
                            .map(|l| json!({"sku_order_id": l})).collect::<Vec<_>>(),
                    },
                })
            })
            .collect();
        ok(json!({
            "items": items, "has_more": false, "page": 0,
            "size": refund::LIST_SIZE, "total": refunds.len(),
        }))
    }

    /// `afterSale/rejectReasonCodeList`'s answer (the doudian SDK's `ItemsItem` fields).
    fn refusal_reasons(&self, _r: Option<&ChannelRefund>) -> Vec<u8> {
        let items: Vec<Value> = SIM_REJECT_REASONS
            .iter()
            .map(|(code, reason, need)| {
                json!({
                    "reject_reason_code": code, "reason": reason, "evidence_need": need,
                    "evidence_description": if *need == "Y" { "请上传凭证" } else { "" },
                    "image": "", "order_type": -1, "pkg": -1,
                })
            })
            .collect();
        ok(json!({ "items": items }))
    }

    fn refund_decided(&self, _agree: bool) -> Vec<u8> {
        ok(json!({"items": [{"status_code": 0, "status_msg": "success"}]}))
    }

    fn stock(&self, _updates: &[crate::StockUpdate]) -> Vec<u8> {
        ok(json!({}))
    }

    fn has_carrier(&self, code: &str) -> bool {
        CARRIERS.iter().any(|(_, c)| *c == code)
    }

    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>) {
        match answer {
            ShipAnswer::Shipped => (200, ok(json!({}))),
            ShipAnswer::Repeat => fail(50002, ALREADY_SHIPPED_SUB_CODE, "订单已发货"),
            ShipAnswer::Conflict => fail(50002, SHIP_CONFLICT_SUB_CODE, "订单状态不允许发货"),
            ShipAnswer::UnknownCarrier => fail(40003, "isv.parameter-invalid", "物流公司不存在"),
            ShipAnswer::SystemError => fail(20000, SYSTEM_ERROR_SUB_CODE, "系统错误，请稍后重试"),
        }
    }

    fn list(&self, page: &Page<'_>) -> Vec<u8> {
        ok(json!({
            "shop_order_list": page.orders.iter().map(render).collect::<Vec<_>>(),
            "page": page.page - 1,
            "size": page.page_size,
            "total": page.total,
        }))
    }

    fn detail(&self, o: &ChannelOrder) -> Vec<u8> {
        ok(json!({ "shop_order_detail": render(o) }))
    }

    fn code_token(&self, g: &crate::sim::SimGrant, shop_id: &str) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(&self.token(g)).unwrap_or_default();
        v["data"]["shop_id"] = shop_id
            .parse::<i64>()
            .map_or_else(|_| json!(shop_id), |n| json!(n));
        json_bytes(&v)
    }

    fn token(&self, g: &crate::sim::SimGrant) -> Vec<u8> {
        ok(json!({
            "access_token": g.access_token, "expires_in": g.expires_in,
            "refresh_token": g.refresh_token, "scope": "SCOPE", "shop_id": 4463798,
            "shop_name": "模拟店铺", "authority_id": "4463798", "auth_subject_type": "MiniShop",
        }))
    }

    fn error(&self, err: &SimErr) -> (u16, Vec<u8>) {
        let (code, sub, msg) = match err {
            SimErr::Auth => (40004, "isv.signature-invalid", "签名错误".to_string()),
            SimErr::TokenExpired => (
                40003,
                super::TOKEN_EXPIRED_SUB_CODE,
                "access_token已过期".to_string(),
            ),
            SimErr::RefreshRefused => (
                50001,
                super::REFRESH_REFUSED_SUB_CODE,
                "refresh_token已过期".to_string(),
            ),
            SimErr::Throttled => (50002, THROTTLE_SUB_CODE, "请求过于频繁，已限流".to_string()),
            SimErr::BadRequest(m) => (40003, "isv.parameter-invalid", m.clone()),
            SimErr::NotFound => (
                50002,
                "isv.business-failed:order-not-found",
                "订单不存在".to_string(),
            ),
        };
        fail(code, sub, &msg)
    }

    fn push(&self, o: &ChannelOrder, creds: &ShopCredentials, _now: DateTime<Utc>) -> SignedPush {
        let tag = match o.canonical {
            CanonicalStatus::PendingPayment => "100",
            CanonicalStatus::Paid => "101",
            CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => "102",
            CanonicalStatus::Delivered | CanonicalStatus::Completed => "103",
            CanonicalStatus::Cancelled => "106",
        };
        let data = json!({
            "p_id": o.external_order_id.parse::<u64>().unwrap_or(0),
            "s_ids": o.lines.iter().map(|l| l.external_line_id.clone()).collect::<Vec<_>>(),
            "shop_id": 77977,
            "order_status": o.channel_status.parse::<i64>().unwrap_or(0),
            "update_time": o.modified_at.timestamp(),
        });
        let body = json_bytes(&json!([{
            "tag": tag,
            "msg_id": format!("{}::{tag}:{}", o.external_order_id, o.modified_at.timestamp()),
            "data": data.to_string(),
        }]));
        SignedPush {
            query: Vec::new(),
            headers: vec![
                ("app-id".into(), creds.app_key.clone()),
                (
                    "event-sign".into(),
                    push_sign(&creds.app_key, &body, &creds.secret),
                ),
            ],
            content_type: "application/json",
            body,
        }
    }

    fn status_code(&self, c: CanonicalStatus) -> &str {
        let s = match c {
            CanonicalStatus::PendingPayment => OrderStatus::PendingConfirmOrPay,
            CanonicalStatus::Paid => OrderStatus::Stocking,
            CanonicalStatus::PartlyShipped => OrderStatus::PartlyShipped,
            CanonicalStatus::Shipped | CanonicalStatus::Delivered => OrderStatus::Shipped,
            CanonicalStatus::Completed => OrderStatus::Completed,
            CanonicalStatus::Cancelled => OrderStatus::Cancelled,
        };
        s.code()
    }
}

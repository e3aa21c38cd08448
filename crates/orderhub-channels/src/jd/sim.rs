//! JD's side of the wire (JOS router), for the simulator.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{
    AUTH_CODE, GET_METHOD, OrderState, PATH, SEARCH_METHOD, THROTTLE_CODE, api_sign, jos_timestamp,
};
use crate::sim::{
    Page, RawRequest, ShipAnswer, SignedPush, SimCall, SimErr, SimFault, SimWire, param,
};
use crate::wire::{china_time_string, json_bytes};
use crate::{CanonicalStatus, ChannelOrder, RefundDecision, RefundState, ShopCredentials};

pub(crate) struct JdWire;

fn yuan(d: Decimal) -> String {
    format!("{:.2}", d)
}

fn ok_result() -> Value {
    json!({"success": true, "numberCode": 0, "chineseErrCode": "成功", "englishErrCode": "success"})
}

pub(crate) fn render(o: &ChannelOrder) -> Value {
    let r = &o.receiver;
    let a = &o.amounts;
    // A refund apply waiting for the seller locks the order (SOURCES.md § Refund decisions).
    let waiting = o.canonical == CanonicalStatus::Paid
        && o.lines.iter().any(|l| l.refund == RefundState::Requested);
    let state = if waiting {
        OrderState::Locked.code()
    } else {
        o.channel_status.as_str()
    };
    json!({
        "orderId": o.external_order_id,
        "venderId": "10622317",
        "orderType": "22",
        "orderState": state,
        "orderStateRemark": "",
        "orderTotalPrice": yuan(a.goods_total),
        "orderSellerPrice": yuan(a.goods_total - a.discount),
        "orderPayment": yuan(a.paid),
        "freightPrice": yuan(a.shipping_fee),
        "sellerDiscount": yuan(a.discount),
        "orderStartTime": china_time_string(o.created_at),
        "paymentConfirmTime": o.paid_at.map(china_time_string).unwrap_or_else(|| "0001-01-01 00:00:00".into()),
        "modified": china_time_string(o.modified_at),
        "orderEndTime": "0001-01-01 00:00:00",
        "orderRemark": o.buyer_message.clone().unwrap_or_default(),
        "venderRemark": o.seller_memo.clone().unwrap_or_default(),
        "open_id_buyer": o.buyer.id,
        "consigneeInfo": {
            "fullname": r.name.expose(),
            "mobile": r.phone.expose(),
            "telephone": "",
            "fullAddress": r.detail.expose(),
            "province": r.province,
            "city": r.city,
            "county": r.district,
            "town": r.town,
        },
        "itemInfoList": o.lines.iter().map(|l| json!({
            "skuId": l.platform_sku_id,
            "wareId": "100012345678",
            "outerSkuId": l.sku,
            "productNo": "",
            "skuName": l.title,
            "jdPrice": yuan(l.unit_price),
            "itemTotal": l.quantity.to_string(),
            "giftPoint": "0",
        })).collect::<Vec<_>>(),
    })
}

/// A number JOS takes as a `Long` / `Integer`: a JSON number or digits in a string.
fn long(biz: &Value, k: &str) -> Option<u64> {
    match biz.get(k) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `RefundApplyVo` of the simulator's refund: `skuVoList` (queryById) names the line's SKU.
fn apply(r: &crate::ChannelRefund, with_skus: bool) -> Value {
    let mut v = json!({
        "id": r.refund_id.parse::<u64>().unwrap_or(0),
        "buyerId": "sim-buyer",
        "applyTime": "2024-11-11 10:00:00",
        "applyRefundSum": 9900,
        "status": r.raw_status.parse::<u64>().unwrap_or(0),
        "orderId": r.external_order_id,
        "reason": "不想要了",
        "systemId": 1,
    });
    if with_skus {
        let sku = |l: &str| {
            l.split('-')
                .next()
                .unwrap_or("")
                .parse::<u64>()
                .unwrap_or(0)
        };
        v["skuVoList"] = json!(
            r.external_line_id
                .iter()
                .map(|l| json!({"skuId": sku(l), "skuCount": 1}))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// The refund apply calls: the list by order, the read by id and the seller's review, checked as
/// the SDK documents them (`pageIndex` 1–100, `pageSize` 1–50; `status` 1 or 2, `checkUserName`,
/// `remark` required, `rejectType` 1–6 with a refusal only).
fn refund_call(method: &str, biz: &Value) -> Result<SimCall, SimFault> {
    let bad = |m: &str| Err(SimFault::BadRequest(m.into()));
    match method {
        super::refund::LIST_METHOD => {
            let index = long(biz, "pageIndex").unwrap_or(1);
            let size = long(biz, "pageSize").unwrap_or(10);
            let order = biz.get("orderId").and_then(Value::as_str).unwrap_or("");
            if !(1..=100).contains(&index) || !(1..=50).contains(&size) || order.is_empty() {
                return bad("orderId, pageIndex 1-100, pageSize 1-50");
            }
            Ok(SimCall::OrderRefunds {
                order_id: order.to_owned(),
            })
        }
        super::refund::GET_METHOD => match long(biz, "id") {
            Some(id) => Ok(SimCall::RefundGet {
                refund_id: id.to_string(),
            }),
            None => bad("id"),
        },
        super::refund::REPLY_METHOD => {
            let text = |k: &str| biz.get(k).and_then(Value::as_str).unwrap_or("").trim();
            let (Some(id), Some(status)) = (long(biz, "id"), long(biz, "status")) else {
                return bad("id, status");
            };
            if text("checkUserName").is_empty() || text("remark").is_empty() {
                return bad("checkUserName, remark");
            }
            let decision = match (status, long(biz, "rejectType")) {
                (1, None) => RefundDecision::Agree,
                (2, Some(1..=6)) => RefundDecision::Refuse {
                    reason: text("remark").to_owned(),
                },
                _ => return bad("status 1, or 2 with rejectType 1-6"),
            };
            Ok(SimCall::RefundDecision {
                refund_id: id.to_string(),
                decision,
                version: None,
            })
        }
        _ => bad("unknown method"),
    }
}

fn time(p: &Value, k: &str) -> DateTime<Utc> {
    let s = p
        .get(k)
        .and_then(Value::as_str)
        .map(|s| crate::wire::Text(s.to_string()));
    crate::wire::china_time(k, &s)
        .ok()
        .flatten()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A call to JD's OAuth service: the code exchange or the refresh, with the app's credentials.
fn oauth_call(creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
    let q = req.query_pairs();
    if param(&q, "app_key") != creds.app_key || param(&q, "app_secret") != creds.secret {
        return Err(SimFault::Auth);
    }
    let create = req.path == super::TOKEN_CREATE_PATH;
    let grant = if create {
        "authorization_code"
    } else {
        "refresh_token"
    };
    if param(&q, "grant_type") != grant {
        return Err(SimFault::BadRequest("grant_type".into()));
    }
    Ok(if create {
        SimCall::CodeToken {
            code: param(&q, "code").to_string(),
        }
    } else {
        SimCall::Token {
            refresh: Some(param(&q, "refresh_token").to_string()),
        }
    })
}

impl SimWire for JdWire {
    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
        if req.path == super::TOKEN_CREATE_PATH || req.path == super::TOKEN_PATH {
            return oauth_call(creds, req);
        }
        if req.path != PATH {
            return Err(SimFault::BadRequest("unknown path".into()));
        }
        let mut p = req.query_pairs();
        p.extend(crate::wire::form_decode(&req.body));
        let given = param(&p, "sign").to_string();
        if param(&p, "app_key") != creds.app_key
            || !crate::sign::hex_eq(&api_sign(&p, &creds.secret), &given)
            || creds.access_token.is_empty()
            || param(&p, "access_token") != creds.access_token
        {
            return Err(SimFault::Auth);
        }
        let biz: Value = serde_json::from_str(param(&p, "360buy_param_json"))
            .map_err(|_| SimFault::BadRequest("360buy_param_json is not JSON".into()))?;
        let num = |k: &str, d: u32| {
            biz.get(k)
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or(v.as_u64().map(|n| n.to_string()))
                })
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(d)
        };
        match param(&p, "method") {
            SEARCH_METHOD => Ok(SimCall::List {
                from: time(&biz, "start_date"),
                to: time(&biz, "end_date"),
                page: num("page", 1),
                page_size: num("page_size", 20),
                cursor: None,
            }),
            GET_METHOD => Ok(SimCall::Detail {
                id: biz
                    .get("order_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }),
            super::SHIP_METHOD => {
                let s = |k: &str| match biz.get(k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                Ok(SimCall::Ship {
                    id: s("orderId"),
                    carrier: s("logiCoprId"),
                    tracking_no: s("logiNo"),
                    line_ids: None,
                })
            }
            super::STOCK_METHOD => {
                let sku = biz.get("skuId").and_then(Value::as_u64);
                let qty = biz
                    .get("stockNum")
                    .and_then(Value::as_i64)
                    .filter(|q| *q >= 0);
                match (sku, qty) {
                    // JD's stock call names the SKU only: the shelf keeps it under item "".
                    (Some(sku), Some(quantity)) => Ok(SimCall::Stock {
                        updates: vec![crate::StockUpdate {
                            item_id: String::new(),
                            sku_id: sku.to_string(),
                            quantity,
                        }],
                    }),
                    _ => Err(SimFault::BadRequest("skuId and stockNum".into())),
                }
            }
            super::STOCK_READ_METHOD => match biz.get("skuId").and_then(Value::as_u64) {
                // JD's read names the SKU only, as its stock call: the shelf's item "".
                Some(sku) => Ok(SimCall::StockRead {
                    item_id: String::new(),
                    sku_ids: vec![sku.to_string()],
                }),
                None => Err(SimFault::BadRequest("skuId".into())),
            },
            m => refund_call(m, &biz),
        }
    }

    fn refund_code(&self, s: RefundState) -> &'static str {
        use super::refund::ApplyStatus as A;
        match s {
            RefundState::None => "",
            RefundState::Requested => A::Unreviewed.code(),
            RefundState::Refunded => A::Approved.code(),
            RefundState::Rejected => A::Refused.code(),
        }
    }

    fn refund(&self, r: &crate::ChannelRefund) -> Vec<u8> {
        json_bytes(
            &json!({"jingdong_pop_afs_soa_refundapply_queryById_responce": {
                "code": "0",
                "queryResult": {"success": true, "totalCount": 1, "result": [apply(r, true)]},
            }}),
        )
    }

    fn order_refunds(&self, _order_id: &str, refunds: &[crate::ChannelRefund]) -> Vec<u8> {
        let list: Vec<Value> = refunds.iter().map(|r| apply(r, false)).collect();
        json_bytes(
            &json!({"jingdong_pop_afs_soa_refundapply_queryPageList_responce": {
                "code": "0",
                "queryResult": {"success": true, "totalCount": list.len(), "result": list},
            }}),
        )
    }

    /// JOS's router answers a system error in its error envelope (the code is **assumed**, as
    /// the ship call's).
    fn refund_failed(&self) -> (u16, Vec<u8>) {
        (
            200,
            json_bytes(&json!({"error_response": {
                "code": super::SYSTEM_ERROR_CODE, "zh_desc": "系统异常", "en_desc": "system error",
            }})),
        )
    }

    fn refund_decided(&self, _agree: bool) -> Vec<u8> {
        json_bytes(
            &json!({"jingdong_pop_afs_soa_refundapply_replyRefund_responce": {
                "code": "0",
                "replyResult": {"success": true},
            }}),
        )
    }

    /// JD's stock call names the SKU only: the shelf keeps it under item "".
    fn shelf_key(&self, _item_id: &str, sku_id: &str) -> (String, String) {
        (String::new(), sku_id.to_owned())
    }

    fn stock(&self, _updates: &[crate::StockUpdate]) -> Vec<u8> {
        json_bytes(&json!({"jingdong_stock_write_updateSkuStock_responce": {
            "code": "0", "success": true,
        }}))
    }

    fn stock_read(&self, _item_id: &str, levels: &[crate::StockLevel]) -> Vec<u8> {
        let stocks: Vec<Value> = levels
            .iter()
            .map(|l| json!({"skuId": l.sku_id.parse::<u64>().unwrap_or(0), "stockNum": l.quantity}))
            .collect();
        json_bytes(&json!({"jingdong_stock_read_findSkuStock_responce": {
            "code": "0", "skuStocks": stocks,
        }}))
    }

    fn list(&self, page: &Page<'_>) -> Vec<u8> {
        json_bytes(&json!({"jingdong_pop_order_search_responce": {
            "code": "0",
            "searchorderinfo_result": {
                "apiResult": ok_result(),
                "orderTotal": page.total,
                "orderInfoList": page.orders.iter().map(render).collect::<Vec<_>>(),
            },
        }}))
    }

    fn detail(&self, o: &ChannelOrder) -> Vec<u8> {
        json_bytes(&json!({"jingdong_pop_order_get_responce": {
            "code": "0",
            "orderDetailInfo": {"apiResult": ok_result(), "orderInfo": render(o)},
        }}))
    }

    fn has_carrier(&self, code: &str) -> bool {
        super::CARRIERS.iter().any(|(_, c)| *c == code)
    }

    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>) {
        let result = |ok: bool, code: &str, zh: &str, en: &str| {
            (
                200,
                json_bytes(&json!({"jingdong_pop_order_shipment_responce": {
                    "code": "0",
                    "sopjosshipment_result": {
                        "success": ok, "errorCode": code,
                        "chineseErrCode": zh, "englishErrCode": en,
                    },
                }})),
            )
        };
        match answer {
            ShipAnswer::Shipped => result(true, "", "成功", "success"),
            ShipAnswer::Repeat => result(
                false,
                super::ALREADY_SHIPPED_CODE,
                "订单已出库",
                "order already shipped",
            ),
            ShipAnswer::Conflict => result(
                false,
                super::SHIP_CONFLICT_CODE,
                "订单状态不允许出库",
                "order state does not allow it",
            ),
            ShipAnswer::UnknownCarrier => {
                result(false, "10400003", "物流公司不存在", "unknown carrier")
            }
            ShipAnswer::SystemError => {
                result(false, super::SYSTEM_ERROR_CODE, "系统异常", "system error")
            }
        }
    }

    fn token(&self, g: &crate::sim::SimGrant) -> Vec<u8> {
        json_bytes(&json!({
            "access_token": g.access_token, "expires_in": g.expires_in,
            "refresh_token": g.refresh_token, "scope": "snsapi_base", "open_id": "sim-open-id",
            "time": g.now.timestamp_millis(), "code": 0,
        }))
    }

    fn error(&self, err: &SimErr) -> (u16, Vec<u8>) {
        let (code, zh, en) = match err {
            // **Assumed** shape (ysdk-go reads `code`, `msg`, `requestId`).
            SimErr::RefreshRefused => {
                return (
                    200,
                    json_bytes(
                        &json!({"code": 1004, "msg": "refresh_token已失效", "requestId": "sim"}),
                    ),
                );
            }
            SimErr::TokenExpired => (
                AUTH_CODE.to_string(),
                "token已过期或者不存在，请重新授权访问".to_string(),
                "Invalid access_token".to_string(),
            ),
            SimErr::Auth => (
                AUTH_CODE.to_string(),
                "无效access_token或签名错误".to_string(),
                "Invalid access_token or sign".to_string(),
            ),
            SimErr::Throttled => (
                THROTTLE_CODE.to_string(),
                "接口调用次数超过限制".to_string(),
                "call limit exceeded".to_string(),
            ),
            SimErr::BadRequest(m) => ("20".into(), m.clone(), "invalid parameter".into()),
            SimErr::NotFound => ("1000".into(), "订单不存在".into(), "order not found".into()),
        };
        (
            200,
            json_bytes(&json!({"error_response": {"code": code, "zh_desc": zh, "en_desc": en}})),
        )
    }

    fn push(&self, o: &ChannelOrder, creds: &ShopCredentials, now: DateTime<Utc>) -> SignedPush {
        let content = json!({
            "orderId": o.external_order_id,
            "venderId": "10622317",
            "orderState": o.channel_status,
        })
        .to_string();
        let mut params: Vec<(String, String)> = vec![
            ("app_key".into(), creds.app_key.clone()),
            ("topic".into(), "pop_order_state".into()),
            (
                "id".into(),
                format!("{}-{}", o.external_order_id, o.modified_at.timestamp()),
            ),
            ("content".into(), content),
            ("timestamp".into(), jos_timestamp(now)),
        ];
        let sign = api_sign(&params, &creds.secret);
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
            CanonicalStatus::PendingPayment | CanonicalStatus::Paid => {
                OrderState::WaitSellerStockOut
            }
            CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => {
                OrderState::WaitGoodsReceiveConfirm
            }
            CanonicalStatus::Delivered | CanonicalStatus::Completed => OrderState::FinishedL,
            CanonicalStatus::Cancelled => OrderState::TradeCanceled,
        }
        .code()
    }

    /// JD's order API serves paid orders, ships in one go, and ends at FINISHED_L.
    fn normalise(&self, o: &mut ChannelOrder) {
        o.canonical = match o.canonical {
            CanonicalStatus::PendingPayment => {
                o.paid_at = Some(o.created_at + Duration::seconds(40));
                CanonicalStatus::Paid
            }
            CanonicalStatus::PartlyShipped => CanonicalStatus::Shipped,
            CanonicalStatus::Delivered => CanonicalStatus::Completed,
            c => c,
        };
        o.channel_status = self.status_code(o.canonical).to_string();
        // JD's lines are its SKUs: the line id is the skuId (a repeated SKU `{skuId}-{index}`),
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
        format!("{}", 280_000_000_000u64 + serial)
    }
}

//! The seller's decision on a JD refund apply (退款审核单: the buyer's cancellation of an order not
//! yet shipped), SOURCES.md § Refund decisions.
//!
//! JD's order answer names no refund: the order's applies are listed with
//! `jingdong.pop.afs.soa.refundapply.queryPageList` by `orderId` (the list names no SKU), each is
//! read with `…queryById` (its `skuVoList` names the SKUs, which are JD's lines), and decided with
//! `…replyRefund`: `status` 1 (审核通过) or 2 (审核不通过, with a `rejectType`), the apply's `id`,
//! `checkUserName` and `remark`. Every answer is `…_responce{code, queryResult | replyResult}` with
//! `success`, `errorCode`, `errorMsg` (JD Java SDK `RefundApplySoaService` response classes).

use serde_json::Value;

use crate::wire;
use crate::{ApiError, ChannelRefund, RefundDecision, Rejected};

/// 退款审核单列表查询: `ids, status, orderId, buyerId, buyerName, applyTimeStart, applyTimeEnd,
/// checkTimeStart, checkTimeEnd, pageIndex (1–100), pageSize (1–50), storeId, showSku`.
pub const LIST_METHOD: &str = "jingdong.pop.afs.soa.refundapply.queryPageList";
/// 根据Id查询退款审核单: `id`.
pub const GET_METHOD: &str = "jingdong.pop.afs.soa.refundapply.queryById";
/// 商家审核退款单: `status, id, checkUserName, remark, rejectType, outWareStatus`.
pub const REPLY_METHOD: &str = "jingdong.pop.afs.soa.refundapply.replyRefund";
/// Who `replyRefund` names as the reviewer (审核人).
pub const CHECK_USER: &str = "orderhub";
/// The `remark` of an agreement (审核备注 is required but for a forced close).
pub const AGREE_REMARK: &str = "approved in orderhub";
/// `status` of an agreement (审核通过).
pub const AGREE_STATUS: u8 = 1;
/// `status` of a refusal (审核不通过).
pub const REFUSE_STATUS: u8 = 2;
/// `rejectType` of a refusal: 5 = 其他 (the others name fixed situations: in transit, signed for,
/// bonded customs, the buyer agreed by phone); the operator's reason goes as `remark`.
pub const REJECT_OTHER: u8 = 5;
/// The applies of one order read at most (one page; `pageSize` takes 1–50).
pub const PAGE_SIZE: usize = crate::ORDER_REFUNDS_MAX;

code_map! {
    /// `RefundApplyVo.status` (the SDK's field comment: 0 未审核, 1 审核通过, 2 审核不通过,
    /// 3 京东财务审核通过, 4 京东财务审核不通过, 5 人工审核通过, 6 拦截并退款, 7 青龙拦截成功,
    /// 8 青龙拦截失败, 9 强制关单并退款, 10 物流待跟进, 11 用户撤销).
    pub enum ApplyStatus -> crate::RefundState {
        Unreviewed = "0" => Requested,
        Approved = "1" => Refunded,
        Refused = "2" => Rejected,
        FinanceApproved = "3" => Refunded,
        FinanceRefused = "4" => Rejected,
        ManuallyApproved = "5" => Refunded,
        InterceptedAndRefunded = "6" => Refunded,
        Intercepted = "7" => Refunded,
        /// The parcel could not be stopped: no refund.
        InterceptFailed = "8" => Rejected,
        ForcedClosedAndRefunded = "9" => Refunded,
        /// Waiting for the logistics: still open.
        AwaitingLogistics = "10" => Requested,
        WithdrawnByBuyer = "11" => Rejected,
    }
}

/// A JD apply id: a `Long`, digits.
fn check_id(id: &str) -> Result<u64, Rejected> {
    id.parse::<u64>()
        .ok()
        .filter(|_| !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Rejected::bad_value("refund_id", "a JD refund apply id (digits)"))
}

pub(crate) fn list_params(order_id: &str) -> Result<Value, Rejected> {
    if order_id.is_empty() || order_id.len() > 32 || !order_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejected::bad_value("orderId", "a JD order id (digits)"));
    }
    Ok(serde_json::json!({
        "orderId": order_id,
        "pageIndex": 1,
        "pageSize": PAGE_SIZE,
    }))
}

pub(crate) fn get_params(refund_id: &str) -> Result<Value, Rejected> {
    Ok(serde_json::json!({ "id": check_id(refund_id)? }))
}

/// `…_responce.queryResult` of a read: its `success` false is the channel's error.
fn query_result<'a>(v: &'a Value, method: &str) -> Result<&'a Value, ApiError> {
    let key = format!("{}_responce", method.replace('.', "_"));
    let r = v
        .get(&key)
        .and_then(|r| r.get("queryResult"))
        .filter(|r| r.is_object())
        .ok_or_else(|| Rejected::missing(&format!("{key}.queryResult")))?;
    refused(r)?;
    Ok(r)
}

/// `success: false` (a boolean, or the string) → the channel's error with `errorCode` /
/// `errorMsg`.
fn refused(r: &Value) -> Result<(), ApiError> {
    let ok = match r.get("success") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s != "false",
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let text = |k: &str| match r.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let code = match text("errorCode") {
        c if c.is_empty() => "success_false".to_owned(),
        c => c,
    };
    Err(super::classify(code, text("errorMsg").trim()))
}

/// One `RefundApplyVo`: the apply as a refund. Its line is the SKU of `skuVoList` (JD's line id
/// is the SKU id) when it names exactly one; an apply naming several SKUs covers those lines — the
/// whole order before shipment — and names no line (the write-back takes it for every line).
fn apply(r: &Value, field: &str) -> Result<ChannelRefund, Rejected> {
    let f = |n: &str| format!("{field}.{n}");
    let raw = match r.get("status") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_owned(),
        None | Some(Value::Null) => return Err(Rejected::missing(&f("status"))),
        Some(_) => return Err(Rejected::bad_value(&f("status"), "a status number")),
    };
    let state = ApplyStatus::parse(&raw)
        .ok_or_else(|| Rejected::unknown_status(&f("status"), &raw))?
        .target();
    let line = match r.get("skuVoList") {
        None | Some(Value::Null) => None,
        Some(Value::Array(skus)) => match skus.as_slice() {
            [s] => Some(crate::level_id(s.get("skuId"), &f("skuVoList[0].skuId"))?),
            _ => None,
        },
        Some(_) => return Err(Rejected::bad_value(&f("skuVoList"), "a list")),
    };
    Ok(ChannelRefund {
        refund_id: crate::level_id(r.get("id"), &f("id"))?,
        external_order_id: crate::level_id(r.get("orderId"), &f("orderId"))?,
        external_line_id: line,
        state,
        raw_status: raw,
        phase: None,
        version: None,
    })
}

/// `queryById`'s answer: the first (only) apply of `queryResult.result`.
pub(crate) fn parse(body: &[u8]) -> Result<ChannelRefund, ApiError> {
    let v: Value = wire::parse_json(body)?;
    let r = query_result(&v, GET_METHOD)?;
    let first = r
        .get("result")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or_else(|| Rejected::missing("queryResult.result"))?;
    Ok(apply(first, "queryResult.result[0]")?)
}

/// `queryPageList`'s answer: the order's applies, those still waiting for the seller first (an
/// order refused once may be applied for again), at most [`crate::ORDER_REFUNDS_MAX`].
pub(crate) fn parse_list(body: &[u8]) -> Result<Vec<ChannelRefund>, ApiError> {
    let v: Value = wire::parse_json(body)?;
    let r = query_result(&v, LIST_METHOD)?;
    let list = match r.get("result") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(Rejected::bad_value("queryResult.result", "a list").into()),
    };
    let mut out = Vec::with_capacity(list.len().min(crate::ORDER_REFUNDS_MAX));
    for (i, a) in list.iter().take(crate::ORDER_REFUNDS_MAX).enumerate() {
        out.push(apply(a, &format!("queryResult.result[{i}]"))?);
    }
    out.sort_by_key(|r| r.state != crate::RefundState::Requested);
    Ok(out)
}

pub(crate) fn decision_params(r: &ChannelRefund, d: &RefundDecision) -> Result<Value, Rejected> {
    let id = check_id(&r.refund_id)?;
    Ok(match d {
        RefundDecision::Agree => serde_json::json!({
            "status": AGREE_STATUS,
            "id": id,
            "checkUserName": CHECK_USER,
            "remark": AGREE_REMARK,
        }),
        RefundDecision::Refuse { reason } => {
            let reason: String = reason
                .trim()
                .chars()
                .take(crate::REFUSAL_CHARS_MAX)
                .collect();
            if reason.is_empty() {
                return Err(Rejected::bad_value(
                    "remark",
                    "a reason (JD's remark is required)",
                ));
            }
            serde_json::json!({
                "status": REFUSE_STATUS,
                "id": id,
                "checkUserName": CHECK_USER,
                "remark": reason,
                "rejectType": REJECT_OTHER,
            })
        }
    })
}

/// `replyRefund`'s answer: `replyResult.success` true is the acknowledgement; false the
/// channel's refusal of the call (an `Api` error with `errorCode`, tried again).
pub(crate) fn ack(body: &[u8]) -> Result<(), ApiError> {
    let v: Value = wire::parse_json(body)?;
    let key = format!("{}_responce", REPLY_METHOD.replace('.', "_"));
    let r = v
        .get(&key)
        .and_then(|r| r.get("replyResult"))
        .filter(|r| r.is_object())
        .ok_or_else(|| Rejected::missing(&format!("{key}.replyResult")))?;
    match r.get("success") {
        Some(Value::Bool(true)) => Ok(()),
        Some(Value::String(s)) if s == "true" => Ok(()),
        Some(Value::Bool(false)) => refused(r),
        Some(Value::String(s)) if s == "false" => refused(r),
        _ => Err(Rejected::missing(&format!("{key}.replyResult.success")).into()),
    }
}

//! The seller's decision on a WeChat Channels after-sale (SOURCES.md § Refund decisions).
//!
//! The order detail (`/channels/ec/order/get`) lists the order's after-sales in
//! `aftersale_detail.aftersale_order_list[{aftersale_order_id, status}]` without their lines; each
//! is read with `/channels/ec/aftersale/getaftersaleorder` (its `product_info` names the line's
//! `product_id` and `sku_id`, its `status` and `type`). Agreeing is
//! `/channels/ec/aftersale/acceptapply` (`after_sale_order_id`, `address_id` for a return,
//! `accept_type`), refusing `/channels/ec/aftersale/rejectapply` (`after_sale_order_id`,
//! `reject_reason`, `reject_reason_type` — one of the shop's reasons from
//! `/channels/ec/aftersale/rejectreason/get`); both answer `{errcode: 0, errmsg: "ok"}` (WeChat's
//! doc pages for the calls; fudiwei SDK and WxJava request models).

use crate::wire;
use crate::{ApiError, ChannelRefund, RefundDecision, RefundState, Rejected};

/// `POST /channels/ec/aftersale/getaftersaleorder` (获取售后单): `after_sale_order_id`; answer
/// `{errcode, after_sale_order{after_sale_order_id, status, order_id, product_info{product_id,
/// sku_id, count}, type, …}}`.
pub const AFTERSALE_GET_PATH: &str = "/channels/ec/aftersale/getaftersaleorder";
/// `POST /channels/ec/aftersale/acceptapply` (同意售后).
pub const ACCEPT_PATH: &str = "/channels/ec/aftersale/acceptapply";
/// `POST /channels/ec/aftersale/rejectapply` (拒绝售后).
pub const REJECT_PATH: &str = "/channels/ec/aftersale/rejectapply";
/// `accept_type` 2: "确认收到货并退款给用户" — sent when a return waits for the seller's receipt.
pub const ACCEPT_TYPE_REFUND: i64 = 2;
/// `POST /channels/ec/aftersale/rejectreason/get` (获取拒绝售后原因): body `{}`; answer
/// `{errcode, errmsg, reject_reason_list[{reject_reason_type, reject_reason_type_text,
/// reject_reason, reject_scene}]}` (WxJava `AfterSaleRejectReasonResponse`; the fudiwei SDK names
/// the list `reason_list`, read too).
pub const REJECT_REASONS_PATH: &str = "/channels/ec/aftersale/rejectreason/get";
/// `type` of a refund-only after-sale (the others, `RETURN` and `EXCHANGE`, take goods back).
pub const TYPE_REFUND: &str = "REFUND";

code_map! {
    /// After-sale `status` (WxJava `AfterSaleStatus`; qihang OmsWeiRefund.java l.29), as the
    /// decision write-back reads it: `Requested` = the seller can still agree or refuse;
    /// `Refunded` = agreed (by the seller or for it), the return or the payout under way or done;
    /// `Rejected` = refused, cancelled or closed.
    pub enum AftersaleStatus -> RefundState {
        UserCancelled = "USER_CANCELD" => Rejected,
        MerchantProcessing = "MERCHANT_PROCESSING" => Requested,
        MerchantRejectRefund = "MERCHANT_REJECT_REFUND" => Rejected,
        MerchantRejectReturn = "MERCHANT_REJECT_RETURN" => Rejected,
        UserWaitReturn = "USER_WAIT_RETURN" => Refunded,
        ReturnClosed = "RETURN_CLOSED" => Rejected,
        MerchantWaitReceipt = "MERCHANT_WAIT_RECEIPT" => Requested,
        MerchantOverdueRefund = "MERCHANT_OVERDUE_REFUND" => Refunded,
        MerchantRefundSuccess = "MERCHANT_REFUND_SUCCESS" => Refunded,
        MerchantReturnSuccess = "MERCHANT_RETURN_SUCCESS" => Refunded,
        PlatformRefunding = "PLATFORM_REFUNDING" => Refunded,
        PlatformRefundFail = "PLATFORM_REFUND_FAIL" => Refunded,
        UserWaitConfirm = "USER_WAIT_CONFIRM" => Refunded,
        MerchantRefundRetryFail = "MERCHANT_REFUND_RETRY_FAIL" => Rejected,
        MerchantFail = "MERCHANT_FAIL" => Rejected,
        UserWaitConfirmUpdate = "USER_WAIT_CONFIRM_UPDATE" => Requested,
        UserWaitHandleMerchantAfterSale = "USER_WAIT_HANDLE_MERCHANT_AFTER_SALE" => Requested,
    }
}

/// A WeChat after-sale id: digits, at most 32.
fn check_id(id: &str) -> Result<(), Rejected> {
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejected::bad_value(
            "after_sale_order_id",
            "a WeChat after-sale id (digits)",
        ));
    }
    Ok(())
}

pub(crate) fn get_body(refund_id: &str) -> Result<serde_json::Value, Rejected> {
    check_id(refund_id)?;
    Ok(serde_json::json!({ "after_sale_order_id": refund_id }))
}

/// A scalar WeChat writes as a number or a string, as text (`None` when absent or empty).
fn text(v: Option<&serde_json::Value>) -> Option<String> {
    match v {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The order detail's after-sales: ids only (the list names no line; each is read to find it).
/// `state` is `Requested` and `raw_status` the list's `status` code as written: the list's codes
/// are not documented in the sources, so the read decides.
pub(crate) fn parse_list(body: &[u8]) -> Result<Vec<ChannelRefund>, Rejected> {
    let v: serde_json::Value = wire::parse_json(body)?;
    let order = v
        .get("order")
        .filter(|o| o.is_object())
        .ok_or_else(|| Rejected::missing("order"))?;
    let order_id = crate::level_id(order.get("order_id"), "order.order_id")?;
    let list = match order.pointer("/aftersale_detail/aftersale_order_list") {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => {
            return Err(Rejected::bad_value(
                "order.aftersale_detail.aftersale_order_list",
                "a list",
            ));
        }
    };
    list.iter()
        .take(crate::ORDER_REFUNDS_MAX)
        .enumerate()
        .map(|(i, a)| {
            let f = format!("order.aftersale_detail.aftersale_order_list[{i}].aftersale_order_id");
            Ok(ChannelRefund {
                refund_id: crate::level_id(a.get("aftersale_order_id"), &f)?,
                external_order_id: order_id.clone(),
                external_line_id: None,
                state: RefundState::Requested,
                raw_status: text(a.get("status")).unwrap_or_default(),
                phase: None,
                version: None,
            })
        })
        .collect()
}

/// `after_sale_order` of the read. `external_line_id` is `product_id:sku_id` (the adapter's line
/// id); `phase` carries the after-sale's `type` (`REFUND` / `RETURN` / `EXCHANGE`), which the
/// agreement needs.
pub(crate) fn parse(body: &[u8]) -> Result<ChannelRefund, Rejected> {
    let v: serde_json::Value = wire::parse_json(body)?;
    let r = v
        .get("after_sale_order")
        .filter(|r| r.is_object())
        .ok_or_else(|| Rejected::missing("after_sale_order"))?;
    let raw: String = text(r.get("status"))
        .ok_or_else(|| Rejected::missing("after_sale_order.status"))?
        .chars()
        .take(40)
        .collect();
    let state = AftersaleStatus::parse(&raw)
        .ok_or_else(|| Rejected::unknown_status("after_sale_order.status", &raw))?
        .target();
    let p = r.get("product_info");
    let line = match (
        text(p.and_then(|p| p.get("product_id"))),
        text(p.and_then(|p| p.get("sku_id"))),
    ) {
        (Some(product), Some(sku)) => Some(format!("{product}:{sku}")),
        _ => None,
    };
    Ok(ChannelRefund {
        refund_id: crate::level_id(
            r.get("after_sale_order_id"),
            "after_sale_order.after_sale_order_id",
        )?,
        external_order_id: crate::level_id(r.get("order_id"), "after_sale_order.order_id")?,
        external_line_id: line,
        state,
        raw_status: raw,
        phase: text(r.get("type")).map(|t| t.chars().take(20).collect()),
        version: None,
    })
}

/// The decision call's path and JSON body. Agreeing to a return or exchange still waiting for the
/// seller's first answer needs the shop's return `address_id`, which orderhub does not keep:
/// refused before any call (`missing_field`); the seller agrees on WeChat.
pub(crate) fn decision_body(
    r: &ChannelRefund,
    d: &RefundDecision,
) -> Result<(&'static str, serde_json::Value), Rejected> {
    check_id(&r.refund_id)?;
    match d {
        RefundDecision::Agree => {
            let status = AftersaleStatus::parse(&r.raw_status);
            let goods_back = r.phase.as_deref().is_some_and(|t| t != TYPE_REFUND);
            match status {
                Some(AftersaleStatus::MerchantWaitReceipt) => Ok((
                    ACCEPT_PATH,
                    serde_json::json!({
                        "after_sale_order_id": r.refund_id,
                        "accept_type": ACCEPT_TYPE_REFUND,
                    }),
                )),
                Some(AftersaleStatus::MerchantProcessing) if goods_back => Err(Rejected::at(
                    "missing_field",
                    "address_id",
                    "agreeing to a WeChat return needs the shop's return address_id, which orderhub does not keep: agree on WeChat",
                )),
                _ => Ok((
                    ACCEPT_PATH,
                    serde_json::json!({ "after_sale_order_id": r.refund_id }),
                )),
            }
        }
        RefundDecision::Refuse { reason } => Ok((REJECT_PATH, refusal_body(r, reason, None)?)),
    }
}

/// The shop's refusal reasons (`reject_reason_list`, or the fudiwei SDK's `reason_list`): the
/// code is `reject_reason_type` (a number), the text `reject_reason_type_text` (else
/// `reject_reason`). The answer says nothing of evidence: no reason needs any.
pub(crate) fn parse_reasons(body: &[u8]) -> Result<Vec<crate::RefusalReason>, Rejected> {
    let v: serde_json::Value = wire::parse_json(body)?;
    let list = match v.get("reject_reason_list").or_else(|| v.get("reason_list")) {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => return Err(Rejected::bad_value("reject_reason_list", "a list")),
    };
    list.iter()
        .take(crate::REFUSAL_REASONS_MAX)
        .enumerate()
        .map(|(i, it)| {
            let code = text(it.get("reject_reason_type"))
                .filter(|c| c.parse::<i64>().is_ok())
                .ok_or_else(|| {
                    Rejected::bad_value(
                        &format!("reject_reason_list[{i}].reject_reason_type"),
                        "a number",
                    )
                })?;
            Ok(crate::RefusalReason {
                code,
                text: text(it.get("reject_reason_type_text"))
                    .or_else(|| text(it.get("reject_reason")))
                    .unwrap_or_default(),
                needs_evidence: false,
            })
        })
        .collect()
}

/// `rejectapply`'s body: `reject_reason_type` = the chosen code (required: `missing_field`
/// without one), `reject_reason` = the seller's reason (trimmed, cut to
/// [`crate::REFUSAL_CHARS_MAX`]; left out when empty: WeChat shows the type's default text).
pub(crate) fn refusal_body(
    r: &ChannelRefund,
    reason: &str,
    code: Option<&crate::RefusalReason>,
) -> Result<serde_json::Value, Rejected> {
    check_id(&r.refund_id)?;
    let code = code.ok_or_else(|| Rejected::missing("reject_reason_type"))?;
    let n: i64 = code
        .code
        .parse()
        .map_err(|_| Rejected::bad_value("reject_reason_type", "a number"))?;
    let reason: String = reason
        .trim()
        .chars()
        .take(crate::REFUSAL_CHARS_MAX)
        .collect();
    let mut body = serde_json::json!({
        "after_sale_order_id": r.refund_id,
        "reject_reason_type": n,
    });
    if !reason.is_empty() {
        body["reject_reason"] = serde_json::Value::String(reason);
    }
    Ok(body)
}

/// Either decision's answer: `errcode` 0 (errors were taken by `api_error` before).
pub(crate) fn ack(body: &[u8]) -> Result<(), ApiError> {
    let v: serde_json::Value = wire::parse_json(body)?;
    match text(v.get("errcode")).as_deref() {
        Some("0") => Ok(()),
        Some(_) => Err(ApiError::Rejected(Rejected::bad_value("errcode", "0"))),
        None => Err(ApiError::Rejected(Rejected::missing("errcode"))),
    }
}

//! The seller's decision on a Kuaishou refund (售后单) (SOURCES.md § Refund decisions).
//!
//! An order is one SKU: the detail's `orderRefundList` (newest first) names the line's refund
//! (`refundId`). The refund is read with `open.seller.order.refund.detail` (`refundId`): its
//! `status`, `updateTime` (the refund's version) and `refundFee` (fen). Agreeing to a refund-only
//! application (status 10) is `open.seller.order.refund.approve` (`refundId`, `refundAmount` in
//! fen, `status`); to a return application (status 11) `open.seller.order.refund.returngoods.approve`
//! (`refundId`, `refundAmount`; no `addressId`: the shop's default return address). Both answer
//! the envelope's `result` 1 (crywolfx/kuaishou-merchant-open-api `api.declaration.ts`).
//!
//! Refusing an application (status 10 / 11) is `open.refund.reject` (`refundId`, `reasonCode`,
//! `rejectDesc`, `refundVersion` = the read's `updateTime`), the `reasonCode` one of those
//! `open.refund.reject.reason` lists for the refund (`data[{code, desc, tip, requiredRejectDesc,
//! requiredRejectImage}]`): one needing no pictures is chosen ([`crate::choose_refusal_reason`]).
//!
//! [`ChannelRefund::phase`] carries Kuaishou's `refundFee` (fen, digits), which the agreement
//! calls name as `refundAmount`.

use super::transformers as t;
use crate::wire;
use crate::{ApiError, ChannelRefund, RefundDecision, Rejected};

/// `open.seller.order.refund.detail` (获取售后单详情): `refundId`; answer `data{refundId, oid,
/// skuId, refundFee, status, handlingWay, negotiateStatus, updateTime, …}`.
pub const DETAIL_METHOD: &str = "open.seller.order.refund.detail";
/// `open.seller.order.refund.approve` (商家同意退款, refund-only applications): `refundId`,
/// `refundAmount` (fen), `status` (the refund's current status), `desc`, `negotiateStatus`,
/// `refundHandingWay` (the last three optional, not sent).
pub const APPROVE_METHOD: &str = "open.seller.order.refund.approve";
/// `open.seller.order.refund.returngoods.approve` (商家同意退货): `refundId`, `refundAmount` (fen,
/// checked against the refund's), `addressId` (optional: the default return address).
pub const RETURN_APPROVE_METHOD: &str = "open.seller.order.refund.returngoods.approve";
/// `open.refund.reject.reason` (获取售后拒绝原因列表, GET): `refundId`; answer `data[{code, desc,
/// tip, requiredRejectDesc, requiredRejectImage}]` (`MerchantRefundRejectReasonView`).
pub const REJECT_REASONS_METHOD: &str = "open.refund.reject.reason";
/// `open.refund.reject` (商家拒绝退款): `refundId`, `reasonCode`, `rejectDesc` / `rejectImages`
/// (required or not per the code), `refundVersion` (the refund's `updateTime`); answer `result` 1.
pub const REJECT_METHOD: &str = "open.refund.reject";
/// `status` 10 买家仅退款申请.
pub const REFUND_ONLY_APPLIED: &str = "10";
/// `status` 11 买家退货退款申请.
pub const RETURN_APPLIED: &str = "11";

/// A Kuaishou refund id: a positive number (`refundId` is a Long).
pub(crate) fn check_id(id: &str) -> Result<u64, Rejected> {
    id.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Rejected::bad_value("refund_id", "a Kuaishou refund id (a number)"))
}

/// An integer Kuaishou writes as a number (or a numeric string).
fn int(v: Option<&serde_json::Value>, field: &str) -> Result<Option<i64>, Rejected> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| Rejected::bad_value(field, "an integer")),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| Rejected::bad_value(field, "an integer")),
        Some(_) => Err(Rejected::bad_value(field, "an integer")),
    }
}

/// The refund read's `data`. Its line is not named in orderhub's terms (the answer has `skuId`,
/// not `orderItemId`): `external_line_id` is `None` (the detail names the line's refund).
pub(crate) fn parse(body: &[u8]) -> Result<ChannelRefund, Rejected> {
    let env: t::Envelope<serde_json::Value> = wire::parse_json(body)?;
    let r = env
        .data
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| Rejected::missing("data"))?;
    let raw = int(r.get("status"), "data.status")?
        .ok_or_else(|| Rejected::missing("data.status"))?
        .to_string();
    let state = super::RefundStatus::parse(&raw)
        .ok_or_else(|| Rejected::unknown_status("data.status", &raw))?
        .target();
    let fee = int(r.get("refundFee"), "data.refundFee")?;
    if fee.is_some_and(|f| f < 0) {
        return Err(Rejected::bad_value("data.refundFee", "0 or more fen"));
    }
    Ok(ChannelRefund {
        refund_id: crate::level_id(r.get("refundId"), "data.refundId")?,
        external_order_id: crate::level_id(r.get("oid"), "data.oid")?,
        external_line_id: None,
        state,
        raw_status: raw,
        phase: fee.map(|f| f.to_string()),
        version: int(r.get("updateTime"), "data.updateTime")?,
    })
}

/// The method and `param` for `d` on `r`. Refused without a call: `not_supported` for a refusal
/// and for a refund not waiting for the seller's agreement to an application (10 / 11: platform
/// intervention, a return under way, a refund executing); `missing_field` without `refundFee`.
pub(crate) fn decision(
    r: &ChannelRefund,
    d: &RefundDecision,
) -> Result<(&'static str, serde_json::Value), Rejected> {
    let id = check_id(&r.refund_id)?;
    let unsupported = |what: &str| {
        Rejected::at(
            "not_supported",
            "refund_decision",
            format!("Kuaishou: no call orderhub can make for {what}"),
        )
    };
    if let RefundDecision::Refuse { reason } = d {
        return refusal(r, reason, None).map(|p| (REJECT_METHOD, p));
    }
    let method = match r.raw_status.as_str() {
        REFUND_ONLY_APPLIED => APPROVE_METHOD,
        RETURN_APPLIED => RETURN_APPROVE_METHOD,
        _ => {
            return Err(unsupported(
                "a refund not waiting for the seller's agreement (status 10 or 11)",
            ));
        }
    };
    let amount: i64 = r
        .phase
        .as_deref()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| Rejected::missing("refundFee"))?;
    let mut param = serde_json::json!({ "refundId": id, "refundAmount": amount });
    if method == APPROVE_METHOD {
        // The refund's current status: 10 (the only one this call is made for).
        param["status"] = serde_json::json!(10);
    }
    Ok((method, param))
}

/// A refund Kuaishou takes a refusal of: an application (status 10 / 11); any other status is
/// `not_supported` (the case records `no_call`).
fn refusable(r: &ChannelRefund) -> Result<u64, Rejected> {
    let id = check_id(&r.refund_id)?;
    match r.raw_status.as_str() {
        REFUND_ONLY_APPLIED | RETURN_APPLIED => Ok(id),
        _ => Err(Rejected::at(
            "not_supported",
            "refund_decision",
            "Kuaishou: no call orderhub can make for a refusal of a refund not waiting for the seller's answer (status 10 or 11)",
        )),
    }
}

/// `open.refund.reject.reason`'s `param`.
pub(crate) fn reasons_param(r: &ChannelRefund) -> Result<serde_json::Value, Rejected> {
    Ok(serde_json::json!({ "refundId": refusable(r)? }))
}

/// The reasons list (`data[]`): `code` (a number), `desc`; pictures required
/// (`requiredRejectImage` true) is "needs evidence" (orderhub sends none).
pub(crate) fn parse_reasons(body: &[u8]) -> Result<Vec<crate::RefusalReason>, Rejected> {
    let env: t::Envelope<serde_json::Value> = wire::parse_json(body)?;
    let list = match env.data {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => return Err(Rejected::bad_value("data", "a list")),
    };
    list.iter()
        .take(crate::REFUSAL_REASONS_MAX)
        .enumerate()
        .map(|(i, it)| {
            let code = int(it.get("code"), &format!("data[{i}].code"))?
                .ok_or_else(|| Rejected::missing(&format!("data[{i}].code")))?;
            Ok(crate::RefusalReason {
                code: code.to_string(),
                text: it
                    .get("desc")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
                needs_evidence: it
                    .get("requiredRejectImage")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
            })
        })
        .collect()
}

/// `open.refund.reject`'s `param`: the chosen `reasonCode`, `rejectDesc` = the seller's reason
/// (trimmed, cut to [`crate::REFUSAL_CHARS_MAX`]; the code's text when empty — some codes
/// require a description), `refundVersion` = the read's `updateTime` (required).
pub(crate) fn refusal(
    r: &ChannelRefund,
    reason: &str,
    code: Option<&crate::RefusalReason>,
) -> Result<serde_json::Value, Rejected> {
    let id = refusable(r)?;
    let code = code.ok_or_else(|| Rejected::missing("reasonCode"))?;
    let n: i64 = code
        .code
        .parse()
        .map_err(|_| Rejected::bad_value("reasonCode", "a number"))?;
    let version = r
        .version
        .ok_or_else(|| Rejected::missing("refundVersion"))?;
    let cut = |s: &str| -> String { s.trim().chars().take(crate::REFUSAL_CHARS_MAX).collect() };
    let desc = match cut(reason) {
        s if s.is_empty() => cut(&code.text),
        s => s,
    };
    Ok(serde_json::json!({
        "refundId": id,
        "reasonCode": n,
        "rejectDesc": desc,
        "refundVersion": version,
    }))
}

/// The envelope's `result` 1 is the acknowledgement (errors are read by `api_error` first).
pub(crate) fn ack(body: &[u8]) -> Result<(), ApiError> {
    let env: t::Envelope<serde::de::IgnoredAny> = wire::parse_json(body)?;
    match wire::opt_str(&env.result).as_deref() {
        Some("1") => Ok(()),
        Some(_) => Err(ApiError::Rejected(Rejected::bad_value("result", "1"))),
        None => Err(ApiError::Rejected(Rejected::missing("result"))),
    }
}

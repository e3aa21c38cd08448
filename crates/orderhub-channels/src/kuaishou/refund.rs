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
//! Refusing is **not built**: `open.refund.reject` takes a `reasonCode` that must be one of the
//! codes `open.refund.reject.reason` lists for that refund (and whether a description or pictures
//! are required depends on the code); no public list of codes was found to send one without
//! that read.
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
    if matches!(d, RefundDecision::Refuse { .. }) {
        return Err(unsupported(
            "a refusal (open.refund.reject needs a reasonCode from open.refund.reject.reason)",
        ));
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

/// The envelope's `result` 1 is the acknowledgement (errors are read by `api_error` first).
pub(crate) fn ack(body: &[u8]) -> Result<(), ApiError> {
    let env: t::Envelope<serde::de::IgnoredAny> = wire::parse_json(body)?;
    match wire::opt_str(&env.result).as_deref() {
        Some("1") => Ok(()),
        Some(_) => Err(ApiError::Rejected(Rejected::bad_value("result", "1"))),
        None => Err(ApiError::Rejected(Rejected::missing("result"))),
    }
}

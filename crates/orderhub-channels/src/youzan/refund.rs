//! The seller's decision on a Youzan refund (SOURCES.md § Refund decisions).
//!
//! The line's refund id comes from the order detail (`youzan.trade.get` 4.0.0
//! `refund_order[]{refund_id, oids[{oid}]}`). The refund is read with `youzan.trade.refund.get`
//! 3.0.0 (`refund_id`): its `status`, `version` (退款版本号, a number every decision call names)
//! and `return_goods` (仅退款 / 退货退款). Agreeing is `youzan.trade.refund.agree` 3.0.0
//! (`refund_id`, `version`); refusing a refund waiting for the seller is
//! `youzan.trade.refund.refuse` 3.0.0 (`refund_id`, `remark`, `version`), refusing returned goods
//! waiting for the seller's confirmation is `youzan.trade.returngoods.refuse` 3.0.0 (same
//! parameters). All answer `{is_success}` (nest-mods/youzan `docs/seller_refund/*.json`).
//!
//! [`ChannelRefund::phase`] carries Youzan's `return_goods`: `refund` (仅退款, false) or
//! `return_goods` (退货退款, true). Agreeing to a return (`youzan.trade.returngoods.agree`) needs
//! the seller's return address, which orderhub does not hold: not built (`not_supported`).

use super::transformers as t;
use crate::wire;
use crate::{ApiError, ChannelRefund, RefundDecision, Rejected};

/// `youzan.trade.refund.get` 3.0.0: `refund_id`; answer `{tid, oid, refund_id, status, version,
/// return_goods, …}`.
pub const GET_API: &str = "youzan.trade.refund.get";
/// `youzan.trade.refund.agree` 3.0.0 (商家同意退款): `refund_id`, `version`.
pub const AGREE_API: &str = "youzan.trade.refund.agree";
/// `youzan.trade.refund.refuse` 3.0.0 (商家拒绝退款): `refund_id`, `remark`, `version`.
pub const REFUSE_API: &str = "youzan.trade.refund.refuse";
/// `youzan.trade.returngoods.refuse` 3.0.0 (商家拒绝退货, 卖家未收到货): `refund_id`, `remark`,
/// `version`.
pub const RETURN_REFUSE_API: &str = "youzan.trade.returngoods.refuse";
/// The version of every refund call above.
pub const VERSION: &str = "3.0.0";
/// [`ChannelRefund::phase`] of a refund without goods to return (`return_goods: false`).
pub const PHASE_REFUND: &str = "refund";
/// [`ChannelRefund::phase`] of a refund with goods to return (`return_goods: true`).
pub const PHASE_RETURN_GOODS: &str = "return_goods";
/// 退款操作请求太快了，请慢点～ (refund.agree doc's error codes): read as throttling.
pub const TOO_FAST_CODE: &str = "102010003";

code_map! {
    /// `status` of `youzan.trade.refund.get` 3.0.0.
    pub enum RefundStatus -> crate::RefundState {
        /// 买家已经申请退款，等待卖家同意.
        WaitSellerAgree = "WAIT_SELLER_AGREE" => Requested,
        /// 卖家已经同意退款，等待买家退货.
        WaitBuyerReturnGoods = "WAIT_BUYER_RETURN_GOODS" => Requested,
        /// 买家已经退货，等待卖家确认收货.
        WaitSellerConfirmGoods = "WAIT_SELLER_CONFIRM_GOODS" => Requested,
        /// 卖家拒绝退款.
        SellerRefuseBuyer = "SELLER_REFUSE_BUYER" => Rejected,
        /// 卖家未收到货，拒绝退款.
        SellerRefuseBuyerReturnGoods = "SELLER_REFUSE_BUYER_RETURN_GOODS" => Rejected,
        /// 退款关闭.
        Closed = "CLOSED" => Rejected,
        /// 退款成功.
        Success = "SUCCESS" => Refunded,
    }
}

/// A Youzan refund id (`201807041506110000020693`; the docs' default `W12345678`): letters and
/// digits, at most 64.
pub(crate) fn check_id(id: &str) -> Result<(), Rejected> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Rejected::bad_value(
            "refund_id",
            "a Youzan refund id (letters and digits)",
        ));
    }
    Ok(())
}

/// An integer written as a number or a numeric string.
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

/// The refund read's answer: `data` (the gateway's `{success, code, message, data}`) or
/// `response` (the docs' demo).
pub(crate) fn parse(body: &[u8]) -> Result<ChannelRefund, Rejected> {
    let env: t::Envelope<serde_json::Value> = wire::parse_json(body)?;
    let r = env
        .data
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| Rejected::missing("data"))?;
    let raw: String = r
        .get("status")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Rejected::missing("data.status"))?
        .trim()
        .chars()
        .take(40)
        .collect();
    let state = RefundStatus::parse(&raw)
        .ok_or_else(|| Rejected::unknown_status("data.status", &raw))?
        .target();
    let phase = match r.get("return_goods") {
        Some(serde_json::Value::Bool(true)) => Some(PHASE_RETURN_GOODS.to_owned()),
        Some(serde_json::Value::Bool(false)) => Some(PHASE_REFUND.to_owned()),
        None | Some(serde_json::Value::Null) => None,
        Some(_) => return Err(Rejected::bad_value("data.return_goods", "a boolean")),
    };
    Ok(ChannelRefund {
        refund_id: crate::level_id(r.get("refund_id"), "data.refund_id")?,
        external_order_id: crate::level_id(r.get("tid"), "data.tid")?,
        // `item_id` is deprecated in favour of `oid` (the doc); an empty oid says nothing.
        external_line_id: match r.get("oid") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
            v => Some(crate::level_id(v, "data.oid")?),
        },
        state,
        raw_status: raw,
        phase,
        version: int(r.get("version"), "data.version")?,
    })
}

/// The call for `d` on `r` and its JSON body. Refused without a call: `missing_field` without
/// the version the read gave; `bad_value` for an empty reason; `not_supported` where Youzan's
/// call needs what orderhub does not have (agreeing to a return: the return address) or has no
/// call (a refund whose return the seller already agreed to, waiting for the buyer's parcel).
pub(crate) fn decision(
    r: &ChannelRefund,
    d: &RefundDecision,
) -> Result<(&'static str, serde_json::Value), Rejected> {
    check_id(&r.refund_id)?;
    let status = RefundStatus::parse(&r.raw_status);
    let unsupported = |what: &str| {
        Rejected::at(
            "not_supported",
            "refund_decision",
            format!("Youzan has no call orderhub can make for {what}"),
        )
    };
    let api = match (d, status) {
        (RefundDecision::Agree, Some(RefundStatus::WaitSellerAgree))
            if r.phase.as_deref() == Some(PHASE_RETURN_GOODS) =>
        {
            return Err(unsupported(
                "agreeing to a return (youzan.trade.returngoods.agree needs the return address)",
            ));
        }
        (_, Some(RefundStatus::WaitBuyerReturnGoods)) => {
            return Err(unsupported(
                "a refund whose return is agreed and waiting for the buyer's parcel",
            ));
        }
        (RefundDecision::Agree, _) => AGREE_API,
        (RefundDecision::Refuse { .. }, Some(RefundStatus::WaitSellerConfirmGoods)) => {
            RETURN_REFUSE_API
        }
        (RefundDecision::Refuse { .. }, _) => REFUSE_API,
    };
    let version = r.version.ok_or_else(|| Rejected::missing("version"))?;
    let mut body = serde_json::json!({ "refund_id": r.refund_id, "version": version });
    if let RefundDecision::Refuse { reason } = d {
        let remark: String = reason
            .trim()
            .chars()
            .take(crate::REFUSAL_CHARS_MAX)
            .collect();
        if remark.is_empty() {
            return Err(Rejected::bad_value(
                "remark",
                "a reason (Youzan's remark is required)",
            ));
        }
        body["remark"] = remark.into();
    }
    Ok((api, body))
}

/// `is_success` of a decision answer (in `data`, or `response` as the docs' demo): `true` is the
/// acknowledgement, `false` the channel's refusal of the call (an `Api` error, tried again);
/// neither is `Rejected`.
pub(crate) fn ack(body: &[u8]) -> Result<(), ApiError> {
    let env: t::Envelope<serde_json::Value> = wire::parse_json(body)?;
    match env.data.as_ref().and_then(|d| d.get("is_success")) {
        Some(serde_json::Value::Bool(true)) => Ok(()),
        Some(serde_json::Value::Bool(false)) => Err(ApiError::Api {
            code: "is_success_false".into(),
            message: "data.is_success is false".into(),
        }),
        _ => Err(ApiError::Rejected(Rejected::missing("data.is_success"))),
    }
}

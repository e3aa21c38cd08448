//! The seller's decision on a Taobao refund (SOURCES.md § Taobao refund decisions).
//!
//! A refund is read first with `taobao.refund.get` (its status, `refund_phase` and
//! `refund_version`, which the decision calls name). Agreeing is `taobao.rp.refund.review` with
//! `result=true` (审核退款单: the refund is marked approved for the seller's batch refund; paying
//! it out, `taobao.rp.refunds.agree`, may ask for an SMS code and stays on the channel). Refusing
//! is `taobao.refund.refuse` with `refuse_message` (2–200 characters). Both answer
//! `{..._response: {is_success: true}}` (bububa/opentaobao `TaobaoRpRefundReviewAPIResponse`,
//! `TaobaoRefundRefuseAPIResponse`).

use crate::wire;
use crate::{ApiError, ChannelRefund, RefundDecision, Rejected};

/// `taobao.refund.get` (单笔退款详情): `refund_id`, `fields`; answer `refund_get_response{refund}`.
pub const GET_METHOD: &str = "taobao.refund.get";
/// The refund fields asked for (bububa/opentaobao `Refund`: `refund_phase`, `refund_version`).
pub const GET_FIELDS: &str = "refund_id,tid,oid,status,refund_phase,refund_version";
/// `taobao.rp.refund.review` (审核退款单): `refund_id`, `operator`, `refund_phase`,
/// `refund_version`, `result`, `message`.
pub const REVIEW_METHOD: &str = "taobao.rp.refund.review";
/// `taobao.refund.refuse` (卖家拒绝退款): `refund_id`, `refuse_message`, `refund_phase`,
/// `refund_version` (the last two required for Tmall refunds), `refuse_proof` (a picture, required
/// for Tmall refunds: **not sent** — a Tmall shop's refusal is refused by TOP, see SOURCES.md).
pub const REFUSE_METHOD: &str = "taobao.refund.refuse";
/// Who `taobao.rp.refund.review` names as the reviewer (审核人姓名).
pub const OPERATOR: &str = "orderhub";
/// `refuse_message`'s shortest length (TOP: 2–200).
pub const REFUSAL_CHARS_MIN: usize = 2;

/// A TOP refund id: digits, at most 32.
fn check_id(id: &str) -> Result<(), Rejected> {
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejected::bad_value(
            "refund_id",
            "a Taobao refund id (digits)",
        ));
    }
    Ok(())
}

/// A call's business parameters.
type Params = Vec<(String, String)>;

pub(crate) fn get_params(refund_id: &str) -> Result<Params, Rejected> {
    check_id(refund_id)?;
    Ok(vec![
        ("fields".into(), GET_FIELDS.into()),
        ("refund_id".into(), refund_id.into()),
    ])
}

/// An integer TOP writes as a number or a string.
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

pub(crate) fn parse(body: &[u8]) -> Result<ChannelRefund, Rejected> {
    let v: serde_json::Value = wire::parse_json(body)?;
    let r = v
        .pointer("/refund_get_response/refund")
        .filter(|r| r.is_object())
        .ok_or_else(|| Rejected::missing("refund_get_response.refund"))?;
    let raw: String = r
        .get("status")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Rejected::missing("refund.status"))?
        .chars()
        .take(40)
        .collect();
    let state = super::RefundStatus::parse(&raw)
        .ok_or_else(|| Rejected::unknown_status("refund.status", &raw))?
        .target();
    let phase = match r.get("refund_phase") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if matches!(s.as_str(), "onsale" | "aftersale") => {
            Some(s.clone())
        }
        Some(serde_json::Value::String(s)) if s.is_empty() => None,
        Some(_) => {
            return Err(Rejected::bad_value(
                "refund.refund_phase",
                "onsale or aftersale",
            ));
        }
    };
    Ok(ChannelRefund {
        refund_id: crate::level_id(r.get("refund_id"), "refund.refund_id")?,
        external_order_id: crate::level_id(r.get("tid"), "refund.tid")?,
        external_line_id: match r.get("oid") {
            None | Some(serde_json::Value::Null) => None,
            v => Some(crate::level_id(v, "refund.oid")?),
        },
        state,
        raw_status: raw,
        phase,
        version: int(r.get("refund_version"), "refund.refund_version")?,
    })
}

pub(crate) fn decision_params(
    r: &ChannelRefund,
    d: &RefundDecision,
) -> Result<(&'static str, Params), Rejected> {
    check_id(&r.refund_id)?;
    let mut biz: Vec<(String, String)> = vec![("refund_id".into(), r.refund_id.clone())];
    match d {
        RefundDecision::Agree => {
            let phase = r
                .phase
                .clone()
                .ok_or_else(|| Rejected::missing("refund_phase"))?;
            let version = r
                .version
                .ok_or_else(|| Rejected::missing("refund_version"))?;
            biz.extend([
                ("operator".into(), OPERATOR.into()),
                ("refund_phase".into(), phase),
                ("refund_version".into(), version.to_string()),
                ("result".into(), "true".into()),
                ("message".into(), "approved in orderhub".into()),
            ]);
            Ok((REVIEW_METHOD, biz))
        }
        RefundDecision::Refuse { reason } => {
            let reason: String = reason
                .trim()
                .chars()
                .take(crate::REFUSAL_CHARS_MAX)
                .collect();
            if reason.chars().count() < REFUSAL_CHARS_MIN {
                return Err(Rejected::bad_value(
                    "refuse_message",
                    "2 to 200 characters (Taobao's refuse_message)",
                ));
            }
            biz.push(("refuse_message".into(), reason));
            if let Some(p) = &r.phase {
                biz.push(("refund_phase".into(), p.clone()));
            }
            if let Some(v) = r.version {
                biz.push(("refund_version".into(), v.to_string()));
            }
            Ok((REFUSE_METHOD, biz))
        }
    }
}

/// `is_success` of either decision answer: `true` is the acknowledgement; `false` the channel's
/// refusal of the call (an `Api` error, tried again); neither shape is `Rejected`.
pub(crate) fn ack(body: &[u8]) -> Result<(), ApiError> {
    let v: serde_json::Value = wire::parse_json(body)?;
    for key in ["rp_refund_review_response", "refund_refuse_response"] {
        match v.pointer(&format!("/{key}/is_success")) {
            Some(serde_json::Value::Bool(true)) => return Ok(()),
            Some(serde_json::Value::Bool(false)) => {
                return Err(ApiError::Api {
                    code: "is_success_false".into(),
                    message: format!("{key}.is_success is false"),
                });
            }
            _ => {}
        }
    }
    Err(ApiError::Rejected(Rejected::missing(
        "rp_refund_review_response.is_success",
    )))
}

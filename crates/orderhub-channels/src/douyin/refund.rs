//! The seller's decision on a Douyin after-sale (SOURCES.md § Refund decisions).
//!
//! The order detail carries no after-sale id: the order's after-sales come from `afterSale.List`
//! by `order_id` (each names its line in `order_info.related_order_info[].sku_order_id`), one is
//! read with `afterSale.Detail` (`after_sale_id`), and agreed with `afterSale.operate`
//! (`type` + `items[{aftersale_id, update_time}]`). All go through the signed gateway like the
//! order calls. A refusal names a `reject_reason_code` read first from
//! `afterSale/rejectReasonCodeList` for the after-sale (one needing no evidence is chosen, see
//! [`crate::choose_refusal_reason`]): `type` 202 / 102 / 112 with `reason` (the code's text),
//! `remark` (the seller's reason) and `reject_reason_code`.

use crate::wire;
use crate::{ChannelRefund, RefundDecision, RefundState, Rejected};

/// `afterSale.List` (售后列表): `order_id`, `page`, `size`; answer `data{items[{aftersale_info,
/// order_info}], has_more, page, size, total}`.
pub const LIST_METHOD: &str = "afterSale.List";
/// `afterSale.Detail` (售后详情): `after_sale_id`; answer `data{process_info{after_sale_info},
/// order_info{shop_order_id, sku_order_infos[]}}`.
pub const DETAIL_METHOD: &str = "afterSale.Detail";
/// `afterSale.operate` (售后审核): `type`, `items[{aftersale_id, reason, remark, evidence,
/// logistics, reject_reason_code, update_time}]`; answer `data{items[{aftersale_id,
/// status_code, status_msg}]}`.
pub const OPERATE_METHOD: &str = "afterSale.operate";
/// `type` 201: 同意仅退款 (a refund-only after-sale after shipment).
pub const AGREE_REFUND: i64 = 201;
/// `type` 401: 同意售前退申请 (a whole-order refund before shipment).
pub const AGREE_PRESALE_REFUND: i64 = 401;
/// `type` 101: 同意退货申请（一次审核） — needs `logistics.receiver_address_id`.
pub const AGREE_RETURN_APPLY: i64 = 101;
/// `type` 111: 同意退货（二次审核）: the returned goods arrived; refund.
pub const AGREE_RETURN: i64 = 111;
/// `type` 102: 拒绝退货申请 (a return waiting for the first answer).
pub const REFUSE_RETURN_APPLY: i64 = 102;
/// `type` 112: 拒绝退货（二次审核） (the returned goods arrived).
pub const REFUSE_RETURN: i64 = 112;
/// `type` 202: 拒绝仅退款.
pub const REFUSE_REFUND: i64 = 202;
/// The refusals' `type`s.
pub const REFUSE_TYPES: [i64; 3] = [REFUSE_RETURN_APPLY, REFUSE_RETURN, REFUSE_REFUND];
/// `afterSale.rejectReasonCodeList` (`/afterSale/rejectReasonCodeList`, 售后审核拒绝原因):
/// `aftersale_id` (a number); answer `data{items[{reject_reason_code, reason, evidence_need
/// (Y/N), evidence_description, image, order_type, pkg}]}`.
pub const REJECT_REASONS_METHOD: &str = "afterSale.rejectReasonCodeList";
/// How many after-sales the order's list asks for (the write-back reads at most
/// [`crate::ORDER_REFUNDS_MAX`]).
pub const LIST_SIZE: usize = crate::ORDER_REFUNDS_MAX;

code_map! {
    /// `aftersale_type` (bububa/jinritemai-go `message/refund`: 0 退货, 1 售后仅退款,
    /// 2 发货前整单退款; 3 换货 **assumed** from the exchange statuses).
    pub enum AftersaleType -> i64 {
        Return = "0" => 0,
        RefundOnly = "1" => 1,
        BeforeShipment = "2" => 2,
        Exchange = "3" => 3,
    }
}

code_map! {
    /// `aftersale_status` (qihang DouRefund.java l.42) as the decision write-back reads it:
    /// `Requested` = the seller can still agree or refuse (6, 11); `Refunded` = agreed (the
    /// return, the exchange or the payout under way or done); `Rejected` = refused or failed.
    pub enum DecisionStatus -> RefundState {
        ExchangeWaitBuyerReceive = "3" => Refunded,
        WaitSellerAgree = "6" => Requested,
        WaitBuyerReturn = "7" => Refunded,
        WaitSellerShip = "8" => Refunded,
        WaitSellerSecondAgree = "11" => Requested,
        Success = "12" => Refunded,
        ExchangeSuccess = "14" => Refunded,
        SellerRefusedOnce = "27" => Rejected,
        Failed = "28" => Rejected,
        SellerRefusedTwice = "29" => Rejected,
    }
}

/// A scalar Douyin writes as a number or a string, as text. The SDK's list sample writes ids as
/// quoted strings inside strings (`"\"6986…\""`): the quotes are dropped.
fn text(v: Option<&serde_json::Value>) -> Option<String> {
    let s = match v {
        Some(serde_json::Value::String(s)) => s.trim().trim_matches('"').trim().to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

fn id(v: Option<&serde_json::Value>, field: &str) -> Result<String, Rejected> {
    let s = text(v).ok_or_else(|| Rejected::missing(field))?;
    if s.len() > 32 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejected::bad_value(field, "a Douyin id (digits)"));
    }
    Ok(s)
}

/// A Douyin after-sale id: digits, at most 32.
fn check_id(refund_id: &str) -> Result<u64, Rejected> {
    refund_id
        .parse::<u64>()
        .ok()
        .filter(|_| refund_id.len() <= 32 && refund_id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Rejected::bad_value("aftersale_id", "a Douyin after-sale id (digits)"))
}

pub(crate) fn list_params(order_id: &str) -> Result<serde_json::Value, Rejected> {
    if order_id.is_empty() || !order_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejected::bad_value(
            "order_id",
            "a Douyin order id (digits)",
        ));
    }
    Ok(serde_json::json!({ "order_id": order_id, "page": 0, "size": LIST_SIZE }))
}

pub(crate) fn detail_params(refund_id: &str) -> Result<serde_json::Value, Rejected> {
    check_id(refund_id)?;
    Ok(serde_json::json!({ "after_sale_id": refund_id }))
}

/// `aftersale_status` → the write-back's state; an unknown code is refused.
fn state(raw: &str, field: &str) -> Result<RefundState, Rejected> {
    DecisionStatus::parse(raw)
        .map(DecisionStatus::target)
        .ok_or_else(|| Rejected::unknown_status(field, raw))
}

/// The order's after-sales. Each names its line where its `related_order_info` has exactly one
/// entry.
pub(crate) fn parse_list(body: &[u8]) -> Result<Vec<ChannelRefund>, Rejected> {
    let v: serde_json::Value = wire::parse_json(body)?;
    let items = match v.pointer("/data/items") {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => return Err(Rejected::bad_value("data.items", "a list")),
    };
    items
        .iter()
        .take(crate::ORDER_REFUNDS_MAX)
        .enumerate()
        .map(|(i, item)| {
            let f = |n: &str| format!("data.items[{i}].{n}");
            let a = item.get("aftersale_info");
            let o = item.get("order_info");
            let raw = text(a.and_then(|a| a.get("aftersale_status")))
                .ok_or_else(|| Rejected::missing(&f("aftersale_info.aftersale_status")))?;
            let related = o
                .and_then(|o| o.get("related_order_info"))
                .and_then(serde_json::Value::as_array);
            let line = match related.map(Vec::as_slice) {
                Some([one]) => Some(id(
                    one.get("sku_order_id"),
                    &f("order_info.related_order_info[0].sku_order_id"),
                )?),
                _ => None,
            };
            Ok(ChannelRefund {
                refund_id: id(
                    a.and_then(|a| a.get("aftersale_id")),
                    &f("aftersale_info.aftersale_id"),
                )?,
                external_order_id: id(
                    o.and_then(|o| o.get("shop_order_id")),
                    &f("order_info.shop_order_id"),
                )?,
                external_line_id: line,
                state: state(&raw, &f("aftersale_info.aftersale_status"))?,
                raw_status: raw,
                phase: text(a.and_then(|a| a.get("aftersale_type"))),
                version: text(a.and_then(|a| a.get("update_time"))).and_then(|t| t.parse().ok()),
            })
        })
        .collect()
}

/// `afterSale.Detail`'s answer. `phase` carries `after_sale_type`, `version` `update_time` (the
/// decision call names it so Douyin refuses a decision on a changed after-sale).
pub(crate) fn parse(body: &[u8]) -> Result<ChannelRefund, Rejected> {
    let v: serde_json::Value = wire::parse_json(body)?;
    let a = v
        .pointer("/data/process_info/after_sale_info")
        .filter(|a| a.is_object())
        .ok_or_else(|| Rejected::missing("data.process_info.after_sale_info"))?;
    let o = v.pointer("/data/order_info");
    let raw = text(a.get("after_sale_status"))
        .ok_or_else(|| Rejected::missing("after_sale_info.after_sale_status"))?;
    let skus = o
        .and_then(|o| o.get("sku_order_infos"))
        .and_then(serde_json::Value::as_array);
    let line = match skus.map(Vec::as_slice) {
        Some([one]) => Some(id(
            one.get("sku_order_id"),
            "order_info.sku_order_infos[0].sku_order_id",
        )?),
        _ => None,
    };
    let version = match text(a.get("update_time")) {
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| Rejected::bad_value("after_sale_info.update_time", "Unix seconds"))?,
        ),
        None => None,
    };
    Ok(ChannelRefund {
        refund_id: id(a.get("after_sale_id"), "after_sale_info.after_sale_id")?,
        external_order_id: id(
            o.and_then(|o| o.get("shop_order_id")),
            "order_info.shop_order_id",
        )?,
        external_line_id: line,
        state: state(&raw, "after_sale_info.after_sale_status")?,
        raw_status: raw,
        phase: text(a.get("after_sale_type")),
        version,
    })
}

/// `afterSale.operate`'s parameters for an agreement: `type` by the after-sale's type and status.
/// A return or exchange still waiting for the first answer needs the shop's return address id
/// (`logistics.receiver_address_id`, from `/address/list`), which orderhub does not keep:
/// refused before any call. A refusal needs a reason code: [`refusal_params`] (here
/// `missing_field reject_reason_code`).
pub(crate) fn decision_params(
    r: &ChannelRefund,
    d: &RefundDecision,
) -> Result<serde_json::Value, Rejected> {
    if let RefundDecision::Refuse { reason } = d {
        return refusal_params(r, reason, None);
    }
    check_id(&r.refund_id)?;
    let kind = r
        .phase
        .as_deref()
        .and_then(AftersaleType::parse)
        .ok_or_else(|| Rejected::missing("after_sale_type"))?;
    let status = DecisionStatus::parse(&r.raw_status);
    let address = || {
        Rejected::at(
            "missing_field",
            "receiver_address_id",
            "agreeing to a Douyin return or exchange needs the shop's return address id, which orderhub does not keep: agree on Douyin",
        )
    };
    let ty = match (kind, status) {
        (AftersaleType::RefundOnly, Some(DecisionStatus::WaitSellerAgree)) => AGREE_REFUND,
        (AftersaleType::BeforeShipment, Some(DecisionStatus::WaitSellerAgree)) => {
            AGREE_PRESALE_REFUND
        }
        (AftersaleType::Return, Some(DecisionStatus::WaitSellerSecondAgree)) => AGREE_RETURN,
        (AftersaleType::Return | AftersaleType::Exchange, _) => return Err(address()),
        _ => {
            return Err(Rejected::bad_value(
                "after_sale_status",
                "an after-sale waiting for the seller",
            ));
        }
    };
    let mut item = serde_json::json!({ "aftersale_id": r.refund_id });
    if let Some(v) = r.version {
        item["update_time"] = serde_json::Value::from(v);
    }
    Ok(serde_json::json!({ "type": ty, "items": [item] }))
}

/// The refusal's `type` by the after-sale's type and status: a refund-only after-sale waiting
/// (202), a return waiting for the first (102) or second answer (112). A refund before shipment
/// is refused by shipping and an exchange is not built: `not_supported` (the case records
/// `no_call`); an after-sale not waiting for the seller is a `bad_value`.
fn refusal_type(r: &ChannelRefund) -> Result<i64, Rejected> {
    check_id(&r.refund_id)?;
    let kind = r
        .phase
        .as_deref()
        .and_then(AftersaleType::parse)
        .ok_or_else(|| Rejected::missing("after_sale_type"))?;
    match (kind, DecisionStatus::parse(&r.raw_status)) {
        (AftersaleType::RefundOnly, Some(DecisionStatus::WaitSellerAgree)) => Ok(REFUSE_REFUND),
        (AftersaleType::Return, Some(DecisionStatus::WaitSellerAgree)) => Ok(REFUSE_RETURN_APPLY),
        (AftersaleType::Return, Some(DecisionStatus::WaitSellerSecondAgree)) => Ok(REFUSE_RETURN),
        (AftersaleType::BeforeShipment | AftersaleType::Exchange, _) => Err(Rejected::at(
            "not_supported",
            "after_sale_type",
            "a Douyin refund before shipment is refused by shipping, an exchange on Douyin",
        )),
        _ => Err(Rejected::bad_value(
            "after_sale_status",
            "an after-sale waiting for the seller",
        )),
    }
}

/// `afterSale.rejectReasonCodeList`'s parameters: the after-sale's id (a number in the SDK's
/// param), for an after-sale Douyin would take a refusal of.
pub(crate) fn reasons_params(r: &ChannelRefund) -> Result<serde_json::Value, Rejected> {
    refusal_type(r)?;
    Ok(serde_json::json!({ "aftersale_id": check_id(&r.refund_id)? }))
}

/// The reasons list: `reject_reason_code` (a number), `reason`, `evidence_need`. Anything but
/// `N` counts as needing evidence (**assumed**: a missing flag is not taken as "none needed").
pub(crate) fn parse_reasons(body: &[u8]) -> Result<Vec<crate::RefusalReason>, Rejected> {
    let v: serde_json::Value = wire::parse_json(body)?;
    let items = match v.pointer("/data/items") {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => return Err(Rejected::bad_value("data.items", "a list")),
    };
    items
        .iter()
        .take(crate::REFUSAL_REASONS_MAX)
        .enumerate()
        .map(|(i, it)| {
            let code = text(it.get("reject_reason_code"))
                .filter(|c| c.parse::<i64>().is_ok())
                .ok_or_else(|| {
                    Rejected::bad_value(&format!("data.items[{i}].reject_reason_code"), "a number")
                })?;
            Ok(crate::RefusalReason {
                code,
                text: text(it.get("reason")).unwrap_or_default(),
                needs_evidence: text(it.get("evidence_need")).as_deref() != Some("N"),
            })
        })
        .collect()
}

/// `afterSale.operate`'s parameters for a refusal with the chosen reason code: `reason` is the
/// code's text, `remark` the seller's reason (trimmed, cut to [`crate::REFUSAL_CHARS_MAX`]; the
/// code's text where the seller gave none — Douyin requires both), `update_time` the version.
pub(crate) fn refusal_params(
    r: &ChannelRefund,
    reason: &str,
    code: Option<&crate::RefusalReason>,
) -> Result<serde_json::Value, Rejected> {
    let ty = refusal_type(r)?;
    let code = code.ok_or_else(|| Rejected::missing("reject_reason_code"))?;
    let n: i64 = code
        .code
        .parse()
        .map_err(|_| Rejected::bad_value("reject_reason_code", "a number"))?;
    let cut = |s: &str| -> String { s.trim().chars().take(crate::REFUSAL_CHARS_MAX).collect() };
    let remark = match cut(reason) {
        s if s.is_empty() => cut(&code.text),
        s => s,
    };
    let mut item = serde_json::json!({
        "aftersale_id": r.refund_id,
        "reason": cut(&code.text),
        "remark": remark,
        "reject_reason_code": n,
    });
    if let Some(v) = r.version {
        item["update_time"] = serde_json::Value::from(v);
    }
    Ok(serde_json::json!({ "type": ty, "items": [item] }))
}

/// The agreement's answer: each item's `status_code` 0 (success envelope errors were taken by
/// `api_error` before); another code is the channel's refusal of that item.
pub(crate) fn ack(body: &[u8]) -> Result<(), crate::ApiError> {
    let v: serde_json::Value = wire::parse_json(body)?;
    let Some(items) = v
        .pointer("/data/items")
        .and_then(serde_json::Value::as_array)
    else {
        // An envelope of success without items (the SDK types `items` but the gateway's success
        // is its `code` 10000): acknowledged.
        return match v.get("code").and_then(|c| text(Some(c))) {
            Some(c) if c == super::SUCCESS_CODE => Ok(()),
            _ => Err(Rejected::missing("data.items").into()),
        };
    };
    for it in items {
        match text(it.get("status_code")).as_deref() {
            None | Some("0") => {}
            Some(code) => {
                return Err(crate::ApiError::Api {
                    code: format!("status_code/{code}"),
                    message: text(it.get("status_msg"))
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect(),
                });
            }
        }
    }
    Ok(())
}

//! The seller's agreement to a Pinduoduo after-sale (SOURCES.md § Refund decisions).
//!
//! PDD's order names no after-sale id: `pdd.refund.information.get` (售后单详情) takes `order_sn`
//! and, optionally, `after_sales_id` — by the order alone it answers the order's after-sale (its
//! `id`, `after_sales_status`, `sku_id`). Agreeing is `pdd.refund.agree` with a `request` object
//! `{after_sales_id, order_sn, operate_desc}`, answered `response.result{succ, message}`
//! (lywzx/pdd-node-sdk and SchafferJ/open-pdd). No refusal call was found: a refusal answers
//! `not_supported` before any call (the write-back records `no_call`).
//!
//! The detail read needs the order as well as the after-sale id, and the trait's read takes a
//! refund id only: a PDD refund id is `{order_sn}:{after_sales_id}`.

use serde_json::Value;

use crate::wire;
use crate::{ApiError, ChannelRefund, RefundDecision, Rejected};

/// 售后单详情接口: `order_sn` (required), `after_sales_id` (optional).
pub const INFO_TYPE: &str = "pdd.refund.information.get";
/// 同意退款: `request{after_sales_id, order_sn, operate_desc}`.
pub const AGREE_TYPE: &str = "pdd.refund.agree";
/// `operate_desc` (退款备注，商家留言) of an agreement.
pub const AGREE_DESC: &str = "approved in orderhub";

code_map! {
    /// `after_sales_status` (the SDKs' field comment): 0 无售后; 2 买家申请退款，待商家处理;
    /// 3 退货退款，待商家处理; 4 商家同意退款，退款中; 5 平台同意退款，退款中; 6 驳回退款，待买家处理;
    /// 7 已同意退货退款，待用户发货; 8 平台处理中; 9 平台拒绝退款，退款关闭; 10 退款成功; 11 买家撤销;
    /// 12 买家逾期未处理，退款失败; 13 买家逾期，超过有效期; 14–18 换货补寄 (待商家处理, 待用户处理,
    /// 成功, 失败, 待用户确认完成); 21 待商家同意维修; 22 待用户确认发货; 24 维修关闭; 25 维修成功;
    /// 27 待用户确认收货; 31 已同意拒收退款，待用户拒收; 32 补寄待商家发货. Agreed (by the seller or
    /// the platform) counts as `Refunded`: nothing is left to agree to.
    pub enum AfterSalesStatus -> crate::RefundState {
        NoAfterSale = "0" => None,
        RefundWaitSeller = "2" => Requested,
        ReturnWaitSeller = "3" => Requested,
        SellerAgreed = "4" => Refunded,
        PlatformAgreed = "5" => Refunded,
        SellerRefused = "6" => Rejected,
        ReturnAgreed = "7" => Refunded,
        PlatformHandling = "8" => Requested,
        PlatformRefused = "9" => Rejected,
        Refunded = "10" => Refunded,
        BuyerWithdrew = "11" => Rejected,
        BuyerOverdue = "12" => Rejected,
        Expired = "13" => Rejected,
        ExchangeWaitSeller = "14" => Requested,
        ExchangeWaitBuyer = "15" => Requested,
        ExchangeDone = "16" => Refunded,
        ExchangeFailed = "17" => Rejected,
        ExchangeWaitConfirm = "18" => Requested,
        RepairWaitSeller = "21" => Requested,
        RepairWaitShip = "22" => Requested,
        RepairClosed = "24" => Rejected,
        RepairDone = "25" => Refunded,
        WaitBuyerReceipt = "27" => Requested,
        RejectionAgreed = "31" => Refunded,
        ResendWaitSeller = "32" => Requested,
    }
}

/// A PDD order sn: `yymmdd-` and digits.
fn check_order(sn: &str) -> Result<(), Rejected> {
    let ok =
        !sn.is_empty() && sn.len() <= 40 && sn.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(Rejected::bad_value("order_sn", "a PDD order sn"));
    }
    Ok(())
}

/// `{order_sn}:{after_sales_id}` → its parts.
fn split(refund_id: &str) -> Result<(&str, u64), Rejected> {
    let bad = || Rejected::bad_value("refund_id", "a PDD refund id: {order_sn}:{after_sales_id}");
    let (sn, id) = refund_id.split_once(':').ok_or_else(bad)?;
    check_order(sn).map_err(|_| bad())?;
    if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok((sn, id.parse().map_err(|_| bad())?))
}

/// A call's business parameters.
type Params = Vec<(String, String)>;

pub(crate) fn order_params(order_sn: &str) -> Result<Params, Rejected> {
    check_order(order_sn)?;
    Ok(vec![("order_sn".into(), order_sn.into())])
}

pub(crate) fn get_params(refund_id: &str) -> Result<Params, Rejected> {
    let (sn, id) = split(refund_id)?;
    Ok(vec![
        ("after_sales_id".into(), id.to_string()),
        ("order_sn".into(), sn.into()),
    ])
}

/// The detail answer's fields: under `refund_information_get_response` (**assumed** root, as
/// PDD's other `…_get_response` keys; the SDKs give the fields only), or at the root.
pub(crate) fn parse(body: &[u8]) -> Result<ChannelRefund, Rejected> {
    let v: Value = wire::parse_json(body)?;
    let r = v
        .get("refund_information_get_response")
        .filter(|r| r.is_object())
        .unwrap_or(&v);
    let raw = match r.get("after_sales_status") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_owned(),
        None | Some(Value::Null) => return Err(Rejected::missing("after_sales_status")),
        Some(_) => return Err(Rejected::bad_value("after_sales_status", "a status number")),
    };
    let state = AfterSalesStatus::parse(&raw)
        .ok_or_else(|| Rejected::unknown_status("after_sales_status", &raw))?
        .target();
    let order = crate::level_id(r.get("order_sn"), "order_sn")?;
    let id = crate::level_id(r.get("id"), "id")?;
    Ok(ChannelRefund {
        refund_id: format!("{order}:{id}"),
        external_order_id: order,
        external_line_id: match r.get("sku_id") {
            None | Some(Value::Null) => None,
            v => Some(crate::level_id(v, "sku_id")?),
        },
        state,
        raw_status: raw,
        phase: None,
        version: None,
    })
}

/// Agreeing: `request` is the JSON object the SDKs send. Refusing has no call.
pub(crate) fn decision_params(r: &ChannelRefund, d: &RefundDecision) -> Result<Params, Rejected> {
    if let RefundDecision::Refuse { .. } = d {
        return Err(crate::refund_decision_unsupported());
    }
    let (sn, id) = split(&r.refund_id)?;
    let request = serde_json::json!({
        "after_sales_id": id,
        "order_sn": sn,
        "operate_desc": AGREE_DESC,
    });
    Ok(vec![("request".into(), request.to_string())])
}

/// `response.result.succ`: true is the acknowledgement; false the channel's refusal (an `Api`
/// error with its `message`, tried again).
pub(crate) fn ack(body: &[u8]) -> Result<(), ApiError> {
    let v: Value = wire::parse_json(body)?;
    let r = v
        .pointer("/response/result")
        .filter(|r| r.is_object())
        .ok_or_else(|| Rejected::missing("response.result"))?;
    match r.get("succ") {
        Some(Value::Bool(true)) => Ok(()),
        Some(Value::Bool(false)) => Err(ApiError::Api {
            code: "succ_false".into(),
            message: r
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
        }),
        _ => Err(Rejected::missing("response.result.succ").into()),
    }
}

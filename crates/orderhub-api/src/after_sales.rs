//! After-sales cases on the wire: the open request, the action bodies and the case view.

use crate::orders::DecimalString;
use chrono::{DateTime, Utc};
use orderhub_domain::after_sales::{AfterSaleCase, CaseKind, CaseSource, Effect, LineClaim};
use orderhub_domain::{Currency, Money, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One line of a case to open.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseLineIn {
    /// The order line (`lines[].line_id` of the order).
    pub line_id: u32,
    /// Units of the line, at least 1; over every case of the line at most its quantity.
    pub quantity: u32,
    /// The money to refund for them, a decimal string. Default: what was paid for the units
    /// (the whole line: exactly its paid amount). Over every case of the line at most its paid
    /// amount, to the cent.
    #[serde(default)]
    pub amount: Option<DecimalString>,
}

/// The body of `POST /v1/orders/{id}/after-sales`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCaseRequest {
    /// `refund_only`, `return_and_refund` or `exchange` (delivered goods only; the lines claim
    /// units, no money: `amount` is ignored and the case's amount is 0).
    pub kind: String,
    /// 1 to 100 lines.
    pub lines: Vec<CaseLineIn>,
    /// Why (1 to 500 characters).
    pub reason: String,
}

impl OpenCaseRequest {
    /// The kind, the lines (amounts parsed in the order's currency) and the reason.
    pub fn into_parts(
        self,
        currency: Currency,
    ) -> Result<(CaseKind, Vec<LineClaim>, String), ValidationError> {
        let kind = CaseKind::parse(self.kind.trim())?;
        if self.lines.len() > orderhub_domain::after_sales::CASE_LINES_MAX {
            return Err(ValidationError::new(
                "lines",
                "too_many",
                format!(
                    "a case may have at most {} lines",
                    orderhub_domain::after_sales::CASE_LINES_MAX
                ),
            ));
        }
        let mut lines = Vec::with_capacity(self.lines.len());
        for (i, l) in self.lines.into_iter().enumerate() {
            let amount = l
                .amount
                .map(|a| Money::parse(&format!("lines[{i}].amount"), &a.0, currency))
                .transpose()?;
            lines.push(LineClaim {
                line_id: l.line_id,
                quantity: l.quantity,
                amount,
            });
        }
        Ok((kind, lines, self.reason))
    }
}

/// The body of `POST /v1/after-sales/{id}/approve` (may be empty).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The effect the approver accepts when the order moved on since the case was opened
    /// (`stop_lines`, `intercept_at_warehouse`, `intercept_parcel`, `money_only`,
    /// `expect_return`). Without it, approval is refused with 409 `after_sale_effect_changed`
    /// when the effect is no longer the case's.
    #[serde(default)]
    pub effect: Option<String>,
}

impl ApproveRequest {
    pub fn effect(&self) -> Result<Option<Effect>, ValidationError> {
        self.effect.as_deref().map(Effect::parse).transpose()
    }
}

/// The body of `POST /v1/after-sales/{id}/refuse`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuseRequest {
    /// Why (1 to 500 characters).
    pub reason: String,
}

/// The body of `POST /v1/after-sales/{id}/receive`: the goods arrived and went through QC.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    /// true: back on hand; false: into quarantine (never sellable), linked to the case.
    pub qc_passed: bool,
    /// Where the goods came back to; default: the order's warehouse.
    #[serde(default)]
    pub warehouse_id: Option<String>,
    /// What QC found (1 to 500 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// Another SKU to ship instead of a line's in an exchange.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplacementIn {
    /// A line of the case.
    pub line_id: u32,
    /// The SKU to ship instead (a defined SKU: another size, colour …).
    pub sku: String,
}

/// The body of `POST /v1/after-sales/{id}/exchange` (may be empty: every line ships its own SKU
/// again).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// At most one per line of the case (at most 100).
    #[serde(default)]
    pub replacements: Vec<ReplacementIn>,
}

impl ExchangeRequest {
    /// The replacements as (line, SKU), bounded and each SKU well-formed.
    pub fn replacements(&self) -> Result<Vec<(u32, orderhub_domain::Sku)>, ValidationError> {
        if self.replacements.len() > orderhub_domain::after_sales::CASE_LINES_MAX {
            return Err(ValidationError::new(
                "replacements",
                "too_many",
                format!(
                    "at most {} replacements",
                    orderhub_domain::after_sales::CASE_LINES_MAX
                ),
            ));
        }
        self.replacements
            .iter()
            .enumerate()
            .map(|(i, r)| {
                orderhub_domain::Sku::parse(r.sku.trim())
                    .map(|s| (r.line_id, s))
                    .map_err(|e| {
                        ValidationError::new(format!("replacements[{i}].sku"), e.rule, e.message)
                    })
            })
            .collect()
    }
}

/// The body of refund and close (empty).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseLineView {
    pub line_id: u32,
    pub sku: String,
    pub quantity: u32,
    /// Decimal string.
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseStepView {
    pub at: DateTime<Utc>,
    pub action: String,
    pub from: String,
    pub to: String,
    pub actor: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QcView {
    pub passed: bool,
    pub warehouse_id: String,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// How the seller's decision on a channel-opened case reached the channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelWritebackView {
    /// `approve` or `refuse`.
    pub decision: String,
    /// `acknowledged`, `already_decided` (the channel's refund showed it; nothing sent) or
    /// `no_call` (the channel has no call for it).
    pub outcome: String,
    /// The channel's refund id the decision was for.
    pub refund_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// One row of a case's quarantine ledger.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuarantineView {
    pub sku: String,
    pub warehouse_id: String,
    pub quantity: i64,
    /// The quarantine position's quantity after the row.
    pub quantity_after: i64,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseView {
    pub case_id: Uuid,
    pub order_id: Uuid,
    pub shop_id: String,
    /// refund_only, return_and_refund, exchange
    pub kind: String,
    /// requested, approved, refused, goods_returning, received, qc_passed, qc_failed, refunded,
    /// exchanged, closed
    pub state: String,
    /// What approving does (did) to the order: stop_lines, intercept_at_warehouse,
    /// intercept_parcel, money_only, expect_return.
    pub effect: Option<String>,
    pub lines: Vec<CaseLineView>,
    /// Σ of the lines' amounts, a decimal string.
    pub amount: String,
    pub reason: String,
    /// operator or channel
    pub source: String,
    /// The order's exception this case is linked to (`after_sale`), if any.
    pub stop: Option<String>,
    pub qc: Option<QcView>,
    pub steps: Vec<CaseStepView>,
    /// An exchange's replacement order (kind `exchange`), once `exchanged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement_order_id: Option<Uuid>,
    /// The operator's reason, for a refused case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// A channel-opened case: how the seller's decision reached the channel, once it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_writeback: Option<ChannelWritebackView>,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The order after the step (action answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_version: Option<u64>,
    /// The case's quarantine ledger rows (single-case reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Vec<QuarantineView>>,
}

impl CaseView {
    pub fn new(c: &AfterSaleCase) -> CaseView {
        CaseView {
            case_id: c.case_id,
            order_id: c.order_id.as_uuid(),
            shop_id: c.shop_id.as_str().to_owned(),
            kind: c.kind.as_str().to_owned(),
            state: c.state.as_str().to_owned(),
            effect: c.effect.map(|e| e.as_str().to_owned()),
            lines: c
                .lines
                .iter()
                .map(|l| CaseLineView {
                    line_id: l.line_id,
                    sku: l.sku.as_str().to_owned(),
                    quantity: l.quantity,
                    amount: l.amount.to_string(),
                })
                .collect(),
            amount: c.amount.to_string(),
            reason: c.reason.clone(),
            source: match c.source {
                CaseSource::Operator => "operator".into(),
                CaseSource::Channel { .. } => "channel".into(),
            },
            stop: c.stop.clone(),
            qc: c.qc.as_ref().map(|q| QcView {
                passed: q.passed,
                warehouse_id: q.warehouse_id.as_str().to_owned(),
                note: q.note.clone(),
                at: q.at,
            }),
            steps: c
                .steps
                .iter()
                .map(|s| CaseStepView {
                    at: s.at,
                    action: s.action.as_str().to_owned(),
                    from: s.from.as_str().to_owned(),
                    to: s.to.as_str().to_owned(),
                    actor: s.actor.clone(),
                })
                .collect(),
            replacement_order_id: c.replacement_order_id.map(|o| o.as_uuid()),
            refusal: c.refusal.clone(),
            channel_writeback: c.channel_writeback.as_ref().map(|w| ChannelWritebackView {
                decision: w.decision.as_str().to_owned(),
                outcome: w.outcome.as_str().to_owned(),
                refund_id: w.refund_id.clone(),
                at: w.at,
            }),
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
            order_status: None,
            order_version: None,
            quarantine: None,
        }
    }
}

/// A page of cases.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CasePage {
    pub cases: Vec<CaseView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

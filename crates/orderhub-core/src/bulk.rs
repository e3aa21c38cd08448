//! Bulk actions (issue 21): one action over many orders, each order in a transaction of its own
//! through the same use case its single action runs, so a refusal of one order stops none of the
//! others. [`BulkAction::check`] is the preview: what the use case would decide for the order as
//! read, without writing — the lifecycle table, the retry and carrier-switch guards, the edit
//! guards and the tenant's approval rules. The run decides again in each order's transaction.

use crate::auth::Permission;
use crate::error::CoreError;
use crate::ports::Tx;
use crate::usecases::{self, Actor};
use chrono::{DateTime, Utc};
use orderhub_domain::edit::{EditRules, OrderEdit, editable};
use orderhub_domain::ids::CarrierCode;
use orderhub_domain::lifecycle::{self, Command, CommandKind, Policy, TransitionError};
use orderhub_domain::{Order, OrderId};
use uuid::Uuid;

/// Orders one bulk request acts on at most.
pub const BULK_MAX: usize = 500;

/// What a bulk request does to each order.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkAction {
    /// An order move: approve, hold (with a reason), cancel (with a reason).
    Move(Command),
    Retry,
    SwitchCarrier(CarrierCode),
    /// The seller memo (`None`: cleared), as an order edit with a reason.
    SellerMemo {
        memo: Option<String>,
        reason: String,
    },
}

/// What the preview says of one order that would not be refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Would {
    /// The action would be applied.
    Apply,
    /// The edit would wait for approval (the tenant's rules name why).
    AwaitApproval(Vec<&'static str>),
}

impl BulkAction {
    /// The action's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            BulkAction::Move(c) => c.kind().as_str(),
            BulkAction::Retry => "retry",
            BulkAction::SwitchCarrier(_) => "switch_carrier",
            BulkAction::SellerMemo { .. } => "set_seller_memo",
        }
    }

    /// The permission the single action needs (the route of each single action declares the
    /// same one): checked once per bulk request, before any order is read.
    pub fn permission(&self) -> Permission {
        match self {
            BulkAction::Move(c) => Permission::Transition(c.kind()),
            BulkAction::Retry | BulkAction::SwitchCarrier(_) => Permission::FulfillmentSteer,
            BulkAction::SellerMemo { .. } => Permission::OrdersEdit,
        }
    }

    /// The moves a bulk request may make: those a person makes on many orders at once.
    pub const MOVES: [CommandKind; 3] =
        [CommandKind::Approve, CommandKind::Hold, CommandKind::Cancel];

    fn edit(&self) -> Option<OrderEdit> {
        match self {
            BulkAction::SellerMemo { memo, .. } => Some(OrderEdit {
                seller_memo: Some(memo.clone()),
                ..OrderEdit::default()
            }),
            _ => None,
        }
    }

    /// The preview for one order as read: what the action's use case would decide, short of
    /// writing. `pending_edit`: the order's pending edit request, if any.
    pub fn check(
        &self,
        order: &Order,
        policy: &Policy,
        rules: &EditRules,
        pending_edit: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Would, CoreError> {
        match self {
            BulkAction::Move(cmd) => lifecycle::apply(order, cmd, policy, now)
                .map(|_| Would::Apply)
                .map_err(|e| match e {
                    TransitionError::NotAllowed {
                        command,
                        status,
                        version,
                    } => CoreError::NotAllowed {
                        command,
                        status,
                        version,
                    },
                    TransitionError::Stopped {
                        command,
                        exception,
                        status,
                        version,
                    } => CoreError::Stopped {
                        command,
                        exception,
                        status,
                        version,
                    },
                    TransitionError::Guard(v) => CoreError::Validation(v),
                }),
            BulkAction::Retry if !usecases::retry_allowed(order.status) => Err(CoreError::NotNow {
                action: "retry",
                status: order.status,
                version: order.version,
            }),
            BulkAction::Retry => Ok(Would::Apply),
            BulkAction::SwitchCarrier(c) => {
                if !usecases::carrier_switch_allowed(order.status) {
                    return Err(CoreError::NotNow {
                        action: "switch the carrier of",
                        status: order.status,
                        version: order.version,
                    });
                }
                if !policy.carrier_whitelist.contains(c) {
                    return Err(CoreError::Validation(
                        orderhub_domain::ValidationError::new(
                            "carrier",
                            "carrier_not_whitelisted",
                            format!("carrier {c} is not on this tenant's carrier whitelist"),
                        ),
                    ));
                }
                Ok(Would::Apply)
            }
            BulkAction::SellerMemo { .. } => {
                if !editable(order.status) {
                    return Err(crate::edits::not_editable(order));
                }
                if let Some(id) = pending_edit {
                    return Err(crate::edits::pending_exists(order, id));
                }
                let edit = self.edit().unwrap_or_default();
                let applied = edit.apply(order)?;
                let why = rules.reasons(order, &applied.changes);
                Ok(if why.is_empty() {
                    Would::Apply
                } else {
                    Would::AwaitApproval(why)
                })
            }
        }
    }

    /// Runs the action on one order in the caller's transaction, through the single action's
    /// use case. Returns the order as stored after it, and whether an edit waits for approval.
    pub fn run(
        &self,
        tx: &mut dyn Tx,
        actor: &Actor,
        order_id: OrderId,
        now: DateTime<Utc>,
    ) -> Result<(Order, bool), CoreError> {
        match self {
            BulkAction::Move(cmd) => {
                usecases::transition(tx, actor, order_id, cmd, now).map(|o| (o, false))
            }
            BulkAction::Retry => {
                usecases::request_retry(tx, actor, order_id, now).map(|o| (o, false))
            }
            BulkAction::SwitchCarrier(c) => {
                usecases::switch_carrier(tx, actor, order_id, c.clone(), now).map(|o| (o, false))
            }
            BulkAction::SellerMemo { reason, .. } => {
                let edit = self.edit().unwrap_or_default();
                let r = crate::edits::request_edit(tx, actor, order_id, edit, reason, now)?;
                match r.order {
                    Some(o) => Ok((o, false)),
                    None => {
                        let o = tx
                            .order_get(&actor.principal.tenant_id, order_id)?
                            .ok_or(CoreError::NotFound)?;
                        Ok((o, true))
                    }
                }
            }
        }
    }
}

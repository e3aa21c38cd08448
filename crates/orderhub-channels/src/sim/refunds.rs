//! The simulator's refunds: opened by a test ([`super::SimHandle::open_refund`]) on an order's
//! line (the order's detail shows the line's refund status and id), read by the channel's refund
//! call and decided by the seller's decision calls, which are recorded
//! ([`super::SimHandle::refund_decisions`]) — a repeat of a decision already taken is answered as
//! the channel does and not recorded twice.

use std::sync::atomic::Ordering;

use axum::response::Response;
use chrono::Utc;
use serde::Serialize;

use super::{Engine, SimCall, SimErr, bump};
use crate::{ChannelRefund, RefundDecision, RefundState};

/// One refund the simulator serves.
#[derive(Debug, Clone)]
pub(crate) struct SimRefund {
    pub refund: ChannelRefund,
    /// Agreed to (Taobao: reviewed) by the seller.
    pub agreed: bool,
}

/// A seller's decision the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    pub refund_id: String,
    pub order_id: String,
    pub line_id: Option<String>,
    pub decision: RefundDecision,
    /// The channel's reason code a refusal named (channels whose refusal needs one).
    pub reason_code: Option<String>,
}

#[derive(Default)]
pub(crate) struct Refunds {
    pub list: parking_lot::Mutex<Vec<SimRefund>>,
    pub decisions: parking_lot::Mutex<Vec<DecisionRecord>>,
    /// Decision calls still to answer with the channel's system error.
    pub failures: std::sync::atomic::AtomicU32,
    pub serial: std::sync::atomic::AtomicU64,
}

impl Engine {
    /// Opens a refund on line `line_id` of order `order_id` as a buyer would: the line's refund
    /// status becomes the channel's "waiting for the seller" code with the refund's id, the order
    /// modified a second later. `None` for an order or line the simulator does not serve.
    pub(crate) fn open_refund(&self, order_id: &str, line_id: &str) -> Option<String> {
        let n = self.refunds.serial.fetch_add(1, Ordering::Relaxed);
        let refund_id = format!("{}", 70_000_000_000_000u64 + n);
        let code = self.wire.refund_code(RefundState::Requested).to_owned();
        let mut found = false;
        let o = self.edit_order(order_id, 1, |o| {
            if let Some(l) = o.lines.iter_mut().find(|l| l.external_line_id == line_id) {
                l.refund = RefundState::Requested;
                l.refund_raw = Some(code.clone());
                l.refund_id = Some(refund_id.clone());
                found = true;
            }
        })?;
        if !found {
            return None;
        }
        let phase = match o.canonical {
            crate::CanonicalStatus::Completed => "aftersale",
            _ => "onsale",
        };
        self.refunds.list.lock().push(SimRefund {
            refund: ChannelRefund {
                refund_id: refund_id.clone(),
                external_order_id: order_id.to_owned(),
                external_line_id: Some(line_id.to_owned()),
                state: RefundState::Requested,
                raw_status: code,
                phase: Some(phase.into()),
                version: Some(o.modified_at.timestamp_millis()),
            },
            agreed: false,
        });
        Some(refund_id)
    }

    /// A refund call, answered.
    pub(crate) fn refund_call(&self, call: SimCall) -> Response {
        match call {
            SimCall::RefundGet { refund_id } => self.refund_get(&refund_id),
            SimCall::OrderRefunds { order_id } => self.order_refunds(&order_id),
            SimCall::RefundDecision {
                refund_id,
                decision,
                version,
            } => self.refund_decide(&refund_id, decision, version),
            SimCall::RefusalReasons { refund_id } => self.refusal_reasons(refund_id.as_deref()),
            SimCall::CodedRefusal {
                refund_id,
                reason,
                code,
                version,
            } => {
                let d = RefundDecision::Refuse { reason };
                self.refund_decide_coded(&refund_id, d, version, Some(code))
            }
            _ => self.error(SimErr::BadRequest("not a refund call".into())),
        }
    }

    pub(crate) fn refund_get(&self, refund_id: &str) -> Response {
        let found = self
            .refunds
            .list
            .lock()
            .iter()
            .find(|r| r.refund.refund_id == refund_id)
            .cloned();
        match found {
            Some(r) => self.respond((200, self.wire.refund(&r.refund))),
            None => self.error(SimErr::NotFound),
        }
    }

    /// The read of one order's refunds: every refund opened on it, in the order opened.
    pub(crate) fn order_refunds(&self, order_id: &str) -> Response {
        let of_order: Vec<ChannelRefund> = self
            .refunds
            .list
            .lock()
            .iter()
            .filter(|r| r.refund.external_order_id == order_id)
            .map(|r| r.refund.clone())
            .collect();
        self.respond((200, self.wire.order_refunds(order_id, &of_order)))
    }

    /// A decision call: the channel's system error while failures are set; unknown refund → not
    /// found; a version other than the refund's → a bad request; a refusal of a refund not waiting
    /// for the seller → a bad request. An agreement repeated is answered with success and not
    /// recorded again (Taobao's review marks a refund; marking it twice changes nothing).
    pub(crate) fn refund_decide(
        &self,
        refund_id: &str,
        decision: RefundDecision,
        version: Option<i64>,
    ) -> Response {
        self.refund_decide_coded(refund_id, decision, version, None)
    }

    /// The refusal reasons the channel offers for a refund (an unknown one: not found), or the
    /// shop's (`None`).
    pub(crate) fn refusal_reasons(&self, refund_id: Option<&str>) -> Response {
        let Some(refund_id) = refund_id else {
            return self.respond((200, self.wire.refusal_reasons(None)));
        };
        let found = self
            .refunds
            .list
            .lock()
            .iter()
            .find(|r| r.refund.refund_id == refund_id)
            .cloned();
        match found {
            Some(r) => self.respond((200, self.wire.refusal_reasons(Some(&r.refund)))),
            None => self.error(SimErr::NotFound),
        }
    }

    /// A decision call, recording the reason code a refusal named (checked by the wire).
    pub(crate) fn refund_decide_coded(
        &self,
        refund_id: &str,
        decision: RefundDecision,
        version: Option<i64>,
        reason_code: Option<String>,
    ) -> Response {
        let failing = self
            .refunds
            .failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            bump(&self.settings.stats.errors);
            return self.respond(self.wire.refund_failed());
        }
        let mut list = self.refunds.list.lock();
        let Some(r) = list.iter_mut().find(|r| r.refund.refund_id == refund_id) else {
            return self.error(SimErr::NotFound);
        };
        if version.is_some_and(|v| Some(v) != r.refund.version) {
            return self.error(SimErr::BadRequest(
                "refund_version is not the refund's".into(),
            ));
        }
        let agree = matches!(decision, RefundDecision::Agree);
        match (r.refund.state, agree) {
            (RefundState::Requested, true) if r.agreed => {
                return self.respond((200, self.wire.refund_decided(true)));
            }
            (RefundState::Requested, _) => {}
            _ => {
                return self.error(SimErr::BadRequest(
                    "the refund is not waiting for the seller".into(),
                ));
            }
        }
        let record = DecisionRecord {
            refund_id: refund_id.to_owned(),
            order_id: r.refund.external_order_id.clone(),
            line_id: r.refund.external_line_id.clone(),
            decision,
            reason_code,
        };
        if agree {
            r.agreed = true;
        } else {
            let code = self.wire.refund_code(RefundState::Rejected).to_owned();
            r.refund.state = RefundState::Rejected;
            r.refund.raw_status = code.clone();
            r.refund.version = Some(Utc::now().timestamp_millis());
            let line = r.refund.external_line_id.clone();
            let order = r.refund.external_order_id.clone();
            drop(list);
            self.edit_order(&order, 1, |o| {
                if let Some(l) = o
                    .lines
                    .iter_mut()
                    .find(|l| Some(&l.external_line_id) == line.as_ref())
                {
                    l.refund = RefundState::Rejected;
                    l.refund_raw = Some(code);
                }
            });
        }
        self.refunds.decisions.lock().push(record);
        self.respond((200, self.wire.refund_decided(agree)))
    }
}

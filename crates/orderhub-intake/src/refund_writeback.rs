//! Refund write-back: when a seller decides an after-sales case the channel opened (the buyer's
//! refund on the channel), the decision goes back to the channel — agreed, or refused with the
//! operator's reason — acknowledged, retried with backoff by the event dispatcher (an in-process
//! target for `after_sale.approved` / `after_sale.refused`, as [`crate::writeback`] is for
//! shipments).
//!
//! For each such case of the order not yet written back ([`decision_to_write_back`]: decided by a
//! seller, not by the channel's own report), the target reads the order's detail from the channel
//! (the line's refund id), the refund itself (its status, and what the decision call names), and
//! sends the decision unless the refund shows it already. The outcome is recorded on the case
//! once (`channel_writeback`: acknowledged, already decided, or the channel has no call), with an
//! audit entry on the order: a decision recorded is never sent again, and a restart (the
//! dispatcher delivering the event again) sends only what is not recorded.
//!
//! Errors: a decision the adapter refuses to build, a refund the channel does not show, or the
//! channel's refusal of the answer (`Rejected`) are permanent; throttling, auth, transport and the
//! channel's errors are tried again.
//!
//! [`decision_to_write_back`]: orderhub_core::after_sales::decision_to_write_back

use chrono::Utc;
use futures::future::BoxFuture;
use orderhub_channels::{ApiError, ChannelKind, ChannelRefund, RefundDecision, RefundState};
use orderhub_core::after_sales::{SellerDecision, decision_to_write_back};
use orderhub_domain::after_sales::{AfterSaleCase, CaseAction, ChannelWriteback, WritebackOutcome};
use orderhub_domain::{Order, OrderId, TenantId};
use orderhub_events::{Delivery, Target, TargetError};
use orderhub_store::Store;
use uuid::Uuid;

pub struct RefundWriteBack {
    store: Store,
    http: orderhub_channels::client::HttpClient,
    id: Uuid,
}

fn retry(e: impl std::fmt::Display) -> TargetError {
    TargetError::retry(e.to_string())
}

/// How a channel's answer maps onto the dispatcher's retries (as [`crate::writeback`]).
fn mapped(e: ApiError) -> TargetError {
    match e {
        ApiError::Rejected(r) => TargetError::permanent(format!("{}: {}", r.rule, r.message)),
        e => TargetError::retry(format!("{e:?}")),
    }
}

/// The channel's form of a seller's decision.
fn decision_of(d: &SellerDecision) -> RefundDecision {
    match d.action {
        CaseAction::Refuse => RefundDecision::Refuse {
            reason: d.refusal.clone().unwrap_or_default(),
        },
        _ => RefundDecision::Agree,
    }
}

/// Whether the channel's refund already shows the decision: refused for a refusal; no longer
/// waiting for the seller in any other way for an agreement (refunded, or refused/closed — then
/// agreeing is no longer possible and nothing is sent).
fn already(refund: &ChannelRefund, d: &RefundDecision) -> bool {
    match d {
        RefundDecision::Refuse { .. } => refund.state == RefundState::Rejected,
        RefundDecision::Agree => refund.state != RefundState::Requested,
    }
}

/// The reason code a refusal names, of the channel's list (its first
/// [`orderhub_channels::REFUSAL_REASONS_MAX`]): a permanent failure when it offers no "other"
/// reason needing no evidence (or the list is empty).
fn refusal_code(
    list: &[orderhub_channels::RefusalReason],
) -> Result<&orderhub_channels::RefusalReason, TargetError> {
    let list = &list[..list.len().min(orderhub_channels::REFUSAL_REASONS_MAX)];
    orderhub_channels::choose_refusal_reason(list).ok_or_else(|| {
        TargetError::permanent(
            "the channel offers no \"other\" refusal reason without evidence: refuse on the channel",
        )
    })
}

/// Of the refunds read for `line` (each naming it, or no line: a refund of several lines), the
/// one decided: waiting for the seller before any other, the line's own before one of several
/// lines, else the first read.
fn best_of(found: Vec<ChannelRefund>, line: &str) -> Option<ChannelRefund> {
    let rank = |r: &ChannelRefund| {
        (
            r.state != RefundState::Requested,
            r.external_line_id.as_deref() != Some(line),
        )
    };
    let mut found: Vec<(usize, ChannelRefund)> = found.into_iter().enumerate().collect();
    found.sort_by_key(|(i, r)| (rank(r), *i));
    found.into_iter().next().map(|(_, r)| r)
}

impl RefundWriteBack {
    /// A write-back that reaches every address (tests, tools); see [`RefundWriteBack::with_outbound`].
    pub fn new(store: Store) -> RefundWriteBack {
        RefundWriteBack::with_outbound(
            store,
            orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        )
    }

    /// A write-back whose channel calls reach only what `outbound` permits.
    pub fn with_outbound(
        store: Store,
        outbound: orderhub_core::outbound::OutboundPolicy,
    ) -> RefundWriteBack {
        RefundWriteBack {
            store,
            http: crate::channel_client(outbound),
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"orderhub.refund_writeback"),
        }
    }

    /// Writes back every decided, unrecorded channel case of order `id`; how many were recorded.
    pub async fn push(&self, tenant: &TenantId, id: OrderId) -> Result<usize, TargetError> {
        let t = tenant.clone();
        let order = self
            .store
            .read(move |r| r.order_get(&t, id))
            .await
            .map_err(retry)?;
        let Some(order) = order else { return Ok(0) };
        let f = orderhub_store::CaseFilter {
            tenant: tenant.clone(),
            state: None,
            order_id: Some(id),
            shops: None,
            after: None,
            limit: orderhub_domain::after_sales::CASES_PER_ORDER_MAX as u32 + 1,
        };
        let cases = self
            .store
            .read(move |r| r.after_sales(&f))
            .await
            .map_err(retry)?;
        let pending: Vec<(AfterSaleCase, SellerDecision)> = cases
            .into_iter()
            .filter_map(|c| decision_to_write_back(&c).map(|d| (c, d)))
            .collect();
        if pending.is_empty() {
            return Ok(0);
        }
        let mut recorded = 0;
        // One case's failure does not keep the others from the channel: each is tried, and the
        // delivery fails after them (retryable if any failure is), so a retry sends only what
        // is still unrecorded.
        let mut failed: Option<TargetError> = None;
        for (case, decision) in pending {
            let (outcome, refund_id) = match self.send(&order, &case, &decision).await {
                Ok(sent) => sent,
                Err(e) => {
                    tracing::warn!(case_id = %case.case_id, error = %e.message, "A refund decision did not reach the channel.");
                    if failed.as_ref().is_none_or(|f| !f.retryable) {
                        failed = Some(e);
                    }
                    continue;
                }
            };
            let wb = ChannelWriteback {
                decision: decision.action,
                outcome,
                refund_id,
                at: Utc::now(),
            };
            let a = orderhub_core::usecases::Actor::system(tenant, "refund writeback");
            let case_id = case.case_id;
            let written = self
                .store
                .write(0, move |tx| {
                    orderhub_core::after_sales::record_channel_writeback(
                        tx,
                        &a,
                        case_id,
                        wb.clone(),
                        Utc::now(),
                    )
                })
                .await
                .map_err(retry)?;
            metrics::counter!("orderhub_refund_writebacks_total", "channel" => order.channel.to_string(), "outcome" => outcome.as_str()).increment(1);
            recorded += usize::from(written);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(recorded),
        }
    }

    /// Tells the channel one case's decision: the outcome and the refund id it was for.
    async fn send(
        &self,
        order: &Order,
        case: &AfterSaleCase,
        decision: &SellerDecision,
    ) -> Result<(WritebackOutcome, Option<String>), TargetError> {
        let Ok(kind) = ChannelKind::parse(order.channel.as_str()) else {
            return Ok((WritebackOutcome::NoCall, None));
        };
        let configured = crate::ConfiguredShop::load(
            &self.store,
            &order.tenant_id,
            kind.code(),
            order.shop_id.as_str(),
        )
        .await
        .map_err(retry)?;
        let Some(configured) = configured else {
            return Err(TargetError::permanent(format!(
                "shop {} of channel {kind} is not configured",
                order.shop_id
            )));
        };
        let shop = &configured.row;
        let adapter = match &configured.adapter {
            Ok(a) => a.as_ref(),
            Err(why) => return Err(TargetError::permanent(why.clone())),
        };
        let creds = crate::credentials(shop);
        let d = decision_of(decision);
        // A channel without the calls says so before any call: the case records it.
        if matches!(adapter.refund_get_request("1", &creds, Utc::now()), Err(r) if r.rule == "not_supported")
        {
            return Ok((WritebackOutcome::NoCall, None));
        }
        // The line's refund id, from the channel's detail of the order.
        let line = case
            .lines
            .first()
            .and_then(|cl| order.lines.iter().find(|l| l.line_id == cl.line_id))
            .and_then(|l| l.external_line_id.clone())
            .ok_or_else(|| TargetError::permanent("the case's line has no channel line id"))?;
        let ext = order.external_order_id.to_string();
        let refund = self.find_refund(shop, adapter, &ext, &line).await?;
        let refund_id = refund.refund_id.clone();
        if already(&refund, &d) {
            return Ok((WritebackOutcome::AlreadyDecided, Some(refund_id)));
        }
        // A refusal the channel takes only with one of its reason codes: the list is read first.
        if let RefundDecision::Refuse { reason } = &d {
            match adapter.refusal_reasons_request(&refund, &creds, Utc::now()) {
                Err(r) if r.rule == "not_supported" => {}
                Err(r) => return Err(TargetError::permanent(format!("{}: {}", r.rule, r.message))),
                Ok(_) => {
                    let outcome = self
                        .refuse_with_code(shop, adapter, &refund, reason)
                        .await?;
                    return Ok((outcome, Some(refund_id)));
                }
            }
        }
        // The request is checked before any call: a refusal there is permanent, but for a
        // channel without a call for this decision (one that takes agreements only).
        match adapter.refund_decision_request(&refund, &d, &creds, Utc::now()) {
            Err(r) if r.rule == "not_supported" => {
                return Ok((WritebackOutcome::NoCall, Some(refund_id)));
            }
            Err(r) => return Err(TargetError::permanent(format!("{}: {}", r.rule, r.message))),
            Ok(_) => {}
        }
        crate::tokens::call(
            &self.store,
            &self.http,
            shop,
            adapter,
            |c| Ok(adapter.refund_decision_request(&refund, &d, c, Utc::now())?),
            |body| adapter.parse_refund_decision_ack(body),
        )
        .await
        .map_err(mapped)?;
        Ok((WritebackOutcome::Acknowledged, Some(refund_id)))
    }
}

impl RefundWriteBack {
    /// Refuses `refund` on a channel whose refusal names one of its reason codes: the reasons
    /// the channel offers for the refund are read, one is chosen
    /// ([`orderhub_channels::choose_refusal_reason`]) and sent with the seller's reason. A list
    /// without an "other" reason needing no evidence is a permanent failure (the seller refuses on the
    /// channel).
    async fn refuse_with_code(
        &self,
        shop: &orderhub_store::ChannelShopRow,
        adapter: &dyn orderhub_channels::Channel,
        refund: &ChannelRefund,
        reason: &str,
    ) -> Result<WritebackOutcome, TargetError> {
        let list = crate::tokens::call(
            &self.store,
            &self.http,
            shop,
            adapter,
            |c| Ok(adapter.refusal_reasons_request(refund, c, Utc::now())?),
            |body| adapter.parse_refusal_reasons(body),
        )
        .await
        .map_err(mapped)?;
        let code = refusal_code(&list)?;
        let creds = crate::credentials(shop);
        match adapter.refusal_request(refund, reason, Some(code), &creds, Utc::now()) {
            Err(r) if r.rule == "not_supported" => return Ok(WritebackOutcome::NoCall),
            Err(r) => return Err(TargetError::permanent(format!("{}: {}", r.rule, r.message))),
            Ok(_) => {}
        }
        crate::tokens::call(
            &self.store,
            &self.http,
            shop,
            adapter,
            |c| Ok(adapter.refusal_request(refund, reason, Some(code), c, Utc::now())?),
            |body| adapter.parse_refund_decision_ack(body),
        )
        .await
        .map_err(mapped)?;
        Ok(WritebackOutcome::Acknowledged)
    }

    /// The channel's refund of line `line` of order `ext`, as the channel's refund read answers
    /// it: by the id on the detail's line (Taobao, Youzan, Kuaishou), else from the order's
    /// refunds ([`Channel::order_refunds_request`]): the one naming the line, or, where the list
    /// names no lines, the first of them whose read names it. A refund the channel does not
    /// show is a permanent failure (the case is not recorded; the dead letter says why).
    ///
    /// [`Channel::order_refunds_request`]: orderhub_channels::Channel::order_refunds_request
    async fn find_refund(
        &self,
        shop: &orderhub_store::ChannelShopRow,
        adapter: &dyn orderhub_channels::Channel,
        ext: &str,
        line: &str,
    ) -> Result<ChannelRefund, TargetError> {
        let read = |refund_id: String| {
            crate::tokens::call(
                &self.store,
                &self.http,
                shop,
                adapter,
                move |c| Ok(adapter.refund_get_request(&refund_id, c, Utc::now())?),
                |body| adapter.parse_refund(body),
            )
        };
        let detail = crate::tokens::call(
            &self.store,
            &self.http,
            shop,
            adapter,
            |c| Ok(adapter.detail_request(ext, c, Utc::now())),
            |body| adapter.parse_detail(body),
        )
        .await
        .map_err(mapped)?;
        let on_line = detail
            .lines
            .iter()
            .find(|l| l.external_line_id == line)
            .and_then(|l| l.refund_id.clone());
        if let Some(id) = on_line {
            return read(id).await.map_err(mapped);
        }
        let creds = crate::credentials(shop);
        let listed = match adapter.order_refunds_request(ext, &creds, Utc::now()) {
            Err(r) if r.rule == "not_supported" => Vec::new(),
            Err(r) => return Err(TargetError::permanent(format!("{}: {}", r.rule, r.message))),
            Ok(_) => crate::tokens::call(
                &self.store,
                &self.http,
                shop,
                adapter,
                |c| Ok(adapter.order_refunds_request(ext, c, Utc::now())?),
                |body| adapter.parse_order_refunds(body),
            )
            .await
            .map_err(mapped)?,
        };
        let listed = &listed[..listed.len().min(orderhub_channels::ORDER_REFUNDS_MAX)];
        // A line can have had several refunds (one closed, then a new one): the one waiting for
        // the seller is the one decided; else the first the channel names (which then shows the
        // decision or its end).
        let on_line: Vec<&ChannelRefund> = listed
            .iter()
            .filter(|r| r.external_line_id.as_deref() == Some(line))
            .collect();
        if let Some(r) = on_line
            .iter()
            .find(|r| r.state == RefundState::Requested)
            .or(on_line.first())
        {
            return read(r.refund_id.clone()).await.map_err(mapped);
        }
        // The list names no lines: each is read. A read naming no line either is a refund of
        // several lines (JD's apply, Douyin's refund before shipment): it is this line's too.
        let mut found = Vec::new();
        for r in listed.iter().filter(|r| r.external_line_id.is_none()) {
            let got = read(r.refund_id.clone()).await.map_err(mapped)?;
            if got.external_line_id.as_deref().is_none_or(|l| l == line) {
                found.push(got);
            }
        }
        best_of(found, line).ok_or_else(|| {
            TargetError::permanent(format!(
                "the channel shows no refund on line {line} of order {ext}"
            ))
        })
    }
}

impl Target for RefundWriteBack {
    fn id(&self) -> Uuid {
        self.id
    }

    fn kind(&self) -> &str {
        "refund_writeback"
    }

    fn wants(&self, event_type: &str) -> bool {
        use orderhub_domain::event_types as e;
        matches!(event_type, e::AFTER_SALE_APPROVED | e::AFTER_SALE_REFUSED)
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            self.push(&d.tenant, OrderId::from_uuid(d.aggregate_id))
                .await
                .map(|_| ())
        })
    }
}

/// The states a decided case can be in (every one but `requested` and `closed`).
const DECIDED: [orderhub_domain::after_sales::CaseState; 8] = {
    use orderhub_domain::after_sales::CaseState as S;
    [
        S::Approved,
        S::Refused,
        S::GoodsReturning,
        S::Received,
        S::QcPassed,
        S::QcFailed,
        S::Refunded,
        S::Exchanged,
    ]
};

/// Cases read per tenant and state at one tick of the [`watchdog`].
pub const WATCHDOG_PAGE: u32 = 200;

/// Decisions on channel cases not recorded (their deliveries dead-lettered, or lost before the
/// dispatcher took them): every `every`, each tenant's decided cases are read a page per state
/// ([`WATCHDOG_PAGE`], going on from where the last tick stopped and starting over at the end, so
/// the work per tick is bounded and every case is seen in turn) and the orders of those with a
/// decision to write back are pushed again.
pub async fn watchdog(
    w: std::sync::Arc<RefundWriteBack>,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut cursors: std::collections::HashMap<(TenantId, &'static str), Uuid> =
        std::collections::HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let tenants = w.store.read(|r| r.tenants()).await.unwrap_or_default();
        for t in tenants {
            let mut orders = std::collections::BTreeSet::new();
            for state in DECIDED {
                let key = (t.clone(), state.as_str());
                let f = orderhub_store::CaseFilter {
                    tenant: t.clone(),
                    state: Some(state.as_str().to_owned()),
                    order_id: None,
                    shops: None,
                    after: cursors.get(&key).copied(),
                    limit: WATCHDOG_PAGE,
                };
                let Ok(page) = w.store.read(move |r| r.after_sales(&f)).await else {
                    continue;
                };
                match page.last() {
                    Some(last) if page.len() == WATCHDOG_PAGE as usize => {
                        cursors.insert(key, last.case_id);
                    }
                    _ => {
                        cursors.remove(&key);
                    }
                }
                orders.extend(
                    page.iter()
                        .filter(|c| decision_to_write_back(c).is_some())
                        .map(|c| c.order_id),
                );
            }
            for id in orders {
                if let Err(e) = w.push(&t, id).await {
                    tracing::warn!(order_id = %id, error = %e.message, "The refund write-back watchdog's retry failed.");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refund(state: RefundState) -> ChannelRefund {
        ChannelRefund {
            refund_id: "1".into(),
            external_order_id: "T1".into(),
            external_line_id: None,
            state,
            raw_status: String::new(),
            phase: None,
            version: None,
        }
    }

    #[test]
    fn the_refund_decided_is_the_waiting_one_the_lines_own_first() {
        let r = |id: &str, line: Option<&str>, state: RefundState| ChannelRefund {
            refund_id: id.into(),
            external_order_id: "o".into(),
            external_line_id: line.map(str::to_owned),
            state,
            raw_status: String::new(),
            phase: None,
            version: None,
        };
        let best = |v: Vec<ChannelRefund>| best_of(v, "L1").map(|r| r.refund_id);
        // A closed refund of the line, then the new one waiting: the waiting one.
        assert_eq!(
            best(vec![
                r("old", Some("L1"), RefundState::Rejected),
                r("new", Some("L1"), RefundState::Requested)
            ]),
            Some("new".into())
        );
        // A refund of the whole order waiting beside the line's own closed one: the waiting one.
        assert_eq!(
            best(vec![
                r("own", Some("L1"), RefundState::Refunded),
                r("all", None, RefundState::Requested)
            ]),
            Some("all".into())
        );
        // Both waiting: the line's own.
        assert_eq!(
            best(vec![
                r("all", None, RefundState::Requested),
                r("own", Some("L1"), RefundState::Requested)
            ]),
            Some("own".into())
        );
        assert_eq!(best(vec![]), None);
    }

    #[test]
    fn a_refusal_names_a_reason_needing_no_evidence_or_fails_for_good() {
        let r = |code: &str, text: &str, needs_evidence: bool| orderhub_channels::RefusalReason {
            code: code.into(),
            text: text.into(),
            needs_evidence,
        };
        let list = [
            r("1", "已签收", true),
            r("2", "已发货", false),
            r("3", "其他", false),
        ];
        assert_eq!(refusal_code(&list).unwrap().code, "3");
        let evidence = [r("1", "其他", true), r("2", "已签收", true)];
        let e = refusal_code(&evidence).unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("refuse on the channel"), "{}", e.message);
        let no_other = [r("2", "已发货", false)];
        assert!(
            refusal_code(&no_other).is_err(),
            "never a fact the seller did not state"
        );
        assert!(refusal_code(&[]).is_err());
        // Only the first REFUSAL_REASONS_MAX are considered.
        let mut long: Vec<_> = (0..orderhub_channels::REFUSAL_REASONS_MAX)
            .map(|i| r(&i.to_string(), "x", true))
            .collect();
        long.push(r("late", "其他", false));
        assert!(refusal_code(&long).is_err());
    }

    #[test]
    fn a_refund_showing_the_decision_is_not_decided_again() {
        let refuse = RefundDecision::Refuse {
            reason: "no".into(),
        };
        assert!(already(&refund(RefundState::Rejected), &refuse));
        assert!(!already(&refund(RefundState::Requested), &refuse));
        assert!(!already(
            &refund(RefundState::Requested),
            &RefundDecision::Agree
        ));
        assert!(already(
            &refund(RefundState::Refunded),
            &RefundDecision::Agree
        ));
    }
}

//! Order edits with approval (issue 21). An operator edits an order before release — receiver,
//! seller memo, ship-by, invoice profile, line quantities, gift lines ([`OrderEdit`]); the edit
//! either applies at once or, when the tenant's [`EditRules`] mark it sensitive, waits as a
//! pending request until other keys than the requester approve it (one or two of them).
//!
//! Every edit, applied or not, is an [`EditRecord`]: the change log of the order (before/after of
//! each field, who, when, why, request id; the personal data sealed at rest). Each step writes the
//! record, the order (when it changes), its stock (when the goods change, re-reserved in the same
//! transaction and refused when short), an audit entry on the order (personal data masked) and an
//! event — in the caller's transaction, so all or nothing.

use crate::auth::Permission;
use crate::error::CoreError;
use crate::ports::{StoreError, Tx};
use crate::usecases::{
    Actor, record_with, set_exception, set_flag, stock_detail, stock_flag_change,
};
use chrono::{DateTime, Utc};
use orderhub_domain::edit::{
    Applied, Change, EDIT_REASON_MAX, EDITABLE, EditRules, FIELD_LINES, FIELD_RECEIVER, OrderEdit,
    editable, stale_field,
};
use orderhub_domain::event_types as ev;
use orderhub_domain::order::OUT_OF_STOCK;
use orderhub_domain::{Order, OrderId, ShopId, Status, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// Where an edit request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditState {
    /// Waits for approval.
    Pending,
    /// Applied to the order (at once, or on its last approval).
    Applied,
    Rejected,
    /// Approved, but the order had moved on (released, or a field it changes changed meanwhile):
    /// not applied; `meta.failure` says why.
    Failed,
}

impl EditState {
    pub const ALL: [EditState; 4] = [
        EditState::Pending,
        EditState::Applied,
        EditState::Rejected,
        EditState::Failed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            EditState::Pending => "pending",
            EditState::Applied => "applied",
            EditState::Rejected => "rejected",
            EditState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<EditState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Who did a step of an edit request, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Who {
    pub key_id: String,
    /// `role:key name`, as audit entries name actors.
    pub actor: String,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

impl Who {
    pub(crate) fn of(actor: &Actor, at: DateTime<Utc>) -> Who {
        let p = &actor.principal;
        Who {
            key_id: p.key_id.clone(),
            actor: format!("{}:{}", p.role.as_str(), p.key_name),
            request_id: actor.request_id.clone(),
            at,
        }
    }
}

/// What an edit request holds besides the edit itself and its changes; no personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditMeta {
    pub reason: String,
    /// The rules that sent it for approval (empty: applied at once).
    pub sensitive: Vec<String>,
    pub requested_by: Who,
    pub approvals_required: u8,
    pub approvals: Vec<Who>,
    /// Who rejected it.
    pub rejected_by: Option<Who>,
    /// The rejection's reason.
    pub decision_note: Option<String>,
    /// The order's version when the edit was asked.
    pub base_version: u64,
    /// The order's version the edit produced.
    pub applied_version: Option<u64>,
    pub failure: Option<String>,
}

/// One edit of one order: the change log's entry and, while pending, the approval request.
#[derive(Debug, Clone, PartialEq)]
pub struct EditRecord {
    pub tenant_id: TenantId,
    pub edit_id: Uuid,
    pub order_id: OrderId,
    pub shop_id: ShopId,
    pub state: EditState,
    /// What was asked (personal data in clear: the store seals it).
    pub edit: OrderEdit,
    /// Before/after of each field, as asked against the order (and as applied, once applied).
    pub changes: Vec<Change>,
    pub meta: EditMeta,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EditRecord {
    /// The fields the edit changes.
    pub fn fields(&self) -> Vec<&str> {
        self.changes.iter().map(|c| c.field.as_str()).collect()
    }
}

/// Edit requests and the tenant's edit rules, inside the order's transaction.
pub trait EditTx {
    /// Inserts a record. `Ok(false)`: it is pending and the order has a pending edit already
    /// (one at a time); nothing written.
    fn edit_insert(&mut self, rec: &EditRecord) -> Result<bool, StoreError>;
    /// The record, locked for update where the backend has row locks.
    fn edit_get(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<EditRecord>, StoreError>;
    /// The order's pending edit, if any.
    fn edit_pending_of(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<EditRecord>, StoreError>;
    /// Writes state, changes, meta and `updated_at`.
    fn edit_update(&mut self, rec: &EditRecord) -> Result<(), StoreError>;
    /// The tenant's rules ([`EditRules::default`] when it set none).
    fn edit_rules(&mut self, tenant: &TenantId) -> Result<EditRules, StoreError>;
    fn edit_rules_put(
        &mut self,
        tenant: &TenantId,
        rules: &EditRules,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// What an edit step came to: the record as stored, and the order when the step changed it.
#[derive(Debug, Clone)]
pub struct EditResult {
    pub edit: EditRecord,
    pub order: Option<Order>,
}

fn require(actor: &Actor, p: Permission) -> Result<(), CoreError> {
    if actor.principal.can(p) {
        Ok(())
    } else {
        Err(CoreError::Forbidden(format!(
            "role {} may not {}",
            actor.principal.role.as_str(),
            p.describe()
        )))
    }
}

/// A required reason: trimmed, 1 to [`EDIT_REASON_MAX`] characters.
fn reason_text(field: &str, s: &str) -> Result<String, CoreError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > EDIT_REASON_MAX || t.chars().any(char::is_control) {
        return Err(CoreError::Validation(ValidationError::new(
            field,
            if t.is_empty() { "required" } else { "too_long" },
            format!("{field} must be 1 to {EDIT_REASON_MAX} characters without control characters"),
        )));
    }
    Ok(t.to_owned())
}

pub(crate) fn not_editable(order: &Order) -> CoreError {
    CoreError::EditConflict {
        code: "edit_not_allowed",
        message: format!(
            "cannot edit an order that is {} (version {}): orders are edited before release ({}); \
             stop a released order first (hold or cancel it)",
            order.status,
            order.version,
            EDITABLE.map(Status::as_str).join(", ")
        ),
        status: Some(order.status),
        version: Some(order.version),
    }
}

pub(crate) fn pending_exists(order: &Order, id: Uuid) -> CoreError {
    CoreError::EditConflict {
        code: "edit_pending",
        message: format!(
            "the order has a pending edit request {id}: approve or reject it before asking another"
        ),
        status: Some(order.status),
        version: Some(order.version),
    }
}

fn visible_order(tx: &mut dyn Tx, actor: &Actor, id: OrderId) -> Result<Order, CoreError> {
    tx.order_get(&actor.principal.tenant_id, id)?
        .filter(|o| actor.principal.sees_shop(&o.shop_id))
        .ok_or(CoreError::NotFound)
}

/// Whether the order's stock follows its goods now: it holds a reservation, or it is paid (then
/// its tracked lines are reserved or wait on backorder).
fn stock_follows(order: &Order) -> bool {
    order.reservation_id.is_some() || order.status != Status::PendingPayment
}

fn masked(changes: &[Change]) -> Vec<Change> {
    changes.iter().map(Change::masked).collect()
}

/// Edits order `order_id` (or asks for the edit, when the tenant's rules mark it sensitive),
/// with a required `reason`. Refused (409 `edit_not_allowed`) once the order is released or
/// later, and (409 `edit_pending`) while another edit of it waits for approval.
pub fn request_edit(
    tx: &mut dyn Tx,
    actor: &Actor,
    order_id: OrderId,
    edit: OrderEdit,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<EditResult, CoreError> {
    require(actor, Permission::OrdersEdit)?;
    let reason = reason_text("reason", reason)?;
    edit.check()?;
    let order = visible_order(tx, actor, order_id)?;
    if !editable(order.status) {
        return Err(not_editable(&order));
    }
    if let Some(p) = tx.edit_pending_of(&order.tenant_id, order.id)? {
        return Err(pending_exists(&order, p.edit_id));
    }
    let applied = edit.apply(&order)?;
    if let Err(why) = within_claims(tx, &order, &applied.order)? {
        return Err(orderhub_domain::ValidationError::new(
            "quantities",
            "below_after_sales_claims",
            why,
        )
        .into());
    }
    let rules = tx.edit_rules(&order.tenant_id)?;
    let sensitive = rules.reasons(&order, &applied.changes);
    let mut rec = EditRecord {
        tenant_id: order.tenant_id.clone(),
        edit_id: Uuid::now_v7(),
        order_id: order.id,
        shop_id: order.shop_id.clone(),
        state: EditState::Pending,
        edit,
        changes: applied.changes.clone(),
        meta: EditMeta {
            reason,
            sensitive: sensitive.iter().map(|s| (*s).to_owned()).collect(),
            requested_by: Who::of(actor, now),
            approvals_required: rules.approvals_required,
            approvals: Vec::new(),
            rejected_by: None,
            decision_note: None,
            base_version: order.version,
            applied_version: None,
            failure: None,
        },
        created_at: now,
        updated_at: now,
    };
    if sensitive.is_empty() {
        let next = commit_edit(tx, actor, &order, applied, &mut rec, now)?;
        tx.edit_insert(&rec)?;
        return Ok(EditResult {
            edit: rec,
            order: Some(next),
        });
    }
    if !tx.edit_insert(&rec)? {
        // Another transaction asked first (the pending index decided).
        let other = tx.edit_pending_of(&order.tenant_id, order.id)?;
        return Err(pending_exists(
            &order,
            other.map_or(rec.edit_id, |o| o.edit_id),
        ));
    }
    let detail = json!({
        "edit_id": rec.edit_id,
        "fields": rec.fields(),
        "sensitive": rec.meta.sensitive,
        "approvals_required": rec.meta.approvals_required,
        "reason": rec.meta.reason,
        "changes": masked(&rec.changes),
    });
    note(
        tx,
        actor,
        &order,
        &rec,
        ("edit_requested", ev::ORDER_EDIT_REQUESTED),
        detail,
    )?;
    Ok(EditResult {
        edit: rec,
        order: None,
    })
}

/// An audit entry and an event about an edit request on the order, which does not change.
fn note(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    rec: &EditRecord,
    (action, event_type): (&str, &str),
    detail: serde_json::Value,
) -> Result<(), CoreError> {
    let mut extra = serde_json::Map::new();
    extra.insert("edit_id".into(), json!(rec.edit_id));
    extra.insert("edit_state".into(), json!(rec.state.as_str()));
    extra.insert("fields".into(), json!(rec.fields()));
    let mut at = order.clone();
    at.updated_at = rec.updated_at;
    record_with(
        tx,
        actor,
        Some(order),
        &at,
        (action, event_type),
        detail,
        extra,
    )
}

/// Applies `applied` to `order` (version + 1), re-reserving its stock when the goods or the
/// receiver's province changed, with the audit entry and `order.edited`; marks `rec` applied.
/// An edit may not take a line below what its after-sales cases (not refused) claim, nor remove
/// a line they claim: `Err(why)` names the line. (The seeded simulation found an approved edit
/// leaving a line of 1 unit with 2 refunded.)
fn within_claims(
    tx: &mut dyn Tx,
    order: &Order,
    next: &Order,
) -> Result<Result<(), String>, CoreError> {
    let cases = tx.cases_of_order(&order.tenant_id, order.id)?;
    for (line_id, (claimed, _)) in orderhub_domain::after_sales::claimed(&cases) {
        let has = next
            .lines
            .iter()
            .find(|l| l.line_id == line_id)
            .map_or(0, |l| l.quantity);
        if has < claimed {
            return Ok(Err(format!(
                "line {line_id}: after-sales cases claim {claimed} units; the edit would leave {has}"
            )));
        }
    }
    Ok(Ok(()))
}

fn commit_edit(
    tx: &mut dyn Tx,
    actor: &Actor,
    order: &Order,
    applied: Applied,
    rec: &mut EditRecord,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let Applied {
        order: mut next,
        changes,
    } = applied;
    next.version = order.version + 1;
    next.updated_at = now;
    crate::combine::on_order_changed(tx, actor, order, &mut next, now)?;
    let goods = changes.iter().any(|c| c.field == FIELD_LINES);
    let province = changes.iter().any(|c| c.field == FIELD_RECEIVER)
        && next.receiver.province != order.receiver.province;
    let stock = if (goods || province) && stock_follows(order) {
        Some(crate::inventory::rereserve_or_refuse(
            tx, actor, &mut next, now,
        )?)
    } else {
        None
    };
    // Leaving backorder is announced one version later, as every exception is.
    let left_backorder = stock_flag_change(order, &next) == Some(false);
    if left_backorder {
        set_flag(&mut next, OUT_OF_STOCK, true);
    }
    tx.order_update(&next)?;
    rec.state = EditState::Applied;
    rec.changes = changes;
    rec.meta.applied_version = Some(next.version);
    rec.updated_at = now;
    let detail = json!({
        "edit_id": rec.edit_id,
        "fields": rec.fields(),
        "reason": rec.meta.reason,
        "changes": masked(&rec.changes),
        "requested_by": rec.meta.requested_by.actor,
        "approved_by": rec.meta.approvals.iter().map(|a| &a.actor).collect::<Vec<_>>(),
        "stock": stock,
    });
    let mut extra = serde_json::Map::new();
    extra.insert("edit_id".into(), json!(rec.edit_id));
    extra.insert("fields".into(), json!(rec.fields()));
    record_with(
        tx,
        actor,
        Some(order),
        &next,
        ("edit", ev::ORDER_EDITED),
        detail,
        extra,
    )?;
    if left_backorder {
        let d = stock_detail(false, "edit");
        next = set_exception(tx, actor, next, OUT_OF_STOCK, false, d, now)?;
    }
    Ok(next)
}

fn pending_record(
    tx: &mut dyn Tx,
    actor: &Actor,
    edit_id: Uuid,
    decision: &str,
) -> Result<EditRecord, CoreError> {
    let rec = tx
        .edit_get(&actor.principal.tenant_id, edit_id)?
        .filter(|r| actor.principal.sees_shop(&r.shop_id))
        .ok_or(CoreError::EditNotFound)?;
    if rec.state != EditState::Pending {
        return Err(CoreError::EditConflict {
            code: "edit_not_pending",
            message: format!(
                "edit {edit_id} is {} already: only a pending edit can be {decision}",
                rec.state.as_str()
            ),
            status: None,
            version: None,
        });
    }
    Ok(rec)
}

/// One approval of a pending edit by a key other than the requester's. The last approval the
/// tenant requires applies the edit — after checking again that the order is still editable and
/// that no field the edit changes has changed since it was asked (the order's version may have
/// moved for other reasons): otherwise the request ends `failed`, with why, and the order stays
/// as it is. Short of stock for new goods, the approval is refused (409 `out_of_stock`) and
/// nothing is written: the request stays pending.
pub fn approve_edit(
    tx: &mut dyn Tx,
    actor: &Actor,
    edit_id: Uuid,
    now: DateTime<Utc>,
) -> Result<EditResult, CoreError> {
    require(actor, Permission::OrdersEditApprove)?;
    let mut rec = pending_record(tx, actor, edit_id, "approved")?;
    let me = &actor.principal.key_id;
    if &rec.meta.requested_by.key_id == me {
        return Err(CoreError::OwnEdit(
            "the key that requested this edit may not approve it: another key must".into(),
        ));
    }
    if rec.meta.approvals.iter().any(|a| &a.key_id == me) {
        return Err(CoreError::EditConflict {
            code: "already_approved",
            message: format!(
                "this key approved edit {edit_id} already; it needs {} approvals by distinct keys",
                rec.meta.approvals_required
            ),
            status: None,
            version: None,
        });
    }
    rec.meta.approvals.push(Who::of(actor, now));
    rec.updated_at = now;
    let order = tx
        .order_get(&rec.tenant_id, rec.order_id)?
        .ok_or(CoreError::NotFound)?;
    if rec.meta.approvals.len() < usize::from(rec.meta.approvals_required) {
        tx.edit_update(&rec)?;
        let detail = json!({
            "edit_id": rec.edit_id,
            "approvals": rec.meta.approvals.len(),
            "approvals_required": rec.meta.approvals_required,
        });
        note(
            tx,
            actor,
            &order,
            &rec,
            ("edit_approval", ev::ORDER_EDIT_APPROVED),
            detail,
        )?;
        return Ok(EditResult {
            edit: rec,
            order: None,
        });
    }
    let failure = if !editable(order.status) {
        Err(format!(
            "the order is {} now (version {}): edits apply only before release",
            order.status, order.version
        ))
    } else if order.version != rec.meta.base_version
        && let Some(field) = stale_field(&rec.changes, &order)
    {
        Err(format!(
            "the order's {field} changed since the edit was asked (version {} → {})",
            rec.meta.base_version, order.version
        ))
    } else {
        match rec.edit.apply(&order) {
            Ok(applied) => within_claims(tx, &order, &applied.order)?.map(|()| applied),
            Err(e) => Err(e.message),
        }
    };
    match failure {
        Ok(applied) => {
            let next = commit_edit(tx, actor, &order, applied, &mut rec, now)?;
            tx.edit_update(&rec)?;
            Ok(EditResult {
                edit: rec,
                order: Some(next),
            })
        }
        Err(why) => {
            rec.state = EditState::Failed;
            rec.meta.failure = Some(why.clone());
            tx.edit_update(&rec)?;
            let detail = json!({ "edit_id": rec.edit_id, "failure": why });
            note(
                tx,
                actor,
                &order,
                &rec,
                ("edit_failed", ev::ORDER_EDIT_FAILED),
                detail,
            )?;
            Ok(EditResult {
                edit: rec,
                order: None,
            })
        }
    }
}

/// Rejects a pending edit, with a required reason. The requester may reject (withdraw) its own.
pub fn reject_edit(
    tx: &mut dyn Tx,
    actor: &Actor,
    edit_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<EditResult, CoreError> {
    require(actor, Permission::OrdersEditApprove)?;
    let reason = reason_text("reason", reason)?;
    let mut rec = pending_record(tx, actor, edit_id, "rejected")?;
    rec.state = EditState::Rejected;
    rec.meta.rejected_by = Some(Who::of(actor, now));
    rec.meta.decision_note = Some(reason.clone());
    rec.updated_at = now;
    tx.edit_update(&rec)?;
    let order = tx
        .order_get(&rec.tenant_id, rec.order_id)?
        .ok_or(CoreError::NotFound)?;
    let detail = json!({ "edit_id": rec.edit_id, "reason": reason });
    note(
        tx,
        actor,
        &order,
        &rec,
        ("edit_rejected", ev::ORDER_EDIT_REJECTED),
        detail,
    )?;
    Ok(EditResult {
        edit: rec,
        order: None,
    })
}

/// Sets the tenant's edit rules.
pub fn set_edit_rules(
    tx: &mut dyn Tx,
    actor: &Actor,
    rules: &EditRules,
    now: DateTime<Utc>,
) -> Result<EditRules, CoreError> {
    require(actor, Permission::EditRulesManage)?;
    rules.check()?;
    tx.edit_rules_put(&actor.principal.tenant_id, rules, now)?;
    Ok(rules.clone())
}

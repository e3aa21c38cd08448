//! Order edits with approval (issue 21): `POST /v1/orders/{id}/edits` edits an order before
//! release, or — when the tenant's rules mark the edit sensitive — asks for it; other keys than
//! the requester's approve (`/v1/edits/{id}/approve`) or reject it. `GET /v1/orders/{id}/edits`
//! is the order's change log, `GET /v1/edits` the approvers' queue, `/v1/settings/order-edits`
//! the tenant's rules. Personal data in the change log (the receiver) is masked unless the key
//! holds `pii:read`, as order reads mask it.

use super::uuid_param;
use super::{page_limit, parse_query, partition};
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json, parse_write, write};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use orderhub_api::orders::{OrderView, ReceiverIn, opt_text, parse_time};
use orderhub_core::auth::Principal;
use orderhub_core::edits::{self, EditRecord, EditResult, EditState, Who};
use orderhub_domain::edit::{
    EditRules, GiftLine, INVOICE_PROFILE_LEN_MAX, OrderEdit, QuantityChange, double_option,
};
use orderhub_domain::order::TEXT_LEN_MAX;
use orderhub_domain::{OrderId, Sku, ValidationError};
use orderhub_store::EditFilter;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

const PAGE_DEFAULT: u32 = 50;
const PAGE_MAX: u32 = 200;

/// A line's new quantity.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantityIn {
    pub line_id: u32,
    /// 1 to 1,000,000.
    pub quantity: u32,
}

/// A gift line to add: price 0.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiftIn {
    pub sku: String,
    pub title: String,
    /// 1 to 1,000,000.
    pub quantity: u32,
}

/// The body of `POST /v1/orders/{id}/edits`: what to change (at least one field) and why.
/// Absent fields stay as they are; `null` clears an optional one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditOrderRequest {
    /// Why (1 to 500 characters): kept in the change log and the order's timeline.
    pub reason: String,
    /// The whole new receiver (name, phone, address).
    #[serde(default)]
    pub receiver: Option<ReceiverIn>,
    /// Up to 1,000 characters; `null` or empty clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub seller_memo: Option<Option<String>>,
    /// RFC 3339 with an offset; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub promised_ship_by: Option<Option<String>>,
    /// The customer's invoice profile (up to 64 characters); `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub invoice_profile_id: Option<Option<String>>,
    /// New quantities of existing lines (totals are computed again).
    #[serde(default)]
    pub quantities: Vec<QuantityIn>,
    /// Gift lines to add (at most 20).
    #[serde(default)]
    pub add_gifts: Vec<GiftIn>,
    /// Gift lines (price 0) to remove, by line id.
    #[serde(default)]
    pub remove_lines: Vec<u32>,
}

fn text_field(
    field: &str,
    v: Option<Option<String>>,
    max: usize,
) -> Result<Option<Option<String>>, ValidationError> {
    v.map(|v| v.map_or(Ok(None), |s| opt_text(field, Some(s), max)))
        .transpose()
}

impl EditOrderRequest {
    fn into_edit(self) -> Result<(OrderEdit, String), ValidationError> {
        let mut add_gifts = Vec::with_capacity(self.add_gifts.len());
        for (i, g) in self.add_gifts.into_iter().enumerate() {
            add_gifts.push(GiftLine {
                sku: Sku::parse(&g.sku).map_err(|e| e.under(&format!("add_gifts[{i}].sku")))?,
                title: g.title,
                quantity: g.quantity,
            });
        }
        let edit = OrderEdit {
            receiver: self.receiver.map(ReceiverIn::into_receiver).transpose()?,
            seller_memo: text_field("seller_memo", self.seller_memo, TEXT_LEN_MAX)?,
            promised_ship_by: self
                .promised_ship_by
                .map(|v| parse_time("promised_ship_by", v))
                .transpose()?,
            invoice_profile_id: text_field(
                "invoice_profile_id",
                self.invoice_profile_id,
                INVOICE_PROFILE_LEN_MAX,
            )?,
            quantities: self
                .quantities
                .into_iter()
                .map(|q| QuantityChange {
                    line_id: q.line_id,
                    quantity: q.quantity,
                })
                .collect(),
            add_gifts,
            remove_lines: self.remove_lines,
        };
        Ok((edit, self.reason))
    }
}

/// One field's value before and after the edit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangeView {
    /// receiver, seller_memo, promised_ship_by, invoice_profile_id, lines, amounts
    pub field: String,
    #[schema(value_type = Object)]
    pub before: Value,
    #[schema(value_type = Object)]
    pub after: Value,
}

/// Who did a step, with which key, in which request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoView {
    /// `role:key name`
    pub actor: String,
    pub key_id: String,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

/// An edit of an order: the change log's entry and, while `pending`, the approval request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EditView {
    pub edit_id: Uuid,
    pub order_id: Uuid,
    pub shop_id: String,
    /// pending, applied, rejected, failed
    pub state: String,
    pub fields: Vec<String>,
    /// Before/after of each field; the receiver's name, phone and address detail masked unless
    /// the key holds `pii:read` (then `masked` is false).
    pub changes: Vec<ChangeView>,
    pub masked: bool,
    pub reason: String,
    /// The tenant's rules that sent it for approval: address_after_payment, lines,
    /// amount_above (empty: applied at once).
    pub sensitive: Vec<String>,
    pub requested_by: WhoView,
    pub approvals_required: u8,
    pub approvals: Vec<WhoView>,
    pub rejected_by: Option<WhoView>,
    pub rejection_reason: Option<String>,
    /// The order's version the edit was asked against, and the version it produced.
    pub base_version: u64,
    pub applied_version: Option<u64>,
    /// Why an approved edit was not applied (state `failed`).
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn who(w: &Who) -> WhoView {
    WhoView {
        actor: w.actor.clone(),
        key_id: w.key_id.clone(),
        request_id: w.request_id.clone(),
        at: w.at,
    }
}

fn view(e: &EditRecord, p: &Principal) -> EditView {
    let m = &e.meta;
    EditView {
        edit_id: e.edit_id,
        order_id: e.order_id.as_uuid(),
        shop_id: e.shop_id.as_str().to_owned(),
        state: e.state.as_str().to_owned(),
        fields: e.fields().into_iter().map(str::to_owned).collect(),
        changes: e
            .changes
            .iter()
            .map(|c| {
                let c = if p.pii_read { c.clone() } else { c.masked() };
                ChangeView {
                    field: c.field,
                    before: c.before,
                    after: c.after,
                }
            })
            .collect(),
        masked: !p.pii_read,
        reason: m.reason.clone(),
        sensitive: m.sensitive.clone(),
        requested_by: who(&m.requested_by),
        approvals_required: m.approvals_required,
        approvals: m.approvals.iter().map(who).collect(),
        rejected_by: m.rejected_by.as_ref().map(who),
        rejection_reason: m.decision_note.clone(),
        base_version: m.base_version,
        applied_version: m.applied_version,
        failure: m.failure.clone(),
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

/// The answer to an edit step: the edit and, when the step changed the order, the order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EditResultView {
    pub edit: EditView,
    pub order: Option<OrderView>,
}

/// 200 with the order when applied, 202 when it waits for approval, 200 for a recorded
/// approval or rejection; 409 `edit_failed` (with the edit) when the last approval found the
/// order moved on.
fn render(r: &EditResult, p: &Principal) -> (StatusCode, Vec<u8>) {
    let edit = view(&r.edit, p);
    if r.edit.state == EditState::Failed {
        let body = serde_json::json!({
            "error": {
                "code": "edit_failed",
                "message": format!(
                    "the edit was approved but not applied: {}",
                    r.edit.meta.failure.as_deref().unwrap_or("the order moved on")
                ),
            },
            "edit": edit,
        });
        return crate::extract::rendered(StatusCode::CONFLICT, &body);
    }
    let status = match (r.edit.state, &r.order) {
        (EditState::Pending, None) if r.edit.meta.approvals.is_empty() => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    let v = EditResultView {
        edit,
        order: r.order.as_ref().map(|o| OrderView::new(o, p.pii_read)),
    };
    crate::extract::rendered(status, &v)
}

fn order_id(s: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(s).map_err(ApiError::from)
}

/// The writer for an edit of `id`: an edit that moves stock goes to the writer of the order's
/// stock (as payments do), others to the order's own. Either way the order's row and version
/// serialize it against every other change of the order.
async fn edit_partition(
    state: &SharedState,
    p: &Principal,
    id: OrderId,
    moves_stock: bool,
) -> Result<u64, ApiError> {
    if !moves_stock || state.store.writers() < 2 {
        return Ok(partition(id));
    }
    let t = p.tenant_id.clone();
    Ok(
        match state.store.read(move |r| r.order_get(&t, id)).await? {
            Some(o) => super::stock_partition(o.lines.iter().map(|l| &l.sku).min()),
            None => partition(id),
        },
    )
}

/// Edit an order before release: receiver, seller memo, ship-by, invoice profile, line
/// quantities, gift lines. Applied at once (200, with the order) unless the tenant's rules mark
/// it sensitive: then it waits for approval by other keys (202, `order.edit_requested`). Goods
/// changes re-reserve stock in the same transaction.
#[utoipa::path(post, path = "/v1/orders/{id}/edits", tag = "edits",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = EditOrderRequest,
    responses(
        (status = 200, description = "Applied", body = EditResultView),
        (status = 202, description = "Sensitive: waits for approval", body = EditResultView),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`edit_not_allowed` (released or later; `current_status` names it), `edit_pending` (another edit waits for approval), `out_of_stock` (new goods short; nothing written)", body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn request(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let (req, key): (EditOrderRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/edits"),
    )?;
    let (edit, reason) = req.into_edit()?;
    let part = edit_partition(&state, &ctx.principal, id, edit.touches_lines()).await?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| edits::request_edit(tx, &actor, id, edit.clone(), &reason, now),
        render,
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EditQuery {
    /// pending, applied, rejected, failed, or all. `GET /v1/edits`: default pending (the
    /// approvers' queue); an order's change log: default all.
    state: Option<String>,
    /// The last `edit_id` seen (`next_after` of the previous page).
    after: Option<Uuid>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// A page of edits, oldest first; `next_after` is the cursor of the next page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EditPage {
    pub edits: Vec<EditView>,
    pub next_after: Option<Uuid>,
}

async fn page(
    state: &SharedState,
    ctx: &Ctx,
    q: EditQuery,
    order: Option<OrderId>,
    default_state: Option<EditState>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit, PAGE_DEFAULT, PAGE_MAX)?;
    let st = match q.state.as_deref() {
        None => default_state,
        Some("all") => None,
        Some(s) => Some(EditState::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "state must be pending, applied, rejected, failed or all",
            )
            .field("state")
        })?),
    };
    let f = EditFilter {
        tenant: ctx.principal.tenant_id.clone(),
        order,
        state: st,
        shops: super::scope_strings(&ctx.principal),
        after: q.after,
        limit,
    };
    let rows = state.store.read(move |r| r.edits(&f)).await?;
    let next_after = super::next_cursor(&rows, limit, |e| e.edit_id);
    Ok(json(
        StatusCode::OK,
        &EditPage {
            edits: rows.iter().map(|e| view(e, &ctx.principal)).collect(),
            next_after,
        },
    ))
}

/// The order's change log: every edit asked of it (applied, pending, rejected, failed), oldest
/// first, with before/after of each field, who, when, why.
#[utoipa::path(get, path = "/v1/orders/{id}/edits", tag = "edits",
    params(("id" = String, Path, description = "orderhub order id"), EditQuery),
    responses((status = 200, body = EditPage), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn order_log(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let q: EditQuery = parse_query(q.as_deref())?;
    super::orders::visible_order(&state, &ctx.principal, id).await?;
    page(&state, &ctx, q, Some(id), None).await
}

/// Edits of the tenant's orders (within the key's shops), by default those waiting for
/// approval: the approvers' queue.
#[utoipa::path(get, path = "/v1/edits", tag = "edits", params(EditQuery),
    responses((status = 200, body = EditPage)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: EditQuery = parse_query(q.as_deref())?;
    page(&state, &ctx, q, None, Some(EditState::Pending)).await
}

async fn visible(state: &SharedState, ctx: &Ctx, id: Uuid) -> Result<EditRecord, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    state
        .store
        .read(move |r| r.edit(&t, id))
        .await?
        .filter(|e| ctx.principal.sees_shop(&e.shop_id))
        .ok_or_else(|| ApiError::not_found("edit request"))
}

/// One edit.
#[utoipa::path(get, path = "/v1/edits/{id}", tag = "edits",
    params(("id" = uuid::Uuid, Path, description = "edit id")),
    responses((status = 200, body = EditView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let e = visible(&state, &ctx, uuid_param(&id, "id")?).await?;
    Ok(json(StatusCode::OK, &view(&e, &ctx.principal)))
}

/// Approve a pending edit (a key other than the requester's: 403 `own_edit`). The last approval
/// the tenant requires applies it (200 with the order) after checking again that the order is
/// still editable and that what the edit changes has not changed meanwhile — otherwise 409
/// `edit_failed` and the edit ends `failed`, saying why. An approval before the last: 200, still
/// pending.
#[utoipa::path(post, path = "/v1/edits/{id}/approve", tag = "edits",
    params(
        ("id" = uuid::Uuid, Path, description = "edit id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    responses(
        (status = 200, body = EditResultView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, description = "`own_edit`: the requester's key may not approve its edit", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`edit_not_pending` (decided already), `already_approved` (this key approved it), `edit_failed` (approved, but the order moved on), `out_of_stock` (nothing written; still pending)", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let (_, key): (Value, _) = parse_write(
        &headers,
        if body.is_empty() { b"{}" } else { &body },
        &ctx.principal,
        &format!("POST /v1/edits/{id}/approve"),
    )?;
    let e = visible(&state, &ctx, id).await?;
    let part = edit_partition(&state, &ctx.principal, e.order_id, e.edit.touches_lines()).await?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| edits::approve_edit(tx, &actor, id, now),
        render,
    )
    .await
}

/// The body of `POST /v1/edits/{id}/reject`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectEditRequest {
    /// Why (1 to 500 characters).
    pub reason: String,
}

/// Reject a pending edit, with a reason (the requester may withdraw its own this way).
#[utoipa::path(post, path = "/v1/edits/{id}/reject", tag = "edits",
    params(
        ("id" = uuid::Uuid, Path, description = "edit id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = RejectEditRequest,
    responses(
        (status = 200, body = EditResultView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`edit_not_pending`: decided already", body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn reject(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let (req, key): (RejectEditRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/edits/{id}/reject"),
    )?;
    let e = visible(&state, &ctx, id).await?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(e.order_id),
        move |tx| edits::reject_edit(tx, &actor, id, &req.reason, now),
        render,
    )
    .await
}

/// Which order edits need approval, and by how many people.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRulesView {
    /// A receiver changed once the order is paid (default true).
    #[serde(default = "yes")]
    pub address_after_payment: bool,
    /// Any change of lines: quantities, gifts added or removed (default true).
    #[serde(default = "yes")]
    pub lines: bool,
    /// Any edit of an order whose paid amount is above this, a decimal string (default none).
    #[serde(default)]
    pub amount_above: Option<String>,
    /// Distinct approvers, never the requester: 1 or 2 (default 1).
    #[serde(default = "one")]
    pub approvals_required: u8,
}

fn yes() -> bool {
    true
}

fn one() -> u8 {
    1
}

fn rules_view(r: &EditRules) -> EditRulesView {
    EditRulesView {
        address_after_payment: r.address_after_payment,
        lines: r.lines,
        amount_above: r.amount_above.map(|d| d.to_string()),
        approvals_required: r.approvals_required,
    }
}

/// The tenant's edit rules (the defaults until an admin sets them).
#[utoipa::path(get, path = "/v1/settings/order-edits", tag = "edits",
    responses((status = 200, body = EditRulesView)),
    security(("bearer" = [])))]
pub async fn get_rules(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    let r = state.store.read(move |r| r.edit_rules_of(&t)).await?;
    Ok(json(StatusCode::OK, &rules_view(&r)))
}

/// Set which order edits need approval; fields left out take their defaults.
#[utoipa::path(put, path = "/v1/settings/order-edits", tag = "edits",
    request_body = EditRulesView,
    responses((status = 200, body = EditRulesView), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_rules(
    State(state): State<SharedState>,
    ctx: Ctx,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, _): (EditRulesView, _) = crate::extract::parse_json(&body, false)?;
    let amount_above = req
        .amount_above
        .map(|s| {
            s.trim().parse::<Decimal>().map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "must_be_decimal",
                    "amount_above must be a decimal string such as \"5000.00\"",
                )
                .field("amount_above")
            })
        })
        .transpose()?;
    let rules = EditRules {
        address_after_payment: req.address_after_payment,
        lines: req.lines,
        amount_above,
        approvals_required: req.approvals_required,
    };
    let (actor, now) = (ctx.actor(), state.clock.now());
    let r = state
        .store
        .write(0, move |tx| edits::set_edit_rules(tx, &actor, &rules, now))
        .await?;
    Ok(json(StatusCode::OK, &rules_view(&r)))
}

//! The exception workflow's routes (issue 21): assign, unassign and write notes on an open
//! exception, an order's exceptions as work items with their notes, the tenant's SLA per kind,
//! and the dashboard of manual interventions (`GET /v1/interventions`).

use super::{parse_query, partition, scope_strings};
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, parse_write, write};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use orderhub_core::auth::Principal;
use orderhub_core::workflow::{self, Assignee, Note, Sla, WorkItem};
use orderhub_domain::OrderId;
use orderhub_domain::event_types as ev;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An order id from the path: 400 `invalid_id` when it is not one.
fn order_id(s: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(s).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "id must be an orderhub order id (a UUID)",
        )
        .field("id")
    })
}

fn kind_param(kind: &str) -> Result<String, ApiError> {
    if workflow::is_kind(kind) {
        Ok(kind.to_owned())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "kind must be an exception kind such as no_waybill, or on_hold",
        )
        .field("kind"))
    }
}

/// An open (or resolved) exception of an order as a piece of work.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkItemView {
    pub work_id: uuid::Uuid,
    pub order_id: uuid::Uuid,
    pub shop_id: String,
    pub kind: String,
    /// open, resolved
    pub state: String,
    pub raised_at: DateTime<Utc>,
    /// When it is due by the tenant's SLA for its kind (fixed when it was raised).
    pub due_at: DateTime<Utc>,
    /// Open and past its due time.
    pub overdue: bool,
    /// The key (id) handling it, and its name.
    pub assignee: Option<String>,
    pub assignee_name: Option<String>,
    pub assigned_at: Option<DateTime<Utc>>,
    /// When the escalation pass found it overdue (once).
    pub escalated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub notes_count: u32,
    pub version: u64,
    /// Oldest first; only in an order's exceptions (`GET /v1/orders/{id}/exceptions`) and a
    /// note's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<NoteView>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoteView {
    pub note_id: uuid::Uuid,
    pub at: DateTime<Utc>,
    /// `role:key name`.
    pub actor: String,
    pub key_id: String,
    pub text: String,
}

impl NoteView {
    fn new(n: &Note) -> Self {
        NoteView {
            note_id: n.note_id,
            at: n.at,
            actor: n.actor.clone(),
            key_id: n.key_id.clone(),
            text: n.text.clone(),
        }
    }
}

impl WorkItemView {
    pub fn new(i: &WorkItem, now: DateTime<Utc>) -> Self {
        WorkItemView {
            work_id: i.work_id,
            order_id: i.order_id.as_uuid(),
            shop_id: i.shop_id.to_string(),
            kind: i.kind.clone(),
            state: i.state.as_str().to_owned(),
            raised_at: i.raised_at,
            due_at: i.due_at,
            overdue: i.overdue(now),
            assignee: i.assignee.clone(),
            assignee_name: i.assignee_name.clone(),
            assigned_at: i.assigned_at,
            escalated_at: i.escalated_at,
            resolved_at: i.resolved_at,
            notes_count: i.notes,
            version: i.version,
            notes: None,
        }
    }
}

/// An item as of `now` (the hub's clock when the change was made).
fn render_item((i, now): &(WorkItem, DateTime<Utc>), _: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::OK, &WorkItemView::new(i, *now))
}

fn render_noted(
    ((i, n), now): &((WorkItem, Note), DateTime<Utc>),
    _: &Principal,
) -> (StatusCode, Vec<u8>) {
    let mut v = WorkItemView::new(i, *now);
    v.notes = Some(vec![NoteView::new(n)]);
    crate::extract::rendered(StatusCode::CREATED, &v)
}

/// The body of `POST /v1/orders/{id}/exceptions/{kind}/assign`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// `me`, or the id of one of the tenant's keys (not revoked).
    pub assignee: String,
    /// Take the exception over from this key id (its current assignee). Without it, an
    /// exception assigned to another key is refused: 409 `exception_assigned`.
    #[serde(default)]
    pub replace: Option<String>,
}

/// Give an open exception (or a hold: kind `on_hold`) to a key to handle. The first assignment
/// wins: 409 `exception_assigned` (naming the holder) when another key holds it, unless
/// `replace` names that key. Audit entry on the order and `exception.assigned`.
#[utoipa::path(post, path = "/v1/orders/{id}/exceptions/{kind}/assign", tag = "exceptions",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("kind" = String, Path, description = "The open exception, or on_hold"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = AssignRequest,
    responses(
        (status = 200, body = WorkItemView),
        (status = 400, description = "A bad order id or kind", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "Not open, or assigned to another key", body = orderhub_api::ErrorBody),
        (status = 422, description = "No such key", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn assign(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let kind = kind_param(&kind)?;
    let (req, key): (AssignRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/exceptions/{kind}/assign"),
    )?;
    let to = assignee(&state, &ctx.principal, req.assignee.trim()).await?;
    let replace = req.replace.map(|r| r.trim().to_owned());
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(id),
        move |tx| {
            workflow::assign(tx, &actor, id, &kind, &to, replace.as_deref(), now).map(|i| (i, now))
        },
        render_item,
    )
    .await
}

/// `me`, or a key of the caller's tenant that is not revoked.
async fn assignee(state: &SharedState, p: &Principal, who: &str) -> Result<Assignee, ApiError> {
    if who == "me" {
        return Ok(Assignee {
            key_id: p.key_id.clone(),
            name: p.key_name.clone(),
        });
    }
    let t = p.tenant_id.clone();
    let keys = state.store.read(move |r| r.api_keys(&t)).await?;
    keys.into_iter()
        .find(|k| k.key_id == who && k.revoked_at.is_none())
        .map(|k| Assignee {
            key_id: k.key_id,
            name: k.name,
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_key",
                "assignee must be `me` or the id of one of this tenant's keys (GET /v1/api-keys)",
            )
            .field("assignee")
        })
}

/// The body of `POST /v1/orders/{id}/exceptions/{kind}/unassign`: empty.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnassignRequest {}

/// Take the assignee off an open exception. Not assigned: the item unchanged.
#[utoipa::path(post, path = "/v1/orders/{id}/exceptions/{kind}/unassign", tag = "exceptions",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("kind" = String, Path, description = "The open exception, or on_hold"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    responses(
        (status = 200, body = WorkItemView),
        (status = 400, description = "A bad order id or kind", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn unassign(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let kind = kind_param(&kind)?;
    let (_, key): (UnassignRequest, _) = parse_write(
        &headers,
        if body.is_empty() { b"{}" } else { &body },
        &ctx.principal,
        &format!("POST /v1/orders/{id}/exceptions/{kind}/unassign"),
    )?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(id),
        move |tx| workflow::unassign(tx, &actor, id, &kind, now).map(|i| (i, now)),
        render_item,
    )
    .await
}

/// The body of `POST /v1/orders/{id}/exceptions/{kind}/notes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// 1 to 1000 characters; line breaks allowed. Kept (sealed at rest) after the exception is
    /// resolved.
    pub text: String,
}

/// Write a note on an open exception (at most 100 per exception): 201 with the item and the
/// note. The audit entry and `exception.noted` say a note was written, not what it says.
#[utoipa::path(post, path = "/v1/orders/{id}/exceptions/{kind}/notes", tag = "exceptions",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("kind" = String, Path, description = "The open exception, or on_hold"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = NoteRequest,
    responses(
        (status = 201, body = WorkItemView),
        (status = 400, description = "A bad order id or kind", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add_note(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let kind = kind_param(&kind)?;
    let (req, key): (NoteRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/exceptions/{kind}/notes"),
    )?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(id),
        move |tx| workflow::add_note(tx, &actor, id, &kind, &req.text, now).map(|r| (r, now)),
        render_noted,
    )
    .await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderExceptions {
    pub order_id: uuid::Uuid,
    /// Every exception of the order as work, open and resolved, oldest first, with its notes.
    pub exceptions: Vec<WorkItemView>,
}

/// An order's exceptions as work items — open and resolved, with assignee, due time, escalation
/// and notes.
#[utoipa::path(get, path = "/v1/orders/{id}/exceptions", tag = "exceptions",
    params(("id" = String, Path, description = "orderhub order id")),
    responses(
        (status = 200, body = OrderExceptions),
        (status = 400, description = "A bad order id", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn order_exceptions(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let o = super::orders::visible_order(&state, &ctx.principal, id).await?;
    let t = ctx.principal.tenant_id.clone();
    let (items, notes) = state
        .store
        .read(move |r| {
            let items = r.work_of_order(&t, id)?;
            let ids: Vec<uuid::Uuid> = items.iter().map(|i| i.work_id).collect();
            let notes = r.notes_of(&t, &ids)?;
            Ok((items, notes))
        })
        .await?;
    let now = state.clock.now();
    let exceptions = items
        .iter()
        .map(|i| {
            let mut v = WorkItemView::new(i, now);
            v.notes = Some(
                notes
                    .iter()
                    .filter(|n| n.work_id == i.work_id)
                    .map(NoteView::new)
                    .collect(),
            );
            v
        })
        .collect();
    let body = OrderExceptions {
        order_id: o.id.as_uuid(),
        exceptions,
    };
    Ok(crate::extract::json(StatusCode::OK, &body))
}

/// The tenant's SLA: hours from raise to due per exception kind (`on_hold` for holds), and for
/// kinds it does not name.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaBody {
    /// Hours per kind, each 1 to 720.
    pub hours: BTreeMap<String, u32>,
    /// 1 to 720.
    pub default_hours: u32,
}

fn sla_body(s: &Sla) -> SlaBody {
    SlaBody {
        hours: s.hours.clone(),
        default_hours: s.default_hours,
    }
}

/// The SLA per exception kind (defaults: out_of_stock 24 h, not_released 2 h, no_waybill 2 h,
/// no_tracking 24 h, after_sale 12 h, on_hold 4 h, others 8 h).
#[utoipa::path(get, path = "/v1/settings/exception-sla", tag = "exceptions",
    responses((status = 200, body = SlaBody)),
    security(("bearer" = [])))]
pub async fn get_sla(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    let sla = state.store.read(move |r| r.exception_sla_of(&t)).await?;
    Ok(crate::extract::json(StatusCode::OK, &sla_body(&sla)))
}

/// Set the SLA per exception kind. Exceptions open already keep their due time.
#[utoipa::path(put, path = "/v1/settings/exception-sla", tag = "exceptions",
    request_body = SlaBody,
    responses((status = 200, body = SlaBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_sla(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (SlaBody, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        "PUT /v1/settings/exception-sla",
    )?;
    let sla = Sla {
        hours: req.hours,
        default_hours: req.default_hours,
    };
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(("sla", ctx.principal.tenant_id.as_str())),
        move |tx| workflow::put_sla(tx, &actor, &sla, now),
        |s, _| crate::extract::rendered(StatusCode::OK, &sla_body(s)),
    )
    .await
}

/// What the dashboard counts as a person stepping in, by the audit action it reads, and the
/// kind it shows it under.
pub const INTERVENTIONS: &[(&str, &str)] = &[
    (ev::EXCEPTION_RESOLVED, "resolve"),
    ("hold", "hold"),
    ("approve", "approve"),
    ("cancel", "cancel"),
    ("retry", "retry"),
    ("switch_carrier", "switch_carrier"),
    ("edit", "edit"),
    ("edit_requested", "edit"),
    ("edit_approval", "edit_approval"),
    ("edit_rejected", "edit_approval"),
    (ev::AFTER_SALE_REQUESTED, "after_sale"),
    (ev::AFTER_SALE_APPROVED, "after_sale"),
    (ev::AFTER_SALE_REFUSED, "after_sale"),
    (ev::AFTER_SALE_RECEIVED, "after_sale"),
    (ev::AFTER_SALE_QC_PASSED, "after_sale"),
    (ev::AFTER_SALE_QC_FAILED, "after_sale"),
    (ev::AFTER_SALE_REFUNDED, "after_sale"),
    (ev::AFTER_SALE_CLOSED, "after_sale"),
    (ev::EXCEPTION_ASSIGNED, "assign"),
    (ev::EXCEPTION_UNASSIGNED, "assign"),
    (ev::EXCEPTION_NOTED, "note"),
];

/// The longest window of the dashboard, in days.
pub const INTERVENTION_DAYS_MAX: u32 = 90;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InterventionQuery {
    /// Days back from today, 1 to 90; default 30.
    #[param(minimum = 1, maximum = 90)]
    days: Option<u32>,
    /// The days' offset from UTC in minutes (-720 to 840), e.g. 480 for China; default 0.
    #[param(minimum = -720, maximum = 840)]
    tz_offset_minutes: Option<i32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InterventionDay {
    /// YYYY-MM-DD in the asked offset.
    pub day: String,
    pub total: u64,
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Interventions {
    pub days: u32,
    pub since: DateTime<Utc>,
    pub total: u64,
    /// Kinds: resolve, hold, approve, cancel, retry, switch_carrier, edit, edit_approval,
    /// after_sale, assign, note.
    pub by_kind: BTreeMap<String, u64>,
    /// `role:key name` → count.
    pub by_actor: BTreeMap<String, u64>,
    /// Every day of the window, oldest first (days without any included, with 0).
    pub by_day: Vec<InterventionDay>,
    /// The groups read reached their bound: the figures are a lower bound.
    pub truncated: bool,
}

/// What people did — resolutions by hand, holds, approvals, cancels, retries, carrier switches,
/// edits and their approvals, after-sales steps, assignments, notes — counted by kind, by actor
/// and by day over the last `days` days, from the audit trail (orderhub's own workers left out).
#[utoipa::path(get, path = "/v1/interventions", tag = "exceptions", params(InterventionQuery),
    responses((status = 200, body = Interventions), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn interventions(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: InterventionQuery = parse_query(q.as_deref())?;
    let days = q.days.unwrap_or(30);
    if !(1..=INTERVENTION_DAYS_MAX).contains(&days) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "out_of_range",
            format!("days must be 1 to {INTERVENTION_DAYS_MAX}"),
        )
        .field("days"));
    }
    let offset_min = q.tz_offset_minutes.unwrap_or(0);
    if !(-720..=840).contains(&offset_min) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "out_of_range",
            "tz_offset_minutes must be -720 to 840",
        )
        .field("tz_offset_minutes"));
    }
    let offset = i64::from(offset_min) * 60;
    let now = state.clock.now();
    // The window starts at the beginning of the first day, in the asked offset.
    let today = (now.timestamp() + offset).div_euclid(86_400);
    let first = today - i64::from(days) + 1;
    let since = DateTime::<Utc>::from_timestamp(first * 86_400 - offset, 0).unwrap_or(now);
    let t = ctx.principal.tenant_id.clone();
    let shops = scope_strings(&ctx.principal);
    let rows = state
        .store
        .read(move |r| {
            let actions: Vec<&str> = INTERVENTIONS.iter().map(|(a, _)| *a).collect();
            r.interventions(&t, since, offset, &actions, shops.as_deref())
        })
        .await?;
    let truncated = rows.len() >= orderhub_store::workflow::INTERVENTION_GROUPS_MAX as usize;
    let mut out = Interventions {
        days,
        since,
        total: 0,
        by_kind: BTreeMap::new(),
        by_actor: BTreeMap::new(),
        by_day: (first..=today)
            .map(|d| InterventionDay {
                day: day_text(d),
                total: 0,
                by_kind: BTreeMap::new(),
            })
            .collect(),
        truncated,
    };
    for row in rows {
        let Some((_, kind)) = INTERVENTIONS.iter().find(|(a, _)| *a == row.action) else {
            continue;
        };
        out.total += row.count;
        *out.by_kind.entry((*kind).to_owned()).or_default() += row.count;
        *out.by_actor.entry(row.actor.clone()).or_default() += row.count;
        if let Some(d) = usize::try_from(row.day - first)
            .ok()
            .and_then(|i| out.by_day.get_mut(i))
        {
            d.total += row.count;
            *d.by_kind.entry((*kind).to_owned()).or_default() += row.count;
        }
    }
    Ok(crate::extract::json(StatusCode::OK, &out))
}

fn day_text(day: i64) -> String {
    DateTime::<Utc>::from_timestamp(day * 86_400, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Hours as a duration, for the board's age filter.
pub fn hours(h: u32) -> Duration {
    Duration::hours(i64::from(h))
}

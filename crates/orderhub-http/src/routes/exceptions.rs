//! `GET /v1/exceptions`: the exception board. Open exceptions of the caller's orders (within its
//! shop scope) with when they were raised, counts per kind, and the order moves the caller's role
//! may make on each. Orders on hold are listed under the kind `on_hold`: a hold waits for a person.

use super::parse_query;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use orderhub_core::auth::{Permission, Principal};
use orderhub_core::ports::AuditEntry;
use orderhub_core::workflow::{Sla, WorkItem};
use orderhub_domain::OrderId;
use orderhub_domain::ids::Channel;
use orderhub_domain::lifecycle::CommandKind;
use orderhub_domain::{Order, ShopId, Status};
use orderhub_store::{AssigneeFilter, ExceptionFilter, OrderFilter, OrderSearch, WorkFilter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Rows on the board when the client names no limit, and the most it may ask for: the board is for
/// people, and each row costs one read of the order's audit trail.
const BOARD_DEFAULT: u32 = 200;
const BOARD_MAX: u32 = 1000;

/// The pseudo-kind of orders waiting on hold.
pub const ON_HOLD: &str = "on_hold";

/// Moves the board offers, when the lifecycle allows them from the order's status: approve
/// releases a hold, cancel stops the order. Watchdog remedies (retry a step, switch carrier) run
/// inside the fulfillment worker and have no API yet, so the board does not offer them.
const BOARD_ACTIONS: [CommandKind; 2] = [CommandKind::Approve, CommandKind::Cancel];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BoardQuery {
    /// One kind (`out_of_stock`, `no_waybill`, `on_hold` …) or `any` (default).
    kind: Option<String>,
    channel: Option<String>,
    shop: Option<String>,
    /// 1 to 1000, default 200.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `me` (the calling key), `unassigned`, or a key id.
    assignee: Option<String>,
    /// `true`: only exceptions past their due time.
    overdue: Option<bool>,
    /// Only exceptions open at least this many hours (1 to 8760).
    #[param(minimum = 1, maximum = 8760)]
    older_than_hours: Option<u32>,
    /// `since` (oldest first, the default) or `due` (earliest due first).
    sort: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenExceptionView {
    pub order_id: uuid::Uuid,
    pub external_order_id: String,
    pub channel: String,
    pub shop_id: String,
    pub status: String,
    pub kind: String,
    /// When it was raised (for a hold: when the order was put on hold).
    pub since: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    /// Order moves this key may make now: `approve`, `cancel`.
    pub actions: Vec<String>,
    /// The exception as a piece of work (`GET /v1/orders/{id}/exceptions` has its notes).
    pub work_id: Option<uuid::Uuid>,
    /// The key (id) handling it, and its name.
    pub assignee: Option<String>,
    pub assignee_name: Option<String>,
    /// When it is due by the tenant's SLA for its kind.
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub escalated_at: Option<DateTime<Utc>>,
    pub notes_count: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExceptionBoard {
    /// Oldest first.
    pub exceptions: Vec<OpenExceptionView>,
    /// Open exceptions per kind over every order in the key's scope (not only those listed).
    pub counts: BTreeMap<String, u64>,
    /// More open exceptions exist than were listed.
    pub truncated: bool,
}

/// The exception board: open exceptions by kind, oldest first, with the moves the key may make.
#[utoipa::path(get, path = "/v1/exceptions", tag = "orders", params(BoardQuery),
    responses((status = 200, body = ExceptionBoard), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn board(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: BoardQuery = parse_query(q.as_deref())?;
    let bad = |f: &str, e: orderhub_domain::ValidationError| {
        ApiError::new(StatusCode::BAD_REQUEST, e.rule, e.message).field(f)
    };
    let limit = super::page_limit(q.limit, BOARD_DEFAULT, BOARD_MAX)?;
    let kind = super::orders::exception_filter("kind", q.kind.as_deref())?;
    let p = ctx.principal.clone();
    let base = OrderFilter {
        tenant_id: p.tenant_id.clone(),
        status: None,
        channel: q
            .channel
            .as_deref()
            .map(Channel::parse)
            .transpose()
            .map_err(|e| bad("channel", e))?,
        shop_id: q
            .shop
            .as_deref()
            .map(ShopId::parse)
            .transpose()
            .map_err(|e| bad("shop", e))?,
        updated_since: None,
        search: OrderSearch::default(),
        shops: p.shops.clone(),
        after: None,
        // One more than asked, to tell whether the list is complete.
        limit: limit + 1,
    };
    let now = state.clock.now();
    let work = work_filter(&q, &p, kind.clone(), now, limit)?;
    let by_due = match q.sort.as_deref() {
        None | Some("since") => false,
        Some("due") => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "sort is since or due",
            )
            .field("sort"));
        }
    };
    let (rows, counts, items, sla) = state
        .store
        .read(move |r| {
            let sla = r.exception_sla_of(&base.tenant_id)?;
            let counts = counts(r, &base, limit)?;
            let (rows, items) = match work {
                Some(w) => rows_of_items(r, w, &base)?,
                None => {
                    let rows = rows_of_orders(r, &base, &kind)?;
                    let ids: Vec<OrderId> = rows.iter().map(|(o, _, _)| o.id).collect();
                    let items = r.work_open_of(&base.tenant_id, &ids)?;
                    (rows, items)
                }
            };
            Ok((rows, counts, items, sla))
        })
        .await?;
    let mut rows = with_items(rows, &items, &sla);
    if by_due {
        rows.sort_by(|a, b| a.4.cmp(&b.4).then(a.0.id.cmp(&b.0.id)));
    } else {
        rows.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.id.cmp(&b.0.id)));
    }
    let truncated = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let board = ExceptionBoard {
        exceptions: rows
            .into_iter()
            .map(|(o, kind, since, item, due)| OpenExceptionView {
                order_id: o.id.as_uuid(),
                external_order_id: o.external_order_id.to_string(),
                channel: o.channel.to_string(),
                shop_id: o.shop_id.to_string(),
                status: o.status.as_str().to_owned(),
                actions: actions(&o, &kind, &p),
                kind,
                since,
                age_seconds: since.map(|s| (now - s).num_seconds().max(0)),
                work_id: item.as_ref().map(|i| i.work_id),
                assignee: item.as_ref().and_then(|i| i.assignee.clone()),
                assignee_name: item.as_ref().and_then(|i| i.assignee_name.clone()),
                due_at: Some(due),
                overdue: now >= due,
                escalated_at: item.as_ref().and_then(|i| i.escalated_at),
                notes_count: item.as_ref().map_or(0, |i| i.notes),
            })
            .collect(),
        counts,
        truncated,
    };
    Ok(crate::extract::json(StatusCode::OK, &board))
}

/// A board row with its work item (if any) and its due time: the item's, else (an exception the
/// item of which is missing) its raise plus the tenant's SLA for its kind.
type Annotated = (
    Order,
    String,
    Option<DateTime<Utc>>,
    Option<WorkItem>,
    DateTime<Utc>,
);

fn with_items(rows: Vec<Row>, items: &[WorkItem], sla: &Sla) -> Vec<Annotated> {
    rows.into_iter()
        .map(|(o, kind, since)| {
            let item = items
                .iter()
                .find(|i| i.order_id == o.id && i.kind == kind)
                .cloned();
            let due = item.as_ref().map_or_else(
                || sla.due(&kind, since.unwrap_or(o.updated_at)),
                |i| i.due_at,
            );
            (o, kind, since, item, due)
        })
        .collect()
}

/// The board's rows read from orders (no workflow filter): orders with open exceptions (of
/// `kind`) and orders on hold, each with when it opened from the order's audit trail.
fn rows_of_orders(
    r: &mut dyn orderhub_store::ReadConn,
    base: &OrderFilter,
    kind: &Option<ExceptionFilter>,
) -> Result<Vec<Row>, orderhub_core::StoreError> {
    let holds = matches!(kind, None | Some(ExceptionFilter::Any))
        || *kind == Some(ExceptionFilter::Kind(ON_HOLD.to_owned()));
    let mut rows: Vec<Row> = Vec::new();
    if *kind != Some(ExceptionFilter::Kind(ON_HOLD.to_owned())) {
        let mut f = base.clone();
        f.search.exception = kind.clone().or(Some(ExceptionFilter::Any));
        for e in r.open_exceptions(&f)? {
            let audit = r.audit_for_order(&e.order.tenant_id, e.order.id)?;
            for k in &e.order.exceptions {
                if let Some(ExceptionFilter::Kind(want)) = kind
                    && want != k
                {
                    continue;
                }
                let since = raised_at(&audit, k).or(e.since);
                rows.push((e.order.clone(), k.clone(), since));
            }
        }
    }
    if holds {
        let mut f = base.clone();
        f.status = Some(Status::OnHold);
        for o in r.order_list(&f)? {
            let audit = r.audit_for_order(&o.tenant_id, o.id)?;
            let since = held_at(&audit).or(Some(o.updated_at));
            rows.push((o, ON_HOLD.to_owned(), since));
        }
    }
    Ok(rows)
}

/// Open exceptions per kind over every order in the scope, holds counted too.
fn counts(
    r: &mut dyn orderhub_store::ReadConn,
    base: &OrderFilter,
    limit: u32,
) -> Result<BTreeMap<String, u64>, orderhub_core::StoreError> {
    let mut counts: BTreeMap<String, u64> = r
        .exception_counts(&base.tenant_id, base.shops.as_deref())?
        .into_iter()
        .collect();
    let mut f = base.clone();
    f.status = Some(Status::OnHold);
    f.limit = limit;
    let n = r.order_count(&f)?;
    if n > 0 {
        counts.insert(ON_HOLD.to_owned(), n);
    }
    Ok(counts)
}

type Row = (Order, String, Option<DateTime<Utc>>);

/// The board's rows from the work items a workflow filter selects (earliest due first), each with
/// its order as it is now; items whose order no longer carries them (or is out of the shop and
/// channel filters) are left out.
fn rows_of_items(
    r: &mut dyn orderhub_store::ReadConn,
    w: WorkFilter,
    base: &OrderFilter,
) -> Result<(Vec<Row>, Vec<WorkItem>), orderhub_core::StoreError> {
    let items = r.work_list(&w)?;
    let mut rows = Vec::new();
    let mut kept = Vec::new();
    for i in items {
        let Some(o) = r.order_get(&base.tenant_id, i.order_id)? else {
            continue;
        };
        let carried = if i.kind == ON_HOLD {
            o.status == Status::OnHold
        } else {
            o.has_exception(&i.kind)
        };
        let shown = base.channel.as_ref().is_none_or(|c| *c == o.channel)
            && base.shop_id.as_ref().is_none_or(|s| *s == o.shop_id);
        if carried && shown {
            rows.push((o, i.kind.clone(), Some(i.raised_at)));
            kept.push(i);
        }
    }
    Ok((rows, kept))
}

/// The work items' filter when the board asks by assignee, overdue or age; `None` otherwise
/// (the board then lists orders' exceptions as it always did, annotated with their items).
fn work_filter(
    q: &BoardQuery,
    p: &Principal,
    kind: Option<ExceptionFilter>,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Option<WorkFilter>, ApiError> {
    let assignee = match q.assignee.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("me") => Some(AssigneeFilter::Key(p.key_id.clone())),
        Some("unassigned") => Some(AssigneeFilter::Unassigned),
        Some(k) if k.len() <= 64 && k.chars().all(|c| c.is_ascii_graphic()) => {
            Some(AssigneeFilter::Key(k.to_owned()))
        }
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "assignee is me, unassigned or a key id",
            )
            .field("assignee"));
        }
    };
    if let Some(h) = q.older_than_hours
        && !(1..=8760).contains(&h)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "out_of_range",
            "older_than_hours must be 1 to 8760",
        )
        .field("older_than_hours"));
    }
    let overdue = q.overdue == Some(true);
    if assignee.is_none() && !overdue && q.older_than_hours.is_none() {
        return Ok(None);
    }
    Ok(Some(WorkFilter {
        tenant: p.tenant_id.clone(),
        shops: super::scope_strings(p),
        kind: match kind {
            Some(ExceptionFilter::Kind(k)) => Some(k),
            _ => None,
        },
        assignee,
        due_before: overdue.then_some(now),
        raised_before: q.older_than_hours.map(|h| now - super::workflow::hours(h)),
        limit: limit + 1,
    }))
}

/// Exceptions a retry of the stuck step can clear: the watchdogs' and the channel write-back's,
/// and a stopped order's waybill cancellation that failed (a retry asks the carrier again).
const RETRY_KINDS: [&str; 5] = [
    "not_released",
    "no_waybill",
    "no_tracking",
    "writeback_failed",
    orderhub_core::usecases::WAYBILL_CANCEL_FAILED,
];
/// Exceptions another carrier can clear.
const SWITCH_KINDS: [&str; 2] = ["not_released", "no_waybill"];

/// What the board offers for one exception: the moves of [`BOARD_ACTIONS`] the lifecycle allows
/// from the order's status, `retry` (`POST /v1/orders/{id}/retry`) and `switch_carrier`
/// (`POST /v1/orders/{id}/carrier`) where they apply — each only if the key's role may.
fn actions(o: &Order, kind: &str, p: &Principal) -> Vec<String> {
    let mut out: Vec<String> = BOARD_ACTIONS
        .iter()
        .filter(|k| k.target(o.status).is_some() && p.can(Permission::Transition(**k)))
        .map(|k| k.as_str().to_owned())
        .collect();
    let steer = orderhub_core::usecases::may_steer_fulfillment(p);
    if steer && RETRY_KINDS.contains(&kind) && orderhub_core::usecases::retry_allowed(o.status) {
        out.push("retry".to_owned());
    }
    if steer
        && SWITCH_KINDS.contains(&kind)
        && orderhub_core::usecases::carrier_switch_allowed(o.status)
    {
        out.push("switch_carrier".to_owned());
    }
    out
}

/// The last time exception `kind` was raised on the order, from its audit trail.
fn raised_at(audit: &[AuditEntry], kind: &str) -> Option<DateTime<Utc>> {
    audit
        .iter()
        .rev()
        .find(|a| {
            a.action == orderhub_domain::event_types::EXCEPTION_RAISED
                && a.detail.get("exception").and_then(|e| e.as_str()) == Some(kind)
        })
        .map(|a| a.at)
}

/// When the order last went on hold.
fn held_at(audit: &[AuditEntry]) -> Option<DateTime<Utc>> {
    audit
        .iter()
        .rev()
        .find(|a| a.to_status == Status::OnHold && a.from_status != Some(Status::OnHold))
        .map(|a| a.at)
}

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
use orderhub_domain::ids::Channel;
use orderhub_domain::lifecycle::CommandKind;
use orderhub_domain::{Order, ShopId, Status};
use orderhub_store::{ExceptionFilter, OrderFilter, OrderSearch};
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
    let (rows, counts) = state
        .store
        .read(move |r| {
            let holds = matches!(&kind, None | Some(ExceptionFilter::Any))
                || kind == Some(ExceptionFilter::Kind(ON_HOLD.to_owned()));
            let mut rows: Vec<(Order, String, Option<DateTime<Utc>>)> = Vec::new();
            if kind != Some(ExceptionFilter::Kind(ON_HOLD.to_owned())) {
                let mut f = base.clone();
                f.search.exception = kind.clone().or(Some(ExceptionFilter::Any));
                for e in r.open_exceptions(&f)? {
                    let audit = r.audit_for_order(&e.order.tenant_id, e.order.id)?;
                    for k in &e.order.exceptions {
                        if let Some(ExceptionFilter::Kind(want)) = &kind
                            && want != k
                        {
                            continue;
                        }
                        let since = raised_at(&audit, k).or(e.since);
                        rows.push((e.order.clone(), k.clone(), since));
                    }
                }
            }
            let mut held = 0;
            if holds {
                let mut f = base.clone();
                f.status = Some(Status::OnHold);
                for o in r.order_list(&f)? {
                    let audit = r.audit_for_order(&o.tenant_id, o.id)?;
                    let since = held_at(&audit).or(Some(o.updated_at));
                    rows.push((o, ON_HOLD.to_owned(), since));
                    held += 1;
                }
            }
            let mut counts: BTreeMap<String, u64> = r
                .exception_counts(&base.tenant_id, base.shops.as_deref())?
                .into_iter()
                .collect();
            if held > 0 {
                // Exact when fewer than a page are on hold; otherwise counted in full.
                let n = if held <= limit as usize {
                    held as u64
                } else {
                    let mut f = base.clone();
                    f.status = Some(Status::OnHold);
                    r.order_count(&f)?
                };
                counts.insert(ON_HOLD.to_owned(), n);
            }
            Ok((rows, counts))
        })
        .await?;
    let mut rows = rows;
    rows.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.id.cmp(&b.0.id)));
    let truncated = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let board = ExceptionBoard {
        exceptions: rows
            .into_iter()
            .map(|(o, kind, since)| OpenExceptionView {
                order_id: o.id.as_uuid(),
                external_order_id: o.external_order_id.to_string(),
                channel: o.channel.to_string(),
                shop_id: o.shop_id.to_string(),
                status: o.status.as_str().to_owned(),
                actions: actions(&o, &kind, &p),
                kind,
                since,
                age_seconds: since.map(|s| (now - s).num_seconds().max(0)),
            })
            .collect(),
        counts,
        truncated,
    };
    Ok(crate::extract::json(StatusCode::OK, &board))
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

//! `/v1/events`: the outbox, read in commit order.

use super::parse_query;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use orderhub_api::events::{EventEnvelope, EventPage};
use serde::Deserialize;

const PAGE_DEFAULT: u32 = 100;
const PAGE_MAX: u32 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The last `seq` seen; 0 or absent for the beginning.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Events after a position, in commit order. A reader that follows `next_after` sees every event
/// once, including those of transactions that committed late.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = EventPage), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: EventsQuery = parse_query(q.as_deref())?;
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "out_of_range",
            "after must be 0 or more",
        )
        .field("after"));
    }
    let limit = super::page_limit(q.limit, PAGE_DEFAULT, PAGE_MAX)?;
    let t = ctx.principal.tenant_id.clone();
    let rows = state
        .store
        .read(move |r| r.events_after(&t, after, limit))
        .await?;
    // A key scoped to some shops sees only their orders' events.
    let visible = |payload: &serde_json::Value| match &ctx.principal.shops {
        None => true,
        Some(shops) => payload
            .get("shop_id")
            .and_then(|s| s.as_str())
            .is_some_and(|s| shops.iter().any(|x| x.as_str() == s)),
    };
    let next_after = rows.last().map_or(after, |r| r.seq);
    let events = rows
        .into_iter()
        .map(|r| {
            let payload: serde_json::Value =
                serde_json::from_str(&r.event.payload).unwrap_or_default();
            (r, payload)
        })
        .filter(|(_, payload)| visible(payload))
        .map(|(r, payload)| EventEnvelope {
            seq: r.seq,
            event_id: r.event.event_id,
            subject: format!("orderhub.{}.{}", r.event.tenant_id, r.event.event_type),
            event_type: r.event.event_type,
            tenant_id: r.event.tenant_id.to_string(),
            aggregate_id: r.event.aggregate_id,
            aggregate_version: r.event.aggregate_version,
            occurred_at: r.event.occurred_at,
            trace_id: r.event.trace_id,
            payload,
        })
        .collect();
    let page = EventPage { events, next_after };
    Ok(crate::extract::json(StatusCode::OK, &page))
}

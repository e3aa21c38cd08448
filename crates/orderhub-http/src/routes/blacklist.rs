//! The tenant's blacklist (issue 22): buyer ids, phones and addresses that review rules match
//! (`buyer_blacklisted`, `phone_blacklisted`, `address_blacklisted`). A value goes in and is kept
//! only as its blind index (`orderhub_core::blacklist`): listing shows each entry's id, kind,
//! note and time, never a value.

use super::{page_limit, parse_query, partition, uuid_param};
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json, parse_write, write};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use orderhub_core::blacklist::{self, BlacklistEntry, BlacklistKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The body of `POST /v1/blacklist`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddEntry {
    /// buyer, phone or address
    pub kind: String,
    /// The buyer id, phone or address (province, city, district and street as one string). Kept
    /// only as its blind index; never answered back.
    pub value: String,
    /// Why (≤ 200 characters, stored in clear: do not write the value here).
    #[serde(default)]
    pub note: Option<String>,
}

/// An entry as answered: no value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    pub entry_id: Uuid,
    /// buyer, phone or address
    pub kind: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn view(e: &BlacklistEntry) -> EntryView {
    EntryView {
        entry_id: e.entry_id,
        kind: e.kind.as_str().to_owned(),
        note: e.note.clone(),
        created_at: e.created_at,
    }
}

/// Put a buyer id, phone or address on the tenant's blacklist (kept as a blind index only).
#[utoipa::path(post, path = "/v1/blacklist", tag = "rules",
    request_body = AddEntry,
    responses(
        (status = 201, body = EntryView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody),
        (status = 409, description = "`blacklist_entry_exists`: the value is listed under this kind already", body = orderhub_api::ErrorBody),
        (status = 422, description = "`kind`, `value` (empty once normalized, too long) or `note` (too long), or the tenant's 100,000 entries", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (AddEntry, _) =
        parse_write(&headers, &body, &ctx.principal, "POST /v1/blacklist")?;
    let kind = BlacklistKind::parse(&req.kind).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            "kind must be buyer, phone or address",
        )
        .field("kind")
    })?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    let part = partition(ctx.principal.tenant_id.as_str());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| blacklist::add(tx, &actor, kind, &req.value, req.note.as_deref(), now),
        |e, _| crate::extract::rendered(StatusCode::CREATED, &view(e)),
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The tenant's blacklist entries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryPage {
    pub entries: Vec<EntryView>,
}

/// The tenant's blacklist, newest first: each entry's id, kind, note and time (never a value).
#[utoipa::path(get, path = "/v1/blacklist", tag = "rules", params(ListQuery),
    responses((status = 200, body = EntryPage), (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ListQuery = parse_query(q.as_deref())?;
    let limit = page_limit(q.limit, 100, 500)?;
    let t = ctx.principal.tenant_id.clone();
    let entries = state
        .store
        .read(move |r| r.blacklist_list(&t, limit))
        .await?;
    Ok(json(
        StatusCode::OK,
        &EntryPage {
            entries: entries.iter().map(view).collect(),
        },
    ))
}

/// Take an entry off the blacklist: orders created from now on no longer match it.
#[utoipa::path(delete, path = "/v1/blacklist/{id}", tag = "rules",
    params(("id" = uuid::Uuid, Path, description = "entry id")),
    responses((status = 204, description = "Removed"), (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let actor = ctx.actor();
    let part = partition(ctx.principal.tenant_id.as_str());
    write(
        &state,
        &ctx.principal,
        None,
        part,
        move |tx| blacklist::delete(tx, &actor, id),
        |_, _| (StatusCode::NO_CONTENT, Vec::new()),
    )
    .await
}

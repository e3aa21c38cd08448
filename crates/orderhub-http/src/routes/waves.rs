//! Waves (issue 28, first slice): `POST /v1/waves` groups a warehouse's released orders not yet
//! waved into waves with pick lists (`orderhub_domain::wave::plan`, the policy in the body);
//! `GET /v1/waves` lists them newest first with a cursor, `GET /v1/waves/{id}` answers one with
//! its orders and pick list; `start` and `close` move it (409 `wave_wrong_state` otherwise).

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
use orderhub_core::auth::Principal;
use orderhub_core::waves::{self as core_waves, WAVE_TAKE_MAX, WaveRecord, WaveStatus};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::wave::WavePolicy;
use orderhub_store::{WaveFilter, WaveSummary};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The body of `POST /v1/waves`: the warehouse, the policy (each field optional, defaults as
/// listed) and how many released orders to take at most.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWaves {
    pub warehouse_id: String,
    /// Orders per wave, 1 to 1,000 (default 50).
    #[serde(default)]
    pub max_orders: Option<u32>,
    /// Order lines per wave, 1 to 10,000 (default 200).
    #[serde(default)]
    pub max_lines: Option<u32>,
    /// One carrier per wave (default true).
    #[serde(default)]
    pub by_carrier: Option<bool>,
    /// One destination province per wave (default false).
    #[serde(default)]
    pub by_province: Option<bool>,
    /// Single-line and multi-line orders in separate waves (default true).
    #[serde(default)]
    pub split_single_multi: Option<bool>,
    /// Deadlines in different buckets of this many hours (1 to 168) in different waves (default:
    /// no buckets).
    #[serde(default)]
    pub deadline_bucket_hours: Option<u32>,
    /// Orders sharing SKUs together (default true).
    #[serde(default)]
    pub sku_overlap: Option<bool>,
    /// Released orders to take at most, oldest first: 1 to 20,000 (default 20,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl CreateWaves {
    fn policy(&self) -> WavePolicy {
        let d = WavePolicy::default();
        WavePolicy {
            max_orders: self.max_orders.unwrap_or(d.max_orders),
            max_lines: self.max_lines.unwrap_or(d.max_lines),
            by_carrier: self.by_carrier.unwrap_or(d.by_carrier),
            by_province: self.by_province.unwrap_or(d.by_province),
            split_single_multi: self.split_single_multi.unwrap_or(d.split_single_multi),
            deadline_bucket_hours: self.deadline_bucket_hours.or(d.deadline_bucket_hours),
            sku_overlap: self.sku_overlap.unwrap_or(d.sku_overlap),
        }
    }
}

/// A wave in a list or in the answer to its creation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WaveBrief {
    pub wave_id: Uuid,
    pub warehouse_id: String,
    /// open, started, closed
    pub status: String,
    pub orders: u32,
    pub lines: u32,
    /// Distinct SKUs on its pick list.
    pub skus: u32,
    pub earliest_ship_by: Option<DateTime<Utc>>,
    /// `role:key name` of each step, and when.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_by: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
}

fn brief(s: &WaveSummary) -> WaveBrief {
    WaveBrief {
        wave_id: s.wave_id,
        warehouse_id: s.warehouse_id.as_str().to_owned(),
        status: s.status.as_str().to_owned(),
        orders: s.orders,
        lines: s.lines,
        skus: s.skus,
        earliest_ship_by: s.earliest_ship_by,
        created_by: s.created_by.actor.clone(),
        created_at: s.created_by.at,
        started_by: s.started_by.as_ref().map(|w| w.actor.clone()),
        started_at: s.started_by.as_ref().map(|w| w.at),
        closed_by: s.closed_by.as_ref().map(|w| w.actor.clone()),
        closed_at: s.closed_by.as_ref().map(|w| w.at),
    }
}

fn summary_of(w: &WaveRecord) -> WaveSummary {
    WaveSummary {
        wave_id: w.wave_id,
        warehouse_id: w.warehouse_id.clone(),
        status: w.status,
        orders: u32::try_from(w.orders.len()).unwrap_or(u32::MAX),
        lines: w.lines,
        skus: u32::try_from(w.picks.len()).unwrap_or(u32::MAX),
        earliest_ship_by: w.earliest_ship_by,
        created_by: w.created_by.clone(),
        started_by: w.started_by.clone(),
        closed_by: w.closed_by.clone(),
    }
}

/// How much of one SKU one order takes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PickOrder {
    pub order_id: Uuid,
    pub quantity: u64,
}

/// One line of a pick list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PickLine {
    pub sku: String,
    pub quantity: u64,
    pub orders: Vec<PickOrder>,
}

/// The policy a wave was made with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub max_orders: u32,
    pub max_lines: u32,
    pub by_carrier: bool,
    pub by_province: bool,
    pub split_single_multi: bool,
    pub deadline_bucket_hours: Option<u32>,
    pub sku_overlap: bool,
}

/// A wave with its orders and pick list (walking order: by SKU, until bins exist).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WaveView {
    #[serde(flatten)]
    pub wave: WaveBrief,
    pub policy: PolicyView,
    pub order_ids: Vec<Uuid>,
    pub picks: Vec<PickLine>,
}

fn view(w: &WaveRecord) -> WaveView {
    let p = &w.policy;
    WaveView {
        wave: brief(&summary_of(w)),
        policy: PolicyView {
            max_orders: p.max_orders,
            max_lines: p.max_lines,
            by_carrier: p.by_carrier,
            by_province: p.by_province,
            split_single_multi: p.split_single_multi,
            deadline_bucket_hours: p.deadline_bucket_hours,
            sku_overlap: p.sku_overlap,
        },
        order_ids: w.orders.iter().map(|o| o.as_uuid()).collect(),
        picks: w
            .picks
            .iter()
            .map(|k| PickLine {
                sku: k.sku.as_str().to_owned(),
                quantity: k.quantity,
                orders: k
                    .orders
                    .iter()
                    .map(|(o, q)| PickOrder {
                        order_id: o.as_uuid(),
                        quantity: *q,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The answer to `POST /v1/waves`: the waves made, first due first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWaves {
    pub waves: Vec<WaveBrief>,
    /// Orders waved in all.
    pub orders: u32,
}

/// The waves one creation made, as the writer hands them to the renderer.
struct Made(Vec<WaveRecord>);

fn render_created(ws: &Made, _: &Principal) -> (StatusCode, Vec<u8>) {
    let waves: Vec<WaveBrief> = ws.0.iter().map(|w| brief(&summary_of(w))).collect();
    let orders = waves.iter().map(|w| w.orders).sum();
    crate::extract::rendered(StatusCode::CREATED, &CreatedWaves { waves, orders })
}

fn render_one(w: &WaveRecord, _: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::OK, &view(w))
}

/// Group the warehouse's released orders not yet waved into waves with pick lists. Orders due
/// first are in the first waves. No order to wave: 201 with no wave.
#[utoipa::path(post, path = "/v1/waves", tag = "waves",
    request_body = CreateWaves,
    responses(
        (status = 201, body = CreatedWaves),
        (status = 403, body = orderhub_api::ErrorBody),
        (status = 422, description = "a policy field or `limit` out of range, or `unknown_warehouse` (`field`: `warehouse_id`)", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (CreateWaves, _) =
        parse_write(&headers, &body, &ctx.principal, "POST /v1/waves")?;
    let warehouse = WarehouseId::parse(&req.warehouse_id)?;
    let policy = req.policy();
    policy.check()?;
    let take = req.limit.unwrap_or(WAVE_TAKE_MAX);
    let (actor, now) = (ctx.actor(), state.clock.now());
    // One writer per tenant and warehouse: creations for one warehouse queue behind each other
    // (the store's unique index still refuses a shared order across writers and processes).
    let part = partition((ctx.principal.tenant_id.as_str(), warehouse.as_str()));
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| core_waves::create_waves(tx, &actor, &warehouse, &policy, take, now).map(Made),
        render_created,
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this warehouse's waves.
    warehouse_id: Option<String>,
    /// open, started or closed.
    status: Option<String>,
    /// The cursor: `next_before` of the previous page.
    before: Option<Uuid>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// A page of waves, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WavePage {
    pub waves: Vec<WaveBrief>,
    /// The cursor of the next page (`before`); absent on the last.
    pub next_before: Option<Uuid>,
}

/// The tenant's waves, newest first.
#[utoipa::path(get, path = "/v1/waves", tag = "waves", params(ListQuery),
    responses((status = 200, body = WavePage), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ListQuery = parse_query(q.as_deref())?;
    let limit = page_limit(q.limit, 50, 200)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            WaveStatus::parse(s).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    "status must be open, started or closed",
                )
                .field("status")
            })
        })
        .transpose()?;
    let warehouse = q
        .warehouse_id
        .as_deref()
        .map(WarehouseId::parse)
        .transpose()
        .map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.message)
                .field("warehouse_id")
        })?;
    let filter = WaveFilter {
        tenant: ctx.principal.tenant_id.clone(),
        warehouse,
        status,
        before: q.before,
        limit,
    };
    let rows = state.store.read(move |r| r.waves(&filter)).await?;
    let next_before = super::next_cursor(&rows, limit, |w| w.wave_id);
    Ok(json(
        StatusCode::OK,
        &WavePage {
            waves: rows.iter().map(brief).collect(),
            next_before,
        },
    ))
}

/// One wave with its orders and pick list.
#[utoipa::path(get, path = "/v1/waves/{id}", tag = "waves",
    params(("id" = uuid::Uuid, Path, description = "wave id")),
    responses((status = 200, body = WaveView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, t) = (uuid_param(&id, "id")?, ctx.principal.tenant_id.clone());
    let w = state
        .store
        .read(move |r| r.wave(&t, id))
        .await?
        .ok_or_else(|| ApiError::not_found("wave"))?;
    Ok(json(StatusCode::OK, &view(&w)))
}

/// The body of `start` and `close`: empty, or `{}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

async fn step(
    state: SharedState,
    ctx: Ctx,
    id: &str,
    headers: HeaderMap,
    body: &[u8],
    close: bool,
) -> Result<Response, ApiError> {
    let id = uuid_param(id, "id")?;
    let name = if close { "close" } else { "start" };
    let (_, key): (NoFields, _) = parse_write(
        &headers,
        if body.is_empty() { b"{}" } else { body },
        &ctx.principal,
        &format!("POST /v1/waves/{id}/{name}"),
    )?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    let part = partition(ctx.principal.tenant_id.as_str());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| {
            if close {
                core_waves::close(tx, &actor, id, now)
            } else {
                core_waves::start(tx, &actor, id, now)
            }
        },
        render_one,
    )
    .await
}

/// Open → started: a picker took the wave (409 `wave_wrong_state` otherwise).
#[utoipa::path(post, path = "/v1/waves/{id}/start", tag = "waves",
    params(("id" = uuid::Uuid, Path, description = "wave id")),
    responses((status = 200, body = WaveView), (status = 400, description = "`invalid_id`: id is not a UUID", body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody), (status = 409, description = "`wave_wrong_state`: the wave is not open", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn start(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    step(state, ctx, &id, headers, &body, false).await
}

/// Started → closed: the wave is picked (409 `wave_wrong_state` otherwise).
#[utoipa::path(post, path = "/v1/waves/{id}/close", tag = "waves",
    params(("id" = uuid::Uuid, Path, description = "wave id")),
    responses((status = 200, body = WaveView), (status = 400, description = "`invalid_id`: id is not a UUID", body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody), (status = 409, description = "`wave_wrong_state`: the wave is not started", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn close(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    step(state, ctx, &id, headers, &body, true).await
}

//! Merge and split (issue 21): `POST /v1/merges/preview` says what merging some orders would do
//! and why others are refused, `POST /v1/merges` merges them into one parcel (all or nothing),
//! `GET /v1/merges/{id}` and `POST /v1/merges/{id}/undo` (before release); `POST
//! /v1/orders/{id}/split` splits an order into parcels (explicit lines, or by stock);
//! `POST /v1/orders/{id}/parcels/{parcel_id}/ship` ships one parcel with its waybill (a merged
//! parcel: every member order); `/v1/settings/merges` the tenant's merge window and shop policy.

use super::{partition, stock_partition};
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json, parse_write, write};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use orderhub_api::orders::OrderView;
use orderhub_core::auth::Principal;
use orderhub_core::combine::{self, MergePreview, Merged, ParcelWaybill, SplitBy};
use orderhub_domain::combine::{LineQty, MergeRules, ShipmentGroup};
use orderhub_domain::ids::CarrierCode;
use orderhub_domain::{Order, OrderId, ValidationError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn bad_id(field: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_id",
        format!("{field} must be a UUID"),
    )
    .field(field)
}

fn order_id(s: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(s).map_err(|_| bad_id("id"))
}

fn uuid(s: &str, field: &str) -> Result<Uuid, ApiError> {
    s.parse().map_err(|_| bad_id(field))
}

/// The orders to merge (2 to 20 orderhub order ids) and why.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    pub order_ids: Vec<String>,
    /// Up to 500 characters, kept on the group and the orders' timelines.
    #[serde(default)]
    pub reason: Option<String>,
}

fn ids(req: &MergeRequest) -> Result<Vec<OrderId>, ApiError> {
    if req.order_ids.len() > orderhub_domain::combine::MERGE_ORDERS_MAX {
        return Err(ValidationError::new(
            "order_ids",
            "out_of_range",
            format!(
                "a merge takes 2 to {} orders",
                orderhub_domain::combine::MERGE_ORDERS_MAX
            ),
        )
        .into());
    }
    req.order_ids
        .iter()
        .enumerate()
        .map(|(i, s)| {
            OrderId::parse(s).map_err(|e| {
                ApiError::from(ValidationError::new(
                    format!("order_ids[{i}]"),
                    e.rule,
                    e.message,
                ))
            })
        })
        .collect()
}

/// One order a merge would leave out, and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefusedView {
    pub order_id: Uuid,
    /// status, in_group, split, partly_shipped, stopped, out_of_stock,
    /// nothing_to_ship, other_shop, other_receiver, outside_window, other_warehouse,
    /// nothing_to_merge_with
    pub code: String,
    pub message: String,
}

/// What merging the orders would do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MergePreviewView {
    /// The orders that would ship as one parcel (the first is the one the others were compared
    /// with). Empty when fewer than two qualify.
    pub mergeable: Vec<Uuid>,
    pub refused: Vec<RefusedView>,
    pub rules: MergeRulesView,
}

fn preview_view(p: &MergePreview) -> MergePreviewView {
    MergePreviewView {
        mergeable: p.mergeable.iter().map(|i| i.as_uuid()).collect(),
        refused: p
            .refused
            .iter()
            .map(|(id, r)| RefusedView {
                order_id: id.as_uuid(),
                code: r.code.to_owned(),
                message: r.message.clone(),
            })
            .collect(),
        rules: rules_view(&p.rules),
    }
}

/// A member that left a merge.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeftView {
    pub order_id: Uuid,
    /// undone, cancelled, goods_changed, receiver_changed, dissolved
    pub why: String,
    pub at: DateTime<Utc>,
}

/// A merge: orders of one buyer and address shipped as one parcel.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub group_id: Uuid,
    pub parcel_id: Uuid,
    /// open, undone, dissolved, shipped
    pub state: String,
    pub members: Vec<Uuid>,
    pub left: Vec<LeftView>,
    /// manual
    pub origin: String,
    pub reason: Option<String>,
    pub created_by: String,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn group_view(g: &ShipmentGroup) -> GroupView {
    GroupView {
        group_id: g.group_id,
        parcel_id: g.parcel_id,
        state: g.state.as_str().to_owned(),
        members: g.members.iter().map(|m| m.as_uuid()).collect(),
        left: g
            .left
            .iter()
            .map(|l| LeftView {
                order_id: l.order_id.as_uuid(),
                why: l.why.clone(),
                at: l.at,
            })
            .collect(),
        origin: g.origin.clone(),
        reason: g.reason.clone(),
        created_by: g.created_by.clone(),
        version: g.version,
        created_at: g.created_at,
        updated_at: g.updated_at,
    }
}

/// A merge and its member orders as stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MergedView {
    pub group: GroupView,
    pub orders: Vec<OrderView>,
}

fn render_merged(m: &Merged, p: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(
        StatusCode::CREATED,
        &MergedView {
            group: group_view(&m.group),
            orders: m
                .orders
                .iter()
                .map(|o| OrderView::new(o, p.pii_read))
                .collect(),
        },
    )
}

/// What merging these orders would do: which ship as one parcel and, for each other, a code and
/// why (another receiver, shop, warehouse, outside the window, released, merged already …).
/// Nothing is written.
#[utoipa::path(post, path = "/v1/merges/preview", tag = "merges",
    request_body = MergeRequest,
    responses(
        (status = 200, body = MergePreviewView),
        (status = 404, description = "`not_found`: an order is not the key's to see", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn preview(
    State(state): State<SharedState>,
    ctx: Ctx,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, _): (MergeRequest, _) = crate::extract::parse_json(&body, false)?;
    let ids = ids(&req)?;
    let actor = ctx.actor();
    let part = partition(ids.iter().min());
    let p = state
        .store
        .write(part, move |tx| combine::preview_merge(tx, &actor, &ids))
        .await?;
    Ok(json(StatusCode::OK, &preview_view(&p)))
}

/// Merge orders of one buyer to one address (same shop unless the tenant allows across shops,
/// paid within the tenant's window, not yet released, shipping from one warehouse) into one
/// parcel. All or nothing: any order that does not qualify refuses the merge (409
/// `merge_refused`, `field` = `order_ids[i]`). Each order keeps its own lifecycle and channel
/// write-back; the parcel's tracking number goes to each.
#[utoipa::path(post, path = "/v1/merges", tag = "merges",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat")),
    request_body = MergeRequest,
    responses(
        (status = 201, body = MergedView),
        (status = 404, description = "`not_found`: an order is not the key's to see", body = orderhub_api::ErrorBody),
        (status = 409, description = "`merge_refused` (an order does not qualify: `field` names it, the message why)", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn merge(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (MergeRequest, _) =
        parse_write(&headers, &body, &ctx.principal, "POST /v1/merges")?;
    let ids = ids(&req)?;
    let reason = req.reason;
    let (actor, now) = (ctx.actor(), state.clock.now());
    let part = partition(ids.iter().min());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| combine::merge(tx, &actor, &ids, reason.as_deref(), now),
        render_merged,
    )
    .await
}

/// A merge with its members and the ones that left.
#[utoipa::path(get, path = "/v1/merges/{id}", tag = "merges",
    params(("id" = String, Path, description = "group id")),
    responses(
        (status = 200, body = GroupView),
        (status = 400, description = "`invalid_id`: the id is not a UUID", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid(&id, "id")?;
    let t = ctx.principal.tenant_id.clone();
    let g = state
        .store
        .read(move |r| r.group(&t, id))
        .await?
        .ok_or_else(|| ApiError::not_found("shipment group"))?;
    // A group is the caller's only if every member (and every order that left) is in its scope.
    let p = ctx.principal.clone();
    let t = p.tenant_id.clone();
    let ids: Vec<OrderId> = g
        .members
        .iter()
        .copied()
        .chain(g.left.iter().map(|l| l.order_id))
        .collect();
    let visible = state
        .store
        .read(move |r| {
            for id in &ids {
                if !r
                    .order_get(&t, *id)?
                    .is_some_and(|o| p.sees_shop(&o.shop_id))
                {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await?;
    if !visible {
        return Err(ApiError::not_found("shipment group"));
    }
    Ok(json(StatusCode::OK, &group_view(&g)))
}

fn render_group(g: &ShipmentGroup, _: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::OK, &group_view(g))
}

/// No body (or `{}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyRequest {}

/// Undo a merge before any member is released: each order ships on its own again.
#[utoipa::path(post, path = "/v1/merges/{id}/undo", tag = "merges",
    params(
        ("id" = String, Path, description = "group id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    responses(
        (status = 200, body = GroupView),
        (status = 400, description = "`invalid_id`: the id is not a UUID", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`group_not_open` (undone, dissolved or shipped), `member_released` (a member is released or later: `field` names it)", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn undo(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = uuid(&id, "id")?;
    let (_, key): (EmptyRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/merges/{id}/undo"),
    )?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(id),
        move |tx| combine::undo_merge(tx, &actor, id, now),
        render_group,
    )
    .await
}

/// Units of one line in one parcel.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParcelLineIn {
    pub line_id: u32,
    pub quantity: u32,
}

/// One parcel of an explicit split.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParcelIn {
    pub lines: Vec<ParcelLineIn>,
}

/// How to split: `by` = `lines` with `parcels` (2 to 20, covering every unit still to ship once),
/// `stock` (an order on backorder: what one warehouse has ships now, the rest when it arrives), or
/// `weight` (parcels within the warehouse's `parcel_max_kg`, by the SKUs' `weight_kg`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    pub by: String,
    #[serde(default)]
    pub parcels: Vec<ParcelIn>,
    #[serde(default)]
    pub reason: Option<String>,
}

fn split_by(req: SplitRequest) -> Result<(SplitBy, Option<String>), ApiError> {
    let by = match req.by.as_str() {
        "lines" => {
            if req.parcels.len() > orderhub_domain::combine::PARCELS_MAX
                || req
                    .parcels
                    .iter()
                    .any(|p| p.lines.len() > orderhub_domain::order::LINES_MAX)
            {
                return Err(ValidationError::new(
                    "parcels",
                    "out_of_range",
                    format!(
                        "a split makes 2 to {} parcels of at most {} lines",
                        orderhub_domain::combine::PARCELS_MAX,
                        orderhub_domain::order::LINES_MAX
                    ),
                )
                .into());
            }
            SplitBy::Lines(
                req.parcels
                    .into_iter()
                    .map(|p| {
                        p.lines
                            .into_iter()
                            .map(|l| LineQty {
                                line_id: l.line_id,
                                quantity: l.quantity,
                            })
                            .collect()
                    })
                    .collect(),
            )
        }
        "stock" if req.parcels.is_empty() => SplitBy::Stock,
        "stock" => {
            return Err(ValidationError::new(
                "parcels",
                "not_allowed",
                "a split by stock plans its parcels itself: leave parcels out",
            )
            .into());
        }
        _ => {
            return Err(
                ValidationError::new("by", "unknown_value", "by must be lines or stock").into(),
            );
        }
    };
    Ok((by, req.reason))
}

fn render_order(o: &Order, p: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::OK, &OrderView::new(o, p.pii_read))
}

/// The writer of an order's stock moves (as payments and shipments use).
async fn stock_writer(state: &SharedState, p: &Principal, id: OrderId) -> Result<u64, ApiError> {
    if state.store.writers() < 2 {
        return Ok(partition(id));
    }
    let t = p.tenant_id.clone();
    Ok(
        match state.store.read(move |r| r.order_get(&t, id)).await? {
            Some(o) => stock_partition(o.lines.iter().map(|l| &l.sku).min()),
            None => partition(id),
        },
    )
}

/// Split an order (paid, not released, not merged) into parcels, each shipped with its own
/// waybill. By stock: the order must be on backorder; the warehouse with the most of it reserves
/// that part now (a parcel that can leave once the order is released), the rest waits on
/// backorder as a second parcel.
#[utoipa::path(post, path = "/v1/orders/{id}/split", tag = "merges",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = SplitRequest,
    responses(
        (status = 200, body = OrderView),
        (status = 400, description = "`invalid_id`: the id is not an order id", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`status` (not paid, or released), `in_group` (merged), `split` (split already), `stopped`, `not_short` (by stock: its stock is reserved whole), `no_warehouse` (by weight: neither allocated nor reserved)", body = orderhub_api::ErrorBody),
        (status = 422, description = "`does_not_add_up` (the parcels do not cover every unit once), `unknown_line`, `no_stock` / `fits_whole` (by stock or weight), `no_parcel_limit` / `too_many_parcels` (by weight) …; `field` names it", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn split(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let (req, key): (SplitRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/split"),
    )?;
    let (by, reason) = split_by(req)?;
    let part = match by {
        SplitBy::Stock => stock_writer(&state, &ctx.principal, id).await?,
        SplitBy::Lines(_) | SplitBy::Weight => partition(id),
    };
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| combine::split(tx, &actor, id, by.clone(), reason.as_deref(), now),
        render_order,
    )
    .await
}

/// A parcel's waybill, as the warehouse or its WMS reports it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipParcelRequest {
    /// A carrier on the tenant's whitelist.
    pub carrier: String,
    pub tracking_no: String,
    /// The carrier's acknowledgement of the waybill.
    pub logistics_no: String,
}

/// The orders a parcel's shipment changed (a merged parcel: every member).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShippedView {
    pub orders: Vec<OrderView>,
}

// A `Render<Vec<Order>>`: the use case's result type, so a `&Vec`.
#[allow(clippy::ptr_arg)]
fn render_shipped(orders: &Vec<Order>, p: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(
        StatusCode::OK,
        &ShippedView {
            orders: orders
                .iter()
                .map(|o| OrderView::new(o, p.pii_read))
                .collect(),
        },
    )
}

/// Ship one parcel of a split or merged order with its waybill. Every order in it must be
/// released; its units leave the stock; an order whose last unit this was is `shipped` (its
/// tracking number this parcel's), another stays released with the units shipped per line. The
/// same waybill again answers the orders as they are.
#[utoipa::path(post, path = "/v1/orders/{id}/parcels/{parcel_id}/ship", tag = "merges",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("parcel_id" = String, Path, description = "parcel id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = ShipParcelRequest,
    responses(
        (status = 200, body = ShippedView),
        (status = 400, description = "`invalid_id`: an id is not one", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`not_released` (an order of the parcel is not released), `parcel_waiting` (its stock is short), `parcel_shipped` (with another waybill), `order_stopped`, `warehouses_differ`, `group_not_open`", body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn ship(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, parcel)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let parcel = uuid(&parcel, "parcel_id")?;
    let (req, key): (ShipParcelRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/parcels/{parcel}/ship"),
    )?;
    let waybill = ParcelWaybill {
        carrier: CarrierCode::parse(&req.carrier)?,
        tracking_no: req.tracking_no,
        logistics_no: req.logistics_no,
    };
    let part = stock_writer(&state, &ctx.principal, id).await?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| combine::ship_parcel(tx, &actor, id, parcel, &waybill, now),
        render_shipped,
    )
    .await
}

/// The tenant's merge settings.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRulesView {
    /// Merge automatically when an order is paid (default false): it joins the open merge of
    /// its buyer and address, or forms one with the buyer's orders that qualify.
    #[serde(default)]
    pub auto: bool,
    /// Orders paid at most this many minutes apart may merge: 1 to 10080 (default 1440).
    #[serde(default = "window")]
    pub window_minutes: u32,
    /// Orders of different shops (and channels) may merge (default false).
    #[serde(default)]
    pub cross_shop: bool,
}

fn window() -> u32 {
    orderhub_domain::combine::WINDOW_DEFAULT_MINUTES
}

fn rules_view(r: &MergeRules) -> MergeRulesView {
    MergeRulesView {
        auto: r.auto,
        window_minutes: r.window_minutes,
        cross_shop: r.cross_shop,
    }
}

/// The tenant's merge settings (the defaults until an admin sets them).
#[utoipa::path(get, path = "/v1/settings/merges", tag = "merges",
    responses((status = 200, body = MergeRulesView)),
    security(("bearer" = [])))]
pub async fn get_rules(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    let r = state.store.read(move |r| r.merge_rules_of(&t)).await?;
    Ok(json(StatusCode::OK, &rules_view(&r)))
}

/// Set the automatic merge, the merge window and whether orders of different shops merge.
#[utoipa::path(put, path = "/v1/settings/merges", tag = "merges",
    request_body = MergeRulesView,
    responses((status = 200, body = MergeRulesView), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_rules(
    State(state): State<SharedState>,
    ctx: Ctx,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, _): (MergeRulesView, _) = crate::extract::parse_json(&body, false)?;
    let rules = MergeRules {
        auto: req.auto,
        window_minutes: req.window_minutes,
        cross_shop: req.cross_shop,
    };
    let (actor, now) = (ctx.actor(), state.clock.now());
    let r = state
        .store
        .write(0, move |tx| {
            combine::set_merge_rules(tx, &actor, &rules, now)
        })
        .await?;
    Ok(json(StatusCode::OK, &rules_view(&r)))
}

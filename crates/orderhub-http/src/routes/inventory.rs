//! `/v1/skus`, `/v1/warehouses`, `/v1/inventory`, `/v1/reservations`.

use super::parse_query;
use super::partition;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, idempotency_key, json_response, parse_json, parse_write, write};
use crate::limits::{self, at_most, in_range, max_chars, max_items};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use orderhub_api::inventory::*;
use orderhub_core::auth::Principal;
use orderhub_core::inventory::{self as inv, ReserveInput, mode_name, state_name};
use orderhub_core::ports::{ReservationRecord, SkuRecord, StockRow, WarehouseRecord};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::inventory::{
    AdjustmentReason, DeductionMode, ReleaseReason, ReservationCommand, ReservationState,
};
use orderhub_domain::{Sku, ValidationError};
use serde::Deserialize;

fn at(field: &str, r: Result<Sku, ValidationError>) -> Result<Sku, ApiError> {
    r.map_err(|e| ApiError::from(e).field(field))
}

fn warehouse(field: &str, s: &str) -> Result<WarehouseId, ApiError> {
    WarehouseId::parse(s).map_err(|e| ApiError::from(e).field(field))
}

/// A weight in kilograms given as a decimal string (the core checks its range and precision).
fn kilograms(field: &str, s: &str) -> Result<rust_decimal::Decimal, ApiError> {
    const WEIGHT_TEXT_MAX: usize = 32;
    max_chars(field, s, WEIGHT_TEXT_MAX)?;
    s.trim().parse::<rust_decimal::Decimal>().map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_number",
            format!("{field} must be a decimal number of kilograms as a string, e.g. \"1.25\""),
        )
        .field(field)
    })
}

/// A warehouse's sender, its fields bounded (the core requires them).
fn sender(s: &SenderIn) -> Result<orderhub_core::ports::SenderAddress, ApiError> {
    use orderhub_domain::Personal;
    max_chars("sender.phone", &s.phone, limits::SENDER_PHONE_LEN_MAX)?;
    for (f, v) in [
        ("sender.name", &s.name),
        ("sender.province", &s.province),
        ("sender.city", &s.city),
        ("sender.district", &s.district),
        ("sender.detail", &s.detail),
    ] {
        max_chars(f, v, limits::SENDER_TEXT_LEN_MAX)?;
    }
    Ok(orderhub_core::ports::SenderAddress {
        name: Personal::new(s.name.trim()),
        phone: Personal::new(s.phone.trim()),
        province: s.province.trim().to_owned(),
        city: s.city.trim().to_owned(),
        district: s.district.trim().to_owned(),
        detail: Personal::new(s.detail.trim()),
    })
}

fn position_view(wh: &WarehouseId, row: &StockRow) -> PositionView {
    PositionView {
        warehouse_id: wh.to_string(),
        on_hand: row.level.on_hand,
        reserved: row.level.reserved,
        available: row.level.available(),
        version: row.version,
    }
}

fn render_position(p: &(WarehouseId, StockRow), _: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::CREATED, &position_view(&p.0, &p.1))
}

pub fn reservation_view(r: &ReservationRecord) -> ReservationView {
    ReservationView {
        reservation_id: r.reservation_id,
        reference: r.reference.clone(),
        state: state_name(r.state).to_owned(),
        mode: mode_name(r.mode).to_owned(),
        expires_at: match r.state {
            ReservationState::Held { expires_at } => Some(expires_at),
            _ => None,
        },
        lines: r
            .lines
            .iter()
            .map(|l| ReservedLineView {
                sku: l.sku.to_string(),
                warehouse_id: l.warehouse_id.to_string(),
                quantity: l.quantity,
            })
            .collect(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn render_reservation_created(r: &ReservationRecord, _: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::CREATED, &reservation_view(r))
}

fn render_reservation(r: &ReservationRecord, _: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::OK, &reservation_view(r))
}

/// The answer of a definition that was stored: `{"status":"stored"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Stored {
    /// `stored`
    status: String,
}

/// Define or update a SKU (a kit when it has components).
#[utoipa::path(put, path = "/v1/skus/{sku}", tag = "inventory", request_body = PutSkuRequest,
    params(("sku" = String, Path, description = "SKU code")),
    responses((status = 200, description = "Stored", body = Stored), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_sku(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(sku): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let sku = at("sku", Sku::parse(&sku))?;
    let (req, _): (PutSkuRequest, _) = parse_json(&body, false)?;
    max_chars("title", &req.title, limits::NAME_LEN_MAX)?;
    if let Some(c) = &req.components {
        max_items("components", c.len(), limits::KIT_COMPONENTS_MAX)?;
    }
    let components = req
        .components
        .map(|c| {
            c.iter()
                .enumerate()
                .map(|(i, p)| {
                    let field = format!("components[{i}].quantity");
                    at_most(&field, p.quantity, limits::KIT_COMPONENT_QUANTITY_MAX)?;
                    Ok((
                        at(&format!("components[{i}].sku"), Sku::parse(&p.sku))?,
                        p.quantity,
                    ))
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .transpose()?;
    let weight_kg = req
        .weight_kg
        .as_deref()
        .map(|w| kilograms("weight_kg", w))
        .transpose()?;
    let rec = SkuRecord {
        sku: sku.clone(),
        title: req.title.trim().to_owned(),
        components,
        weight_kg,
    };
    let (a, now) = (ctx.actor(), state.clock.now());
    state
        .store
        .write(super::stock_partition(Some(&sku)), move |tx| {
            inv::define_sku(tx, &a, &rec, now)
        })
        .await?;
    Ok(json_response(
        StatusCode::OK,
        br#"{"status":"stored"}"#.to_vec(),
        false,
    ))
}

/// Define or update a warehouse: the regions it ships to and its priority.
#[utoipa::path(put, path = "/v1/warehouses/{id}", tag = "inventory", request_body = PutWarehouseRequest,
    params(("id" = String, Path, description = "warehouse id")),
    responses((status = 200, description = "Stored", body = Stored), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_warehouse(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let warehouse_id = warehouse("warehouse_id", &id)?;
    let (req, _): (PutWarehouseRequest, _) = parse_json(&body, false)?;
    max_chars("name", &req.name, limits::NAME_LEN_MAX)?;
    in_range("priority", req.priority, 0, limits::WAREHOUSE_PRIORITY_MAX)?;
    max_items("regions", req.regions.len(), limits::REGIONS_MAX)?;
    for (i, r) in req.regions.iter().enumerate() {
        max_chars(&format!("regions[{i}]"), r, limits::REGION_LEN_MAX)?;
    }
    let parcel_max_kg = req
        .parcel_max_kg
        .as_deref()
        .map(|w| kilograms("parcel_max_kg", w))
        .transpose()?;
    let sender = req.sender.as_ref().map(sender).transpose()?;
    let rec = WarehouseRecord {
        warehouse_id,
        name: req.name.trim().to_owned(),
        priority: req.priority,
        regions: req
            .regions
            .iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect(),
        sender,
        parcel_max_kg,
    };
    let (a, now) = (ctx.actor(), state.clock.now());
    state
        .store
        .write(0, move |tx| inv::define_warehouse(tx, &a, &rec, now))
        .await?;
    Ok(json_response(
        StatusCode::OK,
        br#"{"status":"stored"}"#.to_vec(),
        false,
    ))
}

/// Goods received: on-hand stock grows. Idempotent with an Idempotency-Key (an ERP's retry must not
/// receive twice).
#[utoipa::path(post, path = "/v1/inventory/receipts", tag = "inventory", request_body = ReceiptRequest,
    responses((status = 201, body = PositionView), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn receipt(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (ReceiptRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        "POST /v1/inventory/receipts",
    )?;
    at_most("quantity", req.quantity, limits::STOCK_UNITS_MAX)?;
    if let Some(r) = &req.reference {
        max_chars("reference", r, limits::REFERENCE_LEN_MAX)?;
    }
    let sku = at("sku", Sku::parse(&req.sku))?;
    let wh = warehouse("warehouse_id", &req.warehouse_id)?;
    let (a, now, part) = (
        ctx.actor(),
        state.clock.now(),
        super::stock_partition(Some(&sku)),
    );
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| {
            inv::receive(
                tx,
                &a,
                &sku,
                &wh,
                req.quantity,
                req.reference.as_deref(),
                now,
            )
            .map(|row| (wh.clone(), row))
        },
        render_position,
    )
    .await
}

/// A correction of on-hand stock with its reason. Never takes available stock below zero.
#[utoipa::path(post, path = "/v1/inventory/adjustments", tag = "inventory", request_body = AdjustmentRequest,
    responses((status = 201, body = PositionView), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn adjustment(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (AdjustmentRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        "POST /v1/inventory/adjustments",
    )?;
    in_range(
        "delta",
        req.delta,
        -limits::STOCK_UNITS_MAX,
        limits::STOCK_UNITS_MAX,
    )?;
    let sku = at("sku", Sku::parse(&req.sku))?;
    let wh = warehouse("warehouse_id", &req.warehouse_id)?;
    let reason = match req.reason.trim() {
        "stock_take" => AdjustmentReason::StockTake,
        "damaged" => AdjustmentReason::Damaged,
        "found" => AdjustmentReason::Found,
        "erp_sync" => AdjustmentReason::ErpSync,
        "" => {
            return Err(ApiError::from(ValidationError::new(
                "reason",
                "required",
                "an adjustment needs a reason",
            )));
        }
        other if other.chars().count() > 64 => {
            return Err(ApiError::from(ValidationError::new(
                "reason",
                "too_long",
                "reason must be at most 64 characters",
            )));
        }
        other => AdjustmentReason::Other(other.to_owned()),
    };
    let (a, now, part) = (
        ctx.actor(),
        state.clock.now(),
        super::stock_partition(Some(&sku)),
    );
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| {
            inv::adjust(tx, &a, &sku, &wh, req.delta, reason.clone(), now)
                .map(|row| (wh.clone(), row))
        },
        render_position,
    )
    .await
}

/// Stock of one SKU: on hand, reserved, available, in total and per warehouse.
#[utoipa::path(get, path = "/v1/inventory/{sku}", tag = "inventory",
    params(("sku" = String, Path, description = "SKU code")),
    responses((status = 200, body = InventoryView), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    let sku = at("sku", Sku::parse(&sku))?;
    let t = ctx.principal.tenant_id.clone();
    let view = state
        .store
        .read(move |r| {
            let Some(rec) = r.sku(&t, &sku)? else {
                return Ok(None);
            };
            let Some(parts) = rec.components.clone() else {
                // Version 0: a position created empty by a lock (PostgreSQL), never moved; not shown.
                let positions: Vec<_> = r
                    .stock_for_sku(&t, &sku)?
                    .into_iter()
                    .filter(|p| p.1.version > 0)
                    .collect();
                return Ok(Some(InventoryView {
                    sku: sku.to_string(),
                    title: rec.title,
                    is_kit: false,
                    on_hand: positions.iter().map(|p| p.1.level.on_hand).sum(),
                    reserved: positions.iter().map(|p| p.1.level.reserved).sum(),
                    available: positions.iter().map(|p| p.1.level.available()).sum(),
                    warehouses: positions
                        .iter()
                        .map(|(w, row)| position_view(w, row))
                        .collect(),
                    channels: channel_views(
                        r,
                        &t,
                        positions.iter().map(|p| p.1.level.available()).sum(),
                    )?,
                }));
            };
            // A kit: whole kits per warehouse, limited by its scarcest component there.
            let mut per_wh: std::collections::BTreeMap<WarehouseId, i64> =
                std::collections::BTreeMap::new();
            for (i, (part, n)) in parts.iter().enumerate() {
                let positions: std::collections::BTreeMap<_, _> =
                    r.stock_for_sku(&t, part)?.into_iter().collect();
                if i == 0 {
                    for (w, row) in &positions {
                        per_wh.insert(w.clone(), row.level.available() / i64::from(*n));
                    }
                } else {
                    for (w, kits) in per_wh.iter_mut() {
                        let have = positions.get(w).map_or(0, |row| row.level.available());
                        *kits = (*kits).min(have / i64::from(*n));
                    }
                }
            }
            let available = per_wh.values().sum();
            Ok(Some(InventoryView {
                sku: sku.to_string(),
                title: rec.title,
                is_kit: true,
                on_hand: available,
                reserved: 0,
                available,
                warehouses: per_wh
                    .iter()
                    .map(|(w, k)| PositionView {
                        warehouse_id: w.to_string(),
                        on_hand: *k,
                        reserved: 0,
                        available: *k,
                        version: 0,
                    })
                    .collect(),
                channels: channel_views(r, &t, available)?,
            }))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("sku"))?;
    Ok(crate::extract::json(StatusCode::OK, &view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    warehouse_id: Option<String>,
    /// The last entry_id seen.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The SKU's ledger: every movement with the balance after it, oldest first.
#[utoipa::path(get, path = "/v1/inventory/{sku}/ledger", tag = "inventory", params(("sku" = String, Path, description = "SKU code"), LedgerQuery),
    responses((status = 200, body = LedgerPage)),
    security(("bearer" = [])))]
pub async fn ledger(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(sku): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: LedgerQuery = parse_query(q.as_deref())?;
    let sku = at("sku", Sku::parse(&sku))?;
    let wh = q
        .warehouse_id
        .as_deref()
        .map(|w| warehouse("warehouse_id", w))
        .transpose()?;
    let limit = super::page_limit(q.limit, 100, 1000)?;
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "out_of_range",
            "after must be 0 or more",
        )
        .field("after"));
    }
    let t = ctx.principal.tenant_id.clone();
    let rows = state
        .store
        .read(move |r| r.ledger(&t, &sku, wh.as_ref(), after, limit))
        .await?;
    let page = LedgerPage {
        next_after: rows.last().map_or(after, |r| r.0),
        entries: rows
            .into_iter()
            .map(|(id, l)| LedgerEntryView {
                entry_id: id,
                warehouse_id: l.warehouse_id.to_string(),
                movement: l.movement.to_owned(),
                quantity: l.quantity,
                reason: l.reason,
                reference: l.reference,
                on_hand_after: l.after.on_hand,
                reserved_after: l.after.reserved,
                at: l.at,
            })
            .collect(),
    };
    Ok(crate::extract::json(StatusCode::OK, &page))
}

/// Reserve stock for a checkout or an order: every unit in one warehouse, or nothing (409
/// `out_of_stock` naming the SKU short).
#[utoipa::path(post, path = "/v1/reservations", tag = "inventory", request_body = ReserveRequest,
    responses((status = 201, body = ReservationView), (status = 409, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn reserve(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (ReserveRequest, _) =
        parse_write(&headers, &body, &ctx.principal, "POST /v1/reservations")?;
    let reference = req.reference.trim().to_owned();
    if reference.is_empty() || reference.chars().count() > 128 {
        return Err(ApiError::from(ValidationError::new(
            "reference",
            "invalid",
            "reference must be 1 to 128 characters",
        )));
    }
    max_items(
        "lines",
        req.lines.len(),
        orderhub_core::inventory::RESERVATION_LINES_MAX,
    )?;
    if let Some(r) = &req.region {
        max_chars("region", r, limits::REGION_LEN_MAX)?;
    }
    if let Some(s) = req.hold_seconds {
        in_range("hold_seconds", s, 1, limits::HOLD_SECONDS_MAX)?;
    }
    let mut lines = Vec::with_capacity(req.lines.len());
    for (i, l) in req.lines.iter().enumerate() {
        at_most(
            &format!("lines[{i}].quantity"),
            l.quantity,
            limits::RESERVE_QUANTITY_MAX,
        )?;
        lines.push((
            at(&format!("lines[{i}].sku"), Sku::parse(&l.sku))?,
            l.quantity,
        ));
    }
    let (mode, hold) = match req.mode.as_deref().unwrap_or("checkout") {
        "checkout" => (DeductionMode::AtPayment, true),
        "at_payment" => (DeductionMode::AtPayment, false),
        "presale" => (DeductionMode::Presale, true),
        "pos" => (DeductionMode::Pos, true),
        _ => {
            return Err(ApiError::from(ValidationError::new(
                "mode",
                "unknown_mode",
                "mode must be checkout, at_payment, presale or pos",
            )));
        }
    };
    let hold_for = match (hold, req.hold_seconds) {
        (false, Some(_)) => {
            return Err(ApiError::from(ValidationError::new(
                "hold_seconds",
                "not_for_this_mode",
                "at_payment reservations are committed at once",
            )));
        }
        (false, None) => None,
        (true, s) => Some(s.map_or(inv::HOLD_DEFAULT, chrono::Duration::seconds)),
    };
    let input = ReserveInput {
        reference,
        lines,
        region: req
            .region
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
        warehouse: req
            .warehouse_id
            .as_deref()
            .map(|w| warehouse("warehouse_id", w))
            .transpose()?,
        mode,
        hold_for,
    };
    // Reservations that share their first SKU share a writer: a flash sale's hot SKU is served by
    // one writer in large groups instead of contending for its row.
    let part = super::stock_partition(input.lines.iter().map(|l| &l.0).min());
    let (a, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| inv::reserve(tx, &a, &input, now),
        render_reservation_created,
    )
    .await
}

#[utoipa::path(get, path = "/v1/reservations/{id}", tag = "inventory",
    params(("id" = String, Path, description = "reservation id")),
    responses((status = 200, body = ReservationView), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_reservation(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = reservation_id(&id)?;
    let t = ctx.principal.tenant_id.clone();
    let r = state
        .store
        .read(move |r| r.reservation(&t, id))
        .await?
        .ok_or_else(|| ApiError::not_found("reservation"))?;
    Ok(crate::extract::json(StatusCode::OK, &reservation_view(&r)))
}

fn reservation_id(s: &str) -> Result<uuid::Uuid, ApiError> {
    s.parse().map_err(|_| {
        ApiError::from(ValidationError::new(
            "reservation_id",
            "must_be_uuid",
            "reservation id must be a UUID",
        ))
    })
}

/// Commit (at payment), consume (at shipment or POS pickup) or release (cancel) a reservation.
#[utoipa::path(post, path = "/v1/reservations/{id}/{action}", tag = "inventory",
    params(("id" = String, Path, description = "reservation id"), ("action" = String, Path, description = "commit | consume | release")),
    request_body(content = ReleaseRequest, description = "release: the reason"),
    responses((status = 200, body = ReservationView), (status = 404, body = orderhub_api::ErrorBody), (status = 409, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn move_reservation(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = reservation_id(&id)?;
    let (req, canonical): (ReleaseRequest, _) =
        parse_json(&body, headers.contains_key("idempotency-key"))?;
    let cmd = match (action.as_str(), req.reason.as_deref()) {
        ("commit", None) => ReservationCommand::Commit,
        ("consume", None) => ReservationCommand::Consume,
        ("release", None | Some("cancelled")) => {
            ReservationCommand::Release(ReleaseReason::Cancelled)
        }
        ("release", Some("manual")) => ReservationCommand::Release(ReleaseReason::Manual),
        ("release", Some(_)) => {
            return Err(ApiError::from(ValidationError::new(
                "reason",
                "unknown_reason",
                "reason must be cancelled or manual",
            )));
        }
        ("commit" | "consume", Some(_)) => {
            return Err(ApiError::from(ValidationError::new(
                "reason",
                "not_for_this_action",
                "only release takes a reason",
            )));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                "action must be commit, consume or release",
            ));
        }
    };
    let key = idempotency_key(
        &headers,
        &ctx.principal,
        &format!("POST /v1/reservations/{id}/{action}"),
        &canonical,
    )?;
    let (a, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(id),
        move |tx| inv::move_reservation(tx, &a, id, cmd, now),
        render_reservation,
    )
    .await
}

fn render_snapshot(o: &inv::SnapshotOutcome, _: &Principal) -> (StatusCode, Vec<u8>) {
    let r = SnapshotResult {
        adjusted: o
            .adjusted
            .iter()
            .map(|(s, d)| SnapshotAdjustment {
                sku: s.to_string(),
                delta: *d,
            })
            .collect(),
        unchanged: o.unchanged,
        conflicts: o
            .conflicts
            .iter()
            .map(|(s, n, r)| SnapshotConflict {
                sku: s.to_string(),
                snapshot_on_hand: *n,
                reserved: *r,
            })
            .collect(),
    };
    crate::extract::rendered(StatusCode::OK, &r)
}

/// Apply a full stock snapshot of one warehouse (ERP/WMS sync). Older than the last applied → 409
/// `stale_snapshot`; differences become `erp_sync` adjustments; counts below live reservations are
/// reported as conflicts and not applied.
#[utoipa::path(post, path = "/v1/inventory/snapshots", tag = "inventory", request_body = SnapshotRequest,
    responses((status = 200, body = SnapshotResult), (status = 409, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn snapshot(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (SnapshotRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        "POST /v1/inventory/snapshots",
    )?;
    let wh = warehouse("warehouse_id", &req.warehouse_id)?;
    let as_of = orderhub_api::orders::parse_time("as_of", Some(req.as_of))?
        .map(|t| t.to_utc())
        .ok_or_else(|| {
            ApiError::from(ValidationError::new(
                "as_of",
                "required",
                "as_of is required",
            ))
        })?;
    max_items(
        "items",
        req.items.len(),
        orderhub_core::inventory::SNAPSHOT_ITEMS_MAX,
    )?;
    let mut items = Vec::with_capacity(req.items.len());
    for (i, it) in req.items.iter().enumerate() {
        at_most(
            &format!("items[{i}].on_hand"),
            it.on_hand,
            limits::STOCK_UNITS_MAX,
        )?;
        items.push(inv::SnapshotItem {
            sku: at(&format!("items[{i}].sku"), Sku::parse(&it.sku))?,
            on_hand: it.on_hand,
        });
    }
    let (a, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        0,
        move |tx| inv::apply_snapshot(tx, &a, &wh, as_of, &items, now),
        render_snapshot,
    )
    .await
}

fn channel_views(
    r: &mut dyn orderhub_store::ReadConn,
    t: &orderhub_domain::TenantId,
    pool: i64,
) -> Result<Vec<ChannelView>, orderhub_core::StoreError> {
    // Computed from the pool now; the stored per-channel state is what events were raised for.
    let policies = r.channel_policies(t)?;
    Ok(policies
        .iter()
        .map(|p| {
            let l = orderhub_domain::inventory::channel_listing(
                pool,
                p.safety_stock,
                p.allocation,
                p.close_below,
            );
            ChannelView {
                channel: p.channel.to_string(),
                listed: l.listed,
                closed: l.closed,
            }
        })
        .collect())
}

/// Set how a channel lists stock from the shared pool: shared, a ratio or a quota, with safety
/// stock and the threshold at which the channel closes.
#[utoipa::path(put, path = "/v1/channels/{channel}/inventory-policy", tag = "inventory", request_body = PutChannelPolicyRequest,
    params(("channel" = String, Path, description = "channel code")),
    responses((status = 200, description = "Stored", body = Stored), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_channel_policy(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(channel): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let channel = orderhub_domain::ids::Channel::parse(&channel).map_err(ApiError::from)?;
    let (req, _): (PutChannelPolicyRequest, _) = parse_json(&body, false)?;
    for (f, v) in [
        ("units", req.units.unwrap_or(0)),
        ("safety_stock", req.safety_stock),
        ("close_below", req.close_below),
    ] {
        at_most(f, v, limits::STOCK_UNITS_MAX)?;
    }
    use orderhub_domain::inventory::AllocationPolicy as A;
    let need = |f: &str| {
        ApiError::from(ValidationError::new(
            f,
            "required",
            format!("{f} is required for this allocation"),
        ))
    };
    let allocation = match req.allocation.as_str() {
        "shared" => A::Shared,
        "ratio" => A::Ratio {
            percent: req.percent.ok_or_else(|| need("percent"))?,
        },
        "quota" => A::Quota {
            units: req.units.ok_or_else(|| need("units"))?,
        },
        _ => {
            return Err(ApiError::from(ValidationError::new(
                "allocation",
                "unknown_allocation",
                "allocation must be shared, ratio or quota",
            )));
        }
    };
    let p = orderhub_core::ports::ChannelPolicy {
        channel,
        allocation,
        safety_stock: req.safety_stock,
        close_below: req.close_below,
    };
    let a = ctx.actor();
    let now = state.clock.now();
    state
        .store
        .write(0, move |tx| inv::set_channel_policy(tx, &a, &p, now))
        .await?;
    Ok(json_response(
        StatusCode::OK,
        br#"{"status":"stored"}"#.to_vec(),
        false,
    ))
}

fn render_return(r: &(WarehouseId, Option<StockRow>), _: &Principal) -> (StatusCode, Vec<u8>) {
    let body = ReturnResult {
        restocked: r.1.is_some(),
        position: r.1.as_ref().map(|row| position_view(&r.0, row)),
    };
    crate::extract::rendered(StatusCode::OK, &body)
}

/// Returned goods: put back on hand only after a QC pass.
#[utoipa::path(post, path = "/v1/inventory/returns", tag = "inventory", request_body = ReturnRequest,
    responses((status = 200, body = ReturnResult), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn returns(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (ReturnRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        "POST /v1/inventory/returns",
    )?;
    at_most("quantity", req.quantity, limits::STOCK_UNITS_MAX)?;
    if let Some(r) = &req.reference {
        max_chars("reference", r, limits::REFERENCE_LEN_MAX)?;
    }
    let qc_passed = match req.qc.as_str() {
        "passed" => true,
        "failed" => false,
        _ => {
            return Err(ApiError::from(ValidationError::new(
                "qc",
                "unknown_qc_result",
                "qc must be passed or failed",
            )));
        }
    };
    let input = inv::ReturnInput {
        sku: at("sku", Sku::parse(&req.sku))?,
        warehouse_id: warehouse("warehouse_id", &req.warehouse_id)?,
        quantity: req.quantity,
        qc_passed,
        reference: req.reference,
    };
    let (a, now, part) = (
        ctx.actor(),
        state.clock.now(),
        super::stock_partition(Some(&input.sku)),
    );
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| {
            inv::return_to_stock(tx, &a, &input, now).map(|row| (input.warehouse_id.clone(), row))
        },
        render_return,
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BackorderQuery {
    /// From the previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Paid orders waiting for stock, in the order stock will serve them (payment time).
#[utoipa::path(get, path = "/v1/backorders", tag = "inventory", params(BackorderQuery),
    responses((status = 200, body = BackorderPage), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn backorders(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: BackorderQuery = parse_query(q.as_deref())?;
    let limit = super::page_limit(q.limit, 100, 500)?;
    let bad_cursor = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "cursor is not one this API gave out",
        )
        .field("cursor")
    };
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => {
            let (t, o) = c.split_once('_').ok_or_else(bad_cursor)?;
            let micros: i64 = t.parse().map_err(|_| bad_cursor())?;
            let at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(bad_cursor)?;
            Some((
                at,
                orderhub_domain::OrderId::parse(o).map_err(|_| bad_cursor())?,
            ))
        }
    };
    let t = ctx.principal.tenant_id.clone();
    let shops = super::scope_strings(&ctx.principal);
    let rows = state
        .store
        .read(move |r| r.backorders(&t, after, limit, shops.as_deref()))
        .await?;
    let next_cursor = super::next_cursor(&rows, limit, |(o, _, at)| {
        format!("{}_{o}", at.timestamp_micros())
    });
    let page = BackorderPage {
        backorders: rows
            .into_iter()
            .map(|(o, sku, paid_at)| BackorderView {
                order_id: o.as_uuid(),
                sku: sku.to_string(),
                paid_at,
            })
            .collect(),
        next_cursor,
    };
    Ok(crate::extract::json(StatusCode::OK, &page))
}

//! `/v1/listings`: which channel item (and SKU of it) in which shop sells our SKU or kit (issue 20).
//! A listing's quantity is computed by the hub in every stock movement's transaction and pushed to
//! the channel by the stock-push worker; what is answered here includes that state (what the shelf
//! should show, what the channel last acknowledged, the failures since). Listings belong to a shop:
//! a key scoped to shops reaches only its shops' listings.

use super::parse_query;
use super::uuid_param;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json, json_response, parse_json};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use orderhub_core::listings::{self, ListingChange, NewListing};
use orderhub_core::ports::{CheckScope, ListingRecord};
use orderhub_domain::{ShopId, Sku};
use orderhub_store::ListingFilter;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// Listings per page at most: a page is read in one query on a reader thread.
const PAGE_MAX: u32 = 500;
const PAGE_DEFAULT: u32 = 100;

fn unprocessable(code: &str, message: impl Into<String>, field: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).field(field)
}

/// A new listing.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateListingRequest {
    /// taobao, jd, pdd, douyin, kuaishou, wechat, youzan, custom.
    pub channel: String,
    pub shop_id: String,
    /// Our SKU or kit (defined in the SKU master).
    pub sku: String,
    /// The channel's item id (Taobao num_iid, PDD goods_id, JD wareId …): up to 64 ASCII letters,
    /// digits, `-`, `_` or `.`.
    pub channel_item_id: String,
    /// The channel's SKU id within the item; empty or left out for an item without SKUs.
    #[serde(default)]
    pub channel_sku_id: String,
    #[serde(default)]
    pub paused: bool,
    /// Shown instead of the computed quantity, 0 to 10,000,000.
    #[serde(default)]
    pub fixed_quantity: Option<i64>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// A change to a listing: either field may be left out; `fixed_quantity: null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateListingRequest {
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub fixed_quantity: Option<Option<i64>>,
}

/// A listing and its push state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListingView {
    pub listing_id: Uuid,
    pub channel: String,
    pub shop_id: String,
    pub sku: String,
    pub channel_item_id: String,
    pub channel_sku_id: String,
    pub paused: bool,
    pub fixed_quantity: Option<i64>,
    /// What the shelf should show now.
    pub want_qty: i64,
    pub want_version: i64,
    /// What the channel last acknowledged, for which version, when.
    pub pushed_qty: Option<i64>,
    pub pushed_version: i64,
    pub pushed_at: Option<DateTime<Utc>>,
    /// Whether the shelf shows what it should (nothing left to push).
    pub in_sync: bool,
    /// Failed pushes since the last success, the last one's error, and when it is tried again.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the drift reconciler last read back from the shelf.
    pub drift: DriftView,
}

/// A listing's shelf as the drift reconciler last read it back from the channel.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DriftView {
    /// The shelf minus what the channel last acknowledged (`pushed_qty`), at the last read that
    /// could compare; 0: no drift. Shown until a read after the repair finds the shelf right.
    pub units: i64,
    /// What the shelf showed at the last read, and when.
    pub seen_qty: Option<i64>,
    pub seen_at: Option<DateTime<Utc>>,
    /// When this drift was first seen.
    pub first_seen_at: Option<DateTime<Utc>>,
    /// The drift came back after an earlier one was repaired (edited in the channel's back
    /// office).
    pub recurring: bool,
    /// Drifts found on this listing so far; when the last repair (a push of the current want)
    /// was scheduled. A paused listing's drift is reported, never repaired.
    pub count: u32,
    pub repaired_at: Option<DateTime<Utc>>,
    /// When the shelf is read next.
    pub next_check_at: DateTime<Utc>,
    /// Why the last read gave no quantity (refused, not supported, the SKU not in the answer).
    pub check_error: Option<String>,
}

/// A page of listings; `next_after` is the cursor of the next page (absent on the last).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListingPage {
    pub listings: Vec<ListingView>,
    pub next_after: Option<Uuid>,
}

fn view(l: &ListingRecord) -> ListingView {
    ListingView {
        listing_id: l.listing_id,
        channel: l.channel.as_str().to_owned(),
        shop_id: l.shop_id.as_str().to_owned(),
        sku: l.sku.as_str().to_owned(),
        channel_item_id: l.channel_item_id.clone(),
        channel_sku_id: l.channel_sku_id.clone(),
        paused: l.paused,
        fixed_quantity: l.fixed_quantity,
        want_qty: l.want_qty,
        want_version: l.want_version,
        pushed_qty: l.pushed_qty,
        pushed_version: l.pushed_version,
        pushed_at: l.pushed_at,
        in_sync: l.want_version <= l.pushed_version,
        attempts: l.attempts,
        last_error: l.last_error.clone(),
        next_attempt_at: l.next_attempt_at,
        created_at: l.created_at,
        updated_at: l.updated_at,
        drift: DriftView {
            units: l.drift.units,
            seen_qty: l.drift.seen_qty,
            seen_at: l.drift.seen_at,
            first_seen_at: l.drift.first_seen_at,
            recurring: l.drift.recurring,
            count: l.drift.count,
            repaired_at: l.drift.repaired_at,
            next_check_at: l.drift.check_at,
            check_error: l.drift.check_error.clone(),
        },
    }
}

/// The listing as this key may see it: another tenant's, or one of a shop outside the key's
/// scope, does not exist.
async fn visible(state: &SharedState, ctx: &Ctx, id: Uuid) -> Result<ListingRecord, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    state
        .store
        .read(move |r| r.listing(&t, id))
        .await?
        .filter(|l| ctx.principal.sees_shop(&l.shop_id))
        .ok_or_else(|| ApiError::not_found("listing"))
}

/// Link one of our SKUs (or kits) to a channel item in a shop. Its quantity is computed at once
/// and pushed to the channel by the stock-push worker.
#[utoipa::path(post, path = "/v1/listings", tag = "listings", request_body = CreateListingRequest,
    responses((status = 201, body = ListingView), (status = 403, body = orderhub_api::ErrorBody),
        (status = 409, description = "`already_listed`: the channel item and SKU id are listed in that shop", body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    ctx: Ctx,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, _): (CreateListingRequest, _) = parse_json(&body, false)?;
    let kind = orderhub_channels::ChannelKind::parse(&req.channel).map_err(|_| {
        unprocessable(
            "unknown_channel",
            "channel must be one of taobao, jd, pdd, douyin, kuaishou, wechat, youzan, custom",
            "channel",
        )
    })?;
    let shop_id = ShopId::parse(&req.shop_id)
        .map_err(|e| unprocessable("bad_value", e.to_string(), "shop_id"))?;
    let sku = Sku::parse(&req.sku).map_err(|e| unprocessable("bad_value", e.to_string(), "sku"))?;
    if !ctx.principal.sees_shop(&shop_id) {
        return Err(ApiError::forbidden(
            "this key is limited to other shops and may not list in this one",
        ));
    }
    let n = NewListing {
        channel: kind.channel_id(),
        shop_id,
        sku,
        channel_item_id: req.channel_item_id,
        channel_sku_id: req.channel_sku_id,
        paused: req.paused,
        fixed_quantity: req.fixed_quantity,
    };
    let (a, now) = (ctx.actor(), state.clock.now());
    let made = state
        .store
        .write_alone(0, move |tx| listings::create_listing(tx, &a, &n, now))
        .await?;
    match made {
        Some(l) => Ok(json(StatusCode::CREATED, &view(&l))),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_listed",
            "this channel item and SKU id are listed in that shop already",
        )
        .field("channel_item_id")),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListingQuery {
    channel: Option<String>,
    shop_id: Option<String>,
    sku: Option<String>,
    /// Only listings whose last push failed.
    failing: Option<bool>,
    /// The last `listing_id` seen.
    after: Option<Uuid>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The tenant's listings (within the key's shops), by listing id.
#[utoipa::path(get, path = "/v1/listings", tag = "listings", params(ListingQuery),
    responses((status = 200, body = ListingPage), (status = 400, body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ListingQuery = parse_query(q.as_deref())?;
    page(&state, &ctx, q, false).await
}

/// A page of the tenant's listings (within the key's shops) as `q` asks; only those with a drift
/// where `drifting`.
async fn page(
    state: &SharedState,
    ctx: &Ctx,
    q: ListingQuery,
    drifting: bool,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("limit must be 1 to {PAGE_MAX}"),
        )
        .field("limit"));
    }
    for (field, v) in [
        ("channel", &q.channel),
        ("shop_id", &q.shop_id),
        ("sku", &q.sku),
    ] {
        if v.as_ref().is_some_and(|v| v.len() > 64) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                format!("{field} must be at most 64 characters"),
            )
            .field(field));
        }
    }
    let f = ListingFilter {
        tenant: ctx.principal.tenant_id.clone(),
        channel: q.channel,
        shop_id: q.shop_id,
        sku: q.sku,
        failing: q.failing.unwrap_or(false),
        drifting,
        shops: super::scope_strings(&ctx.principal),
        after: q.after,
        limit,
    };
    let rows = state.store.read(move |r| r.listings(&f)).await?;
    let next_after = super::next_cursor(&rows, limit, |l| l.listing_id);
    Ok(json(
        StatusCode::OK,
        &ListingPage {
            listings: rows.iter().map(view).collect(),
            next_after,
        },
    ))
}

/// One listing and its push state.
#[utoipa::path(get, path = "/v1/listings/{id}", tag = "listings",
    params(("id" = uuid::Uuid, Path, description = "listing id")),
    responses((status = 200, body = ListingView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let l = visible(&state, &ctx, uuid_param(&id, "id")?).await?;
    Ok(json(StatusCode::OK, &view(&l)))
}

/// Pause or resume a listing, or fix its quantity (`null` clears it); its quantity is computed
/// again at once.
#[utoipa::path(patch, path = "/v1/listings/{id}", tag = "listings", request_body = UpdateListingRequest,
    params(("id" = uuid::Uuid, Path, description = "listing id")),
    responses((status = 200, body = ListingView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let (req, _): (UpdateListingRequest, _) = parse_json(&body, false)?;
    visible(&state, &ctx, id).await?;
    let change = ListingChange {
        paused: req.paused,
        fixed_quantity: req.fixed_quantity,
    };
    let (a, now) = (ctx.actor(), state.clock.now());
    let l = state
        .store
        .write_alone(0, move |tx| {
            listings::update_listing(tx, &a, id, &change, now)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("listing"))?;
    Ok(json(StatusCode::OK, &view(&l)))
}

/// Remove a listing: nothing more is pushed for it (the shelf keeps what it shows).
#[utoipa::path(delete, path = "/v1/listings/{id}", tag = "listings",
    params(("id" = uuid::Uuid, Path, description = "listing id")),
    responses((status = 204, description = "Removed"), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    visible(&state, &ctx, id).await?;
    let a = ctx.actor();
    let gone = state
        .store
        .write_alone(0, move |tx| listings::delete_listing(tx, &a, id))
        .await?;
    if !gone {
        return Err(ApiError::not_found("listing"));
    }
    Ok(json_response(StatusCode::NO_CONTENT, Vec::new(), false))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DriftQuery {
    channel: Option<String>,
    shop_id: Option<String>,
    sku: Option<String>,
    /// The last `listing_id` seen.
    after: Option<Uuid>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The listings whose shelf, as last read back from the channel, differs from what the channel
/// last acknowledged (within the key's shops), by listing id; each with its drift (units, first
/// seen, recurring) and what the shelf should show now (`want_qty`).
#[utoipa::path(get, path = "/v1/listings/drift", tag = "listings", params(DriftQuery),
    responses((status = 200, body = ListingPage), (status = 400, body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn drift(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: DriftQuery = parse_query(q.as_deref())?;
    let q = ListingQuery {
        channel: q.channel,
        shop_id: q.shop_id,
        sku: q.sku,
        failing: None,
        after: q.after,
        limit: q.limit,
    };
    page(&state, &ctx, q, true).await
}

/// Which listings to read back now; every field may be left out (the whole tenant, within the
/// key's shops).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// One listing.
    #[serde(default)]
    pub listing_id: Option<String>,
    /// One channel's listings (taobao, jd, pdd, …).
    #[serde(default)]
    pub channel: Option<String>,
    /// One shop's listings.
    #[serde(default)]
    pub shop_id: Option<String>,
}

/// How many listings were made due for a read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReconcileAnswer {
    pub queued: u64,
}

/// Read the listings' shelves back from their channels now (the drift reconciler's next round,
/// within each channel's read budget), instead of at their next scheduled read. A drift found is
/// repaired by a push of the current want (a paused listing's is reported only); see
/// `GET /v1/listings/drift`.
#[utoipa::path(post, path = "/v1/listings/reconcile", tag = "listings", request_body = ReconcileRequest,
    responses((status = 202, body = ReconcileAnswer), (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn reconcile(
    State(state): State<SharedState>,
    ctx: Ctx,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, _): (ReconcileRequest, _) = parse_json(&body, false)?;
    let mut scope = CheckScope {
        shops: super::scope_strings(&ctx.principal),
        ..CheckScope::default()
    };
    if let Some(c) = &req.channel {
        let kind = orderhub_channels::ChannelKind::parse(c).map_err(|_| {
            unprocessable(
                "unknown_channel",
                "channel must be one of taobao, jd, pdd, douyin, kuaishou, wechat, youzan, custom",
                "channel",
            )
        })?;
        scope.channel = Some(kind.channel_id());
    }
    if let Some(s) = &req.shop_id {
        let shop =
            ShopId::parse(s).map_err(|e| unprocessable("bad_value", e.to_string(), "shop_id"))?;
        if !ctx.principal.sees_shop(&shop) {
            return Err(ApiError::forbidden(
                "this key is limited to other shops and may not reconcile this one",
            ));
        }
        scope.shop_id = Some(shop);
    }
    if let Some(id) = &req.listing_id {
        let id: Uuid = id
            .parse()
            .map_err(|_| unprocessable("bad_value", "listing_id must be a UUID", "listing_id"))?;
        visible(&state, &ctx, id).await?;
        scope.listing_id = Some(id);
    }
    let (a, now) = (ctx.actor(), state.clock.now());
    let queued = state
        .store
        .write_alone(0, move |tx| {
            listings::request_reconcile(tx, &a, &scope, now)
        })
        .await?;
    Ok(json(StatusCode::ACCEPTED, &ReconcileAnswer { queued }))
}

//! `/v1/orders`: create, read, list, move, timeline.

use super::parse_query;
use super::partition;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json_response, parse_write, write};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orderhub_api::orders::{
    CreateOrderRequest, OrderPage, OrderView, Timeline, TimelineStep, TransitionRequest,
};
use orderhub_core::auth::Principal;
use orderhub_core::usecases::{Created, insert_order, new_order, transition as run_transition};
use orderhub_domain::ids::Channel;
use orderhub_domain::lifecycle::CommandKind;
use orderhub_domain::{Order, OrderId, ShopId, Status};
use orderhub_store::{ExceptionFilter, OrderFilter, OrderSearch};
use serde::Deserialize;

/// Page size when the client names none, and the most it may ask for.
const PAGE_DEFAULT: u32 = 50;
const PAGE_MAX: u32 = 500;

fn render_view(status: StatusCode, o: &Order, p: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(status, &OrderView::new(o, p.pii_read))
}

fn render_created(c: &Created, p: &Principal) -> (StatusCode, Vec<u8>) {
    match c {
        Created::New(o) => render_view(StatusCode::CREATED, o, p),
        Created::Existing(o) => render_view(StatusCode::OK, o, p),
    }
}

fn render_order(o: &Order, p: &Principal) -> (StatusCode, Vec<u8>) {
    render_view(StatusCode::OK, o, p)
}

fn order_id(s: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(s).map_err(ApiError::from)
}

/// Create an order. 201 with the order; 200 with the existing order when the shop already has one
/// under this external id.
#[utoipa::path(post, path = "/v1/orders", tag = "orders",
    request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat")),
    responses(
        (status = 201, description = "Created", body = OrderView),
        (status = 200, description = "The shop already has this external order id: that order", body = OrderView),
        (status = 400, description = "Malformed JSON", body = orderhub_api::ErrorBody),
        (status = 409, description = "The same Idempotency-Key is in use by a concurrent request", body = orderhub_api::ErrorBody),
        (status = 413, description = "Body too large", body = orderhub_api::ErrorBody),
        (status = 422, description = "A field breaks a rule", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (CreateOrderRequest, _) =
        parse_write(&headers, &body, &ctx.principal, "POST /v1/orders")?;
    let draft = req.into_draft()?;
    let part = partition((&draft.shop_id, &draft.external_order_id));
    let actor = ctx.actor();
    let order = new_order(&actor, draft, state.clock.now())?;
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| insert_order(tx, &actor, &order),
        render_created,
    )
    .await
}

/// Get one order. Personal data is masked unless the key holds `pii:read`.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "orderhub order id (UUIDv7)")),
    responses((status = 200, body = OrderView), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let o = visible_order(&state, &ctx.principal, order_id(&id)?).await?;
    let (status, body) = render_order(&o, &ctx.principal);
    Ok(json_response(status, body, false))
}

pub(crate) async fn visible_order(
    state: &SharedState,
    p: &Principal,
    id: OrderId,
) -> Result<Order, ApiError> {
    let t = p.tenant_id.clone();
    let o = state.store.read(move |r| r.order_get(&t, id)).await?;
    // Another tenant's order, or a shop outside the key's scope, does not exist for this caller.
    o.filter(|o| p.sees_shop(&o.shop_id))
        .ok_or_else(|| ApiError::not_found("order"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// pending_payment, paid, on_hold, allocated, released, shipped, in_transit, delivered, completed, cancelled
    status: Option<String>,
    channel: Option<String>,
    shop: Option<String>,
    /// RFC 3339; orders changed at or after this time.
    updated_since: Option<String>,
    /// The channel's order id, in any shop (within the key's shop scope).
    external_order_id: Option<String>,
    /// Buyer nick or buyer id, exact.
    buyer: Option<String>,
    /// An open exception kind (`out_of_stock`, `no_waybill` …), or `any`.
    exception: Option<String>,
    /// RFC 3339; orders created at or after this time.
    created_from: Option<String>,
    /// RFC 3339; orders created before this time.
    created_to: Option<String>,
    /// Any one id: orderhub order id, the channel's order id, buyer nick or buyer id.
    q: Option<String>,
    /// From the previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// List orders, oldest first, with a cursor. Paging stays correct while orders are added: no order
/// is returned twice and none that existed when paging began is skipped.
#[utoipa::path(get, path = "/v1/orders", tag = "orders", params(ListQuery),
    responses((status = 200, body = OrderPage), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ListQuery = parse_query(q.as_deref())?;
    let limit = super::page_limit(q.limit, PAGE_DEFAULT, PAGE_MAX)?;
    let p = &ctx.principal;
    let filter = list_filter(q, p, limit)?;
    let orders = state.store.read(move |r| r.order_list(&filter)).await?;
    let next_cursor =
        super::next_cursor(&orders, limit, |o| URL_SAFE_NO_PAD.encode(o.id.to_string()));
    let page = OrderPage {
        orders: orders
            .iter()
            .map(|o| OrderView::new(o, p.pii_read))
            .collect(),
        next_cursor,
    };
    Ok(crate::extract::json(StatusCode::OK, &page))
}

/// The search of a bulk action (`POST /v1/orders/bulk`): the filters of `GET /v1/orders` as a
/// JSON object (values as the query string spells them; no cursor, no limit), at most `limit`
/// orders of the key's scope.
pub(crate) fn search_filter(
    search: serde_json::Map<String, serde_json::Value>,
    p: &Principal,
    limit: u32,
) -> Result<OrderFilter, ApiError> {
    for k in ["cursor", "limit"] {
        if search.contains_key(k) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_parameter",
                format!("a bulk search takes the filters of GET /v1/orders, not {k}"),
            )
            .field(format!("search.{k}")));
        }
    }
    let q: ListQuery = serde_path_to_error::deserialize(serde_json::Value::Object(search))
        .map_err(|e| {
            let field = e.path().to_string();
            let msg = e.into_inner().to_string();
            let field = match msg.strip_prefix("unknown field `") {
                Some(rest) => rest.split('`').next().unwrap_or("").to_owned(),
                None => field,
            };
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", msg)
                .field(format!("search.{field}"))
        })?;
    list_filter(q, p, limit)
}

/// The store's filter for a list query (its cursor included), `limit` orders at most.
fn list_filter(q: ListQuery, p: &Principal, limit: u32) -> Result<OrderFilter, ApiError> {
    let bad = |f: &str, e: orderhub_domain::ValidationError| {
        ApiError::new(StatusCode::BAD_REQUEST, e.rule, e.message).field(f)
    };
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| OrderId::parse(&s).ok())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_cursor",
                        "cursor is not one this API gave out",
                    )
                    .field("cursor")
                })?,
        ),
    };
    let filter = OrderFilter {
        tenant_id: p.tenant_id.clone(),
        status: q
            .status
            .as_deref()
            .map(Status::parse)
            .transpose()
            .map_err(|e| bad("status", e))?,
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
        updated_since: orderhub_api::orders::parse_time("updated_since", q.updated_since)
            .map_err(|e| bad("updated_since", e))?
            .map(|t| t.to_utc()),
        search: OrderSearch {
            external_order_id: search_text("external_order_id", q.external_order_id)?,
            buyer: search_text("buyer", q.buyer)?,
            any_id: search_text("q", q.q)?,
            exception: exception_filter("exception", q.exception.as_deref())?,
            created_from: orderhub_api::orders::parse_time("created_from", q.created_from)
                .map_err(|e| bad("created_from", e))?
                .map(|t| t.to_utc()),
            created_to: orderhub_api::orders::parse_time("created_to", q.created_to)
                .map_err(|e| bad("created_to", e))?
                .map(|t| t.to_utc()),
        },
        shops: p.shops.clone(),
        after,
        limit,
    };
    if let (Some(from), Some(to)) = (filter.search.created_from, filter.search.created_to)
        && from > to
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_range",
            "created_from is after created_to",
        )
        .field("created_from"));
    }
    Ok(filter)
}

/// Longest id, nick or exception kind a search takes: ids of every channel fit in 64 characters.
const SEARCH_TEXT_LEN_MAX: usize = 128;

/// A search term: trimmed, non-empty, at most [`SEARCH_TEXT_LEN_MAX`] characters, no control
/// characters. Empty means "not given".
fn search_text(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > SEARCH_TEXT_LEN_MAX || v.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("{field} must be 1 to {SEARCH_TEXT_LEN_MAX} printable characters"),
        )
        .field(field));
    }
    Ok(Some(v.to_owned()))
}

/// `any`, or one exception kind: lower-case letters, digits and `_`.
pub(crate) fn exception_filter(
    field: &str,
    v: Option<&str>,
) -> Result<Option<ExceptionFilter>, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some("any") => Ok(Some(ExceptionFilter::Any)),
        Some(k)
            if k.len() <= 64
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            Ok(Some(ExceptionFilter::Kind(k.to_owned())))
        }
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("{field} must be `any` or an exception kind such as out_of_stock"),
        )
        .field(field)),
    }
}

/// Move an order: pay, hold, approve, allocate, release, ship, pickup, deliver, complete, cancel.
/// 409 with the current status and version when the move is not allowed from where the order is.
#[utoipa::path(post, path = "/v1/orders/{id}/{action}", tag = "orders",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("action" = String, Path, description = "pay | hold | approve | allocate | release | ship | pickup | deliver | complete | cancel"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body(content = TransitionRequest, description = "What the action needs; empty for approve, release, pickup, deliver, complete"),
    responses(
        (status = 200, body = OrderView),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "Not allowed from the current status", body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn transition(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let kind = crate::policy::order_action(&action)?;
    let id = order_id(&id)?;
    let (req, key): (TransitionRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/{action}"),
    )?;
    let cmd = req.into_command(kind)?;
    // Moves that touch stock go to the writer of the order's stock (see `stock_partition`); the
    // others to the order's own. Either way one order's moves are serialized by its row and version.
    let moves_stock = matches!(
        kind,
        CommandKind::Pay | CommandKind::Cancel | CommandKind::Ship
    );
    let part = if moves_stock && state.store.writers() > 1 {
        let t = ctx.principal.tenant_id.clone();
        match state.store.read(move |r| r.order_get(&t, id)).await? {
            Some(o) => super::stock_partition(o.lines.iter().map(|l| &l.sku).min()),
            None => partition(id),
        }
    } else {
        partition(id)
    };
    let actor = ctx.actor();
    let now = state.clock.now();
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| run_transition(tx, &actor, id, &cmd, now),
        render_order,
    )
    .await
}

/// The body of `POST /v1/orders/{id}/carrier`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchCarrierRequest {
    /// The carrier's code (sf, jd, cainiao, zto, yto, jt, ems, …); it must be on the tenant's
    /// whitelist.
    pub carrier: String,
}

/// Try the order's stuck step again now (allocation, release, waybill, channel write-back) —
/// the exception board's "retry". 409 `action_not_allowed` for an order in a final status.
#[utoipa::path(post, path = "/v1/orders/{id}/retry", tag = "orders",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    responses((status = 200, body = OrderView), (status = 404, body = orderhub_api::ErrorBody), (status = 409, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let (_, key): (serde_json::Value, _) = parse_write(
        &headers,
        if body.is_empty() { b"{}" } else { &body },
        &ctx.principal,
        &format!("POST /v1/orders/{id}/retry"),
    )?;
    let actor = ctx.actor();
    let now = state.clock.now();
    write(
        &state,
        &ctx.principal,
        key,
        partition(id),
        move |tx| orderhub_core::usecases::request_retry(tx, &actor, id, now),
        render_order,
    )
    .await
}

/// Ship the order with another carrier than the default route — the exception board's "switch
/// carrier". Before shipment only (409 `action_not_allowed`); the carrier must be on the tenant's
/// whitelist (422 `carrier_not_whitelisted`).
#[utoipa::path(post, path = "/v1/orders/{id}/carrier", tag = "orders",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = SwitchCarrierRequest,
    responses((status = 200, body = OrderView), (status = 404, body = orderhub_api::ErrorBody), (status = 409, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn switch_carrier(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let (req, key): (SwitchCarrierRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/carrier"),
    )?;
    let carrier = orderhub_domain::ids::CarrierCode::parse(req.carrier.trim())
        .map_err(|e| ApiError::from(e).field("carrier"))?;
    let actor = ctx.actor();
    let now = state.clock.now();
    write(
        &state,
        &ctx.principal,
        key,
        partition(id),
        move |tx| orderhub_core::usecases::switch_carrier(tx, &actor, id, carrier.clone(), now),
        render_order,
    )
    .await
}

/// The body of `POST /v1/orders/{id}/exceptions/{kind}/resolve`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveExceptionRequest {
    /// Why the exception no longer holds (1 to 500 characters); kept in the order's audit trail.
    pub reason: String,
}

/// Resolve an open exception of the order by hand, with a reason: the order without it, one
/// version later, with an audit entry and an `exception.resolved` event. Resolving a stop
/// (`stop_shipment`, `after_sale`, `shipped_on_channel`) lets the order move towards shipment
/// again. 409 `exception_not_open` when the order does not carry that kind;
/// 409 `exception_not_resolvable` for `out_of_stock`, which resolves itself when stock arrives.
#[utoipa::path(post, path = "/v1/orders/{id}/exceptions/{kind}/resolve", tag = "orders",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("kind" = String, Path, description = "The exception: stop_shipment, after_sale, shipped_on_channel, changed_after_release, unknown_channel_status, not_released, no_waybill, no_tracking, writeback_failed …"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = ResolveExceptionRequest,
    responses(
        (status = 200, body = OrderView),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "The order does not carry that exception, or it resolves only by itself", body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn resolve_exception(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let (req, key): (ResolveExceptionRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/exceptions/{kind}/resolve"),
    )?;
    let actor = ctx.actor();
    let now = state.clock.now();
    write(
        &state,
        &ctx.principal,
        key,
        partition(id),
        move |tx| {
            orderhub_core::usecases::resolve_exception(tx, &actor, id, &kind, &req.reason, now)
        },
        render_order,
    )
    .await
}

/// Every step of one order: who moved it, from where to where, and how long each step took.
#[utoipa::path(get, path = "/v1/orders/{id}/timeline", tag = "orders",
    params(("id" = String, Path, description = "orderhub order id")),
    responses((status = 200, body = Timeline), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn timeline(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    let o = visible_order(&state, &ctx.principal, id).await?;
    let t = ctx.principal.tenant_id.clone();
    let audit = state.store.read(move |r| r.audit_for_order(&t, id)).await?;
    let created = audit.first().map_or(o.created_at, |a| a.at);
    let mut prev = created;
    let steps = audit
        .into_iter()
        .map(|a| {
            let step = TimelineStep {
                at: a.at,
                action: a.action,
                from_status: a.from_status.map(|s| s.as_str().to_owned()),
                to_status: a.to_status.as_str().to_owned(),
                version: a.to_version,
                actor: a.actor,
                request_id: a.request_id,
                detail: a.detail,
                since_previous_ms: (a.at - prev).num_milliseconds(),
                since_created_ms: (a.at - created).num_milliseconds(),
            };
            prev = a.at;
            step
        })
        .collect();
    let tl = Timeline {
        order_id: o.id.as_uuid(),
        status: o.status.as_str().to_owned(),
        steps,
    };
    Ok(crate::extract::json(StatusCode::OK, &tl))
}

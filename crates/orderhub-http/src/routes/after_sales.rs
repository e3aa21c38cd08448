//! `/v1/after-sales`: after-sales cases (RMA) — open on an order, list, read, and move them
//! (approve, refuse, receive with QC, refund, close). Thin: the rules are
//! `orderhub_core::after_sales` and `orderhub_domain::after_sales`.

use super::parse_query;
use super::uuid_param;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, parse_write, write};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orderhub_api::after_sales::{
    ApproveRequest, CasePage, CaseView, EmptyRequest, ExchangeRequest, OpenCaseRequest,
    QuarantineView, ReceiveRequest, RefuseRequest,
};
use orderhub_core::after_sales::{self as uc, OpenCase, Receipt};
use orderhub_core::auth::Principal;
use orderhub_domain::after_sales::{AfterSaleCase, CaseState};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::{Order, OrderId};
use orderhub_store::CaseFilter;
use serde::Deserialize;
use uuid::Uuid;

const PAGE_DEFAULT: u32 = 50;
const PAGE_MAX: u32 = 200;

fn render(r: &(AfterSaleCase, Order), _: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::OK, &view_with_order(r))
}

fn render_created(r: &(AfterSaleCase, Order), _: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::CREATED, &view_with_order(r))
}

fn view_with_order((c, o): &(AfterSaleCase, Order)) -> CaseView {
    let mut v = CaseView::new(c);
    v.order_status = Some(o.status.as_str().to_owned());
    v.order_version = Some(o.version);
    v
}

/// The writer of an order's stock moves (`super::stock_partition`, as its payment, cancel and
/// shipment): an approval that releases the order's stock, or cancels it, meets a shipment of the
/// same order on one writer.
fn order_partition(o: &Order) -> u64 {
    super::stock_partition(o.lines.iter().map(|l| &l.sku).min())
}

/// The case as this key may see it (another tenant's, or a shop outside its scope: 404).
async fn visible_case(
    state: &SharedState,
    p: &Principal,
    id: Uuid,
) -> Result<AfterSaleCase, ApiError> {
    let t = p.tenant_id.clone();
    state
        .store
        .read(move |r| r.after_sale(&t, id))
        .await?
        .filter(|c| p.sees_shop(&c.shop_id))
        .ok_or_else(|| ApiError::not_found("after-sales case"))
}

/// The writer partition of a case's order.
async fn case_partition(state: &SharedState, p: &Principal, id: Uuid) -> Result<u64, ApiError> {
    let c = visible_case(state, p, id).await?;
    let o = super::orders::visible_order(state, p, c.order_id).await?;
    Ok(order_partition(&o))
}

/// Open an after-sales case on lines of an order (`requested`). The case keeps the effect
/// approving it would have as the order is now (`effect`). 409 `after_sale_not_now` when the
/// order's status takes no case of that kind (unpaid, cancelled, a return of goods not shipped).
#[utoipa::path(post, path = "/v1/orders/{id}/after-sales", tag = "after-sales",
    params(
        ("id" = String, Path, description = "orderhub order id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = OpenCaseRequest,
    responses(
        (status = 201, body = CaseView),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "The order's status takes no such case now", body = orderhub_api::ErrorBody),
        (status = 422, description = "A line, quantity or amount breaks a rule (`exceeds_line_quantity`, `exceeds_line_paid` …)", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn open(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = OrderId::parse(&id).map_err(ApiError::from)?;
    let (req, key): (OpenCaseRequest, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/orders/{id}/after-sales"),
    )?;
    let order = super::orders::visible_order(&state, &ctx.principal, id).await?;
    let (kind, lines, reason) = req.into_parts(order.currency)?;
    let input = OpenCase {
        kind,
        lines,
        reason,
    };
    let actor = ctx.actor();
    let now = state.clock.now();
    write(
        &state,
        &ctx.principal,
        key,
        order_partition(&order),
        move |tx| uc::open(tx, &actor, id, &input, now),
        render_created,
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    /// requested, approved, refused, goods_returning, received, qc_passed, qc_failed, refunded,
    /// exchanged, closed
    state: Option<String>,
    /// Only this order's cases.
    order_id: Option<String>,
    /// From the previous page's `next_cursor`.
    cursor: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message).field(field)
}

/// List after-sales cases, oldest first, by state and order; a shop-scoped key sees its shops'.
#[utoipa::path(get, path = "/v1/after-sales", tag = "after-sales", params(CaseQuery),
    responses((status = 200, body = CasePage), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: CaseQuery = parse_query(q.as_deref())?;
    let limit = super::page_limit(q.limit, PAGE_DEFAULT, PAGE_MAX)?;
    let st = q
        .state
        .as_deref()
        .map(|s| CaseState::parse(s).map_err(|e| bad("state", e.message)))
        .transpose()?;
    let order_id = q
        .order_id
        .as_deref()
        .map(|s| OrderId::parse(s).map_err(|_| bad("order_id", "order_id must be a UUID")))
        .transpose()?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| Uuid::from_slice(&b).ok())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_cursor",
                        "cursor is not one this API gave",
                    )
                    .field("cursor")
                })
        })
        .transpose()?;
    let f = CaseFilter {
        tenant: ctx.principal.tenant_id.clone(),
        state: st.map(|s| s.as_str().to_owned()),
        order_id,
        shops: super::scope_strings(&ctx.principal),
        after,
        limit,
    };
    let cases = state.store.read(move |r| r.after_sales(&f)).await?;
    let next_cursor = super::next_cursor(&cases, limit, |c| {
        URL_SAFE_NO_PAD.encode(c.case_id.as_bytes())
    });
    let page = CasePage {
        cases: cases.iter().map(CaseView::new).collect(),
        next_cursor,
    };
    Ok(crate::extract::json(StatusCode::OK, &page))
}

/// One case, with its steps and, after a failed QC, its quarantine ledger rows.
#[utoipa::path(get, path = "/v1/after-sales/{id}", tag = "after-sales",
    params(("id" = uuid::Uuid, Path, description = "case id")),
    responses((status = 200, body = CaseView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let c = visible_case(&state, &ctx.principal, id).await?;
    let t = ctx.principal.tenant_id.clone();
    let rows = state
        .store
        .read(move |r| r.quarantine_of_case(&t, id))
        .await?;
    let mut v = CaseView::new(&c);
    v.quarantine = Some(
        rows.into_iter()
            .map(|r| QuarantineView {
                sku: r.sku.as_str().to_owned(),
                warehouse_id: r.warehouse_id.as_str().to_owned(),
                quantity: r.quantity,
                quantity_after: r.quantity_after,
                reason: r.reason,
                at: r.at,
            })
            .collect(),
    );
    Ok(crate::extract::json(StatusCode::OK, &v))
}

/// Runs one case action: the path and body parsed, the job on the order's writer.
async fn act<B, F>(
    state: SharedState,
    ctx: Ctx,
    id: String,
    action: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    job: F,
) -> Result<Response, ApiError>
where
    B: serde::de::DeserializeOwned,
    F: Fn(
            &mut dyn orderhub_core::Tx,
            &orderhub_core::usecases::Actor,
            Uuid,
            &B,
        ) -> Result<(AfterSaleCase, Order), orderhub_core::CoreError>
        + Send
        + 'static,
    B: Send + 'static,
{
    let id = uuid_param(&id, "id")?;
    let (req, key): (B, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/after-sales/{id}/{action}"),
    )?;
    let part = case_partition(&state, &ctx.principal, id).await?;
    let actor = ctx.actor();
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| job(tx, &actor, id, &req),
        render,
    )
    .await
}

/// Approve a requested case and apply its effect to the order: before release the lines' stock
/// goes back to the pool (the order goes on with the rest, or is cancelled when nothing is left);
/// released or shipped → the order is stopped (`after_sale`) for an interception; with the carrier
/// or delivered → money only, or the return is expected (`goods_returning`). 409
/// `after_sale_effect_changed` when the order moved on since the case was opened and the body does
/// not accept the new effect; 409 `after_sale_not_allowed` when the case is not requested.
#[utoipa::path(post, path = "/v1/after-sales/{id}/approve", tag = "after-sales",
    params(
        ("id" = uuid::Uuid, Path, description = "case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body(content = ApproveRequest, description = "May be empty"),
    responses(
        (status = 200, body = CaseView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "Not allowed from the case's state, or the order moved on", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    act(
        state,
        ctx,
        id,
        "approve",
        headers,
        body.to_vec(),
        move |tx, actor, id, req: &ApproveRequest| {
            let accept = req.effect()?;
            uc::approve(tx, actor, id, accept, now)
        },
    )
    .await
}

/// Refuse a requested case, with a reason: its lines no longer count against what is left to
/// refund.
#[utoipa::path(post, path = "/v1/after-sales/{id}/refuse", tag = "after-sales",
    params(
        ("id" = uuid::Uuid, Path, description = "case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = RefuseRequest,
    responses(
        (status = 200, body = CaseView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn refuse(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    act(
        state,
        ctx,
        id,
        "refuse",
        headers,
        body.to_vec(),
        move |tx, actor, id, req: &RefuseRequest| uc::refuse(tx, actor, id, &req.reason, now),
    )
    .await
}

/// The returned goods arrived, with their quality control: passed → back on hand (a `return`
/// ledger row, backorders served); failed → a quarantine position with its own ledger rows,
/// never sellable, linked to the case.
#[utoipa::path(post, path = "/v1/after-sales/{id}/receive", tag = "after-sales",
    params(
        ("id" = uuid::Uuid, Path, description = "case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body = ReceiveRequest,
    responses(
        (status = 200, body = CaseView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn receive(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    act(
        state,
        ctx,
        id,
        "receive",
        headers,
        body.to_vec(),
        move |tx, actor, id, req: &ReceiveRequest| {
            let warehouse_id = req
                .warehouse_id
                .as_deref()
                .map(|w| {
                    WarehouseId::parse(w.trim()).map_err(|e| {
                        orderhub_domain::ValidationError::new("warehouse_id", e.rule, e.message)
                    })
                })
                .transpose()?;
            let r = Receipt {
                qc_passed: req.qc_passed,
                warehouse_id,
                note: req.note.clone(),
            };
            uc::receive(tx, actor, id, &r, now)
        },
    )
    .await
}

/// Record that the money went back: `after_sale.refunded` and `order.refunded`.
#[utoipa::path(post, path = "/v1/after-sales/{id}/refund", tag = "after-sales",
    params(
        ("id" = uuid::Uuid, Path, description = "case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body(content = EmptyRequest, description = "Empty"),
    responses(
        (status = 200, body = CaseView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    act(
        state,
        ctx,
        id,
        "refund",
        headers,
        body.to_vec(),
        move |tx, actor, id, _: &EmptyRequest| uc::refund(tx, actor, id, now),
    )
    .await
}

/// Ship an exchange's replacement goods once its returned goods passed QC: a replacement order
/// (kind `exchange`, amount 0, the original's shop, channel and receiver, the case's quantities of
/// the same SKU or of the one `replacements` names) is created and paid, so it reserves its stock
/// and flows through fulfillment; the case is `exchanged` and names it (`replacement_order_id`);
/// `after_sale.exchanged`. 409 `after_sale_not_allowed` unless the case is an exchange in
/// `qc_passed`; 422 for a replacement naming a line not in the case or an undefined SKU.
#[utoipa::path(post, path = "/v1/after-sales/{id}/exchange", tag = "after-sales",
    params(
        ("id" = uuid::Uuid, Path, description = "case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body(content = ExchangeRequest, description = "May be empty"),
    responses(
        (status = 200, body = CaseView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, body = orderhub_api::ErrorBody),
        (status = 422, description = "A replacement names a line not in the case (`not_in_case`) or an undefined SKU (`unknown_sku`)", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn exchange(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    act(
        state,
        ctx,
        id,
        "exchange",
        headers,
        body.to_vec(),
        move |tx, actor, id, req: &ExchangeRequest| {
            let replacements: Vec<uc::Replacement> = req
                .replacements()?
                .into_iter()
                .map(|(line_id, sku)| uc::Replacement { line_id, sku })
                .collect();
            uc::exchange(tx, actor, id, &replacements, now).map(|e| (e.case, e.order))
        },
    )
    .await
}

/// Close a refunded case (or one whose goods failed QC, without a refund).
#[utoipa::path(post, path = "/v1/after-sales/{id}/close", tag = "after-sales",
    params(
        ("id" = uuid::Uuid, Path, description = "case id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat"),
    ),
    request_body(content = EmptyRequest, description = "Empty"),
    responses(
        (status = 200, body = CaseView),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn close(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    act(
        state,
        ctx,
        id,
        "close",
        headers,
        body.to_vec(),
        move |tx, actor, id, _: &EmptyRequest| uc::close(tx, actor, id, now),
    )
    .await
}

//! `POST /v1/orders/bulk`: one action (approve, hold, cancel, retry, switch carrier, set the
//! seller memo) over a search or a list of order ids, at most [`BULK_MAX`] orders. With
//! `preview: true` it answers what would happen to each order and writes nothing; otherwise each
//! order is done in a transaction of its own through the single action's use case (one order's
//! refusal stops none of the others) and the answer lists each order's result.
//!
//! Permission: the route lets any key that reads orders in; the action's own permission — the one
//! its single route declares, [`BulkAction::permission`] — is checked once per request before any
//! order is read (403 otherwise). Idempotency-Key: each order's write is idempotent under a key
//! derived from the request's (`bulk <key> <order id>`), and the whole answer is stored under the
//! request's key once every order is done, so a repeat after a crash finishes the run without
//! doing any order twice.

use super::partition;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json_response, parse_write};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use orderhub_api::orders::TransitionRequest;
use orderhub_core::CoreError;
use orderhub_core::bulk::{BULK_MAX, BulkAction, Would};
use orderhub_core::idempotency::{IdempotencyKey, StoredResponse, run_idempotent};
use orderhub_domain::lifecycle::CommandKind;
use orderhub_domain::{Order, OrderId};
use orderhub_store::EditFilter;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Orders written at once by one bulk request (each its own transaction): enough to fill the
/// writers' groups, few enough to leave room for everyone else.
const IN_FLIGHT: usize = 16;

/// The body of `POST /v1/orders/bulk`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// approve, hold, cancel, retry, switch_carrier, set_seller_memo.
    pub action: String,
    /// The filters of `GET /v1/orders` (status, channel, shop, updated_since, external_order_id,
    /// buyer, exception, created_from, created_to, q) as an object of strings; it may match at
    /// most 500 orders (422 `too_many_orders`). Give this or `order_ids`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub search: Option<serde_json::Map<String, serde_json::Value>>,
    /// 1 to 500 orderhub order ids (repeats count once).
    #[serde(default)]
    pub order_ids: Option<Vec<String>>,
    /// hold, cancel: why (required); set_seller_memo: why the edit (required).
    #[serde(default)]
    pub reason: Option<String>,
    /// switch_carrier: the carrier code.
    #[serde(default)]
    pub carrier: Option<String>,
    /// set_seller_memo: the new memo (empty or absent clears it).
    #[serde(default)]
    pub seller_memo: Option<String>,
    /// Answer what would happen to each order, write nothing.
    #[serde(default)]
    pub preview: bool,
}

/// One order's result.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkResult {
    pub order_id: String,
    /// Preview: `would_apply`, `would_await_approval` (an edit the tenant's rules send for
    /// approval), `refused`, `not_found`. Run: `done`, `awaits_approval`, `refused`, `not_found`.
    pub outcome: String,
    /// The order's status and version: after the action when done, as read otherwise.
    pub status: Option<String>,
    pub version: Option<u64>,
    /// Why it was (or would be) refused: the code, message and field the single action answers.
    pub error: Option<BulkError>,
}

/// Why an order was (or would be) refused, as its single action answers it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl From<ApiError> for BulkError {
    fn from(e: ApiError) -> Self {
        let d = *e.detail;
        BulkError {
            code: d.code,
            message: d.message,
            field: d.field,
            current_status: d.current_status,
            current_version: d.current_version,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkResponse {
    pub action: String,
    pub preview: bool,
    /// Orders the search or list named.
    pub matched: usize,
    /// Done (or would be applied or wait for approval, in a preview).
    pub succeeded: usize,
    /// Refused or not found.
    pub refused: usize,
    /// One per order, in the order of the list (a search: oldest order first).
    pub results: Vec<BulkResult>,
}

fn unprocessable(field: &str, rule: &str, msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, rule, msg).field(field)
}

/// The action the request names, with what it needs.
fn action(req: &BulkRequest) -> Result<BulkAction, ApiError> {
    let only = |field: &str, given: bool, name: &str| {
        if given {
            Err(unprocessable(
                field,
                "not_allowed",
                format!("{field} is not taken by {name}"),
            ))
        } else {
            Ok(())
        }
    };
    let name = req.action.trim();
    if name != "switch_carrier" {
        only("carrier", req.carrier.is_some(), name)?;
    }
    if name != "set_seller_memo" {
        only("seller_memo", req.seller_memo.is_some(), name)?;
    }
    match name {
        "approve" | "hold" | "cancel" => {
            let kind = CommandKind::parse(name).unwrap_or(CommandKind::Approve);
            let t = TransitionRequest {
                reason: req.reason.clone(),
                ..TransitionRequest::default()
            };
            Ok(BulkAction::Move(t.into_command(kind)?))
        }
        "retry" => {
            only("reason", req.reason.is_some(), name)?;
            Ok(BulkAction::Retry)
        }
        "switch_carrier" => {
            only("reason", req.reason.is_some(), name)?;
            let c = req
                .carrier
                .as_deref()
                .ok_or_else(|| unprocessable("carrier", "required", "carrier is required"))?;
            Ok(BulkAction::SwitchCarrier(
                orderhub_domain::ids::CarrierCode::parse(c.trim())
                    .map_err(|e| ApiError::from(e).field("carrier"))?,
            ))
        }
        "set_seller_memo" => {
            let reason = req.reason.clone().ok_or_else(|| {
                unprocessable("reason", "required", "reason is required to edit orders")
            })?;
            let memo = req
                .seller_memo
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned);
            Ok(BulkAction::SellerMemo { memo, reason })
        }
        other => Err(unprocessable(
            "action",
            "unknown_action",
            format!(
                "unknown action {other:?}; one of approve, hold, cancel, retry, switch_carrier, \
                 set_seller_memo"
            ),
        )),
    }
}

/// The ids the request lists, parsed, repeats dropped (first kept), at most [`BULK_MAX`].
fn listed_ids(ids: &[String]) -> Result<Vec<OrderId>, ApiError> {
    if ids.is_empty() || ids.len() > BULK_MAX {
        return Err(unprocessable(
            "order_ids",
            "out_of_range",
            format!("order_ids lists 1 to {BULK_MAX} orders"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in ids.iter().enumerate() {
        let id = OrderId::parse(s.trim()).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                format!("order_ids[{i}] is not an orderhub order id"),
            )
            .field(format!("order_ids[{i}]"))
        })?;
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The orders the request names, as the caller sees them (`None`: not found for this key), in
/// the request's order.
async fn targets(
    state: &SharedState,
    ctx: &Ctx,
    req: &mut BulkRequest,
) -> Result<Vec<(OrderId, Option<Order>)>, ApiError> {
    let p = ctx.principal.clone();
    match (req.search.take(), req.order_ids.take()) {
        (Some(_), Some(_)) | (None, None) => Err(unprocessable(
            "search",
            "one_of",
            "give either search or order_ids",
        )),
        (Some(search), None) => {
            let filter = super::orders::search_filter(search, &p, BULK_MAX as u32 + 1)?;
            let orders = state.store.read(move |r| r.order_list(&filter)).await?;
            if orders.len() > BULK_MAX {
                return Err(unprocessable(
                    "search",
                    "too_many_orders",
                    format!("the search matches more than {BULK_MAX} orders; narrow it"),
                ));
            }
            Ok(orders.into_iter().map(|o| (o.id, Some(o))).collect())
        }
        (None, Some(ids)) => {
            let ids = listed_ids(&ids)?;
            let t = p.tenant_id.clone();
            let found = state
                .store
                .read(move |r| {
                    ids.into_iter()
                        .map(|id| Ok((id, r.order_get(&t, id)?)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?;
            Ok(found
                .into_iter()
                .map(|(id, o)| (id, o.filter(|o| p.sees_shop(&o.shop_id))))
                .collect())
        }
    }
}

fn refused(id: OrderId, o: Option<&Order>, e: ApiError) -> BulkResult {
    BulkResult {
        order_id: id.to_string(),
        outcome: "refused".into(),
        status: o.map(|o| o.status.as_str().to_owned()),
        version: o.map(|o| o.version),
        error: Some(e.into()),
    }
}

fn not_found(id: OrderId) -> BulkResult {
    BulkResult {
        order_id: id.to_string(),
        outcome: "not_found".into(),
        status: None,
        version: None,
        error: Some(ApiError::not_found("order").into()),
    }
}

/// Act on (or preview) many orders at once. 403 when the key may not take the action on one
/// order; 422 for a search matching more than 500 orders; 400 for a bad id in `order_ids`.
#[utoipa::path(post, path = "/v1/orders/bulk", tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a repeat; a repeat after a failure finishes the run without doing an order twice")),
    request_body = BulkRequest,
    responses(
        (status = 200, body = BulkResponse),
        (status = 400, description = "A bad order id, search filter or JSON", body = orderhub_api::ErrorBody),
        (status = 403, description = "The key may not take this action", body = orderhub_api::ErrorBody),
        (status = 409, body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn bulk(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (mut req, key): (BulkRequest, _) =
        parse_write(&headers, &body, &ctx.principal, "POST /v1/orders/bulk")?;
    let act = action(&req)?;
    let perm = act.permission();
    let p = &ctx.principal;
    if !p.can(perm) {
        return Err(ApiError::forbidden(format!(
            "role {} may not {}",
            p.role.as_str(),
            perm.describe()
        )));
    }
    let preview = req.preview;
    // A preview writes nothing and stores nothing: its key is not held or kept.
    let key = key.filter(|_| !preview);
    let _guard = key.as_ref().map(|k| state.inflight.enter(k)).transpose()?;
    if let Some(k) = &key
        && let Some(r) = stored(&state, k).await?
    {
        return Ok(json_response(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            r.body,
            true,
        ));
    }
    let targets = targets(&state, &ctx, &mut req).await?;
    let results = if preview {
        preview_all(&state, &ctx, &act, targets).await?
    } else {
        run_all(&state, &ctx, &act, targets, key.as_ref()).await
    };
    let ok = |r: &&BulkResult| r.outcome != "refused" && r.outcome != "not_found";
    let answer = BulkResponse {
        action: act.name().to_owned(),
        preview,
        matched: results.len(),
        succeeded: results.iter().filter(ok).count(),
        refused: results.iter().filter(|r| !ok(r)).count(),
        results,
    };
    let (status, body) = crate::extract::rendered(StatusCode::OK, &answer);
    if let Some(k) = key {
        let (now, stored_body) = (state.clock.now(), body.clone());
        state
            .store
            .write(partition(("bulk", &k.key)), move |tx| {
                run_idempotent(tx, Some(&k), now, |_| {
                    Ok(StoredResponse {
                        status: status.as_u16(),
                        body: stored_body.clone(),
                        replayed: false,
                    })
                })
            })
            .await?;
    }
    Ok(json_response(status, body, false))
}

/// The answer stored under the request's key, if a request with it finished before; a key used
/// with another request is refused.
async fn stored(
    state: &SharedState,
    k: &IdempotencyKey,
) -> Result<Option<StoredResponse>, ApiError> {
    let k2 = k.clone();
    let rec = state
        .store
        .write(partition(("bulk", &k.key)), move |tx| {
            Ok(tx.idempotency_get(&k2.tenant_id, &k2.key_id, &k2.key)?)
        })
        .await?;
    match rec {
        None => Ok(None),
        Some(r) if r.request_hash != k.request_hash => Err(CoreError::IdempotencyMismatch.into()),
        Some(r) => Ok(Some(StoredResponse {
            status: r.status,
            body: r.body,
            replayed: true,
        })),
    }
}

/// What each order would come to, written nowhere. The tenant's policy and edit rules are read
/// in a transaction that writes nothing; the orders as the search or list read them.
async fn preview_all(
    state: &SharedState,
    ctx: &Ctx,
    act: &BulkAction,
    targets: Vec<(OrderId, Option<Order>)>,
) -> Result<Vec<BulkResult>, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    let t2 = t.clone();
    let (policy, rules) = state
        .store
        .write(partition(("settings", t.as_str())), move |tx| {
            Ok((tx.tenant_policy(&t2)?, tx.edit_rules(&t2)?))
        })
        .await?;
    let pending = if matches!(act, BulkAction::SellerMemo { .. }) {
        let ids: Vec<OrderId> = targets.iter().map(|(id, _)| *id).collect();
        state
            .store
            .read(move |r| {
                let mut out = std::collections::HashMap::new();
                for id in ids {
                    let f = EditFilter {
                        tenant: t.clone(),
                        order: Some(id),
                        state: Some(orderhub_core::edits::EditState::Pending),
                        shops: None,
                        after: None,
                        limit: 1,
                    };
                    if let Some(e) = r.edits(&f)?.into_iter().next() {
                        out.insert(id, e.edit_id);
                    }
                }
                Ok(out)
            })
            .await?
    } else {
        std::collections::HashMap::new()
    };
    let now = state.clock.now();
    Ok(targets
        .into_iter()
        .map(|(id, o)| {
            let Some(o) = o else { return not_found(id) };
            match act.check(&o, &policy, &rules, pending.get(&id).copied(), now) {
                Ok(w) => BulkResult {
                    order_id: id.to_string(),
                    outcome: match w {
                        Would::Apply => "would_apply",
                        Would::AwaitApproval(_) => "would_await_approval",
                    }
                    .into(),
                    status: Some(o.status.as_str().to_owned()),
                    version: Some(o.version),
                    error: None,
                },
                Err(e) => refused(id, Some(&o), e.into()),
            }
        })
        .collect())
}

/// Runs the action on each order in a transaction of its own, [`IN_FLIGHT`] at a time.
async fn run_all(
    state: &SharedState,
    ctx: &Ctx,
    act: &BulkAction,
    targets: Vec<(OrderId, Option<Order>)>,
    key: Option<&IdempotencyKey>,
) -> Vec<BulkResult> {
    let mut results: Vec<Option<BulkResult>> = vec![None; targets.len()];
    let mut set = tokio::task::JoinSet::new();
    let mut pending = targets.into_iter().enumerate();
    loop {
        while set.len() < IN_FLIGHT {
            let Some((i, (id, order))) = pending.next() else {
                break;
            };
            let Some(order) = order else {
                results[i] = Some(not_found(id));
                continue;
            };
            let (state, actor, act) = (state.clone(), ctx.actor(), act.clone());
            let sub = key.map(|k| IdempotencyKey {
                key: format!("bulk {} {id}", k.key),
                ..k.clone()
            });
            set.spawn(async move { (i, run_one(&state, actor, act, order, sub).await) });
        }
        match set.join_next().await {
            Some(Ok((i, r))) => results[i] = Some(r),
            Some(Err(e)) => tracing::error!(error = %e, "A bulk action's task failed."),
            None => break,
        }
    }
    results.into_iter().flatten().collect()
}

/// One order's write: the single action's use case, idempotent under the derived key.
async fn run_one(
    state: &SharedState,
    actor: orderhub_core::usecases::Actor,
    act: BulkAction,
    order: Order,
    key: Option<IdempotencyKey>,
) -> BulkResult {
    let id = order.id;
    let moves_stock = matches!(&act, BulkAction::Move(c) if c.kind() == CommandKind::Cancel);
    let part = if moves_stock && state.store.writers() > 1 {
        super::stock_partition(order.lines.iter().map(|l| &l.sku).min())
    } else {
        partition(id)
    };
    let now = state.clock.now();
    let r = state
        .store
        .write(part, move |tx| {
            run_idempotent(tx, key.as_ref(), now, |tx| {
                let (o, waits) = act.run(tx, &actor, id, now)?;
                let r = BulkResult {
                    order_id: id.to_string(),
                    outcome: if waits { "awaits_approval" } else { "done" }.into(),
                    status: Some(o.status.as_str().to_owned()),
                    version: Some(o.version),
                    error: None,
                };
                Ok(StoredResponse {
                    status: 200,
                    body: serde_json::to_vec(&r).unwrap_or_default(),
                    replayed: false,
                })
            })
        })
        .await;
    match r {
        Ok(s) => serde_json::from_slice(&s.body).unwrap_or_else(|_| {
            refused(
                id,
                Some(&order),
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "a stored result could not be read",
                ),
            )
        }),
        Err(e) => refused(id, Some(&order), e.into()),
    }
}

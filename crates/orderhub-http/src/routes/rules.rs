//! Rule sets (issue 22): `POST /v1/rule-sets` writes a draft (every rule compiled first: a rule
//! that does not parse or names an unknown fact is refused, 400 `invalid_rules`, naming the rule,
//! its field and the place), then `submit`, `approve` (another key than the author's) and
//! `publish` (with an effective time). `test` evaluates one stored order against a set;
//! `sandbox` evaluates a set over the last N days of stored orders against the live set, writing
//! nothing. Both use the live path's evaluator (`orderhub_core::rules::evaluate`).

use super::uuid_param;
use super::{page_limit, parse_query, partition};
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json, parse_json, parse_write, write};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use orderhub_core::auth::Principal;
use orderhub_core::rules::{self as core_rules, RuleSetRecord, SandboxReport};
use orderhub_core::{CoreError, StoreError};
use orderhub_domain::{OrderId, Sku, TenantId};
use orderhub_rules::{Extra, Needs, Rule, RuleKind, RuleSet};
use orderhub_store::{OrderFilter, ReadConn, Store};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// Days of history a sandbox run reads at most.
pub const SANDBOX_DAYS_MAX: u32 = 90;
/// Orders a sandbox run evaluates at most (the target: 100,000 in under 10 s).
pub const SANDBOX_ORDERS_MAX: u64 = 200_000;
/// Orders read per page of a sandbox run (one reader call each).
const SANDBOX_PAGE: u32 = 1_000;

/// One rule as written.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleIn {
    /// 1-32 letters, digits, '-' or '_'; unique in the set.
    pub id: String,
    pub name: String,
    /// hold, tag, carrier, deadline, gift or warehouse
    pub kind: String,
    /// CEL over the facts (channel, shop, kind, currency, paid_cents, goods_total_cents,
    /// shipping_fee_cents, discount_cents, skus, quantity, line_count, tags, weight_kg, province,
    /// city, district, buyer_message, seller_memo, is_test, is_employee, is_presale,
    /// buyer_order_count, buyer_blacklisted, phone_blacklisted, address_blacklisted).
    pub condition: String,
    /// hold: `{}`; tag: `{"tags": [...]}`; carrier: `{"carrier": "ems"}`; deadline:
    /// `{"ship_within_hours": 48}`; gift: `{"lines": [{"sku": "GIFT-1", "quantity": 1}],
    /// "window": {"from": RFC 3339, "until": RFC 3339}}` (window optional); warehouse:
    /// `{"warehouses": ["WH-A", "WH-B"], "split": "allow" | "forbid"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub action: Option<serde_json::Value>,
    /// Lower runs first (default 0).
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// The body of `POST /v1/rule-sets`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRuleSet {
    pub name: String,
    pub rules: Vec<RuleIn>,
}

fn kind(i: usize, r: &RuleIn) -> Result<RuleKind, ApiError> {
    match r.kind.as_str() {
        "hold" => Ok(RuleKind::Hold),
        "tag" => Ok(RuleKind::Tag),
        "carrier" => Ok(RuleKind::Carrier),
        "deadline" => Ok(RuleKind::Deadline),
        "gift" => Ok(RuleKind::Gift),
        "warehouse" => Ok(RuleKind::Warehouse),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_rules",
            format!(
                "rule {}: kind must be hold, tag, carrier, deadline, gift or warehouse",
                r.id
            ),
        )
        .field(format!("rules[{i}].kind"))),
    }
}

/// The wire rules as the engine takes them.
pub fn rules_of(rules: Vec<RuleIn>) -> Result<Vec<Rule>, ApiError> {
    rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(Rule {
                kind: kind(i, &r)?,
                id: r.id,
                name: r.name,
                condition: r.condition,
                action: r.action.unwrap_or_else(|| serde_json::json!({})),
                priority: r.priority,
                enabled: r.enabled,
            })
        })
        .collect()
}

/// A rule set as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetView {
    pub rule_set_id: Uuid,
    pub version: u32,
    pub name: String,
    /// draft, submitted, approved, published
    pub state: String,
    pub rules: Vec<RuleIn>,
    /// `role:key name` of each step.
    pub author: String,
    pub submitted_by: Option<String>,
    pub approved_by: Option<String>,
    pub published_by: Option<String>,
    pub effective_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(r: &RuleSetRecord) -> RuleSetView {
    let m = &r.meta;
    RuleSetView {
        rule_set_id: r.rule_set_id,
        version: r.version,
        name: m.name.clone(),
        state: r.state.as_str().to_owned(),
        rules: r
            .rules
            .iter()
            .map(|x| RuleIn {
                id: x.id.clone(),
                name: x.name.clone(),
                kind: x.kind.as_str().to_owned(),
                condition: x.condition.clone(),
                action: Some(x.action.clone()),
                priority: x.priority,
                enabled: x.enabled,
            })
            .collect(),
        author: m.author.actor.clone(),
        submitted_by: m.submitted_by.as_ref().map(|w| w.actor.clone()),
        approved_by: m.approved_by.as_ref().map(|w| w.actor.clone()),
        published_by: m.published_by.as_ref().map(|w| w.actor.clone()),
        effective_at: r.effective_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn render(status: StatusCode) -> fn(&RuleSetRecord, &Principal) -> (StatusCode, Vec<u8>) {
    if status == StatusCode::CREATED {
        |r, _| crate::extract::rendered(StatusCode::CREATED, &view(r))
    } else {
        |r, _| crate::extract::rendered(StatusCode::OK, &view(r))
    }
}

/// Every fault of a refused set, with the first one as the error.
fn refused(errors: Vec<orderhub_rules::RuleError>) -> Response {
    let first = ApiError::from(CoreError::InvalidRules(errors.clone()));
    let body = serde_json::json!({ "error": *first.detail, "errors": errors });
    json(StatusCode::BAD_REQUEST, &body)
}

/// Write a draft rule set. Every rule is compiled first; a refused set answers 400
/// `invalid_rules` with `errors`: each names the rule, its field (`condition`, `action`, `id`,
/// `name`) and, for a condition, the line and column.
#[utoipa::path(post, path = "/v1/rule-sets", tag = "rules",
    request_body = CreateRuleSet,
    responses(
        (status = 201, body = RuleSetView),
        (status = 400, description = "`invalid_rules`: a rule does not parse, names an unknown fact, or its action does not fit its kind", body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (CreateRuleSet, _) =
        parse_write(&headers, &body, &ctx.principal, "POST /v1/rule-sets")?;
    let rules = rules_of(req.rules)?;
    if let Err(errors) = RuleSet::compile(&rules) {
        return Ok(refused(errors));
    }
    let (actor, now, name) = (ctx.actor(), state.clock.now(), req.name);
    let part = partition(ctx.principal.tenant_id.as_str());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| core_rules::create_draft(tx, &actor, &name, rules.clone(), now),
        render(StatusCode::CREATED),
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The tenant's rule sets, newest version first, and which is live now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSetPage {
    pub rule_sets: Vec<RuleSetView>,
    pub live_version: Option<u32>,
}

/// The tenant's rule sets, newest first, and the live version.
#[utoipa::path(get, path = "/v1/rule-sets", tag = "rules", params(ListQuery),
    responses((status = 200, body = RuleSetPage), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ListQuery = parse_query(q.as_deref())?;
    let limit = page_limit(q.limit, 50, 200)?;
    let (t, now) = (ctx.principal.tenant_id.clone(), state.clock.now());
    let (sets, live) = state
        .store
        .read(move |r| Ok((r.rule_sets(&t, limit)?, r.rule_set_live_at(&t, now)?)))
        .await?;
    Ok(json(
        StatusCode::OK,
        &RuleSetPage {
            rule_sets: sets.iter().map(view).collect(),
            live_version: live.map(|l| l.version),
        },
    ))
}

async fn load(state: &SharedState, t: &TenantId, id: Uuid) -> Result<RuleSetRecord, ApiError> {
    let t = t.clone();
    state
        .store
        .read(move |r| r.rule_set(&t, id))
        .await?
        .ok_or_else(|| ApiError::not_found("rule set"))
}

/// One rule set.
#[utoipa::path(get, path = "/v1/rule-sets/{id}", tag = "rules",
    params(("id" = uuid::Uuid, Path, description = "rule set id")),
    responses((status = 200, body = RuleSetView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = load(&state, &ctx.principal.tenant_id, uuid_param(&id, "id")?).await?;
    Ok(json(StatusCode::OK, &view(&r)))
}

/// The body of `POST /v1/rule-sets/{id}/publish`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// RFC 3339; absent or past: now. The live set is the published one with the latest
    /// effective time that has passed.
    #[serde(default)]
    pub effective_at: Option<DateTime<Utc>>,
}

enum Step {
    Submit,
    Approve,
    Publish(Option<DateTime<Utc>>),
}

async fn step(
    state: SharedState,
    ctx: Ctx,
    id: &str,
    headers: HeaderMap,
    body: &[u8],
    name: &str,
) -> Result<Response, ApiError> {
    let id = uuid_param(id, "id")?;
    let (req, key): (PublishRequest, _) = parse_write(
        &headers,
        if body.is_empty() { b"{}" } else { body },
        &ctx.principal,
        &format!("POST /v1/rule-sets/{id}/{name}"),
    )?;
    let step = match name {
        "submit" => Step::Submit,
        "approve" => Step::Approve,
        _ => Step::Publish(req.effective_at),
    };
    if !matches!(step, Step::Publish(_)) && req.effective_at.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "effective_at is for publish only",
        )
        .field("effective_at"));
    }
    let (actor, now) = (ctx.actor(), state.clock.now());
    let part = partition(ctx.principal.tenant_id.as_str());
    write(
        &state,
        &ctx.principal,
        key,
        part,
        move |tx| match step {
            Step::Submit => core_rules::submit(tx, &actor, id, now),
            Step::Approve => core_rules::approve(tx, &actor, id, now),
            Step::Publish(at) => core_rules::publish(tx, &actor, id, at, now),
        },
        render(StatusCode::OK),
    )
    .await
}

/// Submit a draft for approval.
#[utoipa::path(post, path = "/v1/rule-sets/{id}/submit", tag = "rules",
    params(("id" = uuid::Uuid, Path, description = "rule set id")),
    responses((status = 200, body = RuleSetView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`rule_set_wrong_state`: not a draft", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    step(state, ctx, &id, headers, &body, "submit").await
}

/// Approve a submitted set: a key other than its author's.
#[utoipa::path(post, path = "/v1/rule-sets/{id}/approve", tag = "rules",
    params(("id" = uuid::Uuid, Path, description = "rule set id")),
    responses((status = 200, body = RuleSetView), (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, description = "`own_rule_set`: the author's key may not approve it", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`rule_set_wrong_state`: not submitted", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    step(state, ctx, &id, headers, &body, "approve").await
}

/// Publish an approved set, effective at a time (now by default).
#[utoipa::path(post, path = "/v1/rule-sets/{id}/publish", tag = "rules",
    params(("id" = uuid::Uuid, Path, description = "rule set id")),
    request_body = PublishRequest,
    responses((status = 200, body = RuleSetView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`rule_set_wrong_state`: not approved", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn publish(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    step(state, ctx, &id, headers, &body, "publish").await
}

/// The facts of `o` that `needs` names and the store gives, through a reader (SKU weights
/// cached): the same reads as the live path ([`orderhub_core::blacklist::extra_facts`]).
fn extra(
    r: &mut dyn ReadConn,
    needs: Needs,
    t: &TenantId,
    o: &orderhub_domain::Order,
    cache: &mut HashMap<Sku, Option<Decimal>>,
) -> Result<Extra, StoreError> {
    orderhub_core::blacklist::extra_facts(r, needs, o, |r| {
        core_rules::order_weight(o, |sku| {
            if let Some(w) = cache.get(sku) {
                return Ok(*w);
            }
            let w = r.sku(t, sku)?.and_then(|s| s.weight_kg);
            cache.insert(sku.clone(), w);
            Ok(w)
        })
    })
}

/// The body of `POST /v1/rule-sets/{id}/test`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    pub order_id: String,
}

/// Evaluate one stored order against a set (any state): the decisions, nothing written.
#[utoipa::path(post, path = "/v1/rule-sets/{id}/test", tag = "rules",
    params(("id" = uuid::Uuid, Path, description = "rule set id")),
    request_body = TestRequest,
    responses((status = 200, description = "hold, tags, carrier, ship_within, fired, errors", body = Object),
        (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`rule_set_not_compilable`: a set stored before a stricter check", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn test(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let (req, _): (TestRequest, _) = parse_json(&body, false)?;
    let oid = OrderId::parse(&req.order_id).map_err(|e| ApiError::from(e).field("order_id"))?;
    let set = load(&state, &ctx.principal.tenant_id, id).await?;
    compilable(&state.store, vec![set.clone()]).await?;
    let order = super::orders::visible_order(&state, &ctx.principal, oid).await?;
    let t = ctx.principal.tenant_id.clone();
    let decisions = state
        .store
        .read(move |r| {
            let compiled = core_rules::compiled(&set).map_err(core_err)?;
            let x = extra(r, compiled.needs(), &t, &order, &mut HashMap::new())?;
            Ok(serde_json::json!({
                "rule_set_version": set.version,
                "order_id": order.id,
                "decisions": core_rules::evaluate(&compiled, &order, &x),
            }))
        })
        .await?;
    Ok(json(StatusCode::OK, &decisions))
}

/// Sets stored before a stricter check may no longer compile: 409 `rule_set_not_compilable`
/// naming the first such set's version and fault. Compiled on a reader thread (a set of 200 rules
/// takes milliseconds, not for the async runtime), whose cache the evaluation then finds warm.
async fn compilable(store: &Store, sets: Vec<RuleSetRecord>) -> Result<(), ApiError> {
    let fault = store
        .read(move |_| {
            Ok(sets.iter().find_map(|s| {
                core_rules::compiled(s)
                    .err()
                    .map(|e| (s.version, e.to_string()))
            }))
        })
        .await?;
    match fault {
        None => Ok(()),
        Some((version, e)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "rule_set_not_compilable",
            format!("rule set v{version} does not compile: {e}"),
        )),
    }
}

fn core_err(e: CoreError) -> StoreError {
    StoreError::new(orderhub_core::StoreErrorKind::Other, e.to_string())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SandboxQuery {
    /// Days of stored orders (by creation time), 1 to 90.
    #[param(minimum = 1, maximum = 90)]
    days: u32,
}

/// Evaluates `draft` over the tenant's orders created since `since` (within `shops`), against
/// the set live at `now`, writing nothing; `progress` hears the orders done after each page.
pub async fn sandbox_run(
    store: &Store,
    tenant: &TenantId,
    shops: Option<Vec<orderhub_domain::ShopId>>,
    draft: RuleSetRecord,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    mut progress: impl FnMut(u64),
) -> Result<SandboxReport, ApiError> {
    let t = tenant.clone();
    let live = store.read(move |r| r.rule_set_live_at(&t, now)).await?;
    // Sets stored before a stricter check may no longer compile: said here, never a 500.
    compilable(
        store,
        std::iter::once(draft.clone()).chain(live.clone()).collect(),
    )
    .await?;
    let mut acc = (SandboxReport::default(), None::<OrderId>, HashMap::new());
    acc.0.live_version = live.as_ref().map(|l| l.version);
    loop {
        let mut f = OrderFilter::all(tenant.clone(), SANDBOX_PAGE);
        f.search.created_from = Some(since);
        f.shops = shops.clone();
        f.after = acc.1;
        let (draft, live, t) = (draft.clone(), live.clone(), tenant.clone());
        let (next, n) = store
            .read(move |r| {
                let mut acc = acc;
                let n = sandbox_page(r, &t, &f, (&draft, live.as_ref()), now, &mut acc)?;
                Ok((acc, n))
            })
            .await?;
        acc = next;
        progress(acc.0.orders);
        if n < SANDBOX_PAGE as usize || acc.0.orders >= SANDBOX_ORDERS_MAX {
            acc.0.truncated = n == SANDBOX_PAGE as usize;
            return Ok(acc.0);
        }
    }
}

type Acc = (
    SandboxReport,
    Option<OrderId>,
    HashMap<Sku, Option<Decimal>>,
);

fn sandbox_page(
    r: &mut dyn ReadConn,
    t: &TenantId,
    f: &OrderFilter,
    (draft, live): (&RuleSetRecord, Option<&RuleSetRecord>),
    now: DateTime<Utc>,
    acc: &mut Acc,
) -> Result<usize, StoreError> {
    let d = core_rules::compiled(draft).map_err(core_err)?;
    let l = live
        .map(core_rules::compiled)
        .transpose()
        .map_err(core_err)?;
    let orders = r.order_list(f)?;
    for o in &orders {
        let needs = l.as_ref().map_or(d.needs(), |l| d.needs().or(l.needs()));
        let x = extra(r, needs, t, o, &mut acc.2)?;
        let dd = core_rules::evaluate(&d, o, &x);
        let ld = l.as_ref().map(|l| core_rules::evaluate(l, o, &x));
        acc.0.add(o, &dd, ld.as_ref(), now);
        acc.1 = Some(o.id);
    }
    Ok(orders.len())
}

/// Run a set over the last N days of stored orders without writing anything, against the live
/// set: orders that would be held or released, carrier mix before and after, tag changes, with
/// a sample of order ids per change.
#[utoipa::path(get, path = "/v1/rule-sets/{id}/sandbox", tag = "rules",
    params(("id" = uuid::Uuid, Path, description = "rule set id"), SandboxQuery),
    responses((status = 200, description = "the sandbox report", body = Object),
        (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`rule_set_not_compilable`: the set or the live set, stored before a stricter check", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn sandbox(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let q: SandboxQuery = parse_query(q.as_deref())?;
    if !(1..=SANDBOX_DAYS_MAX).contains(&q.days) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("days must be 1 to {SANDBOX_DAYS_MAX}"),
        )
        .field("days"));
    }
    let set = load(&state, &ctx.principal.tenant_id, id).await?;
    let version = set.version;
    let now = state.clock.now();
    let since = now - Duration::days(i64::from(q.days));
    let p = &ctx.principal;
    // The route acts on the whole tenant (a key scoped to shops is refused before): every shop.
    let report = sandbox_run(
        &state.store,
        &p.tenant_id,
        p.shops.clone(),
        set,
        since,
        now,
        |_| {},
    )
    .await?;
    let body = serde_json::json!({ "rule_set_version": version, "days": q.days, "report": report });
    Ok(json(StatusCode::OK, &body))
}

//! `/v1/health/*` (issue 24): the order health score as `orderhub_domain::health` defines it —
//! computing a day (`POST /v1/health/compute`), its history per dimension (`GET
//! /v1/health/scores`, figures only), the orders behind a drop (`GET /v1/health/orders`, per
//! order) and the tenant's weights, thresholds and alert rule (`GET/PUT /v1/health/config`).
//!
//! A key scoped to shops reads the `shop` dimension of its own shops only: the other dimensions'
//! figures add up every shop's orders (403 `out_of_scope`).

use super::metrics::{day_range, parse_day};
use super::{page_limit, parse_query};
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use orderhub_core::health::{HealthAlert, HealthScore};
use orderhub_domain::OrderId;
use orderhub_domain::health::{self as h, HealthConfig, Weights};
use orderhub_store::health::{self as store_health, OrdersQuery, SCORES_MAX};
use serde::{Deserialize, Serialize};

fn bad(field: &str, code: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message).field(field)
}

fn required<'a>(field: &str, v: Option<&'a str>) -> Result<&'a str, ApiError> {
    v.ok_or_else(|| bad(field, "missing_parameter", format!("{field} is required")))
}

fn dimension(v: Option<&str>) -> Result<&'static str, ApiError> {
    let v = required("dimension", v)?;
    store_health::dimension(v).ok_or_else(|| {
        bad(
            "dimension",
            "invalid_value",
            format!(
                "dimension must be one of {}; got {v:?}",
                h::DIMENSIONS.join(", ")
            ),
        )
    })
}

fn out_of_scope() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "out_of_scope",
        "a key limited to shops reads the shop dimension only (the others add up every shop)",
    )
}

/// A component's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ComponentView {
    /// on_time, exceptions, exception_age, refunds, sync_lag, write_back or tracking.
    pub name: String,
    /// Orders the component judged.
    pub judged: u64,
    /// Of those, the orders that failed it.
    pub failing: u64,
    /// 100 × (1 − failing ÷ judged), one place; null when it judged no order.
    pub score: Option<String>,
}

/// One (day, key) of a dimension.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScoreView {
    pub day: String,
    pub dimension: String,
    /// The shop, channel, warehouse, carrier or province; `none`: no warehouse or carrier yet.
    pub key: String,
    /// Orders paid that day (test and employee orders excluded).
    pub orders: u64,
    /// 0–100, one place: the weighted mean of the components present; null when none.
    pub score: Option<String>,
    /// A, B, C or D; null without a score.
    pub grade: Option<String>,
    pub components: Vec<ComponentView>,
    pub computed_at: chrono::DateTime<chrono::Utc>,
}

impl ScoreView {
    fn of(s: &HealthScore, cfg: &HealthConfig) -> Self {
        ScoreView {
            day: s.day.to_string(),
            dimension: s.dimension.clone(),
            key: s.key.clone(),
            orders: s.counts.orders,
            score: s.score.map(|x| x.to_string()),
            grade: s.grade.map(|g| g.as_str().to_owned()),
            components: s
                .counts
                .score(cfg)
                .components
                .into_iter()
                .map(|c| ComponentView {
                    name: c.name.to_owned(),
                    judged: c.judged,
                    failing: c.failing,
                    score: c.score.map(|x| x.to_string()),
                })
                .collect(),
            computed_at: s.computed_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub alert_id: String,
    pub dimension: String,
    pub key: String,
    /// The first day of the run below C.
    pub streak_start: String,
    pub day: String,
    pub score: String,
}

impl From<&HealthAlert> for AlertView {
    fn from(a: &HealthAlert) -> Self {
        AlertView {
            alert_id: a.alert_id.to_string(),
            dimension: a.dimension.clone(),
            key: a.key.clone(),
            streak_start: a.streak_start.to_string(),
            day: a.day.to_string(),
            score: a.score.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ComputeQuery {
    /// The UTC payment day computed, YYYY-MM-DD; default yesterday (UTC).
    date: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ComputeResult {
    pub day: String,
    /// Every dimension's keys with orders that day.
    pub scores: Vec<ScoreView>,
    /// Alerts raised by this computation (a streak alerted before is not raised again).
    pub raised: Vec<AlertView>,
}

/// Logs, counts and publishes to `/metrics` what a computation gave (the alerts' events are in
/// the outbox already).
pub fn report(tenant: &str, c: &store_health::Computed) {
    for a in &c.raised {
        tracing::warn!(
            tenant,
            dimension = %a.dimension,
            key = %a.key,
            streak_start = %a.streak_start,
            day = %a.day,
            score = %a.score,
            "An order health score stayed below C for the configured run of days."
        );
        ::metrics::counter!("orderhub_health_alerts_total", "dimension" => a.dimension.clone())
            .increment(1);
    }
    publish(tenant, c.day, &c.scores, c.config.grade_c);
}

/// The dimensions `/metrics` shows: the tenant's shops, channels and carriers are few; its
/// warehouses' and provinces' scores are read from the API instead (bounded cardinality).
pub const GAUGE_DIMENSIONS: [&str; 3] = ["shop", "channel", "carrier"];

/// Sets `orderhub_health_score{tenant,dimension,key}` to `day`'s scores when `day` is the latest
/// day this process computed for the tenant (computing an older day leaves the gauge alone), and
/// `orderhub_health_grade_c_score{tenant}` to the tenant's C threshold (the alert rule compares).
pub fn publish(tenant: &str, day: NaiveDate, scores: &[HealthScore], grade_c: u32) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static LATEST: Mutex<Option<HashMap<String, NaiveDate>>> = Mutex::new(None);
    let mut latest = LATEST.lock().unwrap_or_else(|p| p.into_inner());
    let map = latest.get_or_insert_with(HashMap::new);
    if map.get(tenant).is_some_and(|d| *d > day) {
        return;
    }
    map.insert(tenant.to_owned(), day);
    ::metrics::gauge!("orderhub_health_grade_c_score", "tenant" => tenant.to_owned())
        .set(f64::from(grade_c));
    for s in scores
        .iter()
        .filter(|s| GAUGE_DIMENSIONS.contains(&s.dimension.as_str()))
    {
        let Some(score) = s
            .score
            .and_then(|x| rust_decimal::prelude::ToPrimitive::to_f64(&x))
        else {
            continue;
        };
        ::metrics::gauge!(
            "orderhub_health_score",
            "tenant" => tenant.to_owned(),
            "dimension" => s.dimension.clone(),
            "key" => s.key.clone()
        )
        .set(score);
    }
}

/// Computes one UTC payment day for the caller's tenant: every dimension's keys are scored and
/// stored (replacing an earlier computation of that day), and each key whose grade stayed below
/// C for the configured run of days raises a `health.alert` event, logged and counted.
#[utoipa::path(post, path = "/v1/health/compute", tag = "health", params(ComputeQuery),
    responses((status = 200, body = ComputeResult), (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn compute(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ComputeQuery = parse_query(q.as_deref())?;
    let now = state.clock.now();
    let day = match &q.date {
        Some(d) => parse_day("date", d)?,
        None => now.date_naive() - Duration::days(1),
    };
    let t = ctx.principal.tenant_id.clone();
    let c = store_health::compute(&state.store, &t, day, now, &ctx.request_id).await?;
    report(t.as_str(), &c);
    let out = ComputeResult {
        day: day.to_string(),
        scores: c
            .scores
            .iter()
            .map(|s| ScoreView::of(s, &c.config))
            .collect(),
        raised: c.raised.iter().map(AlertView::from).collect(),
    };
    Ok(crate::extract::json(StatusCode::OK, &out))
}

/// Score rows one answer holds at most (92 days × ~100 keys); `truncated` says when more exist.
pub const ROWS_MAX: u32 = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScoresQuery {
    /// shop, channel, warehouse, carrier or region (required).
    dimension: Option<String>,
    /// First UTC day, YYYY-MM-DD (required).
    from: Option<String>,
    /// Last UTC day (included), YYYY-MM-DD (required); at most 92 days from `from`.
    to: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScoresPage {
    pub dimension: String,
    pub from: String,
    pub to: String,
    /// Lowest score of an A, a B and a C under the tenant's configuration now.
    pub grade_a: u32,
    pub grade_b: u32,
    pub grade_c: u32,
    /// By day, then key; days computed only.
    pub scores: Vec<ScoreView>,
    /// More rows than an answer holds (10,000): narrow the range.
    pub truncated: bool,
}

/// The stored health scores of one dimension over days `from`..=`to` (at most 92): figures only,
/// no order. A key scoped to shops reads `dimension=shop`, its shops only.
#[utoipa::path(get, path = "/v1/health/scores", tag = "health", params(ScoresQuery),
    responses((status = 200, body = ScoresPage), (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn scores(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ScoresQuery = parse_query(q.as_deref())?;
    let dim = dimension(q.dimension.as_deref())?;
    let (from, to) = day_range(q.from.as_deref(), q.to.as_deref())?;
    let shops = ctx.principal.shops.clone();
    if shops.is_some() && dim != "shop" {
        return Err(out_of_scope());
    }
    let t = ctx.principal.tenant_id.clone();
    let (cfg, mut rows) = state
        .store
        .read(move |r| {
            let cfg = r.health_config(&t)?.unwrap_or_default();
            let limit = SCORES_MAX.min(ROWS_MAX + 1);
            // A key scoped to shops reads its shops' rows only, each by its key, so the bound
            // counts what it may see.
            let rows = match &shops {
                None => r.health_scores(&t, Some(dim), None, from, to, limit)?,
                Some(shops) => {
                    let mut rows = Vec::new();
                    for shop in shops {
                        let left = limit.saturating_sub(rows.len() as u32);
                        if left == 0 {
                            break;
                        }
                        rows.extend(r.health_scores(
                            &t,
                            Some(dim),
                            Some(shop.as_str()),
                            from,
                            to,
                            left,
                        )?);
                    }
                    rows
                }
            };
            Ok((cfg, rows))
        })
        .await?;
    let truncated = rows.len() > ROWS_MAX as usize;
    rows.truncate(ROWS_MAX as usize);
    // Day first: a trend chart reads each day's keys together.
    rows.sort_by(|a, b| (a.day, &a.key).cmp(&(b.day, &b.key)));
    let out = ScoresPage {
        dimension: dim.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        grade_a: cfg.grade_a,
        grade_b: cfg.grade_b,
        grade_c: cfg.grade_c,
        scores: rows.iter().map(|s| ScoreView::of(s, &cfg)).collect(),
        truncated,
    };
    Ok(crate::extract::json(StatusCode::OK, &out))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// shop, channel, warehouse, carrier or region (required).
    dimension: Option<String>,
    /// The window: orders paid in this many seconds before now (10 to 259,200; default 3,600).
    window_seconds: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LivePage {
    pub dimension: String,
    pub window_seconds: u32,
    /// Orders paid from this time (included) until `as_of`, RFC 3339 UTC.
    pub from: String,
    pub as_of: String,
    pub grade_a: u32,
    pub grade_b: u32,
    pub grade_c: u32,
    /// By key; keys with an order paid in the window only (not stored: each call judges anew).
    pub scores: Vec<ScoreView>,
}

/// The dimension's scores over the orders paid in the last `window_seconds`, judged now by the
/// same definition as a day's (nothing stored, no alert): what is going on right now, where a
/// day's score mixes the morning into the evening. A key scoped to shops reads
/// `dimension=shop`, its shops only.
#[utoipa::path(get, path = "/v1/health/live", tag = "health", params(LiveQuery),
    responses((status = 200, body = LivePage), (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn live(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: LiveQuery = parse_query(q.as_deref())?;
    let dim = dimension(q.dimension.as_deref())?;
    let (lo, hi) = store_health::LIVE_WINDOW_SECONDS;
    let window = match q.window_seconds.as_deref() {
        None => 3_600,
        Some(w) => w
            .parse::<u32>()
            .ok()
            .filter(|w| (lo..=hi).contains(w))
            .ok_or_else(|| {
                bad(
                    "window_seconds",
                    "out_of_range",
                    format!("window_seconds must be a whole number from {lo} to {hi}; got {w:?}"),
                )
            })?,
    };
    let shops = ctx.principal.shops.clone();
    if shops.is_some() && dim != "shop" {
        return Err(out_of_scope());
    }
    let now = state.clock.now();
    let t = ctx.principal.tenant_id.clone();
    let span = Duration::seconds(i64::from(window));
    let (cfg, scores) = store_health::live(&state.store, &t, span, now).await?;
    let seen = |s: &&HealthScore| {
        s.dimension == dim
            && shops
                .as_ref()
                .is_none_or(|shops| shops.iter().any(|x| x.as_str() == s.key))
    };
    let out = LivePage {
        dimension: dim.to_owned(),
        window_seconds: window,
        from: (now - span).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        as_of: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        grade_a: cfg.grade_a,
        grade_b: cfg.grade_b,
        grade_c: cfg.grade_c,
        scores: scores
            .iter()
            .filter(seen)
            .map(|s| ScoreView::of(s, &cfg))
            .collect(),
    };
    Ok(crate::extract::json(StatusCode::OK, &out))
}

/// Orders listed at most per page.
const ORDERS_LIMIT_MAX: u32 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrdersParams {
    /// shop, channel, warehouse, carrier or region (required).
    dimension: Option<String>,
    /// The key in that dimension (required).
    key: Option<String>,
    /// The UTC payment day, YYYY-MM-DD (required).
    date: Option<String>,
    /// Only the orders failing this component; default: failing any.
    component: Option<String>,
    /// 1 to 500; default 100.
    limit: Option<u32>,
    /// The last `order_id` of the previous page.
    after: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FailingOrderView {
    pub order_id: String,
    /// The components it fails, as judged now.
    pub failing: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthOrdersPage {
    pub orders: Vec<FailingOrderView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The orders behind a (day, dimension, key)'s score: each failing order with the components it
/// fails, judged now under the tenant's configuration, by order id, a page at a time.
#[utoipa::path(get, path = "/v1/health/orders", tag = "health", params(OrdersParams),
    responses((status = 200, body = HealthOrdersPage),
        (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn orders(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: OrdersParams = parse_query(q.as_deref())?;
    let dim = dimension(q.dimension.as_deref())?;
    let key = required("key", q.key.as_deref())?.to_owned();
    if key.is_empty() || key.len() > 128 {
        return Err(bad(
            "key",
            "invalid_value",
            "key must be 1 to 128 bytes".into(),
        ));
    }
    let day = parse_day("date", required("date", q.date.as_deref())?)?;
    let component = match q.component.as_deref() {
        None => None,
        Some(c) => Some(store_health::component(c).ok_or_else(|| {
            bad(
                "component",
                "invalid_value",
                format!(
                    "component must be one of {}; got {c:?}",
                    h::COMPONENTS.join(", ")
                ),
            )
        })?),
    };
    let limit = page_limit(q.limit, 100, ORDERS_LIMIT_MAX)?;
    let after = match q.after.as_deref() {
        None => None,
        Some(a) => Some(
            OrderId::parse(a)
                .map_err(|_| bad("after", "invalid_id", "after must be an order id".into()))?,
        ),
    };
    if let Some(shops) = &ctx.principal.shops {
        if dim != "shop" {
            return Err(out_of_scope());
        }
        if !shops.iter().any(|s| s.as_str() == key) {
            return Err(ApiError::not_found("shop"));
        }
    }
    let t = ctx.principal.tenant_id.clone();
    let now = state.clock.now();
    let query = OrdersQuery {
        day,
        dimension: dim,
        key,
        component,
        after,
        limit,
    };
    let rows = state
        .store
        .read(move |r| {
            let cfg = r.health_config(&t)?.unwrap_or_default();
            r.health_orders(&t, &query, now, &cfg)
        })
        .await?;
    let next_cursor = super::next_cursor(&rows, limit, |o| o.order_id.to_string());
    let out = HealthOrdersPage {
        orders: rows
            .iter()
            .map(|o| FailingOrderView {
                order_id: o.order_id.to_string(),
                failing: o.failing.iter().map(|s| (*s).to_owned()).collect(),
            })
            .collect(),
        next_cursor,
    };
    Ok(crate::extract::json(StatusCode::OK, &out))
}

/// Component weights: relative, each 0 to 1,000,000, at least one above 0.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightsBody {
    pub on_time: u32,
    pub exceptions: u32,
    pub exception_age: u32,
    pub refunds: u32,
    pub sync_lag: u32,
    pub write_back: u32,
    pub tracking: u32,
}

/// The tenant's health configuration.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthConfigBody {
    pub weights: WeightsBody,
    /// Lowest score of an A (0–100); grade_b below it, grade_c below that.
    pub grade_a: u32,
    pub grade_b: u32,
    pub grade_c: u32,
    /// Consecutive days below C that raise an alert (1–30).
    pub alert_days: u32,
    /// Seconds: an order received later than this after its payment lagged (1–604800).
    pub sync_lag_seconds: u32,
    /// Seconds: the channel should acknowledge a tracking number within this (1–2592000).
    pub write_back_seconds: u32,
    /// Seconds: a shipped order's first carrier scan should come within this (1–2592000).
    pub tracking_seconds: u32,
}

impl From<&HealthConfig> for HealthConfigBody {
    fn from(c: &HealthConfig) -> Self {
        let w = &c.weights;
        HealthConfigBody {
            weights: WeightsBody {
                on_time: w.on_time,
                exceptions: w.exceptions,
                exception_age: w.exception_age,
                refunds: w.refunds,
                sync_lag: w.sync_lag,
                write_back: w.write_back,
                tracking: w.tracking,
            },
            grade_a: c.grade_a,
            grade_b: c.grade_b,
            grade_c: c.grade_c,
            alert_days: c.alert_days,
            sync_lag_seconds: c.sync_lag_seconds,
            write_back_seconds: c.write_back_seconds,
            tracking_seconds: c.tracking_seconds,
        }
    }
}

impl From<HealthConfigBody> for HealthConfig {
    fn from(b: HealthConfigBody) -> Self {
        let w = b.weights;
        HealthConfig {
            weights: Weights {
                on_time: w.on_time,
                exceptions: w.exceptions,
                exception_age: w.exception_age,
                refunds: w.refunds,
                sync_lag: w.sync_lag,
                write_back: w.write_back,
                tracking: w.tracking,
            },
            grade_a: b.grade_a,
            grade_b: b.grade_b,
            grade_c: b.grade_c,
            alert_days: b.alert_days,
            sync_lag_seconds: b.sync_lag_seconds,
            write_back_seconds: b.write_back_seconds,
            tracking_seconds: b.tracking_seconds,
        }
    }
}

/// The tenant's weights, grade thresholds and alert rule (the defaults until one is set).
#[utoipa::path(get, path = "/v1/health/config", tag = "health",
    responses((status = 200, body = HealthConfigBody), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_config(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    let cfg = state
        .store
        .read(move |r| r.health_config(&t))
        .await?
        .unwrap_or_default();
    Ok(crate::extract::json(
        StatusCode::OK,
        &HealthConfigBody::from(&cfg),
    ))
}

/// Sets the tenant's weights, grade thresholds and alert rule; days computed later use them
/// (stored days keep their grades until computed again).
#[utoipa::path(put, path = "/v1/health/config", tag = "health",
    request_body = HealthConfigBody,
    responses((status = 200, body = HealthConfigBody), (status = 400, body = orderhub_api::ErrorBody),
        (status = 403, body = orderhub_api::ErrorBody),
        (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_config(
    State(state): State<SharedState>,
    ctx: Ctx,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, _): (HealthConfigBody, _) = crate::extract::parse_json(&body, false)?;
    let cfg = HealthConfig::from(req);
    cfg.validate()?;
    let t = ctx.principal.tenant_id.clone();
    let now = state.clock.now();
    state
        .store
        .write(0, move |tx| {
            tx.health_config_put(&t, &cfg, now)?;
            Ok(())
        })
        .await?;
    Ok(crate::extract::json(
        StatusCode::OK,
        &HealthConfigBody::from(&cfg),
    ))
}

//! `GET /v1/metrics/golden`, `POST /v1/quality/check`, `GET /v1/quality/alerts` (issue 23): the
//! golden metrics as `orderhub_domain::metrics` defines them, by UTC payment day, channel or shop,
//! and the data-quality check's alerts. Aggregates only: no order, buyer or receiver in any answer.

use super::parse_query;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use orderhub_core::quality::{QualityAlert, THRESHOLD_PCT_DEFAULT};
use orderhub_domain::metrics::{Golden, Sums};
use orderhub_store::metrics::{RANGE_DAYS_MAX, day_start};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GoldenQuery {
    /// First UTC day, YYYY-MM-DD (required).
    from: Option<String>,
    /// Last UTC day (included), YYYY-MM-DD (required); at most 92 days from `from` to `to`
    /// counted inclusively.
    to: Option<String>,
    /// `day` (default; every day of the range, days without orders included), `channel` or
    /// `shop` (groups with orders only).
    by: Option<String>,
}

/// The golden metrics of one group (or of the whole range).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GoldenFigures {
    /// The day (YYYY-MM-DD), channel or shop; `all` for the total.
    pub key: String,
    /// Σ paid amounts − Σ completed refunds, counted orders only (decimal string).
    pub gmv: String,
    /// Paid orders that are neither test nor employee orders.
    pub orders: u64,
    /// gmv ÷ orders, 2 places; "0.00" without orders.
    pub aov: String,
    /// Orders with a completed refund ÷ orders, 4 places; "0.0000" without orders.
    pub refund_rate: String,
    /// Orders shipped by their deadline ÷ orders shipped that had one, 4 places; null when none.
    pub on_time_ship_rate: Option<String>,
}

impl GoldenFigures {
    fn of(key: String, g: &Golden) -> Self {
        GoldenFigures {
            key,
            gmv: g.gmv.to_string(),
            orders: g.orders,
            aov: g.aov.to_string(),
            refund_rate: g.refund_rate.to_string(),
            on_time_ship_rate: g.on_time_ship_rate.map(|r| r.to_string()),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GoldenMetrics {
    pub from: String,
    pub to: String,
    pub by: String,
    /// Orders belong to the UTC day they were paid; their refunds and shipments count there too.
    pub groups: Vec<GoldenFigures>,
    pub total: GoldenFigures,
}

fn bad(field: &str, code: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message).field(field)
}

/// A date written `YYYY-MM-DD` with a year from 2000 to 2999 (chrono's `%Y` alone takes any
/// signed year, whose day arithmetic overflows).
pub(crate) fn parse_day(field: &str, s: &str) -> Result<NaiveDate, ApiError> {
    orderhub_domain::metrics::parse_day(s).ok_or_else(|| {
        bad(
            field,
            "invalid_date",
            format!(
                "{field} must be a date YYYY-MM-DD between 2000-01-01 and 2999-12-31, got {s:?}"
            ),
        )
    })
}

/// `from` and `to` checked: a real date each, `from` ≤ `to`, at most [`RANGE_DAYS_MAX`] days.
pub(crate) fn day_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let required = |field: &str, v: Option<&str>| {
        v.map(|v| parse_day(field, v)).unwrap_or_else(|| {
            Err(bad(
                field,
                "missing_parameter",
                format!("{field} is required: a date YYYY-MM-DD"),
            ))
        })
    };
    let (f, t) = (required("from", from)?, required("to", to)?);
    if t < f {
        return Err(bad(
            "to",
            "out_of_range",
            "to must be on or after from".into(),
        ));
    }
    if (t - f).num_days() + 1 > RANGE_DAYS_MAX {
        return Err(bad(
            "to",
            "range_too_long",
            format!("from..to may span at most {RANGE_DAYS_MAX} days"),
        ));
    }
    Ok((f, t))
}

/// The golden metrics of the caller's shops (a scoped key's shops only) over UTC days
/// `from`..=`to` (at most 92), grouped by day, channel or shop, with their total. Definitions:
/// README "Golden metrics".
#[utoipa::path(get, path = "/v1/metrics/golden", tag = "metrics", params(GoldenQuery),
    responses((status = 200, body = GoldenMetrics), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn golden(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: GoldenQuery = parse_query(q.as_deref())?;
    let (from, to) = day_range(q.from.as_deref(), q.to.as_deref())?;
    let by = q.by.unwrap_or_else(|| "day".into());
    if !matches!(by.as_str(), "day" | "channel" | "shop") {
        return Err(bad(
            "by",
            "invalid_value",
            format!("by must be one of day, channel, shop; got {by:?}"),
        ));
    }
    let t = ctx.principal.tenant_id.clone();
    let shops = ctx.principal.shops.clone();
    let rows = state
        .store
        .read(move |r| {
            r.metric_sums(
                &t,
                shops.as_deref(),
                day_start(from),
                day_start(to + Duration::days(1)),
            )
        })
        .await?;
    let mut groups: BTreeMap<String, Sums> = BTreeMap::new();
    if by == "day" {
        let mut d = from;
        while d <= to {
            groups.insert(d.to_string(), Sums::default());
            d += Duration::days(1);
        }
    }
    let mut total = Sums::default();
    for r in &rows {
        let key = match by.as_str() {
            "day" => r.day.to_string(),
            "channel" => r.channel.clone(),
            _ => r.shop_id.clone(),
        };
        groups.entry(key).or_default().add(&r.sums);
        total.add(&r.sums);
    }
    let out = GoldenMetrics {
        from: from.to_string(),
        to: to.to_string(),
        by,
        groups: groups
            .into_iter()
            .map(|(k, s)| GoldenFigures::of(k, &s.golden()))
            .collect(),
        total: GoldenFigures::of("all".into(), &total.golden()),
    };
    Ok(crate::extract::json(StatusCode::OK, &out))
}

/// The threshold accepted, in percent: above 0, at most 1,000.
const THRESHOLD_PCT_MAX: u32 = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// The UTC day checked, YYYY-MM-DD; default yesterday (UTC).
    date: Option<String>,
    /// Percent either way beyond which a metric is an alert (decimal string, 0 < x ≤ 1000);
    /// default 5.
    threshold_pct: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub alert_id: String,
    pub day: String,
    /// gmv, orders, aov, refund_rate or on_time_ship_rate.
    pub metric: String,
    /// `all`, `channel` or `shop`.
    pub scope_kind: String,
    /// The channel or shop; empty for `all`.
    pub scope: String,
    pub value: String,
    /// Mean of the previous days with data (at most 7, within 30 days).
    pub baseline: String,
    /// (value − baseline) ÷ baseline × 100.
    pub change_pct: String,
    pub threshold_pct: String,
    pub raised_at: chrono::DateTime<chrono::Utc>,
}

impl From<&QualityAlert> for AlertView {
    fn from(a: &QualityAlert) -> Self {
        AlertView {
            alert_id: a.alert_id.to_string(),
            day: a.day.to_string(),
            metric: a.metric.clone(),
            scope_kind: a.scope_kind.clone(),
            scope: a.scope.clone(),
            value: a.value.to_string(),
            baseline: a.baseline.to_string(),
            change_pct: a.change_pct.to_string(),
            threshold_pct: a.threshold_pct.to_string(),
            raised_at: a.raised_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub day: String,
    pub threshold_pct: String,
    /// Alerts raised by this run (a day checked again raises nothing twice).
    pub raised: Vec<AlertView>,
}

/// Parses a threshold in percent (0 < x ≤ 1000), naming `field`.
pub fn parse_threshold(field: &str, s: Option<&str>) -> Result<Decimal, String> {
    let Some(s) = s else {
        return Ok(THRESHOLD_PCT_DEFAULT);
    };
    match s.trim().parse::<Decimal>() {
        Ok(d) if d > Decimal::ZERO && d <= Decimal::from(THRESHOLD_PCT_MAX) => Ok(d),
        _ => Err(format!(
            "{field} must be a decimal above 0 and at most {THRESHOLD_PCT_MAX}, got {s:?}"
        )),
    }
}

/// Logs and counts each alert raised (the event is in the outbox already).
pub fn report(tenant: &str, raised: &[QualityAlert]) {
    for a in raised {
        tracing::warn!(
            tenant,
            day = %a.day,
            metric = %a.metric,
            scope_kind = %a.scope_kind,
            scope = %a.scope,
            value = %a.value,
            baseline = %a.baseline,
            change_pct = %a.change_pct,
            "A golden metric moved beyond the data-quality threshold."
        );
        ::metrics::counter!("orderhub_quality_alerts_total", "metric" => a.metric.clone())
            .increment(1);
    }
}

/// Runs the data-quality check of one UTC day for the caller's tenant: every golden metric, for
/// the tenant, per channel and per shop, against the mean of the previous days with data; each
/// move beyond the threshold is stored, published as a `quality.alert` event, logged and counted.
#[utoipa::path(post, path = "/v1/quality/check", tag = "metrics", params(CheckQuery),
    responses((status = 200, body = CheckResult), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn check(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: CheckQuery = parse_query(q.as_deref())?;
    let now = state.clock.now();
    let day = match &q.date {
        Some(d) => parse_day("date", d)?,
        None => now.date_naive() - Duration::days(1),
    };
    let threshold = parse_threshold("threshold_pct", q.threshold_pct.as_deref())
        .map_err(|m| bad("threshold_pct", "out_of_range", m))?;
    let t = ctx.principal.tenant_id.clone();
    let raised = orderhub_store::metrics::quality_check(
        &state.store,
        &t,
        day,
        threshold,
        now,
        &ctx.request_id,
    )
    .await?;
    report(t.as_str(), &raised);
    let out = CheckResult {
        day: day.to_string(),
        threshold_pct: threshold.to_string(),
        raised: raised.iter().map(AlertView::from).collect(),
    };
    Ok(crate::extract::json(StatusCode::OK, &out))
}

/// Alerts listed at most per page.
const ALERTS_LIMIT_MAX: u32 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// First day, YYYY-MM-DD (required).
    from: Option<String>,
    /// Last day (included), YYYY-MM-DD (required); at most 92 days from `from` to `to`.
    to: Option<String>,
    /// 1 to 500; default 100.
    limit: Option<u32>,
    /// The last `alert_id` of the previous page.
    after: Option<uuid::Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    pub alerts: Vec<AlertView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The data-quality alerts of days `from`..=`to`, by day, a page at a time.
#[utoipa::path(get, path = "/v1/quality/alerts", tag = "metrics", params(AlertsQuery),
    responses((status = 200, body = AlertPage), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn alerts(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: AlertsQuery = parse_query(q.as_deref())?;
    let (from, to) = day_range(q.from.as_deref(), q.to.as_deref())?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=ALERTS_LIMIT_MAX).contains(&limit) {
        return Err(bad(
            "limit",
            "out_of_range",
            format!("limit must be 1 to {ALERTS_LIMIT_MAX}"),
        ));
    }
    let t = ctx.principal.tenant_id.clone();
    let after = q.after;
    let rows = state
        .store
        .read(move |r| r.quality_alerts(&t, from, to, after, limit))
        .await?;
    let next_cursor = super::next_cursor(&rows, limit, |a| a.alert_id.to_string());
    let out = AlertPage {
        alerts: rows.iter().map(AlertView::from).collect(),
        next_cursor,
    };
    Ok(crate::extract::json(StatusCode::OK, &out))
}

//! `GET /v1/reports/status-differences`: the month's differences between our orders' statuses
//! and their channels' or carriers' that the status reconciler found
//! (`orderhub-intake/src/status_check.rs`, `orderhub-fulfillment/src/reconcile.rs`),
//! by kind, the channels and the carriers that deviate most, and every (channel, shop, carrier,
//! kind) with its count — within the key's shop scope.

use super::parse_query;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DifferencesQuery {
    /// The month, `YYYY-MM` (UTC); default: the current month.
    month: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Count {
    /// A kind, channel or carrier.
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DifferenceRowView {
    pub channel: String,
    pub shop_id: String,
    /// The order's carrier when the difference was found (`""`: none chosen yet).
    pub carrier: String,
    /// The channels' (`paid_on_channel_only`, `shipped_on_channel_only`, `not_shipped_on_channel`,
    /// `closed_on_channel`) or the carriers' (`delivered_by_carrier_only`, `problem_at_carrier`,
    /// `no_carrier_record`, `delivered_here_not_by_carrier`).
    pub kind: String,
    pub count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusDifferences {
    pub month: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Differences found in the month (each raised once per order until it was resolved).
    pub total: u64,
    pub by_kind: Vec<Count>,
    /// Every channel with a difference, the most first.
    pub channels: Vec<Count>,
    /// The five carriers with the most differences (orders with a carrier only).
    pub carriers: Vec<Count>,
    /// At most 1,000 rows, the largest first (the figures above count every row).
    pub rows: Vec<DifferenceRowView>,
    /// More rows than the 1,000 shown.
    pub rows_truncated: bool,
}

/// The most rows an answer lists.
const ROWS_MAX: usize = 1_000;

fn bad_month(raw: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_month",
        format!("month {raw:?} is not a month as YYYY-MM between 2000-01 and 2999-12"),
    )
    .field("month")
}

/// The month's first instant and the next month's, UTC.
fn month_range(
    raw: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(String, DateTime<Utc>, DateTime<Utc>), ApiError> {
    let first = match raw.map(str::trim) {
        None | Some("") => NaiveDate::from_ymd_opt(now.year(), now.month(), 1),
        // A month is its first day as the metrics' dates are read (`YYYY-MM-DD`, 2000 – 2999).
        Some(m) => orderhub_domain::metrics::parse_day(&format!("{m}-01")),
    }
    .ok_or_else(|| bad_month(raw.unwrap_or("")))?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| bad_month(raw.unwrap_or("")))?;
    let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
    Ok((first.format("%Y-%m").to_string(), at(first), at(next)))
}

fn ranked(m: BTreeMap<String, u64>, keep: usize) -> Vec<Count> {
    let mut v: Vec<Count> = m
        .into_iter()
        .map(|(name, count)| Count { name, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v.truncate(keep);
    v
}

/// The month's status differences found by the status reconciler, counted.
#[utoipa::path(get, path = "/v1/reports/status-differences", tag = "system",
    params(DifferencesQuery),
    responses((status = 200, body = StatusDifferences), (status = 400, description = "`invalid_month`", body = orderhub_api::ErrorBody), (status = 401, body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn status_differences(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: DifferencesQuery = parse_query(q.as_deref())?;
    let (month, from, to) = month_range(q.month.as_deref(), state.clock.now())?;
    let t = ctx.principal.tenant_id.clone();
    let shops = super::scope_strings(&ctx.principal);
    let rows = state
        .store
        .read(move |r| r.status_difference_counts(&t, from, to, shops.as_deref()))
        .await?;
    let (mut kinds, mut channels, mut carriers) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for r in &rows {
        *kinds.entry(r.kind.clone()).or_insert(0) += r.count;
        *channels.entry(r.channel.clone()).or_insert(0) += r.count;
        if !r.carrier.is_empty() {
            *carriers.entry(r.carrier.clone()).or_insert(0) += r.count;
        }
    }
    let body = StatusDifferences {
        month,
        from,
        to,
        total: rows.iter().map(|r| r.count).sum(),
        by_kind: ranked(kinds, usize::MAX),
        channels: ranked(channels, usize::MAX),
        carriers: ranked(carriers, 5),
        rows_truncated: rows.len() > ROWS_MAX,
        rows: rows
            .into_iter()
            .take(ROWS_MAX)
            .map(|r| DifferenceRowView {
                channel: r.channel,
                shop_id: r.shop_id,
                carrier: r.carrier,
                kind: r.kind,
                count: r.count,
            })
            .collect(),
    };
    Ok(json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_read_as_yyyy_mm_and_bounded() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
        let (m, from, to) = month_range(None, now).unwrap();
        assert_eq!(m, "2026-12");
        assert_eq!(from, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(to, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        let (_, from, to) = month_range(Some("2024-02"), now).unwrap();
        assert_eq!((to - from).num_days(), 29);
        for bad in [
            "2026-13", "2026-1", "26-01", "2026/01", "1999-12", "3000-01", "x",
        ] {
            assert!(month_range(Some(bad), now).is_err(), "{bad}");
        }
    }
}
